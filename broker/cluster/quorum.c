/* SPDX-License-Identifier: MIT */
/*
 * Quorum queues (quorum.h): the service, placement, and the queue type a
 * member node lists. Every operation becomes a command proposed to the
 * queue's Raft group (publish: ENQUEUE with the message, consume: CHECKOUT,
 * ack: SETTLE...), retried while the group has no leader; what it leads to
 * happens when this node applies the committed command (quorum_sm.c).
 */
#include "broker/cluster/quorum_internal.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/base/log.h"
#include "broker/queue/classic.h"
#include "core/status.h"
#include "protocol/methods.h"
#include "protocol/table.h"

#define RETRY_EVERY_MS    200
#define TICK_EVERY_MS     1000
#define TRANSFER_EVERY_MS 10000
/* Entries between snapshots, when one is worth it (snapshot_worth): a small
 * live set is snapshotted often, so the log and its memory stay small. */
#define SNAPSHOT_EVERY 1024
/*
 * Enqueues this node has proposed to all its quorum queues and not yet seen
 * applied: past this many, new commands wait here (in order, per queue)
 * while settlements still go at once. A consumer's credit comes back only
 * when its settlement is applied, so in a log as full of enqueues as the
 * producers keep it a consumer with a prefetch below their unconfirmed
 * messages fell behind (ten queues, 100 in flight, prefetch 50: about 60%
 * consumed), and the backlog cost every node the reads of a log that is
 * never snapshotted. RabbitMQ's rabbit_fifo_client sends enqueues at ra's
 * low priority, settlements at normal, for the same end.
 */
#define ENQUEUE_WINDOW 256

/* A command awaiting its outcome. */
typedef struct {
    wr_list_t link; /* in q->props */
    wr_list_t wait; /* in s->waiting while the enqueue window holds it back */
    qq_t *q;
    wr_buf_t entry;
    uint64_t seq;              /* an ENQUEUE's publisher seq; 0 for other commands */
    uint64_t settler;          /* a SETTLE/RETURN/DISCARD's consumer owner; 0 for other commands */
    uint64_t getter;           /* a DEQUEUE's owner (a basic.get of this node); 0 for other commands */
    wr_confirm_t *conf;        /* an ENQUEUE's confirm, while not yet answered */
    wr_queue_purged_fn purged; /* a PURGE's asker (purge_async), while not yet answered */
    void *purged_ud;
    uint64_t npurged; /* what the PURGE dropped, once applied here */
    uint64_t deadline;
    unsigned inflight; /* proposals whose done has not come */
    bool settled;      /* its outcome is known (or given up) */
    bool retry;        /* propose it again at the next retry tick */
    bool windowed;     /* an enqueue counted in s->enq_out */
} prop_t;

static qq_t *qq(wr_queue_t *h)
{
    return wr_list_entry(h, qq_t, h);
}

static const qq_t *cqq(const wr_queue_t *h)
{
    return (const qq_t *)((const char *)h - offsetof(qq_t, h));
}

static wr_bytes_t key_of(const uint64_t *v)
{
    return (wr_bytes_t){(const uint8_t *)v, sizeof(*v)};
}

uint64_t wr_qq_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wr_qq_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t new_id(wr_quorum_t *s)
{
    return (uint64_t)s->self_id << 32 | ++s->next_id;
}

/* The expiration property in milliseconds (validated digits by the publish path), capped. */
static uint32_t expiration_ms(wr_bytes_t e)
{
    uint64_t v = 0;

    for (size_t i = 0; i < e.len && v < WR_QF_NO_TTL; i++)
        if (e.data[i] >= '0' && e.data[i] <= '9')
            v = v * 10 + (uint64_t)(e.data[i] - '0');
    return v >= WR_QF_NO_TTL ? WR_QF_NO_TTL - 1 : (uint32_t)v;
}

static bool on_run_list(const wr_queue_t *h)
{
    return h->run_node.next != &h->run_node;
}

static void arm(struct event *ev, unsigned ms)
{
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};

    event_add(ev, &tv);
}

/* ---------------------------------------------------------------- declaration */

bool wr_quorum_args_want(wr_bytes_t args)
{
    wr_value_t v;

    return wr_table_get(args, "x-queue-type", &v) && v.type == 'S' && wr_bytes_eq_str(v.v.s, "quorum");
}

bool wr_quorum_check_props(const char *vhost, wr_bytes_t name, bool durable, bool exclusive, bool auto_delete,
                           uint32_t method, wr_amqp_error_t *err)
{
    const char *bad = auto_delete ? "auto-delete"
                      : exclusive ? "exclusive-owner"
                      : !durable  ? "non-durable"
                                  : NULL;

    if (bad == NULL)
        return true;
    wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method,
                      "invalid property '%s' for queue '%.*s' in vhost '%s'", bad, (int)name.len,
                      (const char *)name.data, vhost);
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* FNV-1a of the queue's name: the balanced locator's pick. */
static uint32_t name_hash(wr_bytes_t name)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < name.len; i++)
        h = (h ^ name.data[i]) * 16777619u;
    return h;
}

size_t wr_quorum_place(const char *self, const char *const *names, size_t n, wr_bytes_t name, wr_bytes_t args,
                       const char **out)
{
    int64_t want = WR_QUORUM_DEFAULT_SIZE;
    size_t k = 0, start;
    const char **tmp;
    wr_value_t v;

    if (wr_table_get(args, "x-quorum-initial-group-size", &v) && wr_value_int(&v, &want) && want < 1)
        want = 1;
    out[k++] = self;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], self) != 0)
            out[k++] = names[i];
    qsort(out + 1, k - 1, sizeof(*out), by_name);
    if (wr_table_get(args, "x-queue-leader-locator", &v) && v.type == 'S' &&
        wr_bytes_eq_str(v.v.s, "balanced") && (tmp = malloc(k * sizeof(*tmp))) != NULL) {
        /* Every node in name order, rotated to start at the hashed one. */
        memcpy(tmp, out, k * sizeof(*tmp));
        qsort(tmp, k, sizeof(*tmp), by_name);
        start = name_hash(name) % k;
        for (size_t i = 0; i < k; i++)
            out[i] = tmp[(start + i) % k];
        free(tmp);
    }
    return (size_t)want < k ? (size_t)want : k;
}

/* ---------------------------------------------------------------- commands */

