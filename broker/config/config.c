/* SPDX-License-Identifier: MIT */
/*
 * The JSON configuration file (jansson). Loading starts from the defaults and
 * replaces whatever the file names; every problem (unknown key, wrong type,
 * value out of range, inconsistency) is collected, so one run of warrend shows
 * all of them as "FILE: key.path: reason" lines instead of one per attempt.
 */
#include "broker/config/config.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/base/log.h"
#include "broker/cluster/cluster_config.h"
#include "broker/vhost/policy.h"
#include "core/status.h"
#include "protocol/table.h"
#include "storage/store.h"

#define DEFAULT_ADDRESS          "127.0.0.1"
#define DEFAULT_PORT             5672
#define DEFAULT_FRAME_MAX        131072
#define DEFAULT_CHANNEL_MAX      2047
#define DEFAULT_HEARTBEAT        60
#define DEFAULT_MAX_MESSAGE_SIZE 134217728
#define DEFAULT_USER             "guest"
#define DEFAULT_VHOST            "/"

/* AMQP's minimum frame size; the maximum keeps frame_max + overhead far from
 * 32-bit wrap-around. RabbitMQ caps max_message_size at 512 MiB. */
#define MIN_FRAME_MAX          4096
#define MAX_FRAME_MAX          2147483647
#define MAX_MESSAGE_SIZE_LIMIT 536870912

#define DEFAULT_CONSUMER_TIMEOUT 1800000        /* RabbitMQ's consumer_timeout, 30 minutes */
#define MAX_CONSUMER_TIMEOUT     315360000000LL /* ten years, as x-expires; 0 or false: none */
/* Names travel as AMQP shortstrs. */
#define MAX_NAME_LEN 255
/* The HTTP listeners (management API, Prometheus) and statistics. */
#define DEFAULT_MANAGEMENT_PORT     15672
#define DEFAULT_MANAGEMENT_TLS_PORT 15671
#define DEFAULT_PROMETHEUS_PORT     15692
/* RabbitMQ's collect_statistics_interval, in ms. */
#define DEFAULT_STATS_INTERVAL 5000
#define MIN_STATS_INTERVAL     100
#define MAX_STATS_INTERVAL     3600000
/* Storage: where the store lives and how much of each queue stays in memory. */
#define DEFAULT_DATA_DIR            "data"
#define DEFAULT_QUEUE_MEMORY_BUDGET 67108864
#define MIN_SEGMENT_SIZE            4096
#define MAX_SEGMENT_SIZE            1073741824
/* A commit interval holds confirms back by up to itself: one second at most. */
#define MAX_COMMIT_INTERVAL_US 1000000
/* Flow alarms: RabbitMQ's defaults, and a floor under the storage backlog
 * that blocks publishers (below one large message, nothing could publish). */
#define DEFAULT_MEMORY_HIGH_WATERMARK 0.4
#define DEFAULT_DISK_FREE_LIMIT       50000000
#define DEFAULT_FLOW_PENDING_BYTES    67108864
#define MIN_FLOW_PENDING_BYTES        1048576
/* Security: TLS, permissions and the limits on hostile input. */
#define DEFAULT_TLS_PORT          5671
#define DEFAULT_HANDSHAKE_TIMEOUT 10000
#define DEFAULT_MAX_TABLE_DEPTH   16
#define DEFAULT_MAX_TABLE_SIZE    65536
#define MAX_HANDSHAKE_TIMEOUT     3600000
#define TLS_V1_2                  0x0303
#define TLS_V1_3                  0x0304

typedef struct {
    const char *file;
    char *out;
    size_t outlen;
    size_t used;
    int count;
} problems_t;

