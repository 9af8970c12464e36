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
#include "core/cursor.h"
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

/* What a cached body costs: the message and everything in its allocation. */
static uint64_t msg_bytes(const wr_message_t *m)
{
    return sizeof(*m) + m->exchange.len + m->routing_key.len + m->header.len + m->body_size;
}

static void cache_count(qq_t *q, const wr_message_t *m, bool add)
{
    uint64_t n = msg_bytes(m);

    q->body_bytes = add ? q->body_bytes + n : q->body_bytes - n;
    if (q->s != NULL)
        q->s->body_bytes = add ? q->s->body_bytes + n : q->s->body_bytes - n;
}

/* Caches m (a reference the call takes) as index's body; false (m dropped) on ENOMEM. */
static bool cache_put(qq_t *q, uint64_t index, wr_message_t *m)
{
    if (wr_map_put(q->bodies, key_of(&index), m) != WR_OK) {
        wr_message_unref(m);
        return false;
    }
    cache_count(q, m, true);
    return true;
}

static void cache_drop(qq_t *q, uint64_t index)
{
    wr_message_t *m = wr_map_del(q->bodies, key_of(&index));

    if (m != NULL) {
        cache_count(q, m, false);
        wr_message_unref(m);
    }
}

/* After an enqueue's effects: its body stays cached only within the node's budget. */
static void cache_trim(qq_t *q, uint64_t index)
{
    if (q->s == NULL || q->s->body_bytes > q->s->d.body_budget)
        cache_drop(q, index);
}

static void drop_all(qq_t *q, wr_map_t *map)
{
    wr_map_iter_t it = {0};
    void *v;

    if (map == NULL)
        return; /* a queue whose creation failed */
    while (wr_map_next(map, &it, NULL, &v)) {
        cache_count(q, v, false);
        wr_message_unref(v);
    }
    wr_map_free(map);
}

void wr_qq_bodies_free(qq_t *q)
{
    drop_all(q, q->bodies);
    q->bodies = NULL;
    wr_buf_free(&q->settling);
    free(q->snap_bodies);
    q->snap_bodies = NULL;
    q->n_snap_bodies = 0;
}

/* The message of an ENQUEUE entry's payload; NULL when it is not one. */
static wr_message_t *entry_msg(const wr_buf_t *b)
{
    wr_cursor_t c = wr_cursor((wr_bytes_t){b->data, b->len});
    uint32_t clen;
    wr_bytes_t cmd;

    if (!wr_rd_u32(&c, &clen) || !wr_rd_bytes(&c, clen, &cmd))
        return NULL;
    return msg_read(&c);
}

static int snapbody_cmp(const void *a, const void *b)
{
    const qsnapbody_t *x = a, *y = b;

    return x->index < y->index ? -1 : x->index > y->index;
}

/* The record of index's body in the snapshot served, read back; NULL if it holds none. */
static wr_message_t *snap_body(qq_t *q, uint64_t index, wr_buf_t *b)
{
    qsnapbody_t key = {.index = index};
    const qsnapbody_t *r =
        q->n_snap_bodies ? bsearch(&key, q->snap_bodies, q->n_snap_bodies, sizeof(key), snapbody_cmp) : NULL;
    wr_cursor_t c;
    uint64_t at;
    wr_bytes_t rec;

    if (r == NULL || wr_rgroup_snap_read(q->g, r->off, r->len, b) != WR_OK)
        return NULL;
    c = wr_cursor((wr_bytes_t){b->data, b->len});
    /* A snapshot taken or installed since may have replaced the file: the record names its index. */
    if (!wr_rd_u64(&c, &at) || at != index || !wr_rd_longstr(&c, &rec))
        return NULL;
    c = wr_cursor(rec);
    return msg_read(&c);
}

/*
 * The body of live message index (a new reference): cached, else read back
 * from the snapshot served or the WAL (a synchronous pread, docs/QUORUM.md
 * "Memory"). NULL, logged, if none holds it.
 */
