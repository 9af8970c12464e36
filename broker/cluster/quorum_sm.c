/* SPDX-License-Identifier: MIT */
/*
 * A quorum queue's Raft state machine on one member (quorum_internal.h):
 * committed entries decoded and applied to the machine (cluster/qfifo.h),
 * the bodies of live messages kept by log index, and the effects performed
 * here: deliveries to this node's consumers, confirms to this node's
 * publishers, dead letters by the leader only. Snapshots hold the machine
 * and the live bodies.
 *
 * Entry: u32 command length, the command (wr_qfifo_cmd_put), and for ENQUEUE
 * the message: shortstr exchange, shortstr routing key, longstr content
 * header, then the body to the end.
 */
#include "broker/cluster/quorum_internal.h"

#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "core/status.h"
#include "protocol/cursor.h"
#include "protocol/table.h"

#define SNAP_MAGIC 0x57515131u /* "WQQ1" */

static wr_bytes_t key_of(const uint64_t *v)
{
    return (wr_bytes_t){(const uint8_t *)v, sizeof(*v)};
}

static void msg_put(wr_buf_t *b, const wr_message_t *m)
{
    wr_put_shortstr(b, m->exchange);
    wr_put_shortstr(b, m->routing_key);
    wr_put_longstr(b, m->header);
    wr_buf_put(b, m->body, (size_t)m->body_size);
}

/* The message the rest of c holds; NULL when malformed or on ENOMEM. */
static wr_message_t *msg_read(wr_cursor_t *c)
{
    wr_bytes_t ex, rk, header, body;
    wr_message_t *m;

    if (!wr_rd_shortstr(c, &ex) || !wr_rd_shortstr(c, &rk) || !wr_rd_longstr(c, &header) ||
        !wr_rd_bytes(c, wr_cursor_left(c), &body))
        return NULL;
    if ((m = wr_message_new(ex, rk, header, body.len)) == NULL)
        return NULL;
    if (body.len > 0)
        memcpy(m->body, body.data, body.len);
    m->body_filled = body.len;
    return m;
}

bool wr_qq_entry_put(wr_buf_t *b, uint64_t time_ms, const wr_qfifo_cmd_t *cmd, const wr_message_t *m)
{
    size_t at = b->len;

    wr_buf_put_u32(b, 0);
    if (!wr_qfifo_cmd_put(b, time_ms, cmd))
        return false;
    wr_buf_patch_u32(b, at, (uint32_t)(b->len - at - 4));
    if (m != NULL)
        msg_put(b, m);
    return wr_buf_ok(b);
}

/* ---------------------------------------------------------------- bodies */

typedef struct {
    wr_map_t *from, *to;
    bool failed;
} keep_t;

static void keep_live(void *ud, uint64_t index)
{
    keep_t *k = ud;
    void *m = wr_map_del(k->from, key_of(&index));

    if (m != NULL && wr_map_put(k->to, key_of(&index), m) != WR_OK) {
        wr_map_put(k->from, key_of(&index), m);
        k->failed = true;
    }
}

static void unref_all(wr_map_t *m)
{
    wr_map_iter_t it = {0};
    void *v;

    while (wr_map_next(m, &it, NULL, &v))
        wr_message_unref(v);
    wr_map_free(m);
}

/* Drops bodies the machine no longer needs (i: its figures now) once they outnumber live ones. */
static void bodies_gc(qq_t *q, const wr_qfifo_info_t *i, bool force)
{
    keep_t k;

    /* Amortised: a sweep costs the map's size and runs once garbage is as large as what lives. */
    if (!force && wr_map_count(q->bodies) <= 2 * (i->ready + i->checked_out + i->dlx_pending) + 1024)
        return;
    k = (keep_t){q->bodies, wr_map_new(), false};
    if (k.to == NULL)
        return;
    wr_qfifo_live_foreach(q->sm, keep_live, &k);
    if (k.failed) {
        /* Out of memory: put back what moved and keep the old map. */
        wr_map_iter_t it = {0};
        wr_bytes_t key;
        void *v;

        while (wr_map_next(k.to, &it, &key, &v))
            wr_map_put(k.from, key, v);
        wr_map_free(k.to);
        return;
    }
    unref_all(k.from);
    q->bodies = k.to;
}

/* ---------------------------------------------------------------- effects */

