/* SPDX-License-Identifier: MIT */
/*
 * The simulator's checker. At every step: election safety, log matching (an
 * entry's index and term fix its payload and its predecessor's term), leader
 * completeness, state-machine safety, commit never moving back (nor below
 * the durable commit after a restart), and no leader keeping office without
 * hearing from a quorum, and every commit held durably by a majority of the
 * leader's voters. Quorums are those of the membership each log has in force.
 * After the faults heal: every acknowledged proposal applied, unchanged, on
 * every member.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "tests/sim/sim.h"

typedef struct {
    uint64_t key; /* 0: empty */
    uint64_t prev_term;
    uint32_t hash;
} slot_t;

/* What one index of one group is known to hold once committed or applied. */
typedef struct {
    uint64_t term;
    uint64_t seen_term; /* the observer's term when it was first seen committed */
    uint32_t hash;
} fixed_t;

typedef struct {
    fixed_t *v;
    size_t n;
} fixedv_t;

/* Every CONFIG entry written to some disk, to find a disk log's membership. */
typedef struct {
    uint64_t term;
    wr_raft_conf_t c;
} confrec_t;

typedef struct {
    confrec_t *v;
    size_t n;
} confv_t;

typedef struct {
    uint64_t check_from;  /* log matching done below this index */
    uint64_t last_commit; /* while up */
    uint64_t lc_term, lc_upto;
} watch_t;

struct sim_check_s {
    slot_t *tab;
    size_t cap, used;
    uint32_t **leaders; /* [group][term] */
    size_t *n_leaders;
    fixedv_t *committed, *applied; /* per group */
    watch_t *w;                    /* [node * groups + group] */
    uint64_t *top, *top_term;      /* per group: the highest committed index and its term */
    confv_t *confs;                /* per group */
    int groups, voters0;
};

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (p == NULL)
        abort();
    return p;
}

sim_check_t *sim_check_new(const sim_t *s)
{
    sim_check_t *c = xcalloc(1, sizeof(*c));

    c->groups = s->o.groups;
    c->cap = 1024;
    c->tab = xcalloc(c->cap, sizeof(*c->tab));
    c->leaders = xcalloc((size_t)c->groups, sizeof(*c->leaders));
    c->n_leaders = xcalloc((size_t)c->groups, sizeof(*c->n_leaders));
    c->committed = xcalloc((size_t)c->groups, sizeof(*c->committed));
    c->applied = xcalloc((size_t)c->groups, sizeof(*c->applied));
    c->w = xcalloc((size_t)(SIM_MAX_NODES + 1) * (size_t)c->groups, sizeof(*c->w));
    c->top = xcalloc((size_t)c->groups, sizeof(*c->top));
    c->top_term = xcalloc((size_t)c->groups, sizeof(*c->top_term));
    c->confs = xcalloc((size_t)c->groups, sizeof(*c->confs));
    c->voters0 = s->voters0;
    return c;
}

void sim_check_free(sim_check_t *c)
{
    if (c == NULL)
        return;
    for (int g = 0; g < c->groups; g++) {
        free(c->leaders[g]);
        free(c->committed[g].v);
        free(c->applied[g].v);
        free(c->confs[g].v);
    }
    free(c->confs);
    free(c->leaders);
    free(c->n_leaders);
    free(c->committed);
    free(c->applied);
    free(c->w);
    free(c->top);
    free(c->top_term);
    free(c->tab);
    free(c);
}

static uint32_t entry_hash(const wr_raft_entry_t *e)
{
    uint32_t h = wr_crc32c_update(0, &e->type, 1);
    return e->len ? wr_crc32c_update(h, e->data, e->len) : h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x | 1;
}

static void tab_grow(sim_check_t *c);

