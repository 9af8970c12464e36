/* SPDX-License-Identifier: MIT */
/*
 * The metadata group's vhosts, users, permissions and policies: their
 * commands applied to the state (meta_internal.h) and then to the live
 * objects (the server's vhosts, the users database, the policies), the seed
 * that makes one node's definitions the cluster's, and the reconciliation of
 * the live objects with a seeded state (seed, snapshot install).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/base/log.h"
#include "broker/cluster/meta_internal.h"
#include "broker/vhost/policy.h"
#include "core/base64.h"
#include "core/status.h"
#include "protocol/constants.h"

#define MAX_TAGS 32

typedef struct {
    wr_meta_t *m;
    const char *op;
    const char *vname; /* the command's "vhost" ("" for users) */
    const json_t *entry;
    wr_meta_result_t *res;
} defs_t;

static const char *const kinds[WR_PERM_KINDS] = {"configure", "write", "read"};

/* ---------------------------------------------------------------- state */

json_t *wr_meta_state_new(void)
{
    return json_pack("{s:i,s:b,s:{},s:{},s:{},s:{},s:{}}", "version", WR_META_SNAPSHOT_VERSION, "seeded", 0,
                     "topology", "vhosts", "users", "permissions", "policies");
}

static bool is_state(const json_t *st)
{
    static const char *const sects[] = {"topology", "vhosts", "users", "permissions", "policies"};

    for (size_t i = 0; i < sizeof(sects) / sizeof(sects[0]); i++)
        if (!json_is_object(json_object_get(st, sects[i])))
            return false;
    return json_is_boolean(json_object_get(st, "seeded"));
}

/* Version 1: the topology alone, an object of vhosts with three objects each. */
static bool is_topology(const json_t *t)
{
    const char *k;
    json_t *v;

    if (!json_is_object(t))
        return false;
    json_object_foreach((json_t *)t, k, v)
    {
        if (!json_is_object(json_object_get(v, "exchanges")) ||
            !json_is_object(json_object_get(v, "queues")) || !json_is_object(json_object_get(v, "bindings")))
            return false;
    }
    return true;
}

/* A version 1 snapshot as a version 2 state: not seeded. Takes t. */
static json_t *upgrade(json_t *t)
{
    json_t *st = wr_meta_state_new();

    if (st == NULL || json_object_set_new(st, "topology", t) != 0) {
        json_decref(st);
        return NULL;
    }
    return st;
}

json_t *wr_meta_state_load(const uint8_t *data, size_t len, char *why, size_t n)
{
    json_t *st = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *ver = json_object_get(st, "version");

    if (json_is_object(st) && ver == NULL && is_topology(st))
        return upgrade(st);
    if (json_is_integer(ver) && json_integer_value(ver) != WR_META_SNAPSHOT_VERSION)
        snprintf(why, n, "its version %lld is not one this node reads (1 or %d)",
                 (long long)json_integer_value(ver), WR_META_SNAPSHOT_VERSION);
    else if (!json_is_integer(ver) || !is_state(st) || !is_topology(json_object_get(st, "topology")))
        snprintf(why, n, "it is malformed");
    else
        return st;
    json_decref(st);
    return NULL;
}

json_t *wr_meta_topology(const wr_meta_t *m)
{
    return json_object_get(m->state, "topology");
}

static json_t *sect(const wr_meta_t *m, const char *name)
{
    return json_object_get(m->state, name);
}

bool wr_meta_seeded(const wr_meta_t *m)
{
    return json_is_true(json_object_get(m->state, "seeded"));
}

size_t wr_meta_queue_count(const wr_meta_t *m, const char *vhost)
{
    return json_object_size(json_object_get(json_object_get(wr_meta_topology(m), vhost), "queues"));
}

bool wr_meta_vhost_known(const wr_meta_t *m, const char *name)
{
    return !wr_meta_seeded(m) || json_object_get(sect(m, "vhosts"), name) != NULL;
}

