/* SPDX-License-Identifier: MIT */
/*
 * Node reports (reports.h): the codec of a report, the timer that sends this
 * node's to every peer whose link is up, and the last report of each peer.
 * A report is version 1: flags (u8: memory alarm, disk alarm), ten u64
 * figures, processors (u32), then the reachable peers: a count (u8) and
 * each name as u8 length + bytes. Big-endian.
 */
#include "broker/cluster/reports.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "core/status.h"

#define REPORT_VERSION 1
#define FLAG_MEM       1u
#define FLAG_DISK      2u
#define FIGURES        10

typedef struct {
    char *name;
    bool have;
    wr_report_t rep;
    wr_buf_t raw; /* the body rep's names borrow from */
    bool have_lists;
    wr_buf_t lists; /* the last WR_REPORT_LISTS_KIND body */
} peer_t;

struct wr_reports_s {
    wr_reports_deps_t d;
    struct event *timer;
    peer_t *peers;
    size_t n_peers;
    bool mem_alarm, disk_alarm; /* of reachable peers, as last computed */
    wr_buf_t out;
};

static uint64_t *figure(wr_report_t *r, size_t i)
{
    uint64_t *f[FIGURES] = {&r->mem_used, &r->mem_limit,    &r->disk_free,     &r->disk_limit, &r->fd_used,
                            &r->fd_total, &r->sockets_used, &r->sockets_total, &r->uptime_ms,  &r->os_pid};

    return f[i];
}

void wr_report_put(wr_buf_t *b, const wr_report_t *r)
{
    wr_buf_put_u8(b, REPORT_VERSION);
    wr_buf_put_u8(b, (r->mem_alarm ? FLAG_MEM : 0) | (r->disk_alarm ? FLAG_DISK : 0));
    for (size_t i = 0; i < FIGURES; i++)
        wr_buf_put_u64(b, *figure((wr_report_t *)r, i));
    wr_buf_put_u32(b, r->processors);
    wr_buf_put_u8(b, (uint8_t)r->n_up);
    for (size_t i = 0; i < r->n_up; i++) {
        wr_buf_put_u8(b, (uint8_t)r->up[i].len);
        wr_buf_put(b, r->up[i].data, r->up[i].len);
    }
}

/* Takes n big-endian bytes from *p; false when fewer are left. */
static bool take(wr_bytes_t *p, size_t n, uint64_t *v)
{
    if (p->len < n)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | p->data[i];
    p->data += n;
    p->len -= n;
    return true;
}

int wr_report_decode(wr_bytes_t body, wr_report_t *r)
{
    uint64_t v, flags, n;

    memset(r, 0, sizeof(*r));
    if (!take(&body, 1, &v))
        return WR_ESYNTAX;
    if (v != REPORT_VERSION)
        return WR_EUNKNOWN;
    if (!take(&body, 1, &flags) || (flags & ~(uint64_t)(FLAG_MEM | FLAG_DISK)))
        return WR_ESYNTAX;
    r->mem_alarm = flags & FLAG_MEM;
    r->disk_alarm = flags & FLAG_DISK;
    for (size_t i = 0; i < FIGURES; i++)
        if (!take(&body, 8, figure(r, i)))
            return WR_ESYNTAX;
    if (!take(&body, 4, &v) || !take(&body, 1, &n) || n > WR_REPORT_MAX_UP)
        return WR_ESYNTAX;
    r->processors = (uint32_t)v;
    for (r->n_up = 0; r->n_up < n; r->n_up++) {
        if (!take(&body, 1, &v) || v == 0 || v > body.len)
            return WR_ESYNTAX;
        r->up[r->n_up] = (wr_bytes_t){body.data, v};
        body.data += v;
        body.len -= v;
    }
    return body.len == 0 ? WR_OK : WR_ESYNTAX;
}

static peer_t *peer_find(const wr_reports_t *r, const char *node, size_t len)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (strlen(r->peers[i].name) == len && memcmp(r->peers[i].name, node, len) == 0)
            return &r->peers[i];
    return NULL;
}

/* Recomputes the peers' alarms; tells the owner when they changed. */
static void alarms_update(wr_reports_t *r)
{
    bool mem = false, disk = false;

    for (size_t i = 0; i < r->n_peers; i++) {
        mem |= r->peers[i].have && r->peers[i].rep.mem_alarm;
        disk |= r->peers[i].have && r->peers[i].rep.disk_alarm;
    }
    if (mem == r->mem_alarm && disk == r->disk_alarm)
        return;
    r->mem_alarm = mem;
    r->disk_alarm = disk;
    if (r->d.alarms_changed)
        r->d.alarms_changed(r->d.ud);
}

/* r->out (kind) to every peer whose link is up; one that does not fit now is replaced by the next. */
static void send_out(wr_reports_t *r, uint8_t kind)
{
    wr_bytes_t body = {r->out.data, r->out.len};

    for (size_t i = 0; wr_buf_ok(&r->out) && i < r->n_peers; i++)
        if (wr_peer_up(r->d.links, r->peers[i].name))
            (void)wr_peer_send_app(r->d.links, r->peers[i].name, kind, 0, &body, 1);
}

