/* SPDX-License-Identifier: MIT */
/*
 * Virtual hosts: the exchange and queue name tables, the standard exchanges,
 * deletion with its cascades (bindings, auto-delete exchanges, exclusive
 * queues of a closed connection) and the one libevent event that runs the
 * queue dispatch scheduler once per loop iteration.
 */
#include "broker/vhost.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/durable.h"
#include "broker/log.h"
#include "core/map.h"
#include "core/status.h"

/* Deliveries per queue per scheduler run: fairness between queues, and a
 * bound on the time one loop iteration spends dispatching. */
#define WR_VHOST_DISPATCH_BATCH 256

/* The exclusive queues of one connection. */
typedef struct {
    wr_list_t queues;
    uint64_t conn_id;
} owner_t;

struct wr_vhost_s {
    wr_server_t *srv;
    char *name;
    wr_map_t *exchanges;
    wr_map_t *queues;
    wr_map_t *owners; /* conn id (8 bytes) -> owner_t */
    wr_exchange_t *default_exchange;
    wr_queue_sched_t sched;
    struct event *run_ev;
    wr_vhost_stats_t stats;
    /* Exchanges that lost a binding as source during the current operation:
     * auto-delete candidates, each holding a reference. */
    wr_exchange_t **pending;
    size_t npending;
    size_t cap_pending;
};

static void run_dispatch(evutil_socket_t fd, short what, void *arg)
{
    wr_vhost_t *vh = arg;
    /* More work: run again on the next iteration, after polling I/O (an
     * event_active from inside the callback would run before it). */
    static const struct timeval next_iteration = {0, 0};

    if (wr_queue_sched_run(&vh->sched, WR_VHOST_DISPATCH_BATCH))
        event_add(vh->run_ev, &next_iteration);
}

static void wake_dispatch(void *ud)
{
    wr_vhost_t *vh = ud;

    event_active(vh->run_ev, 0, 0);
}

static const struct {
    const char *name;
    const char *type;
    bool internal;
} standard_exchanges[] = {
    {"", "direct", false},
    {"amq.direct", "direct", false},
    {"amq.fanout", "fanout", false},
    {"amq.topic", "topic", false},
    {"amq.headers", "headers", false},
    {"amq.match", "headers", false},
    {"amq.rabbitmq.trace", "topic", true},
};

wr_vhost_t *wr_vhost_new(wr_server_t *srv, const char *name)
{
    wr_vhost_t *vh = calloc(1, sizeof(*vh));

    if (vh == NULL)
        return NULL;
    vh->srv = srv;
    vh->name = strdup(name);
    vh->exchanges = wr_map_new();
    vh->queues = wr_map_new();
    vh->owners = wr_map_new();
    vh->run_ev = event_new(wr_server_base(srv), -1, 0, run_dispatch, vh);
    if (vh->name == NULL || vh->exchanges == NULL || vh->queues == NULL || vh->owners == NULL ||
        vh->run_ev == NULL)
        goto err;
    wr_queue_sched_init(&vh->sched, wake_dispatch, vh);
    for (size_t i = 0; i < sizeof(standard_exchanges) / sizeof(standard_exchanges[0]); i++) {
        wr_exchange_opts_t o = {
            .type = wr_exchange_type_find(wr_bytes_str(standard_exchanges[i].type)),
            .durable = true,
            .internal = standard_exchanges[i].internal,
        };
        wr_exchange_t *x;

        if (wr_vhost_exchange_add(vh, wr_bytes_str(standard_exchanges[i].name), &o, &x) != WR_OK)
            goto err;
        if (i == 0)
            vh->default_exchange = x;
    }
    return vh;
err:
    wr_vhost_free(vh);
    return NULL;
}

static void unbind_all(wr_map_t *exchanges)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(exchanges, &it, NULL, &v))
        wr_exchange_unbind_from(v);
}

void wr_vhost_free(wr_vhost_t *vh)
{
    wr_map_iter_t it = {0};
    void *v;

    if (vh == NULL)
        return;
    /* Connections are gone by now, so no consumer is left to tell. Unbinding
     * everything first means nothing below can cascade. */
    if (vh->exchanges != NULL) {
        unbind_all(vh->exchanges);
        while (wr_map_next(vh->exchanges, &it, NULL, &v)) {
            wr_exchange_mark_deleted(v);
            wr_exchange_unref(v);
        }
    }
    if (vh->queues != NULL) {
        it = (wr_map_iter_t){0};
        while (wr_map_next(vh->queues, &it, NULL, &v)) {
            wr_queue_close(v);
            wr_queue_unref(v);
        }
    }
    if (vh->owners != NULL) {
        it = (wr_map_iter_t){0};
        while (wr_map_next(vh->owners, &it, NULL, &v))
            free(v);
    }
    wr_map_free(vh->exchanges);
    wr_map_free(vh->queues);
    wr_map_free(vh->owners);
    if (vh->run_ev != NULL)
        event_free(vh->run_ev);
    free(vh->pending);
    free(vh->name);
    free(vh);
}

