/* SPDX-License-Identifier: MIT */
/*
 * A barrier that waits until something is durable: a publisher confirm or a
 * transaction's commit holds one while its messages reach every log that
 * must store them. Header only (nothing to link): no storage, no libevent;
 * the logs (queue_log.c) release the holds they took.
 */
#ifndef WR_BROKER_CONFIRM_H
#define WR_BROKER_CONFIRM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The waiter holds it while routing (waiting starts at 1); each log the
 * message must be durable in adds a hold (wr_qlog_wait). `done` runs when the
 * last hold goes; failed says whether some log lost the message (then the
 * publisher gets a nack). Embedded in the waiter's own struct.
 */
typedef struct wr_confirm_s wr_confirm_t;
struct wr_confirm_s {
    uint32_t waiting;
    bool failed;
    void (*done)(wr_confirm_t *c); /* may free c */
};

/* Drops one hold; ok false marks the confirm failed. May run c->done, which
 * may free c: the caller must not touch c afterwards. Inline, as it was
 * inside queue_log.c, whose release loop calls it per waiting confirm. */
static inline void wr_confirm_release(wr_confirm_t *c, bool ok)
{
    if (!ok)
        c->failed = true;
    if (--c->waiting == 0)
        c->done(c);
}

#endif
