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

bool wr_buf_grow(wr_buf_t *b, size_t extra)
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

void wr_buf_patch_u32(wr_buf_t *b, size_t at, uint32_t v)
{
    if (b->oom || at > b->len || b->len - at < 4)
        return;
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}
