/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics and /metrics/per-object in the Prometheus text format 0.0.4,
 * as rabbitmq_prometheus splits them: /metrics sums the queue families over
 * every queue (one unlabelled sample each), /metrics/per-object gives one
 * sample per queue with the labels vhost and queue. Every family is written
 * whole (HELP, TYPE, then all its samples) because the format requires a
 * family's samples to be contiguous. Counters end in _total; the rate
 * gauges come from the statistics sampler, so consumer lag shows as publish
 * rate > deliver rate with a growing warren_queue_messages_ready.
 *
 * A per-object scrape takes every queue's values in one pass (no
 * formatting), then sends them as a chunked reply, a bounded number of
 * lines per chunk, the next chunk formatted only once the previous one is
 * written: the loop never stalls on formatting, and a slow reader holds one
 * chunk, not the whole page.
 */
#include "broker/cluster/cluster_config.h"
#include "broker/base/version.h"
#include "broker/mgmt/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "broker/node/alarm.h"
#include "broker/amqp/conn.h"
#include "broker/base/log.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/metrics_rabbit.h"
#include "broker/mgmt/mgmt_http.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"

/* A scrape has no body; anything larger than this is not one. */
#define MAX_BODY_SIZE 4096
/* Lines of a per-object scrape formatted per chunk (per loop iteration). */
#define LINES_PER_CHUNK 4096

struct wr_metrics_s {
    wr_metrics_rabbit_t rabbit; /* the rabbitmq_* node series */
    char node[300];
    const wr_mgmt_env_t *env;
    const wr_mgmt_stats_t *stats;
    wr_mgmt_http_t *http;
    wr_list_t scrapes; /* per-object replies in progress (scrape_t) */
};

/* What a per-queue family reports. */
typedef enum {
    Q_READY,
    Q_UNACKED,
    Q_MESSAGES,
    Q_CONSUMERS,
    Q_PUBLISHED,
    Q_DELIVERED,
    Q_ACKED,
    Q_REDELIVERED,
    Q_PUBLISH_RATE,
    Q_DELIVER_RATE,
    Q_DELIVERED_ACK,   /* to consumers that acknowledge */
    Q_DELIVERED_NOACK, /* to no-ack consumers */
    Q_GET_ACK,
    Q_GET_NOACK,
    Q_NVALUES
} queue_value_t;

/* A family's group for /metrics/detailed?family=..., as rabbitmq_prometheus
 * groups them; warren's own series have none. */
typedef enum { G_NONE, G_COARSE, G_CONSUMERS, G_DELIVERY } group_t;

static const char *const group_names[] = {NULL, "queue_coarse_metrics", "queue_consumer_count",
                                          "queue_delivery_metrics"};

