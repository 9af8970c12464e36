/* SPDX-License-Identifier: MIT */
/*
 * A channel: the state machine for channel, exchange, queue, basic, confirm
 * and tx methods on one channel number, assembly of published content
 * (method + header + body frames), consumers, unacked deliveries, QoS,
 * publisher confirms and transactions. The connection creates a channel on channel.open and
 * hands it every later frame for that number.
 */
#ifndef WR_BROKER_CHANNEL_H
#define WR_BROKER_CHANNEL_H

#include <stdint.h>

#include "broker/amqp/conn.h"
#include "protocol/frame.h"

typedef struct wr_channel_s wr_channel_t;

/* Creates the channel and sends channel.open-ok. NULL on ENOMEM. */
wr_channel_t *wr_channel_open(wr_conn_t *c, uint16_t id);

enum { WR_CHANNEL_ALIVE = 0, WR_CHANNEL_DONE = 1 };

/*
 * Handles one frame (method, header or body) for this channel; the payload is
 * only valid during the call. Soft errors are handled inside (channel.close
 * is sent and further frames are dropped until close-ok); hard errors call
 * wr_conn_fail. Returns WR_CHANNEL_DONE when the channel finished closing
 * (close/close-ok exchanged): the caller then frees it with wr_channel_free.
 */
int wr_channel_handle_frame(wr_channel_t *ch, const wr_frame_t *f);

/* The connection's output drained below its watermark: resume deliveries. */
void wr_channel_writable(wr_channel_t *ch);

/* Cancels consumers, requeues unacked deliveries, frees. NULL is a no-op. */
void wr_channel_free(wr_channel_t *ch);

/* What the management API lists about a channel. */
typedef struct {
    uint16_t number;
    size_t consumers;
    size_t unacked;
    int64_t oldest_unacked_age;     /* ms since the oldest unacked delivery, -1: none */
    uint16_t prefetch_count;        /* basic.qos global=false */
    uint16_t global_prefetch_count; /* basic.qos global=true */
    bool confirm;
    bool transactional; /* tx.select seen */
} wr_channel_info_t;

void wr_channel_info(const wr_channel_t *ch, wr_channel_info_t *out);

#endif
