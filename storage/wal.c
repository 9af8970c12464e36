/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead log on the owner's thread: appends are staged in memory,
 * a batch frames them for the current WAL file (group commit: one write, one
 * fdatasync for every group), completion moves each entry's location into
 * the file and reports "durable up to (group, term, index)". Reads come from
 * the staging buffer, the batch in flight, the WAL file or a segment.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "storage/wal_internal.h"

#define DEFAULT_WAL_SIZE     (64ull << 20)
#define DEFAULT_SEGMENT_SIZE (8ull << 20)
#define WAL_MAX_ENTRY        (WR_SEGMENT_MAX_RECORD - WR_WAL_ENTRY_HDR)

void wr_wal_msg(wr_wal_t *w, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (w->o.message == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    w->o.message(w->o.message_ud, text);
}

void wr_wal_file_path(const wr_wal_t *w, uint32_t seq, char out[WR_WAL_PATH_MAX])
{
    snprintf(out, WR_WAL_PATH_MAX, "%s/%016" PRIx32 ".wal", w->wal_dir, seq);
}

void wr_wal_group_dir(const wr_wal_t *w, uint64_t group, char out[WR_WAL_PATH_MAX])
{
    snprintf(out, WR_WAL_PATH_MAX, "%s/%016" PRIx64, w->groups_dir, group);
}

void wr_wal_seg_path(const wr_wal_t *w, uint64_t group, uint32_t seq, char out[WR_WAL_PATH_MAX])
{
    char name[WR_SEGMENT_NAME_MAX];

    wr_segment_name(name, seq);
    snprintf(out, WR_WAL_PATH_MAX, "%s/%016" PRIx64 "/%s", w->groups_dir, group, name);
}

uint64_t wr_wal_salt(wr_wal_t *w)
{
    uint64_t z = (w->salt += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

wr_wal_group_t *wr_wal_group(wr_wal_t *w, uint64_t id, bool create)
{
    wr_bytes_t key = {(const uint8_t *)&id, sizeof(id)};
    wr_wal_group_t *g = wr_map_get(w->groups, key);

    if (g != NULL && create)
        g->deleted = false; /* a new incarnation */
    if (g != NULL || !create)
        return g;
    if (w->nall == w->capall) {
        size_t cap = w->capall ? w->capall * 2 : 64;
        wr_wal_group_t **v = realloc(w->all, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        w->all = v;
        w->capall = cap;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return NULL;
    g->id = id;
    g->first = 1;
    if (wr_map_put(w->groups, (wr_bytes_t){(const uint8_t *)&g->id, sizeof(g->id)}, g) != WR_OK) {
        free(g);
        return NULL;
    }
    w->all[w->nall++] = g;
    return g;
}

wr_wal_file_t *wr_wal_file_find(wr_wal_t *w, uint32_t seq)
{
    for (size_t i = w->nfiles; i-- > 0;)
        if (w->files[i].seq == seq)
            return &w->files[i];
    return NULL;
}

bool wr_wal_file_push(wr_wal_t *w, const wr_wal_file_t *f)
{
    if (w->nfiles == w->capfiles) {
        size_t cap = w->capfiles ? w->capfiles * 2 : 8;
        wr_wal_file_t *v = realloc(w->files, cap * sizeof(*v));
        if (v == NULL)
            return false;
        w->files = v;
        w->capfiles = cap;
    }
    w->files[w->nfiles++] = *f;
    return true;
}

static void frame(wr_buf_t *b, uint32_t seed, uint64_t *lsn, const uint8_t *p, size_t n)
{
    wr_segment_record_encode(b, seed, (*lsn)++, p, n);
}

void wr_wal_checkpoint(wr_wal_t *w, wr_buf_t *b, uint32_t seed, uint64_t *lsn)
{
    for (size_t i = 0; i < w->nall; i++) {
        wr_wal_group_t *g = w->all[i];
        uint8_t h[WR_WAL_HARD_LEN], s[WR_WAL_SNAP_LEN];
        if (g->hard.term != 0 || g->hard.vote != 0 || g->hard.commit != 0 || g->hard.abstain != 0) {
            wr_wal_hard_encode(h, g->id, &g->hard);
            frame(b, seed, lsn, h, sizeof(h));
        }
        if (g->floor != 0) {
            wr_wal_snap_encode(s, g->id, g->floor, g->floor_term, false);
            frame(b, seed, lsn, s, sizeof(s));
        }
    }
}

/* ---- open and close ---- */

void wr_wal_close(wr_wal_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nfiles; i++) {
        wr_vfs_close(w->files[i].f);
        free(w->files[i].sum);
    }
    for (size_t i = 0; i < w->nall; i++)
        wr_wal_group_free(w->all[i]);
    wr_wal_state_close(w);
    for (size_t i = 0; i < w->njobs; i++)
        w->jobs[i].done(w->jobs[i].ud, WR_AGAIN);
    free(w->jobs);
    for (size_t i = 0; i < w->ndoomed; i++)
        free(w->doomed[i].seqs);
    free(w->doomed);
    free(w->all);
    wr_map_free(w->groups);
    free(w->files);
    free(w->q);
    free(w->wbq);
    wr_buf_free(&w->staged);
    wr_buf_free(&w->wb_img);
    free(w->dir);
    free(w);
}

int wr_wal_open(const wr_wal_opts_t *o, wr_wal_t **out, wr_wal_recovery_t *rec)
{
    wr_wal_recovery_t dummy;
    wr_wal_t *w = calloc(1, sizeof(*w));
    int rc;

    if (w == NULL)
        return WR_ENOMEM;
    if (strlen(o->dir) + sizeof("/groups") > WR_WAL_DIR_MAX) {
        free(w);
        return WR_ETOOBIG;
    }
    w->o = *o;
    w->o.wal_size = o->wal_size ? o->wal_size : DEFAULT_WAL_SIZE;
    w->o.segment_size = o->segment_size ? o->segment_size : DEFAULT_SEGMENT_SIZE;
    w->salt = o->seed;
    w->dir = strdup(o->dir);
    w->groups = wr_map_new();
    snprintf(w->wal_dir, sizeof(w->wal_dir), "%s/wal", o->dir);
    snprintf(w->groups_dir, sizeof(w->groups_dir), "%s/groups", o->dir);
    rc = w->dir == NULL || w->groups == NULL ? WR_ENOMEM : wr_wal_recover(w, rec != NULL ? rec : &dummy);
    if (rc != WR_OK) {
        wr_wal_close(w);
        return rc;
    }
    *out = w;
    return WR_OK;
}

/* ---- staging ---- */

static int stage(wr_wal_t *w, uint8_t type, uint64_t group, uint64_t index, const void *hdr, size_t hlen,
                 const void *data, size_t len)
{
    wr_wal_staged_t *s;

    if (w->staged.len + hlen + len > UINT32_MAX)
        return WR_ETOOBIG;
    if (w->nq == w->capq) {
        size_t cap = w->capq ? w->capq * 2 : 64;
        wr_wal_staged_t *v = realloc(w->q, cap * sizeof(*v));
        if (v == NULL)
            return WR_ENOMEM;
        w->q = v;
        w->capq = cap;
    }
    if (!wr_buf_reserve(&w->staged, hlen + len))
        return WR_ENOMEM;
    s = &w->q[w->nq++];
    *s = (wr_wal_staged_t){group, index, (uint32_t)w->staged.len, (uint32_t)(hlen + len), type};
    wr_buf_put(&w->staged, hdr, hlen);
    if (len > 0)
        wr_buf_put(&w->staged, data, len);
    return WR_OK;
}

int wr_wal_append(wr_wal_t *w, uint64_t group, uint64_t term, uint64_t index, const void *data, size_t len)
{
    uint8_t hdr[WR_WAL_ENTRY_HDR];
    wr_wal_group_t *g;
    wr_wal_loc_t l;
    int rc;

    if (w->failed)
        return WR_EIO;
    if (len > WAL_MAX_ENTRY)
        return WR_ETOOBIG;
    if ((g = wr_wal_group(w, group, true)) == NULL)
        return WR_ENOMEM;
    if (term == 0 || index <= g->floor || index > wr_wal_group_last(g) + 1)
        return WR_ESYNTAX;
    wr_wal_entry_head(hdr, group, term, index);
    if ((rc = stage(w, WR_WAL_ENTRY, group, index, hdr, sizeof(hdr), data, len)) != WR_OK)
        return rc;
    l = (wr_wal_loc_t){term, 0, w->q[w->nq - 1].off, w->q[w->nq - 1].len, WR_LOC_PENDING};
    if (!wr_wal_group_put(w, g, index, &l, ++w->gen)) {
        w->nq--;
        w->staged.len -= l.len;
        return WR_ENOMEM;
    }
    if (g->durable >= index)
        g->durable = index - 1;
    return WR_OK;
}

int wr_wal_set_hard(wr_wal_t *w, uint64_t group, const wr_wal_hard_t *h)
{
    uint8_t rec[WR_WAL_HARD_LEN];
    wr_wal_group_t *g;
    int rc;

    if (w->failed)
        return WR_EIO;
    if ((g = wr_wal_group(w, group, true)) == NULL)
        return WR_ENOMEM;
    wr_wal_hard_encode(rec, group, h);
    if ((rc = stage(w, WR_WAL_HARD, group, 0, rec, sizeof(rec), NULL, 0)) != WR_OK)
        return rc;
    /* Only the commit index moved: Raft never needs it durable (a member relearns it from the leader), so it
     * waits for the next batch that must be synced anyway instead of costing an fdatasync. */
    if (h->term == g->hard.term && h->vote == g->hard.vote && h->abstain == g->hard.abstain) {
        w->nlazy++;
        w->lazy_bytes += sizeof(rec);
    }
    g->hard = *h;
    wr_wal_state_note(w, g);
    return WR_OK;
}

int wr_wal_snapshot(wr_wal_t *w, uint64_t group, uint64_t index, uint64_t term)
{
    uint8_t rec[WR_WAL_SNAP_LEN];
    wr_wal_group_t *g;
    wr_wal_loc_t *l;
    bool reset;
    int rc;

    if (w->failed)
        return WR_EIO;
    if ((g = wr_wal_group(w, group, true)) == NULL)
        return WR_ENOMEM;
    if (index <= g->floor)
        return WR_OK;
    l = wr_wal_group_loc(g, index);
    reset = l == NULL || l->term != term;
    wr_wal_snap_encode(rec, group, index, term, reset);
    if ((rc = stage(w, WR_WAL_SNAPSHOT, group, index, rec, sizeof(rec), NULL, 0)) != WR_OK)
        return rc;
    wr_wal_group_snap(w, g, index, term, reset, ++w->gen);
    if (reset && g->durable > index)
        g->durable = index;
    return WR_OK;
}

int wr_wal_group_delete(wr_wal_t *w, uint64_t group)
{
    uint8_t rec[WR_WAL_DEL_LEN];
    wr_wal_group_t *g;
    int rc;

    if (w->failed)
        return WR_EIO;
    if ((g = wr_wal_group(w, group, false)) == NULL || g->deleted)
        return WR_ENOENT;
    rec[0] = WR_WAL_DELETE;
    wr_wal_put64(rec + 1, group);
    if ((rc = stage(w, WR_WAL_DELETE, group, 0, rec, sizeof(rec), NULL, 0)) != WR_OK)
        return rc;
    if (!wr_wal_group_reset(w, g, ++w->gen)) {
        w->nq--;
        w->staged.len -= sizeof(rec);
        return WR_ENOMEM;
    }
    g->born = UINT64_MAX; /* its LSN once framed; write-behind skips every record before it */
    wr_wal_state_note(w, g);
    return WR_OK;
}

uint64_t wr_wal_pending_bytes(const wr_wal_t *w)
{
    return w->staged.len - w->lazy_bytes;
}

int wr_wal_before_write(wr_wal_t *w, wr_wal_job_run_fn run, wr_wal_job_done_fn done, void *ud)
{
    if (w->failed)
        return WR_EIO;
    if (w->njobs == w->capjobs) {
        size_t cap = w->capjobs ? w->capjobs * 2 : 4;
        wr_wal_job_t *v = realloc(w->jobs, cap * sizeof(*v));
        if (v == NULL)
            return WR_ENOMEM;
        w->jobs = v;
        w->capjobs = cap;
    }
    w->jobs[w->njobs++] = (wr_wal_job_t){run, done, ud, WR_AGAIN};
    return WR_OK;
}

/* ---- group commit ---- */

static void batch_free(wr_wal_batch_t *b)
{
    if (b == NULL)
        return;
    wr_buf_free(&b->buf);
    wr_buf_free(&b->state);
    free(b->notices);
    free(b->last);
    free(b->snaps);
    free(b->jobs);
    free(b);
}

/* A new batch sized for everything staged, aimed at the current file or a new one. */
static wr_wal_batch_t *batch_new(wr_wal_t *w, bool roll)
{
    wr_wal_batch_t *b = calloc(1, sizeof(*b));
    wr_wal_file_t none = {.seq = 0};
    wr_wal_file_t *cur = w->nfiles > 0 ? &w->files[w->nfiles - 1] : &none;
    size_t need = w->staged.len + (w->nq + 1) * WR_SEGMENT_RECORD_HEADER + WR_WAL_END_LEN;

    if (b == NULL)
        return NULL;
    b->vfs = w->o.vfs;
    b->next_lsn = w->next_lsn;
    b->new_file = roll || cur->size >= w->o.wal_size;
    b->seq = b->new_file ? cur->seq + 1 : cur->seq;
    b->seed = cur->seed;
    b->base = b->new_file ? 0 : cur->size;
    b->f = b->new_file ? NULL : cur->f;
    wr_wal_file_path(w, b->seq, b->path);
    snprintf(b->dir, sizeof(b->dir), "%s", w->wal_dir);
    if (b->new_file) {
        uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
        wr_segment_header_t h = {b->next_lsn, wr_wal_salt(w), 0};
        wr_segment_header_encode(hdr, &h);
        b->seed = h.seed;
        wr_buf_put(&b->buf, hdr, sizeof(hdr));
        wr_wal_checkpoint(w, &b->buf, b->seed, &b->next_lsn);
    }
    b->notices = malloc(w->nq * sizeof(*b->notices));
    b->last = malloc(w->nq * sizeof(*b->last));
    b->snaps = malloc(w->nq * sizeof(*b->snaps));
    if (!wr_buf_reserve(&b->buf, need) || !wr_buf_ok(&b->buf) || b->notices == NULL || b->last == NULL ||
        b->snaps == NULL) {
        batch_free(b);
        return NULL;
    }
    return b;
}

/* The notice of g in b, added on first use. */
static size_t notice_of(wr_wal_batch_t *b, wr_wal_group_t *g)
{
    if (g->slot == 0) {
        b->notices[b->nnotices] = (wr_wal_notice_t){g->id, 0, 0, false, false};
        b->last[b->nnotices].where = WR_LOC_NONE;
        g->slot = ++b->nnotices;
    }
    return g->slot - 1;
}

/* Frames one staged record into b; an entry that is still current now lives in the batch's file. */
static void batch_add(wr_wal_t *w, wr_wal_batch_t *b, const wr_wal_staged_t *s)
{
    wr_wal_group_t *g = wr_wal_group(w, s->group, false);
    uint64_t off = b->base + b->buf.len;
    size_t k = notice_of(b, g);
    wr_wal_loc_t *l;

    if (s->type == WR_WAL_DELETE) { /* what the notice said so far was the old incarnation's */
        g->born = b->next_lsn;
        b->notices[k] = (wr_wal_notice_t){g->id, 0, 0, false, false};
        b->last[k].where = WR_LOC_NONE;
    }
    wr_wal_fsum_note(w, wr_wal_file_find(w, b->seq), g, s);
    frame(&b->buf, b->seed, &b->next_lsn, w->staged.data + s->off, s->len);
    b->notices[k].hard |= s->type == WR_WAL_HARD;
    b->notices[k].snapshot |= s->type == WR_WAL_SNAPSHOT;
    if (s->type == WR_WAL_SNAPSHOT) {
        b->snaps[k][0] = s->index;
        b->snaps[k][1] = wr_wal_get64(w->staged.data + s->off + 17);
    }
    if (s->type != WR_WAL_ENTRY)
        return;
    b->notices[k].index = s->index;
    b->notices[k].term = wr_wal_get64(w->staged.data + s->off + 9);
    l = wr_wal_group_loc(g, s->index);
    b->last[k].where = WR_LOC_NONE;
    if (l == NULL || l->where != WR_LOC_PENDING || l->off != s->off)
        return; /* overwritten or dropped before it reached a batch */
    *l = (wr_wal_loc_t){l->term, b->seq, (uint32_t)off, s->len, WR_LOC_WAL};
    wr_wal_ref(w, g, l);
    b->last[k] = *l;
}

/* Frames everything staged into a new batch (into a new WAL file when roll) and puts it in flight. */
static int batch_start(wr_wal_t *w, bool roll, wr_wal_batch_t **out)
{
    wr_wal_batch_t *b = batch_new(w, roll);
    wr_wal_file_t *f;

    if (b == NULL)
        return WR_ENOMEM;
    if (b->new_file &&
        !wr_wal_file_push(w, &(wr_wal_file_t){.seq = b->seq, .seed = b->seed, .sum_known = true})) {
        batch_free(b);
        return WR_ENOMEM;
    }
    for (size_t i = 0; i < w->nq; i++)
        batch_add(w, b, &w->q[i]);
    /* The end marker: a damaged last record is then followed by a valid one, so it is not taken for a torn
     * tail. */
    wr_wal_end_encode(&b->buf, b->seed, b->next_lsn++, b->buf.len);
    if ((f = wr_wal_file_find(w, b->seq)) != NULL)
        f->lsn_end = b->next_lsn;
    if (w->state_dirty) { /* a term, vote or abstain changed: the state file is written after the WAL */
        wr_wal_state_image(w, &b->state);
        b->state_f = wr_wal_state_file(w);
    }
    for (size_t i = 0; i < b->nnotices; i++)
        wr_wal_group(w, b->notices[i].group, false)->slot = 0;
    b->gen = w->gen;
    b->jobs = w->jobs;
    b->njobs = w->njobs;
    w->jobs = NULL;
    w->njobs = w->capjobs = 0;
    w->next_lsn = b->next_lsn;
    w->nq = w->nlazy = 0;
    w->staged.len = w->lazy_bytes = 0;
    w->inflight = b;
    *out = b;
    return WR_OK;
}

int wr_wal_prepare(wr_wal_t *w, wr_wal_batch_t **out)
{
    if (w->failed)
        return WR_EIO;
    if (w->inflight != NULL || (w->nq == w->nlazy && w->njobs == 0))
        return WR_AGAIN;
    return batch_start(w, false, out);
}

int wr_wal_roll(wr_wal_t *w)
{
    wr_wal_batch_t *b;
    int rc = batch_start(w, true, &b);

    if (rc != WR_OK)
        return rc;
    rc = wr_wal_write(b);
    wr_wal_complete(w, b);
    return rc;
}

int wr_wal_write(wr_wal_batch_t *b)
{
    int rc = WR_OK;

    for (size_t i = 0; i < b->njobs; i++)
        b->jobs[i].status = b->jobs[i].run(b->jobs[i].ud);
    if (b->new_file)
        rc = wr_vfs_open(b->vfs, b->path, true, &b->f);
    if (rc == WR_OK)
        rc = wr_vfs_pwrite(b->f, b->buf.data, b->buf.len, b->base);
    if (rc == WR_OK)
        rc = wr_vfs_datasync(b->f);
    if (rc == WR_OK && b->new_file)
        rc = wr_vfs_sync_dir(b->vfs, b->dir);
    if (rc == WR_OK && b->state.len > 0)
        rc = wr_wal_state_put(b->state_f, &b->state);
    b->status = rc == WR_OK ? WR_OK : WR_EIO;
    return b->status;
}

/*
 * The group's durable index moves to its notice's entry if that entry is
 * still the one written; its durable snapshot marker to the batch's. Not
 * for an incarnation born after the batch (deleted and recreated while it
 * was in flight): the batch's records are the old one's.
 */
static void advance(wr_wal_t *w, const wr_wal_batch_t *b, size_t i)
{
    const wr_wal_notice_t *n = &b->notices[i];
    const uint64_t *snap = b->snaps[i];
    wr_wal_group_t *g = wr_wal_group(w, n->group, false);
    wr_wal_loc_t *l;

    if (g == NULL || g->born >= b->next_lsn)
        return;
    l = b->last[i].where == WR_LOC_WAL ? wr_wal_group_loc(g, n->index) : NULL;

    if (l != NULL && l->where == WR_LOC_WAL && l->file == b->last[i].file && l->off == b->last[i].off)
        g->durable = n->index > g->durable ? n->index : g->durable;
    if (n->snapshot && g->durable < g->floor)
        g->durable = g->floor;
    if (n->snapshot && snap[0] > g->dfloor) {
        g->dfloor = snap[0];
        g->dfloor_term = snap[1];
    }
}

static void fail(wr_wal_t *w, wr_wal_batch_t *b)
{
    w->failed = true;
    wr_wal_msg(w, "wal: cannot write %s: batch of %zu group(s) lost; the WAL accepts no more writes", b->path,
               b->nnotices);
    if (b->new_file)
        wr_vfs_close(b->f);
}

void wr_wal_complete(wr_wal_t *w, wr_wal_batch_t *b)
{
    wr_wal_file_t *f = wr_wal_file_find(w, b->seq);

    w->inflight = NULL;
    if (b->status != WR_OK) {
        fail(w, b);
    } else {
        f->f = b->f;
        f->size = b->base + b->buf.len;
        w->durable_gen = b->gen;
        for (size_t i = 0; i < b->nnotices; i++)
            advance(w, b, i);
    }
    for (size_t i = 0; i < b->njobs; i++)
        b->jobs[i].done(b->jobs[i].ud, b->jobs[i].status);
    for (size_t i = 0; i < b->nnotices; i++)
        if (w->o.durable != NULL)
            w->o.durable(w->o.durable_ud, &b->notices[i], b->status);
    batch_free(b);
}

int wr_wal_sync(wr_wal_t *w)
{
    wr_wal_batch_t *b;
    int rc;

    if (w->failed)
        return WR_EIO;
    if (w->inflight != NULL || (w->nq == 0 && w->njobs == 0))
        return WR_AGAIN;
    if ((rc = batch_start(w, false, &b)) != WR_OK)
        return rc;
    rc = wr_wal_write(b);
    wr_wal_complete(w, b);
    return rc;
}

/* ---- reads ---- */

/* The payload of the record l points at into tmp (CRC checked when read from a file). */
static int fetch(wr_wal_t *w, uint64_t group, const wr_wal_loc_t *l, wr_buf_t *tmp)
{
    wr_wal_batch_t *b = w->inflight;
    wr_wal_file_t *f;
    char path[WR_WAL_PATH_MAX];
    wr_vfs_file_t *sf;
    int rc;

    if (l->where == WR_LOC_PENDING) {
        wr_buf_put(tmp, w->staged.data + l->off, l->len);
        return wr_buf_ok(tmp) ? WR_OK : WR_ENOMEM;
    }
    if (l->where == WR_LOC_WAL && b != NULL && b->seq == l->file && l->off >= b->base) {
        wr_buf_put(tmp, b->buf.data + (l->off - b->base) + WR_SEGMENT_RECORD_HEADER, l->len);
        return wr_buf_ok(tmp) ? WR_OK : WR_ENOMEM;
    }
    if (l->where == WR_LOC_WAL) {
        f = wr_wal_file_find(w, l->file);
        return f != NULL && f->f != NULL ? wr_wal_read_record(f->f, f->seed, l->off, l->len, tmp) : WR_EIO;
    }
    wr_wal_seg_path(w, group, l->file, path);
    if ((rc = wr_vfs_open(w->o.vfs, path, false, &sf)) != WR_OK)
        return WR_EIO;
    rc = wr_wal_read_record(sf, wr_wal_seg_find(wr_wal_group(w, group, false), l->file)->seed, l->off, l->len,
                            tmp);
    wr_vfs_close(sf);
    return rc;
}

int wr_wal_read(wr_wal_t *w, uint64_t group, uint64_t index, uint64_t *term, wr_buf_t *out)
{
    wr_wal_group_t *g = wr_wal_group(w, group, false);
    wr_wal_loc_t *l = g != NULL ? wr_wal_group_loc(g, index) : NULL;
    wr_buf_t tmp = WR_BUF_INIT;
    uint64_t pg, pt, pi;
    int rc;

    if (l == NULL)
        return WR_ENOENT;
    rc = fetch(w, group, l, &tmp);
    if (rc == WR_OK && (!wr_wal_entry_parse(tmp.data, tmp.len, &pg, &pt, &pi) || pg != group || pi != index))
        rc = WR_ESYNTAX;
    if (rc == WR_ESYNTAX)
        wr_wal_msg(w,
                   "wal: entry %" PRIu64 " of group %016" PRIx64 " is damaged on disk (%s %016" PRIx32
                   " offset %" PRIu32 "); it must be fetched again from a peer",
                   index, group, l->where == WR_LOC_WAL ? "WAL file" : "segment", l->file, l->off);
    if (rc == WR_OK) {
        *term = pt;
        wr_buf_put(out, tmp.data + WR_WAL_ENTRY_HDR, tmp.len - WR_WAL_ENTRY_HDR);
        rc = wr_buf_ok(out) ? WR_OK : WR_ENOMEM;
    }
    wr_buf_free(&tmp);
    return rc;
}

int wr_wal_group_info(const wr_wal_t *w, uint64_t group, wr_wal_group_info_t *out)
{
    wr_wal_group_t *g = wr_wal_group((wr_wal_t *)w, group, false);
    wr_wal_loc_t *l;

    if (g == NULL || g->deleted)
        return WR_ENOENT;
    out->snap_index = g->floor;
    out->snap_term = g->floor_term;
    out->first = g->floor + 1;
    out->last = wr_wal_group_last(g);
    l = wr_wal_group_loc(g, out->last);
    out->last_term = l != NULL ? l->term : g->floor_term;
    out->durable = g->durable < out->last ? g->durable : out->last;
    out->hard = g->hard;
    out->damaged = g->damaged;
    return WR_OK;
}

int wr_wal_foreach_group(const wr_wal_t *w, int (*fn)(void *ud, uint64_t group), void *ud)
{
    int rc = WR_OK;

    for (size_t i = 0; rc == WR_OK && i < w->nall; i++)
        if (!w->all[i]->deleted)
            rc = fn(ud, w->all[i]->id);
    return rc;
}
