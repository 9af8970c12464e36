/* SPDX-License-Identifier: MIT */
/*
 * The node's durable state: the store in data_dir (whose lock keeps a second
 * broker out), the loop's side of group commit (one flush per loop iteration
 * in which something was appended; the store's notify fd runs the durable
 * callbacks), the node's definitions (vhosts, users, permissions, policies
 * and the durable topology: a journal and snapshots, broker/topology.h), and
 * recovery at start-up: the definitions, then each durable queue's messages.
 */
#ifndef WR_BROKER_DURABLE_H
#define WR_BROKER_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/auth/users.h"
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
    wr_users_t *users;          /* the users database: filled from the store at start-up (or its
                                   contents recorded, seeding it), its changes recorded */
    /* Creates vhost name with settings (a vhost.declare entry, broker/node/topo_state.h;
     * NULL: the defaults) and reports it with wr_durable_vhost_declared. WR_OK,
     * WR_EEXIST, WR_ENOMEM. */
    int (*vhost_add)(void *ud, const char *name, const json_t *settings);
    /* Seeding a store (see wr_durable_open): puts the configuration's policies.
     * WR_OK or an error that has been logged. */
    int (*seed)(void *ud);
    void *ud;
    /* Cluster mode: the metadata group recreates exchanges, queues and
     * bindings (and opens the durable queues' logs by name); recovery keeps
     * the logs the journal names and recreates vhosts, policies, users and
     * permissions only. */
    bool defs_elsewhere;
} wr_durable_deps_t;

/*
 * Opens the store in deps->cfg's data_dir, deletes what the last run left of
 * transient queues and of deleted durable ones, plugs itself into the vhosts'
 * environment and the users database, and recovers the definitions: the
 * vhosts (created with deps->vhost_add), their durable exchanges, queues,
 * bindings and messages, and, once the store has been seeded, its users and
 * permissions in place of the configuration's. A store never seeded (a new
 * directory, or one of an earlier version) is seeded now with the
 * configuration's vhosts, users, permissions and policies (deps->seed),
 * which it records. WR_OK, or an error that has been logged: the directory
 * is in use by another broker or of an unknown format, the topology file is
 * damaged, a queue's log cannot be opened.
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

/*
 * Records that vhost name was created, or its settings (a vhost.declare
 * entry, copied; NULL: {}) changed, and that it was deleted with all it
 * held. Nothing while the store recovers, or for NULL.
 */
void wr_durable_vhost_declared(wr_durable_t *d, const char *name, const json_t *settings);
void wr_durable_vhost_deleted(wr_durable_t *d, const char *name);

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
