/* SPDX-License-Identifier: MIT */
/*
 * The classic queue type, without I/O of its own: consumers, dispatch in
 * bounded batches, limits (TTL, length, delivery limit, x-expires),
 * dead-lettering, settlement and paging. Ready messages wait in the store of
 * queue_ready.c, one lane per priority; a requeued message goes back to its
 * original place in its lane. Beyond the memory budget new messages go to
 * the log (queue_log.c) only and are read back in batches, ahead of the
 * consumers, as the queue drains.
 */
#include "broker/queue/classic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue/queue_ready.h"
#include "core/status.h"

/* pos_t.flags */
#define POS_PERSISTENT 1u
#define POS_TAKEN      2u /* tracked by the log as out for delivery */
#define POS_CONSUMER   4u /* delivered to a consumer (its settlement may reopen a window) */

/*
 * What a classic delivery token holds: the message's place in the queue's
 * order (a requeue puts it back there) and its log record.
 */
typedef struct {
    uint64_t seq;
    uint64_t index;   /* 0: not in the log */
    uint64_t expiry;  /* when it expires (kept across a requeue) */
    uint64_t size;    /* body bytes */
    uint32_t returns; /* requeues so far (x-delivery-limit) */
    uint8_t flags;
    uint8_t prio; /* its priority lane */
} pos_t;

/* Consumers of one priority, in round-robin order. */
typedef struct wr_prio_group_s {
    wr_list_t node; /* in the queue's groups, highest priority first */
    wr_list_t consumers;
    int32_t priority;
} prio_group_t;

typedef struct {
    wr_queue_t h;      /* the generic head: wr_queue_t * points here */
    bool limited;      /* a length limit is set */
    bool expired_told; /* hooks->expired has been called */

    wr_ready_t rd;  /* ready messages */
    wr_qlog_t *log; /* NULL: memory only */

    uint64_t armed;    /* the due last asked of hooks->arm, WR_RE_NO_EXPIRY: none */
    uint64_t last_use; /* for x-expires */

    wr_list_t groups;
    wr_list_t consumers; /* in attach order */
    wr_consumer_t *exclusive_consumer;
    /* Deliveries awaiting settlement, all / in memory / persistent. */
    wr_queue_tally_t unacked, unacked_ram, unacked_persistent;
    uint8_t data[]; /* name, then args */
} classic_t;

static classic_t *cq(wr_queue_t *q)
{
    return wr_list_entry(q, classic_t, h);
}

static const classic_t *ccq(const wr_queue_t *q)
{
    return (const classic_t *)((const char *)q - offsetof(classic_t, h));
}

/* A token carries a pos_t by value. */
static inline wr_qtoken_t token_of(const pos_t *p)
{
    return (wr_qtoken_t){
        {p->seq, p->index, p->expiry, p->size}, p->returns, {p->flags, p->prio}, p->index == 0};
}

static inline pos_t pos_from(const wr_qtoken_t *t)
{
    return (pos_t){t->w[0], t->w[1], t->w[2], t->w[3], t->x, t->b[0], t->b[1]};
}

/* ---------------------------------------------------------------- ready */

static uint64_t budget(const classic_t *q)
{
    return q->log != NULL ? wr_qlog_budget(q->log) : UINT64_MAX;
}

static pos_t pos_of(const wr_ready_held_t *r, uint8_t prio, bool taken)
{
    pos_t pos = {r->seq, wr_ready_index(r->word), r->expiry, r->size, r->returns, 0, prio};

    if (r->word & WR_RE_PERSISTENT)
        pos.flags |= POS_PERSISTENT;
    if (taken)
        pos.flags |= POS_TAKEN;
    return pos;
}

/* Adds (sign 1) or removes (-1) the delivery at pos in q's unacked tallies;
 * the holder keeps its message only when it has no log record. */
static void count_unacked(classic_t *q, const pos_t *pos, int sign)
{
    wr_queue_tally_t *t[3] = {&q->unacked, pos->index == 0 ? &q->unacked_ram : NULL,
                              pos->flags & POS_PERSISTENT ? &q->unacked_persistent : NULL};

    for (size_t i = 0; i < 3; i++) {
        if (t[i]) {
            t[i]->n += (size_t)sign;
            t[i]->bytes += (uint64_t)(int64_t)sign * pos->size;
        }
    }
}

/* The message at pos is done with: its log record goes. */
static void settle(classic_t *q, const pos_t *pos)
{
    if (q->log != NULL && pos->index != 0)
        wr_qlog_settle(q->log, pos->index, pos->flags & POS_PERSISTENT, pos->flags & POS_TAKEN);
}

