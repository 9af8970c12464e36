/* SPDX-License-Identifier: MIT */
/*
 * /api/connections, /api/channels and /api/consumers. Only connections past
 * connection.open are listed (RabbitMQ lists a connection once it is
 * registered). A connection's name is the one conn.c logs, "PEER -> LOCAL",
 * as RabbitMQ names them; a channel is "<connection name> (<number>)". A
 * consumer's owner is its channel, found through an index of every open
 * connection's channels built per request.
 */
#include "broker/mgmt/mgmt_conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "broker/amqp/channel.h"
#include "broker/amqp/conn.h"
#include "broker/cluster/cluster_config.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"
#include "broker/mgmt/mgmt_cluster.h"
#include "broker/mgmt/mgmt_cluster_conns.h"

/* "host:port" or "[v6]:port" of n bytes into host and *port. */
static void split_addr(const char *s, size_t n, char *host, size_t hostlen, int *port)
{
    const char *colon = n > 0 ? memrchr(s, ':', n) : NULL;
    size_t hn = colon ? (size_t)(colon - s) : n;

    *port = colon ? atoi(colon + 1) : 0;
    if (hn >= 2 && s[0] == '[' && s[hn - 1] == ']') {
        s++;
        hn -= 2;
    }
    snprintf(host, hostlen, "%.*s", (int)hn, s);
}

typedef struct {
    char peer_host[64], host[64];
    int peer_port, port;
} addrs_t;

static void conn_addrs(const wr_conn_t *c, addrs_t *a)
{
    const char *name = wr_conn_name(c);
    const char *arrow = strstr(name, " -> ");
    size_t n = arrow ? (size_t)(arrow - name) : strlen(name);

    split_addr(name, n, a->peer_host, sizeof(a->peer_host), &a->peer_port);
    if (arrow)
        split_addr(arrow + 4, strlen(arrow + 4), a->host, sizeof(a->host), &a->port);
    else
        split_addr("", 0, a->host, sizeof(a->host), &a->port);
}

static const char *conn_vhost(const wr_conn_t *c)
{
    return wr_conn_vhost(c) ? wr_vhost_name(wr_conn_vhost(c)) : "";
}

/* The TLS fields RabbitMQ lists, null on a plain connection. The peer
 * certificate's subject, issuer and validity are not reported yet (null). */
static void conn_set_tls(json_t *o, const wr_conn_t *c)
{
    wr_tls_session_t t;
    bool on = wr_conn_tls_session(c, &t);

    json_object_set_new(o, "ssl_protocol", on ? json_string(t.protocol) : json_null());
    json_object_set_new(o, "ssl_key_exchange", on ? json_string(t.key_exchange) : json_null());
    json_object_set_new(o, "ssl_cipher", on ? json_string(t.cipher) : json_null());
    json_object_set_new(o, "ssl_hash", on ? json_string(t.hash) : json_null());
    json_object_set_new(o, "peer_cert_subject", json_null());
    json_object_set_new(o, "peer_cert_issuer", json_null());
    json_object_set_new(o, "peer_cert_validity", json_null());
}

/* What identifies a client: its properties, the connection_name it gave
 * (user_provided_name, only when given, as RabbitMQ), the mechanism. */
static void conn_set_client(json_t *o, const wr_conn_info_t *info)
{
    json_t *props = info->client_properties.len ? wr_mgmt_json_table(info->client_properties) : json_object();
    json_t *name = json_object_get(props, "connection_name");

    if (json_is_string(name))
        json_object_set(o, "user_provided_name", name);
    json_object_set_new(o, "client_properties", props ? props : json_object());
    json_object_set_new(o, "auth_mechanism",
                        info->auth_mechanism ? json_string(info->auth_mechanism) : json_null());
}

