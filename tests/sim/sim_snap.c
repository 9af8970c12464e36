/* SPDX-License-Identifier: MIT */
/*
 * The simulator's state machine and its snapshots (sim_snap.h). Files on the
 * node's simdisk, per group: s/gG (the durable snapshot), s/gG.tmp (one being
 * taken), s/gG.rx (chunks being received), s/gG.new (installed). On the WAL
 * disk a snapshot taken or installed is made durable by the next group
 * commit, before the batch's write, as raftd does a taken one on its storage
 * thread, and the core hears of it when the batch completes. A snapshot is a
 * CRC32C-framed image of the state machine and the membership, so a flipped
 * bit is found at restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "tests/sim/sim.h"

#define MAGIC 0x504e5357u /* "WSNP" */
#define HEAD  (4 + 8 + 8 + 8 + 1 + WR_RAFT_MAX_PEERS * 5 + 8)

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static void put(uint8_t **p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *(*p)++ = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t **p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v |= (uint64_t) * (*p)++ << (8 * i);
    return v;
}

/* The state beyond the hashes (--sm topo: the definitions, --sm qfifo: the machine), malloc'd; NULL: none. */
static char *extra_put(const sim_t *s, sim_sm_t *sm, size_t *len)
{
    *len = 0;
    if (s->o.topo)
        return sim_topo_snapshot(sm, len);
    return s->o.qfifo ? sim_qfifo_snapshot(sm, len) : NULL;
}

static void extra_free(sim_sm_t *sm)
{
    sim_topo_free(sm);
    sim_qfifo_sm_free(sm);
}

/* A member's state machine at index after a load or install: the same as the others had there. */
static void extra_check(sim_t *s, int node, int g, uint64_t index, sim_sm_t *sm)
{
    if (s->o.topo)
        sim_topo_check_at(s, node, g, index, sm);
    if (s->o.qfifo)
        sim_qfifo_check_at(s, node, g, index, sm);
}

/* The image of sm at meta: header, conf, one hash per index, the extra state, CRC32C of it all. */
static uint8_t *encode(const sim_t *s, sim_sm_t *sm, const wr_raft_snapshot_t *meta, size_t *len)
{
    size_t tlen = 0;
    char *extra = extra_put(s, sm, &tlen);
    uint8_t *b = xrealloc(NULL, HEAD + 4 * sm->n + (extra ? 4 + tlen : 0) + 4), *p = b;

    put(&p, MAGIC, 4);
    put(&p, meta->index, 8);
    put(&p, meta->term, 8);
    put(&p, meta->conf.index, 8);
    put(&p, meta->conf.n, 1);
    for (size_t i = 0; i < WR_RAFT_MAX_PEERS; i++) {
        put(&p, i < meta->conf.n ? meta->conf.id[i] : 0, 4);
        put(&p, i < meta->conf.n && meta->conf.voter[i], 1);
    }
    put(&p, sm->n, 8);
    for (uint64_t i = 0; i < sm->n; i++)
        put(&p, sm->h[i], 4);
    if (extra != NULL) {
        put(&p, tlen, 4);
        memcpy(p, extra, tlen);
        p += tlen;
        free(extra);
    }
    put(&p, wr_crc32c_update(0, b, (size_t)(p - b)), 4);
    *len = (size_t)(p - b);
    return b;
}

/* The extra state after the hashes, loaded into sm; false if malformed. */
static bool decode_extra(const sim_t *s, const uint8_t *p, size_t left, sim_sm_t *sm)
{
    size_t tlen;

    if (left < 4 || (tlen = (size_t)get(&p, 4)) != left - 4)
        return false;
    return s->o.topo ? sim_topo_load(sm, p, tlen) : sim_qfifo_load(sm, p, tlen);
}

/* Checks and reads an image; false if it is damaged. */
static bool decode(const sim_t *s, const uint8_t *b, size_t len, wr_raft_snapshot_t *meta, sim_sm_t *sm)
{
    const uint8_t *p = b, *crc_at = b + len - 4;
    uint64_t n;

    if (len < HEAD + 4 || wr_crc32c_update(0, b, len - 4) != (uint32_t)get(&crc_at, 4) || get(&p, 4) != MAGIC)
        return false;
    *meta = (wr_raft_snapshot_t){.index = get(&p, 8), .term = get(&p, 8)};
    meta->conf.index = get(&p, 8);
    meta->conf.n = (size_t)get(&p, 1);
    for (size_t i = 0; i < WR_RAFT_MAX_PEERS; i++) {
        meta->conf.id[i] = (uint32_t)get(&p, 4);
        meta->conf.voter[i] = get(&p, 1) != 0;
    }
    n = get(&p, 8);
    if (n != meta->index || meta->conf.n > WR_RAFT_MAX_PEERS || len < HEAD + 4 * n + 4 ||
        (!s->o.topo && !s->o.qfifo && len != HEAD + 4 * n + 4))
        return false;
    sm->h = xrealloc(sm->h, n * sizeof(*sm->h));
    sm->n = sm->cap = n;
    for (uint64_t i = 0; i < n; i++)
        sm->h[i] = (uint32_t)get(&p, 4);
    return (!s->o.topo && !s->o.qfifo) || decode_extra(s, p, len - (HEAD + 4 * n + 4), sm);
}

