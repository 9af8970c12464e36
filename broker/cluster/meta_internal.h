/* SPDX-License-Identifier: MIT */
/*
 * What meta.c (the service: submissions, snapshots) and meta_apply.c (the
 * commands applied to the state and the live vhosts) share. Only
 * broker/cluster/ includes it.
 */
#ifndef WR_BROKER_CLUSTER_META_INTERNAL_H
#define WR_BROKER_CLUSTER_META_INTERNAL_H

#include <jansson.h>

#include "broker/cluster/meta.h"
#include "core/list.h"

/*
 * state: vhost name -> {"exchanges": {key: entry}, "queues": {key: entry},
 * "bindings": {key: entry}}, where an exchange's or queue's key is its
 * name's compact JSON text and a binding's the compact JSON text of
 * [source, destination_type, destination, routing_key, arguments]. Entries
 * are the commands' entries (a queue's with "log" added when durable).
 */
struct wr_meta_s {
    wr_meta_deps_t deps;
    json_t *state;
    wr_list_t ops; /* wr_meta_op_t waiting for their command */
    uint64_t next_op;
    json_int_t run; /* this run's id in its commands */
    uint64_t applied;
    wr_remote_t *remote;      /* proxies for queues whose home is another node; NULL: none */
    wr_quorum_t *quorum;      /* quorum queues on their member nodes; NULL: none */
    const char *const *nodes; /* the cluster's node names, for quorum queue placement */
    size_t n_nodes;
};

/* Applies one parsed command at index to the state and the live vhosts,
 * filling *res (541 for a malformed command, which changes nothing). */
void wr_meta_apply_cmd(wr_meta_t *m, uint64_t index, const json_t *cmd, wr_meta_result_t *res);
/* Makes the live vhosts agree with the state (after a snapshot load). */
void wr_meta_apply_reconcile(wr_meta_t *m);
/* The key an exchange or queue name (as JSON) is filed under; NULL on ENOMEM. */
char *wr_meta_key(const json_t *name);

#endif
