/* SPDX-License-Identifier: MIT */
/*
 * Shared by the storage unit tests: a fresh temporary directory per test, a
 * message collector, a fault hook that counts, fails or holds the storage
 * thread's I/O, a durable-callback recorder, and a wait for the notify fd.
 */
#ifndef WR_TEST_STORAGE_HELPERS_H
#define WR_TEST_STORAGE_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/seglog.h"
#include "storage/store.h"

/* Creates $TMPDIR/warren-storage-XXXXXX (or under /tmp); returns a static path. */
const char *th_tmpdir(void);
/* The directory th_tmpdir made. */
const char *th_tmpdir_path(void);
/* Removes the directory th_tmpdir made, with everything in it. */
void th_rmdir(void);

/* Every message the store reported, joined with '\n'. */
typedef struct {
    char text[16384];
    int count;
} th_msgs_t;

void th_msg(void *ud, const char *text);
bool th_msgs_has(const th_msgs_t *m, const char *needle);

/*
 * The fault hook. The counters count only segment files (".seg") whose path
 * contains `match` (any, if empty): syncs the fdatasyncs, writebacks the
 * sync_file_range calls. fail_write / fail_sync: fail that many upcoming
 * writes / fdatasyncs with err. fail_logs_dir: fail that many upcoming
 * fsyncs of the store's logs/ directory with err (they count in logs_dir_syncs).
 * fail_tmp_write: fail that many upcoming writes of "*.tmp" files (the
 * temporary copies wr_store_write_file renames into place) with err.
 * hold_sync: the next segment fdatasync writes one byte to entered[1] and
 * waits for one byte on release[0] before going on.
 */
typedef struct {
    pthread_mutex_t mu;
    int writes;
    int syncs;
    int writebacks;
    int fail_write;
    int fail_sync;
    int fail_logs_dir;
    int fail_tmp_write;
    int logs_dir_syncs;
    int err;
    bool hold_sync;
    char match[64];
    int entered[2];
    int release[2];
} th_fault_t;

void th_fault_init(th_fault_t *f);
void th_fault_fini(th_fault_t *f);
int th_fault(void *ud, wr_store_io_t op, const char *path);
int th_fault_syncs(th_fault_t *f);
int th_fault_writebacks(th_fault_t *f);
int th_fault_logs_dir_syncs(th_fault_t *f);

/* Options with tiny segments, the message collector and (if f) the fault hook. */
wr_store_opts_t th_opts(uint64_t segment_size, th_msgs_t *m, th_fault_t *f);
/* wr_store_open that fails the test on error. */
wr_store_t *th_store(const wr_store_opts_t *o);

/* Records durable callbacks. */
typedef struct {
    int calls;
    uint64_t index;
    int status;
} th_durable_t;

void th_durable(void *ud, wr_seglog_t *log, uint64_t index, int status);

/* Records replayed records: their indexes and payloads, in order. */
typedef struct {
    size_t count;
    uint64_t index[4096];
    char data[4096][64];
    th_durable_t *dur; /* set by th_open_log: receives the log's durable callbacks */
} th_replay_t;

int th_replay(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len);

/*
 * wr_seglog_open that fails the test on error. Durable callbacks go to d and
 * replayed records to r; either may be NULL.
 */
wr_seglog_t *th_open_log(wr_store_t *s, const char *name, th_durable_t *d, th_replay_t *r,
                         wr_seglog_recovery_t *rec);
/* Appends th_payload(i) for i in [from, to], checking each gets index i. */
void th_append_n(wr_seglog_t *log, uint64_t from, uint64_t to);
/* Checks that record i reads back as th_payload(i). */
void th_check_read(wr_seglog_t *log, uint64_t i);

/* Waits (up to 10 s, failing the test after) for the notify fd, then dispatches. */
void th_wait_dispatch(wr_store_t *s);
/* Flushes and waits until log's durable index reaches index. */
void th_sync(wr_store_t *s, wr_seglog_t *log, uint64_t index);

/* Read syscalls this thread has made (/proc/thread-self/io); each call makes one itself. */
uint64_t th_thread_reads(void);
/* Number of directory entries in dir ending with suffix. */
int th_count_files(const char *dir, const char *suffix);
/* Bytes in the regular files of dir. */
uint64_t th_dir_bytes(const char *dir);
/* Flushes, then dispatches until the store is idle (follow-up batches included). */
void th_settle(wr_store_t *s);
/* Path of the log's directory. */
const char *th_logdir(const char *name);
/* "record-<i>" padded to a fixed width, so every record has the same size. */
void th_payload(char out[64], uint64_t i);

#endif
