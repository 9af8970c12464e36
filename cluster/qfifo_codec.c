/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue machine's bytes: its commands as Raft log entries and its
 * snapshots. Every read goes through the bounded cursor (core/cursor.h),
 * every count is bounded by the bytes that could hold it before anything is
 * allocated, and a snapshot that loads saves back to the same bytes. All
 * integers big-endian.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/qfifo_internal.h"
#include "core/cursor.h"
#include "core/status.h"

#define SNAP_MAGIC   "QFIF"
#define SNAP_VERSION 2  /* 2: x-expires and the last use; 1 is still read */
#define MSG_BYTES    24 /* a message record in a snapshot */
#define OUT_BYTES    (MSG_BYTES + 16)
#define PUB_BYTES    16
#define CONS_BYTES   (8 * 4 + 4 + 4 + 1 + 1 + 4) /* a consumer with an empty tag and nothing out */

/* A u8 no greater than max (an enum, a flag set). */
static bool rd_u8(wr_cursor_t *r, uint8_t *out, uint8_t max)
{
    return wr_rd_u8(r, out) && *out <= max;
}

/* A count of records of at least each bytes that the rest of the input could hold. */
static bool rd_count(wr_cursor_t *r, size_t each, size_t max, uint32_t *n)
{
    return wr_rd_u32(r, n) && *n <= max && *n <= wr_cursor_left(r) / each;
}

uint64_t wr_qfifo_cmd_id(const wr_qfifo_cmd_t *cmd, size_t i)
{
    wr_cursor_t r = wr_cursor((wr_bytes_t){cmd->ids.data + 8 * i, 8});
    uint64_t v = 0;

    wr_rd_u64(&r, &v);
    return v;
}

void wr_qfifo_ids_pack(uint8_t *out, const uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < 8; b++)
            out[8 * i + b] = (uint8_t)(ids[i] >> (56 - 8 * b));
}

/* ---- commands ---- */

static void put_policy(wr_buf_t *b, const wr_qfifo_policy_t *p)
{
    wr_buf_put_u64(b, p->max_length);
    wr_buf_put_u64(b, p->max_bytes);
    wr_buf_put_u8(b, p->overflow);
    wr_buf_put_u8(b, p->dlx);
    wr_buf_put_u8(b, p->single_active);
    wr_buf_put_u32(b, p->msg_ttl_ms);
    wr_buf_put_u32(b, p->delivery_limit);
    wr_buf_put_u32(b, p->consumer_timeout_ms);
}

static bool rd_policy(wr_cursor_t *r, wr_qfifo_policy_t *p)
{
    return wr_rd_u64(r, &p->max_length) && wr_rd_u64(r, &p->max_bytes) && rd_u8(r, &p->overflow, 1) &&
           rd_u8(r, &p->dlx, 2) && rd_u8(r, &p->single_active, 1) && wr_rd_u32(r, &p->msg_ttl_ms) &&
           wr_rd_u32(r, &p->delivery_limit) && wr_rd_u32(r, &p->consumer_timeout_ms);
}

static void put_key(wr_buf_t *b, const wr_qfifo_cmd_t *cmd)
{
    wr_buf_put_u64(b, cmd->owner);
    wr_buf_put_u8(b, (uint8_t)cmd->tag.len);
    wr_buf_put(b, cmd->tag.data, cmd->tag.len);
}

static void put_ids(wr_buf_t *b, const wr_qfifo_cmd_t *cmd)
{
    wr_buf_put_u32(b, (uint32_t)wr_qfifo_cmd_nids(cmd));
    wr_buf_put(b, cmd->ids.data, wr_qfifo_cmd_nids(cmd) * 8);
}

