/* SPDX-License-Identifier: MIT */
/*
 * Write-behind: the oldest full WAL file is read back in record order and
 * each entry still current there is appended to its group's head segment
 * file (same payload, framed with the group index), unsynced. The WAL file
 * is deleted once nothing current is left in it, one syncfs made the
 * segments durable, and whatever overwrote its entries is itself durable.
 * A file whose every group was snapshotted past it is not read at all: what
 * it holds of each group is known from its appends, and all of it comes down
 * to reset markers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "storage/wal_internal.h"

int wr_wal_read_record(wr_vfs_file_t *f, uint32_t seed, uint64_t off, uint32_t len, wr_buf_t *out)
{
    size_t n = WR_SEGMENT_RECORD_HEADER + (size_t)len, got;
    uint32_t rlen;
    uint64_t idx;
    uint8_t *p;

    if (!wr_buf_reserve(out, n))
        return WR_ENOMEM;
    p = out->data + out->len;
    if (wr_vfs_pread(f, p, n, off, &got) != WR_OK)
        return WR_EIO;
    if (got != n || wr_segment_record_head(p, UINT64_MAX, &rlen, &idx) != WR_OK || rlen != len ||
        !wr_segment_record_crc_ok(p, p + WR_SEGMENT_RECORD_HEADER, seed))
        return WR_ESYNTAX;
    memmove(p, p + WR_SEGMENT_RECORD_HEADER, len);
    out->len += len;
    return WR_OK;
}

int wr_wal_read_all(wr_vfs_file_t *f, wr_buf_t *b)
{
    uint64_t size;
    size_t got;

    b->len = 0;
    if (wr_vfs_size(f, &size) != WR_OK)
        return WR_EIO;
    if (size > SIZE_MAX / 2 || !wr_buf_reserve(b, (size_t)size))
        return WR_ENOMEM;
    if (size > 0 && (wr_vfs_pread(f, b->data, (size_t)size, 0, &got) != WR_OK || got != size))
        return WR_EIO;
    b->len = (size_t)size;
    return WR_OK;
}

/* Starts g's next segment file at index: its header goes first in g->wb. */
static bool seg_start(wr_wal_t *w, wr_wal_group_t *g, uint64_t index)
{
    uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
    wr_segment_header_t h = {index, wr_wal_salt(w), 0};
    uint32_t seq = g->seg_next > 0 ? g->seg_next : 1;

    wr_segment_header_encode(hdr, &h);
    if (!wr_wal_seg_push(g, &(wr_wal_seg_t){seq, h.seed, sizeof(hdr), 0, 0, index}))
        return false;
    g->seg_next = seq + 1;
    wr_buf_put(&g->wb, hdr, sizeof(hdr));
    return wr_buf_ok(&g->wb);
}

/* Makes g's directory exist (durable with the next wr_vfs_sync_all). */
static int group_dir(wr_wal_t *w, wr_wal_group_t *g)
{
    char dir[WR_WAL_PATH_MAX];
    int rc;

    if (g->dir_made)
        return WR_OK;
    wr_wal_group_dir(w, g->id, dir);
    rc = wr_vfs_mkdir(w->o.vfs, dir);
    g->dir_made = rc == WR_OK || rc == WR_EEXIST;
    return g->dir_made ? WR_OK : rc;
}

/*
 * Writes g->wb, closed by an end marker, at the end of g's head segment. Not
 * synced: one wr_vfs_sync_all makes every segment written durable before the
 * WAL file they came from is deleted (one sync, not one per group).
 */
