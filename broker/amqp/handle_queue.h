/* SPDX-License-Identifier: MIT */
/*
 * The queue class on a channel: declare (server-named, passive, exclusive,
 * equivalence), bind, unbind, purge and delete, with RabbitMQ's checks and
 * reply texts.
 */
#ifndef WR_BROKER_HANDLE_QUEUE_H
#define WR_BROKER_HANDLE_QUEUE_H

#include <stdbool.h>

#include "broker/amqp/channel.h"
#include "broker/queue/queue.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/* As wr_handle_exchange, for queue-class methods. */
bool wr_handle_queue(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err);

#endif