static const struct {
    const char *name;
    const char *type;
    const char *help;
    queue_value_t value;
    group_t group;
} queue_families[] = {
    {"rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", Q_READY,
     G_COARSE},
    {"rabbitmq_queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged",
     Q_UNACKED, G_COARSE},
    {"rabbitmq_queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth",
     Q_MESSAGES, G_COARSE},
    {"rabbitmq_queue_consumers", "gauge", "Consumers on a queue", Q_CONSUMERS, G_CONSUMERS},
    {"rabbitmq_queue_get_ack_total", "counter",
     "Total number of messages fetched from a queue with basic.get in manual acknowledgement mode", Q_GET_ACK,
     G_DELIVERY},
    {"rabbitmq_queue_get_total", "counter",
     "Total number of messages fetched from a queue with basic.get in automatic acknowledgement mode",
     Q_GET_NOACK, G_DELIVERY},
    {"rabbitmq_queue_messages_delivered_ack_total", "counter",
     "Total number of messages delivered from a queue to consumers in manual acknowledgement mode",
     Q_DELIVERED_ACK, G_DELIVERY},
    {"rabbitmq_queue_messages_delivered_total", "counter",
     "Total number of messages delivered from a queue to consumers in automatic acknowledgement mode",
     Q_DELIVERED_NOACK, G_DELIVERY},
    {"rabbitmq_queue_messages_redelivered_total", "counter",
     "Total number of messages redelivered from a queue to consumers", Q_REDELIVERED, G_DELIVERY},
    {"rabbitmq_queue_messages_acked_total", "counter",
     "Total number of messages acknowledged by consumers on a queue", Q_ACKED, G_DELIVERY},
    {"warren_queue_messages_ready", "gauge", "Messages ready to be delivered", Q_READY, G_NONE},
    {"warren_queue_messages_unacked", "gauge", "Messages delivered and awaiting acknowledgement", Q_UNACKED,
     G_NONE},
    {"warren_queue_messages", "gauge", "Messages ready plus awaiting acknowledgement (queue depth)",
     Q_MESSAGES, G_NONE},
    {"warren_queue_consumers", "gauge", "Consumers attached to the queue", Q_CONSUMERS, G_NONE},
    {"warren_queue_messages_published_total", "counter", "Messages enqueued", Q_PUBLISHED, G_NONE},
    {"warren_queue_messages_delivered_total", "counter",
     "Messages delivered to consumers or fetched by basic.get", Q_DELIVERED, G_NONE},
    {"warren_queue_messages_acked_total", "counter", "Deliveries acknowledged", Q_ACKED, G_NONE},
    {"warren_queue_messages_redelivered_total", "counter", "Deliveries of redelivered messages",
     Q_REDELIVERED, G_NONE},
    {"warren_queue_publish_rate", "gauge", "Messages enqueued per second over the last sampling interval",
     Q_PUBLISH_RATE, G_NONE},
    {"warren_queue_deliver_rate", "gauge",
     "Messages delivered or fetched per second over the last sampling interval", Q_DELIVER_RATE, G_NONE},
};

static uint64_t delivered_count(const wr_mgmt_counts_t *c)
{
    return c->v[WR_MS_DELIVER] + c->v[WR_MS_DELIVER_NO_ACK] + c->v[WR_MS_GET] + c->v[WR_MS_GET_NO_ACK];
}

static double delivered_rate(const wr_mgmt_rates_t *r)
{
    return r->v[WR_MS_DELIVER] + r->v[WR_MS_DELIVER_NO_ACK] + r->v[WR_MS_GET] + r->v[WR_MS_GET_NO_ACK];
}

/* Every value the queue families report for q, indexed by queue_value_t. */
static void queue_values(const wr_metrics_t *m, const wr_queue_t *q, double v[Q_NVALUES])
{
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t r;

    wr_mgmt_stats_queue_counts(q, &c);
    wr_mgmt_stats_queue_rates(m->stats, q, &r);
    v[Q_READY] = (double)c.v[WR_MS_READY];
    v[Q_UNACKED] = (double)c.v[WR_MS_UNACKED];
    v[Q_MESSAGES] = (double)(c.v[WR_MS_READY] + c.v[WR_MS_UNACKED]);
    v[Q_CONSUMERS] = (double)wr_queue_consumer_count(q);
    v[Q_PUBLISHED] = (double)c.v[WR_MS_PUBLISH];
    v[Q_DELIVERED] = (double)delivered_count(&c);
    v[Q_ACKED] = (double)c.v[WR_MS_ACK];
    v[Q_REDELIVERED] = (double)c.v[WR_MS_REDELIVER];
    v[Q_PUBLISH_RATE] = r.v[WR_MS_PUBLISH];
    v[Q_DELIVER_RATE] = delivered_rate(&r);
    v[Q_DELIVERED_ACK] = (double)c.v[WR_MS_DELIVER];
    v[Q_DELIVERED_NOACK] = (double)c.v[WR_MS_DELIVER_NO_ACK];
    v[Q_GET_ACK] = (double)c.v[WR_MS_GET];
    v[Q_GET_NOACK] = (double)c.v[WR_MS_GET_NO_ACK];
}

/* A label value with \, " and newline escaped. */
static void put_label(wr_buf_t *b, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '"')
            wr_buf_put(b, "\\", 1);
        if (s[i] == '\n')
            wr_buf_put(b, "\\n", 2);
        else
            wr_buf_put(b, &s[i], 1);
    }
}

static void put_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_value(struct evbuffer *out, double v)
{
    if (v == (double)(int64_t)v)
        evbuffer_add_printf(out, " %" PRId64 "\n", (int64_t)v);
    else
        evbuffer_add_printf(out, " %.6f\n", v);
}

