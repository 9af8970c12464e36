/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/sync.c and the batch hand-off: group commit (one
 * callback, one sync per dirty file, one device flush per batch once files
 * are allocated), callbacks waiting for their fsync,
 * appends gathering behind a slow sync, the commit interval that paces a
 * backlog of small batches, injected write and fsync errors
 * (reported, isolated, the stored prefix recovers exactly), close.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/status.h"
#include "helpers.h"
#include "storage/seglog.h"
#include "storage/store.h"
#include "tests/unit/runner.h"

static th_msgs_t msgs;
static th_fault_t fault;
static th_durable_t dur;

static void setup(void)
{
    th_tmpdir();
    memset(&msgs, 0, sizeof(msgs));
    memset(&dur, 0, sizeof(dur));
    th_fault_init(&fault);
}

static void teardown(void)
{
    th_fault_fini(&fault);
    th_rmdir();
}

START_TEST(one_batch_one_callback)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);

    th_append_n(log, 1, 1000);
    ck_assert_uint_gt(wr_store_pending_bytes(s), 1000 * 15);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 0);
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.calls, 1);
    ck_assert_uint_eq(dur.index, 1000);
    ck_assert_int_eq(dur.status, WR_OK);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 1000);
    ck_assert_int_eq(th_fault_syncs(&fault), 1);
    ck_assert_uint_eq(wr_store_pending_bytes(s), 0);
    ck_assert_int_eq(msgs.count, 0);
    wr_store_close(s);
}
END_TEST

/* A batch that spans many segments syncs each of them once, and still calls back once. */
START_TEST(one_sync_per_dirty_file)
{
    wr_store_opts_t o = th_opts(512, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *a = th_open_log(s, "a", &dur, NULL, NULL);
    th_durable_t db = {0};
    wr_seglog_t *b = th_open_log(s, "b", &db, NULL, NULL);
    int files;

    th_append_n(a, 1, 200);
    th_append_n(b, 1, 3);
    wr_store_flush(s);
    th_wait_dispatch(s);
    files = th_count_files(th_logdir("a"), ".seg") + th_count_files(th_logdir("b"), ".seg");
    ck_assert_int_gt(files, 5);
    ck_assert_int_eq(th_fault_syncs(&fault), files);
    ck_assert_int_eq(dur.calls, 1);
    ck_assert_uint_eq(dur.index, 200);
    ck_assert_int_eq(db.calls, 1);
    ck_assert_uint_eq(db.index, 3);
    wr_store_close(s);
}
END_TEST

/*
 * While the storage thread is held inside the fsync, nothing is reported
 * durable; appends made meanwhile wait and go out together as the next batch.
 */
START_TEST(callback_waits_for_fsync)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    struct pollfd p = {wr_store_notify_fd(s), POLLIN, 0};
    char c = 0;

    th_append_n(log, 1, 10);
    fault.hold_sync = true;
    wr_store_flush(s);
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1); /* the thread is in the fsync now */
    ck_assert_int_eq(poll(&p, 1, 0), 0);
    wr_store_dispatch(s);
    ck_assert_int_eq(dur.calls, 0);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 0);
    th_check_read(log, 4); /* readable from memory meanwhile */
    th_append_n(log, 11, 15);
    wr_store_flush(s); /* waits for the batch in flight */
    th_append_n(log, 16, 20);
    wr_store_flush(s);
    th_check_read(log, 18);
    ck_assert_int_eq(th_fault_syncs(&fault), 1);
    ck_assert_int_eq(write(fault.release[1], &c, 1), 1);
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.calls, 1);
    ck_assert_uint_eq(dur.index, 10);
    /* That dispatch handed off everything appended during the sync as one batch. */
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.calls, 2);
    ck_assert_uint_eq(dur.index, 20);
    ck_assert_int_eq(th_fault_syncs(&fault), 2);
    ck_assert_uint_eq(wr_store_pending_bytes(s), 0);
    th_check_read(log, 18);
    wr_store_close(s);
}
END_TEST

/* Whether the store under test makes one device flush per batch (storage/store.c). */
static bool flush_once_fs(void)
{
    struct statfs st;

    ck_assert_int_eq(statfs(th_tmpdir_path(), &st), 0);
    return st.f_type == EXT4_SUPER_MAGIC || st.f_type == XFS_SUPER_MAGIC;
}

