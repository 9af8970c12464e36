/* SPDX-License-Identifier: MIT */
/*
 * The exchange class on a channel: declare, delete, bind and unbind, with
 * RabbitMQ's checks and reply texts.
 */
#ifndef WR_BROKER_HANDLE_EXCHANGE_H
#define WR_BROKER_HANDLE_EXCHANGE_H

#include <stdbool.h>

#include "broker/amqp/channel.h"
#include "broker/vhost/exchange.h"
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
/*
 * RabbitMQ's checks on a new exchange's name and arguments (reserved amq.
 * prefix: 403; alternate-exchange not a string: 406). Shared with the
 * management API. False with *err set.
 */
bool wr_handle_exchange_check_new(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);
/* RabbitMQ's equivalence check for redeclaring x with req (type, flags,
 * alternate-exchange), for the management API too. False with a 406. */
bool wr_handle_exchange_check_equivalent(const char *vhost, const wr_exchange_t *x,
                                         const wr_exchange_opts_t *req, wr_amqp_error_t *err);

#endif