/* What a pending command counts toward flow: its entry, and never less than
 * WR_QUORUM_MIN_CHARGE, so that tiny messages engage flow before the queue's
 * count of pending commands refuses publishes (WR_QUORUM_MAX_PENDING). */
static size_t flow_charge(const prop_t *p)
{
    return p->entry.len > WR_QUORUM_MIN_CHARGE ? p->entry.len : WR_QUORUM_MIN_CHARGE;
}

static void prop_free(prop_t *p)
{
    qq_t *q = p->q;

    if (p->wait.next != &p->wait) {
        wr_list_remove(&p->wait);
        q->nwaiting--;
    }
    wr_list_remove(&p->link);
    q->npending--;
    q->pending_bytes -= flow_charge(p);
    wr_buf_free(&p->entry);
    free(p);
    if (q->s != NULL && q->s->d.drained != NULL)
        q->s->d.drained(q->s->d.ud);
    wr_queue_unref(&q->h);
}

static void cons_maybe_free(qq_t *q, qcons_t *qc);
static void window_pump(wr_quorum_t *s);

/* A consumer's settlement is committed (or given up): a DOWN waiting for it may go. */
static void settled_for(qq_t *q, uint64_t owner)
{
    qcons_t *qc = wr_qq_cons_find(q, owner);

    if (qc == NULL || --qc->settle_props > 0)
        return;
    if (qc->down_wanted) {
        qc->down_wanted = false;
        wr_qq_down(q, qc->owner);
    }
    cons_maybe_free(q, qc);
}

/* The outcome is known: an enqueue's confirm is answered, and its place in the window goes to a waiting
 * command. */
static void prop_settle(prop_t *p, bool ok)
{
    wr_confirm_t *conf = p->conf;
    wr_queue_purged_fn purged = p->purged;
    wr_quorum_t *s = p->q->s;

    if (p->settled)
        return;
    p->settled = true;
    p->conf = NULL;
    p->purged = NULL;
    if (purged != NULL)
        purged(p->purged_ud, ok, p->npurged);
    if (p->windowed) {
        p->windowed = false;
        if (s != NULL) {
            s->enq_out--;
            window_pump(s);
        }
    }
    if (p->seq != 0)
        wr_map_del(p->q->pubs, key_of(&p->seq));
    if (p->settler != 0)
        settled_for(p->q, p->settler);
    if (p->inflight == 0)
        prop_free(p);
    if (conf != NULL)
        wr_confirm_release(conf, ok);
}

/*
 * p goes again at the next retry pass; until then new commands queue behind
 * it, so they keep their order. The pass is timed from the first command
 * that waits for it: re-arming it for each later one put it off for as long
 * as they kept coming less than RETRY_EVERY_MS apart.
 */
static void need_retry(prop_t *p)
{
    if (p->retry)
        return;
    /* A queue that cannot commit does not hold the window from the others (on_retry pumps it). */
    if (p->windowed) {
        p->windowed = false;
        if (p->q->s != NULL)
            p->q->s->enq_out--;
    }
    p->retry = true;
    if (!p->q->retrying)
        arm(p->q->retry_ev, RETRY_EVERY_MS);
    p->q->retrying = true;
}

/* A basic.get still waiting is answered with what (no message); false when none waits. */
static bool get_fail(qcons_t *qc, wr_queue_got_t what)
{
    wr_queue_got_fn fn = qc->fn;

    if (fn == NULL)
        return false;
    qc->fn = NULL;
    fn(qc->ud, what, NULL, NULL, false, 0);
    return true;
}

/*
 * p is given up (no outcome within WR_QUORUM_RETRY_MS, or the group is
 * gone): nacked. An enqueue takes every later one of this publisher with it,
 * since the machine would refuse them all past the gap, and later publishes
 * go as a new publisher. One given up may still commit (nack only says the
 * message is not known to be safe). A basic.get still waiting hears that the
 * leader is not there, as RabbitMQ's times out: should its DEQUEUE commit
 * later, what it takes goes back (answer_get).
 */
static void abandon(prop_t *p)
{
    qq_t *q = p->q;
    wr_list_t *it, *next, *end;
    bool last;

    if (p->seq == 0) {
        qcons_t *qc = p->getter != 0 ? wr_qq_cons_find(q, p->getter) : NULL;

        prop_settle(p, false);
        if (qc != NULL && get_fail(qc, WR_QUEUE_GOT_DOWN))
            cons_maybe_free(q, qc);
        return;
    }
    /* First the new publisher: a nack below may free a publisher's flow and bring new publishes. */
    if (q->s != NULL) {
        q->pub_id = new_id(q->s);
        q->next_seq = 0;
    }
    wr_queue_ref(&q->h);
    end = q->props.prev;
    for (it = &p->link, last = false; !last; it = next) {
        prop_t *later = wr_list_entry(it, prop_t, link);

        last = it == end;
        next = it->next;
        if (later->seq != 0)
            prop_settle(later, false);
    }
    wr_queue_unref(&q->h);
}

/*
 * A DEQUEUE is not idempotent: both attempts of one sent again after an
 * unknown outcome may commit, and the second takes another message. So it
 * goes again only while its basic.get still waits: once answered (the first
 * attempt applied here) or given up by its channel, it is done.
 */
static bool get_moot(prop_t *p)
{
    qcons_t *qc;

    if (p->getter == 0)
        return false;
    qc = wr_qq_cons_find(p->q, p->getter);
    return qc == NULL || qc->fn == NULL;
}

static void prop_done(void *ud, int status, uint64_t index)
{
    prop_t *p = ud;
    qq_t *q = p->q;

    p->inflight--;
    if (p->settled) {
        if (p->inflight == 0)
            prop_free(p);
        return;
    }
    /* Applied here: an enqueue was settled (or marked for a retry) by wr_qq_landed just before. */
    if (status == WR_OK) {
        if (p->purged != NULL)
            p->npurged = q->purged_at == index ? q->purged : 0;
        if (p->seq == 0)
            prop_settle(p, true);
        return;
    }
    if (q->g == NULL || wr_qq_mono_ms() > p->deadline) {
        abandon(p);
        return;
    }
    if (get_moot(p)) {
        prop_settle(p, true);
        return;
    }
    /* Not committed, or not known to be: again (the machine drops a duplicate enqueue). */
    need_retry(p);
}