/*
 * Reads l's oldest requeued message back from the log when only its record
 * is left (its token said the holder need not keep it). WR_OK,
 * WR_ENOMEM (left for later), or another error: the message is lost.
 */
static int read_held(classic_t *q, wr_ready_lane_t *l)
{
    wr_ready_held_t *h = &l->heap[0];
    uint64_t index = wr_ready_index(h->word);
    int rc;

    if (h->msg != NULL)
        return WR_OK;
    rc = q->log != NULL ? wr_qlog_read(q->log, index, index, &h->msg) : WR_ENOENT;
    if (rc == WR_OK)
        wr_ready_mem_add(&q->rd, h->msg);
    return rc;
}

/*
 * Takes the head: the older of the head lane's deque head and heap top.
 * *from_ring says which, *prio the lane. False when nothing is ready, or the
 * head could not be read back for want of memory (a later wake retries).
 */
static inline bool ready_pop(classic_t *q, wr_ready_held_t *out, bool *from_ring, uint8_t *prio)
{
    for (;;) {
        wr_ready_lane_t *l = wr_ready_head_lane(&q->rd);
        wr_ready_entry_t e;

        if (l == NULL)
            return false;
        *prio = (uint8_t)(l - q->rd.lanes);
        if (wr_ready_heap_first(l)) {
            int rc = read_held(q, l);

            if (rc == WR_ENOMEM)
                return false;
            *out = wr_ready_unhold(&q->rd, l);
            if (rc != WR_OK) {
                pos_t pos = pos_of(out, *prio, true);
                settle(q, &pos);
                continue;
            }
            *from_ring = false;
            return true;
        }
        if (l->loaded < l->len)
            wr_ready_page_in(&q->rd, l, q->log, budget(q));
        e = *wr_ready_at(l, 0);
        if (e.msg == NULL && !(e.word & WR_RE_LOST))
            return false;
        *out = (wr_ready_held_t){e.msg, l->head_seq, e.word, e.expiry, 0, e.size};
        wr_ready_shift(&q->rd, l);
        if (e.word & WR_RE_LOST) {
            pos_t pos = pos_of(out, *prio, false);
            settle(q, &pos);
            continue;
        }
        *from_ring = true;
        return true;
    }
}

/*
 * The head has been taken for a delivery: the log tracks it until it is
 * settled, and records its first delivery. Returns its position.
 */
static inline pos_t take(classic_t *q, const wr_ready_held_t *r, uint8_t prio, bool from_ring, bool no_ack)
{
    bool redelivered = (r->word & WR_RE_REDELIVERED) != 0;

    /* A requeued message has been taken before and is still tracked. */
    if (!from_ring)
        return pos_of(r, prio, true);
    if (no_ack || wr_ready_index(r->word) == 0)
        return pos_of(r, prio, false);
    wr_qlog_taken(q->log, wr_ready_index(r->word), r->word & WR_RE_PERSISTENT, !redelivered);
    return pos_of(r, prio, true);
}

/* ---------------------------------------------------------------- limits */

static uint64_t clock_now(const classic_t *q)
{
    const wr_queue_hooks_t *h = q->h.sched->hooks;

    return h != NULL ? h->now_ms(q->h.sched->ud) : 0;
}

/*
 * m (a reference the caller gives up; NULL while paged out) leaves the queue
 * for `why`: its record is settled, and it goes to hooks->dead_letter when
 * the limits say so (read back first if need be), or is dropped.
 */
static void dead_letter(classic_t *q, wr_message_t *m, const pos_t *pos, wr_dl_reason_t why)
{
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    bool dlx = h != NULL && q->h.limits.dead_letter && !q->h.closed;

    if (dlx && m == NULL && q->log != NULL && pos->index != 0 &&
        wr_qlog_read(q->log, pos->index, pos->index, &m) != WR_OK)
        m = NULL;
    settle(q, pos);
    if (dlx && m != NULL) {
        h->dead_letter(q->h.sched->ud, &q->h, m, why);
        return;
    }
    wr_message_unref(m);
}

