/* SPDX-License-Identifier: MIT */
/*
 * The exchange class on a channel: declare, delete, bind and unbind, with
 * RabbitMQ's checks and reply texts.
 */
#ifndef WR_BROKER_HANDLE_EXCHANGE_H
#define WR_BROKER_HANDLE_EXCHANGE_H

#include <stdbool.h>

#include "broker/channel.h"
#include "broker/exchange.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/*
 * Handles one exchange-class method (replies included). False when it failed
 * with an AMQP error, which *err describes; the caller closes the channel or
 * the connection according to its code.
 */
bool wr_handle_exchange(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err);
/*
 * RabbitMQ's validation of a new binding's arguments for the source's type
 * (headers: x-match must be all, any, all-with-x or any-with-x). Shared with
 * queue.bind. False with a 406 in *err.
 */
bool wr_handle_exchange_check_binding(const wr_exchange_t *source, wr_bytes_t args, uint32_t method,
                                      wr_amqp_error_t *err);

#endif
