/* SPDX-License-Identifier: MIT */
/*
 * The basic-class content header: fixed prefix (class, weight, body size,
 * property flags), then each present property in flag order. Decoding is
 * strict (no continuation flag word, no trailing bytes, headers validated);
 * encoding writes exactly the properties whose flags are set.
 */
#include "protocol/props.h"

#include <stddef.h>
#include <string.h>

#include "core/status.h"
#include "core/cursor.h"
#include "protocol/table.h"

/* Bits 1 and 0 are not properties: bit 0 announces another flag word, which
 * the basic class never needs, and bit 1 is unused. */
#define PROP_KNOWN_FLAGS  0xfffcu
#define PROP_CONTINUATION 0x0001u

typedef enum { PT_SHORTSTR, PT_OCTET, PT_TABLE, PT_TIMESTAMP } prop_kind_t;

typedef struct {
    uint16_t flag;
    uint8_t kind;
    uint16_t offset; /* within wr_props_t */
} prop_desc_t;

/* In wire order, which is flag order from bit 15 down. */
static const prop_desc_t prop_descs[] = {
    {WR_PROP_CONTENT_TYPE, PT_SHORTSTR, offsetof(wr_props_t, content_type)},
    {WR_PROP_CONTENT_ENCODING, PT_SHORTSTR, offsetof(wr_props_t, content_encoding)},
    {WR_PROP_HEADERS, PT_TABLE, offsetof(wr_props_t, headers)},
    {WR_PROP_DELIVERY_MODE, PT_OCTET, offsetof(wr_props_t, delivery_mode)},
    {WR_PROP_PRIORITY, PT_OCTET, offsetof(wr_props_t, priority)},
    {WR_PROP_CORRELATION_ID, PT_SHORTSTR, offsetof(wr_props_t, correlation_id)},
    {WR_PROP_REPLY_TO, PT_SHORTSTR, offsetof(wr_props_t, reply_to)},
    {WR_PROP_EXPIRATION, PT_SHORTSTR, offsetof(wr_props_t, expiration)},
    {WR_PROP_MESSAGE_ID, PT_SHORTSTR, offsetof(wr_props_t, message_id)},
    {WR_PROP_TIMESTAMP, PT_TIMESTAMP, offsetof(wr_props_t, timestamp)},
    {WR_PROP_TYPE, PT_SHORTSTR, offsetof(wr_props_t, type)},
    {WR_PROP_USER_ID, PT_SHORTSTR, offsetof(wr_props_t, user_id)},
    {WR_PROP_APP_ID, PT_SHORTSTR, offsetof(wr_props_t, app_id)},
    {WR_PROP_CLUSTER_ID, PT_SHORTSTR, offsetof(wr_props_t, cluster_id)},
};

#define PROP_COUNT (sizeof(prop_descs) / sizeof(prop_descs[0]))

static bool read_prefix(wr_cursor_t *c, uint16_t *class_id, uint16_t *weight, uint64_t *body_size)
{
    return wr_rd_u16(c, class_id) && wr_rd_u16(c, weight) && wr_rd_u64(c, body_size);
}

int wr_props_peek(wr_bytes_t payload, uint16_t *class_id, uint64_t *body_size)
{
    wr_cursor_t c = wr_cursor(payload);
    uint16_t weight;

    return read_prefix(&c, class_id, &weight, body_size) ? WR_OK : WR_ESYNTAX;
}

static int read_prop(wr_cursor_t *c, const prop_desc_t *d, wr_props_t *out)
{
    void *p = (char *)out + d->offset;
    wr_bytes_t *s = p;

    switch (d->kind) {
    case PT_SHORTSTR:
        return wr_rd_shortstr(c, s) ? WR_OK : WR_ESYNTAX;
    case PT_OCTET:
        return wr_rd_u8(c, p) ? WR_OK : WR_ESYNTAX;
    case PT_TIMESTAMP:
        return wr_rd_u64(c, p) ? WR_OK : WR_ESYNTAX;
    default: /* PT_TABLE */
        if (!wr_rd_longstr(c, s))
            return WR_ESYNTAX;
        return wr_table_validate(*s, WR_TABLE_MAX_DEPTH);
    }
}

int wr_props_decode(wr_bytes_t payload, wr_props_t *out)
{
    wr_cursor_t c = wr_cursor(payload);
    uint16_t flags;

    memset(out, 0, sizeof(*out));
    if (!read_prefix(&c, &out->class_id, &out->weight, &out->body_size) || !wr_rd_u16(&c, &flags))
        return WR_ESYNTAX;
    if (flags & PROP_CONTINUATION)
        return WR_ESYNTAX;
    out->flags = flags & PROP_KNOWN_FLAGS;
    for (size_t i = 0; i < PROP_COUNT; i++) {
        int rc;

        if (!(flags & prop_descs[i].flag))
            continue;
        rc = read_prop(&c, &prop_descs[i], out);
        if (rc != WR_OK)
            return rc;
    }
    if (wr_cursor_left(&c) != 0)
        return WR_ESYNTAX;
    return WR_OK;
}

void wr_props_encode(wr_buf_t *b, const wr_props_t *p)
{
    uint16_t flags = p->flags & PROP_KNOWN_FLAGS;

    wr_buf_put_u16(b, p->class_id);
    wr_buf_put_u16(b, p->weight);
    wr_buf_put_u64(b, p->body_size);
    wr_buf_put_u16(b, flags);
    for (size_t i = 0; i < PROP_COUNT; i++) {
        const prop_desc_t *d = &prop_descs[i];
        const void *v = (const char *)p + d->offset;

        if (!(flags & d->flag))
            continue;
        switch (d->kind) {
        case PT_SHORTSTR:
            wr_put_shortstr(b, *(const wr_bytes_t *)v);
            break;
        case PT_OCTET:
            wr_buf_put_u8(b, *(const uint8_t *)v);
            break;
        case PT_TIMESTAMP:
            wr_buf_put_u64(b, *(const uint64_t *)v);
            break;
        default: /* PT_TABLE */
            wr_put_longstr(b, *(const wr_bytes_t *)v);
            break;
        }
    }
}
