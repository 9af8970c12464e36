/* SPDX-License-Identifier: MIT */
/*
 * The management API's connections and channels: listing them, and closing
 * a connection with 320 CONNECTION_FORCED as RabbitMQ's DELETE does.
 */
#ifndef WR_BROKER_MGMT_CONNS_H
#define WR_BROKER_MGMT_CONNS_H

#include <stddef.h>

#include "broker/mgmt_internal.h"

/* /api/connections[/NAME[/channels]] and /api/channels[/NAME]. */
void wr_mgmt_conns_connections(wr_mgmt_req_t *r);
void wr_mgmt_conns_channels(wr_mgmt_req_t *r);
/* How many open connections and channels there are (overview, metrics). */
void wr_mgmt_conns_totals(wr_server_t *srv, size_t *connections, size_t *channels);

#endif
