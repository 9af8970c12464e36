/* SPDX-License-Identifier: MIT */
/*
 * The queue-type interface: what every kind of queue (today the classic
 * queue, classic.c; quorum queues next) offers the rest of the broker, as
 * RabbitMQ's rabbit_queue_type does. A queue is a generic head (wr_queue_t)
 * embedded in its type's own state; callers use the wr_queue_* functions
 * below, each one indirect call through the type's vtable, and never ask
 * which type a queue is. docs/ARCHITECTURE.md states the contract.
 */
#ifndef WR_BROKER_QUEUE_H
#define WR_BROKER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/base/confirm.h"
#include "broker/base/message.h"
#include "core/bytes.h"
#include "core/list.h"
#include "protocol/error.h"

typedef struct wr_queue_s wr_queue_t;
typedef struct wr_queue_type_s wr_queue_type_t;
typedef struct wr_consumer_s wr_consumer_t;
/* What the queues of one node share for storage (queue_store.h). */
typedef struct wr_qlog_ctx_s wr_queue_store_t;

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
    /* As dead_letter, for at-least-once dead-lettering: the hook raises
     * conf->waiting and releases it once every queue the copy was routed to
     * stored it (ok), or failed (no such exchange, no route, a queue refused
     * it, the vhost went): then the caller keeps the message and tries again.
     * May release inside the call. */
    void (*dead_letter_confirmed)(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why,
                                  wr_confirm_t *conf);
} wr_queue_hooks_t;

/* Ready messages from which a queue's consumers count as behind (wr_queue_sched_t.behind). */
#define WR_QUEUE_BEHIND 10000

/*
 * Dispatch is scheduled, never recursive: work on a queue (a publish, a new
 * consumer, an ack that reopens a prefetch window) puts the queue on
 * `runnable`, and the loop owner calls wr_queue_sched_run once per loop
 * iteration. `wake` is called when the list goes from empty to non-empty
 * outside a run, so the owner can arrange for that call.
 */
typedef struct {
    wr_list_t runnable;
    bool running;
    void (*wake)(void *ud); /* may be NULL */
    void *ud;
    const wr_queue_hooks_t *hooks; /* NULL: no timers, nothing dead-lettered (unit tests) */
    /* Publishes into a queue with consumers and at least WR_QUEUE_BEHIND
     * messages ready: its consumers are behind. A connection that sees this
     * grow while it publishes is read after the consumers (base/loop.h). */
    uint64_t behind;
} wr_queue_sched_t;

/* hooks starts NULL; the owner sets s->hooks before creating queues. */
void wr_queue_sched_init(wr_queue_sched_t *s, void (*wake)(void *ud), void *ud);
/*
 * Runs every queue that was runnable when called, each for at most `batch`
 * deliveries (its type's dispatch) plus as many as it took in while it
 * waited for this run, so that a queue's dispatch keeps pace with its
 * publishers however many connections the loop read them from. Returns true
 * when some queue still has work (the owner should run again on the next
 * loop iteration, after polling I/O).
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

/* x-dead-letter-strategy (quorum queues dead-letter by either). */
typedef enum { WR_DL_AT_MOST_ONCE, WR_DL_AT_LEAST_ONCE } wr_dl_strategy_t;

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
    /* For types whose rules differ from classic queues' (quorum queues, as
     * RabbitMQ's rabbit_quorum_queue): the policy's own overflow (-1: none),
     * which wins over x-overflow there, and the dead-letter strategy
     * (argument, else policy). */
    int policy_overflow;
    wr_dl_strategy_t dl_strategy;
} wr_queue_limits_t;

/* Every limit -1, overflow drop-head, no dead-lettering (at most once). */
void wr_queue_limits_none(wr_queue_limits_t *l);

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

/* Some of a queue's messages: how many, and their body bytes. */
typedef struct {
    size_t n;
    uint64_t bytes;
} wr_queue_tally_t;