/* Opens logs q0..q3 and makes a first record of each durable (their files' first fdatasync). */
static void four_logs(wr_store_t *s, wr_seglog_t *logs[4], th_durable_t durs[4])
{
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "q%d", i);
        logs[i] = th_open_log(s, name, &durs[i], NULL, NULL);
        th_append_n(logs[i], 1, 1);
    }
    th_settle(s);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(durs[i].index, 1);
}

/*
 * Once a file's blocks are on disk, a batch writes each log's data back and
 * flushes the device once for all of them (the fdatasync of the last),
 * instead of an fdatasync per file.
 */
START_TEST(one_flush_per_batch)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    th_durable_t durs[4] = {{0}};
    wr_seglog_t *logs[4];
    int syncs;

    four_logs(s, logs, durs);
    syncs = th_fault_syncs(&fault);
    ck_assert_int_eq(syncs, 4);
    for (int i = 0; i < 4; i++)
        th_append_n(logs[i], 2, 20);
    th_settle(s);
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(durs[i].index, 20);
        ck_assert_int_eq(durs[i].status, WR_OK);
    }
    if (flush_once_fs()) {
        ck_assert_int_eq(th_fault_syncs(&fault) - syncs, 1);
        ck_assert_int_eq(th_fault_writebacks(&fault), 3); /* the fourth is the one fdatasync'ed */
    } else {
        ck_assert_int_eq(th_fault_syncs(&fault) - syncs, 4);
    }
    ck_assert_int_eq(msgs.count, 0);
    wr_store_close(s);
}
END_TEST

/*
 * Logs that keep growing write their zeros ahead further each time (within
 * a second of the last extension), so a new length costs an fdatasync of
 * its own less and less often: 96 batches of 1 KiB into each of two logs.
 * With an eighth of the length each time, as before, the two took 14
 * fdatasyncs beyond the batches' 96; doubling takes 4.
 */
START_TEST(growing_log_extends_less_often)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    th_durable_t durs[2] = {{0}};
    wr_seglog_t *logs[2];
    static char rec[1024];
    int syncs;

    if (!flush_once_fs()) {
        wr_store_close(s);
        return;
    }
    for (int i = 0; i < 2; i++) {
        logs[i] = th_open_log(s, i == 0 ? "g0" : "g1", &durs[i], NULL, NULL);
        th_append_n(logs[i], 1, 1);
    }
    th_settle(s);
    syncs = th_fault_syncs(&fault);
    for (int b = 0; b < 96; b++) {
        for (int i = 0; i < 2; i++) {
            uint64_t index;
            ck_assert_int_eq(wr_seglog_append(logs[i], rec, sizeof(rec), &index), WR_OK);
        }
        th_settle(s);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_uint_eq(durs[i].index, 97);
    /* One fdatasync per batch (the riders' flush) and one per extension. */
    ck_assert_int_le(th_fault_syncs(&fault) - syncs - 96, 8);
    ck_assert_int_eq(msgs.count, 0);
    wr_store_close(s);
}
END_TEST

/* When the batch's one flush fails, every log that relied on it fails, not just the file flushed. */
START_TEST(failed_flush_fails_every_rider)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    th_durable_t durs[4] = {{0}};
    wr_seglog_t *logs[4];

    if (!flush_once_fs())
        return;
    four_logs(s, logs, durs);
    for (int i = 0; i < 4; i++)
        th_append_n(logs[i], 2, 5);
    fault.err = EIO;
    fault.fail_sync = 1;
    th_settle(s);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(durs[i].status, WR_EIO);
        ck_assert_uint_eq(wr_seglog_durable_index(logs[i]), 1);
        ck_assert_msg(th_msgs_has(&msgs, "records 2..5 of log"), "%s", msgs.text);
    }
    /* The logs go on once the disk does. */
    for (int i = 0; i < 4; i++) {
        th_append_n(logs[i], 6, 7);
        th_sync(s, logs[i], 7);
        ck_assert_int_eq(durs[i].status, WR_OK);
    }
    wr_store_close(s);
}
END_TEST

