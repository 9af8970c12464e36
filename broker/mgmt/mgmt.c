/* SPDX-License-Identifier: MIT */
/*
 * The management HTTP API on evhttp: listener set-up (the web UI's assets,
 * mgmt_ui.c, are served before authentication), basic authentication
 * against the broker's users, path decoding (each segment percent-decoded
 * after splitting, so a vhost "/" is "%2F"), routing to the resource files
 * (mgmt_topo.c, mgmt_conns.c, mgmt_policies.c, definitions.c), RabbitMQ's
 * error shapes, and the small resources: overview, vhosts, users,
 * permissions, nodes, health checks.
 */
#include "broker/base/version.h"
#include "broker/mgmt/mgmt.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "broker/node/alarm.h"
#include "broker/auth/auth.h"
#include "broker/cluster/cluster_config.h"
#include "broker/cluster/cluster_json.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/amqp/conn.h"
#include "broker/mgmt/definitions.h"
#include "broker/base/log.h"
#include "broker/mgmt/metrics.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/mgmt_durable.h"
#include "broker/mgmt/mgmt_health.h"
#include "broker/mgmt/mgmt_lists.h"
#include "broker/mgmt/mgmt_meta.h"
#include "broker/mgmt/mgmt_http.h"
#include "broker/mgmt/mgmt_internal.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/mgmt/mgmt_cluster.h"
#include "broker/mgmt/mgmt_quorum.h"
#include "broker/mgmt/mgmt_nodes.h"
#include "broker/mgmt/mgmt_policies.h"
#include "broker/mgmt/mgmt_topo.h"
#include "broker/mgmt/mgmt_ui.h"
#include "broker/mgmt/mgmt_vhosts.h"
#include "broker/base/pattern.h"
#include "broker/vhost/vhost.h"
#include "core/base64.h"
#include "core/status.h"

/* Request bodies (definitions, published payloads) above this are refused
 * (413); RabbitMQ 3.10 refuses 10,000,000 octets and takes 8,000,000. */
#define MAX_BODY_SIZE (8 * 1024 * 1024)
/* Before the credentials are known, a body above this is refused (413)
 * from its Content-Length, before any of it is read. */
#define PREAUTH_BODY_SIZE (16 * 1024)
#define JSON_FLAGS        (JSON_COMPACT | JSON_REAL_PRECISION(15))

struct wr_mgmt_s {
    const wr_mgmt_env_t *env;
    wr_mgmt_http_t *http; /* NULL when the API is not configured */
    wr_metrics_t *metrics;
    wr_mgmt_stats_t *stats;
    char node[300];
    struct timespec started; /* CLOCK_MONOTONIC, for the node's uptime */
};

/* ---------------------------------------------------------------- replies */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

json_t *wr_mgmt_path_get(json_t *obj, const char *path)
{
    char key[256];

    while (json_is_object(obj)) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        if (!dot)
            return obj;
        path = dot + 1;
    }
    return NULL;
}

/* Copies the value at `path` in src into dst at the same path. */
static void path_copy(json_t *dst, json_t *src, const char *path)
{
    json_t *v = wr_mgmt_path_get(src, path);
    char key[256];
    const char *dot;

    if (!v)
        return;
    while ((dot = strchr(path, '.')) != NULL) {
        json_t *next;

        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        next = json_object_get(dst, key);
        if (!json_is_object(next)) {
            next = json_object();
            if (json_object_set_new(dst, key, next) != 0)
                return;
        }
        dst = next;
        path = dot + 1;
    }
    json_object_set(dst, path, v);
}

/* RabbitMQ's ?columns=a,b.c: each object keeps only those paths. */
static json_t *filter_columns(json_t *obj, const char *columns)
{
    json_t *out = json_object();
    char *list = strdup(columns), *save = NULL;

    if (!out || !list) {
        free(list);
        json_decref(out);
        return json_incref(obj);
    }
    for (char *col = strtok_r(list, ",", &save); col; col = strtok_r(NULL, ",", &save))
        path_copy(out, obj, col);
    free(list);
    return out;
}

int wr_mgmt_compare_values(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    /* Missing values sort first, then numbers, then everything else. */
    return (a != NULL) - (b != NULL);
}

static int compare_items(const void *pa, const void *pb, void *arg)
{
    const char *const *keys = arg;
    json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;

    for (size_t i = 0; keys[i]; i++) {
        int c = wr_mgmt_compare_values(wr_mgmt_path_get(a, keys[i]), wr_mgmt_path_get(b, keys[i]));

        if (c != 0)
            return c;
    }
    return 0;
}

void wr_mgmt_sort(json_t *arr, const char *const *keys, bool reverse)
{
    size_t n = json_array_size(arr);
    json_t **items = malloc(n * sizeof(*items) + 1);

    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort_r(items, n, sizeof(*items), compare_items, (void *)keys);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[reverse ? n - 1 - i : i]);
    free(items);
}

/* ---------------------------------------------------------------- pagination */

/* RabbitMQ's page size when ?page comes without ?page_size, and its limit. */
#define PAGE_SIZE_DEFAULT 100
#define PAGE_SIZE_MAX     500

/* A query parameter as RabbitMQ's list_to_integer reads it: -1 when absent,
 * false when it is no integer. */
static bool query_int(const wr_mgmt_req_t *r, const char *key, long long *out)
{
    const char *s = wr_mgmt_query(r, key);
    char *end;

    *out = -1;
    if (!s)
        return true;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return s[0] && *end == '\0' && errno == 0;
}

