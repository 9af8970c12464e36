/* SPDX-License-Identifier: MIT */
/*
 * The in-memory Raft log of one group: a dense array of entries after a
 * compacted prefix (offset: the last index a snapshot covers, whose term is
 * kept), with the index from which entries have not yet been handed to the
 * driver to persist ("unstable") and the durable prefix reported back ("stable").
 */
#ifndef WR_CLUSTER_RAFT_LOG_H
#define WR_CLUSTER_RAFT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"

typedef struct {
    wr_raft_entry_t *e; /* e[i] holds index offset + i + 1 */
    uint64_t n;         /* last index */
    uint64_t offset;    /* entries <= offset are compacted away */
    uint64_t offset_term;
    uint64_t cap;
    uint64_t unstable; /* first index not yet handed over to persist */
    uint64_t stable;   /* durable prefix, as notified */
    uint64_t cut;      /* lowest index truncated since queued messages were last resolved; 0: none */
    uint64_t dropped;  /* NORMAL entries <= dropped have no payload in memory (the driver reads it back) */
} wr_raft_log_t;

/* Frees every entry's payload and the array; the log is then empty. */
void wr_raft_log_clear(wr_raft_log_t *l);

/* Term at index (offset_term at offset); 0 below the offset and past the end. */
uint64_t wr_raft_log_term(const wr_raft_log_t *l, uint64_t index);

/* The last entry's term (0 when empty). */
uint64_t wr_raft_log_last_term(const wr_raft_log_t *l);

/*
 * Appends a copy of e (payload copied; a NULL data with len > 0 stays NULL: a
 * payload held only by the driver's stored log) at index l->n + 1; e->index
 * is ignored. WR_OK or WR_ENOMEM (then nothing changed).
 */
int wr_raft_log_append(wr_raft_log_t *l, const wr_raft_entry_t *e);

/* Drops every entry at index >= from (> offset), lowering unstable and stable to match. */
void wr_raft_log_truncate(wr_raft_log_t *l, uint64_t from);

/* Drops the entries <= index (offset < index <= n): they are in a durable snapshot. */
void wr_raft_log_compact(wr_raft_log_t *l, uint64_t index);

/* Drops every entry: the log restarts after (index, term); stable 0 until notified. */
void wr_raft_log_reset(wr_raft_log_t *l, uint64_t index, uint64_t term);

/* Frees the payloads of the NORMAL entries <= to (at most n); CONFIG payloads stay (memberships). */
void wr_raft_log_drop_payloads(wr_raft_log_t *l, uint64_t to);

/* Returns the entry at index, or NULL outside [offset + 1, n]. */
const wr_raft_entry_t *wr_raft_log_at(const wr_raft_log_t *l, uint64_t index);

/* The first index of the run of entries of the same term that holds index. */
uint64_t wr_raft_log_term_start(const wr_raft_log_t *l, uint64_t index);

/* The last index whose term is term, or 0 when the log has none. */
uint64_t wr_raft_log_last_of_term(const wr_raft_log_t *l, uint64_t term);

#endif
