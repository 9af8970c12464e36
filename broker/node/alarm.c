/* SPDX-License-Identifier: MIT */
/*
 * The memory and disk alarms and storage credit flow. A timer samples the
 * process's RSS every 100 ms (as RabbitMQ's default `rss` strategy) and the
 * free space under data_dir every 100 ms to 1 s (sooner the closer it is to
 * the limit, as rabbit_disk_monitor); a change of the reasons to hold
 * publishers is logged and pushed to every connection (wr_conn_throttle).
 * glibc keeps freed memory in its arenas, so near the watermark the sampler
 * hands free pages back (malloc_trim) for the RSS to fall as queues drain.
 */
#include "broker/node/alarm.h"

#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker/node/durable.h"
#include "broker/base/log.h"

/* How often the RSS is read; the disk, between these two depending on how
 * close it is to the limit. */
#define SAMPLE_MS   100
#define DISK_MAX_MS 1000
/* rabbit_disk_monitor's FAST_RATE: the next disk sample comes before a disk
 * filling this fast (bytes/s) could cross the limit. */
#define DISK_FAST_RATE 250000000ull
/* Above this share of the watermark (in percent) the sampler trims the heap
 * before it decides: at most once a second, or every sample while alarmed. */
#define TRIM_PERCENT 90
#define TRIM_MS      1000

struct wr_alarms_s {
    wr_durable_t *durable;
    uint64_t (*link_bytes)(void *ud); /* bytes waiting for peer links (wr_alarms_link_backlog) */
    void *link_ud;
    uint64_t link_limit;
    void (*changed)(void *ud); /* the reasons to hold publishers changed */
    void *ud;
    const char *data_dir; /* the configuration's: the disk alarm watches it */
    struct event *timer;
    int statm; /* /proc/self/statm, kept open and re-read with pread */
    long page_size;
    char node[160]; /* "warren@host", as RabbitMQ names its node in these lines */
    wr_alarm_status_t st;
    bool disk_known;   /* a disk sample succeeded: until then no disk alarm */
    uint64_t disk_due; /* ms (monotonic) of the next disk sample */
    uint64_t trimmed;  /* ms of the last malloc_trim */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- measuring ------------------------------------------------------------ */

static uint64_t read_rss(const wr_alarms_t *a)
{
    char buf[128];
    unsigned long long size, resident;
    ssize_t n = a->statm >= 0 ? pread(a->statm, buf, sizeof(buf) - 1, 0) : -1;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)a->page_size;
}

/* A number from a one-line file; false for "max", absent or unreadable files. */
static bool read_u64_file(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    unsigned long long v;
    bool ok;

    if (!f)
        return false;
    ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok)
        *out = (uint64_t)v;
    return ok;
}

/*
 * The memory limit of the process's cgroup: v2's memory.max, or v1's
 * memory.limit_in_bytes (a huge number when unlimited); 0 when none is found.
 */
static uint64_t cgroup_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024], path[1200];
    uint64_t limit = 0, v;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char *nl = strchr(line, '\n');

        if (nl)
            *nl = '\0';
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", line + 3);
            if (read_u64_file(path, &v) && (limit == 0 || v < limit))
                limit = v;
        } else if (strstr(line, ":memory:")) {
            snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                     strstr(line, ":memory:") + 8);
            if (read_u64_file(path, &v) && (limit == 0 || v < limit))
                limit = v;
        }
    }
    fclose(f);
    return limit;
}

/* RAM, or the cgroup's limit when that is lower. */
static uint64_t total_memory(void)
{
    struct sysinfo si;
    uint64_t ram = 0, cg = cgroup_limit();

    if (sysinfo(&si) == 0)
        ram = (uint64_t)si.totalram * si.mem_unit;
    if (cg > 0 && (ram == 0 || cg < ram))
        return cg;
    return ram;
}

/* Bytes available to an unprivileged writer under dir; false if statvfs fails. */
static bool disk_free(const char *dir, uint64_t *out)
{
    struct statvfs sv;

    if (statvfs(dir, &sv) != 0)
        return false;
    *out = (uint64_t)sv.f_bavail * sv.f_frsize;
    return true;
}

/* --- raising and clearing --------------------------------------------------- */

static unsigned resource_reasons(const wr_alarms_t *a)
{
    return (a->st.memory || a->st.remote_memory ? WR_ALARM_MEMORY : 0) |
           (a->st.disk || a->st.remote_disk ? WR_ALARM_DISK : 0);
}

