/* SPDX-License-Identifier: MIT */
/*
 * Counters and rates (mgmt_stats.h). The sampler keeps the last two
 * snapshots of every queue, every vhost and the node, keyed by object
 * address. It holds a reference to each queue it samples, so a deleted
 * queue's address cannot be reused for a new queue while its samples remain;
 * the next tick drops queues that have left their vhost.
 */
#include "broker/mgmt/mgmt_stats.h"

#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "core/status.h"

static const char *const counter_names[WR_MS_COUNT] = {
    "publish",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "redeliver",
    "ack",
    "unroutable",
    "messages_ready",
    "messages_unacknowledged",
    "confirm",
    "get_empty",
    "return_unroutable",
    "drop_unroutable",
    "connection_created",
    "connection_closed",
    "channel_created",
    "channel_closed",
    "queue_created",
    "queue_declared",
    "queue_deleted",
};

/* Samples over which consumer_utilisation is averaged. */
#define UTILISATION_WINDOW 12

typedef struct {
    const void *obj;
    wr_queue_t *queue; /* the reference held for a queue, NULL for a vhost */
    wr_mgmt_counts_t prev, cur;
    double prev_t, cur_t; /* monotonic seconds */
    unsigned samples;
    uint64_t tick; /* the last tick that saw the object */
    /* Queues only. */
    double active_wall; /* Unix time of the last sample that saw activity (or the first) */
    bool active;        /* the last sample saw activity */
    uint32_t able;      /* bit i: a consumer could take a delivery i samples ago */
} sample_t;

struct wr_mgmt_stats_s {
    const wr_mgmt_env_t *env;
    struct event *timer;
    wr_map_t *samples; /* object address -> sample_t */
    sample_t node;
    uint64_t tick;
};

const char *wr_mgmt_stats_name(int counter)
{
    return counter_names[counter];
}

static void add_queue_stats(wr_mgmt_counts_t *out, const wr_queue_stats_t *s)
{
    out->v[WR_MS_DELIVER] += s->deliver;
    out->v[WR_MS_DELIVER_NO_ACK] += s->deliver_no_ack;
    out->v[WR_MS_GET] += s->get;
    out->v[WR_MS_GET_NO_ACK] += s->get_no_ack;
    out->v[WR_MS_REDELIVER] += s->redeliver;
    out->v[WR_MS_ACK] += s->ack;
}

void wr_mgmt_stats_queue_counts(const wr_queue_t *q, wr_mgmt_counts_t *out)
{
    *out = (wr_mgmt_counts_t){{0}};
    add_queue_stats(out, wr_queue_stats(q));
    out->v[WR_MS_PUBLISH] = wr_queue_stats(q)->publish;
    out->v[WR_MS_READY] = wr_queue_ready(q);
    out->v[WR_MS_UNACKED] = wr_queue_unacked(q);
}

void wr_mgmt_stats_vhost_counts(const wr_vhost_t *vh, wr_mgmt_counts_t *out)
{
    const wr_vhost_stats_t *vs = wr_vhost_stats(vh);
    wr_map_iter_t it = {0};
    void *q;

    *out = (wr_mgmt_counts_t){{0}};
    out->v[WR_MS_PUBLISH] = vs->publish;
    out->v[WR_MS_UNROUTABLE] = vs->unroutable;
    add_queue_stats(out, &vs->retired);
    while (wr_map_next(wr_vhost_queues(vh), &it, NULL, &q)) {
        add_queue_stats(out, wr_queue_stats(q));
        out->v[WR_MS_READY] += wr_queue_ready(q);
        out->v[WR_MS_UNACKED] += wr_queue_unacked(q);
    }
}

