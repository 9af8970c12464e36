/* SPDX-License-Identifier: MIT */
/*
 * The deterministic Raft simulator's shared types: one run is one seed, a
 * virtual clock, network and disk, and the real cluster/raft core for every
 * group on every node. See docs/RAFT.md.
 */
#ifndef WR_SIM_H
#define WR_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "core/buf.h"
#include "core/status.h"
#include "tests/sim/sim_disk.h"
#include "tests/sim/sim_snap.h"
#include "tests/sim/sim_wal.h"
#include "tests/sim/simdisk.h"

#define SIM_MAX_NODES 9
#define SIM_QF_STATS  9 /* --sm qfifo counters: sim_qfifo_stats_add */

typedef struct {
    uint64_t seed;
    int nodes;
    int groups;
    int steps;      /* fault phase, in virtual time units */
    int heal_steps; /* bound for the recovery phase */
    bool trace;
    bool faults;    /* false: a clean run (benchmarks) */
    int proposals;  /* per group, spread over the fault phase */
    int payload;    /* payload bytes per proposal (>= 8) */
    int trace_tail; /* lines of trace printed on failure */
    bool wal;       /* the real node-wide WAL on a simdisk (sim_wal.c), else the toy sim_disk.c */
    bool topo;      /* proposals are definition records applied to topo_state.c (sim_topo.c) */
    bool qfifo;     /* proposals are quorum-queue commands applied to cluster/qfifo.c (sim_qfifo.c) */

    int payload_window; /* the cores' cfg.payload_window; -1: drawn from the seed */
} sim_opts_t;

/* A message in flight (entries deep-copied). */
typedef struct {
    uint64_t at; /* delivery time */
    uint32_t group;
    wr_raft_msg_t m;
    wr_raft_entry_t *entries;
    uint8_t *data; /* a snapshot chunk's bytes (copied) */
} sim_packet_t;

/* A message held until the disk has synced up to seq. */
typedef struct {
    uint64_t seq;
    uint32_t group;
    wr_raft_msg_t m;
    wr_raft_entry_t *entries;
} sim_held_t;

typedef struct {
    wr_raft_t *raft;
    sim_disk_t disk;
    uint64_t written_term, written_index; /* last entry handed to the disk */
    size_t sync_ops;                      /* writes the sync in flight covers */
    uint64_t sync_term, sync_index;       /* the notice it will post */
    uint64_t commit_floor;                /* durable commit: never go below it */
    uint64_t leader_since;                /* time this member became leader (0: not) */
    uint64_t leader_term;
    uint64_t leader_conf;              /* the CONFIG entry its check-quorum watch started with */
    uint64_t change_term;              /* the last term it was seen leading (then an eager change) */
    uint64_t heard[SIM_MAX_NODES + 1]; /* last delivery from each node */
    sim_sm_t sm;                       /* the state machine */
    sim_snap_t snap;                   /* its snapshots */
} sim_member_t;

typedef struct {
    int id;
    bool up;
    uint64_t down_until;
    int tick_period; /* clock skew: virtual time per tick */
    uint64_t next_tick;
    uint64_t synced_seq, written_seq;
    uint64_t next_sync;  /* time the next sync starts (0: none scheduled) */
    uint64_t sync_done;  /* time the sync in flight completes (0: none) */
    uint64_t sync_seq;   /* written_seq when it started */
    uint64_t write_at;   /* time the WAL batch in flight is written (sync_done: completed) */
    sim_wal_t *wal;      /* the node's WAL (--disk wal), NULL with the toy disk */
    wr_simdisk_t *sdisk; /* snapshot files: the WAL's simdisk, or the toy disk's own */
    sim_member_t *g;     /* one per group */
    sim_held_t *held;
    size_t n_held, cap_held;
} sim_node_t;

typedef struct {
    uint64_t id, term, index;
    int group;
    int node;
    uint32_t hash;
    bool acked;
} sim_proposal_t;

typedef struct sim_check_s sim_check_t;
typedef struct sim_qfifo_s sim_qfifo_t;

typedef struct {
    sim_opts_t o;
    uint64_t rng;
    uint64_t now;
    sim_node_t nodes[SIM_MAX_NODES + 1]; /* 1-based */
    sim_packet_t *net;
    size_t n_net, cap_net;
    bool link[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1]; /* link[a][b]: a can send to b */
    /* The fault profile, drawn per seed: rates in per mille per step. */
    int drop_pm, dup_pm, max_delay, crash_pm, partition_pm, kill_leader_pm, transfer_pm, sync_max;
    int sync_fail_pm, torn_pm, writebehind_pm; /* the WAL disk's faults and write-behind pace */
    int change_pm;                             /* membership changes */
    int snap_pm, chunk, trailing, corrupt_pm; /* snapshots taken, chunk bytes, entries kept, chunks damaged */
    int voters0; /* the first voters: nodes 1..voters0; the others may join later */
    unsigned max_batch, max_inflight;
    unsigned payload_window; /* payloads the cores drop are read back from the node's disk */
    uint64_t read_backs;     /* entries whose payload was read back to send or apply */
    bool heal;
    sim_proposal_t *props;
    size_t n_props, cap_props;
    uint64_t next_prop_id;
    sim_check_t *check;
    char **tail; /* ring of the last trace lines */
    size_t tail_pos;
    bool failed;
    uint64_t delivered, applied_total;
    uint64_t snap_stats[3]; /* snapshots taken, installed, found damaged at restart */
    uint64_t **topo_seen;   /* --sm topo: per group, the dump hash (| 1 << 32) first seen at each index */
    size_t *topo_n;
    sim_qfifo_t *qfifo; /* --sm qfifo: the clients and the checker's model, per group */
} sim_t;

