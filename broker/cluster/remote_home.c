/* SPDX-License-Identifier: MIT */
/*
 * The home side of remote queues (remote.h): serves the proxies of other
 * nodes from the local classic queues. A forwarded publish goes into the
 * queue with a confirm of its own, answered back once the queue confirms.
 * A remote consumer is a local consumer whose deliveries go over the link:
 * the queue checks its prefetch window as for any consumer, and its
 * can_take says no while its credit is spent or the link has a backlog.
 * Its deliveries awaiting settlement wait in a ring by delivery id; when
 * its node goes down they are requeued, as a closed channel's would be.
 */
#include "broker/cluster/remote_internal.h"

#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "core/status.h"

/* One delivery awaiting settlement. */
typedef struct {
    wr_qtoken_t t;
    wr_message_t *m; /* held when t.keep_msg */
    bool live;
} slot_t;

typedef struct {
    wr_list_t link; /* in r->homes */
    wr_remote_t *r;
    wr_consumer_t *c; /* owner: this */
    wr_queue_t *q;    /* a reference */
    wr_vhost_t *vh;   /* q's */
    uint64_t id;      /* the proxy's consumer id */
    uint32_t credit;
    bool gone;    /* cancelled: freed once nothing awaits settlement */
    slot_t *ring; /* deliveries first .. next-1, from ring[head] */
    size_t cap, head;
    uint64_t first, next;
    size_t live;
    uint8_t key[8 + 256]; /* consumer id, then node name */
    size_t keylen;
} home_t;

/* A forwarded publish awaiting the local confirm. */
typedef struct {
    wr_confirm_t base;
    wr_list_t link; /* in r->home_confs */
    wr_remote_t *r; /* NULL once the service is freed */
    uint64_t seq;
    char node[];
} hconf_t;

static const char *node_of(const home_t *h)
{
    return (const char *)h->key + 8;
}

/* The map key of (node, id). */
static size_t key_make(uint8_t *out, const char *node, uint64_t id)
{
    size_t len = strlen(node);

    memcpy(out, &id, 8);
    memcpy(out + 8, node, len);
    return 8 + len;
}

static home_t *home_find(wr_remote_t *r, const char *node, uint64_t id)
{
    uint8_t key[8 + 256];
    size_t len = key_make(key, node, id);

    return wr_map_get(r->home_by_key, (wr_bytes_t){key, len});
}

/* The local queue (not itself a proxy) a message names, or NULL; *vhp
 * (may be NULL) is its vhost. */
static wr_queue_t *local_queue_in(wr_remote_t *r, const wr_remote_msg_t *m, wr_vhost_t **vhp)
{
    char vname[256];
    wr_vhost_t *vh;
    wr_queue_t *q;

    memcpy(vname, m->vhost.data, m->vhost.len);
    vname[m->vhost.len] = '\0';
    vh = r->d.vhost != NULL ? r->d.vhost(r->d.ud, vname) : NULL;
    q = vh != NULL ? wr_vhost_queue(vh, m->queue) : NULL;
    if (vhp != NULL)
        *vhp = vh;
    return q != NULL && wr_remote_queue_home(q) == NULL ? q : NULL;
}

static wr_queue_t *local_queue(wr_remote_t *r, const wr_remote_msg_t *m)
{
    return local_queue_in(r, m, NULL);
}

/* q lost its last consumer: an auto-delete queue goes, as when a channel's
 * consumer leaves it (the vhost tells the metadata group). */
static void auto_delete(wr_vhost_t *vh, wr_queue_t *q)
{
    if (wr_queue_auto_delete_due(q))
        wr_vhost_queue_delete(vh, q);
}

/* ---------------------------------------------------------------- publish */

static void hconf_done(wr_confirm_t *c)
{
    hconf_t *hc = (hconf_t *)c;
    wr_remote_msg_t m = {.kind = WR_REMOTE_CONFIRM, .id = hc->seq};

    m.status = c->failed ? WR_REMOTE_NACK : WR_REMOTE_ACK;
    /* A node gone meanwhile has nacked the publish itself. */
    if (hc->r != NULL)
        wr_remote_send(hc->r, hc->node, &m);
    wr_list_remove(&hc->link);
    free(hc);
}

