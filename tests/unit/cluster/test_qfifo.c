/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the quorum-queue state machine (cluster/qfifo*.c): each
 * behaviour with its exact effects, the codec's malformed inputs, snapshots,
 * the memory per queued message, and a seeded property test (three replicas,
 * one rebuilt from snapshots, checked against a model of the queue).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/qfifo.h"
#include "core/status.h"
#include "tests/unit/runner.h"

/* One replica driven through the codec: every command is encoded, decoded, then applied. */
typedef struct {
    wr_qfifo_t *q;
    wr_qfifo_effects_t fx;
    uint64_t index, now, n;
} h_t;

static void h_init(h_t *h)
{
    *h = (h_t){wr_qfifo_new(0), WR_QFIFO_EFFECTS_INIT, 0, 1000, 0};
    ck_assert_ptr_nonnull(h->q);
}

static void h_done(h_t *h)
{
    wr_qfifo_free(h->q);
    wr_qfifo_effects_free(&h->fx);
}

static int h_apply(h_t *h, const wr_qfifo_cmd_t *cmd)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_qfifo_cmd_t got;
    uint64_t t;
    int rc;

    ck_assert(wr_qfifo_cmd_put(&b, h->now, cmd));
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_OK);
    ck_assert_uint_eq(t, h->now);
    wr_qfifo_effects_reset(&h->fx);
    rc = wr_qfifo_apply(h->q, ++h->index, t, &got, &h->fx, &h->n);
    wr_buf_free(&b);
    return rc;
}

static int enq(h_t *h, uint64_t pub, uint64_t seq, uint8_t prio, uint32_t ttl)
{
    wr_qfifo_cmd_t c = {
        .op = WR_QF_ENQUEUE, .owner = pub, .seq = seq, .size = 100, .priority = prio, .ttl_ms = ttl};
    return h_apply(h, &c);
}

static int enq1(h_t *h)
{
    return enq(h, 0, 0, 0, WR_QF_NO_TTL);
}

static int checkout(h_t *h, uint64_t owner, const char *tag, uint32_t prefetch, int32_t prio)
{
    wr_qfifo_cmd_t c = {
        .op = WR_QF_CHECKOUT, .owner = owner, .tag = wr_bytes_str(tag), .prefetch = prefetch, .cprio = prio};
    return h_apply(h, &c);
}

/* SETTLE, RETURN, DISCARD or DLX_SETTLE of one id. */
static int settle(h_t *h, wr_qf_op_t op, uint64_t owner, const char *tag, uint64_t id)
{
    uint8_t raw[8];
    wr_qfifo_cmd_t c = {.op = op, .owner = owner, .tag = wr_bytes_str(tag), .ids = {raw, 8}};

    wr_qfifo_ids_pack(raw, &id, 1);
    return h_apply(h, &c);
}

static int simple(h_t *h, wr_qf_op_t op, uint64_t owner, const char *tag)
{
    wr_qfifo_cmd_t c = {.op = op, .owner = owner, .tag = wr_bytes_str(tag)};
    return h_apply(h, &c);
}

static int policy(h_t *h, const wr_qfifo_policy_t *p)
{
    wr_qfifo_cmd_t c = {.op = WR_QF_POLICY, .policy = *p};
    return h_apply(h, &c);
}

static size_t count_kind(const h_t *h, wr_qfe_kind_t kind)
{
    size_t n = 0;

    for (size_t i = 0; i < h->fx.n; i++)
        n += h->fx.v[i].kind == kind;
    return n;
}

/* The k-th effect of kind (it must exist). */
static const wr_qfifo_effect_t *nth(const h_t *h, wr_qfe_kind_t kind, size_t k)
{
    for (size_t i = 0; i < h->fx.n; i++)
        if (h->fx.v[i].kind == kind && k-- == 0)
            return &h->fx.v[i];
    ck_abort_msg("no effect %d", kind);
    return NULL;
}

static bool tag_is(const h_t *h, const wr_qfifo_effect_t *f, const char *tag)
{
    return wr_bytes_eq_str(wr_qfifo_effect_tag(&h->fx, f), tag);
}

static wr_qfifo_info_t info(const h_t *h)
{
    wr_qfifo_info_t i;

    wr_qfifo_info(h->q, &i);
    return i;
}

START_TEST(enqueue_checkout_settle)
{
    h_t h;

    h_init(&h);
    ck_assert_int_eq(enq(&h, 9, 1, 0, WR_QF_NO_TTL), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_CONFIRM), 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_CONFIRM, 0)->owner, 9);
    ck_assert_uint_eq(nth(&h, WR_QFE_CONFIRM, 0)->seq, 1);
    ck_assert_int_eq(enq1(&h), WR_OK);
    ck_assert_int_eq(enq1(&h), WR_OK);
    ck_assert_int_eq(checkout(&h, 7, "ctag", 2, 0), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 2);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "ctag"));
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->id, 0);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 1)->index, 2);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 1)->redelivered, 0);
    ck_assert_uint_eq(info(&h).checked_out, 2);
    ck_assert_int_eq(settle(&h, WR_QF_SETTLE, 7, "ctag", 0), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 3);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->id, 2);
    ck_assert_uint_eq(wr_qfifo_min_live(h.q), 2);
    ck_assert_int_eq(settle(&h, WR_QF_SETTLE, 7, "nope", 1), WR_ENOENT);
    h_done(&h);
}
END_TEST

/* What a driver asks before a SETTLE applies, to drop the bodies it takes out. */
START_TEST(held_index_names_a_held_delivery)
{
    h_t h;

    h_init(&h);
    ck_assert_int_eq(enq1(&h), WR_OK);
    ck_assert_int_eq(enq1(&h), WR_OK);
    ck_assert_int_eq(checkout(&h, 7, "ctag", 2, 0), WR_OK);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("ctag"), 0), 1);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("ctag"), 1), 2);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("ctag"), 2), 0);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("other"), 0), 0);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 8, wr_bytes_str("ctag"), 0), 0);
    ck_assert_int_eq(settle(&h, WR_QF_SETTLE, 7, "ctag", 0), WR_OK);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("ctag"), 0), 0);
    ck_assert_uint_eq(wr_qfifo_held_index(h.q, 7, wr_bytes_str("ctag"), 1), 2);
    h_done(&h);
}
END_TEST

START_TEST(requeue_counts_delivery)
{
    h_t h;

    h_init(&h);
    enq1(&h);
    checkout(&h, 7, "c", 1, 0);
    ck_assert_int_eq(settle(&h, WR_QF_RETURN, 7, "c", 0), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->count, 1); /* x-delivery-count 1 after one requeue */
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->redelivered, 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->id, 1);
    h_done(&h);
}
END_TEST

/* Returns until dead-lettered; the number of deliveries seen. */
static unsigned return_until_dead(h_t *h, const wr_qfifo_effect_t **dead)
{
    unsigned deliveries = 1;

    for (uint64_t id = 0;; id++) {
        settle(h, WR_QF_RETURN, 7, "c", id);
        if (count_kind(h, WR_QFE_DEADLETTER) == 1) {
            *dead = nth(h, WR_QFE_DEADLETTER, 0);
            return deliveries;
        }
        ck_assert_uint_eq(count_kind(h, WR_QFE_DELIVER), 1);
        deliveries++;
    }
}

