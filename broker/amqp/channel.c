/* SPDX-License-Identifier: MIT */
/*
 * The channel state machine: content assembly (method, header, body frames)
 * with RabbitMQ's unexpected-frame errors, the channel class, dispatch of the
 * other classes to the handle_*.c files and tx.c, soft errors (channel.close, release
 * of consumers and unacked deliveries) versus hard ones (wr_conn_fail), and
 * batched publisher confirms.
 */
#include "broker/amqp/channel.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/amqp/channel_internal.h"
#include "broker/amqp/handle_basic.h"
#include "broker/amqp/handle_exchange.h"
#include "broker/amqp/handle_queue.h"
#include "broker/base/log.h"
#include "broker/amqp/reply_to.h"
#include "broker/amqp/tx.h"
#include "core/status.h"
#include "protocol/table.h"

/* ---------------------------------------------------------------- helpers */

const char *wr_channel_vhost_name(const wr_channel_t *ch)
{
    return wr_vhost_name(ch->vhost);
}

bool wr_channel_queue_name(wr_channel_t *ch, wr_bytes_t name, uint32_t method, wr_bytes_t *out,
                           wr_amqp_error_t *err)
{
    if (name.len > 0) {
        *out = name;
        return true;
    }
    if (ch->last_queue_len == 0) {
        wr_amqp_error_set(err, WR_AMQP_NOT_FOUND, method, "no previously declared queue");
        return false;
    }
    *out = (wr_bytes_t){ch->last_queue, ch->last_queue_len};
    return true;
}

void wr_channel_set_last_queue(wr_channel_t *ch, wr_bytes_t name)
{
    /* Queue names are shortstrs, so they always fit. */
    ch->last_queue_len = (uint8_t)name.len;
    if (name.len > 0)
        memcpy(ch->last_queue, name.data, name.len);
}

bool wr_channel_not_found(const wr_channel_t *ch, wr_amqp_error_t *err, uint32_t method, const char *kind,
                          wr_bytes_t name)
{
    wr_amqp_error_set(err, WR_AMQP_NOT_FOUND, method, "no %s '%.*s' in vhost '%s'", kind, (int)name.len,
                      (const char *)name.data, wr_channel_vhost_name(ch));
    return false;
}

bool wr_channel_locked(const wr_channel_t *ch, const wr_queue_t *q, uint32_t method, wr_amqp_error_t *err)
{
    wr_bytes_t name = wr_queue_name(q);

    wr_amqp_error_set(err, WR_AMQP_RESOURCE_LOCKED, method,
                      "cannot obtain exclusive access to locked queue '%.*s' in vhost '%s'. It could be "
                      "originally declared on another connection or the exclusive property value does not "
                      "match that of the original declaration.",
                      (int)name.len, (const char *)name.data, wr_channel_vhost_name(ch));
    return false;
}

bool wr_channel_check_exclusive(const wr_channel_t *ch, const wr_queue_t *q, uint32_t method,
                                wr_amqp_error_t *err)
{
    const wr_queue_opts_t *o = wr_queue_opts(q);

    if (!o->exclusive || o->owner == wr_conn_id(ch->conn))
        return true;
    return wr_channel_locked(ch, q, method, err);
}

