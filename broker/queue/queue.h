/* SPDX-License-Identifier: MIT */
/*
 * Queues and their bookkeeping: ready messages in enqueue order (a requeued
 * message goes back to its original place), consumers in priority order with
 * round-robin inside a priority, each channel's record of deliveries
 * awaiting acknowledgement, and paging: past its memory budget a queue keeps
 * messages only in its log (queue_log.c), where persistent messages of a
 * durable queue always are. Nothing here touches libevent: the scheduler is
 * driven by whoever owns the loop (vhost.c), so unit tests drive it by hand.
 */
#ifndef WR_BROKER_QUEUE_H
#define WR_BROKER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/base/confirm.h"
#include "broker/base/message.h"
#include "broker/queue/queue_log.h"
#include "core/bytes.h"
#include "core/list.h"

typedef struct wr_queue_s wr_queue_t;
typedef struct wr_consumer_s wr_consumer_t;
typedef struct wr_unacked_s wr_unacked_t;

/*
 * Dispatch is scheduled, never recursive: work on a queue (a publish, a new
 * consumer, an ack that reopens a prefetch window) puts the queue on
 * `runnable`, and the loop owner calls wr_queue_sched_run once per loop
 * iteration. `wake` is called when the list goes from empty to non-empty
 * outside a run, so the owner can arrange for that call.
 */
/* Why a message leaves its queue for the dead-letter exchange (the x-death
 * "reason"). */
typedef enum { WR_DL_REJECTED, WR_DL_EXPIRED, WR_DL_MAXLEN, WR_DL_DELIVERY_LIMIT } wr_dl_reason_t;

/*
 * What queues need from their owner (vhost.c) for limits and timers. Every
 * hook is called from inside queue operations, so none may re-enter the
 * queue: dead_letter in particular must defer the republish.
 */
typedef struct {
    /* Monotonic milliseconds: message and queue expiry are measured in it. */
    uint64_t (*now_ms)(void *ud);
    /* m (a reference the hook takes over) leaves q for q's dead-letter
     * exchange. Called only while q's limits say dead_letter. */
    void (*dead_letter)(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why);
    /* Call wr_queue_tick(q) at now_ms() >= due (replacing any earlier
     * request); due UINT64_MAX: nothing is due. */
    void (*arm)(void *ud, wr_queue_t *q, uint64_t due);
    /* q has been unused for its x-expires: the owner deletes it (later, not
     * inside this call). */
    void (*expired)(void *ud, wr_queue_t *q);
} wr_queue_hooks_t;

typedef struct {
    wr_list_t runnable;
    bool running;
    void (*wake)(void *ud); /* may be NULL */
    void *ud;
    const wr_queue_hooks_t *hooks; /* NULL: no timers, nothing dead-lettered (unit tests) */
} wr_queue_sched_t;

/* hooks starts NULL; the owner sets s->hooks before creating queues. */
void wr_queue_sched_init(wr_queue_sched_t *s, void (*wake)(void *ud), void *ud);
/*
 * Runs every queue that was runnable when called, each for at most `batch`
 * deliveries. Returns true when some queue still has work (the owner should
 * run again on the next loop iteration, after polling I/O).
 */
bool wr_queue_sched_run(wr_queue_sched_t *s, size_t batch);

typedef struct {
    bool durable;
    bool exclusive;
    bool auto_delete;
    uint64_t owner;  /* connection id, when exclusive */
    wr_bytes_t args; /* raw validated table */
    /* Fixed at creation, from args. */
    uint8_t max_priority; /* x-max-priority: 0 = not a priority queue */
    bool single_active;   /* x-single-active-consumer */
} wr_queue_opts_t;

typedef enum {
    WR_OVERFLOW_DROP_HEAD,
    WR_OVERFLOW_REJECT_PUBLISH,
    WR_OVERFLOW_REJECT_PUBLISH_DLX
} wr_overflow_t;

/*
 * The limits in force on a queue: its arguments merged with the policy that
 * matches it (vhost.c computes them; they change when policies do). -1: no
 * limit.
 */