static int64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Appends 1..10 and flushes while the thread is held in that batch's fsync,
 * appends `more` records of `size` bytes (th_payload's, if 0) behind it and
 * flushes, then lets the sync go; with `awaited`, something waits for each
 * batch (wr_store_awaited). Returns the time of the first flush (the first
 * batch began after it).
 */
static int64_t backlog_behind_sync(wr_store_t *s, wr_seglog_t *log, uint64_t more, size_t size, bool awaited)
{
    static char rec[8192];
    int64_t t0 = now_ms();
    uint64_t index;
    char c = 0;

    th_append_n(log, 1, 10);
    fault.hold_sync = true;
    if (awaited)
        wr_store_awaited(s);
    wr_store_flush(s);
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1);
    for (uint64_t i = 0; i < more && size > 0; i++)
        ck_assert_int_eq(wr_seglog_append(log, rec, size, &index), WR_OK);
    if (size == 0)
        th_append_n(log, 11, 10 + more);
    if (awaited)
        wr_store_awaited(s);
    wr_store_flush(s);
    ck_assert_int_eq(write(fault.release[1], &c, 1), 1);
    th_wait_dispatch(s);
    ck_assert_uint_eq(dur.index, 10);
    return t0;
}

/* A store with the commit interval and unawaited delay given (0: the
 * store's defaults) and log "q" open in it. */
static wr_store_t *store_q(int64_t interval_us, int64_t delay_us, wr_seglog_t **log)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s;

    o.commit_interval_us = interval_us;
    o.unawaited_delay_us = delay_us;
    s = th_store(&o);
    *log = th_open_log(s, "q", &dur, NULL, NULL);
    return s;
}

/*
 * Records nothing awaits (acks, messages published without confirms) stay
 * in memory, readable, until an awaited record comes; then one batch and
 * one sync take them all. Without the hold, 1..3 cost a sync of their own.
 */
START_TEST(unawaited_records_wait_for_an_awaited_one)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(0, 60 * 1000 * 1000, &log);
    int64_t due;

    th_append_n(log, 1, 3);
    wr_store_flush(s);
    ck_assert(wr_store_idle(s));
    due = wr_store_flush_due_us(s);
    ck_assert_int_gt(due, 50 * 1000 * 1000);
    ck_assert_int_le(due, 60 * 1000 * 1000);
    ck_assert_int_eq(th_fault_syncs(&fault), 0);
    th_check_read(log, 2);
    th_append_n(log, 4, 4);
    wr_store_awaited(s);
    th_sync(s, log, 4);
    ck_assert_int_eq(th_fault_syncs(&fault), 1);
    ck_assert_int_eq(wr_store_flush_due_us(s), -1);
    wr_store_close(s);
}
END_TEST

/* Held records go once they have waited the delay, awaited or not. */
START_TEST(unawaited_records_go_when_due)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(0, 50 * 1000, &log);
    int64_t t0 = now_ms(), due;

    th_append_n(log, 1, 2);
    wr_store_flush(s);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 0);
    /* The owner flushes when the store says (as broker/node/durable.c arms a timer). */
    while ((due = wr_store_flush_due_us(s)) > 0) {
        ck_assert_int_lt(now_ms() - t0, 10000);
        poll(NULL, 0, (int)(due / 1000) + 1);
        wr_store_flush(s);
    }
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_uint_eq(dur.index, 2);
    ck_assert_int_ge(now_ms() - t0, 50);
    wr_store_close(s);
}
END_TEST

static void reopen_expect(const wr_store_opts_t *o, const char *name, uint64_t last);

/* Closing the store writes held records too. */
START_TEST(close_writes_held_records)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s;
    wr_seglog_t *log;

    o.unawaited_delay_us = 60 * 1000 * 1000;
    s = th_store(&o);
    log = th_open_log(s, "q", &dur, NULL, NULL);
    th_append_n(log, 1, 3);
    wr_store_flush(s);
    ck_assert_int_gt(wr_store_flush_due_us(s), 0);
    wr_store_close(s);
    reopen_expect(&o, "q", 3);
}
END_TEST

