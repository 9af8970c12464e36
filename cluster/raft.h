/* SPDX-License-Identifier: MIT */
/*
 * The Raft core: one wr_raft_t per group per node, a pure state machine with
 * no I/O, clock, threads or globals. The driver feeds it peer messages, ticks,
 * proposals and "durable up to (term, index)" notices, and drains what it must
 * do from a ready batch. docs/RAFT.md describes the design and the contract.
 */
#ifndef WR_CLUSTER_RAFT_H
#define WR_CLUSTER_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wr_raft_s wr_raft_t;

/* Largest voter set a group may have. */
#define WR_RAFT_MAX_PEERS 9

typedef enum {
    WR_RAFT_FOLLOWER = 0,
    WR_RAFT_PRE_CANDIDATE,
    WR_RAFT_CANDIDATE,
    WR_RAFT_LEADER,
} wr_raft_role_t;

typedef enum {
    WR_RAFT_ENTRY_NORMAL = 0, /* an opaque payload for the state machine */
    WR_RAFT_ENTRY_NOOP,       /* the leader's first entry of its term; never applied */
    WR_RAFT_ENTRY_CONFIG,     /* a membership (wr_raft_conf_decode); in force once appended */
} wr_raft_entry_type_t;

/*
 * A log entry. The core owns data of the entries in its log. With
 * cfg.payload_window set, the core drops the payload of a NORMAL entry it no
 * longer needs in memory (durable here, handed over to apply, and on a leader
 * acknowledged by every member or older than the window): data is then NULL
 * while len stays, and the driver reads the payload back from its stored log
 * wherever it meets such an entry (msgs[] entries and committed[]; never
 * entries[] to persist). Received messages always carry their payloads.
 */
typedef struct {
    uint64_t term;
    uint64_t index;
    uint8_t *data;
    uint32_t len;
    uint8_t type; /* wr_raft_entry_type_t */
} wr_raft_entry_t;

typedef enum {
    WR_RAFT_MSG_APP = 1,   /* index/log_term: the entry before entries[]; commit */
    WR_RAFT_MSG_APP_RESP,  /* ok: index = match; reject: index = refused prev, hint_* */
    WR_RAFT_MSG_VOTE,      /* index/log_term: the candidate's last entry */
    WR_RAFT_MSG_VOTE_RESP, /* reject or grant */
    WR_RAFT_MSG_PREVOTE,   /* term: the term the sender would campaign in */
    WR_RAFT_MSG_PREVOTE_RESP,
    WR_RAFT_MSG_HEARTBEAT,      /* commit: min(leader commit, the follower's match) */
    WR_RAFT_MSG_HEARTBEAT_RESP, /* index: the follower's last index (abstaining: the last one verified) */
    WR_RAFT_MSG_TIMEOUT_NOW,    /* leadership transfer: campaign now, skipping pre-vote */
    WR_RAFT_MSG_SNAP,           /* a snapshot chunk: index/log_term name the snapshot (see below) */
    WR_RAFT_MSG_SNAP_RESP,      /* index: the snapshot; offset: the next byte wanted; reject: "send me one >=
                                   index" */
} wr_raft_msg_type_t;

/*
 * A message between two members of one group. In a ready batch, entries
 * point into the sender's log; a driver that keeps a message past
 * wr_raft_advance copies them. Received messages are only read.
 *
 * A SNAP message leaves the core without its bytes: entries[0] is the
 * snapshot's membership as a CONFIG entry, and the driver attaches the chunk
 * of its snapshot (index, log_term) that starts at offset: data/len (any
 * length it likes, at most a few hundred KiB), crc = CRC32C of those bytes,
 * last = the chunk ends the snapshot, and then total_crc = CRC32C of the
 * whole snapshot. A driver whose newest snapshot is not (index, log_term)
 * drops the message; the transfer then restarts from the leader's next one.
 */
