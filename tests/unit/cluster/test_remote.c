/* SPDX-License-Identifier: MIT */
/*
 * Tests of broker/cluster/remote*.c: two nodes in one process on one event
 * loop, linked by real peer links on loopback. Node n1 is the home of a
 * classic queue in its vhost; node n2 has a proxy for it, driven through
 * the queue-type interface with recording consumers and confirms, as a
 * channel would. Every wait is a condition with a deadline.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "broker/cluster/remote.h"
#include "broker/cluster/remote_wire.h"
#include "broker/vhost/policy.h"
#include "protocol/methods.h"
#include "core/status.h"
#include "tests/unit/broker/loop_fixture.h"
#include "tests/unit/runner.h"
#include "tests/unit/cluster/free_port.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define MAXD   1100

typedef struct {
    wr_cluster_config_t cfg;
    wr_peer_links_t *links;
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_vhost_env_t env;
    wr_vhost_t *vh;
    wr_remote_t *remote;
} node_t;

/* A consumer as a channel would be: it records deliveries and can be slow. */
typedef struct {
    wr_consumer_t *c;
    bool closed; /* can_take says no */
    int cancelled;
    size_t n;
    wr_message_t *m[MAXD];
    wr_qtoken_t t[MAXD];
    bool redelivered[MAXD];
} tcons_t;

typedef struct {
    wr_confirm_t base;
    int done;
} tconf_t;

typedef struct {
    struct event_base *base;
    wr_cluster_node_t members[2];
    node_t n[2];                        /* n[0] is n1, the home; n[1] is n2 */
    wr_queue_t *home, *proxy;           /* the queue "q" */
    wr_queue_t *sync_home, *sync_proxy; /* "sync", for barriers */
} fx_t;

static fx_t fx;

/* ---------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the loop until cond holds, failing after 10 s. */
#define UNTIL(cond)                                                                                          \
    do {                                                                                                     \
        double deadline_ = now_s() + 10;                                                                     \
        while (!(cond)) {                                                                                    \
            ck_assert_msg(now_s() < deadline_, "timed out waiting for: %s", #cond);                          \
            event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);                                         \
        }                                                                                                    \
    } while (0)

static uint16_t free_port(void)
{
    uint16_t port = wr_test_free_port();

    ck_assert_uint_ne(port, 0);
    return port;
}

static wr_vhost_t *vhost_of(void *ud, const char *name)
{
    node_t *n = ud;

    return strcmp(name, "/") == 0 ? n->vh : NULL;
}

/* Node i's links and remote service, started. */
static void node_link(int i)
{
    node_t *n = &fx.n[i];
    wr_peer_handler_t h = {0};
    wr_remote_deps_t d = {fx.base, NULL, fx.members[i].name, vhost_of, NULL, n};

    n->links = wr_peer_links_new(fx.base, &n->cfg, &h);
    ck_assert_ptr_nonnull(n->links);
    d.links = n->links;
    n->remote = wr_remote_new(&d);
    ck_assert_ptr_nonnull(n->remote);
    ck_assert_int_eq(wr_peer_links_start(n->links), WR_OK);
}

/* Node i stops as a killed node would look to the other: its service and links go. */
static void node_unlink(int i)
{
    wr_remote_free(fx.n[i].remote);
    wr_peer_links_free(fx.n[i].links);
    fx.n[i].remote = NULL;
    fx.n[i].links = NULL;
}

static void node_start(int i)
{
    node_t *n = &fx.n[i];

    n->cfg = (wr_cluster_config_t){.name = "warren",
                                   .node = fx.members[i].name,
                                   .secret = (uint8_t *)SECRET,
                                   .secret_len = strlen(SECRET),
                                   .listen_address = "127.0.0.1",
                                   .listen_port = fx.members[i].port,
                                   .nodes = fx.members,
                                   .n_nodes = 2,
                                   .self = (size_t)i};
    n->vhosts = wr_map_new();
    n->policies = wr_policies_new(n->vhosts);
    n->env = (wr_vhost_env_t){.base = fx.base, .policies = n->policies, .consumer_timeout = -1};
    n->vh = wr_vhost_new(&n->env, "/");
    ck_assert_ptr_nonnull(n->vh);
    node_link(i);
}