static void path(char *buf, size_t len, int g, const char *ext)
{
    snprintf(buf, len, "s/g%d%s", g, ext);
}

/* Writes bytes to s/gG<ext> (from scratch at offset 0), optionally synced. */
static int file_put(sim_node_t *n, int g, const char *ext, const uint8_t *b, size_t len, uint64_t off,
                    bool sync)
{
    const wr_vfs_t *v = wr_simdisk_vfs(n->sdisk);
    wr_vfs_file_t *f = NULL;
    char p[64];
    int rc;

    path(p, sizeof(p), g, ext);
    if ((rc = wr_vfs_open(v, p, true, &f)) != WR_OK)
        return rc;
    if (off == 0)
        rc = wr_vfs_truncate(f, 0);
    if (rc == WR_OK)
        rc = wr_vfs_pwrite(f, b, len, off);
    if (rc == WR_OK && sync)
        rc = wr_vfs_datasync(f);
    wr_vfs_close(f);
    return rc;
}

/* Makes s/gG<ext> the durable snapshot: its data synced, renamed, the directory synced. */
static int file_commit(sim_node_t *n, int g, const char *ext)
{
    const wr_vfs_t *v = wr_simdisk_vfs(n->sdisk);
    wr_vfs_file_t *f = NULL;
    char from[64], to[64];
    int rc;

    path(from, sizeof(from), g, ext);
    path(to, sizeof(to), g, "");
    if ((rc = wr_vfs_open(v, from, false, &f)) == WR_OK)
        rc = wr_vfs_datasync(f);
    wr_vfs_close(f);
    if (rc == WR_OK)
        rc = wr_vfs_rename(v, from, to);
    return rc == WR_OK ? wr_vfs_sync_dir(v, "s") : rc;
}

/* Reads s/gG<ext> whole; NULL if absent. */
static uint8_t *file_get(sim_node_t *n, int g, const char *ext, size_t *len)
{
    const wr_vfs_t *v = wr_simdisk_vfs(n->sdisk);
    wr_vfs_file_t *f = NULL;
    uint64_t size = 0;
    uint8_t *b = NULL;
    char p[64];

    path(p, sizeof(p), g, ext);
    if (wr_vfs_open(v, p, false, &f) != WR_OK)
        return NULL;
    if (wr_vfs_size(f, &size) == WR_OK && (b = xrealloc(NULL, size)) != NULL &&
        wr_vfs_pread(f, b, size, 0, len) != WR_OK) {
        free(b);
        b = NULL;
    }
    wr_vfs_close(f);
    return b;
}

void sim_snap_disk_init(sim_node_t *n)
{
    const wr_vfs_t *v = wr_simdisk_vfs(n->sdisk);

    if (wr_vfs_mkdir(v, "s") != WR_OK || wr_vfs_sync_dir(v, "") != WR_OK)
        abort();
}

/* The member now serves bytes (taken ownership of) as its newest snapshot. */
static void serve(sim_member_t *m, uint8_t *bytes, size_t len, const wr_raft_snapshot_t *meta)
{
    free(m->snap.bytes);
    m->snap.bytes = bytes;
    m->snap.len = len;
    m->snap.crc = wr_crc32c_update(0, bytes, len);
    m->snap.meta = *meta;
}

/* The snapshot taken is durable: the core hears of it, unless it took a newer one from its leader
 * meanwhile (its last chunk came: the install is due). */
static void taken(sim_t *s, sim_node_t *n, int g, const wr_raft_snapshot_t *meta)
{
    sim_member_t *m = &n->g[g];
    wr_raft_status_t st;

    wr_raft_status(m->raft, &st);
    if (st.snap_index >= meta->index) {
        sim_trace(s, "n%d g%d snapshot %llu passed by %llu before it was durable", n->id, g,
                  (unsigned long long)meta->index, (unsigned long long)st.snap_index);
        return;
    }
    if (wr_raft_snapshot_taken(m->raft, meta->index, NULL) != WR_OK)
        sim_fail(s, "n%d g%d: the core refused a snapshot at %llu", n->id, g,
                 (unsigned long long)meta->index);
    s->snap_stats[0]++;
    sim_trace(s, "n%d g%d snapshot taken at %llu/%llu", n->id, g, (unsigned long long)meta->term,
              (unsigned long long)meta->index);
}

