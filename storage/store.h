/* SPDX-License-Identifier: MIT */
/*
 * The store, one per node: the data directory (lock, version file, a directory
 * per log) and the storage thread that makes appends durable by group commit.
 * Called from one thread, the owner's; it calls back only on that thread.
 * docs/STORAGE.md describes the on-disk format.
 */
#ifndef WR_STORAGE_STORE_H
#define WR_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wr_store_s wr_store_t;

#define WR_STORE_VERSION                 1
#define WR_STORE_DEFAULT_SEGMENT_SIZE    (64u << 20)
#define WR_STORE_MIN_SEGMENT_SIZE        64u
#define WR_STORE_MAX_SEGMENT_SIZE        (1u << 30)
#define WR_STORE_DEFAULT_COMPACT_PERCENT 25u

/* See commit_interval_us. A batch this large is never held back by it. */
#define WR_STORE_DEFAULT_COMMIT_INTERVAL_US 10000
#define WR_STORE_PACE_BYTES                 (64u << 10)
/* See unawaited_delay_us. */
#define WR_STORE_DEFAULT_UNAWAITED_DELAY_US 200000

/* Receives one human-readable line: recovery reports and I/O errors. Owner's thread. */
typedef void (*wr_store_message_fn)(void *ud, const char *text);

/* WRITEBACK: a segment's data written back without a device flush (sync_file_range). */
typedef enum { WR_STORE_IO_WRITE, WR_STORE_IO_SYNC, WR_STORE_IO_WRITEBACK } wr_store_io_t;

/*
 * TESTS ONLY. Called on the storage thread before each pwrite, each
 * fsync/fdatasync and each checked writeback it performs (not the unchecked
 * start of a batch's writebacks), with the file's path. Return 0 to let the call
 * happen, or an errno value (EIO, ENOSPC) to fail it as if the kernel had. A
 * hook may block to hold the storage thread at that point.
 */
typedef int (*wr_store_fault_fn)(void *ud, wr_store_io_t op, const char *path);

typedef struct {
    uint64_t segment_size;         /* 0 = default; else WR_STORE_MIN.. MAX_SEGMENT_SIZE */
    unsigned compact_live_percent; /* compact a segment whose live records fall below this share;
                                      0 = default, else 1..99 */
    /* Under steady load (appends arrived while the last batch was syncing) and
     * while the waiting records are under WR_STORE_PACE_BYTES, batches start
     * at most this often, so each sync covers more records. The records wait
     * for it in memory (wr_store_flush, due by wr_store_flush_due_us), so
     * those that arrive meanwhile make the same batch. 0 = default;
     * negative = start each batch as soon as the last is done. */
    int64_t commit_interval_us;
    /* Records that nothing awaits (no wr_store_awaited since the last batch:
     * acks, persistent messages published without confirms) stay in memory
     * up to this long before a batch takes them, unless an awaited record or
     * WR_STORE_PACE_BYTES of them come first: then they share that batch's
     * sync instead of costing one of their own. The owner calls
     * wr_store_flush again when wr_store_flush_due_us says. 0: none. */
    int64_t unawaited_delay_us;
    wr_store_message_fn message; /* may be NULL */
    void *message_ud;
    wr_store_fault_fn test_fault; /* TESTS ONLY; NULL in production */
    void *test_fault_ud;
} wr_store_opts_t;

/*
 * Opens the store in dir (created if missing, its parent must exist): takes
 * the lock, checks or writes the VERSION file, removes leftovers of destroyed
 * logs, and starts the storage thread. opts may be NULL for defaults.
 * Returns NULL with a message in err (naming the directory) on failure: the
 * directory is locked by another process (with its PID when readable), its
 * format version is unknown, bad options, or a system call failed.
 */
wr_store_t *wr_store_open(const char *dir, const wr_store_opts_t *opts, char *err, size_t errlen);

/*
 * Closes every log still open (as wr_seglog_close, so it blocks until their
 * records are durable), finishes pending deletions, joins the storage thread
 * and releases the lock. Must not be called from a durable callback. NULL is
 * a no-op.
 */
void wr_store_close(wr_store_t *s);

/*
 * A file descriptor that becomes readable when results of the storage thread
 * are waiting; the owner polls it (or registers it with its event loop) and
 * then calls wr_store_dispatch. The store owns it.
 */
int wr_store_notify_fd(const wr_store_t *s);

/*
 * The group-commit boundary, called once per loop iteration: hands every
 * record appended since the last batch, plus pending deletions and
 * compaction, to the storage thread as one batch. Only one batch is in flight
 * at a time; if one is, this one is handed off when it completes (in
 * wr_store_dispatch), so appends during a slow sync gather into the next
 * batch instead of queueing behind it one by one.
 */
void wr_store_flush(wr_store_t *s);

/*
 * Microseconds until records held back by unawaited_delay_us must go: the
 * owner calls wr_store_flush then (or earlier). -1: none are held.
 */
int64_t wr_store_flush_due_us(const wr_store_t *s);

/*
 * Something waits for a record appended since the last flush to be durable
 * (a publisher's confirm, a declare's reply). Such a record is not held for
 * the commit interval behind a batch that carried none, and records held
 * for the interval that nothing awaits go with it at once: a lone publisher
 * whose consumer acks in between (ack records nobody waits for) would
 * otherwise wait out an interval per message.
 */
void wr_store_awaited(wr_store_t *s);

/*
 * Applies completed work and runs the durable callbacks, on the calling
 * (owner's) thread; then hands off the next batch if a flush is waiting.
 * Call when the notify fd is readable; calling it at other times is harmless.
 * Callbacks may append, release, and close or destroy logs (even their own).
 */
void wr_store_dispatch(wr_store_t *s);

/*
 * Calls fn with the name of every log stored in the directory, open or not
 * (the leftovers of destroyed logs excluded). WR_OK, or WR_EIO with a message
 * in err when logs/ cannot be read.
 */
int wr_store_logs(wr_store_t *s, void (*fn)(void *ud, const char *name), void *ud, char *err, size_t errlen);

/*
 * Deletes the stored log `name` without opening (and so without recovering)
 * it: its directory is moved aside at once and removed by the storage thread
 * with the next batch. WR_OK; WR_ENOENT (no such log); WR_EEXIST (it is
 * open: use wr_seglog_destroy); WR_ENOMEM; WR_EIO (the move failed, reported
 * through the message callback).
 */
int wr_store_remove_log(wr_store_t *s, const char *name);

/*
 * Replaces DIR/name with data[0..len) durably, on the calling thread: a
 * temporary file, fdatasync, rename over name, fsync of DIR. For the owner's
 * own small files (the broker's topology); LOCK, VERSION and logs are the
 * store's. WR_OK; WR_ESYNTAX (a name the store uses, or one with a '/');
 * WR_EIO with a message naming the file in err.
 */
int wr_store_write_file(wr_store_t *s, const char *name, const void *data, size_t len, char *err,
                        size_t errlen);

/*
 * True when no batch is in flight and none waits to be handed off: every
 * flush so far has completed and been dispatched.
 */
bool wr_store_idle(const wr_store_t *s);

/*
 * Bytes appended but not yet durable, in memory until then. Never dropped:
 * the owner applies backpressure (stops reading from publishers) when this
 * grows past its budget.
 */
uint64_t wr_store_pending_bytes(const wr_store_t *s);

#endif
