/* SPDX-License-Identifier: MIT */
/*
 * The Raft driver's files in DIR/snap/<group>/: "members" (the first voters,
 * written once), "snap" (the newest snapshot: what it covers, the membership
 * then, the state machine's bytes and a CRC32C of it all), "snap.tmp" (one
 * being taken: written on the loop, then fdatasynced, renamed and the
 * directory fsynced on the WAL's storage thread) and "snap.rx" (chunks
 * received from a leader, installed on the loop the same way). A snapshot is
 * loaded a chunk at a time (its CRC first, then the state machine's bytes),
 * never whole in memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "broker/cluster/raftd_internal.h"
#include "core/crc32c.h"
#include "core/status.h"

#define SNAP_MAGIC    0x57524e53u /* "WRNS" */
#define MEMBERS_MAGIC 0x57524d42u /* "WRMB" */
#define HEAD_FIXED    (4 + 8 + 8 + 8 + 1)
#define MAX_FILE      (1ull << 32) /* a snapshot larger than 4 GiB is refused */

static uint64_t get(const uint8_t **p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | *(*p)++;
    return v;
}

static void path(const wr_rgroup_t *g, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", g->dir, name);
}

static int logged(const wr_rgroup_t *g, const char *what, const char *name, int rc)
{
    if (rc != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: group %llu: %s %s/%s failed: %s", (unsigned long long)g->id, what, g->dir,
               name, rc == WR_EIO ? strerror(errno) : "out of memory");
    return rc;
}

/* Writes b to <name>.tmp, fdatasync, renames it to name, fsyncs the directory. */
static int file_put(wr_rgroup_t *g, const char *name, const wr_buf_t *b)
{
    const wr_vfs_t *v = g->d->vfs;
    char tmp[4200], to[4200], base[64];
    wr_vfs_file_t *f = NULL;
    int rc;

    snprintf(base, sizeof(base), "%s.tmp", name);
    path(g, base, tmp, sizeof(tmp));
    path(g, name, to, sizeof(to));
    if ((rc = wr_vfs_open(v, tmp, true, &f)) == WR_OK && (rc = wr_vfs_truncate(f, 0)) == WR_OK &&
        (rc = wr_vfs_pwrite(f, b->data, b->len, 0)) == WR_OK && (rc = wr_vfs_datasync(f)) == WR_OK &&
        (rc = wr_vfs_rename(v, tmp, to)) == WR_OK)
        rc = wr_vfs_sync_dir(v, g->dir);
    wr_vfs_close(f);
    return logged(g, "writing", name, rc);
}

/* Reads name (a small file) whole into *b. WR_ENOENT if absent. */
static int file_get(wr_rgroup_t *g, const char *name, wr_buf_t *b)
{
    wr_vfs_file_t *f = NULL;
    uint64_t size = 0;
    size_t got = 0;
    char p[4200];
    int rc;

    path(g, name, p, sizeof(p));
    if ((rc = wr_vfs_open(g->d->vfs, p, false, &f)) != WR_OK)
        return rc == WR_ENOENT ? rc : logged(g, "opening", name, rc);
    if ((rc = wr_vfs_size(f, &size)) == WR_OK && size > MAX_FILE)
        rc = WR_ETOOBIG;
    if (rc == WR_OK && !wr_buf_reserve(b, (size_t)size + 1))
        rc = WR_ENOMEM;
    if (rc == WR_OK && (rc = wr_vfs_pread(f, b->data, (size_t)size, 0, &got)) == WR_OK)
        b->len = got;
    wr_vfs_close(f);
    return rc == WR_ETOOBIG ? WR_ESYNTAX : logged(g, "reading", name, rc);
}

int wr_raftd_snap_dir(wr_rgroup_t *g)
{
    char parent[4200];
    int rc = wr_vfs_mkdir(g->d->vfs, g->dir);

    snprintf(parent, sizeof(parent), "%s/snap", g->d->dir);
    if (rc == WR_EEXIST)
        return WR_OK;
    if (rc == WR_OK)
        rc = wr_vfs_sync_dir(g->d->vfs, parent);
    return logged(g, "creating", "", rc);
}

