/* SPDX-License-Identifier: MIT */
/*
 * A queue's log in storage/: the records a queue writes (enqueue, ack,
 * delivered), reading paged-out messages back, the replay that rebuilds a
 * durable queue at start-up, holding confirms (confirm.h) until a record is
 * durable, and checkpoints that let go of the acks of the past. No libevent:
 * whoever owns the loop calls wr_qlog_ctx_flush and then wr_store_flush once
 * per loop iteration. docs/STORAGE.md describes the records.
 */
#ifndef WR_BROKER_QUEUE_LOG_H
#define WR_BROKER_QUEUE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/base/confirm.h"
#include "broker/base/message.h"
#include "broker/queue/queue.h"
#include "core/list.h"
#include "core/map.h"
#include "storage/store.h"

typedef struct wr_qlog_s wr_qlog_t;

/* What the queue logs of one node share (queue_store.h is the node's view). */
typedef struct wr_qlog_ctx_s wr_qlog_ctx_t;
struct wr_qlog_ctx_s {
    wr_store_t *store;
    uint64_t memory_budget; /* bytes of messages each queue keeps in memory */
    uint64_t next_id;       /* numbers new log names */
    wr_list_t dirty;        /* logs with records to append at the next flush */
    wr_list_t doomed;       /* logs of deleted durable queues, destroyed by wr_qlog_ctx_bury */
    /* Something waits for the next flush: the owner must flush in this loop
     * iteration. May be NULL (the owner flushes by hand, as unit tests do). */
    void (*touch)(void *ud);
    void *ud;
    /* While the owner recovers queues: the names of the logs on disk. A
     * recovered queue whose log is not among them (it never stored a
     * message) opens it on first use, as a new queue does. NULL: not known. */
    const wr_map_t *stored;
};

void wr_qlog_ctx_init(wr_qlog_ctx_t *ctx, wr_store_t *store, uint64_t memory_budget, void (*touch)(void *ud),
                      void *ud);
/*
 * Appends the pending ack and delivered records of every dirty log, and a
 * checkpoint where enough of them have piled up. Call right before
 * wr_store_flush.
 */
void wr_qlog_ctx_flush(wr_qlog_ctx_t *ctx);
/* Whether deleted durable queues wait for wr_qlog_ctx_bury. */
bool wr_qlog_ctx_has_doomed(const wr_qlog_ctx_t *ctx);
/*
 * Deletes the files of the deleted durable queues. Call only once the saved
 * topology no longer names them, so a crash in between cannot bring back a
 * queue whose messages are gone.
 */
void wr_qlog_ctx_bury(wr_qlog_ctx_t *ctx);

/* Receives the persistent messages of a queue, in log order. */
typedef void (*wr_qlog_live_fn)(void *ud, uint64_t index, bool redelivered);

/* What replay knows of a recovered message without reading it back. */
typedef struct {
    uint64_t expiry;    /* its deadline (see wr_qlog_append), UINT64_MAX: none */
    uint64_t body_size; /* bytes */
    uint8_t priority;   /* its priority property, 0 when absent */
} wr_qlog_meta_t;

/* The queue's side of its log. */
typedef struct {
    /* A message recovered by replay, in queue order (always persistent).
     * False on ENOMEM, which fails the open. */
    bool (*recovered)(void *owner, uint64_t index, bool redelivered, const wr_qlog_meta_t *meta);
    /* Calls fn for every persistent message ready in the queue and not yet
     * read back as lost, in log order (requeued ones excepted: the log knows
     * those as taken). */
    void (*ready)(void *owner, wr_qlog_live_fn fn, void *ud);
} wr_qlog_ops_t;

/*
 * A queue's log; `what` names the queue in log lines ("queue 'q' in vhost
 * '/'"). name NULL: a new log with a fresh name (kept by the topology when
 * durable), created in the store on the first append. name given: the stored
 * log of a durable queue, opened now: its records are replayed, acked ones
 * dropped, transient ones discarded, and every message still live handed to
 * ops->recovered in order, marked redelivered when it had been delivered;
 * what recovery found is logged. NULL with a message in err on failure.
 */
wr_qlog_t *wr_qlog_new(wr_qlog_ctx_t *ctx, const char *name, bool durable, const wr_qlog_ops_t *ops,
                       void *owner, const char *what, char *err, size_t errlen);
/* The log's name in the store, for the topology. */
const char *wr_qlog_name(const wr_qlog_t *l);
/* Bytes of messages the queue keeps in memory before paging. */
uint64_t wr_qlog_budget(const wr_qlog_t *l);
/*
 * The broker is stopping: pending records are written and the log closed
 * (blocking until durable) for a durable queue; a transient queue's log is
 * deleted. Waiting confirms are released. Frees l; NULL is a no-op.
 */
void wr_qlog_close(wr_qlog_t *l);
/*
 * The queue is deleted: its confirms are released (as RabbitMQ confirms
 * messages of a deleted queue), a transient log is deleted at once, a durable
 * one by wr_qlog_ctx_bury. The queue must not use l again. NULL is a no-op.
 */
void wr_qlog_delete(wr_qlog_t *l);

/*
 * Appends m's enqueue record (persistent: it survives a restart) and sets
 * *index. expiry is m's deadline in CLOCK_MONOTONIC milliseconds (the clock
 * of the queue hooks), UINT64_MAX for none; the record keeps it as
 * wall-clock time, so a message recovered after a restart still expires
 * when it would have. WR_OK; WR_EIO (the log failed or cannot be created;
 * reported); WR_ENOMEM; WR_ETOOBIG.
 */
int wr_qlog_append(wr_qlog_t *l, wr_message_t *m, bool persistent, uint64_t expiry, uint64_t *index);
/* Holds c until record `index` is durable (released failed if it never will be). WR_OK or WR_ENOMEM. */
int wr_qlog_wait(wr_qlog_t *l, uint64_t index, wr_confirm_t *c);
/*
 * Reads the message of record `index` back; the caller owns *out. upto: the
 * last record of the run of reads in index order this one is part of
 * (index for a lone read), so that one pread serves the run
 * (wr_seglog_read_run). WR_OK, WR_ENOMEM, or WR_ENOENT / WR_EIO: the message
 * is lost (logged).
 */
int wr_qlog_read(wr_qlog_t *l, uint64_t index, uint64_t upto, wr_message_t **out);
/*
 * Record `index` left the ready list for a delivery that will be settled
 * later; first: never delivered before, so a delivered marker is recorded
 * (a restart brings it back redelivered).
 */
void wr_qlog_taken(wr_qlog_t *l, uint64_t index, bool persistent, bool first);
/* Record `index` is done with (acked, dropped or purged); taken as passed to wr_qlog_taken. */
void wr_qlog_settle(wr_qlog_t *l, uint64_t index, bool persistent, bool taken);

#endif
