/* SPDX-License-Identifier: MIT */
/*
 * /api/cluster: membership through the management API (docs/MANAGEMENT.md
 * and docs/CLUSTERING.md, "Membership"), behind warrenctl cluster status,
 * join, leave and forget. RabbitMQ has no HTTP equivalent for the changes
 * (rabbitmqctl join_cluster, forget_cluster_node).
 */
#ifndef WR_BROKER_MGMT_CLUSTER_H
#define WR_BROKER_MGMT_CLUSTER_H

#include "broker/mgmt/mgmt_internal.h"

/*
 * GET /api/cluster/members, POST /api/cluster/join {"node": NAME},
 * POST /api/cluster/leave, DELETE /api/cluster/members/NAME (forget). Replies
 * (a change only once it is committed, or failed), never frees r.
 */
void wr_mgmt_cluster(wr_mgmt_req_t *r);

/*
 * Appends to arr the items of list ("connections" or "channels") that every
 * reachable peer last reported (mgmt_cluster_lists.h) and r may see (its
 * own, or all for administrators and monitoring users); only: just the item
 * of that name. Nothing outside a cluster.
 */
void wr_mgmt_cluster_add_peers(const wr_mgmt_req_t *r, json_t *arr, const char *list, const char *only);
/* Appends to arr every item of list that the reachable peers last reported, unfiltered. */
void wr_mgmt_cluster_peer_items(const wr_mgmt_req_t *r, json_t *arr, const char *list);
/*
 * What the reachable peers last reported using (wr_mgmt_conns_usage):
 * section "vhost_connections", "user_connections" or "user_channels", of
 * vhost or user name; 0 outside a cluster. Up to a second old.
 */
int64_t wr_mgmt_cluster_usage(const wr_mgmt_env_t *env, const char *section, const char *name);
/* In a cluster: the consumers of this node's channels plus the peers' object and queue totals
 * in body (an /api/overview), and their listeners added to its own. */
void wr_mgmt_cluster_overview(const wr_mgmt_req_t *r, json_t *body);

#endif
