/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the limits of the classic queue type (broker/queue/classic.c),
 * on a fake clock with hooks that record what they are asked: message TTL, length limits and their
 * overflow modes, dead-lettering of rejected messages, the delivery limit,
 * the consumer timeout, single active consumer, x-expires and priority
 * queues.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp/unacked.h"
#include "broker/queue/classic.h"
#include "core/status.h"
#include "queue_fakes.h"
#include "protocol/props.h"
#include "tests/unit/runner.h"

/* ---------------------------------------------------------------- fixtures */

typedef struct {
    uint64_t now;
    uint64_t armed; /* the last due asked for */
    int arms;
    int expired;
    int dl_id[64];
    wr_dl_reason_t dl_why[64];
    int ndl;
} fx_t;

static fx_t fx;

/* Which message this is: the number in its routing key. */
static uint64_t fake_now(void *ud)
{
    return ((fx_t *)ud)->now;
}

static void fake_dead_letter(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why)
{
    fx_t *f = ud;

    ck_assert_int_lt(f->ndl, 64);
    f->dl_id[f->ndl] = qf_msg_id(m);
    f->dl_why[f->ndl++] = why;
    wr_message_unref(m);
}

static void fake_arm(void *ud, wr_queue_t *q, uint64_t due)
{
    ((fx_t *)ud)->armed = due;
    ((fx_t *)ud)->arms++;
}

static void fake_expired(void *ud, wr_queue_t *q)
{
    ((fx_t *)ud)->expired++;
}

static const wr_queue_hooks_t hooks = {fake_now, fake_dead_letter, fake_arm, fake_expired, NULL};

static void sched_init(wr_queue_sched_t *s)
{
    memset(&fx, 0, sizeof(fx));
    fx.armed = UINT64_MAX;
    wr_queue_sched_init(s, NULL, &fx);
    s->hooks = &hooks;
}

/* Message n with a body of `size` bytes, an expiration property unless
 * NULL, and a priority property unless negative. */
static wr_message_t *msg(int n, size_t size, const char *expiration, int priority)
{
    wr_buf_t h = WR_BUF_INIT;
    wr_props_t p = {.class_id = 60, .body_size = size};
    char key[16];
    wr_message_t *m;

    snprintf(key, sizeof(key), "m%d", n);
    if (expiration != NULL) {
        p.flags |= WR_PROP_EXPIRATION;
        p.expiration = wr_bytes_str(expiration);
    }
    if (priority >= 0) {
        p.flags |= WR_PROP_PRIORITY;
        p.priority = (uint8_t)priority;
    }
    wr_props_encode(&h, &p);
    ck_assert(wr_buf_ok(&h));
    m = wr_message_new(WR_BYTES_LIT("x"), wr_bytes_str(key), (wr_bytes_t){h.data, h.len}, size);
    ck_assert_ptr_nonnull(m);
    if (size > 0)
        memset(m->body, 'b', size);
    m->body_filled = size;
    wr_buf_free(&h);
    return m;
}

static int publish_full(wr_queue_t *q, int n, size_t size, const char *expiration, int priority)
{
    wr_message_t *m = msg(n, size, expiration, priority);
    int rc = wr_queue_publish(q, m, NULL);

    wr_message_unref(m);
    return rc;
}

static void publish(wr_queue_t *q, int n)
{
    ck_assert_int_eq(publish_full(q, n, 1, NULL, -1), WR_OK);
}

static wr_queue_t *new_queue(wr_queue_sched_t *s, uint8_t max_priority, bool single_active)
{
    wr_queue_opts_t o = {.max_priority = max_priority, .single_active = single_active};
    wr_queue_t *q = wr_queue_new(&wr_classic_queue_type, WR_BYTES_LIT("q"), &o, s);

    ck_assert_ptr_nonnull(q);
    return q;
}

/* A queue with limits: each argument -1 for none. */
static wr_queue_t *limited_queue(wr_queue_sched_t *s, int64_t ttl, int64_t max_length, int64_t max_bytes,
                                 wr_overflow_t overflow, bool dead_letter)
{
    wr_queue_t *q = new_queue(s, 0, false);
    wr_queue_limits_t l;

    wr_queue_limits_none(&l);
    l.message_ttl = ttl;
    l.max_length = max_length;
    l.max_length_bytes = max_bytes;
    l.overflow = overflow;
    l.dead_letter = dead_letter;
    wr_queue_set_limits(q, &l);
    return q;
}