const char *wr_vhost_name(const wr_vhost_t *vh)
{
    return vh->name;
}

wr_exchange_t *wr_vhost_exchange(const wr_vhost_t *vh, wr_bytes_t name)
{
    return wr_map_get(vh->exchanges, name);
}

wr_queue_t *wr_vhost_queue(const wr_vhost_t *vh, wr_bytes_t name)
{
    return wr_map_get(vh->queues, name);
}

/* A durable exchange, queue or binding came or went. */
static void topology_changed(wr_vhost_t *vh)
{
    wr_durable_topology_changed(wr_server_durable(vh->srv));
}

static bool binding_durable(const wr_exchange_t *x, wr_dest_t d)
{
    if (!wr_exchange_opts(x)->durable)
        return false;
    return d.kind == WR_DEST_QUEUE ? wr_queue_opts(d.ptr)->durable : wr_exchange_opts(d.ptr)->durable;
}

int wr_vhost_exchange_add(wr_vhost_t *vh, wr_bytes_t name, const wr_exchange_opts_t *o, wr_exchange_t **out)
{
    wr_exchange_t *x = wr_exchange_new(name, o);
    int rc;

    if (x == NULL)
        return WR_ENOMEM;
    rc = wr_map_put(vh->exchanges, wr_exchange_name(x), x);
    if (rc != WR_OK) {
        wr_exchange_unref(x);
        return rc;
    }
    if (o->durable)
        topology_changed(vh);
    *out = x;
    return WR_OK;
}

static wr_bytes_t owner_key(const uint64_t *conn_id)
{
    return (wr_bytes_t){(const uint8_t *)conn_id, sizeof(*conn_id)};
}

/* A new queue, with a log in the node's store (the stored one, logname, of a
 * recovered durable queue). */
static int queue_add(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, const char *logname,
                     wr_queue_t **out, char *err, size_t errlen)
{
    wr_durable_t *d = wr_server_durable(vh->srv);
    wr_queue_t *q = wr_queue_new(name, o, &vh->sched);
    owner_t *ow = NULL;
    char what[320];
    int rc;

    if (q == NULL)
        return WR_ENOMEM;
    if (d != NULL) {
        snprintf(what, sizeof(what), "queue '%.*s' in vhost '%s'", (int)name.len, (const char *)name.data,
                 vh->name);
        rc = wr_queue_use_log(q, wr_durable_qlogs(d), logname, what, err, errlen);
        if (rc != WR_OK)
            goto err;
    }
    if (o->exclusive) {
        ow = wr_map_get(vh->owners, owner_key(&o->owner));
        if (ow == NULL) {
            ow = malloc(sizeof(*ow));
            if (ow == NULL) {
                rc = WR_ENOMEM;
                goto err;
            }
            ow->conn_id = o->owner;
            wr_list_init(&ow->queues);
            rc = wr_map_put(vh->owners, owner_key(&ow->conn_id), ow);
            if (rc != WR_OK) {
                free(ow);
                goto err;
            }
        }
    }
    rc = wr_map_put(vh->queues, wr_queue_name(q), q);
    if (rc != WR_OK)
        goto err_owner;
    if (ow != NULL)
        wr_list_insert_tail(&ow->queues, wr_queue_owner_link(q));
    if (o->durable)
        topology_changed(vh);
    *out = q;
    return WR_OK;
err_owner:
    if (ow != NULL && wr_list_empty(&ow->queues)) {
        wr_map_del(vh->owners, owner_key(&ow->conn_id));
        free(ow);
    }
err:
    wr_queue_unref(q);
    return rc;
}

int wr_vhost_queue_add(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_t **out)
{
    char err[512];
    int rc = queue_add(vh, name, o, NULL, out, err, sizeof(err));

    /* Without a log name nothing is opened: only memory can run out. */
    return rc == WR_OK ? WR_OK : WR_ENOMEM;
}

int wr_vhost_queue_recover(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, const char *logname,
                           wr_queue_t **out, char *err, size_t errlen)
{
    return queue_add(vh, name, o, logname, out, err, errlen);
}

static void lost_source(void *ud, wr_exchange_t *source)
{
    wr_vhost_t *vh = ud;

    if (!wr_exchange_opts(source)->auto_delete || wr_exchange_deleted(source))
        return;
    if (vh->npending == vh->cap_pending) {
        size_t ncap = vh->cap_pending ? vh->cap_pending * 2 : 8;
        wr_exchange_t **n = realloc(vh->pending, ncap * sizeof(*n));

        if (n == NULL) {
            wr_log_warn("vhost '%s': out of memory; auto-delete exchange kept", vh->name);
            return;
        }
        vh->pending = n;
        vh->cap_pending = ncap;
    }
    vh->pending[vh->npending++] = wr_exchange_ref(source);
}

static void exchange_remove(wr_vhost_t *vh, wr_exchange_t *x)
{
    if (wr_exchange_opts(x)->durable)
        topology_changed(vh);
    wr_map_del(vh->exchanges, wr_exchange_name(x));
    wr_exchange_mark_deleted(x);
    wr_exchange_unbind_from(x);
    wr_exchange_unbind_to((wr_dest_t){x, WR_DEST_EXCHANGE}, lost_source, vh);
    wr_exchange_unref(x);
}