/* ---- members ---- */

static bool members_decode(const wr_buf_t *b, uint32_t *ids, size_t *n)
{
    const uint8_t *p = b->data, *crc_at = b->data + b->len - 4;
    size_t count;

    if (b->len < 9 || wr_crc32c_update(0, b->data, b->len - 4) != (uint32_t)get(&crc_at, 4) ||
        get(&p, 4) != MEMBERS_MAGIC)
        return false;
    count = (size_t)get(&p, 1);
    if (count > WR_RAFT_MAX_PEERS || b->len != 9 + 4 * count)
        return false;
    for (size_t i = 0; i < count; i++)
        ids[i] = (uint32_t)get(&p, 4);
    *n = count;
    return true;
}

int wr_raftd_members(wr_rgroup_t *g, uint32_t *ids, size_t *n)
{
    wr_buf_t b = WR_BUF_INIT;
    int rc = file_get(g, "members", &b);

    if (rc == WR_OK && !members_decode(&b, ids, n)) {
        wr_log(WR_LOG_ERROR, "raft: group %llu: %s/members is damaged (CRC)", (unsigned long long)g->id,
               g->dir);
        rc = WR_EIO;
    } else if (rc == WR_ENOENT) {
        wr_buf_put_u32(&b, MEMBERS_MAGIC);
        wr_buf_put_u8(&b, (uint8_t)*n);
        for (size_t i = 0; i < *n; i++)
            wr_buf_put_u32(&b, ids[i]);
        wr_buf_put_u32(&b, wr_crc32c_update(0, b.data, b.len));
        rc = wr_buf_ok(&b) ? file_put(g, "members", &b) : WR_ENOMEM;
    }
    wr_buf_free(&b);
    return rc;
}

/* ---- snapshot files ---- */

static void head_put(wr_buf_t *b, const wr_raft_snapshot_t *m)
{
    wr_buf_put_u32(b, SNAP_MAGIC);
    wr_buf_put_u64(b, m->index);
    wr_buf_put_u64(b, m->term);
    wr_buf_put_u64(b, m->conf.index);
    wr_buf_put_u8(b, (uint8_t)m->conf.n);
    for (size_t i = 0; i < m->conf.n; i++) {
        wr_buf_put_u32(b, m->conf.id[i]);
        wr_buf_put_u8(b, m->conf.voter[i]);
    }
}

/* The head of a snapshot file of size bytes, from its first bytes h[0..hlen): *meta on success. */
static bool head_decode(const uint8_t *h, size_t hlen, uint64_t size, wr_raft_snapshot_t *meta)
{
    const uint8_t *p = h;
    size_t head;

    if (hlen < HEAD_FIXED || size < HEAD_FIXED + 4 || get(&p, 4) != SNAP_MAGIC)
        return false;
    *meta = (wr_raft_snapshot_t){.index = get(&p, 8), .term = get(&p, 8)};
    meta->conf.index = get(&p, 8);
    meta->conf.n = (size_t)get(&p, 1);
    head = HEAD_FIXED + 5 * meta->conf.n;
    if (meta->conf.n > WR_RAFT_MAX_PEERS || hlen < head || size < head + 4 || meta->index == 0)
        return false;
    for (size_t i = 0; i < meta->conf.n; i++) {
        meta->conf.id[i] = (uint32_t)get(&p, 4);
        meta->conf.voter[i] = get(&p, 1) != 0;
    }
    return true;
}

/* f (taken), len bytes whose CRC32C is crc, describing meta, is now the snapshot served. */
static void serve(wr_rgroup_t *g, wr_vfs_file_t *f, uint64_t len, uint32_t crc,
                  const wr_raft_snapshot_t *meta)
{
    wr_vfs_close(g->snap.f);
    g->snap = (wr_raftd_snap_t){f, len, crc, *meta, HEAD_FIXED + 5 * meta->conf.n};
}

