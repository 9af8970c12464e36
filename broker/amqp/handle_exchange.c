/* SPDX-License-Identifier: MIT */
/*
 * exchange.declare, delete, bind and unbind. The order of the checks follows
 * RabbitMQ's rabbit_channel, because it decides which error a client sees
 * when several apply.
 */
#include "broker/amqp/handle_exchange.h"

#include "broker/auth/access.h"
#include "broker/amqp/channel_internal.h"
#include "broker/amqp/handle_meta.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/vhost/exchange.h"
#include "broker/vhost/queue_args.h"
#include "core/status.h"
#include "protocol/table.h"

static bool reply(wr_channel_t *ch, bool nowait, uint32_t id)
{
    wr_method_t m = {.id = id};

    if (!nowait)
        wr_channel_send(ch, &m);
    return true;
}

static bool not_default(wr_bytes_t name, uint32_t method, wr_amqp_error_t *err)
{
    if (name.len > 0)
        return true;
    wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, method, "operation not permitted on the default exchange");
    return false;
}

static bool out_of_memory(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
    return false;
}

bool wr_handle_exchange_check_binding(const wr_exchange_t *source, wr_bytes_t args, uint32_t method,
                                      wr_amqp_error_t *err)
{
    wr_value_t v;
    char val[128];

    if (wr_exchange_opts(source)->type != wr_router_type_find(WR_BYTES_LIT("headers")) ||
        !wr_table_get(args, "x-match", &v))
        return true;
    if (v.type == 'S') {
        if (wr_bytes_eq_str(v.v.s, "all") || wr_bytes_eq_str(v.v.s, "any") ||
            wr_bytes_eq_str(v.v.s, "all-with-x") || wr_bytes_eq_str(v.v.s, "any-with-x"))
            return true;
        wr_channel_fmt_binary(val, sizeof(val), v.v.s, true);
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method,
                          "Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x",
                          val);
        return false;
    }
    if (v.type == 'x')
        wr_channel_fmt_binary(val, sizeof(val), v.v.s, true);
    else
        wr_value_format(&v, val, sizeof(val));
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method,
                      "Invalid x-match field type %s (value %s); expected longstr",
                      wr_value_type_name(v.type), val);
    return false;
}

bool wr_handle_exchange_check_new(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err)
{
    wr_value_t ae;

    if (wr_bytes_has_prefix(name, "amq.")) {
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_EXCHANGE_DECLARE,
                          "exchange name '%.*s' contains reserved prefix 'amq.*'", (int)name.len,
                          (const char *)name.data);
        return false;
    }
    if (wr_table_get(args, "alternate-exchange", &ae) && ae.type != 'S') {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_EXCHANGE_DECLARE,
                          "invalid type '%s' for arg 'alternate-exchange' in exchange '%.*s' in vhost '%s'",
                          wr_value_type_name(ae.type), (int)name.len, (const char *)name.data, vhost);
        return false;
    }
    return true;
}

bool wr_handle_exchange_check_equivalent(const char *vhost, const wr_exchange_t *x,
                                         const wr_exchange_opts_t *req, wr_amqp_error_t *err)
{
    return wr_meta_exchange_equivalent(vhost, wr_exchange_name(x), wr_exchange_opts(x), req, err);
}

static bool declare_new(wr_channel_t *ch, const wr_exchange_declare_t *d, wr_bytes_t name,
                        const wr_router_type_t *type, wr_amqp_error_t *err)
{
    wr_exchange_opts_t o = {type, d->durable, d->auto_delete, d->internal, d->arguments};
    wr_exchange_t *x;

    if (!wr_handle_exchange_check_new(wr_channel_vhost_name(ch), name, d->arguments, err))
        return false;
    if (!wr_access_check_arg(wr_conn_who(ch->conn), "exchange", name, d->arguments, "alternate-exchange",
                             WR_EXCHANGE_DECLARE, err))
        return false;
    if (wr_handle_meta(ch) != NULL)
        return wr_handle_meta_propose(ch, wr_meta_cmd_exchange_declare(wr_channel_vhost_name(ch), name, &o),
                                      WR_EXCHANGE_DECLARE, d->nowait, WR_BYTES_LIT(""), err);
    if (wr_vhost_exchange_add(ch->vhost, name, &o, &x) != WR_OK)
        return out_of_memory(WR_EXCHANGE_DECLARE, err);
    return reply(ch, d->nowait, WR_EXCHANGE_DECLARE_OK);
}

