/* SPDX-License-Identifier: MIT */
/*
 * The remote-queue service (remote.h): routes the QUEUE kinds of APP
 * messages to the proxy side (remote_proxy.c) or the home side
 * (remote_home.c), closes a link whose peer sends a malformed body, and
 * keeps per peer an outbox for what a link above its high mark refused, so
 * that nothing is lost and order is kept; producers look at the backlog and
 * stop (home consumers) or refuse (proxy publishes) while it is there.
 */
#include "broker/cluster/remote_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "core/status.h"

/* A message a link refused with WR_AGAIN, in wire form. */
typedef struct {
    wr_list_t link;
    uint8_t kind;
    size_t len;
    uint8_t data[];
} out_msg_t;

typedef struct {
    wr_list_t link; /* in r->outs */
    wr_list_t msgs; /* out_msg_t, oldest first */
    size_t bytes;
    char node[];
} outbox_t;

/* ---------------------------------------------------------------- outboxes */

static outbox_t *outbox_find(const wr_remote_t *r, const char *node)
{
    for (wr_list_t *n = r->outs.next; n != &r->outs; n = n->next) {
        outbox_t *o = wr_list_entry(n, outbox_t, link);
        if (strcmp(o->node, node) == 0)
            return o;
    }
    return NULL;
}

static outbox_t *outbox_get(wr_remote_t *r, const char *node)
{
    outbox_t *o = outbox_find(r, node);
    size_t len = strlen(node) + 1;

    if (o != NULL)
        return o;
    o = calloc(1, sizeof(*o) + len);
    if (o == NULL)
        return NULL;
    memcpy(o->node, node, len);
    wr_list_init(&o->msgs);
    wr_list_insert_tail(&r->outs, &o->link);
    return o;
}

static int outbox_add(wr_remote_t *r, const char *node, uint8_t kind, const wr_bytes_t parts[2])
{
    outbox_t *o = outbox_get(r, node);
    out_msg_t *om = o != NULL ? malloc(sizeof(*om) + parts[0].len + parts[1].len) : NULL;

    if (om == NULL)
        return WR_ENOMEM;
    om->kind = kind;
    om->len = parts[0].len + parts[1].len;
    memcpy(om->data, parts[0].data, parts[0].len);
    if (parts[1].len > 0)
        memcpy(om->data + parts[0].len, parts[1].data, parts[1].len);
    wr_list_insert_tail(&o->msgs, &om->link);
    o->bytes += om->len;
    r->pending += om->len;
    return WR_OK;
}

static void outbox_pop(wr_remote_t *r, outbox_t *o)
{
    out_msg_t *om = wr_list_entry(o->msgs.next, out_msg_t, link);

    wr_list_remove(&om->link);
    o->bytes -= om->len;
    r->pending -= om->len;
    free(om);
}

/* Sends what o holds until the link refuses again. */
static void outbox_flush(wr_remote_t *r, outbox_t *o)
{
    while (!wr_list_empty(&o->msgs)) {
        out_msg_t *om = wr_list_entry(o->msgs.next, out_msg_t, link);
        wr_bytes_t body = {om->data, om->len};

        if (wr_peer_send_app(r->d.links, o->node, om->kind, 0, &body, 1) == WR_AGAIN)
            return;
        outbox_pop(r, o);
    }
}

static void outbox_clear(wr_remote_t *r, outbox_t *o)
{
    while (!wr_list_empty(&o->msgs))
        outbox_pop(r, o);
}

int wr_remote_send(wr_remote_t *r, const char *node, const wr_remote_msg_t *m)
{
    outbox_t *o = outbox_find(r, node);
    wr_bytes_t parts[2];
    int rc;

    wr_buf_reset(&r->scratch);
    if (!wr_remote_wire_encode(&r->scratch, m))
        return WR_ENOMEM;
    parts[0] = (wr_bytes_t){r->scratch.data, r->scratch.len};
    parts[1] = m->body;
    if (o == NULL || wr_list_empty(&o->msgs)) {
        rc = wr_peer_send_app(r->d.links, node, m->kind, 0, parts, 2);
        if (rc != WR_AGAIN)
            return rc;
    } else if (!wr_peer_up(r->d.links, node)) {
        return WR_ENOENT;
    }
    return outbox_add(r, node, m->kind, parts);
}

uint64_t wr_remote_pending_bytes(const wr_remote_t *r)
{
    return r ? r->pending : 0;
}

