/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for classic queues with a log (broker/queue/classic.c with
 * broker/queue/queue_log.c) on a real store in a temporary directory, driven by hand without an event
 * loop: confirms released only after the fsync, write errors as failed
 * confirms and recovered from once writes succeed, a restart that brings back
 * persistent messages byte-exact with their redelivered flags, paging within
 * the memory budget (read back in runs; a damaged record lost and logged), a long-lived unacked message that
 * does not pin dead segments, unacked deliveries of logged messages that keep no body, a drained queue that
 * gives its disk space back, priority queues across a restart, dead-lettering of paged-out messages, and
 * deletion.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/amqp/unacked.h"
#include "broker/base/log.h"
#include "broker/queue/classic.h"
#include "broker/queue/queue_log.h"
#include "core/status.h"
#include "protocol/props.h"
#include "tests/unit/storage/helpers.h"
#include "tests/unit/runner.h"

/* ---------------------------------------------------------------- fixtures */

typedef struct {
    th_msgs_t msgs;
    th_fault_t fault;
    wr_store_t *store;
    wr_qlog_ctx_t ctx;
    wr_queue_sched_t sched;
    int touches;
} fx_t;

static void fx_touch(void *ud)
{
    ((fx_t *)ud)->touches++;
}

static void fx_open(fx_t *fx, uint64_t segment_size, uint64_t budget)
{
    wr_store_opts_t o = th_opts(segment_size, &fx->msgs, &fx->fault);

    fx->store = th_store(&o);
    wr_qlog_ctx_init(&fx->ctx, fx->store, budget, fx_touch, fx);
    wr_queue_sched_init(&fx->sched, NULL, NULL);
}

static void fx_start(fx_t *fx, uint64_t segment_size, uint64_t budget)
{
    memset(fx, 0, sizeof(*fx));
    th_tmpdir();
    th_fault_init(&fx->fault);
    fx_open(fx, segment_size, budget);
}

/* What the broker's flush event does, then waiting for the batches. */
static void fx_commit(fx_t *fx)
{
    wr_qlog_ctx_bury(&fx->ctx);
    wr_qlog_ctx_flush(&fx->ctx);
    wr_store_flush(fx->store);
    while (!wr_store_idle(fx->store))
        th_wait_dispatch(fx->store);
}

static void fx_stop(fx_t *fx)
{
    wr_qlog_ctx_bury(&fx->ctx);
    wr_store_close(fx->store);
    th_fault_fini(&fx->fault);
    th_rmdir();
}

static wr_queue_t *fx_queue(fx_t *fx, bool durable, const char *logname)
{
    wr_queue_opts_t o = {.durable = durable};
    wr_queue_t *q = wr_queue_new(&wr_classic_queue_type, WR_BYTES_LIT("q"), &o, &fx->sched);
    char err[512];

    ck_assert_ptr_nonnull(q);
    ck_assert_msg(wr_queue_open_store(q, &fx->ctx, logname, "queue 'q'", err, sizeof(err)) == WR_OK, "%s",
                  err);
    return q;
}

/* The broker stops: the log is closed keeping its records, then the queue goes. */
static void fx_shutdown_queue(wr_queue_t *q)
{
    wr_queue_close_store(q);
    wr_queue_close(q);
    wr_queue_unref(q);
}

/* Message n: routing key "k<n>", a content header with delivery_mode, a
 * message-id unique to n and a priority unless negative, and a body of
 * `size` bytes derived from n. */
static wr_message_t *msg_prio(int n, bool persistent, size_t size, int priority)
{
    wr_buf_t h = WR_BUF_INIT;
    wr_props_t p = {.class_id = 60, .body_size = size, .flags = WR_PROP_MESSAGE_ID};
    char key[16], id[32];
    wr_message_t *m;

    snprintf(key, sizeof(key), "k%d", n);
    snprintf(id, sizeof(id), "id-%d", n);
    p.message_id = wr_bytes_str(id);
    if (persistent) {
        p.flags |= WR_PROP_DELIVERY_MODE;
        p.delivery_mode = 2;
    }
    if (priority >= 0) {
        p.flags |= WR_PROP_PRIORITY;
        p.priority = (uint8_t)priority;
    }
    wr_props_encode(&h, &p);
    ck_assert(wr_buf_ok(&h));
    m = wr_message_new(WR_BYTES_LIT("ex"), wr_bytes_str(key), (wr_bytes_t){h.data, h.len}, size);
    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; i < size; i++)
        m->body[i] = (uint8_t)(n + i);
    m->body_filled = size;
    wr_buf_free(&h);
    return m;
}

