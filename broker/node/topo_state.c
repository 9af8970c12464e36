/* SPDX-License-Identifier: MIT */
/*
 * The definitions state machine (see topo_state.h for the record grammar).
 * Per vhost it keys every exchange and queue by its name's JSON text, files
 * each binding under its destination (deleting a queue or exchange drops its
 * bindings in O(1)) and each permission under its user; users are node-wide.
 * Entries are shared with the records, never modified. Bindings from a
 * deleted exchange are recognised by incarnation: each user exchange gets a
 * fresh number when declared, each binding remembers its source's, and a dump
 * drops the bindings whose number no longer matches.
 */
#include "broker/node/topo_state.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

struct wr_topo_state_s {
    json_t *vhosts; /* name -> {"settings"?, "policies", "exchanges", "xinc", "queues", "bindings",
                       "permissions"} */
    json_t *users;  /* name -> user.put entry */
    bool seeded;
    json_int_t next_inc; /* the next exchange incarnation; 0 means a standard exchange */
    size_t size;
};

static const struct {
    const char *name;
    bool node; /* node-wide: the record has no "vhost" */
} ops[] = {
    [WR_TOPO_EXCHANGE_DECLARE] = {"exchange.declare", false},
    [WR_TOPO_EXCHANGE_DELETE] = {"exchange.delete", false},
    [WR_TOPO_QUEUE_DECLARE] = {"queue.declare", false},
    [WR_TOPO_QUEUE_DELETE] = {"queue.delete", false},
    [WR_TOPO_BIND] = {"bind", false},
    [WR_TOPO_UNBIND] = {"unbind", false},
    [WR_TOPO_POLICIES] = {"policies", false},
    [WR_TOPO_VHOST_DECLARE] = {"vhost.declare", false},
    [WR_TOPO_VHOST_DELETE] = {"vhost.delete", false},
    [WR_TOPO_PERMISSION_PUT] = {"permission.put", false},
    [WR_TOPO_PERMISSION_DELETE] = {"permission.delete", false},
    [WR_TOPO_USER_PUT] = {"user.put", true},
    [WR_TOPO_USER_DELETE] = {"user.delete", true},
    [WR_TOPO_SEEDED] = {"seeded", true},
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

wr_topo_state_t *wr_topo_state_new(void)
{
    wr_topo_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL || (st->vhosts = json_object()) == NULL || (st->users = json_object()) == NULL) {
        wr_topo_state_free(st);
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
    json_decref(st->users);
    free(st);
}

json_t *wr_topo_rec(const char *vhost, wr_topo_op_t op, json_t *entry)
{
    if (entry == NULL)
        return NULL;
    if (ops[op].node)
        return json_pack("{s:s,s:o}", "op", ops[op].name, "entry", entry);
    return json_pack("{s:s,s:s,s:o}", "vhost", vhost, "op", ops[op].name, "entry", entry);
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
    v = json_pack("{s:[],s:{},s:{},s:{},s:{},s:{}}", "policies", "exchanges", "xinc", "queues", "bindings",
                  "permissions");
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
    char why[160];       /* what is wrong with the entry of a new-style op */
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

/* ---------------------------------------------------------------- vhosts, users, permissions */

/* A field's kind: a string, a list of strings, a boolean, an object. */
typedef struct {
    const char *key;
    char kind; /* 's', 'l', 'b', 'o' */
    bool optional;
} field_t;

static bool field_ok(const json_t *v, char kind)
{
    size_t i;
    const json_t *t;

    switch (kind) {
    case 's':
        return json_is_string(v);
    case 'b':
        return json_is_boolean(v);
    case 'o':
        return json_is_object(v);
    default:
        if (!json_is_array(v))
            return false;
        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t))
                return false;
        }
        return true;
    }
}

/* Whether the entry is an object with these fields; a->why says why not. */
static bool fields_ok(apply_t *a, const field_t *f, size_t n)
{
    static const char *const kinds[] = {"a string", "a list of strings", "a boolean", "an object"};

    if (!json_is_object(a->entry)) {
        snprintf(a->why, sizeof(a->why), "entry must be an object");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(a->entry, f[i].key);

        if ((v == NULL && f[i].optional) || (v != NULL && field_ok(v, f[i].kind)))
            continue;
        snprintf(a->why, sizeof(a->why), "\"%s\" must be %s", f[i].key,
                 kinds[strchr("slbo", f[i].kind) - "slbo"]);
        return false;
    }
    return true;
}

static int apply_vhost_declare(apply_t *a)
{
    static const field_t f[] = {{"description", 's', true},
                                {"tags", 'l', true},
                                {"default_queue_type", 's', true},
                                {"tracing", 'b', true}};

    if (!fields_ok(a, f, sizeof(f) / sizeof(f[0])))
        return WR_ESYNTAX;
    return json_object_set(a->v, "settings", (json_t *)a->entry) == 0 ? WR_OK : WR_ENOMEM;
}

