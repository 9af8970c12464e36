/* SPDX-License-Identifier: MIT */
/*
 * The topology state machine (see topo_state.h). Per vhost it keys every
 * exchange and queue by its name's JSON text, and files each binding under
 * its destination, so deleting a queue or exchange drops its bindings in
 * O(1). Entries are shared with the records, never modified. Bindings from a deleted exchange are recognised
 * by incarnation: each user exchange gets a fresh number when declared, each binding remembers its source's,
 * and a dump drops the bindings whose number no longer matches.
 */
#include "broker/node/topo_state.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

struct wr_topo_state_s {
    json_t *vhosts;      /* name -> {"policies", "exchanges", "xinc", "queues", "bindings"} */
    json_int_t next_inc; /* the next exchange incarnation; 0 means a standard exchange */
    size_t size;
};

static const char *const op_names[] = {
    [WR_TOPO_EXCHANGE_DECLARE] = "exchange.declare",
    [WR_TOPO_EXCHANGE_DELETE] = "exchange.delete",
    [WR_TOPO_QUEUE_DECLARE] = "queue.declare",
    [WR_TOPO_QUEUE_DELETE] = "queue.delete",
    [WR_TOPO_BIND] = "bind",
    [WR_TOPO_UNBIND] = "unbind",
    [WR_TOPO_POLICIES] = "policies",
};

#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

wr_topo_state_t *wr_topo_state_new(void)
{
    wr_topo_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL || (st->vhosts = json_object()) == NULL) {
        free(st);
        return NULL;
    }
    st->next_inc = 1;
    return st;
}

void wr_topo_state_free(wr_topo_state_t *st)
{
    if (st == NULL)
        return;
    json_decref(st->vhosts);
    free(st);
}

json_t *wr_topo_rec(const char *vhost, wr_topo_op_t op, json_t *entry)
{
    if (entry == NULL)
        return NULL;
    return json_pack("{s:s,s:s,s:o}", "vhost", vhost, "op", op_names[op], "entry", entry);
}

size_t wr_topo_state_size(const wr_topo_state_t *st)
{
    return st->size;
}

/* ---------------------------------------------------------------- keys */

