/* SPDX-License-Identifier: MIT */
/*
 * /api/exchanges, /api/queues and /api/bindings. Declares run RabbitMQ's
 * checks from handle_exchange.c and queue_args.c, as AMQP's declares do, and
 * change the broker only through vhost.c and exchange.c; publish uses
 * wr_vhost_publish like basic.publish. In URLs the default exchange is
 * "amq.default", as in RabbitMQ.
 */
#include "broker/mgmt/mgmt_topo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "broker/amqp/handle_exchange.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/cluster/quorum.h"
#include "broker/cluster/remote.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/mgmt/mgmt_meta.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/queue_args.h"
#include "core/base64.h"
#include "core/status.h"
#include "protocol/methods.h"

#define MAX_NAME_LEN 255

/* ---------------------------------------------------------------- shared operations */

static bool out_of_memory(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
    return false;
}

static bool not_found(const wr_vhost_t *vh, const char *kind, wr_bytes_t name, uint32_t method,
                      wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_NOT_FOUND, method, "no %s '%.*s' in vhost '%s'", kind, (int)name.len,
                      (const char *)name.data, wr_vhost_name(vh));
    return false;
}

static bool default_exchange(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, method, "operation not permitted on the default exchange");
    return false;
}

bool wr_mgmt_topo_declare_exchange(wr_vhost_t *vh, wr_bytes_t name, const char *type, bool durable,
                                   bool auto_delete, bool internal, wr_bytes_t args, bool *created,
                                   wr_amqp_error_t *err)
{
    wr_exchange_opts_t o = {wr_router_type_find(wr_bytes_str(type)), durable, auto_delete, internal, args};
    wr_exchange_t *x;

    *created = false;
    if (!o.type) {
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, WR_EXCHANGE_DECLARE, "unknown exchange type '%s'",
                          type);
        return false;
    }
    if (name.len == 0)
        return default_exchange(WR_EXCHANGE_DECLARE, err);
    x = wr_vhost_exchange(vh, name);
    if (x)
        return wr_handle_exchange_check_equivalent(wr_vhost_name(vh), x, &o, err);
    if (!wr_handle_exchange_check_new(wr_vhost_name(vh), name, args, err))
        return false;
    if (wr_vhost_exchange_add(vh, name, &o, &x) != WR_OK)
        return out_of_memory(WR_EXCHANGE_DECLARE, err);
    *created = true;
    return true;
}

bool wr_mgmt_topo_declare_queue(wr_vhost_t *vh, wr_bytes_t name, bool durable, bool auto_delete,
                                wr_bytes_t args, bool *created, wr_amqp_error_t *err)
{
    wr_queue_opts_t o = {.durable = durable, .auto_delete = auto_delete, .args = args};
    wr_queue_args_decl_t req = {durable, auto_delete, args}, cur;
    wr_queue_t *q;

    *created = false;
    if (!wr_queue_args_check_name(name, err))
        return false;
    q = wr_vhost_queue(vh, name);
    if (q) {
        cur = (wr_queue_args_decl_t){wr_queue_opts(q)->durable, wr_queue_opts(q)->auto_delete,
                                     wr_queue_opts(q)->args};
        return wr_queue_args_check_equivalent(wr_vhost_name(vh), name, &cur, &req, err);
    }
    if (!wr_queue_args_validate(wr_vhost_name(vh), name, args, err))
        return false;
    if (wr_vhost_queue_add(vh, name, &o, &q) != WR_OK)
        return out_of_memory(WR_QUEUE_DECLARE, err);
    *created = true;
    return true;
}

/* The destination of a binding; false with a 404 / 403 in *err. */
static bool find_dest(wr_vhost_t *vh, bool dest_is_queue, wr_bytes_t name, uint32_t method, wr_dest_t *d,
                      wr_amqp_error_t *err)
{
    if (dest_is_queue) {
        d->ptr = wr_vhost_queue(vh, name);
        d->kind = WR_DEST_QUEUE;
        return d->ptr || not_found(vh, "queue", name, method, err);
    }
    if (name.len == 0)
        return default_exchange(method, err);
    d->ptr = wr_vhost_exchange(vh, name);
    d->kind = WR_DEST_EXCHANGE;
    return d->ptr || not_found(vh, "exchange", name, method, err);
}

bool wr_mgmt_topo_bind(wr_vhost_t *vh, wr_bytes_t source, bool dest_is_queue, wr_bytes_t dest, wr_bytes_t key,
                       wr_bytes_t args, wr_amqp_error_t *err)
{
    uint32_t method = dest_is_queue ? WR_QUEUE_BIND : WR_EXCHANGE_BIND;
    wr_exchange_t *x;
    wr_dest_t d;
    int rc;

    if (source.len == 0)
        return default_exchange(method, err);
    x = wr_vhost_exchange(vh, source);
    if (!x)
        return not_found(vh, "exchange", source, method, err);
    if (!find_dest(vh, dest_is_queue, dest, method, &d, err) ||
        !wr_handle_exchange_check_binding(x, args, method, err))
        return false;
    rc = wr_vhost_bind(vh, x, d, key, args);
    return rc == WR_OK || rc == WR_EEXIST || out_of_memory(method, err);
}

typedef struct {
    wr_bytes_t source;
    wr_mgmt_binding_fn fn;
    void *ud;
} foreach_t;

static void foreach_binding(void *ud, wr_dest_t d, wr_bytes_t key, wr_bytes_t args)
{
    foreach_t *f = ud;
    bool is_queue = d.kind == WR_DEST_QUEUE;

    f->fn(f->ud, f->source, is_queue ? wr_queue_name(d.ptr) : wr_exchange_name(d.ptr), is_queue, key, args);
}

void wr_mgmt_topo_foreach_binding(const wr_vhost_t *vh, bool implicit, wr_mgmt_binding_fn fn, void *ud)
{
    wr_map_iter_t it = {0};
    void *obj;

    while (implicit && wr_map_next(wr_vhost_queues(vh), &it, NULL, &obj))
        fn(ud, WR_BYTES_LIT(""), wr_queue_name(obj), true, wr_queue_name(obj), (wr_bytes_t){NULL, 0});
    it = (wr_map_iter_t){0};
    while (wr_map_next(wr_vhost_exchanges(vh), &it, NULL, &obj)) {
        foreach_t f = {wr_exchange_name(obj), fn, ud};

        wr_exchange_foreach_binding(obj, foreach_binding, &f);
    }
}

/* ---------------------------------------------------------------- request helpers */

/* A name from the URL: "amq.default" names the default exchange. */
static wr_bytes_t exchange_name(const char *seg)
{
    return strcmp(seg, "amq.default") == 0 ? WR_BYTES_LIT("") : wr_bytes_str(seg);
}

static bool name_ok(wr_mgmt_req_t *r, const char *kind, const char *name)
{
    if (strlen(name) <= MAX_NAME_LEN)
        return true;
    wr_mgmt_error(r, 400, "bad_request", "%s name longer than %d bytes", kind, MAX_NAME_LEN);
    return false;
}

/* A boolean body field; RabbitMQ also takes "true" and "false" strings, and
 * refuses anything else with the reason ["not_boolean", VALUE]. */
static bool get_bool(wr_mgmt_req_t *r, const json_t *body, const char *key, bool *out)
{
    const json_t *v = json_object_get(body, key);

    if (!v)
        return true;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v) &&
        (strcmp(json_string_value(v), "true") == 0 || strcmp(json_string_value(v), "false") == 0)) {
        *out = strcmp(json_string_value(v), "true") == 0;
        return true;
    }
    wr_mgmt_reply(r, 400, json_pack("{s:s, s:[s, O]}", "error", "bad_request", "reason", "not_boolean", v));
    return false;
}