static void problem(problems_t *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(problems_t *p, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    int n;

    p->count++;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (p->outlen == 0 || p->used >= p->outlen - 1)
        return;
    n = snprintf(p->out + p->used, p->outlen - p->used, "%s%s: %s: %s", p->used ? "\n" : "", p->file, path,
                 reason);
    if (n > 0)
        p->used += (size_t)n < p->outlen - p->used ? (size_t)n : p->outlen - p->used - 1;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

static bool expect_type(problems_t *p, const char *path, const json_t *v, json_type type, const char *want)
{
    if (json_typeof(v) == type)
        return true;
    problem(p, path, "expected %s, got %s", want, json_kind(v));
    return false;
}

static bool get_int(problems_t *p, const char *path, const json_t *v, long long min, long long max,
                    long long *out)
{
    long long n;

    if (!expect_type(p, path, v, JSON_INTEGER, "an integer"))
        return false;
    n = json_integer_value(v);
    if (n < min || n > max) {
        problem(p, path, "must be between %lld and %lld, got %lld", min, max, n);
        return false;
    }
    *out = n;
    return true;
}

/* A string usable as a user or vhost name: non-empty, at most 255 bytes. */
static const char *get_name(problems_t *p, const char *path, const json_t *v)
{
    const char *s;

    if (!expect_type(p, path, v, JSON_STRING, "a string"))
        return NULL;
    s = json_string_value(v);
    if (s[0] == '\0') {
        problem(p, path, "must not be empty");
        return NULL;
    }
    if (strlen(s) > MAX_NAME_LEN) {
        problem(p, path, "longer than %d bytes", MAX_NAME_LEN);
        return NULL;
    }
    return s;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool contains(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

/* Appends a copy of s to *v; false on ENOMEM. */
static bool push_string(char ***v, size_t *n, const char *s)
{
    char **grown = realloc(*v, (*n + 1) * sizeof(**v));
    char *copy;

    if (!grown)
        return false;
    *v = grown;
    copy = strdup(s);
    if (!copy)
        return false;
    grown[(*n)++] = copy;
    return true;
}

/* Appends *u under a copy of `name`, taking its vhosts and tags (the caller
 * keeps them when this fails: false on ENOMEM). */
static bool push_user(wr_config_t *cfg, const char *name, const wr_user_cfg_t *u)
{
    wr_user_cfg_t *grown = realloc(cfg->auth.users, (cfg->auth.nusers + 1) * sizeof(*cfg->auth.users));
    char *copy;

    if (!grown)
        return false;
    cfg->auth.users = grown;
    copy = strdup(name);
    if (!copy)
        return false;
    grown[cfg->auth.nusers] = *u;
    grown[cfg->auth.nusers].name = copy;
    cfg->auth.nusers++;
    return true;
}

/* Appends to a listener list (listeners or tls_listeners). */
static bool push_listener(wr_listener_cfg_t **list, size_t *n, const char *address, uint16_t port)
{
    wr_listener_cfg_t *grown = realloc(*list, (*n + 1) * sizeof(**list));
    char *copy;

    if (!grown)
        return false;
    *list = grown;
    copy = strdup(address);
    if (!copy)
        return false;
    grown[*n].address = copy;
    grown[*n].port = port;
    (*n)++;
    return true;
}

static void clear_users(wr_config_t *cfg)
{
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        free(cfg->auth.users[i].name);
        free_strings(cfg->auth.users[i].vhosts, cfg->auth.users[i].nvhosts);
        free_strings(cfg->auth.users[i].tags, cfg->auth.users[i].ntags);
    }
    free(cfg->auth.users);
    cfg->auth.users = NULL;
    cfg->auth.nusers = 0;
}

static void clear_listeners(wr_listener_cfg_t **list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i].address);
    free(*list);
    *list = NULL;
    *n = 0;
}

/* ------------------------------------------------ security (docs/SECURITY.md) */

static void free_permission(wr_permission_cfg_t *perm)
{
    free(perm->user);
    free(perm->vhost);
    for (int k = 0; k < WR_PERM_KINDS; k++) {
        free(perm->pattern[k]);
        regfree(&perm->re[k]);
    }
}

/* Drops the permissions that users' "vhosts" lists produced (all of them
 * with `all`). */
static void drop_permissions(wr_config_t *cfg, bool all)
{
    size_t kept = 0;

    for (size_t i = 0; i < cfg->auth.npermissions; i++) {
        if (all || cfg->auth.permissions[i].implicit)
            free_permission(&cfg->auth.permissions[i]);
        else
            cfg->auth.permissions[kept++] = cfg->auth.permissions[i];
    }
    cfg->auth.npermissions = kept;
    if (kept == 0) {
        free(cfg->auth.permissions);
        cfg->auth.permissions = NULL;
    }
}

static void clear_security(wr_config_t *cfg)
{
    clear_listeners(&cfg->tls_listeners, &cfg->ntls_listeners);
    free(cfg->tls.certfile);
    free(cfg->tls.keyfile);
    free(cfg->tls.cacertfile);
    free(cfg->tls.ciphers);
    drop_permissions(cfg, true);
    for (size_t i = 0; i < cfg->auth.nadded_permissions; i++) {
        free_permission(cfg->auth.added_permissions[i]);
        free(cfg->auth.added_permissions[i]);
    }
    free(cfg->auth.added_permissions);
    cfg->auth.added_permissions = NULL;
    cfg->auth.nadded_permissions = 0;
}

/* Compiles the three patterns of a permission; a bad one is reported
 * under path. */
static bool compile_permission(problems_t *p, const char *path, wr_permission_cfg_t *perm)
{
    char why[400];

    if (wr_users_permission_compile(perm, why, sizeof(why)) == WR_OK)
        return true;
    problem(p, path, "%s", why);
    return false;
}

/* Appends a permission (copying the strings, compiling the patterns); a bad
 * pattern is reported and nothing is added. False only on ENOMEM. */
static bool push_permission(problems_t *p, const char *path, wr_config_t *cfg, const char *user,
                            const char *vhost, const char *const pattern[WR_PERM_KINDS], bool implicit)
{
    wr_permission_cfg_t perm = {.implicit = implicit};
    wr_permission_cfg_t *grown;
    bool ok;

    perm.user = strdup(user);
    perm.vhost = strdup(vhost);
    ok = perm.user && perm.vhost;
    for (int k = 0; k < WR_PERM_KINDS; k++) {
        perm.pattern[k] = strdup(pattern[k]);
        ok = ok && perm.pattern[k];
    }
    grown = ok ? realloc(cfg->auth.permissions, (cfg->auth.npermissions + 1) * sizeof(*cfg->auth.permissions))
               : NULL;
    if (grown)
        cfg->auth.permissions = grown;
    if (!grown || !compile_permission(p, path, &perm)) {
        free(perm.user);
        free(perm.vhost);
        for (int k = 0; k < WR_PERM_KINDS; k++)
            free(perm.pattern[k]);
        return grown != NULL;
    }
    cfg->auth.permissions[cfg->auth.npermissions++] = perm;
    return true;
}

/* Turns every user's "vhosts" list into ".*" permissions, replacing those
 * made before; a vhost with explicit permissions for the user is an error. */
static bool implicit_permissions(problems_t *p, wr_config_t *cfg)
{
    static const char *const all[WR_PERM_KINDS] = {".*", ".*", ".*"};

    drop_permissions(cfg, false);
    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        const wr_user_cfg_t *u = &cfg->auth.users[i];

        for (size_t j = 0; j < u->nvhosts; j++) {
            char path[64];

            snprintf(path, sizeof(path), "users[%zu].vhosts[%zu]", i, j);
            if (wr_users_permission(&cfg->auth, u->name, u->vhosts[j], strlen(u->vhosts[j]))) {
                problem(p, path, "user '%s' also has permissions for vhost '%s' in permissions", u->name,
                        u->vhosts[j]);
                continue;
            }
            if (!push_permission(p, path, cfg, u->name, u->vhosts[j], all, true))
                return false;
        }
    }
    return true;
}

void wr_config_free(wr_config_t *cfg)
{
    if (!cfg)
        return;
    wr_cluster_config_free(cfg->cluster);
    clear_listeners(&cfg->listeners, &cfg->nlisteners);
    clear_users(cfg);
    free_strings(cfg->auth.loopback_users, cfg->auth.nloopback_users);
    free_strings(cfg->vhosts, cfg->nvhosts);
    free(cfg->management.address);
    free(cfg->prometheus.address);
    free(cfg->load_definitions);
    free(cfg->log_file);
    free(cfg->data_dir);
    clear_security(cfg);
    json_decref(cfg->policies);
    free(cfg);
}

wr_config_t *wr_config_new_default(void)
{
    wr_config_t *cfg = calloc(1, sizeof(*cfg));
    wr_user_cfg_t guest = {.hashing_algorithm = WR_HASH_SHA256};
    problems_t none = {"defaults", NULL, 0, 0, 0};

    if (!cfg)
        return NULL;
    cfg->frame_max = DEFAULT_FRAME_MAX;
    cfg->channel_max = DEFAULT_CHANNEL_MAX;
    cfg->heartbeat = DEFAULT_HEARTBEAT;
    cfg->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    cfg->consumer_timeout = DEFAULT_CONSUMER_TIMEOUT;
    cfg->log_level = WR_LOG_INFO;
    cfg->collect_statistics_interval = DEFAULT_STATS_INTERVAL;
    cfg->segment_size = WR_STORE_DEFAULT_SEGMENT_SIZE;
    cfg->queue_memory_budget = DEFAULT_QUEUE_MEMORY_BUDGET;
    cfg->commit_interval_us = WR_STORE_DEFAULT_COMMIT_INTERVAL_US;
    cfg->unawaited_delay_us = WR_STORE_DEFAULT_UNAWAITED_DELAY_US;
    cfg->data_dir = strdup(DEFAULT_DATA_DIR);
    cfg->max_connections = -1;
    cfg->max_connections_per_user = -1;
    cfg->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    cfg->max_table_depth = DEFAULT_MAX_TABLE_DEPTH;
    cfg->max_table_size = DEFAULT_MAX_TABLE_SIZE;
    cfg->tls.min_version = TLS_V1_2;
    cfg->memory_high_watermark = DEFAULT_MEMORY_HIGH_WATERMARK;
    cfg->disk_free_limit_bytes = DEFAULT_DISK_FREE_LIMIT;
    cfg->flow_storage_pending_bytes = DEFAULT_FLOW_PENDING_BYTES;
    guest.password_hash_len =
        wr_auth_hash_password(WR_HASH_SHA256, wr_bytes_str(DEFAULT_USER), guest.password_hash);
    if (!cfg->data_dir || guest.password_hash_len == 0)
        goto err;
    /* RabbitMQ's default user is an administrator (default_user_tags). */
    if (!push_listener(&cfg->listeners, &cfg->nlisteners, DEFAULT_ADDRESS, DEFAULT_PORT) ||
        !push_string(&guest.vhosts, &guest.nvhosts, DEFAULT_VHOST) ||
        !push_string(&guest.tags, &guest.ntags, "administrator"))
        goto err;
    if (!push_user(cfg, DEFAULT_USER, &guest))
        goto err;
    guest.vhosts = NULL;
    guest.nvhosts = 0;
    guest.tags = NULL;
    guest.ntags = 0;
    if (!push_string(&cfg->auth.loopback_users, &cfg->auth.nloopback_users, DEFAULT_USER) ||
        !push_string(&cfg->vhosts, &cfg->nvhosts, DEFAULT_VHOST) || !implicit_permissions(&none, cfg))
        goto err;
    return cfg;
err:
    free_strings(guest.vhosts, guest.nvhosts);
    free_strings(guest.tags, guest.ntags);
    wr_config_free(cfg);
    return NULL;
}

