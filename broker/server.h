/* SPDX-License-Identifier: MIT */
/*
 * The one server object: the event loop, the configuration, listeners, the
 * vhosts and the live connections. Created by main.c; every module reaches
 * shared state through a pointer to it, never through globals.
 */
#ifndef WR_BROKER_SERVER_H
#define WR_BROKER_SERVER_H

#include "broker/config/config.h"
#include "core/bytes.h"
#include "core/list.h"
#include "core/map.h"

#define WR_VERSION "0.1.0"

struct event_base;

/* Event priorities: everything runs at WR_PRIO_DEFAULT (libevent's default
 * with WR_PRIO_LEVELS levels) except what should wait until an iteration of
 * the loop has nothing else to run. */
#define WR_PRIO_LEVELS  3
#define WR_PRIO_DEFAULT 1
#define WR_PRIO_IDLE    2
typedef struct wr_conn_s wr_conn_t;
typedef struct wr_server_s wr_server_t;
typedef struct wr_vhost_s wr_vhost_t;
typedef struct wr_tls_s wr_tls_t;

/* Takes ownership of cfg and of tls (the TLS listeners' context, NULL when
 * there are none). NULL on failure (logged). */
wr_server_t *wr_server_new(wr_config_t *cfg, wr_tls_t *tls);
/* Binds the management and metrics ports, then the AMQP listeners; WR_OK or
 * WR_EIO (logged). */
int wr_server_listen(wr_server_t *srv);
/* Runs the loop until SIGTERM/SIGINT, then closes clients with 320. */
int wr_server_run(wr_server_t *srv);
void wr_server_free(wr_server_t *srv);

struct event_base *wr_server_base(wr_server_t *srv);
const wr_config_t *wr_server_config(const wr_server_t *srv);
/* The same, for the run-time changes to users and permissions (config.h). */
wr_config_t *wr_server_config_mut(wr_server_t *srv);
/* NULL when the vhost does not exist. */
wr_vhost_t *wr_server_vhost(wr_server_t *srv, wr_bytes_t name);
/* The store and durable topology (broker/durable.h); NULL before it is opened. */
struct wr_durable_s *wr_server_durable(wr_server_t *srv);
/* The policies (broker/policy.h) and the flow alarms (broker/alarm.h). */
struct wr_policies_s *wr_server_policies(wr_server_t *srv);
struct wr_alarms_s *wr_server_alarms(wr_server_t *srv);
/* The direct reply-to names (broker/reply_to.h), shared by every vhost;
 * for wiring channels and vhosts when they are created. */
struct wr_reply_to_s *wr_server_reply_to(wr_server_t *srv);
/* For the management API: the live connections (wr_conn_link nodes) and
 * the vhosts (name -> wr_vhost_t), read-only. */
wr_list_t *wr_server_conns(wr_server_t *srv);
const wr_map_t *wr_server_vhosts(const wr_server_t *srv);
/* Creates vhost `name` (definitions import). WR_OK, WR_EEXIST or WR_ENOMEM. */
int wr_server_vhost_add(wr_server_t *srv, const char *name);
/*
 * For conn.c at connection.open: counts one more connection of `user`.
 * WR_OK; WR_ETOOBIG when the user's limit (stored in *limit) is reached;
 * WR_ENOMEM. wr_server_user_conn_remove undoes one count.
 */
int wr_server_user_conn_add(wr_server_t *srv, const char *user, int64_t *limit);
void wr_server_user_conn_remove(wr_server_t *srv, const char *user);
/* For conn.c: c has finished (socket side done, channels freed); the server
 * frees it once the current callbacks have returned, never inside them. */
void wr_server_conn_done(wr_server_t *srv, wr_conn_t *c);

#endif