/* The node-only counters from the node's event counters (NULL: none). */
static void add_node_counters(wr_mgmt_counts_t *out, const wr_counters_t *n)
{
    static const struct {
        int ms;
        wr_counter_t cnt;
    } from[] = {{WR_MS_CONFIRM, WR_CNT_CONFIRMED},
                {WR_MS_GET_EMPTY, WR_CNT_GET_EMPTY},
                {WR_MS_RETURN_UNROUTABLE, WR_CNT_UNROUTABLE_RETURNED},
                {WR_MS_CONNECTION_CREATED, WR_CNT_CONNECTIONS_OPENED},
                {WR_MS_CONNECTION_CLOSED, WR_CNT_CONNECTIONS_CLOSED},
                {WR_MS_CHANNEL_CREATED, WR_CNT_CHANNELS_OPENED},
                {WR_MS_CHANNEL_CLOSED, WR_CNT_CHANNELS_CLOSED},
                {WR_MS_QUEUE_DECLARED, WR_CNT_QUEUES_DECLARED}};
    uint64_t returned = n ? n->v[WR_CNT_UNROUTABLE_RETURNED] : 0;

    for (size_t i = 0; n && i < sizeof(from) / sizeof(from[0]); i++)
        out->v[from[i].ms] = n->v[from[i].cnt];
    out->v[WR_MS_DROP_UNROUTABLE] =
        out->v[WR_MS_UNROUTABLE] >= returned ? out->v[WR_MS_UNROUTABLE] - returned : 0;
}

void wr_mgmt_stats_node_counts(const wr_mgmt_env_t *env, wr_mgmt_counts_t *out)
{
    wr_map_iter_t it = {0};
    void *vh;

    *out = (wr_mgmt_counts_t){{0}};
    while (wr_map_next(env->vhosts, &it, NULL, &vh)) {
        wr_mgmt_counts_t c;

        wr_mgmt_stats_vhost_counts(vh, &c);
        for (int i = 0; i < WR_MS_COUNT; i++)
            out->v[i] += c.v[i];
        out->v[WR_MS_QUEUE_CREATED] += wr_vhost_stats(vh)->queues_created;
        out->v[WR_MS_QUEUE_DELETED] += wr_vhost_stats(vh)->queues_deleted;
    }
    add_node_counters(out, env->counters);
}

static double now_seconds(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static wr_bytes_t addr_key(const void *const *obj)
{
    return (wr_bytes_t){(const uint8_t *)obj, sizeof(*obj)};
}

static void record(sample_t *e, const wr_mgmt_counts_t *c, double t, uint64_t tick)
{
    e->prev = e->cur;
    e->prev_t = e->cur_t;
    e->cur = *c;
    e->cur_t = t;
    e->samples++;
    e->tick = tick;
}

/* The sample of obj, created (with a reference to the queue q, if one) when
 * missing; NULL on ENOMEM, when the object just goes unsampled. */
static sample_t *sample_of(wr_mgmt_stats_t *s, const void *obj, wr_queue_t *q)
{
    sample_t *e = wr_map_get(s->samples, addr_key(&obj));

    if (e)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->obj = obj;
    if (wr_map_put(s->samples, addr_key(&e->obj), e) != WR_OK) {
        free(e);
        return NULL;
    }
    e->queue = q ? wr_queue_ref(q) : NULL;
    return e;
}

static void drop_sample(sample_t *e)
{
    wr_queue_unref(e->queue);
    free(e);
}

/* After record: whether e's queue q moved messages in the last interval
 * (since it was declared, at the first sample), and whether a consumer
 * could take one now. */
static void record_activity(sample_t *e, const wr_queue_t *q, double wall)
{
    static const int moves[] = {WR_MS_PUBLISH, WR_MS_DELIVER,    WR_MS_DELIVER_NO_ACK,
                                WR_MS_GET,     WR_MS_GET_NO_ACK, WR_MS_ACK};

    e->active = false;
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
        e->active = e->active || e->cur.v[moves[i]] != (e->samples >= 2 ? e->prev.v[moves[i]] : 0);
    if (e->active || e->samples == 1)
        e->active_wall = wall;
    e->able = e->able << 1 | (wr_queue_can_deliver(q) ? 1u : 0u);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    wr_mgmt_stats_t *s = arg;
    double t = now_seconds(CLOCK_MONOTONIC), wall = now_seconds(CLOCK_REALTIME);
    wr_map_iter_t it = {0}, qit;
    wr_mgmt_counts_t c;
    void *vh, *q, *e;

    s->tick++;
    while (wr_map_next(s->env->vhosts, &it, NULL, &vh)) {
        sample_t *ve = sample_of(s, vh, NULL);

        if (ve) {
            wr_mgmt_stats_vhost_counts(vh, &c);
            record(ve, &c, t, s->tick);
        }
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q)) {
            sample_t *qe = sample_of(s, q, q);

            if (qe) {
                wr_mgmt_stats_queue_counts(q, &c);
                record(qe, &c, t, s->tick);
                record_activity(qe, q, wall);
            }
        }
    }
    wr_mgmt_stats_node_counts(s->env, &c);
    record(&s->node, &c, t, s->tick);
    it = (wr_map_iter_t){0};
    while (wr_map_next(s->samples, &it, NULL, &e)) {
        sample_t *old = e;

        if (old->tick != s->tick) {
            wr_map_del(s->samples, addr_key(&old->obj));
            drop_sample(old);
        }
    }
}

