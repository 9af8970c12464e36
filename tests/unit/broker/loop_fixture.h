/* SPDX-License-Identifier: MIT */
/*
 * Shared by the broker unit tests that run modules on a real event loop
 * (vhost, alarms, channel): the loop as server.c creates it, bounded loop
 * passes until a condition holds, argument tables and messages.
 */
#ifndef WR_TEST_LOOP_FIXTURE_H
#define WR_TEST_LOOP_FIXTURE_H

#include <check.h>
#include <string.h>

#include <event2/event.h>

#include "broker/base/loop.h"
#include "broker/base/message.h"
#include "core/buf.h"
#include "protocol/props.h"
#include "protocol/table.h"

/* A loop with the broker's priority levels (connections need them). */
static inline struct event_base *wr_test_base_new(void)
{
    struct event_base *base = event_base_new();

    ck_assert_ptr_nonnull(base);
    ck_assert_int_eq(event_base_priority_init(base, WR_PRIO_LEVELS), 0);
    return base;
}

/* Runs what is ready on base, never waiting, until cond holds; fails the
 * test when it still does not after max passes. */
#define WR_TEST_LOOP_UNTIL(base, cond, max)                                                                  \
    do {                                                                                                     \
        for (int pass_ = 0; !(cond) && pass_ < (max); pass_++)                                               \
            event_base_loop((base), EVLOOP_NONBLOCK);                                                        \
        ck_assert_msg((cond), "after %d loop passes, still not: %s", (max), #cond);                          \
    } while (0)

/* One argument of a table: a string, or (s NULL) a long integer. */
typedef struct {
    const char *key; /* NULL ends a list */
    const char *s;
    int64_t n;
} wr_test_arg_t;

#define WR_TEST_STR(k, v)                                                                                    \
    {                                                                                                        \
        .key = (k), .s = (v)                                                                                 \
    }
#define WR_TEST_LONG(k, v)                                                                                   \
    {                                                                                                        \
        .key = (k), .n = (v)                                                                                 \
    }
#define WR_TEST_END                                                                                          \
    {                                                                                                        \
        .key = NULL                                                                                          \
    }

/* The table of args (a list ended by a NULL key) in b, reset first; returns
 * its raw bytes (no length prefix), valid until b changes. */
static inline wr_bytes_t wr_test_args(wr_buf_t *b, const wr_test_arg_t *args)
{
    size_t mark;

    wr_buf_reset(b);
    mark = wr_table_begin(b);
    for (; args->key != NULL; args++) {
        if (args->s != NULL)
            wr_table_put_str(b, args->key, args->s);
        else
            wr_table_put_long(b, args->key, args->n);
    }
    wr_table_end(b, mark);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

/* A message published to exchange with routing key rk and body; delivery
 * mode 2 when persistent. refs = 1. */
static inline wr_message_t *wr_test_message(const char *exchange, const char *rk, const char *body,
                                            bool persistent)
{
    wr_props_t p = {.class_id = 60, .body_size = strlen(body)};
    wr_buf_t h = WR_BUF_INIT;
    wr_message_t *m;

    if (persistent) {
        p.flags = WR_PROP_DELIVERY_MODE;
        p.delivery_mode = 2;
    }
    wr_props_encode(&h, &p);
    ck_assert(wr_buf_ok(&h));
    m = wr_message_new(wr_bytes_str(exchange), wr_bytes_str(rk), (wr_bytes_t){h.data, h.len}, p.body_size);
    ck_assert_ptr_nonnull(m);
    if (p.body_size > 0)
        memcpy(m->body, body, p.body_size);
    m->body_filled = p.body_size;
    wr_buf_free(&h);
    return m;
}

#endif