static void put_body(wr_buf_t *b, const wr_qfifo_cmd_t *cmd)
{
    switch (cmd->op) {
    case WR_QF_ENQUEUE:
        wr_buf_put_u64(b, cmd->owner);
        wr_buf_put_u64(b, cmd->seq);
        wr_buf_put_u32(b, cmd->size);
        wr_buf_put_u8(b, cmd->priority);
        wr_buf_put_u32(b, cmd->ttl_ms);
        break;
    case WR_QF_CHECKOUT:
        put_key(b, cmd);
        wr_buf_put_u32(b, cmd->prefetch);
        wr_buf_put_u32(b, (uint32_t)cmd->cprio);
        break;
    case WR_QF_SETTLE:
    case WR_QF_RETURN:
    case WR_QF_DISCARD:
        put_key(b, cmd);
        put_ids(b, cmd);
        break;
    case WR_QF_CREDIT:
        put_key(b, cmd);
        wr_buf_put_u32(b, cmd->prefetch);
        break;
    case WR_QF_CANCEL:
        put_key(b, cmd);
        break;
    case WR_QF_DOWN:
        wr_buf_put_u64(b, cmd->owner);
        break;
    case WR_QF_POLICY:
        put_policy(b, &cmd->policy);
        break;
    case WR_QF_DLX_SETTLE:
        put_ids(b, cmd);
        break;
    case WR_QF_DEQUEUE:
        put_key(b, cmd);
        wr_buf_put_u8(b, cmd->no_ack);
        break;
    case WR_QF_EXPIRES:
        wr_buf_put_u64(b, cmd->expires_ms);
        break;
    case WR_QF_PURGE:
    case WR_QF_TICK:
        break;
    }
}

bool wr_qfifo_cmd_put(wr_buf_t *b, uint64_t time_ms, const wr_qfifo_cmd_t *cmd)
{
    if (cmd->tag.len > UINT8_MAX || wr_qfifo_cmd_nids(cmd) > WR_QF_MAX_IDS)
        return false;
    wr_buf_put_u8(b, (uint8_t)cmd->op);
    wr_buf_put_u64(b, time_ms);
    put_body(b, cmd);
    return wr_buf_ok(b);
}

bool wr_qfifo_cmd_stamp(uint8_t *data, size_t len, uint64_t time_ms)
{
    if (len < 9)
        return false;
    for (int i = 0; i < 8; i++)
        data[1 + i] = (uint8_t)(time_ms >> (56 - 8 * i));
    return true;
}

static bool rd_key(wr_cursor_t *r, wr_qfifo_cmd_t *cmd)
{
    return wr_rd_u64(r, &cmd->owner) && wr_rd_shortstr(r, &cmd->tag);
}

static bool rd_ids(wr_cursor_t *r, wr_qfifo_cmd_t *cmd)
{
    uint32_t n;

    return rd_count(r, 8, WR_QF_MAX_IDS, &n) && wr_rd_bytes(r, (size_t)n * 8, &cmd->ids);
}

static bool rd_enqueue(wr_cursor_t *r, wr_qfifo_cmd_t *cmd)
{
    return wr_rd_u64(r, &cmd->owner) && wr_rd_u64(r, &cmd->seq) && wr_rd_u32(r, &cmd->size) &&
           rd_u8(r, &cmd->priority, UINT8_MAX) && wr_rd_u32(r, &cmd->ttl_ms);
}

static bool rd_checkout(wr_cursor_t *r, wr_qfifo_cmd_t *cmd)
{
    uint32_t prio;

    if (!rd_key(r, cmd) || !wr_rd_u32(r, &cmd->prefetch) || !wr_rd_u32(r, &prio))
        return false;
    cmd->cprio = (int32_t)prio;
    return true;
}

