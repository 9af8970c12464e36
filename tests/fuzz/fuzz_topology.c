/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the durable topology: the input is written as
 * DATA/topology.json of a fresh data directory and a broker is started on it
 * (broker/node/topology.c reads the snapshot, durable_defs.c builds the objects);
 * then the same JSON drives the state machine of broker/node/topo_state.c (a
 * snapshot: "vhosts", "users", "seeded"), with an optional "records" array of
 * journal change records (every op of the grammar, node-wide ones included),
 * and whatever it accepts must dump to a snapshot that loads back into the
 * same state.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/server.h"
#include "broker/node/topo_state.h"
#include "core/status.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

/* The state's snapshot with each list in canonical order: the state keeps
 * its objects in seeded hash maps, so a dump's order is not stable. A vhost's
 * "settings" (an object) and the snapshot's "seeded" are kept as they are. */
static json_t *dump(wr_topo_state_t *st)
{
    json_t *d = wr_topo_state_dump(st), *out = json_object(), *vhosts = json_object(), *lists, *list;
    const char *vhost, *key;

    if (d == NULL || out == NULL || vhosts == NULL)
        abort();
    json_object_foreach(json_object_get(d, "vhosts"), vhost, lists)
    {
        json_t *c = json_object();

        json_object_foreach(lists, key, list)
        {
            json_object_set_new(c, key, json_is_array(list) ? canonical(list) : json_incref(list));
        }
        json_object_set_new(vhosts, vhost, c);
    }
    json_object_set_new(out, "vhosts", vhosts);
    json_object_set_new(out, "users", canonical(json_object_get(d, "users")));
    json_object_set(out, "seeded", json_object_get(d, "seeded"));
    json_decref(d);
    return out;
}

/* The pure round trip: the input loaded as a snapshot, its "records"
 * (journal change records) applied, dumped; the dump loads into a fresh
 * state that dumps the same. */
static void round_trip(const json_t *input)
{
    wr_topo_state_t *st = wr_topo_state_new(), *again = wr_topo_state_new();
    json_t *first, *second, *raw, *rec;
    char err[256];
    size_t i;

    if (st == NULL || again == NULL)
        abort();
    if (wr_topo_state_load(st, input, err, sizeof(err)) == WR_OK) {
        json_array_foreach(json_object_get(input, "records"), i, rec)
        {
            if (wr_topo_state_apply(st, rec, err, sizeof(err)) == WR_ENOMEM)
                abort();
        }
        first = dump(st);
        if ((raw = wr_topo_state_dump(st)) == NULL ||
            wr_topo_state_load(again, raw, err, sizeof(err)) != WR_OK)
            abort(); /* its own dump must load */
        second = dump(again);
        if (!json_equal(first, second))
            abort();
        json_decref(raw);
        json_decref(first);
        json_decref(second);
    }
    wr_topo_state_free(st);
    wr_topo_state_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dir = wr_fuzz_tmpdir();
    wr_server_t *srv;
    json_t *input;

    wr_fuzz_write(dir, "topology.json", data, size);
    srv = wr_fuzz_server_new(dir);
    wr_server_free(srv);
    wr_fuzz_rmtree(dir);
    input = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(input))
        round_trip(input);
    json_decref(input);
    return 0;
}
