/* SPDX-License-Identifier: MIT */
/*
 * Cluster membership after formation (docs/CLUSTERING.md, "Membership"): a
 * node joins through a member (a JOIN request over the peer link, which that
 * member turns into a change of the metadata group's Raft membership), a
 * member leaves or is forgotten, and a node removed from the cluster records
 * it in DATA_DIR/raft/removed and stops, never to start as a member again.
 */
#ifndef WR_BROKER_CLUSTER_MEMBERSHIP_H
#define WR_BROKER_CLUSTER_MEMBERSHIP_H

#include <stdbool.h>

#include "broker/cluster/cluster_config.h"
#include "broker/cluster/link.h"
#include "broker/cluster/raftd.h"

struct event_base;
typedef struct wr_membership_s wr_membership_t;

/* The APP kinds (link.h's membership range). */
enum {
    WR_MEMBER_JOIN = WR_PEER_APP_MEMBER_FIRST, /* joiner -> member: u64 request id */
    WR_MEMBER_JOINED,  /* member -> joiner: u64 request id, u32 status (two's complement) */
    WR_MEMBER_REMOVED, /* member -> a removed node that still campaigns: empty */
};

/* How long a joiner waits for the answer to its JOIN: the change's own timeout and some. */
#define WR_MEMBER_JOIN_TIMEOUT_MS (WR_RGROUP_CHANGE_TIMEOUT_MS + 5000)
/* A removed node stops this long after it knows, so the answer to the request that removed it leaves. */
#define WR_MEMBER_STOP_DELAY_MS 500

typedef struct {
    struct event_base *base;
    wr_peer_links_t *links;             /* routes the membership kinds */
    const wr_cluster_config_t *cluster; /* outlives the module */
    const char *raft_dir;               /* DATA_DIR/raft (copied): where the removal marker goes */
    /* This node is no longer a member (logged, marker written): the server
     * stops, exiting 0 when it left on request (left), 1 otherwise. */
    void (*stop)(void *ud, bool left);
    void *ud;
} wr_membership_deps_t;

/* done(ud, status) of a join or a removal, on the loop, never inside the call that started it. */
typedef void (*wr_membership_done_fn)(void *ud, int status);

/*
 * At start, before anything opens data_dir/raft: WR_OK, or WR_EEXIST after
 * logging that this node was removed from the cluster (the marker exists).
 */
int wr_membership_check(const char *raft_dir, const char *cluster_name);

/* Routes the membership kinds (before wr_peer_links_start). NULL on allocation failure. */
wr_membership_t *wr_membership_new(const wr_membership_deps_t *d);
/* Ends pending joins with done(WR_ENOENT) and frees m. NULL is a no-op. After wr_raftd_close. */
void wr_membership_free(wr_membership_t *m);
/* What the Raft driver reports to m (wr_raftd_opts_t.watch). */
wr_raftd_watch_t wr_membership_watch(wr_membership_t *m);
/* The metadata group, once open (the driver is opened with the watch first). */
void wr_membership_set_group(wr_membership_t *m, wr_rgroup_t *meta);

/*
 * Asks member `via` to add this node to the metadata group. done: WR_OK
 * (this node is a voter, caught up), WR_EEXIST (already a member),
 * WR_ENOENT (no leader, or no majority), WR_ETIMEDOUT (no answer within
 * WR_MEMBER_JOIN_TIMEOUT_MS, or the change's own timeout: the outcome is
 * unknown), or WR_ENOENT from wr_membership_free. Returns WR_OK (done will
 * be called), WR_EIO (via's link is down or full) or WR_ENOMEM.
 */
int wr_membership_join(wr_membership_t *m, const char *via, wr_membership_done_fn done, void *ud);
/*
 * Removes node (this node: leave) from the metadata group. done as
 * wr_rgroup_remove_member's (WR_EUNKNOWN: not a member; WR_ESYNTAX: the
 * last voter). Returns WR_OK (done will be called), WR_ENOENT (not a node of
 * the configuration) or WR_ENOMEM.
 */
int wr_membership_remove(wr_membership_t *m, const char *node, wr_membership_done_fn done, void *ud);

#endif