/* The vhost's object in a per-vhost section, created empty; NULL on ENOMEM. */
static json_t *per_vhost(const wr_meta_t *m, const char *section, const char *vhost)
{
    json_t *s = sect(m, section), *v = json_object_get(s, vhost);

    if (v == NULL && ((v = json_object()) == NULL || json_object_set_new(s, vhost, v) != 0))
        return NULL;
    return v;
}

/* Drops key from the vhost's object in section, and the object once empty. */
static void per_vhost_del(const wr_meta_t *m, const char *section, const char *vhost, const char *key)
{
    json_t *v = json_object_get(sect(m, section), vhost);

    json_object_del(v, key);
    if (v != NULL && json_object_size(v) == 0)
        json_object_del(sect(m, section), vhost);
}

static void fail(defs_t *d, uint16_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(defs_t *d, uint16_t code, const char *fmt, ...)
{
    char text[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    wr_amqp_error_set(&d->res->err, code, 0, "%s", text);
}

static void malformed(defs_t *d)
{
    wr_amqp_error_set(&d->res->err, WR_AMQP_INTERNAL_ERROR, 0, "malformed metadata command: %s: bad 'entry'",
                      d->op);
}

/* Sets key in obj to v (takes it); false with a 541 on ENOMEM. */
static bool put(defs_t *d, json_t *obj, const char *key, json_t *v)
{
    if (obj != NULL && v != NULL && json_object_set_new(obj, key, v) == 0)
        return true;
    json_decref(v);
    wr_amqp_error_set(&d->res->err, WR_AMQP_INTERNAL_ERROR, 0, "out of memory");
    return false;
}

static const char *entry_str(const defs_t *d, const char *key)
{
    return json_string_value(json_object_get(d->entry, key));
}

/* ---------------------------------------------------------------- live objects */

static bool live(const wr_meta_t *m)
{
    return m->deps.users != NULL;
}

static const char *alg_name(wr_hash_alg_t alg)
{
    return alg == WR_HASH_SHA512 ? "rabbit_password_hashing_sha512"
           : alg == WR_HASH_MD5  ? "rabbit_password_hashing_md5"
                                 : "rabbit_password_hashing_sha256";
}

/* A user entry's hash and tags, checked; false when malformed. */
static bool user_fields(const json_t *u, wr_hash_alg_t *alg, uint8_t *hash, size_t *len, const char **tags,
                        size_t *ntags)
{
    const char *b64 = json_string_value(json_object_get(u, "password_hash"));
    const char *an = json_string_value(json_object_get(u, "hashing_algorithm"));
    const json_t *t;
    size_t i;

    *ntags = 0;
    if (b64 == NULL || an == NULL || !wr_auth_hash_alg_parse(an, alg) ||
        wr_auth_hash_decode(b64, *alg, hash, len) != WR_OK || !json_is_array(json_object_get(u, "tags")))
        return false;
    json_array_foreach(json_object_get(u, "tags"), i, t)
    {
        if (!json_is_string(t) || *ntags == MAX_TAGS)
            return false;
        tags[(*ntags)++] = json_string_value(t);
    }
    t = json_object_get(json_object_get(u, "limits"), "max-connections");
    if (t != NULL && !json_is_integer(t))
        return false;
    t = json_object_get(json_object_get(u, "limits"), "max-channels");
    return t == NULL || json_is_integer(t);
}

static void live_user_put(const wr_meta_t *m, const char *name, const json_t *u)
{
    uint8_t hash[WR_PASSWORD_HASH_MAX];
    const char *tags[MAX_TAGS];
    const json_t *max = json_object_get(json_object_get(u, "limits"), "max-connections");
    const json_t *chans = json_object_get(json_object_get(u, "limits"), "max-channels");
    size_t len, ntags;
    wr_hash_alg_t alg;
    bool created;

    if (!live(m) || !user_fields(u, &alg, hash, &len, tags, &ntags))
        return;
    if (wr_users_put(m->deps.users, name, hash, len, alg, tags, ntags, &created) != WR_OK)
        wr_log_error("cluster: out of memory putting user '%s'", name);
    else
        wr_users_set_limits(m->deps.users, name, max != NULL, json_integer_value(max), chans != NULL,
                            json_integer_value(chans));
}

static void live_user_delete(const wr_meta_t *m, const char *name)
{
    if (live(m) && wr_users_delete(m->deps.users, name) && m->deps.user_deleted != NULL)
        m->deps.user_deleted(m->deps.ud, name);
}

static void live_permission_put(const wr_meta_t *m, const char *vhost, const char *user, const json_t *p)
{
    const char *pattern[WR_PERM_KINDS];
    char why[300];
    bool created;

    if (!live(m))
        return;
    for (int k = 0; k < WR_PERM_KINDS; k++)
        pattern[k] = json_string_value(json_object_get(p, kinds[k]));
    if (wr_users_put_permission(m->deps.users, user, vhost, pattern, &created, why, sizeof(why)) != WR_OK)
        wr_log_error("cluster: permission of '%s' in vhost '%s' not set: %s", user, vhost, why);
}

static void live_policy_put(const wr_meta_t *m, const char *vhost, const char *name, const json_t *p)
{
    char why[512];

    if (live(m) &&
        wr_policy_put(m->deps.policies, vhost, name, json_string_value(json_object_get(p, "pattern")),
                      json_string_value(json_object_get(p, "apply-to")),
                      json_integer_value(json_object_get(p, "priority")), json_object_get(p, "definition"),
                      why, sizeof(why)) != WR_OK)
        wr_log_error("cluster: policy '%s' in vhost '%s' not set: %s", name, vhost, why);
}

static void live_vhost_add(const wr_meta_t *m, const char *name, const json_t *settings)
{
    int rc = live(m) ? m->deps.vhost_add(m->deps.ud, name, settings) : WR_OK;

    if (rc != WR_OK && rc != WR_EEXIST)
        wr_log_error("cluster: out of memory creating vhost '%s'", name);
}

static void live_vhost_delete(const wr_meta_t *m, const char *name)
{
    if (live(m) && wr_map_get(m->deps.vhosts, wr_bytes_str(name)) != NULL &&
        m->deps.vhost_delete(m->deps.ud, name) != WR_OK)
        wr_log_error("cluster: out of memory deleting vhost '%s'", name);
}

/* ---------------------------------------------------------------- vhosts */

static void permission_set_in(defs_t *d, const char *vhost, const char *user, json_t *p);

/* A vhost.add without settings keeps an existing vhost's, and gives a new
 * one the defaults (a definitions import names vhosts only). */
static void vhost_add(defs_t *d)
{
    const json_t *settings = json_object_get(d->entry, "settings");
    const char *grant = entry_str(d, "grant");
    json_t *all;

    if ((settings != NULL && !json_is_object(settings)) || d->vname[0] == '\0') {
        malformed(d);
        return;
    }
    d->res->created = json_object_get(sect(d->m, "vhosts"), d->vname) == NULL;
    if (settings == NULL && !d->res->created)
        return;
    if (!put(d, sect(d->m, "vhosts"), d->vname,
             settings != NULL ? json_deep_copy(settings)
                              : json_pack("{s:s,s:[],s:b}", "description", "", "tags", "tracing", 0)))
        return;
    live_vhost_add(d->m, d->vname, json_object_get(sect(d->m, "vhosts"), d->vname));
    /* RabbitMQ gives the user who creates a vhost every permission in it. */
    if (!d->res->created || grant == NULL || json_object_get(sect(d->m, "users"), grant) == NULL)
        return;
    all = json_pack("{s:s,s:s,s:s}", "configure", ".*", "write", ".*", "read", ".*");
    permission_set_in(d, d->vname, grant, all);
}

static void vhost_delete(defs_t *d)
{
    if (json_object_get(sect(d->m, "vhosts"), d->vname) == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no vhost '%s'", d->vname);
        return;
    }
    json_object_del(sect(d->m, "vhosts"), d->vname);
    json_object_del(wr_meta_topology(d->m), d->vname);
    json_object_del(sect(d->m, "permissions"), d->vname);
    json_object_del(sect(d->m, "policies"), d->vname);
    live_vhost_delete(d->m, d->vname);
}

/* ---------------------------------------------------------------- limits */

/* Sets (an integer value) or clears (null) limit `name` in holder's "limits"
 * object, dropped once empty; false when malformed (then d says so). */
static bool limit_set(defs_t *d, json_t *holder, const char *const allowed[2])
{
    const char *name = entry_str(d, "limit");
    const json_t *value = json_object_get(d->entry, "value");
    json_t *limits = json_object_get(holder, "limits");

    if (name == NULL || (strcmp(name, allowed[0]) != 0 && strcmp(name, allowed[1]) != 0) ||
        (!json_is_integer(value) && !json_is_null(value))) {
        malformed(d);
        return false;
    }
    if (limits == NULL && json_is_integer(value) && !put(d, holder, "limits", limits = json_object()))
        return false;
    if (json_is_null(value))
        json_object_del(limits, name);
    else if (!put(d, limits, name, json_incref((json_t *)value)))
        return false;
    if (limits != NULL && json_object_size(limits) == 0)
        json_object_del(holder, "limits");
    return true;
}

/* vhost.limit: "max-connections" or "max-queues" in the vhost's settings. */
static void vhost_limit(defs_t *d)
{
    static const char *const names[2] = {"max-connections", "max-queues"};
    json_t *settings = json_object_get(sect(d->m, "vhosts"), d->vname);

    if (settings == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no vhost '%s'", d->vname);
        return;
    }
    if (limit_set(d, settings, names))
        live_vhost_add(d->m, d->vname, settings);
}

/* user.limit: "max-connections" or "max-channels" in the user's record. */
static void user_limit(defs_t *d)
{
    static const char *const names[2] = {"max-connections", "max-channels"};
    const char *name = entry_str(d, "user");
    json_t *u = name != NULL ? json_object_get(sect(d->m, "users"), name) : NULL;

    if (name == NULL) {
        malformed(d);
        return;
    }
    if (u == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no user '%s'", name);
        return;
    }
    if (limit_set(d, u, names))
        live_user_put(d->m, name, u);
}

/* ---------------------------------------------------------------- users */

/* The user's new record: the entry's fields, the old record's hash when the
 * entry has none, and its limits when the entry gives none. */
static json_t *user_record(const json_t *e, const json_t *old)
{
    const json_t *hash = json_object_get(e, "password_hash"), *limits = json_object_get(e, "limits");
    const json_t *src = hash != NULL ? e : old;
    const char *alg = json_string_value(json_object_get(src, "hashing_algorithm"));
    json_t *u = json_pack("{s:s,s:s,s:O}", "password_hash",
                          src != NULL ? json_string_value(json_object_get(src, "password_hash")) : "",
                          "hashing_algorithm", alg != NULL ? alg : alg_name(WR_HASH_SHA256), "tags",
                          json_object_get(e, "tags"));

    if (limits == NULL)
        limits = json_object_get(old, "limits");
    if (u != NULL && limits != NULL && json_object_set(u, "limits", (json_t *)limits) != 0) {
        json_decref(u);
        return NULL;
    }
    return u;
}

static void user_put(defs_t *d)
{
    const char *name = entry_str(d, "name");
    const json_t *old = name != NULL ? json_object_get(sect(d->m, "users"), name) : NULL;
    uint8_t hash[WR_PASSWORD_HASH_MAX];
    const char *tags[MAX_TAGS];
    size_t len, ntags;
    wr_hash_alg_t alg;
    json_t *u = name != NULL && name[0] != '\0' ? user_record(d->entry, old) : NULL;

    if (u == NULL || !user_fields(u, &alg, hash, &len, tags, &ntags)) {
        json_decref(u);
        malformed(d);
        return;
    }
    d->res->created = old == NULL;
    if (put(d, sect(d->m, "users"), name, u))
        live_user_put(d->m, name, u);
}

static void user_delete(defs_t *d)
{
    const char *name = entry_str(d, "name"), *v;
    json_t *perms = sect(d->m, "permissions"), *p;
    void *tmp;

    if (name == NULL) {
        malformed(d);
        return;
    }
    if (json_object_get(sect(d->m, "users"), name) == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no user '%s'", name);
        return;
    }
    json_object_foreach_safe(perms, tmp, v, p)
    {
        per_vhost_del(d->m, "permissions", v, name);
    }
    live_user_delete(d->m, name);
    json_object_del(sect(d->m, "users"), name);
}

/* ---------------------------------------------------------------- permissions */

/* Sets the permission (takes p) in the state and live. */
static void permission_set_in(defs_t *d, const char *vhost, const char *user, json_t *p)
{
    json_t *v = per_vhost(d->m, "permissions", vhost);

    d->res->created = v != NULL && json_object_get(v, user) == NULL;
    if (put(d, v, user, p))
        live_permission_put(d->m, vhost, user, p);
}

static void permission_set(defs_t *d)
{
    const char *user = entry_str(d, "user");
    char why[300];
    json_t *p;

    for (int k = 0; k < WR_PERM_KINDS; k++) {
        const char *pat = entry_str(d, kinds[k]);
        if (pat == NULL || !wr_users_pattern_ok(pat, why, sizeof(why))) {
            malformed(d);
            return;
        }
    }
    if (user == NULL) {
        malformed(d);
        return;
    }
    if (json_object_get(sect(d->m, "users"), user) == NULL ||
        json_object_get(sect(d->m, "vhosts"), d->vname) == NULL) {
        fail(d, WR_AMQP_PRECONDITION_FAILED, "vhost_or_user_not_found");
        return;
    }
    p = json_pack("{s:s,s:s,s:s}", kinds[0], entry_str(d, kinds[0]), kinds[1], entry_str(d, kinds[1]),
                  kinds[2], entry_str(d, kinds[2]));
    permission_set_in(d, d->vname, user, p);
}

static void permission_clear(defs_t *d)
{
    const char *user = entry_str(d, "user");

    if (user == NULL) {
        malformed(d);
        return;
    }
    if (json_object_get(json_object_get(sect(d->m, "permissions"), d->vname), user) == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no permission of user '%s' in vhost '%s'", user, d->vname);
        return;
    }
    per_vhost_del(d->m, "permissions", d->vname, user);
    if (live(d->m))
        wr_users_delete_permission(d->m->deps.users, user, d->vname);
}

/* ---------------------------------------------------------------- policies */

static void policy_set(defs_t *d)
{
    const char *name = entry_str(d, "name"), *pattern = entry_str(d, "pattern");
    const char *apply = entry_str(d, "apply-to");
    const json_t *def = json_object_get(d->entry, "definition"),
                 *prio = json_object_get(d->entry, "priority");
    char why[512];
    json_t *v, *p;

    if (name == NULL || pattern == NULL || !json_is_integer(prio) ||
        wr_policy_validate(pattern, apply, def, why, sizeof(why)) != WR_OK) {
        malformed(d);
        return;
    }
    if (json_object_get(sect(d->m, "vhosts"), d->vname) == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "vhost_not_found");
        return;
    }
    v = per_vhost(d->m, "policies", d->vname);
    d->res->created = v != NULL && json_object_get(v, name) == NULL;
    p = json_pack("{s:s,s:s,s:O,s:O}", "pattern", pattern, "apply-to", apply != NULL ? apply : "all",
                  "priority", prio, "definition", def);
    if (put(d, v, name, p))
        live_policy_put(d->m, d->vname, name, p);
}

static void policy_clear(defs_t *d)
{
    const char *name = entry_str(d, "name");

    if (name == NULL) {
        malformed(d);
        return;
    }
    if (json_object_get(json_object_get(sect(d->m, "policies"), d->vname), name) == NULL) {
        fail(d, WR_AMQP_NOT_FOUND, "no policy '%s' in vhost '%s'", name, d->vname);
        return;
    }
    per_vhost_del(d->m, "policies", d->vname, name);
    if (live(d->m))
        wr_policy_delete(d->m->deps.policies, d->vname, name);
}

/* ---------------------------------------------------------------- seed */

/* Adds what from lacks to into (two levels deep when nested): the state's
 * own entries win over the seed's. */
static bool merge(json_t *into, const json_t *from, bool nested)
{
    const char *k;
    json_t *v, *cur;

    json_object_foreach((json_t *)from, k, v)
    {
        cur = json_object_get(into, k);
        if (cur == NULL && json_object_set_new(into, k, json_deep_copy(v)) != 0)
            return false;
        if (cur != NULL && nested && !merge(cur, v, false))
            return false;
    }
    return true;
}

/* Drops what names a vhost (or user) the state does not hold. */
static void prune(const wr_meta_t *m)
{
    const char *k, *u;
    json_t *v, *p;
    void *tmp, *tmp2;

    json_object_foreach_safe(wr_meta_topology(m), tmp, k, v)
    {
        if (json_object_get(sect(m, "vhosts"), k) == NULL)
            json_object_del(wr_meta_topology(m), k);
    }
    json_object_foreach_safe(sect(m, "policies"), tmp, k, v)
    {
        if (json_object_get(sect(m, "vhosts"), k) == NULL)
            json_object_del(sect(m, "policies"), k);
    }
    json_object_foreach_safe(sect(m, "permissions"), tmp, k, v)
    {
        json_incref(v); /* the last deletion drops it from the section */
        json_object_foreach_safe(v, tmp2, u, p)
        {
            if (json_object_get(sect(m, "users"), u) == NULL || json_object_get(sect(m, "vhosts"), k) == NULL)
                per_vhost_del(m, "permissions", k, u);
        }
        json_decref(v);
    }
}

/* The first seed committed makes the definitions the cluster's: the state
 * takes what it lacks of the seed's, and the live objects follow the state.
 * Later seeds (another node's, or a retry) change nothing. */
static void seed(defs_t *d)
{
    static const char *const sects[] = {"vhosts", "users", "permissions", "policies"};

    for (size_t i = 0; i < sizeof(sects) / sizeof(sects[0]); i++) {
        if (!json_is_object(json_object_get(d->entry, sects[i]))) {
            malformed(d);
            return;
        }
    }
    if (wr_meta_seeded(d->m))
        return;
    for (size_t i = 0; i < sizeof(sects) / sizeof(sects[0]); i++) {
        if (!merge(sect(d->m, sects[i]), json_object_get(d->entry, sects[i]), i >= 2)) {
            wr_amqp_error_set(&d->res->err, WR_AMQP_INTERNAL_ERROR, 0, "out of memory");
            return;
        }
    }
    prune(d->m);
    json_object_set_new(d->m->state, "seeded", json_true());
    wr_meta_defs_reconcile(d->m);
}

/* ---------------------------------------------------------------- reconcile */

/* Each name (a JSON string array) the state does not hold, collected before
 * anything is deleted: deleting changes what is walked. */
static void delete_extras(const wr_meta_t *m, json_t *names, const char *section,
                          void (*del)(const wr_meta_t *m, const char *name))
{
    size_t i;
    json_t *n;

    json_array_foreach(names, i, n)
    {
        if (json_object_get(sect(m, section), json_string_value(n)) == NULL)
            del(m, json_string_value(n));
    }
    json_decref(names);
}

static void reconcile_vhosts(const wr_meta_t *m)
{
    json_t *names = json_array(), *settings;
    wr_map_iter_t it = {0};
    const char *k;
    void *vh;

    while (names != NULL && wr_map_next(m->deps.vhosts, &it, NULL, &vh))
        json_array_append_new(names, json_string(wr_vhost_name(vh)));
    delete_extras(m, names, "vhosts", live_vhost_delete);
    json_object_foreach(sect(m, "vhosts"), k, settings)
    {
        live_vhost_add(m, k, settings);
    }
}

static void reconcile_users(const wr_meta_t *m)
{
    json_t *names = json_array(), *u;
    const char *k;

    for (size_t i = 0; names != NULL && i < m->deps.users->nusers; i++)
        json_array_append_new(names, json_string(m->deps.users->users[i].name));
    delete_extras(m, names, "users", live_user_delete);
    json_object_foreach(sect(m, "users"), k, u)
    {
        live_user_put(m, k, u);
    }
}

static void reconcile_permissions(const wr_meta_t *m)
{
    const wr_permission_cfg_t *perm;
    json_t *gone = json_array(), *pair, *v, *p;
    const char *vk, *uk;
    size_t i = 0;

    while (gone != NULL && (perm = wr_users_permission_next(m->deps.users, &i)) != NULL)
        if (json_object_get(json_object_get(sect(m, "permissions"), perm->vhost), perm->user) == NULL)
            json_array_append_new(gone, json_pack("[s,s]", perm->vhost, perm->user));
    json_array_foreach(gone, i, pair)
    {
        wr_users_delete_permission(m->deps.users, json_string_value(json_array_get(pair, 1)),
                                   json_string_value(json_array_get(pair, 0)));
    }
    json_decref(gone);
    json_object_foreach(sect(m, "permissions"), vk, v)
    {
        json_object_foreach(v, uk, p)
        {
            live_permission_put(m, vk, uk, p);
        }
    }
}

typedef struct {
    const wr_meta_t *m;
    json_t *gone;
} policy_walk_t;

static void policy_extra(void *ud, const wr_policy_t *p)
{
    policy_walk_t *w = ud;

    if (json_object_get(json_object_get(sect(w->m, "policies"), p->vhost), p->name) == NULL)
        json_array_append_new(w->gone, json_pack("[s,s]", p->vhost, p->name));
}

static void reconcile_policies(const wr_meta_t *m)
{
    policy_walk_t w = {m, json_array()};
    json_t *pair, *v, *p;
    const char *vk, *nk;
    size_t i;

    if (w.gone != NULL)
        wr_policy_foreach(m->deps.policies, NULL, policy_extra, &w);
    json_array_foreach(w.gone, i, pair)
    {
        wr_policy_delete(m->deps.policies, json_string_value(json_array_get(pair, 0)),
                         json_string_value(json_array_get(pair, 1)));
    }
    json_decref(w.gone);
    json_object_foreach(sect(m, "policies"), vk, v)
    {
        json_object_foreach(v, nk, p)
        {
            live_policy_put(m, vk, nk, p);
        }
    }
}

void wr_meta_defs_reconcile(wr_meta_t *m)
{
    if (!live(m) || !wr_meta_seeded(m))
        return;
    reconcile_vhosts(m);
    reconcile_users(m);
    reconcile_permissions(m);
    reconcile_policies(m);
}

/* ---------------------------------------------------------------- the seed proposed */

static json_t *user_json(const wr_user_cfg_t *u)
{
    char b64[WR_PASSWORD_HASH_MAX * 2];
    json_t *tags = json_array(), *out;

    wr_base64_encode(u->password_hash, u->password_hash_len, b64);
    for (size_t i = 0; tags != NULL && i < u->ntags; i++)
        json_array_append_new(tags, json_string(u->tags[i]));
    out = json_pack("{s:s,s:s,s:o}", "password_hash", b64, "hashing_algorithm",
                    alg_name(u->hashing_algorithm), "tags", tags);
    if (out != NULL && (u->has_max_connections || u->has_max_channels))
        json_object_set_new(out, "limits", json_object());
    if (u->has_max_connections)
        json_object_set_new(json_object_get(out, "limits"), "max-connections",
                            json_integer(u->max_connections));
    if (u->has_max_channels)
        json_object_set_new(json_object_get(out, "limits"), "max-channels", json_integer(u->max_channels));
    return out;
}

static void policy_seed(void *ud, const wr_policy_t *p)
{
    json_t *policies = ud, *v = json_object_get(policies, p->vhost), *pj = wr_policy_to_json(p);

    if (v == NULL && (v = json_object()) != NULL)
        json_object_set_new(policies, p->vhost, v);
    json_object_del(pj, "vhost");
    json_object_del(pj, "name");
    json_object_set_new(v, p->name, pj);
}

json_t *wr_meta_defs_seed(const wr_meta_t *m)
{
    json_t *e = json_pack("{s:{},s:{},s:{},s:{}}", "vhosts", "users", "permissions", "policies"), *v;
    const wr_permission_cfg_t *perm;
    wr_map_iter_t it = {0};
    const json_t *settings;
    void *vh;
    size_t i = 0;

    if (e == NULL)
        return NULL;
    while (wr_map_next(m->deps.vhosts, &it, NULL, &vh)) {
        settings = json_object_get(m->deps.vhost_settings, wr_vhost_name(vh));
        json_object_set_new(json_object_get(e, "vhosts"), wr_vhost_name(vh),
                            settings != NULL
                                ? json_deep_copy(settings)
                                : json_pack("{s:s,s:[],s:b}", "description", "", "tags", "tracing", 0));
    }
    for (size_t u = 0; u < m->deps.users->nusers; u++)
        json_object_set_new(json_object_get(e, "users"), m->deps.users->users[u].name,
                            user_json(&m->deps.users->users[u]));
    while ((perm = wr_users_permission_next(m->deps.users, &i)) != NULL) {
        if ((v = json_object_get(json_object_get(e, "permissions"), perm->vhost)) == NULL &&
            (v = json_object()) != NULL)
            json_object_set_new(json_object_get(e, "permissions"), perm->vhost, v);
        json_object_set_new(v, perm->user,
                            json_pack("{s:s,s:s,s:s}", kinds[0], perm->pattern[0], kinds[1], perm->pattern[1],
                                      kinds[2], perm->pattern[2]));
    }
    wr_policy_foreach(m->deps.policies, NULL, policy_seed, json_object_get(e, "policies"));
    return json_pack("{s:s,s:s,s:o}", "vhost", "", "op", "seed", "entry", e);
}

/* ---------------------------------------------------------------- commands */

static const struct {
    const char *op;
    void (*fn)(defs_t *d);
    const char *verb, *noun; /* the words when it does not commit */
    bool in_vhost;           /* the words name the vhost after the entry's name */
} ops[] = {
    {"vhost.add", vhost_add, "add", "vhost", false},
    {"vhost.delete", vhost_delete, "delete", "vhost", false},
    {"user.put", user_put, "add", "user", false},
    {"user.delete", user_delete, "delete", "user", false},
    {"vhost.limit", vhost_limit, "set the limits of", "vhost", false},
    {"user.limit", user_limit, "set the limits of", "user", false},
    {"permission.set", permission_set, "set", "permissions of user", true},
    {"permission.clear", permission_clear, "clear", "permissions of user", true},
    {"policy.set", policy_set, "set", "policy", true},
    {"policy.clear", policy_clear, "clear", "policy", true},
    {"seed", seed, "seed", "definitions", false},
};

static int op_index(const char *op)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].op, op) == 0)
            return (int)i;
    return -1;
}

