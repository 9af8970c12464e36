/* SPDX-License-Identifier: MIT */
/*
 * The fanout exchange type: every binding matches, key and headers ignored.
 * It keeps no index of its own and routes over the router's binding list.
 */
#ifndef WR_ROUTING_FANOUT_H
#define WR_ROUTING_FANOUT_H

#include "routing/router_internal.h"

extern const wr_router_type_t wr_fanout_type;

#endif
