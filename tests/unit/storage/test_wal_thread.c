/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/wal_thread.c on the real disk: batches written on the
 * storage thread and completed through the eventfd, appends made during a
 * sync leaving together as the next batch, a failed sync reported to every
 * group, and a stop with a batch in flight. Run under ASan and TSan too.
 */
#include <check.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "storage/wal_thread.h"
#include "tests/unit/storage/helpers.h"
#include "tests/unit/runner.h"

#define GROUPS 100

/* The POSIX vfs, with a datasync that fails once armed (set by the owner, read by the thread). */
typedef struct {
    wr_vfs_t vfs;
    wr_vfs_ops_t ops;
    atomic_bool fail;
} fail_vfs_t;

static fail_vfs_t failing;

static int failing_datasync(wr_vfs_file_t *f)
{
    return atomic_load(&failing.fail) ? WR_EIO : wr_vfs_posix()->ops->datasync(f);
}

typedef struct {
    wr_wal_t *w;
    wr_wal_thread_t *t;
    uint64_t durable[GROUPS + 1]; /* last index reported durable per group */
    int eio;
    char msgs[8192];
} fx_t;

static void on_durable(void *ud, const wr_wal_notice_t *n, int status)
{
    fx_t *fx = ud;

    if (status != WR_OK)
        fx->eio++;
    else if (n->index > fx->durable[n->group])
        fx->durable[n->group] = n->index;
}

static void on_msg(void *ud, const char *text)
{
    fx_t *fx = ud;
    size_t used = strlen(fx->msgs);

    snprintf(fx->msgs + used, sizeof(fx->msgs) - used, "%s\n", text);
}

static void fx_open(fx_t *fx, const wr_vfs_t *vfs)
{
    wr_wal_opts_t o = {vfs, th_tmpdir_path(), 1 << 20, 0, 7, on_durable, fx, on_msg, fx, 0};

    ck_assert_int_eq(wr_wal_open(&o, &fx->w, NULL), WR_OK);
    ck_assert_int_eq(wr_wal_thread_new(fx->w, 1 << 20, &fx->t), WR_OK);
}

static void fx_close(fx_t *fx)
{
    wr_wal_thread_free(fx->t);
    wr_wal_close(fx->w);
}

/* Waits (10 s at most) for the fd, then dispatches; returns what dispatch did. */
static int wait_dispatch_rc(fx_t *fx)
{
    struct pollfd p = {wr_wal_thread_fd(fx->t), POLLIN, 0};

    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    return wr_wal_thread_dispatch(fx->t);
}

static void wait_dispatch(fx_t *fx)
{
    ck_assert_int_eq(wait_dispatch_rc(fx), WR_OK);
}

static void append(fx_t *fx, uint64_t g, uint64_t i)
{
    uint64_t v = g * 1000000 + i;

    ck_assert_int_eq(wr_wal_append(fx->w, g, 1, i, &v, sizeof(v)), WR_OK);
}

START_TEST(appends_during_a_sync_leave_as_one_batch)
{
    fx_t fx = {0};

    th_tmpdir();
    fx_open(&fx, wr_vfs_posix());
    append(&fx, 1, 1);
    ck_assert_int_eq(wr_wal_thread_kick(fx.t), WR_OK);
    /* The first batch is in flight: everything appended now waits for the next. */
    for (uint64_t g = 1; g <= GROUPS; g++)
        for (uint64_t i = g == 1 ? 2 : 1; i <= 10; i++)
            append(&fx, g, i);
    ck_assert_int_eq(wr_wal_thread_kick(fx.t), WR_OK); /* nothing: one batch at a time */
    while (wr_wal_thread_batches(fx.t) < 2)
        wait_dispatch(&fx);
    ck_assert_uint_eq(wr_wal_thread_batches(fx.t), 2);
    for (uint64_t g = 1; g <= GROUPS; g++)
        ck_assert_uint_eq(fx.durable[g], 10);
    fx_close(&fx);
    memset(fx.durable, 0, sizeof(fx.durable));
    fx_open(&fx, wr_vfs_posix());
    for (uint64_t g = 1; g <= GROUPS; g++) {
        wr_wal_group_info_t gi;
        ck_assert_int_eq(wr_wal_group_info(fx.w, g, &gi), WR_OK);
        ck_assert_uint_eq(gi.last, 10);
    }
    fx_close(&fx);
    th_rmdir();
}
END_TEST