START_TEST(delivery_limit_default_20)
{
    wr_qfifo_policy_t p;
    const wr_qfifo_effect_t *dead;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.dlx = WR_QF_DLX_AT_MOST_ONCE;
    policy(&h, &p);
    enq1(&h);
    checkout(&h, 7, "c", 1, 0);
    ck_assert_uint_eq(return_until_dead(&h, &dead), 21); /* the first delivery and 20 redeliveries */
    ck_assert_uint_eq(dead->reason, WR_QF_DL_DELIVERY_LIMIT);
    ck_assert_uint_eq(dead->dlx, WR_QF_DLX_AT_MOST_ONCE);
    ck_assert_uint_eq(dead->index, 2);
    ck_assert_uint_eq(dead->count, 21);
    ck_assert_uint_eq(info(&h).ready + info(&h).checked_out + info(&h).dlx_pending, 0);
    h_done(&h);
}
END_TEST

/* What wr_qfifo_dlx_foreach lists, as "id:index:reason " */
static void dlx_note(void *ud, uint64_t id, uint64_t index, wr_qf_reason_t why)
{
    char *s = ud;

    snprintf(s + strlen(s), 64, "%llu:%llu:%d ", (unsigned long long)id, (unsigned long long)index, (int)why);
}

START_TEST(at_least_once_waits_for_dlx_settled)
{
    wr_qfifo_policy_t p;
    wr_buf_t snap = WR_BUF_INIT;
    wr_qfifo_t *back;
    char seen[128] = "", again[128] = "";
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.dlx = WR_QF_DLX_AT_LEAST_ONCE;
    p.overflow = WR_QF_REJECT_PUBLISH;
    p.delivery_limit = 0;
    policy(&h, &p);
    enq1(&h);
    checkout(&h, 7, "c", 1, 0);
    ck_assert_int_eq(settle(&h, WR_QF_DISCARD, 7, "c", 0), WR_OK);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->reason, WR_QF_DL_REJECTED);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->dlx, WR_QF_DLX_AT_LEAST_ONCE);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->id, 1);
    ck_assert_uint_eq(info(&h).dlx_pending, 1);
    ck_assert_uint_eq(wr_qfifo_min_live(h.q), 2); /* the log entry stays until the target confirms */
    /* A second one, past the delivery limit (0): dead letter 2, the message at index 5. */
    enq1(&h);
    ck_assert_int_eq(settle(&h, WR_QF_RETURN, 7, "c", 1), WR_OK);
    /* A new leader lists them to publish again, reasons included, also from a snapshot. */
    wr_qfifo_dlx_foreach(h.q, dlx_note, seen);
    ck_assert_str_eq(seen, "1:2:0 2:5:3 ");
    ck_assert(wr_qfifo_snapshot_put(h.q, &snap));
    ck_assert_int_eq(wr_qfifo_snapshot_load(snap.data, snap.len, &back), WR_OK);
    wr_qfifo_dlx_foreach(back, dlx_note, again);
    ck_assert_str_eq(again, seen);
    wr_qfifo_free(back);
    wr_buf_free(&snap);
    ck_assert_int_eq(settle(&h, WR_QF_DLX_SETTLE, 0, "", 1), WR_OK);
    ck_assert_int_eq(settle(&h, WR_QF_DLX_SETTLE, 0, "", 2), WR_OK);
    ck_assert_uint_eq(info(&h).dlx_pending, 0);
    ck_assert_uint_eq(wr_qfifo_min_live(h.q), 0);
    /* Without reject-publish, at-least-once acts as at-most-once (as in RabbitMQ). */
    p.overflow = WR_QF_DROP_HEAD;
    policy(&h, &p);
    enq1(&h);
    settle(&h, WR_QF_DISCARD, 7, "c", 2);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->dlx, WR_QF_DLX_AT_MOST_ONCE);
    ck_assert_uint_eq(info(&h).dlx_pending, 0);
    h_done(&h);
}
END_TEST

START_TEST(drop_head_or_reject_publish)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.max_length = 2;
    policy(&h, &p);
    enq(&h, 5, 1, 0, WR_QF_NO_TTL);
    enq(&h, 5, 2, 0, WR_QF_NO_TTL);
    ck_assert_int_eq(enq(&h, 5, 3, 0, WR_QF_NO_TTL), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_CONFIRM), 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->reason, WR_QF_DL_MAXLEN);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->index, 2); /* the head, the oldest */
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->dlx, WR_QF_DLX_NONE);
    ck_assert_uint_eq(info(&h).ready, 2);
    p.overflow = WR_QF_REJECT_PUBLISH;
    policy(&h, &p);
    ck_assert_int_eq(enq(&h, 5, 4, 0, WR_QF_NO_TTL), WR_EFULL);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_CONFIRM), 0);
    ck_assert_uint_eq(nth(&h, WR_QFE_REJECT, 0)->seq, 4);
    ck_assert_uint_eq(nth(&h, WR_QFE_REJECT, 0)->owner, 5);
    ck_assert_uint_eq(info(&h).ready, 2);
    p.max_length = WR_QF_NONE;
    p.max_bytes = 250; /* two 100-byte messages fit, a third does not */
    policy(&h, &p);
    ck_assert_int_eq(enq(&h, 5, 5, 0, WR_QF_NO_TTL), WR_EFULL); /* 4 was refused, yet used: 5 is next */
    p.overflow = WR_QF_DROP_HEAD;
    p.max_bytes = 100;
    policy(&h, &p); /* a tighter limit drops at once */
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 1);
    ck_assert_uint_eq(info(&h).ready, 1);
    h_done(&h);
}
END_TEST

START_TEST(ttl_by_leader_time)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.msg_ttl_ms = 1000;
    policy(&h, &p);
    h.now = 5000;
    enq1(&h);             /* expires after 6000 */
    enq(&h, 0, 0, 0, 10); /* its own TTL is shorter: after 5010 */
    h.now = 6000;
    ck_assert_int_eq(simple(&h, WR_QF_TICK, 0, ""), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 0); /* the second waits behind the head */
    h.now = 6001;
    simple(&h, WR_QF_TICK, 0, "");
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 2);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->reason, WR_QF_DL_EXPIRED);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->index, 2);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 1)->index, 3);
    /* A leader with a slower clock cannot turn time back. */
    enq1(&h);
    h.now = 10;
    simple(&h, WR_QF_TICK, 0, "");
    h.now = 7001;
    simple(&h, WR_QF_TICK, 0, "");
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 0);
    h.now = 7002;
    simple(&h, WR_QF_TICK, 0, "");
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 1);
    h_done(&h);
}
END_TEST

/* x-message-ttl 0: delivered if a consumer is waiting, expired otherwise (as RabbitMQ). */
START_TEST(ttl_zero_reaches_a_waiting_consumer)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.msg_ttl_ms = 0;
    policy(&h, &p);
    checkout(&h, 1, "c", 1, 0);
    enq1(&h);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 1);
    enq1(&h);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 0);
    h.now++;
    simple(&h, WR_QF_TICK, 0, "");
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->reason, WR_QF_DL_EXPIRED);
    ck_assert_uint_eq(info(&h).ready, 0);
    h_done(&h);
}
END_TEST

START_TEST(single_active_consumer)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.single_active = 1;
    policy(&h, &p);
    checkout(&h, 1, "a", 0, 0);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_ACTIVE, 0), "a"));
    checkout(&h, 2, "b", 0, 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_ACTIVE), 0);
    enq1(&h);
    enq1(&h);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "a"));
    simple(&h, WR_QF_CANCEL, 1, "a"); /* a keeps its two unacked; b takes over */
    ck_assert(tag_is(&h, nth(&h, WR_QFE_ACTIVE, 0), "b"));
    ck_assert_uint_eq(nth(&h, WR_QFE_ACTIVE, 0)->owner, 2);
    enq1(&h);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "b"));
    ck_assert_uint_eq(info(&h).checked_out, 3);
    settle(&h, WR_QF_SETTLE, 1, "a", 0);
    settle(&h, WR_QF_SETTLE, 1, "a", 1);
    ck_assert_uint_eq(info(&h).consumers, 1); /* the cancelled one left with its last ack */
    h_done(&h);
}
END_TEST

