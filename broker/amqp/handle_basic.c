/* SPDX-License-Identifier: MIT */
/*
 * The basic and confirm classes: consumers (the channel side of a queue's
 * consumer: may it take a delivery, the delivery itself, cancellation by
 * queue deletion), QoS, basic.get, ack/nack/reject/recover, and the publish
 * path from a complete message to its queues (sender-selected distribution,
 * alternate exchanges, direct replies), returns and confirms.
 */
#include "broker/amqp/handle_basic.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/access.h"
#include "broker/cluster/remote.h"
#include "broker/amqp/channel_internal.h"
#include "broker/vhost/exchange.h"
#include "broker/base/log.h"
#include "broker/amqp/reply_to.h"
#include "broker/amqp/tx.h"
#include "core/status.h"
#include "protocol/table.h"

/* ---------------------------------------------------------------- consumers */

static bool consumer_can_take(wr_consumer_t *c)
{
    wr_channel_t *ch = c->owner;

    if (ch->state != WR_CH_OPEN)
        return false;
    /* The channel-wide window (basic.qos global) counts acked deliveries only. */
    if (!c->no_ack && ch->channel_prefetch > 0 &&
        wr_unacked_consumer_count(ch->unacked) >= ch->channel_prefetch)
        return false;
    return wr_conn_writable(ch->conn);
}

static void consumer_deliver(wr_consumer_t *c, wr_message_t *msg, const wr_qtoken_t *t, bool redelivered)
{
    wr_channel_t *ch = c->owner;
    uint64_t tag = ch->last_tag + 1;
    wr_method_t m = {.id = WR_BASIC_DELIVER};

    if (!c->no_ack && wr_unacked_add(ch->unacked, tag, c->queue, msg, t, c) != WR_OK) {
        /* Untracked it could never be acked: keep it in the queue instead. */
        wr_queue_settle(c->queue, msg, t, WR_SETTLE_RELEASE);
        return;
    }
    ch->last_tag = tag;
    if (!c->no_ack)
        wr_channel_ack_timer_arm(ch);
    m.u.basic_deliver.consumer_tag = c->tag;
    m.u.basic_deliver.delivery_tag = tag;
    m.u.basic_deliver.redelivered = redelivered;
    m.u.basic_deliver.exchange = msg->exchange;
    m.u.basic_deliver.routing_key = msg->routing_key;
    wr_conn_send_content(ch->conn, ch->id, &m, msg);
    wr_message_unref(msg);
}

static void consumer_cancelled(wr_consumer_t *c)
{
    wr_channel_t *ch = c->owner;
    wr_method_t m = {.id = WR_BASIC_CANCEL};

    wr_map_del(ch->consumers, c->tag);
    if (ch->state == WR_CH_OPEN && wr_conn_client_has(ch->conn, "consumer_cancel_notify")) {
        m.u.basic_cancel.consumer_tag = c->tag;
        m.u.basic_cancel.nowait = true;
        wr_channel_send(ch, &m);
    }
    wr_consumer_unref(c);
}

static const wr_consumer_ops_t consumer_ops = {consumer_can_take, consumer_deliver, consumer_cancelled};

/* ---------------------------------------------------------------- helpers */

static bool internal_error(uint32_t method, wr_amqp_error_t *err)
{
    wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
    return false;
}

/* The queue a basic.get or basic.consume names, if this connection may use it. */
static wr_queue_t *find_queue(wr_channel_t *ch, wr_bytes_t name, uint32_t method, wr_amqp_error_t *err)
{
    wr_queue_t *q;

    if (!wr_channel_queue_name(ch, name, method, &name, err))
        return NULL;
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_READ, "queue", name, method, err))
        return NULL;
    q = wr_vhost_queue(ch->vhost, name);
    if (q == NULL) {
        wr_channel_not_found(ch, err, method, "queue", name);
        return NULL;
    }
    if (!wr_channel_check_exclusive(ch, q, method, err))
        return NULL;
    if (wr_remote_queue_down(q)) {
        wr_remote_queue_down_error(q, wr_channel_vhost_name(ch), method, err);
        return NULL;
    }
    return q;
}

