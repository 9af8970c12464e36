/* SPDX-License-Identifier: MIT */
/*
 * The WAL's storage-thread driver: the owner appends to the WAL as usual and
 * the driver runs each batch's write and fdatasync (wr_wal_write) on its own
 * thread, signalling completion through an eventfd the owner's loop polls.
 * Everything appended while a sync runs goes out as the next batch.
 */
#ifndef WR_STORAGE_WAL_THREAD_H
#define WR_STORAGE_WAL_THREAD_H

#include <stdint.h>

#include "storage/wal.h"

typedef struct wr_wal_thread_s wr_wal_thread_t;

/*
 * Starts the storage thread for w, which the caller keeps owning (and must
 * close only after wr_wal_thread_free). wb_budget: bytes of write-behind run
 * on the owner's thread after each completed batch (0 = none). *out is the
 * caller's (free with wr_wal_thread_free). WR_OK, WR_ENOMEM or WR_EIO (no
 * eventfd or thread).
 */
int wr_wal_thread_new(wr_wal_t *w, uint64_t wb_budget, wr_wal_thread_t **out);

/* The fd that becomes readable when a batch has been written; poll it, then call wr_wal_thread_dispatch. */
int wr_wal_thread_fd(const wr_wal_thread_t *t);

/*
 * Owner: if no batch is in flight and something is queued, frames it
 * (wr_wal_prepare) and hands it to the thread. Call after appending.
 * WR_OK (handed over, or nothing to do) or the error of wr_wal_prepare.
 */
int wr_wal_thread_kick(wr_wal_thread_t *t);

/*
 * Owner, when the fd is readable (harmless otherwise): completes the written
 * batch (wr_wal_complete: the durable callbacks run here, and may append),
 * runs one step of write-behind, then kicks the next batch with everything
 * queued meanwhile. WR_OK, or the first error of those steps (WR_EIO: the
 * WAL failed).
 */
int wr_wal_thread_dispatch(wr_wal_thread_t *t);

/* Batches the thread has written so far (owner). */
uint64_t wr_wal_thread_batches(const wr_wal_thread_t *t);

/*
 * Stops the thread: a batch in flight is written and completed first (its
 * callbacks run here). Frees t; the WAL stays open. NULL is a no-op.
 */
void wr_wal_thread_free(wr_wal_thread_t *t);

#endif
