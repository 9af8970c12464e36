/* SPDX-License-Identifier: MIT */
/*
 * The direct exchange type: a hash map from routing key to the bindings with
 * that key, so routing is one lookup.
 */
#ifndef WR_ROUTING_DIRECT_H
#define WR_ROUTING_DIRECT_H

#include "routing/router_internal.h"

extern const wr_router_type_t wr_direct_type;

#endif
