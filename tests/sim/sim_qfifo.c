/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue group in the simulator (--sm qfifo): every member applies
 * the committed entries to its own wr_qfifo_t; simulated clients (publishers
 * with (id, seq) that resend after a leader change, consumers with prefetch,
 * a getter, the at-least-once dead-letter worker, the leader's TICK and
 * POLICY) propose encoded commands through the leader with its time in them.
 * The first member to apply an index defines its status and effects, which
 * feed the model (sim_qfifo_model.c); every other member must match them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/status.h"
#include "tests/sim/sim_qfifo.h"

#define RETRY      150 /* steps a client waits for its command before proposing it again */
#define RESEND     600 /* steps before unconfirmed enqueues go again to the same leader */
#define TICK_EVERY 50
#define BACKLOG    48 /* a leader with more uncommitted entries refuses clients (flow control) */
#define MAX_IDS    6  /* ids per settlement */
#define SNAP_EVERY 4  /* a member's state is compared with the first applier's at every 4th index */

void qs_list_add(qs_list_t *l, uint64_t id)
{
    if (qs_list_find(l, id) != NULL)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL)
            abort();
    }
    l->v[l->n++] = (qs_item_t){id, 0};
}

/* Keeps the order (a publisher's pending seqs stay ascending). */
void qs_list_del(qs_list_t *l, uint64_t id)
{
    qs_item_t *x = qs_list_find(l, id);

    if (x == NULL)
        return;
    memmove(x, x + 1, (size_t)(l->v + l->n - x - 1) * sizeof(*x));
    l->n--;
}

qs_item_t *qs_list_find(const qs_list_t *l, uint64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].id == id)
            return &l->v[i];
    return NULL;
}

static bool due(const sim_t *s, uint64_t asked, uint64_t wait)
{
    return asked == 0 || s->now >= asked + wait;
}

/* ---- policy, drawn per seed ---- */

static void draw_policy(sim_t *s, wr_qfifo_policy_t *p)
{
    static const uint32_t limit[] = {1, 3, 20, WR_QF_UNLIMITED}, ttl[] = {WR_QF_NO_TTL, 60, 400};
    static const uint64_t maxlen[] = {WR_QF_NONE, 4, 20};

    wr_qfifo_policy_default(p);
    p->delivery_limit = limit[sim_rand_int(s, 4)];
    p->max_length = maxlen[sim_rand_int(s, 3)];
    p->overflow = (uint8_t)sim_rand_int(s, 2);
    p->dlx = (uint8_t)sim_rand_int(s, 3);
    p->msg_ttl_ms = ttl[sim_rand_int(s, 3)];
    p->single_active = sim_chance(s, 250);
    p->consumer_timeout_ms = sim_chance(s, 300) ? 300 : 0;
}

/* A policy change mid-run: proposed until applied. */
static void change_policy(sim_t *s, qs_group_t *G)
{
    draw_policy(s, &G->policy);
    G->policy_pending = true;
    G->policy_asked = 0;
}

static bool policy_eq(const wr_qfifo_policy_t *a, const wr_qfifo_policy_t *b)
{
    return a->max_length == b->max_length && a->max_bytes == b->max_bytes && a->overflow == b->overflow &&
           a->dlx == b->dlx && a->single_active == b->single_active && a->msg_ttl_ms == b->msg_ttl_ms &&
           a->delivery_limit == b->delivery_limit && a->consumer_timeout_ms == b->consumer_timeout_ms;
}

/* ---- setup ---- */

static void group_init(sim_t *s, qs_group_t *G)
{
    static const uint32_t prefetch[] = {0, 1, 2, 5};

    G->next_owner = QS_OWNER0;
    for (int i = 0; i < QS_PUBS; i++)
        G->pubs[i] = (qs_pub_t){.owner = (uint64_t)i + 1, .next_seq = 1};
    for (int i = 0; i < QS_CLIENTS; i++) {
        qs_client_t *c = &G->cl[i];
        c->owner = G->next_owner++;
        snprintf(c->tag, sizeof(c->tag), "%c%d", i == QS_GETTER ? 'g' : 'c', i);
        c->prefetch = prefetch[sim_rand_int(s, 4)];
    }
    draw_policy(s, &G->policy);
    G->policy_pending = true;
    G->model.delivery_limit = WR_QF_DEFAULT_DLIMIT;
}

