/* SPDX-License-Identifier: MIT */
/*
 * Policies (see policy.h): validation with RabbitMQ's rules and reasons, the
 * store (one array sorted by vhost then name: there are few policies, and a
 * match scans those of one vhost) and matching by priority.
 */
#include "broker/vhost/policy.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "broker/base/pattern.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"

struct wr_policies_s {
    const wr_map_t *vhosts; /* name -> wr_vhost_t, the server's */
    wr_policy_t **items;    /* sorted by vhost, then name */
    size_t n;
    size_t cap;
};

/* The keys warren implements, RabbitMQ's minimum for each integer, and the
 * words of RabbitMQ's reason for a bad value. */
static const struct {
    const char *key;
    size_t offset;
    json_int_t min;
    const char *what;
} ints[] = {
    {"message-ttl", offsetof(wr_policy_t, message_ttl), 0, "message TTL"},
    {"expires", offsetof(wr_policy_t, expires), 1, "queue expiry"},
    {"max-length", offsetof(wr_policy_t, max_length), 0, "maximum length"},
    {"max-length-bytes", offsetof(wr_policy_t, max_length_bytes), 0, "maximum length in bytes"},
    {"delivery-limit", offsetof(wr_policy_t, delivery_limit), 0, "delivery limit"},
    {"consumer-timeout", offsetof(wr_policy_t, consumer_timeout), 0, "consumer timeout"},
};
static const struct {
    const char *key;
    size_t offset;
    const char *what;
} strings[] = {
    {"dead-letter-exchange", offsetof(wr_policy_t, dead_letter_exchange), "dead letter exchange name"},
    {"dead-letter-routing-key", offsetof(wr_policy_t, dead_letter_routing_key), "dead letter routing key"},
    {"alternate-exchange", offsetof(wr_policy_t, alternate_exchange), "alternate exchange name"},
};
/* The keys whose value is one of a few words: the words in the order of
 * the field's enum (wr_overflow_t, wr_dl_strategy_t). */
static const char *const overflows[] = {"drop-head", "reject-publish", "reject-publish-dlx", NULL};
static const char *const strategies[] = {"at-most-once", "at-least-once", NULL};
static const struct {
    const char *key;
    size_t offset;
    const char *const *words;
    const char *what;
} enums[] = {
    {"overflow", offsetof(wr_policy_t, overflow), overflows, "overflow value"},
    {"dead-letter-strategy", offsetof(wr_policy_t, dead_letter_strategy), strategies, "dead letter strategy"},
};

/* Keys RabbitMQ accepts for features warren does not have (mirroring, lazy
 * queues, quorum queues, streams, federation): accepted, so that RabbitMQ's
 * definitions import, and ignored with a warning. */
static const char *const ignored_keys[] = {
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "queue-mode",
    "queue-version",
    "queue-master-locator",
    "queue-leader-locator",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "max-age",
    "initial-cluster-size",
    "stream-max-segment-size-bytes",
    "federation-upstream",
    "federation-upstream-set",
};

wr_policies_t *wr_policies_new(const wr_map_t *vhosts)
{
    wr_policies_t *ps = calloc(1, sizeof(*ps));

    if (ps != NULL)
        ps->vhosts = vhosts;
    return ps;
}

static void policy_free(wr_policy_t *p)
{
    if (p == NULL)
        return;
    free(p->vhost);
    free(p->name);
    if (p->pattern != NULL)
        regfree(&p->re);
    free(p->pattern);
    json_decref(p->definition);
    free(p->dead_letter_exchange);
    free(p->dead_letter_routing_key);
    free(p->alternate_exchange);
    free(p);
}

void wr_policies_free(wr_policies_t *ps)
{
    if (ps == NULL)
        return;
    for (size_t i = 0; i < ps->n; i++)
        policy_free(ps->items[i]);
    free(ps->items);
    free(ps);
}

/* ---------------------------------------------------------------- validation */

/* Appends to buf (at *len, bounded by cap) what Erlang's ~p shows for the
 * value RabbitMQ decodes from v: binaries for strings, maps for objects. */
