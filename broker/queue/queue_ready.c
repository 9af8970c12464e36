/* SPDX-License-Identifier: MIT */
/*
 * The ready store of a queue (see queue_ready.h): deques of blocks that keep
 * one drained block as spare, min-heaps of requeued messages keyed by their
 * place in the lane, the counts kept on every push and pop, paging in from
 * the log in batches, and the log-order listing checkpoints need.
 */
#include "broker/queue/queue_ready.h"

#include <stdlib.h>

#include "core/status.h"

/* Paging in: when fewer than half a batch of messages ahead of the
 * consumers is in memory, read up to a batch more (within the budget). */
#define PAGE_IN_RECORDS 256
#define PAGE_IN_BYTES   (4u << 20)

bool wr_ready_init(wr_ready_t *r, size_t nlanes)
{
    *r = (wr_ready_t){0};
    r->nlanes = nlanes;
    r->lanes = &r->lane0;
    if (nlanes > 1 && (r->lanes = calloc(nlanes, sizeof(*r->lanes))) == NULL)
        return false;
    for (size_t p = 0; p < nlanes; p++)
        r->lanes[p].head_seq = 1;
    return true;
}

void wr_ready_fini(wr_ready_t *r)
{
    for (size_t p = 0; p < r->nlanes; p++) {
        wr_ready_lane_t *l = &r->lanes[p];

        for (size_t i = 0; i < l->nblocks; i++)
            free(l->blocks[(l->bfirst + i) & (l->bcap - 1)]);
        free(l->blocks);
        free(l->heap);
    }
    if (r->lanes != &r->lane0)
        free(r->lanes);
    free(r->spare);
}

/* Adds (sign 1) or removes (-1) a message with entry word `word` of
 * `size` body bytes to r's persistent tally. */
static void count_persistent(wr_ready_t *r, uint64_t word, uint64_t size, int sign)
{
    if (!(word & WR_RE_PERSISTENT))
        return;
    r->npersistent += (size_t)sign;
    r->persistent_bytes += (uint64_t)(int64_t)sign * size;
}

bool wr_ready_push(wr_ready_t *r, wr_ready_lane_t *l, wr_ready_entry_t e)
{
    if (l->head + l->len == l->nblocks * WR_RE_BLOCK) {
        wr_ready_entry_t *b = r->spare;

        if (l->nblocks == l->bcap) {
            size_t ncap = l->bcap ? l->bcap * 2 : 4;
            wr_ready_entry_t **n = malloc(ncap * sizeof(*n));

            if (n == NULL)
                return false;
            for (size_t i = 0; i < l->nblocks; i++)
                n[i] = l->blocks[(l->bfirst + i) & (l->bcap - 1)];
            free(l->blocks);
            l->blocks = n;
            l->bcap = ncap;
            l->bfirst = 0;
        }
        if (b == NULL && (b = malloc(WR_RE_BLOCK * sizeof(*b))) == NULL)
            return false;
        r->spare = NULL;
        l->blocks[(l->bfirst + l->nblocks) & (l->bcap - 1)] = b;
        l->nblocks++;
    }
    *wr_ready_at(l, l->len) = e;
    l->len++;
    r->count++;
    r->bytes += e.size;
    count_persistent(r, e.word, e.size, 1);
    if (e.expiry != WR_RE_NO_EXPIRY)
        r->nexpiring++;
    return true;
}

wr_ready_entry_t wr_ready_shift(wr_ready_t *r, wr_ready_lane_t *l)
{
    wr_ready_entry_t e = *wr_ready_at(l, 0);

    l->len--;
    l->head++;
    l->head_seq++;
    if (l->loaded > 0)
        l->loaded--;
    if (l->head == WR_RE_BLOCK || l->len == 0) {
        wr_ready_entry_t *b = l->blocks[l->bfirst];

        if (l->head == WR_RE_BLOCK) {
            l->bfirst = (l->bfirst + 1) & (l->bcap - 1);
            l->nblocks--;
            if (r->spare == NULL)
                r->spare = b;
            else
                free(b);
        }
        l->head = 0;
    }
    r->count--;
    r->bytes -= e.size;
    count_persistent(r, e.word, e.size, -1);
    if (e.expiry != WR_RE_NO_EXPIRY)
        r->nexpiring--;
    if (e.msg != NULL)
        wr_ready_mem_sub(r, e.msg);
    return e;
}

