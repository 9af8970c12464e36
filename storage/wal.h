/* SPDX-License-Identifier: MIT */
/*
 * The node-wide write-ahead log: every Raft group on the node appends its
 * entries, hard state and snapshot markers to one log, made durable with one
 * write and one fdatasync per batch for all groups, then moved behind it
 * into per-group segment files. Synchronous and single-threaded except
 * wr_wal_write, which the driver may run on its storage thread.
 */
#ifndef WR_STORAGE_WAL_H
#define WR_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "storage/vfs.h"

typedef struct wr_wal_s wr_wal_t;
typedef struct wr_wal_batch_s wr_wal_batch_t;

/* What Raft persists besides its entries. */
typedef struct {
    uint64_t term;
    uint64_t vote; /* the member voted for in term, 0 = none */
    uint64_t commit;
    uint64_t abstain; /* Raft's damaged-log mark (wr_raft_hard_state_t), 0 = none */
} wr_wal_hard_t;

/*
 * "Durable up to (group, term, index)": one per group in a completed batch.
 * term/index are those of the last entry the batch wrote for the group (0/0
 * if it wrote none), so a notice for entries overwritten since can be told
 * apart by its term. hard/snapshot: the batch also made the group's hard
 * state / snapshot marker durable.
 */
typedef struct {
    uint64_t group;
    uint64_t term;
    uint64_t index;
    bool hard;
    bool snapshot;
} wr_wal_notice_t;

/* status WR_OK, or WR_EIO: the batch failed and nothing in it may be taken as durable. */
typedef void (*wr_wal_durable_fn)(void *ud, const wr_wal_notice_t *n, int status);
/* A line for the operator's log (torn tails, corruption, failures). */
typedef void (*wr_wal_message_fn)(void *ud, const char *text);

typedef struct {
    const wr_vfs_t *vfs;   /* required */
    const char *dir;       /* required; must exist (its entry durable) */
    uint64_t wal_size;     /* a new WAL file is started past this; 0 = 64 MiB */
    uint64_t segment_size; /* a group's new segment file is started past this; 0 = 8 MiB */
    uint64_t seed;         /* salts the files' CRC seeds; any value, random in production */
    wr_wal_durable_fn durable;
    void *durable_ud;
    wr_wal_message_fn message; /* may be NULL */
    void *message_ud;
    /* Write-behind leaves up to this many full WAL files unread while some entry in the oldest is above its
     * group's durable snapshot: snapshots that pass it spare reading it at all. 0 = read at once. */
    unsigned wb_wait_files;
} wr_wal_opts_t;

/* What recovery found. */
typedef struct {
    uint64_t groups;
    uint64_t entries;       /* entries held after recovery, every group */
    uint64_t wal_files;     /* WAL files replayed */
    uint64_t segment_files; /* segment files read */
    uint64_t torn_bytes;    /* cut from torn tails */
    uint64_t damaged;       /* groups reported damaged */
    bool wal_corrupt;       /* a WAL file was damaged before its tail: every group is damaged */
    uint64_t usec;          /* time taken */
} wr_wal_recovery_t;

typedef struct {
    uint64_t first;      /* first index held (snap_index + 1) */
    uint64_t last;       /* last index held; snap_index when none */
    uint64_t last_term;  /* term of last (snap_term when none) */
    uint64_t durable;    /* every entry <= durable is on disk and reads back */
    uint64_t snap_index; /* entries <= snap_index were dropped by a snapshot marker */
    uint64_t snap_term;
    wr_wal_hard_t hard;
    bool damaged; /* recovery lost entries of this group it had made durable: see docs/STORAGE.md */
} wr_wal_group_info_t;

/*
 * Opens the WAL in o->dir, creating its layout if absent, and recovers every
 * group from its segment files and the WAL (CRC-checked; a torn tail cut,
 * corruption reported and the groups it touches marked damaged), then starts
 * a fresh WAL file. Fills *rec if not NULL. The caller owns *out (close with
 * wr_wal_close). WR_OK, WR_ENOMEM, WR_ETOOBIG (o->dir longer than 3,900
 * bytes) or WR_EIO (reported through o->message).
 */
int wr_wal_open(const wr_wal_opts_t *o, wr_wal_t **out, wr_wal_recovery_t *rec);

/*
 * The owner has made durable its own mark of every group the last recovery
 * reported damaged (Raft's abstain): the WAL forgets the damage. Until it is
 * called, the damage survives a crash: recovery makes a marker durable
 * before it cuts anything damaged, and while the marker is there every
 * recovery reports every group damaged. WR_OK or WR_EIO.
 */
int wr_wal_damage_noted(wr_wal_t *w);

/* Closes files and frees w; jobs still queued get done(WR_AGAIN). A batch must not be in flight. Nothing
 * is synced. NULL is a no-op. */
void wr_wal_close(wr_wal_t *w);

/*
 * Queues entry (group, index) of term with a copy of data[0..len) for the
 * next batch; readable at once. index must be in (snap_index, last + 1]: an
 * index <= last discards the group's entries >= index first (a follower
 * overwriting a conflicting suffix), and recovery honours that. WR_OK,
 * WR_ESYNTAX (index out of that range, or term 0), WR_ETOOBIG (len over 1 GiB
 * less 25 bytes), WR_ENOMEM, WR_EIO (the WAL failed). Creates the group.
 */
int wr_wal_append(wr_wal_t *w, uint64_t group, uint64_t term, uint64_t index, const void *data, size_t len);

/*
 * Queues the group's hard state for the next batch. One that changes only
 * the commit index (Raft never needs that durable) makes no batch of its
 * own: it leaves with the next batch that something else makes, or with
 * wr_wal_sync, and wr_wal_pending_bytes does not count it. WR_OK, WR_ENOMEM
 * or WR_EIO. Creates the group.
 */
