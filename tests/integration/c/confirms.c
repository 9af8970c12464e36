/* SPDX-License-Identifier: MIT */
/*
 * librabbitmq client: publisher confirms. After confirm.select every publish
 * gets delivery tag 1, 2, ...; each is acked exactly once (single or multiple
 * acks), in increasing order; a mandatory unroutable message is returned
 * (312 NO_ROUTE) before its ack.
 */
#include "it_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100

static uint64_t acked_upto; /* every tag <= this has been confirmed */
static bool acked[N + 2];

/* Reads one frame on channel 1 (10 s deadline); NULL-method on timeout. */
static bool next_frame(amqp_connection_state_t conn, amqp_frame_t *f)
{
    struct timeval tv = {10, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, f, &tv);
    if (rc != AMQP_STATUS_OK) {
        it_fail(__FILE__, __LINE__, "waiting for a frame: %s", amqp_error_string2(rc));
        return false;
    }
    return true;
}

static void record_ack(const amqp_basic_ack_t *ack)
{
    uint64_t tag = ack->delivery_tag;
    IT_CHECK(tag >= 1 && tag <= N + 1, "ack for unknown tag %llu", (unsigned long long)tag);
    if (tag < 1 || tag > N + 1)
        return;
    IT_CHECK(tag > acked_upto || !ack->multiple, "multiple ack %llu goes backwards", (unsigned long long)tag);
    uint64_t from = ack->multiple ? 1 : tag;
    for (uint64_t t = from; t <= tag; t++) {
        if (!ack->multiple)
            IT_CHECK(!acked[t], "tag %llu acked twice", (unsigned long long)t);
        acked[t] = true;
    }
    while (acked_upto < N + 1 && acked[acked_upto + 1])
        acked_upto++;
}

int main(int argc, char **argv)
{
    const char *host;
    int port;
    it_args(argc, argv, &host, &port);

    amqp_connection_state_t conn = it_connect(host, port, 131072);
    it_channel_open(conn, 1);
    char q[128];
    it_unique_name("it-c-confirms", q, sizeof q);
    it_declare_queue(conn, 1, q);
    amqp_confirm_select(conn, 1);
    if (!it_rpc_ok(conn, "confirm.select"))
        return 1;

    for (int i = 0; i < N; i++) {
        char body[32];
        snprintf(body, sizeof body, "confirm-%d", i);
        int rc = amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(q), 0, 0, NULL,
                                    amqp_cstring_bytes(body));
        IT_CHECK(rc == AMQP_STATUS_OK, "publish %d: %s", i, amqp_error_string2(rc));
    }
    while (acked_upto < N && it_failures == 0) {
        amqp_frame_t f;
        if (!next_frame(conn, &f))
            break;
        if (f.frame_type != AMQP_FRAME_METHOD || f.channel != 1 ||
            f.payload.method.id != AMQP_BASIC_ACK_METHOD) {
            it_fail(__FILE__, __LINE__, "expected basic.ack, got frame type %d method 0x%08x", f.frame_type,
                    f.frame_type == AMQP_FRAME_METHOD ? f.payload.method.id : 0);
            break;
        }
        record_ack(f.payload.method.decoded);
    }
    IT_CHECK(acked_upto == N, "only tags up to %llu confirmed", (unsigned long long)acked_upto);
    IT_CHECK(it_message_count(conn, 1, q) == N, "queue should hold %d messages", N);

    /* Tag N+1: mandatory and unroutable -> basic.return, then basic.ack. */
    int rc =
        amqp_basic_publish(conn, 1, amqp_cstring_bytes("amq.direct"), amqp_cstring_bytes("it-c-nobody-bound"),
                           1, 0, NULL, amqp_cstring_bytes("bounce"));
    IT_CHECK(rc == AMQP_STATUS_OK, "mandatory publish: %s", amqp_error_string2(rc));
    bool returned = false;
    while (acked_upto < N + 1 && it_failures == 0) {
        amqp_frame_t f;
        if (!next_frame(conn, &f))
            break;
        if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            amqp_basic_return_t *r = f.payload.method.decoded;
            IT_CHECK(r->reply_code == 312, "return code %u", r->reply_code);
            IT_CHECK(it_bytes_eq(r->reply_text, amqp_cstring_bytes("NO_ROUTE")), "return text %.*s",
                     (int)r->reply_text.len, (const char *)r->reply_text.bytes);
            IT_CHECK(it_bytes_eq(r->exchange, amqp_cstring_bytes("amq.direct")), "return exchange");
            amqp_message_t m;
            if (it_reply_ok(amqp_read_message(conn, 1, &m, 0), "read returned message")) {
                IT_CHECK(it_bytes_eq(m.body, amqp_cstring_bytes("bounce")), "returned body");
                amqp_destroy_message(&m);
            } else {
                it_failures++;
            }
            returned = true;
        } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            IT_CHECK(returned, "ack for the mandatory message before its basic.return");
            record_ack(f.payload.method.decoded);
        } else {
            it_fail(__FILE__, __LINE__, "unexpected frame type %d", f.frame_type);
            break;
        }
    }
    IT_CHECK(returned && acked_upto == N + 1, "return + ack for tag %d", N + 1);

    amqp_queue_delete(conn, 1, amqp_cstring_bytes(q), 0, 0);
    it_rpc_ok(conn, "queue.delete");
    it_close(conn);
    return it_finish("confirms");
}