/* The figures a type computes (wr_queue_info). */
typedef struct {
    size_t ready;         /* messages ready (not counting deliveries awaiting settlement) */
    uint64_t ready_bytes; /* their body bytes (x-max-length-bytes counts these) */
    uint64_t memory;      /* bytes of ready messages held in memory (the rest is paged out) */
    const char *state;    /* "running" */
    /* For the management API (RabbitMQ's messages_* and message_bytes_*). */
    wr_queue_tally_t ready_ram;          /* ready and held in memory */
    wr_queue_tally_t ready_persistent;   /* ready, with a record that survives a restart */
    wr_queue_tally_t unacked;            /* deliveries awaiting settlement */
    wr_queue_tally_t unacked_ram;        /* of which the holder keeps the message in memory */
    wr_queue_tally_t unacked_persistent; /* of which with a record that survives a restart */
    /* The next message to deliver when it is in memory, else NULL; borrowed
     * until the queue next changes. */
    wr_message_t *head;
} wr_queue_info_t;

/*
 * A delivery token: what a queue type needs to settle one message it handed
 * out (by delivery or get), filled by the type and handed back unchanged to
 * wr_queue_settle. Fixed size and copied by value, so a delivery costs no
 * allocation; its contents are the type's, except keep_msg.
 */
typedef struct {
    uint64_t w[4];
    uint32_t x;
    uint8_t b[2];
    /* The holder must keep its message reference and give it to
     * wr_queue_settle; false: the type can find the message again itself,
     * so the holder may drop it (an unacked delivery then costs no body
     * memory) and settle with NULL. */
    bool keep_msg;
} wr_qtoken_t;

/* DISCARD is a reject or nack without requeue: the message is dead-lettered
 * (rejected) when the queue's limits say dead_letter, dropped otherwise.
 * RELEASE is a requeue because the holder went away (its channel closed, or
 * basic.recover), not because the client refused it: the classic type treats
 * it as REQUEUE; a quorum queue does not count it in x-delivery-count, as
 * RabbitMQ 4 does not. */
typedef enum { WR_SETTLE_ACK, WR_SETTLE_REQUEUE, WR_SETTLE_DISCARD, WR_SETTLE_RELEASE } wr_settle_t;

/*
 * What a basic.get answered later came to (get_async): GOT (m is a
 * reference the callback takes over; unless no_ack, t settles it through
 * wr_queue_settle as any get's token; left is how many stay ready), EMPTY,
 * GONE (the queue is no more) or DOWN (the queue cannot answer now: its home
 * node is down, or it has no leader).
 */
typedef enum { WR_QUEUE_GOT, WR_QUEUE_GOT_EMPTY, WR_QUEUE_GOT_GONE, WR_QUEUE_GOT_DOWN } wr_queue_got_t;
typedef void (*wr_queue_got_fn)(void *ud, wr_queue_got_t what, wr_message_t *m, const wr_qtoken_t *t,
                                bool redelivered, uint32_t left);
typedef struct wr_queue_get_s wr_queue_get_t;

/* What a queue.purge answered later came to (purge_async): done with n, how
 * many ready messages it dropped, or not done (the queue could not commit
 * it: no leader within the retry deadline, or the node is stopping). */
typedef void (*wr_queue_purged_fn)(void *ud, bool done, uint64_t n);
typedef struct wr_queue_purging_s wr_queue_purging_t;

/*
 * The generic head of every queue, embedded in its type's state (container_of
 * from the type's side). The type owns every field's upkeep; the rest of the
 * broker reads them through the functions below, except `sources` (exchange.c)
 * and `owner_link` (vhost.c), which those files own.
 */
