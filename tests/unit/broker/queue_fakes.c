/* SPDX-License-Identifier: MIT */
/* The fake channel and message ids shared by the queue unit tests. */
#include "queue_fakes.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static bool fake_can_take(wr_consumer_t *c)
{
    return !((qf_channel_t *)c->owner)->blocked;
}

static void fake_deliver(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *pos, bool redelivered)
{
    qf_channel_t *ch = c->owner;

    ck_assert_int_lt(ch->ngot, 64);
    ch->got[ch->ngot++] = qf_msg_id(m);
    if (!c->no_ack)
        ck_assert_int_eq(wr_unacked_add(ch->u, ++ch->last_tag, c->queue, m, pos, c), WR_OK);
    wr_message_unref(m);
}

static void fake_cancelled(wr_consumer_t *c)
{
    ((qf_channel_t *)c->owner)->cancelled++;
}

const wr_consumer_ops_t qf_ops = {fake_can_take, fake_deliver, fake_cancelled};

int qf_msg_id(const wr_message_t *m)
{
    char key[16] = {0};

    memcpy(key, m->routing_key.data, m->routing_key.len < 15 ? m->routing_key.len : 15);
    return atoi(key + 1);
}

wr_consumer_t *qf_consumer(qf_channel_t *ch, const char *tag, int32_t priority)
{
    wr_consumer_t *c = wr_consumer_new(wr_bytes_str(tag), (wr_bytes_t){NULL, 0}, &qf_ops, ch);

    ck_assert_ptr_nonnull(c);
    c->priority = priority;
    return c;
}

void qf_close_and_unref(wr_queue_t *q)
{
    wr_queue_close(q);
    wr_queue_unref(q);
}
