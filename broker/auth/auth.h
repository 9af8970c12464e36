/* SPDX-License-Identifier: MIT */
/*
 * Credentials: RabbitMQ's salted password hashes (rabbit_password), the check
 * of a PLAIN/AMQPLAIN login against the configured users, and loopback-only
 * users. Nothing here logs, so a password cannot reach the log by way of
 * this file.
 */
#ifndef WR_BROKER_AUTH_H
#define WR_BROKER_AUTH_H

#include <stdbool.h>
#include <sys/socket.h>

#include "broker/auth/users.h"
#include "core/bytes.h"

/* "rabbit_password_hashing_sha256" (also _sha512, _md5) -> alg; false when unknown. */
bool wr_auth_hash_alg_parse(const char *name, wr_hash_alg_t *alg);
/* Digest octets of alg (32, 64, 16). */
size_t wr_auth_digest_len(wr_hash_alg_t alg);
/*
 * RabbitMQ's rabbit_password:hash: a random 4-octet salt, then
 * H(salt ++ password), into out (WR_PASSWORD_HASH_MAX octets). Returns the
 * length, 0 when the random generator or the digest failed.
 */
size_t wr_auth_hash_password(wr_hash_alg_t alg, wr_bytes_t password, uint8_t *out);
/*
 * A definitions file's "password_hash" (base64) into out
 * (WR_PASSWORD_HASH_MAX octets). WR_OK with *len set ("" decodes to an empty
 * hash, a user no password unlocks); WR_ESYNTAX when it is not base64;
 * WR_ETOOBIG when it does not hold 4 salt octets and one alg digest.
 */
int wr_auth_hash_decode(const char *b64, wr_hash_alg_t alg, uint8_t *out, size_t *len);

/*
 * The configured user when user/password match, else NULL. The work is the
 * same whether the user is unknown or the password wrong, and the comparison
 * does not depend on where the hashes differ.
 */
const wr_user_cfg_t *wr_auth_check(const wr_users_t *db, wr_bytes_t user, wr_bytes_t password);

/* 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8, as RabbitMQ's is_loopback. */
bool wr_auth_is_loopback(const struct sockaddr *peer);

/* Whether `user` is listed in loopback_users (may connect only via loopback). */
bool wr_auth_loopback_only(const wr_users_t *db, const char *user);

#endif