/* basic.get: the head must be message id (0: nothing ready). */
static void get_drop(wr_queue_t *q, int id)
{
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    if (id == 0) {
        ck_assert(!wr_queue_get(q, true, &m, &pos, &r));
        return;
    }
    ck_assert(wr_queue_get(q, true, &m, &pos, &r));
    ck_assert_int_eq(qf_msg_id(m), id);
    wr_message_unref(m);
}

/* basic.get awaiting ack, recorded as delivery `tag`. */
static void get_keep(wr_queue_t *q, wr_unacked_t *u, uint64_t tag, int id, bool redelivered)
{
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    ck_assert(wr_queue_get(q, false, &m, &pos, &r));
    ck_assert_int_eq(qf_msg_id(m), id);
    ck_assert_int_eq(r, redelivered);
    ck_assert_int_eq(wr_unacked_add(u, tag, q, m, &pos, NULL), WR_OK);
    wr_message_unref(m);
}

static void expect_dl(int i, int id, wr_dl_reason_t why)
{
    ck_assert_int_gt(fx.ndl, i);
    ck_assert_int_eq(fx.dl_id[i], id);
    ck_assert_int_eq(fx.dl_why[i], why);
}

/* ---------------------------------------------------------------- plumbing */

START_TEST(test_limits_none_and_no_hooks)
{
    wr_queue_sched_t s;
    wr_queue_limits_t l;
    wr_queue_t *q;

    wr_queue_limits_none(&l);
    ck_assert_int_eq(l.message_ttl, -1);
    ck_assert_int_eq(l.expires, -1);
    ck_assert_int_eq(l.max_length, -1);
    ck_assert_int_eq(l.max_length_bytes, -1);
    ck_assert_int_eq(l.delivery_limit, -1);
    ck_assert_int_eq(l.overflow, WR_OVERFLOW_DROP_HEAD);
    ck_assert(!l.dead_letter);
    /* Without hooks nothing times out. */
    wr_queue_sched_init(&s, NULL, NULL);
    ck_assert_ptr_null(s.hooks);
    q = new_queue(&s, 0, false);
    ck_assert_int_eq(wr_queue_limits(q)->max_length, -1);
    ck_assert_int_eq(publish_full(q, 1, 3, "0", -1), WR_OK);
    l.message_ttl = 0;
    l.dead_letter = true;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(publish_full(q, 2, 4, NULL, -1), WR_OK);
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 7);
    get_drop(q, 1);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 4);
    qf_close_and_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- TTL */

START_TEST(test_ttl_expires_heads_on_tick)
{
    wr_queue_sched_t s;
    wr_queue_t *q, *plain;

    sched_init(&s);
    q = limited_queue(&s, 100, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    plain = limited_queue(&s, 100, -1, -1, WR_OVERFLOW_DROP_HEAD, false);
    ck_assert_int_eq(fx.arms, 0); /* nothing due yet */
    for (int i = 1; i <= 3; i++) {
        fx.now = (uint64_t)(i - 1) * 10;
        publish(q, i);
        publish(plain, i);
    }
    ck_assert_uint_eq(fx.armed, 100);
    fx.now = 99;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 3);
    ck_assert_uint_eq(fx.armed, 100);
    /* Due: the head leaves, dead-lettered as expired; the next one is armed. */
    fx.now = 100;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_int_eq(fx.ndl, 1);
    expect_dl(0, 1, WR_DL_EXPIRED);
    ck_assert_uint_eq(fx.armed, 110);
    fx.now = 125;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    expect_dl(2, 3, WR_DL_EXPIRED);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 0);
    /* Without a dead-letter exchange they are just dropped. */
    wr_queue_tick(plain);
    ck_assert_uint_eq(wr_queue_ready(plain), 0);
    ck_assert_int_eq(fx.ndl, 3);
    qf_close_and_unref(q);
    qf_close_and_unref(plain);
}
END_TEST

