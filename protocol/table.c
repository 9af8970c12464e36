/* SPDX-License-Identifier: MIT */
/*
 * AMQP field tables and arrays in wire form: one validation pass (lengths,
 * tags, depth), then zero-copy iteration and lookup, equivalence as RabbitMQ
 * judges it (tables compare as key-sorted lists), value formatting for error
 * texts, and the encoders.
 */
#include "protocol/table.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* Entries compared without allocating; larger tables are sorted on the heap. */
#define EQUIV_STACK_ENTRIES 16

/*
 * Reads the value that follows `tag`, borrowing strings and nested tables.
 * WR_OK, WR_ESYNTAX when the bytes run out, WR_EUNKNOWN for an unknown tag.
 * Nested tables and arrays are bounded by their own length but not checked.
 */
static int value_read(wr_cursor_t *c, uint8_t tag, wr_value_t *v)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    v->type = tag;
    switch (tag) {
    case 't':
        if (!wr_rd_u8(c, &u8))
            return WR_ESYNTAX;
        v->v.b = u8 != 0; /* RabbitMQ reads any non-zero octet as true */
        return WR_OK;
    case 'b':
    case 'B':
        if (!wr_rd_u8(c, &u8))
            return WR_ESYNTAX;
        v->v.i = tag == 'b' ? (int8_t)u8 : u8;
        return WR_OK;
    case 's':
    case 'u':
        if (!wr_rd_u16(c, &u16))
            return WR_ESYNTAX;
        v->v.i = tag == 's' ? (int16_t)u16 : u16;
        return WR_OK;
    case 'I':
    case 'i':
        if (!wr_rd_u32(c, &u32))
            return WR_ESYNTAX;
        v->v.i = tag == 'I' ? (int64_t)(int32_t)u32 : (int64_t)u32;
        return WR_OK;
    case 'l':
    case 'L': /* RabbitMQ reads 'L' as a signed 64-bit integer too (0-9-1 errata) */
        if (!wr_rd_u64(c, &u64))
            return WR_ESYNTAX;
        v->v.i = (int64_t)u64;
        return WR_OK;
    case 'f':
        if (!wr_rd_u32(c, &u32))
            return WR_ESYNTAX;
        memcpy(&v->v.f, &u32, sizeof(v->v.f));
        return WR_OK;
    case 'd':
        if (!wr_rd_u64(c, &u64))
            return WR_ESYNTAX;
        memcpy(&v->v.d, &u64, sizeof(v->v.d));
        return WR_OK;
    case 'D': {
        wr_cursor_t save = *c;
        if (!wr_rd_u8(c, &v->v.dec.scale) || !wr_rd_u32(c, &v->v.dec.value)) {
            *c = save;
            return WR_ESYNTAX;
        }
        return WR_OK;
    }
    case 'T':
        return wr_rd_u64(c, &v->v.ts) ? WR_OK : WR_ESYNTAX;
    case 'S':
    case 'x':
    case 'F':
    case 'A':
        return wr_rd_longstr(c, &v->v.s) ? WR_OK : WR_ESYNTAX;
    case 'V':
        return WR_OK;
    default:
        return WR_EUNKNOWN;
    }
}

/* levels: how many table/array levels may still be opened, this one included. */
static int validate(wr_bytes_t raw, int levels, bool is_table)
{
    wr_cursor_t c = wr_cursor(raw);

    if (levels < 1)
        return WR_EDEPTH;
    while (wr_cursor_left(&c) > 0) {
        wr_bytes_t key;
        wr_value_t v;
        uint8_t tag;
        int rc;

        if (is_table && !wr_rd_shortstr(&c, &key))
            return WR_ESYNTAX;
        if (!wr_rd_u8(&c, &tag))
            return WR_ESYNTAX;
        rc = value_read(&c, tag, &v);
        if (rc != WR_OK)
            return rc;
        if (tag == 'F' || tag == 'A') {
            rc = validate(v.v.s, levels - 1, tag == 'F');
            if (rc != WR_OK)
                return rc;
        }
    }
    return WR_OK;
}

int wr_table_validate(wr_bytes_t raw, int max_depth)
{
    return validate(raw, max_depth, true);
}

