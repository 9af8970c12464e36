/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue state machine (qfifo.h): apply(index, leader time,
 * command) changes the state and appends effects, the same on every member.
 * Ready messages wait in three rings (returned first, then high and normal
 * priority served 2:1); checked-out ones sit with their consumer, sorted by
 * delivery id. Time is only ever the leader's, from the command.
 */
#include "cluster/qfifo.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/qfifo_internal.h"
#include "core/status.h"

#define HI_WEIGHT             2 /* high-priority deliveries per normal one when both wait */
#define DEFAULT_RELEASE_EVERY 4096

void wr_qfifo_policy_default(wr_qfifo_policy_t *p)
{
    *p = (wr_qfifo_policy_t){.max_length = WR_QF_NONE,
                             .max_bytes = WR_QF_NONE,
                             .overflow = WR_QF_DROP_HEAD,
                             .dlx = WR_QF_DLX_NONE,
                             .msg_ttl_ms = WR_QF_NO_TTL,
                             .delivery_limit = WR_QF_DEFAULT_DLIMIT};
}

/* ---- effects ---- */

void wr_qfifo_effects_reset(wr_qfifo_effects_t *e)
{
    e->n = 0;
    e->oom = false;
    wr_buf_reset(&e->tags);
}

void wr_qfifo_effects_free(wr_qfifo_effects_t *e)
{
    free(e->v);
    wr_buf_free(&e->tags);
    *e = (wr_qfifo_effects_t)WR_QFIFO_EFFECTS_INIT;
}

wr_bytes_t wr_qfifo_effect_tag(const wr_qfifo_effects_t *e, const wr_qfifo_effect_t *f)
{
    return (wr_bytes_t){e->tags.data ? e->tags.data + f->tag_off : NULL, f->tag_len};
}

static wr_qfifo_effect_t *fx_push(wr_qfifo_effects_t *e, wr_qfe_kind_t kind)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        wr_qfifo_effect_t *v = realloc(e->v, cap * sizeof(*v));

        if (v == NULL) {
            e->oom = true;
            return NULL;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n] = (wr_qfifo_effect_t){.kind = kind};
    return &e->v[e->n++];
}

/* An effect addressed to consumer c. */
static wr_qfifo_effect_t *fx_consumer(wr_qfifo_effects_t *e, wr_qfe_kind_t kind, const qf_consumer_t *c)
{
    wr_qfifo_effect_t *f = fx_push(e, kind);

    if (f == NULL)
        return NULL;
    f->owner = c->owner;
    f->tag_off = (uint32_t)e->tags.len;
    f->tag_len = c->tag_len;
    wr_buf_put(&e->tags, c->tag, c->tag_len);
    return f;
}

static void fx_publisher(wr_qfifo_effects_t *e, wr_qfe_kind_t kind, uint64_t owner, uint64_t seq)
{
    wr_qfifo_effect_t *f = fx_push(e, kind);

    if (f != NULL) {
        f->owner = owner;
        f->seq = seq;
    }
}

/* ---- the machine ---- */

wr_qfifo_t *wr_qfifo_new(uint32_t release_every)
{
    wr_qfifo_t *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    wr_qfifo_policy_default(&q->pol);
    q->release_every = release_every ? release_every : DEFAULT_RELEASE_EVERY;
    q->dlx_next = 1;
    qf_ring_init(&q->returns, sizeof(qf_msg_t));
    qf_ring_init(&q->hi, sizeof(qf_msg_t));
    qf_ring_init(&q->lo, sizeof(qf_msg_t));
    qf_ring_init(&q->dlx, sizeof(qf_out_t));
    return q;
}

void wr_qfifo_free(wr_qfifo_t *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->ncons; i++)
        qf_consumer_free(q->cons[i]);
    free(q->cons);
    free(q->pubs);
    qf_ring_free(&q->returns);
    qf_ring_free(&q->hi);
    qf_ring_free(&q->lo);
    qf_ring_free(&q->dlx);
    free(q);
}

static size_t ready_count(const wr_qfifo_t *q)
{
    return q->returns.len + q->hi.len + q->lo.len;
}