START_TEST(test_ttl_shorter_of_queue_and_message)
{
    wr_queue_sched_t s;
    wr_queue_t *q;

    sched_init(&s);
    q = limited_queue(&s, 1000, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    ck_assert_int_eq(publish_full(q, 1, 1, "5000", -1), WR_OK); /* 1000 */
    ck_assert_int_eq(publish_full(q, 2, 1, "50", -1), WR_OK);   /* 50 */
    ck_assert_int_eq(publish_full(q, 3, 1, "+60", -1), WR_OK);  /* 60 */
    ck_assert_uint_eq(fx.armed, 1000);
    /* 2 has expired, but only heads leave. */
    fx.now = 70;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 3);
    /* Once 1 is taken, the expired 2 and 3 are the head and leave. */
    get_drop(q, 1);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    expect_dl(0, 2, WR_DL_EXPIRED);
    expect_dl(1, 3, WR_DL_EXPIRED);
    qf_close_and_unref(q);

    /* Without x-message-ttl the message's own expiration applies. */
    q = new_queue(&s, 0, false);
    fx.now = 1000;
    ck_assert_int_eq(publish_full(q, 4, 1, "20", -1), WR_OK);
    ck_assert_uint_eq(fx.armed, 1020);
    fx.now = 1019;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    fx.now = 1020;
    get_drop(q, 0);
    ck_assert_int_eq(fx.ndl, 2); /* no dead-letter exchange: dropped */
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_ttl_never_delivers_expired)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new(), .blocked = true};
    wr_consumer_t *ca = qf_consumer(&a, "a", 0);

    sched_init(&s);
    q = limited_queue(&s, 100, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    publish(q, 1);
    publish(q, 2);
    fx.now = 50;
    publish(q, 3);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 0);
    /* The consumer unblocks after 1 and 2 expired: only 3 is delivered. */
    a.blocked = false;
    fx.now = 100;
    wr_queue_wake(q);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 1);
    ck_assert_int_eq(a.got[0], 3);
    ck_assert_int_eq(fx.ndl, 2);
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_ttl_zero)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *ca = qf_consumer(&a, "a", 0);

    sched_init(&s);
    q = limited_queue(&s, 0, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    /* No consumer: it expires at once. */
    publish(q, 1);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    expect_dl(0, 1, WR_DL_EXPIRED);
    /* A consumer that can take it gets it right away. */
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    publish(q, 2);
    publish(q, 3);
    ck_assert_int_eq(a.ngot, 2);
    ck_assert_int_eq(a.got[0], 2);
    ck_assert_int_eq(a.got[1], 3);
    a.blocked = true;
    publish(q, 4);
    ck_assert_int_eq(a.ngot, 2);
    expect_dl(1, 4, WR_DL_EXPIRED);
    /* A requeued message of a ttl-0 queue has expired too. */
    a.blocked = false;
    ck_assert_int_eq(wr_unacked_settle(a.u, 1, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    expect_dl(2, 2, WR_DL_EXPIRED);
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);

    /* Expiration "0" without x-message-ttl behaves the same. */
    q = new_queue(&s, 0, false);
    ck_assert_int_eq(publish_full(q, 5, 1, "0", -1), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_requeue_keeps_expiry)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    sched_init(&s);
    q = limited_queue(&s, 100, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    publish(q, 1);
    fx.now = 40;
    publish(q, 2);
    get_keep(q, u, 1, 1, false);
    get_keep(q, u, 2, 2, false);
    fx.now = 60;
    ck_assert_int_eq(wr_unacked_settle(u, 0, true, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_uint_le(fx.armed, 100);
    /* 1 expires at 100 (its first enqueue plus the TTL), not 160. */
    fx.now = 100;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    expect_dl(0, 1, WR_DL_EXPIRED);
    /* Requeued past its expiry, 2 leaves at once. */
    get_keep(q, u, 3, 2, true);
    fx.now = 140;
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    expect_dl(1, 2, WR_DL_EXPIRED);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- length */

START_TEST(test_max_length_drop_head)
{
    wr_queue_sched_t s;
    wr_queue_t *q;

    sched_init(&s);
    q = limited_queue(&s, -1, 2, -1, WR_OVERFLOW_DROP_HEAD, true);
    publish(q, 1);
    publish(q, 2);
    ck_assert_uint_eq(wr_queue_ready(q), 2); /* exactly at the limit */
    ck_assert_int_eq(fx.ndl, 0);
    publish(q, 3);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    expect_dl(0, 1, WR_DL_MAXLEN);
    get_drop(q, 2);
    get_drop(q, 3);
    qf_close_and_unref(q);

    /* Without a dead-letter exchange the head is just dropped. */
    q = limited_queue(&s, -1, 0, -1, WR_OVERFLOW_DROP_HEAD, false);
    publish(q, 4);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_int_eq(fx.ndl, 1);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_max_length_bytes)
{
    wr_queue_sched_t s;
    wr_queue_t *q;

    sched_init(&s);
    q = limited_queue(&s, -1, -1, 10, WR_OVERFLOW_DROP_HEAD, true);
    ck_assert_int_eq(publish_full(q, 1, 5, NULL, -1), WR_OK);
    ck_assert_int_eq(publish_full(q, 2, 5, NULL, -1), WR_OK);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 10); /* exactly at the limit */
    ck_assert_int_eq(fx.ndl, 0);
    ck_assert_int_eq(publish_full(q, 3, 1, NULL, -1), WR_OK);
    expect_dl(0, 1, WR_DL_MAXLEN);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 6);
    /* One big message pushes out everything before it, then itself. */
    ck_assert_int_eq(publish_full(q, 4, 11, NULL, -1), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 0);
    expect_dl(3, 4, WR_DL_MAXLEN);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_reject_publish)
{
    wr_queue_sched_t s;
    wr_queue_t *q;

    sched_init(&s);
    q = limited_queue(&s, -1, 2, -1, WR_OVERFLOW_REJECT_PUBLISH, true);
    publish(q, 1);
    publish(q, 2);
    ck_assert_int_eq(publish_full(q, 3, 1, NULL, -1), WR_EFULL);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_int_eq(fx.ndl, 0);
    ck_assert_uint_eq(wr_queue_stats(q)->publish, 2);
    get_drop(q, 1);
    publish(q, 4);
    qf_close_and_unref(q);

    q = limited_queue(&s, -1, -1, 10, WR_OVERFLOW_REJECT_PUBLISH_DLX, true);
    ck_assert_int_eq(publish_full(q, 5, 5, NULL, -1), WR_OK);
    ck_assert_int_eq(publish_full(q, 6, 5, NULL, -1), WR_OK);
    ck_assert_int_eq(publish_full(q, 7, 1, NULL, -1), WR_EFULL);
    expect_dl(0, 7, WR_DL_MAXLEN);
    ck_assert_int_eq(publish_full(q, 8, 0, NULL, -1), WR_OK); /* 0 bytes still fit */
    qf_close_and_unref(q);

    /* A lower limit does not drop anything with reject-publish. */
    q = limited_queue(&s, -1, -1, -1, WR_OVERFLOW_REJECT_PUBLISH, true);
    publish(q, 9);
    publish(q, 10);
    {
        wr_queue_limits_t l = *wr_queue_limits(q);
        l.max_length = 1;
        wr_queue_set_limits(q, &l);
    }
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_int_eq(publish_full(q, 11, 1, NULL, -1), WR_EFULL);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_unacked_not_counted)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    sched_init(&s);
    q = limited_queue(&s, -1, 1, 1, WR_OVERFLOW_REJECT_PUBLISH, true);
    publish(q, 1);
    get_keep(q, u, 1, 1, false);
    publish(q, 2);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    ck_assert_uint_eq(wr_queue_unacked(q), 1);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 1);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_set_limits_trims)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_queue_limits_t l;

    sched_init(&s);
    q = new_queue(&s, 0, false);
    for (int i = 1; i <= 5; i++)
        publish(q, i);
    wr_queue_limits_none(&l);
    l.dead_letter = true;
    l.max_length = 2;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(wr_queue_limits(q)->max_length, 2);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_int_eq(fx.ndl, 3);
    expect_dl(0, 1, WR_DL_MAXLEN);
    expect_dl(2, 3, WR_DL_MAXLEN);
    /* Removing the limit keeps what is left. */
    wr_queue_limits_none(&l);
    wr_queue_set_limits(q, &l);
    publish(q, 6);
    ck_assert_uint_eq(wr_queue_ready(q), 3);
    get_drop(q, 4);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_drop_head_delivers_first)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *ca = qf_consumer(&a, "a", 0);

    /* A consumer that can take messages gets them before any is dropped. */
    sched_init(&s);
    q = limited_queue(&s, -1, 1, -1, WR_OVERFLOW_DROP_HEAD, true);
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    for (int i = 1; i <= 4; i++)
        publish(q, i);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 4);
    ck_assert_int_eq(fx.ndl, 0);
    ca->prefetch = 4;
    publish(q, 5);
    publish(q, 6);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    expect_dl(0, 5, WR_DL_MAXLEN);
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);

    /* The same with reject-publish: nothing is refused while it can take. */
    a = (qf_channel_t){.u = wr_unacked_new()};
    ca = qf_consumer(&a, "a", 0);
    q = limited_queue(&s, -1, 1, -1, WR_OVERFLOW_REJECT_PUBLISH, true);
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    for (int i = 1; i <= 3; i++)
        publish(q, i);
    ck_assert_int_eq(a.ngot, 2);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    a.blocked = true;
    ck_assert_int_eq(publish_full(q, 4, 1, NULL, -1), WR_EFULL);
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- rejects */

