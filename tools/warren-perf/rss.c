/* SPDX-License-Identifier: MIT */
/*
 * Reads a process's resident set size from /proc/PID/status and its CPU
 * time from /proc/PID/stat. The files are small and re-read on every
 * sample; a sample costs one open and one read.
 */
#include "rss.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"

/* Finds "Name:   1234 kB" in text and parses the number. */
static int field_kib(const char *text, const char *name, uint64_t *out)
{
    const char *p = strstr(text, name);
    if (!p)
        return WR_EIO;
    p += strlen(name);
    if (sscanf(p, "%" SCNu64, out) != 1)
        return WR_EIO;
    return WR_OK;
}

/* The whole of a small /proc file, NUL-terminated; WR_EIO when unreadable. */
static int read_proc(pid_t pid, const char *name, char *text, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return WR_EIO;
    ssize_t got = read(fd, text, n - 1);
    int saved = errno;
    close(fd);
    if (got <= 0) {
        errno = got < 0 ? saved : ENODATA;
        return WR_EIO;
    }
    text[got] = '\0';
    return WR_OK;
}

int wr_cpu_read(pid_t pid, uint64_t *user_ns, uint64_t *sys_ns)
{
    char text[1024];
    unsigned long long ut, st;
    long hz = sysconf(_SC_CLK_TCK);
    if (read_proc(pid, "stat", text, sizeof(text)) != WR_OK)
        return WR_EIO;
    /* The command name may hold spaces and parentheses: fields are counted
     * from the last ')'. utime and stime are fields 14 and 15 of the line,
     * the 12th and 13th after the name. */
    const char *p = strrchr(text, ')');
    if (!p || hz <= 0 ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        errno = ENODATA;
        return WR_EIO;
    }
    *user_ns = (uint64_t)ut * 1000000000ull / (uint64_t)hz;
    *sys_ns = (uint64_t)st * 1000000000ull / (uint64_t)hz;
    return WR_OK;
}

int wr_rss_read(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib)
{
    char text[4096];
    if (read_proc(pid, "status", text, sizeof(text)) != WR_OK)
        return WR_EIO;
    if (field_kib(text, "\nVmRSS:", rss_kib) != WR_OK || field_kib(text, "\nVmHWM:", hwm_kib) != WR_OK) {
        errno = ENODATA;
        return WR_EIO;
    }
    return WR_OK;
}