static void node_stop(int i)
{
    node_t *n = &fx.n[i];

    node_unlink(i);
    wr_vhost_free(n->vh);
    wr_policies_free(n->policies);
    wr_map_free(n->vhosts);
}

/* "name" at n1 and its proxy at n2. */
static void queue_pair(const char *name, wr_queue_t **home, wr_queue_t **proxy)
{
    wr_queue_opts_t o = {.durable = true};

    ck_assert_int_eq(wr_vhost_queue_add(fx.n[0].vh, wr_bytes_str(name), &o, home), WR_OK);
    *proxy = wr_remote_queue_new(fx.n[1].remote, fx.n[1].vh, wr_bytes_str(name), &o, "n1");
    ck_assert_ptr_nonnull(*proxy);
    ck_assert_int_eq(wr_vhost_queue_attach(fx.n[1].vh, *proxy), WR_OK);
}

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    wr_log_set_level(WR_LOG_ERROR);
    fx.base = wr_test_base_new();
    fx.members[0] = (wr_cluster_node_t){"n1", "127.0.0.1", free_port()};
    fx.members[1] = (wr_cluster_node_t){"n2", "127.0.0.1", free_port()};
    node_start(0);
    node_start(1);
    UNTIL(wr_peer_up(fx.n[1].links, "n1") && wr_peer_up(fx.n[0].links, "n2"));
    queue_pair("q", &fx.home, &fx.proxy);
    queue_pair("sync", &fx.sync_home, &fx.sync_proxy);
}

static void teardown(void)
{
    node_stop(1);
    node_stop(0);
    event_base_free(fx.base);
}

static bool tc_can_take(wr_consumer_t *c)
{
    return !((tcons_t *)c->owner)->closed;
}

static void tc_deliver(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *t, bool redelivered)
{
    tcons_t *tc = c->owner;

    ck_assert_uint_lt(tc->n, MAXD);
    tc->m[tc->n] = m;
    tc->t[tc->n] = *t;
    tc->redelivered[tc->n] = redelivered;
    tc->n++;
}

static void tc_cancelled(wr_consumer_t *c)
{
    ((tcons_t *)c->owner)->cancelled++;
}

static const wr_consumer_ops_t tc_ops = {tc_can_take, tc_deliver, tc_cancelled};

static tcons_t *consume(wr_queue_t *q, uint16_t prefetch, bool no_ack)
{
    tcons_t *tc = calloc(1, sizeof(*tc));

    ck_assert_ptr_nonnull(tc);
    tc->c = wr_consumer_new(wr_bytes_str("ctag"), (wr_bytes_t){NULL, 0}, &tc_ops, tc);
    tc->c->prefetch = prefetch;
    tc->c->no_ack = no_ack;
    ck_assert_int_eq(wr_queue_consume(q, tc->c), WR_OK);
    return tc;
}

static void tc_free(tcons_t *tc)
{
    wr_queue_cancel(tc->c);
    wr_consumer_unref(tc->c);
    for (size_t i = 0; i < tc->n; i++)
        wr_message_unref(tc->m[i]);
    free(tc);
}

/* Settles delivery i as the channel would (the message reference goes with it). */
static void settle(wr_queue_t *q, tcons_t *tc, size_t i, wr_settle_t how)
{
    wr_queue_settle(q, tc->m[i], &tc->t[i], how);
    tc->m[i] = NULL;
}

static void conf_done(wr_confirm_t *c)
{
    ((tconf_t *)c)->done++;
}

/* Publishes body to q (with a confirm when conf); the publisher's hold on
 * conf is released, as the channel does once routing is over. */
static int publish(wr_queue_t *q, const char *body, tconf_t *conf)
{
    wr_message_t *m = wr_test_message("", "q", body, false);
    int rc;

    if (conf != NULL)
        *conf = (tconf_t){{1, false, conf_done}, 0};
    rc = wr_queue_publish(q, m, conf != NULL ? &conf->base : NULL);
    if (rc != WR_OK && conf != NULL)
        conf->base.failed = true;
    if (conf != NULL)
        wr_confirm_release(&conf->base, true);
    wr_message_unref(m);
    return rc;
}