static bool push_ready(wr_qfifo_t *q, qf_ring_t *r, const qf_msg_t *m)
{
    qf_msg_t *p = qf_ring_push(r);

    if (p == NULL)
        return false;
    *p = *m;
    q->ready_bytes += m->size;
    return true;
}

/* The ring the next ready message comes from: returns, then high and normal 2:1. */
static qf_ring_t *next_ring(wr_qfifo_t *q)
{
    if (q->returns.len > 0)
        return &q->returns;
    if (q->hi.len > 0 && (q->lo.len == 0 || q->hi_streak < HI_WEIGHT))
        return &q->hi;
    return q->lo.len > 0 ? &q->lo : NULL;
}

static bool take_next(wr_qfifo_t *q, qf_msg_t *out)
{
    qf_ring_t *r = next_ring(q);

    if (r == NULL)
        return false;
    if (r == &q->hi && q->lo.len > 0)
        q->hi_streak++;
    else if (r == &q->lo)
        q->hi_streak = 0;
    *out = *(qf_msg_t *)qf_ring_at(r, 0);
    qf_ring_pop(r);
    q->ready_bytes -= out->size;
    return true;
}

/* At-least-once needs reject-publish (as in RabbitMQ); otherwise it acts as at-most-once. */
static wr_qf_dlx_t dlx_strategy(const wr_qfifo_t *q)
{
    if (q->pol.dlx == WR_QF_DLX_AT_LEAST_ONCE && q->pol.overflow != WR_QF_REJECT_PUBLISH)
        return WR_QF_DLX_AT_MOST_ONCE;
    return (wr_qf_dlx_t)q->pol.dlx;
}

/* m leaves the queue with reason: a DEADLETTER effect; kept until DLX_SETTLE when at-least-once. */
static void dead_letter(wr_qfifo_t *q, wr_qfifo_effects_t *fx, const qf_msg_t *m, wr_qf_reason_t why)
{
    wr_qf_dlx_t how = dlx_strategy(q);
    wr_qfifo_effect_t *f = fx_push(fx, WR_QFE_DEADLETTER);
    qf_out_t *o;

    if (f != NULL)
        *f = (wr_qfifo_effect_t){.kind = WR_QFE_DEADLETTER,
                                 .reason = (uint8_t)why,
                                 .dlx = (uint8_t)how,
                                 .size = m->size,
                                 .count = m->count,
                                 .index = m->index};
    if (how != WR_QF_DLX_AT_LEAST_ONCE)
        return;
    if ((o = qf_ring_push(&q->dlx)) == NULL) {
        fx->oom = true;
        return;
    }
    *o = (qf_out_t){*m, q->dlx_next, q->now};
    o->m.flags = (uint8_t)((m->flags & QF_REDELIVERED) | (unsigned)why << QF_REASON_SHIFT);
    if (f != NULL)
        f->id = q->dlx_next;
    q->dlx_next++;
    q->ndlx++;
    q->dlx_bytes += m->size;
}

/* Whether adding n messages of bytes would pass x-max-length or x-max-length-bytes. */
static bool over_limit(const wr_qfifo_t *q, uint64_t n, uint64_t bytes)
{
    n += ready_count(q) + q->ndlx;
    bytes += q->ready_bytes + q->dlx_bytes;
    return n > q->pol.max_length || bytes > q->pol.max_bytes;
}

static void drop_head(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    qf_msg_t m;

    while (q->pol.overflow == WR_QF_DROP_HEAD && over_limit(q, 0, 0) && take_next(q, &m))
        dead_letter(q, fx, &m, WR_QF_DL_MAXLEN);
}

/* Messages expire at the head of their ring (RabbitMQ's quorum queues too), by leader time. */
static void expire_heads(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    qf_ring_t *rings[] = {&q->returns, &q->hi, &q->lo};

    for (size_t i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
        while (rings[i]->len > 0) {
            qf_msg_t m = *(qf_msg_t *)qf_ring_at(rings[i], 0);

            if (m.expiry == 0 || q->now < m.expiry)
                break;
            qf_ring_pop(rings[i]);
            q->ready_bytes -= m.size;
            dead_letter(q, fx, &m, WR_QF_DL_EXPIRED);
        }
    }
}

