/* SPDX-License-Identifier: MIT */
/*
 * The broker's memory as the kernel sees it: VmRSS (resident now) and VmHWM
 * (resident peak since the process started) from /proc/PID/status. Works for
 * any broker process, which is what makes warren and RabbitMQ comparable.
 */
#ifndef WR_PERF_RSS_H
#define WR_PERF_RSS_H

#include <stdint.h>
#include <sys/types.h>

/* Fills both values in KiB. WR_OK, or WR_EIO when the process is gone or
 * the file lacks the fields (errno says why for the former). */
int wr_rss_read(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib);

#endif
