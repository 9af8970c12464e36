/* SPDX-License-Identifier: MIT */
/*
 * warren-raft-bench: entries per second and CPU per entry through the Raft
 * core for 3 members of G groups in one process, with an in-memory network
 * and a disk that syncs at once (no faults, no checker).
 *   warren-raft-bench [--groups G] [--entries N] [--batch B] [--payload BYTES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/raft.h"
#include "core/status.h"

#define NODES 3

typedef struct {
    uint32_t group;
    wr_raft_msg_t m;
    wr_raft_entry_t *e;
} bmsg_t;

typedef struct {
    wr_raft_t **r; /* [group * NODES + node - 1] */
    int groups;
    bmsg_t *q;
    size_t nq, cap;
    uint64_t applied; /* by the leaders */
} bench_t;

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

static void enqueue(bench_t *b, uint32_t g, const wr_raft_msg_t *m)
{
    if (b->nq == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->q = realloc(b->q, b->cap * sizeof(*b->q));
        if (b->q == NULL)
            abort();
    }
    b->q[b->nq].group = g;
    b->q[b->nq].m = *m;
    b->q[b->nq].e = entries_dup(m->entries, m->n_entries);
    b->q[b->nq].m.entries = b->q[b->nq].e;
    b->nq++;
}

/* Drains one member: the disk syncs at once, so every message may leave. */
static void drive(bench_t *b, uint32_t g, wr_raft_t *r, bool leader)
{
    wr_raft_ready_t rd;

    while (wr_raft_has_ready(r)) {
        uint64_t term = 0, index = 0;
        if (wr_raft_ready(r, &rd) != WR_OK)
            abort();
        for (size_t i = 0; i < rd.n_msgs; i++)
            enqueue(b, g, &rd.msgs[i]);
        for (size_t i = 0; i < rd.n_msgs_after_sync; i++)
            enqueue(b, g, &rd.msgs_after_sync[i]);
        if (rd.n_entries > 0) {
            term = rd.entries[rd.n_entries - 1].term;
            index = rd.entries[rd.n_entries - 1].index;
        }
        b->applied += leader ? rd.n_committed : 0;
        wr_raft_advance(r);
        if (index > 0 && wr_raft_persisted(r, term, index) != WR_OK)
            abort();
    }
}

static void drive_all(bench_t *b)
{
    for (int g = 0; g < b->groups; g++)
        for (int n = 0; n < NODES; n++)
            drive(b, (uint32_t)g, b->r[g * NODES + n], n == 0);
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
            drive(b, q[i].group, to, q[i].m.to == 1);
            entries_free(q[i].e, q[i].m.n_entries);
        }
        free(q);
    }
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
    for (int i = 0; i < 10; i++) {
        drive_all(b);
        deliver_all(b);
    }
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    long groups, entries, per_round, payload;
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
        else
            return false;
    }
    return o->groups >= 1 && o->groups <= 100000 && o->per_round >= 1 && o->payload >= 0 &&
           o->payload <= 4096 && o->entries >= 1;
}

int main(int argc, char **argv)
{
    opts_t o = {1, 200000, 64, 64};
    bench_t b = {0};
    long entries, per_round, payload;
    uint8_t data[4096] = {0};
    double w0, c0, w, c;

    if (!parse(argc, argv, &o)) {
        fprintf(stderr,
                "usage: warren-raft-bench [--groups G] [--entries N] [--batch B] [--payload BYTES]\n");
        return 2;
    }
    b.groups = (int)o.groups;
    entries = o.entries;
    per_round = o.per_round;
    payload = o.payload;
    setup(&b, 64);
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
        drive_all(&b);
        deliver_all(&b);
    }
    w = now(CLOCK_MONOTONIC) - w0;
    c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("groups %d, %llu entries of %ld bytes committed and applied, %ld proposed per group per round\n",
           b.groups, (unsigned long long)b.applied, payload, per_round);
    printf("%.0f entries/s wall, %.2f us CPU per entry (3 members, all in one process)\n",
           (double)b.applied / w, c * 1e6 / (double)b.applied);
    printf("sizeof(wr_raft_t) %zu bytes; per entry %zu bytes + payload\n", wr_raft_sizeof(),
           sizeof(wr_raft_entry_t));
    for (int i = 0; i < b.groups * NODES; i++)
        wr_raft_free(b.r[i]);
    free(b.r);
    return 0;
}