/* The run's PRNG (splitmix64): every random choice comes from here. */
uint64_t sim_rand(sim_t *s);

/* A uniform integer in [0, n); 0 when n <= 1. */
int sim_rand_int(sim_t *s, int n);

/* True with probability per_mille / 1000. */
bool sim_chance(sim_t *s, int per_mille);

/* Records a trace line (printed at once with --trace, kept for failures). */
void sim_trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first up node that leads group g (as a client would find it), or 0. */
int sim_leader_of(sim_t *s, int g);

/* Proposes data (after an 8-byte proposal id) to group g on node id, recorded as a
 * proposal the checker follows; false if the core refused it. */
bool sim_propose(sim_t *s, int g, int id, const uint8_t *data, size_t len);

/* Marks the run failed with a reason. */
void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Queues a message on the network (copied). */
void sim_net_send(sim_t *s, uint32_t group, const wr_raft_msg_t *m);

/* Delivers every due message; returns how many. */
size_t sim_net_deliver(sim_t *s);

/* Frees every message in flight. */
void sim_net_clear(sim_t *s);

/* Starts (or restarts) node n from its disks: a core per group, the
 * checker's view of it reset to its durable state. */
void sim_node_start(sim_t *s, sim_node_t *n);

/* Crashes n: unsynced writes are kept in part, torn or lost; held messages
 * are lost; the cores are freed. */
void sim_node_crash(sim_t *s, sim_node_t *n);

/* Drains every ready batch of n by the contract of cluster/raft.h. */
void sim_node_drive(sim_t *s, sim_node_t *n);

/* Starts a group commit covering every write so far. */
void sim_node_sync_start(sim_t *s, sim_node_t *n);

/* Completes it: the writes become durable, the notices reach the cores. */
void sim_node_sync_done(sim_t *s, sim_node_t *n);

/* Flips a bit of n's stored data (n is down); the next start finds it. */
void sim_node_flip(sim_t *s, sim_node_t *n);

/* A step of n's disk besides sync start/done: the WAL batch's write, write-behind. */
void sim_node_disk_step(sim_t *s, sim_node_t *n);

/* The checker's view of member g's durable state (the disk's, as a restart would find it). */
size_t sim_member_valid(sim_node_t *n, int g);
uint64_t sim_member_term(sim_node_t *n, int g, uint64_t index);
wr_raft_hard_state_t sim_member_durable_hs(const sim_node_t *n, int g);
bool sim_member_damaged(sim_node_t *n, int g); /* a restart would find a damaged log */

/* The durable state covers (index, term) of g: a snapshot past it, or the entry itself. */
bool sim_member_holds(sim_node_t *n, int g, uint64_t index, uint64_t term);

/* Frees everything n owns (cores, disks, held messages). */
void sim_node_free(const sim_t *s, sim_node_t *n);

/* The core's config for member id of group (limits from the run's profile). */
wr_raft_config_t sim_node_config(const sim_t *s, int id, int group);

/*
 * The payload of entry e of member g on node n: its own, or, when the core
 * dropped it (data NULL), read back from the node's disk into b. A payload the
 * disk does not hold fails the run (b then holds zeros).
 */
const uint8_t *sim_member_payload(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e, wr_buf_t *b);

/* Copies n entries (payloads too; a dropped one stays NULL); the caller frees with sim_entries_free. */
wr_raft_entry_t *sim_entries_dup(const wr_raft_entry_t *e, size_t n);
void sim_entries_free(wr_raft_entry_t *e, size_t n);

/* Creates the checker for run s; sim_check_free(NULL) is a no-op. */
sim_check_t *sim_check_new(const sim_t *s);
void sim_check_free(sim_check_t *c);

/* Checks every invariant of docs/RAFT.md on every member; marks s failed. */
void sim_check_step(sim_t *s);

/* Checks one entry a member applies against what others applied there. */
void sim_check_applied(sim_t *s, int node, int group, const wr_raft_entry_t *e);

/* Notes the CONFIG entries among e[0..n) of group g, as written to a disk. */
void sim_check_logged(sim_t *s, int g, const wr_raft_entry_t *e, size_t n);

/* A snapshot installed on a member: its state must be what the others applied. */
void sim_check_installed(sim_t *s, int node, int group, const sim_sm_t *sm);

