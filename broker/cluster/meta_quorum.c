/* SPDX-License-Identifier: MIT */
/*
 * Quorum queue operations in the metadata group (meta_quorum.h): the
 * record's member list changed deterministically by each command, then this
 * node's live queue brought in line: a member node runs the queue's group
 * (a node that joins opens it and waits for the leader's snapshot; one that
 * left deletes its copy), any other node a proxy to the members.
 */
#include "broker/cluster/meta_quorum.h"

#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "broker/cluster/meta_internal.h"
#include "core/status.h"
#include "protocol/constants.h"

/* ---------------------------------------------------------------- reading records */

static bool listed_in(const json_t *arr, const char *node)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), node) == 0)
            return true;
    }
    return false;
}

/* The record's members and their roles; how many (0: not a quorum queue). */
static size_t record_read(const json_t *e, const char **ms, uint8_t *role)
{
    const json_t *arr = json_object_get(e, "members");
    size_t n = 0;

    for (size_t i = 0; i < json_array_size(arr) && n < 9; i++) {
        const char *s = json_string_value(json_array_get(arr, i));

        if (s == NULL)
            continue;
        ms[n] = s;
        role[n++] = listed_in(json_object_get(e, "joining"), s)   ? WR_QUORUM_JOINING
                    : listed_in(json_object_get(e, "leaving"), s) ? WR_QUORUM_LEAVING
                                                                  : WR_QUORUM_VOTER;
    }
    return n;
}

static bool qq_fill(const char *vhost, const json_t *e, wr_meta_qq_t *out)
{
    out->vhost = vhost;
    if (!wr_meta_name_get(e, "name", &out->name, out->buf))
        return false;
    out->n = record_read(e, out->members, out->role);
    return true;
}

bool wr_meta_quorum_get(const wr_meta_t *m, const char *vhost, wr_bytes_t name, wr_meta_qq_t *out)
{
    const json_t *e = wr_meta_queue_record(m, vhost, name);

    return e != NULL && qq_fill(vhost, e, out);
}

void wr_meta_quorum_foreach(const wr_meta_t *m, void (*fn)(void *ud, const wr_meta_qq_t *q), void *ud)
{
    const char *vname, *k;
    json_t *v, *e;
    wr_meta_qq_t q;

    json_object_foreach(wr_meta_topology(m), vname, v)
    {
        json_object_foreach(json_object_get(v, "queues"), k, e)
        {
            if (qq_fill(vname, e, &q) && q.n > 0)
                fn(ud, &q);
        }
    }
}

json_t *wr_meta_cmd_quorum(const char *op, const char *vhost, wr_bytes_t name, const char *node)
{
    return wr_meta_cmd_defs(op, vhost, json_pack("{s:o,s:s}", "name", wr_meta_name_json(name), "node", node));
}

/* ---------------------------------------------------------------- the live queue */

/* A proxy goes through the voters only: a joiner's group has no leader yet, a leaver is going. */
static bool proxy_sync(wr_queue_t *q, const char *const *ms, const uint8_t *role, size_t n)
{
    const char *voters[9];
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (role[i] == WR_QUORUM_VOTER)
            voters[k++] = ms[i];
    return wr_remote_queue_set_members(q, voters, k);
}

void wr_meta_quorum_sync(const wr_meta_t *m, wr_queue_t *q, const json_t *e)
{
    const char *ms[9];
    uint8_t role[9];
    size_t n = record_read(e, ms, role);

    if (n > 0 && !(wr_quorum_queue_set_members(q, ms, role, n) && proxy_sync(q, ms, role, n)))
        wr_log_error("quorum queue '%.*s': out of memory updating its members", (int)q->name.len,
                     (const char *)q->name.data);
}

/* Consumers moving from a queue object to its successor. */
typedef struct {
    wr_consumer_t **v;
    size_t n, cap;
    bool oom;
} moving_t;

static void moving_add(void *ud, const wr_consumer_t *c)
{
    moving_t *mv = ud;

    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? 2 * mv->cap : 8;
        wr_consumer_t **v = realloc(mv->v, cap * sizeof(*v));

        if (v == NULL) {
            mv->oom = true;
            return;
        }
        mv->v = v;
        mv->cap = cap;
    }
    mv->v[mv->n++] = (wr_consumer_t *)c;
}

/*
 * This node became or stopped being a member: the queue object changes (a
 * member's queue or a proxy), and its consumers move to the new one without
 * a cancel, as RabbitMQ's consumers talk to the leader wherever they are.
 * Their unacknowledged deliveries stay settled through the old object (a
 * proxy forwards them to its home) or come back redelivered (the leader
 * sends DOWN for a removed member's consumers). One that cannot move is
 * cancelled (basic.cancel with consumer_cancel_notify).
 */