/* Whatever n1 sent n2 before this call has arrived: two confirmed
 * round trips (a dispatch woken by the first has run before the second). */
static void barrier(void)
{
    for (int i = 0; i < 2; i++) {
        tconf_t c;

        ck_assert_int_eq(publish(fx.sync_proxy, "sync", &c), WR_OK);
        UNTIL(c.done == 1);
    }
}

static bool body_is(const wr_message_t *m, const char *s)
{
    return m != NULL && m->body_size == strlen(s) && memcmp(m->body, s, m->body_size) == 0;
}

/* ---------------------------------------------------------------- tests */

START_TEST(publish_with_confirm_reaches_home)
{
    tconf_t c[3];
    char body[16];

    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(publish(fx.proxy, body, &c[i]), WR_OK);
    }
    UNTIL(c[0].done && c[1].done && c[2].done);
    for (int i = 0; i < 3; i++)
        ck_assert(!c[i].base.failed);
    ck_assert_uint_eq(wr_queue_ready(fx.home), 3);
    ck_assert_uint_eq(wr_queue_stats(fx.home)->publish, 3);
    ck_assert_str_eq(wr_queue_type_name(fx.proxy), "classic");
    ck_assert_str_eq(wr_remote_queue_home(fx.proxy), "n1");
    ck_assert_ptr_null(wr_remote_queue_home(fx.home));
}
END_TEST

START_TEST(a_publish_to_a_queue_gone_at_home_is_nacked)
{
    tconf_t c;

    wr_vhost_queue_delete(fx.n[0].vh, fx.home);
    ck_assert_int_eq(publish(fx.proxy, "lost", &c), WR_OK);
    UNTIL(c.done == 1);
    ck_assert(c.base.failed);
}
END_TEST

START_TEST(prefetch_two_keeps_exactly_two_in_flight)
{
    tcons_t *tc;
    char body[16];

    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(publish(fx.home, body, NULL), WR_OK);
    }
    tc = consume(fx.proxy, 2, false);
    UNTIL(tc->n >= 2);
    barrier();
    ck_assert_uint_eq(tc->n, 2);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 2);
    ck_assert_uint_eq(wr_queue_ready(fx.home), 3);
    ck_assert(body_is(tc->m[0], "m0") && body_is(tc->m[1], "m1"));
    /* An ack reopens the window by one. */
    settle(fx.proxy, tc, 0, WR_SETTLE_ACK);
    UNTIL(tc->n >= 3);
    barrier();
    ck_assert_uint_eq(tc->n, 3);
    ck_assert(body_is(tc->m[2], "m2"));
    ck_assert_uint_eq(wr_queue_stats(fx.home)->ack, 1);
    tc_free(tc);
}
END_TEST

START_TEST(ack_requeue_and_discard_act_at_home)
{
    tcons_t *tc;

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    ck_assert_int_eq(publish(fx.home, "b", NULL), WR_OK);
    ck_assert_int_eq(publish(fx.home, "c", NULL), WR_OK);
    tc = consume(fx.proxy, 3, false);
    UNTIL(tc->n == 3);
    ck_assert(!tc->redelivered[0] && !tc->redelivered[1] && !tc->redelivered[2]);
    settle(fx.proxy, tc, 0, WR_SETTLE_ACK);
    settle(fx.proxy, tc, 2, WR_SETTLE_DISCARD);
    UNTIL(wr_queue_unacked(fx.home) == 1);
    ck_assert_uint_eq(wr_queue_stats(fx.home)->ack, 1);
    ck_assert_uint_eq(wr_queue_ready(fx.home), 0);
    /* The requeued one comes back, marked redelivered. */
    settle(fx.proxy, tc, 1, WR_SETTLE_REQUEUE);
    UNTIL(tc->n == 4);
    ck_assert(body_is(tc->m[3], "b"));
    ck_assert(tc->redelivered[3]);
    ck_assert_uint_eq(wr_queue_stats(fx.home)->redeliver, 1);
    ck_assert_uint_eq(wr_queue_unacked(fx.proxy), 1);
    tc_free(tc);
}
END_TEST

