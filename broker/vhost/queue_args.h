/* SPDX-License-Identifier: MIT */
/*
 * The rules of a queue declaration, in one place for every way to declare
 * (AMQP queue.declare, the management API, definitions): the reserved name
 * prefix, the queue type named by x-queue-type, whose rules validate the x-
 * arguments and say which a redeclaration must repeat, and the equivalence
 * checks, with RabbitMQ's texts. Pure: it reads argument tables and fills a
 * wr_amqp_error_t, nothing else.
 */
#ifndef WR_BROKER_QUEUE_ARGS_H
#define WR_BROKER_QUEUE_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/queue/queue.h"
#include "core/bytes.h"
#include "protocol/error.h"

/* What a redeclaration must repeat of a queue: its flags and its arguments
 * (exclusivity is the caller's, as it depends on the connection). */
typedef struct {
    bool durable;
    bool auto_delete;
    wr_bytes_t args; /* an AMQP field table, borrowed */
} wr_queue_args_decl_t;

/* The reserved amq. prefix of a name a client chose: false with a 403 in
 * *err. */
bool wr_queue_args_check_name(wr_bytes_t name, wr_amqp_error_t *err);
/*
 * rabbit_channel's type check of x-dead-letter-exchange on queue.declare,
 * which comes before the permission check on the dead-letter exchange and
 * the argument rules: false with a 406 "invalid type '<type>' for arg ..."
 * unless it is absent or a longstr.
 */
bool wr_queue_args_check_dlx_type(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);
/*
 * The type a queue with these arguments has: the one x-queue-type names, or
 * the classic type when it is absent or names a type warren has not got.
 */
const wr_queue_type_t *wr_queue_args_type(wr_bytes_t args);
/*
 * The validation of a new queue's arguments by its type (for the classic
 * type RabbitMQ's, in its order): false with a 406 in *err naming the first
 * bad argument, or the first argument of another queue type. vhost and name
 * only go in the text.
 */
bool wr_queue_args_validate(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);
/*
 * RabbitMQ's equivalence check for redeclaring queue `name` (now `cur`) as
 * `req`: the flags, then the arguments its type lists (equiv_args). False
 * with a 406 in *err.
 */
bool wr_queue_args_check_equivalent(const char *vhost, wr_bytes_t name, const wr_queue_args_decl_t *cur,
                                    const wr_queue_args_decl_t *req, wr_amqp_error_t *err);
/*
 * 406 "inequivalent arg '<field>' for <kind> '<name>' in vhost ...: received
 * '<req>' but current is '<cur>'" when cur != req. Exchanges use it too
 * (kind "exchange", method WR_EXCHANGE_DECLARE). True when equal.
 */
bool wr_queue_args_equiv_flag(const char *vhost, wr_amqp_error_t *err, uint32_t method, const char *kind,
                              wr_bytes_t name, const char *field, bool cur, bool req);
/*
 * The same for one key of two argument tables, with RabbitMQ's rules:
 * integer types compare as one class, an absent side prints as "none", and
 * x-queue-type "classic" equals its absence. Exchanges use it too.
 */
bool wr_queue_args_equiv_arg(const char *vhost, wr_amqp_error_t *err, uint32_t method, const char *kind,
                             wr_bytes_t name, wr_bytes_t cur_args, wr_bytes_t req_args, const char *key);

#endif
