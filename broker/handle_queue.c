/* SPDX-License-Identifier: MIT */
/*
 * queue.declare, bind, unbind, purge and delete. Declare validates new
 * queues' arguments with RabbitMQ's classic-queue rules (a table below) and
 * checks a redeclaration for equivalence; the texts are RabbitMQ's.
 */
#include "broker/handle_queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/access.h"
#include "broker/channel_internal.h"
#include "broker/exchange.h"
#include "broker/handle_exchange.h"
#include "core/status.h"
#include "protocol/table.h"

/* ---------------------------------------------------------------- arguments */

/* What a classic queue accepts for each argument it validates. */
typedef enum {
    ARG_EXPIRES,   /* integer, not 0, a valid expiry */
    ARG_TTL,       /* integer, a valid expiry */
    ARG_NON_NEG,   /* integer >= 0 */
    ARG_PRIORITY,  /* integer 0..255 */
    ARG_BOOL,      /* bool */
    ARG_STRING,    /* longstr */
    ARG_DLX_KEY,   /* longstr, and only with x-dead-letter-exchange */
    ARG_OVERFLOW,  /* one of the overflow modes */
    ARG_MODE,      /* default or lazy */
    ARG_VERSION,   /* 1 or 2 */
    ARG_QUEUE_TYPE /* classic, quorum or stream */
} arg_rule_t;

/* In RabbitMQ's order: the first failing argument is the one reported. */
static const struct {
    const char *key;
    arg_rule_t rule;
} declare_args[] = {
    {"x-expires", ARG_EXPIRES},
    {"x-message-ttl", ARG_TTL},
    {"x-dead-letter-exchange", ARG_STRING},
    {"x-dead-letter-routing-key", ARG_DLX_KEY},
    {"x-max-length", ARG_NON_NEG},
    {"x-max-length-bytes", ARG_NON_NEG},
    {"x-max-priority", ARG_PRIORITY},
    {"x-overflow", ARG_OVERFLOW},
    {"x-queue-mode", ARG_MODE},
    {"x-queue-version", ARG_VERSION},
    {"x-single-active-consumer", ARG_BOOL},
    {"x-queue-type", ARG_QUEUE_TYPE},
    /* Only quorum queues have it in RabbitMQ; warren's queues do. */
    {"x-delivery-limit", ARG_NON_NEG},
    /* RabbitMQ 3.12's; 3.10 ignores it. */
    {"x-consumer-timeout", ARG_NON_NEG},
};

/* Arguments of other queue types, which a classic queue refuses. */
static const char *const foreign_args[] = {
    "x-dead-letter-strategy",          "x-max-in-memory-length", "x-max-in-memory-bytes",
    "x-quorum-initial-group-size",     "x-queue-leader-locator", "x-max-age",
    "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
};

/* The arguments a redeclaration must repeat, as rabbit_classic_queue lists them. */
static const char *const equiv_args[] = {
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
    "x-delivery-limit",
};

#define WR_MAX_EXPIRY 315360000000LL /* RabbitMQ: ten years in milliseconds */

static bool str_in(wr_bytes_t s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_bytes_eq_str(s, set[i]))
            return true;
    }
    return false;
}

/*
 * Checks one argument; on failure writes the reason as RabbitMQ prints it
 * (an Erlang term through ~p) into why and returns false.
 */
