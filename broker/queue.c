/* SPDX-License-Identifier: MIT */
/*
 * Queue bookkeeping without I/O of its own: ready messages, consumers,
 * dispatch in bounded batches, the per-channel record of unacked deliveries,
 * and paging. Fresh messages wait in a FIFO deque of 16-byte entries (the
 * message, or NULL while only its log record holds it, and the record's
 * index); requeued ones wait in a min-heap keyed by their enqueue sequence
 * number, and the head of the queue is whichever of the two is older, so
 * requeueing restores the original order in O(log n). Beyond the memory
 * budget new messages go to the log only and are read back in batches,
 * ahead of the consumers, as the queue drains.
 */
#include "broker/queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* Entry flags, below the log index in entry_t.word. */
#define E_PERSISTENT  1u /* delivery_mode 2 in a durable queue: its record survives restarts */
#define E_REDELIVERED 2u
#define E_LOST        4u /* its record could not be read back */
#define E_SHIFT       3

/* wr_qpos_t.flags */
#define POS_PERSISTENT 1u
#define POS_TAKEN      2u /* tracked by the log as out for delivery */

/* Entries per deque block (16 KiB). */
#define BLOCK 1024
/* Paging in: when fewer than half a batch of messages ahead of the
 * consumers is in memory, read up to a batch more (within the budget). */
#define PAGE_IN_RECORDS 256
#define PAGE_IN_BYTES   (4u << 20)

typedef struct {
    wr_message_t *msg; /* NULL while paged out */
    uint64_t word;     /* log index << E_SHIFT | E_* flags; index 0: not in the log */
} entry_t;

/* A requeued message: always in memory. */
typedef struct {
    wr_message_t *msg;
    uint64_t seq;
    uint64_t word;
} held_t;

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

    /* Fresh messages: a deque of blocks, blocks[(bfirst + i) & (bcap - 1)]. */
    entry_t **blocks;
    size_t bcap; /* power of two, or 0 */
    size_t bfirst;
    size_t nblocks;
    size_t head;       /* offset of the first entry in the first block */
    size_t len;        /* entries */
    size_t loaded;     /* entries from the head known to be in memory */
    uint64_t head_seq; /* sequence number of the first entry */
    entry_t *spare;    /* a drained block kept for the next one needed */
    held_t *heap;      /* requeued messages, min-heap on seq */
    size_t hlen;
    size_t hcap;
    uint64_t mem;   /* bytes of ready messages in memory */
    wr_qlog_t *log; /* NULL: memory only */

    wr_list_t groups;
    size_t nconsumers;
    wr_consumer_t *exclusive_consumer;
    size_t unacked;
    wr_queue_stats_t stats;
    uint8_t data[]; /* name, then args */
};

/* ---------------------------------------------------------------- ready */

/* What a message costs in memory, for the budget. */
static uint64_t msg_cost(const wr_message_t *m)
{
    return sizeof(*m) + m->exchange.len + m->routing_key.len + m->header.len + m->body_size;
}

static uint64_t entry_index(uint64_t word)
{
    return word >> E_SHIFT;
}

static entry_t *ring_at(const wr_queue_t *q, size_t i)
{
    size_t p = q->head + i;

    return &q->blocks[(q->bfirst + p / BLOCK) & (q->bcap - 1)][p % BLOCK];
}

static bool ring_push(wr_queue_t *q, entry_t e)
{
    if (q->head + q->len == q->nblocks * BLOCK) {
        entry_t *b = q->spare;

        if (q->nblocks == q->bcap) {
            size_t ncap = q->bcap ? q->bcap * 2 : 4;
            entry_t **n = malloc(ncap * sizeof(*n));

            if (n == NULL)
                return false;
            for (size_t i = 0; i < q->nblocks; i++)
                n[i] = q->blocks[(q->bfirst + i) & (q->bcap - 1)];
            free(q->blocks);
            q->blocks = n;
            q->bcap = ncap;
            q->bfirst = 0;
        }
        if (b == NULL && (b = malloc(BLOCK * sizeof(*b))) == NULL)
            return false;
        q->spare = NULL;
        q->blocks[(q->bfirst + q->nblocks) & (q->bcap - 1)] = b;
        q->nblocks++;
    }
    *ring_at(q, q->len) = e;
    q->len++;
    return true;
}

/* Removes the head entry; drained blocks go back (one is kept as spare). */
static entry_t ring_pop(wr_queue_t *q)
{
    entry_t e = *ring_at(q, 0);

    q->len--;
    q->head++;
    q->head_seq++;
    if (q->loaded > 0)
        q->loaded--;
    if (q->head == BLOCK || q->len == 0) {
        entry_t *b = q->blocks[q->bfirst];

        if (q->head == BLOCK) {
            q->bfirst = (q->bfirst + 1) & (q->bcap - 1);
            q->nblocks--;
            if (q->spare == NULL)
                q->spare = b;
            else
                free(b);
        }
        q->head = 0;
    }
    return e;
}