/* Entries in a vhost's object: exchanges, queues, bindings, permissions. */
static size_t vhost_size(const json_t *v)
{
    size_t n = json_object_size(json_object_get(v, "exchanges")) +
               json_object_size(json_object_get(v, "queues")) +
               json_object_size(json_object_get(v, "permissions"));
    const char *gk;
    json_t *g;

    json_object_foreach(json_object_get(v, "bindings"), gk, g)
    {
        n += json_object_size(g);
    }
    return n;
}

static int apply_vhost_delete(apply_t *a, const char *vhost)
{
    json_t *v = json_object_get(a->st->vhosts, vhost);

    if (!fields_ok(a, NULL, 0))
        return WR_ESYNTAX;
    if (v != NULL) {
        a->st->size -= vhost_size(v);
        json_object_del(a->st->vhosts, vhost);
    }
    return WR_OK;
}

static int apply_permission(apply_t *a, const char *vhost, bool put)
{
    static const field_t f[] = {
        {"user", 's', false}, {"configure", 's', false}, {"write", 's', false}, {"read", 's', false}};
    json_t *v = json_object_get(a->st->vhosts, vhost);
    const char *user;

    if (!fields_ok(a, f, put ? 4 : 1))
        return WR_ESYNTAX;
    user = json_string_value(json_object_get(a->entry, "user"));
    if (v == NULL)
        return WR_OK;
    if (!put) {
        section_del(a->st, v, "permissions", user);
        return WR_OK;
    }
    if (json_object_get(a->st->users, user) == NULL)
        return WR_OK;
    return section_put(a->st, json_object_get(v, "permissions"), user, json_incref((json_t *)a->entry));
}

static int apply_user_put(apply_t *a)
{
    static const field_t f[] = {{"name", 's', false},
                                {"password_hash", 's', false},
                                {"hashing_algorithm", 's', false},
                                {"tags", 'l', false},
                                {"limits", 'o', true}};
    const char *name;

    if (!fields_ok(a, f, sizeof(f) / sizeof(f[0])))
        return WR_ESYNTAX;
    name = json_string_value(json_object_get(a->entry, "name"));
    if (name[0] == '\0') {
        snprintf(a->why, sizeof(a->why), "\"name\" must not be empty");
        return WR_ESYNTAX;
    }
    return section_put(a->st, a->st->users, name, json_incref((json_t *)a->entry));
}

static int apply_user_delete(apply_t *a)
{
    static const field_t f[] = {{"name", 's', false}};
    const char *name, *vname;
    json_t *v;

    if (!fields_ok(a, f, 1))
        return WR_ESYNTAX;
    name = json_string_value(json_object_get(a->entry, "name"));
    json_object_foreach(a->st->vhosts, vname, v)
    {
        section_del(a->st, v, "permissions", name);
    }
    if (json_object_get(a->st->users, name) != NULL) {
        json_object_del(a->st->users, name);
        a->st->size--;
    }
    return WR_OK;
}

static int apply_node(apply_t *a, wr_topo_op_t op)
{
    switch (op) {
    case WR_TOPO_USER_PUT:
        return apply_user_put(a);
    case WR_TOPO_USER_DELETE:
        return apply_user_delete(a);
    default:
        if (!fields_ok(a, NULL, 0))
            return WR_ESYNTAX;
        a->st->seeded = true;
        return WR_OK;
    }
}

/* ---------------------------------------------------------------- records */

static int op_find(const char *name, wr_topo_op_t *op)
{
    for (size_t i = 0; name != NULL && i < NOPS; i++) {
        if (strcmp(ops[i].name, name) == 0) {
            *op = (wr_topo_op_t)i;
            return WR_OK;
        }
    }
    return WR_ESYNTAX;
}

/* An op on the vhost's contents, creating the vhost if it is new. */
static int apply_contents(apply_t *a, wr_topo_op_t op)
{
    if (op == WR_TOPO_VHOST_DECLARE)
        return apply_vhost_declare(a);
    if (op == WR_TOPO_BIND || op == WR_TOPO_UNBIND)
        return apply_binding(a, op == WR_TOPO_BIND);
    if (op == WR_TOPO_POLICIES)
        return apply_policies(a);
    return apply_named(a, op);
}

static int apply_vhost(apply_t *a, const char *vhost, wr_topo_op_t op)
{
    bool fresh = json_object_get(a->st->vhosts, vhost) == NULL;
    int rc;

    if (op == WR_TOPO_VHOST_DELETE)
        return apply_vhost_delete(a, vhost);
    if (op == WR_TOPO_PERMISSION_PUT || op == WR_TOPO_PERMISSION_DELETE)
        return apply_permission(a, vhost, op == WR_TOPO_PERMISSION_PUT);
    a->v = vhost_get(a->st, vhost);
    if (a->v == NULL)
        return WR_ENOMEM;
    rc = apply_contents(a, op);
    /* A malformed record leaves the state as it was. */
    if (rc == WR_ESYNTAX && fresh)
        json_object_del(a->st->vhosts, vhost);
    return rc;
}