typedef struct {
    int64_t message_ttl;      /* x-message-ttl, ms (a message's expiration may be shorter) */
    int64_t expires;          /* x-expires, ms unused before the queue is deleted */
    int64_t max_length;       /* x-max-length, ready messages */
    int64_t max_length_bytes; /* x-max-length-bytes, body bytes of ready messages */
    wr_overflow_t overflow;   /* x-overflow */
    int64_t delivery_limit;   /* x-delivery-limit: returns before dead-lettering */
    bool dead_letter;         /* a dead-letter exchange is set: hooks->dead_letter gets what leaves */
    int64_t consumer_timeout; /* x-consumer-timeout, ms a delivery may wait for its ack */
} wr_queue_limits_t;

/*
 * Where a message taken from a queue came from: its place in the queue's
 * order (a requeue puts it back there) and its log record. Filled by the
 * queue, handed back to it on requeue or settlement.
 */
typedef struct {
    uint64_t seq;
    uint64_t index;   /* 0: not in the log */
    uint64_t expiry;  /* queue.c's: when it expires (kept across a requeue) */
    uint64_t size;    /* body bytes */
    uint32_t returns; /* queue.c's: requeues so far (x-delivery-limit) */
    uint8_t flags;    /* queue.c's */
    uint8_t prio;     /* queue.c's: its priority lane */
} wr_qpos_t;

/* A queue with refs = 1, copying name and args, kept in memory only until
 * wr_queue_use_log. NULL on ENOMEM. */
wr_queue_t *wr_queue_new(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s);
/*
 * Gives q a log in ctx's store (see wr_qlog_new; `what` names the queue in
 * log lines): with logname NULL a new one, for paging and, when q is
 * durable, its persistent messages; with logname the stored log of a durable
 * queue, whose messages are recovered into q now. WR_OK, or WR_EIO / WR_ENOMEM
 * with a message in err.
 */
int wr_queue_use_log(wr_queue_t *q, wr_qlog_ctx_t *ctx, const char *logname, const char *what, char *err,
                     size_t errlen);
/* The name of q's log in the store, or NULL without one. */
const char *wr_queue_log_name(const wr_queue_t *q);
/*
 * The broker is stopping: q's log is closed, keeping what a restart must
 * recover (see wr_qlog_close); q is memory-only afterwards.
 */
void wr_queue_detach_log(wr_queue_t *q);
wr_queue_t *wr_queue_ref(wr_queue_t *q);
/* Frees at zero (the queue must have been closed). NULL is a no-op. */
void wr_queue_unref(wr_queue_t *q);

wr_bytes_t wr_queue_name(const wr_queue_t *q);
/* The declared properties; args point into the queue's own copy. */
const wr_queue_opts_t *wr_queue_opts(const wr_queue_t *q);
bool wr_queue_closed(const wr_queue_t *q);
/* Ready messages (not counting deliveries awaiting ack). */
size_t wr_queue_ready(const wr_queue_t *q);
/* Bytes of ready messages held in memory (the rest are paged out). */
uint64_t wr_queue_memory(const wr_queue_t *q);
size_t wr_queue_consumer_count(const wr_queue_t *q);
/* Deliveries of this queue awaiting ack, on any channel. */
size_t wr_queue_unacked(const wr_queue_t *q);

/* Message counters since the queue was created (management API, metrics). */
typedef struct {
    uint64_t publish;        /* messages enqueued */
    uint64_t deliver;        /* to consumers that acknowledge */
    uint64_t deliver_no_ack; /* to no-ack consumers */
    uint64_t get;            /* basic.get with acknowledgement */
    uint64_t get_no_ack;     /* basic.get without */
    uint64_t redeliver;      /* deliveries and gets of redelivered messages */
    uint64_t ack;            /* acknowledged deliveries */
} wr_queue_stats_t;

const wr_queue_stats_t *wr_queue_stats(const wr_queue_t *q);
/* The exchanges bound to this queue; owned by exchange.c. */
wr_list_t *wr_queue_sources(wr_queue_t *q);
/* Links an exclusive queue into its owner's list; owned by vhost.c. */
wr_list_t *wr_queue_owner_link(wr_queue_t *q);
/* The queue whose owner link this is. */
wr_queue_t *wr_queue_from_owner_link(wr_list_t *link);

