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

#endif