static json_t *conn_json(const wr_mgmt_req_t *r, const wr_conn_t *c)
{
    wr_conn_info_t info;
    addrs_t a;
    json_t *o;

    wr_conn_info(c, &info);
    conn_addrs(c, &a);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:b, s:I, s:i, s:I, s:i, s:I, "
                  "s:I, s:I}",
                  "name", wr_conn_name(c), "node", r->node, "type", "network", "state", info.state,
                  "protocol", "AMQP 0-9-1", "user", wr_conn_user(c), "vhost", conn_vhost(c), "host", a.host,
                  "port", a.port, "peer_host", a.peer_host, "peer_port", a.peer_port, "ssl", info.ssl,
                  "channels", (json_int_t)info.channels, "channel_max", info.channel_max, "frame_max",
                  (json_int_t)info.frame_max, "timeout", info.heartbeat, "connected_at",
                  (json_int_t)info.connected_at, "recv_oct", (json_int_t)info.recv_oct, "send_oct",
                  (json_int_t)info.send_oct);
    if (o) {
        conn_set_client(o, &info);
        conn_set_tls(o, c);
    }
    return o;
}

typedef struct {
    const wr_mgmt_req_t *r;
    const wr_conn_t *conn;
    json_t *arr;
    const char *only; /* a channel name */
} chan_ctx_t;

static void channel_name(const wr_conn_t *c, uint16_t number, char *name, size_t len)
{
    snprintf(name, len, "%s (%u)", wr_conn_name(c), number);
}

static void add_channel(void *ud, const wr_channel_t *ch)
{
    chan_ctx_t *x = ud;
    wr_channel_info_t info;
    char name[200];
    addrs_t a;
    json_t *o;

    wr_channel_info(ch, &info);
    channel_name(x->conn, info.number, name, sizeof(name));
    if (x->only && strcmp(x->only, name) != 0)
        return;
    conn_addrs(x->conn, &a);
    o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s, s:s, s:i}, s:I, s:I, s:i, s:i, s:b, s:b, s:s}", "name",
                  name, "number", info.number, "node", x->r->node, "user", wr_conn_user(x->conn), "vhost",
                  conn_vhost(x->conn), "connection_details", "name", wr_conn_name(x->conn), "peer_host",
                  a.peer_host, "peer_port", a.peer_port, "consumer_count", (json_int_t)info.consumers,
                  "messages_unacknowledged", (json_int_t)info.unacked, "prefetch_count", info.prefetch_count,
                  "global_prefetch_count", info.global_prefetch_count, "confirm", info.confirm,
                  "transactional", info.transactional, "state", "running");
    /* warren's: ms since the oldest unacked delivery (docs/MANAGEMENT.md). */
    json_object_set_new(o, "oldest_unacknowledged_age",
                        info.oldest_unacked_age >= 0 ? json_integer(info.oldest_unacked_age) : json_null());
    json_array_append_new(x->arr, o);
}

/* Whether r lists c: an open connection of r's user, or any open one for
 * administrators and monitoring users. */
static bool visible(const wr_mgmt_req_t *r, const wr_conn_t *c)
{
    wr_conn_info_t info;

    wr_conn_info(c, &info);
    return info.open && (wr_mgmt_sees_all(r) || strcmp(wr_conn_user(c), r->user) == 0);
}

/* The visible connection named `name`, or NULL. */
static wr_conn_t *find_conn(const wr_mgmt_req_t *r, const char *name)
{
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, r->env->conns)
    {
        wr_conn_t *c = wr_conn_from_link(pos);

        if (visible(r, c) && strcmp(wr_conn_name(c), name) == 0)
            return c;
    }
    return NULL;
}

/* The channels of c (NULL: of every open connection), sorted by name. */
static json_t *channels_json(const wr_mgmt_req_t *r, const wr_conn_t *c, const char *only)
{
    static const char *const order[] = {"name", NULL};
    chan_ctx_t x = {r, c, json_array(), only};
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, r->env->conns)
    {
        x.conn = wr_conn_from_link(pos);
        if (visible(r, x.conn) && (!c || c == x.conn))
            wr_conn_foreach_channel(x.conn, add_channel, &x);
    }
    if (!c)
        wr_mgmt_cluster_add_peers(r, x.arr, "channels", only);
    wr_mgmt_sort(x.arr, order, false);
    return x.arr;
}

/* Closes c as RabbitMQ's DELETE does: 320 with reason ("" or NULL: RabbitMQ's default text). */
static void conn_close_forced(wr_conn_t *c, const char *reason)
{
    wr_amqp_error_t err;

    wr_amqp_error_set(&err, WR_AMQP_CONNECTION_FORCED, 0, "%s",
                      reason && *reason ? reason : "Closed via management plugin");
    wr_conn_fail(c, &err);
}

