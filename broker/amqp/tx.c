/* SPDX-License-Identifier: MIT */
/*
 * Transactions: the buffer of a channel's uncommitted publishes and
 * settlements, commit (apply in order, then wait for the disk with one
 * confirm shared by the commit's publishes) and rollback. Commit-oks go out
 * in commit order.
 */
#include "broker/amqp/tx.h"

#include <inttypes.h>
#include <stdlib.h>

#include "broker/amqp/channel_internal.h"
#include "broker/amqp/handle_basic.h"
#include "core/list.h"
#include "core/status.h"

typedef struct {
    bool publish; /* else a settlement */
    union {
        struct {
            wr_exchange_t *x;
            wr_message_t *m;
            bool mandatory;
        } pub;
        struct {
            uint64_t tag;
            bool multiple;
            wr_settle_t how;
        } settle;
    } u;
} tx_op_t;

/* A commit until its persistent messages are on disk. */
typedef struct {
    wr_confirm_t base;
    wr_tx_t *tx; /* NULL once the channel is gone */
    bool done;
    wr_list_t node; /* in tx->commits */
} tx_commit_t;

struct wr_tx_s {
    wr_channel_t *ch;
    tx_op_t *ops;
    size_t nops;
    size_t cap;
    size_t publishes;
    uint64_t bytes;
    wr_list_t commits; /* waiting for the disk, in commit order */
};

static void ops_clear(wr_tx_t *tx)
{
    for (size_t i = 0; i < tx->nops; i++) {
        if (tx->ops[i].publish) {
            wr_message_unref(tx->ops[i].u.pub.m);
            wr_exchange_unref(tx->ops[i].u.pub.x);
        }
    }
    tx->nops = 0;
    tx->publishes = 0;
    tx->bytes = 0;
}

static tx_op_t *op_add(wr_tx_t *tx)
{
    if (tx->nops == tx->cap) {
        size_t ncap = tx->cap ? tx->cap * 2 : 16;
        tx_op_t *n = realloc(tx->ops, ncap * sizeof(*n));

        if (n == NULL)
            return NULL;
        tx->ops = n;
        tx->cap = ncap;
    }
    return &tx->ops[tx->nops++];
}

bool wr_tx_publish(wr_tx_t *tx, wr_exchange_t *x, wr_message_t *m, bool mandatory, wr_amqp_error_t *err)
{
    tx_op_t *op;

    if (tx->publishes >= WR_TX_MAX_PUBLISHES || tx->bytes + m->body_size > WR_TX_MAX_BYTES) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, WR_BASIC_PUBLISH,
                          "transaction too large: at most %d uncommitted messages of %llu bytes in all",
                          WR_TX_MAX_PUBLISHES, WR_TX_MAX_BYTES);
        return false;
    }
    op = op_add(tx);
    if (op == NULL) {
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, WR_BASIC_PUBLISH, "out of memory");
        return false;
    }
    op->publish = true;
    op->u.pub.x = wr_exchange_ref(x);
    op->u.pub.m = wr_message_ref(m);
    op->u.pub.mandatory = mandatory;
    tx->publishes++;
    tx->bytes += m->body_size;
    return true;
}

bool wr_tx_settle(wr_tx_t *tx, uint32_t method, uint64_t tag, bool multiple, wr_settle_t how,
                  wr_amqp_error_t *err)
{
    tx_op_t *op;

    /* Tag 0 with multiple means "everything delivered so far". */
    if (tag > tx->ch->last_tag || (tag == 0 && !multiple)) {
        wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, method, "unknown delivery tag %" PRIu64, tag);
        return false;
    }
    op = op_add(tx);
    if (op == NULL) {
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
        return false;
    }
    op->publish = false;
    op->u.settle.tag = tag;
    op->u.settle.multiple = multiple;
    op->u.settle.how = how;
    return true;
}