struct wr_queue_s {
    const wr_queue_type_t *type;
    uint32_t refs;
    bool closed;
    bool had_consumers;
    wr_bytes_t name;
    wr_queue_opts_t opts; /* args point into the queue's own copy */
    wr_queue_sched_t *sched;
    wr_list_t run_node; /* on a scheduler list while runnable */
    wr_list_t sources;
    wr_list_t owner_link;
    wr_queue_limits_t limits;
    size_t nconsumers;
    size_t unacked; /* deliveries handed out and not yet settled */
    wr_queue_stats_t stats;
    uint64_t publish_run; /* stats.publish when last made runnable or run (wr_queue_sched_run) */
};

/* What a queue needs from the owner of a consumer (a channel). */
typedef struct {
    /* Whether the owner can take a delivery now (its own flow, channel-wide
     * prefetch, socket backpressure). The per-consumer prefetch window is
     * checked by the queue before asking. */
    bool (*can_take)(wr_consumer_t *c);
    /* A delivery; takes ownership of the message reference. Unless the
     * consumer is no_ack, the owner keeps *t until it settles the delivery
     * with wr_queue_settle (at once, with REQUEUE, when it cannot keep it). */
    void (*deliver)(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *t, bool redelivered);
    /* The queue was deleted; c has already been detached from it. */
    void (*cancelled)(wr_consumer_t *c);
} wr_consumer_ops_t;

struct wr_prio_group_s;

/*
 * A consumer. The creator fills the first block after wr_consumer_new; the
 * second block belongs to the queue type, except `unacked`, which the
 * owner's record of deliveries (amqp/unacked.c) counts. Refcounted because
 * deliveries awaiting ack outlive a cancelled consumer.
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
 * A queue type. Every operation is called on the loop thread, never
 * re-entrantly for the same queue except where said. Ownership: a message
 * reference passed in is the type's; one passed out (get, deliver) is the
 * receiver's; a token stays valid until settled.
 */
struct wr_queue_type_s {
    const char *name; /* the x-queue-type value: "classic" */

    /* Declaration. Its rules for a new queue's x- arguments, in RabbitMQ's
     * order: false with a 406 in *err naming the first bad one (vhost and
     * name only go in the text). Pure. */
    bool (*validate_args)(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);
    /* The arguments a redeclaration must repeat (queue_args.c compares
     * them), NULL-terminated. */
    const char *const *equiv_args;

    /* A queue with refs = 1, copying name and args, memory-only until
     * open_store. NULL on ENOMEM. */
    wr_queue_t *(*create)(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s);
    /* Storage and recovery: see wr_queue_open_store. */
    int (*open_store)(wr_queue_t *q, wr_queue_store_t *st, const char *logname, const char *what, char *err,
                      size_t errlen);
    const char *(*store_name)(const wr_queue_t *q);
    void (*close_store)(wr_queue_t *q);
    /* The queue is deleted: see wr_queue_close. */
    size_t (*close)(wr_queue_t *q);
    /* refs reached 0: frees q (closed or not). */
    void (*destroy)(wr_queue_t *q);

    int (*publish)(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf);
    bool (*get)(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qtoken_t *t, bool *redelivered);
    /* NULL for a type whose get answers at once. Otherwise basic.get goes
     * here instead: WR_OK with *out, and fn(ud, ...) called once later on the
     * loop (never inside this call) unless get_cancel(*out) comes first (the
     * caller holds a reference to q until then); WR_ENOENT when q cannot
     * answer now (as GOT_DOWN); WR_ENOMEM. */
    int (*get_async)(wr_queue_t *q, bool no_ack, wr_queue_got_fn fn, void *ud, wr_queue_get_t **out);
    void (*get_cancel)(wr_queue_get_t *g);
    void (*settle)(wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how);
    /* Exactly one of purge and purge_async. purge: a purge done when it
     * returns. purge_async: one done later, so that purge-ok means done (a
     * quorum queue: committed and applied on this node; a proxy: the home
     * purged): WR_OK with *out, and fn(ud, ...)
     * called once later on the loop (never inside this call) unless
     * purge_cancel(*out) comes first (the caller holds a reference to q until
     * then); WR_ENOENT when q cannot answer now; WR_ENOMEM. */
    size_t (*purge)(wr_queue_t *q);
    int (*purge_async)(wr_queue_t *q, wr_queue_purged_fn fn, void *ud, wr_queue_purging_t **out);
    void (*purge_cancel)(wr_queue_purging_t *p);