int wr_mgmt_conns_by_name(const wr_mgmt_env_t *env, const char *name, const char *reason, json_t **out)
{
    const wr_mgmt_req_t r = {.env = env, .node = env->cfg->cluster ? env->cfg->cluster->node : NULL};
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;

    *out = NULL;
    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        wr_conn_t *c = wr_conn_from_link(pos);

        wr_conn_info(c, &info);
        if (!info.open || strcmp(wr_conn_name(c), name) != 0)
            continue;
        if (reason)
            conn_close_forced(c, reason);
        else if (!(*out = conn_json(&r, c)))
            return WR_ENOMEM;
        return WR_OK;
    }
    return WR_ENOENT;
}

void wr_mgmt_conns_connections(wr_mgmt_req_t *r)
{
    static const char *const order[] = {"name", NULL};
    wr_list_t *pos, *tmp;
    wr_conn_t *c;
    json_t *arr;

    if (r->nseg == 1) {
        if (r->method != WR_MGMT_GET) {
            wr_mgmt_not_allowed(r, "GET");
            return;
        }
        arr = json_array();
        wr_list_foreach_safe(pos, tmp, r->env->conns)
        {
            c = wr_conn_from_link(pos);
            if (visible(r, c))
                json_array_append_new(arr, conn_json(r, c));
        }
        wr_mgmt_cluster_add_peers(r, arr, "connections", NULL);
        wr_mgmt_sort(arr, order, false);
        wr_mgmt_reply(r, 200, arr);
        return;
    }
    c = r->nseg <= 3 ? find_conn(r, r->seg[1]) : NULL;
    if (!c && r->nseg == 2 && (r->method == WR_MGMT_GET || r->method == WR_MGMT_DELETE) &&
        wr_mgmt_forward_conn(r, r->seg[1]))
        return;
    if (!c || (r->nseg == 3 && strcmp(r->seg[2], "channels") != 0)) {
        wr_mgmt_not_found(r);
    } else if (r->nseg == 3) {
        if (r->method == WR_MGMT_GET)
            wr_mgmt_reply(r, 200, channels_json(r, c, NULL));
        else
            wr_mgmt_not_allowed(r, "GET");
    } else if (r->method == WR_MGMT_GET) {
        wr_mgmt_reply(r, 200, conn_json(r, c));
    } else if (r->method == WR_MGMT_DELETE) {
        /* RabbitMQ takes the close reason from an X-Reason header. */
        conn_close_forced(c, evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Reason"));
        wr_mgmt_reply(r, 204, NULL);
    } else {
        wr_mgmt_not_allowed(r, "GET, DELETE");
    }
}

void wr_mgmt_conns_channels(wr_mgmt_req_t *r)
{
    json_t *arr, *one;

    if (!wr_mgmt_get_only(r, r->nseg <= 2))
        return;
    arr = channels_json(r, NULL, r->nseg == 2 ? r->seg[1] : NULL);
    if (r->nseg == 1) {
        wr_mgmt_reply(r, 200, arr);
        return;
    }
    one = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    if (one)
        wr_mgmt_reply(r, 200, one);
    else
        wr_mgmt_not_found(r);
}

json_t *wr_mgmt_conns_all(const wr_mgmt_env_t *env, const char *node, bool channels)
{
    const wr_mgmt_req_t r = {.env = env, .node = node};
    chan_ctx_t x = {&r, NULL, json_array(), NULL};
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;

    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        x.conn = wr_conn_from_link(pos);
        wr_conn_info(x.conn, &info);
        if (info.open && channels)
            wr_conn_foreach_channel(x.conn, add_channel, &x);
        else if (info.open)
            json_array_append_new(x.arr, conn_json(&r, x.conn));
    }
    return x.arr;
}

static void count_consumers(void *ud, const wr_channel_t *ch)
{
    wr_channel_info_t info;

    wr_channel_info(ch, &info);
    *(size_t *)ud += info.consumers;
}

size_t wr_mgmt_conns_consumer_count(const wr_mgmt_env_t *env)
{
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;
    size_t n = 0;

    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        wr_conn_info(wr_conn_from_link(pos), &info);
        if (info.open)
            wr_conn_foreach_channel(wr_conn_from_link(pos), count_consumers, &n);
    }
    return n;
}