static void renew_keeping_consumers(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v, const json_t *e,
                                    wr_queue_t *old, wr_bytes_t name)
{
    moving_t mv = {0};
    wr_queue_t *q;

    wr_queue_foreach_consumer(old, moving_add, &mv);
    for (size_t i = 0; i < mv.n; i++) {
        mv.v[i]->refs++;
        wr_queue_cancel(mv.v[i]);
    }
    wr_meta_queue_renew(m, vh, v, e);
    q = wr_vhost_queue(vh, name);
    for (size_t i = 0; i < mv.n; i++) {
        if (q == NULL || wr_queue_consume(q, mv.v[i]) != WR_OK)
            mv.v[i]->ops->cancelled(mv.v[i]);
        wr_consumer_unref(mv.v[i]);
    }
    if (mv.oom)
        wr_log_error("quorum queue '%.*s': out of memory moving its consumers; some were cancelled",
                     (int)name.len, (const char *)name.data);
    free(mv.v);
}

void wr_meta_quorum_live(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v, const json_t *e)
{
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_bytes_t name;
    wr_queue_t *q;
    bool member = listed_in(json_object_get(e, "members"), m->deps.self);

    if (vh == NULL || m->quorum == NULL || !wr_meta_name_get(e, "name", &name, nbuf))
        return;
    q = wr_vhost_queue(vh, name);
    if (q == NULL)
        wr_meta_queue_renew(m, vh, v, e);
    else if (member != (q->type == &wr_quorum_queue_type))
        renew_keeping_consumers(m, vh, v, e, q, name);
    else
        wr_meta_quorum_sync(m, q, e);
}

void wr_meta_quorum_reconcile(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v)
{
    const char *k;
    json_t *e;

    json_object_foreach(json_object_get(v, "queues"), k, e)
    {
        if (json_array_size(json_object_get(e, "members")) > 0)
            wr_meta_quorum_live(m, vh, v, e);
    }
}

/* ---------------------------------------------------------------- the commands */

typedef struct {
    wr_meta_t *m;
    const char *vhost, *node;
    json_t *e; /* the record */
    wr_meta_result_t *res;
} qop_t;

/* Removes node from the record's array key (dropped when it empties). */
static void unlist(json_t *e, const char *key, const char *node)
{
    json_t *arr = json_object_get(e, key);

    for (size_t i = json_array_size(arr); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(arr, i)), node) == 0)
            json_array_remove(arr, i);
    if (arr != NULL && json_array_size(arr) == 0)
        json_object_del(e, key);
}

/* Appends node to the record's array key, made when absent; false on ENOMEM. */
static bool enlist(json_t *e, const char *key, const char *node)
{
    json_t *arr = json_object_get(e, key);

    if (arr == NULL && ((arr = json_array()) == NULL || json_object_set_new(e, key, arr) != 0))
        return false;
    return listed_in(arr, node) || json_array_append_new(arr, json_string(node)) == 0;
}

/* Moves node in members to position 0 (first) or to the end. */
static bool move(json_t *e, const char *node, bool first)
{
    json_t *ms;

    unlist(e, "members", node);
    if ((ms = json_object_get(e, "members")) == NULL)
        return enlist(e, "members", node);
    return (first ? json_array_insert_new(ms, 0, json_string(node))
                  : json_array_append_new(ms, json_string(node))) == 0;
}

static void refuse(qop_t *o, uint16_t code, const char *why)
{
    wr_amqp_error_set(&o->res->err, code, 0, "%s", why);
}

static void op_leader(qop_t *o)
{
    const json_t *ms = json_object_get(o->e, "members");

    if (!listed_in(ms, o->node) || listed_in(json_object_get(o->e, "joining"), o->node) ||
        listed_in(json_object_get(o->e, "leaving"), o->node))
        refuse(o, WR_AMQP_PRECONDITION_FAILED, "not_member");
    else if (!move(o->e, o->node, true))
        refuse(o, WR_AMQP_INTERNAL_ERROR, "out of memory");
}

static void op_add(qop_t *o)
{
    if (listed_in(json_object_get(o->e, "members"), o->node))
        return; /* RabbitMQ: idempotent */
    if (!move(o->e, o->node, false) || !enlist(o->e, "joining", o->node))
        refuse(o, WR_AMQP_INTERNAL_ERROR, "out of memory");
}