int wr_array_validate(wr_bytes_t raw, int max_depth)
{
    return validate(raw, max_depth, false);
}

bool wr_table_next(wr_table_iter_t *it, wr_bytes_t *key, wr_value_t *val)
{
    wr_bytes_t k;
    uint8_t tag;

    if (wr_cursor_left(&it->c) == 0)
        return false;
    if (!wr_rd_shortstr(&it->c, &k) || !wr_rd_u8(&it->c, &tag) || value_read(&it->c, tag, val) != WR_OK) {
        it->c.pos = it->c.end; /* unvalidated garbage: stop for good */
        return false;
    }
    if (key != NULL)
        *key = k;
    return true;
}

bool wr_array_next(wr_table_iter_t *it, wr_value_t *val)
{
    uint8_t tag;

    if (wr_cursor_left(&it->c) == 0)
        return false;
    if (!wr_rd_u8(&it->c, &tag) || value_read(&it->c, tag, val) != WR_OK) {
        it->c.pos = it->c.end;
        return false;
    }
    return true;
}

bool wr_table_get(wr_bytes_t raw, const char *key, wr_value_t *val)
{
    wr_table_iter_t it;
    wr_bytes_t k;
    wr_value_t v;

    /* The first of duplicate keys wins, as in RabbitMQ's table_lookup. */
    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, &k, &v)) {
        if (wr_bytes_eq_str(k, key)) {
            if (val != NULL)
                *val = v;
            return true;
        }
    }
    return false;
}

size_t wr_table_count(wr_bytes_t raw)
{
    wr_table_iter_t it;
    wr_value_t v;
    size_t n = 0;

    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, NULL, &v))
        n++;
    return n;
}

bool wr_value_int(const wr_value_t *v, int64_t *out)
{
    if (!wr_tag_is_int(v->type))
        return false;
    *out = v->v.i;
    return true;
}

bool wr_array_eq_by(wr_bytes_t a, wr_bytes_t b, bool (*eq)(const wr_value_t *, const wr_value_t *))
{
    wr_table_iter_t ia, ib;
    wr_value_t va, vb;

    wr_table_iter_init(&ia, a);
    wr_table_iter_init(&ib, b);
    for (;;) {
        bool more_a = wr_array_next(&ia, &va);
        bool more_b = wr_array_next(&ib, &vb);
        if (!more_a || !more_b)
            return more_a == more_b;
        if (!eq(&va, &vb))
            return false;
    }
}

bool wr_value_eq(const wr_value_t *a, const wr_value_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case 't':
        return a->v.b == b->v.b;
    case 'f':
        /* Same bits also count as equal, so a NaN argument matches itself. */
        return a->v.f == b->v.f || memcmp(&a->v.f, &b->v.f, sizeof(a->v.f)) == 0;
    case 'd':
        return a->v.d == b->v.d || memcmp(&a->v.d, &b->v.d, sizeof(a->v.d)) == 0;
    case 'D':
        return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
    case 'T':
        return a->v.ts == b->v.ts;
    case 'S':
    case 'x':
        return wr_bytes_eq(a->v.s, b->v.s);
    case 'F':
        return wr_table_equiv(a->v.s, b->v.s);
    case 'A':
        return wr_array_eq_by(a->v.s, b->v.s, wr_value_eq);
    case 'V':
        return true;
    default: /* the integer tags */
        return a->v.i == b->v.i;
    }
}

typedef struct {
    wr_bytes_t key;
    wr_value_t val;
    size_t pos; /* position in the table, to keep the sort stable */
} equiv_entry_t;

