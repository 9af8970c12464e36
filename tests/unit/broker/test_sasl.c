/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/amqp/sasl.c: SASL PLAIN and AMQPLAIN responses, valid and
 * malformed (accepting exactly what RabbitMQ accepts), mechanism names and
 * the mechanisms offered on plain and TLS connections.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp/sasl.h"
#include "core/buf.h"
#include "core/status.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

START_TEST(test_plain_valid)
{
    wr_bytes_t user, pass;

    ck_assert_int_eq(wr_sasl_plain_parse(WR_BYTES_LIT("\0guest\0guest"), &user, &pass), WR_OK);
    ck_assert(wr_bytes_eq_str(user, "guest"));
    ck_assert(wr_bytes_eq_str(pass, "guest"));
    /* An empty password is a well-formed response (refused later). */
    ck_assert_int_eq(wr_sasl_plain_parse(WR_BYTES_LIT("\0guest\0"), &user, &pass), WR_OK);
    ck_assert(wr_bytes_eq_str(user, "guest"));
    ck_assert_uint_eq(pass.len, 0);
    ck_assert_int_eq(wr_sasl_plain_parse(WR_BYTES_LIT("\0\0x"), &user, &pass), WR_OK);
    ck_assert_uint_eq(user.len, 0);
    ck_assert(wr_bytes_eq_str(pass, "x"));
}
END_TEST

/* Every response RabbitMQ's PLAIN refuses as "response ... invalid". */
static const wr_bytes_t plain_bad[] = {
    {NULL, 0},
    {(const uint8_t *)"\0", 1},
    {(const uint8_t *)"guestguest", 10},
    {(const uint8_t *)"guest\0guest", 11},
    {(const uint8_t *)"authz\0guest\0guest", 17}, /* an authorization identity */
    {(const uint8_t *)"\0guest", 6},
    {(const uint8_t *)"\0guest\0guest\0", 13},
    {(const uint8_t *)"\0guest\0pa\0ss", 12},
};

START_TEST(test_plain_malformed)
{
    wr_bytes_t user, pass;

    ck_assert_int_eq(wr_sasl_plain_parse(plain_bad[_i], &user, &pass), WR_ESYNTAX);
}
END_TEST

/* A table's raw bytes (no length prefix) built with the table encoder. */
static wr_buf_t amqplain(const char *login_key, const char *login, const char *pass_key, const char *pass)
{
    wr_buf_t b = WR_BUF_INIT;
    size_t mark = wr_table_begin(&b);

    if (login_key)
        wr_table_put_str(&b, login_key, login);
    if (pass_key)
        wr_table_put_str(&b, pass_key, pass);
    wr_table_end(&b, mark);
    ck_assert(wr_buf_ok(&b));
    return b;
}

