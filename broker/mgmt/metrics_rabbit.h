/* SPDX-License-Identifier: MIT */
/*
 * The node's Prometheus series under rabbitmq_prometheus's names
 * (metrics_rabbit.c), written by metrics.c on each of its endpoints.
 */
#ifndef WR_BROKER_METRICS_RABBIT_H
#define WR_BROKER_METRICS_RABBIT_H

#include <time.h>

#include <event2/buffer.h>

#include "broker/base/counters.h"
#include "broker/mgmt/mgmt_env.h"
#include "broker/mgmt/mgmt_stats.h"

/* What the node series are computed from; borrowed from metrics.c. */
typedef struct {
    const wr_mgmt_env_t *env;
    const char *node;        /* rabbitmq_node: the cluster's node name (n1), else "warren@host" */
    const char *cluster;     /* rabbitmq_cluster: cluster.name, else the node's name */
    struct timespec started; /* CLOCK_MONOTONIC, for rabbitmq_erlang_uptime_seconds */
} wr_metrics_rabbit_t;

/* Appends the node families (totals, churn, process, alarms, global
 * counters, message sizes) and identity/build info naming `endpoint`
 * ("aggregated", "per-object"). */
void wr_metrics_rabbit_node(const wr_metrics_rabbit_t *m, const char *endpoint, struct evbuffer *out);

/* Appends rabbitmq_build_info and rabbitmq_identity_info for `endpoint`. */
void wr_metrics_rabbit_identity(const char *node, const char *cluster, const char *endpoint,
                                struct evbuffer *out);

/*
 * Appends /metrics/per-object's connection and channel families
 * (rabbitmq_connection_incoming_bytes_total, _outgoing_bytes_total,
 * rabbitmq_connection_channels; rabbitmq_channel_consumers,
 * _messages_unacked, _prefetch), one sample per open connection or
 * channel. The label is `channel` for both, as rabbitmq_prometheus names
 * it, holding the management API's name of the object (RabbitMQ's holds an
 * Erlang pid).
 */
void wr_metrics_rabbit_objects(const wr_mgmt_env_t *env, struct evbuffer *out);

/* Appends connection_churn_metrics with names `prefix` + "connections_opened_total"...;
 * c may be NULL (all zero). */
void wr_metrics_rabbit_churn(const wr_counters_t *c, struct evbuffer *out, const char *prefix);

#endif
