/* SPDX-License-Identifier: MIT */
/*
 * A borrowed byte string: pointer + length, never NUL-terminated, never owned.
 * Decoders hand these out pointing into the frame they decoded, so they live
 * only as long as that frame; copy (wr_bytes_dup) to keep one.
 */
#ifndef WR_CORE_BYTES_H
#define WR_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t len;
} wr_bytes_t;

#define WR_BYTES_LIT(s) ((wr_bytes_t){(const uint8_t *)(s), sizeof(s) - 1})

static inline wr_bytes_t wr_bytes_str(const char *s)
{
    return (wr_bytes_t){(const uint8_t *)s, strlen(s)};
}

static inline bool wr_bytes_eq(wr_bytes_t a, wr_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static inline bool wr_bytes_eq_str(wr_bytes_t a, const char *s)
{
    return wr_bytes_eq(a, wr_bytes_str(s));
}

/* Bytewise order, a prefix first (Erlang's order of binaries): <0, 0 or >0. */
static inline int wr_bytes_cmp(wr_bytes_t a, wr_bytes_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.data, b.data, n) : 0;

    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static inline bool wr_bytes_has_prefix(wr_bytes_t a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.data, prefix, n) == 0;
}

/* Returns a malloc'd NUL-terminated copy, or NULL on allocation failure. */
char *wr_bytes_dup(wr_bytes_t b);

#endif
