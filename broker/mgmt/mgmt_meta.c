/* SPDX-License-Identifier: MIT */
/*
 * Management API writes through the metadata group (see mgmt_meta.h). The
 * request's own wr_mgmt_req_t lives on on_request's stack, so the wait keeps
 * a copy of the fields a reply uses (the evhttp request and the method).
 */
#include "broker/mgmt/mgmt_meta.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/meta.h"
#include "protocol/constants.h"

typedef struct {
    wr_mgmt_req_t r; /* mgmt, req and method only */
    wr_meta_op_t *op;
    int ok_status;
    char *location;
} wait_t;

struct wr_meta_s *wr_mgmt_meta(const wr_mgmt_req_t *r)
{
    return r->env->meta;
}

static void wait_free(wait_t *w)
{
    free(w->location);
    free(w);
}

/* The client left first: its request is gone. */
static void on_closed(void *arg)
{
    wait_t *w = arg;

    wr_meta_cancel(w->op);
    wait_free(w);
}

static void on_result(void *ud, const wr_meta_result_t *res)
{
    wait_t *w = ud;
    const char *sep = strstr(res->err.text, " - ");

    wr_mgmt_watch(&w->r, NULL, NULL);
    if (res->err.code == WR_AMQP_INTERNAL_ERROR) {
        wr_mgmt_error(&w->r, 503, "timeout", "%s", sep != NULL ? sep + 3 : res->err.text);
    } else if (res->err.code != 0) {
        wr_mgmt_amqp_error(&w->r, &res->err);
    } else {
        if (w->location != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(w->r.req), "Location", w->location);
        wr_mgmt_reply(&w->r, w->ok_status, NULL);
    }
    wait_free(w);
}

void wr_mgmt_meta_propose(wr_mgmt_req_t *r, json_t *cmd, int ok_status, const char *location)
{
    wait_t *w = calloc(1, sizeof(*w));

    if (w == NULL || (location != NULL && (w->location = strdup(location)) == NULL)) {
        json_decref(cmd);
        free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    w->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    w->ok_status = ok_status;
    w->op = wr_meta_submit(wr_mgmt_meta(r), cmd, on_result, w);
    if (w->op == NULL) {
        wait_free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    r->replied = true;
    wr_mgmt_watch(r, on_closed, w);
}
