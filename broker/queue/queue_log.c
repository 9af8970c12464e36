/* SPDX-License-Identifier: MIT */
/*
 * Queue logs. A queue writes an enqueue record per message that must survive
 * a restart or that is paged out of memory; for the persistent messages of a
 * durable queue it also writes ack and delivered records, which list (as
 * index ranges) the enqueue records that are done with or were handed to a
 * consumer, and now and then a checkpoint: the whole set of its persistent
 * messages still live, with their redelivered flags. Acks and delivered
 * markers are appended lazily, once per loop iteration, and nobody waits for
 * them to be durable: a crash may redeliver, never lose. An enqueue record is
 * released as soon as it is settled; ack and delivered records stay live
 * until a checkpoint makes them useless, so one message left unacked for
 * days never keeps the acks of everything after it (and their segments).
 */
#include "broker/queue/queue_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/base/log.h"
#include "core/buf.h"
#include "core/status.h"
#include "protocol/props.h"
#include "storage/seglog.h"

/* Record types: the first byte of every record. */
#define REC_ENQUEUE    'E' /* flags, [expiry], exchange, routing key, content header, body */
#define REC_ACK        'A' /* ranges of enqueue records done with */
#define REC_DELIVERED  'D' /* ranges of enqueue records handed to a consumer */
#define REC_CHECKPOINT 'C' /* ranges of the persistent enqueue records live below it, with flags */

#define ENQ_PERSISTENT 0x01
#define ENQ_EXPIRY     0x02 /* a u64 (little-endian) follows the flags: ms since the epoch */
#define CP_REDELIVERED 0x01

/* A range on disk: u64 first index, u32 count, little-endian; a checkpoint's
 * ranges carry one more byte of flags. */
#define RANGE_SIZE    12
#define CP_RANGE_SIZE 13
/* Bounds an ack or delivered record at 48 KiB. */
#define MAX_RANGES_PER_RECORD 4096
/* A checkpoint is written once at least this many ack and delivered
 * records have piled up since the last one, and as many bytes of them as the
 * last checkpoint had (so checkpoints never cost more than the records they
 * free), and one record per CHECKPOINT_SCAN messages it had to list (so its
 * scan of the queue costs little per record). */
#define CHECKPOINT_MIN_RECORDS 32
#define CHECKPOINT_SCAN        1024
/* Above this the read window's buffer is given back after use. */
#define WINDOW_KEEP (1u << 20)

/* In the sorted array of taken indexes: settled, waiting to be compacted away. */
#define TOMB (1ull << 63)
/* Replay marks, below the index (index << 2). */
#define RV_DEAD        2u
#define RV_REDELIVERED 1u

typedef struct {
    uint64_t start;
    uint64_t count;
} range_t;

typedef struct {
    range_t *v;
    size_t n;
    size_t cap;
} ranges_t;

/* A checkpoint being built: ranges with their flags, encoded as they come. */
typedef struct {
    wr_buf_t buf;
    uint64_t start;
    uint64_t count;
    uint8_t flags;
} cp_t;

typedef struct {
    uint64_t index;
    wr_confirm_t *c;
} waiter_t;

/* Replay: a persistent enqueue record seen, and what it says of its message. */
typedef struct {
    uint64_t v; /* index << 2 | RV_ marks */
    wr_qlog_meta_t meta;
} rv_t;

struct wr_qlog_s {
    wr_qlog_ctx_t *ctx;
    wr_seglog_t *log; /* NULL until the first append of a new log */
    char name[24];
    char *what;
    bool durable;
    bool open_failed;   /* the last attempt to create the log failed (reported once) */
    bool write_failed;  /* a write error was reported, and nothing has been durable since */
    bool cp_due;        /* a write error may have lost ack or delivered records: a checkpoint restates them */
    bool no_checkpoint; /* a taken index could not be recorded: a checkpoint would miss it */
    const wr_qlog_ops_t *ops;
    void *owner;
    wr_list_t node; /* in ctx->dirty while records wait for the flush, or in ctx->doomed */
    ranges_t acks;
    ranges_t delivered;
    uint64_t *marks; /* ack, delivered and checkpoint records live since the last checkpoint */
    size_t nmarks, capmarks;
    uint64_t marks_bytes;
    size_t cp_listed;  /* messages the last checkpoint listed */
    uint64_t cp_bytes; /* and its size */