/* RabbitMQ's check of consumer arguments for a classic queue. */
static bool check_consume_args(const wr_channel_t *ch, const wr_queue_t *q, wr_bytes_t args,
                               int32_t *priority, wr_amqp_error_t *err)
{
    wr_bytes_t name = wr_queue_name(q);
    wr_value_t v;
    int64_t i;

    *priority = 0;
    if (wr_table_get(args, "x-priority", &v)) {
        if (!wr_value_int(&v, &i)) {
            wr_amqp_error_set(
                err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_CONSUME,
                "invalid arg 'x-priority' for queue '%.*s' in vhost '%s': \"expected integer, got "
                "%s\"",
                (int)name.len, (const char *)name.data, wr_channel_vhost_name(ch),
                wr_value_type_name(v.type));
            return false;
        }
        *priority = i > INT32_MAX ? INT32_MAX : i < INT32_MIN ? INT32_MIN : (int32_t)i;
    }
    if (wr_table_get(args, "x-cancel-on-ha-failover", &v) && v.type != 't') {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_CONSUME,
                          "invalid arg 'x-cancel-on-ha-failover' for queue '%.*s' in vhost '%s': "
                          "{unacceptable_type,%s}",
                          (int)name.len, (const char *)name.data, wr_channel_vhost_name(ch),
                          wr_value_type_name(v.type));
        return false;
    }
    if (wr_table_get(args, "x-stream-offset", &v)) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_CONSUME,
                          "invalid arg 'x-stream-offset' for queue '%.*s' in vhost '%s' of queue type "
                          "rabbit_classic_queue",
                          (int)name.len, (const char *)name.data, wr_channel_vhost_name(ch));
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- methods */

static bool qos(wr_channel_t *ch, const wr_basic_qos_t *q, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_BASIC_QOS_OK};

    if (q->prefetch_size != 0) {
        wr_amqp_error_set(err, WR_AMQP_NOT_IMPLEMENTED, WR_BASIC_QOS, "prefetch_size!=0 (%" PRIu32 ")",
                          q->prefetch_size);
        return false;
    }
    if (q->global) {
        ch->channel_prefetch = q->prefetch_count;
    } else {
        /* RabbitMQ: global=false sets the limit of consumers created from
         * now on and lifts a channel-wide limit. */
        ch->consumer_prefetch = q->prefetch_count;
        ch->channel_prefetch = 0;
    }
    wr_channel_wake_queues(ch);
    wr_channel_send(ch, &ok);
    return true;
}

static bool consume(wr_channel_t *ch, const wr_basic_consume_t *b, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_BASIC_CONSUME_OK};
    char gen[64];
    wr_bytes_t tag = b->consumer_tag;
    wr_bytes_t qname;
    wr_consumer_t *c;
    wr_queue_t *q;
    int32_t priority;

    if (wr_bytes_eq_str(b->queue, WR_REPLY_TO))
        return wr_reply_to_consume(ch, b, err);
    /* RabbitMQ resolves the "" queue shortcut before anything else. */
    if (!wr_channel_queue_name(ch, b->queue, WR_BASIC_CONSUME, &qname, err))
        return false;
    if (tag.len > 0 && wr_map_get(ch->consumers, tag) != NULL) {
        wr_amqp_error_set(err, WR_AMQP_NOT_ALLOWED, WR_BASIC_CONSUME, "attempt to reuse consumer tag '%.*s'",
                          (int)tag.len, (const char *)tag.data);
        return false;
    }
    q = find_queue(ch, qname, WR_BASIC_CONSUME, err);
    if (q == NULL || !check_consume_args(ch, q, b->arguments, &priority, err))
        return false;
    if (tag.len == 0) {
        wr_channel_gen_name(gen, "amq.ctag-");
        tag = wr_bytes_str(gen);
    }
    c = wr_consumer_new(tag, b->arguments, &consumer_ops, ch);
    if (c == NULL)
        return internal_error(WR_BASIC_CONSUME, err);
    c->priority = priority;
    c->prefetch = ch->consumer_prefetch;
    c->no_ack = b->no_ack;
    c->exclusive = b->exclusive;
    if (wr_map_put(ch->consumers, c->tag, c) != WR_OK) {
        wr_consumer_unref(c);
        return internal_error(WR_BASIC_CONSUME, err);
    }
    switch (wr_queue_consume(q, c)) {
    case WR_OK:
        break;
    case WR_EEXIST: {
        wr_bytes_t name = wr_queue_name(q);
        wr_map_del(ch->consumers, c->tag);
        wr_consumer_unref(c);
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_BASIC_CONSUME,
                          "queue '%.*s' in vhost '%s' in exclusive use", (int)name.len,
                          (const char *)name.data, wr_channel_vhost_name(ch));
        return false;
    }
    default:
        wr_map_del(ch->consumers, c->tag);
        wr_consumer_unref(c);
        return internal_error(WR_BASIC_CONSUME, err);
    }
    /* Deliveries are scheduled, so consume-ok always goes out first. */
    if (!b->nowait) {
        ok.u.basic_consume_ok.consumer_tag = c->tag;
        wr_channel_send(ch, &ok);
    }
    return true;
}