/* A channel with the active consumer and a waiting one goes: the next channel's consumer is the one
 * activated. */
START_TEST(single_active_down_skips_the_same_channel)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.single_active = 1;
    policy(&h, &p);
    checkout(&h, 1, "a", 0, 0);
    checkout(&h, 1, "b", 0, 0);
    checkout(&h, 2, "c", 0, 0);
    ck_assert_int_eq(simple(&h, WR_QF_DOWN, 1, ""), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_ACTIVE), 1);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_ACTIVE, 0), "c"));
    h_done(&h);
}
END_TEST

/* Limits are enforced after deliveries (RabbitMQ's evaluate_limit): a waiting consumer gets the message. */
START_TEST(limit_after_delivery)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.max_length = 0;
    policy(&h, &p);
    checkout(&h, 1, "c", 1, 0);
    enq1(&h);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 1);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 0);
    enq1(&h);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->reason, WR_QF_DL_MAXLEN);
    ck_assert_uint_eq(nth(&h, WR_QFE_DEADLETTER, 0)->index, 4);
    h_done(&h);
}
END_TEST

START_TEST(dequeue_get)
{
    wr_qfifo_cmd_t get = {.op = WR_QF_DEQUEUE, .owner = 4, .tag = WR_BYTES_LIT("get"), .no_ack = 1};
    h_t h;

    h_init(&h);
    enq1(&h);
    enq1(&h);
    enq1(&h);
    ck_assert_int_eq(h_apply(&h, &get), WR_OK);
    ck_assert_uint_eq(h.n, 1);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "get"));
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 1);
    ck_assert_uint_eq(info(&h).consumers, 0); /* no-ack: settled as delivered */
    get.no_ack = 0;
    h_apply(&h, &get);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 2);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->id, 0);
    ck_assert_uint_eq(info(&h).checked_out, 1);
    enq1(&h);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0); /* a getter is no consumer */
    settle(&h, WR_QF_RETURN, 4, "get", 0);
    ck_assert_uint_eq(info(&h).consumers, 0);
    ck_assert_uint_eq(info(&h).ready, 3);
    h_apply(&h, &get);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 2); /* returned first, counted */
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->count, 1);
    simple(&h, WR_QF_PURGE, 0, "");
    ck_assert_int_eq(h_apply(&h, &get), WR_OK);
    ck_assert_uint_eq(h.n, 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0);
    h_done(&h);
}
END_TEST

static int expires(h_t *h, uint64_t ms)
{
    wr_qfifo_cmd_t c = {.op = WR_QF_EXPIRES, .expires_ms = ms};
    return h_apply(h, &c);
}

/* Whether a TICK at leader time now finds the queue past its x-expires. */
static bool expired_at(h_t *h, uint64_t now)
{
    h->now = now;
    ck_assert_int_eq(simple(h, WR_QF_TICK, 0, ""), WR_OK);
    return count_kind(h, WR_QFE_EXPIRED) == 1;
}

/* x-expires by the entries' (leader's) time: from the first entry, a
 * basic.get or the last consumer leaving; a consumer keeps the queue; an
 * EXPIRES change, a CHECKOUT's re-subscription or a snapshot does not
 * reset the clock. */
START_TEST(expires_when_unused)
{
    wr_buf_t snap = WR_BUF_INIT;
    wr_qfifo_t *copy;
    h_t h;

    h_init(&h); /* the first entry at 1000 */
    ck_assert_int_eq(expires(&h, 500), WR_OK);
    ck_assert(!expired_at(&h, 1500));
    h.now = 1400;
    ck_assert_int_eq(expires(&h, 400), WR_OK); /* a policy change: no use */
    ck_assert(expired_at(&h, 1401));
    ck_assert(expired_at(&h, 1200)); /* an earlier leader clock does not take time back */
    ck_assert_int_eq(checkout(&h, 1, "c", 0, 0), WR_OK);
    ck_assert(!expired_at(&h, 5000));
    ck_assert_int_eq(simple(&h, WR_QF_CANCEL, 1, "c"), WR_OK); /* the last consumer goes at 5000 */
    ck_assert(!expired_at(&h, 5400));
    ck_assert(expired_at(&h, 5401));
    h.now = 6000;
    ck_assert_int_eq(simple(&h, WR_QF_DEQUEUE, 2, "g"), WR_OK); /* get-empty is a use */
    ck_assert_uint_eq(info(&h).last_active, 6000);
    ck_assert(!expired_at(&h, 6400));
    ck_assert(wr_qfifo_snapshot_put(h.q, &snap));
    ck_assert_int_eq(wr_qfifo_snapshot_load(snap.data, snap.len, &copy), WR_OK);
    wr_qfifo_free(h.q);
    h.q = copy;
    ck_assert_uint_eq(info(&h).expires_ms, 400);
    ck_assert(expired_at(&h, 6401));
    ck_assert_int_eq(expires(&h, 0), WR_OK);
    ck_assert(!expired_at(&h, 100000));
    wr_buf_free(&snap);
    h_done(&h);
}
END_TEST

START_TEST(consumer_priorities)
{
    h_t h;

    h_init(&h);
    checkout(&h, 1, "low", 1, 0);
    checkout(&h, 2, "high", 1, 10);
    enq1(&h);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "high"));
    enq1(&h);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "low")); /* high has no credit left */
    enq1(&h);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0);
    settle(&h, WR_QF_SETTLE, 1, "low", 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 1);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_DELIVER, 0), "low"));
    h_done(&h);
}
END_TEST

START_TEST(message_priorities)
{
    uint64_t want[] = {3, 4, 1, 5, 2};
    h_t h;

    h_init(&h);
    enq(&h, 0, 0, 0, WR_QF_NO_TTL);
    enq(&h, 0, 0, 4, WR_QF_NO_TTL);
    enq(&h, 0, 0, 5, WR_QF_NO_TTL);
    enq(&h, 0, 0, 9, WR_QF_NO_TTL);
    enq(&h, 0, 0, 255, WR_QF_NO_TTL);
    checkout(&h, 1, "c", 0, 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 5);
    for (size_t i = 0; i < 5; i++) /* high before normal, two to one */
        ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, i)->index, want[i]);
    h_done(&h);
}
END_TEST

START_TEST(purge_drops_ready_only)
{
    h_t h;

    h_init(&h);
    enq1(&h);
    enq1(&h);
    enq1(&h);
    checkout(&h, 1, "c", 1, 0);
    ck_assert_int_eq(simple(&h, WR_QF_PURGE, 0, ""), WR_OK);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_uint_eq(info(&h).ready, 0);
    ck_assert_uint_eq(info(&h).checked_out, 1);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DEADLETTER), 0);
    h_done(&h);
}
END_TEST

START_TEST(down_returns_in_order)
{
    h_t h;

    h_init(&h);
    for (int i = 0; i < 4; i++)
        enq1(&h);
    checkout(&h, 7, "x", 0, 0);
    checkout(&h, 7, "y", 0, 0);
    settle(&h, WR_QF_SETTLE, 7, "x", 1);
    ck_assert_int_eq(simple(&h, WR_QF_DOWN, 7, ""), WR_OK);
    ck_assert_uint_eq(info(&h).ready, 3);
    ck_assert_uint_eq(info(&h).consumers, 0);
    checkout(&h, 8, "z", 0, 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 3);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->index, 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 1)->index, 3);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 2)->index, 4);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->redelivered, 1);
    ck_assert_uint_eq(nth(&h, WR_QFE_DELIVER, 0)->count, 0); /* not a failed delivery */
    h_done(&h);
}
END_TEST

