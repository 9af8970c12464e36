/* SPDX-License-Identifier: MIT */
/*
 * Recovery of the WAL at start-up: every group's segment files in order,
 * then the WAL files in order, each record applied as it was at run time
 * (an entry drops the entries at and above its index, a snapshot marker a
 * prefix). A torn tail is cut. Damage elsewhere cuts the stream there and
 * marks the groups that may have lost durable entries; a group then holds
 * only the entries it can read back, up to its first hole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "core/crc32c.h"
#include "storage/wal_internal.h"

/* File sequence numbers read from a directory listing. */
typedef struct {
    uint64_t *v;
    size_t n, cap;
    const char *suffix; /* ".wal" or ".seg" */
} seqs_t;

static int seq_collect(void *ud, const char *name)
{
    seqs_t *s = ud;
    uint64_t v = 0;

    if (strlen(name) != 16 + strlen(s->suffix) || strcmp(name + 16, s->suffix) != 0)
        return WR_OK;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return WR_OK;
        v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv == NULL)
            return WR_ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return WR_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The sorted sequence numbers of dir's files ending in suffix (none if dir is absent). */
static int list_seqs(wr_wal_t *w, const char *dir, const char *suffix, seqs_t *out)
{
    int rc;

    *out = (seqs_t){NULL, 0, 0, suffix};
    rc = wr_vfs_list(w->o.vfs, dir, seq_collect, out);
    if (rc == WR_ENOENT)
        rc = WR_OK;
    if (rc == WR_OK && out->n > 0)
        qsort(out->v, out->n, sizeof(*out->v), cmp_u64);
    return rc;
}

static int ensure_dir(wr_wal_t *w, const char *path)
{
    int rc = wr_vfs_mkdir(w->o.vfs, path);

    if (rc == WR_EEXIST)
        return WR_OK;
    return rc == WR_OK ? wr_vfs_sync_dir(w->o.vfs, w->dir) : rc;
}

/* Cuts path at off and makes the cut durable. */
static int cut_file(wr_wal_t *w, wr_vfs_file_t *f, uint64_t off)
{
    int rc = wr_vfs_truncate(f, off);

    return rc == WR_OK ? wr_vfs_datasync(f) : rc;
}

static void damage_path(const wr_wal_t *w, char *out)
{
    snprintf(out, WR_WAL_PATH_MAX, "%s/damaged", w->dir);
}

/*
 * Makes DIR/damaged durable, before the first cut of damaged data: the cut
 * makes the damage invisible to the next recovery, and the owner's own mark
 * may not be durable yet when the machine crashes.
 */
static int damage_mark(wr_wal_t *w)
{
    char path[WR_WAL_PATH_MAX];
    wr_vfs_file_t *f;
    int rc;

    if (w->damage_marked)
        return WR_OK;
    damage_path(w, path);
    if ((rc = wr_vfs_open(w->o.vfs, path, true, &f)) != WR_OK)
        return rc;
    rc = wr_vfs_datasync(f);
    wr_vfs_close(f);
    if (rc == WR_OK)
        rc = wr_vfs_sync_dir(w->o.vfs, w->dir);
    w->damage_marked = rc == WR_OK;
    return rc;
}

int wr_wal_damage_noted(wr_wal_t *w)
{
    char path[WR_WAL_PATH_MAX];
    int rc;

    if (!w->damage_marked)
        return WR_OK;
    damage_path(w, path);
    rc = wr_vfs_unlink(w->o.vfs, path);
    if (rc == WR_OK)
        rc = wr_vfs_sync_dir(w->o.vfs, w->dir);
    if (rc != WR_OK)
        return WR_EIO;
    w->damage_marked = w->damage_unnoted = false;
    return WR_OK;
}

/* Renames path to path.corrupt: kept for inspection, never read again. */
static int set_aside(wr_wal_t *w, const char *path)
{
    char to[WR_WAL_PATH_MAX + 16];

    snprintf(to, sizeof(to), "%s.corrupt", path);
    return wr_vfs_rename(w->o.vfs, path, to);
}

/* ---- segments ---- */

/*
 * True if a file whose header fails its check still holds a record that
 * verifies under the CRC its header stored or the one its bytes give: a
 * damaged header on a written file, not a crash while creating it.
 */