static bool has_credit(const qf_consumer_t *c)
{
    return c->status == QF_UP && (c->prefetch == 0 || c->nout < c->prefetch);
}

/* The highest-priority consumer with credit; round robin (least recently served) among equals. */
static qf_consumer_t *pick(const wr_qfifo_t *q)
{
    qf_consumer_t *best = NULL;

    for (size_t i = 0; i < q->ncons; i++) {
        qf_consumer_t *c = q->cons[i];

        if (!has_credit(c))
            continue;
        if (best == NULL || c->prio > best->prio || (c->prio == best->prio && c->served < best->served))
            best = c;
    }
    return best;
}

static bool deliver(wr_qfifo_t *q, wr_qfifo_effects_t *fx, qf_consumer_t *c, const qf_msg_t *m)
{
    qf_out_t *o = qf_ring_push(&c->out);
    wr_qfifo_effect_t *f;

    if (o == NULL)
        return false;
    *o = (qf_out_t){*m, c->next_id++, q->now};
    o->m.flags |= QF_REDELIVERED;
    c->nout++;
    c->served = ++q->serve_seq;
    if ((f = fx_consumer(fx, WR_QFE_DELIVER, c)) != NULL) {
        f->id = o->id;
        f->index = m->index;
        f->size = m->size;
        f->count = m->count;
        f->redelivered = (m->flags & QF_REDELIVERED) != 0;
    }
    return true;
}

/* Expires heads, then hands ready messages to consumers with credit. */
static void run(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    qf_consumer_t *c;
    qf_msg_t m;

    for (;;) {
        expire_heads(q, fx);
        if (ready_count(q) == 0 || (c = pick(q)) == NULL || !take_next(q, &m))
            return;
        if (!deliver(q, fx, c, &m)) {
            fx->oom = true;
            return;
        }
    }
}

/* ---- consumers ---- */

static size_t find_consumer(const wr_qfifo_t *q, uint64_t owner, wr_bytes_t tag)
{
    for (size_t i = 0; i < q->ncons; i++) {
        const qf_consumer_t *c = q->cons[i];

        if (c->owner == owner && wr_bytes_eq(tag, (wr_bytes_t){c->tag, c->tag_len}))
            return i;
    }
    return SIZE_MAX;
}

/* Single active consumer: when none is active, the first waiting one (registration order) is. */
static void activate_next(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    if (!q->pol.single_active)
        return;
    for (size_t i = 0; i < q->ncons; i++)
        if (q->cons[i]->status == QF_UP)
            return;
    for (size_t i = 0; i < q->ncons; i++) {
        if (q->cons[i]->status == QF_WAITING) {
            q->cons[i]->status = QF_UP;
            fx_consumer(fx, WR_QFE_ACTIVE, q->cons[i]);
            return;
        }
    }
}

/* The caller activates the next single active consumer once it has removed all it removes. */
static void remove_consumer(wr_qfifo_t *q, size_t i)
{
    qf_consumer_free(q->cons[i]);
    memmove(q->cons + i, q->cons + i + 1, (q->ncons - i - 1) * sizeof(*q->cons));
    q->ncons--;
}

/* Every unsettled message of c goes back, in delivery order, ahead of the rest. */
static void return_all(wr_qfifo_t *q, wr_qfifo_effects_t *fx, qf_consumer_t *c)
{
    for (size_t i = 0; i < c->out.len; i++) {
        const qf_out_t *o = qf_ring_at(&c->out, i);

        if (!(o->m.flags & QF_TOMB) && !push_ready(q, &q->returns, &o->m))
            fx->oom = true;
    }
    qf_ring_free(&c->out);
    c->nout = 0;
}