static wr_message_t *body_get(qq_t *q, uint64_t index)
{
    wr_message_t *m = wr_map_get(q->bodies, key_of(&index));
    wr_buf_t b = WR_BUF_INIT;

    if (m != NULL)
        return wr_message_ref(m);
    if (q->g != NULL && (m = snap_body(q, index, &b)) == NULL) {
        wr_buf_reset(&b);
        if (wr_rgroup_read(q->g, index, &b) == WR_OK)
            m = entry_msg(&b);
    }
    wr_buf_free(&b);
    if (m == NULL)
        wr_log_error("quorum queue '%.*s': no body for log index %llu", (int)q->h.name.len,
                     (const char *)q->h.name.data, (unsigned long long)index);
    return m;
}

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
    drop_all(q, k.from);
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
        if (m == NULL)
            return;
        /* A repeated DEQUEUE of a get answered already: this one alone goes back, and the client's
         * settlement of the answer still counts. An asker gone before its answer: all goes back. */
        if (qc->answered)
            wr_qq_cons_settle_one(q, qc, QS_RETURN, id);
        else
            wr_qq_cons_down(q, qc);
        return;
    }
    qc->answered = true;
    wr_qfifo_info(q->sm, &i);
    if (m == NULL) {
        fn(qc->ud, WR_QUEUE_GOT_EMPTY, NULL, NULL, false, 0);
        return;
    }
    if (qc->no_ack) {
        q->h.stats.get_no_ack++;
        wr_qq_cons_settle_one(q, qc, QS_SETTLE, id);
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
    wr_message_t *body, *m;

    /* Checked out to a consumer this node no longer has: back it goes. */
    if (qc == NULL) {
        wr_qq_down(q, f->owner);
        return;
    }
    if (!qc->is_get && qc->c == NULL) {
        wr_qq_cons_down(q, qc);
        return;
    }
    if ((body = body_get(q, f->index)) == NULL)
        return;
    m = with_count(body, f->count);
    wr_message_unref(body);
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
    const wr_queue_hooks_t *h = q->h.sched->hooks;
    wr_message_t *m;

    if (!q->leader || f->dlx == WR_QF_DLX_NONE || h == NULL || !q->h.limits.dead_letter ||
        f->reason > WR_QF_DL_DELIVERY_LIMIT)
        return;
    if (f->dlx == WR_QF_DLX_AT_LEAST_ONCE)
        wr_qq_dlx_publish(q, f->id, f->index, f->reason);
    else if ((m = body_get(q, f->index)) != NULL)
        h->dead_letter(q->h.sched->ud, &q->h, m, wr_qq_dl_reason(f->reason));
}

wr_message_t *wr_qq_body(qq_t *q, uint64_t index)
{
    return body_get(q, index);
}