static wr_message_t *msg(int n, bool persistent, size_t size)
{
    return msg_prio(n, persistent, size, -1);
}

static int publish(wr_queue_t *q, int n, bool persistent, size_t size, wr_confirm_t *conf)
{
    wr_message_t *m = msg(n, persistent, size);
    int rc = wr_queue_publish(q, m, conf);

    wr_message_unref(m);
    return rc;
}

/* m is message n as msg() builds it, byte for byte. */
static void check_msg(wr_message_t *m, int n, bool persistent, size_t size)
{
    wr_message_t *want = msg(n, persistent, size);

    ck_assert(wr_bytes_eq(m->exchange, want->exchange));
    ck_assert(wr_bytes_eq(m->routing_key, want->routing_key));
    ck_assert_uint_eq(m->header.len, want->header.len);
    ck_assert_int_eq(memcmp(m->header.data, want->header.data, want->header.len), 0);
    ck_assert_uint_eq(m->body_size, size);
    ck_assert(size == 0 || memcmp(m->body, want->body, size) == 0);
    wr_message_unref(want);
}

/* basic.get with no-ack: the head must be message n. */
static void get_drop(wr_queue_t *q, int n, bool persistent, size_t size, bool redelivered)
{
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    ck_assert(wr_queue_get(q, true, &m, &pos, &r));
    check_msg(m, n, persistent, size);
    ck_assert_int_eq(r, redelivered);
    wr_message_unref(m);
}

/* basic.get awaiting ack, recorded as delivery `tag`. */
static void get_keep(wr_queue_t *q, wr_unacked_t *u, uint64_t tag, int n, bool persistent, size_t size)
{
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    ck_assert(wr_queue_get(q, false, &m, &pos, &r));
    check_msg(m, n, persistent, size);
    ck_assert_int_eq(wr_unacked_add(u, tag, q, m, &pos, NULL), WR_OK);
    wr_message_unref(m);
}

typedef struct {
    wr_confirm_t base;
    int done;
} conf_t;

static void conf_done(wr_confirm_t *c)
{
    ((conf_t *)c)->done++;
}

static void conf_init(conf_t *c)
{
    c->base = (wr_confirm_t){1, false, conf_done};
    c->done = 0;
}

/* ---------------------------------------------------------------- confirms */

START_TEST(test_confirm_after_fsync)
{
    fx_t fx;
    wr_queue_t *dq, *tq;
    conf_t persistent, transient, nondurable;
    char c = 0;

    fx_start(&fx, 0, 1 << 20);
    dq = fx_queue(&fx, true, NULL);
    tq = fx_queue(&fx, false, NULL);
    conf_init(&persistent);
    conf_init(&transient);
    conf_init(&nondurable);
    ck_assert_int_eq(publish(dq, 1, true, 100, &persistent.base), WR_OK);
    ck_assert_int_eq(publish(dq, 2, false, 100, &transient.base), WR_OK);
    ck_assert_int_eq(publish(tq, 3, true, 100, &nondurable.base), WR_OK);
    /* Routing is over: only the persistent message in the durable queue waits. */
    wr_confirm_release(&persistent.base, true);
    wr_confirm_release(&transient.base, true);
    wr_confirm_release(&nondurable.base, true);
    ck_assert_int_eq(transient.done, 1);
    ck_assert_int_eq(nondurable.done, 1);
    ck_assert_int_eq(persistent.done, 0);
    ck_assert_int_gt(fx.touches, 0);

    fx.fault.hold_sync = true;
    wr_qlog_ctx_flush(&fx.ctx);
    wr_store_flush(fx.store);
    ck_assert_int_eq(read(fx.fault.entered[0], &c, 1), 1); /* inside fdatasync */
    wr_store_dispatch(fx.store);
    ck_assert_int_eq(persistent.done, 0);
    ck_assert_int_eq(write(fx.fault.release[1], &c, 1), 1);
    th_wait_dispatch(fx.store);
    ck_assert_int_eq(persistent.done, 1);
    ck_assert(!persistent.base.failed);

    wr_queue_close(dq);
    wr_queue_unref(dq);
    wr_queue_close(tq);
    wr_queue_unref(tq);
    fx_stop(&fx);
}
END_TEST

/*
 * A write error (the disk is full) nacks what it lost. Once writes succeed
 * again the queue stores and confirms new messages without a restart, and
 * its acks are durable again, the one lost with the failed batch included.
 */