static bool cancel(wr_channel_t *ch, const wr_basic_cancel_t *b)
{
    wr_method_t ok = {.id = WR_BASIC_CANCEL_OK};
    wr_consumer_t *c = wr_map_get(ch->consumers, b->consumer_tag);

    /* An unknown tag is not an error: the spec says to ignore it. */
    if (ch->reply_tag_len > 0 && wr_bytes_eq(b->consumer_tag, (wr_bytes_t){ch->reply_tag, ch->reply_tag_len}))
        wr_reply_to_cancel(ch);
    else if (c != NULL)
        wr_channel_drop_consumer(ch, c);
    if (!b->nowait) {
        ok.u.basic_cancel_ok.consumer_tag = b->consumer_tag;
        wr_channel_send(ch, &ok);
    }
    return true;
}

/* get-ok for msg (a reference it takes over) taken from q, or get-empty
 * without one; left: what q still holds ready. */
static bool get_answer(wr_channel_t *ch, wr_queue_t *q, bool no_ack, wr_message_t *msg,
                       const wr_qtoken_t *tok, bool redelivered, uint32_t left, wr_amqp_error_t *err)
{
    wr_method_t m = {.id = WR_BASIC_GET_OK};

    if (msg == NULL) {
        m.id = WR_BASIC_GET_EMPTY;
        wr_counters_add(wr_conn_env(ch->conn)->counters, WR_CNT_GET_EMPTY, 1);
        wr_channel_send(ch, &m);
        return true;
    }
    if (!no_ack && wr_unacked_add(ch->unacked, ch->last_tag + 1, q, msg, tok, NULL) != WR_OK) {
        wr_queue_settle(q, msg, tok, WR_SETTLE_RELEASE);
        return internal_error(WR_BASIC_GET, err);
    }
    ch->last_tag++;
    if (!no_ack)
        wr_channel_ack_timer_arm(ch);
    m.u.basic_get_ok.delivery_tag = ch->last_tag;
    m.u.basic_get_ok.redelivered = redelivered;
    m.u.basic_get_ok.exchange = msg->exchange;
    m.u.basic_get_ok.routing_key = msg->routing_key;
    m.u.basic_get_ok.message_count = left;
    wr_conn_send_content(ch->conn, ch->id, &m, msg);
    wr_message_unref(msg);
    return true;
}

/* basic.get on a queue whose answer comes later (a queue whose home is
 * another node, a quorum queue: the type's get_async): the connection is
 * parked until it comes, so later frames wait. */
typedef struct {
    wr_channel_t *ch;
    wr_conn_t *conn;
    wr_queue_t *q; /* a reference, while the get is pending */
    wr_queue_get_t *get;
    bool no_ack;
} async_get_t;

static void async_got(void *ud, wr_queue_got_t what, wr_message_t *msg, const wr_qtoken_t *tok,
                      bool redelivered, uint32_t left)
{
    async_get_t *w = ud;
    wr_channel_t *ch = w->ch;
    wr_amqp_error_t err = {0};
    bool ok = false;

    if (ch->state != WR_CH_OPEN) {
        if (msg != NULL && !w->no_ack)
            wr_queue_settle(w->q, msg, tok, WR_SETTLE_RELEASE);
        else
            wr_message_unref(msg);
        ok = true;
    } else if (what == WR_QUEUE_GOT || what == WR_QUEUE_GOT_EMPTY) {
        ok = get_answer(ch, w->q, w->no_ack, msg, tok, redelivered, left, &err);
    } else if (what == WR_QUEUE_GOT_GONE) {
        wr_channel_not_found(ch, &err, WR_BASIC_GET, "queue", wr_queue_name(w->q));
    } else {
        wr_remote_queue_unanswered(w->q, wr_channel_vhost_name(ch), WR_BASIC_GET, &err);
    }
    if (!ok)
        wr_channel_error(ch, &err);
    wr_queue_unref(w->q);
    wr_conn_unpark(w->conn);
    free(w);
}