static void erl_term(char *buf, size_t cap, size_t *len, const json_t *v);

static void erl_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void erl_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*len >= cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap;
}

static void erl_binary(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    erl_add(buf, cap, len, "<<\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            erl_add(buf, cap, len, "\\%c", s[i]);
        else
            erl_add(buf, cap, len, "%c", s[i]);
    }
    erl_add(buf, cap, len, "\">>");
}

/* Erlang's shortest form of a float: 1.5, 1.0, 0.1, 1.0e20, 2.5e-7. */
static void erl_float(char *buf, size_t cap, size_t *len, double x)
{
    char digits[40], *e;
    int prec = 1;

    do
        snprintf(digits, sizeof(digits), "%.*g", prec, x);
    while (strtod(digits, NULL) != x && ++prec < 17);
    e = strchr(digits, 'e');
    if (e != NULL)
        *e = '\0';
    erl_add(buf, cap, len, "%s%s", digits, strchr(digits, '.') != NULL ? "" : ".0");
    if (e != NULL)
        erl_add(buf, cap, len, "e%d", atoi(e + 1));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's keys, sorted as Erlang orders the binaries of a map; NULL on
 * ENOMEM (or when empty). */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    const char **keys = malloc(json_object_size(obj) * sizeof(*keys) + 1);
    const char *k;
    const json_t *v;

    *n = 0;
    if (keys == NULL)
        return NULL;
    json_object_foreach((json_t *)obj, k, v) keys[(*n)++] = k;
    qsort(keys, *n, sizeof(*keys), cmp_str);
    return keys;
}

static void erl_term(char *buf, size_t cap, size_t *len, const json_t *v)
{
    size_t i, n;
    const json_t *e;
    const char **keys;

    switch (json_typeof(v)) {
    case JSON_STRING:
        erl_binary(buf, cap, len, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        erl_add(buf, cap, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        erl_float(buf, cap, len, json_real_value(v));
        break;
    case JSON_TRUE:
        erl_add(buf, cap, len, "true");
        break;
    case JSON_FALSE:
        erl_add(buf, cap, len, "false");
        break;
    case JSON_NULL:
        erl_add(buf, cap, len, "null");
        break;
    case JSON_ARRAY:
        erl_add(buf, cap, len, "[");
        json_array_foreach(v, i, e)
        {
            if (i > 0)
                erl_add(buf, cap, len, ",");
            erl_term(buf, cap, len, e);
        }
        erl_add(buf, cap, len, "]");
        break;
    case JSON_OBJECT:
        keys = sorted_keys(v, &n);
        erl_add(buf, cap, len, "#{");
        for (i = 0; keys != NULL && i < n; i++) {
            if (i > 0)
                erl_add(buf, cap, len, ",");
            erl_binary(buf, cap, len, keys[i], strlen(keys[i]));
            erl_add(buf, cap, len, " => ");
            erl_term(buf, cap, len, json_object_get(v, keys[i]));
        }
        erl_add(buf, cap, len, "}");
        free(keys);
        break;
    }
}

/* "<value> is not a valid <what>", as RabbitMQ words a bad definition value. */
static int bad_value(char *err, size_t errlen, const json_t *v, const char *what)
{
    size_t len = 0;

    erl_term(err, errlen, &len, v);
    erl_add(err, errlen, &len, " is not a valid %s", what);
    return WR_ESYNTAX;
}

static bool ignored_key(const char *key)
{
    for (size_t i = 0; i < sizeof(ignored_keys) / sizeof(ignored_keys[0]); i++) {
        if (strcmp(key, ignored_keys[i]) == 0)
            return true;
    }
    return false;
}

/* Neither implemented nor ignored: RabbitMQ does not know it either. */
static bool unknown_key(const char *key)
{
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(key, ints[i].key) == 0)
            return false;
    }
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (strcmp(key, strings[i].key) == 0)
            return false;
    }
    for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
        if (strcmp(key, enums[i].key) == 0)
            return false;
    }
    return !ignored_key(key);
}