int wr_topo_state_apply(wr_topo_state_t *st, const json_t *rec, char *err, size_t errlen)
{
    const json_t *vhost = json_object_get(rec, "vhost");
    apply_t a = {st, NULL, json_object_get(rec, "entry"), ""};
    wr_topo_op_t op = WR_TOPO_EXCHANGE_DECLARE;
    int rc = WR_ESYNTAX;

    if (a.entry != NULL && op_find(json_string_value(json_object_get(rec, "op")), &op) == WR_OK) {
        if (ops[op].node && vhost != NULL)
            snprintf(a.why, sizeof(a.why), "a node-wide record has no \"vhost\"");
        else if (ops[op].node)
            rc = apply_node(&a, op);
        else if (json_is_string(vhost))
            rc = apply_vhost(&a, json_string_value(vhost), op);
    }
    if (rc == WR_ESYNTAX && a.why[0] != '\0')
        snprintf(err, errlen, "%s: %s", ops[op].name, a.why);
    else if (rc == WR_ESYNTAX)
        snprintf(err, errlen, "not a topology change record");
    else if (rc == WR_ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

/* ---------------------------------------------------------------- load */

static int load_one(wr_topo_state_t *st, const char *vhost, wr_topo_op_t op, const json_t *e, char *err,
                    size_t errlen)
{
    json_t *rec = wr_topo_rec(vhost, op, json_incref((json_t *)e));
    int rc = rec != NULL ? wr_topo_state_apply(st, rec, err, errlen) : WR_ENOMEM;

    json_decref(rec);
    return rc;
}

static int load_list(wr_topo_state_t *st, const char *vhost, const json_t *list, wr_topo_op_t op, char *err,
                     size_t errlen)
{
    const json_t *e;
    size_t i;

    if (list != NULL && !json_is_array(list))
        return WR_ESYNTAX;
    json_array_foreach(list, i, e)
    {
        int rc = load_one(st, vhost, op, e, err, errlen);

        if (rc != WR_OK)
            return rc;
    }
    return WR_OK;
}

static int load_vhost(wr_topo_state_t *st, const char *name, const json_t *v, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        wr_topo_op_t op;
    } parts[] = {{"exchanges", WR_TOPO_EXCHANGE_DECLARE},
                 {"queues", WR_TOPO_QUEUE_DECLARE},
                 {"bindings", WR_TOPO_BIND},
                 {"permissions", WR_TOPO_PERMISSION_PUT}};
    const json_t *pol = json_object_get(v, "policies"), *settings = json_object_get(v, "settings");
    json_t *none = json_array();
    int rc = none != NULL ? WR_OK : WR_ENOMEM;

    if (rc == WR_OK)
        rc = load_one(st, name, WR_TOPO_POLICIES, pol != NULL ? pol : none, err, errlen);
    json_decref(none);
    if (rc == WR_OK && settings != NULL)
        rc = load_one(st, name, WR_TOPO_VHOST_DECLARE, settings, err, errlen);
    for (size_t p = 0; rc == WR_OK && p < sizeof(parts) / sizeof(parts[0]); p++)
        rc = load_list(st, name, json_object_get(v, parts[p].key), parts[p].op, err, errlen);
    if (rc == WR_ESYNTAX)
        snprintf(err, errlen, "vhost '%s' is malformed", name);
    return rc;
}

int wr_topo_state_load(wr_topo_state_t *st, const json_t *snap, char *err, size_t errlen)
{
    const json_t *vhosts = json_object_get(snap, "vhosts"), *seeded = json_object_get(snap, "seeded"), *v;
    const char *name;
    int rc;

    if (!json_is_object(vhosts) || (seeded != NULL && !json_is_boolean(seeded))) {
        snprintf(err, errlen, "not a topology snapshot");
        return WR_ESYNTAX;
    }
    rc = load_list(st, NULL, json_object_get(snap, "users"), WR_TOPO_USER_PUT, err, errlen);
    if (rc == WR_ESYNTAX)
        snprintf(err, errlen, "its users are malformed");
    json_object_foreach((json_t *)vhosts, name, v)
    {
        if (rc == WR_OK)
            rc = load_vhost(st, name, v, err, errlen);
    }
    st->seeded |= json_is_true(seeded);
    return rc;
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
    json_t *bindings = json_array(), *g, *out, *settings = json_object_get(v, "settings");
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
    out = json_pack("{s:O,s:o,s:o,s:o,s:o}", "policies", json_object_get(v, "policies"), "exchanges",
                    values(json_object_get(v, "exchanges")), "queues", values(json_object_get(v, "queues")),
                    "bindings", bindings, "permissions", values(json_object_get(v, "permissions")));
    if (out != NULL && settings != NULL && json_object_set(out, "settings", settings) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *wr_topo_state_dump(wr_topo_state_t *st)
{
    json_t *vhosts = json_object(), *v;
    const char *name;

    json_object_foreach(st->vhosts, name, v)
    {
        if (vhosts == NULL || json_object_set_new(vhosts, name, dump_vhost(st, v)) != 0) {
            json_decref(vhosts);
            return NULL;
        }
    }
    return json_pack("{s:b,s:o,s:o}", "seeded", st->seeded, "users", values(st->users), "vhosts", vhosts);
}