void sim_qfifo_new(sim_t *s)
{
    static const int act[] = {50, 150, 300};
    sim_qfifo_t *q = calloc(1, sizeof(*q));

    if (q == NULL || (q->g = calloc((size_t)s->o.groups, sizeof(*q->g))) == NULL)
        abort();
    q->groups = s->o.groups;
    q->fx = (wr_qfifo_effects_t)WR_QFIFO_EFFECTS_INIT;
    q->buf = (wr_buf_t)WR_BUF_INIT;
    q->act_pm = act[sim_rand_int(s, 3)];
    s->qfifo = q;
    for (int g = 0; g < s->o.groups; g++)
        group_init(s, &q->g[g]);
    sim_trace(s, "qfifo: %d client actions per mille per step", q->act_pm);
}

void sim_qfifo_free(sim_t *s)
{
    sim_qfifo_t *q = s->qfifo;

    for (int g = 0; q != NULL && g < q->groups; g++) {
        qs_group_t *G = &q->g[g];
        for (int i = 0; i < QS_PUBS; i++)
            free(G->pubs[i].pending.v);
        for (int i = 0; i < QS_CLIENTS; i++)
            free(G->cl[i].held.v);
        free(G->downs.v);
        free(G->dlx.v);
        free(G->rec);
        sim_qfifo_model_free(&G->model);
    }
    if (q != NULL) {
        free(q->g);
        wr_qfifo_effects_free(&q->fx);
        wr_buf_free(&q->buf);
    }
    free(q);
    s->qfifo = NULL;
}

/* ---- proposing through the leader ---- */

/* A node's clock: the simulated time, skewed per node (the machine keeps the highest it saw). */
static uint64_t clock_of(const sim_t *s, int node)
{
    return s->now + (s->o.seed * 7 + (uint64_t)node * 13) % 30;
}

/* Proposes cmd to group g's leader (as clients believe it), with the leader's time; false if
 * there is none or it is too far behind (the client tries again later, as under flow control). */
static bool send_cmd(sim_t *s, int g, const wr_qfifo_cmd_t *cmd)
{
    int l = sim_leader_of(s, g);
    wr_buf_t *b = &s->qfifo->buf;
    wr_raft_status_t st;

    if (l == 0)
        return false;
    wr_raft_status(s->nodes[l].g[g].raft, &st);
    if (st.last_index > st.commit + BACKLOG)
        return false;
    wr_buf_reset(b);
    if (!wr_qfifo_cmd_put(b, clock_of(s, l), cmd) || !wr_buf_ok(b))
        abort();
    return sim_propose(s, g, l, b->data, b->len);
}

static bool send_ids(sim_t *s, int g, wr_qf_op_t op, const qs_client_t *c, const uint64_t *ids, size_t n)
{
    uint8_t packed[MAX_IDS * 8];
    wr_qfifo_cmd_t cmd = {.op = op, .ids = {packed, n * 8}};

    if (c != NULL) {
        cmd.owner = c->owner;
        cmd.tag = wr_bytes_str(c->tag);
    }
    wr_qfifo_ids_pack(packed, ids, n);
    return send_cmd(s, g, &cmd);
}

/* ---- publishers ---- */

static bool enqueue(sim_t *s, int g, const qs_pub_t *p, uint64_t seq)
{
    wr_qfifo_cmd_t cmd = {.op = WR_QF_ENQUEUE,
                          .owner = p->owner,
                          .seq = seq,
                          .size = 10 + (uint32_t)(seq % 90),
                          .priority = (uint8_t)(seq * 7 % 10),
                          .ttl_ms = seq % 5 == 0 ? 200 : WR_QF_NO_TTL};

    return send_cmd(s, g, &cmd);
}

/* Unconfirmed enqueues go again, in order, to a leader they did not go to (or after long): one that
 * reached the log past a lost one was refused (out of sequence) and is applied after it this time. */
