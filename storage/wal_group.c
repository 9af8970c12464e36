/* SPDX-License-Identifier: MIT */
/*
 * The WAL's per-group entry index and its record payloads. An index is a
 * dense array of locations from `first`; overwriting index i drops every
 * entry >= i, a snapshot marker drops a prefix. Every location counts as one
 * live entry of the WAL or segment file holding it, so a file with none left
 * can go.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/wal_internal.h"

void wr_wal_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t wr_wal_get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void wr_wal_entry_head(uint8_t out[WR_WAL_ENTRY_HDR], uint64_t group, uint64_t term, uint64_t index)
{
    out[0] = WR_WAL_ENTRY;
    wr_wal_put64(out + 1, group);
    wr_wal_put64(out + 9, term);
    wr_wal_put64(out + 17, index);
}

bool wr_wal_entry_parse(const uint8_t *p, size_t len, uint64_t *group, uint64_t *term, uint64_t *index)
{
    if (len < WR_WAL_ENTRY_HDR || p[0] != WR_WAL_ENTRY)
        return false;
    *group = wr_wal_get64(p + 1);
    *term = wr_wal_get64(p + 9);
    *index = wr_wal_get64(p + 17);
    return *term != 0 && *index != 0;
}

void wr_wal_hard_encode(uint8_t out[WR_WAL_HARD_LEN], uint64_t group, const wr_wal_hard_t *h)
{
    out[0] = WR_WAL_HARD;
    wr_wal_put64(out + 1, group);
    wr_wal_put64(out + 9, h->term);
    wr_wal_put64(out + 17, h->vote);
    wr_wal_put64(out + 25, h->commit);
    wr_wal_put64(out + 33, h->abstain);
}

void wr_wal_end_encode(wr_buf_t *b, uint32_t seed, uint64_t index, uint64_t bytes)
{
    uint8_t p[WR_WAL_END_LEN];

    p[0] = WR_WAL_END;
    wr_wal_put64(p + 1, bytes);
    wr_segment_record_encode(b, seed, index, p, sizeof(p));
}

void wr_wal_snap_encode(uint8_t out[WR_WAL_SNAP_LEN], uint64_t group, uint64_t index, uint64_t term,
                        bool reset)
{
    out[0] = WR_WAL_SNAPSHOT;
    wr_wal_put64(out + 1, group);
    wr_wal_put64(out + 9, index);
    wr_wal_put64(out + 17, term);
    out[25] = reset ? 1 : 0;
}

uint64_t wr_wal_group_last(const wr_wal_group_t *g)
{
    return g->n > 0 ? g->first + g->n - 1 : g->floor;
}

wr_wal_loc_t *wr_wal_group_loc(wr_wal_group_t *g, uint64_t index)
{
    if (g->n == 0 || index < g->first || index - g->first >= g->n)
        return NULL;
    return g->locs[index - g->first].where != WR_LOC_NONE ? &g->locs[index - g->first] : NULL;
}

wr_wal_seg_t *wr_wal_seg_find(wr_wal_group_t *g, uint32_t seq)
{
    for (size_t i = g->nsegs; i-- > 0;)
        if (g->segs[i].seq == seq)
            return &g->segs[i];
    return NULL;
}

bool wr_wal_seg_push(wr_wal_group_t *g, const wr_wal_seg_t *s)
{
    if (g->nsegs == g->capsegs) {
        size_t cap = g->capsegs ? g->capsegs * 2 : 4;
        wr_wal_seg_t *v = realloc(g->segs, cap * sizeof(*v));
        if (v == NULL)
            return false;
        g->segs = v;
        g->capsegs = cap;
    }
    g->segs[g->nsegs++] = *s;
    return true;
}

void wr_wal_ref(wr_wal_t *w, wr_wal_group_t *g, const wr_wal_loc_t *l)
{
    wr_wal_file_t *f = l->where == WR_LOC_WAL ? wr_wal_file_find(w, l->file) : NULL;
    wr_wal_seg_t *s = l->where == WR_LOC_SEG ? wr_wal_seg_find(g, l->file) : NULL;

    if (f != NULL)
        f->live++;
    if (s != NULL)
        s->live++;
}

void wr_wal_unref(wr_wal_t *w, wr_wal_group_t *g, const wr_wal_loc_t *l, uint64_t gen)
{
    wr_wal_file_t *f = l->where == WR_LOC_WAL ? wr_wal_file_find(w, l->file) : NULL;
    wr_wal_seg_t *s = l->where == WR_LOC_SEG ? wr_wal_seg_find(g, l->file) : NULL;

    if (f != NULL && f->live > 0) {
        f->live--;
        f->kill_gen = gen > f->kill_gen ? gen : f->kill_gen;
    }
    if (s != NULL && s->live > 0) {
        s->live--;
        s->kill_gen = gen > s->kill_gen ? gen : s->kill_gen;
    }
}

/* Drops entries from position `from` of the array to its end. */
static void drop_from(wr_wal_t *w, wr_wal_group_t *g, size_t from, uint64_t gen)
{
    for (size_t i = from; i < g->n; i++)
        wr_wal_unref(w, g, &g->locs[i], gen);
    g->n = from;
}

