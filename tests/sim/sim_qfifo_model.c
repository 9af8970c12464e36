/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue checker (--sm qfifo): a model of every message of a group,
 * advanced once per (group, index) by the command and the effects the first
 * applier computed there. A settlement fixes what must follow (ack: gone;
 * return: count + 1, or dead-lettered delivery_limit; discard: dead-lettered
 * rejected); a delivery needs a ready message and the exact count; the
 * machine's counters must equal the model's after every command; EXPIRED
 * comes on a TICK exactly when the queue has had no consumer, basic.get or
 * last consumer leaving for longer than its x-expires.
 */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "tests/sim/sim_qfifo.h"

static const char *const reasons[] = {"rejected", "expired", "maxlen", "delivery_limit"};
static const char *const states[] = {
    "ready", "checked out", "promised a dead letter", "awaiting DLX_SETTLE", "settled", "dead-lettered"};

static qm_msg_t *msg_find(const qm_t *m, uint64_t index)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->m[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->m[lo].index == index ? &m->m[lo] : NULL;
}

static qm_msg_t *msg_add(qm_t *m, uint64_t index)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        if ((m->m = realloc(m->m, m->cap * sizeof(*m->m))) == NULL)
            abort();
    }
    m->m[m->n] = (qm_msg_t){.index = index, .state = QM_READY};
    return &m->m[m->n++];
}

static bool tag_is(const char *tag, wr_bytes_t t)
{
    return t.len < QS_TAG_MAX && strlen(tag) == t.len && memcmp(tag, t.data, t.len) == 0;
}

static qm_con_t *con_find(const qm_t *m, uint64_t owner, wr_bytes_t tag)
{
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].owner == owner && tag_is(m->c[i].tag, tag))
            return &m->c[i];
    return NULL;
}

static qm_con_t *con_add(qm_t *m, uint64_t owner, wr_bytes_t tag)
{
    qm_con_t *c;

    if (m->nc == m->capc) {
        m->capc = m->capc ? m->capc * 2 : 8;
        if ((m->c = realloc(m->c, m->capc * sizeof(*m->c))) == NULL)
            abort();
    }
    c = &m->c[m->nc++];
    *c = (qm_con_t){.owner = owner};
    memcpy(c->tag, tag.data, tag.len < QS_TAG_MAX ? tag.len : QS_TAG_MAX - 1);
    return c;
}

/* Its messages go back to the queue (count unchanged) and the consumer goes. */
static void con_remove(qm_t *m, qm_con_t *c)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->m[i].state == QM_OUT && m->m[i].owner == c->owner && strcmp(m->m[i].tag, c->tag) == 0)
            m->m[i].state = QM_READY;
    *c = m->c[--m->nc];
}

/* The message consumer c holds as delivery did, or NULL. */
static qm_msg_t *held(const qm_t *m, const qm_con_t *c, uint64_t did)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->m[i].state == QM_OUT && m->m[i].did == did && m->m[i].owner == c->owner &&
            strcmp(m->m[i].tag, c->tag) == 0)
            return &m->m[i];
    return NULL;
}

/* What SETTLE, RETURN or DISCARD of x must lead to. */
static void settle_one(qm_t *m, qm_msg_t *x, wr_qf_op_t op)
{
    if (op == WR_QF_SETTLE) {
        x->state = QM_DONE;
    } else if (op == WR_QF_DISCARD) {
        x->state = QM_EXPECT;
        x->reason = WR_QF_DL_REJECTED;
    } else if (++x->count > m->delivery_limit && m->delivery_limit != WR_QF_UNLIMITED) {
        x->state = QM_EXPECT;
        x->reason = WR_QF_DL_DELIVERY_LIMIT;
    } else {
        x->state = QM_READY;
    }
}