static bool resend(sim_t *s, int g, qs_pub_t *p)
{
    int l = sim_leader_of(s, g);
    wr_raft_status_t st;
    bool moved;

    if (l == 0)
        return false;
    wr_raft_status(s->nodes[l].g[g].raft, &st);
    if (p->pending.n == 0 || (p->node == l && p->term == st.term && !due(s, p->pending.v[0].asked, RESEND)))
        return true;
    moved = p->node != l || p->term != st.term;
    p->node = l;
    p->term = st.term;
    /* Sometimes the resend comes late, after a new enqueue reached the new leader first (in warren,
     * an attempt forwarded to a leader that died): that one lands past a gap and must be refused. */
    if (moved && sim_chance(s, 250)) {
        for (size_t i = 0; i < p->pending.n; i++)
            p->pending.v[i].asked = s->now;
        return true;
    }
    for (size_t i = 0; i < p->pending.n; i++) {
        p->pending.v[i].asked = s->now;
        if (!enqueue(s, g, p, p->pending.v[i].id)) {
            p->node = 0;
            return false;
        }
    }
    return true;
}

static void publish(sim_t *s, int g, qs_pub_t *p)
{
    uint64_t seq;

    if (!resend(s, g, p) || s->heal || p->pending.n >= 8)
        return;
    seq = p->next_seq++;
    qs_list_add(&p->pending, seq);
    p->pending.v[p->pending.n - 1].asked = s->now;
    if (!enqueue(s, g, p, seq))
        p->node = 0;
}

/* ---- consumers and the getter ---- */

/* A consumer's basic.consume, or the getter's basic.get; proposed again until applied. */
static void join(sim_t *s, int g, qs_client_t *c, bool getter)
{
    wr_qfifo_cmd_t cmd = {.op = getter ? WR_QF_DEQUEUE : WR_QF_CHECKOUT,
                          .owner = c->owner,
                          .tag = wr_bytes_str(c->tag),
                          .prefetch = c->prefetch,
                          .cprio = sim_rand_int(s, 2),
                          .no_ack = sim_chance(s, 300)};

    if ((c->state == QS_JOINING && !due(s, c->asked, RETRY)) || (getter && c->held.n >= 3))
        return;
    c->state = QS_JOINING;
    c->asked = s->now;
    send_cmd(s, g, &cmd);
}

/* Settles up to MAX_IDS held deliveries one way: ack mostly; return and discard (never when draining). */
static void settle(sim_t *s, int g, qs_client_t *c)
{
    static const wr_qf_op_t ops[] = {WR_QF_SETTLE, WR_QF_SETTLE, WR_QF_SETTLE,
                                     WR_QF_RETURN, WR_QF_RETURN, WR_QF_DISCARD};
    wr_qf_op_t op = s->heal ? WR_QF_SETTLE : ops[sim_rand_int(s, 6)];
    uint64_t ids[MAX_IDS];
    size_t n = 0;

    for (size_t i = 0; i < c->held.n && n < MAX_IDS; i++) {
        if (due(s, c->held.v[i].asked, RETRY) && (s->heal || sim_chance(s, 600))) {
            c->held.v[i].asked = s->now;
            ids[n++] = c->held.v[i].id;
        }
    }
    if (n > 0)
        send_ids(s, g, op, c, ids, n);
}

/* A consumer's odd moves: new prefetch, basic.cancel. */
static void fiddle(sim_t *s, int g, qs_client_t *c)
{
    wr_qfifo_cmd_t cmd = {.op = WR_QF_CREDIT, .owner = c->owner, .tag = wr_bytes_str(c->tag)};

    if (c->state != QS_UP)
        return;
    if (sim_chance(s, 500)) {
        cmd.op = WR_QF_CANCEL;
    } else {
        c->prefetch = (uint32_t)sim_rand_int(s, 4);
        cmd.prefetch = c->prefetch;
    }
    send_cmd(s, g, &cmd);
}