static void prop_send(prop_t *p)
{
    qq_t *q = p->q;

    p->retry = false;
    if (q->g != NULL && wr_rgroup_propose(q->g, p->entry.data, p->entry.len, 5000, prop_done, p) == WR_OK)
        p->inflight++;
    else
        need_retry(p); /* no group yet (on_open sends it) or out of memory */
}

/*
 * The retry pass: commands marked go again, in order. An enqueue waits while
 * an earlier one is out with no outcome yet: sent now, it would reach the
 * log past that one's gap and be refused again.
 */
static void on_retry(evutil_socket_t fd, short what, void *ud)
{
    qq_t *q = ud;
    wr_list_t *it, *next;
    bool awaited = false; /* an earlier enqueue is out, its outcome unknown */

    q->retrying = false;
    wr_queue_ref(&q->h); /* abandoning the last command of a deleted queue drops its last reference */
    for (it = q->props.next; it != &q->props; it = next) {
        prop_t *p = wr_list_entry(it, prop_t, link);

        next = it->next;
        if (p->settled)
            continue;
        if (!p->retry) {
            awaited |= p->seq != 0 && p->inflight > 0;
            continue;
        }
        if (wr_qq_mono_ms() > p->deadline && p->inflight == 0) {
            abandon(p);
            next = q->props.next; /* abandon may have freed any later command: from the top */
            awaited = false;
            continue;
        }
        if (p->seq != 0 && awaited) {
            p->retry = false;
            need_retry(p);
            continue;
        }
        if (get_moot(p)) {
            prop_settle(p, true);
            continue;
        }
        prop_send(p);
    }
    if (q->s != NULL)
        window_pump(q->s);
    wr_queue_unref(&q->h);
}

/* p leaves for the leader now, or at the retry pass while an earlier command waits for it. */
static void prop_go(prop_t *p)
{
    qq_t *q = p->q;

    if (p->seq != 0 && q->s != NULL) {
        p->windowed = true;
        q->s->enq_out++;
    }
    if (q->retrying)
        need_retry(p);
    else
        prop_send(p);
}

/* Commands held back go, oldest first, while enqueues have room in the window. */
static void window_pump(wr_quorum_t *s)
{
    while (!wr_list_empty(&s->waiting)) {
        prop_t *p = wr_list_entry(s->waiting.next, prop_t, wait);

        if (p->seq != 0 && s->enq_out >= ENQUEUE_WINDOW)
            return;
        wr_list_remove(&p->wait);
        p->q->nwaiting--;
        prop_go(p);
    }
}

/* wr_qq_propose, and a PURGE's asker (purge_async), answered from prop_settle; *out is the command. */
static int propose(qq_t *q, const wr_qfifo_cmd_t *cmd, const wr_message_t *m, wr_confirm_t *conf,
                   wr_queue_purged_fn purged, void *purged_ud, prop_t **out)
{
    bool settlement = cmd->op == WR_QF_SETTLE || cmd->op == WR_QF_RETURN || cmd->op == WR_QF_DISCARD;
    prop_t *p;

    /* The node is stopping (its connections close after the driver): nothing more is proposed. */
    if (q->s == NULL)
        return WR_ENOENT;
    if (q->npending >= WR_QUORUM_MAX_PENDING && cmd->op == WR_QF_ENQUEUE)
        return WR_EFULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return WR_ENOMEM;
    p->q = q;
    p->seq = cmd->op == WR_QF_ENQUEUE ? cmd->seq : 0;
    if (settlement)
        p->settler = cmd->owner;
    if (cmd->op == WR_QF_DEQUEUE)
        p->getter = cmd->owner;
    p->deadline = wr_qq_mono_ms() + WR_QUORUM_RETRY_MS;
    if (!wr_qq_entry_put(&p->entry, wr_qq_now(), cmd, m) ||
        (p->seq != 0 && wr_map_put(q->pubs, key_of(&p->seq), p) != WR_OK)) {
        wr_buf_free(&p->entry);
        free(p);
        return WR_ENOMEM;
    }
    if (p->entry.len > WR_RGROUP_MAX_ENTRY) {
        wr_map_del(q->pubs, key_of(&p->seq));
        wr_buf_free(&p->entry);
        free(p);
        return WR_ETOOBIG;
    }
    wr_queue_ref(&q->h);
    wr_list_insert_tail(&q->props, &p->link);
    wr_list_init(&p->wait);
    q->npending++;
    q->pending_bytes += flow_charge(p);
    if (p->settler != 0) {
        qcons_t *qc = wr_qq_cons_find(q, p->settler);

        if (qc != NULL)
            qc->settle_props++;
        else
            p->settler = 0;
    }
    if (conf != NULL) {
        p->conf = conf;
        conf->waiting++;
    }
    p->purged = purged;
    p->purged_ud = purged_ud;
    if (out != NULL)
        *out = p;
    /* Settlements pass what waits: they refer to deliveries, so nothing earlier must reach the machine first.
     */
    if (!settlement && (q->nwaiting > 0 || (p->seq != 0 && q->s->enq_out >= ENQUEUE_WINDOW))) {
        wr_list_insert_tail(&q->s->waiting, &p->wait);
        q->nwaiting++;
    } else {
        prop_go(p);
    }
    return WR_OK;
}

int wr_qq_propose(qq_t *q, const wr_qfifo_cmd_t *cmd, const wr_message_t *m, wr_confirm_t *conf)
{
    return propose(q, cmd, m, conf, NULL, NULL, NULL);
}

/*
 * This node applied its own enqueue seq. WR_AGAIN: it reached the log past
 * an earlier one that did not (an attempt forwarded to a leader that died
 * before appending it), so the machine refused it; it goes again behind that
 * one at the next retry pass, which keeps the publisher's order. WR_EEXIST:
 * an earlier attempt was enqueued.
 */
void wr_qq_landed(qq_t *q, uint64_t seq, int status)
{
    prop_t *p = wr_map_get(q->pubs, key_of(&seq));

    if (p == NULL)
        return;
    if (status == WR_AGAIN)
        need_retry(p);
    else
        prop_settle(p, status == WR_OK || status == WR_EEXIST);
}