/* One of the words of enums[e]: its index into *field. */
static int parse_enum(wr_policy_t *p, size_t e, const json_t *v, char *err, size_t errlen)
{
    for (size_t i = 0; json_is_string(v) && enums[e].words[i] != NULL; i++) {
        if (strcmp(json_string_value(v), enums[e].words[i]) == 0) {
            *(int *)((char *)p + enums[e].offset) = (int)i;
            return WR_OK;
        }
    }
    return bad_value(err, errlen, v, enums[e].what);
}

/* An integer key: *out set when v is an integer >= min. */
static bool int_at_least(const json_t *v, json_int_t min, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* One key warren implements into p. WR_ESYNTAX (err set) when the value
 * is wrong, WR_ENOMEM. */
static int parse_key(wr_policy_t *p, const char *key, const json_t *v, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(key, ints[i].key) != 0)
            continue;
        if (!int_at_least(v, ints[i].min, (int64_t *)((char *)p + ints[i].offset)))
            return bad_value(err, errlen, v, ints[i].what);
        return WR_OK;
    }
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        char **slot = (char **)((char *)p + strings[i].offset);

        if (strcmp(key, strings[i].key) != 0)
            continue;
        if (!json_is_string(v))
            return bad_value(err, errlen, v, strings[i].what);
        *slot = strdup(json_string_value(v));
        return *slot != NULL ? WR_OK : WR_ENOMEM;
    }
    /* What is left is one of enums. */
    for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
        if (strcmp(key, enums[i].key) == 0)
            return parse_enum(p, i, v, err, errlen);
    }
    return WR_OK;
}

/*
 * The definition into p's parsed fields, keys in Erlang's order (RabbitMQ
 * reports the first bad value in that order). Unknown keys are reported all
 * together, as RabbitMQ does, once the known ones are valid.
 */
static int parse_definition(wr_policy_t *p, const json_t *def, char *err, size_t errlen)
{
    const char **keys;
    size_t n, len = 0, unknown = 0;
    int rc = WR_OK;

    if (!json_is_object(def)) {
        erl_add(err, errlen, &len, "definition must be a dictionary: ");
        erl_term(err, errlen, &len, def);
        return WR_ESYNTAX;
    }
    if (json_object_size(def) == 0) {
        snprintf(err, errlen, "no policy provided");
        return WR_ESYNTAX;
    }
    keys = sorted_keys(def, &n);
    if (keys == NULL)
        return WR_ENOMEM;
    for (size_t i = 0; i < n && rc == WR_OK; i++) {
        if (unknown_key(keys[i]))
            unknown++;
        else if (!ignored_key(keys[i]))
            rc = parse_key(p, keys[i], json_object_get(def, keys[i]), err, errlen);
    }
    if (rc == WR_OK && unknown > 0) {
        erl_add(err, errlen, &len, "[");
        for (size_t i = 0, shown = 0; i < n; i++) {
            if (!unknown_key(keys[i]))
                continue;
            erl_add(err, errlen, &len, "%s{", shown++ > 0 ? "," : "");
            erl_binary(err, errlen, &len, keys[i], strlen(keys[i]));
            erl_add(err, errlen, &len, ",");
            erl_term(err, errlen, &len, json_object_get(def, keys[i]));
            erl_add(err, errlen, &len, "}");
        }
        erl_add(err, errlen, &len, "] are not recognised policy settings");
        rc = WR_ESYNTAX;
    }
    free(keys);
    return rc;
}

