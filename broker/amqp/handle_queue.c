/* SPDX-License-Identifier: MIT */
/*
 * queue.declare, bind, unbind, purge and delete. Declare applies the rules
 * of queue_args.c (name, arguments, redeclaration equivalence) in
 * RabbitMQ's order among the channel's own checks (access, exclusivity).
 */
#include "broker/amqp/handle_queue.h"

#include "broker/auth/access.h"
#include "broker/cluster/remote.h"
#include "broker/amqp/channel_internal.h"
#include "broker/vhost/exchange.h"
#include "broker/amqp/handle_exchange.h"
#include "broker/amqp/handle_meta.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/cluster/quorum.h"
#include "broker/vhost/queue_args.h"
#include "core/status.h"

#include <stdlib.h>

/* ---------------------------------------------------------------- methods */

static bool out_of_memory(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
    return false;
}

/* A queue whose home node is down cannot be declared: RabbitMQ's 404. */
static bool home_up(const wr_channel_t *ch, const wr_queue_t *q, wr_amqp_error_t *err)
{
    if (!wr_remote_queue_down(q))
        return true;
    wr_remote_queue_down_error(q, wr_channel_vhost_name(ch), WR_QUEUE_DECLARE, err);
    return false;
}

/* q is NULL for a queue that lives on another node (counts unknown here: 0). */
static bool declare_ok_named(wr_channel_t *ch, bool nowait, wr_bytes_t name, wr_queue_t *q)
{
    wr_method_t m = {.id = WR_QUEUE_DECLARE_OK};

    wr_channel_set_last_queue(ch, name);
    if (nowait)
        return true;
    m.u.queue_declare_ok.queue = name;
    m.u.queue_declare_ok.message_count = q != NULL ? (uint32_t)wr_queue_ready(q) : 0;
    m.u.queue_declare_ok.consumer_count = q != NULL ? (uint32_t)wr_queue_consumer_count(q) : 0;
    wr_channel_send(ch, &m);
    return true;
}

static bool declare_ok(wr_channel_t *ch, bool nowait, wr_queue_t *q)
{
    return declare_ok_named(ch, nowait, wr_queue_name(q), q);
}

/* In a cluster: whether the metadata group knows the shared queue `name`. */
static bool shared_queue(const wr_channel_t *ch, wr_bytes_t name)
{
    wr_meta_t *meta = wr_handle_meta(ch);

    return meta != NULL && wr_meta_queue_find(meta, wr_channel_vhost_name(ch), name, NULL);
}

/* Whether a change to the queue named goes through the metadata group: in a
 * cluster, unless it is a local exclusive queue (those are not replicated). */
static bool through_meta(const wr_channel_t *ch, const wr_queue_t *q)
{
    return wr_handle_meta(ch) != NULL && (q == NULL || !wr_queue_opts(q)->exclusive);
}

/* A redeclaration must match: owner exactly (not just access), then the
 * flags, then the arguments a classic queue cares about. */
static bool check_equivalent(const wr_channel_t *ch, const wr_queue_t *q, bool durable, bool exclusive,
                             bool auto_delete, wr_bytes_t args, wr_amqp_error_t *err)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);

    if (o->exclusive != exclusive || (exclusive && o->owner != wr_conn_id(ch->conn)))
        return wr_channel_locked(ch, q, WR_QUEUE_DECLARE, err);
    return wr_queue_args_check_equivalent(wr_channel_vhost_name(ch), wr_queue_name(q),
                                          &(wr_queue_args_decl_t){o->durable, o->auto_delete, o->args},
                                          &(wr_queue_args_decl_t){durable, auto_delete, args}, err);
}

/* The vhost's max-queues limit, checked before a new queue is made (RabbitMQ 3.10's text). */
static bool queue_room(const wr_channel_t *ch, wr_bytes_t name, wr_amqp_error_t *err)
{
    const wr_conn_env_t *env = wr_conn_env(ch->conn);
    int64_t limit;

    if (!env->queue_check || env->queue_check(env->ud, wr_channel_vhost_name(ch), &limit) == WR_OK)
        return true;
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                      "cannot declare queue '%.*s': queue limit in vhost '%s' (%lld) is reached",
                      (int)name.len, (const char *)name.data, wr_channel_vhost_name(ch), (long long)limit);
    return false;
}

