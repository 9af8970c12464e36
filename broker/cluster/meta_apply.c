/* SPDX-License-Identifier: MIT */
/*
 * The metadata group's commands applied, deterministically: each op checks
 * and changes the replicated state (meta_internal.h) first, computing the
 * result from it alone, then makes the same change to this node's live
 * vhosts through the functions the single-node path uses. A queue lives only
 * on its home node; the other nodes keep its record (and its bindings) in the
 * state. RabbitMQ's texts, as the single-node handlers give them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/cluster/meta_internal.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "protocol/methods.h"

/* A durable queue's log is named by the index of the command that declared
 * it, in a range the node's own numbering never reaches, so a replay of the
 * same command on restart finds the same log. */
#define LOG_FROM_INDEX (UINT64_C(1) << 63)

typedef struct {
    wr_meta_t *m;
    uint64_t index;
    const char *op;
    const char *vname;
    wr_vhost_t *vh; /* NULL: the vhost is not configured on this node */
    json_t *v;      /* its state */
    const json_t *entry;
    wr_meta_result_t *res;
} apply_t;

char *wr_meta_key(const json_t *name)
{
    return json_dumps(name, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
}

static json_t *section(const apply_t *a, const char *name)
{
    return json_object_get(a->v, name);
}

static bool flag(const json_t *e, const char *key)
{
    return json_is_true(json_object_get(e, key));
}

static void malformed(apply_t *a, const char *field)
{
    wr_amqp_error_set(&a->res->err, WR_AMQP_INTERNAL_ERROR, 0, "malformed metadata command: %s: bad '%s'",
                      a->op, field);
}

static void out_of_memory(apply_t *a)
{
    wr_amqp_error_set(&a->res->err, WR_AMQP_INTERNAL_ERROR, 0, "out of memory");
}

/* Sets key in the section to e (takes it); false (ENOMEM noted) on failure. */
static bool put(apply_t *a, const char *sect, const char *key, json_t *e)
{
    if (e != NULL && json_object_set_new(section(a, sect), key, e) == 0)
        return true;
    out_of_memory(a);
    return false;
}

static void not_found(apply_t *a, const char *kind, wr_bytes_t name)
{
    wr_amqp_error_set(&a->res->err, WR_AMQP_NOT_FOUND, 0, "no %s '%.*s' in vhost '%s'", kind, (int)name.len,
                      (const char *)name.data, a->vname);
}

/* ---------------------------------------------------------------- live objects */

static bool dest_is_queue(const json_t *b);

/* The options an exchange entry describes; *abuf holds the arguments. */
static bool exchange_opts(const json_t *e, wr_exchange_opts_t *o, uint8_t **abuf)
{
    const char *type = json_string_value(json_object_get(e, "type"));

    *o = (wr_exchange_opts_t){0};
    if (!wr_meta_args_get(e, &o->args, abuf) || type == NULL)
        return false;
    o->type = wr_router_type_find(wr_bytes_str(type));
    o->durable = flag(e, "durable");
    o->auto_delete = flag(e, "auto_delete");
    o->internal = flag(e, "internal");
    return o->type != NULL;
}

static void live_exchange_create(wr_vhost_t *vh, const json_t *e)
{
    uint8_t nbuf[WR_META_NAME_MAX], *abuf = NULL;
    wr_exchange_opts_t o;
    wr_exchange_t *x;
    wr_bytes_t name;

    if (vh != NULL && wr_meta_name_get(e, "name", &name, nbuf) && exchange_opts(e, &o, &abuf) &&
        wr_vhost_exchange(vh, name) == NULL && wr_vhost_exchange_add(vh, name, &o, &x) != WR_OK)
        wr_log_error("vhost '%s': out of memory creating exchange '%.*s'", wr_vhost_name(vh), (int)name.len,
                     (const char *)name.data);
    free(abuf);
}

/* A proxy (cluster/remote.h) for a queue whose home is another node. */
static bool live_proxy_create(const wr_meta_t *m, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                              const char *home)
{
    wr_queue_t *q = wr_remote_queue_new(m->remote, vh, name, o, home);

    if (q == NULL || wr_vhost_queue_attach(vh, q) != WR_OK) {
        wr_queue_unref(q);
        wr_log_error("vhost '%s': out of memory making the proxy of queue '%.*s' (home %s)",
                     wr_vhost_name(vh), (int)name.len, (const char *)name.data, home);
        return false;
    }
    return true;
}

/* A quorum queue's member list in its record, or 0 members (not a quorum queue here). */
static size_t record_members(const json_t *e, const char **out, size_t room)
{
    const json_t *ms = json_object_get(e, "members");
    size_t n = 0;

    for (size_t i = 0; i < json_array_size(ms) && n < room; i++)
        if (json_is_string(json_array_get(ms, i)))
            out[n++] = json_string_value(json_array_get(ms, i));
    return n;
}

static bool member(const char *const *ms, size_t n, const char *self)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ms[i], self) == 0)
            return true;
    return false;
}