/* The body's "arguments" as a table in buf; false after replying 400. */
static bool get_args(wr_mgmt_req_t *r, const json_t *body, wr_buf_t *buf, wr_bytes_t *args)
{
    char why[160];

    if (wr_mgmt_json_to_table(json_object_get(body, "arguments"), buf, args, why, sizeof(why)))
        return true;
    wr_mgmt_error(r, 400, "bad_request", "%s", why);
    return false;
}

static bool query_true(const wr_mgmt_req_t *r, const char *key)
{
    const char *v = wr_mgmt_query(r, key);

    return v && strcmp(v, "true") == 0;
}

/* The AMQP method's permission check: r's user may do `what` to the
 * exchange or queue (`kind`) called name in vh; false with a 403 in *err. */
static bool permitted(const wr_mgmt_req_t *r, const wr_vhost_t *vh, wr_perm_t what, const char *kind,
                      wr_bytes_t name, uint32_t method, wr_amqp_error_t *err)
{
    wr_access_who_t who = wr_mgmt_who(r, vh);

    return wr_access_check(&who, what, kind, name, method, err);
}

/* exchange.declare's and queue.declare's checks: configure on the object;
 * for a new one whose arguments name an exchange under `key`, read on it
 * and write on that exchange. False with a 403 in *err. */
static bool may_declare(const wr_mgmt_req_t *r, const wr_vhost_t *vh, const char *kind, wr_bytes_t name,
                        bool exists, wr_bytes_t args, const char *key, wr_amqp_error_t *err)
{
    uint32_t method = strcmp(kind, "queue") == 0 ? WR_QUEUE_DECLARE : WR_EXCHANGE_DECLARE;
    wr_access_who_t who = wr_mgmt_who(r, vh);

    return wr_access_check(&who, WR_PERM_CONFIGURE, kind, name, method, err) &&
           (exists || wr_access_check_arg(&who, kind, name, args, key, method, err));
}

/* queue.bind's and exchange.bind's checks (their unbind's too): write on
 * the destination, read on the source. False with a 403 in *err. */
static bool may_bind(const wr_mgmt_req_t *r, const wr_vhost_t *vh, wr_bytes_t source, bool dest_is_queue,
                     wr_bytes_t dest, wr_amqp_error_t *err)
{
    uint32_t method = dest_is_queue ? WR_QUEUE_BIND : WR_EXCHANGE_BIND;

    return permitted(r, vh, WR_PERM_WRITE, dest_is_queue ? "queue" : "exchange", dest, method, err) &&
           permitted(r, vh, WR_PERM_READ, "exchange", source, method, err);
}

typedef json_t *(*item_fn)(const wr_mgmt_req_t *r, const wr_vhost_t *vh, void *obj);

/* Every exchange or queue of `only` (or of every vhost), sorted by vhost and name. */
static json_t *list_all(const wr_mgmt_req_t *r, const wr_vhost_t *only, bool queues, item_fn fn)
{
    static const char *const order[] = {"vhost", "name", NULL};
    json_t *arr = json_array();
    wr_map_iter_t vit = {0}, it;
    void *vh, *obj;

    while (arr && wr_map_next(r->env->vhosts, &vit, NULL, &vh)) {
        if ((only && vh != only) || !wr_mgmt_may_use(r, vh))
            continue;
        it = (wr_map_iter_t){0};
        while (wr_map_next(queues ? wr_vhost_queues(vh) : wr_vhost_exchanges(vh), &it, NULL, &obj))
            json_array_append_new(arr, fn(r, vh, obj));
    }
    wr_mgmt_sort(arr, order, false);
    return arr;
}

/* One exchange or queue of a list that is cut to a page before its JSON is
 * kept. */
typedef struct {
    const char *vhost;
    const wr_vhost_t *vh;
    void *obj;
    json_t *key; /* the value of ?sort=KEY, when sorting by one */
    char name[MAX_NAME_LEN + 1];
} entry_t;

/* The list order: by key's value if there is one, else by name when
 * by_name; ties by vhost then name. */
static int entry_cmp(const void *pa, const void *pb, void *by_name)
{
    const entry_t *a = pa, *b = pb;
    int c = wr_mgmt_compare_values(a->key, b->key);

    if (c == 0 && *(const bool *)by_name)
        c = strcmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->vhost, b->vhost);
    return c != 0 ? c : strcmp(a->name, b->name);
}

/* Every exchange or queue of `only` (or of every vhost r may use), unsorted;
 * NULL when out of memory. */
static entry_t *list_entries(const wr_mgmt_req_t *r, const wr_vhost_t *only, bool queues, size_t *n)
{
    wr_map_iter_t vit = {0}, it;
    void *vh, *obj;
    entry_t *all;

    *n = 0;
    while (wr_map_next(r->env->vhosts, &vit, NULL, &vh)) {
        if ((!only || vh == only) && wr_mgmt_may_use(r, vh))
            *n += wr_map_count(queues ? wr_vhost_queues(vh) : wr_vhost_exchanges(vh));
    }
    all = malloc(*n * sizeof(*all) + 1);
    *n = 0;
    vit = (wr_map_iter_t){0};
    while (all && wr_map_next(r->env->vhosts, &vit, NULL, &vh)) {
        if ((only && vh != only) || !wr_mgmt_may_use(r, vh))
            continue;
        it = (wr_map_iter_t){0};
        while (wr_map_next(queues ? wr_vhost_queues(vh) : wr_vhost_exchanges(vh), &it, NULL, &obj)) {
            wr_bytes_t name = queues ? wr_queue_name(obj) : wr_exchange_name(obj);
            entry_t *e = &all[(*n)++];

            *e = (entry_t){wr_vhost_name(vh), vh, obj, NULL, ""};
            snprintf(e->name, sizeof(e->name), "%.*s", (int)name.len, (const char *)name.data);
        }
    }
    return all;
}

/* Keeps the entries whose name passes the filter; their number. With a
 * sort key, each keeps that value of its item (built and dropped one at a
 * time: holding 10,000 items at once is what costs). */
static size_t filter_entries(const wr_mgmt_req_t *r, const wr_mgmt_page_t *p, item_fn fn, entry_t *all,
                             size_t n)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (!wr_mgmt_page_match(p, all[i].name))
            continue;
        all[m] = all[i];
        if (p->sort_key) {
            json_t *item = fn(r, all[m].vh, all[m].obj);

            all[m].key = json_incref(wr_mgmt_path_get(item, p->sort_key));
            json_decref(item);
        }
        m++;
    }
    return m;
}

/* A page of the list (wr_mgmt_page_begin): filters and sorts the entries,
 * then builds the JSON of the page's items only. */
