/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for routing/topic.c: a table of (pattern, key, match) rows, the
 * multi-binding scenario from RabbitMQ's own topic tests, a randomised check
 * against a naive matcher, identity errors, and trie pruning under churn.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"
#include "protocol/table.h"
#include "routing/router.h"
#include "routing/topic.h"
#include "tests/unit/runner.h"

#define NO_ARGS ((wr_bytes_t){NULL, 0})

static const wr_router_type_t *topic_type(void)
{
    const wr_router_type_t *t = wr_router_type_find(WR_BYTES_LIT("topic"));

    ck_assert_ptr_nonnull(t);
    return t;
}

static wr_dest_t queue(void *p)
{
    return (wr_dest_t){p, WR_DEST_QUEUE};
}

/* ---- single pattern against single key ---------------------------------- */

static const struct {
    const char *pattern;
    const char *key;
    bool match;
} rows[] = {
    /* plain words */
    {"a.b.c", "a.b.c", true},
    {"a.b.c", "a.b", false},
    {"a.b", "a.b.c", false},
    {"a.b.c", "A.b.c", false},
    {"a", "a", true},
    {"a", "b", false},
    /* the empty key has no words; "" and "#"-only patterns match it */
    {"", "", true},
    {"", "a", false},
    {"a", "", false},
    {"#", "", true},
    {"#.#", "", true},
    {"*", "", false},
    {"*.#", "", false},
    {"#.*.#", "", false},
    /* '*' is exactly one word */
    {"*", "a", true},
    {"*", "a.b", false},
    {"a.*", "a.b", true},
    {"a.*", "a", false},
    {"a.*", "a.b.c", false},
    {"*.*.*", "a.b.c", true},
    {"*.*.*", "a.b", false},
    {"*.b.*", "a.b.c", true},
    /* '#' is zero or more words, anywhere */
    {"#", "a.b.c", true},
    {"a.#", "a", true},
    {"a.#", "a.b.c", true},
    {"a.#", "b", false},
    {"a.#", "b.a", false},
    {"#.a", "a", true},
    {"#.a", "x.y.a", true},
    {"#.a", "a.b", false},
    {"a.#.b", "a.b", true},
    {"a.#.b", "a.x.y.b", true},
    {"a.#.b", "a.b.c", false},
    {"#.b.#", "b", true},
    {"#.b.#", "a.b.c", true},
    {"#.b.#", "a.c", false},
    {"#.#", "a.b", true},
    {"#.#.#", "a", true},
    {"a.#.#.b", "a.b", true},
    {"a.#.#.b", "a.x.b", true},
    {"#.*", "a.b", true},
    {"#.*", "", false},
    {"*.#", "a", true},
    {"#.*.#", "a", true},
    {"a.#.c.#.e", "a.c.e", true},
    {"a.#.c.#.e", "a.b.c.d.e", true},
    {"a.#.c.#.e", "a.b.d.e", false},
    {"#.a.#.a", "a.a", true},
    {"#.a.#.a", "a", false},
    /* empty words are words */
    {"a..b", "a..b", true},
    {"a..b", "a.b", false},
    {"a.*.b", "a..b", true},
    {"a.", "a.", true},
    {"a.", "a", false},
    {"a.*", "a.", true},
    {".", ".", true},
    {"*.*", ".", true},
    {"*", ".", false},
    {"#", ".", true},
    {".a", ".a", true},
    {"*.a", ".a", true},
    {"a.#", "a.", true},
    {"a.#.", "a.", true},
    {"a.#.", "a", false},
    /* wildcards only as whole words; in a key they are plain words */
    {"a*", "ab", false},
    {"a*", "a*", true},
    {"#a", "a", false},
    {"#a", "#a", true},
    {"a.*", "a.*", true},
    {"a.b", "a.*", false},
    {"a.#", "a.#", true},
    {"x.#", "a.#", false},
    {"*", "#", true},
};

