/* SPDX-License-Identifier: MIT */
/*
 * The classic queue type (classic.c): ready messages in memory and in the
 * queue's log, consumers in priority order, TTL, length limits, delivery
 * limit, x-expires and dead-lettering. Only the type registry (queue.c),
 * the proxy of a classic queue on another node (cluster/remote_proxy.c) and
 * the classic queue's own tests include this; everyone else goes through
 * queue.h.
 */
#ifndef WR_BROKER_CLASSIC_H
#define WR_BROKER_CLASSIC_H

#include "broker/queue/queue.h"

/* Its vtable; wr_queue_type_find("classic") returns it. */
extern const wr_queue_type_t wr_classic_queue_type;

/* What a redeclaration of a classic queue must repeat (its equiv_args),
 * NULL-terminated; a proxy of a classic queue has the same. */
extern const char *const wr_classic_equiv_args[];

/*
 * The type's validate_args (classic_args.c): RabbitMQ's classic-queue rules
 * for a new queue's arguments, in its order; false with a 406 in *err naming
 * the first bad argument, or the first argument of another queue type.
 */
bool wr_classic_validate_args(const char *vhost, wr_bytes_t name, wr_bytes_t args, wr_amqp_error_t *err);

#endif
