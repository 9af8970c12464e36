/* SPDX-License-Identifier: MIT */
/*
 * What the files of storage/ share: the store, log, segment and batch
 * structs, and the calls between store.c (owner side), sync.c (the storage
 * thread), log.c and recover.c. Only storage/ includes this.
 */
#ifndef WR_STORAGE_INTERNAL_H
#define WR_STORAGE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/map.h"
#include "storage/seglog.h"
#include "storage/store.h"

#define WR_STORE_MSG_MAX 768
/* A head segment this large (or half a segment, if less) whose records are
 * mostly released is rolled, so that its space comes back once consumed. */
#define WR_STORE_RECLAIM_BYTES (1u << 20)

/*
 * One segment file. A record is "native" to the segment it was appended to;
 * natives are dense, so their places are an array indexed by index - first.
 * Records that compaction copied in from older segments are "hosted": they
 * keep their old index and are found through the log's moved map instead.
 * Owned by the owner's thread. The storage thread reads only `path` and `fd`,
 * which never change while the segment exists, and keeps `ahead`, `ahead_by`,
 * `ahead_ns` and `synced`.
 */
typedef struct {
    char *path;         /* owned */
    uint64_t seq;       /* the file's number, unique in its log */
    int fd;             /* owned */
    uint32_t seed;      /* record CRC seed, from the header */
    uint64_t hdr_first; /* header's first index: every native here is >= it */
    uint64_t first;     /* lookup key: natives are first .. first + nslots - 1 */
    uint32_t nslots;    /* native slots in use */
    uint32_t cap;       /* native slots allocated */
    uint32_t *offs;     /* file offset of each native; 0 = not stored (lost) */
    uint64_t *live;     /* bitmap: native first + i is live here */
    uint32_t nlive;     /* live natives + live hosted records */
    uint32_t copies;    /* copies of the in-flight compaction placed here: live once it is applied */
    uint32_t ntotal;    /* records in the file, dead or alive */
    uint64_t size;      /* bytes placed, written or not */
    uint64_t durable;   /* bytes written and fdatasync'ed */
    uint64_t ahead;     /* storage thread only: the file's length, data and zeros written ahead */
    uint64_t ahead_by;  /* storage thread only: how far past the data its last extension went */
    uint64_t ahead_ns;  /* storage thread only: when (CLOCK_MONOTONIC); 0: never */
    uint64_t synced;    /* storage thread only: the length whose blocks an fdatasync put on disk */
    wr_list_t hosted;   /* wr_moved_t.link of records whose copy lives here */
    bool candidate;     /* sparse enough to compact, waiting for a batch */
    bool compacting;    /* its live records are being copied by the in-flight batch */
    bool no_compact;    /* a record could not be read back; leave it alone */
    const uint8_t *map; /* recovery only: the file mapped for replay */
    size_t maplen;
} wr_seg_t;

/* Where a hosted (compacted) record lives now. Key in the moved map: its index. */
typedef struct {
    wr_list_t link; /* in seg->hosted */
    wr_seg_t *seg;
    uint32_t off;
    uint64_t index;
} wr_moved_t;

/* A run of bytes to write at `off` in `seg`; one per segment per batch. */
typedef struct {
    wr_list_t link; /* log->pending, then log->inflight */
    wr_seg_t *seg;
    uint64_t off;
    wr_buf_t data;
} wr_chunk_t;

/* Records first..upto of a log were lost to a write error; they read as WR_EIO. */
typedef struct {
    uint64_t first;
    uint64_t upto;
} wr_lost_t;

/* A compaction copy, applied to the index only once the batch made it durable. */
typedef struct {
    uint64_t index;
    wr_seg_t *seg;
    uint32_t off;
} wr_move_t;

/*
 * One log's share of a batch. The owner fills it (wr_seglog_batch_prepare), the
 * storage thread performs it and fills err/msg, the owner applies the result
 * (wr_seglog_batch_done). The chunks to write are log->inflight.
 */
