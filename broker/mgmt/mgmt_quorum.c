/* SPDX-License-Identifier: MIT */
/*
 * Quorum queue operations over the management API (mgmt_quorum.h). Every
 * change is a command of the metadata group about the queue's record
 * (broker/cluster/meta_quorum.h); the queue's Raft group follows it, its
 * leader making the membership change and handing leadership to the first
 * member. RabbitMQ's refusals: 404 for an unknown queue, 503 with its reason
 * atom (classic_queue_not_supported, node_not_running, last_node, timeout).
 */
#include "broker/mgmt/mgmt_quorum.h"

#include <event2/event.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/link.h"
#include "broker/cluster/meta_quorum.h"
#include "broker/cluster/quorum.h"
#include "broker/mgmt/mgmt_meta.h"
#include "core/status.h"
#include "protocol/constants.h"

static const char *self_name(const wr_mgmt_req_t *r)
{
    return r->env->cfg->cluster->node;
}

static bool running(const wr_mgmt_req_t *r, const char *node)
{
    return strcmp(node, self_name(r)) == 0 || wr_peer_up(r->env->peers, node);
}

static bool admin(wr_mgmt_req_t *r)
{
    if (wr_mgmt_has_tag(r->account, "administrator"))
        return true;
    wr_mgmt_error(r, 401, "not_authorised", "Not administrator user");
    return false;
}

static void unavailable(wr_mgmt_req_t *r, const char *why)
{
    wr_mgmt_error(r, 503, "service_unavailable", "%s", why);
}

/* The record of the queue at seg[2] (vhost), seg[3] (name); false after replying. */
static bool record(wr_mgmt_req_t *r, wr_meta_qq_t *qq)
{
    wr_vhost_t *vh = wr_mgmt_vhost(r, 2);
    wr_meta_t *m = wr_mgmt_meta(r);

    if (vh == NULL)
        return false;
    if (m != NULL && wr_meta_quorum_get(m, r->seg[2], wr_bytes_str(r->seg[3]), qq) && qq->n > 0)
        return true;
    if (wr_vhost_queue(vh, wr_bytes_str(r->seg[3])) != NULL)
        unavailable(r, "classic_queue_not_supported");
    else
        wr_mgmt_not_found(r);
    return false;
}

/* The body's "node" into buf; NULL after replying 400 (RabbitMQ's words). */
static const char *body_node(wr_mgmt_req_t *r, char *buf, size_t n)
{
    json_t *b = wr_mgmt_body(r);
    const char *node = json_string_value(json_object_get(b, "node"));

    if (b != NULL && node == NULL)
        wr_mgmt_error(r, 400, "bad_request", "[{key_missing,node}]");
    else if (node != NULL)
        snprintf(buf, n, "%s", node);
    json_decref(b);
    return node != NULL ? buf : NULL;
}

static int member_at(const wr_meta_qq_t *qq, const char *node)
{
    for (size_t i = 0; i < qq->n; i++)
        if (strcmp(qq->members[i], node) == 0)
            return (int)i;
    return -1;
}

/* ---------------------------------------------------------------- status */

static int status_at(const wr_rgroup_status_t *st, const char *node)
{
    for (size_t i = 0; i < st->n_members; i++)
        if (strcmp(st->members[i], node) == 0)
            return (int)i;
    return -1;
}

static const char *raft_state(const wr_mgmt_req_t *r, const wr_rgroup_status_t *st, const char *node)
{
    if (st != NULL && strcmp(node, self_name(r)) == 0)
        return st->role;
    if (!running(r, node))
        return "noproc";
    if (st == NULL)
        return "";
    return st->leader != NULL && strcmp(st->leader, node) == 0 ? "leader" : "follower";
}

/* This member's own figures, and on the leader each member's acknowledged index and lag. */
static void figures(const wr_mgmt_req_t *r, json_t *row, const wr_rgroup_status_t *st, const char *node)
{
    int at = status_at(st, node);

    if (strcmp(node, self_name(r)) == 0)
        json_object_update_new(row, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "Last Log Index",
                                              (json_int_t)st->last_index, "Last Applied",
                                              (json_int_t)st->applied, "Commit Index", (json_int_t)st->commit,
                                              "Snapshot Index", (json_int_t)st->snapshot_index, "Term",
                                              (json_int_t)st->term, "Elections", (json_int_t)st->elections));
    if (at >= 0 && strcmp(st->role, "leader") == 0)
        json_object_update_new(row, json_pack("{s:I,s:I}", "Match Index", (json_int_t)st->match[at], "Lag",
                                              (json_int_t)(st->last_index - st->match[at])));
}

