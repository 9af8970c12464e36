/* SPDX-License-Identifier: MIT */
/*
 * Definitions in RabbitMQ's definitions.json shape (definitions.h). Export
 * lists what RabbitMQ 3.10 lists: every exchange but the default and amq.*
 * ones, every queue but exclusive ones, every binding but the default
 * exchange's implicit ones. Import validates the whole document before it
 * changes anything, then declares through mgmt_topo.c, the same path as the
 * management API; users and permissions (a whole-broker import only)
 * change the run-time user store in the configuration (config.h), as the
 * management API's PUT does. Policies are put before the queues are
 * declared, so queues start with their limits. Sections warren has no
 * equivalent for (parameters, topic permissions) are logged and skipped.
 */
#include "broker/base/version.h"
#include "broker/mgmt/definitions.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/amqp/handle_exchange.h"
#include "broker/auth/auth.h"
#include "broker/base/log.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/mgmt/mgmt_internal.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/mgmt/mgmt_meta.h"
#include "broker/mgmt/mgmt_topo.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"

#define MAX_NAME_LEN 255

/* ---------------------------------------------------------------- export */

typedef struct {
    const char *vhost;
    json_t *arr;
} export_ctx_t;

static void export_binding(void *ud, wr_bytes_t source, wr_bytes_t dest, bool dest_is_queue, wr_bytes_t key,
                           wr_bytes_t args)
{
    export_ctx_t *x = ud;

    json_array_append_new(x->arr, wr_mgmt_json_binding(x->vhost, source, dest, dest_is_queue, key, args));
}

/* Appends vh's exchanges, queues and bindings to the three arrays. */
static void export_vhost(const wr_vhost_t *vh, json_t *exchanges, json_t *queues, json_t *bindings)
{
    export_ctx_t ctx = {wr_vhost_name(vh), bindings};
    wr_map_iter_t it = {0};
    void *obj;

    while (wr_map_next(wr_vhost_exchanges(vh), &it, NULL, &obj)) {
        if (!wr_exchange_is_standard(obj))
            json_array_append_new(exchanges, wr_mgmt_json_exchange(obj, wr_vhost_name(vh)));
    }
    it = (wr_map_iter_t){0};
    while (wr_map_next(wr_vhost_queues(vh), &it, NULL, &obj)) {
        if (!wr_queue_opts(obj)->exclusive)
            json_array_append_new(queues, wr_mgmt_json_queue(obj, wr_vhost_name(vh)));
    }
    wr_mgmt_topo_foreach_binding(vh, false, export_binding, &ctx);
}

static void export_policy(void *ud, const wr_policy_t *p)
{
    json_array_append_new(ud, wr_policy_to_json(p));
}

/* A vhost's own export carries no vhost fields, as RabbitMQ's. */
static void drop_vhost_fields(json_t *arr)
{
    size_t i;
    json_t *item;

    json_array_foreach(arr, i, item)
    {
        json_object_del(item, "vhost");
    }
}

