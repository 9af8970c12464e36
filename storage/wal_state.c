/* SPDX-License-Identifier: MIT */
/*
 * The WAL's state file: every group's term, vote and abstain mark, and how far
 * its segment files were synced, in two copies (DIR/wal/state.0, state.1)
 * written in turn, each whole with a CRC. It is a second home for what a
 * damaged WAL file would take away (docs/STORAGE.md, "The state file").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/crc32c.h"
#include "storage/wal_internal.h"

#define STATE_MAGIC 0x3174617473727777ull /* "wwrstat1" */
#define STATE_HEAD  24                    /* magic, seq, count */
#define STATE_REC   56 /* group, term, vote, abstain, segment seq, synced size, incarnation */
#define STATE_LIMIT (1ull << 30)

static void state_path(const wr_wal_t *w, int copy, char out[WR_WAL_PATH_MAX])
{
    snprintf(out, WR_WAL_PATH_MAX, "%s/state.%d", w->wal_dir, copy);
}

static bool group_listed(const wr_wal_group_t *g)
{
    return !g->deleted && g->born != UINT64_MAX &&
           (g->hard.term != 0 || g->hard.vote != 0 || g->hard.abstain != 0 || g->syn_seq != 0);
}

static void put_rec(uint8_t *p, const wr_wal_group_t *g)
{
    wr_wal_put64(p, g->id);
    wr_wal_put64(p + 8, g->hard.term);
    wr_wal_put64(p + 16, g->hard.vote);
    wr_wal_put64(p + 24, g->hard.abstain);
    wr_wal_put64(p + 32, g->syn_seq);
    wr_wal_put64(p + 40, g->syn_size);
    wr_wal_put64(p + 48, g->born);
}

void wr_wal_state_image(wr_wal_t *w, wr_buf_t *out)
{
    uint8_t head[STATE_HEAD], rec[STATE_REC], crc[4];
    uint64_t count = 0;

    for (size_t i = 0; i < w->nall; i++)
        count += group_listed(w->all[i]);
    out->len = 0;
    wr_wal_put64(head, STATE_MAGIC);
    wr_wal_put64(head + 8, ++w->state_seq);
    wr_wal_put64(head + 16, count);
    wr_buf_put(out, head, sizeof(head));
    for (size_t i = 0; i < w->nall; i++) {
        wr_wal_group_t *g = w->all[i];
        g->st = g->hard;
        if (group_listed(g)) {
            put_rec(rec, g);
            wr_buf_put(out, rec, sizeof(rec));
        }
    }
    if (wr_buf_ok(out)) {
        uint32_t c = wr_crc32c_update(0, out->data, out->len);
        for (int k = 0; k < 4; k++)
            crc[k] = (uint8_t)(c >> (8 * k));
        wr_buf_put(out, crc, sizeof(crc));
    }
    w->state_dirty = false;
}

wr_vfs_file_t *wr_wal_state_file(const wr_wal_t *w)
{
    return w->state_f[w->state_seq & 1];
}

void wr_wal_state_note(wr_wal_t *w, const wr_wal_group_t *g)
{
    if (g->hard.term != g->st.term || g->hard.vote != g->st.vote || g->hard.abstain != g->st.abstain)
        w->state_dirty = true;
}

int wr_wal_state_put(wr_vfs_file_t *f, const wr_buf_t *img)
{
    if (!wr_buf_ok(img))
        return WR_ENOMEM;
    if (wr_vfs_pwrite(f, img->data, img->len, 0) != WR_OK || wr_vfs_datasync(f) != WR_OK)
        return WR_EIO;
    return WR_OK;
}

int wr_wal_state_sync(wr_wal_t *w)
{
    wr_buf_t img = WR_BUF_INIT;
    int rc;

    wr_wal_state_image(w, &img);
    rc = wr_wal_state_put(wr_wal_state_file(w), &img);
    wr_buf_free(&img);
    if (rc != WR_OK)
        wr_wal_msg(w, "wal: cannot write the state file in %s (status %d)", w->wal_dir, rc);
    return rc;
}