/* RabbitMQ's row of a member ("" for what this node does not know), with warren's Elections, Match Index,
 * Lag. */
static json_t *status_row(const wr_mgmt_req_t *r, const wr_meta_qq_t *qq, size_t i,
                          const wr_rgroup_status_t *st)
{
    const char *node = qq->members[i];
    int at = st != NULL ? status_at(st, node) : -1;
    bool voter = at >= 0 ? st->voter[at] : qq->role[i] != WR_QUORUM_JOINING;
    json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Node Name", node, "Raft State",
                            raft_state(r, st, node), "Membership", voter ? "voter" : "promotable",
                            "Last Log Index", "", "Last Applied", "", "Commit Index", "", "Snapshot Index",
                            "", "Term", "", "Elections", "", "Match Index", "", "Lag", "");

    if (row != NULL && st != NULL)
        figures(r, row, st, node);
    return row;
}

static void status(wr_mgmt_req_t *r)
{
    wr_meta_qq_t qq;
    wr_rgroup_status_t st;
    wr_vhost_t *vh;
    wr_queue_t *q;
    json_t *rows;
    bool member;

    if (!record(r, &qq))
        return;
    vh = wr_map_get(r->env->vhosts, wr_bytes_str(r->seg[2]));
    q = wr_vhost_queue(vh, qq.name);
    member = q != NULL && wr_quorum_queue_status(q, &st);
    rows = json_array();
    for (size_t i = 0; rows != NULL && i < qq.n; i++)
        json_array_append_new(rows, status_row(r, &qq, i, member ? &st : NULL));
    wr_mgmt_reply(r, 200, rows);
}

/* ---------------------------------------------------------------- changes */

/* POST .../leader/transfer {"node"}: the node goes first in the record; the leader hands over at its next
 * tick. */
static void transfer(wr_mgmt_req_t *r)
{
    char buf[256];
    const char *node;
    wr_meta_qq_t qq;
    int at;

    if (!admin(r) || !record(r, &qq) || (node = body_node(r, buf, sizeof(buf))) == NULL)
        return;
    at = member_at(&qq, node);
    if (at < 0 || qq.role[at] != WR_QUORUM_VOTER)
        wr_mgmt_error(r, 400, "bad_request", "node '%s' is not a member of quorum queue '%.*s' in vhost '%s'",
                      node, (int)qq.name.len, (const char *)qq.name.data, qq.vhost);
    else if (!running(r, node))
        unavailable(r, "node_not_running");
    else
        wr_mgmt_meta_propose(r, wr_meta_cmd_quorum("quorum.leader", qq.vhost, qq.name, node), 204, NULL);
}

/* ---------------------------------------------------------------- members */

/* How long a member change may take, as RabbitMQ's replica operations; polled every POLL_MS. */
#define CHANGE_MS 30000
#define POLL_MS   100

/* An add or delete waiting for the record to say it is done; the request's fields a reply uses are copied. */
typedef struct {
    wr_mgmt_req_t r; /* mgmt, env, req and method only */
    bool orphan;     /* the client left: nothing to answer */
    bool add;
    unsigned polls;
    struct event *ev;
    char *vhost;
    char node[256];
    size_t name_len;
    uint8_t name[WR_META_NAME_MAX];
} change_t;

static void change_free(change_t *c)
{
    if (c->ev != NULL)
        event_free(c->ev);
    free(c->vhost);
    free(c);
}

static void on_closed(void *arg)
{
    ((change_t *)arg)->orphan = true;
}

/* Replies (unless the client left) and frees c. */
static void change_end(change_t *c, int status, const char *why)
{
    if (!c->orphan) {
        wr_mgmt_watch(&c->r, NULL, NULL);
        if (status == 204)
            wr_mgmt_reply(&c->r, 204, NULL);
        else if (status == 404)
            wr_mgmt_not_found(&c->r);
        else
            unavailable(&c->r, why);
    }
    change_free(c);
}

