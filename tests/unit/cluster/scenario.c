/* SPDX-License-Identifier: MIT */
/*
 * The scenario runner: members with an in-memory disk (writes synced at once
 * unless a member is told "nosync"), a network of rounds (each "deliver"
 * hands over what was sent in the previous round), links cut on demand. The
 * state machine concatenates the payloads applied; its snapshot is that text,
 * durable at once, sent in chunks of "chunk" bytes.
 */
#include "scenario.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/raft.h"
#include "core/status.h"
#include "core/crc32c.h"

#define MAXN 9

#define SM_MAX 512

typedef struct {
    wr_raft_msg_t m;
    wr_raft_entry_t *e;
    uint8_t *data; /* a snapshot chunk's bytes */
} pkt_t;

typedef struct {
    wr_raft_t *r;
    wr_raft_entry_t *log; /* durable */
    size_t n, cap;
    wr_raft_hard_state_t hs;
    wr_raft_entry_t *pend; /* written, not synced */
    size_t n_pend;
    bool pend_hs;
    wr_raft_hard_state_t pend_hs_v;
    pkt_t *held; /* wait for the sync */
    size_t n_held;
    bool nosync, up;
    char sm[SM_MAX]; /* the state machine: the payloads applied */
    size_t sm_len;
    uint8_t snap[SM_MAX]; /* the durable snapshot */
    size_t snap_len;
    wr_raft_snapshot_t snap_meta;
    uint8_t rx[SM_MAX]; /* chunks received */
    size_t rx_len;
    bool snap_notice; /* an installed snapshot to report durable at the next sync */
} mem_t;

typedef struct {
    int nodes, voters; /* members 1..nodes; the first membership is 1..voters */
    unsigned batch, inflight, trailing, chunk;
    mem_t m[MAXN + 1];
    bool cut[MAXN + 1][MAXN + 1];
    pkt_t *q;
    size_t nq;
    const char *file;
    int line;
    char *err;
    size_t len;
    int failed;
} scn_t;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static wr_raft_entry_t *dup_entries(const wr_raft_entry_t *e, size_t n)
{
    wr_raft_entry_t *out = xmalloc(n * sizeof(*out));

    for (size_t i = 0; i < n; i++) {
        out[i] = e[i];
        out[i].data = xmalloc(e[i].len);
        if (e[i].len > 0)
            memcpy(out[i].data, e[i].data, e[i].len);
    }
    return out;
}

static void free_entries(wr_raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

static int fail(scn_t *s, const char *fmt, ...)
{
    int n = snprintf(s->err, s->len, "%s:%d: ", s->file, s->line);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err + n, s->len - (size_t)n, fmt, ap);
    va_end(ap);
    s->failed = 1;
    return -1;
}

static void push(pkt_t **q, size_t *n, const wr_raft_msg_t *m)
{
    *q = realloc(*q, (*n + 1) * sizeof(**q));
    if (*q == NULL)
        abort();
    (*q)[*n].m = *m;
    (*q)[*n].e = dup_entries(m->entries, m->n_entries);
    (*q)[*n].m.entries = (*q)[*n].e;
    (*q)[*n].data = xmalloc(m->len);
    if (m->len > 0)
        memcpy((*q)[*n].data, m->data, m->len);
    (*q)[*n].m.data = (*q)[*n].data;
    (*n)++;
}

static void free_pkt(pkt_t *p)
{
    free_entries(p->e, p->m.n_entries);
    free(p->data);
}

static wr_raft_config_t config(const scn_t *s, int id)
{
    wr_raft_config_t c = {.id = (uint32_t)id, .election_ticks = 10, .heartbeat_ticks = 2};

    for (int i = 1; i <= s->voters; i++)
        c.peers[c.n_peers++] = (uint32_t)i;
    c.max_batch = s->batch;
    c.max_inflight = s->inflight;
    c.snapshot_trailing = s->trailing;
    c.seed = 7;
    return c;
}

/* Makes the written entries and hard state durable; releases the held messages. */
static void mem_sync(scn_t *s, mem_t *m)
{
    uint64_t term = 0, index = 0;

    for (size_t i = 0; i < m->n_pend; i++) {
        wr_raft_entry_t *e = &m->pend[i];
        while (m->n > 0 && m->log[m->n - 1].index >= e->index)
            free(m->log[--m->n].data);
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->log = realloc(m->log, m->cap * sizeof(*m->log));
            if (m->log == NULL)
                abort();
        }
        m->log[m->n++] = *e;
        term = e->term;
        index = e->index;
    }
    free(m->pend);
    m->pend = NULL;
    m->n_pend = 0;
    if (m->pend_hs)
        m->hs = m->pend_hs_v;
    m->pend_hs = false;
    for (size_t i = 0; i < m->n_held; i++) {
        push(&s->q, &s->nq, &m->held[i].m);
        free_pkt(&m->held[i]);
    }
    m->n_held = 0;
    if (m->snap_notice)
        wr_raft_persisted(m->r, m->snap_meta.term, m->snap_meta.index);
    m->snap_notice = false;
    if (index > 0)
        wr_raft_persisted(m->r, term, index);
}

