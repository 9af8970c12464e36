/* SPDX-License-Identifier: MIT */
/*
 * /api/nodes: this node's figures, sampled here, and in a cluster every
 * other node's as its last node report says (broker/cluster/reports.h), in
 * RabbitMQ's shape. The same sample is what this node reports to its peers.
 */
#ifndef WR_BROKER_MGMT_NODES_H
#define WR_BROKER_MGMT_NODES_H

#include <jansson.h>

#include "broker/cluster/reports.h"
#include "broker/mgmt/mgmt_env.h"

/* This node's figures now (n_up is left 0: the reports module fills it). */
void wr_mgmt_node_sample(const wr_mgmt_env_t *env, wr_report_t *out);
/*
 * Every node: this one first (named self, with "cluster_links" in a
 * cluster), then each peer with "running" and, while its link is up and it
 * has reported, its figures; "partitions" lists the nodes a node is cut off
 * from while others reach them. A new reference, NULL on ENOMEM.
 */
json_t *wr_mgmt_nodes_json(const wr_mgmt_env_t *env, const char *self);

#endif