static int seg_flush(wr_wal_t *w, wr_wal_group_t *g)
{
    wr_wal_seg_t *s = &g->segs[g->nsegs - 1];
    uint64_t base = s->size - g->wb.len;
    char path[WR_WAL_PATH_MAX];
    wr_vfs_file_t *f = NULL;
    int rc = group_dir(w, g);

    wr_wal_end_encode(&g->wb, s->seed, g->wb_last, g->wb.len);
    if (!wr_buf_ok(&g->wb))
        return WR_ENOMEM;
    s->size = base + g->wb.len;
    wr_wal_seg_path(w, g->id, s->seq, path);
    if (rc == WR_OK)
        rc = wr_vfs_open(w->o.vfs, path, true, &f);
    if (rc == WR_OK)
        rc = wr_vfs_pwrite(f, g->wb.data, g->wb.len, base);
    wr_vfs_close(f);
    if (rc != WR_OK)
        wr_wal_msg(w, "wal: cannot write segment %s; the WAL accepts no more writes", path);
    g->wb.len = 0;
    w->wb_unsynced = true;
    return rc;
}

static int flush_all(wr_wal_t *w)
{
    int rc = WR_OK;

    for (size_t i = 0; i < w->nwbq; i++) {
        if (rc == WR_OK)
            rc = seg_flush(w, w->wbq[i]);
        w->wbq[i]->wb.len = 0;
        w->wbq[i]->wb_listed = false;
    }
    w->nwbq = 0;
    return rc;
}

static bool wbq_add(wr_wal_t *w, wr_wal_group_t *g)
{
    if (g->wb_listed)
        return true;
    if (w->nwbq == w->capwbq) {
        size_t cap = w->capwbq ? w->capwbq * 2 : 64;
        wr_wal_group_t **v = realloc(w->wbq, cap * sizeof(*v));
        if (v == NULL)
            return false;
        w->wbq = v;
        w->capwbq = cap;
    }
    w->wbq[w->nwbq++] = g;
    g->wb_listed = true;
    return true;
}

/* g's head segment, a new one if there is none, it is full, or index cannot be framed in it. */
static wr_wal_seg_t *seg_head(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, int *rc)
{
    wr_wal_seg_t *s = g->nsegs > 0 ? &g->segs[g->nsegs - 1] : NULL;

    *rc = WR_OK;
    if (s != NULL && s->size < w->o.segment_size && index <= s->first + s->size / WR_SEGMENT_RECORD_HEADER)
        return s;
    if (g->wb.len > 0 && (*rc = seg_flush(w, g)) != WR_OK)
        return NULL;
    if (!seg_start(w, g, index)) {
        *rc = WR_ENOMEM;
        return NULL;
    }
    return wbq_add(w, g) ? &g->segs[g->nsegs - 1] : NULL;
}

/*
 * Queues one WAL entry record for g's head segment. Entries no longer current
 * go too: replay needs their overwrite (everything at and above them goes).
 * A current one (l not NULL) now lives in the segment.
 */
static int move_entry(wr_wal_t *w, wr_wal_group_t *g, uint64_t index, wr_wal_loc_t *l, const uint8_t *p,
                      uint32_t len)
{
    int rc;
    wr_wal_seg_t *s = seg_head(w, g, index, &rc);
    size_t before = g->wb.len;
    wr_wal_loc_t moved;

    if (s == NULL)
        return rc != WR_OK ? rc : WR_ENOMEM;
    if (!wbq_add(w, g))
        return WR_ENOMEM;
    wr_segment_record_encode(&g->wb, s->seed, index, p, len);
    if (!wr_buf_ok(&g->wb))
        return WR_ENOMEM;
    moved = (wr_wal_loc_t){0, s->seq, (uint32_t)s->size, len, WR_LOC_SEG};
    s->size += g->wb.len - before;
    g->wb_last = index;
    g->wb_reset = false;
    if (l == NULL)
        return WR_OK;
    moved.term = l->term;
    wr_wal_unref(w, g, l, 0);
    *l = moved;
    wr_wal_ref(w, g, l);
    return WR_OK;
}

/*
 * Queues a reset marker at g's durable floor in a new segment: it stands for
 * the group's records at or below it (snapshotted, so not copied) and for
 * reset snapshot markers: on replay everything goes. The marker for that
 * floor itself is in a WAL file replayed later, or in the checkpoint of one.
 */