static void list_page(wr_mgmt_req_t *r, const wr_vhost_t *only, bool queues, item_fn fn,
                      const wr_mgmt_page_t *p)
{
    size_t n, filtered;
    entry_t *all = list_entries(r, only, queues, &n);
    json_t *items = json_array(), *body;
    int status = 200;
    bool by_name = p->by_name;

    if (!all || !items) {
        free(all);
        json_decref(items);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    filtered = filter_entries(r, p, fn, all, n);
    qsort_r(all, filtered, sizeof(*all), entry_cmp, &by_name);
    for (size_t k = 0; k < filtered; k++) {
        const entry_t *e = &all[p->reverse ? filtered - 1 - k : k];

        if (wr_mgmt_page_wants(p, k))
            json_array_append_new(items, fn(r, e->vh, e->obj));
        json_decref(e->key);
    }
    free(all);
    body = wr_mgmt_page_body(p, n, filtered, items, &status);
    wr_mgmt_reply(r, status, body);
}

/* GET of a list of exchanges or queues: whole, or RabbitMQ's page of it. */
static void list_reply(wr_mgmt_req_t *r, const wr_vhost_t *only, bool queues, item_fn fn)
{
    wr_mgmt_page_t p;

    if (!wr_mgmt_page_begin(r, &p))
        wr_mgmt_reply(r, 200, list_all(r, only, queues, fn));
    else if (p.active)
        list_page(r, only, queues, fn, &p);
    wr_mgmt_page_end(&p);
}

/* ---------------------------------------------------------------- bindings */

typedef struct {
    const char *vhost;
    json_t *arr;
    bool by_source, by_dest;
    wr_bytes_t source, dest;
    bool dest_is_queue;
    const char *props; /* only this properties_key */
    bool found;        /* a binding matched `props`: its key and args follow */
    wr_buf_t key;
    wr_buf_t args;
} collect_t;

static void collect(void *ud, wr_bytes_t source, wr_bytes_t dest, bool dest_is_queue, wr_bytes_t key,
                    wr_bytes_t args)
{
    collect_t *c = ud;
    char *props;
    json_t *b;

    if ((c->by_source && !wr_bytes_eq(source, c->source)) ||
        (c->by_dest && (dest_is_queue != c->dest_is_queue || !wr_bytes_eq(dest, c->dest))))
        return;
    props = wr_mgmt_json_props_key(key, args);
    if (c->props && (!props || strcmp(props, c->props) != 0)) {
        free(props);
        return;
    }
    if (c->props && !c->found) {
        c->found = true;
        wr_buf_put(&c->key, key.data, key.len);
        wr_buf_put(&c->args, args.data, args.len);
    }
    b = wr_mgmt_json_binding(c->vhost, source, dest, dest_is_queue, key, args);
    if (b && props)
        json_object_set_new(b, "properties_key", json_string(props));
    json_array_append_new(c->arr, b);
    free(props);
}

static json_t *bindings_of(const wr_vhost_t *vh, collect_t *c)
{
    static const char *const order[] = {"vhost",       "source",         "destination", "destination_type",
                                        "routing_key", "properties_key", NULL};

    c->vhost = wr_vhost_name(vh);
    c->arr = json_array();
    if (c->arr) {
        wr_mgmt_topo_foreach_binding(vh, true, collect, c);
        wr_mgmt_sort(c->arr, order, false);
    }
    return c->arr;
}

/* GET /api/bindings[/vhost]. */
static void list_bindings(wr_mgmt_req_t *r, const wr_vhost_t *only)
{
    json_t *all = json_array();
    wr_map_iter_t it = {0};
    void *vh;

    while (all && wr_map_next(r->env->vhosts, &it, NULL, &vh)) {
        collect_t c = {.arr = NULL};

        if ((only && vh != only) || !wr_mgmt_may_use(r, vh))
            continue;
        json_array_extend(all, bindings_of(vh, &c));
        json_decref(c.arr);
    }
    wr_mgmt_reply(r, all ? 200 : 500, all);
}

/* "DEST/PROPS" with both percent-encoded, malloc'd; NULL on ENOMEM. */
static char *location_of(wr_bytes_t dest, const char *props)
{
    char *d = evhttp_uriencode((const char *)dest.data, (ev_ssize_t)dest.len, 0);
    char *p = evhttp_uriencode(props, -1, 0);
    size_t n = d && p ? strlen(d) + strlen(p) + 2 : 0;
    char *out = n ? malloc(n) : NULL;

    if (out)
        snprintf(out, n, "%s/%s", d, p);
    free(d);
    free(p);
    return out;
}

/* Cluster mode: the ends known here (RabbitMQ's 404s), then the group binds. */
static void propose_binding(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t source, bool dest_is_queue,
                            wr_bytes_t dest, wr_bytes_t key, wr_bytes_t args, const char *location)
{
    uint32_t method = dest_is_queue ? WR_QUEUE_BIND : WR_EXCHANGE_BIND;
    wr_exchange_t *x = wr_vhost_exchange(vh, source);
    bool dest_known = dest_is_queue ? wr_vhost_queue(vh, dest) != NULL ||
                                          wr_meta_queue_find(wr_mgmt_meta(r), wr_vhost_name(vh), dest, NULL)
                                    : dest.len > 0 && wr_vhost_exchange(vh, dest) != NULL;
    wr_amqp_error_t err;

    if (source.len == 0 || (!dest_is_queue && dest.len == 0))
        default_exchange(method, &err);
    else if (x == NULL)
        not_found(vh, "exchange", source, method, &err);
    else if (!dest_known)
        not_found(vh, dest_is_queue ? "queue" : "exchange", dest, method, &err);
    if (source.len == 0 || (!dest_is_queue && dest.len == 0) || x == NULL || !dest_known ||
        !wr_handle_exchange_check_binding(x, args, method, &err)) {
        wr_mgmt_amqp_error(r, &err);
        return;
    }
    wr_mgmt_meta_propose(r,
                         wr_meta_cmd_binding(wr_vhost_name(vh), true, source,
                                             dest_is_queue ? WR_DEST_QUEUE : WR_DEST_EXCHANGE, dest, key,
                                             args),
                         201, location);
}

static void create_binding(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t source, bool dest_is_queue,
                           wr_bytes_t dest)
{
    json_t *body = wr_mgmt_body(r);
    wr_buf_t buf = WR_BUF_INIT;
    const json_t *key;
    wr_bytes_t args;
    wr_amqp_error_t err;
    char *props, *location;

    if (!body)
        return;
    key = json_object_get(body, "routing_key");
    if (key && !json_is_string(key)) {
        wr_mgmt_error(r, 400, "bad_request", "routing_key must be a string");
    } else if (get_args(r, body, &buf, &args)) {
        wr_bytes_t k = key ? (wr_bytes_t){(const uint8_t *)json_string_value(key), json_string_length(key)}
                           : WR_BYTES_LIT("");

        /* RabbitMQ's Location: DEST/PROPS, relative to the request. */
        props = wr_mgmt_json_props_key(k, args);
        location = props ? location_of(dest, props) : NULL;
        if (!may_bind(r, vh, source, dest_is_queue, dest, &err)) {
            wr_mgmt_amqp_error(r, &err);
        } else if (wr_mgmt_meta(r) != NULL) {
            propose_binding(r, vh, source, dest_is_queue, dest, k, args, location);
        } else if (!wr_mgmt_topo_bind(vh, source, dest_is_queue, dest, k, args, &err)) {
            wr_mgmt_amqp_error(r, &err);
        } else {
            if (location)
                evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location", location);
            wr_mgmt_reply(r, 201, NULL);
        }
        free(location);
        free(props);
    }
    wr_buf_free(&buf);
    json_decref(body);
}

static void delete_binding(wr_mgmt_req_t *r, wr_vhost_t *vh, collect_t *c)
{
    wr_exchange_t *x = wr_vhost_exchange(vh, c->source);
    wr_amqp_error_t err;
    wr_dest_t d;

    json_decref(bindings_of(vh, c));
    if (!c->found) {
        wr_mgmt_not_found(r);
        return;
    }
    if (!may_bind(r, vh, c->source, c->dest_is_queue, c->dest, &err)) {
        wr_mgmt_amqp_error(r, &err);
        return;
    }
    if (c->source.len == 0) {
        default_exchange(WR_QUEUE_UNBIND, &err);
        wr_mgmt_amqp_error(r, &err);
        return;
    }
    if (wr_mgmt_meta(r) != NULL) {
        wr_mgmt_meta_propose(r,
                             wr_meta_cmd_binding(wr_vhost_name(vh), false, c->source,
                                                 c->dest_is_queue ? WR_DEST_QUEUE : WR_DEST_EXCHANGE, c->dest,
                                                 (wr_bytes_t){c->key.data, c->key.len},
                                                 (wr_bytes_t){c->args.data, c->args.len}),
                             204, NULL);
        return;
    }
    find_dest(vh, c->dest_is_queue, c->dest, WR_QUEUE_UNBIND, &d, &err);
    wr_vhost_unbind(vh, x, d, (wr_bytes_t){c->key.data, c->key.len}, (wr_bytes_t){c->args.data, c->args.len});
    wr_mgmt_reply(r, 204, NULL);
}

/* /api/bindings/VHOST/e/SOURCE/{q,e}/DEST[/PROPS]. */
static void binding_pair(wr_mgmt_req_t *r, wr_vhost_t *vh)
{
    collect_t c = {.by_source = true, .by_dest = true, .key = WR_BUF_INIT, .args = WR_BUF_INIT};
    json_t *found;

    c.source = exchange_name(r->seg[3]);
    c.dest_is_queue = strcmp(r->seg[4], "q") == 0;
    c.dest = c.dest_is_queue ? wr_bytes_str(r->seg[5]) : exchange_name(r->seg[5]);
    /* Missing objects: a POST reports them (404 not_found), a GET lists
     * no bindings, as RabbitMQ does. */
    if (strcmp(r->seg[2], "e") != 0 || (!c.dest_is_queue && strcmp(r->seg[4], "e") != 0)) {
        wr_mgmt_not_found(r);
        return;
    }
    if (r->nseg == 6 && r->method == WR_MGMT_POST) {
        create_binding(r, vh, c.source, c.dest_is_queue, c.dest);
    } else if (r->nseg == 6 && r->method == WR_MGMT_GET) {
        wr_mgmt_reply(r, 200, bindings_of(vh, &c));
    } else if (r->nseg == 7 && (r->method == WR_MGMT_GET || r->method == WR_MGMT_DELETE)) {
        c.props = r->seg[6];
        if (r->method == WR_MGMT_DELETE) {
            delete_binding(r, vh, &c);
        } else {
            found = json_incref(json_array_get(bindings_of(vh, &c), 0));
            json_decref(c.arr);
            if (found)
                wr_mgmt_reply(r, 200, found);
            else
                wr_mgmt_not_found(r);
        }
    } else {
        wr_mgmt_not_allowed(r, r->nseg == 6 ? "GET, POST" : "GET, DELETE");
    }
    wr_buf_free(&c.key);
    wr_buf_free(&c.args);
}

void wr_mgmt_topo_bindings(wr_mgmt_req_t *r)
{
    wr_vhost_t *vh = NULL;

    if (r->nseg == 1 || r->nseg == 2) {
        if (r->method != WR_MGMT_GET)
            wr_mgmt_not_allowed(r, "GET");
        else if (r->nseg == 1 || (vh = wr_mgmt_vhost(r, 1)))
            list_bindings(r, vh);
        return;
    }
    if (r->nseg < 6 || r->nseg > 7) {
        wr_mgmt_not_found(r);
        return;
    }
    vh = wr_mgmt_vhost(r, 1);
    if (vh)
        binding_pair(r, vh);
}

/* GET /api/exchanges/VHOST/NAME/bindings/{source,destination}, /api/queues/VHOST/NAME/bindings. */
static void object_bindings(wr_mgmt_req_t *r, const wr_vhost_t *vh, wr_bytes_t name, bool is_queue,
                            bool as_source)
{
    collect_t c = {.key = WR_BUF_INIT, .args = WR_BUF_INIT};

    if (r->method != WR_MGMT_GET) {
        wr_mgmt_not_allowed(r, "GET");
        return;
    }
    c.by_source = as_source;
    c.source = name;
    c.by_dest = !as_source;
    c.dest = name;
    c.dest_is_queue = is_queue;
    wr_mgmt_reply(r, 200, bindings_of(vh, &c));
}

/* ---------------------------------------------------------------- exchanges */

/* An exchange shows "policy" only while one applies to it, as in RabbitMQ. */
static json_t *exchange_item(const wr_mgmt_req_t *r, const wr_vhost_t *vh, void *x)
{
    json_t *obj = wr_mgmt_json_exchange(x, wr_vhost_name(vh));
    const wr_policy_t *p = wr_policy_match(r->env->policies, wr_vhost_name(vh), wr_exchange_name(x), false);

    if (obj && p)
        json_object_set_new(obj, "policy", json_string(p->name));
    return obj;
}

/* Cluster mode, a new exchange: checked here, made by the metadata group. */
static void propose_exchange(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t name, const char *type,
                             wr_exchange_opts_t *o)
{
    wr_amqp_error_t err;

    o->type = wr_router_type_find(wr_bytes_str(type));
    if (o->type == NULL)
        wr_amqp_error_set(&err, WR_AMQP_COMMAND_INVALID, WR_EXCHANGE_DECLARE, "unknown exchange type '%s'",
                          type);
    else if (name.len == 0)
        default_exchange(WR_EXCHANGE_DECLARE, &err);
    if (o->type == NULL || name.len == 0 ||
        !wr_handle_exchange_check_new(wr_vhost_name(vh), name, o->args, &err))
        wr_mgmt_amqp_error(r, &err);
    else
        wr_mgmt_meta_propose(r, wr_meta_cmd_exchange_declare(wr_vhost_name(vh), name, o), 201, NULL);
}

static void put_exchange(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t name)
{
    json_t *body = wr_mgmt_body(r);
    bool durable = false, auto_delete = false, internal = false, created;
    const json_t *type;
    wr_buf_t buf = WR_BUF_INIT;
    wr_bytes_t args;
    wr_amqp_error_t err;

    if (!body)
        return;
    type = json_object_get(body, "type");
    if (type && !json_is_string(type)) {
        wr_mgmt_error(r, 400, "bad_request", "type must be a string");
    } else if (get_bool(r, body, "durable", &durable) && get_bool(r, body, "auto_delete", &auto_delete) &&
               get_bool(r, body, "internal", &internal) && get_args(r, body, &buf, &args)) {
        if (!may_declare(r, vh, "exchange", name, wr_vhost_exchange(vh, name) != NULL, args,
                         "alternate-exchange", &err))
            wr_mgmt_amqp_error(r, &err);
        else if (wr_mgmt_meta(r) != NULL && wr_vhost_exchange(vh, name) == NULL)
            propose_exchange(r, vh, name, type ? json_string_value(type) : "direct",
                             &(wr_exchange_opts_t){NULL, durable, auto_delete, internal, args});
        else if (!wr_mgmt_topo_declare_exchange(vh, name, type ? json_string_value(type) : "direct", durable,
                                                auto_delete, internal, args, &created, &err))
            wr_mgmt_amqp_error(r, &err);
        else
            wr_mgmt_reply(r, created ? 201 : 204, NULL);
    }
    wr_buf_free(&buf);
    json_decref(body);
}

static void delete_exchange(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_exchange_t *x)
{
    wr_bytes_t name = wr_exchange_name(x);
    wr_amqp_error_t err;

    if (name.len == 0) {
        default_exchange(WR_EXCHANGE_DELETE, &err);
        wr_mgmt_amqp_error(r, &err);
    } else if (wr_bytes_has_prefix(name, "amq.")) {
        wr_mgmt_error(r, 401, "not_authorised", "Access refused.");
    } else if (!permitted(r, vh, WR_PERM_CONFIGURE, "exchange", name, WR_EXCHANGE_DELETE, &err)) {
        wr_mgmt_amqp_error(r, &err);
    } else if (query_true(r, "if-unused") && wr_exchange_binding_count(x) > 0) {
        wr_mgmt_error(r, 400, "bad_request", "exchange '%.*s' in vhost '%s' in use", (int)name.len,
                      (const char *)name.data, wr_vhost_name(vh));
    } else if (wr_mgmt_meta(r) != NULL) {
        wr_mgmt_meta_propose(r, wr_meta_cmd_exchange_delete(wr_vhost_name(vh), name, false), 204, NULL);
    } else {
        wr_vhost_exchange_delete(vh, x);
        wr_mgmt_reply(r, 204, NULL);
    }
}

/* The publish request's payload bytes: the string itself, or its base64
 * decoding into *decoded (malloc'd). False after replying 400 / 500. */
static bool publish_payload(wr_mgmt_req_t *r, const json_t *payload, bool base64, uint8_t **decoded,
                            wr_bytes_t *out)
{
    const char *s = json_string_value(payload);
    size_t len = json_string_length(payload);
    long n;

    if (!base64) {
        *out = (wr_bytes_t){(const uint8_t *)s, len};
        return true;
    }
    *decoded = malloc(len / 4 * 3 + 3);
    if (!*decoded) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return false;
    }
    n = wr_base64_decode(s, len, *decoded, len / 4 * 3 + 3);
    if (n < 0) {
        wr_mgmt_error(r, 400, "bad_request", "payload is not valid base64");
        return false;
    }
    *out = (wr_bytes_t){*decoded, (size_t)n};
    return true;
}