static void settle(qm_t *m, qm_con_t *c, const wr_qfifo_cmd_t *cmd)
{
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++) {
        qm_msg_t *x = held(m, c, wr_qfifo_cmd_id(cmd, k));
        if (x != NULL) {
            c->nout--;
            settle_one(m, x, cmd->op);
        }
    }
    if (c->cancelled && c->nout == 0)
        *c = m->c[--m->nc];
}

/* ENQUEUE: the status must follow the model's sequence (a duplicate at or below the last used one, out
 * of sequence past a gap); what is enqueued comes in each publisher's order, without a gap. */
static void enqueue(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, int rc)
{
    uint64_t *last = &m->pub_last[cmd->owner <= QS_PUBS ? cmd->owner : 0];
    int want = cmd->seq <= *last ? WR_EEXIST : cmd->seq > *last + 1 ? WR_AGAIN : WR_OK;
    qm_msg_t *x;

    if (want != (rc == WR_EFULL ? WR_OK : rc))
        sim_fail(s, "qfifo g%d %llu: enqueue p%llu seq %llu (last %llu) gave status %d, not %d", g,
                 (unsigned long long)index, (unsigned long long)cmd->owner, (unsigned long long)cmd->seq,
                 (unsigned long long)*last, rc, want);
    if (rc == WR_EFULL)
        *last = cmd->seq;
    if (rc != WR_OK)
        return;
    *last = cmd->seq;
    x = msg_add(m, index);
    x->pub = cmd->owner;
    x->seq = cmd->seq;
}

static void dlx_settle(qm_t *m, const wr_qfifo_cmd_t *cmd)
{
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++)
        for (size_t i = 0; i < m->n; i++)
            if (m->m[i].state == QM_DLX_WAIT && m->m[i].dlx_id == wr_qfifo_cmd_id(cmd, k))
                m->m[i].state = QM_DEAD;
}

static void down(qm_t *m, uint64_t owner)
{
    for (size_t i = 0; i < m->nc;)
        if (m->c[i].owner == owner)
            con_remove(m, &m->c[i]);
        else
            i++;
}

/* Commands on a consumer: WR_ENOENT exactly when the model knows none. */
static void consumer_cmd(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, int rc)
{
    qm_con_t *c = con_find(m, cmd->owner, cmd->tag);

    if ((c == NULL) != (rc == WR_ENOENT) && cmd->op != WR_QF_CHECKOUT) {
        sim_fail(s, "qfifo g%d %llu: op %d of consumer %llu gave status %d, the model has %s", g,
                 (unsigned long long)index, cmd->op, (unsigned long long)cmd->owner, rc, c ? "it" : "none");
        return;
    }
    if (cmd->op == WR_QF_CHECKOUT && c == NULL)
        c = con_add(m, cmd->owner, cmd->tag);
    if (c == NULL)
        return;
    if (cmd->op == WR_QF_CHECKOUT || cmd->op == WR_QF_CREDIT)
        c->prefetch = cmd->prefetch;
    if (cmd->op == WR_QF_CHECKOUT)
        c->cancelled = false;
    if (cmd->op == WR_QF_CANCEL)
        c->cancelled = true;
    if (cmd->op == WR_QF_SETTLE || cmd->op == WR_QF_RETURN || cmd->op == WR_QF_DISCARD)
        settle(m, c, cmd);
    else if (c->cancelled && c->nout == 0)
        *c = m->c[--m->nc]; /* a cancelled consumer goes with its last message */
}

static void command(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, int rc)
{
    switch (cmd->op) {
    case WR_QF_ENQUEUE:
        enqueue(s, g, m, index, cmd, rc);
        break;
    case WR_QF_POLICY:
        m->delivery_limit = cmd->policy.delivery_limit;
        break;
    case WR_QF_DLX_SETTLE:
        dlx_settle(m, cmd);
        break;
    case WR_QF_DOWN:
        down(m, cmd->owner);
        break;
    case WR_QF_EXPIRES:
        m->expires = cmd->expires_ms;
        break;
    case WR_QF_TICK:
    case WR_QF_DEQUEUE:
    case WR_QF_PURGE:
        break;
    default:
        consumer_cmd(s, g, m, index, cmd, rc);
    }
}

