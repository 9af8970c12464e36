/* SPDX-License-Identifier: MIT */
/*
 * The one server object: the event loop, the configuration, listeners, the
 * vhosts and the live connections. Created by main.c; every module reaches
 * shared state through a pointer to it, never through globals.
 */
#ifndef WR_BROKER_SERVER_H
#define WR_BROKER_SERVER_H

#include "broker/config.h"
#include "core/bytes.h"

#define WR_VERSION "0.1.0"

struct event_base;
typedef struct wr_conn_s wr_conn_t;
typedef struct wr_server_s wr_server_t;
typedef struct wr_vhost_s wr_vhost_t;

/* Takes ownership of cfg. NULL on failure (logged). */
wr_server_t *wr_server_new(wr_config_t *cfg);
/* Binds the listeners; WR_OK or WR_EIO (logged). */
int wr_server_listen(wr_server_t *srv);
/* Runs the loop until SIGTERM/SIGINT, then closes clients with 320. */
int wr_server_run(wr_server_t *srv);
void wr_server_free(wr_server_t *srv);

struct event_base *wr_server_base(wr_server_t *srv);
const wr_config_t *wr_server_config(const wr_server_t *srv);
/* NULL when the vhost does not exist. */
wr_vhost_t *wr_server_vhost(wr_server_t *srv, wr_bytes_t name);
/* For conn.c: c has finished (socket side done, channels freed); the server
 * frees it once the current callbacks have returned, never inside them. */
void wr_server_conn_done(wr_server_t *srv, wr_conn_t *c);

#endif