    int (*consume)(wr_queue_t *q, wr_consumer_t *c);
    void (*cancel)(wr_queue_t *q, wr_consumer_t *c);
    const wr_consumer_t *(*active_consumer)(const wr_queue_t *q);
    void (*foreach_consumer)(const wr_queue_t *q, void (*fn)(void *ud, const wr_consumer_t *c), void *ud);

    /* Delivers up to `batch` messages; true when more could go right away.
     * Called by wr_queue_sched_run only. */
    bool (*dispatch)(wr_queue_t *q, size_t batch);
    void (*wake)(wr_queue_t *q);
    void (*set_limits)(wr_queue_t *q, const wr_queue_limits_t *l);
    void (*tick)(wr_queue_t *q);
    void (*touch)(wr_queue_t *q);
    void (*info)(const wr_queue_t *q, wr_queue_info_t *out);
};

/* The types, by x-queue-type value; NULL for a name no type has. */
const wr_queue_type_t *wr_queue_type_find(wr_bytes_t name);
/* The type of a queue declared without x-queue-type (classic). */
const wr_queue_type_t *wr_queue_type_default(void);
/* Every type, NULL-terminated (tests run the contract over each). */
const wr_queue_type_t *const *wr_queue_types(void);

/*
 * For types only: fills q's head (refs = 1, name and args copied into
 * `room`, which holds name.len + o->args.len bytes and lives as long as q).
 */
void wr_queue_head_init(wr_queue_t *q, const wr_queue_type_t *t, wr_bytes_t name, const wr_queue_opts_t *o,
                        wr_queue_sched_t *s, uint8_t *room);
/* For types only: puts q on its scheduler's runnable list (q must not be on
 * it), telling the owner when the list was idle. */
void wr_queue_sched_add(wr_queue_t *q);

/* A queue of type t, refs = 1 (see create). NULL on ENOMEM. */
static inline wr_queue_t *wr_queue_new(const wr_queue_type_t *t, wr_bytes_t name, const wr_queue_opts_t *o,
                                       wr_queue_sched_t *s)
{
    return t->create(name, o, s);
}

static inline wr_queue_t *wr_queue_ref(wr_queue_t *q)
{
    q->refs++;
    return q;
}

/* Frees at zero (its type's destroy: the queue should have been closed).
 * NULL is a no-op. */
static inline void wr_queue_unref(wr_queue_t *q)
{
    if (q != NULL && --q->refs == 0)
        q->type->destroy(q);
}

/*
 * Gives q its storage in st (`what` names the queue in log lines): with
 * logname NULL a new log, for paging and, when q is durable, its persistent
 * messages; with logname the stored log of a durable queue, whose messages
 * are recovered into q now (recovery at start-up). WR_OK, or WR_EIO /
 * WR_ENOMEM with a message in err.
 */
static inline int wr_queue_open_store(wr_queue_t *q, wr_queue_store_t *st, const char *logname,
                                      const char *what, char *err, size_t errlen)
{
    return q->type->open_store(q, st, logname, what, err, errlen);
}

/* The name of q's storage (the topology keeps it), or NULL without one. */
static inline const char *wr_queue_store_name(const wr_queue_t *q)
{
    return q->type->store_name(q);
}

/* The broker is stopping: q's storage is closed, keeping what a restart must
 * recover; q is memory-only afterwards. */
static inline void wr_queue_close_store(wr_queue_t *q)
{
    q->type->close_store(q);
}