/* The parse_* functions report problems and return false only on ENOMEM. */

/* {"address": IP, "port": N} at `path`, either key optional: fills what is
 * present; false (with the problems recorded) if any value is wrong. */
static bool parse_address_port(problems_t *p, const char *path, const json_t *obj, const char **address,
                               long long *port)
{
    char kpath[300];
    bool ok = true;
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        snprintf(kpath, sizeof(kpath), "%s.%s", path, key);
        if (strcmp(key, "address") == 0) {
            struct in6_addr a;

            if (!expect_type(p, kpath, v, JSON_STRING, "a string")) {
                ok = false;
                continue;
            }
            *address = json_string_value(v);
            if (inet_pton(AF_INET, *address, &a) != 1 && inet_pton(AF_INET6, *address, &a) != 1) {
                problem(p, kpath, "not an IPv4 or IPv6 address: '%s'", *address);
                ok = false;
            }
        } else if (strcmp(key, "port") == 0) {
            ok = get_int(p, kpath, v, 1, 65535, port) && ok;
        } else {
            problem(p, kpath, "unknown key");
        }
    }
    return ok;
}

/* "listeners" (at least one) or "tls_listeners" into *list. */
static bool parse_listeners(problems_t *p, const char *name, const json_t *arr, wr_listener_cfg_t **list,
                            size_t *n)
{
    char path[64];
    size_t i;
    const json_t *item;

    if (!expect_type(p, name, arr, JSON_ARRAY, "an array"))
        return true;
    clear_listeners(list, n);
    if (json_array_size(arr) == 0 && strcmp(name, "listeners") == 0)
        problem(p, name, "must name at least one listener");
    json_array_foreach(arr, i, item)
    {
        const char *address = DEFAULT_ADDRESS;
        long long port = strcmp(name, "tls_listeners") == 0 ? DEFAULT_TLS_PORT : DEFAULT_PORT;

        snprintf(path, sizeof(path), "%s[%zu]", name, i);
        if (!expect_type(p, path, item, JSON_OBJECT, "an object"))
            continue;
        if (parse_address_port(p, path, item, &address, &port) &&
            !push_listener(list, n, address, (uint16_t)port))
            return false;
    }
    return true;
}

/* The limits on hostile input (docs/SECURITY.md); false for a key that is
 * not one of them. */
static bool parse_security_limit(problems_t *p, wr_config_t *cfg, const char *path, const char *key,
                                 const json_t *v)
{
    long long n;

    if (strcmp(key, "max_connections") == 0) {
        if (get_int(p, path, v, -1, INT32_MAX, &n))
            cfg->max_connections = n;
    } else if (strcmp(key, "max_connections_per_user") == 0) {
        if (get_int(p, path, v, -1, INT32_MAX, &n))
            cfg->max_connections_per_user = n;
    } else if (strcmp(key, "handshake_timeout") == 0) {
        if (get_int(p, path, v, 1, MAX_HANDSHAKE_TIMEOUT, &n))
            cfg->handshake_timeout = (uint32_t)n;
    } else if (strcmp(key, "max_table_depth") == 0) {
        if (get_int(p, path, v, 1, WR_TABLE_MAX_DEPTH, &n))
            cfg->max_table_depth = (uint32_t)n;
    } else if (strcmp(key, "max_table_size") == 0) {
        if (get_int(p, path, v, 1, MAX_FRAME_MAX, &n))
            cfg->max_table_size = (uint32_t)n;
    } else {
        return false;
    }
    return true;
}

static bool parse_limits(problems_t *p, wr_config_t *cfg, const json_t *obj)
{
    char path[64];
    const char *key;
    const json_t *v;
    long long n;

    if (!expect_type(p, "limits", obj, JSON_OBJECT, "an object"))
        return true;
    json_object_foreach((json_t *)obj, key, v)
    {
        snprintf(path, sizeof(path), "limits.%s", key);
        if (strcmp(key, "frame_max") == 0) {
            if (get_int(p, path, v, MIN_FRAME_MAX, MAX_FRAME_MAX, &n))
                cfg->frame_max = (uint32_t)n;
        } else if (strcmp(key, "channel_max") == 0) {
            if (get_int(p, path, v, 1, UINT16_MAX, &n))
                cfg->channel_max = (uint16_t)n;
        } else if (strcmp(key, "heartbeat") == 0) {
            if (get_int(p, path, v, 0, UINT16_MAX, &n))
                cfg->heartbeat = (uint16_t)n;
        } else if (strcmp(key, "max_message_size") == 0) {
            if (get_int(p, path, v, 1, MAX_MESSAGE_SIZE_LIMIT, &n))
                cfg->max_message_size = (uint64_t)n;
        } else if (strcmp(key, "consumer_timeout") == 0) {
            if (json_is_false(v))
                cfg->consumer_timeout = -1;
            else if (get_int(p, path, v, 0, MAX_CONSUMER_TIMEOUT, &n))
                cfg->consumer_timeout = n > 0 ? n : -1;
        } else if (!parse_security_limit(p, cfg, path, key, v)) {
            problem(p, path, "unknown key");
        }
    }
    return true;
}

/* An array of names into *out (replacing it); duplicates are reported with
 * `what` ("vhost", "user"). */
static bool parse_names(problems_t *p, const char *name, const json_t *arr, const char *what, char ***out,
                        size_t *nout)
{
    char path[300];
    size_t i;
    const json_t *item;
    char **v = NULL;
    size_t n = 0;

    if (!expect_type(p, name, arr, JSON_ARRAY, "an array"))
        return true;
    json_array_foreach(arr, i, item)
    {
        const char *s;

        snprintf(path, sizeof(path), "%s[%zu]", name, i);
        s = get_name(p, path, item);
        if (!s)
            continue;
        if (contains(v, n, s)) {
            problem(p, path, "duplicate %s '%s'", what, s);
            continue;
        }
        if (!push_string(&v, &n, s)) {
            free_strings(v, n);
            return false;
        }
    }
    free_strings(*out, *nout);
    *out = v;
    *nout = n;
    return true;
}

/* Whether an entry before users[i] has the same name (checked on the file,
 * so a duplicate is found even when the first entry had other problems). */