START_TEST(durable_callbacks_may_append_and_the_loop_keeps_going)
{
    fx_t fx = {0};
    uint64_t next = 1;

    th_tmpdir();
    fx_open(&fx, wr_vfs_posix());
    /* A closed loop: each group's next entry goes once its last is durable, 300 rounds. */
    while (next <= 300) {
        for (uint64_t g = 1; g <= 10; g++)
            if (fx.durable[g] + 1 == next)
                append(&fx, g, next);
        ck_assert_int_eq(wr_wal_thread_kick(fx.t), WR_OK);
        wait_dispatch(&fx);
        next = fx.durable[1] + 1;
    }
    for (uint64_t g = 1; g <= 10; g++) {
        uint64_t term;
        wr_buf_t b = WR_BUF_INIT;
        ck_assert_uint_eq(fx.durable[g], 300);
        ck_assert_int_eq(wr_wal_read(fx.w, g, 150, &term, &b), WR_OK);
        ck_assert_uint_eq(*(uint64_t *)(void *)b.data, g * 1000000 + 150);
        wr_buf_free(&b);
    }
    fx_close(&fx);
    th_rmdir();
}
END_TEST

START_TEST(failed_sync_reaches_every_group)
{
    fx_t fx = {0};

    th_tmpdir();
    failing.ops = *wr_vfs_posix()->ops;
    failing.ops.datasync = failing_datasync;
    failing.vfs = (wr_vfs_t){&failing.ops, NULL};
    atomic_store(&failing.fail, false);
    fx_open(&fx, &failing.vfs);
    atomic_store(&failing.fail, true);
    for (uint64_t g = 1; g <= 3; g++)
        append(&fx, g, 1);
    ck_assert_int_eq(wr_wal_thread_kick(fx.t), WR_OK);
    ck_assert_int_eq(wait_dispatch_rc(&fx), WR_EIO);
    ck_assert_int_eq(fx.eio, 3);
    ck_assert_ptr_nonnull(strstr(fx.msgs, "the WAL accepts no more writes"));
    ck_assert_int_eq(wr_wal_append(fx.w, 1, 1, 2, "x", 1), WR_EIO);
    fx_close(&fx);
    th_rmdir();
}
END_TEST

START_TEST(stop_completes_the_batch_in_flight)
{
    fx_t fx = {0};

    th_tmpdir();
    fx_open(&fx, wr_vfs_posix());
    append(&fx, 5, 1);
    ck_assert_int_eq(wr_wal_thread_kick(fx.t), WR_OK);
    wr_wal_thread_free(fx.t);
    ck_assert_uint_eq(fx.durable[5], 1);
    wr_wal_close(fx.w);
    fx_open(&fx, wr_vfs_posix());
    {
        wr_wal_group_info_t gi;
        ck_assert_int_eq(wr_wal_group_info(fx.w, 5, &gi), WR_OK);
        ck_assert_uint_eq(gi.durable, 1);
    }
    fx_close(&fx);
    th_rmdir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wal_thread");
    TCase *tc = tcase_create("all");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, appends_during_a_sync_leave_as_one_batch);
    tcase_add_test(tc, durable_callbacks_may_append_and_the_loop_keeps_going);
    tcase_add_test(tc, failed_sync_reaches_every_group);
    tcase_add_test(tc, stop_completes_the_batch_in_flight);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