/* The DELIVER's consumer: known, not cancelled and within its prefetch, unless it is this
 * DEQUEUE's getter (made by its first delivery). NULL for a no-ack get. */
static qm_con_t *deliver_to(sim_t *s, int g, qm_t *m, const wr_qfifo_cmd_t *cmd, const wr_qfifo_effect_t *f,
                            wr_bytes_t tag, bool *get)
{
    qm_con_t *c = con_find(m, f->owner, tag);

    if (*get && cmd->owner == f->owner && wr_bytes_eq(cmd->tag, tag)) {
        *get = false;
        if (cmd->no_ack)
            return NULL;
        if (c == NULL && (c = con_add(m, f->owner, tag)) != NULL)
            c->cancelled = true;
        return c;
    }
    if (c == NULL || c->cancelled)
        sim_fail(s, "qfifo g%d: message %llu delivered to %s consumer %llu", g, (unsigned long long)f->index,
                 c ? "a cancelled" : "an unknown", (unsigned long long)f->owner);
    else if (c->prefetch != 0 && c->nout >= c->prefetch)
        sim_fail(s, "qfifo g%d: consumer %llu holds %u, prefetch %u, and gets message %llu", g,
                 (unsigned long long)f->owner, c->nout, c->prefetch, (unsigned long long)f->index);
    return c;
}

/* A delivery needs a ready message with exactly the count and redelivered flag the model has. */
static void deliver(sim_t *s, int g, qm_t *m, const wr_qfifo_cmd_t *cmd, const wr_qfifo_effects_t *fx,
                    const wr_qfifo_effect_t *f, bool *get)
{
    qm_msg_t *x = msg_find(m, f->index);
    wr_bytes_t tag = wr_qfifo_effect_tag(fx, f);
    qm_con_t *c;

    if (x == NULL || x->state != QM_READY) {
        sim_fail(s, "qfifo g%d: message %llu delivered to %llu while %s (held by %llu)", g,
                 (unsigned long long)f->index, (unsigned long long)f->owner,
                 x == NULL ? "never enqueued" : states[x->state],
                 x != NULL && x->state == QM_OUT ? (unsigned long long)x->owner : 0ull);
        return;
    }
    if (f->count != x->count || f->redelivered != x->delivered)
        sim_fail(s, "qfifo g%d: message %llu delivered with count %u%s, the model has %u%s%s", g,
                 (unsigned long long)f->index, f->count, f->redelivered ? " redelivered" : "", x->count,
                 x->delivered ? " redelivered" : "", f->count < x->count ? ": the count went down" : "");
    x->delivered = true;
    if ((c = deliver_to(s, g, m, cmd, f, tag, get)) == NULL) {
        x->state = QM_DONE;
        return;
    }
    c->nout++;
    x->state = QM_OUT;
    x->owner = f->owner;
    x->did = f->id;
    memcpy(x->tag, c->tag, QS_TAG_MAX);
}

/* Discard and the delivery limit promise a reason; expiry and max-length take ready messages. */
static void dead_letter(sim_t *s, int g, qm_t *m, const wr_qfifo_effect_t *f)
{
    qm_msg_t *x = msg_find(m, f->index);
    bool promised = f->reason == WR_QF_DL_REJECTED || f->reason == WR_QF_DL_DELIVERY_LIMIT;

    if (x == NULL || f->reason > WR_QF_DL_DELIVERY_LIMIT ||
        (promised ? x->state != QM_EXPECT || x->reason != f->reason : x->state != QM_READY)) {
        sim_fail(s, "qfifo g%d: message %llu dead-lettered %s while %s", g, (unsigned long long)f->index,
                 f->reason <= WR_QF_DL_DELIVERY_LIMIT ? reasons[f->reason] : "?",
                 x ? states[x->state] : "never enqueued");
        return;
    }
    x->reason = f->reason;
    x->state = f->dlx == WR_QF_DLX_AT_LEAST_ONCE ? QM_DLX_WAIT : QM_DEAD;
    x->dlx_id = f->id;
}

