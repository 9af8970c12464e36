/* SPDX-License-Identifier: MIT */
/*
 * librabbitmq client: basic.get (get-ok message_count counts down, then
 * get-empty) and basic.qos prefetch (a consumer with prefetch_count 3 holds
 * exactly 3 unacked deliveries; each ack releases one more).
 */
#include "it_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void publish_n(amqp_connection_state_t conn, const char *q, int n)
{
    for (int i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof body, "m%d", i);
        int rc = amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(q), 0, 0, NULL,
                                    amqp_cstring_bytes(body));
        IT_CHECK(rc == AMQP_STATUS_OK, "publish: %s", amqp_error_string2(rc));
    }
}

static void test_get(amqp_connection_state_t conn)
{
    char q[128];
    it_unique_name("it-c-get", q, sizeof q);
    it_declare_queue(conn, 1, q);
    publish_n(conn, q, 3);
    for (int i = 0; i < 3; i++) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(q), 0);
        if (!it_reply_ok(r, "basic.get")) {
            it_failures++;
            return;
        }
        IT_CHECK(r.reply.id == AMQP_BASIC_GET_OK_METHOD, "get %d: not get-ok", i);
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
            return;
        amqp_basic_get_ok_t *ok = r.reply.decoded;
        IT_CHECK(ok->message_count == (uint32_t)(2 - i), "get %d: message_count %u, want %d", i,
                 ok->message_count, 2 - i);
        IT_CHECK(ok->delivery_tag == (uint64_t)i + 1, "get %d: delivery tag %llu", i,
                 (unsigned long long)ok->delivery_tag);
        IT_CHECK(!ok->redelivered, "get %d: redelivered", i);
        IT_CHECK(it_bytes_eq(ok->routing_key, amqp_cstring_bytes(q)), "get %d: routing key", i);
        amqp_message_t m;
        if (!it_reply_ok(amqp_read_message(conn, 1, &m, 0), "read message")) {
            it_failures++;
            return;
        }
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        IT_CHECK(it_bytes_eq(m.body, amqp_cstring_bytes(want)), "get %d: body", i);
        amqp_destroy_message(&m);
    }
    amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(q), 0);
    IT_CHECK(it_reply_ok(r, "basic.get") && r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD,
             "4th get: expected get-empty");
    /* ack all three with one multiple ack; nothing is left */
    IT_CHECK(amqp_basic_ack(conn, 1, 3, 1) == AMQP_STATUS_OK, "ack multiple");
    IT_CHECK(it_wait_message_count(conn, 1, q, 0, 10000), "queue empty");
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(q), 0, 0);
    it_rpc_ok(conn, "queue.delete");
}

static bool consume_one(amqp_connection_state_t conn, amqp_envelope_t *env)
{
    struct timeval tv = {10, 0};
    amqp_maybe_release_buffers(conn);
    return it_reply_ok(amqp_consume_message(conn, env, &tv, 0), "consume_message");
}

static void test_qos(amqp_connection_state_t conn)
{
    char q[128];
    it_unique_name("it-c-qos", q, sizeof q);
    it_declare_queue(conn, 1, q);
    publish_n(conn, q, 10);
    IT_CHECK(it_wait_message_count(conn, 1, q, 10, 10000), "10 queued");

    it_channel_open(conn, 2);
    amqp_basic_qos(conn, 2, 0, 3, 0);
    if (!it_rpc_ok(conn, "basic.qos"))
        exit(1);
    amqp_basic_consume(conn, 2, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (!it_rpc_ok(conn, "basic.consume"))
        exit(1);
    uint64_t tags[4];
    for (int i = 0; i < 3; i++) {
        amqp_envelope_t env;
        if (!consume_one(conn, &env)) {
            it_failures++;
            return;
        }
        tags[i] = env.delivery_tag;
        amqp_destroy_envelope(&env);
    }
    /* exactly 3 out: 7 ready, and still 7 after another round trip */
    IT_CHECK(it_wait_message_count(conn, 1, q, 7, 10000), "7 ready with prefetch 3");
    IT_CHECK(it_message_count(conn, 1, q) == 7, "prefetch 3 exceeded");
    /* frames for channel 2 that arrived during those RPCs are queued by
     * librabbitmq: there must be none (no 4th delivery) */
    IT_CHECK(!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn),
             "a delivery beyond prefetch 3 arrived");

    IT_CHECK(amqp_basic_ack(conn, 2, tags[0], 0) == AMQP_STATUS_OK, "ack");
    amqp_envelope_t env;
    if (consume_one(conn, &env)) {
        char want[8];
        snprintf(want, sizeof want, "m%d", 3);
        IT_CHECK(it_bytes_eq(env.message.body, amqp_cstring_bytes(want)), "4th delivery should be m3");
        tags[3] = env.delivery_tag;
        amqp_destroy_envelope(&env);
    } else {
        it_failures++;
    }
    IT_CHECK(it_wait_message_count(conn, 1, q, 6, 10000), "6 ready after one ack");
    IT_CHECK(amqp_basic_ack(conn, 2, tags[3], 1) == AMQP_STATUS_OK, "ack multiple");
    amqp_channel_close(conn, 2, AMQP_REPLY_SUCCESS);
    it_rpc_ok(conn, "channel.close");
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(q), 0, 0);
    it_rpc_ok(conn, "queue.delete");
}

int main(int argc, char **argv)
{
    const char *host;
    int port;
    it_args(argc, argv, &host, &port);
    amqp_connection_state_t conn = it_connect(host, port, 131072);
    it_channel_open(conn, 1);
    test_get(conn);
    test_qos(conn);
    it_close(conn);
    return it_finish("get_qos");
}
