/* SPDX-License-Identifier: MIT */
/*
 * Policies, as RabbitMQ has them: per vhost, a name, a regular expression
 * matched against queue and/or exchange names, a priority and a definition
 * whose keys (message-ttl, expires, max-length, max-length-bytes, overflow,
 * dead-letter-exchange, dead-letter-routing-key, dead-letter-strategy,
 * delivery-limit, consumer-timeout, alternate-exchange) act like the matching
 * x- arguments. Of the policies
 * matching a name, the one with the highest priority applies. Set from the
 * config file, the definitions file, the management API and warrenctl; kept
 * in the durable topology.
 */
#ifndef WR_BROKER_POLICY_H
#define WR_BROKER_POLICY_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/queue/queue.h"
#include "core/map.h"
#include "core/bytes.h"

struct json_t;

typedef enum { WR_APPLY_QUEUES, WR_APPLY_EXCHANGES, WR_APPLY_ALL } wr_apply_to_t;

typedef struct wr_policies_s wr_policies_t;

typedef struct {
    char *vhost;
    char *name;
    char *pattern;
    regex_t re;
    wr_apply_to_t apply_to;
    int64_t priority;
    struct json_t *definition; /* as given (an object) */
    /* The definition, parsed; -1 / NULL where the key is absent. */
    int64_t message_ttl;
    int64_t expires;
    int64_t max_length;
    int64_t max_length_bytes;
    int overflow; /* a wr_overflow_t, or -1 */
    int64_t delivery_limit;
    int64_t consumer_timeout;
    int dead_letter_strategy; /* a wr_dl_strategy_t, or -1 */
    char *dead_letter_exchange;
    char *dead_letter_routing_key;
    char *alternate_exchange;
} wr_policy_t;

/* The policies of the vhosts in `vhosts` (name -> wr_vhost_t), which
 * outlives them. NULL on ENOMEM. */
wr_policies_t *wr_policies_new(const wr_map_t *vhosts);
void wr_policies_free(wr_policies_t *ps); /* NULL is a no-op */

/*
 * Creates or replaces policy `name` in `vhost` (which must exist), then
 * re-applies the vhost's policies (wr_vhost_apply_policies) and saves the
 * durable topology. apply_to is "queues", "exchanges" or "all" (NULL:
 * "all"); definition is a JSON object. WR_OK; WR_ESYNTAX with RabbitMQ's
 * reason in err (bad regex, unknown or mistyped definition key, empty
 * definition); WR_ENOENT when the vhost does not exist; WR_ENOMEM.
 */
int wr_policy_put(wr_policies_t *ps, const char *vhost, const char *name, const char *pattern,
                  const char *apply_to, int64_t priority, const struct json_t *definition, char *err,
                  size_t errlen);
/*
 * The checks of wr_policy_put alone (the configuration file):
 * WR_OK, or WR_ESYNTAX with RabbitMQ's reason in err; WR_ENOMEM.
 */
int wr_policy_validate(const char *pattern, const char *apply_to, const struct json_t *definition, char *err,
                       size_t errlen);
/*
 * wr_policy_put of a policy in RabbitMQ's definitions shape: an object with
 * "name", "pattern", "definition" (an object), optional "apply-to" (a
 * string) and "priority" (an integer, default 0) and, when vhost is NULL,
 * "vhost". WR_ESYNTAX with the reason in err when a field is missing or
 * mistyped; otherwise as wr_policy_put.
 */
int wr_policy_put_json(wr_policies_t *ps, const char *vhost, const struct json_t *obj, char *err,
                       size_t errlen);
/* WR_OK, or WR_ENOENT when there is no such policy. Re-applies as above. */
int wr_policy_delete(wr_policies_t *ps, const char *vhost, const char *name);
/* NULL when absent. */
const wr_policy_t *wr_policy_get(wr_policies_t *ps, const char *vhost, const char *name);
/* Each policy, of one vhost or (vhost NULL) all, by vhost then name. */
void wr_policy_foreach(wr_policies_t *ps, const char *vhost, void (*fn)(void *ud, const wr_policy_t *p),
                       void *ud);
/* The policy that applies to queue (is_queue) or exchange `name` in vhost:
 * the highest priority among those matching, or NULL. */
const wr_policy_t *wr_policy_match(wr_policies_t *ps, const char *vhost, wr_bytes_t name, bool is_queue);
/* {"vhost","name","pattern","apply-to","definition","priority"}, as
 * RabbitMQ's /api/policies and definitions.json show a policy. */
struct json_t *wr_policy_to_json(const wr_policy_t *p);

#endif
