/* SPDX-License-Identifier: MIT */
/*
 * The cluster-wide definitions: the metadata Raft group's state machine
 * (docs/CLUSTERING.md, "Definitions"). A change is never made where it is
 * asked for: the asker submits a command (meta_cmd.h), which is proposed to
 * the group; every node applies the committed commands in the same order to
 * the same state and to its live vhosts, and the node that asked answers from
 * the result its own apply computed. The apply is deterministic: the same
 * commands give the same state and the same results on every node.
 */
#ifndef WR_BROKER_CLUSTER_META_H
#define WR_BROKER_CLUSTER_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/auth/users.h"
#include "broker/cluster/quorum.h"
#include "broker/cluster/raftd.h"
#include "broker/cluster/remote.h"
#include "broker/vhost/queue_args.h"
#include "broker/vhost/vhost.h"
#include "core/buf.h"
#include "core/map.h"
#include "protocol/error.h"

typedef struct wr_meta_s wr_meta_t;
typedef struct wr_meta_op_s wr_meta_op_t;

/* How long a change may wait for its commit before the asker gets 541. */
#define WR_META_TIMEOUT_MS 5000

typedef struct {
    const wr_map_t *vhosts; /* name -> wr_vhost_t: the live objects the apply changes */
    const char *self;       /* this node's name: queues declared here have it as home */
    /* Proposes a command to the group (the server's wr_rgroup_propose):
     * WR_OK and done(done_ud, ...) later on the loop, or WR_ENOMEM. */
    int (*propose)(void *ud, const void *data, size_t len, unsigned timeout_ms, wr_rgroup_done_fn done,
                   void *done_ud);
    void *ud;
    unsigned timeout_ms; /* 0: WR_META_TIMEOUT_MS */
    /* The live definitions the vhost, user, permission and policy commands
     * change (docs/CLUSTERING.md, "Definitions"). NULL users: the group
     * handles exchanges, queues and bindings only (the unit tests of those). */
    wr_users_t *users;
    struct wr_policies_s *policies;
    const json_t *vhost_settings; /* name -> the live vhost's settings (the seed reads them) */
    /* Creates vhost name with settings, or changes its settings (WR_EEXIST);
     * deletes a vhost with its queues, policies and permissions, closing its
     * connections (the server's, as the management API uses them). */
    int (*vhost_add)(void *ud, const char *name, const json_t *settings);
    int (*vhost_delete)(void *ud, const char *name);
    /* A user went: its connections are closed (may be NULL). */
    void (*user_deleted)(void *ud, const char *name);
} wr_meta_deps_t;

/* An empty state over deps (copied; its pointees outlive m). NULL on ENOMEM. */
wr_meta_t *wr_meta_new(const wr_meta_deps_t *deps);
/* Frees m; the pending submissions' replies are dropped. NULL is a no-op. */
void wr_meta_free(wr_meta_t *m);
/*
 * The apply lists, on every node but a queue's home, a proxy for it made by
 * r (cluster/remote.h; valid while the group applies). Before the group
 * opens. Without it (unit tests) a queue lives only on its home.
 */
void wr_meta_set_remote(wr_meta_t *m, wr_remote_t *r);

/*
 * The cluster's members now (the metadata group's voters): at most room
 * names into out, borrowed until the loop next runs; how many.
 */
typedef size_t (*wr_meta_members_fn)(void *ud, const char **out, size_t room);

/*
 * A queue declared with x-queue-type quorum gets its members placed by the
 * node it is declared on, among the cluster's members then (members;
 * wr_quorum_place), in the command, so every node applies the same list; a
 * Raft group run by qs on each member (cluster/quorum.h); other nodes get a
 * proxy to its first member. Before the group opens. Without it quorum
 * declares make classic queues, as a single node does.
 */
void wr_meta_set_quorum(wr_meta_t *m, wr_quorum_t *qs, wr_meta_members_fn members, void *ud);
/* The state machine for wr_rgroup_open, with ud = the wr_meta_t. */
void wr_meta_sm(wr_rgroup_sm_t *out);
/*
 * Applies the committed command at index: to the state, then to the live
 * vhosts. A malformed command changes nothing and is logged; its result (for
 * the asker) is a 541 saying why.
 */
void wr_meta_apply(void *m, uint64_t index, const uint8_t *data, size_t len);
/* The version of the snapshots this node writes; it reads this one and 1
 * (exchanges, queues and bindings only, from before the definitions). */
