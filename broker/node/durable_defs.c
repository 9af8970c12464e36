/* SPDX-License-Identifier: MIT */
/*
 * The durable topology document (see durable_defs.h): dumping a vhost's
 * policies, durable exchanges, queues and bindings, and loading them back in
 * that order, so that queues start with their limits and bindings find both
 * their ends. The standard exchanges ("" and amq.*) are not listed: every
 * vhost declares them itself.
 */
#include "broker/node/durable_defs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/vhost/exchange.h"
#include "broker/base/log.h"
#include "broker/vhost/policy.h"
#include "broker/queue/queue.h"
#include "core/base64.h"
#include "core/status.h"

/* AMQP names are at most 255 octets; argument tables are bounded by a frame. */
#define NAME_MAX_LEN 255

/* ---------------------------------------------------------------- encoding */

static json_t *hex_json(wr_bytes_t b)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * b.len + 1);
    json_t *j;

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < b.len; i++) {
        s[2 * i] = digits[b.data[i] >> 4];
        s[2 * i + 1] = digits[b.data[i] & 15];
    }
    s[2 * b.len] = '\0';
    j = json_string(s);
    free(s);
    return j;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes hex text into a malloc'd buffer; false if it is not hex. */
static bool hex_decode(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *b;

    if (n % 2 != 0)
        return false;
    b = malloc(n / 2 + 1);
    if (b == NULL)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return true;
}

/* A name as a JSON string, or {"hex": ...} when it is not UTF-8. */
static json_t *name_json(wr_bytes_t b)
{
    json_t *j = json_stringn((const char *)b.data, b.len);

    return j != NULL ? j : json_pack("{s:o}", "hex", hex_json(b));
}

/* Sets key in obj (stealing v); false when v is NULL (ENOMEM) or setting fails. */
static bool put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

/* ---------------------------------------------------------------- entries */

json_t *wr_durable_defs_name(wr_bytes_t name)
{
    return name_json(name);
}

json_t *wr_durable_defs_binding(const wr_exchange_t *x, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    bool to_queue = d.kind == WR_DEST_QUEUE;
    json_t *b = json_object();

    if (b != NULL && put(b, "source", name_json(wr_exchange_name(x))) &&
        put(b, "destination", name_json(to_queue ? wr_queue_name(d.ptr) : wr_exchange_name(d.ptr))) &&
        put(b, "destination_type", json_string(to_queue ? "queue" : "exchange")) &&
        put(b, "routing_key", name_json(key)) && put(b, "arguments", hex_json(args)))
        return b;
    json_decref(b);
    return NULL;
}

typedef struct {
    json_t *list;
    bool ok;
} dump_policies_t;

static void dump_policy(void *ud, const wr_policy_t *p)
{
    dump_policies_t *st = ud;
    json_t *e = wr_policy_to_json(p);

    if (e != NULL)
        json_object_del(e, "vhost");
    if (e == NULL || json_array_append_new(st->list, e) != 0)
        st->ok = false;
}

json_t *wr_durable_defs_policies(const wr_vhost_t *vh)
{
    dump_policies_t pst = {json_array(), true};

    if (pst.list == NULL)
        return NULL;
    wr_policy_foreach(wr_vhost_env(vh)->policies, wr_vhost_name(vh), dump_policy, &pst);
    if (pst.ok)
        return pst.list;
    json_decref(pst.list);
    return NULL;
}

json_t *wr_durable_defs_exchange(const wr_exchange_t *x)
{
    const wr_exchange_opts_t *o = wr_exchange_opts(x);
    json_t *e = json_object();

    if (e != NULL && put(e, "name", name_json(wr_exchange_name(x))) &&
        put(e, "type", json_string(wr_router_type_name(o->type))) && put(e, "durable", json_true()) &&
        put(e, "auto_delete", json_boolean(o->auto_delete)) &&
        put(e, "internal", json_boolean(o->internal)) && put(e, "arguments", hex_json(o->args)))
        return e;
    json_decref(e);
    return NULL;
}

json_t *wr_durable_defs_queue(const wr_queue_t *q)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);
    const char *log = wr_queue_store_name(q);
    json_t *e = json_object();

    if (e != NULL && put(e, "name", name_json(wr_queue_name(q))) && put(e, "durable", json_true()) &&
        put(e, "auto_delete", json_boolean(o->auto_delete)) && put(e, "arguments", hex_json(o->args)) &&
        (log == NULL || put(e, "log", json_string(log))))
        return e;
    json_decref(e);
    return NULL;
}

