/* SPDX-License-Identifier: MIT */
/*
 * What the management API's files share: one authenticated request with its
 * decoded path, and the reply helpers of mgmt.c. Only broker/mgmt*.c and
 * definitions.c include this header.
 */
#ifndef WR_BROKER_MGMT_INTERNAL_H
#define WR_BROKER_MGMT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <regex.h>

#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "broker/auth/access.h"
#include "broker/mgmt/mgmt_stats.h"
#include "broker/mgmt/mgmt_env.h"
#include "protocol/error.h"

struct evhttp_request;

/* Path segments after /api; more than this is no route of ours. */
#define WR_MGMT_MAX_SEGS 8

typedef enum { WR_MGMT_GET, WR_MGMT_PUT, WR_MGMT_POST, WR_MGMT_DELETE, WR_MGMT_OTHER } wr_mgmt_method_t;

typedef struct {
    const struct wr_mgmt_s *mgmt; /* the API serving it (mgmt.c's own state) */
    const wr_mgmt_env_t *env;
    const wr_mgmt_stats_t *stats;
    const char *node; /* "warren@host" */
    struct evhttp_request *req;
    wr_mgmt_method_t method;
    char *seg[WR_MGMT_MAX_SEGS]; /* percent-decoded, seg[0] is the collection */
    size_t nseg;
    struct evkeyvalq query;
    const wr_user_cfg_t *account; /* the authenticated user */
    const char *user;             /* its name */
    bool replied;
    bool paged; /* the handler cut the list to a page itself (wr_mgmt_page_begin) */
} wr_mgmt_req_t;

/* RabbitMQ's pagination of a list: ?page, page_size, name, use_regex. */
typedef struct {
    long long page, size;
    const char *name; /* filter on the name; NULL or "" for none */
    bool use_regex;
    regex_t re;
    bool by_name;         /* ?sort=name (else the list's own order: vhost, name) */
    const char *sort_key; /* ?sort=KEY other than name: the items' values decide */
    bool reverse;         /* ?sort_reverse=true */
    bool active;          /* the caller cuts the page */
} wr_mgmt_page_t;

/* Splits the raw path after "/api/" into r->seg, percent-decoding each
 * segment (the caller frees them, also on failure). False when it is no
 * API path, has too many segments, or a segment decodes to a NUL. */
bool wr_mgmt_split_path(wr_mgmt_req_t *r, const char *path);
/* Runs the handler of r's collection (r->seg[0]), which replies; 404 when
 * there is none. r->query must be parsed and r->account set. */
void wr_mgmt_route(wr_mgmt_req_t *r);
/* Sends body (taking ownership; NULL for none) with `status`; a GET's 200
 * reply honours the columns, sort and sort_reverse query parameters. */
