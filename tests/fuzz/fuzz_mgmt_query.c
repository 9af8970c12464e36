/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for what a management API GET takes from its URI: the
 * path segments (percent-decoded by wr_mgmt_split_path) and the query string
 * (libevent's parser, then columns, sort and sort_reverse in mgmt.c). The
 * first input byte picks a collection, the rest is "SUFFIX?QUERY": SUFFIX is
 * appended to the collection's path. Requests are served by the real
 * handlers on one broker holding two vhosts with exchanges, queues,
 * bindings, a message, a policy, a second user and a permission; a GET
 * changes nothing, so the broker is shared by all inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const collections[] = {
    "/api/",         "/api/overview",    "/api/vhosts",    "/api/queues",      "/api/exchanges",
    "/api/bindings", "/api/users",       "/api/whoami",    "/api/permissions", "/api/policies",
    "/api/channels", "/api/connections", "/api/consumers", "/api/definitions", "/api/health/checks",
};

static const struct {
    wr_mgmt_method_t method;
    const char *path;
    const char *body;
} setup_requests[] = {
    {WR_MGMT_PUT, "/api/exchanges/%2F/x",
     "{\"type\": \"topic\", \"arguments\": {\"alternate-exchange\": \"ae\"}}"},
    {WR_MGMT_PUT, "/api/queues/%2F/q", "{\"durable\": false, \"arguments\": {\"x-max-length\": 10}}"},
    {WR_MGMT_PUT, "/api/queues/fuzz/q%2Fslash", "{\"durable\": false}"},
    {WR_MGMT_POST, "/api/bindings/%2F/e/x/q/q", "{\"routing_key\": \"k.*\", \"arguments\": {\"a\": [1]}}"},
    {WR_MGMT_POST, "/api/bindings/%2F/e/x/e/amq.topic", "{\"routing_key\": \"#\"}"},
    {WR_MGMT_POST, "/api/exchanges/%2F/x/publish",
     "{\"routing_key\": \"k.1\", \"payload\": \"hi\", \"payload_encoding\": \"string\", \"properties\": {}}"},
    {WR_MGMT_PUT, "/api/policies/%2F/p", "{\"pattern\": \"^q\", \"definition\": {\"message-ttl\": 60000}}"},
    {WR_MGMT_PUT, "/api/users/monitor", "{\"password\": \"m\", \"tags\": \"monitoring\"}"},
    {WR_MGMT_PUT, "/api/permissions/fuzz/monitor",
     "{\"configure\": \"\", \"write\": \".*\", \"read\": \".*\"}"},
};

static wr_fuzz_api_t *shared_api(void)
{
    static wr_fuzz_api_t api;

    if (api.srv != NULL)
        return &api;
    wr_fuzz_api_open(&api);
    for (size_t i = 0; i < sizeof(setup_requests) / sizeof(setup_requests[0]); i++) {
        if (!wr_fuzz_api_request(&api, setup_requests[i].method, setup_requests[i].path, "",
                                 (const uint8_t *)setup_requests[i].body, strlen(setup_requests[i].body)))
            abort();
    }
    return &api;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *base;
    char *text, *query;
    size_t n;

    if (size == 0)
        return 0;
    base = collections[data[0] % (sizeof(collections) / sizeof(collections[0]))];
    /* A URI has no NUL: the text ends at the first one. */
    n = strnlen((const char *)data + 1, size - 1);
    text = malloc(strlen(base) + n + 1);
    if (text == NULL)
        abort();
    memcpy(text, base, strlen(base));
    memcpy(text + strlen(base), data + 1, n);
    text[strlen(base) + n] = '\0';
    query = strchr(text, '?');
    if (query != NULL)
        *query++ = '\0';
    wr_fuzz_api_request(shared_api(), WR_MGMT_GET, text, query != NULL ? query : "", NULL, 0);
    free(text);
    return 0;
}
