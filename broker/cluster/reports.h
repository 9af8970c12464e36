/* SPDX-License-Identifier: MIT */
/*
 * Node reports: every node tells every peer, once a second and whenever one
 * of its links comes up or goes down, what the management API shows of it (memory, disk, file
 * descriptors, sockets, uptime, its alarms, which peers it reaches). From
 * them /api/nodes lists every node with its figures and the partitions each
 * node sees, and a memory or disk alarm on any node blocks publishers on all
 * of them, as RabbitMQ's cluster-wide resource alarms do.
 */
#ifndef WR_BROKER_CLUSTER_REPORTS_H
#define WR_BROKER_CLUSTER_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/link.h"
#include "core/buf.h"
#include "core/bytes.h"

struct event_base;
typedef struct wr_reports_s wr_reports_t;

/* The APP kind of a report (link.h's node range). */
#define WR_REPORT_KIND WR_PEER_APP_NODE_FIRST
/* Reports leave every this many ms. */
#define WR_REPORT_INTERVAL_MS 1000
/* The APP kind of a report's companion: what the node lists in the
 * management API (JSON, opaque here), sent right after each report. */
#define WR_REPORT_LISTS_KIND (WR_PEER_APP_NODE_FIRST + 1)
/* The largest such body sent; the producer keeps within it. */
#define WR_REPORT_LISTS_MAX (4u << 20) /* some 4,000 connections with a channel each */
/* A node asks a peer about one of its connections, and the answer
 * (broker/mgmt/mgmt_cluster_conns.h routes both). */
#define WR_REPORT_CONN_ASK_KIND    (WR_PEER_APP_NODE_FIRST + 2)
#define WR_REPORT_CONN_ANSWER_KIND (WR_PEER_APP_NODE_FIRST + 3)
/* The most peers a report names as reachable. */
#define WR_REPORT_MAX_UP 63

/* What one node says of itself. */
typedef struct {
    bool mem_alarm, disk_alarm;
    uint64_t mem_used, mem_limit;
    uint64_t disk_free, disk_limit;
    uint64_t fd_used, fd_total;
    uint64_t sockets_used, sockets_total;
    uint64_t uptime_ms;
    uint64_t os_pid;
    uint32_t processors;
    size_t n_up;                     /* peers whose link is up, as the node sees them */
    wr_bytes_t up[WR_REPORT_MAX_UP]; /* their names (borrowed when decoded) */
} wr_report_t;

/* Appends r's encoding (the body of the APP message). */
void wr_report_put(wr_buf_t *b, const wr_report_t *r);
/*
 * Decodes a report body into *r (names borrow from body). WR_OK; WR_EUNKNOWN
 * for another format version; WR_ESYNTAX for a truncated body, trailing
 * bytes, more than WR_REPORT_MAX_UP names or an empty name.
 */
int wr_report_decode(wr_bytes_t body, wr_report_t *r);

typedef struct {
    struct event_base *base;
    wr_peer_links_t *links; /* routes WR_REPORT_KIND and watches peers */
    /* Fills this node's report (n_up and up are filled here). */
    void (*sample)(void *ud, wr_report_t *out);
    /* The alarms raised on other reachable nodes changed (wr_reports_alarms). May be NULL. */
    void (*alarms_changed)(void *ud);
    void *ud;
    /* Appends this node's lists (at most WR_REPORT_LISTS_MAX bytes; more are not sent). May be NULL. */
    void (*sample_lists)(void *ud, wr_buf_t *out);
} wr_reports_deps_t;

/* Starts reporting (before wr_peer_links_start). NULL on allocation failure. */
wr_reports_t *wr_reports_new(const wr_reports_deps_t *d);
void wr_reports_free(wr_reports_t *r); /* NULL is a no-op */

/*
 * The last report of the peer named node while its link is up: true with
 * *out (names valid until the next report arrives), false when the link is
 * down or no report came yet.
 */
bool wr_reports_get(const wr_reports_t *r, const char *node, wr_report_t *out);
/*
 * The last lists of the peer named node while its link is up: true with
 * *out (valid until the next lists arrive), false when the link is down or
 * none came yet.
 */
bool wr_reports_lists(const wr_reports_t *r, const char *node, wr_bytes_t *out);
/* Whether a memory / disk alarm is raised on some reachable peer. */
void wr_reports_alarms(const wr_reports_t *r, bool *memory, bool *disk);
/*
 * Whether this node is partitioned from node: its link is down while some
 * peer this node reaches reports reaching it (RabbitMQ's "partitions").
 */
bool wr_reports_partitioned(const wr_reports_t *r, const char *node);

#endif