/* m with its x-delivery-count header set to count (a new message), or m itself. */
static wr_message_t *with_count(wr_message_t *m, uint32_t count)
{
    const wr_props_t *p = wr_message_props(m);
    wr_buf_t b = WR_BUF_INIT;
    wr_table_iter_t it;
    wr_message_t *out = NULL;
    wr_props_t np;
    wr_bytes_t k;
    wr_value_t v;
    size_t mark;

    if (count == 0 || p == NULL)
        return wr_message_ref(m);
    np = *p;
    mark = wr_table_begin(&b);
    if (p->flags & WR_PROP_HEADERS) {
        wr_table_iter_init(&it, p->headers);
        while (wr_table_next(&it, &k, &v))
            if (!wr_bytes_eq_str(k, "x-delivery-count")) {
                wr_put_shortstr(&b, k);
                wr_table_put_value(&b, &v);
            }
    }
    wr_table_put_long(&b, "x-delivery-count", count);
    wr_table_end(&b, mark);
    if (wr_buf_ok(&b)) {
        np.headers = (wr_bytes_t){b.data + mark + 4, b.len - mark - 4};
        np.flags |= WR_PROP_HEADERS;
        out = wr_message_with_props(m, &np);
    }
    wr_buf_free(&b);
    return out != NULL ? out : wr_message_ref(m);
}

/* A basic.get's message, or its emptiness. */
static void answer_get(qq_t *q, qcons_t *qc, wr_message_t *m, uint64_t id, bool redelivered)
{
    wr_queue_got_fn fn = qc->fn;
    wr_qtoken_t t = {{qc->owner, id, 0, 0}, 0, {0, 0}, false};
    wr_qfifo_info_t i;

    qc->fn = NULL;
    if (fn == NULL) {
        wr_message_unref(m);
        if (m != NULL && !qc->no_ack)
            wr_qq_cons_down(q, qc); /* the asker is gone: back to the queue */
        return;
    }
    wr_qfifo_info(q->sm, &i);
    if (m == NULL) {
        fn(qc->ud, WR_QUEUE_GOT_EMPTY, NULL, NULL, false, 0);
        return;
    }
    if (qc->no_ack) {
        q->h.stats.get_no_ack++;
    } else {
        q->h.stats.get++;
        qc->unacked++;
    }
    q->h.stats.redeliver += redelivered;
    fn(qc->ud, WR_QUEUE_GOT, m, &t, redelivered, (uint32_t)i.ready);
}

static void deliver(qq_t *q, const wr_qfifo_effect_t *f)
{
    qcons_t *qc = wr_qq_cons_find(q, f->owner);
    wr_message_t *body = wr_map_get(q->bodies, key_of(&f->index));
    wr_message_t *m;

    /* Checked out to a consumer this node no longer has: back it goes. */
    if (qc == NULL) {
        wr_qq_down(q, f->owner);
        return;
    }
    if (!qc->is_get && qc->c == NULL) {
        wr_qq_cons_down(q, qc);
        return;
    }
    if (body == NULL) {
        wr_log_error("quorum queue '%.*s': no body for log index %llu", (int)q->h.name.len,
                     (const char *)q->h.name.data, (unsigned long long)f->index);
        return;
    }
    m = with_count(body, f->count);
    if (qc->is_get)
        answer_get(q, qc, m, f->id, f->redelivered);
    else
        wr_qq_deliver(q, qc, m, f->id, f->redelivered);
}

/* The consumer timeout cancelled a consumer of this node: its channel hears basic.cancel. */
static void cancel_local(qq_t *q, const wr_qfifo_effect_t *f)
{
    qcons_t *qc = wr_qq_cons_find(q, f->owner);
    wr_consumer_t *c = qc != NULL ? qc->c : NULL;

    if (c == NULL)
        return;
    qc->c = NULL;
    c->queue = NULL;
    c->ops->cancelled(c);
    wr_consumer_unref(c);
}

static void dead_letter(qq_t *q, const wr_qfifo_effect_t *f)
{
    static const wr_dl_reason_t why[] = {WR_DL_REJECTED, WR_DL_EXPIRED, WR_DL_MAXLEN, WR_DL_DELIVERY_LIMIT};
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    wr_message_t *m = wr_map_get(q->bodies, key_of(&f->index));

    if (!q->leader || f->dlx == WR_QF_DLX_NONE || h == NULL || !q->h.limits.dead_letter || m == NULL ||
        f->reason > WR_QF_DL_DELIVERY_LIMIT)
        return;
    h->dead_letter(q->h.sched->ud, &q->h, wr_message_ref(m), why[f->reason]);
}

