/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/recover.c: index rebuilt after reopen; a torn tail at
 * every byte of the last record, truncated and reported; mid-segment corruption
 * losing only the damaged records; bad headers, future versions, half-created
 * files; replay order and stop; a process killed in the middle of compaction.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/status.h"
#include "helpers.h"
#include "core/crc32c.h"
#include "storage/seglog.h"
#include "storage/store.h"
#include "tests/unit/runner.h"

#define REC 31 /* a th_payload record with its framing */
#define HDR 40

static th_msgs_t msgs;
static th_replay_t *rep;

static void setup(void)
{
    th_tmpdir();
    memset(&msgs, 0, sizeof(msgs));
    rep = calloc(1, sizeof(*rep));
}

static void teardown(void)
{
    free(rep);
    th_rmdir();
}

static wr_seglog_t *open_log(wr_store_t *s, wr_seglog_recovery_t *rec)
{
    memset(rep, 0, sizeof(*rep));
    return th_open_log(s, "q", NULL, rep, rec);
}

/* Writes records 1..n into log "q" of a fresh store and closes it. */
static void write_log(const wr_store_opts_t *o, uint64_t n)
{
    wr_store_t *s = th_store(o);
    wr_seglog_t *log = open_log(s, NULL);

    th_append_n(log, 1, n);
    wr_store_close(s);
}

