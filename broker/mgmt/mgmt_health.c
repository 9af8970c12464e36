/* SPDX-License-Identifier: MIT */
/*
 * The probes and small node resources that monitoring tools and Kubernetes
 * call, with RabbitMQ 3.10's shapes and statuses: /api/aliveness-test/VHOST,
 * the health checks virtual-hosts, port-listener/PORT and
 * node-is-quorum-critical, and /api/extensions, /api/auth,
 * /api/cluster-name, /api/feature-flags and /api/parameters, which answer
 * the empty shapes of a node that has none of those things.
 */
#include "broker/mgmt/mgmt_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/base/message.h"
#include "broker/cluster/link.h"
#include "broker/cluster/quorum.h"
#include "broker/mgmt/mgmt_topo.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"
#include "protocol/props.h"

/* RabbitMQ's aliveness queue and message; the queue is kept afterwards so
 * that a probe every few seconds does not create and delete one each time. */
#define ALIVENESS_QUEUE   "aliveness-test"
#define ALIVENESS_PAYLOAD "test_message"

static void health_failed(wr_mgmt_req_t *r, const char *reason)
{
    wr_mgmt_reply(r, 503, json_pack("{s:s, s:s}", "status", "failed", "reason", reason));
}

/* Publishes the test message to the aliveness queue through the default
 * exchange, as a client would; false on ENOMEM. */
static bool aliveness_publish(wr_vhost_t *vh)
{
    wr_exchange_t *x = wr_vhost_exchange(vh, WR_BYTES_LIT(""));
    wr_props_t props = {.body_size = sizeof(ALIVENESS_PAYLOAD) - 1};
    wr_buf_t header = WR_BUF_INIT;
    wr_message_t *msg = NULL;
    wr_dest_set_t route;
    size_t routed = 0;
    bool ok = false;

    wr_dest_set_init(&route);
    wr_props_encode(&header, &props);
    if (x && wr_buf_ok(&header))
        msg = wr_message_new(WR_BYTES_LIT(""), WR_BYTES_LIT(ALIVENESS_QUEUE),
                             (wr_bytes_t){header.data, header.len}, props.body_size);
    if (msg) {
        memcpy(msg->body, ALIVENESS_PAYLOAD, props.body_size);
        msg->body_filled = props.body_size;
        ok = wr_vhost_publish(vh, x, msg, &route, NULL, &routed, NULL);
    }
    wr_message_unref(msg);
    wr_dest_set_free(&route);
    wr_buf_free(&header);
    return ok;
}

/* GET /api/aliveness-test/VHOST: declare, publish, get (no-ack). */
static void aliveness(wr_mgmt_req_t *r)
{
    wr_amqp_error_t err;
    wr_message_t *m = NULL;
    wr_vhost_t *vh;
    wr_queue_t *q;
    wr_qtoken_t tok;
    bool created, redelivered;

    if (!wr_mgmt_get_only(r, r->nseg == 2) || !(vh = wr_mgmt_vhost(r, 1)))
        return;
    if (!wr_mgmt_topo_declare_queue(vh, WR_BYTES_LIT(ALIVENESS_QUEUE), false, false, WR_BYTES_LIT(""),
                                    &created, &err)) {
        health_failed(r, err.text);
        return;
    }
    q = wr_vhost_queue(vh, WR_BYTES_LIT(ALIVENESS_QUEUE));
    if (!q || !aliveness_publish(vh)) {
        health_failed(r, "aliveness-test queue could not be used");
        return;
    }
    if (!wr_queue_get(q, true, &m, &tok, &redelivered)) {
        health_failed(r, "aliveness-test queue is empty");
        return;
    }
    wr_message_unref(m);
    wr_mgmt_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Every port warren listens on, as RabbitMQ lists its listeners' ports. */
static json_t *listener_ports(const wr_config_t *cfg, int want, bool *found)
{
    json_t *ports = json_array();

    *found = false;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        json_array_append_new(ports, json_integer(cfg->listeners[i].port));
        *found |= cfg->listeners[i].port == want;
    }
    if (cfg->management.address) {
        json_array_append_new(ports, json_integer(cfg->management.port));
        *found |= cfg->management.port == want;
    }
    if (cfg->prometheus.address) {
        json_array_append_new(ports, json_integer(cfg->prometheus.port));
        *found |= cfg->prometheus.port == want;
    }
    return ports;
}

