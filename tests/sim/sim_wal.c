/* SPDX-License-Identifier: MIT */
/*
 * The simulator's WAL disk: the real storage/wal.c on a simdisk, one per node,
 * with a shadow of what each group has made durable (kept from the WAL's
 * durable notices) for the checker, and recovery after every crash or flip.
 */
#include "tests/sim/sim_wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"
#include "storage/wal.h"
#include "tests/sim/simdisk.h"

typedef struct {
    uint64_t *terms; /* terms[i - 1]: term of entry i as written (queued or durable) */
    size_t n, cap;
    uint64_t floor, floor_term; /* the last snapshot marker: entries <= floor are gone */
    wr_raft_hard_state_t hs_queued, hs_batch, hs_durable;
    bool hs_pending, hs_in_batch;
    bool damaged; /* the last recovery reported it */
} sim_wal_group_t;

struct sim_wal_s {
    wr_simdisk_t *disk;
    wr_wal_t *wal;
    wr_wal_batch_t *batch;
    bool written;
    bool quiet;   /* abandoning a batch: no notices */
    bool failed;  /* a batch failed: the WAL accepts no more writes until recovered */
    bool flipped; /* a bit of its disk was flipped: only then may recovery find damage */
    int groups;
    sim_wal_group_t *g;
    sim_wal_notice_fn fn;
    void *ud;
    sim_wal_message_fn msg;
    void *msg_ud;
    sim_wal_stats_t stats;
};

#define DIR "n"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        abort();
    return p;
}

static void on_durable(void *ud, const wr_wal_notice_t *n, int status)
{
    sim_wal_t *w = ud;
    sim_wal_group_t *g = &w->g[n->group - 1];

    w->failed |= status != WR_OK;
    if (status != WR_OK || w->quiet)
        return;
    if (n->hard && g->hs_in_batch)
        g->hs_durable = g->hs_batch;
    if (w->fn != NULL)
        w->fn(w->ud, (int)n->group - 1, n->term, n->index);
}

/* Rebuilds group g's shadow from the recovered WAL; everything recovered is durable. */
static void shadow_load(sim_wal_t *w, int g, bool corrupt)
{
    sim_wal_group_t *s = &w->g[g];
    wr_wal_group_info_t info;

    s->n = 0;
    s->floor = s->floor_term = 0;
    s->hs_pending = s->hs_in_batch = false;
    s->hs_durable = (wr_raft_hard_state_t){0, 0, 0, 0};
    s->damaged = corrupt;
    if (wr_wal_group_info(w->wal, (uint64_t)g + 1, &info) != WR_OK)
        return;
    s->damaged |= info.damaged;
    s->hs_durable =
        (wr_raft_hard_state_t){info.hard.term, (uint32_t)info.hard.vote, info.hard.commit, info.hard.abstain};
    s->cap = s->cap > info.last ? s->cap : info.last;
    s->terms = xrealloc(s->terms, (s->cap ? s->cap : 1) * sizeof(*s->terms));
    s->floor = info.snap_index;
    s->floor_term = info.snap_term;
    s->n = info.snap_index;
    memset(s->terms, 0, s->floor * sizeof(*s->terms));
    if (s->floor > 0)
        s->terms[s->floor - 1] = s->floor_term;
    for (uint64_t i = info.first; i <= info.last; i++) {
        wr_buf_t buf = {0};
        if (wr_wal_read(w->wal, (uint64_t)g + 1, i, &s->terms[i - 1], &buf) != WR_OK)
            abort(); /* recovery checked every CRC: a read of it cannot fail on the simdisk */
        wr_buf_free(&buf);
        s->n = i;
    }
}

/* The core abstains after damage; recovery makes that durable before the node acts, or a
 * second crash would forget it (the damaged records are gone from the disk by then). */
static void mark_damaged(sim_wal_t *w, int g)
{
    sim_wal_group_t *s = &w->g[g];
    wr_wal_hard_t h = {s->hs_durable.term, s->hs_durable.vote, s->hs_durable.commit, s->hs_durable.abstain};

    if (!s->damaged || h.abstain >= (h.term > 0 ? h.term : 1))
        return;
    h.abstain = h.term > 0 ? h.term : 1;
    if (wr_wal_set_hard(w->wal, (uint64_t)g + 1, &h) != WR_OK || wr_wal_sync(w->wal) != WR_OK)
        abort();
    s->hs_durable.abstain = h.abstain;
}