/* Finds or inserts the slot of (group, index, term); *fresh says which. */
static slot_t *tab_get(sim_check_t *c, int g, uint64_t index, uint64_t term, bool *fresh)
{
    uint64_t key = mix(((uint64_t)g << 56) ^ (index << 20) ^ term ^ mix(index * 31 + term));
    size_t i;

    if (c->used * 2 >= c->cap)
        tab_grow(c);
    for (i = key & (c->cap - 1); c->tab[i].key != 0 && c->tab[i].key != key; i = (i + 1) & (c->cap - 1))
        ;
    *fresh = c->tab[i].key == 0;
    if (*fresh) {
        c->tab[i].key = key;
        c->used++;
    }
    return &c->tab[i];
}

static void tab_grow(sim_check_t *c)
{
    slot_t *old = c->tab;
    size_t cap = c->cap;

    c->cap *= 2;
    c->tab = xcalloc(c->cap, sizeof(*c->tab));
    for (size_t j = 0; j < cap; j++) {
        size_t i;
        if (old[j].key == 0)
            continue;
        for (i = old[j].key & (c->cap - 1); c->tab[i].key != 0; i = (i + 1) & (c->cap - 1))
            ;
        c->tab[i] = old[j];
    }
    free(old);
}

static fixed_t *fixed_at(fixedv_t *v, uint64_t index)
{
    if (index > v->n) {
        size_t n = index * 2;
        v->v = realloc(v->v, n * sizeof(*v->v));
        if (v->v == NULL)
            abort();
        memset(v->v + v->n, 0, (n - v->n) * sizeof(*v->v));
        v->n = n;
    }
    return &v->v[index - 1];
}

void sim_check_logged(sim_t *s, int g, const wr_raft_entry_t *e, size_t n)
{
    confv_t *v = &s->check->confs[g];

    for (size_t i = 0; i < n; i++) {
        bool known = false;
        if (e[i].type != WR_RAFT_ENTRY_CONFIG)
            continue;
        for (size_t j = 0; j < v->n; j++)
            known |= v->v[j].c.index == e[i].index && v->v[j].term == e[i].term;
        if (known)
            continue;
        v->v = realloc(v->v, (v->n + 1) * sizeof(*v->v));
        if (v->v == NULL || wr_raft_conf_decode(&e[i], &v->v[v->n].c) != WR_OK)
            abort();
        v->v[v->n++].term = e[i].term;
    }
}

/* The membership in force in a disk log of n records: its last CONFIG entry. */
static wr_raft_conf_t conf_disk(const sim_t *s, int g, sim_node_t *node, size_t n)
{
    const confv_t *v = &s->check->confs[g];
    const confrec_t *best = NULL;
    const wr_raft_snapshot_t *snap = &node->g[g].snap.durable;
    wr_raft_conf_t c = {.n = (size_t)s->check->voters0};

    /* CONFIG entries past the snapshot, else the snapshot's membership. */
    for (size_t j = 0; j < v->n; j++) {
        const confrec_t *r = &v->v[j];
        if (r->c.index <= n && r->c.index > snap->index && sim_member_term(node, g, r->c.index) == r->term &&
            (!best || r->c.index > best->c.index))
            best = r;
    }
    if (best != NULL)
        return best->c;
    if (snap->index > 0 && snap->conf.n > 0)
        return snap->conf;
    for (size_t i = 0; i < c.n; i++) {
        c.id[i] = (uint32_t)i + 1;
        c.voter[i] = true;
    }
    return c;
}

static size_t conf_voters(const wr_raft_conf_t *c)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n; i++)
        n += c->voter[i];
    return n;
}

static bool conf_votes(const wr_raft_conf_t *c, int id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->id[i] == (uint32_t)id)
            return c->voter[i];
    return false;
}

/* A member whose disk lost acknowledged records: it abstains until a later
 * leader caught it up, and a leader may still count its old acknowledgement.
 * The WAL's recovery makes such damage durable as abstain at once; the toy
 * disk shows it as valid records short of the synced ones. */
