/* SPDX-License-Identifier: MIT */
/*
 * The metadata group's state machine (broker/cluster/meta.c) on three
 * "nodes" in one process, each with its own vhost, driven by a fake group
 * that commits every proposal at once and applies it on all three in the
 * same order: results and live objects per node, determinism (the same
 * snapshot bytes everywhere), RabbitMQ's texts, malformed commands, a change
 * that cannot commit, and a lagging node installing a snapshot.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/cluster/meta_quorum.h"
#include "broker/config/config.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/base64.h"
#include "core/status.h"
#include "tests/unit/broker/loop_fixture.h"
#include "tests/unit/runner.h"
#include "protocol/constants.h"

#define MAX_PASSES 20
#define NODES      3

typedef struct fx_s fx_t;

typedef struct {
    fx_t *fx;
    const char *name;
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_vhost_env_t env;
    wr_vhost_t *vh; /* "/" */
    wr_meta_t *meta;
    wr_config_t *cfg; /* its users and permissions */
    json_t *settings; /* vhost name -> settings */
} node_t;

/* One proposal on its way through the fake group. */
typedef struct {
    fx_t *fx;
    struct event *ev;
    char *data;
    size_t len;
    wr_rgroup_done_fn done;
    void *ud;
} entry_t;

struct fx_s {
    struct event_base *base;
    node_t nodes[NODES];
    uint64_t index;
    bool minority; /* proposals fail: no leader */
    int replies;
    wr_meta_result_t last;
    wr_buf_t args;
};

/* Commits the entry: applied on every node in order, then done on the proposer. */
static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    entry_t *e = arg;
    fx_t *fx = e->fx;

    if (fx->minority) {
        e->done(e->ud, WR_ENOENT, 0);
    } else {
        fx->index++;
        for (int i = 0; i < NODES; i++)
            wr_meta_apply(fx->nodes[i].meta, fx->index, (const uint8_t *)e->data, e->len);
        e->done(e->ud, WR_OK, fx->index);
    }
    event_free(e->ev);
    free(e->data);
    free(e);
}

static int fake_propose(void *ud, const void *data, size_t len, unsigned timeout_ms, wr_rgroup_done_fn done,
                        void *done_ud)
{
    node_t *n = ud;
    entry_t *e = calloc(1, sizeof(*e));

    ck_assert_ptr_nonnull(e);
    *e = (entry_t){n->fx, NULL, malloc(len), len, done, done_ud};
    memcpy(e->data, data, len);
    e->ev = event_new(n->fx->base, -1, 0, on_commit, e);
    event_active(e->ev, 0, 0);
    return WR_OK;
}

/* The server's vhost_add and vhost_delete, on the node's map. */
static int fake_vhost_add(void *ud, const char *name, const json_t *settings)
{
    node_t *n = ud;
    wr_vhost_t *vh;
    bool existed = wr_map_get(n->vhosts, wr_bytes_str(name)) != NULL;

    if (settings != NULL)
        json_object_set_new(n->settings, name, json_deep_copy(settings));
    if (existed)
        return WR_EEXIST;
    vh = wr_vhost_new(&n->env, name);
    ck_assert(vh != NULL && wr_map_put(n->vhosts, wr_bytes_str(wr_vhost_name(vh)), vh) == WR_OK);
    return WR_OK;
}

static int fake_vhost_delete(void *ud, const char *name)
{
    node_t *n = ud;
    wr_vhost_t *vh = wr_map_get(n->vhosts, wr_bytes_str(name));
    const wr_permission_cfg_t *perm;
    size_t i = 0;

    ck_assert_ptr_nonnull(vh);
    while ((perm = wr_users_permission_next(&n->cfg->auth, &i)) != NULL)
        if (strcmp(perm->vhost, name) == 0)
            wr_users_delete_permission(&n->cfg->auth, perm->user, name);
    wr_map_del(n->vhosts, wr_bytes_str(name));
    json_object_del(n->settings, name);
    if (vh == n->vh)
        n->vh = NULL;
    wr_vhost_free(vh);
    return WR_OK;
}

static void node_start(fx_t *fx, node_t *n, const char *name)
{
    n->fx = fx;
    n->name = name;
    n->vhosts = wr_map_new();
    n->policies = wr_policies_new(n->vhosts);
    n->env = (wr_vhost_env_t){.base = fx->base, .policies = n->policies, .consumer_timeout = -1};
    n->vh = wr_vhost_new(&n->env, "/");
    ck_assert(n->vh != NULL && wr_map_put(n->vhosts, wr_bytes_str("/"), n->vh) == WR_OK);
    n->cfg = wr_config_new_default();
    n->settings = json_object();
    ck_assert(n->cfg != NULL && n->settings != NULL);
    n->meta = wr_meta_new(&(wr_meta_deps_t){.vhosts = n->vhosts,
                                            .self = name,
                                            .propose = fake_propose,
                                            .ud = n,
                                            .users = &n->cfg->auth,
                                            .policies = n->policies,
                                            .vhost_settings = n->settings,
                                            .vhost_add = fake_vhost_add,
                                            .vhost_delete = fake_vhost_delete});
    ck_assert_ptr_nonnull(n->meta);
    n->env.queue_deleted = wr_meta_queue_gone;
    n->env.queue_deleted_ud = n->meta;
}

