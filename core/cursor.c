/* SPDX-License-Identifier: MIT */
/*
 * The AMQP string writers (the bounds-checked readers are inline in
 * cursor.h).
 */
#include "core/cursor.h"

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