START_TEST(test_discard_dead_letters)
{
    wr_queue_sched_t s;
    wr_queue_t *q, *plain;
    wr_unacked_t *u = wr_unacked_new();

    sched_init(&s);
    q = limited_queue(&s, -1, -1, -1, WR_OVERFLOW_DROP_HEAD, true);
    plain = limited_queue(&s, -1, -1, -1, WR_OVERFLOW_DROP_HEAD, false);
    publish(q, 1);
    publish(q, 2);
    publish(plain, 3);
    get_keep(q, u, 1, 1, false);
    get_keep(plain, u, 2, 3, false);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_DISCARD), WR_OK);
    expect_dl(0, 1, WR_DL_REJECTED);
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_DISCARD), WR_OK);
    ck_assert_int_eq(fx.ndl, 1);
    ck_assert_uint_eq(wr_queue_unacked(q), 0);
    /* A no-ack get is done with: never dead-lettered. */
    get_drop(q, 2);
    ck_assert_int_eq(fx.ndl, 1);
    /* An ack is not a dead-lettering either. */
    publish(q, 4);
    get_keep(q, u, 3, 4, false);
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_ACK), WR_OK);
    ck_assert_int_eq(fx.ndl, 1);
    wr_unacked_free(u);
    qf_close_and_unref(q);
    qf_close_and_unref(plain);
}
END_TEST