static bool declare_queue(wr_channel_t *ch, const wr_queue_declare_t *d, wr_amqp_error_t *err)
{
    uint8_t buf[255];
    char gen[64];
    wr_bytes_t name = wr_channel_strip_crlf(d->queue, buf);
    uint64_t me = wr_conn_id(ch->conn);
    wr_queue_opts_t o;
    wr_queue_t *q;

    if (d->passive) {
        q = wr_vhost_queue(ch->vhost, name);
        if (q == NULL && shared_queue(ch, name))
            return declare_ok_named(ch, d->nowait, name, NULL);
        if (q == NULL)
            return wr_channel_not_found(ch, err, WR_QUEUE_DECLARE, "queue", name);
        if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_DECLARE, err) || !home_up(ch, q, err))
            return false;
        /* As RabbitMQ's queue.stat: a passive declare is a use too. */
        wr_queue_touch(q);
        return declare_ok(ch, d->nowait, q);
    }
    if (name.len == 0) {
        wr_channel_gen_name(gen, "amq.gen-");
        name = wr_bytes_str(gen);
    } else if (!wr_queue_args_check_name(name, err)) {
        return false;
    }
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_CONFIGURE, "queue", name, WR_QUEUE_DECLARE, err))
        return false;
    /* As RabbitMQ's queue_declared: every permitted non-passive declare,
     * before the equivalence check. */
    wr_counters_add(wr_conn_env(ch->conn)->counters, WR_CNT_QUEUES_DECLARED, 1);
    /* RabbitMQ: an exclusive queue is never durable. */
    o = (wr_queue_opts_t){.durable = d->durable && !d->exclusive,
                          .exclusive = d->exclusive,
                          .auto_delete = d->auto_delete,
                          .owner = d->exclusive ? me : 0,
                          .args = d->arguments};
    q = wr_vhost_queue(ch->vhost, name);
    if (q != NULL) {
        if (!check_equivalent(ch, q, o.durable, o.exclusive, o.auto_delete, d->arguments, err) ||
            !home_up(ch, q, err))
            return false;
        wr_queue_touch(q);
        return declare_ok(ch, d->nowait, q);
    }
    if (!d->exclusive && shared_queue(ch, name))
        return wr_meta_queue_equivalent(wr_handle_meta(ch), wr_channel_vhost_name(ch), name,
                                        &(wr_queue_args_decl_t){o.durable, o.auto_delete, d->arguments},
                                        err) &&
               declare_ok_named(ch, d->nowait, name, NULL);
    if (!wr_queue_args_check_dlx_type(wr_channel_vhost_name(ch), name, d->arguments, err) ||
        !wr_access_check_arg(wr_conn_who(ch->conn), "queue", name, d->arguments, "x-dead-letter-exchange",
                             WR_QUEUE_DECLARE, err))
        return false;
    if (!wr_queue_args_validate(wr_channel_vhost_name(ch), name, d->arguments, err))
        return false;
    if (wr_handle_meta(ch) != NULL && wr_quorum_args_want(d->arguments) &&
        !wr_quorum_check_props(wr_channel_vhost_name(ch), name, d->durable, d->exclusive, d->auto_delete,
                               WR_QUEUE_DECLARE, err))
        return false;
    if (!queue_room(ch, name, err))
        return false;
    if (!d->exclusive && wr_handle_meta(ch) != NULL)
        return wr_handle_meta_propose(
            ch,
            wr_meta_cmd_queue_declare(wr_channel_vhost_name(ch), name,
                                      &(wr_queue_args_decl_t){o.durable, o.auto_delete, d->arguments},
                                      wr_meta_self(wr_handle_meta(ch))),
            WR_QUEUE_DECLARE, d->nowait, name, err);
    if (wr_vhost_queue_add(ch->vhost, name, &o, &q) != WR_OK)
        return out_of_memory(WR_QUEUE_DECLARE, err);
    return declare_ok(ch, d->nowait, q);
}

/* Cluster mode: the ends known here first (a bind's 404s in RabbitMQ's
 * order), then the apply decides. */
static bool propose_binding(wr_channel_t *ch, uint32_t method, const wr_exchange_t *x, wr_bytes_t qname,
                            wr_bytes_t xname, wr_bytes_t key, wr_bytes_t args, bool nowait,
                            wr_amqp_error_t *err)
{
    bool bind = method == WR_QUEUE_BIND;

    if (bind && x == NULL)
        return wr_channel_not_found(ch, err, method, "exchange", xname);
    if (bind && wr_vhost_queue(ch->vhost, qname) == NULL && !shared_queue(ch, qname))
        return wr_channel_not_found(ch, err, method, "queue", qname);
    if (bind && !wr_handle_exchange_check_binding(x, args, method, err))
        return false;
    return wr_handle_meta_propose(
        ch, wr_meta_cmd_binding(wr_channel_vhost_name(ch), bind, xname, WR_DEST_QUEUE, qname, key, args),
        method, nowait, WR_BYTES_LIT(""), err);
}

