/* SPDX-License-Identifier: MIT */
/*
 * What the two files of quorum queues share: quorum.c (the service, the
 * queue type, commands proposed and retried) and quorum_sm.c (the group's
 * state machine: entries applied, effects performed, bodies, snapshots).
 * Only broker/cluster/quorum*.c include it.
 */
#ifndef WR_BROKER_CLUSTER_QUORUM_INTERNAL_H
#define WR_BROKER_CLUSTER_QUORUM_INTERNAL_H

#include "broker/cluster/quorum.h"
#include "cluster/qfifo.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/map.h"

struct wr_quorum_s {
    wr_quorum_deps_t d;
    uint32_t self_id;  /* the high half of every owner and publisher id made here */
    uint32_t next_id;  /* their low half; starts at a random point each run */
    wr_list_t queues;  /* qq_t */
    wr_list_t waiting; /* commands held back by the enqueue window, oldest first (quorum.c) */
    unsigned enq_out;  /* enqueues proposed from here, their outcome not yet known */

    uint64_t body_bytes;        /* bodies every queue's cache holds now (quorum_sm.c), within d.body_budget */
    wr_quorum_report_fn report; /* member changes made (wr_quorum_set_reporter); NULL: none */
    void *report_ud;
    wr_quorum_expired_fn expired; /* queues past x-expires (wr_quorum_set_expirer); NULL: none */
    void *expired_ud;
};

/* A body in the snapshot this member serves: its record's place in the state machine's bytes. */
typedef struct {
    uint64_t index;
    uint64_t off;
    uint32_t len; /* the record: u64 index, u32 length, the message */
} qsnapbody_t;

/* A delivery waiting for its consumer's channel to take it. */
typedef struct {
    wr_list_t link;
    wr_message_t *m;
    uint64_t id;
    bool redelivered;
} qheld_t;

/* The settlement kinds batched per consumer until the next flush. */
enum { QS_SETTLE, QS_RETURN, QS_DISCARD, QS_KINDS };

/*
 * A local consumer (owner: its id in the machine) or a basic.get awaiting its
 * message (is_get). Lives until cancelled or gone and every delivery it had
 * is settled.
 */
typedef struct {
    wr_list_t link; /* in the queue's consumers */
    uint64_t owner;
    wr_consumer_t *c; /* NULL once cancelled, and for a get */
    bool is_get, no_ack;
    bool answered;    /* a get: its answer was given (fn called) */
    bool down;        /* DOWN proposed (or waiting for settle_props): the machine forgets it */
    bool down_wanted; /* DOWN goes once settle_props is 0 */
    uint32_t unacked;
    uint32_t settle_props;  /* its settlements proposed and not yet known committed */
    wr_list_t held;         /* qheld_t, oldest first */
    wr_buf_t ids[QS_KINDS]; /* big-endian ids awaiting the flush */
    wr_queue_got_fn fn;     /* a get's answer; NULL once given or cancelled */
    void *ud;
    wr_bytes_t tag; /* points into tagbuf */
    uint8_t tagbuf[255];
} qcons_t;

typedef struct qq_s {
    wr_queue_t h;
    wr_quorum_t *s; /* NULL once the service is freed */
    wr_list_t link; /* in s->queues */
    wr_rgroup_t *g; /* NULL until opened, and once the service is freed */
    uint64_t group;
    wr_qfifo_t *sm;
    wr_qfifo_effects_t fx;
    wr_map_t *bodies;         /* the body cache: log index -> wr_message_t, live messages within the budget */
    uint64_t body_bytes;      /* what bodies holds */
    wr_buf_t settling;        /* the indexes a SETTLE being applied takes out of the queue (u64s) */
    qsnapbody_t *snap_bodies; /* the live bodies of the snapshot served, by index (read back from it) */
    size_t n_snap_bodies;
    wr_list_t consumers; /* qcons_t */
    wr_list_t props;     /* commands awaiting their outcome */
    wr_map_t *pubs;      /* publisher seq -> its enqueue, until applied here */
    wr_map_t *dlx_out;   /* dead-letter id -> its at-least-once publish from here (quorum_dlx.c) */
    uint64_t pub_id, next_seq;
    size_t npending;
    size_t nwaiting;        /* of its commands, those in s->waiting: later ones (but settlements) wait too */
    uint64_t pending_bytes; /* their charge toward flow: entries, at least WR_QUORUM_MIN_CHARGE each */
    bool expiring;          /* an enqueue carried a per-message TTL: the leader ticks */
    uint64_t next_transfer; /* monotonic ms before which leadership is not handed home again */
    uint64_t purged_at;     /* the index of the last PURGE applied, */
    uint64_t purged;        /* and how many ready messages it dropped */
    uint64_t since_snap;    /* entry bytes applied since the last snapshot */
    bool leader;            /* this member leads the group */
    bool flushing;          /* flush_ev is active */
    bool retrying;          /* some command waits for the retry pass: new ones queue behind it */
    bool pol_sent;
    wr_qfifo_policy_t pol; /* the policy last proposed */
    struct event *flush_ev, *retry_ev, *tick_ev, *open_ev;
    char *vhost;
    char **members;
    size_t nmembers;
    uint8_t *roles; /* wr_quorum_role_t per member; NULL: all voters */
    bool changing;  /* a member change of the record is under way (the leader's) */
    bool exp_sent;  /* EXPIRES proposed here, with exp */
    uint64_t exp;
    uint64_t next_expire_ask; /* monotonic ms before which the leader does not ask for the deletion again */
    uint8_t data[];           /* name, then args */
} qq_t;

