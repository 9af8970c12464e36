/* SPDX-License-Identifier: MIT */
/*
 * The fanout exchange type: every binding matches, whatever the key and
 * headers. The router's own binding list is the whole index, so the type has
 * nothing to add or remove; duplicates collapse in the destination set.
 */
#include "routing/fanout.h"

static bool fanout_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out)
{
    const wr_list_t *pos;

    for (pos = r->bindings.next; pos != &r->bindings; pos = pos->next)
        if (!wr_dest_set_add(out, wr_list_entry(pos, wr_binding_t, all)->dest))
            return false;
    return true;
}

const wr_router_type_t wr_fanout_type = {
    .name = "fanout",
    .route = fanout_route,
};
