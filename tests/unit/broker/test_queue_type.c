/* SPDX-License-Identifier: MIT */
/*
 * The queue-type contract (broker/queue/queue.h), run over every type in
 * wr_queue_types(): what a second type (quorum) must pass as the classic one
 * does. Only the interface is used: no type's internals, no event loop.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/amqp/unacked.h"
#include "broker/queue/queue.h"
#include "core/status.h"
#include "queue_fakes.h"
#include "tests/unit/runner.h"

static const wr_queue_type_t *type_at(int i)
{
    const wr_queue_type_t *t = wr_queue_types()[i];

    ck_assert_ptr_nonnull(t);
    return t;
}

static int ntypes(void)
{
    int n = 0;

    while (wr_queue_types()[n] != NULL)
        n++;
    return n;
}

static wr_message_t *msg(int n)
{
    char key[16];

    snprintf(key, sizeof(key), "m%d", n);
    return wr_message_new(WR_BYTES_LIT("x"), wr_bytes_str(key), WR_BYTES_LIT(""), 0);
}

static wr_queue_t *new_queue(const wr_queue_type_t *t, wr_queue_sched_t *s, int nmsgs)
{
    wr_queue_opts_t o = {0};
    wr_queue_t *q = wr_queue_new(t, WR_BYTES_LIT("q"), &o, s);

    ck_assert_ptr_nonnull(q);
    for (int i = 1; i <= nmsgs; i++) {
        wr_message_t *m = msg(i);

        ck_assert_int_eq(wr_queue_publish(q, m, NULL), WR_OK);
        wr_message_unref(m);
    }
    return q;
}

/* Gets the head (acknowledged mode), checking its id; the caller keeps *m. */
static void get(wr_queue_t *q, int id, bool redelivered, wr_message_t **m, wr_qtoken_t *t)
{
    bool r;

    ck_assert(wr_queue_get(q, false, m, t, &r));
    ck_assert_int_eq(qf_msg_id(*m), id);
    ck_assert_int_eq(r, redelivered);
}

/* Settles as the contract allows a holder to: the message only when the
 * token asks for it to be kept. */
static void settle(wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    if (!t->keep_msg) {
        wr_message_unref(m);
        m = NULL;
    }
    wr_queue_settle(q, m, t, how);
}

START_TEST(test_type_complete)
{
    const wr_queue_type_t *t = type_at(_i);
    size_t n = 0;

    ck_assert_ptr_nonnull(t->name);
    ck_assert_ptr_eq(wr_queue_type_find(wr_bytes_str(t->name)), t);
    ck_assert(t->validate_args && t->create && t->open_store && t->store_name && t->close_store && t->close &&
              t->destroy && t->publish && t->get && t->settle &&
              (t->purge == NULL) != (t->purge_async == NULL) && t->consume && t->cancel &&
              t->active_consumer && t->foreach_consumer && t->dispatch && t->wake && t->set_limits &&
              t->tick && t->touch && t->info);
    ck_assert_ptr_nonnull(t->equiv_args);
    while (t->equiv_args[n] != NULL)
        n++;
    ck_assert_uint_gt(n, 0);
}
END_TEST

/* Every type validates an empty argument table. */
START_TEST(test_type_accepts_no_args)
{
    wr_amqp_error_t err;

    ck_assert(type_at(_i)->validate_args("/", WR_BYTES_LIT("q"), (wr_bytes_t){NULL, 0}, &err));
}
END_TEST

/* A new queue: the head filled, the figures zero, memory-only. */
START_TEST(test_new_queue_head)
{
    const wr_queue_type_t *t = type_at(_i);
    wr_queue_sched_t s;
    wr_queue_info_t info;
    wr_queue_t *q;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(t, &s, 0);
    ck_assert_ptr_eq(q->type, t);
    ck_assert_str_eq(wr_queue_type_name(q), t->name);
    ck_assert(wr_bytes_eq_str(wr_queue_name(q), "q"));
    ck_assert_int_eq(wr_queue_limits(q)->max_length, -1);
    wr_queue_info(q, &info);
    ck_assert_uint_eq(info.ready, 0);
    ck_assert_ptr_nonnull(info.state);
    ck_assert_ptr_null(wr_queue_store_name(q));
    ck_assert(!wr_queue_closed(q));
    qf_close_and_unref(q);
}
END_TEST

/* Settlement: ack counts, requeue returns the message to the head marked
 * redelivered, discard drops it (no dead-lettering without hooks); the
 * unacked figure follows each. */
