/* SPDX-License-Identifier: MIT */
/*
 * Classic queues used from a node that is not their home (docs/CLUSTERING.md).
 * The metadata group's apply calls wr_remote_queue_new + wr_vhost_queue_attach
 * on every node but the queue's home.
 *
 * Both sides live here: the proxy (a wr_queue_type_t whose publish forwards
 * to the home node, whose consume subscribes there and whose settle forwards
 * the ack/requeue/discard), and the home side that serves proxies: it
 * publishes forwarded messages into the real local queue (with the confirm
 * answered back once the home queue confirms), and attaches a consumer per
 * remote consumer whose deliveries go over the link (prefetch honoured by
 * the home-side consumer's can_take, credit returned as settles arrive).
 * Messages travel as APP messages of kinds WR_PEER_APP_QUEUE_FIRST..LAST.
 */
#ifndef WR_BROKER_CLUSTER_REMOTE_H
#define WR_BROKER_CLUSTER_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/link.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"

struct event_base;
typedef struct wr_remote_s wr_remote_t;

typedef struct {
    struct event_base *base;
    wr_peer_links_t *links; /* routes the QUEUE kinds and watches peers */
    const char *self;       /* this node's name */
    /* Home side: the local vhost of that name (NULL: none). */
    wr_vhost_t *(*vhost)(void *ud, const char *name);
    /* The outboxes shrank (wr_remote_pending_bytes): publishers held by flow may go on. May be NULL. */
    void (*drained)(void *ud);
    void *ud;
} wr_remote_deps_t;

/*
 * Bytes waiting in the outboxes for links above their high mark: publishes
 * forwarded faster than a link drains. The alarms hold publishers by flow
 * above WR_REMOTE_FLOW_BYTES (as for a slow disk), well before a proxy
 * refuses a publish at WR_REMOTE_OUTBOX_MAX. 0 for NULL.
 */
uint64_t wr_remote_pending_bytes(const wr_remote_t *r);

/* The node-wide service, both sides. NULL on ENOMEM. Before wr_peer_links_start. */
wr_remote_t *wr_remote_new(const wr_remote_deps_t *d);
/* Cancels every proxy consumer, fails pending confirms, frees r. NULL is a no-op. */
void wr_remote_free(wr_remote_t *r);

/*
 * A proxy (refs = 1) for the queue `name` of vhost vh whose home is node
 * `home` (!= self). Type name "classic" for the API; wr_queue_info reports
 * what the home last said (or zeros). While the home is down: publishes are
 * dropped as unroutable for that queue (a confirm-mode publish is nacked
 * when no other queue took it) and consumers are cancelled with
 * basic.cancel when the client has consumer_cancel_notify, as RabbitMQ does
 * with a classic queue whose node is down; declares and basic.consume/get
 * get RabbitMQ's 404 "home node '...' of durable queue '...' in vhost '...'
 * is down or inaccessible".
 */
wr_queue_t *wr_remote_queue_new(wr_remote_t *r, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                                const char *home);
/*
 * Makes proxy q (a quorum queue's, on a node that is not its member) go
 * through any of members (copied), the voters of the queue's group in
 * leadership order: its home is the first of them that is up, and when that
 * node goes down it moves to the next one up, its consumers subscribing
 * there again (keeping their channels) instead of being cancelled, pending
 * confirms nacked. Nothing for another queue. false on ENOMEM (nothing
 * changed).
 */
bool wr_remote_queue_set_members(wr_queue_t *q, const char *const *members, size_t n);
/* The home node of q if it is a proxy, else NULL. */
const char *wr_remote_queue_home(const wr_queue_t *q);
/*
 * basic.get on a proxy: the head message comes from the home, a round trip
 * away (wr_queue_get on a proxy always answers none; it is the type's
 * get_async, queue.h). What it came to:
 * GOT (m is a reference the callback takes over; unless no_ack, t settles
 * it through wr_queue_settle as any get's token; left is what the home still
 * holds ready), EMPTY, GONE (the home has no such queue) or DOWN (the home
 * went down meanwhile: RabbitMQ's 404, wr_remote_queue_down_error).
 */
/*
 * Asks q's home for its head message. WR_OK with *out: fn(ud, ...) is called
 * once, later on the loop (never inside this call), unless cancelled; the
 * caller holds a reference to q until then. WR_ENOENT when q is not a
 * usable proxy (its home is down now: answer RabbitMQ's 404); WR_ENOMEM.
 */
int wr_remote_queue_get(wr_queue_t *q, bool no_ack, wr_queue_got_fn fn, void *ud, wr_queue_get_t **out);
/* fn will not be called (the asker is gone); a message the home sends for
 * g anyway goes back to the queue. */
void wr_remote_get_cancel(wr_queue_get_t *g);

/* Whether q is a proxy whose home node is down now. */
bool wr_remote_queue_down(const wr_queue_t *q);
/*
 * RabbitMQ's error for a proxy q whose home is down, for method (a
 * declare, basic.consume, basic.get): 404 "home node 'n1' of durable queue
 * 'q' in vhost '/' is down or inaccessible".
 */
void wr_remote_queue_down_error(const wr_queue_t *q, const char *vhost, uint32_t method,
                                wr_amqp_error_t *err);
/*
 * The error for a get or purge that q (a proxy or a quorum queue) could not
 * answer: through a proxy whose home is down, wr_remote_queue_down_error's
 * 404; else a quorum queue that found no leader within the retry deadline,
 * 541 "timed out waiting for the leader of queue 'q' in vhost '/'", as
 * RabbitMQ answers a command that fails.
 */
void wr_remote_queue_unanswered(const wr_queue_t *q, const char *vhost, uint32_t method,
                                wr_amqp_error_t *err);

/* What the service holds now (tests show the bounds; the management API). */
typedef struct {
    size_t proxies;        /* proxies alive */
    size_t confirms;       /* publishes awaiting their home's confirm */
    size_t gets;           /* basic.gets and queue.purges awaiting their home's answer */
    size_t buffered;       /* deliveries received, not yet taken by a local consumer */
    size_t outbox_bytes;   /* queued while links were above their high mark */
    size_t home_consumers; /* consumers of other nodes served by local queues */
    size_t home_unsettled; /* their deliveries awaiting settlement */
} wr_remote_stats_t;
void wr_remote_stats(const wr_remote_t *r, wr_remote_stats_t *out);

/* Proxy consumers get this much credit (deliveries in transit or buffered
 * at the proxy); half of it goes back at a time. */
#define WR_REMOTE_CREDIT_WINDOW 256
/* A proxy refuses publishes (WR_EFULL: a nack) once this much waits for a
 * link above its high mark. */
#define WR_REMOTE_OUTBOX_MAX (1u << 20)
/* Publishers are held by flow while the outboxes hold more than this. */
#define WR_REMOTE_FLOW_BYTES (WR_REMOTE_OUTBOX_MAX / 4)

#endif