static void perform(qq_t *q, const wr_qfifo_effect_t *f)
{
    bool mine = wr_qq_owner_node(f->owner) == q->s->self_id;

    switch (f->kind) {
    case WR_QFE_DELIVER:
        if (mine)
            deliver(q, f);
        break;
    case WR_QFE_CANCEL:
        if (mine)
            cancel_local(q, f);
        break;
    case WR_QFE_DEADLETTER:
        dead_letter(q, f);
        break;
    default:
        break; /* confirms come from wr_qq_landed; ACTIVE and RELEASE need nothing here */
    }
}

/* ---------------------------------------------------------------- apply */

/* The queue's unacked and consumer figures are the group's: every node's
 * deliveries and consumers, as RabbitMQ's declare-ok and API count them. */
static void counts_now(qq_t *q, const wr_qfifo_info_t *i)
{
    q->h.unacked = (size_t)i->checked_out;
    if (!q->h.closed)
        q->h.nconsumers = (size_t)i->tagged; /* basic.get's consumers have no tag */
}

/* The leader handed back a live local consumer's messages (this node was cut
 * off): it subscribes again; what it still holds can no longer be settled. */
static void forgotten(qq_t *q, uint64_t owner)
{
    qcons_t *qc = wr_qq_cons_find(q, owner);

    if (qc != NULL && qc->c != NULL && !qc->down && !q->h.closed)
        wr_qq_checkout(q, qc);
}

static void apply(void *ud, uint64_t index, const uint8_t *data, size_t len)
{
    qq_t *q = ud;
    wr_cursor_t c = wr_cursor((wr_bytes_t){data, len});
    wr_message_t *m = NULL;
    wr_qfifo_cmd_t cmd;
    wr_qfifo_info_t info;
    uint64_t t, n = 0;
    wr_bytes_t cb;
    uint32_t clen;
    int st;

    q->since_snap += len;
    if (!wr_rd_u32(&c, &clen) || !wr_rd_bytes(&c, clen, &cb) ||
        wr_qfifo_cmd_decode(cb.data, cb.len, &t, &cmd) != WR_OK ||
        (cmd.op == WR_QF_ENQUEUE && (m = msg_read(&c)) == NULL) ||
        (cmd.op != WR_QF_ENQUEUE && wr_cursor_left(&c) != 0)) {
        wr_log_error("quorum queue '%.*s': log entry %llu is malformed; skipped", (int)q->h.name.len,
                     (const char *)q->h.name.data, (unsigned long long)index);
        return;
    }
    if (m != NULL && wr_map_put(q->bodies, key_of(&index), m) != WR_OK) {
        wr_message_unref(m);
        m = NULL;
    }
    wr_qfifo_effects_reset(&q->fx);
    st = wr_qfifo_apply(q->sm, index, t, &cmd, &q->fx, &n);
    if (st == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s': out of memory applying entry %llu", (int)q->h.name.len,
                     (const char *)q->h.name.data, (unsigned long long)index);
    if (m != NULL && st != WR_OK)
        wr_message_unref(wr_map_del(q->bodies, key_of(&index)));
    if (q->s == NULL)
        return;
    if (cmd.op == WR_QF_ENQUEUE && cmd.owner == q->pub_id)
        wr_qq_landed(q, cmd.seq, st);
    q->expiring |= cmd.op == WR_QF_ENQUEUE && cmd.ttl_ms != WR_QF_NO_TTL;
    if (cmd.op == WR_QF_PURGE)
        q->purging = 0;
    if (cmd.op == WR_QF_DOWN && wr_qq_owner_node(cmd.owner) == q->s->self_id)
        forgotten(q, cmd.owner);
    for (size_t i = 0; i < q->fx.n && !q->h.closed; i++)
        perform(q, &q->fx.v[i]);
    if (cmd.op == WR_QF_DEQUEUE && n == 0 && wr_qq_owner_node(cmd.owner) == q->s->self_id) {
        qcons_t *qc = wr_qq_cons_find(q, cmd.owner);

        if (qc != NULL && qc->is_get)
            answer_get(q, qc, NULL, 0, false);
    }
    /* The machine's figures once per entry, for both. */
    wr_qfifo_info(q->sm, &info);
    bodies_gc(q, &info, cmd.op == WR_QF_PURGE);
    counts_now(q, &info);
}

/* ---------------------------------------------------------------- snapshots */

typedef struct {
    const qq_t *q;
    wr_buf_t *out;
    uint64_t n;
} save_t;