int wr_rgroup_snap_read(wr_rgroup_t *g, uint64_t off, size_t len, wr_buf_t *out)
{
    const wr_raftd_snap_t *s = &g->snap;
    size_t got = 0;

    if (s->f == NULL || s->len < s->head + 4 || off > s->len - s->head - 4 ||
        len > s->len - s->head - 4 - off)
        return WR_ENOENT;
    if (!wr_buf_reserve(out, len))
        return WR_ENOMEM;
    if (wr_vfs_pread(s->f, out->data + out->len, len, s->head + off, &got) != WR_OK || got != len)
        return WR_EIO;
    out->len += len;
    return WR_OK;
}

/* ---- loading, in chunks ---- */

struct wr_rgroup_snap_in_s {
    wr_vfs_file_t *f;
    uint64_t size;      /* of the file */
    uint64_t base, pos; /* file offsets: the state machine's first byte, the next one to hand out */
    uint8_t *buf;       /* a chunk of the file: buf_len bytes from file offset buf_at */
    size_t cap, buf_len;
    uint64_t buf_at;
};

/* The state machine's part ends before the CRC. */
static uint64_t in_end(const wr_rgroup_snap_in_t *in)
{
    return in->size - 4;
}

uint64_t wr_rgroup_snap_in_offset(const wr_rgroup_snap_in_t *in)
{
    return in->pos - in->base;
}

uint64_t wr_rgroup_snap_in_left(const wr_rgroup_snap_in_t *in)
{
    return in_end(in) - in->pos;
}

/* The chunk of the file from off, at most cap bytes, up to end. WR_OK or WR_EIO. */
static int in_fill(wr_rgroup_snap_in_t *in, uint64_t off, uint64_t end)
{
    size_t want = end - off < in->cap ? (size_t)(end - off) : in->cap, got = 0;

    in->buf_len = 0;
    if (wr_vfs_pread(in->f, in->buf, want, off, &got) != WR_OK || got != want)
        return WR_EIO;
    in->buf_at = off;
    in->buf_len = want;
    return WR_OK;
}

int wr_rgroup_snap_in_read(wr_rgroup_snap_in_t *in, void *to, uint64_t len)
{
    uint8_t *dst = to;

    if (len > wr_rgroup_snap_in_left(in))
        return WR_ESYNTAX;
    while (len > 0 && dst != NULL) {
        size_t n;

        if ((in->pos < in->buf_at || in->pos >= in->buf_at + in->buf_len) &&
            in_fill(in, in->pos, in_end(in)) != WR_OK)
            return WR_EIO;
        n = (size_t)(in->buf_at + in->buf_len - in->pos);
        n = n < len ? n : (size_t)len;
        memcpy(dst, in->buf + (in->pos - in->buf_at), n);
        dst += n;
        in->pos += n;
        len -= n;
    }
    in->pos += len; /* skipped unread */
    return WR_OK;
}

/* The CRC32C of the file but its last 4 bytes, read a chunk at a time, matches them: *crc is the whole
 * file's. */
static int in_crc(wr_rgroup_snap_in_t *in, uint32_t *crc)
{
    uint8_t tail[4];
    const uint8_t *p = tail;
    size_t got = 0;
    uint32_t c = 0;

    for (uint64_t off = 0; off < in_end(in); off += in->buf_len) {
        if (in_fill(in, off, in_end(in)) != WR_OK)
            return WR_EIO;
        c = wr_crc32c_update(c, in->buf, in->buf_len);
    }
    if (wr_vfs_pread(in->f, tail, sizeof(tail), in_end(in), &got) != WR_OK || got != sizeof(tail))
        return WR_EIO;
    if ((uint32_t)get(&p, 4) != c)
        return WR_ESYNTAX;
    *crc = wr_crc32c_update(c, tail, sizeof(tail));
    return WR_OK;
}