/* The client's channel goes: DOWN (proposed until applied), and it comes back on a new one. */
static void retire(sim_t *s, qs_group_t *G, qs_client_t *c)
{
    qs_list_add(&G->downs, c->owner);
    sim_trace(s, "qfifo client %s: channel %llu down, now %llu", c->tag, (unsigned long long)c->owner,
              (unsigned long long)G->next_owner);
    c->owner = G->next_owner++;
    c->state = QS_OFF;
    c->held.n = 0;
}

static void client_act(sim_t *s, int g, qs_client_t *c)
{
    bool getter = c - s->qfifo->g[g].cl == QS_GETTER;

    settle(s, g, c);
    if (c->state == QS_OFF || c->state == QS_JOINING ||
        (c->state == QS_CANCELLED && (s->heal || sim_chance(s, 300))))
        join(s, g, c, getter);
    else if (!s->heal && !getter && sim_chance(s, 50))
        fiddle(s, g, c);
}

/* ---- the leader's chores and the dead-letter worker ---- */

/* The POLICY until applied, and the leader's periodic TICK. */
static void chores(sim_t *s, int g, qs_group_t *G)
{
    if (G->policy_pending && due(s, G->policy_asked, RETRY)) {
        wr_qfifo_cmd_t cmd = {.op = WR_QF_POLICY, .policy = G->policy};
        G->policy_asked = s->now;
        send_cmd(s, g, &cmd);
    }
    if (sim_chance(s, 5)) { /* x-expires changes now and then: 0 (none), or a few ticks */
        static const uint64_t expires[] = {0, TICK_EVERY, 4 * TICK_EVERY};
        wr_qfifo_cmd_t cmd = {.op = WR_QF_EXPIRES, .expires_ms = expires[sim_rand_int(s, 3)]};
        send_cmd(s, g, &cmd);
    }
    if (s->now >= G->next_tick) {
        wr_qfifo_cmd_t cmd = {.op = WR_QF_TICK};
        G->next_tick = s->now + TICK_EVERY;
        send_cmd(s, g, &cmd);
    }
}

/* DOWNs of retired channels and confirms of at-least-once dead letters, until applied. */
static void retries(sim_t *s, int g, qs_group_t *G)
{
    uint64_t ids[MAX_IDS];
    size_t n = 0;

    for (size_t i = 0; i < G->downs.n; i++) {
        wr_qfifo_cmd_t cmd = {.op = WR_QF_DOWN, .owner = G->downs.v[i].id};
        if (!due(s, G->downs.v[i].asked, RETRY))
            continue;
        G->downs.v[i].asked = s->now;
        send_cmd(s, g, &cmd);
    }
    for (size_t i = 0; i < G->dlx.n && n < MAX_IDS; i++) {
        if (!due(s, G->dlx.v[i].asked, RETRY))
            continue;
        G->dlx.v[i].asked = s->now;
        ids[n++] = G->dlx.v[i].id;
    }
    if (n > 0)
        send_ids(s, g, WR_QF_DLX_SETTLE, NULL, ids, n);
}

static bool group_drained(const qs_group_t *G)
{
    for (int i = 0; i < QS_PUBS; i++)
        if (G->pubs[i].pending.n != 0)
            return false;
    return G->downs.n == 0 && G->dlx.n == 0 && !G->policy_pending && sim_qfifo_model_drained(&G->model);
}

/* Draining stops once the group is drained: a quiet log lets slow snapshot transfers finish. */
static void group_step(sim_t *s, int g, qs_group_t *G)
{
    int pick;

    if (s->heal && group_drained(G))
        return;
    chores(s, g, G);
    retries(s, g, G);
    for (int i = 0; i < QS_PUBS && s->heal; i++)
        publish(s, g, &G->pubs[i]); /* draining: resends only */
    for (int i = 0; i < QS_CLIENTS && s->heal; i++)
        client_act(s, g, &G->cl[i]);
    if (s->heal || !sim_chance(s, s->qfifo->act_pm))
        return;
    pick = sim_rand_int(s, 100);
    if (pick < 45)
        publish(s, g, &G->pubs[sim_rand_int(s, QS_PUBS)]);
    else if (pick < 97)
        client_act(s, g, &G->cl[sim_rand_int(s, QS_CLIENTS)]);
    else if (pick < 99)
        retire(s, G, &G->cl[sim_rand_int(s, QS_CLIENTS)]);
    else
        change_policy(s, G);
}

