/* SPDX-License-Identifier: MIT */
/*
 * The Raft driver runs this node's Raft groups (cluster/raft.h, a pure core)
 * on the loop: one node-wide WAL (storage/wal.h) in DIR/wal, written and
 * fsynced on its storage thread (storage/wal_thread.h: group commit for every
 * group), state-machine snapshots in DIR/snap/<group>/ (temporary file,
 * fdatasync, rename, directory fsync; chunks received from a leader gathered
 * in a receiving file and checked by CRC32C before install), a tick timer,
 * Raft messages over the peer links (wr_peer_send / on_raft), and proposals
 * forwarded from a follower to the leader as APP messages of kinds
 * WR_PEER_APP_RAFT_FIRST..LAST (broker/cluster/link.h). docs/RAFT.md
 * ("The driver") describes it.
 */
#ifndef WR_BROKER_CLUSTER_RAFTD_H
#define WR_BROKER_CLUSTER_RAFTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/cluster_config.h"
#include "broker/cluster/link.h"
#include "core/buf.h"

struct event_base;
typedef struct wr_raftd_s wr_raftd_t;
typedef struct wr_rgroup_s wr_rgroup_t;

/* The metadata group's id; quorum queues get others. */
#define WR_RGROUP_META 1

/* A node's Raft member id: CRC32C of its name, 0 mapped to 1. The cluster
 * config refuses two node names with the same id. */
uint32_t wr_raftd_node_id(const char *name);

/*
 * Membership news (broker/cluster/membership.h); either may be NULL. Called
 * on the loop from the driver; neither may close it.
 */
typedef struct {
    /* group applied a committed change that removes this node (a member until then). */
    void (*removed)(void *ud, uint64_t group);
    /* node asked for a vote in group although this member's committed
     * membership lacks it and its log is no newer than what this member has
     * committed: it was removed (or never added) and does not know it. */
    void (*stranger)(void *ud, uint64_t group, const char *node);
    void *ud;
} wr_raftd_watch_t;

typedef struct {
    struct event_base *base;
    wr_peer_links_t *links;             /* the driver routes its APP kinds and sets no handler of its own */
    const wr_cluster_config_t *cluster; /* self and the nodes' names */
    const char *dir;                    /* DATA_DIR/raft; created if absent */
    unsigned tick_ms;                   /* 0: 100 */
    unsigned election_ticks;            /* 0: 10 (an election timeout of 1-2 s) */
    unsigned heartbeat_ticks;           /* 0: 2 */
    const struct wr_vfs_s *vfs;         /* NULL: the real file system (tests pass a slow one) */
    unsigned snap_chunk;                /* bytes per snapshot chunk sent or read at load; 0: 256 KiB */
    wr_raftd_watch_t watch;             /* copied */
} wr_raftd_opts_t;

/*
 * Opens the WAL in o->dir (recovering every group found), starts its storage
 * thread and the tick. The server hands Raft messages from the links to
 * wr_raftd_on_raft. WR_OK, or an error (logged).
 */
int wr_raftd_open(const wr_raftd_opts_t *o, wr_raftd_t **out);
/*
 * Stops the storage thread (what is in flight is written, then what is
 * staged), ends every pending proposal (done with WR_ETIMEDOUT when it may
 * have been appended, else WR_ENOENT: close before freeing what their ud
 * points to) and frees every group. NULL is a no-op. Not from a done.
 */
void wr_raftd_close(wr_raftd_t *d);
/* A Raft message from a peer (the links' on_raft). */
void wr_raftd_on_raft(wr_raftd_t *d, const char *node, uint64_t group, const wr_raft_msg_t *m);

/* A snapshot being loaded, read in bounded chunks (wr_rgroup_snap_in_read). */
typedef struct wr_rgroup_snap_in_s wr_rgroup_snap_in_t;