/* The file's head into *meta; in then hands out the state machine's bytes from their first. */
static int in_head(wr_rgroup_snap_in_t *in, wr_raft_snapshot_t *meta)
{
    uint8_t head[HEAD_FIXED + 5 * WR_RAFT_MAX_PEERS];
    size_t hlen = in_end(in) < sizeof(head) ? (size_t)in_end(in) : sizeof(head), got = 0;

    if (wr_vfs_pread(in->f, head, hlen, 0, &got) != WR_OK || got != hlen)
        return WR_EIO;
    if (!head_decode(head, hlen, in->size, meta))
        return WR_ESYNTAX;
    in->base = in->pos = HEAD_FIXED + 5 * meta->conf.n;
    in->buf_len = 0;
    return WR_OK;
}

/*
 * Opens the snapshot file name and checks its CRC and head, reading it in
 * chunks of snap_chunk bytes: never whole in memory. WR_OK (in at the state
 * machine's bytes, *crc the file's), WR_ENOENT (absent), WR_ESYNTAX (damaged,
 * or over 4 GiB), WR_ENOMEM or WR_EIO (logged). in_close in every case.
 */
static int in_open(wr_rgroup_t *g, const char *name, wr_rgroup_snap_in_t *in, wr_raft_snapshot_t *meta,
                   uint32_t *crc)
{
    char p[4200];
    int rc;

    *in = (wr_rgroup_snap_in_t){.cap = g->d->snap_chunk};
    path(g, name, p, sizeof(p));
    if ((rc = wr_vfs_open(g->d->vfs, p, false, &in->f)) != WR_OK)
        return rc == WR_ENOENT ? rc : logged(g, "opening", name, rc);
    if ((rc = wr_vfs_size(in->f, &in->size)) == WR_OK && (in->size > MAX_FILE || in->size < HEAD_FIXED + 4))
        rc = WR_ESYNTAX;
    if (rc == WR_OK && (in->buf = malloc(in->cap)) == NULL)
        rc = WR_ENOMEM;
    if (rc == WR_OK && (rc = in_crc(in, crc)) == WR_OK)
        rc = in_head(in, meta);
    return rc == WR_ESYNTAX ? rc : logged(g, "reading", name, rc);
}

static void in_close(wr_rgroup_snap_in_t *in)
{
    wr_vfs_close(in->f);
    free(in->buf);
}

/* The state machine takes the snapshot in: streamed, or whole for a machine without snapshot_stream. */
static int sm_load(wr_rgroup_t *g, wr_rgroup_snap_in_t *in)
{
    uint64_t len = wr_rgroup_snap_in_left(in);
    wr_buf_t b = WR_BUF_INIT;
    int rc;

    if (g->sm.snapshot_stream != NULL)
        return g->sm.snapshot_stream(g->ud, in) == WR_OK ? WR_OK : WR_ESYNTAX;
    if (!wr_buf_reserve(&b, (size_t)len + 1))
        return WR_ENOMEM;
    rc = wr_rgroup_snap_in_read(in, b.data, len);
    if (rc == WR_OK && g->sm.snapshot_load(g->ud, b.data, (size_t)len) != WR_OK)
        rc = WR_ESYNTAX;
    wr_buf_free(&b);
    return rc;
}

int wr_raftd_snap_load(wr_rgroup_t *g, wr_raft_snapshot_t *meta)
{
    wr_rgroup_snap_in_t in;
    uint32_t crc = 0;
    int rc = in_open(g, "snap", &in, meta, &crc);

    if (rc == WR_OK && (rc = sm_load(g, &in)) == WR_OK) {
        serve(g, in.f, in.size, crc, meta);
        in.f = NULL;
    }
    in_close(&in);
    if (rc == WR_ESYNTAX)
        wr_log(WR_LOG_WARNING, "raft: group %llu: snapshot %s/snap is damaged (CRC): not loaded",
               (unsigned long long)g->id, g->dir);
    if (rc != WR_OK)
        *meta = (wr_raft_snapshot_t){0};
    return rc == WR_ENOENT ? WR_OK : rc;
}