/* The replies RabbitMQ gives for bad pagination, as an error body. */
static json_t *page_error(int *status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *page_error(int *status, const char *error, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    *status = 400;
    return json_pack("{s:s, s:s}", "error", error, "reason", reason);
}

/* Reads page, page_size, name and use_regex; NULL when they are fine, else
 * the error body (status set). */
static json_t *page_params(const wr_mgmt_req_t *r, wr_mgmt_page_t *p, int *status)
{
    char why[128];

    if (!query_int(r, "page", &p->page) || !query_int(r, "page_size", &p->size))
        return page_error(status, "bad_request", "Pagination parameters are invalid");
    if (p->page < 1 || p->size == 0 || p->size < -1 || p->size > PAGE_SIZE_MAX) {
        char size[32] = "undefined";

        if (p->size != -1)
            snprintf(size, sizeof(size), "%lld", p->size);
        return page_error(status, "invalid_pagination_parameters",
                          "Invalid pagination parameters: page number %lld, page size %s", p->page, size);
    }
    if (p->size == -1)
        p->size = PAGE_SIZE_DEFAULT;
    p->name = wr_mgmt_query(r, "name");
    p->use_regex = p->name && p->name[0] && wr_mgmt_query(r, "use_regex") &&
                   strcmp(wr_mgmt_query(r, "use_regex"), "true") == 0;
    if (p->use_regex && (!wr_pattern_ok(p->name, why, sizeof(why)) ||
                         regcomp(&p->re, p->name, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)) {
        p->use_regex = false;
        return page_error(status, "bad_request", "Pagination parameters are invalid");
    }
    return NULL;
}

bool wr_mgmt_page_match(const wr_mgmt_page_t *p, const char *name)
{
    if (!p->name || !p->name[0])
        return true;
    if (!name)
        return false;
    return p->use_regex ? regexec(&p->re, name, 0, NULL, 0) == 0 : strcasestr(name, p->name) != NULL;
}

bool wr_mgmt_page_wants(const wr_mgmt_page_t *p, size_t i)
{
    return (long long)i >= (p->page - 1) * p->size && (long long)i < p->page * p->size;
}

json_t *wr_mgmt_page_body(const wr_mgmt_page_t *p, size_t total, size_t filtered, json_t *items, int *status)
{
    if ((p->page - 1) * p->size > (long long)filtered) {
        json_decref(items);
        return page_error(status, "page_out_of_range",
                          "Page out of range, page: %lld page size: %lld, len: %zu", p->page, p->size,
                          filtered);
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "total_count", (json_int_t)total, "item_count",
                     (json_int_t)json_array_size(items), "filtered_count", (json_int_t)filtered, "page",
                     (json_int_t)p->page, "page_size", (json_int_t)p->size, "page_count",
                     (json_int_t)((filtered + (size_t)p->size - 1) / (size_t)p->size), "items", items);
}

bool wr_mgmt_page_begin(wr_mgmt_req_t *r, wr_mgmt_page_t *p)
{
    const char *sort = wr_mgmt_query(r, "sort");
    int status = 200;
    json_t *err;

    *p = (wr_mgmt_page_t){0};
    if (r->method != WR_MGMT_GET || !wr_mgmt_query(r, "page"))
        return false;
    err = page_params(r, p, &status);
    if (err) {
        wr_mgmt_reply(r, status, err);
        return true;
    }
    p->reverse = wr_mgmt_query(r, "sort_reverse") && strcmp(wr_mgmt_query(r, "sort_reverse"), "true") == 0;
    /* As apply_query: a reversed list without a sort key is sorted by name. */
    p->by_name = (sort && sort[0]) || p->reverse;
    p->sort_key = sort && sort[0] && strcmp(sort, "name") != 0 ? sort : NULL;
    p->active = true;
    r->paged = true;
    return true;
}

void wr_mgmt_page_end(wr_mgmt_page_t *p)
{
    if (p->use_regex)
        regfree(&p->re);
    p->use_regex = false;
}

/* RabbitMQ's ?page=N[&page_size=S][&name=F[&use_regex=true]] on a list
 * built whole: the sorted list is filtered by name and cut to one page.
 * Takes body; the page, or an error body with *status set to 400. */
static json_t *paginate(const wr_mgmt_req_t *r, json_t *body, int *status)
{
    wr_mgmt_page_t p = {0};
    json_t *out = page_params(r, &p, status), *items, *item;
    size_t i, filtered = 0;

    if (!out) {
        items = json_array();
        json_array_foreach(body, i, item)
        {
            if (!wr_mgmt_page_match(&p, json_string_value(json_object_get(item, "name"))))
                continue;
            if (wr_mgmt_page_wants(&p, filtered++))
                json_array_append(items, item);
        }
        out = wr_mgmt_page_body(&p, json_array_size(body), filtered, items, status);
    }
    wr_mgmt_page_end(&p);
    json_decref(body);
    return out;
}

/* ---------------------------------------------------------------- replies, continued */

/* Keeps only the ?columns of obj, or of each object of the array obj. */
static json_t *apply_columns(json_t *body, const char *columns)
{
    json_t *out, *item;
    size_t i;

    if (json_is_object(body))
        return filter_columns(body, columns);
    out = json_array();
    json_array_foreach(body, i, item)
    {
        json_array_append_new(out, filter_columns(item, columns));
    }
    return out;
}

/* The list and column query parameters of a GET (rabbit_mgmt_util): sort,
 * then paginate, then keep the columns (of a page: of its items). Takes
 * body; a 400 error body with *status set when the pagination is bad. */
static json_t *apply_query(const wr_mgmt_req_t *r, json_t *body, int *status)
{
    const char *columns = wr_mgmt_query(r, "columns");
    const char *sort = wr_mgmt_query(r, "sort");
    const char *reverse = wr_mgmt_query(r, "sort_reverse");
    json_t *out;

    if (json_is_array(body) && !r->paged &&
        ((sort && sort[0]) || (reverse && strcmp(reverse, "true") == 0))) {
        const char *keys[2] = {sort && sort[0] ? sort : "name", NULL};
        wr_mgmt_sort(body, keys, reverse && strcmp(reverse, "true") == 0);
    }
    if (r->paged || (json_is_array(body) && wr_mgmt_query(r, "page"))) {
        if (!r->paged)
            body = paginate(r, body, status);
        if (*status != 200 || !columns || !columns[0])
            return body;
        out = apply_columns(json_object_get(body, "items"), columns);
        json_object_set_new(body, "items", out);
        return body;
    }
    if (!columns || !columns[0])
        return body;
    out = apply_columns(body, columns);
    json_decref(body);
    return out;
}

static int dump_to_buffer(const char *data, size_t size, void *out)
{
    return evbuffer_add(out, data, size);
}

void wr_mgmt_reply(wr_mgmt_req_t *r, int status, json_t *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    struct evbuffer *out = evbuffer_new();

    r->replied = true;
    if (body && status == 200 && r->method == WR_MGMT_GET)
        body = apply_query(r, body, &status);
    evhttp_add_header(headers, "Cache-Control", "no-cache");
    evhttp_add_header(headers, "Server", "warren");
    if (body) {
        evhttp_add_header(headers, "Content-Type", "application/json");
        if (!out || json_dump_callback(body, dump_to_buffer, out, JSON_FLAGS) != 0)
            status = 500;
        json_decref(body);
    }
    wr_mgmt_send(r->mgmt ? r->mgmt->http : NULL, r->method == WR_MGMT_GET ? NULL : r->env->durable, r->req,
                 status, status_text(status), out);
    if (out)
        evbuffer_free(out);
}

void wr_mgmt_error(wr_mgmt_req_t *r, int status, const char *error, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    wr_mgmt_reply(
        r, status,
        json_pack("{s:s, s:o}", "error", error, "reason", wr_mgmt_json_bytes(wr_bytes_str(reason))));
}

void wr_mgmt_not_found(wr_mgmt_req_t *r)
{
    wr_mgmt_error(r, 404, "Object Not Found", "Not Found");
}

void wr_mgmt_not_allowed(wr_mgmt_req_t *r, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    wr_mgmt_reply(r, 405, NULL);
}

bool wr_mgmt_get_only(wr_mgmt_req_t *r, bool found)
{
    if (!found)
        wr_mgmt_not_found(r);
    else if (r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, "GET");
    return !r->replied;
}

void wr_mgmt_amqp_error(wr_mgmt_req_t *r, const wr_amqp_error_t *e)
{
    const char *sep = strstr(e->text, " - ");
    const char *reason = sep ? sep + 3 : e->text;

    if (e->code == 403)
        wr_mgmt_error(r, 401, "not_authorised", "Access refused.");
    else if (e->code == 404)
        wr_mgmt_error(r, 404, "not_found", "%s", reason);
    else
        wr_mgmt_error(r, 400, "bad_request", "%s", reason);
}

void wr_mgmt_command_error(wr_mgmt_req_t *r, const wr_amqp_error_t *e)
{
    const char *sep = strstr(e->text, " - ");

    if (e->code == WR_AMQP_INTERNAL_ERROR)
        wr_mgmt_error(r, 503, "timeout", "%s", sep != NULL ? sep + 3 : e->text);
    else
        wr_mgmt_amqp_error(r, e);
}

void wr_mgmt_watch(const wr_mgmt_req_t *r, void (*closed)(void *arg), void *arg)
{
    wr_mgmt_http_watch(r->mgmt->http, r->req, closed, arg);
}

json_t *wr_mgmt_body(wr_mgmt_req_t *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *body;

    if (len == 0)
        return json_object();
    body = data ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        wr_mgmt_error(r, 400, "bad_request", "not_json");
        return NULL;
    }
    return body;
}

const char *wr_mgmt_query(const wr_mgmt_req_t *r, const char *key)
{
    return evhttp_find_header(&r->query, key);
}

bool wr_mgmt_has_tag(const wr_user_cfg_t *u, const char *tag)
{
    for (size_t i = 0; i < u->ntags; i++) {
        if (strcmp(u->tags[i], tag) == 0)
            return true;
    }
    return false;
}

/* RabbitMQ's management tags: any of them opens the API. */
static bool management_user(const wr_user_cfg_t *u)
{
    return wr_mgmt_has_tag(u, "administrator") || wr_mgmt_has_tag(u, "monitoring") ||
           wr_mgmt_has_tag(u, "policymaker") || wr_mgmt_has_tag(u, "management");
}

bool wr_mgmt_sees_all(const wr_mgmt_req_t *r)
{
    return wr_mgmt_has_tag(r->account, "administrator") || wr_mgmt_has_tag(r->account, "monitoring");
}

bool wr_mgmt_may_use(const wr_mgmt_req_t *r, const wr_vhost_t *vh)
{
    const char *name = wr_vhost_name(vh);

    if (wr_mgmt_has_tag(r->account, "administrator") || (r->method == WR_MGMT_GET && wr_mgmt_sees_all(r)))
        return true;
    return wr_users_permission(&r->env->cfg->auth, r->user, name, strlen(name)) != NULL;
}

wr_access_who_t wr_mgmt_who(const wr_mgmt_req_t *r, const wr_vhost_t *vh)
{
    const char *name = wr_vhost_name(vh);

    return (wr_access_who_t){wr_users_permission(&r->env->cfg->auth, r->user, name, strlen(name)), name,
                             r->user};
}

wr_vhost_t *wr_mgmt_vhost(wr_mgmt_req_t *r, size_t i)
{
    wr_vhost_t *vh = wr_map_get(r->env->vhosts, wr_bytes_str(r->seg[i]));

    if (!vh) {
        wr_mgmt_not_found(r);
        return NULL;
    }
    if (!wr_mgmt_may_use(r, vh)) {
        wr_mgmt_error(r, 401, "not_authorised", "User not authorised to access virtual host");
        return NULL;
    }
    return vh;
}

/* ---------------------------------------------------------------- small resources */

json_t *wr_mgmt_listeners_json(const wr_mgmt_req_t *r)
{
    const wr_config_t *cfg = r->env->cfg;
    json_t *arr = json_array();

    for (size_t i = 0; i < cfg->nlisteners; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i}", "node", r->node, "protocol", "amqp",
                                             "ip_address", cfg->listeners[i].address, "port",
                                             cfg->listeners[i].port));
    if (cfg->management.address)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i}", "node", r->node, "protocol",
                                             r->env->tls ? "https" : "http", "ip_address",
                                             cfg->management.address, "port", cfg->management.port));
    if (cfg->prometheus.address)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i}", "node", r->node, "protocol",
                                             "http/prometheus", "ip_address", cfg->prometheus.address, "port",
                                             cfg->prometheus.port));
    return arr;
}

