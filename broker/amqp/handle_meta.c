/* SPDX-License-Identifier: MIT */
/*
 * Definition changes through the metadata group (see handle_meta.h). The
 * connection stays parked from the proposal to the reply, so at most one
 * change per connection is in flight and its channel cannot be freed in
 * between except by a teardown, which cancels the wait.
 */
#include "broker/amqp/handle_meta.h"

#include <stdlib.h>
#include <string.h>

#include "broker/amqp/channel_internal.h"
#include "broker/cluster/meta.h"

typedef struct {
    wr_channel_t *ch;
    wr_conn_t *conn;
    wr_meta_op_t *op;
    uint32_t method;
    bool nowait;
    uint8_t name_len;
    uint8_t name[255];
} wait_t;

struct wr_meta_s *wr_handle_meta(const wr_channel_t *ch)
{
    return wr_conn_env(ch->conn)->meta;
}

static uint32_t ok_id(uint32_t method)
{
    switch (method) {
    case WR_EXCHANGE_DECLARE:
        return WR_EXCHANGE_DECLARE_OK;
    case WR_EXCHANGE_DELETE:
        return WR_EXCHANGE_DELETE_OK;
    case WR_EXCHANGE_BIND:
        return WR_EXCHANGE_BIND_OK;
    case WR_EXCHANGE_UNBIND:
        return WR_EXCHANGE_UNBIND_OK;
    case WR_QUEUE_DECLARE:
        return WR_QUEUE_DECLARE_OK;
    case WR_QUEUE_BIND:
        return WR_QUEUE_BIND_OK;
    case WR_QUEUE_UNBIND:
        return WR_QUEUE_UNBIND_OK;
    default:
        return WR_QUEUE_DELETE_OK;
    }
}

/* The -ok; a queue.declare-ok counts what the queue holds here (its home). */
static void send_ok(wait_t *w, const wr_meta_result_t *r)
{
    wr_method_t m = {.id = ok_id(w->method)};
    wr_bytes_t name = {w->name, w->name_len};
    wr_queue_t *q;

    if (w->method == WR_QUEUE_DECLARE) {
        wr_channel_set_last_queue(w->ch, name);
        wr_counters_add(wr_conn_env(w->conn)->counters, WR_CNT_QUEUES_DECLARED, 1);
        q = wr_vhost_queue(w->ch->vhost, name);
        m.u.queue_declare_ok.queue = name;
        m.u.queue_declare_ok.message_count = q != NULL ? (uint32_t)wr_queue_ready(q) : 0;
        m.u.queue_declare_ok.consumer_count = q != NULL ? (uint32_t)wr_queue_consumer_count(q) : 0;
    } else if (w->method == WR_QUEUE_DELETE) {
        m.u.queue_delete_ok.message_count = r->messages;
    }
    if (!w->nowait)
        wr_channel_send(w->ch, &m);
}

static void on_result(void *ud, const wr_meta_result_t *r)
{
    wait_t *w = ud;
    wr_amqp_error_t e = r->err;
    wr_conn_t *c = w->conn;

    if (w->ch->state == WR_CH_OPEN && e.code != 0) {
        e.class_id = WR_METHOD_CLASS(w->method);
        e.method_id = WR_METHOD_INDEX(w->method);
        wr_channel_error(w->ch, &e);
    } else if (w->ch->state == WR_CH_OPEN) {
        send_ok(w, r);
    }
    free(w);
    wr_conn_unpark(c);
}

static void on_cancel(void *ud)
{
    wait_t *w = ud;

    wr_meta_cancel(w->op);
    free(w);
}

bool wr_handle_meta_propose(wr_channel_t *ch, json_t *cmd, uint32_t method, bool nowait, wr_bytes_t name,
                            wr_amqp_error_t *err)
{
    wait_t *w = calloc(1, sizeof(*w));

    if (w == NULL || name.len > sizeof(w->name)) {
        json_decref(cmd);
        free(w);
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
        return false;
    }
    *w = (wait_t){
        .ch = ch, .conn = ch->conn, .method = method, .nowait = nowait, .name_len = (uint8_t)name.len};
    if (name.len > 0)
        memcpy(w->name, name.data, name.len);
    w->op = wr_meta_submit(wr_handle_meta(ch), cmd, on_result, w);
    if (w->op == NULL) {
        free(w);
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method, "out of memory");
        return false;
    }
    wr_conn_park(ch->conn, on_cancel, w);
    return true;
}