/* queue.bind and queue.unbind: the same checks, in RabbitMQ's order. */
static bool bind_queue(wr_channel_t *ch, uint32_t method, wr_bytes_t qname, wr_bytes_t xname, wr_bytes_t key,
                       wr_bytes_t args, bool nowait, wr_amqp_error_t *err)
{
    uint8_t qbuf[255], xbuf[255];
    wr_method_t ok = {.id = method == WR_QUEUE_BIND ? WR_QUEUE_BIND_OK : WR_QUEUE_UNBIND_OK};
    wr_exchange_t *x;
    wr_queue_t *q;
    wr_dest_t d;
    int rc;

    /* queue "" is the last declared queue, and so is key "" with it. */
    if (qname.len == 0 && key.len == 0 && !wr_channel_queue_name(ch, key, method, &key, err))
        return false;
    if (!wr_channel_queue_name(ch, qname, method, &qname, err))
        return false;
    qname = wr_channel_strip_crlf(qname, qbuf);
    xname = wr_channel_strip_crlf(xname, xbuf);
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_WRITE, "queue", qname, method, err))
        return false;
    if (xname.len == 0) {
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, method,
                          "operation not permitted on the default exchange");
        return false;
    }
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_READ, "exchange", xname, method, err))
        return false;
    x = wr_vhost_exchange(ch->vhost, xname);
    q = wr_vhost_queue(ch->vhost, qname);
    if (through_meta(ch, q))
        return propose_binding(ch, method, x, qname, xname, key, args, nowait, err);
    if (method == WR_QUEUE_UNBIND) {
        /* RabbitMQ 3.10: unbinding what does not exist is fine. */
        if (x != NULL && q != NULL) {
            d = (wr_dest_t){q, WR_DEST_QUEUE};
            if (wr_channel_check_exclusive(ch, q, method, err))
                wr_vhost_unbind(ch->vhost, x, d, key, args);
            else if (wr_exchange_has_binding(x, d, key, args))
                return false; /* exclusivity only matters for a binding that exists */
        }
        wr_channel_send(ch, &ok);
        return true;
    }
    if (x == NULL)
        return wr_channel_not_found(ch, err, method, "exchange", xname);
    if (q == NULL)
        return wr_channel_not_found(ch, err, method, "queue", qname);
    if (!wr_handle_exchange_check_binding(x, args, method, err) ||
        !wr_channel_check_exclusive(ch, q, method, err))
        return false;
    d = (wr_dest_t){q, WR_DEST_QUEUE};
    rc = wr_vhost_bind(ch->vhost, x, d, key, args);
    if (rc != WR_OK && rc != WR_EEXIST)
        return out_of_memory(method, err);
    if (!nowait)
        wr_channel_send(ch, &ok);
    return true;
}

/* queue.purge on a queue whose purge is done later (a quorum queue: the
 * type's purge_async): the connection is parked until it is, so later frames
 * (an ack through this connection included) come after it. */
typedef struct {
    wr_channel_t *ch;
    wr_conn_t *conn;
    wr_queue_t *q; /* a reference, while the purge is pending */
    wr_queue_purging_t *purging;
    bool nowait;
} async_purge_t;

static void async_purged(void *ud, bool done, uint64_t n)
{
    async_purge_t *w = ud;
    wr_channel_t *ch = w->ch;
    wr_method_t ok = {.id = WR_QUEUE_PURGE_OK};
    wr_amqp_error_t err = {0};

    if (ch->state == WR_CH_OPEN && !done) {
        wr_remote_queue_unanswered(w->q, wr_channel_vhost_name(ch), WR_QUEUE_PURGE, &err);
        wr_channel_error(ch, &err);
    } else if (ch->state == WR_CH_OPEN && !w->nowait) {
        ok.u.queue_purge_ok.message_count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        wr_channel_send(ch, &ok);
    }
    wr_queue_unref(w->q);
    wr_conn_unpark(w->conn);
    free(w);
}

static void async_purge_cancel(void *ud)
{
    async_purge_t *w = ud;

    w->q->type->purge_cancel(w->purging);
    wr_queue_unref(w->q);
    free(w);
}

static bool async_purge(wr_channel_t *ch, wr_queue_t *q, bool nowait, wr_amqp_error_t *err)
{
    async_purge_t *w = calloc(1, sizeof(*w));
    int rc = w != NULL ? q->type->purge_async(q, async_purged, w, &w->purging) : WR_ENOMEM;

    if (rc != WR_OK) {
        free(w);
        if (rc != WR_ENOENT)
            return out_of_memory(WR_QUEUE_PURGE, err);
        wr_remote_queue_unanswered(q, wr_channel_vhost_name(ch), WR_QUEUE_PURGE, err);
        return false;
    }
    w->ch = ch;
    w->conn = ch->conn;
    w->q = wr_queue_ref(q);
    w->nowait = nowait;
    wr_conn_park(ch->conn, async_purge_cancel, w);
    return true;
}

