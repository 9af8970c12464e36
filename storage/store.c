/* SPDX-License-Identifier: MIT */
/*
 * The store, owner's side: opening the data directory (lock, version file,
 * leftovers of destroyed logs), the storage thread's lifecycle, and the batch
 * hand-off: flush submits one batch, the thread posts it back through the
 * eventfd, dispatch applies it and runs the durable callbacks.
 */
#include "storage/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/status.h"
#include "storage/storage_internal.h"
#include "storage/sync.h"

#define VERSION_TEXT "warren-storage "

void wr_store_msg(wr_store_t *s, const char *fmt, ...)
{
    char text[2 * WR_STORE_MSG_MAX];
    va_list ap;

    if (s->message == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    s->message(s->message_ud, text);
}

char *wr_store_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);

    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int lock_take(wr_store_t *s, char *err, size_t errlen)
{
    char *path = wr_store_path(s->dir, "LOCK");
    char text[32];
    int fd, n;

    if (path == NULL) {
        snprintf(err, errlen, "out of memory");
        return WR_ENOMEM;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
        goto err;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        long pid = 0;
        if (errno != EWOULDBLOCK) {
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
            goto err;
        }
        n = (int)pread(fd, text, sizeof(text) - 1, 0);
        if (n > 0) {
            text[n] = '\0';
            pid = strtol(text, NULL, 10);
        }
        if (pid > 0)
            snprintf(err, errlen, "storage directory %s is in use by another process (pid %ld holds %s)",
                     s->dir, pid, path);
        else
            snprintf(err, errlen, "storage directory %s is in use by another process (%s is locked)", s->dir,
                     path);
        goto err;
    }
    n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto err;
    }
    s->lock_fd = fd;
    free(path);
    return WR_OK;

err:
    if (fd >= 0)
        close(fd);
    free(path);
    return WR_EIO;
}

/* Parses "warren-storage <n>\n"; false if the text is anything else. */
static bool version_parse(const char *text, unsigned long *v)
{
    const char *p = text + strlen(VERSION_TEXT);
    char *end;

    if (strncmp(text, VERSION_TEXT, strlen(VERSION_TEXT)) != 0 || *p < '0' || *p > '9')
        return false;
    errno = 0;
    *v = strtoul(p, &end, 10);
    return errno == 0 && strcmp(end, "\n") == 0;
}