static bool heap_push(wr_queue_t *q, held_t r)
{
    size_t i;

    if (q->hlen == q->hcap) {
        size_t ncap = q->hcap ? q->hcap * 2 : 16;
        held_t *n = realloc(q->heap, ncap * sizeof(*n));

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

static held_t heap_pop(wr_queue_t *q)
{
    held_t top = q->heap[0];
    held_t last = q->heap[--q->hlen];
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

static uint64_t budget(const wr_queue_t *q)
{
    return q->log != NULL ? wr_qlog_budget(q->log) : UINT64_MAX;
}

/*
 * Reads paged-out messages back ahead of need: when fewer than half a batch
 * ahead of the consumers is in memory, up to a batch more, within the
 * budget. The head itself is always read. A record that cannot be read is
 * marked lost (wr_qlog_read reports it); out of memory leaves it for later.
 */
static void page_in(wr_queue_t *q)
{
    uint64_t limit = budget(q), bytes = 0;
    size_t n = 0;

    if (q->loaded == q->len || q->loaded >= PAGE_IN_RECORDS / 2 || (q->loaded > 0 && q->mem >= limit))
        return;
    while (q->loaded < q->len && n < PAGE_IN_RECORDS && bytes < PAGE_IN_BYTES &&
           (q->loaded == 0 || q->mem < limit)) {
        entry_t *e = ring_at(q, q->loaded);

        if (e->msg == NULL && !(e->word & E_LOST)) {
            int rc = wr_qlog_read(q->log, entry_index(e->word), &e->msg);

            if (rc == WR_ENOMEM)
                return;
            if (rc != WR_OK) {
                e->word |= E_LOST;
            } else {
                q->mem += msg_cost(e->msg);
                bytes += msg_cost(e->msg);
                n++;
            }
        }
        q->loaded++;
    }
}

static wr_qpos_t pos_of(uint64_t seq, uint64_t word, bool taken)
{
    wr_qpos_t pos = {seq, entry_index(word), 0};

    if (word & E_PERSISTENT)
        pos.flags |= POS_PERSISTENT;
    if (taken)
        pos.flags |= POS_TAKEN;
    return pos;
}

static uint64_t pos_word(const wr_qpos_t *pos)
{
    return pos->index << E_SHIFT | ((pos->flags & POS_PERSISTENT) ? E_PERSISTENT : 0);
}

/* The message at pos is done with: its log record goes. */
static void settle(wr_queue_t *q, const wr_qpos_t *pos)
{
    if (q->log != NULL && pos->index != 0)
        wr_qlog_settle(q->log, pos->index, pos->flags & POS_PERSISTENT, pos->flags & POS_TAKEN);
}

/*
 * Takes the head: the older of the deque's head and the heap's top.
 * *from_ring says which. False when nothing is ready, or the head could not
 * be read back for want of memory (a later wake retries).
 */
static bool ready_pop(wr_queue_t *q, held_t *out, bool *from_ring)
{
    for (;;) {
        entry_t e;

        if (q->hlen > 0 && (q->len == 0 || q->heap[0].seq < q->head_seq)) {
            *out = heap_pop(q);
            q->mem -= msg_cost(out->msg);
            *from_ring = false;
            return true;
        }
        if (q->len == 0)
            return false;
        page_in(q);
        e = *ring_at(q, 0);
        if (e.msg == NULL && !(e.word & E_LOST))
            return false;
        out->seq = q->head_seq;
        ring_pop(q);
        if (e.word & E_LOST) {
            wr_qpos_t pos = pos_of(out->seq, e.word, false);
            settle(q, &pos);
            continue;
        }
        q->mem -= msg_cost(e.msg);
        out->msg = e.msg;
        out->word = e.word;
        *from_ring = true;
        return true;
    }
}

/*
 * The head has been taken for a delivery: the log tracks it until it is
 * settled, and records its first delivery. Returns its position.
 */
static wr_qpos_t take(wr_queue_t *q, const held_t *r, bool from_ring, bool no_ack)
{
    bool redelivered = (r->word & E_REDELIVERED) != 0;

    /* A requeued message has been taken before and is still tracked. */
    if (!from_ring)
        return pos_of(r->seq, r->word, true);
    if (no_ack || entry_index(r->word) == 0)
        return pos_of(r->seq, r->word, false);
    wr_qlog_taken(q->log, entry_index(r->word), r->word & E_PERSISTENT, !redelivered);
    return pos_of(r->seq, r->word, true);
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
        bool from_ring, redelivered;
        wr_qpos_t pos;
        held_t r;

        if (c == NULL)
            return false; /* every consumer is blocked: an ack or drain wakes us */
        if (!ready_pop(q, &r, &from_ring))
            return false;
        /* Round-robin within the priority. */
        wr_list_remove(&c->qnode);
        wr_list_insert_tail(&c->group->consumers, &c->qnode);
        redelivered = (r.word & E_REDELIVERED) != 0;
        if (c->no_ack)
            q->stats.deliver_no_ack++;
        else
            q->stats.deliver++;
        q->stats.redeliver += redelivered;
        pos = take(q, &r, from_ring, c->no_ack);
        c->ops->deliver(c, r.msg, &pos, redelivered);
        if (c->no_ack)
            settle(q, &pos);
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
    q->head_seq = 1;
    wr_list_init(&q->run_node);
    wr_list_init(&q->sources);
    wr_list_init(&q->owner_link);
    wr_list_init(&q->groups);
    return q;
}

/* Replay hands over the live messages of a durable queue's log, in order. */
static bool queue_recovered(void *owner, uint64_t index, bool redelivered)
{
    wr_queue_t *q = owner;
    entry_t e = {NULL, index << E_SHIFT | E_PERSISTENT | (redelivered ? E_REDELIVERED : 0)};

    return ring_push(q, e);
}

/* The persistent messages in the deque, for a checkpoint of the log. */
static void queue_ready_iter(void *owner, wr_qlog_live_fn fn, void *ud)
{
    const wr_queue_t *q = owner;

    for (size_t i = 0; i < q->len; i++) {
        uint64_t w = ring_at(q, i)->word;

        if ((w & E_PERSISTENT) && !(w & E_LOST))
            fn(ud, entry_index(w), (w & E_REDELIVERED) != 0);
    }
}

int wr_queue_use_log(wr_queue_t *q, wr_qlog_ctx_t *ctx, const char *logname, const char *what, char *err,
                     size_t errlen)
{
    static const wr_qlog_ops_t ops = {queue_recovered, queue_ready_iter};

    q->log = wr_qlog_new(ctx, logname, q->opts.durable, &ops, q, what, err, errlen);
    return q->log != NULL ? WR_OK : WR_EIO;
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
    for (size_t i = 0; i < q->nblocks; i++)
        free(q->blocks[(q->bfirst + i) & (q->bcap - 1)]);
    free(q->blocks);
    free(q->spare);
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

uint64_t wr_queue_memory(const wr_queue_t *q)
{
    return q->mem;
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

int wr_queue_publish(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf)
{
    bool persistent = q->log != NULL && q->opts.durable && wr_message_persistent(m);
    uint64_t cost = msg_cost(m), index = 0;
    /* Once some of the queue is paged out, newer messages follow it to the
     * log, so the part in memory stays one prefix of the queue. */
    bool keep = q->log == NULL || (q->loaded == q->len && q->mem + cost <= budget(q));
    entry_t e;
    int rc;

    if (persistent || !keep) {
        rc = wr_qlog_append(q->log, m, persistent, &index);
        if (rc != WR_OK) {
            if (persistent)
                return rc;
            keep = true; /* it cannot be paged out: it stays in memory */
        }
    }
    e.msg = keep ? m : NULL;
    e.word = index << E_SHIFT | (persistent ? E_PERSISTENT : 0);
    if (!ring_push(q, e)) {
        wr_qpos_t pos = pos_of(0, e.word, false);
        settle(q, &pos);
        return WR_ENOMEM;
    }
    if (keep) {
        wr_message_ref(m);
        q->mem += cost;
        if (q->loaded == q->len - 1)
            q->loaded++;
    }
    /* A confirm that cannot wait for the record is a nack, never an early ack. */
    if (persistent && conf != NULL && wr_qlog_wait(q->log, index, conf) != WR_OK)
        conf->failed = true;
    q->stats.publish++;
    wr_queue_wake(q);
    return WR_OK;
}

bool wr_queue_get(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qpos_t *pos, bool *redelivered)
{
    bool from_ring;
    held_t r;

    if (!ready_pop(q, &r, &from_ring))
        return false;
    *redelivered = (r.word & E_REDELIVERED) != 0;
    if (no_ack)
        q->stats.get_no_ack++;
    else
        q->stats.get++;
    q->stats.redeliver += *redelivered;
    *m = r.msg;
    *pos = take(q, &r, from_ring, no_ack);
    if (no_ack)
        settle(q, pos);
    return true;
}

void wr_queue_requeue(wr_queue_t *q, wr_message_t *m, const wr_qpos_t *pos)
{
    held_t r = {m, pos->seq, pos_word(pos) | E_REDELIVERED};

    if (q->closed) {
        wr_message_unref(m);
        return;
    }
    /* Without memory for the heap slot the message is lost, as RabbitMQ
     * would lose it when its queue process dies; never a crash. */
    if (!heap_push(q, r)) {
        settle(q, pos);
        wr_message_unref(m);
        return;
    }
    q->mem += msg_cost(m);
    wr_queue_wake(q);
}

size_t wr_queue_purge(wr_queue_t *q)
{
    size_t n = q->len + q->hlen;

    while (q->len > 0) {
        entry_t e = ring_pop(q);
        wr_qpos_t pos = pos_of(0, e.word, false);

        settle(q, &pos);
        wr_message_unref(e.msg);
    }
    while (q->hlen > 0) {
        held_t h = q->heap[--q->hlen];
        wr_qpos_t pos = pos_of(h.seq, h.word, true);

        settle(q, &pos);
        wr_message_unref(h.msg);
    }
    q->mem = 0;
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
    /* The records go with the log: nothing is settled one by one. */
    wr_qlog_delete(q->log);
    q->log = NULL;
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
    d->pos = *pos;
    d->queue = wr_queue_ref(q);
    d->msg = m;
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