json_t *wr_definitions_export(const wr_mgmt_env_t *env, const wr_vhost_t *only)
{
    static const char *const by_name[] = {"vhost", "name", NULL};
    static const char *const by_binding[] = {"vhost",       "source", "destination", "destination_type",
                                             "routing_key", NULL};
    const wr_config_t *cfg = env->cfg;
    json_t *exchanges = json_array(), *queues = json_array(), *bindings = json_array(),
           *vhosts = json_array();
    json_t *users = json_array(), *permissions = json_array(), *policies = json_array();
    const wr_permission_cfg_t *perm;
    wr_map_iter_t it = {0};
    void *vh;

    if (!exchanges || !queues || !bindings || !vhosts || !users || !permissions || !policies)
        goto err;
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        json_array_append_new(users, wr_mgmt_user_json(&cfg->auth.users[i]));
    for (size_t i = 0; (perm = wr_users_permission_next(&cfg->auth, &i));)
        json_array_append_new(permissions, wr_mgmt_permission_json(perm));
    while (wr_map_next(env->vhosts, &it, NULL, &vh)) {
        if (only && vh != only)
            continue;
        json_array_append_new(vhosts, json_pack("{s:s}", "name", wr_vhost_name(vh)));
        export_vhost(vh, exchanges, queues, bindings);
    }
    /* In vhost then name order already. */
    wr_policy_foreach(env->policies, only ? wr_vhost_name(only) : NULL, export_policy, policies);
    wr_mgmt_sort(vhosts, by_name + 1, false);
    wr_mgmt_sort(exchanges, by_name, false);
    wr_mgmt_sort(queues, by_name, false);
    wr_mgmt_sort(bindings, by_binding, false);
    if (only) {
        drop_vhost_fields(exchanges);
        drop_vhost_fields(queues);
        drop_vhost_fields(bindings);
        drop_vhost_fields(policies);
        json_decref(vhosts);
        json_decref(users);
        json_decref(permissions);
        return json_pack("{s:s, s:[], s:o, s:o, s:o, s:o}", "rabbit_version", WR_MGMT_COMPAT_VERSION,
                         "parameters", "policies", policies, "queues", queues, "exchanges", exchanges,
                         "bindings", bindings);
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:[], s:[], s:[], s:o, s:o, s:o, s:o}",
                     "rabbit_version", WR_MGMT_COMPAT_VERSION, "rabbitmq_version", WR_MGMT_COMPAT_VERSION,
                     "product_name", "warren", "product_version", WR_VERSION, "users", users, "vhosts",
                     vhosts, "permissions", permissions, "topic_permissions", "parameters",
                     "global_parameters", "policies", policies, "queues", queues, "exchanges", exchanges,
                     "bindings", bindings);
err:
    json_decref(policies);
    json_decref(users);
    json_decref(permissions);
    json_decref(exchanges);
    json_decref(queues);
    json_decref(bindings);
    json_decref(vhosts);
    return NULL;
}

/* ---------------------------------------------------------------- validation */

typedef struct {
    char *err;
    size_t errlen;
    bool scoped; /* importing into one vhost: objects need no vhost field */
} check_t;

static bool fail(check_t *c, const char *section, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(check_t *c, const char *section, size_t i, const char *fmt, ...)
{
    char why[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s[%zu]: %s", section, i, why);
    return false;
}

static bool check_name(check_t *c, const char *section, size_t i, const json_t *obj, const char *key,
                       bool may_be_empty)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_string(v))
        return fail(c, section, i, "'%s' must be a string", key);
    if (!may_be_empty && json_string_length(v) == 0)
        return fail(c, section, i, "'%s' must not be empty", key);
    if (json_string_length(v) > MAX_NAME_LEN)
        return fail(c, section, i, "'%s' longer than %d bytes", key, MAX_NAME_LEN);
    return true;
}

static bool check_optional(check_t *c, const char *section, size_t i, const json_t *obj, const char *key,
                           json_type type, const char *want)
{
    const json_t *v = json_object_get(obj, key);

    if (!v || json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v)))
        return true;
    return fail(c, section, i, "'%s' must be %s", key, want);
}

static bool check_args(check_t *c, const char *section, size_t i, const json_t *obj)
{
    wr_buf_t buf = WR_BUF_INIT;
    wr_bytes_t raw;
    char why[160];
    bool ok = wr_mgmt_json_to_table(json_object_get(obj, "arguments"), &buf, &raw, why, sizeof(why));

    wr_buf_free(&buf);
    return ok || fail(c, section, i, "%s", why);
}

/* A policy: its shape, then RabbitMQ's rules (wr_policy_validate). */
static bool check_policy(check_t *c, size_t i, const json_t *obj)
{
    const json_t *def = json_object_get(obj, "definition");
    char why[300];

    if (!check_name(c, "policies", i, obj, "name", false))
        return false;
    if (!json_is_string(json_object_get(obj, "pattern")))
        return fail(c, "policies", i, "'pattern' must be a string");
    if (!check_optional(c, "policies", i, obj, "apply-to", JSON_STRING, "a string") ||
        !check_optional(c, "policies", i, obj, "priority", JSON_INTEGER, "an integer"))
        return false;
    if (!json_is_object(def))
        return fail(c, "policies", i, "'definition' must be an object");
    if (wr_policy_validate(json_string_value(json_object_get(obj, "pattern")),
                           json_string_value(json_object_get(obj, "apply-to")), def, why,
                           sizeof(why)) != WR_OK)
        return fail(c, "policies", i, "%s", why);
    return true;
}