void wr_channel_gen_name(char *out, const char *prefix)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[16];
    size_t len = strlen(prefix);
    uint32_t acc = 0;
    int bits = 0;

    /* getrandom only fails before the pool is seeded or on a broken
     * system; fall back to a weaker source rather than refuse a name. */
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (uint8_t)random();
    }
    memcpy(out, prefix, len);
    for (size_t i = 0; i < sizeof(r); i++) {
        acc = (acc << 8) | r[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[len++] = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[len++] = b64url[(acc << (6 - bits)) & 63];
    out[len] = '\0';
}

void wr_channel_fmt_binary(char *out, size_t n, wr_bytes_t b, bool as_string)
{
    size_t used;
    bool printable = as_string;

    for (size_t i = 0; i < b.len && printable; i++)
        printable = b.data[i] >= 0x20 && b.data[i] < 0x7f;
    used = (size_t)snprintf(out, n, printable ? "<<\"" : "<<");
    for (size_t i = 0; i < b.len && used < n; i++) {
        uint8_t c = b.data[i];
        if (printable)
            used += (size_t)snprintf(out + used, n - used, (c == '"' || c == '\\') ? "\\%c" : "%c", c);
        else
            used += (size_t)snprintf(out + used, n - used, i == 0 ? "%u" : ",%u", c);
    }
    if (used < n)
        snprintf(out + used, n - used, printable ? "\">>" : ">>");
}

wr_bytes_t wr_channel_strip_crlf(wr_bytes_t name, uint8_t buf[255])
{
    size_t n = 0;

    for (size_t i = 0; i < name.len && n < 255; i++) {
        if (name.data[i] != '\r' && name.data[i] != '\n')
            buf[n++] = name.data[i];
    }
    return (wr_bytes_t){buf, n};
}

/* ---------------------------------------------------------------- sending */

static void confirms_flush(wr_channel_t *ch)
{
    uint64_t n = ch->confirm_upto - ch->confirm_sent;
    wr_method_t m = {.id = WR_BASIC_ACK};

    if (n == 0)
        return;
    ch->confirm_sent = ch->confirm_upto;
    wr_counters_add(wr_conn_env(ch->conn)->counters, WR_CNT_CONFIRMED, n);
    /* As RabbitMQ: one pending confirm goes out alone, several as one
     * multiple ack for the highest. */
    m.u.basic_ack.delivery_tag = ch->confirm_upto;
    m.u.basic_ack.multiple = n > 1;
    wr_conn_send_method(ch->conn, ch->id, &m);
}

static void confirms_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_channel_t *ch = arg;

    if (ch->state == WR_CH_OPEN)
        confirms_flush(ch);
}

/* A publish in confirm mode, until it can be confirmed. */
typedef struct {
    wr_confirm_t base;
    wr_channel_t *ch; /* NULL once the channel is gone */
    uint64_t seq;
    bool done;
    wr_list_t node; /* in ch->confirms */
} pending_confirm_t;

/* A failed publish, once every one before it is settled: their acks go
 * first, then its nack, so that no multiple ack ever covers it. */
static void confirm_nack(wr_channel_t *ch, uint64_t seq)
{
    wr_method_t nack = {.id = WR_BASIC_NACK};

    ch->confirm_upto = seq - 1;
    if (ch->state == WR_CH_OPEN) {
        confirms_flush(ch);
        nack.u.basic_nack.delivery_tag = seq;
        wr_conn_send_method(ch->conn, ch->id, &nack);
    }
    ch->confirm_sent = ch->confirm_upto = seq;
}

/* Publishes up to just before the oldest one still waiting are settled. */
static void confirms_advance(wr_channel_t *ch)
{
    uint64_t upto = ch->publish_seq;

    while (!wr_list_empty(&ch->confirms)) {
        pending_confirm_t *p = wr_list_entry(ch->confirms.next, pending_confirm_t, node);

        if (!p->done) {
            upto = p->seq - 1;
            break;
        }
        if (p->base.failed)
            confirm_nack(ch, p->seq);
        wr_list_remove(&p->node);
        free(p);
    }
    if (upto > ch->confirm_upto) {
        ch->confirm_upto = upto;
        /* Runs after the current read callback has handed over all its
         * frames, so a burst of publishes is confirmed by one ack. */
        event_active(ch->flush_ev, 0, 0);
    }
}

static void confirm_done(wr_confirm_t *c)
{
    pending_confirm_t *p = (pending_confirm_t *)c;

    if (p->ch == NULL) {
        free(p);
        return;
    }
    p->done = true;
    confirms_advance(p->ch);
}

wr_confirm_t *wr_channel_confirm_new(wr_channel_t *ch)
{
    pending_confirm_t *p = malloc(sizeof(*p));

    if (p == NULL)
        return NULL;
    p->base = (wr_confirm_t){1, false, confirm_done};
    p->ch = ch;
    p->seq = ++ch->publish_seq;
    p->done = false;
    wr_list_insert_tail(&ch->confirms, &p->node);
    return &p->base;
}