/* The record shows the change made: an added node a voter, a deleted one gone (or the queue gone). */
static bool change_made(const change_t *c)
{
    wr_meta_qq_t qq;
    int at;

    if (!wr_meta_quorum_get(c->r.env->meta, c->vhost, (wr_bytes_t){c->name, c->name_len}, &qq))
        return true;
    at = member_at(&qq, c->node);
    return c->add ? at >= 0 && qq.role[at] == WR_QUORUM_VOTER : at < 0;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    change_t *c = arg;
    struct timeval tv = {0, POLL_MS * 1000};

    if (c->orphan)
        change_free(c);
    else if (change_made(c))
        change_end(c, 204, NULL);
    else if (++c->polls * POLL_MS >= CHANGE_MS)
        change_end(c, 503, "timeout");
    else
        evtimer_add(c->ev, &tv);
}

static void on_recorded(void *ud, const wr_meta_result_t *res)
{
    change_t *c = ud;
    const char *sep = strstr(res->err.text, " - ");

    if (c->orphan)
        change_free(c);
    else if (res->err.code == WR_AMQP_NOT_FOUND)
        change_end(c, 404, NULL);
    else if (res->err.code != 0)
        change_end(c, 503,
                   res->err.code == WR_AMQP_INTERNAL_ERROR ? "timeout"
                   : sep != NULL                           ? sep + 3
                                                           : res->err.text);
    else
        on_poll(-1, 0, c);
}

