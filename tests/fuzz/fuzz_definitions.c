/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for definitions import (broker/mgmt/definitions.c): the input
 * is a definitions file, checked by wr_definitions_check_file (what
 * --check-config and load_definitions read) and, when it passes, imported
 * into a fresh broker, whole and then scoped to vhost "fuzz", as boot and
 * POST /api/definitions[/vhost] do. After an import that succeeded, the
 * broker's own export must import back into it unchanged (everything in it
 * is equivalent to what exists).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/mgmt/definitions.h"
#include "core/status.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small and exactly sized: long reasons are truncated. */
#define ERR_LEN 120

static void check_reason(int rc, const char *err)
{
    if (rc != WR_OK && (err[0] == '\0' || strnlen(err, ERR_LEN) == ERR_LEN))
        abort();
}

/* Import, whole then scoped; after a whole import the export goes back in. */
static void import(const json_t *defs)
{
    wr_fuzz_api_t api;
    char *err = malloc(ERR_LEN);
    json_t *out;
    int rc;

    if (err == NULL)
        abort();
    wr_fuzz_api_open(&api);
    rc = wr_definitions_import(wr_server_mgmt_env(api.srv), defs, NULL, err, ERR_LEN);
    check_reason(rc, err);
    if (rc == WR_OK) {
        out = wr_definitions_export(wr_server_mgmt_env(api.srv), NULL);
        if (out == NULL ||
            wr_definitions_import(wr_server_mgmt_env(api.srv), out, NULL, err, ERR_LEN) != WR_OK)
            abort();
        json_decref(out);
    }
    rc = wr_definitions_import(wr_server_mgmt_env(api.srv), defs,
                               wr_map_get(wr_server_mgmt_env(api.srv)->vhosts, wr_bytes_str("fuzz")), err,
                               ERR_LEN);
    check_reason(rc, err);
    wr_fuzz_api_close(&api);
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    char *err = malloc(ERR_LEN);
    int fd = wr_fuzz_memfile(data, size, path);
    json_t *defs;
    int rc;

    if (err == NULL)
        abort();
    rc = wr_definitions_check_file(path, err, ERR_LEN);
    close(fd);
    check_reason(rc, err);
    free(err);
    if (rc != WR_OK)
        return 0;
    defs = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (defs == NULL)
        abort(); /* it passed the check */
    import(defs);
    json_decref(defs);
    return 0;
}