void wr_mgmt_conns_totals(const wr_mgmt_env_t *env, size_t *connections, size_t *channels)
{
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;

    *connections = *channels = 0;
    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        wr_conn_info(wr_conn_from_link(pos), &info);
        if (info.open) {
            (*connections)++;
            *channels += info.channels;
        }
    }
}

/* usage[key][name] += n (the object created as needed). */
static void usage_add(json_t *usage, const char *key, const char *name, json_int_t n)
{
    json_t *o = json_object_get(usage, key), *v = json_object_get(o, name);

    if (v)
        json_integer_set(v, json_integer_value(v) + n);
    else
        json_object_set_new(o, name, json_integer(n));
}

json_t *wr_mgmt_conns_usage(const wr_mgmt_env_t *env)
{
    json_t *usage = json_pack("{s:{},s:{},s:{}}", "vhost_connections", "user_connections", "user_channels");
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;

    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        const wr_conn_t *c = wr_conn_from_link(pos);

        wr_conn_info(c, &info);
        if (!usage || !info.open)
            continue;
        usage_add(usage, "vhost_connections", conn_vhost(c), 1);
        usage_add(usage, "user_connections", wr_conn_user(c), 1);
        usage_add(usage, "user_channels", wr_conn_user(c), info.channels);
    }
    return usage;
}

/* ---------------------------------------------------------------- consumers */

typedef struct {
    const wr_channel_t *ch;
    const wr_conn_t *conn;
    uint16_t number;
} chan_ref_t;

/* Every channel of the open connections, sorted by address (out of memory,
 * some are missing: their consumers show empty channel_details). */
typedef struct {
    chan_ref_t *refs;
    size_t n, cap;
} chan_index_t;

typedef struct {
    chan_index_t *idx;
    const wr_conn_t *conn;
} index_ctx_t;

static void index_channel(void *ud, const wr_channel_t *ch)
{
    index_ctx_t *x = ud;
    chan_index_t *idx = x->idx;
    wr_channel_info_t info;

    if (idx->n == idx->cap) {
        size_t cap = idx->cap ? idx->cap * 2 : 16;
        chan_ref_t *grown = realloc(idx->refs, cap * sizeof(*grown));

        if (!grown)
            return;
        idx->refs = grown;
        idx->cap = cap;
    }
    wr_channel_info(ch, &info);
    idx->refs[idx->n++] = (chan_ref_t){ch, x->conn, info.number};
}

static int compare_refs(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const chan_ref_t *)a)->ch, y = (uintptr_t)((const chan_ref_t *)b)->ch;

    return x < y ? -1 : x > y;
}

static void index_build(const wr_mgmt_env_t *env, chan_index_t *idx)
{
    wr_list_t *pos, *tmp;
    wr_conn_info_t info;

    *idx = (chan_index_t){NULL, 0, 0};
    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        index_ctx_t x = {idx, wr_conn_from_link(pos)};

        wr_conn_info(x.conn, &info);
        if (info.open)
            wr_conn_foreach_channel(x.conn, index_channel, &x);
    }
    if (idx->n > 1)
        qsort(idx->refs, idx->n, sizeof(*idx->refs), compare_refs);
}

static const chan_ref_t *index_find(const chan_index_t *idx, const void *ch)
{
    chan_ref_t key = {ch, NULL, 0};

    return idx->n ? bsearch(&key, idx->refs, idx->n, sizeof(key), compare_refs) : NULL;
}

typedef struct {
    const wr_mgmt_req_t *r;
    const chan_index_t *idx;
    const char *vhost;
    const wr_queue_t *q;
    json_t *arr;
} consumers_ctx_t;

static json_t *channel_details(const wr_mgmt_req_t *r, const chan_ref_t *ref)
{
    char name[200];
    addrs_t a;

    if (!ref)
        return json_object();
    channel_name(ref->conn, ref->number, name, sizeof(name));
    conn_addrs(ref->conn, &a);
    return json_pack("{s:s, s:i, s:s, s:s, s:i, s:s, s:s}", "name", name, "number", ref->number,
                     "connection_name", wr_conn_name(ref->conn), "peer_host", a.peer_host, "peer_port",
                     a.peer_port, "user", wr_conn_user(ref->conn), "node", r->node);
}

/* One consumer as RabbitMQ's /api/consumers shows it. Of a single active
 * consumer queue's consumers, one is "single_active", the others "waiting". */