static bool header_damaged(const wr_buf_t *img)
{
    const uint8_t *p = img->data;
    uint32_t seeds[2], len;
    uint64_t lsn;

    if (img->len < WR_SEGMENT_HEADER_SIZE + WR_SEGMENT_RECORD_HEADER)
        return false;
    seeds[0] = (uint32_t)wr_wal_get64(p + 32);
    seeds[1] = wr_crc32c_update(0, p, 32);
    if (wr_segment_record_head(p + WR_SEGMENT_HEADER_SIZE, UINT64_MAX, &len, &lsn) != WR_OK ||
        len > img->len - WR_SEGMENT_HEADER_SIZE - WR_SEGMENT_RECORD_HEADER)
        return false;
    for (int i = 0; i < 2; i++)
        if (wr_segment_record_crc_ok(p + WR_SEGMENT_HEADER_SIZE,
                                     p + WR_SEGMENT_HEADER_SIZE + WR_SEGMENT_RECORD_HEADER, seeds[i]))
            return true;
    return false;
}

typedef struct {
    wr_wal_t *w;
    wr_wal_group_t *g;
    wr_wal_recovery_t *rec;
    wr_buf_t img;
    bool cut;     /* a damaged segment ended this group's segment stream */
    bool changed; /* files were removed or renamed: the directory needs a sync */
} seg_ctx_t;

/* Applies one segment record; false if it is not an entry of this group at its framed index. */
static bool seg_record(seg_ctx_t *c, uint32_t seq, const wr_segment_item_t *it)
{
    uint64_t group, term, index;
    wr_wal_loc_t l;

    if (it->len == WR_WAL_END_LEN && it->data[0] == WR_WAL_END)
        return true;
    if (it->len == WR_WAL_SNAP_LEN && it->data[0] == WR_WAL_SNAPSHOT) {
        if (wr_wal_get64(it->data + 1) != c->g->id || wr_wal_get64(it->data + 9) != it->index)
            return false;
        wr_wal_group_snap(c->w, c->g, it->index, wr_wal_get64(it->data + 17), it->data[25] & 1, 0);
        return true;
    }
    if (!wr_wal_entry_parse(it->data, it->len, &group, &term, &index) || group != c->g->id ||
        index != it->index)
        return false;
    l = (wr_wal_loc_t){term, seq, (uint32_t)it->off, it->len, WR_LOC_SEG};
    return wr_wal_group_put(c->w, c->g, index, &l, 0);
}

/*
 * Scans one segment image; returns the offset where it stops being valid (its
 * size if intact). *tail: nothing valid follows that point (a torn write,
 * whose records the WAL still holds, or a damaged end marker).
 */
static uint64_t seg_scan(seg_ctx_t *c, uint32_t seq, const wr_segment_header_t *h, bool *tail)
{
    wr_segment_scan_t sc;
    wr_segment_item_t it;
    wr_scan_kind_t k;

    *tail = false;
    wr_segment_scan_init(&sc, c->img.data, c->img.len, h);
    while ((k = wr_segment_scan_next(&sc, &it)) != WR_SCAN_END) {
        if (k == WR_SCAN_BAD)
            *tail = it.off + it.size == c->img.len;
        if (k == WR_SCAN_BAD || !seg_record(c, seq, &it))
            return it.off;
    }
    return c->img.len;
}

/*
 * Whether byte off of g's segment seq was synced: the state file says how far
 * each group's segments were when write-behind last synced them (before it
 * deleted a WAL file). Without a valid state file, everything counts as synced.
 */
static bool seg_synced(const wr_wal_t *w, const wr_wal_group_t *g, uint32_t seq, uint64_t off)
{
    return !w->state_known || seq < g->syn_seq || (seq == g->syn_seq && off < g->syn_size);
}

/* A segment file after a cut: its records are lost. */
static int seg_drop(seg_ctx_t *c, const char *path, wr_vfs_file_t *f)
{
    c->g->seg_lost = true;
    c->changed = true;
    wr_vfs_close(f);
    wr_wal_msg(c->w, "wal: segment %s follows a damaged one; removed", path);
    return wr_vfs_unlink(c->w->o.vfs, path);
}

/*
 * Reads one segment file of c->g. A torn tail is cut (segments are written
 * unsynced until the WAL file they came from is retired, so the WAL still
 * holds it). Damage elsewhere ends the group's segment stream there: the
 * file is cut, later ones removed, and the group has lost records.
 */
