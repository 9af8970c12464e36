/* SPDX-License-Identifier: MIT */
/*
 * The "cluster" section (cluster_config.h). Every problem is reported, not
 * only the first, in config.c's "path: reason" shape. The secret file is
 * read here, through one descriptor that is checked with fstat, so the mode
 * refused is the mode of the file read.
 */
#include "broker/cluster/cluster_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/status.h"

/* Node and cluster names travel as the peer codec's 1..255-byte names. */
#define MAX_NAME 255

typedef struct {
    wr_cluster_config_problem_fn fn;
    void *ctx;
    int count;
} probs_t;

static void bad(probs_t *p, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void bad(probs_t *p, const char *path, const char *fmt, ...)
{
    char reason[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    p->count++;
    p->fn(p->ctx, path, reason);
}

static const char *kind(const json_t *v)
{
    static const char *const names[] = {"an object", "an array",  "a string",  "an integer",
                                        "a number",  "a boolean", "a boolean", "null"};

    return names[json_typeof(v)];
}

/* A string value; NULL (reported) otherwise. */
static const char *get_string(probs_t *p, const char *path, const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    bad(p, path, "expected a string, got %s", kind(v));
    return NULL;
}

/* A name: a non-empty string of at most MAX_NAME bytes. */
static const char *get_name(probs_t *p, const char *path, const json_t *v)
{
    const char *s = get_string(p, path, v);

    if (s && s[0] == '\0') {
        bad(p, path, "must not be empty");
        return NULL;
    }
    if (s && strlen(s) > MAX_NAME) {
        bad(p, path, "longer than %d bytes", MAX_NAME);
        return NULL;
    }
    return s;
}

static bool set(char **dst, const char *s)
{
    free(*dst);
    *dst = strdup(s);
    return *dst != NULL;
}

/* A DNS host name (RFC 1123): dot-separated labels of letters, digits and
 * hyphens, 1-63 bytes each, not starting or ending with a hyphen; 253 at most. */
static bool host_name(const char *s)
{
    size_t label = 0, n = strlen(s);

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)s[i]) || (s[i] == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* An IP address, or with names also a host name (resolved at each dial). */
static bool get_address(probs_t *p, const char *path, const json_t *v, bool names, char **out)
{
    const char *s = get_string(p, path, v);
    struct in6_addr a;

    if (!s)
        return true;
    if (inet_pton(AF_INET, s, &a) != 1 && inet_pton(AF_INET6, s, &a) != 1 && !(names && host_name(s))) {
        bad(p, path,
            names ? "not an IPv4 or IPv6 address or a host name: '%s'" : "not an IPv4 or IPv6 address: '%s'",
            s);
        return true;
    }
    return set(out, s);
}

static void get_port(probs_t *p, const char *path, const json_t *v, uint16_t *out)
{
    json_int_t n;

    if (!json_is_integer(v)) {
        bad(p, path, "expected an integer, got %s", kind(v));
        return;
    }
    n = json_integer_value(v);
    if (n < 1 || n > 65535)
        bad(p, path, "must be between 1 and 65535, got %lld", (long long)n);
    else
        *out = (uint16_t)n;
}

/* {"name"?, "address", "port"}: "name" only where with_name. False on ENOMEM. */
static bool parse_endpoint(probs_t *p, const char *path, const json_t *obj, bool with_name,
                           wr_cluster_node_t *e)
{
    static const char *const keys[] = {"address", "port", "name"};
    char kpath[320];
    const char *key, *s;
    const json_t *v;

    if (!json_is_object(obj)) {
        bad(p, path, "expected an object, got %s", kind(obj));
        return true;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        snprintf(kpath, sizeof(kpath), "%s.%s", path, key);
        if (strcmp(key, "address") == 0 && !get_address(p, kpath, v, with_name, &e->address))
            return false;
        if (strcmp(key, "port") == 0)
            get_port(p, kpath, v, &e->port);
        if (with_name && strcmp(key, "name") == 0 && (s = get_name(p, kpath, v)) && !set(&e->name, s))
            return false;
        if (with_name && strcmp(key, "seed") == 0 && !json_is_boolean(v))
            bad(p, kpath, "must be true or false");
        if (strcmp(key, "address") != 0 && strcmp(key, "port") != 0 &&
            (!with_name || (strcmp(key, "name") != 0 && strcmp(key, "seed") != 0)))
            bad(p, kpath, "unknown key");
    }
    for (size_t i = 0; i < (with_name ? 3u : 2u); i++) {
        if (!json_object_get(obj, keys[i]))
            bad(p, path, "missing key '%s'", keys[i]);
    }
    return true;
}

static bool parse_nodes(probs_t *p, wr_cluster_config_t *c, const json_t *arr)
{
    char path[64];
    const json_t *item;
    size_t i;

    if (!json_is_array(arr)) {
        bad(p, "cluster.nodes", "expected an array, got %s", kind(arr));
        return true;
    }
    if (json_array_size(arr) == 0)
        bad(p, "cluster.nodes", "must name at least one node");
    c->cap_nodes = json_array_size(arr) + WR_CLUSTER_MAX_LEARNED;
    c->nodes = calloc(c->cap_nodes, sizeof(*c->nodes));
    if (!c->nodes)
        return false;
    c->joins = calloc(c->cap_nodes, sizeof(*c->joins));
    if (!c->joins)
        return false;
    json_array_foreach(arr, i, item)
    {
        snprintf(path, sizeof(path), "cluster.nodes[%zu]", i);
        if (!parse_endpoint(p, path, item, true, &c->nodes[i]))
            return false;
        c->joins[i] = json_is_false(json_object_get(item, "seed"));
        c->n_nodes++;
    }
    return true;
}

/* Strips one trailing newline, then enforces the length. */
static bool take_secret(probs_t *p, const char *path, const char *what, wr_cluster_config_t *c,
                        const uint8_t *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\n')
        n--;
    if (n < WR_CLUSTER_SECRET_MIN) {
        bad(p, path, "%s %zu bytes; a secret needs at least %d", what, n, WR_CLUSTER_SECRET_MIN);
        return true;
    }
    c->secret = malloc(n);
    if (!c->secret)
        return false;
    memcpy(c->secret, s, n);
    c->secret_len = n;
    return true;
}

/* Reads the whole file behind fd (at most WR_CLUSTER_SECRET_MAX + 1 bytes). */
static ssize_t read_all(int fd, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
        if (r < 0 && errno != EINTR)
            return -1;
        n += r > 0 ? (size_t)r : 0;
    }
    return (ssize_t)n;
}

static bool read_secret_file(probs_t *p, wr_cluster_config_t *c, const char *file)
{
    const char *path = "cluster.secret_file";
    uint8_t buf[WR_CLUSTER_SECRET_MAX + 2];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    ssize_t n = -1;
    bool ok = true;

    if (fd < 0 || fstat(fd, &st) != 0) {
        bad(p, path, "cannot open %s: %s", file, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        bad(p, path, "%s is not a regular file", file);
    } else if (st.st_mode & (S_IRGRP | S_IROTH)) {
        bad(p, path,
            "%s is readable by group or others (mode %04o); make it readable by its owner only (chmod 600)",
            file, (unsigned)(st.st_mode & 07777));
    } else if ((n = read_all(fd, buf, sizeof(buf))) < 0) {
        bad(p, path, "cannot read %s: %s", file, strerror(errno));
    } else if ((size_t)n > WR_CLUSTER_SECRET_MAX + 1) {
        bad(p, path, "%s is longer than %d bytes", file, WR_CLUSTER_SECRET_MAX);
    } else {
        ok = take_secret(p, path, "the file holds", c, buf, (size_t)n);
    }
    explicit_bzero(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool parse_secret(probs_t *p, wr_cluster_config_t *c, const json_t *obj)
{
    const json_t *file = json_object_get(obj, "secret_file"), *inline_secret = json_object_get(obj, "secret");
    const char *s;

    if (file && inline_secret) {
        bad(p, "cluster", "give either 'secret_file' or 'secret', not both");
        return true;
    }
    if (!file && !inline_secret) {
        bad(p, "cluster", "missing key 'secret_file' (or 'secret')");
        return true;
    }
    if (file && (s = get_string(p, "cluster.secret_file", file)))
        return read_secret_file(p, c, s);
    if (inline_secret && (s = get_string(p, "cluster.secret", inline_secret)))
        return take_secret(p, "cluster.secret", "it has", c, (const uint8_t *)s, strlen(s));
    return true;
}

uint32_t wr_cluster_node_id(const char *name)
{
    uint32_t id = wr_crc32c_update(0, name, strlen(name));

    return id != 0 ? id : 1;
}

int wr_cluster_config_learn(wr_cluster_config_t *c, const char *name, size_t *slot)
{
    uint32_t id = wr_cluster_node_id(name);

    for (*slot = 0; *slot < c->n_nodes; (*slot)++) {
        if (strcmp(c->nodes[*slot].name, name) == 0)
            return WR_OK;
        if (wr_cluster_node_id(c->nodes[*slot].name) == id)
            return WR_EEXIST;
    }
    if (c->n_nodes >= c->cap_nodes)
        return WR_ETOOBIG;
    if (!(c->nodes[c->n_nodes].name = strdup(name)))
        return WR_ENOMEM;
    c->joins[c->n_nodes] = true;
    *slot = c->n_nodes++;
    return WR_OK;
}

/* Names and their member ids are unique, this node is one of them and its entry names its listen port. */
static void check_members(probs_t *p, wr_cluster_config_t *c)
{
    char path[64];
    bool found = false;

    for (size_t i = 0; i < c->n_nodes; i++) {
        const wr_cluster_node_t *n = &c->nodes[i];

        snprintf(path, sizeof(path), "cluster.nodes[%zu].name", i);
        for (size_t j = 0; j < i && n->name; j++) {
            if (c->nodes[j].name && strcmp(c->nodes[j].name, n->name) == 0)
                bad(p, path, "duplicate node name '%s' (also cluster.nodes[%zu])", n->name, j);
            else if (c->nodes[j].name && wr_cluster_node_id(c->nodes[j].name) == wr_cluster_node_id(n->name))
                bad(p, path,
                    "node name '%s' has the same Raft member id as '%s' (cluster.nodes[%zu]): rename one",
                    n->name, c->nodes[j].name, j);
        }
        if (!c->node || !n->name || strcmp(n->name, c->node) != 0 || found)
            continue;
        found = true;
        c->self = i;
        snprintf(path, sizeof(path), "cluster.nodes[%zu].port", i);
        if (n->port != 0 && c->listen_port != 0 && n->port != c->listen_port)
            bad(p, path, "this node's entry must name its listen port %u, got %u", c->listen_port, n->port);
    }
    if (c->node && c->n_nodes > 0 && !found)
        bad(p, "cluster.node", "'%s' is not one of cluster.nodes", c->node);
}

/* A new cluster's first members are the nodes not marked "seed": false. */
static void check_seeds(probs_t *p, const wr_cluster_config_t *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->joins[i])
            return;
    }
    if (c->n_nodes > 0)
        bad(p, "cluster.nodes", "every node has \"seed\": false; a new cluster needs at least one seed");
}

static bool parse_listen(probs_t *p, wr_cluster_config_t *c, const json_t *v)
{
    wr_cluster_node_t e = {0};
    bool ok = parse_endpoint(p, "cluster.listen", v, false, &e);

    c->listen_address = e.address;
    c->listen_port = e.port;
    return ok;
}

/* One key of the section; false on ENOMEM. */
static bool parse_key(probs_t *p, wr_cluster_config_t *c, const char *key, const json_t *v)
{
    char path[300];
    const char *s;

    snprintf(path, sizeof(path), "cluster.%s", key);
    if (strcmp(key, "name") == 0)
        return !(s = get_name(p, path, v)) || set(&c->name, s);
    if (strcmp(key, "node") == 0)
        return !(s = get_name(p, path, v)) || set(&c->node, s);
    if (strcmp(key, "listen") == 0)
        return parse_listen(p, c, v);
    if (strcmp(key, "nodes") == 0)
        return parse_nodes(p, c, v);
    if (strcmp(key, "tls") == 0) {
        if (!json_is_boolean(v))
            bad(p, path, "must be true or false");
        c->tls = json_is_true(v);
        return true;
    }
    if (strcmp(key, "secret_file") != 0 && strcmp(key, "secret") != 0)
        bad(p, path, "unknown key");
    return true;
}

static bool parse_section(probs_t *p, wr_cluster_config_t *c, const json_t *v)
{
    static const char *const required[] = {"name", "node", "listen", "nodes"};
    const char *key;
    const json_t *item;

    json_object_foreach((json_t *)v, key, item)
    {
        if (!parse_key(p, c, key, item))
            return false;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!json_object_get(v, required[i]))
            bad(p, "cluster", "missing key '%s'", required[i]);
    }
    if (!parse_secret(p, c, v))
        return false;
    check_members(p, c);
    check_seeds(p, c);
    return true;
}

int wr_cluster_config_parse(const json_t *v, wr_cluster_config_problem_fn problem, void *ctx,
                            wr_cluster_config_t **out)
{
    probs_t p = {problem, ctx, 0};
    wr_cluster_config_t *c;

    *out = NULL;
    if (!json_is_object(v)) {
        bad(&p, "cluster", "expected an object, got %s", kind(v));
        return WR_ESYNTAX;
    }
    c = calloc(1, sizeof(*c));
    if (!c || !parse_section(&p, c, v)) {
        wr_cluster_config_free(c);
        return WR_ENOMEM;
    }
    if (p.count > 0) {
        wr_cluster_config_free(c);
        return WR_ESYNTAX;
    }
    *out = c;
    return WR_OK;
}

void wr_cluster_config_free(wr_cluster_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_nodes; i++) {
        free(c->nodes[i].name);
        free(c->nodes[i].address);
    }
    free(c->nodes);
    free(c->joins);
    if (c->secret)
        explicit_bzero(c->secret, c->secret_len);
    free(c->secret);
    free(c->listen_address);
    free(c->node);
    free(c->name);
    free(c);
}