/* A quorum queue: its group on a member, a proxy to its first member elsewhere. */
static void live_quorum_create(const wr_meta_t *m, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                               const json_t *e, const char *const *ms, size_t n)
{
    uint64_t group = (uint64_t)json_integer_value(json_object_get(e, "group"));
    wr_queue_t *q;

    if (!member(ms, n, m->deps.self)) {
        if (m->remote != NULL && live_proxy_create(m, vh, name, o, ms[0]))
            wr_meta_quorum_sync(m, wr_vhost_queue(vh, name), e);
        return;
    }
    q = wr_quorum_queue_new(m->quorum, vh, name, o, group, ms, n);
    if (q == NULL || wr_vhost_queue_attach(vh, q) != WR_OK) {
        wr_queue_unref(q);
        wr_log_error("vhost '%s': out of memory making quorum queue '%.*s'", wr_vhost_name(vh), (int)name.len,
                     (const char *)name.data);
        return;
    }
    wr_meta_quorum_sync(m, q, e);
}

static void live_queue_create(const wr_meta_t *m, wr_vhost_t *vh, const json_t *e)
{
    const char *ms[9];
    size_t nms = record_members(e, ms, 9);
    const char *log = json_string_value(json_object_get(e, "log"));
    const char *home = json_string_value(json_object_get(e, "home"));
    uint8_t nbuf[WR_META_NAME_MAX], *abuf = NULL;
    wr_queue_opts_t o = {0};
    wr_queue_t *q;
    wr_bytes_t name;
    char err[512];
    int rc;

    if (vh == NULL || home == NULL || !wr_meta_name_get(e, "name", &name, nbuf) ||
        !wr_meta_args_get(e, &o.args, &abuf) || wr_vhost_queue(vh, name) != NULL)
        goto out;
    o.durable = flag(e, "durable");
    o.auto_delete = flag(e, "auto_delete");
    if (nms > 0 && m->quorum != NULL) {
        live_quorum_create(m, vh, name, &o, e, ms, nms);
        goto out;
    }
    if (strcmp(home, m->deps.self) != 0) {
        if (m->remote != NULL)
            live_proxy_create(m, vh, name, &o, home);
        goto out;
    }
    rc = log != NULL ? wr_vhost_queue_recover(vh, name, &o, log, &q, err, sizeof(err))
                     : wr_vhost_queue_add(vh, name, &o, &q);
    if (rc != WR_OK)
        wr_log_error("vhost '%s': queue '%.*s' not created on its home node: %s", wr_vhost_name(vh),
                     (int)name.len, (const char *)name.data, log != NULL ? err : "out of memory");
out:
    free(abuf);
}

/* The live ends of a binding entry; false when either is not here. */
static bool live_ends(wr_vhost_t *vh, const json_t *b, wr_exchange_t **x, wr_dest_t *d, uint8_t *sbuf,
                      uint8_t *dbuf)
{
    wr_bytes_t source, dest;
    bool to_queue = dest_is_queue(b);

    if (vh == NULL || !wr_meta_name_get(b, "source", &source, sbuf) ||
        !wr_meta_name_get(b, "destination", &dest, dbuf))
        return false;
    *x = wr_vhost_exchange(vh, source);
    d->kind = to_queue ? WR_DEST_QUEUE : WR_DEST_EXCHANGE;
    d->ptr = to_queue ? (void *)wr_vhost_queue(vh, dest) : (void *)wr_vhost_exchange(vh, dest);
    return *x != NULL && d->ptr != NULL;
}

