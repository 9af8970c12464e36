/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr: one line per event with an ISO-8601 UTC timestamp in
 * milliseconds and the level. Each line is written with a single stdio call
 * so lines from one process never interleave. With log.file, stderr itself
 * is that file, (re)opened by wr_log_set_file.
 */
#include "broker/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/status.h"

/* Set once at start-up from the config, before the loop runs. */
static int log_level = WR_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void wr_log_set_level(int level)
{
    if (level >= WR_LOG_DEBUG && level <= WR_LOG_ERROR)
        log_level = level;
}

int wr_log_level_parse(const char *name)
{
    for (int i = WR_LOG_DEBUG; i <= WR_LOG_ERROR; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    return -1;
}

void wr_log(int level, const char *fmt, ...)
{
    char msg[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level < log_level || level > WR_LOG_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", stamp, ts.tv_nsec / 1000000, level_names[level], msg);
}

bool wr_log_limit_pass(wr_log_limit_t *lim, long interval_ms, unsigned long *suppressed)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < lim->next.tv_sec ||
        (now.tv_sec == lim->next.tv_sec && now.tv_nsec < lim->next.tv_nsec)) {
        lim->suppressed++;
        return false;
    }
    *suppressed = lim->suppressed;
    lim->suppressed = 0;
    lim->next.tv_sec = now.tv_sec + interval_ms / 1000;
    lim->next.tv_nsec = now.tv_nsec + (interval_ms % 1000) * 1000000;
    if (lim->next.tv_nsec >= 1000000000) {
        lim->next.tv_sec++;
        lim->next.tv_nsec -= 1000000000;
    }
    return true;
}

/* Replacing descriptor 2 rather than keeping a FILE of our own means no
 * state here, and whatever else writes to stderr (libraries, sanitizers)
 * lands in the same file. */
int wr_log_set_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    int saved;

    if (fd < 0)
        return WR_EIO;
    if (dup2(fd, STDERR_FILENO) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return WR_EIO;
    }
    close(fd);
    return WR_OK;
}
