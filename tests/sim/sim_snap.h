/* SPDX-License-Identifier: MIT */
/*
 * The simulator's state machine (the hash of every entry applied, by index)
 * and its snapshots: taken at random points, stored as a CRC-checked file on
 * the node's simdisk (written, fsynced, renamed), served to followers in
 * chunks, received chunk by chunk into a temporary file and installed.
 */
#ifndef WR_SIM_SNAP_H
#define WR_SIM_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"

struct wr_topo_state_s;
struct wr_qfifo_s;

/* The state machine: h[i - 1] is the hash of the entry applied at index i. */
typedef struct {
    uint32_t *h;
    uint64_t n, cap;
    struct wr_topo_state_s *topo; /* --sm topo: the definitions applied (NULL: none yet) */
    struct wr_qfifo_s *qf;        /* --sm qfifo: the quorum-queue machine (NULL: none yet) */
} sim_sm_t;

/* One member's snapshots. */
typedef struct {
    uint8_t *bytes; /* the newest snapshot, served to followers (NULL: none) */
    size_t len;
    uint32_t crc;               /* CRC32C of bytes */
    wr_raft_snapshot_t meta;    /* what bytes hold */
    wr_raft_snapshot_t durable; /* what a restart finds (index 0: none, or the file is bad) */
    bool bad;                   /* the stored file took a bit flip: a restart finds it damaged */
    bool pend, in_batch;        /* WAL disk: a snapshot taken or installed waits for the group commit */
    bool flushed;               /* ... made durable by the batch's write; the core is told at its end */
    bool taken;                 /* the one waiting was taken here (s/gG.tmp), not installed (s/gG.new) */
    wr_raft_snapshot_t tmeta;   /* taken: what it covers (served at once, the core told once durable) */
} sim_snap_t;

#endif