/* POST /api/exchanges/VHOST/NAME/publish: routing_key, properties, payload,
 * payload_encoding; replies {"routed": bool}. */
static void publish(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_exchange_t *x)
{
    static const char *const required[] = {"routing_key", "properties", "payload", "payload_encoding"};
    json_t *body = wr_mgmt_body(r);
    const json_t *payload, *enc, *key;
    wr_buf_t header = WR_BUF_INIT, headers = WR_BUF_INIT;
    uint64_t max = r->env->cfg->max_message_size;
    uint8_t *decoded = NULL;
    wr_message_t *msg = NULL;
    wr_dest_set_t route;
    wr_props_t props;
    wr_bytes_t data;
    size_t routed;
    char why[160];

    wr_dest_set_init(&route);
    if (!body)
        return;
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!json_object_get(body, required[i])) {
            wr_mgmt_error(r, 400, "bad_request", "[{key_missing,%s}]", required[i]);
            goto out;
        }
    }
    key = json_object_get(body, "routing_key");
    payload = json_object_get(body, "payload");
    enc = json_object_get(body, "payload_encoding");
    if (!json_is_string(key) || json_string_length(key) > MAX_NAME_LEN || !json_is_string(payload) ||
        !json_is_string(enc) ||
        (strcmp(json_string_value(enc), "string") != 0 && strcmp(json_string_value(enc), "base64") != 0)) {
        wr_mgmt_error(r, 400, "bad_request",
                      "routing_key (at most %d bytes) and payload must be strings, payload_encoding string "
                      "or base64",
                      MAX_NAME_LEN);
        goto out;
    }
    if (!wr_mgmt_json_to_props(json_object_get(body, "properties"), &props, &headers, why, sizeof(why))) {
        wr_mgmt_error(r, 400, "bad_request", "%s", why);
        goto out;
    }
    if ((props.flags & WR_PROP_USER_ID) && !wr_bytes_eq_str(props.user_id, r->user)) {
        wr_mgmt_error(r, 400, "bad_request", "user_id property set to '%.*s' but authenticated user was '%s'",
                      (int)props.user_id.len, (const char *)props.user_id.data, r->user);
        goto out;
    }
    if (wr_exchange_opts(x)->internal) {
        wr_mgmt_error(r, 401, "not_authorised", "Access refused.");
        goto out;
    }
    if (!publish_payload(r, payload, strcmp(json_string_value(enc), "base64") == 0, &decoded, &data))
        goto out;
    if (data.len > max) {
        wr_mgmt_error(r, 400, "bad_request", "message size %zu is larger than configured max size %llu",
                      data.len, (unsigned long long)max);
        goto out;
    }
    props.body_size = data.len;
    wr_props_encode(&header, &props);
    if (wr_buf_ok(&header))
        msg = wr_message_new(wr_exchange_name(x),
                             (wr_bytes_t){(const uint8_t *)json_string_value(key), json_string_length(key)},
                             (wr_bytes_t){header.data, header.len}, data.len);
    if (!msg) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        goto out;
    }
    if (data.len > 0)
        memcpy(msg->body, data.data, data.len);
    msg->body_filled = data.len;
    if (!wr_vhost_publish(vh, x, msg, &route, NULL, &routed, NULL)) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        goto out;
    }
    wr_mgmt_reply(r, 200, json_pack("{s:b}", "routed", routed > 0));
