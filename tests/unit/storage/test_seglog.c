/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/seglog.c: append and read (memory, then disk with a
 * CRC check; runs of reads with one pread per file, each record still
 * checked), release, truncation from the front (segments deleted, the front
 * kept across a restart), compaction around a long-lived record (dead
 * segments go, the index stays, the old file outlives its copy's fsync),
 * destroy, names.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/status.h"
#include "helpers.h"
#include "storage/seglog.h"
#include "storage/store.h"
#include "tests/unit/runner.h"

/* "record-00000001" is 15 bytes, 31 with framing: 6 records fill a 256-byte segment. */
#define SEG     256
#define PER_SEG 6

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

static int segs(const char *name)
{
    return th_count_files(th_logdir(name), ".seg");
}

/* One batch: flush and apply it. */
static void batch(wr_store_t *s)
{
    wr_store_flush(s);
    th_wait_dispatch(s);
}

START_TEST(append_and_read)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_buf_t b = WR_BUF_INIT;
    uint64_t index;

    ck_assert_uint_eq(wr_seglog_last_index(log), 0);
    th_append_n(log, 1, 20);
    ck_assert_uint_eq(wr_seglog_last_index(log), 20);
    for (uint64_t i = 1; i <= 20; i++)
        th_check_read(log, i); /* from memory */
    th_sync(s, log, 20);
    ck_assert_int_eq(segs("q"), 4);
    for (uint64_t i = 1; i <= 20; i++)
        th_check_read(log, i); /* from disk */
    ck_assert_int_eq(wr_seglog_read(log, 0, &b), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_read(log, 21, &b), WR_ENOENT);
    /* Empty records and one bigger than a segment (it gets a file to itself). */
    ck_assert_int_eq(wr_seglog_append(log, "", 0, &index), WR_OK);
    ck_assert_uint_eq(index, 21);
    {
        char big[1000];
        memset(big, 'z', sizeof(big));
        ck_assert_int_eq(wr_seglog_append(log, big, sizeof(big), &index), WR_OK);
        th_sync(s, log, 22);
        ck_assert_int_eq(wr_seglog_read(log, 22, &b), WR_OK);
        ck_assert_uint_eq(b.len, sizeof(big));
        ck_assert_mem_eq(b.data, big, sizeof(big));
    }
    ck_assert_int_eq(wr_seglog_read(log, 21, &b), WR_OK);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(wr_seglog_append(log, "", (size_t)WR_SEGLOG_MAX_RECORD + 1, &index), WR_ETOOBIG);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

/* A record gathered from pieces is one record: read back and replayed whole. */
START_TEST(append_gathered)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    struct iovec iov[3] = {{"rec", 3}, {NULL, 0}, {"ord-1", 5}};
    th_replay_t *r = calloc(1, sizeof(*r));
    wr_buf_t b = WR_BUF_INIT;
    uint64_t index;

    ck_assert_int_eq(wr_seglog_appendv(log, iov, 3, &index), WR_OK);
    ck_assert_uint_eq(index, 1);
    ck_assert_int_eq(wr_seglog_read(log, 1, &b), WR_OK);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_mem_eq(b.data, "record-1", 8);
    iov[1] = (struct iovec){NULL, (size_t)WR_SEGLOG_MAX_RECORD};
    ck_assert_int_eq(wr_seglog_appendv(log, iov, 3, &index), WR_ETOOBIG);
    th_sync(s, log, 1);
    wr_seglog_close(log);
    log = th_open_log(s, "q", &dur, r, NULL);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_str_eq(r->data[0], "record-1");
    wr_buf_free(&b);
    free(r);
    wr_store_close(s);
}
END_TEST