void sim_snap_take(sim_t *s, sim_node_t *n, int g)
{
    sim_member_t *m = &n->g[g];
    wr_raft_snapshot_t meta = {.index = m->sm.n};
    wr_raft_status_t st;
    uint8_t *b;
    size_t len;

    wr_raft_status(m->raft, &st);
    if (st.snapshot_lost || m->snap.pend || m->snap.flushed || m->sm.n <= st.snap_index ||
        m->sm.n != st.applied)
        return;
    meta.term = wr_raft_term(m->raft, meta.index);
    wr_raft_conf_at(m->raft, meta.index, &meta.conf);
    b = encode(s, &m->sm, &meta, &len);
    if (file_put(n, g, ".tmp", b, len, 0, n->wal == NULL) != WR_OK ||
        (n->wal == NULL && file_commit(n, g, ".tmp") != WR_OK)) {
        free(b);
        return;
    }
    serve(m, b, len, &meta); /* as raftd does: the state machine's bytes are read from it at once */
    if (n->wal == NULL) {    /* the toy disk: durable at once */
        m->snap.durable = meta;
        m->snap.bad = false;
        taken(s, n, g, &meta);
        return;
    }
    m->snap.pend = m->snap.taken = true;
    n->written_seq++; /* a group commit is due for it, as a job makes one in the WAL (wr_wal_before_write) */
    m->snap.tmeta = meta;
    sim_trace(s, "n%d g%d snapshot written at %llu/%llu (%zu bytes), durable with the next group commit",
              n->id, g, (unsigned long long)meta.term, (unsigned long long)meta.index, len);
}

void sim_snap_chunk(sim_t *s, sim_node_t *n, int g, const wr_raft_snap_chunk_t *c)
{
    if (file_put(n, g, ".rx", c->data, c->len, c->offset, false) != WR_OK)
        sim_fail(s, "n%d g%d: storing a snapshot chunk failed", n->id, g);
}

static bool conf_same(const wr_raft_conf_t *a, const wr_raft_conf_t *b)
{
    bool same = a->n == b->n && a->index == b->index;

    for (size_t i = 0; same && i < a->n; i++)
        same = a->id[i] == b->id[i] && a->voter[i] == b->voter[i];
    return same;
}

/* Loads the received snapshot into the state machine; false if it must not be. */
static bool install_load(sim_t *s, sim_node_t *n, int g, const wr_raft_snapshot_t *snap)
{
    sim_member_t *m = &n->g[g];
    wr_raft_snapshot_t meta;
    sim_sm_t sm = {0};
    size_t len = 0;
    uint8_t *b = file_get(n, g, ".rx", &len);

    if (b == NULL || !decode(s, b, len, &meta, &sm) || meta.index != snap->index || meta.term != snap->term ||
        !conf_same(&meta.conf, &snap->conf)) {
        sim_fail(s, "n%d g%d installed a damaged snapshot %llu/%llu", n->id, g,
                 (unsigned long long)snap->term, (unsigned long long)snap->index);
        free(b);
        free(sm.h);
        extra_free(&sm);
        return false;
    }
    sim_check_installed(s, n->id, g, &sm);
    free(m->sm.h);
    extra_free(&m->sm);
    m->sm = sm;
    extra_check(s, n->id, g, meta.index, &m->sm);
    serve(m, b, len, &meta);
    return true;
}

void sim_snap_install(sim_t *s, sim_node_t *n, int g, const wr_raft_snapshot_t *snap)
{
    sim_member_t *m = &n->g[g];
    char from[64], to[64];

    if (!install_load(s, n, g, snap))
        return;
    if (m->snap.taken) { /* one taken here and not yet durable is dropped, never renamed over this one */
        m->snap.taken = m->snap.in_batch = false;
        sim_trace(s, "n%d g%d snapshot %llu dropped: an install replaces it", n->id, g,
                  (unsigned long long)m->snap.tmeta.index);
    }
    s->snap_stats[1]++;
    sim_trace(s, "n%d g%d installs snapshot %llu/%llu", n->id, g, (unsigned long long)snap->term,
              (unsigned long long)snap->index);
    path(from, sizeof(from), g, ".rx");
    path(to, sizeof(to), g, ".new");
    if (wr_vfs_rename(wr_simdisk_vfs(n->sdisk), from, to) != WR_OK)
        abort();
    /* The WAL disk makes it durable with the next group commit; the toy disk at once. */
    m->snap.pend = true;
    if (n->wal == NULL) {
        sim_disk_sync(&m->disk, m->disk.n_ops); /* what was written before it lands first */
        m->snap.in_batch = true;
        sim_snap_flush(s, n);
    }
}

