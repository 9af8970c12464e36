/* SPDX-License-Identifier: MIT */
/*
 * The management API's vhosts: /api/vhosts[/NAME] (listing, showing,
 * creating, changing the settings of and deleting a vhost) with RabbitMQ
 * 3.10's statuses and bodies.
 */
#ifndef WR_BROKER_MGMT_VHOSTS_H
#define WR_BROKER_MGMT_VHOSTS_H

#include "broker/mgmt/mgmt_internal.h"

/* GET of the vhosts the user may use, or of one; PUT (201 created, 204
 * changed) and DELETE (204; 404 when absent) of one for administrators.
 * Replies. */
void wr_mgmt_vhosts(wr_mgmt_req_t *r);

/*
 * /api/vhost-limits[/V[/NAME]]: GET [{"vhost", "value": {"max-connections",
 * "max-queues"}}] (monitoring or administrator); PUT {"value": N} (N >= -1,
 * -1 no limit) and DELETE of one limit (administrator), 204. Replies.
 */
void wr_mgmt_vhost_limits(wr_mgmt_req_t *r);
/* /api/user-limits[/U[/NAME]]: the same for users' "max-connections" and
 * "max-channels" (administrator). Replies. */
void wr_mgmt_user_limits(wr_mgmt_req_t *r);

#endif