/* A record damaged on disk after it was written reads as an error, not as wrong bytes. */
START_TEST(read_checks_crc)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_buf_t b = WR_BUF_INIT;
    char path[4300];
    int fd;

    th_append_n(log, 1, 3);
    th_sync(s, log, 3);
    snprintf(path, sizeof(path), "%s/0000000000000001.seg", th_logdir("q"));
    fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    /* Second record's payload starts at 40 + 31 + 16. */
    ck_assert_int_eq(pwrite(fd, "X", 1, 40 + 31 + 16 + 3), 1);
    close(fd);
    th_check_read(log, 1);
    ck_assert_int_eq(wr_seglog_read(log, 2, &b), WR_EIO);
    th_check_read(log, 3);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

/* Reads records from..to as one run through w, each checked; returns the preads it took. */
static uint64_t read_run(wr_seglog_t *log, uint64_t from, uint64_t to, wr_seglog_window_t *w)
{
    uint64_t before = th_thread_reads();

    for (uint64_t i = from; i <= to; i++) {
        const uint8_t *data;
        size_t len;
        char p[64];

        th_payload(p, i);
        ck_assert_int_eq(wr_seglog_read_run(log, i, to, w, &data, &len), WR_OK);
        ck_assert_uint_eq(len, strlen(p));
        ck_assert_mem_eq(data, p, len);
    }
    return th_thread_reads() - before - 1;
}

/*
 * A run of records on disk is read with one pread per segment file, and
 * served again from the window while it holds them.
 */
START_TEST(read_run_one_pread)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_seglog_t *small;
    wr_seglog_window_t w = WR_SEGLOG_WINDOW_INIT;

    th_append_n(log, 1, 200);
    th_sync(s, log, 200);
    ck_assert_uint_eq(read_run(log, 1, 200, &w), 1);
    /* What a file holds below its durable length stays: a batch does not expire the window. */
    th_append_n(log, 201, 201);
    th_sync(s, log, 201);
    ck_assert_uint_eq(read_run(log, 50, 150, &w), 0);
    /* A lone read: one pread, not one for the header and one for the payload. */
    ck_assert_uint_eq(read_run(log, 201, 201, &w), 1);
    /* The log opened again is another log: the window is read afresh. */
    ck_assert_int_eq(wr_seglog_close(log), WR_OK);
    log = th_open_log(s, "q", &dur, NULL, NULL);
    ck_assert_uint_eq(read_run(log, 1, 1, &w), 1);
    wr_seglog_window_free(&w);
    wr_seglog_close(log);
    wr_store_close(s);

    o = th_opts(SEG, &msgs, NULL);
    s = th_store(&o);
    small = th_open_log(s, "small", &dur, NULL, NULL);
    th_append_n(small, 1, 4 * PER_SEG);
    th_sync(s, small, 4 * PER_SEG);
    ck_assert_uint_eq(read_run(small, 1, 4 * PER_SEG, &w), 4);
    wr_seglog_window_free(&w);
    wr_store_close(s);
}
END_TEST

/* Runs of records larger than the window, and mixed with records still in memory. */
START_TEST(read_run_large_records)
{
    enum { N = 6, BIG = 100 * 1024 };
    wr_store_opts_t o = th_opts(4 << 20, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_seglog_window_t w = WR_SEGLOG_WINDOW_INIT;
    uint8_t *big = malloc(BIG * N);
    uint64_t index;

    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < (size_t)BIG * N; i++)
        big[i] = (uint8_t)(i * 7 + i / 251);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wr_seglog_append(log, big + i, (size_t)BIG * (size_t)(i + 1) / 2, &index), WR_OK);
        ck_assert_uint_eq(index, (uint64_t)i + 1);
        if (i == N / 2)
            th_sync(s, log, index);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            const uint8_t *data;
            size_t len;

            ck_assert_int_eq(wr_seglog_read_run(log, (uint64_t)i + 1, N, &w, &data, &len), WR_OK);
            ck_assert_uint_eq(len, (size_t)BIG * (size_t)(i + 1) / 2);
            ck_assert_int_eq(memcmp(data, big + i, len), 0);
        }
        th_sync(s, log, N);
    }
    wr_seglog_window_free(&w);
    free(big);
    wr_store_close(s);
}
END_TEST