static void perform(qq_t *q, const wr_qfifo_effect_t *f)
{
    bool mine = wr_qq_owner_node(f->owner) == q->s->self_id;

    switch (f->kind) {
    case WR_QFE_DELIVER:
        if (mine)
            deliver(q, f);
        /* Checked out, it stays while the node is under budget, so that snapshots write it from here
         * (dropped, each snapshot read every checked-out body back); its settlement drops it. */
        cache_trim(q, f->index);
        break;
    case WR_QFE_CANCEL:
        if (mine)
            cancel_local(q, f);
        break;
    case WR_QFE_DEADLETTER:
        dead_letter(q, f);
        cache_drop(q, f->index);
        break;
    case WR_QFE_EXPIRED:
        wr_qq_expired(q);
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

/* The bodies a SETTLE takes out of the queue, noted before it applies (the machine resolves its ids). */
static void settling_note(qq_t *q, const wr_qfifo_cmd_t *cmd)
{
    uint64_t index;

    wr_buf_reset(&q->settling);
    if (cmd->op != WR_QF_SETTLE)
        return;
    for (size_t k = 0; k < wr_qfifo_cmd_nids(cmd); k++)
        if ((index = wr_qfifo_held_index(q->sm, cmd->owner, cmd->tag, wr_qfifo_cmd_id(cmd, k))) != 0)
            wr_buf_put(&q->settling, &index, sizeof(index));
}

static void settled_drop(qq_t *q)
{
    uint64_t index;

    for (size_t at = 0; at + sizeof(index) <= q->settling.len; at += sizeof(index)) {
        memcpy(&index, q->settling.data + at, sizeof(index));
        cache_drop(q, index);
    }
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
    if (m != NULL && !cache_put(q, index, m))
        m = NULL;
    wr_qfifo_effects_reset(&q->fx);
    settling_note(q, &cmd);
    st = wr_qfifo_apply(q->sm, index, t, &cmd, &q->fx, &n);
    settled_drop(q);
    if (st == WR_ENOMEM)
        wr_log_error("quorum queue '%.*s': out of memory applying entry %llu", (int)q->h.name.len,
                     (const char *)q->h.name.data, (unsigned long long)index);
    if (m != NULL && (st != WR_OK || q->s == NULL))
        cache_drop(q, index);
    if (q->s == NULL)
        return;
    if (cmd.op == WR_QF_ENQUEUE && cmd.owner == q->pub_id)
        wr_qq_landed(q, cmd.seq, st);
    q->expiring |= cmd.op == WR_QF_ENQUEUE && cmd.ttl_ms != WR_QF_NO_TTL;
    if (cmd.op == WR_QF_PURGE) {
        q->purged_at = index;
        q->purged = n;
    }
    if (cmd.op == WR_QF_DLX_SETTLE)
        wr_qq_dlx_settled(q, &cmd);
    if (cmd.op == WR_QF_DOWN && wr_qq_owner_node(cmd.owner) == q->s->self_id)
        forgotten(q, cmd.owner);
    for (size_t i = 0; i < q->fx.n && !q->h.closed; i++)
        perform(q, &q->fx.v[i]);
    if (cmd.op == WR_QF_DEQUEUE && n == 0 && wr_qq_owner_node(cmd.owner) == q->s->self_id) {
        qcons_t *qc = wr_qq_cons_find(q, cmd.owner);

        if (qc != NULL && qc->is_get)
            answer_get(q, qc, NULL, 0, false);
    }
    if (m != NULL)
        cache_trim(q, index);
    /* The machine's figures once per entry, for both. */
    wr_qfifo_info(q->sm, &info);
    bodies_gc(q, &info, cmd.op == WR_QF_PURGE);
    counts_now(q, &info);
}

/* ---------------------------------------------------------------- snapshots */

/* Bytes of snapshot gathered before they are written out (wr_rgroup_snap_spill). */
#define SNAP_SPILL (1u << 20)

typedef struct {
    qq_t *q;
    wr_buf_t *out;
    size_t base;      /* where the state machine's bytes start in out */
    uint64_t flushed; /* bytes of out written to the file so far */
    qsnapbody_t *v;   /* the new snapshot's body index */
    size_t n, cap;
    int rc;
} save_t;

static void count_live(void *ud, uint64_t index)
{
    (*(uint64_t *)ud)++;
}

/* A live body into the snapshot: cached or read back (the old snapshot or the WAL), one at a time,
 * the snapshot written out every SNAP_SPILL bytes. */
static void save_body(void *ud, uint64_t index)
{
    save_t *sv = ud;
    uint64_t at = sv->flushed + sv->out->len - sv->base;
    size_t lat;
    wr_message_t *m;

    if (sv->rc != WR_OK)
        return;
    if ((m = body_get(sv->q, index)) == NULL) {
        sv->rc = WR_ENOENT; /* a snapshot without it would lose it for good */
        return;
    }
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        qsnapbody_t *v = realloc(sv->v, cap * sizeof(*v));

        if (v == NULL) {
            sv->rc = WR_ENOMEM;
            wr_message_unref(m);
            return;
        }
        sv->v = v;
        sv->cap = cap;
    }
    wr_buf_put_u64(sv->out, index);
    lat = sv->out->len;
    wr_buf_put_u32(sv->out, 0);
    msg_put(sv->out, m);
    wr_buf_patch_u32(sv->out, lat, (uint32_t)(sv->out->len - lat - 4));
    sv->v[sv->n++] = (qsnapbody_t){index, at, (uint32_t)(sv->flushed + sv->out->len - sv->base - at)};
    wr_message_unref(m);
    if (!wr_buf_ok(sv->out))
        sv->rc = WR_ENOMEM;
    else if (sv->out->len >= SNAP_SPILL && sv->q->g != NULL) {
        size_t len = sv->out->len;

        if ((sv->rc = wr_rgroup_snap_spill(sv->q->g, sv->out)) == WR_OK)
            sv->flushed += len - sv->out->len;
    }
}

/* The index of the snapshot now served: its bodies, sorted for bsearch. */
static void snap_bodies_set(qq_t *q, qsnapbody_t *v, size_t n)
{
    if (n > 0)
        qsort(v, n, sizeof(*v), snapbody_cmp);
    free(q->snap_bodies);
    q->snap_bodies = v;
    q->n_snap_bodies = n;
}

/* The machine, then the count of live bodies and each body: written out as it goes, never whole in memory. */
static int snapshot_save(void *ud, wr_buf_t *out)
{
    qq_t *q = ud;
    save_t sv = {q, out, out->len, 0, NULL, 0, 0, WR_OK};
    uint64_t live = 0;
    size_t at;

    wr_buf_put_u32(out, SNAP_MAGIC);
    at = out->len;
    wr_buf_put_u32(out, 0);
    if (!wr_qfifo_snapshot_put(q->sm, out))
        return WR_ENOMEM;
    wr_buf_patch_u32(out, at, (uint32_t)(out->len - at - 4));
    wr_qfifo_live_foreach(q->sm, count_live, &live);
    wr_buf_put_u64(out, live);
    wr_qfifo_live_foreach(q->sm, save_body, &sv);
    if (sv.rc == WR_OK && !wr_buf_ok(out))
        sv.rc = WR_ENOMEM;
    if (sv.rc != WR_OK) {
        free(sv.v);
        return sv.rc;
    }
    q->since_snap = 0;
    snap_bodies_set(q, sv.v, sv.n);
    return WR_OK;
}

/* The longest a message record's head can be: exchange and routing key (shortstrs), the header's length. */
#define MSG_HEAD_MAX (1 + 255 + 1 + 255 + 4)

/* The next bytes (at most 8) of the snapshot as a big-endian number. */
static bool in_uint(wr_rgroup_snap_in_t *in, size_t bytes, uint64_t *v)
{
    uint8_t b[8];

    if (wr_rgroup_snap_in_read(in, b, bytes) != WR_OK)
        return false;
    *v = 0;
    for (size_t i = 0; i < bytes; i++)
        *v = *v << 8 | b[i];
    return true;
}

/* The magic and the machine (a longstr), loaded into *sm. */
static bool machine_read(wr_rgroup_snap_in_t *in, wr_qfifo_t **sm)
{
    uint64_t magic, len;
    uint8_t *st;
    bool ok;

    if (!in_uint(in, 4, &magic) || magic != SNAP_MAGIC || !in_uint(in, 4, &len) ||
        len > wr_rgroup_snap_in_left(in) || (st = malloc(len > 0 ? (size_t)len : 1)) == NULL)
        return false;
    ok = wr_rgroup_snap_in_read(in, st, len) == WR_OK && wr_qfifo_snapshot_load(st, (size_t)len, sm) == WR_OK;
    free(st);
    return ok;
}

/* One body record (index, then a longstr message) checked and indexed: only its head is read, the
 * body skipped. */
static bool body_next(wr_rgroup_snap_in_t *in, qsnapbody_t *out)
{
    uint64_t at = wr_rgroup_snap_in_offset(in), index, len;
    uint8_t head[MSG_HEAD_MAX];
    wr_bytes_t ex, rk;
    wr_cursor_t c;
    uint32_t hlen;
    size_t n;

    if (!in_uint(in, 8, &index) || !in_uint(in, 4, &len) || len > wr_rgroup_snap_in_left(in))
        return false;
    n = len < sizeof(head) ? (size_t)len : sizeof(head);
    if (wr_rgroup_snap_in_read(in, head, n) != WR_OK)
        return false;
    c = wr_cursor((wr_bytes_t){head, n});
    if (!wr_rd_shortstr(&c, &ex) || !wr_rd_shortstr(&c, &rk) || !wr_rd_u32(&c, &hlen) ||
        hlen > len - (uint64_t)(c.pos - head) || wr_rgroup_snap_in_read(in, NULL, len - n) != WR_OK)
        return false;
    *out = (qsnapbody_t){index, at, (uint32_t)(wr_rgroup_snap_in_offset(in) - at)};
    return true;
}

/* The count of bodies, then each one checked and indexed, none loaded; nothing may follow. */
static bool bodies_read(wr_rgroup_snap_in_t *in, qsnapbody_t **out, size_t *n_out)
{
    qsnapbody_t *v = NULL;
    uint64_t n, i = 0;

    /* A record takes at least 12 bytes: a count beyond that is damage, not an allocation. */
    if (!in_uint(in, 8, &n) || n > wr_rgroup_snap_in_left(in) / 12 ||
        (n > 0 && (v = malloc((size_t)n * sizeof(*v))) == NULL))
        return false;
    while (i < n && body_next(in, &v[i]))
        i++;
    if (i < n || wr_rgroup_snap_in_left(in) != 0) {
        free(v);
        return false;
    }
    *out = v;
    *n_out = (size_t)n;
    return true;
}

/* Read a chunk at a time: the machine, then the body index; a body is read only when it is delivered. */
static int snapshot_stream(void *ud, wr_rgroup_snap_in_t *in)
{
    qq_t *q = ud;
    wr_qfifo_t *sm = NULL;
    wr_map_t *bodies = NULL;
    qsnapbody_t *v = NULL;
    wr_qfifo_info_t info;
    size_t n = 0;

    if (!machine_read(in, &sm) || !bodies_read(in, &v, &n) || (bodies = wr_map_new()) == NULL) {
        free(v);
        wr_qfifo_free(sm);
        return WR_ESYNTAX;
    }
    wr_qfifo_free(q->sm);
    q->sm = sm;
    drop_all(q, q->bodies);
    q->bodies = bodies;
    snap_bodies_set(q, v, n);
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
        /* At-least-once dead letters the old leader had not settled go again. */
        wr_qq_dlx_retry(q);
    }
}

/* The leader's clock replaces the proposer's in every command it appends:
 * TTLs and timeouts follow one clock, whichever member proposed. */
static void stamp(void *ud, uint8_t *entry, size_t len)
{
    uint32_t clen;

    if (len < 4)
        return;
    clen = (uint32_t)entry[0] << 24 | (uint32_t)entry[1] << 16 | (uint32_t)entry[2] << 8 | entry[3];
    if (clen <= len - 4)
        wr_qfifo_cmd_stamp(entry + 4, clen, wr_qq_now());
}

void wr_qq_sm(wr_rgroup_sm_t *out)
{
    *out =
        (wr_rgroup_sm_t){apply, snapshot_save, NULL, leader_changed, snapshot_worth, stamp, snapshot_stream};
}
