/* SPDX-License-Identifier: MIT */
/*
 * A channel's deliveries awaiting acknowledgement: (tag, queue, token,
 * message when the queue needs it kept, consumer) in delivery-tag order with
 * an open-addressing index by tag, settled through the queue-type interface.
 *
 * A settled delivery's record is kept for the next delivery (up to
 * SPARE_MAX per channel, freed with it): an ack with multiple=true frees a
 * window's worth at once, and the malloc of each delivery was one of the
 * 1.6 per message left in scenario 2 (docs/PERFORMANCE.md). Under
 * AddressSanitizer a kept record is poisoned but for its link, so a use
 * after settlement is still caught.
 */
#include "broker/amqp/unacked.h"

#include <stddef.h>
#include <stdlib.h>

#include "core/poison.h"
#include "core/status.h"

/* Settled records kept per channel: a prefetch window of up to this many
 * acked at once is delivered again without an allocation. */
#define SPARE_MAX 256

typedef struct {
    wr_list_t node; /* in tag order */
    uint64_t tag;
    uint64_t at; /* when it was made, on the queue hooks' clock */
    wr_qtoken_t tok;
    wr_queue_t *queue;
    wr_message_t *msg;
    wr_consumer_t *consumer;
} delivery_t;

/* A kept record is linked through its first word, which stays unpoisoned
 * (LeakSanitizer does not follow pointers in poisoned memory). */
_Static_assert(offsetof(delivery_t, node) == 0 && offsetof(wr_list_t, prev) == 0,
               "the link is the first word");

/* Deliveries in tag order plus an open-addressing index (linear probing,
 * backward-shift deletion) from tag to delivery. */
struct wr_unacked_s {
    wr_list_t list;
    delivery_t **slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
    size_t from_consumers;
    delivery_t *spare; /* settled records kept for the next deliveries */
    size_t nspare;
};