static bool check_item(check_t *c, const char *section, size_t i, const json_t *obj)
{
    if (!json_is_object(obj))
        return fail(c, section, i, "must be an object");
    if (!c->scoped && strcmp(section, "vhosts") != 0 && !check_name(c, section, i, obj, "vhost", false))
        return false;
    if (strcmp(section, "vhosts") == 0)
        return check_name(c, section, i, obj, "name", false);
    if (strcmp(section, "policies") == 0)
        return check_policy(c, i, obj);
    if (strcmp(section, "bindings") == 0) {
        const json_t *t = json_object_get(obj, "destination_type");

        if (!check_name(c, section, i, obj, "source", true) ||
            !check_name(c, section, i, obj, "destination", false) ||
            !check_name(c, section, i, obj, "routing_key", true))
            return false;
        if (!json_is_string(t) ||
            (strcmp(json_string_value(t), "queue") != 0 && strcmp(json_string_value(t), "exchange") != 0))
            return fail(c, section, i, "'destination_type' must be \"queue\" or \"exchange\"");
        return check_args(c, section, i, obj);
    }
    if (!check_name(c, section, i, obj, "name", false) ||
        !check_optional(c, section, i, obj, "durable", JSON_TRUE, "a boolean") ||
        !check_optional(c, section, i, obj, "auto_delete", JSON_TRUE, "a boolean"))
        return false;
    if (strcmp(section, "exchanges") == 0 &&
        (!check_name(c, section, i, obj, "type", false) ||
         !check_optional(c, section, i, obj, "internal", JSON_TRUE, "a boolean")))
        return false;
    return check_args(c, section, i, obj);
}

/* A user's "limits": RabbitMQ's {"max-connections": N}, N >= -1 (-1: none). */
static bool check_limits(check_t *c, size_t i, const json_t *limits)
{
    const json_t *max = json_object_get(limits, "max-connections");

    if (!limits ||
        (json_is_object(limits) && (!max || (json_is_integer(max) && json_integer_value(max) >= -1))))
        return true;
    return fail(c, "users", i, "'limits' must be an object with an integer 'max-connections' of -1 or more");
}

/* A users or permissions entry of a whole-broker import: the checks that
 * need no broker state (the user and vhost of a permission are looked up
 * when it is applied, as RabbitMQ does). */
static bool check_access_item(check_t *c, const char *section, size_t i, const json_t *obj)
{
    static const char *const kinds[WR_PERM_KINDS] = {"configure", "write", "read"};
    const json_t *alg_name, *hash, *tags;
    wr_hash_alg_t alg = WR_HASH_SHA256;
    uint8_t digest[WR_PASSWORD_HASH_MAX];
    size_t len;

    if (!json_is_object(obj))
        return fail(c, section, i, "must be an object");
    if (strcmp(section, "permissions") == 0) {
        if (!check_name(c, section, i, obj, "user", false) || !check_name(c, section, i, obj, "vhost", false))
            return false;
        for (int k = 0; k < WR_PERM_KINDS; k++) {
            const json_t *v = json_object_get(obj, kinds[k]);
            char why[160];

            if (!json_is_string(v))
                return fail(c, section, i, "'%s' must be a string", kinds[k]);
            if (!wr_users_pattern_ok(json_string_value(v), why, sizeof(why)))
                return fail(c, section, i, "'%s': %s", kinds[k], why);
        }
        return true;
    }
    alg_name = json_object_get(obj, "hashing_algorithm");
    hash = json_object_get(obj, "password_hash");
    tags = json_object_get(obj, "tags");
    if (!check_name(c, section, i, obj, "name", false) ||
        !check_optional(c, section, i, obj, "password", JSON_STRING, "a string"))
        return false;
    if (alg_name && (!json_is_string(alg_name) || !wr_auth_hash_alg_parse(json_string_value(alg_name), &alg)))
        return fail(c, section, i, "unknown 'hashing_algorithm'");
    if (hash &&
        (!json_is_string(hash) || wr_auth_hash_decode(json_string_value(hash), alg, digest, &len) != WR_OK))
        return fail(c, section, i, "'password_hash' is not a base64 %s hash",
                    wr_mgmt_json_hash_alg_name(alg));
    if (tags && !json_is_string(tags) && !json_is_array(tags))
        return fail(c, section, i, "'tags' must be a list or a comma-separated string");
    return check_limits(c, i, json_object_get(obj, "limits"));
}