START_TEST(topic_rows)
{
    wr_router_t *r = wr_router_new(topic_type());
    wr_dest_set_t out;
    int q;

    ck_assert_ptr_nonnull(r);
    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), wr_bytes_str(rows[_i].pattern), NO_ARGS), WR_OK);
    ck_assert(wr_router_route(r, wr_bytes_str(rows[_i].key), NO_ARGS, &out));
    ck_assert_msg(out.count == (rows[_i].match ? 1u : 0u), "pattern '%s' key '%s': expected %s",
                  rows[_i].pattern, rows[_i].key, rows[_i].match ? "match" : "no match");
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

/* ---- many bindings: RabbitMQ's topic_matching scenario ------------------ */

static const char *const patterns[] = {
    "a.b.c",         "a.*.c", "a.#.b", "a.b.b.c", "#",     "#.#",   "#.b", "*.*",   "a.*",
    "*.b.c",         "a.#",   "a.#.#", "b.b.c",   "a.b.b", "a.b",   "b.c", "",      "*.*.*",
    "vodka.martini", "a.b.c", "*.#",   "#.*.#",   "*.#.#", "#.#.#", "*",   "#.b.#",
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

/* t1..t26 as in RabbitMQ's test, plus t27 bound twice to "args-test" with different args. */
static char dests[28];

static void collect(wr_router_t *r, const char *key, char *got, size_t n)
{
    wr_dest_set_t out;

    wr_dest_set_init(&out);
    ck_assert(wr_router_route(r, wr_bytes_str(key), NO_ARGS, &out));
    got[0] = '\0';
    for (size_t t = 1; t <= 27; t++) {
        if (wr_dest_set_has(&out, queue(&dests[t]))) {
            size_t len = strlen(got);
            snprintf(got + len, n - len, "%st%zu", len ? " " : "", t);
        }
    }
    wr_dest_set_free(&out);
}

static void expect(wr_router_t *r, const char *key, const char *want)
{
    char got[256];

    collect(r, key, got, sizeof(got));
    ck_assert_msg(strcmp(got, want) == 0, "key '%s': got [%s], want [%s]", key, got, want);
}

static wr_bytes_t one_str_table(wr_buf_t *b, const char *k, const char *v)
{
    size_t mark;

    wr_buf_reset(b);
    mark = wr_table_begin(b);
    wr_table_put_str(b, k, v);
    wr_table_end(b, mark);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

START_TEST(topic_many_bindings)
{
    wr_router_t *r = wr_router_new(topic_type());
    wr_buf_t bar = WR_BUF_INIT, baz = WR_BUF_INIT;
    wr_bytes_t args_bar = one_str_table(&bar, "foo", "bar");
    wr_bytes_t args_baz = one_str_table(&baz, "foo", "baz");
    static const int removed[] = {1, 5, 11, 19, 21};

    for (size_t i = 0; i < NPATTERNS; i++)
        ck_assert_int_eq(wr_router_bind(r, queue(&dests[i + 1]), wr_bytes_str(patterns[i]), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&dests[27]), WR_BYTES_LIT("args-test"), args_bar), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&dests[27]), WR_BYTES_LIT("args-test"), args_baz), WR_OK);
    ck_assert_uint_eq(wr_router_count(r), 28);

    expect(r, "a.b.c", "t1 t2 t5 t6 t10 t11 t12 t18 t20 t21 t22 t23 t24 t26");
    expect(r, "a.b", "t3 t5 t6 t7 t8 t9 t11 t12 t15 t21 t22 t23 t24 t26");
    expect(r, "a.b.b", "t3 t5 t6 t7 t11 t12 t14 t18 t21 t22 t23 t24 t26");
    expect(r, "", "t5 t6 t17 t24");
    expect(r, "b.c.c", "t5 t6 t18 t21 t22 t23 t24 t26");
    expect(r, "a.a.a.a.a", "t5 t6 t11 t12 t21 t22 t23 t24");
    expect(r, "vodka.gin", "t5 t6 t8 t21 t22 t23 t24");
    expect(r, "vodka.martini", "t5 t6 t8 t19 t21 t22 t23 t24");
    expect(r, "b.b.c", "t5 t6 t10 t13 t18 t21 t22 t23 t24 t26");
    expect(r, "nothing.here.at.all", "t5 t6 t21 t22 t23 t24");
    expect(r, "oneword", "t5 t6 t21 t22 t23 t24 t25");
    expect(r, "args-test", "t5 t6 t21 t22 t23 t24 t25 t27");

    /* The same removals as RabbitMQ's test: bindings 1, 5, 11, 19, 21 and one of t27's. */
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
        int n = removed[i];
        ck_assert_int_eq(wr_router_unbind(r, queue(&dests[n]), wr_bytes_str(patterns[n - 1]), NO_ARGS),
                         WR_OK);
    }
    ck_assert_int_eq(wr_router_unbind(r, queue(&dests[27]), WR_BYTES_LIT("args-test"), args_bar), WR_OK);
    ck_assert_uint_eq(wr_router_count(r), 22);

    expect(r, "a.b.c", "t2 t6 t10 t12 t18 t20 t22 t23 t24 t26");
    expect(r, "a.b", "t3 t6 t7 t8 t9 t12 t15 t22 t23 t24 t26");
    expect(r, "a.b.b", "t3 t6 t7 t12 t14 t18 t22 t23 t24 t26");
    expect(r, "", "t6 t17 t24");
    expect(r, "b.c.c", "t6 t18 t22 t23 t24 t26");
    expect(r, "a.a.a.a.a", "t6 t12 t22 t23 t24");
    expect(r, "vodka.gin", "t6 t8 t22 t23 t24");
    expect(r, "vodka.martini", "t6 t8 t22 t23 t24");
    expect(r, "b.b.c", "t6 t10 t13 t18 t22 t23 t24 t26");
    expect(r, "nothing.here.at.all", "t6 t22 t23 t24");
    expect(r, "oneword", "t6 t22 t23 t24 t25");
    expect(r, "args-test", "t6 t22 t23 t24 t25 t27");

    wr_buf_free(&bar);
    wr_buf_free(&baz);
    wr_router_free(r);
}
END_TEST

