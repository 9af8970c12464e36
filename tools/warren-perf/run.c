/* SPDX-License-Identifier: MIT */
/*
 * The phases of a warren-perf run and the producer and consumer logic. One
 * event loop drives every connection; producers write pre-encoded publishes
 * until their output buffer, their confirm window or their token bucket says
 * stop, and are woken again by the drain, the confirm or the timer.
 */
#include "run.h"

#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "client.h"
#include "core/buf.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "protocol/frame.h"
#include "protocol/props.h"
#include "protocol/table.h"
#include "rss.h"

/* A producer stops writing at this much unsent output (the client wakes it
 * again at its low watermark): deep enough to keep the socket busy, shallow
 * enough that a publish is never far from the wire. */
#define OUT_HIGH   (256 * 1024)
#define NS_PER_SEC 1000000000ull
#define MONITOR_MS 100
#define TICK_MS    1
/* Setup and teardown must finish in this time, or the run fails. */
#define PHASE_TIMEOUT_S 120
/* A count-limited run ends this long after the last delivery, in case
 * fewer messages arrive than were routed (say, consumers on only some of
 * the queues). */
#define IDLE_END_NS (2 * NS_PER_SEC)
/* Idle connections are measured this long after the last one opened, so the
 * broker has finished allocating for them. */
#define IDLE_SETTLE_S 1

enum phase {
    PH_SETUP,    /* declaring the topology */
    PH_CONNECT,  /* opening producer and consumer connections */
    PH_RUN,      /* publishing (and consuming, unless --no-consume-during) */
    PH_DRAIN,    /* --no-consume-during: consumers draining the backlog */
    PH_IDLE,     /* --connections-idle: opening and holding connections */
    PH_STOP,     /* closing producer, consumer and idle connections */
    PH_TEARDOWN, /* deleting the topology */
    PH_DONE,
};

static const char *const phase_names[] = {"setup", "connect", "run",      "drain",
                                          "idle",  "stop",    "teardown", "done"};

typedef struct {
    wr_run_t *run;
    wr_client_t *cl;
    bool live;     /* done() not yet called */
    uint8_t *tmpl; /* one encoded publish: method, header and body frames */
    size_t tmpl_len;
    size_t ts_off; /* where the body, and so the timestamp, starts in tmpl */
    uint64_t published;
    /* Confirms: tags [base, next_tag) are unsettled; slot = tag % window. */
    uint64_t next_tag;
    uint64_t base;
    bool *settled;
    uint64_t *sent_at;
    double tokens;
    bool finished;
    struct event *turn; /* --unbatched: the next publish, one loop pass later */
    char queue[256];
} producer_t;

typedef struct {
    wr_run_t *run;
    wr_client_t *cl;
    bool live;
    uint64_t last_tag;
    uint32_t unacked; /* deliveries since the last ack */
    char queue[256];
} consumer_t;

struct wr_run_s {
    const wr_opts_t *o;
    struct event_base *base;
    wr_client_conf_t conf;
    enum phase phase;
    int status;
    wr_buf_t qargs; /* the queue.declare arguments table, raw */

    wr_client_t *setup;
    bool setup_live;
    uint32_t setup_pending; /* -ok replies still expected */

    producer_t *prods;
    consumer_t *cons;
    wr_client_t **idle;
    bool *idle_live;
    uint32_t nready;
    uint32_t nprod_finished;
    uint32_t nclosing;

    struct event *tick;
    struct event *monitor;
    struct event *deadline;
    struct event *timeout;
    struct event *settle;
    struct event *sigint;
    struct event *sigterm;

    uint64_t t_start;
    uint64_t t_consume_start; /* 0 until basic.consume was sent */
    uint64_t t_producers_done;
    uint64_t t_stop;
    uint64_t t_last_pub;
    uint64_t t_last_confirm;
    uint64_t t_last_consume;
    uint64_t t_refill;

    uint64_t published;
    uint64_t confirmed;
    uint64_t nacked;
    uint64_t consumed;
    uint64_t prev_published;
    uint64_t prev_confirmed;
    uint64_t prev_consumed;
    uint64_t t_prev_progress;

    wr_hist_t *lat;
    wr_hist_t *clat;
    wr_result_t res;
    uint64_t cpu_user_start; /* the broker's CPU time at the start of the run */
    uint64_t cpu_sys_start;
};

static void stop(wr_run_t *r, bool drained);
static void start_drain(wr_run_t *r);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static bool count_mode(const wr_run_t *r)
{
    return r->o->count > 0;
}

/* Ends the run with an error: nothing is torn down, the loop just exits. */
static void abort_run(wr_run_t *r, const char *why)
{
    if (r->status == WR_OK)
        fprintf(stderr, "warren-perf: %s\n", why);
    r->status = WR_EIO;
    r->phase = PH_DONE;
    event_base_loopbreak(r->base);
}

static void set_phase(wr_run_t *r, enum phase ph)
{
    r->phase = ph;
    bool bounded = ph == PH_SETUP || ph == PH_CONNECT || ph == PH_IDLE || ph == PH_STOP || ph == PH_TEARDOWN;
    if (bounded) {
        struct timeval tv = {PHASE_TIMEOUT_S, 0};
        evtimer_add(r->timeout, &tv);
    } else {
        evtimer_del(r->timeout);
    }
}

