/* SPDX-License-Identifier: MIT */
/*
 * The node's series under rabbitmq_prometheus's names, labels and types, so
 * that RabbitMQ's Grafana dashboards and alert rules work unchanged:
 * identity and build info (the rabbitmq_endpoint label says which endpoint
 * answered), the totals, connection churn, process and alarm gauges, the
 * rabbitmq_global_* counters (label protocol="amqp091") and the message
 * size histogram; per object, the connection and channel gauges. The
 * per-queue families live in metrics.c's table.
 */
#include "broker/mgmt/metrics_rabbit.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/amqp/channel.h"
#include "broker/amqp/conn.h"
#include "broker/base/version.h"
#include "broker/mgmt/metrics.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/node/alarm.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"

static void put_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void put_one(struct evbuffer *out, const char *name, const char *type, const char *help,
                    const char *labels, double v)
{
    put_family(out, name, type, help);
    evbuffer_add_printf(out, "%s%s %.17g\n", name, labels, v);
}

void wr_metrics_rabbit_identity(const char *node, const char *cluster, const char *endpoint,
                                struct evbuffer *out)
{
    put_family(out, "rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info");
    evbuffer_add_printf(out,
                        "rabbitmq_build_info{rabbitmq_version=\"%s\",product_name=\"warren\","
                        "product_version=\"%s\",prometheus_plugin_version=\"%s\","
                        "prometheus_client_version=\"none\",erlang_version=\"none\"} 1\n",
                        WR_MGMT_COMPAT_VERSION, WR_VERSION, WR_VERSION);
    put_family(out, "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info");
    evbuffer_add_printf(out,
                        "rabbitmq_identity_info{rabbitmq_node=\"%s\",rabbitmq_cluster=\"%s\","
                        "rabbitmq_cluster_permanent_id=\"%s\",rabbitmq_endpoint=\"%s\"} 1\n",
                        node, cluster, cluster, endpoint);
}

/* Open descriptors of this process (0 when /proc cannot tell). */
static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = -1; /* the directory's own descriptor */

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return (double)n;
}

static size_t count_consumers(const wr_mgmt_env_t *env)
{
    wr_map_iter_t vit = {0}, qit;
    size_t n = 0;
    void *vh, *q;

    while (wr_map_next(env->vhosts, &vit, NULL, &vh)) {
        qit = (wr_map_iter_t){0};
        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q))
            n += wr_queue_consumer_count(q);
    }
    return n;
}

static void totals(const wr_metrics_rabbit_t *m, struct evbuffer *out)
{
    size_t conns, channels, queues = 0;
    uint64_t created = 0, deleted = 0;
    wr_map_iter_t vit = {0};
    void *vh;

    wr_mgmt_conns_totals(m->env, &conns, &channels);
    while (wr_map_next(m->env->vhosts, &vit, NULL, &vh)) {
        queues += wr_map_count(wr_vhost_queues(vh));
        created += wr_vhost_stats(vh)->queues_created;
        deleted += wr_vhost_stats(vh)->queues_deleted;
    }
    put_one(out, "rabbitmq_connections", "gauge", "Connections currently open", "", (double)conns);
    put_one(out, "rabbitmq_channels", "gauge", "Channels currently open", "", (double)channels);
    put_one(out, "rabbitmq_consumers", "gauge", "Consumers currently connected", "",
            (double)count_consumers(m->env));
    put_one(out, "rabbitmq_queues", "gauge", "Queues available", "", (double)queues);
    put_one(out, "rabbitmq_queues_created_total", "counter", "Total number of queues created", "",
            (double)created);
    put_one(out, "rabbitmq_queues_deleted_total", "counter", "Total number of queues deleted", "",
            (double)deleted);
}