/* The head of lane l leaves the queue for `why`. */
static void discard_head(classic_t *q, wr_ready_lane_t *l, wr_dl_reason_t why)
{
    uint8_t prio = (uint8_t)(l - q->rd.lanes);
    bool taken = wr_ready_heap_first(l);
    pos_t pos;
    wr_ready_held_t r;

    if (taken) {
        r = wr_ready_unhold(&q->rd, l);
    } else {
        wr_ready_entry_t e = *wr_ready_at(l, 0);

        r = (wr_ready_held_t){e.msg, l->head_seq, e.word, e.expiry, 0, e.size};
        wr_ready_shift(&q->rd, l);
    }
    pos = pos_of(&r, prio, taken);
    if (r.word & WR_RE_LOST)
        settle(q, &pos);
    else
        dead_letter(q, r.msg, &pos, why);
}

/* Expired messages leave from the head only, as in RabbitMQ. */
static void expire_heads(classic_t *q, uint64_t now)
{
    wr_ready_lane_t *l;

    while (q->rd.nexpiring > 0 && (l = wr_ready_head_lane(&q->rd)) != NULL && wr_ready_head_expiry(l) <= now)
        discard_head(q, l, WR_DL_EXPIRED);
}

static bool over_limit(const classic_t *q)
{
    return (q->h.limits.max_length >= 0 && q->rd.count > (uint64_t)q->h.limits.max_length) ||
           (q->h.limits.max_length_bytes >= 0 && q->rd.bytes > (uint64_t)q->h.limits.max_length_bytes);
}

/* Whether m would take the queue past a length limit (reject-publish). */
static bool will_overflow(const classic_t *q, const wr_message_t *m)
{
    return (q->h.limits.max_length >= 0 && q->rd.count + 1 > (uint64_t)q->h.limits.max_length) ||
           (q->h.limits.max_length_bytes >= 0 &&
            q->rd.bytes + m->body_size > (uint64_t)q->h.limits.max_length_bytes);
}

/* drop-head: heads leave (maxlen) until the queue is within its limits.
 * Returns whether any did. */
static bool trim(classic_t *q)
{
    bool dropped = false;

    if (!q->limited || q->h.limits.overflow != WR_OVERFLOW_DROP_HEAD)
        return false;
    while (q->rd.count > 0 && over_limit(q)) {
        discard_head(q, wr_ready_head_lane(&q->rd), WR_DL_MAXLEN);
        dropped = true;
    }
    return dropped;
}

static uint64_t add_ms(uint64_t t, int64_t ms)
{
    return t > WR_RE_NO_EXPIRY - (uint64_t)ms ? WR_RE_NO_EXPIRY : t + (uint64_t)ms;
}

/*
 * Asks for a tick at the next due: the head's expiry, or the end of the
 * queue's x-expires while it has no consumers. Only an earlier due than the
 * one asked for is requested; a tick that finds nothing due asks again.
 */
static void timers(classic_t *q)
{
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    uint64_t due = WR_RE_NO_EXPIRY;
    wr_ready_lane_t *l;

    if (h == NULL || q->h.closed)
        return;
    if (q->rd.nexpiring > 0 && (l = wr_ready_head_lane(&q->rd)) != NULL)
        due = wr_ready_head_expiry(l);
    if (q->h.limits.expires >= 0 && q->h.nconsumers == 0 && !q->expired_told) {
        uint64_t unused = add_ms(q->last_use, q->h.limits.expires);
        if (unused < due)
            due = unused;
    }
    if (due < q->armed) {
        q->armed = due;
        h->arm(q->h.sched->ud, &q->h, due);
    }
}

/* The expiry of m published now: the shorter of x-message-ttl and its
 * expiration property (validated by the publish path). */
static uint64_t msg_expiry(const classic_t *q, wr_message_t *m, uint64_t *now)
{
    int64_t ttl = q->h.limits.message_ttl;
    const wr_props_t *p;

    if (q->h.sched->hooks == NULL)
        return WR_RE_NO_EXPIRY;
    p = wr_message_props(m);
    if (p != NULL && (p->flags & WR_PROP_EXPIRATION)) {
        int64_t v = 0;

        for (size_t i = 0; i < p->expiration.len; i++) {
            uint8_t ch = p->expiration.data[i];
            if (ch >= '0' && ch <= '9')
                v = v * 10 + (ch - '0');
        }
        if (ttl < 0 || v < ttl)
            ttl = v;
    }
    if (ttl < 0)
        return WR_RE_NO_EXPIRY;
    *now = clock_now(q);
    return add_ms(*now, ttl);
}

/* A priority queue's lane for m: its priority property (absent: 0), at most
 * x-max-priority. */
static uint8_t msg_priority(const classic_t *q, wr_message_t *m)
{
    const wr_props_t *p = wr_message_props(m);

    if (p == NULL || !(p->flags & WR_PROP_PRIORITY))
        return 0;
    return p->priority < q->rd.nlanes ? p->priority : (uint8_t)(q->rd.nlanes - 1);
}