START_TEST(test_write_error_recovers)
{
    fx_t fx;
    wr_queue_t *q;
    conf_t a, b;
    char name[32];

    fx_start(&fx, 0, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int n = 1; n <= 3; n++)
        ck_assert_int_eq(publish(q, n, true, 10, NULL), WR_OK);
    fx_commit(&fx);
    get_drop(q, 1, true, 10, false); /* its ack goes into the failing batch */
    conf_init(&a);
    ck_assert_int_eq(publish(q, 4, true, 10, &a.base), WR_OK);
    wr_confirm_release(&a.base, true);
    fx.fault.fail_write = 1;
    fx.fault.err = ENOSPC;
    fx_commit(&fx);
    ck_assert_int_eq(a.done, 1);
    ck_assert(a.base.failed);
    ck_assert(th_msgs_has(&fx.msgs, "No space left on device"));
    /* Space is back. */
    conf_init(&b);
    ck_assert_int_eq(publish(q, 5, true, 10, &b.base), WR_OK);
    wr_confirm_release(&b.base, true);
    fx_commit(&fx);
    ck_assert_int_eq(b.done, 1);
    ck_assert(!b.base.failed);
    get_drop(q, 2, true, 10, false);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    /* 1 and 2 were acked, 4 was nacked and never stored. */
    fx_open(&fx, 0, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    get_drop(q, 3, true, 10, false);
    get_drop(q, 5, true, 10, false);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- restart */

START_TEST(test_restart_recovers_persistent)
{
    fx_t fx;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    char name[32];

    fx_start(&fx, 4096, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 1; i <= 10; i++)
        ck_assert_int_eq(publish(q, i, i % 3 != 0, (size_t)(i * 50), NULL), WR_OK);
    get_drop(q, 1, true, 50, false);  /* acked: gone */
    get_keep(q, u, 1, 2, true, 100);  /* delivered, unacked: back, redelivered */
    get_keep(q, u, 2, 3, false, 150); /* transient: gone */
    get_keep(q, u, 3, 4, true, 200);  /* delivered, acked below */
    ck_assert_int_eq(wr_unacked_settle(u, 3, false, WR_SETTLE_ACK), WR_OK);
    fx_commit(&fx);
    wr_unacked_free(u); /* the channel goes: its deliveries are requeued */
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    fx_open(&fx, 4096, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 5);
    get_drop(q, 2, true, 100, true);
    get_drop(q, 5, true, 250, false);
    get_drop(q, 7, true, 350, false);
    get_drop(q, 8, true, 400, false);
    get_drop(q, 10, true, 500, false);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    /* Everything was acked: nothing comes back. */
    fx_open(&fx, 4096, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- paging */

START_TEST(test_paging_within_budget)
{
    enum { N = 2000, SIZE = 1000, BUDGET = 20000 };
    fx_t fx;
    wr_queue_t *q;
    uint64_t peak = 0;

    fx_start(&fx, 64 * 1024, BUDGET);
    q = fx_queue(&fx, false, NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(publish(q, i, false, SIZE, NULL), WR_OK);
        ck_assert_uint_le(wr_queue_memory(q), BUDGET);
        if (i % 100 == 0)
            fx_commit(&fx);
    }
    ck_assert_uint_eq(wr_queue_ready(q), N);
    for (int i = 0; i < N; i++) {
        get_drop(q, i, false, SIZE, false);
        if (wr_queue_memory(q) > peak)
            peak = wr_queue_memory(q);
        if (i % 100 == 0)
            fx_commit(&fx);
    }
    /* Read back in batches, one message over the budget at most. */
    ck_assert_uint_le(peak, BUDGET + SIZE + 256);
    ck_assert_uint_gt(peak, 0);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    wr_queue_close(q);
    wr_queue_unref(q);
    fx_commit(&fx);
    ck_assert_int_eq(th_count_files(th_logdir(""), ""), 2); /* only . and .. left in logs/ */
    fx_stop(&fx);
}
END_TEST

/* Paging in reads the records of a batch together, not two preads each. */
START_TEST(test_paging_reads_runs)
{
    enum { N = 2000, SIZE = 1000, BUDGET = 20000 };
    fx_t fx;
    wr_queue_t *q;
    uint64_t before, reads;

    fx_start(&fx, 1 << 20, BUDGET);
    q = fx_queue(&fx, false, NULL);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, false, SIZE, NULL), WR_OK);
    fx_commit(&fx);
    before = th_thread_reads();
    for (int i = 0; i < N; i++)
        get_drop(q, i, false, SIZE, false);
    reads = th_thread_reads() - before - 1;
    /* ~2 MiB in 128 KiB reads, a few more where a file or a batch ends. */
    ck_assert_uint_gt(reads, 0);
    ck_assert_uint_le(reads, 40);
    wr_queue_close(q);
    wr_queue_unref(q);
    fx_stop(&fx);
}
END_TEST

/* Flips a byte after the first occurrence of `needle` in the segment files of log `name`. */
static void damage_record(const char *name, const char *needle)
{
    DIR *d = opendir(th_logdir(name));
    struct dirent *de;
    bool done = false;

    ck_assert_ptr_nonnull(d);
    while (!done && (de = readdir(d)) != NULL) {
        char path[4400];
        uint8_t buf[1 << 16];
        ssize_t n;
        int fd;

        if (strstr(de->d_name, ".seg") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", th_logdir(name), de->d_name);
        fd = open(path, O_RDWR);
        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf));
        for (ssize_t i = 0; !done && i + (ssize_t)strlen(needle) < n; i++) {
            if (memcmp(buf + i, needle, strlen(needle)) == 0) {
                uint8_t x = buf[i + 1] ^ 0x20;
                ck_assert_int_eq(pwrite(fd, &x, 1, i + 1), 1);
                done = true;
            }
        }
        close(fd);
    }
    closedir(d);
    ck_assert(done);
}

/*
 * A paged-out message whose record was damaged on disk is lost, and said
 * so in the log; the messages read back in the same run around it arrive
 * byte-exact.
 */
START_TEST(test_paged_damaged_record_lost)
{
    enum { N = 60, SIZE = 500, BUDGET = 2000 };
    char logfile[4200], text[8192], name[32];
    fx_t fx;
    wr_queue_t *q;
    FILE *f;
    size_t n;

    fx_start(&fx, 1 << 20, BUDGET);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, false, SIZE, NULL), WR_OK);
    fx_commit(&fx);
    damage_record(name, "id-17");
    snprintf(logfile, sizeof(logfile), "%s/warren.log", th_tmpdir_path());
    ck_assert_int_eq(wr_log_set_file(logfile), WR_OK);
    for (int i = 0; i < N; i++) {
        if (i != 17)
            get_drop(q, i, false, SIZE, false);
    }
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    f = fopen(logfile, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(text, "queue 'q': a message is lost: record") != NULL &&
                      strstr(text, "(I/O error or damaged record)") != NULL,
                  "%s", text);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_paged_durable_survives_restart)
{
    enum { N = 500, SIZE = 700, BUDGET = 5000 };
    fx_t fx;
    wr_queue_t *q;
    char name[32];

    fx_start(&fx, 16 * 1024, BUDGET);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, i % 2 == 0, SIZE, NULL), WR_OK);
    for (int i = 0; i < 10; i += 2)
        get_drop(q, i, true, SIZE, false), get_drop(q, i + 1, false, SIZE, false);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    fx_open(&fx, 16 * 1024, BUDGET);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), N / 2 - 5);
    for (int i = 10; i < N; i += 2)
        get_drop(q, i, true, SIZE, false);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* A consumer that never acks: records its deliveries in `u`. */
