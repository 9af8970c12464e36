/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/cursor.c: big-endian reads, reads that would cross
 * the end consume nothing, and the string writers' limits.
 */
#include <check.h>
#include <stdlib.h>

#include "core/cursor.h"
#include "tests/unit/runner.h"

static const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};

START_TEST(test_reads_big_endian)
{
    wr_cursor_t c = wr_cursor((wr_bytes_t){data, sizeof(data)});
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    ck_assert(wr_rd_u8(&c, &u8));
    ck_assert_uint_eq(u8, 0x01);
    ck_assert(wr_rd_u16(&c, &u16));
    ck_assert_uint_eq(u16, 0x0203);
    ck_assert(wr_rd_u32(&c, &u32));
    ck_assert_uint_eq(u32, 0x04050607);
    ck_assert_uint_eq(wr_cursor_left(&c), 2);
    c = wr_cursor((wr_bytes_t){data, sizeof(data)});
    ck_assert(wr_rd_u64(&c, &u64));
    ck_assert_uint_eq(u64, 0x0102030405060708ull);
    ck_assert_uint_eq(wr_cursor_left(&c), 1);
}
END_TEST

START_TEST(test_short_reads_consume_nothing)
{
    /* Every width, at every length shorter than it. */
    for (size_t avail = 0; avail < 8; avail++) {
        wr_cursor_t c = wr_cursor((wr_bytes_t){data, avail});
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        wr_bytes_t b;

        ck_assert(!wr_rd_u64(&c, &u64));
        if (avail < 4)
            ck_assert(!wr_rd_u32(&c, &u32));
        if (avail < 2)
            ck_assert(!wr_rd_u16(&c, &u16));
        ck_assert(!wr_rd_bytes(&c, avail + 1, &b));
        ck_assert_ptr_eq(c.pos, data);
    }
}
END_TEST

START_TEST(test_rd_bytes_huge_length)
{
    wr_cursor_t c = wr_cursor((wr_bytes_t){data, sizeof(data)});
    wr_bytes_t b;

    ck_assert(!wr_rd_bytes(&c, SIZE_MAX, &b));
    ck_assert(wr_rd_bytes(&c, sizeof(data), &b));
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(wr_cursor_left(&c), 0);
}
END_TEST

START_TEST(test_empty_null_cursor)
{
    /* A default-initialised wr_bytes_t is {NULL, 0}; reading it must be
     * harmless (UBSan flags NULL + 0 under clang). */
    wr_cursor_t c = wr_cursor((wr_bytes_t){NULL, 0});
    wr_bytes_t b;
    uint8_t u8;

    ck_assert_uint_eq(wr_cursor_left(&c), 0);
    ck_assert(!wr_rd_u8(&c, &u8));
    ck_assert(!wr_rd_shortstr(&c, &b));
    ck_assert(wr_rd_bytes(&c, 0, &b));
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_null(c.pos);
}
END_TEST

START_TEST(test_strings)
{
    static const uint8_t wire[] = {3, 'a', 'b', 'c', 0, 0, 0, 2, 'x', 'y'};
    wr_cursor_t c = wr_cursor((wr_bytes_t){wire, sizeof(wire)});
    wr_bytes_t s;

    ck_assert(wr_rd_shortstr(&c, &s));
    ck_assert(wr_bytes_eq_str(s, "abc"));
    ck_assert_ptr_eq(s.data, wire + 1); /* borrowed, not copied */
    ck_assert(wr_rd_longstr(&c, &s));
    ck_assert(wr_bytes_eq_str(s, "xy"));
    ck_assert_uint_eq(wr_cursor_left(&c), 0);
}
END_TEST

START_TEST(test_truncated_strings_consume_nothing)
{
    static const uint8_t shortstr[] = {4, 'a', 'b', 'c'};
    static const uint8_t longstr[] = {0xff, 0xff, 0xff, 0xff, 'a'};
    wr_cursor_t c = wr_cursor((wr_bytes_t){shortstr, sizeof(shortstr)});
    wr_bytes_t s;

    ck_assert(!wr_rd_shortstr(&c, &s));
    ck_assert_ptr_eq(c.pos, shortstr);
    c = wr_cursor((wr_bytes_t){longstr, sizeof(longstr)});
    ck_assert(!wr_rd_longstr(&c, &s));
    ck_assert_ptr_eq(c.pos, longstr);
    c = wr_cursor((wr_bytes_t){longstr, 3});
    ck_assert(!wr_rd_longstr(&c, &s));
    ck_assert_ptr_eq(c.pos, longstr);
}
END_TEST

START_TEST(test_writers)
{
    wr_buf_t b = WR_BUF_INIT;
    uint8_t big[300];
    wr_cursor_t c;
    wr_bytes_t s;

    memset(big, 'q', sizeof(big));
    wr_put_shortstr(&b, (wr_bytes_t){big, sizeof(big)});
    wr_put_longstr(&b, (wr_bytes_t){big, sizeof(big)});
    wr_put_shortstr(&b, WR_BYTES_LIT(""));
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, 1 + 255 + 4 + 300 + 1);
    c = wr_cursor((wr_bytes_t){b.data, b.len});
    ck_assert(wr_rd_shortstr(&c, &s));
    ck_assert_uint_eq(s.len, 255); /* truncated to what a shortstr can hold */
    ck_assert(wr_rd_longstr(&c, &s));
    ck_assert_uint_eq(s.len, 300);
    ck_assert(wr_rd_shortstr(&c, &s));
    ck_assert_uint_eq(s.len, 0);
    ck_assert_uint_eq(wr_cursor_left(&c), 0);
    wr_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-cursor");
    TCase *tc = tcase_create("cursor");

    tcase_add_test(tc, test_reads_big_endian);
    tcase_add_test(tc, test_short_reads_consume_nothing);
    tcase_add_test(tc, test_rd_bytes_huge_length);
    tcase_add_test(tc, test_empty_null_cursor);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_truncated_strings_consume_nothing);
    tcase_add_test(tc, test_writers);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