int wr_rgroup_snap_spill(wr_rgroup_t *g, wr_buf_t *out)
{
    wr_raftd_snapw_t *w = &g->snap_w;

    if (w->f == NULL || out->len == 0)
        return WR_OK;
    if (wr_vfs_pwrite(w->f, out->data, out->len, w->len) != WR_OK)
        return WR_EIO;
    w->crc = wr_crc32c_update(w->crc, out->data, out->len);
    w->len += out->len;
    wr_buf_reset(out);
    return WR_OK;
}

/* Opens snap.tmp, empty, for the snapshot being taken (g->snap_w). */
static int snapw_open(wr_rgroup_t *g)
{
    char tmp[4200];
    int rc;

    path(g, "snap.tmp", tmp, sizeof(tmp));
    g->snap_w = (wr_raftd_snapw_t){0};
    if ((rc = wr_vfs_open(g->d->vfs, tmp, true, &g->snap_w.f)) == WR_OK &&
        (rc = wr_vfs_truncate(g->snap_w.f, 0)) != WR_OK) {
        wr_vfs_close(g->snap_w.f);
        g->snap_w.f = NULL;
    }
    return rc;
}

/* Ends the snapshot being written with b and the CRC32C of it all, not synced. WR_OK (the file stays open
 * in g->snap_w) or an error (logged). */
static int snapw_finish(wr_rgroup_t *g, wr_buf_t *b)
{
    wr_raftd_snapw_t *w = &g->snap_w;
    int rc = wr_rgroup_snap_spill(g, b);

    if (rc == WR_OK) {
        wr_buf_put_u32(b, w->crc);
        rc = wr_buf_ok(b) ? wr_rgroup_snap_spill(g, b) : WR_ENOMEM;
    }
    return logged(g, "writing", "snap.tmp", rc);
}

/* The state machine's bytes after the head, written out as they come (wr_rgroup_snap_spill). */
static int snap_write(wr_rgroup_t *g, const wr_raft_snapshot_t *meta)
{
    wr_buf_t b = WR_BUF_INIT;
    int rc = logged(g, "opening", "snap.tmp", snapw_open(g));

    head_put(&b, meta);
    if (rc == WR_OK && (rc = g->sm.snapshot_save(g->ud, &b)) != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: group %llu: the state machine could not write a snapshot (%d)",
               (unsigned long long)g->id, rc);
    if (rc == WR_OK)
        rc = wr_buf_ok(&b) ? snapw_finish(g, &b) : WR_ENOMEM;
    wr_buf_free(&b);
    return rc;
}

/*
 * A taken snapshot on its way to the disk. It is served at once (the state
 * machine's snapshot_save already points at its bytes: wr_rgroup_snap_read),
 * but the core hears of it only once snap.tmp is durable under its final
 * name, so the marker that compacts the log behind it goes into a later
 * batch than the one whose write the sync preceded: a crash leaves the old
 * snapshot and a log that covers it, or the new one. g and the result are
 * the loop's; the storage thread runs snapjob_run on f (a handle of its own)
 * and the paths. An install or the group's end cancels it: mu makes the
 * rename either happen before the loop's own (which then replaces it) or not
 * at all.
 */
struct wr_raftd_snapjob_s {
    wr_rgroup_t *g; /* NULL once cancelled */
    const wr_vfs_t *vfs;
    wr_vfs_file_t *f;
    wr_raft_snapshot_t meta;
    pthread_mutex_t mu;
    bool cancelled;   /* under mu */
    const char *step; /* storage thread: the step that failed, and its errno */
    int err;
    char tmp[4200], to[4200], dir[4200];
};

/* Storage thread, before the batch's write: fdatasync, rename to snap, directory fsync. */
static int snapjob_run(void *ud)
{
    wr_raftd_snapjob_t *j = ud;
    int rc;

    j->step = "fdatasync";
    if ((rc = wr_vfs_datasync(j->f)) == WR_OK) {
        pthread_mutex_lock(&j->mu);
        j->step = "rename";
        rc = j->cancelled ? WR_AGAIN : wr_vfs_rename(j->vfs, j->tmp, j->to);
        pthread_mutex_unlock(&j->mu);
    }
    if (rc == WR_OK) {
        j->step = "directory fsync";
        rc = wr_vfs_sync_dir(j->vfs, j->dir);
    }
    j->err = errno;
    return rc;
}

