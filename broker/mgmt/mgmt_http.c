/* SPDX-License-Identifier: MIT */
/*
 * The hardened evhttp server of mgmt_http.h. evhttp (libevent 2.1) reads a
 * request's body before calling us, so each connection's bufferevent is
 * ours (evhttp_set_bevcb): while a request's headers arrive, a guard holds
 * them back from evhttp until the blank line, checks the credentials, and
 * sets the connection's body cap before evhttp reads any body. A timer per
 * connection bounds each request as a whole; evhttp's own timeout only
 * bounds the gap between two reads.
 */
#include "broker/mgmt/mgmt_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "broker/amqp/tls.h"
#include "broker/base/log.h"
#include "core/list.h"

/* Header block held back for the check; evhttp refuses a larger one. */
#define MAX_HEADERS_SIZE 16384
/* evhttp's timeout between two reads or writes. */
#define IDLE_TIMEOUT_SEC 30
/* A listener paused by a failing accept() is resumed within this. */
#define ACCEPT_RETRY_SEC 1
/* Repeated warnings (connections cut off) at most this often. */
#define LOG_INTERVAL_MS 1000

struct wr_mgmt_http_s {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *resume; /* resumes the listener after a failed accept() */
    wr_mgmt_http_opts_t o;
    wr_list_t conns; /* http_conn_t */
    wr_log_limit_t cut_log;
};

/* One HTTP connection. Attached once evhttp has set it up (the next loop
 * iteration after the accept): evcon set, freed by evhttp's close callback. */
typedef struct {
    wr_list_t link;
    wr_mgmt_http_t *h;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until attached */
    struct event *timer;             /* attach at once, then the deadline */
    struct event *guard;             /* puts the header guard back in place */
    bufferevent_data_cb rd, wr;      /* evhttp's callbacks while guarded */
    bufferevent_event_cb ev;
    void *ev_arg;
    void (*closed)(void *arg); /* wr_mgmt_http_watch */
    void *closed_arg;
} http_conn_t;

static void conn_free(http_conn_t *c)
{
    wr_list_remove(&c->link);
    event_free(c->timer);
    event_free(c->guard);
    free(c);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    http_conn_t *c = arg;

    if (c->closed)
        c->closed(c->closed_arg);
    conn_free(c);
}

static void conn_arm(http_conn_t *c)
{
    struct timeval tv = {WR_MGMT_HTTP_DEADLINE_SEC, 0};

    event_add(c->timer, &tv);
}

static void conn_expire(http_conn_t *c)
{
    char *peer = NULL;
    uint16_t port = 0;
    unsigned long more;

    evhttp_connection_get_peer(c->evcon, &peer, &port);
    if (wr_log_limit_pass(&c->h->cut_log, LOG_INTERVAL_MS, &more))
        wr_log_warn(
            "%s: closed the connection from %s:%u: request not done within %d s (%lu more not logged)",
            c->h->o.what, peer ? peer : "?", port, WR_MGMT_HTTP_DEADLINE_SEC, more);
    evhttp_connection_free(c->evcon); /* frees c through on_close */
}

/* ---------------------------------------------------------------- the header guard */

/* The value of the Authorization header in the block hdr (NUL-terminated,
 * lines ending in CRLF or, as evhttp also takes, LF), copied into out; NULL
 * without one. */
static const char *find_authorization(const char *hdr, char *out, size_t outlen)
{
    static const char name[] = "\nAuthorization:";
    size_t n = sizeof(name) - 1;

    for (const char *p = strchr(hdr, '\n'); p; p = strchr(p + 1, '\n')) {
        size_t len;

        if (strncasecmp(p, name, n) != 0)
            continue;
        p += n;
        p += strspn(p, " \t");
        len = strcspn(p, "\r\n");
        if (len >= outlen)
            return NULL;
        memcpy(out, p, len);
        out[len] = '\0';
        return out;
    }
    return NULL;
}

/* Where the header block in `in` ends (after its blank line, CRLF or LF),
 * or -1 while it has not arrived. */