static int seg_file(seg_ctx_t *c, uint32_t seq)
{
    char path[WR_WAL_PATH_MAX];
    wr_segment_header_t h;
    wr_vfs_file_t *f;
    uint32_t version;
    uint64_t good;
    bool tail;
    int rc;

    wr_wal_seg_path(c->w, c->g->id, seq, path);
    if ((rc = wr_vfs_open(c->w->o.vfs, path, false, &f)) != WR_OK)
        return rc;
    c->rec->segment_files++;
    if (c->cut)
        return seg_drop(c, path, f);
    if ((rc = wr_wal_read_all(f, &c->img)) != WR_OK) {
        wr_vfs_close(f);
        return rc;
    }
    if (wr_segment_header_decode(c->img.data, c->img.len, &h, &version) != WR_OK) {
        wr_vfs_close(f);
        c->changed = true;
        if (!header_damaged(&c->img) && !seg_synced(c->w, c->g, seq, 0)) {
            wr_wal_msg(c->w, "wal: segment %s has no valid header (a crash as it was created); removed",
                       path);
            return wr_vfs_unlink(c->w->o.vfs, path);
        }
        c->cut = true;
        c->g->seg_lost = true;
        wr_wal_msg(c->w, "wal: segment %s has a damaged header; set aside as .corrupt", path);
        rc = damage_mark(c->w);
        return rc == WR_OK ? set_aside(c->w, path) : rc;
    }
    good = seg_scan(c, seq, &h, &tail);
    if (good < c->img.len) {
        /* Torn only if it starts past what was synced: the WAL file it came from is then still
         * there (it is deleted only after the sync). A lone end marker loses nothing (no other
         * record is that short). Anything else is damage. */
        tail = tail && (!seg_synced(c->w, c->g, seq, good) ||
                        c->img.len - good == WR_SEGMENT_RECORD_HEADER + WR_WAL_END_LEN);
        c->cut = !tail;
        c->g->seg_lost |= !tail;
        c->rec->torn_bytes += c->img.len - good;
        wr_wal_msg(c->w, "wal: segment %s: invalid data at offset %" PRIu64 ", %" PRIu64 " bytes cut", path,
                   good, (uint64_t)(c->img.len - good));
        rc = tail ? WR_OK : damage_mark(c->w);
        if (rc == WR_OK)
            rc = cut_file(c->w, f, good);
    }
    wr_vfs_close(f);
    if (rc == WR_OK && !wr_wal_seg_push(c->g, &(wr_wal_seg_t){seq, h.seed, good, 0, 0, h.first}))
        rc = WR_ENOMEM;
    return rc;
}

/*
 * After damage cut c->g's segment stream: the lost records may have
 * overwritten any entry above the snapshot, and WAL records replayed later
 * rewrite only what they touch, so nothing read from its segments can be
 * trusted. They are all removed (the WAL files' checkpoints still hold the
 * snapshot marker); replay then keeps only what the WAL alone determines.
 */
static int seg_forget(seg_ctx_t *c)
{
    char path[WR_WAL_PATH_MAX];
    int rc = WR_OK;

    for (size_t i = 0; rc == WR_OK && i < c->g->nsegs; i++) {
        wr_wal_seg_path(c->w, c->g->id, c->g->segs[i].seq, path);
        rc = wr_vfs_unlink(c->w->o.vfs, path);
    }
    wr_wal_msg(c->w, "wal: group %016" PRIx64 " lost segment records; its %zu segment file(s) removed",
               c->g->id, c->g->nsegs);
    c->g->nsegs = 0;
    c->g->n = 0;
    c->g->first = c->g->floor + 1;
    c->changed = true;
    return rc;
}

