/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/base/message.c: the fields of a new message, and
 * its allocation cache (a freed block kept for the next message of its size
 * class). Run under AddressSanitizer, a block reused for a larger message,
 * or a kept block touched, fails here.
 */
#include <check.h>
#include <string.h>

#include "broker/base/message.h"
#include "core/buf.h"
#include "tests/unit/runner.h"

/* A content header with no properties for a body of body_size. */
static wr_bytes_t header(wr_buf_t *b, size_t body_size)
{
    wr_props_t p = {.class_id = 60, .body_size = body_size};

    wr_buf_reset(b);
    wr_props_encode(b, &p);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data, b->len};
}

static wr_message_t *make(size_t body_size, char fill)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_message_t *m =
        wr_message_new(WR_BYTES_LIT("ex"), WR_BYTES_LIT("rk"), header(&b, body_size), body_size);

    wr_buf_free(&b);
    ck_assert_ptr_nonnull(m);
    if (body_size > 0)
        memset(m->body, fill, body_size);
    m->body_filled = body_size;
    return m;
}

/* A message made from a reused block starts as a new one: one reference,
 * nothing decoded or filled, its strings and body in its own block. */
START_TEST(test_reused_block_starts_fresh)
{
    wr_message_t *m = make(100, 'a');
    wr_buf_t b = WR_BUF_INIT;

    ck_assert_ptr_nonnull(wr_message_props(m));
    ck_assert(m->props_decoded);
    wr_message_ref(m);
    wr_message_unref(m);
    wr_message_unref(m);
    m = wr_message_new(WR_BYTES_LIT("x"), WR_BYTES_LIT("key"), header(&b, 101), 101);
    wr_buf_free(&b);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->refs, 1);
    ck_assert(!m->props_decoded);
    ck_assert_uint_eq(m->body_filled, 0);
    ck_assert_uint_eq(m->body_size, 101);
    ck_assert(wr_bytes_eq_str(m->exchange, "x"));
    ck_assert(wr_bytes_eq_str(m->routing_key, "key"));
    ck_assert_ptr_eq(m->body, m->routing_key.data + m->routing_key.len + m->header.len);
    memset(m->body, 'b', 101);
    wr_message_unref(m);
}
END_TEST

/* Every size from empty to past the largest class, freed in bursts (as an
 * ack of many frees them) and made again one larger: each body is written
 * whole and read back intact while the others are alive. */
START_TEST(test_sizes_and_bursts)
{
    enum { BURST = 64 };
    wr_message_t *ms[BURST];
    static uint8_t want[2400];

    for (size_t size = 0; size < 2300; size += 7) {
        for (size_t i = 0; i < BURST; i++)
            ms[i] = make(size + i % 3, (char)('a' + i % 26));
        for (size_t i = 0; i < BURST; i++) {
            memset(want, 'a' + i % 26, ms[i]->body_size);
            ck_assert(ms[i]->body_size == 0 || memcmp(ms[i]->body, want, ms[i]->body_size) == 0);
            wr_message_unref(ms[i]);
        }
    }
}
END_TEST

/* More freed than the cache keeps (1 MiB): the rest is freed, and what is
 * kept still serves new messages. */
START_TEST(test_cache_is_bounded)
{
    enum { N = 2000 };
    static wr_message_t *ms[N];

    for (size_t i = 0; i < N; i++)
        ms[i] = make(1500, 'c');
    for (size_t i = 0; i < N; i++)
        wr_message_unref(ms[i]);
    for (size_t i = 0; i < N; i++)
        ms[i] = make(1500, 'd');
    for (size_t i = 0; i < N; i++) {
        ck_assert_int_eq(ms[i]->body[1499], 'd');
        wr_message_unref(ms[i]);
    }
}
END_TEST

/* A copy with new properties is a message of its own size. */
START_TEST(test_with_props)
{
    wr_message_t *m = make(300, 'e');
    wr_props_t p = {.class_id = 60, .body_size = 300, .flags = WR_PROP_DELIVERY_MODE, .delivery_mode = 2};
    wr_message_t *c;

    ck_assert(!wr_message_persistent(m));
    c = wr_message_with_props(m, &p);
    ck_assert_ptr_nonnull(c);
    wr_message_unref(m);
    ck_assert(wr_message_persistent(c));
    ck_assert_uint_eq(c->body_filled, 300);
    ck_assert_int_eq(c->body[299], 'e');
    wr_message_unref(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("message");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_reused_block_starts_fresh);
    tcase_add_test(tc, test_sizes_and_bursts);
    tcase_add_test(tc, test_cache_is_bounded);
    tcase_add_test(tc, test_with_props);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
