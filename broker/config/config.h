/* SPDX-License-Identifier: MIT */
/*
 * The broker's configuration, read from one JSON file (jansson). The struct is
 * filled once at start-up and read-only afterwards, except for users and
 * permissions, which the loop thread changes at run time (auth/users.h). Unknown
 * keys and wrong types are errors that name the file and the key.
 */
#ifndef WR_BROKER_CONFIG_H
#define WR_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <regex.h>

#include "broker/auth/users.h"

typedef struct {
    char *address;
    uint16_t port;
} wr_listener_cfg_t;

/* The "tls" object (RabbitMQ's ssl_options names). */
typedef struct {
    char *certfile;   /* PEM certificate chain, server's first; NULL when absent */
    char *keyfile;    /* PEM private key */
    char *cacertfile; /* PEM CA bundle that client certificates must chain to */
    bool verify_peer; /* "verify": "verify_peer" (default "verify_none") */
    bool fail_if_no_peer_cert;
    int min_version; /* 0x0303 (TLS 1.2, default) or 0x0304 (TLS 1.3) */
    char *ciphers;   /* OpenSSL cipher list for TLS 1.2, NULL: tls.c's ECDHE + AEAD list */
} wr_tls_cfg_t;

typedef struct {
    wr_listener_cfg_t *listeners;
    size_t nlisteners;

    uint32_t frame_max;        /* default 131072 */
    uint16_t channel_max;      /* default 2047 */
    uint16_t heartbeat;        /* seconds, default 60 */
    uint64_t max_message_size; /* bytes, default 134217728 as RabbitMQ */
    int64_t consumer_timeout;  /* ms a delivery may wait for its ack, default 1800000; -1: none */

    wr_users_t auth; /* users and permissions; default: guest/guest on vhost "/", loopback only */
    char **vhosts;   /* default: "/" */
    size_t nvhosts;

    int log_level;  /* WR_LOG_*, default info */
    char *log_file; /* "log.file": lines are appended there, reopened on SIGHUP; NULL: stderr */

    /* Operations: the HTTP listeners are disabled while their address is
     * NULL (keys absent). */
    wr_listener_cfg_t management;
    bool management_tls; /* "management": {"tls": true}: HTTPS with the "tls" keys */
    wr_listener_cfg_t prometheus;
    char *load_definitions;               /* definitions file applied at boot, or NULL */
    uint32_t collect_statistics_interval; /* ms between rate samples, default 5000 */

    /* Storage (docs/STORAGE.md). */
    char *data_dir;               /* the store's directory, default "data" (relative to the cwd) */
    uint64_t segment_size;        /* bytes per segment file, default 64 MiB */
    uint64_t queue_memory_budget; /* bytes of messages a queue keeps in memory, default 64 MiB */
    int64_t commit_interval_us;   /* least µs between the starts of two small batches under
                                     steady load, default 10000; 0: none (storage/store.h) */
    int64_t unawaited_delay_us;   /* most µs records nobody waits for stay unwritten, default
                                     200000; 0: none (storage/store.h) */

    /* Security (docs/SECURITY.md). */
    wr_listener_cfg_t *tls_listeners; /* default none */
    size_t ntls_listeners;
    wr_tls_cfg_t tls;
    int64_t max_connections;          /* all clients; -1 (default): no limit */
    int64_t max_connections_per_user; /* users without their own limit; -1 (default): none */
    uint32_t handshake_timeout;       /* ms from accept to connection.open, default 10000 */
    uint32_t max_table_depth;         /* field table nesting, default 16 */
    uint32_t max_table_size;          /* octets of one field table, default 65536 */

    /* Flow alarms (docs/FLOW.md), RabbitMQ's vm_memory_high_watermark and
     * disk_free_limit: each either relative or absolute, whichever the file
     * gave last ("memory_high_watermark", "disk_free_limit"; the non-zero
     * one of each pair is in force). */
    double memory_high_watermark;         /* fraction of RAM (or cgroup limit), default 0.4 */
    uint64_t memory_high_watermark_bytes; /* absolute limit; 0 (default): use the fraction */
    uint64_t disk_free_limit_bytes;       /* default 50000000, as RabbitMQ */
    double disk_free_limit_relative;      /* multiple of RAM; 0 (default): use the bytes */
    uint64_t flow_storage_pending_bytes;  /* publishers' reads stop above this many bytes
                                             waiting for the storage thread, default 64 MiB */

    /* Policies from the "policies" array, in RabbitMQ's definitions shape,
     * applied at boot (broker/policy.h); NULL when absent. A jansson array. */
    struct json_t *policies;

    /* The "cluster" section (broker/cluster/cluster_config.h); NULL: a single node. */
    struct wr_cluster_config_s *cluster;
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
/*
 * Applies the environment overrides WARREN_AMQP_PORT (the first listener),
 * WARREN_MANAGEMENT_PORT and WARREN_PROMETHEUS_PORT (each enables its
 * listener on 127.0.0.1 when the file did not) and WARREN_DATA_DIR. WR_OK,
 * or WR_ESYNTAX with one line per bad variable in err; WR_ENOMEM.
 */
int wr_config_apply_env(wr_config_t *cfg, char *err, size_t errlen);

#endif
