/* SPDX-License-Identifier: MIT */
/*
 * Quorum queue operations in the metadata group (docs/QUORUM.md, "Operating
 * quorum queues"): a queue's record lists its members in leadership order,
 * with those joining (not yet voters of its Raft group) and those leaving.
 * The commands here change that record on every node; the group's leader
 * then makes the Raft change and reports it (quorum.h), and every node keeps
 * its live queue (a member, or a proxy) in line with the record.
 */
#ifndef WR_BROKER_CLUSTER_META_QUORUM_H
#define WR_BROKER_CLUSTER_META_QUORUM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"

/* A quorum queue's record as the management API reads it. */
typedef struct {
    const char *vhost;
    wr_bytes_t name;        /* points into buf */
    size_t n;               /* 0: the queue is not a quorum queue */
    const char *members[9]; /* leadership order: the first is where the leader belongs */
    uint8_t role[9];        /* wr_quorum_role_t */
    uint8_t buf[WR_META_NAME_MAX];
} wr_meta_qq_t;

/* Queue `name` of vhost: false when the state has no such queue; else *out
 * (n = 0 for a queue that is not a quorum queue). Valid until the next apply. */
bool wr_meta_quorum_get(const wr_meta_t *m, const char *vhost, wr_bytes_t name, wr_meta_qq_t *out);
/* fn(ud, q) for every quorum queue of the state, by vhost then name. */
void wr_meta_quorum_foreach(const wr_meta_t *m, void (*fn)(void *ud, const wr_meta_qq_t *q), void *ud);

/*
 * A command about queue `name` of vhost and node (NULL on ENOMEM), op one of:
 * "quorum.leader" (node goes first: leadership is handed there),
 * "quorum.member.add" (node joins; nothing when it is a member),
 * "quorum.member.delete" (node leaves; nothing when it is not a member;
 * refused for the last member that is not leaving), "quorum.member.done"
 * (the leader made the Raft change for node: a joiner is a voter, a leaver
 * is out and leaves the record).
 */
json_t *wr_meta_cmd_quorum(const char *op, const char *vhost, wr_bytes_t name, const char *node);

#endif
