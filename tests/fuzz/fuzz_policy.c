/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for policy definitions (broker/vhost/policy.c): the input is
 * one policy in RabbitMQ's definitions shape, as a definitions file, the
 * configuration or the topology file gives it. It is checked with
 * wr_policy_validate and put with wr_policy_put_json into vhost "/" of a
 * broker that has a durable queue and exchange for it to apply to. Both must
 * agree; a policy that was put must read back as given, put again from its
 * own JSON, match, and delete.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/mgmt/mgmt_topo.h"
#include "broker/vhost/policy.h"
#include "core/status.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERR_LEN 100

/* One broker for the whole run: each input deletes what it put. */
static wr_server_t *broker(void)
{
    wr_server_t *srv = wr_fuzz_shared_server();
    wr_vhost_t *vh = wr_map_get(wr_server_mgmt_env(srv)->vhosts, wr_bytes_str("/"));
    wr_amqp_error_t e;
    bool created;

    /* Declaring twice is fine: they are equivalent. */
    if (!wr_mgmt_topo_declare_queue(vh, wr_bytes_str("q"), true, false, (wr_bytes_t){0}, &created, &e) ||
        !wr_mgmt_topo_declare_exchange(vh, wr_bytes_str("x"), "topic", true, false, false, (wr_bytes_t){0},
                                       &created, &e))
        abort();
    return srv;
}

/* Whether put_json would reach the rules: the fields have their types. */
static bool shaped(const json_t *obj)
{
    const json_t *apply = json_object_get(obj, "apply-to"), *prio = json_object_get(obj, "priority");

    return json_is_string(json_object_get(obj, "name")) && json_is_string(json_object_get(obj, "pattern")) &&
           json_is_object(json_object_get(obj, "definition")) && (apply == NULL || json_is_string(apply)) &&
           (prio == NULL || json_is_integer(prio));
}

/* The policy just put: as given, idempotent, matchable, deletable. */
static void check_put(wr_server_t *srv, const json_t *obj)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    const wr_policy_t *p = wr_policy_get(wr_server_mgmt_env(srv)->policies, "/", name);
    json_t *again;
    char why[512];

    if (p == NULL || strcmp(p->pattern, json_string_value(json_object_get(obj, "pattern"))) != 0 ||
        p->priority != json_integer_value(json_object_get(obj, "priority")) ||
        !json_equal(p->definition, json_object_get(obj, "definition")))
        abort();
    again = wr_policy_to_json(p);
    if (again == NULL ||
        wr_policy_put_json(wr_server_mgmt_env(srv)->policies, NULL, again, why, sizeof(why)) != WR_OK)
        abort();
    json_decref(again);
    wr_policy_match(wr_server_mgmt_env(srv)->policies, "/", wr_bytes_str(name), true);
    wr_policy_match(wr_server_mgmt_env(srv)->policies, "/", wr_bytes_str(name), false);
    if (wr_policy_delete(wr_server_mgmt_env(srv)->policies, "/", name) != WR_OK ||
        wr_policy_get(wr_server_mgmt_env(srv)->policies, "/", name) != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    wr_server_t *srv = broker();
    /* Exactly sized and small: long reasons are truncated. */
    char *why = calloc(1, ERR_LEN), *why2 = calloc(1, ERR_LEN);
    int valid, put;

    if (why == NULL || why2 == NULL)
        abort();
    if (!json_is_object(obj))
        goto out;
    put = wr_policy_put_json(wr_server_mgmt_env(srv)->policies, "/", obj, why2, ERR_LEN);
    if (put != WR_OK && (why2[0] == '\0' || strnlen(why2, ERR_LEN) == ERR_LEN))
        abort();
    if (shaped(obj)) {
        valid = wr_policy_validate(json_string_value(json_object_get(obj, "pattern")),
                                   json_string_value(json_object_get(obj, "apply-to")),
                                   json_object_get(obj, "definition"), why, ERR_LEN);
        if (valid != put || (valid != WR_OK && strcmp(why, why2) != 0))
            abort();
    } else if (put == WR_OK) {
        abort();
    }
    if (put == WR_OK)
        check_put(srv, obj);
out:
    free(why);
    free(why2);
    json_decref(obj);
    return 0;
}