/* The stored log loses its prefix up to index (all of it if it lacks (index, term)). */
static void mem_compact(mem_t *m, uint64_t index, uint64_t term)
{
    size_t drop = 0;
    bool holds = false;

    for (size_t i = 0; i < m->n; i++) {
        holds |= m->log[i].index == index && m->log[i].term == term;
        drop += m->log[i].index <= index;
    }
    if (!holds) {
        drop = m->n;
        free_entries(m->pend, m->n_pend); /* written after entries of another history */
        m->pend = NULL;
        m->n_pend = 0;
    }
    for (size_t i = 0; i < drop; i++)
        free(m->log[i].data);
    if (m->n > drop)
        memmove(m->log, m->log + drop, (m->n - drop) * sizeof(*m->log));
    m->n -= drop;
}

/* Snapshots, durable at once: a chunk stored, one installed (reported durable at the
 * next sync, as the contract asks), the stored log compacted. */
static void mem_snapshot(mem_t *m, const wr_raft_ready_t *rd)
{
    if (rd->has_chunk) {
        if (rd->chunk.offset + rd->chunk.len > SM_MAX)
            abort();
        memcpy(m->rx + rd->chunk.offset, rd->chunk.data, rd->chunk.len);
        m->rx_len = rd->chunk.offset + rd->chunk.len;
    }
    if (rd->installed) {
        memcpy(m->snap, m->rx, m->rx_len);
        memcpy(m->sm, m->rx, m->rx_len);
        m->snap_len = m->sm_len = m->rx_len;
        m->snap_meta = rd->snapshot;
        m->snap_notice = true;
    }
    if (rd->compact_index > 0)
        mem_compact(m, rd->compact_index, rd->compact_term);
}

/* The state machine applies a committed entry: NORMAL payloads are appended. */
static void mem_apply(mem_t *m, const wr_raft_entry_t *e)
{
    if (e->type != WR_RAFT_ENTRY_NORMAL || m->sm_len + e->len > SM_MAX)
        return;
    memcpy(m->sm + m->sm_len, e->data, e->len);
    m->sm_len += e->len;
}

/* Attaches the chunk a SNAP message asks for; false: not our snapshot. */
static bool mem_fill(const scn_t *s, const mem_t *m, wr_raft_msg_t *msg)
{
    size_t left;

    if (msg->index != m->snap_meta.index || msg->log_term != m->snap_meta.term || msg->offset >= m->snap_len)
        return false;
    left = m->snap_len - (size_t)msg->offset;
    msg->data = m->snap + msg->offset;
    msg->len = (uint32_t)(left < s->chunk ? left : s->chunk);
    msg->crc = wr_crc32c_update(0, msg->data, msg->len);
    msg->last = msg->len == left;
    msg->total_crc = wr_crc32c_update(0, m->snap, m->snap_len);
    return true;
}

static void mem_write(mem_t *m, const wr_raft_ready_t *rd)
{
    wr_raft_entry_t *e = dup_entries(rd->entries, rd->n_entries);

    m->pend = realloc(m->pend, (m->n_pend + rd->n_entries + 1) * sizeof(*m->pend));
    if (m->pend == NULL)
        abort();
    if (rd->n_entries > 0)
        memcpy(m->pend + m->n_pend, e, rd->n_entries * sizeof(*e));
    m->n_pend += rd->n_entries;
    free(e);
    if (rd->hs_changed) {
        m->pend_hs = true;
        m->pend_hs_v = rd->hs;
    }
}

static void drive(scn_t *s, int id)
{
    mem_t *m = &s->m[id];
    wr_raft_ready_t rd;

    while (m->up && wr_raft_has_ready(m->r)) {
        if (wr_raft_ready(m->r, &rd) != WR_OK)
            abort();
        mem_snapshot(m, &rd);
        mem_write(m, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++) {
            wr_raft_msg_t c = rd.msgs[i];
            if (c.type != WR_RAFT_MSG_SNAP || mem_fill(s, m, &c))
                push(&s->q, &s->nq, &c);
        }
        for (size_t i = 0; i < rd.n_committed; i++)
            mem_apply(m, &rd.committed[i]);
        for (size_t i = 0; i < rd.n_msgs_after_sync; i++)
            push(&m->held, &m->n_held, &rd.msgs_after_sync[i]);
        wr_raft_advance(m->r);
        if (!m->nosync)
            mem_sync(s, m);
    }
}