out:
    wr_message_unref(msg);
    free(decoded);
    wr_dest_set_free(&route);
    wr_buf_free(&header);
    wr_buf_free(&headers);
    json_decref(body);
}

/* RabbitMQ publishes on a channel and reports the channel's error as a 400:
 * write on the exchange comes first, then whether it exists. */
static void publish_checked(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_exchange_t *x)
{
    wr_amqp_error_t err;

    if (!permitted(r, vh, WR_PERM_WRITE, "exchange", exchange_name(r->seg[2]), WR_BASIC_PUBLISH, &err))
        wr_mgmt_error(r, 400, "bad_request", "%u %s", (unsigned)err.code, err.text);
    else if (!x)
        wr_mgmt_error(r, 400, "bad_request", "404 NOT_FOUND - no exchange '%s' in vhost '%s'", r->seg[2],
                      wr_vhost_name(vh));
    else
        publish(r, vh, x);
}

void wr_mgmt_topo_exchanges(wr_mgmt_req_t *r)
{
    wr_vhost_t *vh = NULL;
    wr_exchange_t *x;

    if (r->nseg <= 2) {
        if (r->method != WR_MGMT_GET)
            wr_mgmt_not_allowed(r, "GET");
        else if (r->nseg == 1 || (vh = wr_mgmt_vhost(r, 1)))
            list_reply(r, vh, false, exchange_item);
        return;
    }
    if (r->nseg > 5) {
        wr_mgmt_not_found(r);
        return;
    }
    if (!(vh = wr_mgmt_vhost(r, 1)) || !name_ok(r, "exchange", r->seg[2]))
        return;
    x = wr_vhost_exchange(vh, exchange_name(r->seg[2]));
    if (r->nseg == 3 && r->method == WR_MGMT_PUT) {
        put_exchange(r, vh, exchange_name(r->seg[2]));
    } else if (r->nseg == 4 && r->method == WR_MGMT_POST && strcmp(r->seg[3], "publish") == 0) {
        publish_checked(r, vh, x);
    } else if (!x) {
        wr_mgmt_not_found(r);
    } else if (r->nseg == 3) {
        if (r->method == WR_MGMT_GET)
            wr_mgmt_reply(r, 200, exchange_item(r, vh, x));
        else if (r->method == WR_MGMT_DELETE)
            delete_exchange(r, vh, x);
        else
            wr_mgmt_not_allowed(r, "GET, PUT, DELETE");
    } else if (r->nseg == 4 && strcmp(r->seg[3], "publish") == 0) {
        wr_mgmt_not_allowed(r, "POST");
    } else if (r->nseg == 5 && strcmp(r->seg[3], "bindings") == 0 &&
               (strcmp(r->seg[4], "source") == 0 || strcmp(r->seg[4], "destination") == 0)) {
        object_bindings(r, vh, wr_exchange_name(x), false, strcmp(r->seg[4], "source") == 0);
    } else {
        wr_mgmt_not_found(r);
    }
}

/* ---------------------------------------------------------------- queues */

static void find_exclusive(void *ud, const wr_consumer_t *c)
{
    const wr_consumer_t **found = ud;

    if (c->exclusive)
        *found = c;
}

/* A consumer's tag, or JSON null without one. */
static json_t *tag_or_null(const wr_consumer_t *c)
{
    return c ? wr_mgmt_json_bytes(c->tag) : json_null();
}

/* A queue's type as declared: a node that is not a quorum queue's member
 * serves it through a proxy, but it is a quorum queue all the same. */
static const char *type_name(const wr_queue_t *q)
{
    if (wr_remote_queue_home(q) != NULL && wr_quorum_args_want(wr_queue_opts(q)->args))
        return "quorum";
    return wr_queue_type_name(q);
}

/*
 * A node that is not a quorum queue's member knows its members from the
 * metadata group and names as leader the member leadership belongs to (the
 * first: the leader hands it there whenever it is up) while that node is up.
 */