static void async_get_cancel(void *ud)
{
    async_get_t *w = ud;

    w->q->type->get_cancel(w->get);
    wr_queue_unref(w->q);
    free(w);
}

static bool async_get(wr_channel_t *ch, wr_queue_t *q, bool no_ack, wr_amqp_error_t *err)
{
    async_get_t *w = calloc(1, sizeof(*w));
    int rc = w != NULL ? q->type->get_async(q, no_ack, async_got, w, &w->get) : WR_ENOMEM;

    if (rc != WR_OK) {
        free(w);
        if (rc == WR_ENOENT)
            wr_remote_queue_unanswered(q, wr_channel_vhost_name(ch), WR_BASIC_GET, err);
        return rc == WR_ENOENT ? false : internal_error(WR_BASIC_GET, err);
    }
    w->ch = ch;
    w->conn = ch->conn;
    w->q = wr_queue_ref(q);
    w->no_ack = no_ack;
    wr_conn_park(ch->conn, async_get_cancel, w);
    return true;
}

static bool get(wr_channel_t *ch, const wr_basic_get_t *g, wr_amqp_error_t *err)
{
    wr_queue_t *q = find_queue(ch, g->queue, WR_BASIC_GET, err);
    wr_message_t *msg = NULL;
    wr_qtoken_t tok;
    bool redelivered = false;

    if (q == NULL)
        return false;
    if (q->type->get_async != NULL)
        return async_get(ch, q, g->no_ack, err);
    /* Even an empty get counts as use for x-expires. */
    wr_queue_touch(q);
    wr_queue_get(q, g->no_ack, &msg, &tok, &redelivered);
    return get_answer(ch, q, g->no_ack, msg, &tok, redelivered, (uint32_t)wr_queue_ready(q), err);
}

static bool settle(wr_channel_t *ch, uint32_t method, uint64_t tag, bool multiple, wr_settle_t how,
                   wr_amqp_error_t *err)
{
    if (ch->tx != NULL)
        return wr_tx_settle(ch->tx, method, tag, multiple, how, err);
    if (wr_unacked_settle(ch->unacked, tag, multiple, how) != WR_OK) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method, "unknown delivery tag %" PRIu64, tag);
        return false;
    }
    /* Per-consumer windows wake their own queue; a channel-wide one may
     * unblock any of the channel's queues. */
    if (ch->channel_prefetch > 0)
        wr_channel_wake_queues(ch);
    return true;
}

static bool recover(wr_channel_t *ch, uint32_t method, bool requeue, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_BASIC_RECOVER_OK};

    if (!requeue) {
        wr_amqp_error_set(err, WR_AMQP_NOT_IMPLEMENTED, method, "requeue=false");
        return false;
    }
    wr_unacked_requeue_all(ch->unacked);
    wr_channel_wake_queues(ch);
    if (method == WR_BASIC_RECOVER)
        wr_channel_send(ch, &ok);
    return true;
}

bool wr_handle_basic(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_CONFIRM_SELECT_OK};

    switch (m->id) {
    case WR_BASIC_QOS:
        return qos(ch, &m->u.basic_qos, err);
    case WR_BASIC_CONSUME:
        return consume(ch, &m->u.basic_consume, err);
    case WR_BASIC_CANCEL:
        return cancel(ch, &m->u.basic_cancel);
    case WR_BASIC_GET:
        return get(ch, &m->u.basic_get, err);
    case WR_BASIC_ACK:
        return settle(ch, m->id, m->u.basic_ack.delivery_tag, m->u.basic_ack.multiple, WR_SETTLE_ACK, err);
    case WR_BASIC_NACK:
        return settle(ch, m->id, m->u.basic_nack.delivery_tag, m->u.basic_nack.multiple,
                      m->u.basic_nack.requeue ? WR_SETTLE_REQUEUE : WR_SETTLE_DISCARD, err);
    case WR_BASIC_REJECT:
        return settle(ch, m->id, m->u.basic_reject.delivery_tag, false,
                      m->u.basic_reject.requeue ? WR_SETTLE_REQUEUE : WR_SETTLE_DISCARD, err);
    case WR_BASIC_RECOVER_ASYNC:
        return recover(ch, m->id, m->u.basic_recover_async.requeue, err);
    case WR_BASIC_RECOVER:
        return recover(ch, m->id, m->u.basic_recover.requeue, err);
    case WR_CONFIRM_SELECT:
        if (ch->tx != NULL) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, m->id,
                              "cannot switch from tx to confirm mode");
            return false;
        }
        ch->confirm = true;
        if (!m->u.confirm_select.nowait)
            wr_channel_send(ch, &ok);
        return true;
    default:
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        return false;
    }
}