/* The JSON text of a name (a string or {"hex": ...}): the key it is filed under. */
static char *name_key(const json_t *name)
{
    if (!json_is_string(name) && !(json_is_object(name) && json_is_string(json_object_get(name, "hex"))))
        return NULL;
    return json_dumps(name, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
}

/* The key of a binding's destination group: "q" or "x", then the name's key. */
static char *dest_key(const json_t *b)
{
    const char *type = json_string_value(json_object_get(b, "destination_type"));
    char *k, *out;

    if (type == NULL || (strcmp(type, "queue") != 0 && strcmp(type, "exchange") != 0))
        return NULL;
    k = name_key(json_object_get(b, "destination"));
    if (k == NULL)
        return NULL;
    out = malloc(strlen(k) + 2);
    if (out != NULL)
        sprintf(out, "%c%s", type[0], k);
    free(k);
    return out;
}

/* A binding's identity within its destination group: source, key, arguments. */
static char *binding_key(const json_t *b)
{
    json_t *id;
    char *k;

    id = json_pack("[O,O,O]", json_object_get(b, "source"), json_object_get(b, "routing_key"),
                   json_object_get(b, "arguments"));
    if (id == NULL)
        return NULL;
    k = json_dumps(id, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(id);
    return k;
}

/* ---------------------------------------------------------------- vhosts */

/* The vhost's object, created empty if new; NULL on ENOMEM. */
static json_t *vhost_get(wr_topo_state_t *st, const char *name)
{
    json_t *v = json_object_get(st->vhosts, name);

    if (v != NULL)
        return v;
    v = json_pack("{s:[],s:{},s:{},s:{},s:{}}", "policies", "exchanges", "xinc", "queues", "bindings");
    if (v == NULL || json_object_set_new(st->vhosts, name, v) != 0)
        return NULL;
    return v;
}

/* Removes key from the section's object, keeping the count. */
static void section_del(wr_topo_state_t *st, json_t *v, const char *section, const char *key)
{
    json_t *obj = json_object_get(v, section);

    if (json_object_get(obj, key) != NULL) {
        json_object_del(obj, key);
        st->size--;
    }
}

/* Sets key in the section's object to e (stolen), keeping the count. */
static int section_put(wr_topo_state_t *st, json_t *obj, const char *key, json_t *e)
{
    bool fresh = json_object_get(obj, key) == NULL;

    if (e == NULL || json_object_set_new(obj, key, e) != 0)
        return WR_ENOMEM;
    if (fresh)
        st->size++;
    return WR_OK;
}

/* ---------------------------------------------------------------- apply */

typedef struct {
    wr_topo_state_t *st;
    json_t *v;           /* the vhost's object */
    const json_t *entry; /* the record's entry */
} apply_t;

static int apply_exchange_declare(apply_t *a, const char *key)
{
    json_t *inc = json_integer(a->st->next_inc++);

    if (inc == NULL || json_object_set_new(json_object_get(a->v, "xinc"), key, inc) != 0)
        return WR_ENOMEM;
    return section_put(a->st, json_object_get(a->v, "exchanges"), key, json_incref((json_t *)a->entry));
}

/* Drops the binding group of the destination key (kind 'q' or 'x'). */
static int drop_group(apply_t *a, char kind, const char *key)
{
    json_t *bindings = json_object_get(a->v, "bindings");
    char *gk = malloc(strlen(key) + 2);
    json_t *g;

    if (gk == NULL)
        return WR_ENOMEM;
    sprintf(gk, "%c%s", kind, key);
    g = json_object_get(bindings, gk);
    if (g != NULL) {
        a->st->size -= json_object_size(g);
        json_object_del(bindings, gk);
    }
    free(gk);
    return WR_OK;
}

static int apply_exchange_delete(apply_t *a, const char *key)
{
    section_del(a->st, a->v, "exchanges", key);
    json_object_del(json_object_get(a->v, "xinc"), key);
    return drop_group(a, 'x', key);
}

static int apply_queue_declare(apply_t *a, const char *key)
{
    if (!json_is_string(json_object_get(a->entry, "log")))
        return WR_ESYNTAX;
    return section_put(a->st, json_object_get(a->v, "queues"), key, json_incref((json_t *)a->entry));
}

static int apply_queue_delete(apply_t *a, const char *key)
{
    section_del(a->st, a->v, "queues", key);
    return drop_group(a, 'q', key);
}

/* The incarnation a binding from source (its name's key) gets now. */
static json_int_t source_inc(const apply_t *a, const char *skey)
{
    return json_integer_value(json_object_get(json_object_get(a->v, "xinc"), skey));
}

static int apply_binding(apply_t *a, bool bind)
{
    json_t *bindings = json_object_get(a->v, "bindings"), *g;
    char *gk = dest_key(a->entry), *bk = binding_key(a->entry),
         *sk = name_key(json_object_get(a->entry, "source"));
    int rc = WR_ESYNTAX;

    if (gk == NULL || bk == NULL || sk == NULL)
        goto out;
    g = json_object_get(bindings, gk);
    if (!bind) {
        if (json_object_get(g, bk) != NULL)
            section_del(a->st, bindings, gk, bk);
        rc = WR_OK;
        goto out;
    }
    rc = WR_ENOMEM;
    if (g == NULL && ((g = json_object()) == NULL || json_object_set_new(bindings, gk, g) != 0))
        goto out;
    rc = section_put(a->st, g, bk, json_pack("[O,I]", a->entry, source_inc(a, sk)));
out:
    free(gk);
    free(bk);
    free(sk);
    return rc;
}

static int apply_policies(apply_t *a)
{
    if (!json_is_array(a->entry))
        return WR_ESYNTAX;
    return json_object_set(a->v, "policies", (json_t *)a->entry) == 0 ? WR_OK : WR_ENOMEM;
}

static int apply_named(apply_t *a, wr_topo_op_t op)
{
    char *key = name_key(json_object_get(a->entry, "name"));
    int rc;

    if (key == NULL)
        return WR_ESYNTAX;
    switch (op) {
    case WR_TOPO_EXCHANGE_DECLARE:
        rc = apply_exchange_declare(a, key);
        break;
    case WR_TOPO_EXCHANGE_DELETE:
        rc = apply_exchange_delete(a, key);
        break;
    case WR_TOPO_QUEUE_DECLARE:
        rc = apply_queue_declare(a, key);
        break;
    default:
        rc = apply_queue_delete(a, key);
        break;
    }
    free(key);
    return rc;
}

static int op_find(const char *name, wr_topo_op_t *op)
{
    for (size_t i = 0; name != NULL && i < NOPS; i++) {
        if (strcmp(op_names[i], name) == 0) {
            *op = (wr_topo_op_t)i;
            return WR_OK;
        }
    }
    return WR_ESYNTAX;
}

int wr_topo_state_apply(wr_topo_state_t *st, const json_t *rec, char *err, size_t errlen)
{
    const char *vhost = json_string_value(json_object_get(rec, "vhost"));
    apply_t a = {st, NULL, json_object_get(rec, "entry")};
    wr_topo_op_t op;
    int rc = WR_ESYNTAX;

    if (vhost != NULL && a.entry != NULL &&
        op_find(json_string_value(json_object_get(rec, "op")), &op) == WR_OK) {
        a.v = vhost_get(st, vhost);
        if (a.v == NULL)
            rc = WR_ENOMEM;
        else if (op == WR_TOPO_BIND || op == WR_TOPO_UNBIND)
            rc = apply_binding(&a, op == WR_TOPO_BIND);
        else if (op == WR_TOPO_POLICIES)
            rc = apply_policies(&a);
        else
            rc = apply_named(&a, op);
    }
    if (rc == WR_ESYNTAX)
        snprintf(err, errlen, "not a topology change record");
    else if (rc == WR_ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

/* ---------------------------------------------------------------- load */

static int load_list(wr_topo_state_t *st, const char *vhost, const json_t *list, wr_topo_op_t op, char *err,
                     size_t errlen)
{
    const json_t *e;
    size_t i;

    json_array_foreach(list, i, e)
    {
        json_t *rec = wr_topo_rec(vhost, op, json_incref((json_t *)e));
        int rc = rec != NULL ? wr_topo_state_apply(st, rec, err, errlen) : WR_ENOMEM;

        json_decref(rec);
        if (rc != WR_OK)
            return rc;
    }
    return WR_OK;
}

int wr_topo_state_load(wr_topo_state_t *st, const json_t *vhosts, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        wr_topo_op_t op;
    } parts[] = {{"exchanges", WR_TOPO_EXCHANGE_DECLARE},
                 {"queues", WR_TOPO_QUEUE_DECLARE},
                 {"bindings", WR_TOPO_BIND}};
    const char *name;
    const json_t *v;
    int rc;

    json_object_foreach((json_t *)vhosts, name, v)
    {
        const json_t *pol = json_object_get(v, "policies");
        json_t *rec =
            wr_topo_rec(name, WR_TOPO_POLICIES, pol != NULL ? json_incref((json_t *)pol) : json_array());

        rc = rec != NULL ? wr_topo_state_apply(st, rec, err, errlen) : WR_ENOMEM;
        json_decref(rec);
        for (size_t p = 0; rc == WR_OK && p < sizeof(parts) / sizeof(parts[0]); p++)
            rc = load_list(st, name, json_object_get(v, parts[p].key), parts[p].op, err, errlen);
        if (rc != WR_OK) {
            if (rc == WR_ESYNTAX)
                snprintf(err, errlen, "vhost '%s' is malformed", name);
            return rc;
        }
    }
    return WR_OK;
}

/* ---------------------------------------------------------------- dump */

/* Appends the bindings of group g that are still valid; drops the others. */
static bool dump_group(wr_topo_state_t *st, json_t *v, json_t *g, json_t *out)
{
    const json_t *xinc = json_object_get(v, "xinc");
    const char *bk;
    json_t *b;
    void *tmp;

    json_object_foreach_safe(g, tmp, bk, b)
    {
        char *sk = name_key(json_object_get(json_array_get(b, 0), "source"));
        bool live = sk != NULL &&
                    json_integer_value(json_object_get(xinc, sk)) == json_integer_value(json_array_get(b, 1));

        free(sk);
        if (!live) {
            json_object_del(g, bk);
            st->size--;
        } else if (json_array_append(out, json_array_get(b, 0)) != 0) {
            return false;
        }
    }
    return true;
}

static json_t *values(const json_t *obj)
{
    json_t *list = json_array();
    const char *k;
    json_t *e;

    json_object_foreach((json_t *)obj, k, e)
    {
        if (list == NULL || json_array_append(list, e) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *dump_vhost(wr_topo_state_t *st, json_t *v)
{
    json_t *bindings = json_array(), *g;
    const char *gk;

    if (bindings == NULL)
        return NULL;
    json_object_foreach(json_object_get(v, "bindings"), gk, g)
    {
        if (!dump_group(st, v, g, bindings)) {
            json_decref(bindings);
            return NULL;
        }
    }
    return json_pack("{s:O,s:o,s:o,s:o}", "policies", json_object_get(v, "policies"), "exchanges",
                     values(json_object_get(v, "exchanges")), "queues", values(json_object_get(v, "queues")),
                     "bindings", bindings);
}

json_t *wr_topo_state_dump(wr_topo_state_t *st)
{
    json_t *out = json_object(), *v;
    const char *name;

    json_object_foreach(st->vhosts, name, v)
    {
        if (out == NULL || json_object_set_new(out, name, dump_vhost(st, v)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
