/* SPDX-License-Identifier: MIT */
/*
 * The cost of the extra hop, measured in one process (scripts/bench runs
 * it): two nodes on one event loop with real peer links on loopback, as
 * tests/unit/cluster/test_remote.c sets them up. The same load runs against
 * the classic queue on its home node directly and through a proxy on the
 * other node (publish there, consume there); prints one JSON object per
 * scenario and the ratio. Both nodes share one core here, so the remote
 * figure also pays the home's work: a lower bound for separate processes.
 *
 *   bench_remote [MESSAGES] [BODY_BYTES] [PREFETCH]
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "broker/base/loop.h"
#include "broker/cluster/remote.h"
#include "broker/vhost/policy.h"
#include "core/status.h"
#include "protocol/props.h"
#include "tests/unit/cluster/free_port.h"

#define SECRET       "0123456789abcdef0123456789abcdef"
#define MAX_PREFETCH 1000
#define IN_FLIGHT    2000 /* published and not yet consumed, at most */

typedef struct {
    wr_cluster_config_t cfg;
    wr_peer_links_t *links;
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_vhost_env_t env;
    wr_vhost_t *vh;
    wr_remote_t *remote;
} node_t;

typedef struct {
    struct event_base *base;
    wr_cluster_node_t members[2];
    node_t n[2];
    wr_consumer_t *c;
    wr_queue_t *q; /* what the consumer is attached to */
    uint64_t consumed;
    size_t npending;
    uint16_t prefetch;
    wr_qtoken_t pending[MAX_PREFETCH];
} bench_t;

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_remote: %s\n", what);
    exit(1);
}

static uint16_t free_port(void)
{
    uint16_t port = wr_test_free_port();

    if (port == 0)
        die("no free port");
    return port;
}

static wr_vhost_t *vhost_of(void *ud, const char *name)
{
    node_t *n = ud;

    return strcmp(name, "/") == 0 ? n->vh : NULL;
}

static void node_start(bench_t *b, int i)
{
    node_t *n = &b->n[i];
    wr_peer_handler_t h = {0};
    wr_remote_deps_t d = {b->base, NULL, b->members[i].name, vhost_of, NULL, n};

    n->cfg = (wr_cluster_config_t){.name = "warren",
                                   .node = b->members[i].name,
                                   .secret = (uint8_t *)SECRET,
                                   .secret_len = strlen(SECRET),
                                   .listen_address = "127.0.0.1",
                                   .listen_port = b->members[i].port,
                                   .nodes = b->members,
                                   .n_nodes = 2,
                                   .self = (size_t)i};
    n->vhosts = wr_map_new();
    n->policies = wr_policies_new(n->vhosts);
    n->env = (wr_vhost_env_t){.base = b->base, .policies = n->policies, .consumer_timeout = -1};
    n->vh = wr_vhost_new(&n->env, "/");
    n->links = wr_peer_links_new(b->base, &n->cfg, &h);
    if (n->vh == NULL || n->links == NULL)
        die("out of memory");
    d.links = n->links;
    n->remote = wr_remote_new(&d);
    if (n->remote == NULL || wr_peer_links_start(n->links) != WR_OK)
        die("cannot start the links");
}

static bool can_take(wr_consumer_t *c)
{
    return true;
}

/* Acks wait for the end of the loop pass, as a client's acks would. */
static void deliver(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *t, bool redelivered)
{
    bench_t *b = c->owner;

    b->consumed++;
    c->unacked++;
    b->pending[b->npending++] = *t;
    wr_message_unref(m);
}

static void cancelled(wr_consumer_t *c)
{
    die("consumer cancelled");
}

static const wr_consumer_ops_t ops = {can_take, deliver, cancelled};

static void ack_pending(bench_t *b)
{
    for (size_t i = 0; i < b->npending; i++) {
        b->c->unacked--;
        wr_queue_settle(b->q, NULL, &b->pending[i], WR_SETTLE_ACK);
    }
    b->npending = 0;
}