static bool earlier_user(const json_t *users, size_t i, const char *name)
{
    for (size_t k = 0; k < i; k++) {
        const json_t *prev = json_object_get(json_array_get(users, k), "name");

        if (json_is_string(prev) && strcmp(json_string_value(prev), name) == 0)
            return true;
    }
    return false;
}

/* A user's "tags": an array of names, or RabbitMQ's older comma-separated
 * string ("administrator,monitoring"). */
static bool parse_tags(problems_t *p, const char *path, const json_t *v, char ***tags, size_t *ntags)
{
    const char *s, *comma;

    if (!json_is_string(v))
        return parse_names(p, path, v, "tag", tags, ntags);
    for (s = json_string_value(v); *s; s = *comma ? comma + 1 : comma) {
        char tag[MAX_NAME_LEN + 1];
        size_t len;

        comma = strchr(s, ',');
        if (!comma)
            comma = s + strlen(s);
        len = (size_t)(comma - s);
        if (len == 0)
            continue;
        if (len > MAX_NAME_LEN) {
            problem(p, path, "tag longer than %d bytes", MAX_NAME_LEN);
            continue;
        }
        memcpy(tag, s, len);
        tag[len] = '\0';
        if (!contains(*tags, *ntags, tag) && !push_string(tags, ntags, tag))
            return false;
    }
    return true;
}

/* A user's "limits" (RabbitMQ's user limits): {"max-connections": N}. */
static void parse_user_limits(problems_t *p, const char *path, const json_t *obj, wr_user_cfg_t *u)
{
    const char *key;
    const json_t *v;
    long long n;

    if (!expect_type(p, path, obj, JSON_OBJECT, "an object"))
        return;
    json_object_foreach((json_t *)obj, key, v)
    {
        char sub[320];

        snprintf(sub, sizeof(sub), "%s.%s", path, key);
        if (strcmp(key, "max-connections") != 0) {
            problem(p, sub, "unknown key");
        } else if (get_int(p, sub, v, -1, INT32_MAX, &n)) {
            u->has_max_connections = true;
            u->max_connections = n;
        }
    }
}

/* The hash of a user from "password" (hashed now) or "password_hash". */
static bool user_password(problems_t *p, const char *path, const json_t *obj, wr_user_cfg_t *u)
{
    const json_t *plain = json_object_get(obj, "password");
    const json_t *hash = json_object_get(obj, "password_hash");
    char sub[320];
    int rc;

    if (plain && hash) {
        problem(p, path, "give either 'password' or 'password_hash', not both");
        return false;
    }
    if (!plain && !hash) {
        problem(p, path, "missing key 'password'");
        return false;
    }
    snprintf(sub, sizeof(sub), "%s.%s", path, plain ? "password" : "password_hash");
    if (!expect_type(p, sub, plain ? plain : hash, JSON_STRING, "a string"))
        return false;
    if (plain) {
        wr_bytes_t pw = {(const uint8_t *)json_string_value(plain), json_string_length(plain)};

        u->password_hash_len = wr_auth_hash_password(u->hashing_algorithm, pw, u->password_hash);
        if (u->password_hash_len == 0)
            problem(p, sub, "cannot hash the password (no random salt)");
        return u->password_hash_len != 0;
    }
    rc = wr_auth_hash_decode(json_string_value(hash), u->hashing_algorithm, u->password_hash,
                             &u->password_hash_len);
    if (rc == WR_ESYNTAX)
        problem(p, sub, "not base64");
    else if (rc != WR_OK)
        problem(p, sub, "expected 4 octets of salt and a %zu-octet digest after base64 decoding",
                wr_auth_digest_len(u->hashing_algorithm));
    return rc == WR_OK;
}

static bool parse_user(problems_t *p, wr_config_t *cfg, const json_t *users, size_t i, const json_t *obj)
{
    char path[300];
    const char *name = NULL;
    wr_user_cfg_t u = {.hashing_algorithm = WR_HASH_SHA256};
    bool ok = true;
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        size_t before = (size_t)p->count;

        snprintf(path, sizeof(path), "users[%zu].%s", i, key);
        if (strcmp(key, "name") == 0) {
            name = get_name(p, path, v);
            ok = name && ok;
            if (name && earlier_user(users, i, name)) {
                problem(p, path, "duplicate user '%s'", name);
                ok = false;
            }
        } else if (strcmp(key, "password") == 0 || strcmp(key, "password_hash") == 0) {
            continue; /* after hashing_algorithm, whatever the order */
        } else if (strcmp(key, "hashing_algorithm") == 0) {
            if (expect_type(p, path, v, JSON_STRING, "a string") &&
                !wr_auth_hash_alg_parse(json_string_value(v), &u.hashing_algorithm))
                problem(p, path,
                        "unknown algorithm '%s' (expected rabbit_password_hashing_sha256, _sha512 or _md5)",
                        json_string_value(v));
        } else if (strcmp(key, "tags") == 0) {
            if (!parse_tags(p, path, v, &u.tags, &u.ntags))
                goto err;
        } else if (strcmp(key, "limits") == 0) {
            parse_user_limits(p, path, v, &u);
        } else if (strcmp(key, "vhosts") == 0) {
            if (!parse_names(p, path, v, "vhost", &u.vhosts, &u.nvhosts))
                goto err;
            for (size_t j = 0; j < u.nvhosts; j++) {
                if (!contains(cfg->vhosts, cfg->nvhosts, u.vhosts[j])) {
                    snprintf(path, sizeof(path), "users[%zu].vhosts[%zu]", i, j);
                    problem(p, path, "unknown vhost '%s' (not listed in vhosts)", u.vhosts[j]);
                }
            }
        } else {
            problem(p, path, "unknown key");
        }
        ok = (size_t)p->count == before && ok;
    }
    snprintf(path, sizeof(path), "users[%zu]", i);
    if (!json_object_get(obj, "name")) {
        problem(p, path, "missing key 'name'");
        ok = false;
    }
    ok = user_password(p, path, obj, &u) && ok;
    if (ok) {
        if (!push_user(cfg, name, &u))
            goto err;
        return true;
    }
    free_strings(u.vhosts, u.nvhosts);
    free_strings(u.tags, u.ntags);
    return true;
err:
    free_strings(u.vhosts, u.nvhosts);
    free_strings(u.tags, u.ntags);
    return false;
}

static bool parse_users(problems_t *p, wr_config_t *cfg, const json_t *arr)
{
    char path[64];
    size_t i;
    const json_t *item;

    if (!expect_type(p, "users", arr, JSON_ARRAY, "an array"))
        return true;
    clear_users(cfg);
    json_array_foreach(arr, i, item)
    {
        snprintf(path, sizeof(path), "users[%zu]", i);
        if (!expect_type(p, path, item, JSON_OBJECT, "an object"))
            continue;
        if (!parse_user(p, cfg, arr, i, item))
            return false;
    }
    return true;
}

static bool set_option(problems_t *p, const char *path, const json_t *v, char **out);

