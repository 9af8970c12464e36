/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/vhost/deadletter.c: the dead-lettered copy (properties,
 * routing keys, CC, x-death and x-first-death-* as RabbitMQ 3.10 builds
 * them, including the regrouping of old entries and a non-array x-death)
 * and the cycle check.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/vhost/deadletter.h"
#include "core/buf.h"
#include "protocol/props.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

/* ---------------------------------------------------------------- fixtures */

/* A message with the given headers (raw table, may be empty: none) and an
 * expiration (NULL: none). */
static wr_message_t *msg_with(wr_bytes_t headers, const char *expiration)
{
    wr_props_t p = {.class_id = 60, .body_size = 3, .flags = WR_PROP_CONTENT_TYPE | WR_PROP_PRIORITY};
    wr_buf_t b = WR_BUF_INIT;
    wr_message_t *m;

    p.content_type = WR_BYTES_LIT("text/plain");
    p.priority = 7;
    if (headers.len > 0) {
        p.flags |= WR_PROP_HEADERS;
        p.headers = headers;
    }
    if (expiration != NULL) {
        p.flags |= WR_PROP_EXPIRATION;
        p.expiration = wr_bytes_str(expiration);
    }
    wr_props_encode(&b, &p);
    ck_assert(wr_buf_ok(&b));
    m = wr_message_new(WR_BYTES_LIT("src-x"), WR_BYTES_LIT("rk"), (wr_bytes_t){b.data, b.len}, 3);
    ck_assert_ptr_nonnull(m);
    memcpy(m->body, "abc", 3);
    m->body_filled = 3;
    wr_buf_free(&b);
    return m;
}

static wr_deadletter_t death(const char *queue, wr_dl_reason_t why)
{
    return (wr_deadletter_t){
        .queue = wr_bytes_str(queue), .reason = why, .dlx = WR_BYTES_LIT("dlx"), .time = 1700000000};
}

/* An x-death entry table: queue, reason and (count >= 0) count. */
static void put_entry(wr_buf_t *b, const char *queue, const char *reason, int64_t count)
{
    size_t mark;

    wr_buf_put_u8(b, 'F');
    mark = wr_table_begin(b);
    if (count >= 0)
        wr_table_put_long(b, "count", count);
    wr_table_put_str(b, "queue", queue);
    wr_table_put_str(b, "reason", reason);
    wr_table_end(b, mark);
}

static const wr_props_t *props(wr_message_t *m)
{
    const wr_props_t *p = wr_message_props(m);

    ck_assert_ptr_nonnull(p);
    return p;
}

/* The n-th x-death entry of m (asserting it exists). */
static wr_bytes_t entry(wr_message_t *m, int n)
{
    wr_table_iter_t it;
    wr_value_t v;

    ck_assert(wr_table_get(props(m)->headers, "x-death", &v));
    ck_assert_int_eq(v.type, 'A');
    wr_table_iter_init(&it, v.v.s);
    for (int i = 0; i <= n; i++)
        ck_assert(wr_array_next(&it, &v));
    ck_assert_int_eq(v.type, 'F');
    return v.v.s;
}

static size_t deaths(wr_message_t *m)
{
    wr_table_iter_t it;
    wr_value_t v;
    size_t n = 0;

    ck_assert(wr_table_get(props(m)->headers, "x-death", &v));
    wr_table_iter_init(&it, v.v.s);
    while (wr_array_next(&it, &v))
        n++;
    return n;
}

static bool str_is(wr_bytes_t table, const char *key, const char *want)
{
    wr_value_t v;

    return wr_table_get(table, key, &v) && v.type == 'S' && wr_bytes_eq_str(v.v.s, want);
}

static int64_t count_of(wr_bytes_t table)
{
    wr_value_t v;

    ck_assert(wr_table_get(table, "count", &v));
    ck_assert_int_eq(v.type, 'l');
    return v.v.i;
}

