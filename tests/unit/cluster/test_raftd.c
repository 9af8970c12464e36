/* SPDX-License-Identifier: MIT */
/*
 * Tests of the Raft driver (broker/cluster/raftd.c): three drivers in one
 * process on one event_base, each with its own peer links on loopback and
 * its own directory, driving a toy state machine (the list of strings
 * applied). Every wait is a condition with a deadline.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "broker/cluster/raftd.h"
#include "broker/cluster/raftd_internal.h"
#include "core/status.h"
#include "storage/vfs.h"
#include "tests/unit/runner.h"
#include "tests/unit/cluster/free_port.h"

#define N      3
#define SECRET "0123456789abcdef0123456789abcdef"
#define MAXS   256

/* The toy state machine: the strings applied, in order. */
typedef struct {
    char *s[MAXS];
    size_t n;
    uint64_t last;              /* the last index applied */
    int loads;                  /* snapshot_load calls */
    uint64_t streamed;          /* bytes of the last snapshot snapshot_stream read */
    size_t pieces;              /* reads it made */
    char clock[9];              /* this node's clock, as the stamping toy writes it (stamp_sm) */
    int stamps;                 /* stamp calls */
    uint64_t saved;             /* the index the last snapshot_save wrote */
    void (*on_save)(void *arg); /* called once, at the next snapshot_save */
    void *on_save_arg;
} toy_t;

/* A disk whose fdatasync, off the loop's thread, waits while the gate is closed, or fails. */
typedef struct {
    wr_vfs_t vfs;
    wr_vfs_ops_t ops;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed, failing;
    pthread_t loop;
    unsigned snap_renames[2]; /* a taken snapshot's rename into place: [0] on the loop, [1] off it */
} gate_t;

typedef struct cl_s cl_t;

typedef struct {
    cl_t *cl;
    int i;
    wr_raftd_t *d;
    wr_peer_links_t *links;
    wr_rgroup_t *g;
    toy_t toy;
    gate_t gate;
    char dir[256];
    wr_cluster_config_t cfg;
    int removed;       /* watch.removed calls */
    char stranger[16]; /* the last node watch.stranger named */
} node_t;

struct cl_s {
    struct event_base *base;
    wr_cluster_node_t nodes[N];
    node_t n[N];
    char root[128];
    unsigned snapshot_every, chunk;
    size_t members;           /* the group's first voters: nodes[0..members) */
    const wr_rgroup_sm_t *sm; /* NULL: toy_sm */
};

typedef struct {
    int calls, status;
    uint64_t index;
    size_t applied_then; /* strings applied on the proposing node when done ran */
} done_t;

/* ---- the toy ---- */

static void toy_reset(toy_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    t->n = 0;
    t->last = 0;
}

static void toy_apply(void *ud, uint64_t index, const uint8_t *data, size_t len)
{
    toy_t *t = ud;

    ck_assert_uint_gt(index, t->last);
    ck_assert_uint_lt(t->n, MAXS);
    t->last = index;
    t->s[t->n] = strndup((const char *)data, len);
    t->n++;
}

static int toy_save(void *ud, wr_buf_t *out)
{
    toy_t *t = ud;

    t->saved = t->last;
    if (t->on_save != NULL) {
        t->on_save(t->on_save_arg);
        t->on_save = NULL;
    }
    wr_buf_put_u64(out, t->last);
    wr_buf_put_u32(out, (uint32_t)t->n);
    for (size_t i = 0; i < t->n; i++) {
        wr_buf_put_u32(out, (uint32_t)strlen(t->s[i]));
        wr_buf_put(out, t->s[i], strlen(t->s[i]));
    }
    return wr_buf_ok(out) ? WR_OK : WR_ENOMEM;
}

static uint64_t rd(const uint8_t **p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | *(*p)++;
    return v;
}

static int toy_load(void *ud, const uint8_t *data, size_t len)
{
    toy_t *t = ud;
    const uint8_t *p = data, *end = data + len;
    size_t n;

    if (len < 12)
        return WR_ESYNTAX;
    toy_reset(t);
    t->loads++;
    t->last = rd(&p, 8);
    n = (size_t)rd(&p, 4);
    for (size_t i = 0; i < n && n <= MAXS; i++) {
        size_t l;
        if (end - p < 4)
            return WR_ESYNTAX;
        l = (size_t)rd(&p, 4);
        if ((size_t)(end - p) < l)
            return WR_ESYNTAX;
        t->s[t->n++] = strndup((const char *)p, l);
        p += l;
    }
    return p == end ? WR_OK : WR_ESYNTAX;
}

static const wr_rgroup_sm_t toy_sm = {toy_apply, toy_save, toy_load, NULL, NULL, NULL, NULL};

/* toy_load's format read through the driver a field at a time (snapshot_stream), never whole. */
static bool toy_piece(toy_t *t, wr_rgroup_snap_in_t *in, void *to, size_t len)
{
    t->pieces++;
    return wr_rgroup_snap_in_read(in, to, len) == WR_OK;
}

static int toy_stream(void *ud, wr_rgroup_snap_in_t *in)
{
    toy_t *t = ud;
    uint8_t h[12], str[64];
    const uint8_t *p = h;
    size_t n, l;

    t->pieces = 0;
    t->streamed = wr_rgroup_snap_in_left(in);
    if (!toy_piece(t, in, h, sizeof(h)))
        return WR_ESYNTAX;
    toy_reset(t);
    t->loads++;
    t->last = rd(&p, 8);
    n = (size_t)rd(&p, 4);
    for (size_t i = 0; i < n && n <= MAXS; i++) {
        p = h;
        if (!toy_piece(t, in, h, 4) || (l = (size_t)rd(&p, 4)) > sizeof(str) || !toy_piece(t, in, str, l))
            return WR_ESYNTAX;
        t->s[t->n++] = strndup((const char *)str, l);
    }
    return wr_rgroup_snap_in_left(in) == 0 ? WR_OK : WR_ESYNTAX;
}

