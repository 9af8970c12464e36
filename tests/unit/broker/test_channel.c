/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/amqp/channel.c through a real connection: wr_conn_new
 * on one end of a socketpair, with a real environment (the default
 * configuration, one real vhost, direct reply-to names, and user counting
 * that records its calls), driven from the other end with AMQP frames
 * encoded and decoded by protocol/, the loop run in bounded passes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/amqp/channel.h"
#include "broker/amqp/conn.h"
#include "broker/amqp/reply_to.h"
#include "broker/cluster/remote.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "core/status.h"
#include "protocol/frame.h"
#include "tests/unit/broker/loop_fixture.h"
#include "tests/unit/runner.h"

/* Loop passes a reply may take; and passes that must stay quiet. */
#define MAX_PASSES   200
#define QUIET_PASSES 50

typedef struct {
    struct event_base *base;
    wr_config_t *cfg;
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_reply_to_t *reply_to;
    wr_vhost_env_t venv;
    wr_vhost_t *vh;
    wr_conn_env_t env;
    wr_conn_t *conn;
    int fd;            /* the client's end of the socketpair */
    uint8_t in[65536]; /* what the broker sent, frames from in_pos on */
    size_t in_len, in_pos;
    wr_buf_t out;   /* encoding scratch */
    char users[64]; /* user_add and user_remove calls: "+guest", "-guest" */
    int done;       /* env.done calls */
} fx_t;

/* ---------------------------------------------------------------- the environment */

static int user_add(void *ud, const char *user, int64_t *limit)
{
    fx_t *fx = ud;
    size_t len = strlen(fx->users);

    snprintf(fx->users + len, sizeof(fx->users) - len, "+%s", user);
    *limit = -1;
    return WR_OK;
}

static void user_remove(void *ud, const char *user)
{
    fx_t *fx = ud;
    size_t len = strlen(fx->users);

    snprintf(fx->users + len, sizeof(fx->users) - len, "-%s", user);
}

static void conn_done(void *ud, wr_conn_t *c)
{
    ((fx_t *)ud)->done++;
}

static void vhost_reply_to(void *ud, wr_bytes_t name, wr_message_t *m)
{
    wr_reply_to_deliver(ud, name, m);
}

/* ---------------------------------------------------------------- the client's end */

/* Reads what the broker wrote so far (never blocking). */
static void fill(fx_t *fx)
{
    ssize_t n;

    if (fx->in_pos == fx->in_len)
        fx->in_pos = fx->in_len = 0;
    ck_assert_uint_lt(fx->in_len, sizeof(fx->in));
    n = read(fx->fd, fx->in + fx->in_len, sizeof(fx->in) - fx->in_len);
    if (n > 0)
        fx->in_len += (size_t)n;
    else
        ck_assert_msg(n < 0 && errno == EAGAIN, "the broker closed the socket");
}

/* A complete frame already read, if there is one; its payload is valid
 * until the next read. */
static bool take_frame(fx_t *fx, wr_frame_t *f)
{
    size_t used = 0;

    if (wr_frame_parse(fx->in + fx->in_pos, fx->in_len - fx->in_pos, 0, f, &used) != WR_OK)
        return false;
    fx->in_pos += used;
    return true;
}

static wr_frame_t next_frame(fx_t *fx)
{
    wr_frame_t f;

    for (int pass = 0; pass < MAX_PASSES; pass++) {
        if (take_frame(fx, &f))
            return f;
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        fill(fx);
    }
    ck_abort_msg("no frame from the broker after %d loop passes", MAX_PASSES);
    return f;
}

/* The next frame must be method id on channel ch; decoded into *m, whose
 * strings are valid until the next read. */
static void expect(fx_t *fx, uint16_t ch, uint32_t id, wr_method_t *m)
{
    wr_frame_t f = next_frame(fx);

    ck_assert_uint_eq(f.type, WR_FRAME_METHOD);
    ck_assert_int_eq(wr_method_decode(f.payload, m), WR_OK);
    ck_assert_msg(f.channel == ch && m->id == id, "expected %s on channel %u, got %s on channel %u",
                  wr_method_name(id), ch, wr_method_name(m->id), f.channel);
}

