/* SPDX-License-Identifier: MIT */
/*
 * Lowercase hexadecimal encoding and its strict decoder (see hex.h).
 */
#include "hex.h"

static int digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void wr_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

bool wr_hex_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 2 != 0)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = digit(in[2 * i]), lo = digit(in[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
