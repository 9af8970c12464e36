/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the generated method codec: every method in the spec
 * round-trips against wire bytes computed by the generator's independent
 * Python encoder, every truncation and any trailing byte is refused, and a
 * few methods are checked field by field against bytes real clients send.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "method_samples.h"
#include "protocol/methods.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

static wr_bytes_t sample_wire(const method_sample_t *s)
{
    return (wr_bytes_t){(const uint8_t *)s->wire, s->wire_len};
}

START_TEST(test_sample_encodes_to_wire)
{
    const method_sample_t *s = &method_samples[_i];
    wr_buf_t b = WR_BUF_INIT;

    wr_method_encode(&b, &s->value);
    ck_assert(wr_buf_ok(&b));
    ck_assert_msg(b.len == s->wire_len && memcmp(b.data, s->wire, b.len) == 0, "%s: encoding differs",
                  wr_method_name(s->value.id));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_sample_decodes_and_reencodes)
{
    const method_sample_t *s = &method_samples[_i];
    wr_buf_t b = WR_BUF_INIT;
    wr_method_t m;

    ck_assert_int_eq(wr_method_decode(sample_wire(s), &m), WR_OK);
    ck_assert_uint_eq(m.id, s->value.id);
    wr_method_encode(&b, &m);
    ck_assert(wr_buf_ok(&b));
    ck_assert_msg(b.len == s->wire_len && memcmp(b.data, s->wire, b.len) == 0, "%s: round trip differs",
                  wr_method_name(s->value.id));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_sample_truncations_rejected)
{
    const method_sample_t *s = &method_samples[_i];
    wr_method_t m;

    for (size_t len = 0; len < s->wire_len; len++) {
        wr_bytes_t cut = {(const uint8_t *)s->wire, len};
        ck_assert_msg(wr_method_decode(cut, &m) == WR_ESYNTAX, "%s: prefix %zu not refused",
                      wr_method_name(s->value.id), len);
    }
}
END_TEST

START_TEST(test_sample_trailing_byte_rejected)
{
    const method_sample_t *s = &method_samples[_i];
    uint8_t longer[512];
    wr_method_t m;

    ck_assert_uint_lt(s->wire_len, sizeof(longer));
    memcpy(longer, s->wire, s->wire_len);
    longer[s->wire_len] = 0;
    ck_assert_int_eq(wr_method_decode((wr_bytes_t){longer, s->wire_len + 1}, &m), WR_ESYNTAX);
}
END_TEST

START_TEST(test_every_method_has_samples)
{
    /* Every id the codec knows appears in the samples, and vice versa. */
    size_t known = 0;

    for (uint32_t cls = 0; cls < 256; cls++) {
        for (uint32_t idx = 0; idx < 256; idx++) {
            uint32_t id = cls << 16 | idx;
            bool found = false;
            if (wr_method_name(id) == NULL)
                continue;
            known++;
            for (size_t i = 0; i < METHOD_NSAMPLES; i++)
                found = found || method_samples[i].value.id == id;
            ck_assert_msg(found, "%s has no sample", wr_method_name(id));
        }
    }
    ck_assert_uint_eq(known * 2, METHOD_NSAMPLES);
    /* All eight classes of the spec: 14 + 6 + 2 + 8 + 10 + 18 + 2 + 6 methods. */
    ck_assert_uint_eq(known, 66);
}
END_TEST

START_TEST(test_names_and_content)
{
    ck_assert_str_eq(wr_method_name(WR_BASIC_PUBLISH), "basic.publish");
    ck_assert_str_eq(wr_method_name(WR_CONNECTION_START_OK), "connection.start-ok");
    ck_assert_str_eq(wr_method_name(WR_BASIC_RECOVER_ASYNC), "basic.recover-async");
    ck_assert_str_eq(wr_method_name(WR_EXCHANGE_UNBIND_OK), "exchange.unbind-ok");
    ck_assert_str_eq(wr_method_name(WR_CONFIRM_SELECT), "confirm.select");
    ck_assert_str_eq(wr_method_name(WR_TX_ROLLBACK_OK), "tx.rollback-ok");
    ck_assert_ptr_null(wr_method_name(0x003c0001u));
    ck_assert_uint_eq(WR_METHOD_CLASS(WR_EXCHANGE_UNBIND_OK), 40);
    ck_assert_uint_eq(WR_METHOD_INDEX(WR_EXCHANGE_UNBIND_OK), 51);
    ck_assert_uint_eq(WR_QUEUE_DECLARE, 0x0032000au);

    for (uint32_t cls = 0; cls < 256; cls++) {
        for (uint32_t idx = 0; idx < 256; idx++) {
            uint32_t id = cls << 16 | idx;
            bool want = id == WR_BASIC_PUBLISH || id == WR_BASIC_RETURN || id == WR_BASIC_DELIVER ||
                        id == WR_BASIC_GET_OK;
            ck_assert_int_eq(wr_method_has_content(id), want);
        }
    }
}
END_TEST