/* The content after a deliver or get-ok: header and body frames on ch;
 * the body must be want. */
static void expect_body(fx_t *fx, uint16_t ch, const char *want)
{
    wr_frame_t f = next_frame(fx);
    wr_props_t p;
    char body[256];
    size_t got = 0;

    ck_assert_uint_eq(f.type, WR_FRAME_HEADER);
    ck_assert_uint_eq(f.channel, ch);
    ck_assert_int_eq(wr_props_decode(f.payload, &p), WR_OK);
    ck_assert_uint_lt(p.body_size, sizeof(body));
    while (got < p.body_size) {
        f = next_frame(fx);
        ck_assert_uint_eq(f.type, WR_FRAME_BODY);
        ck_assert_uint_le(f.payload.len, p.body_size - got);
        memcpy(body + got, f.payload.data, f.payload.len);
        got += f.payload.len;
    }
    body[got] = '\0';
    ck_assert_str_eq(body, want);
}

/* Runs the loop QUIET_PASSES times: the broker must send nothing. */
static void expect_quiet(fx_t *fx)
{
    wr_frame_t f;

    for (int pass = 0; pass < QUIET_PASSES; pass++) {
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        fill(fx);
    }
    ck_assert_msg(!take_frame(fx, &f), "unexpected frame of type %u on channel %u", f.type, f.channel);
}

static void flush_out(fx_t *fx)
{
    ck_assert(wr_buf_ok(&fx->out));
    ck_assert_int_eq(write(fx->fd, fx->out.data, fx->out.len), (ssize_t)fx->out.len);
    wr_buf_reset(&fx->out);
}

static void send_method(fx_t *fx, uint16_t ch, const wr_method_t *m)
{
    wr_frame_put_method(&fx->out, ch, m);
    flush_out(fx);
}

/* basic.publish of body to exchange "" with routing key rk, in the three
 * frames a client sends. */
static void publish(fx_t *fx, uint16_t ch, const char *rk, const char *body)
{
    wr_method_t m = {.id = WR_BASIC_PUBLISH};
    wr_props_t p = {.class_id = 60, .body_size = strlen(body)};
    wr_buf_t h = WR_BUF_INIT;

    m.u.basic_publish.routing_key = wr_bytes_str(rk);
    wr_frame_put_method(&fx->out, ch, &m);
    wr_props_encode(&h, &p);
    ck_assert(wr_buf_ok(&h));
    wr_frame_put_raw(&fx->out, WR_FRAME_HEADER, ch, (wr_bytes_t){h.data, h.len});
    wr_frame_put_raw(&fx->out, WR_FRAME_BODY, ch, wr_bytes_str(body));
    wr_buf_free(&h);
    flush_out(fx);
}

/* ---------------------------------------------------------------- fixture */

/* The protocol header, start-ok (PLAIN guest/guest), tune-ok, open "/". */
static void handshake(fx_t *fx)
{
    wr_method_t m;
    wr_method_t ok = {.id = WR_CONNECTION_START_OK};

    ck_assert_int_eq(write(fx->fd, wr_protocol_header, 8), 8);
    expect(fx, 0, WR_CONNECTION_START, &m);
    ok.u.connection_start_ok.mechanism = WR_BYTES_LIT("PLAIN");
    ok.u.connection_start_ok.response = WR_BYTES_LIT("\0guest\0guest");
    ok.u.connection_start_ok.locale = WR_BYTES_LIT("en_US");
    send_method(fx, 0, &ok);
    expect(fx, 0, WR_CONNECTION_TUNE, &m);
    ok = (wr_method_t){.id = WR_CONNECTION_TUNE_OK};
    ok.u.connection_tune_ok.channel_max = m.u.connection_tune.channel_max;
    ok.u.connection_tune_ok.frame_max = m.u.connection_tune.frame_max;
    send_method(fx, 0, &ok);
    ok = (wr_method_t){.id = WR_CONNECTION_OPEN};
    ok.u.connection_open.virtual_host = WR_BYTES_LIT("/");
    send_method(fx, 0, &ok);
    expect(fx, 0, WR_CONNECTION_OPEN_OK, &m);
    ck_assert_ptr_eq(wr_conn_vhost(fx->conn), fx->vh);
    ck_assert_str_eq(fx->users, "+guest");
}