static void finish(wr_run_t *r)
{
    set_phase(r, PH_DONE);
    event_base_loopexit(r->base, NULL);
}

/* The deliver callback of connections that never consume; arg is the
 * producer, or the run for the setup and idle connections. */
static void no_deliver(wr_run_t *r)
{
    abort_run(r, "a delivery arrived on a connection that does not consume");
}

static void unexpected(wr_run_t *r, const wr_method_t *m)
{
    char why[128];
    snprintf(why, sizeof(why), "unexpected %s from the broker", wr_method_name(m->id));
    abort_run(r, why);
}

/* ---- topology ---------------------------------------------------------- */

static bool declares_exchange(const wr_opts_t *o)
{
    /* amq.* exchanges always exist and may not be redeclared differently. */
    return o->exchange[0] != '\0' && strncmp(o->exchange, "amq.", 4) != 0;
}

/* Deletes what send_topology declares; counts the replies it will get. */
static void send_teardown(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    char name[256];
    wr_method_t m;
    for (uint32_t i = 0; i < o->nqueues; i++) {
        wr_opts_queue_name(o, i, name, sizeof(name));
        m = (wr_method_t){.id = WR_QUEUE_DELETE};
        m.u.queue_delete.queue = wr_bytes_str(name);
        wr_client_send(r->setup, &m);
        r->setup_pending++;
    }
    if (declares_exchange(o)) {
        m = (wr_method_t){.id = WR_EXCHANGE_DELETE};
        m.u.exchange_delete.exchange = wr_bytes_str(o->exchange);
        wr_client_send(r->setup, &m);
        r->setup_pending++;
    }
}

/*
 * Declares the exchange, the queues and the bindings, after deleting any
 * left by an earlier run: a queue of the same name may hold that run's
 * messages or differ in durability or arguments.
 */
static void send_topology(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    char name[256];
    wr_method_t m;
    r->setup_pending = 0;
    send_teardown(r);
    if (declares_exchange(o)) {
        m = (wr_method_t){.id = WR_EXCHANGE_DECLARE};
        m.u.exchange_declare.exchange = wr_bytes_str(o->exchange);
        m.u.exchange_declare.type = wr_bytes_str(o->type);
        m.u.exchange_declare.durable = o->persistent;
        wr_client_send(r->setup, &m);
        r->setup_pending++;
    }
    for (uint32_t i = 0; i < o->nqueues; i++) {
        wr_opts_queue_name(o, i, name, sizeof(name));
        m = (wr_method_t){.id = WR_QUEUE_DECLARE};
        m.u.queue_declare.queue = wr_bytes_str(name);
        m.u.queue_declare.durable = o->persistent;
        m.u.queue_declare.arguments = (wr_bytes_t){r->qargs.data, r->qargs.len};
        wr_client_send(r->setup, &m);
        r->setup_pending++;
    }
    if (o->exchange[0] == '\0')
        return;
    /* Pipelined: thousands of bindings cost one round trip, not thousands. */
    uint32_t nbind = o->bindings > 0 ? o->bindings : o->nqueues;
    for (uint32_t i = 0; i < nbind; i++) {
        char key[256];
        wr_opts_queue_name(o, i % o->nqueues, name, sizeof(name));
        if (o->bindings > 0) {
            const char *hole = strstr(o->binding_pattern, "{i}");
            if (hole)
                snprintf(key, sizeof(key), "%.*s%" PRIu32 "%s", (int)(hole - o->binding_pattern),
                         o->binding_pattern, i, hole + 3);
            else
                snprintf(key, sizeof(key), "%s", o->binding_pattern);
        } else {
            snprintf(key, sizeof(key), "%s", o->routing_key ? o->routing_key : name);
        }
        m = (wr_method_t){.id = WR_QUEUE_BIND};
        m.u.queue_bind.queue = wr_bytes_str(name);
        m.u.queue_bind.exchange = wr_bytes_str(o->exchange);
        m.u.queue_bind.routing_key = wr_bytes_str(key);
        wr_client_send(r->setup, &m);
        r->setup_pending++;
    }
}

/* ---- producers --------------------------------------------------------- */

