/* SPDX-License-Identifier: MIT */
/*
 * What the queue unit tests share: a fake channel that consumers deliver
 * to (recording message ids, keeping unacked deliveries), and the id a test
 * message carries in its routing key ("m<id>").
 */
#ifndef WR_TESTS_QUEUE_FAKES_H
#define WR_TESTS_QUEUE_FAKES_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/amqp/unacked.h"
#include "broker/queue/classic.h"

typedef struct {
    wr_unacked_t *u;
    uint64_t last_tag;
    bool blocked; /* can_take answers false */
    int got[64];  /* ids delivered, in order */
    int ngot;
    int cancelled; /* ops->cancelled calls */
} qf_channel_t;

/* can_take / deliver (no_ack: dropped; else kept in ch->u with the next
 * tag) / cancelled, for consumers whose owner is a qf_channel_t. */
extern const wr_consumer_ops_t qf_ops;

/* The id of a message whose routing key is "m<id>". */
int qf_msg_id(const wr_message_t *m);
/* A consumer of ch with that tag and priority (no arguments). */
wr_consumer_t *qf_consumer(qf_channel_t *ch, const char *tag, int32_t priority);
void qf_close_and_unref(wr_queue_t *q);

#endif
