/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for routing/direct.c and routing/fanout.c: exact-key matching,
 * everything-matches, deduplication, unbinding, and a 10,000-queue fanout.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/status.h"
#include "protocol/table.h"
#include "routing/router.h"
#include "tests/unit/runner.h"

#define NO_ARGS ((wr_bytes_t){NULL, 0})

static wr_router_t *router(const char *type)
{
    const wr_router_type_t *t = wr_router_type_find(wr_bytes_str(type));
    wr_router_t *r;

    ck_assert_ptr_nonnull(t);
    r = wr_router_new(t);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(wr_router_type_name(t), type);
    return r;
}

static wr_dest_t queue(void *p)
{
    return (wr_dest_t){p, WR_DEST_QUEUE};
}

static const struct {
    const char *binding;
    const char *key;
    bool match;
} direct_rows[] = {
    {"a", "a", true},      {"a", "b", false},    {"", "", true},         {"", "a", false},
    {"a", "", false},      {"a.b", "a.b", true}, {"a.*", "a.b", false},  {"#", "a", false},
    {"*", "*", true},      {"#", "#", true},     {"abc", "ab", false},   {"ab", "abc", false},
    {"Key", "key", false}, {"a b", "a b", true}, {"a.b", "a.b.", false},
};

START_TEST(direct_rows_test)
{
    wr_router_t *r = router("direct");
    wr_dest_set_t out;
    int q;

    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), wr_bytes_str(direct_rows[_i].binding), NO_ARGS), WR_OK);
    ck_assert(wr_router_route(r, wr_bytes_str(direct_rows[_i].key), NO_ARGS, &out));
    ck_assert_msg(out.count == (direct_rows[_i].match ? 1u : 0u), "binding '%s' key '%s'",
                  direct_rows[_i].binding, direct_rows[_i].key);
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

START_TEST(direct_many_keys_and_dests)
{
    wr_router_t *r = router("direct");
    wr_buf_t ab = WR_BUF_INIT;
    wr_dest_set_t out;
    size_t mark;
    int q1, q2, q3;

    mark = wr_table_begin(&ab);
    wr_table_put_str(&ab, "x", "y");
    wr_table_end(&ab, mark);
    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("k1"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("k1"), NO_ARGS), WR_EEXIST);
    /* Same destination and key, other arguments: a second binding, one delivery. */
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("k1"), (wr_bytes_t){ab.data + 4, ab.len - 4}),
                     WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), WR_BYTES_LIT("k1"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), WR_BYTES_LIT("k2"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, (wr_dest_t){&q3, WR_DEST_EXCHANGE}, WR_BYTES_LIT("k2"), NO_ARGS),
                     WR_OK);
    ck_assert_uint_eq(wr_router_count(r), 5);

    ck_assert(wr_router_route(r, WR_BYTES_LIT("k1"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 2);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    ck_assert(wr_dest_set_has(&out, queue(&q2)));
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("k2"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 2);
    ck_assert(wr_dest_set_has(&out, queue(&q2)));
    ck_assert(wr_dest_set_has(&out, (wr_dest_t){&q3, WR_DEST_EXCHANGE}));
    ck_assert(!wr_dest_set_has(&out, queue(&q3)));

    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("k1"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("k1"), NO_ARGS), WR_ENOENT);
    ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q1)), 2);
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("k1"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 0);
    ck_assert_uint_eq(wr_router_count(r), 2);
    wr_dest_set_free(&out);
    wr_buf_free(&ab);
    wr_router_free(r);
}
END_TEST

/* The common shape: many queues bound with one key, or each with its own. */
START_TEST(direct_ten_thousand)
{
    enum { N = 10000 };
    static int qs[N];
    wr_router_t *r = router("direct");
    wr_dest_set_t out;
    char key[16];

    wr_dest_set_init(&out);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "q%d", i);
        ck_assert_int_eq(wr_router_bind(r, queue(&qs[i]), WR_BYTES_LIT("all"), NO_ARGS), WR_OK);
        ck_assert_int_eq(wr_router_bind(r, queue(&qs[i]), wr_bytes_str(key), NO_ARGS), WR_OK);
    }
    ck_assert(wr_router_route(r, WR_BYTES_LIT("all"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, N);
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("q1234"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&qs[1234])));
    for (int i = 0; i < N; i += 2)
        ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&qs[i])), 2);
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("all"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, N / 2);
    ck_assert(!wr_dest_set_has(&out, queue(&qs[0])));
    ck_assert(wr_dest_set_has(&out, queue(&qs[1])));
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

START_TEST(fanout_everything_matches)
{
    wr_router_t *r = router("fanout");
    wr_dest_set_t out;
    int q1, q2;

    wr_dest_set_init(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("x"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 0);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT(""), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a"), NO_ARGS), WR_EEXIST);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), WR_BYTES_LIT("zzz"), NO_ARGS), WR_OK);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("anything"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 2);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    ck_assert(wr_dest_set_has(&out, queue(&q2)));
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("zzz"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("zzz"), NO_ARGS), WR_ENOENT);
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT(""), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

START_TEST(fanout_ten_thousand)
{
    enum { N = 10000 };
    static int qs[N];
    wr_router_t *r = router("fanout");
    wr_dest_set_t out;

    wr_dest_set_init(&out);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(wr_router_bind(r, queue(&qs[i]), WR_BYTES_LIT(""), NO_ARGS), WR_OK);
    /* A second binding per queue for a tenth of them: still one delivery each. */
    for (int i = 0; i < N; i += 10)
        ck_assert_int_eq(wr_router_bind(r, queue(&qs[i]), WR_BYTES_LIT("again"), NO_ARGS), WR_OK);
    ck_assert_uint_eq(wr_router_count(r), N + N / 10);
    for (int round = 0; round < 3; round++) {
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("k"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, N);
    }
    for (int i = 0; i < N; i++) {
        if (out.items[i].ptr != &qs[i])
            ck_abort_msg("fanout order: item %d", i);
    }
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routing-direct-fanout");
    TCase *tc = tcase_create("direct-fanout");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, direct_rows_test, 0, (int)(sizeof(direct_rows) / sizeof(direct_rows[0])));
    tcase_add_test(tc, direct_many_keys_and_dests);
    tcase_add_test(tc, direct_ten_thousand);
    tcase_add_test(tc, fanout_everything_matches);
    tcase_add_test(tc, fanout_ten_thousand);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