START_TEST(topic_dedup_one_dest_many_patterns)
{
    wr_router_t *r = wr_router_new(topic_type());
    wr_dest_set_t out;
    int q1, q2;

    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("#"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.b"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), WR_BYTES_LIT("#.b"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, (wr_dest_t){&q2, WR_DEST_EXCHANGE}, WR_BYTES_LIT("a.b"), NO_ARGS),
                     WR_OK);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("a.b"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 3);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    ck_assert(wr_dest_set_has(&out, queue(&q2)));
    ck_assert(wr_dest_set_has(&out, (wr_dest_t){&q2, WR_DEST_EXCHANGE}));

    /* Routing more keys (CC headers) into the same set keeps it deduplicated. */
    ck_assert(wr_router_route(r, WR_BYTES_LIT("x.b"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 3);

    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("c"), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

/* ---- randomised: the trie against a naive recursive matcher ------------- */

static size_t split(const char *s, const char **w, size_t *len, size_t max)
{
    size_t n = 0;

    if (*s == '\0')
        return 0;
    for (;;) {
        const char *dot = strchr(s, '.');
        ck_assert_uint_lt(n, max);
        w[n] = s;
        len[n] = dot ? (size_t)(dot - s) : strlen(s);
        n++;
        if (dot == NULL)
            return n;
        s = dot + 1;
    }
}

static bool word_is(const char *w, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(w, lit, len) == 0;
}

static bool naive(const char **pw, const size_t *pl, size_t np, const char **kw, const size_t *kl, size_t nk)
{
    if (np == 0)
        return nk == 0;
    if (word_is(pw[0], pl[0], "#"))
        return naive(pw + 1, pl + 1, np - 1, kw, kl, nk) ||
               (nk > 0 && naive(pw, pl, np, kw + 1, kl + 1, nk - 1));
    if (nk == 0)
        return false;
    if (!word_is(pw[0], pl[0], "*") && (pl[0] != kl[0] || memcmp(pw[0], kw[0], pl[0]) != 0))
        return false;
    return naive(pw + 1, pl + 1, np - 1, kw + 1, kl + 1, nk - 1);
}

static void random_words(char *out, size_t cap, const char *const *alphabet, size_t nalpha, int maxwords)
{
    int n = rand() % (maxwords + 1);

    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i ? "." : "", alphabet[(size_t)rand() % nalpha]);
    }
}

START_TEST(topic_random_vs_naive)
{
    static const char *const pat_alpha[] = {"a", "b", "", "*", "#", "#", "*"};
    static const char *const key_alpha[] = {"a", "b", ""};
    enum { NPAT = 300, NKEY = 400 };
    static char pats[NPAT][64];
    wr_router_t *r = wr_router_new(topic_type());
    wr_dest_set_t out;

    srand(12345);
    wr_dest_set_init(&out);
    for (int i = 0; i < NPAT; i++) {
        random_words(pats[i], sizeof(pats[i]), pat_alpha, 7, 6);
        ck_assert_int_eq(wr_router_bind(r, queue(pats[i]), wr_bytes_str(pats[i]), NO_ARGS), WR_OK);
    }
    for (int k = 0; k < NKEY; k++) {
        char key[64];
        const char *kw[16], *pw[16];
        size_t kl[16], pl[16], nk, expected = 0;

        random_words(key, sizeof(key), key_alpha, 3, 7);
        nk = split(key, kw, kl, 16);
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, wr_bytes_str(key), NO_ARGS, &out));
        for (int i = 0; i < NPAT; i++) {
            size_t np = split(pats[i], pw, pl, 16);
            bool want = naive(pw, pl, np, kw, kl, nk);
            expected += want;
            /* ck_abort only on failure: a passing ck_assert costs a syscall. */
            if (wr_dest_set_has(&out, queue(pats[i])) != want)
                ck_abort_msg("pattern '%s' key '%s': want %d", pats[i], key, want);
        }
        ck_assert_uint_eq(out.count, expected);
    }
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

