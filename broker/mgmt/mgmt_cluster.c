/* SPDX-License-Identifier: MIT */
/*
 * /api/cluster (mgmt_cluster.h): the members of the metadata group as this
 * node knows them, and the membership changes, answered once the metadata
 * group has committed them. Every refusal has its own error and reason.
 */
#include "broker/mgmt/mgmt_cluster.h"

#include <stdlib.h>
#include <string.h>

#include "broker/cluster/link.h"
#include "broker/cluster/membership.h"
#include "broker/cluster/raftd.h"
#include "broker/cluster/reports.h"
#include "broker/mgmt/mgmt_conns.h"
#include "core/status.h"

/* A change waiting for its outcome; the request's fields a reply uses are copied. */
typedef struct {
    wr_mgmt_req_t r; /* mgmt, env, req and method only */
    bool orphan;     /* the client left: nothing to answer */
    char node[256];  /* whom the change is about */
} wait_t;

static const char *cluster_name(const wr_mgmt_req_t *r)
{
    return r->env->cfg->cluster->name;
}

static const char *self_name(const wr_mgmt_req_t *r)
{
    return r->env->cfg->cluster->node;
}

static bool configured(const wr_mgmt_req_t *r, const char *node)
{
    const wr_cluster_config_t *c = r->env->cfg->cluster;

    for (size_t i = 0; i < c->n_nodes; i++) {
        if (strcmp(c->nodes[i].name, node) == 0)
            return true;
    }
    return false;
}

static bool is_member(const wr_mgmt_req_t *r, const char *node)
{
    wr_rgroup_status_t st;

    wr_rgroup_status(r->env->meta_group, &st);
    for (size_t i = 0; i < st.n_members; i++) {
        if (strcmp(st.members[i], node) == 0)
            return true;
    }
    return false;
}

static bool running(const wr_mgmt_req_t *r, const char *node)
{
    return strcmp(node, self_name(r)) == 0 || wr_peer_up(r->env->peers, node);
}

/* ---------------------------------------------------------------- status */

static json_t *member_json(const wr_mgmt_req_t *r, const char *name, bool voter)
{
    return json_pack("{s:s,s:b,s:b,s:b}", "name", name, "voter", voter, "running", running(r, name),
                     "this_node", strcmp(name, self_name(r)) == 0);
}

static void status(wr_mgmt_req_t *r)
{
    wr_rgroup_status_t st;
    json_t *members = json_array();

    wr_rgroup_status(r->env->meta_group, &st);
    for (size_t i = 0; i < st.n_members && members; i++)
        json_array_append_new(members, member_json(r, st.members[i], st.voter[i]));
    wr_mgmt_reply(r, 200,
                  json_pack("{s:s,s:s,s:b,s:o?,s:o}", "cluster_name", cluster_name(r), "node", self_name(r),
                            "member", is_member(r, self_name(r)), "leader",
                            st.leader ? json_string(st.leader) : json_null(), "members", members));
}

/* ---------------------------------------------------------------- changes */

static void on_closed(void *arg)
{
    ((wait_t *)arg)->orphan = true;
}

/* A failed change's reply, by the metadata group's status. */
static void reply_failure(wait_t *w, int status)
{
    const char *name = cluster_name(&w->r);

    if (status == WR_EEXIST)
        wr_mgmt_error(&w->r, 409, "already_member", "node '%s' is already a member of cluster '%s'", w->node,
                      name);
    else if (status == WR_EUNKNOWN)
        wr_mgmt_error(&w->r, 409, "not_member", "node '%s' is not a member of cluster '%s'", w->node, name);
    else if (status == WR_ESYNTAX)
        wr_mgmt_error(&w->r, 409, "last_member", "node '%s' is the last member of cluster '%s'", w->node,
                      name);
    else if (status == WR_ENOENT)
        wr_mgmt_error(
            &w->r, 503, "no_quorum",
            "cluster '%s' has no leader: a majority of its members must be running, and one elected", name);
    else if (status == WR_ETIMEDOUT)
        wr_mgmt_error(&w->r, 503, "timeout", "the change did not complete within %d s; it may still happen",
                      WR_RGROUP_CHANGE_TIMEOUT_MS / 1000);
    else if (status == WR_EIO)
        wr_mgmt_error(&w->r, 503, "unreachable", "node '%s' is not reachable", w->node);
    else
        wr_mgmt_error(&w->r, 500, "internal_error", "out of memory");
}

