/* SPDX-License-Identifier: MIT */
/*
 * JSON conversions for the management API and definitions (mgmt_json.h).
 * Field tables go to JSON the way rabbit_mgmt_format shows them and come
 * back the way rabbit_mgmt_util reads arguments; message properties use one
 * table of fields for both directions.
 */
#include "broker/mgmt/mgmt_json.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"
#include "protocol/table.h"

/* ---------------------------------------------------------------- strings */

/* Whether b is UTF-8 as jansson accepts it. */
static bool is_utf8(wr_bytes_t b)
{
    json_t *probe;

    if (b.len == 0)
        return true;
    probe = json_stringn((const char *)b.data, b.len);
    json_decref(probe);
    return probe != NULL;
}

/* b with each byte read as a Latin-1 character, as UTF-8: malloc'd,
 * NUL-terminated, *len bytes; NULL on ENOMEM. */
static char *latin1(wr_bytes_t b, size_t *len)
{
    char *out = malloc(2 * b.len + 1);
    size_t n = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < b.len; i++) {
        uint8_t c = b.data[i];

        if (c < 0x80) {
            out[n++] = (char)c;
        } else {
            out[n++] = (char)(0xc0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[n] = '\0';
    *len = n;
    return out;
}

json_t *wr_mgmt_json_bytes(wr_bytes_t b)
{
    json_t *j;
    size_t len;
    char *s;

    if (b.len == 0)
        return json_string("");
    j = json_stringn((const char *)b.data, b.len);
    if (j)
        return j;
    s = latin1(b, &len);
    if (!s)
        return NULL;
    j = json_stringn(s, len);
    free(s);
    return j;
}

/* ---------------------------------------------------------------- base64 */

json_t *wr_mgmt_json_base64(wr_bytes_t b)
{
    char *enc = malloc(wr_base64_encoded_len(b.len) + 1);
    json_t *s = NULL;

    if (enc != NULL) {
        wr_base64_encode(b.data, b.len, enc);
        s = json_stringn(enc, wr_base64_encoded_len(b.len));
    }
    free(enc);
    return s;
}

const char *wr_mgmt_json_hash_alg_name(wr_hash_alg_t alg)
{
    switch (alg) {
    case WR_HASH_SHA512:
        return "rabbit_password_hashing_sha512";
    case WR_HASH_MD5:
        return "rabbit_password_hashing_md5";
    case WR_HASH_SHA256:
        break;
    }
    return "rabbit_password_hashing_sha256";
}

bool wr_mgmt_json_set_payload(json_t *obj, wr_bytes_t body, bool force_base64)
{
    if (!force_base64 && is_utf8(body))
        return json_object_set_new(obj, "payload", wr_mgmt_json_bytes(body)) == 0 &&
               json_object_set_new(obj, "payload_encoding", json_string("string")) == 0;
    return json_object_set_new(obj, "payload", wr_mgmt_json_base64(body)) == 0 &&
           json_object_set_new(obj, "payload_encoding", json_string("base64")) == 0;
}

/* ---------------------------------------------------------------- tables to JSON */

static json_t *table_json(wr_bytes_t raw);

static json_t *array_json(wr_bytes_t raw);

static json_t *number_json(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *decimal_json(uint32_t value, uint8_t scale)
{
    double d = value;

    for (uint8_t i = 0; i < scale; i++)
        d /= 10;
    return json_real(d);
}

static json_t *value_json(const wr_value_t *v)
{
    switch (v->type) {
    case 't':
        return json_boolean(v->v.b);
    case 'f':
        return number_json(v->v.f);
    case 'd':
        return number_json(v->v.d);
    case 'D':
        return decimal_json(v->v.dec.value, v->v.dec.scale);
    case 'T':
        return json_integer((json_int_t)v->v.ts);
    case 'S':
    case 'x':
        return wr_mgmt_json_bytes(v->v.s);
    case 'F':
        return table_json(v->v.s);
    case 'A':
        return array_json(v->v.s);
    case 'V':
        return json_null();
    default:
        return json_integer(v->v.i); /* the integer tags */
    }
}

static json_t *table_json(wr_bytes_t raw)
{
    json_t *obj = json_object();
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;

    if (!obj)
        return NULL;
    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, &key, &v)) {
        size_t len = key.len;
        char *copy = is_utf8(key) ? NULL : latin1(key, &len);
        const char *k = copy ? copy : key.len ? (const char *)key.data : "";
        int rc = json_object_setn_new(obj, k, len, value_json(&v));

        free(copy);
        if (rc != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static json_t *array_json(wr_bytes_t raw)
{
    json_t *arr = json_array();
    wr_table_iter_t it;
    wr_value_t v;

    if (!arr)
        return NULL;
    wr_table_iter_init(&it, raw);
    while (wr_array_next(&it, &v)) {
        if (json_array_append_new(arr, value_json(&v)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *wr_mgmt_json_table(wr_bytes_t table)
{
    return table_json(table);
}

/* ---------------------------------------------------------------- JSON to tables */

static bool put_object(wr_buf_t *b, const json_t *obj, int depth, char *why, size_t n);

static bool put_value(wr_buf_t *b, const json_t *j, int depth, char *why, size_t n)
{
    wr_value_t v = {0};
    size_t mark, i;
    const json_t *item;

    if (depth > WR_TABLE_MAX_DEPTH) {
        snprintf(why, n, "arguments nested deeper than %d levels", WR_TABLE_MAX_DEPTH);
        return false;
    }
    switch (json_typeof(j)) {
    case JSON_STRING:
        v.type = 'S';
        v.v.s = (wr_bytes_t){(const uint8_t *)json_string_value(j), json_string_length(j)};
        break;
    case JSON_INTEGER:
        v.type = 'l';
        v.v.i = json_integer_value(j);
        break;
    case JSON_REAL:
        v.type = 'd';
        v.v.d = json_real_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.type = 't';
        v.v.b = json_is_true(j);
        break;
    case JSON_NULL:
        snprintf(why, n, "null_not_allowed"); /* RabbitMQ's reason */
        return false;
    case JSON_OBJECT:
        wr_buf_put_u8(b, 'F');
        return put_object(b, j, depth + 1, why, n);
    case JSON_ARRAY:
        wr_buf_put_u8(b, 'A');
        mark = wr_table_begin(b);
        json_array_foreach(j, i, item)
        {
            if (!put_value(b, item, depth + 1, why, n))
                return false;
        }
        wr_table_end(b, mark);
        return true;
    }
    wr_table_put_value(b, &v);
    return true;
}

static bool put_object(wr_buf_t *b, const json_t *obj, int depth, char *why, size_t n)
{
    size_t mark = wr_table_begin(b);
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (strlen(key) > 255) {
            snprintf(why, n, "argument name longer than 255 bytes: '%.40s...'", key);
            return false;
        }
        wr_table_put_key(b, key);
        if (!put_value(b, v, depth, why, n))
            return false;
    }
    wr_table_end(b, mark);
    return true;
}

bool wr_mgmt_json_to_table(const json_t *obj, wr_buf_t *out, wr_bytes_t *raw, char *why, size_t n)
{
    wr_buf_reset(out);
    *raw = (wr_bytes_t){NULL, 0};
    if (!obj || json_is_null(obj))
        return true;
    if (!json_is_object(obj)) {
        snprintf(why, n, "arguments must be an object");
        return false;
    }
    if (!put_object(out, obj, 1, why, n))
        return false;
    if (!wr_buf_ok(out)) {
        snprintf(why, n, "out of memory");
        return false;
    }
    /* Past the length prefix wr_table_begin wrote. */
    *raw = (wr_bytes_t){out->data + 4, out->len - 4};
    return true;
}

/* ---------------------------------------------------------------- properties */

typedef enum { P_STR, P_OCTET, P_U64, P_TABLE } prop_kind_t;

static const struct {
    const char *name;
    uint16_t flag;
    size_t offset;
    prop_kind_t kind;
} prop_fields[] = {
    {"content_type", WR_PROP_CONTENT_TYPE, offsetof(wr_props_t, content_type), P_STR},
    {"content_encoding", WR_PROP_CONTENT_ENCODING, offsetof(wr_props_t, content_encoding), P_STR},
    {"headers", WR_PROP_HEADERS, offsetof(wr_props_t, headers), P_TABLE},
    {"delivery_mode", WR_PROP_DELIVERY_MODE, offsetof(wr_props_t, delivery_mode), P_OCTET},
    {"priority", WR_PROP_PRIORITY, offsetof(wr_props_t, priority), P_OCTET},
    {"correlation_id", WR_PROP_CORRELATION_ID, offsetof(wr_props_t, correlation_id), P_STR},
    {"reply_to", WR_PROP_REPLY_TO, offsetof(wr_props_t, reply_to), P_STR},
    {"expiration", WR_PROP_EXPIRATION, offsetof(wr_props_t, expiration), P_STR},
    {"message_id", WR_PROP_MESSAGE_ID, offsetof(wr_props_t, message_id), P_STR},
    {"timestamp", WR_PROP_TIMESTAMP, offsetof(wr_props_t, timestamp), P_U64},
    {"type", WR_PROP_TYPE, offsetof(wr_props_t, type), P_STR},
    {"user_id", WR_PROP_USER_ID, offsetof(wr_props_t, user_id), P_STR},
    {"app_id", WR_PROP_APP_ID, offsetof(wr_props_t, app_id), P_STR},
    {"cluster_id", WR_PROP_CLUSTER_ID, offsetof(wr_props_t, cluster_id), P_STR},
};

#define NPROPS (sizeof(prop_fields) / sizeof(prop_fields[0]))

json_t *wr_mgmt_json_props(const wr_props_t *p)
{
    json_t *obj = json_object();

    for (size_t i = 0; obj && i < NPROPS; i++) {
        const void *field = (const char *)p + prop_fields[i].offset;
        json_t *v = NULL;

        if (!(p->flags & prop_fields[i].flag))
            continue;
        switch (prop_fields[i].kind) {
        case P_STR:
            v = wr_mgmt_json_bytes(*(const wr_bytes_t *)field);
            break;
        case P_TABLE:
            v = table_json(*(const wr_bytes_t *)field);
            break;
        case P_OCTET:
            v = json_integer(*(const uint8_t *)field);
            break;
        case P_U64:
            v = json_integer((json_int_t) * (const uint64_t *)field);
            break;
        }
        if (json_object_set_new(obj, prop_fields[i].name, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static bool prop_from_json(const json_t *v, size_t i, wr_props_t *p, wr_buf_t *headers, char *why, size_t n)
{
    void *field = (char *)p + prop_fields[i].offset;
    json_int_t k;

    switch (prop_fields[i].kind) {
    case P_STR:
        if (!json_is_string(v))
            break;
        *(wr_bytes_t *)field = (wr_bytes_t){(const uint8_t *)json_string_value(v), json_string_length(v)};
        return true;
    case P_TABLE:
        if (!json_is_object(v))
            break;
        return wr_mgmt_json_to_table(v, headers, (wr_bytes_t *)field, why, n);
    case P_OCTET:
    case P_U64:
        if (!json_is_integer(v))
            break;
        k = json_integer_value(v);
        if (k < 0 || (prop_fields[i].kind == P_OCTET && k > 255))
            break;
        if (prop_fields[i].kind == P_OCTET)
            *(uint8_t *)field = (uint8_t)k;
        else
            *(uint64_t *)field = (uint64_t)k;
        return true;
    }
    snprintf(why, n, "invalid value for property '%s'", prop_fields[i].name);
    return false;
}

bool wr_mgmt_json_to_props(const json_t *obj, wr_props_t *p, wr_buf_t *headers, char *why, size_t n)
{
    const char *key;
    const json_t *v;

    *p = (wr_props_t){.class_id = 60};
    if (!json_is_object(obj)) {
        snprintf(why, n, "properties must be an object");
        return false;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i;

        for (i = 0; i < NPROPS && strcmp(prop_fields[i].name, key) != 0; i++)
            ;
        if (i == NPROPS) {
            snprintf(why, n, "unknown property '%.64s'", key);
            return false;
        }
        if (!prop_from_json(v, i, p, headers, why, n))
            return false;
        p->flags |= prop_fields[i].flag;
    }
    return true;
}

/* ---------------------------------------------------------------- objects */

static int set_rate(json_t *obj, const char *name, uint64_t count, double rate)
{
    char details[64];
    json_t *d = json_pack("{s:f}", "rate", rate);

    snprintf(details, sizeof(details), "%s_details", name);
    if (json_object_set_new(obj, name, json_integer((json_int_t)count)) != 0)
        return -1;
    return json_object_set_new(obj, details, d);
}

json_t *wr_mgmt_json_message_stats(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r)
{
    static const int shown[] = {WR_MS_PUBLISH, WR_MS_DELIVER,    WR_MS_DELIVER_NO_ACK,
                                WR_MS_GET,     WR_MS_GET_NO_ACK, WR_MS_REDELIVER,
                                WR_MS_ACK};
    json_t *obj = json_object();
    uint64_t dg = c->v[WR_MS_DELIVER] + c->v[WR_MS_DELIVER_NO_ACK] + c->v[WR_MS_GET] + c->v[WR_MS_GET_NO_ACK];
    double dg_rate =
        r->v[WR_MS_DELIVER] + r->v[WR_MS_DELIVER_NO_ACK] + r->v[WR_MS_GET] + r->v[WR_MS_GET_NO_ACK];
    int rc = obj ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < sizeof(shown) / sizeof(shown[0]); i++)
        rc = set_rate(obj, wr_mgmt_stats_name(shown[i]), c->v[shown[i]], r->v[shown[i]]);
    if (rc == 0)
        rc = set_rate(obj, "deliver_get", dg, dg_rate);
    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Adds the counters `which` (WR_MS_*) with their rates to obj, or frees it
 * and returns NULL on ENOMEM. */
static json_t *add_rates(json_t *obj, const int *which, size_t n, const wr_mgmt_counts_t *c,
                         const wr_mgmt_rates_t *r)
{
    int rc = obj ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = set_rate(obj, wr_mgmt_stats_name(which[i]), c->v[which[i]], r->v[which[i]]);
    if (rc == 0)
        return obj;
    json_decref(obj);
    return NULL;
}

json_t *wr_mgmt_json_node_message_stats(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r)
{
    static const int node[] = {WR_MS_CONFIRM, WR_MS_GET_EMPTY, WR_MS_RETURN_UNROUTABLE,
                               WR_MS_DROP_UNROUTABLE};

    return add_rates(wr_mgmt_json_message_stats(c, r), node, sizeof(node) / sizeof(node[0]), c, r);
}

json_t *wr_mgmt_json_churn_rates(const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r)
{
    static const int churn[] = {WR_MS_CONNECTION_CREATED, WR_MS_CONNECTION_CLOSED, WR_MS_CHANNEL_CREATED,
                                WR_MS_CHANNEL_CLOSED,     WR_MS_QUEUE_CREATED,     WR_MS_QUEUE_DECLARED,
                                WR_MS_QUEUE_DELETED};

    return add_rates(json_object(), churn, sizeof(churn) / sizeof(churn[0]), c, r);
}

/* One context; port as a string, as RabbitMQ gives it. */
static json_t *context_json(const wr_listener_cfg_t *l, const char *what, const char *node)
{
    char port[8];
    json_t *ctx;

    snprintf(port, sizeof(port), "%u", l->port);
    ctx = json_pack("{s:s, s:s, s:s, s:s}", "description", what, "path", "/", "ip", l->address, "port", port);
    if (ctx && node)
        json_object_update_new(ctx, json_pack("{s:s, s:[]}", "node", node, "ssl_opts"));
    return ctx;
}

json_t *wr_mgmt_json_contexts(const wr_config_t *cfg, const char *node)
{
    json_t *arr = json_array();

    if (arr && cfg->management.address)
        json_array_append_new(arr, context_json(&cfg->management, "RabbitMQ Management", node));
    if (arr && cfg->prometheus.address)
        json_array_append_new(arr, context_json(&cfg->prometheus, "RabbitMQ Prometheus", node));
    return arr;
}

/* The SASL mechanisms: EXTERNAL only where TLS listeners are. */
static json_t *auth_mechanisms(const wr_config_t *cfg)
{
    return json_pack("[{s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:s, s:b}]", "name", "PLAIN", "description",
                     "SASL PLAIN authentication mechanism", "enabled", 1, "name", "AMQPLAIN", "description",
                     "QPid AMQPLAIN mechanism", "enabled", 1, "name", "EXTERNAL", "description",
                     "SASL EXTERNAL authentication mechanism (TLS client certificates)", "enabled",
                     cfg->ntls_listeners > 0);
}

bool wr_mgmt_json_set_node_extras(json_t *node, const wr_config_t *cfg, const wr_mgmt_counts_t *c,
                                  const wr_mgmt_rates_t *r)
{
    json_t *extras =
        json_pack("{s:s, s:o, s:o, s:s, s:[s], s:[]}", "rates_mode", "basic", "auth_mechanisms",
                  auth_mechanisms(cfg), "contexts", wr_mgmt_json_contexts(cfg, NULL), "db_dir", cfg->data_dir,
                  "log_files", cfg->log_file ? cfg->log_file : "<stderr>", "enabled_plugins");

    return extras && json_object_update_new(extras, wr_mgmt_json_churn_rates(c, r)) == 0 &&
           json_object_update_new(node, extras) == 0;
}

/* RabbitMQ's idle_since: "2026-12-06T11:12:04.947+00:00" (UTC). */
static json_t *time_json(double unix_seconds)
{
    time_t secs = (time_t)unix_seconds;
    int ms = (int)((unix_seconds - (double)secs) * 1000);
    struct tm tm;
    char out[64];

    gmtime_r(&secs, &tm);
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return json_string(out);
}

/* The head message's timestamp property, or null. */
static json_t *head_timestamp(wr_message_t *head)
{
    const wr_props_t *p = head ? wr_message_props(head) : NULL;

    return p && (p->flags & WR_PROP_TIMESTAMP) ? json_integer((json_int_t)p->timestamp) : json_null();
}

/* consumer_utilisation and consumer_capacity: integer 0 without consumers,
 * else the sampled share (the state right now before the first sample). */
static json_t *utilisation(const wr_queue_t *q, const wr_mgmt_activity_t *a)
{
    if (wr_queue_consumer_count(q) == 0)
        return json_integer(0);
    return json_real(a->sampled ? a->utilisation : wr_queue_can_deliver(q) ? 1.0 : 0.0);
}

bool wr_mgmt_json_set_queue_figures(json_t *obj, const wr_queue_t *q, const wr_mgmt_activity_t *a)
{
    wr_queue_info_t i;
    json_t *u, *figures;
    size_t ram;

    wr_queue_info(q, &i);
    ram = i.ready_ram.n + i.unacked_ram.n;
    u = utilisation(q, a);
    figures = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:o, s:o}", "message_bytes",
        (json_int_t)(i.ready_bytes + i.unacked.bytes), "message_bytes_ready", (json_int_t)i.ready_bytes,
        "message_bytes_unacknowledged", (json_int_t)i.unacked.bytes, "message_bytes_ram",
        (json_int_t)(i.ready_ram.bytes + i.unacked_ram.bytes), "message_bytes_persistent",
        (json_int_t)(i.ready_persistent.bytes + i.unacked_persistent.bytes), "message_bytes_paged_out",
        (json_int_t)(i.ready_bytes - i.ready_ram.bytes + i.unacked.bytes - i.unacked_ram.bytes),
        "messages_ram", (json_int_t)ram, "messages_ready_ram", (json_int_t)i.ready_ram.n,
        "messages_unacknowledged_ram", (json_int_t)i.unacked_ram.n, "messages_persistent",
        (json_int_t)(i.ready_persistent.n + i.unacked_persistent.n), "messages_paged_out",
        (json_int_t)(i.ready + i.unacked.n - ram), "memory", (json_int_t)i.memory, "consumer_utilisation", u,
        "consumer_capacity", u, "head_message_timestamp", head_timestamp(i.head));
    if (figures && a->sampled && a->idle)
        json_object_set_new(figures, "idle_since", time_json(a->idle_since));
    return figures && json_object_update_new(obj, figures) == 0;
}

bool wr_mgmt_json_set_totals(json_t *obj, const wr_mgmt_counts_t *c, const wr_mgmt_rates_t *r)
{
    uint64_t ready = c->v[WR_MS_READY], unacked = c->v[WR_MS_UNACKED];

    return json_object_update_new(obj, json_pack("{s:I, s:{s:f}, s:I, s:{s:f}, s:I, s:{s:f}}", "messages",
                                                 (json_int_t)(ready + unacked), "messages_details", "rate",
                                                 r->v[WR_MS_READY] + r->v[WR_MS_UNACKED], "messages_ready",
                                                 (json_int_t)ready, "messages_ready_details", "rate",
                                                 r->v[WR_MS_READY], "messages_unacknowledged",
                                                 (json_int_t)unacked, "messages_unacknowledged_details",
                                                 "rate", r->v[WR_MS_UNACKED])) == 0;
}

char *wr_mgmt_json_props_key(wr_bytes_t key, wr_bytes_t args)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(3 * key.len + 16);
    size_t n = 0;
    uint32_t h = 2166136261u; /* FNV-1a */

    if (!out)
        return NULL;
    for (size_t i = 0; i < key.len; i++) {
        uint8_t c = key.data[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    /* RabbitMQ: "~" alone for an empty key without arguments. */
    if (args.len > 0 || key.len == 0)
        out[n++] = '~';
    if (args.len > 0) {
        for (size_t i = 0; i < args.len; i++)
            h = (h ^ args.data[i]) * 16777619u;
        for (int i = 0; i < 6; i++)
            out[n++] = b64url[(h >> (6 * i)) & 63];
    }
    out[n] = '\0';
    return out;
}

json_t *wr_mgmt_json_exchange(const wr_exchange_t *x, const char *vhost)
{
    const wr_exchange_opts_t *o = wr_exchange_opts(x);

    return json_pack("{s:o, s:s, s:s, s:b, s:b, s:b, s:o}", "name", wr_mgmt_json_bytes(wr_exchange_name(x)),
                     "vhost", vhost, "type", wr_router_type_name(o->type), "durable", o->durable,
                     "auto_delete", o->auto_delete, "internal", o->internal, "arguments",
                     table_json(o->args));
}

json_t *wr_mgmt_json_queue(const wr_queue_t *q, const char *vhost)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);

    return json_pack("{s:o, s:s, s:b, s:b, s:o}", "name", wr_mgmt_json_bytes(wr_queue_name(q)), "vhost",
                     vhost, "durable", o->durable, "auto_delete", o->auto_delete, "arguments",
                     table_json(o->args));
}

json_t *wr_mgmt_json_binding(const char *vhost, wr_bytes_t source, wr_bytes_t dest, bool dest_is_queue,
                             wr_bytes_t key, wr_bytes_t args)
{
    return json_pack("{s:o, s:s, s:o, s:s, s:o, s:o}", "source", wr_mgmt_json_bytes(source), "vhost", vhost,
                     "destination", wr_mgmt_json_bytes(dest), "destination_type",
                     dest_is_queue ? "queue" : "exchange", "routing_key", wr_mgmt_json_bytes(key),
                     "arguments", table_json(args));
}

json_t *wr_mgmt_json_tags(const json_t *v)
{
    char buf[1024];
    json_t *list;
    size_t i;
    const json_t *t;

    if (v == NULL || json_is_null(v))
        return json_array();
    if (json_is_array(v)) {
        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t))
                return NULL;
        }
        return json_copy((json_t *)v);
    }
    if (!json_is_string(v) || json_string_length(v) >= sizeof(buf) || !(list = json_array()))
        return NULL;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    for (char *save = NULL, *tag = strtok_r(buf, ",", &save); tag; tag = strtok_r(NULL, ",", &save)) {
        while (*tag == ' ')
            tag++;
        if (*tag != '\0')
            json_array_append_new(list, json_string(tag));
    }
    return list;
}
