/* SPDX-License-Identifier: MIT */
/*
 * The management API's exchanges, queues and bindings (list, show, declare,
 * delete, publish, get, purge), and the declare and bind operations it
 * shares with the definitions import. Every change goes through the same
 * vhost functions and RabbitMQ checks as the AMQP handlers.
 */
#ifndef WR_BROKER_MGMT_TOPO_H
#define WR_BROKER_MGMT_TOPO_H

#include <stdbool.h>

#include "broker/mgmt/mgmt_internal.h"
#include "broker/vhost/vhost.h"

/* /api/exchanges..., /api/queues..., /api/bindings... */
void wr_mgmt_topo_exchanges(wr_mgmt_req_t *r);
void wr_mgmt_topo_queues(wr_mgmt_req_t *r);
void wr_mgmt_topo_bindings(wr_mgmt_req_t *r);

/*
 * exchange.declare / queue.declare without a channel: a new object is
 * checked and created (*created = true), an existing one must be equivalent.
 * args is a validated table. False with an AMQP error in *err.
 */
bool wr_mgmt_topo_declare_exchange(wr_vhost_t *vh, wr_bytes_t name, const char *type, bool durable,
                                   bool auto_delete, bool internal, wr_bytes_t args, bool *created,
                                   wr_amqp_error_t *err);
bool wr_mgmt_topo_declare_queue(wr_vhost_t *vh, wr_bytes_t name, bool durable, bool auto_delete,
                                wr_bytes_t args, bool *created, wr_amqp_error_t *err);
/* queue.bind / exchange.bind: binding twice is fine. False with *err. */
bool wr_mgmt_topo_bind(wr_vhost_t *vh, wr_bytes_t source, bool dest_is_queue, wr_bytes_t dest, wr_bytes_t key,
                       wr_bytes_t args, wr_amqp_error_t *err);

/* One binding as the API lists it. */
typedef void (*wr_mgmt_binding_fn)(void *ud, wr_bytes_t source, wr_bytes_t dest, bool dest_is_queue,
                                   wr_bytes_t key, wr_bytes_t args);
/* Every binding of vh; with `implicit`, first the default exchange's binding
 * to each queue (routing key = queue name), which RabbitMQ lists too. */
void wr_mgmt_topo_foreach_binding(const wr_vhost_t *vh, bool implicit, wr_mgmt_binding_fn fn, void *ud);

#endif
