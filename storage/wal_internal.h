/* SPDX-License-Identifier: MIT */
/*
 * What the WAL's files share: the WAL, its files, groups and their entry
 * index, the record payload codec, and the calls between wal.c (append, group
 * commit, reads), wal_group.c (the index), wal_recover.c and wal_segment.c
 * (write-behind). Only storage/wal*.c include this.
 */
#ifndef WR_STORAGE_WAL_INTERNAL_H
#define WR_STORAGE_WAL_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/map.h"
#include "storage/segment.h"
#include "storage/wal.h"

/* Record payload types (the payload's first byte, in WAL files and segments alike). */
#define WR_WAL_ENTRY     'E' /* group u64, term u64, index u64, data */
#define WR_WAL_HARD      'H' /* group u64, term u64, vote u64, commit u64, abstain u64 */
#define WR_WAL_SNAPSHOT  'S' /* group u64, index u64, term u64, flags u8 (bit 0: drop the whole log) */
#define WR_WAL_END       'B' /* u64: bytes of the batch (WAL) or flush (segment) it closes */
#define WR_WAL_DELETE    'D' /* group u64: the group and everything before it are gone (WAL) */
#define WR_WAL_ENTRY_HDR 25
#define WR_WAL_END_LEN   9
#define WR_WAL_HARD_LEN  41
#define WR_WAL_SNAP_LEN  26
#define WR_WAL_DEL_LEN   9
#define WR_WAL_PATH_MAX  4096
#define WR_WAL_DIR_MAX   3968 /* longest o->dir + "/groups", leaving room for file names */

/* Where an entry's record is. */
enum { WR_LOC_NONE = 0, WR_LOC_PENDING, WR_LOC_WAL, WR_LOC_SEG };

typedef struct {
    uint64_t term;
    uint32_t file; /* WAL or segment file sequence number */
    uint32_t off;  /* PENDING: payload offset in the staging buffer; else the framed record's offset */
    uint32_t len;  /* payload length */
    uint8_t where;
} wr_wal_loc_t;

/* What one WAL file holds of a group, noted as its batches are framed. */
typedef struct {
    uint64_t group;
    uint64_t hi; /* its highest entry index in the file; 0 = none */
    bool reset;  /* a reset snapshot marker of it is in the file */
} wr_wal_fsum_t;

/* One WAL file. */
typedef struct {
    uint32_t seq;
    uint32_t seed;
    wr_vfs_file_t *f;
    uint64_t size;
    uint64_t live;      /* entries whose current record is here */
    uint64_t kill_gen;  /* the newest append that made one of its entries dead */
    uint64_t wb_pos;    /* write-behind progress */
    bool stuck;         /* a damaged record stopped write-behind */
    wr_wal_fsum_t *sum; /* per group with records here, when sum_known */
    size_t nsum, capsum;
    bool sum_known;   /* sum describes every record: made by this open, no deletion in it */
    uint64_t lsn_end; /* the LSN after its last record */
} wr_wal_file_t;

/* One segment file of a group. */
typedef struct {
    uint32_t seq;
    uint32_t seed;
    uint64_t size;
    uint64_t live;
    uint64_t kill_gen;
    uint64_t first; /* its header's first index: records framed above first + size / 16 need a new file */
} wr_wal_seg_t;

