/* SPDX-License-Identifier: MIT */
/*
 * Quorum queue operations over the management API (docs/QUORUM.md,
 * "Operating quorum queues"), at RabbitMQ's paths: a queue's members'
 * status, adding and removing a member, growing and shrinking every queue
 * onto or off a node, rebalancing leaders; and, which RabbitMQ's API lacks,
 * handing a queue's leadership to a member.
 */
#ifndef WR_BROKER_MGMT_QUORUM_H
#define WR_BROKER_MGMT_QUORUM_H

#include <stdbool.h>

#include "broker/mgmt/mgmt_internal.h"

/*
 * /api/queues/quorum/VHOST/NAME/status (GET), .../replicas/add (POST
 * {"node"}), .../replicas/delete (DELETE {"node"}), .../leader/transfer
 * (POST {"node"}), /api/queues/quorum/replicas/on/NODE/grow (POST) and
 * .../shrink (DELETE). Replies to r (never frees it) and returns true when r
 * is one of these paths; false (nothing done) otherwise.
 */
bool wr_mgmt_quorum_route(wr_mgmt_req_t *r);
/* POST /api/rebalance/queues: leaders spread over the nodes; replies. */
void wr_mgmt_quorum_rebalance(wr_mgmt_req_t *r);

#endif