static bool check_arg(arg_rule_t rule, const wr_value_t *v, wr_bytes_t args, char *why, size_t n)
{
    static const char *const overflow[] = {"drop-head", "reject-publish", "reject-publish-dlx"};
    static const char *const modes[] = {"default", "lazy"};
    static const char *const types[] = {"classic", "quorum", "stream"};
    const char *tname = wr_value_type_name(v->type);
    wr_value_t dlx;
    int64_t i;

    switch (rule) {
    case ARG_BOOL:
        if (v->type == 't')
            return true;
        snprintf(why, n, "{unacceptable_type,%s}", tname);
        return false;
    case ARG_STRING:
    case ARG_DLX_KEY:
    case ARG_OVERFLOW:
    case ARG_MODE:
    case ARG_QUEUE_TYPE:
        if (v->type != 'S') {
            snprintf(why, n, "{unacceptable_type,%s}", tname);
            return false;
        }
        if (rule == ARG_DLX_KEY && !wr_table_get(args, "x-dead-letter-exchange", &dlx)) {
            snprintf(why, n, "routing_key_but_no_dlx_defined");
            return false;
        }
        if (rule == ARG_OVERFLOW && !str_in(v->v.s, overflow, 3)) {
            snprintf(why, n, "invalid_overflow");
            return false;
        }
        if (rule == ARG_MODE && !str_in(v->v.s, modes, 2)) {
            snprintf(why, n, "\"unsupported queue mode '%.*s'\"", (int)v->v.s.len, (const char *)v->v.s.data);
            return false;
        }
        if (rule == ARG_QUEUE_TYPE && !str_in(v->v.s, types, 3)) {
            snprintf(why, n, "\"unsupported queue type '%.*s'\"", (int)v->v.s.len, (const char *)v->v.s.data);
            return false;
        }
        return true;
    default:
        break;
    }
    /* The integer rules: RabbitMQ's INTEGER_ARG_TYPES are our integer tags. */
    if (!wr_value_int(v, &i)) {
        snprintf(why, n, "\"expected integer, got %s\"", tname);
        return false;
    }
    switch (rule) {
    case ARG_EXPIRES:
    case ARG_TTL:
        if (rule == ARG_EXPIRES && i == 0)
            snprintf(why, n, "{value_zero,0}");
        else if (i < 0)
            snprintf(why, n, "{value_negative,%" PRId64 "}", i);
        else if (i > WR_MAX_EXPIRY)
            snprintf(why, n, "{value_too_large,%" PRId64 "}", i);
        else
            return true;
        return false;
    default:
        if (i < 0) {
            snprintf(why, n, "{value_negative,%" PRId64 "}", i);
            return false;
        }
        if (rule == ARG_PRIORITY && i > 255) {
            snprintf(why, n, "{max_value_exceeded,%" PRId64 "}", i);
            return false;
        }
        if (rule == ARG_VERSION && i != 1 && i != 2) {
            snprintf(why, n, "\"unsupported queue version '%" PRId64 "'\"", i);
            return false;
        }
        return true;
    }
}

bool wr_handle_queue_check_args(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err)
{
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;
    char why[160];

    for (size_t i = 0; i < sizeof(declare_args) / sizeof(declare_args[0]); i++) {
        if (wr_table_get(args, declare_args[i].key, &v) &&
            !check_arg(declare_args[i].rule, &v, args, why, sizeof(why))) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                              "invalid arg '%s' for queue '%.*s' in vhost '%s': %s", declare_args[i].key,
                              (int)name.len, (const char *)name.data, vhost, why);
            return false;
        }
    }
    wr_table_iter_init(&it, args);
    while (wr_table_next(&it, &key, &v)) {
        if (str_in(key, foreign_args, sizeof(foreign_args) / sizeof(foreign_args[0]))) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                              "invalid arg '%.*s' for queue '%.*s' in vhost '%s' of queue type "
                              "rabbit_classic_queue",
                              (int)key.len, (const char *)key.data, (int)name.len, (const char *)name.data,
                              vhost);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- methods */

static bool out_of_memory(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
    return false;
}

static bool declare_ok(wr_channel_t *ch, bool nowait, wr_queue_t *q)
{
    wr_method_t m = {.id = WR_QUEUE_DECLARE_OK};

    wr_channel_set_last_queue(ch, wr_queue_name(q));
    if (nowait)
        return true;
    m.u.queue_declare_ok.queue = wr_queue_name(q);
    m.u.queue_declare_ok.message_count = (uint32_t)wr_queue_ready(q);
    m.u.queue_declare_ok.consumer_count = (uint32_t)wr_queue_consumer_count(q);
    wr_channel_send(ch, &m);
    return true;
}

bool wr_handle_queue_check_name(wr_bytes_t name, wr_amqp_error_t *err)
{
    if (!wr_bytes_has_prefix(name, "amq."))
        return true;
    wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_QUEUE_DECLARE,
                      "queue name '%.*s' contains reserved prefix 'amq.*'", (int)name.len,
                      (const char *)name.data);
    return false;
}

bool wr_handle_queue_check_equivalent(const char *vhost, const wr_queue_t *q, bool durable, bool auto_delete,
                                      wr_bytes_t args, wr_amqp_error_t *err)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);
    wr_bytes_t name = wr_queue_name(q);

    if (!wr_channel_flag_equiv(vhost, err, WR_QUEUE_DECLARE, "queue", name, "durable", o->durable, durable) ||
        !wr_channel_flag_equiv(vhost, err, WR_QUEUE_DECLARE, "queue", name, "auto_delete", o->auto_delete,
                               auto_delete))
        return false;
    for (size_t i = 0; i < sizeof(equiv_args) / sizeof(equiv_args[0]); i++) {
        if (!wr_channel_arg_equiv(vhost, err, WR_QUEUE_DECLARE, "queue", name, o->args, args, equiv_args[i]))
            return false;
    }
    return true;
}

