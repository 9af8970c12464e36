/* SPDX-License-Identifier: MIT */
/*
 * The metadata group's service side: submissions (a command stamped with
 * this node's name and an op id, proposed, answered from this node's apply),
 * the Raft state machine's entry points, snapshots, and the lookups the
 * handlers make before they propose. The ops themselves are meta_apply.c.
 */
#include "broker/cluster/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/base/log.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/cluster/meta_internal.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "protocol/methods.h"

struct wr_meta_op_s {
    wr_list_t link; /* in m->ops while the command waits */
    wr_meta_t *m;
    uint64_t id;
    wr_meta_reply_fn fn; /* NULL once cancelled */
    void *ud;
    bool applied; /* res holds this node's apply's result */
    wr_meta_result_t res;
    char timeout_text[256]; /* RabbitMQ's words for a change that did not commit */
};

/* Tells this run's submissions from an earlier run's that a restart replays
 * (op ids start again at 1). */
static json_int_t run_id(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (json_int_t)(((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid()) &
           INT64_MAX;
}

wr_meta_t *wr_meta_new(const wr_meta_deps_t *deps)
{
    wr_meta_t *m = calloc(1, sizeof(*m));

    if (m == NULL || (m->state = wr_meta_state_new()) == NULL) {
        free(m);
        return NULL;
    }
    m->deps = *deps;
    if (m->deps.timeout_ms == 0)
        m->deps.timeout_ms = WR_META_TIMEOUT_MS;
    wr_list_init(&m->ops);
    m->next_op = 1;
    m->run = run_id();
    return m;
}

/* The op's reply is dropped; the op itself is freed by its done callback,
 * which the group still owes. */
static void op_detach(wr_meta_op_t *op)
{
    wr_list_remove(&op->link);
    wr_list_init(&op->link);
    op->fn = NULL;
    op->m = NULL;
}

void wr_meta_set_quorum(wr_meta_t *m, wr_quorum_t *qs, wr_meta_members_fn members, void *ud)
{
    m->quorum = qs;
    m->members = members;
    m->members_ud = ud;
    if (qs != NULL) {
        wr_quorum_set_reporter(qs, wr_meta_quorum_report, m);
        wr_quorum_set_expirer(qs, wr_meta_quorum_expired, m);
    }
}

/* A quorum queue's declaration carries its members, placed here among the
 * cluster's members now, so that every node applies the same list. */
static bool quorum_place(const wr_meta_t *m, json_t *cmd)
{
    json_t *e = json_object_get(cmd, "entry"), *arr;
    const char *op = json_string_value(json_object_get(cmd, "op")), *names[9], *ms[10];
    uint8_t nbuf[WR_META_NAME_MAX], *abuf = NULL;
    wr_bytes_t name, args;
    bool ok = true;
    size_t k;

    if (m->quorum == NULL || op == NULL || strcmp(op, "queue.declare") != 0 ||
        !wr_meta_args_get(e, &args, &abuf) || !wr_quorum_args_want(args) ||
        !wr_meta_name_get(e, "name", &name, nbuf)) {
        free(abuf);
        return true;
    }
    k = wr_quorum_place(m->deps.self, names, m->members(m->members_ud, names, 9), name, args, ms);
    ok = (arr = json_array()) != NULL && json_object_set_new(e, "members", arr) == 0;
    for (size_t i = 0; ok && i < k; i++)
        ok = json_array_append_new(arr, json_string(ms[i])) == 0;
    free(abuf);
    return ok;
}

void wr_meta_set_remote(wr_meta_t *m, wr_remote_t *r)
{
    m->remote = r;
}

void wr_meta_free(wr_meta_t *m)
{
    if (m == NULL)
        return;
    while (!wr_list_empty(&m->ops))
        op_detach(wr_list_entry(m->ops.next, wr_meta_op_t, link));
    json_decref(m->state);
    free(m);
}

void wr_meta_sm(wr_rgroup_sm_t *out)
{
    *out = (wr_rgroup_sm_t){
        wr_meta_apply, wr_meta_snapshot_save, wr_meta_snapshot_load, wr_meta_leader_changed, NULL, NULL,
        NULL};
}

const char *wr_meta_self(const wr_meta_t *m)
{
    return m->deps.self;
}

uint64_t wr_meta_applied(const wr_meta_t *m)
{
    return m->applied;
}

/* ---------------------------------------------------------------- apply */

/* The waiting op this node submitted as `id`, or NULL. */
static wr_meta_op_t *op_find(wr_meta_t *m, const json_t *cmd)
{
    const char *origin = json_string_value(json_object_get(cmd, "origin"));
    json_int_t id = json_integer_value(json_object_get(cmd, "op_id"));
    wr_list_t *pos, *tmp;

    if (origin == NULL || strcmp(origin, m->deps.self) != 0 ||
        json_integer_value(json_object_get(cmd, "run")) != m->run)
        return NULL;
    wr_list_foreach_safe(pos, tmp, &m->ops)
    {
        wr_meta_op_t *op = wr_list_entry(pos, wr_meta_op_t, link);
        if (op->id == (uint64_t)id)
            return op;
    }
    return NULL;
}

void wr_meta_apply(void *ud, uint64_t index, const uint8_t *data, size_t len)
{
    wr_meta_t *m = ud;
    wr_meta_result_t res = {0};
    json_t *cmd = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    wr_meta_op_t *op;

    m->applied = index;
    if (!json_is_object(cmd))
        wr_amqp_error_set(&res.err, WR_AMQP_INTERNAL_ERROR, 0,
                          "malformed metadata command: not a JSON object");
    else
        wr_meta_apply_cmd(m, index, cmd, &res);
    if (res.err.code == WR_AMQP_INTERNAL_ERROR)
        wr_log_warn("cluster: metadata command %llu: %s", (unsigned long long)index, res.err.text);
    op = json_is_object(cmd) ? op_find(m, cmd) : NULL;
    if (op != NULL) {
        op->res = res;
        op->applied = true;
    }
    json_decref(cmd);
}

/* ---------------------------------------------------------------- snapshots */

int wr_meta_snapshot_save(void *ud, wr_buf_t *out)
{
    wr_meta_t *m = ud;
    char *s = json_dumps(m->state, JSON_COMPACT | JSON_SORT_KEYS);

    if (s == NULL)
        return WR_ENOMEM;
    wr_buf_put(out, s, strlen(s));
    free(s);
    return wr_buf_ok(out) ? WR_OK : WR_ENOMEM;
}

int wr_meta_snapshot_load(void *ud, const uint8_t *data, size_t len)
{
    wr_meta_t *m = ud;
    char why[128];
    json_t *st = wr_meta_state_load(data, len, why, sizeof(why));

    if (st == NULL) {
        wr_log_error("cluster: the metadata snapshot is not loaded: %s", why);
        return WR_ESYNTAX;
    }
    json_decref(m->state);
    m->state = st;
    wr_meta_defs_reconcile(m); /* the vhosts first: the topology lives in them */
    wr_meta_apply_reconcile(m);
    return WR_OK;
}

/* ---------------------------------------------------------------- submissions */

/* RabbitMQ's words (Khepri) for a change that did not commit in time. */
static void timeout_text(wr_meta_op_t *op, const json_t *cmd, const char *self)
{
    const char *op_name = json_string_value(json_object_get(cmd, "op"));
    const char *vhost = json_string_value(json_object_get(cmd, "vhost"));
    const json_t *e = json_object_get(cmd, "entry");
    uint8_t buf[WR_META_NAME_MAX];
    wr_bytes_t name = WR_BYTES_LIT("");
    bool queue = strncmp(op_name, "queue.", 6) == 0;

    if (wr_meta_defs_timeout_text(cmd, op->timeout_text, sizeof(op->timeout_text)))
        return;
    if (!wr_meta_name_get(e, "name", &name, buf) && !wr_meta_name_get(e, "destination", &name, buf))
        name = WR_BYTES_LIT("");
    if (strcmp(op_name, "queue.declare") == 0)
        snprintf(op->timeout_text, sizeof(op->timeout_text),
                 "Could not declare queue '%.*s' in vhost '%s' on node '%s' because the metadata store "
                 "operation timed out",
                 (int)name.len, (const char *)name.data, vhost, self);
    else if (strcmp(op_name, "bind") == 0 || strcmp(op_name, "unbind") == 0)
        snprintf(op->timeout_text, sizeof(op->timeout_text),
                 "failed to %s %s '%.*s' in vhost '%s' because the operation timed out", op_name,
                 json_string_value(json_object_get(e, "destination_type")), (int)name.len,
                 (const char *)name.data, vhost);
    else
        snprintf(op->timeout_text, sizeof(op->timeout_text),
                 "failed to %s %s '%.*s' in vhost '%s' because the operation timed out",
                 strchr(op_name, '.') + 1, queue ? "queue" : "exchange", (int)name.len,
                 (const char *)name.data, vhost);
}

static void on_done(void *ud, int status, uint64_t index)
{
    wr_meta_op_t *op = ud;
    wr_meta_reply_fn fn = op->fn;

    if (op->m != NULL)
        op_detach(op);
    if (fn != NULL && status == WR_OK && op->applied) {
        fn(op->ud, &op->res);
    } else if (fn != NULL) {
        wr_amqp_error_set(&op->res.err, WR_AMQP_INTERNAL_ERROR, 0, "%s", op->timeout_text);
        op->res.messages = 0;
        fn(op->ud, &op->res);
    }
    free(op);
}

wr_meta_op_t *wr_meta_submit(wr_meta_t *m, json_t *cmd, wr_meta_reply_fn fn, void *ud)
{
    wr_meta_op_t *op = calloc(1, sizeof(*op));
    char *text = NULL;

    if (op == NULL || cmd == NULL || !quorum_place(m, cmd) ||
        json_object_set_new(cmd, "origin", json_string(m->deps.self)) != 0 ||
        json_object_set_new(cmd, "op_id", json_integer((json_int_t)m->next_op)) != 0 ||
        json_object_set_new(cmd, "run", json_integer(m->run)) != 0 ||
        (text = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        goto err;
    *op = (wr_meta_op_t){.m = m, .id = m->next_op++, .fn = fn, .ud = ud};
    timeout_text(op, cmd, m->deps.self);
    wr_list_insert_tail(&m->ops, &op->link);
    if (m->deps.propose(m->deps.ud, text, strlen(text), m->deps.timeout_ms, on_done, op) != WR_OK) {
        wr_list_remove(&op->link);
        goto err;
    }
    free(text);
    json_decref(cmd);
    return op;
err:
    free(text);
    free(op);
    json_decref(cmd);
    return NULL;
}

void wr_meta_cancel(wr_meta_op_t *op)
{
    if (op != NULL && op->m != NULL)
        op_detach(op);
    else if (op != NULL)
        op->fn = NULL;
}

static void on_gone_result(void *ud, const wr_meta_result_t *r)
{
    if (r->err.code != 0)
        wr_log_warn("cluster: the deletion of an auto-deleted or expired queue was not committed: %s",
                    r->err.text);
}

void wr_meta_queue_gone(void *ud, const wr_vhost_t *vh, const wr_queue_t *q)
{
    wr_meta_t *m = ud;
    const char *home = NULL;

    /* The group's own deletions drop the record first: nothing to propose then.
     * A quorum queue's live object goes when its members change (meta_quorum.c). */
    if (wr_queue_opts(q)->exclusive || wr_quorum_args_want(wr_queue_opts(q)->args) ||
        !wr_meta_queue_find(m, wr_vhost_name(vh), wr_queue_name(q), &home) || strcmp(home, m->deps.self) != 0)
        return;
    if (wr_meta_submit(m, wr_meta_cmd_queue_delete(wr_vhost_name(vh), wr_queue_name(q)), on_gone_result,
                       NULL) == NULL)
        wr_log_error("cluster: out of memory proposing the deletion of a queue that went");
}

/* ---------------------------------------------------------------- the seed */

static void seed_propose(wr_meta_t *m);

static void on_seed_result(void *ud, const wr_meta_result_t *r)
{
    wr_meta_t *m = ud;

    m->seeding = false;
    if (r->err.code != 0)
        wr_log_warn("cluster: the definitions' seed was not committed: %s", r->err.text);
    seed_propose(m);
}

/* While this node leads a group whose definitions are not seeded. */
static void seed_propose(wr_meta_t *m)
{
    if (!m->leading || m->seeding || wr_meta_seeded(m) || m->deps.users == NULL)
        return;
    m->seeding = wr_meta_submit(m, wr_meta_defs_seed(m), on_seed_result, m) != NULL;
    if (!m->seeding)
        wr_log_warn("cluster: the definitions' seed could not be proposed (out of memory, or the node is "
                    "stopping)");
    else
        wr_log_info("cluster: proposing this node's vhosts, users, permissions and policies as the seed");
}

void wr_meta_leader_changed(void *ud, const char *leader)
{
    wr_meta_t *m = ud;

    m->leading = leader != NULL && strcmp(leader, m->deps.self) == 0;
    seed_propose(m);
}

/* ---------------------------------------------------------------- lookups */

const json_t *wr_meta_queue_record(const wr_meta_t *m, const char *vhost, wr_bytes_t name)
{
    json_t *n = wr_meta_name_json(name);
    char *key = n != NULL ? wr_meta_key(n) : NULL;
    const json_t *e =
        key != NULL
            ? json_object_get(json_object_get(json_object_get(wr_meta_topology(m), vhost), "queues"), key)
            : NULL;

    free(key);
    json_decref(n);
    return e;
}

size_t wr_meta_queue_members(const wr_meta_t *m, const char *vhost, wr_bytes_t name, const char **out,
                             size_t room)
{
    const json_t *e = wr_meta_queue_record(m, vhost, name);
    const json_t *ms = json_object_get(e, "members");
    size_t k = 0;

    for (size_t i = 0; i < json_array_size(ms) && k < room; i++)
        if (json_is_string(json_array_get(ms, i)))
            out[k++] = json_string_value(json_array_get(ms, i));
    return k;
}

bool wr_meta_queue_find(const wr_meta_t *m, const char *vhost, wr_bytes_t name, const char **home)
{
    const json_t *e = wr_meta_queue_record(m, vhost, name);

    if (e != NULL && home != NULL)
        *home = json_string_value(json_object_get(e, "home"));
    return e != NULL;
}
