/* SPDX-License-Identifier: MIT */
/*
 * Another node's connection by name (mgmt_cluster_conns.h). ASK: u64 id, u8
 * op (GET or DELETE), u8 name length, the name, u8 reason length, the
 * reason (DELETE's X-Reason, its first 255 bytes as an AMQP reply text
 * holds, empty when none). ANSWER: u64 id, u16 HTTP
 * status, then the JSON body (GET's 200 only). Big-endian.
 */
#include "broker/mgmt/mgmt_cluster_conns.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/link.h"
#include "broker/cluster/reports.h"
#include "broker/mgmt/mgmt_cluster.h"
#include "broker/mgmt/mgmt_conns.h"
#include "core/buf.h"
#include "core/status.h"
#include "core/cursor.h"

enum { OP_GET = 1, OP_DELETE = 2 };

/* A request waiting for a peer's answer; the request's fields a reply uses are copied. */
typedef struct ask_s {
    struct ask_s *next;
    wr_mgmt_forward_t *f;
    wr_mgmt_req_t r; /* mgmt, env, req and method only */
    uint64_t id;
    char node[256];
    bool orphan; /* the client left: nothing to answer */
    struct event *timer;
} ask_t;

struct wr_mgmt_forward_s {
    wr_mgmt_env_t *env;
    ask_t *asks;
    uint64_t next_id;
};

static ask_t *ask_take(wr_mgmt_forward_t *f, uint64_t id, const char *node)
{
    for (ask_t **p = &f->asks; *p; p = &(*p)->next) {
        ask_t *a = *p;
        if (a->id == id && (!node || strcmp(a->node, node) == 0)) {
            *p = a->next;
            return a;
        }
    }
    return NULL;
}

static void ask_free(ask_t *a)
{
    if (!a->orphan)
        wr_mgmt_watch(&a->r, NULL, NULL);
    event_free(a->timer);
    free(a);
}

/* Replies (unless the client left) and frees a, taken off the list. */
static void ask_end(ask_t *a, int status, json_t *body)
{
    if (!a->orphan && status >= 500)
        wr_mgmt_error(&a->r, status, "unreachable", "node '%s' did not answer about the connection", a->node);
    else if (!a->orphan && status == 404)
        wr_mgmt_not_found(&a->r);
    else if (!a->orphan)
        wr_mgmt_reply(&a->r, status, json_incref(body));
    ask_free(a);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    ask_t *a = arg;

    ask_end(ask_take(a->f, a->id, NULL), 503, NULL);
}

static void on_closed(void *arg)
{
    ((ask_t *)arg)->orphan = true;
}

/* ---------------------------------------------------------------- the node asked */

static void answer(wr_mgmt_forward_t *f, const char *node, uint64_t id, int status, const json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    wr_buf_t b = {0};

    wr_buf_put_u64(&b, id);
    wr_buf_put_u16(&b, (uint16_t)status);
    if (text)
        wr_buf_put(&b, text, strlen(text));
    if (wr_buf_ok(&b))
        (void)wr_peer_send_app(f->env->peers, node, WR_REPORT_CONN_ANSWER_KIND, 0,
                               &(wr_bytes_t){b.data, b.len}, 1);
    free(text);
    wr_buf_free(&b);
}

static void on_ask(wr_mgmt_forward_t *f, const char *node, wr_cursor_t *c)
{
    uint64_t id;
    uint8_t op, nlen, rlen;
    wr_bytes_t name, reason;
    char nbuf[256], rbuf[256];
    json_t *conn = NULL;
    int rc;

    if (!wr_rd_u64(c, &id) || !wr_rd_u8(c, &op) || !wr_rd_u8(c, &nlen) || !wr_rd_bytes(c, nlen, &name) ||
        !wr_rd_u8(c, &rlen) || !wr_rd_bytes(c, rlen, &reason) || wr_cursor_left(c) != 0 ||
        (op != OP_GET && op != OP_DELETE)) {
        wr_peer_links_drop(f->env->peers, node, "a malformed question about a connection");
        return;
    }
    memcpy(nbuf, name.data, name.len);
    nbuf[name.len] = '\0';
    memcpy(rbuf, reason.data, reason.len);
    rbuf[reason.len] = '\0';
    rc = wr_mgmt_conns_by_name(f->env, nbuf, op == OP_DELETE ? (rlen ? rbuf : "") : NULL, &conn);
    answer(f, node, id, rc != WR_OK ? 404 : op == OP_GET ? 200 : 204, conn);
    json_decref(conn);
}

