/* SPDX-License-Identifier: MIT */
/* Helpers for the storage unit tests; see helpers.h. */
#include "helpers.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

static char tmpdir[4096];

const char *th_tmpdir(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/warren-storage-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    return tmpdir;
}

const char *th_tmpdir_path(void)
{
    return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void th_rmdir(void)
{
    if (tmpdir[0] != '\0')
        ck_assert_int_eq(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    tmpdir[0] = '\0';
}

void th_msg(void *ud, const char *text)
{
    th_msgs_t *m = ud;
    size_t used = strlen(m->text);

    snprintf(m->text + used, sizeof(m->text) - used, "%s\n", text);
    m->count++;
}

bool th_msgs_has(const th_msgs_t *m, const char *needle)
{
    return strstr(m->text, needle) != NULL;
}

void th_fault_init(th_fault_t *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    ck_assert_int_eq(pipe(f->entered), 0);
    ck_assert_int_eq(pipe(f->release), 0);
}

void th_fault_fini(th_fault_t *f)
{
    close(f->entered[0]);
    close(f->entered[1]);
    close(f->release[0]);
    close(f->release[1]);
    pthread_mutex_destroy(&f->mu);
}

/* With f->mu held: err if *left failures remain to be injected (taking one), else 0. */
static int take_failure(th_fault_t *f, int *left)
{
    if (*left <= 0)
        return 0;
    (*left)--;
    return f->err;
}

static bool ends_with(const char *path, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n > k && strcmp(path + n - k, suffix) == 0;
}

int th_fault(void *ud, wr_store_io_t op, const char *path)
{
    th_fault_t *f = ud;
    size_t n = strlen(path);
    /* The segment files the counters and fail_write/fail_sync are about. */
    bool seg = ends_with(path, n, ".seg") && (f->match[0] == '\0' || strstr(path, f->match) != NULL);
    bool hold = false;
    int err = 0;
    char c = 0;

    pthread_mutex_lock(&f->mu);
    if (op == WR_STORE_IO_SYNC && ends_with(path, n, "/logs")) {
        f->logs_dir_syncs++;
        err = take_failure(f, &f->fail_logs_dir);
    } else if (op == WR_STORE_IO_WRITE && ends_with(path, n, ".tmp")) {
        err = take_failure(f, &f->fail_tmp_write);
    } else if (seg && op == WR_STORE_IO_WRITEBACK) {
        f->writebacks++;
    } else if (seg && op == WR_STORE_IO_WRITE) {
        f->writes++;
        err = take_failure(f, &f->fail_write);
    } else if (seg) {
        f->syncs++;
        err = take_failure(f, &f->fail_sync);
        hold = f->hold_sync;
        f->hold_sync = false;
    }
    pthread_mutex_unlock(&f->mu);
    if (hold && (write(f->entered[1], &c, 1) != 1 || read(f->release[0], &c, 1) != 1))
        abort();
    return err;
}

/* One of f's counters, read under its lock (the storage thread writes them). */
static int counter(th_fault_t *f, const int *c)
{
    int n;

    pthread_mutex_lock(&f->mu);
    n = *c;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int th_fault_syncs(th_fault_t *f)
{
    return counter(f, &f->syncs);
}

int th_fault_logs_dir_syncs(th_fault_t *f)
{
    return counter(f, &f->logs_dir_syncs);
}

int th_fault_writebacks(th_fault_t *f)
{
    return counter(f, &f->writebacks);
}

wr_store_opts_t th_opts(uint64_t segment_size, th_msgs_t *m, th_fault_t *f)
{
    wr_store_opts_t o = {0};

    o.segment_size = segment_size;
    o.message = m != NULL ? th_msg : NULL;
    o.message_ud = m;
    o.test_fault = f != NULL ? th_fault : NULL;
    o.test_fault_ud = f;
    return o;
}

wr_store_t *th_store(const wr_store_opts_t *o)
{
    char err[512] = "";
    wr_store_t *s = wr_store_open(tmpdir, o, err, sizeof(err));

    ck_assert_msg(s != NULL, "wr_store_open: %s", err);
    return s;
}

void th_durable(void *ud, wr_seglog_t *log, uint64_t index, int status)
{
    th_durable_t *d = ud;

    d->calls++;
    d->index = index;
    d->status = status;
}

int th_replay(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len)
{
    th_replay_t *r = ud;

    ck_assert_uint_lt(r->count, 4096);
    ck_assert_uint_lt(len, 64);
    r->index[r->count] = index;
    memcpy(r->data[r->count], data, len);
    r->data[r->count][len] = '\0';
    r->count++;
    return 0;
}

/* The durable callback of a log opened with a replay recorder: forwards to its recorder. */
static void replay_durable(void *ud, wr_seglog_t *log, uint64_t index, int status)
{
    th_replay_t *r = ud;

    if (r->dur != NULL)
        th_durable(r->dur, log, index, status);
}

wr_seglog_t *th_open_log(wr_store_t *s, const char *name, th_durable_t *d, th_replay_t *r,
                         wr_seglog_recovery_t *rec)
{
    wr_seglog_cbs_t cbs = {NULL, d != NULL ? th_durable : NULL, d};
    char err[512] = "";
    wr_seglog_t *log;

    if (r != NULL) {
        r->dur = d;
        cbs = (wr_seglog_cbs_t){th_replay, replay_durable, r};
    }
    log = wr_seglog_open(s, name, &cbs, rec, err, sizeof(err));
    ck_assert_msg(log != NULL, "wr_seglog_open: %s", err);
    return log;
}

void th_append_n(wr_seglog_t *log, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        char p[64];
        uint64_t index;

        th_payload(p, i);
        ck_assert_int_eq(wr_seglog_append(log, p, strlen(p), &index), WR_OK);
        ck_assert_uint_eq(index, i);
    }
}

void th_check_read(wr_seglog_t *log, uint64_t i)
{
    wr_buf_t b = WR_BUF_INIT;
    char p[64];

    th_payload(p, i);
    ck_assert_int_eq(wr_seglog_read(log, i, &b), WR_OK);
    ck_assert_uint_eq(b.len, strlen(p));
    ck_assert_mem_eq(b.data, p, b.len);
    wr_buf_free(&b);
}

void th_wait_dispatch(wr_store_t *s)
{
    struct pollfd p = {wr_store_notify_fd(s), POLLIN, 0};
    int waited = 0, ms;
    int64_t due;

    /* As an owner does: flush again when the store says held records are due. */
    while ((due = wr_store_flush_due_us(s)) >= 0 && waited < 10000) {
        ms = (int)(due / 1000) + 1;
        if (poll(&p, 1, ms) == 1)
            break;
        waited += ms;
        wr_store_flush(s);
    }
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    wr_store_dispatch(s);
}

void th_sync(wr_store_t *s, wr_seglog_t *log, uint64_t index)
{
    wr_store_flush(s);
    while (wr_seglog_durable_index(log) < index)
        th_wait_dispatch(s);
}

int th_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        size_t a = strlen(de->d_name), b = strlen(suffix);
        if (a >= b && strcmp(de->d_name + a - b, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

uint64_t th_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

void th_settle(wr_store_t *s)
{
    wr_store_flush(s);
    while (!wr_store_idle(s))
        th_wait_dispatch(s);
}

const char *th_logdir(const char *name)
{
    static char path[4200];

    snprintf(path, sizeof(path), "%s/logs/%s", tmpdir, name);
    return path;
}

void th_payload(char out[64], uint64_t i)
{
    snprintf(out, 64, "record-%08" PRIu64, i);
}

uint64_t th_thread_reads(void)
{
    char b[1024], *p;
    int fd = open("/proc/thread-self/io", O_RDONLY);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, b, sizeof(b) - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    b[n] = '\0';
    p = strstr(b, "syscr: ");
    ck_assert_ptr_nonnull(p);
    return strtoull(p + 7, NULL, 10);
}