static bool proxy_status(const wr_mgmt_req_t *r, const wr_vhost_t *vh, const wr_queue_t *q,
                         wr_rgroup_status_t *st)
{
    wr_meta_t *meta = wr_mgmt_meta((wr_mgmt_req_t *)r);

    if (meta == NULL || wr_remote_queue_home(q) == NULL)
        return false;
    *st = (wr_rgroup_status_t){.role = "none"};
    st->n_members = wr_meta_queue_members(meta, wr_vhost_name(vh), wr_queue_name(q), st->members, 9);
    if (st->n_members > 0 && wr_peer_up(r->env->peers, st->members[0]))
        st->leader = st->members[0];
    return st->n_members > 0;
}

/* On the leader, each member: the index it acknowledged and how far behind it is (elsewhere: none). */
static json_t *raft_members(const wr_rgroup_status_t *st)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && strcmp(st->role, "leader") == 0 && i < st->n_members; i++)
        json_array_append_new(a, json_pack("{s:s, s:I, s:I}", "node", st->members[i], "match_index",
                                           (json_int_t)st->match[i], "lag",
                                           (json_int_t)(st->last_index - st->match[i])));
    return a;
}

/* The members in the record's order (leadership order), so that every node
 * lists them alike; a member's group has them in its Raft configuration's
 * order. The group's list when the record is not at hand. */
static size_t record_order(const wr_mgmt_req_t *r, const wr_vhost_t *vh, const wr_queue_t *q,
                           const wr_rgroup_status_t *st, const char **out)
{
    wr_meta_t *meta = wr_mgmt_meta((wr_mgmt_req_t *)r);
    size_t n = meta != NULL ? wr_meta_queue_members(meta, wr_vhost_name(vh), wr_queue_name(q), out, 9) : 0;

    if (n > 0)
        return n;
    memcpy(out, st->members, st->n_members * sizeof(*out));
    return st->n_members;
}

/* A quorum queue's group, as RabbitMQ lists it: leader (also its node), members, and those online. */
static void quorum_fields(const wr_mgmt_req_t *r, json_t *obj, const wr_vhost_t *vh, const wr_queue_t *q)
{
    json_t *members = json_array(), *online = json_array();
    wr_rgroup_status_t st;
    bool member = wr_quorum_queue_status(q, &st);
    const char *names[9];
    size_t n;

    if ((!member && !proxy_status(r, vh, q, &st)) || members == NULL || online == NULL) {
        json_decref(members);
        json_decref(online);
        return;
    }
    n = record_order(r, vh, q, &st, names);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(members, json_string(names[i]));
        if (strcmp(names[i], r->node) == 0 || wr_peer_up(r->env->peers, names[i]))
            json_array_append_new(online, json_string(names[i]));
    }
    json_object_set_new(obj, "members", members);
    json_object_set_new(obj, "online", online);
    json_object_set_new(obj, "leader", st.leader != NULL ? json_string(st.leader) : json_null());
    /* This member's view of the group's log (warren's own field). */
    if (member)
        json_object_set_new(
            obj, "raft",
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "role", st.role, "term",
                      (json_int_t)st.term, "commit_index", (json_int_t)st.commit, "last_applied",
                      (json_int_t)st.applied, "last_index", (json_int_t)st.last_index, "snapshot_index",
                      (json_int_t)st.snapshot_index, "elections", (json_int_t)st.elections,
                      "proposals_timed_out", (json_int_t)st.timeouts, "members", raft_members(&st)));
    if (st.leader != NULL)
        json_object_set_new(obj, "node", json_string(st.leader));
}

static json_t *queue_item(const wr_mgmt_req_t *r, const wr_vhost_t *vh, void *q)
{
    json_t *obj = wr_mgmt_json_queue(q, wr_vhost_name(vh));
    const wr_policy_t *p = wr_policy_match(r->env->policies, wr_vhost_name(vh), wr_queue_name(q), true);
    const wr_consumer_t *exclusive = NULL;
    wr_queue_info_t info;
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t rt;
    wr_mgmt_activity_t act;

    if (!obj)
        return NULL;
    wr_queue_info(q, &info);
    wr_mgmt_stats_queue_counts(q, &c);
    wr_mgmt_stats_queue_rates(r->stats, q, &rt);
    wr_mgmt_stats_queue_activity(r->stats, q, &act);
    wr_mgmt_json_set_totals(obj, &c, &rt);
    wr_mgmt_json_set_queue_figures(obj, q, &act);
    wr_queue_foreach_consumer(q, find_exclusive, &exclusive);
    json_object_update_new(
        obj, json_pack("{s:b, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:n, s:o, s:o}", "exclusive",
                       wr_queue_opts(q)->exclusive, "type", type_name(q), "state", info.state, "node",
                       wr_remote_queue_home(q) ? wr_remote_queue_home(q) : r->node, "consumers",
                       (json_int_t)wr_queue_consumer_count(q), "message_stats",
                       wr_mgmt_json_message_stats(&c, &rt), "policy", p ? json_string(p->name) : json_null(),
                       "effective_policy_definition", p ? json_deep_copy(p->definition) : json_object(),
                       "operator_policy", "exclusive_consumer_tag", tag_or_null(exclusive),
                       "single_active_consumer_tag", tag_or_null(wr_queue_active_consumer(q))));
    quorum_fields(r, obj, vh, q);
    return obj;
}

/* GET /api/queues/VHOST/NAME: the listed fields and consumer_details. */
static json_t *queue_one(const wr_mgmt_req_t *r, const wr_vhost_t *vh, wr_queue_t *q)
{
    json_t *obj = queue_item(r, vh, q);

    if (obj)
        json_object_set_new(obj, "consumer_details", wr_mgmt_conns_queue_consumers(r, vh, q));
    return obj;
}

/* Cluster mode, a queue not living here: known to the group (equivalence
 * checked against its record), or new, made by the group with this node as
 * its home. */
static void propose_queue(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_args_decl_t *d)
{
    wr_meta_t *meta = wr_mgmt_meta(r);
    wr_amqp_error_t err;

    if (!wr_queue_args_check_name(name, &err))
        wr_mgmt_amqp_error(r, &err);
    else if (wr_meta_queue_find(meta, wr_vhost_name(vh), name, NULL) &&
             !wr_meta_queue_equivalent(meta, wr_vhost_name(vh), name, d, &err))
        wr_mgmt_amqp_error(r, &err);
    else if (wr_meta_queue_find(meta, wr_vhost_name(vh), name, NULL))
        wr_mgmt_reply(r, 204, NULL);
    else if (!wr_queue_args_validate(wr_vhost_name(vh), name, d->args, &err))
        wr_mgmt_amqp_error(r, &err);
    else
        wr_mgmt_meta_propose(r, wr_meta_cmd_queue_declare(wr_vhost_name(vh), name, d, wr_meta_self(meta)),
                             201, NULL);
}

static void put_queue(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_bytes_t name)
{
    json_t *body = wr_mgmt_body(r);
    bool durable = false, auto_delete = false, created;
    wr_buf_t buf = WR_BUF_INIT;
    wr_bytes_t args;
    wr_amqp_error_t err;

    if (!body)
        return;
    if (get_bool(r, body, "durable", &durable) && get_bool(r, body, "auto_delete", &auto_delete) &&
        get_args(r, body, &buf, &args)) {
        if (!may_declare(r, vh, "queue", name, wr_vhost_queue(vh, name) != NULL, args,
                         "x-dead-letter-exchange", &err))
            wr_mgmt_amqp_error(r, &err);
        else if (wr_mgmt_meta(r) != NULL && wr_vhost_queue(vh, name) == NULL)
            propose_queue(r, vh, name, &(wr_queue_args_decl_t){durable, auto_delete, args});
        else if (!wr_mgmt_topo_declare_queue(vh, name, durable, auto_delete, args, &created, &err))
            wr_mgmt_amqp_error(r, &err);
        else
            wr_mgmt_reply(r, created ? 201 : 204, NULL);
    }
    wr_buf_free(&buf);
    json_decref(body);
}