typedef struct {
    uint64_t id;
    uint64_t floor, floor_term;   /* snapshot marker */
    uint64_t dfloor, dfloor_term; /* the snapshot marker made durable */
    uint64_t first;               /* index of locs[0] */
    wr_wal_loc_t *locs;           /* entries first .. first + n - 1 */
    size_t n, cap;
    uint64_t durable;
    wr_wal_hard_t hard;
    bool damaged;
    wr_wal_seg_t *segs; /* in sequence order; the last is the head */
    size_t nsegs, capsegs;
    bool dir_made;    /* its directory exists and is durable */
    size_t slot;      /* its notice in the batch being prepared, + 1; 0 = none */
    uint32_t sum_seq; /* the WAL file whose sum[sum_slot] describes it; 0 = none */
    size_t sum_slot;
    wr_buf_t wb; /* write-behind: bytes for the head segment, not yet written */
    bool wb_listed;
    uint64_t wb_last;  /* the last index queued in wb */
    bool wb_reset;     /* the last record queued for its segments is a reset marker at floor */
    bool seg_lost;     /* recovery: a damaged segment lost records of it */
    uint32_t seg_next; /* sequence number of its next segment file: never reused */
    wr_wal_hard_t st;  /* term, vote and abstain as last put in a state file image (or read from one) */
    uint32_t syn_seq;  /* its segment files up to syn_seq, syn_size bytes of that one, were synced */
    uint64_t syn_size;
    bool deleted;     /* wr_wal_group_delete: absent to callers until appended to again */
    uint64_t born;    /* LSN of the deletion record its incarnation follows; 0 = none, UINT64_MAX = staged */
    uint64_t st_born; /* recovery: the incarnation the state file's record describes */
} wr_wal_group_t;

/* Segment files of a deleted incarnation, removed once its deletion record is durable. */
typedef struct {
    uint64_t group;
    uint32_t *seqs;
    size_t n;
    uint64_t gen; /* the deletion's append generation */
} wr_wal_doomed_t;

/* A queued record: its payload is staged[off .. off + len). */
typedef struct {
    uint64_t group;
    uint64_t index; /* entries */
    uint32_t off;
    uint32_t len;
    uint8_t type;
} wr_wal_staged_t;

/* A job queued for a batch (wr_wal_before_write); status is run's result once it ran. */
typedef struct {
    wr_wal_job_run_fn run;
    wr_wal_job_done_fn done;
    void *ud;
    int status;
} wr_wal_job_t;

struct wr_wal_batch_s {
    const wr_vfs_t *vfs;
    char path[WR_WAL_PATH_MAX]; /* the WAL file written */
    char dir[WR_WAL_PATH_MAX];  /* its directory, fsync'ed when the file is new */
    wr_vfs_file_t *f;           /* the file; NULL until step 2 creates a new one */
    bool new_file;
    uint32_t seq;
    uint32_t seed;
    uint64_t base; /* file offset of buf[0] */
    wr_buf_t buf;
    uint64_t gen; /* the newest append it holds */
    uint64_t next_lsn;
    wr_buf_t state;         /* a state file image to write after the WAL, or empty */
    wr_vfs_file_t *state_f; /* the copy it goes to */
    wr_wal_notice_t *notices;
    wr_wal_loc_t *last;   /* per notice: where its last entry went */
    uint64_t (*snaps)[2]; /* per notice: its last snapshot marker (index, term) */
    size_t nnotices, capnotices;
    wr_wal_job_t *jobs; /* run before the write, in order */
    size_t njobs;
    int status;
};