static const wr_rgroup_sm_t stream_sm = {toy_apply, toy_save, NULL, NULL, NULL, NULL, toy_stream};

/* The leader writes its clock over an entry's first 8 bytes. */
static void toy_stamp(void *ud, uint8_t *entry, size_t len)
{
    toy_t *t = ud;

    t->stamps++;
    memcpy(entry, t->clock, len < 8 ? len : 8);
}

static const wr_rgroup_sm_t stamp_sm = {toy_apply, toy_save, toy_load, NULL, NULL, toy_stamp, NULL};

/* ---- the gated disk ---- */

static int gate_datasync(wr_vfs_file_t *f)
{
    gate_t *g = (gate_t *)f->vfs;
    bool failing;

    pthread_mutex_lock(&g->mu);
    while (g->closed && !pthread_equal(pthread_self(), g->loop))
        pthread_cond_wait(&g->cv, &g->mu);
    failing = g->failing && !pthread_equal(pthread_self(), g->loop);
    pthread_mutex_unlock(&g->mu);
    return failing ? WR_EIO : wr_vfs_posix()->ops->datasync(f);
}

/* Counts where a taken snapshot (snap.tmp) is renamed into place. */
static int gate_rename(const wr_vfs_t *v, const char *from, const char *to)
{
    gate_t *g = (gate_t *)v;
    size_t n = strlen(from);

    if (n >= 9 && strcmp(from + n - 9, "/snap.tmp") == 0) {
        pthread_mutex_lock(&g->mu);
        g->snap_renames[!pthread_equal(pthread_self(), g->loop)]++;
        pthread_mutex_unlock(&g->mu);
    }
    return wr_vfs_posix()->ops->rename(wr_vfs_posix(), from, to);
}

/* The posix implementation's files keep their vfs pointer: open through it, then point them here. */
static int gate_open(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out)
{
    int rc = wr_vfs_posix()->ops->open(wr_vfs_posix(), path, create, out);

    if (rc == WR_OK)
        (*out)->vfs = v;
    return rc;
}

static void gate_init(gate_t *g)
{
    g->ops = *wr_vfs_posix()->ops;
    g->ops.open = gate_open;
    g->ops.datasync = gate_datasync;
    g->ops.rename = gate_rename;
    g->vfs = (wr_vfs_t){&g->ops, NULL};
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->loop = pthread_self();
}

static void gate_fail(gate_t *g, bool failing)
{
    pthread_mutex_lock(&g->mu);
    g->failing = failing;
    pthread_mutex_unlock(&g->mu);
}

