/* SPDX-License-Identifier: MIT */
/*
 * Another node's connection by name (docs/CLUSTERING.md, "Membership"):
 * GET and DELETE /api/connections/NAME of a connection that a peer's lists
 * show go to that node over the link, which answers with the connection as
 * its own /api/connections/NAME shows it, or closes it as a local DELETE
 * does (320 CONNECTION_FORCED, the X-Reason header's text if given).
 */
#ifndef WR_BROKER_MGMT_CLUSTER_CONNS_H
#define WR_BROKER_MGMT_CLUSTER_CONNS_H

#include "broker/mgmt/mgmt_internal.h"

typedef struct wr_mgmt_forward_s wr_mgmt_forward_t;

/* How long a request waits for the other node's answer before a 503. */
#define WR_MGMT_FORWARD_MS 5000

/*
 * Routes the ask and answer kinds on env->peers (before the links start);
 * env must outlive it. NULL on allocation failure or when the kinds are taken.
 */
wr_mgmt_forward_t *wr_mgmt_forward_new(wr_mgmt_env_t *env);
/* Drops the requests still waiting, unanswered (before the HTTP server is freed). NULL is a no-op. */
void wr_mgmt_forward_free(wr_mgmt_forward_t *f);

/*
 * Whether a reachable peer's lists show connection `name` visible to r; if
 * so, GET or DELETE r about it there: replied once that node answers (200
 * with the connection, 204, or 404 when it is gone), 503 when it does not
 * within WR_MGMT_FORWARD_MS or its link is down.
 */
bool wr_mgmt_forward_conn(wr_mgmt_req_t *r, const char *name);

#endif
