/* SPDX-License-Identifier: MIT */
/*
 * The dead-lettered copy of a message and the cycle check, following
 * RabbitMQ 3.10's rabbit_dead_letter: headers are decoded into a list of
 * entries, edited as RabbitMQ edits its Erlang term (including its quirks:
 * the first x-death entry keeps its insertion order, later ones are sorted,
 * and regrouping reverses the older entries), sorted and encoded again.
 */
#include "broker/vhost/deadletter.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cursor.h"
#include "protocol/props.h"
#include "protocol/table.h"

/* One key/value of a field table being edited; seq keeps sorting stable. */
typedef struct {
    wr_bytes_t key;
    wr_value_t val;
    size_t seq;
} entry_t;

typedef struct {
    entry_t *items;
    size_t count;
    size_t cap;
    bool oom;
} entries_t;

/* An element of x-death after regrouping: an entry table, possibly missing
 * the count RabbitMQ gives it (prepended when add_count). */
typedef struct {
    wr_bytes_t raw;
    bool add_count;
    int64_t count;
} death_t;

const char *wr_deadletter_reason(wr_dl_reason_t why)
{
    switch (why) {
    case WR_DL_REJECTED:
        return "rejected";
    case WR_DL_EXPIRED:
        return "expired";
    case WR_DL_MAXLEN:
        return "maxlen";
    default:
        return "delivery_limit";
    }
}

static void entries_free(entries_t *e)
{
    free(e->items);
    *e = (entries_t){0};
}

static void entries_push(entries_t *e, wr_bytes_t key, const wr_value_t *val)
{
    if (e->count == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 16;
        entry_t *n = realloc(e->items, ncap * sizeof(*n));

        if (n == NULL) {
            e->oom = true;
            return;
        }
        e->items = n;
        e->cap = ncap;
    }
    e->items[e->count] = (entry_t){key, *val, e->count};
    e->count++;
}

/* Prepends (RabbitMQ's [{Key, Type, Val} | Info]). */
static void entries_prepend(entries_t *e, wr_bytes_t key, const wr_value_t *val)
{
    entries_push(e, key, val);
    if (e->oom)
        return;
    memmove(e->items + 1, e->items, (e->count - 1) * sizeof(*e->items));
    e->items[0] = (entry_t){key, *val, 0};
}

static void entries_load(entries_t *e, wr_bytes_t raw)
{
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;

    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, &key, &v))
        entries_push(e, key, &v);
}

static entry_t *entries_find(entries_t *e, const char *key)
{
    for (size_t i = 0; i < e->count; i++) {
        if (wr_bytes_eq_str(e->items[i].key, key))
            return &e->items[i];
    }
    return NULL;
}

/* rabbit_misc:set_table_value before its sort: the first entry with the key
 * is replaced in place, else the entry is appended. */
static void entries_store(entries_t *e, const char *key, const wr_value_t *val)
{
    entry_t *x = entries_find(e, key);

    if (x != NULL)
        x->val = *val;
    else
        entries_push(e, wr_bytes_str(key), val);
}