/* Checked, with no vhost scope, and applied around `applied`. */
static const char *const access_sections[] = {"users", "permissions"};

/* The sections warren applies, in the order it applies them. */
static const char *const applied[] = {"vhosts", "policies", "exchanges", "queues", "bindings"};

static int check_document(const json_t *defs, bool scoped, char *err, size_t errlen)
{
    check_t c = {err, errlen, scoped};

    if (!json_is_object(defs)) {
        snprintf(err, errlen, "definitions must be a JSON object");
        return WR_ESYNTAX;
    }
    for (size_t s = 0; s < sizeof(applied) / sizeof(applied[0]); s++) {
        const json_t *arr = json_object_get(defs, applied[s]);
        size_t i;
        const json_t *item;

        if (!arr)
            continue;
        if (!json_is_array(arr)) {
            snprintf(err, errlen, "%s: must be an array", applied[s]);
            return WR_ESYNTAX;
        }
        json_array_foreach(arr, i, item)
        {
            if (!check_item(&c, applied[s], i, item))
                return WR_ESYNTAX;
        }
    }
    for (size_t s = 0; !scoped && s < sizeof(access_sections) / sizeof(access_sections[0]); s++) {
        const json_t *arr = json_object_get(defs, access_sections[s]);
        size_t i;
        const json_t *item;

        if (arr && !json_is_array(arr)) {
            snprintf(err, errlen, "%s: must be an array", access_sections[s]);
            return WR_ESYNTAX;
        }
        json_array_foreach(arr, i, item)
        {
            if (!check_access_item(&c, access_sections[s], i, item))
                return WR_ESYNTAX;
        }
    }
    return WR_OK;
}

/* ---------------------------------------------------------------- import */

static bool flag(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

static wr_bytes_t str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return (wr_bytes_t){(const uint8_t *)json_string_value(v), json_string_length(v)};
}

/* Logs what warren does not import: non-empty sections it has no
 * equivalent for. */
static void log_skipped(const json_t *defs)
{
    static const char *const skipped[] = {"topic_permissions", "parameters", "global_parameters"};

    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++) {
        size_t n = json_array_size(json_object_get(defs, skipped[i]));

        if (n > 0)
            wr_log_warn("definitions: %zu %s not imported (warren has no topic permissions or parameters)", n,
                        skipped[i]);
    }
}