static void start(scn_t *s, int id)
{
    wr_raft_config_t c = config(s, id);
    mem_t *m = &s->m[id];

    m->r = wr_raft_restore(&c, &m->hs, &m->snap_meta, m->log, m->n);
    if (m->r == NULL)
        abort();
    memcpy(m->sm, m->snap, m->snap_len);
    m->sm_len = m->snap_len;
    m->up = true;
}

static void crash(mem_t *m)
{
    free_entries(m->pend, m->n_pend);
    m->pend = NULL;
    m->n_pend = 0;
    m->pend_hs = false;
    for (size_t i = 0; i < m->n_held; i++)
        free_pkt(&m->held[i]);
    m->n_held = 0;
    m->snap_notice = false;
    wr_raft_free(m->r);
    m->r = NULL;
    m->up = false;
}

/* One round: what was sent before it is delivered; replies wait for the next. */
static void deliver(scn_t *s)
{
    pkt_t *q = s->q;
    size_t n = s->nq;

    s->q = NULL;
    s->nq = 0;
    for (size_t i = 0; i < n; i++) {
        mem_t *to = &s->m[q[i].m.to];
        if (!s->cut[q[i].m.from][q[i].m.to] && to->up) {
            if (wr_raft_step(to->r, &q[i].m) != WR_OK)
                abort();
            drive(s, (int)q[i].m.to);
        }
        free_pkt(&q[i]);
    }
    free(q);
}

static const char *role_name(wr_raft_role_t r)
{
    static const char *const names[] = {"follower", "pre-candidate", "candidate", "leader"};
    return names[r];
}

static int node_arg(scn_t *s, const char *a)
{
    int id = a ? atoi(a) : 0;
    return id >= 1 && id <= s->nodes ? id : 0;
}

static int cmd_campaign(scn_t *s, int id)
{
    wr_raft_status_t st;

    for (int i = 0; i < 100; i++) {
        if (wr_raft_tick(s->m[id].r) != WR_OK)
            abort();
        wr_raft_status(s->m[id].r, &st);
        if (st.role == WR_RAFT_PRE_CANDIDATE || st.role == WR_RAFT_CANDIDATE) {
            drive(s, id);
            return 0;
        }
    }
    return fail(s, "n%d never campaigned", id);
}

/* The membership in force on m, by id: "1,2,3,4L" (L: a learner). */
static void conf_string(const wr_raft_t *r, char *buf, size_t len)
{
    wr_raft_conf_t c;
    size_t off = 0;

    wr_raft_conf(r, &c);
    buf[0] = '\0';
    for (uint32_t id = 1; id <= MAXN; id++)
        for (size_t i = 0; i < c.n; i++)
            if (c.id[i] == id)
                off += (size_t)snprintf(buf + off, len - off, "%s%u%s", off ? "," : "", id,
                                        c.voter[i] ? "" : "L");
}

static int cmd_expect(scn_t *s, const char *what, int id, const char *v)
{
    wr_raft_status_t st;
    char buf[64];

    if (!s->m[id].up)
        return fail(s, "n%d is down", id);
    wr_raft_status(s->m[id].r, &st);
    if (strcmp(what, "role") == 0)
        snprintf(buf, sizeof(buf), "%s", role_name(st.role));
    else if (strcmp(what, "term") == 0)
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.term);
    else if (strcmp(what, "commit") == 0)
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.commit);
    else if (strcmp(what, "vote") == 0)
        snprintf(buf, sizeof(buf), "%u", st.vote);
    else if (strcmp(what, "leader") == 0)
        snprintf(buf, sizeof(buf), "%u", st.leader);
    else if (strcmp(what, "conf") == 0)
        conf_string(s->m[id].r, buf, sizeof(buf));
    else if (strcmp(what, "last") == 0)
        snprintf(buf, sizeof(buf), "%llu/%llu", (unsigned long long)st.last_term,
                 (unsigned long long)st.last_index);
    else if (strcmp(what, "snap") == 0)
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.snap_index);
    else if (strcmp(what, "first") == 0)
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)st.first_index);
    else if (strcmp(what, "state") == 0)
        snprintf(buf, sizeof(buf), "%.*s", s->m[id].sm_len ? (int)s->m[id].sm_len : 1,
                 s->m[id].sm_len ? s->m[id].sm : "-");
    else
        return fail(s, "unknown expectation %s", what);
    if (strcmp(buf, v) != 0)
        return fail(s, "n%d %s is %s, expected %s", id, what, buf, v);
    return 0;
}