/* This node's report, then its lists, each made once for every peer. */
static void send_all(wr_reports_t *r)
{
    wr_report_t rep = {0};

    r->d.sample(r->d.ud, &rep);
    for (size_t i = 0; i < r->n_peers && rep.n_up < WR_REPORT_MAX_UP; i++)
        if (wr_peer_up(r->d.links, r->peers[i].name))
            rep.up[rep.n_up++] = wr_bytes_str(r->peers[i].name);
    if (rep.n_up == 0)
        return;
    wr_buf_reset(&r->out);
    wr_report_put(&r->out, &rep);
    send_out(r, WR_REPORT_KIND);
    if (!r->d.sample_lists)
        return;
    wr_buf_reset(&r->out);
    r->d.sample_lists(r->d.ud, &r->out);
    if (r->out.len <= WR_REPORT_LISTS_MAX)
        send_out(r, WR_REPORT_LISTS_KIND);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    send_all(arg);
}

/* A peer's lists: kept as they came (the management API parses them). */
static void on_lists(peer_t *p, wr_bytes_t body)
{
    wr_buf_reset(&p->lists);
    wr_buf_put(&p->lists, body.data, body.len);
    p->have_lists = wr_buf_ok(&p->lists) && body.len <= WR_REPORT_LISTS_MAX;
}

static void on_report(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body)
{
    wr_reports_t *r = ud;
    peer_t *p = peer_find(r, node, strlen(node));
    wr_report_t rep;
    int rc = kind == WR_REPORT_KIND ? wr_report_decode(body, &rep) : WR_OK;

    if (!p)
        return;
    if (kind == WR_REPORT_LISTS_KIND) {
        on_lists(p, body);
        return;
    }
    if (rc != WR_OK) {
        wr_log_warn("cluster: peer %s sent a malformed node report (%d); ignored", node, rc);
        return;
    }
    wr_buf_reset(&p->raw);
    wr_buf_put(&p->raw, body.data, body.len);
    if (wr_report_decode((wr_bytes_t){p->raw.data, p->raw.len}, &p->rep) != WR_OK)
        return; /* out of memory copying it */
    p->have = true;
    alarms_update(r);
}

/* A node the file does not list links in (link.h): its reports are kept from now on. */
static void peer_add(wr_reports_t *r, const char *node)
{
    peer_t *peers;
    char *name;

    if (peer_find(r, node, strlen(node)))
        return;
    if (!(name = strdup(node)) || !(peers = realloc(r->peers, (r->n_peers + 1) * sizeof(*peers)))) {
        free(name);
        wr_log_error("cluster: out of memory keeping the reports of %s", node);
        return;
    }
    r->peers = peers;
    r->peers[r->n_peers++] = (peer_t){.name = name};
}

/* Which peers this node reaches changed: everyone hears it at once. */
static void on_up(void *ud, const char *node)
{
    peer_add(ud, node);
    send_all(ud);
}

static void on_down(void *ud, const char *node)
{
    wr_reports_t *r = ud;
    peer_t *p = peer_find(r, node, strlen(node));

    if (p)
        p->have = p->have_lists = false;
    alarms_update(r);
    send_all(r);
}

wr_reports_t *wr_reports_new(const wr_reports_deps_t *d)
{
    const struct timeval every = {0, WR_REPORT_INTERVAL_MS * 1000};
    wr_reports_t *r = calloc(1, sizeof(*r));
    wr_peer_status_t st;

    if (!r)
        return NULL;
    r->d = *d;
    r->n_peers = wr_peer_count(d->links);
    r->peers = calloc(r->n_peers ? r->n_peers : 1, sizeof(*r->peers));
    r->timer = event_new(d->base, -1, EV_PERSIST, on_timer, r);
    if (!r->peers || !r->timer)
        goto err;
    for (size_t i = 0; i < r->n_peers; i++) {
        wr_peer_status(d->links, i, &st);
        if (!(r->peers[i].name = strdup(st.name)))
            goto err;
    }
    if (wr_peer_links_route(d->links, WR_REPORT_KIND, WR_REPORT_LISTS_KIND, on_report, r) != WR_OK ||
        wr_peer_links_watch(d->links, &(wr_peer_watch_t){.on_up = on_up, .on_down = on_down, .ud = r}) !=
            WR_OK)
        goto err;
    event_add(r->timer, &every);
    return r;
err:
    wr_reports_free(r);
    return NULL;
}

void wr_reports_free(wr_reports_t *r)
{
    if (!r)
        return;
    if (r->timer)
        event_free(r->timer);
    for (size_t i = 0; r->peers && i < r->n_peers; i++) {
        free(r->peers[i].name);
        wr_buf_free(&r->peers[i].raw);
        wr_buf_free(&r->peers[i].lists);
    }
    free(r->peers);
    wr_buf_free(&r->out);
    free(r);
}

bool wr_reports_get(const wr_reports_t *r, const char *node, wr_report_t *out)
{
    const peer_t *p = peer_find(r, node, strlen(node));

    if (!p || !p->have)
        return false;
    *out = p->rep;
    return true;
}

bool wr_reports_lists(const wr_reports_t *r, const char *node, wr_bytes_t *out)
{
    const peer_t *p = peer_find(r, node, strlen(node));

    if (!p || !p->have_lists)
        return false;
    *out = (wr_bytes_t){p->lists.data, p->lists.len};
    return true;
}

void wr_reports_alarms(const wr_reports_t *r, bool *memory, bool *disk)
{
    *memory = r->mem_alarm;
    *disk = r->disk_alarm;
}

bool wr_reports_partitioned(const wr_reports_t *r, const char *node)
{
    if (wr_peer_up(r->d.links, node))
        return false;
    for (size_t i = 0; i < r->n_peers; i++) {
        const peer_t *p = &r->peers[i];

        for (size_t j = 0; p->have && j < p->rep.n_up; j++)
            if (wr_bytes_eq_str(p->rep.up[j], node))
                return true;
    }
    return false;
}
