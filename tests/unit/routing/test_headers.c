/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for routing/headers.c: a table of (binding arguments, message
 * headers, match) rows for every x-match mode, RabbitMQ's loose top-level
 * value comparison, void values, x- keys and duplicates; x-match validation;
 * and routing with several bindings.
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

typedef struct {
    const char *key; /* NULL ends a list */
    wr_value_t v;
} kv_t;

/* Constant initialisers (no compound literals) so the rows can be static.
 * clang-format would spread each macro over a dozen lines. */
/* clang-format off */
#define BYTES(lit)    {(const uint8_t *)(lit), sizeof(lit) - 1}
#define STR(k, lit)   {k, {.type = 'S', .v.s = BYTES(lit)}}
#define BIN(k, lit)   {k, {.type = 'x', .v.s = BYTES(lit)}}
#define INT(k, t, n)  {k, {.type = t, .v.i = n}}
#define LONG(k, n)    INT(k, 'l', n)
#define DBL(k, x)     {k, {.type = 'd', .v.d = x}}
#define FLT(k, x)     {k, {.type = 'f', .v.f = x}}
#define BOOL(k, x)    {k, {.type = 't', .v.b = x}}
#define VOID(k)       {k, {.type = 'V'}}
#define TS(k, x)      {k, {.type = 'T', .v.ts = x}}
#define DEC(k, sc, x) {k, {.type = 'D', .v.dec = {sc, x}}}
#define RAW(k, t, raw) {k, {.type = t, .v.s = BYTES(raw)}}
#define XM(m)         STR("x-match", m)

/* Raw nested tables and arrays (no length prefix), built by hand. */
#define L1      "l\0\0\0\0\0\0\0\x01"
#define L2      "l\0\0\0\0\0\0\0\x02"
#define TBL_XY  "\x01" "x" L1 "\x01" "y" L2
#define TBL_YX  "\x01" "y" L2 "\x01" "x" L1
#define TBL_XI  "\x01" "x" "I\0\0\0\x01"
#define TBL_XL  "\x01" "x" "L\0\0\0\0\0\0\0\x01"
#define TBL_X1  "\x01" "x" L1
#define ARR_12  L1 L2
#define ARR_21  L2 L1
/* clang-format on */

static wr_bytes_t encode(wr_buf_t *b, const kv_t *kv)
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

static const wr_router_type_t *headers_type(void)
{
    const wr_router_type_t *t = wr_router_type_find(WR_BYTES_LIT("headers"));

    ck_assert_ptr_nonnull(t);
    return t;
}

static wr_dest_t queue(void *p)
{
    return (wr_dest_t){p, WR_DEST_QUEUE};
}