static bool rd_body(wr_cursor_t *r, wr_qfifo_cmd_t *cmd)
{
    switch (cmd->op) {
    case WR_QF_ENQUEUE:
        return rd_enqueue(r, cmd);
    case WR_QF_CHECKOUT:
        return rd_checkout(r, cmd);
    case WR_QF_SETTLE:
    case WR_QF_RETURN:
    case WR_QF_DISCARD:
        return rd_key(r, cmd) && rd_ids(r, cmd);
    case WR_QF_CREDIT:
        return rd_key(r, cmd) && wr_rd_u32(r, &cmd->prefetch);
    case WR_QF_CANCEL:
        return rd_key(r, cmd);
    case WR_QF_DOWN:
        return wr_rd_u64(r, &cmd->owner);
    case WR_QF_POLICY:
        return rd_policy(r, &cmd->policy);
    case WR_QF_DLX_SETTLE:
        return rd_ids(r, cmd);
    case WR_QF_DEQUEUE:
        return rd_key(r, cmd) && rd_u8(r, &cmd->no_ack, 1);
    case WR_QF_EXPIRES:
        return wr_rd_u64(r, &cmd->expires_ms);
    case WR_QF_PURGE:
    case WR_QF_TICK:
        return true;
    }
    return false;
}

int wr_qfifo_cmd_decode(const uint8_t *data, size_t len, uint64_t *time_ms, wr_qfifo_cmd_t *cmd)
{
    wr_cursor_t r = wr_cursor((wr_bytes_t){data, len});
    uint8_t op;

    memset(cmd, 0, sizeof(*cmd));
    if (!rd_u8(&r, &op, UINT8_MAX) || !wr_rd_u64(&r, time_ms))
        return WR_ESYNTAX;
    if (op < WR_QF_ENQUEUE || op > WR_QF_EXPIRES)
        return WR_EUNKNOWN;
    cmd->op = (wr_qf_op_t)op;
    if (!rd_body(&r, cmd) || wr_cursor_left(&r) != 0)
        return WR_ESYNTAX;
    return WR_OK;
}

/* ---- snapshots ---- */

static void put_msg(wr_buf_t *b, const qf_msg_t *m)
{
    wr_buf_put_u64(b, m->index);
    wr_buf_put_u64(b, m->expiry);
    wr_buf_put_u32(b, m->size);
    wr_buf_put_u16(b, m->count);
    wr_buf_put_u8(b, m->prio);
    wr_buf_put_u8(b, m->flags);
}

static void put_msgs(wr_buf_t *b, const qf_ring_t *r)
{
    wr_buf_put_u32(b, (uint32_t)r->len);
    for (size_t i = 0; i < r->len; i++)
        put_msg(b, qf_ring_at(r, i));
}

/* An id-sorted ring without its tombstones. */
static void put_outs(wr_buf_t *b, const qf_ring_t *r, size_t live)
{
    wr_buf_put_u32(b, (uint32_t)live);
    for (size_t i = 0; i < r->len; i++) {
        const qf_out_t *o = qf_ring_at(r, i);

        if (o->m.flags & QF_TOMB)
            continue;
        put_msg(b, &o->m);
        wr_buf_put_u64(b, o->id);
        wr_buf_put_u64(b, o->at);
    }
}

static void put_consumer(wr_buf_t *b, const qf_consumer_t *c)
{
    wr_buf_put_u64(b, c->owner);
    wr_buf_put_u64(b, c->cid);
    wr_buf_put_u64(b, c->next_id);
    wr_buf_put_u64(b, c->served);
    wr_buf_put_u32(b, c->prefetch);
    wr_buf_put_u32(b, (uint32_t)c->prio);
    wr_buf_put_u8(b, c->status);
    wr_buf_put_u8(b, c->tag_len);
    wr_buf_put(b, c->tag, c->tag_len);
    put_outs(b, &c->out, c->nout);
}

static void put_header(wr_buf_t *b, const wr_qfifo_t *q)
{
    wr_buf_put(b, SNAP_MAGIC, 4);
    wr_buf_put_u8(b, SNAP_VERSION);
    put_policy(b, &q->pol);
    wr_buf_put_u32(b, q->release_every);
    wr_buf_put_u8(b, q->hi_streak);
    wr_buf_put_u64(b, q->now);
    wr_buf_put_u64(b, q->applied);
    wr_buf_put_u64(b, q->last_release);
    wr_buf_put_u64(b, q->serve_seq);
    wr_buf_put_u64(b, q->dlx_next);
    wr_buf_put_u64(b, q->expires_ms);
    wr_buf_put_u64(b, q->last_active);
}