static void save_body(void *ud, uint64_t index)
{
    save_t *sv = ud;
    const wr_message_t *m = wr_map_get(sv->q->bodies, key_of(&index));
    size_t at;

    if (m == NULL)
        return;
    wr_buf_put_u64(sv->out, index);
    at = sv->out->len;
    wr_buf_put_u32(sv->out, 0);
    msg_put(sv->out, m);
    wr_buf_patch_u32(sv->out, at, (uint32_t)(sv->out->len - at - 4));
    sv->n++;
}

static int snapshot_save(void *ud, wr_buf_t *out)
{
    qq_t *q = ud;
    save_t sv = {q, out, 0};
    size_t at, nat;

    wr_buf_put_u32(out, SNAP_MAGIC);
    at = out->len;
    wr_buf_put_u32(out, 0);
    if (!wr_qfifo_snapshot_put(q->sm, out))
        return WR_ENOMEM;
    wr_buf_patch_u32(out, at, (uint32_t)(out->len - at - 4));
    nat = out->len;
    wr_buf_put_u64(out, 0);
    wr_qfifo_live_foreach(q->sm, save_body, &sv);
    if (!wr_buf_ok(out))
        return WR_ENOMEM;
    q->since_snap = 0;
    out->data[nat] = (uint8_t)(sv.n >> 56);
    for (int i = 1; i < 8; i++)
        out->data[nat + (size_t)i] = (uint8_t)(sv.n >> (56 - 8 * i));
    return WR_OK;
}

/* The bodies of a snapshot into a new map; NULL when malformed or on ENOMEM. */
static wr_map_t *bodies_read(wr_cursor_t *c)
{
    wr_map_t *map = wr_map_new();
    uint64_t n, index;
    wr_bytes_t rec;

    if (map == NULL || !wr_rd_u64(c, &n))
        goto fail;
    for (uint64_t i = 0; i < n; i++) {
        wr_cursor_t r;
        wr_message_t *m;

        if (!wr_rd_u64(c, &index) || !wr_rd_longstr(c, &rec))
            goto fail;
        r = wr_cursor(rec);
        if ((m = msg_read(&r)) == NULL)
            goto fail;
        if (wr_map_put(map, key_of(&index), m) != WR_OK) {
            wr_message_unref(m);
            goto fail;
        }
    }
    if (wr_cursor_left(c) == 0)
        return map;
fail:
    if (map != NULL)
        unref_all(map);
    return NULL;
}

static int snapshot_load(void *ud, const uint8_t *data, size_t len)
{
    qq_t *q = ud;
    wr_cursor_t c = wr_cursor((wr_bytes_t){data, len});
    wr_qfifo_t *sm = NULL;
    wr_map_t *bodies;
    wr_qfifo_info_t info;
    uint32_t magic;
    wr_bytes_t st;

    if (!wr_rd_u32(&c, &magic) || magic != SNAP_MAGIC || !wr_rd_longstr(&c, &st) ||
        wr_qfifo_snapshot_load(st.data, st.len, &sm) != WR_OK)
        return WR_ESYNTAX;
    if ((bodies = bodies_read(&c)) == NULL) {
        wr_qfifo_free(sm);
        return WR_ESYNTAX;
    }
    wr_qfifo_free(q->sm);
    q->sm = sm;
    unref_all(q->bodies);
    q->bodies = bodies;
    wr_qfifo_info(q->sm, &info);
    counts_now(q, &info);
    return WR_OK;
}

/* A snapshot writes every live body: worth it once the log it frees is larger. */
static bool snapshot_worth(void *ud)
{
    const qq_t *q = ud;
    wr_qfifo_info_t i;

    wr_qfifo_info(q->sm, &i);
    return i.ready_bytes + (i.checked_out + i.dlx_pending) * 1024 < q->since_snap / 2;
}

static void leader_changed(void *ud, const char *leader)
{
    qq_t *q = ud;
    bool was = q->leader;

    q->leader = q->s != NULL && leader != NULL && strcmp(leader, q->s->d.self) == 0;
    if (q->leader && !was) {
        /* Consumers of members that are down now have their messages back. */
        for (size_t i = 0; i < q->nmembers; i++)
            if (strcmp(q->members[i], q->s->d.self) != 0 && !wr_peer_up(q->s->d.links, q->members[i]))
                wr_qq_sweep(q, wr_raftd_node_id(q->members[i]));
    }
}

void wr_qq_sm(wr_rgroup_sm_t *out)
{
    *out = (wr_rgroup_sm_t){apply, snapshot_save, snapshot_load, leader_changed, snapshot_worth};
}
