/* SPDX-License-Identifier: MIT */
/*
 * A virtual host: its exchanges (with amq.* and the default exchange
 * pre-declared) and its queues. Exchange and queue objects live in
 * exchange.c and broker/queue/; this file owns the name tables and serves the
 * queues' hooks: their limits (arguments and policies), timers, x-expires
 * and the republishing of dead letters (docs/QUEUES.md).
 */
#ifndef WR_BROKER_VHOST_H
#define WR_BROKER_VHOST_H

#include "broker/queue/queue.h"
#include "broker/vhost/exchange.h"
#include "core/map.h"

struct event_base;
struct wr_policies_s;
typedef struct wr_vhost_s wr_vhost_t;

/* The queue name prefix of direct reply-to (amq.rabbitmq.reply-to). */
#define WR_REPLY_TO_PREFIX "amq.rabbitmq.reply-to."

/*
 * What the vhosts tell the keeper of the durable topology (node/durable.c):
 * each change to a durable exchange, queue or binding, and to a vhost's
 * policies, as it is made. Called inside the operation; none may call back
 * into the vhost.
 */
typedef struct {
    void (*exchange_declared)(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x);
    void (*exchange_deleted)(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x);
    void (*queue_declared)(void *ud, const wr_vhost_t *vh, const wr_queue_t *q);
    void (*queue_deleted)(void *ud, const wr_vhost_t *vh, const wr_queue_t *q);
    void (*binding_changed)(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x, wr_dest_t to,
                            wr_bytes_t key, wr_bytes_t args, bool added);
    void (*policies_changed)(void *ud, const wr_vhost_t *vh);
} wr_vhost_observer_t;

/*
 * What every vhost of a node shares, filled by the server (the one place
 * that wires modules) and kept alive as long as its vhosts. qlogs and the
 * observer are set once the store is open; vhosts read them at each use.
 */
typedef struct {
    struct event_base *base;
    struct wr_policies_s *policies;
    int64_t consumer_timeout;            /* ms, the node's default (limits.consumer_timeout); -1: none */
    wr_queue_store_t *qlogs;             /* the store queue logs live in; NULL: memory-only queues */
    const wr_vhost_observer_t *observer; /* NULL: nothing is noted */
    void *observer_ud;
    /* A publish through the default exchange to a direct reply-to name: the
     * hook hands m to that name's consumer, taking a reference of its own. */
    void (*reply_to)(void *ud, wr_bytes_t name, wr_message_t *m);
    void *reply_to_ud;
    /* A queue is being deleted, for whatever reason (a delete, auto-delete,
     * x-expires, its exclusive owner gone); it must not call back into the
     * vhost. The metadata group hears of the deletions it did not make. NULL: none. */
    void (*queue_deleted)(void *ud, const wr_vhost_t *vh, const wr_queue_t *q);
    void *queue_deleted_ud;
} wr_vhost_env_t;

/* A vhost with the standard exchanges declared. NULL on ENOMEM. */
wr_vhost_t *wr_vhost_new(const wr_vhost_env_t *env, const char *name);
void wr_vhost_free(wr_vhost_t *vh); /* NULL is a no-op */
const char *wr_vhost_name(const wr_vhost_t *vh);
/* What the vhost was created with. */
const wr_vhost_env_t *wr_vhost_env(const wr_vhost_t *vh);
/* The connection `conn_id` is gone: delete the exclusive queues it owned.
 * Called after its channels have been freed. */
void wr_vhost_conn_closed(wr_vhost_t *vh, uint64_t conn_id);

/*
 * The name tables, for the channel handlers. Lookups return NULL when absent;
 * the default exchange is found under "". The vhost holds one reference to
 * each exchange and queue it lists.
 */
wr_exchange_t *wr_vhost_exchange(const wr_vhost_t *vh, wr_bytes_t name);
wr_queue_t *wr_vhost_queue(const wr_vhost_t *vh, wr_bytes_t name);
/* Creates and lists a new exchange / queue (an exclusive queue is also
 * filed under its owner). A queue's max_priority and single_active are
 * read from o->args here, and its limits from args and policies. WR_OK,
 * WR_EEXIST or WR_ENOMEM. */