static int build_template(producer_t *p)
{
    const wr_opts_t *o = p->run->o;
    wr_buf_t b = WR_BUF_INIT;
    wr_buf_t hdr = WR_BUF_INIT;
    uint8_t *body = calloc(1, o->body_size);
    uint32_t frame_max = wr_client_frame_max(p->cl);
    size_t chunk = frame_max ? frame_max - WR_FRAME_OVERHEAD : o->body_size;
    if (!body || (frame_max && frame_max < WR_FRAME_MIN_SIZE))
        goto err;

    wr_method_t m = {.id = WR_BASIC_PUBLISH};
    m.u.basic_publish.exchange = wr_bytes_str(o->exchange);
    m.u.basic_publish.routing_key = wr_bytes_str(o->routing_key ? o->routing_key : p->queue);
    wr_frame_put_method(&b, 1, &m);

    wr_props_t props = {.class_id = WR_CLASS_BASIC, .body_size = o->body_size};
    if (o->persistent) {
        props.flags = WR_PROP_DELIVERY_MODE;
        props.delivery_mode = 2;
    }
    wr_props_encode(&hdr, &props);
    wr_frame_put_raw(&b, WR_FRAME_HEADER, 1, (wr_bytes_t){hdr.data, hdr.len});

    for (size_t off = 0; off < o->body_size;) {
        size_t n = o->body_size - off < chunk ? o->body_size - off : chunk;
        wr_frame_put_header(&b, WR_FRAME_BODY, 1, (uint32_t)n);
        if (off == 0)
            p->ts_off = b.len;
        wr_buf_put(&b, body + off, n);
        wr_buf_put_u8(&b, WR_FRAME_END);
        off += n;
    }
    if (!wr_buf_ok(&b) || !wr_buf_ok(&hdr))
        goto err;
    p->tmpl = b.data;
    p->tmpl_len = b.len;
    wr_buf_free(&hdr);
    free(body);
    return WR_OK;
err:
    wr_buf_free(&b);
    wr_buf_free(&hdr);
    free(body);
    return WR_ENOMEM;
}

static void producer_finished(producer_t *p)
{
    wr_run_t *r = p->run;
    if (p->finished)
        return;
    p->finished = true;
    if (++r->nprod_finished == r->o->producers) {
        r->t_producers_done = now_ns();
        if (r->o->no_consume_during && r->o->consumers > 0)
            start_drain(r);
        else if (r->o->consumers == 0)
            stop(r, true);
    }
}

/* Done once -C messages are out and, with confirms, all settled. */
static void producer_check_count(producer_t *p)
{
    if (count_mode(p->run) && p->published >= p->run->o->count && p->base == p->next_tag)
        producer_finished(p);
}

static void publish_one(producer_t *p, uint64_t now)
{
    wr_run_t *r = p->run;
    uint32_t window = r->o->confirm;
    memcpy(p->tmpl + p->ts_off, &now, sizeof(now));
    wr_client_write(p->cl, p->tmpl, p->tmpl_len);
    p->published++;
    r->published++;
    r->t_last_pub = now;
    if (window) {
        uint64_t slot = p->next_tag % window;
        p->settled[slot] = false;
        p->sent_at[slot] = now;
        p->next_tag++;
    }
}

/* Whether p may publish one more now; takes its token when it may. An
 * unbatched producer, like a blocking client, waits for its socket to take
 * all it wrote. */
static bool producer_may_publish(producer_t *p)
{
    wr_run_t *r = p->run;
    const wr_opts_t *o = r->o;
    if (r->phase != PH_RUN || !p->live || wr_client_pending(p->cl) >= (o->unbatched ? 1 : OUT_HIGH))
        return false;
    if (count_mode(r) && p->published >= o->count) {
        producer_check_count(p);
        return false;
    }
    if (o->confirm && p->next_tag - p->base >= o->confirm)
        return false;
    if (o->rate > 0) {
        if (p->tokens < 1.0)
            return false;
        p->tokens -= 1.0;
    }
    return true;
}

/*
 * Pipelined, a producer writes until something stops it. Unbatched, it
 * publishes one message per loop pass (a zero timer), so several producers
 * and the consumers in this one loop interleave as separate clients would,
 * and each publish is its own write.
 */
static void producer_pump(producer_t *p)
{
    static const struct timeval now = {0, 0};
    if (p->turn) {
        if (!evtimer_pending(p->turn, NULL) && p->run->phase == PH_RUN)
            evtimer_add(p->turn, &now);
        return;
    }
    while (producer_may_publish(p))
        publish_one(p, now_ns());
}

static void turn_cb(evutil_socket_t fd, short what, void *arg)
{
    producer_t *p = arg;
    if (!producer_may_publish(p))
        return;
    publish_one(p, now_ns());
    producer_pump(p);
}

static void settle(producer_t *p, uint64_t tag, bool ack, uint64_t now)
{
    wr_run_t *r = p->run;
    uint64_t slot = tag % r->o->confirm;
    if (p->settled[slot])
        return;
    p->settled[slot] = true;
    if (ack) {
        r->confirmed++;
        wr_hist_record(r->clat, now - p->sent_at[slot]);
    } else {
        r->nacked++;
    }
}

static void on_confirm(producer_t *p, uint64_t tag, bool multiple, bool ack)
{
    wr_run_t *r = p->run;
    if (!r->o->confirm || tag < 1 || tag >= p->next_tag) {
        abort_run(r, "the broker confirmed a delivery tag that was never published");
        return;
    }
    uint64_t now = now_ns();
    if (tag >= p->base) {
        for (uint64_t t = multiple ? p->base : tag; t <= tag; t++)
            settle(p, t, ack, now);
        while (p->base < p->next_tag && p->settled[p->base % r->o->confirm])
            p->base++;
    }
    r->t_last_confirm = now;
    producer_check_count(p);
    producer_pump(p);
}

/* ---- consumers --------------------------------------------------------- */

static void send_ack(consumer_t *k, bool multiple)
{
    wr_method_t m = {.id = WR_BASIC_ACK};
    m.u.basic_ack.delivery_tag = k->last_tag;
    m.u.basic_ack.multiple = multiple;
    wr_client_send(k->cl, &m);
    k->unacked = 0;
}