static bool member_damaged(sim_t *s, int id, int g)
{
    sim_node_t *n = &s->nodes[id];
    sim_member_t *m = &n->g[g];
    wr_raft_status_t st = {.abstain = 0};

    if (n->up)
        wr_raft_status(m->raft, &st);
    return (n->wal == NULL && sim_disk_valid(&m->disk) < m->disk.synced) ||
           sim_member_durable_hs(n, g).abstain != 0 || st.abstain != 0;
}

/* A leader's commit must be durable on a majority of the voters it has in force. */
static void check_commit_quorum(sim_t *s, int node, int g, const wr_raft_t *r, const wr_raft_status_t *st)
{
    wr_raft_conf_t c;
    size_t held = 0;

    wr_raft_conf(r, &c);
    for (size_t i = 0; i < c.n; i++) {
        sim_node_t *n = &s->nodes[c.id[i]];
        held += c.voter[i] && (sim_member_holds(n, g, st->commit, wr_raft_term(r, st->commit)) ||
                               member_damaged(s, (int)c.id[i], g));
    }
    if (held < conf_voters(&c) / 2 + 1)
        sim_fail(s, "commit quorum: n%d g%d committed %llu held by %zu of %zu voters", node, g,
                 (unsigned long long)st->commit, held, conf_voters(&c));
}

static void check_leader(sim_t *s, int node, int g, const wr_raft_status_t *st)
{
    sim_check_t *c = s->check;

    if (st->role != WR_RAFT_LEADER)
        return;
    if (st->term >= c->n_leaders[g]) {
        size_t n = st->term * 2 + 8;
        c->leaders[g] = realloc(c->leaders[g], n * sizeof(uint32_t));
        if (c->leaders[g] == NULL)
            abort();
        memset(c->leaders[g] + c->n_leaders[g], 0, (n - c->n_leaders[g]) * sizeof(uint32_t));
        c->n_leaders[g] = n;
    }
    if (c->leaders[g][st->term] == 0)
        c->leaders[g][st->term] = (uint32_t)node;
    else if (c->leaders[g][st->term] != (uint32_t)node)
        sim_fail(s, "election safety: g%d term %llu has leaders n%u and n%d", g, (unsigned long long)st->term,
                 c->leaders[g][st->term], node);
}

static void check_matching(sim_t *s, int node, int g, const wr_raft_t *r, watch_t *w,
                           const wr_raft_status_t *st)
{
    uint64_t from = w->check_from < st->last_index + 1 ? w->check_from : st->last_index + 1;
    wr_buf_t b = WR_BUF_INIT;

    /* Entries behind the snapshot are gone from memory: the install check covers them. A payload
     * the core dropped is read back from the node's disk, as its driver would. */
    for (uint64_t i = from > st->first_index ? from : st->first_index; i <= st->last_index; i++) {
        wr_raft_entry_t e = *wr_raft_entry(r, i);
        uint64_t prev = wr_raft_term(r, i - 1);
        bool fresh;
        slot_t *sl = tab_get(s->check, g, i, e.term, &fresh);
        e.data = (uint8_t *)sim_member_payload(s, &s->nodes[node], g, &e, &b);
        if (fresh) {
            sl->prev_term = prev;
            sl->hash = entry_hash(&e);
        } else if (sl->prev_term != prev || sl->hash != entry_hash(&e)) {
            sim_fail(s, "log matching: n%d g%d entry %llu/%llu differs from another log", node, g,
                     (unsigned long long)e.term, (unsigned long long)i);
            break;
        }
    }
    wr_buf_free(&b);
    w->check_from = st->commit + 1;
}