static bool apply_item(const wr_mgmt_env_t *env, wr_vhost_t *only, const char *section, const json_t *obj,
                       wr_buf_t *args_buf, char *err, size_t errlen)
{
    wr_vhost_t *vh = only ? only : wr_map_get(env->vhosts, str(obj, "vhost"));
    const char *what = strcmp(section, "bindings") == 0 ? "binding"
                       : strcmp(section, "queues") == 0 ? "queue"
                                                        : "exchange";
    wr_amqp_error_t e;
    wr_bytes_t args;
    char why[160];
    bool created, ok;

    if (!vh) {
        snprintf(err, errlen, "%s: vhost '%s' does not exist", section,
                 json_string_value(json_object_get(obj, "vhost")));
        return false;
    }
    if (!wr_mgmt_json_to_table(json_object_get(obj, "arguments"), args_buf, &args, why, sizeof(why))) {
        snprintf(err, errlen, "%s: %s", section, why);
        return false;
    }
    if (strcmp(section, "exchanges") == 0)
        ok = wr_mgmt_topo_declare_exchange(
            vh, str(obj, "name"), json_string_value(json_object_get(obj, "type")), flag(obj, "durable"),
            flag(obj, "auto_delete"), flag(obj, "internal"), args, &created, &e);
    else if (strcmp(section, "queues") == 0)
        ok = wr_mgmt_topo_declare_queue(vh, str(obj, "name"), flag(obj, "durable"), flag(obj, "auto_delete"),
                                        args, &created, &e);
    else
        ok = wr_mgmt_topo_bind(vh, str(obj, "source"),
                               strcmp(json_string_value(json_object_get(obj, "destination_type")), "queue") ==
                                   0,
                               str(obj, "destination"), str(obj, "routing_key"), args, &e);
    if (!ok)
        snprintf(err, errlen, "%s in vhost '%s': %s", what, wr_vhost_name(vh), e.text);
    return ok;
}

static int apply_policy(const wr_mgmt_env_t *env, wr_vhost_t *only, const json_t *obj, char *err,
                        size_t errlen)
{
    const char *vhost = only ? wr_vhost_name(only) : json_string_value(json_object_get(obj, "vhost"));
    char why[300];
    int rc;

    if (!wr_map_get(env->vhosts, wr_bytes_str(vhost))) {
        snprintf(err, errlen, "policies: vhost '%s' does not exist", vhost);
        return WR_ESYNTAX;
    }
    rc = wr_policy_put_json(env->policies, vhost, obj, why, sizeof(why));
    if (rc != WR_OK)
        snprintf(err, errlen, "policy '%s' in vhost '%s': %s",
                 json_string_value(json_object_get(obj, "name")), vhost, why);
    return rc;
}

/* The users, then (after the vhosts) the permissions of a whole-broker
 * import, as RabbitMQ's rabbit_definitions: a user is created or replaced
 * (with its "max-connections" limit when given), a permission needs its
 * user and vhost. */
static int apply_users(const wr_mgmt_env_t *env, const json_t *defs, char *err, size_t errlen)
{
    size_t i;
    const json_t *item, *max;
    bool created;

    json_array_foreach(json_object_get(defs, "users"), i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        char why[300];
        int rc;

        if (!name) {
            snprintf(err, errlen, "users[%zu]: name must be a string", i);
            return WR_ESYNTAX;
        }
        rc = wr_mgmt_put_user(env, name, item, &created, why, sizeof(why));
        if (rc != WR_OK) {
            snprintf(err, errlen, "users: %s", why);
            return rc;
        }
        max = json_object_get(json_object_get(item, "limits"), "max-connections");
        if (max)
            wr_users_set_max_connections(&env->cfg->auth, name, json_integer_value(max));
    }
    return WR_OK;
}

static int apply_permissions(const wr_mgmt_env_t *env, const json_t *defs, char *err, size_t errlen)
{
    const wr_config_t *cfg = env->cfg;
    size_t i;
    const json_t *item;
    bool created;

    json_array_foreach(json_object_get(defs, "permissions"), i, item)
    {
        const char *user = json_string_value(json_object_get(item, "user"));
        const char *vhost = json_string_value(json_object_get(item, "vhost"));
        char why[300];
        int rc;

        if (!user || !vhost) {
            snprintf(err, errlen, "permissions[%zu]: user and vhost must be strings", i);
            return WR_ESYNTAX;
        }
        if (!wr_users_find(&cfg->auth, user, strlen(user))) {
            snprintf(err, errlen, "permissions: user '%s' does not exist", user);
            return WR_ESYNTAX;
        }
        if (!wr_map_get(env->vhosts, wr_bytes_str(vhost))) {
            snprintf(err, errlen, "permissions: vhost '%s' does not exist", vhost);
            return WR_ESYNTAX;
        }
        rc = wr_mgmt_put_permission(env, user, vhost, item, &created, why, sizeof(why));
        if (rc != WR_OK) {
            snprintf(err, errlen, "permissions: %s", why);
            return rc;
        }
    }
    return WR_OK;
}

