/* SPDX-License-Identifier: MIT */
/*
 * A small blocking HTTP/1.1 client for warrenctl: one request per connection
 * (Connection: close), basic authentication, a JSON body, and the reply read
 * whole (Content-Length, chunked, or until the server closes).
 */
#ifndef WR_CTL_HTTP_H
#define WR_CTL_HTTP_H

#include <stddef.h>

typedef struct {
    const char *host;
    const char *port;
    const char *user;
    const char *password;
    int timeout_sec;
} wr_http_target_t;

typedef struct {
    int status; /* 200, 404... */
    char *body; /* NUL-terminated, malloc'd (may be empty) */
    size_t len;
} wr_http_reply_t;

/*
 * Sends `method` `path` (already percent-encoded) with an optional JSON
 * body and extra header lines ("Name: value\r\n"...; NULL for none) and
 * reads the reply into *out. 0, or -1 with a one-line reason in err (cannot
 * connect, timeout, malformed reply).
 */
int wr_http_request(const wr_http_target_t *t, const char *method, const char *path, const char *body,
                    const char *headers, wr_http_reply_t *out, char *err, size_t errlen);
void wr_http_reply_free(wr_http_reply_t *r);
/* s percent-encoded for one path segment (everything but unreserved
 * characters), malloc'd; NULL on ENOMEM. */
char *wr_http_escape(const char *s);

#endif
