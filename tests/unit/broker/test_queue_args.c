/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/vhost/queue_args.c: every x- argument rule of a classic
 * queue, the reserved name prefix and redeclaration equivalence, each with
 * RabbitMQ's exact reply code and text.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker/vhost/queue_args.h"
#include "core/status.h"
#include "protocol/methods.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

#define PRE "PRECONDITION_FAILED - invalid arg "

typedef struct {
    const char *key;
    wr_value_t v;
} kv_t;

/* clang-format off */
#define LONG(k, n) {.key = (k), .v = {.type = 'l', .v.i = (n)}}
#define SHORT(k, n) {.key = (k), .v = {.type = 's', .v.i = (n)}}
#define STR(k, str) {.key = (k), .v = {.type = 'S', .v.s = {(const uint8_t *)(str), sizeof(str) - 1}}}
#define BOOL(k, flag) {.key = (k), .v = {.type = 't', .v.b = (flag)}}
#define END {.key = NULL}
/* clang-format on */

/* Encodes kv (END-terminated) into b and returns the table's raw bytes. */
static wr_bytes_t table(wr_buf_t *b, const kv_t *kv)
{
    size_t mark;

    wr_buf_reset(b);
    mark = wr_table_begin(b);
    for (; kv->key != NULL; kv++) {
        wr_table_put_key(b, kv->key);
        wr_table_put_value(b, &kv->v);
    }
    wr_table_end(b, mark);
    ck_assert(wr_buf_ok(b));
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){b->data + 4, b->len - 4}, WR_TABLE_MAX_DEPTH), WR_OK);
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

/* One declare of queue 'q' in vhost '/': NULL text for acceptance. */
typedef struct {
    kv_t args[3];
    const char *text;
} validate_case_t;

static const validate_case_t validate_cases[] = {
    {{LONG("x-expires", 1), END}, NULL},
    {{LONG("x-expires", 0), END}, PRE "'x-expires' for queue 'q' in vhost '/': {value_zero,0}"},
    {{LONG("x-expires", -1), END}, PRE "'x-expires' for queue 'q' in vhost '/': {value_negative,-1}"},
    {{LONG("x-expires", 315360000000LL), END}, NULL},
    {{LONG("x-expires", 315360000001LL), END},
     PRE "'x-expires' for queue 'q' in vhost '/': {value_too_large,315360000001}"},
    {{STR("x-expires", "1"), END},
     PRE "'x-expires' for queue 'q' in vhost '/': \"expected integer, got longstr\""},
    {{LONG("x-message-ttl", 0), END}, NULL},
    {{SHORT("x-message-ttl", -5), END},
     PRE "'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-5}"},
    {{LONG("x-message-ttl", 315360000001LL), END},
     PRE "'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,315360000001}"},
    {{BOOL("x-message-ttl", true), END},
     PRE "'x-message-ttl' for queue 'q' in vhost '/': \"expected integer, got bool\""},
    {{STR("x-dead-letter-exchange", "dlx"), END}, NULL},
    {{LONG("x-dead-letter-exchange", 1), END},
     PRE "'x-dead-letter-exchange' for queue 'q' in vhost '/': {unacceptable_type,long}"},
    {{STR("x-dead-letter-exchange", "dlx"), STR("x-dead-letter-routing-key", "k"), END}, NULL},
    {{STR("x-dead-letter-routing-key", "k"), END},
     PRE "'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"},
    {{STR("x-dead-letter-exchange", "dlx"), LONG("x-dead-letter-routing-key", 1), END},
     PRE "'x-dead-letter-routing-key' for queue 'q' in vhost '/': {unacceptable_type,long}"},
    {{LONG("x-max-length", 0), END}, NULL},
    {{LONG("x-max-length", -1), END}, PRE "'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"},
    {{STR("x-max-length", "5"), END},
     PRE "'x-max-length' for queue 'q' in vhost '/': \"expected integer, got longstr\""},
    {{LONG("x-max-length-bytes", -2), END},
     PRE "'x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-2}"},
    {{LONG("x-max-priority", 255), END}, NULL},
    {{LONG("x-max-priority", 256), END},
     PRE "'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"},
    {{LONG("x-max-priority", -1), END},
     PRE "'x-max-priority' for queue 'q' in vhost '/': {value_negative,-1}"},
    {{STR("x-overflow", "drop-head"), END}, NULL},
    {{STR("x-overflow", "reject-publish"), END}, NULL},
    {{STR("x-overflow", "reject-publish-dlx"), END}, NULL},
    {{STR("x-overflow", "drop-tail"), END}, PRE "'x-overflow' for queue 'q' in vhost '/': invalid_overflow"},
    {{LONG("x-overflow", 1), END}, PRE "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,long}"},
    {{STR("x-queue-mode", "lazy"), END}, NULL},
    {{STR("x-queue-mode", "eager"), END},
     PRE "'x-queue-mode' for queue 'q' in vhost '/': \"unsupported queue mode 'eager'\""},
    {{LONG("x-queue-version", 2), END}, NULL},
    {{LONG("x-queue-version", 3), END},
     PRE "'x-queue-version' for queue 'q' in vhost '/': \"unsupported queue version '3'\""},
    {{BOOL("x-single-active-consumer", false), END}, NULL},
    {{LONG("x-single-active-consumer", 1), END},
     PRE "'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,long}"},
    {{STR("x-queue-type", "quorum"), END}, NULL},
    {{STR("x-queue-type", "fast"), END},
     PRE "'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'fast'\""},
    {{LONG("x-delivery-limit", -1), END},
     PRE "'x-delivery-limit' for queue 'q' in vhost '/': {value_negative,-1}"},
    {{LONG("x-consumer-timeout", -1), END},
     PRE "'x-consumer-timeout' for queue 'q' in vhost '/': {value_negative,-1}"},
    /* Another queue type's argument. */
    {{STR("x-max-age", "1D"), END},
     PRE "'x-max-age' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"},
    {{LONG("x-quorum-initial-group-size", 3), END},
     PRE "'x-quorum-initial-group-size' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"},
    /* Unknown arguments pass; the first failing rule in RabbitMQ's order wins. */
    {{LONG("x-whatever", -1), STR("other", "x"), END}, NULL},
    {{LONG("x-max-length", -1), LONG("x-expires", 0), END},
     PRE "'x-expires' for queue 'q' in vhost '/': {value_zero,0}"},
    {{STR("x-max-age", "1D"), LONG("x-max-length", -1), END},
     PRE "'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"},
};