static void consume(consumer_t *k)
{
    wr_method_t m = {.id = WR_BASIC_CONSUME};
    m.u.basic_consume.queue = wr_bytes_str(k->queue);
    m.u.basic_consume.no_ack = k->run->o->autoack;
    wr_client_send(k->cl, &m);
}

static void consumer_deliver(wr_client_t *c, uint64_t tag, const uint8_t *head, size_t head_len, void *arg)
{
    consumer_t *k = arg;
    wr_run_t *r = k->run;
    if (r->phase != PH_RUN && r->phase != PH_DRAIN)
        return;
    uint64_t now = now_ns();
    uint64_t sent;
    r->consumed++;
    r->t_last_consume = now;
    if (head_len == sizeof(sent)) {
        memcpy(&sent, head, sizeof(sent));
        /* Only this run's messages: one left in the queue by an earlier
         * run (or by anyone else) says nothing about this one's latency. */
        if (sent >= r->t_start && sent <= now)
            wr_hist_record(r->lat, now - sent);
    }
    if (r->o->autoack)
        return;
    k->last_tag = tag;
    k->unacked++;
    if (r->o->multi_ack <= 1)
        send_ack(k, false);
    else if (k->unacked >= r->o->multi_ack)
        send_ack(k, true);
}

/* ---- phases ------------------------------------------------------------ */

static void begin_consuming(wr_run_t *r)
{
    r->t_consume_start = now_ns();
    for (uint32_t i = 0; i < r->o->consumers; i++)
        consume(&r->cons[i]);
}

static void start_run(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    set_phase(r, PH_RUN);
    if (o->pid)
        r->res.have_cpu = wr_cpu_read(o->pid, &r->cpu_user_start, &r->cpu_sys_start) == WR_OK;
    r->t_start = now_ns();
    r->t_refill = r->t_start;
    r->t_prev_progress = r->t_start;
    if (!o->no_consume_during)
        begin_consuming(r);
    if (o->seconds > 0) {
        double whole = (double)(time_t)o->seconds;
        struct timeval tv = {(time_t)o->seconds, (suseconds_t)((o->seconds - whole) * 1e6)};
        evtimer_add(r->deadline, &tv);
    }
    if (o->rate > 0) {
        struct timeval tv = {0, TICK_MS * 1000};
        evtimer_add(r->tick, &tv);
    }
    for (uint32_t i = 0; i < o->producers; i++) {
        r->prods[i].tokens = 1.0; /* the first message goes at once */
        producer_pump(&r->prods[i]);
    }
}

/* A producer or consumer connection finished its own setup. */
static void role_ready(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    r->nready++;
    if (r->phase == PH_CONNECT && r->nready == o->producers + (o->no_consume_during ? 0 : o->consumers))
        start_run(r);
    else if (r->phase == PH_DRAIN && r->nready == o->consumers)
        begin_consuming(r);
}

static void role_done(wr_run_t *r, bool *live, const char *error);

static void producer_ready(wr_client_t *c, void *arg)
{
    producer_t *p = arg;
    wr_client_set_unbatched(c, p->run->o->unbatched);
    if (build_template(p) != WR_OK) {
        abort_run(p->run, "cannot encode the publish template (out of memory, or frame_max too small)");
        return;
    }
    if (p->run->o->confirm) {
        wr_method_t m = {.id = WR_CONFIRM_SELECT};
        wr_client_send(c, &m);
        return;
    }
    role_ready(p->run);
}

static void producer_method(wr_client_t *c, const wr_method_t *m, void *arg)
{
    producer_t *p = arg;
    switch (m->id) {
    case WR_CONFIRM_SELECT_OK:
        role_ready(p->run);
        break;
    case WR_BASIC_ACK:
        on_confirm(p, m->u.basic_ack.delivery_tag, m->u.basic_ack.multiple, true);
        break;
    case WR_BASIC_NACK:
        on_confirm(p, m->u.basic_nack.delivery_tag, m->u.basic_nack.multiple, false);
        break;
    case WR_CONNECTION_BLOCKED:
        p->run->res.blocked++;
        break;
    case WR_CONNECTION_UNBLOCKED:
        break;
    default:
        unexpected(p->run, m);
        break;
    }
}

static void producer_deliver(wr_client_t *c, uint64_t tag, const uint8_t *head, size_t head_len, void *arg)
{
    producer_t *p = arg;
    no_deliver(p->run);
}

static void producer_drained(wr_client_t *c, void *arg)
{
    producer_pump(arg);
}

static void producer_done(wr_client_t *c, const char *error, void *arg)
{
    producer_t *p = arg;
    role_done(p->run, &p->live, error);
}

static const wr_client_cbs_t producer_cbs = {
    producer_ready, producer_method, producer_deliver, producer_drained, producer_done,
};

static void consumer_ready(wr_client_t *c, void *arg)
{
    consumer_t *k = arg;
    wr_client_set_unbatched(c, k->run->o->unbatched);
    if (k->run->o->prefetch) {
        wr_method_t m = {.id = WR_BASIC_QOS};
        m.u.basic_qos.prefetch_count = k->run->o->prefetch;
        wr_client_send(c, &m);
        return;
    }
    role_ready(k->run);
}