/*
 * Appends m, taking a reference of its own when it stays in memory. A
 * persistent message (delivery_mode 2) of a durable queue is written to the
 * log; so is any message that does not fit in the memory budget. With conf
 * (the publisher wants a confirm), a persistent message holds it until its
 * record is durable. Its expiry is the shorter of x-message-ttl and its
 * expiration property; a priority queue files it by its priority property;
 * past a length limit the head is dropped (drop-head) or m refused. WR_OK;
 * WR_EFULL when the queue is full and refuses m (reject-publish; with
 * reject-publish-dlx m has been dead-lettered); WR_ENOMEM; WR_EIO or
 * WR_ETOOBIG when a persistent message could not be written (then the queue
 * does not take it).
 */
int wr_queue_publish(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf);
/*
 * Takes the head message for basic.get: false when none is ready. The caller
 * owns the returned reference and, unless no_ack (then the message is done
 * with), keeps *pos for wr_unacked_add or wr_queue_requeue.
 */
bool wr_queue_get(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qpos_t *pos, bool *redelivered);
/*
 * Puts a delivered message back at its original place, marked redelivered;
 * takes ownership of the reference. m may be NULL when pos has a log record:
 * the message is then read back from the log when it is next taken. A
 * closed queue just drops it. Past
 * x-delivery-limit returns the message is dead-lettered (delivery_limit)
 * instead.
 */
void wr_queue_requeue(wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos);
/* Drops every ready message; returns how many. */
size_t wr_queue_purge(wr_queue_t *q);
/*
 * The queue is being deleted: consumers are detached and each told through
 * ops->cancelled, ready messages are released, and the queue leaves the
 * scheduler. Returns how many messages were ready. The caller's reference
 * stays valid.
 */
size_t wr_queue_close(wr_queue_t *q);
/* Schedules a dispatch run if the queue has ready messages and consumers. */
void wr_queue_wake(wr_queue_t *q);

/* Every limit -1, overflow drop-head, no dead-lettering. */
void wr_queue_limits_none(wr_queue_limits_t *l);
/*
 * Puts l in force (a queue starts with wr_queue_limits_none): a lower length
 * limit drops (drop-head) or dead-letters heads right away, timers are
 * re-armed through the hooks.
 */
void wr_queue_set_limits(wr_queue_t *q, const wr_queue_limits_t *l);
const wr_queue_limits_t *wr_queue_limits(const wr_queue_t *q);
/* The timer asked for by hooks->arm is due: expired heads leave, an unused
 * queue past x-expires is reported, the next timer is armed. */
void wr_queue_tick(wr_queue_t *q);
/* q was used (declared again, basic.get): its x-expires starts over. */
void wr_queue_touch(wr_queue_t *q);
/* The consumer receiving deliveries of a single-active-consumer queue, or
 * NULL (no consumers, or not such a queue). */
const wr_consumer_t *wr_queue_active_consumer(const wr_queue_t *q);
/* Calls fn for each consumer of q in attach order (management API); fn
 * must not attach or cancel. */
void wr_queue_foreach_consumer(const wr_queue_t *q, void (*fn)(void *ud, const wr_consumer_t *c), void *ud);
/* Bytes of ready messages' bodies (x-max-length-bytes counts these). */
uint64_t wr_queue_ready_bytes(const wr_queue_t *q);

/* What a queue needs from the owner of a consumer (a channel). */
typedef struct {
    /* Whether the owner can take a delivery now (its own flow, channel-wide
     * prefetch, socket backpressure). The per-consumer prefetch window is
     * checked by the queue before asking. */
    bool (*can_take)(wr_consumer_t *c);
    /* A delivery; takes ownership of the message reference. Unless the
     * consumer is no_ack, the owner keeps *pos for wr_unacked_add (or
     * wr_queue_requeue when it cannot). */
    void (*deliver)(wr_consumer_t *c, wr_message_t *m, const wr_qpos_t *pos, bool redelivered);
    /* The queue was deleted; c has already been detached from it. */
    void (*cancelled)(wr_consumer_t *c);
} wr_consumer_ops_t;

struct wr_prio_group_s;

/*
 * A consumer. The creator fills the first block after wr_consumer_new; the
 * second block belongs to queue.c. Refcounted because deliveries awaiting
 * ack outlive a cancelled consumer.
 */