static const struct {
    const char *what;
    kv_t args[6];
    kv_t hdrs[6];
    bool match;
} rows[] = {
    /* all (the default) */
    {"all: the one key equal", {XM("all"), STR("a", "1")}, {STR("a", "1")}, true},
    {"all: a key missing", {XM("all"), LONG("a", 1), LONG("b", 2)}, {LONG("a", 1)}, false},
    {"all: a value differs", {XM("all"), LONG("a", 1), LONG("b", 2)}, {LONG("a", 1), LONG("b", 3)}, false},
    {"all: extra headers are fine",
     {XM("all"), LONG("a", 1), LONG("b", 2)},
     {LONG("c", 3), LONG("b", 2), LONG("a", 1)},
     true},
    {"default is all: match", {LONG("a", 1), LONG("b", 2)}, {LONG("b", 2), LONG("a", 1)}, true},
    {"default is all: partial", {LONG("a", 1), LONG("b", 2)}, {LONG("a", 1)}, false},
    {"all: no headers", {XM("all"), LONG("a", 1)}, {{0}}, false},
    {"all: nothing to match matches everything", {XM("all")}, {{0}}, true},
    {"no args at all matches everything", {{0}}, {STR("z", "z")}, true},
    {"all: keys in different order",
     {XM("all"), LONG("ab", 1), LONG("a", 2), LONG("b", 3)},
     {LONG("b", 3), LONG("aa", 9), LONG("a", 2), LONG("ab", 1)},
     true},
    /* any */
    {"any: one of two", {XM("any"), LONG("a", 1), LONG("b", 2)}, {LONG("b", 2)}, true},
    {"any: the last pattern key", {XM("any"), LONG("a", 1), LONG("z", 9)}, {LONG("z", 9)}, true},
    {"any: values swapped", {XM("any"), LONG("a", 1), LONG("b", 2)}, {LONG("a", 2), LONG("b", 1)}, false},
    {"any: no headers", {XM("any"), LONG("a", 1)}, {{0}}, false},
    {"any: nothing to match matches nothing", {XM("any")}, {STR("a", "1")}, false},
    /* x- keys */
    {"all: x- keys are not matched", {XM("all"), STR("x-foo", "bar")}, {{0}}, true},
    {"all: x- key ignored, other key must match",
     {XM("all"), STR("x-foo", "bar"), LONG("a", 1)},
     {LONG("a", 1)},
     true},
    {"any: x- key not matched even if present",
     {XM("any"), STR("x-foo", "bar"), LONG("a", 1)},
     {STR("x-foo", "bar")},
     false},
    {"all-with-x: x- key required", {XM("all-with-x"), STR("x-foo", "bar")}, {{0}}, false},
    {"all-with-x: x- key present", {XM("all-with-x"), STR("x-foo", "bar")}, {STR("x-foo", "bar")}, true},
    {"all-with-x: x- key wrong value",
     {XM("all-with-x"), STR("x-foo", "bar"), LONG("a", 1)},
     {STR("x-foo", "baz"), LONG("a", 1)},
     false},
    {"any-with-x: x- key is enough",
     {XM("any-with-x"), STR("x-foo", "bar"), LONG("a", 1)},
     {STR("x-foo", "bar")},
     true},
    {"any-with-x: x-match itself never matches", {XM("any-with-x")}, {STR("x-match", "any-with-x")}, false},
    {"all-with-x: x-match itself never required", {XM("all-with-x")}, {{0}}, true},
    {"x-match header in message is irrelevant",
     {XM("all"), LONG("a", 1)},
     {STR("x-match", "any"), LONG("a", 1)},
     true},
    /* values compare as Erlang's == on the decoded values: types ignored at the top */
    {"long 1 = signedint 1", {LONG("a", 1)}, {INT("a", 'I', 1)}, true},
    {"unsignedbyte 200 = short 200", {INT("a", 'B', 200)}, {INT("a", 's', 200)}, true},
    {"byte -1 != unsignedbyte 255", {INT("a", 'b', -1)}, {INT("a", 'B', 255)}, false},
    {"long 1 = double 1.0", {LONG("a", 1)}, {DBL("a", 1.0)}, true},
    {"long 1 != double 1.5", {LONG("a", 1)}, {DBL("a", 1.5)}, false},
    {"long 0 = double -0.0", {LONG("a", 0)}, {DBL("a", -0.0)}, true},
    {"long -3 = float -3.0", {LONG("a", -3)}, {FLT("a", -3.0f)}, true},
    {"float 1.5 = double 1.5", {FLT("a", 1.5f)}, {DBL("a", 1.5)}, true},
    {"2^53+1 != double 2^53", {LONG("a", 9007199254740993LL)}, {DBL("a", 9007199254740992.0)}, false},
    {"timestamp 5 = long 5", {TS("a", 5)}, {LONG("a", 5)}, true},
    {"long -1 != timestamp 2^64-1", {LONG("a", -1)}, {TS("a", UINT64_MAX)}, false},
    {"longstr \"1\" != long 1", {STR("a", "1")}, {LONG("a", 1)}, false},
    {"longstr = binary with the same bytes", {STR("a", "abc")}, {BIN("a", "abc")}, true},
    {"longstr is case-sensitive", {STR("a", "abc")}, {STR("a", "ABC")}, false},
    {"bool true != longstr \"true\"", {BOOL("a", true)}, {STR("a", "true")}, false},
    {"bool true != long 1", {BOOL("a", true)}, {LONG("a", 1)}, false},
    {"bool false = bool false", {BOOL("a", false)}, {BOOL("a", false)}, true},
    {"decimal equal", {DEC("a", 2, 100)}, {DEC("a", 2, 100)}, true},
    {"decimal same number, other scale", {DEC("a", 2, 100)}, {DEC("a", 1, 10)}, false},
    {"decimal != long", {DEC("a", 0, 1)}, {LONG("a", 1)}, false},
    /* void in a binding means "present, any value" */
    {"void: present as longstr", {VOID("a")}, {STR("a", "anything")}, true},
    {"void: present as void", {VOID("a")}, {VOID("a")}, true},
    {"void: absent", {VOID("a")}, {STR("b", "x")}, false},
    {"void: any with another key", {XM("any"), VOID("a"), LONG("b", 1)}, {LONG("a", 7)}, true},
    {"longstr != void header", {STR("a", "x")}, {VOID("a")}, false},
    /* nested tables and arrays: compared in order, with types */
    {"table equal", {RAW("a", 'F', TBL_XY)}, {RAW("a", 'F', TBL_XY)}, true},
    {"table in another order", {RAW("a", 'F', TBL_XY)}, {RAW("a", 'F', TBL_YX)}, false},
    {"nested long != nested signedint", {RAW("a", 'F', TBL_X1)}, {RAW("a", 'F', TBL_XI)}, false},
    {"nested 'l' = nested 'L'", {RAW("a", 'F', TBL_X1)}, {RAW("a", 'F', TBL_XL)}, true},
    {"array equal", {RAW("a", 'A', ARR_12)}, {RAW("a", 'A', ARR_12)}, true},
    {"array in another order", {RAW("a", 'A', ARR_12)}, {RAW("a", 'A', ARR_21)}, false},
    {"array prefix", {RAW("a", 'A', ARR_12)}, {RAW("a", 'A', L1)}, false},
    {"array long != array signedint", {RAW("a", 'A', L1)}, {RAW("a", 'A', "I\0\0\0\x01")}, false},
    {"array 'l' = array 'L'", {RAW("a", 'A', L1)}, {RAW("a", 'A', "L\0\0\0\0\0\0\0\x01")}, true},
    {"empty table = empty array", {RAW("a", 'F', "")}, {RAW("a", 'A', "")}, true},
    {"non-empty table != non-empty array", {RAW("a", 'F', TBL_X1)}, {RAW("a", 'A', L1)}, false},
    /* duplicate keys: the sorted merge consumes the first header of a key */
    {"duplicate header: the first counts", {LONG("a", 2)}, {LONG("a", 1), LONG("a", 2)}, false},
    {"duplicate header, any: still the first",
     {XM("any"), LONG("a", 2)},
     {LONG("a", 1), LONG("a", 2)},
     false},
    {"duplicate pattern key meets the next header",
     {LONG("a", 1), LONG("a", 2)},
     {LONG("a", 1), LONG("a", 2)},
     true},
    {"duplicate pattern key, one header", {LONG("a", 1), LONG("a", 1)}, {LONG("a", 1)}, false},
};

