/* SPDX-License-Identifier: MIT */
/*
 * Exchanges: the routing/ router of their bindings plus what the broker needs
 * around it: flags and arguments for declare equivalence, reverse links from
 * each destination to the exchanges bound to it, and routing that follows
 * exchange-to-exchange bindings breadth-first with a visited set.
 */
#include "broker/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "broker/queue.h"
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
    wr_exchange_opts_t opts;
    wr_bytes_t name;
    wr_router_t *router; /* NULL once unbound for deletion */
    wr_list_t sources;   /* backref_t of the exchanges bound to this one */
    uint8_t data[];      /* name, then args */
};

wr_exchange_t *wr_exchange_new(wr_bytes_t name, const wr_exchange_opts_t *o)
{
    wr_exchange_t *x = calloc(1, sizeof(*x) + name.len + o->args.len);

    if (x == NULL)
        return NULL;
    x->router = wr_router_new(o->type);
    if (x->router == NULL) {
        free(x);
        return NULL;
    }
    x->refs = 1;
    x->opts = *o;
    x->reads_headers = o->type == wr_exchange_type_find(WR_BYTES_LIT("headers"));
    if (name.len > 0)
        memcpy(x->data, name.data, name.len);
    x->name = (wr_bytes_t){x->data, name.len};
    if (o->args.len > 0)
        memcpy(x->data + name.len, o->args.data, o->args.len);
    x->opts.args = (wr_bytes_t){x->data + name.len, o->args.len};
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

bool wr_exchange_route(wr_exchange_t *x, wr_message_t *m, wr_dest_set_t *out)
{
    if (!wr_dest_set_add(out, (wr_dest_t){x, WR_DEST_EXCHANGE}))
        return false;
    /* `out` doubles as the work list: exchanges reached are appended to it
     * once (the set deduplicates), so cycles terminate. */
    for (size_t i = 0; i < out->count; i++) {
        wr_dest_t d = out->items[i];
        wr_exchange_t *ex = d.ptr;
        wr_bytes_t headers = {NULL, 0};

        if (d.kind != WR_DEST_EXCHANGE)
            continue;
        if (ex->reads_headers) {
            const wr_props_t *p = wr_message_props(m);
            if (p != NULL && (p->flags & WR_PROP_HEADERS))
                headers = p->headers;
        }
        if (!wr_router_route(ex->router, m->routing_key, headers, out))
            return false;
    }
    return true;
}
