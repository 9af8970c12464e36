/* SPDX-License-Identifier: MIT */
/*
 * Routing: the bindings of one exchange and the function that turns a routing
 * key (and headers) into a set of destinations. Exchange types are a vtable
 * (direct, fanout, topic, headers); destinations are opaque pointers tagged
 * queue or exchange, so this module knows nothing about queues. Following
 * exchange-to-exchange bindings is the caller's job: it gets exchange
 * destinations back and routes through them itself, with its own cycle check.
 */
#ifndef WR_ROUTING_ROUTER_H
#define WR_ROUTING_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"

typedef enum { WR_DEST_QUEUE = 0, WR_DEST_EXCHANGE = 1 } wr_dest_kind_t;

typedef struct {
    void *ptr;
    wr_dest_kind_t kind;
} wr_dest_t;

/* A deduplicated set of destinations filled by routing. */
typedef struct {
    wr_dest_t *items;
    size_t count;
    size_t cap;
    /* private: open-addressing index for dedup */
    void **index;
    size_t index_cap;
} wr_dest_set_t;

void wr_dest_set_init(wr_dest_set_t *s);
void wr_dest_set_clear(wr_dest_set_t *s); /* empties, keeps memory */
void wr_dest_set_free(wr_dest_set_t *s);
/* Adds d unless already present; false on allocation failure. */
bool wr_dest_set_add(wr_dest_set_t *s, wr_dest_t d);
bool wr_dest_set_has(const wr_dest_set_t *s, wr_dest_t d);

typedef struct wr_router_type_s wr_router_type_t;
typedef struct wr_router_s wr_router_t;

/* "direct", "fanout", "topic", "headers"; NULL for anything else. */
const wr_router_type_t *wr_router_type_find(wr_bytes_t name);
const char *wr_router_type_name(const wr_router_type_t *t);

wr_router_t *wr_router_new(const wr_router_type_t *t);
void wr_router_free(wr_router_t *r); /* NULL is a no-op */

/*
 * A binding is (destination, key, arguments); `args` is a raw validated
 * field table (may be empty). Binding twice is idempotent (WR_EEXIST, not an
 * error to the client). For headers exchanges `args` carries x-match and the
 * header values to match; for others it is part of the binding's identity only.
 * The router copies key and args.
 * wr_router_bind: WR_OK, WR_EEXIST, WR_ENOMEM, WR_ESYNTAX (headers: bad x-match).
 * wr_router_unbind: WR_OK or WR_ENOENT.
 */
int wr_router_bind(wr_router_t *r, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
int wr_router_unbind(wr_router_t *r, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
/* Removes every binding whose destination is d; returns how many. */
size_t wr_router_unbind_dest(wr_router_t *r, wr_dest_t d);
size_t wr_router_count(const wr_router_t *r);
bool wr_router_has_dest(const wr_router_t *r, wr_dest_t d);

/* Calls fn for each binding; fn must not modify the router. */
typedef void (*wr_binding_fn)(void *ud, wr_dest_t d, wr_bytes_t key, wr_bytes_t args);
void wr_router_foreach(const wr_router_t *r, wr_binding_fn fn, void *ud);

/*
 * Adds to `out` every destination bound to a match for (key, headers);
 * `headers` is the message's raw validated headers table (empty if none).
 * Cost: direct O(1), topic O(words in key), fanout O(bindings),
 * headers O(bindings × args). Returns false only on allocation failure.
 */
bool wr_router_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out);

#endif
