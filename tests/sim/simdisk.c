/* SPDX-License-Identifier: MIT */
/*
 * simdisk: files are refcounted inodes (durable image, current image, the
 * writes and truncations since the last datasync); the namespace exists
 * twice, as reads see it and as the last directory fsyncs made it durable.
 * A crash rebuilds every file from its durable image plus, when torn, a
 * random prefix of its unsynced operations.
 */
#include "tests/sim/simdisk.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"

typedef struct {
    uint64_t off;
    uint64_t len; /* a write of len bytes of data; a truncation to off when data is NULL */
    uint8_t *data;
} sim_op_t;

typedef struct {
    int refs; /* namespace entries (both views) and open handles */
    wr_buf_t durable;
    wr_buf_t current;
    sim_op_t *ops;
    size_t nops, capops;
} sim_inode_t;

typedef struct {
    char *path;
    sim_inode_t *ino; /* NULL for a directory */
} sim_entry_t;

typedef struct {
    sim_entry_t *v;
    size_t n, cap;
} sim_ns_t;

typedef struct {
    wr_vfs_file_t base;
    sim_inode_t *ino;
} sim_file_t;

struct wr_simdisk_s {
    wr_vfs_t vfs;
    uint64_t rng;
    sim_ns_t live;    /* what reads see */
    sim_ns_t durable; /* what survives a crash */
    wr_simdisk_stats_t stats;
    unsigned fail_syncs;
};

uint64_t wr_simdisk_rand(wr_simdisk_t *d, uint64_t n)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (d->rng * 2685821657736338717ull) % n;
}

static sim_inode_t *inode_new(void)
{
    return calloc(1, sizeof(sim_inode_t));
}

static void ops_clear(sim_inode_t *ino)
{
    for (size_t i = 0; i < ino->nops; i++)
        free(ino->ops[i].data);
    ino->nops = 0;
}

static void inode_unref(sim_inode_t *ino)
{
    if (ino == NULL || --ino->refs > 0)
        return;
    ops_clear(ino);
    free(ino->ops);
    wr_buf_free(&ino->durable);
    wr_buf_free(&ino->current);
    free(ino);
}

/* Sets b's length to size, zero-filling growth; false on allocation failure. */
static bool buf_resize(wr_buf_t *b, uint64_t size)
{
    if (size > b->len) {
        if (!wr_buf_reserve(b, size - b->len))
            return false;
        memset(b->data + b->len, 0, size - b->len);
    }
    b->len = size;
    return true;
}

static bool buf_write(wr_buf_t *b, const uint8_t *p, uint64_t n, uint64_t off)
{
    if (n == 0)
        return true;
    if (off + n > b->len && !buf_resize(b, off + n))
        return false;
    memcpy(b->data + off, p, n);
    return true;
}

static bool op_apply(wr_buf_t *b, const sim_op_t *op, uint64_t len)
{
    if (op->data == NULL)
        return buf_resize(b, op->off);
    return buf_write(b, op->data, len, op->off);
}

static bool op_push(sim_inode_t *ino, uint64_t off, const void *p, uint64_t len)
{
    sim_op_t *op;

    if (ino->nops == ino->capops) {
        size_t cap = ino->capops ? ino->capops * 2 : 8;
        sim_op_t *v = realloc(ino->ops, cap * sizeof(*v));
        if (v == NULL)
            return false;
        ino->ops = v;
        ino->capops = cap;
    }
    op = &ino->ops[ino->nops];
    op->off = off;
    op->len = len;
    op->data = NULL;
    if (p != NULL && (op->data = malloc(len ? len : 1)) == NULL)
        return false;
    if (p != NULL)
        memcpy(op->data, p, len);
    ino->nops++;
    return true;
}

/* ---- namespaces ---- */

static sim_entry_t *ns_find(sim_ns_t *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i].path, path) == 0)
            return &ns->v[i];
    return NULL;
}

