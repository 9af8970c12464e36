/* SPDX-License-Identifier: MIT */
/*
 * The broker's configuration, read from one JSON file (jansson). The struct is
 * filled once at start-up and read-only afterwards. Unknown keys and wrong
 * types are errors that name the file and the key.
 */
#ifndef WR_BROKER_CONFIG_H
#define WR_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *address;
    uint16_t port;
} wr_listener_cfg_t;

typedef struct {
    char *name;
    char *password;
    char **vhosts; /* vhosts this user may open */
    size_t nvhosts;
} wr_user_cfg_t;

typedef struct {
    wr_listener_cfg_t *listeners;
    size_t nlisteners;

    uint32_t frame_max;        /* default 131072 */
    uint16_t channel_max;      /* default 2047 */
    uint16_t heartbeat;        /* seconds, default 60 */
    uint64_t max_message_size; /* bytes, default 134217728 as RabbitMQ */

    wr_user_cfg_t *users;      /* default: guest/guest on vhost "/" */
    size_t nusers;
    char **loopback_users;     /* default: "guest" */
    size_t nloopback_users;
    char **vhosts;             /* default: "/" */
    size_t nvhosts;

    int log_level;             /* WR_LOG_*, default info */
} wr_config_t;

/* Defaults as documented above. Returns NULL on allocation failure. */
wr_config_t *wr_config_new_default(void);
/*
 * Loads `path` over the defaults. On failure returns NULL and writes one line
 * per problem ("etc/warren.json: limits.frame_max: expected an integer") to
 * err (NUL-terminated, truncated to errlen).
 */
wr_config_t *wr_config_load(const char *path, char *err, size_t errlen);
void wr_config_free(wr_config_t *cfg); /* NULL is a no-op */
const wr_user_cfg_t *wr_config_user(const wr_config_t *cfg, const char *name, size_t len);

#endif