static void consumer_method(wr_client_t *c, const wr_method_t *m, void *arg)
{
    consumer_t *k = arg;
    switch (m->id) {
    case WR_BASIC_QOS_OK:
        role_ready(k->run);
        break;
    case WR_BASIC_CONSUME_OK:
    case WR_CONNECTION_UNBLOCKED:
        break;
    case WR_CONNECTION_BLOCKED:
        k->run->res.blocked++;
        break;
    default:
        unexpected(k->run, m);
        break;
    }
}

static void consumer_done(wr_client_t *c, const char *error, void *arg)
{
    consumer_t *k = arg;
    role_done(k->run, &k->live, error);
}

static const wr_client_cbs_t consumer_cbs = {
    consumer_ready, consumer_method, consumer_deliver, NULL, consumer_done,
};

static int connect_consumers(wr_run_t *r)
{
    char name[64];
    for (uint32_t i = 0; i < r->o->consumers; i++) {
        consumer_t *k = &r->cons[i];
        snprintf(name, sizeof(name), "warren-perf consumer %" PRIu32, i);
        k->cl = wr_client_new(r->base, &r->conf, name, &consumer_cbs, k);
        if (!k->cl)
            return WR_ENOMEM;
        k->live = true;
    }
    return WR_OK;
}

static void start_connect(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    char name[64];
    set_phase(r, PH_CONNECT);
    r->nready = 0;
    for (uint32_t i = 0; i < o->producers; i++) {
        producer_t *p = &r->prods[i];
        snprintf(name, sizeof(name), "warren-perf producer %" PRIu32, i);
        p->cl = wr_client_new(r->base, &r->conf, name, &producer_cbs, p);
        if (!p->cl) {
            abort_run(r, "cannot create a connection");
            return;
        }
        p->live = true;
    }
    if (!o->no_consume_during && connect_consumers(r) != WR_OK)
        abort_run(r, "cannot create a connection");
}

/* --no-consume-during: every producer is done; now the consumers come. */
static void start_drain(wr_run_t *r)
{
    set_phase(r, PH_DRAIN);
    r->nready = 0;
    if (connect_consumers(r) != WR_OK)
        abort_run(r, "cannot create a connection");
}

static void after_close(wr_run_t *r)
{
    if (!r->setup_live) {
        finish(r);
        return;
    }
    set_phase(r, PH_TEARDOWN);
    r->setup_pending = 0;
    send_teardown(r);
}

/* A producer still holding output at the end: what never left this
 * process was not published. The connection is reset, not closed, so the
 * broker need not read a backlog of publishes before it sees the close. */
static void producer_abandon(producer_t *p)
{
    uint64_t unsent = p->tmpl_len ? wr_client_pending(p->cl) / p->tmpl_len : 0;
    p->published -= unsent;
    p->run->published -= unsent;
    wr_client_reset(p->cl);
}

/*
 * Ends the measured part of the run and closes the load connections.
 * drained: everything published has been settled and consumed, so
 * producers can close politely; otherwise they are reset.
 */
/* The broker's CPU time since start_run, and what it is divided by. */
static void take_cpu(wr_run_t *r)
{
    wr_result_t *res = &r->res;
    uint64_t user, sys;
    if (wr_cpu_read(r->o->pid, &user, &sys) != WR_OK) {
        res->have_cpu = false;
        return;
    }
    res->cpu_user_ns = user - r->cpu_user_start;
    res->cpu_sys_ns = sys - r->cpu_sys_start;
    res->cpu_messages = r->o->consumers > 0 ? r->consumed : r->o->confirm ? r->confirmed : r->published;
}

static void stop(wr_run_t *r, bool drained)
{
    const wr_opts_t *o = r->o;
    if (r->phase != PH_RUN && r->phase != PH_DRAIN && r->phase != PH_IDLE)
        return;
    r->t_stop = now_ns();
    set_phase(r, PH_STOP);
    if (r->res.have_cpu)
        take_cpu(r);
    evtimer_del(r->tick);
    evtimer_del(r->deadline);
    /* Counted first, closed after: a close may report done() at once. */
    r->nclosing = 0;
    for (uint32_t i = 0; i < o->producers; i++)
        r->nclosing += r->prods[i].live;
    for (uint32_t i = 0; i < o->consumers; i++)
        r->nclosing += r->cons[i].live;
    for (uint32_t i = 0; i < o->idle_conns; i++)
        r->nclosing += r->idle_live[i];
    if (r->nclosing == 0) {
        after_close(r);
        return;
    }
    for (uint32_t i = 0; i < o->producers; i++) {
        if (!r->prods[i].live)
            continue;
        if (drained)
            wr_client_close(r->prods[i].cl);
        else
            producer_abandon(&r->prods[i]);
    }
    for (uint32_t i = 0; i < o->consumers; i++) {
        consumer_t *k = &r->cons[i];
        if (!k->live)
            continue;
        /* Settle what we received so the broker is not left redelivering. */
        if (!o->autoack && k->unacked > 0)
            send_ack(k, true);
        wr_client_close(k->cl);
    }
    for (uint32_t i = 0; i < o->idle_conns; i++)
        if (r->idle_live[i])
            wr_client_close(r->idle[i]);
}