struct wr_wal_s {
    wr_wal_opts_t o;
    char *dir;
    char wal_dir[WR_WAL_DIR_MAX];
    char groups_dir[WR_WAL_DIR_MAX];
    wr_map_t *groups;     /* id (8 bytes) -> wr_wal_group_t */
    wr_wal_group_t **all; /* every group in creation order: what reaches the disk never depends on hashing */
    size_t nall, capall;
    wr_wal_file_t *files; /* in sequence order; the last is current */
    size_t nfiles, capfiles;
    uint64_t next_lsn;
    wr_buf_t staged;
    wr_wal_staged_t *q;
    size_t nq, capq;
    wr_wal_job_t *jobs; /* queued for the next batch */
    size_t njobs, capjobs;
    size_t nlazy;         /* staged records that need no sync of their own (commit-only hard states) */
    uint64_t lazy_bytes;  /* their bytes */
    uint64_t gen;         /* appends so far */
    uint64_t durable_gen; /* appends made durable */
    wr_wal_batch_t *inflight;
    bool failed;
    wr_wal_group_t **wbq; /* groups with write-behind bytes */
    size_t nwbq, capwbq;
    wr_buf_t wb_img;  /* the WAL file write-behind is reading */
    uint32_t wb_seq;  /* its sequence number; 0 = none */
    bool wb_unsynced; /* segments were written since the last wr_vfs_sync_all */
    bool wb_waiting;  /* write-behind waits for snapshots to pass the oldest file (o.wb_wait_files) */
    uint64_t wb_read, wb_skipped; /* full WAL files write-behind read, and retired unread (move_known) */
    uint64_t salt;
    wr_wal_doomed_t *doomed; /* segment files to remove */
    size_t ndoomed, capdoomed;
    wr_vfs_file_t *state_f[2]; /* the state file's two copies */
    uint64_t state_seq;        /* of the newest image made */
    bool state_dirty;          /* a term, vote or abstain changed since the last image */
    bool state_known;          /* a valid copy was read (or none was ever written) */
    bool damage_marked;        /* DIR/damaged exists: recovery found damage the owner has not noted */
    bool damage_unnoted;       /* it existed before this recovery: every group counts as damaged */
};

/* ---- wal.c ---- */

