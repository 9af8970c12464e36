/* SPDX-License-Identifier: MIT */
/*
 * The channel struct and the helpers channel.c shares with the method
 * handlers (handle_exchange.c, handle_queue.c, handle_basic.c, tx.c,
 * reply_to.c). Only those files include this header.
 */
#ifndef WR_BROKER_CHANNEL_INTERNAL_H
#define WR_BROKER_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/amqp/channel.h"
#include "broker/base/message.h"
#include "broker/queue/queue.h"
#include "broker/amqp/reply_to.h"
#include "broker/amqp/tx.h"
#include "broker/amqp/unacked.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "protocol/error.h"
#include "routing/router.h"

struct event;

typedef enum {
    WR_CH_OPEN,    /* normal operation */
    WR_CH_CLOSING, /* we sent channel.close: only close and close-ok matter */
    WR_CH_FAILED,  /* a hard error is closing the connection: ignore input */
} wr_channel_state_t;

/* Content assembly, as RabbitMQ's command assembler: a content-bearing
 * method, then its header, then body frames until body_size is reached. */
typedef enum {
    WR_ASM_METHOD, /* expecting a method frame */
    WR_ASM_HEADER, /* expecting the content header of `content_method` */
    WR_ASM_BODY,   /* expecting body frames */
} wr_asm_state_t;

struct wr_channel_s {
    wr_conn_t *conn;
    wr_vhost_t *vhost;
    uint16_t id;
    wr_channel_state_t state;

    wr_asm_state_t asm_state;
    uint32_t content_method; /* method id whose content is being assembled */
    uint64_t body_left;      /* body octets still expected */
    bool overrun;            /* more body than announced: never completes */
    wr_message_t *msg;       /* being filled; NULL when the content is discarded */
    bool pub_mandatory;
    bool pub_immediate;
    uint8_t pub_exchange_len;
    uint8_t pub_key_len;
    uint8_t pub_exchange[255];
    uint8_t pub_key[255];

    wr_map_t *consumers; /* tag -> wr_consumer_t, one reference each */
    wr_unacked_t *unacked;
    uint64_t last_tag;          /* delivery tags start at 1 */
    uint16_t consumer_prefetch; /* basic.qos global=false: for consumers created later */
    uint16_t channel_prefetch;  /* basic.qos global=true: shared by the channel's consumers */

    bool confirm;           /* confirm.select seen */
    bool published;         /* counted among the node's publishers */
    uint64_t publish_seq;   /* last publish sequence number handed out */
    uint64_t confirm_upto;  /* every publish up to this is confirmable */
    uint64_t confirm_sent;  /* acked to the client up to this */
    wr_list_t confirms;     /* publishes not yet confirmable, in sequence order */
    struct event *flush_ev; /* sends pending confirms once per loop iteration */
    struct event *ack_ev;   /* the consumer timeout of the oldest unacked delivery */
    wr_tx_t *tx;            /* tx.select seen: the open transaction */

    /* The direct reply-to consumer (reply_to.c); reply_name_len 0: none. */
    wr_reply_to_t *reply_to; /* the server's table of reply names */
    uint8_t reply_name_len;
    uint8_t reply_tag_len;
    char reply_name[WR_REPLY_TO_NAME_MAX];
    uint8_t reply_tag[255];

    uint8_t last_queue_len; /* most recently declared queue, for "" shortcuts */
    uint8_t last_queue[255];
    wr_dest_set_t route; /* scratch for publish routing */
};

/* Queues a method on this channel (pending confirms go first). */
void wr_channel_send(wr_channel_t *ch, const wr_method_t *m);
/* An error outside a method handler (a commit that completes later): a soft
 * one closes the channel, a hard one the connection. */
void wr_channel_error(wr_channel_t *ch, const wr_amqp_error_t *e);
/*
 * The confirm of the next publish (sequence number publish_seq + 1), held by
 * the caller until routing is done (wr_confirm_release) and by every durable
 * queue that stores the message until it is on disk. Confirms go out in
 * order: one ack (multiple when it covers several) per loop iteration for the
 * longest prefix of publishes confirmed, and a basic.nack for a failed one
 * once all before it are settled. NULL on ENOMEM.
 */
wr_confirm_t *wr_channel_confirm_new(wr_channel_t *ch);
/* A delivery awaiting ack was recorded: unless it already runs, the
 * consumer-timeout timer is started for the oldest one. */
void wr_channel_ack_timer_arm(wr_channel_t *ch);
/* Something may have reopened this channel's windows: wake its queues. */
void wr_channel_wake_queues(wr_channel_t *ch);
/* Detaches one consumer from the channel and its queue, auto-deleting the
 * queue if that was its last consumer. Drops the channel's reference. */
void wr_channel_drop_consumer(wr_channel_t *ch, wr_consumer_t *c);

/* "/" etc., for error texts. */
const char *wr_channel_vhost_name(const wr_channel_t *ch);
/* The queue name a method names: "" means the most recently declared queue
 * on this channel (RabbitMQ's shortcut); false with err set when none was. */
bool wr_channel_queue_name(wr_channel_t *ch, wr_bytes_t name, uint32_t method, wr_bytes_t *out,
                           wr_amqp_error_t *err);
/* Remembers q's name for the "" shortcut. */
void wr_channel_set_last_queue(wr_channel_t *ch, wr_bytes_t name);
/* 404 "no <kind> '<name>' in vhost '<vhost>'". Always returns false. */
bool wr_channel_not_found(const wr_channel_t *ch, wr_amqp_error_t *err, uint32_t method, const char *kind,
                          wr_bytes_t name);
/* 405 RESOURCE_LOCKED for q with RabbitMQ's text. Always returns false. */
bool wr_channel_locked(const wr_channel_t *ch, const wr_queue_t *q, uint32_t method, wr_amqp_error_t *err);
/* RabbitMQ's exclusive-access rule: an exclusive queue is usable only by the
 * connection that declared it (405 otherwise). True when access is fine. */
bool wr_channel_check_exclusive(const wr_channel_t *ch, const wr_queue_t *q, uint32_t method,
                                wr_amqp_error_t *err);
/* A server-generated name: prefix + 22 random URL-safe base64 characters
 * (RabbitMQ's "amq.gen-..." and "amq.ctag-..."). out needs 32 + strlen(prefix). */
void wr_channel_gen_name(char *out, const char *prefix);
/* An Erlang binary as RabbitMQ's ~p prints it: <<"abc">> or <<1,2,3>>. */
void wr_channel_fmt_binary(char *out, size_t n, wr_bytes_t b, bool as_string);
/* Copies name without CR and LF, as RabbitMQ strips them from declared and
 * deleted names (at most 255 bytes: a shortstr). */
wr_bytes_t wr_channel_strip_crlf(wr_bytes_t name, uint8_t buf[255]);

/* Counts a routed publish in the node's counters (broker/base/counters.h):
 * its size, whether it expects a confirm, whether it was returned; the
 * channel's first publish makes it a publisher. */
void wr_channel_count_publish(wr_channel_t *ch, const wr_message_t *m, bool confirm, bool returned);

#endif