static void role_done(wr_run_t *r, bool *live, const char *error)
{
    *live = false;
    if (error) {
        abort_run(r, error);
        return;
    }
    if (r->phase == PH_STOP && --r->nclosing == 0)
        after_close(r);
}

/* ---- the setup connection ---------------------------------------------- */

static void setup_ready(wr_client_t *c, void *arg)
{
    wr_run_t *r = arg;
    send_topology(r);
}

static void setup_method(wr_client_t *c, const wr_method_t *m, void *arg)
{
    wr_run_t *r = arg;
    switch (m->id) {
    case WR_EXCHANGE_DECLARE_OK:
    case WR_QUEUE_DECLARE_OK:
    case WR_QUEUE_BIND_OK:
    case WR_QUEUE_DELETE_OK:
    case WR_EXCHANGE_DELETE_OK:
        if (r->setup_pending == 0) {
            unexpected(r, m);
            return;
        }
        if (--r->setup_pending > 0)
            return;
        if (r->phase == PH_SETUP)
            start_connect(r);
        else if (r->phase == PH_TEARDOWN)
            wr_client_close(r->setup);
        return;
    case WR_CONNECTION_BLOCKED:
    case WR_CONNECTION_UNBLOCKED:
        return;
    default:
        unexpected(r, m);
        return;
    }
}

static void setup_deliver(wr_client_t *c, uint64_t tag, const uint8_t *head, size_t head_len, void *arg)
{
    no_deliver(arg);
}

static void setup_done(wr_client_t *c, const char *error, void *arg)
{
    wr_run_t *r = arg;
    r->setup_live = false;
    if (error)
        abort_run(r, error);
    else if (r->phase == PH_TEARDOWN)
        finish(r);
}

static const wr_client_cbs_t setup_cbs = {
    setup_ready, setup_method, setup_deliver, NULL, setup_done,
};

/* ---- idle connections -------------------------------------------------- */

static void idle_ready(wr_client_t *c, void *arg)
{
    wr_run_t *r = arg;
    if (++r->nready == r->o->idle_conns) {
        struct timeval tv = {IDLE_SETTLE_S, 0};
        evtimer_add(r->settle, &tv);
    }
}

static void idle_method(wr_client_t *c, const wr_method_t *m, void *arg)
{
    wr_run_t *r = arg;
    if (m->id == WR_CONNECTION_BLOCKED)
        r->res.blocked++;
    else if (m->id != WR_CONNECTION_UNBLOCKED)
        unexpected(r, m);
}

static void idle_done(wr_client_t *c, const char *error, void *arg)
{
    wr_run_t *r = arg;
    for (uint32_t i = 0; i < r->o->idle_conns; i++)
        if (r->idle[i] == c)
            role_done(r, &r->idle_live[i], error);
}

static const wr_client_cbs_t idle_cbs = {
    idle_ready, idle_method, setup_deliver, NULL, idle_done,
};

static void settle_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_run_t *r = arg;
    uint64_t hwm;
    if (r->o->pid && wr_rss_read(r->o->pid, &r->res.idle_rss_after_kib, &hwm) != WR_OK) {
        abort_run(r, "the broker process (--pid) is gone");
        return;
    }
    stop(r, true);
}

static void start_idle(wr_run_t *r)
{
    char name[64];
    uint64_t hwm;
    set_phase(r, PH_IDLE);
    r->res.idle_conns = r->o->idle_conns;
    if (r->o->pid)
        wr_rss_read(r->o->pid, &r->res.idle_rss_before_kib, &hwm);
    for (uint32_t i = 0; i < r->o->idle_conns; i++) {
        snprintf(name, sizeof(name), "warren-perf idle %" PRIu32, i);
        r->idle[i] = wr_client_new(r->base, &r->conf, name, &idle_cbs, r);
        if (!r->idle[i]) {
            abort_run(r, "cannot create a connection (too many open files?)");
            return;
        }
        r->idle_live[i] = true;
    }
}

/* ---- timers ------------------------------------------------------------ */

/*
 * The loop with a precise clock. libevent's default on Linux is
 * CLOCK_MONOTONIC_COARSE, which advances once a jiffy (4 ms on a HZ=250
 * kernel), so the 1 ms tick fired in bursts every 4 ms (the rate's tokens
 * arrived four at a time, and the loop woke each millisecond to find its
 * timer not yet due). The precise clock costs the loop a timerfd_settime
 * per pass, which only the load generator pays.
 */
static struct event_base *base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_run_t *r = arg;
    const wr_opts_t *o = r->o;
    uint64_t now = now_ns();
    double add = o->rate * (double)(now - r->t_refill) / (double)NS_PER_SEC;
    /* Up to 100 ms of tokens: a late timer (a busy machine) must not lower
     * the mean rate, but a producer held back for long by the broker must
     * not burst far above the asked rate when it is let go. */
    double cap = o->rate / 10.0 > 1.0 ? o->rate / 10.0 : 1.0;
    r->t_refill = now;
    for (uint32_t i = 0; i < o->producers; i++) {
        producer_t *p = &r->prods[i];
        p->tokens = p->tokens + add > cap ? cap : p->tokens + add;
        producer_pump(p);
    }
    if (r->phase == PH_RUN) {
        struct timeval tv = {0, TICK_MS * 1000};
        evtimer_add(r->tick, &tv);
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    stop(arg, false);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_run_t *r = arg;
    char why[96];
    snprintf(why, sizeof(why), "timed out after %ds in the %s phase", PHASE_TIMEOUT_S, phase_names[r->phase]);
    abort_run(r, why);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    wr_run_t *r = arg;
    if (r->phase == PH_RUN || r->phase == PH_DRAIN || r->phase == PH_IDLE) {
        r->res.interrupted = true;
        stop(r, false);
    } else {
        abort_run(r, "interrupted");
    }
}

