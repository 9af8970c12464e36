/* SPDX-License-Identifier: MIT */
/*
 * Dead-lettering as RabbitMQ 3.10 does it: the copy of a message that leaves
 * a queue for its dead-letter exchange, with the x-death history and the
 * x-first-death-* headers, and the cycle check that drops a copy about to
 * reach a queue it already died in without a client's reject on the way.
 * Nothing here routes or publishes: vhost.c does, outside queue code.
 */
#ifndef WR_BROKER_DEADLETTER_H
#define WR_BROKER_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/base/message.h"
#include "broker/queue/queue.h"
#include "core/bytes.h"

typedef struct {
    wr_bytes_t queue;      /* the queue the message left */
    wr_dl_reason_t reason; /* why */
    wr_bytes_t dlx;        /* its dead-letter exchange ("" is the default one) */
    bool has_routing_key;  /* x-dead-letter-routing-key is set... */
    wr_bytes_t routing_key;
    uint64_t time; /* wall-clock seconds, the x-death "time" */
} wr_deadletter_t;

/* "rejected", "expired", "maxlen" or "delivery_limit". */
const char *wr_deadletter_reason(wr_dl_reason_t why);

/*
 * A new message (refs = 1) for d->dlx: its routing key is d's routing key
 * when set (the CC header is then removed), else m's own (m's CC header
 * stays and routes it too). The headers gain or update x-death (an entry per
 * queue and reason, most recent first, counted) and on the first death the
 * x-first-death-reason/-queue/-exchange headers, and are then sorted by key
 * as RabbitMQ leaves them; the expiration property is removed (kept in the
 * entry as original-expiration). Every other property and the body are
 * copied unchanged. NULL on ENOMEM or when m's content header cannot be
 * decoded.
 */
wr_message_t *wr_deadletter_copy(wr_message_t *m, const wr_deadletter_t *d);

/*
 * The keys the copy is routed with (RabbitMQ's routing_keys of the
 * dead-lettered message): its routing key, then the longstr elements of its
 * CC header (present only without x-dead-letter-routing-key). *keys is
 * allocated; the caller frees it. False on ENOMEM.
 */
bool wr_deadletter_routing_keys(wr_message_t *copy, wr_bytes_t **keys, size_t *n);

/*
 * Whether the dead-lettered copy (from wr_deadletter_copy) must not reach
 * `queue`: it already died there, and no death since, that one included,
 * was a rejection by a client. Copies dead-lettered as rejected are never
 * dropped (the caller does not ask).
 */
bool wr_deadletter_is_cycle(wr_message_t *copy, wr_bytes_t queue);

#endif
