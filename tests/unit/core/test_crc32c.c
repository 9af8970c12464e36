/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/crc32c.c: the standard check values, the hardware
 * path against the software one at every length and alignment, and
 * incremental updates.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "tests/unit/runner.h"

START_TEST(check_values)
{
    uint8_t zeros[32] = {0}, ones[32];

    memset(ones, 0xff, sizeof(ones));
    /* RFC 3720 appendix B.4 and the CRC catalogue's check value. */
    ck_assert_uint_eq(wr_crc32c_update(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(wr_crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(wr_crc32c_update(0, zeros, sizeof(zeros)), 0x8A9136AAu);
    ck_assert_uint_eq(wr_crc32c_update(0, ones, sizeof(ones)), 0x62A8AB43u);
    ck_assert_uint_eq(wr_crc32c_update(0, "", 0), 0);
}
END_TEST

START_TEST(hardware_matches_software)
{
    uint8_t buf[600];

    srand(7);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand();
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len + align <= sizeof(buf); len++) {
            uint32_t seed = (uint32_t)(len * 2654435761u);
            if (wr_crc32c_update(seed, buf + align, len) != wr_crc32c_update_sw(seed, buf + align, len))
                ck_abort_msg("mismatch at align %zu len %zu", align, len);
        }
    }
}
END_TEST

START_TEST(incremental)
{
    const char *text = "the quick brown fox jumps over the lazy dog, twice over";
    size_t n = strlen(text);
    uint32_t whole = wr_crc32c_update(0, text, n);

    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t c = wr_crc32c_update(0, text, cut);
        ck_assert_uint_eq(wr_crc32c_update(c, text + cut, n - cut), whole);
        c = wr_crc32c_update_sw(0, text, cut);
        ck_assert_uint_eq(wr_crc32c_update_sw(c, text + cut, n - cut), whole);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-crc32c");
    TCase *tc = tcase_create("crc32c");

    tcase_add_test(tc, check_values);
    tcase_add_test(tc, hardware_matches_software);
    tcase_add_test(tc, incremental);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
