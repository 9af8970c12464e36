/* SPDX-License-Identifier: MIT */
/*
 * Reads a process's resident set size from /proc/PID/status. The file is
 * small and re-read on every sample; a sample costs one open and one read.
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

int wr_rss_read(pid_t pid, uint64_t *rss_kib, uint64_t *hwm_kib)
{
    char path[64];
    char text[4096];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return WR_EIO;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int saved = errno;
    close(fd);
    if (n <= 0) {
        errno = n < 0 ? saved : ENODATA;
        return WR_EIO;
    }
    text[n] = '\0';
    if (field_kib(text, "\nVmRSS:", rss_kib) != WR_OK || field_kib(text, "\nVmHWM:", hwm_kib) != WR_OK) {
        errno = ENODATA;
        return WR_EIO;
    }
    return WR_OK;
}