/* Erlang's order of binaries: bytewise, a prefix first. */
static int entry_cmp(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int c = wr_bytes_cmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* lists:keysort/2, which is stable. */
static void entries_sort(entries_t *e)
{
    for (size_t i = 0; i < e->count; i++)
        e->items[i].seq = i;
    if (e->count > 1)
        qsort(e->items, e->count, sizeof(*e->items), entry_cmp);
}

static void put_entries(wr_buf_t *b, const entries_t *e)
{
    for (size_t i = 0; i < e->count; i++) {
        wr_put_shortstr(b, e->items[i].key);
        wr_table_put_value(b, &e->items[i].val);
    }
}

/* A value RabbitMQ sees as a binary (x_death_event_key drops the type). */
static bool binary_of(const wr_value_t *v, wr_bytes_t *out)
{
    if (v->type != 'S' && v->type != 'x')
        return false;
    *out = v->v.s;
    return true;
}

/* The {queue, reason} key of an entry table: absent fields compare equal to
 * each other, as Erlang's undefined does. */
typedef struct {
    bool has_q, has_r;
    wr_bytes_t q, r;
} qr_key_t;

static qr_key_t qr_key(wr_bytes_t table)
{
    qr_key_t k = {0};
    wr_value_t v;

    if (wr_table_get(table, "queue", &v))
        k.has_q = binary_of(&v, &k.q);
    if (wr_table_get(table, "reason", &v))
        k.has_r = binary_of(&v, &k.r);
    return k;
}

static bool qr_eq(const qr_key_t *a, const qr_key_t *b)
{
    return a->has_q == b->has_q && a->has_r == b->has_r && (!a->has_q || wr_bytes_eq(a->q, b->q)) &&
           (!a->has_r || wr_bytes_eq(a->r, b->r));
}

/*
 * group_by_queue_and_reason: one element per {queue, reason}, the first of
 * its group (given the group's size as count when it has none), in the
 * reverse order of first appearance. A single element is kept as it is.
 * Elements that are not tables are dropped (RabbitMQ fails on them).
 */
static death_t *group_deaths(wr_bytes_t xdeath, size_t *n_out)
{
    wr_table_iter_t it;
    wr_value_t v;
    size_t n = 0, k = 0;
    wr_bytes_t *tables;
    death_t *out;

    wr_table_iter_init(&it, xdeath);
    while (wr_array_next(&it, &v))
        n += v.type == 'F';
    tables = calloc(n ? n : 1, sizeof(*tables));
    out = calloc(n ? n : 1, sizeof(*out));
    if (tables == NULL || out == NULL) {
        free(tables);
        free(out);
        return NULL;
    }
    wr_table_iter_init(&it, xdeath);
    while (wr_array_next(&it, &v)) {
        if (v.type == 'F')
            tables[k++] = v.v.s;
    }
    if (n == 1) {
        out[0] = (death_t){tables[0], false, 0};
        *n_out = 1;
        free(tables);
        return out;
    }
    *n_out = 0;
    for (size_t i = 0; i < n; i++) {
        qr_key_t key = qr_key(tables[i]);
        size_t first = i, size = 0;
        bool seen = false;
        wr_value_t cnt;

        for (size_t j = 0; j < n; j++) {
            qr_key_t other = qr_key(tables[j]);

            if (!qr_eq(&key, &other))
                continue;
            if (size++ == 0)
                first = j;
            seen |= j < i;
        }
        if (seen)
            continue;
        /* Prepending to the accumulator: the result comes out reversed. */
        memmove(out + 1, out, *n_out * sizeof(*out));
        out[0] = (death_t){tables[first], !wr_table_get(tables[first], "count", &cnt), (int64_t)size};
        (*n_out)++;
    }
    free(tables);
    return out;
}

/* Appends one x-death element: the entry table made of `info`, in its order. */
static void put_death_entry(wr_buf_t *b, const entries_t *info)
{
    size_t mark;

    wr_buf_put_u8(b, 'F');
    mark = wr_table_begin(b);
    put_entries(b, info);
    wr_table_end(b, mark);
}

/* The updated entry of the death that matched m: count plus one, sorted. */
static bool put_incremented(wr_buf_t *b, const death_t *d)
{
    entries_t e = {0};
    wr_value_t cnt = {.type = 'l'};
    entry_t *c;
    int64_t n = 0;

    entries_load(&e, d->raw);
    if (d->add_count) {
        cnt.v.i = d->count;
        entries_prepend(&e, WR_BYTES_LIT("count"), &cnt);
    }
    c = entries_find(&e, "count");
    if (c == NULL) {
        cnt.v.i = 1;
        entries_prepend(&e, WR_BYTES_LIT("count"), &cnt);
    } else {
        if (!wr_value_int(&c->val, &n))
            n = 0;
        c->val = (wr_value_t){.type = 'l', .v.i = n + 1};
    }
    entries_sort(&e);
    put_death_entry(b, &e);
    entries_free(&e);
    return !e.oom;
}

static void put_death(wr_buf_t *b, const death_t *d)
{
    wr_value_t cnt = {.type = 'l', .v.i = d->count};
    wr_value_t t = {.type = 'F', .v.s = d->raw};
    size_t mark;

    if (!d->add_count) {
        wr_table_put_value(b, &t);
        return;
    }
    wr_buf_put_u8(b, 'F');
    mark = wr_table_begin(b);
    wr_put_shortstr(b, WR_BYTES_LIT("count"));
    wr_table_put_value(b, &cnt);
    wr_buf_put(b, d->raw.data, d->raw.len);
    wr_table_end(b, mark);
}

/*
 * Writes the new x-death array (its contents, no length prefix) into xb:
 * update_x_death_header's branch for an existing array. `info` is the new
 * entry with its count of 1 first.
 */
static bool update_deaths(wr_buf_t *xb, wr_bytes_t xdeath, entries_t *info, const wr_deadletter_t *d)
{
    qr_key_t want = {true, true, d->queue, wr_bytes_str(wr_deadletter_reason(d->reason))};
    size_t n = 0, match = SIZE_MAX;
    death_t *deaths = group_deaths(xdeath, &n);
    bool ok = true;

    if (deaths == NULL)
        return false;
    for (size_t i = 0; i < n && match == SIZE_MAX; i++) {
        qr_key_t k = qr_key(deaths[i].raw);

        if (qr_eq(&k, &want))
            match = i;
    }
    if (match == SIZE_MAX) {
        entries_sort(info);
        put_death_entry(xb, info);
    } else {
        ok = put_incremented(xb, &deaths[match]);
    }
    for (size_t i = 0; i < n; i++) {
        if (i != match)
            put_death(xb, &deaths[i]);
    }
    free(deaths);
    return ok;
}

/* The routing keys of the death: the publish's own, then CC and BCC. */
static void put_routing_keys(wr_buf_t *b, wr_bytes_t routing_key, wr_bytes_t headers)
{
    static const char *const route_headers[] = {"CC", "BCC"};
    wr_value_t v = {.type = 'S', .v.s = routing_key};

    wr_table_put_value(b, &v);
    for (size_t i = 0; i < 2; i++) {
        wr_table_iter_t it;
        wr_value_t arr, k;

        if (!wr_table_get(headers, route_headers[i], &arr) || arr.type != 'A')
            continue;
        wr_table_iter_init(&it, arr.v.s);
        while (wr_array_next(&it, &k)) {
            if (k.type == 'S')
                wr_table_put_value(b, &k);
        }
    }
}

/* Removes the first entry with key (lists:keydelete). */
static void entries_delete(entries_t *e, const char *key)
{
    entry_t *x = entries_find(e, key);

    if (x == NULL)
        return;
    memmove(x, x + 1, (size_t)(e->items + e->count - (x + 1)) * sizeof(*x));
    e->count--;
}

wr_message_t *wr_deadletter_copy(wr_message_t *m, const wr_deadletter_t *d)
{
    const wr_props_t *orig = wr_message_props(m);
    wr_buf_t rks = WR_BUF_INIT, xb = WR_BUF_INIT, hb = WR_BUF_INIT, out = WR_BUF_INIT;
    entries_t hdrs = {0}, info = {0};
    wr_bytes_t reason = wr_bytes_str(wr_deadletter_reason(d->reason));
    wr_message_t *copy = NULL;
    wr_value_t v, xdeath;
    entry_t *x;
    wr_props_t p;
    bool ok = true;

    if (orig == NULL)
        return NULL;
    p = *orig;
    if (!(p.flags & WR_PROP_HEADERS))
        p.headers = (wr_bytes_t){NULL, 0};
    entries_load(&hdrs, p.headers);
    put_routing_keys(&rks, m->routing_key, p.headers);
    /* The new entry, in RabbitMQ's order: count, reason, queue, time,
     * exchange, routing-keys[, original-expiration]. */
    v = (wr_value_t){.type = 'l', .v.i = 1};
    entries_push(&info, WR_BYTES_LIT("count"), &v);
    v = (wr_value_t){.type = 'S', .v.s = reason};
    entries_push(&info, WR_BYTES_LIT("reason"), &v);
    v.v.s = d->queue;
    entries_push(&info, WR_BYTES_LIT("queue"), &v);
    v = (wr_value_t){.type = 'T', .v.ts = d->time};
    entries_push(&info, WR_BYTES_LIT("time"), &v);
    v = (wr_value_t){.type = 'S', .v.s = m->exchange};
    entries_push(&info, WR_BYTES_LIT("exchange"), &v);
    v = (wr_value_t){.type = 'A', .v.s = {rks.data, rks.len}};
    entries_push(&info, WR_BYTES_LIT("routing-keys"), &v);
    if (p.flags & WR_PROP_EXPIRATION) {
        v = (wr_value_t){.type = 'S', .v.s = p.expiration};
        entries_push(&info, WR_BYTES_LIT("original-expiration"), &v);
    }
    x = entries_find(&hdrs, "x-death");
    if (x == NULL) {
        /* The first death also gets the x-first-death-* headers. */
        v = (wr_value_t){.type = 'S', .v.s = reason};
        entries_store(&hdrs, "x-first-death-reason", &v);
        v.v.s = d->queue;
        entries_store(&hdrs, "x-first-death-queue", &v);
        v.v.s = m->exchange;
        entries_store(&hdrs, "x-first-death-exchange", &v);
        put_death_entry(&xb, &info);
    } else if (x->val.type == 'A') {
        ok = update_deaths(&xb, x->val.v.s, &info, d);
    } else {
        /* Not an array (a client re-published it converted): reset. */
        put_death_entry(&xb, &info);
    }
    /* RabbitMQ 3.13's x-last-death-*: the latest death, every time. */
    v = (wr_value_t){.type = 'S', .v.s = reason};
    entries_store(&hdrs, "x-last-death-reason", &v);
    v.v.s = d->queue;
    entries_store(&hdrs, "x-last-death-queue", &v);
    v.v.s = m->exchange;
    entries_store(&hdrs, "x-last-death-exchange", &v);
    xdeath = (wr_value_t){.type = 'A', .v.s = {xb.data, xb.len}};
    entries_store(&hdrs, "x-death", &xdeath);
    entries_sort(&hdrs);
    if (d->has_routing_key)
        entries_delete(&hdrs, "CC");
    put_entries(&hb, &hdrs);
    if (!ok || hdrs.oom || info.oom || !wr_buf_ok(&rks) || !wr_buf_ok(&xb) || !wr_buf_ok(&hb))
        goto out;
    p.flags |= WR_PROP_HEADERS;
    p.flags &= (uint16_t)~WR_PROP_EXPIRATION;
    p.headers = (wr_bytes_t){hb.data, hb.len};
    wr_props_encode(&out, &p);
    if (!wr_buf_ok(&out))
        goto out;
    copy = wr_message_new(d->dlx, d->has_routing_key ? d->routing_key : m->routing_key,
                          (wr_bytes_t){out.data, out.len}, m->body_size);
    if (copy == NULL)
        goto out;
    if (m->body_size > 0)
        memcpy(copy->body, m->body, (size_t)m->body_size);
    copy->body_filled = m->body_size;
out:
    entries_free(&hdrs);
    entries_free(&info);
    wr_buf_free(&rks);
    wr_buf_free(&xb);
    wr_buf_free(&hb);
    wr_buf_free(&out);
    return copy;
}

bool wr_deadletter_routing_keys(wr_message_t *copy, wr_bytes_t **keys, size_t *n)
{
    const wr_props_t *p = wr_message_props(copy);
    wr_table_iter_t it;
    wr_value_t cc, k;
    size_t count = 1;
    bool has_cc =
        p != NULL && (p->flags & WR_PROP_HEADERS) && wr_table_get(p->headers, "CC", &cc) && cc.type == 'A';

    if (has_cc) {
        wr_table_iter_init(&it, cc.v.s);
        while (wr_array_next(&it, &k))
            count += k.type == 'S';
    }
    *keys = malloc(count * sizeof(**keys));
    if (*keys == NULL)
        return false;
    (*keys)[0] = copy->routing_key;
    *n = 1;
    if (has_cc) {
        wr_table_iter_init(&it, cc.v.s);
        while (wr_array_next(&it, &k)) {
            if (k.type == 'S')
                (*keys)[(*n)++] = k.v.s;
        }
    }
    return true;
}

bool wr_deadletter_is_cycle(wr_message_t *copy, wr_bytes_t queue)
{
    const wr_props_t *p = wr_message_props(copy);
    wr_table_iter_t it;
    wr_value_t deaths, d, q, r;
    bool automatic = true;

    if (p == NULL || !(p->flags & WR_PROP_HEADERS) || !wr_table_get(p->headers, "x-death", &deaths) ||
        deaths.type != 'A')
        return false;
    /* The deaths from the most recent up to the latest one in `queue` form
     * the cycle; it is dropped only when fully automatic: no client
     * rejected it on the way, and nothing a client could have put there. */
    wr_table_iter_init(&it, deaths.v.s);
    while (wr_array_next(&it, &d)) {
        bool here;

        if (d.type != 'F') {
            automatic = false;
            continue;
        }
        here = wr_table_get(d.v.s, "queue", &q) && q.type == 'S' && wr_bytes_eq(q.v.s, queue);
        if (wr_table_get(d.v.s, "reason", &r) && r.type == 'S' && wr_bytes_eq_str(r.v.s, "rejected"))
            automatic = false;
        if (here)
            return automatic;
    }
    return false;
}
