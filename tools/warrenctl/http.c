/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client of http.h over one libcurl easy handle: the options of
 * each request set afresh (the handle's connection cache survives), the
 * reply body collected in memory, and libcurl's errors turned into one line
 * a user can act on.
 */
#include "tools/warrenctl/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* Replies larger than this are refused rather than buffered. */
#define MAX_REPLY ((size_t)512 * 1024 * 1024)

struct wr_http_s {
    const wr_http_target_t *t;
    CURL *curl;
    char *base; /* "https://host:port" */
};

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool too_large;
} buf_t;

wr_http_t *wr_http_new(const wr_http_target_t *t)
{
    wr_http_t *h = calloc(1, sizeof(*h));
    /* An IPv6 literal goes in brackets. */
    bool v6 = strchr(t->host, ':') != NULL;

    if (!h)
        return NULL;
    h->t = t;
    h->curl = curl_easy_init();
    if (!h->curl || asprintf(&h->base, "%s://%s%s%s:%s", t->https ? "https" : "http", v6 ? "[" : "", t->host,
                             v6 ? "]" : "", t->port) < 0) {
        h->base = NULL;
        wr_http_free(h);
        return NULL;
    }
    return h;
}

void wr_http_free(wr_http_t *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h->base);
    free(h);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    buf_t *b = arg;

    if (n > MAX_REPLY - b->len) {
        b->too_large = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *grown;

        while (cap < b->len + n + 1)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (!grown)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return size * n;
}

char *wr_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out = e ? strdup(e) : NULL;

    curl_free(e);
    return out;
}

/* The connection and TLS options of every request. */
static void set_target(wr_http_t *h, char *errbuf)
{
    const wr_http_target_t *t = h->t;
    CURL *c = h->curl;

    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, t->timeout_sec);
    /* The connection and TLS handshake get at most 10 s of it: a handshake
     * with a plain HTTP listener stalls rather than fails. */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t->timeout_sec < 10 ? t->timeout_sec : 10L);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, t->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, t->password);
    if (t->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, t->cacert);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, t->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, t->insecure ? 0L : 2L);
}

/* Which step timed out: the connection, the TLS handshake or the reply.
 * (libcurl's connect time stays 0 until the handshake is over; the local
 * port is known once TCP is connected.) */
static void timed_out(const wr_http_t *h, char *err, size_t errlen)
{
    const wr_http_target_t *t = h->t;
    curl_off_t secured = 0;
    long local_port = 0;
    double took = 0;

    curl_easy_getinfo(h->curl, CURLINFO_LOCAL_PORT, &local_port);
    curl_easy_getinfo(h->curl, CURLINFO_APPCONNECT_TIME_T, &secured);
    curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME, &took);
    if (local_port == 0)
        snprintf(err, errlen, "cannot connect to %s port %s: timed out after %.0f s", t->host, t->port, took);
    else if (t->https && secured == 0)
        snprintf(err, errlen,
                 "TLS handshake with %s port %s timed out after %.0f s (is it an HTTPS listener?)", t->host,
                 t->port, took);
    else
        snprintf(err, errlen, "no reply from %s port %s within %ld s", t->host, t->port, t->timeout_sec);
}

/* Why the request failed, on one line. */
static void describe(const wr_http_t *h, CURLcode rc, const char *errbuf, char *err, size_t errlen)
{
    const wr_http_target_t *t = h->t;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long os_errno = 0;

    curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "cannot resolve %s: %s", t->host, why);
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(err, errlen, "cannot connect to %s port %s: %s", t->host, t->port,
                 os_errno ? strerror((int)os_errno) : why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        timed_out(h, err, errlen);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        snprintf(err, errlen,
                 "the certificate of %s port %s is not trusted: %s (--cacert FILE names the CA to trust)",
                 t->host, t->port, why);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(err, errlen, "cannot load the CA certificates of --cacert %s", t->cacert ? t->cacert : "");
        break;
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(err, errlen, "TLS handshake with %s port %s failed: %s", t->host, t->port, why);
        break;
    default:
        snprintf(err, errlen, "%s %s port %s: %s%s", t->https ? "HTTPS to" : "HTTP to", t->host, t->port, why,
                 t->https ? "" : " (is it an HTTPS listener? try --https)");
    }
}

/* The header lines of a request; NULL on ENOMEM. */
static struct curl_slist *request_headers(const char *body, const char *header)
{
    /* No "Expect: 100-continue" round trip before a large body. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:"), *more;

    if (list && body && !(more = curl_slist_append(list, "Content-Type: application/json")))
        goto fail;
    if (list && header && !(more = curl_slist_append(list, header)))
        goto fail;
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

int wr_http_request(wr_http_t *h, const char *method, const char *path, const char *body, const char *header,
                    wr_http_reply_t *out, char *err, size_t errlen)
{
    char errbuf[CURL_ERROR_SIZE] = "", *url = NULL;
    struct curl_slist *headers = request_headers(body, header);
    bool sends = body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
    buf_t reply = {0};
    CURLcode rc;

    *out = (wr_http_reply_t){0};
    if (!headers || asprintf(&url, "%s%s", h->base, path) < 0) {
        snprintf(err, errlen, "out of memory");
        curl_slist_free_all(headers);
        return -1;
    }
    curl_easy_reset(h->curl);
    set_target(h, errbuf);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    if (sends)
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &reply);
    rc = curl_easy_perform(h->curl);
    curl_slist_free_all(headers);
    free(url);
    if (rc != CURLE_OK) {
        if (reply.too_large)
            snprintf(err, errlen, "HTTP reply too large");
        else
            describe(h, rc, errbuf, err, errlen);
        free(reply.data);
        return -1;
    }
    if (!reply.data && !(reply.data = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = reply.data;
    out->len = reply.len;
    return 0;
}

void wr_http_reply_free(wr_http_reply_t *r)
{
    free(r->body);
    r->body = NULL;
}
