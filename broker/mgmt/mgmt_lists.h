/* SPDX-License-Identifier: MIT */
/*
 * The read-only lists of the management API for what warren has little or
 * none of: /api/user-limits (the users' max-connections), and the empty
 * lists RabbitMQ's tools expect from /api/operator-policies,
 * /api/topic-permissions, /api/vhost-limits and /api/global-parameters.
 */
#ifndef WR_BROKER_MGMT_LISTS_H
#define WR_BROKER_MGMT_LISTS_H

#include <stdbool.h>

#include "broker/mgmt/mgmt_internal.h"

/* Serves r when its collection is one of the above; false (nothing sent)
 * otherwise. Answers 401 with RabbitMQ's text to users without the tag
 * each list needs, 405 to anything but GET. */
bool wr_mgmt_lists_route(wr_mgmt_req_t *r);

#endif