/*
 * The queue is being deleted: consumers are detached and each told through
 * ops->cancelled, ready messages are released, confirms waiting on it are
 * released, its storage goes and the queue leaves the scheduler. Returns how
 * many messages were ready. The caller's reference stays valid; deliveries
 * still awaiting settlement may be settled afterwards (they are dropped).
 */
static inline size_t wr_queue_close(wr_queue_t *q)
{
    return q->type->close(q);
}

/*
 * Appends m, taking a reference of its own when it keeps m in memory. With
 * conf (the publisher wants a confirm), a message the type must make durable
 * adds a hold to conf (confirm.h) that it releases once it is. The classic
 * type: a persistent message (delivery_mode 2) of a durable queue, and any
 * message past the memory budget, goes to the log; its expiry is the shorter
 * of x-message-ttl and its expiration property; a priority queue files it by
 * its priority property; past a length limit the head is dropped (drop-head)
 * or m refused. WR_OK; WR_EFULL when the queue is full and refuses m
 * (reject-publish; with reject-publish-dlx m has been dead-lettered);
 * WR_ENOMEM; WR_EIO or WR_ETOOBIG when a persistent message could not be
 * written (then the queue does not take it).
 */
static inline int wr_queue_publish(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf)
{
    return q->type->publish(q, m, conf);
}

/*
 * Takes the head message for basic.get: false when none is ready. The caller
 * owns the returned reference and, unless no_ack (then the message is done
 * with), keeps *t until it settles it with wr_queue_settle.
 */
static inline bool wr_queue_get(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qtoken_t *t,
                                bool *redelivered)
{
    return q->type->get(q, no_ack, m, t, redelivered);
}

/*
 * Settles a delivery or get of q that was not no_ack: ACK (done with),
 * REQUEUE (back at its original place, marked redelivered; past
 * x-delivery-limit returns it is dead-lettered instead) or DISCARD. Takes
 * ownership of m, which may be NULL unless t->keep_msg. Counts the ack and
 * the unacked figure, and wakes q when the delivery went to a consumer (its
 * window reopened). A closed queue just drops the message.
 */
static inline void wr_queue_settle(wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    q->type->settle(q, m, t, how);
}

/* Drops every ready message; returns how many. Only for a type without
 * purge_async. */
static inline size_t wr_queue_purge(wr_queue_t *q)
{
    return q->type->purge(q);
}

/*
 * Attaches c to q (q keeps a reference to c). WR_OK, WR_ENOMEM, or
 * WR_EEXIST when exclusivity forbids it: q has an exclusive consumer, or c
 * is exclusive and q has consumers.
 */
static inline int wr_queue_consume(wr_queue_t *q, wr_consumer_t *c)
{
    return q->type->consume(q, c);
}

/* Detaches c from its queue, if any (no callback); the queue drops its
 * reference. */
static inline void wr_queue_cancel(wr_consumer_t *c)
{
    if (c->queue != NULL)
        c->queue->type->cancel(c->queue, c);
}

/* The consumer receiving deliveries of a single-active-consumer queue, or
 * NULL (no consumers, or not such a queue). */
static inline const wr_consumer_t *wr_queue_active_consumer(const wr_queue_t *q)
{
    return q->type->active_consumer(q);
}

/* Calls fn for each consumer of q in attach order (management API); fn
 * must not attach or cancel. */
static inline void wr_queue_foreach_consumer(const wr_queue_t *q,
                                             void (*fn)(void *ud, const wr_consumer_t *c), void *ud)
{
    q->type->foreach_consumer(q, fn, ud);
}

/*
 * Whether a consumer of q could take a delivery now: its prefetch window
 * is open and its owner can take one (RabbitMQ's consumer capacity, for
 * the management API). Asks the owners, changes nothing.
 */
bool wr_queue_can_deliver(const wr_queue_t *q);

/* Schedules a dispatch run if q has ready messages and consumers. */
static inline void wr_queue_wake(wr_queue_t *q)
{
    q->type->wake(q);
}