static void live_binding(wr_vhost_t *vh, const json_t *b, bool bind)
{
    uint8_t sbuf[WR_META_NAME_MAX], dbuf[WR_META_NAME_MAX], kbuf[WR_META_NAME_MAX], *abuf = NULL;
    wr_exchange_t *x;
    wr_dest_t d;
    wr_bytes_t key, args;

    if (live_ends(vh, b, &x, &d, sbuf, dbuf) && wr_meta_name_get(b, "routing_key", &key, kbuf) &&
        wr_meta_args_get(b, &args, &abuf)) {
        if (!bind)
            wr_vhost_unbind(vh, x, d, key, args);
        else if (!wr_exchange_has_binding(x, d, key, args) && wr_vhost_bind(vh, x, d, key, args) == WR_ENOMEM)
            wr_log_error("vhost '%s': out of memory adding a binding", wr_vhost_name(vh));
    }
    free(abuf);
}

/* ---------------------------------------------------------------- exchanges */

/* An exchange the state holds, or a standard one ("", amq.*) every vhost has. */
static bool exchange_known(const apply_t *a, const json_t *name, wr_bytes_t raw)
{
    char *key = wr_meta_key(name);
    bool known = key != NULL && json_object_get(section(a, "exchanges"), key) != NULL;

    free(key);
    if (known || a->vh == NULL)
        return known;
    return (raw.len == 0 || wr_bytes_has_prefix(raw, "amq.")) && wr_vhost_exchange(a->vh, raw) != NULL;
}

static size_t bindings_from(const apply_t *a, const json_t *name)
{
    const char *k;
    json_t *b;
    size_t n = 0;

    json_object_foreach(section(a, "bindings"), k, b)
    {
        n += json_equal(json_object_get(b, "source"), name);
    }
    return n;
}

static void exchange_remove(apply_t *a, const json_t *name);

/* RabbitMQ deletes an auto-delete exchange once its last binding as a source goes. */
static void lost_source(apply_t *a, const json_t *name)
{
    char *key = wr_meta_key(name);
    const json_t *x = key != NULL ? json_object_get(section(a, "exchanges"), key) : NULL;

    free(key);
    if (x != NULL && flag(x, "auto_delete") && bindings_from(a, name) == 0)
        exchange_remove(a, name);
}

/* Drops the bindings match() selects, then the sources they leave unused. */
static void bindings_drop(apply_t *a, bool (*match)(const json_t *b, const json_t *name), const json_t *name)
{
    json_t *bindings = section(a, "bindings"), *sources = json_array(), *b, *src;
    const char *k;
    void *tmp;
    size_t i;

    json_object_foreach_safe(bindings, tmp, k, b)
    {
        if (!match(b, name))
            continue;
        json_array_append(sources, json_object_get(b, "source"));
        json_object_del(bindings, k);
    }
    json_array_foreach(sources, i, src)
    {
        lost_source(a, src);
    }
    json_decref(sources);
}

/* Whether binding b's destination is a queue (else an exchange). */
static bool dest_is_queue(const json_t *b)
{
    const char *type = json_string_value(json_object_get(b, "destination_type"));

    return type != NULL && strcmp(type, "queue") == 0;
}

static bool touches_exchange(const json_t *b, const json_t *name)
{
    return json_equal(json_object_get(b, "source"), name) ||
           (!dest_is_queue(b) && json_equal(json_object_get(b, "destination"), name));
}

static bool to_queue(const json_t *b, const json_t *name)
{
    return dest_is_queue(b) && json_equal(json_object_get(b, "destination"), name);
}

/* Deletes a state exchange, its bindings and (cascading) unused auto-delete
 * sources, and the live exchange. name is kept alive across the cascade. */
static void exchange_remove(apply_t *a, const json_t *name)
{
    json_t *held = json_incref((json_t *)name);
    char *key = wr_meta_key(held);
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_exchange_t *x;
    wr_bytes_t raw;

    if (key != NULL)
        json_object_del(section(a, "exchanges"), key);
    free(key);
    bindings_drop(a, touches_exchange, held);
    if (a->vh != NULL && wr_meta_name_decode(held, &raw, nbuf) && (x = wr_vhost_exchange(a->vh, raw)) != NULL)
        wr_vhost_exchange_delete(a->vh, x);
    json_decref(held);
}

