/* SPDX-License-Identifier: MIT */
/*
 * At-least-once dead-lettering of a quorum queue (quorum_internal.h,
 * docs/QUORUM.md "Effects"): the leader publishes each dead letter the
 * machine keeps (x-dead-letter-strategy at-least-once with x-overflow
 * reject-publish) through the vhost's dead-letter routing with a confirm,
 * and proposes DLX_SETTLE once every target stored it. A failed confirm, a
 * new leader or a lost DLX_SETTLE means the message goes again: never lost,
 * perhaps twice.
 */
#include "broker/cluster/quorum_internal.h"

#include <stdlib.h>

#include "broker/base/log.h"
#include "core/status.h"

/* A DLX_SETTLE not applied this long after its confirm was lost: publish again. */
#define SETTLE_LOST_MS (WR_QUORUM_RETRY_MS + 5000)

/* One dead letter published from this node, until its DLX_SETTLE applies here. */
typedef struct {
    wr_confirm_t conf;
    qq_t *q;             /* a reference while the confirm is out */
    uint64_t id;         /* its dead-letter id in the machine */
    uint64_t settled_at; /* monotonic ms its targets confirmed; 0 while they have not */
    bool out;            /* the confirm is out */
    bool gone;           /* settled (or the queue freed its map) while out: freed by the confirm */
} dlx_rec_t;

static wr_bytes_t key_of(const uint64_t *v)
{
    return (wr_bytes_t){(const uint8_t *)v, sizeof(*v)};
}

wr_dl_reason_t wr_qq_dl_reason(uint8_t reason)
{
    static const wr_dl_reason_t why[] = {WR_DL_REJECTED, WR_DL_EXPIRED, WR_DL_MAXLEN, WR_DL_DELIVERY_LIMIT};

    return reason <= WR_QF_DL_DELIVERY_LIMIT ? why[reason] : WR_DL_REJECTED;
}

static void settle_propose(qq_t *q, uint64_t id)
{
    uint8_t raw[8];
    wr_qfifo_cmd_t cmd = {.op = WR_QF_DLX_SETTLE, .ids = {raw, sizeof(raw)}};

    wr_qfifo_ids_pack(raw, &id, 1);
    if (wr_qq_propose(q, &cmd, NULL, NULL) != WR_OK)
        wr_log_warn("quorum queue '%.*s': dead letter %llu confirmed but not settled; it will go again",
                    (int)q->h.name.len, (const char *)q->h.name.data, (unsigned long long)id);
}

/* The targets answered: settle the dead letter (ok), or forget it here so the next pass sends it again. */
static void on_confirm(wr_confirm_t *c)
{
    dlx_rec_t *r = (dlx_rec_t *)c;
    qq_t *q = r->q;

    r->out = false;
    r->q = NULL;
    if (r->gone) {
        free(r);
    } else if (c->failed || q->s == NULL || q->h.closed) {
        wr_map_del(q->dlx_out, key_of(&r->id));
        free(r);
    } else {
        r->settled_at = wr_qq_mono_ms();
        settle_propose(q, r->id);
    }
    wr_queue_unref(&q->h); /* last: it may free q and what its map still holds */
}

void wr_qq_dlx_publish(qq_t *q, uint64_t id, uint64_t index, uint8_t reason)
{
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    wr_message_t *m;
    dlx_rec_t *r;

    if (h == NULL || h->dead_letter_confirmed == NULL || wr_map_get(q->dlx_out, key_of(&id)) != NULL ||
        (m = wr_qq_body(q, index)) == NULL)
        return;
    if ((r = calloc(1, sizeof(*r))) == NULL || wr_map_put(q->dlx_out, key_of(&id), r) != WR_OK) {
        free(r);
        wr_message_unref(m);
        return; /* the next pass tries again */
    }
    *r = (dlx_rec_t){.conf = {.waiting = 1, .done = on_confirm}, .q = q, .id = id, .out = true};
    wr_queue_ref(&q->h);
    h->dead_letter_confirmed(q->h.sched->ud, &q->h, m, wr_qq_dl_reason(reason), &r->conf);
    wr_confirm_release(&r->conf, true); /* our own hold: the confirm may end here */
}

static void republish(void *ud, uint64_t id, uint64_t index, wr_qf_reason_t why)
{
    wr_qq_dlx_publish(ud, id, index, (uint8_t)why);
}

/* Confirmed records whose DLX_SETTLE never applied: dropped, so they go again. */
static void drop_lost(qq_t *q)
{
    uint64_t now = wr_qq_mono_ms();
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(q->dlx_out, &it, NULL, &v)) {
        dlx_rec_t *r = v;

        if (!r->out && r->settled_at + SETTLE_LOST_MS < now) {
            wr_map_del(q->dlx_out, key_of(&r->id));
            free(r);
        }
    }
}

void wr_qq_dlx_retry(qq_t *q)
{
    wr_qfifo_info_t i;

    wr_qfifo_info(q->sm, &i);
    if (!q->leader || q->h.closed || i.dlx_pending == 0)
        return;
    drop_lost(q);
    /* dead_letter_confirmed only queues the copy: the machine is not changed under the walk. */
    wr_qfifo_dlx_foreach(q->sm, republish, q);
}

void wr_qq_dlx_settled(qq_t *q, const wr_qfifo_cmd_t *cmd)
{
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++) {
        uint64_t id = wr_qfifo_cmd_id(cmd, k);
        dlx_rec_t *r = wr_map_del(q->dlx_out, key_of(&id));

        if (r != NULL && r->out)
            r->gone = true;
        else
            free(r);
    }
}

void wr_qq_dlx_free(qq_t *q)
{
    wr_map_iter_t it = {0};
    void *v;

    if (q->dlx_out == NULL)
        return;
    /* No confirm is out: each holds a reference to q. */
    while (wr_map_next(q->dlx_out, &it, NULL, &v))
        free(v);
    wr_map_free(q->dlx_out);
    q->dlx_out = NULL;
}
