/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the classic queue type (broker/queue/classic.c), through the
 * queue-type interface, without sockets or an event loop: ready-message
 * order, requeue to the original position, purge, the channel's record of
 * unacked deliveries (broker/amqp/unacked.c: ack, multiple, nack/reject,
 * unknown tags, records kept for later deliveries), and consumer dispatch
 * through a hand-driven scheduler with fake channels.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "broker/amqp/unacked.h"
#include "broker/queue/classic.h"
#include "core/status.h"
#include "queue_fakes.h"
#include "tests/unit/runner.h"

/* ---------------------------------------------------------------- fixtures */

static wr_message_t *msg(int n)
{
    char key[16];

    snprintf(key, sizeof(key), "m%d", n);
    return wr_message_new(WR_BYTES_LIT("x"), wr_bytes_str(key), WR_BYTES_LIT(""), 0);
}

/* Which message this is: the number in its routing key. */
static wr_queue_t *new_queue(wr_queue_sched_t *s, bool auto_delete)
{
    wr_queue_opts_t o = {.auto_delete = auto_delete};

    return wr_queue_new(&wr_classic_queue_type, WR_BYTES_LIT("q"), &o, s);
}

static void publish(wr_queue_t *q, int n)
{
    wr_message_t *m = msg(n);

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(wr_queue_publish(q, m, NULL), WR_OK);
    wr_message_unref(m); /* the queue holds its own reference */
}

/* Takes the head; checks its id and redelivered flag. */
static void expect_get(wr_queue_t *q, bool no_ack, int id, bool redelivered, wr_message_t **m,
                       wr_qtoken_t *pos)
{
    bool r;

    ck_assert(wr_queue_get(q, no_ack, m, pos, &r));
    ck_assert_int_eq(qf_msg_id(*m), id);
    ck_assert_int_eq(r, redelivered);
}

static void get_and_drop(wr_queue_t *q, int id, bool redelivered)
{
    wr_message_t *m;
    wr_qtoken_t pos;

    expect_get(q, true, id, redelivered, &m, &pos);
    wr_message_unref(m);
}

/* Gets the head and records it as delivery `tag` awaiting ack. */
static void deliver_get(wr_queue_t *q, wr_unacked_t *u, uint64_t tag, int id, bool redelivered)
{
    wr_message_t *m;
    wr_qtoken_t pos;

    expect_get(q, false, id, redelivered, &m, &pos);
    ck_assert_int_eq(wr_unacked_add(u, tag, q, m, &pos, NULL), WR_OK);
    wr_message_unref(m);
}

/* ---------------------------------------------------------------- ready */

START_TEST(test_fifo_order)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 100; i++)
        publish(q, i);
    ck_assert_uint_eq(wr_queue_ready(q), 100);
    for (int i = 1; i <= 100; i++)
        get_and_drop(q, i, false);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert(!wr_queue_get(q, true, &m, &pos, &r));
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_requeue_original_position)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 6; i++)
        publish(q, i);
    deliver_get(q, u, 1, 1, false);
    deliver_get(q, u, 2, 2, false);
    deliver_get(q, u, 3, 3, false);
    publish(q, 7);
    /* Requeue out of order; both go back in front of 4, in seq order. */
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 6);
    deliver_get(q, u, 4, 1, true);
    publish(q, 8);
    deliver_get(q, u, 5, 3, true);
    deliver_get(q, u, 6, 4, false);
    /* 2 is still out; requeue it and the ones just taken. */
    ck_assert_int_eq(wr_unacked_settle(u, 0, true, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 0);
    get_and_drop(q, 1, true);
    get_and_drop(q, 2, true);
    get_and_drop(q, 3, true);
    get_and_drop(q, 4, true);
    get_and_drop(q, 5, false);
    get_and_drop(q, 6, false);
    get_and_drop(q, 7, false);
    get_and_drop(q, 8, false);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_purge_counts_ready_only)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 5; i++)
        publish(q, i);
    deliver_get(q, u, 1, 1, false);
    deliver_get(q, u, 2, 2, false);
    ck_assert_uint_eq(wr_queue_purge(q), 3);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_uint_eq(wr_unacked_count(u), 2);
    ck_assert_uint_eq(wr_queue_purge(q), 0);
    /* Unacked deliveries survive a purge and come back on requeue. */
    ck_assert_uint_eq(wr_unacked_requeue_all(u), 2);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    get_and_drop(q, 1, true);
    get_and_drop(q, 2, true);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_requeue_to_closed_queue_drops)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    publish(q, 1);
    publish(q, 2);
    deliver_get(q, u, 1, 1, false);
    /* The delivery keeps the deleted queue's memory alive. */
    ck_assert_uint_eq(wr_queue_close(q), 1);
    wr_queue_unref(q);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 0);
    wr_unacked_free(u);
}
END_TEST

