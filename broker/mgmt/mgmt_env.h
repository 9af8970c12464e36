/* SPDX-License-Identifier: MIT */
/*
 * What the management side (HTTP API, statistics, Prometheus, definitions)
 * works with. The server fills one (it is the one place that wires modules
 * together) and keeps it alive as long as the management side; alarms is
 * set once the store is open, before the listeners start.
 */
#ifndef WR_BROKER_MGMT_ENV_H
#define WR_BROKER_MGMT_ENV_H

#include <jansson.h>
#include <time.h>

#include "broker/base/counters.h"
#include "broker/config/config.h"
#include "core/list.h"
#include "core/map.h"

struct event_base;
struct wr_alarms_s;
struct wr_policies_s;
struct wr_peer_links_s;
struct wr_reports_s;
struct wr_durable_s;
struct wr_tls_s;
struct wr_rgroup_s;
struct wr_meta_s;
struct wr_membership_s;
struct wr_mgmt_forward_s;

typedef struct {
    struct event_base *base;
    wr_config_t *cfg;               /* users and permissions change through it */
    const wr_map_t *vhosts;         /* name -> wr_vhost_t */
    wr_list_t *conns;               /* the live connections (wr_conn_link nodes) */
    struct wr_alarms_s *alarms;     /* NULL before the store is open */
    struct wr_policies_s *policies; /* the node's policies */
    struct wr_peer_links_s *peers;  /* the cluster's peer links; NULL without a cluster section */
    struct wr_reports_s *reports;   /* the other nodes' reports; NULL without a cluster section */
    struct wr_rgroup_s *meta_group; /* the metadata Raft group; NULL without a cluster section */
    struct wr_meta_s *meta;         /* its definitions: writes go through it; NULL on a single node */
    struct timespec started;        /* CLOCK_MONOTONIC at start-up, for the node's uptime */
    const wr_counters_t *counters;  /* node-wide event counters (Prometheus) */
    struct wr_tls_s *tls;           /* the management API serves HTTPS with it; NULL: HTTP */
    const json_t *vhost_settings;   /* name -> the vhost's settings (a vhost.declare entry,
                                       broker/node/topo_state.h) */
    struct wr_durable_s *durable;   /* the node's store: replies wait until changes are durable */
    /* Creates vhost `name` with settings (NULL: the defaults); when it exists,
     * changes its settings if given and returns WR_EEXIST. The change is
     * recorded. WR_OK, WR_EEXIST or WR_ENOMEM. */
    int (*vhost_add)(void *ud, const char *name, const json_t *settings);
    /* Deletes vhost `name` with its queues (and their messages), exchanges,
     * policies and permissions, closing its connections. WR_OK, WR_ENOENT, WR_ENOMEM. */
    int (*vhost_delete)(void *ud, const char *name);
    void *ud;
    /* Joins and removals (broker/cluster/membership.h); NULL without a cluster section. */
    struct wr_membership_s *membership;
    /* Requests about another node's connections (mgmt_cluster_conns.h); NULL without a cluster section. */
    struct wr_mgmt_forward_s *forward;
} wr_mgmt_env_t;

#endif