START_TEST(home_down_cancels_consumers_and_nacks_confirms)
{
    tcons_t *tc = consume(fx.proxy, 0, false);
    wr_amqp_error_t err;
    tconf_t c;

    ck_assert_int_eq(publish(fx.home, "x", NULL), WR_OK);
    UNTIL(tc->n == 1);
    /* Sent, not yet confirmed when n1 goes. */
    ck_assert_int_eq(publish(fx.proxy, "pending", &c), WR_OK);
    ck_assert_int_eq(c.done, 0);
    node_unlink(0);
    UNTIL(tc->cancelled == 1 && c.done == 1);
    ck_assert(c.base.failed);
    ck_assert_ptr_null(tc->c->queue);
    ck_assert_uint_eq(wr_queue_consumer_count(fx.proxy), 0);
    /* While down: publishes are unroutable there, consumes refused with RabbitMQ's 404. */
    ck_assert(wr_remote_queue_down(fx.proxy));
    ck_assert_int_eq(publish(fx.proxy, "later", &c), WR_ENOENT);
    ck_assert(c.base.failed);
    ck_assert_int_eq(wr_queue_consume(fx.proxy, tc->c), WR_ENOENT);
    wr_remote_queue_down_error(fx.proxy, "/", WR_BASIC_CONSUME, &err);
    ck_assert_int_eq(err.code, 404);
    ck_assert_str_eq(err.text, "NOT_FOUND - home node 'n1' of durable queue 'q' in vhost '/' is down or "
                               "inaccessible");
    /* The settlement of a delivery from before is dropped (the home requeued it). */
    settle(fx.proxy, tc, 0, WR_SETTLE_ACK);
    tc_free(tc);
    /* n1 comes back: the proxy is usable again. */
    node_link(0);
    UNTIL(!wr_remote_queue_down(fx.proxy));
    tc = consume(fx.proxy, 0, false);
    UNTIL(tc->n == 1);
    ck_assert(body_is(tc->m[0], "x"));
    ck_assert(tc->redelivered[0]);
    ck_assert_int_eq(publish(fx.proxy, "again", &c), WR_OK);
    UNTIL(c.done == 1);
    ck_assert(!c.base.failed);
    tc_free(tc);
}
END_TEST

START_TEST(user_down_requeues_its_deliveries_at_home)
{
    tcons_t *tc = consume(fx.proxy, 0, false);

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    ck_assert_int_eq(publish(fx.home, "b", NULL), WR_OK);
    UNTIL(tc->n == 2);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 2);
    ck_assert_uint_eq(wr_queue_consumer_count(fx.home), 1);
    node_unlink(1);
    UNTIL(wr_queue_ready(fx.home) == 2);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 0);
    ck_assert_uint_eq(wr_queue_consumer_count(fx.home), 0);
    ck_assert_int_eq(tc->cancelled, 1);
    tc_free(tc);
    node_link(1);
}
END_TEST

START_TEST(queue_deleted_at_home_cancels_the_remote_consumer)
{
    tcons_t *tc = consume(fx.proxy, 0, false);

    UNTIL(wr_queue_consumer_count(fx.home) == 1);
    wr_vhost_queue_delete(fx.n[0].vh, fx.home);
    UNTIL(tc->cancelled == 1);
    ck_assert_uint_eq(wr_queue_consumer_count(fx.proxy), 0);
    tc_free(tc);
}
END_TEST

/* The proxy is deleted on its node (the queue was deleted cluster-wide):
 * its consumers are cancelled there and detached at the home. */
START_TEST(proxy_deleted_cancels_its_consumers)
{
    tcons_t *tc = consume(fx.proxy, 0, false);

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    UNTIL(tc->n == 1);
    wr_queue_ref(fx.proxy); /* as the channel's unacked delivery holds it */
    wr_vhost_queue_delete(fx.n[1].vh, fx.proxy);
    ck_assert_int_eq(tc->cancelled, 1);
    UNTIL(wr_queue_consumer_count(fx.home) == 0);
    /* The delivery it still holds can be settled: back to the home. */
    settle(fx.proxy, tc, 0, WR_SETTLE_REQUEUE);
    wr_queue_unref(fx.proxy);
    UNTIL(wr_queue_ready(fx.home) == 1);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 0);
    tc_free(tc);
}
END_TEST