static void classic_set_limits(wr_queue_t *qh, const wr_queue_limits_t *l)
{
    classic_t *q = cq(qh);

    q->h.limits = *l;
    q->limited = l->max_length >= 0 || l->max_length_bytes >= 0;
    trim(q);
    if (q->rd.nexpiring > 0)
        expire_heads(q, clock_now(q));
    timers(q);
}

static void classic_tick(wr_queue_t *qh)
{
    classic_t *q = cq(qh);
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    uint64_t now;

    if (h == NULL || q->h.closed)
        return;
    now = clock_now(q);
    q->armed = WR_RE_NO_EXPIRY;
    expire_heads(q, now);
    if (q->h.limits.expires >= 0 && q->h.nconsumers == 0 && !q->expired_told &&
        now >= add_ms(q->last_use, q->h.limits.expires)) {
        q->expired_told = true;
        h->expired(q->h.sched->ud, &q->h);
    }
    timers(q);
}

static void classic_touch(wr_queue_t *qh)
{
    classic_t *q = cq(qh);

    if (q->h.sched->hooks == NULL)
        return;
    q->last_use = clock_now(q);
    timers(q);
}

/* ---------------------------------------------------------------- dispatch */

/* Schedules a dispatch run if the queue has ready messages and consumers. */
static inline void classic_wake(classic_t *q)
{
    if (q->h.closed || q->h.nconsumers == 0 || q->rd.count == 0 || !wr_list_empty(&q->h.run_node))
        return;
    wr_queue_sched_add(&q->h);
}

static void wake_op(wr_queue_t *q)
{
    classic_wake(cq(q));
}

static bool window_open(wr_consumer_t *c)
{
    return (c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch) && c->ops->can_take(c);
}

static wr_consumer_t *pick_consumer(classic_t *q)
{
    wr_list_t *gn, *gtmp, *cn, *ctmp;

    if (q->h.opts.single_active) {
        /* Only the earliest consumer still attached receives. */
        wr_consumer_t *c;

        if (wr_list_empty(&q->consumers))
            return NULL;
        c = wr_list_entry(q->consumers.next, wr_consumer_t, anode);
        return window_open(c) ? c : NULL;
    }
    wr_list_foreach_safe(gn, gtmp, &q->groups)
    {
        prio_group_t *g = wr_list_entry(gn, prio_group_t, node);
        wr_list_foreach_safe(cn, ctmp, &g->consumers)
        {
            wr_consumer_t *c = wr_list_entry(cn, wr_consumer_t, qnode);
            if (window_open(c))
                return c;
        }
    }
    return NULL;
}

/* Delivers the head to the next consumer that can take it; false when no
 * consumer can or nothing is ready. Expired heads must have gone first. */
static inline bool deliver_head(classic_t *q)
{
    wr_consumer_t *c = pick_consumer(q);
    bool from_ring, redelivered;
    uint8_t prio;
    pos_t pos;
    wr_qtoken_t t;
    wr_ready_held_t r;

    if (c == NULL || !ready_pop(q, &r, &from_ring, &prio))
        return false;
    /* Round-robin within the priority. */
    wr_list_remove(&c->qnode);
    wr_list_insert_tail(&c->group->consumers, &c->qnode);
    redelivered = (r.word & WR_RE_REDELIVERED) != 0;
    if (c->no_ack)
        q->h.stats.deliver_no_ack++;
    else
        q->h.stats.deliver++;
    q->h.stats.redeliver += redelivered;
    pos = take(q, &r, prio, from_ring, c->no_ack);
    if (!c->no_ack) {
        q->h.unacked++;
        count_unacked(q, &pos, 1);
        pos.flags |= POS_CONSUMER;
    }
    t = token_of(&pos);
    c->ops->deliver(c, r.msg, &t, redelivered);
    if (c->no_ack)
        settle(q, &pos);
    return true;
}

/* deliver_head after the expired heads have gone. */
static bool deliver_live_head(classic_t *q, uint64_t now)
{
    if (q->rd.nexpiring > 0)
        expire_heads(q, now);
    return deliver_head(q);
}

