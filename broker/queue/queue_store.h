/* SPDX-License-Identifier: MIT */
/*
 * What the queues of one node share for storage, as the node (node/durable.c)
 * sees it: created over the node's store, flushed once per loop iteration
 * right before the store's group commit, given the memory budget and, at
 * start-up, the names of the logs on disk; it says when deleted queues'
 * files wait to be buried. Queue types get it in wr_queue_open_store; the
 * node never sees a queue's log (the classic type keeps its logs' shared
 * state here, queue_log.c).
 */
#ifndef WR_BROKER_QUEUE_STORE_H
#define WR_BROKER_QUEUE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/queue/queue.h"
#include "core/map.h"
#include "storage/store.h"

/*
 * Over store (not owned), keeping memory_budget bytes of messages in memory
 * per queue; touch(ud) is called when something waits for the next flush
 * (the owner must flush in this loop iteration; NULL: the owner flushes by
 * hand). NULL on ENOMEM.
 */
wr_queue_store_t *wr_queue_store_new(wr_store_t *store, uint64_t memory_budget, void (*touch)(void *ud),
                                     void *ud);
/* The queues' storage must be closed (wr_queue_close_store) or deleted
 * first. NULL is a no-op. */
void wr_queue_store_free(wr_queue_store_t *s);
/* Appends the queues' pending records. Call right before wr_store_flush. */
void wr_queue_store_flush(wr_queue_store_t *s);
/* Bytes of messages each queue keeps in memory from now on (0 while the
 * memory alarm is on). */
void wr_queue_store_set_budget(wr_queue_store_t *s, uint64_t memory_budget);
/* Whether deleted durable queues' files wait for wr_queue_store_bury. */
bool wr_queue_store_has_doomed(const wr_queue_store_t *s);
/*
 * Deletes the files of the deleted durable queues. Call only once the saved
 * topology no longer names them, so a crash in between cannot bring back a
 * queue whose messages are gone.
 */
void wr_queue_store_bury(wr_queue_store_t *s);
/* Whether name (a log in the store) is a queue's; new logs are then named
 * past it. */
bool wr_queue_store_claim(wr_queue_store_t *s, const char *name);
/* While the node recovers queues: the names of the logs on disk (a queue
 * whose log is not among them opens it on first use); NULL afterwards. */
void wr_queue_store_set_stored(wr_queue_store_t *s, const wr_map_t *names);

#endif