/* Messages the consumers should see in a count-limited run: every publish
 * reaches one queue, or every queue behind a fanout exchange. */
static uint64_t expected_deliveries(const wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    bool fanout = o->exchange[0] != '\0' && strcmp(o->type, "fanout") == 0;
    return r->published * (fanout ? o->nqueues : 1);
}

static void check_count_done(wr_run_t *r, uint64_t now)
{
    if (!count_mode(r) || r->nprod_finished < r->o->producers || r->t_consume_start == 0)
        return;
    if (r->phase != PH_RUN && r->phase != PH_DRAIN)
        return;
    uint64_t last = r->t_last_consume;
    if (r->t_producers_done > last)
        last = r->t_producers_done;
    if (r->t_consume_start > last)
        last = r->t_consume_start;
    if (r->consumed >= expected_deliveries(r) || now - last >= IDLE_END_NS)
        stop(r, true);
}

static void progress(wr_run_t *r, uint64_t now)
{
    double dt = (double)(now - r->t_prev_progress) / (double)NS_PER_SEC;
    if (r->o->json || dt < 1.0 || (r->phase != PH_RUN && r->phase != PH_DRAIN))
        return;
    fprintf(stderr, "%7.1fs  published %9.0f msg/s  confirmed %9.0f msg/s  consumed %9.0f msg/s\n",
            (double)(now - r->t_start) / (double)NS_PER_SEC, (double)(r->published - r->prev_published) / dt,
            (double)(r->confirmed - r->prev_confirmed) / dt, (double)(r->consumed - r->prev_consumed) / dt);
    r->prev_published = r->published;
    r->prev_confirmed = r->confirmed;
    r->prev_consumed = r->consumed;
    r->t_prev_progress = now;
}

static void monitor_cb(evutil_socket_t fd, short what, void *arg)
{
    wr_run_t *r = arg;
    uint64_t now = now_ns();
    if (r->o->pid) {
        uint64_t rss, hwm;
        if (wr_rss_read(r->o->pid, &rss, &hwm) != WR_OK) {
            abort_run(r, "the broker process (--pid) is gone");
            return;
        }
        if (rss > r->res.rss_peak_kib)
            r->res.rss_peak_kib = rss;
    }
    check_count_done(r, now);
    progress(r, now);
}

/* ---- the run ----------------------------------------------------------- */

static int resolve(wr_run_t *r)
{
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    snprintf(port, sizeof(port), "%u", r->o->port);
    int rc = getaddrinfo(r->o->host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "warren-perf: cannot resolve %s: %s\n", r->o->host, gai_strerror(rc));
        return WR_EIO;
    }
    memcpy(&r->conf.addr, res->ai_addr, res->ai_addrlen);
    r->conf.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return WR_OK;
}

static void put_queue_args(wr_buf_t *b, const wr_opts_t *o)
{
    for (size_t i = 0; i < o->nqargs; i++) {
        const wr_queue_arg_t *a = &o->qargs[i];
        if (a->str)
            wr_table_put_str(b, a->key, a->str);
        else
            wr_table_put_long(b, a->key, a->num);
    }
}