static size_t tag_slot(uint64_t tag, size_t cap)
{
    return (size_t)((tag * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static bool index_resize(wr_unacked_t *u, size_t ncap)
{
    delivery_t **n = calloc(ncap, sizeof(*n));

    if (n == NULL)
        return false;
    for (size_t i = 0; i < u->cap; i++) {
        delivery_t *d = u->slots[i];
        if (d != NULL) {
            size_t j = tag_slot(d->tag, ncap);
            while (n[j] != NULL)
                j = (j + 1) & (ncap - 1);
            n[j] = d;
        }
    }
    free(u->slots);
    u->slots = n;
    u->cap = ncap;
    return true;
}

static size_t index_find(const wr_unacked_t *u, uint64_t tag)
{
    size_t i;

    if (u->cap == 0)
        return SIZE_MAX;
    for (i = tag_slot(tag, u->cap); u->slots[i] != NULL; i = (i + 1) & (u->cap - 1)) {
        if (u->slots[i]->tag == tag)
            return i;
    }
    return SIZE_MAX;
}

static void index_remove(wr_unacked_t *u, size_t i)
{
    size_t j = i;

    u->slots[i] = NULL;
    for (;;) {
        size_t home;

        j = (j + 1) & (u->cap - 1);
        if (u->slots[j] == NULL)
            break;
        home = tag_slot(u->slots[j]->tag, u->cap);
        /* Move j back to the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            u->slots[i] = u->slots[j];
            u->slots[j] = NULL;
            i = j;
        }
    }
}

static delivery_t *delivery_alloc(wr_unacked_t *u)
{
    delivery_t *d = u->spare;

    if (d == NULL)
        return malloc(sizeof(*d));
    WR_UNPOISON(d, sizeof(*d));
    u->spare = (delivery_t *)d->node.prev;
    u->nspare--;
    return d;
}

static void delivery_free(wr_unacked_t *u, delivery_t *d)
{
    if (u->nspare == SPARE_MAX) {
        free(d);
        return;
    }
    d->node.prev = (wr_list_t *)u->spare;
    WR_POISON((uint8_t *)d + sizeof(d->node.prev), sizeof(*d) - sizeof(d->node.prev));
    u->spare = d;
    u->nspare++;
}

wr_unacked_t *wr_unacked_new(void)
{
    wr_unacked_t *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    wr_list_init(&u->list);
    return u;
}

void wr_unacked_free(wr_unacked_t *u)
{
    if (u == NULL)
        return;
    wr_unacked_requeue_all(u);
    while (u->spare != NULL) {
        delivery_t *d = u->spare;

        WR_UNPOISON(d, sizeof(*d));
        u->spare = (delivery_t *)d->node.prev;
        free(d);
    }
    free(u->slots);
    free(u);
}

int wr_unacked_add(wr_unacked_t *u, uint64_t tag, wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t,
                   wr_consumer_t *c)
{
    delivery_t *d;
    size_t i;

    if ((u->count + 1) * 2 > u->cap && !index_resize(u, u->cap ? u->cap * 2 : 16))
        return WR_ENOMEM;
    d = delivery_alloc(u);
    if (d == NULL)
        return WR_ENOMEM;
    d->tag = tag;
    d->at = wr_queue_now_ms(q);
    d->tok = *t;
    d->queue = wr_queue_ref(q);
    /* A message the queue can read back (from its log) if it is ever
     * requeued or dead-lettered is not kept: the delivery holds only its
     * token, so deliveries awaiting ack cost no body memory (docs/FLOW.md). */
    d->msg = t->keep_msg ? wr_message_ref(m) : NULL;
    d->consumer = c;
    if (c != NULL) {
        c->refs++;
        c->unacked++;
        u->from_consumers++;
    }
    for (i = tag_slot(tag, u->cap); u->slots[i] != NULL; i = (i + 1) & (u->cap - 1))
        ;
    u->slots[i] = d;
    wr_list_insert_tail(&u->list, &d->node);
    u->count++;
    return WR_OK;
}

static void settle_one(wr_unacked_t *u, delivery_t *d, size_t slot, wr_settle_t how)
{
    wr_consumer_t *c = d->consumer;

    index_remove(u, slot);
    wr_list_remove(&d->node);
    u->count--;
    if (c != NULL) {
        u->from_consumers--;
        c->unacked--;
        wr_consumer_unref(c);
    }
    /* The queue wakes itself when the consumer's window may have reopened. */
    wr_queue_settle(d->queue, d->msg, &d->tok, how);
    wr_queue_unref(d->queue);
    delivery_free(u, d);
}

static void settle_head(wr_unacked_t *u, wr_settle_t how)
{
    delivery_t *d = wr_list_entry(u->list.next, delivery_t, node);

    settle_one(u, d, index_find(u, d->tag), how);
}

/* Shrinks the index after a burst of unacked deliveries has been settled. */
static void index_maybe_shrink(wr_unacked_t *u)
{
    if (u->cap > 64 && u->count * 8 < u->cap)
        index_resize(u, u->cap / 2);
}

int wr_unacked_settle(wr_unacked_t *u, uint64_t tag, bool multiple, wr_settle_t how)
{
    size_t slot;

    if (multiple && tag == 0) {
        while (u->count > 0)
            settle_head(u, how);
        index_maybe_shrink(u);
        return WR_OK;
    }
    slot = index_find(u, tag);
    if (slot == SIZE_MAX)
        return WR_ENOENT;
    if (multiple) {
        /* Tags are in order, so everything up to tag sits before it. */
        while (wr_list_entry(u->list.next, delivery_t, node)->tag != tag)
            settle_head(u, how);
        settle_head(u, how);
    } else {
        settle_one(u, u->slots[slot], slot, how);
    }
    index_maybe_shrink(u);
    return WR_OK;
}

size_t wr_unacked_requeue_all(wr_unacked_t *u)
{
    size_t n = u->count;

    while (u->count > 0)
        settle_head(u, WR_SETTLE_RELEASE);
    index_maybe_shrink(u);
    return n;
}

size_t wr_unacked_count(const wr_unacked_t *u)
{
    return u->count;
}

size_t wr_unacked_consumer_count(const wr_unacked_t *u)
{
    return u->from_consumers;
}

/* The oldest pending delivery (tags increase with time), or NULL. */
static const delivery_t *oldest(const wr_unacked_t *u)
{
    return u->count > 0 ? wr_list_entry(u->list.next, delivery_t, node) : NULL;
}

uint64_t wr_unacked_overdue_in(const wr_unacked_t *u, int64_t *timeout_ms)
{
    const delivery_t *d = oldest(u);
    uint64_t due, now;

    if (d == NULL || wr_queue_limits(d->queue)->consumer_timeout < 0)
        return UINT64_MAX;
    *timeout_ms = wr_queue_limits(d->queue)->consumer_timeout;
    due = d->at > UINT64_MAX - (uint64_t)*timeout_ms ? UINT64_MAX : d->at + (uint64_t)*timeout_ms;
    now = wr_queue_now_ms(d->queue);
    return due > now ? due - now : 0;
}

int64_t wr_unacked_oldest_age(const wr_unacked_t *u)
{
    const delivery_t *d = oldest(u);

    return d != NULL ? (int64_t)(wr_queue_now_ms(d->queue) - d->at) : -1;
}