bool wr_ready_hold(wr_ready_t *r, wr_ready_lane_t *l, wr_ready_held_t h)
{
    size_t i;

    if (l->hlen == l->hcap) {
        size_t ncap = l->hcap ? l->hcap * 2 : 16;
        wr_ready_held_t *n = realloc(l->heap, ncap * sizeof(*n));

        if (n == NULL)
            return false;
        l->heap = n;
        l->hcap = ncap;
    }
    i = l->hlen++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent].seq <= h.seq)
            break;
        l->heap[i] = l->heap[parent];
        i = parent;
    }
    l->heap[i] = h;
    r->count++;
    r->bytes += h.size;
    count_persistent(r, h.word, h.size, 1);
    if (h.msg != NULL)
        wr_ready_mem_add(r, h.msg);
    if (h.expiry != WR_RE_NO_EXPIRY)
        r->nexpiring++;
    return true;
}

wr_ready_held_t wr_ready_unhold(wr_ready_t *r, wr_ready_lane_t *l)
{
    wr_ready_held_t top = l->heap[0];
    wr_ready_held_t last = l->heap[--l->hlen];
    size_t i = 0;

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->hlen)
            break;
        if (child + 1 < l->hlen && l->heap[child + 1].seq < l->heap[child].seq)
            child++;
        if (last.seq <= l->heap[child].seq)
            break;
        l->heap[i] = l->heap[child];
        i = child;
    }
    if (l->hlen > 0)
        l->heap[i] = last;
    r->count--;
    r->bytes -= top.size;
    count_persistent(r, top.word, top.size, -1);
    if (top.msg != NULL)
        wr_ready_mem_sub(r, top.msg);
    if (top.expiry != WR_RE_NO_EXPIRY)
        r->nexpiring--;
    return top;
}

/*
 * The log index of the last paged-out entry of the batch after the loaded
 * ones, whatever the budget: the log reads the records up to it together,
 * and keeps what this page-in does not take for the next.
 */
static uint64_t page_in_upto(const wr_ready_lane_t *l)
{
    size_t end = l->len - l->loaded > PAGE_IN_RECORDS ? l->loaded + PAGE_IN_RECORDS : l->len;

    for (size_t i = end; i-- > l->loaded;) {
        const wr_ready_entry_t *e = wr_ready_at(l, i);

        if (e->msg == NULL && !(e->word & WR_RE_LOST))
            return wr_ready_index(e->word);
    }
    return 0;
}

void wr_ready_page_in(wr_ready_t *r, wr_ready_lane_t *l, wr_qlog_t *log, uint64_t budget)
{
    uint64_t bytes = 0, upto;
    size_t n = 0;

    if (l->loaded == l->len || l->loaded >= PAGE_IN_RECORDS / 2 || (l->loaded > 0 && r->mem >= budget))
        return;
    upto = page_in_upto(l);
    while (l->loaded < l->len && n < PAGE_IN_RECORDS && bytes < PAGE_IN_BYTES &&
           (l->loaded == 0 || r->mem < budget)) {
        wr_ready_entry_t *e = wr_ready_at(l, l->loaded);

        if (e->msg == NULL && !(e->word & WR_RE_LOST)) {
            uint64_t index = wr_ready_index(e->word);
            int rc = wr_qlog_read(log, index, upto > index ? upto : index, &e->msg);

            if (rc == WR_ENOMEM)
                return;
            if (rc != WR_OK) {
                e->word |= WR_RE_LOST;
            } else {
                wr_ready_mem_add(r, e->msg);
                bytes += wr_ready_cost(e->msg);
                n++;
            }
        }
        l->loaded++;
    }
}

void wr_ready_persistent(const wr_ready_t *r, wr_qlog_live_fn fn, void *ud)
{
    size_t at[256] = {0}; /* per lane, the next entry to look at */

    /* Each lane is in log order: merge them. */
    for (;;) {
        size_t best = SIZE_MAX;
        uint64_t index = UINT64_MAX, word = 0;

        for (size_t p = 0; p < r->nlanes; p++) {
            const wr_ready_lane_t *l = &r->lanes[p];

            for (; at[p] < l->len; at[p]++) {
                uint64_t w = wr_ready_at(l, at[p])->word;

                if ((w & WR_RE_PERSISTENT) && !(w & WR_RE_LOST)) {
                    if (wr_ready_index(w) < index) {
                        best = p;
                        index = wr_ready_index(w);
                        word = w;
                    }
                    break;
                }
            }
        }
        if (best == SIZE_MAX)
            return;
        fn(ud, index, (word & WR_RE_REDELIVERED) != 0);
        at[best]++;
    }
}