/* Closes the WAL, keeping its write-behind counters. */
static void wal_close(sim_wal_t *w)
{
    uint64_t read, skipped;

    wr_wal_wb_counts(w->wal, &read, &skipped);
    w->stats.wb_read += read;
    w->stats.wb_skipped += skipped;
    wr_wal_close(w->wal);
    w->wal = NULL;
}

static void wal_open(sim_wal_t *w)
{
    wr_wal_recovery_t rec;
    wr_wal_opts_t o = {.vfs = wr_simdisk_vfs(w->disk),
                       .dir = DIR,
                       .wal_size = 4096 + wr_simdisk_rand(w->disk, 60000),
                       .segment_size = 2048 + wr_simdisk_rand(w->disk, 30000),
                       .seed = wr_simdisk_rand(w->disk, UINT64_MAX),
                       .durable = on_durable,
                       .durable_ud = w,
                       .message = w->msg,
                       .message_ud = w->msg_ud};

    o.wb_wait_files = (unsigned)(o.wal_size % 3); /* from a draw made already: seeds replay as before */
    /* Every other open: WAL files of a batch or two, and write-behind that leaves up to 8 of them for
     * snapshots to pass, so that files are often retired unread (move_known in storage/wal_segment.c).
     * Without it 100 seeds skipped 2 files and read 2,565; with it 1,000 hash seeds skip about 5,000 and read
     * 52,000. */
    if (o.segment_size % 2 == 0) {
        o.wal_size = 200 + o.wal_size % 600;
        o.wb_wait_files = 1 + (unsigned)(o.segment_size / 2 % 8);
    }
    if (wr_wal_open(&o, &w->wal, &rec) != WR_OK)
        abort();
    w->stats.damaged += rec.damaged;
    w->stats.wal_corrupt += rec.wal_corrupt;
    for (int g = 0; g < w->groups; g++)
        shadow_load(w, g, rec.wal_corrupt);
    for (int g = 0; g < w->groups; g++)
        mark_damaged(w, g);
    if (wr_wal_damage_noted(w->wal) != WR_OK)
        abort();
}

sim_wal_t *sim_wal_new(uint64_t seed, int groups, sim_wal_message_fn msg, void *ud)
{
    sim_wal_t *w = calloc(1, sizeof(*w));

    if (w == NULL || (w->disk = wr_simdisk_new(seed)) == NULL)
        abort();
    w->groups = groups;
    w->msg = msg;
    w->msg_ud = ud;
    w->g = calloc((size_t)groups, sizeof(*w->g));
    if (w->g == NULL || wr_vfs_mkdir(wr_simdisk_vfs(w->disk), DIR) != WR_OK ||
        wr_vfs_sync_dir(wr_simdisk_vfs(w->disk), "") != WR_OK)
        abort();
    wal_open(w);
    return w;
}

void sim_wal_load(sim_wal_t *w, int g, wr_raft_hard_state_t *hs, wr_raft_entry_t **e, size_t *n,
                  bool *damaged)
{
    sim_wal_group_t *s = &w->g[g];
    size_t count = s->n - s->floor;
    wr_raft_entry_t *out = count ? xrealloc(NULL, count * sizeof(*out)) : NULL;

    for (size_t i = 0; i < count; i++) {
        wr_buf_t buf = {0};
        uint64_t term, index = s->floor + i + 1;
        if (wr_wal_read(w->wal, (uint64_t)g + 1, index, &term, &buf) != WR_OK || buf.len < 1)
            abort();
        /* The first payload byte is the entry's type: the WAL stores opaque data. */
        out[i] = (wr_raft_entry_t){term, index, NULL, (uint32_t)(buf.len - 1), buf.data[0]};
        out[i].data = buf.len > 1 ? xrealloc(NULL, buf.len - 1) : NULL;
        if (buf.len > 1)
            memcpy(out[i].data, buf.data + 1, buf.len - 1);
        wr_buf_free(&buf);
    }
    *hs = s->hs_durable;
    *e = out;
    *n = count;
    *damaged = s->damaged;
}

bool sim_wal_payload(sim_wal_t *w, int g, const wr_raft_entry_t *e, wr_buf_t *out)
{
    uint64_t term = 0;

    wr_buf_reset(out);
    if (wr_wal_read(w->wal, (uint64_t)g + 1, e->index, &term, out) != WR_OK || term != e->term ||
        out->len != (size_t)e->len + 1 || out->data[0] != e->type)
        return false;
    memmove(out->data, out->data + 1, e->len);
    out->len = e->len;
    return true;
}