static void add_consumer(void *ud, const wr_consumer_t *c)
{
    consumers_ctx_t *x = ud;
    bool sac = wr_queue_opts(x->q)->single_active;
    bool active = !sac || wr_queue_active_consumer(x->q) == c;
    const chan_ref_t *ref = index_find(x->idx, c->owner);
    json_t *args;

    /* In a cluster a consumer with no channel here stands for another node's, which that node lists. */
    if (!ref && x->r->env->peers)
        return;
    args = wr_mgmt_json_table(c->args);
    json_array_append_new(x->arr,
                          json_pack("{s:o, s:{s:o, s:s}, s:o, s:b, s:i, s:b, s:o, s:b, s:s}", "consumer_tag",
                                    wr_mgmt_json_bytes(c->tag), "queue", "name",
                                    wr_mgmt_json_bytes(wr_queue_name(x->q)), "vhost", x->vhost,
                                    "channel_details", channel_details(x->r, ref), "ack_required", !c->no_ack,
                                    "prefetch_count", c->prefetch, "exclusive", c->exclusive, "arguments",
                                    args, "active", active, "activity_status",
                                    !sac     ? "up"
                                    : active ? "single_active"
                                             : "waiting"));
}

json_t *wr_mgmt_conns_queue_consumers(const wr_mgmt_req_t *r, const wr_vhost_t *vh, const wr_queue_t *q)
{
    chan_index_t idx;
    consumers_ctx_t x = {r, &idx, wr_vhost_name(vh), q, json_array()};

    index_build(r->env, &idx);
    if (x.arr)
        wr_queue_foreach_consumer(q, add_consumer, &x);
    free(idx.refs);
    return x.arr;
}

/* The consumers of the vhosts r may use (all: every vhost), or of vhost only, this node's. */
static json_t *consumers_here(const wr_mgmt_req_t *r, const wr_vhost_t *only, bool all)
{
    wr_map_iter_t vit = {0}, qit;
    void *vh, *q;
    chan_index_t idx;
    consumers_ctx_t x = {r, &idx, NULL, NULL, json_array()};

    index_build(r->env, &idx);
    while (x.arr && wr_map_next(r->env->vhosts, &vit, NULL, &vh)) {
        if ((only && vh != only) || (!all && !wr_mgmt_may_use(r, vh)))
            continue;
        x.vhost = wr_vhost_name(vh);
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q)) {
            x.q = q;
            wr_queue_foreach_consumer(q, add_consumer, &x);
        }
    }
    free(idx.refs);
    return x.arr;
}

json_t *wr_mgmt_conns_consumers_all(const wr_mgmt_env_t *env, const char *node)
{
    const wr_mgmt_req_t r = {.env = env, .node = node};

    return consumers_here(&r, NULL, true);
}

/* The peers' consumers (their last lists) in the vhosts r may use, or in only. */
static void add_peer_consumers(const wr_mgmt_req_t *r, const wr_vhost_t *only, json_t *arr)
{
    json_t *peers = json_array(), *item;
    size_t i;

    wr_mgmt_cluster_peer_items(r, peers, "consumers");
    json_array_foreach(peers, i, item)
    {
        const char *v = json_string_value(json_object_get(json_object_get(item, "queue"), "vhost"));
        const wr_vhost_t *vh = v ? wr_map_get(r->env->vhosts, wr_bytes_str(v)) : NULL;

        if (vh && (only ? vh == only : wr_mgmt_may_use(r, vh)))
            json_array_append(arr, item);
    }
    json_decref(peers);
}

void wr_mgmt_conns_consumers(wr_mgmt_req_t *r)
{
    static const char *const order[] = {"queue.vhost", "queue.name", "consumer_tag", NULL};
    const wr_vhost_t *only = NULL;
    json_t *arr;

    if (!wr_mgmt_get_only(r, r->nseg <= 2))
        return;
    if (r->nseg == 2 && !(only = wr_mgmt_vhost(r, 1)))
        return;
    arr = consumers_here(r, only, false);
    if (arr)
        add_peer_consumers(r, only, arr);
    if (arr)
        wr_mgmt_sort(arr, order, false);
    wr_mgmt_reply(r, arr ? 200 : 500, arr);
}