START_TEST(cancel_at_the_proxy_detaches_at_home)
{
    tcons_t *tc = consume(fx.proxy, 0, false);
    wr_remote_stats_t st;

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    UNTIL(tc->n == 1);
    wr_queue_cancel(tc->c);
    UNTIL(wr_queue_consumer_count(fx.home) == 0);
    /* Its delivery can still be acked, as after a basic.cancel. */
    settle(fx.proxy, tc, 0, WR_SETTLE_ACK);
    UNTIL(wr_queue_stats(fx.home)->ack == 1);
    wr_remote_stats(fx.n[0].remote, &st);
    ck_assert_uint_eq(st.home_consumers, 0);
    tc_free(tc);
}
END_TEST

START_TEST(no_ack_consumer)
{
    tcons_t *tc = consume(fx.proxy, 0, true);

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    UNTIL(tc->n == 1);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 0);
    ck_assert_uint_eq(wr_queue_stats(fx.home)->deliver_no_ack, 1);
    tc_free(tc);
}
END_TEST

/* A consumer whose channel cannot take more holds at most the credit window
 * at its node; the rest stays ready at the home. */
START_TEST(slow_consumer_holds_at_most_the_credit_window)
{
    tcons_t *tc = consume(fx.proxy, 0, true);
    wr_remote_stats_t st;
    char body[16];

    tc->closed = true;
    for (int i = 0; i < 1000; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(publish(fx.home, body, NULL), WR_OK);
    }
    UNTIL(wr_queue_ready(fx.home) == 1000 - WR_REMOTE_CREDIT_WINDOW);
    barrier();
    wr_remote_stats(fx.n[1].remote, &st);
    ck_assert_uint_eq(st.buffered, WR_REMOTE_CREDIT_WINDOW);
    ck_assert_uint_eq(wr_queue_ready(fx.home), 1000 - WR_REMOTE_CREDIT_WINDOW);
    ck_assert_uint_eq(tc->n, 0);
    /* The channel drains: everything arrives, in order. */
    tc->closed = false;
    wr_queue_wake(fx.proxy);
    UNTIL(tc->n == 1000);
    ck_assert(body_is(tc->m[0], "m0") && body_is(tc->m[999], "m999"));
    wr_remote_stats(fx.n[1].remote, &st);
    ck_assert_uint_eq(st.buffered, 0);
    tc_free(tc);
}
END_TEST

/* Publishing faster than the link drains: past the link's high mark the
 * proxy queues at most WR_REMOTE_OUTBOX_MAX (and one message), then
 * refuses (a nack); what it took all arrives. */
START_TEST(fast_publisher_is_bounded_by_the_outbox)
{
    static char big[65536];
    static tconf_t c[200];
    wr_remote_stats_t st;
    size_t taken = 0, refused = 0;

    memset(big, 'x', sizeof(big) - 1);
    for (int i = 0; i < 200; i++) {
        int rc = publish(fx.proxy, big, &c[i]);

        ck_assert(rc == WR_OK || rc == WR_EFULL);
        taken += rc == WR_OK;
        refused += rc == WR_EFULL;
    }
    wr_remote_stats(fx.n[1].remote, &st);
    ck_assert_uint_gt(st.outbox_bytes, 0);
    ck_assert_uint_le(st.outbox_bytes, WR_REMOTE_OUTBOX_MAX + sizeof(big) + 1024);
    ck_assert_uint_gt(refused, 0);
    for (int i = 0; i < 200; i++)
        if (!c[i].done)
            ck_assert_uint_lt((size_t)i, taken);
    UNTIL(wr_queue_ready(fx.home) == taken);
    for (size_t i = 0; i < 200; i++) {
        UNTIL(c[i].done == 1);
        ck_assert(c[i].base.failed == (i >= taken));
    }
    wr_remote_stats(fx.n[1].remote, &st);
    ck_assert_uint_eq(st.outbox_bytes, 0);
}
END_TEST

