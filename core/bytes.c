/* SPDX-License-Identifier: MIT */
/* Borrowed byte strings: the one helper that allocates. */
#include "bytes.h"

#include <stdlib.h>

char *wr_bytes_dup(wr_bytes_t b)
{
    char *s = malloc(b.len + 1);

    if (s == NULL)
        return NULL;
    if (b.len > 0)
        memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    return s;
}