static void on_done(void *ud, int status)
{
    wait_t *w = ud;

    if (!w->orphan) {
        wr_mgmt_watch(&w->r, NULL, NULL);
        if (status == WR_OK)
            wr_mgmt_reply(&w->r, 204, NULL);
        else
            reply_failure(w, status);
    }
    free(w);
}

static wait_t *wait_new(wr_mgmt_req_t *r, const char *node)
{
    wait_t *w = calloc(1, sizeof(*w));

    if (!w) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return NULL;
    }
    w->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    snprintf(w->node, sizeof(w->node), "%s", node);
    return w;
}

/* Starts a change (rc from membership.h); done or an immediate failure replies. */
static void started(wr_mgmt_req_t *r, wait_t *w, int rc)
{
    if (rc == WR_OK) {
        r->replied = true;
        wr_mgmt_watch(r, on_closed, w);
        return;
    }
    reply_failure(w, rc);
    r->replied = true;
    free(w);
}

static void join(wr_mgmt_req_t *r)
{
    json_t *body = wr_mgmt_body(r);
    const char *via = body ? json_string_value(json_object_get(body, "node")) : NULL;
    wait_t *w;

    if (body && !via)
        wr_mgmt_error(r, 400, "bad_request", "give the member to join through: {\"node\": NAME}");
    else if (via && !configured(r, via))
        wr_mgmt_error(r, 404, "not_found", "unknown node '%s': it is not one of cluster.nodes", via);
    else if (via && strcmp(via, self_name(r)) == 0)
        wr_mgmt_error(r, 400, "bad_request", "a node joins through another node, not itself");
    else if (via && is_member(r, self_name(r)))
        wr_mgmt_error(r, 409, "already_member", "node '%s' is already a member of cluster '%s'", self_name(r),
                      cluster_name(r));
    else if (via && (w = wait_new(r, via)) != NULL)
        started(r, w, wr_membership_join(r->env->membership, via, on_done, w));
    json_decref(body);
}

/* Removes node (leave: this node; forget: a stopped one). */
static void remove_member(wr_mgmt_req_t *r, const char *node)
{
    wait_t *w;

    if (!configured(r, node))
        wr_mgmt_error(r, 404, "not_found", "unknown node '%s': it is not one of cluster.nodes", node);
    else if (!is_member(r, node))
        wr_mgmt_error(r, 404, "not_member", "node '%s' is not a member of cluster '%s'", node,
                      cluster_name(r));
    else if ((w = wait_new(r, node)) != NULL)
        started(r, w, wr_membership_remove(r->env->membership, node, on_done, w));
}

static void forget(wr_mgmt_req_t *r, const char *node)
{
    if (strcmp(node, self_name(r)) == 0)
        wr_mgmt_error(r, 400, "bad_request", "node '%s' is this node: use POST /api/cluster/leave", node);
    else if (configured(r, node) && running(r, node))
        wr_mgmt_error(r, 409, "running",
                      "node '%s' is running: stop it first, or make it leave (POST /api/cluster/leave on it)",
                      node);
    else
        remove_member(r, node);
}

/* ---------------------------------------------------------------- the peers' lists */

typedef void (*peer_fn)(const wr_mgmt_req_t *r, json_t *doc, void *arg);

/* f(r, lists, arg) for the last lists of each peer whose link is up. */
static void foreach_peer(const wr_mgmt_req_t *r, peer_fn f, void *arg)
{
    wr_peer_status_t st;
    wr_bytes_t b;
    json_t *doc;

    for (size_t i = 0; r->env->reports && i < wr_peer_count(r->env->peers); i++) {
        wr_peer_status(r->env->peers, i, &st);
        if (!st.up || !wr_reports_lists(r->env->reports, st.name, &b))
            continue;
        doc = json_loadb((const char *)b.data, b.len, 0, NULL);
        if (json_is_object(doc))
            f(r, doc, arg);
        json_decref(doc);
    }
}

typedef struct {
    json_t *arr;
    const char *list, *only;
} add_ctx_t;

static void add_items(const wr_mgmt_req_t *r, json_t *doc, void *arg)
{
    const add_ctx_t *x = arg;
    json_t *item;
    size_t i;

    json_array_foreach(json_object_get(doc, x->list), i, item)
    {
        const char *user = json_string_value(json_object_get(item, "user"));
        const char *name = json_string_value(json_object_get(item, "name"));

        if ((wr_mgmt_sees_all(r) || (user && strcmp(user, r->user) == 0)) &&
            (!x->only || (name && strcmp(name, x->only) == 0)))
            json_array_append(x->arr, item);
    }
}