static json_t *exchange_types_json(void)
{
    static const char *const types[] = {"direct", "fanout", "headers", "topic"};
    json_t *arr = json_array();

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:b}", "name", types[i], "description",
                                        "AMQP exchange type, as per the AMQP specification", "enabled", 1));
    return arr;
}

/* The cluster's name as configured; outside a cluster, this node's (as RabbitMQ). */
static const char *cluster_name_of(const wr_mgmt_req_t *r)
{
    const wr_cluster_config_t *c = r->env->cfg->cluster;

    return c ? c->name : r->node;
}

static void overview(wr_mgmt_req_t *r)
{
    const char *cname = cluster_name_of(r);
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t rt;
    size_t conns, channels, exchanges = 0, queues = 0, consumers = 0;
    wr_map_iter_t it = {0}, qit;
    void *vh, *q;
    json_t *body, *totals = json_object();

    if (r->method != WR_MGMT_GET) {
        wr_mgmt_not_allowed(r, "GET");
        return;
    }
    wr_mgmt_stats_node_counts(r->env, &c);
    wr_mgmt_stats_node_rates(r->stats, &rt);
    wr_mgmt_conns_totals(r->env, &conns, &channels);
    while (wr_map_next(r->env->vhosts, &it, NULL, &vh)) {
        exchanges += wr_map_count(wr_vhost_exchanges(vh));
        queues += wr_map_count(wr_vhost_queues(vh));
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q))
            consumers += wr_queue_consumer_count(q);
    }
    wr_mgmt_json_set_totals(totals, &c, &rt);
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}, "
                     "s:o, s:o, s:i}",
                     "management_version", WR_MGMT_COMPAT_VERSION, "rabbitmq_version", WR_MGMT_COMPAT_VERSION,
                     "product_name", "warren", "product_version", WR_VERSION, "cluster_name", cname, "node",
                     r->node, "rates_mode", "basic", "disable_stats", 0, "exchange_types",
                     exchange_types_json(), "message_stats", wr_mgmt_json_node_message_stats(&c, &rt),
                     "queue_totals", totals, "object_totals", "connections", (json_int_t)conns, "channels",
                     (json_int_t)channels, "exchanges", (json_int_t)exchanges, "queues", (json_int_t)queues,
                     "consumers", (json_int_t)consumers, "listeners", wr_mgmt_listeners_json(r), "contexts",
                     wr_mgmt_json_contexts(r->env->cfg, r->node), "statistics_db_event_queue", 0);
    if (body && r->env->reports)
        wr_mgmt_cluster_overview(r, body);
    if (body)
        json_object_update_new(body, json_pack("{s:o, s:{s:[iiii], s:[ii], s:[i]}}", "churn_rates",
                                               wr_mgmt_json_churn_rates(&c, &rt), "sample_retention_policies",
                                               "global", 600, 3600, 28800, 86400, "basic", 600, 3600,
                                               "detailed", 600));
    wr_mgmt_reply(r, body ? 200 : 500, body);
}