static void put_single(struct evbuffer *out, const char *name, const char *type, const char *help, double v)
{
    put_family(out, name, type, help);
    evbuffer_add_printf(out, "%s", name);
    put_value(out, v);
}

/* The flow alarms (broker/alarm.h) and the connections they hold. */
static void render_alarms(const wr_metrics_t *m, struct evbuffer *out)
{
    wr_alarms_t *a = m->env->alarms;
    wr_alarm_status_t st;
    wr_conn_info_t info;
    size_t blocked = 0;
    wr_list_t *pos, *tmp;

    if (!a)
        return;
    wr_alarm_status(a, &st);
    wr_list_foreach_safe(pos, tmp, m->env->conns)
    {
        wr_conn_info(wr_conn_from_link(pos), &info);
        blocked += info.blocked;
    }
    put_single(out, "warren_memory_used_bytes", "gauge",
               "Memory the memory alarm compares with the high watermark (the sampled resident set size)",
               (double)st.mem_used);
    put_single(out, "warren_memory_high_watermark_bytes", "gauge",
               "The memory high watermark: publishers are blocked above it", (double)st.mem_limit);
    put_single(out, "warren_disk_free_bytes", "gauge", "Free disk space under data_dir (sampled)",
               (double)st.disk_free);
    put_single(out, "warren_disk_free_limit_bytes", "gauge",
               "The disk free limit: publishers are blocked below it", (double)st.disk_limit);
    put_family(out, "warren_alarm_active", "gauge", "1 while the resource alarm is raised");
    evbuffer_add_printf(out, "warren_alarm_active{resource=\"memory\"} %d\n", st.memory);
    evbuffer_add_printf(out, "warren_alarm_active{resource=\"disk\"} %d\n", st.disk);
    put_single(out, "warren_connections_blocked", "gauge",
               "Connections whose reads are stopped by an alarm or by storage flow", (double)blocked);
    put_single(out, "warren_storage_pending_bytes", "gauge",
               "Bytes appended and not yet durable, waiting for the storage thread",
               (double)st.storage_pending);
    put_single(out, "warren_storage_flow", "gauge",
               "1 while the storage backlog holds publishers (flow_storage_pending_bytes)", st.flow);
    put_single(out, "warren_storage_flow_started_total", "counter",
               "Times the storage backlog started holding publishers", (double)st.flow_started);
}

/* The node's own series (everything but the queue families), warren's and
 * RabbitMQ's; `endpoint` is rabbitmq_identity_info's rabbitmq_endpoint. */
static void render_node(const wr_metrics_t *m, const char *endpoint, struct evbuffer *out)
{
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t r;
    size_t conns, channels, queues = 0, consumers = 0;
    wr_map_iter_t vit = {0}, qit;
    void *vh, *q;

    wr_mgmt_conns_totals(m->env, &conns, &channels);
    wr_mgmt_stats_node_counts(m->env, &c);
    wr_mgmt_stats_node_rates(m->stats, &r);
    while (wr_map_next(m->env->vhosts, &vit, NULL, &vh)) {
        queues += wr_map_count(wr_vhost_queues(vh));
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q))
            consumers += wr_queue_consumer_count(q);
    }
    put_family(out, "warren_build_info", "gauge", "The warren version, as a label");
    evbuffer_add_printf(out, "warren_build_info{version=\"%s\"} 1\n", WR_VERSION);
    put_single(out, "warren_process_resident_memory_bytes", "gauge",
               "Resident set size of the broker process", (double)wr_metrics_rss_bytes());
    render_alarms(m, out);
    put_single(out, "warren_connections", "gauge", "Open AMQP connections", (double)conns);
    put_single(out, "warren_channels", "gauge", "Open AMQP channels", (double)channels);
    put_single(out, "warren_queues", "gauge", "Queues", (double)queues);
    put_single(out, "warren_consumers", "gauge", "Consumers", (double)consumers);
    put_single(out, "warren_messages_ready", "gauge", "Messages ready in all queues",
               (double)c.v[WR_MS_READY]);
    put_single(out, "warren_messages_unacked", "gauge", "Deliveries awaiting acknowledgement in all queues",
               (double)c.v[WR_MS_UNACKED]);
    put_single(out, "warren_messages_published_total", "counter", "Messages published to exchanges",
               (double)c.v[WR_MS_PUBLISH]);
    put_single(out, "warren_messages_unroutable_total", "counter", "Published messages that reached no queue",
               (double)c.v[WR_MS_UNROUTABLE]);
    put_single(out, "warren_messages_delivered_total", "counter",
               "Messages delivered to consumers or fetched by basic.get", (double)delivered_count(&c));
    put_single(out, "warren_messages_acked_total", "counter", "Deliveries acknowledged",
               (double)c.v[WR_MS_ACK]);
    put_single(out, "warren_messages_redelivered_total", "counter", "Deliveries of redelivered messages",
               (double)c.v[WR_MS_REDELIVER]);
    put_single(out, "warren_messages_publish_rate", "gauge", "Messages published per second",
               r.v[WR_MS_PUBLISH]);
    put_single(out, "warren_messages_deliver_rate", "gauge", "Messages delivered or fetched per second",
               delivered_rate(&r));
    wr_metrics_rabbit_node(&m->rabbit, endpoint, out);
}

