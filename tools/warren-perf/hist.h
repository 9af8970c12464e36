/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram with log-linear buckets (the HDR histogram idea): exact
 * below 256, then 128 linear sub-buckets per power of two, so every recorded
 * value is known to within 1/128 (< 0.8%) with a fixed 58 KiB of counters.
 */
#ifndef WR_PERF_HIST_H
#define WR_PERF_HIST_H

#include <stdint.h>

typedef struct wr_hist_s wr_hist_t;

/* Returns an empty histogram, or NULL on allocation failure. */
wr_hist_t *wr_hist_new(void);
void wr_hist_free(wr_hist_t *h); /* NULL is a no-op */

void wr_hist_record(wr_hist_t *h, uint64_t v);

uint64_t wr_hist_count(const wr_hist_t *h);
uint64_t wr_hist_min(const wr_hist_t *h); /* 0 when empty */
uint64_t wr_hist_max(const wr_hist_t *h); /* exact, 0 when empty */
double wr_hist_mean(const wr_hist_t *h);  /* exact, 0 when empty */
/*
 * The value at percentile pct (0 < pct <= 100): the highest value that falls
 * in the same bucket as the pct-th recorded value, capped at the exact
 * maximum. 0 when empty.
 */
uint64_t wr_hist_percentile(const wr_hist_t *h, double pct);

#endif