static void port_listener(wr_mgmt_req_t *r)
{
    const char *s = r->seg[3];
    char *end;
    long port = strtol(s, &end, 10);
    json_t *ports;
    bool found;

    if (!*s || *end || port < 0 || port > 65535) {
        wr_mgmt_error(r, 400, "bad_request", "Invalid port");
        return;
    }
    ports = listener_ports(r->env->cfg, (int)port, &found);
    if (found) {
        json_decref(ports);
        wr_mgmt_reply(r, 200, json_pack("{s:s, s:i}", "status", "ok", "port", (int)port));
        return;
    }
    wr_mgmt_reply(r, 503,
                  json_pack("{s:s, s:s, s:i, s:o}", "status", "failed", "reason", "No active listener",
                            "missing", (int)port, "ports", ports));
}

/* The protocols warren listens for, by RabbitMQ's listener names, in its order. */
static json_t *listener_protocols(const wr_config_t *cfg)
{
    json_t *p = json_array();

    if (cfg->cluster)
        json_array_append_new(p, json_string("clustering"));
    if (cfg->nlisteners > 0)
        json_array_append_new(p, json_string("amqp"));
    if (cfg->ntls_listeners > 0)
        json_array_append_new(p, json_string("amqp/ssl"));
    if (cfg->management.address)
        json_array_append_new(p, json_string(cfg->management_tls ? "https" : "http"));
    if (cfg->prometheus.address)
        json_array_append_new(p, json_string("http/prometheus"));
    return p;
}

/* RabbitMQ's aliases of a protocol name (rabbit_networking's normalisation). */
static const char *protocol_name(const char *s)
{
    if (strcmp(s, "amqp091") == 0 || strcmp(s, "amqp0.9.1") == 0 || strcmp(s, "amqp0-9-1") == 0)
        return "amqp";
    if (strcmp(s, "amqps") == 0)
        return "amqp/ssl";
    if (strcmp(s, "prometheus") == 0)
        return "http/prometheus";
    return s;
}

/* protocol-listener/PROTOCOL: 200 while a listener for it runs, else 503 with those that do. */
static void protocol_listener(wr_mgmt_req_t *r)
{
    const char *want = protocol_name(r->seg[3]);
    json_t *protos = listener_protocols(r->env->cfg), *p;
    size_t i;

    json_array_foreach(protos, i, p)
    {
        if (strcmp(json_string_value(p), want) == 0) {
            json_decref(protos);
            wr_mgmt_reply(r, 200, json_pack("{s:s, s:s}", "status", "ok", "protocol", want));
            return;
        }
    }
    wr_mgmt_reply(r, 503,
                  json_pack("{s:s, s:s, s:s, s:o}", "status", "failed", "reason", "No active listener",
                            "missing", want, "protocols", protos));
}

/* Whether stopping this node leaves quorum queue q (a member here) without a majority of online members. */
static bool quorum_critical(const wr_mgmt_req_t *r, const wr_queue_t *q)
{
    wr_rgroup_status_t st;
    size_t online = 0;

    if (!wr_quorum_queue_status(q, &st))
        return false;
    for (size_t i = 0; i < st.n_members; i++)
        online += strcmp(st.members[i], r->node) != 0 && wr_peer_up(r->env->peers, st.members[i]);
    return online < st.n_members / 2 + 1;
}

