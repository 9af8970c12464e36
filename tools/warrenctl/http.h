/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's HTTP client, a thin layer over libcurl: basic authentication,
 * a JSON body, HTTPS with the peer's certificate checked (against the
 * system's CAs or --cacert), and one connection kept for all the requests
 * of a run.
 */
#ifndef WR_CTL_HTTP_H
#define WR_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *host;
    const char *port;
    const char *user;
    const char *password;
    bool https;
    const char *cacert; /* PEM file of the CAs to trust, or NULL: the system's */
    bool insecure;      /* skip the certificate and host name checks */
    long timeout_sec;
} wr_http_target_t;

typedef struct {
    long status; /* 200, 404... */
    char *body;  /* NUL-terminated, malloc'd (may be empty) */
    size_t len;
} wr_http_reply_t;

typedef struct wr_http_s wr_http_t;

/* A client for t, which it borrows (t and its strings must outlive it).
 * Call curl_global_init first. NULL on ENOMEM. */
wr_http_t *wr_http_new(const wr_http_target_t *t);
/* Closes the connection; wr_http_free(NULL) is a no-op. */
void wr_http_free(wr_http_t *h);
/*
 * Sends `method` `path` (already percent-encoded) with an optional JSON
 * body and one optional extra header line ("X-Reason: text", NULL for none)
 * and reads the reply into *out (free it with wr_http_reply_free). 0, or -1
 * with a one-line reason in err: cannot resolve or connect, certificate
 * refused, TLS handshake failed, timeout, reply too large.
 */
int wr_http_request(wr_http_t *h, const char *method, const char *path, const char *body, const char *header,
                    wr_http_reply_t *out, char *err, size_t errlen);
void wr_http_reply_free(wr_http_reply_t *r);
/* s percent-encoded for one path segment (everything but unreserved
 * characters), malloc'd; NULL on ENOMEM. */
char *wr_http_escape(const char *s);

#endif
