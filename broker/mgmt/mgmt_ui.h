/* SPDX-License-Identifier: MIT */
/*
 * The web management UI on the management listener: the assets embedded in
 * warrend at build time (scripts/gen_ui.py), served at / and /ui/ with
 * ETags and a Content-Security-Policy that forbids inline script. The UI
 * talks to the API under /api/ like any other client.
 */
#ifndef WR_BROKER_MGMT_UI_H
#define WR_BROKER_MGMT_UI_H

#include <stdbool.h>

struct evhttp_request;

/*
 * Replies to req when path (the request's path, without the query) is the
 * UI's: "/" and "/ui/..." (GET and HEAD: the asset, 304 when If-None-Match
 * names its ETag, 404 for no such asset; any other method 405). Needs no
 * credentials: the assets are the same for everyone and hold no data.
 * False, without replying, for every other path.
 */
bool wr_mgmt_ui_serve(struct evhttp_request *req, const char *path);

#endif
