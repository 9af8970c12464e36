/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/props.c: content headers with all fourteen basic
 * properties and with none round-trip byte for byte; truncation, trailing
 * bytes, a continuation flag word and bad header tables are refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/props.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

/* Written out by hand: class 60, weight 0, body size 256, flags 0xfffc, then
 * every property in flag order. */
static const char all_props[] = "\x00\x3c"
                                "\x00\x00"
                                "\x00\x00\x00\x00\x00\x00\x01\x00"
                                "\xff\xfc"
                                "\x0a"
                                "text/plain"
                                "\x05"
                                "utf-8"
                                "\x00\x00\x00\x04"
                                "\x01"
                                "ht\x01"
                                "\x02"
                                "\x09"
                                "\x03"
                                "cid"
                                "\x02"
                                "rq"
                                "\x05"
                                "60000"
                                "\x03"
                                "mid"
                                "\x00\x00\x00\x00\x65\x53\xf1\x00"
                                "\x01"
                                "t"
                                "\x05"
                                "guest"
                                "\x03"
                                "app"
                                "\x01"
                                "c";

static const char no_props[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00";

#define ALL_LEN  (sizeof(all_props) - 1)
#define NONE_LEN (sizeof(no_props) - 1)

static wr_bytes_t bytes(const char *s, size_t n)
{
    return (wr_bytes_t){(const uint8_t *)s, n};
}

START_TEST(test_all_properties)
{
    wr_props_t p;
    wr_buf_t b = WR_BUF_INIT;
    wr_value_t v;

    ck_assert_int_eq(wr_props_decode(bytes(all_props, ALL_LEN), &p), WR_OK);
    ck_assert_uint_eq(p.class_id, 60);
    ck_assert_uint_eq(p.weight, 0);
    ck_assert_uint_eq(p.body_size, 256);
    ck_assert_uint_eq(p.flags, 0xfffc);
    ck_assert(wr_bytes_eq_str(p.content_type, "text/plain"));
    ck_assert(wr_bytes_eq_str(p.content_encoding, "utf-8"));
    ck_assert_uint_eq(p.headers.len, 4);
    ck_assert(wr_table_get(p.headers, "h", &v));
    ck_assert(v.type == 't' && v.v.b);
    ck_assert_uint_eq(p.delivery_mode, 2);
    ck_assert_uint_eq(p.priority, 9);
    ck_assert(wr_bytes_eq_str(p.correlation_id, "cid"));
    ck_assert(wr_bytes_eq_str(p.reply_to, "rq"));
    ck_assert(wr_bytes_eq_str(p.expiration, "60000"));
    ck_assert(wr_bytes_eq_str(p.message_id, "mid"));
    ck_assert_uint_eq(p.timestamp, 1700000000);
    ck_assert(wr_bytes_eq_str(p.type, "t"));
    ck_assert(wr_bytes_eq_str(p.user_id, "guest"));
    ck_assert(wr_bytes_eq_str(p.app_id, "app"));
    ck_assert(wr_bytes_eq_str(p.cluster_id, "c"));

    wr_props_encode(&b, &p);
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, ALL_LEN);
    ck_assert_mem_eq(b.data, all_props, ALL_LEN);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_no_properties)
{
    wr_props_t p;
    wr_buf_t b = WR_BUF_INIT;

    ck_assert_int_eq(wr_props_decode(bytes(no_props, NONE_LEN), &p), WR_OK);
    ck_assert_uint_eq(p.body_size, 5);
    ck_assert_uint_eq(p.flags, 0);
    ck_assert_uint_eq(p.content_type.len, 0);
    ck_assert_uint_eq(p.headers.len, 0);
    wr_props_encode(&b, &p);
    ck_assert_uint_eq(b.len, NONE_LEN);
    ck_assert_mem_eq(b.data, no_props, NONE_LEN);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_encode_only_flagged)
{
    /* Values without their flag are not written. */
    static const char want[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x10\x00\x02";
    wr_props_t p = {.class_id = 60,
                    .body_size = 1,
                    .flags = WR_PROP_DELIVERY_MODE,
                    .delivery_mode = 2,
                    .content_type = WR_BYTES_LIT("ignored"),
                    .priority = 4};
    wr_buf_t b = WR_BUF_INIT;

    wr_props_encode(&b, &p);
    ck_assert_uint_eq(b.len, sizeof(want) - 1);
    ck_assert_mem_eq(b.data, want, sizeof(want) - 1);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_truncated_rejected)
{
    wr_props_t p;

    for (size_t len = 0; len < ALL_LEN; len++)
        ck_assert_msg(wr_props_decode(bytes(all_props, len), &p) == WR_ESYNTAX, "prefix %zu accepted", len);
    for (size_t len = 0; len < NONE_LEN; len++)
        ck_assert_int_eq(wr_props_decode(bytes(no_props, len), &p), WR_ESYNTAX);
}
END_TEST

START_TEST(test_trailing_rejected)
{
    char longer[ALL_LEN + 1];
    wr_props_t p;

    memcpy(longer, all_props, ALL_LEN);
    longer[ALL_LEN] = 'x';
    ck_assert_int_eq(wr_props_decode(bytes(longer, ALL_LEN + 1), &p), WR_ESYNTAX);
    memcpy(longer, no_props, NONE_LEN);
    ck_assert_int_eq(wr_props_decode(bytes(longer, NONE_LEN + 1), &p), WR_ESYNTAX);
}
END_TEST

START_TEST(test_continuation_flag_rejected)
{
    static const char cont[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00";
    wr_props_t p;

    ck_assert_int_eq(wr_props_decode(bytes(cont, sizeof(cont) - 1), &p), WR_ESYNTAX);
    ck_assert_int_eq(wr_props_decode(bytes(cont, 14), &p), WR_ESYNTAX);
}
END_TEST

START_TEST(test_unused_flag_bit_ignored)
{
    static const char bit1[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02";
    wr_props_t p;
    wr_buf_t b = WR_BUF_INIT;

    ck_assert_int_eq(wr_props_decode(bytes(bit1, sizeof(bit1) - 1), &p), WR_OK);
    ck_assert_uint_eq(p.flags, 0);
    p.flags = 0x0003; /* neither bit is ever written */
    wr_props_encode(&b, &p);
    ck_assert_uint_eq(b.len, NONE_LEN);
    ck_assert_uint_eq(b.data[12], 0);
    ck_assert_uint_eq(b.data[13], 0);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_bad_headers)
{
    /* headers flag only, with a table holding an unknown tag, then one
     * whose declared length runs past the payload. */
    static const char unknown[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00"
                                  "\x00\x00\x00\x03\x01k?";
    static const char too_long[] = "\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00"
                                   "\x00\x00\x00\x09\x01kV";
    wr_buf_t b = WR_BUF_INIT;
    size_t marks[WR_TABLE_MAX_DEPTH + 1];
    wr_props_t p;

    ck_assert_int_eq(wr_props_decode(bytes(unknown, sizeof(unknown) - 1), &p), WR_EUNKNOWN);
    ck_assert_int_eq(wr_props_decode(bytes(too_long, sizeof(too_long) - 1), &p), WR_ESYNTAX);

    wr_buf_put(&b, unknown, 14);
    for (int i = 0; i <= WR_TABLE_MAX_DEPTH; i++) {
        marks[i] = wr_table_begin(&b);
        if (i < WR_TABLE_MAX_DEPTH) {
            wr_table_put_key(&b, "n");
            wr_buf_put_u8(&b, 'F');
        }
    }
    for (int i = WR_TABLE_MAX_DEPTH; i >= 0; i--)
        wr_table_end(&b, marks[i]);
    ck_assert_int_eq(wr_props_decode((wr_bytes_t){b.data, b.len}, &p), WR_EDEPTH);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_peek)
{
    uint16_t class_id = 0;
    uint64_t size = 0;

    ck_assert_int_eq(wr_props_peek(bytes(all_props, 12), &class_id, &size), WR_OK);
    ck_assert_uint_eq(class_id, 60);
    ck_assert_uint_eq(size, 256);
    ck_assert_int_eq(wr_props_peek(bytes(all_props, 11), &class_id, &size), WR_ESYNTAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-props");
    TCase *tc = tcase_create("props");

    tcase_add_test(tc, test_all_properties);
    tcase_add_test(tc, test_no_properties);
    tcase_add_test(tc, test_encode_only_flagged);
    tcase_add_test(tc, test_truncated_rejected);
    tcase_add_test(tc, test_trailing_rejected);
    tcase_add_test(tc, test_continuation_flag_rejected);
    tcase_add_test(tc, test_unused_flag_bit_ignored);
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_peek);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