wr_mgmt_stats_t *wr_mgmt_stats_new(const wr_mgmt_env_t *env, uint32_t interval_ms)
{
    wr_mgmt_stats_t *s = calloc(1, sizeof(*s));
    struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};

    if (!s)
        return NULL;
    s->env = env;
    s->samples = wr_map_new();
    s->timer = event_new(env->base, -1, EV_PERSIST, on_tick, s);
    if (!s->samples || !s->timer || event_add(s->timer, &tv) != 0)
        goto err;
    on_tick(-1, 0, s);
    return s;
err:
    wr_mgmt_stats_free(s);
    return NULL;
}

void wr_mgmt_stats_free(wr_mgmt_stats_t *s)
{
    wr_map_iter_t it = {0};
    void *e;

    if (!s)
        return;
    if (s->timer)
        event_free(s->timer);
    if (s->samples) {
        while (wr_map_next(s->samples, &it, NULL, &e))
            drop_sample(e);
        wr_map_free(s->samples);
    }
    free(s);
}

static void rates_of(const sample_t *e, wr_mgmt_rates_t *out)
{
    double dt = e ? e->cur_t - e->prev_t : 0;

    for (int i = 0; i < WR_MS_COUNT; i++)
        out->v[i] = e && e->samples >= 2 && dt > 0 ? ((double)e->cur.v[i] - (double)e->prev.v[i]) / dt : 0;
}

void wr_mgmt_stats_queue_rates(const wr_mgmt_stats_t *s, const wr_queue_t *q, wr_mgmt_rates_t *out)
{
    rates_of(wr_map_get(s->samples, addr_key((const void *const *)&q)), out);
}

void wr_mgmt_stats_vhost_rates(const wr_mgmt_stats_t *s, const wr_vhost_t *vh, wr_mgmt_rates_t *out)
{
    rates_of(wr_map_get(s->samples, addr_key((const void *const *)&vh)), out);
}

void wr_mgmt_stats_node_rates(const wr_mgmt_stats_t *s, wr_mgmt_rates_t *out)
{
    rates_of(&s->node, out);
}

void wr_mgmt_stats_queue_activity(const wr_mgmt_stats_t *s, const wr_queue_t *q, wr_mgmt_activity_t *out)
{
    const sample_t *e = wr_map_get(s->samples, addr_key((const void *const *)&q));
    unsigned window = e && e->samples < UTILISATION_WINDOW ? e->samples : UTILISATION_WINDOW;
    uint32_t mask = (1u << window) - 1;

    *out = (wr_mgmt_activity_t){0};
    if (!e)
        return;
    out->sampled = true;
    out->idle = !e->active;
    out->idle_since = e->active_wall;
    out->utilisation = (double)__builtin_popcount(e->able & mask) / window;
}
