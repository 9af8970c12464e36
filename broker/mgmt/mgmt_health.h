/* SPDX-License-Identifier: MIT */
/*
 * Probes and small node resources of the management API (mgmt_health.c):
 * the aliveness test, health checks beyond the alarms, and the resources
 * warren answers with RabbitMQ's empty shapes.
 */
#ifndef WR_BROKER_MGMT_HEALTH_H
#define WR_BROKER_MGMT_HEALTH_H

#include <stdbool.h>

#include "broker/mgmt/mgmt_internal.h"

/* Handles /api/health/checks/{virtual-hosts,port-listener/PORT,
 * node-is-quorum-critical} and replies; false (nothing sent) for any other
 * health path. */
bool wr_mgmt_health_check(wr_mgmt_req_t *r);

/* Handles r when its collection is aliveness-test, cluster-name, auth,
 * extensions, feature-flags or parameters, and replies; false (nothing
 * sent) otherwise. */
bool wr_mgmt_health_route(wr_mgmt_req_t *r);

#endif