static json_t *tags_json(const wr_user_cfg_t *u)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < u->ntags; i++)
        json_array_append_new(arr, json_string(u->tags[i]));
    return arr;
}

json_t *wr_mgmt_user_json(const wr_user_cfg_t *u)
{
    json_t *limits = u->has_max_connections
                         ? json_pack("{s:I}", "max-connections", (json_int_t)u->max_connections)
                         : json_object();

    return json_pack("{s:s, s:o, s:s, s:o, s:o}", "name", u->name, "password_hash",
                     wr_mgmt_json_base64((wr_bytes_t){u->password_hash, u->password_hash_len}),
                     "hashing_algorithm", wr_mgmt_json_hash_alg_name(u->hashing_algorithm), "tags",
                     tags_json(u), "limits", limits);
}

json_t *wr_mgmt_permission_json(const wr_permission_cfg_t *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", p->user, "vhost", p->vhost, "configure",
                     p->pattern[WR_PERM_CONFIGURE], "write", p->pattern[WR_PERM_WRITE], "read",
                     p->pattern[WR_PERM_READ]);
}

/* Users and permissions are for administrators, as in RabbitMQ. */
static bool administrator_only(wr_mgmt_req_t *r)
{
    if (wr_mgmt_has_tag(r->account, "administrator"))
        return true;
    wr_mgmt_error(r, 401, "not_authorised", "Not administrator user");
    return false;
}

/* "tags" as an array of strings or RabbitMQ's comma-separated string, into
 * tags (at most max); -1 when it is neither. */
static int parse_tags(const json_t *v, char *buf, size_t buflen, const char **tags, size_t max)
{
    size_t n = 0;

    if (!v || json_is_null(v))
        return 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *t;

        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t) || n == max)
                return -1;
            tags[n++] = json_string_value(t);
        }
        return (int)n;
    }
    if (!json_is_string(v) || json_string_length(v) >= buflen)
        return -1;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t == '\0')
            continue;
        if (n == max)
            return -1;
        tags[n++] = t;
    }
    return (int)n;
}

#define MAX_TAGS 32

int wr_mgmt_put_user(const wr_mgmt_env_t *env, const char *name, const json_t *obj, bool *created, char *err,
                     size_t errlen)
{
    wr_config_t *cfg = env->cfg;
    const wr_user_cfg_t *old = wr_users_find(&cfg->auth, name, strlen(name));
    const json_t *password = json_object_get(obj, "password");
    const json_t *hash = json_object_get(obj, "password_hash");
    const json_t *alg_name = json_object_get(obj, "hashing_algorithm");
    uint8_t digest[WR_PASSWORD_HASH_MAX];
    size_t len = 0;
    wr_hash_alg_t alg = WR_HASH_SHA256;
    const char *tags[MAX_TAGS];
    char tag_buf[512];
    int ntags = parse_tags(json_object_get(obj, "tags"), tag_buf, sizeof(tag_buf), tags, MAX_TAGS);

    if (!json_is_object(obj) || name[0] == '\0') {
        snprintf(err, errlen, "user '%s': not an object with a name", name);
        return WR_ESYNTAX;
    }
    if (ntags < 0) {
        snprintf(err, errlen, "user '%s': tags must be a list of strings or a comma-separated string", name);
        return WR_ESYNTAX;
    }
    if (alg_name &&
        (!json_is_string(alg_name) || !wr_auth_hash_alg_parse(json_string_value(alg_name), &alg))) {
        snprintf(err, errlen, "user '%s': unknown hashing_algorithm", name);
        return WR_ESYNTAX;
    }
    if (password && hash) {
        snprintf(err, errlen, "user '%s': give password or password_hash, not both", name);
        return WR_ESYNTAX;
    }
    if (password) {
        if (!json_is_string(password)) {
            snprintf(err, errlen, "user '%s': password must be a string", name);
            return WR_ESYNTAX;
        }
        alg = WR_HASH_SHA256;
        len = wr_auth_hash_password(
            alg, (wr_bytes_t){(const uint8_t *)json_string_value(password), json_string_length(password)},
            digest);
        if (len == 0) {
            snprintf(err, errlen, "user '%s': hashing the password failed", name);
            return WR_ENOMEM;
        }
    } else if (hash) {
        if (!json_is_string(hash) ||
            wr_auth_hash_decode(json_string_value(hash), alg, digest, &len) != WR_OK) {
            snprintf(err, errlen, "user '%s': password_hash is not a base64 %s hash", name,
                     wr_mgmt_json_hash_alg_name(alg));
            return WR_ESYNTAX;
        }
    } else if (old) {
        alg = old->hashing_algorithm;
        len = old->password_hash_len;
        memcpy(digest, old->password_hash, len);
    }
    if (wr_users_put(&cfg->auth, name, digest, len, alg, tags, (size_t)ntags, created) != WR_OK) {
        snprintf(err, errlen, "user '%s': out of memory", name);
        return WR_ENOMEM;
    }
    return WR_OK;
}