static void propose_simple(qq_t *q, wr_qf_op_t op, uint64_t owner, wr_bytes_t tag)
{
    wr_qfifo_cmd_t cmd = {.op = op, .owner = owner, .tag = tag};

    if (wr_qq_propose(q, &cmd, NULL, NULL) == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s': out of memory proposing a command", (int)q->h.name.len,
                     (const char *)q->h.name.data);
}

void wr_qq_down(qq_t *q, uint64_t owner)
{
    propose_simple(q, WR_QF_DOWN, owner, (wr_bytes_t){NULL, 0});
}

/* ---------------------------------------------------------------- consumers */

qcons_t *wr_qq_cons_find(qq_t *q, uint64_t owner)
{
    wr_list_t *it;

    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        qcons_t *qc = wr_list_entry(it, qcons_t, link);

        if (qc->owner == owner)
            return qc;
    }
    return NULL;
}

static qcons_t *cons_new(qq_t *q, wr_bytes_t tag)
{
    qcons_t *qc = calloc(1, sizeof(*qc));

    if (qc == NULL)
        return NULL;
    qc->owner = new_id(q->s);
    qc->tag.len = tag.len < sizeof(qc->tagbuf) ? tag.len : sizeof(qc->tagbuf);
    if (qc->tag.len > 0)
        memcpy(qc->tagbuf, tag.data, qc->tag.len);
    qc->tag.data = qc->tagbuf;
    wr_list_init(&qc->held);
    wr_list_insert_tail(&q->consumers, &qc->link);
    return qc;
}

static void held_drop(qcons_t *qc)
{
    while (!wr_list_empty(&qc->held)) {
        qheld_t *h = wr_list_entry(qc->held.next, qheld_t, link);

        wr_list_remove(&h->link);
        wr_message_unref(h->m);
        free(h);
    }
}

/* Forgotten here once the machine may forget it and nothing of it is unsettled. */
static void cons_maybe_free(qq_t *q, qcons_t *qc)
{
    if (qc->c != NULL || qc->fn != NULL || qc->unacked > 0 || qc->settle_props > 0 || qc->down_wanted)
        return;
    for (int k = 0; k < QS_KINDS; k++)
        if (qc->ids[k].len > 0)
            return;
    held_drop(qc);
    for (int k = 0; k < QS_KINDS; k++)
        wr_buf_free(&qc->ids[k]);
    wr_list_remove(&qc->link);
    free(qc);
}

static void hand(qq_t *q, qcons_t *qc, wr_message_t *m, uint64_t id, bool redelivered)
{
    wr_qtoken_t t = {{qc->owner, id, 0, 0}, 0, {0, 0}, false};
    wr_consumer_t *c = qc->c;

    if (c->no_ack) {
        q->h.stats.deliver_no_ack++;
        wr_buf_put_u64(&qc->ids[QS_SETTLE], id);
    } else {
        q->h.stats.deliver++;
        qc->unacked++;
        c->unacked++;
    }
    q->h.stats.redeliver += redelivered;
    c->ops->deliver(c, m, &t, redelivered);
}

void wr_qq_deliver(qq_t *q, qcons_t *qc, wr_message_t *m, uint64_t id, bool redelivered)
{
    qheld_t *h;

    if (qc->c != NULL && wr_list_empty(&qc->held) && qc->c->ops->can_take(qc->c)) {
        hand(q, qc, m, id, redelivered);
    } else if ((h = malloc(sizeof(*h))) != NULL) {
        *h = (qheld_t){.m = m, .id = id, .redelivered = redelivered};
        wr_list_insert_tail(&qc->held, &h->link);
        if (!q->h.closed && !on_run_list(&q->h))
            wr_queue_sched_add(&q->h);
    } else {
        wr_message_unref(m);
        wr_buf_put_u64(&qc->ids[QS_RETURN], id);
    }
    if (qc->c != NULL && qc->c->no_ack && !q->flushing) {
        q->flushing = true;
        event_active(q->flush_ev, 0, 0);
    }
}

/* A consumer's batched settlements leave as one command per kind. */
static void flush_cons(qq_t *q, qcons_t *qc)
{
    static const wr_qf_op_t ops[QS_KINDS] = {WR_QF_SETTLE, WR_QF_RETURN, WR_QF_DISCARD};

    for (int k = 0; k < QS_KINDS; k++) {
        wr_qfifo_cmd_t cmd = {.op = ops[k], .owner = qc->owner, .tag = qc->tag};

        if (qc->ids[k].len == 0)
            continue;
        cmd.ids = (wr_bytes_t){qc->ids[k].data, qc->ids[k].len};
        if (wr_qq_propose(q, &cmd, NULL, NULL) == WR_ENOMEM)
            wr_log_error("quorum queue '%.*s': out of memory settling deliveries", (int)q->h.name.len,
                         (const char *)q->h.name.data);
        wr_buf_reset(&qc->ids[k]);
    }
}

void wr_qq_cons_down(qq_t *q, qcons_t *qc)
{
    if (qc->down)
        return;
    qc->down = true;
    flush_cons(q, qc);
    if (qc->settle_props > 0)
        qc->down_wanted = true;
    else
        wr_qq_down(q, qc->owner);
}

/* Every consumer's batched settlements leave now: before a command that must come after them. */
static void flush_all(qq_t *q)
{
    wr_list_t *it, *next;

    for (it = q->consumers.next; it != &q->consumers; it = next) {
        next = it->next;
        flush_cons(q, wr_list_entry(it, qcons_t, link));
        cons_maybe_free(q, wr_list_entry(it, qcons_t, link));
    }
}

/* Settlements batched during one loop pass leave as one command per consumer and kind. */
static void on_flush(evutil_socket_t fd, short what, void *ud)
{
    qq_t *q = ud;

    q->flushing = false;
    flush_all(q);
}

static void flush_soon(qq_t *q)
{
    if (!q->flushing) {
        q->flushing = true;
        event_active(q->flush_ev, 0, 0);
    }
}

void wr_qq_cons_settle_one(qq_t *q, qcons_t *qc, int kind, uint64_t id)
{
    if (qc->down)
        return; /* its DOWN hands it back */
    wr_buf_put_u64(&qc->ids[kind], id);
    flush_soon(q);
}

/* ---------------------------------------------------------------- the type */