static void exchange_declare(apply_t *a)
{
    uint8_t nbuf[WR_META_NAME_MAX], *abuf = NULL, *cbuf = NULL;
    const json_t *name = json_object_get(a->entry, "name"), *cur;
    wr_exchange_opts_t o, co;
    wr_bytes_t raw;
    char *key = NULL;

    if (!wr_meta_name_decode(name, &raw, nbuf) || !exchange_opts(a->entry, &o, &abuf)) {
        malformed(a, "entry");
        goto out;
    }
    if ((key = wr_meta_key(name)) == NULL) {
        out_of_memory(a);
        goto out;
    }
    cur = json_object_get(section(a, "exchanges"), key);
    if (cur != NULL) {
        if (exchange_opts(cur, &co, &cbuf))
            wr_meta_exchange_equivalent(a->vname, raw, &co, &o, &a->res->err);
        goto out;
    }
    if (put(a, "exchanges", key, json_incref((json_t *)a->entry)))
        live_exchange_create(a->vh, a->entry);
out:
    free(key);
    free(abuf);
    free(cbuf);
}

static void exchange_delete(apply_t *a)
{
    const json_t *name = json_object_get(a->entry, "name");
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_bytes_t raw;
    char *key;
    bool present;

    if (!wr_meta_name_decode(name, &raw, nbuf)) {
        malformed(a, "entry");
        return;
    }
    key = wr_meta_key(name);
    present = key != NULL && json_object_get(section(a, "exchanges"), key) != NULL;
    free(key);
    /* RabbitMQ 3.10 answers delete-ok for an exchange that does not exist. */
    if (!present)
        return;
    if (flag(a->entry, "if_unused") && bindings_from(a, name) > 0) {
        wr_amqp_error_set(&a->res->err, WR_AMQP_PRECONDITION_FAILED, 0,
                          "exchange '%.*s' in vhost '%s' in use", (int)raw.len, (const char *)raw.data,
                          a->vname);
        return;
    }
    exchange_remove(a, name);
}

/* ---------------------------------------------------------------- queues */

static bool queue_decl(const json_t *e, wr_queue_args_decl_t *d, uint8_t **abuf)
{
    d->durable = flag(e, "durable");
    d->auto_delete = flag(e, "auto_delete");
    return wr_meta_args_get(e, &d->args, abuf);
}

bool wr_meta_queue_equivalent(const wr_meta_t *m, const char *vhost, wr_bytes_t name,
                              const wr_queue_args_decl_t *req, wr_amqp_error_t *err)
{
    const json_t *e = wr_meta_queue_record(m, vhost, name);
    wr_queue_args_decl_t cur;
    uint8_t *abuf = NULL;
    bool ok = false;

    if (e == NULL || !queue_decl(e, &cur, &abuf))
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, 0, "out of memory");
    else
        ok = wr_queue_args_check_equivalent(vhost, name, &cur, req, err);
    free(abuf);
    return ok;
}

/* A quorum queue's record: the members its declaring node placed (meta.c),
 * or that node alone in a command without them, and its Raft group (from
 * the index: the same on every node). */
static bool quorum_fields(const apply_t *a, json_t *e)
{
    json_t *ms = json_object_get(e, "members");

    if (json_array_size(ms) == 0 &&
        json_object_set_new(e, "members", json_pack("[O]", json_object_get(e, "home"))) != 0)
        return false;
    return json_object_set_new(e, "group", json_integer((json_int_t)(WR_QUORUM_GROUP_BASE + a->index))) == 0;
}