static ev_ssize_t headers_end(struct evbuffer *in)
{
    struct evbuffer_ptr crlf = evbuffer_search(in, "\n\r\n", 3, NULL);
    struct evbuffer_ptr lf = evbuffer_search(in, "\n\n", 2, NULL);

    if (lf.pos >= 0 && (crlf.pos < 0 || lf.pos < crlf.pos))
        return lf.pos + 2;
    return crlf.pos >= 0 ? crlf.pos + 3 : -1;
}

/* Sets the body cap of the request whose header block is in hdr. */
static void guard_decide(http_conn_t *c, const char *hdr)
{
    const wr_mgmt_http_opts_t *o = &c->h->o;
    char value[2048];
    const char *auth = find_authorization(hdr, value, sizeof(value));
    bool ok = !o->authorised || o->authorised(o->arg, auth, evhttp_connection_get_addr(c->evcon));

    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)(ok ? o->max_body : o->preauth_body));
}

/* Hands the connection back to evhttp's own callbacks. */
static void guard_lift(http_conn_t *c)
{
    bufferevent_setcb(c->bev, c->rd, c->wr, c->ev, c->ev_arg);
}

static void guard_read(struct bufferevent *bev, void *arg)
{
    http_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    ev_ssize_t end = headers_end(in);
    char *hdr;

    if (end < 0 && len <= MAX_HEADERS_SIZE)
        return; /* not all there yet: evhttp sees nothing */
    hdr = malloc(MAX_HEADERS_SIZE + 1);
    if (hdr) {
        size_t n = end >= 0 && end < MAX_HEADERS_SIZE ? (size_t)end : MAX_HEADERS_SIZE;

        evbuffer_copyout(in, hdr, n);
        hdr[n] = '\0';
        guard_decide(c, hdr);
        free(hdr);
    }
    guard_lift(c);
    c->rd(bev, c->ev_arg);
}

static void guard_write(struct bufferevent *bev, void *arg)
{
    http_conn_t *c = arg;

    if (c->wr)
        c->wr(bev, c->ev_arg);
}

static void guard_event(struct bufferevent *bev, short what, void *arg)
{
    http_conn_t *c = arg;
    bufferevent_event_cb ev = c->ev;
    void *ev_arg = c->ev_arg;

    guard_lift(c);
    if (ev)
        ev(bev, what, ev_arg); /* may free c */
}

/* Puts the guard in front of evhttp for the next request's headers, when
 * evhttp waits for them and none has arrived. Bytes already buffered
 * (pipelining) are evhttp's at once, under the pre-authentication cap. */
static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    http_conn_t *c = arg;
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *ev_arg;

    bufferevent_getcb(c->bev, &rd, &wr, &ev, &ev_arg);
    if (!rd || rd == guard_read || ev_arg != c->evcon ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        return;
    c->rd = rd;
    c->wr = wr;
    c->ev = ev;
    c->ev_arg = ev_arg;
    bufferevent_setcb(c->bev, guard_read, guard_write, guard_event, c);
}

/* ---------------------------------------------------------------- connections */

/* The first run of c's timer: evhttp has set the connection up (its
 * callbacks' argument is the evhttp_connection), or already freed it. */
static void conn_attach(http_conn_t *c)
{
    struct bufferevent *bev = c->bev;
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *evcon;

    bufferevent_getcb(bev, &rd, &wr, &ev, &evcon);
    if (!rd && !wr && !ev) {
        conn_free(c);
    } else {
        c->evcon = evcon;
        evhttp_connection_set_closecb(c->evcon, on_close, c);
        evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)c->h->o.preauth_body);
        conn_arm(c);
        on_guard(-1, 0, c);
    }
    bufferevent_decref(bev);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    http_conn_t *c = arg;

    if (c->evcon)
        conn_expire(c);
    else
        conn_attach(c);
}

static http_conn_t *conn_new(wr_mgmt_http_t *h, struct bufferevent *bev)
{
    http_conn_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->h = h;
    c->bev = bev;
    c->timer = evtimer_new(h->base, on_timer, c);
    c->guard = event_new(h->base, -1, 0, on_guard, c);
    if (c->timer && c->guard)
        return c;
    if (c->timer)
        event_free(c->timer);
    if (c->guard)
        event_free(c->guard);
    free(c);
    return NULL;
}

