/* SPDX-License-Identifier: MIT */
/*
 * Queue bookkeeping without I/O: ready messages, consumers, dispatch in
 * bounded batches, and the per-channel record of unacked deliveries. Fresh
 * messages wait in a FIFO ring; requeued ones wait in a min-heap keyed by
 * their enqueue sequence number, and the head of the queue is whichever of the
 * two is older, so requeueing restores the original order in O(log n).
 */
#include "broker/queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

typedef struct {
    wr_message_t *msg;
    uint64_t seq;
    bool redelivered;
} ready_t;

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
    wr_queue_opts_t opts;
    wr_bytes_t name;
    wr_queue_sched_t *sched;
    wr_list_t run_node; /* on a scheduler list while runnable */
    wr_list_t sources;
    wr_list_t owner_link;

    ready_t *ring; /* fresh messages: ring[head .. head+len) modulo cap */
    size_t head;
    size_t len;
    size_t cap;    /* power of two, or 0 */
    ready_t *heap; /* requeued messages, min-heap on seq */
    size_t hlen;
    size_t hcap;
    uint64_t next_seq;

    wr_list_t groups;
    size_t nconsumers;
    wr_consumer_t *exclusive_consumer;
    uint8_t data[]; /* name, then args */
};

/* ---------------------------------------------------------------- ready */

static bool ring_push(wr_queue_t *q, ready_t r)
{
    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        ready_t *n = malloc(ncap * sizeof(*n));

        if (n == NULL)
            return false;
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->ring[(q->head + i) & (q->cap - 1)];
        free(q->ring);
        q->ring = n;
        q->cap = ncap;
        q->head = 0;
    }
    q->ring[(q->head + q->len) & (q->cap - 1)] = r;
    q->len++;
    return true;
}

/* Gives memory back after a backlog drains; a failed shrink is harmless. */
static void ring_maybe_shrink(wr_queue_t *q)
{
    size_t ncap = q->cap / 2;
    ready_t *n;

    if (q->cap <= 64 || q->len >= q->cap / 4)
        return;
    n = malloc(ncap * sizeof(*n));
    if (n == NULL)
        return;
    for (size_t i = 0; i < q->len; i++)
        n[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
}

static ready_t ring_pop(wr_queue_t *q)
{
    ready_t r = q->ring[q->head];

    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    ring_maybe_shrink(q);
    return r;
}

static bool heap_push(wr_queue_t *q, ready_t r)
{
    size_t i;

    if (q->hlen == q->hcap) {
        size_t ncap = q->hcap ? q->hcap * 2 : 16;
        ready_t *n = realloc(q->heap, ncap * sizeof(*n));

        if (n == NULL)
            return false;
        q->heap = n;
        q->hcap = ncap;
    }
    i = q->hlen++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (q->heap[parent].seq <= r.seq)
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = r;
    return true;
}

static ready_t heap_pop(wr_queue_t *q)
{
    ready_t top = q->heap[0];
    ready_t last = q->heap[--q->hlen];
    size_t i = 0;

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->hlen)
            break;
        if (child + 1 < q->hlen && q->heap[child + 1].seq < q->heap[child].seq)
            child++;
        if (last.seq <= q->heap[child].seq)
            break;
        q->heap[i] = q->heap[child];
        i = child;
    }
    if (q->hlen > 0)
        q->heap[i] = last;
    return top;
}

/* The older of the two heads; the caller checks that one exists. */
static ready_t ready_pop(wr_queue_t *q)
{
    if (q->hlen > 0 && (q->len == 0 || q->heap[0].seq < q->ring[q->head].seq))
        return heap_pop(q);
    return ring_pop(q);
}

/* ---------------------------------------------------------------- scheduler */

void wr_queue_sched_init(wr_queue_sched_t *s, void (*wake)(void *ud), void *ud)
{
    wr_list_init(&s->runnable);
    s->running = false;
    s->wake = wake;
    s->ud = ud;
}

static wr_consumer_t *pick_consumer(wr_queue_t *q)
{
    wr_list_t *gn, *gtmp, *cn, *ctmp;

    wr_list_foreach_safe(gn, gtmp, &q->groups)
    {
        prio_group_t *g = wr_list_entry(gn, prio_group_t, node);
        wr_list_foreach_safe(cn, ctmp, &g->consumers)
        {
            wr_consumer_t *c = wr_list_entry(cn, wr_consumer_t, qnode);
            bool window_open = c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch;
            if (window_open && c->ops->can_take(c))
                return c;
        }
    }
    return NULL;
}

