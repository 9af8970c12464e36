/* SPDX-License-Identifier: MIT */
/*
 * librabbitmq client: publish/consume round trip. Every basic property is set
 * (a headers table with every field kind rabbitmq-c can encode) and compared
 * field by field on delivery; bodies: small, empty, larger than frame_max
 * (split across frames), and one published with a 4096-octet frame_max.
 */
#include "it_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool field_eq(const amqp_field_value_t *a, const amqp_field_value_t *b);

static bool table_eq(const amqp_table_t *a, const amqp_table_t *b)
{
    if (a->num_entries != b->num_entries)
        return false;
    for (int i = 0; i < a->num_entries; i++) {
        if (!it_bytes_eq(a->entries[i].key, b->entries[i].key) ||
            !field_eq(&a->entries[i].value, &b->entries[i].value)) {
            fprintf(stderr, "header entry %.*s differs\n", (int)a->entries[i].key.len,
                    (const char *)a->entries[i].key.bytes);
            return false;
        }
    }
    return true;
}

static bool field_eq(const amqp_field_value_t *a, const amqp_field_value_t *b)
{
    if (a->kind != b->kind) {
        fprintf(stderr, "field kind '%c' came back as '%c'\n", a->kind, b->kind);
        return false;
    }
    switch (a->kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
        return !a->value.boolean == !b->value.boolean;
    case AMQP_FIELD_KIND_I8:
        return a->value.i8 == b->value.i8;
    case AMQP_FIELD_KIND_U8:
        return a->value.u8 == b->value.u8;
    case AMQP_FIELD_KIND_I16:
        return a->value.i16 == b->value.i16;
    case AMQP_FIELD_KIND_U16:
        return a->value.u16 == b->value.u16;
    case AMQP_FIELD_KIND_I32:
        return a->value.i32 == b->value.i32;
    case AMQP_FIELD_KIND_U32:
        return a->value.u32 == b->value.u32;
    case AMQP_FIELD_KIND_I64:
        return a->value.i64 == b->value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        return a->value.u64 == b->value.u64;
    case AMQP_FIELD_KIND_F32:
        return memcmp(&a->value.f32, &b->value.f32, sizeof(float)) == 0;
    case AMQP_FIELD_KIND_F64:
        return memcmp(&a->value.f64, &b->value.f64, sizeof(double)) == 0;
    case AMQP_FIELD_KIND_DECIMAL:
        return a->value.decimal.decimals == b->value.decimal.decimals &&
               a->value.decimal.value == b->value.decimal.value;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        return it_bytes_eq(a->value.bytes, b->value.bytes);
    case AMQP_FIELD_KIND_VOID:
        return true;
    case AMQP_FIELD_KIND_TABLE:
        return table_eq(&a->value.table, &b->value.table);
    case AMQP_FIELD_KIND_ARRAY:
        if (a->value.array.num_entries != b->value.array.num_entries)
            return false;
        for (int i = 0; i < a->value.array.num_entries; i++)
            if (!field_eq(&a->value.array.entries[i], &b->value.array.entries[i]))
                return false;
        return true;
    default:
        fprintf(stderr, "unexpected field kind '%c'\n", a->kind);
        return false;
    }
}

static amqp_table_entry_t inner_entries[2];
static amqp_field_value_t array_values[3];
static amqp_table_entry_t header_entries[17];

