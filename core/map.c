/* SPDX-License-Identifier: MIT */
/* Chained hash map with a per-process random seed; see map.h. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "status.h"

typedef struct wr_map_entry_s {
    struct wr_map_entry_s *next;
    uint64_t hash;
    void *value;
    size_t klen;
    uint8_t key[];
} wr_map_entry_t;

struct wr_map_s {
    wr_map_entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t seed;
};

static uint64_t map_hash(uint64_t seed, wr_bytes_t k)
{
    /* FNV-1a over a seeded basis, finished with a 64-bit mixer. */
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;

    for (size_t i = 0; i < k.len; i++) {
        h ^= k.data[i];
        h *= 0x100000001b3ULL;
    }
    return wr_hash_mix(h);
}

wr_map_t *wr_map_new(void)
{
    wr_map_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->nbuckets = 16;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        free(m);
        return NULL;
    }
    if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != (ssize_t)sizeof(m->seed))
        m->seed = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL;
    return m;
}

void wr_map_free(wr_map_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        wr_map_entry_t *e = m->buckets[i];
        while (e != NULL) {
            wr_map_entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

static wr_map_entry_t **map_slot(const wr_map_t *m, wr_bytes_t key, uint64_t h)
{
    wr_map_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->next) {
        wr_map_entry_t *e = *pp;
        if (e->hash == h && e->klen == key.len && (key.len == 0 || memcmp(e->key, key.data, key.len) == 0))
            break;
    }
    return pp;
}

void *wr_map_get(const wr_map_t *m, wr_bytes_t key)
{
    wr_map_entry_t *e = *map_slot(m, key, map_hash(m->seed, key));

    return e ? e->value : NULL;
}

static void map_grow(wr_map_t *m)
{
    size_t n = m->nbuckets * 2;
    wr_map_entry_t **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return; /* keep working with longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        wr_map_entry_t *e = m->buckets[i];
        while (e != NULL) {
            wr_map_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int wr_map_put(wr_map_t *m, wr_bytes_t key, void *value)
{
    uint64_t h = map_hash(m->seed, key);
    wr_map_entry_t **pp = map_slot(m, key, h);
    wr_map_entry_t *e;

    if (*pp != NULL)
        return WR_EEXIST;
    e = malloc(sizeof(*e) + key.len);
    if (e == NULL)
        return WR_ENOMEM;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    e->klen = key.len;
    if (key.len > 0)
        memcpy(e->key, key.data, key.len);
    *pp = e;
    if (++m->count > m->nbuckets)
        map_grow(m);
    return WR_OK;
}

void *wr_map_del(wr_map_t *m, wr_bytes_t key)
{
    wr_map_entry_t **pp = map_slot(m, key, map_hash(m->seed, key));
    wr_map_entry_t *e = *pp;
    void *v;

    if (e == NULL)
        return NULL;
    *pp = e->next;
    v = e->value;
    free(e);
    m->count--;
    return v;
}

size_t wr_map_count(const wr_map_t *m)
{
    return m->count;
}

int wr_map_next(const wr_map_t *m, wr_map_iter_t *it, wr_bytes_t *key, void **value)
{
    wr_map_entry_t *e = it->next;

    while (e == NULL) {
        if (it->bucket >= m->nbuckets)
            return 0;
        e = m->buckets[it->bucket++];
    }
    it->next = e->next;
    if (key != NULL)
        *key = (wr_bytes_t){e->key, e->klen};
    if (value != NULL)
        *value = e->value;
    return 1;
}