static int move_reset(wr_wal_t *w, wr_wal_group_t *g)
{
    uint8_t rec[WR_WAL_SNAP_LEN];
    wr_wal_seg_t *s;
    int rc;

    if (g->wb_reset)
        return WR_OK;
    if (g->wb.len > 0 && (rc = seg_flush(w, g)) != WR_OK)
        return rc;
    if (!seg_start(w, g, g->dfloor + 1) || !wbq_add(w, g))
        return WR_ENOMEM;
    s = &g->segs[g->nsegs - 1];
    wr_wal_snap_encode(rec, g->id, g->dfloor, g->dfloor_term, true);
    wr_segment_record_encode(&g->wb, s->seed, g->dfloor, rec, sizeof(rec));
    s->size = g->wb.len;
    g->wb_last = g->dfloor;
    g->wb_reset = true;
    return wr_buf_ok(&g->wb) ? WR_OK : WR_ENOMEM;
}

/* One scanned WAL record, carried into its group's segments as replay needs it. */
static int consider(wr_wal_t *w, wr_wal_file_t *f, const wr_segment_item_t *it)
{
    uint64_t group, term, index;
    wr_wal_group_t *g;
    wr_wal_loc_t *l;

    if (it->len == WR_WAL_SNAP_LEN && it->data[0] == WR_WAL_SNAPSHOT && (it->data[25] & 1) &&
        (g = wr_wal_group(w, wr_wal_get64(it->data + 1), false)) != NULL && it->index >= g->born)
        return move_reset(w, g);
    if (!wr_wal_entry_parse(it->data, it->len, &group, &term, &index) ||
        (g = wr_wal_group(w, group, false)) == NULL || it->index < g->born)
        return WR_OK; /* before: a deleted incarnation's */
    if (index <= g->dfloor)
        return move_reset(w, g);
    l = wr_wal_group_loc(g, index);
    if (l != NULL && (l->where != WR_LOC_WAL || l->file != f->seq || l->off != it->off))
        l = NULL;
    return move_entry(w, g, index, l, it->data, it->len);
}

void wr_wal_fsum_note(wr_wal_t *w, wr_wal_file_t *f, wr_wal_group_t *g, const wr_wal_staged_t *s)
{
    wr_wal_fsum_t *e;

    if (f == NULL || !f->sum_known)
        return;
    if (s->type == WR_WAL_DELETE) { /* two incarnations in one file: it is read like one written before */
        f->sum_known = false;
        return;
    }
    if (g->sum_seq != f->seq) {
        if (f->nsum == f->capsum) {
            size_t cap = f->capsum ? f->capsum * 2 : 16;
            wr_wal_fsum_t *v = realloc(f->sum, cap * sizeof(*v));
            if (v == NULL) {
                f->sum_known = false;
                return;
            }
            f->sum = v;
            f->capsum = cap;
        }
        f->sum[f->nsum] = (wr_wal_fsum_t){g->id, 0, false};
        g->sum_seq = f->seq;
        g->sum_slot = f->nsum++;
    }
    e = &f->sum[g->sum_slot];
    if (s->type == WR_WAL_ENTRY && s->index > e->hi)
        e->hi = s->index;
    if (s->type == WR_WAL_SNAPSHOT && (w->staged.data[s->off + 25] & 1))
        e->reset = true;
}

/* The group a summary line of f speaks for, or NULL when its records there are a deleted incarnation's. */
static wr_wal_group_t *fsum_group(wr_wal_t *w, const wr_wal_file_t *f, const wr_wal_fsum_t *e)
{
    wr_wal_group_t *g = wr_wal_group(w, e->group, false);

    return g != NULL && g->born < f->lsn_end ? g : NULL;
}

/*
 * Write-behind of f without reading it, when its summary says every entry in
 * it is at or below its group's durable floor: scanning would queue only
 * reset markers. Also true, with w->wb_waiting set, while it is left for
 * snapshots to pass (o.wb_wait_files). false when f must be read.
 */
