/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/vhost/vhost.c with its real collaborators only: an
 * event loop, the node's policies and a vhost environment whose observer
 * and direct reply-to hook record what they are told. Covers the standard
 * exchanges, declare and delete, bindings and what the durable topology
 * hears of them, routing, auto-delete, exclusive queues, policies and
 * dead-lettering through the deferred event.
 */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "core/status.h"
#include "tests/unit/broker/loop_fixture.h"
#include "tests/unit/runner.h"

/* Loop passes a dead letter may take to reach its queue. */
#define MAX_PASSES 100

/* ---------------------------------------------------------------- fixture */

typedef struct {
    struct event_base *base;
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_vhost_env_t env;
    wr_vhost_t *vh;
    wr_dest_set_t scratch;
    wr_buf_t args;
    char log[2048];          /* the observer's calls, one line each */
    int replies;             /* reply_to hook calls */
    char reply_name[64];     /* the last one's name */
    wr_message_t *reply_msg; /* and its message (a reference) */
} fx_t;

static void note(fx_t *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(fx_t *fx, const char *fmt, ...)
{
    size_t len = strlen(fx->log);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fx->log + len, sizeof(fx->log) - len, fmt, ap);
    va_end(ap);
}

#define B(b) (int)(b).len, (const char *)(b).data

static void obs_xdecl(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x)
{
    note(ud, "+x %.*s\n", B(wr_exchange_name(x)));
}

static void obs_xdel(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x)
{
    note(ud, "-x %.*s\n", B(wr_exchange_name(x)));
}

static void obs_qdecl(void *ud, const wr_vhost_t *vh, const wr_queue_t *q)
{
    note(ud, "+q %.*s\n", B(wr_queue_name(q)));
}

static void obs_qdel(void *ud, const wr_vhost_t *vh, const wr_queue_t *q)
{
    note(ud, "-q %.*s\n", B(wr_queue_name(q)));
}

/* "+b src>q:dest/key" or "+b src>x:dest/key"; '-' for an unbind. */
static void obs_bind(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x, wr_dest_t to, wr_bytes_t key,
                     wr_bytes_t args, bool added)
{
    bool q = to.kind == WR_DEST_QUEUE;

    note(ud, "%cb %.*s>%c:%.*s/%.*s\n", added ? '+' : '-', B(wr_exchange_name(x)), q ? 'q' : 'x',
         B(q ? wr_queue_name(to.ptr) : wr_exchange_name(to.ptr)), B(key));
}

static void obs_policies(void *ud, const wr_vhost_t *vh)
{
    note(ud, "policies\n");
}

static const wr_vhost_observer_t observer = {obs_xdecl, obs_xdel, obs_qdecl,
                                             obs_qdel,  obs_bind, obs_policies};

static void hook_reply_to(void *ud, wr_bytes_t name, wr_message_t *m)
{
    fx_t *fx = ud;

    fx->replies++;
    snprintf(fx->reply_name, sizeof(fx->reply_name), "%.*s", (int)name.len, (const char *)name.data);
    wr_message_unref(fx->reply_msg);
    fx->reply_msg = wr_message_ref(m);
}

static void fx_start(fx_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->base = wr_test_base_new();
    fx->vhosts = wr_map_new();
    fx->policies = wr_policies_new(fx->vhosts);
    ck_assert(fx->vhosts != NULL && fx->policies != NULL);
    fx->env = (wr_vhost_env_t){.base = fx->base,
                               .policies = fx->policies,
                               .consumer_timeout = -1,
                               .observer = &observer,
                               .observer_ud = fx,
                               .reply_to = hook_reply_to,
                               .reply_to_ud = fx};
    fx->vh = wr_vhost_new(&fx->env, "/");
    ck_assert_ptr_nonnull(fx->vh);
    ck_assert_int_eq(wr_map_put(fx->vhosts, wr_bytes_str(wr_vhost_name(fx->vh)), fx->vh), WR_OK);
    wr_dest_set_init(&fx->scratch);
    fx->args = (wr_buf_t)WR_BUF_INIT;
    fx->log[0] = '\0';
}