/* ---------------------------------------------------------------- unacked */

START_TEST(test_ack_single_and_multiple)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 6; i++) {
        publish(q, i);
        deliver_get(q, u, (uint64_t)i, i, false);
    }
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 5);
    /* Already acked: unknown. */
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_ACK), WR_ENOENT);
    /* Multiple up to 4 takes 1, 3 and 4. */
    ck_assert_int_eq(wr_unacked_settle(u, 4, true, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 2);
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_ACK), WR_ENOENT);
    ck_assert_int_eq(wr_unacked_settle(u, 1, true, WR_SETTLE_ACK), WR_ENOENT);
    /* Tag 0 with multiple: everything. */
    ck_assert_int_eq(wr_unacked_settle(u, 0, true, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_unknown_tags)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_ACK), WR_ENOENT);
    ck_assert_int_eq(wr_unacked_settle(u, 0, false, WR_SETTLE_ACK), WR_ENOENT);
    /* Nothing pending: tag 0 multiple is fine and does nothing. */
    ck_assert_int_eq(wr_unacked_settle(u, 0, true, WR_SETTLE_ACK), WR_OK);
    for (int i = 1; i <= 3; i++) {
        publish(q, i);
        deliver_get(q, u, (uint64_t)(i * 10), i, false);
    }
    /* A multiple ack naming an unknown tag settles nothing, even below it. */
    ck_assert_int_eq(wr_unacked_settle(u, 25, true, WR_SETTLE_ACK), WR_ENOENT);
    ck_assert_int_eq(wr_unacked_settle(u, 99, true, WR_SETTLE_ACK), WR_ENOENT);
    ck_assert_uint_eq(wr_unacked_count(u), 3);
    ck_assert_int_eq(wr_unacked_settle(u, 20, true, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 1);
    wr_unacked_free(u); /* requeues tag 30 */
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    get_and_drop(q, 3, true);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_nack_reject)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 6; i++) {
        publish(q, i);
        deliver_get(q, u, (uint64_t)i, i, false);
    }
    /* reject without requeue: gone */
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_DISCARD), WR_OK);
    /* reject with requeue */
    ck_assert_int_eq(wr_unacked_settle(u, 4, false, WR_SETTLE_REQUEUE), WR_OK);
    /* nack multiple with requeue: 2, 3, 5 */
    ck_assert_int_eq(wr_unacked_settle(u, 5, true, WR_SETTLE_REQUEUE), WR_OK);
    /* nack multiple without requeue: 6 */
    ck_assert_int_eq(wr_unacked_settle(u, 6, true, WR_SETTLE_DISCARD), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 4);
    get_and_drop(q, 2, true);
    get_and_drop(q, 3, true);
    get_and_drop(q, 4, true);
    get_and_drop(q, 5, true);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

/* Many deliveries settled in a scattered order keep the tag index sound
 * (exercises growth, backward-shift deletion and shrinking). */
