/* SPDX-License-Identifier: MIT */
/*
 * The storage thread. Per log: write the chunks, sync each segment written
 * (fdatasync, or only write the data back where its blocks and size are on
 * disk already, and then one device flush for the whole batch), fsync the
 * directory if a segment was created; that is the durable point. Deletions
 * (so a compacted segment outlives its copies' sync) and FRONT come after it;
 * a failure before it rolls the log's files back.
 */
#include "storage/sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/status.h"
#include "storage/storage_internal.h"

static int fault(wr_store_t *s, wr_store_io_t op, const char *path)
{
    return s->fault != NULL ? s->fault(s->fault_ud, op, path) : 0;
}

/* Appends to a message buffer, keeping whatever fits. */
static void note(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *msg, size_t msglen, const char *fmt, ...)
{
    size_t used = strnlen(msg, msglen);
    va_list ap;

    if (used + 1 >= msglen)
        return;
    va_start(ap, fmt);
    vsnprintf(msg + used, msglen - used, fmt, ap);
    va_end(ap);
}

static const char *errstr(int err, char *buf, size_t len)
{
    return strerror_r(err, buf, len);
}

static int write_all(wr_store_t *s, int fd, const char *path, const uint8_t *p, size_t n, uint64_t off)
{
    int err = fault(s, WR_STORE_IO_WRITE, path);

    if (err != 0)
        return err;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int sync_fd(wr_store_t *s, int fd, const char *path)
{
    int err = fault(s, WR_STORE_IO_SYNC, path);

    if (err != 0)
        return err;
    return fdatasync(fd) == 0 ? 0 : errno;
}

/* fsync of a directory: 0 or errno. */
static int sync_dir(wr_store_t *s, const char *path)
{
    int fd, err = fault(s, WR_STORE_IO_SYNC, path);

    if (err != 0)
        return err;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    err = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return err;
}

int wr_sync_dir(wr_store_t *s, const char *path)
{
    int err = sync_dir(s, path);

    if (err == 0)
        return WR_OK;
    errno = err;
    return WR_EIO;
}

int wr_sync_replace_file(wr_store_t *s, const char *dir, const char *name, const void *data, size_t len,
                         char *msg, size_t msglen)
{
    char tmp[4096], dst[4096], eb[128];
    int fd, err;

    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = errno;
        note(msg, msglen, "cannot create %s: %s", tmp, errstr(err, eb, sizeof(eb)));
        return WR_EIO;
    }
    err = write_all(s, fd, tmp, data, len, 0);
    if (err == 0)
        err = sync_fd(s, fd, tmp);
    close(fd);
    if (err == 0 && rename(tmp, dst) != 0)
        err = errno;
    if (err != 0) {
        note(msg, msglen, "cannot write %s: %s", dst, errstr(err, eb, sizeof(eb)));
        unlink(tmp);
    }
    return err == 0 ? WR_OK : WR_EIO;
}

int wr_sync_remove_dir(const char *path, char *msg, size_t msglen)
{
    char eb[128];
    DIR *d = opendir(path);
    struct dirent *de;
    int err = 0;

    if (d == NULL) {
        err = errno;
        note(msg, msglen, "cannot open %s: %s; ", path, errstr(err, eb, sizeof(eb)));
        return WR_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0 && err == 0) {
            err = errno;
            note(msg, msglen, "cannot remove %s/%s: %s; ", path, de->d_name, errstr(err, eb, sizeof(eb)));
        }
    }
    closedir(d);
    if (err == 0 && rmdir(path) != 0) {
        err = errno;
        note(msg, msglen, "cannot remove %s: %s; ", path, errstr(err, eb, sizeof(eb)));
    }
    return err == 0 ? WR_OK : WR_EIO;
}

/* Undoes this batch's writes for one log: new segments go, older ones are cut back. */
static void rollback(wr_batch_log_t *e)
{
    char eb[128];
    wr_list_t *n;

    for (n = e->log->inflight.next; n != &e->log->inflight; n = n->next) {
        wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
        int r = c->off == 0 ? unlink(c->seg->path) : ftruncate(c->seg->fd, (off_t)c->off);
        /* The file's length changed: its next sync is an fdatasync again. */
        c->seg->synced = c->seg->ahead = 0;
        if (r != 0)
            note(e->msg, sizeof(e->msg), "; rolling back %s also failed: %s", c->seg->path,
                 errstr(errno, eb, sizeof(eb)));
    }
}

static void fail(wr_batch_log_t *e, int err, const char *what, const char *path)
{
    char eb[128];

    e->err = err;
    note(e->msg, sizeof(e->msg), "log '%s': %s %s failed: %s", e->log->name, what, path,
         errstr(err, eb, sizeof(eb)));
}

/* Extensions of a segment's zeros closer together than this are one growing log. */
#define AHEAD_BURST_NS 1000000000ull
#define AHEAD_MAX      (1ull << 20)

