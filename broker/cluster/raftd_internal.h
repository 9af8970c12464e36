/* SPDX-License-Identifier: MIT */
/*
 * The Raft driver's shared state, for broker/cluster/raftd*.c only: the
 * driver (raftd.c: WAL, tick, ready loop), its groups, proposals waiting for
 * an outcome (raftd_propose.c) and snapshot files (raftd_snap.c).
 */
#ifndef WR_BROKER_CLUSTER_RAFTD_INTERNAL_H
#define WR_BROKER_CLUSTER_RAFTD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/raftd.h"
#include "core/list.h"
#include "cluster/raft.h"
#include "storage/vfs.h"
#include "storage/wal.h"
#include "storage/wal_thread.h"

struct event;

/* Entries a leader keeps in memory for members behind it (one AppendEntries batch); older ones: the WAL. */
#define WR_RAFTD_PAYLOAD_WINDOW 64
/* A WAL file's size: write-behind reads a whole one into memory to move it into segment files. */
#define WR_RAFTD_WAL_SIZE (16u << 20)

/* A message that waits for the disk (msgs_after_sync), its entries copied. */
typedef struct {
    uint64_t seq; /* it may leave once the driver's synced seq reaches this */
    wr_raft_msg_t m;
    wr_raft_entry_t *entries;
} wr_raftd_held_t;

/* What a proposal asks for. */
enum { WR_RAFTD_OP_DATA = 0, WR_RAFTD_OP_ADD = 1, WR_RAFTD_OP_REMOVE = 2 };

/* Where a proposal stands. */
enum {
    WR_RAFTD_WAIT_LEADER = 0, /* forwarded: the leader's (term, index) is due */
    WR_RAFTD_WAIT_CHANGE,     /* leader: a membership step waits for its turn (retried each tick) */
    WR_RAFTD_WAIT_LEARNER,    /* leader: the learner entry (term, index) must commit */
    WR_RAFTD_WAIT_CATCHUP,    /* leader: the learner must catch up before its promotion */
    WR_RAFTD_WAIT_APPLY,      /* (term, index) known: its local apply ends it */
    WR_RAFTD_FINISHED,        /* status set: done runs from ev */
};

/*
 * A proposal or membership change with an outcome due. On the leader, a
 * change forwarded by a follower has origin set and no done: the leader
 * answers origin with the final entry's (term, index) instead.
 */
typedef struct wr_raftd_prop_s {
    struct wr_raftd_prop_s *next;
    wr_list_t wait; /* WAIT_APPLY, WAIT_LEARNER: in g->waits, by index */
    wr_rgroup_t *g;
    uint8_t op, phase;
    uint32_t member; /* ADD, REMOVE: whom */
    uint64_t req;    /* forwarded by this node: the request id of the answer */
    uint64_t term, index;
    int status;
    char *origin; /* leader: the follower that forwarded it (owned) */
    uint64_t origin_req;
    wr_rgroup_done_fn done;
    void *ud;
    struct event *ev; /* the timeout, then the deferred done */
} wr_raftd_prop_t;

/* The newest snapshot this member has, served to followers in chunks. */
typedef struct {
    wr_vfs_file_t *f; /* open on its file; NULL: none */
    uint64_t len;
    uint32_t crc; /* of the whole file */
    wr_raft_snapshot_t meta;
    uint64_t head; /* where the state machine's bytes start in the file */
} wr_raftd_snap_t;

/* A taken snapshot on its way to the disk (raftd_snap.c). */
typedef struct wr_raftd_snapjob_s wr_raftd_snapjob_t;

/* The snapshot wr_raftd_snap_take is writing: snap.tmp, the bytes written so far and their CRC32C. */
typedef struct {
    wr_vfs_file_t *f; /* NULL: none being written */
    uint64_t len;
    uint32_t crc;
} wr_raftd_snapw_t;

struct wr_rgroup_s {
    wr_raftd_t *d;
    uint64_t id;
    char *dir; /* DIR/snap/<id> */
    wr_raft_t *raft;
    wr_rgroup_sm_t sm;
    void *ud;
    unsigned snapshot_every;
    uint64_t applied; /* the last index applied to the state machine */
    bool dirty;       /* the core may have work: drive it */
    bool broken;      /* a received snapshot could not be installed: the group stopped */
    bool snap_wanted; /* a follower needs a newer snapshot than this leader's */
    bool deleted;     /* wr_rgroup_delete: gone at the end of the next drive */
    bool freeing;     /* its pending proposals are ending for good: it takes no new one */
    bool member;      /* this node is in the membership applied so far (watch.removed) */
    uint32_t leader;  /* as leader_changed last reported it */
    wr_raft_role_t role;
    uint64_t elections;
    uint64_t timeouts;   /* proposals whose outcome was still unknown at their deadline */
    uint64_t read_backs; /* payloads read back from the WAL, to send or to apply */
    uint64_t *match;     /* per cluster node: the highest index it acknowledged (leader) */
    wr_raftd_held_t *held;
    size_t n_held, cap_held;
    wr_raftd_snap_t snap;
    wr_raftd_snapw_t snap_w;
    wr_raftd_snapjob_t *snap_job;        /* written, being made durable on the storage thread; NULL: none */
    wr_raftd_prop_t *props, *props_tail; /* oldest first */
    wr_list_t waits;                     /* the props waiting for an index to apply, lowest index first */
};