/* The state machine a group drives. Every call is on the loop. */
typedef struct {
    /*
     * A committed NORMAL entry, in index order, once per index per run. At
     * open the group loads its snapshot (snapshot_load) then applies the
     * committed entries after it again, so apply must be deterministic: every
     * member computes the same result from the same entries.
     */
    void (*apply)(void *ud, uint64_t index, const uint8_t *data, size_t len);
    /* The whole state as of the last applied entry, appended to out (which may
     * be written out on the way with wr_rgroup_snap_spill). WR_OK, WR_ENOMEM,
     * or an error of wr_rgroup_snap_spill. */
    int (*snapshot_save)(void *ud, wr_buf_t *out);
    /* Replaces the state with a snapshot's bytes (at open, or installed from the leader), given whole.
     * WR_OK or WR_ESYNTAX. NULL when snapshot_stream is set. */
    int (*snapshot_load)(void *ud, const uint8_t *data, size_t len);
    /* The leader this member knows changed (NULL: none known). May be NULL. */
    void (*leader_changed)(void *ud, const char *leader);
    /* Whether a periodic snapshot (every snapshot_every entries) is worth
     * taking now; a follower needing one gets it regardless. NULL: always.
     * A quorum queue declines while its live messages outweigh the log a
     * snapshot would free. */
    bool (*snapshot_worth)(void *ud);
    /* On the leader, just before it appends a NORMAL entry (its own proposal
     * or one a follower forwarded): may rewrite the entry in place, same
     * length (a copy of the proposer's bytes), so that every member applies
     * what the leader wrote, e.g. the leader's clock. May be NULL. */
    void (*stamp)(void *ud, uint8_t *entry, size_t len);
    /* Instead of snapshot_load (may be NULL): replaces the state with a snapshot it reads from in
     * (wr_rgroup_snap_in_read), so a large one is never whole in memory; its CRC was checked before the
     * call. The state must be left unchanged on failure, and bytes left unread are the machine's own
     * error. WR_OK or WR_ESYNTAX. */
    int (*snapshot_stream)(void *ud, wr_rgroup_snap_in_t *in);
} wr_rgroup_sm_t;

/*
 * From snapshot_stream only: the next len bytes of the snapshot copied to to,
 * or skipped unread when to is NULL. The driver reads the file in chunks of
 * its snap_chunk bytes. WR_OK; WR_ESYNTAX (fewer than len bytes left: nothing
 * is consumed); WR_EIO.
 */
int wr_rgroup_snap_in_read(wr_rgroup_snap_in_t *in, void *to, uint64_t len);
/* Bytes of the state machine's part consumed so far: the offset wr_rgroup_snap_read takes for the next. */
uint64_t wr_rgroup_snap_in_offset(const wr_rgroup_snap_in_t *in);
/* Bytes of the state machine's part not consumed yet. */
uint64_t wr_rgroup_snap_in_left(const wr_rgroup_snap_in_t *in);

/*
 * Opens group id on this node: its stored snapshot and log (from the WAL)
 * are loaded and the committed entries applied before this returns. members
 * (node names) are the first voters of a group with no stored state; a group
 * with stored state ignores them. A snapshot is taken every snapshot_every
 * applied entries (0: 4096). NULL on error (logged).
 */
wr_rgroup_t *wr_rgroup_open(wr_raftd_t *d, uint64_t id, const char *const *members, size_t n,
                            unsigned snapshot_every, const wr_rgroup_sm_t *sm, void *ud);

/*
 * done(ud, status, index), called once on the loop, never inside
 * wr_rgroup_propose:
 *  - WR_OK: the entry is committed and was applied on THIS node just before
 *    the call (so the state machine's result for index is at hand);
 *  - WR_ENOENT: no leader is known, or the leader is unreachable (nothing was
 *    appended: the change did not happen);
 *  - WR_ETIMEDOUT: not applied here within timeout_ms (it may still commit:
 *    the caller must say the outcome is unknown);
 *  - WR_EAGAIN-like loss (an entry overwritten by a new leader): WR_ENOENT.
 * done may propose again; it must not close the driver. The driver closing
 * (or the group's deletion taking effect) ends every pending proposal, and a
 * proposal made from those calls is refused (WR_ENOENT).
 */
typedef void (*wr_rgroup_done_fn)(void *ud, int status, uint64_t index);

/* The largest entry a proposal may carry: an AppendEntries batch (64
 * entries) must stay within a peer-link frame. */
#define WR_RGROUP_MAX_ENTRY (4u << 20)

/*
 * Proposes data (copied) from any member: the leader appends it; a follower
 * forwards it to the leader it knows. WR_OK (done will be called),
 * WR_ETOOBIG (len over WR_RGROUP_MAX_ENTRY), WR_ENOENT (the group is being
 * freed: the driver is closing or its deletion is taking effect) or
 * WR_ENOMEM (done will not).
 */
int wr_rgroup_propose(wr_rgroup_t *g, const void *data, size_t len, unsigned timeout_ms,
                      wr_rgroup_done_fn done, void *ud);

