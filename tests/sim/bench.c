/* SPDX-License-Identifier: MIT */
/*
 * warren-raft-bench: entries per second and CPU per entry through the Raft
 * core for 3 members of G groups in one process, with an in-memory network
 * and either a disk that syncs at once or (--wal DIR) one real node-wide WAL
 * per member on the real file system, fdatasync included (no faults, no checker).
 *   warren-raft-bench [--groups G] [--entries N] [--batch B] [--payload BYTES] [--wal DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/raft.h"
#include "core/status.h"
#include "storage/vfs.h"
#include "storage/wal.h"

#define NODES 3

typedef struct bench_s bench_t;

/* One member's node with --wal: its WAL, and the messages that wait for its next sync. */
typedef struct {
    bench_t *b;
    int id; /* 1..NODES */
    wr_wal_t *wal;
    struct bmsg_s *held;
    size_t nheld, cap;
    uint64_t syncs;
} bnode_t;

typedef struct bmsg_s {
    uint32_t group;
    wr_raft_msg_t m;
    wr_raft_entry_t *e;
} bmsg_t;

struct bench_s {
    wr_raft_t **r; /* [group * NODES + node - 1] */
    int groups;
    bmsg_t *q;
    size_t nq, cap;
    uint64_t applied; /* by the leaders */
    bnode_t nodes[NODES];
    bool wal;
};

static wr_raft_entry_t *entries_dup(const wr_raft_entry_t *e, size_t n)
{
    wr_raft_entry_t *out = malloc(n * sizeof(*out) + 1);

    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = e[i];
        out[i].data = malloc(e[i].len + 1);
        if (out[i].data == NULL)
            abort();
        if (e[i].len > 0)
            memcpy(out[i].data, e[i].data, e[i].len);
    }
    if (out == NULL)
        abort();
    return out;
}

static void entries_free(wr_raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

static void push(bmsg_t **q, size_t *n, size_t *cap, uint32_t g, const wr_raft_msg_t *m)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *q = realloc(*q, *cap * sizeof(**q));
        if (*q == NULL)
            abort();
    }
    (*q)[*n].group = g;
    (*q)[*n].m = *m;
    (*q)[*n].e = entries_dup(m->entries, m->n_entries);
    (*q)[*n].m.entries = (*q)[*n].e;
    (*n)++;
}

static void enqueue(bench_t *b, uint32_t g, const wr_raft_msg_t *m)
{
    push(&b->q, &b->nq, &b->cap, g, m);
}

/* Hands the ready's entries and hard state to member id's WAL. */
static void wal_persist(bench_t *b, uint32_t g, int id, const wr_raft_ready_t *rd)
{
    bnode_t *n = &b->nodes[id - 1];
    wr_wal_hard_t h = {rd->hs.term, rd->hs.vote, rd->hs.commit, rd->hs.abstain};

    for (size_t i = 0; i < rd->n_entries; i++) {
        const wr_raft_entry_t *e = &rd->entries[i];
        if (wr_wal_append(n->wal, g + 1, e->term, e->index, e->data, e->len) != WR_OK)
            abort();
    }
    if (rd->hs_changed && wr_wal_set_hard(n->wal, g + 1, &h) != WR_OK)
        abort();
    for (size_t i = 0; i < rd->n_msgs_after_sync; i++)
        push(&n->held, &n->nheld, &n->cap, g, &rd->msgs_after_sync[i]);
}