/* ---------------------------------------------------------------- the node asking */

static void on_answer(wr_mgmt_forward_t *f, const char *node, wr_cursor_t *c)
{
    uint64_t id;
    uint16_t status;
    wr_bytes_t rest;
    json_t *body = NULL;
    ask_t *a;

    if (!wr_rd_u64(c, &id) || !wr_rd_u16(c, &status) || !wr_rd_bytes(c, wr_cursor_left(c), &rest)) {
        wr_peer_links_drop(f->env->peers, node, "a malformed answer about a connection");
        return;
    }
    if (!(a = ask_take(f, id, node)))
        return; /* timed out meanwhile */
    if (status == 200 && !(body = json_loadb((const char *)rest.data, rest.len, 0, NULL)))
        status = 502;
    ask_end(a, status, body);
    json_decref(body);
}

static void on_app(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body)
{
    wr_cursor_t c = wr_cursor(body);

    if (kind == WR_REPORT_CONN_ASK_KIND)
        on_ask(ud, node, &c);
    else
        on_answer(ud, node, &c);
}

/* The node a peer's lists place a connection named `name` that r may see on, or NULL. */
static const char *conn_node(wr_mgmt_req_t *r, const char *name, char *out, size_t n)
{
    json_t *arr = json_array(), *item;
    const char *node;

    wr_mgmt_cluster_add_peers(r, arr, "connections", name);
    item = json_array_get(arr, 0);
    node = json_string_value(json_object_get(item, "node"));
    if (node)
        snprintf(out, n, "%s", node);
    json_decref(arr);
    return node ? out : NULL;
}

static int send_ask(wr_mgmt_forward_t *f, ask_t *a, uint8_t op, const char *name, const char *reason)
{
    size_t rlen = strlen(reason) > 255 ? 255 : strlen(reason);
    wr_buf_t b = {0};
    int rc = WR_ENOMEM;

    wr_buf_put_u64(&b, a->id);
    wr_buf_put_u8(&b, op);
    wr_buf_put_u8(&b, (uint8_t)strlen(name));
    wr_buf_put(&b, name, strlen(name));
    wr_buf_put_u8(&b, (uint8_t)rlen);
    wr_buf_put(&b, reason, rlen);
    if (wr_buf_ok(&b))
        rc = wr_peer_send_app(f->env->peers, a->node, WR_REPORT_CONN_ASK_KIND, 0,
                              &(wr_bytes_t){b.data, b.len}, 1);
    wr_buf_free(&b);
    return rc;
}

bool wr_mgmt_forward_conn(wr_mgmt_req_t *r, const char *name)
{
    const char *reason = evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Reason");
    wr_mgmt_forward_t *f = r->env->forward;
    struct timeval tv = {WR_MGMT_FORWARD_MS / 1000, 0};
    char node[256];
    ask_t *a;

    if (!f || strlen(name) > 255 || !conn_node(r, name, node, sizeof(node)))
        return false;
    if (!(a = calloc(1, sizeof(*a))) || !(a->timer = evtimer_new(r->env->base, on_timeout, a))) {
        free(a);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return true;
    }
    *a = (ask_t){.next = f->asks,
                 .f = f,
                 .id = f->next_id++,
                 .timer = a->timer,
                 .r = {.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method}};
    snprintf(a->node, sizeof(a->node), "%s", node);
    if (send_ask(f, a, r->method == WR_MGMT_DELETE ? OP_DELETE : OP_GET, name, reason ? reason : "") !=
        WR_OK) {
        a->orphan = true; /* not watched yet */
        ask_free(a);
        wr_mgmt_error(r, 503, "unreachable", "node '%s' is not reachable", node);
        return true;
    }
    f->asks = a;
    event_add(a->timer, &tv);
    r->replied = true;
    wr_mgmt_watch(r, on_closed, a);
    return true;
}

wr_mgmt_forward_t *wr_mgmt_forward_new(wr_mgmt_env_t *env)
{
    wr_mgmt_forward_t *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    *f = (wr_mgmt_forward_t){.env = env, .next_id = 1};
    if (wr_peer_links_route(env->peers, WR_REPORT_CONN_ASK_KIND, WR_REPORT_CONN_ANSWER_KIND, on_app, f) !=
        WR_OK) {
        free(f);
        return NULL;
    }
    return f;
}

void wr_mgmt_forward_free(wr_mgmt_forward_t *f)
{
    if (!f)
        return;
    while (f->asks)
        ask_free(ask_take(f, f->asks->id, NULL));
    free(f);
}