static void node_stop(node_t *n)
{
    wr_map_iter_t it = {0};
    void *vh;

    wr_meta_free(n->meta);
    while (wr_map_next(n->vhosts, &it, NULL, &vh))
        wr_vhost_free(vh);
    wr_policies_free(n->policies);
    wr_map_free(n->vhosts);
    wr_config_free(n->cfg);
    json_decref(n->settings);
}

static void fx_start(fx_t *fx)
{
    static const char *const names[NODES] = {"n1", "n2", "n3"};

    memset(fx, 0, sizeof(*fx));
    fx->base = wr_test_base_new();
    for (int i = 0; i < NODES; i++)
        node_start(fx, &fx->nodes[i], names[i]);
}

static void fx_stop(fx_t *fx)
{
    for (int i = 0; i < NODES; i++)
        node_stop(&fx->nodes[i]);
    wr_buf_free(&fx->args);
    event_base_free(fx->base);
}

static void on_reply(void *ud, const wr_meta_result_t *r)
{
    fx_t *fx = ud;

    fx->replies++;
    fx->last = *r;
}

/* Submits cmd on node i and runs the loop until its reply. */
static const wr_meta_result_t *run(fx_t *fx, int i, json_t *cmd)
{
    int before = fx->replies;

    ck_assert_ptr_nonnull(wr_meta_submit(fx->nodes[i].meta, cmd, on_reply, fx));
    ck_assert_int_eq(fx->replies, before); /* never inside submit */
    WR_TEST_LOOP_UNTIL(fx->base, fx->replies == before + 1, MAX_PASSES);
    return &fx->last;
}

static json_t *xdecl(const char *name, const char *type, bool durable)
{
    wr_exchange_opts_t o = {.type = wr_router_type_find(wr_bytes_str(type)), .durable = durable};

    return wr_meta_cmd_exchange_declare("/", wr_bytes_str(name), &o);
}

static json_t *qdecl(const char *name, bool durable, wr_bytes_t args, const char *home)
{
    wr_queue_args_decl_t d = {.durable = durable, .args = args};

    return wr_meta_cmd_queue_declare("/", wr_bytes_str(name), &d, home);
}

static json_t *qbind(const char *x, const char *q, const char *key, bool bind)
{
    return wr_meta_cmd_binding("/", bind, wr_bytes_str(x), WR_DEST_QUEUE, wr_bytes_str(q), wr_bytes_str(key),
                               WR_BYTES_LIT(""));
}

static char *snapshot(node_t *n)
{
    wr_buf_t b = {0};
    char *s;

    ck_assert_int_eq(wr_meta_snapshot_save(n->meta, &b), WR_OK);
    s = strndup((const char *)b.data, b.len);
    wr_buf_free(&b);
    return s;
}

/* Every node holds the same state, byte for byte. */
static void assert_converged(fx_t *fx)
{
    char *first = snapshot(&fx->nodes[0]);

    for (int i = 1; i < NODES; i++) {
        char *s = snapshot(&fx->nodes[i]);
        ck_assert_str_eq(s, first);
        free(s);
    }
    free(first);
}

static void assert_ok(const wr_meta_result_t *r)
{
    ck_assert_msg(r->err.code == 0, "%u %s", r->err.code, r->err.text);
}

static void assert_err(const wr_meta_result_t *r, uint16_t code, const char *text)
{
    ck_assert_uint_eq(r->err.code, code);
    ck_assert_str_eq(r->err.text, text);
}

static wr_exchange_t *x_on(node_t *n, const char *name)
{
    return wr_vhost_exchange(n->vh, wr_bytes_str(name));
}