/* WR_STORE_PACE_BYTES of them are not held: memory stays bounded. */
START_TEST(many_unawaited_bytes_not_held)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(0, 60 * 1000 * 1000, &log);
    static char rec[4096];
    uint64_t index = 0;

    while (wr_store_pending_bytes(s) < WR_STORE_PACE_BYTES)
        ck_assert_int_eq(wr_seglog_append(log, rec, sizeof(rec), &index), WR_OK);
    th_sync(s, log, index);
    ck_assert_int_eq(wr_store_flush_due_us(s), -1);
    wr_store_close(s);
}
END_TEST

/* A small batch that piled up behind a sync (awaited or not) starts a
 * commit interval after the last one began. */
static void check_backlog_paced(bool awaited)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(300 * 1000, 0, &log);
    int64_t t0;

    t0 = backlog_behind_sync(s, log, 5, 0, awaited);
    th_wait_dispatch(s);
    ck_assert_uint_eq(dur.index, 15);
    ck_assert_int_ge(now_ms() - t0, 300);
    ck_assert_int_eq(th_fault_syncs(&fault), 2);
    wr_store_close(s);
}

START_TEST(backlog_batch_waits_commit_interval)
{
    check_backlog_paced(false);
}
END_TEST

/* Steady load of records something waits for (confirms) is paced as any. */
START_TEST(awaited_backlog_still_paced)
{
    check_backlog_paced(true);
}
END_TEST

/*
 * A lone publisher whose consumer acks: the ack records nobody waits for
 * pile up behind its message's sync and are held for the interval; its next
 * message, which it waits for, does not wait for it: one batch and one sync
 * take it and the held acks at once. That batch did not wait out the
 * interval, so the message after it is not paced either (when the store
 * took it for a paced batch, every later message waited the interval:
 * test_durability.py's lone publisher, 1 s a message).
 */
START_TEST(awaited_batch_not_held_behind_unawaited)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(60 * 1000 * 1000, 0, &log);
    int64_t t0;

    t0 = backlog_behind_sync(s, log, 5, 0, false); /* 11..15 now held for the interval */
    ck_assert_int_gt(wr_store_flush_due_us(s), 0);
    th_append_n(log, 16, 20);
    wr_store_awaited(s);
    th_sync(s, log, 20);
    ck_assert_int_eq(th_fault_syncs(&fault), 2);
    th_append_n(log, 21, 21);
    wr_store_awaited(s);
    wr_store_flush(s);
    ck_assert_int_eq(wr_store_flush_due_us(s), -1);
    th_sync(s, log, 21);
    ck_assert_int_lt(now_ms() - t0, 10 * 1000);
    wr_store_close(s);
}
END_TEST

/*
 * Records that arrive while a paced batch waits for the commit interval go
 * in that batch, not in the next one an interval later: the batch waits in
 * memory and takes its records when it goes. Two syncs, and 16..20 durable
 * with 11..15; when the storage thread held the batch, 16..20 made a third
 * batch, an interval after the second.
 */
START_TEST(records_arriving_during_the_interval_make_the_batch)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(300 * 1000, 0, &log);
    int64_t t0;

    t0 = backlog_behind_sync(s, log, 5, 0, true); /* 11..15 paced behind 1..10 */
    th_append_n(log, 16, 20);
    wr_store_awaited(s);
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_uint_eq(dur.index, 20);
    ck_assert_int_ge(now_ms() - t0, 300);
    ck_assert_int_eq(th_fault_syncs(&fault), 2);
    wr_store_close(s);
}
END_TEST

/* A backlog of WR_STORE_PACE_BYTES or more goes at once: pacing never slows a full disk. */
START_TEST(large_backlog_not_paced)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(60 * 1000 * 1000, 0, &log);
    int64_t t0;

    t0 = backlog_behind_sync(s, log, WR_STORE_PACE_BYTES / 4096 + 1, 4096, false);
    th_wait_dispatch(s);
    ck_assert_uint_eq(dur.index, 10 + WR_STORE_PACE_BYTES / 4096 + 1);
    ck_assert_int_lt(now_ms() - t0, 10 * 1000);
    wr_store_close(s);
}
END_TEST