START_TEST(dedup_applies_once)
{
    h_t h;

    h_init(&h);
    ck_assert_int_eq(enq(&h, 5, 1, 0, WR_QF_NO_TTL), WR_OK);
    ck_assert_int_eq(enq(&h, 5, 1, 0, WR_QF_NO_TTL), WR_EEXIST);
    ck_assert_uint_eq(h.fx.n, 0);
    ck_assert_int_eq(enq(&h, 5, 3, 0, WR_QF_NO_TTL), WR_AGAIN); /* 2 is missing: not enqueued */
    ck_assert_uint_eq(h.fx.n, 0);
    ck_assert_uint_eq(wr_qfifo_publisher_seq(h.q, 5), 1);
    ck_assert_int_eq(enq(&h, 5, 2, 0, WR_QF_NO_TTL), WR_OK);
    ck_assert_int_eq(enq(&h, 5, 3, 0, WR_QF_NO_TTL), WR_OK); /* sent again after 2: in order */
    ck_assert_int_eq(enq(&h, 5, 2, 0, WR_QF_NO_TTL), WR_EEXIST);
    ck_assert_int_eq(enq(&h, 6, 2, 0, WR_QF_NO_TTL), WR_AGAIN); /* a new publisher starts at 1 */
    ck_assert_int_eq(enq(&h, 6, 1, 0, WR_QF_NO_TTL), WR_OK);
    ck_assert_uint_eq(info(&h).ready, 4);
    ck_assert_uint_eq(wr_qfifo_publisher_seq(h.q, 5), 3);
    simple(&h, WR_QF_DOWN, 5, "");
    ck_assert_uint_eq(wr_qfifo_publisher_seq(h.q, 5), 0);
    h_done(&h);
}
END_TEST

START_TEST(consumer_timeout_cancels_only_the_stuck)
{
    wr_qfifo_policy_t p;
    h_t h;

    h_init(&h);
    wr_qfifo_policy_default(&p);
    p.consumer_timeout_ms = 1000;
    policy(&h, &p);
    checkout(&h, 1, "stuck", 1, 0);
    checkout(&h, 2, "fine", 1, 0);
    h.now = 2000;
    enq1(&h); /* to stuck */
    enq1(&h); /* to fine */
    h.now = 2900;
    enq1(&h);
    settle(&h, WR_QF_SETTLE, 2, "fine", 0); /* fine takes the third at 2900 */
    h.now = 3000;
    simple(&h, WR_QF_TICK, 0, "");
    ck_assert_uint_eq(count_kind(&h, WR_QFE_CANCEL), 1);
    ck_assert(tag_is(&h, nth(&h, WR_QFE_CANCEL, 0), "stuck"));
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0); /* fine is full */
    ck_assert_uint_eq(info(&h).ready, 1);
    ck_assert_uint_eq(info(&h).consumers, 1);
    h_done(&h);
}
END_TEST

START_TEST(cancel_keeps_unacked)
{
    h_t h;

    h_init(&h);
    enq1(&h);
    enq1(&h);
    checkout(&h, 1, "c", 1, 0);
    ck_assert_int_eq(simple(&h, WR_QF_CANCEL, 1, "c"), WR_OK);
    ck_assert_uint_eq(info(&h).checked_out, 1);
    settle(&h, WR_QF_SETTLE, 1, "c", 0);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 0);
    ck_assert_uint_eq(info(&h).consumers, 0);
    ck_assert_int_eq(simple(&h, WR_QF_CANCEL, 1, "c"), WR_ENOENT);
    ck_assert_int_eq(simple(&h, WR_QF_CREDIT, 1, "c"), WR_ENOENT);
    h_done(&h);
}
END_TEST

START_TEST(credit_change)
{
    h_t h;
    wr_qfifo_cmd_t c = {.op = WR_QF_CREDIT, .owner = 1, .tag = WR_BYTES_LIT("c"), .prefetch = 3};

    h_init(&h);
    for (int i = 0; i < 5; i++)
        enq1(&h);
    checkout(&h, 1, "c", 1, 0);
    ck_assert_int_eq(h_apply(&h, &c), WR_OK);
    ck_assert_uint_eq(count_kind(&h, WR_QFE_DELIVER), 2);
    ck_assert_uint_eq(info(&h).checked_out, 3);
    h_done(&h);
}
END_TEST

static void count_live(void *ud, uint64_t index)
{
    (void)index;
    ++*(size_t *)ud;
}

/* One unacked message does not hold the snapshot point back: the log compacts around it. */
START_TEST(old_unacked_does_not_pin_the_log)
{
    uint64_t last_point = 0, min = 0;
    size_t live = 0;
    h_t h;

    h_init(&h);
    checkout(&h, 1, "slow", 1, 0);
    enq1(&h); /* index 2, never acked */
    checkout(&h, 2, "fast", 1, 0);
    for (uint64_t id = 0; id < 10000; id++) {
        enq1(&h);
        settle(&h, WR_QF_SETTLE, 2, "fast", id);
        for (size_t i = 0; i < h.fx.n; i++) {
            if (h.fx.v[i].kind == WR_QFE_RELEASE) {
                last_point = h.fx.v[i].index;
                min = h.fx.v[i].id;
            }
        }
    }
    ck_assert_uint_ge(last_point, 16384);
    ck_assert_uint_eq(min, 2);
    wr_qfifo_live_foreach(h.q, count_live, &live);
    ck_assert_uint_eq(live, 1);
    h_done(&h);
}
END_TEST

/* A state with something in every part, for the snapshot tests. */
static void busy_state(h_t *h)
{
    wr_qfifo_policy_t p;

    wr_qfifo_policy_default(&p);
    p.dlx = WR_QF_DLX_AT_LEAST_ONCE;
    p.overflow = WR_QF_REJECT_PUBLISH;
    p.msg_ttl_ms = 100000;
    policy(h, &p);
    for (uint64_t i = 1; i <= 6; i++)
        enq(h, 3, i, (uint8_t)(i * 2), WR_QF_NO_TTL);
    checkout(h, 1, "a", 2, 0);
    checkout(h, 2, "b", 2, 5);
    settle(h, WR_QF_RETURN, 2, "b", 0);
    settle(h, WR_QF_DISCARD, 1, "a", 0);
    settle(h, WR_QF_SETTLE, 1, "a", 1);
    enq(h, 4, 1, 9, 50);
}

START_TEST(snapshot_round_trip)
{
    wr_buf_t a = WR_BUF_INIT, b = WR_BUF_INIT;
    wr_qfifo_t *copy;
    h_t h;

    h_init(&h);
    busy_state(&h);
    ck_assert(wr_qfifo_snapshot_put(h.q, &a));
    ck_assert_int_eq(wr_qfifo_snapshot_load(a.data, a.len, &copy), WR_OK);
    ck_assert(wr_qfifo_snapshot_put(copy, &b));
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.data, b.data, a.len);
    ck_assert_uint_eq(wr_qfifo_min_live(copy), wr_qfifo_min_live(h.q));
    for (size_t cut = 0; cut < a.len; cut++) {
        wr_qfifo_t *bad = NULL;
        ck_assert_int_eq(wr_qfifo_snapshot_load(a.data, cut, &bad), WR_ESYNTAX);
        ck_assert_ptr_null(bad);
    }
    wr_qfifo_free(copy);
    wr_buf_put_u8(&a, 0);
    ck_assert_int_eq(wr_qfifo_snapshot_load(a.data, a.len, &copy), WR_ESYNTAX);
    ck_assert_ptr_null(copy);
    wr_buf_free(&a);
    wr_buf_free(&b);
    h_done(&h);
}
END_TEST

