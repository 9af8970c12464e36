/* SPDX-License-Identifier: MIT */
/*
 * An evhttp server hardened for a port anyone may reach: request bodies
 * capped (tighter before the credentials are known), every request bounded
 * in time as a whole, and the accept loop paused instead of spinning when
 * descriptors run out. The management API and the Prometheus endpoint each
 * run one.
 */
#ifndef WR_BROKER_MGMT_HTTP_H
#define WR_BROKER_MGMT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#include "broker/config/config.h"

typedef struct wr_mgmt_http_s wr_mgmt_http_t;
struct wr_tls_s;

typedef struct {
    const char *what;    /* "the management API", for the log */
    size_t max_body;     /* largest body of an authorised request */
    size_t preauth_body; /* largest body of a request without valid credentials */
    /* Serves one request whose body has been read. */
    void (*handler)(struct evhttp_request *req, void *arg);
    /* Whether an Authorization header (NULL: none) from peer would be
     * accepted; NULL when every request is authorised (max_body applies). */
    bool (*authorised)(void *arg, const char *authorization, const struct sockaddr *peer);
    void *arg;
    struct wr_tls_s *tls; /* HTTPS with this context (not owned); NULL: plain HTTP */
} wr_mgmt_http_opts_t;

/* Whole-request deadline: a request must be received, and its reply sent,
 * within this many seconds of the connection opening or of the previous
 * reply. */
#define WR_MGMT_HTTP_DEADLINE_SEC 30

/*
 * Listens on l and serves requests with o->handler (o is copied; its
 * strings and arg must outlive the server). NULL when it cannot bind or
 * allocate (logged).
 */
wr_mgmt_http_t *wr_mgmt_http_new(struct event_base *base, const wr_listener_cfg_t *l,
                                 const wr_mgmt_http_opts_t *o);
/*
 * For a reply sent over several loop iterations: closed(arg) runs if req's
 * connection closes (the client left, the deadline passed) before the
 * reply ends; req is gone then. wr_mgmt_http_watch(h, req, NULL, NULL)
 * before ending the reply stops watching.
 */
void wr_mgmt_http_watch(wr_mgmt_http_t *h, struct evhttp_request *req, void (*closed)(void *arg), void *arg);
/* Closes the listener and every open connection. NULL is a no-op. */
void wr_mgmt_http_free(wr_mgmt_http_t *h);

#endif