    waiter_t *waiters; /* [whead, whead + wlen), by index */
    size_t whead, wlen, wcap;
    uint64_t *taken; /* [thead, thead + tlen): persistent messages out for delivery, sorted */
    size_t thead, tlen, tcap, ttomb;
    wr_seglog_window_t window; /* reads back paged-out messages */

    rv_t *rv; /* replay: the persistent enqueue records seen, by index */
    size_t rn, rcap;
    uint64_t acked, transient, corrupt;
};

/* ---------------------------------------------------------------- helpers */

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64le(const uint8_t *p)
{
    return (uint64_t)get32le(p) | (uint64_t)get32le(p + 4) << 32;
}

static void touch(wr_qlog_ctx_t *ctx)
{
    if (ctx->touch != NULL)
        ctx->touch(ctx->ud);
}

static void mark_dirty(wr_qlog_t *l)
{
    if (wr_list_empty(&l->node))
        wr_list_insert_tail(&l->ctx->dirty, &l->node);
    touch(l->ctx);
}

/* Adds index to the last range when it extends it, else as a new range. */
static bool ranges_add(ranges_t *r, uint64_t index)
{
    if (r->n > 0 && r->v[r->n - 1].start + r->v[r->n - 1].count == index &&
        r->v[r->n - 1].count < UINT32_MAX) {
        r->v[r->n - 1].count++;
        return true;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        range_t *v = realloc(r->v, cap * sizeof(*v));

        if (v == NULL)
            return false;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (range_t){index, 1};
    return true;
}

static void ranges_free(ranges_t *r)
{
    free(r->v);
    *r = (ranges_t){0};
}

/* ---------------------------------------------------------------- confirms */

static bool waiters_push(wr_qlog_t *l, uint64_t index, wr_confirm_t *c)
{
    if (l->whead + l->wlen == l->wcap) {
        if (l->whead > 0) {
            memmove(l->waiters, l->waiters + l->whead, l->wlen * sizeof(*l->waiters));
            l->whead = 0;
        } else {
            size_t cap = l->wcap ? l->wcap * 2 : 64;
            waiter_t *w = realloc(l->waiters, cap * sizeof(*w));

            if (w == NULL)
                return false;
            l->waiters = w;
            l->wcap = cap;
        }
    }
    l->waiters[l->whead + l->wlen++] = (waiter_t){index, c};
    return true;
}

/* Releases the waiters up to index (all with UINT64_MAX). */
static void waiters_release(wr_qlog_t *l, uint64_t index, bool ok)
{
    while (l->wlen > 0 && l->waiters[l->whead].index <= index) {
        wr_confirm_t *c = l->waiters[l->whead].c;

        l->whead++;
        l->wlen--;
        wr_confirm_release(c, ok);
    }
    if (l->wlen == 0)
        l->whead = 0;
}

/*
 * A write error loses the records of its batch; the log goes on. The ack
 * and delivered records it lost are restated by a checkpoint at the next
 * flush (not at once: on a disk that stays full that would retry in a loop).
 */
static void on_durable(void *ud, wr_seglog_t *log, uint64_t index, int status)
{
    wr_qlog_t *l = ud;

    if (status != WR_OK) {
        l->cp_due = true;
        if (!l->write_failed)
            wr_log_error("%s: write error in its log %s: messages up to record %" PRIu64
                         " are not stored and their publishers get basic.nack; the queue goes on storing "
                         "messages once writes succeed again",
                         l->what, l->name, index);
        l->write_failed = true;
    } else if (l->write_failed) {
        l->write_failed = false;
        wr_log_info("%s: its log %s is written again", l->what, l->name);
    }
    waiters_release(l, index, status == WR_OK);
}

/* ---------------------------------------------------------------- taken */

/* The first slot in [thead, thead + tlen) whose index is >= index. */
static size_t taken_lower_bound(const wr_qlog_t *l, uint64_t index)
{
    size_t lo = l->thead, hi = l->thead + l->tlen;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((l->taken[mid] & ~TOMB) < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool taken_push(wr_qlog_t *l, uint64_t index)
{
    if (l->thead + l->tlen == l->tcap) {
        if (l->thead > l->tlen) {
            memmove(l->taken, l->taken + l->thead, l->tlen * sizeof(*l->taken));
            l->thead = 0;
        } else {
            size_t cap = l->tcap ? l->tcap * 2 : 64;
            uint64_t *t = realloc(l->taken, cap * sizeof(*t));

            if (t == NULL)
                return false;
            l->taken = t;
            l->tcap = cap;
        }
    }
    l->taken[l->thead + l->tlen++] = index;
    return true;
}

/* Drops the tombstones, once they are the majority, so the array stays as
 * large as what is really out for delivery. */
static void taken_compact(wr_qlog_t *l)
{
    size_t n = 0;

    for (size_t i = l->thead; i < l->thead + l->tlen; i++) {
        if (!(l->taken[i] & TOMB))
            l->taken[n++] = l->taken[i];
    }
    l->thead = 0;
    l->tlen = n;
    l->ttomb = 0;
}

static void taken_remove(wr_qlog_t *l, uint64_t index)
{
    size_t i = taken_lower_bound(l, index);

    if (i == l->thead + l->tlen || l->taken[i] != index)
        return;
    l->taken[i] |= TOMB;
    l->ttomb++;
    while (l->tlen > 0 && (l->taken[l->thead] & TOMB)) {
        l->thead++;
        l->tlen--;
        l->ttomb--;
    }
    if (l->tlen == 0)
        l->thead = 0;
    else if (l->ttomb > 64 && l->ttomb > l->tlen / 2)
        taken_compact(l);
}

/* ---------------------------------------------------------------- records */

/* Remembers a record that the next checkpoint makes useless. */
static void mark(wr_qlog_t *l, uint64_t index, size_t len)
{
    if (l->nmarks == l->capmarks) {
        size_t cap = l->capmarks ? l->capmarks * 2 : 64;
        uint64_t *m = realloc(l->marks, cap * sizeof(*m));

        /* Unremembered, it stays live: only space is lost. */
        if (m == NULL)
            return;
        l->marks = m;
        l->capmarks = cap;
    }
    l->marks[l->nmarks++] = index;
    l->marks_bytes += len;
}

/* Appends the ranges as records of `type`; nobody waits for them. */
static void emit(wr_qlog_t *l, uint8_t type, ranges_t *r)
{
    wr_buf_t b = WR_BUF_INIT;
    uint64_t index;

    for (size_t i = 0; i < r->n; i += MAX_RANGES_PER_RECORD) {
        size_t n = r->n - i < MAX_RANGES_PER_RECORD ? r->n - i : MAX_RANGES_PER_RECORD;
        uint8_t range[RANGE_SIZE];

        wr_buf_reset(&b);
        wr_buf_put_u8(&b, type);
        for (size_t k = i; k < i + n; k++) {
            put64le(range, r->v[k].start);
            put32le(range + 8, (uint32_t)r->v[k].count);
            wr_buf_put(&b, range, sizeof(range));
        }
        /* A lost ack only means a redelivery after a crash. */
        if (wr_buf_ok(&b) && wr_seglog_append(l->log, b.data, b.len, &index) == WR_OK)
            mark(l, index, b.len);
    }
    wr_buf_free(&b);
    if (r->cap > 1024)
        ranges_free(r);
    r->n = 0;
}

/* Encodes the range being built, if any. */
static void cp_put(cp_t *cp)
{
    uint8_t range[CP_RANGE_SIZE];

    if (cp->count == 0)
        return;
    put64le(range, cp->start);
    put32le(range + 8, (uint32_t)cp->count);
    range[12] = cp->flags;
    wr_buf_put(&cp->buf, range, sizeof(range));
    cp->count = 0;
}

static void cp_add(cp_t *cp, uint64_t index, uint8_t flags)
{
    if (cp->count > 0 && cp->start + cp->count == index && cp->flags == flags && cp->count < UINT32_MAX) {
        cp->count++;
        return;
    }
    cp_put(cp);
    cp->start = index;
    cp->count = 1;
    cp->flags = flags;
}

typedef struct {
    wr_qlog_t *l;
    cp_t *cp;
    size_t t;      /* next slot of l->taken to merge */
    size_t listed; /* messages listed */
} cp_merge_t;

/* Adds the taken messages below index (redelivered after a restart). */
static void cp_taken_below(cp_merge_t *m, uint64_t index)
{
    wr_qlog_t *l = m->l;

    for (; m->t < l->thead + l->tlen && (l->taken[m->t] & ~TOMB) < index; m->t++) {
        if (!(l->taken[m->t] & TOMB)) {
            cp_add(m->cp, l->taken[m->t], CP_REDELIVERED);
            m->listed++;
        }
    }
}

static void cp_ready(void *ud, uint64_t index, bool redelivered)
{
    cp_merge_t *m = ud;

    cp_taken_below(m, index);
    cp_add(m->cp, index, redelivered ? CP_REDELIVERED : 0);
    m->listed++;
}

/*
 * Writes the set of persistent messages live in the queue (ready, or taken
 * and so redelivered after a restart) and releases the records it makes
 * useless: every ack, delivered marker and checkpoint before it.
 */
static void checkpoint(wr_qlog_t *l)
{
    cp_t cp = {WR_BUF_INIT, 0, 0, 0};
    cp_merge_t m = {l, &cp, l->thead, 0};
    uint64_t index;

    wr_buf_put_u8(&cp.buf, REC_CHECKPOINT);
    l->ops->ready(l->owner, cp_ready, &m);
    cp_taken_below(&m, UINT64_MAX);
    cp_put(&cp);
    if (wr_buf_ok(&cp.buf) && wr_seglog_append(l->log, cp.buf.data, cp.buf.len, &index) == WR_OK) {
        for (size_t i = 0; i < l->nmarks; i++)
            wr_seglog_release(l->log, l->marks[i]);
        l->nmarks = 0;
        l->marks_bytes = 0;
        if (l->capmarks > 4096) {
            free(l->marks);
            l->marks = NULL;
            l->capmarks = 0;
        }
        mark(l, index, 0);
        l->cp_due = false;
        l->cp_listed = m.listed;
        l->cp_bytes = cp.buf.len;
    }
    wr_buf_free(&cp.buf);
}

static void qlog_flush(wr_qlog_t *l)
{
    emit(l, REC_DELIVERED, &l->delivered);
    emit(l, REC_ACK, &l->acks);
    if (!l->no_checkpoint &&
        (l->cp_due || (l->nmarks >= CHECKPOINT_MIN_RECORDS && l->nmarks >= l->cp_listed / CHECKPOINT_SCAN &&
                       l->marks_bytes >= l->cp_bytes)))
        checkpoint(l);
}

/* ---------------------------------------------------------------- context */

void wr_qlog_ctx_init(wr_qlog_ctx_t *ctx, wr_store_t *store, uint64_t memory_budget,
                      void (*touch_fn)(void *ud), void *ud)
{
    ctx->store = store;
    ctx->memory_budget = memory_budget;
    ctx->next_id = 1;
    wr_list_init(&ctx->dirty);
    wr_list_init(&ctx->doomed);
    ctx->touch = touch_fn;
    ctx->ud = ud;
    ctx->stored = NULL;
}

void wr_qlog_ctx_flush(wr_qlog_ctx_t *ctx)
{
    while (!wr_list_empty(&ctx->dirty)) {
        wr_qlog_t *l = wr_list_entry(ctx->dirty.next, wr_qlog_t, node);

        wr_list_remove(&l->node);
        qlog_flush(l);
    }
}

bool wr_qlog_ctx_has_doomed(const wr_qlog_ctx_t *ctx)
{
    return !wr_list_empty(&ctx->doomed);
}

static void qlog_free(wr_qlog_t *l)
{
    wr_list_remove(&l->node);
    ranges_free(&l->acks);
    ranges_free(&l->delivered);
    free(l->waiters);
    free(l->taken);
    free(l->marks);
    free(l->rv);
    wr_seglog_window_free(&l->window);
    free(l->what);
    free(l);
}

void wr_qlog_ctx_bury(wr_qlog_ctx_t *ctx)
{
    while (!wr_list_empty(&ctx->doomed)) {
        wr_qlog_t *l = wr_list_entry(ctx->doomed.next, wr_qlog_t, node);

        wr_seglog_destroy(l->log);
        qlog_free(l);
    }
}

/* ---------------------------------------------------------------- records */

/* An enqueue record's fields; the strings point into the record. */
typedef struct {
    uint64_t expiry; /* ms since the epoch, 0: none */
    wr_bytes_t exchange;
    wr_bytes_t routing_key;
    wr_bytes_t header;
    wr_bytes_t body;
} enqueue_t;

static bool parse_enqueue(const uint8_t *p, size_t len, enqueue_t *e)
{
    const uint8_t *end = p + len;
    uint32_t hl;

    if (3 > end - p || p[0] != REC_ENQUEUE)
        return false;
    e->expiry = 0;
    if (p[1] & ENQ_EXPIRY) {
        if (11 > end - p)
            return false;
        e->expiry = get64le(p + 2);
        p += 8;
    }
    p += 2;
    e->exchange = (wr_bytes_t){p + 1, *p};
    if (e->exchange.len + 1 >= (size_t)(end - p))
        return false;
    p += 1 + e->exchange.len;
    e->routing_key = (wr_bytes_t){p + 1, *p};
    if (e->routing_key.len + 1 > (size_t)(end - p))
        return false;
    p += 1 + e->routing_key.len;
    if (4 > end - p)
        return false;
    hl = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    p += 4;
    if (hl > (size_t)(end - p))
        return false;
    e->header = (wr_bytes_t){p, hl};
    e->body = (wr_bytes_t){p + hl, (size_t)(end - p - hl)};
    return true;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline on the monotonic clock as wall-clock time (at least 1: 0 in a
 * record means none), and back (0: long past). */
static uint64_t expiry_to_wall(uint64_t expiry)
{
    int64_t wall = clock_ms(CLOCK_REALTIME) + ((int64_t)expiry - clock_ms(CLOCK_MONOTONIC));

    return wall > 0 ? (uint64_t)wall : 1;
}

static uint64_t expiry_from_wall(uint64_t wall)
{
    int64_t mono = clock_ms(CLOCK_MONOTONIC) + ((int64_t)wall - clock_ms(CLOCK_REALTIME));

    return mono > 0 ? (uint64_t)mono : 0;
}

/* ---------------------------------------------------------------- replay */

static bool rv_push(wr_qlog_t *l, uint64_t v, const wr_qlog_meta_t *meta)
{
    if (l->rn == l->rcap) {
        size_t cap = l->rcap ? l->rcap * 2 : 1024;
        rv_t *n = realloc(l->rv, cap * sizeof(*n));

        if (n == NULL)
            return false;
        l->rv = n;
        l->rcap = cap;
    }
    l->rv[l->rn++] = (rv_t){v, *meta};
    return true;
}

/* Applies one range of an ack or delivered record to the enqueue records seen so far. */
static void replay_range(wr_qlog_t *l, wr_seglog_t *log, uint8_t type, uint64_t start, uint64_t count)
{
    size_t lo = 0, hi = l->rn;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((l->rv[mid].v >> 2) < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < l->rn && (l->rv[lo].v >> 2) - start < count; lo++) {
        uint64_t *v = &l->rv[lo].v;

        if (type == REC_DELIVERED) {
            *v |= RV_REDELIVERED;
        } else if (!(*v & RV_DEAD)) {
            *v |= RV_DEAD;
            l->acked++;
            wr_seglog_release(log, *v >> 2);
        }
    }
}

/*
 * Applies a checkpoint: of the enqueue records seen so far (all below it),
 * exactly those in its ranges are live, with its redelivered flags.
 */
static void replay_checkpoint(wr_qlog_t *l, wr_seglog_t *log, const uint8_t *p, size_t n)
{
    size_t r = 0;

    for (size_t i = 0; i < l->rn; i++) {
        uint64_t *v = &l->rv[i].v, index = *v >> 2;

        if (*v & RV_DEAD)
            continue;
        /* Ranges come in increasing order: skip those ending at or below index. */
        while (r < n && get64le(p + r * CP_RANGE_SIZE) + get32le(p + r * CP_RANGE_SIZE + 8) <= index)
            r++;
        if (r < n && get64le(p + r * CP_RANGE_SIZE) <= index) {
            *v &= ~(uint64_t)RV_REDELIVERED;
            if (p[r * CP_RANGE_SIZE + 12] & CP_REDELIVERED)
                *v |= RV_REDELIVERED;
        } else {
            *v |= RV_DEAD;
            l->acked++;
            wr_seglog_release(log, index);
        }
    }
}

static int on_replay(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len)
{
    wr_qlog_t *l = ud;
    enqueue_t e;

    if (len >= 2 && data[0] == REC_ENQUEUE && !(data[1] & ENQ_PERSISTENT)) {
        /* Paged out before the restart; transient messages do not survive one. */
        l->transient++;
        wr_seglog_release(log, index);
        return WR_OK;
    }
    if (parse_enqueue(data, len, &e)) {
        wr_qlog_meta_t meta = {e.expiry == 0 ? UINT64_MAX : expiry_from_wall(e.expiry), e.body.len, 0};
        wr_props_t props;

        if (wr_props_decode(e.header, &props) == WR_OK && (props.flags & WR_PROP_PRIORITY))
            meta.priority = props.priority;
        return rv_push(l, index << 2, &meta) ? WR_OK : WR_ENOMEM;
    }
    if (len >= 1 && (data[0] == REC_ACK || data[0] == REC_DELIVERED) && (len - 1) % RANGE_SIZE == 0) {
        for (size_t off = 1; off < len; off += RANGE_SIZE)
            replay_range(l, log, data[0], get64le(data + off), get32le(data + off + 8));
        mark(l, index, len);
        return WR_OK;
    }
    if (len >= 1 && data[0] == REC_CHECKPOINT && (len - 1) % CP_RANGE_SIZE == 0) {
        replay_checkpoint(l, log, data + 1, (len - 1) / CP_RANGE_SIZE);
        mark(l, index, len);
        return WR_OK;
    }
    /* It passed its CRC, so it is a record of a format this build does not know. */
    l->corrupt++;
    wr_seglog_release(log, index);
    return WR_OK;
}

/* Hands the live messages to the queue; a checkpoint replaces the acks replayed. */
static int replay_finish(wr_qlog_t *l, const wr_seglog_recovery_t *rec, char *err, size_t errlen)
{
    size_t live = 0;

    for (size_t i = 0; i < l->rn; i++) {
        const rv_t *r = &l->rv[i];

        if (r->v & RV_DEAD)
            continue;
        if (!l->ops->recovered(l->owner, r->v >> 2, (r->v & RV_REDELIVERED) != 0, &r->meta)) {
            snprintf(err, errlen, "%s: out of memory recovering its messages", l->what);
            return WR_ENOMEM;
        }
        live++;
    }
    free(l->rv);
    l->rv = NULL;
    l->rn = l->rcap = 0;
    if (l->nmarks > 0)
        checkpoint(l);
    wr_log_info("%s: recovered %zu messages from log %s in %.1f ms (%" PRIu64 " records in %" PRIu32
                " segment file(s); %" PRIu64 " acked and %" PRIu64 " transient dropped)",
                l->what, live, l->name, (double)rec->elapsed_us / 1000.0, rec->records, rec->segments,
                l->acked, l->transient);
    if (rec->truncated_bytes > 0 || rec->lost_records > 0 || l->corrupt > 0)
        wr_log_warn("%s: log %s had damage: %" PRIu64 " bytes of torn tail truncated, %" PRIu64
                    " records lost in corrupt regions, %" PRIu64 " records of an unknown type dropped",
                    l->what, l->name, rec->truncated_bytes, rec->lost_records, l->corrupt);
    return WR_OK;
}

/* ---------------------------------------------------------------- lifecycle */

static int open_log(wr_qlog_t *l, bool replay, char *err, size_t errlen)
{
    wr_seglog_cbs_t cbs = {replay ? on_replay : NULL, on_durable, l};
    wr_seglog_recovery_t rec;

    l->log = wr_seglog_open(l->ctx->store, l->name, &cbs, &rec, err, errlen);
    if (l->log == NULL)
        return WR_EIO;
    if (replay && replay_finish(l, &rec, err, errlen) != WR_OK)
        return WR_ENOMEM;
    return WR_OK;
}

wr_qlog_t *wr_qlog_new(wr_qlog_ctx_t *ctx, const char *name, bool durable, const wr_qlog_ops_t *ops,
                       void *owner, const char *what, char *err, size_t errlen)
{
    wr_qlog_t *l = calloc(1, sizeof(*l));

    if (l == NULL || (l->what = strdup(what)) == NULL) {
        free(l);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->ctx = ctx;
    l->durable = durable;
    l->ops = ops;
    l->owner = owner;
    wr_list_init(&l->node);
    if (name == NULL) {
        snprintf(l->name, sizeof(l->name), "%c%016" PRIx64, durable ? 'q' : 't', ctx->next_id++);
        return l;
    }
    if (strlen(name) >= sizeof(l->name)) {
        snprintf(err, errlen, "%s: invalid log name '%s'", what, name);
        goto err;
    }
    strcpy(l->name, name);
    /* Opening (creating) 100,000 empty logs was most of a restart. */
    if (ctx->stored != NULL && wr_map_get(ctx->stored, wr_bytes_str(name)) == NULL)
        return l;
    if (open_log(l, true, err, errlen) != WR_OK)
        goto err;
    return l;
err:
    if (l->log != NULL)
        wr_seglog_close(l->log);
    qlog_free(l);
    return NULL;
}

const char *wr_qlog_name(const wr_qlog_t *l)
{
    return l->name;
}

uint64_t wr_qlog_budget(const wr_qlog_t *l)
{
    return l->ctx->memory_budget;
}

void wr_qlog_close(wr_qlog_t *l)
{
    bool ok = true;

    if (l == NULL)
        return;
    if (l->log != NULL && l->durable) {
        qlog_flush(l);
        ok = wr_seglog_close(l->log) == WR_OK;
    } else {
        wr_seglog_destroy(l->log);
    }
    waiters_release(l, UINT64_MAX, ok);
    qlog_free(l);
}

void wr_qlog_delete(wr_qlog_t *l)
{
    if (l == NULL)
        return;
    waiters_release(l, UINT64_MAX, true);
    wr_list_remove(&l->node);
    if (l->log != NULL && l->durable) {
        wr_list_insert_tail(&l->ctx->doomed, &l->node);
        touch(l->ctx);
        return;
    }
    if (l->log != NULL) {
        wr_seglog_destroy(l->log);
        /* The next batch removes its files. */
        touch(l->ctx);
    }
    qlog_free(l);
}

/* ---------------------------------------------------------------- messages */

int wr_qlog_append(wr_qlog_t *l, wr_message_t *m, bool persistent, uint64_t expiry, uint64_t *index)
{
    uint8_t pre[2 + 8 + 1 + 255 + 1 + 255 + 4];
    struct iovec iov[3];
    char err[512];
    size_t n = 0;
    int rc;

    if (l->log == NULL) {
        if (open_log(l, false, err, sizeof(err)) != WR_OK) {
            if (!l->open_failed)
                wr_log_error("%s: cannot create its log: %s", l->what, err);
            l->open_failed = true;
            return WR_EIO;
        }
        l->open_failed = false;
    }
    pre[n++] = REC_ENQUEUE;
    pre[n++] = (persistent ? ENQ_PERSISTENT : 0) | (expiry != UINT64_MAX ? ENQ_EXPIRY : 0);
    if (expiry != UINT64_MAX) {
        put64le(pre + n, expiry_to_wall(expiry));
        n += 8;
    }
    pre[n++] = (uint8_t)m->exchange.len;
    if (m->exchange.len > 0)
        memcpy(pre + n, m->exchange.data, m->exchange.len);
    n += m->exchange.len;
    pre[n++] = (uint8_t)m->routing_key.len;
    if (m->routing_key.len > 0)
        memcpy(pre + n, m->routing_key.data, m->routing_key.len);
    n += m->routing_key.len;
    pre[n++] = (uint8_t)(m->header.len >> 24);
    pre[n++] = (uint8_t)(m->header.len >> 16);
    pre[n++] = (uint8_t)(m->header.len >> 8);
    pre[n++] = (uint8_t)m->header.len;
    iov[0] = (struct iovec){pre, n};
    iov[1] = (struct iovec){(void *)m->header.data, m->header.len};
    iov[2] = (struct iovec){m->body, (size_t)m->body_size};
    rc = wr_seglog_appendv(l->log, iov, 3, index);
    if (rc == WR_OK)
        touch(l->ctx);
    return rc;
}

int wr_qlog_wait(wr_qlog_t *l, uint64_t index, wr_confirm_t *c)
{
    if (!waiters_push(l, index, c))
        return WR_ENOMEM;
    c->waiting++;
    wr_store_awaited(l->ctx->store);
    return WR_OK;
}

int wr_qlog_read(wr_qlog_t *l, uint64_t index, uint64_t upto, wr_message_t **out)
{
    const uint8_t *data;
    wr_message_t *m;
    enqueue_t e;
    size_t len;
    int rc;

    rc = l->log != NULL ? wr_seglog_read_run(l->log, index, upto, &l->window, &data, &len) : WR_ENOENT;
    if (rc != WR_OK)
        goto out;
    rc = WR_EIO;
    if (!parse_enqueue(data, len, &e))
        goto out;
    m = wr_message_new(e.exchange, e.routing_key, e.header, e.body.len);
    rc = WR_ENOMEM;
    if (m == NULL)
        goto out;
    if (e.body.len > 0)
        memcpy(m->body, e.body.data, e.body.len);
    m->body_filled = m->body_size;
    *out = m;
    rc = WR_OK;
out:
    if (rc == WR_EIO || rc == WR_ENOENT)
        wr_log_error("%s: a message is lost: record %" PRIu64 " of log %s cannot be read back (%s)", l->what,
                     index, l->name, rc == WR_EIO ? "I/O error or damaged record" : "no such record");
    if (l->window.buf.cap > WINDOW_KEEP)
        wr_seglog_window_free(&l->window);
    return rc;
}

void wr_qlog_taken(wr_qlog_t *l, uint64_t index, bool persistent, bool first)
{
    if (!l->durable || !persistent)
        return;
    /* A checkpoint without it would lose it after a restart: write none. */
    if (!taken_push(l, index))
        l->no_checkpoint = true;
    /* Without the marker a restart delivers it as new: a lesser harm. */
    if (first && ranges_add(&l->delivered, index))
        mark_dirty(l);
}

void wr_qlog_settle(wr_qlog_t *l, uint64_t index, bool persistent, bool taken)
{
    if (l->log == NULL)
        return;
    wr_seglog_release(l->log, index);
    if (!l->durable || !persistent) {
        /* The release may have left a segment to delete or reclaim. */
        touch(l->ctx);
        return;
    }
    if (taken)
        taken_remove(l, index);
    /* Without the ack a restart redelivers it: "may redeliver, never lose". */
    ranges_add(&l->acks, index);
    mark_dirty(l);
}
