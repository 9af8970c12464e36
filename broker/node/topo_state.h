/* SPDX-License-Identifier: MIT */
/*
 * The node's definitions as a pure state machine: vhosts with their settings,
 * policies, durable exchanges, queues and bindings, permissions, and the
 * node-wide users, built from a snapshot (topology.json) and change records
 * applied in order, dumped back as a snapshot. No I/O and no broker objects,
 * so the journal replays it at start-up and a Raft log can drive it the same
 * way: each record's effect depends only on the state and the record.
 *
 * The record grammar. A vhost's record is {"vhost": NAME, "op": OP, "entry": E};
 * a node-wide record is {"op": OP, "entry": E} with no "vhost". Names of
 * exchanges, queues and routing keys are a string or {"hex": H} (not UTF-8);
 * "arguments" is the AMQP field table in hex (broker/node/durable_defs.h).
 *   vhost ops (a record of any of them for an absent vhost creates it, as
 *   records written before vhosts were kept did, except vhost.delete and
 *   the permission ops, which are no-ops there):
 *   "vhost.declare"     E = {"description": s, "tags": [s], "default_queue_type": s,
 *                            "tracing": b}, each optional: sets the settings,
 *                            keeping what the vhost holds
 *   "vhost.delete"      E = {}: the vhost, all it holds and every permission in it go
 *   "exchange.declare"  E = {"name", "type", "durable", "auto_delete", "internal",
 *                            "arguments"}
 *   "exchange.delete"   E = {"name"}; bindings to it go with it
 *   "queue.declare"     E = {"name", "durable", "auto_delete", "arguments", "log": s}
 *   "queue.delete"      E = {"name"}; bindings to it go with it
 *   "bind", "unbind"    E = {"source", "destination", "destination_type": "queue" or
 *                            "exchange", "routing_key", "arguments"}
 *   "policies"          E = [policy]: the vhost's whole list (definitions.json
 *                            policies without "vhost")
 *   "permission.put"    E = {"user": s, "configure": s, "write": s, "read": s};
 *                            a no-op when the user does not exist
 *   "permission.delete" E = {"user": s}
 *   node-wide ops:
 *   "user.put"          E = {"name": s, "password_hash": s (base64), "hashing_algorithm": s,
 *                            "tags": [s], "limits": {"max-connections": n}}, limits
 *                            optional: creates or replaces the user
 *   "user.delete"       E = {"name": s}; its permissions in every vhost go with it
 *   "seeded"            E = {}: the configuration's vhosts, users and
 *                            permissions are recorded; they never seed this state again
 * A delete of something absent, or an unbind of a binding absent, is a no-op.
 */
#ifndef WR_BROKER_TOPO_STATE_H
#define WR_BROKER_TOPO_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct wr_topo_state_s wr_topo_state_t;

/* Change record operations (the grammar above). */
typedef enum {
    WR_TOPO_EXCHANGE_DECLARE,
    WR_TOPO_EXCHANGE_DELETE,
    WR_TOPO_QUEUE_DECLARE,
    WR_TOPO_QUEUE_DELETE,
    WR_TOPO_BIND,
    WR_TOPO_UNBIND,
    WR_TOPO_POLICIES,
    WR_TOPO_VHOST_DECLARE,
    WR_TOPO_VHOST_DELETE,
    WR_TOPO_PERMISSION_PUT,
    WR_TOPO_PERMISSION_DELETE,
    WR_TOPO_USER_PUT, /* node-wide from here */
    WR_TOPO_USER_DELETE,
    WR_TOPO_SEEDED,
} wr_topo_op_t;

/* A new empty state; NULL on ENOMEM. */
wr_topo_state_t *wr_topo_state_new(void);
/* NULL is a no-op. */
void wr_topo_state_free(wr_topo_state_t *st);

/*
 * A change record (takes ownership of entry, also on failure): vhost is
 * ignored for a node-wide op, required for the others. NULL on ENOMEM or
 * when entry is NULL.
 */
json_t *wr_topo_rec(const char *vhost, wr_topo_op_t op, json_t *entry);

/*
 * Adds a snapshot to st: an object with "vhosts" (per vhost optionally its
 * "settings" (a vhost.declare entry), "policies", "exchanges", "queues",
 * "bindings" and "permissions" (permission.put entries)), optionally "users"
 * (user.put entries) and "seeded" (a boolean); format versions 1 and 2 had
 * "vhosts" only. Other keys are ignored. WR_OK, WR_ESYNTAX with a message in
 * err, or WR_ENOMEM.
 */
int wr_topo_state_load(wr_topo_state_t *st, const json_t *snap, char *err, size_t errlen);

/*
 * Applies one change record, O(1) apart from the policy list, a vhost's
 * delete and a user's delete (O(vhosts)). WR_OK, WR_ESYNTAX (not a change
 * record of the grammar; st unchanged) with a message in err, or WR_ENOMEM.
 */
int wr_topo_state_apply(wr_topo_state_t *st, const json_t *rec, char *err, size_t errlen);

/*
 * The state as a snapshot (the shape wr_topo_state_load reads, "users" and
 * "seeded" always present); bindings whose source exchange was deleted since
 * they were made are dropped from st here. A new value, or NULL on ENOMEM.
 */
json_t *wr_topo_state_dump(wr_topo_state_t *st);

/* Entries held: exchanges, queues, bindings (stale ones included until the
 * next dump), permissions and users. */
size_t wr_topo_state_size(const wr_topo_state_t *st);

#endif
