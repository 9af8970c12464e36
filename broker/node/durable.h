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

#include "broker/config/config.h"
#include "broker/queue/queue.h"
#include "broker/queue/queue_store.h"
#include "broker/vhost/exchange.h"
#include "broker/vhost/vhost.h"
#include "core/list.h"
#include "core/map.h"

struct event_base;
typedef struct wr_durable_s wr_durable_t;

/* What the store works with; all of it outlives the store. */
typedef struct {
    const wr_config_t *cfg; /* data_dir, segment_size, queue_memory_budget */
    struct event_base *base;
    const wr_map_t *vhosts;     /* name -> wr_vhost_t: recovery fills them, close detaches their queues */
    wr_vhost_env_t *vhost_env;  /* the vhosts' environment: the store plugs in its queue logs and
                                   the topology observer, and takes them out at close */
    void (*progress)(void *ud); /* the storage thread finished a batch (flow alarms) */
    void *ud;
} wr_durable_deps_t;

/*
 * Opens the store in deps->cfg's data_dir, deletes what the last run left of
 * transient queues and of deleted durable ones, plugs itself into the vhosts'
 * environment, and recovers the durable exchanges, queues, bindings and
 * messages into the vhosts. WR_OK, or an error that has been logged: the
 * directory is in use by another broker or of an unknown format, the
 * topology file is damaged, a queue's log cannot be opened.
 */
int wr_durable_open(const wr_durable_deps_t *deps, wr_durable_t **out);
/*
 * Closes the topology journal (on disk once closed), writes what queues still have pending, closes every
 * queue's log (a durable queue's blocks until it is on disk; a transient
 * queue's is deleted) and the store. Call before the vhosts are freed. NULL
 * is a no-op.
 */
void wr_durable_close(wr_durable_t *d);
/*
 * While the store is open, each change to the durable topology the vhosts
 * report (wr_vhost_observer_t) appends one record to the topology journal,
 * which reaches the disk with the next group commit (a deleted queue's log
 * is deleted only after its record is durable). Cheap: nothing waits or
 * writes then.
 */

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