static int seg_group(wr_wal_t *w, wr_wal_recovery_t *rec, uint64_t id)
{
    char dir[WR_WAL_PATH_MAX];
    seg_ctx_t c = {w, NULL, rec, WR_BUF_INIT, false, false};
    seqs_t s;
    int rc;

    wr_wal_group_dir(w, id, dir);
    rc = list_seqs(w, dir, ".seg", &s);
    if (rc == WR_OK && s.n == 0 && wr_wal_group(w, id, false) == NULL) {
        free(s.v); /* an empty directory (a deleted group's) makes no group */
        return WR_OK;
    }
    if (rc == WR_OK && (c.g = wr_wal_group(w, id, true)) == NULL)
        rc = WR_ENOMEM;
    if (rc == WR_OK)
        c.g->dir_made = true;
    for (size_t i = 0; rc == WR_OK && i < s.n; i++)
        rc = seg_file(&c, (uint32_t)s.v[i]);
    if (rc == WR_OK && c.g->seg_lost)
        rc = seg_forget(&c);
    /* A number is never reused: a removed file whose removal a crash undoes must not look newer,
     * and the state file's synced size must not describe a new file of the same number. */
    if (rc == WR_OK && s.n > 0 && s.v[s.n - 1] >= c.g->seg_next)
        c.g->seg_next = (uint32_t)s.v[s.n - 1] + 1;
    if (rc == WR_OK && c.changed)
        rc = wr_vfs_sync_dir(w->o.vfs, dir);
    free(s.v);
    wr_buf_free(&c.img);
    return rc;
}

/* Group directories are named by 16 hex digits: collected with an empty suffix. */
static int recover_segments(wr_wal_t *w, wr_wal_recovery_t *rec)
{
    seqs_t s;
    int rc = list_seqs(w, w->groups_dir, "", &s);

    for (size_t i = 0; rc == WR_OK && i < s.n; i++)
        rc = seg_group(w, rec, s.v[i]);
    free(s.v);
    return rc;
}

/* ---- WAL files ---- */

typedef struct {
    wr_wal_t *w;
    wr_wal_recovery_t *rec;
    wr_buf_t img;
    bool last;       /* the newest WAL file */
    bool first_file; /* its header sets the first LSN */
    bool damaged;    /* the stream was cut: later files are set aside */
} wal_ctx_t;

static bool apply_entry(wr_wal_t *w, uint32_t seq, const wr_segment_item_t *it)
{
    uint64_t group, term, index;
    wr_wal_group_t *g;
    wr_wal_loc_t l;

    if (!wr_wal_entry_parse(it->data, it->len, &group, &term, &index) ||
        (g = wr_wal_group(w, group, true)) == NULL)
        return false;
    l = (wr_wal_loc_t){term, seq, (uint32_t)it->off, it->len, WR_LOC_WAL};
    return wr_wal_group_put(w, g, index, &l, 0);
}

/* A deletion record at lsn: what the state file says of an older incarnation goes too. */
static bool replay_delete(wr_wal_t *w, wr_wal_group_t *g, uint64_t lsn)
{
    if (g->st_born < lsn)
        g->st = (wr_wal_hard_t){0, 0, 0, 0};
    g->born = lsn;
    return wr_wal_group_reset(w, g, 0);
}

/* Applies one WAL record as at run time; false if it is not one this build writes. */
static bool apply(wr_wal_t *w, uint32_t seq, const wr_segment_item_t *it)
{
    const uint8_t *p = it->data;
    wr_wal_group_t *g;

    if (it->len > 0 && p[0] == WR_WAL_ENTRY)
        return apply_entry(w, seq, it);
    if (it->len == WR_WAL_END_LEN && p[0] == WR_WAL_END)
        return true;
    if (it->len == WR_WAL_DEL_LEN && p[0] == WR_WAL_DELETE &&
        (g = wr_wal_group(w, wr_wal_get64(p + 1), true)))
        return replay_delete(w, g, it->index);
    if (it->len == WR_WAL_HARD_LEN && p[0] == WR_WAL_HARD &&
        (g = wr_wal_group(w, wr_wal_get64(p + 1), true))) {
        g->hard = (wr_wal_hard_t){wr_wal_get64(p + 9), wr_wal_get64(p + 17), wr_wal_get64(p + 25),
                                  wr_wal_get64(p + 33)};
        return true;
    }
    if (it->len == WR_WAL_SNAP_LEN && p[0] == WR_WAL_SNAPSHOT &&
        (g = wr_wal_group(w, wr_wal_get64(p + 1), true))) {
        wr_wal_group_snap(w, g, wr_wal_get64(p + 9), wr_wal_get64(p + 17), p[25] & 1, 0);
        return true;
    }
    return false;
}

/*
 * Replays records of one WAL image; returns where it stops being valid (its
 * size if intact). *tail: what follows that point holds no valid record.
 */