static int checkout_new(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index, const wr_qfifo_cmd_t *cmd)
{
    qf_consumer_t *c = qf_consumer_new(cmd->owner, cmd->tag, index);

    if (c == NULL || !qf_consumer_add(q, c)) {
        qf_consumer_free(c);
        return WR_ENOMEM;
    }
    c->prefetch = cmd->prefetch;
    c->prio = cmd->cprio;
    c->status = q->pol.single_active ? QF_WAITING : QF_UP;
    activate_next(q, fx);
    return WR_OK;
}

/* A new consumer, or new prefetch and priority for a known one (a cancelled one comes back). */
static int checkout(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index, const wr_qfifo_cmd_t *cmd)
{
    size_t i = find_consumer(q, cmd->owner, cmd->tag);
    qf_consumer_t *c;

    if (i == SIZE_MAX)
        return checkout_new(q, fx, index, cmd);
    c = q->cons[i];
    c->prefetch = cmd->prefetch;
    c->prio = cmd->cprio;
    if (c->status == QF_CANCELLED) {
        c->status = q->pol.single_active ? QF_WAITING : QF_UP;
        activate_next(q, fx);
    }
    return WR_OK;
}

static int cancel(wr_qfifo_t *q, wr_qfifo_effects_t *fx, const wr_qfifo_cmd_t *cmd)
{
    size_t i = find_consumer(q, cmd->owner, cmd->tag);

    if (i == SIZE_MAX)
        return WR_ENOENT;
    q->cons[i]->status = QF_CANCELLED;
    if (q->cons[i]->nout == 0)
        remove_consumer(q, i);
    activate_next(q, fx);
    return WR_OK;
}

static int credit(wr_qfifo_t *q, const wr_qfifo_cmd_t *cmd)
{
    size_t i = find_consumer(q, cmd->owner, cmd->tag);

    if (i == SIZE_MAX)
        return WR_ENOENT;
    q->cons[i]->prefetch = cmd->prefetch;
    return WR_OK;
}

/* ---- publishers ---- */