static hconf_t *hconf_new(wr_remote_t *r, const char *node, uint64_t seq)
{
    size_t len = strlen(node) + 1;
    hconf_t *hc = malloc(sizeof(*hc) + len);

    if (hc == NULL)
        return NULL;
    hc->base = (wr_confirm_t){1, false, hconf_done};
    hc->r = r;
    hc->seq = seq;
    memcpy(hc->node, node, len);
    wr_list_insert_tail(&r->home_confs, &hc->link);
    return hc;
}

static wr_message_t *message_of(const wr_remote_msg_t *m)
{
    wr_message_t *msg = wr_message_new(m->exchange, m->routing_key, m->header, m->body.len);

    if (msg != NULL && m->body.len > 0) {
        memcpy(msg->body, m->body.data, m->body.len);
        msg->body_filled = m->body.len;
    }
    return msg;
}

static void home_publish(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    wr_queue_t *q = local_queue(r, m);
    wr_message_t *msg = q != NULL ? message_of(m) : NULL;
    hconf_t *hc = msg != NULL && m->id != 0 ? hconf_new(r, node, m->id) : NULL;
    wr_remote_msg_t nack = {.kind = WR_REMOTE_CONFIRM, .id = m->id, .status = WR_REMOTE_NACK};
    int rc = msg != NULL ? wr_queue_publish(q, msg, hc != NULL ? &hc->base : NULL) : WR_ENOENT;

    wr_message_unref(msg);
    if (m->id == 0)
        return;
    if (hc == NULL) {
        wr_remote_send(r, node, &nack);
        return;
    }
    if (rc != WR_OK)
        hc->base.failed = true;
    wr_confirm_release(&hc->base, true);
}

/* ---------------------------------------------------------------- the ring */

static bool ring_push(home_t *h, const wr_qtoken_t *t, wr_message_t *m)
{
    size_t n = (size_t)(h->next - h->first);

    if (n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        slot_t *ring = malloc(cap * sizeof(*ring));

        if (ring == NULL)
            return false;
        for (size_t i = 0; i < n; i++)
            ring[i] = h->ring[(h->head + i) % h->cap];
        free(h->ring);
        h->ring = ring;
        h->cap = cap;
        h->head = 0;
    }
    h->ring[(h->head + n) % h->cap] = (slot_t){*t, m, true};
    h->next++;
    h->live++;
    return true;
}

/* The slot of delivery id, or NULL when it is not awaiting settlement. */
static slot_t *ring_at(home_t *h, uint64_t id)
{
    slot_t *s;

    if (id < h->first || id >= h->next)
        return NULL;
    s = &h->ring[(h->head + (size_t)(id - h->first)) % h->cap];
    return s->live ? s : NULL;
}

static void ring_trim(home_t *h)
{
    while (h->first < h->next && !h->ring[h->head].live) {
        h->head = (h->head + 1) % h->cap;
        h->first++;
    }
}

/* Settles one delivery at the queue. */
static void slot_settle(home_t *h, slot_t *s, wr_settle_t how)
{
    s->live = false;
    h->live--;
    if (h->c != NULL)
        h->c->unacked--;
    wr_queue_settle(h->q, s->m, &s->t, how);
}

/* ---------------------------------------------------------------- consumers */

static void home_free(home_t *h)
{
    wr_map_del(h->r->home_by_key, (wr_bytes_t){h->key, h->keylen});
    wr_list_remove(&h->link);
    wr_consumer_unref(h->c);
    wr_queue_unref(h->q);
    free(h->ring);
    free(h);
}

/* Frees h once it is cancelled and nothing awaits settlement. */
static void home_reap(home_t *h)
{
    if (h->gone && h->live == 0)
        home_free(h);
}

static bool home_can_take(wr_consumer_t *c)
{
    home_t *h = c->owner;

    return h->credit > 0 && wr_remote_backlog(h->r, node_of(h)) == 0;
}

