/* SPDX-License-Identifier: MIT */
/*
 * One warren-perf run: declare the topology, connect producers and consumers,
 * drive the load through its phases, tear the topology down again, and keep
 * the counts, timings and histograms the report is made from.
 */
#ifndef WR_PERF_RUN_H
#define WR_PERF_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "opts.h"

typedef struct {
    uint64_t published;
    uint64_t confirmed;
    uint64_t nacked;
    uint64_t consumed;
    /* Each rate's interval: from the start of its phase to its last event
     * (count-limited runs) or to the end of the run (time-limited runs). */
    double publish_secs;
    double confirm_secs;
    double consume_secs;
    uint32_t blocked;                 /* connection.blocked notifications */
    bool interrupted;                 /* stopped early by SIGINT/SIGTERM */
    const wr_hist_t *latency;         /* publish to delivery, ns */
    const wr_hist_t *confirm_latency; /* publish to confirm, ns */

    bool have_rss; /* --pid was given */
    uint64_t rss_start_kib;
    uint64_t rss_peak_kib; /* highest VmRSS sampled during the run */
    uint64_t rss_end_kib;
    uint64_t hwm_kib; /* VmHWM at the end: peak since the broker started */

    /* --pid: the broker's CPU time from the start of the run to its stop,
     * and the messages it is divided by: deliveries when there are
     * consumers, else confirms, else publishes. */
    bool have_cpu;
    uint64_t cpu_user_ns;
    uint64_t cpu_sys_ns;
    uint64_t cpu_messages;

    uint32_t idle_conns; /* --connections-idle: connections opened */
    uint64_t idle_rss_before_kib;
    uint64_t idle_rss_after_kib;
} wr_result_t;

typedef struct wr_run_s wr_run_t;

/* Resolves the broker's address. o must outlive the run. NULL after printing
 * why on stderr. */
wr_run_t *wr_run_new(const wr_opts_t *o);
void wr_run_free(wr_run_t *r); /* NULL is a no-op */

/* Runs to the end. WR_OK, or WR_EIO after printing the error (a refused
 * connection, a broker error reply, a phase that timed out). */
int wr_run_exec(wr_run_t *r);

/* Valid after wr_run_exec returned WR_OK; borrowed from the run. */
const wr_result_t *wr_run_result(const wr_run_t *r);

#endif