/* Many '#' in one pattern: without per-'#' memoisation this key would take
 * about C(127, 7) steps and time the test out. */
START_TEST(topic_many_hashes_stay_cheap)
{
    wr_router_t *r = wr_router_new(topic_type());
    wr_dest_set_t out;
    char key[256] = "";
    int q;

    for (int i = 0; i < 120; i++)
        strcat(key, "a.");
    strcat(key, "x");
    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("#.#.#.#.#.#.#.#.y"), NO_ARGS), WR_OK);
    ck_assert(wr_router_route(r, wr_bytes_str(key), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 0);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("#.a.#.a.#.a.#.x"), NO_ARGS), WR_OK);
    ck_assert(wr_router_route(r, wr_bytes_str(key), NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 1);
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

/* ---- identity, unbinding, pruning --------------------------------------- */

START_TEST(topic_bind_identity)
{
    wr_router_t *r = wr_router_new(topic_type());
    wr_buf_t b1 = WR_BUF_INIT, b2 = WR_BUF_INIT;
    wr_bytes_t bar = one_str_table(&b1, "foo", "bar");
    wr_bytes_t baz = one_str_table(&b2, "foo", "baz");
    int q1, q2;

    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), NO_ARGS), WR_EEXIST);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), bar), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), bar), WR_EEXIST);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), WR_BYTES_LIT("a.*"), baz), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), WR_BYTES_LIT("a.*"), NO_ARGS), WR_OK);
    ck_assert_uint_eq(wr_router_count(r), 4);

    ck_assert_int_eq(wr_router_unbind(r, queue(&q1), WR_BYTES_LIT("a.b"), NO_ARGS), WR_ENOENT);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("a.*"), bar), WR_ENOENT);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q1), WR_BYTES_LIT("a.*"), bar), WR_OK);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q1), WR_BYTES_LIT("a.*"), bar), WR_ENOENT);
    ck_assert_uint_eq(wr_router_count(r), 3);

    ck_assert(wr_router_has_dest(r, queue(&q1)));
    ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q1)), 2);
    ck_assert(!wr_router_has_dest(r, queue(&q1)));
    ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q1)), 0);
    ck_assert(wr_router_has_dest(r, queue(&q2)));
    ck_assert_uint_eq(wr_router_count(r), 1);
    ck_assert_uint_eq(wr_topic_node_count(r), 2);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), WR_BYTES_LIT("a.*"), NO_ARGS), WR_OK);
    ck_assert_uint_eq(wr_topic_node_count(r), 0);
    wr_buf_free(&b1);
    wr_buf_free(&b2);
    wr_router_free(r);
}
END_TEST

