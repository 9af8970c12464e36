/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue machine's containers: power-of-two rings of message
 * records (ready messages in 24 bytes each; checked-out ones sorted by id with
 * settled slots tombstoned and compacted away), consumers and publishers.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/qfifo_internal.h"

void qf_ring_init(qf_ring_t *r, uint32_t esz)
{
    *r = (qf_ring_t){NULL, 0, 0, 0, esz};
}

void qf_ring_free(qf_ring_t *r)
{
    free(r->v);
    qf_ring_init(r, r->esz);
}

void *qf_ring_at(const qf_ring_t *r, size_t i)
{
    return r->v + ((r->head + i) & (r->cap - 1)) * r->esz;
}

/* Doubles the capacity, unwrapping the elements to the start. */
static bool ring_grow(qf_ring_t *r)
{
    size_t cap = r->cap ? r->cap * 2 : 8;
    uint8_t *v = malloc(cap * r->esz);

    if (v == NULL)
        return false;
    for (size_t i = 0; i < r->len; i++)
        memcpy(v + i * r->esz, qf_ring_at(r, i), r->esz);
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return true;
}

void *qf_ring_push(qf_ring_t *r)
{
    if (r->len == r->cap && !ring_grow(r))
        return NULL;
    r->len++;
    return qf_ring_at(r, r->len - 1);
}

void qf_ring_pop(qf_ring_t *r)
{
    r->head = (r->head + 1) & (r->cap - 1);
    if (--r->len == 0)
        r->head = 0;
}

static bool is_tomb(const qf_ring_t *r, size_t i)
{
    return ((const qf_out_t *)qf_ring_at(r, i))->m.flags & QF_TOMB;
}

/* Moves the live slots together at the front, in order. */
static void ring_compact(qf_ring_t *r)
{
    size_t w = 0;

    for (size_t i = 0; i < r->len; i++) {
        if (is_tomb(r, i))
            continue;
        if (w != i)
            memcpy(qf_ring_at(r, w), qf_ring_at(r, i), r->esz);
        w++;
    }
    r->len = w;
}

void qf_ring_trim(qf_ring_t *r, size_t live)
{
    while (r->len > 0 && is_tomb(r, 0))
        qf_ring_pop(r);
    if (r->len > 2 * live + 16)
        ring_compact(r);
}

qf_out_t *qf_ring_find(const qf_ring_t *r, uint64_t id)
{
    size_t lo = 0, hi = r->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        qf_out_t *o = qf_ring_at(r, mid);

        if (o->id == id)
            return (o->m.flags & QF_TOMB) ? NULL : o;
        if (o->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

qf_consumer_t *qf_consumer_new(uint64_t owner, wr_bytes_t tag, uint64_t cid)
{
    qf_consumer_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->owner = owner;
    c->cid = cid;
    c->tag_len = (uint8_t)tag.len;
    if (tag.len > 0)
        memcpy(c->tag, tag.data, tag.len);
    qf_ring_init(&c->out, sizeof(qf_out_t));
    return c;
}

void qf_consumer_free(qf_consumer_t *c)
{
    if (c == NULL)
        return;
    qf_ring_free(&c->out);
    free(c);
}

bool qf_consumer_add(wr_qfifo_t *q, qf_consumer_t *c)
{
    if (q->ncons == q->capcons) {
        size_t cap = q->capcons ? q->capcons * 2 : 4;
        qf_consumer_t **v = realloc(q->cons, cap * sizeof(*v));

        if (v == NULL)
            return false;
        q->cons = v;
        q->capcons = cap;
    }
    q->cons[q->ncons++] = c;
    return true;
}

bool qf_pub_insert(wr_qfifo_t *q, size_t at, uint64_t id, uint64_t last_seq)
{
    if (q->npubs == q->cappubs) {
        size_t cap = q->cappubs ? q->cappubs * 2 : 4;
        qf_pub_t *v = realloc(q->pubs, cap * sizeof(*v));

        if (v == NULL)
            return false;
        q->pubs = v;
        q->cappubs = cap;
    }
    memmove(q->pubs + at + 1, q->pubs + at, (q->npubs - at) * sizeof(*q->pubs));
    q->pubs[at] = (qf_pub_t){id, last_seq};
    q->npubs++;
    return true;
}
