/* SPDX-License-Identifier: MIT */
/*
 * Queue bookkeeping without I/O of its own: consumers, dispatch in bounded
 * batches, limits (TTL, length, delivery limit, x-expires), dead-lettering,
 * the per-channel record of unacked deliveries, and paging. Ready messages
 * wait in the store of queue_ready.c, one lane per priority; a requeued
 * message goes back to its original place in its lane. Beyond the memory
 * budget new messages go to the log only and are read back in batches,
 * ahead of the consumers, as the queue drains.
 */
#include "broker/queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue/queue_ready.h"
#include "core/status.h"

/* wr_qpos_t.flags */
#define POS_PERSISTENT 1u
#define POS_TAKEN      2u /* tracked by the log as out for delivery */

/* Consumers of one priority, in round-robin order. */
typedef struct wr_prio_group_s {
    wr_list_t node; /* in the queue's groups, highest priority first */
    wr_list_t consumers;
    int32_t priority;
} prio_group_t;

struct wr_queue_s {
    uint32_t refs;
    bool closed;
    bool had_consumers;
    bool limited;      /* a length limit is set */
    bool expired_told; /* hooks->expired has been called */
    wr_queue_opts_t opts;
    wr_bytes_t name;
    wr_queue_sched_t *sched;
    wr_list_t run_node; /* on a scheduler list while runnable */
    wr_list_t sources;
    wr_list_t owner_link;

    wr_ready_t rd;  /* ready messages */
    wr_qlog_t *log; /* NULL: memory only */

    wr_queue_limits_t limits;
    uint64_t armed;    /* the due last asked of hooks->arm, WR_RE_NO_EXPIRY: none */
    uint64_t last_use; /* for x-expires */

    wr_list_t groups;
    wr_list_t consumers; /* in attach order */
    size_t nconsumers;
    wr_consumer_t *exclusive_consumer;
    size_t unacked;
    wr_queue_stats_t stats;
    uint8_t data[]; /* name, then args */
};

/* ---------------------------------------------------------------- ready */

static uint64_t budget(const wr_queue_t *q)
{
    return q->log != NULL ? wr_qlog_budget(q->log) : UINT64_MAX;
}

static wr_qpos_t pos_of(const wr_ready_held_t *r, uint8_t prio, bool taken)
{
    wr_qpos_t pos = {r->seq, wr_ready_index(r->word), r->expiry, r->size, r->returns, 0, prio};

    if (r->word & WR_RE_PERSISTENT)
        pos.flags |= POS_PERSISTENT;
    if (taken)
        pos.flags |= POS_TAKEN;
    return pos;
}

/* The message at pos is done with: its log record goes. */
static void settle(wr_queue_t *q, const wr_qpos_t *pos)
{
    if (q->log != NULL && pos->index != 0)
        wr_qlog_settle(q->log, pos->index, pos->flags & POS_PERSISTENT, pos->flags & POS_TAKEN);
}

/*
 * Reads l's oldest requeued message back from the log when only its record
 * is left (its delivery did not keep it, see wr_unacked_add). WR_OK,
 * WR_ENOMEM (left for later), or another error: the message is lost.
 */
static int read_held(wr_queue_t *q, wr_ready_lane_t *l)
{
    wr_ready_held_t *h = &l->heap[0];
    int rc;

    if (h->msg != NULL)
        return WR_OK;
    rc = q->log != NULL ? wr_qlog_read(q->log, wr_ready_index(h->word), &h->msg) : WR_ENOENT;
    if (rc == WR_OK)
        q->rd.mem += wr_ready_cost(h->msg);
    return rc;
}

/*
 * Takes the head: the older of the head lane's deque head and heap top.
 * *from_ring says which, *prio the lane. False when nothing is ready, or the
 * head could not be read back for want of memory (a later wake retries).
 */
static inline bool ready_pop(wr_queue_t *q, wr_ready_held_t *out, bool *from_ring, uint8_t *prio)
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
                wr_qpos_t pos = pos_of(out, *prio, true);
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
            wr_qpos_t pos = pos_of(out, *prio, false);
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
static inline wr_qpos_t take(wr_queue_t *q, const wr_ready_held_t *r, uint8_t prio, bool from_ring,
                             bool no_ack)
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