START_TEST(topic_prune_after_churn)
{
    enum { N = 10000 };
    static int qs[N];
    static const char *const shapes[] = {"p%d.*.x.#", "#.%d", "%d", "a.%d.#.b", "*.*.%d", "a..%d."};
    wr_router_t *r = wr_router_new(topic_type());
    wr_dest_set_t out;
    char key[64];

    wr_dest_set_init(&out);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), shapes[i % 6], i);
            ck_assert_int_eq(wr_router_bind(r, queue(&qs[i]), wr_bytes_str(key), NO_ARGS), WR_OK);
        }
        ck_assert_uint_eq(wr_router_count(r), N);
        ck_assert_uint_gt(wr_topic_node_count(r), N);

        /* Spot-check routing on the big trie: exactly the expected few match. */
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("44"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 1);
        ck_assert(wr_dest_set_has(&out, queue(&qs[44])));
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("x.y.43"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 1);
        ck_assert(wr_dest_set_has(&out, queue(&qs[43])));
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("q.r.10"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 1);
        ck_assert(wr_dest_set_has(&out, queue(&qs[10])));
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("a.3.q.b"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 1);
        ck_assert(wr_dest_set_has(&out, queue(&qs[3])));
        wr_dest_set_clear(&out);
        ck_assert(wr_router_route(r, WR_BYTES_LIT("p6.z.x"), NO_ARGS, &out));
        ck_assert_uint_eq(out.count, 1);
        ck_assert(wr_dest_set_has(&out, queue(&qs[6])));

        /* First round unbinds one by one, second by destination. */
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), shapes[i % 6], i);
            if (round == 0)
                ck_assert_int_eq(wr_router_unbind(r, queue(&qs[i]), wr_bytes_str(key), NO_ARGS), WR_OK);
            else
                ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&qs[i])), 1);
        }
        ck_assert_uint_eq(wr_router_count(r), 0);
        ck_assert_uint_eq(wr_topic_node_count(r), 0);
    }
    wr_dest_set_free(&out);
    wr_router_free(r);
}
END_TEST

START_TEST(topic_free_with_bindings)
{
    wr_router_t *r = wr_router_new(topic_type());
    int q;

    ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("a.#.b.*"), NO_ARGS), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT("a.#.c"), NO_ARGS), WR_OK);
    /* Freeing a router that still has bindings must release everything (ASan checks). */
    wr_router_free(r);
    wr_router_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routing-topic");
    TCase *tc = tcase_create("topic");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, topic_rows, 0, (int)(sizeof(rows) / sizeof(rows[0])));
    tcase_add_test(tc, topic_many_bindings);
    tcase_add_test(tc, topic_dedup_one_dest_many_patterns);
    tcase_add_test(tc, topic_random_vs_naive);
    tcase_add_test(tc, topic_many_hashes_stay_cheap);
    tcase_add_test(tc, topic_bind_identity);
    tcase_add_test(tc, topic_prune_after_churn);
    tcase_add_test(tc, topic_free_with_bindings);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