/* Every publisher looks at the reasons again (after a change). */
static void throttle_all(wr_alarms_t *a)
{
    a->changed(a->ud);
}

/* The log lines of RabbitMQ's rabbit_alarm, with the figures. */
static void log_alarm(const wr_alarms_t *a, bool on, const char *resource, const char *measure,
                      uint64_t value, const char *bound, uint64_t limit)
{
    wr_log_warn("%s resource limit alarm %s on node %s: %s %" PRIu64 " bytes, %s %" PRIu64 "%s", resource,
                on ? "set" : "cleared", a->node, measure, value, bound, limit,
                on ? "; publishers will be blocked until this alarm clears" : "");
}

static void set_memory_alarm(wr_alarms_t *a, bool on)
{
    a->st.memory = on;
    log_alarm(a, on, "memory", "memory used", a->st.mem_used, "allowed", a->st.mem_limit);
    /* Under the alarm new messages go to the queues' logs, not to memory. */
    wr_durable_low_memory(a->durable, on);
}

static void set_disk_alarm(wr_alarms_t *a, bool on)
{
    a->st.disk = on;
    log_alarm(a, on, "disk", "free disk space", a->st.disk_free, "limit", a->st.disk_limit);
}

/* The RSS, after handing free heap pages back when it is close to the
 * watermark: glibc does not return memory freed inside its arenas by
 * itself, and an RSS that never falls would never clear the alarm. */
static void sample_memory(wr_alarms_t *a, uint64_t now)
{
    uint64_t rss = read_rss(a);

    if (rss >= a->st.mem_limit / 100 * TRIM_PERCENT && (a->st.memory || now - a->trimmed >= TRIM_MS)) {
        malloc_trim(0);
        a->trimmed = now;
        rss = read_rss(a);
    }
    a->st.rss = rss;
    a->st.mem_used = rss;
}

static void sample_disk(wr_alarms_t *a, uint64_t now)
{
    uint64_t free_bytes, ideal;

    if (now < a->disk_due)
        return;
    a->disk_due = now + DISK_MAX_MS;
    /* A failed sample changes nothing: RabbitMQ too keeps its last state. */
    if (!disk_free(a->data_dir, &free_bytes))
        return;
    a->disk_known = true;
    a->st.disk_free = free_bytes;
    /* Twice the time a fast writer needs to eat the margin, as RabbitMQ. */
    if (!a->st.disk && free_bytes > a->st.disk_limit) {
        ideal = 2 * 1000 * (free_bytes - a->st.disk_limit) / DISK_FAST_RATE;
        if (ideal < DISK_MAX_MS)
            a->disk_due = now + (ideal < SAMPLE_MS ? SAMPLE_MS : ideal);
    }
}

/* One sampling round: measure, then raise or clear what changed. */
static void alarms_sample(wr_alarms_t *a)
{
    uint64_t now = now_ms();
    unsigned before = resource_reasons(a);
    bool mem, disk;

    sample_memory(a, now);
    sample_disk(a, now);
    mem = a->st.mem_used > a->st.mem_limit;
    disk = a->disk_known && a->st.disk_free < a->st.disk_limit;
    if (mem != a->st.memory)
        set_memory_alarm(a, mem);
    if (disk != a->st.disk)
        set_disk_alarm(a, disk);
    /* A timer tick also ends flow that no storage batch reported. */
    if (a->st.flow && wr_durable_pending_bytes(a->durable) <= a->st.storage_limit / 2)
        a->st.flow = false;
    else if (before == resource_reasons(a))
        return;
    throttle_all(a);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    alarms_sample(arg);
}

/* --- the interface ------------------------------------------------------------ */