static int cmd_propose(scn_t *s, int id, const char *text, bool ok)
{
    uint64_t term, index;
    int rc = wr_raft_propose(s->m[id].r, text, strlen(text), &term, &index);

    if ((rc == WR_OK) != ok)
        return fail(s, "propose on n%d: %s", id, rc == WR_OK ? "accepted" : "refused");
    drive(s, id);
    return 0;
}

/* change N add|promote|remove M; deferred: the leader must answer WR_AGAIN. */
static int cmd_change(scn_t *s, int id, const char *op, int target, bool deferred)
{
    static const char *const ops[] = {"add", "promote", "remove"};
    uint64_t term, index;
    int k = 0, rc;

    while (k < 3 && strcmp(ops[k], op) != 0)
        k++;
    if (k == 3 || target == 0)
        return fail(s, "change: bad operation or member");
    rc = wr_raft_change(s->m[id].r, (wr_raft_change_t)k, (uint32_t)target, &term, &index);
    if (rc != (deferred ? WR_AGAIN : WR_OK))
        return fail(s, "change %s n%d on n%d: status %d, expected %s", op, target, id, rc,
                    deferred ? "WR_AGAIN" : "WR_OK");
    drive(s, id);
    return 0;
}

static void set_link(scn_t *s, int a, int b, bool cut, bool both)
{
    s->cut[a][b] = cut;
    if (both)
        s->cut[b][a] = cut;
}

static void isolate(scn_t *s, int id)
{
    for (int i = 1; i <= s->nodes; i++)
        if (i != id)
            set_link(s, id, i, true, true);
}

static int cmd_ticks(scn_t *s, int id, int k)
{
    for (int i = 0; i < k; i++) {
        if (wr_raft_tick(s->m[id].r) != WR_OK)
            abort();
        drive(s, id);
    }
    return 0;
}

/* The state machine snapshots what it applied; the snapshot is durable at once. */
static int cmd_snapshot(scn_t *s, int id)
{
    mem_t *m = &s->m[id];
    wr_raft_status_t st;
    wr_raft_snapshot_t meta;
    int rc;

    wr_raft_status(m->r, &st);
    memcpy(m->snap, m->sm, m->sm_len);
    m->snap_len = m->sm_len;
    if ((rc = wr_raft_snapshot_taken(m->r, st.applied, &meta)) != WR_OK)
        return fail(s, "snapshot on n%d at %llu: status %d", id, (unsigned long long)st.applied, rc);
    m->snap_meta = meta;
    drive(s, id);
    return 0;
}

static int cmd_nodes(scn_t *s, int argc, char **a)
{
    int n = atoi(a[1]);

    if (n < 1 || n > MAXN)
        return fail(s, "bad node count");
    s->nodes = n;
    s->voters = n;
    s->batch = argc > 2 ? (unsigned)atoi(a[2]) : 64;
    s->inflight = argc > 3 ? (unsigned)atoi(a[3]) : 8;
    s->trailing = argc > 4 ? (unsigned)atoi(a[4]) : 0;
    s->chunk = s->chunk ? s->chunk : 1024;
    for (int i = 1; i <= n; i++)
        start(s, i);
    return 0;
}

/* Commands that name no member; 1 when a[0] is none of them. */
static int exec_global(scn_t *s, char **a, int argc)
{
    if (strcmp(a[0], "nodes") == 0)
        return cmd_nodes(s, argc, a);
    if (strcmp(a[0], "chunk") == 0 && argc > 1) {
        s->chunk = (unsigned)atoi(a[1]);
        return s->chunk > 0 ? 0 : fail(s, "chunk: bad size");
    }
    if (strcmp(a[0], "deliver") == 0 || strcmp(a[0], "stabilize") == 0) {
        int rounds = strcmp(a[0], "stabilize") == 0 ? 100 : (argc > 1 ? atoi(a[1]) : 1);
        for (int i = 0; i < rounds && s->nq > 0; i++)
            deliver(s);
        return 0;
    }
    if (strcmp(a[0], "heal") == 0) {
        memset(s->cut, 0, sizeof(s->cut));
        return 0;
    }
    if (strcmp(a[0], "join") == 0) {
        if (s->nodes == MAXN)
            return fail(s, "join: %d members already", MAXN);
        start(s, ++s->nodes);
        return 0;
    }
    if (strcmp(a[0], "drop") == 0) {
        for (size_t i = 0; i < s->nq; i++)
            free_pkt(&s->q[i]);
        s->nq = 0;
        return 0;
    }
    return 1;
}

