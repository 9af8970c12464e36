/* SPDX-License-Identifier: MIT */
/*
 * The basic and confirm classes on a channel: QoS, consumers and their
 * deliveries, basic.get, acks, nacks, rejects, recover, routing of published
 * messages, mandatory returns and publisher confirms.
 */
#ifndef WR_BROKER_HANDLE_BASIC_H
#define WR_BROKER_HANDLE_BASIC_H

#include <stdbool.h>

#include "broker/amqp/channel.h"
#include "broker/vhost/exchange.h"
#include "broker/base/message.h"
#include "broker/base/confirm.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/* As wr_handle_exchange, for basic-class methods without content and for
 * confirm.select. */
bool wr_handle_basic(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err);
/*
 * A basic.publish whose content is complete (the method's fields are kept in
 * the channel). Takes ownership of msg. False with *err on an AMQP error.
 */
bool wr_handle_basic_publish(wr_channel_t *ch, wr_message_t *msg, wr_amqp_error_t *err);
/*
 * Routes m (checked, as published) from x and appends it to the queues it
 * reaches: its routing key and CC/BCC keys, alternate exchanges, direct
 * replies; consumers see it without BCC. Unroutable and mandatory: a
 * basic.return. conf (may be NULL) waits for durable queues and fails when a
 * queue refuses m. False on ENOMEM. Used by publishes and tx.commit.
 */
bool wr_handle_basic_route(wr_channel_t *ch, wr_exchange_t *x, wr_message_t *m, bool mandatory,
                           wr_confirm_t *conf);

#endif