/* Overwrites `n` bytes at `off` of the first segment of log "q". */
static void damage(uint64_t off, const void *bytes, size_t n)
{
    char path[4300];
    int fd;

    snprintf(path, sizeof(path), "%s/0000000000000001.seg", th_logdir("q"));
    fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/*
 * Records read together are still checked one by one: a damaged payload
 * (CRC), index or length reads as WR_EIO, as a lone read reports it, and
 * the records around it read back whole.
 */
START_TEST(read_run_checks_each_record)
{
    wr_store_opts_t o = th_opts(1 << 20, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_seglog_window_t w = WR_SEGLOG_WINDOW_INIT;
    const uint8_t huge[4] = {0xff, 0xff, 0xff, 0x0f}, other[1] = {99};
    wr_buf_t b = WR_BUF_INIT;

    th_append_n(log, 1, 40);
    th_sync(s, log, 40);
    /* Record i starts at 40 + 31 * (i - 1): length (4), CRC (4), index (8), payload. */
    damage(40 + 31 * 4 + 16 + 3, "X", 1);           /* 5: payload */
    damage(40 + 31 * 11 + 8, other, sizeof(other)); /* 12: index */
    damage(40 + 31 * 19, huge, sizeof(huge));       /* 20: length past the end of the file */
    damage(40 + 31 * 39, "\x40", 1);                /* 40, the last: length past the durable bytes */
    for (uint64_t i = 1; i <= 40; i++) {
        const uint8_t *data;
        size_t len;
        bool bad = i == 5 || i == 12 || i == 20 || i == 40;

        ck_assert_int_eq(wr_seglog_read_run(log, i, 40, &w, &data, &len), bad ? WR_EIO : WR_OK);
        ck_assert_int_eq(wr_seglog_read(log, i, &b), bad ? WR_EIO : WR_OK);
        if (!bad)
            th_check_read(log, i);
    }
    wr_seglog_window_free(&w);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

START_TEST(release_and_delete)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_buf_t b = WR_BUF_INIT;

    th_append_n(log, 1, 10 * PER_SEG);
    th_sync(s, log, 10 * PER_SEG);
    ck_assert_int_eq(segs("q"), 10);
    ck_assert_int_eq(wr_seglog_release(log, 7), WR_OK);
    ck_assert_int_eq(wr_seglog_release(log, 7), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_read(log, 7, &b), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_release(log, 0), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_release(log, 61), WR_ENOENT);
    /* Everything but the head segment's records: nine files go. */
    for (uint64_t i = 1; i <= 9 * PER_SEG; i++)
        wr_seglog_release(log, i);
    ck_assert_int_eq(segs("q"), 10); /* deletion happens in the next batch */
    batch(s);
    ck_assert_int_eq(segs("q"), 1);
    th_check_read(log, 55);
    /* The head is not deleted with nothing live in it, but once it stops being the head. */
    for (uint64_t i = 55; i <= 60; i++)
        ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    th_append_n(log, 61, 61);
    ck_assert_int_eq(segs("q"), 2);
    th_sync(s, log, 61);
    ck_assert_int_eq(segs("q"), 1);
    th_check_read(log, 61);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

START_TEST(truncate_front)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    th_replay_t *r = calloc(1, sizeof(*r));
    wr_seglog_recovery_t rec;
    wr_buf_t b = WR_BUF_INIT;

    th_append_n(log, 1, 10 * PER_SEG);
    th_sync(s, log, 10 * PER_SEG);
    ck_assert_int_eq(wr_seglog_truncate_front(log, 61), WR_ETOOBIG);
    /* 33 ends in the middle of the sixth segment: five whole segments go. */
    ck_assert_int_eq(wr_seglog_truncate_front(log, 33), WR_OK);
    ck_assert_int_eq(wr_seglog_truncate_front(log, 10), WR_OK);
    ck_assert_int_eq(wr_seglog_read(log, 33, &b), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_release(log, 20), WR_ENOENT);
    th_check_read(log, 34);
    batch(s);
    ck_assert_int_eq(segs("q"), 5);
    wr_store_close(s);

    /* After a restart, replay starts after the front, even inside a segment. */
    s = th_store(&o);
    log = th_open_log(s, "q", &dur, r, &rec);
    ck_assert_uint_eq(r->count, 60 - 33);
    ck_assert_uint_eq(r->index[0], 34);
    ck_assert_uint_eq(rec.first_index, 34);
    ck_assert_uint_eq(rec.last_index, 60);
    ck_assert_int_eq(wr_seglog_read(log, 33, &b), WR_ENOENT);
    th_check_read(log, 34);
    /* Truncating everything keeps the head, and the indexes keep counting. */
    ck_assert_int_eq(wr_seglog_truncate_front(log, 60), WR_OK);
    batch(s);
    ck_assert_int_eq(segs("q"), 1);
    wr_store_close(s);
    s = th_store(&o);
    memset(r, 0, sizeof(*r));
    log = th_open_log(s, "q", &dur, r, &rec);
    ck_assert_uint_eq(r->count, 0);
    ck_assert_uint_eq(rec.last_index, 60);
    th_append_n(log, 61, 61);
    wr_buf_free(&b);
    free(r);
    wr_store_close(s);
}
END_TEST

/* Writes 100 segments and keeps only record 3 of the first one alive. */
static wr_seglog_t *one_survivor(wr_store_t *s)
{
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);

    th_append_n(log, 1, 100 * PER_SEG);
    th_sync(s, log, 100 * PER_SEG);
    ck_assert_int_eq(segs("q"), 100);
    for (uint64_t i = 1; i <= 100 * PER_SEG; i++) {
        if (i != 3)
            ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    }
    return log;
}

START_TEST(compaction_frees_dead_segments)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = one_survivor(s);
    th_replay_t *r = calloc(1, sizeof(*r));
    wr_seglog_recovery_t rec;

    batch(s);
    /* Record 3 now lives in a new head; every other file is gone. */
    ck_assert_int_eq(segs("q"), 1);
    ck_assert_int_eq(access(th_logdir("q"), F_OK), 0);
    th_check_read(log, 3);
    ck_assert_uint_eq(wr_seglog_durable_index(log), 100 * PER_SEG);
    ck_assert_int_eq(msgs.count, 0);
    wr_store_close(s);

    s = th_store(&o);
    log = th_open_log(s, "q", &dur, r, &rec);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_uint_eq(r->index[0], 3);
    ck_assert_str_eq(r->data[0], "record-00000003");
    ck_assert_uint_eq(rec.last_index, 100 * PER_SEG);
    th_check_read(log, 3);

    /* It moves again when its new segment becomes sparse in turn. */
    th_append_n(log, 601, 601 + 3 * PER_SEG);
    th_sync(s, log, 601 + 3 * PER_SEG);
    for (uint64_t i = 601; i <= 601 + 3 * PER_SEG; i++)
        ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    batch(s);
    ck_assert_int_eq(segs("q"), 1);
    th_check_read(log, 3);
    ck_assert_int_eq(wr_seglog_release(log, 3), WR_OK);
    ck_assert_int_eq(wr_seglog_release(log, 3), WR_ENOENT);
    free(r);
    wr_store_close(s);
}
END_TEST