typedef struct {
    wr_seglog_t *log;
    wr_seg_t **unlink; /* removed after the sync succeeded; the owner frees them afterwards */
    size_t nunlink;
    wr_seg_t *compacted; /* also in unlink: the segment whose live records were copied */
    bool rolled;         /* the head was rolled to reclaim it: its successor may need compacting */
    wr_move_t *moves;
    size_t nmoves;
    uint64_t target; /* durable index once this succeeds */
    uint64_t front;  /* FRONT value to persist, 0 = none */
    bool dir_new;    /* the log's directory was created: fsync logs/ too */
    bool rides;      /* storage thread: durable only with the batch's one device flush */
    int err;         /* storage thread: errno of the failure, 0 if none */
    char msg[WR_STORE_MSG_MAX];
} wr_batch_log_t;

typedef struct {
    wr_batch_log_t *logs;
    size_t nlogs;
    char **trash; /* directories of destroyed logs to remove; owned */
    size_t ntrash;
    char msg[WR_STORE_MSG_MAX]; /* storage thread: problems removing trash */
} wr_batch_t;

struct wr_store_s {
    char *dir;
    char *logs_dir;
    uint64_t segment_size;
    unsigned compact_pct;
    uint64_t reclaim_bytes; /* see WR_STORE_RECLAIM_BYTES */
    int64_t pace_ns;        /* the commit interval; <= 0: none */
    int64_t hold_ns;        /* unawaited_delay_us; 0: none */
    wr_store_message_fn message;
    void *message_ud;
    wr_store_fault_fn fault;
    void *fault_ud;
    int lock_fd;
    int notify_fd;   /* eventfd: the storage thread adds 1 per completed batch */
    bool flush_once; /* the file system keeps overwrites in place: one device flush per batch */

    /* Shared with the storage thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t work; /* submitted or stop set */
    pthread_cond_t done; /* completed set */
    wr_batch_t *submitted;
    wr_batch_t *completed;
    bool stop;
    pthread_t thread;

    /* Owner's thread only. */
    wr_batch_t *inflight; /* submitted and not yet applied */
    bool flush_wanted;    /* flush was called while a batch was in flight */
    bool awaited;         /* wr_store_awaited since the last submit */
    bool last_awaited;    /* the last batch submitted was awaited */
    uint64_t held_since;  /* CLOCK_MONOTONIC ns when records nobody awaits were first held; 0: none */
    uint64_t last_submit; /* CLOCK_MONOTONIC ns when the last batch was handed to the thread */
    uint64_t pace_until;  /* records held for the commit interval go then (ns); 0: none held */
    bool awaited_behind;  /* wr_store_awaited while a batch was in flight, since the last submit */
    bool last_paced;      /* the last batch waited for the commit interval (pace_held) */
    wr_list_t logs;       /* every open log, via log->link */
    wr_map_t *by_name;    /* every open log by name, so that opening one costs O(1) */
    wr_list_t dirty;      /* logs with work for the next batch, via log->dirty */
    wr_list_t retrying;   /* logs whose failed batch's other work waits for its retry_at, via log->dirty */
    wr_list_t notify;     /* logs with news for their durable callback, via log->notify */
    char **trash;
    size_t ntrash;
    uint64_t trash_seq;
    uint64_t pending_bytes;
    uint64_t log_ids; /* numbers the logs opened, so that no two ever share an id */
};

struct wr_seglog_s {
    wr_store_t *store;
    char *name;
    char *dir;
    wr_seglog_cbs_t cbs;
    wr_list_t link;
    wr_list_t dirty;
    wr_list_t notify;
    wr_seg_t **segs; /* in file order; the last is the head, where appends go */
    size_t nsegs;
    size_t capsegs;
    uint64_t next_seq;
    wr_map_t *moved; /* index -> wr_moved_t, for hosted records */
    uint64_t front;  /* everything <= front is truncated */
    uint64_t next;   /* index of the next append */
    uint64_t durable;
    uint64_t reported;  /* durable index last passed to the callback */
    uint64_t fail_from; /* a write error waits for the callback: records (fail_from, fail_upto] */
    uint64_t fail_upto; /* were lost, unless a later success covered some (they are reported lost) */
    bool fail_pending;
    bool must_roll;    /* a write error left the head's file shorter than its memory: append elsewhere */
    uint64_t failures; /* failed batches so far */
    wr_lost_t *lost;   /* ranges of records lost to write errors, ascending */
    size_t nlost;
    size_t caplost;
    bool replaying; /* defer segment deletion while recovery walks the segments */
    bool closing;   /* wr_seglog_close is draining it: no more compaction */
    bool front_dirty;
    bool dir_new;
    uint64_t retry_at;  /* on the store's retrying list until then (CLOCK_MONOTONIC ns); 0: not there */
    uint64_t retry_ns;  /* how long its last retry waited; 0 after a batch succeeded */
    wr_list_t pending;  /* chunks for the next batch */
    wr_list_t inflight; /* chunks of the in-flight batch: read-only until it completes */
    wr_seg_t **dead;    /* segments to delete in the next batch */
    size_t ndead;
    size_t capdead;
    size_t ncandidates;
    wr_batch_log_t *flight; /* this log's entry in the in-flight batch */
    uint64_t id;            /* unique in its store: a read window is never taken for a freed log's */
};