/* quorum.c */
qcons_t *wr_qq_cons_find(qq_t *q, uint64_t owner);
/* Proposes cmd (with m for an ENQUEUE, and its confirm), retried until it
 * commits or WR_QUORUM_RETRY_MS pass. WR_OK, WR_EFULL (too many pending) or WR_ENOMEM. */
int wr_qq_propose(qq_t *q, const wr_qfifo_cmd_t *cmd, const wr_message_t *m, wr_confirm_t *conf);
/* This node applied its own enqueue seq with the machine's status. */
void wr_qq_landed(qq_t *q, uint64_t seq, int status);
/* A DELIVER for local consumer qc: handed over now, or held. m is a reference the call takes. */
void wr_qq_deliver(qq_t *q, qcons_t *qc, wr_message_t *m, uint64_t id, bool redelivered);
/* Proposes CHECKOUT for a local consumer (again, when the machine forgot it). */
void wr_qq_checkout(qq_t *q, qcons_t *qc);
/* Proposes DOWN for owner: its messages go back, the machine forgets it. */
void wr_qq_down(qq_t *q, uint64_t owner);
/* DOWN for a local consumer, after its settlements: those must commit first,
 * or DOWN would hand back messages already acknowledged. */
void wr_qq_cons_down(qq_t *q, qcons_t *qc);
/* Settles delivery id of qc alone, kind QS_SETTLE or QS_RETURN (batched to the next flush). */
void wr_qq_cons_settle_one(qq_t *q, qcons_t *qc, int kind, uint64_t id);
/* Proposes DOWN for the machine's owners of node (a node id; 0: this node's owners it has no consumer for).
 */
void wr_qq_sweep(qq_t *q, uint32_t node);
/* The owner's node id (high half). */
static inline uint32_t wr_qq_owner_node(uint64_t owner)
{
    return (uint32_t)(owner >> 32);
}

/* quorum_members.c */
/* On the leader, every tick: the next member change the record asks for. */
void wr_qq_members_tick(qq_t *q);
/* The first voters to open the group with: the members but those joining
 * (a joiner waits for the leader, a non-voter in its own eyes); how many. */
size_t wr_qq_first_voters(const qq_t *q, const char **out);
/* Frees the member list. */
void wr_qq_members_free(qq_t *q);

/* quorum_dlx.c: at-least-once dead-lettering, by the leader */
/* RabbitMQ's x-death reason for the machine's wr_qf_reason_t. */
wr_dl_reason_t wr_qq_dl_reason(uint8_t reason);
/* Publishes dead letter id (the message at log index) to the queue's DLX with
 * a confirm, unless already out from here; DLX_SETTLE follows the confirm. */
void wr_qq_dlx_publish(qq_t *q, uint64_t id, uint64_t index, uint8_t reason);
/* On the leader: every dead letter the machine still holds and this node has
 * not out goes (again): after a failed confirm, a lost DLX_SETTLE, a new leader. */
void wr_qq_dlx_retry(qq_t *q);
/* A DLX_SETTLE applied: its ids are done here. */
void wr_qq_dlx_settled(qq_t *q, const wr_qfifo_cmd_t *cmd);
/* Frees dlx_out (no confirm can be out: each holds a reference to q). */
void wr_qq_dlx_free(qq_t *q);

/* quorum_expiry.c: x-expires */
/* Proposes EXPIRES (ms; <= 0: none) unless this node last proposed the same. */
void wr_qq_expires_set(qq_t *q, int64_t expires);
/* Whether the leader must tick for the expiry: one is set and there is no consumer. */
bool wr_qq_expiry_ticks(const qq_t *q);
/* EXPIRED applied: the leader asks for the queue's deletion (at most every few seconds). */
void wr_qq_expired(qq_t *q);

/* quorum_sm.c */
/* The body of live message index (a new reference; cached, else read back from the log). NULL, logged, if
 * none holds it. */
wr_message_t *wr_qq_body(qq_t *q, uint64_t index);
void wr_qq_sm(wr_rgroup_sm_t *out);
/* Frees the body cache and the snapshot's body index (the queue goes). */
void wr_qq_bodies_free(qq_t *q);
/* Appends ENQUEUE's entry: the command, then the message. */
bool wr_qq_entry_put(wr_buf_t *b, uint64_t time_ms, const wr_qfifo_cmd_t *cmd, const wr_message_t *m);
/* The leader's clock (wall milliseconds) stamped into each command. */
uint64_t wr_qq_now(void);
/* Milliseconds on CLOCK_MONOTONIC: the deadlines of retries, dead letters and expiry requests. */
uint64_t wr_qq_mono_ms(void);

#endif
