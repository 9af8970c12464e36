/* SPDX-License-Identifier: MIT */
/*
 * The management API's connections, channels and consumers: listing them,
 * and closing a connection with 320 CONNECTION_FORCED as RabbitMQ's DELETE
 * does.
 */
#ifndef WR_BROKER_MGMT_CONNS_H
#define WR_BROKER_MGMT_CONNS_H

#include <stddef.h>

#include "broker/mgmt/mgmt_internal.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"

/* /api/connections[/NAME[/channels]] and /api/channels[/NAME]. */
void wr_mgmt_conns_connections(wr_mgmt_req_t *r);
void wr_mgmt_conns_channels(wr_mgmt_req_t *r);
/* /api/consumers[/VHOST]: every consumer of the vhosts r may use, sorted by
 * queue and tag. */
void wr_mgmt_conns_consumers(wr_mgmt_req_t *r);
/* q's consumers (in vhost vh) in attach order, as a queue's
 * consumer_details; NULL on ENOMEM. */
json_t *wr_mgmt_conns_queue_consumers(const wr_mgmt_req_t *r, const wr_vhost_t *vh, const wr_queue_t *q);
/*
 * This node's open connection `name` (any user's): with reason NULL, *out
 * is its JSON as GET /api/connections/NAME shows it; otherwise it is closed
 * with 320 and reason (empty: RabbitMQ's "Closed via management plugin").
 * WR_OK, WR_ENOENT, WR_ENOMEM.
 */
int wr_mgmt_conns_by_name(const wr_mgmt_env_t *env, const char *name, const char *reason, json_t **out);
/*
 * What this node's open connections use, for the limits of the other nodes:
 * {"vhost_connections": {VHOST: n}, "user_connections": {USER: n},
 * "user_channels": {USER: n}}. NULL on ENOMEM.
 */
json_t *wr_mgmt_conns_usage(const wr_mgmt_env_t *env);
/* The consumers of this node's open channels, in every vhost, for the other nodes' /api/consumers. */
json_t *wr_mgmt_conns_consumers_all(const wr_mgmt_env_t *env, const char *node);
/* How many consumers this node's open channels hold. */
size_t wr_mgmt_conns_consumer_count(const wr_mgmt_env_t *env);
/* How many open connections and channels there are (overview, metrics). */
void wr_mgmt_conns_totals(const wr_mgmt_env_t *env, size_t *connections, size_t *channels);
/* Every open connection (channels: every channel of one) as /api/connections (/api/channels) shows
 * it, named as on node, whoever owns it: what this node tells its peers. A new reference. */
json_t *wr_mgmt_conns_all(const wr_mgmt_env_t *env, const char *node, bool channels);

#endif