static wr_queue_t *q_on(node_t *n, const char *name)
{
    return wr_vhost_queue(n->vh, wr_bytes_str(name));
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_exchange_everywhere)
{
    fx_t fx;

    fx_start(&fx);
    assert_ok(run(&fx, 0, xdecl("x", "direct", true)));
    for (int i = 0; i < NODES; i++)
        ck_assert_ptr_nonnull(x_on(&fx.nodes[i], "x"));
    /* A redeclaration from another node: equivalent is fine, else RabbitMQ's 406. */
    assert_ok(run(&fx, 1, xdecl("x", "direct", true)));
    assert_err(run(&fx, 2, xdecl("x", "fanout", true)), WR_AMQP_PRECONDITION_FAILED,
               "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received "
               "'fanout' but current is 'direct'");
    assert_err(run(&fx, 1, xdecl("x", "direct", false)), WR_AMQP_PRECONDITION_FAILED,
               "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received "
               "'false' but current is 'true'");
    assert_converged(&fx);
    assert_ok(run(&fx, 1, wr_meta_cmd_exchange_delete("/", WR_BYTES_LIT("x"), false)));
    for (int i = 0; i < NODES; i++)
        ck_assert_ptr_null(x_on(&fx.nodes[i], "x"));
    /* Deleting what is not there: delete-ok, as RabbitMQ 3.10. */
    assert_ok(run(&fx, 2, wr_meta_cmd_exchange_delete("/", WR_BYTES_LIT("x"), false)));
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_queue_lives_on_its_home)
{
    fx_t fx;
    const char *home = NULL;
    char *snap;

    fx_start(&fx);
    assert_ok(run(&fx, 1, qdecl("q", true, WR_BYTES_LIT(""), "n2")));
    ck_assert_ptr_null(q_on(&fx.nodes[0], "q"));
    ck_assert_ptr_nonnull(q_on(&fx.nodes[1], "q"));
    ck_assert_ptr_null(q_on(&fx.nodes[2], "q"));
    for (int i = 0; i < NODES; i++) {
        ck_assert(wr_meta_queue_find(fx.nodes[i].meta, "/", WR_BYTES_LIT("q"), &home));
        ck_assert_str_eq(home, "n2");
    }
    /* The durable queue's log is named by the declaring command's index. */
    snap = snapshot(&fx.nodes[0]);
    ck_assert_ptr_nonnull(strstr(snap, "\"log\":\"q8000000000000001\""));
    free(snap);
    /* Redeclared from n1 with another argument: the record decides. */
    assert_err(
        run(&fx, 0,
            qdecl("q", true,
                  wr_test_args(&fx.args, (wr_test_arg_t[]){WR_TEST_LONG("x-max-length", 5), WR_TEST_END}),
                  "n1")),
        WR_AMQP_PRECONDITION_FAILED,
        "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the "
        "value '5' of type 'long' "
        "but current is none");
    ck_assert_ptr_null(q_on(&fx.nodes[0], "q"));
    assert_converged(&fx);
    assert_ok(run(&fx, 0, wr_meta_cmd_queue_delete("/", WR_BYTES_LIT("q"))));
    for (int i = 0; i < NODES; i++) {
        ck_assert(!wr_meta_queue_find(fx.nodes[i].meta, "/", WR_BYTES_LIT("q"), NULL));
        ck_assert_ptr_null(q_on(&fx.nodes[i], "q"));
    }
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_bindings)
{
    fx_t fx;

    fx_start(&fx);
    assert_ok(run(&fx, 0, xdecl("x", "direct", false)));
    assert_ok(run(&fx, 0, qdecl("q", false, WR_BYTES_LIT(""), "n1")));
    assert_err(run(&fx, 1, qbind("nox", "q", "k", true)), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no exchange 'nox' in vhost '/'");
    assert_err(run(&fx, 1, qbind("x", "noq", "k", true)), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no queue 'noq' in vhost '/'");
    assert_ok(run(&fx, 1, qbind("x", "q", "k", true)));
    assert_ok(run(&fx, 2, qbind("amq.direct", "q", "k", true)));
    /* Live only where the queue lives. */
    ck_assert_uint_eq(wr_exchange_binding_count(x_on(&fx.nodes[0], "x")), 1);
    ck_assert_uint_eq(wr_exchange_binding_count(x_on(&fx.nodes[1], "x")), 0);
    assert_err(run(&fx, 2, wr_meta_cmd_exchange_delete("/", WR_BYTES_LIT("x"), true)),
               WR_AMQP_PRECONDITION_FAILED, "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use");
    assert_ok(run(&fx, 2, qbind("x", "q", "k", false)));
    ck_assert_uint_eq(wr_exchange_binding_count(x_on(&fx.nodes[0], "x")), 0);
    assert_ok(run(&fx, 2, wr_meta_cmd_exchange_delete("/", WR_BYTES_LIT("x"), true)));
    /* Deleting the queue takes its bindings along, everywhere. */
    assert_ok(run(&fx, 1, wr_meta_cmd_queue_delete("/", WR_BYTES_LIT("q"))));
    ck_assert_uint_eq(wr_exchange_binding_count(x_on(&fx.nodes[0], "amq.direct")), 0);
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_auto_delete_cascade)
{
    fx_t fx;
    wr_exchange_opts_t o = {.type = wr_router_type_find(WR_BYTES_LIT("fanout")), .auto_delete = true};

    fx_start(&fx);
    assert_ok(run(&fx, 0, wr_meta_cmd_exchange_declare("/", WR_BYTES_LIT("ad"), &o)));
    assert_ok(run(&fx, 0, qdecl("q", false, WR_BYTES_LIT(""), "n3")));
    assert_ok(run(&fx, 0, qbind("ad", "q", "", true)));
    /* The binding is live on n3 only, yet every node drops the exchange. */
    assert_ok(run(&fx, 0, wr_meta_cmd_queue_delete("/", WR_BYTES_LIT("q"))));
    for (int i = 0; i < NODES; i++)
        ck_assert_ptr_null(x_on(&fx.nodes[i], "ad"));
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_home_deletion_propagates)
{
    fx_t fx;

    fx_start(&fx);
    assert_ok(run(&fx, 0, xdecl("x", "direct", false)));
    assert_ok(run(&fx, 1, qdecl("gone", false, WR_BYTES_LIT(""), "n2")));
    assert_ok(run(&fx, 0, qbind("x", "gone", "k", true)));
    /* As auto-delete or x-expires do on the home node. */
    wr_vhost_queue_delete(fx.nodes[1].vh, q_on(&fx.nodes[1], "gone"));
    for (int i = 0; i < NODES; i++)
        WR_TEST_LOOP_UNTIL(fx.base, !wr_meta_queue_find(fx.nodes[i].meta, "/", WR_BYTES_LIT("gone"), NULL),
                           MAX_PASSES);
    assert_converged(&fx);
    /* The group's own deletion proposed nothing more. */
    ck_assert_uint_eq(wr_meta_applied(fx.nodes[0].meta), 4);
    fx_stop(&fx);
}
END_TEST

static const struct {
    const char *cmd;
    const char *text;
} malformed_cases[] = {
    {"[1]", "malformed metadata command: not a JSON object"},
    {"{\"op\":\"bind\",\"entry\":{}}",
     "malformed metadata command: it needs 'vhost', 'op' and an object 'entry'"},
    {"{\"vhost\":\"/\",\"op\":\"queue.purge\",\"entry\":{}}",
     "malformed metadata command: unknown op 'queue.purge'"},
    {"{\"vhost\":\"/\",\"op\":\"queue.declare\",\"entry\":{\"name\":\"q\",\"arguments\":\"\"}}",
     "malformed metadata command: queue.declare: bad 'entry'"},
    {"{\"vhost\":\"/"
     "\",\"op\":\"exchange.declare\",\"entry\":{\"name\":\"x\",\"type\":\"nope\",\"arguments\":\"\"}}",
     "malformed metadata command: exchange.declare: bad 'entry'"},
    {"{\"vhost\":\"/"
     "\",\"op\":\"bind\",\"entry\":{\"source\":\"x\",\"destination\":\"q\",\"destination_type\":"
     "\"queue\",\"routing_key\":\"\",\"arguments\":\"zz\"}}",
     "malformed metadata command: bind: bad 'entry'"},
};

START_TEST(test_malformed)
{
    fx_t fx;
    char *before, *after;
    json_t *cmd = json_loads(malformed_cases[_i].cmd, JSON_DECODE_ANY, NULL);

    fx_start(&fx);
    before = snapshot(&fx.nodes[0]);
    ck_assert_ptr_nonnull(cmd);
    if (!json_is_object(cmd)) {
        /* Not something submit would send: straight into the apply. */
        wr_meta_apply(fx.nodes[0].meta, 1, (const uint8_t *)malformed_cases[_i].cmd,
                      strlen(malformed_cases[_i].cmd));
        json_decref(cmd);
    } else {
        char want[300];

        snprintf(want, sizeof(want), "INTERNAL_ERROR - %s", malformed_cases[_i].text);
        assert_err(run(&fx, 0, cmd), WR_AMQP_INTERNAL_ERROR, want);
    }
    after = snapshot(&fx.nodes[0]);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_no_majority)
{
    fx_t fx;

    fx_start(&fx);
    fx.minority = true;
    assert_err(run(&fx, 0, qdecl("q", true, WR_BYTES_LIT(""), "n1")), WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - Could not declare queue 'q' in vhost '/' on node 'n1' because the metadata "
               "store operation "
               "timed out");
    assert_err(
        run(&fx, 1, xdecl("x", "topic", true)), WR_AMQP_INTERNAL_ERROR,
        "INTERNAL_ERROR - failed to declare exchange 'x' in vhost '/' because the operation timed out");
    assert_err(run(&fx, 2, qbind("amq.direct", "q", "", true)), WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - failed to bind queue 'q' in vhost '/' because the operation timed out");
    ck_assert_ptr_null(q_on(&fx.nodes[0], "q"));
    ck_assert_ptr_null(x_on(&fx.nodes[1], "x"));
    fx_stop(&fx);
}
END_TEST

START_TEST(test_cancelled_reply_dropped)
{
    fx_t fx;
    wr_meta_op_t *op;

    fx_start(&fx);
    op = wr_meta_submit(fx.nodes[0].meta, xdecl("x", "direct", false), on_reply, &fx);
    ck_assert_ptr_nonnull(op);
    wr_meta_cancel(op);
    WR_TEST_LOOP_UNTIL(fx.base, wr_meta_applied(fx.nodes[2].meta) == 1, MAX_PASSES);
    ck_assert_int_eq(fx.replies, 0);
    ck_assert_ptr_nonnull(x_on(&fx.nodes[0], "x"));
    fx_stop(&fx);
}
END_TEST

START_TEST(test_snapshot_install_reconciles)
{
    fx_t fx;
    wr_buf_t b = {0};
    node_t lag;
    char *want, *got;

    fx_start(&fx);
    assert_ok(run(&fx, 0, xdecl("x", "topic", true)));
    assert_ok(run(&fx, 0, xdecl("y", "fanout", false)));
    assert_ok(run(&fx, 0, qdecl("q", true, WR_BYTES_LIT(""), "lag")));
    assert_ok(run(&fx, 0, qbind("x", "q", "a.#", true)));
    assert_ok(run(&fx, 0,
                  wr_meta_cmd_binding("/", true, WR_BYTES_LIT("x"), WR_DEST_EXCHANGE, WR_BYTES_LIT("y"),
                                      WR_BYTES_LIT("b"), WR_BYTES_LIT(""))));
    /* A node that missed all that, with an exchange since deleted. */
    node_start(&fx, &lag, "lag");
    ck_assert_int_eq(
        wr_vhost_exchange_add(lag.vh, WR_BYTES_LIT("stale"),
                              &(wr_exchange_opts_t){.type = wr_router_type_find(WR_BYTES_LIT("direct"))},
                              &(wr_exchange_t *){NULL}),
        WR_OK);
    ck_assert_int_eq(wr_meta_snapshot_save(fx.nodes[0].meta, &b), WR_OK);
    ck_assert_int_eq(wr_meta_snapshot_load(lag.meta, b.data, b.len), WR_OK);
    ck_assert_ptr_null(x_on(&lag, "stale"));
    ck_assert_ptr_nonnull(q_on(&lag, "q")); /* its home */
    ck_assert_uint_eq(wr_exchange_binding_count(x_on(&lag, "x")), 2);
    want = snapshot(&fx.nodes[0]);
    got = snapshot(&lag);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
    ck_assert_int_eq(wr_meta_snapshot_load(lag.meta, (const uint8_t *)"{\"/\":[]}", 8), WR_ESYNTAX);
    ck_assert_ptr_nonnull(q_on(&lag, "q"));
    wr_buf_free(&b);
    node_stop(&lag);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- definitions */

static json_t *defs(const char *op, const char *vhost, const char *fmt, ...)
{
    va_list ap;
    json_t *e;

    va_start(ap, fmt);
    e = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(e);
    return wr_meta_cmd_defs(op, vhost, e);
}

/* n leads and seeds; every node applies the seed. */
static void seed_by(fx_t *fx, int n)
{
    wr_meta_leader_changed(fx->nodes[n].meta, fx->nodes[n].name);
    WR_TEST_LOOP_UNTIL(fx->base, wr_meta_seeded(fx->nodes[0].meta) && wr_meta_seeded(fx->nodes[2].meta),
                       MAX_PASSES);
    wr_meta_leader_changed(fx->nodes[n].meta, NULL);
}

/* The base64 hash of password, as the management API sends it. */
static json_t *hash_of(const char *password)
{
    uint8_t h[WR_PASSWORD_HASH_MAX];
    char b64[WR_PASSWORD_HASH_MAX * 2];
    size_t len = wr_auth_hash_password(WR_HASH_SHA256, wr_bytes_str(password), h);

    ck_assert_uint_gt(len, 0);
    wr_base64_encode(h, len, b64);
    return json_string(b64);
}

static const wr_permission_cfg_t *perm_on(node_t *n, const char *user, const char *vhost)
{
    return wr_users_permission(&n->cfg->auth, user, vhost, strlen(vhost));
}

START_TEST(test_defs_everywhere)
{
    fx_t fx;
    const wr_meta_result_t *r;

    fx_start(&fx);
    seed_by(&fx, 0);
    r = run(&fx, 0,
            defs("vhost.add", "v", "{s:{s:s,s:[],s:b},s:s}", "settings", "description", "d", "tags",
                 "tracing", 0, "grant", "guest"));
    assert_ok(r);
    ck_assert(r->created);
    ck_assert(!run(&fx, 1,
                   defs("vhost.add", "v", "{s:{s:s,s:[],s:b}}", "settings", "description", "e", "tags",
                        "tracing", 0))
                   ->created);
    assert_ok(run(&fx, 1,
                  defs("user.put", "", "{s:s,s:o,s:s,s:[s]}", "name", "bob", "password_hash", hash_of("pw"),
                       "hashing_algorithm", "rabbit_password_hashing_sha256", "tags", "management")));
    assert_ok(run(&fx, 2,
                  defs("permission.set", "v", "{s:s,s:s,s:s,s:s}", "user", "bob", "configure", "^q", "write",
                       ".*", "read", "")));
    assert_ok(run(&fx, 0,
                  defs("policy.set", "v", "{s:s,s:s,s:s,s:i,s:{s:i}}", "name", "p", "pattern", "^q",
                       "apply-to", "queues", "priority", 1, "definition", "max-length", 2)));
    for (int i = 0; i < NODES; i++) {
        node_t *n = &fx.nodes[i];
        ck_assert_ptr_nonnull(wr_map_get(n->vhosts, WR_BYTES_LIT("v")));
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(n->settings, "v"), "description")),
                         "e");
        ck_assert_ptr_nonnull(wr_auth_check(&n->cfg->auth, WR_BYTES_LIT("bob"), WR_BYTES_LIT("pw")));
        ck_assert_str_eq(perm_on(n, "bob", "v")->pattern[WR_PERM_CONFIGURE], "^q");
        ck_assert_str_eq(perm_on(n, "guest", "v")->pattern[WR_PERM_READ], ".*"); /* the creator's */
        ck_assert_int_eq(wr_policy_get(n->policies, "v", "p")->max_length, 2);
    }
    assert_converged(&fx);
    assert_ok(run(&fx, 2, defs("permission.clear", "v", "{s:s}", "user", "bob")));
    assert_ok(run(&fx, 1, defs("policy.clear", "v", "{s:s}", "name", "p")));
    assert_ok(run(&fx, 0, defs("user.put", "", "{s:s,s:[]}", "name", "bob", "tags"))); /* keeps the hash */
    for (int i = 0; i < NODES; i++) {
        ck_assert_ptr_null(perm_on(&fx.nodes[i], "bob", "v"));
        ck_assert_ptr_null(wr_policy_get(fx.nodes[i].policies, "v", "p"));
        ck_assert_ptr_nonnull(wr_auth_check(&fx.nodes[i].cfg->auth, WR_BYTES_LIT("bob"), WR_BYTES_LIT("pw")));
    }
    assert_ok(run(&fx, 0,
                  defs("permission.set", "v", "{s:s,s:s,s:s,s:s}", "user", "bob", "configure", ".*", "write",
                       ".*", "read", ".*")));
    assert_ok(run(&fx, 1, defs("user.delete", "", "{s:s}", "name", "bob")));
    assert_ok(run(&fx, 2, defs("vhost.delete", "v", "{}")));
    for (int i = 0; i < NODES; i++) {
        ck_assert_ptr_null(wr_users_find(&fx.nodes[i].cfg->auth, "bob", 3));
        ck_assert_ptr_null(perm_on(&fx.nodes[i], "bob", "v"));
        ck_assert_ptr_null(wr_map_get(fx.nodes[i].vhosts, WR_BYTES_LIT("v")));
    }
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_defs_errors)
{
    fx_t fx;

    fx_start(&fx);
    seed_by(&fx, 1);
    assert_err(run(&fx, 0, defs("vhost.delete", "nope", "{}")), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no vhost 'nope'");
    assert_err(run(&fx, 0, defs("user.delete", "", "{s:s}", "name", "nope")), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no user 'nope'");
    assert_err(run(&fx, 0,
                   defs("permission.set", "nope", "{s:s,s:s,s:s,s:s}", "user", "guest", "configure", "",
                        "write", "", "read", "")),
               WR_AMQP_PRECONDITION_FAILED, "PRECONDITION_FAILED - vhost_or_user_not_found");
    assert_err(run(&fx, 0, defs("permission.clear", "/", "{s:s}", "user", "nope")), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no permission of user 'nope' in vhost '/'");
    assert_err(run(&fx, 0,
                   defs("policy.set", "nope", "{s:s,s:s,s:i,s:{s:i}}", "name", "p", "pattern", ".",
                        "priority", 0, "definition", "max-length", 1)),
               WR_AMQP_NOT_FOUND, "NOT_FOUND - vhost_not_found");
    assert_err(run(&fx, 0, defs("policy.clear", "/", "{s:s}", "name", "p")), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no policy 'p' in vhost '/'");
    assert_err(run(&fx, 0,
                   defs("policy.set", "/", "{s:s,s:s,s:i,s:{s:s}}", "name", "p", "pattern", ".", "priority",
                        0, "definition", "max-length", "x")),
               WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - malformed metadata command: policy.set: bad 'entry'");
    assert_err(run(&fx, 0,
                   defs("user.put", "", "{s:s,s:s,s:s,s:[]}", "name", "u", "password_hash", "%%",
                        "hashing_algorithm", "rabbit_password_hashing_sha256", "tags")),
               WR_AMQP_INTERNAL_ERROR, "INTERNAL_ERROR - malformed metadata command: user.put: bad 'entry'");
    /* Once the group holds the vhosts, a declaration in one it lacks fails everywhere alike. */
    assert_err(run(&fx, 0, wr_meta_cmd_exchange_delete("gone", WR_BYTES_LIT("x"), false)), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no vhost 'gone'");
    assert_converged(&fx);
    fx.minority = true;
    assert_err(run(&fx, 0, defs("vhost.add", "v", "{s:{}}", "settings")), WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - failed to add vhost 'v' because the operation timed out");
    assert_err(run(&fx, 0, defs("user.delete", "", "{s:s}", "name", "guest")), WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - failed to delete user 'guest' because the operation timed out");
    assert_err(
        run(&fx, 0,
            defs("permission.set", "/", "{s:s,s:s,s:s,s:s}", "user", "guest", "configure", "", "write", "",
                 "read", "")),
        WR_AMQP_INTERNAL_ERROR,
        "INTERNAL_ERROR - failed to set permissions of user 'guest' in vhost '/' because the operation "
        "timed out");
    assert_err(run(&fx, 0, defs("policy.clear", "/", "{s:s}", "name", "p")), WR_AMQP_INTERNAL_ERROR,
               "INTERNAL_ERROR - failed to clear policy 'p' in vhost '/' because the operation timed out");
    fx_stop(&fx);
}
END_TEST

/* Nodes start with different definitions: the first seed committed is the
 * cluster's, a later one changes nothing, and every node follows. */
START_TEST(test_seed_once)
{
    fx_t fx;
    bool created;

    fx_start(&fx);
    ck_assert_int_eq(
        wr_users_put(&fx.nodes[2].cfg->auth, "extra", NULL, 0, WR_HASH_SHA256, NULL, 0, &created), WR_OK);
    ck_assert_int_eq(fake_vhost_add(&fx.nodes[2], "local", NULL), WR_OK);
    /* A change before the seed is kept: the state's entries win over the seed's. */
    assert_ok(run(&fx, 1, defs("user.put", "", "{s:s,s:[s]}", "name", "early", "tags", "x")));
    wr_meta_leader_changed(fx.nodes[1].meta, "n1"); /* a follower's view: no seed from n2 */
    seed_by(&fx, 0);
    seed_by(&fx, 2); /* too late: changes nothing */
    for (int i = 0; i < NODES; i++) {
        ck_assert_ptr_null(wr_users_find(&fx.nodes[i].cfg->auth, "extra", 5));
        ck_assert_ptr_nonnull(wr_users_find(&fx.nodes[i].cfg->auth, "early", 5));
        ck_assert_ptr_nonnull(wr_users_find(&fx.nodes[i].cfg->auth, "guest", 5));
        ck_assert_ptr_nonnull(perm_on(&fx.nodes[i], "guest", "/"));
        ck_assert_ptr_null(wr_map_get(fx.nodes[i].vhosts, WR_BYTES_LIT("local")));
    }
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

/* A node that missed the changes installs a snapshot: its vhosts, users,
 * permissions and policies become the group's; other versions are refused. */
START_TEST(test_snapshot_defs)
{
    fx_t fx;
    wr_buf_t b = {0};
    node_t lag;
    char *want, *got;
    bool created;
    static const char v1[] = "{\"/\":{\"exchanges\":{},\"queues\":{},\"bindings\":{}}}";
    static const char v3[] = "{\"version\":3}";

    fx_start(&fx);
    seed_by(&fx, 0);
    assert_ok(run(&fx, 0, defs("vhost.add", "v", "{s:{}}", "settings")));
    assert_ok(run(&fx, 0,
                  defs("policy.set", "v", "{s:s,s:s,s:i,s:{s:i}}", "name", "p", "pattern", ".", "priority", 0,
                       "definition", "max-length", 1)));
    assert_ok(run(&fx, 0, defs("user.delete", "", "{s:s}", "name", "guest")));
    node_start(&fx, &lag, "lag");
    ck_assert_int_eq(wr_users_put(&lag.cfg->auth, "stale", NULL, 0, WR_HASH_SHA256, NULL, 0, &created),
                     WR_OK);
    ck_assert_int_eq(wr_meta_snapshot_save(fx.nodes[0].meta, &b), WR_OK);
    ck_assert_int_eq(wr_meta_snapshot_load(lag.meta, b.data, b.len), WR_OK);
    ck_assert_ptr_null(wr_users_find(&lag.cfg->auth, "stale", 5));
    ck_assert_ptr_null(wr_users_find(&lag.cfg->auth, "guest", 5));
    ck_assert_ptr_nonnull(wr_policy_get(lag.policies, "v", "p"));
    want = snapshot(&fx.nodes[0]);
    got = snapshot(&lag);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
    ck_assert_int_eq(wr_meta_snapshot_load(lag.meta, (const uint8_t *)v3, strlen(v3)), WR_ESYNTAX);
    ck_assert(wr_meta_seeded(lag.meta));
    /* A version 1 snapshot (before the definitions): topology, not seeded. */
    ck_assert_int_eq(wr_meta_snapshot_load(lag.meta, (const uint8_t *)v1, strlen(v1)), WR_OK);
    ck_assert(!wr_meta_seeded(lag.meta));
    ck_assert_ptr_nonnull(wr_policy_get(lag.policies, "v", "p")); /* live definitions untouched */
    wr_buf_free(&b);
    node_stop(&lag);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- quorum queue records */

/* A quorum queue's declaration with the members its declaring node placed (meta.c does with a quorum
 * service). */
static json_t *qq_decl(const char *name, const char *members)
{
    json_t *cmd = qdecl(name, true, WR_BYTES_LIT(""), "n1");

    json_object_set_new(json_object_get(cmd, "entry"), "members", json_loads(members, 0, NULL));
    return cmd;
}

static json_t *qq_op(const char *op, const char *name, const char *node)
{
    return wr_meta_cmd_quorum(op, "/", wr_bytes_str(name), node);
}

/* Every node's record of name: its members in order, "+" after a joining one, "-" after a leaving one. */
static void assert_record(fx_t *fx, const char *name, const char *want)
{
    for (int i = 0; i < NODES; i++) {
        wr_meta_qq_t q;
        char got[128] = "";

        ck_assert(wr_meta_quorum_get(fx->nodes[i].meta, "/", wr_bytes_str(name), &q));
        for (size_t k = 0; k < q.n; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s%s", k ? "," : "", q.members[k],
                     q.role[k] == WR_QUORUM_JOINING   ? "+"
                     : q.role[k] == WR_QUORUM_LEAVING ? "-"
                                                      : "");
        ck_assert_str_eq(got, want);
    }
}

/* The record changes of add, delete, done and leader, the same on every node, with their refusals. */
START_TEST(test_quorum_record)
{
    fx_t fx;

    fx_start(&fx);
    assert_ok(run(&fx, 0, qq_decl("qq", "[\"n1\", \"n2\"]")));
    assert_ok(run(&fx, 1, qq_op("quorum.member.add", "qq", "n3")));
    assert_record(&fx, "qq", "n1,n2,n3+");
    assert_err(run(&fx, 0, qq_op("quorum.leader", "qq", "n3")), WR_AMQP_PRECONDITION_FAILED,
               "PRECONDITION_FAILED - not_member");
    assert_ok(run(&fx, 0, qq_op("quorum.member.add", "qq", "n2"))); /* a member already: nothing */
    assert_ok(run(&fx, 2, qq_op("quorum.member.done", "qq", "n3")));
    assert_record(&fx, "qq", "n1,n2,n3");
    assert_ok(run(&fx, 0, qq_op("quorum.leader", "qq", "n3")));
    assert_record(&fx, "qq", "n3,n1,n2");
    assert_ok(run(&fx, 0, qq_op("quorum.member.delete", "qq", "n3")));
    assert_ok(run(&fx, 0, qq_op("quorum.member.delete", "qq", "n1")));
    assert_record(&fx, "qq", "n2,n3-,n1-");
    assert_err(run(&fx, 1, qq_op("quorum.member.delete", "qq", "n2")), WR_AMQP_PRECONDITION_FAILED,
               "PRECONDITION_FAILED - last_node");
    assert_ok(run(&fx, 0, qq_op("quorum.member.delete", "qq", "n9"))); /* not a member: nothing */
    assert_ok(run(&fx, 1, qq_op("quorum.member.done", "qq", "n3")));
    assert_ok(run(&fx, 1, qq_op("quorum.member.done", "qq", "n1")));
    assert_ok(run(&fx, 1, qq_op("quorum.member.done", "qq", "n1"))); /* again: nothing */
    assert_record(&fx, "qq", "n2");
    assert_err(run(&fx, 0, qq_op("quorum.member.add", "nope", "n2")), WR_AMQP_NOT_FOUND,
               "NOT_FOUND - no queue 'nope' in vhost '/'");
    assert_ok(run(&fx, 0, qdecl("classic", true, WR_BYTES_LIT(""), "n1")));
    assert_err(run(&fx, 0, qq_op("quorum.member.add", "classic", "n2")), WR_AMQP_PRECONDITION_FAILED,
               "PRECONDITION_FAILED - classic_queue_not_supported");
    assert_converged(&fx);
    fx_stop(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("meta");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_exchange_everywhere);
    tcase_add_test(tc, test_queue_lives_on_its_home);
    tcase_add_test(tc, test_bindings);
    tcase_add_test(tc, test_auto_delete_cascade);
    tcase_add_test(tc, test_home_deletion_propagates);
    tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof(malformed_cases) / sizeof(malformed_cases[0])));
    tcase_add_test(tc, test_no_majority);
    tcase_add_test(tc, test_cancelled_reply_dropped);
    tcase_add_test(tc, test_snapshot_install_reconciles);
    tcase_add_test(tc, test_defs_everywhere);
    tcase_add_test(tc, test_defs_errors);
    tcase_add_test(tc, test_seed_once);
    tcase_add_test(tc, test_snapshot_defs);
    tcase_add_test(tc, test_quorum_record);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
