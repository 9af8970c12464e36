/* SPDX-License-Identifier: MIT */
/*
 * The simulator's WAL disk: one real node-wide write-ahead log (storage/wal.h)
 * per simulated node, on its own fault-injecting simdisk, shared by all of the
 * node's groups. Group commit runs as three steps the simulator schedules, and
 * a crash or a bit flip is followed by the WAL's own recovery.
 */
#ifndef WR_SIM_WAL_H
#define WR_SIM_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "core/buf.h"
#include "tests/sim/simdisk.h"

typedef struct sim_wal_s sim_wal_t;

/* "Durable up to (term, index)" for group g (index 0: only its hard state). */
typedef void (*sim_wal_notice_fn)(void *ud, int g, uint64_t term, uint64_t index);

/* A line the WAL reports (corruption, torn tails, failures), for the trace. */
typedef void (*sim_wal_message_fn)(void *ud, const char *text);

/*
 * A node's WAL for groups 0..groups-1 on a new empty simdisk seeded by seed,
 * opened (recovered: empty); its reports go to msg(ud, ...). Aborts on
 * failure: the simulator has no use for a half-made disk. Free with sim_wal_free.
 */
sim_wal_t *sim_wal_new(uint64_t seed, int groups, sim_wal_message_fn msg, void *ud);

/* Closes the WAL, frees the disk. NULL is a no-op. */
void sim_wal_free(sim_wal_t *w);

/*
 * What recovery left for group g: its hard state, entries[0..n) (copies the
 * caller frees with sim_entries_free) and whether the WAL reported it damaged
 * (its hard state then already carries abstain, made durable by recovery).
 */
void sim_wal_load(sim_wal_t *w, int g, wr_raft_hard_state_t *hs, wr_raft_entry_t **e, size_t *n,
                  bool *damaged);

/* Queues an append (the stored log is cut at e[0].index first); a refusal fails the WAL. */
void sim_wal_append(sim_wal_t *w, int g, const wr_raft_entry_t *e, size_t n);

/* Reads back the payload of e (group g) into out (reset first): false unless the WAL holds exactly e. */
bool sim_wal_payload(sim_wal_t *w, int g, const wr_raft_entry_t *e, wr_buf_t *out);

/* Queues a snapshot marker (wr_wal_snapshot) for group g; a refusal fails the WAL. */
void sim_wal_snapshot(sim_wal_t *w, int g, uint64_t index, uint64_t term);

/* Group g's last snapshot marker, as recovered or queued (0: none). */
void sim_wal_base(const sim_wal_t *w, int g, uint64_t *index, uint64_t *term);

/* The node's simdisk, for files kept beside the WAL (snapshots). */
wr_simdisk_t *sim_wal_disk(sim_wal_t *w);

/* Queues a hard-state write; a refusal fails the WAL. */
void sim_wal_set_hs(sim_wal_t *w, int g, const wr_raft_hard_state_t *hs);

/* True once a write, sync or write-behind failed: the node must crash and recover. */
bool sim_wal_failed(const sim_wal_t *w);

/* Group commit, step 1: takes everything queued into a batch. False: nothing queued. */
bool sim_wal_prepare(sim_wal_t *w);

/* Step 2: the batch's write and fdatasync; with fail, the sync fails (a disk error). */
void sim_wal_write(sim_wal_t *w, bool fail);

/* Step 3: applies the batch and calls fn once per group it covered (none if it failed). */
void sim_wal_complete(sim_wal_t *w, sim_wal_notice_fn fn, void *ud);

/* One write-behind step of about budget bytes (no batch may be in flight). */
void sim_wal_writebehind(sim_wal_t *w, uint64_t budget);

/*
 * The process dies (a batch in flight is abandoned), the machine loses power
 * (torn: writes since the last sync may land in part), and the WAL is
 * recovered from what the disk kept.
 */
void sim_wal_crash(sim_wal_t *w, bool torn);

/* Flips one bit of a WAL or segment file chosen by pick, then recovers (the node is down). */
void sim_wal_flip(sim_wal_t *w, uint64_t pick);

/* The checker's view: entries of group g durable now (a dense prefix). */
size_t sim_wal_valid(const sim_wal_t *w, int g);

/* Recovery reported a damaged group or WAL file although no bit of this disk was ever flipped: crashes,
 * torn writes and failed syncs lose only what was never made durable, so that is a WAL bug. */
bool sim_wal_damage_unexplained(const sim_wal_t *w);

/* The term of durable entry index of group g (0 when not durable). */
uint64_t sim_wal_term(const sim_wal_t *w, int g, uint64_t index);

/* The durable hard state of group g. */
wr_raft_hard_state_t sim_wal_durable_hs(const sim_wal_t *w, int g);

/* What the faults did to a node's WAL (the run's summary adds them up). */
typedef struct {
    uint64_t batches;      /* batches written */
    uint64_t datasyncs;    /* fdatasyncs on its simdisk */
    uint64_t writebehinds; /* write-behind steps run (WR_OK) */
    uint64_t recoveries;   /* wr_wal_open after a crash or a flip */
    uint64_t torn;         /* crashes that tore writes */
    uint64_t damaged;      /* groups recovery reported damaged */
    uint64_t wal_corrupt;  /* recoveries that found a WAL file damaged */
    uint64_t wb_read;      /* full WAL files write-behind read back */
    uint64_t wb_skipped;   /* full WAL files it retired unread: every group snapshotted past them */
} sim_wal_stats_t;

/* Adds w's counters to *sum. */
void sim_wal_stats_add(const sim_wal_t *w, sim_wal_stats_t *sum);

#endif