START_TEST(test_delivery_limit)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    wr_queue_limits_t l;

    sched_init(&s);
    q = new_queue(&s, 0, false);
    wr_queue_limits_none(&l);
    l.delivery_limit = 2;
    l.dead_letter = true;
    wr_queue_set_limits(q, &l);
    publish(q, 1);
    publish(q, 2);
    /* Delivered three times, returned twice: still within the limit. */
    get_keep(q, u, 1, 1, false);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_REQUEUE), WR_OK);
    get_keep(q, u, 2, 1, true);
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_REQUEUE), WR_OK);
    get_keep(q, u, 3, 1, true);
    ck_assert_int_eq(fx.ndl, 0);
    /* The third return exceeds it. */
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_REQUEUE), WR_OK);
    expect_dl(0, 1, WR_DL_DELIVERY_LIMIT);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    get_drop(q, 2);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

/* The consumer timeout is measured on the oldest pending delivery with its
 * queue's timeout in force at the time of the check. */
START_TEST(test_consumer_timeout)
{
    wr_queue_sched_t s;
    wr_queue_t *q, *other;
    wr_unacked_t *u = wr_unacked_new();
    wr_queue_limits_t l;
    int64_t t = 0;

    sched_init(&s);
    q = new_queue(&s, 0, false);
    other = new_queue(&s, 0, false);
    for (int i = 1; i <= 3; i++)
        publish(q, i);
    publish(other, 9);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), UINT64_MAX);
    ck_assert_int_eq(wr_unacked_oldest_age(u), -1);
    /* No timeout in force: never overdue. */
    fx.now = 100;
    get_keep(q, u, 1, 1, false);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), UINT64_MAX);
    wr_queue_limits_none(&l);
    l.consumer_timeout = 1000;
    wr_queue_set_limits(q, &l);
    fx.now = 500;
    get_keep(q, u, 2, 2, false);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), 600);
    ck_assert_int_eq(wr_unacked_oldest_age(u), 400);
    fx.now = 1100;
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), 0);
    ck_assert_int_eq(t, 1000);
    /* Acked, the next oldest counts; a longer timeout applies at once. */
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), 400);
    l.consumer_timeout = 2000;
    wr_queue_set_limits(q, &l);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), 1400);
    /* Only the oldest is looked at, as in RabbitMQ: a delivery of a queue
     * without a timeout behind it does not change that. */
    get_keep(other, u, 3, 9, false);
    fx.now = 2500;
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), 0);
    ck_assert_int_eq(t, 2000);
    /* Requeued, the messages come back redelivered. */
    ck_assert_uint_eq(wr_unacked_requeue_all(u), 2);
    ck_assert_uint_eq(wr_unacked_overdue_in(u, &t), UINT64_MAX);
    get_keep(q, u, 4, 2, true);
    wr_unacked_free(u);
    qf_close_and_unref(other);
    qf_close_and_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- consumers */