/* What a basic.get on the proxy came to. */
typedef struct {
    int calls;
    wr_queue_got_t what;
    wr_message_t *m;
    wr_qtoken_t t;
    bool redelivered;
    uint32_t left;
} tget_t;

static void got(void *ud, wr_queue_got_t what, wr_message_t *m, const wr_qtoken_t *t, bool redelivered,
                uint32_t left)
{
    tget_t *g = ud;

    g->calls++;
    g->what = what;
    g->m = m;
    if (t != NULL)
        g->t = *t;
    g->redelivered = redelivered;
    g->left = left;
}

/* basic.get through the proxy, answered by the home a round trip later. */
static tget_t *get(bool no_ack, wr_queue_get_t **out)
{
    static tget_t g;
    wr_queue_get_t *handle;

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(wr_remote_queue_get(fx.proxy, no_ack, got, &g, out != NULL ? out : &handle), WR_OK);
    ck_assert_int_eq(g.calls, 0);
    return &g;
}

START_TEST(get_takes_the_head_from_the_home)
{
    wr_message_t *m;
    tget_t *g;

    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    ck_assert_int_eq(publish(fx.home, "b", NULL), WR_OK);
    g = get(false, NULL);
    UNTIL(g->calls == 1);
    ck_assert_int_eq(g->what, WR_QUEUE_GOT);
    ck_assert(body_is(g->m, "a") && !g->redelivered);
    ck_assert_uint_eq(g->left, 1);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 1);
    ck_assert_uint_eq(wr_queue_stats(fx.proxy)->get, 1);
    /* A requeue puts it back at the head, marked redelivered. */
    m = g->m;
    wr_queue_settle(fx.proxy, m, &g->t, WR_SETTLE_REQUEUE);
    g = get(false, NULL);
    UNTIL(g->calls == 1);
    ck_assert(body_is(g->m, "a") && g->redelivered);
    wr_queue_settle(fx.proxy, g->m, &g->t, WR_SETTLE_ACK);
    UNTIL(wr_queue_stats(fx.home)->ack == 1);
    /* no-ack: nothing to settle. */
    g = get(true, NULL);
    UNTIL(g->calls == 1);
    ck_assert(body_is(g->m, "b"));
    ck_assert_uint_eq(g->left, 0);
    wr_message_unref(g->m);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 0);
    g = get(false, NULL);
    UNTIL(g->calls == 1);
    ck_assert_int_eq(g->what, WR_QUEUE_GOT_EMPTY);
}
END_TEST

START_TEST(get_of_a_queue_gone_at_home_or_cancelled)
{
    wr_queue_get_t *handle;
    tget_t *g;

    /* The asker went away: the message goes back. */
    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    g = get(false, &handle);
    wr_remote_get_cancel(handle);
    UNTIL(wr_queue_stats(fx.home)->get == 1 && wr_queue_ready(fx.home) == 1);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 0);
    ck_assert_int_eq(g->calls, 0);
    wr_vhost_queue_delete(fx.n[0].vh, fx.home);
    g = get(false, NULL);
    UNTIL(g->calls == 1);
    ck_assert_int_eq(g->what, WR_QUEUE_GOT_GONE);
}
END_TEST

START_TEST(get_pending_when_the_home_goes_down)
{
    tget_t *g = get(false, NULL);
    wr_queue_get_t *handle;

    node_unlink(0);
    UNTIL(g->calls == 1);
    ck_assert_int_eq(g->what, WR_QUEUE_GOT_DOWN);
    ck_assert_int_eq(wr_remote_queue_get(fx.proxy, false, got, g, &handle), WR_ENOENT);
    ck_assert_int_eq(wr_remote_queue_get(fx.home, false, got, g, &handle), WR_ENOENT);
    node_link(0);
}
END_TEST

/* What a queue.purge through the proxy came to. */
typedef struct {
    int calls;
    bool done;
    uint64_t n;
} tpurge_t;

