/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per event:
 * "2026-11-21T22:45:45.123Z [info] connection accepted: 127.0.0.1:5555".
 * The level is set once at start-up from the config; with log.file, stderr
 * is that file, reopened on SIGHUP.
 */
#ifndef WR_BROKER_LOG_H
#define WR_BROKER_LOG_H

#include <stdbool.h>
#include <time.h>

enum { WR_LOG_DEBUG = 0, WR_LOG_INFO = 1, WR_LOG_WARNING = 2, WR_LOG_ERROR = 3 };

void wr_log_set_level(int level);
/* "debug", "info", "warning", "error" -> level; -1 for anything else. */
int wr_log_level_parse(const char *name);
/* Makes stderr, and so the log, the file at path, opened for appending and
 * created (mode 0640) if missing; called again after the file was renamed
 * (log rotation), it starts a new one. WR_OK, or WR_EIO with errno set and
 * stderr unchanged. */
int wr_log_set_file(const char *path);
void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line that can repeat many times a second (a failing accept(), a flood
 * of clients cut off): its caller keeps one of these, zeroed at first. */
typedef struct {
    struct timespec next; /* CLOCK_MONOTONIC: no line before this */
    unsigned long suppressed;
} wr_log_limit_t;

/*
 * Whether a line limited by lim may be written now: at most one per
 * interval_ms. True sets *suppressed to the lines refused since the last
 * one, for the caller to mention; false counts this one as refused.
 */
bool wr_log_limit_pass(wr_log_limit_t *lim, long interval_ms, unsigned long *suppressed);

#define wr_log_debug(...) wr_log(WR_LOG_DEBUG, __VA_ARGS__)
#define wr_log_info(...)  wr_log(WR_LOG_INFO, __VA_ARGS__)
#define wr_log_warn(...)  wr_log(WR_LOG_WARNING, __VA_ARGS__)
#define wr_log_error(...) wr_log(WR_LOG_ERROR, __VA_ARGS__)

#endif