START_TEST(test_unacked_index_stress)
{
    enum { N = 5000 };
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    size_t left = N;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= N; i++) {
        publish(q, i);
        deliver_get(q, u, (uint64_t)i, i, false);
    }
    /* Every tag congruent to 0 mod 7, then 3 mod 7, one by one. */
    for (int r = 0; r < 7; r += 3) {
        for (int t = 1; t <= N; t++) {
            if (t % 7 == r) {
                ck_assert_int_eq(wr_unacked_settle(u, (uint64_t)t, false, WR_SETTLE_ACK), WR_OK);
                left--;
            }
        }
    }
    ck_assert_uint_eq(wr_unacked_count(u), left);
    for (int t = 1; t <= N; t++) {
        int rc = wr_unacked_settle(u, (uint64_t)t, false, WR_SETTLE_ACK);
        ck_assert_int_eq(rc, (t % 7 == 0 || t % 7 == 3 || t % 7 == 6) ? WR_ENOENT : WR_OK);
        if (rc == WR_OK)
            left--;
        if (t == N / 2)
            break;
    }
    ck_assert_uint_eq(wr_unacked_count(u), left);
    ck_assert_int_eq(wr_unacked_settle(u, N, true, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_unacked_count(u), 0);
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

/* The classic type, recording where each token it settles lives (in the
 * channel's record of the delivery). */
static wr_queue_type_t spy_type;
static const wr_qtoken_t *settled[600];
static size_t nsettled;

static void spy_settle(wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    ck_assert_uint_lt(nsettled, sizeof(settled) / sizeof(settled[0]));
    settled[nsettled++] = t;
    wr_classic_queue_type.settle(q, m, t, how);
}

/* Of settled[from, to), how many were also settled in [0, from). */
static size_t settled_again(size_t from, size_t to)
{
    size_t n = 0;

    for (size_t i = from; i < to; i++) {
        for (size_t j = 0; j < from; j++) {
            if (settled[i] == settled[j]) {
                n++;
                break;
            }
        }
    }
    return n;
}

/*
 * A settled delivery's record serves a later delivery (no allocation), up to
 * 256 kept per channel, and starts fresh. Under AddressSanitizer a kept
 * record is poisoned (a use after settlement is reported), and a freed one
 * is quarantined, so the reuse seen is the channel's own.
 */
START_TEST(test_unacked_recycles_records)
{
    enum { N = 300 };
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    spy_type = *q->type;
    spy_type.settle = spy_settle;
    q->type = &spy_type;
    nsettled = 0;
    for (int i = 1; i <= N; i++) {
        publish(q, i);
        deliver_get(q, u, (uint64_t)i, i, false);
    }
    ck_assert_int_eq(wr_unacked_settle(u, N, true, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_uint_eq(nsettled, N);
#if defined(__SANITIZE_ADDRESS__)
    for (size_t i = 0; i < N; i++)
        ck_assert(__asan_address_is_poisoned(settled[i]));
#endif
    for (int i = 1; i <= N; i++)
        deliver_get(q, u, (uint64_t)(N + i), i, true);
    ck_assert_uint_eq(wr_unacked_count(u), N);
    ck_assert_int_eq(wr_unacked_settle(u, N + 7, false, WR_SETTLE_ACK), WR_OK);
    ck_assert_int_eq(wr_unacked_settle(u, 0, true, WR_SETTLE_ACK), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_uint_eq(nsettled, 2 * N);
#if defined(__SANITIZE_ADDRESS__)
    ck_assert_uint_eq(settled_again(N, 2 * N), 256);
#else
    ck_assert_uint_ge(settled_again(N, 2 * N), 256);
#endif
    wr_unacked_free(u);
    qf_close_and_unref(q);
}
END_TEST

/* ---------------------------------------------------------------- consumers */

static wr_consumer_t *consumer(qf_channel_t *ch, const char *tag, int32_t priority, uint16_t prefetch)
{
    wr_consumer_t *c = qf_consumer(ch, tag, priority);

    c->prefetch = prefetch;
    return c;
}

static int wakes;

static void count_wake(void *ud)
{
    wakes++;
}

START_TEST(test_round_robin_and_prefetch)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()}, b = {.u = wr_unacked_new()};
    wr_consumer_t *ca, *cb;

    wakes = 0;
    wr_queue_sched_init(&s, count_wake, NULL);
    q = new_queue(&s, false);
    ca = consumer(&a, "a", 0, 2);
    cb = consumer(&b, "b", 0, 0);
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, cb), WR_OK);
    ck_assert_int_eq(wakes, 0); /* nothing to deliver yet */
    for (int i = 1; i <= 6; i++)
        publish(q, i);
    ck_assert_int_eq(wakes, 1); /* one wake for the whole burst */
    /* Dispatch happens only when the scheduler runs. */
    ck_assert_int_eq(a.ngot + b.ngot, 0);
    ck_assert(!wr_queue_sched_run(&s, 256));
    /* a alternates with b until its window of 2 is full. */
    ck_assert_int_eq(a.ngot, 2);
    ck_assert_int_eq(a.got[0], 1);
    ck_assert_int_eq(a.got[1], 3);
    ck_assert_int_eq(b.ngot, 4);
    ck_assert_int_eq(b.got[0], 2);
    ck_assert_int_eq(b.got[3], 6);
    ck_assert_uint_eq(ca->unacked, 2);
    /* An ack reopens a's window; more messages go round-robin again. */
    publish(q, 7);
    b.blocked = true;
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot + b.ngot, 6);
    ck_assert_int_eq(wr_unacked_settle(a.u, 1, false, WR_SETTLE_ACK), WR_OK);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 3);
    ck_assert_int_eq(a.got[2], 7);
    /* Cancel with deliveries pending: the consumer outlives its queue slot. */
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    ck_assert_uint_eq(wr_queue_consumer_count(q), 1);
    wr_unacked_free(a.u); /* requeues 3 and 7 */
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    b.blocked = false;
    wr_queue_wake(q);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(b.ngot, 6);
    ck_assert_int_eq(b.got[4], 3);
    ck_assert_int_eq(b.got[5], 7);
    ck_assert_uint_eq(wr_queue_close(q), 0);
    ck_assert_int_eq(b.cancelled, 1);
    wr_consumer_unref(cb);
    wr_unacked_free(b.u);
    wr_queue_unref(q);
}
END_TEST

