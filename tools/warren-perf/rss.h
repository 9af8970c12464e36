/* SPDX-License-Identifier: MIT */
/*
 * The broker's memory and CPU as the kernel sees them: VmRSS (resident now)
 * and VmHWM (resident peak since the process started) from /proc/PID/status,
 * user and system time from /proc/PID/stat. Works for any broker process,
 * which is what makes warren and RabbitMQ comparable.
 */
#ifndef WR_PERF_RSS_H
#define WR_PERF_RSS_H

#include <stdint.h>
#include <sys/types.h>

/* Fills both values in KiB. WR_OK, or WR_EIO when the process is gone or
 * the file lacks the fields (errno says why for the former). */
int wr_rss_read(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib);

/* The CPU time all of the process's threads have used so far, user and
 * system apart, in ns (the kernel counts in clock ticks: 10 ms at 100 Hz).
 * WR_OK, or WR_EIO when the process is gone or the line does not parse. */
int wr_cpu_read(pid_t pid, uint64_t *user_ns, uint64_t *sys_ns);

#endif
