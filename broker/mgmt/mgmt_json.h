/* SPDX-License-Identifier: MIT */
/*
 * JSON for the management API and definitions: AMQP field tables and message
 * properties to and from JSON with RabbitMQ's type mapping, message_stats
 * objects, and the JSON shape of exchanges, queues and bindings.
 */
#ifndef WR_BROKER_MGMT_JSON_H
#define WR_BROKER_MGMT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "broker/config/config.h"
#include "broker/vhost/exchange.h"
#include "broker/mgmt/mgmt_stats.h"
#include "broker/queue/queue.h"
#include "core/buf.h"
#include "core/bytes.h"
#include "protocol/props.h"

/* The RabbitMQ release whose management API and definitions shapes warren
 * speaks (rabbitmq_version in the overview, rabbit_version in definitions). */
#define WR_MGMT_COMPAT_VERSION "3.10.8"

/* A JSON string of b: UTF-8 as is, other bytes read as Latin-1. NULL on ENOMEM. */
json_t *wr_mgmt_json_bytes(wr_bytes_t b);
/* A validated AMQP table as a JSON object (rabbit_mgmt_format:amqp_table). */
json_t *wr_mgmt_json_table(wr_bytes_t table);
/*
 * A JSON object (or null) as an AMQP table, as RabbitMQ converts arguments:
 * string -> longstr, integer -> long, real -> double, bool, object ->
 * table, array -> array; null is refused ("null_not_allowed"). The raw table (no length prefix) is
 * written to out (reset first) and *raw points into it. False with a reason
 * in why (also on ENOMEM).
 */
bool wr_mgmt_json_to_table(const json_t *obj, wr_buf_t *out, wr_bytes_t *raw, char *why, size_t n);
/* The properties that are present, as RabbitMQ's get reply shows them. */
json_t *wr_mgmt_json_props(const wr_props_t *p);
/*
 * A publish request's "properties" object into p (class 60, flags set for
 * the keys present; strings borrow from obj; headers are encoded into
 * `headers`). False with a reason in why.
 */
bool wr_mgmt_json_to_props(const json_t *obj, wr_props_t *p, wr_buf_t *headers, char *why, size_t n);

/* b in standard base64 as a JSON string; NULL on ENOMEM. */
json_t *wr_mgmt_json_base64(wr_bytes_t b);
/* RabbitMQ's hashing_algorithm name of alg ("rabbit_password_hashing_sha256"). */
const char *wr_mgmt_json_hash_alg_name(wr_hash_alg_t alg);
/* Sets "payload" and "payload_encoding" on obj the way RabbitMQ's get does:
 * "string" for UTF-8 unless base64 is forced, else "base64". */
bool wr_mgmt_json_set_payload(json_t *obj, wr_bytes_t body, bool force_base64);

/* {"publish": N, "publish_details": {"rate": R}, ...}: the message
 * counters of a queue, a vhost or the node, with deliver_get, their sum. */
json_t *wr_mgmt_json_message_stats(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r);

/* The overview's message_stats: wr_mgmt_json_message_stats plus the node's
 * confirm, get_empty, return_unroutable and drop_unroutable. */
json_t *wr_mgmt_json_node_message_stats(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r);

/* The overview's churn_rates: connections and channels created and closed,
 * queues created, declared and deleted, each with its _details rate. */
json_t *wr_mgmt_json_churn_rates(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r);

/*
 * Sets a queue's figures on obj as RabbitMQ 3.10 names them: message_bytes
 * (ready, unacknowledged, in memory, persistent, paged out), messages_ram,
 * messages_persistent, messages_paged_out and the like, memory,
 * consumer_utilisation and consumer_capacity (integer 0 without consumers),
 * head_message_timestamp (null unless the head is in memory with a
 * timestamp) and, when a is idle, idle_since. False on ENOMEM.
 */
bool wr_mgmt_json_set_queue_figures(json_t *obj, const wr_queue_t *q, const wr_mgmt_activity_t *a);

/* The HTTP contexts as RabbitMQ's overview and nodes list them: the
 * management API and Prometheus endpoints that cfg enables, each with
 * "node" and "ssl_opts" when node is not NULL (the overview's form). */
json_t *wr_mgmt_json_contexts(const wr_config_t *cfg, const char *node);

/* Sets on a node what RabbitMQ's /api/nodes adds to the figures warren
 * measures: the churn counters c and rates r (wr_mgmt_json_churn_rates),
 * rates_mode, auth_mechanisms, contexts, db_dir, log_files and
 * enabled_plugins (none). False on ENOMEM. */
bool wr_mgmt_json_set_node_extras(json_t *node, const wr_config_t *cfg, const wr_mgmt_counts_t *c,
                                  const wr_mgmt_rates_t *r);

/* Sets messages, messages_ready and messages_unacknowledged, each with its
 * _details rate, on obj (a queue, a vhost, the overview's queue_totals). */
bool wr_mgmt_json_set_totals(json_t *obj, const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r);

/* A binding's properties_key: the URL-quoted routing key, then "~" and a
 * hash of the arguments when there are any. Returns malloc'd text or NULL. */
char *wr_mgmt_json_props_key(wr_bytes_t key, wr_bytes_t args);

/* The definitions shape of an exchange / queue (name, vhost, flags,
 * arguments); the API's list shape adds to these. */
json_t *wr_mgmt_json_exchange(const wr_exchange_t *x, const char *vhost);
json_t *wr_mgmt_json_queue(const wr_queue_t *q, const char *vhost);
/* A binding in the definitions shape (source, vhost, destination,
 * destination_type, routing_key, arguments). */
json_t *wr_mgmt_json_binding(const char *vhost, wr_bytes_t source, wr_bytes_t dest, bool dest_is_queue,
                             wr_bytes_t key, wr_bytes_t args);

/* "tags" (vhosts, users) as a new array: a list of strings or RabbitMQ's
 * comma-separated string; absent or null: empty; NULL when it is neither. */
json_t *wr_mgmt_json_tags(const json_t *v);

#endif
