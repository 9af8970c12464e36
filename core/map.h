/* SPDX-License-Identifier: MIT */
/*
 * A hash map from byte-string keys to void* values (chained, power-of-two
 * buckets, seeded hash so clients cannot force collisions cheaply). The map
 * copies keys; it never owns or frees values.
 */
#ifndef WR_CORE_MAP_H
#define WR_CORE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

typedef struct wr_map_s wr_map_t;

/* The 64-bit mixer that finishes the map's hash; also hashes the pointers
 * that key routing's open-addressing tables. */
static inline uint64_t wr_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

wr_map_t *wr_map_new(void);
/* Frees the map and its key copies, not the values. NULL is a no-op. */
void wr_map_free(wr_map_t *m);
/* Returns the value or NULL. */
void *wr_map_get(const wr_map_t *m, wr_bytes_t key);
/* WR_OK, WR_EEXIST (value unchanged) or WR_ENOMEM. */
int wr_map_put(wr_map_t *m, wr_bytes_t key, void *value);
/* Returns the removed value, or NULL when absent. */
void *wr_map_del(wr_map_t *m, wr_bytes_t key);
size_t wr_map_count(const wr_map_t *m);

/*
 * Iteration: start with `wr_map_iter_t it = {0};` then
 * `while (wr_map_next(m, &it, &key, &value))`. Deleting the entry just
 * returned is allowed; any other insert or delete invalidates the iterator.
 */
typedef struct {
    size_t bucket;
    void *next;
} wr_map_iter_t;

int wr_map_next(const wr_map_t *m, wr_map_iter_t *it, wr_bytes_t *key, void **value);

#endif