/* ---- store.c ---- */

/* dir + "/" + name, malloc'd; NULL on allocation failure. */
char *wr_store_path(const char *dir, const char *name);
/* Hands the dirty logs to the storage thread now, or marks a flush wanted if a batch is in flight. */
void wr_store_submit(wr_store_t *s);
/* Blocks until the in-flight batch (if any) completes and applies it; callbacks wait for dispatch. */
void wr_store_wait(wr_store_t *s);

/* Formats a message and hands it to the owner's message callback, if any. */
void wr_store_msg(wr_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues log for the next batch, with any work that waited for a retry. */
void wr_store_mark_dirty(wr_store_t *s, wr_seglog_t *log);
/* A batch of log's failed and left work behind: it waits (WR_RETRY_MIN_NS..MAX_NS, core/clock.h). */
void wr_store_retry_later(wr_store_t *s, wr_seglog_t *log);
/* Queues log for its durable callback at the next dispatch. */
void wr_store_mark_notify(wr_store_t *s, wr_seglog_t *log);
/*
 * Moves the directory dir of log `name` aside under logs/.trash-*, for the
 * next batch to remove. WR_OK, WR_ENOMEM or WR_EIO (reported; the files stay).
 */
int wr_store_trash(wr_store_t *s, const char *name, const char *dir);

/* ---- log.c ---- */

/* A segment struct for dir/<seq>.seg with no file open yet (fd -1); NULL on allocation failure. */
wr_seg_t *wr_seg_new(const char *dir, uint64_t seq);
/* Closes the file (never unlinks it) and frees the struct. NULL is a no-op. */
void wr_seg_free(wr_seg_t *seg);
/* Grows seg's native arrays to hold slot; false on allocation failure. */
bool wr_seg_reserve(wr_seg_t *seg, uint32_t slot);
void wr_seg_set_live(wr_seg_t *seg, uint32_t slot, uint32_t off);
bool wr_seg_is_live(const wr_seg_t *seg, uint32_t slot);
/* Adds seg at the end of log->segs; false on allocation failure. */
bool wr_seglog_push_seg(wr_seglog_t *log, wr_seg_t *seg);
/* Where the live record index is stored (ignoring front and next), or false. */
bool wr_seglog_find_live(const wr_seglog_t *log, uint64_t index, wr_seg_t **seg, uint32_t *off);
/* Records a hosted record; false on allocation failure. */
bool wr_seglog_host(wr_seglog_t *log, uint64_t index, wr_seg_t *seg, uint32_t off);
/* Schedules deletion or compaction of seg if its live count calls for it; for the head, a roll (reclaim). */
void wr_seglog_check_seg(wr_seglog_t *log, wr_seg_t *seg);
/* Fills e from the log's work (compaction, pending chunks, deletions); leaves the log off the dirty list. */
void wr_seglog_batch_prepare(wr_seglog_t *log, wr_batch_log_t *e);
/* Applies the storage thread's result for e; frees what the batch owned. */
void wr_seglog_batch_done(wr_seglog_t *log, wr_batch_log_t *e);
/* 1..200 characters of [A-Za-z0-9._-], not starting with '.'. */
bool wr_seglog_name_ok(const char *name);
/* Frees a log (memory and file descriptors) and takes it off every store list; it must have no batch in
 * flight. */
void wr_seglog_free(wr_seglog_t *log);

#endif
