/* SPDX-License-Identifier: MIT */
/*
 * The simulator's disk model: durable records framed by CRC32C, unsynced
 * writes kept apart until a sync, crashes that keep, tear or lose them.
 */
#include "tests/sim/sim_disk.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        abort();
    return p;
}

static uint32_t entry_crc(const wr_raft_entry_t *e)
{
    uint32_t c = wr_crc32c_update(0, &e->term, sizeof(e->term));

    c = wr_crc32c_update(c, &e->index, sizeof(e->index));
    c = wr_crc32c_update(c, &e->type, sizeof(e->type));
    return e->len > 0 ? wr_crc32c_update(c, e->data, e->len) : c;
}

static uint32_t hs_crc(const sim_hs_rec_t *h)
{
    uint32_t c = wr_crc32c_update(0, &h->hs.term, sizeof(h->hs.term));

    c = wr_crc32c_update(c, &h->hs.vote, sizeof(h->hs.vote));
    c = wr_crc32c_update(c, &h->hs.commit, sizeof(h->hs.commit));
    c = wr_crc32c_update(c, &h->hs.abstain, sizeof(h->hs.abstain));
    return wr_crc32c_update(c, &h->gen, sizeof(h->gen));
}

static sim_op_t *op_push(sim_disk_t *d)
{
    if (d->n_ops == d->cap_ops) {
        d->cap_ops = d->cap_ops ? d->cap_ops * 2 : 8;
        d->ops = xrealloc(d->ops, d->cap_ops * sizeof(*d->ops));
    }
    memset(&d->ops[d->n_ops], 0, sizeof(d->ops[0]));
    return &d->ops[d->n_ops++];
}

void sim_disk_append(sim_disk_t *d, const wr_raft_entry_t *e, size_t n)
{
    sim_op_t *op = op_push(d);

    op->e = xrealloc(NULL, n * sizeof(*e));
    op->n = n;
    for (size_t i = 0; i < n; i++) {
        op->e[i] = e[i];
        op->e[i].data = e[i].len ? xrealloc(NULL, e[i].len) : NULL;
        if (e[i].len)
            memcpy(op->e[i].data, e[i].data, e[i].len);
    }
}

void sim_disk_set_hs(sim_disk_t *d, const wr_raft_hard_state_t *hs)
{
    sim_op_t *op = op_push(d);

    op->is_hs = true;
    op->hs = *hs;
}

void sim_disk_compact(sim_disk_t *d, uint64_t index, uint64_t term)
{
    sim_op_t *op = op_push(d);

    op->is_compact = true;
    op->hs.commit = index;
    op->hs.term = term;
}

void sim_disk_base(const sim_disk_t *d, uint64_t *index, uint64_t *term)
{
    *index = d->base;
    *term = d->base_term;
}

static void log_cut(sim_disk_t *d, uint64_t from)
{
    d->valid_stale = true;
    while (d->n > 0 && d->log[d->n - 1].e.index >= from)
        free(d->log[--d->n].e.data);
}

/* Writes one entry record (takes its payload); a torn one gets a bad CRC. */
static void log_put(sim_disk_t *d, wr_raft_entry_t *e, bool torn)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->log = xrealloc(d->log, d->cap * sizeof(*d->log));
    }
    d->valid_stale = true;
    d->log[d->n].e = *e;
    d->log[d->n].crc = entry_crc(e) ^ (torn ? 0x5au : 0);
    d->n++;
    e->data = NULL;
}

/* Both copies, one after the other: a tear hits the first, a flip only one. */
static void hs_put(sim_disk_t *d, const wr_raft_hard_state_t *hs, bool torn)
{
    d->hs_gen++;
    for (int i = 0; i < 2; i++) {
        sim_hs_rec_t *h = &d->hs[i];
        h->hs = *hs;
        h->gen = d->hs_gen;
        h->crc = hs_crc(h) ^ (torn ? 0x5au : 0);
        if (torn)
            return;
    }
}

/* A snapshot marker: Raft's rule, as the WAL's: the prefix goes if the log holds
 * (index, term), else everything. */
static void marker_apply(sim_disk_t *d, uint64_t index, uint64_t term)
{
    size_t drop = (size_t)(index - d->base);
    bool holds = index > d->base && drop <= d->n && d->log[drop - 1].e.term == term;

    if (index <= d->base)
        return;
    if (!holds)
        drop = d->n;
    for (size_t i = 0; i < drop; i++)
        free(d->log[i].e.data);
    if (d->n > drop)
        memmove(d->log, d->log + drop, (d->n - drop) * sizeof(*d->log));
    d->n -= drop;
    if (!holds)
        d->synced = index;
    d->base = index;
    d->base_term = term;
    d->synced = d->synced > index ? d->synced : index;
    d->valid_stale = true;
}

/* Applies op; with limit < op->n only limit entries land and the next is torn. */
static void op_apply(sim_disk_t *d, sim_op_t *op, size_t limit)
{
    if (op->is_compact) {
        marker_apply(d, op->hs.commit, op->hs.term);
        return;
    }
    if (op->is_hs) {
        hs_put(d, &op->hs, limit == 0);
        return;
    }
    if (op->n > 0)
        log_cut(d, op->e[0].index);
    if (op->n > 0 && d->synced >= op->e[0].index)
        d->synced = op->e[0].index - 1;
    for (size_t i = 0; i < op->n && i <= limit; i++)
        log_put(d, &op->e[i], i == limit);
}

