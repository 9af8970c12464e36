/* SPDX-License-Identifier: MIT */
/*
 * The in-memory Raft log: a growable array of entries owning their payloads,
 * until the payloads the driver can read back are dropped. Truncation keeps
 * the persist bookkeeping (unstable, stable) consistent so a rewritten suffix
 * is persisted again and never counted durable by accident.
 */
#include "cluster/raft_log.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

void wr_raft_log_clear(wr_raft_log_t *l)
{
    wr_raft_log_truncate(l, 1);
    free(l->e);
    l->e = NULL;
    l->cap = 0;
}

uint64_t wr_raft_log_term(const wr_raft_log_t *l, uint64_t index)
{
    if (index == l->offset)
        return l->offset_term;
    if (index < l->offset || index > l->n)
        return 0;
    return l->e[index - l->offset - 1].term;
}

uint64_t wr_raft_log_last_term(const wr_raft_log_t *l)
{
    return wr_raft_log_term(l, l->n);
}

static int log_grow(wr_raft_log_t *l)
{
    uint64_t cap = l->cap == 0 ? 8 : l->cap * 2;
    wr_raft_entry_t *e = realloc(l->e, cap * sizeof(*e));

    if (e == NULL)
        return WR_ENOMEM;
    l->e = e;
    l->cap = cap;
    return WR_OK;
}

int wr_raft_log_append(wr_raft_log_t *l, const wr_raft_entry_t *e)
{
    uint8_t *data = NULL;

    if (l->n - l->offset == l->cap && log_grow(l) != WR_OK)
        return WR_ENOMEM;
    if (e->len > 0 && e->data != NULL) {
        data = malloc(e->len);
        if (data == NULL)
            return WR_ENOMEM;
        memcpy(data, e->data, e->len);
    }
    l->e[l->n - l->offset] = (wr_raft_entry_t){e->term, l->n + 1, data, e->len, e->type};
    l->n++;
    return WR_OK;
}

void wr_raft_log_truncate(wr_raft_log_t *l, uint64_t from)
{
    if (from <= l->offset)
        from = l->offset + 1;
    if (l->n >= from && (l->cut == 0 || from < l->cut))
        l->cut = from;
    while (l->n >= from) {
        free(l->e[l->n - l->offset - 1].data);
        l->n--;
    }
    if (l->unstable > l->n + 1)
        l->unstable = l->n + 1;
    if (l->stable > l->n)
        l->stable = l->n;
    if (l->dropped > l->n)
        l->dropped = l->n;
}

void wr_raft_log_compact(wr_raft_log_t *l, uint64_t index)
{
    uint64_t drop = index - l->offset;

    if (index <= l->offset || index > l->n)
        return;
    l->offset_term = wr_raft_log_term(l, index);
    for (uint64_t i = 0; i < drop; i++)
        free(l->e[i].data);
    memmove(l->e, l->e + drop, (size_t)(l->n - index) * sizeof(*l->e));
    l->offset = index;
    if (l->dropped < index)
        l->dropped = index;
    if (l->unstable < index + 1)
        l->unstable = index + 1;
    if (l->stable < index)
        l->stable = index;
}

void wr_raft_log_reset(wr_raft_log_t *l, uint64_t index, uint64_t term)
{
    wr_raft_log_truncate(l, l->offset + 1);
    if (l->cut == 0 || l->offset + 1 < l->cut)
        l->cut = l->offset + 1;
    l->offset = l->n = l->dropped = index;
    l->offset_term = term;
    l->unstable = index + 1;
    l->stable = 0; /* not even the snapshot is durable until notified */
}

void wr_raft_log_drop_payloads(wr_raft_log_t *l, uint64_t to)
{
    if (to > l->n)
        to = l->n;
    for (uint64_t i = l->dropped > l->offset ? l->dropped + 1 : l->offset + 1; i <= to; i++) {
        wr_raft_entry_t *e = &l->e[i - l->offset - 1];

        if (e->type == WR_RAFT_ENTRY_NORMAL) {
            free(e->data);
            e->data = NULL;
        }
    }
    if (to > l->dropped)
        l->dropped = to;
}

const wr_raft_entry_t *wr_raft_log_at(const wr_raft_log_t *l, uint64_t index)
{
    if (index <= l->offset || index > l->n)
        return NULL;
    return &l->e[index - l->offset - 1];
}

uint64_t wr_raft_log_term_start(const wr_raft_log_t *l, uint64_t index)
{
    uint64_t term = wr_raft_log_term(l, index);

    while (index > l->offset + 1 && wr_raft_log_term(l, index - 1) == term)
        index--;
    return index;
}

uint64_t wr_raft_log_last_of_term(const wr_raft_log_t *l, uint64_t term)
{
    uint64_t i = l->n;

    while (i > l->offset && wr_raft_log_term(l, i) > term)
        i--;
    return wr_raft_log_term(l, i) == term && i > 0 ? i : 0;
}