void sim_wal_base(const sim_wal_t *w, int g, uint64_t *index, uint64_t *term)
{
    *index = w->g[g].floor;
    *term = w->g[g].floor_term;
}

void sim_wal_snapshot(sim_wal_t *w, int g, uint64_t index, uint64_t term)
{
    sim_wal_group_t *s = &w->g[g];
    size_t n = s->n;

    if (w->failed || wr_wal_snapshot(w->wal, (uint64_t)g + 1, index, term) != WR_OK) {
        w->failed = true;
        return;
    }
    if (index <= s->floor)
        return;
    /* The WAL's rule: the log goes on after the marker only if it holds (index, term). */
    if (index > s->n || s->terms[index - 1] != term)
        n = index;
    if (n > s->cap) {
        s->cap = n;
        s->terms = xrealloc(s->terms, s->cap * sizeof(*s->terms));
    }
    if (n > s->n)
        memset(s->terms + s->n, 0, (n - s->n) * sizeof(*s->terms));
    s->n = n;
    /* The terms stay: until the marker is durable a crash brings those entries back (what
     * the snapshot covers counts as held once the snapshot is durable: sim_member_holds). */
    s->floor = index;
    s->floor_term = term;
}

wr_simdisk_t *sim_wal_disk(sim_wal_t *w)
{
    return w->disk;
}

static bool append_one(sim_wal_t *w, int g, const wr_raft_entry_t *e)
{
    sim_wal_group_t *s = &w->g[g];
    uint8_t *rec = xrealloc(NULL, (size_t)e->len + 1);
    int rc;

    rec[0] = e->type;
    if (e->len > 0)
        memcpy(rec + 1, e->data, e->len);
    rc = wr_wal_append(w->wal, (uint64_t)g + 1, e->term, e->index, rec, (size_t)e->len + 1);
    free(rec);
    if (rc != WR_OK)
        return false;
    while (e->index > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->terms = xrealloc(s->terms, s->cap * sizeof(*s->terms));
    }
    s->n = e->index;
    s->terms[e->index - 1] = e->term;
    return true;
}

void sim_wal_append(sim_wal_t *w, int g, const wr_raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n && !w->failed; i++)
        w->failed = !append_one(w, g, &e[i]);
}

void sim_wal_set_hs(sim_wal_t *w, int g, const wr_raft_hard_state_t *hs)
{
    wr_wal_hard_t h = {hs->term, hs->vote, hs->commit, hs->abstain};

    if (w->failed || wr_wal_set_hard(w->wal, (uint64_t)g + 1, &h) != WR_OK) {
        w->failed = true;
        return;
    }
    w->g[g].hs_queued = *hs;
    w->g[g].hs_pending = true;
}

bool sim_wal_failed(const sim_wal_t *w)
{
    return w->failed;
}

bool sim_wal_prepare(sim_wal_t *w)
{
    if (w->failed || wr_wal_prepare(w->wal, &w->batch) != WR_OK) {
        w->batch = NULL;
        return false;
    }
    for (int g = 0; g < w->groups; g++) {
        sim_wal_group_t *s = &w->g[g];
        s->hs_in_batch = s->hs_pending;
        s->hs_batch = s->hs_queued;
        s->hs_pending = false;
    }
    w->written = false;
    return true;
}

void sim_wal_write(sim_wal_t *w, bool fail)
{
    if (w->batch == NULL || w->written)
        return;
    if (fail)
        wr_simdisk_fail_syncs(w->disk, 1);
    wr_wal_write(w->batch);
    w->written = true;
    w->stats.batches++;
}

void sim_wal_complete(sim_wal_t *w, sim_wal_notice_fn fn, void *ud)
{
    wr_wal_batch_t *b = w->batch;

    if (b == NULL)
        return;
    w->batch = NULL;
    w->fn = fn;
    w->ud = ud;
    wr_wal_complete(w->wal, b);
    w->fn = NULL;
}

void sim_wal_writebehind(sim_wal_t *w, uint64_t budget)
{
    bool more;
    int rc = w->batch == NULL && !w->failed ? wr_wal_writebehind(w->wal, budget, &more) : WR_AGAIN;

    /* WR_ESYNTAX: a damaged record, reported; it waits for the next recovery. */
    if (rc != WR_OK && rc != WR_AGAIN && rc != WR_ESYNTAX)
        w->failed = true;
    w->stats.writebehinds += rc == WR_OK;
}