static void check_commit(sim_t *s, int node, int g, const wr_raft_t *r, watch_t *w,
                         const wr_raft_status_t *st)
{
    sim_member_t *m = &s->nodes[node].g[g];

    if (st->commit < w->last_commit || st->commit < m->commit_floor)
        sim_fail(s, "commit moved back: n%d g%d commit %llu, was %llu (durable %llu)", node, g,
                 (unsigned long long)st->commit, (unsigned long long)w->last_commit,
                 (unsigned long long)m->commit_floor);
    if (st->role == WR_RAFT_LEADER && st->commit > w->last_commit)
        check_commit_quorum(s, node, g, r, st);
    for (uint64_t i = w->last_commit + 1; i <= st->commit; i++) {
        fixed_t *f = fixed_at(&s->check->committed[g], i);
        uint64_t t = wr_raft_term(r, i);
        if (t == 0)
            continue; /* in an installed snapshot: checked against what the others applied */
        if (f->term == 0) {
            f->term = t;
            f->seen_term = st->term;
            if (i > s->check->top[g]) {
                s->check->top[g] = i;
                s->check->top_term[g] = t;
            }
        } else if (f->term != t) {
            sim_fail(s, "committed entry changed: g%d index %llu term %llu, n%d has %llu", g,
                     (unsigned long long)i, (unsigned long long)f->term, node, (unsigned long long)t);
        }
    }
    w->last_commit = st->commit;
}

/* Every entry committed as seen by a term <= the leader's is in its log. */
static void check_completeness(sim_t *s, int node, int g, const wr_raft_t *r, watch_t *w,
                               const wr_raft_status_t *st)
{
    fixedv_t *v = &s->check->committed[g];

    if (st->role != WR_RAFT_LEADER)
        return;
    if (w->lc_term != st->term) {
        w->lc_term = st->term;
        w->lc_upto = 0;
    }
    for (; w->lc_upto < v->n && v->v[w->lc_upto].term != 0; w->lc_upto++) {
        fixed_t *f = &v->v[w->lc_upto];
        uint64_t t = wr_raft_term(r, w->lc_upto + 1);
        if (w->lc_upto + 1 < st->first_index - 1)
            continue; /* in its snapshot */
        if (f->seen_term <= st->term && t != f->term) {
            sim_fail(s, "leader completeness: n%d g%d leads term %llu without committed entry %llu/%zu", node,
                     g, (unsigned long long)st->term, (unsigned long long)f->term, (size_t)w->lc_upto + 1);
            return;
        }
    }
}

/* Check-quorum: a leader that heard from no quorum for three election timeouts is stale. */
static void check_stale_leader(sim_t *s, int node, int g, const wr_raft_status_t *st)
{
    sim_node_t *n = &s->nodes[node];
    sim_member_t *m = &n->g[g];
    uint64_t window = (uint64_t)(3 * 10 * n->tick_period + s->max_delay + 10);
    wr_raft_conf_t c;
    size_t heard = 0;

    if (st->role != WR_RAFT_LEADER) {
        m->leader_since = 0;
        return;
    }
    wr_raft_conf(m->raft, &c);
    /* A new membership starts a new watch: the quorum it needs changed. */
    if (m->leader_since == 0 || m->leader_term != st->term || m->leader_conf != c.index) {
        m->leader_since = s->now;
        m->leader_term = st->term;
        m->leader_conf = c.index;
    }
    for (size_t i = 0; i < c.n; i++) {
        int id = (int)c.id[i];
        heard += c.voter[i] &&
                 (id == node || (m->heard[id] + window >= s->now && m->heard[id] >= m->leader_since));
    }
    if (s->now > m->leader_since + window && heard < conf_voters(&c) / 2 + 1)
        sim_fail(s, "stale leader: n%d g%d still leads term %llu, heard from %zu of %zu voters for %llu",
                 node, g, (unsigned long long)st->term, heard, conf_voters(&c), (unsigned long long)window);
}

/* One version of a member's log: in memory (up) or on disk (as after a crash). */
typedef struct {
    uint64_t last_term, last_index;
    bool has_top; /* holds the group's highest committed entry */
    bool abstains;
} logv_t;