bool wr_qfifo_snapshot_put(const wr_qfifo_t *q, wr_buf_t *out)
{
    put_header(out, q);
    wr_buf_put_u32(out, (uint32_t)q->npubs);
    for (size_t i = 0; i < q->npubs; i++) {
        wr_buf_put_u64(out, q->pubs[i].id);
        wr_buf_put_u64(out, q->pubs[i].last_seq);
    }
    wr_buf_put_u32(out, (uint32_t)q->ncons);
    for (size_t i = 0; i < q->ncons; i++)
        put_consumer(out, q->cons[i]);
    put_msgs(out, &q->returns);
    put_msgs(out, &q->hi);
    put_msgs(out, &q->lo);
    put_outs(out, &q->dlx, q->ndlx);
    return wr_buf_ok(out);
}

static bool rd_msg(wr_cursor_t *r, qf_msg_t *m)
{
    return wr_rd_u64(r, &m->index) && wr_rd_u64(r, &m->expiry) && wr_rd_u32(r, &m->size) &&
           wr_rd_u16(r, &m->count) && rd_u8(r, &m->prio, UINT8_MAX) && rd_u8(r, &m->flags, QF_FLAGS);
}

static int rd_msgs(wr_cursor_t *r, wr_qfifo_t *q, qf_ring_t *ring)
{
    uint32_t n;
    qf_msg_t m;

    if (!rd_count(r, MSG_BYTES, SIZE_MAX, &n))
        return WR_ESYNTAX;
    for (uint32_t i = 0; i < n; i++) {
        qf_msg_t *p;

        if (!rd_msg(r, &m))
            return WR_ESYNTAX;
        if ((p = qf_ring_push(ring)) == NULL)
            return WR_ENOMEM;
        *p = m;
        q->ready_bytes += m.size;
    }
    return WR_OK;
}

/* Checked-out or dead-letter records: ids strictly increasing and below next_id. *bytes sums sizes. */
static int rd_outs(wr_cursor_t *r, qf_ring_t *ring, uint64_t next_id, size_t *live, uint64_t *bytes)
{
    uint32_t n;
    qf_out_t o;

    if (!rd_count(r, OUT_BYTES, SIZE_MAX, &n))
        return WR_ESYNTAX;
    for (uint32_t i = 0; i < n; i++) {
        qf_out_t *p;

        if (!rd_msg(r, &o.m) || !wr_rd_u64(r, &o.id) || !wr_rd_u64(r, &o.at) || o.id >= next_id ||
            (i > 0 && o.id <= ((qf_out_t *)qf_ring_at(ring, i - 1))->id))
            return WR_ESYNTAX;
        if ((p = qf_ring_push(ring)) == NULL)
            return WR_ENOMEM;
        *p = o;
        *bytes += o.m.size;
    }
    *live = n;
    return WR_OK;
}

static bool rd_consumer_head(wr_cursor_t *r, qf_consumer_t *c)
{
    uint32_t prio;
    wr_bytes_t tag;

    if (!wr_rd_u64(r, &c->owner) || !wr_rd_u64(r, &c->cid) || !wr_rd_u64(r, &c->next_id) ||
        !wr_rd_u64(r, &c->served) || !wr_rd_u32(r, &c->prefetch) || !wr_rd_u32(r, &prio) ||
        !rd_u8(r, &c->status, QF_CANCELLED) || !wr_rd_shortstr(r, &tag))
        return false;
    c->prio = (int32_t)prio;
    c->tag_len = (uint8_t)tag.len;
    if (tag.len > 0)
        memcpy(c->tag, tag.data, tag.len);
    return true;
}