static bool reserve(wr_wal_group_t *g, size_t n)
{
    size_t cap = g->cap ? g->cap : 16;
    wr_wal_loc_t *v;

    if (n <= g->cap)
        return true;
    while (cap < n)
        cap *= 2;
    if ((v = realloc(g->locs, cap * sizeof(*v))) == NULL)
        return false;
    g->locs = v;
    g->cap = cap;
    return true;
}

bool wr_wal_group_put(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, const wr_wal_loc_t *l, uint64_t gen)
{
    bool restart = g->n == 0 || index < g->first;
    size_t at = restart ? 0 : (size_t)(index - g->first);

    if (!reserve(g, at + 1)) /* before anything is dropped, so a failure changes nothing */
        return false;
    if (restart) {
        drop_from(w, g, 0, gen);
        g->first = index;
    }
    if (at < g->n)
        drop_from(w, g, at, gen);
    for (size_t i = g->n; i < at; i++)
        g->locs[i].where = WR_LOC_NONE;
    g->locs[at] = *l;
    g->n = at + 1;
    return true;
}

void wr_wal_group_snap(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, uint64_t term, bool reset,
                       uint64_t gen)
{
    size_t k = 0;

    if (reset || (g->n > 0 && index >= g->first + g->n - 1)) {
        drop_from(w, g, 0, gen);
    } else if (g->n > 0 && index >= g->first) {
        k = (size_t)(index - g->first + 1);
        for (size_t i = 0; i < k; i++)
            wr_wal_unref(w, g, &g->locs[i], gen);
        memmove(g->locs, g->locs + k, (g->n - k) * sizeof(*g->locs));
        g->n -= k;
    }
    if (g->n == 0 || index >= g->first)
        g->first = index + 1;
    if (reset || index >= g->floor) {
        g->floor = index;
        g->floor_term = term;
    }
}

bool wr_wal_group_reset(wr_wal_t *w, wr_wal_group_t *g, uint64_t gen)
{
    wr_wal_doomed_t *d;

    if (w->ndoomed == w->capdoomed) {
        size_t cap = w->capdoomed ? w->capdoomed * 2 : 8;
        wr_wal_doomed_t *v = realloc(w->doomed, cap * sizeof(*v));
        if (v == NULL)
            return false;
        w->doomed = v;
        w->capdoomed = cap;
    }
    d = &w->doomed[w->ndoomed];
    *d = (wr_wal_doomed_t){g->id, malloc((g->nsegs ? g->nsegs : 1) * sizeof(*d->seqs)), g->nsegs, gen};
    if (d->seqs == NULL)
        return false;
    w->ndoomed++;
    for (size_t i = 0; i < g->nsegs; i++)
        d->seqs[i] = g->segs[i].seq;
    drop_from(w, g, 0, gen);
    g->nsegs = 0;
    g->first = 1;
    g->floor = g->floor_term = g->dfloor = g->dfloor_term = g->durable = 0;
    g->hard = (wr_wal_hard_t){0, 0, 0, 0};
    g->damaged = g->seg_lost = g->wb_reset = false;
    g->deleted = true;
    return true;
}

void wr_wal_group_free(wr_wal_group_t *g)
{
    if (g == NULL)
        return;
    free(g->locs);
    free(g->segs);
    wr_buf_free(&g->wb);
    free(g);
}