/* "log": {"level", "file"}. */
static bool parse_log(problems_t *p, wr_config_t *cfg, const json_t *obj)
{
    const char *key;
    const json_t *v;

    if (!expect_type(p, "log", obj, JSON_OBJECT, "an object"))
        return true;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[300];
        int level;

        snprintf(path, sizeof(path), "log.%s", key);
        if (strcmp(key, "file") == 0) {
            if (!set_option(p, path, v, &cfg->log_file))
                return false;
            continue;
        }
        if (strcmp(key, "level") != 0) {
            problem(p, path, "unknown key");
            continue;
        }
        if (!expect_type(p, path, v, JSON_STRING, "a string"))
            continue;
        level = wr_log_level_parse(json_string_value(v));
        if (level < 0)
            problem(p, path, "unknown level '%s' (expected debug, info, warning or error)",
                    json_string_value(v));
        else
            cfg->log_level = level;
    }
    return true;
}

/* ------------------------------------------------ operations (management) */

static bool ops_key(const char *key)
{
    return strcmp(key, "management") == 0 || strcmp(key, "prometheus") == 0 ||
           strcmp(key, "load_definitions") == 0 || strcmp(key, "collect_statistics_interval") == 0;
}

static bool set_http_listener(wr_listener_cfg_t *l, const char *address, uint16_t port)
{
    char *copy = strdup(address);

    if (!copy)
        return false;
    free(l->address);
    l->address = copy;
    l->port = port;
    return true;
}

/* "management" and "prometheus": {"address": IP, "port": N}, both optional
 * inside the object; the object's presence enables the listener. */
static bool parse_http_listener(problems_t *p, const char *name, const json_t *obj, uint16_t default_port,
                                wr_listener_cfg_t *out)
{
    const char *address = DEFAULT_ADDRESS;
    long long port = default_port;

    if (!expect_type(p, name, obj, JSON_OBJECT, "an object"))
        return true;
    return !parse_address_port(p, name, obj, &address, &port) ||
           set_http_listener(out, address, (uint16_t)port);
}

/* "management": parse_http_listener's keys plus "tls" (a boolean: HTTPS
 * with the certificate of the "tls" object, on RabbitMQ's HTTPS port 15671
 * unless "port" says otherwise). */
static bool parse_management(problems_t *p, wr_config_t *cfg, const json_t *obj)
{
    const json_t *tls = json_object_get(obj, "tls");
    json_t *rest;
    bool ok;

    if (!tls)
        return parse_http_listener(p, "management", obj, DEFAULT_MANAGEMENT_PORT, &cfg->management);
    if (!json_is_boolean(tls)) {
        problem(p, "management.tls", "expected a boolean, got %s", json_kind(tls));
        return true;
    }
    cfg->management_tls = json_is_true(tls);
    rest = json_copy((json_t *)obj);
    if (!rest)
        return false;
    json_object_del(rest, "tls");
    ok = parse_http_listener(p, "management", rest,
                             cfg->management_tls ? DEFAULT_MANAGEMENT_TLS_PORT : DEFAULT_MANAGEMENT_PORT,
                             &cfg->management);
    json_decref(rest);
    return ok;
}

/* One of the keys ops_key accepts; false only on ENOMEM. */
static bool parse_ops(problems_t *p, wr_config_t *cfg, const char *key, const json_t *v)
{
    long long n;

    if (strcmp(key, "management") == 0)
        return json_is_object(v) ? parse_management(p, cfg, v)
                                 : parse_http_listener(p, key, v, DEFAULT_MANAGEMENT_PORT, &cfg->management);
    if (strcmp(key, "prometheus") == 0)
        return parse_http_listener(p, key, v, DEFAULT_PROMETHEUS_PORT, &cfg->prometheus);
    if (strcmp(key, "collect_statistics_interval") == 0) {
        if (get_int(p, key, v, MIN_STATS_INTERVAL, MAX_STATS_INTERVAL, &n))
            cfg->collect_statistics_interval = (uint32_t)n;
        return true;
    }
    if (!expect_type(p, key, v, JSON_STRING, "a string"))
        return true;
    if (json_string_length(v) == 0) {
        problem(p, key, "must not be empty");
        return true;
    }
    free(cfg->load_definitions);
    cfg->load_definitions = strdup(json_string_value(v));
    return cfg->load_definitions != NULL;
}

/* Two listeners of any kind on one address and port cannot both bind. */
static void check_ports(problems_t *p, const wr_config_t *cfg)
{
    const wr_listener_cfg_t *http[2] = {&cfg->management, &cfg->prometheus};
    const char *names[2] = {"management", "prometheus"};
    const struct {
        const char *name;
        const wr_listener_cfg_t *list;
        size_t n;
    } amqp[2] = {{"listeners", cfg->listeners, cfg->nlisteners},
                 {"tls_listeners", cfg->tls_listeners, cfg->ntls_listeners}};

    for (size_t i = 0; i < 2; i++) {
        if (!http[i]->address)
            continue;
        for (size_t k = 0; k < 2; k++) {
            for (size_t j = 0; j < amqp[k].n; j++) {
                if (amqp[k].list[j].port == http[i]->port &&
                    strcmp(amqp[k].list[j].address, http[i]->address) == 0)
                    problem(p, names[i], "port %u on %s is already used by %s[%zu]", http[i]->port,
                            http[i]->address, amqp[k].name, j);
            }
        }
    }
    if (http[0]->address && http[1]->address && http[0]->port == http[1]->port &&
        strcmp(http[0]->address, http[1]->address) == 0)
        problem(p, "prometheus", "port %u on %s is already used by management", http[1]->port,
                http[1]->address);
}

/* A port number from the environment: digits only, 1..65535. */
static bool env_port(problems_t *p, const char *var, uint16_t *out)
{
    const char *s = getenv(var);
    long n = 0;

    if (!s)
        return false;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || n > 65535) {
            n = -1;
            break;
        }
        n = n * 10 + (*c - '0');
    }
    if (s[0] == '\0' || n < 1 || n > 65535) {
        problem(p, var, "expected a port number between 1 and 65535, got '%s'", s);
        return false;
    }
    *out = (uint16_t)n;
    return true;
}

int wr_config_apply_env(wr_config_t *cfg, char *err, size_t errlen)
{
    problems_t p = {"environment", err, errlen, 0, 0};
    wr_listener_cfg_t *http[2] = {&cfg->management, &cfg->prometheus};
    const char *vars[2] = {"WARREN_MANAGEMENT_PORT", "WARREN_PROMETHEUS_PORT"};
    const char *dir = getenv("WARREN_DATA_DIR");
    uint16_t port;

    if (errlen > 0)
        err[0] = '\0';
    if (env_port(&p, "WARREN_AMQP_PORT", &port))
        cfg->listeners[0].port = port;
    if (dir && dir[0] == '\0') {
        problem(&p, "WARREN_DATA_DIR", "must not be empty");
    } else if (dir) {
        char *copy = strdup(dir);

        if (!copy) {
            snprintf(err, errlen, "environment: out of memory");
            return WR_ENOMEM;
        }
        free(cfg->data_dir);
        cfg->data_dir = copy;
    }
    for (size_t i = 0; i < 2; i++) {
        if (!env_port(&p, vars[i], &port))
            continue;
        if (!set_http_listener(http[i], http[i]->address ? http[i]->address : DEFAULT_ADDRESS, port)) {
            snprintf(err, errlen, "environment: out of memory");
            return WR_ENOMEM;
        }
    }
    if (p.count == 0)
        check_ports(&p, cfg);
    return p.count > 0 ? WR_ESYNTAX : WR_OK;
}