/* ---------------------------------------------------------------- publish */

#define WR_MAX_EXPIRY_MS 315360000000LL /* RabbitMQ: ten years */

/*
 * RabbitMQ's parse of the expiration property (Erlang string:to_integer and
 * rabbit_misc:check_expiry); on failure writes the reason as RabbitMQ prints it.
 */
static bool check_expiration(wr_bytes_t s, char *why, size_t n)
{
    size_t i = 0, digits;
    bool neg = false;
    int64_t v = 0;
    bool big = false;

    if (i < s.len && (s.data[i] == '+' || s.data[i] == '-'))
        neg = s.data[i++] == '-';
    for (digits = i; i < s.len && s.data[i] >= '0' && s.data[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            big = true;
        else
            v = v * 10 + (s.data[i] - '0');
    }
    if (i == digits) {
        snprintf(why, n, "no_integer");
        return false;
    }
    if (i < s.len) {
        snprintf(why, n, "{leftover_string,\"%.*s\"}", (int)(s.len - i), (const char *)s.data + i);
        return false;
    }
    if (neg && (v > 0 || big)) {
        if (big)
            snprintf(why, n, "{value_negative,-%.*s}", (int)(i - digits), (const char *)s.data + digits);
        else
            snprintf(why, n, "{value_negative,-%" PRId64 "}", v);
        return false;
    }
    if (big || v > WR_MAX_EXPIRY_MS) {
        if (big)
            snprintf(why, n, "{value_too_large,%.*s}", (int)(i - digits), (const char *)s.data + digits);
        else
            snprintf(why, n, "{value_too_large,%" PRId64 "}", v);
        return false;
    }
    return true;
}

/*
 * RabbitMQ's direct reply-to rewrite: reply_to amq.rabbitmq.reply-to becomes
 * this channel's reply name, which needs a reply consumer on the channel.
 * *msg may be replaced (the old reference dropped).
 */
static bool fast_reply_to(wr_channel_t *ch, wr_message_t **msg, wr_amqp_error_t *err)
{
    const wr_props_t *cur = wr_message_props(*msg);
    wr_message_t *out;
    wr_props_t p;

    if (!(cur->flags & WR_PROP_REPLY_TO) || !wr_bytes_eq_str(cur->reply_to, WR_REPLY_TO))
        return true;
    if (ch->reply_name_len == 0) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH,
                          "fast reply consumer does not exist");
        return false;
    }
    p = *cur;
    p.reply_to = wr_reply_to_name(ch);
    out = wr_message_with_props(*msg, &p);
    if (out == NULL)
        return internal_error(WR_BASIC_PUBLISH, err);
    wr_message_unref(*msg);
    *msg = out;
    return true;
}

/* The headers whose longstr elements are extra routing keys, in RabbitMQ's
 * order; BCC ones are not shown to consumers. */
static const char *const route_headers[] = {"CC", "BCC"};

/* The checks RabbitMQ makes on a published message's properties; *msg may
 * be replaced by the direct reply-to rewrite. */