/* /metrics: each queue family summed over every queue, unlabelled. */
static void render_queue_sums(const wr_metrics_t *m, struct evbuffer *out)
{
    double sum[Q_NVALUES] = {0}, v[Q_NVALUES];
    wr_map_iter_t vit = {0}, qit;
    void *vh, *q;

    while (wr_map_next(m->env->vhosts, &vit, NULL, &vh)) {
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q)) {
            queue_values(m, q, v);
            for (int i = 0; i < Q_NVALUES; i++)
                sum[i] += v[i];
        }
    }
    for (size_t f = 0; f < sizeof(queue_families) / sizeof(queue_families[0]); f++)
        put_single(out, queue_families[f].name, queue_families[f].type, queue_families[f].help,
                   sum[queue_families[f].value]);
}

/* ---------------------------------------------------------------- per object */

/* One queue's values and its labels ({vhost="..",queue=".."} at `label` in
 * the scrape's arena), taken when the scrape started. */
typedef struct {
    size_t label, label_len;
    double v[Q_NVALUES];
} row_t;

/* A per-object reply in progress: the rows, and where the next chunk
 * starts (family, row). */
typedef struct {
    wr_list_t link; /* in m->scrapes */
    wr_metrics_t *m;
    struct evhttp_request *req;
    row_t *rows;
    size_t nrows, cap;
    wr_buf_t labels;
    size_t family, next;
} scrape_t;

static void scrape_free(scrape_t *s)
{
    wr_list_remove(&s->link);
    free(s->rows);
    wr_buf_free(&s->labels);
    free(s);
}

static bool scrape_add(scrape_t *s, const wr_vhost_t *vh, const wr_queue_t *q)
{
    const char *vname = wr_vhost_name(vh);
    wr_bytes_t qname = wr_queue_name(q);
    row_t *row;

    if (s->nrows == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        row_t *rows = realloc(s->rows, cap * sizeof(*rows));

        if (!rows)
            return false;
        s->rows = rows;
        s->cap = cap;
    }
    row = &s->rows[s->nrows++];
    row->label = s->labels.len;
    wr_buf_put(&s->labels, "{vhost=\"", 8);
    put_label(&s->labels, (const uint8_t *)vname, strlen(vname));
    wr_buf_put(&s->labels, "\",queue=\"", 9);
    put_label(&s->labels, qname.data, qname.len);
    wr_buf_put(&s->labels, "\"}", 2);
    row->label_len = s->labels.len - row->label;
    queue_values(s->m, q, row->v);
    return wr_buf_ok(&s->labels);
}

/* Every queue's values, in one pass: nothing is formatted yet. */
static bool scrape_take(scrape_t *s)
{
    wr_map_iter_t vit = {0}, qit;
    void *vh, *q;

    while (wr_map_next(s->m->env->vhosts, &vit, NULL, &vh)) {
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q)) {
            if (!scrape_add(s, vh, q))
                return false;
        }
    }
    return true;
}