static bool declare_exchange(wr_channel_t *ch, const wr_exchange_declare_t *d, wr_amqp_error_t *err)
{
    uint8_t buf[255];
    wr_bytes_t name = wr_channel_strip_crlf(d->exchange, buf);
    const wr_router_type_t *type;
    wr_exchange_opts_t req;
    wr_exchange_t *x;

    if (d->passive) {
        if (!not_default(name, WR_EXCHANGE_DECLARE, err))
            return false;
        if (wr_vhost_exchange(ch->vhost, name) == NULL)
            return wr_channel_not_found(ch, err, WR_EXCHANGE_DECLARE, "exchange", name);
        return reply(ch, d->nowait, WR_EXCHANGE_DECLARE_OK);
    }
    type = wr_router_type_find(d->type);
    if (type == NULL) {
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, WR_EXCHANGE_DECLARE, "unknown exchange type '%.*s'",
                          (int)d->type.len, (const char *)d->type.data);
        return false;
    }
    if (!not_default(name, WR_EXCHANGE_DECLARE, err))
        return false;
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_CONFIGURE, "exchange", name, WR_EXCHANGE_DECLARE,
                         err))
        return false;
    x = wr_vhost_exchange(ch->vhost, name);
    if (x == NULL)
        return declare_new(ch, d, name, type, err);
    req = (wr_exchange_opts_t){type, d->durable, d->auto_delete, d->internal, d->arguments};
    if (!wr_handle_exchange_check_equivalent(wr_channel_vhost_name(ch), x, &req, err))
        return false;
    return reply(ch, d->nowait, WR_EXCHANGE_DECLARE_OK);
}

static bool delete_exchange(wr_channel_t *ch, const wr_exchange_delete_t *d, wr_amqp_error_t *err)
{
    uint8_t buf[255];
    wr_bytes_t name = wr_channel_strip_crlf(d->exchange, buf);
    wr_exchange_t *x;

    if (!not_default(name, WR_EXCHANGE_DELETE, err))
        return false;
    if (wr_bytes_has_prefix(name, "amq.")) {
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_EXCHANGE_DELETE,
                          "deletion of system exchange '%.*s' in vhost '%s' not allowed", (int)name.len,
                          (const char *)name.data, wr_channel_vhost_name(ch));
        return false;
    }
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_CONFIGURE, "exchange", name, WR_EXCHANGE_DELETE, err))
        return false;
    x = wr_vhost_exchange(ch->vhost, name);
    /* RabbitMQ 3.10 answers delete-ok for an exchange that does not exist. */
    if (x == NULL)
        return reply(ch, d->nowait, WR_EXCHANGE_DELETE_OK);
    /* In a cluster the apply decides if_unused: queues elsewhere have bindings too. */
    if (wr_handle_meta(ch) != NULL)
        return wr_handle_meta_propose(
            ch, wr_meta_cmd_exchange_delete(wr_channel_vhost_name(ch), name, d->if_unused),
            WR_EXCHANGE_DELETE, d->nowait, WR_BYTES_LIT(""), err);
    if (d->if_unused && wr_exchange_binding_count(x) > 0) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_EXCHANGE_DELETE,
                          "exchange '%.*s' in vhost '%s' in use", (int)name.len, (const char *)name.data,
                          wr_channel_vhost_name(ch));
        return false;
    }
    wr_vhost_exchange_delete(ch->vhost, x);
    return reply(ch, d->nowait, WR_EXCHANGE_DELETE_OK);
}

