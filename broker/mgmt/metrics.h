/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint: GET /metrics on its own HTTP listener, in the
 * text exposition format 0.0.4, with warren_* names: connections, channels,
 * resident memory, the flow alarms, per-queue depth, consumers, message
 * counters and rates.
 */
#ifndef WR_BROKER_METRICS_H
#define WR_BROKER_METRICS_H

#include <stdint.h>

#include "broker/config/config.h"
#include "broker/mgmt/mgmt_stats.h"
#include "broker/mgmt/mgmt_env.h"

typedef struct wr_metrics_s wr_metrics_t;

/* Listens on l (logged). NULL when it cannot (logged). stats must outlive it. */
wr_metrics_t *wr_metrics_new(const wr_mgmt_env_t *env, const wr_mgmt_stats_t *stats,
                             const wr_listener_cfg_t *l);
void wr_metrics_free(wr_metrics_t *m); /* NULL is a no-op */
/* The process's resident set size (VmRSS), 0 when unknown. */
uint64_t wr_metrics_rss_bytes(void);

#endif