/*
 * The loop, once the batch completed: the core hears of the snapshot, unless
 * it failed or the core took a newer one from its leader meanwhile (the last
 * chunk came; the install is in the next ready).
 */
static void snapjob_report(wr_rgroup_t *g, wr_raftd_snapjob_t *j, int status)
{
    wr_raft_status_t st;

    if (status != WR_OK) {
        wr_log(WR_LOG_ERROR, "raft: group %llu: snapshot %llu not taken: %s %s failed: %s",
               (unsigned long long)g->id, (unsigned long long)j->meta.index, j->step ? j->step : "queueing",
               j->tmp, status == WR_AGAIN ? "the WAL closed first" : strerror(j->err));
        return;
    }
    wr_raft_status(g->raft, &st);
    if (st.snap_index >= j->meta.index)
        return;
    if (wr_raft_snapshot_taken(g->raft, j->meta.index, NULL) != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: group %llu: the core refused snapshot %llu", (unsigned long long)g->id,
               (unsigned long long)j->meta.index);
}

/* Owner's thread (wr_wal_complete, or wr_wal_close: WR_AGAIN). A cancelled job only frees itself. */
static void snapjob_done(void *ud, int status)
{
    wr_raftd_snapjob_t *j = ud;
    wr_rgroup_t *g = j->g;

    if (g != NULL) {
        g->snap_job = NULL;
        snapjob_report(g, j, status);
        wr_raftd_wake(g); /* the next ready names the log's prefix that may go; a wanted one is taken */
    }
    wr_vfs_close(j->f);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Hands the written snap.tmp, through a handle of its own, to the storage thread. WR_OK or an error. */
static int snapjob_queue(wr_rgroup_t *g, const wr_raft_snapshot_t *meta)
{
    wr_raftd_snapjob_t *j = calloc(1, sizeof(*j));
    int rc = WR_ENOMEM;

    if (j == NULL)
        return WR_ENOMEM;
    *j = (wr_raftd_snapjob_t){.g = g, .vfs = g->d->vfs, .meta = *meta};
    path(g, "snap.tmp", j->tmp, sizeof(j->tmp));
    path(g, "snap", j->to, sizeof(j->to));
    snprintf(j->dir, sizeof(j->dir), "%s", g->dir);
    if (pthread_mutex_init(&j->mu, NULL) != 0)
        goto err_mu;
    if ((rc = wr_vfs_open(j->vfs, j->tmp, false, &j->f)) != WR_OK ||
        (rc = wr_wal_before_write(g->d->wal, snapjob_run, snapjob_done, j)) != WR_OK)
        goto err;
    g->snap_job = j;
    return WR_OK;
err:
    wr_vfs_close(j->f);
    pthread_mutex_destroy(&j->mu);
err_mu:
    free(j);
    return rc;
}

/* The snapshot on its way is dropped: not renamed over snap if it was not yet, never reported. */
static void snapjob_cancel(wr_rgroup_t *g)
{
    wr_raftd_snapjob_t *j = g->snap_job;

    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->cancelled = true;
    pthread_mutex_unlock(&j->mu);
    j->g = NULL;
    g->snap_job = NULL;
}

void wr_raftd_snap_take(wr_rgroup_t *g)
{
    wr_raft_snapshot_t meta = {.index = g->applied};
    wr_raft_status_t st;

    if (g->snap_job != NULL) /* its done wakes g */
        return;
    wr_raft_status(g->raft, &st);
    g->snap_wanted = false;
    if (st.snapshot_lost || g->applied <= st.snap_index || g->applied != st.applied)
        return;
    meta.term = wr_raft_term(g->raft, meta.index);
    wr_raft_conf_at(g->raft, meta.index, &meta.conf);
    if (snap_write(g, &meta) == WR_OK) {
        serve(g, g->snap_w.f, g->snap_w.len, g->snap_w.crc, &meta);
        g->snap_w.f = NULL;
        (void)logged(g, "queueing", "snap.tmp", snapjob_queue(g, &meta));
    }
    wr_vfs_close(g->snap_w.f);
    g->snap_w.f = NULL;
}

bool wr_raftd_snap_fill(wr_rgroup_t *g, wr_raft_msg_t *m)
{
    const wr_raftd_snap_t *s = &g->snap;
    uint64_t left;
    size_t got = 0;

    if (s->f == NULL || m->index != s->meta.index || m->log_term != s->meta.term || m->offset >= s->len)
        return false;
    left = s->len - m->offset;
    m->len = (uint32_t)(left < g->d->snap_chunk ? left : g->d->snap_chunk);
    if (wr_vfs_pread(s->f, g->d->chunk, m->len, m->offset, &got) != WR_OK || got != m->len)
        return false;
    m->data = g->d->chunk;
    m->crc = wr_crc32c_update(0, m->data, m->len);
    m->last = m->len == left;
    m->total_crc = m->last ? s->crc : 0;
    return true;
}

/* A snapshot file error stops the group: the core took the chunk or the install as done. */
static int broken(wr_rgroup_t *g, int rc)
{
    if (rc != WR_OK) {
        wr_log(WR_LOG_ERROR, "raft: group %llu: a received snapshot cannot be stored: the group stops",
               (unsigned long long)g->id);
        g->broken = true;
    }
    return rc;
}

int wr_raftd_snap_chunk(wr_rgroup_t *g, const wr_raft_snap_chunk_t *c)
{
    wr_vfs_file_t *f = NULL;
    char p[4200];
    int rc;

    path(g, "snap.rx", p, sizeof(p));
    if ((rc = wr_vfs_open(g->d->vfs, p, true, &f)) == WR_OK && c->offset == 0)
        rc = wr_vfs_truncate(f, 0);
    if (rc == WR_OK)
        rc = wr_vfs_pwrite(f, c->data, c->len, c->offset);
    wr_vfs_close(f);
    return broken(g, logged(g, "writing", "snap.rx", rc));
}

static bool conf_same(const wr_raft_conf_t *a, const wr_raft_conf_t *b)
{
    bool same = a->n == b->n && a->index == b->index;

    for (size_t i = 0; same && i < a->n; i++)
        same = a->id[i] == b->id[i] && a->voter[i] == b->voter[i];
    return same;
}

/* The received file made the durable snapshot: fdatasync, rename, directory fsync. */
static int install_commit(wr_rgroup_t *g, wr_vfs_file_t *f)
{
    char from[4200], to[4200];
    int rc;

    path(g, "snap.rx", from, sizeof(from));
    path(g, "snap", to, sizeof(to));
    if ((rc = wr_vfs_datasync(f)) == WR_OK && (rc = wr_vfs_rename(g->d->vfs, from, to)) == WR_OK)
        rc = wr_vfs_sync_dir(g->d->vfs, g->dir);
    return logged(g, "installing", "snap", rc);
}

int wr_raftd_snap_install(wr_rgroup_t *g, const wr_raft_snapshot_t *s)
{
    wr_rgroup_snap_in_t in;
    wr_raft_snapshot_t meta;
    uint32_t crc = 0;
    int rc = in_open(g, "snap.rx", &in, &meta, &crc);

    snapjob_cancel(g); /* an older one taken here must not be renamed over this one */
    if (rc == WR_OK && (meta.index != s->index || meta.term != s->term || !conf_same(&meta.conf, &s->conf)))
        rc = WR_ESYNTAX;
    if (rc == WR_OK)
        rc = sm_load(g, &in);
    if (rc == WR_OK && (rc = install_commit(g, in.f)) == WR_OK) {
        serve(g, in.f, in.size, crc, &meta);
        in.f = NULL;
        g->applied = s->index;
    }
    in_close(&in);
    return broken(g, rc);
}

void wr_raftd_snap_free(wr_rgroup_t *g)
{
    snapjob_cancel(g);
    wr_vfs_close(g->snap.f);
    g->snap.f = NULL;
}