/* A batch flushed after the last one completed (a lone client waiting for its confirm) is not held. */
START_TEST(batch_after_idle_not_paced)
{
    wr_seglog_t *log;
    wr_store_t *s = store_q(60 * 1000 * 1000, 0, &log);
    int64_t t0;

    t0 = now_ms();
    for (uint64_t i = 1; i <= 5; i++) {
        th_append_n(log, i, i);
        th_sync(s, log, i);
    }
    ck_assert_int_lt(now_ms() - t0, 10 * 1000);
    wr_store_close(s);
}
END_TEST

static void reopen_expect(const wr_store_opts_t *o, const char *name, uint64_t last)
{
    th_replay_t *r = calloc(1, sizeof(*r));
    wr_seglog_recovery_t rec;
    wr_store_opts_t now = *o;
    wr_store_t *s;
    wr_seglog_t *log;

    now.unawaited_delay_us = 0; /* th_sync below flushes without awaiting */
    s = th_store(&now);
    log = th_open_log(s, name, &dur, r, &rec);

    ck_assert_uint_eq(rec.last_index, last);
    ck_assert_uint_eq(r->count, last);
    for (uint64_t i = 1; i <= last; i++) {
        char p[64];
        th_payload(p, i);
        ck_assert_uint_eq(r->index[i - 1], i);
        ck_assert_str_eq(r->data[i - 1], p);
    }
    /* The log is usable again after the failure. */
    th_append_n(log, last + 1, last + 2);
    th_sync(s, log, last + 2);
    free(r);
    wr_store_close(s);
}

/* Closing a log does not wait out the interval of a paced batch. */
START_TEST(close_cuts_pacing_short)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s;
    wr_seglog_t *log;
    int64_t t0;

    o.commit_interval_us = 60 * 1000 * 1000;
    s = th_store(&o);
    log = th_open_log(s, "q", &dur, NULL, NULL);
    t0 = backlog_behind_sync(s, log, 5, 0, false);
    ck_assert_int_eq(wr_seglog_close(log), WR_OK);
    ck_assert_int_lt(now_ms() - t0, 10 * 1000);
    wr_store_close(s);
    reopen_expect(&o, "q", 15);
}
END_TEST

/* Reopens log "q": records 1..upto and from..last replay, nothing else. */
static void reopen_around_loss(const wr_store_opts_t *o, uint64_t upto, uint64_t from, uint64_t last)
{
    th_replay_t *r = calloc(1, sizeof(*r));
    wr_seglog_recovery_t rec;
    wr_store_t *s = th_store(o);

    th_open_log(s, "q", &dur, r, &rec);
    ck_assert_uint_eq(rec.last_index, last);
    ck_assert_uint_eq(r->count, upto + last - from + 1);
    for (size_t k = 0; k < r->count; k++) {
        uint64_t i = k < upto ? k + 1 : from + (k - upto);
        char p[64];
        th_payload(p, i);
        ck_assert_uint_eq(r->index[k], i);
        ck_assert_str_eq(r->data[k], p);
    }
    free(r);
    wr_store_close(s);
}

static void io_error(bool on_sync, int err, const char *text)
{
    wr_store_opts_t o = th_opts(256, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_buf_t b = WR_BUF_INIT;
    int files;

    th_append_n(log, 1, 5);
    th_sync(s, log, 5);
    files = th_count_files(th_logdir("q"), ".seg");
    /* The failing batch also starts new segment files. */
    th_append_n(log, 6, 30);
    fault.err = err;
    if (on_sync)
        fault.fail_sync = 1;
    else
        fault.fail_write = 1;
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.calls, 2);
    ck_assert_int_eq(dur.status, WR_EIO);
    ck_assert_uint_eq(dur.index, 30);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 5);
    ck_assert_msg(th_msgs_has(&msgs, text), "%s", msgs.text);
    ck_assert_msg(th_msgs_has(&msgs, "records 6..30 of log 'q' are not durable"), "%s", msgs.text);
    /* The durable prefix still reads, the lost records do not. */
    th_check_read(log, 5);
    ck_assert_int_eq(wr_seglog_read(log, 20, &b), WR_EIO);
    ck_assert_int_eq(th_count_files(th_logdir("q"), ".seg"), files);
    /* Once writes succeed again the log goes on, without a restart. */
    th_append_n(log, 31, 32);
    th_sync(s, log, 32);
    ck_assert_int_eq(dur.calls, 3);
    ck_assert_int_eq(dur.status, WR_OK);
    th_check_read(log, 31);
    ck_assert_int_eq(wr_seglog_read(log, 20, &b), WR_EIO);
    ck_assert_int_eq(wr_seglog_close(log), WR_EIO); /* some records never became durable */
    wr_store_close(s);
    /* The stored prefix and what came after the error come back, nothing else. */
    memset(&msgs, 0, sizeof(msgs));
    reopen_around_loss(&o, 5, 31, 32);
    ck_assert_msg(msgs.count == 0, "%s", msgs.text);
    wr_buf_free(&b);
}

