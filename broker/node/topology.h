/* SPDX-License-Identifier: MIT */
/*
 * The durable topology on disk: a snapshot (DIR/topology.json, the format of
 * earlier versions plus the journal position it covers) and a journal of
 * change records (the store's log "topology": CRC-framed, group-committed by
 * the storage thread). A change costs one append on the owner's thread; a
 * thread of this module keeps the state (broker/topo_state.h) and writes a
 * new snapshot (temporary file, fdatasync, rename, directory fsync) once the
 * journal has grown by about the state's size, after which the journal's
 * older records are truncated. Owner's thread only, except where noted.
 */
#ifndef WR_BROKER_TOPOLOGY_H
#define WR_BROKER_TOPOLOGY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

typedef struct wr_topology_s wr_topology_t;

/* The journal's log in the store. */
#define WR_TOPOLOGY_LOG "topology"

/* Every change with a sequence number <= seq is durable. Owner's thread. */
typedef void (*wr_topology_durable_fn)(void *ud, uint64_t seq);

typedef struct {
    wr_topology_durable_fn durable; /* may be NULL */
    void *ud;
    size_t snapshot_min; /* changes between snapshots at least; 0 = 4096 */
} wr_topology_opts_t;

/*
 * Opens the topology of store s (whose directory is dir): reads the
 * snapshot (format version 1 or 2, as earlier versions wrote it with vhosts'
 * contents only, or 3, with users, permissions and vhost settings too),
 * replays the journal's later records (the store's recovery cut a torn tail
 * off), and starts the snapshot thread. *state is set to the recovered state
 * as wr_topo_state_dump gives it (the caller owns it). Returns NULL with a
 * message in err: the snapshot is not a topology file or of another
 * version, a journal record is malformed, the journal cannot be opened.
 */
wr_topology_t *wr_topology_open(wr_store_t *s, const char *dir, const wr_topology_opts_t *o, json_t **state,
                                char *err, size_t errlen);

/*
 * Records a change (broker/topo_state.h's wr_topo_rec; takes ownership) and
 * sets *seq to its sequence number. It is durable after a later
 * wr_store_flush and the durable callback (or a snapshot) covering seq.
 * WR_OK, also when the journal has failed (logged): the change then waits
 * for the next snapshot, requested here. WR_ENOMEM (rec is freed).
 */
int wr_topology_append(wr_topology_t *t, json_t *rec, uint64_t *seq);

/* Hands the changes recorded since the last call to the snapshot thread (one
 * wake-up per loop iteration, not per change), or a snapshot that failed
 * and is due again. Call before wr_store_flush. */
void wr_topology_flush(wr_topology_t *t);

/* Microseconds until a failed snapshot that changes wait for is due again
 * (call wr_topology_flush then); -1: none. */
int64_t wr_topology_due_us(const wr_topology_t *t);

/* The sequence number of the last change recorded, and of the last durable one. */
uint64_t wr_topology_seq(const wr_topology_t *t);
uint64_t wr_topology_durable(const wr_topology_t *t);

/* Readable when a snapshot finished: then call wr_topology_dispatch. */
int wr_topology_notify_fd(const wr_topology_t *t);
/* Takes a finished snapshot: truncates the journal it covers, reports it durable. */
void wr_topology_dispatch(wr_topology_t *t);

/* Stops the snapshot thread and closes the journal (blocking until it is on
 * disk). NULL is a no-op. */
void wr_topology_close(wr_topology_t *t);

#endif