static bool move_known(wr_wal_t *w, wr_wal_file_t *f, int *rc)
{
    wr_wal_group_t *g;

    *rc = WR_OK;
    if (!f->sum_known || f->wb_pos > 0)
        return false;
    for (size_t i = 0; i < f->nsum; i++)
        if ((g = fsum_group(w, f, &f->sum[i])) != NULL && f->sum[i].hi > g->dfloor) {
            w->wb_waiting = w->nfiles - 1 <= w->o.wb_wait_files;
            return w->wb_waiting;
        }
    for (size_t i = 0; *rc == WR_OK && i < f->nsum; i++)
        if ((g = fsum_group(w, f, &f->sum[i])) != NULL && (f->sum[i].hi > 0 || f->sum[i].reset))
            *rc = move_reset(w, g);
    f->wb_pos = f->size;
    w->wb_skipped++;
    return true;
}

/* Moves records of f from f->wb_pos until budget bytes are scanned or the file ends. */
static int move_some(wr_wal_t *w, wr_wal_file_t *f, uint64_t budget)
{
    wr_segment_header_t h;
    wr_segment_scan_t sc;
    wr_segment_item_t it;
    uint32_t version;
    wr_scan_kind_t k;
    int rc = WR_OK;

    if (f->wb_pos >= f->size)
        return WR_OK; /* moved already, waiting to retire: no need to read it again */
    if (move_known(w, f, &rc))
        return rc;
    if (w->wb_seq != f->seq) {
        if ((rc = wr_wal_read_all(f->f, &w->wb_img)) != WR_OK)
            return rc;
        w->wb_read++;
    }
    w->wb_seq = f->seq;
    if (wr_segment_header_decode(w->wb_img.data, w->wb_img.len, &h, &version) != WR_OK)
        return WR_ESYNTAX;
    wr_segment_scan_init(&sc, w->wb_img.data, w->wb_img.len, &h);
    sc.pos = f->wb_pos > sc.pos ? f->wb_pos : sc.pos;
    while (rc == WR_OK && budget > 0 && (k = wr_segment_scan_next(&sc, &it)) != WR_SCAN_END) {
        if (k == WR_SCAN_BAD)
            return WR_ESYNTAX;
        rc = consider(w, f, &it);
        budget = it.size < budget ? budget - it.size : 0;
    }
    f->wb_pos = sc.pos;
    if (f->wb_pos >= f->size) { /* moved: its image is not kept in memory */
        wr_buf_free(&w->wb_img);
        w->wb_seq = 0;
    }
    return rc;
}

/* Deletes the oldest WAL file once it is fully moved and what overwrote its entries is durable. */
static int retire(wr_wal_t *w, wr_wal_file_t *f)
{
    char path[WR_WAL_PATH_MAX];
    int rc;

    if (f->wb_pos < f->size || f->live > 0 || f->kill_gen > w->durable_gen)
        return WR_OK;
    if (w->wb_unsynced) { /* the state file records the synced sizes before the WAL copy goes */
        if (wr_vfs_sync_all(w->o.vfs, w->dir) != WR_OK)
            return WR_EIO;
        wr_wal_state_settle(w);
        if (wr_wal_state_sync(w) != WR_OK)
            return WR_EIO;
    }
    w->wb_unsynced = false;
    wr_wal_file_path(w, f->seq, path);
    rc = wr_vfs_unlink(w->o.vfs, path);
    if (rc == WR_OK)
        rc = wr_vfs_sync_dir(w->o.vfs, w->wal_dir);
    if (rc != WR_OK)
        return WR_EIO;
    wr_vfs_close(f->f);
    free(f->sum);
    memmove(w->files, w->files + 1, (w->nfiles - 1) * sizeof(*w->files));
    w->nfiles--;
    return WR_OK;
}

/* Deletes g's segment files (not the head) with no live entry, once their killers are durable. */
static int sweep_group(wr_wal_t *w, wr_wal_group_t *g)
{
    char path[WR_WAL_PATH_MAX], dir[WR_WAL_PATH_MAX];
    bool removed = false;

    for (size_t i = 0; i + 1 < g->nsegs;) {
        wr_wal_seg_t *s = &g->segs[i];
        if (s->live > 0 || s->kill_gen > w->durable_gen) {
            i++;
            continue;
        }
        wr_wal_seg_path(w, g->id, s->seq, path);
        if (wr_vfs_unlink(w->o.vfs, path) != WR_OK)
            return WR_EIO;
        memmove(s, s + 1, (g->nsegs - i - 1) * sizeof(*s));
        g->nsegs--;
        removed = true;
    }
    wr_wal_group_dir(w, g->id, dir);
    return removed ? wr_vfs_sync_dir(w->o.vfs, dir) : WR_OK;
}