START_TEST(test_unknown_ids)
{
    static const uint8_t bad_class[] = {0, 11, 0, 10};
    static const uint8_t bad_method[] = {0, 60, 0, 41, 0, 0, 0, 0, 0};
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t short_ids[] = {0, 60, 0};
    wr_method_t m;
    wr_buf_t b = WR_BUF_INIT;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){bad_class, sizeof(bad_class)}, &m), WR_EUNKNOWN);
    ck_assert_int_eq(wr_method_decode((wr_bytes_t){bad_method, sizeof(bad_method)}, &m), WR_EUNKNOWN);
    ck_assert_uint_eq(m.id, 0x003c0029u); /* kept so the close can name it */
    ck_assert_int_eq(wr_method_decode((wr_bytes_t){huge, sizeof(huge)}, &m), WR_EUNKNOWN);
    ck_assert_int_eq(wr_method_decode((wr_bytes_t){short_ids, sizeof(short_ids)}, &m), WR_ESYNTAX);

    m = (wr_method_t){.id = 0x00630001u};
    wr_method_encode(&b, &m);
    ck_assert(!wr_buf_ok(&b));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_basic_publish_fields)
{
    /* basic.publish as pika sends it: ticket 0, exchange "", routing key
     * "hello", mandatory set. */
    static const uint8_t wire[] = {0, 60, 0, 40, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0x01};
    wr_method_t m;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){wire, sizeof(wire)}, &m), WR_OK);
    ck_assert_uint_eq(m.id, WR_BASIC_PUBLISH);
    ck_assert_uint_eq(m.u.basic_publish.ticket, 0);
    ck_assert_uint_eq(m.u.basic_publish.exchange.len, 0);
    ck_assert(wr_bytes_eq_str(m.u.basic_publish.routing_key, "hello"));
    ck_assert_ptr_eq(m.u.basic_publish.routing_key.data, wire + 8); /* borrowed */
    ck_assert(m.u.basic_publish.mandatory);
    ck_assert(!m.u.basic_publish.immediate);
}
END_TEST

START_TEST(test_bits_pack_lsb_first)
{
    /* queue.declare: passive, durable, exclusive, auto-delete, nowait share
     * one octet, passive in bit 0. 0x12 = durable + nowait. */
    static const uint8_t wire[] = {0, 50, 0, 10, 0, 0, 1, 'q', 0x12, 0, 0, 0, 0};
    wr_method_t m;
    wr_buf_t b = WR_BUF_INIT;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){wire, sizeof(wire)}, &m), WR_OK);
    ck_assert(!m.u.queue_declare.passive);
    ck_assert(m.u.queue_declare.durable);
    ck_assert(!m.u.queue_declare.exclusive);
    ck_assert(!m.u.queue_declare.auto_delete);
    ck_assert(m.u.queue_declare.nowait);
    ck_assert_uint_eq(m.u.queue_declare.arguments.len, 0);

    /* basic.nack: multiple in bit 0, requeue in bit 1. */
    m = (wr_method_t){.id = WR_BASIC_NACK, .u.basic_nack = {.delivery_tag = 7, .requeue = true}};
    wr_method_encode(&b, &m);
    ck_assert_uint_eq(b.len, 4 + 8 + 1);
    ck_assert_uint_eq(b.data[12], 0x02);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_unused_bits_ignored)
{
    /* RabbitMQ ignores the unused high bits of a bit octet. */
    static const uint8_t wire[] = {0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 9, 0xfe};
    wr_method_t m;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){wire, sizeof(wire)}, &m), WR_OK);
    ck_assert_uint_eq(m.u.basic_ack.delivery_tag, 9);
    ck_assert(!m.u.basic_ack.multiple);
}
END_TEST