static const char *seg_path(uint64_t seq)
{
    static char path[4300];

    snprintf(path, sizeof(path), "%s/%016llx.seg", th_logdir("q"), (unsigned long long)seq);
    return path;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* Asserts the replay delivered exactly the records in want (ascending), with their payloads. */
static void expect_replayed(const uint64_t *want, size_t n)
{
    ck_assert_uint_eq(rep->count, n);
    for (size_t i = 0; i < n; i++) {
        char p[64];
        th_payload(p, want[i]);
        ck_assert_uint_eq(rep->index[i], want[i]);
        ck_assert_str_eq(rep->data[i], p);
    }
}

START_TEST(index_rebuilt_after_reopen)
{
    wr_store_opts_t o = th_opts(512, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = open_log(s, NULL);
    wr_seglog_recovery_t rec;
    wr_buf_t b = WR_BUF_INIT;
    uint64_t bytes = 0;

    for (uint64_t i = 1; i <= 300; i++) {
        char p[64];
        uint64_t index;
        size_t len = (size_t)(i * 7 % 60);
        for (size_t k = 0; k < len; k++)
            p[k] = (char)('a' + (i + k) % 26);
        bytes += len;
        ck_assert_int_eq(wr_seglog_append(log, p, len, &index), WR_OK);
    }
    wr_store_close(s);

    s = th_store(&o);
    log = open_log(s, &rec);
    ck_assert_uint_eq(rec.records, 300);
    ck_assert_uint_eq(rec.bytes, bytes);
    ck_assert_uint_eq(rec.first_index, 1);
    ck_assert_uint_eq(rec.last_index, 300);
    ck_assert_uint_eq(rec.segments, (uint32_t)th_count_files(th_logdir("q"), ".seg"));
    ck_assert_uint_gt(rec.segments, 10);
    ck_assert_uint_eq(rec.truncated_bytes, 0);
    ck_assert_uint_eq(rec.lost_records, 0);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 300);
    for (uint64_t i = 1; i <= 300; i++) {
        size_t len = (size_t)(i * 7 % 60);
        ck_assert_uint_eq(rep->index[i - 1], i);
        ck_assert_uint_eq(strlen(rep->data[i - 1]), len);
        ck_assert_int_eq(wr_seglog_read(log, i, &b), WR_OK);
        ck_assert_uint_eq(b.len, len);
        for (size_t k = 0; k < len; k++)
            ck_assert_int_eq(b.data[k], 'a' + (i + k) % 26);
    }
    ck_assert_int_eq(msgs.count, 0);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

/* Cuts the file at every offset inside the last record: N-1 records come back, the cut is reported. */
START_TEST(torn_tail_at_every_offset)
{
    enum { N = 6 };
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    const off_t start = HDR + (N - 1) * REC, end = start + REC;
    uint64_t want[N];
    char text[128];

    for (size_t i = 0; i < N; i++)
        want[i] = i + 1;
    write_log(&o, N);
    for (off_t cut = start; cut < end; cut++) {
        wr_store_t *s;
        wr_seglog_t *log;
        wr_seglog_recovery_t rec;
        struct stat st;

        /* Rebuild the full file, then cut it. */
        th_rmdir();
        th_tmpdir();
        write_log(&o, N);
        ck_assert_int_eq(truncate(seg_path(1), cut), 0);
        memset(&msgs, 0, sizeof(msgs));
        s = th_store(&o);
        log = open_log(s, &rec);
        expect_replayed(want, N - 1);
        ck_assert_uint_eq(rec.last_index, N - 1);
        ck_assert_uint_eq(rec.truncated_bytes, (uint64_t)(cut - start));
        if (cut == start) {
            ck_assert_msg(msgs.count == 0, "%s", msgs.text);
        } else {
            snprintf(text, sizeof(text), "truncated %lld bytes", (long long)(cut - start));
            ck_assert_msg(th_msgs_has(&msgs, text) && th_msgs_has(&msgs, seg_path(1)) &&
                              th_msgs_has(&msgs, "torn tail"),
                          "cut %lld: %s", (long long)cut, msgs.text);
        }
        ck_assert_int_eq(stat(seg_path(1), &st), 0);
        ck_assert_int_eq(st.st_size, start);
        /* Appending continues cleanly from the cut. */
        th_append_n(log, N, N);
        wr_store_close(s);
    }
    memset(&msgs, 0, sizeof(msgs));
    open_log(th_store(&o), NULL);
    expect_replayed(want, N);
    ck_assert_int_eq(msgs.count, 0);
}
END_TEST

/* Damages the given bytes of a 9-record segment and checks what recovery keeps and says. */
static void corrupt_middle(const off_t *offs, size_t noffs, uint64_t lost, const uint64_t *want, size_t nwant)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    wr_store_t *s;
    wr_seglog_t *log;
    wr_seglog_recovery_t rec;
    wr_buf_t b = WR_BUF_INIT;
    char text[128];
    uint64_t index;

    write_log(&o, 9);
    for (size_t i = 0; i < noffs; i++)
        flip_byte(seg_path(1), offs[i]);
    s = th_store(&o);
    log = open_log(s, &rec);
    expect_replayed(want, nwant);
    ck_assert_uint_eq(rec.lost_records, lost);
    ck_assert_uint_eq(rec.truncated_bytes, 0);
    snprintf(text, sizeof(text), "%llu record(s) lost", (unsigned long long)lost);
    ck_assert_msg(th_msgs_has(&msgs, text) && th_msgs_has(&msgs, seg_path(1)), "%s", msgs.text);
    ck_assert_int_eq(wr_seglog_read(log, 5, &b), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_read(log, 9, &b), WR_OK);
    ck_assert_int_eq(wr_seglog_append(log, "x", 1, &index), WR_OK);
    ck_assert_uint_eq(index, 10);
    wr_buf_free(&b);
    wr_store_close(s);
}

START_TEST(corrupt_payload_in_the_middle)
{
    const uint64_t want[] = {1, 2, 3, 4, 6, 7, 8, 9};
    const off_t off = HDR + 4 * REC + 20;

    corrupt_middle(&off, 1, 1, want, 8);
    ck_assert_msg(th_msgs_has(&msgs, "31 corrupt bytes at offset 164"), "%s", msgs.text);
}
END_TEST

/* A damaged length field cannot be trusted to skip the record: recovery resynchronises. */
START_TEST(corrupt_length_in_the_middle)
{
    const uint64_t want[] = {1, 2, 3, 4, 6, 7, 8, 9};
    const off_t off = HDR + 4 * REC + 1;

    corrupt_middle(&off, 1, 1, want, 8);
}
END_TEST

START_TEST(two_corrupt_records)
{
    const uint64_t want[] = {1, 2, 3, 6, 7, 8, 9};
    const off_t offs[] = {HDR + 3 * REC + 9, HDR + 4 * REC + 30};

    corrupt_middle(offs, 2, 2, want, 7);
    ck_assert_msg(th_msgs_has(&msgs, "62 corrupt bytes at offset 133"), "%s", msgs.text);
}
END_TEST

/* Writeback out of order: a middle segment lost its tail, later segments are whole. */
START_TEST(torn_tail_in_a_middle_segment)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18};
    wr_seglog_recovery_t rec;
    wr_store_t *s;

    write_log(&o, 18);
    ck_assert_int_eq(truncate(seg_path(2), HDR + 2 * REC + 10), 0);
    s = th_store(&o);
    open_log(s, &rec);
    expect_replayed(want, 14);
    ck_assert_uint_eq(rec.last_index, 18);
    ck_assert_msg(th_msgs_has(&msgs, "truncated 10 bytes") && th_msgs_has(&msgs, seg_path(2)), "%s",
                  msgs.text);
    wr_store_close(s);
}
END_TEST