/* ------------------------------------------------ storage */

static bool storage_key(const char *key)
{
    return strcmp(key, "data_dir") == 0 || strcmp(key, "storage") == 0;
}

/* "data_dir": a path, and "storage": {"segment_size", "queue_memory_budget",
 * "flow_pending_bytes"} in bytes, "commit_interval_us" and
 * "unawaited_delay_us" in microseconds. */
static bool parse_storage(problems_t *p, wr_config_t *cfg, const char *name, const json_t *v)
{
    const char *key;
    const json_t *item;
    long long n;

    if (strcmp(name, "data_dir") == 0) {
        char *copy;

        if (!expect_type(p, name, v, JSON_STRING, "a string"))
            return true;
        if (json_string_value(v)[0] == '\0') {
            problem(p, name, "must not be empty");
            return true;
        }
        copy = strdup(json_string_value(v));
        if (!copy)
            return false;
        free(cfg->data_dir);
        cfg->data_dir = copy;
        return true;
    }
    if (!expect_type(p, name, v, JSON_OBJECT, "an object"))
        return true;
    json_object_foreach((json_t *)v, key, item)
    {
        char path[300];

        snprintf(path, sizeof(path), "storage.%s", key);
        if (strcmp(key, "segment_size") == 0) {
            if (get_int(p, path, item, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE, &n))
                cfg->segment_size = (uint64_t)n;
        } else if (strcmp(key, "queue_memory_budget") == 0) {
            if (get_int(p, path, item, 0, INT64_MAX, &n))
                cfg->queue_memory_budget = (uint64_t)n;
        } else if (strcmp(key, "commit_interval_us") == 0) {
            if (get_int(p, path, item, 0, MAX_COMMIT_INTERVAL_US, &n))
                cfg->commit_interval_us = n;
        } else if (strcmp(key, "unawaited_delay_us") == 0) {
            if (get_int(p, path, item, 0, MAX_COMMIT_INTERVAL_US, &n))
                cfg->unawaited_delay_us = n;
        } else if (strcmp(key, "flow_pending_bytes") == 0) {
            if (get_int(p, path, item, MIN_FLOW_PENDING_BYTES, INT64_MAX, &n))
                cfg->flow_storage_pending_bytes = (uint64_t)n;
        } else {
            problem(p, path, "unknown key");
        }
    }
    return true;
}

/* ------------------------------------------------ flow alarms */

static bool alarm_key(const char *key)
{
    return strcmp(key, "memory_high_watermark") == 0 || strcmp(key, "disk_free_limit") == 0;
}

/* A fraction or multiple given as a JSON number (integer or real) within
 * [min, max]. */
static bool get_ratio(problems_t *p, const char *path, const json_t *v, double min, double max, double *out)
{
    double x;

    if (!json_is_number(v)) {
        problem(p, path, "expected a number, got %s", json_kind(v));
        return false;
    }
    x = json_number_value(v);
    if (x < min || x > max) {
        problem(p, path, "must be between %g and %g, got %g", min, max, x);
        return false;
    }
    *out = x;
    return true;
}

/*
 * RabbitMQ's vm_memory_high_watermark.relative / .absolute and
 * disk_free_limit.absolute / .relative: a bare value is the usual form (a
 * fraction of RAM for the memory watermark, bytes for the disk limit), or an
 * object with exactly one of "relative" and "absolute".
 */
static void parse_alarm(problems_t *p, wr_config_t *cfg, const char *key, const json_t *v)
{
    bool memory = strcmp(key, "memory_high_watermark") == 0;
    const json_t *rel = NULL, *abs = NULL, *item;
    const char *k;
    char path[300];
    long long n;
    double x;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, item)
        {
            snprintf(path, sizeof(path), "%s.%s", key, k);
            if (strcmp(k, "relative") == 0)
                rel = item;
            else if (strcmp(k, "absolute") == 0)
                abs = item;
            else
                problem(p, path, "unknown key");
        }
        if ((rel == NULL) == (abs == NULL)) {
            problem(p, key, "needs exactly one of \"relative\" and \"absolute\"");
            return;
        }
    } else if (memory) {
        rel = v;
    } else {
        abs = v;
    }
    snprintf(path, sizeof(path), "%s%s", key, !json_is_object(v) ? "" : rel ? ".relative" : ".absolute");
    if (rel != NULL && memory && get_ratio(p, path, rel, 0, 1, &x)) {
        cfg->memory_high_watermark = x;
        cfg->memory_high_watermark_bytes = 0;
    } else if (rel != NULL && !memory && get_ratio(p, path, rel, 0.001, 1000, &x)) {
        cfg->disk_free_limit_relative = x;
    } else if (abs != NULL && memory && get_int(p, path, abs, 1, INT64_MAX, &n)) {
        cfg->memory_high_watermark_bytes = (uint64_t)n;
    } else if (abs != NULL && !memory && get_int(p, path, abs, 0, INT64_MAX, &n)) {
        cfg->disk_free_limit_bytes = (uint64_t)n;
        cfg->disk_free_limit_relative = 0;
    }
}

/* ------------------------------------------------ policies */

/* The configured vhost of policies[i] ("/" when absent), or NULL (reported). */
static const char *policy_vhost(problems_t *p, const wr_config_t *cfg, const char *path, const json_t *obj)
{
    const json_t *v = json_object_get(obj, "vhost");
    const char *name;

    if (v == NULL)
        return DEFAULT_VHOST;
    name = get_name(p, path, v);
    if (name != NULL && !contains(cfg->vhosts, cfg->nvhosts, name)) {
        problem(p, path, "vhost '%s' is not in vhosts", name);
        return NULL;
    }
    return name;
}

/* Whether policies[j], j < i, has the same vhost and name. */
static bool earlier_policy(const json_t *arr, size_t i, const char *vhost, const char *name)
{
    for (size_t j = 0; j < i; j++) {
        const json_t *o = json_array_get(arr, j), *vv = json_object_get(o, "vhost");
        const char *n = json_string_value(json_object_get(o, "name"));
        const char *vh = vv == NULL ? DEFAULT_VHOST : json_string_value(vv);

        if (n != NULL && vh != NULL && strcmp(n, name) == 0 && strcmp(vh, vhost) == 0)
            return true;
    }
    return false;
}

/*
 * One policy of the "policies" array, in RabbitMQ's definitions shape;
 * every problem is reported under policies[i].<field>. The policy's own
 * rules (pattern, apply-to, definition) are those of wr_policy_validate,
 * checked once the fields have the right types.
 */
