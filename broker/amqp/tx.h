/* SPDX-License-Identifier: MIT */
/*
 * Transactions (the tx class): after tx.select a channel buffers its
 * publishes, acks, nacks and rejects until tx.commit applies them in order or
 * tx.rollback discards them. tx.commit-ok goes out once every persistent
 * message of the commit is on disk in its durable queues.
 */
#ifndef WR_BROKER_TX_H
#define WR_BROKER_TX_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/amqp/channel.h"
#include "broker/vhost/exchange.h"
#include "broker/base/message.h"
#include "broker/queue/queue.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/* A transaction holds at most this many uncommitted publishes and this many
 * body bytes (RabbitMQ has no limit; this bounds a client's memory use). */
#define WR_TX_MAX_PUBLISHES 65536
#define WR_TX_MAX_BYTES     (256ULL * 1024 * 1024)

typedef struct wr_tx_s wr_tx_t;

/* tx.select, tx.commit and tx.rollback, with RabbitMQ's errors. */
bool wr_handle_tx(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err);
/*
 * Buffers a publish of m (a reference taken) to x (likewise) until commit.
 * False with *err past the limits above or out of memory.
 */
bool wr_tx_publish(wr_tx_t *tx, wr_exchange_t *x, wr_message_t *m, bool mandatory, wr_amqp_error_t *err);
/* Buffers an ack, nack or reject of `method` until commit; a tag the channel
 * never delivered is refused at once (406, as RabbitMQ). */
bool wr_tx_settle(wr_tx_t *tx, uint32_t method, uint64_t tag, bool multiple, wr_settle_t how,
                  wr_amqp_error_t *err);
/* Discards the open transaction; commits still waiting for the disk finish
 * without a reply. NULL is a no-op. */
void wr_tx_free(wr_tx_t *tx);

#endif
