/* SPDX-License-Identifier: MIT */
/*
 * The durable topology as a pure state machine: a state built from a
 * snapshot (topology.json's "vhosts") and change records applied in order,
 * dumped back as a snapshot. No I/O and no broker objects, so the journal can
 * replay it at start-up and a Raft log could later drive it the same way.
 * A change record is {"vhost": name, "op": op, "entry": entry} (see wr_topo_rec).
 */
#ifndef WR_BROKER_TOPO_STATE_H
#define WR_BROKER_TOPO_STATE_H

#include <jansson.h>
#include <stddef.h>

typedef struct wr_topo_state_s wr_topo_state_t;

/* Change record operations; entry shapes are broker/durable_defs.h's. */
typedef enum {
    WR_TOPO_EXCHANGE_DECLARE, /* entry: an exchange */
    WR_TOPO_EXCHANGE_DELETE,  /* entry: {"name"}; its bindings go with it */
    WR_TOPO_QUEUE_DECLARE,    /* entry: a queue */
    WR_TOPO_QUEUE_DELETE,     /* entry: {"name"}; its bindings go with it */
    WR_TOPO_BIND,             /* entry: a binding */
    WR_TOPO_UNBIND,           /* entry: a binding */
    WR_TOPO_POLICIES,         /* entry: the vhost's whole policy list */
} wr_topo_op_t;

/* A new empty state; NULL on ENOMEM. */
wr_topo_state_t *wr_topo_state_new(void);
/* NULL is a no-op. */
void wr_topo_state_free(wr_topo_state_t *st);

/*
 * A change record (takes ownership of entry, also on failure); NULL on
 * ENOMEM or when entry is NULL.
 */
json_t *wr_topo_rec(const char *vhost, wr_topo_op_t op, json_t *entry);

/*
 * Adds the vhosts of a snapshot (topology.json's "vhosts": per vhost the
 * "policies", "exchanges", "queues" and "bindings" arrays) to st. WR_OK,
 * WR_ESYNTAX with a message in err, or WR_ENOMEM.
 */
int wr_topo_state_load(wr_topo_state_t *st, const json_t *vhosts, char *err, size_t errlen);

/*
 * Applies one change record, O(1) apart from the policy list. A delete of
 * something absent, or an unbind of a binding absent, is a no-op. WR_OK,
 * WR_ESYNTAX (not a change record) with a message in err, or WR_ENOMEM.
 */
int wr_topo_state_apply(wr_topo_state_t *st, const json_t *rec, char *err, size_t errlen);

/*
 * The state as a snapshot's "vhosts" object (the shape wr_topo_state_load
 * and wr_durable_defs_load read); bindings whose source exchange was deleted
 * since they were made are dropped from st here. A new value, or NULL on ENOMEM.
 */
json_t *wr_topo_state_dump(wr_topo_state_t *st);

/* Exchanges + queues + binding entries held (stale bindings included until
 * the next dump). */
size_t wr_topo_state_size(const wr_topo_state_t *st);

#endif