/* Proposes the record change and answers once the group has followed it. */
static void change_start(wr_mgmt_req_t *r, const wr_meta_qq_t *qq, const char *node, bool add)
{
    change_t *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->vhost = strdup(qq->vhost)) == NULL ||
        (c->ev = evtimer_new(r->env->base, on_poll, c)) == NULL) {
        if (c != NULL)
            change_free(c);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    c->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    c->add = add;
    snprintf(c->node, sizeof(c->node), "%s", node);
    memcpy(c->name, qq->name.data, qq->name.len);
    c->name_len = qq->name.len;
    if (wr_meta_submit(
            r->env->meta,
            wr_meta_cmd_quorum(add ? "quorum.member.add" : "quorum.member.delete", qq->vhost, qq->name, node),
            on_recorded, c) == NULL) {
        change_free(c);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    r->replied = true;
    wr_mgmt_watch(r, on_closed, c);
}

/* A member of the cluster (the metadata group's) that runs. */
static bool cluster_node_up(const wr_mgmt_req_t *r, const char *node)
{
    wr_rgroup_status_t st;

    wr_rgroup_status(r->env->meta_group, &st);
    return status_at(&st, node) >= 0 && running(r, node);
}

/* Whether node is the last member that stays. */
static bool last_member(const wr_meta_qq_t *qq, const char *node)
{
    for (size_t i = 0; i < qq->n; i++)
        if (qq->role[i] != WR_QUORUM_LEAVING && strcmp(qq->members[i], node) != 0)
            return false;
    return true;
}

/* POST .../replicas/add {"node"}: RabbitMQ's add_member, idempotent; 204 once the node is a voter. */
static void add_member(wr_mgmt_req_t *r)
{
    char buf[256];
    const char *node;
    wr_meta_qq_t qq;

    if (!admin(r) || !record(r, &qq) || (node = body_node(r, buf, sizeof(buf))) == NULL)
        return;
    if (!cluster_node_up(r, node))
        unavailable(r, "node_not_running");
    else if (member_at(&qq, node) >= 0)
        wr_mgmt_reply(r, 204, NULL);
    else
        change_start(r, &qq, node, true);
}

/* DELETE .../replicas/delete {"node"}: RabbitMQ's delete_member, idempotent; 204 once the node is out. */
static void delete_member(wr_mgmt_req_t *r)
{
    char buf[256];
    const char *node;
    wr_meta_qq_t qq;

    if (!admin(r) || !record(r, &qq) || (node = body_node(r, buf, sizeof(buf))) == NULL)
        return;
    if (member_at(&qq, node) < 0)
        wr_mgmt_reply(r, 204, NULL);
    else if (last_member(&qq, node))
        unavailable(r, "last_node");
    else
        change_start(r, &qq, node, false);
}

/* ---------------------------------------------------------------- many queues */

/* A plan over every quorum queue: the commands it makes. */
typedef struct {
    const char *node;
    bool even; /* grow only queues with an even number of members */
    regex_t vre, qre;
    json_t *cmds;
    const wr_mgmt_req_t *r;
    size_t *leaders; /* rebalance: leaders placed per cluster node so far */
} plan_t;

static bool name_matches(const regex_t *re, wr_bytes_t name)
{
    char buf[WR_META_NAME_MAX + 1];

    memcpy(buf, name.data, name.len);
    buf[name.len] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

/* No member change under way: RabbitMQ grows a queue only when its members are stable. */
static bool stable(const wr_meta_qq_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->role[i] != WR_QUORUM_VOTER)
            return false;
    return true;
}

static void plan_add(plan_t *p, const char *op, const wr_meta_qq_t *q, const char *node)
{
    json_array_append_new(p->cmds, wr_meta_cmd_quorum(op, q->vhost, q->name, node));
}

static void grow_one(void *ud, const wr_meta_qq_t *q)
{
    plan_t *p = ud;

    if (member_at(q, p->node) < 0 && q->n < 9 && (!p->even || q->n % 2 == 0) && stable(q) &&
        regexec(&p->vre, q->vhost, 0, NULL, 0) == 0 && name_matches(&p->qre, q->name))
        plan_add(p, "quorum.member.add", q, p->node);
}

static void shrink_one(void *ud, const wr_meta_qq_t *q)
{
    plan_t *p = ud;
    int at = member_at(q, p->node);

    if (at >= 0 && q->role[at] != WR_QUORUM_LEAVING && !last_member(q, p->node))
        plan_add(p, "quorum.member.delete", q, p->node);
}

/* The body's string `key` into *out; false after replying 400 as RabbitMQ. */
static bool body_string(wr_mgmt_req_t *r, const json_t *b, const char *key, const char **out)
{
    if ((*out = json_string_value(json_object_get(b, key))) != NULL)
        return true;
    wr_mgmt_error(r, 400, "bad_request", "[{key_missing,%s}]", key);
    return false;
}

static bool pattern(wr_mgmt_req_t *r, regex_t *re, const char *s)
{
    if (regcomp(re, s, REG_EXTENDED | REG_NOSUB) == 0)
        return true;
    wr_mgmt_error(r, 400, "bad_request", "invalid regular expression '%s'", s);
    return false;
}

/* Grow's body: vhost_pattern, queue_pattern and strategy (all or even); false after replying. */
static bool grow_body(wr_mgmt_req_t *r, const json_t *b, plan_t *p)
{
    const char *vp, *qp, *strategy;

    if (!body_string(r, b, "vhost_pattern", &vp) || !body_string(r, b, "queue_pattern", &qp) ||
        !body_string(r, b, "strategy", &strategy))
        return false;
    if (strcmp(strategy, "all") != 0 && strcmp(strategy, "even") != 0) {
        wr_mgmt_error(r, 400, "bad_request", "strategy must be all or even, not '%s'", strategy);
        return false;
    }
    p->even = strcmp(strategy, "even") == 0;
    if (!pattern(r, &p->vre, vp))
        return false;
    if (pattern(r, &p->qre, qp))
        return true;
    regfree(&p->vre);
    return false;
}

/* POST /api/queues/quorum/replicas/on/NODE/grow: a member on NODE for every matching queue; 204 once
 * recorded. */
static void grow(wr_mgmt_req_t *r)
{
    plan_t p = {.node = r->seg[4], .r = r};
    json_t *b;

    if (!admin(r))
        return;
    if (r->env->meta == NULL || !cluster_node_up(r, p.node)) {
        wr_mgmt_not_found(r);
        return;
    }
    if ((b = wr_mgmt_body(r)) == NULL)
        return;
    if (grow_body(r, b, &p)) {
        p.cmds = json_array();
        wr_meta_quorum_foreach(r->env->meta, grow_one, &p);
        wr_mgmt_meta_propose_all(r, p.cmds, 204);
        regfree(&p.vre);
        regfree(&p.qre);
    }
    json_decref(b);
}

/* DELETE /api/queues/quorum/replicas/on/NODE/shrink: NODE's members go (not a last one); 202 once recorded.
 */
static void shrink(wr_mgmt_req_t *r)
{
    plan_t p = {.node = r->seg[4], .r = r};
    wr_rgroup_status_t st;

    if (!admin(r))
        return;
    if (r->env->meta != NULL)
        wr_rgroup_status(r->env->meta_group, &st);
    if (r->env->meta == NULL || status_at(&st, p.node) < 0) {
        wr_mgmt_not_found(r);
        return;
    }
    p.cmds = json_array();
    wr_meta_quorum_foreach(r->env->meta, shrink_one, &p);
    wr_mgmt_meta_propose_all(r, p.cmds, 202);
}

static int node_index(const wr_mgmt_req_t *r, const char *node)
{
    const wr_cluster_config_t *c = r->env->cfg->cluster;

    for (size_t i = 0; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].name, node) == 0)
            return (int)i;
    return -1;
}

