/* SPDX-License-Identifier: MIT */
/*
 * CRC32C, reflected polynomial 0x82F63B78. The software path is table-driven
 * slicing-by-8 (eight bytes per step, tables built once under pthread_once);
 * the hardware path uses SSE4.2's crc32 instruction, chosen at run time from
 * the CPU's feature bits so one binary runs everywhere.
 */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

/* Built once by table_build, then read-only. */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int t = 1; t < 8; t++)
            table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
    }
}

uint32_t wr_crc32c_update_sw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t c = ~crc;

    pthread_once(&table_once, table_build);
    while (n >= 8) {
        /* Little-endian load by hand: the layout of the tables assumes the
         * first byte of the block meets the low byte of the running CRC. */
        uint32_t lo =
            c ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
        uint32_t hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c >> 8) ^ table[0][(c ^ *b++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;

    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8); /* unaligned-safe; x86 is little-endian like the CRC */
        c = __builtin_ia32_crc32di(c, v);
        b += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}
#endif

/* Chosen once, then read-only: which implementation this CPU runs. */
static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void impl_pick(void)
{
    crc_impl = wr_crc32c_update_sw;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc_impl = crc32c_hw;
#endif
}

uint32_t wr_crc32c_update(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&impl_once, impl_pick);
    return crc_impl(crc, p, n);
}