/*
 * Where the zeros written after a segment's data end: an eighth of its
 * length further, or twice as far as the last time when that was less than
 * a second ago (a log that keeps growing pays an fdatasync for its new
 * length less and less often), at most 1 MiB, up to a 4 KiB boundary,
 * never past the segment size. Later batches then overwrite allocated
 * blocks inside the file, which needs no metadata on disk. A log that grows
 * slowly keeps the eighth: its file stays near its data's size.
 */
static uint64_t ahead_end(const wr_store_t *s, wr_seg_t *seg, uint64_t end)
{
    uint64_t now = wr_mono_ns(), grow = end / 8, to;

    if (end >= s->segment_size)
        return end;
    if (seg->ahead_ns != 0 && now - seg->ahead_ns < AHEAD_BURST_NS && 2 * seg->ahead_by > grow)
        grow = 2 * seg->ahead_by;
    if (grow > AHEAD_MAX)
        grow = AHEAD_MAX;
    to = (end + grow + 4095) & ~(uint64_t)4095;
    if (to > s->segment_size)
        to = s->segment_size;
    seg->ahead_by = to - end;
    seg->ahead_ns = now;
    return to;
}

/* Writes the chunk, then zeros ahead of it when it passed the zeros already there. */
static int write_chunk(wr_store_t *s, wr_chunk_t *c)
{
    static const uint8_t zeros[65536];
    uint64_t end = c->off + c->data.len, to, at;
    int err = write_all(s, c->seg->fd, c->seg->path, c->data.data, c->data.len, c->off);

    if (err != 0 || !s->flush_once || end <= c->seg->ahead)
        return err;
    to = ahead_end(s, c->seg, end);
    /* Best effort: without them the segment is fdatasync'ed each batch, as before. */
    for (at = end; at < to && err == 0; at += sizeof(zeros))
        err = write_all(s, c->seg->fd, c->seg->path, zeros, to - at < sizeof(zeros) ? to - at : sizeof(zeros),
                        at);
    c->seg->ahead = err == 0 ? to : end;
    return 0;
}

/* Whether the chunk overwrites blocks that an fdatasync put on disk, inside the size it made durable. */
static bool in_place(const wr_store_t *s, const wr_chunk_t *c)
{
    return s->flush_once && c->off + c->data.len <= c->seg->synced;
}

/* fdatasync of the chunk's segment: then all that was written to it is on disk, zeros ahead included. */
static int sync_seg(wr_store_t *s, wr_chunk_t *c)
{
    uint64_t end = c->off + c->data.len;
    int err = sync_fd(s, c->seg->fd, c->seg->path);

    if (err == 0)
        c->seg->synced = c->seg->ahead > end ? c->seg->ahead : end;
    return err;
}

/*
 * Writes the log's chunks and syncs those that are not in place; those that
 * are wait for sync_riders (e->rides, counted in *riders, the last in *last).
 * Then the directories. False if it failed and was rolled back.
 */
static bool log_sync(wr_store_t *s, wr_batch_log_t *e, size_t *riders, wr_chunk_t **last)
{
    wr_seglog_t *log = e->log;
    bool created = false;
    wr_list_t *n;
    int err;

    for (n = log->inflight.next; n != &log->inflight; n = n->next) {
        wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
        if ((err = write_chunk(s, c)) != 0) {
            fail(e, err, "write to", c->seg->path);
            goto rollback;
        }
        created |= c->off == 0;
    }
    /* Each segment has one chunk per batch, so this is one sync per dirty file. */
    for (n = log->inflight.next; n != &log->inflight; n = n->next) {
        wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
        if (in_place(s, c)) {
            e->rides = true;
            (*riders)++;
            *last = c;
        } else if ((err = sync_seg(s, c)) != 0) {
            fail(e, err, "fdatasync of", c->seg->path);
            goto rollback;
        }
    }
    if (created && (err = sync_dir(s, log->dir)) != 0) {
        fail(e, err, "fsync of directory", log->dir);
        goto rollback;
    }
    if (e->dir_new && (err = sync_dir(s, s->logs_dir)) != 0) {
        fail(e, err, "fsync of directory", s->logs_dir);
        goto rollback;
    }
    return true;

rollback:
    rollback(e);
    return false;
}

/* Writes back the log's in-place chunks but `last`, without a device flush. */
static void writeback_log(wr_store_t *s, wr_batch_log_t *e, const wr_chunk_t *last)
{
    unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    wr_list_t *n;

    for (n = e->log->inflight.next; n != &e->log->inflight; n = n->next) {
        wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
        int err;
        if (c == last || !in_place(s, c))
            continue;
        err = fault(s, WR_STORE_IO_WRITEBACK, c->seg->path);
        if (err == 0 && sync_file_range(c->seg->fd, (off_t)c->off, (off_t)c->data.len, flags) != 0)
            err = errno;
        if (err != 0) {
            fail(e, err, "writeback of", c->seg->path);
            rollback(e);
            return;
        }
    }
}