void sim_qfifo_step(sim_t *s)
{
    for (int g = 0; g < s->o.groups; g++)
        group_step(s, g, &s->qfifo->g[g]);
}

/* ---- what the first applier's command and effects tell the clients ---- */

static qs_client_t *client_of(qs_group_t *G, uint64_t owner, wr_bytes_t tag)
{
    for (int i = 0; i < QS_CLIENTS; i++)
        if (G->cl[i].owner == owner && wr_bytes_eq_str(tag, G->cl[i].tag))
            return &G->cl[i];
    return NULL;
}

static bool current_owner(const qs_group_t *G, uint64_t owner)
{
    for (int i = 0; i < QS_CLIENTS; i++)
        if (G->cl[i].owner == owner)
            return true;
    return false;
}

static void notify_cmd(qs_group_t *G, const wr_qfifo_cmd_t *cmd)
{
    qs_client_t *c = client_of(G, cmd->owner, cmd->tag);

    if ((cmd->op == WR_QF_CHECKOUT || cmd->op == WR_QF_DEQUEUE) && !current_owner(G, cmd->owner))
        qs_list_add(&G->downs, cmd->owner); /* a retired channel's late command: DOWN it again */
    if (cmd->op == WR_QF_DOWN)
        qs_list_del(&G->downs, cmd->owner);
    if (cmd->op == WR_QF_POLICY && policy_eq(&cmd->policy, &G->policy))
        G->policy_pending = false;
    for (size_t k = 0; cmd->op == WR_QF_DLX_SETTLE && k < wr_qfifo_cmd_nids(cmd); k++)
        qs_list_del(&G->dlx, wr_qfifo_cmd_id(cmd, k));
    if (c == NULL)
        return;
    if (cmd->op == WR_QF_CHECKOUT && c->state == QS_JOINING)
        c->state = QS_UP;
    if (cmd->op == WR_QF_DEQUEUE || cmd->op == WR_QF_CANCEL)
        c->state = cmd->op == WR_QF_CANCEL ? QS_CANCELLED : QS_OFF;
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd) && cmd->op != WR_QF_DLX_SETTLE; k++)
        qs_list_del(&c->held, wr_qfifo_cmd_id(cmd, k));
}

static void notify_effect(qs_group_t *G, const wr_qfifo_cmd_t *cmd, const wr_qfifo_effects_t *fx,
                          const wr_qfifo_effect_t *f)
{
    qs_client_t *c = client_of(G, f->owner, wr_qfifo_effect_tag(fx, f));
    /* Delivery ids start at 0; a no-ack get's delivery has id 0 too, but nothing to settle. */
    bool settled = cmd->op == WR_QF_DEQUEUE && cmd->no_ack && f->owner == cmd->owner;

    if ((f->kind == WR_QFE_CONFIRM || f->kind == WR_QFE_REJECT) && f->owner >= 1 && f->owner <= QS_PUBS)
        qs_list_del(&G->pubs[f->owner - 1].pending, f->seq);
    if (f->kind == WR_QFE_DEADLETTER && f->dlx == WR_QF_DLX_AT_LEAST_ONCE)
        qs_list_add(&G->dlx, f->id);
    if (c != NULL && f->kind == WR_QFE_DELIVER && !settled)
        qs_list_add(&c->held, f->id);
    if (c != NULL && f->kind == WR_QFE_CANCEL) {
        c->state = QS_OFF;
        c->held.n = 0;
    }
}

/* ---- applying ---- */

static uint32_t fx_hash(int rc, const wr_qfifo_effects_t *fx)
{
    uint32_t h = wr_crc32c_update(0, &rc, sizeof(rc));

    for (size_t i = 0; i < fx->n; i++) {
        const wr_qfifo_effect_t *f = &fx->v[i];
        uint64_t v[] = {f->kind,  f->redelivered, f->reason, f->dlx, f->size,   f->count,
                        f->owner, f->id,          f->index,  f->seq, f->tag_len};
        wr_bytes_t tag = wr_qfifo_effect_tag(fx, f);
        h = wr_crc32c_update(h, v, sizeof(v));
        h = wr_crc32c_update(h, tag.data, tag.len);
    }
    return h;
}