int wr_wal_set_hard(wr_wal_t *w, uint64_t group, const wr_wal_hard_t *h);

/*
 * Queues a snapshot marker: entries <= index are dropped. If the group holds
 * index with this term its later entries stay; otherwise the whole log is
 * dropped (Raft's rule for an installed snapshot). A marker at or below the
 * current snap_index is ignored. WR_OK, WR_ENOMEM or WR_EIO.
 */
int wr_wal_snapshot(wr_wal_t *w, uint64_t group, uint64_t index, uint64_t term);

/*
 * Queues the group's deletion (its quorum queue is gone): at once it holds
 * nothing and wr_wal_group_info says WR_ENOENT; once the deletion record is
 * durable, write-behind removes its segment files, and recovery ignores its
 * records before that one. A later append, hard state or snapshot of the
 * same id starts a new incarnation that never sees the old one's entries.
 * WR_OK, WR_ENOENT (not held), WR_ENOMEM or WR_EIO.
 */
int wr_wal_group_delete(wr_wal_t *w, uint64_t group);

/*
 * Reads entry (group, index): its term into *term and its payload appended
 * to out. From memory if not yet written, else from the WAL or the group's
 * segment file, with the CRC checked. WR_OK, WR_ENOENT (not held),
 * WR_ESYNTAX (stored but damaged: reported, never returned as data),
 * WR_ENOMEM, WR_EIO.
 */
int wr_wal_read(wr_wal_t *w, uint64_t group, uint64_t index, uint64_t *term, wr_buf_t *out);

/* The group's state into *out; WR_ENOENT if the WAL holds nothing of it. */
int wr_wal_group_info(const wr_wal_t *w, uint64_t group, wr_wal_group_info_t *out);

/* Calls fn for every group held, in no particular order; stops at fn's first non-zero return. */
int wr_wal_foreach_group(const wr_wal_t *w, int (*fn)(void *ud, uint64_t group), void *ud);

/* Work for the thread that writes the next batch (wr_wal_before_write): touches only what ud owns. */
typedef int (*wr_wal_job_run_fn)(void *ud);
/* Owner's thread: the job ran with that result, or WR_AGAIN: it never ran (the WAL closed first). */
typedef void (*wr_wal_job_done_fn)(void *ud, int status);

/*
 * Queues a job for the next batch: wr_wal_write runs it (in queue order)
 * before it writes the batch, so the job's effect is durable before anything
 * staged from now on can be (the Raft driver makes a snapshot file durable
 * this way, off its event loop, before the marker that relies on it). A job's
 * failure fails only the job. wr_wal_complete calls done, before the durable
 * callbacks; wr_wal_close calls done(WR_AGAIN) for a job that never ran. A
 * queued job makes a batch even when nothing else is staged. WR_OK, WR_ENOMEM
 * or WR_EIO (the WAL failed: not queued, done never called).
 */
int wr_wal_before_write(wr_wal_t *w, wr_wal_job_run_fn run, wr_wal_job_done_fn done, void *ud);

/*
 * Group commit, step 1 (owner's thread): takes everything queued since the
 * last batch into a new batch (*out), framed for the current WAL file, or a
 * new one when it is full, with the jobs queued (wr_wal_before_write).
 * WR_OK, WR_AGAIN (nothing queued but commit-only hard states, or a batch is
 * in flight: only one is), WR_ENOMEM, WR_EIO (the WAL failed).
 */
int wr_wal_prepare(wr_wal_t *w, wr_wal_batch_t **out);

/*
 * Step 2 (any thread, while the owner does not touch b): b's jobs, then one
 * write and one fdatasync (plus a directory fsync when a WAL file is
 * created). Touches only b, the files it names and what its jobs own.
 * Returns WR_OK or WR_EIO (the write; the jobs' results are theirs), also
 * kept in b.
 */
int wr_wal_write(wr_wal_batch_t *b);

/*
 * Step 3 (owner's thread): applies b's result, calls its jobs' done, runs the
 * durable callback once per group in b (status WR_OK, or WR_EIO after which
 * the WAL is failed: every call but reads returns WR_EIO) and frees b.
 * Callbacks may append and queue jobs.
 */
void wr_wal_complete(wr_wal_t *w, wr_wal_batch_t *b);

/* Steps 1-3 inline (tests, the simulator, closing), commit-only hard states and jobs included. WR_OK,
 * WR_AGAIN (nothing queued, or a batch in flight) or an error of the steps. */
int wr_wal_sync(wr_wal_t *w);

/*
 * Write-behind, one step (the storage thread's idle work): moves up to about
 * budget bytes of the oldest full WAL file's entries into their groups'
 * segment files (written, not synced), and deletes that WAL file once all of
 * it lives in segments or was dropped, after one wr_vfs_sync_all; deletes segment
 * files whose entries were all overwritten or snapshotted durably. *more
 * says whether work remains. WR_OK, WR_ESYNTAX (a damaged WAL record:
 * reported; that file stays until the next recovery), WR_ENOMEM, WR_EIO.
 * Not while a batch is in flight (WR_AGAIN).
 */
int wr_wal_writebehind(wr_wal_t *w, uint64_t budget, bool *more);

/* Since open: the full WAL files write-behind read back, and those it retired unread because every group
 * in them was snapshotted past them (the simulator's and wal-bench's measure of that path). */
void wr_wal_wb_counts(const wr_wal_t *w, uint64_t *read, uint64_t *skipped);

/* Bytes queued that the next batch must write and sync (commit-only hard states not counted). */
uint64_t wr_wal_pending_bytes(const wr_wal_t *w);

#endif