/*
 * Starts the write-back of every in-place chunk of the batch, `last`
 * included, without waiting: the files' writes then go to the disk together
 * and the checked write-back that follows (writeback_log) mostly finds them
 * done, instead of sleeping once per file. Best effort: an error here shows
 * again in that checked call.
 */
static void start_writeback(wr_store_t *s, wr_batch_t *b)
{
    for (size_t i = 0; i < b->nlogs; i++) {
        wr_list_t *n;

        if (!b->logs[i].rides || b->logs[i].err != 0)
            continue;
        for (n = b->logs[i].log->inflight.next; n != &b->logs[i].log->inflight; n = n->next) {
            wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
            if (in_place(s, c))
                sync_file_range(c->seg->fd, (off_t)c->off, (off_t)c->data.len, SYNC_FILE_RANGE_WRITE);
        }
    }
}

/*
 * The in-place chunks of every log: each written back, then one fdatasync of
 * the last, whose device flush makes them all durable (a lone one is simply
 * fdatasync'ed). If that fails, every log that relied on it fails.
 */
static void sync_riders(wr_store_t *s, wr_batch_t *b, wr_chunk_t *last, size_t riders)
{
    int err;

    if (riders > 1)
        start_writeback(s, b);
    for (size_t i = 0; i < b->nlogs; i++) {
        if (b->logs[i].rides && b->logs[i].err == 0)
            writeback_log(s, &b->logs[i], last);
    }
    /* Not sync_seg: last is in place, and its log may have been rolled back meanwhile. */
    if ((err = sync_fd(s, last->seg->fd, last->seg->path)) == 0)
        return;
    for (size_t i = 0; i < b->nlogs; i++) {
        if (b->logs[i].rides && b->logs[i].err == 0) {
            fail(&b->logs[i], err, "fdatasync of", last->seg->path);
            rollback(&b->logs[i]);
        }
    }
}

/* Past the durable point: failures only leave extra files behind. */
static void log_after(wr_store_t *s, wr_batch_log_t *e)
{
    wr_seglog_t *log = e->log;
    bool changed = false;
    char eb[128];
    int err;

    if (e->front != 0) {
        char text[32];
        int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", e->front);
        if (wr_sync_replace_file(s, log->dir, "FRONT", text, (size_t)len, e->msg, sizeof(e->msg)) != WR_OK)
            note(e->msg, sizeof(e->msg), " (log '%s': truncated records may be replayed after a restart)",
                 log->name);
        changed = true;
    }
    for (size_t i = 0; i < e->nunlink; i++) {
        if (unlink(e->unlink[i]->path) != 0 && errno != ENOENT)
            note(e->msg, sizeof(e->msg), "log '%s': cannot delete %s: %s; ", log->name, e->unlink[i]->path,
                 errstr(errno, eb, sizeof(eb)));
        changed = true;
    }
    if (changed && (err = sync_dir(s, log->dir)) != 0)
        note(e->msg, sizeof(e->msg), "log '%s': fsync of directory %s failed: %s; ", log->name, log->dir,
             errstr(err, eb, sizeof(eb)));
}

static void run_batch(wr_store_t *s, wr_batch_t *b)
{
    wr_chunk_t *last = NULL;
    size_t riders = 0;
    char eb[128];
    int err;

    for (size_t i = 0; i < b->nlogs; i++)
        log_sync(s, &b->logs[i], &riders, &last);
    if (riders > 0)
        sync_riders(s, b, last, riders);
    for (size_t i = 0; i < b->nlogs; i++) {
        if (b->logs[i].err == 0)
            log_after(s, &b->logs[i]);
    }
    for (size_t i = 0; i < b->ntrash; i++)
        wr_sync_remove_dir(b->trash[i], b->msg, sizeof(b->msg));
    if (b->ntrash > 0 && (err = sync_dir(s, s->logs_dir)) != 0)
        note(b->msg, sizeof(b->msg), "fsync of directory %s failed: %s", s->logs_dir,
             errstr(err, eb, sizeof(eb)));
}

void *wr_sync_main(void *arg)
{
    wr_store_t *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        wr_batch_t *b;

        while (s->submitted == NULL && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->submitted == NULL)
            break;
        b = s->submitted;
        s->submitted = NULL;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, b);
        pthread_mutex_lock(&s->mu);
        s->completed = b;
        pthread_cond_broadcast(&s->done);
        pthread_mutex_unlock(&s->mu);
        /* Outside mu, so the owner it wakes does not block on mu next. Only
         * the owner reads the counter, so it cannot overflow; a failed add
         * would mean a bad descriptor, which the owner's poll reports itself. */
        eventfd_write(s->notify_fd, 1);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