static void collect_tag(void *ud, const wr_consumer_t *c)
{
    strncat(ud, (const char *)c->tag.data, c->tag.len);
}

START_TEST(test_single_active_consumer)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()}, b = {.u = wr_unacked_new()}, c = {.u = wr_unacked_new()};
    wr_consumer_t *ca = qf_consumer(&a, "a", 0), *cb = qf_consumer(&b, "b", 10),
                  *cc = qf_consumer(&c, "c", 0);
    char tags[8] = "";

    sched_init(&s);
    q = new_queue(&s, 0, true);
    ck_assert_ptr_null(wr_queue_active_consumer(q));
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, cb), WR_OK); /* priority is ignored */
    ck_assert_int_eq(wr_queue_consume(q, cc), WR_OK);
    ck_assert_ptr_eq(wr_queue_active_consumer(q), ca);
    wr_queue_foreach_consumer(q, collect_tag, tags);
    ck_assert_str_eq(tags, "abc");
    for (int i = 1; i <= 4; i++)
        publish(q, i);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 4);
    ck_assert_int_eq(b.ngot + c.ngot, 0);
    /* Blocked, the active consumer holds the others back. */
    a.blocked = true;
    publish(q, 5);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(b.ngot + c.ngot, 0);
    /* Cancelled, the next earliest takes over with the ready messages. */
    wr_queue_cancel(ca);
    ck_assert_ptr_eq(wr_queue_active_consumer(q), cb);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(b.ngot, 1);
    ck_assert_int_eq(b.got[0], 5);
    wr_unacked_free(a.u); /* its deliveries come back to b */
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(b.ngot, 5);
    ck_assert_int_eq(b.got[1], 1);
    ck_assert_int_eq(c.ngot, 0);
    wr_queue_cancel(cb);
    wr_queue_cancel(cc);
    ck_assert_ptr_null(wr_queue_active_consumer(q));
    wr_consumer_unref(ca);
    wr_consumer_unref(cb);
    wr_consumer_unref(cc);
    wr_unacked_free(b.u);
    wr_unacked_free(c.u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_foreach_attach_order)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *c1 = qf_consumer(&a, "1", 0), *c2 = qf_consumer(&a, "2", 5),
                  *c3 = qf_consumer(&a, "3", -1);
    char tags[8] = "";

    sched_init(&s);
    q = new_queue(&s, 0, false);
    ck_assert_int_eq(wr_queue_consume(q, c1), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, c2), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, c3), WR_OK);
    ck_assert_ptr_null(wr_queue_active_consumer(q)); /* not single active */
    wr_queue_foreach_consumer(q, collect_tag, tags);
    ck_assert_str_eq(tags, "123");
    /* Consumer priorities still apply. */
    publish(q, 1);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_uint_eq(c2->unacked, 1);
    wr_queue_cancel(c2);
    tags[0] = '\0';
    wr_queue_foreach_consumer(q, collect_tag, tags);
    ck_assert_str_eq(tags, "13");
    wr_queue_close(q);
    wr_unacked_free(a.u);
    wr_consumer_unref(c1);
    wr_consumer_unref(c2);
    wr_consumer_unref(c3);
    wr_queue_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- x-expires */

START_TEST(test_queue_expires)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_queue_limits_t l;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *ca = qf_consumer(&a, "a", 0);

    sched_init(&s);
    q = new_queue(&s, 0, false);
    wr_queue_limits_none(&l);
    l.expires = 1000;
    wr_queue_set_limits(q, &l);
    ck_assert_uint_eq(fx.armed, 1000);
    /* Used at 500: its time starts over. */
    fx.now = 500;
    wr_queue_touch(q);
    fx.now = 1000;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 0);
    ck_assert_uint_eq(fx.armed, 1500);
    /* A consumer keeps it in use however long. */
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    fx.now = 5000;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 0);
    fx.now = 6000;
    wr_queue_cancel(ca);
    ck_assert_uint_eq(fx.armed, 7000);
    fx.now = 6999;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 0);
    /* basic.get uses it too. */
    get_drop(q, 0);
    fx.now = 7998;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 0);
    ck_assert_uint_eq(fx.armed, 7999);
    fx.now = 7999;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 1);
    /* Reported once. */
    fx.now = 20000;
    wr_queue_tick(q);
    ck_assert_int_eq(fx.expired, 1);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);

    /* Closing cancels a pending timer. */
    q = new_queue(&s, 0, false);
    wr_queue_set_limits(q, &l);
    ck_assert_uint_eq(fx.armed, 21000);
    qf_close_and_unref(q);
    ck_assert_uint_eq(fx.armed, UINT64_MAX);
    ck_assert_int_eq(fx.expired, 1);
}
END_TEST

