/* SPDX-License-Identifier: MIT */
/*
 * Direct reply-to: the reply consumer of a channel (not attached to any
 * queue), its unguessable name, the server-wide table from names to
 * channels (owned by the server, reached through each channel), the delivery of a reply straight to the
 * consumer, and the pseudo-queue's answer to queue.declare.
 */
#include "broker/amqp/reply_to.h"

#include <stdlib.h>
#include <string.h>

#include "broker/amqp/channel_internal.h"
#include "core/map.h"
#include "core/status.h"

struct wr_reply_to_s {
    wr_map_t *consumers; /* reply name -> wr_channel_t; the loop thread's only */
};

wr_reply_to_t *wr_reply_to_new(void)
{
    wr_reply_to_t *rt = calloc(1, sizeof(*rt));

    if (rt == NULL || (rt->consumers = wr_map_new()) == NULL) {
        free(rt);
        return NULL;
    }
    return rt;
}

void wr_reply_to_free(wr_reply_to_t *rt)
{
    if (rt == NULL)
        return;
    wr_map_free(rt->consumers);
    free(rt);
}

bool wr_reply_to_consume(wr_channel_t *ch, const wr_basic_consume_t *b, wr_amqp_error_t *err)
{
    wr_method_t ok = {.id = WR_BASIC_CONSUME_OK};
    wr_bytes_t tag = b->consumer_tag;
    char gen[64];

    if (tag.len > 0 && wr_map_get(ch->consumers, tag) != NULL) {
        wr_amqp_error_set(err, WR_AMQP_NOT_ALLOWED, WR_BASIC_CONSUME, "attempt to reuse consumer tag '%.*s'",
                          (int)tag.len, (const char *)tag.data);
        return false;
    }
    if (!b->no_ack) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_CONSUME,
                          "reply consumer cannot acknowledge");
        return false;
    }
    if (ch->reply_name_len > 0) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_CONSUME, "reply consumer already set");
        return false;
    }
    if (tag.len == 0) {
        wr_channel_gen_name(gen, "amq.ctag-");
        tag = wr_bytes_str(gen);
    }
    wr_channel_gen_name(ch->reply_name, WR_REPLY_TO_PREFIX);
    if (wr_map_put(ch->reply_to->consumers, wr_bytes_str(ch->reply_name), ch) != WR_OK) {
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, WR_BASIC_CONSUME, "out of memory");
        return false;
    }
    ch->reply_name_len = (uint8_t)strlen(ch->reply_name);
    ch->reply_tag_len = (uint8_t)tag.len;
    memcpy(ch->reply_tag, tag.data, tag.len);
    if (!b->nowait) {
        ok.u.basic_consume_ok.consumer_tag = tag;
        wr_channel_send(ch, &ok);
    }
    return true;
}

bool wr_reply_to_declare(wr_channel_t *ch, const wr_queue_declare_t *d)
{
    wr_method_t ok = {.id = WR_QUEUE_DECLARE_OK};

    if (!wr_bytes_eq_str(d->queue, WR_REPLY_TO))
        return false;
    wr_channel_set_last_queue(ch, d->queue);
    if (!d->nowait) {
        ok.u.queue_declare_ok.queue = d->queue;
        ok.u.queue_declare_ok.message_count = 0;
        ok.u.queue_declare_ok.consumer_count = 1;
        wr_channel_send(ch, &ok);
    }
    return true;
}

void wr_reply_to_cancel(wr_channel_t *ch)
{
    if (ch->reply_name_len == 0)
        return;
    wr_map_del(ch->reply_to->consumers, wr_reply_to_name(ch));
    ch->reply_name_len = 0;
    ch->reply_tag_len = 0;
}

wr_bytes_t wr_reply_to_name(const wr_channel_t *ch)
{
    return (wr_bytes_t){(const uint8_t *)ch->reply_name, ch->reply_name_len};
}

void wr_reply_to_deliver(wr_reply_to_t *rt, wr_bytes_t key, wr_message_t *m)
{
    wr_channel_t *ch = wr_map_get(rt->consumers, key);
    wr_method_t d = {.id = WR_BASIC_DELIVER};

    if (ch == NULL || ch->state != WR_CH_OPEN)
        return;
    d.u.basic_deliver.consumer_tag = (wr_bytes_t){ch->reply_tag, ch->reply_tag_len};
    d.u.basic_deliver.delivery_tag = ++ch->last_tag;
    d.u.basic_deliver.redelivered = false;
    d.u.basic_deliver.exchange = m->exchange;
    d.u.basic_deliver.routing_key = m->routing_key;
    wr_conn_send_content(ch->conn, ch->id, &d, m);
}
