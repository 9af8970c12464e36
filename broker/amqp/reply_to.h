/* SPDX-License-Identifier: MIT */
/*
 * Direct reply-to: a channel consumes (no-ack) from the pseudo-queue
 * amq.rabbitmq.reply-to; its publishes with that reply_to get a name of
 * their own instead, amq.rabbitmq.reply-to.<random>, and a message published
 * to the default exchange with that name as routing key goes straight to the
 * consumer, without a queue. The names are looked up in one table for the
 * whole server (a reply may come from any connection).
 */
#ifndef WR_BROKER_REPLY_TO_H
#define WR_BROKER_REPLY_TO_H

#include <stdbool.h>

#include "broker/amqp/channel.h"
#include "broker/base/message.h"
#include "core/bytes.h"
#include "protocol/error.h"
#include "protocol/methods.h"

#define WR_REPLY_TO        "amq.rabbitmq.reply-to"
#define WR_REPLY_TO_PREFIX "amq.rabbitmq.reply-to."
/* Room for a reply name: the prefix and 22 random characters. */
#define WR_REPLY_TO_NAME_MAX 64

/* The table from reply names to channels: one per server, created by it and
 * handed to each channel (wr_channel_t.reply_to) and vhost. */
typedef struct wr_reply_to_s wr_reply_to_t;

/* An empty table; NULL on ENOMEM. */
wr_reply_to_t *wr_reply_to_new(void);
/* Frees rt, after every channel that used it (their reply names must be
 * cancelled first). NULL is a no-op. */
void wr_reply_to_free(wr_reply_to_t *rt);
/*
 * basic.consume from the pseudo-queue: RabbitMQ's checks (tag reuse, no-ack
 * only, one per channel), then consume-ok. False with *err.
 */
bool wr_reply_to_consume(wr_channel_t *ch, const wr_basic_consume_t *b, wr_amqp_error_t *err);
/* queue.declare (passive or not) of the pseudo-queue: declare-ok with no
 * messages and one consumer, as RabbitMQ answers. False, doing nothing, for
 * any other queue. */
bool wr_reply_to_declare(wr_channel_t *ch, const wr_queue_declare_t *d);
/* The channel's reply consumer goes (basic.cancel, channel closed); its name
 * no longer routes. No-op without one. */
void wr_reply_to_cancel(wr_channel_t *ch);
/* The channel's reply name; empty without a reply consumer. */
wr_bytes_t wr_reply_to_name(const wr_channel_t *ch);
/* Delivers m to the reply consumer named key in rt, if there is one (and
 * its channel is open). */
void wr_reply_to_deliver(wr_reply_to_t *rt, wr_bytes_t key, wr_message_t *m);

#endif
