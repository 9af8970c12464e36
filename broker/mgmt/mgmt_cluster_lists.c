/* SPDX-License-Identifier: MIT */
/*
 * This node's lists for its peers (mgmt_cluster_lists.h): its open
 * connections and their channels as /api/connections and /api/channels show
 * them, its totals and its listeners, as one bounded JSON document.
 */
#include "broker/mgmt/mgmt_cluster_lists.h"

#include <stdlib.h>
#include <string.h>

#include "broker/cluster/reports.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/mgmt_internal.h"
#include "broker/mgmt/mgmt_stats.h"

static json_t *totals_json(const wr_mgmt_env_t *env)
{
    wr_mgmt_counts_t c;
    size_t conns, channels;

    wr_mgmt_stats_node_counts(env, &c);
    wr_mgmt_conns_totals(env, &conns, &channels);
    return json_pack("{s:{s:I,s:I,s:I},s:{s:I,s:I,s:I}}", "object_totals", "connections", (json_int_t)conns,
                     "channels", (json_int_t)channels, "consumers",
                     (json_int_t)wr_mgmt_conns_consumer_count(env), "queue_totals", "messages",
                     (json_int_t)(c.v[WR_MS_READY] + c.v[WR_MS_UNACKED]), "messages_ready",
                     (json_int_t)c.v[WR_MS_READY], "messages_unacknowledged", (json_int_t)c.v[WR_MS_UNACKED]);
}

/* Appends doc to out if it fits. */
static bool put(json_t *doc, wr_buf_t *out)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    size_t n = text ? strlen(text) : 0;
    bool fits = text && n <= WR_REPORT_LISTS_MAX;

    if (fits)
        wr_buf_put(out, text, n);
    free(text);
    return fits;
}

void wr_mgmt_cluster_sample(const wr_mgmt_env_t *env, wr_buf_t *out)
{
    const char *node = env->cfg->cluster->node;
    const wr_mgmt_req_t r = {.env = env, .node = node};
    json_t *doc = totals_json(env);

    if (!doc)
        return;
    json_object_set_new(doc, "listeners", wr_mgmt_listeners_json(&r));
    json_object_set_new(doc, "usage", wr_mgmt_conns_usage(env));
    json_object_set_new(doc, "connections", wr_mgmt_conns_all(env, node, false));
    json_object_set_new(doc, "channels", wr_mgmt_conns_all(env, node, true));
    json_object_set_new(doc, "consumers", wr_mgmt_conns_consumers_all(env, node));
    if (!put(doc, out)) {
        json_object_del(doc, "connections");
        json_object_del(doc, "channels");
        json_object_del(doc, "consumers");
        json_object_set_new(doc, "truncated", json_true());
        (void)put(doc, out);
    }
    json_decref(doc);
}
