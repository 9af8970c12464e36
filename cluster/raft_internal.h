/* SPDX-License-Identifier: MIT */
/*
 * The fields of wr_raft_t, shared by the files of cluster/ that implement the
 * core (raft.c: elections and terms; raft_replicate.c: the leader's side of
 * replication; raft_ready.c: the output batch). Nothing outside cluster/.
 */
#ifndef WR_CLUSTER_RAFT_INTERNAL_H
#define WR_CLUSTER_RAFT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "cluster/raft_log.h"

enum { PEER_PROBE = 0, PEER_REPLICATE = 1, PEER_SNAPSHOT = 2 };

/* Encoded membership: 5 bytes per member (raft_conf.c). */
#define WR_RAFT_CONF_REC 5

/* The leader's view of one member (and a candidate's tally of its vote). */
typedef struct {
    uint32_t id;
    uint8_t state;   /* PEER_PROBE or PEER_REPLICATE */
    bool probe_sent; /* probing: one AppendEntries out, wait for its answer */
    bool active;     /* heard from since the last check-quorum round */
    bool voter;      /* false: a learner, never counted */
    bool voted, granted;
    bool snap_sent; /* PEER_SNAPSHOT: one chunk out, wait for its answer */
    uint64_t match; /* highest index known replicated and durable there */
    uint64_t next;  /* next index to send; PEER_SNAPSHOT: the lowest snapshot index it can use */
    uint64_t hb_match;
    uint64_t snap_off; /* PEER_SNAPSHOT: the next byte of the snapshot to send */
} wr_raft_peer_t;

typedef struct {
    wr_raft_msg_t *m;
    size_t n, cap;
} wr_raft_msgq_t;

struct wr_raft_s {
    wr_raft_config_t cfg;
    wr_raft_role_t role;
    uint64_t term;
    uint32_t vote;
    uint32_t leader;
    uint64_t commit;
    uint64_t applied;
    wr_raft_log_t log;
    wr_raft_peer_t peers[WR_RAFT_MAX_PEERS]; /* the membership in force, this member included if in it */
    size_t n_peers;
    uint64_t conf_index; /* the CONFIG entry in force (0: cfg.peers) */
    unsigned elapsed, hb_elapsed, timeout;
    uint64_t rng;
    uint64_t leader_match; /* follower: highest index known to match this term's leader */
    uint64_t acked;        /* follower: highest index acknowledged this term */
    uint64_t abstain;      /* damaged log: no votes until caught up in a later term (0: off) */
    bool bcast;            /* leader: new entries to send at the next ready */
    bool bcast_commit;     /* leader: commit moved, tell every member at the next ready */
    uint32_t transfer_to;  /* leader: handing over to this member (0: none) */
    unsigned transfer_elapsed;
    wr_raft_hard_state_t hs_handed;
    wr_raft_msgq_t out, out_sync; /* msgs, msgs_after_sync */
    uint64_t rd_unstable, rd_applied;
    wr_raft_hard_state_t rd_hs;
    /* The last snapshot: the log's offset is at or below it; its membership encoded. */
    uint64_t snap_index, snap_term;
    wr_raft_entry_t snap_conf_e; /* a CONFIG entry (index: where the membership comes from) */
    uint8_t snap_conf[WR_RAFT_MAX_PEERS * WR_RAFT_CONF_REC];
    bool snap_missing;  /* cfg.snapshot_lost: nothing applies until one is installed */
    bool snap_wanted;   /* leader: a member needs a snapshot newer than snap_index */
    bool compact_ready; /* the stored log may be compacted to the log's offset */
    bool install_ready; /* a snapshot was installed: hand it over */
    /* Follower: the snapshot being received, and a checked chunk to hand over. */
    uint64_t rx_index, rx_term, rx_off;
    uint32_t rx_crc;
    uint32_t chunk_len;
    uint8_t *chunk;
    uint64_t chunk_off;
    bool chunk_last;
};

/* Queues m to send (after the next sync if after_sync). WR_OK or WR_ENOMEM. */
int wr_raft_send(wr_raft_t *r, const wr_raft_msg_t *m, bool after_sync);

/* The voters needed for a majority of the membership in force. */
size_t wr_raft_quorum(const wr_raft_t *r);

/* True if id is a voter of the membership in force. */
bool wr_raft_is_voter(const wr_raft_t *r, uint32_t id);

/* Puts in force the membership of the last CONFIG entry in the log (else cfg.peers). */
void wr_raft_conf_reload(wr_raft_t *r);

/* Steps down to follower of term (leader 0 if unknown). */
void wr_raft_become_follower(wr_raft_t *r, uint64_t term, uint32_t leader);

/* Leader: resets every member's progress for a new term. */
void wr_raft_progress_reset(wr_raft_t *r);

/* Leader: sends what each member lacks; with empty, also members that lack nothing. */
int wr_raft_bcast_append(wr_raft_t *r, bool empty);

/* Leader: a heartbeat to every member. */
int wr_raft_bcast_heartbeat(wr_raft_t *r);

/* Leader: handles an AppendEntries or heartbeat answer. */
int wr_raft_leader_step(wr_raft_t *r, const wr_raft_msg_t *m);

/* Leader: tells the transfer target to campaign once it holds the whole log. */
int wr_raft_transfer_check(wr_raft_t *r);

/* Leader: advances commit by the current-term rule; true if it moved. */
bool wr_raft_maybe_commit(wr_raft_t *r);

/* Leader: sends p the next chunk of the snapshot (or asks the driver for a newer one). */
int wr_raft_snap_send(wr_raft_t *r, wr_raft_peer_t *p);

/* Leader: p needs a snapshot at or past index (a new transfer unless one is under way). */
int wr_raft_snap_start(wr_raft_t *r, wr_raft_peer_t *p, uint64_t index);

/* Leader: handles a SNAP_RESP. */
int wr_raft_snap_resp(wr_raft_t *r, wr_raft_peer_t *p, const wr_raft_msg_t *m);

/* Follower: handles a SNAP chunk from the leader. */
int wr_raft_snap_recv(wr_raft_t *r, const wr_raft_msg_t *m);

/* Follower waiting for a snapshot (snap_missing): asks the leader for one. */
int wr_raft_snap_request(wr_raft_t *r, uint32_t to);

/* Records (index, term, conf) as the last snapshot, conf encoded as a CONFIG entry. */
void wr_raft_snap_set(wr_raft_t *r, uint64_t index, uint64_t term, const wr_raft_conf_t *conf);

/* Sends the follower's acknowledgement of what is durable and matches the leader. */
int wr_raft_send_ack(wr_raft_t *r);

/* Encodes c as a CONFIG payload into buf; returns its length. */
uint32_t wr_raft_conf_encode(const wr_raft_conf_t *c, uint8_t *buf);

#endif
