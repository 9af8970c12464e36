/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/store.c: the lock file (a second open names the
 * directory and the holder's PID), the VERSION file (written when new, unknown
 * versions and garbage refused), options, leftovers of destroyed logs, the
 * notify fd / dispatch contract, listing and removing stored logs, and the
 * owner's own files.
 */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/status.h"
#include "helpers.h"
#include "storage/seglog.h"
#include "storage/store.h"
#include "tests/unit/runner.h"

static const char *dir;

static void setup(void)
{
    dir = th_tmpdir();
}

static void teardown(void)
{
    th_rmdir();
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void read_file(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

START_TEST(second_open_is_refused)
{
    char err[512] = "", want[64], path[4200];
    wr_store_t *a = th_store(NULL), *b;

    b = wr_store_open(dir, NULL, err, sizeof(err));
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(err, dir) != NULL, "message names the directory: %s", err);
    snprintf(want, sizeof(want), "pid %ld", (long)getpid());
    ck_assert_msg(strstr(err, want) != NULL, "message names the holder: %s", err);
    wr_store_close(a);
    /* Closing releases the lock. */
    b = th_store(NULL);
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    read_file(path, err, sizeof(err));
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    ck_assert_str_eq(err, want);
    wr_store_close(b);
}
END_TEST

/* Another process cannot open a directory this one holds. */
START_TEST(other_process_is_refused)
{
    wr_store_t *a = th_store(NULL);
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[512] = "", want[64];
        wr_store_t *b = wr_store_open(dir, NULL, err, sizeof(err));
        snprintf(want, sizeof(want), "pid %ld", (long)getppid());
        _exit(b == NULL && strstr(err, want) != NULL && strstr(err, dir) != NULL ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    wr_store_close(a);
}
END_TEST

START_TEST(version_file_written)
{
    char path[4200], text[64];
    wr_store_t *s = th_store(NULL);

    wr_store_close(s);
    snprintf(path, sizeof(path), "%s/VERSION", dir);
    read_file(path, text, sizeof(text));
    ck_assert_str_eq(text, "warren-storage 1\n");
    snprintf(path, sizeof(path), "%s/logs", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* Reopening an existing store reads it back. */
    wr_store_close(th_store(NULL));
}
END_TEST

START_TEST(unknown_version_refused)
{
    char path[4200], err[512] = "";

    wr_store_close(th_store(NULL));
    snprintf(path, sizeof(path), "%s/VERSION", dir);
    write_file(path, "warren-storage 2\n");
    ck_assert_ptr_null(wr_store_open(dir, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "format version 2") != NULL && strstr(err, dir) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "reads version 1") != NULL, "%s", err);

    write_file(path, "warren-storage 1 and more\n");
    ck_assert_ptr_null(wr_store_open(dir, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not a warren storage version file") != NULL, "%s", err);

    unlink(path);
    ck_assert_ptr_null(wr_store_open(dir, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "no VERSION file") != NULL, "%s", err);
}
END_TEST

START_TEST(bad_options)
{
    char err[512] = "";
    wr_store_opts_t o = {0};

    o.segment_size = 10;
    ck_assert_ptr_null(wr_store_open(dir, &o, err, sizeof(err)));
    ck_assert_msg(strstr(err, "segment_size") != NULL, "%s", err);
    o.segment_size = 0;
    o.compact_live_percent = 100;
    ck_assert_ptr_null(wr_store_open(dir, &o, err, sizeof(err)));
    ck_assert_msg(strstr(err, "compact_live_percent") != NULL, "%s", err);
    o.compact_live_percent = 0;
    o.commit_interval_us = INT64_MAX / 1000 + 1;
    ck_assert_ptr_null(wr_store_open(dir, &o, err, sizeof(err)));
    ck_assert_msg(strstr(err, "commit_interval_us") != NULL, "%s", err);
}
END_TEST

START_TEST(creates_missing_directory)
{
    char sub[4200], err[512] = "";
    wr_store_t *s;

    snprintf(sub, sizeof(sub), "%s/data", dir);
    s = wr_store_open(sub, NULL, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    wr_store_close(s);
    snprintf(sub, sizeof(sub), "%s/no/such/parent", dir);
    ck_assert_ptr_null(wr_store_open(sub, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, sub) != NULL, "%s", err);
}
END_TEST

START_TEST(leftover_trash_removed)
{
    char path[4200];

    wr_store_close(th_store(NULL));
    snprintf(path, sizeof(path), "%s/logs/.trash-3-orders", dir);
    ck_assert_int_eq(mkdir(path, 0750), 0);
    snprintf(path, sizeof(path), "%s/logs/.trash-3-orders/0000000000000001.seg", dir);
    write_file(path, "junk");
    wr_store_close(th_store(NULL));
    snprintf(path, sizeof(path), "%s/logs/.trash-3-orders", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(idle_dispatch_is_harmless)
{
    wr_store_t *s = th_store(NULL);
    struct pollfd p = {wr_store_notify_fd(s), POLLIN, 0};

    ck_assert_int_ge(p.fd, 0);
    ck_assert_int_eq(poll(&p, 1, 0), 0);
    wr_store_flush(s); /* nothing to do: no batch, no wakeup */
    ck_assert_int_eq(poll(&p, 1, 0), 0);
    wr_store_dispatch(s);
    ck_assert_uint_eq(wr_store_pending_bytes(s), 0);
    wr_store_close(s);
    wr_store_close(NULL);
}
END_TEST

static void collect(void *ud, const char *name)
{
    char *names = ud;

    strcat(names, name);
    strcat(names, ";");
}

START_TEST(list_and_remove_logs)
{
    wr_store_t *s = th_store(NULL);
    char err[512] = "", names[256] = "", path[4200];
    wr_seglog_t *a, *b;
    uint64_t index;

    a = wr_seglog_open(s, "a", NULL, NULL, err, sizeof(err));
    b = wr_seglog_open(s, "b", NULL, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(wr_seglog_append(b, "x", 1, &index), WR_OK);
    ck_assert_int_eq(wr_seglog_close(b), WR_OK);
    ck_assert_int_eq(wr_store_logs(s, collect, names, err, sizeof(err)), WR_OK);
    ck_assert_msg(strcmp(names, "a;b;") == 0 || strcmp(names, "b;a;") == 0, "%s", names);
    ck_assert_int_eq(wr_store_remove_log(s, "a"), WR_EEXIST); /* open */
    ck_assert_int_eq(wr_store_remove_log(s, "c"), WR_ENOENT);
    ck_assert_int_eq(wr_store_remove_log(s, "../a"), WR_ENOENT);
    ck_assert_int_eq(wr_store_remove_log(s, "b"), WR_OK);
    /* Out of the way at once, so the name is free; gone after the next batch. */
    names[0] = '\0';
    ck_assert_int_eq(wr_store_logs(s, collect, names, err, sizeof(err)), WR_OK);
    ck_assert_str_eq(names, "a;");
    ck_assert_int_eq(wr_store_remove_log(s, "b"), WR_ENOENT);
    ck_assert(wr_store_idle(s));
    wr_store_flush(s);
    ck_assert(!wr_store_idle(s));
    /* The close above left the notify fd readable: dispatch until applied. */
    while (!wr_store_idle(s))
        th_wait_dispatch(s);
    ck_assert_int_eq(th_count_files(th_logdir(""), ""), 3); /* ., .. and a */
    snprintf(path, sizeof(path), "%s/logs/a", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    wr_store_close(s);
}
END_TEST

START_TEST(owner_file_written_durably)
{
    wr_store_t *s = th_store(NULL);
    char err[512] = "", text[64], path[4200];

    ck_assert_int_eq(wr_store_write_file(s, "topology.json", "{}", 2, err, sizeof(err)), WR_OK);
    snprintf(path, sizeof(path), "%s/topology.json", dir);
    read_file(path, text, sizeof(text));
    ck_assert_str_eq(text, "{}");
    ck_assert_int_eq(wr_store_write_file(s, "topology.json", "[1]", 3, err, sizeof(err)), WR_OK);
    read_file(path, text, sizeof(text));
    ck_assert_str_eq(text, "[1]");
    snprintf(path, sizeof(path), "%s/topology.json.tmp", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(wr_store_write_file(s, "LOCK", "x", 1, err, sizeof(err)), WR_ESYNTAX);
    ck_assert_int_eq(wr_store_write_file(s, "logs", "x", 1, err, sizeof(err)), WR_ESYNTAX);
    ck_assert_int_eq(wr_store_write_file(s, "a/b", "x", 1, err, sizeof(err)), WR_ESYNTAX);
    ck_assert_msg(strstr(err, "'a/b'") != NULL, "%s", err);
    wr_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-store");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, second_open_is_refused);
    tcase_add_test(tc, other_process_is_refused);
    tcase_add_test(tc, version_file_written);
    tcase_add_test(tc, unknown_version_refused);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, creates_missing_directory);
    tcase_add_test(tc, leftover_trash_removed);
    tcase_add_test(tc, idle_dispatch_is_harmless);
    tcase_add_test(tc, list_and_remove_logs);
    tcase_add_test(tc, owner_file_written_durably);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
