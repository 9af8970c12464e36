/* SPDX-License-Identifier: MIT */
/*
 * Authentication for connection.start-ok: the SASL PLAIN and AMQPLAIN
 * response parsers (bounds-checked, borrowing from the response), credential
 * checks against the configured users, loopback-only users and vhost access.
 * Nothing here logs, so a password cannot reach the log by way of this file.
 */
#ifndef WR_BROKER_AUTH_H
#define WR_BROKER_AUTH_H

#include <stdbool.h>
#include <sys/socket.h>

#include "broker/config.h"
#include "core/bytes.h"

/*
 * SASL PLAIN as RabbitMQ reads it: "\0user\0password". An authorization
 * identity before the first NUL is refused (warren, like RabbitMQ, cannot act
 * on behalf of another user), as is anything after the password.
 * WR_OK with *user and *password pointing into response, or WR_ESYNTAX.
 */
int wr_auth_plain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password);

/*
 * AMQPLAIN: a field table without its length prefix, holding LOGIN and
 * PASSWORD as longstr values. WR_OK; WR_ESYNTAX for a malformed table;
 * WR_ENOENT when LOGIN or PASSWORD is missing; WR_EUNKNOWN when either is not
 * a longstr.
 */
int wr_auth_amqplain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password);

/*
 * The configured user when user/password match, else NULL. The comparison
 * takes the same time whether the user is unknown or the password wrong, and
 * does not depend on where the passwords differ.
 */
const wr_user_cfg_t *wr_auth_check(const wr_config_t *cfg, wr_bytes_t user, wr_bytes_t password);

/* 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8, as RabbitMQ's is_loopback. */
bool wr_auth_is_loopback(const struct sockaddr *peer);

/* Whether `user` is listed in loopback_users (may connect only via loopback). */
bool wr_auth_loopback_only(const wr_config_t *cfg, const char *user);

/* Whether the user's configured vhosts include `vhost`. */
bool wr_auth_vhost_allowed(const wr_user_cfg_t *user, wr_bytes_t vhost);

#endif