/* The old segment is still on disk while its record's copy is being fsynced. */
START_TEST(compaction_deletes_after_copy_is_durable)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = one_survivor(s);
    char first[4300], c = 0;

    snprintf(first, sizeof(first), "%s/0000000000000001.seg", th_logdir("q"));
    fault.hold_sync = true;
    wr_store_flush(s);
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1);
    ck_assert_int_eq(access(first, F_OK), 0);
    th_check_read(log, 3);
    ck_assert_int_eq(write(fault.release[1], &c, 1), 1);
    th_wait_dispatch(s);
    ck_assert_int_ne(access(first, F_OK), 0);
    th_check_read(log, 3);
    wr_store_close(s);
}
END_TEST

/* If the copy cannot be made durable, the original stays and still reads. */
START_TEST(compaction_failure_keeps_original)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = one_survivor(s);
    th_replay_t *r = calloc(1, sizeof(*r));
    char first[4300];

    snprintf(first, sizeof(first), "%s/0000000000000001.seg", th_logdir("q"));
    fault.err = EIO;
    fault.fail_sync = 1;
    batch(s);
    ck_assert_int_eq(access(first, F_OK), 0);
    th_check_read(log, 3);
    ck_assert_int_eq(dur.status, WR_EIO);
    ck_assert_msg(th_msgs_has(&msgs, "failed: Input/output error; log 'q' retries that in 1000 ms"), "%s",
                  msgs.text);
    wr_store_close(s);

    /* The dead segments went when the log was closed; the compacted one
     * stayed whole (releases are not persisted: all of it replays). */
    s = th_store(&o);
    th_open_log(s, "q", &dur, r, NULL);
    ck_assert_uint_eq(r->count, PER_SEG);
    ck_assert_uint_eq(r->index[2], 3);
    ck_assert_str_eq(r->data[2], "record-00000003");
    free(r);
    wr_store_close(s);
}
END_TEST