/* Zeros after the last record are space written ahead, not a torn tail: kept, and appended into. */
START_TEST(zero_tail_is_space_ahead)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};
    wr_seglog_recovery_t rec;
    struct stat st;
    wr_store_t *s;
    wr_seglog_t *log;

    write_log(&o, 5);
    ck_assert_int_eq(truncate(seg_path(1), HDR + 5 * REC + 3000), 0);
    s = th_store(&o);
    log = open_log(s, &rec);
    expect_replayed(want, 5);
    ck_assert_uint_eq(rec.truncated_bytes, 0);
    ck_assert_msg(msgs.count == 0, "%s", msgs.text);
    ck_assert_int_eq(stat(seg_path(1), &st), 0);
    ck_assert_int_ge(st.st_size, HDR + 5 * REC + 3000);
    th_append_n(log, 6, 8);
    wr_store_close(s);
    s = th_store(&o);
    open_log(s, &rec);
    expect_replayed(want, 8);
    ck_assert_uint_eq(rec.last_index, 8);
    ck_assert_int_eq(th_count_files(th_logdir("q"), ".seg"), 1);
    ck_assert_msg(msgs.count == 0, "%s", msgs.text);
    wr_store_close(s);
}
END_TEST

START_TEST(corrupt_header_set_aside)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    const uint64_t want[] = {1, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 18};
    char aside[4400];
    wr_seglog_recovery_t rec;
    wr_store_t *s;
    wr_seglog_t *log;

    write_log(&o, 18);
    flip_byte(seg_path(2), 20);
    s = th_store(&o);
    log = open_log(s, &rec);
    expect_replayed(want, 12);
    /* The records of the file set aside are counted, not guessed at 1 (the file
     * holds 226 bytes of them and zeros written ahead up to the segment size). */
    ck_assert_uint_eq(rec.lost_records, 6);
    snprintf(aside, sizeof(aside), "%s.corrupt", seg_path(2));
    ck_assert_int_eq(access(aside, F_OK), 0);
    ck_assert_int_ne(access(seg_path(2), F_OK), 0);
    ck_assert_msg(th_msgs_has(&msgs, "has a corrupt header; 6 record(s) in its 256 bytes are lost") &&
                      th_msgs_has(&msgs, aside),
                  "%s", msgs.text);
    /* New segments never reuse the number of the file set aside. */
    th_append_n(log, 19, 40);
    wr_store_close(s);
    ck_assert_int_eq(access(aside, F_OK), 0);
    s = th_store(&o);
    open_log(s, &rec);
    ck_assert_uint_eq(rec.records, 12 + 22);
    wr_store_close(s);
}
END_TEST

/* A damaged header and a damaged length: how many records were lost is unknown, and said so. */
START_TEST(corrupt_header_uncountable)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    const uint64_t want[] = {1, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 18};
    wr_seglog_recovery_t rec;
    wr_store_t *s;

    write_log(&o, 18);
    flip_byte(seg_path(2), 20);
    flip_byte(seg_path(2), HDR + REC + 2);
    s = th_store(&o);
    open_log(s, &rec);
    expect_replayed(want, 12);
    ck_assert_uint_eq(rec.lost_records, 1);
    ck_assert_msg(th_msgs_has(&msgs, "has a corrupt header; an unknown number of records in its 256 bytes"),
                  "%s", msgs.text);
    wr_store_close(s);
}
END_TEST

START_TEST(future_segment_version_refused)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    wr_seglog_cbs_t cbs = {th_replay, NULL, rep};
    char err[512] = "";
    uint8_t hdr[HDR];
    uint32_t crc;
    wr_store_t *s;
    int fd;

    write_log(&o, 3);
    fd = open(seg_path(1), O_RDWR);
    ck_assert_int_eq(pread(fd, hdr, HDR, 0), HDR);
    hdr[8] = 2;
    crc = wr_crc32c_update(0, hdr, 32);
    memcpy(hdr + 32, &crc, 4); /* little-endian host, as on disk */
    ck_assert_int_eq(pwrite(fd, hdr, HDR, 0), HDR);
    close(fd);
    s = th_store(&o);
    ck_assert_ptr_null(wr_seglog_open(s, "q", &cbs, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "segment format version 2") != NULL && strstr(err, seg_path(1)) != NULL, "%s",
                  err);
    ck_assert_uint_eq(rep->count, 0);
    wr_store_close(s);
}
END_TEST

/* A crash right after a segment file was created leaves it shorter than a header. */
START_TEST(half_created_segment_removed)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    const uint64_t want[] = {1, 2, 3};
    wr_store_t *s;
    int fd;

    write_log(&o, 3);
    fd = open(seg_path(2), O_WRONLY | O_CREAT, 0640);
    ck_assert_int_eq(write(fd, "WRLOGSEG\1\0", 10), 10);
    close(fd);
    s = th_store(&o);
    open_log(s, NULL);
    expect_replayed(want, 3);
    ck_assert_int_ne(access(seg_path(2), F_OK), 0);
    ck_assert_msg(th_msgs_has(&msgs, "shorter than a segment header") && th_msgs_has(&msgs, seg_path(2)),
                  "%s", msgs.text);
    wr_store_close(s);
}
END_TEST

