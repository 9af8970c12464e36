/* SPDX-License-Identifier: MIT */
/*
 * The proxy queue type (remote.h): a classic queue whose home is another
 * node, as this node's vhost lists it. A publish goes to the home with a
 * sequence number when the publisher wants a confirm; a consumer is
 * subscribed at the home, whose deliveries arrive here with credit and are
 * handed to the local consumer as soon as its channel can take them (held
 * here until then, at most WR_REMOTE_CREDIT_WINDOW of them); a settlement goes
 * back by consumer and delivery id. When the home goes down, consumers are
 * cancelled and pending confirms nacked, as RabbitMQ does.
 */
#include "broker/cluster/remote_internal.h"

#include <stdlib.h>
#include <string.h>

#include "broker/queue/classic.h"
#include "protocol/constants.h"
#include "core/status.h"

typedef struct {
    wr_queue_t h;
    wr_remote_t *r;      /* NULL once the service is freed */
    wr_list_t link;      /* in r->proxies */
    wr_list_t consumers; /* pcons_t, in attach order */
    wr_list_t confirms;  /* pconf_t awaiting the home */
    wr_list_t gets;      /* struct wr_queue_get_s awaiting the home: gets and purges */
    uint64_t getter;     /* the id its gets settle under at the home; 0: none yet */
    size_t held;         /* deliveries held for busy consumers */
    bool down;           /* the home's link is down */
    char *vhost;
    char *home;
    char **members; /* a quorum queue's voters: any of them can be its home; NULL for a classic queue */
    size_t nmembers;
    uint8_t data[]; /* name, then args */
} proxy_t;

/* A local consumer of a proxy, subscribed at the home under id. */
typedef struct {
    wr_list_t link; /* in the proxy's consumers */
    proxy_t *p;
    wr_consumer_t *c;
    uint64_t id;
    uint32_t owed;  /* credit to give back */
    wr_list_t held; /* held_t, oldest first */
} pcons_t;

typedef struct {
    wr_list_t link;
    wr_message_t *m;
    uint64_t tag;
    bool redelivered;
} held_t;

typedef struct {
    wr_list_t link; /* in the proxy's confirms */
    proxy_t *p;
    wr_confirm_t *conf;
    uint64_t seq;
} pconf_t;

extern const wr_queue_type_t wr_remote_proxy_type;

static proxy_t *pq(wr_queue_t *q)
{
    return wr_list_entry(q, proxy_t, h);
}

static const proxy_t *cpq(const wr_queue_t *q)
{
    return (const proxy_t *)((const char *)q - offsetof(proxy_t, h));
}

/* The home can be reached: settlements of earlier deliveries still go
 * there after the proxy is deleted here. */
static bool linked(const proxy_t *p)
{
    return p->r != NULL && !p->down;
}

/* New publishes and consumers are taken. */
static bool usable(const proxy_t *p)
{
    return linked(p) && !p->h.closed;
}

static int send_to_home(proxy_t *p, const wr_remote_msg_t *m)
{
    return linked(p) ? wr_remote_send(p->r, p->home, m) : WR_ENOENT;
}

/* A basic.get, or with purged a queue.purge, awaiting the home's answer. */
struct wr_queue_get_s {
    wr_list_t link; /* in the proxy's gets */
    proxy_t *p;
    uint64_t tag; /* request id */
    bool no_ack;
    bool cancelled;
    wr_queue_got_fn fn;
    wr_queue_purged_fn purged;
    void *ud;
};

/* ---------------------------------------------------------------- confirms */

static pconf_t *confirm_add(proxy_t *p, wr_confirm_t *conf)
{
    pconf_t *pc = malloc(sizeof(*pc));

    if (pc == NULL)
        return NULL;
    pc->p = p;
    pc->conf = conf;
    pc->seq = ++p->r->next_seq;
    if (wr_map_put(p->r->confirms, wr_remote_key(&pc->seq), pc) != WR_OK) {
        free(pc);
        return NULL;
    }
    wr_list_insert_tail(&p->confirms, &pc->link);
    conf->waiting++;
    return pc;
}