static wr_message_t *message(size_t size)
{
    wr_props_t p = {.class_id = 60, .body_size = size};
    wr_buf_t h = WR_BUF_INIT;
    wr_message_t *m;

    wr_props_encode(&h, &p);
    m = wr_message_new(wr_bytes_str(""), wr_bytes_str("q"), (wr_bytes_t){h.data, h.len}, size);
    if (m == NULL)
        die("out of memory");
    memset(m->body, 'x', size);
    m->body_filled = size;
    wr_buf_free(&h);
    return m;
}

/* n messages published to pq and consumed from cq (prefetch, acks); msg/s,
 * and in *cpu_us the process's CPU microseconds per message (what a loaded
 * machine's other work does not change much). */
static double run(bench_t *b, wr_queue_t *pq, wr_queue_t *cq, uint64_t n, size_t size, double *cpu_us)
{
    wr_message_t *m = message(size);
    uint64_t published = 0;
    double t0, c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);

    b->c = wr_consumer_new(wr_bytes_str("bench"), (wr_bytes_t){NULL, 0}, &ops, b);
    b->c->prefetch = b->prefetch;
    b->q = cq;
    b->consumed = 0;
    if (wr_queue_consume(cq, b->c) != WR_OK)
        die("consume failed");
    t0 = now_s();
    while (b->consumed < n) {
        while (published < n && published - b->consumed < IN_FLIGHT && wr_queue_publish(pq, m, NULL) == WR_OK)
            published++;
        event_base_loop(b->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        ack_pending(b);
    }
    t0 = now_s() - t0;
    *cpu_us = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e6 / (double)n;
    wr_queue_cancel(b->c);
    wr_consumer_unref(b->c);
    wr_message_unref(m);
    return (double)n / t0;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
    unsigned long prefetch = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    wr_queue_opts_t o = {.durable = true};
    bench_t b = {0};
    wr_queue_t *home, *proxy;
    double local, remote, local_cpu, remote_cpu;

    if (n == 0 || size < 1 || prefetch < 1 || prefetch > MAX_PREFETCH)
        die("usage: bench_remote [MESSAGES] [BODY_BYTES] [PREFETCH 1..1000]");
    b.prefetch = (uint16_t)prefetch;
    wr_log_set_level(WR_LOG_ERROR);
    b.base = event_base_new();
    if (b.base == NULL || event_base_priority_init(b.base, WR_PRIO_LEVELS) != 0)
        die("no event loop");
    b.members[0] = (wr_cluster_node_t){"n1", "127.0.0.1", free_port()};
    b.members[1] = (wr_cluster_node_t){"n2", "127.0.0.1", free_port()};
    node_start(&b, 0);
    node_start(&b, 1);
    for (double end = now_s() + 10; !wr_peer_up(b.n[1].links, "n1") || !wr_peer_up(b.n[0].links, "n2");)
        if (now_s() > end || event_base_loop(b.base, EVLOOP_ONCE | EVLOOP_NONBLOCK) < 0)
            die("the nodes did not link");
    if (wr_vhost_queue_add(b.n[0].vh, wr_bytes_str("q"), &o, &home) != WR_OK ||
        (proxy = wr_remote_queue_new(b.n[1].remote, b.n[1].vh, wr_bytes_str("q"), &o, "n1")) == NULL ||
        wr_vhost_queue_attach(b.n[1].vh, proxy) != WR_OK)
        die("cannot make the queues");
    local = run(&b, home, home, n, size, &local_cpu);
    remote = run(&b, proxy, proxy, n, size, &remote_cpu);
    printf("{\"messages\": %llu, \"body_bytes\": %zu, \"prefetch\": %u, \"local_rate\": %.0f, "
           "\"remote_rate\": %.0f, \"ratio\": %.3f, \"local_cpu_us\": %.2f, \"remote_cpu_us\": %.2f}\n",
           (unsigned long long)n, size, b.prefetch, local, remote, remote / local, local_cpu, remote_cpu);
    for (int i = 1; i >= 0; i--) {
        wr_remote_free(b.n[i].remote);
        wr_peer_links_free(b.n[i].links);
        wr_vhost_free(b.n[i].vh);
        wr_policies_free(b.n[i].policies);
        wr_map_free(b.n[i].vhosts);
    }
    event_base_free(b.base);
    return 0;
}
