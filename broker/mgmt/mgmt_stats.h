/* SPDX-License-Identifier: MIT */
/*
 * Message counters and their rates for the management API and the Prometheus
 * endpoint. Counters are read from the queues and vhosts when asked; rates
 * come from a sampler that snapshots them every collect_statistics_interval:
 * a rate is the change between the last two snapshots, per second.
 */
#ifndef WR_BROKER_MGMT_STATS_H
#define WR_BROKER_MGMT_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/queue/queue.h"
#include "broker/mgmt/mgmt_env.h"
#include "broker/vhost/vhost.h"

/* The counters, in the order their names are listed (wr_mgmt_stats_name). */
enum {
    WR_MS_PUBLISH,        /* queue: enqueued; vhost and node: published to an exchange */
    WR_MS_DELIVER,        /* to consumers that acknowledge */
    WR_MS_DELIVER_NO_ACK, /* to no-ack consumers */
    WR_MS_GET,            /* basic.get with acknowledgement */
    WR_MS_GET_NO_ACK,     /* basic.get without */
    WR_MS_REDELIVER,      /* deliveries and gets of redelivered messages */
    WR_MS_ACK,            /* acknowledged deliveries */
    WR_MS_UNROUTABLE,     /* vhost and node: published but routed to no queue */
    WR_MS_READY,          /* gauge: messages ready */
    WR_MS_UNACKED,        /* gauge: deliveries awaiting ack */
    /* Node only (the overview's message_stats and churn_rates). */
    WR_MS_CONFIRM,           /* publishes confirmed */
    WR_MS_GET_EMPTY,         /* basic.get-empty sent */
    WR_MS_RETURN_UNROUTABLE, /* unroutable mandatory publishes returned */
    WR_MS_DROP_UNROUTABLE,   /* unroutable publishes dropped */
    WR_MS_CONNECTION_CREATED,
    WR_MS_CONNECTION_CLOSED,
    WR_MS_CHANNEL_CREATED,
    WR_MS_CHANNEL_CLOSED,
    WR_MS_QUEUE_CREATED,
    WR_MS_QUEUE_DECLARED,
    WR_MS_QUEUE_DELETED,
    WR_MS_COUNT
};

typedef struct {
    uint64_t v[WR_MS_COUNT];
} wr_mgmt_counts_t;

/* Per second: the counters' rates, the gauges' change. */
typedef struct {
    double v[WR_MS_COUNT];
} wr_mgmt_rates_t;

typedef struct wr_mgmt_stats_s wr_mgmt_stats_t;

/* "publish", "deliver", ... as RabbitMQ's message_stats names them. */
const char *wr_mgmt_stats_name(int counter);

void wr_mgmt_stats_queue_counts(const wr_queue_t *q, wr_mgmt_counts_t *out);
void wr_mgmt_stats_vhost_counts(const wr_vhost_t *vh, wr_mgmt_counts_t *out);
void wr_mgmt_stats_node_counts(const wr_mgmt_env_t *env, wr_mgmt_counts_t *out);

/* Starts sampling every interval_ms on env's loop. NULL on ENOMEM. */
wr_mgmt_stats_t *wr_mgmt_stats_new(const wr_mgmt_env_t *env, uint32_t interval_ms);
/* Stops the timer and drops the sampler's queue references; call before
 * the vhosts are freed. NULL is a no-op. */
void wr_mgmt_stats_free(wr_mgmt_stats_t *s);
/* Rates over the last interval; all zero until two samples exist. */
void wr_mgmt_stats_queue_rates(const wr_mgmt_stats_t *s, const wr_queue_t *q, wr_mgmt_rates_t *out);
void wr_mgmt_stats_vhost_rates(const wr_mgmt_stats_t *s, const wr_vhost_t *vh, wr_mgmt_rates_t *out);
void wr_mgmt_stats_node_rates(const wr_mgmt_stats_t *s, wr_mgmt_rates_t *out);

/* What the sampler saw of a queue's activity, for RabbitMQ's idle_since and
 * consumer_utilisation. */
typedef struct {
    bool sampled;       /* false until the sampler has seen the queue (then the rest is zero) */
    bool idle;          /* the last interval saw no publish, delivery, get or ack */
    double idle_since;  /* wall-clock seconds (Unix time) of the last activity seen, or of the first sample */
    double utilisation; /* share of the last samples in which a consumer could take a delivery */
} wr_mgmt_activity_t;

void wr_mgmt_stats_queue_activity(const wr_mgmt_stats_t *s, const wr_queue_t *q, wr_mgmt_activity_t *out);

#endif