/* Releasing the record while its copy is in flight leaves it released. */
START_TEST(release_during_compaction)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = one_survivor(s);
    wr_buf_t b = WR_BUF_INIT;
    char c = 0;

    fault.hold_sync = true;
    wr_store_flush(s);
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1);
    ck_assert_int_eq(wr_seglog_release(log, 3), WR_OK);
    ck_assert_int_eq(write(fault.release[1], &c, 1), 1);
    th_wait_dispatch(s);
    ck_assert_int_eq(wr_seglog_read(log, 3, &b), WR_ENOENT);
    ck_assert_int_eq(wr_seglog_release(log, 3), WR_ENOENT);
    ck_assert_int_eq(segs("q"), 1);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

/*
 * The head that receives compaction's copies rolls, and all of its own
 * records are released, while the batch with the copies is being synced. It
 * hosts the copies, so it is not dead: neither deleted nor freed.
 */
START_TEST(copies_keep_their_segment)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = one_survivor(s);
    th_replay_t *r = calloc(1, sizeof(*r));
    char c = 0;

    fault.hold_sync = true;
    wr_store_flush(s); /* copies record 3 into a new head */
    ck_assert_int_eq(read(fault.entered[0], &c, 1), 1);
    th_append_n(log, 601, 600 + PER_SEG); /* the head with the copy fills and rolls */
    for (uint64_t i = 601; i <= 600 + PER_SEG; i++)
        ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    ck_assert_int_eq(write(fault.release[1], &c, 1), 1);
    th_wait_dispatch(s);
    batch(s);
    th_check_read(log, 3);
    wr_store_close(s);

    s = th_store(&o);
    th_open_log(s, "q", &dur, r, NULL);
    ck_assert_uint_ge(r->count, 1);
    ck_assert_uint_eq(r->index[0], 3);
    ck_assert_str_eq(r->data[0], "record-00000003");
    free(r);
    wr_store_close(s);
}
END_TEST