static void confirm(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, int rc,
                    const wr_qfifo_effect_t *f)
{
    qm_msg_t *x = msg_find(m, index);
    bool reject = f->kind == WR_QFE_REJECT;

    if (cmd->op != WR_QF_ENQUEUE || f->owner != cmd->owner || f->seq != cmd->seq ||
        rc != (reject ? WR_EFULL : WR_OK) || (!reject && (x == NULL || x->confirmed))) {
        sim_fail(s, "qfifo g%d %llu: %s p%llu seq %llu unexpected (status %d)", g, (unsigned long long)index,
                 reject ? "reject" : "confirm", (unsigned long long)f->owner, (unsigned long long)f->seq, rc);
        return;
    }
    for (size_t i = 0; !reject && i < m->n; i++)
        if (m->m[i].confirmed && m->m[i].pub == f->owner && m->m[i].seq == f->seq)
            sim_fail(s, "qfifo g%d: enqueue p%llu seq %llu confirmed twice (at %llu and %llu)", g,
                     (unsigned long long)f->owner, (unsigned long long)f->seq,
                     (unsigned long long)m->m[i].index, (unsigned long long)index);
    if (!reject)
        x->confirmed = true;
}

/* RELEASE names the smallest live index: ready, checked out or awaiting a dead-letter confirm. */
static void release(sim_t *s, int g, const qm_t *m, const wr_qfifo_effect_t *f)
{
    uint64_t min = 0;

    for (size_t i = 0; i < m->n && min == 0; i++)
        if (m->m[i].state == QM_READY || m->m[i].state == QM_OUT || m->m[i].state == QM_DLX_WAIT)
            min = m->m[i].index;
    if (f->id != min)
        sim_fail(s, "qfifo g%d: RELEASE at %llu names %llu as the smallest live index, the model %llu", g,
                 (unsigned long long)f->index, (unsigned long long)f->id, (unsigned long long)min);
}

static void effect(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, int rc,
                   const wr_qfifo_effects_t *fx, const wr_qfifo_effect_t *f, bool *get)
{
    qm_con_t *c;

    switch (f->kind) {
    case WR_QFE_DELIVER:
        deliver(s, g, m, cmd, fx, f, get);
        break;
    case WR_QFE_CONFIRM:
    case WR_QFE_REJECT:
        confirm(s, g, m, index, cmd, rc, f);
        break;
    case WR_QFE_DEADLETTER:
        dead_letter(s, g, m, f);
        break;
    case WR_QFE_CANCEL:
    case WR_QFE_ACTIVE:
        if ((c = con_find(m, f->owner, wr_qfifo_effect_tag(fx, f))) == NULL)
            sim_fail(s, "qfifo g%d %llu: effect %d names unknown consumer %llu", g, (unsigned long long)index,
                     f->kind, (unsigned long long)f->owner);
        else if (f->kind == WR_QFE_CANCEL)
            con_remove(m, c);
        break;
    case WR_QFE_RELEASE:
        release(s, g, m, f);
        break;
    case WR_QFE_EXPIRED:
        break; /* judged once every effect is in (expiry) */
    }
}

/* The use x-expires counts from (had: consumers before the command), and
 * whether the machine's EXPIRED (or its absence) is right. */
