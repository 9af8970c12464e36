/* SPDX-License-Identifier: MIT */
/*
 * x-expires of quorum queues (docs/QUORUM.md "Expiry"), as RabbitMQ's
 * rabbit_fifo: the machine keeps the expiry (EXPIRES) and the leader time of
 * the queue's last use; the leader ticks while the queue has no consumer,
 * and when a TICK finds it unused for longer than its x-expires (EXPIRED)
 * the leader asks the metadata group to delete it on every node.
 */
#include "broker/cluster/quorum_internal.h"

#include "broker/base/log.h"
#include "core/status.h"

/* How often a leader asks again while the deletion has not gone through. */
#define ASK_EVERY_MS 5000

void wr_quorum_set_expirer(wr_quorum_t *qs, wr_quorum_expired_fn fn, void *ud)
{
    qs->expired = fn;
    qs->expired_ud = ud;
}

void wr_qq_expires_set(qq_t *q, int64_t expires)
{
    wr_qfifo_cmd_t cmd = {.op = WR_QF_EXPIRES, .expires_ms = expires > 0 ? (uint64_t)expires : 0};

    if (q->exp_sent && q->exp == cmd.expires_ms)
        return;
    q->exp = cmd.expires_ms;
    q->exp_sent = true;
    if (wr_qq_propose(q, &cmd, NULL, NULL) == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s' in vhost '%s': out of memory setting its x-expires",
                     (int)q->h.name.len, (const char *)q->h.name.data, q->vhost);
}

bool wr_qq_expiry_ticks(const qq_t *q)
{
    wr_qfifo_info_t i;

    wr_qfifo_info(q->sm, &i);
    return i.expires_ms != 0 && i.consumers == 0;
}

void wr_qq_expired(qq_t *q)
{
    uint64_t now = wr_qq_mono_ms();

    if (!q->leader || q->s == NULL || q->s->expired == NULL || q->h.closed || now < q->next_expire_ask)
        return;
    q->next_expire_ask = now + ASK_EVERY_MS;
    wr_log_info("quorum queue '%.*s' in vhost '%s' unused for its x-expires: deleting it", (int)q->h.name.len,
                (const char *)q->h.name.data, q->vhost);
    q->s->expired(q->s->expired_ud, q->vhost, q->h.name);
}