static void fx_start(fx_t *fx)
{
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int sv[2];

    memset(fx, 0, sizeof(*fx));
    fx->base = wr_test_base_new();
    fx->cfg = wr_config_new_default();
    fx->vhosts = wr_map_new();
    fx->reply_to = wr_reply_to_new();
    ck_assert(fx->cfg != NULL && fx->vhosts != NULL && fx->reply_to != NULL);
    fx->policies = wr_policies_new(fx->vhosts);
    fx->venv = (wr_vhost_env_t){.base = fx->base,
                                .policies = fx->policies,
                                .consumer_timeout = fx->cfg->consumer_timeout,
                                .reply_to = vhost_reply_to,
                                .reply_to_ud = fx->reply_to};
    fx->vh = wr_vhost_new(&fx->venv, "/");
    ck_assert_ptr_nonnull(fx->vh);
    ck_assert_int_eq(wr_map_put(fx->vhosts, WR_BYTES_LIT("/"), fx->vh), WR_OK);
    fx->env = (wr_conn_env_t){.base = fx->base,
                              .cfg = fx->cfg,
                              .vhosts = fx->vhosts,
                              .reply_to = fx->reply_to,
                              .user_add = user_add,
                              .user_remove = user_remove,
                              .done = conn_done,
                              .ud = fx};
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    fx->fd = sv[1];
    fx->conn = wr_conn_new(&fx->env, sv[0], (struct sockaddr *)&peer, 1, NULL);
    ck_assert_ptr_nonnull(fx->conn);
    fx->out = (wr_buf_t)WR_BUF_INIT;
    handshake(fx);
}

static void fx_stop(fx_t *fx)
{
    wr_conn_free(fx->conn);
    wr_vhost_free(fx->vh);
    wr_map_free(fx->vhosts);
    wr_policies_free(fx->policies);
    wr_reply_to_free(fx->reply_to);
    wr_config_free(fx->cfg);
    wr_buf_free(&fx->out);
    close(fx->fd);
    event_base_free(fx->base);
}

/* ---------------------------------------------------------------- client steps */

static void open_channel(fx_t *fx, uint16_t ch)
{
    wr_method_t m = {.id = WR_CHANNEL_OPEN};

    send_method(fx, ch, &m);
    expect(fx, ch, WR_CHANNEL_OPEN_OK, &m);
}

/* queue.declare of a non-durable queue; returns its message count. */
static uint32_t declare(fx_t *fx, uint16_t ch, const char *queue, bool passive)
{
    wr_method_t m = {.id = WR_QUEUE_DECLARE};

    m.u.queue_declare.queue = wr_bytes_str(queue);
    m.u.queue_declare.passive = passive;
    send_method(fx, ch, &m);
    expect(fx, ch, WR_QUEUE_DECLARE_OK, &m);
    ck_assert(wr_bytes_eq_str(m.u.queue_declare_ok.queue, queue));
    return m.u.queue_declare_ok.message_count;
}

static void consume(fx_t *fx, uint16_t ch, const char *queue, const char *tag)
{
    wr_method_t m = {.id = WR_BASIC_CONSUME};

    m.u.basic_consume.queue = wr_bytes_str(queue);
    m.u.basic_consume.consumer_tag = wr_bytes_str(tag);
    send_method(fx, ch, &m);
    expect(fx, ch, WR_BASIC_CONSUME_OK, &m);
    ck_assert(wr_bytes_eq_str(m.u.basic_consume_ok.consumer_tag, tag));
}

/* The next delivery on ch must be tag, with body. */
static void expect_deliver(fx_t *fx, uint16_t ch, const char *ctag, uint64_t tag, const char *body)
{
    wr_method_t m;

    expect(fx, ch, WR_BASIC_DELIVER, &m);
    ck_assert(wr_bytes_eq_str(m.u.basic_deliver.consumer_tag, ctag));
    ck_assert_uint_eq(m.u.basic_deliver.delivery_tag, tag);
    ck_assert(!m.u.basic_deliver.redelivered);
    ck_assert(wr_bytes_eq_str(m.u.basic_deliver.exchange, ""));
    expect_body(fx, ch, body);
}