/* Formats a line to the message callback. */
void wr_wal_msg(wr_wal_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The group, created (empty) if absent when create; NULL if absent or on allocation failure. */
wr_wal_group_t *wr_wal_group(wr_wal_t *w, uint64_t id, bool create);
/* "<dir>/<016x>.wal" and friends. */
void wr_wal_file_path(const wr_wal_t *w, uint32_t seq, char out[WR_WAL_PATH_MAX]);
void wr_wal_group_dir(const wr_wal_t *w, uint64_t group, char out[WR_WAL_PATH_MAX]);
void wr_wal_seg_path(const wr_wal_t *w, uint64_t group, uint32_t seq, char out[WR_WAL_PATH_MAX]);
/* The WAL file seq, or NULL. */
wr_wal_file_t *wr_wal_file_find(wr_wal_t *w, uint32_t seq);
/* Appends a WAL file record to w->files; false on allocation failure. */
bool wr_wal_file_push(wr_wal_t *w, const wr_wal_file_t *f);
/* A random 64-bit salt for a new file header. */
uint64_t wr_wal_salt(wr_wal_t *w);
/* Starts a new WAL file holding the checkpoint and anything staged, synchronously (recovery). */
int wr_wal_roll(wr_wal_t *w);
/* Appends the checkpoint (every group's hard state and snapshot marker) as framed records to b. */
void wr_wal_checkpoint(wr_wal_t *w, wr_buf_t *b, uint32_t seed, uint64_t *lsn);

/* ---- wal_group.c: the entry index and the payload codec ---- */

/* Entry payload fields; false if p[0..len) is not a well-formed entry. */
bool wr_wal_entry_parse(const uint8_t *p, size_t len, uint64_t *group, uint64_t *term, uint64_t *index);
void wr_wal_put64(uint8_t *p, uint64_t v);
uint64_t wr_wal_get64(const uint8_t *p);
/* The payload header of an entry into out[WR_WAL_ENTRY_HDR]. */
void wr_wal_entry_head(uint8_t out[WR_WAL_ENTRY_HDR], uint64_t group, uint64_t term, uint64_t index);
void wr_wal_hard_encode(uint8_t out[WR_WAL_HARD_LEN], uint64_t group, const wr_wal_hard_t *h);
/* Appends an end marker closing `bytes` bytes, framed with index under seed. */
void wr_wal_end_encode(wr_buf_t *b, uint32_t seed, uint64_t index, uint64_t bytes);
void wr_wal_snap_encode(uint8_t out[WR_WAL_SNAP_LEN], uint64_t group, uint64_t index, uint64_t term,
                        bool reset);

/* Last index held (floor when none). */
uint64_t wr_wal_group_last(const wr_wal_group_t *g);
/* The loc of index, or NULL when not held. */
wr_wal_loc_t *wr_wal_group_loc(wr_wal_group_t *g, uint64_t index);
/* Forgets where one entry lived: its file loses a live entry, killed at generation gen. */
void wr_wal_unref(wr_wal_t *w, wr_wal_group_t *g, const wr_wal_loc_t *l, uint64_t gen);
/*
 * Sets entry index to l after dropping every entry >= index (the overwrite
 * rule); index may leave a hole above the last (recovery only). The new loc
 * is not counted live. false on allocation failure.
 */
bool wr_wal_group_put(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, const wr_wal_loc_t *l, uint64_t gen);
/*
 * Forgets g's incarnation (a deletion record at generation gen): entries,
 * snapshot, hard state; its segment files are queued for removal. false on
 * allocation failure (nothing changed).
 */
bool wr_wal_group_reset(wr_wal_t *w, wr_wal_group_t *g, uint64_t gen);
/* Drops entries <= index (reset: all of them) and moves the floor there. */
void wr_wal_group_snap(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, uint64_t term, bool reset,
                       uint64_t gen);
/* Adds one to the live count of the file l names. */
void wr_wal_ref(wr_wal_t *w, wr_wal_group_t *g, const wr_wal_loc_t *l);
/* The group's segment seq, or NULL. */
wr_wal_seg_t *wr_wal_seg_find(wr_wal_group_t *g, uint32_t seq);
/* Appends a segment record to g->segs; false on allocation failure. */
bool wr_wal_seg_push(wr_wal_group_t *g, const wr_wal_seg_t *s);
/* Frees a group. */
void wr_wal_group_free(wr_wal_group_t *g);

/* ---- wal_recover.c ---- */

/* Recovers w (dirs made, files listed, segments and WAL replayed); fills rec. */
int wr_wal_recover(wr_wal_t *w, wr_wal_recovery_t *rec);

/* ---- wal_state.c: the state file ---- */

/* Opens both copies (created if absent) and applies the newest valid one to the groups it names. */
int wr_wal_state_load(wr_wal_t *w);
/* A new image of every group (next sequence number) into out; it becomes what the groups' st says. */
void wr_wal_state_image(wr_wal_t *w, wr_buf_t *out);
/* The copy the newest image goes to. */
wr_vfs_file_t *wr_wal_state_file(const wr_wal_t *w);
/* Marks the state file stale if g's term, vote or abstain differ from its last image. */
void wr_wal_state_note(wr_wal_t *w, const wr_wal_group_t *g);
/* Writes img at the start of f and syncs it (any thread). WR_OK, WR_ENOMEM or WR_EIO. */
int wr_wal_state_put(wr_vfs_file_t *f, const wr_buf_t *img);
/* An image written and synced now (owner's thread). */
int wr_wal_state_sync(wr_wal_t *w);
/* Recovery: g's hard state from the WAL merged with the state file's (the newer term wins, abstain the
 * larger). */
void wr_wal_state_merge(wr_wal_group_t *g);
/* After a wr_vfs_sync_all: every group's segments count as synced to their current size. */
void wr_wal_state_settle(wr_wal_t *w);
void wr_wal_state_close(wr_wal_t *w);

/* ---- wal_segment.c ---- */

/* Notes in f's summary that the staged record s of g was framed into f. */
void wr_wal_fsum_note(wr_wal_t *w, wr_wal_file_t *f, wr_wal_group_t *g, const wr_wal_staged_t *s);

/* Reads a whole file into b (replacing its contents). WR_OK, WR_ENOMEM or WR_EIO. */
int wr_wal_read_all(wr_vfs_file_t *f, wr_buf_t *b);
/* Reads the framed record at off in file f (header seed) into out as its payload; CRC checked. */
int wr_wal_read_record(wr_vfs_file_t *f, uint32_t seed, uint64_t off, uint32_t len, wr_buf_t *out);

#endif
