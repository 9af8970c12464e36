/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/frame.c: splitting frames out of a byte stream
 * (WR_AGAIN with the needed size, frame_max, frame-end, frame types) and the
 * frame encoders.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/frame.h"
#include "tests/unit/runner.h"

/* channel.open on channel 1, as every client sends it. */
static const uint8_t open_frame[] = {1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 0, 0xce};

START_TEST(test_parse_method_frame)
{
    wr_frame_t f;
    size_t consumed = 0;
    wr_method_t m;

    ck_assert_int_eq(wr_frame_parse(open_frame, sizeof(open_frame), 0, &f, &consumed), WR_OK);
    ck_assert_uint_eq(consumed, sizeof(open_frame));
    ck_assert_uint_eq(f.type, WR_FRAME_METHOD);
    ck_assert_uint_eq(f.channel, 1);
    ck_assert_ptr_eq(f.payload.data, open_frame + 7);
    ck_assert_uint_eq(f.payload.len, 5);
    ck_assert_int_eq(wr_method_decode(f.payload, &m), WR_OK);
    ck_assert_uint_eq(m.id, WR_CHANNEL_OPEN);
}
END_TEST

START_TEST(test_parse_leaves_following_bytes)
{
    uint8_t two[2 * sizeof(open_frame)];
    wr_frame_t f;
    size_t consumed;

    memcpy(two, open_frame, sizeof(open_frame));
    memcpy(two + sizeof(open_frame), open_frame, sizeof(open_frame));
    ck_assert_int_eq(wr_frame_parse(two, sizeof(two), 0, &f, &consumed), WR_OK);
    ck_assert_uint_eq(consumed, sizeof(open_frame));
    ck_assert_int_eq(wr_frame_parse(two + consumed, sizeof(two) - consumed, 0, &f, &consumed), WR_OK);
    ck_assert_uint_eq(consumed, sizeof(open_frame));
}
END_TEST

START_TEST(test_again_on_every_prefix)
{
    for (size_t len = 0; len < sizeof(open_frame); len++) {
        wr_frame_t f;
        size_t consumed = 12345;
        ck_assert_int_eq(wr_frame_parse(open_frame, len, 0, &f, &consumed), WR_AGAIN);
        /* Before the header is complete nothing is known about the size. */
        ck_assert_uint_eq(consumed, len < WR_FRAME_HEADER_SIZE ? 0 : sizeof(open_frame));
    }
}
END_TEST

START_TEST(test_frame_max)
{
    wr_frame_t f;
    size_t consumed;

    /* frame_max counts the whole frame, header and frame-end included. */
    ck_assert_int_eq(wr_frame_parse(open_frame, sizeof(open_frame), sizeof(open_frame), &f, &consumed),
                     WR_OK);
    ck_assert_int_eq(wr_frame_parse(open_frame, sizeof(open_frame), sizeof(open_frame) - 1, &f, &consumed),
                     WR_ETOOBIG);
    /* Refused as soon as the header is in, without waiting for the payload. */
    ck_assert_int_eq(wr_frame_parse(open_frame, WR_FRAME_HEADER_SIZE, 8, &f, &consumed), WR_ETOOBIG);
}
END_TEST

START_TEST(test_huge_size)
{
    static const uint8_t hdr[] = {3, 0, 1, 0xff, 0xff, 0xff, 0xff};
    wr_frame_t f;
    size_t consumed;

    ck_assert_int_eq(wr_frame_parse(hdr, sizeof(hdr), 131072, &f, &consumed), WR_ETOOBIG);
    ck_assert_int_eq(wr_frame_parse(hdr, sizeof(hdr), UINT32_MAX, &f, &consumed), WR_ETOOBIG);
    /* Without a limit the size must not wrap: 0xffffffff + 8 bytes are needed. */
    ck_assert_int_eq(wr_frame_parse(hdr, sizeof(hdr), 0, &f, &consumed), WR_AGAIN);
    ck_assert_uint_eq(consumed, (size_t)0xffffffffu + 8);
}
END_TEST

START_TEST(test_bad_frame_end)
{
    uint8_t bad[sizeof(open_frame)];
    wr_frame_t f;
    size_t consumed;

    memcpy(bad, open_frame, sizeof(bad));
    bad[sizeof(bad) - 1] = 0xcd;
    ck_assert_int_eq(wr_frame_parse(bad, sizeof(bad), 0, &f, &consumed), WR_ESYNTAX);
}
END_TEST

