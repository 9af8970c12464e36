/* SPDX-License-Identifier: MIT */
/*
 * The node's definitions as JSON: per vhost its policies, durable exchanges,
 * durable queues (each with the name of its log) and the bindings whose
 * source and destination are both durable; users and permissions; and their
 * recreation at start-up. The shape follows the lists of RabbitMQ's
 * definitions.json, except that argument tables are kept in their AMQP
 * encoding (hex) so that they come back byte-exact, and names that are not
 * UTF-8 are kept in hex as well.
 */
#ifndef WR_BROKER_DURABLE_DEFS_H
#define WR_BROKER_DURABLE_DEFS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/auth/users.h"
#include "broker/vhost/exchange.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"

/*
 * The entries of the document, one object each, as change records carry them
 * (broker/topo_state.h). Each returns a new JSON value, or NULL on ENOMEM.
 */
/* A name: a string, or {"hex": ...} when it is not UTF-8. */
json_t *wr_durable_defs_name(wr_bytes_t name);
/* {"name", "type", "durable", "auto_delete", "internal", "arguments"}. */
json_t *wr_durable_defs_exchange(const wr_exchange_t *x);
/* {"name", "durable", "auto_delete", "arguments", "log"}; "log" is absent
 * while q has no log (a broker without a data directory). */
json_t *wr_durable_defs_queue(const wr_queue_t *q);
/* {"source", "destination", "destination_type", "routing_key", "arguments"}. */
json_t *wr_durable_defs_binding(const wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
/* The vhost's policies: an array of definitions.json policy objects without "vhost". */
json_t *wr_durable_defs_policies(const wr_vhost_t *vh);

/* {"name", "password_hash" (base64), "hashing_algorithm", "tags", "limits"}:
 * definitions.json's user. */
json_t *wr_durable_defs_user(const wr_user_cfg_t *u);
/* {"user", "configure", "write", "read"}. */
json_t *wr_durable_defs_permission(const wr_permission_cfg_t *perm);

/*
 * Puts the users of state (wr_topo_state_dump's) and the permissions of its
 * vhosts into db, whose observer must be NULL. A user whose password hash or
 * algorithm does not decode is logged and skipped. WR_OK, or WR_ENOMEM with
 * a message in err.
 */
int wr_durable_defs_load_users(wr_users_t *db, const json_t *state, char *err, size_t errlen);

/* Calls fn with the log name of every queue in v (a vhost's object as dumped). */
void wr_durable_defs_logs(const json_t *v, void (*fn)(void *ud, const char *log), void *ud);

typedef struct {
    size_t exchanges;
    size_t queues;
    size_t bindings;
    uint64_t messages; /* recovered into the queues */
} wr_durable_defs_stats_t;

/*
 * Recreates v in vh: policies, exchanges, then queues (their logs replayed,
 * so their messages come back), then bindings, adding to *st. Entries that do
 * not make sense (an unknown exchange type, a binding to something missing, a
 * policy that does not validate) are logged and skipped. WR_OK, or an error
 * with a message in err: a queue's log could not be opened, the document is
 * malformed, or memory ran out.
 */
int wr_durable_defs_load(wr_vhost_t *vh, const json_t *v, wr_durable_defs_stats_t *st, char *err,
                         size_t errlen);

#endif