static void delete_queue(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_queue_t *q)
{
    wr_bytes_t name = wr_queue_name(q);
    wr_amqp_error_t err;

    if (!permitted(r, vh, WR_PERM_CONFIGURE, "queue", name, WR_QUEUE_DELETE, &err))
        wr_mgmt_amqp_error(r, &err);
    else if (query_true(r, "if-empty") && wr_queue_ready(q) > 0)
        wr_mgmt_error(r, 400, "bad_request", "queue '%.*s' in vhost '%s' not empty", (int)name.len,
                      (const char *)name.data, wr_vhost_name(vh));
    else if (query_true(r, "if-unused") && wr_queue_consumer_count(q) > 0)
        wr_mgmt_error(r, 400, "bad_request", "queue '%.*s' in vhost '%s' in use", (int)name.len,
                      (const char *)name.data, wr_vhost_name(vh));
    else if (wr_mgmt_meta(r) != NULL && !wr_queue_opts(q)->exclusive)
        wr_mgmt_meta_propose(r, wr_meta_cmd_queue_delete(wr_vhost_name(vh), name), 204, NULL);
    else {
        wr_vhost_queue_delete(vh, q);
        wr_mgmt_reply(r, 204, NULL);
    }
}

static const char *const ackmodes[] = {"ack_requeue_true", "reject_requeue_true", "ack_requeue_false",
                                       "reject_requeue_false"};

/* One message of a get reply; NULL on ENOMEM. */
static json_t *get_item(wr_message_t *m, bool redelivered, size_t left, bool base64, long long truncate)
{
    const wr_props_t *p = wr_message_props(m);
    wr_bytes_t body = {m->body, (size_t)m->body_size};
    json_t *obj;

    if (truncate >= 0 && (uint64_t)truncate < body.len)
        body.len = (size_t)truncate;
    obj = json_pack("{s:I, s:b, s:o, s:o, s:I, s:o}", "payload_bytes", (json_int_t)m->body_size,
                    "redelivered", redelivered, "exchange", wr_mgmt_json_bytes(m->exchange), "routing_key",
                    wr_mgmt_json_bytes(m->routing_key), "message_count", (json_int_t)left, "properties",
                    p ? wr_mgmt_json_props(p) : json_object());
    if (obj && !wr_mgmt_json_set_payload(obj, body, base64)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* A non-negative number, as JSON or as a string of digits (rabbitmqadmin
 * sends "1"). */
static bool get_count(const json_t *v, long long *out)
{
    const char *s = json_string_value(v);
    char *end;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0;
    }
    if (!s || *s < '0' || *s > '9')
        return false;
    *out = strtoll(s, &end, 10);
    return *end == '\0' && *out >= 0 && *out < LLONG_MAX;
}

/* 404 for a get of a queue the vhost does not have, with a channel's text. */
static void no_such_queue(wr_mgmt_req_t *r, wr_bytes_t name, const char *vhost)
{
    wr_mgmt_error(r, 404, "not_found", "NOT_FOUND - no queue '%.*s' in vhost '%s'", (int)name.len,
                  (const char *)name.data, vhost);
}

/* What a get reply showed goes back (the first two ack modes) or was taken
 * as no-ack (the others). */
static void settle_taken(wr_queue_t *q, size_t mode_ix, wr_message_t **taken, const wr_qtoken_t *tok,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (mode_ix < 2)
            wr_queue_settle(q, taken[i], &tok[i], WR_SETTLE_REQUEUE);
        else
            wr_message_unref(taken[i]);
    }
}

/*
 * A get or purge of a queue whose answer comes later: a quorum queue (its
 * member answers once it applied the command) or a queue reached through a
 * proxy (its home answers). The reply waits for it, as RabbitMQ's does; the
 * request's own wr_mgmt_req_t lives on on_request's stack, so this keeps a
 * copy of the fields a reply uses. A get of N asks for one message at a time.
 */
typedef struct {
    wr_mgmt_req_t r; /* mgmt, env, req and method only */
    wr_queue_t *q;   /* a reference */
    char *vhost;
    wr_queue_get_t *get;         /* the get in flight */
    wr_queue_purging_t *purging; /* the purge in flight */
    size_t want, n, cap, mode_ix;
    bool base64;
    long long truncate;
    wr_message_t **taken;
    wr_qtoken_t *tok;
    json_t *arr;
} later_t;

/* Requeues or drops what the gets took (as get_messages), and frees w. */
static void later_free(later_t *w)
{
    settle_taken(w->q, w->mode_ix, w->taken, w->tok, w->n);
    free(w->taken);
    free(w->tok);
    json_decref(w->arr);
    wr_queue_unref(w->q);
    free(w->vhost);
    free(w);
}

/* The client left first: its request is gone. */
static void later_closed(void *arg)
{
    later_t *w = arg;

    if (w->get != NULL)
        w->q->type->get_cancel(w->get);
    if (w->purging != NULL)
        w->q->type->purge_cancel(w->purging);
    later_free(w);
}

/* Replies on r that w's queue could not answer: its home is down (404, as
 * a channel's get), or a quorum queue found no leader in time (503, as a
 * write through the metadata group that timed out). */
static void later_down(wr_mgmt_req_t *r, const later_t *w, uint32_t method)
{
    wr_amqp_error_t err;

    wr_remote_queue_unanswered(w->q, w->vhost, method, &err);
    wr_mgmt_command_error(r, &err);
}

static void later_reply(later_t *w)
{
    wr_mgmt_watch(&w->r, NULL, NULL);
    wr_mgmt_reply(&w->r, 200, w->arr);
    w->arr = NULL;
    later_free(w);
}

static bool later_next(later_t *w);

static void later_got(void *ud, wr_queue_got_t what, wr_message_t *m, const wr_qtoken_t *t, bool redelivered,
                      uint32_t left)
{
    later_t *w = ud;
    json_t *item;

    w->get = NULL;
    if (what != WR_QUEUE_GOT) {
        if (w->n > 0 || what == WR_QUEUE_GOT_EMPTY) {
            later_reply(w);
            return;
        }
        wr_mgmt_watch(&w->r, NULL, NULL);
        if (what == WR_QUEUE_GOT_GONE)
            no_such_queue(&w->r, wr_queue_name(w->q), w->vhost);
        else
            later_down(&w->r, w, WR_BASIC_GET);
        later_free(w);
        return;
    }
    w->taken[w->n] = m;
    w->tok[w->n] = *t;
    w->n++;
    item = get_item(m, redelivered, left, w->base64, w->truncate);
    if (item == NULL || json_array_append_new(w->arr, item) != 0) {
        wr_mgmt_watch(&w->r, NULL, NULL);
        wr_mgmt_error(&w->r, 500, "internal_error", "out of memory");
        later_free(w);
        return;
    }
    if (w->n == w->want || !later_next(w))
        later_reply(w);
}

/* Asks for the next message; false when that cannot start (the reply then
 * carries what was taken). */
static bool later_next(later_t *w)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        wr_message_t **taken = realloc(w->taken, cap * sizeof(*taken));
        wr_qtoken_t *tok = taken != NULL ? realloc(w->tok, cap * sizeof(*tok)) : NULL;

        if (taken != NULL)
            w->taken = taken;
        if (tok == NULL)
            return false;
        w->tok = tok;
        w->cap = cap;
    }
    return w->q->type->get_async(w->q, w->mode_ix >= 2, later_got, w, &w->get) == WR_OK;
}

static later_t *later_new(wr_mgmt_req_t *r, wr_queue_t *q)
{
    later_t *w = calloc(1, sizeof(*w));
    const char *vhost = r->nseg > 1 ? r->seg[1] : "/";

    if (w == NULL || (w->vhost = strdup(vhost)) == NULL) {
        free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return NULL;
    }
    w->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    w->q = wr_queue_ref(q);
    return w;
}

