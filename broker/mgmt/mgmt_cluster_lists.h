/* SPDX-License-Identifier: MIT */
/*
 * What this node tells its peers it lists in the management API, so that
 * any node's /api/connections, /api/channels and /api/overview show the
 * whole cluster (docs/CLUSTERING.md, "Membership"): sent after each node
 * report (broker/cluster/reports.h, WR_REPORT_LISTS_KIND), merged by
 * mgmt_cluster.c.
 */
#ifndef WR_BROKER_MGMT_CLUSTER_LISTS_H
#define WR_BROKER_MGMT_CLUSTER_LISTS_H

#include "broker/mgmt/mgmt_env.h"
#include "core/buf.h"

/*
 * Appends this node's lists as compact JSON: {"connections": [...],
 * "channels": [...], "consumers": [...], "object_totals": {"connections",
 * "channels", "consumers"}, "queue_totals": {"messages", "messages_ready",
 * "messages_unacknowledged"}, "listeners": [...], "usage":
 * wr_mgmt_conns_usage's}, each item with its "node". When that exceeds
 * WR_REPORT_LISTS_MAX the three lists are left out and "truncated" is true.
 */
void wr_mgmt_cluster_sample(const wr_mgmt_env_t *env, wr_buf_t *out);

#endif
