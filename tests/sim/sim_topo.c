/* SPDX-License-Identifier: MIT */
/*
 * The metadata group in the simulator (--sm topo): proposals carry random
 * definition change records of the whole grammar (vhosts, exchanges, queues,
 * bindings, policies and permissions of two vhosts, node-wide users, the
 * seeded mark; names from small pools so that they collide), every member applies
 * them to the real broker/node/topo_state.c, and after every apply the
 * member's dump is compared with what every other member had at that index.
 * Snapshots carry the dump; a member that installs one loads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/node/topo_state.h"
#include "core/crc32c.h"
#include "tests/sim/sim.h"

static const char *const ops[] = {"exchange.declare",
                                  "exchange.delete",
                                  "queue.declare",
                                  "queue.delete",
                                  "bind",
                                  "unbind",
                                  "policies",
                                  "vhost.declare",
                                  "vhost.delete",
                                  "permission.put",
                                  "permission.delete",
                                  "user.put",
                                  "user.delete",
                                  "seeded"};
#define NODE_WIDE 11 /* ops from here have no vhost */

/* The entry of a record of op (an index into ops), drawn from small pools. */
static int entry(sim_t *s, int op, char *buf, size_t cap)
{
    int x = sim_rand_int(s, 4), q = sim_rand_int(s, 4), k = sim_rand_int(s, 3);
    bool to_queue = sim_chance(s, 700);

    switch (op) {
    case 0:
        return snprintf(buf, cap,
                        "{\"name\":\"x%d\",\"type\":\"%s\",\"durable\":true,\"auto_delete\":false,"
                        "\"internal\":false,\"arguments\":{}}",
                        x, sim_chance(s, 500) ? "direct" : "topic");
    case 1:
        return snprintf(buf, cap, "{\"name\":\"x%d\"}", x);
    case 2:
        return snprintf(
            buf, cap,
            "{\"name\":\"q%d\",\"durable\":true,\"auto_delete\":false,\"arguments\":{\"x-max-length\":%d},"
            "\"log\":\"q%d-%d\"}",
            q, sim_rand_int(s, 100), q, sim_rand_int(s, 1000));
    case 3:
        return snprintf(buf, cap, "{\"name\":\"q%d\"}", q);
    case 4:
    case 5:
        return snprintf(buf, cap,
                        "{\"source\":\"x%d\",\"destination\":\"%c%d\",\"destination_type\":\"%s\","
                        "\"routing_key\":\"k%d\",\"arguments\":{}}",
                        x, to_queue ? 'q' : 'x', to_queue ? q : sim_rand_int(s, 4),
                        to_queue ? "queue" : "exchange", k);
    case 6:
        return snprintf(buf, cap,
                        "[{\"name\":\"p%d\",\"pattern\":\"^q\",\"apply-to\":\"queues\","
                        "\"definition\":{\"max-length\":%d},\"priority\":0}]",
                        k, sim_rand_int(s, 100));
    case 7:
        return snprintf(buf, cap, "{\"description\":\"d%d\",\"tags\":[\"t%d\"],\"tracing\":false}", x, k);
    case 9:
        return snprintf(buf, cap, "{\"user\":\"u%d\",\"configure\":\".*\",\"write\":\".*\",\"read\":\"r%d\"}",
                        k, x);
    case 10:
    case 12:
        return snprintf(buf, cap, "{\"%s\":\"u%d\"}", op == 10 ? "user" : "name", k);
    case 11:
        return snprintf(buf, cap,
                        "{\"name\":\"u%d\",\"password_hash\":\"aGFzaA==\",\"hashing_algorithm\":"
                        "\"rabbit_password_hashing_sha256\",\"tags\":[\"t%d\"]}",
                        k, x);
    default: /* vhost.delete, seeded */
        return snprintf(buf, cap, "{}");
    }
}

size_t sim_topo_record(sim_t *s, char *buf, size_t cap)
{
    char e[256], vhost[32] = "";
    int op = sim_rand_int(s, 14), n, len;

    if (op == 8 && sim_chance(s, 800)) /* a vhost's deletion wipes it: rarer than the rest */
        op = 0;
    n = entry(s, op, e, sizeof(e));
    if (op < NODE_WIDE)
        snprintf(vhost, sizeof(vhost), "\"vhost\":\"v%d\",", sim_rand_int(s, 2));
    len = snprintf(buf, cap, "{%s\"op\":\"%s\",\"entry\":%s}", vhost, ops[op], e);

    if (n < 0 || (size_t)n >= sizeof(e) || len < 0 || (size_t)len >= cap)
        abort();
    return (size_t)len;
}