static void home_deliver(wr_consumer_t *c, wr_message_t *m, const wr_qtoken_t *t, bool redelivered)
{
    home_t *h = c->owner;
    uint64_t id = h->next;
    wr_remote_msg_t d = {.kind = WR_REMOTE_DELIVER,
                         .id = h->id,
                         .tag = id,
                         .exchange = m->exchange,
                         .routing_key = m->routing_key,
                         .header = m->header,
                         .body = {m->body, m->body_size}};

    d.flags = redelivered ? WR_REMOTE_REDELIVERED : 0;
    h->credit--;
    if (!c->no_ack && !ring_push(h, t, t->keep_msg ? m : NULL)) {
        /* Nowhere to track it: back to the queue at once. */
        wr_queue_settle(h->q, t->keep_msg ? m : NULL, t, WR_SETTLE_RELEASE);
        if (!t->keep_msg)
            wr_message_unref(m);
        return;
    }
    if (c->no_ack) {
        h->first = ++h->next; /* nothing to track */
    } else {
        c->unacked++;
        if (t->keep_msg)
            wr_message_ref(m);
    }
    /* A link that went down meanwhile: its on_down requeues the ring. */
    wr_remote_send(h->r, node_of(h), &d);
    wr_message_unref(m);
}

static void home_cancelled(wr_consumer_t *c)
{
    home_t *h = c->owner;
    wr_remote_msg_t m = {.kind = WR_REMOTE_CANCELLED, .id = h->id};

    wr_remote_send(h->r, node_of(h), &m);
    h->gone = true;
    home_reap(h);
}

static const wr_consumer_ops_t home_ops = {home_can_take, home_deliver, home_cancelled};

/* The record of (node, id) on q, listed; c is the caller's to add. */
static home_t *home_alloc(wr_remote_t *r, const char *node, uint64_t id, wr_vhost_t *vh, wr_queue_t *q)
{
    home_t *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->r = r;
    h->q = wr_queue_ref(q);
    h->vh = vh;
    h->id = id;
    h->first = h->next = 1;
    h->keylen = key_make(h->key, node, id);
    if (wr_map_put(r->home_by_key, (wr_bytes_t){h->key, h->keylen}, h) != WR_OK) {
        wr_queue_unref(h->q);
        free(h);
        return NULL;
    }
    wr_list_insert_tail(&r->homes, &h->link);
    return h;
}

static home_t *home_new(wr_remote_t *r, const char *node, const wr_remote_msg_t *m, wr_vhost_t *vh,
                        wr_queue_t *q)
{
    home_t *h = home_alloc(r, node, m->id, vh, q);

    if (h == NULL)
        return NULL;
    h->c = wr_consumer_new(wr_bytes_str(node), m->args, &home_ops, h);
    if (h->c == NULL) {
        home_free(h);
        return NULL;
    }
    h->credit = m->credit;
    h->c->prefetch = m->prefetch;
    h->c->priority = m->priority;
    h->c->no_ack = (m->flags & WR_REMOTE_NO_ACK) != 0;
    h->c->exclusive = (m->flags & WR_REMOTE_EXCLUSIVE) != 0;
    return h;
}

static uint8_t consume_status(int rc)
{
    return rc == WR_OK ? WR_REMOTE_OK : rc == WR_EEXIST ? WR_REMOTE_IN_USE : WR_REMOTE_FAILED;
}

static void home_consume(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    wr_vhost_t *vh;
    wr_queue_t *q = local_queue_in(r, m, &vh);
    wr_remote_msg_t ok = {.kind = WR_REMOTE_CONSUME_OK, .id = m->id, .status = WR_REMOTE_NOT_FOUND};
    home_t *h = q != NULL && home_find(r, node, m->id) == NULL ? home_new(r, node, m, vh, q) : NULL;
    int rc = h != NULL ? wr_queue_consume(q, h->c) : WR_ENOMEM;

    if (q != NULL)
        ok.status = consume_status(rc);
    /* consume-ok before any delivery: the queue only schedules them. */
    wr_remote_send(r, node, &ok);
    if (h != NULL && rc != WR_OK)
        home_free(h);
}

/* A proxy's gets settle through a record with no consumer, freed once
 * nothing it handed out awaits settlement (and made again at the next get). */