size_t wr_remote_backlog(const wr_remote_t *r, const char *node)
{
    const outbox_t *o = outbox_find(r, node);

    return o != NULL ? o->bytes : 0;
}

/* ---------------------------------------------------------------- links */

/* The kinds a home receives; the others are for the proxies. */
static bool for_home(uint8_t kind)
{
    return kind == WR_REMOTE_PUBLISH || kind == WR_REMOTE_CONSUME || kind == WR_REMOTE_CANCEL ||
           kind == WR_REMOTE_SETTLE || kind == WR_REMOTE_CREDIT || kind == WR_REMOTE_PURGE ||
           kind == WR_REMOTE_GET;
}

static void on_app(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body)
{
    wr_remote_t *r = ud;
    wr_remote_msg_t m;
    int rc = wr_remote_wire_decode(kind, body, &m);
    char why[64];

    if (rc != WR_OK) {
        snprintf(why, sizeof(why), "queue message kind %u: %s", kind,
                 rc == WR_EUNKNOWN ? "unknown kind" : "malformed body");
        wr_peer_links_drop(r->d.links, node, why);
        return;
    }
    if (for_home(kind))
        wr_remote_home_recv(r, node, &m);
    else
        wr_remote_proxy_recv(r, node, &m);
}

static void on_up(void *ud, const char *node)
{
    wr_remote_proxy_up(ud, node);
}

static void on_down(void *ud, const char *node)
{
    wr_remote_t *r = ud;
    outbox_t *o = outbox_find(r, node);

    if (o != NULL)
        outbox_clear(r, o);
    if (r->d.drained)
        r->d.drained(r->d.ud);
    wr_remote_home_down(r, node);
    wr_remote_proxy_down(r, node);
}

static void on_writable(void *ud, const char *node)
{
    wr_remote_t *r = ud;
    outbox_t *o = outbox_find(r, node);

    if (o != NULL)
        outbox_flush(r, o);
    if (r->d.drained)
        r->d.drained(r->d.ud);
    if (o == NULL || wr_list_empty(&o->msgs))
        wr_remote_home_writable(r, node);
}

/* ---------------------------------------------------------------- service */

wr_remote_t *wr_remote_new(const wr_remote_deps_t *d)
{
    wr_peer_watch_t w = {on_up, on_down, on_writable, NULL};
    wr_remote_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->d = *d;
    wr_list_init(&r->proxies);
    wr_list_init(&r->outs);
    wr_list_init(&r->homes);
    wr_list_init(&r->home_confs);
    wr_list_init(&r->home_gets);
    r->scratch = (wr_buf_t)WR_BUF_INIT;
    r->confirms = wr_map_new();
    r->consumers = wr_map_new();
    r->gets = wr_map_new();
    r->home_by_key = wr_map_new();
    w.ud = r;
    if (r->confirms == NULL || r->consumers == NULL || r->gets == NULL || r->home_by_key == NULL ||
        wr_peer_links_route(d->links, WR_REMOTE_PUBLISH, WR_REMOTE_KIND_LAST, on_app, r) != WR_OK ||
        wr_peer_links_watch(d->links, &w) != WR_OK)
        goto err;
    return r;
err:
    wr_remote_free(r);
    return NULL;
}

void wr_remote_free(wr_remote_t *r)
{
    if (r == NULL)
        return;
    wr_remote_proxy_free_all(r);
    wr_remote_home_free_all(r);
    while (!wr_list_empty(&r->outs)) {
        outbox_t *o = wr_list_entry(r->outs.next, outbox_t, link);

        outbox_clear(r, o);
        wr_list_remove(&o->link);
        free(o);
    }
    wr_map_free(r->confirms);
    wr_map_free(r->consumers);
    wr_map_free(r->gets);
    wr_map_free(r->home_by_key);
    wr_buf_free(&r->scratch);
    free(r);
}

void wr_remote_stats(const wr_remote_t *r, wr_remote_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (const wr_list_t *n = r->proxies.next; n != &r->proxies; n = n->next)
        out->proxies++;
    for (const wr_list_t *n = r->outs.next; n != &r->outs; n = n->next)
        out->outbox_bytes += wr_list_entry(n, outbox_t, link)->bytes;
    out->confirms = wr_map_count(r->confirms);
    out->gets = wr_map_count(r->gets);
    out->buffered = r->buffered;
    wr_remote_home_stats(r, out);
}
