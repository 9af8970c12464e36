/* SPDX-License-Identifier: MIT */
/*
 * Exchanges: the routing/ router of their bindings plus what the broker needs
 * around it: flags and arguments for declare equivalence, reverse links from
 * each destination to the exchanges bound to it, and routing that follows
 * exchange-to-exchange bindings and alternate exchanges breadth-first with a
 * visited set.
 */
#include "broker/vhost/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "broker/vhost/policy.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"
#include "protocol/table.h"

/* "source binds to me": one per (source, destination) pair with bindings. */
typedef struct {
    wr_list_t node; /* in the destination's list of sources */
    wr_exchange_t *source;
} backref_t;

struct wr_exchange_s {
    uint32_t refs;
    bool deleted;
    bool reads_headers; /* headers exchange: routing needs the message's headers */
    bool has_alternate; /* the alternate-exchange argument, a longstr, is set */
    wr_bytes_t alternate;
    wr_exchange_opts_t opts;
    wr_bytes_t name;
    wr_router_t *router; /* NULL once unbound for deletion */
    wr_list_t sources;   /* backref_t of the exchanges bound to this one */
    uint8_t data[];      /* name, then args */
};

wr_exchange_t *wr_exchange_new(wr_bytes_t name, const wr_exchange_opts_t *o)
{
    wr_exchange_t *x = calloc(1, sizeof(*x) + name.len + o->args.len);
    wr_value_t ae;

    if (x == NULL)
        return NULL;
    x->router = wr_router_new(o->type);
    if (x->router == NULL) {
        free(x);
        return NULL;
    }
    x->refs = 1;
    x->opts = *o;
    x->reads_headers = o->type == wr_router_type_find(WR_BYTES_LIT("headers"));
    if (name.len > 0)
        memcpy(x->data, name.data, name.len);
    x->name = (wr_bytes_t){x->data, name.len};
    if (o->args.len > 0)
        memcpy(x->data + name.len, o->args.data, o->args.len);
    x->opts.args = (wr_bytes_t){x->data + name.len, o->args.len};
    if (wr_table_get(x->opts.args, "alternate-exchange", &ae) && ae.type == 'S') {
        x->has_alternate = true;
        x->alternate = ae.v.s;
    }
    wr_list_init(&x->sources);
    return x;
}

wr_exchange_t *wr_exchange_ref(wr_exchange_t *x)
{
    x->refs++;
    return x;
}

void wr_exchange_unref(wr_exchange_t *x)
{
    if (x == NULL || --x->refs > 0)
        return;
    wr_router_free(x->router);
    free(x);
}

wr_bytes_t wr_exchange_name(const wr_exchange_t *x)
{
    return x->name;
}

bool wr_exchange_is_standard(const wr_exchange_t *x)
{
    return x->name.len == 0 || wr_bytes_has_prefix(x->name, "amq.");
}

const wr_exchange_opts_t *wr_exchange_opts(const wr_exchange_t *x)
{
    return &x->opts;
}

size_t wr_exchange_binding_count(const wr_exchange_t *x)
{
    return x->router ? wr_router_count(x->router) : 0;
}

bool wr_exchange_deleted(const wr_exchange_t *x)
{
    return x->deleted;
}

void wr_exchange_mark_deleted(wr_exchange_t *x)
{
    x->deleted = true;
}

static wr_list_t *dest_sources(wr_dest_t d)
{
    if (d.kind == WR_DEST_QUEUE)
        return wr_queue_sources(d.ptr);
    return &((wr_exchange_t *)d.ptr)->sources;
}

static backref_t *backref_find(wr_list_t *l, const wr_exchange_t *source)
{
    for (wr_list_t *n = l->next; n != l; n = n->next) {
        backref_t *b = wr_list_entry(n, backref_t, node);
        if (b->source == source)
            return b;
    }
    return NULL;
}

int wr_exchange_bind(wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    backref_t *b = NULL;
    int rc;

    /* Allocate first so that a failure leaves nothing half done. */
    if (!wr_router_has_dest(x->router, d)) {
        b = malloc(sizeof(*b));
        if (b == NULL)
            return WR_ENOMEM;
    }
    rc = wr_router_bind(x->router, d, key, args);
    if (rc != WR_OK) {
        free(b);
        return rc;
    }
    if (b != NULL) {
        b->source = x;
        wr_list_insert_tail(dest_sources(d), &b->node);
    }
    return WR_OK;
}

int wr_exchange_unbind(wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    int rc = wr_router_unbind(x->router, d, key, args);

    if (rc == WR_OK && !wr_router_has_dest(x->router, d)) {
        backref_t *b = backref_find(dest_sources(d), x);
        wr_list_remove(&b->node);
        free(b);
    }
    return rc;
}

typedef struct {
    wr_dest_t d;
    wr_bytes_t key;
    wr_bytes_t args;
    bool found;
} binding_query_t;

static void match_binding(void *ud, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    binding_query_t *q = ud;

    if (d.ptr == q->d.ptr && d.kind == q->d.kind && wr_bytes_eq(key, q->key) && wr_table_equiv(args, q->args))
        q->found = true;
}

