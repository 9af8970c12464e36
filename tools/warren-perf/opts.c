/* SPDX-License-Identifier: MIT */
/*
 * Command-line parsing for warren-perf: PerfTest's short flags where PerfTest
 * has them, long options for the rest, an amqp:// URI as an alternative to
 * -h/-p, and the cross-checks that keep a run from deadlocking.
 */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define MAX_BODY (64u * 1024 * 1024)

enum {
    OPT_URI = 256,
    OPT_MULTI_ACK,
    OPT_BINDINGS,
    OPT_BINDING_PATTERN,
    OPT_QUEUES,
    OPT_QUEUE_ARG,
    OPT_PREDECLARED,
    OPT_JSON,
    OPT_PID,
    OPT_IDLE_CONNS,
    OPT_NO_CONSUME_DURING,
    OPT_UNBATCHED,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'h'},
    {"port", required_argument, NULL, 'p'},
    {"uri", required_argument, NULL, OPT_URI},
    {"producers", required_argument, NULL, 'x'},
    {"consumers", required_argument, NULL, 'y'},
    {"size", required_argument, NULL, 's'},
    {"queue", required_argument, NULL, 'u'},
    {"flag", required_argument, NULL, 'f'},
    {"confirm", required_argument, NULL, 'c'},
    {"qos", required_argument, NULL, 'q'},
    {"autoack", no_argument, NULL, 'a'},
    {"multi-ack-every", required_argument, NULL, OPT_MULTI_ACK},
    {"time", required_argument, NULL, 'z'},
    {"rate", required_argument, NULL, 'r'},
    {"pmessages", required_argument, NULL, 'C'},
    {"type", required_argument, NULL, 't'},
    {"exchange", required_argument, NULL, 'e'},
    {"routing-key", required_argument, NULL, 'k'},
    {"bindings", required_argument, NULL, OPT_BINDINGS},
    {"binding-pattern", required_argument, NULL, OPT_BINDING_PATTERN},
    {"queues", required_argument, NULL, OPT_QUEUES},
    {"queue-arg", required_argument, NULL, OPT_QUEUE_ARG},
    {"predeclared", no_argument, NULL, OPT_PREDECLARED},
    {"json", no_argument, NULL, OPT_JSON},
    {"pid", required_argument, NULL, OPT_PID},
    {"connections-idle", required_argument, NULL, OPT_IDLE_CONNS},
    {"no-consume-during", no_argument, NULL, OPT_NO_CONSUME_DURING},
    {"unbatched", no_argument, NULL, OPT_UNBATCHED},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fputs("usage: warren-perf [options]\n"
          "Connection:\n"
          "  -h, --host HOST          broker host (default 127.0.0.1)\n"
          "  -p, --port PORT          broker port (default 5672)\n"
          "      --uri URI            amqp://user:pass@host:port/vhost instead of -h/-p\n"
          "Load:\n"
          "  -x, --producers N        producer connections (default 1)\n"
          "  -y, --consumers N        consumer connections (default 1)\n"
          "  -s, --size BYTES         body size, at least 8 (default 16)\n"
          "  -r, --rate N             msgs/s per producer (default: unlimited)\n"
          "  -C, --pmessages N        messages per producer, then stop\n"
          "  -z, --time SECONDS       run length (default 10 when -C is not given)\n"
          "  -f, --flag persistent    delivery_mode 2, durable queues and exchange\n"
          "  -c, --confirm N          publisher confirms, at most N unconfirmed per producer\n"
          "  -q, --qos N              consumer prefetch count (default: unlimited)\n"
          "  -a, --autoack            consume with no-ack\n"
          "      --multi-ack-every N  ack with multiple=true every N deliveries\n"
          "      --unbatched          one publish or ack per write, one publish per producer\n"
          "                           per loop pass (as pika, Java, Go, librabbitmq do)\n"
          "Topology:\n"
          "  -u, --queue NAME         queue name (default warren-perf)\n"
          "      --queues N           N queues NAME-0..NAME-N-1; clients spread round-robin\n"
          "      --queue-arg K=V      queue argument, integer or string (repeatable)\n"
          "  -e, --exchange NAME      exchange (default: the default exchange)\n"
          "  -t, --type TYPE          exchange type (default direct)\n"
          "  -k, --routing-key KEY    routing and binding key (default: the queue name)\n"
          "      --bindings N         bind N keys from --binding-pattern ({i} = index)\n"
          "      --binding-pattern P  e.g. 'perf.*.{i}.#'\n"
          "      --predeclared        use existing exchange/queues; declare and delete nothing\n"
          "Phases and measurement:\n"
          "      --no-consume-during  publish all -C messages first, then drain them\n"
          "      --connections-idle N open N idle connections and report the broker's RSS\n"
          "      --pid PID            sample the broker's VmRSS/VmHWM and CPU time during the run\n"
          "      --json               one JSON object on stdout instead of text\n",
          f);
}

/* Names the option as the user may have spelt it: "-x/--producers" for
 * one with a short form, "--uri" for a long-only one. */