typedef struct {
    wr_unacked_t *u;
    uint64_t tag;
    uint64_t kept; /* deliveries whose message the delivery record also held */
} hold_ch_t;

static bool hold_can_take(wr_consumer_t *c)
{
    (void)c;
    return true;
}

static void hold_deliver(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *pos, bool redelivered)
{
    hold_ch_t *ch = c->owner;

    (void)redelivered;
    ck_assert_int_eq(wr_unacked_add(ch->u, ++ch->tag, c->queue, m, pos, c), WR_OK);
    ch->kept += m->refs > 1;
    wr_message_unref(m);
}

static void hold_cancelled(wr_consumer_t *c)
{
    (void)c;
}

static const wr_consumer_ops_t hold_ops = {hold_can_take, hold_deliver, hold_cancelled};

/* An unlimited-prefetch consumer that never acks takes a whole paged backlog:
 * its deliveries keep no bodies in memory, and requeued they are read back
 * from the log, byte-exact and redelivered. */
START_TEST(test_unacked_paged_keep_no_body)
{
    enum { N = 600, SIZE = 1000, BUDGET = 20000 };
    hold_ch_t ch = {wr_unacked_new(), 0, 0};
    wr_consumer_t *c = wr_consumer_new(WR_BYTES_LIT("c"), (wr_bytes_t){NULL, 0}, &hold_ops, &ch);
    fx_t fx;
    wr_queue_t *q;

    fx_start(&fx, 64 * 1024, BUDGET);
    q = fx_queue(&fx, true, NULL);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, i % 2 == 0, SIZE, NULL), WR_OK);
    fx_commit(&fx);
    ck_assert_int_eq(wr_queue_consume(q, c), WR_OK);
    while (wr_queue_sched_run(&fx.sched, 64))
        ck_assert_uint_le(wr_queue_memory(q), BUDGET + SIZE + 256);
    ck_assert_uint_eq(ch.tag, N);
    /* Only transient messages that never left memory (no record) are kept:
     * at most what the budget held when they were published. */
    ck_assert_uint_le(ch.kept * SIZE, BUDGET);
    ck_assert_uint_eq(wr_queue_unacked(q), N);

    wr_queue_cancel(c);
    ck_assert_uint_eq(wr_unacked_requeue_all(ch.u), N);
    ck_assert_uint_eq(wr_queue_ready(q), N);
    ck_assert_uint_le(wr_queue_memory(q), BUDGET);
    for (int i = 0; i < N; i++)
        get_drop(q, i, i % 2 == 0, SIZE, true);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    wr_unacked_free(ch.u);
    wr_consumer_unref(c);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- space */