static amqp_table_t make_headers(void)
{
    static const uint8_t raw_bytes[] = {0x00, 0xff, 0x10, 0x00};
    int n = 0;
#define ENTRY(k, kind_, member, v)                                                                           \
    do {                                                                                                     \
        header_entries[n].key = amqp_cstring_bytes(k);                                                       \
        header_entries[n].value.kind = kind_;                                                                \
        header_entries[n].value.value.member = v;                                                            \
        n++;                                                                                                 \
    } while (0)
    ENTRY("bool", AMQP_FIELD_KIND_BOOLEAN, boolean, 1);
    ENTRY("i8", AMQP_FIELD_KIND_I8, i8, -8);
    ENTRY("u8", AMQP_FIELD_KIND_U8, u8, 200);
    ENTRY("i16", AMQP_FIELD_KIND_I16, i16, -16000);
    ENTRY("u16", AMQP_FIELD_KIND_U16, u16, 65000);
    ENTRY("i32", AMQP_FIELD_KIND_I32, i32, -2000000000);
    ENTRY("u32", AMQP_FIELD_KIND_U32, u32, 4000000000u);
    ENTRY("i64", AMQP_FIELD_KIND_I64, i64, -9000000000000000000LL);
    ENTRY("f32", AMQP_FIELD_KIND_F32, f32, 1.25f);
    ENTRY("f64", AMQP_FIELD_KIND_F64, f64, -3.5e100);
    ENTRY("ts", AMQP_FIELD_KIND_TIMESTAMP, u64, 1700000000u);
    ENTRY("utf8", AMQP_FIELD_KIND_UTF8, bytes, amqp_cstring_bytes("caf\xc3\xa9"));
    amqp_bytes_t b = {sizeof raw_bytes, (void *)raw_bytes};
    ENTRY("bytes", AMQP_FIELD_KIND_BYTES, bytes, b);
    amqp_decimal_t d = {3, 31415};
    ENTRY("decimal", AMQP_FIELD_KIND_DECIMAL, decimal, d);
    header_entries[n].key = amqp_cstring_bytes("void");
    header_entries[n].value.kind = AMQP_FIELD_KIND_VOID;
    n++;

    inner_entries[0].key = amqp_cstring_bytes("k");
    inner_entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
    inner_entries[0].value.value.bytes = amqp_cstring_bytes("v");
    inner_entries[1].key = amqp_cstring_bytes("n");
    inner_entries[1].value.kind = AMQP_FIELD_KIND_I32;
    inner_entries[1].value.value.i32 = 7;
    amqp_table_t inner = {2, inner_entries};
    ENTRY("table", AMQP_FIELD_KIND_TABLE, table, inner);

    array_values[0].kind = AMQP_FIELD_KIND_I32;
    array_values[0].value.i32 = 1;
    array_values[1].kind = AMQP_FIELD_KIND_UTF8;
    array_values[1].value.bytes = amqp_cstring_bytes("two");
    array_values[2].kind = AMQP_FIELD_KIND_TABLE;
    array_values[2].value.table = inner;
    amqp_array_t arr = {3, array_values};
    ENTRY("array", AMQP_FIELD_KIND_ARRAY, array, arr);
#undef ENTRY
    amqp_table_t t = {n, header_entries};
    return t;
}

static amqp_basic_properties_t full_properties(void)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_HEADERS_FLAG |
               AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
               AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
               AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG |
               AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CLUSTER_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/octet-stream");
    p.content_encoding = amqp_cstring_bytes("binary");
    p.headers = make_headers();
    p.delivery_mode = 2;
    p.priority = 9;
    p.correlation_id = amqp_cstring_bytes("corr-42");
    p.reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to-not-really");
    p.expiration = amqp_cstring_bytes("3600000");
    p.message_id = amqp_cstring_bytes("message-id-1");
    p.timestamp = 1234567890;
    p.type = amqp_cstring_bytes("it.type");
    p.user_id = amqp_cstring_bytes("guest");
    p.app_id = amqp_cstring_bytes("warren-it-c");
    p.cluster_id = amqp_cstring_bytes("cluster-1");
    return p;
}

static void compare_properties(const amqp_basic_properties_t *want, const amqp_basic_properties_t *got,
                               int msg)
{
    IT_CHECK(got->_flags == want->_flags, "msg %d: flags 0x%x, want 0x%x", msg, (unsigned)got->_flags,
             (unsigned)want->_flags);
#define BYTES(f)                                                                                             \
    IT_CHECK(it_bytes_eq(got->f, want->f), "msg %d: property " #f " differs: %.*s", msg, (int)got->f.len,    \
             (const char *)got->f.bytes)
    BYTES(content_type);
    BYTES(content_encoding);
    BYTES(correlation_id);
    BYTES(reply_to);
    BYTES(expiration);
    BYTES(message_id);
    BYTES(type);
    BYTES(user_id);
    BYTES(app_id);
    BYTES(cluster_id);
#undef BYTES
    IT_CHECK(got->delivery_mode == want->delivery_mode, "msg %d: delivery_mode %u", msg, got->delivery_mode);
    IT_CHECK(got->priority == want->priority, "msg %d: priority %u", msg, got->priority);
    IT_CHECK(got->timestamp == want->timestamp, "msg %d: timestamp %llu", msg,
             (unsigned long long)got->timestamp);
    IT_CHECK(table_eq(&want->headers, &got->headers), "msg %d: headers differ", msg);
}