static int qq_publish(wr_queue_t *h, wr_message_t *m, wr_confirm_t *conf)
{
    qq_t *q = qq(h);
    const wr_props_t *p = wr_message_props(m);
    wr_qfifo_cmd_t cmd = {
        .op = WR_QF_ENQUEUE, .owner = q->pub_id, .seq = ++q->next_seq, .ttl_ms = WR_QF_NO_TTL};
    int rc;

    if (q->s == NULL || h->closed)
        return WR_ENOENT;
    cmd.size = (uint32_t)m->body_size;
    if (p != NULL && (p->flags & WR_PROP_PRIORITY))
        cmd.priority = p->priority;
    if (p != NULL && (p->flags & WR_PROP_EXPIRATION))
        cmd.ttl_ms = expiration_ms(p->expiration);
    rc = wr_qq_propose(q, &cmd, m, conf);
    h->stats.publish += rc == WR_OK;
    return rc;
}

/* basic.get answers through get_async. */
static bool qq_get(wr_queue_t *h, bool no_ack, wr_message_t **m, wr_qtoken_t *t, bool *redelivered)
{
    return false;
}

static int qq_get_async(wr_queue_t *h, bool no_ack, wr_queue_got_fn fn, void *ud, wr_queue_get_t **out)
{
    qq_t *q = qq(h);
    qcons_t *qc;
    /* Even a no-ack get checks its message out, settled once handed over (answer_get): a DEQUEUE that
     * commits twice, or once its asker is gone, then takes nothing for good. */
    wr_qfifo_cmd_t cmd = {.op = WR_QF_DEQUEUE};
    int rc;

    if (q->s == NULL || h->closed)
        return WR_ENOENT;
    /* A reject with requeue just before must reach the machine first: the get may take it back. */
    flush_all(q);
    if ((qc = cons_new(q, (wr_bytes_t){NULL, 0})) == NULL)
        return WR_ENOMEM;
    qc->is_get = true;
    qc->no_ack = no_ack;
    qc->fn = fn;
    qc->ud = ud;
    cmd.owner = qc->owner;
    cmd.tag = qc->tag;
    if ((rc = wr_qq_propose(q, &cmd, NULL, NULL)) != WR_OK) {
        qc->fn = NULL;
        cons_maybe_free(q, qc);
        return WR_ENOMEM;
    }
    *out = (wr_queue_get_t *)qc;
    return WR_OK;
}

static void qq_get_cancel(wr_queue_get_t *g)
{
    ((qcons_t *)g)->fn = NULL;
}

static void qq_settle(wr_queue_t *h, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    qq_t *q = qq(h);
    qcons_t *qc = wr_qq_cons_find(q, t->w[0]);

    wr_message_unref(m);
    h->stats.ack += how == WR_SETTLE_ACK;
    if (qc == NULL)
        return; /* its owner went DOWN: the machine returned it already */
    qc->unacked--;
    if (how == WR_SETTLE_RELEASE && qc->c == NULL) {
        /* Its channel closed: everything it held goes back uncounted. */
        wr_qq_cons_down(q, qc);
    } else if (!qc->down) {
        int k = how == WR_SETTLE_ACK ? QS_SETTLE : how == WR_SETTLE_DISCARD ? QS_DISCARD : QS_RETURN;

        wr_buf_put_u64(&qc->ids[k], t->w[1]);
        flush_soon(q);
    }
    cons_maybe_free(q, qc);
}

/*
 * queue.purge: purge-ok once this node applies the PURGE, with the count the
 * machine dropped, as RabbitMQ answers once the leader applied it. Before,
 * purge-ok came at once, and a command sent after it through another node
 * could reach the log first: a consumer's acks there freed its credit and it
 * was sent a message the purge had counted.
 */
static int qq_purge_async(wr_queue_t *h, wr_queue_purged_fn fn, void *ud, wr_queue_purging_t **out)
{
    qq_t *q = qq(h);
    wr_qfifo_cmd_t cmd = {.op = WR_QF_PURGE};
    prop_t *p;
    int rc;

    if (q->s == NULL || h->closed)
        return WR_ENOENT;
    flush_all(q);
    if ((rc = propose(q, &cmd, NULL, NULL, fn, ud, &p)) != WR_OK)
        return rc == WR_ENOENT ? WR_ENOENT : WR_ENOMEM;
    *out = (wr_queue_purging_t *)p;
    return WR_OK;
}

static void qq_purge_cancel(wr_queue_purging_t *w)
{
    ((prop_t *)w)->purged = NULL;
}

void wr_qq_checkout(qq_t *q, qcons_t *qc)
{
    wr_consumer_t *c = qc->c;
    wr_qfifo_cmd_t cmd = {.op = WR_QF_CHECKOUT, .owner = qc->owner, .tag = qc->tag, .cprio = c->priority};

    /* A no-ack consumer settles each delivery as it goes: its window bounds what is in flight. */
    cmd.prefetch = c->no_ack ? 256 : c->prefetch;
    if (wr_qq_propose(q, &cmd, NULL, NULL) == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s': out of memory adding a consumer", (int)q->h.name.len,
                     (const char *)q->h.name.data);
}

static int qq_consume(wr_queue_t *h, wr_consumer_t *c)
{
    qq_t *q = qq(h);
    qcons_t *qc;

    if (q->s == NULL || h->closed)
        return WR_ENOENT;
    if ((qc = cons_new(q, c->tag)) == NULL)
        return WR_ENOMEM;
    qc->c = c;
    qc->no_ack = c->no_ack;
    c->refs++;
    c->queue = h;
    h->had_consumers = true;
    wr_qq_checkout(q, qc);
    return WR_OK;
}

/* A consumer of a channel is gone (or cancelled): deliveries held for it go back. */
static void cons_detach(qq_t *q, qcons_t *qc)
{
    wr_consumer_t *c = qc->c;

    qc->c = NULL;
    c->queue = NULL;
    wr_consumer_unref(c);
    if (!wr_list_empty(&qc->held) || qc->unacked == 0) {
        held_drop(qc);
        wr_qq_cons_down(q, qc);
    } else {
        propose_simple(q, WR_QF_CANCEL, qc->owner, qc->tag);
    }
    cons_maybe_free(q, qc);
}

static void qq_cancel(wr_queue_t *h, wr_consumer_t *c)
{
    qq_t *q = qq(h);
    wr_list_t *it;

    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        qcons_t *qc = wr_list_entry(it, qcons_t, link);

        if (qc->c == c) {
            cons_detach(q, qc);
            return;
        }
    }
}