/* pc is answered (ok) or lost (!ok): its hold on the publisher's confirm goes. */
static void confirm_end(pconf_t *pc, bool ok)
{
    proxy_t *p = pc->p;
    wr_confirm_t *conf = pc->conf;

    if (p->r != NULL)
        wr_map_del(p->r->confirms, wr_remote_key(&pc->seq));
    wr_list_remove(&pc->link);
    free(pc);
    wr_confirm_release(conf, ok);
}

static void confirms_fail(proxy_t *p)
{
    while (!wr_list_empty(&p->confirms))
        confirm_end(wr_list_entry(p->confirms.next, pconf_t, link), false);
}

static void on_confirm(wr_remote_t *r, const wr_remote_msg_t *m)
{
    pconf_t *pc = wr_map_get(r->confirms, wr_remote_key(&m->id));

    /* None: a confirm for a publish already failed when its home went down. */
    if (pc != NULL)
        confirm_end(pc, m->status == WR_REMOTE_ACK);
}

/* ---------------------------------------------------------------- consumers */

static pcons_t *pcons_of(const proxy_t *p, const wr_consumer_t *c)
{
    for (wr_list_t *n = p->consumers.next; n != &p->consumers; n = n->next) {
        pcons_t *pc = wr_list_entry(n, pcons_t, link);
        if (pc->c == c)
            return pc;
    }
    return NULL;
}

static void settle_at_home(proxy_t *p, uint64_t id, uint64_t tag, wr_settle_t how)
{
    wr_remote_msg_t m = {.kind = WR_REMOTE_SETTLE, .id = id, .tag = tag, .how = (uint8_t)how};

    send_to_home(p, &m);
}

/* Drops what pc held; with requeue the home gets each back (the link is up). */
static void held_drop(pcons_t *pc, bool requeue)
{
    while (!wr_list_empty(&pc->held)) {
        held_t *h = wr_list_entry(pc->held.next, held_t, link);

        if (requeue && !pc->c->no_ack)
            settle_at_home(pc->p, pc->id, h->tag, WR_SETTLE_RELEASE);
        wr_list_remove(&h->link);
        wr_message_unref(h->m);
        free(h);
        pc->p->held--;
        if (pc->p->r != NULL)
            pc->p->r->buffered--;
    }
}

/* pc leaves its proxy; the caller tells its owner or not. Returns the
 * consumer (the proxy's reference, which the caller drops). */
static wr_consumer_t *pcons_detach(pcons_t *pc, bool requeue)
{
    proxy_t *p = pc->p;
    wr_consumer_t *c = pc->c;

    held_drop(pc, requeue);
    if (p->r != NULL)
        wr_map_del(p->r->consumers, wr_remote_key(&pc->id));
    wr_list_remove(&pc->link);
    free(pc);
    c->queue = NULL;
    p->h.nconsumers--;
    return c;
}

/* The home or the link ended pc: its owner hears of it (basic.cancel). */
static void pcons_cancelled(pcons_t *pc)
{
    wr_consumer_t *c = pcons_detach(pc, false);

    c->ops->cancelled(c);
    wr_consumer_unref(c);
}

static void consumers_fail(proxy_t *p)
{
    while (!wr_list_empty(&p->consumers))
        pcons_cancelled(wr_list_entry(p->consumers.next, pcons_t, link));
}

/* Gives credit back in halves, so the home never waits for a round trip. */
static void credit_return(pcons_t *pc)
{
    wr_remote_msg_t m = {.kind = WR_REMOTE_CREDIT, .id = pc->id};

    if (pc->owed < WR_REMOTE_CREDIT_WINDOW / 2)
        return;
    m.credit = pc->owed;
    pc->owed = 0;
    send_to_home(pc->p, &m);
}

/* Hands m (a reference it takes over) to pc's consumer. */
static void hand(pcons_t *pc, wr_message_t *m, uint64_t tag, bool redelivered)
{
    wr_consumer_t *c = pc->c;
    wr_queue_t *q = &pc->p->h;
    wr_qtoken_t t = {{pc->id, tag, 0, 0}, 0, {0, 0}, false};

    if (c->no_ack) {
        q->stats.deliver_no_ack++;
    } else {
        q->stats.deliver++;
        q->unacked++;
    }
    q->stats.redeliver += redelivered;
    pc->owed++;
    credit_return(pc);
    c->ops->deliver(c, m, &t, redelivered);
}

