/* SPDX-License-Identifier: MIT */
/*
 * The topic exchange type: binding keys are dot-separated word patterns where
 * '*' stands for exactly one word and '#' for zero or more, kept in a trie so
 * routing cost follows the words of the routing key, not the bindings.
 */
#ifndef WR_ROUTING_TOPIC_H
#define WR_ROUTING_TOPIC_H

#include <stddef.h>

#include "routing/router_internal.h"

extern const wr_router_type_t wr_topic_type;

/* Trie nodes below the root of a topic router, for tests that check pruning. */
size_t wr_topic_node_count(const wr_router_t *r);

#endif