static const wr_consumer_t *qq_active_consumer(const wr_queue_t *h)
{
    const qq_t *q = cqq(h);
    wr_list_t *it;

    if (!h->opts.single_active)
        return NULL;
    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        const qcons_t *qc = wr_list_entry(it, qcons_t, link);

        if (qc->c != NULL)
            return qc->c;
    }
    return NULL;
}

static void qq_foreach_consumer(const wr_queue_t *h, void (*fn)(void *ud, const wr_consumer_t *c), void *ud)
{
    const qq_t *q = cqq(h);
    wr_list_t *it;

    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        const qcons_t *qc = wr_list_entry(it, qcons_t, link);

        if (qc->c != NULL)
            fn(ud, qc->c);
    }
}

/* Deliveries held for busy channels go as their channels take them. */
static bool qq_dispatch(wr_queue_t *h, size_t batch)
{
    qq_t *q = qq(h);
    bool more = false;
    wr_list_t *it;

    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        qcons_t *qc = wr_list_entry(it, qcons_t, link);

        while (qc->c != NULL && batch > 0 && !wr_list_empty(&qc->held) && qc->c->ops->can_take(qc->c)) {
            qheld_t *hd = wr_list_entry(qc->held.next, qheld_t, link);

            wr_list_remove(&hd->link);
            hand(q, qc, hd->m, hd->id, hd->redelivered);
            free(hd);
            batch--;
        }
        more = more || (qc->c != NULL && !wr_list_empty(&qc->held) && batch == 0);
    }
    return more;
}

static void qq_wake(wr_queue_t *h)
{
    qq_t *q = qq(h);
    wr_list_t *it;

    if (h->closed || on_run_list(h))
        return;
    for (it = q->consumers.next; it != &q->consumers; it = it->next) {
        if (!wr_list_empty(&wr_list_entry(it, qcons_t, link)->held)) {
            wr_queue_sched_add(h);
            return;
        }
    }
}

static uint32_t ms32(int64_t v, uint32_t none)
{
    return v < 0 ? none : v >= (int64_t)none ? none - 1 : (uint32_t)v;
}

/* x-overflow, or the policy's, which wins for quorum queues (RabbitMQ's
 * policy_has_precedence); reject-publish-dlx acts as reject-publish. */
static uint8_t overflow_of(const wr_queue_limits_t *l)
{
    int o = l->policy_overflow >= 0 ? l->policy_overflow : (int)l->overflow;

    return o == WR_OVERFLOW_DROP_HEAD ? WR_QF_DROP_HEAD : WR_QF_REJECT_PUBLISH;
}

/* x-dead-letter-strategy (argument, else policy). At-least-once acts only with
 * reject-publish: otherwise the machine falls back to at-most-once, as RabbitMQ. */
static uint8_t dlx_strategy(const wr_queue_t *h, const wr_queue_limits_t *l, uint8_t overflow)
{
    if (!l->dead_letter)
        return WR_QF_DLX_NONE;
    if (l->dl_strategy != WR_DL_AT_LEAST_ONCE)
        return WR_QF_DLX_AT_MOST_ONCE;
    if (overflow != WR_QF_REJECT_PUBLISH)
        wr_log_warn("quorum queue '%.*s': dead-letter-strategy at-least-once needs overflow "
                    "reject-publish; dead-lettering at most once",
                    (int)h->name.len, (const char *)h->name.data);
    return WR_QF_DLX_AT_LEAST_ONCE;
}

static void qq_set_limits(wr_queue_t *h, const wr_queue_limits_t *l)
{
    qq_t *q = qq(h);
    wr_qfifo_cmd_t cmd = {.op = WR_QF_POLICY};
    wr_qfifo_policy_t *p = &cmd.policy;

    h->limits = *l;
    /* The machine times consumers out (cancelling only the stuck one, as
     * RabbitMQ 4.3): the channel must not close over a quorum delivery. */
    h->limits.consumer_timeout = -1;
    wr_qfifo_policy_default(p);
    p->max_length = l->max_length < 0 ? WR_QF_NONE : (uint64_t)l->max_length;
    p->max_bytes = l->max_length_bytes < 0 ? WR_QF_NONE : (uint64_t)l->max_length_bytes;
    p->overflow = overflow_of(l);
    h->limits.overflow = p->overflow == WR_QF_DROP_HEAD ? WR_OVERFLOW_DROP_HEAD : WR_OVERFLOW_REJECT_PUBLISH;
    p->dlx = dlx_strategy(h, l, p->overflow);
    p->single_active = h->opts.single_active;
    p->msg_ttl_ms = ms32(l->message_ttl, WR_QF_NO_TTL);
    if (l->delivery_limit >= 0)
        p->delivery_limit = ms32(l->delivery_limit, WR_QF_UNLIMITED);
    p->consumer_timeout_ms = l->consumer_timeout < 0 ? 0 : ms32(l->consumer_timeout, UINT32_MAX);
    wr_qq_expires_set(q, l->expires);
    if (q->pol_sent && memcmp(&q->pol, p, sizeof(*p)) == 0)
        return;
    q->pol = *p;
    q->pol_sent = true;
    if (wr_qq_propose(q, &cmd, NULL, NULL) == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s': out of memory setting its policy", (int)h->name.len,
                     (const char *)h->name.data);
}

static void qq_tick(wr_queue_t *h)
{
}

static void qq_info(const wr_queue_t *h, wr_queue_info_t *out)
{
    const qq_t *q = cqq(h);
    wr_qfifo_info_t i;

    wr_qfifo_info(q->sm, &i);
    memset(out, 0, sizeof(*out));
    out->ready = (size_t)i.ready;
    out->ready_bytes = i.ready_bytes;
    out->memory = i.ready_bytes;
    out->state = q->g != NULL ? "running" : "down";
    out->ready_ram = (wr_queue_tally_t){(size_t)i.ready, i.ready_bytes};
    out->ready_persistent = out->ready_ram;
    out->unacked.n = (size_t)i.checked_out;
    out->unacked_persistent.n = (size_t)i.checked_out;
}

static int qq_open_store(wr_queue_t *h, wr_queue_store_t *st, const char *logname, const char *what,
                         char *err, size_t errlen)
{
    return WR_OK; /* the Raft log is its store */
}

static const char *qq_store_name(const wr_queue_t *h)
{
    return NULL;
}

