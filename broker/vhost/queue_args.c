/* SPDX-License-Identifier: MIT */
/*
 * RabbitMQ's rules for a queue declaration's name and x- arguments, and the
 * redeclaration equivalence (shared with exchanges), with its texts: what
 * rabbit_amqqueue and rabbit_misc check and print. The x- rules of each
 * queue type are the type's own (wr_queue_type_t); this file picks the type
 * by x-queue-type and calls them.
 */
#include "broker/vhost/queue_args.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "protocol/methods.h"
#include "protocol/table.h"

const wr_queue_type_t *wr_queue_args_type(wr_bytes_t args)
{
    const wr_queue_type_t *t;
    wr_value_t v;

    if (wr_table_get(args, "x-queue-type", &v) && v.type == 'S' && (t = wr_queue_type_find(v.v.s)) != NULL)
        return t;
    /* Absent, not a string, or a type warren has not got (quorum, stream):
     * the classic type's rules judge it, as RabbitMQ's classic queue would
     * run it. */
    return wr_queue_type_default();
}

bool wr_queue_args_validate(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err)
{
    return wr_queue_args_type(args)->validate_args(vhost, name, args, err);
}

bool wr_queue_args_check_dlx_type(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err)
{
    wr_value_t v;

    if (!wr_table_get(args, "x-dead-letter-exchange", &v) || v.type == 'S')
        return true;
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_QUEUE_DECLARE,
                      "invalid type '%s' for arg 'x-dead-letter-exchange' in queue '%.*s' in vhost '%s'",
                      wr_value_type_name(v.type), (int)name.len, (const char *)name.data, vhost);
    return false;
}

/* ---------------------------------------------------------------- equivalence */

bool wr_queue_args_equiv_flag(const char *vhost, wr_amqp_error_t *err, uint32_t method, const char *kind,
                              wr_bytes_t name, const char *field, bool cur, bool req)
{
    if (cur == req)
        return true;
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method,
                      "inequivalent arg '%s' for %s '%.*s' in vhost '%s': received '%s' but current is '%s'",
                      field, kind, (int)name.len, (const char *)name.data, vhost, req ? "true" : "false",
                      cur ? "true" : "false");
    return false;
}

/* RabbitMQ's rabbit_misc:type_class: integer widths (and decimal) are one
 * class, float and double another, every other type its own. */
static int type_class(uint8_t tag)
{
    if (wr_tag_is_int(tag) || tag == 'D')
        return 'i';
    return tag == 'f' || tag == 'd' ? 'f' : tag;
}

/* Erlang's == on the two values, given they are in the same class. */
static bool same_value(const wr_value_t *a, const wr_value_t *b)
{
    int64_t x, y;

    if (wr_value_int(a, &x) && wr_value_int(b, &y))
        return x == y;
    if (type_class(a->type) == 'f') {
        double da = a->type == 'f' ? a->v.f : a->v.d;
        double db = b->type == 'f' ? b->v.f : b->v.d;
        return da == db;
    }
    return wr_value_eq(a, b);
}

/* RabbitMQ's rabbit_misc:val/1 for a {Type, Value} pair or an absent one. */
static void fmt_typed(char *out, size_t n, const wr_value_t *v, bool present)
{
    char val[128];

    if (!present) {
        snprintf(out, n, "none");
        return;
    }
    wr_value_format(v, val, sizeof(val));
    snprintf(out, n, "the value '%s' of type '%s'", val, wr_value_type_name(v->type));
}

static bool is_classic_type(const wr_value_t *v)
{
    return v->type == 'S' && wr_bytes_eq_str(v->v.s, "classic");
}

bool wr_queue_args_equiv_arg(const char *vhost, wr_amqp_error_t *err, uint32_t method, const char *kind,
                             wr_bytes_t name, wr_bytes_t cur_args, wr_bytes_t req_args, const char *key)
{
    wr_value_t cur, req;
    bool has_cur = wr_table_get(cur_args, key, &cur);
    bool has_req = wr_table_get(req_args, key, &req);
    char cur_s[160], req_s[160];

    if (!has_cur && !has_req)
        return true;
    if (has_cur && has_req) {
        if (type_class(cur.type) == type_class(req.type) && same_value(&cur, &req))
            return true;
        /* Both present: RabbitMQ compares and prints the bare values. */
        wr_value_format(&cur, cur_s + 1, sizeof(cur_s) - 2);
        wr_value_format(&req, req_s + 1, sizeof(req_s) - 2);
        cur_s[0] = req_s[0] = '\'';
        strcat(cur_s, "'");
        strcat(req_s, "'");
    } else {
        /* A classic queue may or may not carry x-queue-type = classic. */
        if (strcmp(key, "x-queue-type") == 0 && is_classic_type(has_cur ? &cur : &req))
            return true;
        fmt_typed(cur_s, sizeof(cur_s), &cur, has_cur);
        fmt_typed(req_s, sizeof(req_s), &req, has_req);
    }
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method,
                      "inequivalent arg '%s' for %s '%.*s' in vhost '%s': received %s but current is %s", key,
                      kind, (int)name.len, (const char *)name.data, vhost, req_s, cur_s);
    return false;
}

bool wr_queue_args_check_name(wr_bytes_t name, wr_amqp_error_t *err)
{
    if (!wr_bytes_has_prefix(name, "amq."))
        return true;
    wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_QUEUE_DECLARE,
                      "queue name '%.*s' contains reserved prefix 'amq.*'", (int)name.len,
                      (const char *)name.data);
    return false;
}

bool wr_queue_args_check_equivalent(const char *vhost, wr_bytes_t name, const wr_queue_args_decl_t *cur,
                                    const wr_queue_args_decl_t *req, wr_amqp_error_t *err)
{
    if (!wr_queue_args_equiv_flag(vhost, err, WR_QUEUE_DECLARE, "queue", name, "durable", cur->durable,
                                  req->durable) ||
        !wr_queue_args_equiv_flag(vhost, err, WR_QUEUE_DECLARE, "queue", name, "auto_delete",
                                  cur->auto_delete, req->auto_delete))
        return false;
    for (const char *const *key = wr_queue_args_type(cur->args)->equiv_args; *key != NULL; key++) {
        if (!wr_queue_args_equiv_arg(vhost, err, WR_QUEUE_DECLARE, "queue", name, cur->args, req->args, *key))
            return false;
    }
    return true;
}