START_TEST(test_old_unacked_does_not_pin_segments)
{
    enum { N = 3000, SIZE = 200 };
    fx_t fx;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    char name[32];
    int files;

    fx_start(&fx, 4096, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    ck_assert_int_eq(publish(q, 0, true, SIZE, NULL), WR_OK);
    get_keep(q, u, 1, 0, true, SIZE); /* never acked */
    for (int i = 1; i <= N; i++) {
        ck_assert_int_eq(publish(q, i, true, SIZE, NULL), WR_OK);
        get_keep(q, u, (uint64_t)i + 1, i, true, SIZE);
        ck_assert_int_eq(wr_unacked_settle(u, (uint64_t)i + 1, false, WR_SETTLE_ACK), WR_OK);
        if (i % 20 == 0)
            fx_commit(&fx);
    }
    fx_commit(&fx);
    fx_commit(&fx);
    /* N records of ~240 bytes would fill ~180 segments of 4 KiB; checkpoints
     * and compaction keep a handful. */
    files = th_count_files(th_logdir(name), ".seg");
    ck_assert_msg(files <= 6, "%d segment files for one live message", files);

    /* The old message survives, redelivered; nothing acked comes back. */
    wr_unacked_free(u);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);
    fx_open(&fx, 4096, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    get_drop(q, 0, true, SIZE, true);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* A drained durable queue gives its disk space back, head segment included, also across a restart. */
START_TEST(test_drained_queue_gives_space_back)
{
    enum { N = 2000, SIZE = 4096 };
    fx_t fx;
    wr_queue_t *q;
    char name[32];

    fx_start(&fx, 0, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, true, SIZE, NULL), WR_OK);
    fx_commit(&fx);
    ck_assert_uint_gt(th_dir_bytes(th_logdir(name)), (uint64_t)N * SIZE);
    for (int i = 0; i < N; i++) {
        get_drop(q, i, true, SIZE, false);
        if (i % 100 == 0)
            fx_commit(&fx);
    }
    fx_commit(&fx);
    ck_assert_uint_lt(th_dir_bytes(th_logdir(name)), 64 * 1024);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    fx_open(&fx, 0, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    fx_commit(&fx);
    ck_assert_uint_lt(th_dir_bytes(th_logdir(name)), 64 * 1024);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

START_TEST(test_checkpoints_across_restart)
{
    enum { N = 2000, SIZE = 64 };
    fx_t fx;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    char name[32];

    fx_start(&fx, 16 * 1024, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, true, SIZE, NULL), WR_OK);
    get_keep(q, u, 1, 0, true, SIZE);
    for (int i = 1; i < N / 2; i++) {
        get_keep(q, u, (uint64_t)i + 1, i, true, SIZE);
        ck_assert_int_eq(wr_unacked_settle(u, (uint64_t)i + 1, false, WR_SETTLE_ACK), WR_OK);
        if (i % 5 == 0)
            fx_commit(&fx);
    }
    fx_commit(&fx);
    wr_unacked_free(u);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    fx_open(&fx, 16 * 1024, 1 << 20);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), N / 2 + 1);
    get_drop(q, 0, true, SIZE, true);
    for (int i = N / 2; i < N; i++)
        get_drop(q, i, true, SIZE, false);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- limits */

/* Which message this is: the number in its routing key. */
static int msg_id(const wr_message_t *m)
{
    char key[16] = {0};

    memcpy(key, m->routing_key.data, m->routing_key.len < 15 ? m->routing_key.len : 15);
    return atoi(key + 1);
}

/* basic.get of message id, acknowledged (tag 0: no-ack) or kept unacked. */
static void get_id(wr_queue_t *q, wr_unacked_t *u, uint64_t tag, int id, bool redelivered)
{
    wr_message_t *m;
    wr_qtoken_t pos;
    bool r;

    ck_assert(wr_queue_get(q, tag == 0, &m, &pos, &r));
    ck_assert_int_eq(msg_id(m), id);
    ck_assert_int_eq(r, redelivered);
    if (tag != 0)
        ck_assert_int_eq(wr_unacked_add(u, tag, q, m, &pos, NULL), WR_OK);
    wr_message_unref(m);
}

START_TEST(test_priority_queue_restart)
{
    enum { N = 400, SIZE = 200, BUDGET = 20000 };
    wr_queue_opts_t o = {.durable = true, .max_priority = 3};
    fx_t fx;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    char name[32], err[256];

    fx_start(&fx, 16 * 1024, BUDGET);
    q = wr_queue_new(&wr_classic_queue_type, WR_BYTES_LIT("q"), &o, &fx.sched);
    ck_assert_int_eq(wr_queue_open_store(q, &fx.ctx, NULL, "queue 'q'", err, sizeof(err)), WR_OK);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    for (int i = 0; i < N; i++) {
        wr_message_t *m = msg_prio(i, true, SIZE, i % 4);
        ck_assert_int_eq(wr_queue_publish(q, m, NULL), WR_OK);
        wr_message_unref(m);
    }
    ck_assert_uint_le(wr_queue_memory(q), BUDGET);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), (uint64_t)N * SIZE);
    /* Priority 3 first (one left unacked), then priority 2, acked with
     * commits in between so that checkpoints list the lanes. */
    get_id(q, u, 1, 3, false);
    for (int i = 1; i < N / 2; i++) {
        int id = i < N / 4 ? 4 * i + 3 : 4 * (i - N / 4) + 2;
        get_id(q, u, (uint64_t)i + 1, id, false);
        ck_assert_int_eq(wr_unacked_settle(u, (uint64_t)i + 1, false, WR_SETTLE_ACK), WR_OK);
        if (i % 5 == 0)
            fx_commit(&fx);
    }
    fx_commit(&fx);
    wr_unacked_free(u);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    /* Back in priority order, FIFO within each, the unacked one first. */
    fx_open(&fx, 16 * 1024, BUDGET);
    q = wr_queue_new(&wr_classic_queue_type, WR_BYTES_LIT("q"), &o, &fx.sched);
    ck_assert_int_eq(wr_queue_open_store(q, &fx.ctx, name, "queue 'q'", err, sizeof(err)), WR_OK);
    ck_assert_uint_eq(wr_queue_ready(q), N / 2 + 1);
    ck_assert_uint_le(wr_queue_memory(q), BUDGET);
    /* Sizes are known without reading anything back. */
    ck_assert_uint_eq(wr_queue_ready_bytes(q), (uint64_t)(N / 2 + 1) * SIZE);
    get_id(q, NULL, 0, 3, true);
    for (int i = 1; i < N; i += 4)
        get_id(q, NULL, 0, i, false);
    for (int i = 0; i < N; i += 4)
        get_id(q, NULL, 0, i, false);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* The management API's tallies (wr_queue_info) follow messages through
 * paging, delivery, requeue and acknowledgement, and return to zero. */