/* The keys of a table joined by commas, to check their order. */
static void keys_of(wr_bytes_t table, char *out, size_t n)
{
    wr_table_iter_t it;
    wr_bytes_t k;
    wr_value_t v;

    out[0] = '\0';
    wr_table_iter_init(&it, table);
    while (wr_table_next(&it, &k, &v)) {
        size_t len = strlen(out);

        snprintf(out + len, n - len, "%s%.*s", len ? "," : "", (int)k.len, (const char *)k.data);
    }
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_first_death)
{
    wr_buf_t h = WR_BUF_INIT;
    wr_value_t cc = {.type = 'A'};
    wr_buf_t arr = WR_BUF_INIT;
    wr_deadletter_t d = death("q1", WR_DL_EXPIRED);
    wr_message_t *m, *c;
    const wr_props_t *p;
    wr_bytes_t *keys;
    wr_value_t v;
    size_t n;
    char order[256];

    v = (wr_value_t){.type = 'S', .v.s = WR_BYTES_LIT("cc1")};
    wr_table_put_value(&arr, &v);
    cc.v.s = (wr_bytes_t){arr.data, arr.len};
    wr_table_put_str(&h, "zz", "last");
    wr_table_put_key(&h, "CC");
    wr_table_put_value(&h, &cc);
    m = msg_with((wr_bytes_t){h.data, h.len}, "60000");
    c = wr_deadletter_copy(m, &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(wr_bytes_eq_str(c->exchange, "dlx"));
    ck_assert(wr_bytes_eq_str(c->routing_key, "rk"));
    ck_assert(c->body_size == 3 && memcmp(c->body, "abc", 3) == 0);
    p = props(c);
    ck_assert(!(p->flags & WR_PROP_EXPIRATION));
    ck_assert(wr_bytes_eq_str(p->content_type, "text/plain") && p->priority == 7);
    keys_of(p->headers, order, sizeof(order));
    ck_assert_str_eq(order, "CC,x-death,x-first-death-exchange,x-first-death-queue,x-first-death-reason,"
                            "x-last-death-exchange,x-last-death-queue,x-last-death-reason,zz");
    ck_assert(str_is(p->headers, "x-first-death-reason", "expired"));
    ck_assert(str_is(p->headers, "x-first-death-queue", "q1"));
    ck_assert(str_is(p->headers, "x-first-death-exchange", "src-x"));
    ck_assert(str_is(p->headers, "x-last-death-reason", "expired"));
    ck_assert(str_is(p->headers, "x-last-death-queue", "q1"));
    ck_assert(str_is(p->headers, "x-last-death-exchange", "src-x"));
    ck_assert_uint_eq(deaths(c), 1);
    keys_of(entry(c, 0), order, sizeof(order));
    ck_assert_str_eq(order, "count,reason,queue,time,exchange,routing-keys,original-expiration");
    ck_assert_int_eq(count_of(entry(c, 0)), 1);
    ck_assert(wr_table_get(entry(c, 0), "time", &v) && v.type == 'T' && v.v.ts == 1700000000);
    ck_assert(str_is(entry(c, 0), "original-expiration", "60000"));
    /* Without a dead-letter routing key, CC stays and routes the copy. */
    ck_assert(wr_deadletter_routing_keys(c, &keys, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert(wr_bytes_eq_str(keys[0], "rk") && wr_bytes_eq_str(keys[1], "cc1"));
    free(keys);
    wr_message_unref(c);
    /* With one, CC goes and the key is the only one. */
    d.has_routing_key = true;
    d.routing_key = WR_BYTES_LIT("fixed");
    c = wr_deadletter_copy(m, &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(wr_bytes_eq_str(c->routing_key, "fixed"));
    ck_assert(!wr_table_get(props(c)->headers, "CC", &v));
    ck_assert(wr_deadletter_routing_keys(c, &keys, &n));
    ck_assert_uint_eq(n, 1);
    free(keys);
    /* The death's routing keys are still the publish's: rk and cc1. */
    ck_assert(wr_table_get(entry(c, 0), "routing-keys", &v) && v.type == 'A');
    {
        wr_table_iter_t it;
        wr_value_t k;

        wr_table_iter_init(&it, v.v.s);
        ck_assert(wr_array_next(&it, &k) && wr_bytes_eq_str(k.v.s, "rk"));
        ck_assert(wr_array_next(&it, &k) && wr_bytes_eq_str(k.v.s, "cc1"));
        ck_assert(!wr_array_next(&it, &k));
    }
    wr_message_unref(c);
    wr_message_unref(m);
    wr_buf_free(&h);
    wr_buf_free(&arr);
}
END_TEST

START_TEST(test_regrouping)
{
    wr_buf_t h = WR_BUF_INIT;
    wr_deadletter_t d = death("c", WR_DL_EXPIRED);
    wr_message_t *m, *c, *c2;
    size_t mark;
    char order[256];

    /* [a (no count), b, a again]: a's group has two entries, and the
     * grouped list comes out reversed: [b, a(count 2)]. */
    wr_table_put_key(&h, "x-death");
    wr_buf_put_u8(&h, 'A');
    mark = wr_table_begin(&h);
    put_entry(&h, "a", "rejected", -1);
    put_entry(&h, "b", "rejected", 5);
    put_entry(&h, "a", "rejected", 9);
    wr_table_end(&h, mark);
    m = msg_with((wr_bytes_t){h.data, h.len}, NULL);
    c = wr_deadletter_copy(m, &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(deaths(c), 3);
    ck_assert(str_is(entry(c, 0), "queue", "c"));
    keys_of(entry(c, 0), order, sizeof(order));
    ck_assert_str_eq(order, "count,exchange,queue,reason,routing-keys,time");
    ck_assert(str_is(entry(c, 1), "queue", "b"));
    ck_assert_int_eq(count_of(entry(c, 1)), 5);
    ck_assert(str_is(entry(c, 2), "queue", "a"));
    ck_assert_int_eq(count_of(entry(c, 2)), 2);
    /* No x-first-death-* once x-death exists; x-last-death-* every time. */
    ck_assert(!wr_table_get(props(c)->headers, "x-first-death-queue", &(wr_value_t){0}));
    ck_assert(str_is(props(c)->headers, "x-last-death-queue", "c"));
    /* Dying in b again: b's old entry counted up, moved first, sorted. */
    d = death("b", WR_DL_REJECTED);
    c2 = wr_deadletter_copy(c, &d);
    ck_assert_ptr_nonnull(c2);
    ck_assert_uint_eq(deaths(c2), 3);
    ck_assert(str_is(entry(c2, 0), "queue", "b"));
    ck_assert_int_eq(count_of(entry(c2, 0)), 6);
    keys_of(entry(c2, 0), order, sizeof(order));
    ck_assert_str_eq(order, "count,queue,reason");
    ck_assert(str_is(entry(c2, 1), "queue", "a"));
    ck_assert(str_is(entry(c2, 2), "queue", "c"));
    wr_message_unref(c2);
    wr_message_unref(c);
    wr_message_unref(m);
    wr_buf_free(&h);
}
END_TEST

START_TEST(test_invalid_x_death_reset)
{
    wr_buf_t h = WR_BUF_INIT;
    wr_deadletter_t d = death("q", WR_DL_MAXLEN);
    wr_message_t *m, *c;
    char order[256];

    wr_table_put_str(&h, "x-death", "flattened");
    m = msg_with((wr_bytes_t){h.data, h.len}, NULL);
    c = wr_deadletter_copy(m, &d);
    ck_assert_ptr_nonnull(c);
    keys_of(props(c)->headers, order, sizeof(order));
    ck_assert_str_eq(order, "x-death,x-last-death-exchange,x-last-death-queue,x-last-death-reason");
    ck_assert_uint_eq(deaths(c), 1);
    ck_assert(str_is(entry(c, 0), "reason", "maxlen"));
    wr_message_unref(c);
    wr_message_unref(m);
    wr_buf_free(&h);
}
END_TEST

START_TEST(test_cycles)
{
    wr_deadletter_t d1 = death("q1", WR_DL_EXPIRED), d2 = death("q2", WR_DL_EXPIRED);
    wr_deadletter_t d3 = death("q3", WR_DL_REJECTED);
    wr_message_t *m = msg_with((wr_bytes_t){NULL, 0}, NULL), *c1, *c2, *c3;

    c1 = wr_deadletter_copy(m, &d1);
    c2 = wr_deadletter_copy(c1, &d2);
    c3 = wr_deadletter_copy(c2, &d3);
    ck_assert(c1 && c2 && c3);
    ck_assert(!wr_deadletter_is_cycle(m, WR_BYTES_LIT("q1")));
    ck_assert(wr_deadletter_is_cycle(c1, WR_BYTES_LIT("q1")));
    ck_assert(!wr_deadletter_is_cycle(c1, WR_BYTES_LIT("q2")));
    ck_assert(wr_deadletter_is_cycle(c2, WR_BYTES_LIT("q1")));
    ck_assert(wr_deadletter_is_cycle(c2, WR_BYTES_LIT("q2")));
    /* A rejection on the way breaks the cycle. */
    ck_assert(!wr_deadletter_is_cycle(c3, WR_BYTES_LIT("q1")));
    ck_assert(!wr_deadletter_is_cycle(c3, WR_BYTES_LIT("q3")));
    ck_assert_str_eq(wr_deadletter_reason(WR_DL_DELIVERY_LIMIT), "delivery_limit");
    wr_message_unref(c3);
    wr_message_unref(c2);
    wr_message_unref(c1);
    wr_message_unref(m);
}
END_TEST

static Suite *deadletter_suite(void)
{
    Suite *s = suite_create("broker-deadletter");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_first_death);
    tcase_add_test(tc, test_regrouping);
    tcase_add_test(tc, test_invalid_x_death_reset);
    tcase_add_test(tc, test_cycles);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(deadletter_suite());
}