/* A version 1 snapshot (before x-expires: no expiry and last-use fields, which a version 2 header ends with
 * at bytes 81..97) still loads, as a queue without expiry last used at the snapshot's time; version 3 does
 * not. */
START_TEST(snapshot_version_1_still_loads)
{
    wr_buf_t a = WR_BUF_INIT, v1 = WR_BUF_INIT, b = WR_BUF_INIT;
    wr_qfifo_t *copy = NULL;
    h_t h;

    h_init(&h);
    busy_state(&h);
    ck_assert(wr_qfifo_snapshot_put(h.q, &a));
    wr_buf_put(&v1, a.data, 81);
    wr_buf_put(&v1, a.data + 97, a.len - 97);
    v1.data[4] = 1;
    ck_assert_int_eq(wr_qfifo_snapshot_load(v1.data, v1.len, &copy), WR_OK);
    ck_assert(wr_qfifo_snapshot_put(copy, &b));
    ck_assert_uint_eq(b.len, a.len);
    ck_assert_mem_eq(b.data, a.data, 89); /* expires 0, as busy_state has none */
    ck_assert_mem_eq(b.data + 97, a.data + 97, a.len - 97);
    wr_qfifo_free(copy);
    a.data[4] = 3;
    ck_assert_int_eq(wr_qfifo_snapshot_load(a.data, a.len, &copy), WR_ESYNTAX);
    wr_buf_free(&a);
    wr_buf_free(&v1);
    wr_buf_free(&b);
    h_done(&h);
}
END_TEST

START_TEST(codec_rejects_malformed)
{
    wr_qfifo_cmd_t c = {.op = WR_QF_SETTLE, .owner = 1, .tag = WR_BYTES_LIT("t")}, got;
    uint8_t raw[16];
    uint64_t ids[2] = {5, 6}, t;
    wr_buf_t b = WR_BUF_INIT;

    wr_qfifo_ids_pack(raw, ids, 2);
    c.ids = (wr_bytes_t){raw, 16};
    ck_assert(wr_qfifo_cmd_put(&b, 77, &c));
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_OK);
    ck_assert_uint_eq(wr_qfifo_cmd_nids(&got), 2);
    ck_assert_uint_eq(wr_qfifo_cmd_id(&got, 1), 6);
    for (size_t cut = 0; cut < b.len; cut++)
        ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, cut, &t, &got), WR_ESYNTAX);
    wr_buf_put_u8(&b, 0);
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_ESYNTAX);
    b.data[0] = 0;
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_EUNKNOWN);
    b.data[0] = WR_QF_EXPIRES + 1;
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_EUNKNOWN);
    wr_buf_reset(&b);
    c = (wr_qfifo_cmd_t){.op = WR_QF_POLICY};
    wr_qfifo_policy_default(&c.policy);
    c.policy.dlx = 3; /* no such strategy */
    ck_assert(wr_qfifo_cmd_put(&b, 0, &c));
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_ESYNTAX);
    wr_buf_reset(&b);
    c = (wr_qfifo_cmd_t){.op = WR_QF_DLX_SETTLE};
    ck_assert(wr_qfifo_cmd_put(&b, 0, &c));
    b.data[b.len - 1] = 1; /* one id announced, none present */
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

/* The leader rewrites only the time of an encoded command (raftd's stamp). */
START_TEST(codec_stamp_rewrites_the_time)
{
    wr_qfifo_cmd_t c = {.op = WR_QF_CHECKOUT, .owner = 9, .tag = WR_BYTES_LIT("ct"), .prefetch = 3}, got;
    wr_buf_t b = WR_BUF_INIT;
    uint64_t t;

    ck_assert(wr_qfifo_cmd_put(&b, 1000, &c));
    ck_assert(wr_qfifo_cmd_stamp(b.data, b.len, 0x0102030405060708ull));
    ck_assert_int_eq(wr_qfifo_cmd_decode(b.data, b.len, &t, &got), WR_OK);
    ck_assert_uint_eq(t, 0x0102030405060708ull);
    ck_assert_uint_eq(got.owner, 9);
    ck_assert_uint_eq(got.prefetch, 3);
    ck_assert(wr_bytes_eq(got.tag, c.tag));
    ck_assert(!wr_qfifo_cmd_stamp(b.data, 8, 5));
    wr_buf_free(&b);
}
END_TEST

START_TEST(memory_per_message)
{
    enum { N = 1000000 };
    wr_qfifo_effects_t fx = WR_QFIFO_EFFECTS_INIT;
    wr_qfifo_t *q = wr_qfifo_new(0);
    wr_qfifo_cmd_t c = {.op = WR_QF_ENQUEUE, .size = 1024, .ttl_ms = WR_QF_NO_TTL};
    size_t empty = wr_qfifo_mem(q);
    double per;

    for (uint64_t i = 1; i <= N; i++) {
        c.priority = (uint8_t)(i % 10);
        wr_qfifo_effects_reset(&fx);
        ck_assert_int_eq(wr_qfifo_apply(q, i, i, &c, &fx, NULL), WR_OK);
    }
    per = (double)(wr_qfifo_mem(q) - empty) / N;
    printf("qfifo: %.1f bytes of state per queued message (%d messages)\n", per, N);
    ck_assert(per <= 64.0);
    wr_qfifo_free(q);
    wr_qfifo_effects_free(&fx);
}
END_TEST

/* ---- the property test: three replicas and a model ---- */

enum { STEPS = 1500, SEEDS = 40, SLOTS = 10, DRAIN = 9, MAXIDX = STEPS + 16 };
enum { SEEN_GETS = 15 }; /* where seen[] counts basic.get deliveries */
enum { M_NONE, M_READY, M_OUT, M_DISCARDING, M_DLX, M_DONE };

typedef struct {
    uint8_t st;
    bool delivered;
    uint16_t count;
} mmsg_t;

typedef struct {
    bool live, cancelled;
    uint32_t prefetch;
    size_t nout;
    uint64_t ids[MAXIDX], idx[MAXIDX]; /* outstanding: delivery id -> log index */
    int64_t last_id;
} mslot_t;

typedef struct {
    uint64_t rng;
    mmsg_t msg[MAXIDX];
    mslot_t slot[SLOTS];
    uint64_t pub_last[4], pub_next[4];
    uint64_t dlx[MAXIDX], dlx_idx[MAXIDX]; /* at-least-once dead letters: id -> log index */
    size_t ndlx;
    uint64_t *seen; /* effects seen per kind, over every seed; reason r of DEADLETTER at 8 + r */
} model_t;

/* Two consumers per channel 1..3, a basic.get tag per channel, and the drain's consumer. */
static const char *const slot_tags[SLOTS] = {"a", "b", "a", "b", "a", "b", "g", "g", "g", "d"};

static uint64_t slot_owner(size_t s)
{
    return s == DRAIN ? 99 : s < 6 ? 1 + s / 2 : s - 5;
}

static uint64_t rnd(model_t *m)
{
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return m->rng * 2685821657736338717ull;
}

