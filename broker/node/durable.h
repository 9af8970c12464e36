/* SPDX-License-Identifier: MIT */
/*
 * The node's durable state: the store in data_dir (whose lock keeps a second
 * broker out), the loop's side of group commit (one flush per loop iteration
 * in which something was appended; the store's notify fd runs the durable
 * callbacks), the durable topology (a journal and snapshots, broker/topology.h),
 * and recovery at start-up: the topology, then each durable queue's messages.
 */
#ifndef WR_BROKER_DURABLE_H
#define WR_BROKER_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/vhost/exchange.h"
#include "broker/queue/queue.h"
#include "broker/queue/queue_log.h"
#include "broker/server.h"
#include "broker/vhost/vhost.h"
#include "core/list.h"

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
 * Closes the topology journal (on disk once closed), writes what queues still have pending, closes every
 * queue's log (a durable queue's blocks until it is on disk; a transient
 * queue's is deleted) and the store. Call before the vhosts are freed. NULL
 * is a no-op.
 */
void wr_durable_close(wr_durable_t *d);
/* What the queues' logs share (wr_queue_use_log). */
wr_qlog_ctx_t *wr_durable_qlogs(wr_durable_t *d);
/*
 * A durable exchange or queue was declared or deleted, a binding between two
 * durable ends was made or removed, the vhost's policies changed: each
 * appends one record to the topology journal, which reaches the disk with
 * the next group commit (a deleted queue's log is deleted only after its
 * record is durable). Cheap: nothing here waits or writes. The queue must
 * have its log already. NULL d is a no-op.
 */
void wr_durable_exchange_declared(wr_durable_t *d, const wr_vhost_t *vh, const wr_exchange_t *x);
void wr_durable_exchange_deleted(wr_durable_t *d, const wr_vhost_t *vh, const wr_exchange_t *x);
void wr_durable_queue_declared(wr_durable_t *d, const wr_vhost_t *vh, const wr_queue_t *q);
void wr_durable_queue_deleted(wr_durable_t *d, const wr_vhost_t *vh, const wr_queue_t *q);
void wr_durable_binding_changed(wr_durable_t *d, const wr_vhost_t *vh, const wr_exchange_t *x, wr_dest_t to,
                                wr_bytes_t key, wr_bytes_t args, bool bound);
void wr_durable_policies_changed(wr_durable_t *d, const wr_vhost_t *vh);

/* Someone waiting for topology changes to be durable (a connection holding
 * its replies); the owner embeds it, self-linked (wr_list_init) when idle. */
typedef struct {
    wr_list_t link;
    uint64_t seq;
    void (*fn)(void *ud); /* called once, on the loop; may wait again */
    void *ud;
} wr_durable_waiter_t;

/* The sequence number of the last topology change recorded; 0 for NULL. */
uint64_t wr_durable_topology_seq(const wr_durable_t *d);
/*
 * Arranges for w->fn to be called once every topology change up to seq is
 * durable; a waiting w is moved. seq must be wr_durable_topology_seq's
 * latest value. Returns false, calling nothing, when they are durable already
 * (or d is NULL).
 */
bool wr_durable_topology_wait(wr_durable_t *d, wr_durable_waiter_t *w, uint64_t seq);
/* w is not called any more (harmless when it is not waiting). */
void wr_durable_topology_unwait(wr_durable_waiter_t *w);
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