/* Formats up to LINES_PER_CHUNK lines from where s stopped. */
static void scrape_format(scrape_t *s, struct evbuffer *out)
{
    size_t nfam = sizeof(queue_families) / sizeof(queue_families[0]);

    for (size_t lines = 0; lines < LINES_PER_CHUNK && s->family < nfam; lines++) {
        const char *name = queue_families[s->family].name;
        const row_t *row;

        if (s->next == 0)
            put_family(out, name, queue_families[s->family].type, queue_families[s->family].help);
        if (s->next == s->nrows) {
            s->family++;
            s->next = 0;
            continue;
        }
        row = &s->rows[s->next++];
        evbuffer_add(out, name, strlen(name));
        evbuffer_add(out, s->labels.data + row->label, row->label_len);
        put_value(out, row->v[queue_families[s->family].value]);
    }
}

static void on_closed(void *arg)
{
    scrape_free(arg);
}

/* The previous chunk is written: the next one, or the end of the reply. */
static void on_chunk_sent(struct evhttp_connection *evcon, void *arg)
{
    scrape_t *s = arg;
    struct evbuffer *out;

    if (s->family == sizeof(queue_families) / sizeof(queue_families[0])) {
        wr_mgmt_http_watch(s->m->http, s->req, NULL, NULL);
        evhttp_send_reply_end(s->req);
        scrape_free(s);
        return;
    }
    out = evbuffer_new();
    if (out)
        scrape_format(s, out);
    evhttp_send_reply_chunk_with_cb(s->req, out, on_chunk_sent, s);
    if (out)
        evbuffer_free(out);
}

/* GET /metrics/per-object: the node's series and the connection and channel
 * families (few next to queues: in the first chunk), then the queue
 * families chunk by chunk. */
static void per_object(wr_metrics_t *m, struct evhttp_request *req)
{
    scrape_t *s = calloc(1, sizeof(*s));
    struct evbuffer *out = evbuffer_new();

    if (!s || !out) {
        free(s);
        if (out)
            evbuffer_free(out);
        evhttp_send_error(req, HTTP_INTERNAL, "Internal Server Error");
        return;
    }
    s->m = m;
    s->req = req;
    s->labels = (wr_buf_t)WR_BUF_INIT;
    wr_list_insert_tail(&m->scrapes, &s->link);
    if (!scrape_take(s))
        s->nrows = 0; /* out of memory: the families come out empty */
    render_node(m, "per-object", out);
    wr_metrics_rabbit_objects(m->env, out);
    wr_mgmt_http_watch(m->http, req, on_closed, s);
    evhttp_send_reply_start(req, HTTP_OK, "OK");
    evhttp_send_reply_chunk_with_cb(req, out, on_chunk_sent, s);
    evbuffer_free(out);
}

/* ---------------------------------------------------------------- detailed */

/* Whether the query has key=value; *seen says whether it has key at all. */
static bool query_has(struct evkeyvalq *q, const char *key, const char *value, bool *seen)
{
    struct evkeyval *kv;

    *seen = false;
    for (kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcmp(kv->key, key) != 0)
            continue;
        *seen = true;
        if (strcmp(kv->value, value) == 0)
            return true;
    }
    return false;
}

/* One queue family, rabbitmq_detailed_*, over the queues of the vhosts the
 * query names (every vhost when it names none). */
static void detailed_family(const wr_metrics_t *m, size_t f, struct evkeyvalq *q, struct evbuffer *out)
{
    wr_map_iter_t vit = {0}, qit;
    wr_buf_t b = WR_BUF_INIT;
    double v[Q_NVALUES];
    void *vh, *queue;
    bool seen;

    evbuffer_add_printf(out, "# TYPE rabbitmq_detailed_%s %s\n# HELP rabbitmq_detailed_%s %s\n",
                        queue_families[f].name + 9, queue_families[f].type, queue_families[f].name + 9,
                        queue_families[f].help);
    while (wr_map_next(m->env->vhosts, &vit, NULL, &vh)) {
        if (!query_has(q, "vhost", wr_vhost_name(vh), &seen) && seen)
            continue;
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &queue)) {
            wr_bytes_t name = wr_queue_name(queue);

            wr_buf_reset(&b);
            put_label(&b, (const uint8_t *)wr_vhost_name(vh), strlen(wr_vhost_name(vh)));
            wr_buf_put(&b, "\",queue=\"", 9);
            put_label(&b, name.data, name.len);
            if (!wr_buf_ok(&b))
                break;
            queue_values(m, queue, v);
            evbuffer_add_printf(out, "rabbitmq_detailed_%s{vhost=\"%.*s\"}", queue_families[f].name + 9,
                                (int)b.len, (const char *)b.data);
            put_value(out, v[queue_families[f].value]);
        }
    }
    wr_buf_free(&b);
}

