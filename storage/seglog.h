/* SPDX-License-Identifier: MIT */
/*
 * A log: append-only records with dense 64-bit indexes from 1, kept in segment
 * files; read by index, released one by one or truncated from the front, and
 * reported durable by a callback once on disk. It knows nothing of what the
 * records mean: durable queues use it (truncation from the front is there
 * for the Raft log docs/STORAGE.md plans).
 */
#ifndef WR_STORAGE_SEGLOG_H
#define WR_STORAGE_SEGLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "storage/store.h"

typedef struct wr_seglog_s wr_seglog_t;

/* Largest record payload. */
#define WR_SEGLOG_MAX_RECORD (1u << 30)

/*
 * Called by wr_seglog_open for each stored record, in index order; data is valid
 * only during the call. The callback may wr_seglog_release and wr_seglog_read but
 * not append. Return WR_OK to continue; anything else stops the open, which
 * then fails with that status.
 */
typedef int (*wr_seglog_replay_fn)(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data,
                                   size_t len);

/*
 * Called from wr_store_dispatch. status WR_OK: every record with an index
 * <= index is durable (fdatasync'ed with its directory entry), except those
 * an earlier WR_EIO call reported lost; one call covers a whole batch, and
 * successive calls report increasing indexes. status WR_EIO: a write error
 * lost the records above the last reported index up to `index` (some of them
 * may in fact be stored: treat them as lost); the log goes on, its next
 * appends are stored as usual once writes succeed again. The log may be
 * closed or destroyed inside.
 */
typedef void (*wr_seglog_durable_fn)(void *ud, wr_seglog_t *log, uint64_t index, int status);

typedef struct {
    wr_seglog_replay_fn replay;   /* may be NULL */
    wr_seglog_durable_fn durable; /* may be NULL */
    void *ud;
} wr_seglog_cbs_t;

/* What recovery found; reported by wr_seglog_open. */
typedef struct {
    uint64_t records;         /* delivered to the replay callback */
    uint64_t bytes;           /* their payload bytes */
    uint64_t first_index;     /* lowest delivered, 0 if none */
    uint64_t last_index;      /* highest index stored; the next append gets last_index + 1 */
    uint32_t segments;        /* segment files in use */
    uint64_t truncated_bytes; /* torn tails cut off */
    uint64_t lost_records;    /* records in corrupt regions (a lower bound when not countable) */
    uint64_t elapsed_us;
} wr_seglog_recovery_t;

/*
 * Opens the log `name` of store s, creating it if it does not exist. Names
 * are 1..200 characters of [A-Za-z0-9._-], not starting with '.'. Recovery
 * runs here, synchronously: it replays every segment, verifies every CRC,
 * truncates a torn tail, reports corrupt regions through the store's message
 * callback, rebuilds the index, fdatasyncs what it found (so all of it is
 * durable), and delivers the records through cbs->replay. The log starts with
 * everything recovered live; the owner releases what it knows is dead.
 * rec may be NULL. Returns NULL with a message in err on failure (name in use
 * or invalid, unsupported segment version, I/O error, replay stopped).
 */
wr_seglog_t *wr_seglog_open(wr_store_t *s, const char *name, const wr_seglog_cbs_t *cbs,
                            wr_seglog_recovery_t *rec, char *err, size_t errlen);

/*
 * Appends a copy of data[0..len) and sets *index. The record is readable at
 * once and durable after a later wr_store_flush and its callback.
 * WR_OK; WR_ETOOBIG (len > WR_SEGLOG_MAX_RECORD); WR_ENOMEM; WR_EIO (a new
 * segment file could not be created: see the message).
 */
int wr_seglog_append(wr_seglog_t *log, const void *data, size_t len, uint64_t *index);
/* wr_seglog_append of one record whose payload is the iovcnt pieces of iov, in order. */
int wr_seglog_appendv(wr_seglog_t *log, const struct iovec *iov, int iovcnt, uint64_t *index);

