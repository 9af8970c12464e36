/* SPDX-License-Identifier: MIT */
/*
 * The JSON configuration file (jansson). Loading starts from the defaults and
 * replaces whatever the file names; every problem (unknown key, wrong type,
 * value out of range, inconsistency) is collected, so one run of warrend shows
 * all of them as "FILE: key.path: reason" lines instead of one per attempt.
 */
#include "broker/config.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log.h"

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
/* Names travel as AMQP shortstrs. */
#define MAX_NAME_LEN 255

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

static bool push_user(wr_config_t *cfg, const char *name, const char *password, char **vhosts, size_t nvhosts)
{
    wr_user_cfg_t *grown = realloc(cfg->users, (cfg->nusers + 1) * sizeof(*cfg->users));
    wr_user_cfg_t *u;

    if (!grown)
        return false;
    cfg->users = grown;
    u = &grown[cfg->nusers];
    u->name = strdup(name);
    u->password = strdup(password);
    u->vhosts = vhosts;
    u->nvhosts = nvhosts;
    if (!u->name || !u->password) {
        free(u->name);
        free(u->password);
        return false;
    }
    cfg->nusers++;
    return true;
}

static bool push_listener(wr_config_t *cfg, const char *address, uint16_t port)
{
    wr_listener_cfg_t *grown = realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*cfg->listeners));
    char *copy;

    if (!grown)
        return false;
    cfg->listeners = grown;
    copy = strdup(address);
    if (!copy)
        return false;
    grown[cfg->nlisteners].address = copy;
    grown[cfg->nlisteners].port = port;
    cfg->nlisteners++;
    return true;
}

static void clear_users(wr_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nusers; i++) {
        free(cfg->users[i].name);
        free(cfg->users[i].password);
        free_strings(cfg->users[i].vhosts, cfg->users[i].nvhosts);
    }
    free(cfg->users);
    cfg->users = NULL;
    cfg->nusers = 0;
}

static void clear_listeners(wr_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        free(cfg->listeners[i].address);
    free(cfg->listeners);
    cfg->listeners = NULL;
    cfg->nlisteners = 0;
}

void wr_config_free(wr_config_t *cfg)
{
    if (!cfg)
        return;
    clear_listeners(cfg);
    clear_users(cfg);
    free_strings(cfg->loopback_users, cfg->nloopback_users);
    free_strings(cfg->vhosts, cfg->nvhosts);
    free(cfg);
}

wr_config_t *wr_config_new_default(void)
{
    wr_config_t *cfg = calloc(1, sizeof(*cfg));
    char **user_vhosts = NULL;
    size_t nuser_vhosts = 0;

    if (!cfg)
        return NULL;
    cfg->frame_max = DEFAULT_FRAME_MAX;
    cfg->channel_max = DEFAULT_CHANNEL_MAX;
    cfg->heartbeat = DEFAULT_HEARTBEAT;
    cfg->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    cfg->log_level = WR_LOG_INFO;
    if (!push_listener(cfg, DEFAULT_ADDRESS, DEFAULT_PORT) ||
        !push_string(&user_vhosts, &nuser_vhosts, DEFAULT_VHOST))
        goto err;
    if (!push_user(cfg, DEFAULT_USER, DEFAULT_USER, user_vhosts, nuser_vhosts))
        goto err;
    user_vhosts = NULL;
    if (!push_string(&cfg->loopback_users, &cfg->nloopback_users, DEFAULT_USER) ||
        !push_string(&cfg->vhosts, &cfg->nvhosts, DEFAULT_VHOST))
        goto err;
    return cfg;
err:
    free_strings(user_vhosts, nuser_vhosts);
    wr_config_free(cfg);
    return NULL;
}

/* The parse_* functions report problems and return false only on ENOMEM. */