/* Cluster mode, both ends known here (for a bind): the apply decides. */
static bool propose_binding(wr_channel_t *ch, const wr_exchange_bind_t *b, uint32_t method,
                            const wr_exchange_t *src, wr_bytes_t sname, wr_bytes_t dname,
                            wr_amqp_error_t *err)
{
    bool bind = method == WR_EXCHANGE_BIND;

    if (bind && !wr_handle_exchange_check_binding(src, b->arguments, method, err))
        return false;
    return wr_handle_meta_propose(ch,
                                  wr_meta_cmd_binding(wr_channel_vhost_name(ch), bind, sname,
                                                      WR_DEST_EXCHANGE, dname, b->routing_key, b->arguments),
                                  method, b->nowait, WR_BYTES_LIT(""), err);
}

/* exchange.bind and exchange.unbind have the same fields. */
static bool bind_exchange(wr_channel_t *ch, const wr_exchange_bind_t *b, uint32_t method,
                          wr_amqp_error_t *err)
{
    uint8_t dbuf[255], sbuf[255];
    wr_bytes_t dname = wr_channel_strip_crlf(b->destination, dbuf);
    wr_bytes_t sname = wr_channel_strip_crlf(b->source, sbuf);
    wr_exchange_t *src, *dst;
    wr_dest_t d;
    int rc;

    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_WRITE, "exchange", dname, method, err))
        return false;
    if (!not_default(dname, method, err) || !not_default(sname, method, err))
        return false;
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_READ, "exchange", sname, method, err))
        return false;
    src = wr_vhost_exchange(ch->vhost, sname);
    dst = wr_vhost_exchange(ch->vhost, dname);
    if (wr_handle_meta(ch) != NULL && (method == WR_EXCHANGE_UNBIND || (src != NULL && dst != NULL)))
        return propose_binding(ch, b, method, src, sname, dname, err);
    if (method == WR_EXCHANGE_UNBIND) {
        /* RabbitMQ 3.10: unbinding what does not exist is fine. */
        if (src != NULL && dst != NULL)
            wr_vhost_unbind(ch->vhost, src, (wr_dest_t){dst, WR_DEST_EXCHANGE}, b->routing_key, b->arguments);
        return reply(ch, b->nowait, WR_EXCHANGE_UNBIND_OK);
    }
    if (src == NULL)
        return wr_channel_not_found(ch, err, method, "exchange", sname);
    if (dst == NULL)
        return wr_channel_not_found(ch, err, method, "exchange", dname);
    if (!wr_handle_exchange_check_binding(src, b->arguments, method, err))
        return false;
    d = (wr_dest_t){dst, WR_DEST_EXCHANGE};
    rc = wr_vhost_bind(ch->vhost, src, d, b->routing_key, b->arguments);
    if (rc != WR_OK && rc != WR_EEXIST)
        return out_of_memory(method, err);
    return reply(ch, b->nowait, WR_EXCHANGE_BIND_OK);
}

bool wr_handle_exchange(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err)
{
    switch (m->id) {
    case WR_EXCHANGE_DECLARE:
        return declare_exchange(ch, &m->u.exchange_declare, err);
    case WR_EXCHANGE_DELETE:
        return delete_exchange(ch, &m->u.exchange_delete, err);
    case WR_EXCHANGE_BIND:
        return bind_exchange(ch, &m->u.exchange_bind, m->id, err);
    case WR_EXCHANGE_UNBIND: {
        const wr_exchange_unbind_t *u = &m->u.exchange_unbind;
        wr_exchange_bind_t b = {u->ticket,      u->destination, u->source,
                                u->routing_key, u->nowait,      u->arguments};
        return bind_exchange(ch, &b, m->id, err);
    }
    default:
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        return false;
    }
}