/* Delivers up to `batch` messages; true when more could go right away. */
static bool queue_dispatch(classic_t *q, size_t batch)
{
    uint64_t now = q->rd.nexpiring > 0 ? clock_now(q) : 0;
    bool more = true;

    for (; batch > 0 && q->rd.count > 0; batch--) {
        /* Every consumer blocked: an ack or drain wakes us. */
        if (!deliver_live_head(q, now)) {
            more = false;
            break;
        }
    }
    if (q->rd.nexpiring > 0)
        timers(q);
    return more && q->rd.count > 0 && q->h.nconsumers > 0;
}

static bool dispatch_op(wr_queue_t *q, size_t batch)
{
    return queue_dispatch(cq(q), batch);
}

/* ---------------------------------------------------------------- queue */

static wr_queue_t *classic_create(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s)
{
    classic_t *q = calloc(1, sizeof(*q) + name.len + o->args.len);

    if (q == NULL)
        return NULL;
    if (!wr_ready_init(&q->rd, (size_t)o->max_priority + 1)) {
        free(q);
        return NULL;
    }
    wr_queue_head_init(&q->h, &wr_classic_queue_type, name, o, s, q->data);
    q->armed = WR_RE_NO_EXPIRY;
    q->last_use = clock_now(q);
    wr_list_init(&q->groups);
    wr_list_init(&q->consumers);
    return &q->h;
}

/* Replay hands over the live messages of a durable queue's log, in order,
 * with what the log knows of them: a priority queue files each by its
 * priority, and each keeps its expiry and counts its size. */
static bool queue_recovered(void *owner, uint64_t index, bool redelivered, const wr_qlog_meta_t *meta)
{
    classic_t *q = owner;
    size_t lane = meta->priority < q->rd.nlanes ? meta->priority : q->rd.nlanes - 1;
    wr_ready_entry_t e = {NULL,
                          index << WR_RE_SHIFT | WR_RE_PERSISTENT | (redelivered ? WR_RE_REDELIVERED : 0),
                          meta->expiry, meta->body_size};

    return wr_ready_push(&q->rd, &q->rd.lanes[lane], e);
}

/* The persistent messages ready, for a checkpoint of the log. */
static void queue_ready_iter(void *owner, wr_qlog_live_fn fn, void *ud)
{
    wr_ready_persistent(&((const classic_t *)owner)->rd, fn, ud);
}

/* The classic queue's storage is its log in the node's store. */
static int classic_open_store(wr_queue_t *qh, wr_queue_store_t *ctx, const char *logname, const char *what,
                              char *err, size_t errlen)
{
    static const wr_qlog_ops_t ops = {queue_recovered, queue_ready_iter};
    classic_t *q = cq(qh);

    q->log = wr_qlog_new(ctx, logname, q->h.opts.durable, &ops, q, what, err, errlen);
    if (q->log == NULL)
        return WR_EIO;
    timers(q); /* recovered messages may expire */
    return WR_OK;
}

static const char *classic_store_name(const wr_queue_t *q)
{
    const wr_qlog_t *log = ccq(q)->log;

    return log != NULL ? wr_qlog_name(log) : NULL;
}

static void classic_close_store(wr_queue_t *qh)
{
    classic_t *q = cq(qh);

    wr_qlog_close(q->log);
    q->log = NULL;
}

static size_t classic_purge(wr_queue_t *qh);

static void classic_destroy(wr_queue_t *qh)
{
    classic_t *q = cq(qh);

    classic_close_store(qh);
    classic_purge(qh);
    wr_list_remove(&q->h.run_node);
    wr_ready_fini(&q->rd);
    free(q);
}

static void classic_info(const wr_queue_t *qh, wr_queue_info_t *out)
{
    const classic_t *q = ccq(qh);

    const wr_ready_t *rd = &q->rd;
    const wr_ready_lane_t *l = wr_ready_head_lane((wr_ready_t *)rd);
    wr_message_t *head = NULL;

    if (l)
        head = wr_ready_heap_first(l) ? l->heap[0].msg : wr_ready_at(l, 0)->msg;
    *out = (wr_queue_info_t){
        .ready = rd->count,
        .ready_bytes = rd->bytes,
        .memory = rd->mem,
        .state = "running",
        .ready_ram = {rd->nmem, rd->mem_body},
        .ready_persistent = {rd->npersistent, rd->persistent_bytes},
        .unacked = q->unacked,
        .unacked_ram = q->unacked_ram,
        .unacked_persistent = q->unacked_persistent,
        .head = head,
    };
}

/*
 * reject-publish: whether the queue refuses m. Consumers that can take
 * messages now get them first, as RabbitMQ's queue process would already
 * have handed them over; then m is refused if it does not fit (with
 * reject-publish-dlx it is dead-lettered as maxlen).
 */
