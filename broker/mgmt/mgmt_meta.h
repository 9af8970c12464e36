/* SPDX-License-Identifier: MIT */
/*
 * The management API's definition changes in cluster mode: proposed to the
 * metadata group like a channel's, answered once this node has applied them
 * (evhttp replies after the handler returned). Reads stay local.
 */
#ifndef WR_BROKER_MGMT_META_H
#define WR_BROKER_MGMT_META_H

#include <jansson.h>

#include "broker/mgmt/mgmt_internal.h"

/* The metadata group's service in cluster mode, NULL on a single node. */
struct wr_meta_s *wr_mgmt_meta(const wr_mgmt_req_t *r);
/*
 * Proposes cmd (takes ownership) for r, which counts as replied: once the
 * change is applied here the client gets ok_status (with Location when
 * location is not NULL; copied), or the error the apply gave as
 * wr_mgmt_amqp_error maps it, or 503 when it could not commit in time.
 */
void wr_mgmt_meta_propose(wr_mgmt_req_t *r, json_t *cmd, int ok_status, const char *location);

#endif