/* A redeclaration must match: owner exactly (not just access), then the
 * flags, then the arguments a classic queue cares about. */
static bool check_equivalent(const wr_channel_t *ch, const wr_queue_t *q, bool durable, bool exclusive,
                             bool auto_delete, wr_bytes_t args, wr_amqp_error_t *err)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);

    if (o->exclusive != exclusive || (exclusive && o->owner != wr_conn_id(ch->conn)))
        return wr_channel_locked(ch, q, WR_QUEUE_DECLARE, err);
    return wr_handle_queue_check_equivalent(wr_channel_vhost_name(ch), q, durable, auto_delete, args, err);
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
        if (q == NULL)
            return wr_channel_not_found(ch, err, WR_QUEUE_DECLARE, "queue", name);
        if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_DECLARE, err))
            return false;
        /* As RabbitMQ's queue.stat: a passive declare is a use too. */
        wr_queue_touch(q);
        return declare_ok(ch, d->nowait, q);
    }
    if (name.len == 0) {
        wr_channel_gen_name(gen, "amq.gen-");
        name = wr_bytes_str(gen);
    } else if (!wr_handle_queue_check_name(name, err)) {
        return false;
    }
    if (!wr_access_check(ch->conn, WR_PERM_CONFIGURE, "queue", name, WR_QUEUE_DECLARE, err))
        return false;
    /* RabbitMQ: an exclusive queue is never durable. */
    o = (wr_queue_opts_t){.durable = d->durable && !d->exclusive,
                          .exclusive = d->exclusive,
                          .auto_delete = d->auto_delete,
                          .owner = d->exclusive ? me : 0,
                          .args = d->arguments};
    q = wr_vhost_queue(ch->vhost, name);
    if (q != NULL) {
        if (!check_equivalent(ch, q, o.durable, o.exclusive, o.auto_delete, d->arguments, err))
            return false;
        wr_queue_touch(q);
        return declare_ok(ch, d->nowait, q);
    }
    if (!wr_access_check_arg(ch->conn, "queue", name, d->arguments, "x-dead-letter-exchange",
                             WR_QUEUE_DECLARE, err))
        return false;
    if (!wr_handle_queue_check_args(wr_channel_vhost_name(ch), name, d->arguments, err))
        return false;
    if (wr_vhost_queue_add(ch->vhost, name, &o, &q) != WR_OK)
        return out_of_memory(WR_QUEUE_DECLARE, err);
    return declare_ok(ch, d->nowait, q);
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
    if (!wr_access_check(ch->conn, WR_PERM_WRITE, "queue", qname, method, err))
        return false;
    if (xname.len == 0) {
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, method,
                          "operation not permitted on the default exchange");
        return false;
    }
    if (!wr_access_check(ch->conn, WR_PERM_READ, "exchange", xname, method, err))
        return false;
    x = wr_vhost_exchange(ch->vhost, xname);
    q = wr_vhost_queue(ch->vhost, qname);
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

static bool purge_queue(wr_channel_t *ch, const wr_queue_purge_t *p, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_QUEUE_PURGE_OK};
    wr_bytes_t name;
    wr_queue_t *q;

    if (!wr_channel_queue_name(ch, p->queue, WR_QUEUE_PURGE, &name, err))
        return false;
    if (!wr_access_check(ch->conn, WR_PERM_READ, "queue", name, WR_QUEUE_PURGE, err))
        return false;
    q = wr_vhost_queue(ch->vhost, name);
    if (q == NULL)
        return wr_channel_not_found(ch, err, WR_QUEUE_PURGE, "queue", name);
    if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_PURGE, err))
        return false;
    /* Only ready messages go: deliveries awaiting ack stay with their channels. */
    ok.u.queue_purge_ok.message_count = (uint32_t)wr_queue_purge(q);
    if (!p->nowait)
        wr_channel_send(ch, &ok);
    return true;
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
    if (!wr_access_check(ch->conn, WR_PERM_CONFIGURE, "queue", name, WR_QUEUE_DELETE, err))
        return false;
    q = wr_vhost_queue(ch->vhost, name);
    /* RabbitMQ 3.10 answers delete-ok (0 messages) for a missing queue. */
    if (q != NULL) {
        if (!wr_channel_check_exclusive(ch, q, WR_QUEUE_DELETE, err))
            return false;
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