int wr_vhost_exchange_add(wr_vhost_t *vh, wr_bytes_t name, const wr_exchange_opts_t *o, wr_exchange_t **out);
int wr_vhost_queue_add(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_t **out);
/* A durable queue of the saved topology, with its stored log logname, whose
 * messages are recovered now. WR_OK, or an error with a message in err. */
int wr_vhost_queue_recover(wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o, const char *logname,
                           wr_queue_t **out, char *err, size_t errlen);
/* Lists q, a queue made elsewhere on this vhost's scheduler (a proxy for a
 * queue whose home is another node, cluster/remote.h), under its name, with
 * its limits from args and policies; takes over the caller's reference on
 * WR_OK. Nothing is noted for the saved topology. WR_OK, WR_EEXIST (the
 * name is taken) or WR_ENOMEM. */
int wr_vhost_queue_attach(wr_vhost_t *vh, wr_queue_t *q);
/* The scheduler a queue attached to vh must be created on. */
wr_queue_sched_t *wr_vhost_sched(wr_vhost_t *vh);
/* Deletes x with its bindings (either side), then auto-delete exchanges
 * left without bindings. */
void wr_vhost_exchange_delete(wr_vhost_t *vh, wr_exchange_t *x);
/* Deletes q: consumers are cancelled (wr_consumer_ops_t.cancelled), bindings
 * removed as above, ready messages released. Returns how many were ready. */
size_t wr_vhost_queue_delete(wr_vhost_t *vh, wr_queue_t *q);
/* wr_exchange_bind, noting a durable binding (durable source and
 * destination) for the saved topology. */
int wr_vhost_bind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
/* wr_exchange_unbind, then auto-delete of x if that was its last binding. */
int wr_vhost_unbind(wr_vhost_t *vh, wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
/*
 * A publish of m to x, for basic.publish, a committed transaction and the
 * management API alike. The routing keys are m's routing key and the
 * longstr elements of its CC and BCC headers; the queues get m without its
 * BCC header; on the default exchange a direct reply-to name reaches its
 * consumer at once (not counted as routed, as in RabbitMQ). scratch
 * receives the destinations. *routed is how many queues took m or were
 * full (a queue out of memory drops it, logged): a full queue (x-overflow
 * reject-publish) refuses m silently without conf. With conf (confirm mode)
 * the confirm waits for the durable queues that store m and fails (nack)
 * if a queue did not take it. With sent, *sent is a reference to the
 * message as the queues got it (for a basic.return). False on ENOMEM.
 */
bool wr_vhost_publish(wr_vhost_t *vh, wr_exchange_t *x, wr_message_t *m, wr_dest_set_t *scratch,
                      wr_confirm_t *conf, size_t *routed, wr_message_t **sent);

/*
 * Policies changed (vhost/policy.h): every queue's limits are computed
 * again from its arguments and the policy that now matches it, and the
 * observer is told.
 */
void wr_vhost_apply_policies(wr_vhost_t *vh);

/* For the management API and metrics: the name tables (name -> wr_exchange_t
 * / wr_queue_t), read-only, and the vhost's message counters. */
const wr_map_t *wr_vhost_exchanges(const wr_vhost_t *vh);
const wr_map_t *wr_vhost_queues(const wr_vhost_t *vh);
typedef struct {
    uint64_t publish;         /* messages published to the vhost's exchanges */
    uint64_t unroutable;      /* of those, routed to no queue */
    wr_queue_stats_t retired; /* counters of the queues deleted so far */
    uint64_t queues_created;  /* new queues (declared, not recovered) */
    uint64_t queues_deleted;
} wr_vhost_stats_t;
const wr_vhost_stats_t *wr_vhost_stats(const wr_vhost_t *vh);

#endif