/*
 * Puts l in force (a queue starts with wr_queue_limits_none), from its
 * arguments and the policy that matches it: a lower length limit drops
 * (drop-head) or dead-letters heads right away, timers are re-armed through
 * the hooks.
 */
static inline void wr_queue_set_limits(wr_queue_t *q, const wr_queue_limits_t *l)
{
    q->type->set_limits(q, l);
}

/* The timer asked for by hooks->arm is due: expired heads leave, an unused
 * queue past x-expires is reported, the next timer is armed. */
static inline void wr_queue_tick(wr_queue_t *q)
{
    q->type->tick(q);
}

/* q was used (declared again, basic.get): its x-expires starts over. */
static inline void wr_queue_touch(wr_queue_t *q)
{
    q->type->touch(q);
}

/* The figures only the type can compute. */
static inline void wr_queue_info(const wr_queue_t *q, wr_queue_info_t *out)
{
    q->type->info(q, out);
}

/* Ready messages (not counting deliveries awaiting ack). */
static inline size_t wr_queue_ready(const wr_queue_t *q)
{
    wr_queue_info_t i;

    wr_queue_info(q, &i);
    return i.ready;
}

/* Body bytes of ready messages (x-max-length-bytes counts these). */
static inline uint64_t wr_queue_ready_bytes(const wr_queue_t *q)
{
    wr_queue_info_t i;

    wr_queue_info(q, &i);
    return i.ready_bytes;
}

/* Bytes of ready messages held in memory (the rest are paged out). */
static inline uint64_t wr_queue_memory(const wr_queue_t *q)
{
    wr_queue_info_t i;

    wr_queue_info(q, &i);
    return i.memory;
}

/* ---------------------------------------------------------------- the head */

static inline wr_bytes_t wr_queue_name(const wr_queue_t *q)
{
    return q->name;
}

/* The declared properties; args point into the queue's own copy. */
static inline const wr_queue_opts_t *wr_queue_opts(const wr_queue_t *q)
{
    return &q->opts;
}

static inline const char *wr_queue_type_name(const wr_queue_t *q)
{
    return q->type->name;
}

static inline bool wr_queue_closed(const wr_queue_t *q)
{
    return q->closed;
}

static inline size_t wr_queue_consumer_count(const wr_queue_t *q)
{
    return q->nconsumers;
}

/* Deliveries of this queue awaiting settlement, on any channel. */
static inline size_t wr_queue_unacked(const wr_queue_t *q)
{
    return q->unacked;
}

static inline const wr_queue_stats_t *wr_queue_stats(const wr_queue_t *q)
{
    return &q->stats;
}

static inline const wr_queue_limits_t *wr_queue_limits(const wr_queue_t *q)
{
    return &q->limits;
}

/* Milliseconds on q's hooks' clock (0 without hooks). */
static inline uint64_t wr_queue_now_ms(const wr_queue_t *q)
{
    const wr_queue_hooks_t *h = q->sched->hooks;

    return h != NULL ? h->now_ms(q->sched->ud) : 0;
}

/* The exchanges bound to this queue; owned by exchange.c. */
static inline wr_list_t *wr_queue_sources(wr_queue_t *q)
{
    return &q->sources;
}

/* Links an exclusive queue into its owner's list; owned by vhost.c. */
static inline wr_list_t *wr_queue_owner_link(wr_queue_t *q)
{
    return &q->owner_link;
}

/* The queue whose owner link this is. */
static inline wr_queue_t *wr_queue_from_owner_link(wr_list_t *link)
{
    return wr_list_entry(link, wr_queue_t, owner_link);
}

/* auto_delete, has had a consumer, has none now, not yet closed. */
static inline bool wr_queue_auto_delete_due(const wr_queue_t *q)
{
    return q->opts.auto_delete && q->had_consumers && q->nconsumers == 0 && !q->closed;
}

#endif