int wr_mgmt_put_permission(const wr_mgmt_env_t *env, const char *user, const char *vhost, const json_t *obj,
                           bool *created, char *err, size_t errlen)
{
    static const char *const kinds[WR_PERM_KINDS] = {"configure", "write", "read"};
    const char *pattern[WR_PERM_KINDS];

    for (int k = 0; k < WR_PERM_KINDS; k++) {
        pattern[k] = json_string_value(json_object_get(obj, kinds[k]));
        if (!pattern[k]) {
            snprintf(err, errlen, "permission of '%s' in vhost '%s': %s must be a string", user, vhost,
                     kinds[k]);
            return WR_ESYNTAX;
        }
    }
    return wr_users_put_permission(&env->cfg->auth, user, vhost, pattern, created, err, errlen);
}

/* RabbitMQ closes a deleted user's connections (rabbit_connection_tracking_handler). */
static void close_user_conns(const wr_mgmt_env_t *env, const char *user)
{
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        wr_conn_t *c = wr_conn_from_link(pos);
        wr_conn_info_t info;
        wr_amqp_error_t err;

        wr_conn_info(c, &info);
        if (!info.open || !wr_conn_user(c) || strcmp(wr_conn_user(c), user) != 0)
            continue;
        wr_amqp_error_set(&err, WR_AMQP_CONNECTION_FORCED, 0, "user '%s' is deleted", user);
        wr_conn_fail(c, &err);
    }
}

/* A PUT's reply: 201 created, 204 replaced, 400 for bad input (WR_ESYNTAX),
 * 500 otherwise, with err as the reason. */
static void put_reply(wr_mgmt_req_t *r, int rc, bool created, const char *err)
{
    if (rc == WR_ESYNTAX)
        wr_mgmt_error(r, 400, "bad_request", "%s", err);
    else if (rc != WR_OK)
        wr_mgmt_error(r, 500, "internal_error", "%s", err);
    else
        wr_mgmt_reply(r, created ? 201 : 204, NULL);
}

static void user_one(wr_mgmt_req_t *r)
{
    const wr_config_t *cfg = r->env->cfg;
    const char *name = r->seg[1];
    const wr_user_cfg_t *u = wr_users_find(&cfg->auth, name, strlen(name));
    json_t *body;
    char err[300];
    bool created = false;
    int rc;

    if (r->method == WR_MGMT_GET) {
        if (u)
            wr_mgmt_reply(r, 200, wr_mgmt_user_json(u));
        else
            wr_mgmt_not_found(r);
    } else if (r->method == WR_MGMT_DELETE && u && wr_mgmt_meta(r)) {
        wr_mgmt_meta_propose(r, wr_meta_cmd_defs("user.delete", "", json_pack("{s:s}", "name", name)), 204,
                             NULL);
    } else if (r->method == WR_MGMT_DELETE) {
        if (!wr_users_delete(&r->env->cfg->auth, name)) {
            wr_mgmt_not_found(r);
            return;
        }
        close_user_conns(r->env, name);
        wr_mgmt_reply(r, 204, NULL);
    } else if (r->method == WR_MGMT_PUT) {
        if (!(body = wr_mgmt_body(r)))
            return;
        /* RabbitMQ's PUT needs tags (a definitions import does not). */
        if (!json_object_get(body, "tags")) {
            json_decref(body);
            wr_mgmt_error(r, 400, "bad_request", "tags_not_present");
            return;
        }
        if (wr_mgmt_meta(r)) {
            wr_mgmt_meta_put_user(r, name, body);
            json_decref(body);
            return;
        }
        rc = wr_mgmt_put_user(r->env, name, body, &created, err, sizeof(err));
        json_decref(body);
        put_reply(r, rc, created, err);
    } else {
        wr_mgmt_not_allowed(r, "GET, PUT, DELETE");
    }
}

/* The permissions of `user` (NULL: anyone's) in `vhost` (NULL: any). */
static json_t *permissions_of(const wr_mgmt_req_t *r, const char *user, const char *vhost)
{
    const wr_config_t *cfg = r->env->cfg;
    const wr_permission_cfg_t *perm;
    json_t *arr = json_array();
    size_t i = 0;

    while (arr && (perm = wr_users_permission_next(&cfg->auth, &i))) {
        if ((!user || strcmp(perm->user, user) == 0) && (!vhost || strcmp(perm->vhost, vhost) == 0))
            json_array_append_new(arr, wr_mgmt_permission_json(perm));
    }
    return arr;
}

/* GET /api/users/NAME/permissions and /api/vhosts/NAME/permissions. */
static void permissions_by(wr_mgmt_req_t *r, bool by_user)
{
    const char *name = r->seg[1];
    bool exists = by_user ? wr_users_find(&r->env->cfg->auth, name, strlen(name)) != NULL
                          : wr_map_get(r->env->vhosts, wr_bytes_str(name)) != NULL;
    json_t *arr;

    if (!administrator_only(r))
        return;
    if (!wr_mgmt_get_only(r, exists && strcmp(r->seg[2], "permissions") == 0))
        return;
    arr = by_user ? permissions_of(r, name, NULL) : permissions_of(r, NULL, name);
    wr_mgmt_reply(r, arr ? 200 : 500, arr);
}