typedef struct {
    uint8_t type; /* wr_raft_msg_type_t */
    bool reject;
    bool transfer; /* VOTE: a transfer the leader asked for; voters ignore their lease */
    uint32_t from, to;
    uint64_t term;
    uint64_t index, log_term;
    uint64_t commit;
    uint64_t hint_index, hint_term; /* APP_RESP reject: the follower's conflict hint */
    const wr_raft_entry_t *entries;
    size_t n_entries;
    uint64_t offset;     /* SNAP, SNAP_RESP: byte offset in the snapshot */
    const uint8_t *data; /* SNAP: the chunk (attached by the driver) */
    uint32_t len;        /* SNAP: its length */
    uint32_t crc;        /* SNAP: CRC32C of data[0..len) */
    uint32_t total_crc;  /* SNAP with last: CRC32C of the whole snapshot */
    bool last;           /* SNAP: the chunk ends the snapshot */
} wr_raft_msg_t;

/* What must survive a crash, besides the log. */
typedef struct {
    uint64_t term;
    uint32_t vote; /* 0: none */
    uint64_t commit;
    uint64_t abstain; /* non-zero: the log was damaged; no votes until caught up in a later term */
} wr_raft_hard_state_t;

typedef struct {
    uint32_t id;                       /* this member, non-zero */
    uint32_t peers[WR_RAFT_MAX_PEERS]; /* the first voters (before any CONFIG entry); may lack id */
    size_t n_peers;
    unsigned election_ticks;    /* the timeout is randomised in [t, 2t) */
    unsigned heartbeat_ticks;   /* < election_ticks */
    unsigned max_inflight;      /* AppendEntries in flight per follower */
    unsigned max_batch;         /* entries per AppendEntries */
    uint64_t seed;              /* the only source of randomness */
    bool log_damaged;           /* the stored log lost records to corruption (see wr_raft_new) */
    bool snapshot_lost;         /* the stored snapshot failed its CRC (see wr_raft_restore) */
    unsigned snapshot_trailing; /* entries kept in the log behind a snapshot taken, for slow followers */
    unsigned payload_window;    /* 0: every payload stays in memory; else see wr_raft_entry_t: a leader
                                   keeps those of the last payload_window entries that some member lacks */
} wr_raft_config_t;

/* A group's membership: voters and learners (non-voters that only replicate). */
typedef struct {
    uint32_t id[WR_RAFT_MAX_PEERS];
    bool voter[WR_RAFT_MAX_PEERS];
    size_t n;
    uint64_t index; /* the CONFIG entry it comes from (0: the configured first voters) */
} wr_raft_conf_t;

/* A state-machine snapshot as the core knows it: what it covers, and the membership then. */
typedef struct {
    uint64_t index; /* the last entry it covers; 0: none */
    uint64_t term;
    wr_raft_conf_t conf; /* the membership in force at index (n 0: unknown) */
} wr_raft_snapshot_t;

/* A chunk of a snapshot being received, for the driver to store at offset. */
typedef struct {
    uint64_t index, term; /* the snapshot it belongs to */
    uint64_t offset;      /* 0: a new transfer; earlier chunks stored for it are void */
    const uint8_t *data;
    uint32_t len;
    bool last;
} wr_raft_snap_chunk_t;

/*
 * One batch of work. The ordering contract, per ready, in order:
 *  0. Snapshots: store chunk (if has_chunk) at its offset; if installed, the
 *     stored chunks form `snapshot` (every CRC checked): load it into the
 *     state machine and make it durable, then call wr_raft_persisted with
 *     its (term, index) (the follower acknowledges it only then). If
 *     compact_index is non-zero, stored entries <= compact_index may go (if
 *     the stored log lacks (compact_index, compact_term), all of it goes);
 *     a snapshot the driver took must be durable before that.
 *  1. Append entries[] to the log (entries[0].index may be at or below what
 *     is already stored: the stored log is cut there first), then store hs if
 *     hs_changed. Both may be written without waiting for the disk.
 *  2. msgs[] may leave at once: they depend on nothing that is not durable.
 *  3. msgs_after_sync[] may leave only once everything this ready and every
 *     earlier one handed over is durable (votes, vote requests, rejections).
 *  4. committed[] may be applied at once, in order (NOOP entries included,
 *     for the applied index; the state machine skips them).
 *  5. When entries up to (term, index) are durable, call wr_raft_persisted
 *     with the last such entry's term and index (a late notice is harmless).
 * Pointers stay valid until wr_raft_advance; call no other wr_raft_* function
 * on this group between wr_raft_ready and wr_raft_advance.
 */
