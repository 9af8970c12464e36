/* SPDX-License-Identifier: MIT */
/*
 * The one server object: the event loop, the configuration, listeners, the
 * vhosts and the live connections. Created by main.c. It is the one place
 * that wires modules together: each gets what it needs at creation (the
 * *_env_t structs of vhost, amqp and mgmt) and reports upward through
 * callbacks; no module looks anything up through the server.
 */
#ifndef WR_BROKER_SERVER_H
#define WR_BROKER_SERVER_H

#include "broker/config/config.h"
#include "broker/mgmt/mgmt_env.h"

typedef struct wr_server_s wr_server_t;
typedef struct wr_tls_s wr_tls_t;

/* Takes ownership of cfg and of tls (the context of the TLS listeners and
 * of an HTTPS management API, NULL when there are none). NULL on failure (logged). */
wr_server_t *wr_server_new(wr_config_t *cfg, wr_tls_t *tls);
/* Binds the management and metrics ports, then the AMQP listeners; WR_OK or
 * WR_EIO (logged). */
int wr_server_listen(wr_server_t *srv);
/* Runs the loop until SIGTERM/SIGINT, then closes clients with 320. */
int wr_server_run(wr_server_t *srv);
void wr_server_free(wr_server_t *srv);

/* What the management side works with: for main.c's definitions load at
 * start-up and the fuzz harnesses that drive the management API. */
const wr_mgmt_env_t *wr_server_mgmt_env(const wr_server_t *srv);

#endif