static size_t slot_of(uint64_t owner, wr_bytes_t tag)
{
    for (size_t s = 0; s < SLOTS; s++)
        if (slot_owner(s) == owner && wr_bytes_eq_str(tag, slot_tags[s]))
            return s;
    ck_abort_msg("effect for an unknown consumer");
    return 0;
}

/* Removes delivery id from slot s; the message's log index, or 0 when s does not hold it. */
static uint64_t slot_take(mslot_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->nout; i++) {
        if (s->ids[i] == id) {
            uint64_t idx = s->idx[i];
            s->nout--;
            s->ids[i] = s->ids[s->nout];
            s->idx[i] = s->idx[s->nout];
            return idx;
        }
    }
    return 0;
}

/* Everything slot s holds goes back to ready; the slot is gone. */
static void slot_drop(model_t *m, size_t s)
{
    for (size_t i = 0; i < m->slot[s].nout; i++)
        m->msg[m->slot[s].idx[i]].st = M_READY;
    m->slot[s] = (mslot_t){.last_id = -1};
}

static void slot_maybe_gone(model_t *m, size_t s)
{
    if (m->slot[s].cancelled && m->slot[s].nout == 0)
        slot_drop(m, s);
}

/* What a settlement command does to the model before the machine runs it. */
static void model_settle(model_t *m, const wr_qfifo_cmd_t *c, size_t s)
{
    for (size_t k = 0; k < wr_qfifo_cmd_nids(c); k++) {
        uint64_t idx = slot_take(&m->slot[s], wr_qfifo_cmd_id(c, k));

        if (idx == 0)
            continue;
        if (c->op == WR_QF_SETTLE)
            m->msg[idx].st = M_DONE;
        else if (c->op == WR_QF_DISCARD)
            m->msg[idx].st = M_DISCARDING;
        else {
            m->msg[idx].st = M_READY;
            m->msg[idx].count++;
        }
    }
    slot_maybe_gone(m, s);
}

static size_t count_st(const model_t *m, uint8_t st)
{
    size_t n = 0;

    for (size_t i = 0; i < MAXIDX; i++)
        n += m->msg[i].st == st;
    return n;
}

/* A command naming a consumer (CHECKOUT .. CANCEL): the model's change and the expected status. */
static int model_consumer_cmd(model_t *m, const wr_qfifo_cmd_t *c)
{
    size_t s = slot_of(c->owner, c->tag);

    if (c->op == WR_QF_CHECKOUT) {
        if (!m->slot[s].live)
            m->slot[s] = (mslot_t){.live = true, .last_id = -1};
        m->slot[s].cancelled = false;
        m->slot[s].prefetch = c->prefetch;
        return WR_OK;
    }
    if (!m->slot[s].live)
        return WR_ENOENT;
    if (c->op == WR_QF_CREDIT)
        m->slot[s].prefetch = c->prefetch;
    else if (c->op == WR_QF_CANCEL) {
        m->slot[s].cancelled = true;
        slot_maybe_gone(m, s);
    } else
        model_settle(m, c, s);
    return WR_OK;
}

static void model_down(model_t *m, uint64_t owner)
{
    for (size_t i = 0; i < SLOTS; i++)
        if (slot_owner(i) == owner && m->slot[i].live)
            slot_drop(m, i);
    if (owner < 4)
        m->pub_last[owner] = m->pub_next[owner] = 0;
}

static void model_dlx_settle(model_t *m, uint64_t id)
{
    for (size_t i = 0; i < m->ndlx; i++) {
        if (m->dlx[i] == id) {
            m->msg[m->dlx_idx[i]].st = M_DONE;
            m->ndlx--;
            m->dlx[i] = m->dlx[m->ndlx];
            m->dlx_idx[i] = m->dlx_idx[m->ndlx];
            return;
        }
    }
}

/* The expected status of a command, from the model, updating it first. */
static int model_before(model_t *m, const wr_qfifo_cmd_t *c)
{
    if (c->op >= WR_QF_CHECKOUT && c->op <= WR_QF_CANCEL)
        return model_consumer_cmd(m, c);
    if (c->op == WR_QF_ENQUEUE)
        return !c->owner || !c->seq                 ? WR_OK
               : c->seq <= m->pub_last[c->owner]    ? WR_EEXIST
               : c->seq > m->pub_last[c->owner] + 1 ? WR_AGAIN
                                                    : WR_OK;
    if (c->op == WR_QF_DOWN)
        model_down(m, c->owner);
    if (c->op == WR_QF_DLX_SETTLE)
        for (size_t k = 0; k < wr_qfifo_cmd_nids(c); k++)
            model_dlx_settle(m, wr_qfifo_cmd_id(c, k));
    return WR_OK;
}

/* get: the basic.get this delivery answers (it may go to a cancelled getter, past prefetch), or NULL. */
static void model_deliver(model_t *m, const h_t *h, const wr_qfifo_effect_t *f, const wr_qfifo_cmd_t *get)
{
    size_t s = slot_of(f->owner, wr_qfifo_effect_tag(&h->fx, f));
    mslot_t *sl = &m->slot[s];
    mmsg_t *msg = &m->msg[f->index];

    ck_assert_msg(msg->st == M_READY, "message %llu delivered while not ready (state %d)",
                  (unsigned long long)f->index, msg->st);
    ck_assert_uint_eq(f->count, msg->count);
    ck_assert_uint_eq(f->redelivered, msg->delivered);
    msg->delivered = true;
    if (get != NULL && get->no_ack) {
        msg->st = M_DONE;
        return;
    }
    ck_assert_msg(sl->live && (get != NULL || !sl->cancelled), "delivery to a consumer that is not up");
    ck_assert_msg(get != NULL || sl->prefetch == 0 || sl->nout < sl->prefetch, "prefetch %u exceeded",
                  sl->prefetch);
    ck_assert_int_gt((int64_t)f->id, sl->last_id);
    sl->last_id = (int64_t)f->id;
    sl->ids[sl->nout] = f->id;
    sl->idx[sl->nout++] = f->index;
    msg->st = M_OUT;
    msg->delivered = true;
}

static void min_live_of(const model_t *m, uint64_t *min)
{
    *min = 0;
    for (uint64_t i = 1; i < MAXIDX; i++) {
        if (m->msg[i].st == M_READY || m->msg[i].st == M_OUT || m->msg[i].st == M_DLX) {
            *min = i;
            return;
        }
    }
}

/* Checks one effect of replica A against the model and applies it. */
static void model_effect(model_t *m, const h_t *h, const wr_qfifo_effect_t *f, const wr_qfifo_cmd_t *get)
{
    uint64_t min;

    m->seen[f->kind]++;
    switch (f->kind) {
    case WR_QFE_DELIVER:
        model_deliver(m, h, f, get);
        break;
    case WR_QFE_DEADLETTER:
        ck_assert(m->msg[f->index].st == M_READY || m->msg[f->index].st == M_DISCARDING);
        m->msg[f->index].st = f->dlx == WR_QF_DLX_AT_LEAST_ONCE ? M_DLX : M_DONE;
        m->seen[8 + f->reason]++;
        if (f->dlx == WR_QF_DLX_AT_LEAST_ONCE) {
            m->dlx_idx[m->ndlx] = f->index;
            m->dlx[m->ndlx++] = f->id;
        }
        break;
    case WR_QFE_CANCEL:
        slot_drop(m, slot_of(f->owner, wr_qfifo_effect_tag(&h->fx, f)));
        break;
    case WR_QFE_RELEASE:
        min_live_of(m, &min);
        ck_assert_uint_eq(f->id, min);
        break;
    default:
        break;
    }
}