/* The channel is going: confirms still waiting for a queue free themselves when done. */
static void confirms_orphan(wr_channel_t *ch)
{
    while (!wr_list_empty(&ch->confirms)) {
        pending_confirm_t *p = wr_list_entry(ch->confirms.next, pending_confirm_t, node);

        wr_list_remove(&p->node);
        if (p->done)
            free(p);
        else
            p->ch = NULL;
    }
}

void wr_channel_send(wr_channel_t *ch, const wr_method_t *m)
{
    /* A reply must not overtake the confirms of publishes before it. */
    confirms_flush(ch);
    wr_conn_send_method(ch->conn, ch->id, m);
}

/* ---------------------------------------------------------------- consumers */

void wr_channel_wake_queues(wr_channel_t *ch)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(ch->consumers, &it, NULL, &v)) {
        wr_consumer_t *c = v;
        if (c->queue != NULL)
            wr_queue_wake(c->queue);
    }
}

void wr_channel_drop_consumer(wr_channel_t *ch, wr_consumer_t *c)
{
    wr_queue_t *q = c->queue;

    wr_map_del(ch->consumers, c->tag);
    if (q != NULL) {
        wr_queue_cancel(c);
        if (wr_queue_auto_delete_due(q))
            wr_vhost_queue_delete(ch->vhost, q);
    }
    wr_consumer_unref(c);
}

static void drop_consumers(wr_channel_t *ch)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(ch->consumers, &it, NULL, &v))
        wr_channel_drop_consumer(ch, v);
}

/* Consumers go, unacked deliveries return to their queues: what RabbitMQ
 * does on channel.close and on a channel error. */
static void channel_release(wr_channel_t *ch)
{
    wr_reply_to_cancel(ch);
    drop_consumers(ch);
    wr_unacked_requeue_all(ch->unacked);
}

/* ---------------------------------------------------------------- errors */

static void channel_fail(wr_channel_t *ch, const wr_amqp_error_t *e)
{
    wr_method_t close = {.id = WR_CHANNEL_CLOSE};

    if (wr_amqp_error_is_hard(e->code)) {
        ch->state = WR_CH_FAILED;
        wr_conn_fail(ch->conn, e);
        return;
    }
    wr_log_warn("channel error on connection %s, channel %u: %s", wr_conn_name(ch->conn), ch->id, e->text);
    close.u.channel_close.reply_code = e->code;
    close.u.channel_close.reply_text = wr_bytes_str(e->text);
    close.u.channel_close.class_id = e->class_id;
    close.u.channel_close.method_id = e->method_id;
    wr_channel_send(ch, &close);
    ch->state = WR_CH_CLOSING;
    channel_release(ch);
}

void wr_channel_error(wr_channel_t *ch, const wr_amqp_error_t *e)
{
    channel_fail(ch, e);
}

/* 505 UNEXPECTED_FRAME, always a connection error. */
static void unexpected_frame(wr_channel_t *ch, uint32_t method, const char *text)
{
    wr_amqp_error_t e;

    wr_amqp_error_set(&e, WR_AMQP_UNEXPECTED_FRAME, method, "%s", text);
    channel_fail(ch, &e);
}

static void expect_header_error(wr_channel_t *ch)
{
    wr_amqp_error_t e;

    wr_amqp_error_set(&e, WR_AMQP_UNEXPECTED_FRAME, ch->content_method,
                      "expected content header for class %u, got non content header frame instead",
                      WR_METHOD_CLASS(ch->content_method));
    channel_fail(ch, &e);
}

/* RabbitMQ's reader describes a frame by its type and first octets. */
static void frame_octets(char *out, size_t n, uint8_t type, wr_bytes_t payload)
{
    char octets[96];
    bool cut = payload.len > 16;

    wr_channel_fmt_binary(octets, sizeof(octets), (wr_bytes_t){payload.data, cut ? 16 : payload.len}, true);
    snprintf(out, n, "type %u, %s octets = %s", type, cut ? "first 16" : "all", octets);
}