static int stop_at_3(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len)
{
    return index == 3 ? WR_ENOMEM : WR_OK;
}

START_TEST(replay_can_stop_the_open)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    wr_seglog_cbs_t cbs = {stop_at_3, NULL, NULL};
    char err[512] = "";
    wr_store_t *s;

    write_log(&o, 9);
    s = th_store(&o);
    ck_assert_ptr_null(wr_seglog_open(s, "q", &cbs, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "replay stopped at record 3") != NULL, "%s", err);
    open_log(s, NULL); /* the name is free again */
    ck_assert_uint_eq(rep->count, 9);
    wr_store_close(s);
}
END_TEST

/* Records moved by compaction replay in index order among the others. */
START_TEST(replay_order_with_moved_records)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    const uint64_t want[] = {3, 10, 595, 596, 597, 598, 599, 600};
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = open_log(s, NULL);
    int rounds = 0;

    th_append_n(log, 1, 600);
    th_sync(s, log, 600);
    for (uint64_t i = 1; i < 595; i++) {
        if (i != 3 && i != 10)
            ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    }
    /* One segment is compacted per batch. */
    while (th_count_files(th_logdir("q"), ".seg") > 2) {
        ck_assert_int_lt(rounds++, 5);
        wr_store_flush(s);
        th_wait_dispatch(s);
    }
    wr_store_close(s);
    s = th_store(&o);
    open_log(s, NULL);
    expect_replayed(want, 8);
    wr_store_close(s);
}
END_TEST

/*
 * A process killed while the compaction copy is written but not yet synced:
 * the original and the copy are both on disk. Recovery keeps one of them.
 */
START_TEST(crash_during_compaction)
{
    wr_store_opts_t o = th_opts(256, &msgs, NULL);
    th_fault_t fault;
    wr_store_t *s;
    wr_seglog_t *log;
    char c;
    int status;
    pid_t pid;

    th_fault_init(&fault);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        o.test_fault = th_fault;
        o.test_fault_ud = &fault;
        s = th_store(&o);
        log = open_log(s, NULL);
        th_append_n(log, 1, 600);
        th_sync(s, log, 600);
        for (uint64_t i = 1; i <= 600; i++) {
            if (i != 3)
                wr_seglog_release(log, i);
        }
        fault.hold_sync = true;
        wr_store_flush(s);
        for (;;)
            pause(); /* killed while the storage thread is held before the fsync */
    }
    /* Without our copy of the write end, a child that dies early reads as EOF, not a hang. */
    close(fault.entered[1]);
    fault.entered[1] = -1;
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    th_fault_fini(&fault);

    s = th_store(&o);
    log = open_log(s, NULL);
    ck_assert_uint_eq(rep->count, 600);
    for (uint64_t i = 1; i <= 600; i++)
        ck_assert_uint_eq(rep->index[i - 1], i);
    ck_assert_str_eq(rep->data[2], "record-00000003");
    /* The owner releases again; compaction then finishes the job. */
    for (uint64_t i = 1; i <= 600; i++) {
        if (i != 3)
            ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    }
    wr_store_flush(s);
    th_wait_dispatch(s);
    ck_assert_int_le(th_count_files(th_logdir("q"), ".seg"), 2);
    wr_store_close(s);
    s = th_store(&o);
    open_log(s, NULL);
    ck_assert_uint_ge(rep->count, 1);
    ck_assert_uint_eq(rep->index[0], 3);
    wr_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-recover");
    TCase *tc = tcase_create("recover");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, index_rebuilt_after_reopen);
    tcase_add_test(tc, torn_tail_at_every_offset);
    tcase_add_test(tc, zero_tail_is_space_ahead);
    tcase_add_test(tc, corrupt_payload_in_the_middle);
    tcase_add_test(tc, corrupt_length_in_the_middle);
    tcase_add_test(tc, two_corrupt_records);
    tcase_add_test(tc, torn_tail_in_a_middle_segment);
    tcase_add_test(tc, corrupt_header_set_aside);
    tcase_add_test(tc, corrupt_header_uncountable);
    tcase_add_test(tc, future_segment_version_refused);
    tcase_add_test(tc, half_created_segment_removed);
    tcase_add_test(tc, replay_can_stop_the_open);
    tcase_add_test(tc, replay_order_with_moved_records);
    tcase_add_test(tc, crash_during_compaction);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