static void add_all(const wr_mgmt_req_t *r, json_t *doc, void *arg)
{
    const add_ctx_t *x = arg;

    json_array_extend(x->arr, json_object_get(doc, x->list));
}

void wr_mgmt_cluster_peer_items(const wr_mgmt_req_t *r, json_t *arr, const char *list)
{
    add_ctx_t x = {arr, list, NULL};

    foreach_peer(r, add_all, &x);
}

void wr_mgmt_cluster_add_peers(const wr_mgmt_req_t *r, json_t *arr, const char *list, const char *only)
{
    add_ctx_t x = {arr, list, only};

    foreach_peer(r, add_items, &x);
}

/* body[obj][key] += from[obj][key], when both are integers. */
static void add_figure(json_t *body, const char *obj, const char *key, json_t *from)
{
    json_t *v = json_object_get(json_object_get(body, obj), key);
    json_t *add = json_object_get(json_object_get(from, obj), key);

    if (json_is_integer(v) && json_is_integer(add))
        json_integer_set(v, json_integer_value(v) + json_integer_value(add));
}

static void add_overview(const wr_mgmt_req_t *r, json_t *doc, void *arg)
{
    static const char *const figures[][2] = {
        {"object_totals", "connections"},   {"object_totals", "channels"},
        {"object_totals", "consumers"},     {"queue_totals", "messages"},
        {"queue_totals", "messages_ready"}, {"queue_totals", "messages_unacknowledged"}};
    json_t *body = arg, *listeners = json_object_get(doc, "listeners");

    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++)
        add_figure(body, figures[i][0], figures[i][1], doc);
    if (json_is_array(listeners))
        json_array_extend(json_object_get(body, "listeners"), listeners);
}

void wr_mgmt_cluster_overview(const wr_mgmt_req_t *r, json_t *body)
{
    json_t *consumers = json_object_get(json_object_get(body, "object_totals"), "consumers");

    if (!r->env->peers)
        return;
    /* The consumers of this node's channels: a queue here may count other nodes' too. */
    json_integer_set(consumers, (json_int_t)wr_mgmt_conns_consumer_count(r->env));
    foreach_peer(r, add_overview, body);
}

typedef struct {
    const char *section, *name;
    int64_t n;
} usage_ctx_t;

static void add_usage(const wr_mgmt_req_t *r, json_t *doc, void *arg)
{
    usage_ctx_t *x = arg;

    x->n += json_integer_value(
        json_object_get(json_object_get(json_object_get(doc, "usage"), x->section), x->name));
}

int64_t wr_mgmt_cluster_usage(const wr_mgmt_env_t *env, const char *section, const char *name)
{
    const wr_mgmt_req_t r = {.env = env};
    usage_ctx_t x = {section, name, 0};

    if (env->peers)
        foreach_peer(&r, add_usage, &x);
    return x.n;
}

/* ---------------------------------------------------------------- routing */

static bool allowed(wr_mgmt_req_t *r)
{
    bool change = r->method != WR_MGMT_GET;

    if (change ? wr_mgmt_has_tag(r->account, "administrator") : wr_mgmt_sees_all(r))
        return true;
    wr_mgmt_error(r, 401, "not_authorised", change ? "Not administrator user" : "Not monitor user");
    return false;
}

void wr_mgmt_cluster(wr_mgmt_req_t *r)
{
    const char *what = r->nseg >= 2 ? r->seg[1] : "";
    bool members = strcmp(what, "members") == 0, one = members && r->nseg == 3;
    bool post = (strcmp(what, "join") == 0 || strcmp(what, "leave") == 0) && r->nseg == 2;

    if (!(members && r->nseg <= 3) && !post)
        wr_mgmt_not_found(r);
    else if (!allowed(r))
        return;
    else if (r->env->membership == NULL)
        wr_mgmt_error(r, 400, "bad_request", "this node is not clustered (no cluster section)");
    else if (post && r->method != WR_MGMT_POST)
        wr_mgmt_not_allowed(r, "POST");
    else if (members && !one && r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, "GET");
    else if (one && r->method != WR_MGMT_DELETE)
        wr_mgmt_not_allowed(r, "DELETE");
    else if (one)
        forget(r, r->seg[2]);
    else if (members)
        status(r);
    else if (strcmp(what, "join") == 0)
        join(r);
    else
        remove_member(r, self_name(r));
}