/* GET /api/users/without-permissions: the users no vhost permits. */
static void users_without_permissions(wr_mgmt_req_t *r)
{
    const wr_users_t *db = &r->env->cfg->auth;
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < db->nusers; i++) {
        const wr_permission_cfg_t *perm;
        size_t p = 0;

        while ((perm = wr_users_permission_next(db, &p)) && strcmp(perm->user, db->users[i].name) != 0)
            ;
        if (!perm)
            json_array_append_new(arr, wr_mgmt_user_json(&db->users[i]));
    }
    wr_mgmt_reply(r, arr ? 200 : 500, arr);
}

static void users(wr_mgmt_req_t *r)
{
    const wr_config_t *cfg = r->env->cfg;
    json_t *arr;

    if (!administrator_only(r))
        return;
    if (r->nseg == 2 && strcmp(r->seg[1], "without-permissions") == 0) {
        if (wr_mgmt_get_only(r, true))
            users_without_permissions(r);
        return;
    }
    if (r->nseg == 2) {
        user_one(r);
        return;
    }
    if (r->nseg == 3) {
        permissions_by(r, true);
        return;
    }
    if (!wr_mgmt_get_only(r, r->nseg == 1))
        return;
    arr = json_array();
    for (size_t i = 0; i < cfg->auth.nusers; i++)
        json_array_append_new(arr, wr_mgmt_user_json(&cfg->auth.users[i]));
    wr_mgmt_reply(r, 200, arr);
}

/* /api/permissions/VHOST/USER */
static void permission_one(wr_mgmt_req_t *r)
{
    const wr_config_t *cfg = r->env->cfg;
    const char *vhost = r->seg[1], *user = r->seg[2];
    const wr_permission_cfg_t *perm;
    json_t *body;
    char err[300];
    bool created = false;
    int rc;

    if (!wr_map_get(r->env->vhosts, wr_bytes_str(vhost)) || !wr_users_find(&cfg->auth, user, strlen(user))) {
        /* RabbitMQ: a PUT is a bad request, anything else not found. */
        if (r->method == WR_MGMT_PUT)
            wr_mgmt_error(r, 400, "bad_request", "vhost_or_user_not_found");
        else
            wr_mgmt_not_found(r);
        return;
    }
    perm = wr_users_permission(&cfg->auth, user, vhost, strlen(vhost));
    if (r->method == WR_MGMT_GET) {
        if (perm)
            wr_mgmt_reply(r, 200, wr_mgmt_permission_json(perm));
        else
            wr_mgmt_not_found(r);
    } else if (r->method == WR_MGMT_DELETE && perm && wr_mgmt_meta(r)) {
        wr_mgmt_meta_propose(r, wr_meta_cmd_defs("permission.clear", vhost, json_pack("{s:s}", "user", user)),
                             204, NULL);
    } else if (r->method == WR_MGMT_DELETE) {
        if (wr_users_delete_permission(&r->env->cfg->auth, user, vhost))
            wr_mgmt_reply(r, 204, NULL);
        else
            wr_mgmt_not_found(r);
    } else if (r->method == WR_MGMT_PUT) {
        if (!(body = wr_mgmt_body(r)))
            return;
        if (wr_mgmt_meta(r)) {
            wr_mgmt_meta_put_permission(r, user, vhost, body);
            json_decref(body);
            return;
        }
        rc = wr_mgmt_put_permission(r->env, user, vhost, body, &created, err, sizeof(err));
        json_decref(body);
        put_reply(r, rc, created, err);
    } else {
        wr_mgmt_not_allowed(r, "GET, PUT, DELETE");
    }
}

static void permissions(wr_mgmt_req_t *r)
{
    json_t *arr;

    if (!administrator_only(r))
        return;
    if (r->nseg == 3) {
        permission_one(r);
        return;
    }
    if (!wr_mgmt_get_only(r, r->nseg == 1))
        return;
    arr = permissions_of(r, NULL, NULL);
    wr_mgmt_reply(r, arr ? 200 : 500, arr);
}

static void vhosts(wr_mgmt_req_t *r)
{
    if (r->nseg == 3)
        permissions_by(r, false);
    else
        wr_mgmt_vhosts(r);
}

static void whoami(wr_mgmt_req_t *r)
{
    if (r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, "GET");
    else
        wr_mgmt_reply(r, 200, json_pack("{s:s, s:o}", "name", r->user, "tags", tags_json(r->account)));
}

static void alarm_status(const wr_mgmt_env_t *env, wr_alarm_status_t *st)
{
    const wr_alarms_t *a = env->alarms;

    *st = (wr_alarm_status_t){0};
    if (a)
        wr_alarm_status(a, st);
}

/* health/checks/alarms and local-alarms: 200 {"status":"ok"}, or as
 * RabbitMQ 503 with the alarms in effect ("disk space", "memory"). */
