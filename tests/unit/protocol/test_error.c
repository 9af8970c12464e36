/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/error.c: reply names, the soft/hard split from the
 * spec, and reply-text formatting and truncation.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/error.h"
#include "protocol/methods.h"
#include "tests/unit/runner.h"

START_TEST(test_names)
{
    ck_assert_str_eq(wr_reply_name(WR_AMQP_NOT_FOUND), "NOT_FOUND");
    ck_assert_str_eq(wr_reply_name(WR_AMQP_PRECONDITION_FAILED), "PRECONDITION_FAILED");
    ck_assert_str_eq(wr_reply_name(WR_AMQP_REPLY_SUCCESS), "REPLY_SUCCESS");
    ck_assert_str_eq(wr_reply_name(WR_AMQP_INTERNAL_ERROR), "INTERNAL_ERROR");
    ck_assert_str_eq(wr_reply_name(999), "UNKNOWN");
}
END_TEST

START_TEST(test_hard_soft)
{
    static const uint16_t hard[] = {320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541};
    static const uint16_t soft[] = {200, 311, 312, 313, 403, 404, 405, 406};

    for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++)
        ck_assert_msg(wr_amqp_error_is_hard(hard[i]), "%u should be hard", hard[i]);
    for (size_t i = 0; i < sizeof(soft) / sizeof(soft[0]); i++)
        ck_assert_msg(!wr_amqp_error_is_hard(soft[i]), "%u should be soft", soft[i]);
}
END_TEST

START_TEST(test_set)
{
    wr_amqp_error_t e;

    wr_amqp_error_set(&e, WR_AMQP_NOT_FOUND, WR_QUEUE_DECLARE, "no queue '%s' in vhost '%s'", "q", "/");
    ck_assert_uint_eq(e.code, 404);
    ck_assert_uint_eq(e.class_id, WR_CLASS_QUEUE);
    ck_assert_uint_eq(e.method_id, 10);
    ck_assert_str_eq(e.text, "NOT_FOUND - no queue 'q' in vhost '/'");
    wr_amqp_error_set(&e, WR_AMQP_FRAME_ERROR, 0, "bad frame");
    ck_assert_uint_eq(e.class_id, 0);
    ck_assert_uint_eq(e.method_id, 0);
    ck_assert_str_eq(e.text, "FRAME_ERROR - bad frame");
}
END_TEST

START_TEST(test_truncation_keeps_utf8_whole)
{
    char arg[400];
    wr_amqp_error_t e;

    memset(arg, 'a', sizeof(arg) - 1);
    arg[sizeof(arg) - 1] = '\0';
    wr_amqp_error_set(&e, WR_AMQP_NOT_FOUND, 0, "%s", arg);
    ck_assert_uint_eq(strlen(e.text), 255);

    /* "NOT_FOUND - " is 12 bytes; 242 more fill 254, leaving one byte for a
     * two-byte character that does not fit: it must go entirely. */
    memset(arg, 'a', 242);
    strcpy(arg + 242, "\xc3\xa9tail");
    wr_amqp_error_set(&e, WR_AMQP_NOT_FOUND, 0, "%s", arg);
    ck_assert_uint_eq(strlen(e.text), 254);
    ck_assert_int_eq(e.text[253], 'a');

    /* A character that ends exactly at byte 255 stays. */
    memset(arg, 'a', 241);
    strcpy(arg + 241, "\xc3\xa9tail");
    wr_amqp_error_set(&e, WR_AMQP_NOT_FOUND, 0, "%s", arg);
    ck_assert_uint_eq(strlen(e.text), 255);
    ck_assert_int_eq((unsigned char)e.text[254], 0xa9);

    /* A four-byte character cut after two bytes. */
    memset(arg, 'a', 241);
    strcpy(arg + 241, "\xf0\x9f\x90\x87");
    wr_amqp_error_set(&e, WR_AMQP_NOT_FOUND, 0, "%s", arg);
    ck_assert_uint_eq(strlen(e.text), 253);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-error");
    TCase *tc = tcase_create("error");

    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_hard_soft);
    tcase_add_test(tc, test_set);
    tcase_add_test(tc, test_truncation_keeps_utf8_whole);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
