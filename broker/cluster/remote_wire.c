/* SPDX-License-Identifier: MIT */
/*
 * The codec of remote_wire.h, driven by one field list per kind: encode and
 * decode walk the same list, so they cannot drift apart. Every read goes
 * through the bounds-checked cursor; trailing bytes are refused.
 */
#include "broker/cluster/remote_wire.h"

#include <stddef.h>

#include "broker/queue/queue.h"
#include "core/status.h"
#include "core/cursor.h"

/* Field codes, one character each in a kind's list. */
#define F_ID       'i' /* u64, never 0 except a PUBLISH's seq */
#define F_TAG      't' /* u64 */
#define F_VHOST    'v' /* shortstr, not empty */
#define F_QUEUE    'q' /* shortstr, not empty */
#define F_EXCHANGE 'x' /* shortstr */
#define F_RKEY     'k' /* shortstr */
#define F_HEADER   'h' /* longstr */
#define F_ARGS     'a' /* longstr */
#define F_PREFETCH 'p' /* u16 */
#define F_FLAGS    'f' /* u8, within the kind's mask */
#define F_PRIORITY 'r' /* i32 */
#define F_CREDIT   'c' /* u32 */
#define F_STATUS   's' /* u8, at most the kind's maximum */
#define F_HOW      'w' /* u8, a wr_settle_t */
#define F_DELIVERY 'd' /* u64 */
#define F_COUNT    'n' /* u32 */
#define F_BODY     'b' /* the rest of the input */

typedef struct {
    const char *fields;
    uint8_t flags;  /* the flag bits the kind has */
    uint8_t status; /* the largest status */
} format_t;

static const format_t formats[WR_REMOTE_KIND_LAST - WR_REMOTE_PUBLISH + 1] = {
    [WR_REMOTE_PUBLISH - WR_REMOTE_PUBLISH] = {"ivqxkhb", 0, 0},
    [WR_REMOTE_CONFIRM - WR_REMOTE_PUBLISH] = {"is", 0, WR_REMOTE_NACK},
    [WR_REMOTE_CONSUME - WR_REMOTE_PUBLISH] = {"ivqpfrca", WR_REMOTE_NO_ACK | WR_REMOTE_EXCLUSIVE, 0},
    [WR_REMOTE_CONSUME_OK - WR_REMOTE_PUBLISH] = {"is", 0, WR_REMOTE_STATUS_LAST},
    [WR_REMOTE_CANCEL - WR_REMOTE_PUBLISH] = {"i", 0, 0},
    [WR_REMOTE_CANCELLED - WR_REMOTE_PUBLISH] = {"i", 0, 0},
    [WR_REMOTE_DELIVER - WR_REMOTE_PUBLISH] = {"itfxkhb", WR_REMOTE_REDELIVERED, 0},
    [WR_REMOTE_SETTLE - WR_REMOTE_PUBLISH] = {"itwf", WR_REMOTE_MULTIPLE, 0},
    [WR_REMOTE_CREDIT - WR_REMOTE_PUBLISH] = {"ic", 0, 0},
    [WR_REMOTE_PURGE - WR_REMOTE_PUBLISH] = {"tvq", 0, 0},
    [WR_REMOTE_GET - WR_REMOTE_PUBLISH] = {"itvqf", WR_REMOTE_NO_ACK, 0},
    [WR_REMOTE_GET_OK - WR_REMOTE_PUBLISH] = {"itsdnfxkhb", WR_REMOTE_REDELIVERED, WR_REMOTE_GET_STATUS_LAST},
    [WR_REMOTE_PURGE_OK - WR_REMOTE_PUBLISH] = {"tsn", 0, WR_REMOTE_GET_STATUS_LAST},
};

static const format_t *format_of(uint8_t kind)
{
    if (kind < WR_REMOTE_PUBLISH || kind > WR_REMOTE_KIND_LAST)
        return NULL;
    return &formats[kind - WR_REMOTE_PUBLISH];
}

/* ---------------------------------------------------------------- encode */

static bool put_short(wr_buf_t *b, wr_bytes_t s)
{
    if (s.len > 255)
        return false;
    wr_put_shortstr(b, s);
    return true;
}