/* The slot of publisher id in the sorted array, or where it would go; *found says which. */
static size_t pub_find(const wr_qfifo_t *q, uint64_t id, bool *found)
{
    size_t lo = 0, hi = q->npubs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (q->pubs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < q->npubs && q->pubs[lo].id == id;
    return lo;
}

uint64_t wr_qfifo_held_index(const wr_qfifo_t *q, uint64_t owner, wr_bytes_t tag, uint64_t id)
{
    size_t i = find_consumer(q, owner, tag);
    const qf_out_t *o = i != SIZE_MAX ? qf_ring_find(&q->cons[i]->out, id) : NULL;

    return o != NULL && !(o->m.flags & QF_TOMB) ? o->m.index : 0;
}

uint64_t wr_qfifo_publisher_seq(const wr_qfifo_t *q, uint64_t publisher)
{
    bool found;
    size_t at = pub_find(q, publisher, &found);

    return found ? q->pubs[at].last_seq : 0;
}

static void pub_forget(wr_qfifo_t *q, uint64_t id)
{
    bool found;
    size_t at = pub_find(q, id, &found);

    if (!found)
        return;
    memmove(q->pubs + at, q->pubs + at + 1, (q->npubs - at - 1) * sizeof(*q->pubs));
    q->npubs--;
}

/* ---- commands ---- */

/*
 * WR_OK when cmd's sequence is its publisher's next (an unknown publisher
 * starts at 1), WR_EEXIST at or below the last one, WR_AGAIN past a gap.
 * Commands without publisher or sequence are never checked.
 */
static int in_sequence(const wr_qfifo_t *q, const wr_qfifo_cmd_t *cmd)
{
    bool found;
    size_t at;
    uint64_t last;

    if (cmd->owner == 0 || cmd->seq == 0)
        return WR_OK;
    at = pub_find(q, cmd->owner, &found);
    last = found ? q->pubs[at].last_seq : 0;
    if (cmd->seq <= last)
        return WR_EEXIST;
    return cmd->seq == last + 1 ? WR_OK : WR_AGAIN;
}

static bool pub_record(wr_qfifo_t *q, const wr_qfifo_cmd_t *cmd)
{
    bool found;
    size_t at;

    if (cmd->owner == 0 || cmd->seq == 0)
        return true;
    at = pub_find(q, cmd->owner, &found);
    if (found) {
        q->pubs[at].last_seq = cmd->seq;
        return true;
    }
    return qf_pub_insert(q, at, cmd->owner, cmd->seq);
}

/* The expiry of a message enqueued now: the shorter of its TTL and the queue's. */
static uint64_t expiry_of(const wr_qfifo_t *q, uint32_t ttl)
{
    if (q->pol.msg_ttl_ms < ttl)
        ttl = q->pol.msg_ttl_ms;
    if (ttl == WR_QF_NO_TTL)
        return 0;
    return q->now < UINT64_MAX - ttl - 1 ? q->now + ttl + 1 : UINT64_MAX;
}

static int enqueue(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index, const wr_qfifo_cmd_t *cmd)
{
    qf_msg_t m = {index, expiry_of(q, cmd->ttl_ms), cmd->size, 0, cmd->priority, 0};
    int rc = in_sequence(q, cmd);

    if (rc != WR_OK)
        return rc;
    if (q->pol.overflow == WR_QF_REJECT_PUBLISH && over_limit(q, 1, cmd->size)) {
        if (!pub_record(q, cmd))
            return WR_ENOMEM;
        if (cmd->seq != 0)
            fx_publisher(fx, WR_QFE_REJECT, cmd->owner, cmd->seq);
        return WR_EFULL;
    }
    if (!push_ready(q, cmd->priority >= WR_QF_HIGH_PRIORITY ? &q->hi : &q->lo, &m) || !pub_record(q, cmd))
        return WR_ENOMEM;
    if (cmd->seq != 0)
        fx_publisher(fx, WR_QFE_CONFIRM, cmd->owner, cmd->seq);
    return WR_OK;
}

typedef enum { HOW_SETTLE, HOW_RETURN, HOW_DISCARD } how_t;

/* One checked-out message leaves its consumer: gone, back to the queue, or dead-lettered. */
static void settle_one(wr_qfifo_t *q, wr_qfifo_effects_t *fx, qf_msg_t m, how_t how)
{
    if (how == HOW_DISCARD)
        dead_letter(q, fx, &m, WR_QF_DL_REJECTED);
    if (how != HOW_RETURN)
        return;
    if (m.count < UINT16_MAX)
        m.count++;
    if (q->pol.delivery_limit != WR_QF_UNLIMITED && m.count > q->pol.delivery_limit)
        dead_letter(q, fx, &m, WR_QF_DL_DELIVERY_LIMIT);
    else if (!push_ready(q, &q->returns, &m))
        fx->oom = true;
}

/* SETTLE, RETURN, DISCARD: ids the consumer does not hold are ignored (RabbitMQ does too). */
static int settle(wr_qfifo_t *q, wr_qfifo_effects_t *fx, const wr_qfifo_cmd_t *cmd, how_t how)
{
    size_t i = find_consumer(q, cmd->owner, cmd->tag);
    qf_consumer_t *c;

    if (i == SIZE_MAX)
        return WR_ENOENT;
    c = q->cons[i];
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++) {
        qf_out_t *o = qf_ring_find(&c->out, wr_qfifo_cmd_id(cmd, k));

        if (o == NULL)
            continue;
        o->m.flags |= QF_TOMB;
        c->nout--;
        settle_one(q, fx,
                   (qf_msg_t){o->m.index, o->m.expiry, o->m.size, o->m.count, o->m.prio, QF_REDELIVERED},
                   how);
    }
    qf_ring_trim(&c->out, c->nout);
    if (c->status == QF_CANCELLED && c->nout == 0)
        remove_consumer(q, i);
    activate_next(q, fx);
    return WR_OK;
}

static void dlx_settle(wr_qfifo_t *q, const wr_qfifo_cmd_t *cmd)
{
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++) {
        qf_out_t *o = qf_ring_find(&q->dlx, wr_qfifo_cmd_id(cmd, k));

        if (o == NULL)
            continue;
        o->m.flags |= QF_TOMB;
        q->ndlx--;
        q->dlx_bytes -= o->m.size;
    }
    qf_ring_trim(&q->dlx, q->ndlx);
}