/* Reads VERSION, or writes it into a directory that holds no logs yet. */
static int version_check(wr_store_t *s, char *err, size_t errlen)
{
    char *path = wr_store_path(s->dir, "VERSION");
    char text[64], msg[WR_STORE_MSG_MAX] = "";
    unsigned long v;
    int fd, rc = WR_EIO;
    ssize_t n;

    if (path == NULL) {
        snprintf(err, errlen, "out of memory");
        return WR_ENOMEM;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (access(s->logs_dir, F_OK) == 0) {
            snprintf(err, errlen,
                     "storage directory %s holds logs but no VERSION file; refusing to guess its format",
                     s->dir);
            goto out;
        }
        snprintf(text, sizeof(text), VERSION_TEXT "%d\n", WR_STORE_VERSION);
        if (wr_sync_replace_file(s, s->dir, "VERSION", text, strlen(text), msg, sizeof(msg)) != WR_OK) {
            snprintf(err, errlen, "storage directory %s: %s", s->dir, msg);
            goto out;
        }
        if (wr_sync_dir(s, s->dir) != WR_OK) {
            snprintf(err, errlen, "fsync of %s failed: %s", s->dir, strerror(errno));
            goto out;
        }
        rc = WR_OK;
        goto out;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    text[n] = '\0';
    if (!version_parse(text, &v)) {
        snprintf(err, errlen, "%s is not a warren storage version file", path);
        rc = WR_ESYNTAX;
        goto out;
    }
    if (v != WR_STORE_VERSION) {
        snprintf(err, errlen,
                 "storage directory %s has format version %lu (%s); this build reads version %d only", s->dir,
                 v, path, WR_STORE_VERSION);
        rc = WR_EUNKNOWN;
        goto out;
    }
    rc = WR_OK;
out:
    free(path);
    return rc;
}

/* Creates logs/ and removes what destroyed logs left behind when a crash cut their removal short. */
static int logs_dir_prepare(wr_store_t *s, char *err, size_t errlen)
{
    char msg[WR_STORE_MSG_MAX] = "";
    struct dirent *de;
    bool removed = false;
    DIR *d;

    if (mkdir(s->logs_dir, 0750) == 0) {
        if (wr_sync_dir(s, s->dir) != WR_OK) {
            snprintf(err, errlen, "fsync of %s failed: %s", s->dir, strerror(errno));
            return WR_EIO;
        }
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", s->logs_dir, strerror(errno));
        return WR_EIO;
    }
    d = opendir(s->logs_dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", s->logs_dir, strerror(errno));
        return WR_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        char *path;
        if (strncmp(de->d_name, ".trash-", 7) != 0)
            continue;
        path = wr_store_path(s->logs_dir, de->d_name);
        if (path != NULL && wr_sync_remove_dir(path, msg, sizeof(msg)) == WR_OK)
            removed = true;
        free(path);
    }
    closedir(d);
    if (msg[0] != '\0')
        wr_store_msg(s, "storage directory %s: removing destroyed logs: %s", s->dir, msg);
    if (removed && wr_sync_dir(s, s->logs_dir) != WR_OK)
        wr_store_msg(s, "fsync of %s failed: %s", s->logs_dir, strerror(errno));
    return WR_OK;
}

static int opts_apply(wr_store_t *s, const wr_store_opts_t *o, char *err, size_t errlen)
{
    s->segment_size = o->segment_size ? o->segment_size : WR_STORE_DEFAULT_SEGMENT_SIZE;
    s->compact_pct = o->compact_live_percent ? o->compact_live_percent : WR_STORE_DEFAULT_COMPACT_PERCENT;
    s->reclaim_bytes =
        s->segment_size / 2 < WR_STORE_RECLAIM_BYTES ? s->segment_size / 2 : WR_STORE_RECLAIM_BYTES;
    if (s->segment_size < WR_STORE_MIN_SEGMENT_SIZE || s->segment_size > WR_STORE_MAX_SEGMENT_SIZE) {
        snprintf(err, errlen, "segment_size %llu is outside %u..%u", (unsigned long long)s->segment_size,
                 WR_STORE_MIN_SEGMENT_SIZE, WR_STORE_MAX_SEGMENT_SIZE);
        return WR_ESYNTAX;
    }
    if (s->compact_pct > 99) {
        snprintf(err, errlen, "compact_live_percent %u is outside 1..99", s->compact_pct);
        return WR_ESYNTAX;
    }
    if (o->commit_interval_us > INT64_MAX / 1000) {
        snprintf(err, errlen, "commit_interval_us %lld is too large", (long long)o->commit_interval_us);
        return WR_ESYNTAX;
    }
    s->pace_ns = (o->commit_interval_us ? o->commit_interval_us : WR_STORE_DEFAULT_COMMIT_INTERVAL_US) * 1000;
    if (o->unawaited_delay_us < 0 || o->unawaited_delay_us > INT64_MAX / 1000) {
        snprintf(err, errlen, "unawaited_delay_us %lld is outside 0..%lld", (long long)o->unawaited_delay_us,
                 (long long)(INT64_MAX / 1000));
        return WR_ESYNTAX;
    }
    s->hold_ns = o->unawaited_delay_us * 1000;
    s->message = o->message;
    s->message_ud = o->message_ud;
    s->fault = o->test_fault;
    s->fault_ud = o->test_fault_ud;
    return WR_OK;
}

/*
 * ext4 and XFS overwrite a file's allocated blocks in place, so data written
 * back inside a length an fdatasync already covered is durable after any
 * later device flush. Copy-on-write and unknown file systems get an
 * fdatasync per file.
 */
static bool overwrites_in_place(const char *dir)
{
    struct statfs st;

    return statfs(dir, &st) == 0 && (st.f_type == EXT4_SUPER_MAGIC || st.f_type == XFS_SUPER_MAGIC);
}

wr_store_t *wr_store_open(const char *dir, const wr_store_opts_t *opts, char *err, size_t errlen)
{
    static const wr_store_opts_t defaults;
    wr_store_t *s = calloc(1, sizeof(*s));
    bool sync_ok = false;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->lock_fd = s->notify_fd = -1;
    wr_list_init(&s->logs);
    wr_list_init(&s->dirty);
    wr_list_init(&s->retrying);
    wr_list_init(&s->notify);
    if (opts_apply(s, opts ? opts : &defaults, err, errlen) != WR_OK)
        goto err;
    s->dir = strdup(dir);
    s->logs_dir = wr_store_path(dir, "logs");
    s->by_name = wr_map_new();
    if (s->dir == NULL || s->logs_dir == NULL || s->by_name == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create storage directory %s: %s", dir, strerror(errno));
        goto err;
    }
    s->flush_once = overwrites_in_place(dir);
    if (lock_take(s, err, errlen) != WR_OK || version_check(s, err, errlen) != WR_OK ||
        logs_dir_prepare(s, err, errlen) != WR_OK)
        goto err;
    s->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->notify_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto err;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto err_thread;
    if (pthread_cond_init(&s->work, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        goto err_thread;
    }
    if (pthread_cond_init(&s->done, NULL) != 0) {
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
        goto err_thread;
    }
    sync_ok = true;
    if (pthread_create(&s->thread, NULL, wr_sync_main, s) != 0)
        goto err_thread;
    return s;

err_thread:
    snprintf(err, errlen, "cannot start the storage thread for %s", dir);
err:
    if (sync_ok) {
        pthread_cond_destroy(&s->done);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
    }
    if (s->notify_fd >= 0)
        close(s->notify_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    wr_map_free(s->by_name);
    free(s->logs_dir);
    free(s->dir);
    free(s);
    return NULL;
}

void wr_store_submit(wr_store_t *s)
{
    wr_list_t *p, *t;
    wr_batch_t *b;
    size_t n = 0;

    if (s->inflight != NULL) {
        s->flush_wanted = true;
        return;
    }
    s->flush_wanted = false;
    wr_list_foreach_safe(p, t, &s->dirty) n++;
    if (n == 0 && s->ntrash == 0)
        return;
    s->last_submit = wr_mono_ns();
    /* Waited out its interval: not when an awaited record took held ones early. */
    s->last_paced = s->pace_until != 0 && s->last_submit >= s->pace_until;
    s->held_since = s->pace_until = 0;
    b = calloc(1, sizeof(*b));
    if (b == NULL || (n > 0 && (b->logs = calloc(n, sizeof(*b->logs))) == NULL)) {
        /* Nothing is lost: the work stays queued for the next flush. */
        free(b);
        s->flush_wanted = true;
        wr_store_msg(s, "storage: out of memory handing a batch to the storage thread");
        return;
    }
    /* Pop from the head: preparing a log may append (compaction), which marks
     * it dirty again, and prepare takes it off the list before returning. */
    while (!wr_list_empty(&s->dirty) && b->nlogs < n) {
        wr_seglog_t *log = wr_list_entry(s->dirty.next, wr_seglog_t, dirty);
        wr_list_remove(&log->dirty);
        wr_seglog_batch_prepare(log, &b->logs[b->nlogs]);
        log->flight = &b->logs[b->nlogs++];
    }
    s->last_awaited = s->awaited;
    s->awaited = s->awaited_behind = false;
    b->trash = s->trash;
    b->ntrash = s->ntrash;
    s->trash = NULL;
    s->ntrash = 0;
    pthread_mutex_lock(&s->mu);
    s->submitted = b;
    pthread_mutex_unlock(&s->mu);
    /* After unlocking: woken inside, the thread would block at once on mu. */
    pthread_cond_signal(&s->work);
    s->inflight = b;
}

/* Takes the completed batch (waiting for it if asked) and applies it; callbacks are left to dispatch. */
static void store_complete(wr_store_t *s, bool wait)
{
    wr_batch_t *b;

    pthread_mutex_lock(&s->mu);
    while (wait && s->completed == NULL)
        pthread_cond_wait(&s->done, &s->mu);
    b = s->completed;
    s->completed = NULL;
    pthread_mutex_unlock(&s->mu);
    if (b == NULL)
        return;
    s->inflight = NULL;
    for (size_t i = 0; i < b->nlogs; i++) {
        b->logs[i].log->flight = NULL;
        wr_seglog_batch_done(b->logs[i].log, &b->logs[i]);
    }
    if (b->msg[0] != '\0')
        wr_store_msg(s, "storage directory %s: removing destroyed logs: %s", s->dir, b->msg);
    for (size_t i = 0; i < b->ntrash; i++)
        free(b->trash[i]);
    free(b->trash);
    free(b->logs);
    free(b);
}

void wr_store_wait(wr_store_t *s)
{
    if (s->inflight != NULL)
        store_complete(s, true);
}

void wr_store_mark_dirty(wr_store_t *s, wr_seglog_t *log)
{
    if (log->retry_at != 0) {
        log->retry_at = 0;
        wr_list_remove(&log->dirty);
    }
    if (wr_list_empty(&log->dirty))
        wr_list_insert_tail(&s->dirty, &log->dirty);
}

/*
 * Parks log on the retrying list until its retry is due. Retried at every
 * flush instead, a failure that persists (a full descriptor table, a dead
 * disk) cost a batch and a message each time, and a failed retry prompts
 * the next flush (the topology journal answers a failure with a snapshot,
 * which flushes): three lines every unawaited_delay_us.
 */
void wr_store_retry_later(wr_store_t *s, wr_seglog_t *log)
{
    log->retry_ns = wr_backoff_next(log->retry_ns, WR_RETRY_MIN_NS, WR_RETRY_MAX_NS);
    log->retry_at = wr_mono_ns() + log->retry_ns;
    wr_list_remove(&log->dirty);
    wr_list_insert_tail(&s->retrying, &log->dirty);
}

/* Logs whose retry is due go back on the dirty list (wr_store_flush_due_us
 * tells the owner when to flush for them). */
static void retry_due(wr_store_t *s)
{
    wr_list_t *p, *t;
    uint64_t now;

    if (wr_list_empty(&s->retrying))
        return;
    now = wr_mono_ns();
    wr_list_foreach_safe(p, t, &s->retrying)
    {
        wr_seglog_t *log = wr_list_entry(p, wr_seglog_t, dirty);

        if (log->retry_at <= now)
            wr_store_mark_dirty(s, log);
    }
}

void wr_store_mark_notify(wr_store_t *s, wr_seglog_t *log)
{
    if (wr_list_empty(&log->notify))
        wr_list_insert_tail(&s->notify, &log->notify);
}

/* A fresh name under logs/ to move a destroyed log's directory to. */
static char *trash_path(wr_store_t *s, const char *name)
{
    char leaf[256];
    char *path = NULL;

    do {
        free(path);
        snprintf(leaf, sizeof(leaf), ".trash-%" PRIu64 "-%s", s->trash_seq++, name);
        path = wr_store_path(s->logs_dir, leaf);
    } while (path != NULL && access(path, F_OK) == 0);
    return path;
}

int wr_store_trash(wr_store_t *s, const char *name, const char *dir)
{
    char *trash = trash_path(s, name), **list;

    if (trash == NULL) {
        wr_store_msg(s, "log '%s': out of memory deleting it", name);
        return WR_ENOMEM;
    }
    if (rename(dir, trash) != 0) {
        wr_store_msg(s, "log '%s': cannot move %s aside to delete it: %s", name, dir, strerror(errno));
        free(trash);
        return WR_EIO;
    }
    list = realloc(s->trash, (s->ntrash + 1) * sizeof(*list));
    if (list == NULL) {
        /* The directory is out of the way; the next wr_store_open removes it. */
        free(trash);
        return WR_OK;
    }
    s->trash = list;
    s->trash[s->ntrash++] = trash;
    return WR_OK;
}

int wr_store_logs(wr_store_t *s, void (*fn)(void *ud, const char *name), void *ud, char *err, size_t errlen)
{
    struct dirent *de;
    DIR *d = opendir(s->logs_dir);

    if (d == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", s->logs_dir, strerror(errno));
        return WR_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        if (wr_seglog_name_ok(de->d_name))
            fn(ud, de->d_name);
    }
    closedir(d);
    return WR_OK;
}

int wr_store_remove_log(wr_store_t *s, const char *name)
{
    char *dir;
    int rc;

    if (!wr_seglog_name_ok(name))
        return WR_ENOENT;
    if (wr_map_get(s->by_name, wr_bytes_str(name)) != NULL)
        return WR_EEXIST;
    dir = wr_store_path(s->logs_dir, name);
    if (dir == NULL)
        return WR_ENOMEM;
    rc = access(dir, F_OK) == 0 ? wr_store_trash(s, name, dir) : WR_ENOENT;
    free(dir);
    return rc;
}

int wr_store_write_file(wr_store_t *s, const char *name, const void *data, size_t len, char *err,
                        size_t errlen)
{
    char msg[WR_STORE_MSG_MAX] = "";

    if (strcmp(name, "LOCK") == 0 || strcmp(name, "VERSION") == 0 || strcmp(name, "logs") == 0 ||
        strchr(name, '/') != NULL) {
        snprintf(err, errlen, "storage directory %s: '%s' is not a name for an owner's file", s->dir, name);
        return WR_ESYNTAX;
    }
    if (wr_sync_replace_file(s, s->dir, name, data, len, msg, sizeof(msg)) != WR_OK) {
        snprintf(err, errlen, "storage directory %s: %s", s->dir, msg);
        return WR_EIO;
    }
    if (wr_sync_dir(s, s->dir) != WR_OK) {
        snprintf(err, errlen, "fsync of %s failed: %s", s->dir, strerror(errno));
        return WR_EIO;
    }
    return WR_OK;
}

void wr_store_close(wr_store_t *s)
{
    if (s == NULL)
        return;
    while (!wr_list_empty(&s->logs))
        wr_seglog_close(wr_list_entry(s->logs.next, wr_seglog_t, link));
    wr_store_wait(s);
    if (s->ntrash > 0) {
        wr_store_submit(s);
        wr_store_wait(s);
    }
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    close(s->notify_fd);
    close(s->lock_fd); /* releases the flock */
    wr_map_free(s->by_name);
    free(s->logs_dir);
    free(s->dir);
    free(s);
}

int wr_store_notify_fd(const wr_store_t *s)
{
    return s->notify_fd;
}

/*
 * Whether the records waiting for a batch stay in memory a while longer
 * (unawaited_delay_us) instead of going now: nothing awaits them, they are
 * few, no deleted log waits to be removed, and they have not waited their
 * time yet. No batch is in flight: one that is takes them next in any case.
 */
static bool hold(wr_store_t *s)
{
    uint64_t now;

    if (s->hold_ns == 0 || s->inflight != NULL || s->awaited || s->ntrash > 0 || wr_list_empty(&s->dirty) ||
        s->pending_bytes >= WR_STORE_PACE_BYTES)
        return false;
    now = wr_mono_ns();
    if (s->held_since == 0)
        s->held_since = now;
    if (now - s->held_since >= (uint64_t)s->hold_ns)
        return false;
    /* Held, they did not pile up behind a sync: not paced when they go. */
    s->flush_wanted = false;
    return true;
}

/*
 * Whether the records waiting for a batch wait for the commit interval, in
 * memory, so that under steady load a batch and its sync carry more
 * records: they are few, the last batch went less than an interval ago, and
 * the load is steady. For records nothing awaits, steady means they piled up
 * behind a batch in flight. For awaited ones, it means the last batch was
 * awaited too, and something was awaited while it was in flight or it waited
 * for the interval itself. So a record awaited after an unpaced batch was
 * done (a publisher that waits for each confirm), or behind a batch nothing
 * awaited (its consumer's acks), goes at once, and takes held records along.
 * They wait here, not in the storage thread, so what arrives meanwhile
 * still makes the batch instead of waiting for the next one.
 */
static bool pace_held(wr_store_t *s)
{
    uint64_t until = s->last_submit + (uint64_t)s->pace_ns;
    bool steady = s->awaited ? s->last_awaited && (s->awaited_behind || s->last_paced) : s->flush_wanted;

    if (s->inflight != NULL || !steady || s->pace_ns <= 0 || s->pending_bytes >= WR_STORE_PACE_BYTES ||
        wr_mono_ns() >= until)
        return false;
    s->pace_until = until;
    return true;
}

void wr_store_flush(wr_store_t *s)
{
    retry_due(s);
    if (!hold(s) && !pace_held(s))
        wr_store_submit(s);
}

int64_t wr_store_flush_due_us(const wr_store_t *s)
{
    uint64_t now, due = s->held_since != 0 ? s->held_since + (uint64_t)s->hold_ns : 0;
    const wr_list_t *p;

    if (s->pace_until != 0 && (due == 0 || s->pace_until < due))
        due = s->pace_until;
    if (wr_list_empty(&s->dirty))
        due = 0;
    for (p = s->retrying.next; p != &s->retrying; p = p->next) {
        const wr_seglog_t *log = wr_list_entry(p, wr_seglog_t, dirty);
        if (due == 0 || log->retry_at < due)
            due = log->retry_at;
    }
    if (due == 0 || s->inflight != NULL)
        return -1;
    now = wr_mono_ns();
    return due > now ? (int64_t)((due - now + 999) / 1000) : 0;
}

void wr_store_awaited(wr_store_t *s)
{
    if (s->inflight != NULL)
        s->awaited_behind = true;
    s->awaited = true;
}

/*
 * The log's next durable callback, in the order things happened: what was
 * durable before a write error, then the error, then what became durable
 * after it. False if it has no news.
 */
static bool log_news(wr_seglog_t *log, uint64_t *index, int *status)
{
    *status = WR_OK;
    if (log->fail_pending && log->fail_from > log->reported) {
        *index = log->reported = log->fail_from;
    } else if (log->fail_pending) {
        log->fail_pending = false;
        *index = log->fail_upto;
        *status = WR_EIO;
        if (log->fail_upto > log->reported)
            log->reported = log->fail_upto;
    } else if (log->durable > log->reported) {
        *index = log->reported = log->durable;
    } else {
        return false;
    }
    return true;
}

void wr_store_dispatch(wr_store_t *s)
{
    eventfd_t count;

    /* Drain before taking, so a batch posted meanwhile leaves the fd readable. */
    eventfd_read(s->notify_fd, &count);
    store_complete(s, false);
    while (!wr_list_empty(&s->notify)) {
        wr_seglog_t *log = wr_list_entry(s->notify.next, wr_seglog_t, notify);
        uint64_t index;
        int status;

        wr_list_remove(&log->notify);
        if (!log_news(log, &index, &status))
            continue;
        /* Queue the rest of its news before the call: after it, log may be gone. */
        if (log->fail_pending || log->durable > log->reported)
            wr_store_mark_notify(s, log);
        if (log->cbs.durable != NULL)
            log->cbs.durable(log->cbs.ud, log, index, status);
    }
    if (s->flush_wanted && !hold(s) && !pace_held(s))
        wr_store_submit(s);
}

bool wr_store_idle(const wr_store_t *s)
{
    return s->inflight == NULL && !s->flush_wanted;
}

uint64_t wr_store_pending_bytes(const wr_store_t *s)
{
    return s->pending_bytes;
}