/* A new policy from the arguments, validated; NULL with rc and err set. */
static wr_policy_t *policy_parse(const char *pattern, const char *apply_to, const json_t *definition,
                                 char *err, size_t errlen, int *rc)
{
    wr_policy_t *p = calloc(1, sizeof(*p));
    int bad;

    *rc = WR_ENOMEM;
    if (p == NULL)
        return NULL;
    p->message_ttl = p->expires = p->max_length = p->max_length_bytes = p->delivery_limit = -1;
    p->consumer_timeout = -1;
    p->overflow = p->dead_letter_strategy = -1;
    if (apply_to == NULL || strcmp(apply_to, "all") == 0) {
        p->apply_to = WR_APPLY_ALL;
    } else if (strcmp(apply_to, "queues") == 0) {
        p->apply_to = WR_APPLY_QUEUES;
    } else if (strcmp(apply_to, "exchanges") == 0) {
        p->apply_to = WR_APPLY_EXCHANGES;
    } else {
        snprintf(err, errlen, "apply-to '%s' unrecognised; should be 'queues', 'exchanges' or 'all'",
                 apply_to);
        *rc = WR_ESYNTAX;
        goto err;
    }
    if (!wr_pattern_ok(pattern, err, errlen)) {
        *rc = WR_ESYNTAX;
        goto err;
    }
    bad = regcomp(&p->re, pattern, REG_EXTENDED | REG_NOSUB);
    if (bad != 0) {
        char why[160];

        regerror(bad, &p->re, why, sizeof(why));
        snprintf(err, errlen, "pattern should be regular expression but is invalid: %s", why);
        *rc = WR_ESYNTAX;
        goto err;
    }
    if ((p->pattern = strdup(pattern)) == NULL) {
        regfree(&p->re);
        goto err;
    }
    *rc = parse_definition(p, definition, err, errlen);
    if (*rc != WR_OK)
        goto err;
    p->definition = json_deep_copy(definition);
    if (p->definition == NULL) {
        *rc = WR_ENOMEM;
        goto err;
    }
    return p;
err:
    if (*rc == WR_ENOMEM)
        snprintf(err, errlen, "out of memory");
    policy_free(p);
    return NULL;
}

int wr_policy_validate(const char *pattern, const char *apply_to, const json_t *definition, char *err,
                       size_t errlen)
{
    int rc;

    policy_free(policy_parse(pattern, apply_to, definition, err, errlen, &rc));
    return rc;
}

/* ---------------------------------------------------------------- store */

static int cmp_key(const wr_policy_t *p, const char *vhost, const char *name)
{
    int c = strcmp(p->vhost, vhost);

    return c != 0 ? c : strcmp(p->name, name);
}