static void fx_stop(fx_t *fx)
{
    wr_message_unref(fx->reply_msg);
    wr_vhost_free(fx->vh);
    wr_policies_free(fx->policies);
    wr_map_free(fx->vhosts);
    wr_dest_set_free(&fx->scratch);
    wr_buf_free(&fx->args);
    event_base_free(fx->base);
}

static wr_exchange_t *x_add(fx_t *fx, const char *name, const char *type, bool durable, bool auto_delete,
                            wr_bytes_t args)
{
    wr_exchange_opts_t o = {.type = wr_router_type_find(wr_bytes_str(type)),
                            .durable = durable,
                            .auto_delete = auto_delete,
                            .args = args};
    wr_exchange_t *x = NULL;

    ck_assert_ptr_nonnull(o.type);
    ck_assert_int_eq(wr_vhost_exchange_add(fx->vh, wr_bytes_str(name), &o, &x), WR_OK);
    return x;
}

static wr_queue_t *q_add(fx_t *fx, const char *name, const wr_queue_opts_t *o)
{
    wr_queue_t *q = NULL;

    ck_assert_int_eq(wr_vhost_queue_add(fx->vh, wr_bytes_str(name), o, &q), WR_OK);
    return q;
}

static wr_queue_t *q_plain(fx_t *fx, const char *name)
{
    return q_add(fx, name, &(wr_queue_opts_t){0});
}

static wr_exchange_t *x_named(fx_t *fx, const char *name)
{
    return wr_vhost_exchange(fx->vh, wr_bytes_str(name));
}

static wr_queue_t *q_named(fx_t *fx, const char *name)
{
    return wr_vhost_queue(fx->vh, wr_bytes_str(name));
}

static void bind_q(fx_t *fx, const char *x, const char *q, const char *key)
{
    wr_dest_t d = {q_named(fx, q), WR_DEST_QUEUE};

    ck_assert_int_eq(wr_vhost_bind(fx->vh, x_named(fx, x), d, wr_bytes_str(key), (wr_bytes_t){0}), WR_OK);
}

/* Publishes a one-off message to exchange x; returns how many queues took it. */
static size_t publish(fx_t *fx, const char *x, const char *rk)
{
    wr_message_t *m = wr_test_message(x, rk, "body", false);
    size_t routed = 99;

    ck_assert(wr_vhost_publish(fx->vh, x_named(fx, x), m, &fx->scratch, NULL, &routed, NULL));
    wr_message_unref(m);
    return routed;
}

static void policy_put(fx_t *fx, const char *name, const char *pattern, const char *apply_to, const char *def)
{
    json_t *j = json_loads(def, 0, NULL);
    char err[256] = "";

    ck_assert_ptr_nonnull(j);
    ck_assert_msg(wr_policy_put(fx->policies, "/", name, pattern, apply_to, 0, j, err, sizeof(err)) == WR_OK,
                  "%s", err);
    json_decref(j);
}

/* ---------------------------------------------------------------- exchanges and queues */

static const struct {
    const char *name;
    const char *type;
    bool internal;
} standard[] = {
    {"", "direct", false},
    {"amq.direct", "direct", false},
    {"amq.fanout", "fanout", false},
    {"amq.topic", "topic", false},
    {"amq.headers", "headers", false},
    {"amq.match", "headers", false},
    {"amq.rabbitmq.trace", "topic", true},
};

START_TEST(test_standard_exchanges)
{
    fx_t fx;
    wr_exchange_t *x;

    fx_start(&fx);
    x = x_named(&fx, standard[_i].name);
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(wr_router_type_name(wr_exchange_opts(x)->type), standard[_i].type);
    ck_assert(wr_exchange_opts(x)->durable);
    ck_assert_int_eq(wr_exchange_opts(x)->internal, standard[_i].internal);
    ck_assert(wr_exchange_is_standard(x));
    ck_assert_uint_eq(wr_map_count(wr_vhost_exchanges(fx.vh)), sizeof(standard) / sizeof(standard[0]));
    ck_assert_ptr_null(x_named(&fx, "amq.nothing"));
    fx_stop(&fx);
}
END_TEST

