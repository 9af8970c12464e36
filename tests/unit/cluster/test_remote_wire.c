/* SPDX-License-Identifier: MIT */
/*
 * Tests of broker/cluster/remote_wire.c, the codec of the messages between a
 * queue's home and the nodes that use it: every kind round-trips, and each
 * class of malformed body gets its exact status.
 */
#include <check.h>
#include <string.h>

#include "broker/cluster/remote_wire.h"
#include "broker/queue/queue.h"
#include "core/status.h"
#include "tests/unit/runner.h"

/* The whole body of m as it travels: the encoded fields, then the body. */
static wr_bytes_t encode(wr_buf_t *b, const wr_remote_msg_t *m)
{
    wr_buf_reset(b);
    ck_assert(wr_remote_wire_encode(b, m));
    if (m->body.len > 0)
        wr_buf_put(b, m->body.data, m->body.len);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data, b->len};
}

static void same(wr_bytes_t a, wr_bytes_t b)
{
    ck_assert_uint_eq(a.len, b.len);
    if (a.len > 0)
        ck_assert_mem_eq(a.data, b.data, a.len);
}

static const wr_remote_msg_t samples[] = {
    {.kind = WR_REMOTE_PUBLISH,
     .id = 7,
     .vhost = {(const uint8_t *)"/", 1},
     .queue = {(const uint8_t *)"q", 1},
     .exchange = {(const uint8_t *)"amq.direct", 10},
     .routing_key = {(const uint8_t *)"rk", 2},
     .header = {(const uint8_t *)"\x00\x3c\x00\x00", 4},
     .body = {(const uint8_t *)"hello", 5}},
    {.kind = WR_REMOTE_PUBLISH,
     .id = 0,
     .vhost = {(const uint8_t *)"v", 1},
     .queue = {(const uint8_t *)"q", 1}},
    {.kind = WR_REMOTE_CONFIRM, .id = 9, .status = WR_REMOTE_NACK},
    {.kind = WR_REMOTE_CONSUME,
     .id = 3,
     .vhost = {(const uint8_t *)"/", 1},
     .queue = {(const uint8_t *)"q", 1},
     .prefetch = 2,
     .flags = WR_REMOTE_NO_ACK | WR_REMOTE_EXCLUSIVE,
     .priority = -5,
     .credit = 256,
     .args = {(const uint8_t *)"\x01x", 2}},
    {.kind = WR_REMOTE_CONSUME_OK, .id = 3, .status = WR_REMOTE_IN_USE},
    {.kind = WR_REMOTE_CANCEL, .id = 3},
    {.kind = WR_REMOTE_CANCELLED, .id = 3},
    {.kind = WR_REMOTE_DELIVER,
     .id = 3,
     .tag = 99,
     .flags = WR_REMOTE_REDELIVERED,
     .exchange = {(const uint8_t *)"x", 1},
     .routing_key = {(const uint8_t *)"k", 1},
     .header = {(const uint8_t *)"h", 1},
     .body = {(const uint8_t *)"body", 4}},
    {.kind = WR_REMOTE_SETTLE, .id = 3, .tag = 99, .how = WR_SETTLE_DISCARD, .flags = WR_REMOTE_MULTIPLE},
    {.kind = WR_REMOTE_CREDIT, .id = 3, .credit = 128},
    {.kind = WR_REMOTE_PURGE,
     .tag = 5,
     .vhost = {(const uint8_t *)"/", 1},
     .queue = {(const uint8_t *)"q", 1}},
    {.kind = WR_REMOTE_GET,
     .id = 4,
     .tag = 1,
     .vhost = {(const uint8_t *)"/", 1},
     .queue = {(const uint8_t *)"q", 1},
     .flags = WR_REMOTE_NO_ACK},
    {.kind = WR_REMOTE_GET_OK,
     .id = 4,
     .tag = 1,
     .status = WR_REMOTE_OK,
     .delivery = 12,
     .count = 7,
     .flags = WR_REMOTE_REDELIVERED,
     .exchange = {(const uint8_t *)"x", 1},
     .routing_key = {(const uint8_t *)"k", 1},
     .header = {(const uint8_t *)"h", 1},
     .body = {(const uint8_t *)"body", 4}},
    {.kind = WR_REMOTE_GET_OK, .id = 4, .tag = 2, .status = WR_REMOTE_EMPTY},
    {.kind = WR_REMOTE_PURGE_OK, .tag = 5, .status = WR_REMOTE_OK, .count = 4000000000u},
    {.kind = WR_REMOTE_PURGE_OK, .tag = 6, .status = WR_REMOTE_DOWN},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

START_TEST(every_kind_round_trips)
{
    const wr_remote_msg_t *in = &samples[_i];
    wr_buf_t b = WR_BUF_INIT, again = WR_BUF_INIT;
    wr_remote_msg_t out;
    wr_bytes_t wire = encode(&b, in);

    ck_assert_int_eq(wr_remote_wire_decode(in->kind, wire, &out), WR_OK);
    ck_assert_uint_eq(out.kind, in->kind);
    ck_assert_uint_eq(out.id, in->id);
    ck_assert_uint_eq(out.tag, in->tag);
    ck_assert_uint_eq(out.status, in->status);
    ck_assert_uint_eq(out.flags, in->flags);
    ck_assert_uint_eq(out.how, in->how);
    ck_assert_uint_eq(out.prefetch, in->prefetch);
    ck_assert_int_eq(out.priority, in->priority);
    ck_assert_uint_eq(out.credit, in->credit);
    ck_assert_uint_eq(out.delivery, in->delivery);
    ck_assert_uint_eq(out.count, in->count);
    same(out.vhost, in->vhost);
    same(out.queue, in->queue);
    same(out.exchange, in->exchange);
    same(out.routing_key, in->routing_key);
    same(out.header, in->header);
    same(out.args, in->args);
    same(out.body, in->body);
    same(encode(&again, &out), wire);
    wr_buf_free(&b);
    wr_buf_free(&again);
}
END_TEST

/* Every proper prefix of a fixed-size body is truncated; a body kind's
 * prefixes that stop inside the fields too. */
START_TEST(truncated_bodies_are_syntax_errors)
{
    const wr_remote_msg_t *in = &samples[_i];
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t wire = encode(&b, in);
    size_t fields = wire.len - in->body.len;
    wr_remote_msg_t out;

    for (size_t n = 0; n < fields; n++)
        ck_assert_msg(wr_remote_wire_decode(in->kind, (wr_bytes_t){wire.data, n}, &out) == WR_ESYNTAX,
                      "kind %u cut at %zu of %zu", in->kind, n, fields);
    wr_buf_free(&b);
}
END_TEST

START_TEST(trailing_bytes_are_syntax_errors)
{
    const wr_remote_msg_t *in = &samples[_i];
    wr_buf_t b = WR_BUF_INIT;
    wr_remote_msg_t out;

    /* PUBLISH, DELIVER and GET_OK end with the body: their extra bytes are body. */
    if (in->kind == WR_REMOTE_PUBLISH || in->kind == WR_REMOTE_DELIVER || in->kind == WR_REMOTE_GET_OK)
        return;
    encode(&b, in);
    wr_buf_put_u8(&b, 0);
    ck_assert_int_eq(wr_remote_wire_decode(in->kind, (wr_bytes_t){b.data, b.len}, &out), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

/* m, encoded, then one byte at offset `at` replaced by v: decodes to want. */
static void patched(wr_remote_msg_t m, size_t at, uint8_t v, int want)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_remote_msg_t out;

    encode(&b, &m);
    ck_assert_uint_lt(at, b.len);
    b.data[at] = v;
    ck_assert_int_eq(wr_remote_wire_decode(m.kind, (wr_bytes_t){b.data, b.len}, &out), want);
    wr_buf_free(&b);
}

START_TEST(bad_values_are_syntax_errors)
{
    wr_remote_msg_t confirm = {.kind = WR_REMOTE_CONFIRM, .id = 1};
    wr_remote_msg_t ok = {.kind = WR_REMOTE_CONSUME_OK, .id = 1};
    wr_remote_msg_t settle = {.kind = WR_REMOTE_SETTLE, .id = 1, .tag = 1};
    wr_remote_msg_t deliver = {.kind = WR_REMOTE_DELIVER, .id = 1, .tag = 1};
    wr_remote_msg_t get_ok = {.kind = WR_REMOTE_GET_OK, .id = 1, .tag = 1};
    wr_remote_msg_t purge_ok = {.kind = WR_REMOTE_PURGE_OK, .tag = 1};

    patched(confirm, 8, WR_REMOTE_NACK, WR_OK);
    patched(confirm, 8, 2, WR_ESYNTAX); /* no such confirm status */
    patched(ok, 8, WR_REMOTE_STATUS_LAST, WR_OK);
    patched(ok, 8, WR_REMOTE_STATUS_LAST + 1, WR_ESYNTAX);
    patched(settle, 16, WR_SETTLE_RELEASE, WR_OK);
    patched(settle, 16, WR_SETTLE_RELEASE + 1, WR_ESYNTAX); /* no such settlement */
    patched(settle, 17, 0x02, WR_ESYNTAX);                  /* unknown flag */
    patched(deliver, 16, 0x02, WR_ESYNTAX);
    patched(get_ok, 16, WR_REMOTE_GET_STATUS_LAST + 1, WR_ESYNTAX); /* id, tag, then status */
    patched(get_ok, 16 + 1 + 8 + 4, 0x02, WR_ESYNTAX);              /* ..., delivery, count, then flags */
    patched(purge_ok, 8, WR_REMOTE_DOWN, WR_OK);                    /* tag, then status */
    patched(purge_ok, 8, WR_REMOTE_GET_STATUS_LAST + 1, WR_ESYNTAX);
    patched(samples[3], 14, 0x03, WR_OK); /* CONSUME: id, "/", "q", prefetch, then flags */
    patched(samples[3], 14, 0x04, WR_ESYNTAX);
}
END_TEST

START_TEST(zero_ids_and_empty_names_are_syntax_errors)
{
    wr_remote_msg_t cancel = {.kind = WR_REMOTE_CANCEL, .id = 0};
    wr_remote_msg_t purge = {.kind = WR_REMOTE_PURGE, .vhost = {(const uint8_t *)"/", 1}};
    wr_remote_msg_t publish = samples[1];
    wr_buf_t b = WR_BUF_INIT;
    wr_remote_msg_t out;

    ck_assert_int_eq(wr_remote_wire_decode(cancel.kind, encode(&b, &cancel), &out), WR_ESYNTAX);
    ck_assert_int_eq(wr_remote_wire_decode(purge.kind, encode(&b, &purge), &out), WR_ESYNTAX);
    publish.vhost = (wr_bytes_t){NULL, 0};
    ck_assert_int_eq(wr_remote_wire_decode(publish.kind, encode(&b, &publish), &out), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

START_TEST(unknown_kinds)
{
    wr_remote_msg_t out;
    uint8_t body[8] = {0};

    ck_assert_int_eq(wr_remote_wire_decode(WR_REMOTE_PUBLISH - 1, (wr_bytes_t){body, 8}, &out), WR_EUNKNOWN);
    ck_assert_int_eq(wr_remote_wire_decode(WR_REMOTE_KIND_LAST + 1, (wr_bytes_t){body, 8}, &out),
                     WR_EUNKNOWN);
}
END_TEST

START_TEST(encode_refuses_what_has_no_form)
{
    char name[257];
    wr_remote_msg_t m = samples[0];
    wr_buf_t b = WR_BUF_INIT;

    memset(name, 'n', 256);
    name[256] = '\0';
    m.queue = wr_bytes_str(name);
    ck_assert(!wr_remote_wire_encode(&b, &m));
    m = samples[0];
    m.kind = WR_REMOTE_KIND_LAST + 1;
    wr_buf_reset(&b);
    ck_assert(!wr_remote_wire_encode(&b, &m));
    wr_buf_free(&b);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("cluster-remote-wire");
    TCase *tc = tcase_create("codec");

    tcase_add_loop_test(tc, every_kind_round_trips, 0, NSAMPLES);
    tcase_add_loop_test(tc, truncated_bodies_are_syntax_errors, 0, NSAMPLES);
    tcase_add_loop_test(tc, trailing_bytes_are_syntax_errors, 0, NSAMPLES);
    tcase_add_test(tc, bad_values_are_syntax_errors);
    tcase_add_test(tc, zero_ids_and_empty_names_are_syntax_errors);
    tcase_add_test(tc, unknown_kinds);
    tcase_add_test(tc, encode_refuses_what_has_no_form);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(wire_suite());
}