static void purged(void *ud, bool done, uint64_t n)
{
    tpurge_t *p = ud;

    p->calls++;
    p->done = done;
    p->n = n;
}

/* queue.purge through the proxy, answered by the home a round trip later. */
static tpurge_t *purge(wr_queue_purging_t **out)
{
    static tpurge_t p;
    wr_queue_purging_t *handle;

    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(fx.proxy->type->purge_async(fx.proxy, purged, &p, out != NULL ? out : &handle), WR_OK);
    ck_assert_int_eq(p.calls, 0);
    return &p;
}

static size_t pending_requests(void)
{
    wr_remote_stats_t st;

    wr_remote_stats(fx.n[1].remote, &st);
    return st.gets;
}

START_TEST(purge_reports_what_the_home_dropped)
{
    tpurge_t *p;
    tget_t *g;

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    /* One handed out by a get: a purge leaves it with its asker. */
    g = get(false, NULL);
    UNTIL(g->calls == 1);
    p = purge(NULL);
    UNTIL(p->calls == 1);
    ck_assert(p->done);
    ck_assert_uint_eq(p->n, 2);
    ck_assert_uint_eq(wr_queue_ready(fx.home), 0);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 1);
    wr_queue_settle(fx.proxy, g->m, &g->t, WR_SETTLE_ACK);
    UNTIL(wr_queue_unacked(fx.home) == 0);
    ck_assert_uint_eq(pending_requests(), 0);
}
END_TEST

START_TEST(purge_cancelled_or_of_a_queue_gone_at_home)
{
    wr_queue_purging_t *handle;
    tpurge_t *p;

    /* The asker went away: the home purges, and nobody is answered. */
    ck_assert_int_eq(publish(fx.home, "a", NULL), WR_OK);
    p = purge(&handle);
    fx.proxy->type->purge_cancel(handle);
    UNTIL(wr_queue_ready(fx.home) == 0 && pending_requests() == 0);
    ck_assert_int_eq(p->calls, 0);
    /* Gone at the home before the proxy heard: nothing was dropped. */
    wr_vhost_queue_delete(fx.n[0].vh, fx.home);
    p = purge(NULL);
    UNTIL(p->calls == 1);
    ck_assert(p->done);
    ck_assert_uint_eq(p->n, 0);
}
END_TEST

START_TEST(purge_pending_when_the_home_goes_down)
{
    tpurge_t *p = purge(NULL);
    wr_queue_purging_t *handle;

    node_unlink(0);
    UNTIL(p->calls == 1);
    ck_assert(!p->done);
    ck_assert_uint_eq(pending_requests(), 0);
    ck_assert_int_eq(fx.proxy->type->purge_async(fx.proxy, purged, p, &handle), WR_ENOENT);
    node_link(0);
}
END_TEST

/* An auto-delete queue at n1 consumed only from n2 (as RabbitMQ: when its
 * last consumer leaves, by basic.cancel or with its node). */
static wr_queue_t *auto_delete_pair(void)
{
    wr_queue_opts_t o = {.auto_delete = true};
    wr_queue_t *home, *proxy;

    ck_assert_int_eq(wr_vhost_queue_add(fx.n[0].vh, wr_bytes_str("ad"), &o, &home), WR_OK);
    proxy = wr_remote_queue_new(fx.n[1].remote, fx.n[1].vh, wr_bytes_str("ad"), &o, "n1");
    ck_assert_ptr_nonnull(proxy);
    ck_assert_int_eq(wr_vhost_queue_attach(fx.n[1].vh, proxy), WR_OK);
    return proxy;
}

START_TEST(auto_delete_when_the_remote_consumer_cancels)
{
    tcons_t *tc = consume(auto_delete_pair(), 0, false);

    UNTIL(wr_queue_consumer_count(wr_vhost_queue(fx.n[0].vh, wr_bytes_str("ad"))) == 1);
    wr_queue_cancel(tc->c);
    UNTIL(wr_vhost_queue(fx.n[0].vh, wr_bytes_str("ad")) == NULL);
    tc_free(tc);
}
END_TEST