START_TEST(write_error)
{
    io_error(false, ENOSPC, "No space left on device");
}
END_TEST

START_TEST(fsync_error)
{
    io_error(true, EIO, "Input/output error");
}
END_TEST

/* A failing disk write in one log does not fail the other logs of the batch. */
START_TEST(errors_stay_in_their_log)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *a = th_open_log(s, "a", &dur, NULL, NULL);
    th_durable_t db = {0};
    wr_seglog_t *b = th_open_log(s, "b", &db, NULL, NULL);

    th_append_n(a, 1, 10);
    th_append_n(b, 1, 10);
    snprintf(fault.match, sizeof(fault.match), "/logs/b/");
    fault.err = EIO;
    fault.fail_sync = 1;
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.status, WR_OK);
    ck_assert_uint_eq(dur.index, 10);
    ck_assert_int_eq(db.status, WR_EIO);
    ck_assert_uint_eq(wr_seglog_durable_index(b), 0);
    th_append_n(a, 11, 12);
    th_sync(s, a, 12);
    ck_assert_int_eq(wr_seglog_close(b), WR_EIO);
    ck_assert_int_eq(wr_seglog_close(a), WR_OK);
    wr_store_close(s);
}
END_TEST

/*
 * A failure that persists (here the fsync of logs/ after a new log's
 * directory, as with a full descriptor table) is retried after a second,
 * then twice as long each time, however often the owner flushes: not at
 * every flush, each with a message. The lost record is named once; the
 * retries lose nothing and say when the next comes. Once the fsync works,
 * new records take the waiting work along, and the log goes on.
 */
START_TEST(failing_work_is_retried_less_and_less)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    struct pollfd p = {wr_store_notify_fd(s), POLLIN, 0};
    wr_seglog_t *log;
    int64_t t0, at[2] = {0, 0};
    int first, retries = 0, flushes = 0;

    fault.err = EMFILE;
    fault.fail_logs_dir = 1000;
    log = th_open_log(s, "q", &dur, NULL, NULL);
    th_append_n(log, 1, 1);
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_eq(dur.status, WR_EIO);
    ck_assert_msg(th_msgs_has(&msgs, "records 1..1 of log 'q' are not durable"), "%s", msgs.text);
    first = th_fault_logs_dir_syncs(&fault);
    /* An owner that flushes at every loop pass (other logs keep it busy),
     * until two retries came. */
    t0 = now_ms();
    while (retries < 2) {
        ck_assert_int_lt(now_ms() - t0, 10000);
        wr_store_flush(s);
        flushes++;
        if (poll(&p, 1, 1) == 1)
            wr_store_dispatch(s);
        if (th_fault_logs_dir_syncs(&fault) - first > retries)
            at[retries++] = now_ms();
    }
    /* Not one per flush: the first a second after the failure, the next two after that. */
    ck_assert_int_gt(flushes, 500);
    ck_assert_int_ge(at[0] - t0, 900);
    ck_assert_int_ge(at[1] - at[0], 1900);
    ck_assert_int_eq(th_fault_logs_dir_syncs(&fault) - first, 2);
    /* One message per failure; only the first names lost records. */
    ck_assert_msg(msgs.count == 3 && th_msgs_has(&msgs, "log 'q' retries that in 2000 ms") &&
                      th_msgs_has(&msgs, "log 'q' retries that in 4000 ms") &&
                      strstr(strstr(msgs.text, "are not durable") + 1, "are not durable") == NULL,
                  "%s", msgs.text);
    ck_assert_int_gt(wr_store_flush_due_us(s), 0);
    /* The disk is back. New records do not wait for the retry (due 4 s
     * after the last): they go at once and take the waiting work along. */
    fault.fail_logs_dir = 0;
    t0 = now_ms();
    th_append_n(log, 2, 3);
    th_sync(s, log, 3);
    ck_assert_int_lt(now_ms() - t0, 2000);
    ck_assert_int_eq(dur.status, WR_OK);
    ck_assert_int_eq(th_fault_logs_dir_syncs(&fault) - first, 3);
    ck_assert_int_eq(wr_store_flush_due_us(s), -1);
    wr_store_close(s);
}
END_TEST