static void check_policy(problems_t *p, const wr_config_t *cfg, const json_t *arr, size_t i)
{
    static const char *const fields[] = {"vhost", "name", "pattern", "apply-to", "definition", "priority"};
    static const char *const required[] = {"name", "pattern", "definition"};
    const json_t *obj = json_array_get(arr, i), *item;
    const json_t *pattern, *apply, *def, *prio;
    const char *k, *vhost, *name;
    char path[300], why[512];
    bool ok = true;
    long long n;

    snprintf(path, sizeof(path), "policies[%zu]", i);
    if (!expect_type(p, path, obj, JSON_OBJECT, "an object"))
        return;
    json_object_foreach((json_t *)obj, k, item)
    {
        size_t f = 0;

        while (f < sizeof(fields) / sizeof(fields[0]) && strcmp(k, fields[f]) != 0)
            f++;
        if (f == sizeof(fields) / sizeof(fields[0])) {
            snprintf(path, sizeof(path), "policies[%zu].%s", i, k);
            problem(p, path, "unknown key");
        }
    }
    snprintf(path, sizeof(path), "policies[%zu].vhost", i);
    vhost = policy_vhost(p, cfg, path, obj);
    snprintf(path, sizeof(path), "policies[%zu].name", i);
    item = json_object_get(obj, "name");
    name = item != NULL ? get_name(p, path, item) : NULL;
    if (vhost != NULL && name != NULL && earlier_policy(arr, i, vhost, name))
        problem(p, path, "duplicate policy '%s' in vhost '%s'", name, vhost);
    snprintf(path, sizeof(path), "policies[%zu].pattern", i);
    pattern = json_object_get(obj, "pattern");
    ok = pattern != NULL && expect_type(p, path, pattern, JSON_STRING, "a string");
    snprintf(path, sizeof(path), "policies[%zu].apply-to", i);
    apply = json_object_get(obj, "apply-to");
    if (apply != NULL && !expect_type(p, path, apply, JSON_STRING, "a string"))
        ok = false;
    snprintf(path, sizeof(path), "policies[%zu].priority", i);
    prio = json_object_get(obj, "priority");
    if (prio != NULL && !get_int(p, path, prio, INT64_MIN, INT64_MAX, &n))
        ok = false;
    snprintf(path, sizeof(path), "policies[%zu].definition", i);
    def = json_object_get(obj, "definition");
    if (def != NULL && !expect_type(p, path, def, JSON_OBJECT, "an object"))
        ok = false;
    snprintf(path, sizeof(path), "policies[%zu]", i);
    for (size_t f = 0; f < sizeof(required) / sizeof(required[0]); f++) {
        if (json_object_get(obj, required[f]) == NULL) {
            problem(p, path, "missing key '%s'", required[f]);
            ok = false;
        }
    }
    if (!ok || wr_policy_validate(json_string_value(pattern), json_string_value(apply), def, why,
                                  sizeof(why)) == WR_OK)
        return;
    /* RabbitMQ's reason starts with the field when it is not the definition. */
    snprintf(path, sizeof(path), "policies[%zu].%s", i,
             strncmp(why, "pattern ", 8) == 0    ? "pattern"
             : strncmp(why, "apply-to ", 9) == 0 ? "apply-to"
                                                 : "definition");
    problem(p, path, "%s", why);
}

/* "policies": checked, then kept with every policy's vhost filled in for
 * the server to apply at start-up. False only on ENOMEM. */
static bool parse_policies(problems_t *p, wr_config_t *cfg, const json_t *arr)
{
    json_t *copy, *obj;
    size_t i;

    if (!expect_type(p, "policies", arr, JSON_ARRAY, "an array"))
        return true;
    for (i = 0; i < json_array_size(arr); i++)
        check_policy(p, cfg, arr, i);
    copy = json_deep_copy(arr);
    if (copy == NULL)
        return false;
    json_array_foreach(copy, i, obj)
    {
        if (json_is_object(obj) && json_object_get(obj, "vhost") == NULL &&
            json_object_set_new(obj, "vhost", json_string(DEFAULT_VHOST)) != 0) {
            json_decref(copy);
            return false;
        }
    }
    json_decref(cfg->policies);
    cfg->policies = copy;
    return true;
}

/* ------------------------------------------------ security keys */

static bool security_key(const char *key)
{
    return strcmp(key, "tls_listeners") == 0 || strcmp(key, "tls") == 0 || strcmp(key, "permissions") == 0;
}

/* A non-empty string option into *out (replacing it). */
static bool set_option(problems_t *p, const char *path, const json_t *v, char **out)
{
    char *copy;

    if (!expect_type(p, path, v, JSON_STRING, "a string"))
        return true;
    if (json_string_length(v) == 0) {
        problem(p, path, "must not be empty");
        return true;
    }
    copy = strdup(json_string_value(v));
    if (!copy)
        return false;
    free(*out);
    *out = copy;
    return true;
}

/* One of two names for a setting; false (reported) for anything else. */
static bool get_choice(problems_t *p, const char *path, const json_t *v, const char *no, const char *yes,
                       bool *out)
{
    if (!expect_type(p, path, v, JSON_STRING, "a string"))
        return false;
    if (strcmp(json_string_value(v), no) != 0 && strcmp(json_string_value(v), yes) != 0) {
        problem(p, path, "expected '%s' or '%s', got '%s'", no, yes, json_string_value(v));
        return false;
    }
    *out = strcmp(json_string_value(v), yes) == 0;
    return true;
}

static bool parse_tls(problems_t *p, wr_tls_cfg_t *tls, const json_t *obj)
{
    const char *key;
    const json_t *v;

    if (!expect_type(p, "tls", obj, JSON_OBJECT, "an object"))
        return true;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[300];
        bool ok = true, b;

        snprintf(path, sizeof(path), "tls.%s", key);
        if (strcmp(key, "certfile") == 0) {
            ok = set_option(p, path, v, &tls->certfile);
        } else if (strcmp(key, "keyfile") == 0) {
            ok = set_option(p, path, v, &tls->keyfile);
        } else if (strcmp(key, "cacertfile") == 0) {
            ok = set_option(p, path, v, &tls->cacertfile);
        } else if (strcmp(key, "ciphers") == 0) {
            ok = set_option(p, path, v, &tls->ciphers);
        } else if (strcmp(key, "verify") == 0) {
            if (get_choice(p, path, v, "verify_none", "verify_peer", &b))
                tls->verify_peer = b;
        } else if (strcmp(key, "min_version") == 0) {
            if (get_choice(p, path, v, "tlsv1.2", "tlsv1.3", &b))
                tls->min_version = b ? TLS_V1_3 : TLS_V1_2;
        } else if (strcmp(key, "fail_if_no_peer_cert") == 0) {
            if (json_is_boolean(v))
                tls->fail_if_no_peer_cert = json_is_true(v);
            else
                problem(p, path, "expected a boolean, got %s", json_kind(v));
        } else {
            problem(p, path, "unknown key");
        }
        if (!ok)
            return false;
    }
    return true;
}

/* tls_listeners and tls; permissions wait for finish_security, which runs
 * once the users they name are known. */
static bool parse_security(problems_t *p, wr_config_t *cfg, const char *key, const json_t *v)
{
    if (strcmp(key, "tls_listeners") == 0)
        return parse_listeners(p, key, v, &cfg->tls_listeners, &cfg->ntls_listeners);
    if (strcmp(key, "tls") == 0)
        return parse_tls(p, &cfg->tls, v);
    return true;
}

/* "permissions": [{"user", "vhost", "configure", "write", "read"}], the
 * shape of RabbitMQ's definitions. */