static bool purge_queue(wr_channel_t *ch, const wr_queue_purge_t *p, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_QUEUE_PURGE_OK};
    wr_bytes_t name;
    wr_queue_t *q;

    if (!wr_channel_queue_name(ch, p->queue, WR_QUEUE_PURGE, &name, err))
        return false;
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_READ, "queue", name, WR_QUEUE_PURGE, err))
        return false;
    q = wr_vhost_queue(ch->vhost, name);
    if (q == NULL)
        return wr_channel_not_found(ch, err, WR_QUEUE_PURGE, "queue", name);
    if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_PURGE, err))
        return false;
    if (q->type->purge_async != NULL)
        return async_purge(ch, q, p->nowait, err);
    /* Only ready messages go: deliveries awaiting ack stay with their channels. */
    ok.u.queue_purge_ok.message_count = (uint32_t)wr_queue_purge(q);
    if (!p->nowait)
        wr_channel_send(ch, &ok);
    return true;
}

/* if-empty and if-unused, checked where the queue lives. */
static bool delete_allowed(const wr_channel_t *ch, const wr_queue_delete_t *d, const wr_queue_t *q,
                           wr_bytes_t name, wr_amqp_error_t *err)
{
    if (d->if_empty && wr_queue_ready(q) > 0) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DELETE,
                          "queue '%.*s' in vhost '%s' not empty", (int)name.len, (const char *)name.data,
                          wr_channel_vhost_name(ch));
        return false;
    }
    if (d->if_unused && wr_queue_consumer_count(q) > 0) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DELETE,
                          "queue '%.*s' in vhost '%s' in use", (int)name.len, (const char *)name.data,
                          wr_channel_vhost_name(ch));
        return false;
    }
    return true;
}

/* A shared queue in a cluster: the conditions are checked on its home node
 * only (elsewhere its counts are not known here), then the apply deletes it. */
static bool delete_shared(wr_channel_t *ch, const wr_queue_delete_t *d, const wr_queue_t *q, wr_bytes_t name,
                          wr_amqp_error_t *err)
{
    if (q != NULL && !delete_allowed(ch, d, q, name, err))
        return false;
    return wr_handle_meta_propose(ch, wr_meta_cmd_queue_delete(wr_channel_vhost_name(ch), name),
                                  WR_QUEUE_DELETE, d->nowait, WR_BYTES_LIT(""), err);
}

static bool delete_queue(wr_channel_t *ch, const wr_queue_delete_t *d, wr_amqp_error_t *err)
{
    uint8_t buf[255];
    wr_method_t ok = {.id = WR_QUEUE_DELETE_OK};
    wr_bytes_t name;
    wr_queue_t *q;

    if (!wr_channel_queue_name(ch, d->queue, WR_QUEUE_DELETE, &name, err))
        return false;
    name = wr_channel_strip_crlf(name, buf);
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_CONFIGURE, "queue", name, WR_QUEUE_DELETE, err))
        return false;
    q = wr_vhost_queue(ch->vhost, name);
    if (through_meta(ch, q) && (q != NULL || shared_queue(ch, name)))
        return delete_shared(ch, d, q, name, err);
    /* RabbitMQ 3.10 answers delete-ok (0 messages) for a missing queue. */
    if (q != NULL) {
        if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_DELETE, err) || !delete_allowed(ch, d, q, name, err))
            return false;
        ok.u.queue_delete_ok.message_count = (uint32_t)wr_vhost_queue_delete(ch->vhost, q);
    }
    if (!d->nowait)
        wr_channel_send(ch, &ok);
    return true;
}

bool wr_handle_queue(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err)
{
    switch (m->id) {
    case WR_QUEUE_DECLARE:
        return declare_queue(ch, &m->u.queue_declare, err);
    case WR_QUEUE_BIND: {
        const wr_queue_bind_t *b = &m->u.queue_bind;
        return bind_queue(ch, m->id, b->queue, b->exchange, b->routing_key, b->arguments, b->nowait, err);
    }
    case WR_QUEUE_UNBIND: {
        const wr_queue_unbind_t *u = &m->u.queue_unbind;
        return bind_queue(ch, m->id, u->queue, u->exchange, u->routing_key, u->arguments, false, err);
    }
    case WR_QUEUE_PURGE:
        return purge_queue(ch, &m->u.queue_purge, err);
    case WR_QUEUE_DELETE:
        return delete_queue(ch, &m->u.queue_delete, err);
    default:
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        return false;
    }
}
