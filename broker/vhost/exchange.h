/* SPDX-License-Identifier: MIT */
/*
 * A broker exchange: name, type, flags, declared arguments and the router
 * holding its bindings. Publishing follows exchange-to-exchange bindings and
 * alternate exchanges; each destination also remembers which exchanges bind
 * to it, so deleting a queue or an exchange removes its bindings without
 * scanning every exchange.
 */
#ifndef WR_BROKER_EXCHANGE_H
#define WR_BROKER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/base/message.h"
#include "core/bytes.h"
#include "core/list.h"
#include "routing/router.h"

typedef struct wr_exchange_s wr_exchange_t;
typedef struct wr_vhost_s wr_vhost_t;

typedef struct {
    const wr_router_type_t *type;
    bool durable;
    bool auto_delete;
    bool internal;
    wr_bytes_t args; /* raw validated table */
} wr_exchange_opts_t;

/* refs = 1, copying name and args. NULL on ENOMEM. */
wr_exchange_t *wr_exchange_new(wr_bytes_t name, const wr_exchange_opts_t *o);
wr_exchange_t *wr_exchange_ref(wr_exchange_t *x);
/* Frees at zero; the exchange must have no bindings left. NULL is a no-op. */
void wr_exchange_unref(wr_exchange_t *x);

wr_bytes_t wr_exchange_name(const wr_exchange_t *x);
/* The default exchange or an amq.* one: declared with every vhost, so
 * neither exported in definitions nor saved in the topology. */
bool wr_exchange_is_standard(const wr_exchange_t *x);
/* The declared properties; args point into the exchange's own copy. */
const wr_exchange_opts_t *wr_exchange_opts(const wr_exchange_t *x);
/* Bindings with this exchange as source. */
size_t wr_exchange_binding_count(const wr_exchange_t *x);
/* Set once the exchange has left its vhost. */
bool wr_exchange_deleted(const wr_exchange_t *x);
void wr_exchange_mark_deleted(wr_exchange_t *x);

/*
 * Binds x to d (a queue or an exchange). WR_OK, WR_EEXIST (already bound:
 * not an error to a client), WR_ESYNTAX (headers exchange: bad x-match) or
 * WR_ENOMEM.
 */
int wr_exchange_bind(wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
/* WR_OK, or WR_ENOENT when there was no such binding. */
int wr_exchange_unbind(wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);

/* Calls fn for each binding with x as source (management API, definitions);
 * fn must not bind or unbind. */
void wr_exchange_foreach_binding(const wr_exchange_t *x, wr_binding_fn fn, void *ud);

/* Whether that exact binding exists. O(bindings of x): for rare paths only. */
bool wr_exchange_has_binding(const wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);

/* Called for every exchange that lost a binding as source. */
typedef void (*wr_exchange_lost_fn)(void *ud, wr_exchange_t *source);
/* Removes every binding to d (a queue or exchange going away). */
void wr_exchange_unbind_to(wr_dest_t d, wr_exchange_lost_fn lost, void *ud);
/* Removes every binding from x. */
void wr_exchange_unbind_from(wr_exchange_t *x);

/*
 * The full routing of a publish to x in vh (RabbitMQ's rabbit_exchange:route)
 * for each of keys (the routing key, then the CC and BCC ones): the default
 * exchange reaches the queues the keys name; any other exchange follows
 * exchange-to-exchange bindings, and one that routes to nothing at all hands
 * the message to its alternate exchange (the alternate-exchange argument,
 * else the key of the vhost's policy for it), when that exists. Each exchange is
 * visited once, so cycles end. out receives the queues and exchanges
 * reached. False on allocation failure.
 */
bool wr_exchange_route_keys(wr_vhost_t *vh, wr_exchange_t *x, const wr_bytes_t *keys, size_t nkeys,
                            wr_message_t *m, wr_dest_set_t *out);

#endif