void wr_metrics_rabbit_churn(const wr_counters_t *c, struct evbuffer *out, const char *prefix)
{
    static const struct {
        const char *name, *help;
        wr_counter_t k;
    } churn[] = {
        {"connections_opened_total", "Total number of connections opened", WR_CNT_CONNECTIONS_OPENED},
        {"connections_closed_total", "Total number of connections closed or terminated",
         WR_CNT_CONNECTIONS_CLOSED},
        {"channels_opened_total", "Total number of channels opened", WR_CNT_CHANNELS_OPENED},
        {"channels_closed_total", "Total number of channels closed", WR_CNT_CHANNELS_CLOSED},
        {"queues_declared_total", "Total number of queues declared", WR_CNT_QUEUES_DECLARED},
    };
    char name[96];

    for (size_t i = 0; i < sizeof(churn) / sizeof(churn[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", prefix, churn[i].name);
        put_one(out, name, "counter", churn[i].help, "", c ? (double)c->v[churn[i].k] : 0);
    }
}

/* Memory, descriptors, disk, uptime and the alarms, as RabbitMQ's node
 * metrics and alarm collector name them. */
static void process(const wr_metrics_rabbit_t *m, struct evbuffer *out)
{
    wr_alarm_status_t st = {0};
    struct rlimit fds;
    struct timespec now;

    if (m->env->alarms)
        wr_alarm_status(m->env->alarms, &st);
    clock_gettime(CLOCK_MONOTONIC, &now);
    put_one(out, "rabbitmq_process_open_fds", "gauge", "Open file descriptors", "", open_fds());
    put_one(out, "rabbitmq_process_max_fds", "gauge", "Open file descriptors limit", "",
            getrlimit(RLIMIT_NOFILE, &fds) == 0 ? (double)fds.rlim_cur : 0);
    put_one(out, "rabbitmq_process_resident_memory_bytes", "gauge", "Memory used in bytes", "",
            (double)wr_metrics_rss_bytes());
    put_one(out, "rabbitmq_resident_memory_limit_bytes", "gauge", "Memory high watermark in bytes", "",
            (double)st.mem_limit);
    put_one(out, "rabbitmq_disk_space_available_bytes", "gauge", "Disk space available in bytes", "",
            (double)st.disk_free);
    put_one(out, "rabbitmq_disk_space_available_limit_bytes", "gauge",
            "Free disk space low watermark in bytes", "", (double)st.disk_limit);
    put_one(out, "rabbitmq_erlang_uptime_seconds", "gauge", "Node uptime", "",
            (double)(now.tv_sec - m->started.tv_sec) + (double)(now.tv_nsec - m->started.tv_nsec) / 1e9);
    put_one(out, "rabbitmq_alarms_free_disk_space_watermark", "untyped",
            "is 1 if free disk space watermark alarm is in effect", "", st.disk);
    put_one(out, "rabbitmq_alarms_memory_used_watermark", "untyped",
            "is 1 if VM memory watermark alarm is in effect", "", st.memory);
}

#define AMQP091 "{protocol=\"amqp091\"}"
#define CLASSIC "{protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\"}"

static double counter(const wr_counters_t *k, wr_counter_t i)
{
    return k ? (double)k->v[i] : 0;
}

/* rabbit_global_counters: message flow of the whole node. */
static void global(const wr_metrics_rabbit_t *m, struct evbuffer *out)
{
    const wr_counters_t *k = m->env->counters;
    uint64_t returned = k ? k->v[WR_CNT_UNROUTABLE_RETURNED] : 0;
    wr_mgmt_counts_t c;
    char name[96];

    wr_mgmt_stats_node_counts(m->env, &c);
    const uint64_t *n = c.v;
    const struct {
        const char *name, *type, *help, *labels;
        double v;
    } fams[] = {
        {"messages_received_total", "counter", "Total number of messages received from publishers", AMQP091,
         (double)n[WR_MS_PUBLISH]},
        {"messages_received_confirm_total", "counter",
         "Total number of messages received from publishers expecting confirmations", AMQP091,
         counter(k, WR_CNT_RECEIVED_CONFIRM)},
        {"messages_routed_total", "counter", "Total number of messages routed to queues or streams", AMQP091,
         (double)(n[WR_MS_PUBLISH] - n[WR_MS_UNROUTABLE])},
        {"messages_unroutable_dropped_total", "counter",
         "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
         AMQP091, (double)(n[WR_MS_UNROUTABLE] >= returned ? n[WR_MS_UNROUTABLE] - returned : 0)},
        {"messages_unroutable_returned_total", "counter",
         "Total number of messages published as mandatory into an exchange and returned to the publisher as "
         "unroutable",
         AMQP091, (double)returned},
        {"messages_confirmed_total", "counter", "Total number of messages confirmed to publishers", AMQP091,
         counter(k, WR_CNT_CONFIRMED)},
        {"publishers", "gauge", "Current number of publishers", AMQP091, counter(k, WR_CNT_PUBLISHERS)},
        {"consumers", "gauge", "Current number of consumers", AMQP091, (double)count_consumers(m->env)},
        {"messages_delivered_total", "counter", "Total number of messages delivered to consumers", CLASSIC,
         (double)(n[WR_MS_DELIVER] + n[WR_MS_DELIVER_NO_ACK] + n[WR_MS_GET] + n[WR_MS_GET_NO_ACK])},
        {"messages_delivered_consume_manual_ack_total", "counter",
         "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
         CLASSIC, (double)n[WR_MS_DELIVER]},
        {"messages_delivered_consume_auto_ack_total", "counter",
         "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
         CLASSIC, (double)n[WR_MS_DELIVER_NO_ACK]},
        {"messages_delivered_get_manual_ack_total", "counter",
         "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
         CLASSIC, (double)n[WR_MS_GET]},
        {"messages_delivered_get_auto_ack_total", "counter",
         "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
         CLASSIC, (double)n[WR_MS_GET_NO_ACK]},
        {"messages_get_empty_total", "counter",
         "Total number of times basic.get operations fetched no message", CLASSIC,
         counter(k, WR_CNT_GET_EMPTY)},
        {"messages_redelivered_total", "counter", "Total number of messages redelivered to consumers",
         CLASSIC, (double)n[WR_MS_REDELIVER]},
        {"messages_acknowledged_total", "counter", "Total number of messages acknowledged by consumers",
         CLASSIC, (double)n[WR_MS_ACK]},
    };

    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        snprintf(name, sizeof(name), "rabbitmq_global_%s", fams[i].name);
        put_one(out, name, fams[i].type, fams[i].help, fams[i].labels, fams[i].v);
    }
}

/* rabbit_msg_size_metrics: sizes of published message bodies. */
static void sizes(const wr_counters_t *c, struct evbuffer *out)
{
    uint64_t cum = 0;

    put_family(out, "rabbitmq_message_size_bytes", "histogram", "Size of messages received from publishers");
    for (size_t i = 0; i <= WR_SIZE_BUCKETS; i++) {
        cum += c ? c->size_le[i] : 0;
        evbuffer_add_printf(out, "rabbitmq_message_size_bytes_bucket{protocol=\"amqp091\",le=\"%s\"} %llu\n",
                            i < WR_SIZE_BUCKETS ? wr_size_bucket_label[i] : "+Inf", (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "rabbitmq_message_size_bytes_sum{protocol=\"amqp091\"} %llu\n",
                        (unsigned long long)(c ? c->size_sum : 0));
    evbuffer_add_printf(out, "rabbitmq_message_size_bytes_count{protocol=\"amqp091\"} %llu\n",
                        (unsigned long long)cum);
}

/* A label value with \, " and newline escaped. */
static void put_label(struct evbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add_printf(out, "%s%c", *s == '\\' || *s == '"' ? "\\" : "", *s);
    }
}

/* One sample of a per-object family: name{channel="label"} v. */
static void put_object(struct evbuffer *out, const char *name, const char *label, double v)
{
    evbuffer_add_printf(out, "%s{channel=\"", name);
    put_label(out, label);
    evbuffer_add_printf(out, "\"} %.17g\n", v);
}

/* The connection families, in the order of their values in conn_value. */
static const struct {
    const char *name, *type, *help;
} conn_families[] = {
    {"rabbitmq_connection_incoming_bytes_total", "counter", "Total number of bytes received on a connection"},
    {"rabbitmq_connection_outgoing_bytes_total", "counter", "Total number of bytes sent on a connection"},
    {"rabbitmq_connection_channels", "gauge", "Channels on a connection"},
};

static double conn_value(const wr_conn_info_t *info, size_t family)
{
    return family == 0 ? (double)info->recv_oct : family == 1 ? (double)info->send_oct : info->channels;
}

static const struct {
    const char *name, *type, *help;
} channel_families[] = {
    {"rabbitmq_channel_consumers", "gauge", "Consumers on a channel"},
    {"rabbitmq_channel_messages_unacked", "gauge", "Delivered but not yet acknowledged messages"},
    {"rabbitmq_channel_prefetch", "gauge",
     "Total limit of unacknowledged messages for all consumers on a channel"},
};

static double channel_value(const wr_channel_info_t *info, size_t family)
{
    return family == 0   ? (double)info->consumers
           : family == 1 ? (double)info->unacked
                         : info->global_prefetch_count;
}

/* One family's samples for the channels of one connection. */
typedef struct {
    struct evbuffer *out;
    const wr_conn_t *conn;
    size_t family;
} channel_ctx_t;

static void put_channel(void *ud, const wr_channel_t *ch)
{
    channel_ctx_t *x = ud;
    wr_channel_info_t info;
    char name[300];

    wr_channel_info(ch, &info);
    /* The management API's channel name (mgmt_conns.c). */
    snprintf(name, sizeof(name), "%s (%u)", wr_conn_name(x->conn), info.number);
    put_object(x->out, channel_families[x->family].name, name, channel_value(&info, x->family));
}

void wr_metrics_rabbit_objects(const wr_mgmt_env_t *env, struct evbuffer *out)
{
    wr_conn_info_t info;
    wr_list_t *pos, *tmp;

    for (size_t f = 0; f < sizeof(conn_families) / sizeof(conn_families[0]); f++) {
        put_family(out, conn_families[f].name, conn_families[f].type, conn_families[f].help);
        wr_list_foreach_safe(pos, tmp, env->conns)
        {
            wr_conn_info(wr_conn_from_link(pos), &info);
            if (info.open)
                put_object(out, conn_families[f].name, wr_conn_name(wr_conn_from_link(pos)),
                           conn_value(&info, f));
        }
    }
    for (size_t f = 0; f < sizeof(channel_families) / sizeof(channel_families[0]); f++) {
        channel_ctx_t x = {out, NULL, f};

        put_family(out, channel_families[f].name, channel_families[f].type, channel_families[f].help);
        wr_list_foreach_safe(pos, tmp, env->conns)
        {
            x.conn = wr_conn_from_link(pos);
            wr_conn_info(x.conn, &info);
            if (info.open)
                wr_conn_foreach_channel(x.conn, put_channel, &x);
        }
    }
}

void wr_metrics_rabbit_node(const wr_metrics_rabbit_t *m, const char *endpoint, struct evbuffer *out)
{
    totals(m, out);
    wr_metrics_rabbit_churn(m->env->counters, out, "rabbitmq_");
    process(m, out);
    global(m, out);
    sizes(m->env->counters, out);
    wr_metrics_rabbit_identity(m->node, m->cluster, endpoint, out);
}