int wr_definitions_import(const wr_mgmt_env_t *env, const json_t *defs, wr_vhost_t *only, char *err,
                          size_t errlen)
{
    wr_buf_t args = WR_BUF_INIT;
    int rc = check_document(defs, only != NULL, err, errlen);

    if (rc != WR_OK)
        return rc;
    log_skipped(defs);
    if (!only)
        rc = apply_users(env, defs, err, errlen);
    for (size_t s = 0; s < sizeof(applied) / sizeof(applied[0]) && rc == WR_OK; s++) {
        const json_t *arr = json_object_get(defs, applied[s]);
        size_t i;
        const json_t *item;

        json_array_foreach(arr, i, item)
        {
            if (s == 0) {
                const char *name = json_string_value(json_object_get(item, "name"));

                rc = only ? WR_OK : env->vhost_add(env->ud, name, NULL);
                if (rc == WR_EEXIST) {
                    rc = WR_OK;
                } else if (rc != WR_OK) {
                    snprintf(err, errlen, "vhosts: out of memory creating '%s'", name);
                    break;
                }
            } else if (s == 1) {
                rc = apply_policy(env, only, item, err, errlen);
                if (rc != WR_OK)
                    break;
            } else if (!apply_item(env, only, applied[s], item, &args, err, errlen)) {
                rc = WR_ESYNTAX;
                break;
            }
        }
    }
    if (rc == WR_OK && !only)
        rc = apply_permissions(env, defs, err, errlen);
    wr_buf_free(&args);
    return rc;
}

/* ---------------------------------------------------------------- import in cluster mode */

/* An exchange's, queue's or binding's command, checked as a client's
 * declaration is checked before it is proposed; NULL with err set. */
static json_t *topo_cmd(const char *section, const json_t *obj, const char *vhost, const char *self,
                        wr_buf_t *buf, char *err, size_t errlen)
{
    const char *type = json_string_value(json_object_get(obj, "type"));
    wr_queue_args_decl_t d = {.durable = flag(obj, "durable"), .auto_delete = flag(obj, "auto_delete")};
    wr_exchange_opts_t o = {wr_router_type_find(wr_bytes_str(type ? type : "")), flag(obj, "durable"),
                            flag(obj, "auto_delete"), flag(obj, "internal"), WR_BYTES_LIT("")};
    wr_bytes_t name = str(obj, "name"), args;
    wr_amqp_error_t e = {0};

    wr_mgmt_json_to_table(json_object_get(obj, "arguments"), buf, &args, err, errlen);
    o.args = d.args = args;
    if (strcmp(section, "bindings") == 0)
        return wr_meta_cmd_binding(
            vhost, true, str(obj, "source"),
            strcmp(json_string_value(json_object_get(obj, "destination_type")), "queue") == 0
                ? WR_DEST_QUEUE
                : WR_DEST_EXCHANGE,
            str(obj, "destination"), str(obj, "routing_key"), args);
    if (strcmp(section, "queues") == 0 && wr_queue_args_check_name(name, &e) &&
        wr_queue_args_validate(vhost, name, args, &e))
        return wr_meta_cmd_queue_declare(vhost, name, &d, self);
    if (strcmp(section, "exchanges") == 0 && o.type == NULL)
        snprintf(e.text, sizeof(e.text), "unknown exchange type '%s'", type);
    else if (strcmp(section, "exchanges") == 0 && wr_handle_exchange_check_new(vhost, name, args, &e))
        return wr_meta_cmd_exchange_declare(vhost, name, &o);
    snprintf(err, errlen, "%s '%.*s' in vhost '%s': %s",
             strcmp(section, "queues") == 0 ? "queue" : "exchange", (int)name.len, (const char *)name.data,
             vhost, e.text);
    return NULL;
}

