/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue state machine (RabbitMQ's rabbit_fifo, in C): pure, no
 * I/O, no clock. Every member applies the same committed commands with the
 * leader's time carried in them and reaches the same state; only the leader
 * performs the effects. Bodies stay in the Raft log: the state keeps each
 * message's log index, size and a few header fields (docs/QUORUM.md).
 */
#ifndef WR_CLUSTER_QFIFO_H
#define WR_CLUSTER_QFIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/bytes.h"

typedef struct wr_qfifo_s wr_qfifo_t;

#define WR_QF_NONE           UINT64_MAX /* max_length / max_bytes: no limit */
#define WR_QF_NO_TTL         UINT32_MAX /* a TTL that never expires */
#define WR_QF_UNLIMITED      UINT32_MAX /* delivery_limit: never dead-letter on returns */
#define WR_QF_DEFAULT_DLIMIT 20         /* x-delivery-limit when none is given (RabbitMQ 4.0) */
#define WR_QF_HIGH_PRIORITY  5          /* message priority from which a message is "high" */
#define WR_QF_MAX_IDS        65536      /* ids per settle/return/discard/dlx-settle command */

typedef enum { WR_QF_DROP_HEAD = 0, WR_QF_REJECT_PUBLISH = 1 } wr_qf_overflow_t;
/* x-dead-letter-strategy; NONE: no dead-letter exchange, dead letters are dropped. */
typedef enum { WR_QF_DLX_NONE = 0, WR_QF_DLX_AT_MOST_ONCE = 1, WR_QF_DLX_AT_LEAST_ONCE = 2 } wr_qf_dlx_t;
typedef enum {
    WR_QF_DL_REJECTED = 0,
    WR_QF_DL_EXPIRED = 1,
    WR_QF_DL_MAXLEN = 2,
    WR_QF_DL_DELIVERY_LIMIT = 3
} wr_qf_reason_t;

/* The queue's arguments and policy, as the POLICY command sets them. */
typedef struct {
    uint64_t max_length;          /* x-max-length, WR_QF_NONE */
    uint64_t max_bytes;           /* x-max-length-bytes, WR_QF_NONE */
    uint8_t overflow;             /* wr_qf_overflow_t */
    uint8_t dlx;                  /* wr_qf_dlx_t (at-least-once acts only with reject-publish) */
    uint8_t single_active;        /* x-single-active-consumer */
    uint32_t msg_ttl_ms;          /* x-message-ttl, WR_QF_NO_TTL */
    uint32_t delivery_limit;      /* x-delivery-limit, WR_QF_UNLIMITED */
    uint32_t consumer_timeout_ms; /* consumer_timeout; 0: none */
} wr_qfifo_policy_t;

/* RabbitMQ's defaults: no limits, drop-head, no dead-lettering, delivery limit 20. */
void wr_qfifo_policy_default(wr_qfifo_policy_t *p);

typedef enum {
    WR_QF_ENQUEUE = 1,
    WR_QF_CHECKOUT = 2,    /* basic.consume (or a re-checkout: new prefetch and priority) */
    WR_QF_SETTLE = 3,      /* basic.ack */
    WR_QF_RETURN = 4,      /* reject/nack with requeue: delivery count + 1 */
    WR_QF_DISCARD = 5,     /* reject/nack without requeue: dead-letter (rejected) or drop */
    WR_QF_CREDIT = 6,      /* basic.qos on a live consumer: its new prefetch */
    WR_QF_CANCEL = 7,      /* basic.cancel: no more deliveries; unacked stay until settled */
    WR_QF_DOWN = 8,        /* every consumer of a channel/connection gone: its messages return */
    WR_QF_PURGE = 9,       /* queue.purge: ready messages dropped */
    WR_QF_TICK = 10,       /* the leader's periodic time: TTL expiry, consumer timeouts */
    WR_QF_POLICY = 11,     /* arguments / policy changed */
    WR_QF_DLX_SETTLE = 12, /* at-least-once: the dead-letter target confirmed these */
    WR_QF_DEQUEUE = 13,    /* basic.get: the next ready message to (owner, tag), settled or not */
    WR_QF_EXPIRES = 14     /* x-expires changed (argument / policy) */
} wr_qf_op_t;

/*
 * One command. owner is the channel/connection identity of a consumer (with
 * tag, the consumer's key), DOWN's identity, or ENQUEUE's publisher id (0:
 * no dedup). ids are big-endian u64s borrowed from the encoded command
 * (wr_qfifo_cmd_id); tag is borrowed too.
 */
typedef struct {
    wr_qf_op_t op;
    uint64_t owner;
    wr_bytes_t tag;
    uint64_t seq;             /* ENQUEUE: publisher sequence (0: none) */
    uint32_t size;            /* ENQUEUE: the message's bytes in the log */
    uint8_t priority;         /* ENQUEUE: message priority */
    uint32_t ttl_ms;          /* ENQUEUE: per-message TTL (expiration), WR_QF_NO_TTL */
    uint32_t prefetch;        /* CHECKOUT, CREDIT: unsettled deliveries allowed (0: unlimited) */
    int32_t cprio;            /* CHECKOUT: x-priority */
    uint8_t no_ack;           /* DEQUEUE: settled on delivery (basic.get no-ack) */
    wr_bytes_t ids;           /* SETTLE, RETURN, DISCARD: message ids; DLX_SETTLE: dead-letter ids */
    wr_qfifo_policy_t policy; /* POLICY */
    uint64_t expires_ms;      /* EXPIRES: x-expires, ms unused before the queue goes; 0: never */
} wr_qfifo_cmd_t;

/* The i-th id of cmd->ids (i < wr_qfifo_cmd_nids). */
uint64_t wr_qfifo_cmd_id(const wr_qfifo_cmd_t *cmd, size_t i);
static inline size_t wr_qfifo_cmd_nids(const wr_qfifo_cmd_t *cmd)
{
    return cmd->ids.len / 8;
}
/* Writes n ids big-endian into out (8*n bytes), for building cmd->ids. */
void wr_qfifo_ids_pack(uint8_t *out, const uint64_t *ids, size_t n);

/* Appends the log entry for cmd at leader time time_ms. false on allocation failure, a tag
 * over 255 bytes or more than WR_QF_MAX_IDS ids (nothing appended then). */
bool wr_qfifo_cmd_put(wr_buf_t *b, uint64_t time_ms, const wr_qfifo_cmd_t *cmd);
/* Overwrites the leader time of the encoded command in data (the leader's
 * clock, as it appends the entry). false when len is too short to hold one. */
bool wr_qfifo_cmd_stamp(uint8_t *data, size_t len, uint64_t time_ms);
/*
 * Decodes a log entry; cmd borrows tag and ids from data. WR_OK, WR_ESYNTAX
 * (truncated, trailing bytes, bad enum) or WR_EUNKNOWN (unknown op).
 */
int wr_qfifo_cmd_decode(const uint8_t *data, size_t len, uint64_t *time_ms, wr_qfifo_cmd_t *cmd);

typedef enum {
    WR_QFE_DELIVER = 1,    /* owner/tag: consumer; id: message id (0 for a no-ack get); index, size, count,
                              redelivered */
    WR_QFE_CONFIRM = 2,    /* owner: publisher; seq */
    WR_QFE_REJECT = 3,     /* owner: publisher; seq (reject-publish: basic.nack) */
    WR_QFE_DEADLETTER = 4, /* index, size, reason, dlx (strategy); id: dead-letter id (at-least-once) */
    WR_QFE_CANCEL = 5,     /* owner/tag: consumer cancelled by the queue (consumer timeout) */
    WR_QFE_ACTIVE = 6,     /* owner/tag: single active consumer now active */
    WR_QFE_RELEASE = 7,    /* index: snapshot point; id: smallest live index (0: none live) */
    WR_QFE_EXPIRED = 8     /* (TICK) unused for its x-expires: the leader has the queue deleted */
} wr_qfe_kind_t;

typedef struct {
    wr_qfe_kind_t kind;
    uint8_t redelivered;
    uint8_t reason; /* wr_qf_reason_t */
    uint8_t dlx;    /* wr_qf_dlx_t */
    uint16_t tag_len;
    uint32_t tag_off; /* in the list's tag arena: wr_qfifo_effect_tag */
    uint32_t size;
    uint32_t count; /* x-delivery-count */
    uint64_t owner, id, index, seq;
} wr_qfifo_effect_t;

/* Effects appended by wr_qfifo_apply; reuse one list (wr_qfifo_effects_reset). */
typedef struct {
    wr_qfifo_effect_t *v;
    size_t n, cap;
    wr_buf_t tags;
    bool oom;
} wr_qfifo_effects_t;

#define WR_QFIFO_EFFECTS_INIT                                                                                \
    {                                                                                                        \
        NULL, 0, 0, WR_BUF_INIT, false                                                                       \
    }
void wr_qfifo_effects_reset(wr_qfifo_effects_t *e);
void wr_qfifo_effects_free(wr_qfifo_effects_t *e);
/* The consumer tag of a DELIVER, CANCEL or ACTIVE effect, borrowed from e. */
wr_bytes_t wr_qfifo_effect_tag(const wr_qfifo_effects_t *e, const wr_qfifo_effect_t *f);

/*
 * A new empty machine with the default policy. release_every: a RELEASE
 * effect at least every that many applied commands (0: 4096), and whenever
 * the queue holds no message. NULL on allocation failure.
 */
wr_qfifo_t *wr_qfifo_new(uint32_t release_every);
void wr_qfifo_free(wr_qfifo_t *q); /* NULL is a no-op */

/*
 * Applies the command committed at log index with the leader's time_ms (from
 * the entry, never the local clock), appending its effects to fx. Returns
 * WR_OK; WR_EEXIST for a duplicate enqueue (same publisher, sequence not
 * above the last applied: nothing happens, no confirm); WR_AGAIN for an
 * enqueue out of sequence (a publisher's sequences go 1, 2, 3...; one past
 * a gap is not enqueued and gives no effect: the publisher sends the
 * missing ones and then this one again, so its order holds); WR_EFULL for an
 * enqueue refused by reject-publish (a REJECT effect; the sequence counts
 * as used); WR_ENOENT for a
 * command naming no known consumer (nothing happens); WR_ENOMEM (fatal for
 * this replica: the state may be partly applied). *n (may be NULL) is the
 * number of messages PURGE removed, 1 when DEQUEUE got a message, else 0.
 */
int wr_qfifo_apply(wr_qfifo_t *q, uint64_t index, uint64_t time_ms, const wr_qfifo_cmd_t *cmd,
                   wr_qfifo_effects_t *fx, uint64_t *n);

/* Counters for the queue type and tests. */
typedef struct {
    uint64_t ready, ready_bytes; /* waiting for a consumer */
    uint64_t checked_out;        /* delivered, unsettled */
    uint64_t dlx_pending;        /* at-least-once dead letters not yet confirmed */
    uint64_t consumers, publishers;
    uint64_t tagged;      /* consumers with a tag: basic.consume's (a cancelled one still holding
                             deliveries included, as RabbitMQ counts it), not the broker's basic.get ones */
    uint64_t applied;     /* last applied index */
    uint64_t expires_ms;  /* x-expires in force (EXPIRES), 0: none */
    uint64_t last_active; /* leader ms of the last use x-expires counts from */
} wr_qfifo_info_t;
void wr_qfifo_info(const wr_qfifo_t *q, wr_qfifo_info_t *out);

/* The last sequence applied for publisher (0: none), so a new leader can confirm resends it dropped. */
uint64_t wr_qfifo_publisher_seq(const wr_qfifo_t *q, uint64_t publisher);

/* The log index of delivery id held by consumer (owner, tag); 0 when it holds no such delivery. */
uint64_t wr_qfifo_held_index(const wr_qfifo_t *q, uint64_t owner, wr_bytes_t tag, uint64_t id);

/*
 * Calls fn for every log index the state still needs (ready, checked out,
 * awaiting a dead-letter confirm), in no particular order: the driver keeps
 * those entries and may drop every other one up to the snapshot point.
 */
void wr_qfifo_live_foreach(const wr_qfifo_t *q, void (*fn)(void *ud, uint64_t index), void *ud);
/* Calls fn for every at-least-once dead letter awaiting DLX_SETTLE, oldest
 * first, with its dead-letter id, log index and reason: a new leader
 * publishes them again. fn must not change q. */
typedef void (*wr_qfifo_dlx_fn)(void *ud, uint64_t id, uint64_t index, wr_qf_reason_t why);
void wr_qfifo_dlx_foreach(const wr_qfifo_t *q, wr_qfifo_dlx_fn fn, void *ud);
/* Calls fn for every consumer's owner, in registration order (an owner with
 * several consumers comes as often): the driver proposes DOWN for owners
 * whose node is gone. */
void wr_qfifo_owners_foreach(const wr_qfifo_t *q, void (*fn)(void *ud, uint64_t owner), void *ud);
/* The smallest live index, 0 when none. */
uint64_t wr_qfifo_min_live(const wr_qfifo_t *q);
/* Bytes of heap the state uses (message records, consumers, publishers). */
size_t wr_qfifo_mem(const wr_qfifo_t *q);

/* Appends the whole state (including the live-index set) to out; canonical. false on allocation failure. */
bool wr_qfifo_snapshot_put(const wr_qfifo_t *q, wr_buf_t *out);
/*
 * A machine from a snapshot's bytes: WR_OK (*out owned by the caller),
 * WR_ESYNTAX (malformed: truncated, trailing bytes, unsorted ids, bad enum)
 * or WR_ENOMEM. Saving the result gives the same bytes back.
 */
int wr_qfifo_snapshot_load(const uint8_t *data, size_t len, wr_qfifo_t **out);

#endif
