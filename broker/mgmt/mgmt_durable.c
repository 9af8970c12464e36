/* SPDX-License-Identifier: MIT */
/*
 * Held management replies (mgmt_durable.h): the reply waits as a
 * wr_durable_waiter_t on the store, its body moved aside, and the HTTP
 * connection is watched so a client that leaves frees it.
 */
#include "broker/mgmt/mgmt_durable.h"

#include <stdlib.h>

typedef struct {
    wr_durable_waiter_t w;
    wr_mgmt_http_t *http;
    struct evhttp_request *req;
    int status;
    const char *reason;
    struct evbuffer *body;
} held_t;

static void held_free(held_t *h)
{
    wr_durable_topology_unwait(&h->w);
    if (h->body != NULL)
        evbuffer_free(h->body);
    free(h);
}

static void on_durable(void *ud)
{
    held_t *h = ud;

    wr_mgmt_http_watch(h->http, h->req, NULL, NULL);
    evhttp_send_reply(h->req, h->status, h->reason, h->body);
    held_free(h);
}

/* The client left: req is gone. */
static void on_closed(void *ud)
{
    held_free(ud);
}

void wr_mgmt_send(wr_mgmt_http_t *http, wr_durable_t *d, struct evhttp_request *req, int status,
                  const char *reason, struct evbuffer *body)
{
    held_t *h = http != NULL && d != NULL ? calloc(1, sizeof(*h)) : NULL;

    if (h != NULL) {
        *h = (held_t){
            .w = {.fn = on_durable, .ud = h}, .http = http, .req = req, .status = status, .reason = reason};
        wr_list_init(&h->w.link);
        if (wr_durable_topology_wait(d, &h->w, wr_durable_topology_seq(d)) &&
            (h->body = evbuffer_new()) != NULL && (body == NULL || evbuffer_add_buffer(h->body, body) == 0)) {
            wr_mgmt_http_watch(http, req, on_closed, h);
            return;
        }
        held_free(h);
    }
    evhttp_send_reply(req, status, reason, body);
}