static uint64_t wal_scan(wal_ctx_t *c, uint32_t seq, const wr_segment_header_t *h, bool *tail)
{
    wr_segment_scan_t sc;
    wr_segment_item_t it;
    wr_scan_kind_t k;

    *tail = false;
    wr_segment_scan_init(&sc, c->img.data, c->img.len, h);
    while ((k = wr_segment_scan_next(&sc, &it)) != WR_SCAN_END) {
        if (k == WR_SCAN_BAD) {
            *tail = it.off + it.size == c->img.len;
            return it.off;
        }
        if (it.index != c->w->next_lsn || !apply(c->w, seq, &it))
            return it.off;
        c->w->next_lsn++;
    }
    return c->img.len;
}

/* A bad run in f at good: a torn tail if it ends the newest file, else damage that cuts the stream. */
static int wal_cut(wal_ctx_t *c, wr_vfs_file_t *f, const char *path, uint64_t good, bool tail)
{
    uint64_t bytes = c->img.len - good;
    int rc;

    if (tail && c->last) {
        c->rec->torn_bytes += bytes;
        wr_wal_msg(c->w, "wal: torn tail in %s at offset %" PRIu64 ": truncated %" PRIu64 " bytes", path,
                   good, bytes);
    } else {
        c->damaged = true;
        wr_wal_msg(c->w,
                   "wal: %s is damaged at offset %" PRIu64 " (%" PRIu64
                   " bytes cut, later WAL files set aside "
                   "as .corrupt); every group is marked damaged and keeps only what precedes the damage",
                   path, good, bytes);
        if ((rc = damage_mark(c->w)) != WR_OK)
            return rc;
    }
    return cut_file(c->w, f, good);
}

static int wal_open_file(wal_ctx_t *c, uint32_t seq, const char *path, wr_vfs_file_t *f)
{
    wr_segment_header_t h;
    uint32_t version;
    uint64_t good;
    bool tail = false;
    int rc = wr_wal_read_all(f, &c->img);

    if (rc == WR_OK && wr_segment_header_decode(c->img.data, c->img.len, &h, &version) != WR_OK)
        return WR_ESYNTAX;
    if (rc != WR_OK)
        return rc;
    if (c->first_file)
        c->w->next_lsn = h.first;
    c->first_file = false;
    if (h.first != c->w->next_lsn)
        good = WR_SEGMENT_HEADER_SIZE; /* a WAL file is missing before this one */
    else
        good = wal_scan(c, seq, &h, &tail);
    if (good < c->img.len && (rc = wal_cut(c, f, path, good, tail)) != WR_OK)
        return rc;
    if ((rc = wr_vfs_datasync(f)) != WR_OK)
        return rc;
    c->rec->wal_files++;
    return wr_wal_file_push(c->w, &(wr_wal_file_t){.seq = seq, .seed = h.seed, .f = f, .size = good})
               ? WR_OK
               : WR_ENOMEM;
}

/* One WAL file. A headerless newest file (a crash as it was created) is removed. */
static int wal_file(wal_ctx_t *c, uint32_t seq)
{
    char path[WR_WAL_PATH_MAX];
    wr_vfs_file_t *f;
    int rc;

    wr_wal_file_path(c->w, seq, path);
    if (c->damaged)
        return set_aside(c->w, path);
    if ((rc = wr_vfs_open(c->w->o.vfs, path, false, &f)) != WR_OK)
        return rc;
    rc = wal_open_file(c, seq, path, f);
    if (rc == WR_OK)
        return WR_OK;
    wr_vfs_close(f);
    if (rc != WR_ESYNTAX)
        return rc;
    if (c->last && !header_damaged(&c->img)) {
        wr_wal_msg(c->w, "wal: %s has no valid header (a crash as it was created); removed", path);
        return wr_vfs_unlink(c->w->o.vfs, path);
    }
    c->damaged = true;
    wr_wal_msg(c->w, "wal: %s has no valid header; set aside as .corrupt, every group is marked damaged",
               path);
    rc = damage_mark(c->w);
    return rc == WR_OK ? set_aside(c->w, path) : rc;
}

