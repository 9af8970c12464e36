/* SPDX-License-Identifier: MIT */
/*
 * The method codec: one decoder and one encoder that walk the per-method
 * field descriptors generated into method_table.c. Strings and tables are
 * borrowed from the payload; every table is validated on decode.
 */
#include "protocol/methods.h"

#include <stddef.h>
#include <string.h>

#include "core/status.h"
#include "core/cursor.h"
#include "protocol/method_desc.h"
#include "protocol/table.h"

static const wr_method_desc_t *method_find(uint32_t id)
{
    size_t lo = 0, hi = wr_method_ndescs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wr_method_descs[mid].id == id)
            return &wr_method_descs[mid];
        if (wr_method_descs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *wr_method_name(uint32_t id)
{
    const wr_method_desc_t *d = method_find(id);

    return d ? d->name : NULL;
}

bool wr_method_has_content(uint32_t id)
{
    const wr_method_desc_t *d = method_find(id);

    return d != NULL && d->content;
}

static bool decode_field(wr_cursor_t *c, uint8_t kind, void *p)
{
    wr_bytes_t *s = p;

    switch (kind) {
    case WR_FT_OCTET:
        return wr_rd_u8(c, p);
    case WR_FT_SHORT:
        return wr_rd_u16(c, p);
    case WR_FT_LONG:
        return wr_rd_u32(c, p);
    case WR_FT_LONGLONG:
        return wr_rd_u64(c, p);
    case WR_FT_SHORTSTR:
        return wr_rd_shortstr(c, s);
    case WR_FT_LONGSTR:
        return wr_rd_longstr(c, s);
    default: /* WR_FT_TABLE; WR_FT_BIT never gets here */
        return wr_rd_longstr(c, s) && wr_table_validate(*s, WR_TABLE_MAX_DEPTH) == WR_OK;
    }
}

int wr_method_decode(wr_bytes_t payload, wr_method_t *out)
{
    wr_cursor_t c = wr_cursor(payload);
    const wr_method_desc_t *d;
    uint16_t class_id, method_id;
    uint8_t bits = 0;
    unsigned nbit = 8; /* next bit within `bits`; 8 = read a new octet first */

    memset(out, 0, sizeof(*out));
    if (!wr_rd_u16(&c, &class_id) || !wr_rd_u16(&c, &method_id))
        return WR_ESYNTAX;
    out->id = (uint32_t)class_id << 16 | method_id;
    d = method_find(out->id);
    if (d == NULL)
        return WR_EUNKNOWN;
    for (unsigned i = 0; i < d->nfields; i++) {
        const wr_method_field_t *f = &d->fields[i];
        void *p = (char *)&out->u + f->offset;

        if (f->kind != WR_FT_BIT) {
            nbit = 8;
            if (!decode_field(&c, f->kind, p))
                return WR_ESYNTAX;
            continue;
        }
        /* Consecutive bits share octets, least significant bit first. */
        if (nbit == 8) {
            if (!wr_rd_u8(&c, &bits))
                return WR_ESYNTAX;
            nbit = 0;
        }
        *(bool *)p = (bits >> nbit++) & 1;
    }
    if (wr_cursor_left(&c) != 0)
        return WR_ESYNTAX;
    return WR_OK;
}

static void encode_field(wr_buf_t *b, uint8_t kind, const void *p)
{
    const wr_bytes_t *s = p;

    switch (kind) {
    case WR_FT_OCTET:
        wr_buf_put_u8(b, *(const uint8_t *)p);
        break;
    case WR_FT_SHORT:
        wr_buf_put_u16(b, *(const uint16_t *)p);
        break;
    case WR_FT_LONG:
        wr_buf_put_u32(b, *(const uint32_t *)p);
        break;
    case WR_FT_LONGLONG:
        wr_buf_put_u64(b, *(const uint64_t *)p);
        break;
    case WR_FT_SHORTSTR:
        wr_put_shortstr(b, *s);
        break;
    default: /* WR_FT_LONGSTR and WR_FT_TABLE share the wire form; WR_FT_BIT never gets here */
        wr_put_longstr(b, *s);
        break;
    }
}

void wr_method_encode(wr_buf_t *b, const wr_method_t *m)
{
    const wr_method_desc_t *d = method_find(m->id);
    uint8_t bits = 0;
    unsigned nbit = 0; /* bits collected in `bits` and not yet written */

    if (d == NULL) {
        b->oom = true;
        return;
    }
    wr_buf_put_u16(b, WR_METHOD_CLASS(d->id));
    wr_buf_put_u16(b, WR_METHOD_INDEX(d->id));
    for (unsigned i = 0; i < d->nfields; i++) {
        const wr_method_field_t *f = &d->fields[i];
        const void *p = (const char *)&m->u + f->offset;

        if (f->kind == WR_FT_BIT) {
            if (nbit == 8) {
                wr_buf_put_u8(b, bits);
                bits = 0;
                nbit = 0;
            }
            bits |= (uint8_t)((*(const bool *)p ? 1u : 0u) << nbit++);
            continue;
        }
        if (nbit > 0) {
            wr_buf_put_u8(b, bits);
            bits = 0;
            nbit = 0;
        }
        encode_field(b, f->kind, p);
    }
    if (nbit > 0)
        wr_buf_put_u8(b, bits);
}