static void bad_value(int c, const char *arg)
{
    for (const struct option *lo = long_opts; lo->name; lo++) {
        if (lo->val != c)
            continue;
        if (c < OPT_URI)
            fprintf(stderr, "warren-perf: bad value for -%c/--%s: '%s'\n", c, lo->name, arg);
        else
            fprintf(stderr, "warren-perf: bad value for --%s: '%s'\n", lo->name, arg);
        return;
    }
}

/* Strict unsigned parse: all of s, no sign, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return WR_ESYNTAX;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return WR_ESYNTAX;
    *out = v;
    return WR_OK;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, max, &v) != WR_OK)
        return WR_ESYNTAX;
    *out = (uint32_t)v;
    return WR_OK;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0)
        return WR_ESYNTAX;
    *out = v;
    return WR_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into out (size cap) decoding %XX escapes. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i < 3 || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0)
                return WR_ESYNTAX;
            c = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap)
            return WR_ETOOBIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return WR_OK;
}

/* amqp://[user[:pass]@]host[:port][/vhost]. A missing or empty path is the
 * vhost "/", as in RabbitMQ's clients; "%2F" spells "/" explicitly. */
static int parse_uri(wr_opts_t *o, const char *uri)
{
    static const char scheme[] = "amqp://";
    if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
        return WR_ESYNTAX;
    const char *p = uri + sizeof(scheme) - 1;
    const char *slash = strchr(p, '/');
    const char *auth_end = slash ? slash : p + strlen(p);
    const char *at = memchr(p, '@', (size_t)(auth_end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon ? colon : at;
        if (unescape(p, (size_t)(user_end - p), o->user, sizeof(o->user)) != WR_OK)
            return WR_ESYNTAX;
        if (colon && unescape(colon + 1, (size_t)(at - colon - 1), o->pass, sizeof(o->pass)) != WR_OK)
            return WR_ESYNTAX;
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(auth_end - p));
    const char *host_end = colon ? colon : auth_end;
    if (host_end > p && unescape(p, (size_t)(host_end - p), o->host, sizeof(o->host)) != WR_OK)
        return WR_ESYNTAX;
    if (colon) {
        char port[8];
        uint32_t v;
        size_t n = (size_t)(auth_end - colon - 1);
        if (n == 0 || n >= sizeof(port))
            return WR_ESYNTAX;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        if (parse_u32(port, UINT16_MAX, &v) != WR_OK || v == 0)
            return WR_ESYNTAX;
        o->port = (uint16_t)v;
    }
    if (slash && slash[1] != '\0' &&
        unescape(slash + 1, strlen(slash + 1), o->vhost, sizeof(o->vhost)) != WR_OK)
        return WR_ESYNTAX;
    return WR_OK;
}

static int add_queue_arg(wr_opts_t *o, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return WR_ESYNTAX;
    wr_queue_arg_t *grown = realloc(o->qargs, (o->nqargs + 1) * sizeof(*grown));
    if (!grown)
        return WR_ENOMEM;
    o->qargs = grown;
    char *copy = strdup(kv);
    if (!copy)
        return WR_ENOMEM;
    char *val = copy + (eq - kv);
    *val++ = '\0';
    wr_queue_arg_t *a = &o->qargs[o->nqargs++];
    a->key = copy;
    a->str = val;
    a->num = 0;
    errno = 0;
    char *end;
    long long n = strtoll(val, &end, 10);
    if (*val != '\0' && *end == '\0' && errno == 0) {
        a->str = NULL;
        a->num = n;
    }
    return WR_OK;
}

static void set_defaults(wr_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 5672;
    snprintf(o->user, sizeof(o->user), "guest");
    snprintf(o->pass, sizeof(o->pass), "guest");
    snprintf(o->vhost, sizeof(o->vhost), "/");
    o->producers = 1;
    o->consumers = 1;
    o->body_size = 16;
    o->queue = "warren-perf";
    o->nqueues = 1;
    o->exchange = "";
    o->type = "direct";
}

/* The combinations that would stall or mean nothing. */
static int check(wr_opts_t *o)
{
    if (o->body_size < 8 || o->body_size > MAX_BODY) {
        fprintf(stderr, "warren-perf: -s must be 8..%u (the body carries an 8-byte timestamp)\n", MAX_BODY);
        return WR_ESYNTAX;
    }
    if (!o->autoack && o->prefetch > 0 && o->multi_ack > o->prefetch) {
        fprintf(stderr, "warren-perf: --multi-ack-every %" PRIu32 " exceeds -q %u: consumers would stall\n",
                o->multi_ack, o->prefetch);
        return WR_ESYNTAX;
    }
    if (o->no_consume_during && o->count == 0) {
        fprintf(stderr, "warren-perf: --no-consume-during needs -C (how many to publish first)\n");
        return WR_ESYNTAX;
    }
    if (o->bindings > 0 && (!o->binding_pattern || o->exchange[0] == '\0')) {
        fprintf(stderr, "warren-perf: --bindings needs --binding-pattern and an exchange (-e)\n");
        return WR_ESYNTAX;
    }
    if (o->exchange[0] == '\0' && strcmp(o->type, "direct") != 0) {
        fprintf(stderr, "warren-perf: -t %s needs an exchange name (-e); the default exchange is direct\n",
                o->type);
        return WR_ESYNTAX;
    }
    if (o->idle_conns > 0) {
        o->producers = 0;
        o->consumers = 0;
    } else if (o->producers == 0 && (o->consumers == 0 || o->count > 0)) {
        fprintf(stderr, "warren-perf: nothing to measure: -C needs producers, a run needs -x or -y\n");
        return WR_ESYNTAX;
    }
    if (o->seconds == 0 && o->count == 0 && o->idle_conns == 0)
        o->seconds = 10;
    return WR_OK;
}

int wr_opts_parse(wr_opts_t *o, int argc, char **argv)
{
    set_defaults(o);
    optind = 1;
    int c;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    while ((c = getopt_long(argc, argv, "h:p:x:y:s:u:f:c:q:az:r:C:t:e:k:", long_opts, NULL)) != -1) {
        int rc = WR_OK;
        switch (c) {
        case 'h':
            if (strlen(optarg) >= sizeof(o->host))
                rc = WR_ESYNTAX;
            else
                snprintf(o->host, sizeof(o->host), "%s", optarg);
            break;
        case 'p':
            rc = parse_u32(optarg, UINT16_MAX, &u32);
            o->port = (uint16_t)u32;
            if (rc == WR_OK && u32 == 0)
                rc = WR_ESYNTAX;
            break;
        case OPT_URI:
            rc = parse_uri(o, optarg);
            break;
        case 'x':
            rc = parse_u32(optarg, 10000, &o->producers);
            break;
        case 'y':
            rc = parse_u32(optarg, 10000, &o->consumers);
            break;
        case 's':
            rc = parse_u64(optarg, SIZE_MAX, &u64);
            o->body_size = (size_t)u64;
            break;
        case 'u':
            o->queue = optarg;
            if (strlen(optarg) > 200)
                rc = WR_ESYNTAX;
            break;
        case 'f':
            if (strcmp(optarg, "persistent") == 0)
                o->persistent = true;
            else
                rc = WR_ESYNTAX;
            break;
        case 'c':
            rc = parse_u32(optarg, 1u << 24, &o->confirm);
            break;
        case 'q':
            rc = parse_u32(optarg, UINT16_MAX, &u32);
            o->prefetch = (uint16_t)u32;
            break;
        case 'a':
            o->autoack = true;
            break;
        case OPT_MULTI_ACK:
            rc = parse_u32(optarg, UINT32_MAX, &o->multi_ack);
            break;
        case 'z':
            rc = parse_seconds(optarg, &o->seconds);
            break;
        case 'r':
            rc = parse_seconds(optarg, &o->rate);
            break;
        case 'C':
            rc = parse_u64(optarg, UINT64_MAX / 2, &o->count);
            break;
        case 't':
            o->type = optarg;
            break;
        case 'e':
            o->exchange = optarg;
            break;
        case 'k':
            o->routing_key = optarg;
            break;
        case OPT_BINDINGS:
            rc = parse_u32(optarg, 10000000, &o->bindings);
            break;
        case OPT_BINDING_PATTERN:
            o->binding_pattern = optarg;
            break;
        case OPT_QUEUES:
            rc = parse_u32(optarg, 100000, &o->nqueues);
            if (rc == WR_OK && o->nqueues == 0)
                rc = WR_ESYNTAX;
            break;
        case OPT_QUEUE_ARG:
            rc = add_queue_arg(o, optarg);
            break;
        case OPT_PREDECLARED:
            o->predeclared = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_PID:
            rc = parse_u32(optarg, INT_MAX, &u32);
            o->pid = (pid_t)u32;
            if (rc == WR_OK && u32 == 0)
                rc = WR_ESYNTAX;
            break;
        case OPT_IDLE_CONNS:
            rc = parse_u32(optarg, 1000000, &o->idle_conns);
            break;
        case OPT_NO_CONSUME_DURING:
            o->no_consume_during = true;
            break;
        case OPT_UNBATCHED:
            o->unbatched = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return WR_EEXIST;
        default:
            usage(stderr);
            return WR_ESYNTAX;
        }
        if (rc != WR_OK) {
            bad_value(c, optarg);
            return WR_ESYNTAX;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warren-perf: unexpected argument '%s'\n", argv[optind]);
        return WR_ESYNTAX;
    }
    return check(o);
}

void wr_opts_free(wr_opts_t *o)
{
    for (size_t i = 0; i < o->nqargs; i++)
        free(o->qargs[i].key);
    free(o->qargs);
    o->qargs = NULL;
    o->nqargs = 0;
}

void wr_opts_queue_name(const wr_opts_t *o, uint32_t i, char *out, size_t n)
{
    if (o->nqueues == 1)
        snprintf(out, n, "%s", o->queue);
    else
        snprintf(out, n, "%s-%" PRIu32, o->queue, i);
}
