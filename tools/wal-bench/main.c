/* SPDX-License-Identifier: MIT */
/*
 * wal-bench: drives storage/wal.h on the real disk. "append" has G groups
 * each propose one entry per round, one batch (one fdatasync) per round, with
 * write-behind in between; "recover" fills G groups with N entries in total,
 * closes, and times wr_wal_open; "open" times wr_wal_open of what DIR holds;
 * "thread" runs the storage-thread driver (storage/wal_thread.h) with up to
 * WINDOW entries per group not yet durable, appending while syncs run.
 * Figures and commands: docs/STORAGE.md.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "storage/wal.h"
#include "storage/wal_thread.h"

typedef struct {
    const char *mode;
    const char *dir;
    uint64_t groups;
    uint64_t entries; /* in total */
    size_t size;
    uint64_t wal_size;
    uint64_t window; /* thread: entries per group not yet durable */
} bench_opts_t;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_msg(void *ud, const char *text)
{
    fprintf(stderr, "%s\n", text);
}

static wr_wal_t *open_wal_cb(const bench_opts_t *o, wr_wal_recovery_t *rec, wr_wal_durable_fn fn, void *ud)
{
    wr_wal_opts_t wo = {wr_vfs_posix(), o->dir, o->wal_size, 0, (uint64_t)time(NULL), fn, ud, on_msg,
                        NULL,           0};
    wr_wal_t *w;
    int rc = wr_wal_open(&wo, &w, rec);

    if (rc != WR_OK) {
        fprintf(stderr, "wal-bench: cannot open the WAL in %s (status %d)\n", o->dir, rc);
        exit(1);
    }
    return w;
}

static wr_wal_t *open_wal(const bench_opts_t *o, wr_wal_recovery_t *rec)
{
    return open_wal_cb(o, rec, NULL, NULL);
}

/* One round: every group appends its next entry, one batch, then write-behind up to 4 MiB. */
static void round_trip(wr_wal_t *w, const bench_opts_t *o, uint64_t round, const uint8_t *data)
{
    bool more;

    for (uint64_t g = 1; g <= o->groups; g++)
        if (wr_wal_append(w, g, 1, round, data, o->size) != WR_OK)
            exit(1);
    if (wr_wal_sync(w) != WR_OK || wr_wal_writebehind(w, 4u << 20, &more) != WR_OK)
        exit(1);
}

/* Fills the WAL with o->entries entries over o->groups groups; returns the rounds done. */
static uint64_t fill(wr_wal_t *w, const bench_opts_t *o, double *secs)
{
    uint8_t *data = malloc(o->size);
    uint64_t rounds = o->entries / o->groups;
    double t0 = now();

    memset(data, 0x5a, o->size);
    for (uint64_t r = 1; r <= rounds; r++)
        round_trip(w, o, r, data);
    *secs = now() - t0;
    free(data);
    return rounds;
}

static int run_append(const bench_opts_t *o)
{
    wr_wal_t *w = open_wal(o, NULL);
    double secs;
    uint64_t rounds = fill(w, o, &secs);

    printf("append: %" PRIu64 " group(s), %zu-byte entries: %" PRIu64 " entries in %.2f s = %.0f entries/s, "
           "%" PRIu64 " fdatasyncs = %.0f fsyncs/s, %.1f MB/s\n",
           o->groups, o->size, rounds * o->groups, secs, (double)(rounds * o->groups) / secs, rounds,
           (double)rounds / secs, (double)(rounds * o->groups * o->size) / secs / 1e6);
    wr_wal_close(w);
    return 0;
}

/* Times wr_wal_open of what DIR holds; filled in secs seconds before, if secs >= 0. */
static int time_open(const bench_opts_t *o, double secs)
{
    wr_wal_recovery_t rec;
    wr_wal_t *w;
    double t0 = now();

    w = open_wal(o, &rec);
    printf("recover: %" PRIu64 " groups, %" PRIu64 " entries (%" PRIu64 " WAL files, %" PRIu64
           " segment files) in %.3f s (filled in %.1f s)\n",
           rec.groups, rec.entries, rec.wal_files, rec.segment_files, now() - t0, secs);
    wr_wal_close(w);
    return rec.damaged == 0 ? 0 : 1;
}

static int run_recover(const bench_opts_t *o)
{
    wr_wal_t *w = open_wal(o, NULL);
    double secs;

    fill(w, o, &secs);
    wr_wal_close(w);
    return time_open(o, secs);
}