/* ---------------------------------------------------------------- users */

static const char *const alg_names[] = {
    [WR_HASH_SHA256] = "rabbit_password_hashing_sha256",
    [WR_HASH_SHA512] = "rabbit_password_hashing_sha512",
    [WR_HASH_MD5] = "rabbit_password_hashing_md5",
};

static json_t *strings_json(char *const *v, size_t n)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < n; i++) {
        if (json_array_append_new(list, json_string(v[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *wr_durable_defs_user(const wr_user_cfg_t *u)
{
    char hash[WR_PASSWORD_HASH_MAX * 2];
    json_t *e = json_object(), *limits = json_object();

    wr_base64_encode(u->password_hash, u->password_hash_len, hash);
    if (e != NULL && limits != NULL && put(e, "name", json_string(u->name)) &&
        put(e, "password_hash", json_string(hash)) &&
        put(e, "hashing_algorithm", json_string(alg_names[u->hashing_algorithm])) &&
        put(e, "tags", strings_json(u->tags, u->ntags)) &&
        (!u->has_max_connections || put(limits, "max-connections", json_integer(u->max_connections))) &&
        (!u->has_max_channels || put(limits, "max-channels", json_integer(u->max_channels))) &&
        put(e, "limits", json_incref(limits))) {
        json_decref(limits);
        return e;
    }
    json_decref(limits);
    json_decref(e);
    return NULL;
}

json_t *wr_durable_defs_permission(const wr_permission_cfg_t *perm)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "user", perm->user, "configure", perm->pattern[WR_PERM_CONFIGURE],
                     "write", perm->pattern[WR_PERM_WRITE], "read", perm->pattern[WR_PERM_READ]);
}

/* One user.put entry into db; WR_ESYNTAX (logged by the caller) when its hash does not decode. */
static int load_user(wr_users_t *db, const json_t *e)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *alg_name = json_string_value(json_object_get(e, "hashing_algorithm"));
    const char *b64 = json_string_value(json_object_get(e, "password_hash"));
    const json_t *tags = json_object_get(e, "tags"), *max, *chans;
    const char *tag[64];
    uint8_t hash[WR_PASSWORD_HASH_MAX];
    size_t len, ntags = json_array_size(tags);
    wr_hash_alg_t alg;
    bool created;

    if (name == NULL || alg_name == NULL || b64 == NULL || ntags > 64 ||
        !wr_auth_hash_alg_parse(alg_name, &alg) || wr_auth_hash_decode(b64, alg, hash, &len) != WR_OK)
        return WR_ESYNTAX;
    for (size_t i = 0; i < ntags; i++)
        tag[i] = json_string_value(json_array_get(tags, i));
    if (wr_users_put(db, name, hash, len, alg, tag, ntags, &created) != WR_OK)
        return WR_ENOMEM;
    max = json_object_get(json_object_get(e, "limits"), "max-connections");
    chans = json_object_get(json_object_get(e, "limits"), "max-channels");
    if (json_is_integer(max) || json_is_integer(chans))
        wr_users_set_limits(db, name, json_is_integer(max), json_integer_value(max), json_is_integer(chans),
                            json_integer_value(chans));
    return WR_OK;
}

static int load_permissions(wr_users_t *db, const char *vhost, const json_t *list, char *err, size_t errlen)
{
    const json_t *e;
    size_t i;

    json_array_foreach(list, i, e)
    {
        const char *pattern[WR_PERM_KINDS] = {json_string_value(json_object_get(e, "configure")),
                                              json_string_value(json_object_get(e, "write")),
                                              json_string_value(json_object_get(e, "read"))};
        const char *user = json_string_value(json_object_get(e, "user"));
        char why[300];
        bool created;
        int rc;

        if (wr_users_find(db, user, strlen(user)) == NULL)
            continue; /* its user did not decode */
        rc = wr_users_put_permission(db, user, vhost, pattern, &created, why, sizeof(why));
        if (rc == WR_ENOMEM) {
            snprintf(err, errlen, "out of memory recovering permissions");
            return rc;
        }
        if (rc != WR_OK)
            wr_log_warn("vhost '%s': permission of '%s' not recovered: %s", vhost, user, why);
    }
    return WR_OK;
}

int wr_durable_defs_load_users(wr_users_t *db, const json_t *state, char *err, size_t errlen)
{
    const json_t *e, *v;
    const char *vname;
    size_t i;
    int rc = WR_OK;

    json_array_foreach(json_object_get(state, "users"), i, e)
    {
        rc = load_user(db, e);
        if (rc == WR_ENOMEM) {
            snprintf(err, errlen, "out of memory recovering users");
            return rc;
        }
        if (rc != WR_OK)
            wr_log_warn("users[%zu] not recovered: its password hash does not decode", i);
    }
    json_object_foreach((json_t *)json_object_get(state, "vhosts"), vname, v)
    {
        rc = load_permissions(db, vname, json_object_get(v, "permissions"), err, errlen);
        if (rc != WR_OK)
            return rc;
    }
    return WR_OK;
}

/* ---------------------------------------------------------------- load */

void wr_durable_defs_logs(const json_t *v, void (*fn)(void *ud, const char *log), void *ud)
{
    const json_t *q;
    size_t i;

    json_array_foreach(json_object_get(v, "queues"), i, q)
    {
        const char *log = json_string_value(json_object_get(q, "log"));
        if (log != NULL)
            fn(ud, log);
    }
}

/* A name field: a string, or {"hex": ...}. *buf is set to a copy to free. */
static bool get_name(const json_t *obj, const char *key, wr_bytes_t *out, uint8_t **buf)
{
    const json_t *v = json_object_get(obj, key);
    size_t len;

    *buf = NULL;
    if (json_is_string(v)) {
        len = json_string_length(v);
        if (len > NAME_MAX_LEN || (*buf = malloc(len + 1)) == NULL)
            return false;
        memcpy(*buf, json_string_value(v), len);
    } else if (!json_is_object(v) || !json_is_string(json_object_get(v, "hex")) ||
               !hex_decode(json_string_value(json_object_get(v, "hex")), buf, &len) || len > NAME_MAX_LEN) {
        free(*buf);
        *buf = NULL;
        return false;
    }
    *out = (wr_bytes_t){*buf, len};
    return true;
}

static bool get_args(const json_t *obj, wr_bytes_t *out, uint8_t **buf)
{
    const char *s = json_string_value(json_object_get(obj, "arguments"));
    size_t len;

    *buf = NULL;
    if (s == NULL || !hex_decode(s, buf, &len))
        return false;
    *out = (wr_bytes_t){*buf, len};
    return true;
}

static bool get_flag(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

static int malformed(char *err, size_t errlen, const wr_vhost_t *vh, const char *what, size_t i)
{
    snprintf(err, errlen, "vhost '%s': %s[%zu] is malformed", wr_vhost_name(vh), what, i);
    return WR_ESYNTAX;
}

/* A policy that no longer passes (warren's rules changed) is logged and
 * skipped rather than keeping the broker down. */
static int load_policy(wr_vhost_t *vh, const json_t *e, size_t i, wr_durable_defs_stats_t *st, char *err,
                       size_t errlen)
{
    char why[512];
    int rc = wr_policy_put_json(wr_vhost_env(vh)->policies, wr_vhost_name(vh), e, why, sizeof(why));

    if (rc == WR_ENOMEM) {
        snprintf(err, errlen, "vhost '%s': out of memory recovering policies", wr_vhost_name(vh));
        return rc;
    }
    if (rc != WR_OK)
        wr_log_warn("vhost '%s': policies[%zu] not recovered: %s", wr_vhost_name(vh), i, why);
    return WR_OK;
}

static int load_exchange(wr_vhost_t *vh, const json_t *e, size_t i, wr_durable_defs_stats_t *st, char *err,
                         size_t errlen)
{
    const char *type = json_string_value(json_object_get(e, "type"));
    uint8_t *nbuf = NULL, *abuf = NULL;
    wr_exchange_opts_t o = {0};
    wr_exchange_t *x;
    wr_bytes_t name;
    int rc = WR_OK;

    if (type == NULL || !get_name(e, "name", &name, &nbuf) || !get_args(e, &o.args, &abuf)) {
        rc = malformed(err, errlen, vh, "exchanges", i);
        goto out;
    }
    o.type = wr_router_type_find(wr_bytes_str(type));
    o.durable = true;
    o.auto_delete = get_flag(e, "auto_delete");
    o.internal = get_flag(e, "internal");
    if (o.type == NULL) {
        wr_log_warn("vhost '%s': exchange '%.*s' has unknown type '%s'; not recovered", wr_vhost_name(vh),
                    (int)name.len, (const char *)name.data, type);
    } else if (wr_vhost_exchange(vh, name) == NULL) {
        rc = wr_vhost_exchange_add(vh, name, &o, &x);
        if (rc != WR_OK)
            snprintf(err, errlen, "vhost '%s': out of memory recovering exchanges", wr_vhost_name(vh));
        else
            st->exchanges++;
    }
out:
    free(nbuf);
    free(abuf);
    return rc;
}

static int load_queue(wr_vhost_t *vh, const json_t *e, size_t i, wr_durable_defs_stats_t *st, char *err,
                      size_t errlen)
{
    const char *log = json_string_value(json_object_get(e, "log"));
    uint8_t *nbuf = NULL, *abuf = NULL;
    wr_queue_opts_t o = {0};
    wr_bytes_t name;
    wr_queue_t *q;
    int rc = WR_OK;

    if (log == NULL || !get_name(e, "name", &name, &nbuf) || !get_args(e, &o.args, &abuf)) {
        rc = malformed(err, errlen, vh, "queues", i);
        goto out;
    }
    o.durable = true;
    o.auto_delete = get_flag(e, "auto_delete");
    if (wr_vhost_queue(vh, name) != NULL) {
        rc = malformed(err, errlen, vh, "queues", i);
        goto out;
    }
    rc = wr_vhost_queue_recover(vh, name, &o, log, &q, err, errlen);
    if (rc == WR_OK) {
        st->queues++;
        st->messages += wr_queue_ready(q);
    }
out:
    free(nbuf);
    free(abuf);
    return rc;
}

static int load_binding(wr_vhost_t *vh, const json_t *e, size_t i, wr_durable_defs_stats_t *st, char *err,
                        size_t errlen)
{
    const char *type = json_string_value(json_object_get(e, "destination_type"));
    uint8_t *sbuf = NULL, *dbuf = NULL, *kbuf = NULL, *abuf = NULL;
    wr_bytes_t source, dest, key, args;
    wr_exchange_t *x;
    wr_dest_t d;
    int rc = WR_OK;

    if (type == NULL || !get_name(e, "source", &source, &sbuf) || !get_name(e, "destination", &dest, &dbuf) ||
        !get_name(e, "routing_key", &key, &kbuf) || !get_args(e, &args, &abuf)) {
        rc = malformed(err, errlen, vh, "bindings", i);
        goto out;
    }
    x = wr_vhost_exchange(vh, source);
    d.kind = strcmp(type, "queue") == 0 ? WR_DEST_QUEUE : WR_DEST_EXCHANGE;
    d.ptr = d.kind == WR_DEST_QUEUE ? (void *)wr_vhost_queue(vh, dest) : (void *)wr_vhost_exchange(vh, dest);
    if (x == NULL || d.ptr == NULL) {
        wr_log_warn("vhost '%s': binding of %s '%.*s' to exchange '%.*s' has a missing end; not recovered",
                    wr_vhost_name(vh), type, (int)dest.len, (const char *)dest.data, (int)source.len,
                    (const char *)source.data);
        goto out;
    }
    rc = wr_exchange_bind(x, d, key, args);
    if (rc == WR_ENOMEM) {
        snprintf(err, errlen, "vhost '%s': out of memory recovering bindings", wr_vhost_name(vh));
        goto out;
    }
    if (rc == WR_OK)
        st->bindings++;
    rc = WR_OK;
out:
    free(sbuf);
    free(dbuf);
    free(kbuf);
    free(abuf);
    return rc;
}

int wr_durable_defs_load(wr_vhost_t *vh, const json_t *v, wr_durable_defs_stats_t *st, char *err,
                         size_t errlen)
{
    static const struct {
        const char *key;
        int (*load)(wr_vhost_t *vh, const json_t *e, size_t i, wr_durable_defs_stats_t *st, char *err,
                    size_t errlen);
    } parts[] = {{"policies", load_policy},
                 {"exchanges", load_exchange},
                 {"queues", load_queue},
                 {"bindings", load_binding}};

    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
        const json_t *list = json_object_get(v, parts[p].key), *e;
        size_t i;

        if (list != NULL && !json_is_array(list)) {
            snprintf(err, errlen, "vhost '%s': %s is not an array", wr_vhost_name(vh), parts[p].key);
            return WR_ESYNTAX;
        }
        json_array_foreach(list, i, e)
        {
            int rc = parts[p].load(vh, e, i, st, err, errlen);
            if (rc != WR_OK)
                return rc;
        }
    }
    return WR_OK;
}