/* A basic.get that got a message (one delivery) made its getter if it had none. */
static void model_get(model_t *m, const h_t *h, const wr_qfifo_cmd_t *c)
{
    size_t s = slot_of(c->owner, c->tag);

    ck_assert_uint_eq(count_kind(h, WR_QFE_DELIVER), h->n);
    m->seen[SEEN_GETS] += h->n;
    if (h->n == 1 && !c->no_ack && !m->slot[s].live)
        m->slot[s] = (mslot_t){.live = true, .cancelled = true, .last_id = -1};
}

static void model_after(model_t *m, const h_t *h, const wr_qfifo_cmd_t *c, uint64_t index, int rc, int want)
{
    wr_qfifo_info_t in = info(h);

    ck_assert_int_eq(rc == WR_EFULL ? WR_OK : rc, want);
    if (c->op == WR_QF_ENQUEUE && rc == WR_OK)
        m->msg[index].st = M_READY;
    if (c->op == WR_QF_ENQUEUE && (rc == WR_OK || rc == WR_EFULL) && c->owner && c->seq)
        m->pub_last[c->owner] = c->seq;
    if (c->op == WR_QF_ENQUEUE && c->seq)
        ck_assert_uint_eq(count_kind(h, rc == WR_OK      ? WR_QFE_CONFIRM
                                        : rc == WR_EFULL ? WR_QFE_REJECT
                                                         : 0),
                          rc == WR_EEXIST || rc == WR_AGAIN ? 0 : 1);
    if (c->op == WR_QF_PURGE) {
        ck_assert_uint_eq(h->n, count_st(m, M_READY));
        for (size_t i = 0; i < MAXIDX; i++)
            if (m->msg[i].st == M_READY)
                m->msg[i].st = M_DONE;
    }
    if (c->op == WR_QF_DEQUEUE)
        model_get(m, h, c);
    for (size_t i = 0, got = 0; i < h->fx.n; i++) {
        bool get = c->op == WR_QF_DEQUEUE && h->fx.v[i].kind == WR_QFE_DELIVER && got++ == 0;
        model_effect(m, h, &h->fx.v[i], get ? c : NULL);
    }
    ck_assert_uint_eq(count_st(m, M_DISCARDING), 0);
    ck_assert_uint_eq(in.ready, count_st(m, M_READY));
    ck_assert_uint_eq(in.checked_out, count_st(m, M_OUT));
    ck_assert_uint_eq(in.dlx_pending, count_st(m, M_DLX));
    ck_assert_uint_eq(in.dlx_pending, m->ndlx);
}

/* Up to n ids of slot s (and sometimes one it does not hold), packed into raw. */
static wr_bytes_t pick_ids(model_t *m, size_t s, uint8_t *raw, size_t n)
{
    uint64_t ids[4];
    size_t k = 0;

    for (size_t i = 0; i < m->slot[s].nout && k < n; i++)
        if (rnd(m) % 2)
            ids[k++] = m->slot[s].ids[i];
    if (k < n && rnd(m) % 8 == 0)
        ids[k++] = 1000000;
    wr_qfifo_ids_pack(raw, ids, k);
    return (wr_bytes_t){raw, 8 * k};
}

static void gen_policy(model_t *m, wr_qfifo_policy_t *p)
{
    static const uint64_t lens[] = {WR_QF_NONE, 3, 12};
    static const uint32_t ttls[] = {WR_QF_NO_TTL, 60, 400},
                          limits[] = {WR_QF_DEFAULT_DLIMIT, 1, WR_QF_UNLIMITED};

    wr_qfifo_policy_default(p);
    p->max_length = lens[rnd(m) % 3];
    p->max_bytes = rnd(m) % 4 == 0 ? 5000 : WR_QF_NONE;
    p->overflow = (uint8_t)(rnd(m) % 2);
    p->dlx = (uint8_t)(rnd(m) % 3);
    p->single_active = rnd(m) % 3 == 0;
    p->msg_ttl_ms = ttls[rnd(m) % 3];
    p->delivery_limit = limits[rnd(m) % 3];
    p->consumer_timeout_ms = rnd(m) % 2 ? 0 : 300;
}

static void gen_enqueue(model_t *m, wr_qfifo_cmd_t *c)
{
    uint64_t pub = rnd(m) % 4;

    c->op = WR_QF_ENQUEUE;
    c->owner = pub;
    /* Mostly the next sequence; sometimes a resend (a duplicate), sometimes one past a gap. */
    if (pub != 0 && rnd(m) % 6 == 0 && m->pub_next[pub] > 0)
        c->seq = m->pub_next[pub] - rnd(m) % 2;
    else if (pub != 0 && rnd(m) % 8 == 0)
        c->seq = m->pub_next[pub] + 2;
    else if (pub != 0)
        c->seq = ++m->pub_next[pub];
    c->size = 1 + (uint32_t)(rnd(m) % 2000);
    c->priority = (uint8_t)(rnd(m) % 10);
    c->ttl_ms = rnd(m) % 4 == 0 ? 20 + (uint32_t)(rnd(m) % 300) : WR_QF_NO_TTL;
}

/* A random command the queue type could send (raw: room for its ids). */
static void gen(model_t *m, wr_qfifo_cmd_t *c, uint8_t *raw)
{
    uint64_t r = rnd(m) % 100;
    size_t s = rnd(m) % DRAIN;

    *c = (wr_qfifo_cmd_t){.owner = slot_owner(s), .tag = wr_bytes_str(slot_tags[s])};
    if (r < 32)
        gen_enqueue(m, c);
    else if (r < 35) {
        c->op = WR_QF_DEQUEUE;
        c->no_ack = rnd(m) % 2;
    } else if (r < 43) {
        c->op = WR_QF_CHECKOUT;
        c->prefetch = (uint32_t)(rnd(m) % 4);
        c->cprio = (int32_t)(rnd(m) % 3);
    } else if (r < 69) {
        c->op = r < 58 ? WR_QF_SETTLE : r < 65 ? WR_QF_RETURN : WR_QF_DISCARD;
        c->ids = pick_ids(m, s, raw, 3);
    } else if (r < 72) {
        c->op = WR_QF_CREDIT;
        c->prefetch = (uint32_t)(rnd(m) % 4);
    } else if (r < 76)
        c->op = WR_QF_CANCEL;
    else if (r < 78)
        *c = (wr_qfifo_cmd_t){.op = WR_QF_DOWN, .owner = slot_owner(s)};
    else if (r < 79)
        *c = (wr_qfifo_cmd_t){.op = WR_QF_PURGE};
    else if (r < 90)
        *c = (wr_qfifo_cmd_t){.op = WR_QF_TICK};
    else if (r < 93) {
        *c = (wr_qfifo_cmd_t){.op = WR_QF_POLICY};
        gen_policy(m, &c->policy);
    } else {
        *c = (wr_qfifo_cmd_t){.op = WR_QF_DLX_SETTLE};
        wr_qfifo_ids_pack(raw, m->dlx, m->ndlx > 2 ? 2 : m->ndlx);
        c->ids = (wr_bytes_t){raw, 8 * (m->ndlx > 2 ? 2 : m->ndlx)};
    }
}

static void same_effects(const h_t *a, const h_t *b)
{
    ck_assert_uint_eq(a->fx.n, b->fx.n);
    for (size_t i = 0; i < a->fx.n; i++) {
        const wr_qfifo_effect_t *x = &a->fx.v[i], *y = &b->fx.v[i];

        ck_assert(x->kind == y->kind && x->redelivered == y->redelivered && x->reason == y->reason &&
                  x->dlx == y->dlx && x->size == y->size && x->count == y->count && x->owner == y->owner &&
                  x->id == y->id && x->index == y->index && x->seq == y->seq);
        ck_assert(wr_bytes_eq(wr_qfifo_effect_tag(&a->fx, x), wr_qfifo_effect_tag(&b->fx, y)));
    }
}

