/* SPDX-License-Identifier: MIT */
/*
 * The store of a classic queue's ready messages, for classic.c only: one lane per
 * priority (one for a normal queue), each a FIFO deque of 32-byte entries
 * plus a min-heap of requeued messages, with the counts that length limits,
 * TTL and the memory budget need, and paging in from the queue's log.
 */
#ifndef WR_BROKER_QUEUE_READY_H
#define WR_BROKER_QUEUE_READY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/base/message.h"
#include "broker/queue/queue_log.h"

/* Entry flags, below the log index in the entries' word. */
#define WR_RE_PERSISTENT  1u /* delivery_mode 2 in a durable queue: its record survives restarts */
#define WR_RE_REDELIVERED 2u
#define WR_RE_LOST        4u /* its record could not be read back */
#define WR_RE_SHIFT       3

/* Entries per deque block (32 KiB). */
#define WR_RE_BLOCK 1024

#define WR_RE_NO_EXPIRY UINT64_MAX

/* A fresh message. */
typedef struct {
    wr_message_t *msg; /* NULL while paged out */
    uint64_t word;     /* log index << WR_RE_SHIFT | WR_RE_* flags; index 0: not in the log */
    uint64_t expiry;   /* ms on the queue hooks' clock, or WR_RE_NO_EXPIRY */
    uint64_t size;     /* body bytes */
} wr_ready_entry_t;

/* A requeued message: in memory, or (msg NULL) only in the log, from which
 * it is read back when it reaches the head. */
typedef struct {
    wr_message_t *msg;
    uint64_t seq; /* its place in the lane */
    uint64_t word;
    uint64_t expiry;
    uint32_t returns;
    uint64_t size; /* body bytes */
} wr_ready_held_t;

/* The ready messages of one priority. The head of a lane is the older of
 * the deque's head and the heap's top. */
typedef struct {
    /* A deque of blocks, blocks[(bfirst + i) & (bcap - 1)]. */
    wr_ready_entry_t **blocks;
    size_t bcap; /* power of two, or 0 */
    size_t bfirst;
    size_t nblocks;
    size_t head;       /* offset of the first entry in the first block */
    size_t len;        /* entries */
    size_t loaded;     /* entries from the head known to be in memory */
    uint64_t head_seq; /* sequence number of the first entry */
    wr_ready_held_t *heap;
    size_t hlen;
    size_t hcap;
} wr_ready_lane_t;

typedef struct {
    wr_ready_lane_t *lanes; /* lanes[p] holds priority p; &lane0 with one lane */
    size_t nlanes;
    wr_ready_lane_t lane0;
    wr_ready_entry_t *spare; /* a drained block kept for the next one needed */
    size_t count;            /* entries and requeued messages of every lane */
    size_t nexpiring;        /* of which with an expiry */
    uint64_t bytes;          /* their body bytes */
    uint64_t mem;            /* bytes of them in memory */
    /* For the management API: how many of them, and their body bytes, are
     * in memory, and are persistent (WR_RE_PERSISTENT). */
    size_t nmem;
    uint64_t mem_body;
    size_t npersistent;
    uint64_t persistent_bytes;
} wr_ready_t;

/* nlanes empty lanes (r must not move afterwards). False on ENOMEM. */
bool wr_ready_init(wr_ready_t *r, size_t nlanes);
/* Frees the lanes' storage; the messages must have gone. */
void wr_ready_fini(wr_ready_t *r);

/* What a message costs in memory, for the budget. */
static inline uint64_t wr_ready_cost(const wr_message_t *m)
{
    return sizeof(*m) + m->exchange.len + m->routing_key.len + m->header.len + m->body_size;
}

/* Counts m, one of r's messages, as now held in memory. */
static inline void wr_ready_mem_add(wr_ready_t *r, const wr_message_t *m)
{
    r->mem += wr_ready_cost(m);
    r->nmem++;
    r->mem_body += m->body_size;
}

/* Counts m as no longer held in memory by r. */
static inline void wr_ready_mem_sub(wr_ready_t *r, const wr_message_t *m)
{
    r->mem -= wr_ready_cost(m);
    r->nmem--;
    r->mem_body -= m->body_size;
}

static inline uint64_t wr_ready_index(uint64_t word)
{
    return word >> WR_RE_SHIFT;
}

static inline wr_ready_entry_t *wr_ready_at(const wr_ready_lane_t *l, size_t i)
{
    size_t p = l->head + i;

    return &l->blocks[(l->bfirst + p / WR_RE_BLOCK) & (l->bcap - 1)][p % WR_RE_BLOCK];
}

/* Whether l's head is its oldest requeued message rather than its deque's. */
static inline bool wr_ready_heap_first(const wr_ready_lane_t *l)
{
    return l->hlen > 0 && (l->len == 0 || l->heap[0].seq < l->head_seq);
}

/* The expiry of l's head; l must not be empty. */
static inline uint64_t wr_ready_head_expiry(const wr_ready_lane_t *l)
{
    return wr_ready_heap_first(l) ? l->heap[0].expiry : wr_ready_at(l, 0)->expiry;
}

/* The lane of the next message to deliver: the highest priority with ready
 * messages; NULL when none is ready. */
static inline wr_ready_lane_t *wr_ready_head_lane(wr_ready_t *r)
{
    for (size_t p = r->nlanes; p-- > 0;) {
        if (r->lanes[p].len + r->lanes[p].hlen > 0)
            return &r->lanes[p];
    }
    return NULL;
}

/* Appends e to l's deque and counts it (its memory is the caller's to
 * count). False on ENOMEM. */
bool wr_ready_push(wr_ready_t *r, wr_ready_lane_t *l, wr_ready_entry_t e);
/* Removes and returns the head of l's deque, uncounted. */
wr_ready_entry_t wr_ready_shift(wr_ready_t *r, wr_ready_lane_t *l);
/* Files a requeued message by its seq, counted with its memory. False on ENOMEM. */
bool wr_ready_hold(wr_ready_t *r, wr_ready_lane_t *l, wr_ready_held_t h);
/* Removes and returns l's oldest requeued message, uncounted. */
wr_ready_held_t wr_ready_unhold(wr_ready_t *r, wr_ready_lane_t *l);
/*
 * Reads paged-out messages of l back from log ahead of need: when fewer than
 * half a batch ahead of the consumers is in memory, up to a batch more,
 * within budget. The head itself is always read. A record that cannot be
 * read is marked lost (wr_qlog_read reports it); out of memory leaves it for
 * later.
 */
void wr_ready_page_in(wr_ready_t *r, wr_ready_lane_t *l, wr_qlog_t *log, uint64_t budget);
/* Calls fn for every persistent entry not lost, in log order across lanes. */
void wr_ready_persistent(const wr_ready_t *r, wr_qlog_live_fn fn, void *ud);

#endif