static void ack(fx_t *fx, uint16_t ch, uint64_t tag)
{
    wr_method_t m = {.id = WR_BASIC_ACK};

    m.u.basic_ack.delivery_tag = tag;
    send_method(fx, ch, &m);
}

/* What the management API sees of channel `want` (found false when it is
 * not open), and how many channels are open. */
typedef struct {
    uint16_t want;
    bool found;
    size_t open;
    wr_channel_info_t info;
} chan_seen_t;

static void see_channel(void *ud, const wr_channel_t *ch)
{
    chan_seen_t *seen = ud;
    wr_channel_info_t info;

    wr_channel_info(ch, &info);
    seen->open++;
    if (info.number == seen->want) {
        seen->found = true;
        seen->info = info;
    }
}

static chan_seen_t seen_channel(fx_t *fx, uint16_t want)
{
    chan_seen_t seen = {.want = want};

    wr_conn_foreach_channel(fx->conn, see_channel, &seen);
    return seen;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_handshake_and_close)
{
    wr_method_t m = {.id = WR_CONNECTION_CLOSE};
    fx_t fx;
    wr_conn_info_t info;

    fx_start(&fx);
    wr_conn_info(fx.conn, &info);
    ck_assert(info.open);
    ck_assert_str_eq(info.state, "running");
    ck_assert_uint_eq(info.heartbeat, 0);
    ck_assert_str_eq(wr_conn_user(fx.conn), "guest");
    open_channel(&fx, 1);
    m.u.connection_close.reply_code = WR_AMQP_REPLY_SUCCESS;
    m.u.connection_close.reply_text = WR_BYTES_LIT("bye");
    send_method(&fx, 0, &m);
    expect(&fx, 0, WR_CONNECTION_CLOSE_OK, &m);
    /* As a client does after close-ok; the broker waits for it. */
    ck_assert_int_eq(shutdown(fx.fd, SHUT_RDWR), 0);
    WR_TEST_LOOP_UNTIL(fx.base, fx.done == 1, MAX_PASSES);
    ck_assert_str_eq(fx.users, "+guest-guest");
    ck_assert_uint_eq(seen_channel(&fx, 1).open, 0);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_publish_consume_ack)
{
    fx_t fx;
    chan_seen_t seen;

    fx_start(&fx);
    open_channel(&fx, 1);
    ck_assert_uint_eq(declare(&fx, 1, "q", false), 0);
    publish(&fx, 1, "q", "hello");
    ck_assert_uint_eq(declare(&fx, 1, "q", true), 1);
    consume(&fx, 1, "q", "c1");
    expect_deliver(&fx, 1, "c1", 1, "hello");
    seen = seen_channel(&fx, 1);
    ck_assert(seen.found);
    ck_assert_uint_eq(seen.info.consumers, 1);
    ck_assert_uint_eq(seen.info.unacked, 1);
    ack(&fx, 1, 1);
    /* queue.declare-ok follows the ack on the same channel: it was handled. */
    ck_assert_uint_eq(declare(&fx, 1, "q", true), 0);
    ck_assert_uint_eq(seen_channel(&fx, 1).info.unacked, 0);
    ck_assert_uint_eq(wr_queue_ready(wr_vhost_queue(fx.vh, WR_BYTES_LIT("q"))), 0);
    fx_stop(&fx);
}
END_TEST

/* Frames that straddle the ends of the broker's 4 KiB reads (and so its
 * input chains) arrive whole: 60 publishes of 150-209 bytes written at
 * once, then consumed in order. */