static wr_topo_state_t *state(sim_sm_t *sm)
{
    if (sm->topo == NULL && (sm->topo = wr_topo_state_new()) == NULL)
        abort();
    return sm->topo;
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replaces array a's items by the same items sorted by their JSON text: their order carries no meaning. */
static void sort_array(json_t *a)
{
    size_t n = json_array_size(a);
    char **texts = calloc(n ? n : 1, sizeof(*texts));

    if (texts == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((texts[i] = json_dumps(json_array_get(a, i), JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
            abort();
    qsort(texts, n, sizeof(*texts), cmp_text);
    json_array_clear(a);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(a, json_loads(texts[i], 0, NULL)) != 0)
            abort();
        free(texts[i]);
    }
    free(texts);
}

/* The CRC32C of the state's dump, with exchanges, queues, bindings, permissions and users as sets. */
static uint32_t dump_hash(sim_sm_t *sm)
{
    json_t *d = wr_topo_state_dump(state(sm)), *v;
    const char *name;
    char *text;
    uint32_t h;

    if (d == NULL || !json_is_object(json_object_get(d, "vhosts")))
        abort();
    json_object_foreach(json_object_get(d, "vhosts"), name, v)
    {
        sort_array(json_object_get(v, "exchanges"));
        sort_array(json_object_get(v, "queues"));
        sort_array(json_object_get(v, "bindings"));
        sort_array(json_object_get(v, "permissions"));
    }
    sort_array(json_object_get(d, "users"));
    if ((text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        abort();
    h = wr_crc32c_update(0, text, strlen(text));
    free(text);
    json_decref(d);
    return h;
}

void sim_topo_check_at(sim_t *s, int node, int g, uint64_t index, sim_sm_t *sm)
{
    uint64_t h = (uint64_t)dump_hash(sm) | 1ull << 32, **seen = &s->topo_seen[g];
    size_t *n = &s->topo_n[g];

    if (index == 0)
        return;
    if (index > *n) {
        size_t cap = index * 2;
        if ((*seen = realloc(*seen, cap * sizeof(**seen))) == NULL)
            abort();
        memset(*seen + *n, 0, (cap - *n) * sizeof(**seen));
        *n = cap;
    }
    if ((*seen)[index - 1] == 0)
        (*seen)[index - 1] = h;
    else if ((*seen)[index - 1] != h)
        sim_fail(s, "definitions: n%d g%d's dump at %llu differs from another member's at the same index",
                 node, g, (unsigned long long)index);
}

void sim_topo_apply(sim_t *s, int node, int g, sim_sm_t *sm, const wr_raft_entry_t *e)
{
    json_t *rec;
    char err[128];

    /* A proposal's payload is its 8-byte id, then the record; other entries change nothing. */
    if (e->type == WR_RAFT_ENTRY_NORMAL && e->len > 8) {
        if ((rec = json_loadb((const char *)e->data + 8, e->len - 8, 0, NULL)) == NULL)
            abort();
        if (wr_topo_state_apply(state(sm), rec, err, sizeof(err)) == WR_ENOMEM)
            abort();
        json_decref(rec);
    }
    sim_topo_check_at(s, node, g, e->index, sm);
}

char *sim_topo_snapshot(sim_sm_t *sm, size_t *len)
{
    json_t *d = wr_topo_state_dump(state(sm));
    char *text = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;

    if (text == NULL)
        abort();
    json_decref(d);
    *len = strlen(text);
    return text;
}

bool sim_topo_load(sim_sm_t *sm, const uint8_t *p, size_t len)
{
    json_t *d = json_loadb((const char *)p, len, 0, NULL);
    char err[128];
    bool ok;

    wr_topo_state_free(sm->topo);
    sm->topo = NULL;
    ok = d != NULL && wr_topo_state_load(state(sm), d, err, sizeof(err)) == WR_OK;
    json_decref(d);
    return ok;
}

void sim_topo_free(sim_sm_t *sm)
{
    wr_topo_state_free(sm->topo);
    sm->topo = NULL;
}