/* evhttp's bevcb: a new connection's bufferevent, held (a reference) until
 * conn_attach can tell whether evhttp still has it. Out of memory, the
 * connection goes unwatched: evhttp's idle timeout and its default body
 * cap (the pre-authentication one) still hold. With TLS, evhttp hands the
 * accepted socket to the session (bufferevent_setfd) after this returns. */
static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    wr_mgmt_http_t *h = arg;
    struct bufferevent *bev = h->o.tls ? wr_tls_accept(h->o.tls, base, -1)
                                       : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    http_conn_t *c = bev ? conn_new(h, bev) : NULL;

    if (c) {
        bufferevent_incref(bev);
        wr_list_insert_tail(&h->conns, &c->link);
        event_active(c->timer, EV_TIMEOUT, 1);
    }
    return bev;
}

static http_conn_t *conn_find(wr_mgmt_http_t *h, const struct evhttp_connection *evcon)
{
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, &h->conns)
    {
        http_conn_t *c = wr_list_entry(pos, http_conn_t, link);

        if (c->evcon == evcon)
            return c;
    }
    return NULL;
}

/* The reply is sent: the next request starts under the pre-authentication
 * cap, with a fresh deadline, behind the guard. */
static void on_complete(struct evhttp_request *req, void *arg)
{
    http_conn_t *c = arg;

    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)c->h->o.preauth_body);
    conn_arm(c);
    event_active(c->guard, EV_READ, 1);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    wr_mgmt_http_t *h = arg;
    http_conn_t *c = conn_find(h, evhttp_request_get_connection(req));

    if (c) {
        conn_arm(c);
        evhttp_request_set_on_complete_cb(req, on_complete, c);
    }
    h->o.handler(req, h->o.arg);
}

void wr_mgmt_http_watch(wr_mgmt_http_t *h, struct evhttp_request *req, void (*closed)(void *arg), void *arg)
{
    http_conn_t *c = conn_find(h, evhttp_request_get_connection(req));

    if (c) {
        c->closed = closed;
        c->closed_arg = arg;
    }
}

/* ---------------------------------------------------------------- the listener */

/* accept() failed (EMFILE...): libevent would retry at once, forever.
 * evhttp owns the listener's argument, so the pause is ended by h->resume. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();

    evconnlistener_disable(l);
    wr_log_error("HTTP accept failed: %s; pausing that listener for %d s", evutil_socket_error_to_string(err),
                 ACCEPT_RETRY_SEC);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    wr_mgmt_http_t *h = arg;

    evconnlistener_enable(h->listener);
}

static bool http_bind(wr_mgmt_http_t *h, const wr_listener_cfg_t *l)
{
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(h->http, l->address, l->port);
    struct timeval tv = {ACCEPT_RETRY_SEC, 0};

    if (!bound) {
        wr_log_error("cannot listen on %s port %u for %s: %s", l->address, l->port, h->o.what,
                     strerror(errno));
        return false;
    }
    h->listener = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(h->listener, on_accept_error);
    h->resume = event_new(h->base, -1, EV_PERSIST, on_resume, h);
    return h->resume && event_add(h->resume, &tv) == 0;
}

wr_mgmt_http_t *wr_mgmt_http_new(struct event_base *base, const wr_listener_cfg_t *l,
                                 const wr_mgmt_http_opts_t *o)
{
    wr_mgmt_http_t *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->base = base;
    h->o = *o;
    wr_list_init(&h->conns);
    h->http = evhttp_new(base);
    if (!h->http)
        goto err;
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)o->preauth_body);
    evhttp_set_max_headers_size(h->http, MAX_HEADERS_SIZE);
    evhttp_set_timeout(h->http, IDLE_TIMEOUT_SEC);
    evhttp_set_bevcb(h->http, on_new_conn, h);
    evhttp_set_gencb(h->http, on_request, h);
    if (!http_bind(h, l))
        goto err;
    return h;
err:
    wr_mgmt_http_free(h);
    return NULL;
}

void wr_mgmt_http_free(wr_mgmt_http_t *h)
{
    wr_list_t *pos, *tmp;

    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http); /* attached connections leave through on_close */
    wr_list_foreach_safe(pos, tmp, &h->conns)
    {
        http_conn_t *c = wr_list_entry(pos, http_conn_t, link);

        bufferevent_decref(c->bev);
        conn_free(c);
    }
    if (h->resume)
        event_free(h->resume);
    free(h);
}
