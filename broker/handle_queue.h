/* SPDX-License-Identifier: MIT */
/*
 * The queue class on a channel: declare (server-named, passive, exclusive,
 * equivalence), bind, unbind, purge and delete, with RabbitMQ's checks and
 * reply texts.
 */
#ifndef WR_BROKER_HANDLE_QUEUE_H
#define WR_BROKER_HANDLE_QUEUE_H

#include <stdbool.h>

#include "broker/channel.h"
#include "broker/queue.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/* As wr_handle_exchange, for queue-class methods. */
bool wr_handle_queue(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err);
/* The reserved amq. prefix of a name a client chose: false with a 403. */
bool wr_handle_queue_check_name(wr_bytes_t name, wr_amqp_error_t *err);
/*
 * RabbitMQ's classic-queue validation of a new queue's arguments (also used
 * by the management API). False with a 406 in *err naming the first bad one.
 */
bool wr_handle_queue_check_args(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);
/*
 * RabbitMQ's equivalence check for redeclaring q: the flags, then the
 * arguments a classic queue cares about (exclusivity is the caller's). For
 * the management API too. False with a 406 in *err.
 */
bool wr_handle_queue_check_equivalent(const char *vhost, const wr_queue_t *q, bool durable, bool auto_delete,
                                      wr_bytes_t args, wr_amqp_error_t *err);

#endif