static void gate_set(gate_t *g, bool closed)
{
    pthread_mutex_lock(&g->mu);
    g->closed = closed;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- the cluster ---- */

static uint16_t free_port(void)
{
    uint16_t port = wr_test_free_port();

    ck_assert_uint_ne(port, 0);
    return port;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_raft(void *ctx, const char *node, uint64_t group, const wr_raft_msg_t *m)
{
    node_t *n = ctx;

    if (n->d)
        wr_raftd_on_raft(n->d, node, group, m);
}

static void on_watch_removed(void *ud, uint64_t group)
{
    ((node_t *)ud)->removed++;
}

static void on_watch_stranger(void *ud, uint64_t group, const char *node)
{
    node_t *n = ud;

    snprintf(n->stranger, sizeof(n->stranger), "%s", node);
}

static void node_start(cl_t *c, int i)
{
    node_t *n = &c->n[i];
    const wr_peer_handler_t h = {.on_raft = on_raft, .ctx = n};
    const char *members[N] = {"n1", "n2", "n3"};
    wr_raftd_opts_t o = {.base = c->base,
                         .cluster = &n->cfg,
                         .dir = n->dir,
                         .tick_ms = 20,
                         .vfs = &n->gate.vfs,
                         .snap_chunk = c->chunk,
                         .watch = {on_watch_removed, on_watch_stranger, n}};

    n->links = wr_peer_links_new(c->base, &n->cfg, &h);
    ck_assert_ptr_nonnull(n->links);
    o.links = n->links;
    ck_assert_int_eq(wr_raftd_open(&o, &n->d), WR_OK);
    ck_assert_int_eq(wr_peer_links_start(n->links), WR_OK);
    n->g = wr_rgroup_open(n->d, WR_RGROUP_META, members, c->members, c->snapshot_every,
                          c->sm != NULL ? c->sm : &toy_sm, &n->toy);
    ck_assert_ptr_nonnull(n->g);
}

static void node_stop(cl_t *c, int i)
{
    node_t *n = &c->n[i];

    gate_set(&n->gate, false);
    wr_raftd_close(n->d);
    n->d = NULL;
    n->g = NULL;
    wr_peer_links_free(n->links);
    n->links = NULL;
    toy_reset(&n->toy);
    n->toy.loads = 0;
}

static void cl_init(cl_t *c, unsigned snapshot_every, unsigned chunk)
{
    memset(c, 0, sizeof(*c));
    signal(SIGPIPE, SIG_IGN); /* as warrend does: a link to a node just closed may be written to */
    wr_log_set_level(WR_LOG_ERROR);
    c->base = event_base_new();
    c->snapshot_every = snapshot_every;
    c->chunk = chunk;
    c->members = N;
    snprintf(c->root, sizeof(c->root), "/tmp/test_raftd.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(c->root));
    for (int i = 0; i < N; i++) {
        static const char *names[N] = {"n1", "n2", "n3"};
        c->nodes[i] = (wr_cluster_node_t){(char *)names[i], "127.0.0.1", free_port()};
    }
    for (int i = 0; i < N; i++) {
        node_t *n = &c->n[i];
        n->cl = c;
        n->i = i;
        snprintf(n->dir, sizeof(n->dir), "%s/%s", c->root, c->nodes[i].name);
        n->cfg = (wr_cluster_config_t){"warren",
                                       c->nodes[i].name,
                                       (uint8_t *)SECRET,
                                       strlen(SECRET),
                                       "127.0.0.1",
                                       c->nodes[i].port,
                                       c->nodes,
                                       N,
                                       (size_t)i,
                                       false,
                                       NULL,
                                       0};
        gate_init(&n->gate);
    }
}

static void cl_free(cl_t *c)
{
    char cmd[256];

    for (int i = 0; i < N; i++) {
        if (c->n[i].d)
            node_stop(c, i);
    }
    event_base_free(c->base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->root);
    ck_assert_int_eq(system(cmd), 0);
}

typedef bool (*cond_fn)(cl_t *c, void *arg);

/* Runs the loop until cond holds, failing after secs. */
static void run_until(cl_t *c, cond_fn cond, void *arg, double secs, const char *what)
{
    double deadline = now() + secs;

    while (!cond(c, arg)) {
        ck_assert_msg(now() < deadline, "timed out waiting for %s", what);
        event_base_loop(c->base, EVLOOP_ONCE);
    }
}

static bool is_role(cl_t *c, int i, const char *role)
{
    wr_rgroup_status_t st;

    wr_rgroup_status(c->n[i].g, &st);
    return strcmp(st.role, role) == 0;
}

/* The node every running member agrees leads, or -1. */
static int leader_of(cl_t *c)
{
    int leader = -1;

    for (int i = 0; i < N; i++) {
        wr_rgroup_status_t st;
        if (c->n[i].g == NULL)
            continue;
        wr_rgroup_status(c->n[i].g, &st);
        if (st.leader == NULL)
            return -1;
        if (leader >= 0 && strcmp(c->nodes[leader].name, st.leader) != 0)
            return -1;
        leader = st.leader[1] - '1';
    }
    return leader >= 0 && c->n[leader].g && is_role(c, leader, "leader") ? leader : -1;
}

static bool has_leader(cl_t *c, void *arg)
{
    return leader_of(c) >= 0;
}

static int wait_leader(cl_t *c)
{
    run_until(c, has_leader, NULL, 10, "a leader");
    return leader_of(c);
}

static void on_done(void *ud, int status, uint64_t index)
{
    done_t *d = ud;

    d->calls++;
    d->status = status;
    d->index = index;
}

/* A done that also notes how much its node had applied then. */
typedef struct {
    done_t done;
    toy_t *toy;
} done_at_t;

static void on_done_at(void *ud, int status, uint64_t index)
{
    done_at_t *d = ud;

    on_done(&d->done, status, index);
    d->done.applied_then = d->toy->n;
}

static bool is_done(cl_t *c, void *arg)
{
    return ((done_t *)arg)->calls > 0;
}

static void propose(cl_t *c, int i, const char *s, unsigned timeout_ms, done_t *d)
{
    memset(d, 0, sizeof(*d));
    ck_assert_int_eq(wr_rgroup_propose(c->n[i].g, s, strlen(s), timeout_ms, on_done, d), WR_OK);
    ck_assert_int_eq(d->calls, 0); /* never inside wr_rgroup_propose */
}

/* Proposes s on node i and waits for WR_OK. */
static void commit(cl_t *c, int i, const char *s)
{
    done_t d;

    propose(c, i, s, 5000, &d);
    run_until(c, is_done, &d, 10, s);
    ck_assert_int_eq(d.status, WR_OK);
}

/* Every running node applied the same strings as node ref. */
static bool same_as(cl_t *c, void *arg)
{
    const toy_t *r = &c->n[*(int *)arg].toy;

    for (int i = 0; i < N; i++) {
        const toy_t *t = &c->n[i].toy;
        if (c->n[i].g == NULL)
            continue;
        if (t->n != r->n)
            return false;
        for (size_t k = 0; k < t->n; k++) {
            if (strcmp(t->s[k], r->s[k]) != 0)
                return false;
        }
    }
    return true;
}

/* Node *arg's driver has seen its WAL fail (a batch's fdatasync failed on the storage thread). */
static bool wal_failed(cl_t *c, void *arg)
{
    return c->n[*(const int *)arg].d->failed;
}

static bool holds_n(cl_t *c, void *arg)
{
    const int *want = arg; /* node, count */

    return c->n[want[0]].toy.n >= (size_t)want[1];
}

START_TEST(proposals_from_leader_and_follower_apply_everywhere)
{
    static char big[WR_RGROUP_MAX_ENTRY + 1];
    cl_t c;
    int l, f, ref;
    done_at_t a = {0}, b = {0};

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    a.toy = &c.n[l].toy;
    b.toy = &c.n[f].toy;
    ck_assert_int_eq(wr_rgroup_propose(c.n[l].g, "from-leader", 11, 5000, on_done_at, &a), WR_OK);
    ck_assert_int_eq(wr_rgroup_propose(c.n[f].g, "from-follower", 13, 5000, on_done_at, &b), WR_OK);
    ck_assert_int_eq(a.done.calls + b.done.calls, 0);
    /* An entry too big for an AppendEntries batch is refused at once, done not called. */
    ck_assert_int_eq(wr_rgroup_propose(c.n[f].g, big, sizeof(big), 5000, on_done_at, &b), WR_ETOOBIG);
    run_until(&c, is_done, &a.done, 10, "the leader's proposal");
    run_until(&c, is_done, &b.done, 10, "the follower's proposal");
    ck_assert_int_eq(a.done.status, WR_OK);
    ck_assert_int_eq(b.done.status, WR_OK);
    /* done ran after the local apply of its entry. */
    ck_assert_uint_ge(a.done.applied_then, 1);
    ck_assert_str_eq(c.n[l].toy.s[a.done.applied_then - 1], "from-leader");
    ck_assert_str_eq(c.n[f].toy.s[b.done.applied_then - 1], "from-follower");
    ref = l;
    run_until(&c, same_as, &ref, 10, "the same state on all three");
    ck_assert_uint_eq(c.n[l].toy.n, 2);
    cl_free(&c);
}
END_TEST

static bool all_done(cl_t *c, void *arg)
{
    const done_at_t *d = arg;

    for (int k = 0; k < 200; k++) {
        if (d[k].done.calls == 0)
            return false;
    }
    return true;
}

/* 200 proposals in flight at once, from the leader and a follower in turn:
 * each ends once, WR_OK, right after its own entry applied on its node. */
START_TEST(many_in_flight_each_ends_after_its_apply)
{
    static done_at_t d[200];
    char s[32];
    cl_t c;
    int l, f, at;

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    for (int k = 0; k < 200; k++) {
        at = k % 2 ? f : l;
        d[k] = (done_at_t){.toy = &c.n[at].toy};
        snprintf(s, sizeof(s), "p-%d", k);
        ck_assert_int_eq(wr_rgroup_propose(c.n[at].g, s, strlen(s), 5000, on_done_at, &d[k]), WR_OK);
    }
    run_until(&c, all_done, d, 10, "every proposal's done");
    for (int k = 0; k < 200; k++) {
        at = k % 2 ? f : l;
        snprintf(s, sizeof(s), "p-%d", k);
        ck_assert_int_eq(d[k].done.calls, 1);
        ck_assert_int_eq(d[k].done.status, WR_OK);
        ck_assert_uint_ge(d[k].done.applied_then, 1);
        ck_assert_str_eq(c.n[at].toy.s[d[k].done.applied_then - 1], s);
    }
    cl_free(&c);
}
END_TEST

/* Time in a quorum queue's entries is the leader's (issue 15): a follower
 * whose clock is an hour ahead proposes, and every member applies the
 * leader's clock; the follower's stamp is never asked. */
START_TEST(the_leader_stamps_every_entry)
{
    cl_t c;
    int l, f, ref;
    done_t d;

    cl_init(&c, 0, 0);
    c.sm = &stamp_sm;
    for (int i = 0; i < N; i++) {
        node_start(&c, i);
        snprintf(c.n[i].toy.clock, sizeof(c.n[i].toy.clock), "%08d", 10000000 + i * 3600);
    }
    l = wait_leader(&c);
    f = (l + 1) % N;
    commit(&c, f, "........from-follower");
    commit(&c, l, "........from-leader");
    propose(&c, f, "short", 5000, &d);
    run_until(&c, is_done, &d, 10, "a short entry");
    ref = l;
    run_until(&c, same_as, &ref, 10, "the same state on all three");
    ck_assert_uint_eq(c.n[f].toy.n, 3);
    ck_assert_str_eq(c.n[f].toy.s[0], strcat(strcpy((char[32]){0}, c.n[l].toy.clock), "from-follower"));
    ck_assert_str_eq(c.n[f].toy.s[1], strcat(strcpy((char[32]){0}, c.n[l].toy.clock), "from-leader"));
    ck_assert_int_eq(memcmp(c.n[f].toy.s[2], c.n[l].toy.clock, 5), 0);
    ck_assert_int_eq(c.n[l].toy.stamps, 3);
    ck_assert_int_eq(c.n[f].toy.stamps + c.n[(l + 2) % N].toy.stamps, 0);
    cl_free(&c);
}
END_TEST

static bool not_leader(cl_t *c, void *arg)
{
    return !is_role(c, *(int *)arg, "leader");
}

/*
 * Two of three down. A proposal the leader appends before it notices cannot
 * commit: WR_ETIMEDOUT (the outcome is unknown to the caller: the entry may
 * still commit if the others come back). Once check-quorum has made it step
 * down no leader is known: WR_ENOENT at once, nothing appended.
 */
START_TEST(no_quorum_times_out_then_has_no_leader)
{
    cl_t c;
    int l;
    done_t d;

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    commit(&c, l, "before");
    node_stop(&c, (l + 1) % N);
    node_stop(&c, (l + 2) % N);
    propose(&c, l, "lost", 500, &d);
    run_until(&c, is_done, &d, 10, "the proposal without a quorum");
    ck_assert_int_eq(d.status, WR_ETIMEDOUT);
    ck_assert_uint_eq(c.n[l].toy.n, 1); /* appended, never applied */
    run_until(&c, not_leader, &l, 10, "the leader stepping down");
    propose(&c, l, "nobody", 5000, &d);
    run_until(&c, is_done, &d, 10, "the proposal without a leader");
    ck_assert_int_eq(d.status, WR_ENOENT);
    ck_assert_uint_eq(c.n[l].toy.n, 1);
    cl_free(&c);
}
END_TEST

/* A done that proposes again while it can (as the metadata group's seed does when it was not committed). */
typedef struct {
    wr_rgroup_t *g;
    int calls, refused;
} again_t;

static void on_done_again(void *ud, int status, uint64_t index)
{
    again_t *a = ud;

    a->calls++;
    if (a->calls < 1000 && wr_rgroup_propose(a->g, "again", 5, 5000, on_done_again, a) != WR_OK)
        a->refused++;
}

/*
 * Closing the driver ends a proposal that cannot commit (no quorum); its done
 * proposes again, and that is refused: before, each one was appended and
 * ended by the same close, which looped for as long as done kept proposing
 * (a node stopping with its definitions' seed uncommitted never exited).
 */
START_TEST(a_proposal_made_while_closing_is_refused)
{
    cl_t c;
    int l;
    again_t a = {0};

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    node_stop(&c, (l + 1) % N);
    node_stop(&c, (l + 2) % N);
    a.g = c.n[l].g;
    ck_assert_int_eq(wr_rgroup_propose(a.g, "lost", 4, 5000, on_done_again, &a), WR_OK);
    node_stop(&c, l);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.refused, 1);
    cl_free(&c);
}
END_TEST

/* Commits entries "<prefix><k>" for k in [from, to) on leader l, one at a time. */
static void commit_range(cl_t *c, int l, const char *prefix, int from, int to)
{
    char s[32];

    for (int k = from; k < to; k++) {
        snprintf(s, sizeof(s), "%s%d", prefix, k);
        commit(c, l, s);
    }
}

/* Starts every node, commits 12 entries ("<prefix><k>") on the leader and waits until *f (the node after it)
 * has applied them; the leader. */
static int up_with_12_applied(cl_t *c, const char *prefix, int *f)
{
    int l, want[2];

    for (int i = 0; i < N; i++)
        node_start(c, i);
    l = wait_leader(c);
    *f = (l + 1) % N;
    commit_range(c, l, prefix, 0, 12);
    want[0] = *f;
    want[1] = 12;
    run_until(c, holds_n, want, 10, "the follower applying 12");
    return l;
}

/* A restarted member comes back from its snapshot and WAL before wr_rgroup_open returns, then catches up. */
START_TEST(restart_recovers_from_snapshot_and_wal)
{
    cl_t c;
    int l, f, ref;
    wr_rgroup_status_t st;
    wr_buf_t b = WR_BUF_INIT;
    const uint8_t *p;

    cl_init(&c, 5, 0);
    l = up_with_12_applied(&c, "e", &f);
    node_stop(&c, f);
    commit_range(&c, l, "e", 12, 17);
    node_start(&c, f);
    wr_rgroup_status(c.n[f].g, &st);
    ck_assert_int_eq(c.n[f].toy.loads, 1); /* its own snapshot */
    ck_assert_uint_gt(st.snapshot_index, 0);
    /* The state machine's bytes of the snapshot served read back: the toy's first field is its index. */
    ck_assert_int_eq(wr_rgroup_snap_read(c.n[f].g, 0, 8, &b), WR_OK);
    p = b.data;
    ck_assert_uint_eq(rd(&p, 8), st.snapshot_index);
    ck_assert_int_eq(wr_rgroup_snap_read(c.n[f].g, 1, 1 << 20, &b), WR_ENOENT);
    wr_buf_free(&b);
    ck_assert_uint_eq(c.n[f].toy.n, 12); /* then the committed entries of its WAL */
    ck_assert_str_eq(c.n[f].toy.s[11], "e11");
    ref = l;
    run_until(&c, same_as, &ref, 10, "the restarted member catching up");
    ck_assert_uint_eq(c.n[f].toy.n, 17);
    cl_free(&c);
}
END_TEST

static unsigned snap_renames(gate_t *g, int off_loop)
{
    unsigned n;

    pthread_mutex_lock(&g->mu);
    n = g->snap_renames[off_loop];
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* Every member has a snapshot the core knows of. */
static bool all_snapshotted(cl_t *c, void *arg)
{
    for (int i = 0; i < N; i++) {
        wr_rgroup_status_t st;
        wr_rgroup_status(c->n[i].g, &st);
        if (st.snapshot_index == 0)
            return false;
    }
    return true;
}

/*
 * A snapshot taken is fdatasynced, renamed into place and its directory
 * fsynced on the WAL's storage thread, not on the event loop, which stopped
 * for that long (docs/QUORUM.md, the p99 at 1,000 msg/s); the core hears of
 * it once it is durable, and a restart loads it.
 */
START_TEST(snapshots_are_made_durable_off_the_loop)
{
    cl_t c;
    int l, f, ref;
    wr_rgroup_status_t st;

    cl_init(&c, 4, 0);
    l = up_with_12_applied(&c, "e", &f);
    run_until(&c, all_snapshotted, NULL, 10, "every member taking a snapshot");
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(snap_renames(&c.n[i].gate, 0), 0);
        ck_assert_uint_gt(snap_renames(&c.n[i].gate, 1), 0);
    }
    commit_range(&c, l, "e", 12, 20);
    node_stop(&c, f);
    node_start(&c, f);
    wr_rgroup_status(c.n[f].g, &st);
    ck_assert_int_eq(c.n[f].toy.loads, 1);
    ck_assert_uint_gt(st.snapshot_index, 0);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the restarted member catching up");
    ck_assert_uint_eq(snap_renames(&c.n[l].gate, 0), 0);
    cl_free(&c);
}
END_TEST

static void close_gate(void *arg)
{
    gate_set(arg, true);
}

static bool leader_snapshotted(cl_t *c, void *arg)
{
    wr_rgroup_status_t st;

    wr_rgroup_status(c->n[*(int *)arg].g, &st);
    return st.snapshot_index > 0;
}

/*
 * A snapshot taken is served at once (a quorum queue's snapshot_save points
 * its body index at the new file as it returns: wr_rgroup_snap_read), while
 * the core hears of it only once the storage thread made it durable: here
 * the leader's disk holds every fdatasync off the loop from snapshot_save on.
 */
START_TEST(a_snapshot_is_served_at_once_and_reported_once_durable)
{
    cl_t c;
    int l, k = 0, ref;
    char s[16];
    wr_buf_t b = WR_BUF_INIT;
    wr_rgroup_status_t st;
    const uint8_t *p;

    cl_init(&c, 4, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    c.n[l].toy.on_save = close_gate;
    c.n[l].toy.on_save_arg = &c.n[l].gate;
    while (c.n[l].toy.saved == 0) {
        ck_assert_int_lt(k, 20);
        snprintf(s, sizeof(s), "e%d", k++);
        commit(&c, l, s);
    }
    ck_assert_int_eq(wr_rgroup_snap_read(c.n[l].g, 0, 8, &b), WR_OK);
    p = b.data;
    ck_assert_uint_eq(rd(&p, 8), c.n[l].toy.saved);
    wr_rgroup_status(c.n[l].g, &st);
    ck_assert_uint_eq(st.snapshot_index, 0);
    gate_set(&c.n[l].gate, false);
    ref = l;
    run_until(&c, leader_snapshotted, &ref, 10, "the leader's core hearing of its snapshot");
    wr_rgroup_status(c.n[l].g, &st);
    ck_assert_uint_eq(st.snapshot_index, c.n[l].toy.saved);
    wr_buf_free(&b);
    cl_free(&c);
}
END_TEST

/*
 * A state machine with snapshot_stream reads its snapshot through the driver,
 * which reads the file 16 bytes at a time (snap_chunk): at open, its own
 * (several times the chunk), then, far behind, the leader's installed.
 */
START_TEST(snapshots_load_in_chunks)
{
    cl_t c;
    int l, f, ref;
    char s[32];
    wr_rgroup_status_t st;

    cl_init(&c, 5, 16);
    c.sm = &stream_sm;
    l = up_with_12_applied(&c, "entry-", &f);
    node_stop(&c, f);
    node_start(&c, f);
    wr_rgroup_status(c.n[f].g, &st);
    ck_assert_int_eq(c.n[f].toy.loads, 1);
    ck_assert_uint_gt(st.snapshot_index, 0);
    ck_assert_uint_gt(c.n[f].toy.streamed, 4 * 16);
    ck_assert_uint_gt(c.n[f].toy.pieces, 2);
    ck_assert_uint_eq(c.n[f].toy.n, 12);
    for (int k = 0; k < 12; k++) {
        snprintf(s, sizeof(s), "entry-%d", k);
        ck_assert_str_eq(c.n[f].toy.s[k], s);
    }
    node_stop(&c, f);
    commit_range(&c, l, "entry-", 12, 40);
    node_start(&c, f);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the member installing the leader's snapshot");
    ck_assert_int_eq(c.n[f].toy.loads, 2);
    ck_assert_uint_gt(c.n[f].toy.streamed, 16 * 16);
    ck_assert_str_eq(c.n[f].toy.s[39], "entry-39");
    cl_free(&c);
}
END_TEST

/* A member far behind a leader that compacted its log gets its snapshot, in chunks of 16 bytes. */
START_TEST(far_behind_installs_a_snapshot)
{
    cl_t c;
    int l, f, ref;

    cl_init(&c, 4, 16);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    node_stop(&c, f);
    commit_range(&c, l, "entry-", 0, 30);
    node_start(&c, f);
    ck_assert_int_eq(c.n[f].toy.loads, 0);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the member installing the leader's snapshot");
    ck_assert_int_eq(c.n[f].toy.loads, 1);
    ck_assert_uint_eq(c.n[f].toy.n, 30);
    /* It goes on from there. */
    commit(&c, l, "after");
    run_until(&c, same_as, &ref, 10, "the entry after the snapshot");
    cl_free(&c);
}
END_TEST

/*
 * A member behind by more than the leader's payload window is served from the
 * leader's WAL (the core holds no payload it can read back), and a restarted
 * member applies its log at open from the WAL too: the same strings everywhere.
 */
START_TEST(far_behind_served_from_the_wal)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_rgroup_status_t st;
    cl_t c;
    int l, f, ref;

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    node_stop(&c, f);
    commit_range(&c, l, "entry-", 0, 100);
    node_start(&c, f);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the member catching up from the leader's WAL");
    ck_assert_uint_eq(c.n[f].toy.n, 100);
    ck_assert_str_eq(c.n[f].toy.s[99], "entry-99");
    wr_rgroup_status(c.n[l].g, &st);
    ck_assert_uint_ge(st.read_backs, 100 - 64);
    ck_assert_int_eq(c.n[f].toy.loads, 0); /* from the log, not a snapshot */
    node_stop(&c, l);
    node_start(&c, l);
    wr_rgroup_status(c.n[l].g, &st);
    ck_assert_uint_eq(c.n[l].toy.n, 100); /* applied at open, each payload read back */
    ck_assert_uint_ge(st.read_backs, 100);
    ck_assert_str_eq(c.n[l].toy.s[0], "entry-0");
    /* What the state machine applied reads back by index; nothing past the log. */
    ck_assert_int_eq(wr_rgroup_read(c.n[l].g, c.n[l].toy.last, &b), WR_OK);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_int_eq(memcmp(b.data, "entry-99", 8), 0);
    ck_assert_int_eq(wr_rgroup_read(c.n[l].g, st.last_index + 100, &b), WR_ENOENT);
    wr_buf_free(&b);
    run_until(&c, same_as, &ref, 10, "the same strings after the restart");
    cl_free(&c);
}
END_TEST

static void flip_byte(const char *path, long off)
{
    FILE *fp = fopen(path, "r+b");
    int ch;

    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, off, SEEK_SET), 0);
    ch = fgetc(fp);
    ck_assert_int_ne(ch, EOF);
    ck_assert_int_eq(fseek(fp, off, SEEK_SET), 0);
    fputc(ch ^ 0x40, fp);
    fclose(fp);
}

