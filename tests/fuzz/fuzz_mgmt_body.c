/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the management API's request bodies (broker/mgmt*.c,
 * definitions.c, policy.c, mgmt_json.c). The first input byte picks one of
 * the PUT/POST requests that take a JSON body (queue and exchange declare
 * with arguments, bindings, publish, get, policy, user, permission, vhost,
 * definitions); the rest is the body. It is served by the real handlers on a
 * fresh broker that already has an exchange, a queue, a binding and a
 * message, and the state it leaves is then listed and exported, so what a
 * body stored is read back through the JSON converters too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    wr_mgmt_method_t method;
    const char *path;
} bodies[] = {
    {WR_MGMT_PUT, "/api/queues/%2F/q"},
    {WR_MGMT_PUT, "/api/queues/%2F/new"},
    {WR_MGMT_PUT, "/api/exchanges/%2F/x"},
    {WR_MGMT_PUT, "/api/exchanges/%2F/new"},
    {WR_MGMT_POST, "/api/bindings/%2F/e/x/q/q"},
    {WR_MGMT_POST, "/api/bindings/%2F/e/x/e/amq.direct"},
    {WR_MGMT_POST, "/api/exchanges/%2F/x/publish"},
    {WR_MGMT_POST, "/api/exchanges/%2F/amq.default/publish"},
    {WR_MGMT_POST, "/api/queues/%2F/q/get"},
    {WR_MGMT_PUT, "/api/policies/%2F/p"},
    {WR_MGMT_PUT, "/api/users/u"},
    {WR_MGMT_PUT, "/api/users/guest"},
    {WR_MGMT_PUT, "/api/permissions/fuzz/guest"},
    {WR_MGMT_PUT, "/api/vhosts/v"},
    {WR_MGMT_POST, "/api/definitions"},
    {WR_MGMT_POST, "/api/definitions/fuzz"},
};

/* What every input starts from, set up through the API itself. */
static void setup(wr_fuzz_api_t *api)
{
    static const char publish[] =
        "{\"routing_key\": \"k.1\", \"payload\": \"hello\", \"payload_encoding\": "
        "\"string\", \"properties\": {\"delivery_mode\": 2, \"headers\": {\"h\": 1}}}";
    static const char bind[] = "{\"routing_key\": \"k.*\", \"arguments\": {\"x\": [1, \"a\"]}}";

    if (!wr_fuzz_api_request(api, WR_MGMT_PUT, "/api/exchanges/%2F/x", "",
                             (const uint8_t *)"{\"type\": \"topic\"}", 17) ||
        !wr_fuzz_api_request(api, WR_MGMT_PUT, "/api/queues/%2F/q", "",
                             (const uint8_t *)"{\"durable\": false}", 18) ||
        !wr_fuzz_api_request(api, WR_MGMT_POST, "/api/bindings/%2F/e/x/q/q", "", (const uint8_t *)bind,
                             strlen(bind)) ||
        !wr_fuzz_api_request(api, WR_MGMT_POST, "/api/exchanges/%2F/x/publish", "", (const uint8_t *)publish,
                             strlen(publish)))
        abort();
}

/* Reads back everything a body may have stored. */
static void read_back(wr_fuzz_api_t *api)
{
    static const char *const lists[] = {"/api/definitions", "/api/queues", "/api/exchanges",  "/api/bindings",
                                        "/api/policies",    "/api/users",  "/api/permissions"};

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if (!wr_fuzz_api_request(api, WR_MGMT_GET, lists[i], "", NULL, 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_fuzz_api_t api;
    size_t which;

    if (size == 0)
        return 0;
    which = data[0] % (sizeof(bodies) / sizeof(bodies[0]));
    wr_fuzz_api_open(&api);
    setup(&api);
    if (!wr_fuzz_api_request(&api, bodies[which].method, bodies[which].path, "", data + 1, size - 1))
        abort();
    read_back(&api);
    wr_fuzz_api_close(&api);
    return 0;
}
