/* SPDX-License-Identifier: MIT */
/*
 * Serves the management UI's embedded assets (mgmt_ui_assets.c, generated
 * from ui/). Every reply carries the headers that make the page safe by
 * construction: a CSP allowing only our own scripts and styles, nosniff,
 * and no framing.
 */
#include "broker/mgmt/mgmt_ui.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "broker/mgmt_ui_assets.h"

#define UI_PREFIX "/ui/"
#define UI_INDEX  "index.html"
#define UI_CSP                                                                                               \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "                        \
    "frame-ancestors 'none'"

/* The asset at `name` (relative to /ui/), or NULL. */
static const wr_mgmt_ui_asset_t *find_asset(const char *name)
{
    for (size_t i = 0; i < wr_mgmt_ui_nassets; i++) {
        if (strcmp(wr_mgmt_ui_assets[i].path, name) == 0)
            return &wr_mgmt_ui_assets[i];
    }
    return NULL;
}

static void add_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Server", "warren");
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Content-Security-Policy", UI_CSP);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/* A short text/plain reply for the errors. */
static void reply_text(struct evhttp_request *req, int status, const char *reason, const char *text)
{
    struct evbuffer *out = evbuffer_new();

    add_headers(req, "text/plain; charset=utf-8");
    if (out)
        evbuffer_add_printf(out, "%s\n", text);
    evhttp_send_reply(req, status, reason, out);
    if (out)
        evbuffer_free(out);
}

/* Whether the If-None-Match header names a's ETag (or is "*"). */
static bool not_modified(struct evhttp_request *req, const wr_mgmt_ui_asset_t *a)
{
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");

    return inm && (strcmp(inm, "*") == 0 || strstr(inm, a->etag) != NULL);
}

static void reply_asset(struct evhttp_request *req, const wr_mgmt_ui_asset_t *a)
{
    struct evbuffer *out;

    add_headers(req, a->type);
    evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", a->etag);
    /* Revalidate every time: a new warrend must not run an old script. */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
    if (not_modified(req, a)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    out = evbuffer_new();
    if (!out || evbuffer_add_reference(out, a->data, a->len, NULL, NULL) != 0) {
        if (out)
            evbuffer_free(out);
        reply_text(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

bool wr_mgmt_ui_serve(struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const wr_mgmt_ui_asset_t *a;
    const char *name;

    if (!path)
        return false;
    if (strcmp(path, "/") == 0)
        name = UI_INDEX;
    else if (strncmp(path, UI_PREFIX, strlen(UI_PREFIX)) == 0)
        name = path[strlen(UI_PREFIX)] ? path + strlen(UI_PREFIX) : UI_INDEX;
    else
        return false;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "Method Not Allowed");
    } else if (!(a = find_asset(name))) {
        reply_text(req, 404, "Not Found", "Not Found");
    } else {
        reply_asset(req, a);
    }
    return true;
}
