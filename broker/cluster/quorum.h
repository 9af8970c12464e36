/* SPDX-License-Identifier: MIT */
/*
 * Quorum queues (docs/QUORUM.md): a queue whose state is a Raft group of its
 * member nodes (raftd.h) running the quorum-queue state machine
 * (cluster/qfifo.h). The metadata group's apply calls wr_quorum_queue_new on
 * every member node; a node that is not a member serves the queue through a
 * proxy to a member (remote.h). A publish is an ENQUEUE entry carrying the
 * message; the publisher's confirm comes when this node applies it (so it is
 * on a majority of the members' disks). Consumers are served by the member on
 * their own node, reading bodies it holds itself; only the leader
 * dead-letters.
 */
#ifndef WR_BROKER_CLUSTER_QUORUM_H
#define WR_BROKER_CLUSTER_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/link.h"
#include "broker/cluster/raftd.h"
#include "broker/queue/queue.h"
#include "broker/vhost/vhost.h"

struct event_base;
typedef struct wr_quorum_s wr_quorum_t;

/* A quorum queue's Raft group id: this base plus the metadata index of its declaration. */
#define WR_QUORUM_GROUP_BASE (1ull << 48)
/* Members when the declaration names no x-quorum-initial-group-size. */
#define WR_QUORUM_DEFAULT_SIZE 3
/* How long a command (publish, settle, consume...) is retried while the group has no leader. */
#define WR_QUORUM_RETRY_MS 30000
/* Commands of one queue waiting for their commit on this node, past which publishes are refused (a nack). */
#define WR_QUORUM_MAX_PENDING 20000

typedef struct {
    struct event_base *base;
    wr_raftd_t *raftd;
    wr_peer_links_t *links; /* the service watches peers: their consumers go when they do */
    const char *self;       /* this node's name */
    /* Pending commands shrank (wr_quorum_pending_bytes): publishers held by flow may go on. May be NULL. */
    void (*drained)(void *ud);
    void *ud;
    uint64_t body_budget; /* bytes of bodies all quorum queues here keep in memory; the rest is read back */
} wr_quorum_deps_t;

/* The node-wide service. NULL on ENOMEM. Before wr_peer_links_start. */
wr_quorum_t *wr_quorum_new(const wr_quorum_deps_t *d);
/* Before the Raft driver closes: every queue forgets its group (commands
 * pending fail, confirms are nacked); frees qs. NULL is a no-op. */
void wr_quorum_free(wr_quorum_t *qs);

/* Bytes of uncommitted commands a node may hold before publishers feel it:
 * room for many publishers' confirm windows (1,000 in flight of 1 KiB each is 1 MiB). */
#define WR_QUORUM_PENDING_FREE (16u << 20)
/* The least a pending command counts: 16 MiB of them is 16,384 commands, so
 * flow holds publishers of tiny messages well before WR_QUORUM_MAX_PENDING
 * would nack them (a publisher without confirms would lose those). */
#define WR_QUORUM_MIN_CHARGE 1024

/*
 * Bytes of commands proposed on this node and not yet committed, beyond
 * WR_QUORUM_PENDING_FREE: the alarms hold publishers by flow while it is high
 * (as for peer-link outboxes), so a group without a leader or a slow disk
 * does not grow memory without bound.
 */
uint64_t wr_quorum_pending_bytes(const wr_quorum_t *qs);

/* Whether args (a raw table) ask for a quorum queue (x-queue-type "quorum"). */
bool wr_quorum_args_want(wr_bytes_t args);

/*
 * RabbitMQ's refusals for a quorum queue's declaration, in its order:
 * auto-delete, exclusive, non-durable. false with a 406 in *err.
 */
bool wr_quorum_check_props(const char *vhost, wr_bytes_t name, bool durable, bool exclusive, bool auto_delete,
                           uint32_t method, wr_amqp_error_t *err);

/*
 * The members of a new quorum queue `name` declared on node self of a cluster
 * whose nodes are names[0..n), up to x-quorum-initial-group-size from args
 * (WR_QUORUM_DEFAULT_SIZE when absent; every node when the cluster has
 * fewer). The first is where the queue's leader belongs (the group hands
 * leadership there whenever that node is up): with x-queue-leader-locator
 * client-local (the default) self, then the others in name order; balanced:
 * the nodes in name order starting at one picked by a hash of the queue's
 * name, so queues spread their leaders over the nodes. Returns how many were
 * written to out (room for n + 1).
 */
size_t wr_quorum_place(const char *self, const char *const *names, size_t n, wr_bytes_t name, wr_bytes_t args,
                       const char **out);

/*
 * The queue (refs = 1) of vhost vh on this member node: opens Raft group
 * `group` with `members` as its first voters (a group with stored state
 * keeps its own), on the next loop pass. NULL on ENOMEM.
 */
wr_queue_t *wr_quorum_queue_new(wr_quorum_t *qs, wr_vhost_t *vh, wr_bytes_t name, const wr_queue_opts_t *o,
                                uint64_t group, const char *const *members, size_t n);

/* A member's part in its queue's record (docs/QUORUM.md, "Operating quorum queues"). */
typedef enum {
    WR_QUORUM_VOTER,   /* a voter of the group */
    WR_QUORUM_JOINING, /* to be added: the leader adds it as a learner and promotes it */
    WR_QUORUM_LEAVING, /* to be removed by the leader */
} wr_quorum_role_t;

/*
 * The queue's members from its record, in leadership order (the leader hands
 * leadership to the first when it is up), with their roles (copied). The
 * group's leader adds the joining and removes the leaving, one at a time,
 * and reports each change done (wr_quorum_set_reporter). Nothing for a queue
 * that is not a member's quorum queue. false on ENOMEM (nothing changed).
 */
bool wr_quorum_queue_set_members(wr_queue_t *q, const char *const *members, const uint8_t *roles, size_t n);

/* The leader of a queue's group made the Raft change its record asks for node. */
typedef void (*wr_quorum_report_fn)(void *ud, const char *vhost, wr_bytes_t name, const char *node);
/* Who hears of those changes (the metadata group records them); before any queue. */
void wr_quorum_set_reporter(wr_quorum_t *qs, wr_quorum_report_fn fn, void *ud);

/* A queue unused for its x-expires: its group's leader asks for its deletion
 * (the metadata group deletes it on every node), again every few seconds
 * until the queue is gone. */
typedef void (*wr_quorum_expired_fn)(void *ud, const char *vhost, wr_bytes_t name);
/* Who deletes those queues (the metadata group); before any queue. */
void wr_quorum_set_expirer(wr_quorum_t *qs, wr_quorum_expired_fn fn, void *ud);

/* What the management API shows of a quorum queue; false when q is not one (or its group is not open). */
bool wr_quorum_queue_status(const wr_queue_t *q, wr_rgroup_status_t *st);

extern const wr_queue_type_t wr_quorum_queue_type;

#endif