static json_t *queue_entry(const apply_t *a, bool durable, wr_bytes_t args)
{
    json_t *e = json_deep_copy(a->entry);
    char log[32];

    if (e != NULL && a->m->quorum != NULL && wr_quorum_args_want(args)) {
        if (!quorum_fields(a, e)) {
            json_decref(e);
            return NULL;
        }
        return e; /* its Raft log is its store */
    }
    if (e == NULL || !durable)
        return e;
    snprintf(log, sizeof(log), "q%016" PRIx64, LOG_FROM_INDEX | a->index);
    if (json_object_set_new(e, "log", json_string(log)) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static void queue_declare(apply_t *a)
{
    const json_t *name = json_object_get(a->entry, "name");
    uint8_t nbuf[WR_META_NAME_MAX], *abuf = NULL;
    wr_queue_args_decl_t d;
    wr_bytes_t raw;
    json_t *e;
    char *key = NULL;

    if (!wr_meta_name_decode(name, &raw, nbuf) || !queue_decl(a->entry, &d, &abuf) ||
        !json_is_string(json_object_get(a->entry, "home"))) {
        malformed(a, "entry");
        goto out;
    }
    if ((key = wr_meta_key(name)) == NULL) {
        out_of_memory(a);
        goto out;
    }
    if (json_object_get(section(a, "queues"), key) != NULL) {
        wr_meta_queue_equivalent(a->m, a->vname, raw, &d, &a->res->err);
        goto out;
    }
    e = queue_entry(a, d.durable, d.args);
    if (put(a, "queues", key, e))
        live_queue_create(a->m, a->vh, e);
out:
    free(key);
    free(abuf);
}

static void queue_delete(apply_t *a)
{
    const json_t *name = json_object_get(a->entry, "name");
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_bytes_t raw;
    wr_queue_t *q;
    char *key;

    if (!wr_meta_name_decode(name, &raw, nbuf)) {
        malformed(a, "entry");
        return;
    }
    key = wr_meta_key(name);
    if (key == NULL || json_object_get(section(a, "queues"), key) == NULL) {
        free(key);
        return; /* RabbitMQ 3.10 answers delete-ok (0 messages) for a missing queue */
    }
    bindings_drop(a, to_queue, name);
    /* The record goes first: the vhost's queue_deleted hook then knows the
     * deletion is the group's own (wr_meta_queue_gone). */
    json_object_del(section(a, "queues"), key);
    free(key);
    q = a->vh != NULL ? wr_vhost_queue(a->vh, raw) : NULL;
    if (q != NULL && !wr_queue_opts(q)->exclusive)
        a->res->messages = (uint32_t)wr_vhost_queue_delete(a->vh, q);
}

/* ---------------------------------------------------------------- bindings */

/* The binding's key; NULL (noted) when the entry is malformed or on ENOMEM. */
static char *binding_key(apply_t *a, bool *to_q)
{
    const json_t *e = a->entry;
    const char *type = json_string_value(json_object_get(e, "destination_type"));
    uint8_t buf[WR_META_NAME_MAX], *abuf = NULL;
    wr_bytes_t b;
    json_t *id;
    char *key;
    bool ok = type != NULL && (strcmp(type, "queue") == 0 || strcmp(type, "exchange") == 0) &&
              wr_meta_name_get(e, "source", &b, buf) && wr_meta_name_get(e, "destination", &b, buf) &&
              wr_meta_name_get(e, "routing_key", &b, buf) && wr_meta_args_get(e, &b, &abuf);

    free(abuf);
    if (!ok) {
        malformed(a, "entry");
        return NULL;
    }
    *to_q = strcmp(type, "queue") == 0;
    id = json_pack("[O,s,O,O,O]", json_object_get(e, "source"), type, json_object_get(e, "destination"),
                   json_object_get(e, "routing_key"), json_object_get(e, "arguments"));
    key = id != NULL ? json_dumps(id, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(id);
    if (key == NULL)
        out_of_memory(a);
    return key;
}

/* Both ends exist (a 404 naming the first missing one otherwise). */
static bool ends_known(apply_t *a, bool to_q)
{
    const json_t *src = json_object_get(a->entry, "source"), *dst = json_object_get(a->entry, "destination");
    uint8_t sbuf[WR_META_NAME_MAX], dbuf[WR_META_NAME_MAX];
    wr_bytes_t s, d;
    char *key;
    bool known;

    wr_meta_name_decode(src, &s, sbuf);
    wr_meta_name_decode(dst, &d, dbuf);
    if (!exchange_known(a, src, s)) {
        not_found(a, "exchange", s);
        return false;
    }
    if (!to_q)
        known = exchange_known(a, dst, d);
    else {
        key = wr_meta_key(dst);
        known = key != NULL && json_object_get(section(a, "queues"), key) != NULL;
        free(key);
    }
    if (!known)
        not_found(a, to_q ? "queue" : "exchange", d);
    return known;
}

static void bind(apply_t *a)
{
    bool to_q;
    char *key = binding_key(a, &to_q);

    if (key == NULL)
        return;
    if (ends_known(a, to_q) && json_object_get(section(a, "bindings"), key) == NULL &&
        put(a, "bindings", key, json_incref((json_t *)a->entry)))
        live_binding(a->vh, a->entry, true);
    free(key);
}

static void unbind(apply_t *a)
{
    bool to_q;
    char *key = binding_key(a, &to_q);
    json_t *b = key != NULL ? json_object_get(section(a, "bindings"), key) : NULL;

    /* RabbitMQ 3.10: unbinding what does not exist is fine. */
    if (b != NULL) {
        json_incref(b);
        json_object_del(section(a, "bindings"), key);
        live_binding(a->vh, b, false);
        lost_source(a, json_object_get(b, "source"));
        json_decref(b);
    }
    free(key);
}

/* ---------------------------------------------------------------- commands */

static const struct {
    const char *op;
    void (*fn)(apply_t *a);
} ops[] = {
    {"exchange.declare", exchange_declare},
    {"exchange.delete", exchange_delete},
    {"queue.declare", queue_declare},
    {"queue.delete", queue_delete},
    {"bind", bind},
    {"unbind", unbind},
};

/* The vhost's state, created empty; NULL on ENOMEM. */
static json_t *vhost_state(wr_meta_t *m, const char *name)
{
    json_t *v = json_object_get(wr_meta_topology(m), name);

    if (v != NULL)
        return v;
    v = json_pack("{s:{},s:{},s:{}}", "exchanges", "queues", "bindings");
    if (v == NULL || json_object_set_new(wr_meta_topology(m), name, v) != 0)
        return NULL;
    return v;
}

void wr_meta_apply_cmd(wr_meta_t *m, uint64_t index, const json_t *cmd, wr_meta_result_t *res)
{
    apply_t a = {m,
                 index,
                 json_string_value(json_object_get(cmd, "op")),
                 json_string_value(json_object_get(cmd, "vhost")),
                 NULL,
                 NULL,
                 json_object_get(cmd, "entry"),
                 res};

    if (a.op == NULL || a.vname == NULL || !json_is_object(a.entry)) {
        wr_amqp_error_set(&res->err, WR_AMQP_INTERNAL_ERROR, 0,
                          "malformed metadata command: it needs 'vhost', 'op' and an object 'entry'");
        return;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].op, a.op) != 0)
            continue;
        if (!wr_meta_vhost_known(m, a.vname)) {
            wr_amqp_error_set(&res->err, WR_AMQP_NOT_FOUND, 0, "no vhost '%.200s'", a.vname);
            return;
        }
        if ((a.v = vhost_state(m, a.vname)) == NULL) {
            out_of_memory(&a);
            return;
        }
        a.vh = wr_map_get(m->deps.vhosts, wr_bytes_str(a.vname));
        ops[i].fn(&a);
        /* An empty vhost is not listed: the state stays canonical. */
        if (json_object_size(section(&a, "exchanges")) + json_object_size(section(&a, "queues")) +
                json_object_size(section(&a, "bindings")) ==
            0)
            json_object_del(wr_meta_topology(m), a.vname);
        return;
    }
    if (wr_meta_defs_apply(m, a.op, cmd, res) || wr_meta_quorum_apply(m, a.op, cmd, res))
        return;
    wr_amqp_error_set(&res->err, WR_AMQP_INTERNAL_ERROR, 0, "malformed metadata command: unknown op '%.255s'",
                      a.op);
}

