/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for routing/router.c: the destination set, exchange-type lookup,
 * binding identity (key + arguments, order-insensitive), foreach, and keys too
 * long for the on-stack map keys.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"
#include "protocol/table.h"
#include "routing/router.h"
#include "tests/unit/runner.h"

#define NO_ARGS ((wr_bytes_t){NULL, 0})

static wr_dest_t queue(void *p)
{
    return (wr_dest_t){p, WR_DEST_QUEUE};
}

START_TEST(dest_set_dedup)
{
    enum { N = 20000 };
    static char slots[N];
    wr_dest_set_t s;

    wr_dest_set_init(&s);
    ck_assert(!wr_dest_set_has(&s, queue(&slots[0])));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            if (!wr_dest_set_add(&s, queue(&slots[i])) || !wr_dest_set_add(&s, queue(&slots[i])))
                ck_abort_msg("add %d", i);
        }
        ck_assert_uint_eq(s.count, N);
        for (int i = 0; i < N; i++) {
            if (s.items[i].ptr != &slots[i] || !wr_dest_set_has(&s, queue(&slots[i])))
                ck_abort_msg("item %d", i);
        }
        /* Same pointer, other kind: a different destination. */
        ck_assert(!wr_dest_set_has(&s, (wr_dest_t){&slots[5], WR_DEST_EXCHANGE}));
        ck_assert(wr_dest_set_add(&s, (wr_dest_t){&slots[5], WR_DEST_EXCHANGE}));
        ck_assert_uint_eq(s.count, N + 1);
        wr_dest_set_clear(&s);
        ck_assert_uint_eq(s.count, 0);
        ck_assert(!wr_dest_set_has(&s, queue(&slots[5])));
        ck_assert(!wr_dest_set_has(&s, (wr_dest_t){&slots[5], WR_DEST_EXCHANGE}));
    }
    /* After clearing, a small set in a big index works as before. */
    ck_assert(wr_dest_set_add(&s, queue(&slots[7])));
    ck_assert(wr_dest_set_add(&s, queue(&slots[7])));
    ck_assert_uint_eq(s.count, 1);
    wr_dest_set_free(&s);
    ck_assert_uint_eq(s.count, 0);
    ck_assert(!wr_dest_set_has(&s, queue(&slots[7])));
    wr_dest_set_free(&s);
}
END_TEST

START_TEST(exchange_type_lookup)
{
    static const char *const names[] = {"direct", "fanout", "topic", "headers"};

    for (size_t i = 0; i < 4; i++) {
        const wr_router_type_t *t = wr_router_type_find(wr_bytes_str(names[i]));
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(wr_router_type_name(t), names[i]);
    }
    ck_assert_ptr_null(wr_router_type_find(WR_BYTES_LIT("Direct")));
    ck_assert_ptr_null(wr_router_type_find(WR_BYTES_LIT("x-delayed-message")));
    ck_assert_ptr_null(wr_router_type_find(WR_BYTES_LIT("")));
    ck_assert_ptr_null(wr_router_type_find(WR_BYTES_LIT("topics")));
}
END_TEST

static wr_bytes_t table2(wr_buf_t *b, const char *k1, int64_t v1, const char *k2, int64_t v2)
{
    size_t mark;

    wr_buf_reset(b);
    mark = wr_table_begin(b);
    if (k1 != NULL)
        wr_table_put_long(b, k1, v1);
    if (k2 != NULL)
        wr_table_put_long(b, k2, v2);
    wr_table_end(b, mark);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

START_TEST(binding_identity_uses_table_equivalence)
{
    const wr_router_type_t *types[] = {
        wr_router_type_find(WR_BYTES_LIT("direct")),
        wr_router_type_find(WR_BYTES_LIT("fanout")),
        wr_router_type_find(WR_BYTES_LIT("topic")),
    };
    wr_buf_t b1 = WR_BUF_INIT, b2 = WR_BUF_INIT;
    int q;

    for (size_t i = 0; i < 3; i++) {
        wr_router_t *r = wr_router_new(types[i]);
        ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b1, "a", 1, "b", 2)), WR_OK);
        /* The same table in another order is the same binding. */
        ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, "b", 2, "a", 1)),
                         WR_EEXIST);
        ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, "a", 1, NULL, 0)),
                         WR_OK);
        /* No arguments and an empty table are the same. */
        ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("k"), NO_ARGS), WR_OK);
        ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, NULL, 0, NULL, 0)),
                         WR_EEXIST);
        ck_assert_uint_eq(wr_router_count(r), 3);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, "b", 2, "a", 1)),
                         WR_OK);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, "b", 2, "a", 1)),
                         WR_ENOENT);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q), WR_BYTES_LIT("k"), table2(&b2, "a", 2, NULL, 0)),
                         WR_ENOENT);
        ck_assert_uint_eq(wr_router_count(r), 2);
        wr_router_free(r);
    }
    wr_buf_free(&b1);
    wr_buf_free(&b2);
}
END_TEST