/* Several logs compacting in one batch, next to a log that only appends. */
START_TEST(compaction_in_many_logs)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, &fault);
    wr_store_t *s = th_store(&o);
    const char *names[] = {"a", "b", "c"};
    wr_seglog_t *logs[3];
    wr_buf_t b = WR_BUF_INIT;

    for (int k = 0; k < 3; k++) {
        logs[k] = th_open_log(s, names[k], &dur, NULL, NULL);
        th_append_n(logs[k], 1, 20 * PER_SEG);
    }
    wr_store_flush(s);
    th_wait_dispatch(s);
    for (int k = 0; k < 2; k++) {
        for (uint64_t i = 1; i <= 20 * PER_SEG; i++) {
            if (i != 3)
                ck_assert_int_eq(wr_seglog_release(logs[k], i), WR_OK);
        }
    }
    th_append_n(logs[2], 20 * PER_SEG + 1, 20 * PER_SEG + 2);
    wr_store_flush(s);
    th_wait_dispatch(s);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(segs(names[k]), 1);
        th_check_read(logs[k], 3);
        ck_assert_int_eq(wr_seglog_read(logs[k], 4, &b), WR_ENOENT);
    }
    ck_assert_uint_eq(wr_seglog_durable_index(logs[2]), 20 * PER_SEG + 2);
    th_check_read(logs[2], 20 * PER_SEG + 2);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

#define KIB_RECORDS 8192 /* 8 MiB of 1 KiB records */

/* Appends KIB_RECORDS records of 1 KiB, makes them durable and releases all but `keep` (0: none). */
static wr_seglog_t *consumed(wr_store_t *s, uint64_t keep)
{
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    char rec[1024];
    uint64_t index;

    memset(rec, 'x', sizeof(rec));
    for (uint64_t i = 1; i <= KIB_RECORDS; i++)
        ck_assert_int_eq(wr_seglog_append(log, rec, sizeof(rec), &index), WR_OK);
    th_sync(s, log, KIB_RECORDS);
    for (uint64_t i = 1; i <= KIB_RECORDS; i++) {
        if (i != keep)
            ck_assert_int_eq(wr_seglog_release(log, i), WR_OK);
    }
    return log;
}

/* The space of consumed records comes back, the head segment's included. */
START_TEST(consumed_head_is_reclaimed)
{
    wr_store_opts_t o = th_opts(0, &msgs, NULL);
    wr_store_t *s = th_store(&o);

    consumed(s, 0);
    th_settle(s);
    /* The new head: one block, its header and the zeros written ahead (storage/sync.c). */
    ck_assert_uint_le(th_dir_bytes(th_logdir("q")), 4096 + 32);
    wr_store_close(s);
}
END_TEST