/* After healing: every acknowledged proposal is the entry applied at its index. */
void sim_check_final(sim_t *s);

/* Node restarted: its commit watch restarts from the durable commit. */
void sim_check_restart(sim_t *s, int node);

/* The hash the checker keeps of an entry's type and payload. */
uint32_t sim_check_hash(const wr_raft_entry_t *e);

/* True once every group has a leader and every member applied every acknowledged proposal. */
bool sim_check_converged(sim_t *s);

/* Snapshots (sim_snap.c). The directory for the files on n->sdisk. */
void sim_snap_disk_init(sim_node_t *n);

/* The state machine of g snapshots what it applied, if it may: durable at once on the toy disk; on the WAL
 * disk durable at the next group commit, before its write, and reported to the core at its end. */
void sim_snap_take(sim_t *s, sim_node_t *n, int g);

/* Stores a received chunk (not synced). */
void sim_snap_chunk(sim_t *s, sim_node_t *n, int g, const wr_raft_snap_chunk_t *c);

/* Loads the received snapshot into the state machine; durable at the next group commit. */
void sim_snap_install(sim_t *s, sim_node_t *n, int g, const wr_raft_snapshot_t *snap);

/* Group commit starts: snapshots taken or installed and pending join the batch. */
void sim_snap_batch(sim_node_t *n, int groups);

/* The batch is written: its snapshots are made durable first. */
void sim_snap_flush(sim_t *s, sim_node_t *n);

/* Tells the core of g its snapshot taken or installed is durable (outside ready/advance). */
void sim_snap_notify(sim_t *s, sim_node_t *n, int g);

/* Attaches the chunk a SNAP message asks for; false: not this member's snapshot, drop it. */
bool sim_snap_fill(const sim_t *s, const sim_member_t *m, wr_raft_msg_t *msg);

/* Restart: the stored snapshot into *meta and the state machine; false if its CRC failed. */
bool sim_snap_load(sim_t *s, sim_node_t *n, int g, wr_raft_snapshot_t *meta);

/* Flips a bit of a stored snapshot file chosen by pick (n is down); false if there is none. */
bool sim_snap_flip(sim_t *s, sim_node_t *n, uint64_t pick);

/* Applies a committed entry to g's state machine. */
void sim_sm_apply(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e);

/* Frees the member's state machine and snapshot. */
void sim_snap_free(sim_member_t *m);

/* The metadata group (sim_topo.c). Writes a random definition change record into buf; returns its length. */
size_t sim_topo_record(sim_t *s, char *buf, size_t cap);
/* Applies e (a record after the 8-byte id, or nothing) to sm, then checks its dump at e->index. */
void sim_topo_apply(sim_t *s, int node, int g, sim_sm_t *sm, const wr_raft_entry_t *e);
/* Fails the run if sm's dump differs from another member's at index (the first one seen there counts). */
void sim_topo_check_at(sim_t *s, int node, int g, uint64_t index, sim_sm_t *sm);
/* sm's definitions as a snapshot's bytes (malloc'd), and loaded back from them (false: malformed). */
char *sim_topo_snapshot(sim_sm_t *sm, size_t *len);
bool sim_topo_load(sim_sm_t *sm, const uint8_t *p, size_t len);
/* Frees sm's definitions. */
void sim_topo_free(sim_sm_t *sm);

/* The quorum-queue group (sim_qfifo.c). Its clients and model for run s (s->qfifo), and their end. */
void sim_qfifo_new(sim_t *s);
void sim_qfifo_free(sim_t *s);
/* The clients' moves of one step: publishes, settlements, retries, the leader's TICK (drain when healing). */
void sim_qfifo_step(sim_t *s);
/* Applies e to member node's machine; the first applier of e->index feeds the model, the others must match.
 */
void sim_qfifo_apply(sim_t *s, int node, int g, sim_sm_t *sm, const wr_raft_entry_t *e);
/* Fails the run if sm's machine differs from the first applier's at index. */
void sim_qfifo_check_at(sim_t *s, int node, int g, uint64_t index, sim_sm_t *sm);
/* sm's machine as a snapshot's bytes (malloc'd), and loaded back from them (false: malformed). */
char *sim_qfifo_snapshot(sim_sm_t *sm, size_t *len);
bool sim_qfifo_load(sim_sm_t *sm, const uint8_t *p, size_t len);
void sim_qfifo_sm_free(sim_sm_t *sm);
/* True once every client is done and every message settled or dead-lettered. */
bool sim_qfifo_drained(const sim_t *s);
/* After the drain: every confirmed enqueue is settled or dead-lettered. */
void sim_qfifo_final(sim_t *s);
/* Adds the run's counters to out: confirms, duplicates, rejects, deliveries, redeliveries, dead letters,
 * consumer timeouts, channels down, enqueues out of sequence. */
void sim_qfifo_stats_add(const sim_t *s, uint64_t out[SIM_QF_STATS]);
/* Traces what each group still waits for (a drain that does not end). */
void sim_qfifo_dump(sim_t *s);

#endif
