/* SPDX-License-Identifier: MIT */
/*
 * Permission checks: may this connection's user configure, write or read a
 * named exchange or queue in its vhost? The rules are RabbitMQ's
 * (rabbit_auth_backend_internal, rabbit_access_control): the user's
 * regular expression for that kind of access must match somewhere in the
 * name, an empty expression matches only the empty name, and the default
 * exchange is checked under the name "amq.default". The method handlers call
 * these at the points rabbit_channel calls check_*_permitted.
 */
#ifndef WR_BROKER_ACCESS_H
#define WR_BROKER_ACCESS_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/auth/users.h"
#include "core/bytes.h"
#include "protocol/error.h"

/* Who is asking: the user's permission in the vhost (NULL: none), both
 * names. A connection keeps one from connection.open (wr_conn_who); the
 * management API makes one per request. */
typedef struct {
    const wr_permission_cfg_t *perm;
    const char *vhost;
    const char *user;
} wr_access_who_t;

/* Whether perm grants `what` on a resource called name (a pure function of
 * the configuration, for the tests). */
bool wr_access_permitted(const wr_permission_cfg_t *perm, wr_perm_t what, wr_bytes_t name);

/*
 * The check a handler makes: true when `who` may do `what` to the exchange
 * or queue (`kind`) called name; otherwise false with err set to 403
 * ACCESS_REFUSED "access to <kind> '<name>' in vhost '<vhost>' refused for
 * user '<user>'" for `method` (a channel error).
 */
bool wr_access_check(const wr_access_who_t *who, wr_perm_t what, const char *kind, wr_bytes_t name,
                     uint32_t method, wr_amqp_error_t *err);

/*
 * RabbitMQ's extra check for a new resource whose arguments name an
 * exchange under `key` (a queue's x-dead-letter-exchange, an exchange's
 * alternate-exchange): read on the resource being declared, then write on
 * that exchange. True when args do not name one as a longstr.
 */
bool wr_access_check_arg(const wr_access_who_t *who, const char *kind, wr_bytes_t name, wr_bytes_t args,
                         const char *key, uint32_t method, wr_amqp_error_t *err);

#endif
