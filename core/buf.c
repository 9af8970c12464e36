/* SPDX-License-Identifier: MIT */
/* Growable encoder buffer; see buf.h for the sticky-oom contract. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void wr_buf_free(wr_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void wr_buf_reset(wr_buf_t *b)
{
    b->len = 0;
    b->oom = false;
}

bool wr_buf_reserve(wr_buf_t *b, size_t extra)
{
    size_t cap;
    uint8_t *p;

    if (b->oom)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void wr_buf_put(wr_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !wr_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void wr_buf_put_u8(wr_buf_t *b, uint8_t v)
{
    wr_buf_put(b, &v, 1);
}

void wr_buf_put_u16(wr_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wr_buf_put(b, x, 2);
}

void wr_buf_put_u32(wr_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    wr_buf_put(b, x, 4);
}

void wr_buf_put_u64(wr_buf_t *b, uint64_t v)
{
    wr_buf_put_u32(b, (uint32_t)(v >> 32));
    wr_buf_put_u32(b, (uint32_t)v);
}

void wr_buf_patch_u32(wr_buf_t *b, size_t at, uint32_t v)
{
    if (b->oom || at > b->len || b->len - at < 4)
        return;
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}
