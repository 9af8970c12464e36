/* SPDX-License-Identifier: MIT */
/*
 * Bounds-checked big-endian reads over a borrowed buffer, and the AMQP
 * string writers. Every check compares a wanted length against what is left
 * (never `pos + n <= end`), so no length can make the arithmetic overflow.
 */
#include "core/cursor.h"

bool wr_rd_u8(wr_cursor_t *c, uint8_t *out)
{
    if (wr_cursor_left(c) < 1)
        return false;
    *out = c->pos[0];
    c->pos += 1;
    return true;
}

bool wr_rd_u16(wr_cursor_t *c, uint16_t *out)
{
    if (wr_cursor_left(c) < 2)
        return false;
    *out = (uint16_t)(c->pos[0] << 8 | c->pos[1]);
    c->pos += 2;
    return true;
}

bool wr_rd_u32(wr_cursor_t *c, uint32_t *out)
{
    if (wr_cursor_left(c) < 4)
        return false;
    *out = (uint32_t)c->pos[0] << 24 | (uint32_t)c->pos[1] << 16 | (uint32_t)c->pos[2] << 8 | c->pos[3];
    c->pos += 4;
    return true;
}

bool wr_rd_u64(wr_cursor_t *c, uint64_t *out)
{
    uint64_t v = 0;

    if (wr_cursor_left(c) < 8)
        return false;
    for (int i = 0; i < 8; i++)
        v = v << 8 | c->pos[i];
    *out = v;
    c->pos += 8;
    return true;
}

bool wr_rd_bytes(wr_cursor_t *c, size_t n, wr_bytes_t *out)
{
    if (n > wr_cursor_left(c))
        return false;
    *out = (wr_bytes_t){c->pos, n};
    if (n > 0) /* pos is NULL in a cursor over {NULL, 0} */
        c->pos += n;
    return true;
}

bool wr_rd_shortstr(wr_cursor_t *c, wr_bytes_t *out)
{
    wr_cursor_t save = *c;
    uint8_t n;

    if (wr_rd_u8(c, &n) && wr_rd_bytes(c, n, out))
        return true;
    *c = save; /* a failed read consumes nothing, length octet included */
    return false;
}

bool wr_rd_longstr(wr_cursor_t *c, wr_bytes_t *out)
{
    wr_cursor_t save = *c;
    uint32_t n;

    if (wr_rd_u32(c, &n) && wr_rd_bytes(c, n, out))
        return true;
    *c = save;
    return false;
}

void wr_put_shortstr(wr_buf_t *b, wr_bytes_t s)
{
    size_t n = s.len > 255 ? 255 : s.len;

    wr_buf_put_u8(b, (uint8_t)n);
    wr_buf_put(b, s.data, n);
}

void wr_put_longstr(wr_buf_t *b, wr_bytes_t s)
{
    /* A longer string has no wire form; fail the buffer rather than write a
     * length that disagrees with the bytes that follow. */
    if (s.len > UINT32_MAX) {
        b->oom = true;
        return;
    }
    wr_buf_put_u32(b, (uint32_t)s.len);
    wr_buf_put(b, s.data, s.len);
}