/* get_messages for a queue that answers later. */
static void get_later(wr_mgmt_req_t *r, wr_queue_t *q, size_t want, size_t mode_ix, bool base64,
                      long long truncate)
{
    later_t *w = later_new(r, q);

    if (w == NULL)
        return;
    w->want = want;
    w->mode_ix = mode_ix;
    w->base64 = base64;
    w->truncate = truncate;
    if ((w->arr = json_array()) == NULL || !later_next(w)) {
        if (w->arr == NULL || w->cap == 0)
            wr_mgmt_error(r, 500, "internal_error", "out of memory");
        else
            later_down(r, w, WR_BASIC_GET);
        later_free(w);
        return;
    }
    r->replied = true;
    wr_mgmt_watch(r, later_closed, w);
}

static void later_purged(void *ud, bool done, uint64_t n)
{
    later_t *w = ud;

    w->purging = NULL;
    wr_mgmt_watch(&w->r, NULL, NULL);
    if (done)
        wr_mgmt_reply(&w->r, 204, NULL);
    else
        later_down(&w->r, w, WR_QUEUE_PURGE);
    later_free(w);
}

/* purge for a queue that answers later: 204 once it purged. */
static void purge_later(wr_mgmt_req_t *r, wr_queue_t *q)
{
    later_t *w = later_new(r, q);
    int rc;

    if (w == NULL)
        return;
    rc = q->type->purge_async(q, later_purged, w, &w->purging);
    if (rc != WR_OK) {
        if (rc == WR_ENOENT)
            later_down(r, w, WR_QUEUE_PURGE);
        else
            wr_mgmt_error(r, 500, "internal_error", "out of memory");
        later_free(w);
        return;
    }
    r->replied = true;
    wr_mgmt_watch(r, later_closed, w);
}

/* POST /api/queues/VHOST/NAME/get: count, ackmode, encoding, truncate. The
 * messages are taken first and then requeued or dropped, so a get of N
 * never returns one message twice. */
static void get_messages(wr_mgmt_req_t *r, wr_queue_t *q)
{
    json_t *body = wr_mgmt_body(r), *arr = NULL;
    const json_t *count, *mode, *enc;
    long long want_count, truncate = -1;
    wr_message_t **taken = NULL;
    wr_qtoken_t *tok = NULL;
    size_t n = 0, want, mode_ix = 0;
    bool redelivered;

    if (!body)
        return;
    count = json_object_get(body, "count");
    mode = json_object_get(body, "ackmode");
    enc = json_object_get(body, "encoding");
    if (!count || !mode || !enc) {
        wr_mgmt_error(r, 400, "bad_request", "[{key_missing,%s}]",
                      !count  ? "count"
                      : !mode ? "ackmode"
                              : "encoding");
        goto out;
    }
    for (mode_ix = 0; mode_ix < 4 && json_is_string(mode); mode_ix++) {
        if (strcmp(json_string_value(mode), ackmodes[mode_ix]) == 0)
            break;
    }
    if (!get_count(count, &want_count) || want_count < 1 || mode_ix >= 4 || !json_is_string(enc) ||
        (strcmp(json_string_value(enc), "auto") != 0 && strcmp(json_string_value(enc), "base64") != 0) ||
        (json_object_get(body, "truncate") && !get_count(json_object_get(body, "truncate"), &truncate))) {
        wr_mgmt_error(r, 400, "bad_request",
                      "count must be a positive integer, ackmode one of "
                      "ack_requeue_true, ack_requeue_false, reject_requeue_true, "
                      "reject_requeue_false, encoding auto or base64");
        goto out;
    }
    if (wr_queue_opts(q)->exclusive) {
        wr_mgmt_error(r, 400, "bad_request", "queue '%.*s' is exclusive to the connection that declared it",
                      (int)wr_queue_name(q).len, (const char *)wr_queue_name(q).data);
        goto out;
    }
    if (q->type->get_async != NULL) {
        get_later(r, q, (size_t)want_count, mode_ix, strcmp(json_string_value(enc), "base64") == 0, truncate);
        goto out;
    }
    want = (size_t)want_count;
    if (want > wr_queue_ready(q))
        want = wr_queue_ready(q);
    taken = calloc(want + 1, sizeof(*taken));
    tok = calloc(want + 1, sizeof(*tok));
    arr = json_array();
    if (!taken || !tok || !arr) {
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        goto out;
    }
    while (n < want && wr_queue_get(q, mode_ix >= 2, &taken[n], &tok[n], &redelivered)) {
        json_array_append_new(arr, get_item(taken[n], redelivered, wr_queue_ready(q),
                                            strcmp(json_string_value(enc), "base64") == 0, truncate));
        n++;
    }
    wr_mgmt_reply(r, 200, arr);
    arr = NULL;
out:
    settle_taken(q, mode_ix, taken, tok, n);
    free(taken);
    free(tok);
    json_decref(arr);
    json_decref(body);
}

/* RabbitMQ gets on a channel: read on the queue comes first (401 with the
 * channel's text), then whether it exists (404 likewise). */
static void get_checked(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_queue_t *q)
{
    wr_amqp_error_t err;

    if (!permitted(r, vh, WR_PERM_READ, "queue", wr_bytes_str(r->seg[2]), WR_BASIC_GET, &err))
        wr_mgmt_error(r, 401, "not_authorised", "%s", err.text);
    else if (!q)
        no_such_queue(r, wr_bytes_str(r->seg[2]), wr_vhost_name(vh));
    else
        get_messages(r, q);
}

/* DELETE /api/queues/VHOST/NAME/contents: queue.purge, read on the queue. */
static void purge(wr_mgmt_req_t *r, wr_vhost_t *vh, wr_queue_t *q)
{
    wr_amqp_error_t err;

    if (r->method != WR_MGMT_DELETE) {
        wr_mgmt_not_allowed(r, "DELETE");
    } else if (!permitted(r, vh, WR_PERM_READ, "queue", wr_queue_name(q), WR_QUEUE_PURGE, &err)) {
        wr_mgmt_amqp_error(r, &err);
    } else if (q->type->purge_async != NULL) {
        purge_later(r, q);
    } else {
        wr_queue_purge(q);
        wr_mgmt_reply(r, 204, NULL);
    }
}

void wr_mgmt_topo_queues(wr_mgmt_req_t *r)
{
    wr_vhost_t *vh = NULL;
    wr_queue_t *q;

    if (r->nseg <= 2) {
        if (r->method != WR_MGMT_GET)
            wr_mgmt_not_allowed(r, "GET");
        else if (r->nseg == 1 || (vh = wr_mgmt_vhost(r, 1)))
            list_reply(r, vh, true, queue_item);
        return;
    }
    if (r->nseg > 4) {
        wr_mgmt_not_found(r);
        return;
    }
    if (!(vh = wr_mgmt_vhost(r, 1)) || !name_ok(r, "queue", r->seg[2]))
        return;
    q = wr_vhost_queue(vh, wr_bytes_str(r->seg[2]));
    if (r->nseg == 3 && r->method == WR_MGMT_PUT) {
        put_queue(r, vh, wr_bytes_str(r->seg[2]));
    } else if (r->nseg == 4 && r->method == WR_MGMT_POST && strcmp(r->seg[3], "get") == 0) {
        get_checked(r, vh, q);
    } else if (!q) {
        wr_mgmt_not_found(r);
    } else if (r->nseg == 3) {
        if (r->method == WR_MGMT_GET)
            wr_mgmt_reply(r, 200, queue_one(r, vh, q));
        else if (r->method == WR_MGMT_DELETE)
            delete_queue(r, vh, q);
        else
            wr_mgmt_not_allowed(r, "GET, PUT, DELETE");
    } else if (strcmp(r->seg[3], "contents") == 0) {
        purge(r, vh, q);
    } else if (strcmp(r->seg[3], "get") == 0) {
        wr_mgmt_not_allowed(r, "POST");
    } else if (strcmp(r->seg[3], "bindings") == 0) {
        object_bindings(r, vh, wr_queue_name(q), true, false);
    } else {
        wr_mgmt_not_found(r);
    }
}