typedef struct {
    int calls;
    char seen[256];
} collect_t;

static void collect_fn(void *ud, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    collect_t *c = ud;
    size_t len = strlen(c->seen);

    snprintf(c->seen + len, sizeof(c->seen) - len, "%s%c:%.*s:%zu", c->calls ? " " : "", *(char *)d.ptr,
             (int)key.len, (const char *)key.data, wr_table_count(args));
    c->calls++;
}

START_TEST(foreach_in_bind_order)
{
    wr_router_t *r = wr_router_new(wr_router_type_find(WR_BYTES_LIT("topic")));
    wr_buf_t b = WR_BUF_INIT;
    char qa = 'A', qb = 'B';
    collect_t c = {0};

    ck_assert_int_eq(wr_router_bind(r, queue(&qa), WR_BYTES_LIT("x.#"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&qb), WR_BYTES_LIT("y"), table2(&b, "a", 1, "b", 2)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&qa), WR_BYTES_LIT(""), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_unbind(r, queue(&qa), WR_BYTES_LIT("x.#"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&qb), WR_BYTES_LIT("z"), NO_ARGS), WR_OK);
    wr_router_foreach(r, collect_fn, &c);
    ck_assert_int_eq(c.calls, 3);
    ck_assert_str_eq(c.seen, "B:y:2 A::0 B:z:0");
    wr_buf_free(&b);
    wr_router_free(r);
}
END_TEST

/* Keys longer than any shortstr take the heap path of the map keys. */
START_TEST(long_keys)
{
    static const char *const names[] = {"direct", "fanout", "topic", "headers"};
    char key[700];
    wr_dest_set_t out;
    int q1, q2;

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    key[300] = '.';
    wr_dest_set_init(&out);
    for (size_t i = 0; i < 4; i++) {
        wr_router_t *r = wr_router_new(wr_router_type_find(wr_bytes_str(names[i])));
        ck_assert_int_eq(wr_router_bind(r, queue(&q1), wr_bytes_str(key), NO_ARGS), WR_OK);
        ck_assert_int_eq(wr_router_bind(r, queue(&q1), wr_bytes_str(key), NO_ARGS), WR_EEXIST);
        ck_assert_int_eq(wr_router_bind(r, queue(&q2), wr_bytes_str(key), NO_ARGS), WR_OK);
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, wr_bytes_str(key), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 2);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q1), wr_bytes_str(key), NO_ARGS), WR_OK);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q1), wr_bytes_str(key), NO_ARGS), WR_ENOENT);
        ck_assert_int_eq(wr_router_unbind(r, queue(&q2), (wr_bytes_t){(const uint8_t *)key, 600}, NO_ARGS),
                         WR_ENOENT);
        ck_assert(!wr_router_has_dest(r, queue(&q1)));
        ck_assert(wr_router_has_dest(r, queue(&q2)));
        ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q2)), 1);
        ck_assert_uint_eq(wr_router_count(r), 0);
        wr_router_free(r);
    }
    wr_dest_set_free(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routing-router");
    TCase *tc = tcase_create("router");

    tcase_add_test(tc, dest_set_dedup);
    tcase_add_test(tc, exchange_type_lookup);
    tcase_add_test(tc, binding_identity_uses_table_equivalence);
    tcase_add_test(tc, foreach_in_bind_order);
    tcase_add_test(tc, long_keys);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