/* The running voter with the fewest leaders placed so far (the current first on a tie) leads q. */
static void rebalance_one(void *ud, const wr_meta_qq_t *q)
{
    plan_t *p = ud;
    int best = -1, best_at = -1;

    for (size_t i = 0; i < q->n; i++) {
        int k = node_index(p->r, q->members[i]);

        if (k >= 0 && q->role[i] == WR_QUORUM_VOTER && running(p->r, q->members[i]) &&
            (best < 0 || p->leaders[k] < p->leaders[best])) {
            best = k;
            best_at = (int)i;
        }
    }
    if (best < 0)
        return;
    p->leaders[best]++;
    if (best_at != 0)
        plan_add(p, "quorum.leader", q, q->members[best_at]);
}

void wr_mgmt_quorum_rebalance(wr_mgmt_req_t *r)
{
    plan_t p = {.r = r};

    if (r->nseg != 2 || strcmp(r->seg[1], "queues") != 0)
        wr_mgmt_not_found(r);
    else if (r->method != WR_MGMT_POST)
        wr_mgmt_not_allowed(r, "POST");
    else if (!admin(r))
        return;
    else if (r->env->meta == NULL)
        wr_mgmt_reply(r, 204, NULL);
    else if ((p.leaders = calloc(r->env->cfg->cluster->n_nodes, sizeof(*p.leaders))) == NULL)
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
    else {
        p.cmds = json_array();
        wr_meta_quorum_foreach(r->env->meta, rebalance_one, &p);
        wr_mgmt_meta_propose_all(r, p.cmds, 204);
        free(p.leaders);
    }
}

/* ---------------------------------------------------------------- routing */

/* The paths under /api/queues/quorum: seg[2..] as words (NULL: any). */
static const struct {
    const char *seg[4];
    wr_mgmt_method_t method;
    const char *allow;
    void (*fn)(wr_mgmt_req_t *r);
} routes[] = {
    {{NULL, NULL, "status", NULL}, WR_MGMT_GET, "GET", status},
    {{NULL, NULL, "leader", "transfer"}, WR_MGMT_POST, "POST", transfer},
    {{NULL, NULL, "replicas", "add"}, WR_MGMT_POST, "POST", add_member},
    {{NULL, NULL, "replicas", "delete"}, WR_MGMT_DELETE, "DELETE", delete_member},
    {{"replicas", "on", NULL, "grow"}, WR_MGMT_POST, "POST", grow},
    {{"replicas", "on", NULL, "shrink"}, WR_MGMT_DELETE, "DELETE", shrink},
};

static bool matches(const wr_mgmt_req_t *r, const char *const *seg)
{
    size_t n = seg[3] != NULL ? 6 : 5;

    if (r->nseg != n)
        return false;
    for (size_t i = 0; i + 2 < n; i++)
        if (seg[i] != NULL && strcmp(r->seg[i + 2], seg[i]) != 0)
            return false;
    return true;
}

bool wr_mgmt_quorum_route(wr_mgmt_req_t *r)
{
    if (r->nseg < 5 || strcmp(r->seg[1], "quorum") != 0)
        return false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!matches(r, routes[i].seg))
            continue;
        if (r->method != routes[i].method)
            wr_mgmt_not_allowed(r, routes[i].allow);
        else
            routes[i].fn(r);
        return true;
    }
    return false;
}