static int print_member(scn_t *s, int id)
{
    wr_raft_status_t st;

    wr_raft_status(s->m[id].r, &st);
    fprintf(stderr, "%s:%d: n%d %s term %llu vote %u commit %llu last %llu/%llu\n", s->file, s->line, id,
            role_name(st.role), (unsigned long long)st.term, st.vote, (unsigned long long)st.commit,
            (unsigned long long)st.last_term, (unsigned long long)st.last_index);
    return 0;
}

/* Commands about one member's life: crash, restart, disk. */
static int exec_life(scn_t *s, const char *cmd, int id)
{
    if (strcmp(cmd, "crash") == 0) {
        crash(&s->m[id]);
        return 0;
    }
    if (strcmp(cmd, "restart") == 0) {
        start(s, id);
        return 0;
    }
    if (strcmp(cmd, "nosync") == 0) {
        s->m[id].nosync = true;
        return 0;
    }
    if (strcmp(cmd, "sync") == 0) {
        s->m[id].nosync = false;
        mem_sync(s, &s->m[id]);
        drive(s, id);
        return 0;
    }
    return strcmp(cmd, "print") == 0 ? print_member(s, id) : 1;
}

static int exec_line(scn_t *s, char **a, int argc)
{
    int id = argc > 1 ? node_arg(s, a[1]) : 0, rc = exec_global(s, a, argc);

    if (rc != 1)
        return rc;
    if (id == 0)
        return fail(s, "%s: bad node", a[0]);
    if ((rc = exec_life(s, a[0], id)) != 1)
        return rc;
    if (strcmp(a[0], "campaign") == 0)
        return cmd_campaign(s, id);
    if (strcmp(a[0], "snapshot") == 0)
        return cmd_snapshot(s, id);
    if (strcmp(a[0], "transfer") == 0 && argc > 2) {
        if (wr_raft_transfer(s->m[id].r, (uint32_t)node_arg(s, a[2])) != WR_OK)
            return fail(s, "transfer refused by n%d", id);
        drive(s, id);
        return 0;
    }
    if (strcmp(a[0], "tick") == 0)
        return cmd_ticks(s, id, argc > 2 ? atoi(a[2]) : 1);
    if (strcmp(a[0], "propose") == 0 && argc > 2)
        return cmd_propose(s, id, a[2], true);
    if (strcmp(a[0], "propose-refused") == 0 && argc > 2)
        return cmd_propose(s, id, a[2], false);
    if (strncmp(a[0], "change", 6) == 0 && argc > 3)
        return cmd_change(s, id, a[2], node_arg(s, a[3]), strcmp(a[0], "change-deferred") == 0);
    if (strcmp(a[0], "isolate") == 0) {
        isolate(s, id);
        return 0;
    }
    if (strcmp(a[0], "cut") == 0 && argc > 2) {
        set_link(s, id, node_arg(s, a[2]), true, argc < 4 || strcmp(a[3], "one-way") != 0);
        return 0;
    }
    if (strncmp(a[0], "expect-", 7) == 0 && argc > 2)
        return cmd_expect(s, a[0] + 7, id, a[2]);
    return fail(s, "unknown command %s", a[0]);
}

static void teardown(scn_t *s)
{
    for (int i = 1; i <= s->nodes; i++) {
        mem_t *m = &s->m[i];
        if (m->up)
            crash(m);
        free_entries(m->log, m->n);
        free(m->held);
    }
    for (size_t i = 0; i < s->nq; i++)
        free_pkt(&s->q[i]);
    free(s->q);
}

static int split(char *line, char **a, int max)
{
    int n = 0;

    for (char *t = strtok(line, " \t\n"); t != NULL && n < max; t = strtok(NULL, " \t\n")) {
        if (t[0] == '#')
            break;
        a[n++] = t;
    }
    return n;
}

int scn_run(const char *path, char *err, size_t len)
{
    scn_t s = {.file = path, .err = err, .len = len};
    FILE *f = fopen(path, "r");
    char line[512], *a[8];

    if (f == NULL) {
        snprintf(err, len, "%s: cannot open", path);
        return -1;
    }
    while (!s.failed && fgets(line, sizeof(line), f) != NULL) {
        int argc = split(line, a, 8);
        s.line++;
        if (argc > 0 && (s.nodes > 0 || strcmp(a[0], "nodes") == 0))
            exec_line(&s, a, argc);
        else if (argc > 0)
            fail(&s, "the first command must be nodes");
    }
    fclose(f);
    teardown(&s);
    return s.failed ? -1 : 0;
}
