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
bool wr_buf_reserve(wr_buf_t *b, size_t extra);
void wr_buf_put(wr_buf_t *b, const void *p, size_t n);
void wr_buf_put_u8(wr_buf_t *b, uint8_t v);
void wr_buf_put_u16(wr_buf_t *b, uint16_t v);
void wr_buf_put_u32(wr_buf_t *b, uint32_t v);
void wr_buf_put_u64(wr_buf_t *b, uint64_t v);
/* Overwrite 4 bytes at `at` (used to back-patch a length prefix). */
void wr_buf_patch_u32(wr_buf_t *b, size_t at, uint32_t v);

static inline bool wr_buf_ok(const wr_buf_t *b)
{
    return !b->oom;
}

#endif
