/* SPDX-License-Identifier: MIT */
/*
 * The headers exchange type: bindings match on the message's headers table
 * according to x-match (all, any, all-with-x, any-with-x), as RabbitMQ does.
 */
#ifndef WR_ROUTING_HEADERS_H
#define WR_ROUTING_HEADERS_H

#include "routing/router_internal.h"

extern const wr_router_type_t wr_headers_type;

#endif