/* Publishes count as behind only into a queue with consumers and
 * WR_QUEUE_BEHIND messages ready, the one just published included. */
START_TEST(test_behind_needs_consumers_and_a_backlog)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *ca;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= WR_QUEUE_BEHIND + 5; i++)
        publish(q, i);
    ck_assert_uint_eq(s.behind, 0); /* nobody consumes: a backlog, nobody behind */
    for (int i = 1; i <= 10; i++)
        get_and_drop(q, i, false);
    ca = consumer(&a, "a", 0, 1);
    ck_assert_int_eq(wr_queue_consume(q, ca), WR_OK);
    wr_queue_sched_run(&s, 256); /* takes one: WR_QUEUE_BEHIND - 6 ready */
    ck_assert_uint_eq(wr_queue_ready(q), WR_QUEUE_BEHIND - 6);
    for (int i = 0; i < 5; i++)
        publish(q, 0);
    ck_assert_uint_eq(s.behind, 0);
    publish(q, 0);
    publish(q, 0);
    ck_assert_uint_eq(s.behind, 2);
    wr_queue_cancel(ca);
    wr_consumer_unref(ca);
    wr_unacked_free(a.u);
    publish(q, 0);
    ck_assert_uint_eq(s.behind, 2);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_priorities_and_batches)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t hi = {.u = wr_unacked_new()}, lo = {.u = wr_unacked_new()};
    wr_consumer_t *chi, *clo;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    clo = consumer(&lo, "lo", 0, 0);
    chi = consumer(&hi, "hi", 10, 3);
    /* Published before a run with no consumer: a backlog, not arrivals
     * the next run must keep pace with. */
    for (int i = 1; i <= 10; i++)
        publish(q, i);
    ck_assert(!wr_queue_sched_run(&s, 4));
    ck_assert_int_eq(wr_queue_consume(q, clo), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, chi), WR_OK);
    /* A batch of 4: the high-priority consumer first, until its window is
     * full; the low one gets the rest. More remains, so run again. */
    ck_assert(wr_queue_sched_run(&s, 4));
    ck_assert_int_eq(hi.ngot, 3);
    ck_assert_int_eq(lo.ngot, 1);
    ck_assert_int_eq(lo.got[0], 4);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(hi.ngot, 3);
    ck_assert_int_eq(lo.ngot, 7);
    ck_assert_uint_eq(wr_queue_close(q), 0);
    ck_assert_int_eq(hi.cancelled + lo.cancelled, 2);
    wr_consumer_unref(chi);
    wr_consumer_unref(clo);
    wr_unacked_free(hi.u);
    wr_unacked_free(lo.u);
    wr_queue_unref(q);
}
END_TEST