START_TEST(test_frames_split_over_reads)
{
    enum { N = 60 };
    char body[N][256];
    fx_t fx;

    fx_start(&fx);
    open_channel(&fx, 1);
    ck_assert_uint_eq(declare(&fx, 1, "q", false), 0);
    for (int i = 0; i < N; i++) {
        int len = 150 + i;

        for (int j = 0; j < len; j++)
            body[i][j] = (char)('a' + (i + j) % 26);
        body[i][len] = '\0';
        snprintf(body[i], sizeof(body[i]), "%02d", i);
        body[i][2] = '-';
        publish(&fx, 1, "q", body[i]);
    }
    ck_assert_uint_eq(declare(&fx, 1, "q", true), N);
    consume(&fx, 1, "q", "c1");
    for (int i = 0; i < N; i++)
        expect_deliver(&fx, 1, "c1", (uint64_t)i + 1, body[i]);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_prefetch_one)
{
    wr_method_t m = {.id = WR_BASIC_QOS};
    fx_t fx;

    fx_start(&fx);
    open_channel(&fx, 1);
    m.u.basic_qos.prefetch_count = 1;
    send_method(&fx, 1, &m);
    expect(&fx, 1, WR_BASIC_QOS_OK, &m);
    declare(&fx, 1, "q", false);
    publish(&fx, 1, "q", "one");
    publish(&fx, 1, "q", "two");
    consume(&fx, 1, "q", "c1");
    expect_deliver(&fx, 1, "c1", 1, "one");
    expect_quiet(&fx);
    ck_assert_uint_eq(seen_channel(&fx, 1).info.prefetch_count, 1);
    ck_assert_uint_eq(wr_queue_ready(wr_vhost_queue(fx.vh, WR_BYTES_LIT("q"))), 1);
    ack(&fx, 1, 1);
    expect_deliver(&fx, 1, "c1", 2, "two");
    expect_quiet(&fx);
    fx_stop(&fx);
}
END_TEST

/* Closing channel 2 requeues its unacked delivery; channel 1 goes on. */
START_TEST(test_close_second_channel)
{
    wr_method_t m = {.id = WR_CHANNEL_CLOSE};
    fx_t fx;

    fx_start(&fx);
    open_channel(&fx, 1);
    open_channel(&fx, 2);
    declare(&fx, 2, "q", false);
    publish(&fx, 2, "q", "kept");
    consume(&fx, 2, "q", "c2");
    expect_deliver(&fx, 2, "c2", 1, "kept");
    m.u.channel_close.reply_code = WR_AMQP_REPLY_SUCCESS;
    send_method(&fx, 2, &m);
    expect(&fx, 2, WR_CHANNEL_CLOSE_OK, &m);
    ck_assert(!seen_channel(&fx, 2).found);
    ck_assert_uint_eq(seen_channel(&fx, 1).open, 1);

    m = (wr_method_t){.id = WR_BASIC_GET};
    m.u.basic_get.queue = WR_BYTES_LIT("q");
    send_method(&fx, 1, &m);
    expect(&fx, 1, WR_BASIC_GET_OK, &m);
    ck_assert_uint_eq(m.u.basic_get_ok.delivery_tag, 1);
    ck_assert(m.u.basic_get_ok.redelivered);
    ck_assert_uint_eq(m.u.basic_get_ok.message_count, 0);
    expect_body(&fx, 1, "kept");
    fx_stop(&fx);
}
END_TEST

/* A soft error closes the channel with RabbitMQ's reply; the connection and
 * the channel number stay usable once close-ok is sent. */
START_TEST(test_unknown_delivery_tag)
{
    wr_method_t m;
    fx_t fx;

    fx_start(&fx);
    open_channel(&fx, 1);
    open_channel(&fx, 2);
    ack(&fx, 1, 99);
    expect(&fx, 1, WR_CHANNEL_CLOSE, &m);
    ck_assert_uint_eq(m.u.channel_close.reply_code, WR_AMQP_PRECONDITION_FAILED);
    ck_assert(wr_bytes_eq_str(m.u.channel_close.reply_text, "PRECONDITION_FAILED - unknown delivery tag 99"));
    ck_assert_uint_eq(m.u.channel_close.class_id, 60);
    ck_assert_uint_eq(m.u.channel_close.method_id, 80);
    /* Until close-ok, the channel ignores what it is sent. */
    declare(&fx, 2, "q", false);
    send_method(&fx, 1, &(wr_method_t){.id = WR_QUEUE_DECLARE, .u.queue_declare.queue = WR_BYTES_LIT("q")});
    expect_quiet(&fx);
    send_method(&fx, 1, &(wr_method_t){.id = WR_CHANNEL_CLOSE_OK});
    open_channel(&fx, 1);
    ck_assert_uint_eq(declare(&fx, 1, "q", true), 0);
    ck_assert_uint_eq(seen_channel(&fx, 0).open, 2);
    fx_stop(&fx);
}
END_TEST