static logv_t logv_mem(const sim_t *s, const sim_member_t *m, int g)
{
    wr_raft_status_t st;
    uint64_t top = s->check->top[g];

    wr_raft_status(m->raft, &st);
    return (logv_t){st.last_term, st.last_index,
                    top < st.first_index - 1 || wr_raft_term(m->raft, top) == s->check->top_term[g],
                    st.abstain != 0};
}

static logv_t logv_disk(const sim_t *s, sim_node_t *node, int g)
{
    size_t n = sim_member_valid(node, g);

    return (logv_t){sim_member_term(node, g, n), n,
                    sim_member_holds(node, g, s->check->top[g], s->check->top_term[g]),
                    sim_member_damaged(node, g) || sim_member_durable_hs(node, g).abstain != 0};
}

static bool logv_ge(const logv_t *a, const logv_t *b)
{
    return a->last_term > b->last_term || (a->last_term == b->last_term && a->last_index >= b->last_index);
}

/* Would a quorum of c (x's membership) find candidate x's log at least as up to date as theirs? */
static bool electable(sim_t *s, int g, int x, const logv_t *v, const wr_raft_conf_t *c)
{
    /* A removed member may campaign too (until its removal is committed). */
    size_t yes = conf_votes(c, x);

    for (size_t i = 0; i < c->n; i++) {
        int y = (int)c->id[i];
        sim_member_t *m = &s->nodes[y].g[g];
        logv_t d = logv_disk(s, &s->nodes[y], g), worst = d;
        if (y == x || !c->voter[i])
            continue;
        if (s->nodes[y].up) {
            logv_t mem = logv_mem(s, m, g);
            worst = logv_ge(&d, &mem) ? mem : d;
            worst.abstains = mem.abstains || d.abstains;
        }
        yes += !worst.abstains && logv_ge(v, &worst);
    }
    return yes >= conf_voters(c) / 2 + 1;
}

/* Leader completeness for every possible future: no member whose log (in
 * memory, or on disk as a crash would leave it) lacks the highest committed
 * entry may be able to win a majority's votes on log comparison alone. */
static void check_electable(sim_t *s, int g)
{
    for (int x = 1; x <= s->o.nodes && s->check->top[g] > 0 && !s->failed; x++) {
        sim_member_t *m = &s->nodes[x].g[g];
        logv_t v[2];
        wr_raft_conf_t c[2];
        int nv = 0;
        v[nv] = logv_disk(s, &s->nodes[x], g);
        c[nv++] = conf_disk(s, g, &s->nodes[x], v[0].last_index);
        if (s->nodes[x].up) {
            v[nv] = logv_mem(s, m, g);
            wr_raft_conf(m->raft, &c[nv++]);
        }
        for (int i = 0; i < nv; i++)
            if (!v[i].has_top && !v[i].abstains && electable(s, g, x, &v[i], &c[i]))
                sim_fail(s, "electable without a committed entry: n%d g%d (%s log %llu/%llu) lacks %llu/%llu",
                         x, g, i == 0 ? "disk" : "memory", (unsigned long long)v[i].last_term,
                         (unsigned long long)v[i].last_index, (unsigned long long)s->check->top_term[g],
                         (unsigned long long)s->check->top[g]);
    }
}

void sim_check_step(sim_t *s)
{
    for (int g = 0; g < s->o.groups && !s->failed; g++)
        check_electable(s, g);
    for (int id = 1; id <= s->o.nodes; id++) {
        sim_node_t *n = &s->nodes[id];
        for (int g = 0; g < s->o.groups && n->up && !s->failed; g++) {
            const wr_raft_t *r = n->g[g].raft;
            watch_t *w = &s->check->w[id * s->o.groups + g];
            wr_raft_status_t st;
            wr_raft_status(r, &st);
            check_leader(s, id, g, &st);
            check_matching(s, id, g, r, w, &st);
            check_commit(s, id, g, r, w, &st);
            check_completeness(s, id, g, r, w, &st);
            check_stale_leader(s, id, g, &st);
        }
    }
}