static int equiv_cmp(const void *pa, const void *pb)
{
    const equiv_entry_t *a = pa, *b = pb;
    int c = wr_bytes_cmp(a->key, b->key);

    if (c != 0)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static void equiv_collect(wr_bytes_t raw, equiv_entry_t *e, size_t n)
{
    wr_table_iter_t it;

    wr_table_iter_init(&it, raw);
    for (size_t i = 0; i < n && wr_table_next(&it, &e[i].key, &e[i].val); i++)
        e[i].pos = i;
    qsort(e, n, sizeof(*e), equiv_cmp);
}

/*
 * RabbitMQ compares tables after a stable sort by key (so duplicate keys keep
 * their relative order); sorting also keeps a hostile table with tens of
 * thousands of entries from costing a quadratic comparison.
 */
bool wr_table_equiv(wr_bytes_t a, wr_bytes_t b)
{
    equiv_entry_t stack_a[EQUIV_STACK_ENTRIES], stack_b[EQUIV_STACK_ENTRIES];
    equiv_entry_t *ea = stack_a, *eb = stack_b;
    size_t n = wr_table_count(a);
    bool eq = false;

    if (n != wr_table_count(b))
        return false;
    if (n > EQUIV_STACK_ENTRIES) {
        ea = calloc(n, sizeof(*ea));
        eb = calloc(n, sizeof(*eb));
        if (ea == NULL || eb == NULL)
            goto out;
    }
    equiv_collect(a, ea, n);
    equiv_collect(b, eb, n);
    eq = true;
    for (size_t i = 0; eq && i < n; i++)
        eq = wr_bytes_eq(ea[i].key, eb[i].key) && wr_value_eq(&ea[i].val, &eb[i].val);
out:
    if (ea != stack_a) {
        free(ea);
        free(eb);
    }
    return eq;
}

const char *wr_value_type_name(uint8_t tag)
{
    switch (tag) {
    case 't':
        return "bool";
    case 'b':
        return "byte";
    case 'B':
        return "unsignedbyte";
    case 's':
        return "short";
    case 'u':
        return "unsignedshort";
    case 'I':
        return "signedint";
    case 'i':
        return "unsignedint";
    case 'l':
    case 'L':
        return "long";
    case 'f':
        return "float";
    case 'd':
        return "double";
    case 'D':
        return "decimal";
    case 'S':
        return "longstr";
    case 'x':
        return "binary";
    case 'A':
        return "array";
    case 'T':
        return "timestamp";
    case 'F':
        return "table";
    case 'V':
        return "void";
    default:
        return "unknown";
    }
}

/* A bounded writer: output is cut at the end of the caller's buffer. */
typedef struct {
    char *out;
    size_t cap; /* bytes available for text, the NUL excluded */
    size_t len;
} fmt_t;

static void fmt_put(fmt_t *f, const void *p, size_t n)
{
    size_t room = f->cap - f->len;

    if (n > room)
        n = room;
    if (n == 0)
        return; /* p may be NULL for an empty string */
    memcpy(f->out + f->len, p, n);
    f->len += n;
    f->out[f->len] = '\0';
}

static void fmt_str(fmt_t *f, const char *s)
{
    fmt_put(f, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void fmt_printf(fmt_t *f, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        fmt_put(f, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Shortest text that reads back as the same double, with a ".0" on integral
 * values the way Erlang prints floats. */
static void fmt_double(fmt_t *f, double d)
{
    char tmp[40];

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    fmt_str(f, tmp);
    if (strspn(tmp, "-0123456789") == strlen(tmp))
        fmt_str(f, ".0");
}

static void fmt_value(fmt_t *f, const wr_value_t *v, bool nested);

/* Nested values print the way Erlang's ~tp shows RabbitMQ's decoded terms:
 * tables as [{<<"key">>,type,value}], arrays as [{type,value}]. */
static void fmt_nested(fmt_t *f, wr_bytes_t raw, bool is_table)
{
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;
    bool first = true;

    fmt_str(f, "[");
    wr_table_iter_init(&it, raw);
    while (is_table ? wr_table_next(&it, &key, &v) : wr_array_next(&it, &v)) {
        fmt_str(f, first ? "{" : ",{");
        first = false;
        if (is_table) {
            fmt_str(f, "<<\"");
            fmt_put(f, key.data, key.len);
            fmt_str(f, "\">>,");
        }
        fmt_str(f, wr_value_type_name(v.type));
        fmt_str(f, ",");
        fmt_value(f, &v, true);
        fmt_str(f, "}");
    }
    fmt_str(f, "]");
}

static void fmt_value(fmt_t *f, const wr_value_t *v, bool nested)
{
    int64_t i;

    if (wr_value_int(v, &i)) {
        fmt_printf(f, "%lld", (long long)i);
        return;
    }
    switch (v->type) {
    case 't':
        fmt_str(f, v->v.b ? "true" : "false");
        break;
    case 'f':
        fmt_double(f, v->v.f);
        break;
    case 'd':
        fmt_double(f, v->v.d);
        break;
    case 'D':
        fmt_printf(f, "{%u,%lu}", v->v.dec.scale, (unsigned long)v->v.dec.value);
        break;
    case 'T':
        fmt_printf(f, "%llu", (unsigned long long)v->v.ts);
        break;
    case 'S':
    case 'x':
        fmt_str(f, nested ? "<<\"" : "");
        fmt_put(f, v->v.s.data, v->v.s.len);
        fmt_str(f, nested ? "\">>" : "");
        break;
    case 'F':
    case 'A':
        fmt_nested(f, v->v.s, v->type == 'F');
        break;
    default: /* 'V' */
        fmt_str(f, "undefined");
        break;
    }
}

void wr_value_format(const wr_value_t *v, char *out, size_t n)
{
    fmt_t f;

    if (n == 0)
        return;
    f = (fmt_t){out, n - 1, 0};
    out[0] = '\0';
    fmt_value(&f, v, false);
}

size_t wr_table_begin(wr_buf_t *b)
{
    size_t mark = b->len;

    wr_buf_put_u32(b, 0);
    return mark;
}

void wr_table_end(wr_buf_t *b, size_t mark)
{
    size_t len;

    if (b->oom || mark > b->len || b->len - mark < 4)
        return;
    len = b->len - mark - 4;
    if (len > UINT32_MAX) {
        b->oom = true; /* no wire form for a table this large */
        return;
    }
    wr_buf_patch_u32(b, mark, (uint32_t)len);
}

void wr_table_put_key(wr_buf_t *b, const char *key)
{
    wr_put_shortstr(b, wr_bytes_str(key));
}

void wr_table_put_value(wr_buf_t *b, const wr_value_t *v)
{
    wr_buf_put_u8(b, v->type);
    switch (v->type) {
    case 't':
        wr_buf_put_u8(b, v->v.b ? 1 : 0);
        break;
    case 'b':
    case 'B':
        wr_buf_put_u8(b, (uint8_t)v->v.i);
        break;
    case 's':
    case 'u':
        wr_buf_put_u16(b, (uint16_t)v->v.i);
        break;
    case 'I':
    case 'i':
        wr_buf_put_u32(b, (uint32_t)v->v.i);
        break;
    case 'l':
    case 'L':
        wr_buf_put_u64(b, (uint64_t)v->v.i);
        break;
    case 'f': {
        uint32_t u;
        memcpy(&u, &v->v.f, sizeof(u));
        wr_buf_put_u32(b, u);
        break;
    }
    case 'd': {
        uint64_t u;
        memcpy(&u, &v->v.d, sizeof(u));
        wr_buf_put_u64(b, u);
        break;
    }
    case 'D':
        wr_buf_put_u8(b, v->v.dec.scale);
        wr_buf_put_u32(b, v->v.dec.value);
        break;
    case 'T':
        wr_buf_put_u64(b, v->v.ts);
        break;
    case 'S':
    case 'x':
    case 'F':
    case 'A':
        wr_put_longstr(b, v->v.s);
        break;
    case 'V':
        break;
    default:
        b->oom = true; /* an unknown tag cannot be encoded; fail the buffer */
        break;
    }
}

void wr_table_put_str(wr_buf_t *b, const char *key, const char *val)
{
    wr_value_t v = {.type = 'S', .v.s = wr_bytes_str(val)};

    wr_table_put_key(b, key);
    wr_table_put_value(b, &v);
}

void wr_table_put_bool(wr_buf_t *b, const char *key, bool val)
{
    wr_value_t v = {.type = 't', .v.b = val};

    wr_table_put_key(b, key);
    wr_table_put_value(b, &v);
}

void wr_table_put_long(wr_buf_t *b, const char *key, int64_t val)
{
    wr_value_t v = {.type = 'l', .v.i = val};

    wr_table_put_key(b, key);
    wr_table_put_value(b, &v);
}