static bool parse_listeners(problems_t *p, wr_config_t *cfg, const json_t *arr)
{
    char path[64];
    size_t i;
    const json_t *item;

    if (!expect_type(p, "listeners", arr, JSON_ARRAY, "an array"))
        return true;
    clear_listeners(cfg);
    if (json_array_size(arr) == 0)
        problem(p, "listeners", "must name at least one listener");
    json_array_foreach(arr, i, item)
    {
        const char *address = DEFAULT_ADDRESS;
        long long port = DEFAULT_PORT;
        bool ok = true;
        const char *key;
        const json_t *v;

        snprintf(path, sizeof(path), "listeners[%zu]", i);
        if (!expect_type(p, path, item, JSON_OBJECT, "an object"))
            continue;
        json_object_foreach((json_t *)item, key, v)
        {
            snprintf(path, sizeof(path), "listeners[%zu].%s", i, key);
            if (strcmp(key, "address") == 0) {
                struct in6_addr a;

                if (!expect_type(p, path, v, JSON_STRING, "a string")) {
                    ok = false;
                    continue;
                }
                address = json_string_value(v);
                if (inet_pton(AF_INET, address, &a) != 1 && inet_pton(AF_INET6, address, &a) != 1) {
                    problem(p, path, "not an IPv4 or IPv6 address: '%s'", address);
                    ok = false;
                }
            } else if (strcmp(key, "port") == 0) {
                ok = get_int(p, path, v, 1, 65535, &port) && ok;
            } else {
                problem(p, path, "unknown key");
            }
        }
        if (ok && !push_listener(cfg, address, (uint16_t)port))
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
        } else {
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

static bool parse_user(problems_t *p, wr_config_t *cfg, const json_t *users, size_t i, const json_t *obj)
{
    char path[300];
    const char *name = NULL, *password = NULL;
    char **vhosts = NULL;
    size_t nvhosts = 0;
    bool ok = true;
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        snprintf(path, sizeof(path), "users[%zu].%s", i, key);
        if (strcmp(key, "name") == 0) {
            name = get_name(p, path, v);
            ok = name && ok;
            if (name && earlier_user(users, i, name)) {
                problem(p, path, "duplicate user '%s'", name);
                ok = false;
            }
        } else if (strcmp(key, "password") == 0) {
            ok = expect_type(p, path, v, JSON_STRING, "a string") && ok;
            password = json_string_value(v);
        } else if (strcmp(key, "vhosts") == 0) {
            size_t before = (size_t)p->count;

            if (!parse_names(p, path, v, "vhost", &vhosts, &nvhosts))
                goto err;
            ok = (size_t)p->count == before && ok;
            for (size_t j = 0; j < nvhosts; j++) {
                if (!contains(cfg->vhosts, cfg->nvhosts, vhosts[j])) {
                    snprintf(path, sizeof(path), "users[%zu].vhosts[%zu]", i, j);
                    problem(p, path, "unknown vhost '%s' (not listed in vhosts)", vhosts[j]);
                    ok = false;
                }
            }
        } else {
            problem(p, path, "unknown key");
        }
    }
    snprintf(path, sizeof(path), "users[%zu]", i);
    if (!json_object_get(obj, "name")) {
        problem(p, path, "missing key 'name'");
        ok = false;
    }
    if (!json_object_get(obj, "password")) {
        problem(p, path, "missing key 'password'");
        ok = false;
    }
    if (ok) {
        if (!push_user(cfg, name, password, vhosts, nvhosts))
            goto err;
        return true;
    }
    free_strings(vhosts, nvhosts);
    return true;
err:
    free_strings(vhosts, nvhosts);
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

static void parse_log(problems_t *p, wr_config_t *cfg, const json_t *obj)
{
    const char *key;
    const json_t *v;

    if (!expect_type(p, "log", obj, JSON_OBJECT, "an object"))
        return;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[300];
        int level;

        snprintf(path, sizeof(path), "log.%s", key);
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
            ok = parse_listeners(p, cfg, v);
        else if (strcmp(key, "limits") == 0)
            ok = parse_limits(p, cfg, v);
        else if (strcmp(key, "users") == 0)
            ok = parse_users(p, cfg, v);
        else if (strcmp(key, "loopback_users") == 0)
            ok = parse_names(p, "loopback_users", v, "user", &cfg->loopback_users, &cfg->nloopback_users);
        else if (strcmp(key, "log") == 0)
            parse_log(p, cfg, v);
        else
            problem(p, key, "unknown key");
        if (!ok)
            return false;
    }
    /* The default user's vhost must still exist if the file changed vhosts. */
    if (vhosts && !json_object_get(root, "users")) {
        for (size_t j = 0; j < cfg->users[0].nvhosts; j++) {
            if (!contains(cfg->vhosts, cfg->nvhosts, cfg->users[0].vhosts[j]))
                problem(p, "vhosts", "the default user '%s' needs vhost '%s'", cfg->users[0].name,
                        cfg->users[0].vhosts[j]);
        }
    }
    return true;
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

const wr_user_cfg_t *wr_config_user(const wr_config_t *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->nusers; i++) {
        const wr_user_cfg_t *u = &cfg->users[i];

        if (strlen(u->name) == len && memcmp(u->name, name, len) == 0)
            return u;
    }
    return NULL;
}