static int rd_consumer(wr_cursor_t *r, wr_qfifo_t *q)
{
    qf_consumer_t *c = qf_consumer_new(0, (wr_bytes_t){NULL, 0}, 0);
    uint64_t bytes = 0;
    int rc = WR_ENOMEM;

    if (c == NULL)
        return WR_ENOMEM;
    rc = rd_consumer_head(r, c) ? rd_outs(r, &c->out, c->next_id, &c->nout, &bytes) : WR_ESYNTAX;
    if (rc == WR_OK && !qf_consumer_add(q, c))
        rc = WR_ENOMEM;
    if (rc != WR_OK)
        qf_consumer_free(c);
    return rc;
}

/* Version 2's fields; a version 1 snapshot (before x-expires) has none: no expiry, last used now. */
static bool rd_expiry(wr_cursor_t *r, uint8_t version, wr_qfifo_t *q)
{
    if (version < 2) {
        q->expires_ms = 0;
        q->last_active = q->now;
        return true;
    }
    return wr_rd_u64(r, &q->expires_ms) && wr_rd_u64(r, &q->last_active) && q->last_active <= q->now;
}

static bool rd_header(wr_cursor_t *r, wr_qfifo_t *q)
{
    wr_bytes_t magic;
    uint8_t version;

    return wr_rd_bytes(r, 4, &magic) && memcmp(magic.data, SNAP_MAGIC, 4) == 0 &&
           rd_u8(r, &version, SNAP_VERSION) && version >= 1 && rd_policy(r, &q->pol) &&
           wr_rd_u32(r, &q->release_every) && q->release_every != 0 && rd_u8(r, &q->hi_streak, 2) &&
           wr_rd_u64(r, &q->now) && wr_rd_u64(r, &q->applied) && wr_rd_u64(r, &q->last_release) &&
           wr_rd_u64(r, &q->serve_seq) && wr_rd_u64(r, &q->dlx_next) && q->dlx_next != 0 &&
           rd_expiry(r, version, q);
}

/* Publishers sorted by id, strictly. */
static int rd_pubs(wr_cursor_t *r, wr_qfifo_t *q)
{
    uint32_t n;
    uint64_t id, last;

    if (!rd_count(r, PUB_BYTES, SIZE_MAX, &n))
        return WR_ESYNTAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!wr_rd_u64(r, &id) || !wr_rd_u64(r, &last) || (i > 0 && id <= q->pubs[i - 1].id))
            return WR_ESYNTAX;
        if (!qf_pub_insert(q, i, id, last))
            return WR_ENOMEM;
    }
    return WR_OK;
}

static int rd_consumers(wr_cursor_t *r, wr_qfifo_t *q)
{
    uint32_t n;
    int rc = WR_OK;

    if (!rd_count(r, CONS_BYTES, SIZE_MAX, &n))
        return WR_ESYNTAX;
    for (uint32_t i = 0; i < n && rc == WR_OK; i++)
        rc = rd_consumer(r, q);
    return rc;
}

static int rd_state(wr_cursor_t *r, wr_qfifo_t *q)
{
    int rc;

    if (!rd_header(r, q))
        return WR_ESYNTAX;
    if ((rc = rd_pubs(r, q)) != WR_OK || (rc = rd_consumers(r, q)) != WR_OK ||
        (rc = rd_msgs(r, q, &q->returns)) != WR_OK || (rc = rd_msgs(r, q, &q->hi)) != WR_OK ||
        (rc = rd_msgs(r, q, &q->lo)) != WR_OK ||
        (rc = rd_outs(r, &q->dlx, q->dlx_next, &q->ndlx, &q->dlx_bytes)) != WR_OK)
        return rc;
    return wr_cursor_left(r) == 0 ? WR_OK : WR_ESYNTAX;
}

int wr_qfifo_snapshot_load(const uint8_t *data, size_t len, wr_qfifo_t **out)
{
    wr_qfifo_t *q = wr_qfifo_new(0);
    wr_cursor_t r = wr_cursor((wr_bytes_t){data, len});
    int rc;

    *out = NULL;
    if (q == NULL)
        return WR_ENOMEM;
    if ((rc = rd_state(&r, q)) != WR_OK) {
        wr_qfifo_free(q);
        return rc;
    }
    *out = q;
    return WR_OK;
}
