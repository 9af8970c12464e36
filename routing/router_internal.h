/* SPDX-License-Identifier: MIT */
/*
 * What the generic router (router.c) and the exchange types (direct.c,
 * fanout.c, topic.c, headers.c) share: the binding and router structs and the
 * exchange-type vtable. Only routing/ and its unit tests include this.
 */
#ifndef WR_ROUTING_ROUTER_INTERNAL_H
#define WR_ROUTING_ROUTER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/list.h"
#include "core/map.h"
#include "routing/router.h"

/*
 * One binding. The router owns it and its copies of key and args (both point
 * into `data`); `type_link` and `type_data` belong to the exchange type.
 */
typedef struct {
    wr_list_t all;       /* router's list of every binding, in bind order */
    wr_list_t same_dest; /* the bindings of this destination */
    wr_list_t same_key;  /* the bindings of this (destination, key) */
    wr_list_t type_link; /* free for the exchange type (direct bucket, trie node) */
    void *type_data;     /* free for the exchange type (trie node, headers pattern) */
    wr_dest_t dest;
    wr_bytes_t key;
    wr_bytes_t args;
    uint8_t data[];
} wr_binding_t;

struct wr_router_s {
    const wr_router_type_t *type;
    void *state;        /* the type's own index (direct map, topic trie), or NULL */
    wr_list_t bindings; /* every binding, in bind order */
    size_t count;
    wr_map_t *by_dest; /* destination -> list of its bindings */
    wr_map_t *by_key;  /* destination + key -> list of those bindings, for identity checks */
};

/*
 * An exchange type. Every hook but `route` may be NULL when the type keeps no
 * index of its own (fanout and headers route over r->bindings).
 * init: creates r->state; WR_OK or WR_ENOMEM.
 * fini: frees r->state; called only once every binding has been removed.
 * add: indexes a new binding; WR_OK, WR_ENOMEM or WR_ESYNTAX (bad arguments).
 *      On failure it leaves nothing behind.
 * remove: drops a binding from the index; cannot fail.
 * route: adds matching destinations to out; false only on allocation failure.
 */
struct wr_router_type_s {
    const char *name;
    int (*init)(wr_router_t *r);
    void (*fini)(wr_router_t *r);
    int (*add)(wr_router_t *r, wr_binding_t *b);
    void (*remove)(wr_router_t *r, wr_binding_t *b);
    bool (*route)(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out);
};

/*
 * A hash-map key made of a pointer, a tag byte and a byte string, for maps
 * keyed by "this node/destination and this word/key". Keys that fit (every
 * AMQP shortstr does) are built on the stack; longer ones in one malloc'd
 * buffer that is reused for every key built from the same wr_pkey_t.
 */
#define WR_PKEY_SMALL 256 /* longest string part built on the stack */

typedef struct {
    uint8_t small[sizeof(void *) + 1 + WR_PKEY_SMALL];
    uint8_t *buf;
    uint8_t *heap;
} wr_pkey_t;

/* Prepares k for strings of up to max_len bytes; false on allocation failure
 * (k then needs no wr_pkey_done). */
static inline bool wr_pkey_init(wr_pkey_t *k, size_t max_len)
{
    k->heap = NULL;
    k->buf = k->small;
    if (max_len > WR_PKEY_SMALL) {
        k->heap = malloc(sizeof(void *) + 1 + max_len);
        if (k->heap == NULL)
            return false;
        k->buf = k->heap;
    }
    return true;
}

/* The key for (p, tag, s); s.len must not exceed wr_pkey_init's max_len. */
static inline wr_bytes_t wr_pkey_key(wr_pkey_t *k, const void *p, uint8_t tag, wr_bytes_t s)
{
    memcpy(k->buf, &p, sizeof(p));
    k->buf[sizeof(p)] = tag;
    if (s.len > 0)
        memcpy(k->buf + sizeof(p) + 1, s.data, s.len);
    return (wr_bytes_t){k->buf, sizeof(p) + 1 + s.len};
}

static inline void wr_pkey_done(wr_pkey_t *k)
{
    free(k->heap);
}

#endif
