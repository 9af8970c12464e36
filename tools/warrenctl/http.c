/* SPDX-License-Identifier: MIT */
/*
 * The blocking HTTP/1.1 client of http.h: getaddrinfo, connect, one request
 * with Connection: close, then the reply read until the server closes, and
 * parsed (status line, Content-Length or chunked transfer coding).
 */
#include "tools/warrenctl/http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/base64.h"

/* Replies larger than this are refused rather than buffered. */
#define MAX_REPLY (512 * 1024 * 1024)

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

static int buf_add(buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *grown;

        while (cap < b->len + n + 1)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

char *wr_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * strlen(s) + 1);
    size_t n = 0;

    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return out;
}

static int dial(const wr_http_target_t *t, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {t->timeout_sec, 0};
    int fd = -1, rc, saved = 0;

    rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", t->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s port %s: %s", t->host, t->port, strerror(saved));
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The value of header `name` in the header block, or NULL (case-insensitive). */
static const char *header(const char *head, const char *end, const char *name)
{
    size_t n = strlen(name);

    for (const char *line = strstr(head, "\r\n"); line && line + 2 < end; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;

        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

/* Decodes a chunked body in place; the decoded length, or -1. */
static long dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *end;
        unsigned long n;

        if (in >= len)
            return -1;
        n = strtoul(body + in, &end, 16);
        if (end == body + in || !(end = strstr(end, "\r\n")))
            return -1;
        in = (size_t)(end - body) + 2;
        if (n == 0)
            return (long)out;
        if (n > len - in)
            return -1;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
}

static int parse_reply(buf_t *raw, wr_http_reply_t *out, char *err, size_t errlen)
{
    char *end = raw->data ? strstr(raw->data, "\r\n\r\n") : NULL;
    const char *te, *cl;
    char *body;
    size_t blen;

    if (!end || sscanf(raw->data, "HTTP/1.%*d %d", &out->status) != 1) {
        snprintf(err, errlen, "malformed HTTP reply");
        return -1;
    }
    body = end + 4;
    blen = raw->len - (size_t)(body - raw->data);
    te = header(raw->data, end, "Transfer-Encoding");
    cl = header(raw->data, end, "Content-Length");
    if (te && strncasecmp(te, "chunked", 7) == 0) {
        long n = dechunk(body, blen);

        if (n < 0) {
            snprintf(err, errlen, "malformed chunked HTTP reply");
            return -1;
        }
        blen = (size_t)n;
    } else if (cl) {
        size_t want = strtoul(cl, NULL, 10);

        if (want > blen) {
            snprintf(err, errlen, "HTTP reply cut short (%zu of %zu body bytes)", blen, want);
            return -1;
        }
        blen = want;
    }
    out->body = malloc(blen + 1);
    if (!out->body) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(out->body, body, blen);
    out->body[blen] = '\0';
    out->len = blen;
    return 0;
}

int wr_http_request(const wr_http_target_t *t, const char *method, const char *path, const char *body,
                    const char *headers, wr_http_reply_t *out, char *err, size_t errlen)
{
    size_t credlen = strlen(t->user) + strlen(t->password) + 2;
    char *cred = malloc(credlen), *auth = malloc(wr_base64_encoded_len(credlen) + 1);
    buf_t req = {0}, raw = {0};
    char chunk[16384], *head = NULL;
    int fd = -1, rc = -1, hlen = -1;
    ssize_t n;

    *out = (wr_http_reply_t){0};
    if (cred && auth) {
        snprintf(cred, credlen, "%s:%s", t->user, t->password);
        wr_base64_encode((const uint8_t *)cred, strlen(cred), auth);
        hlen = asprintf(&head,
                        "%s %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Basic %s\r\n"
                        "Connection: close\r\nContent-Length: %zu\r\n%s%s\r\n",
                        method, path, t->host, t->port, auth, body ? strlen(body) : 0,
                        body ? "Content-Type: application/json\r\n" : "", headers ? headers : "");
    }
    if (hlen < 0 || buf_add(&req, head, (size_t)hlen) != 0 ||
        (body && buf_add(&req, body, strlen(body)) != 0)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fd = dial(t, err, errlen);
    if (fd < 0)
        goto out;
    if (send_all(fd, req.data, req.len) != 0) {
        snprintf(err, errlen, "cannot send the request to %s port %s: %s", t->host, t->port, strerror(errno));
        goto out;
    }
    while ((n = recv(fd, chunk, sizeof(chunk), 0)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "no reply from %s port %s: %s", t->host, t->port,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            goto out;
        }
        if (raw.len + (size_t)n > MAX_REPLY || buf_add(&raw, chunk, (size_t)n) != 0) {
            snprintf(err, errlen, "HTTP reply too large");
            goto out;
        }
    }
    rc = parse_reply(&raw, out, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    free(head);
    free(req.data);
    free(raw.data);
    free(cred);
    free(auth);
    return rc;
}

void wr_http_reply_free(wr_http_reply_t *r)
{
    free(r->body);
    r->body = NULL;
}
