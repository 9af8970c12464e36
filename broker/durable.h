/* SPDX-License-Identifier: MIT */
/*
 * The node's durable state: the store in data_dir (whose lock keeps a second
 * broker out), the loop's side of group commit (one flush per loop iteration
 * in which something was appended; the store's notify fd runs the durable
 * callbacks), the durable topology saved as DIR/topology.json, and recovery
 * at start-up: the topology, then each durable queue's messages.
 */
#ifndef WR_BROKER_DURABLE_H
#define WR_BROKER_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/queue_log.h"
#include "broker/server.h"

typedef struct wr_durable_s wr_durable_t;

/*
 * Opens the store named by the server's configuration, deletes what the
 * last run left of transient queues and of deleted durable ones, and
 * recovers the durable exchanges, queues, bindings and messages into the
 * server's vhosts. *out is set before recovery starts (queues created then
 * find it through the server). WR_OK, or an error that has been logged: the
 * directory is in use by another broker or of an unknown format, the
 * topology file is damaged, a queue's log cannot be opened.
 */
int wr_durable_open(wr_server_t *srv, wr_durable_t **out);
/*
 * Saves the topology, writes what queues still have pending, closes every
 * queue's log (a durable queue's blocks until it is on disk; a transient
 * queue's is deleted) and the store. Call before the vhosts are freed. NULL
 * is a no-op.
 */
void wr_durable_close(wr_durable_t *d);
/* What the queues' logs share (wr_queue_use_log). */
wr_qlog_ctx_t *wr_durable_qlogs(wr_durable_t *d);
/*
 * A durable exchange, queue or binding came or went: the topology is saved
 * before the next group commit, so no message is confirmed before the queue
 * that holds it is in the saved topology. NULL is a no-op.
 */
void wr_durable_topology_changed(wr_durable_t *d);
/* Bytes appended and not yet durable: the storage thread's backlog, which
 * storage credit flow bounds (broker/alarm.h). 0 for NULL. */
uint64_t wr_durable_pending_bytes(const wr_durable_t *d);
/*
 * The memory alarm: while low, every queue's memory budget is 0, so new
 * messages go to the queues' logs instead of memory; false restores
 * storage.queue_memory_budget. NULL is a no-op.
 */
void wr_durable_low_memory(wr_durable_t *d, bool low);

#endif