START_TEST(test_info_tallies)
{
    enum { N = 40, SIZE = 1000, BUDGET = 10000 };
    fx_t fx;
    wr_queue_t *q;
    wr_unacked_t *u = wr_unacked_new();
    wr_queue_info_t i;

    fx_start(&fx, 16 * 1024, BUDGET);
    q = fx_queue(&fx, true, NULL);
    for (int n = 0; n < N; n++)
        ck_assert_int_eq(publish(q, n, n % 2 == 0, SIZE, NULL), WR_OK);
    wr_queue_info(q, &i);
    ck_assert_uint_eq(i.ready_persistent.n, N / 2);
    ck_assert_uint_eq(i.ready_persistent.bytes, (uint64_t)N / 2 * SIZE);
    ck_assert_uint_gt(i.ready_ram.n, 0);
    ck_assert_uint_lt(i.ready_ram.n, N); /* the rest is paged out */
    ck_assert_uint_eq(i.ready_ram.bytes, (uint64_t)i.ready_ram.n * SIZE);
    ck_assert_ptr_nonnull(i.head);
    /* A persistent delivery (logged: its holder drops the body), then a
     * transient one that went to the log only because of the budget. */
    get_id(q, u, 1, 0, false);
    get_id(q, u, 2, 1, false);
    wr_queue_info(q, &i);
    ck_assert_uint_eq(i.unacked.n, 2);
    ck_assert_uint_eq(i.unacked.bytes, 2 * SIZE);
    ck_assert_uint_eq(i.unacked_persistent.n, 1);
    ck_assert_uint_eq(i.unacked_persistent.bytes, SIZE);
    ck_assert_uint_eq(i.ready_persistent.n, N / 2 - 1);
    ck_assert_int_eq(wr_unacked_settle(u, 1, false, WR_SETTLE_REQUEUE), WR_OK);
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_ACK), WR_OK);
    wr_queue_info(q, &i);
    ck_assert_uint_eq(i.unacked.n + i.unacked.bytes + i.unacked_persistent.n + i.unacked_ram.n, 0);
    ck_assert_uint_eq(i.ready_persistent.n, N / 2);
    ck_assert_uint_eq(i.ready, N - 1);
    get_id(q, NULL, 0, 0, true);
    for (int n = 2; n < N; n++)
        get_id(q, NULL, 0, n, false);
    wr_queue_info(q, &i);
    ck_assert_uint_eq(i.ready_ram.n + i.ready_ram.bytes + i.ready_persistent.n + i.ready_persistent.bytes, 0);
    ck_assert_ptr_null(i.head);
    wr_unacked_free(u);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