START_TEST(test_validate)
{
    const validate_case_t *c = &validate_cases[_i];
    wr_buf_t b = WR_BUF_INIT;
    wr_amqp_error_t err = {0};
    bool ok = wr_queue_args_validate("/", WR_BYTES_LIT("q"), table(&b, c->args), &err);

    if (c->text == NULL) {
        ck_assert_msg(ok, "rejected: %s", err.text);
    } else {
        ck_assert(!ok);
        ck_assert_uint_eq(err.code, WR_AMQP_PRECONDITION_FAILED);
        ck_assert_uint_eq(((uint32_t)err.class_id << 16) | err.method_id, WR_QUEUE_DECLARE);
        ck_assert_str_eq(err.text, c->text);
    }
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_dlx_type)
{
    static const kv_t str[] = {STR("x-dead-letter-exchange", "dlx"), END};
    static const kv_t num[] = {LONG("x-dead-letter-exchange", 1), END};
    static const kv_t none[] = {END};
    wr_buf_t b = WR_BUF_INIT;
    wr_amqp_error_t err = {0};

    ck_assert(wr_queue_args_check_dlx_type("/", WR_BYTES_LIT("q"), table(&b, str), &err));
    ck_assert(wr_queue_args_check_dlx_type("/", WR_BYTES_LIT("q"), table(&b, none), &err));
    ck_assert(!wr_queue_args_check_dlx_type("/", WR_BYTES_LIT("q"), table(&b, num), &err));
    ck_assert_uint_eq(err.code, WR_AMQP_PRECONDITION_FAILED);
    ck_assert_str_eq(err.text,
                     "PRECONDITION_FAILED - invalid type 'long' for arg 'x-dead-letter-exchange' in "
                     "queue 'q' in vhost '/'");
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_name)
{
    wr_amqp_error_t err = {0};

    ck_assert(wr_queue_args_check_name(WR_BYTES_LIT("q.amq."), &err));
    ck_assert(!wr_queue_args_check_name(WR_BYTES_LIT("amq.foo"), &err));
    ck_assert_uint_eq(err.code, WR_AMQP_ACCESS_REFUSED);
    ck_assert_str_eq(err.text, "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'");
}
END_TEST

/* A redeclaration of queue 'q' (durable, with cur) with req: NULL text for equivalence. */
typedef struct {
    bool durable;
    bool auto_delete;
    kv_t cur[3];
    kv_t req[3];
    const char *text;
} equiv_case_t;

#define INEQ "PRECONDITION_FAILED - inequivalent arg "