static home_t *getter(wr_remote_t *r, const char *node, uint64_t id, wr_vhost_t *vh, wr_queue_t *q)
{
    home_t *h = home_find(r, node, id);

    if (h == NULL && (h = home_alloc(r, node, id, vh, q)) != NULL)
        h->gone = true;
    return h != NULL && h->c == NULL && h->q == q ? h : NULL;
}

/*
 * Answers a proxy's get m of q: msg (a reference taken over; NULL for none)
 * joins h's ring unless no_ack, left is what stays ready. h NULL: NOT_FOUND,
 * or status when no message comes.
 */
static void get_send(wr_remote_t *r, const char *node, const wr_remote_msg_t *m, wr_queue_t *q, home_t *h,
                     wr_message_t *msg, const wr_qtoken_t *t, bool redelivered, uint32_t left, uint8_t status)
{
    bool no_ack = (m->flags & WR_REMOTE_NO_ACK) != 0;
    wr_remote_msg_t ok = {.kind = WR_REMOTE_GET_OK, .id = m->id, .tag = m->tag, .status = status};

    if (msg != NULL && !no_ack) {
        if (h == NULL || !ring_push(h, t, t->keep_msg ? msg : NULL)) {
            wr_queue_settle(q, msg, t, WR_SETTLE_RELEASE); /* nowhere to track it */
            msg = NULL;
        } else if (t->keep_msg) {
            wr_message_ref(msg);
        }
    }
    if (msg != NULL)
        ok = (wr_remote_msg_t){.kind = WR_REMOTE_GET_OK,
                               .id = m->id,
                               .tag = m->tag,
                               .status = WR_REMOTE_OK,
                               .delivery = no_ack ? 0 : h->next - 1,
                               .count = left,
                               .flags = redelivered ? WR_REMOTE_REDELIVERED : 0,
                               .exchange = msg->exchange,
                               .routing_key = msg->routing_key,
                               .header = msg->header,
                               .body = {msg->body, msg->body_size}};
    wr_remote_send(r, node, &ok);
    wr_message_unref(msg);
    if (h != NULL)
        home_reap(h);
}

/* A proxy's get or purge of a queue whose answer comes later (a quorum
 * queue's get_async, purge_async). */
typedef struct {
    wr_list_t link; /* in r->home_gets */
    wr_remote_t *r;
    wr_queue_t *q; /* a reference */
    wr_vhost_t *vh;
    wr_queue_get_t *get;         /* a get's */
    wr_queue_purging_t *purging; /* a purge's */
    wr_remote_msg_t m;           /* the request: id, tag, flags */
    char node[];
} hget_t;

static hget_t *hget_new(wr_remote_t *r, const char *node, const wr_remote_msg_t *m, wr_queue_t *q,
                        wr_vhost_t *vh)
{
    size_t len = strlen(node) + 1;
    hget_t *g = calloc(1, sizeof(*g) + len);

    if (g == NULL)
        return NULL;
    *g = (hget_t){.r = r, .q = wr_queue_ref(q), .vh = vh};
    g->m = (wr_remote_msg_t){.id = m->id, .tag = m->tag, .flags = m->flags};
    memcpy(g->node, node, len);
    wr_list_insert_tail(&r->home_gets, &g->link);
    return g;
}

static void hget_free(hget_t *g)
{
    wr_list_remove(&g->link);
    wr_queue_unref(g->q);
    free(g);
}

/* Its proxy failed it already (the link went down) or the service is going. */
static void hget_cancel(hget_t *g)
{
    if (g->purging != NULL)
        g->q->type->purge_cancel(g->purging);
    else
        g->q->type->get_cancel(g->get);
    hget_free(g);
}

static void hget_got(void *ud, wr_queue_got_t what, wr_message_t *msg, const wr_qtoken_t *t, bool redelivered,
                     uint32_t left)
{
    hget_t *g = ud;
    bool here = what == WR_QUEUE_GOT || what == WR_QUEUE_GOT_EMPTY;
    home_t *h = here ? getter(g->r, g->node, g->m.id, g->vh, g->q) : NULL;
    uint8_t status = here                        ? WR_REMOTE_EMPTY
                     : what == WR_QUEUE_GOT_DOWN ? WR_REMOTE_DOWN
                                                 : WR_REMOTE_NOT_FOUND;

    get_send(g->r, g->node, &g->m, g->q, h, msg, t, redelivered, left, status);
    hget_free(g);
}

