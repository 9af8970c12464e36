/* SPDX-License-Identifier: MIT */
/*
 * What meta.c (the service: submissions, snapshots) and meta_apply.c (the
 * commands applied to the state and the live vhosts) share. Only
 * broker/cluster/ includes it.
 */
#ifndef WR_BROKER_CLUSTER_META_INTERNAL_H
#define WR_BROKER_CLUSTER_META_INTERNAL_H

#include <jansson.h>

#include "broker/cluster/meta.h"
#include "core/list.h"

/*
 * state (version 2): {"version": 2, "seeded": bool, "topology": T,
 * "vhosts": {name: settings}, "users": {name: U}, "permissions": {vhost:
 * {user: {"configure", "write", "read"}}}, "policies": {vhost: {name:
 * {"pattern", "apply-to", "priority", "definition"}}}}. T: vhost name ->
 * {"exchanges": {key: entry}, "queues": {key: entry}, "bindings": {key:
 * entry}}, where an exchange's or queue's key is its name's compact JSON
 * text and a binding's the compact JSON text of [source, destination_type,
 * destination, routing_key, arguments]; entries are the commands' entries (a
 * queue's with "log" added when durable; a quorum queue's with "members",
 * "group", and "joining" and "leaving" while a member change is under way,
 * meta_quorum.c). U: {"password_hash" (base64),
 * "hashing_algorithm", "tags", "limits"}. A vhost with nothing in T, and a
 * vhost without permissions or policies, is not listed there.
 */
struct wr_meta_s {
    wr_meta_deps_t deps;
    json_t *state;
    wr_list_t ops; /* wr_meta_op_t waiting for their command */
    uint64_t next_op;
    json_int_t run; /* this run's id in its commands */
    uint64_t applied;
    wr_remote_t *remote;        /* proxies for queues whose home is another node; NULL: none */
    wr_quorum_t *quorum;        /* quorum queues on their member nodes; NULL: none */
    wr_meta_members_fn members; /* the cluster's members, for quorum queue placement */
    void *members_ud;
    bool leading; /* this node leads the group (leader_changed) */
    bool seeding; /* its seed is proposed and not yet answered */
};

/* Applies one parsed command at index to the state and the live vhosts,
 * filling *res (541 for a malformed command, which changes nothing). */
void wr_meta_apply_cmd(wr_meta_t *m, uint64_t index, const json_t *cmd, wr_meta_result_t *res);
/* Makes the live vhosts agree with the state (after a snapshot load). */
void wr_meta_apply_reconcile(wr_meta_t *m);
/* The key an exchange or queue name (as JSON) is filed under; NULL on ENOMEM. */
char *wr_meta_key(const json_t *name);
/* Queue name's record in vhost (borrowed from the state), NULL when none or on ENOMEM. */
const json_t *wr_meta_queue_record(const wr_meta_t *m, const char *vhost, wr_bytes_t name);
/* The state's exchanges, queues and bindings per vhost (T above). */
json_t *wr_meta_topology(const wr_meta_t *m);

/* An empty state of the current version; NULL on ENOMEM. */
json_t *wr_meta_state_new(void);
/*
 * The state a snapshot holds, upgraded to the current version (a version 1
 * snapshot is T alone); NULL with why set when it is malformed or of a
 * version this node does not read.
 */
json_t *wr_meta_state_load(const uint8_t *data, size_t len, char *why, size_t n);
/* Applies a vhost, user, permission, policy or seed command (meta_defs.c);
 * false when op is none of those. */
bool wr_meta_defs_apply(wr_meta_t *m, const char *op, const json_t *cmd, wr_meta_result_t *res);
/* Makes the live vhosts, users, permissions and policies agree with a seeded state. */
void wr_meta_defs_reconcile(wr_meta_t *m);
/* This node's live definitions as a seed command; NULL on ENOMEM. */
json_t *wr_meta_defs_seed(const wr_meta_t *m);
/* RabbitMQ-style words for a definitions command that did not commit, into
 * out; false when cmd is not one. */
bool wr_meta_defs_timeout_text(const json_t *cmd, char *out, size_t n);
/* Whether the group holds vhost `name` (always true before the seed). */
bool wr_meta_vhost_known(const wr_meta_t *m, const char *name);

/* Applies a quorum queue operation (meta_quorum.c); false when op is none. */
bool wr_meta_quorum_apply(wr_meta_t *m, const char *op, const json_t *cmd, wr_meta_result_t *res);
/* Makes this node's live queue for quorum record e (of vhost state v) what
 * the record says: the member's queue or a proxy, with its members. */
void wr_meta_quorum_live(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v, const json_t *e);
/* wr_meta_quorum_live for every quorum record of vhost state v (after a snapshot load). */
void wr_meta_quorum_reconcile(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v);
/* wr_quorum_report_fn (ud = the wr_meta_t): proposes "quorum.member.done". */
void wr_meta_quorum_report(void *ud, const char *vhost, wr_bytes_t name, const char *node);
/* wr_quorum_expired_fn (ud = the wr_meta_t): proposes the queue's deletion
 * for every node, as a client's queue.delete (a failure is logged). */
void wr_meta_quorum_expired(void *ud, const char *vhost, wr_bytes_t name);
/* Gives live queue q (a member's queue or a proxy) record e's members and roles. */
void wr_meta_quorum_sync(const wr_meta_t *m, wr_queue_t *q, const json_t *e);
/* Replaces the live queue of record e (of vhost state v) by a new one made
 * from the record, with the record's bindings to it (meta_apply.c). */
void wr_meta_queue_renew(const wr_meta_t *m, wr_vhost_t *vh, const json_t *v, const json_t *e);

#endif