START_TEST(test_get_and_settle)
{
    wr_queue_sched_t s;
    wr_queue_t *q;
    wr_message_t *m;
    wr_qtoken_t t;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(type_at(_i), &s, 3);
    ck_assert_uint_eq(wr_queue_stats(q)->publish, 3);
    get(q, 1, false, &m, &t);
    ck_assert_uint_eq(wr_queue_unacked(q), 1);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    settle(q, m, &t, WR_SETTLE_REQUEUE);
    ck_assert_uint_eq(wr_queue_unacked(q), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 3);
    get(q, 1, true, &m, &t);
    settle(q, m, &t, WR_SETTLE_ACK);
    ck_assert_uint_eq(wr_queue_stats(q)->ack, 1);
    get(q, 2, false, &m, &t);
    settle(q, m, &t, WR_SETTLE_DISCARD);
    ck_assert_uint_eq(wr_queue_unacked(q), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    ck_assert_uint_eq(wr_queue_purge(q), 1);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    qf_close_and_unref(q);
}
END_TEST

/* Consumers receive through the scheduler and the type's dispatch; the
 * channel's record settles through the interface and reopens the window. */
START_TEST(test_consume_through_scheduler)
{
    wr_queue_sched_t s;
    qf_channel_t ch = {.u = wr_unacked_new()};
    wr_consumer_t *c = qf_consumer(&ch, "c", 0);
    wr_queue_t *q;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(type_at(_i), &s, 3);
    c->prefetch = 2;
    ck_assert_int_eq(wr_queue_consume(q, c), WR_OK);
    ck_assert_uint_eq(wr_queue_consumer_count(q), 1);
    while (wr_queue_sched_run(&s, 10))
        ;
    ck_assert_int_eq(ch.ngot, 2);
    ck_assert_uint_eq(wr_queue_unacked(q), 2);
    ck_assert_int_eq(wr_unacked_settle(ch.u, 2, true, WR_SETTLE_ACK), WR_OK);
    while (wr_queue_sched_run(&s, 10))
        ;
    ck_assert_int_eq(ch.ngot, 3);
    ck_assert_int_eq(ch.got[2], 3);
    ck_assert_uint_eq(wr_queue_stats(q)->deliver, 3);
    ck_assert_uint_eq(wr_unacked_requeue_all(ch.u), 1);
    wr_queue_cancel(c);
    ck_assert_uint_eq(wr_queue_consumer_count(q), 0);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    wr_consumer_unref(c);
    wr_unacked_free(ch.u);
    qf_close_and_unref(q);
}
END_TEST

/* Deleting a queue cancels its consumers, reports what was ready, and a
 * delivery settled afterwards is dropped, not put back. */
START_TEST(test_close_then_settle)
{
    wr_queue_sched_t s;
    qf_channel_t ch = {.u = wr_unacked_new()};
    wr_consumer_t *c = qf_consumer(&ch, "c", 0);
    wr_queue_t *q;
    wr_message_t *m;
    wr_qtoken_t t;

    wr_queue_sched_init(&s, NULL, NULL);
    q = new_queue(type_at(_i), &s, 2);
    ck_assert_int_eq(wr_queue_consume(q, c), WR_OK);
    get(q, 1, false, &m, &t);
    ck_assert_uint_eq(wr_queue_close(q), 1);
    ck_assert(wr_queue_closed(q));
    ck_assert_int_eq(ch.cancelled, 1);
    ck_assert_ptr_null(c->queue);
    settle(q, m, &t, WR_SETTLE_REQUEUE);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_uint_eq(wr_queue_unacked(q), 0);
    wr_consumer_unref(c);
    wr_unacked_free(ch.u);
    wr_queue_unref(q);
}
END_TEST

static Suite *queue_type_suite(void)
{
    Suite *s = suite_create("broker-queue-type");
    TCase *tc = tcase_create("contract");
    int n = ntypes();

    tcase_add_loop_test(tc, test_type_complete, 0, n);
    tcase_add_loop_test(tc, test_type_accepts_no_args, 0, n);
    tcase_add_loop_test(tc, test_new_queue_head, 0, n);
    tcase_add_loop_test(tc, test_get_and_settle, 0, n);
    tcase_add_loop_test(tc, test_consume_through_scheduler, 0, n);
    tcase_add_loop_test(tc, test_close_then_settle, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(queue_type_suite());
}