static bool ns_add(sim_ns_t *ns, const char *path, sim_inode_t *ino)
{
    char *copy = strdup(path);

    if (copy == NULL)
        return false;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        sim_entry_t *v = realloc(ns->v, cap * sizeof(*v));
        if (v == NULL) {
            free(copy);
            return false;
        }
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n].path = copy;
    ns->v[ns->n].ino = ino;
    ns->n++;
    if (ino != NULL)
        ino->refs++;
    return true;
}

static void ns_del(sim_ns_t *ns, sim_entry_t *e)
{
    free(e->path);
    inode_unref(e->ino);
    *e = ns->v[--ns->n];
}

static void ns_clear(sim_ns_t *ns)
{
    while (ns->n > 0)
        ns_del(ns, &ns->v[ns->n - 1]);
}

/* True if path's parent directory is dir ("" for the root). */
static bool in_dir(const char *path, const char *dir)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;

    return strlen(dir) == n && strncmp(path, dir, n) == 0;
}

static bool parent_exists(sim_ns_t *ns, const char *path)
{
    const char *slash = strrchr(path, '/');
    char parent[4096];
    sim_entry_t *e;

    if (slash == NULL)
        return true;
    if ((size_t)(slash - path) >= sizeof(parent))
        return false;
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    e = ns_find(ns, parent);
    return e != NULL && e->ino == NULL;
}

/* ---- the vtable ---- */

static wr_simdisk_t *disk(const wr_vfs_t *v)
{
    return v->ud;
}

static int sd_open(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out)
{
    wr_simdisk_t *d = disk(v);
    sim_entry_t *e = ns_find(&d->live, path);
    sim_file_t *f;

    if (e != NULL && e->ino == NULL)
        return WR_EIO;
    if (e == NULL && (!create || !parent_exists(&d->live, path)))
        return WR_ENOENT;
    if (e == NULL) {
        sim_inode_t *ino = inode_new();
        if (ino == NULL || !ns_add(&d->live, path, ino)) {
            free(ino);
            return WR_ENOMEM;
        }
        e = &d->live.v[d->live.n - 1];
    }
    if ((f = malloc(sizeof(*f))) == NULL)
        return WR_ENOMEM;
    f->base.vfs = v;
    f->ino = e->ino;
    f->ino->refs++;
    *out = &f->base;
    return WR_OK;
}

static void sd_close(wr_vfs_file_t *f)
{
    inode_unref(((sim_file_t *)f)->ino);
    free(f);
}

static int sd_pwrite(wr_vfs_file_t *f, const void *p, size_t n, uint64_t off)
{
    sim_inode_t *ino = ((sim_file_t *)f)->ino;

    disk(f->vfs)->stats.writes++;
    if (!op_push(ino, off, p, n) || !buf_write(&ino->current, p, n, off))
        return WR_ENOMEM;
    return WR_OK;
}

static int sd_pread(wr_vfs_file_t *f, void *p, size_t n, uint64_t off, size_t *got)
{
    const wr_buf_t *b = &((sim_file_t *)f)->ino->current;

    *got = 0;
    if (off < b->len)
        *got = b->len - off < n ? (size_t)(b->len - off) : n;
    if (*got > 0)
        memcpy(p, b->data + off, *got);
    return WR_OK;
}

static int sd_size(wr_vfs_file_t *f, uint64_t *out)
{
    *out = ((sim_file_t *)f)->ino->current.len;
    return WR_OK;
}

static int sd_datasync(wr_vfs_file_t *f)
{
    sim_inode_t *ino = ((sim_file_t *)f)->ino;

    disk(f->vfs)->stats.datasyncs++;
    if (disk(f->vfs)->fail_syncs > 0) {
        disk(f->vfs)->fail_syncs--;
        return WR_EIO;
    }
    ino->durable.len = 0;
    if (!buf_write(&ino->durable, ino->current.data, ino->current.len, 0))
        return WR_ENOMEM;
    ops_clear(ino);
    return WR_OK;
}