/* Every consumer of owner is gone: their messages return, in order; its publisher state is dropped. */
static void down(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t owner)
{
    size_t i = 0;

    while (i < q->ncons) {
        if (q->cons[i]->owner != owner) {
            i++;
            continue;
        }
        return_all(q, fx, q->cons[i]);
        remove_consumer(q, i);
    }
    activate_next(q, fx);
    pub_forget(q, owner);
}

static uint64_t purge(wr_qfifo_t *q)
{
    uint64_t n = ready_count(q);

    qf_ring_free(&q->returns);
    qf_ring_free(&q->hi);
    qf_ring_free(&q->lo);
    q->ready_bytes = 0;
    q->hi_streak = 0;
    return n;
}

static bool held_too_long(const wr_qfifo_t *q, const qf_out_t *o)
{
    return o->at <= q->now && q->now - o->at >= q->pol.consumer_timeout_ms;
}

/* RabbitMQ 4.3: a consumer holding a message longer than the timeout is cancelled, alone. */
static void timeouts(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    size_t i = 0;

    while (q->pol.consumer_timeout_ms != 0 && i < q->ncons) {
        qf_consumer_t *c = q->cons[i];

        if (c->nout == 0 || !held_too_long(q, qf_ring_at(&c->out, 0))) {
            i++;
            continue;
        }
        fx_consumer(fx, WR_QFE_CANCEL, c);
        return_all(q, fx, c);
        remove_consumer(q, i);
    }
    activate_next(q, fx);
}

/* The consumer (owner, tag) for a basic.get, made when none is: a cancelled one, which receives
 * nothing else and goes with its last settlement. NULL on allocation failure. */
static qf_consumer_t *getter(wr_qfifo_t *q, uint64_t index, const wr_qfifo_cmd_t *cmd)
{
    size_t i = find_consumer(q, cmd->owner, cmd->tag);
    qf_consumer_t *c;

    if (i != SIZE_MAX)
        return q->cons[i];
    if ((c = qf_consumer_new(cmd->owner, cmd->tag, index)) == NULL || !qf_consumer_add(q, c)) {
        qf_consumer_free(c);
        return NULL;
    }
    c->status = QF_CANCELLED;
    return c;
}

/* A no-ack basic.get: the message leaves the queue as it is delivered. */
static void deliver_settled(wr_qfifo_effects_t *fx, const wr_qfifo_cmd_t *cmd, const qf_msg_t *m)
{
    qf_consumer_t to = {.owner = cmd->owner, .tag_len = (uint8_t)cmd->tag.len};
    wr_qfifo_effect_t *f;

    if (to.tag_len > 0)
        memcpy(to.tag, cmd->tag.data, to.tag_len);
    if ((f = fx_consumer(fx, WR_QFE_DELIVER, &to)) == NULL)
        return;
    f->index = m->index;
    f->size = m->size;
    f->count = m->count;
    f->redelivered = (m->flags & QF_REDELIVERED) != 0;
}

/* basic.get: the next ready message, settled at once (no-ack) or checked out. *n: whether one was got. */
static int dequeue(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index, const wr_qfifo_cmd_t *cmd,
                   uint64_t *n)
{
    qf_consumer_t *c = NULL;
    qf_msg_t m;

    expire_heads(q, fx);
    if (ready_count(q) == 0)
        return WR_OK;
    if (!cmd->no_ack && (c = getter(q, index, cmd)) == NULL)
        return WR_ENOMEM;
    take_next(q, &m);
    *n = 1;
    if (c == NULL) {
        deliver_settled(fx, cmd, &m);
        return WR_OK;
    }
    return deliver(q, fx, c, &m) ? WR_OK : WR_ENOMEM;
}

static void set_policy(wr_qfifo_t *q, wr_qfifo_effects_t *fx, const wr_qfifo_policy_t *p)
{
    q->pol = *p;
    if (!p->single_active)
        for (size_t i = 0; i < q->ncons; i++)
            if (q->cons[i]->status == QF_WAITING)
                q->cons[i]->status = QF_UP;
    activate_next(q, fx);
}