wr_alarms_t *wr_alarms_new(const wr_config_t *cfg, struct event_base *base, wr_durable_t *durable,
                           void (*changed)(void *ud), void *ud)
{
    struct timeval tv = {0, SAMPLE_MS * 1000};
    wr_alarms_t *a = calloc(1, sizeof(*a));
    char host[128] = "localhost";

    if (!a) {
        wr_log_error("out of memory creating the flow alarms");
        return NULL;
    }
    a->durable = durable;
    a->changed = changed;
    a->ud = ud;
    a->data_dir = cfg->data_dir;
    a->page_size = sysconf(_SC_PAGESIZE);
    a->statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (a->statm < 0)
        wr_log_warn("cannot open /proc/self/statm: the memory alarm is disabled");
    gethostname(host, sizeof(host) - 1);
    snprintf(a->node, sizeof(a->node), "warren@%s", host);
    a->st.mem_total = total_memory();
    a->st.mem_limit = cfg->memory_high_watermark_bytes > 0
                          ? cfg->memory_high_watermark_bytes
                          : (uint64_t)(cfg->memory_high_watermark * (double)a->st.mem_total);
    /* Without a readable RSS, or a RAM size for a relative watermark,
     * nothing is measured against it. A watermark of 0 blocks every publisher. */
    if (a->statm < 0 || (cfg->memory_high_watermark_bytes == 0 && a->st.mem_total == 0))
        a->st.mem_limit = UINT64_MAX;
    a->st.disk_limit = cfg->disk_free_limit_relative > 0
                           ? (uint64_t)(cfg->disk_free_limit_relative * (double)a->st.mem_total)
                           : cfg->disk_free_limit_bytes;
    a->st.storage_limit = cfg->flow_storage_pending_bytes;
    wr_log_info("memory high watermark set to %" PRIu64 " MiB (%" PRIu64 " bytes) of %" PRIu64
                " MiB (%" PRIu64 " bytes) total",
                a->st.mem_limit >> 20, a->st.mem_limit, a->st.mem_total >> 20, a->st.mem_total);
    wr_log_info("disk free limit set to %" PRIu64 " MB", a->st.disk_limit / 1000000);
    a->timer = event_new(base, -1, EV_PERSIST, on_timer, a);
    if (!a->timer || event_add(a->timer, &tv) != 0) {
        wr_log_error("out of memory creating the flow alarms");
        wr_alarms_free(a);
        return NULL;
    }
    alarms_sample(a);
    return a;
}

void wr_alarms_free(wr_alarms_t *a)
{
    if (!a)
        return;
    if (a->timer)
        event_free(a->timer);
    if (a->statm >= 0)
        close(a->statm);
    free(a);
}

void wr_alarm_status(const wr_alarms_t *a, wr_alarm_status_t *out)
{
    *out = a->st;
    out->storage_pending = wr_durable_pending_bytes(a->durable);
}

bool wr_alarm_blocking(const wr_alarms_t *a)
{
    return resource_reasons(a) != 0;
}

void wr_alarms_set_remote(wr_alarms_t *a, bool memory, bool disk)
{
    unsigned before = resource_reasons(a);

    if (memory != a->st.remote_memory || disk != a->st.remote_disk)
        wr_log_warn("resource alarms on other nodes: memory %s, disk %s", memory ? "raised" : "clear",
                    disk ? "raised" : "clear");
    a->st.remote_memory = memory;
    a->st.remote_disk = disk;
    if (before != resource_reasons(a))
        throttle_all(a);
}

/* Bytes waiting for the peer links (0 without the hook). */
static uint64_t link_pending(const wr_alarms_t *a)
{
    return a->link_bytes ? a->link_bytes(a->link_ud) : 0;
}

/* A backlog over its limit: storage thread or peer links. Only asked while flow is off. */
static bool backlog_over(const wr_alarms_t *a)
{
    return (a->st.storage_limit > 0 && wr_durable_pending_bytes(a->durable) > a->st.storage_limit) ||
           (a->link_bytes && link_pending(a) > a->link_limit);
}

unsigned wr_alarm_reasons(wr_alarms_t *a)
{
    if (!a->st.flow && backlog_over(a)) {
        a->st.flow = true;
        a->st.flow_started++;
    }
    return resource_reasons(a) | (a->st.flow ? WR_ALARM_FLOW : 0);
}

void wr_alarms_link_backlog(wr_alarms_t *a, uint64_t (*bytes)(void *ud), void *ud, uint64_t limit)
{
    a->link_bytes = bytes;
    a->link_ud = ud;
    a->link_limit = limit;
}

void wr_alarms_storage_progress(wr_alarms_t *a)
{
    if (!a || !a->st.flow || wr_durable_pending_bytes(a->durable) > a->st.storage_limit / 2 ||
        link_pending(a) > a->link_limit / 2)
        return;
    a->st.flow = false;
    throttle_all(a);
}