bool wr_meta_exchange_equivalent(const char *vhost, wr_bytes_t name, const wr_exchange_opts_t *cur,
                                 const wr_exchange_opts_t *req, wr_amqp_error_t *err)
{
    if (cur->type != req->type) {
        wr_amqp_error_set(
            err, WR_AMQP_PRECONDITION_FAILED, WR_EXCHANGE_DECLARE,
            "inequivalent arg 'type' for exchange '%.*s' in vhost '%s': received '%s' but current is '%s'",
            (int)name.len, (const char *)name.data, vhost, wr_router_type_name(req->type),
            wr_router_type_name(cur->type));
        return false;
    }
    return wr_queue_args_equiv_flag(vhost, err, WR_EXCHANGE_DECLARE, "exchange", name, "durable",
                                    cur->durable, req->durable) &&
           wr_queue_args_equiv_flag(vhost, err, WR_EXCHANGE_DECLARE, "exchange", name, "auto_delete",
                                    cur->auto_delete, req->auto_delete) &&
           wr_queue_args_equiv_flag(vhost, err, WR_EXCHANGE_DECLARE, "exchange", name, "internal",
                                    cur->internal, req->internal) &&
           wr_queue_args_equiv_arg(vhost, err, WR_EXCHANGE_DECLARE, "exchange", name, cur->args, req->args,
                                   "alternate-exchange");
}

/* ---------------------------------------------------------------- reconcile */