/* A frame too short to split into its parts: 501. */
static void unknown_frame(wr_channel_t *ch, uint8_t type, wr_bytes_t payload)
{
    char what[128];
    wr_amqp_error_t e;

    frame_octets(what, sizeof(what), type, payload);
    wr_amqp_error_set(&e, WR_AMQP_FRAME_ERROR, 0, "%s: unknown_frame", what);
    channel_fail(ch, &e);
}

/* A frame type that has no business on a channel (a heartbeat): 505. */
static void misplaced_frame(wr_channel_t *ch, uint8_t type, wr_bytes_t payload)
{
    char what[128];

    frame_octets(what, sizeof(what), type, payload);
    unexpected_frame(ch, 0, what);
}

/* ---------------------------------------------------------------- consumer timeout */

static void ack_timer_add(wr_channel_t *ch, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(ch->ack_ev, &tv);
}

/*
 * RabbitMQ's consumer_timeout: the oldest delivery not acked in time closes
 * the channel with 406 (RabbitMQ 3.10's text), which requeues every unacked
 * delivery; otherwise the timer waits for the oldest one's deadline.
 */
static void ack_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_channel_t *ch = arg;
    int64_t timeout = 0;
    uint64_t left;
    wr_amqp_error_t e;

    if (ch->state != WR_CH_OPEN)
        return;
    left = wr_unacked_overdue_in(ch->unacked, &timeout);
    if (left == UINT64_MAX)
        return;
    if (left > 0) {
        ack_timer_add(ch, left);
        return;
    }
    wr_amqp_error_set(&e, WR_AMQP_PRECONDITION_FAILED, 0,
                      "delivery acknowledgement on channel %u timed out. Timeout value used: %" PRId64
                      " ms. This timeout value can be configured, see consumers doc guide to learn more",
                      ch->id, timeout);
    channel_fail(ch, &e);
}

void wr_channel_ack_timer_arm(wr_channel_t *ch)
{
    int64_t timeout;
    uint64_t left;

    if (evtimer_pending(ch->ack_ev, NULL))
        return;
    left = wr_unacked_overdue_in(ch->unacked, &timeout);
    if (left != UINT64_MAX)
        ack_timer_add(ch, left);
}

/* ---------------------------------------------------------------- lifecycle */

wr_channel_t *wr_channel_open(wr_conn_t *c, uint16_t id)
{
    wr_channel_t *ch = calloc(1, sizeof(*ch));
    wr_method_t ok = {.id = WR_CHANNEL_OPEN_OK};

    if (ch == NULL)
        return NULL;
    ch->conn = c;
    ch->vhost = wr_conn_vhost(c);
    ch->reply_to = wr_conn_env(c)->reply_to;
    ch->id = id;
    ch->state = WR_CH_OPEN;
    ch->asm_state = WR_ASM_METHOD;
    wr_dest_set_init(&ch->route);
    wr_list_init(&ch->confirms);
    ch->consumers = wr_map_new();
    ch->unacked = wr_unacked_new();
    ch->flush_ev = event_new(wr_conn_env(c)->base, -1, 0, confirms_flush_cb, ch);
    ch->ack_ev = evtimer_new(wr_conn_env(c)->base, ack_timer_cb, ch);
    if (ch->consumers == NULL || ch->unacked == NULL || ch->flush_ev == NULL || ch->ack_ev == NULL)
        goto err;
    wr_conn_send_method(c, id, &ok);
    return ch;
err:
    wr_channel_free(ch);
    return NULL;
}

void wr_channel_count_publish(wr_channel_t *ch, const wr_message_t *m, bool confirm, bool returned)
{
    wr_counters_t *c = wr_conn_env(ch->conn)->counters;

    wr_counters_size(c, m->body_size);
    wr_counters_add(c, WR_CNT_RECEIVED_CONFIRM, confirm);
    wr_counters_add(c, WR_CNT_UNROUTABLE_RETURNED, returned);
    if (!ch->published)
        wr_counters_add(c, WR_CNT_PUBLISHERS, 1);
    ch->published = true;
}