/* Delivers up to `batch` messages; true when more could go right away. */
static bool queue_dispatch(wr_queue_t *q, size_t batch)
{
    for (; batch > 0 && q->len + q->hlen > 0; batch--) {
        wr_consumer_t *c = pick_consumer(q);
        ready_t r;

        if (c == NULL)
            return false; /* every consumer is blocked: an ack or drain wakes us */
        r = ready_pop(q);
        /* Round-robin within the priority. */
        wr_list_remove(&c->qnode);
        wr_list_insert_tail(&c->group->consumers, &c->qnode);
        c->ops->deliver(c, r.msg, r.seq, r.redelivered);
    }
    return q->len + q->hlen > 0 && q->nconsumers > 0;
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

    if (q->closed || q->nconsumers == 0 || q->len + q->hlen == 0 || !wr_list_empty(&q->run_node))
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
    q->refs = 1;
    q->opts = *o;
    q->sched = s;
    if (name.len > 0)
        memcpy(q->data, name.data, name.len);
    q->name = (wr_bytes_t){q->data, name.len};
    if (o->args.len > 0)
        memcpy(q->data + name.len, o->args.data, o->args.len);
    q->opts.args = (wr_bytes_t){q->data + name.len, o->args.len};
    q->next_seq = 1;
    wr_list_init(&q->run_node);
    wr_list_init(&q->sources);
    wr_list_init(&q->owner_link);
    wr_list_init(&q->groups);
    return q;
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
    wr_queue_purge(q);
    wr_list_remove(&q->run_node);
    free(q->ring);
    free(q->heap);
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
    return q->len + q->hlen;
}

size_t wr_queue_consumer_count(const wr_queue_t *q)
{
    return q->nconsumers;
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

int wr_queue_publish(wr_queue_t *q, wr_message_t *m)
{
    ready_t r = {m, q->next_seq, false};

    if (!ring_push(q, r))
        return WR_ENOMEM;
    q->next_seq++;
    wr_message_ref(m);
    wr_queue_wake(q);
    return WR_OK;
}

bool wr_queue_get(wr_queue_t *q, wr_message_t **m, uint64_t *seq, bool *redelivered)
{
    ready_t r;

    if (q->len + q->hlen == 0)
        return false;
    r = ready_pop(q);
    *m = r.msg;
    *seq = r.seq;
    *redelivered = r.redelivered;
    return true;
}

void wr_queue_requeue(wr_queue_t *q, wr_message_t *m, uint64_t seq)
{
    ready_t r = {m, seq, true};

    /* Without memory for the heap slot the message is lost, as RabbitMQ
     * would lose it when its queue process dies; never a crash. */
    if (q->closed || !heap_push(q, r)) {
        wr_message_unref(m);
        return;
    }
    wr_queue_wake(q);
}

size_t wr_queue_purge(wr_queue_t *q)
{
    size_t n = q->len + q->hlen;

    while (q->len > 0)
        wr_message_unref(ring_pop(q).msg);
    while (q->hlen > 0)
        wr_message_unref(q->heap[--q->hlen].msg);
    return n;
}

static void consumer_detach(wr_consumer_t *c)
{
    wr_queue_t *q = c->queue;
    prio_group_t *g = c->group;

    wr_list_remove(&c->qnode);
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
    q->closed = true;
    wr_list_remove(&q->run_node);
    while (!wr_list_empty(&q->groups)) {
        prio_group_t *g = wr_list_entry(q->groups.next, prio_group_t, node);
        wr_consumer_t *c = wr_list_entry(g->consumers.next, wr_consumer_t, qnode);

        consumer_detach(c);
        c->ops->cancelled(c);
        wr_consumer_unref(c);
    }
    return wr_queue_purge(q);
}

/* ---------------------------------------------------------------- consumers */

wr_consumer_t *wr_consumer_new(wr_bytes_t tag, const wr_consumer_ops_t *ops, void *owner)
{
    wr_consumer_t *c = calloc(1, sizeof(*c) + tag.len);

    if (c == NULL)
        return NULL;
    if (tag.len > 0)
        memcpy(c + 1, tag.data, tag.len);
    c->tag = (wr_bytes_t){(const uint8_t *)(c + 1), tag.len};
    c->ops = ops;
    c->owner = owner;
    c->refs = 1;
    wr_list_init(&c->qnode);
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
    c->group = g;
    c->queue = q;
    c->refs++;
    q->nconsumers++;
    q->had_consumers = true;
    if (c->exclusive)
        q->exclusive_consumer = c;
    wr_queue_wake(q);
    return WR_OK;
}

void wr_queue_cancel(wr_consumer_t *c)
{
    if (c->queue == NULL)
        return;
    consumer_detach(c);
    wr_consumer_unref(c);
}

bool wr_queue_auto_delete_due(const wr_queue_t *q)
{
    return q->opts.auto_delete && q->had_consumers && q->nconsumers == 0 && !q->closed;
}

/* ---------------------------------------------------------------- unacked */

typedef struct {
    wr_list_t node; /* in tag order */
    uint64_t tag;
    uint64_t seq;
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

int wr_unacked_add(wr_unacked_t *u, uint64_t tag, wr_queue_t *q, wr_message_t *m, uint64_t seq,
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
    d->seq = seq;
    d->queue = wr_queue_ref(q);
    d->msg = m;
    d->consumer = c;
    if (c != NULL) {
        c->refs++;
        c->unacked++;
        u->from_consumers++;
    }
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
    if (how == WR_SETTLE_REQUEUE)
        wr_queue_requeue(d->queue, d->msg, d->seq);
    else
        wr_message_unref(d->msg);
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