void sim_check_restart(sim_t *s, int node)
{
    for (int g = 0; g < s->o.groups; g++) {
        watch_t *w = &s->check->w[node * s->o.groups + g];
        w->last_commit = s->nodes[node].g[g].commit_floor;
        w->check_from = 1;
        w->lc_term = 0;
    }
}

void sim_check_applied(sim_t *s, int node, int g, const wr_raft_entry_t *e)
{
    fixed_t *f = fixed_at(&s->check->applied[g], e->index);
    uint32_t h = entry_hash(e);

    s->applied_total++;
    if (f->term == 0) {
        f->term = e->term;
        f->hash = h;
    } else if (f->term != e->term || f->hash != h) {
        sim_fail(s, "state machine safety: n%d g%d applied %llu/%llu, another member applied term %llu there",
                 node, g, (unsigned long long)e->term, (unsigned long long)e->index,
                 (unsigned long long)f->term);
    }
    if (s->o.trace)
        sim_trace(s, "n%d g%d apply %llu/%llu", node, g, (unsigned long long)e->term,
                  (unsigned long long)e->index);
}

void sim_check_installed(sim_t *s, int node, int g, const sim_sm_t *sm)
{
    fixedv_t *v = &s->check->applied[g];

    for (uint64_t i = 1; i <= sm->n && i <= v->n; i++) {
        const fixed_t *f = &v->v[i - 1];
        if (f->term != 0 && f->hash != sm->h[i - 1]) {
            sim_fail(s,
                     "state machine safety: n%d g%d installed a snapshot whose entry %llu differs from what "
                     "others applied",
                     node, g, (unsigned long long)i);
            return;
        }
    }
}

uint32_t sim_check_hash(const wr_raft_entry_t *e)
{
    return entry_hash(e);
}

static uint64_t max_acked(const sim_t *s, int g)
{
    uint64_t max = 0;

    for (size_t i = 0; i < s->n_props; i++)
        if (s->props[i].acked && s->props[i].group == g && s->props[i].index > max)
            max = s->props[i].index;
    return max;
}

/* The membership of group g's leader (n = 0: no leader). */
static wr_raft_conf_t leader_conf(sim_t *s, int g)
{
    wr_raft_conf_t c = {.n = 0};

    for (int id = 1; id <= s->o.nodes; id++) {
        wr_raft_status_t st;
        if (!s->nodes[id].up)
            continue;
        wr_raft_status(s->nodes[id].g[g].raft, &st);
        if (st.role == WR_RAFT_LEADER)
            wr_raft_conf(s->nodes[id].g[g].raft, &c);
    }
    return c;
}

bool sim_check_converged(sim_t *s)
{
    for (int g = 0; g < s->o.groups; g++) {
        uint64_t need = max_acked(s, g);
        wr_raft_conf_t c = leader_conf(s, g);
        if (c.n == 0)
            return false;
        /* Every member of the group, learners included; former members are exempt. */
        for (size_t i = 0; i < c.n; i++) {
            wr_raft_status_t st;
            if (!s->nodes[c.id[i]].up)
                return false;
            wr_raft_status(s->nodes[c.id[i]].g[g].raft, &st);
            if (st.applied < need || st.snapshot_lost)
                return false;
        }
    }
    return true;
}

void sim_check_final(sim_t *s)
{
    for (size_t i = 0; i < s->n_props && !s->failed; i++) {
        const sim_proposal_t *p = &s->props[i];
        fixedv_t *v = &s->check->applied[p->group];
        if (!p->acked)
            continue;
        if (p->index > v->n || v->v[p->index - 1].term != p->term || v->v[p->index - 1].hash != p->hash)
            sim_fail(s, "acknowledged proposal lost: %llu (g%d %llu/%llu)", (unsigned long long)p->id,
                     p->group, (unsigned long long)p->term, (unsigned long long)p->index);
    }
}