static void health(wr_mgmt_req_t *r)
{
    wr_alarm_status_t st;
    bool local;
    json_t *alarms;

    if (wr_mgmt_health_check(r))
        return;
    if (!wr_mgmt_get_only(r,
                          r->nseg == 3 && strcmp(r->seg[1], "checks") == 0 &&
                              (strcmp(r->seg[2], "alarms") == 0 || strcmp(r->seg[2], "local-alarms") == 0)))
        return;
    alarm_status(r->env, &st);
    if (!st.memory && !st.disk) {
        wr_mgmt_reply(r, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    local = strcmp(r->seg[2], "local-alarms") == 0;
    alarms = json_array();
    if (st.disk)
        json_array_append_new(alarms, json_pack("{s:s, s:s}", "node", r->node, "resource", "disk space"));
    if (st.memory)
        json_array_append_new(alarms, json_pack("{s:s, s:s}", "node", r->node, "resource", "memory"));
    wr_mgmt_reply(r, 503,
                  json_pack("{s:s, s:s, s:o}", "status", "failed", "reason",
                            local ? "There are alarms in effect on the node"
                                  : "There are alarms in effect in the cluster",
                            "alarms", alarms));
}

/* What RabbitMQ adds to this node's entry: churn, exchange types, contexts... */
static void set_local_extras(const wr_mgmt_req_t *r, json_t *node)
{
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t rt;

    wr_mgmt_stats_node_counts(r->env, &c);
    wr_mgmt_stats_node_rates(r->stats, &rt);
    json_object_set_new(node, "exchange_types", exchange_types_json());
    wr_mgmt_json_set_node_extras(node, r->env->cfg, &c, &rt);
}

/* /api/nodes[/NAME]: for monitoring users and administrators. */
static void nodes(wr_mgmt_req_t *r)
{
    json_t *node, *all;
    size_t i;

    if (!wr_mgmt_sees_all(r)) {
        wr_mgmt_error(r, 401, "not_authorised", "Not monitor user");
        return;
    }
    if (r->method != WR_MGMT_GET) {
        wr_mgmt_not_allowed(r, "GET");
        return;
    }
    if (r->nseg > 2) {
        wr_mgmt_not_found(r);
        return;
    }
    if (!(all = wr_mgmt_nodes_json(r->env, r->node))) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    json_array_foreach(all, i, node)
    {
        if (strcmp(json_string_value(json_object_get(node, "name")), r->node) == 0)
            set_local_extras(r, node);
    }
    if (r->nseg == 1) {
        wr_mgmt_reply(r, 200, all);
        return;
    }
    json_array_foreach(all, i, node)
    {
        if (strcmp(json_string_value(json_object_get(node, "name")), r->seg[1]) == 0) {
            wr_mgmt_reply(r, 200, json_incref(node));
            json_decref(all);
            return;
        }
    }
    json_decref(all);
    wr_mgmt_not_found(r);
}

/* GET /api/cluster-name, as RabbitMQ (which also takes a PUT that renames the cluster). */
static void cluster_name(wr_mgmt_req_t *r)
{
    if (r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, "GET");
    else
        wr_mgmt_reply(r, 200, json_pack("{s:s}", "name", cluster_name_of(r)));
}

static void definitions(wr_mgmt_req_t *r)
{
    wr_vhost_t *only = NULL;
    json_t *body;
    char err[512];

    if (!administrator_only(r))
        return;
    if (r->nseg > 2) {
        wr_mgmt_not_found(r);
        return;
    }
    if (r->nseg == 2 && !(only = wr_mgmt_vhost(r, 1)))
        return;
    if (r->method == WR_MGMT_GET) {
        body = wr_definitions_export(r->env, only);
        wr_mgmt_reply(r, body ? 200 : 500, body);
        return;
    }
    if (r->method != WR_MGMT_POST) {
        wr_mgmt_not_allowed(r, "GET, POST");
        return;
    }
    body = wr_mgmt_body(r);
    if (!body)
        return;
    if (wr_mgmt_meta(r)) {
        /* Cluster mode: the import is a sequence of the group's commands. */
        json_t *cmds = wr_definitions_commands(r->env, body, only, err, sizeof(err));

        if (cmds)
            wr_mgmt_meta_propose_all(r, cmds, 204);
        else
            wr_mgmt_error(r, 400, "bad_request", "%s", err);
    } else if (wr_definitions_import(r->env, body, only, err, sizeof(err)) != WR_OK)
        wr_mgmt_error(r, 400, "bad_request", "%s", err);
    else
        wr_mgmt_reply(r, 204, NULL);
    json_decref(body);
}

/* ---------------------------------------------------------------- requests */

/* HTTP basic auth (the Authorization header h, NULL for none) against the
 * configured users, with loopback_users applying as they do for AMQP. The
 * user, or NULL. */
static const wr_user_cfg_t *authenticate(const wr_mgmt_t *m, const char *h, const struct sockaddr *peer)
{
    const wr_config_t *cfg = m->env->cfg;
    uint8_t creds[1024];
    const uint8_t *colon;
    const wr_user_cfg_t *u;
    long n;

    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return NULL;
    n = wr_base64_decode(h + 6, strlen(h + 6), creds, sizeof(creds));
    colon = n > 0 ? memchr(creds, ':', (size_t)n) : NULL;
    if (!colon)
        return NULL;
    u = wr_auth_check(&cfg->auth, (wr_bytes_t){creds, (size_t)(colon - creds)},
                      (wr_bytes_t){colon + 1, (size_t)(creds + n - colon - 1)});
    if (!u || (wr_auth_loopback_only(&cfg->auth, u->name) && (!peer || !wr_auth_is_loopback(peer))))
        return NULL;
    return u;
}

bool wr_mgmt_split_path(wr_mgmt_req_t *r, const char *path)
{
    const char *p;

    if (!path || strncmp(path, "/api/", 5) != 0)
        return false;
    p = path + 5;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char raw[1024];
        size_t len;

        if (r->nseg == WR_MGMT_MAX_SEGS || n >= sizeof(raw))
            return false;
        memcpy(raw, p, n);
        raw[n] = '\0';
        r->seg[r->nseg] = evhttp_uridecode(raw, 0, &len);
        if (!r->seg[r->nseg])
            return false;
        if (strlen(r->seg[r->nseg++]) != len)
            return false;
        if (!slash)
            break;
        p = slash + 1;
    }
    /* "/api/queues/" is "/api/queues". */
    if (r->nseg > 0 && r->seg[r->nseg - 1][0] == '\0')
        free(r->seg[--r->nseg]);
    return r->nseg > 0;
}

/*
 * A POST, or a PUT with a body, must say its body is JSON: a cross-site
 * HTML form or a "simple" fetch can send text/plain, form-encoded or
 * untyped POSTs with the browser's credentials, but not application/json.
 * RabbitMQ 3.10 takes any type; this refusal is warren's (415). False
 * after replying.
 */
static bool json_typed(wr_mgmt_req_t *r)
{
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    size_t body = evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
    size_t n = strlen("application/json");

    if (r->method != WR_MGMT_POST && (r->method != WR_MGMT_PUT || body == 0))
        return true;
    if (type && strncasecmp(type, "application/json", n) == 0 &&
        (type[n] == '\0' || type[n] == ';' || type[n] == ' '))
        return true;
    wr_mgmt_error(r, 415, "unsupported_media_type", "a request body must be sent as application/json");
    return false;
}

static wr_mgmt_method_t method_of(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
    case EVHTTP_REQ_HEAD:
        return WR_MGMT_GET;
    case EVHTTP_REQ_PUT:
        return WR_MGMT_PUT;
    case EVHTTP_REQ_POST:
        return WR_MGMT_POST;
    case EVHTTP_REQ_DELETE:
        return WR_MGMT_DELETE;
    default:
        return WR_MGMT_OTHER;
    }
}