static bool check_props(wr_channel_t *ch, wr_message_t **msg, wr_amqp_error_t *err)
{
    const wr_props_t *p = wr_message_props(*msg);
    const char *user = wr_conn_user(ch->conn);
    wr_value_t v;
    char why[128];

    if (p == NULL) {
        /* RabbitMQ's decoder crashes on these: a bare 541 for the connection. */
        err->code = WR_AMQP_INTERNAL_ERROR;
        err->class_id = 0;
        err->method_id = 0;
        snprintf(err->text, sizeof(err->text), "INTERNAL_ERROR");
        return false;
    }
    if (!fast_reply_to(ch, msg, err))
        return false;
    p = wr_message_props(*msg);
    if ((p->flags & WR_PROP_USER_ID) && !wr_bytes_eq_str(p->user_id, user)) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH,
                          "user_id property set to '%.*s' but authenticated user was '%s'",
                          (int)p->user_id.len, (const char *)p->user_id.data, user);
        return false;
    }
    if ((p->flags & WR_PROP_EXPIRATION) && !check_expiration(p->expiration, why, sizeof(why))) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH, "invalid expiration '%.*s': %s",
                          (int)p->expiration.len, (const char *)p->expiration.data, why);
        return false;
    }
    for (size_t i = 0; (p->flags & WR_PROP_HEADERS) && i < 2; i++) {
        if (wr_table_get(p->headers, route_headers[i], &v) && v.type != 'A') {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH,
                              "invalid message: {unacceptable_type_in_header,\"%s\",%s}", route_headers[i],
                              wr_value_type_name(v.type));
            return false;
        }
    }
    return true;
}

static void send_return(wr_channel_t *ch, wr_message_t *msg)
{
    wr_method_t m = {.id = WR_BASIC_RETURN};

    m.u.basic_return.reply_code = WR_AMQP_NO_ROUTE;
    m.u.basic_return.reply_text = WR_BYTES_LIT("NO_ROUTE");
    m.u.basic_return.exchange = msg->exchange;
    m.u.basic_return.routing_key = msg->routing_key;
    wr_conn_send_content(ch->conn, ch->id, &m, msg);
}

bool wr_handle_basic_route(wr_channel_t *ch, wr_exchange_t *x, wr_message_t *m, bool mandatory,
                           wr_confirm_t *conf)
{
    wr_message_t *sent = NULL;
    size_t routed;

    if (!wr_vhost_publish(ch->vhost, x, m, &ch->route, conf, &routed, mandatory ? &sent : NULL))
        return false;
    wr_channel_count_publish(ch, m, conf != NULL, routed == 0 && mandatory);
    /* The return precedes the confirm, as RabbitMQ sends them. */
    if (routed == 0 && mandatory)
        send_return(ch, sent);
    wr_message_unref(sent);
    return true;
}

bool wr_handle_basic_publish(wr_channel_t *ch, wr_message_t *msg, wr_amqp_error_t *err)
{
    wr_confirm_t *conf = NULL;
    wr_exchange_t *x;
    bool ok = false;

    if (ch->pub_immediate) {
        wr_amqp_error_set(err, WR_AMQP_NOT_IMPLEMENTED, WR_BASIC_PUBLISH, "immediate=true");
        goto out;
    }
    if (!wr_access_check(wr_conn_who(ch->conn), WR_PERM_WRITE, "exchange", msg->exchange, WR_BASIC_PUBLISH,
                         err))
        goto out;
    x = wr_vhost_exchange(ch->vhost, msg->exchange);
    if (x == NULL) {
        wr_channel_not_found(ch, err, WR_BASIC_PUBLISH, "exchange", msg->exchange);
        goto out;
    }
    if (wr_exchange_opts(x)->internal) {
        wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, WR_BASIC_PUBLISH,
                          "cannot publish to internal exchange '%.*s' in vhost '%s'", (int)msg->exchange.len,
                          (const char *)msg->exchange.data, wr_channel_vhost_name(ch));
        goto out;
    }
    if (!check_props(ch, &msg, err))
        goto out;
    if (ch->tx != NULL) {
        ok = wr_tx_publish(ch->tx, x, msg, ch->pub_mandatory, err);
        goto out;
    }
    if (ch->confirm && (conf = wr_channel_confirm_new(ch)) == NULL) {
        internal_error(WR_BASIC_PUBLISH, err);
        goto out;
    }
    ok = wr_handle_basic_route(ch, x, msg, ch->pub_mandatory, conf);
    /* Routing is done: the confirm now waits only for the durable queues. */
    if (conf != NULL)
        wr_confirm_release(conf, ok);
    if (!ok)
        internal_error(WR_BASIC_PUBLISH, err);
out:
    wr_message_unref(msg);
    return ok;
}