/*
 * GET /metrics/detailed?family=F&vhost=V (both repeatable), as
 * rabbitmq_prometheus: only the families asked for, with the prefix
 * rabbitmq_detailed_; queue families per queue, limited to the vhosts named.
 * Supported: queue_coarse_metrics, queue_consumer_count,
 * queue_delivery_metrics, connection_churn_metrics; others give nothing.
 */
static void detailed(const wr_metrics_t *m, struct evhttp_request *req, struct evbuffer *out)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    bool seen;

    if (evhttp_parse_query_str(query ? query : "", &q) != 0)
        return;
    for (size_t f = 0; f < sizeof(queue_families) / sizeof(queue_families[0]); f++) {
        group_t g = queue_families[f].group;

        if (g != G_NONE && query_has(&q, "family", group_names[g], &seen))
            detailed_family(m, f, &q, out);
    }
    if (query_has(&q, "family", "connection_churn_metrics", &seen))
        wr_metrics_rabbit_churn(m->env->counters, out, "rabbitmq_detailed_");
    wr_metrics_rabbit_identity(m->node, m->rabbit.cluster, "detailed", out);
    evhttp_clear_headers(&q);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    wr_metrics_t *m = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *out;

    if (!path || (strcmp(path, "/metrics") != 0 && strcmp(path, "/metrics/per-object") != 0 &&
                  strcmp(path, "/metrics/detailed") != 0)) {
        evhttp_send_error(req, HTTP_NOTFOUND, "Not Found");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    if (strcmp(path, "/metrics/per-object") == 0 && cmd == EVHTTP_REQ_GET) {
        per_object(m, req);
        return;
    }
    out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, HTTP_INTERNAL, "Internal Server Error");
        return;
    }
    if (strcmp(path, "/metrics/detailed") == 0) {
        detailed(m, req, out);
    } else {
        render_node(m, "aggregated", out);
        render_queue_sums(m, out);
    }
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

uint64_t wr_metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    }
    fclose(f);
    return (uint64_t)kb * 1024;
}

wr_metrics_t *wr_metrics_new(const wr_mgmt_env_t *env, const wr_mgmt_stats_t *stats,
                             const wr_listener_cfg_t *l)
{
    wr_metrics_t *m = calloc(1, sizeof(*m));
    wr_mgmt_http_opts_t o = {
        "Prometheus metrics", MAX_BODY_SIZE, MAX_BODY_SIZE, on_request, NULL, NULL, NULL};
    char host[256] = "localhost";

    if (!m)
        return NULL;
    m->env = env;
    m->stats = stats;
    gethostname(host, sizeof(host) - 1);
    /* In a cluster, nodes are named as configured, here as in the management API. */
    snprintf(m->node, sizeof(m->node), env->cfg->cluster ? "%s" : "warren@%s",
             env->cfg->cluster ? env->cfg->cluster->node : host);
    m->rabbit = (wr_metrics_rabbit_t){
        .env = env, .node = m->node, .cluster = env->cfg->cluster ? env->cfg->cluster->name : m->node};
    clock_gettime(CLOCK_MONOTONIC, &m->rabbit.started);
    wr_list_init(&m->scrapes);
    o.arg = m;
    m->http = wr_mgmt_http_new(env->base, l, &o);
    if (!m->http)
        goto err;
    wr_log_info("Prometheus metrics on http://%s:%u/metrics", l->address, l->port);
    return m;
err:
    wr_metrics_free(m);
    return NULL;
}

void wr_metrics_free(wr_metrics_t *m)
{
    if (!m)
        return;
    wr_mgmt_http_free(m->http); /* ends the scrapes in progress (on_closed) */
    while (!wr_list_empty(&m->scrapes))
        scrape_free(wr_list_entry(m->scrapes.next, scrape_t, link));
    free(m);
}
