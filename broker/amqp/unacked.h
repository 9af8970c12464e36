/* SPDX-License-Identifier: MIT */
/*
 * A channel's deliveries awaiting acknowledgement, in delivery-tag order
 * with an index by tag: ack, ack-multiple, nack and reject cost O(1)
 * amortised per delivery. Each is settled through the queue-type interface
 * (wr_queue_settle), so the channel never knows a queue's type.
 */
#ifndef WR_BROKER_UNACKED_H
#define WR_BROKER_UNACKED_H

#include <stddef.h>
#include <stdint.h>

#include "broker/queue/queue.h"

typedef struct wr_unacked_s wr_unacked_t;

wr_unacked_t *wr_unacked_new(void);
/* Requeues whatever is still pending, then frees. NULL is a no-op. */
void wr_unacked_free(wr_unacked_t *u);
/*
 * Records a delivery of m by q with token t (a copy is kept). Tags must
 * increase from one call to the next. The caller keeps its reference to m:
 * the delivery takes one of its own only when t->keep_msg. Takes references
 * of its own to q and to c (NULL for basic.get), whose window it counts.
 * WR_OK or WR_ENOMEM (then nothing is kept: the caller settles t itself).
 */
int wr_unacked_add(wr_unacked_t *u, uint64_t tag, wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t,
                   wr_consumer_t *c);
/*
 * Settles `tag`, or with `multiple` every pending tag up to it (tag 0 with
 * multiple: everything). WR_ENOENT when tag is not pending; then nothing is
 * settled. Each goes to its queue's wr_queue_settle (requeued messages go
 * back marked redelivered).
 */
int wr_unacked_settle(wr_unacked_t *u, uint64_t tag, bool multiple, wr_settle_t how);
/* Requeues every pending delivery; returns how many. */
size_t wr_unacked_requeue_all(wr_unacked_t *u);
size_t wr_unacked_count(const wr_unacked_t *u);
/*
 * The consumer timeout, checked as RabbitMQ does on the oldest pending
 * delivery only: milliseconds until it is overdue by its queue's
 * consumer_timeout (limits in force now), 0 when it is (then *timeout_ms is
 * that timeout, for the error text), UINT64_MAX when nothing is pending or
 * its queue has no timeout. On the queue hooks' clock (0 without hooks).
 */
uint64_t wr_unacked_overdue_in(const wr_unacked_t *u, int64_t *timeout_ms);
/* Milliseconds since the oldest pending delivery was made, -1 when none. */
int64_t wr_unacked_oldest_age(const wr_unacked_t *u);
/* Pending deliveries that went to consumers (not basic.get): the channel's
 * global prefetch counts these. */
size_t wr_unacked_consumer_count(const wr_unacked_t *u);

#endif
