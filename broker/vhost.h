/* SPDX-License-Identifier: MIT */
/*
 * A virtual host: its exchanges (with amq.* and the default exchange
 * pre-declared) and its queues. Exchange and queue objects live in
 * exchange.c and queue.c; this file owns the name tables.
 */
#ifndef WR_BROKER_VHOST_H
#define WR_BROKER_VHOST_H

#include "broker/conn.h"
#include "broker/server.h"

/* A vhost with the standard exchanges declared. NULL on ENOMEM. */
wr_vhost_t *wr_vhost_new(wr_server_t *srv, const char *name);
void wr_vhost_free(wr_vhost_t *vh); /* NULL is a no-op */
const char *wr_vhost_name(const wr_vhost_t *vh);
/* The connection is gone: delete the exclusive queues it owned. Called after
 * its channels have been freed. */
void wr_vhost_conn_closed(wr_vhost_t *vh, wr_conn_t *c);

#endif
