/* SPDX-License-Identifier: MIT */
/*
 * The AMQP client side of a warren-perf connection. Frames are cut from the
 * bufferevent's input in place (pulled up only when one spans chunks),
 * decoded with the project's codec, and handed to the owner's callbacks; the
 * owner decides what a producer or consumer does with them.
 */
#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/buf.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "protocol/frame.h"
#include "protocol/props.h"
#include "protocol/table.h"

/* A producer refills its output when it falls to this many bytes. */
#define OUT_LOW (64 * 1024)
/* Bytes per read from the socket: large enough that a fast consumer needs
 * few system calls, small enough that one connection cannot hog the loop. */
#define MAX_READ (256 * 1024)

enum state {
    ST_CONNECTING, /* TCP connect in progress */
    ST_START,      /* protocol header sent; waiting for connection.start */
    ST_TUNE,       /* start-ok sent; waiting for connection.tune */
    ST_OPEN,       /* connection.open sent; waiting for open-ok */
    ST_CHANNEL,    /* channel.open sent; waiting for open-ok */
    ST_READY,
    ST_CLOSING, /* connection.close sent; waiting for close-ok */
    ST_DONE,
};

/* Where a delivery's content is in its method, header, body sequence. */
enum content {
    CT_NONE,
    CT_HEADER,
    CT_BODY,
};

struct wr_client_s {
    struct bufferevent *bev;
    const wr_client_conf_t *conf;
    wr_client_cbs_t cbs;
    void *arg;
    char name[128];
    enum state state;
    uint32_t frame_max;
    bool unbatched; /* each message written at once, in its own syscall */
    wr_buf_t out;   /* encoding scratch, reused for every method */

    enum content content;
    uint64_t tag;
    uint64_t body_size;
    uint64_t body_got;
    uint8_t head[8];
    size_t head_len;
};

static void finish(wr_client_t *c, const char *error)
{
    if (c->state == ST_DONE)
        return;
    c->state = ST_DONE;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->cbs.done(c, error, c->arg);
}

static void fail(wr_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(wr_client_t *c, const char *fmt, ...)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "%s: ", c->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    finish(c, msg);
}

/*
 * Queues data, or in unbatched mode writes it at once with one send(), as a
 * client that writes each message as it is made does. What the socket does
 * not take (it is full) is queued behind, in order, for the bufferevent.
 */
static int put_out(wr_client_t *c, const void *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    ssize_t n = 0;

    if (c->unbatched && evbuffer_get_length(out) == 0) {
        n = send(bufferevent_getfd(c->bev), data, len, MSG_NOSIGNAL);
        /* A hard error is left for the bufferevent's own write to report. */
        if (n < 0)
            n = 0;
    }
    if ((size_t)n == len)
        return WR_OK;
    return evbuffer_add(out, (const uint8_t *)data + n, len - (size_t)n) == 0 ? WR_OK : WR_ENOMEM;
}

static void send_on(wr_client_t *c, uint16_t channel, const wr_method_t *m)
{
    wr_buf_reset(&c->out);
    wr_frame_put_method(&c->out, channel, m);
    if (!wr_buf_ok(&c->out) || put_out(c, c->out.data, c->out.len) != WR_OK)
        fail(c, "out of memory encoding %s", wr_method_name(m->id));
}