/* Drains member id of group g: without a WAL the disk syncs at once, so every message may leave. */
static void drive(bench_t *b, uint32_t g, int id)
{
    wr_raft_t *r = b->r[g * NODES + (uint32_t)id - 1];
    wr_raft_ready_t rd;

    while (wr_raft_has_ready(r)) {
        uint64_t term = 0, index = 0;
        if (wr_raft_ready(r, &rd) != WR_OK)
            abort();
        for (size_t i = 0; i < rd.n_msgs; i++)
            enqueue(b, g, &rd.msgs[i]);
        if (b->wal)
            wal_persist(b, g, id, &rd);
        for (size_t i = 0; i < rd.n_msgs_after_sync && !b->wal; i++)
            enqueue(b, g, &rd.msgs_after_sync[i]);
        if (rd.n_entries > 0 && !b->wal) {
            term = rd.entries[rd.n_entries - 1].term;
            index = rd.entries[rd.n_entries - 1].index;
        }
        b->applied += id == 1 ? rd.n_committed : 0;
        wr_raft_advance(r);
        if (index > 0 && wr_raft_persisted(r, term, index) != WR_OK)
            abort();
    }
}

static void drive_all(bench_t *b)
{
    for (int g = 0; g < b->groups; g++)
        for (int n = 0; n < NODES; n++)
            drive(b, (uint32_t)g, n + 1);
}

static void deliver_all(bench_t *b)
{
    while (b->nq > 0) {
        bmsg_t *q = b->q;
        size_t n = b->nq;
        b->q = NULL;
        b->nq = b->cap = 0;
        for (size_t i = 0; i < n; i++) {
            wr_raft_t *to = b->r[q[i].group * NODES + q[i].m.to - 1];
            if (wr_raft_step(to, &q[i].m) != WR_OK)
                abort();
            drive(b, q[i].group, (int)q[i].m.to);
            entries_free(q[i].e, q[i].m.n_entries);
        }
        free(q);
    }
}

static void on_durable(void *ud, const wr_wal_notice_t *nt, int status)
{
    bnode_t *n = ud;
    wr_raft_t *r = n->b->r[(nt->group - 1) * NODES + (uint64_t)n->id - 1];

    if (status != WR_OK || (nt->index > 0 && wr_raft_persisted(r, nt->term, nt->index) != WR_OK))
        abort();
}

/* One group commit per node with anything queued; its held messages leave after it. True if any synced. */
static bool sync_nodes(bench_t *b)
{
    bool any = false;

    for (int i = 0; i < NODES; i++) {
        bnode_t *n = &b->nodes[i];
        int rc = wr_wal_sync(n->wal);
        if (rc != WR_OK && rc != WR_AGAIN)
            abort();
        n->syncs += rc == WR_OK;
        any |= rc == WR_OK;
        for (size_t k = 0; k < n->nheld; k++) {
            enqueue(b, n->held[k].group, &n->held[k].m);
            entries_free(n->held[k].e, n->held[k].m.n_entries);
        }
        n->nheld = 0;
    }
    return any;
}

/* Runs until nothing moves: with WALs, each node syncs between exchanges (group commit). */
static void settle(bench_t *b)
{
    do {
        drive_all(b);
        deliver_all(b);
    } while (b->wal && (sync_nodes(b) || b->nq > 0));
}

/* One WAL per member in dir/n<id> on the real file system. */
static void wal_open_all(bench_t *b, const char *dir)
{
    const wr_vfs_t *v = wr_vfs_posix();

    for (int i = 0; i < NODES; i++) {
        bnode_t *n = &b->nodes[i];
        char path[4096];
        wr_wal_opts_t o = {
            .vfs = v, .dir = path, .seed = (uint64_t)i, .durable = on_durable, .durable_ud = n};
        snprintf(path, sizeof(path), "%s/n%d", dir, i + 1);
        n->b = b;
        n->id = i + 1;
        if (wr_vfs_mkdir(v, path) != WR_OK || wr_vfs_sync_dir(v, dir) != WR_OK ||
            wr_wal_open(&o, &n->wal, NULL) != WR_OK) {
            fprintf(stderr, "warren-raft-bench: cannot create a WAL in %s\n", path);
            exit(1);
        }
    }
    b->wal = true;
}