static void qq_close_store(wr_queue_t *h)
{
}

static wr_queue_t *qq_create(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s)
{
    return NULL; /* made only by wr_quorum_queue_new */
}

/* Its consumers are told and its group deleted; commands still pending keep it alive until they end. */
static size_t qq_close(wr_queue_t *h)
{
    qq_t *q = qq(h);
    wr_qfifo_info_t i;
    wr_list_t *it, *next;

    if (h->closed)
        return 0;
    wr_qfifo_info(q->sm, &i);
    h->closed = true;
    for (it = q->consumers.next; it != &q->consumers; it = next) {
        qcons_t *qc = wr_list_entry(it, qcons_t, link);
        wr_consumer_t *c = qc->c;

        next = it->next;
        held_drop(qc);
        get_fail(qc, WR_QUEUE_GOT_GONE);
        if (c != NULL) {
            qc->c = NULL;
            c->queue = NULL;
            c->ops->cancelled(c);
            wr_consumer_unref(c);
        }
    }
    h->nconsumers = 0;
    wr_list_remove(&h->run_node);
    event_del(q->open_ev);
    event_del(q->tick_ev);
    if (q->g != NULL)
        wr_rgroup_delete(q->g);
    q->g = NULL;
    return (size_t)i.ready;
}

static void qq_destroy(wr_queue_t *h)
{
    qq_t *q = qq(h);

    if (q->g != NULL)
        wr_rgroup_delete(q->g); /* never closed: its state machine goes now */
    while (!wr_list_empty(&q->consumers)) {
        qcons_t *qc = wr_list_entry(q->consumers.next, qcons_t, link);

        held_drop(qc);
        for (int k = 0; k < QS_KINDS; k++)
            wr_buf_free(&qc->ids[k]);
        wr_list_remove(&qc->link);
        free(qc);
    }
    wr_qq_bodies_free(q);
    wr_map_free(q->pubs);
    wr_qq_dlx_free(q);
    wr_qfifo_effects_free(&q->fx);
    wr_qfifo_free(q->sm);
    if (q->flush_ev != NULL) {
        event_free(q->flush_ev);
        event_free(q->retry_ev);
        event_free(q->tick_ev);
        event_free(q->open_ev);
    }
    wr_list_remove(&q->link);
    wr_qq_members_free(q);
    free(q->vhost);
    free(q);
}

const wr_queue_type_t wr_quorum_queue_type = {
    .name = "quorum",
    .validate_args = wr_classic_validate_args,
    .equiv_args = wr_classic_equiv_args,
    .create = qq_create,
    .open_store = qq_open_store,
    .store_name = qq_store_name,
    .close_store = qq_close_store,
    .close = qq_close,
    .destroy = qq_destroy,
    .publish = qq_publish,
    .get = qq_get,
    .get_async = qq_get_async,
    .get_cancel = qq_get_cancel,
    .settle = qq_settle,
    .purge_async = qq_purge_async,
    .purge_cancel = qq_purge_cancel,
    .consume = qq_consume,
    .cancel = qq_cancel,
    .active_consumer = qq_active_consumer,
    .foreach_consumer = qq_foreach_consumer,
    .dispatch = qq_dispatch,
    .wake = qq_wake,
    .set_limits = qq_set_limits,
    .tick = qq_tick,
    .touch = qq_tick,
    .info = qq_info,
};

/* ---------------------------------------------------------------- the group */

/* Owners of this node the machine still lists from an earlier run, or of nodes now gone. */
typedef struct {
    qq_t *q;
    uint32_t node; /* 0: this node's stale owners */
} sweep_t;

static void sweep_owner(void *ud, uint64_t owner)
{
    sweep_t *sw = ud;

    if (sw->node != 0 ? wr_qq_owner_node(owner) == sw->node
                      : wr_qq_owner_node(owner) == sw->q->s->self_id && wr_qq_cons_find(sw->q, owner) == NULL)
        wr_qq_down(sw->q, owner);
}

void wr_qq_sweep(qq_t *q, uint32_t node)
{
    sweep_t sw = {q, node};

    wr_qfifo_owners_foreach(q->sm, sweep_owner, &sw);
}

/* Opened outside the metadata group's apply, which is inside the driver's ready loop. */
static void on_open(evutil_socket_t fd, short what, void *ud)
{
    qq_t *q = ud;
    const char *first[9];
    wr_rgroup_sm_t sm;
    wr_list_t *it;

    if (q->s == NULL || q->h.closed)
        return;
    wr_qq_sm(&sm);
    q->g =
        wr_rgroup_open(q->s->d.raftd, q->group, first, wr_qq_first_voters(q, first), SNAPSHOT_EVERY, &sm, q);
    if (q->g == NULL) {
        wr_log_error("quorum queue '%.*s' in vhost '%s': its Raft group could not be opened",
                     (int)q->h.name.len, (const char *)q->h.name.data, q->vhost);
        return;
    }
    wr_qq_sweep(q, 0);
    for (it = q->props.next; it != &q->props; it = it->next) {
        prop_t *p = wr_list_entry(it, prop_t, link);

        if (p->retry)
            prop_send(p);
    }
    arm(q->tick_ev, TICK_EVERY_MS);
}

/* Leadership belongs on the first member (the locator's choice): the leader
 * hands it there whenever that node is up, at most every TRANSFER_EVERY_MS.
 * That places a new queue's leader and rebalances after a node returns. */
static void go_home(qq_t *q)
{
    const char *home = q->members[0];
    uint64_t now = wr_qq_mono_ms();

    if (!q->leader || q->g == NULL || strcmp(home, q->s->d.self) == 0 || now < q->next_transfer ||
        !wr_peer_up(q->s->d.links, home))
        return;
    q->next_transfer = now + TRANSFER_EVERY_MS;
    if (wr_rgroup_transfer(q->g, home) == WR_OK)
        wr_log_info("quorum queue '%.*s' in vhost '%s': handing leadership to %s", (int)q->h.name.len,
                    (const char *)q->h.name.data, q->vhost, home);
}

/*
 * Whether the machine holds something timed: ready messages with a TTL,
 * checked-out ones under a consumer timeout, an x-expires counting. Every
 * other entry carries the leader's time too, so an idle queue needs no tick.
 * Ticking regardless (the consumer timeout defaults to 30 minutes) wrote an
 * entry a second for every idle queue, which therefore never snapshotted,
 * and each of its entries kept a WAL file from being retired unread.
 */