/* Close hands off what was never flushed and waits for it; the records survive. */
START_TEST(close_makes_durable)
{
    wr_store_opts_t o = th_opts(300, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);

    th_append_n(log, 1, 40);
    ck_assert_int_eq(wr_seglog_close(log), WR_OK);
    ck_assert_int_eq(dur.calls, 0); /* no callbacks after close */
    ck_assert_uint_eq(wr_store_pending_bytes(s), 0);
    wr_store_close(s);
    reopen_expect(&o, "q", 40);
}
END_TEST

/* Closing the store with open logs closes them the same way. */
START_TEST(store_close_flushes_logs)
{
    wr_store_opts_t o = th_opts(300, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);

    th_append_n(log, 1, 25);
    wr_store_flush(s); /* one batch in flight, the rest still pending */
    th_append_n(log, 26, 33);
    wr_store_close(s);
    reopen_expect(&o, "q", 33);
}
END_TEST

static int closes;

static void close_in_callback(void *ud, wr_seglog_t *log, uint64_t index, int status)
{
    closes++;
    ck_assert_int_eq(wr_seglog_close(log), WR_OK);
}

/* A callback may close its own log, and a later log's callback still runs. */
START_TEST(close_inside_callback)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_cbs_t cbs = {NULL, close_in_callback, NULL};
    char err[256];
    wr_seglog_t *a = wr_seglog_open(s, "a", &cbs, NULL, err, sizeof(err));
    wr_seglog_t *b = wr_seglog_open(s, "b", &cbs, NULL, err, sizeof(err));
    uint64_t index;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(wr_seglog_append(a, "x", 1, &index), WR_OK);
    ck_assert_int_eq(wr_seglog_append(b, "y", 1, &index), WR_OK);
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_eq(closes, 2);
    wr_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-sync");
    TCase *tc = tcase_create("sync");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_batch_one_callback);
    tcase_add_test(tc, one_sync_per_dirty_file);
    tcase_add_test(tc, callback_waits_for_fsync);
    tcase_add_test(tc, one_flush_per_batch);
    tcase_add_test(tc, growing_log_extends_less_often);
    tcase_add_test(tc, failed_flush_fails_every_rider);
    tcase_add_test(tc, backlog_batch_waits_commit_interval);
    tcase_add_test(tc, records_arriving_during_the_interval_make_the_batch);
    tcase_add_test(tc, large_backlog_not_paced);
    tcase_add_test(tc, batch_after_idle_not_paced);
    tcase_add_test(tc, awaited_backlog_still_paced);
    tcase_add_test(tc, awaited_batch_not_held_behind_unawaited);
    tcase_add_test(tc, close_cuts_pacing_short);
    tcase_add_test(tc, unawaited_records_wait_for_an_awaited_one);
    tcase_add_test(tc, unawaited_records_go_when_due);
    tcase_add_test(tc, close_writes_held_records);
    tcase_add_test(tc, many_unawaited_bytes_not_held);
    tcase_add_test(tc, write_error);
    tcase_add_test(tc, fsync_error);
    tcase_add_test(tc, errors_stay_in_their_log);
    tcase_add_test(tc, failing_work_is_retried_less_and_less);
    tcase_add_test(tc, close_makes_durable);
    tcase_add_test(tc, store_close_flushes_logs);
    tcase_add_test(tc, close_inside_callback);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