void wr_channel_free(wr_channel_t *ch)
{
    if (ch == NULL)
        return;
    if (ch->published)
        wr_counters_sub(wr_conn_env(ch->conn)->counters, WR_CNT_PUBLISHERS, 1);
    wr_reply_to_cancel(ch);
    if (ch->consumers != NULL)
        drop_consumers(ch);
    wr_tx_free(ch->tx); /* an uncommitted transaction is discarded */
    wr_message_unref(ch->msg);
    wr_unacked_free(ch->unacked); /* requeues what is still unacked */
    wr_map_free(ch->consumers);
    wr_dest_set_free(&ch->route);
    confirms_orphan(ch);
    if (ch->flush_ev != NULL)
        event_free(ch->flush_ev);
    if (ch->ack_ev != NULL)
        event_free(ch->ack_ev);
    free(ch);
}

void wr_channel_writable(wr_channel_t *ch)
{
    if (ch->state == WR_CH_OPEN)
        wr_channel_wake_queues(ch);
}

/* ---------------------------------------------------------------- methods */

static int channel_method(wr_channel_t *ch, const wr_method_t *m)
{
    wr_method_t reply = {0};
    wr_amqp_error_t err;

    switch (m->id) {
    case WR_CHANNEL_CLOSE:
        reply.id = WR_CHANNEL_CLOSE_OK;
        wr_channel_send(ch, &reply);
        channel_release(ch);
        return WR_CHANNEL_DONE;
    case WR_CHANNEL_FLOW:
        /* RabbitMQ does not let a client pause deliveries this way. */
        if (!m->u.channel_flow.active) {
            wr_amqp_error_set(&err, WR_AMQP_NOT_IMPLEMENTED, m->id, "active=false");
            break;
        }
        reply.id = WR_CHANNEL_FLOW_OK;
        reply.u.channel_flow_ok.active = true;
        wr_channel_send(ch, &reply);
        return WR_CHANNEL_ALIVE;
    case WR_CHANNEL_OPEN:
        wr_amqp_error_set(&err, WR_AMQP_CHANNEL_ERROR, m->id, "second 'channel.open' seen");
        break;
    default:
        wr_amqp_error_set(&err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        break;
    }
    channel_fail(ch, &err);
    return WR_CHANNEL_ALIVE;
}

static int dispatch(wr_channel_t *ch, const wr_method_t *m)
{
    wr_amqp_error_t err;
    wr_method_t reply = {0};
    bool ok = true;

    if (ch->state == WR_CH_CLOSING) {
        /* Everything but the closing handshake is dropped. */
        if (m->id == WR_CHANNEL_CLOSE_OK)
            return WR_CHANNEL_DONE;
        if (m->id == WR_CHANNEL_CLOSE) {
            reply.id = WR_CHANNEL_CLOSE_OK;
            wr_conn_send_method(ch->conn, ch->id, &reply);
        }
        return WR_CHANNEL_ALIVE;
    }
    switch (WR_METHOD_CLASS(m->id)) {
    case WR_CLASS_CHANNEL:
        return channel_method(ch, m);
    case WR_CLASS_ACCESS:
        if (m->id == WR_ACCESS_REQUEST) {
            reply.id = WR_ACCESS_REQUEST_OK;
            reply.u.access_request_ok.ticket = 1;
            wr_channel_send(ch, &reply);
        } else {
            wr_amqp_error_set(&err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
            ok = false;
        }
        break;
    case WR_CLASS_EXCHANGE:
        ok = wr_handle_exchange(ch, m, &err);
        break;
    case WR_CLASS_QUEUE:
        if (m->id == WR_QUEUE_DECLARE && wr_reply_to_declare(ch, &m->u.queue_declare))
            break;
        ok = wr_handle_queue(ch, m, &err);
        break;
    case WR_CLASS_BASIC:
    case WR_CLASS_CONFIRM:
        ok = wr_handle_basic(ch, m, &err);
        break;
    case WR_CLASS_TX:
        ok = wr_handle_tx(ch, m, &err);
        break;
    default:
        wr_amqp_error_set(&err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        ok = false;
        break;
    }
    if (!ok)
        channel_fail(ch, &err);
    return WR_CHANNEL_ALIVE;
}

/* ---------------------------------------------------------------- assembly */

static int on_method(wr_channel_t *ch, wr_bytes_t payload)
{
    wr_method_t m;
    wr_amqp_error_t e;
    int rc;

    if (ch->asm_state == WR_ASM_HEADER) {
        expect_header_error(ch);
        return WR_CHANNEL_ALIVE;
    }
    if (ch->asm_state == WR_ASM_BODY) {
        unexpected_frame(ch, ch->content_method, "expected content body, got non content body frame instead");
        return WR_CHANNEL_ALIVE;
    }
    if (payload.len < 4) {
        unknown_frame(ch, WR_FRAME_METHOD, payload);
        return WR_CHANNEL_ALIVE;
    }
    rc = wr_method_decode(payload, &m);
    if (rc != WR_OK) {
        uint32_t id = (uint32_t)payload.data[0] << 24 | (uint32_t)payload.data[1] << 16 |
                      (uint32_t)payload.data[2] << 8 | payload.data[3];
        char args[200];

        if (rc == WR_EUNKNOWN) {
            wr_amqp_error_set(&e, WR_AMQP_NOT_IMPLEMENTED, id, "unknown method (class %u, method %u)",
                              WR_METHOD_CLASS(id), WR_METHOD_INDEX(id));
        } else {
            wr_channel_fmt_binary(args, sizeof(args), (wr_bytes_t){payload.data + 4, payload.len - 4}, false);
            wr_amqp_error_set(&e, WR_AMQP_FRAME_ERROR, id, "cannot decode %s", args);
        }
        channel_fail(ch, &e);
        return WR_CHANNEL_ALIVE;
    }
    if (wr_method_has_content(m.id)) {
        ch->asm_state = WR_ASM_HEADER;
        ch->content_method = m.id;
        if (m.id == WR_BASIC_PUBLISH) {
            const wr_basic_publish_t *p = &m.u.basic_publish;
            /* The method's strings live only as long as this frame. */
            ch->pub_exchange_len = (uint8_t)p->exchange.len;
            if (p->exchange.len > 0)
                memcpy(ch->pub_exchange, p->exchange.data, p->exchange.len);
            ch->pub_key_len = (uint8_t)p->routing_key.len;
            if (p->routing_key.len > 0)
                memcpy(ch->pub_key, p->routing_key.data, p->routing_key.len);
            ch->pub_mandatory = p->mandatory;
            ch->pub_immediate = p->immediate;
        }
        return WR_CHANNEL_ALIVE;
    }
    return dispatch(ch, &m);
}

static void content_complete(wr_channel_t *ch)
{
    wr_message_t *msg = ch->msg;
    wr_method_t m = {.id = ch->content_method};
    wr_amqp_error_t err;

    ch->msg = NULL;
    ch->asm_state = WR_ASM_METHOD;
    if (ch->state != WR_CH_OPEN) {
        wr_message_unref(msg);
        return;
    }
    if (msg == NULL) {
        /* A content method a client has no business sending. */
        dispatch(ch, &m);
        return;
    }
    if (!wr_handle_basic_publish(ch, msg, &err))
        channel_fail(ch, &err);
}

/* RabbitMQ's limit text differs when the configured limit is its maximum. */
#define WR_RABBIT_MAX_MSG_SIZE 536870912ULL

static void on_header(wr_channel_t *ch, wr_bytes_t payload)
{
    const wr_config_t *cfg = wr_conn_env(ch->conn)->cfg;
    uint16_t class_id, weight;
    uint64_t body_size = 0;
    wr_amqp_error_t e;

    if (ch->asm_state == WR_ASM_METHOD) {
        unexpected_frame(ch, 0, "expected method frame, got non method frame instead");
        return;
    }
    if (ch->asm_state == WR_ASM_BODY) {
        unexpected_frame(ch, ch->content_method, "expected content body, got non content body frame instead");
        return;
    }
    if (payload.len < 12) {
        unknown_frame(ch, WR_FRAME_HEADER, payload);
        return;
    }
    class_id = (uint16_t)(payload.data[0] << 8 | payload.data[1]);
    weight = (uint16_t)(payload.data[2] << 8 | payload.data[3]);
    for (int i = 4; i < 12; i++)
        body_size = body_size << 8 | payload.data[i];
    if (weight != 0) {
        expect_header_error(ch);
        return;
    }
    if (class_id != WR_METHOD_CLASS(ch->content_method)) {
        wr_amqp_error_set(&e, WR_AMQP_UNEXPECTED_FRAME, ch->content_method,
                          "expected content header for class %u, got one for class %u instead",
                          WR_METHOD_CLASS(ch->content_method), class_id);
        channel_fail(ch, &e);
        return;
    }
    ch->body_left = body_size;
    ch->overrun = false;
    ch->asm_state = WR_ASM_BODY;
    if (ch->state == WR_CH_OPEN && ch->content_method == WR_BASIC_PUBLISH) {
        /* Checked before allocating: the size is the client's claim. */
        if (body_size > cfg->max_message_size) {
            wr_amqp_error_set(&e, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH,
                              "message size %" PRIu64 " is larger than %smax size %" PRIu64, body_size,
                              cfg->max_message_size == WR_RABBIT_MAX_MSG_SIZE ? "" : "configured ",
                              cfg->max_message_size);
            channel_fail(ch, &e);
        } else {
            ch->msg = wr_message_new((wr_bytes_t){ch->pub_exchange, ch->pub_exchange_len},
                                     (wr_bytes_t){ch->pub_key, ch->pub_key_len}, payload, body_size);
            if (ch->msg == NULL) {
                wr_amqp_error_set(&e, WR_AMQP_INTERNAL_ERROR, WR_BASIC_PUBLISH,
                                  "cannot allocate a message of %" PRIu64 " bytes", body_size);
                channel_fail(ch, &e);
                return;
            }
        }
    }
    if (body_size == 0)
        content_complete(ch);
}

static void on_body(wr_channel_t *ch, wr_bytes_t payload)
{
    if (ch->asm_state == WR_ASM_METHOD) {
        unexpected_frame(ch, 0, "expected method frame, got non method frame instead");
        return;
    }
    if (ch->asm_state == WR_ASM_HEADER) {
        expect_header_error(ch);
        return;
    }
    if (ch->overrun)
        return;
    if (payload.len > ch->body_left) {
        /* RabbitMQ keeps waiting for a body that can never add up: the
         * message is lost and the next method frame is an error. */
        ch->overrun = true;
        wr_message_unref(ch->msg);
        ch->msg = NULL;
        return;
    }
    if (ch->msg != NULL && payload.len > 0) {
        memcpy(ch->msg->body + ch->msg->body_filled, payload.data, payload.len);
        ch->msg->body_filled += payload.len;
    }
    ch->body_left -= payload.len;
    if (ch->body_left == 0)
        content_complete(ch);
}

int wr_channel_handle_frame(wr_channel_t *ch, const wr_frame_t *f)
{
    if (ch->state == WR_CH_FAILED)
        return WR_CHANNEL_ALIVE;
    switch (f->type) {
    case WR_FRAME_METHOD:
        return on_method(ch, f->payload);
    case WR_FRAME_HEADER:
        on_header(ch, f->payload);
        break;
    case WR_FRAME_BODY:
        on_body(ch, f->payload);
        break;
    default:
        misplaced_frame(ch, f->type, f->payload);
        break;
    }
    return WR_CHANNEL_ALIVE;
}

void wr_channel_info(const wr_channel_t *ch, wr_channel_info_t *out)
{
    out->number = ch->id;
    out->consumers = wr_map_count(ch->consumers);
    out->unacked = wr_unacked_count(ch->unacked);
    out->oldest_unacked_age = wr_unacked_oldest_age(ch->unacked);
    out->prefetch_count = ch->consumer_prefetch;
    out->global_prefetch_count = ch->channel_prefetch;
    out->confirm = ch->confirm;
    out->transactional = ch->tx != NULL;
}
