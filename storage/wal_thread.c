/* SPDX-License-Identifier: MIT */
/*
 * The WAL's storage thread. One batch at a time crosses to it (the WAL keeps
 * one in flight): the owner prepares, the thread writes and syncs, an eventfd
 * tells the owner, which completes. Appends made during the sync wait in the
 * WAL's staging buffer and leave together as the next batch: group commit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/status.h"
#include "storage/wal_thread.h"

struct wr_wal_thread_s {
    wr_wal_t *w;
    uint64_t wb_budget;
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;
    wr_wal_batch_t *todo; /* handed to the thread, under mu */
    wr_wal_batch_t *done; /* written, not yet completed, under mu */
    bool stop;            /* under mu */
    bool inflight;        /* owner: a batch is todo or done */
    uint64_t batches;     /* owner */
};

/* Tells the owner a batch is written; retried on EINTR, and a full counter still wakes poll. */
static void signal_owner(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void *thread_main(void *arg)
{
    wr_wal_thread_t *t = arg;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        wr_wal_batch_t *b;
        while (t->todo == NULL && !t->stop)
            pthread_cond_wait(&t->work, &t->mu);
        if (t->todo == NULL)
            break;
        b = t->todo;
        pthread_mutex_unlock(&t->mu);
        wr_wal_write(b);
        pthread_mutex_lock(&t->mu);
        t->todo = NULL;
        t->done = b;
        signal_owner(t->fd);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int wr_wal_thread_new(wr_wal_t *w, uint64_t wb_budget, wr_wal_thread_t **out)
{
    wr_wal_thread_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return WR_ENOMEM;
    t->w = w;
    t->wb_budget = wb_budget;
    if ((t->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        goto err_fd;
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        goto err_mu;
    if (pthread_cond_init(&t->work, NULL) != 0)
        goto err_cond;
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0)
        goto err_thread;
    *out = t;
    return WR_OK;
err_thread:
    pthread_cond_destroy(&t->work);
err_cond:
    pthread_mutex_destroy(&t->mu);
err_mu:
    close(t->fd);
err_fd:
    free(t);
    return WR_EIO;
}

int wr_wal_thread_fd(const wr_wal_thread_t *t)
{
    return t->fd;
}

int wr_wal_thread_kick(wr_wal_thread_t *t)
{
    wr_wal_batch_t *b;
    int rc;

    if (t->inflight)
        return WR_OK;
    rc = wr_wal_prepare(t->w, &b);
    if (rc != WR_OK)
        return rc == WR_AGAIN ? WR_OK : rc;
    t->inflight = true;
    pthread_mutex_lock(&t->mu);
    t->todo = b;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->mu);
    return WR_OK;
}

/* The written batch, if any, taken from the thread. */
static wr_wal_batch_t *take_done(wr_wal_thread_t *t)
{
    wr_wal_batch_t *b;
    uint64_t n;

    while (read(t->fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&t->mu);
    b = t->done;
    t->done = NULL;
    pthread_mutex_unlock(&t->mu);
    return b;
}

int wr_wal_thread_dispatch(wr_wal_thread_t *t)
{
    wr_wal_batch_t *b = take_done(t);
    bool more = false;
    int rc = WR_OK;

    if (b == NULL)
        return WR_OK;
    t->inflight = false;
    t->batches++;
    wr_wal_complete(t->w, b);
    if (t->wb_budget > 0)
        rc = wr_wal_writebehind(t->w, t->wb_budget, &more);
    if (rc == WR_ESYNTAX) /* a damaged WAL record: reported, kept until the next recovery */
        rc = WR_OK;
    return rc == WR_OK ? wr_wal_thread_kick(t) : rc;
}

uint64_t wr_wal_thread_batches(const wr_wal_thread_t *t)
{
    return t->batches;
}

void wr_wal_thread_free(wr_wal_thread_t *t)
{
    wr_wal_batch_t *b;

    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL); /* it writes a batch handed over before it stops */
    if ((b = take_done(t)) != NULL)
        wr_wal_complete(t->w, b);
    pthread_cond_destroy(&t->work);
    pthread_mutex_destroy(&t->mu);
    close(t->fd);
    free(t);
}
