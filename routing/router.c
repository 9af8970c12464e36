/* SPDX-License-Identifier: MIT */
/*
 * The generic router: owns the bindings of one exchange, answers identity
 * questions (is this exact binding here? what is bound to this destination?)
 * and hands routing to the exchange type's vtable. Also the deduplicated
 * destination set that routing fills.
 */
#include "routing/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/table.h"
#include "routing/direct.h"
#include "routing/fanout.h"
#include "routing/headers.h"
#include "routing/router_internal.h"
#include "routing/topic.h"

/* ---- destination set ---------------------------------------------------- */

/*
 * The index is open addressing with linear probing. A slot holds the item's
 * position in `items` plus one (0 = empty) rather than a pointer, because a
 * destination is (ptr, kind) and `items` moves when it grows.
 */

static size_t dest_hash(wr_dest_t d)
{
    return (size_t)wr_hash_mix((uint64_t)(uintptr_t)d.ptr ^ (uint64_t)d.kind);
}

static bool dest_eq(wr_dest_t a, wr_dest_t b)
{
    return a.ptr == b.ptr && a.kind == b.kind;
}

static size_t set_slot_of(const wr_dest_set_t *s, wr_dest_t d, bool *found)
{
    size_t mask = s->index_cap - 1;
    size_t i = dest_hash(d) & mask;

    for (;; i = (i + 1) & mask) {
        uintptr_t v = (uintptr_t)s->index[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        if (dest_eq(s->items[v - 1], d)) {
            *found = true;
            return i;
        }
    }
}

static bool set_grow_index(wr_dest_set_t *s)
{
    size_t cap = s->index_cap ? s->index_cap * 2 : 16;
    void **index = calloc(cap, sizeof(*index));

    if (index == NULL)
        return false;
    free(s->index);
    s->index = index;
    s->index_cap = cap;
    for (size_t n = 0; n < s->count; n++) {
        bool found;
        size_t slot = set_slot_of(s, s->items[n], &found);
        s->index[slot] = (void *)(uintptr_t)(n + 1);
    }
    return true;
}

void wr_dest_set_init(wr_dest_set_t *s)
{
    memset(s, 0, sizeof(*s));
}

void wr_dest_set_clear(wr_dest_set_t *s)
{
    /* Zero only the slots in use: a set reused per message must not pay for
     * the size of the largest fanout it ever held. Newest first, so every
     * probe chain is still intact when its item is looked up (a chain only
     * passes through items inserted before its own). */
    for (size_t n = s->count; n-- > 0;) {
        bool found;
        s->index[set_slot_of(s, s->items[n], &found)] = NULL;
    }
    s->count = 0;
}

void wr_dest_set_free(wr_dest_set_t *s)
{
    free(s->items);
    free(s->index);
    wr_dest_set_init(s);
}

bool wr_dest_set_add(wr_dest_set_t *s, wr_dest_t d)
{
    bool found;
    size_t slot;

    /* Keep the load factor at or below one half so probes stay short. */
    if ((s->count + 1) * 2 > s->index_cap && !set_grow_index(s))
        return false;
    slot = set_slot_of(s, d, &found);
    if (found)
        return true;
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        wr_dest_t *items = realloc(s->items, cap * sizeof(*items));
        if (items == NULL)
            return false;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = d;
    s->index[slot] = (void *)(uintptr_t)s->count;
    return true;
}

bool wr_dest_set_has(const wr_dest_set_t *s, wr_dest_t d)
{
    bool found = false;

    if (s->index_cap > 0)
        set_slot_of(s, d, &found);
    return found;
}

/* ---- exchange types ----------------------------------------------------- */

static const wr_router_type_t *const router_types[] = {
    &wr_direct_type,
    &wr_fanout_type,
    &wr_topic_type,
    &wr_headers_type,
};

const wr_router_type_t *wr_router_type_find(wr_bytes_t name)
{
    for (size_t i = 0; i < sizeof(router_types) / sizeof(router_types[0]); i++)
        if (wr_bytes_eq_str(name, router_types[i]->name))
            return router_types[i];
    return NULL;
}

const char *wr_router_type_name(const wr_router_type_t *t)
{
    return t->name;
}

/* ---- router ------------------------------------------------------------- */

/*
 * The list heads stored as values in by_dest and by_key. A group keeps a copy
 * of its own map key so that dropping it never needs an allocation.
 */
typedef struct {
    wr_list_t bindings;
    size_t klen;
    uint8_t key[];
} router_group_t;

/* Map keys: a destination is its pointer and kind; by_key appends the routing key. */
static wr_bytes_t dest_map_key(wr_pkey_t *k, wr_dest_t d)
{
    return wr_pkey_key(k, d.ptr, (uint8_t)d.kind, (wr_bytes_t){NULL, 0});
}

static wr_bytes_t key_map_key(wr_pkey_t *k, wr_dest_t d, wr_bytes_t key)
{
    return wr_pkey_key(k, d.ptr, (uint8_t)d.kind, key);
}

wr_router_t *wr_router_new(const wr_router_type_t *t)
{
    wr_router_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->type = t;
    wr_list_init(&r->bindings);
    r->by_dest = wr_map_new();
    r->by_key = wr_map_new();
    if (r->by_dest == NULL || r->by_key == NULL)
        goto err;
    if (t->init != NULL && t->init(r) != WR_OK)
        goto err;
    return r;
err:
    wr_map_free(r->by_dest);
    wr_map_free(r->by_key);
    free(r);
    return NULL;
}

/* Drops the group for mkey from m if it has no bindings. */
static void group_release(wr_map_t *m, wr_bytes_t mkey)
{
    router_group_t *g = wr_map_get(m, mkey);

    if (g != NULL && wr_list_empty(&g->bindings)) {
        wr_map_del(m, mkey);
        free(g);
    }
}

/*
 * Unlinks a binding's node from a group list. When it was the group's only
 * binding its neighbour is the group's head, and the group goes too.
 */
static void group_unlink(wr_map_t *m, wr_list_t *node)
{
    router_group_t *g = NULL;

    if (node->next == node->prev)
        g = wr_list_entry(node->next, router_group_t, bindings);
    wr_list_remove(node);
    if (g != NULL) {
        wr_map_del(m, (wr_bytes_t){g->key, g->klen});
        free(g);
    }
}

static void router_remove(wr_router_t *r, wr_binding_t *b)
{
    if (r->type->remove != NULL)
        r->type->remove(r, b);
    wr_list_remove(&b->all);
    group_unlink(r->by_dest, &b->same_dest);
    group_unlink(r->by_key, &b->same_key);
    r->count--;
    free(b);
}

void wr_router_free(wr_router_t *r)
{
    wr_list_t *pos, *tmp;

    if (r == NULL)
        return;
    wr_list_foreach_safe(pos, tmp, &r->bindings)
    {
        router_remove(r, wr_list_entry(pos, wr_binding_t, all));
    }
    if (r->type->fini != NULL)
        r->type->fini(r);
    wr_map_free(r->by_dest);
    wr_map_free(r->by_key);
    free(r);
}

/* The group for mkey, created if absent; NULL when out of memory. */
static router_group_t *group_get(wr_map_t *m, wr_bytes_t mkey)
{
    router_group_t *g = wr_map_get(m, mkey);

    if (g != NULL)
        return g;
    g = malloc(sizeof(*g) + mkey.len);
    if (g == NULL)
        return NULL;
    wr_list_init(&g->bindings);
    g->klen = mkey.len;
    memcpy(g->key, mkey.data, mkey.len);
    if (wr_map_put(m, mkey, g) != WR_OK) {
        free(g);
        return NULL;
    }
    return g;
}

/* The binding with exactly this identity, or NULL. */
static wr_binding_t *group_find(const router_group_t *g, wr_bytes_t args)
{
    const wr_list_t *pos;

    if (g == NULL)
        return NULL;
    for (pos = g->bindings.next; pos != &g->bindings; pos = pos->next) {
        wr_binding_t *b = wr_list_entry(pos, wr_binding_t, same_key);
        if (wr_table_equiv(b->args, args))
            return b;
    }
    return NULL;
}

int wr_router_bind(wr_router_t *r, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    wr_pkey_t kk, dk;
    wr_bytes_t kkey, dkey;
    router_group_t *kg, *dg;
    wr_binding_t *b = NULL;
    int rc = WR_ENOMEM;

    if (!wr_pkey_init(&kk, key.len))
        return WR_ENOMEM;
    wr_pkey_init(&dk, 0);
    kkey = key_map_key(&kk, d, key);
    dkey = dest_map_key(&dk, d);
    if (group_find(wr_map_get(r->by_key, kkey), args) != NULL) {
        rc = WR_EEXIST;
        goto out;
    }
    b = malloc(sizeof(*b) + key.len + args.len);
    if (b == NULL)
        goto out;
    if (key.len > 0)
        memcpy(b->data, key.data, key.len);
    if (args.len > 0)
        memcpy(b->data + key.len, args.data, args.len);
    b->key = (wr_bytes_t){b->data, key.len};
    b->args = (wr_bytes_t){b->data + key.len, args.len};
    b->dest = d;
    b->type_data = NULL;
    wr_list_init(&b->type_link);
    kg = group_get(r->by_key, kkey);
    dg = group_get(r->by_dest, dkey);
    if (kg == NULL || dg == NULL)
        goto out;
    if (r->type->add != NULL && (rc = r->type->add(r, b)) != WR_OK)
        goto out;
    wr_list_insert_tail(&r->bindings, &b->all);
    wr_list_insert_tail(&dg->bindings, &b->same_dest);
    wr_list_insert_tail(&kg->bindings, &b->same_key);
    r->count++;
    b = NULL;
    rc = WR_OK;
out:
    /* On failure a group created above is still empty and goes away again. */
    if (b != NULL) {
        group_release(r->by_key, kkey);
        group_release(r->by_dest, dkey);
        free(b);
    }
    wr_pkey_done(&kk);
    wr_pkey_done(&dk);
    return rc;
}

/* The group of d's bindings, or NULL when nothing is bound to d. */
static router_group_t *dest_group(const wr_router_t *r, wr_dest_t d)
{
    wr_pkey_t k;
    router_group_t *g;

    wr_pkey_init(&k, 0);
    g = wr_map_get(r->by_dest, dest_map_key(&k, d));
    wr_pkey_done(&k);
    return g;
}

int wr_router_unbind(wr_router_t *r, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    wr_pkey_t k;
    wr_binding_t *b = NULL;
    router_group_t *g;

    if (key.len <= WR_PKEY_SMALL) {
        wr_pkey_init(&k, key.len);
        b = group_find(wr_map_get(r->by_key, key_map_key(&k, d, key)), args);
        wr_pkey_done(&k);
    } else if ((g = dest_group(r, d)) != NULL) {
        /* A key longer than any shortstr would need a malloc'd map key:
         * scan d's bindings instead, so that unbinding cannot fail. */
        for (const wr_list_t *pos = g->bindings.next; pos != &g->bindings; pos = pos->next) {
            wr_binding_t *c = wr_list_entry(pos, wr_binding_t, same_dest);
            if (wr_bytes_eq(c->key, key) && wr_table_equiv(c->args, args)) {
                b = c;
                break;
            }
        }
    }
    if (b == NULL)
        return WR_ENOENT;
    router_remove(r, b);
    return WR_OK;
}

size_t wr_router_unbind_dest(wr_router_t *r, wr_dest_t d)
{
    router_group_t *g = dest_group(r, d);
    size_t n = 0;

    /* Removing the last binding frees the group: note that before removing. */
    while (g != NULL) {
        bool last = g->bindings.next->next == &g->bindings;
        router_remove(r, wr_list_entry(g->bindings.next, wr_binding_t, same_dest));
        n++;
        if (last)
            break;
    }
    return n;
}

size_t wr_router_count(const wr_router_t *r)
{
    return r->count;
}

bool wr_router_has_dest(const wr_router_t *r, wr_dest_t d)
{
    return dest_group(r, d) != NULL;
}

void wr_router_foreach(const wr_router_t *r, wr_binding_fn fn, void *ud)
{
    const wr_list_t *pos;

    for (pos = r->bindings.next; pos != &r->bindings; pos = pos->next) {
        const wr_binding_t *b = wr_list_entry(pos, wr_binding_t, all);
        fn(ud, b->dest, b->key, b->args);
    }
}

bool wr_router_route(const wr_router_t *r, wr_bytes_t key, wr_bytes_t headers, wr_dest_set_t *out)
{
    return r->type->route(r, key, headers, out);
}