/* The channel's 404 for m (a method a client sends on ch), with RabbitMQ's
 * text for queue "q" whose home n1 is down. */
static void expect_home_down(fx_t *fx, uint16_t ch, const wr_method_t *m, uint16_t class_id,
                             uint16_t method_id)
{
    wr_method_t close = {.id = WR_CHANNEL_CLOSE};

    open_channel(fx, ch);
    send_method(fx, ch, m);
    expect(fx, ch, WR_CHANNEL_CLOSE, &close);
    ck_assert_uint_eq(close.u.channel_close.reply_code, WR_AMQP_NOT_FOUND);
    ck_assert(wr_bytes_eq_str(
        close.u.channel_close.reply_text,
        "NOT_FOUND - home node 'n1' of durable queue 'q' in vhost '/' is down or inaccessible"));
    ck_assert_uint_eq(close.u.channel_close.class_id, class_id);
    ck_assert_uint_eq(close.u.channel_close.method_id, method_id);
}

/* A queue whose home node (cluster/remote.h) is unreachable: declares,
 * consumes and gets fail as RabbitMQ's do, with no consumer left waiting. */
START_TEST(test_queue_home_down)
{
    wr_cluster_node_t members[2] = {{"n2", "127.0.0.1", 1}, {"n1", "127.0.0.1", 2}};
    wr_cluster_config_t cfg = {.name = "warren",
                               .node = "n2",
                               .secret = (uint8_t *)"0123456789abcdef0123456789abcdef",
                               .secret_len = 32,
                               .listen_address = "127.0.0.1",
                               .listen_port = 1,
                               .nodes = members,
                               .n_nodes = 2};
    wr_queue_opts_t o = {.durable = true};
    wr_method_t m = {.id = WR_QUEUE_DECLARE};
    wr_peer_links_t *links;
    wr_remote_t *remote;
    wr_queue_t *q;
    fx_t fx;

    fx_start(&fx);
    /* Never started: the link to n1 stays down. */
    links = wr_peer_links_new(fx.base, &cfg, &(wr_peer_handler_t){0});
    ck_assert_ptr_nonnull(links);
    remote = wr_remote_new(&(wr_remote_deps_t){fx.base, links, "n2", NULL, NULL, NULL});
    ck_assert_ptr_nonnull(remote);
    q = wr_remote_queue_new(remote, fx.vh, wr_bytes_str("q"), &o, "n1");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(wr_vhost_queue_attach(fx.vh, q), WR_OK);
    m.u.queue_declare.queue = wr_bytes_str("q");
    m.u.queue_declare.passive = true;
    expect_home_down(&fx, 1, &m, 50, 10);
    m.u.queue_declare.passive = false;
    m.u.queue_declare.durable = true;
    expect_home_down(&fx, 2, &m, 50, 10);
    m = (wr_method_t){.id = WR_BASIC_CONSUME};
    m.u.basic_consume.queue = wr_bytes_str("q");
    expect_home_down(&fx, 3, &m, 60, 20);
    ck_assert_uint_eq(wr_queue_consumer_count(q), 0);
    m = (wr_method_t){.id = WR_BASIC_GET};
    m.u.basic_get.queue = wr_bytes_str("q");
    expect_home_down(&fx, 4, &m, 60, 70);
    wr_remote_free(remote);
    wr_peer_links_free(links);
    fx_stop(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("channel");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_handshake_and_close);
    tcase_add_test(tc, test_publish_consume_ack);
    tcase_add_test(tc, test_frames_split_over_reads);
    tcase_add_test(tc, test_prefetch_one);
    tcase_add_test(tc, test_close_second_channel);
    tcase_add_test(tc, test_unknown_delivery_tag);
    tcase_add_test(tc, test_queue_home_down);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