static bool timed(const qq_t *q)
{
    const wr_qfifo_policy_t *p = &q->pol;
    wr_qfifo_info_t i;

    wr_qfifo_info(q->sm, &i);
    return (i.ready > 0 && (p->msg_ttl_ms != WR_QF_NO_TTL || q->expiring)) ||
           (i.checked_out > 0 && p->consumer_timeout_ms != 0) || wr_qq_expiry_ticks(q);
}

/* The leader stamps time into the machine: expiry and consumer timeouts. */
static void on_tick(evutil_socket_t fd, short what, void *ud)
{
    qq_t *q = ud;

    if (q->leader && timed(q))
        propose_simple(q, WR_QF_TICK, 0, (wr_bytes_t){NULL, 0});
    wr_qq_dlx_retry(q);
    go_home(q);
    wr_qq_members_tick(q);
    arm(q->tick_ev, TICK_EVERY_MS);
}

static bool qq_events(qq_t *q, struct event_base *base)
{
    q->flush_ev = event_new(base, -1, 0, on_flush, q);
    q->retry_ev = event_new(base, -1, 0, on_retry, q);
    q->tick_ev = event_new(base, -1, 0, on_tick, q);
    q->open_ev = event_new(base, -1, 0, on_open, q);
    return q->flush_ev != NULL && q->retry_ev != NULL && q->tick_ev != NULL && q->open_ev != NULL;
}

static bool qq_members(qq_t *q, const char *const *members, size_t n)
{
    if ((q->members = calloc(n, sizeof(*q->members))) == NULL)
        return false;
    for (q->nmembers = 0; q->nmembers < n; q->nmembers++)
        if ((q->members[q->nmembers] = strdup(members[q->nmembers])) == NULL)
            return false;
    return true;
}

wr_queue_t *wr_quorum_queue_new(wr_quorum_t *qs, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                                uint64_t group, const char *const *members, size_t n)
{
    qq_t *q = calloc(1, sizeof(*q) + name.len + o->args.len);
    wr_queue_opts_t oa = *o;
    wr_value_t v;

    if (q == NULL)
        return NULL;
    /* The metadata record carries the arguments only: the machine's policy needs this one. */
    oa.single_active = wr_table_get(o->args, "x-single-active-consumer", &v) && v.type == 't' && v.v.b;
    wr_queue_head_init(&q->h, &wr_quorum_queue_type, name, &oa, wr_vhost_sched(vh), q->data);
    wr_list_init(&q->consumers);
    wr_list_init(&q->props);
    wr_list_insert_tail(&qs->queues, &q->link);
    q->s = qs;
    q->group = group;
    q->pub_id = new_id(qs);
    q->fx = (wr_qfifo_effects_t)WR_QFIFO_EFFECTS_INIT;
    q->vhost = strdup(wr_vhost_name(vh));
    q->sm = wr_qfifo_new(0);
    q->bodies = wr_map_new();
    q->pubs = wr_map_new();
    q->dlx_out = wr_map_new();
    if (q->vhost == NULL || q->sm == NULL || q->bodies == NULL || q->pubs == NULL || q->dlx_out == NULL ||
        !qq_members(q, members, n) || !qq_events(q, qs->d.base)) {
        qq_destroy(&q->h);
        return NULL;
    }
    event_active(q->open_ev, 0, 0);
    return &q->h;
}

bool wr_quorum_queue_status(const wr_queue_t *h, wr_rgroup_status_t *st)
{
    const qq_t *q;

    if (h->type != &wr_quorum_queue_type || (q = cqq(h))->g == NULL)
        return false;
    wr_rgroup_status(q->g, st);
    return true;
}

/* ---------------------------------------------------------------- the service */

/* A node went away: the leader hands its consumers' messages to others. */
static void on_peer_down(void *ud, const char *node)
{
    wr_quorum_t *s = ud;
    uint32_t id = wr_raftd_node_id(node);
    wr_list_t *it;

    for (it = s->queues.next; it != &s->queues; it = it->next) {
        qq_t *q = wr_list_entry(it, qq_t, link);

        if (q->leader && !q->h.closed)
            wr_qq_sweep(q, id);
    }
}

uint64_t wr_quorum_pending_bytes(const wr_quorum_t *s)
{
    uint64_t n = 0;
    wr_list_t *it;

    if (s == NULL)
        return 0;
    for (it = s->queues.next; it != &s->queues; it = it->next)
        n += wr_list_entry(it, qq_t, link)->pending_bytes;
    return n > WR_QUORUM_PENDING_FREE ? n - WR_QUORUM_PENDING_FREE : 0;
}

wr_quorum_t *wr_quorum_new(const wr_quorum_deps_t *d)
{
    wr_quorum_t *s = calloc(1, sizeof(*s));
    wr_peer_watch_t w = {.on_down = on_peer_down, .ud = s};

    if (s == NULL)
        return NULL;
    s->d = *d;
    s->self_id = wr_raftd_node_id(d->self);
    s->next_id = (uint32_t)(wr_qq_now() * 1000003u);
    wr_list_init(&s->queues);
    wr_list_init(&s->waiting);
    if (d->links != NULL && wr_peer_links_watch(d->links, &w) != WR_OK) {
        free(s);
        return NULL;
    }
    return s;
}

/* Commands not in flight end now (a nack); those in flight when the driver closes. */
static void give_up(qq_t *q)
{
    wr_list_t *it, *next;

    wr_queue_ref(&q->h);
    for (it = q->props.next; it != &q->props; it = next) {
        prop_t *p = wr_list_entry(it, prop_t, link);

        next = it->next;
        if (p->inflight == 0)
            prop_settle(p, false);
    }
    wr_queue_unref(&q->h);
}

void wr_quorum_free(wr_quorum_t *s)
{
    if (s == NULL)
        return;
    while (!wr_list_empty(&s->queues)) {
        qq_t *q = wr_list_entry(s->queues.next, qq_t, link);

        /* Pending commands end with their done when the driver closes. */
        q->s = NULL;
        q->g = NULL;
        event_del(q->tick_ev);
        event_del(q->retry_ev);
        event_del(q->open_ev);
        wr_list_remove(&q->link);
        give_up(q);
    }
    free(s);
}