/* The copy's sequence number if p[0..n) is a whole, valid image; 0 if not. */
static uint64_t image_seq(const uint8_t *p, size_t n)
{
    uint64_t count, body;
    uint32_t crc;

    if (n < STATE_HEAD + 4 || wr_wal_get64(p) != STATE_MAGIC)
        return 0;
    count = wr_wal_get64(p + 16);
    if (count > STATE_LIMIT / STATE_REC || (body = STATE_HEAD + count * STATE_REC) > n - 4)
        return 0;
    crc = (uint32_t)p[body] | (uint32_t)p[body + 1] << 8 | (uint32_t)p[body + 2] << 16 |
          (uint32_t)p[body + 3] << 24;
    return wr_crc32c_update(0, p, (size_t)body) == crc ? wr_wal_get64(p + 8) : 0;
}

/* Creates the groups the image names, with what it says of them. false on allocation failure. */
static bool image_apply(wr_wal_t *w, const uint8_t *p)
{
    uint64_t count = wr_wal_get64(p + 16);

    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *r = p + STATE_HEAD + i * STATE_REC;
        wr_wal_group_t *g = wr_wal_group(w, wr_wal_get64(r), true);
        if (g == NULL)
            return false;
        g->st = (wr_wal_hard_t){wr_wal_get64(r + 8), wr_wal_get64(r + 16), 0, wr_wal_get64(r + 24)};
        g->syn_seq = (uint32_t)wr_wal_get64(r + 32);
        g->syn_size = wr_wal_get64(r + 40);
        g->seg_next = g->syn_seq + 1; /* recovery raises it past every segment file listed */
        g->st_born = g->born = wr_wal_get64(r + 48);
    }
    return true;
}

typedef struct {
    wr_buf_t img[2];
    uint64_t seq[2];
    bool written; /* some copy holds bytes */
} copies_t;

static int copies_read(wr_wal_t *w, copies_t *c)
{
    char path[WR_WAL_PATH_MAX];
    int rc = WR_OK;

    for (int i = 0; rc == WR_OK && i < 2; i++) {
        state_path(w, i, path);
        rc = wr_vfs_open(w->o.vfs, path, true, &w->state_f[i]);
        if (rc == WR_OK)
            rc = wr_wal_read_all(w->state_f[i], &c->img[i]);
        c->seq[i] = rc == WR_OK ? image_seq(c->img[i].data, c->img[i].len) : 0;
        c->written |= c->img[i].len > 0;
    }
    return rc == WR_OK ? wr_vfs_sync_dir(w->o.vfs, w->wal_dir) : rc;
}

int wr_wal_state_load(wr_wal_t *w)
{
    copies_t c = {{WR_BUF_INIT, WR_BUF_INIT}, {0, 0}, false};
    int rc = copies_read(w, &c);
    int best = c.seq[1] > c.seq[0];

    if (rc == WR_OK && c.seq[best] != 0 && !image_apply(w, c.img[best].data))
        rc = WR_ENOMEM;
    w->state_seq = c.seq[best];
    w->state_known = c.seq[best] != 0 || !c.written;
    if (rc == WR_OK && !w->state_known)
        wr_wal_msg(w,
                   "wal: no valid copy of the state file in %s; hard state comes from the WAL alone and "
                   "every cut segment tail counts as damage",
                   w->wal_dir);
    wr_buf_free(&c.img[0]);
    wr_buf_free(&c.img[1]);
    return rc;
}

void wr_wal_state_merge(wr_wal_group_t *g)
{
    wr_wal_hard_t *h = &g->hard;

    if (g->st.term > h->term) { /* the WAL lost later H records: the state file's are newer */
        *h = (wr_wal_hard_t){g->st.term, g->st.vote, h->commit, g->st.abstain};
        return;
    }
    if (g->st.term < h->term) /* the state file's newer copy is damaged: the WAL's are newer */
        return;
    /* Same term: a vote is never taken back within a term, and abstaining longer is safe. */
    h->vote = h->vote != 0 ? h->vote : g->st.vote;
    h->abstain = g->st.abstain > h->abstain ? g->st.abstain : h->abstain;
}

void wr_wal_state_settle(wr_wal_t *w)
{
    for (size_t i = 0; i < w->nall; i++) {
        wr_wal_group_t *g = w->all[i];
        if (g->nsegs > 0) {
            g->syn_seq = g->segs[g->nsegs - 1].seq;
            g->syn_size = g->segs[g->nsegs - 1].size;
        }
    }
    w->state_known = true;
    w->state_dirty = true;
}

void wr_wal_state_close(wr_wal_t *w)
{
    wr_vfs_close(w->state_f[0]);
    wr_vfs_close(w->state_f[1]);
}
