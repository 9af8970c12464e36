/* SPDX-License-Identifier: MIT */
/*
 * The users and permissions of a configuration (config.h) as the broker
 * runs: lookups for logins and access checks, and the changes definitions
 * imports and the management API make at run time (the loop thread only).
 * Included by config.h, so users of the configuration see these too.
 */
#ifndef WR_BROKER_USERS_H
#define WR_BROKER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

/* The user called `name` (len octets), or NULL. */
const wr_user_cfg_t *wr_config_user(const wr_config_t *cfg, const char *name, size_t len);

/* Creates or replaces a user (hash, algorithm, tags; its limits and vhosts
 * are kept); *created tells which. WR_ENOMEM. */
int wr_config_put_user(wr_config_t *cfg, const char *name, const uint8_t *hash, size_t hash_len,
                       wr_hash_alg_t alg, const char *const *tags, size_t ntags, bool *created);
/* Removes a user and its permissions, as RabbitMQ's delete_user; false when none. */
bool wr_config_delete_user(wr_config_t *cfg, const char *name);
/* Sets user's permission in vhost (replacing it in place, so connections
 * see it at once). WR_ESYNTAX with err set for a bad pattern, WR_ENOMEM. */
int wr_config_put_permission(wr_config_t *cfg, const char *user, const char *vhost,
                             const char *const pattern[WR_PERM_KINDS], bool *created, char *err,
                             size_t errlen);
/* Compiles perm->pattern into perm->re ("" is RabbitMQ's "^$"). WR_OK, or
 * WR_ESYNTAX with "<kind>: invalid regular expression ..." in err and
 * nothing left compiled. */
int wr_config_permission_compile(wr_permission_cfg_t *perm, char *err, size_t errlen);
/* Whether pattern compiles as a permission's; false with why set if not. */
bool wr_config_pattern_ok(const char *pattern, char *why, size_t n);
/* Takes user's permission in vhost away; false when it has none. */
bool wr_config_delete_permission(wr_config_t *cfg, const char *user, const char *vhost);
/* The permissions in force, one at a time: start with *i = 0; NULL at the end. */
const wr_permission_cfg_t *wr_config_permission_next(const wr_config_t *cfg, size_t *i);
/* What `user` may do in vhost `vhost` (len octets); NULL when it may not open it. */
const wr_permission_cfg_t *wr_config_permission(const wr_config_t *cfg, const char *user, const char *vhost,
                                                size_t len);

#endif