static void same_snapshots(const h_t *a, const h_t *b)
{
    wr_buf_t x = WR_BUF_INIT, y = WR_BUF_INIT;

    ck_assert(wr_qfifo_snapshot_put(a->q, &x) && wr_qfifo_snapshot_put(b->q, &y));
    ck_assert_uint_eq(x.len, y.len);
    ck_assert_mem_eq(x.data, y.data, x.len);
    wr_buf_free(&x);
    wr_buf_free(&y);
}

/* Replaces r's machine with one loaded from its own snapshot (a member restarting). */
static void reload(h_t *r)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_qfifo_t *q;

    ck_assert(wr_qfifo_snapshot_put(r->q, &b));
    ck_assert_int_eq(wr_qfifo_snapshot_load(b.data, b.len, &q), WR_OK);
    wr_qfifo_free(r->q);
    r->q = q;
    wr_buf_free(&b);
}

/* Applies c to all three replicas at time now, checks they agree and that the model holds. */
static void step(h_t *r, model_t *m, const wr_qfifo_cmd_t *c, uint64_t now)
{
    int want = model_before(m, c), rc[3];

    for (int i = 0; i < 3; i++) {
        r[i].now = now;
        rc[i] = h_apply(&r[i], c);
    }
    ck_assert(rc[0] == rc[1] && rc[1] == rc[2]);
    same_effects(&r[0], &r[1]);
    same_effects(&r[0], &r[2]);
    same_snapshots(&r[0], &r[1]);
    same_snapshots(&r[0], &r[2]);
    model_after(m, &r[0], c, r[0].index, rc[0], want);
}

/* Ends a run: everything still queued is consumed and settled; nothing may be left. */
static void drain(h_t *r, model_t *m, uint64_t now)
{
    static uint8_t raw[8 * MAXIDX];
    wr_qfifo_cmd_t c = {.op = WR_QF_POLICY};
    uint64_t ids[MAXIDX];
    size_t n = 0;

    wr_qfifo_policy_default(&c.policy);
    step(r, m, &c, now);
    for (uint64_t owner = 1; owner <= 3; owner++)
        step(r, m, &(wr_qfifo_cmd_t){.op = WR_QF_DOWN, .owner = owner}, now);
    step(r, m, &(wr_qfifo_cmd_t){.op = WR_QF_CHECKOUT, .owner = 99, .tag = WR_BYTES_LIT("d")}, now + 1000);
    for (size_t i = 0; i < m->slot[DRAIN].nout; i++)
        ids[n++] = m->slot[DRAIN].ids[i];
    wr_qfifo_ids_pack(raw, ids, n);
    step(r, m,
         &(wr_qfifo_cmd_t){.op = WR_QF_SETTLE, .owner = 99, .tag = WR_BYTES_LIT("d"), .ids = {raw, 8 * n}},
         now);
    wr_qfifo_ids_pack(raw, m->dlx, m->ndlx);
    step(r, m, &(wr_qfifo_cmd_t){.op = WR_QF_DLX_SETTLE, .ids = {raw, 8 * m->ndlx}}, now);
    for (size_t i = 0; i < MAXIDX; i++)
        ck_assert_msg(m->msg[i].st == M_NONE || m->msg[i].st == M_DONE, "message %zu never came back", i);
    ck_assert_uint_eq(wr_qfifo_min_live(r[0].q), 0);
}

static void run_seed(uint64_t seed, uint64_t *seen)
{
    static model_t m;
    uint8_t raw[32];
    uint64_t now = 1000;
    wr_qfifo_cmd_t c;
    h_t r[3];

    m = (model_t){.rng = seed * 0x9E3779B97F4A7C15ull + 1, .seen = seen};
    for (size_t s = 0; s < SLOTS; s++)
        m.slot[s].last_id = -1;
    for (int i = 0; i < 3; i++)
        h_init(&r[i]);
    for (int i = 0; i < STEPS; i++) {
        now += rnd(&m) % 40;
        gen(&m, &c, raw);
        step(r, &m, &c, now);
        if (rnd(&m) % 50 == 0)
            reload(&r[2]);
    }
    drain(r, &m, now);
    for (int i = 0; i < 3; i++)
        h_done(&r[i]);
}

START_TEST(replicas_agree_and_model_holds)
{
    uint64_t seen[16] = {0};

    for (uint64_t seed = 1; seed <= SEEDS; seed++)
        run_seed(seed, seen);
    /* Every effect kind and every dead-letter reason came up: the commands reach every path. */
    for (int k = WR_QFE_DELIVER; k <= WR_QFE_RELEASE; k++)
        ck_assert_msg(seen[k] > 0, "no effect of kind %d in %d seeds", k, SEEDS);
    for (int r = WR_QF_DL_REJECTED; r <= WR_QF_DL_DELIVERY_LIMIT; r++)
        ck_assert_msg(seen[8 + r] > 0, "no dead letter for reason %d", r);
    ck_assert_msg(seen[SEEN_GETS] > 0, "no basic.get got a message");
    printf("qfifo property: %d seeds x %d commands: %llu deliveries (%llu by basic.get), %llu dead letters, "
           "%llu consumer timeouts\n",
           SEEDS, STEPS, (unsigned long long)seen[WR_QFE_DELIVER], (unsigned long long)seen[SEEN_GETS],
           (unsigned long long)seen[WR_QFE_DEADLETTER], (unsigned long long)seen[WR_QFE_CANCEL]);
}
END_TEST

static Suite *qfifo_suite(void)
{
    Suite *s = suite_create("cluster-qfifo");
    TCase *tc = tcase_create("machine");

    tcase_add_test(tc, enqueue_checkout_settle);
    tcase_add_test(tc, held_index_names_a_held_delivery);
    tcase_add_test(tc, requeue_counts_delivery);
    tcase_add_test(tc, delivery_limit_default_20);
    tcase_add_test(tc, at_least_once_waits_for_dlx_settled);
    tcase_add_test(tc, drop_head_or_reject_publish);
    tcase_add_test(tc, ttl_by_leader_time);
    tcase_add_test(tc, ttl_zero_reaches_a_waiting_consumer);
    tcase_add_test(tc, single_active_consumer);
    tcase_add_test(tc, single_active_down_skips_the_same_channel);
    tcase_add_test(tc, limit_after_delivery);
    tcase_add_test(tc, dequeue_get);
    tcase_add_test(tc, expires_when_unused);
    tcase_add_test(tc, consumer_priorities);
    tcase_add_test(tc, message_priorities);
    tcase_add_test(tc, purge_drops_ready_only);
    tcase_add_test(tc, down_returns_in_order);
    tcase_add_test(tc, dedup_applies_once);
    tcase_add_test(tc, consumer_timeout_cancels_only_the_stuck);
    tcase_add_test(tc, cancel_keeps_unacked);
    tcase_add_test(tc, credit_change);
    tcase_add_test(tc, old_unacked_does_not_pin_the_log);
    tcase_add_test(tc, snapshot_round_trip);
    tcase_add_test(tc, snapshot_version_1_still_loads);
    tcase_add_test(tc, codec_rejects_malformed);
    tcase_add_test(tc, codec_stamp_rewrites_the_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, memory_per_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("property");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, replicas_agree_and_model_holds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(qfifo_suite());
}