static int dispatch(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index, const wr_qfifo_cmd_t *cmd,
                    uint64_t *n)
{
    switch (cmd->op) {
    case WR_QF_ENQUEUE:
        return enqueue(q, fx, index, cmd);
    case WR_QF_CHECKOUT:
        return checkout(q, fx, index, cmd);
    case WR_QF_SETTLE:
        return settle(q, fx, cmd, HOW_SETTLE);
    case WR_QF_RETURN:
        return settle(q, fx, cmd, HOW_RETURN);
    case WR_QF_DISCARD:
        return settle(q, fx, cmd, HOW_DISCARD);
    case WR_QF_CREDIT:
        return credit(q, cmd);
    case WR_QF_CANCEL:
        return cancel(q, fx, cmd);
    case WR_QF_DOWN:
        down(q, fx, cmd->owner);
        return WR_OK;
    case WR_QF_PURGE:
        *n = purge(q);
        return WR_OK;
    case WR_QF_TICK:
        timeouts(q, fx);
        return WR_OK;
    case WR_QF_POLICY:
        set_policy(q, fx, &cmd->policy);
        return WR_OK;
    case WR_QF_DLX_SETTLE:
        dlx_settle(q, cmd);
        return WR_OK;
    case WR_QF_DEQUEUE:
        return dequeue(q, fx, index, cmd, n);
    case WR_QF_EXPIRES:
        q->expires_ms = cmd->expires_ms;
        return WR_OK;
    }
    return WR_EUNKNOWN;
}

/* RabbitMQ's last_active: x-expires counts from the queue's first entry, its
 * last basic.get, or its last consumer leaving (had: consumers before). A
 * redeclaration or a policy change is no use, as in RabbitMQ. */
static void note_use(wr_qfifo_t *q, const wr_qfifo_cmd_t *cmd, size_t had)
{
    if (q->last_active == 0 || cmd->op == WR_QF_DEQUEUE || (had > 0 && q->ncons == 0))
        q->last_active = q->now;
}

/* On TICK: unused (no consumer) for longer than x-expires. */
static void expire_queue(wr_qfifo_t *q, wr_qfifo_effects_t *fx)
{
    if (q->expires_ms != 0 && q->ncons == 0 && q->now - q->last_active > q->expires_ms)
        fx_push(fx, WR_QFE_EXPIRED);
}

static uint64_t live_count(const wr_qfifo_t *q)
{
    uint64_t n = ready_count(q) + q->ndlx;

    for (size_t i = 0; i < q->ncons; i++)
        n += q->cons[i]->nout;
    return n;
}

/* A RELEASE whenever nothing is live, and at least every release_every commands. */
static void release(wr_qfifo_t *q, wr_qfifo_effects_t *fx, uint64_t index)
{
    wr_qfifo_effect_t *f;

    if (index <= q->last_release || (live_count(q) != 0 && index - q->last_release < q->release_every))
        return;
    if ((f = fx_push(fx, WR_QFE_RELEASE)) == NULL)
        return;
    f->index = index;
    f->id = wr_qfifo_min_live(q);
    q->last_release = index;
}

int wr_qfifo_apply(wr_qfifo_t *q, uint64_t index, uint64_t time_ms, const wr_qfifo_cmd_t *cmd,
                   wr_qfifo_effects_t *fx, uint64_t *n)
{
    uint64_t scratch;
    size_t had = q->ncons;
    int rc;

    if (n == NULL)
        n = &scratch;
    *n = 0;
    if (time_ms > q->now)
        q->now = time_ms;
    q->applied = index;
    rc = dispatch(q, fx, index, cmd, n);
    note_use(q, cmd, had);
    if (cmd->op == WR_QF_TICK)
        expire_queue(q, fx);
    run(q, fx);
    drop_head(q, fx); /* after deliveries: a waiting consumer still gets a message over the limit */
    release(q, fx, index);
    return fx->oom || !wr_buf_ok(&fx->tags) ? WR_ENOMEM : rc;
}

