/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the durable topology loader: the input is written
 * as DATA/topology.json of a fresh data directory and a broker is started
 * on it (wr_server_new opens the store and recovers, broker/durable.c and
 * durable_defs.c). Whatever it accepts must dump back to a topology that
 * loads into the same objects: dump, save, start again, dump again, equal.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/durable_defs.h"
#include "broker/server.h"
#include "core/bytes.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vhosts[] = {"/", "fuzz"};

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The list as sorted text: vhosts keep their objects in seeded hash maps, so
 * the dump's order changes from one start to the next. */
static json_t *canonical(const json_t *list)
{
    size_t n = json_array_size(list), i;
    char **texts = calloc(n + 1, sizeof(*texts));
    json_t *out = json_array(), *item;

    if (texts == NULL || out == NULL)
        abort();
    json_array_foreach(list, i, item)
    {
        if ((texts[i] = json_dumps(item, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
            abort();
    }
    qsort(texts, n, sizeof(*texts), by_text);
    for (i = 0; i < n; i++) {
        json_array_append_new(out, json_string(texts[i]));
        free(texts[i]);
    }
    free(texts);
    return out;
}

/* {"/": dump, "fuzz": dump} of srv's configured vhosts into *raw, and the
 * same with each list in canonical order as the result. */
static json_t *dump(wr_server_t *srv, json_t **raw)
{
    json_t *all = json_object(), *sorted = json_object(), *list;
    const char *key;

    if (all == NULL || sorted == NULL)
        abort();
    for (size_t i = 0; i < sizeof(vhosts) / sizeof(vhosts[0]); i++) {
        json_t *v = wr_durable_defs_dump(wr_server_vhost(srv, wr_bytes_str(vhosts[i])));
        json_t *c = json_object();

        if (v == NULL || c == NULL || json_object_set_new(all, vhosts[i], v) != 0)
            abort();
        json_object_foreach(v, key, list)
        {
            json_object_set_new(c, key, canonical(list));
        }
        json_object_set_new(sorted, vhosts[i], c);
    }
    *raw = all;
    return sorted;
}

/* Writes first's dump as the topology file, with the input's header. */
static void save(const char *dir, const json_t *input, json_t *first)
{
    json_t *root = json_pack("{s:O,s:O,s:O}", "format", json_object_get(input, "format"), "version",
                             json_object_get(input, "version"), "vhosts", first);
    char *text = root ? json_dumps(root, JSON_SORT_KEYS) : NULL;

    if (text == NULL)
        abort();
    wr_fuzz_write(dir, "topology.json", (const uint8_t *)text, strlen(text));
    free(text);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dir = wr_fuzz_tmpdir();
    wr_server_t *srv;
    json_t *input, *raw, *first, *second;

    wr_fuzz_write(dir, "topology.json", data, size);
    srv = wr_fuzz_server_new(dir);
    if (srv == NULL) {
        wr_fuzz_rmtree(dir);
        return 0;
    }
    first = dump(srv, &raw);
    wr_server_free(srv);
    input = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (input == NULL)
        abort(); /* the broker started on it */
    save(dir, input, raw);
    json_decref(raw);
    srv = wr_fuzz_server_new(dir);
    if (srv == NULL)
        abort(); /* its own dump must load */
    second = dump(srv, &raw);
    json_decref(raw);
    if (!json_equal(first, second))
        abort();
    wr_server_free(srv);
    json_decref(first);
    json_decref(second);
    json_decref(input);
    wr_fuzz_rmtree(dir);
    return 0;
}
