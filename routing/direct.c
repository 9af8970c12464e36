/* SPDX-License-Identifier: MIT */
/*
 * The direct exchange type: a binding matches when its key equals the routing
 * key byte for byte. A hash map from key to the list of bindings with that key
 * makes routing one lookup however many bindings the exchange has.
 */
#include "routing/direct.h"

#include <stdlib.h>

#include "core/status.h"

/* The bindings sharing one key, linked through wr_binding_t.type_link. */
typedef struct {
    wr_list_t bindings;
} direct_bucket_t;

static int direct_init(wr_router_t *r)
{
    r->state = wr_map_new();
    return r->state != NULL ? WR_OK : WR_ENOMEM;
}

static void direct_fini(wr_router_t *r)
{
    wr_map_free(r->state);
}

static int direct_add(wr_router_t *r, wr_binding_t *b)
{
    direct_bucket_t *bk = wr_map_get(r->state, b->key);

    if (bk == NULL) {
        bk = malloc(sizeof(*bk));
        if (bk == NULL)
            return WR_ENOMEM;
        wr_list_init(&bk->bindings);
        if (wr_map_put(r->state, b->key, bk) != WR_OK) {
            free(bk);
            return WR_ENOMEM;
        }
    }
    wr_list_insert_tail(&bk->bindings, &b->type_link);
    b->type_data = bk;
    return WR_OK;
}

static void direct_remove(wr_router_t *r, wr_binding_t *b)
{
    direct_bucket_t *bk = b->type_data;

    wr_list_remove(&b->type_link);
    if (wr_list_empty(&bk->bindings)) {
        wr_map_del(r->state, b->key);
        free(bk);
    }
}

static bool direct_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out)
{
    const direct_bucket_t *bk = wr_map_get(r->state, key);
    const wr_list_t *pos;

    if (bk == NULL)
        return true;
    for (pos = bk->bindings.next; pos != &bk->bindings; pos = pos->next)
        if (!wr_dest_set_add(out, wr_list_entry(pos, wr_binding_t, type_link)->dest))
            return false;
    return true;
}

const wr_router_type_t wr_direct_type = {
    .name = "direct",
    .init = direct_init,
    .fini = direct_fini,
    .add = direct_add,
    .remove = direct_remove,
    .route = direct_route,
};