static wr_qfifo_t *machine(sim_sm_t *sm)
{
    if (sm->qf == NULL && (sm->qf = wr_qfifo_new(64)) == NULL)
        abort();
    return sm->qf;
}

static uint32_t snap_hash(sim_t *s, sim_sm_t *sm)
{
    wr_buf_t *b = &s->qfifo->buf;

    wr_buf_reset(b);
    if (!wr_qfifo_snapshot_put(machine(sm), b) || !wr_buf_ok(b))
        abort();
    return wr_crc32c_update(0, b->data, b->len);
}

static qs_record_t *record_at(qs_group_t *G, uint64_t index)
{
    if (index > G->nrec) {
        size_t n = index * 2;
        if ((G->rec = realloc(G->rec, n * sizeof(*G->rec))) == NULL)
            abort();
        memset(G->rec + G->nrec, 0, (n - G->nrec) * sizeof(*G->rec));
        G->nrec = n;
    }
    return &G->rec[index - 1];
}

void sim_qfifo_check_at(sim_t *s, int node, int g, uint64_t index, sim_sm_t *sm)
{
    qs_record_t *r;

    if (index == 0)
        return;
    r = record_at(&s->qfifo->g[g], index);
    if (r->set && r->snap != snap_hash(s, sm))
        sim_fail(s, "qfifo: n%d g%d's state at %llu differs from the first applier's", node, g,
                 (unsigned long long)index);
}

/* What the first appliers did, for the run's summary (sim_qfifo_stats_add). */
static void count(uint64_t *n, const wr_qfifo_cmd_t *cmd, int rc, const wr_qfifo_effects_t *fx)
{
    n[1] += rc == WR_EEXIST;
    n[7] += cmd->op == WR_QF_DOWN;
    n[8] += rc == WR_AGAIN;
    for (size_t i = 0; i < fx->n; i++) {
        const wr_qfifo_effect_t *f = &fx->v[i];
        n[0] += f->kind == WR_QFE_CONFIRM;
        n[2] += f->kind == WR_QFE_REJECT;
        n[3] += f->kind == WR_QFE_DELIVER;
        n[4] += f->kind == WR_QFE_DELIVER && f->redelivered;
        n[5] += f->kind == WR_QFE_DEADLETTER;
        n[6] += f->kind == WR_QFE_CANCEL;
    }
}

void sim_qfifo_stats_add(const sim_t *s, uint64_t out[SIM_QF_STATS])
{
    for (int i = 0; i < SIM_QF_STATS; i++)
        out[i] += s->qfifo->stats[i];
}

/* The first applier's result feeds the model and the clients; every other must match it. */
static void judge(sim_t *s, int node, int g, uint64_t index, uint64_t time_ms, const wr_qfifo_cmd_t *cmd,
                  int rc, sim_sm_t *sm)
{
    qs_group_t *G = &s->qfifo->g[g];
    const wr_qfifo_effects_t *fx = &s->qfifo->fx;
    uint32_t h = fx_hash(rc, fx);
    qs_record_t *r = record_at(G, index);

    /* The first applier's state is kept at every index; the others' is compared at every
     * SNAP_EVERY-th one (encoding it is most of a run's cost) and after every snapshot install
     * or restart (sim_qfifo_check_at). */
    if (r->set) {
        if (r->rc != rc || r->fx != h)
            sim_fail(s, "qfifo: n%d g%d's status %d and effects at %llu differ from the first applier's (%d)",
                     node, g, rc, (unsigned long long)index, r->rc);
        else if (index % SNAP_EVERY == 0 && r->snap != snap_hash(s, sm))
            sim_fail(s, "qfifo: n%d g%d's state at %llu differs from the first applier's", node, g,
                     (unsigned long long)index);
        return;
    }
    *r = (qs_record_t){h, snap_hash(s, sm), rc, true};
    if (cmd == NULL)
        return;
    count(s->qfifo->stats, cmd, rc, fx);
    sim_qfifo_model_apply(s, g, index, time_ms, cmd, rc, fx, sm->qf);
    notify_cmd(G, cmd);
    for (size_t i = 0; i < fx->n; i++)
        notify_effect(G, cmd, fx, &fx->v[i]);
}

