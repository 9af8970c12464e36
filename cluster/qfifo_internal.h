/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue machine's state, shared by the machine (qfifo.c), its
 * rings (qfifo_ring.c) and its codec (qfifo_codec.c). Only cluster/qfifo*
 * includes it.
 */
#ifndef WR_CLUSTER_QFIFO_INTERNAL_H
#define WR_CLUSTER_QFIFO_INTERNAL_H

#include "cluster/qfifo.h"

#define QF_REDELIVERED  0x01 /* delivered before: AMQP redelivered */
#define QF_TOMB         0x80 /* a settled slot inside an id-sorted ring (never in a snapshot) */
#define QF_REASON       0x06 /* a dead letter's wr_qf_reason_t (in the dlx ring only) */
#define QF_REASON_SHIFT 1
#define QF_FLAGS        (QF_REDELIVERED | QF_REASON)

/* One message: 24 bytes; the body is the log entry at index. */
typedef struct {
    uint64_t index;
    uint64_t expiry; /* absolute leader ms; 0: never */
    uint32_t size;
    uint16_t count; /* x-delivery-count: explicit returns */
    uint8_t prio;
    uint8_t flags;
} qf_msg_t;

/* A message checked out to a consumer (id: its delivery id) or awaiting a dead-letter confirm. */
typedef struct {
    qf_msg_t m;
    uint64_t id;
    uint64_t at; /* leader ms it was delivered */
} qf_out_t;

/* A power-of-two ring of fixed-size elements. */
typedef struct {
    uint8_t *v;
    size_t head, len, cap;
    uint32_t esz;
} qf_ring_t;

typedef enum { QF_UP = 0, QF_WAITING = 1, QF_CANCELLED = 2 } qf_status_t;

typedef struct {
    uint64_t owner;
    uint64_t cid; /* index of the checkout that made it */
    uint64_t next_id;
    uint64_t served; /* serve order for round robin among equal priorities */
    uint32_t prefetch;
    int32_t prio;
    uint8_t status;
    uint8_t tag_len;
    uint8_t tag[255];
    qf_ring_t out; /* qf_out_t sorted by id, with QF_TOMB slots */
    size_t nout;   /* unsettled in out */
} qf_consumer_t;

typedef struct {
    uint64_t id, last_seq;
} qf_pub_t;

struct wr_qfifo_s {
    wr_qfifo_policy_t pol;
    uint32_t release_every;
    uint8_t hi_streak;
    uint64_t now, applied, last_release;
    uint64_t serve_seq, dlx_next;
    qf_ring_t returns, hi, lo; /* qf_msg_t; returns are served first */
    uint64_t ready_bytes;
    qf_consumer_t **cons; /* registration order */
    size_t ncons, capcons;
    qf_pub_t *pubs; /* sorted by id */
    size_t npubs, cappubs;
    qf_ring_t dlx; /* qf_out_t sorted by id, with QF_TOMB slots */
    size_t ndlx;
    uint64_t dlx_bytes;
    uint64_t expires_ms;  /* x-expires (EXPIRES), 0: never */
    uint64_t last_active; /* leader ms of the first entry, the last basic.get or last consumer gone */
};

void qf_ring_init(qf_ring_t *r, uint32_t esz);
void qf_ring_free(qf_ring_t *r);
void *qf_ring_at(const qf_ring_t *r, size_t i);
/* A slot at the tail, or NULL on allocation failure. */
void *qf_ring_push(qf_ring_t *r);
void qf_ring_pop(qf_ring_t *r);
/* Drops QF_TOMB slots at the head, and compacts when they outnumber live ones. */
void qf_ring_trim(qf_ring_t *r, size_t live);
/* The qf_out_t with id, or NULL (binary search over an id-sorted ring). */
qf_out_t *qf_ring_find(const qf_ring_t *r, uint64_t id);

qf_consumer_t *qf_consumer_new(uint64_t owner, wr_bytes_t tag, uint64_t cid);
void qf_consumer_free(qf_consumer_t *c);
/* Appends c to q's consumers. false on allocation failure (c not taken). */
bool qf_consumer_add(wr_qfifo_t *q, qf_consumer_t *c);
/* Inserts publisher id with last_seq, keeping pubs sorted; false on allocation failure. */
bool qf_pub_insert(wr_qfifo_t *q, size_t at, uint64_t id, uint64_t last_seq);

#endif