/* Starts q's get for the proxy; WR_OK (answered later by hget_got) or the get_async error. */
static int get_later(wr_remote_t *r, const char *node, const wr_remote_msg_t *m, wr_queue_t *q,
                     wr_vhost_t *vh)
{
    hget_t *g = hget_new(r, node, m, q, vh);
    int rc;

    if (g == NULL)
        return WR_ENOMEM;
    rc = q->type->get_async(q, (m->flags & WR_REMOTE_NO_ACK) != 0, hget_got, g, &g->get);
    if (rc != WR_OK)
        hget_free(g);
    return rc;
}

static void home_get(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    wr_vhost_t *vh;
    wr_queue_t *q = local_queue_in(r, m, &vh);
    home_t *h;
    bool redelivered = false;
    wr_message_t *msg = NULL;
    wr_qtoken_t t;
    int rc;

    if (q != NULL && q->type->get_async != NULL) {
        wr_queue_touch(q);
        rc = get_later(r, node, m, q, vh);
        if (rc != WR_OK)
            get_send(r, node, m, q, NULL, NULL, NULL, false, 0,
                     rc == WR_ENOENT ? WR_REMOTE_DOWN : WR_REMOTE_NOT_FOUND);
        return;
    }
    h = q != NULL ? getter(r, node, m->id, vh, q) : NULL;
    if (h != NULL) {
        wr_queue_touch(q);
        wr_queue_get(q, (m->flags & WR_REMOTE_NO_ACK) != 0, &msg, &t, &redelivered);
    }
    get_send(r, node, m, q, h, msg, &t, redelivered, h != NULL ? (uint32_t)wr_queue_ready(q) : 0,
             h != NULL ? WR_REMOTE_EMPTY : WR_REMOTE_NOT_FOUND);
}

static void purge_send(wr_remote_t *r, const char *node, uint64_t tag, uint8_t status, uint64_t n)
{
    wr_remote_msg_t ok = {.kind = WR_REMOTE_PURGE_OK,
                          .tag = tag,
                          .status = status,
                          .count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n};

    wr_remote_send(r, node, &ok);
}

static void hpurge_done(void *ud, bool done, uint64_t n)
{
    hget_t *g = ud;

    purge_send(g->r, g->node, g->m.tag, done ? WR_REMOTE_OK : WR_REMOTE_DOWN, n);
    hget_free(g);
}

/* A proxy's purge: answered once q purged (a quorum queue: once this
 * member applied it). */
static void home_purge(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    wr_queue_t *q = local_queue(r, m);
    hget_t *g;
    int rc;

    if (q == NULL) {
        purge_send(r, node, m->tag, WR_REMOTE_NOT_FOUND, 0);
        return;
    }
    if (q->type->purge_async == NULL) {
        purge_send(r, node, m->tag, WR_REMOTE_OK, wr_queue_purge(q));
        return;
    }
    g = hget_new(r, node, m, q, NULL);
    rc = g != NULL ? q->type->purge_async(q, hpurge_done, g, &g->purging) : WR_ENOMEM;
    if (rc != WR_OK) {
        if (g != NULL)
            hget_free(g);
        purge_send(r, node, m->tag, WR_REMOTE_DOWN, 0);
    }
}

static void home_cancel(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    home_t *h = home_find(r, node, m->id);

    wr_queue_t *q;
    wr_vhost_t *vh;

    if (h == NULL || h->gone)
        return;
    q = wr_queue_ref(h->q);
    vh = h->vh;
    wr_queue_cancel(h->c);
    h->gone = true;
    home_reap(h);
    auto_delete(vh, q);
    wr_queue_unref(q);
}