struct wr_raftd_s {
    struct event_base *base;
    wr_peer_links_t *links;
    const wr_cluster_config_t *cluster;
    const wr_vfs_t *vfs;
    char *dir;
    unsigned tick_ms, election_ticks, heartbeat_ticks, snap_chunk;
    wr_raftd_watch_t watch;
    uint32_t *ids; /* ids[i]: the member id of cluster->nodes[i] */
    size_t n_ids;  /* the nodes at open; those learnt later are hashed when looked up */
    uint32_t self;
    uint64_t seed;
    wr_wal_t *wal;
    wr_wal_thread_t *wt;
    bool wal_corrupt; /* recovery found a damaged WAL file: every group is damaged */
    bool failed;      /* the WAL failed: nothing more is written or sent */
    struct event *wal_ev, *tick_ev, *drive_ev;
    wr_rgroup_t **groups;
    size_t n_groups, cap_groups;
    /* Every write handed to the WAL bumps seq_written; seq_inflight is what
     * the batch in flight covers, seq_synced what is durable. */
    uint64_t seq_written, seq_inflight, seq_synced;
    uint64_t next_req;
    wr_buf_t scratch; /* an entry being framed for the WAL */
    uint8_t *chunk;   /* snap_chunk bytes: a chunk being sent */
};

/* raftd.c: the node name of member id, or NULL; its index in the cluster config, or -1. */
const char *wr_raftd_name(const wr_raftd_t *d, uint32_t id);
int wr_raftd_slot(const wr_raftd_t *d, uint32_t id);
/* The group with id, or NULL. */
wr_rgroup_t *wr_raftd_group(const wr_raftd_t *d, uint64_t id);
/* Marks g as having work and schedules the drive (never drives inline). */
void wr_raftd_wake(wr_rgroup_t *g);
/* Frees e[0..n) and their payloads. */
void wr_raftd_entries_free(wr_raft_entry_t *e, size_t n);
/*
 * Reads back from the WAL the payload of e, which the core dropped (data
 * NULL): b (reset first) gets the stored record, its type byte then the
 * payload. WR_OK; WR_ESYNTAX if what is stored is not e (another term, length
 * or type) or is damaged; WR_ENOENT, WR_ENOMEM, WR_EIO as wr_wal_read.
 */
int wr_raftd_payload_read(wr_rgroup_t *g, const wr_raft_entry_t *e, wr_buf_t *b);
/* Hands the WAL a snapshot marker for g. WR_OK or the WAL's error (the driver has failed). */
int wr_raftd_wal_snapshot(wr_rgroup_t *g, uint64_t index, uint64_t term);

/* raftd_group.c. Whether id is in c. */
bool wr_raftd_conf_has(const wr_raft_conf_t *c, uint32_t id);
/* Builds g's core from its stored snapshot, log and hard state. WR_OK or an error (logged). */
int wr_raftd_restore(wr_rgroup_t *g, const char *const *members, size_t n);

/* raftd_snap.c. Creates g->dir. WR_OK or WR_EIO (logged). */
int wr_raftd_snap_dir(wr_rgroup_t *g);
/*
 * Reads the stored first voters into ids (at most WR_RAFT_MAX_PEERS), or,
 * when none are stored, stores ids[0..*n) durably. WR_OK or WR_EIO (logged).
 */
int wr_raftd_members(wr_rgroup_t *g, uint32_t *ids, size_t *n);
/*
 * Loads the stored snapshot into the state machine and *meta: WR_OK (index
 * 0: none stored), WR_ESYNTAX (damaged: logged, nothing loaded) or WR_EIO.
 */
int wr_raftd_snap_load(wr_rgroup_t *g, wr_raft_snapshot_t *meta);
/*
 * Takes a snapshot of everything applied, if the core allows one now and
 * none is on its way: written and served on the loop, made durable on the
 * WAL's storage thread before the next batch's write, reported to the core
 * when that batch completes.
 */
void wr_raftd_snap_take(wr_rgroup_t *g);
/* Attaches the chunk m names to *m; false: not this member's snapshot, drop it. */
bool wr_raftd_snap_fill(wr_rgroup_t *g, wr_raft_msg_t *m);
/* Step 0 of a ready: stores a received chunk; installs the stored chunks as s. WR_OK or WR_EIO (logged). */
int wr_raftd_snap_chunk(wr_rgroup_t *g, const wr_raft_snap_chunk_t *c);
int wr_raftd_snap_install(wr_rgroup_t *g, const wr_raft_snapshot_t *s);
/* Closes g's snapshot file; a snapshot on its way is cancelled (never renamed over snap if not yet). */
void wr_raftd_snap_free(wr_rgroup_t *g);

/* raftd_propose.c. Routes the driver's APP kinds. WR_OK or the links' error. */
int wr_raftd_props_route(wr_raftd_t *d);
/* An entry was applied (or skipped) at e->index on this node: proposals waiting for it end. */
void wr_raftd_props_applied(wr_rgroup_t *g, const wr_raft_entry_t *e);
/* A tick: membership changes waiting for their turn move on. */
void wr_raftd_props_tick(wr_rgroup_t *g);
/* Ends every proposal of g now (the driver closes): done(WR_ETIMEDOUT or WR_ENOENT). */
void wr_raftd_props_abort(wr_rgroup_t *g);

#endif