/* Whether the state v lists name in section sect. */
static bool listed(const json_t *v, const char *sect, wr_bytes_t name)
{
    json_t *n = wr_meta_name_json(name);
    char *key = n != NULL ? wr_meta_key(n) : NULL;
    bool found = key == NULL || json_object_get(json_object_get(v, sect), key) != NULL;

    free(key);
    json_decref(n);
    return found; /* out of memory: keep it */
}

/* Live exchanges and shared queues the state v does not list, collected
 * first: deleting changes the name tables being walked. */
static void live_extras(wr_vhost_t *vh, const json_t *v, const wr_meta_t *m, wr_exchange_t ***xs, size_t *nx,
                        wr_queue_t ***qs, size_t *nq)
{
    const wr_map_t *xmap = wr_vhost_exchanges(vh), *qmap = wr_vhost_queues(vh);
    wr_map_iter_t it = {0};
    wr_bytes_t name;
    void *val;

    *xs = calloc(wr_map_count(xmap) + 1, sizeof(**xs));
    *qs = calloc(wr_map_count(qmap) + 1, sizeof(**qs));
    *nx = *nq = 0;
    while (*xs != NULL && wr_map_next(xmap, &it, &name, &val))
        if (name.len > 0 && !wr_bytes_has_prefix(name, "amq.") && !listed(v, "exchanges", name))
            (*xs)[(*nx)++] = wr_exchange_ref(val);
    it = (wr_map_iter_t){0};
    while (*qs != NULL && wr_map_next(qmap, &it, &name, &val)) {
        const char *home = NULL, *proxy_of = wr_remote_queue_home(val);
        bool known = wr_meta_queue_find(m, wr_vhost_name(vh), name, &home);
        /* Kept: the home's queue, or a proxy for the same home. */
        bool mine = known && (((wr_queue_t *)val)->type == &wr_quorum_queue_type ||
                              strcmp(home, proxy_of != NULL ? proxy_of : m->deps.self) == 0);
        if (!wr_queue_opts(val)->exclusive && !mine)
            (*qs)[(*nq)++] = wr_queue_ref(val);
    }
}

static void reconcile_vhost(wr_meta_t *m, wr_vhost_t *vh, const json_t *v)
{
    wr_exchange_t **xs;
    wr_queue_t **qs;
    size_t nx, nq;
    const char *k;
    json_t *e;

    live_extras(vh, v, m, &xs, &nx, &qs, &nq);
    for (size_t i = 0; i < nq; i++) {
        wr_vhost_queue_delete(vh, qs[i]);
        wr_queue_unref(qs[i]);
    }
    for (size_t i = 0; i < nx; i++) {
        if (!wr_exchange_deleted(xs[i]))
            wr_vhost_exchange_delete(vh, xs[i]);
        wr_exchange_unref(xs[i]);
    }
    free(xs);
    free(qs);
    json_object_foreach((json_t *)json_object_get(v, "exchanges"), k, e)
    {
        live_exchange_create(vh, e);
    }
    json_object_foreach((json_t *)json_object_get(v, "queues"), k, e)
    {
        live_queue_create(m, vh, e);
    }
    json_object_foreach((json_t *)json_object_get(v, "bindings"), k, e)
    {
        live_binding(vh, e, true);
    }
    wr_meta_quorum_reconcile(m, vh, v);
}

void wr_meta_queue_renew(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v, const json_t *e)
{
    const json_t *name = json_object_get(e, "name");
    uint8_t nbuf[WR_META_NAME_MAX];
    wr_bytes_t raw;
    wr_queue_t *q;
    const char *k;
    json_t *b;

    if (!wr_meta_name_decode(name, &raw, nbuf))
        return;
    if ((q = wr_vhost_queue(vh, raw)) != NULL)
        wr_vhost_queue_delete(vh, q);
    live_queue_create(m, vh, e);
    json_object_foreach((json_t *)json_object_get(v, "bindings"), k, b)
    {
        if (to_queue(b, name))
            live_binding(vh, b, true);
    }
}

void wr_meta_apply_reconcile(wr_meta_t *m)
{
    wr_map_iter_t it = {0};
    wr_bytes_t name;
    void *vh;

    while (wr_map_next(m->deps.vhosts, &it, &name, &vh))
        reconcile_vhost(m, vh, json_object_get(wr_meta_topology(m), wr_vhost_name(vh)));
}