START_TEST(test_declare_delete)
{
    wr_exchange_opts_t again = {.type = wr_router_type_find(WR_BYTES_LIT("fanout"))};
    fx_t fx;
    wr_exchange_t *dx, *tx, *dup = NULL;
    wr_queue_t *dq, *tq;

    fx_start(&fx);
    dx = x_add(&fx, "dx", "direct", true, false, (wr_bytes_t){0});
    tx = x_add(&fx, "tx", "topic", false, false, (wr_bytes_t){0});
    ck_assert_int_eq(wr_vhost_exchange_add(fx.vh, WR_BYTES_LIT("dx"), &again, &dup), WR_EEXIST);
    dq = q_add(&fx, "dq", &(wr_queue_opts_t){.durable = true});
    tq = q_plain(&fx, "tq");
    ck_assert_str_eq(fx.log, "+x dx\n+q dq\n");
    ck_assert_ptr_eq(x_named(&fx, "dx"), dx);
    ck_assert_ptr_eq(q_named(&fx, "dq"), dq);
    ck_assert(!wr_exchange_is_standard(dx));

    fx.log[0] = '\0';
    wr_vhost_exchange_delete(fx.vh, dx);
    wr_vhost_exchange_delete(fx.vh, tx);
    ck_assert_uint_eq(wr_vhost_queue_delete(fx.vh, dq), 0);
    ck_assert_uint_eq(wr_vhost_queue_delete(fx.vh, tq), 0);
    ck_assert_str_eq(fx.log, "-x dx\n-q dq\n");
    ck_assert_ptr_null(x_named(&fx, "dx"));
    ck_assert_ptr_null(x_named(&fx, "tx"));
    ck_assert_ptr_null(q_named(&fx, "dq"));
    ck_assert_uint_eq(wr_map_count(wr_vhost_queues(fx.vh)), 0);
    fx_stop(&fx);
}
END_TEST

/* Only a binding between two durable ends is part of the saved topology. */
static const struct {
    bool src_durable;
    bool to_queue;
    bool dst_durable;
    const char *bound; /* what the observer hears on bind; "" for nothing */
} bind_cases[] = {
    {true, true, true, "+b src>q:dst/k\n"},  {true, true, false, ""},  {false, true, true, ""},
    {true, false, true, "+b src>x:dst/k\n"}, {true, false, false, ""}, {false, false, true, ""},
};