void wr_exchange_foreach_binding(const wr_exchange_t *x, wr_binding_fn fn, void *ud)
{
    if (x->router != NULL)
        wr_router_foreach(x->router, fn, ud);
}

bool wr_exchange_has_binding(const wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    binding_query_t q = {d, key, args, false};

    if (!wr_router_has_dest(x->router, d))
        return false;
    wr_router_foreach(x->router, match_binding, &q);
    return q.found;
}

void wr_exchange_unbind_to(wr_dest_t d, wr_exchange_lost_fn lost, void *ud)
{
    wr_list_t *l = dest_sources(d);

    while (!wr_list_empty(l)) {
        backref_t *b = wr_list_entry(l->next, backref_t, node);
        wr_exchange_t *source = b->source;

        wr_list_remove(&b->node);
        free(b);
        wr_router_unbind_dest(source->router, d);
        lost(ud, source);
    }
}

static void drop_backref(void *ud, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    backref_t *b = backref_find(dest_sources(d), ud);

    /* Only the first binding to d finds it. */
    if (b != NULL) {
        wr_list_remove(&b->node);
        free(b);
    }
}

void wr_exchange_unbind_from(wr_exchange_t *x)
{
    if (x->router == NULL)
        return;
    wr_router_foreach(x->router, drop_backref, x);
    wr_router_free(x->router);
    x->router = NULL;
}

/* The headers table a headers exchange matches on: m's, or empty. */
static wr_bytes_t route_headers(const wr_exchange_t *x, wr_message_t *m)
{
    const wr_props_t *p;

    if (!x->reads_headers)
        return (wr_bytes_t){NULL, 0};
    p = wr_message_props(m);
    return p != NULL && (p->flags & WR_PROP_HEADERS) ? p->headers : (wr_bytes_t){NULL, 0};
}

/* The default exchange: each key names a queue. */
static bool route_default(wr_vhost_t *vh, const wr_bytes_t *keys, size_t nkeys, wr_dest_set_t *out)
{
    for (size_t i = 0; i < nkeys; i++) {
        wr_queue_t *q = wr_vhost_queue(vh, keys[i]);

        if (q != NULL && !wr_dest_set_add(out, (wr_dest_t){q, WR_DEST_QUEUE}))
            return false;
    }
    return true;
}

/* Whether x's own bindings match any of keys (the set's deduplication can
 * hide matches already reached through other exchanges). */
static int routes_anything(const wr_exchange_t *x, const wr_bytes_t *keys, size_t nkeys, wr_bytes_t headers)
{
    wr_dest_set_t own;
    int rc = 0;

    wr_dest_set_init(&own);
    for (size_t i = 0; i < nkeys && rc == 0; i++) {
        if (!wr_router_route(x->router, keys[i], headers, &own))
            rc = WR_ENOMEM;
        else if (own.count > 0)
            rc = 1;
    }
    wr_dest_set_free(&own);
    return rc;
}

/* RabbitMQ's rule: the argument, else the policy's key; NULL when neither
 * names an existing exchange (the message is then simply unroutable). */
static wr_exchange_t *alternate_of(wr_vhost_t *vh, const wr_exchange_t *x)
{
    const wr_policy_t *p;

    if (x->has_alternate)
        return wr_vhost_exchange(vh, x->alternate);
    p = wr_policy_match(wr_vhost_env(vh)->policies, wr_vhost_name(vh), x->name, false);
    if (p == NULL || p->alternate_exchange == NULL)
        return NULL;
    return wr_vhost_exchange(vh, wr_bytes_str(p->alternate_exchange));
}

bool wr_exchange_route_keys(wr_vhost_t *vh, wr_exchange_t *x, const wr_bytes_t *keys, size_t nkeys,
                            wr_message_t *m, wr_dest_set_t *out)
{
    if (x->name.len == 0)
        return route_default(vh, keys, nkeys, out);
    if (!wr_dest_set_add(out, (wr_dest_t){x, WR_DEST_EXCHANGE}))
        return false;
    /* `out` doubles as the work list: exchanges reached are appended to it
     * once (the set deduplicates), so cycles terminate. */
    for (size_t i = 0; i < out->count; i++) {
        wr_dest_t d = out->items[i];
        wr_exchange_t *ex = d.ptr;
        size_t before = out->count;
        wr_bytes_t headers;
        wr_exchange_t *ae;
        int any;

        if (d.kind != WR_DEST_EXCHANGE || ex->router == NULL)
            continue;
        if (ex->name.len == 0) {
            /* Reached as an alternate exchange: no alternate of its own. */
            if (!route_default(vh, keys, nkeys, out))
                return false;
            continue;
        }
        headers = route_headers(ex, m);
        for (size_t k = 0; k < nkeys; k++) {
            if (!wr_router_route(ex->router, keys[k], headers, out))
                return false;
        }
        if (out->count > before || (ae = alternate_of(vh, ex)) == NULL)
            continue;
        any = routes_anything(ex, keys, nkeys, headers);
        if (any < 0)
            return false;
        if (any == 0 && !wr_dest_set_add(out, (wr_dest_t){ae, WR_DEST_EXCHANGE}))
            return false;
    }
    return true;
}