START_TEST(test_start_ok_table)
{
    /* connection.start-ok with client-properties {product: "x"}. */
    static const uint8_t wire[] = {0,   10,  0, 11,  0, 0,   0,   14, 7,   'p', 'r', 'o', 'd', 'u', 'c',
                                   't', 'S', 0, 0,   0, 1,   'x', 5,  'P', 'L', 'A', 'I', 'N', 0,   0,
                                   0,   5,   0, 'g', 0, 'g', 'g', 5,  'e', 'n', '_', 'U', 'S'};
    wr_method_t m;
    wr_value_t v;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){wire, sizeof(wire)}, &m), WR_OK);
    ck_assert_uint_eq(m.u.connection_start_ok.client_properties.len, 14); /* no length prefix */
    ck_assert_ptr_eq(m.u.connection_start_ok.client_properties.data, wire + 8);
    ck_assert(wr_table_get(m.u.connection_start_ok.client_properties, "product", &v));
    ck_assert(wr_bytes_eq_str(v.v.s, "x"));
    ck_assert(wr_bytes_eq_str(m.u.connection_start_ok.mechanism, "PLAIN"));
    ck_assert(wr_bytes_eq(m.u.connection_start_ok.response, WR_BYTES_LIT("\0g\0gg")));
    ck_assert(wr_bytes_eq_str(m.u.connection_start_ok.locale, "en_US"));
}
END_TEST

START_TEST(test_bad_table_is_syntax_error)
{
    /* queue.declare whose arguments table has an unknown tag, then one whose
     * arguments nest deeper than WR_TABLE_MAX_DEPTH: both are syntax errors
     * at the method level. */
    uint8_t wire[512] = {0, 50, 0, 10, 0, 0, 1, 'q', 0, 0, 0, 0, 4, 1, 'a', 'Z', 0};
    wr_buf_t b = WR_BUF_INIT;
    size_t marks[WR_TABLE_MAX_DEPTH + 1];
    wr_method_t m;

    ck_assert_int_eq(wr_method_decode((wr_bytes_t){wire, 17}, &m), WR_ESYNTAX);

    wr_buf_put(&b, wire, 9);
    for (int i = 0; i <= WR_TABLE_MAX_DEPTH; i++) {
        marks[i] = wr_table_begin(&b);
        if (i < WR_TABLE_MAX_DEPTH) {
            wr_table_put_key(&b, "n");
            wr_buf_put_u8(&b, 'F');
        }
    }
    for (int i = WR_TABLE_MAX_DEPTH; i >= 0; i--)
        wr_table_end(&b, marks[i]);
    ck_assert(wr_buf_ok(&b));
    ck_assert_int_eq(wr_method_decode((wr_bytes_t){b.data, b.len}, &m), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_encode_appends)
{
    /* Encoding appends to what the buffer holds and leaves it intact. */
    wr_buf_t b = WR_BUF_INIT;
    wr_method_t m = {.id = WR_CHANNEL_CLOSE_OK};

    wr_buf_put_u8(&b, 0xaa);
    wr_method_encode(&b, &m);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_uint_eq(b.data[0], 0xaa);
    ck_assert_uint_eq(b.data[2], 20);
    ck_assert_uint_eq(b.data[4], 41);
    wr_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-methods");
    TCase *tc = tcase_create("methods");

    tcase_add_loop_test(tc, test_sample_encodes_to_wire, 0, (int)METHOD_NSAMPLES);
    tcase_add_loop_test(tc, test_sample_decodes_and_reencodes, 0, (int)METHOD_NSAMPLES);
    tcase_add_loop_test(tc, test_sample_truncations_rejected, 0, (int)METHOD_NSAMPLES);
    tcase_add_loop_test(tc, test_sample_trailing_byte_rejected, 0, (int)METHOD_NSAMPLES);
    tcase_add_test(tc, test_every_method_has_samples);
    tcase_add_test(tc, test_names_and_content);
    tcase_add_test(tc, test_unknown_ids);
    tcase_add_test(tc, test_basic_publish_fields);
    tcase_add_test(tc, test_bits_pack_lsb_first);
    tcase_add_test(tc, test_unused_bits_ignored);
    tcase_add_test(tc, test_start_ok_table);
    tcase_add_test(tc, test_bad_table_is_syntax_error);
    tcase_add_test(tc, test_encode_appends);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