static void op_delete(qop_t *o)
{
    const char *ms[9];
    uint8_t role[9];
    size_t n = record_read(o->e, ms, role), staying = 0;

    if (!listed_in(json_object_get(o->e, "members"), o->node))
        return; /* RabbitMQ: idempotent */
    for (size_t i = 0; i < n; i++)
        staying += role[i] != WR_QUORUM_LEAVING && strcmp(ms[i], o->node) != 0;
    if (staying == 0) {
        refuse(o, WR_AMQP_PRECONDITION_FAILED, "last_node");
        return;
    }
    unlist(o->e, "joining", o->node);
    if (!move(o->e, o->node, false) || !enlist(o->e, "leaving", o->node))
        refuse(o, WR_AMQP_INTERNAL_ERROR, "out of memory");
}

static void op_done(qop_t *o)
{
    if (listed_in(json_object_get(o->e, "joining"), o->node)) {
        unlist(o->e, "joining", o->node);
    } else if (listed_in(json_object_get(o->e, "leaving"), o->node)) {
        unlist(o->e, "leaving", o->node);
        unlist(o->e, "members", o->node);
    }
}

static const struct {
    const char *op;
    void (*fn)(qop_t *o);
} qops[] = {
    {"quorum.leader", op_leader},
    {"quorum.member.add", op_add},
    {"quorum.member.delete", op_delete},
    {"quorum.member.done", op_done},
};

/* The record to change; NULL with the refusal set. */
static json_t *target(qop_t *o, const json_t *entry)
{
    const json_t *v = json_object_get(wr_meta_topology(o->m), o->vhost);
    char *key = wr_meta_key(json_object_get(entry, "name"));
    json_t *e = key != NULL ? json_object_get(json_object_get(v, "queues"), key) : NULL;
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_bytes_t name;

    free(key);
    if (e == NULL && wr_meta_name_get(entry, "name", &name, nbuf))
        wr_amqp_error_set(&o->res->err, WR_AMQP_NOT_FOUND, 0, "no queue '%.*s' in vhost '%s'", (int)name.len,
                          (const char *)name.data, o->vhost);
    else if (e != NULL && json_array_size(json_object_get(e, "members")) == 0)
        refuse(o, WR_AMQP_PRECONDITION_FAILED, "classic_queue_not_supported");
    else if (e != NULL)
        return e;
    return NULL;
}

bool wr_meta_quorum_apply(wr_meta_t *m, const char *op, const json_t *cmd, wr_meta_result_t *res)
{
    const json_t *entry = json_object_get(cmd, "entry");
    qop_t o = {m, json_string_value(json_object_get(cmd, "vhost")),
               json_string_value(json_object_get(entry, "node")), NULL, res};
    size_t i;

    for (i = 0; i < sizeof(qops) / sizeof(qops[0]) && strcmp(qops[i].op, op) != 0; i++)
        ;
    if (i == sizeof(qops) / sizeof(qops[0]))
        return false;
    if (o.node == NULL || o.vhost == NULL)
        wr_amqp_error_set(&res->err, WR_AMQP_INTERNAL_ERROR, 0,
                          "malformed metadata command: %s: bad 'node' or 'vhost'", op);
    else if ((o.e = target(&o, entry)) != NULL)
        qops[i].fn(&o);
    if (o.e != NULL && res->err.code == 0)
        wr_meta_quorum_live(m, wr_map_get(m->deps.vhosts, wr_bytes_str(o.vhost)),
                            json_object_get(wr_meta_topology(m), o.vhost), o.e);
    return true;
}

static void on_reported(void *ud, const wr_meta_result_t *r)
{
    if (r->err.code != 0)
        wr_log_warn("cluster: a quorum queue's member change was not recorded: %s", r->err.text);
}

void wr_meta_quorum_report(void *ud, const char *vhost, wr_bytes_t name, const char *node)
{
    wr_meta_t *m = ud;

    if (wr_meta_submit(m, wr_meta_cmd_quorum("quorum.member.done", vhost, name, node), on_reported, NULL) ==
        NULL)
        wr_log_error("cluster: out of memory recording a quorum queue's member change");
}

static void on_expired_deleted(void *ud, const wr_meta_result_t *r)
{
    if (r->err.code != 0)
        wr_log_warn("cluster: the deletion of a quorum queue past its x-expires was not committed: %s",
                    r->err.text);
}

void wr_meta_quorum_expired(void *ud, const char *vhost, wr_bytes_t name)
{
    wr_meta_t *m = ud;

    if (wr_meta_submit(m, wr_meta_cmd_queue_delete(vhost, name), on_expired_deleted, NULL) == NULL)
        wr_log_error("cluster: out of memory proposing the deletion of a quorum queue past its x-expires");
}