static void home_settle(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    home_t *h = home_find(r, node, m->id);
    uint64_t from = m->flags & WR_REMOTE_MULTIPLE ? 0 : m->tag;

    /* Unknown: settled already by a requeue when the link last went down. */
    if (h == NULL)
        return;
    for (uint64_t id = from > h->first ? from : h->first; id <= m->tag && id < h->next; id++) {
        slot_t *s = ring_at(h, id);
        if (s != NULL)
            slot_settle(h, s, (wr_settle_t)m->how);
    }
    ring_trim(h);
    home_reap(h);
}

static void home_credit(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    home_t *h = home_find(r, node, m->id);

    if (h == NULL || h->gone)
        return;
    h->credit = m->credit > UINT32_MAX - h->credit ? UINT32_MAX : h->credit + m->credit;
    wr_queue_wake(h->q);
}

void wr_remote_home_recv(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    switch (m->kind) {
    case WR_REMOTE_PUBLISH:
        home_publish(r, node, m);
        break;
    case WR_REMOTE_CONSUME:
        home_consume(r, node, m);
        break;
    case WR_REMOTE_CANCEL:
        home_cancel(r, node, m);
        break;
    case WR_REMOTE_SETTLE:
        home_settle(r, node, m);
        break;
    case WR_REMOTE_CREDIT:
        home_credit(r, node, m);
        break;
    case WR_REMOTE_GET:
        home_get(r, node, m);
        break;
    default:
        home_purge(r, node, m);
        break;
    }
}

/* ---------------------------------------------------------------- links */

/* h's node is gone: h is cancelled and its deliveries requeued, in order. */
static void home_drop(home_t *h)
{
    if (!h->gone)
        wr_queue_cancel(h->c);
    h->gone = true;
    for (uint64_t id = h->first; id < h->next; id++) {
        slot_t *s = ring_at(h, id);
        if (s != NULL)
            slot_settle(h, s, WR_SETTLE_RELEASE);
    }
    home_free(h);
}

static home_t *first_of(const wr_remote_t *r, const char *node)
{
    for (wr_list_t *n = r->homes.next; n != &r->homes; n = n->next) {
        home_t *h = wr_list_entry(n, home_t, link);
        if (strcmp(node_of(h), node) == 0)
            return h;
    }
    return NULL;
}

void wr_remote_home_down(wr_remote_t *r, const char *node)
{
    home_t *h;
    wr_list_t *it, *next;

    /* Its gets waiting for an answer end: the proxy failed them already. */
    for (it = r->home_gets.next; it != &r->home_gets; it = next) {
        hget_t *g = wr_list_entry(it, hget_t, link);

        next = it->next;
        if (strcmp(g->node, node) == 0)
            hget_cancel(g);
    }

    /* One at a time: an auto-delete may end other records of node. */
    while ((h = first_of(r, node)) != NULL) {
        wr_queue_t *q = wr_queue_ref(h->q);
        wr_vhost_t *vh = h->vh;

        home_drop(h);
        auto_delete(vh, q);
        wr_queue_unref(q);
    }
}

void wr_remote_home_writable(wr_remote_t *r, const char *node)
{
    for (wr_list_t *n = r->homes.next; n != &r->homes; n = n->next) {
        home_t *h = wr_list_entry(n, home_t, link);
        if (!h->gone && strcmp(node_of(h), node) == 0)
            wr_queue_wake(h->q);
    }
}

void wr_remote_home_free_all(wr_remote_t *r)
{
    while (!wr_list_empty(&r->home_gets))
        hget_cancel(wr_list_entry(r->home_gets.next, hget_t, link));
    while (!wr_list_empty(&r->homes))
        home_drop(wr_list_entry(r->homes.next, home_t, link));
    while (!wr_list_empty(&r->home_confs)) {
        hconf_t *hc = wr_list_entry(r->home_confs.next, hconf_t, link);

        /* The queue's log still holds it: it frees itself when released. */
        hc->r = NULL;
        wr_list_remove(&hc->link);
        wr_list_init(&hc->link);
    }
}

void wr_remote_home_stats(const wr_remote_t *r, wr_remote_stats_t *out)
{
    for (const wr_list_t *n = r->homes.next; n != &r->homes; n = n->next) {
        const home_t *h = wr_list_entry(n, home_t, link);

        out->home_consumers += h->c != NULL;
        out->home_unsettled += h->live;
    }
}