#define WR_META_SNAPSHOT_VERSION 2

/* The state as a snapshot (compact JSON, sorted keys). WR_OK or WR_ENOMEM. */
int wr_meta_snapshot_save(void *m, wr_buf_t *out);
/*
 * Replaces the state with a snapshot's, then makes the live objects agree:
 * exchanges and queues the snapshot lacks are deleted, missing ones and their
 * bindings created; once the definitions are seeded, vhosts, users,
 * permissions and policies likewise. WR_OK, WR_ESYNTAX (not a snapshot, or
 * of a version this node does not read, logged: nothing changed) or
 * WR_ENOMEM.
 */
int wr_meta_snapshot_load(void *m, const uint8_t *data, size_t len);

/* What a change came to on this node: err.code 0 when it was made (class and
 * method are left 0 for the asker to fill). */
typedef struct {
    wr_amqp_error_t err;
    uint32_t messages; /* queue.delete: the messages the queue held, on its home node (else 0) */
    bool created;      /* vhost.add, user.put, permission.set, policy.set: it was new */
} wr_meta_result_t;

typedef void (*wr_meta_reply_fn)(void *ud, const wr_meta_result_t *r);

/*
 * Proposes cmd (takes ownership, also on failure). fn(ud, result) is called
 * once, on the loop and never inside this call: with this node's apply's
 * result once the change is committed and applied here, or with a 541
 * INTERNAL_ERROR in RabbitMQ's words when it could not be committed in time
 * (no majority). NULL on ENOMEM (fn will not be called).
 */
wr_meta_op_t *wr_meta_submit(wr_meta_t *m, json_t *cmd, wr_meta_reply_fn fn, void *ud);
/* fn will not be called (the asker is gone). */
void wr_meta_cancel(wr_meta_op_t *op);

/*
 * Whether the state holds queue `name` of vhost; *home (may be NULL) is then
 * its home node, valid until the next apply.
 */
bool wr_meta_queue_find(const wr_meta_t *m, const char *vhost, wr_bytes_t name, const char **home);
/* A quorum queue's members from its record (at most room names into out,
 * valid until the next apply): how many; 0 for any other queue. */
size_t wr_meta_queue_members(const wr_meta_t *m, const char *vhost, wr_bytes_t name, const char **out,
                             size_t room);
/* RabbitMQ's redeclaration check of the queue's record against req: false
 * with a 406 (or a 541 out of memory) in *err. The queue must exist. */
bool wr_meta_queue_equivalent(const wr_meta_t *m, const char *vhost, wr_bytes_t name,
                              const wr_queue_args_decl_t *req, wr_amqp_error_t *err);
/* RabbitMQ's redeclaration check of an exchange (type, flags,
 * alternate-exchange): false with a 406 in *err. */
bool wr_meta_exchange_equivalent(const char *vhost, wr_bytes_t name, const wr_exchange_opts_t *cur,
                                 const wr_exchange_opts_t *req, wr_amqp_error_t *err);
/*
 * wr_vhost_env_t's queue_deleted hook (ud = the wr_meta_t): a shared queue
 * whose home is this node went without the group deleting it (auto-delete,
 * x-expires), so its deletion is proposed for every node (a failed proposal
 * is logged and leaves the record).
 */
void wr_meta_queue_gone(void *m, const wr_vhost_t *vh, const wr_queue_t *q);
/*
 * The state machine's leader_changed (ud = the wr_meta_t): a node that becomes
 * leader while the definitions are not seeded proposes its own live vhosts,
 * users, permissions and policies as the seed (the first seed committed
 * wins; later ones change nothing), again after a failure while it leads.
 */
void wr_meta_leader_changed(void *m, const char *leader);
/* Whether the group's definitions are seeded (from then on they are the
 * cluster's vhosts, users, permissions and policies). */
bool wr_meta_seeded(const wr_meta_t *m);
/* This node's name (the home of the queues declared here). */
const char *wr_meta_self(const wr_meta_t *m);
/* The index of the last command applied (0: none). */
uint64_t wr_meta_applied(const wr_meta_t *m);

/* How many queues the replicated topology holds in vhost (exclusive queues are not replicated). */
size_t wr_meta_queue_count(const wr_meta_t *m, const char *vhost);

#endif