static wr_bytes_t raw_table(const wr_buf_t *b)
{
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

START_TEST(test_amqplain_valid)
{
    wr_buf_t b = amqplain("LOGIN", "guest", "PASSWORD", "secret");
    wr_bytes_t user, pass;

    ck_assert_int_eq(wr_sasl_amqplain_parse(raw_table(&b), &user, &pass), WR_OK);
    ck_assert(wr_bytes_eq_str(user, "guest"));
    ck_assert(wr_bytes_eq_str(pass, "secret"));
    wr_buf_free(&b);
    /* Order does not matter. */
    b = amqplain("PASSWORD", "secret", "LOGIN", "guest");
    ck_assert_int_eq(wr_sasl_amqplain_parse(raw_table(&b), &user, &pass), WR_OK);
    ck_assert(wr_bytes_eq_str(user, "guest"));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_amqplain_with_length_prefix)
{
    /* RabbitMQ reads the response as a table body; a prefixed table is
     * malformed there, and here. */
    wr_buf_t b = amqplain("LOGIN", "guest", "PASSWORD", "guest");
    wr_bytes_t user, pass;

    ck_assert_int_eq(wr_sasl_amqplain_parse((wr_bytes_t){b.data, b.len}, &user, &pass), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_amqplain_missing_fields)
{
    wr_buf_t b = amqplain("LOGIN", "guest", NULL, NULL);
    wr_bytes_t user, pass;

    ck_assert_int_eq(wr_sasl_amqplain_parse(raw_table(&b), &user, &pass), WR_ENOENT);
    wr_buf_free(&b);
    b = amqplain("login", "guest", "password", "guest"); /* keys are case-sensitive */
    ck_assert_int_eq(wr_sasl_amqplain_parse(raw_table(&b), &user, &pass), WR_ENOENT);
    wr_buf_free(&b);
    ck_assert_int_eq(wr_sasl_amqplain_parse((wr_bytes_t){NULL, 0}, &user, &pass), WR_ENOENT);
}
END_TEST

START_TEST(test_amqplain_wrong_type)
{
    wr_buf_t b = WR_BUF_INIT;
    size_t mark = wr_table_begin(&b);
    wr_bytes_t user, pass;

    wr_table_put_long(&b, "LOGIN", 42);
    wr_table_put_str(&b, "PASSWORD", "guest");
    wr_table_end(&b, mark);
    ck_assert_int_eq(wr_sasl_amqplain_parse(raw_table(&b), &user, &pass), WR_EUNKNOWN);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_amqplain_malformed)
{
    wr_buf_t b = amqplain("LOGIN", "guest", "PASSWORD", "guest");
    wr_bytes_t raw = raw_table(&b), user, pass;

    /* Every truncation of a valid table is refused (malformed, or complete
     * but without PASSWORD), never over-read. */
    for (size_t n = 1; n < raw.len; n++)
        ck_assert_int_ne(wr_sasl_amqplain_parse((wr_bytes_t){raw.data, n}, &user, &pass), WR_OK);
    wr_buf_free(&b);
    ck_assert_int_eq(wr_sasl_amqplain_parse(WR_BYTES_LIT("\x05LOGINZ"), &user, &pass), WR_ESYNTAX);
    ck_assert_int_eq(wr_sasl_amqplain_parse(WR_BYTES_LIT("\x05"
                                                         "ab"),
                                            &user, &pass),
                     WR_ESYNTAX);
    ck_assert_int_eq(wr_sasl_amqplain_parse(WR_BYTES_LIT("\x05LOGINS\xff\xff\xff\xff"), &user, &pass),
                     WR_ESYNTAX);
}
END_TEST

START_TEST(test_mechanisms)
{
    ck_assert_int_eq(wr_sasl_mech_parse(WR_BYTES_LIT("PLAIN")), WR_SASL_PLAIN);
    ck_assert_int_eq(wr_sasl_mech_parse(WR_BYTES_LIT("AMQPLAIN")), WR_SASL_AMQPLAIN);
    ck_assert_int_eq(wr_sasl_mech_parse(WR_BYTES_LIT("EXTERNAL")), WR_SASL_EXTERNAL);
    /* Names are case-sensitive, as RabbitMQ's registry. */
    ck_assert_int_eq(wr_sasl_mech_parse(WR_BYTES_LIT("plain")), WR_SASL_UNKNOWN);
    ck_assert_int_eq(wr_sasl_mech_parse(WR_BYTES_LIT("PLAIN ")), WR_SASL_UNKNOWN);
    ck_assert_int_eq(wr_sasl_mech_parse((wr_bytes_t){NULL, 0}), WR_SASL_UNKNOWN);
    ck_assert_str_eq(wr_sasl_mech_name(WR_SASL_EXTERNAL), "EXTERNAL");
    /* RabbitMQ 3.10 with rabbitmq_auth_mechanism_ssl: EXTERNAL on TLS only. */
    ck_assert_str_eq(wr_sasl_mechanisms(false), "PLAIN AMQPLAIN");
    ck_assert_str_eq(wr_sasl_mechanisms(true), "PLAIN AMQPLAIN EXTERNAL");
    ck_assert(wr_sasl_offered(WR_SASL_PLAIN, false));
    ck_assert(wr_sasl_offered(WR_SASL_AMQPLAIN, true));
    ck_assert(!wr_sasl_offered(WR_SASL_EXTERNAL, false));
    ck_assert(wr_sasl_offered(WR_SASL_EXTERNAL, true));
    ck_assert(!wr_sasl_offered(WR_SASL_UNKNOWN, true));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-sasl");
    TCase *tc = tcase_create("sasl");

    tcase_add_test(tc, test_plain_valid);
    tcase_add_loop_test(tc, test_plain_malformed, 0, (int)(sizeof(plain_bad) / sizeof(plain_bad[0])));
    tcase_add_test(tc, test_amqplain_valid);
    tcase_add_test(tc, test_amqplain_with_length_prefix);
    tcase_add_test(tc, test_amqplain_missing_fields);
    tcase_add_test(tc, test_amqplain_wrong_type);
    tcase_add_test(tc, test_amqplain_malformed);
    tcase_add_test(tc, test_mechanisms);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