static int alloc_roles(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    r->prods = calloc(o->producers + 1, sizeof(*r->prods));
    r->cons = calloc(o->consumers + 1, sizeof(*r->cons));
    r->idle = calloc(o->idle_conns + 1, sizeof(*r->idle));
    r->idle_live = calloc(o->idle_conns + 1, sizeof(*r->idle_live));
    if (!r->prods || !r->cons || !r->idle || !r->idle_live)
        return WR_ENOMEM;
    for (uint32_t i = 0; i < o->producers; i++) {
        producer_t *p = &r->prods[i];
        p->run = r;
        p->next_tag = p->base = 1; /* confirm tags count from 1 */
        if (o->unbatched && !(p->turn = evtimer_new(r->base, turn_cb, p)))
            return WR_ENOMEM;
        wr_opts_queue_name(o, i % o->nqueues, p->queue, sizeof(p->queue));
        if (o->confirm) {
            p->settled = calloc(o->confirm, sizeof(*p->settled));
            p->sent_at = calloc(o->confirm, sizeof(*p->sent_at));
            if (!p->settled || !p->sent_at)
                return WR_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < o->consumers; i++) {
        r->cons[i].run = r;
        wr_opts_queue_name(o, i % o->nqueues, r->cons[i].queue, sizeof(r->cons[i].queue));
    }
    return WR_OK;
}

wr_run_t *wr_run_new(const wr_opts_t *o)
{
    wr_run_t *r = calloc(1, sizeof(*r));
    if (!r)
        goto oom;
    r->o = o;
    r->conf.user = o->user;
    r->conf.pass = o->pass;
    r->conf.vhost = o->vhost;
    if (resolve(r) != WR_OK)
        goto err;
    r->lat = wr_hist_new();
    r->clat = wr_hist_new();
    r->base = base_new();
    if (!r->lat || !r->clat || !r->base || alloc_roles(r) != WR_OK)
        goto oom;
    put_queue_args(&r->qargs, o);
    r->tick = evtimer_new(r->base, tick_cb, r);
    r->monitor = event_new(r->base, -1, EV_PERSIST, monitor_cb, r);
    r->deadline = evtimer_new(r->base, deadline_cb, r);
    r->timeout = evtimer_new(r->base, timeout_cb, r);
    r->settle = evtimer_new(r->base, settle_cb, r);
    r->sigint = evsignal_new(r->base, SIGINT, signal_cb, r);
    r->sigterm = evsignal_new(r->base, SIGTERM, signal_cb, r);
    if (!wr_buf_ok(&r->qargs) || !r->tick || !r->monitor || !r->deadline || !r->timeout || !r->settle ||
        !r->sigint || !r->sigterm)
        goto oom;
    return r;
oom:
    fprintf(stderr, "warren-perf: out of memory\n");
err:
    wr_run_free(r);
    return NULL;
}

static void free_event(struct event *ev)
{
    if (ev)
        event_free(ev);
}

void wr_run_free(wr_run_t *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; r->prods && i < r->o->producers; i++) {
        wr_client_free(r->prods[i].cl);
        free(r->prods[i].tmpl);
        free(r->prods[i].settled);
        free(r->prods[i].sent_at);
        free_event(r->prods[i].turn);
    }
    for (uint32_t i = 0; r->cons && i < r->o->consumers; i++)
        wr_client_free(r->cons[i].cl);
    for (uint32_t i = 0; r->idle && i < r->o->idle_conns; i++)
        wr_client_free(r->idle[i]);
    wr_client_free(r->setup);
    free(r->prods);
    free(r->cons);
    free(r->idle);
    free(r->idle_live);
    free_event(r->tick);
    free_event(r->monitor);
    free_event(r->deadline);
    free_event(r->timeout);
    free_event(r->settle);
    free_event(r->sigint);
    free_event(r->sigterm);
    if (r->base)
        event_base_free(r->base);
    wr_hist_free(r->lat);
    wr_hist_free(r->clat);
    wr_buf_free(&r->qargs);
    free(r);
}

/* 0 when the interval never started (no such phase) or never saw an event. */
static double secs_between(uint64_t from, uint64_t to)
{
    return from != 0 && to > from ? (double)(to - from) / (double)NS_PER_SEC : 0.0;
}

static void fill_result(wr_run_t *r)
{
    wr_result_t *res = &r->res;
    res->published = r->published;
    res->confirmed = r->confirmed;
    res->nacked = r->nacked;
    res->consumed = r->consumed;
    res->latency = r->lat;
    res->confirm_latency = r->clat;
    /* Time-limited runs divide by the whole run, so a broker that stalls
     * near the end is not flattered by its last event's timestamp. */
    bool by_events = count_mode(r) && !res->interrupted;
    res->publish_secs = secs_between(r->t_start, by_events ? r->t_last_pub : r->t_stop);
    res->confirm_secs = secs_between(r->t_start, by_events ? r->t_last_confirm : r->t_stop);
    res->consume_secs = secs_between(r->t_consume_start, by_events ? r->t_last_consume : r->t_stop);
    if (r->o->pid) {
        res->have_rss = true;
        if (wr_rss_read(r->o->pid, &res->rss_end_kib, &res->hwm_kib) == WR_OK &&
            res->rss_end_kib > res->rss_peak_kib)
            res->rss_peak_kib = res->rss_end_kib;
    }
}

int wr_run_exec(wr_run_t *r)
{
    const wr_opts_t *o = r->o;
    struct timeval mon = {0, MONITOR_MS * 1000};
    if (o->pid) {
        uint64_t hwm;
        if (wr_rss_read(o->pid, &r->res.rss_start_kib, &hwm) != WR_OK) {
            fprintf(stderr, "warren-perf: cannot read /proc/%ld/status\n", (long)o->pid);
            return WR_EIO;
        }
        r->res.rss_peak_kib = r->res.rss_start_kib;
    }
    if (event_add(r->monitor, &mon) != 0 || event_add(r->sigint, NULL) != 0 ||
        event_add(r->sigterm, NULL) != 0)
        return WR_EIO;

    if (o->idle_conns > 0) {
        start_idle(r);
    } else if (o->predeclared) {
        start_connect(r);
    } else {
        set_phase(r, PH_SETUP);
        r->setup = wr_client_new(r->base, &r->conf, "warren-perf setup", &setup_cbs, r);
        if (!r->setup) {
            fprintf(stderr, "warren-perf: cannot create a connection\n");
            return WR_EIO;
        }
        r->setup_live = true;
    }
    if (r->phase != PH_DONE)
        event_base_dispatch(r->base);
    if (r->status == WR_OK)
        fill_result(r);
    return r->status;
}

const wr_result_t *wr_run_result(const wr_run_t *r)
{
    return &r->res;
}