/*
 * Replaces out's contents with the payload of record index, from memory if
 * it is not yet on disk, else with pread (and a CRC check).
 * WR_OK; WR_ENOENT (never appended, truncated or released); WR_EIO
 * (read failed, CRC mismatch, or the record was lost by a failed write);
 * WR_ENOMEM.
 */
int wr_seglog_read(wr_seglog_t *log, uint64_t index, wr_buf_t *out);

/*
 * Bytes of one segment file, read with one pread, from which a run of
 * wr_seglog_read_run calls is served. The caller owns it (start from
 * WR_SEGLOG_WINDOW_INIT, end with wr_seglog_window_free) and may keep it from
 * one run to the next: what a segment file holds below its durable length
 * never changes, and the window knows which file of which log it holds.
 */
typedef struct {
    const wr_seglog_t *log;
    uint64_t log_id;
    const void *seg; /* the segment its bytes are of; NULL: empty */
    uint64_t seq;    /* and that segment's number */
    uint64_t off;    /* the file offset of buf.data[0] */
    wr_buf_t buf;
} wr_seglog_window_t;

#define WR_SEGLOG_WINDOW_INIT                                                                                \
    {                                                                                                        \
        NULL, 0, NULL, 0, 0, WR_BUF_INIT                                                                     \
    }

/*
 * wr_seglog_read for runs of reads in index order, as paging in makes: sets
 * *data and *len to the payload of record index (borrowed: valid until the
 * next call on log or w). upto is the last index of the run (index itself
 * for a lone read): a record on disk that w does not hold is read with the
 * records after it, up to upto's in the same segment file (128 KiB at a
 * time at most), in one pread into w. Every record is checked as
 * wr_seglog_read checks it, and the statuses are the same.
 */
int wr_seglog_read_run(wr_seglog_t *log, uint64_t index, uint64_t upto, wr_seglog_window_t *w,
                       const uint8_t **data, size_t *len);
/* Frees w's buffer; w may be reused from WR_SEGLOG_WINDOW_INIT. */
void wr_seglog_window_free(wr_seglog_window_t *w);

/*
 * Marks one record dead. When no record of a segment file is live any more,
 * the file is deleted; when few are, they are copied (with their indexes) to
 * the newest segment and the old file is deleted once the copies are durable.
 * The newest segment too, once it is large (1 MiB, or half a segment) and
 * mostly dead: the next batch starts a new one, so consuming frees space.
 * A release is not written to disk: after a restart the log replays whatever
 * its files still hold, and the owner releases again from its own records.
 * WR_OK or WR_ENOENT (not live).
 */
int wr_seglog_release(wr_seglog_t *log, uint64_t index);

/*
 * Releases every record with an index <= upto and remembers upto on disk
 * (the FRONT file) so they are not replayed after a restart.
 * WR_OK (also when upto is at or below the current front) or WR_ETOOBIG
 * (upto was never appended).
 */
int wr_seglog_truncate_front(wr_seglog_t *log, uint64_t upto);

/* Every record <= this index is durable. */
uint64_t wr_seglog_durable_index(const wr_seglog_t *log);
/* The index of the last append (0 if none). */
uint64_t wr_seglog_last_index(const wr_seglog_t *log);

/*
 * Hands the log's remaining records to the storage thread, blocks until they
 * are durable (or a write fails: not retried here), and frees the log. Its
 * durable callback is not called again. WR_OK, or WR_EIO if some record
 * appended since the open never became durable. NULL is a no-op.
 */
int wr_seglog_close(wr_seglog_t *log);

/*
 * Frees the log and deletes its files: records not yet durable are dropped,
 * the directory is renamed aside at once (so a log of the same name can be
 * opened straight away) and removed by the storage thread. Blocks only if the
 * log has writes in flight. WR_OK, or WR_EIO when the rename failed (the
 * files stay and a later open would find them; see the message). NULL is a
 * no-op.
 */
int wr_seglog_destroy(wr_seglog_t *log);

#endif