START_TEST(test_frame_types)
{
    uint8_t frame[sizeof(open_frame)];

    memcpy(frame, open_frame, sizeof(frame));
    for (int type = 0; type < 256; type++) {
        wr_frame_t f;
        size_t consumed;
        bool known = type == 1 || type == 2 || type == 3 || type == 8;
        frame[0] = (uint8_t)type;
        ck_assert_int_eq(wr_frame_parse(frame, sizeof(frame), 0, &f, &consumed), known ? WR_OK : WR_EUNKNOWN);
        /* An unknown type is reported as soon as the header is in. */
        if (!known)
            ck_assert_int_eq(wr_frame_parse(frame, WR_FRAME_HEADER_SIZE, 0, &f, &consumed), WR_EUNKNOWN);
    }
}
END_TEST

START_TEST(test_encoders)
{
    static const uint8_t heartbeat[] = {8, 0, 0, 0, 0, 0, 0, 0xce};
    static const uint8_t body[] = {3, 0x01, 0x02, 0, 0, 0, 3, 'a', 'b', 'c', 0xce};
    wr_buf_t b = WR_BUF_INIT;
    wr_method_t m = {.id = WR_CHANNEL_OPEN};

    wr_frame_put_heartbeat(&b);
    ck_assert_uint_eq(b.len, sizeof(heartbeat));
    ck_assert_mem_eq(b.data, heartbeat, sizeof(heartbeat));

    wr_buf_reset(&b);
    wr_frame_put_method(&b, 1, &m);
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, sizeof(open_frame));
    ck_assert_mem_eq(b.data, open_frame, sizeof(open_frame));

    wr_buf_reset(&b);
    wr_frame_put_raw(&b, WR_FRAME_BODY, 0x0102, WR_BYTES_LIT("abc"));
    ck_assert_uint_eq(b.len, sizeof(body));
    ck_assert_mem_eq(b.data, body, sizeof(body));

    wr_buf_reset(&b);
    wr_frame_put_header(&b, WR_FRAME_BODY, 0x0102, 3);
    ck_assert_uint_eq(b.len, WR_FRAME_HEADER_SIZE);
    ck_assert_mem_eq(b.data, body, WR_FRAME_HEADER_SIZE);

    ck_assert_mem_eq(wr_protocol_header, "AMQP\0\0\x09\x01", 8);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_put_method_round_trip)
{
    /* A method frame after other bytes in the buffer parses back. */
    wr_buf_t b = WR_BUF_INIT;
    wr_method_t m = {.id = WR_BASIC_DELIVER,
                     .u.basic_deliver = {.consumer_tag = WR_BYTES_LIT("ctag"),
                                         .delivery_tag = 42,
                                         .redelivered = true,
                                         .exchange = WR_BYTES_LIT("ex"),
                                         .routing_key = WR_BYTES_LIT("rk")}};
    wr_method_t out;
    wr_frame_t f;
    size_t consumed;

    wr_frame_put_heartbeat(&b);
    wr_frame_put_method(&b, 7, &m);
    ck_assert(wr_buf_ok(&b));
    ck_assert_int_eq(wr_frame_parse(b.data + 8, b.len - 8, 0, &f, &consumed), WR_OK);
    ck_assert_uint_eq(consumed, b.len - 8);
    ck_assert_uint_eq(f.channel, 7);
    ck_assert_int_eq(wr_method_decode(f.payload, &out), WR_OK);
    ck_assert_uint_eq(out.u.basic_deliver.delivery_tag, 42);
    ck_assert(out.u.basic_deliver.redelivered);
    ck_assert(wr_bytes_eq_str(out.u.basic_deliver.routing_key, "rk"));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_put_method_unknown_id_fails_buffer)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_method_t m = {.id = 0x00010001u};

    wr_frame_put_method(&b, 1, &m);
    ck_assert(!wr_buf_ok(&b));
    wr_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-frame");
    TCase *tc = tcase_create("frame");

    tcase_add_test(tc, test_parse_method_frame);
    tcase_add_test(tc, test_parse_leaves_following_bytes);
    tcase_add_test(tc, test_again_on_every_prefix);
    tcase_add_test(tc, test_frame_max);
    tcase_add_test(tc, test_huge_size);
    tcase_add_test(tc, test_bad_frame_end);
    tcase_add_test(tc, test_frame_types);
    tcase_add_test(tc, test_encoders);
    tcase_add_test(tc, test_put_method_round_trip);
    tcase_add_test(tc, test_put_method_unknown_id_fails_buffer);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