/* A run delivers its batch plus what arrived since the queue's last run, so
 * a queue fed by many connections in one loop pass is not left behind. */
START_TEST(test_dispatch_keeps_pace_with_arrivals)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *c = consumer(&a, "c", 0, 0);

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    for (int i = 1; i <= 6; i++)
        publish(q, i);
    ck_assert(!wr_queue_sched_run(&s, 4)); /* no consumer yet */
    ck_assert_int_eq(wr_queue_consume(q, c), WR_OK);
    for (int i = 7; i <= 9; i++)
        publish(q, i);
    /* 9 ready, 3 of them arrived since the last run: 4 + 3 go. */
    ck_assert(wr_queue_sched_run(&s, 4));
    ck_assert_int_eq(a.ngot, 7);
    ck_assert_int_eq(a.got[6], 7);
    ck_assert(!wr_queue_sched_run(&s, 4));
    ck_assert_int_eq(a.ngot, 9);
    ck_assert_uint_eq(wr_queue_close(q), 0);
    wr_consumer_unref(c);
    wr_unacked_free(a.u);
    wr_queue_unref(q);
}
END_TEST

START_TEST(test_exclusive_and_auto_delete)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *c1 = consumer(&a, "c1", 0, 0);
    wr_consumer_t *c2 = consumer(&a, "c2", 0, 0);

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, true);
    ck_assert(!wr_queue_auto_delete_due(q)); /* never had a consumer */
    c2->exclusive = true;
    ck_assert_int_eq(wr_queue_consume(q, c1), WR_OK);
    ck_assert_int_eq(wr_queue_consume(q, c2), WR_EEXIST);
    wr_queue_cancel(c1);
    ck_assert(wr_queue_auto_delete_due(q));
    ck_assert_int_eq(wr_queue_consume(q, c2), WR_OK);
    ck_assert(!wr_queue_auto_delete_due(q));
    c1->exclusive = false;
    ck_assert_int_eq(wr_queue_consume(q, c1), WR_EEXIST);
    wr_queue_cancel(c2);
    ck_assert(wr_queue_auto_delete_due(q));
    wr_consumer_unref(c1);
    wr_consumer_unref(c2);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);
}
END_TEST

START_TEST(test_no_ack_consumer)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    qf_channel_t a = {.u = wr_unacked_new()};
    wr_consumer_t *c = consumer(&a, "c", 0, 1);

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(&s, false);
    c->no_ack = true; /* the prefetch window does not apply */
    ck_assert_int_eq(wr_queue_consume(q, c), WR_OK);
    for (int i = 1; i <= 5; i++)
        publish(q, i);
    ck_assert(!wr_queue_sched_run(&s, 256));
    ck_assert_int_eq(a.ngot, 5);
    ck_assert_uint_eq(wr_unacked_count(a.u), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    wr_queue_cancel(c);
    wr_consumer_unref(c);
    wr_unacked_free(a.u);
    qf_close_and_unref(q);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("broker-queue");
    TCase *tc = tcase_create("queue");

    tcase_add_test(tc, test_fifo_order);
    tcase_add_test(tc, test_behind_needs_consumers_and_a_backlog);
    tcase_add_test(tc, test_requeue_original_position);
    tcase_add_test(tc, test_purge_counts_ready_only);
    tcase_add_test(tc, test_requeue_to_closed_queue_drops);
    tcase_add_test(tc, test_ack_single_and_multiple);
    tcase_add_test(tc, test_unknown_tags);
    tcase_add_test(tc, test_nack_reject);
    tcase_add_test(tc, test_unacked_index_stress);
    tcase_add_test(tc, test_unacked_recycles_records);
    tcase_add_test(tc, test_round_robin_and_prefetch);
    tcase_add_test(tc, test_priorities_and_batches);
    tcase_add_test(tc, test_dispatch_keeps_pace_with_arrivals);
    tcase_add_test(tc, test_exclusive_and_auto_delete);
    tcase_add_test(tc, test_no_ack_consumer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(queue_suite());
}