static bool refuse(classic_t *q, wr_message_t *m)
{
    uint64_t now;

    if (!will_overflow(q, m))
        return false;
    now = clock_now(q);
    while (will_overflow(q, m) && deliver_live_head(q, now))
        ;
    if (!will_overflow(q, m))
        return false;
    if (q->h.limits.overflow == WR_OVERFLOW_REJECT_PUBLISH_DLX) {
        pos_t none = {0};
        dead_letter(q, wr_message_ref(m), &none, WR_DL_MAXLEN);
    }
    return true;
}

/* What follows an append under limits: a message expired on arrival goes
 * straight to a consumer that can take it or expires; drop-head trims. */
static void after_append(classic_t *q, uint64_t expiry, uint64_t now)
{
    bool dropped = false;

    if (expiry == WR_RE_NO_EXPIRY && q->rd.nexpiring > 0)
        now = clock_now(q);
    if (expiry <= now && q->rd.count == 1)
        deliver_head(q);
    if (q->limited && q->h.limits.overflow == WR_OVERFLOW_DROP_HEAD && over_limit(q)) {
        while (over_limit(q) && deliver_live_head(q, now))
            ;
        dropped = trim(q);
    }
    /* Only a new head can be expired already. */
    if (q->rd.nexpiring > 0 && (dropped || q->rd.count == 1 || expiry <= now))
        expire_heads(q, now);
    timers(q);
}

static int classic_publish(wr_queue_t *qh, wr_message_t *m, wr_confirm_t *conf)
{
    classic_t *q = cq(qh);
    bool persistent = q->log != NULL && q->h.opts.durable && wr_message_persistent(m);
    uint64_t cost = wr_ready_cost(m), index = 0, now = 0, expiry;
    wr_ready_lane_t *l = q->rd.nlanes > 1 ? &q->rd.lanes[msg_priority(q, m)] : q->rd.lanes;
    bool keep;
    wr_ready_entry_t e;
    int rc;

    if (q->limited && q->h.limits.overflow != WR_OVERFLOW_DROP_HEAD && refuse(q, m))
        return WR_EFULL;
    expiry = msg_expiry(q, m, &now);
    /* Once some of a lane is paged out, newer messages follow it to the
     * log, so the part in memory stays one prefix of the lane. */
    keep = q->log == NULL || (l->loaded == l->len && q->rd.mem + cost <= budget(q));
    if (persistent || !keep) {
        rc = wr_qlog_append(q->log, m, persistent, expiry, &index);
        if (rc != WR_OK) {
            if (persistent)
                return rc;
            keep = true; /* it cannot be paged out: it stays in memory */
        }
    }
    e = (wr_ready_entry_t){keep ? m : NULL, index << WR_RE_SHIFT | (persistent ? WR_RE_PERSISTENT : 0),
                           expiry, m->body_size};
    if (!wr_ready_push(&q->rd, l, e)) {
        wr_ready_held_t r = {NULL, 0, e.word, 0, 0, 0};
        pos_t pos = pos_of(&r, 0, false);
        settle(q, &pos);
        return WR_ENOMEM;
    }
    if (keep) {
        wr_message_ref(m);
        wr_ready_mem_add(&q->rd, m);
        if (l->loaded == l->len - 1)
            l->loaded++;
    }
    /* A confirm that cannot wait for the record is a nack, never an early ack. */
    if (persistent && conf != NULL && wr_qlog_wait(q->log, index, conf) != WR_OK)
        conf->failed = true;
    q->h.stats.publish++;
    if (q->rd.count >= WR_QUEUE_BEHIND && q->h.nconsumers > 0)
        q->h.sched->behind++;
    if (expiry != WR_RE_NO_EXPIRY || q->limited)
        after_append(q, expiry, now);
    classic_wake(q);
    return WR_OK;
}

static bool classic_get(wr_queue_t *qh, bool no_ack, wr_message_t **m, wr_qtoken_t *t, bool *redelivered)
{
    classic_t *q = cq(qh);
    bool from_ring, timed = q->rd.nexpiring > 0 || q->h.limits.expires >= 0;
    uint64_t now = timed ? clock_now(q) : 0;
    uint8_t prio;
    pos_t pos;
    wr_ready_held_t r;

    if (q->h.limits.expires >= 0)
        q->last_use = now;
    if (q->rd.nexpiring > 0)
        expire_heads(q, now);
    if (!ready_pop(q, &r, &from_ring, &prio)) {
        if (timed)
            timers(q);
        return false;
    }
    *redelivered = (r.word & WR_RE_REDELIVERED) != 0;
    if (no_ack)
        q->h.stats.get_no_ack++;
    else
        q->h.stats.get++;
    q->h.stats.redeliver += *redelivered;
    *m = r.msg;
    pos = take(q, &r, prio, from_ring, no_ack);
    if (no_ack)
        settle(q, &pos);
    else {
        q->h.unacked++;
        count_unacked(q, &pos, 1);
    }
    *t = token_of(&pos);
    if (q->rd.nexpiring > 0)
        expire_heads(q, now);
    if (timed)
        timers(q);
    return true;
}