typedef struct {
    uint64_t now;
    wr_message_t *dl[64];
    wr_dl_reason_t why[64];
    int ndl;
} hk_t;

static uint64_t hk_now(void *ud)
{
    return ((hk_t *)ud)->now;
}

static void hk_dead_letter(void *ud, wr_queue_t *q, wr_message_t *m, wr_dl_reason_t why)
{
    hk_t *h = ud;

    ck_assert_int_lt(h->ndl, 64);
    h->why[h->ndl] = why;
    h->dl[h->ndl++] = m;
}

static void hk_arm(void *ud, wr_queue_t *q, uint64_t due)
{
}

static void hk_expired(void *ud, wr_queue_t *q)
{
}

static const wr_queue_hooks_t hk_hooks = {hk_now, hk_dead_letter, hk_arm, hk_expired, NULL};

START_TEST(test_paged_out_dead_lettered)
{
    enum { N = 40, SIZE = 1000, BUDGET = 5000 };
    fx_t fx;
    hk_t hk = {0};
    wr_queue_t *q;
    wr_queue_limits_t l;
    char name[32];

    fx_start(&fx, 16 * 1024, BUDGET);
    fx.sched.hooks = &hk_hooks;
    fx.sched.ud = &hk;
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    wr_queue_limits_none(&l);
    l.message_ttl = 100;
    l.dead_letter = true;
    wr_queue_set_limits(q, &l);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(publish(q, i, i % 2 == 0, SIZE, NULL), WR_OK);
    ck_assert_uint_le(wr_queue_memory(q), BUDGET);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), (uint64_t)N * SIZE);
    fx_commit(&fx);
    /* Expired, paged-out messages are read back for the dead-letter exchange. */
    hk.now = 100;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 0);
    ck_assert_uint_eq(wr_queue_memory(q), 0);
    ck_assert_int_eq(hk.ndl, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(hk.why[i], WR_DL_EXPIRED);
        check_msg(hk.dl[i], i, i % 2 == 0, SIZE);
        wr_message_unref(hk.dl[i]);
    }
    fx_commit(&fx);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    /* Their records were settled: nothing comes back. */
    fx_open(&fx, 16 * 1024, BUDGET);
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 0);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* A rejected delivery that kept no body is read back for the dead-letter
 * exchange, byte-exact. */