/*
 * The group is gone for good (its quorum queue was deleted): pending
 * proposals end (done with WR_ENOENT or WR_ETIMEDOUT, as at close), its
 * messages from peers are dropped, its snapshot files are removed and the
 * WAL drops its entries (wr_wal_group_delete). From anywhere on the loop, an
 * apply included: the state machine hears nothing more at once, the rest
 * happens when the driver next runs.
 */
void wr_rgroup_delete(wr_rgroup_t *g);

/*
 * On the leader: hands leadership to member node (Raft's transfer: the
 * leader brings it up to date and tells it to campaign; proposals wait
 * meanwhile; abandoned after an election timeout). WR_OK; WR_ENOENT when this
 * member does not lead, node is not another voter, or the group stopped.
 */
int wr_rgroup_transfer(wr_rgroup_t *g, const char *node);

/*
 * Reads back committed NORMAL entry index of g from the WAL: the payload apply
 * was given, appended to out. For a state machine that keeps no copy of what
 * it applied (a quorum queue's bodies). WR_OK; WR_ENOENT: the WAL no longer
 * holds it (a snapshot compacted it; see wr_rgroup_snap_read) or never did;
 * WR_ESYNTAX: damaged (reported) or not a NORMAL entry; WR_ENOMEM; WR_EIO.
 */
int wr_rgroup_read(wr_rgroup_t *g, uint64_t index, wr_buf_t *out);

/*
 * Reads len bytes at off of the state machine's part of the snapshot this
 * member serves (off counts from the start of the bytes its snapshot_save
 * wrote or snapshot_load was given for that snapshot), appended to out. The
 * caller checks it reads what it expects: a snapshot taken or installed since
 * replaces the one served. WR_OK; WR_ENOENT (no snapshot, or the range is
 * outside it); WR_ENOMEM; WR_EIO.
 */
int wr_rgroup_snap_read(wr_rgroup_t *g, uint64_t off, size_t len, wr_buf_t *out);

/*
 * From snapshot_save only: writes what out holds to the snapshot file and
 * empties out, so a snapshot need not fit in memory at once. Bytes appended
 * to out before this call can no longer be patched. WR_OK (also when g is not
 * writing a snapshot: out is kept), WR_EIO.
 */
int wr_rgroup_snap_spill(wr_rgroup_t *g, wr_buf_t *out);

/* What the management API and warrenctl show of a group on this node. */
typedef struct {
    const char *role;   /* "leader", "follower", "candidate", "pre_candidate" */
    const char *leader; /* node name, NULL when unknown */
    uint64_t term, commit, applied, last_index, snapshot_index;
    uint64_t elections;  /* elections this member started */
    uint64_t timeouts;   /* proposals made here whose outcome was unknown at their deadline (WR_ETIMEDOUT) */
    uint64_t read_backs; /* payloads read back from the WAL (the core keeps none it can read back) */
    size_t n_members;
    const char *members[9]; /* node names */
    bool voter[9];
    uint64_t
        match[9]; /* on the leader: the last index each member acknowledged (its own: last_index); else 0 */
} wr_rgroup_status_t;
void wr_rgroup_status(const wr_rgroup_t *g, wr_rgroup_status_t *st);

/* Whether node is in g's committed membership (voter or learner) on this member. */
bool wr_rgroup_committed_member(const wr_rgroup_t *g, const char *node);

/* How long a membership change may take before done says WR_ETIMEDOUT. */
#define WR_RGROUP_CHANGE_TIMEOUT_MS 30000

/*
 * Membership (warrenctl cluster join/leave/forget), from any member (a
 * follower forwards it): the leader adds node as a learner, then promotes it
 * once its acknowledged index is near the leader's last (add), or removes it.
 * done as for proposals, with index the final CONFIG entry's, or the error
 * of wr_raft_change (WR_EEXIST: already a voter; WR_EUNKNOWN: removing a
 * non-member; WR_ESYNTAX: the last voter; WR_ETOOBIG: no room). WR_OK (done
 * will be called), WR_ENOENT (node is not in the cluster configuration, or
 * the group is being freed) or WR_ENOMEM (done will not).
 */
int wr_rgroup_add_member(wr_rgroup_t *g, const char *node, wr_rgroup_done_fn done, void *ud);
int wr_rgroup_remove_member(wr_rgroup_t *g, const char *node, wr_rgroup_done_fn done, void *ud);

#endif
