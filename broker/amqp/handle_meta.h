/* SPDX-License-Identifier: MIT */
/*
 * A channel method that changes definitions in cluster mode: the handler has
 * checked what it can locally and built the command; this proposes it to the
 * metadata group, parks the connection (its next frames wait) and, once this
 * node has applied the command, answers from the apply's result: the method's
 * -ok, or the channel or connection error the result names.
 */
#ifndef WR_BROKER_HANDLE_META_H
#define WR_BROKER_HANDLE_META_H

#include <jansson.h>
#include <stdbool.h>

#include "broker/amqp/channel.h"
#include "protocol/error.h"
#include "protocol/methods.h"

/* The metadata group's service in cluster mode, NULL on a single node. */
struct wr_meta_s *wr_handle_meta(const wr_channel_t *ch);

/*
 * Proposes cmd (takes ownership) for method (WR_EXCHANGE_DECLARE,
 * WR_QUEUE_BIND, ...) on ch; with nowait no -ok is sent. For queue.declare
 * name is the queue's (its declare-ok names it). True once proposed (the
 * reply comes later); false with a 541 in *err when memory ran out.
 */
bool wr_handle_meta_propose(wr_channel_t *ch, json_t *cmd, uint32_t method, bool nowait, wr_bytes_t name,
                            wr_amqp_error_t *err);

#endif