static int recover_wal(wr_wal_t *w, wr_wal_recovery_t *rec)
{
    wal_ctx_t c = {w, rec, WR_BUF_INIT, false, true, false};
    seqs_t s;
    int rc = list_seqs(w, w->wal_dir, ".wal", &s);

    w->next_lsn = 1;
    for (size_t i = 0; rc == WR_OK && i < s.n; i++) {
        c.last = i + 1 == s.n;
        rc = wal_file(&c, (uint32_t)s.v[i]);
    }
    if (rc == WR_OK && s.n > 0)
        rc = wr_vfs_sync_dir(w->o.vfs, w->wal_dir);
    rec->wal_corrupt = c.damaged || w->damage_unnoted; /* unnoted damage: every group, known or not */
    free(s.v);
    wr_buf_free(&c.img);
    return rc;
}

/* ---- after replay ---- */

/*
 * Keeps g's entries up to its first hole and counts each live in its file.
 * The group is damaged if entries it had made durable are gone: a hole, a
 * damaged segment whose entries the WAL did not hold again, or a damaged WAL.
 */
static void finish_group(wr_wal_t *w, wr_wal_group_t *g, wr_wal_recovery_t *rec)
{
    size_t keep = 0;
    bool hole;

    if (g->deleted)
        return;
    if (g->n > 0 && g->first <= g->floor) /* a damaged WAL cut off the marker that dropped them */
        wr_wal_group_snap(w, g, g->floor, g->floor_term, false, 0);
    if (g->n > 0 && g->first > g->floor + 1)
        g->n = 0, hole = true; /* nothing readable follows the snapshot */
    else {
        while (keep < g->n && g->locs[keep].where != WR_LOC_NONE)
            keep++;
        hole = keep < g->n;
        g->n = keep;
    }
    if (g->n == 0)
        g->first = g->floor + 1;
    g->damaged = hole || rec->wal_corrupt || g->seg_lost;
    wr_wal_state_merge(g);
    wr_wal_state_note(w, g);
    for (size_t i = 0; i < g->n; i++)
        wr_wal_ref(w, g, &g->locs[i]);
    g->durable = wr_wal_group_last(g);
    g->dfloor = g->floor;
    g->dfloor_term = g->floor_term;
    rec->groups++;
    rec->entries += g->n;
    if (g->damaged) {
        rec->damaged++;
        wr_wal_msg(w,
                   "wal: group %016" PRIx64 " is damaged: it holds entries up to %" PRIu64 " only and must "
                   "fetch the rest from a peer",
                   g->id, g->durable);
    }
}

/* Every group's last checks; a group damaged by a hole alone is marked too (its records go later). */
static int finish(wr_wal_t *w, wr_wal_recovery_t *rec)
{
    for (size_t i = 0; i < w->nall; i++)
        finish_group(w, w->all[i], rec);
    return rec->damaged > 0 ? damage_mark(w) : WR_OK;
}

/* A marker left by an earlier recovery whose owner did not note the damage before a crash. */
static void damage_load(wr_wal_t *w)
{
    char path[WR_WAL_PATH_MAX];
    wr_vfs_file_t *f;

    damage_path(w, path);
    if (wr_vfs_open(w->o.vfs, path, false, &f) != WR_OK)
        return;
    wr_vfs_close(f);
    w->damage_marked = w->damage_unnoted = true;
    wr_wal_msg(w, "wal: an earlier recovery found damage that was not noted before a crash; every group is "
                  "marked damaged, as after a damaged WAL file");
}

static uint64_t now_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int wr_wal_recover(wr_wal_t *w, wr_wal_recovery_t *rec)
{
    uint64_t t0 = now_usec();
    int rc;

    memset(rec, 0, sizeof(*rec));
    rc = ensure_dir(w, w->wal_dir);
    if (rc == WR_OK)
        rc = ensure_dir(w, w->groups_dir);
    if (rc == WR_OK) {
        damage_load(w);
        rc = wr_wal_state_load(w);
    }
    if (rc == WR_OK)
        rc = recover_segments(w, rec);
    if (rc == WR_OK)
        rc = recover_wal(w, rec);
    if (rc == WR_OK)
        rc = wr_vfs_sync_all(w->o.vfs, w->dir); /* what recovery read counts as synced from now on */
    if (rc == WR_OK)
        rc = finish(w, rec);
    if (rc == WR_OK) {
        wr_wal_state_settle(w);
        rc = wr_wal_roll(w); /* the recovered files are full from now on; the state file follows */
    }
    if (rc != WR_OK)
        wr_wal_msg(w, "wal: recovery of %s failed (status %d)", w->dir, rc);
    rec->usec = now_usec() - t0;
    return rc;
}