START_TEST(headers_rows)
{
    wr_router_t *r = wr_router_new(headers_type());
    wr_buf_t ab = WR_BUF_INIT, hb = WR_BUF_INIT;
    wr_dest_set_t out;
    int q;

    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q), WR_BYTES_LIT(""), encode(&ab, rows[_i].args)), WR_OK);
    ck_assert(wr_router_route(r, WR_BYTES_LIT("ignored"), encode(&hb, rows[_i].hdrs), &out));
    ck_assert_msg(out.count == (rows[_i].match ? 1u : 0u), "%s: expected %s", rows[_i].what,
                  rows[_i].match ? "match" : "no match");
    wr_dest_set_free(&out);
    wr_buf_free(&ab);
    wr_buf_free(&hb);
    wr_router_free(r);
}
END_TEST

START_TEST(headers_no_headers_table)
{
    wr_router_t *r = wr_router_new(headers_type());
    wr_buf_t ab = WR_BUF_INIT;
    wr_dest_set_t out;
    int q1, q2;
    const kv_t all_empty[] = {XM("all"), {0}};
    const kv_t any_void[] = {XM("any"), VOID("a"), {0}};

    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), NO_ARGS, encode(&ab, all_empty)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), NO_ARGS, encode(&ab, any_void)), WR_OK);
    ck_assert(wr_router_route(r, NO_ARGS, NO_ARGS, &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    wr_dest_set_free(&out);
    wr_buf_free(&ab);
    wr_router_free(r);
}
END_TEST

START_TEST(headers_x_match_validation)
{
    static const kv_t good[][3] = {
        {XM("all"), {0}},
        {XM("any"), {0}},
        {XM("all-with-x"), {0}},
        {XM("any-with-x"), {0}},
        {LONG("a", 1), {0}},
        /* the first x-match wins, as table_lookup does */
        {XM("any"), XM("bogus"), {0}},
    };
    static const kv_t bad[][2] = {
        {XM("foo")},
        {XM("ALL")},
        {XM("")},
        {XM("all ")},
        {LONG("x-match", 1)},
        {BIN("x-match", "all")},
        {BOOL("x-match", true)},
    };
    wr_router_t *r = wr_router_new(headers_type());
    wr_buf_t ab = WR_BUF_INIT;
    int q[sizeof(good) / sizeof(good[0])];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_int_eq(wr_router_bind(r, queue(&q[i]), NO_ARGS, encode(&ab, good[i])), WR_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(wr_router_bind(r, queue(&q[0]), NO_ARGS, encode(&ab, bad[i])) == WR_ESYNTAX, "bad[%zu]",
                      i);
    ck_assert_uint_eq(wr_router_count(r), sizeof(good) / sizeof(good[0]));
    /* A refused binding leaves nothing behind: q[0] still has exactly one. */
    ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q[0])), 1);
    wr_buf_free(&ab);
    wr_router_free(r);
}
END_TEST