static void setup(bench_t *b, unsigned batch)
{
    b->r = calloc((size_t)b->groups * NODES, sizeof(*b->r));
    for (int g = 0; g < b->groups; g++) {
        for (int n = 0; n < NODES; n++) {
            wr_raft_config_t c = {.id = (uint32_t)n + 1, .peers = {1, 2, 3}, .n_peers = NODES};
            c.election_ticks = 10;
            c.heartbeat_ticks = 2;
            c.max_inflight = 8;
            c.max_batch = batch;
            c.seed = (uint64_t)g;
            if ((b->r[g * NODES + n] = wr_raft_new(&c, NULL, NULL, 0)) == NULL)
                abort();
        }
        /* Member 1 campaigns first and leads every group. */
        while (!wr_raft_has_ready(b->r[g * NODES]))
            if (wr_raft_tick(b->r[g * NODES]) != WR_OK)
                abort();
    }
    for (int i = 0; i < 10; i++)
        settle(b);
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    long groups, entries, per_round, payload;
    const char *wal; /* directory for the members' WALs, NULL: none */
} opts_t;

static bool parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i += 2) {
        long v = i + 1 < argc ? atol(argv[i + 1]) : -1;
        if (strcmp(argv[i], "--groups") == 0)
            o->groups = v;
        else if (strcmp(argv[i], "--entries") == 0)
            o->entries = v;
        else if (strcmp(argv[i], "--batch") == 0)
            o->per_round = v;
        else if (strcmp(argv[i], "--payload") == 0)
            o->payload = v;
        else if (strcmp(argv[i], "--wal") == 0 && i + 1 < argc)
            o->wal = argv[i + 1];
        else
            return false;
    }
    return o->groups >= 1 && o->groups <= 100000 && o->per_round >= 1 && o->payload >= 0 &&
           o->payload <= 4096 && o->entries >= 1;
}

int main(int argc, char **argv)
{
    opts_t o = {1, 200000, 64, 64, NULL};
    bench_t b = {0};
    long entries, per_round, payload;
    uint8_t data[4096] = {0};
    double w0, c0, w, c;

    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: warren-raft-bench [--groups G] [--entries N] [--batch B] [--payload BYTES] "
                        "[--wal DIR]\n");
        return 2;
    }
    b.groups = (int)o.groups;
    entries = o.entries;
    per_round = o.per_round;
    payload = o.payload;
    if (o.wal != NULL)
        wal_open_all(&b, o.wal);
    setup(&b, 64);
    for (int i = 0; i < NODES; i++)
        b.nodes[i].syncs = 0;
    b.applied = 0;
    w0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (long done = 0; done < entries;) {
        for (int g = 0; g < b.groups; g++) {
            for (long k = 0; k < per_round; k++) {
                uint64_t t, ix;
                if (wr_raft_propose(b.r[g * NODES], data, (size_t)payload, &t, &ix) != WR_OK)
                    abort();
            }
            done += per_round;
        }
        settle(&b);
    }
    w = now(CLOCK_MONOTONIC) - w0;
    c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("groups %d, %llu entries of %ld bytes committed and applied, %ld proposed per group per round\n",
           b.groups, (unsigned long long)b.applied, payload, per_round);
    printf("%.0f entries/s wall, %.2f us CPU per entry (3 members, all in one process)\n",
           (double)b.applied / w, c * 1e6 / (double)b.applied);
    printf("sizeof(wr_raft_t) %zu bytes; per entry %zu bytes + payload\n", wr_raft_sizeof(),
           sizeof(wr_raft_entry_t));
    if (b.wal)
        printf(
            "WAL (real disk, fdatasync): %llu group commits per node, %.0f fsyncs/s per node, %.1f entries "
            "per fsync\n",
            (unsigned long long)b.nodes[0].syncs, (double)b.nodes[0].syncs / w,
            (double)b.applied / (double)(b.nodes[0].syncs ? b.nodes[0].syncs : 1));
    for (int i = 0; i < NODES; i++) {
        wr_wal_close(b.nodes[i].wal);
        free(b.nodes[i].held);
    }
    for (int i = 0; i < b.groups * NODES; i++)
        wr_raft_free(b.r[i]);
    free(b.r);
    return 0;
}