/* thread mode: per group, the next index to append and the last durable one. */
typedef struct {
    uint64_t *next;
    uint64_t *durable;
} flow_t;

static void on_durable(void *ud, const wr_wal_notice_t *n, int status)
{
    flow_t *f = ud;

    if (status != WR_OK) {
        fprintf(stderr, "wal-bench: a batch failed\n");
        exit(1);
    }
    if (n->index > f->durable[n->group - 1])
        f->durable[n->group - 1] = n->index;
}

/* Appends every group's entries its window allows; returns how many. */
static uint64_t refill(wr_wal_t *w, const bench_opts_t *o, flow_t *f, uint64_t per_group, const uint8_t *data)
{
    uint64_t n = 0;

    for (uint64_t g = 0; g < o->groups; g++)
        for (; f->next[g] <= per_group && f->next[g] - f->durable[g] <= o->window; f->next[g]++, n++)
            if (wr_wal_append(w, g + 1, 1, f->next[g], data, o->size) != WR_OK)
                exit(1);
    return n;
}

static int run_thread(const bench_opts_t *o)
{
    uint64_t per_group = o->entries / o->groups, sent = 0, total = per_group * o->groups;
    flow_t f = {calloc(o->groups, sizeof(uint64_t)), calloc(o->groups, sizeof(uint64_t))};
    uint8_t *data = malloc(o->size);
    wr_wal_t *w = open_wal_cb(o, NULL, on_durable, &f);
    wr_wal_thread_t *t;
    uint64_t durable = 0;
    double t0;

    if (f.next == NULL || f.durable == NULL || data == NULL || wr_wal_thread_new(w, 4u << 20, &t) != WR_OK)
        exit(1);
    memset(data, 0x5a, o->size);
    for (uint64_t g = 0; g < o->groups; g++)
        f.next[g] = 1;
    t0 = now();
    while (durable < total) {
        struct pollfd p = {wr_wal_thread_fd(t), POLLIN, 0};
        sent += refill(w, o, &f, per_group, data);
        if (wr_wal_thread_kick(t) != WR_OK || poll(&p, 1, -1) < 0 || wr_wal_thread_dispatch(t) != WR_OK)
            exit(1);
        durable = 0;
        for (uint64_t g = 0; g < o->groups; g++)
            durable += f.durable[g];
    }
    t0 = now() - t0;
    printf("thread: %" PRIu64 " group(s), window %" PRIu64 ", %zu-byte entries: %" PRIu64
           " entries in %.2f s = %.0f entries/s, %" PRIu64 " fdatasyncs = %.0f fsyncs/s, %.1f entries per "
           "fsync\n",
           o->groups, o->window, o->size, sent, t0, (double)sent / t0, wr_wal_thread_batches(t),
           (double)wr_wal_thread_batches(t) / t0, (double)sent / (double)wr_wal_thread_batches(t));
    wr_wal_thread_free(t);
    wr_wal_close(w);
    free(f.next);
    free(f.durable);
    free(data);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wal-bench append|recover|thread DIR [GROUPS [ENTRIES [SIZE [WAL_SIZE [WINDOW]]]]]\n"
            "  DIR must exist and be empty; defaults: 1000 groups, 100000 entries, 1024 bytes, 64 MiB,\n"
            "  window 1 (thread: entries per group not yet durable)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bench_opts_t o = {NULL, NULL, 1000, 100000, 1024, 64u << 20, 1};

    if (argc < 3)
        usage();
    o.mode = argv[1];
    o.dir = argv[2];
    o.groups = argc > 3 ? strtoull(argv[3], NULL, 10) : o.groups;
    o.entries = argc > 4 ? strtoull(argv[4], NULL, 10) : o.entries;
    o.size = argc > 5 ? (size_t)strtoull(argv[5], NULL, 10) : o.size;
    o.wal_size = argc > 6 ? strtoull(argv[6], NULL, 10) : o.wal_size;
    o.window = argc > 7 ? strtoull(argv[7], NULL, 10) : o.window;
    if (o.groups == 0 || o.entries < o.groups || o.size == 0 || o.window == 0)
        usage();
    if (strcmp(o.mode, "append") == 0)
        return run_append(&o);
    if (strcmp(o.mode, "recover") == 0)
        return run_recover(&o);
    if (strcmp(o.mode, "open") == 0)
        return time_open(&o, -1);
    if (strcmp(o.mode, "thread") == 0)
        return run_thread(&o);
    usage();
    return 2;
}