static bool parse_permissions(problems_t *p, wr_config_t *cfg, const json_t *arr)
{
    static const char *const fields[] = {"user", "vhost", "configure", "write", "read"};
    size_t i;
    const json_t *item;

    if (!expect_type(p, "permissions", arr, JSON_ARRAY, "an array"))
        return true;
    json_array_foreach(arr, i, item)
    {
        const char *value[5] = {NULL};
        char path[320];
        bool ok = true;
        const char *key;
        const json_t *v;

        snprintf(path, sizeof(path), "permissions[%zu]", i);
        if (!expect_type(p, path, item, JSON_OBJECT, "an object"))
            continue;
        json_object_foreach((json_t *)item, key, v)
        {
            size_t f = 0;

            snprintf(path, sizeof(path), "permissions[%zu].%s", i, key);
            while (f < 5 && strcmp(key, fields[f]) != 0)
                f++;
            if (f == 5) {
                problem(p, path, "unknown key");
                ok = false;
            } else if (f < 2) {
                value[f] = get_name(p, path, v);
                ok = value[f] && ok;
            } else if (expect_type(p, path, v, JSON_STRING, "a string")) {
                value[f] = json_string_value(v);
            } else {
                ok = false;
            }
        }
        snprintf(path, sizeof(path), "permissions[%zu]", i);
        for (size_t f = 0; f < 5; f++) {
            if (!json_object_get(item, fields[f])) {
                problem(p, path, "missing key '%s'", fields[f]);
                ok = false;
            }
        }
        if (!ok)
            continue;
        if (!wr_users_find(&cfg->auth, value[0], strlen(value[0]))) {
            problem(p, path, "unknown user '%s'", value[0]);
        } else if (!contains(cfg->vhosts, cfg->nvhosts, value[1])) {
            problem(p, path, "unknown vhost '%s' (not listed in vhosts)", value[1]);
        } else if (wr_users_permission(&cfg->auth, value[0], value[1], strlen(value[1]))) {
            problem(p, path, "duplicate permissions for user '%s' in vhost '%s'", value[0], value[1]);
        } else if (!push_permission(p, path, cfg, value[0], value[1], value + 2, false)) {
            return false;
        }
    }
    return true;
}

/* The checks that need the whole file: permissions (after users and vhosts),
 * the users' implicit permissions, and a usable TLS setup. */
static bool finish_security(problems_t *p, wr_config_t *cfg, const json_t *permissions)
{
    const wr_tls_cfg_t *tls = &cfg->tls;

    drop_permissions(cfg, true);
    if (permissions && !parse_permissions(p, cfg, permissions))
        return false;
    if (!implicit_permissions(p, cfg))
        return false;
    if (cfg->ntls_listeners > 0 && (!tls->certfile || !tls->keyfile))
        problem(p, "tls_listeners", "TLS listeners need tls.certfile and tls.keyfile");
    if (cfg->management_tls && (!tls->certfile || !tls->keyfile))
        problem(p, "management.tls", "HTTPS needs tls.certfile and tls.keyfile");
    if (tls->verify_peer && !tls->cacertfile)
        problem(p, "tls.verify", "verify_peer needs tls.cacertfile");
    if (tls->fail_if_no_peer_cert && !tls->verify_peer)
        problem(p, "tls.fail_if_no_peer_cert", "needs tls.verify set to verify_peer");
    if (cfg->cluster && cfg->cluster->tls && (!tls->certfile || !tls->keyfile || !tls->cacertfile))
        problem(p, "cluster.tls", "TLS on peer links needs tls.certfile, tls.keyfile and tls.cacertfile");
    for (size_t i = 0; i < cfg->ntls_listeners; i++) {
        const wr_listener_cfg_t *l = &cfg->tls_listeners[i];

        for (size_t j = 0; j < cfg->nlisteners; j++) {
            if (cfg->listeners[j].port == l->port && strcmp(cfg->listeners[j].address, l->address) == 0)
                problem(p, "tls_listeners", "port %u on %s is already used by listeners[%zu]", l->port,
                        l->address, j);
        }
    }
    return true;
}

static void cluster_problem(void *ctx, const char *path, const char *reason)
{
    problem(ctx, path, "%s", reason);
}

/* Fills cfg from root; false only on ENOMEM. */
static bool parse_root(problems_t *p, wr_config_t *cfg, const json_t *root)
{
    const json_t *vhosts = json_object_get(root, "vhosts");
    const char *key;
    const json_t *v;

    /* vhosts first: users are checked against it wherever it appears. */
    if (vhosts && !parse_names(p, "vhosts", vhosts, "vhost", &cfg->vhosts, &cfg->nvhosts))
        return false;
    json_object_foreach((json_t *)root, key, v)
    {
        bool ok = true;

        if (strcmp(key, "vhosts") == 0)
            continue;
        if (strcmp(key, "listeners") == 0)
            ok = parse_listeners(p, key, v, &cfg->listeners, &cfg->nlisteners);
        else if (strcmp(key, "limits") == 0)
            ok = parse_limits(p, cfg, v);
        else if (strcmp(key, "users") == 0)
            ok = parse_users(p, cfg, v);
        else if (strcmp(key, "loopback_users") == 0)
            ok = parse_names(p, "loopback_users", v, "user", &cfg->auth.loopback_users,
                             &cfg->auth.nloopback_users);
        else if (strcmp(key, "log") == 0)
            ok = parse_log(p, cfg, v);
        else if (ops_key(key))
            ok = parse_ops(p, cfg, key, v);
        else if (storage_key(key))
            ok = parse_storage(p, cfg, key, v);
        else if (security_key(key))
            ok = parse_security(p, cfg, key, v);
        else if (alarm_key(key))
            parse_alarm(p, cfg, key, v);
        else if (strcmp(key, "policies") == 0)
            ok = parse_policies(p, cfg, v);
        else if (strcmp(key, "cluster") == 0)
            ok = wr_cluster_config_parse(v, cluster_problem, p, &cfg->cluster) != WR_ENOMEM;
        else
            problem(p, key, "unknown key");
        if (!ok)
            return false;
    }
    /* The default user's vhost must still exist if the file changed vhosts. */
    if (vhosts && !json_object_get(root, "users")) {
        for (size_t j = 0; j < cfg->auth.users[0].nvhosts; j++) {
            if (!contains(cfg->vhosts, cfg->nvhosts, cfg->auth.users[0].vhosts[j]))
                problem(p, "vhosts", "the default user '%s' needs vhost '%s'", cfg->auth.users[0].name,
                        cfg->auth.users[0].vhosts[j]);
        }
    }
    check_ports(p, cfg);
    return finish_security(p, cfg, json_object_get(root, "permissions"));
}

wr_config_t *wr_config_load(const char *path, char *err, size_t errlen)
{
    problems_t p = {path, err, errlen, 0, 0};
    wr_config_t *cfg = NULL;
    json_error_t jerr;
    json_t *root;

    if (errlen > 0)
        err[0] = '\0';
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_cannot_open_file)
            snprintf(err, errlen, "%s: %s", path, jerr.text);
        else
            snprintf(err, errlen, "%s: line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: expected an object at the top level, got %s", path, json_kind(root));
        goto err;
    }
    cfg = wr_config_new_default();
    if (!cfg || !parse_root(&p, cfg, root)) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto err;
    }
    if (p.count > 0)
        goto err;
    json_decref(root);
    return cfg;
err:
    wr_config_free(cfg);
    json_decref(root);
    return NULL;
}
