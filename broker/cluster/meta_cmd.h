/* SPDX-License-Identifier: MIT */
/*
 * The metadata group's commands: JSON change records in the topology
 * journal's grammar ({"vhost", "op", "entry"}, broker/node/topo_state.h, with
 * the same op names and entry shapes), built by whoever asks for a change
 * (the channel handlers, the management API) and read back by the apply.
 * Names are JSON strings, or {"hex": ...} when they are not UTF-8; argument
 * tables are the hex of their AMQP encoding, so they come back byte-exact.
 */
#ifndef WR_BROKER_CLUSTER_META_CMD_H
#define WR_BROKER_CLUSTER_META_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/vhost/exchange.h"
#include "broker/vhost/queue_args.h"
#include "core/bytes.h"
#include "routing/router.h"

/* The longest AMQP name (a shortstr). */
#define WR_META_NAME_MAX 255

/* Each builder returns a new command, or NULL on ENOMEM. */
/* exchange.declare: entry {"name", "type", "durable", "auto_delete", "internal", "arguments"}. */
json_t *wr_meta_cmd_exchange_declare(const char *vhost, wr_bytes_t name, const wr_exchange_opts_t *o);
/* exchange.delete: entry {"name", "if_unused"}. */
json_t *wr_meta_cmd_exchange_delete(const char *vhost, wr_bytes_t name, bool if_unused);
/* queue.declare: entry {"name", "durable", "auto_delete", "arguments", "home"}; the apply adds "log". */
json_t *wr_meta_cmd_queue_declare(const char *vhost, wr_bytes_t name, const wr_queue_args_decl_t *d,
                                  const char *home);
/* queue.delete: entry {"name"}. */
json_t *wr_meta_cmd_queue_delete(const char *vhost, wr_bytes_t name);
/* bind or unbind: entry {"source", "destination", "destination_type", "routing_key", "arguments"}. */
json_t *wr_meta_cmd_binding(const char *vhost, bool bind, wr_bytes_t source, wr_dest_kind_t kind,
                            wr_bytes_t dest, wr_bytes_t key, wr_bytes_t args);

/*
 * A definitions command (meta_defs.c), entry taken: "vhost.add" ({"settings"
 * (a vhost.declare entry's, broker/node/topo_state.h), optional "grant" (a
 * user given every permission in a new vhost)}), "vhost.delete" ({}),
 * "user.put" ({"name", "tags", optional "password_hash" with
 * "hashing_algorithm" (kept from the user's record when absent), optional
 * "limits"}; vhost ""), "user.delete" ({"name"}; vhost ""),
 * "permission.set" ({"user", "configure", "write", "read"}),
 * "permission.clear" ({"user"}), "policy.set" ({"name", "pattern",
 * "apply-to", "priority", "definition"}), "policy.clear" ({"name"}),
 * "vhost.limit" ({"limit": "max-connections" or "max-queues", "value": an
 * integer, or null to clear it}), "user.limit" ({"user", "limit":
 * "max-connections" or "max-channels", "value"}; vhost "").
 */
json_t *wr_meta_cmd_defs(const char *op, const char *vhost, json_t *entry);

/* A name as a command carries it: a string, or {"hex": ...}. NULL on ENOMEM. */
json_t *wr_meta_name_json(wr_bytes_t name);
/* A name (a string or {"hex"}) decoded into buf; false when malformed or
 * longer than WR_META_NAME_MAX. */
bool wr_meta_name_decode(const json_t *v, wr_bytes_t *out, uint8_t buf[WR_META_NAME_MAX]);
/* The name under key in obj, decoded into buf; false when it is missing,
 * malformed or longer than WR_META_NAME_MAX. */
bool wr_meta_name_get(const json_t *obj, const char *key, wr_bytes_t *out, uint8_t buf[WR_META_NAME_MAX]);
/* The table under "arguments" in obj, decoded into *buf (malloc'd, the
 * caller frees it, also on failure); false when missing or not hex. */
bool wr_meta_args_get(const json_t *obj, wr_bytes_t *out, uint8_t **buf);

#endif