START_TEST(headers_many_bindings)
{
    static const kv_t a1[] = {XM("all"), LONG("a", 1), {0}};
    static const kv_t a1b2[] = {XM("all"), LONG("a", 1), LONG("b", 2), {0}};
    static const kv_t any_b2c3[] = {XM("any"), LONG("b", 2), LONG("c", 3), {0}};
    static const kv_t hdr_a1b2[] = {LONG("a", 1), LONG("b", 2), {0}};
    static const kv_t hdr_c3[] = {LONG("c", 3), {0}};
    wr_router_t *r = wr_router_new(headers_type());
    wr_buf_t ab = WR_BUF_INIT, hb = WR_BUF_INIT;
    wr_dest_set_t out;
    int q1, q2, q3;

    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), NO_ARGS, encode(&ab, a1)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), NO_ARGS, encode(&ab, a1b2)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), NO_ARGS, encode(&ab, a1b2)), WR_EEXIST);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), NO_ARGS, encode(&ab, a1b2)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q3), NO_ARGS, encode(&ab, any_b2c3)), WR_OK);
    /* The binding key is part of identity even though headers ignores it. */
    ck_assert_int_eq(wr_router_bind(r, queue(&q3), WR_BYTES_LIT("k"), encode(&ab, any_b2c3)), WR_OK);
    ck_assert_uint_eq(wr_router_count(r), 5);

    ck_assert(wr_router_route(r, WR_BYTES_LIT("k"), encode(&hb, hdr_a1b2), &out));
    ck_assert_uint_eq(out.count, 3);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    ck_assert(wr_dest_set_has(&out, queue(&q2)));
    ck_assert(wr_dest_set_has(&out, queue(&q3)));

    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, NO_ARGS, encode(&hb, hdr_c3), &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q3)));

    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), NO_ARGS, encode(&ab, a1)), WR_ENOENT);
    ck_assert_int_eq(wr_router_unbind(r, queue(&q2), NO_ARGS, encode(&ab, a1b2)), WR_OK);
    ck_assert_uint_eq(wr_router_unbind_dest(r, queue(&q3)), 2);
    wr_dest_set_clear(&out);
    ck_assert(wr_router_route(r, NO_ARGS, encode(&hb, hdr_a1b2), &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    wr_dest_set_free(&out);
    wr_buf_free(&ab);
    wr_buf_free(&hb);
    wr_router_free(r);
}
END_TEST

/* More headers than the on-stack sort buffer holds, in reverse order. */
START_TEST(headers_large_table)
{
    static const kv_t want[] = {LONG("k10", 10), LONG("k49", 49), LONG("k0", 0), {0}};
    static const kv_t wrong[] = {LONG("k10", 10), LONG("k11", 10), {0}};
    wr_router_t *r = wr_router_new(headers_type());
    wr_buf_t ab = WR_BUF_INIT, hb = WR_BUF_INIT;
    wr_dest_set_t out;
    char key[8];
    size_t mark;
    int q1, q2;

    mark = wr_table_begin(&hb);
    for (int i = 49; i >= 0; i--) {
        snprintf(key, sizeof(key), "k%d", i);
        wr_table_put_long(&hb, key, i);
    }
    wr_table_end(&hb, mark);
    ck_assert(wr_buf_ok(&hb));
    wr_dest_set_init(&out);
    ck_assert_int_eq(wr_router_bind(r, queue(&q1), NO_ARGS, encode(&ab, want)), WR_OK);
    ck_assert_int_eq(wr_router_bind(r, queue(&q2), NO_ARGS, encode(&ab, wrong)), WR_OK);
    ck_assert(wr_router_route(r, NO_ARGS, (wr_bytes_t){hb.data + 4, hb.len - 4}, &out));
    ck_assert_uint_eq(out.count, 1);
    ck_assert(wr_dest_set_has(&out, queue(&q1)));
    wr_dest_set_free(&out);
    wr_buf_free(&ab);
    wr_buf_free(&hb);
    wr_router_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routing-headers");
    TCase *tc = tcase_create("headers");

    tcase_add_loop_test(tc, headers_rows, 0, (int)(sizeof(rows) / sizeof(rows[0])));
    tcase_add_test(tc, headers_no_headers_table);
    tcase_add_test(tc, headers_x_match_validation);
    tcase_add_test(tc, headers_many_bindings);
    tcase_add_test(tc, headers_large_table);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