/*
 * Puts a delivered message back at its original place, marked redelivered;
 * takes ownership of the reference. m may be NULL when pos has a log record:
 * the message is then read back from the log when it is next taken. A
 * closed queue just drops it. Past x-delivery-limit returns the message is
 * dead-lettered (delivery_limit) instead.
 */
static void requeue(classic_t *q, wr_message_t *m, const pos_t *pos)
{
    wr_ready_held_t r = {m,
                         pos->seq,
                         pos->index << WR_RE_SHIFT | ((pos->flags & POS_PERSISTENT) ? WR_RE_PERSISTENT : 0) |
                             WR_RE_REDELIVERED,
                         pos->expiry,
                         pos->returns + 1,
                         pos->size};

    if (q->h.closed) {
        wr_message_unref(m);
        return;
    }
    /* Quorum-queue rule: past the limit once returned. */
    if (q->h.limits.delivery_limit >= 0 && r.returns > (uint64_t)q->h.limits.delivery_limit) {
        dead_letter(q, m, pos, WR_DL_DELIVERY_LIMIT);
        return;
    }
    /* Without memory for the heap slot the message is lost, as RabbitMQ
     * would lose it when its queue process dies; never a crash. */
    if (!wr_ready_hold(&q->rd, &q->rd.lanes[pos->prio], r)) {
        settle(q, pos);
        wr_message_unref(m);
        return;
    }
    /* As RabbitMQ's requeue: the limits apply again before dispatch. */
    if (q->limited || q->rd.nexpiring > 0) {
        trim(q);
        if (q->rd.nexpiring > 0)
            expire_heads(q, clock_now(q));
        timers(q);
    }
    classic_wake(q);
}

static void classic_settle(wr_queue_t *qh, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    classic_t *q = cq(qh);
    pos_t pos = pos_from(t);

    q->h.unacked--;
    count_unacked(q, &pos, -1);
    if (how == WR_SETTLE_REQUEUE || how == WR_SETTLE_RELEASE) {
        requeue(q, m, &pos);
    } else if (how == WR_SETTLE_DISCARD) {
        dead_letter(q, m, &pos, WR_DL_REJECTED);
    } else {
        q->h.stats.ack++;
        settle(q, &pos);
        wr_message_unref(m);
    }
    /* The consumer's window may have just reopened. */
    if (pos.flags & POS_CONSUMER)
        classic_wake(q);
}

static size_t classic_purge(wr_queue_t *qh)
{
    classic_t *q = cq(qh);
    size_t n = q->rd.count;

    for (size_t p = 0; p < q->rd.nlanes; p++) {
        wr_ready_lane_t *l = &q->rd.lanes[p];

        while (l->len > 0) {
            wr_ready_entry_t e = *wr_ready_at(l, 0);
            wr_ready_held_t r = {e.msg, l->head_seq, e.word, e.expiry, 0, e.size};
            pos_t pos = pos_of(&r, (uint8_t)p, false);

            wr_ready_shift(&q->rd, l);
            settle(q, &pos);
            wr_message_unref(e.msg);
        }
        while (l->hlen > 0) {
            wr_ready_held_t h = wr_ready_unhold(&q->rd, l);
            pos_t pos = pos_of(&h, (uint8_t)p, true);

            settle(q, &pos);
            wr_message_unref(h.msg);
        }
    }
    return n;
}

static void consumer_detach(wr_consumer_t *c)
{
    classic_t *q = cq(c->queue);
    prio_group_t *g = c->group;

    wr_list_remove(&c->qnode);
    wr_list_remove(&c->anode);
    if (wr_list_empty(&g->consumers)) {
        wr_list_remove(&g->node);
        free(g);
    }
    c->group = NULL;
    c->queue = NULL;
    q->h.nconsumers--;
    if (q->exclusive_consumer == c)
        q->exclusive_consumer = NULL;
}