static void op_free(sim_op_t *op)
{
    for (size_t i = 0; i < op->n; i++)
        free(op->e[i].data);
    free(op->e);
}

/* Forgets the first k queued writes. */
static void ops_drop(sim_disk_t *d, size_t k)
{
    for (size_t i = 0; i < k; i++)
        op_free(&d->ops[i]);
    if (k < d->n_ops)
        memmove(d->ops, d->ops + k, (d->n_ops - k) * sizeof(*d->ops));
    d->n_ops -= k;
}

/* Records from the start that pass their CRC and sit at their index. */
static size_t good_records(const sim_disk_t *d)
{
    size_t good = 0;

    while (good < d->n && d->log[good].crc == entry_crc(&d->log[good].e) &&
           d->log[good].e.index == d->base + good + 1)
        good++;
    return good;
}

uint64_t sim_disk_valid(sim_disk_t *d)
{
    if (!d->valid_stale)
        return d->valid;
    d->valid = d->base + good_records(d);
    d->valid_stale = false;
    return d->valid;
}

void sim_disk_sync(sim_disk_t *d, size_t k)
{
    for (size_t i = 0; i < k && i < d->n_ops; i++)
        op_apply(d, &d->ops[i], SIZE_MAX);
    ops_drop(d, k < d->n_ops ? k : d->n_ops);
    d->synced = sim_disk_valid(d); /* a torn tail not yet cut stays unsynced */
}

void sim_disk_crash(sim_disk_t *d, size_t keep, size_t tear_at)
{
    for (size_t i = 0; i < d->n_ops && i < keep; i++)
        op_apply(d, &d->ops[i], SIZE_MAX);
    if (keep < d->n_ops)
        op_apply(d, &d->ops[keep], tear_at);
    ops_drop(d, d->n_ops);
    /* The restart reads the kept writes back as durable and may acknowledge
     * them: from now on a bad record among them is damage, not a torn tail. */
    if (sim_disk_valid(d) > d->synced)
        d->synced = sim_disk_valid(d);
}

void sim_disk_flip(sim_disk_t *d, uint64_t pick)
{
    size_t i = pick % (d->n + 2);

    d->valid_stale = true;
    if (i >= d->n) {
        d->hs[i - d->n].hs.term ^= 1;
        return;
    }
    if (d->log[i].e.len > 0)
        d->log[i].e.data[(pick / 7) % d->log[i].e.len] ^= (uint8_t)(1u << (pick % 8));
    else
        d->log[i].e.term ^= 1;
}

static bool hs_valid(const sim_hs_rec_t *h)
{
    return h->gen > 0 && h->crc == hs_crc(h);
}

wr_raft_hard_state_t sim_disk_durable_hs(const sim_disk_t *d)
{
    const sim_hs_rec_t *a = &d->hs[0], *b = &d->hs[1];

    if (hs_valid(a) && (!hs_valid(b) || a->gen > b->gen))
        return a->hs;
    if (hs_valid(b))
        return b->hs;
    return (wr_raft_hard_state_t){0, 0, 0, 0};
}

bool sim_disk_payload(const sim_disk_t *d, const wr_raft_entry_t *e, wr_buf_t *out)
{
    const sim_rec_t *r =
        e->index > d->base && e->index <= d->base + d->n ? &d->log[e->index - d->base - 1] : NULL;

    wr_buf_reset(out);
    if (r == NULL || r->crc != entry_crc(&r->e) || r->e.term != e->term || r->e.len != e->len ||
        r->e.type != e->type)
        return false;
    wr_buf_put(out, r->e.data, r->e.len);
    return wr_buf_ok(out);
}

uint64_t sim_disk_term(sim_disk_t *d, uint64_t index)
{
    if (index == d->base)
        return d->base_term;
    return index < d->base || index > sim_disk_valid(d) ? 0 : d->log[index - d->base - 1].e.term;
}

void sim_disk_load(sim_disk_t *d, wr_raft_hard_state_t *hs, const wr_raft_entry_t **e, size_t *n,
                   bool *damaged)
{
    uint64_t last = sim_disk_valid(d);
    size_t good = (size_t)(last - d->base);

    *hs = sim_disk_durable_hs(d);
    /* Open repairs a bad copy from the good one, so one flip never meets another. */
    for (int i = 0; i < 2; i++)
        if (!hs_valid(&d->hs[i]) && hs_valid(&d->hs[1 - i]))
            d->hs[i] = d->hs[1 - i];
    /* A bad record past the last sync is a torn write, never acknowledged;
     * one below it is a synced record gone bad. Bad records stay until a
     * write cuts them: a crash first finds them again. */
    *damaged = last < d->synced && good < d->n;
    *n = good;
    *e = NULL;
    if (good > 0) {
        wr_raft_entry_t *out = xrealloc(NULL, good * sizeof(*out));
        for (size_t i = 0; i < good; i++)
            out[i] = d->log[i].e;
        *e = out;
    }
}

void sim_disk_free(sim_disk_t *d)
{
    ops_drop(d, d->n_ops);
    free(d->ops);
    log_cut(d, 0);
    free(d->log);
    memset(d, 0, sizeof(*d));
}