/* ---- what the driver and the queue type read ---- */

static uint64_t tagged_count(const wr_qfifo_t *q)
{
    uint64_t n = 0;

    for (size_t i = 0; i < q->ncons; i++)
        n += q->cons[i]->tag_len > 0;
    return n;
}

void wr_qfifo_info(const wr_qfifo_t *q, wr_qfifo_info_t *out)
{
    *out = (wr_qfifo_info_t){.ready = ready_count(q),
                             .tagged = tagged_count(q),
                             .ready_bytes = q->ready_bytes,
                             .checked_out = live_count(q) - ready_count(q) - q->ndlx,
                             .dlx_pending = q->ndlx,
                             .consumers = q->ncons,
                             .publishers = q->npubs,
                             .applied = q->applied,
                             .expires_ms = q->expires_ms,
                             .last_active = q->last_active};
}

static void ring_foreach(const qf_ring_t *r, void (*fn)(void *ud, uint64_t index), void *ud)
{
    for (size_t i = 0; i < r->len; i++) {
        const qf_msg_t *m = qf_ring_at(r, i);

        if (!(m->flags & QF_TOMB))
            fn(ud, m->index);
    }
}

void wr_qfifo_live_foreach(const wr_qfifo_t *q, void (*fn)(void *ud, uint64_t index), void *ud)
{
    ring_foreach(&q->returns, fn, ud);
    ring_foreach(&q->hi, fn, ud);
    ring_foreach(&q->lo, fn, ud);
    ring_foreach(&q->dlx, fn, ud);
    for (size_t i = 0; i < q->ncons; i++)
        ring_foreach(&q->cons[i]->out, fn, ud);
}

void wr_qfifo_dlx_foreach(const wr_qfifo_t *q, wr_qfifo_dlx_fn fn, void *ud)
{
    for (size_t i = 0; i < q->dlx.len; i++) {
        const qf_out_t *o = qf_ring_at(&q->dlx, i);

        if (!(o->m.flags & QF_TOMB))
            fn(ud, o->id, o->m.index, (wr_qf_reason_t)((o->m.flags & QF_REASON) >> QF_REASON_SHIFT));
    }
}

void wr_qfifo_owners_foreach(const wr_qfifo_t *q, void (*fn)(void *ud, uint64_t owner), void *ud)
{
    for (size_t i = 0; i < q->ncons; i++)
        fn(ud, q->cons[i]->owner);
}

static void min_of(void *ud, uint64_t index)
{
    uint64_t *min = ud;

    if (*min == 0 || index < *min)
        *min = index;
}

/* The high and normal rings hold indexes in order: their heads are their minimums. */
static void ring_head_min(const qf_ring_t *r, uint64_t *min)
{
    if (r->len > 0)
        min_of(min, ((const qf_msg_t *)qf_ring_at(r, 0))->index);
}

uint64_t wr_qfifo_min_live(const wr_qfifo_t *q)
{
    uint64_t min = 0;

    ring_head_min(&q->hi, &min);
    ring_head_min(&q->lo, &min);
    ring_foreach(&q->returns, min_of, &min);
    ring_foreach(&q->dlx, min_of, &min);
    for (size_t i = 0; i < q->ncons; i++)
        ring_foreach(&q->cons[i]->out, min_of, &min);
    return min;
}

size_t wr_qfifo_mem(const wr_qfifo_t *q)
{
    size_t n = sizeof(*q) + q->capcons * sizeof(*q->cons) + q->cappubs * sizeof(*q->pubs);
    const qf_ring_t *rings[] = {&q->returns, &q->hi, &q->lo, &q->dlx};

    for (size_t i = 0; i < sizeof(rings) / sizeof(rings[0]); i++)
        n += rings[i]->cap * rings[i]->esz;
    for (size_t i = 0; i < q->ncons; i++)
        n += sizeof(qf_consumer_t) + q->cons[i]->out.cap * q->cons[i]->out.esz;
    return n;
}