static int sweep(wr_wal_t *w)
{
    int rc = WR_OK;

    for (size_t i = 0; rc == WR_OK && i < w->nall; i++)
        rc = sweep_group(w, w->all[i]);
    return rc;
}

/* Removes a deleted incarnation's segment files. */
static int doomed_remove(wr_wal_t *w, const wr_wal_doomed_t *d)
{
    char path[WR_WAL_PATH_MAX];
    int rc = WR_OK;

    for (size_t i = 0; rc == WR_OK && i < d->n; i++) {
        wr_wal_seg_path(w, d->group, d->seqs[i], path);
        rc = wr_vfs_unlink(w->o.vfs, path);
        rc = rc == WR_ENOENT ? WR_OK : rc;
    }
    if (rc == WR_OK && d->n > 0) {
        wr_wal_group_dir(w, d->group, path);
        rc = wr_vfs_sync_dir(w->o.vfs, path);
    }
    return rc;
}

/*
 * Removes the segment files of deleted incarnations whose deletion record is
 * durable; first in every step, so the WAL file holding that record outlives
 * them. Until it is durable they stay, and so does every WAL file holding a
 * live entry of the old incarnation (the deletion raised its kill generation);
 * the current WAL file's checkpoint predates the deletion and restates its
 * snapshot marker and hard state, so a crash before then loses nothing of it.
 */
static int sweep_doomed(wr_wal_t *w)
{
    size_t keep = 0;
    int rc = WR_OK;

    for (size_t i = 0; i < w->ndoomed; i++) {
        wr_wal_doomed_t *d = &w->doomed[i];
        if (rc == WR_OK && d->gen <= w->durable_gen && (rc = doomed_remove(w, d)) == WR_OK)
            free(d->seqs);
        else
            w->doomed[keep++] = *d;
    }
    w->ndoomed = keep;
    return rc;
}

static void report_damage(wr_wal_t *w, wr_wal_file_t *f)
{
    char path[WR_WAL_PATH_MAX];

    f->stuck = true;
    wr_wal_file_path(w, f->seq, path);
    wr_wal_msg(w,
               "wal: %s is damaged after offset %" PRIu64 "; write-behind stops there and the file is kept "
               "until the next recovery; damaged entries read as errors",
               path, f->wb_pos);
}

void wr_wal_wb_counts(const wr_wal_t *w, uint64_t *read, uint64_t *skipped)
{
    *read = w->wb_read;
    *skipped = w->wb_skipped;
}

int wr_wal_writebehind(wr_wal_t *w, uint64_t budget, bool *more)
{
    wr_wal_file_t *f = w->nfiles >= 2 ? &w->files[0] : NULL;
    int rc = WR_OK;

    *more = false;
    w->wb_waiting = false;
    if (w->failed)
        return WR_EIO;
    if (w->inflight != NULL)
        return WR_AGAIN;
    if ((rc = sweep_doomed(w)) != WR_OK)
        return rc;
    if (f != NULL && !f->stuck) {
        rc = move_some(w, f, budget);
        if (rc == WR_ESYNTAX)
            report_damage(w, f);
        if (flush_all(w) != WR_OK || rc == WR_EIO || rc == WR_ENOMEM)
            w->failed = true;
        if (rc == WR_OK)
            rc = retire(w, f);
    }
    if (rc == WR_OK)
        rc = sweep(w);
    f = w->nfiles >= 2 ? &w->files[0] : NULL;
    *more = rc == WR_OK && f != NULL && !f->stuck && f->wb_pos < f->size && !w->wb_waiting;
    return rc;
}