/* RabbitMQ's node-is-quorum-critical: 503 listing the quorum queues this node's shutdown would stop. */
static void node_is_quorum_critical(wr_mgmt_req_t *r)
{
    json_t *qs = json_array();
    wr_map_iter_t it = {0};
    void *vh;

    if (r->env->peers == NULL) {
        wr_mgmt_reply(r, 200, json_pack("{s:s, s:s}", "status", "ok", "reason", "single node cluster"));
        json_decref(qs);
        return;
    }
    while (qs != NULL && wr_map_next(r->env->vhosts, &it, NULL, &vh)) {
        wr_map_iter_t qit = {0};
        wr_bytes_t name;
        void *q;

        while (wr_map_next(wr_vhost_queues(vh), &qit, &name, &q)) {
            char readable[600];

            if (!quorum_critical(r, q))
                continue;
            snprintf(readable, sizeof(readable), "queue '%.*s' in vhost '%s'", (int)name.len,
                     (const char *)name.data, wr_vhost_name(vh));
            json_array_append_new(qs, json_pack("{s:s%, s:s, s:s, s:s}", "name", (const char *)name.data,
                                                name.len, "virtual_host", wr_vhost_name(vh), "type", "quorum",
                                                "readable_name", readable));
        }
    }
    if (json_array_size(qs) == 0) {
        json_decref(qs);
        wr_mgmt_reply(r, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    wr_mgmt_reply(
        r, 503,
        json_pack("{s:s, s:s, s:o}", "status", "failed", "reason",
                  "There are quorum queues that would lose their quorum if the target node is shut down",
                  "queues", qs));
}

bool wr_mgmt_health_check(wr_mgmt_req_t *r)
{
    const char *check = r->nseg >= 3 && strcmp(r->seg[1], "checks") == 0 ? r->seg[2] : "";

    if (strcmp(check, "virtual-hosts") == 0) {
        /* A warren vhost cannot be down while the node runs. */
        if (wr_mgmt_get_only(r, r->nseg == 3))
            wr_mgmt_reply(r, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(check, "node-is-quorum-critical") == 0) {
        if (wr_mgmt_get_only(r, r->nseg == 3))
            node_is_quorum_critical(r);
    } else if (strcmp(check, "node-is-mirror-sync-critical") == 0) {
        /* warren has no classic mirrored queues: none can lose its last synchronised mirror. */
        if (wr_mgmt_get_only(r, r->nseg == 3))
            wr_mgmt_reply(r, 200, json_pack("{s:s, s:s}", "status", "ok", "reason", "single node cluster"));
    } else if (strcmp(check, "port-listener") == 0) {
        if (wr_mgmt_get_only(r, r->nseg == 4))
            port_listener(r);
    } else if (strcmp(check, "protocol-listener") == 0) {
        if (wr_mgmt_get_only(r, r->nseg == 4))
            protocol_listener(r);
    } else {
        return false;
    }
    return true;
}

/* RabbitMQ's cluster name of a node that was never renamed: its node name,
 * which warren also sends as connection.start's cluster_name. */
static void cluster_name(wr_mgmt_req_t *r)
{
    if (wr_mgmt_get_only(r, r->nseg == 1))
        wr_mgmt_reply(r, 200, json_pack("{s:s}", "name", r->node));
}

static void auth(wr_mgmt_req_t *r)
{
    if (wr_mgmt_get_only(r, r->nseg == 1))
        wr_mgmt_reply(r, 200,
                      json_pack("{s:b, s:s, s:s}", "enable_uaa", 0, "uaa_client_id", "", "uaa_location", ""));
}

/* Extensions of the web UI and feature flags: warren has none. */
static void empty_list(wr_mgmt_req_t *r)
{
    if (wr_mgmt_get_only(r, r->nseg == 1))
        wr_mgmt_reply(r, 200, json_array());
}

/* /api/parameters[/COMPONENT[/VHOST[/NAME]]]: no runtime parameters exist
 * (no shovel or federation), so every list is empty and every one 404. */
static void parameters(wr_mgmt_req_t *r)
{
    if (!wr_mgmt_has_tag(r->account, "policymaker") && !wr_mgmt_has_tag(r->account, "administrator")) {
        wr_mgmt_error(r, 401, "not_authorised", "User not authorised to access object");
        return;
    }
    if (r->nseg >= 3 && !wr_mgmt_vhost(r, 2))
        return;
    if (wr_mgmt_get_only(r, r->nseg <= 3))
        wr_mgmt_reply(r, 200, json_array());
}

bool wr_mgmt_health_route(wr_mgmt_req_t *r)
{
    static const struct {
        const char *name;
        void (*handler)(wr_mgmt_req_t *r);
    } routes[] = {
        {"aliveness-test", aliveness}, {"cluster-name", cluster_name}, {"auth", auth},
        {"extensions", empty_list},    {"feature-flags", empty_list},  {"parameters", parameters},
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(r->seg[0], routes[i].name) == 0) {
            routes[i].handler(r);
            return true;
        }
    }
    return false;
}