void sim_qfifo_apply(sim_t *s, int node, int g, sim_sm_t *sm, const wr_raft_entry_t *e)
{
    wr_qfifo_cmd_t cmd;
    uint64_t time_ms = 0;
    int rc = WR_OK;
    bool is_cmd = e->type == WR_RAFT_ENTRY_NORMAL && e->len > 8;

    wr_qfifo_effects_reset(&s->qfifo->fx);
    if (is_cmd && wr_qfifo_cmd_decode(e->data + 8, e->len - 8, &time_ms, &cmd) != WR_OK) {
        sim_fail(s, "qfifo: n%d g%d cannot decode entry %llu", node, g, (unsigned long long)e->index);
        return;
    }
    if (is_cmd)
        rc = wr_qfifo_apply(machine(sm), e->index, time_ms, &cmd, &s->qfifo->fx, NULL);
    judge(s, node, g, e->index, time_ms, is_cmd ? &cmd : NULL, rc, sm);
}

char *sim_qfifo_snapshot(sim_sm_t *sm, size_t *len)
{
    wr_buf_t b = WR_BUF_INIT;

    if (!wr_qfifo_snapshot_put(machine(sm), &b) || !wr_buf_ok(&b))
        abort();
    *len = b.len;
    return (char *)b.data;
}

bool sim_qfifo_load(sim_sm_t *sm, const uint8_t *p, size_t len)
{
    wr_qfifo_free(sm->qf);
    sm->qf = NULL;
    return wr_qfifo_snapshot_load(p, len, &sm->qf) == WR_OK;
}

void sim_qfifo_sm_free(sim_sm_t *sm)
{
    wr_qfifo_free(sm->qf);
    sm->qf = NULL;
}

/* ---- the end ---- */

bool sim_qfifo_drained(const sim_t *s)
{
    for (int g = 0; g < s->o.groups; g++)
        if (!group_drained(&s->qfifo->g[g]))
            return false;
    return true;
}

void sim_qfifo_dump(sim_t *s)
{
    for (int g = 0; g < s->o.groups; g++) {
        const qs_group_t *G = &s->qfifo->g[g];
        uint64_t n[QM_DEAD + 1] = {0};
        for (size_t i = 0; i < G->model.n; i++)
            n[G->model.m[i].state]++;
        sim_trace(
            s,
            "qfifo g%d: unconfirmed %zu %zu %zu, downs %zu, dead letters %zu, policy %s; messages: ready "
            "%llu out %llu dlx %llu settled %llu dead %llu; clients %d %d %d %d",
            g, G->pubs[0].pending.n, G->pubs[1].pending.n, G->pubs[2].pending.n, G->downs.n, G->dlx.n,
            G->policy_pending ? "pending" : "applied", (unsigned long long)n[QM_READY],
            (unsigned long long)n[QM_OUT], (unsigned long long)n[QM_DLX_WAIT], (unsigned long long)n[QM_DONE],
            (unsigned long long)n[QM_DEAD], G->cl[0].state, G->cl[1].state, G->cl[2].state, G->cl[3].state);
        for (size_t i = 0; i < G->model.n; i++)
            if (G->model.m[i].state == QM_OUT)
                sim_trace(s, "qfifo g%d: message %llu held by %llu %s as %llu", g,
                          (unsigned long long)G->model.m[i].index, (unsigned long long)G->model.m[i].owner,
                          G->model.m[i].tag, (unsigned long long)G->model.m[i].did);
        for (int i = 0; i < QS_CLIENTS; i++)
            sim_trace(s, "qfifo g%d: client %s owner %llu holds %zu", g, G->cl[i].tag,
                      (unsigned long long)G->cl[i].owner, G->cl[i].held.n);
    }
}

void sim_qfifo_final(sim_t *s)
{
    for (int g = 0; g < s->o.groups && !s->failed; g++)
        sim_qfifo_model_final(s, g);
}
