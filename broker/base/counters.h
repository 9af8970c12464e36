/* SPDX-License-Identifier: MIT */
/*
 * Node-wide event counters for Prometheus (RabbitMQ's connection churn and
 * global counters): connections and channels opened and closed, queues
 * declared, confirms, returns, empty gets, publishers, message sizes. One
 * instance lives in the server; connections and channels bump it through
 * their env. Header only: plain integers, no locking (one event loop).
 */
#ifndef WR_BROKER_COUNTERS_H
#define WR_BROKER_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WR_CNT_CONNECTIONS_OPENED, /* past connection.open */
    WR_CNT_CONNECTIONS_CLOSED, /* of those, closed */
    WR_CNT_CHANNELS_OPENED,
    WR_CNT_CHANNELS_CLOSED,
    WR_CNT_QUEUES_DECLARED,     /* queue.declare permitted (not passive), as RabbitMQ counts it */
    WR_CNT_RECEIVED_CONFIRM,    /* publishes on channels in confirm mode */
    WR_CNT_CONFIRMED,           /* publishes confirmed (basic.ack) */
    WR_CNT_UNROUTABLE_RETURNED, /* mandatory and unroutable: basic.return */
    WR_CNT_GET_EMPTY,           /* basic.get-empty sent */
    WR_CNT_PUBLISHERS,          /* gauge: open channels that have published */
    WR_CNT_COUNT
} wr_counter_t;

/* RabbitMQ's message size histogram bounds (bytes; rabbit_msg_size_metrics),
 * +Inf excluded, and their `le` labels as Prometheus writes them. */
#define WR_SIZE_BUCKETS 8
static const uint64_t wr_size_bucket_le[WR_SIZE_BUCKETS] = {100,     1000,     10000,    100000,
                                                            1000000, 10000000, 50000000, 100000000};
static const char *const wr_size_bucket_label[WR_SIZE_BUCKETS] = {"100.0", "1000.0", "10000.0", "100000.0",
                                                                  "1e+06", "1e+07",  "5e+07",   "1e+08"};

typedef struct {
    uint64_t v[WR_CNT_COUNT];
    uint64_t size_le[WR_SIZE_BUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
    uint64_t size_sum;
} wr_counters_t;

/* Adds n to counter k; c may be NULL (a module built without the server). */
static inline void wr_counters_add(wr_counters_t *c, wr_counter_t k, uint64_t n)
{
    if (c)
        c->v[k] += n;
}

/* Takes n from gauge k; c may be NULL. */
static inline void wr_counters_sub(wr_counters_t *c, wr_counter_t k, uint64_t n)
{
    if (c)
        c->v[k] -= n;
}

/* Counts a published message of `bytes` in the size histogram. */
static inline void wr_counters_size(wr_counters_t *c, uint64_t bytes)
{
    size_t i = 0;

    if (!c)
        return;
    while (i < WR_SIZE_BUCKETS && bytes > wr_size_bucket_le[i])
        i++;
    c->size_le[i]++;
    c->size_sum += bytes;
}

#endif