/* ---------------------------------------------------------------- priorities */

START_TEST(test_priority_order)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    sched_init(&s);
    q = new_queue(&s, 5, false);
    ck_assert_int_eq(publish_full(q, 1, 1, NULL, -1), WR_OK); /* absent: 0 */
    ck_assert_int_eq(publish_full(q, 2, 1, NULL, 5), WR_OK);
    ck_assert_int_eq(publish_full(q, 3, 1, NULL, 3), WR_OK);
    ck_assert_int_eq(publish_full(q, 4, 1, NULL, 9), WR_OK); /* clamped to 5 */
    ck_assert_int_eq(publish_full(q, 5, 1, NULL, 0), WR_OK);
    ck_assert_int_eq(publish_full(q, 6, 1, NULL, 3), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 6);
    /* Highest first, FIFO within a priority. */
    get_keep(q, u, 1, 2, false);
    get_keep(q, u, 2, 4, false);
    get_keep(q, u, 3, 3, false);
    /* Requeued, each goes back to its place within its priority. */
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_int_eq(publish_full(q, 7, 1, NULL, 5), WR_OK);
    get_drop(q, 4);
    get_drop(q, 7);
    get_drop(q, 3);
    get_drop(q, 6);
    get_drop(q, 1);
    get_drop(q, 5);
    get_drop(q, 0);
    wr_unacked_free(u); /* 2 comes back */
    get_drop(q, 2);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_priority_limits_across_lanes)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_queue_limits_t l;

    sched_init(&s);
    q = new_queue(&s, 9, false);
    wr_queue_limits_none(&l);
    l.max_length = 2;
    l.dead_letter = true;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(publish_full(q, 1, 1, NULL, 1), WR_OK);
    ck_assert_int_eq(publish_full(q, 2, 1, NULL, 7), WR_OK);
    /* The head is the highest priority: it is dropped first. */
    ck_assert_int_eq(publish_full(q, 3, 1, NULL, 4), WR_OK);
    expect_dl(0, 2, WR_DL_MAXLEN);
    /* TTL: the lower lane's expired message leaves once it is the head. */
    l.max_length = -1;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(publish_full(q, 4, 1, "10", 9), WR_OK);
    fx.now = 10;
    wr_queue_tick(q);
    expect_dl(1, 4, WR_DL_EXPIRED);
    get_drop(q, 3);
    get_drop(q, 1);
    qf_close_and_unref(q);
}
END_TEST

static Suite *queue_limits_suite(void)
{
    Suite *s = suite_create("broker-queue-limits");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_limits_none_and_no_hooks);
    tcase_add_test(tc, test_ttl_expires_heads_on_tick);
    tcase_add_test(tc, test_ttl_shorter_of_queue_and_message);
    tcase_add_test(tc, test_ttl_never_delivers_expired);
    tcase_add_test(tc, test_ttl_zero);
    tcase_add_test(tc, test_requeue_keeps_expiry);
    tcase_add_test(tc, test_max_length_drop_head);
    tcase_add_test(tc, test_max_length_bytes);
    tcase_add_test(tc, test_reject_publish);
    tcase_add_test(tc, test_unacked_not_counted);
    tcase_add_test(tc, test_set_limits_trims);
    tcase_add_test(tc, test_drop_head_delivers_first);
    tcase_add_test(tc, test_discard_dead_letters);
    tcase_add_test(tc, test_delivery_limit);
    tcase_add_test(tc, test_consumer_timeout);
    tcase_add_test(tc, test_single_active_consumer);
    tcase_add_test(tc, test_foreach_attach_order);
    tcase_add_test(tc, test_queue_expires);
    tcase_add_test(tc, test_priority_order);
    tcase_add_test(tc, test_priority_limits_across_lanes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(queue_limits_suite());
}