static int sd_truncate(wr_vfs_file_t *f, uint64_t size)
{
    sim_inode_t *ino = ((sim_file_t *)f)->ino;

    if (!op_push(ino, size, NULL, 0) || !buf_resize(&ino->current, size))
        return WR_ENOMEM;
    return WR_OK;
}

static int sd_rename(const wr_vfs_t *v, const char *from, const char *to)
{
    wr_simdisk_t *d = disk(v);
    sim_entry_t *src = ns_find(&d->live, from), *dst;
    sim_inode_t *ino;

    if (src == NULL || src->ino == NULL || !parent_exists(&d->live, to))
        return src == NULL ? WR_ENOENT : WR_EIO;
    ino = src->ino;
    ino->refs++; /* keeps it alive across the two namespace edits */
    ns_del(&d->live, src);
    if ((dst = ns_find(&d->live, to)) != NULL)
        ns_del(&d->live, dst);
    if (!ns_add(&d->live, to, ino)) {
        inode_unref(ino);
        return WR_ENOMEM;
    }
    inode_unref(ino);
    return WR_OK;
}

static int sd_unlink(const wr_vfs_t *v, const char *path)
{
    wr_simdisk_t *d = disk(v);
    sim_entry_t *e = ns_find(&d->live, path);

    if (e == NULL)
        return WR_ENOENT;
    if (e->ino == NULL)
        return WR_EIO;
    ns_del(&d->live, e);
    return WR_OK;
}

static int sd_mkdir(const wr_vfs_t *v, const char *path)
{
    wr_simdisk_t *d = disk(v);

    if (ns_find(&d->live, path) != NULL)
        return WR_EEXIST;
    if (!parent_exists(&d->live, path))
        return WR_ENOENT;
    return ns_add(&d->live, path, NULL) ? WR_OK : WR_ENOMEM;
}

static bool dir_exists(sim_ns_t *ns, const char *dir)
{
    sim_entry_t *e;

    if (dir[0] == '\0')
        return true;
    e = ns_find(ns, dir);
    return e != NULL && e->ino == NULL;
}

static int sd_list(const wr_vfs_t *v, const char *dir, wr_vfs_list_fn fn, void *ud)
{
    wr_simdisk_t *d = disk(v);

    if (!dir_exists(&d->live, dir))
        return WR_ENOENT;
    for (size_t i = 0; i < d->live.n; i++) {
        const char *p = d->live.v[i].path;
        if (in_dir(p, dir)) {
            const char *slash = strrchr(p, '/');
            int rc = fn(ud, slash != NULL ? slash + 1 : p);
            if (rc != WR_OK)
                return rc;
        }
    }
    return WR_OK;
}

/* The durable view of dir becomes the live one. */
static int sd_sync_dir(const wr_vfs_t *v, const char *dir)
{
    wr_simdisk_t *d = disk(v);

    d->stats.dirsyncs++;
    if (!dir_exists(&d->live, dir))
        return WR_ENOENT;
    for (size_t i = d->durable.n; i-- > 0;)
        if (in_dir(d->durable.v[i].path, dir))
            ns_del(&d->durable, &d->durable.v[i]);
    for (size_t i = 0; i < d->live.n; i++)
        if (in_dir(d->live.v[i].path, dir) && !ns_add(&d->durable, d->live.v[i].path, d->live.v[i].ino))
            return WR_ENOMEM;
    return WR_OK;
}

/* Every file's data and every directory's entries become durable. */
static int sd_sync_all(const wr_vfs_t *v, const char *path)
{
    wr_simdisk_t *d = disk(v);

    d->stats.syncalls++;
    if (d->fail_syncs > 0) {
        d->fail_syncs--;
        return WR_EIO;
    }
    ns_clear(&d->durable);
    for (size_t i = 0; i < d->live.n; i++) {
        sim_inode_t *ino = d->live.v[i].ino;
        if (ino != NULL) {
            ino->durable.len = 0;
            if (!buf_write(&ino->durable, ino->current.data, ino->current.len, 0))
                return WR_ENOMEM;
            ops_clear(ino);
        }
        if (!ns_add(&d->durable, d->live.v[i].path, ino))
            return WR_ENOMEM;
    }
    return WR_OK;
}