/* True when the space-separated list contains word. */
static bool has_word(wr_bytes_t list, const char *word)
{
    size_t n = strlen(word);
    size_t i = 0;
    while (i < list.len) {
        size_t j = i;
        while (j < list.len && list.data[j] != ' ')
            j++;
        if (j - i == n && memcmp(list.data + i, word, n) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static void send_start_ok(wr_client_t *c)
{
    wr_buf_t caps = WR_BUF_INIT;
    wr_buf_t props = WR_BUF_INIT;
    wr_buf_t resp = WR_BUF_INIT;

    /* Only what this client really handles; no consumer_cancel_notify, as a
     * cancelled consumer would just stop counting. */
    wr_table_put_bool(&caps, "publisher_confirms", true);
    wr_table_put_bool(&caps, "basic.nack", true);
    wr_table_put_bool(&caps, "connection.blocked", true);
    wr_table_put_str(&props, "product", "warren-perf");
    wr_table_put_str(&props, "platform", "C/libevent");
    wr_table_put_str(&props, "connection_name", c->name);
    wr_table_put_key(&props, "capabilities");
    wr_value_t v = {.type = 'F', .v.s = {caps.data, caps.len}};
    wr_table_put_value(&props, &v);

    /* PLAIN: authzid NUL authcid NUL password. */
    wr_buf_put_u8(&resp, 0);
    wr_buf_put(&resp, c->conf->user, strlen(c->conf->user));
    wr_buf_put_u8(&resp, 0);
    wr_buf_put(&resp, c->conf->pass, strlen(c->conf->pass));

    if (!wr_buf_ok(&caps) || !wr_buf_ok(&props) || !wr_buf_ok(&resp)) {
        fail(c, "out of memory");
        goto out;
    }
    wr_method_t m = {.id = WR_CONNECTION_START_OK};
    m.u.connection_start_ok.client_properties = (wr_bytes_t){props.data, props.len};
    m.u.connection_start_ok.mechanism = WR_BYTES_LIT("PLAIN");
    m.u.connection_start_ok.response = (wr_bytes_t){resp.data, resp.len};
    m.u.connection_start_ok.locale = WR_BYTES_LIT("en_US");
    send_on(c, 0, &m);
out:
    wr_buf_free(&caps);
    wr_buf_free(&props);
    wr_buf_free(&resp);
}

static void on_tune(wr_client_t *c, const wr_connection_tune_t *t)
{
    c->frame_max = t->frame_max;
    wr_method_t m = {.id = WR_CONNECTION_TUNE_OK};
    m.u.connection_tune_ok.channel_max = t->channel_max;
    m.u.connection_tune_ok.frame_max = t->frame_max;
    m.u.connection_tune_ok.heartbeat = 0; /* a load generator must not be dropped for being busy */
    send_on(c, 0, &m);

    m = (wr_method_t){.id = WR_CONNECTION_OPEN};
    m.u.connection_open.virtual_host = wr_bytes_str(c->conf->vhost);
    send_on(c, 0, &m);
    c->state = ST_OPEN;
}

static void on_connection_method(wr_client_t *c, const wr_method_t *m)
{
    switch (m->id) {
    case WR_CONNECTION_START:
        if (c->state != ST_START)
            break;
        if (!has_word(m->u.connection_start.mechanisms, "PLAIN")) {
            fail(c, "broker does not offer the PLAIN mechanism");
            return;
        }
        c->state = ST_TUNE;
        send_start_ok(c);
        return;
    case WR_CONNECTION_TUNE:
        if (c->state != ST_TUNE)
            break;
        on_tune(c, &m->u.connection_tune);
        return;
    case WR_CONNECTION_OPEN_OK:
        if (c->state != ST_OPEN)
            break;
        c->state = ST_CHANNEL;
        wr_method_t open = {.id = WR_CHANNEL_OPEN};
        send_on(c, 1, &open);
        return;
    case WR_CONNECTION_CLOSE: {
        const wr_connection_close_t *cl = &m->u.connection_close;
        wr_method_t ok = {.id = WR_CONNECTION_CLOSE_OK};
        send_on(c, 0, &ok);
        if (c->state == ST_CLOSING && cl->reply_code == WR_AMQP_REPLY_SUCCESS)
            finish(c, NULL);
        else
            fail(c, "broker closed the connection: %u %.*s", cl->reply_code, (int)cl->reply_text.len,
                 (const char *)cl->reply_text.data);
        return;
    }
    case WR_CONNECTION_CLOSE_OK:
        if (c->state != ST_CLOSING)
            break;
        finish(c, NULL);
        return;
    case WR_CONNECTION_BLOCKED:
    case WR_CONNECTION_UNBLOCKED:
        c->cbs.method(c, m, c->arg);
        return;
    default:
        break;
    }
    fail(c, "unexpected %s on channel 0", wr_method_name(m->id));
}

static void on_channel_method(wr_client_t *c, const wr_method_t *m)
{
    if (c->content != CT_NONE) {
        fail(c, "%s where content was expected", wr_method_name(m->id));
        return;
    }
    if (c->state == ST_CHANNEL) {
        if (m->id != WR_CHANNEL_OPEN_OK) {
            fail(c, "expected channel.open-ok, got %s", wr_method_name(m->id));
            return;
        }
        c->state = ST_READY;
        c->cbs.ready(c, c->arg);
        return;
    }
    if (c->state != ST_READY) {
        fail(c, "%s before the channel was opened", wr_method_name(m->id));
        return;
    }
    switch (m->id) {
    case WR_BASIC_DELIVER:
        c->tag = m->u.basic_deliver.delivery_tag;
        c->content = CT_HEADER;
        return;
    case WR_CHANNEL_CLOSE: {
        const wr_channel_close_t *cl = &m->u.channel_close;
        fail(c, "broker closed the channel: %u %.*s", cl->reply_code, (int)cl->reply_text.len,
             (const char *)cl->reply_text.data);
        return;
    }
    default:
        c->cbs.method(c, m, c->arg);
        return;
    }
}

static void delivered(wr_client_t *c)
{
    c->content = CT_NONE;
    c->cbs.deliver(c, c->tag, c->head, c->head_len, c->arg);
}

static void on_header(wr_client_t *c, wr_bytes_t payload)
{
    uint16_t class_id;
    if (c->content != CT_HEADER) {
        fail(c, "unexpected content header");
        return;
    }
    if (wr_props_peek(payload, &class_id, &c->body_size) != WR_OK || class_id != WR_CLASS_BASIC) {
        fail(c, "malformed content header");
        return;
    }
    c->body_got = 0;
    c->head_len = 0;
    c->content = CT_BODY;
    if (c->body_size == 0)
        delivered(c);
}

static void on_body(wr_client_t *c, wr_bytes_t payload)
{
    if (c->content != CT_BODY || payload.len > c->body_size - c->body_got) {
        fail(c, "unexpected content body");
        return;
    }
    size_t take = sizeof(c->head) - c->head_len;
    if (take > payload.len)
        take = payload.len;
    memcpy(c->head + c->head_len, payload.data, take);
    c->head_len += take;
    c->body_got += payload.len;
    if (c->body_got == c->body_size)
        delivered(c);
}

static void on_frame(wr_client_t *c, const wr_frame_t *f)
{
    wr_method_t m;
    if (f->type == WR_FRAME_HEARTBEAT)
        return;
    if (f->channel > 1) {
        fail(c, "frame on channel %u, which was never opened", f->channel);
        return;
    }
    /* Deliveries already on the wire when we asked to close are not news. */
    if (f->channel == 1 && c->state == ST_CLOSING)
        return;
    if (f->type == WR_FRAME_METHOD) {
        int rc = wr_method_decode(f->payload, &m);
        if (rc != WR_OK) {
            fail(c, "undecodable method frame (status %d)", rc);
            return;
        }
        if (f->channel == 0)
            on_connection_method(c, &m);
        else
            on_channel_method(c, &m);
    } else if (f->channel == 1 && c->state == ST_READY && f->type == WR_FRAME_HEADER) {
        on_header(c, f->payload);
    } else if (f->channel == 1 && c->state == ST_READY && f->type == WR_FRAME_BODY) {
        on_body(c, f->payload);
    } else {
        fail(c, "unexpected frame of type %u on channel %u", f->type, f->channel);
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    wr_client_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->state != ST_DONE) {
        size_t avail = evbuffer_get_length(in);
        size_t need = 0;
        wr_frame_t f;
        if (avail < WR_FRAME_HEADER_SIZE)
            return;
        /* The header alone tells the frame's full size (WR_AGAIN + need). */
        const uint8_t *p = evbuffer_pullup(in, WR_FRAME_HEADER_SIZE);
        int rc = wr_frame_parse(p, WR_FRAME_HEADER_SIZE, c->frame_max, &f, &need);
        if (rc == WR_AGAIN && need <= avail) {
            p = evbuffer_pullup(in, (ev_ssize_t)need); /* no copy unless the frame spans chunks */
            rc = wr_frame_parse(p, need, c->frame_max, &f, &need);
        }
        if (rc == WR_AGAIN)
            return;
        if (rc != WR_OK) {
            fail(c, "bad frame from broker (status %d)", rc);
            return;
        }
        on_frame(c, &f);
        evbuffer_drain(in, need);
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    wr_client_t *c = arg;
    if (c->state == ST_READY && c->cbs.drained)
        c->cbs.drained(c, c->arg);
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    wr_client_t *c = arg;
    if (c->state == ST_DONE)
        return;
    if (events & BEV_EVENT_CONNECTED) {
        int one = 1;
        /* Latency is measured per message: never let Nagle hold one back. */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->state = ST_START;
        if (bufferevent_write(bev, wr_protocol_header, sizeof(wr_protocol_header)) != 0)
            fail(c, "out of memory");
        return;
    }
    if (events & BEV_EVENT_ERROR)
        fail(c, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    else if (events & BEV_EVENT_EOF)
        fail(c, "broker closed the TCP connection");
}

wr_client_t *wr_client_new(struct event_base *base, const wr_client_conf_t *conf, const char *name,
                           const wr_client_cbs_t *cbs, void *arg)
{
    wr_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->conf = conf;
    c->cbs = *cbs;
    c->arg = arg;
    c->state = ST_CONNECTING;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        goto err;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    if (bufferevent_set_max_single_read(c->bev, MAX_READ) != 0)
        goto err;
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
        goto err;
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&conf->addr, (int)conf->addrlen) != 0)
        goto err;
    return c;
err:
    wr_client_free(c);
    return NULL;
}

void wr_client_free(wr_client_t *c)
{
    if (!c)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    wr_buf_free(&c->out);
    free(c);
}

void wr_client_send(wr_client_t *c, const wr_method_t *m)
{
    if (c->state == ST_READY)
        send_on(c, 1, m);
}

void wr_client_write(wr_client_t *c, const void *data, size_t len)
{
    if (c->state == ST_READY && put_out(c, data, len) != WR_OK)
        fail(c, "out of memory");
}

void wr_client_set_unbatched(wr_client_t *c, bool on)
{
    c->unbatched = on;
}

size_t wr_client_pending(const wr_client_t *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

uint32_t wr_client_frame_max(const wr_client_t *c)
{
    return c->frame_max;
}

void wr_client_close(wr_client_t *c)
{
    if (c->state == ST_READY) {
        wr_method_t m = {.id = WR_CONNECTION_CLOSE};
        m.u.connection_close.reply_code = WR_AMQP_REPLY_SUCCESS;
        m.u.connection_close.reply_text = WR_BYTES_LIT("Goodbye");
        send_on(c, 0, &m);
        if (c->state == ST_READY)
            c->state = ST_CLOSING;
    } else if (c->state != ST_CLOSING) {
        finish(c, NULL);
    }
}

void wr_client_reset(wr_client_t *c)
{
    if (c->state == ST_DONE)
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    /* Detach before closing: the bufferevent stays valid until freed. */
    bufferevent_setfd(c->bev, -1);
    if (fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends RST */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    finish(c, NULL);
}