static void expiry(sim_t *s, int g, qm_t *m, uint64_t index, const wr_qfifo_cmd_t *cmd, size_t had,
                   const wr_qfifo_effects_t *fx)
{
    bool want, got = false;

    if (m->last_active == 0 || cmd->op == WR_QF_DEQUEUE || (had > 0 && m->nc == 0))
        m->last_active = m->now;
    want = cmd->op == WR_QF_TICK && m->expires != 0 && m->nc == 0 && m->now - m->last_active > m->expires;
    for (size_t i = 0; i < fx->n; i++)
        got = got || fx->v[i].kind == WR_QFE_EXPIRED;
    if (got != want)
        sim_fail(
            s,
            "qfifo g%d %llu: EXPIRED %s; the model: x-expires %llu, last use %llu, now %llu, %zu consumers",
            g, (unsigned long long)index, got ? "given" : "missing", (unsigned long long)m->expires,
            (unsigned long long)m->last_active, (unsigned long long)m->now, m->nc);
}

/* After the command: no promise left open, and the machine's counters are the model's. */
static void counters(sim_t *s, int g, uint64_t index, const qm_t *m, const wr_qfifo_t *q)
{
    uint64_t n[QM_DEAD + 1] = {0};
    wr_qfifo_info_t info;

    for (size_t i = 0; i < m->n; i++)
        n[m->m[i].state]++;
    wr_qfifo_info(q, &info);
    if (n[QM_EXPECT] != 0)
        sim_fail(s, "qfifo g%d %llu: a discarded or returned message was not dead-lettered as settled", g,
                 (unsigned long long)index);
    else if (info.ready != n[QM_READY] || info.checked_out != n[QM_OUT] ||
             info.dlx_pending != n[QM_DLX_WAIT] || info.consumers != m->nc)
        sim_fail(s,
                 "qfifo g%d %llu: the machine has %llu ready, %llu out, %llu dead letters pending, %llu "
                 "consumers; "
                 "the model %llu, %llu, %llu, %zu",
                 g, (unsigned long long)index, (unsigned long long)info.ready,
                 (unsigned long long)info.checked_out, (unsigned long long)info.dlx_pending,
                 (unsigned long long)info.consumers, (unsigned long long)n[QM_READY],
                 (unsigned long long)n[QM_OUT], (unsigned long long)n[QM_DLX_WAIT], m->nc);
}

void sim_qfifo_model_apply(sim_t *s, int g, uint64_t index, uint64_t time_ms, const wr_qfifo_cmd_t *cmd,
                           int rc, const wr_qfifo_effects_t *fx, const wr_qfifo_t *q)
{
    qm_t *m = &s->qfifo->g[g].model;
    bool get = cmd->op == WR_QF_DEQUEUE;
    size_t had = m->nc;

    if (rc == WR_ENOMEM)
        abort();
    if (time_ms > m->now)
        m->now = time_ms;
    command(s, g, m, index, cmd, rc);
    for (size_t i = 0; i < fx->n && !s->failed; i++)
        effect(s, g, m, index, cmd, rc, fx, &fx->v[i], &get);
    if (!s->failed)
        expiry(s, g, m, index, cmd, had, fx);
    if (!s->failed)
        counters(s, g, index, m, q);
}

bool sim_qfifo_model_drained(const qm_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->m[i].state != QM_DONE && m->m[i].state != QM_DEAD)
            return false;
    return true;
}

void sim_qfifo_model_final(sim_t *s, int g)
{
    const qm_t *m = &s->qfifo->g[g].model;

    for (size_t i = 0; i < m->n && !s->failed; i++)
        if (m->m[i].confirmed && m->m[i].state != QM_DONE && m->m[i].state != QM_DEAD)
            sim_fail(
                s,
                "qfifo g%d: confirmed enqueue p%llu seq %llu (index %llu) neither settled nor dead-lettered",
                g, (unsigned long long)m->m[i].pub, (unsigned long long)m->m[i].seq,
                (unsigned long long)m->m[i].index);
}

void sim_qfifo_model_free(qm_t *m)
{
    free(m->m);
    free(m->c);
    memset(m, 0, sizeof(*m));
}
