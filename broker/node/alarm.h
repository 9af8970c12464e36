/* SPDX-License-Identifier: MIT */
/*
 * Flow alarms and publisher backpressure (docs/FLOW.md). The memory alarm
 * compares the broker's resident memory with the high watermark (relative to
 * RAM or the cgroup limit, or absolute); the disk alarm compares free space
 * under data_dir with the disk free limit. While either is raised, every
 * connection that publishes is blocked: its reads stop and, when it
 * advertised the capability, it is told connection.blocked with the reason;
 * consumers keep draining. Cleared alarms unblock (connection.unblocked).
 * Separately, a publishing connection's reads stop while the storage thread
 * has more than flow_storage_pending_bytes waiting, or the peer links more
 * than their limit of forwarded publishes (credit flow).
 */
#ifndef WR_BROKER_ALARM_H
#define WR_BROKER_ALARM_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/config/config.h"
#include "broker/node/durable.h"

struct event_base;

typedef struct wr_alarms_s wr_alarms_t;

/* Why publishers are held (wr_alarm_reasons): RabbitMQ's {resource, memory},
 * {resource, disk} and its internal `flow`, which clients are never told. */
enum {
    WR_ALARM_MEMORY = 1,
    WR_ALARM_DISK = 2,
    WR_ALARM_FLOW = 4,
};

typedef struct {
    bool memory;              /* the memory alarm is raised */
    bool disk;                /* the disk alarm is raised */
    bool flow;                /* storage credit flow holds publishers */
    bool remote_memory;       /* a memory alarm is raised on another node of the cluster */
    bool remote_disk;         /* a disk alarm is raised on another node */
    uint64_t mem_used;        /* bytes, as compared with the watermark (the RSS) */
    uint64_t mem_limit;       /* the high watermark in bytes */
    uint64_t mem_total;       /* RAM, or the cgroup limit when lower */
    uint64_t rss;             /* the process's resident set size, last sample */
    uint64_t disk_free;       /* bytes free under data_dir, last sample */
    uint64_t disk_limit;      /* the disk free limit in bytes */
    uint64_t storage_pending; /* bytes waiting for the storage thread, now */
    uint64_t storage_limit;   /* flow_storage_pending_bytes */
    uint64_t flow_started;    /* times storage flow began since start-up */
} wr_alarm_status_t;

/*
 * Samples once (so an alarm already due is raised before anything listens)
 * and then on a timer of base; raises and clears the alarms, logging each
 * change, and calls changed(ud) when the reasons to hold publishers change
 * (the server has every connection look at them again). The thresholds come
 * from cfg, which outlives the alarms, as does durable (the store, whose
 * backlog is credit flow's measure). NULL on failure (logged).
 */
wr_alarms_t *wr_alarms_new(const wr_config_t *cfg, struct event_base *base, wr_durable_t *durable,
                           void (*changed)(void *ud), void *ud);
void wr_alarms_free(wr_alarms_t *a); /* NULL is a no-op */
void wr_alarm_status(const wr_alarms_t *a, wr_alarm_status_t *out);
/* Publishing connections must stay blocked: a memory or disk alarm is raised here or on another node. */
bool wr_alarm_blocking(const wr_alarms_t *a);
/*
 * The WR_ALARM_* reasons to hold a connection that is publishing now. Checks
 * the storage thread's backlog against flow_storage_pending_bytes on the spot
 * (cheap: for every content header), so flow starts within one read.
 */
unsigned wr_alarm_reasons(wr_alarms_t *a);
/*
 * The memory and disk alarms raised on other reachable nodes of the cluster
 * (broker/cluster/reports.h): they hold this node's publishers too, as
 * RabbitMQ's resource alarms are cluster-wide. Logged when they change.
 */
void wr_alarms_set_remote(wr_alarms_t *a, bool memory, bool disk);
/*
 * A second backlog that holds publishers by flow like the storage thread's:
 * bytes forwarded to other nodes that wait for a peer link (remote queues).
 * Above limit flow starts; it ends once both backlogs are down to half
 * their limits (wr_alarms_storage_progress, which the owner also calls when
 * this backlog shrinks). Set once, before connections publish.
 */
void wr_alarms_link_backlog(wr_alarms_t *a, uint64_t (*bytes)(void *ud), void *ud, uint64_t limit);
/*
 * The storage thread finished a batch (durable.c), or the link backlog
 * shrank: flow ends once each backlog is down to half its limit, and the
 * connections it held resume.
 */
void wr_alarms_storage_progress(wr_alarms_t *a);

#endif