/* /api/queues, with RabbitMQ's quorum queue operations under /api/queues/quorum. */
static void queues(wr_mgmt_req_t *r)
{
    if (!wr_mgmt_quorum_route(r))
        wr_mgmt_topo_queues(r);
}

/* The collections under /api; `whole` ones take no further segment. */
static const struct {
    const char *name;
    bool whole;
    void (*handler)(wr_mgmt_req_t *r);
} routes[] = {
    {"overview", true, overview},
    {"vhosts", false, vhosts},
    {"users", false, users},
    {"permissions", false, permissions},
    {"whoami", true, whoami},
    {"nodes", false, nodes},
    {"cluster-name", true, cluster_name},
    {"cluster", false, wr_mgmt_cluster},
    {"exchanges", false, wr_mgmt_topo_exchanges},
    {"queues", false, queues},
    {"bindings", false, wr_mgmt_topo_bindings},
    {"connections", false, wr_mgmt_conns_connections},
    {"channels", false, wr_mgmt_conns_channels},
    {"definitions", false, definitions},
    {"health", false, health},
    {"policies", false, wr_mgmt_policies},
    {"consumers", false, wr_mgmt_conns_consumers},
    {"vhost-limits", false, wr_mgmt_vhost_limits},
    {"user-limits", false, wr_mgmt_user_limits},
    {"rebalance", false, wr_mgmt_quorum_rebalance},
};

void wr_mgmt_route(wr_mgmt_req_t *r)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(r->seg[0], routes[i].name) == 0 && (!routes[i].whole || r->nseg == 1)) {
            routes[i].handler(r);
            return;
        }
    }
    if (!wr_mgmt_lists_route(r) && !wr_mgmt_health_route(r))
        wr_mgmt_not_found(r);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    wr_mgmt_t *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    wr_mgmt_req_t r = {.mgmt = m, .env = m->env, .stats = m->stats, .node = m->node, .req = req};
    const char *query;

    if (wr_mgmt_ui_serve(req, evhttp_uri_get_path(uri)))
        return;
    r.method = method_of(evhttp_request_get_command(req));
    /* Parsing also initialises r.query, even for an empty string. */
    query = evhttp_uri_get_query(uri);
    if (evhttp_parse_query_str(query ? query : "", &r.query) != 0) {
        wr_mgmt_error(&r, 400, "bad_request", "invalid query string");
        goto out;
    }
    r.account = authenticate(m, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"),
                             evhttp_connection_get_addr(evhttp_request_get_connection(req)));
    if (!r.account) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"RabbitMQ Management\"");
        wr_mgmt_error(&r, 401, "not_authorized", "Login failed");
        goto out;
    }
    r.user = r.account->name;
    if (!management_user(r.account)) {
        wr_mgmt_error(&r, 401, "not_authorised", "Not management user");
        goto out;
    }
    if (!json_typed(&r))
        goto out;
    if (!wr_mgmt_split_path(&r, evhttp_uri_get_path(uri)))
        wr_mgmt_not_found(&r);
    else
        wr_mgmt_route(&r);
    if (!r.replied)
        wr_mgmt_error(&r, 500, "internal_error", "no reply");
out:
    for (size_t i = 0; i < r.nseg; i++)
        free(r.seg[i]);
    evhttp_clear_headers(&r.query);
}

/* ---------------------------------------------------------------- lifecycle */

/* mgmt_http's check of a request's headers: may its body be large? */
static bool may_send_body(void *arg, const char *authorization, const struct sockaddr *peer)
{
    const wr_user_cfg_t *u = authenticate(arg, authorization, peer);

    return u && management_user(u);
}

static wr_mgmt_http_t *http_listen(wr_mgmt_t *m, const wr_listener_cfg_t *l)
{
    wr_mgmt_http_opts_t o = {
        "the management API", MAX_BODY_SIZE, PREAUTH_BODY_SIZE, on_request, may_send_body, m, m->env->tls};
    wr_mgmt_http_t *http = wr_mgmt_http_new(m->env->base, l, &o);

    if (http)
        wr_log_info("management API listening on %s port %u%s", l->address, l->port,
                    m->env->tls ? " (HTTPS)" : "");
    return http;
}

int wr_mgmt_start(const wr_mgmt_env_t *env, wr_mgmt_t **out)
{
    const wr_config_t *cfg = env->cfg;
    wr_mgmt_t *m;
    char host[256] = "localhost";

    *out = NULL;
    if (!cfg->management.address && !cfg->prometheus.address)
        return WR_OK;
    m = calloc(1, sizeof(*m));
    if (!m)
        return WR_ENOMEM;
    m->env = env;
    clock_gettime(CLOCK_MONOTONIC, &m->started);
    gethostname(host, sizeof(host) - 1);
    if (cfg->cluster) /* node names appear exactly as configured */
        snprintf(m->node, sizeof(m->node), "%s", cfg->cluster->node);
    else
        snprintf(m->node, sizeof(m->node), "warren@%s", host);
    m->stats = wr_mgmt_stats_new(env, cfg->collect_statistics_interval);
    if (!m->stats) {
        wr_log_error("out of memory starting the statistics sampler");
        goto err;
    }
    if (cfg->management.address && !(m->http = http_listen(m, &cfg->management)))
        goto err;
    if (cfg->prometheus.address && !(m->metrics = wr_metrics_new(env, m->stats, &cfg->prometheus)))
        goto err;
    *out = m;
    return WR_OK;
err:
    wr_mgmt_free(m);
    return WR_EIO;
}

void wr_mgmt_free(wr_mgmt_t *m)
{
    if (!m)
        return;
    wr_mgmt_http_free(m->http);
    wr_metrics_free(m->metrics);
    wr_mgmt_stats_free(m->stats);
    free(m);
}