static size_t classic_close(wr_queue_t *qh)
{
    classic_t *q = cq(qh);
    const wr_queue_hooks_t *h = q->h.sched->hooks;

    q->h.closed = true;
    wr_list_remove(&q->h.run_node);
    if (h != NULL && q->armed != WR_RE_NO_EXPIRY) {
        q->armed = WR_RE_NO_EXPIRY;
        h->arm(q->h.sched->ud, &q->h, WR_RE_NO_EXPIRY);
    }
    while (!wr_list_empty(&q->consumers)) {
        wr_consumer_t *c = wr_list_entry(q->consumers.next, wr_consumer_t, anode);

        consumer_detach(c);
        c->ops->cancelled(c);
        wr_consumer_unref(c);
    }
    /* The records go with the log: nothing is settled one by one. */
    wr_qlog_delete(q->log);
    q->log = NULL;
    return classic_purge(qh);
}

/* ---------------------------------------------------------------- consumers */

static int classic_consume(wr_queue_t *qh, wr_consumer_t *c)
{
    classic_t *q = cq(qh);
    wr_list_t *n;
    prio_group_t *g = NULL;

    if (q->exclusive_consumer != NULL || (c->exclusive && q->h.nconsumers > 0))
        return WR_EEXIST;
    /* Find the group of c's priority, or the place to insert it. */
    for (n = q->groups.next; n != &q->groups; n = n->next) {
        prio_group_t *it = wr_list_entry(n, prio_group_t, node);
        if (it->priority == c->priority) {
            g = it;
            break;
        }
        if (it->priority < c->priority)
            break;
    }
    if (g == NULL) {
        g = malloc(sizeof(*g));
        if (g == NULL)
            return WR_ENOMEM;
        g->priority = c->priority;
        wr_list_init(&g->consumers);
        wr_list_insert_tail(n, &g->node); /* before n: keeps descending order */
    }
    wr_list_insert_tail(&g->consumers, &c->qnode);
    wr_list_insert_tail(&q->consumers, &c->anode);
    c->group = g;
    c->queue = qh;
    c->refs++;
    q->h.nconsumers++;
    q->h.had_consumers = true;
    if (c->exclusive)
        q->exclusive_consumer = c;
    if (q->h.limits.expires >= 0)
        q->last_use = clock_now(q);
    classic_wake(q);
    return WR_OK;
}

static void classic_cancel(wr_queue_t *qh, wr_consumer_t *c)
{
    classic_t *q = cq(qh);

    consumer_detach(c);
    wr_consumer_unref(c);
    if (q->h.limits.expires >= 0) {
        q->last_use = clock_now(q);
        timers(q);
    }
    /* A single active consumer's successor takes over now. */
    if (q->h.opts.single_active)
        classic_wake(q);
}

static const wr_consumer_t *classic_active_consumer(const wr_queue_t *qh)
{
    const classic_t *q = ccq(qh);

    if (!q->h.opts.single_active || wr_list_empty(&q->consumers))
        return NULL;
    return wr_list_entry(q->consumers.next, wr_consumer_t, anode);
}

static void classic_foreach_consumer(const wr_queue_t *qh, void (*fn)(void *ud, const wr_consumer_t *c),
                                     void *ud)
{
    const classic_t *q = ccq(qh);

    for (const wr_list_t *n = q->consumers.next; n != &q->consumers; n = n->next)
        fn(ud, wr_list_entry(n, wr_consumer_t, anode));
}

/* ---------------------------------------------------------------- the type */

/* What a redeclaration of a classic queue must repeat, as rabbit_classic_queue lists it. */
const char *const wr_classic_equiv_args[] = {
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
    "x-delivery-limit",
    NULL,
};

const wr_queue_type_t wr_classic_queue_type = {
    .name = "classic",
    .validate_args = wr_classic_validate_args,
    .equiv_args = wr_classic_equiv_args,
    .create = classic_create,
    .open_store = classic_open_store,
    .store_name = classic_store_name,
    .close_store = classic_close_store,
    .close = classic_close,
    .destroy = classic_destroy,
    .publish = classic_publish,
    .get = classic_get,
    .settle = classic_settle,
    .purge = classic_purge,
    .consume = classic_consume,
    .cancel = classic_cancel,
    .active_consumer = classic_active_consumer,
    .foreach_consumer = classic_foreach_consumer,
    .dispatch = dispatch_op,
    .wake = wake_op,
    .set_limits = classic_set_limits,
    .tick = classic_tick,
    .touch = classic_touch,
    .info = classic_info,
};