void sim_snap_batch(sim_node_t *n, int groups)
{
    for (int g = 0; g < groups; g++)
        n->g[g].snap.in_batch = n->g[g].snap.pend;
}

void sim_snap_flush(sim_t *s, sim_node_t *n)
{
    for (int g = 0; g < s->o.groups; g++) {
        sim_snap_t *p = &n->g[g].snap;
        if (!p->in_batch)
            continue;
        if (file_commit(n, g, p->taken ? ".tmp" : ".new") != WR_OK)
            abort();
        p->durable = p->taken ? p->tmeta : p->meta;
        p->bad = false;
        p->pend = p->in_batch = false;
        p->flushed = true;
        sim_trace(s, "n%d g%d snapshot %llu durable", n->id, g, (unsigned long long)p->durable.index);
    }
}

void sim_snap_notify(sim_t *s, sim_node_t *n, int g)
{
    sim_member_t *m = &n->g[g];

    if (!m->snap.flushed)
        return;
    m->snap.flushed = false;
    if (m->snap.taken) {
        m->snap.taken = false;
        taken(s, n, g, &m->snap.tmeta);
        return;
    }
    if (wr_raft_persisted(m->raft, m->snap.durable.term, m->snap.durable.index) != WR_OK)
        abort();
}

bool sim_snap_fill(const sim_t *s, const sim_member_t *m, wr_raft_msg_t *msg)
{
    const sim_snap_t *p = &m->snap;
    size_t left;

    if (p->bytes == NULL || msg->index != p->meta.index || msg->log_term != p->meta.term ||
        msg->offset >= p->len)
        return false;
    left = p->len - (size_t)msg->offset;
    msg->data = p->bytes + msg->offset;
    msg->len = (uint32_t)(left < (size_t)s->chunk ? left : (size_t)s->chunk);
    msg->crc = wr_crc32c_update(0, msg->data, msg->len);
    msg->last = msg->len == left;
    msg->total_crc = msg->last ? p->crc : 0;
    return true;
}

bool sim_snap_load(sim_t *s, sim_node_t *n, int g, wr_raft_snapshot_t *meta)
{
    sim_member_t *m = &n->g[g];
    size_t len = 0;
    uint8_t *b = file_get(n, g, "", &len);

    m->sm.n = 0;
    extra_free(&m->sm);
    m->snap.pend = m->snap.in_batch = m->snap.flushed = m->snap.taken = false;
    m->snap.durable = *meta = (wr_raft_snapshot_t){.index = 0};
    free(m->snap.bytes);
    m->snap.bytes = NULL;
    m->snap.meta.index = 0;
    if (b == NULL)
        return true;
    if (!decode(s, b, len, meta, &m->sm)) {
        s->snap_stats[2]++;
        sim_trace(s, "n%d g%d snapshot file damaged (CRC): not installed, refetched from the leader", n->id,
                  g);
        m->sm.n = 0;
        extra_free(&m->sm);
        *meta = (wr_raft_snapshot_t){.index = 0};
        free(b);
        return false;
    }
    extra_check(s, n->id, g, meta->index, &m->sm);
    serve(m, b, len, meta);
    m->snap.durable = *meta;
    return true;
}

bool sim_snap_flip(sim_t *s, sim_node_t *n, uint64_t pick)
{
    int g = (int)(pick % (uint64_t)s->o.groups);
    uint64_t size = 0;
    char p[64];

    path(p, sizeof(p), g, "");
    if (wr_simdisk_file_size(n->sdisk, p, &size) != WR_OK || size == 0)
        return false;
    wr_simdisk_flip_bit(n->sdisk, p, (pick >> 8) % size, (unsigned)(pick >> 4) % 8);
    n->g[g].snap.bad = true;
    sim_trace(s, "n%d g%d bit flip in its snapshot file", n->id, g);
    return true;
}

void sim_sm_apply(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e)
{
    sim_sm_t *sm = &n->g[g].sm;

    if (e->index != sm->n + 1) {
        sim_fail(s, "n%d g%d applied %llu after %llu", n->id, g, (unsigned long long)e->index,
                 (unsigned long long)sm->n);
        return;
    }
    if (sm->n == sm->cap) {
        sm->cap = sm->cap ? sm->cap * 2 : 64;
        sm->h = xrealloc(sm->h, sm->cap * sizeof(*sm->h));
    }
    sm->h[sm->n++] = sim_check_hash(e);
    if (s->o.topo)
        sim_topo_apply(s, n->id, g, sm, e);
    if (s->o.qfifo)
        sim_qfifo_apply(s, n->id, g, sm, e);
}

void sim_snap_free(sim_member_t *m)
{
    free(m->sm.h);
    extra_free(&m->sm);
    free(m->snap.bytes);
    memset(&m->sm, 0, sizeof(m->sm));
    memset(&m->snap, 0, sizeof(m->snap));
}