static uint64_t clock_now(const wr_queue_t *q)
{
    const wr_queue_hooks_t *h = q->sched->hooks;

    return h != NULL ? h->now_ms(q->sched->ud) : 0;
}

/*
 * m (a reference the caller gives up; NULL while paged out) leaves the queue
 * for `why`: its record is settled, and it goes to hooks->dead_letter when
 * the limits say so (read back first if need be), or is dropped.
 */
static void dead_letter(wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos, wr_dl_reason_t why)
{
    const wr_queue_hooks_t *h = q->sched->hooks;
    bool dlx = h != NULL && q->limits.dead_letter && !q->closed;

    if (dlx && m == NULL && q->log != NULL && pos->index != 0 &&
        wr_qlog_read(q->log, pos->index, &m) != WR_OK)
        m = NULL;
    settle(q, pos);
    if (dlx && m != NULL) {
        h->dead_letter(q->sched->ud, q, m, why);
        return;
    }
    wr_message_unref(m);
}

/* The head of lane l leaves the queue for `why`. */
static void discard_head(wr_queue_t *q, wr_ready_lane_t *l, wr_dl_reason_t why)
{
    uint8_t prio = (uint8_t)(l - q->rd.lanes);
    bool taken = wr_ready_heap_first(l);
    wr_qpos_t pos;
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
static void expire_heads(wr_queue_t *q, uint64_t now)
{
    wr_ready_lane_t *l;

    while (q->rd.nexpiring > 0 && (l = wr_ready_head_lane(&q->rd)) != NULL && wr_ready_head_expiry(l) <= now)
        discard_head(q, l, WR_DL_EXPIRED);
}

static bool over_limit(const wr_queue_t *q)
{
    return (q->limits.max_length >= 0 && q->rd.count > (uint64_t)q->limits.max_length) ||
           (q->limits.max_length_bytes >= 0 && q->rd.bytes > (uint64_t)q->limits.max_length_bytes);
}

/* Whether m would take the queue past a length limit (reject-publish). */
static bool will_overflow(const wr_queue_t *q, const wr_message_t *m)
{
    return (q->limits.max_length >= 0 && q->rd.count + 1 > (uint64_t)q->limits.max_length) ||
           (q->limits.max_length_bytes >= 0 &&
            q->rd.bytes + m->body_size > (uint64_t)q->limits.max_length_bytes);
}

/* drop-head: heads leave (maxlen) until the queue is within its limits.
 * Returns whether any did. */
static bool trim(wr_queue_t *q)
{
    bool dropped = false;

    if (!q->limited || q->limits.overflow != WR_OVERFLOW_DROP_HEAD)
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
static void timers(wr_queue_t *q)
{
    const wr_queue_hooks_t *h = q->sched->hooks;
    uint64_t due = WR_RE_NO_EXPIRY;
    wr_ready_lane_t *l;

    if (h == NULL || q->closed)
        return;
    if (q->rd.nexpiring > 0 && (l = wr_ready_head_lane(&q->rd)) != NULL)
        due = wr_ready_head_expiry(l);
    if (q->limits.expires >= 0 && q->nconsumers == 0 && !q->expired_told) {
        uint64_t unused = add_ms(q->last_use, q->limits.expires);
        if (unused < due)
            due = unused;
    }
    if (due < q->armed) {
        q->armed = due;
        h->arm(q->sched->ud, q, due);
    }
}

/* The expiry of m published now: the shorter of x-message-ttl and its
 * expiration property (validated by the publish path). */
static uint64_t msg_expiry(const wr_queue_t *q, wr_message_t *m, uint64_t *now)
{
    int64_t ttl = q->limits.message_ttl;
    const wr_props_t *p;

    if (q->sched->hooks == NULL)
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
static uint8_t msg_priority(const wr_queue_t *q, wr_message_t *m)
{
    const wr_props_t *p = wr_message_props(m);

    if (p == NULL || !(p->flags & WR_PROP_PRIORITY))
        return 0;
    return p->priority < q->rd.nlanes ? p->priority : (uint8_t)(q->rd.nlanes - 1);
}

void wr_queue_limits_none(wr_queue_limits_t *l)
{
    *l = (wr_queue_limits_t){-1, -1, -1, -1, WR_OVERFLOW_DROP_HEAD, -1, false, -1};
}

void wr_queue_set_limits(wr_queue_t *q, const wr_queue_limits_t *l)
{
    q->limits = *l;
    q->limited = l->max_length >= 0 || l->max_length_bytes >= 0;
    trim(q);
    if (q->rd.nexpiring > 0)
        expire_heads(q, clock_now(q));
    timers(q);
}

const wr_queue_limits_t *wr_queue_limits(const wr_queue_t *q)
{
    return &q->limits;
}

void wr_queue_tick(wr_queue_t *q)
{
    const wr_queue_hooks_t *h = q->sched->hooks;
    uint64_t now;

    if (h == NULL || q->closed)
        return;
    now = clock_now(q);
    q->armed = WR_RE_NO_EXPIRY;
    expire_heads(q, now);
    if (q->limits.expires >= 0 && q->nconsumers == 0 && !q->expired_told &&
        now >= add_ms(q->last_use, q->limits.expires)) {
        q->expired_told = true;
        h->expired(q->sched->ud, q);
    }
    timers(q);
}

void wr_queue_touch(wr_queue_t *q)
{
    if (q->sched->hooks == NULL)
        return;
    q->last_use = clock_now(q);
    timers(q);
}

uint64_t wr_queue_ready_bytes(const wr_queue_t *q)
{
    return q->rd.bytes;
}

/* ---------------------------------------------------------------- scheduler */

void wr_queue_sched_init(wr_queue_sched_t *s, void (*wake)(void *ud), void *ud)
{
    wr_list_init(&s->runnable);
    s->running = false;
    s->wake = wake;
    s->ud = ud;
    s->hooks = NULL;
}

static bool window_open(wr_consumer_t *c)
{
    return (c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch) && c->ops->can_take(c);
}

static wr_consumer_t *pick_consumer(wr_queue_t *q)
{
    wr_list_t *gn, *gtmp, *cn, *ctmp;

    if (q->opts.single_active) {
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
static inline bool deliver_head(wr_queue_t *q)
{
    wr_consumer_t *c = pick_consumer(q);
    bool from_ring, redelivered;
    uint8_t prio;
    wr_qpos_t pos;
    wr_ready_held_t r;

    if (c == NULL || !ready_pop(q, &r, &from_ring, &prio))
        return false;
    /* Round-robin within the priority. */
    wr_list_remove(&c->qnode);
    wr_list_insert_tail(&c->group->consumers, &c->qnode);
    redelivered = (r.word & WR_RE_REDELIVERED) != 0;
    if (c->no_ack)
        q->stats.deliver_no_ack++;
    else
        q->stats.deliver++;
    q->stats.redeliver += redelivered;
    pos = take(q, &r, prio, from_ring, c->no_ack);
    c->ops->deliver(c, r.msg, &pos, redelivered);
    if (c->no_ack)
        settle(q, &pos);
    return true;
}

/* deliver_head after the expired heads have gone. */
static bool deliver_live_head(wr_queue_t *q, uint64_t now)
{
    if (q->rd.nexpiring > 0)
        expire_heads(q, now);
    return deliver_head(q);
}

/* Delivers up to `batch` messages; true when more could go right away. */
static bool queue_dispatch(wr_queue_t *q, size_t batch)
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
    return more && q->rd.count > 0 && q->nconsumers > 0;
}

bool wr_queue_sched_run(wr_queue_sched_t *s, size_t batch)
{
    wr_list_t now;

    wr_list_init(&now);
    if (!wr_list_empty(&s->runnable)) {
        /* Take the current list whole: queues woken while this runs wait for
         * the next iteration, so one busy queue cannot starve the loop. */
        now.next = s->runnable.next;
        now.prev = s->runnable.prev;
        now.next->prev = &now;
        now.prev->next = &now;
        wr_list_init(&s->runnable);
    }
    s->running = true;
    while (!wr_list_empty(&now)) {
        wr_queue_t *q = wr_list_entry(now.next, wr_queue_t, run_node);

        wr_list_remove(&q->run_node);
        wr_queue_ref(q);
        if (queue_dispatch(q, batch) && !q->closed && wr_list_empty(&q->run_node))
            wr_list_insert_tail(&s->runnable, &q->run_node);
        wr_queue_unref(q);
    }
    s->running = false;
    return !wr_list_empty(&s->runnable);
}

void wr_queue_wake(wr_queue_t *q)
{
    wr_queue_sched_t *s = q->sched;
    bool was_idle;

    if (q->closed || q->nconsumers == 0 || q->rd.count == 0 || !wr_list_empty(&q->run_node))
        return;
    was_idle = wr_list_empty(&s->runnable);
    wr_list_insert_tail(&s->runnable, &q->run_node);
    if (was_idle && !s->running && s->wake != NULL)
        s->wake(s->ud);
}

/* ---------------------------------------------------------------- queue */

wr_queue_t *wr_queue_new(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s)
{
    wr_queue_t *q = calloc(1, sizeof(*q) + name.len + o->args.len);

    if (q == NULL)
        return NULL;
    if (!wr_ready_init(&q->rd, (size_t)o->max_priority + 1)) {
        free(q);
        return NULL;
    }
    q->refs = 1;
    q->opts = *o;
    q->sched = s;
    if (name.len > 0)
        memcpy(q->data, name.data, name.len);
    q->name = (wr_bytes_t){q->data, name.len};
    if (o->args.len > 0)
        memcpy(q->data + name.len, o->args.data, o->args.len);
    q->opts.args = (wr_bytes_t){q->data + name.len, o->args.len};
    wr_queue_limits_none(&q->limits);
    q->armed = WR_RE_NO_EXPIRY;
    q->last_use = clock_now(q);
    wr_list_init(&q->run_node);
    wr_list_init(&q->sources);
    wr_list_init(&q->owner_link);
    wr_list_init(&q->groups);
    wr_list_init(&q->consumers);
    return q;
}

/* Replay hands over the live messages of a durable queue's log, in order,
 * with what the log knows of them: a priority queue files each by its
 * priority, and each keeps its expiry and counts its size. */
static bool queue_recovered(void *owner, uint64_t index, bool redelivered, const wr_qlog_meta_t *meta)
{
    wr_queue_t *q = owner;
    size_t lane = meta->priority < q->rd.nlanes ? meta->priority : q->rd.nlanes - 1;
    wr_ready_entry_t e = {NULL,
                          index << WR_RE_SHIFT | WR_RE_PERSISTENT | (redelivered ? WR_RE_REDELIVERED : 0),
                          meta->expiry, meta->body_size};

    return wr_ready_push(&q->rd, &q->rd.lanes[lane], e);
}

/* The persistent messages ready, for a checkpoint of the log. */
static void queue_ready_iter(void *owner, wr_qlog_live_fn fn, void *ud)
{
    wr_ready_persistent(&((const wr_queue_t *)owner)->rd, fn, ud);
}

int wr_queue_use_log(wr_queue_t *q, wr_qlog_ctx_t *ctx, const char *logname, const char *what, char *err,
                     size_t errlen)
{
    static const wr_qlog_ops_t ops = {queue_recovered, queue_ready_iter};

    q->log = wr_qlog_new(ctx, logname, q->opts.durable, &ops, q, what, err, errlen);
    if (q->log == NULL)
        return WR_EIO;
    timers(q); /* recovered messages may expire */
    return WR_OK;
}

const char *wr_queue_log_name(const wr_queue_t *q)
{
    return q->log != NULL ? wr_qlog_name(q->log) : NULL;
}

void wr_queue_detach_log(wr_queue_t *q)
{
    wr_qlog_close(q->log);
    q->log = NULL;
}

wr_queue_t *wr_queue_ref(wr_queue_t *q)
{
    q->refs++;
    return q;
}

void wr_queue_unref(wr_queue_t *q)
{
    if (q == NULL || --q->refs > 0)
        return;
    wr_queue_detach_log(q);
    wr_queue_purge(q);
    wr_list_remove(&q->run_node);
    wr_ready_fini(&q->rd);
    free(q);
}

wr_bytes_t wr_queue_name(const wr_queue_t *q)
{
    return q->name;
}

const wr_queue_opts_t *wr_queue_opts(const wr_queue_t *q)
{
    return &q->opts;
}

bool wr_queue_closed(const wr_queue_t *q)
{
    return q->closed;
}

size_t wr_queue_ready(const wr_queue_t *q)
{
    return q->rd.count;
}

uint64_t wr_queue_memory(const wr_queue_t *q)
{
    return q->rd.mem;
}

size_t wr_queue_consumer_count(const wr_queue_t *q)
{
    return q->nconsumers;
}

size_t wr_queue_unacked(const wr_queue_t *q)
{
    return q->unacked;
}

const wr_queue_stats_t *wr_queue_stats(const wr_queue_t *q)
{
    return &q->stats;
}

wr_list_t *wr_queue_sources(wr_queue_t *q)
{
    return &q->sources;
}

wr_list_t *wr_queue_owner_link(wr_queue_t *q)
{
    return &q->owner_link;
}

wr_queue_t *wr_queue_from_owner_link(wr_list_t *link)
{
    return wr_list_entry(link, wr_queue_t, owner_link);
}

/*
 * reject-publish: whether the queue refuses m. Consumers that can take
 * messages now get them first, as RabbitMQ's queue process would already
 * have handed them over; then m is refused if it does not fit (with
 * reject-publish-dlx it is dead-lettered as maxlen).
 */
static bool refuse(wr_queue_t *q, wr_message_t *m)
{
    uint64_t now;

    if (!will_overflow(q, m))
        return false;
    now = clock_now(q);
    while (will_overflow(q, m) && deliver_live_head(q, now))
        ;
    if (!will_overflow(q, m))
        return false;
    if (q->limits.overflow == WR_OVERFLOW_REJECT_PUBLISH_DLX) {
        wr_qpos_t none = {0};
        dead_letter(q, wr_message_ref(m), &none, WR_DL_MAXLEN);
    }
    return true;
}

/* What follows an append under limits: a message expired on arrival goes
 * straight to a consumer that can take it or expires; drop-head trims. */
static void after_append(wr_queue_t *q, uint64_t expiry, uint64_t now)
{
    bool dropped = false;

    if (expiry == WR_RE_NO_EXPIRY && q->rd.nexpiring > 0)
        now = clock_now(q);
    if (expiry <= now && q->rd.count == 1)
        deliver_head(q);
    if (q->limited && q->limits.overflow == WR_OVERFLOW_DROP_HEAD && over_limit(q)) {
        while (over_limit(q) && deliver_live_head(q, now))
            ;
        dropped = trim(q);
    }
    /* Only a new head can be expired already. */
    if (q->rd.nexpiring > 0 && (dropped || q->rd.count == 1 || expiry <= now))
        expire_heads(q, now);
    timers(q);
}

int wr_queue_publish(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf)
{
    bool persistent = q->log != NULL && q->opts.durable && wr_message_persistent(m);
    uint64_t cost = wr_ready_cost(m), index = 0, now = 0, expiry;
    wr_ready_lane_t *l = q->rd.nlanes > 1 ? &q->rd.lanes[msg_priority(q, m)] : q->rd.lanes;
    bool keep;
    wr_ready_entry_t e;
    int rc;

    if (q->limited && q->limits.overflow != WR_OVERFLOW_DROP_HEAD && refuse(q, m))
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
        wr_qpos_t pos = pos_of(&r, 0, false);
        settle(q, &pos);
        return WR_ENOMEM;
    }
    if (keep) {
        wr_message_ref(m);
        q->rd.mem += cost;
        if (l->loaded == l->len - 1)
            l->loaded++;
    }
    /* A confirm that cannot wait for the record is a nack, never an early ack. */
    if (persistent && conf != NULL && wr_qlog_wait(q->log, index, conf) != WR_OK)
        conf->failed = true;
    q->stats.publish++;
    if (expiry != WR_RE_NO_EXPIRY || q->limited)
        after_append(q, expiry, now);
    wr_queue_wake(q);
    return WR_OK;
}

bool wr_queue_get(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qpos_t *pos, bool *redelivered)
{
    bool from_ring, timed = q->rd.nexpiring > 0 || q->limits.expires >= 0;
    uint64_t now = timed ? clock_now(q) : 0;
    uint8_t prio;
    wr_ready_held_t r;

    if (q->limits.expires >= 0)
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
        q->stats.get_no_ack++;
    else
        q->stats.get++;
    q->stats.redeliver += *redelivered;
    *m = r.msg;
    *pos = take(q, &r, prio, from_ring, no_ack);
    if (no_ack)
        settle(q, pos);
    if (q->rd.nexpiring > 0)
        expire_heads(q, now);
    if (timed)
        timers(q);
    return true;
}

void wr_queue_requeue(wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos)
{
    wr_ready_held_t r = {m,
                         pos->seq,
                         pos->index << WR_RE_SHIFT | ((pos->flags & POS_PERSISTENT) ? WR_RE_PERSISTENT : 0) |
                             WR_RE_REDELIVERED,
                         pos->expiry,
                         pos->returns + 1,
                         pos->size};

    if (q->closed) {
        wr_message_unref(m);
        return;
    }
    /* Quorum-queue rule: past the limit once returned. */
    if (q->limits.delivery_limit >= 0 && r.returns > (uint64_t)q->limits.delivery_limit) {
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
    wr_queue_wake(q);
}

size_t wr_queue_purge(wr_queue_t *q)
{
    size_t n = q->rd.count;

    for (size_t p = 0; p < q->rd.nlanes; p++) {
        wr_ready_lane_t *l = &q->rd.lanes[p];

        while (l->len > 0) {
            wr_ready_entry_t e = *wr_ready_at(l, 0);
            wr_ready_held_t r = {e.msg, l->head_seq, e.word, e.expiry, 0, e.size};
            wr_qpos_t pos = pos_of(&r, (uint8_t)p, false);

            wr_ready_shift(&q->rd, l);
            settle(q, &pos);
            wr_message_unref(e.msg);
        }
        while (l->hlen > 0) {
            wr_ready_held_t h = wr_ready_unhold(&q->rd, l);
            wr_qpos_t pos = pos_of(&h, (uint8_t)p, true);

            settle(q, &pos);
            wr_message_unref(h.msg);
        }
    }
    return n;
}

static void consumer_detach(wr_consumer_t *c)
{
    wr_queue_t *q = c->queue;
    prio_group_t *g = c->group;

    wr_list_remove(&c->qnode);
    wr_list_remove(&c->anode);
    if (wr_list_empty(&g->consumers)) {
        wr_list_remove(&g->node);
        free(g);
    }
    c->group = NULL;
    c->queue = NULL;
    q->nconsumers--;
    if (q->exclusive_consumer == c)
        q->exclusive_consumer = NULL;
}

size_t wr_queue_close(wr_queue_t *q)
{
    const wr_queue_hooks_t *h = q->sched->hooks;

    q->closed = true;
    wr_list_remove(&q->run_node);
    if (h != NULL && q->armed != WR_RE_NO_EXPIRY) {
        q->armed = WR_RE_NO_EXPIRY;
        h->arm(q->sched->ud, q, WR_RE_NO_EXPIRY);
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
    return wr_queue_purge(q);
}

/* ---------------------------------------------------------------- consumers */

wr_consumer_t *wr_consumer_new(wr_bytes_t tag, wr_bytes_t args, const wr_consumer_ops_t *ops, void *owner)
{
    wr_consumer_t *c = calloc(1, sizeof(*c) + tag.len + args.len);
    uint8_t *p;

    if (c == NULL)
        return NULL;
    p = (uint8_t *)(c + 1);
    if (tag.len > 0)
        memcpy(p, tag.data, tag.len);
    if (args.len > 0)
        memcpy(p + tag.len, args.data, args.len);
    c->tag = (wr_bytes_t){p, tag.len};
    c->args = (wr_bytes_t){p + tag.len, args.len};
    c->ops = ops;
    c->owner = owner;
    c->refs = 1;
    wr_list_init(&c->qnode);
    wr_list_init(&c->anode);
    return c;
}

void wr_consumer_unref(wr_consumer_t *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    free(c);
}

int wr_queue_consume(wr_queue_t *q, wr_consumer_t *c)
{
    wr_list_t *n;
    prio_group_t *g = NULL;

    if (q->exclusive_consumer != NULL || (c->exclusive && q->nconsumers > 0))
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
    c->queue = q;
    c->refs++;
    q->nconsumers++;
    q->had_consumers = true;
    if (c->exclusive)
        q->exclusive_consumer = c;
    if (q->limits.expires >= 0)
        q->last_use = clock_now(q);
    wr_queue_wake(q);
    return WR_OK;
}

void wr_queue_cancel(wr_consumer_t *c)
{
    wr_queue_t *q = c->queue;

    if (q == NULL)
        return;
    consumer_detach(c);
    wr_consumer_unref(c);
    if (q->limits.expires >= 0) {
        q->last_use = clock_now(q);
        timers(q);
    }
    /* A single active consumer's successor takes over now. */
    if (q->opts.single_active)
        wr_queue_wake(q);
}

bool wr_queue_auto_delete_due(const wr_queue_t *q)
{
    return q->opts.auto_delete && q->had_consumers && q->nconsumers == 0 && !q->closed;
}

const wr_consumer_t *wr_queue_active_consumer(const wr_queue_t *q)
{
    if (!q->opts.single_active || wr_list_empty(&q->consumers))
        return NULL;
    return wr_list_entry(q->consumers.next, wr_consumer_t, anode);
}

void wr_queue_foreach_consumer(const wr_queue_t *q, void (*fn)(void *ud, const wr_consumer_t *c), void *ud)
{
    for (const wr_list_t *n = q->consumers.next; n != &q->consumers; n = n->next)
        fn(ud, wr_list_entry(n, wr_consumer_t, anode));
}

/* ---------------------------------------------------------------- unacked */

typedef struct {
    wr_list_t node; /* in tag order */
    uint64_t tag;
    uint64_t at; /* when it was made, on the queue hooks' clock */
    wr_qpos_t pos;
    wr_queue_t *queue;
    wr_message_t *msg;
    wr_consumer_t *consumer;
} delivery_t;

/* Deliveries in tag order plus an open-addressing index (linear probing,
 * backward-shift deletion) from tag to delivery. */
struct wr_unacked_s {
    wr_list_t list;
    delivery_t **slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
    size_t from_consumers;
};

static size_t tag_slot(uint64_t tag, size_t cap)
{
    return (size_t)((tag * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static bool index_resize(wr_unacked_t *u, size_t ncap)
{
    delivery_t **n = calloc(ncap, sizeof(*n));

    if (n == NULL)
        return false;
    for (size_t i = 0; i < u->cap; i++) {
        delivery_t *d = u->slots[i];
        if (d != NULL) {
            size_t j = tag_slot(d->tag, ncap);
            while (n[j] != NULL)
                j = (j + 1) & (ncap - 1);
            n[j] = d;
        }
    }
    free(u->slots);
    u->slots = n;
    u->cap = ncap;
    return true;
}

static size_t index_find(const wr_unacked_t *u, uint64_t tag)
{
    size_t i;

    if (u->cap == 0)
        return SIZE_MAX;
    for (i = tag_slot(tag, u->cap); u->slots[i] != NULL; i = (i + 1) & (u->cap - 1)) {
        if (u->slots[i]->tag == tag)
            return i;
    }
    return SIZE_MAX;
}

static void index_remove(wr_unacked_t *u, size_t i)
{
    size_t j = i;

    u->slots[i] = NULL;
    for (;;) {
        size_t home;

        j = (j + 1) & (u->cap - 1);
        if (u->slots[j] == NULL)
            break;
        home = tag_slot(u->slots[j]->tag, u->cap);
        /* Move j back to the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            u->slots[i] = u->slots[j];
            u->slots[j] = NULL;
            i = j;
        }
    }
}

wr_unacked_t *wr_unacked_new(void)
{
    wr_unacked_t *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    wr_list_init(&u->list);
    return u;
}

void wr_unacked_free(wr_unacked_t *u)
{
    if (u == NULL)
        return;
    wr_unacked_requeue_all(u);
    free(u->slots);
    free(u);
}

int wr_unacked_add(wr_unacked_t *u, uint64_t tag, wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos,
                   wr_consumer_t *c)
{
    delivery_t *d;
    size_t i;

    if ((u->count + 1) * 2 > u->cap && !index_resize(u, u->cap ? u->cap * 2 : 16))
        return WR_ENOMEM;
    d = malloc(sizeof(*d));
    if (d == NULL)
        return WR_ENOMEM;
    d->tag = tag;
    d->at = clock_now(q);
    d->pos = *pos;
    d->queue = wr_queue_ref(q);
    /* A message with a log record can be read back if it is ever requeued or
     * dead-lettered: the delivery keeps only its position, so deliveries
     * awaiting ack cost no body memory (docs/FLOW.md). */
    d->msg = pos->index != 0 ? NULL : wr_message_ref(m);
    d->consumer = c;
    if (c != NULL) {
        c->refs++;
        c->unacked++;
        u->from_consumers++;
    }
    q->unacked++;
    for (i = tag_slot(tag, u->cap); u->slots[i] != NULL; i = (i + 1) & (u->cap - 1))
        ;
    u->slots[i] = d;
    wr_list_insert_tail(&u->list, &d->node);
    u->count++;
    return WR_OK;
}

static void settle_one(wr_unacked_t *u, delivery_t *d, size_t slot, wr_settle_t how)
{
    wr_consumer_t *c = d->consumer;

    index_remove(u, slot);
    wr_list_remove(&d->node);
    u->count--;
    if (c != NULL) {
        u->from_consumers--;
        c->unacked--;
        /* The consumer's window may have just reopened. */
        if (c->queue != NULL)
            wr_queue_wake(c->queue);
        wr_consumer_unref(c);
    }
    d->queue->unacked--;
    if (how == WR_SETTLE_ACK)
        d->queue->stats.ack++;
    if (how == WR_SETTLE_REQUEUE) {
        wr_queue_requeue(d->queue, d->msg, &d->pos);
    } else if (how == WR_SETTLE_DISCARD) {
        dead_letter(d->queue, d->msg, &d->pos, WR_DL_REJECTED);
    } else {
        settle(d->queue, &d->pos);
        wr_message_unref(d->msg);
    }
    wr_queue_unref(d->queue);
    free(d);
}

static void settle_head(wr_unacked_t *u, wr_settle_t how)
{
    delivery_t *d = wr_list_entry(u->list.next, delivery_t, node);

    settle_one(u, d, index_find(u, d->tag), how);
}

/* Shrinks the index after a burst of unacked deliveries has been settled. */
static void index_maybe_shrink(wr_unacked_t *u)
{
    if (u->cap > 64 && u->count * 8 < u->cap)
        index_resize(u, u->cap / 2);
}

int wr_unacked_settle(wr_unacked_t *u, uint64_t tag, bool multiple, wr_settle_t how)
{
    size_t slot;

    if (multiple && tag == 0) {
        while (u->count > 0)
            settle_head(u, how);
        index_maybe_shrink(u);
        return WR_OK;
    }
    slot = index_find(u, tag);
    if (slot == SIZE_MAX)
        return WR_ENOENT;
    if (multiple) {
        /* Tags are in order, so everything up to tag sits before it. */
        while (wr_list_entry(u->list.next, delivery_t, node)->tag != tag)
            settle_head(u, how);
        settle_head(u, how);
    } else {
        settle_one(u, u->slots[slot], slot, how);
    }
    index_maybe_shrink(u);
    return WR_OK;
}

size_t wr_unacked_requeue_all(wr_unacked_t *u)
{
    size_t n = u->count;

    while (u->count > 0)
        settle_head(u, WR_SETTLE_REQUEUE);
    index_maybe_shrink(u);
    return n;
}

size_t wr_unacked_count(const wr_unacked_t *u)
{
    return u->count;
}

size_t wr_unacked_consumer_count(const wr_unacked_t *u)
{
    return u->from_consumers;
}

/* The oldest pending delivery (tags increase with time), or NULL. */
static const delivery_t *oldest(const wr_unacked_t *u)
{
    return u->count > 0 ? wr_list_entry(u->list.next, delivery_t, node) : NULL;
}

uint64_t wr_unacked_overdue_in(const wr_unacked_t *u, int64_t *timeout_ms)
{
    const delivery_t *d = oldest(u);
    uint64_t due, now;

    if (d == NULL || d->queue->limits.consumer_timeout < 0)
        return UINT64_MAX;
    *timeout_ms = d->queue->limits.consumer_timeout;
    due = add_ms(d->at, *timeout_ms);
    now = clock_now(d->queue);
    return due > now ? due - now : 0;
}

int64_t wr_unacked_oldest_age(const wr_unacked_t *u)
{
    const delivery_t *d = oldest(u);

    return d != NULL ? (int64_t)(clock_now(d->queue) - d->at) : -1;
}