/*
 * A snapshot file that fails its CRC at open: nothing of it is loaded and
 * nothing applied (the WAL was compacted past entries only it held); the
 * member refetches the state from the leader (raft.h: snapshot_lost).
 */
START_TEST(corrupt_snapshot_is_refetched)
{
    cl_t c;
    int l, f, ref, want[2];
    char path[512];
    wr_rgroup_status_t st;

    cl_init(&c, 4, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    commit_range(&c, l, "x", 0, 20);
    want[0] = f;
    want[1] = 20;
    run_until(&c, holds_n, want, 10, "the follower applying 20");
    wr_rgroup_status(c.n[f].g, &st);
    ck_assert_uint_gt(st.snapshot_index, 0);
    node_stop(&c, f);
    snprintf(path, sizeof(path), "%s/snap/%d/snap", c.n[f].dir, WR_RGROUP_META);
    flip_byte(path, 40);
    node_start(&c, f);
    ck_assert_int_eq(c.n[f].toy.loads, 0);
    ck_assert_uint_eq(c.n[f].toy.n, 0);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the member refetching its state");
    ck_assert_int_eq(c.n[f].toy.loads, 1);
    ck_assert_uint_eq(c.n[f].toy.n, 20);
    cl_free(&c);
}
END_TEST

static bool any_leader(cl_t *c, void *arg)
{
    for (int i = 0; i < N; i++) {
        if (c->n[i].g && is_role(c, i, "leader"))
            return true;
    }
    return false;
}

/*
 * msgs_after_sync wait for the disk: with one of the two survivors unable to
 * fsync, its vote (or its own vote request) never leaves, so no leader can
 * be elected for a window of many election timeouts (the only test here
 * that watches for an absence); once its disk syncs again one is.
 */
START_TEST(votes_wait_for_the_disk)
{
    cl_t c;
    int l, f;
    double until;

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    gate_set(&c.n[f].gate, true);
    node_stop(&c, l);
    until = now() + 2.0; /* 5 to 10 election timeouts of 200-400 ms */
    while (now() < until) {
        ck_assert_msg(!any_leader(&c, NULL), "a leader was elected with a vote not yet durable");
        event_base_loop(c.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    gate_set(&c.n[f].gate, false);
    run_until(&c, any_leader, NULL, 10, "a leader once the disk syncs");
    cl_free(&c);
}
END_TEST

static bool one_of_two_leads(cl_t *c, void *arg)
{
    return is_role(c, 0, "leader") || is_role(c, 1, "leader");
}

static bool voters_are(cl_t *c, int i, size_t n)
{
    wr_rgroup_status_t st;
    size_t voters = 0;

    wr_rgroup_status(c->n[i].g, &st);
    for (size_t k = 0; k < st.n_members; k++)
        voters += st.voter[k];
    return st.n_members == n && voters == n;
}

/*
 * A group of n1 and n2; n3 opens it too but is no member, so it never
 * campaigns. Added from the follower (forwarded to the leader) it joins as
 * a learner, catches up and is promoted; removed from the leader it leaves.
 */
START_TEST(add_then_remove_a_member)
{
    cl_t c;
    int l, f, ref;
    done_t d = {0};
    wr_rgroup_status_t st;

    cl_init(&c, 0, 0);
    c.members = 2;
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    run_until(&c, one_of_two_leads, NULL, 10, "n1 or n2 leading");
    l = is_role(&c, 0, "leader") ? 0 : 1;
    f = 1 - l;
    commit(&c, l, "before-join");
    ck_assert_uint_eq(c.n[2].toy.n, 0);
    ck_assert_int_eq(wr_rgroup_add_member(c.n[f].g, "n9", on_done, &d), WR_ENOENT);
    ck_assert_int_eq(wr_rgroup_add_member(c.n[f].g, "n3", on_done, &d), WR_OK);
    run_until(&c, is_done, &d, 10, "n3 joining");
    ck_assert_int_eq(d.status, WR_OK);
    ck_assert(voters_are(&c, l, 3));
    ck_assert(voters_are(&c, f, 3));
    commit(&c, l, "after-join");
    ref = l;
    run_until(&c, same_as, &ref, 10, "n3 catching up");
    ck_assert_uint_eq(c.n[2].toy.n, 2);
    wr_rgroup_status(c.n[2].g, &st);
    ck_assert_ptr_nonnull(st.leader);
    ck_assert_str_eq(st.leader, c.nodes[l].name);
    /* Adding it again: it is a voter already. */
    memset(&d, 0, sizeof(d));
    ck_assert_int_eq(wr_rgroup_add_member(c.n[l].g, "n3", on_done, &d), WR_OK);
    run_until(&c, is_done, &d, 10, "the second add");
    ck_assert_int_eq(d.status, WR_EEXIST);
    memset(&d, 0, sizeof(d));
    ck_assert_int_eq(wr_rgroup_remove_member(c.n[l].g, "n3", on_done, &d), WR_OK);
    run_until(&c, is_done, &d, 10, "n3 leaving");
    ck_assert_int_eq(d.status, WR_OK);
    ck_assert(voters_are(&c, l, 2));
    /* Two voters left: a commit needs both, and still works. */
    commit(&c, l, "after-leave");
    cl_free(&c);
}
END_TEST

static bool leads(cl_t *c, void *arg)
{
    return is_role(c, *(int *)arg, "leader");
}

static bool stranger_seen(cl_t *c, void *arg)
{
    const char *name = arg;

    for (int i = 0; i < N; i++) {
        if (c->n[i].d && strcmp(c->n[i].stranger, name) == 0)
            return true;
    }
    return false;
}

static bool removed_seen(cl_t *c, void *arg)
{
    return c->n[*(int *)arg].removed > 0;
}

/*
 * The watch (membership.c's source): a member removed while it was down
 * campaigns when it comes back and the others name it a stranger; a member
 * that applies its own removal (a leader leaving) hears removed once; the
 * others, and a joiner catching up on older memberships, never do.
 */
START_TEST(watch_reports_removals_and_strangers)
{
    cl_t c;
    int l, f, gone;
    done_t d = {0};

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    commit(&c, l, "before");
    node_stop(&c, f);
    ck_assert_int_eq(wr_rgroup_remove_member(c.n[l].g, c.nodes[f].name, on_done, &d), WR_OK);
    run_until(&c, is_done, &d, 10, "the removal of a stopped member");
    ck_assert_int_eq(d.status, WR_OK);
    commit(&c, l, "after");
    node_start(&c, f);
    run_until(&c, stranger_seen, (void *)c.nodes[f].name, 10, "the removed member named a stranger");
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(c.n[i].removed, 0);
    /* The leader leaves: it applies its own removal. */
    gone = l;
    memset(&d, 0, sizeof(d));
    ck_assert_int_eq(wr_rgroup_remove_member(c.n[l].g, c.nodes[l].name, on_done, &d), WR_OK);
    run_until(&c, removed_seen, &gone, 10, "the leaving leader told it is out");
    ck_assert_int_eq(c.n[gone].removed, 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(c.n[i].removed, i == gone);
    cl_free(&c);
}
END_TEST

/* A group whose only member is this node (a one-node cluster) elects itself and commits alone. */
START_TEST(one_member_group_commits_alone)
{
    cl_t c;
    int self = 0;

    cl_init(&c, 0, 0);
    c.members = 1;
    node_start(&c, 0);
    run_until(&c, leads, &self, 10, "n1 leading alone");
    commit(&c, 0, "solo");
    ck_assert_uint_eq(c.n[0].toy.n, 1);
    node_stop(&c, 0);
    node_start(&c, 0);
    ck_assert_uint_eq(c.n[0].toy.n, 1); /* applied again from the WAL at open */
    run_until(&c, leads, &self, 10, "n1 leading again");
    commit(&c, 0, "solo-again");
    ck_assert_str_eq(c.n[0].toy.s[1], "solo-again");
    cl_free(&c);
}
END_TEST

/*
 * A failed fdatasync fails the node's WAL: its groups stop (nothing more is
 * written, sent or applied) while the others go on; closed and reopened on a
 * working disk, it recovers and catches up.
 */
START_TEST(failed_fdatasync_stops_the_node_until_restart)
{
    cl_t c;
    int l, f, ref;
    size_t n;
    wr_rgroup_status_t st;
    done_t d;

    cl_init(&c, 0, 0);
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    f = (l + 1) % N;
    commit(&c, l, "before");
    run_until(&c, holds_n, (int[]){f, 1}, 10, "the follower applying the first entry");
    gate_fail(&c.n[f].gate, true);
    commit(&c, l, "during-1");
    /* The leader commits during-1 with the third node; the failed node's own batch of it may still be
     * syncing (a proposal made then was forwarded, and timed out: WR_ETIMEDOUT, seen once). */
    run_until(&c, wal_failed, &f, 10, "the node's WAL failing");
    propose(&c, f, "from-the-failed-node", 5000, &d);
    run_until(&c, is_done, &d, 10, "a proposal on the failed node");
    ck_assert_int_eq(d.status, WR_ENOENT);
    /* during-1 may be applied: committed by the others, it can reach the node with the commit index before
     * the node's own batch of it fails. */
    n = c.n[f].toy.n;
    ck_assert(n == 1 || n == 2);
    commit(&c, l, "during-2");
    ck_assert_uint_eq(c.n[f].toy.n, n); /* its batch failed: it applies nothing more */
    wr_rgroup_status(c.n[f].g, &st);
    ck_assert_uint_eq(st.applied, c.n[f].toy.last);
    node_stop(&c, f);
    gate_fail(&c.n[f].gate, false);
    node_start(&c, f);
    ref = l;
    run_until(&c, same_as, &ref, 10, "the restarted node catching up");
    ck_assert_uint_eq(c.n[f].toy.n, 3);
    cl_free(&c);
}
END_TEST

/* Regular files in dir (-1 when it cannot be read). */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A deleted group ends its proposals and leaves nothing on disk: opened again after a restart, it starts
 * empty. */
START_TEST(deleted_group_leaves_nothing)
{
    cl_t c;
    done_t d = {0};
    char s[512];
    int l;

    cl_init(&c, 0, 0); /* no snapshot: every entry is in the WAL */
    for (int i = 0; i < N; i++)
        node_start(&c, i);
    l = wait_leader(&c);
    commit_range(&c, l, "e", 0, 12);
    propose(&c, l, "pending", 5000, &d);
    for (int i = 0; i < N; i++)
        wr_rgroup_delete(c.n[i].g);
    run_until(&c, is_done, &d, 10, "the pending proposal ending");
    ck_assert_int_ne(d.status, WR_OK);
    ck_assert_uint_eq(c.n[l].toy.n, 12); /* nothing applied after the deletion */
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof(s), "%s/snap/%d", c.n[i].dir, WR_RGROUP_META);
        ck_assert_int_eq(files_in(s), 0);
        node_stop(&c, i);
    }
    for (int i = 0; i < N; i++) {
        node_start(&c, i);
        ck_assert_int_eq(c.n[i].toy.loads, 0);
        ck_assert_uint_eq(c.n[i].toy.n, 0);
    }
    cl_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster-raftd");
    TCase *tc = tcase_create("raftd");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, proposals_from_leader_and_follower_apply_everywhere);
    tcase_add_test(tc, many_in_flight_each_ends_after_its_apply);
    tcase_add_test(tc, the_leader_stamps_every_entry);
    tcase_add_test(tc, no_quorum_times_out_then_has_no_leader);
    tcase_add_test(tc, a_proposal_made_while_closing_is_refused);
    tcase_add_test(tc, restart_recovers_from_snapshot_and_wal);
    tcase_add_test(tc, snapshots_are_made_durable_off_the_loop);
    tcase_add_test(tc, a_snapshot_is_served_at_once_and_reported_once_durable);
    tcase_add_test(tc, far_behind_installs_a_snapshot);
    tcase_add_test(tc, snapshots_load_in_chunks);
    tcase_add_test(tc, far_behind_served_from_the_wal);
    tcase_add_test(tc, corrupt_snapshot_is_refetched);
    tcase_add_test(tc, votes_wait_for_the_disk);
    tcase_add_test(tc, add_then_remove_a_member);
    tcase_add_test(tc, watch_reports_removals_and_strangers);
    tcase_add_test(tc, one_member_group_commits_alone);
    tcase_add_test(tc, failed_fdatasync_stops_the_node_until_restart);
    tcase_add_test(tc, deleted_group_leaves_nothing);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