typedef struct {
    bool hs_changed;
    wr_raft_hard_state_t hs;
    const wr_raft_entry_t *entries;
    size_t n_entries;
    const wr_raft_msg_t *msgs;
    size_t n_msgs;
    const wr_raft_msg_t *msgs_after_sync;
    size_t n_msgs_after_sync;
    const wr_raft_entry_t *committed;
    size_t n_committed;
    bool has_chunk; /* follower: store chunk (step 0) */
    wr_raft_snap_chunk_t chunk;
    bool installed; /* follower: the chunks stored form snapshot, checked: install it */
    wr_raft_snapshot_t snapshot;
    uint64_t compact_index, compact_term; /* non-zero: the stored log's prefix may go (step 0) */
    bool snapshot_wanted; /* leader: a member needs a snapshot newer than the last taken: take one */
} wr_raft_ready_t;

/* One single-server membership change (wr_raft_change). */
typedef enum {
    WR_RAFT_ADD_LEARNER = 0, /* a new member that replicates but neither votes nor counts */
    WR_RAFT_PROMOTE,         /* a learner becomes a voter */
    WR_RAFT_REMOVE,          /* a voter or learner leaves; a removed leader steps down once it commits */
} wr_raft_change_t;

/* A read-only view of the core, for drivers, tests and the simulator. */
typedef struct {
    wr_raft_role_t role;
    uint64_t term;
    uint32_t vote;
    uint32_t leader; /* 0: unknown */
    uint64_t commit;
    uint64_t applied;
    uint64_t stable; /* the durable prefix of the log, as notified */
    uint64_t last_index;
    uint64_t last_term;
    uint64_t abstain;     /* see wr_raft_hard_state_t */
    uint64_t snap_index;  /* the snapshot the log starts after (0: none) */
    uint64_t first_index; /* the first entry the in-memory log holds */
    bool snapshot_lost;   /* waiting for a snapshot from the leader (see wr_raft_restore) */
} wr_raft_status_t;

/*
 * Creates a member from its durable state: hs (NULL: a new member) and the
 * stored log entries[0..n) (copied; indexes dense from 1; a NORMAL entry may
 * come without its payload, data NULL, if cfg->payload_window is set). All of
 * it counts as durable. The membership is that of the last CONFIG entry in the log, else
 * cfg->peers as voters; a member that is not a voter in it never campaigns.
 * With cfg->log_damaged (a CRC found a bad record and the log was cut there)
 * the member may have acknowledged entries it no longer has: it neither votes
 * nor campaigns until a leader of a term after its stored one has brought its
 * log up to an entry of that leader's term (hs->abstain keeps that durable
 * across further restarts). While it abstains its stored commit is not
 * trusted either (the damage may have brought back entries it had
 * overwritten): it starts with commit 0 and learns it from a leader. Returns
 * NULL on allocation failure or an invalid config.
 */
wr_raft_t *wr_raft_new(const wr_raft_config_t *cfg, const wr_raft_hard_state_t *hs,
                       const wr_raft_entry_t *entries, size_t n);

/*
 * As wr_raft_new, for a member whose state machine was restored from a stored
 * snapshot (NULL or index 0: none): the log then starts after snap->index;
 * stored entries at or below it are skipped (entries[0].index may be anywhere
 * up to snap->index + 1; a gap after it is invalid). The snapshot's entries
 * count as committed and applied. With cfg->snapshot_lost the stored snapshot
 * failed its CRC and snap names only the point the stored log was compacted
 * to (conf.n 0 if unknown): the member applies nothing and asks the leader
 * for a snapshot at or past it; the driver should also set log_damaged, as
 * the member lost state it may have acknowledged. NULL on allocation failure
 * or invalid input.
 */
wr_raft_t *wr_raft_restore(const wr_raft_config_t *cfg, const wr_raft_hard_state_t *hs,
                           const wr_raft_snapshot_t *snap, const wr_raft_entry_t *entries, size_t n);

/*
 * The state machine took a snapshot of everything applied up to index: *out
 * gets its term and membership. Call it once the snapshot is durable (with
 * that term and membership stored beside its bytes: wr_raft_term and
 * wr_raft_conf_at give them beforehand). The log is then compacted to index
 * less cfg.snapshot_trailing entries, and the next ready names the stored
 * prefix that may go (compact_index). Later SNAP messages name this
 * snapshot: the driver serves chunks of its newest one. WR_OK;
 * WR_ESYNTAX: index not in (the last snapshot, applied]; WR_AGAIN: the
 * member waits for a snapshot from the leader (snapshot_lost).
 */