static void proxy_wake(wr_queue_t *q)
{
    proxy_t *p = pq(q);

    if (p->held > 0 && !q->closed && wr_list_empty(&q->run_node))
        wr_queue_sched_add(q);
}

static bool hold(pcons_t *pc, wr_message_t *m, uint64_t tag, bool redelivered)
{
    held_t *h = malloc(sizeof(*h));

    if (h == NULL)
        return false;
    *h = (held_t){.m = m, .tag = tag, .redelivered = redelivered};
    wr_list_insert_tail(&pc->held, &h->link);
    pc->p->held++;
    pc->p->r->buffered++;
    proxy_wake(&pc->p->h);
    return true;
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

static void on_deliver(wr_remote_t *r, const wr_remote_msg_t *m)
{
    pcons_t *pc = wr_map_get(r->consumers, wr_remote_key(&m->id));
    bool redelivered = (m->flags & WR_REMOTE_REDELIVERED) != 0;
    wr_message_t *msg;

    /* Cancelled here since: the home requeues what it sent meanwhile. */
    if (pc == NULL)
        return;
    msg = message_of(m);
    if (msg == NULL) {
        if (!pc->c->no_ack)
            settle_at_home(pc->p, pc->id, m->tag, WR_SETTLE_RELEASE);
        pc->owed++;
        credit_return(pc);
        return;
    }
    if (wr_list_empty(&pc->held) && pc->c->ops->can_take(pc->c))
        hand(pc, msg, m->tag, redelivered);
    else if (!hold(pc, msg, m->tag, redelivered)) {
        settle_at_home(pc->p, pc->id, m->tag, WR_SETTLE_RELEASE);
        wr_message_unref(msg);
    }
}

static void on_consume_ok(wr_remote_t *r, const wr_remote_msg_t *m)
{
    pcons_t *pc = wr_map_get(r->consumers, wr_remote_key(&m->id));

    /* The home refused (queue gone, exclusive use): as if it cancelled. */
    if (pc != NULL && m->status != WR_REMOTE_OK)
        pcons_cancelled(pc);
}

static void on_cancelled(wr_remote_t *r, const wr_remote_msg_t *m)
{
    pcons_t *pc = wr_map_get(r->consumers, wr_remote_key(&m->id));

    if (pc != NULL)
        pcons_cancelled(pc);
}

/* ---------------------------------------------------------------- gets */

static void get_end(wr_queue_get_t *g)
{
    if (g->p->r != NULL)
        wr_map_del(g->p->r->gets, wr_remote_key(&g->tag));
    wr_list_remove(&g->link);
    free(g);
}

/* Answers a pending purge: done with n, or not done. */
static void purge_end(wr_queue_get_t *g, bool done, uint32_t n)
{
    wr_queue_purged_fn fn = g->cancelled ? NULL : g->purged;
    void *ud = g->ud;

    get_end(g);
    if (fn != NULL)
        fn(ud, done, n);
}

/* The home is gone: pending gets answer DOWN, pending purges not done. */
static void gets_fail(proxy_t *p)
{
    while (!wr_list_empty(&p->gets)) {
        wr_queue_get_t *g = wr_list_entry(p->gets.next, wr_queue_get_t, link);
        wr_queue_got_fn fn = g->cancelled ? NULL : g->fn;
        void *ud = g->ud;

        if (g->purged != NULL) {
            purge_end(g, false, 0);
        } else {
            get_end(g);
            if (fn != NULL)
                fn(ud, WR_QUEUE_GOT_DOWN, NULL, NULL, false, 0);
        }
    }
}

/* GET_OK with a message: the asker's, or back to the queue. */
static void got(wr_queue_get_t *g, const wr_remote_msg_t *m)
{
    proxy_t *p = g->p;
    wr_message_t *msg = g->cancelled ? NULL : message_of(m);
    wr_qtoken_t t = {{p->getter, m->delivery, 0, 0}, 0, {0, 0}, false};
    bool redelivered = (m->flags & WR_REMOTE_REDELIVERED) != 0;
    wr_queue_got_fn fn = g->fn;
    void *ud = g->ud;
    bool no_ack = g->no_ack;

    get_end(g);
    if (msg == NULL) {
        if (!no_ack)
            settle_at_home(p, p->getter, m->delivery, WR_SETTLE_RELEASE);
        return;
    }
    if (no_ack) {
        p->h.stats.get_no_ack++;
    } else {
        p->h.stats.get++;
        p->h.unacked++;
    }
    p->h.stats.redeliver += redelivered;
    fn(ud, WR_QUEUE_GOT, msg, &t, redelivered, m->count);
}

static void on_get_ok(wr_remote_t *r, const wr_remote_msg_t *m)
{
    wr_queue_get_t *g = wr_map_get(r->gets, wr_remote_key(&m->tag));
    wr_queue_got_fn fn;
    void *ud;

    /* None: failed when the home went down; it requeued what it sent. */
    if (g == NULL || g->purged != NULL)
        return;
    if (m->status == WR_REMOTE_OK) {
        got(g, m);
        return;
    }
    fn = g->cancelled ? NULL : g->fn;
    ud = g->ud;
    get_end(g);
    if (fn != NULL)
        fn(ud,
           m->status == WR_REMOTE_EMPTY  ? WR_QUEUE_GOT_EMPTY
           : m->status == WR_REMOTE_DOWN ? WR_QUEUE_GOT_DOWN
                                         : WR_QUEUE_GOT_GONE,
           NULL, NULL, false, 0);
}

/* Sends m, a get or a purge, under a new request id, and keeps g until the
 * home answers it. WR_OK; else g is freed and WR_ENOENT (the link is down)
 * or WR_ENOMEM. */
static int request(proxy_t *p, wr_queue_get_t *g, wr_remote_msg_t *m)
{
    int rc;

    g->tag = ++p->r->next_get;
    m->tag = g->tag;
    rc = wr_map_put(p->r->gets, wr_remote_key(&g->tag), g);
    if (rc == WR_OK && (rc = wr_remote_send(p->r, p->home, m)) != WR_OK)
        wr_map_del(p->r->gets, wr_remote_key(&g->tag));
    if (rc != WR_OK) {
        free(g);
        return rc == WR_ENOENT ? WR_ENOENT : WR_ENOMEM;
    }
    wr_list_insert_tail(&p->gets, &g->link);
    return WR_OK;
}

int wr_remote_queue_get(wr_queue_t *q, bool no_ack, wr_queue_got_fn fn, void *ud, wr_queue_get_t **out)
{
    proxy_t *p = pq(q);
    wr_queue_get_t *g;
    wr_remote_msg_t m = {.kind = WR_REMOTE_GET, .flags = no_ack ? WR_REMOTE_NO_ACK : 0, .queue = q->name};
    int rc;

    if (q->type != &wr_remote_proxy_type || !usable(p))
        return WR_ENOENT;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return WR_ENOMEM;
    if (p->getter == 0)
        p->getter = ++p->r->next_id;
    *g = (wr_queue_get_t){.p = p, .no_ack = no_ack, .fn = fn, .ud = ud};
    m.id = p->getter;
    m.vhost = wr_bytes_str(p->vhost);
    if ((rc = request(p, g, &m)) != WR_OK)
        return rc;
    *out = g;
    return WR_OK;
}

void wr_remote_get_cancel(wr_queue_get_t *g)
{
    g->cancelled = true;
}

/* A queue the home no longer has had nothing to drop. */
static void on_purge_ok(wr_remote_t *r, const wr_remote_msg_t *m)
{
    wr_queue_get_t *g = wr_map_get(r->gets, wr_remote_key(&m->tag));

    if (g != NULL && g->purged != NULL)
        purge_end(g, m->status != WR_REMOTE_DOWN, m->status == WR_REMOTE_OK ? m->count : 0);
}

void wr_remote_proxy_recv(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    switch (m->kind) {
    case WR_REMOTE_CONFIRM:
        on_confirm(r, m);
        break;
    case WR_REMOTE_CONSUME_OK:
        on_consume_ok(r, m);
        break;
    case WR_REMOTE_CANCELLED:
        on_cancelled(r, m);
        break;
    case WR_REMOTE_GET_OK:
        on_get_ok(r, m);
        break;
    case WR_REMOTE_PURGE_OK:
        on_purge_ok(r, m);
        break;
    default:
        on_deliver(r, m);
        break;
    }
}

/* ---------------------------------------------------------------- the home */

static proxy_t *next_of_home(wr_remote_t *r, wr_list_t **it, const char *node)
{
    while (*it != &r->proxies) {
        proxy_t *p = wr_list_entry(*it, proxy_t, link);

        *it = (*it)->next;
        if (strcmp(p->home, node) == 0)
            return p;
    }
    return NULL;
}

static int subscribe(pcons_t *pc);

/* A quorum queue's first member that is up, but skip; NULL: none. */
static const char *member_up(const proxy_t *p, const char *skip)
{
    for (size_t i = 0; i < p->nmembers; i++)
        if (strcmp(p->members[i], skip) != 0 && wr_peer_up(p->r->d.links, p->members[i]))
            return p->members[i];
    return NULL;
}

/*
 * A quorum queue's proxy goes through member node from now on: its pending
 * confirms and gets end (a nack, a 404: their outcome at the old home is
 * unknown) and its consumers subscribe at node again, keeping their
 * channels; what the old home delivered and was not settled comes back
 * through the queue's machine, redelivered (the leader hands a lost node's
 * deliveries back). false on ENOMEM (nothing changed).
 */
static bool rehome(proxy_t *p, const char *node)
{
    char *home = strdup(node);
    wr_list_t *n, *tmp;

    if (home == NULL)
        return false;
    confirms_fail(p);
    gets_fail(p);
    free(p->home);
    p->home = home;
    p->down = false;
    wr_list_foreach_safe(n, tmp, &p->consumers)
    {
        pcons_t *pc = wr_list_entry(n, pcons_t, link);

        held_drop(pc, false);
        wr_map_del(p->r->consumers, wr_remote_key(&pc->id));
        pc->owed = 0;
        if (subscribe(pc) != WR_OK)
            pcons_cancelled(pc);
    }
    return true;
}

void wr_remote_proxy_down(wr_remote_t *r, const char *node)
{
    wr_list_t *it = r->proxies.next;
    const char *next;
    proxy_t *p;

    while ((p = next_of_home(r, &it, node)) != NULL) {
        if ((next = member_up(p, node)) != NULL && rehome(p, next))
            continue;
        p->down = true;
        consumers_fail(p);
        confirms_fail(p);
        gets_fail(p);
    }
}

static bool is_member(const proxy_t *p, const char *node)
{
    for (size_t i = 0; i < p->nmembers; i++)
        if (strcmp(p->members[i], node) == 0)
            return true;
    return false;
}

void wr_remote_proxy_up(wr_remote_t *r, const char *node)
{
    wr_list_t *it;

    for (it = r->proxies.next; it != &r->proxies; it = it->next) {
        proxy_t *p = wr_list_entry(it, proxy_t, link);

        if (strcmp(p->home, node) == 0)
            p->down = false;
        else if (p->down && is_member(p, node))
            rehome(p, node);
    }
}

void wr_remote_proxy_free_all(wr_remote_t *r)
{
    while (!wr_list_empty(&r->proxies)) {
        proxy_t *p = wr_list_entry(r->proxies.next, proxy_t, link);

        consumers_fail(p);
        confirms_fail(p);
        gets_fail(p);
        wr_list_remove(&p->link);
        wr_list_init(&p->link);
        p->r = NULL;
    }
}

/* ---------------------------------------------------------------- the type */

static int proxy_publish(wr_queue_t *q, wr_message_t *m, wr_confirm_t *conf)
{
    proxy_t *p = pq(q);
    pconf_t *pc = NULL;
    wr_remote_msg_t msg = {.kind = WR_REMOTE_PUBLISH,
                           .exchange = m->exchange,
                           .routing_key = m->routing_key,
                           .header = m->header,
                           .body = {m->body, m->body_size}};
    int rc;

    if (!usable(p))
        return WR_ENOENT;
    if (wr_remote_backlog(p->r, p->home) > WR_REMOTE_OUTBOX_MAX)
        return WR_EFULL;
    if (conf != NULL && (pc = confirm_add(p, conf)) == NULL)
        return WR_ENOMEM;
    msg.id = pc != NULL ? pc->seq : 0;
    msg.vhost = wr_bytes_str(p->vhost);
    msg.queue = q->name;
    rc = wr_remote_send(p->r, p->home, &msg);
    if (rc != WR_OK && pc != NULL) {
        wr_map_del(p->r->confirms, wr_remote_key(&pc->seq));
        wr_list_remove(&pc->link);
        free(pc);
        conf->waiting--; /* the publisher's own hold keeps it above 0 */
    }
    q->stats.publish += rc == WR_OK;
    return rc;
}

/* basic.get needs an answer now; the home's is a round trip away
 * (wr_remote_queue_get). */
static bool proxy_get(wr_queue_t *q, bool no_ack, wr_message_t **m, wr_qtoken_t *t, bool *redelivered)
{
    return false;
}

static void proxy_settle(wr_queue_t *q, wr_message_t *m, const wr_qtoken_t *t, wr_settle_t how)
{
    q->unacked--;
    q->stats.ack += how == WR_SETTLE_ACK;
    wr_message_unref(m);
    /* Home down: it has requeued the delivery already. */
    settle_at_home(pq(q), t->w[0], t->w[1], how);
}

/*
 * queue.purge: purge-ok once the home purged, with what it dropped, as
 * RabbitMQ answers once the queue's process (or a quorum queue's leader)
 * did. Until session 18 purge-ok came at once with 0. A home that goes down
 * first fails it, as a get.
 */
static int proxy_purge_async(wr_queue_t *q, wr_queue_purged_fn fn, void *ud, wr_queue_purging_t **out)
{
    proxy_t *p = pq(q);
    wr_queue_get_t *g;
    wr_remote_msg_t m = {.kind = WR_REMOTE_PURGE, .vhost = wr_bytes_str(p->vhost), .queue = q->name};
    int rc;

    if (!usable(p))
        return WR_ENOENT;
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return WR_ENOMEM;
    *g = (wr_queue_get_t){.p = p, .purged = fn, .ud = ud};
    if ((rc = request(p, g, &m)) != WR_OK)
        return rc;
    *out = (wr_queue_purging_t *)g;
    return WR_OK;
}

static void proxy_purge_cancel(wr_queue_purging_t *w)
{
    ((wr_queue_get_t *)w)->cancelled = true;
}

/* Subscribes pc at the home under a new id. WR_OK, WR_ENOENT (the link is down) or WR_ENOMEM. */
static int subscribe(pcons_t *pc)
{
    proxy_t *p = pc->p;
    wr_consumer_t *c = pc->c;
    wr_remote_msg_t m = {.kind = WR_REMOTE_CONSUME,
                         .vhost = wr_bytes_str(p->vhost),
                         .queue = p->h.name,
                         .prefetch = c->prefetch,
                         .priority = c->priority,
                         .credit = WR_REMOTE_CREDIT_WINDOW,
                         .args = c->args};
    int rc;

    pc->id = ++p->r->next_id;
    m.id = pc->id;
    m.flags = (uint8_t)((c->no_ack ? WR_REMOTE_NO_ACK : 0) | (c->exclusive ? WR_REMOTE_EXCLUSIVE : 0));
    rc = wr_map_put(p->r->consumers, wr_remote_key(&pc->id), pc);
    if (rc == WR_OK && (rc = wr_remote_send(p->r, p->home, &m)) != WR_OK)
        wr_map_del(p->r->consumers, wr_remote_key(&pc->id));
    return rc;
}

static int proxy_consume(wr_queue_t *q, wr_consumer_t *c)
{
    proxy_t *p = pq(q);
    pcons_t *pc;
    int rc;

    if (!usable(p))
        return WR_ENOENT;
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return WR_ENOMEM;
    *pc = (pcons_t){.p = p, .c = c};
    wr_list_init(&pc->held);
    if ((rc = subscribe(pc)) != WR_OK) {
        free(pc);
        return rc == WR_ENOENT ? WR_ENOENT : WR_ENOMEM;
    }
    wr_list_insert_tail(&p->consumers, &pc->link);
    c->queue = q;
    c->refs++;
    q->nconsumers++;
    q->had_consumers = true;
    return WR_OK;
}

static void proxy_cancel(wr_queue_t *q, wr_consumer_t *c)
{
    proxy_t *p = pq(q);
    pcons_t *pc = pcons_of(p, c);
    wr_remote_msg_t m = {.kind = WR_REMOTE_CANCEL};

    if (pc == NULL)
        return;
    m.id = pc->id;
    send_to_home(p, &m);
    wr_consumer_unref(pcons_detach(pc, true));
}

static const wr_consumer_t *proxy_active_consumer(const wr_queue_t *q)
{
    return NULL;
}

static void proxy_foreach_consumer(const wr_queue_t *q, void (*fn)(void *ud, const wr_consumer_t *c),
                                   void *ud)
{
    const proxy_t *p = cpq(q);

    for (const wr_list_t *n = p->consumers.next; n != &p->consumers; n = n->next)
        fn(ud, wr_list_entry(n, pcons_t, link)->c);
}

/* Hands held deliveries to consumers that can take them now. */
static bool proxy_dispatch(wr_queue_t *q, size_t batch)
{
    proxy_t *p = pq(q);
    wr_list_t *n, *tmp;

    wr_list_foreach_safe(n, tmp, &p->consumers)
    {
        pcons_t *pc = wr_list_entry(n, pcons_t, link);

        while (batch > 0 && !wr_list_empty(&pc->held) && pc->c->ops->can_take(pc->c)) {
            held_t *h = wr_list_entry(pc->held.next, held_t, link);
            wr_message_t *m = h->m;
            uint64_t tag = h->tag;
            bool redelivered = h->redelivered;

            wr_list_remove(&h->link);
            free(h);
            p->held--;
            if (p->r != NULL)
                p->r->buffered--;
            batch--;
            hand(pc, m, tag, redelivered);
        }
    }
    return batch == 0 && p->held > 0;
}

static void proxy_set_limits(wr_queue_t *q, const wr_queue_limits_t *l)
{
    q->limits = *l;
}

/* Timers, expiry and x-expires are the home's. */
static void proxy_tick(wr_queue_t *q)
{
}

static void proxy_info(const wr_queue_t *q, wr_queue_info_t *out)
{
    *out = (wr_queue_info_t){.state = cpq(q)->down ? "down" : "running"};
}

static size_t proxy_close(wr_queue_t *q)
{
    proxy_t *p = pq(q);

    while (!wr_list_empty(&p->consumers)) {
        pcons_t *pc = wr_list_entry(p->consumers.next, pcons_t, link);
        wr_remote_msg_t m = {.kind = WR_REMOTE_CANCEL, .id = pc->id};

        send_to_home(p, &m);
        held_drop(pc, true);
        pcons_cancelled(pc);
    }
    q->closed = true;
    wr_list_remove(&q->run_node);
    wr_list_init(&q->run_node);
    confirms_fail(p);
    return 0;
}

static void members_free(proxy_t *p)
{
    for (size_t i = 0; i < p->nmembers; i++)
        free(p->members[i]);
    free(p->members);
    p->members = NULL;
    p->nmembers = 0;
}

static void proxy_destroy(wr_queue_t *q)
{
    proxy_t *p = pq(q);

    consumers_fail(p);
    confirms_fail(p);
    gets_fail(p);
    wr_list_remove(&p->link);
    wr_list_remove(&q->run_node);
    members_free(p);
    free(p->vhost);
    free(p->home);
    free(p);
}

static int proxy_open_store(wr_queue_t *q, wr_queue_store_t *st, const char *logname, const char *what,
                            char *err, size_t errlen)
{
    return WR_OK; /* the home stores the messages */
}

static const char *proxy_store_name(const wr_queue_t *q)
{
    return NULL;
}

static void proxy_close_store(wr_queue_t *q)
{
}

/* Proxies are made by wr_remote_queue_new, never from a declare. */
static wr_queue_t *proxy_create(wr_bytes_t name, const wr_queue_opts_t *o, wr_queue_sched_t *s)
{
    return NULL;
}

const wr_queue_type_t wr_remote_proxy_type = {
    .name = "classic",
    .validate_args = wr_classic_validate_args,
    .equiv_args = wr_classic_equiv_args,
    .create = proxy_create,
    .open_store = proxy_open_store,
    .store_name = proxy_store_name,
    .close_store = proxy_close_store,
    .close = proxy_close,
    .destroy = proxy_destroy,
    .publish = proxy_publish,
    .get = proxy_get,
    .get_async = wr_remote_queue_get,
    .get_cancel = wr_remote_get_cancel,
    .settle = proxy_settle,
    .purge_async = proxy_purge_async,
    .purge_cancel = proxy_purge_cancel,
    .consume = proxy_consume,
    .cancel = proxy_cancel,
    .active_consumer = proxy_active_consumer,
    .foreach_consumer = proxy_foreach_consumer,
    .dispatch = proxy_dispatch,
    .wake = proxy_wake,
    .set_limits = proxy_set_limits,
    .tick = proxy_tick,
    .touch = proxy_tick,
    .info = proxy_info,
};

/* ---------------------------------------------------------------- public */

wr_queue_t *wr_remote_queue_new(wr_remote_t *r, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                                const char *home)
{
    proxy_t *p = calloc(1, sizeof(*p) + name.len + o->args.len);

    if (p == NULL)
        return NULL;
    p->vhost = strdup(wr_vhost_name(vh));
    p->home = strdup(home);
    if (p->vhost == NULL || p->home == NULL) {
        free(p->vhost);
        free(p->home);
        free(p);
        return NULL;
    }
    wr_queue_head_init(&p->h, &wr_remote_proxy_type, name, o, wr_vhost_sched(vh), p->data);
    p->r = r;
    p->down = !wr_peer_up(r->d.links, home);
    wr_list_init(&p->consumers);
    wr_list_init(&p->confirms);
    wr_list_init(&p->gets);
    wr_list_insert_tail(&r->proxies, &p->link);
    return &p->h;
}

const char *wr_remote_queue_home(const wr_queue_t *q)
{
    return q->type == &wr_remote_proxy_type ? cpq(q)->home : NULL;
}

bool wr_remote_queue_down(const wr_queue_t *q)
{
    return q->type == &wr_remote_proxy_type && !usable(cpq(q));
}

void wr_remote_queue_down_error(const wr_queue_t *q, const char *vhost, uint32_t method, wr_amqp_error_t *err)
{
    const char *home = wr_remote_queue_home(q);

    wr_amqp_error_set(err, WR_AMQP_NOT_FOUND, method,
                      "home node '%s' of durable queue '%.*s' in vhost '%s' is down or inaccessible",
                      home != NULL ? home : "?", (int)q->name.len, (const char *)q->name.data, vhost);
}

void wr_remote_queue_unanswered(const wr_queue_t *q, const char *vhost, uint32_t method, wr_amqp_error_t *err)
{
    if (wr_remote_queue_home(q) != NULL)
        wr_remote_queue_down_error(q, vhost, method, err);
    else
        wr_amqp_error_set(err, WR_AMQP_INTERNAL_ERROR, method,
                          "timed out waiting for the leader of queue '%.*s' in vhost '%s'", (int)q->name.len,
                          (const char *)q->name.data, vhost);
}

bool wr_remote_queue_set_members(wr_queue_t *q, const char *const *members, size_t n)
{
    proxy_t *p = pq(q);
    char **ms;
    bool ok;
    const char *home;

    if (q->type != &wr_remote_proxy_type || n == 0)
        return true;
    ok = (ms = calloc(n, sizeof(*ms))) != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = (ms[i] = strdup(members[i])) != NULL;
    if (!ok) {
        for (size_t i = 0; ms != NULL && i < n; i++)
            free(ms[i]);
        free(ms);
        return false;
    }
    members_free(p);
    p->members = ms;
    p->nmembers = n;
    /* A home that left the members, or is down, gives way to the first member up. */
    if (p->r != NULL && (!is_member(p, p->home) || p->down) && (home = member_up(p, "")) != NULL &&
        strcmp(home, p->home) != 0)
        return rehome(p, home);
    return true;
}
