/* SPDX-License-Identifier: MIT */
/*
 * The management API's policies: /api/policies[/VHOST[/NAME]] over
 * broker/policy.h.
 */
#ifndef WR_BROKER_MGMT_POLICIES_H
#define WR_BROKER_MGMT_POLICIES_H

#include "broker/mgmt/mgmt_internal.h"

/* GET of every policy (or a vhost's) the user may see; GET, PUT and DELETE
 * of one for policymakers and administrators. */
void wr_mgmt_policies(wr_mgmt_req_t *r);

#endif