static bool put_field(wr_buf_t *b, char f, const wr_remote_msg_t *m)
{
    switch (f) {
    case F_ID:
        wr_buf_put_u64(b, m->id);
        return true;
    case F_TAG:
        wr_buf_put_u64(b, m->tag);
        return true;
    case F_VHOST:
        return put_short(b, m->vhost);
    case F_QUEUE:
        return put_short(b, m->queue);
    case F_EXCHANGE:
        return put_short(b, m->exchange);
    case F_RKEY:
        return put_short(b, m->routing_key);
    case F_HEADER:
        wr_put_longstr(b, m->header);
        return true;
    case F_ARGS:
        wr_put_longstr(b, m->args);
        return true;
    case F_PREFETCH:
        wr_buf_put_u16(b, m->prefetch);
        return true;
    case F_FLAGS:
        wr_buf_put_u8(b, m->flags);
        return true;
    case F_PRIORITY:
        wr_buf_put_u32(b, (uint32_t)m->priority);
        return true;
    case F_CREDIT:
        wr_buf_put_u32(b, m->credit);
        return true;
    case F_STATUS:
        wr_buf_put_u8(b, m->status);
        return true;
    case F_HOW:
        wr_buf_put_u8(b, m->how);
        return true;
    case F_DELIVERY:
        wr_buf_put_u64(b, m->delivery);
        return true;
    case F_COUNT:
        wr_buf_put_u32(b, m->count);
        return true;
    default:
        return true; /* F_BODY: the caller's second part */
    }
}

bool wr_remote_wire_encode(wr_buf_t *b, const wr_remote_msg_t *m)
{
    const format_t *fmt = format_of(m->kind);

    if (fmt == NULL)
        return false;
    for (const char *f = fmt->fields; *f; f++)
        if (!put_field(b, *f, m))
            return false;
    return wr_buf_ok(b);
}

/* ---------------------------------------------------------------- decode */

static bool rd_name(wr_cursor_t *c, wr_bytes_t *out)
{
    return wr_rd_shortstr(c, out) && out->len > 0;
}

static bool rd_u8_max(wr_cursor_t *c, uint8_t max, uint8_t *out)
{
    return wr_rd_u8(c, out) && *out <= max;
}

static bool rd_rest(wr_cursor_t *c, wr_bytes_t *out)
{
    return wr_rd_bytes(c, wr_cursor_left(c), out);
}

static bool rd_field(wr_cursor_t *c, char f, const format_t *fmt, wr_remote_msg_t *m)
{
    uint32_t u;

    switch (f) {
    case F_ID:
        return wr_rd_u64(c, &m->id) && (m->id != 0 || m->kind == WR_REMOTE_PUBLISH);
    case F_TAG:
        return wr_rd_u64(c, &m->tag);
    case F_VHOST:
        return rd_name(c, &m->vhost);
    case F_QUEUE:
        return rd_name(c, &m->queue);
    case F_EXCHANGE:
        return wr_rd_shortstr(c, &m->exchange);
    case F_RKEY:
        return wr_rd_shortstr(c, &m->routing_key);
    case F_HEADER:
        return wr_rd_longstr(c, &m->header);
    case F_ARGS:
        return wr_rd_longstr(c, &m->args);
    case F_PREFETCH:
        return wr_rd_u16(c, &m->prefetch);
    case F_FLAGS:
        return wr_rd_u8(c, &m->flags) && (m->flags & ~fmt->flags) == 0;
    case F_PRIORITY:
        return wr_rd_u32(c, &u) && ((m->priority = (int32_t)u), true);
    case F_CREDIT:
        return wr_rd_u32(c, &m->credit);
    case F_STATUS:
        return rd_u8_max(c, fmt->status, &m->status);
    case F_HOW:
        return rd_u8_max(c, WR_SETTLE_RELEASE, &m->how);
    case F_DELIVERY:
        return wr_rd_u64(c, &m->delivery);
    case F_COUNT:
        return wr_rd_u32(c, &m->count);
    default:
        return rd_rest(c, &m->body);
    }
}

int wr_remote_wire_decode(uint8_t kind, wr_bytes_t body, wr_remote_msg_t *m)
{
    const format_t *fmt = format_of(kind);
    wr_cursor_t c = wr_cursor(body);

    *m = (wr_remote_msg_t){.kind = kind};
    if (fmt == NULL)
        return WR_EUNKNOWN;
    for (const char *f = fmt->fields; *f; f++)
        if (!rd_field(&c, *f, fmt, m))
            return WR_ESYNTAX;
    return wr_cursor_left(&c) == 0 ? WR_OK : WR_ESYNTAX;
}