bool wr_meta_defs_apply(wr_meta_t *m, const char *op, const json_t *cmd, wr_meta_result_t *res)
{
    int i = op_index(op);
    defs_t d = {m, op, json_string_value(json_object_get(cmd, "vhost")), json_object_get(cmd, "entry"), res};

    if (i < 0)
        return false;
    ops[i].fn(&d);
    return true;
}

bool wr_meta_defs_timeout_text(const json_t *cmd, char *out, size_t n)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const char *vhost = json_string_value(json_object_get(cmd, "vhost"));
    const json_t *e = json_object_get(cmd, "entry");
    const char *name = json_string_value(json_object_get(e, "name"));
    int i = op != NULL ? op_index(op) : -1;

    if (i < 0)
        return false;
    if (name == NULL)
        name = json_string_value(json_object_get(e, "user"));
    if (ops[i].in_vhost)
        snprintf(out, n, "failed to %s %s '%s' in vhost '%s' because the operation timed out", ops[i].verb,
                 ops[i].noun, name != NULL ? name : "", vhost);
    else if (strcmp(ops[i].noun, "vhost") == 0)
        snprintf(out, n, "failed to %s vhost '%s' because the operation timed out", ops[i].verb, vhost);
    else if (strcmp(ops[i].noun, "user") == 0)
        snprintf(out, n, "failed to %s user '%s' because the operation timed out", ops[i].verb,
                 name != NULL ? name : "");
    else
        snprintf(out, n, "failed to seed the definitions because the operation timed out");
    return true;
}