static const equiv_case_t equiv_cases[] = {
    {true, false, {END}, {END}, NULL},
    {false,
     false,
     {END},
     {END},
     INEQ "'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"},
    {true,
     true,
     {END},
     {END},
     INEQ "'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"},
    {true, false, {LONG("x-max-length", 5), END}, {SHORT("x-max-length", 5), END}, NULL},
    {true,
     false,
     {LONG("x-max-length", 5), END},
     {LONG("x-max-length", 6), END},
     INEQ "'x-max-length' for queue 'q' in vhost '/': received '6' but current is '5'"},
    {true,
     false,
     {LONG("x-delivery-limit", 3), END},
     {LONG("x-delivery-limit", 4), END},
     INEQ "'x-delivery-limit' for queue 'q' in vhost '/': received '4' but current is '3'"},
    {true,
     false,
     {LONG("x-max-priority", 10), END},
     {END},
     INEQ "'x-max-priority' for queue 'q' in vhost '/': received none but current is the value '10' of type "
          "'long'"},
    {true,
     false,
     {END},
     {STR("x-overflow", "drop-head"), END},
     INEQ "'x-overflow' for queue 'q' in vhost '/': received the value 'drop-head' of type 'longstr' but "
          "current is none"},
    {true,
     false,
     {LONG("x-message-ttl", 5), END},
     {STR("x-message-ttl", "5"), END},
     INEQ "'x-message-ttl' for queue 'q' in vhost '/': received '5' but current is '5'"},
    /* x-queue-type classic is the default, so its absence is equivalent. */
    {true, false, {END}, {STR("x-queue-type", "classic"), END}, NULL},
    {true, false, {STR("x-queue-type", "classic"), END}, {END}, NULL},
    {true,
     false,
     {END},
     {STR("x-queue-type", "quorum"), END},
     INEQ "'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but "
          "current is none"},
    /* Arguments outside rabbit_classic_queue's list need not match. */
    {true, false, {LONG("x-consumer-timeout", 5), LONG("x-foo", 1), END}, {END}, NULL},
};

START_TEST(test_equivalent)
{
    const equiv_case_t *c = &equiv_cases[_i];
    wr_buf_t cb = WR_BUF_INIT, rb = WR_BUF_INIT;
    wr_queue_args_decl_t cur = {true, false, table(&cb, c->cur)};
    wr_queue_args_decl_t req = {c->durable, c->auto_delete, table(&rb, c->req)};
    wr_amqp_error_t err = {0};
    bool ok = wr_queue_args_check_equivalent("/", WR_BYTES_LIT("q"), &cur, &req, &err);

    if (c->text == NULL) {
        ck_assert_msg(ok, "inequivalent: %s", err.text);
    } else {
        ck_assert(!ok);
        ck_assert_uint_eq(err.code, WR_AMQP_PRECONDITION_FAILED);
        ck_assert_uint_eq(((uint32_t)err.class_id << 16) | err.method_id, WR_QUEUE_DECLARE);
        ck_assert_str_eq(err.text, c->text);
    }
    wr_buf_free(&cb);
    wr_buf_free(&rb);
}
END_TEST

/* exchange.declare shares the helpers, with its own kind and method. */
START_TEST(test_exchange_equiv)
{
    static const kv_t cur[] = {STR("alternate-exchange", "ae1"), END};
    static const kv_t req[] = {STR("alternate-exchange", "ae2"), END};
    wr_buf_t cb = WR_BUF_INIT, rb = WR_BUF_INIT;
    wr_amqp_error_t err = {0};

    ck_assert(!wr_queue_args_equiv_flag("v", &err, WR_EXCHANGE_DECLARE, "exchange", WR_BYTES_LIT("x"),
                                        "internal", false, true));
    ck_assert_str_eq(err.text,
                     INEQ "'internal' for exchange 'x' in vhost 'v': received 'true' but current is 'false'");
    ck_assert(!wr_queue_args_equiv_arg("v", &err, WR_EXCHANGE_DECLARE, "exchange", WR_BYTES_LIT("x"),
                                       table(&cb, cur), table(&rb, req), "alternate-exchange"));
    ck_assert_uint_eq(((uint32_t)err.class_id << 16) | err.method_id, WR_EXCHANGE_DECLARE);
    ck_assert_str_eq(
        err.text,
        INEQ "'alternate-exchange' for exchange 'x' in vhost 'v': received 'ae2' but current is 'ae1'");
    wr_buf_free(&cb);
    wr_buf_free(&rb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_args");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_validate, 0, (int)(sizeof(validate_cases) / sizeof(validate_cases[0])));
    tcase_add_test(tc, test_dlx_type);
    tcase_add_test(tc, test_name);
    tcase_add_loop_test(tc, test_equivalent, 0, (int)(sizeof(equiv_cases) / sizeof(equiv_cases[0])));
    tcase_add_test(tc, test_exchange_equiv);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