START_TEST(auto_delete_when_the_consumers_node_goes)
{
    tcons_t *tc = consume(auto_delete_pair(), 0, false);

    UNTIL(wr_queue_consumer_count(wr_vhost_queue(fx.n[0].vh, wr_bytes_str("ad"))) == 1);
    node_unlink(1);
    UNTIL(wr_vhost_queue(fx.n[0].vh, wr_bytes_str("ad")) == NULL);
    tc_free(tc);
    node_link(1);
}
END_TEST

/* SETTLE with multiple (the proxy sends one per delivery; a peer may send
 * one for several): every delivery up to the id, of that consumer only. */
START_TEST(settle_multiple_at_home)
{
    tcons_t *tc = consume(fx.proxy, 0, false);
    wr_remote_msg_t m = {.kind = WR_REMOTE_SETTLE, .how = WR_SETTLE_ACK, .flags = WR_REMOTE_MULTIPLE};
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t part;

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(publish(fx.home, "m", NULL), WR_OK);
    UNTIL(tc->n == 4);
    m.id = tc->t[2].w[0];
    m.tag = tc->t[2].w[1];
    ck_assert(wr_remote_wire_encode(&b, &m));
    part = (wr_bytes_t){b.data, b.len};
    ck_assert_int_eq(wr_peer_send_app(fx.n[1].links, "n1", WR_REMOTE_SETTLE, 0, &part, 1), WR_OK);
    UNTIL(wr_queue_stats(fx.home)->ack == 3);
    ck_assert_uint_eq(wr_queue_unacked(fx.home), 1);
    wr_buf_free(&b);
    tc_free(tc);
}
END_TEST

/* A malformed body closes the link, as a malformed Raft message does. */
START_TEST(malformed_body_closes_the_link)
{
    uint8_t bad[] = {0, 0, 0, 0, 0, 0, 0, 1, 0}; /* a SETTLE cut short */
    wr_bytes_t part = {bad, sizeof(bad)};

    ck_assert_int_eq(wr_peer_send_app(fx.n[0].links, "n2", WR_REMOTE_SETTLE, 0, &part, 1), WR_OK);
    UNTIL(!wr_peer_up(fx.n[1].links, "n1"));
    UNTIL(wr_peer_up(fx.n[1].links, "n1"));
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *s = suite_create("cluster-remote");
    TCase *tc = tcase_create("two nodes");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, publish_with_confirm_reaches_home);
    tcase_add_test(tc, a_publish_to_a_queue_gone_at_home_is_nacked);
    tcase_add_test(tc, prefetch_two_keeps_exactly_two_in_flight);
    tcase_add_test(tc, ack_requeue_and_discard_act_at_home);
    tcase_add_test(tc, home_down_cancels_consumers_and_nacks_confirms);
    tcase_add_test(tc, user_down_requeues_its_deliveries_at_home);
    tcase_add_test(tc, queue_deleted_at_home_cancels_the_remote_consumer);
    tcase_add_test(tc, proxy_deleted_cancels_its_consumers);
    tcase_add_test(tc, cancel_at_the_proxy_detaches_at_home);
    tcase_add_test(tc, no_ack_consumer);
    tcase_add_test(tc, slow_consumer_holds_at_most_the_credit_window);
    tcase_add_test(tc, fast_publisher_is_bounded_by_the_outbox);
    tcase_add_test(tc, get_takes_the_head_from_the_home);
    tcase_add_test(tc, get_of_a_queue_gone_at_home_or_cancelled);
    tcase_add_test(tc, get_pending_when_the_home_goes_down);
    tcase_add_test(tc, purge_reports_what_the_home_dropped);
    tcase_add_test(tc, purge_cancelled_or_of_a_queue_gone_at_home);
    tcase_add_test(tc, purge_pending_when_the_home_goes_down);
    tcase_add_test(tc, auto_delete_when_the_remote_consumer_cancels);
    tcase_add_test(tc, auto_delete_when_the_consumers_node_goes);
    tcase_add_test(tc, settle_multiple_at_home);
    tcase_add_test(tc, malformed_body_closes_the_link);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(remote_suite());
}
