/* SPDX-License-Identifier: MIT */
/*
 * The wire codec of the messages between a queue's home node and the nodes
 * that use it (remote.h): APP messages of kinds WR_PEER_APP_QUEUE_FIRST..
 * on the peer links. Pure: no I/O, no allocation beyond the output buffer;
 * decoded strings and bodies borrow from the input. docs/CLUSTERING.md
 * lists the formats.
 */
#ifndef WR_BROKER_CLUSTER_REMOTE_WIRE_H
#define WR_BROKER_CLUSTER_REMOTE_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/cluster/link.h"
#include "core/buf.h"
#include "core/bytes.h"

/* The kinds, in the queue range of link.h. */
typedef enum {
    WR_REMOTE_PUBLISH = WR_PEER_APP_QUEUE_FIRST, /* user -> home: a message for a queue */
    WR_REMOTE_CONFIRM,                           /* home -> user: a publish with a seq is safe (or lost) */
    WR_REMOTE_CONSUME,                           /* user -> home: attach a consumer */
    WR_REMOTE_CONSUME_OK,                        /* home -> user: the consume's outcome */
    WR_REMOTE_CANCEL,                            /* user -> home: the consumer is cancelled */
    WR_REMOTE_CANCELLED,                         /* home -> user: the queue cancelled it (deleted) */
    WR_REMOTE_DELIVER,                           /* home -> user: a delivery to a consumer */
    WR_REMOTE_SETTLE,                            /* user -> home: ack, requeue or discard */
    WR_REMOTE_CREDIT,                            /* user -> home: more deliveries may come */
    WR_REMOTE_PURGE,                             /* user -> home: drop the ready messages */
    WR_REMOTE_GET,                               /* user -> home: basic.get */
    WR_REMOTE_GET_OK,                            /* home -> user: its answer */
    WR_REMOTE_PURGE_OK,                          /* home -> user: what a PURGE dropped */
} wr_remote_kind_t;
#define WR_REMOTE_KIND_LAST WR_REMOTE_PURGE_OK

/* CONFIRM status. */
enum { WR_REMOTE_ACK = 0, WR_REMOTE_NACK = 1 };
/* CONSUME_OK status: as wr_queue_consume answered at the home. */
enum { WR_REMOTE_OK = 0, WR_REMOTE_NOT_FOUND = 1, WR_REMOTE_IN_USE = 2, WR_REMOTE_FAILED = 3 };
#define WR_REMOTE_STATUS_LAST WR_REMOTE_FAILED
/* GET_OK status: OK (a message), EMPTY, NOT_FOUND (no such queue) or DOWN
 * (the queue cannot answer now: a quorum queue without a leader).
 * PURGE_OK status: OK, NOT_FOUND or DOWN (a quorum queue that could not
 * commit the purge). */
#define WR_REMOTE_EMPTY           2
#define WR_REMOTE_DOWN            3
#define WR_REMOTE_GET_STATUS_LAST WR_REMOTE_DOWN
/* flags: CONSUME, GET */
#define WR_REMOTE_NO_ACK    0x01u
#define WR_REMOTE_EXCLUSIVE 0x02u
/* flags: DELIVER, GET_OK */
#define WR_REMOTE_REDELIVERED 0x01u
/* flags: SETTLE (how is a wr_settle_t) */
#define WR_REMOTE_MULTIPLE 0x01u

/*
 * One message; which fields a kind carries (others are zero after a
 * decode and ignored by an encode):
 *   PUBLISH    id (publish seq, 0: no confirm), vhost, queue, exchange, routing_key, header, body
 *   CONFIRM    id (seq), status (ACK/NACK)
 *   CONSUME    id (consumer), vhost, queue, prefetch, flags, priority, credit, args
 *   CONSUME_OK id, status
 *   CANCEL     id
 *   CANCELLED  id
 *   DELIVER    id, tag (delivery id), flags, exchange, routing_key, header, body
 *   SETTLE     id, tag, how (wr_settle_t), flags
 *   CREDIT     id, credit
 *   PURGE      tag (request id), vhost, queue
 *   GET        id (the proxy's getter), tag (request id), vhost, queue, flags
 *   GET_OK     id, tag, status (OK/NOT_FOUND/EMPTY), delivery (its delivery id,
 *              0 unless OK), count (messages left), flags, exchange,
 *              routing_key, header, body
 *   PURGE_OK   tag, status (OK/NOT_FOUND/DOWN), count (messages dropped)
 * Consumer ids are never 0; vhost and queue names never empty.
 */
typedef struct {
    uint8_t kind;
    uint8_t status;
    uint8_t flags;
    uint8_t how;
    uint16_t prefetch;
    int32_t priority;
    uint32_t credit;
    uint64_t id;
    uint64_t tag;
    uint64_t delivery;
    uint32_t count;
    wr_bytes_t vhost, queue, exchange, routing_key, header, args, body;
} wr_remote_msg_t;

/*
 * Appends m's body without its `body` field (b is not reset): a PUBLISH or
 * DELIVER body is the message body itself, sent as a second part of the APP
 * message so it is not copied here. False on out-of-memory, or when m does
 * not fit its format (a name over 255 bytes, an unknown kind).
 */
bool wr_remote_wire_encode(wr_buf_t *b, const wr_remote_msg_t *m);

/*
 * Decodes an APP body of `kind` into *m (borrowing from body). WR_OK;
 * WR_EUNKNOWN for a kind outside the queue range's messages; WR_ESYNTAX for
 * a truncated body, trailing bytes, an empty name, a zero consumer id, or a
 * status, how or flag value the kind does not have.
 */
int wr_remote_wire_decode(uint8_t kind, wr_bytes_t body, wr_remote_msg_t *m);

#endif
