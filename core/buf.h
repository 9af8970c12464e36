/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer for encoders. Writes never fail individually: an
 * allocation failure sets `oom` and later writes become no-ops, so an encoder
 * checks once at the end (wr_buf_ok). Big-endian integer writers match AMQP.
 */
#ifndef WR_CORE_BUF_H
#define WR_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} wr_buf_t;

#define WR_BUF_INIT                                                                                          \
    {                                                                                                        \
        NULL, 0, 0, false                                                                                    \
    }

void wr_buf_free(wr_buf_t *b);  /* frees data; the struct may be reused */
void wr_buf_reset(wr_buf_t *b); /* len = 0, keeps capacity, clears oom */
/* Grows the buffer for `extra` more bytes; the out-of-line half of
 * wr_buf_reserve. */
bool wr_buf_grow(wr_buf_t *b, size_t extra);
/* Overwrite 4 bytes at `at` (used to back-patch a length prefix). */
void wr_buf_patch_u32(wr_buf_t *b, size_t at, uint32_t v);

static inline bool wr_buf_ok(const wr_buf_t *b)
{
    return !b->oom;
}

/*
 * The writers are inline: a delivery is encoded from a dozen small writes,
 * and as calls they were a tenth of the broker's CPU for 16-byte messages.
 * Only growing the buffer is a call.
 */
static inline bool wr_buf_reserve(wr_buf_t *b, size_t extra)
{
    if (!b->oom && extra <= b->cap - b->len)
        return true;
    return wr_buf_grow(b, extra);
}

static inline void wr_buf_put(wr_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !wr_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void wr_buf_put_u8(wr_buf_t *b, uint8_t v)
{
    if (!wr_buf_reserve(b, 1))
        return;
    b->data[b->len++] = v;
}

static inline void wr_buf_put_u16(wr_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wr_buf_put(b, x, 2);
}

static inline void wr_buf_put_u32(wr_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    wr_buf_put(b, x, 4);
}

static inline void wr_buf_put_u64(wr_buf_t *b, uint64_t v)
{
    wr_buf_put_u32(b, (uint32_t)(v >> 32));
    wr_buf_put_u32(b, (uint32_t)v);
}

#endif