/* Abandons the batch in flight: one not yet written is written without its sync, so the
 * crash that follows drops or tears it. */
static void abandon(sim_wal_t *w)
{
    if (w->batch == NULL)
        return;
    if (!w->written)
        sim_wal_write(w, true);
    w->quiet = true;
    wr_wal_complete(w->wal, w->batch);
    w->quiet = false;
    w->batch = NULL;
}

void sim_wal_crash(sim_wal_t *w, bool torn)
{
    abandon(w);
    wal_close(w);
    wr_simdisk_crash(w->disk, torn);
    w->stats.torn += torn;
    w->stats.recoveries++;
    w->failed = false;
    wal_open(w);
}

typedef struct {
    sim_wal_t *w;
    char dir[64];
    char (*paths)[128];
    size_t n, cap;
} file_list_t;

static int list_one(void *ud, const char *name)
{
    file_list_t *l = ud;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->paths = xrealloc(l->paths, l->cap * sizeof(*l->paths));
    }
    snprintf(l->paths[l->n++], sizeof(l->paths[0]), "%s/%s", l->dir, name);
    return 0;
}

/* Every WAL and segment file (group directories listed, then their files). */
static void list_files(sim_wal_t *w, file_list_t *l)
{
    const wr_vfs_t *v = wr_simdisk_vfs(w->disk);
    size_t groups_from;

    snprintf(l->dir, sizeof(l->dir), DIR "/wal");
    wr_vfs_list(v, l->dir, list_one, l);
    groups_from = l->n;
    snprintf(l->dir, sizeof(l->dir), DIR "/groups");
    wr_vfs_list(v, l->dir, list_one, l);
    for (size_t i = groups_from, end = l->n; i < end; i++) {
        snprintf(l->dir, sizeof(l->dir), "%s", l->paths[i]);
        wr_vfs_list(v, l->dir, list_one, l);
    }
}

void sim_wal_flip(sim_wal_t *w, uint64_t pick)
{
    file_list_t l = {.w = w};
    uint64_t size = 0;

    list_files(w, &l);
    for (size_t k = 0; k < l.n; k++) {
        const char *path = l.paths[(pick + k) % l.n];
        if (wr_simdisk_file_size(w->disk, path, &size) == WR_OK && size > 0) {
            wal_close(w);
            w->flipped = true;
            wr_simdisk_flip_bit(w->disk, path, (pick >> 8) % size, (unsigned)(pick >> 4) % 8);
            w->stats.recoveries++;
            wal_open(w);
            break;
        }
    }
    free(l.paths);
}

bool sim_wal_damage_unexplained(const sim_wal_t *w)
{
    return !w->flipped && (w->stats.damaged > 0 || w->stats.wal_corrupt > 0);
}

size_t sim_wal_valid(const sim_wal_t *w, int g)
{
    wr_wal_group_info_t info;

    if (wr_wal_group_info(w->wal, (uint64_t)g + 1, &info) != WR_OK)
        return 0;
    return info.durable < w->g[g].n ? info.durable : w->g[g].n;
}

uint64_t sim_wal_term(const sim_wal_t *w, int g, uint64_t index)
{
    return index == 0 || index > sim_wal_valid(w, g) ? 0 : w->g[g].terms[index - 1];
}

wr_raft_hard_state_t sim_wal_durable_hs(const sim_wal_t *w, int g)
{
    return w->g[g].hs_durable;
}

void sim_wal_stats_add(const sim_wal_t *w, sim_wal_stats_t *sum)
{
    uint64_t read, skipped;

    wr_wal_wb_counts(w->wal, &read, &skipped);
    sum->batches += w->stats.batches;
    sum->datasyncs += wr_simdisk_stats(w->disk).datasyncs;
    sum->writebehinds += w->stats.writebehinds;
    sum->recoveries += w->stats.recoveries;
    sum->torn += w->stats.torn;
    sum->damaged += w->stats.damaged;
    sum->wal_corrupt += w->stats.wal_corrupt;
    sum->wb_read += w->stats.wb_read + read;
    sum->wb_skipped += w->stats.wb_skipped + skipped;
}

void sim_wal_free(sim_wal_t *w)
{
    if (w == NULL)
        return;
    abandon(w);
    wal_close(w);
    wr_simdisk_free(w->disk);
    for (int g = 0; g < w->groups; g++)
        free(w->g[g].terms);
    free(w->g);
    free(w);
}