/* A record still live in the head (a queue's last checkpoint) moves out of the way. */
START_TEST(sparse_head_is_reclaimed)
{
    wr_store_opts_t o = th_opts(0, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = consumed(s, KIB_RECORDS);
    wr_buf_t b = WR_BUF_INIT;
    wr_seglog_recovery_t rec;

    th_settle(s);
    ck_assert_uint_lt(th_dir_bytes(th_logdir("q")), 8192);
    ck_assert_int_eq(wr_seglog_read(log, KIB_RECORDS, &b), WR_OK);
    ck_assert_uint_eq(b.len, 1024);
    wr_store_close(s);
    s = th_store(&o);
    log = th_open_log(s, "q", &dur, NULL, &rec);
    ck_assert_uint_eq(rec.records, 1);
    ck_assert_uint_eq(rec.first_index, KIB_RECORDS);
    ck_assert_uint_eq(rec.last_index, KIB_RECORDS);
    th_append_n(log, KIB_RECORDS + 1, KIB_RECORDS + 1);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

/* Releases every record it replays but the last. */
static int release_replayed(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    if (index != KIB_RECORDS)
        ck_assert_int_eq(wr_seglog_release(log, index), WR_OK);
    return WR_OK;
}

/* A head left large and dead before a restart is reclaimed after it. */
START_TEST(head_is_reclaimed_after_restart)
{
    wr_store_opts_t o = th_opts(64u << 20, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_cbs_t cbs = {release_replayed, NULL, NULL};
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_buf_t b = WR_BUF_INIT;
    char rec[1024], err[256];
    uint64_t index;

    memset(rec, 'x', sizeof(rec));
    for (uint64_t i = 1; i <= KIB_RECORDS; i++)
        ck_assert_int_eq(wr_seglog_append(log, rec, sizeof(rec), &index), WR_OK);
    wr_store_close(s);
    ck_assert_uint_gt(th_dir_bytes(th_logdir("q")), KIB_RECORDS * 1024);
    s = th_store(&o);
    log = wr_seglog_open(s, "q", &cbs, NULL, err, sizeof(err));
    ck_assert_msg(log != NULL, "%s", err);
    th_settle(s);
    ck_assert_uint_lt(th_dir_bytes(th_logdir("q")), 8192);
    ck_assert_int_eq(wr_seglog_read(log, KIB_RECORDS, &b), WR_OK);
    ck_assert_uint_eq(b.len, 1024);
    wr_buf_free(&b);
    wr_store_close(s);
}
END_TEST

START_TEST(destroy)
{
    wr_store_opts_t o = th_opts(SEG, &msgs, NULL);
    wr_store_t *s = th_store(&o);
    wr_seglog_t *log = th_open_log(s, "q", &dur, NULL, NULL);
    wr_seglog_recovery_t rec;
    char logs[4300];

    th_append_n(log, 1, 30);
    th_sync(s, log, 20);
    th_append_n(log, 31, 35); /* some never flushed */
    ck_assert_int_eq(wr_seglog_destroy(log), WR_OK);
    ck_assert_int_ne(access(th_logdir("q"), F_OK), 0);
    ck_assert_uint_eq(wr_store_pending_bytes(s), 0);
    /* The name is free at once. */
    log = th_open_log(s, "q", &dur, NULL, &rec);
    ck_assert_uint_eq(rec.last_index, 0);
    th_append_n(log, 1, 1);
    batch(s);
    snprintf(logs, sizeof(logs), "%s/logs", th_tmpdir_path());
    ck_assert_int_eq(th_count_files(logs, "-q"), 0); /* the trash is gone too */
    wr_store_close(s);
}
END_TEST

START_TEST(names)
{
    wr_store_t *s = th_store(NULL);
    char err[512], longname[202];

    memset(longname, 'a', 201);
    longname[201] = '\0';
    ck_assert_ptr_null(wr_seglog_open(s, "", NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "invalid log name") != NULL, "%s", err);
    ck_assert_ptr_null(wr_seglog_open(s, ".hidden", NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_null(wr_seglog_open(s, "a/b", NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_null(wr_seglog_open(s, longname, NULL, NULL, err, sizeof(err)));
    longname[200] = '\0';
    ck_assert_ptr_nonnull(wr_seglog_open(s, longname, NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(wr_seglog_open(s, "vhost_1.orders-eu", NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_null(wr_seglog_open(s, "vhost_1.orders-eu", NULL, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "already open") != NULL, "%s", err);
    wr_store_close(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-seglog");
    TCase *tc = tcase_create("log");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, append_and_read);
    tcase_add_test(tc, append_gathered);
    tcase_add_test(tc, read_checks_crc);
    tcase_add_test(tc, read_run_one_pread);
    tcase_add_test(tc, read_run_large_records);
    tcase_add_test(tc, read_run_checks_each_record);
    tcase_add_test(tc, release_and_delete);
    tcase_add_test(tc, truncate_front);
    tcase_add_test(tc, compaction_frees_dead_segments);
    tcase_add_test(tc, compaction_deletes_after_copy_is_durable);
    tcase_add_test(tc, compaction_failure_keeps_original);
    tcase_add_test(tc, release_during_compaction);
    tcase_add_test(tc, copies_keep_their_segment);
    tcase_add_test(tc, compaction_in_many_logs);
    tcase_add_test(tc, consumed_head_is_reclaimed);
    tcase_add_test(tc, sparse_head_is_reclaimed);
    tcase_add_test(tc, head_is_reclaimed_after_restart);
    tcase_add_test(tc, destroy);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