int wr_raft_snapshot_taken(wr_raft_t *r, uint64_t index, wr_raft_snapshot_t *out);

/* The term of the entry at index, if the core knows it (the snapshot's own included), else 0. */
uint64_t wr_raft_term(const wr_raft_t *r, uint64_t index);

/* Fills *c with the membership in force at index (<= the last index; at or past the snapshot). */
void wr_raft_conf_at(const wr_raft_t *r, uint64_t index, wr_raft_conf_t *c);

/* Frees the member and everything it owns. NULL is a no-op. */
void wr_raft_free(wr_raft_t *r);

/* Feeds a message addressed to this member. WR_OK, or WR_ENOMEM. */
int wr_raft_step(wr_raft_t *r, const wr_raft_msg_t *m);

/* Advances the logical clock by one tick. WR_OK, or WR_ENOMEM. */
int wr_raft_tick(wr_raft_t *r);

/*
 * Appends a payload (copied) if this member leads. On WR_OK, *term and *index
 * name the entry: it is committed once wr_raft_ready reports an entry with the
 * same index AND term in committed[]. WR_ENOENT: not the leader (ask
 * wr_raft_status for who is); WR_AGAIN: a leadership transfer is under way;
 * WR_ENOMEM.
 */
int wr_raft_propose(wr_raft_t *r, const void *data, size_t len, uint64_t *term, uint64_t *index);

/*
 * Hands leadership to voter `to`: proposals are refused (WR_AGAIN) while the
 * leader brings `to` up to date and tells it to campaign at once; the
 * transfer is abandoned after an election timeout. WR_OK; WR_ENOENT if this
 * member does not lead or `to` is not another voter.
 */
int wr_raft_transfer(wr_raft_t *r, uint32_t to);

/*
 * Proposes one membership change as a CONFIG entry; *term and *index name it as
 * for wr_raft_propose. The new membership is in force on each member as soon
 * as the entry is in its log (committed or not), and reverts if the entry is
 * cut. WR_ENOENT: not the leader; WR_AGAIN: no entry of this leader's term is
 * committed yet, an earlier change is not committed yet, or a transfer is
 * under way; WR_EEXIST: adding a member; WR_EUNKNOWN: promoting or removing a
 * non-member, or promoting a voter; WR_ETOOBIG: WR_RAFT_MAX_PEERS members
 * already; WR_ESYNTAX: removing the last voter; WR_ENOMEM.
 */
int wr_raft_change(wr_raft_t *r, wr_raft_change_t op, uint32_t id, uint64_t *term, uint64_t *index);

/* Fills *c with the membership in force on this member. */
void wr_raft_conf(const wr_raft_t *r, wr_raft_conf_t *c);

/* Decodes a CONFIG entry's payload into *c (c->index = e->index). WR_OK or WR_ESYNTAX. */
int wr_raft_conf_decode(const wr_raft_entry_t *e, wr_raft_conf_t *c);

/*
 * Reports entries up to (term, index) durable. Ignored unless the log still
 * holds an entry of that term at that index: a notice that arrives after the
 * entry was overwritten must not count the new one as durable. A follower
 * acknowledges the leader from here. WR_OK, or WR_ENOMEM.
 */
int wr_raft_persisted(wr_raft_t *r, uint64_t term, uint64_t index);

/* True when wr_raft_ready would hand over anything. */
bool wr_raft_has_ready(const wr_raft_t *r);

/* Fills *rd with the pending work (see wr_raft_ready_t). WR_OK or WR_ENOMEM. */
int wr_raft_ready(wr_raft_t *r, wr_raft_ready_t *rd);

/* Marks the last ready handed over: its pointers are invalid afterwards. */
void wr_raft_advance(wr_raft_t *r);

/* Fills *st with the member's current view. */
void wr_raft_status(const wr_raft_t *r, wr_raft_status_t *st);

/* The entry at index in the in-memory log, or NULL (also when compacted); data may be NULL (see
 * wr_raft_entry_t). */
const wr_raft_entry_t *wr_raft_entry(const wr_raft_t *r, uint64_t index);

/* Bytes of one wr_raft_t (per-follower state and logs excluded). */
size_t wr_raft_sizeof(void);

#endif
