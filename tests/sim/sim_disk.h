/* SPDX-License-Identifier: MIT */
/*
 * The simulator's disk model for one Raft group on one node: a durable log and
 * hard state, plus writes not yet synced. A crash keeps a random prefix of the
 * unsynced writes, may tear the next one, and loses the rest; a bit flip
 * damages a durable record, which its CRC then exposes at load. Kept behind
 * this small interface so the real node-wide WAL can replace it.
 */
#ifndef WR_SIM_DISK_H
#define WR_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "core/buf.h"

typedef struct {
    wr_raft_entry_t e;
    uint32_t crc;
} sim_rec_t;

typedef struct {
    wr_raft_hard_state_t hs;
    uint64_t gen;
    uint32_t crc;
} sim_hs_rec_t;

typedef struct {
    bool is_hs;
    bool is_compact; /* a snapshot marker: (index, term) in hs.commit, hs.term */
    wr_raft_hard_state_t hs;
    wr_raft_entry_t *e; /* owned copies */
    size_t n;
} sim_op_t;

typedef struct {
    sim_rec_t *log; /* log[i] holds index base + i + 1 */
    size_t n, cap;
    uint64_t base, base_term; /* the durable snapshot marker: entries <= base are gone */
    sim_hs_rec_t hs[2];       /* two copies: a torn write or a flipped bit leaves one */
    uint64_t hs_gen;
    uint64_t synced; /* last index known synced (kept with the hard state in a real WAL) */
    uint64_t valid;  /* cached sim_disk_valid, unless stale */
    bool valid_stale;
    sim_op_t *ops; /* unsynced, in write order */
    size_t n_ops, cap_ops;
} sim_disk_t;

/* Queues an append: the stored log is cut at e[0].index, then e[0..n) added. */
void sim_disk_append(sim_disk_t *d, const wr_raft_entry_t *e, size_t n);

/* Queues a snapshot marker: entries <= index go; all of them if the log lacks (index, term). */
void sim_disk_compact(sim_disk_t *d, uint64_t index, uint64_t term);

/* The durable snapshot marker. */
void sim_disk_base(const sim_disk_t *d, uint64_t *index, uint64_t *term);

/* Queues a hard-state write. */
void sim_disk_set_hs(sim_disk_t *d, const wr_raft_hard_state_t *hs);

/* Makes the first k queued writes durable (the rest stay queued). */
void sim_disk_sync(sim_disk_t *d, size_t k);

/* A crash: the first keep queued writes reach the disk, the next is torn
 * (tear_at entries of it land, then a broken record), the rest are lost. */
void sim_disk_crash(sim_disk_t *d, size_t keep, size_t tear_at);

/* Flips one bit of the durable record chosen by pick (log entry or hs copy). */
void sim_disk_flip(sim_disk_t *d, uint64_t pick);

/* Reads the durable state back, verifying every CRC: the log stops at the
 * first bad record (*damaged says so); the records from there on stay on the
 * disk until the next append cuts them.
 * *e is a malloc'd array the caller frees; its payloads stay the disk's and
 * are valid until the next write. */
void sim_disk_load(sim_disk_t *d, wr_raft_hard_state_t *hs, const wr_raft_entry_t **e, size_t *n,
                   bool *damaged);

/* The last index of the durable log up to its first bad record (for the checker). */
uint64_t sim_disk_valid(sim_disk_t *d);

/* The term of durable record index (0 when absent or past a bad record). */
uint64_t sim_disk_term(sim_disk_t *d, uint64_t index);

/* Reads back the payload of e into out (reset first): false unless the durable log holds exactly e. */
bool sim_disk_payload(const sim_disk_t *d, const wr_raft_entry_t *e, wr_buf_t *out);

/* The durable hard state (for the checker). */
wr_raft_hard_state_t sim_disk_durable_hs(const sim_disk_t *d);

/* Frees everything. */
void sim_disk_free(sim_disk_t *d);

#endif