static const wr_vfs_ops_t sim_ops = {
    sd_open,   sd_close,  sd_pwrite, sd_pread, sd_size,     sd_datasync, sd_truncate,
    sd_rename, sd_unlink, sd_mkdir,  sd_list,  sd_sync_dir, sd_sync_all,
};

/* ---- the disk ---- */

wr_simdisk_t *wr_simdisk_new(uint64_t seed)
{
    wr_simdisk_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->vfs.ops = &sim_ops;
    d->vfs.ud = d;
    d->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    return d;
}

void wr_simdisk_free(wr_simdisk_t *d)
{
    if (d == NULL)
        return;
    ns_clear(&d->live);
    ns_clear(&d->durable);
    free(d->live.v);
    free(d->durable.v);
    free(d);
}

const wr_vfs_t *wr_simdisk_vfs(wr_simdisk_t *d)
{
    return &d->vfs;
}

/* Rebuilds one file after a crash: its durable image, then (torn) a random prefix of its operations. */
static void inode_crash(wr_simdisk_t *d, sim_inode_t *ino, bool torn)
{
    size_t keep = torn ? (size_t)wr_simdisk_rand(d, ino->nops + 1) : 0;

    ino->current.len = 0;
    buf_write(&ino->current, ino->durable.data, ino->durable.len, 0);
    for (size_t i = 0; i < keep; i++) {
        const sim_op_t *op = &ino->ops[i];
        bool last = i + 1 == keep;
        op_apply(&ino->current, op, last && op->data != NULL ? wr_simdisk_rand(d, op->len + 1) : op->len);
    }
    ino->durable.len = 0;
    buf_write(&ino->durable, ino->current.data, ino->current.len, 0);
    ops_clear(ino);
}

/* Drops durable entries whose directory is not durable itself: a crash leaves no orphans. */
static void drop_orphans(sim_ns_t *ns)
{
    bool dropped = true;

    while (dropped) {
        dropped = false;
        for (size_t i = ns->n; i-- > 0;) {
            if (!parent_exists(ns, ns->v[i].path)) {
                ns_del(ns, &ns->v[i]);
                dropped = true;
            }
        }
    }
}

void wr_simdisk_crash(wr_simdisk_t *d, bool torn)
{
    d->stats.crashes++;
    ns_clear(&d->live);
    drop_orphans(&d->durable);
    for (size_t i = 0; i < d->durable.n; i++) {
        if (d->durable.v[i].ino != NULL)
            inode_crash(d, d->durable.v[i].ino, torn);
        ns_add(&d->live, d->durable.v[i].path, d->durable.v[i].ino);
    }
}

int wr_simdisk_flip_bit(wr_simdisk_t *d, const char *path, uint64_t offset, unsigned bit)
{
    sim_entry_t *e = ns_find(&d->live, path);
    sim_inode_t *ino = e != NULL ? e->ino : NULL;

    if (ino == NULL || offset >= ino->current.len)
        return WR_ENOENT;
    ino->current.data[offset] ^= (uint8_t)(1u << (bit & 7));
    if (offset < ino->durable.len)
        ino->durable.data[offset] ^= (uint8_t)(1u << (bit & 7));
    return WR_OK;
}

void wr_simdisk_fail_syncs(wr_simdisk_t *d, unsigned n)
{
    d->fail_syncs = n;
}

int wr_simdisk_file_size(wr_simdisk_t *d, const char *path, uint64_t *out)
{
    sim_entry_t *e = ns_find(&d->live, path);

    if (e == NULL || e->ino == NULL)
        return WR_ENOENT;
    *out = e->ino->current.len;
    return WR_OK;
}

wr_simdisk_stats_t wr_simdisk_stats(const wr_simdisk_t *d)
{
    return d->stats;
}
