/* SPDX-License-Identifier: MIT */
/*
 * The cluster as the management API shows it, in RabbitMQ's /api/nodes
 * shape: this node's "cluster_links" and an entry per other node whose
 * "running" says whether its link is up.
 */
#ifndef WR_BROKER_CLUSTER_JSON_H
#define WR_BROKER_CLUSTER_JSON_H

#include <stddef.h>

#include "broker/cluster/link.h"

struct json_t;

/* The links that are up: [{"name", "peer_addr", "peer_port", "sock_addr", "sock_port",
 * "send_bytes", "recv_bytes", "stats": {...}}]. A new reference, NULL on allocation failure. */
struct json_t *wr_cluster_json_links(const wr_peer_links_t *l);
/* The i-th other node: {"name", "type": "disc", "running"}. A new reference, or NULL. */
struct json_t *wr_cluster_json_node(const wr_peer_links_t *l, size_t i);

#endif