void wr_mgmt_reply(wr_mgmt_req_t *r, int status, json_t *body);
/* {"error": error, "reason": <formatted>} with `status`. */
void wr_mgmt_error(wr_mgmt_req_t *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 404 {"error":"Object Not Found","reason":"Not Found"}, as RabbitMQ. */
void wr_mgmt_not_found(wr_mgmt_req_t *r);
/* 405 with an Allow header naming `allow` ("GET, PUT, DELETE"). */
void wr_mgmt_not_allowed(wr_mgmt_req_t *r, const char *allow);
/* A read-only resource's checks: 404 unless `found`, then 405 (Allow: GET)
 * unless r is a GET. Whether the request may go on (false: replied). */
bool wr_mgmt_get_only(wr_mgmt_req_t *r, bool found);
/* An AMQP error as RabbitMQ's management plugin reports it: 403 -> 401
 * not_authorised, 404 -> 404 not_found, anything else 400 bad_request, the
 * reason being the text without its "CODE_NAME - " prefix. */
void wr_mgmt_amqp_error(wr_mgmt_req_t *r, const wr_amqp_error_t *e);
/* The error of a command the cluster did not complete: 541 (no outcome in
 * time) -> 503 timeout with the reason, anything else as wr_mgmt_amqp_error. */
void wr_mgmt_command_error(wr_mgmt_req_t *r, const wr_amqp_error_t *e);
/* For a reply sent after on_request returns: closed(arg) runs if the
 * client's connection goes first (wr_mgmt_http_watch); NULL stops watching. */
void wr_mgmt_watch(const wr_mgmt_req_t *r, void (*closed)(void *arg), void *arg);
/* The node's listeners as /api/overview shows them (r's env and node only). A new reference. */
json_t *wr_mgmt_listeners_json(const wr_mgmt_req_t *r);
/* The request body as a JSON object; NULL after replying 400 when it is not. */
json_t *wr_mgmt_body(wr_mgmt_req_t *r);
/* The value at a dotted path ("queue_totals.messages") of obj, or NULL. */
json_t *wr_mgmt_path_get(json_t *obj, const char *path);
/* RabbitMQ's sort order of two values: missing first, then numbers, then
 * strings (bytewise); <0, 0, >0. */
int wr_mgmt_compare_values(json_t *a, json_t *b);
/* Sorts a JSON array of objects by the values at the dotted paths in keys
 * (NULL-terminated), then reverses it if asked. */
void wr_mgmt_sort(json_t *arr, const char *const *keys, bool reverse);
/* A user and a permission as /api/users and /api/permissions show them
 * (definitions export too). */
json_t *wr_mgmt_user_json(const wr_user_cfg_t *u);
json_t *wr_mgmt_permission_json(const wr_permission_cfg_t *p);
/*
 * Creates or replaces user `name` from a users entry of a definitions file
 * or a PUT /api/users body, as RabbitMQ: "password" (hashed here) or
 * "password_hash" with "hashing_algorithm" (default SHA-256), neither: no
 * password (an existing user keeps its own); "tags" an array or a
 * comma-separated string. WR_ESYNTAX with err set for bad input.
 */
int wr_mgmt_put_user(const wr_mgmt_env_t *env, const char *name, const json_t *obj, bool *created, char *err,
                     size_t errlen);
/* Sets user's permission in vhost from "configure", "write", "read"
 * (strings; all three required). WR_ESYNTAX with err set for bad input. */
int wr_mgmt_put_permission(const wr_mgmt_env_t *env, const char *user, const char *vhost, const json_t *obj,
                           bool *created, char *err, size_t errlen);
/*
 * Lets a list handler keep only one page's items (10,000 queues cost a
 * second as one JSON array): when r is a GET asking for ?page, p->active is
 * set and the handler filters its names with wr_mgmt_page_match, sorts
 * (by p->sort_key's value when set, with wr_mgmt_compare_values), builds
 * the items wr_mgmt_page_wants and replies wr_mgmt_page_body. Returns true
 * when it set p->active or replied 400 for bad parameters; false when r
 * asks for no page. Call wr_mgmt_page_end after.
 */
bool wr_mgmt_page_begin(wr_mgmt_req_t *r, wr_mgmt_page_t *p);
/* Whether name passes the ?name filter (case-insensitive substring or
 * regular expression). */
bool wr_mgmt_page_match(const wr_mgmt_page_t *p, const char *name);
/* Whether the i-th item (0-based) that passed the filter is on the page. */
bool wr_mgmt_page_wants(const wr_mgmt_page_t *p, size_t i);
/* The page in RabbitMQ's shape, taking items; or, when the page is beyond
 * the filtered list, RabbitMQ's 400 page_out_of_range body with *status
 * set to 400. */
json_t *wr_mgmt_page_body(const wr_mgmt_page_t *p, size_t total, size_t filtered, json_t *items, int *status);
/* Frees what wr_mgmt_page_begin compiled. */
void wr_mgmt_page_end(wr_mgmt_page_t *p);
/* A query parameter, or NULL. */
const char *wr_mgmt_query(const wr_mgmt_req_t *r, const char *key);
/*
 * The vhost named by seg[i]; NULL after replying 404 when there is none, or
 * 401 "User not authorised to access virtual host" when the user may not
 * use it (wr_mgmt_may_use).
 */
wr_vhost_t *wr_mgmt_vhost(wr_mgmt_req_t *r, size_t i);
/* Whether user u has this tag ("administrator", "policymaker"...). */
bool wr_mgmt_has_tag(const wr_user_cfg_t *u, const char *tag);
/* Administrators and monitoring users see every vhost and connection;
 * other management users their own. */
bool wr_mgmt_sees_all(const wr_mgmt_req_t *r);
/* Whether the user may use vh: administrators always, users with a
 * permission in vh too, monitoring users for reading. */
bool wr_mgmt_may_use(const wr_mgmt_req_t *r, const wr_vhost_t *vh);
/* r's user in vh for the AMQP permission checks (access.h), which every
 * operation on an exchange, queue or binding makes as its AMQP method would;
 * administrators are no exception, as in RabbitMQ. Borrows from r and the
 * configuration: use it within the request. */
wr_access_who_t wr_mgmt_who(const wr_mgmt_req_t *r, const wr_vhost_t *vh);

#endif