/* The command of item i of section; NULL with err set. */
static json_t *item_cmd(const wr_mgmt_env_t *env, const char *section, const json_t *obj,
                        const wr_vhost_t *only, wr_buf_t *buf, char *err, size_t errlen)
{
    const char *vhost = only ? wr_vhost_name(only) : json_string_value(json_object_get(obj, "vhost"));
    const char *name = json_string_value(json_object_get(obj, "name"));
    json_t *cmd;
    int rc;

    if (strcmp(section, "users") == 0) {
        cmd = wr_mgmt_meta_user_cmd(name, obj, err, errlen, &rc);
    } else if (strcmp(section, "vhosts") == 0) {
        cmd = wr_meta_cmd_defs("vhost.add", name, json_object());
    } else if (strcmp(section, "permissions") == 0) {
        cmd = wr_mgmt_meta_permission_cmd(json_string_value(json_object_get(obj, "user")), vhost, obj, err,
                                          errlen);
    } else if (strcmp(section, "policies") == 0) {
        cmd = wr_mgmt_meta_policy_cmd(vhost, name, json_string_value(json_object_get(obj, "pattern")),
                                      json_string_value(json_object_get(obj, "apply-to")),
                                      json_integer_value(json_object_get(obj, "priority")),
                                      json_object_get(obj, "definition"), err, errlen, &rc);
    } else {
        cmd = topo_cmd(section, obj, vhost, wr_meta_self(env->meta), buf, err, errlen);
    }
    return cmd;
}

json_t *wr_definitions_commands(const wr_mgmt_env_t *env, const json_t *defs, const wr_vhost_t *only,
                                char *err, size_t errlen)
{
    static const char *const order[] = {"users",  "vhosts",   "policies",   "exchanges",
                                        "queues", "bindings", "permissions"};
    json_t *cmds = check_document(defs, only != NULL, err, errlen) == WR_OK ? json_array() : NULL, *cmd;
    wr_buf_t buf = WR_BUF_INIT;
    const json_t *item;
    size_t i;

    if (cmds != NULL)
        log_skipped(defs);
    for (size_t s = 0; cmds != NULL && s < sizeof(order) / sizeof(order[0]); s++) {
        bool whole = strcmp(order[s], "users") == 0 || strcmp(order[s], "vhosts") == 0 ||
                     strcmp(order[s], "permissions") == 0;
        if (only && whole)
            continue;
        json_array_foreach(json_object_get(defs, order[s]), i, item)
        {
            snprintf(err, errlen, "%s: out of memory", order[s]);
            if ((cmd = item_cmd(env, order[s], item, only, &buf, err, errlen)) == NULL ||
                json_array_append_new(cmds, cmd) != 0) {
                json_decref(cmds);
                cmds = NULL;
                break;
            }
        }
    }
    wr_buf_free(&buf);
    return cmds;
}

int wr_definitions_check_file(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *defs = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    char why[400];
    int rc;

    if (!defs) {
        if (json_error_code(&jerr) == json_error_cannot_open_file)
            snprintf(err, errlen, "%s: %s", path, jerr.text);
        else
            snprintf(err, errlen, "%s: line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
        return WR_ESYNTAX;
    }
    rc = check_document(defs, false, why, sizeof(why));
    if (rc != WR_OK)
        snprintf(err, errlen, "%s: %s", path, why);
    json_decref(defs);
    return rc;
}

int wr_definitions_load(const wr_mgmt_env_t *env)
{
    const char *path = env->cfg->load_definitions;
    json_error_t jerr;
    json_t *defs;
    char err[512];
    int rc;

    if (!path)
        return WR_OK;
    defs = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!defs) {
        wr_log_error("load_definitions: %s: %s", path, jerr.text);
        return WR_ESYNTAX;
    }
    rc = wr_definitions_import(env, defs, NULL, err, sizeof(err));
    json_decref(defs);
    if (rc != WR_OK)
        wr_log_error("load_definitions: %s: %s", path, err);
    else
        wr_log_info("definitions loaded from %s", path);
    return rc;
}