/* Sends the replies of the finished commits at the head of the list. */
static void commits_advance(wr_tx_t *tx)
{
    wr_method_t ok = {.id = WR_TX_COMMIT_OK};
    wr_amqp_error_t e;

    while (!wr_list_empty(&tx->commits)) {
        tx_commit_t *c = wr_list_entry(tx->commits.next, tx_commit_t, node);
        bool failed = c->base.failed;

        if (!c->done)
            return;
        wr_list_remove(&c->node);
        free(c);
        if (tx->ch->state != WR_CH_OPEN)
            continue;
        if (!failed) {
            wr_channel_send(tx->ch, &ok);
            continue;
        }
        /* A queue refused a message or lost it: RabbitMQ's verdict. */
        wr_amqp_error_set(&e, WR_AMQP_PRECONDITION_FAILED, WR_TX_COMMIT, "partial tx completion");
        wr_channel_error(tx->ch, &e);
    }
}

static void commit_done(wr_confirm_t *b)
{
    tx_commit_t *c = (tx_commit_t *)b;

    if (c->tx == NULL) {
        free(c);
        return;
    }
    c->done = true;
    commits_advance(c->tx);
}

static bool commit(wr_channel_t *ch, wr_amqp_error_t *err)
{
    wr_tx_t *tx = ch->tx;
    tx_commit_t *c = malloc(sizeof(*c));

    if (c == NULL) {
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, WR_TX_COMMIT, "out of memory");
        return false;
    }
    c->base = (wr_confirm_t){1, false, commit_done};
    c->tx = tx;
    c->done = false;
    wr_list_insert_tail(&tx->commits, &c->node);
    for (size_t i = 0; i < tx->nops; i++) {
        tx_op_t *op = &tx->ops[i];

        if (op->publish) {
            if (!wr_handle_basic_route(ch, op->u.pub.x, op->u.pub.m, op->u.pub.mandatory, &c->base))
                c->base.failed = true;
        } else {
            /* A tag settled since (basic.recover, an earlier op) is gone:
             * nothing left to do for it. */
            wr_unacked_settle(ch->unacked, op->u.settle.tag, op->u.settle.multiple, op->u.settle.how);
        }
    }
    ops_clear(tx);
    wr_channel_wake_queues(ch);
    /* The commit's own hold: commit-ok now, or when the disk has it all. */
    wr_confirm_release(&c->base, true);
    return true;
}

bool wr_handle_tx(wr_channel_t *ch, const wr_method_t *m, wr_amqp_error_t *err)
{
    wr_method_t ok = {0};

    switch (m->id) {
    case WR_TX_SELECT:
        if (ch->confirm) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, m->id,
                              "cannot switch from confirm to tx mode");
            return false;
        }
        if (ch->tx == NULL) {
            ch->tx = calloc(1, sizeof(*ch->tx));
            if (ch->tx == NULL) {
                wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, m->id, "out of memory");
                return false;
            }
            ch->tx->ch = ch;
            wr_list_init(&ch->tx->commits);
        }
        ok.id = WR_TX_SELECT_OK;
        break;
    case WR_TX_COMMIT:
    case WR_TX_ROLLBACK:
        if (ch->tx == NULL) {
            wr_amqp_error_set(err, WR_AMQP_PRECONDITION_FAILED, m->id, "channel is not transactional");
            return false;
        }
        if (m->id == WR_TX_COMMIT)
            return commit(ch, err);
        ops_clear(ch->tx);
        ok.id = WR_TX_ROLLBACK_OK;
        break;
    default:
        wr_amqp_error_set(err, WR_AMQP_COMMAND_INVALID, m->id, "unimplemented method");
        return false;
    }
    wr_channel_send(ch, &ok);
    return true;
}

void wr_tx_free(wr_tx_t *tx)
{
    if (tx == NULL)
        return;
    ops_clear(tx);
    free(tx->ops);
    while (!wr_list_empty(&tx->commits)) {
        tx_commit_t *c = wr_list_entry(tx->commits.next, tx_commit_t, node);

        wr_list_remove(&c->node);
        if (c->done)
            free(c);
        else
            c->tx = NULL;
    }
    free(tx);
}
