/* SPDX-License-Identifier: MIT */
/*
 * The management API's definition changes in cluster mode: proposed to the
 * metadata group like a channel's, answered once this node has applied them
 * (evhttp replies after the handler returned). Reads stay local.
 */
#ifndef WR_BROKER_MGMT_META_H
#define WR_BROKER_MGMT_META_H

#include <jansson.h>
#include <stdint.h>

#include "broker/mgmt/mgmt_internal.h"

/* The metadata group's service in cluster mode, NULL on a single node. */
struct wr_meta_s *wr_mgmt_meta(const wr_mgmt_req_t *r);
/*
 * Proposes cmd (takes ownership) for r, which counts as replied: once the
 * change is applied here the client gets ok_status (0: 201 when the change
 * created something, else 204; with Location when location is not NULL;
 * copied), or the error the apply gave as wr_mgmt_amqp_error maps it, or 503
 * when it could not commit in time.
 */
void wr_mgmt_meta_propose(wr_mgmt_req_t *r, json_t *cmd, int ok_status, const char *location);
/*
 * wr_mgmt_meta_propose of each command of the array cmds (taken) in turn,
 * the next proposed once the one before is applied here: ok_status after the
 * last, or the first error (what was applied before it stays).
 */
void wr_mgmt_meta_propose_all(wr_mgmt_req_t *r, json_t *cmds, int ok_status);

/*
 * A user.put command from a PUT /api/users body or a definitions user
 * (password hashed here, or password_hash, or neither: the user keeps its
 * hash; tags; limits). NULL with the reason in err and *rc WR_ESYNTAX (bad
 * input) or WR_ENOMEM.
 */
json_t *wr_mgmt_meta_user_cmd(const char *name, const json_t *obj, char *err, size_t errlen, int *rc);
/* PUT /api/users/NAME in cluster mode: proposed, 201/204 once applied, 400 for bad input. */
void wr_mgmt_meta_put_user(wr_mgmt_req_t *r, const char *name, const json_t *body);
/* A permission.set command from {"configure", "write", "read"}; NULL with the reason in err. */
json_t *wr_mgmt_meta_permission_cmd(const char *user, const char *vhost, const json_t *obj, char *err,
                                    size_t errlen);
/* PUT /api/permissions/VHOST/USER in cluster mode, as wr_mgmt_meta_put_user. */
void wr_mgmt_meta_put_permission(wr_mgmt_req_t *r, const char *user, const char *vhost, const json_t *body);
/* A policy.set command, checked as wr_policy_put checks a policy: NULL with
 * *rc WR_ESYNTAX and RabbitMQ's reason in err, or WR_ENOMEM. */
json_t *wr_mgmt_meta_policy_cmd(const char *vhost, const char *name, const char *pattern,
                                const char *apply_to, int64_t priority, const json_t *definition, char *err,
                                size_t errlen, int *rc);

#endif
