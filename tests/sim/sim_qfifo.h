/* SPDX-License-Identifier: MIT */
/*
 * The quorum-queue mode of the simulator (--sm qfifo), shared by its clients
 * (sim_qfifo.c: publishers, consumers, getters, the dead-letter worker, the
 * leader's TICK and POLICY) and its checker (sim_qfifo_model.c: a model of
 * every message, fed once per (group, index) with the first applier's effects).
 */
#ifndef WR_SIM_QFIFO_H
#define WR_SIM_QFIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/qfifo.h"
#include "tests/sim/sim.h"

#define QS_PUBS    3 /* publisher ids 1..QS_PUBS: never DOWN, so dedup holds for them */
#define QS_CLIENTS 4 /* consumers c0..c2 and one getter g3 */
#define QS_GETTER  3
#define QS_OWNER0  1000 /* consumer and getter owners (channels) start here: a new one after each DOWN */
#define QS_TAG_MAX 8

/* An id the client waits on (a held delivery, an unconfirmed seq, a dead letter, a DOWN's owner)
 * with the time it last proposed something about it (0: not yet). */
typedef struct {
    uint64_t id;
    uint64_t asked;
} qs_item_t;

typedef struct {
    qs_item_t *v;
    size_t n, cap;
} qs_list_t;

typedef struct {
    uint64_t owner, next_seq;
    int node;          /* the leader its pending enqueues went to (0: resend them all) */
    uint64_t term;     /* ... and its term */
    qs_list_t pending; /* unconfirmed seqs, ascending */
} qs_pub_t;

typedef enum { QS_OFF = 0, QS_JOINING, QS_UP, QS_CANCELLED } qs_state_t;

typedef struct {
    uint64_t owner;
    char tag[QS_TAG_MAX];
    int state; /* qs_state_t; a getter is OFF or JOINING (a DEQUEUE in flight) */
    uint32_t prefetch;
    uint64_t asked;
    qs_list_t held; /* delivery ids */
} qs_client_t;

typedef enum { QM_READY = 0, QM_OUT, QM_EXPECT, QM_DLX_WAIT, QM_DONE, QM_DEAD } qm_state_t;

/* The checker's view of one enqueued message, known by its enqueue index. */
typedef struct {
    uint64_t index, pub, seq;
    uint64_t owner, did; /* QM_OUT: its consumer and delivery id */
    uint64_t dlx_id;     /* QM_DLX_WAIT */
    uint32_t count;      /* returns so far: the DELIVER's count must equal it */
    uint8_t state, reason;
    bool delivered, confirmed;
    char tag[QS_TAG_MAX];
} qm_msg_t;

typedef struct {
    uint64_t owner;
    char tag[QS_TAG_MAX];
    uint32_t prefetch, nout;
    bool cancelled;
} qm_con_t;

typedef struct {
    qm_msg_t *m; /* by enqueue index, ascending */
    size_t n, cap;
    qm_con_t *c;
    size_t nc, capc;
    uint32_t delivery_limit;
    uint64_t pub_last[QS_PUBS + 1];
    uint64_t now, expires, last_active; /* leader time; x-expires and the last use it counts from */
} qm_t;

/* What the first member to apply an index computed there. */
typedef struct {
    uint32_t fx, snap;
    int32_t rc;
    bool set;
} qs_record_t;

typedef struct {
    qs_pub_t pubs[QS_PUBS];
    qs_client_t cl[QS_CLIENTS];
    qs_list_t downs; /* owners retired by their client whose DOWN is not applied yet */
    qs_list_t dlx;   /* at-least-once dead letters to confirm (DLX_SETTLE) */
    uint64_t next_owner, next_tick;
    wr_qfifo_policy_t policy;
    bool policy_pending; /* proposed until applied */
    uint64_t policy_asked;
    qm_t model;
    qs_record_t *rec; /* by raft index - 1 */
    size_t nrec;
} qs_group_t;

struct sim_qfifo_s {
    qs_group_t *g;
    int groups;
    wr_qfifo_effects_t fx;
    wr_buf_t buf;
    int act_pm; /* client actions per group per step, per mille */
    uint64_t stats[SIM_QF_STATS];
};

/* Small lists. */
void qs_list_add(qs_list_t *l, uint64_t id);
void qs_list_del(qs_list_t *l, uint64_t id);
qs_item_t *qs_list_find(const qs_list_t *l, uint64_t id);

/* Checks the first application of cmd at index with leader time time_ms (status rc, effects fx,
 * the machine after it, q) against the model of group g and advances the model; marks s failed
 * on a violation. */
void sim_qfifo_model_apply(sim_t *s, int g, uint64_t index, uint64_t time_ms, const wr_qfifo_cmd_t *cmd,
                           int rc, const wr_qfifo_effects_t *fx, const wr_qfifo_t *q);

/* True when the model holds no live message (every one settled or dead-lettered). */
bool sim_qfifo_model_drained(const qm_t *m);

/* After the drain: every confirmed enqueue is settled or dead-lettered, once. */
void sim_qfifo_model_final(sim_t *s, int g);

/* Frees the model's arrays. */
void sim_qfifo_model_free(qm_t *m);

#endif