/* The index of (vhost, name), or where it would go; *found says which. */
static size_t find(const wr_policies_t *ps, const char *vhost, const char *name, bool *found)
{
    size_t lo = 0, hi = ps->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(ps->items[mid], vhost, name);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static wr_vhost_t *vhost_of(const wr_policies_t *ps, const char *name)
{
    return wr_map_get(ps->vhosts, wr_bytes_str(name));
}

static void warn_ignored(const wr_policy_t *p)
{
    const char *k;
    const json_t *v;

    json_object_foreach(p->definition, k, v)
    {
        if (ignored_key(k))
            wr_log_warn("policy '%s' in vhost '%s': warren does not implement '%s'; ignored", p->name,
                        p->vhost, k);
    }
}

int wr_policy_put(wr_policies_t *ps, const char *vhost, const char *name, const char *pattern,
                  const char *apply_to, int64_t priority, const json_t *definition, char *err, size_t errlen)
{
    wr_vhost_t *vh = vhost_of(ps, vhost);
    wr_policy_t *p;
    size_t at;
    bool found;
    int rc;

    if (vh == NULL) {
        snprintf(err, errlen, "no_such_vhost: %s", vhost);
        return WR_ENOENT;
    }
    p = policy_parse(pattern, apply_to, definition, err, errlen, &rc);
    if (p == NULL)
        return rc;
    p->priority = priority;
    p->vhost = strdup(vhost);
    p->name = strdup(name);
    at = find(ps, vhost, name, &found);
    if (p->vhost == NULL || p->name == NULL)
        goto nomem;
    if (found) {
        policy_free(ps->items[at]);
    } else {
        if (ps->n == ps->cap) {
            size_t cap = ps->cap ? 2 * ps->cap : 8;
            wr_policy_t **grown = realloc(ps->items, cap * sizeof(*grown));

            if (grown == NULL)
                goto nomem;
            ps->items = grown;
            ps->cap = cap;
        }
        memmove(ps->items + at + 1, ps->items + at, (ps->n - at) * sizeof(*ps->items));
        ps->n++;
    }
    ps->items[at] = p;
    warn_ignored(p);
    wr_vhost_apply_policies(vh);
    return WR_OK;
nomem:
    snprintf(err, errlen, "out of memory");
    policy_free(p);
    return WR_ENOMEM;
}

int wr_policy_put_json(wr_policies_t *ps, const char *vhost, const json_t *obj, char *err, size_t errlen)
{
    const json_t *name = json_object_get(obj, "name"), *pattern = json_object_get(obj, "pattern");
    const json_t *apply = json_object_get(obj, "apply-to"), *prio = json_object_get(obj, "priority");
    const json_t *def = json_object_get(obj, "definition");
    const char *bad = NULL;

    if (vhost == NULL && !json_is_string(json_object_get(obj, "vhost")))
        bad = "vhost";
    else if (!json_is_string(name))
        bad = "name";
    else if (!json_is_string(pattern))
        bad = "pattern";
    else if (apply != NULL && !json_is_string(apply))
        bad = "apply-to";
    else if (prio != NULL && !json_is_integer(prio))
        bad = "priority";
    else if (!json_is_object(def))
        bad = "definition";
    if (bad != NULL) {
        snprintf(err, errlen, "%s: %s", bad,
                 strcmp(bad, "priority") == 0     ? "must be an integer"
                 : strcmp(bad, "definition") == 0 ? "must be an object"
                                                  : "must be a string");
        return WR_ESYNTAX;
    }
    return wr_policy_put(ps, vhost != NULL ? vhost : json_string_value(json_object_get(obj, "vhost")),
                         json_string_value(name), json_string_value(pattern), json_string_value(apply),
                         prio != NULL ? json_integer_value(prio) : 0, def, err, errlen);
}

int wr_policy_delete(wr_policies_t *ps, const char *vhost, const char *name)
{
    bool found;
    size_t at = find(ps, vhost, name, &found);
    wr_vhost_t *vh;

    if (!found)
        return WR_ENOENT;
    policy_free(ps->items[at]);
    memmove(ps->items + at, ps->items + at + 1, (ps->n - at - 1) * sizeof(*ps->items));
    ps->n--;
    vh = vhost_of(ps, vhost);
    if (vh != NULL)
        wr_vhost_apply_policies(vh);
    return WR_OK;
}

const wr_policy_t *wr_policy_get(wr_policies_t *ps, const char *vhost, const char *name)
{
    bool found;
    size_t at = find(ps, vhost, name, &found);

    return found ? ps->items[at] : NULL;
}

void wr_policy_foreach(wr_policies_t *ps, const char *vhost, void (*fn)(void *ud, const wr_policy_t *p),
                       void *ud)
{

    for (size_t i = 0; i < ps->n; i++) {
        if (vhost == NULL || strcmp(ps->items[i]->vhost, vhost) == 0)
            fn(ud, ps->items[i]);
    }
}

/*
 * Ties in priority: RabbitMQ keeps the order its parameter table lists them
 * in, which is not specified; here the name that sorts first wins, so the
 * outcome is the same on every run.
 */
const wr_policy_t *wr_policy_match(wr_policies_t *ps, const char *vhost, wr_bytes_t name, bool is_queue)
{
    const wr_policy_t *best = NULL;
    bool found;

    for (size_t i = find(ps, vhost, "", &found); i < ps->n && strcmp(ps->items[i]->vhost, vhost) == 0; i++) {
        const wr_policy_t *p = ps->items[i];

        if (p->apply_to == (is_queue ? WR_APPLY_EXCHANGES : WR_APPLY_QUEUES))
            continue;
        if ((best == NULL || p->priority > best->priority) && wr_pattern_matches(&p->re, name))
            best = p;
    }
    return best;
}

json_t *wr_policy_to_json(const wr_policy_t *p)
{
    static const char *const apply[] = {"queues", "exchanges", "all"};

    return json_pack("{s:s,s:s,s:s,s:s,s:O,s:I}", "vhost", p->vhost, "name", p->name, "pattern", p->pattern,
                     "apply-to", apply[p->apply_to], "definition", p->definition, "priority",
                     (json_int_t)p->priority);
}