struct wr_consumer_s {
    const wr_consumer_ops_t *ops;
    void *owner;
    wr_bytes_t tag;  /* points into the consumer's own allocation */
    wr_bytes_t args; /* basic.consume's arguments (raw table), likewise */
    int32_t priority;
    uint16_t prefetch; /* per-consumer window, 0 = unlimited */
    bool no_ack;
    bool exclusive;

    wr_queue_t *queue; /* NULL once cancelled */
    uint32_t unacked;  /* deliveries awaiting ack */
    uint32_t refs;
    wr_list_t qnode;
    struct wr_prio_group_s *group;
    wr_list_t anode; /* in the queue's consumers in attach order */
};

/* refs = 1, copies of tag and args, everything else zero. NULL on ENOMEM. */
wr_consumer_t *wr_consumer_new(wr_bytes_t tag, wr_bytes_t args, const wr_consumer_ops_t *ops, void *owner);
void wr_consumer_unref(wr_consumer_t *c); /* NULL is a no-op */
/*
 * Attaches c to q (q keeps a reference to c). WR_OK, or WR_EEXIST when
 * exclusivity forbids it: q has an exclusive consumer, or c is exclusive and
 * q has consumers.
 */
int wr_queue_consume(wr_queue_t *q, wr_consumer_t *c);
/* Detaches c from its queue (no callback); the queue drops its reference. */
void wr_queue_cancel(wr_consumer_t *c);
/* auto_delete, has had a consumer, has none now, not yet closed. */
bool wr_queue_auto_delete_due(const wr_queue_t *q);

/*
 * A channel's deliveries awaiting ack, in delivery-tag order with an index by
 * tag: ack, ack-multiple, nack and reject cost O(1) amortised per delivery.
 */
/* DISCARD is a reject or nack without requeue: the message is dead-lettered
 * (rejected) when the queue's limits say dead_letter, dropped otherwise. */
typedef enum { WR_SETTLE_ACK, WR_SETTLE_REQUEUE, WR_SETTLE_DISCARD } wr_settle_t;

wr_unacked_t *wr_unacked_new(void);
/* Requeues whatever is still pending, then frees. NULL is a no-op. */
void wr_unacked_free(wr_unacked_t *u);
/*
 * Records a delivery of m at pos. Tags must increase from one call to the
 * next. The caller keeps its reference to m: the delivery takes one of its
 * own only when m has no log record (pos->index 0); a logged message is read
 * back from the log if it is requeued or dead-lettered, so an unacked
 * delivery costs no body memory. Takes references of its own to q and to c
 * (NULL for basic.get), whose window it counts. WR_OK or WR_ENOMEM (then
 * nothing is kept).
 */
int wr_unacked_add(wr_unacked_t *u, uint64_t tag, wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos,
                   wr_consumer_t *c);
/*
 * Settles `tag`, or with `multiple` every pending tag up to it (tag 0 with
 * multiple: everything). WR_ENOENT when tag is not pending; then nothing is
 * settled. Requeued messages go back to their queues marked redelivered.
 */
int wr_unacked_settle(wr_unacked_t *u, uint64_t tag, bool multiple, wr_settle_t how);
/* Requeues every pending delivery; returns how many. */
size_t wr_unacked_requeue_all(wr_unacked_t *u);
size_t wr_unacked_count(const wr_unacked_t *u);
/*
 * The consumer timeout, checked as RabbitMQ does on the oldest pending
 * delivery only: milliseconds until it is overdue by its queue's
 * consumer_timeout (limits in force now), 0 when it is (then *timeout_ms is
 * that timeout, for the error text), UINT64_MAX when nothing is pending or
 * its queue has no timeout. On the queue hooks' clock (0 without hooks).
 */
uint64_t wr_unacked_overdue_in(const wr_unacked_t *u, int64_t *timeout_ms);
/* Milliseconds since the oldest pending delivery was made, -1 when none. */
int64_t wr_unacked_oldest_age(const wr_unacked_t *u);
/* Pending deliveries that went to consumers (not basic.get): the channel's
 * global prefetch counts these. */
size_t wr_unacked_consumer_count(const wr_unacked_t *u);

#endif