/* Deletes the auto-delete exchanges that lost their last binding; deleting
 * one can leave others without bindings, which join the same list. */
static void run_pending(wr_vhost_t *vh)
{
    while (vh->npending > 0) {
        wr_exchange_t *x = vh->pending[--vh->npending];

        if (!wr_exchange_deleted(x) && wr_exchange_binding_count(x) == 0)
            exchange_remove(vh, x);
        wr_exchange_unref(x);
    }
}

void wr_vhost_exchange_delete(wr_vhost_t *vh, wr_exchange_t *x)
{
    exchange_remove(vh, x);
    run_pending(vh);
}

static void stats_add(wr_queue_stats_t *to, const wr_queue_stats_t *s)
{
    to->publish += s->publish;
    to->deliver += s->deliver;
    to->deliver_no_ack += s->deliver_no_ack;
    to->get += s->get;
    to->get_no_ack += s->get_no_ack;
    to->redeliver += s->redeliver;
    to->ack += s->ack;
}

size_t wr_vhost_queue_delete(wr_vhost_t *vh, wr_queue_t *q)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);
    size_t ready;

    wr_map_del(vh->queues, wr_queue_name(q));
    if (o->durable)
        topology_changed(vh);
    stats_add(&vh->stats.retired, wr_queue_stats(q));
    if (o->exclusive) {
        owner_t *ow = wr_map_get(vh->owners, owner_key(&o->owner));

        wr_list_remove(wr_queue_owner_link(q));
        if (wr_list_empty(&ow->queues)) {
            wr_map_del(vh->owners, owner_key(&ow->conn_id));
            free(ow);
        }
    }
    ready = wr_queue_close(q);
    wr_exchange_unbind_to((wr_dest_t){q, WR_DEST_QUEUE}, lost_source, vh);
    run_pending(vh);
    wr_queue_unref(q);
    return ready;
}

int wr_vhost_bind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    int rc = wr_exchange_bind(x, d, key, args);

    if (rc == WR_OK && binding_durable(x, d))
        topology_changed(vh);
    return rc;
}

int wr_vhost_unbind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    int rc = wr_exchange_unbind(x, d, key, args);

    if (rc == WR_OK && binding_durable(x, d))
        topology_changed(vh);
    if (rc == WR_OK && wr_exchange_binding_count(x) == 0) {
        lost_source(vh, x);
        run_pending(vh);
    }
    return rc;
}

bool wr_vhost_route(wr_vhost_t *vh, wr_exchange_t *x, wr_message_t *m, wr_dest_set_t *out)
{
    if (x == vh->default_exchange) {
        wr_queue_t *q = wr_vhost_queue(vh, m->routing_key);
        return q == NULL || wr_dest_set_add(out, (wr_dest_t){q, WR_DEST_QUEUE});
    }
    return wr_exchange_route(x, m, out);
}

bool wr_vhost_publish(wr_vhost_t *vh, wr_exchange_t *x, wr_message_t *m, wr_dest_set_t *scratch,
                      wr_confirm_t *conf, size_t *routed)
{
    int rc;

    *routed = 0;
    wr_dest_set_clear(scratch);
    if (!wr_vhost_route(vh, x, m, scratch))
        return false;
    for (size_t i = 0; i < scratch->count; i++) {
        wr_queue_t *q = scratch->items[i].ptr;

        if (scratch->items[i].kind != WR_DEST_QUEUE)
            continue;
        rc = wr_queue_publish(q, m, conf);
        if (rc == WR_OK) {
            (*routed)++;
            continue;
        }
        /* Not taken: its publisher gets a nack. A write error is logged by the queue's log. */
        if (conf != NULL)
            conf->failed = true;
        if (rc == WR_ENOMEM)
            wr_log_warn("out of memory: message to queue '%.*s' dropped", (int)wr_queue_name(q).len,
                        (const char *)wr_queue_name(q).data);
    }
    vh->stats.publish++;
    vh->stats.unroutable += *routed == 0;
    return true;
}

const wr_map_t *wr_vhost_exchanges(const wr_vhost_t *vh)
{
    return vh->exchanges;
}

const wr_map_t *wr_vhost_queues(const wr_vhost_t *vh)
{
    return vh->queues;
}

const wr_vhost_stats_t *wr_vhost_stats(const wr_vhost_t *vh)
{
    return &vh->stats;
}

void wr_vhost_conn_closed(wr_vhost_t *vh, wr_conn_t *c)
{
    uint64_t id = wr_conn_id(c);
    owner_t *ow = wr_map_get(vh->owners, owner_key(&id));

    /* Deleting the last queue frees ow, so test emptiness before that. */
    while (ow != NULL) {
        wr_queue_t *q = wr_queue_from_owner_link(ow->queues.next);
        bool last = ow->queues.next->next == &ow->queues;

        wr_vhost_queue_delete(vh, q);
        if (last)
            break;
    }
}
