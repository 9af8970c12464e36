/* SPDX-License-Identifier: MIT */
/*
 * The headers exchange type, matching RabbitMQ's rabbit_exchange_type_headers:
 * both the binding's arguments and the message's headers are sorted by key
 * (stably, as lists:keysort) and merged, and values compare as Erlang's ==
 * compares the decoded terms, which is not the same as wr_value_eq.
 */
#include "routing/headers.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/status.h"
#include "protocol/table.h"

typedef struct {
    wr_bytes_t key;
    wr_value_t val;
} hdr_entry_t;

/* A binding's arguments prepared for matching: x-match decoded, the keys
 * that do not take part removed, the rest sorted. Points into b->args. */
typedef struct {
    bool any;
    size_t n;
    hdr_entry_t e[];
} hdr_pattern_t;

/* ---- value comparison --------------------------------------------------- */

/* An integer as Erlang holds it, unbounded in principle: sign and magnitude
 * cover both int64 and the uint64 of timestamps. */
typedef struct {
    bool neg;
    uint64_t mag;
} hdr_int_t;

static bool tag_is_float(uint8_t t)
{
    return t == 'f' || t == 'd';
}

static bool tag_is_binary(uint8_t t)
{
    return t == 'S' || t == 'x';
}

static bool tag_is_list(uint8_t t)
{
    return t == 'F' || t == 'A';
}

/* The integer value of an integer-tagged value (timestamps included). */
static bool value_integer(const wr_value_t *v, hdr_int_t *out)
{
    int64_t i;

    if (v->type == 'T') {
        *out = (hdr_int_t){false, v->v.ts};
        return true;
    }
    if (!wr_value_int(v, &i))
        return false;
    *out = (hdr_int_t){i < 0, i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i};
    return true;
}

static double value_float(const wr_value_t *v)
{
    return v->type == 'f' ? (double)v->v.f : v->v.d;
}

/* The integer a float is exactly equal to, if any (Erlang: 1 == 1.0). */
static bool float_integer(double d, hdr_int_t *out)
{
    if (d >= 0) {
        uint64_t u;
        if (!(d < 18446744073709551616.0))
            return false;
        u = (uint64_t)d;
        *out = (hdr_int_t){false, u};
        return (double)u == d;
    }
    if (!(d >= -9223372036854775808.0)) /* also rejects NaN */
        return false;
    int64_t i = (int64_t)d;
    *out = (hdr_int_t){true, (uint64_t)0 - (uint64_t)i};
    return (double)i == d;
}

static bool value_is_number(const wr_value_t *v)
{
    int64_t i;

    return tag_is_float(v->type) || v->type == 'T' || wr_value_int(v, &i);
}

/* The exact integer a number equals, if it has one (Erlang: 1 == 1.0). */
static bool number_integer(const wr_value_t *v, hdr_int_t *out)
{
    if (tag_is_float(v->type))
        return float_integer(value_float(v), out);
    return value_integer(v, out);
}

/* Erlang == between two numbers of any integer or float type. */
static bool number_eq(const wr_value_t *a, const wr_value_t *b)
{
    hdr_int_t ia, ib;

    if (tag_is_float(a->type) && tag_is_float(b->type))
        return value_float(a) == value_float(b);
    return number_integer(a, &ia) && number_integer(b, &ib) && ia.neg == ib.neg && ia.mag == ib.mag;
}

static bool value_eq_typed(const wr_value_t *a, const wr_value_t *b);

/* Nested tables are lists of {Key, Type, Value}: equal in order, types included. */
static bool table_eq_ordered(wr_bytes_t a, wr_bytes_t b)
{
    wr_table_iter_t ia, ib;
    wr_bytes_t ka, kb;
    wr_value_t va, vb;

    wr_table_iter_init(&ia, a);
    wr_table_iter_init(&ib, b);
    for (;;) {
        bool more_a = wr_table_next(&ia, &ka, &va);
        bool more_b = wr_table_next(&ib, &kb, &vb);
        if (!more_a || !more_b)
            return more_a == more_b;
        if (!wr_bytes_eq(ka, kb) || !value_eq_typed(&va, &vb))
            return false;
    }
}

/* The tag as the type RabbitMQ decodes it to: 'l' and 'L' are both long. */
static uint8_t tag_type(uint8_t t)
{
    return t == 'L' ? 'l' : t;
}

/* {Type, Value} == {Type, Value}: what a value inside a table or array compares as. */
static bool value_eq_typed(const wr_value_t *a, const wr_value_t *b)
{
    if (tag_type(a->type) != tag_type(b->type))
        return false;
    switch (a->type) {
    case 't':
        return a->v.b == b->v.b;
    case 'f':
    case 'd':
        return value_float(a) == value_float(b);
    case 'D':
        return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
    case 'T':
        return a->v.ts == b->v.ts;
    case 'S':
    case 'x':
        return wr_bytes_eq(a->v.s, b->v.s);
    case 'V':
        return true;
    case 'F':
        return table_eq_ordered(a->v.s, b->v.s);
    case 'A':
        return wr_array_eq_by(a->v.s, b->v.s, value_eq_typed); /* lists of {Type, Value} */
    default:
        return a->v.i == b->v.i; /* every other tag is an integer */
    }
}

/*
 * Value == Value at the top level, where RabbitMQ compares the values and
 * ignores their types: a long 1 equals a signedint 1 and a double 1.0, a
 * longstr equals a binary with the same bytes, and an empty table equals an
 * empty array (both are []).
 */