START_TEST(test_unacked_without_body_dead_lettered)
{
    fx_t fx;
    hk_t hk = {0};
    wr_queue_t *q;
    wr_queue_limits_t l;
    wr_unacked_t *u = wr_unacked_new();

    fx_start(&fx, 16 * 1024, 1 << 20);
    fx.sched.hooks = &hk_hooks;
    fx.sched.ud = &hk;
    q = fx_queue(&fx, true, NULL);
    wr_queue_limits_none(&l);
    l.dead_letter = true;
    wr_queue_set_limits(q, &l);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(publish(q, i, true, 500, NULL), WR_OK);
    for (int i = 0; i < 3; i++)
        get_keep(q, u, (uint64_t)i + 1, i, true, 500);
    fx_commit(&fx);
    ck_assert_int_eq(wr_unacked_settle(u, 2, false, WR_SETTLE_DISCARD), WR_OK);
    ck_assert_int_eq(hk.ndl, 1);
    ck_assert_int_eq(hk.why[0], WR_DL_REJECTED);
    check_msg(hk.dl[0], 1, true, 500);
    wr_message_unref(hk.dl[0]);
    wr_unacked_free(u);
    get_drop(q, 0, true, 500, true);
    get_drop(q, 2, true, 500, true);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* TTL deadlines are in the log: after a restart a message expires when it
 * would have, not TTL after the restart, and not never. The hooks' clock is
 * the real monotonic one here, moved forward by hand. */
START_TEST(test_ttl_survives_restart)
{
    enum { SIZE = 100 };
    fx_t fx;
    hk_t hk = {0};
    wr_queue_t *q;
    wr_queue_limits_t l;
    char name[32];

    fx_start(&fx, 16 * 1024, 1 << 20);
    fx.sched.hooks = &hk_hooks;
    fx.sched.ud = &hk;
    hk.now = mono_ms();
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    wr_queue_limits_none(&l);
    l.message_ttl = 60 * 1000;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(publish(q, 0, true, SIZE, NULL), WR_OK);
    l.message_ttl = 3600 * 1000;
    wr_queue_set_limits(q, &l);
    ck_assert_int_eq(publish(q, 1, true, SIZE, NULL), WR_OK);
    fx_commit(&fx);
    fx_shutdown_queue(q);
    wr_store_close(fx.store);

    fx_open(&fx, 16 * 1024, 1 << 20);
    fx.sched.hooks = &hk_hooks;
    fx.sched.ud = &hk;
    hk.now = mono_ms();
    q = fx_queue(&fx, true, name);
    ck_assert_uint_eq(wr_queue_ready(q), 2);
    ck_assert_uint_eq(wr_queue_ready_bytes(q), 2 * SIZE);
    /* Two minutes on: the one-minute message has gone, the other stays. */
    hk.now = mono_ms() + 2 * 60 * 1000;
    wr_queue_tick(q);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    get_drop(q, 1, true, SIZE, false);
    fx_shutdown_queue(q);
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- deletion */

START_TEST(test_delete_waits_for_topology)
{
    fx_t fx;
    wr_queue_t *q;
    char name[32];

    fx_start(&fx, 0, 1 << 20);
    q = fx_queue(&fx, true, NULL);
    snprintf(name, sizeof(name), "%s", wr_queue_store_name(q));
    ck_assert_int_eq(publish(q, 1, true, 10, NULL), WR_OK);
    fx_commit(&fx);
    ck_assert_int_eq(access(th_logdir(name), F_OK), 0);
    wr_queue_close(q);
    wr_queue_unref(q);
    /* Still there: the saved topology may name it until the next flush. */
    ck_assert(wr_qlog_ctx_has_doomed(&fx.ctx));
    ck_assert_int_eq(access(th_logdir(name), F_OK), 0);
    fx_commit(&fx);
    ck_assert(!wr_qlog_ctx_has_doomed(&fx.ctx));
    ck_assert_int_ne(access(th_logdir(name), F_OK), 0);
    fx_stop(&fx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("broker-queue-durable");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_confirm_after_fsync);
    tcase_add_test(tc, test_write_error_recovers);
    tcase_add_test(tc, test_restart_recovers_persistent);
    tcase_add_test(tc, test_paging_within_budget);
    tcase_add_test(tc, test_paged_durable_survives_restart);
    tcase_add_test(tc, test_paging_reads_runs);
    tcase_add_test(tc, test_paged_damaged_record_lost);
    tcase_add_test(tc, test_unacked_paged_keep_no_body);
    tcase_add_test(tc, test_old_unacked_does_not_pin_segments);
    tcase_add_test(tc, test_drained_queue_gives_space_back);
    tcase_add_test(tc, test_checkpoints_across_restart);
    tcase_add_test(tc, test_priority_queue_restart);
    tcase_add_test(tc, test_paged_out_dead_lettered);
    tcase_add_test(tc, test_info_tallies);
    tcase_add_test(tc, test_unacked_without_body_dead_lettered);
    tcase_add_test(tc, test_ttl_survives_restart);
    tcase_add_test(tc, test_delete_waits_for_topology);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(suite());
}