START_TEST(test_bind_notes_durable_only)
{
    fx_t fx;
    wr_exchange_t *src;
    wr_dest_t d;
    char unbound[64];

    fx_start(&fx);
    src = x_add(&fx, "src", "direct", bind_cases[_i].src_durable, false, (wr_bytes_t){0});
    if (bind_cases[_i].to_queue)
        d = (wr_dest_t){q_add(&fx, "dst", &(wr_queue_opts_t){.durable = bind_cases[_i].dst_durable}),
                        WR_DEST_QUEUE};
    else
        d = (wr_dest_t){x_add(&fx, "dst", "fanout", bind_cases[_i].dst_durable, false, (wr_bytes_t){0}),
                        WR_DEST_EXCHANGE};
    fx.log[0] = '\0';
    ck_assert_int_eq(wr_vhost_bind(fx.vh, src, d, WR_BYTES_LIT("k"), (wr_bytes_t){0}), WR_OK);
    ck_assert_int_eq(wr_vhost_bind(fx.vh, src, d, WR_BYTES_LIT("k"), (wr_bytes_t){0}), WR_EEXIST);
    ck_assert_str_eq(fx.log, bind_cases[_i].bound);
    ck_assert(wr_exchange_has_binding(src, d, WR_BYTES_LIT("k"), (wr_bytes_t){0}));

    fx.log[0] = '\0';
    ck_assert_int_eq(wr_vhost_unbind(fx.vh, src, d, WR_BYTES_LIT("k"), (wr_bytes_t){0}), WR_OK);
    ck_assert_int_eq(wr_vhost_unbind(fx.vh, src, d, WR_BYTES_LIT("k"), (wr_bytes_t){0}), WR_ENOENT);
    snprintf(unbound, sizeof(unbound), "%s", bind_cases[_i].bound);
    if (unbound[0] != '\0')
        unbound[0] = '-';
    ck_assert_str_eq(fx.log, unbound);
    ck_assert_uint_eq(wr_exchange_binding_count(src), 0);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- routing */

/* The queues of the routing topology, in the order of route_case_t.ready. */
static const char *const route_queues[] = {"qd", "qf1", "qf2", "qt", "qae"};
#define NQUEUES (sizeof(route_queues) / sizeof(route_queues[0]))

static const struct {
    const char *exchange;
    const char *rk;
    size_t routed;
    const char *ready; /* messages each queue holds after, as in route_queues */
} route_cases[] = {
    {"", "qd", 1, "10000"}, /* the default exchange names the queue */
    {"", "nowhere", 0, "00000"},   {"d", "k", 1, "10000"},       {"d", "other", 0, "00000"},
    {"f", "anything", 2, "01100"}, {"t", "a.b", 1, "00010"},     {"t", "a.b.c", 0, "00000"},
    {"e2e", "k2", 2, "01100"},                                   /* exchange to exchange */
    {"e2e", "zz", 0, "00000"},     {"ae-arg", "zz", 1, "00001"}, /* alternate exchange, argument */
    {"ae-arg", "hit", 1, "10000"},                               /* routed: the alternate is not used */
    {"ae-pol", "zz", 1, "00001"},                                /* alternate exchange, policy */
};

static void route_topology(fx_t *fx)
{
    static const wr_test_arg_t ae[] = {WR_TEST_STR("alternate-exchange", "ae"), WR_TEST_END};

    for (size_t i = 0; i < NQUEUES; i++)
        q_plain(fx, route_queues[i]);
    x_add(fx, "d", "direct", false, false, (wr_bytes_t){0});
    x_add(fx, "f", "fanout", false, false, (wr_bytes_t){0});
    x_add(fx, "t", "topic", false, false, (wr_bytes_t){0});
    x_add(fx, "e2e", "direct", false, false, (wr_bytes_t){0});
    x_add(fx, "ae", "fanout", false, false, (wr_bytes_t){0});
    x_add(fx, "ae-arg", "direct", false, false, wr_test_args(&fx->args, ae));
    x_add(fx, "ae-pol", "direct", false, false, (wr_bytes_t){0});
    bind_q(fx, "d", "qd", "k");
    bind_q(fx, "f", "qf1", "");
    bind_q(fx, "f", "qf2", "");
    bind_q(fx, "t", "qt", "a.*");
    bind_q(fx, "ae", "qae", "");
    bind_q(fx, "ae-arg", "qd", "hit");
    ck_assert_int_eq(wr_vhost_bind(fx->vh, x_named(fx, "e2e"),
                                   (wr_dest_t){x_named(fx, "f"), WR_DEST_EXCHANGE}, WR_BYTES_LIT("k2"),
                                   (wr_bytes_t){0}),
                     WR_OK);
    policy_put(fx, "aep", "^ae-pol$", "exchanges", "{\"alternate-exchange\": \"ae\"}");
}

START_TEST(test_publish_routes)
{
    fx_t fx;
    const wr_vhost_stats_t *st;

    fx_start(&fx);
    route_topology(&fx);
    ck_assert_uint_eq(publish(&fx, route_cases[_i].exchange, route_cases[_i].rk), route_cases[_i].routed);
    for (size_t i = 0; i < NQUEUES; i++)
        ck_assert_msg(wr_queue_ready(q_named(&fx, route_queues[i])) ==
                          (size_t)(route_cases[_i].ready[i] - '0'),
                      "queue %s holds %zu", route_queues[i], wr_queue_ready(q_named(&fx, route_queues[i])));
    st = wr_vhost_stats(fx.vh);
    ck_assert_uint_eq(st->publish, 1);
    ck_assert_uint_eq(st->unroutable, route_cases[_i].routed == 0);
    ck_assert_int_eq(fx.replies, 0);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_reply_to_names)
{
    fx_t fx;

    fx_start(&fx);
    x_add(&fx, "d", "direct", false, false, (wr_bytes_t){0});
    /* Not through another exchange, and not for the bare pseudo-queue name. */
    ck_assert_uint_eq(publish(&fx, "d", WR_REPLY_TO_PREFIX "abc"), 0);
    ck_assert_uint_eq(publish(&fx, "", "amq.rabbitmq.reply-to"), 0);
    ck_assert_int_eq(fx.replies, 0);
    ck_assert_uint_eq(publish(&fx, "", WR_REPLY_TO_PREFIX "abc"), 0);
    ck_assert_int_eq(fx.replies, 1);
    ck_assert_str_eq(fx.reply_name, WR_REPLY_TO_PREFIX "abc");
    ck_assert(wr_bytes_eq_str(fx.reply_msg->routing_key, WR_REPLY_TO_PREFIX "abc"));
    ck_assert_uint_eq(fx.reply_msg->body_size, 4);
    ck_assert_int_eq(memcmp(fx.reply_msg->body, "body", 4), 0);
    /* As RabbitMQ: not counted as routed. */
    ck_assert_uint_eq(wr_vhost_stats(fx.vh)->unroutable, 3);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- cascades */

START_TEST(test_auto_delete_exchange)
{
    fx_t fx;
    wr_exchange_t *ad;
    wr_dest_t q;

    fx_start(&fx);
    ad = x_add(&fx, "ad", "direct", true, true, (wr_bytes_t){0});
    q = (wr_dest_t){q_add(&fx, "q", &(wr_queue_opts_t){.durable = true}), WR_DEST_QUEUE};
    bind_q(&fx, "ad", "q", "a");
    bind_q(&fx, "ad", "q", "b");
    fx.log[0] = '\0';
    ck_assert_int_eq(wr_vhost_unbind(fx.vh, ad, q, WR_BYTES_LIT("a"), (wr_bytes_t){0}), WR_OK);
    ck_assert_ptr_eq(x_named(&fx, "ad"), ad);
    ck_assert_int_eq(wr_vhost_unbind(fx.vh, ad, q, WR_BYTES_LIT("b"), (wr_bytes_t){0}), WR_OK);
    ck_assert_ptr_null(x_named(&fx, "ad"));
    ck_assert_str_eq(fx.log, "-b ad>q:q/a\n-b ad>q:q/b\n-x ad\n");

    /* Deleting the destination takes the last binding, and the exchange. */
    x_add(&fx, "ad2", "fanout", false, true, (wr_bytes_t){0});
    bind_q(&fx, "ad2", "q", "");
    fx.log[0] = '\0';
    wr_vhost_queue_delete(fx.vh, q_named(&fx, "q"));
    ck_assert_ptr_null(x_named(&fx, "ad2"));
    ck_assert_str_eq(fx.log, "-q q\n");
    fx_stop(&fx);
}
END_TEST

START_TEST(test_exclusive_queues_of_closed_conn)
{
    static const struct {
        const char *name;
        uint64_t owner; /* 0: not exclusive */
    } qs[] = {{"c7a", 7}, {"c7b", 7}, {"c8", 8}, {"shared", 0}};
    fx_t fx;

    fx_start(&fx);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        q_add(&fx, qs[i].name, &(wr_queue_opts_t){.exclusive = qs[i].owner != 0, .owner = qs[i].owner});
    bind_q(&fx, "amq.direct", "c7a", "k");
    wr_vhost_conn_closed(fx.vh, 9);
    ck_assert_uint_eq(wr_map_count(wr_vhost_queues(fx.vh)), 4);
    wr_vhost_conn_closed(fx.vh, 7);
    ck_assert_ptr_null(q_named(&fx, "c7a"));
    ck_assert_ptr_null(q_named(&fx, "c7b"));
    ck_assert_ptr_nonnull(q_named(&fx, "c8"));
    ck_assert_ptr_nonnull(q_named(&fx, "shared"));
    ck_assert_uint_eq(wr_exchange_binding_count(x_named(&fx, "amq.direct")), 0);
    wr_vhost_conn_closed(fx.vh, 8);
    ck_assert_ptr_null(q_named(&fx, "c8"));
    ck_assert_uint_eq(wr_map_count(wr_vhost_queues(fx.vh)), 1);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- policies and dead letters */

START_TEST(test_policy_limits)
{
    fx_t fx;
    wr_queue_t *a, *b, *other;

    fx_start(&fx);
    a = q_plain(&fx, "lim.a");
    b = q_add(
        &fx, "lim.b",
        &(wr_queue_opts_t){
            .args = wr_test_args(&fx.args, (wr_test_arg_t[]){WR_TEST_LONG("x-max-length", 3), WR_TEST_END})});
    other = q_plain(&fx, "other");
    ck_assert_int_eq(wr_queue_limits(a)->max_length, -1);
    fx.log[0] = '\0';
    policy_put(&fx, "lim", "^lim\\.", "queues", "{\"max-length\": 5, \"message-ttl\": 60000}");
    ck_assert_str_eq(fx.log, "policies\n");
    ck_assert_int_eq(wr_queue_limits(a)->max_length, 5);
    ck_assert_int_eq(wr_queue_limits(a)->message_ttl, 60000);
    ck_assert_int_eq(wr_queue_limits(b)->max_length, 3); /* the argument is smaller */
    ck_assert_int_eq(wr_queue_limits(b)->message_ttl, 60000);
    ck_assert_int_eq(wr_queue_limits(other)->max_length, -1);
    /* In force: the sixth message pushes out the head. */
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(publish(&fx, "", "lim.a"), 1);
    ck_assert_uint_eq(wr_queue_ready(a), 5);
    /* A queue declared later gets the policy at once. */
    ck_assert_int_eq(wr_queue_limits(q_plain(&fx, "lim.c"))->max_length, 5);
    fx.log[0] = '\0';
    ck_assert_int_eq(wr_policy_delete(fx.policies, "/", "lim"), WR_OK);
    ck_assert_str_eq(fx.log, "policies\n");
    ck_assert_int_eq(wr_queue_limits(a)->max_length, -1);
    ck_assert_int_eq(wr_queue_limits(b)->max_length, 3);
    fx_stop(&fx);
}
END_TEST

/* What quorum queues resolve differently (rabbit_quorum_queue): the policy's
 * own overflow, and the dead-letter strategy, argument first. */
START_TEST(test_policy_quorum_fields)
{
    fx_t fx;
    wr_queue_t *a, *b;
    json_t *bad = json_pack("{s:s}", "dead-letter-strategy", "some");
    char err[128];

    fx_start(&fx);
    a = q_plain(&fx, "qf.a");
    b = q_add(&fx, "qf.b",
              &(wr_queue_opts_t){
                  .args = wr_test_args(
                      &fx.args, (wr_test_arg_t[]){WR_TEST_STR("x-dead-letter-strategy", "at-most-once"),
                                                  WR_TEST_STR("x-overflow", "drop-head"), WR_TEST_END})});
    ck_assert_int_eq(wr_queue_limits(a)->policy_overflow, -1);
    policy_put(&fx, "qf", "^qf\\.", "queues",
               "{\"dead-letter-strategy\": \"at-least-once\", \"overflow\": \"reject-publish\"}");
    ck_assert_int_eq(wr_queue_limits(a)->dl_strategy, WR_DL_AT_LEAST_ONCE);
    ck_assert_int_eq(wr_queue_limits(b)->dl_strategy, WR_DL_AT_MOST_ONCE);
    ck_assert_int_eq(wr_queue_limits(b)->overflow, WR_OVERFLOW_DROP_HEAD);
    ck_assert_int_eq(wr_queue_limits(b)->policy_overflow, WR_OVERFLOW_REJECT_PUBLISH);
    ck_assert_int_eq(wr_policy_validate("x", NULL, bad, err, sizeof(err)), WR_ESYNTAX);
    ck_assert_str_eq(err, "<<\"some\">> is not a valid dead letter strategy");
    json_decref(bad);
    fx_stop(&fx);
}
END_TEST

/* A dead letter leaves "src" past its x-max-length through the DLX, with
 * the dead-letter routing key, set by argument or by policy. */
START_TEST(test_dead_letter_deferred)
{
    static const wr_test_arg_t dl_args[] = {WR_TEST_STR("x-dead-letter-exchange", "dlx"),
                                            WR_TEST_STR("x-dead-letter-routing-key", "dlrk"),
                                            WR_TEST_LONG("x-max-length", 1), WR_TEST_END};
    bool by_policy = _i == 1;
    fx_t fx;
    wr_queue_t *src, *dead;

    fx_start(&fx);
    x_add(&fx, "dlx", "direct", false, false, (wr_bytes_t){0});
    dead = q_plain(&fx, "dead");
    bind_q(&fx, "dlx", "dead", "dlrk");
    if (by_policy)
        policy_put(
            &fx, "dl", "^src$", "queues",
            "{\"dead-letter-exchange\": \"dlx\", \"dead-letter-routing-key\": \"dlrk\", \"max-length\": 1}");
    src = by_policy ? q_plain(&fx, "src")
                    : q_add(&fx, "src", &(wr_queue_opts_t){.args = wr_test_args(&fx.args, dl_args)});
    ck_assert(wr_queue_limits(src)->dead_letter);
    ck_assert_uint_eq(publish(&fx, "", "src"), 1);
    ck_assert_uint_eq(publish(&fx, "", "src"), 1);
    /* Not republished from inside the queue's own operation. */
    ck_assert_uint_eq(wr_queue_ready(dead), 0);
    WR_TEST_LOOP_UNTIL(fx.base, wr_queue_ready(dead) == 1, MAX_PASSES);
    ck_assert_uint_eq(wr_queue_ready(src), 1);
    fx_stop(&fx);
}
END_TEST

typedef struct {
    wr_confirm_t c;
    int done;
    bool failed;
} tconf_t;

static void tconf_done(wr_confirm_t *c)
{
    tconf_t *t = (tconf_t *)c;

    t->done++;
    t->failed = c->failed;
}

/* At-least-once (dead_letter_confirmed, quorum_dlx.c): the confirm is held
 * until the copy is stored, and fails when the DLX is missing, routes it
 * nowhere, or the vhost goes first. */
START_TEST(test_dead_letter_confirmed)
{
    static const wr_test_arg_t dl_args[] = {WR_TEST_STR("x-dead-letter-exchange", "dlx"),
                                            WR_TEST_STR("x-dead-letter-routing-key", "dlrk"), WR_TEST_END};
    static const char *const cases[] = {"no exchange", "no route", "stored", "vhost freed"};
    tconf_t t = {{1, false, tconf_done}, 0, false};
    wr_queue_t *src, *dead;
    fx_t fx;

    fx_start(&fx);
    src = q_add(&fx, "src", &(wr_queue_opts_t){.args = wr_test_args(&fx.args, dl_args)});
    dead = q_plain(&fx, "dead");
    if (_i >= 1)
        x_add(&fx, "dlx", "direct", false, false, (wr_bytes_t){0});
    if (_i >= 2)
        bind_q(&fx, "dlx", "dead", "dlrk");
    src->sched->hooks->dead_letter_confirmed(src->sched->ud, src, wr_test_message("", "src", "body", false),
                                             WR_DL_REJECTED, &t.c);
    wr_confirm_release(&t.c, true);
    ck_assert_int_eq(t.done, 0); /* deferred, as every dead letter */
    if (_i == 3) {
        fx_stop(&fx);
        ck_assert(t.done == 1 && t.failed);
        return;
    }
    WR_TEST_LOOP_UNTIL(fx.base, t.done == 1, MAX_PASSES);
    ck_assert_msg(t.failed == (_i < 2), "%s: failed %d", cases[_i], t.failed);
    ck_assert_uint_eq(wr_queue_ready(dead), _i == 2 ? 1 : 0);
    fx_stop(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vhost");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_standard_exchanges, 0, (int)(sizeof(standard) / sizeof(standard[0])));
    tcase_add_test(tc, test_declare_delete);
    tcase_add_loop_test(tc, test_bind_notes_durable_only, 0,
                        (int)(sizeof(bind_cases) / sizeof(bind_cases[0])));
    tcase_add_loop_test(tc, test_publish_routes, 0, (int)(sizeof(route_cases) / sizeof(route_cases[0])));
    tcase_add_test(tc, test_reply_to_names);
    tcase_add_test(tc, test_auto_delete_exchange);
    tcase_add_test(tc, test_exclusive_queues_of_closed_conn);
    tcase_add_test(tc, test_policy_limits);
    tcase_add_test(tc, test_policy_quorum_fields);
    tcase_add_loop_test(tc, test_dead_letter_deferred, 0, 2);
    tcase_add_loop_test(tc, test_dead_letter_confirmed, 0, 4);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