static amqp_bytes_t pattern_body(size_t len, unsigned seed)
{
    amqp_bytes_t b = amqp_bytes_malloc(len ? len : 1);
    b.len = len;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)b.bytes)[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return b;
}

int main(int argc, char **argv)
{
    const char *host;
    int port;
    it_args(argc, argv, &host, &port);

    amqp_connection_state_t conn = it_connect(host, port, 131072);
    it_channel_open(conn, 1);
    char q[128];
    it_unique_name("it-c-roundtrip", q, sizeof q);
    it_declare_queue(conn, 1, q);

    amqp_basic_properties_t props = full_properties();
    size_t sizes[] = {5, 0, 300000};
    amqp_bytes_t bodies[4];
    for (int i = 0; i < 3; i++) {
        bodies[i] = pattern_body(sizes[i], (unsigned)i);
        int rc = amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(q), 0, 0, &props,
                                    bodies[i]);
        IT_CHECK(rc == AMQP_STATUS_OK, "publish %d: %s", i, amqp_error_string2(rc));
    }

    /* Publishes on two connections are not ordered against each other:
     * wait for the first three before the fourth is sent. */
    IT_CHECK(it_wait_message_count(conn, 1, q, 3, 10000), "3 messages queued");

    /* A publisher with a small frame_max: its body arrives in 5 frames. */
    amqp_connection_state_t small = it_connect(host, port, 4096);
    it_channel_open(small, 1);
    bodies[3] = pattern_body(20000, 3);
    int rc =
        amqp_basic_publish(small, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(q), 0, 0, &props, bodies[3]);
    IT_CHECK(rc == AMQP_STATUS_OK, "small-frame publish: %s", amqp_error_string2(rc));
    it_close(small);
    IT_CHECK(it_wait_message_count(conn, 1, q, 4, 10000), "4 messages queued");

    amqp_basic_consume(conn, 1, amqp_cstring_bytes(q), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (!it_rpc_ok(conn, "basic.consume"))
        return 1;
    for (int i = 0; i < 4; i++) {
        amqp_envelope_t env;
        struct timeval tv = {10, 0};
        amqp_maybe_release_buffers(conn);
        if (!it_reply_ok(amqp_consume_message(conn, &env, &tv, 0), "consume_message")) {
            it_failures++;
            break;
        }
        IT_CHECK(env.delivery_tag == (uint64_t)i + 1, "delivery tag %llu, want %d",
                 (unsigned long long)env.delivery_tag, i + 1);
        IT_CHECK(!env.redelivered, "msg %d redelivered", i);
        IT_CHECK(env.exchange.len == 0, "msg %d: exchange not the default", i);
        IT_CHECK(it_bytes_eq(env.routing_key, amqp_cstring_bytes(q)), "msg %d: routing key", i);
        IT_CHECK(env.message.body.len == bodies[i].len, "msg %d: body length %zu, want %zu", i,
                 env.message.body.len, bodies[i].len);
        IT_CHECK(it_bytes_eq(env.message.body, bodies[i]), "msg %d: body differs", i);
        compare_properties(&props, &env.message.properties, i);
        IT_CHECK(amqp_basic_ack(conn, 1, env.delivery_tag, 0) == AMQP_STATUS_OK, "ack %d", i);
        amqp_destroy_envelope(&env);
    }
    IT_CHECK(it_wait_message_count(conn, 1, q, 0, 10000), "queue empty after acks");
    for (int i = 0; i < 4; i++)
        amqp_bytes_free(bodies[i]);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(q), 0, 0);
    it_rpc_ok(conn, "queue.delete");
    it_close(conn);
    return it_finish("roundtrip");
}