static bool value_eq_untyped(const wr_value_t *a, const wr_value_t *b)
{
    bool na = value_is_number(a), nb = value_is_number(b);

    if (na || nb)
        return na && nb && number_eq(a, b);
    if (tag_is_binary(a->type) && tag_is_binary(b->type))
        return wr_bytes_eq(a->v.s, b->v.s);
    if (tag_is_list(a->type) && tag_is_list(b->type) && a->type != b->type)
        return a->v.s.len == 0 && b->v.s.len == 0;
    return value_eq_typed(a, b);
}

/* ---- patterns ----------------------------------------------------------- */

/* By key, ties broken by position in the table (keys later in the raw bytes
 * came later), which makes qsort as stable as lists:keysort. */
static int entry_cmp(const void *pa, const void *pb)
{
    const hdr_entry_t *a = pa, *b = pb;
    int c = wr_bytes_cmp(a->key, b->key);

    if (c != 0)
        return c;
    if (a->key.data != b->key.data)
        return (uintptr_t)a->key.data < (uintptr_t)b->key.data ? -1 : 1;
    return 0;
}

static int headers_add(wr_router_t *r, wr_binding_t *b)
{
    bool with_x = false, any = false;
    hdr_pattern_t *p;
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t val;

    /* A missing x-match means all; anything but the four longstrs is refused
     * (RabbitMQ's validate_binding), which the broker reports as a 406. */
    if (wr_table_get(b->args, "x-match", &val)) {
        if (val.type != 'S')
            return WR_ESYNTAX;
        if (wr_bytes_eq_str(val.v.s, "any")) {
            any = true;
        } else if (wr_bytes_eq_str(val.v.s, "all-with-x")) {
            with_x = true;
        } else if (wr_bytes_eq_str(val.v.s, "any-with-x")) {
            any = with_x = true;
        } else if (!wr_bytes_eq_str(val.v.s, "all")) {
            return WR_ESYNTAX;
        }
    }
    p = malloc(sizeof(*p) + wr_table_count(b->args) * sizeof(p->e[0]));
    if (p == NULL)
        return WR_ENOMEM;
    p->any = any;
    p->n = 0;
    wr_table_iter_init(&it, b->args);
    while (wr_table_next(&it, &key, &val)) {
        /* x-match never takes part; other x- keys only in the -with-x modes. */
        if (wr_bytes_eq_str(key, "x-match") || (!with_x && wr_bytes_has_prefix(key, "x-")))
            continue;
        p->e[p->n++] = (hdr_entry_t){key, val};
    }
    qsort(p->e, p->n, sizeof(p->e[0]), entry_cmp);
    b->type_data = p;
    return WR_OK;
}

static void headers_remove(wr_router_t *r, wr_binding_t *b)
{
    free(b->type_data);
}

/* The first of data[from, n) whose key is not below key (data is sorted). */
static size_t lower_bound(const hdr_entry_t *data, size_t from, size_t n, wr_bytes_t key)
{
    while (from < n) {
        size_t mid = from + (n - from) / 2;
        if (wr_bytes_cmp(data[mid].key, key) < 0)
            from = mid + 1;
        else
            n = mid;
    }
    return from;
}

/*
 * RabbitMQ's merge: walk the pattern in key order; a pattern key missing from
 * the headers fails "all"; a present key matches if the pattern's value is
 * void (presence is enough) or equal; the first matching key from the
 * headers is consumed so a repeated pattern key meets the next one.
 */
static bool pattern_match(const hdr_pattern_t *p, const hdr_entry_t *data, size_t n)
{
    size_t pos = 0;

    for (size_t i = 0; i < p->n; i++) {
        const hdr_entry_t *pe = &p->e[i];
        bool hit = false;

        pos = lower_bound(data, pos, n, pe->key);
        if (pos < n && wr_bytes_eq(data[pos].key, pe->key)) {
            hit = pe->val.type == 'V' || value_eq_untyped(&pe->val, &data[pos].val);
            pos++;
        }
        if (hit && p->any)
            return true;
        if (!hit && !p->any)
            return false;
    }
    return !p->any;
}

static bool headers_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out)
{
    hdr_entry_t small[32], *data = small;
    size_t n, i = 0;
    wr_table_iter_t it;
    const wr_list_t *pos;
    bool ok = true;

    if (r->count == 0)
        return true;
    n = wr_table_count(headers);
    if (n > sizeof(small) / sizeof(small[0])) {
        data = malloc(n * sizeof(*data));
        if (data == NULL)
            return false;
    }
    wr_table_iter_init(&it, headers);
    while (i < n && wr_table_next(&it, &data[i].key, &data[i].val))
        i++;
    qsort(data, i, sizeof(*data), entry_cmp);
    for (pos = r->bindings.next; pos != &r->bindings && ok; pos = pos->next) {
        const wr_binding_t *b = wr_list_entry(pos, wr_binding_t, all);
        if (!wr_dest_set_has(out, b->dest) && pattern_match(b->type_data, data, i))
            ok = wr_dest_set_add(out, b->dest);
    }
    if (data != small)
        free(data);
    return ok;
}

const wr_router_type_t wr_headers_type = {
    .name = "headers",
    .add = headers_add,
    .remove = headers_remove,
    .route = headers_route,
};
