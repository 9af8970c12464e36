/* SPDX-License-Identifier: MIT */
/*
 * The Raft core's classic traps, one transcript each in testdata/ (run by
 * scenario.c), the refusals of membership changes, snapshot chunks at the
 * edges (stale term, offsets out of order, bad CRCs, a new leader mid-way),
 * and the sizes the issue asks for.
 */
#include <check.h>
#include <stdio.h>

#include "cluster/raft.h"
#include "core/status.h"
#include "scenario.h"
#include "core/crc32c.h"
#include "tests/unit/runner.h"

static const char *const scenarios[] = {
    "figure8.txt",
    "vote_persistence.txt",
    "prevote_partial_partition.txt",
    "stale_leader.txt",
    "slow_follower.txt",
    "conflict_backoff.txt",
    "leader_transfer.txt",
    "membership_deferred.txt",
    "remove_leader.txt",
    "slow_follower_compaction.txt",
};

START_TEST(scenario)
{
    char path[512], err[512] = "";

    snprintf(path, sizeof(path), "%s/%s", TESTDATA, scenarios[_i]);
    if (scn_run(path, err, sizeof(err)) != 0)
        ck_abort_msg("%s", err);
}
END_TEST

/* Hands every ready over and reports it all durable at once. */
static void settle(wr_raft_t *r)
{
    wr_raft_ready_t rd;
    wr_raft_status_t st;

    while (wr_raft_has_ready(r)) {
        ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
        wr_raft_advance(r);
        wr_raft_status(r, &st);
        ck_assert_int_eq(wr_raft_persisted(r, st.last_term, st.last_index), WR_OK);
    }
}

/* A one-voter group whose member 1 leads and has committed its no-op. */
static wr_raft_t *lead_alone(void)
{
    wr_raft_config_t c = {.id = 1, .peers = {1}, .n_peers = 1, .election_ticks = 10, .heartbeat_ticks = 2};
    wr_raft_t *r;
    wr_raft_status_t st;

    c.max_inflight = c.max_batch = 4;
    r = wr_raft_new(&c, NULL, NULL, 0);
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(wr_raft_tick(r), WR_OK);
    settle(r);
    wr_raft_status(r, &st);
    ck_assert_int_eq(st.role, WR_RAFT_LEADER);
    ck_assert_uint_eq(st.commit, 1);
    return r;
}

START_TEST(change_refusals)
{
    wr_raft_t *r = lead_alone();
    uint64_t t, i;

    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 1, &t, &i), WR_EEXIST);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 0, &t, &i), WR_EUNKNOWN);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_PROMOTE, 1, &t, &i), WR_EUNKNOWN);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_REMOVE, 5, &t, &i), WR_EUNKNOWN);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_REMOVE, 1, &t, &i), WR_ESYNTAX);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 2, &t, &i), WR_OK);
    ck_assert_uint_eq(i, 2);
    /* The first change is not committed yet. */
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 3, &t, &i), WR_AGAIN);
    settle(r);
    /* Learners do not count: the lone voter commits alone. */
    for (uint32_t id = 3; id <= WR_RAFT_MAX_PEERS; id++) {
        ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, id, &t, &i), WR_OK);
        settle(r);
    }
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 10, &t, &i), WR_ETOOBIG);
    wr_raft_free(r);
}
END_TEST

START_TEST(change_not_leader)
{
    wr_raft_config_t c = {
        .id = 2, .peers = {1, 2, 3}, .n_peers = 3, .election_ticks = 10, .heartbeat_ticks = 2};
    wr_raft_t *r;
    uint64_t t, i;

    c.max_inflight = c.max_batch = 4;
    r = wr_raft_new(&c, NULL, NULL, 0);
    ck_assert_int_eq(wr_raft_change(r, WR_RAFT_ADD_LEARNER, 4, &t, &i), WR_ENOENT);
    wr_raft_free(r);
}
END_TEST

START_TEST(conf_decode_bad)
{
    uint8_t data[6] = {1, 0, 0, 0, 1, 2};
    wr_raft_entry_t e = {.term = 1, .index = 3, .data = data, .len = 6, .type = WR_RAFT_ENTRY_CONFIG};
    wr_raft_conf_t c;

    /* Not a whole number of 5-byte members. */
    ck_assert_int_eq(wr_raft_conf_decode(&e, &c), WR_ESYNTAX);
    e.len = 5;
    ck_assert_int_eq(wr_raft_conf_decode(&e, &c), WR_OK);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_uint_eq(c.id[0], 1);
    ck_assert(c.voter[0]);
    ck_assert_uint_eq(c.index, 3);
    e.type = WR_RAFT_ENTRY_NORMAL;
    ck_assert_int_eq(wr_raft_conf_decode(&e, &c), WR_ESYNTAX);
}
END_TEST

START_TEST(small_per_group)
{
    /* 10,000 groups on a node: the fixed part must stay well under a kilobyte. */
    ck_assert_uint_lt(wr_raft_sizeof(), 1024);
}
END_TEST

START_TEST(damaged_log_trusts_no_commit)
{
    /* A damaged segment can bring back entries the log had overwritten (found by
     * warren-sim --disk wal, seed 363): the stored commit must not apply them. */
    wr_raft_config_t cfg = {.id = 1,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .log_damaged = _i == 0};
    wr_raft_hard_state_t hs = {.term = 3, .commit = 3, .abstain = _i == 1 ? 3 : 0};
    uint8_t d[8] = {0};
    wr_raft_entry_t e[3] = {{1, 1, d, 8, 0}, {1, 2, d, 8, 0}, {1, 3, d, 8, 0}};
    wr_raft_t *r = wr_raft_new(&cfg, &hs, e, 3);
    wr_raft_ready_t rd;
    wr_raft_status_t st;

    ck_assert_ptr_nonnull(r);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.commit, 0);
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert_uint_eq(rd.n_committed, 0);
    ck_assert(rd.hs_changed);
    ck_assert_uint_eq(rd.hs.commit, 0);
    ck_assert_uint_eq(rd.hs.abstain, 3);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(damage_raises_an_older_abstain)
{
    /* A member still abstaining for term 2 follows term 4, then its disk is damaged
     * again (warren-sim --disk wal, seed 12052): it may have lost acknowledgements of
     * term 4, so a term-3 or term-4 leader must not clear its mark. */
    wr_raft_config_t cfg = {.id = 1,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .log_damaged = true};
    wr_raft_hard_state_t hs = {.term = 4, .abstain = 2};
    wr_raft_t *r = wr_raft_new(&cfg, &hs, NULL, 0);
    wr_raft_ready_t rd;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert(rd.hs_changed);
    ck_assert_uint_eq(rd.hs.abstain, 4);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(damaged_log_heartbeat_commit)
{
    /* The leader's match for this member predates its damage (warren-sim --disk wal,
     * seed 1768): a heartbeat's commit must not apply the brought-back entries. */
    wr_raft_config_t cfg = {.id = 1,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .log_damaged = true};
    wr_raft_hard_state_t hs = {.term = 3, .commit = 3};
    uint8_t d[8] = {0};
    wr_raft_entry_t e[3] = {{1, 1, d, 8, 0}, {1, 2, d, 8, 0}, {1, 3, d, 8, 0}};
    wr_raft_msg_t hb = {.type = WR_RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 3, .commit = 3};
    wr_raft_t *r = wr_raft_new(&cfg, &hs, e, 3);
    wr_raft_ready_t rd;
    wr_raft_status_t st;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(wr_raft_step(r, &hb), WR_OK);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.commit, 0);
    /* It reports only the verified prefix, so the leader probes and repairs the rest
     * (seed 987: a same-term leader otherwise never sent it an append). */
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert_uint_eq(rd.n_msgs, 1);
    ck_assert_uint_eq(rd.msgs[0].type, WR_RAFT_MSG_HEARTBEAT_RESP);
    ck_assert_uint_eq(rd.msgs[0].index, 0);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(stale_appends_dropped_after_truncation)
{
    /* A leader queues an append to n2, then, in the same round of steps, a
     * leader of a later term overwrites its log: the queued append must not
     * leave with the new log's entries behind the old prev term (warren-sim
     * --disk wal, seed 6275: n_entries 1 with no entries at all). */
    wr_raft_config_t cfg = {.id = 1,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16};
    wr_raft_msg_t pre = {.type = WR_RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = 1};
    wr_raft_msg_t vote = {.type = WR_RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1};
    wr_raft_msg_t ack = {.type = WR_RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 1};
    uint8_t d = 7;
    wr_raft_entry_t newer = {2, 1, &d, 1, 0};
    wr_raft_msg_t app = {
        .type = WR_RAFT_MSG_APP, .from = 2, .to = 1, .term = 2, .entries = &newer, .n_entries = 1};
    wr_raft_t *r = wr_raft_new(&cfg, NULL, NULL, 0);
    wr_raft_status_t st;
    wr_raft_ready_t rd;
    uint64_t term, index;

    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(wr_raft_tick(r), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &pre), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &vote), WR_OK);
    settle(r);
    wr_raft_status(r, &st);
    ck_assert_int_eq(st.role, WR_RAFT_LEADER);
    ck_assert_int_eq(wr_raft_propose(r, "x", 1, &term, &index), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &ack), WR_OK); /* queues the append of index 2 to n2 */
    ck_assert_int_eq(wr_raft_step(r, &app), WR_OK); /* term 2 overwrites index 1 */
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    for (size_t i = 0; i < rd.n_msgs; i++)
        ck_assert_uint_ne(rd.msgs[i].type, WR_RAFT_MSG_APP);
    for (size_t i = 0; i < rd.n_msgs_after_sync; i++)
        ck_assert_uint_ne(rd.msgs_after_sync[i].type, WR_RAFT_MSG_APP);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

/* ---- snapshot chunks, as a follower (member 2 of 1, 2, 3) receives them ---- */

/* The membership a snapshot carries: voters 1, 2, 3 as a CONFIG entry. */
static const uint8_t conf_bytes[15] = {1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 3, 0, 0, 0, 1};
static const wr_raft_entry_t conf_entry = {
    .term = 1, .index = 0, .data = (uint8_t *)conf_bytes, .len = 15, .type = WR_RAFT_ENTRY_CONFIG};

/* The snapshot 10/2 of "abcdef" sent as "abcd" then "ef". */
#define SNAP_BYTES "abcdef"

static wr_raft_t *follower_with(const wr_raft_entry_t *e, size_t n, uint64_t term)
{
    wr_raft_config_t cfg = {.id = 2,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16};
    wr_raft_hard_state_t hs = {.term = term};
    wr_raft_t *r = wr_raft_new(&cfg, &hs, e, n);

    ck_assert_ptr_nonnull(r);
    return r;
}

/* A chunk of snapshot (10, log_term) from `from` in term: bytes [off, off + len) of SNAP_BYTES. */
static wr_raft_msg_t chunk(uint64_t term, uint32_t from, uint64_t log_term, uint64_t off, uint32_t len)
{
    wr_raft_msg_t m = {.type = WR_RAFT_MSG_SNAP, .from = from, .to = 2, .term = term, .index = 10};

    m.log_term = log_term;
    m.entries = &conf_entry;
    m.n_entries = 1;
    m.offset = off;
    m.data = (const uint8_t *)SNAP_BYTES + off;
    m.len = len;
    m.crc = wr_crc32c_update(0, m.data, len);
    m.last = off + len == 6;
    m.total_crc = m.last ? wr_crc32c_update(0, SNAP_BYTES, 6) : 0;
    return m;
}

/* Steps m and takes the ready it produces; the caller checks it, then advances. */
static wr_raft_ready_t step_ready(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_ready_t rd;

    ck_assert_int_eq(wr_raft_step(r, m), WR_OK);
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    return rd;
}

/* The one message of rd, which must be of type t to `to`. */
static const wr_raft_msg_t *only_msg(const wr_raft_ready_t *rd, uint8_t t, uint32_t to)
{
    ck_assert_uint_eq(rd->n_msgs, 1);
    ck_assert_uint_eq(rd->msgs[0].type, t);
    ck_assert_uint_eq(rd->msgs[0].to, to);
    return &rd->msgs[0];
}

/* ---- payloads the driver can read back leave memory ---- */

/* A leader (member 1 of 1, 2, 3, window 2) with "a".."e" at 2..6, durable and acknowledged by n2 only. */
static wr_raft_t *leader_with_payloads(void)
{
    wr_raft_config_t cfg = {.id = 1,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .payload_window = 2};
    wr_raft_msg_t pre = {.type = WR_RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = 1};
    wr_raft_msg_t vote = {.type = WR_RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1};
    wr_raft_msg_t ack = {.type = WR_RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 6};
    wr_raft_t *r = wr_raft_new(&cfg, NULL, NULL, 0);
    wr_raft_status_t st;
    uint64_t term, index;

    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(wr_raft_tick(r), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &pre), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &vote), WR_OK);
    settle(r);
    for (char c = 'a'; c <= 'e'; c++)
        ck_assert_int_eq(wr_raft_propose(r, &c, 1, &term, &index), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_step(r, &ack), WR_OK);
    settle(r);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.commit, 6);
    return r;
}

START_TEST(payloads_dropped_once_read_back_possible)
{
    wr_raft_t *r = leader_with_payloads();
    wr_raft_msg_t lag = {.type = WR_RAFT_MSG_APP_RESP,
                         .from = 3,
                         .to = 1,
                         .term = 1,
                         .index = 0,
                         .reject = true,
                         .hint_index = 1};
    wr_raft_msg_t ack3 = {.type = WR_RAFT_MSG_APP_RESP, .from = 3, .to = 1, .term = 1, .index = 6};
    wr_raft_ready_t rd;
    const wr_raft_msg_t *m;

    /* n3 lacks everything: only the window's last two payloads stay for it; the older ones it gets
     * from the driver's stored log. */
    for (uint64_t i = 2; i <= 6; i++) {
        const wr_raft_entry_t *e = wr_raft_entry(r, i);
        ck_assert_uint_eq(e->len, 1);
        if (i <= 4) {
            ck_assert_ptr_null(e->data);
            continue;
        }
        ck_assert_ptr_nonnull(e->data);
        ck_assert_int_eq(e->data[0], 'a' + (int)i - 2);
    }
    rd = step_ready(r, &lag);
    m = only_msg(&rd, WR_RAFT_MSG_APP, 3);
    ck_assert_uint_eq(m->index, 0);
    ck_assert_uint_eq(m->n_entries, 6);
    ck_assert_ptr_null(m->entries[1].data); /* "a": the driver reads it back */
    ck_assert_uint_eq(m->entries[1].len, 1);
    ck_assert_ptr_nonnull(m->entries[5].data);
    ck_assert_int_eq(m->entries[5].data[0], 'e');
    wr_raft_advance(r);
    /* Every member has it all: nothing stays after the next ready (a heartbeat's at the latest). */
    ck_assert_int_eq(wr_raft_step(r, &ack3), WR_OK);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(wr_raft_tick(r), WR_OK);
    settle(r);
    ck_assert_ptr_null(wr_raft_entry(r, 6)->data);
    wr_raft_free(r);
}
END_TEST

START_TEST(restored_without_payloads)
{
    wr_raft_config_t cfg = {.id = 2,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .payload_window = 8};
    wr_raft_entry_t e[2] = {{1, 1, NULL, 0, WR_RAFT_ENTRY_NOOP}, {1, 2, NULL, 3, WR_RAFT_ENTRY_NORMAL}};
    wr_raft_hard_state_t hs = {.term = 1, .commit = 2};
    wr_raft_t *r = wr_raft_new(&cfg, &hs, e, 2);
    wr_raft_ready_t rd;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert_uint_eq(rd.n_committed, 2);
    ck_assert_ptr_null(rd.committed[1].data);
    ck_assert_uint_eq(rd.committed[1].len, 3);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_chunks_install)
{
    wr_raft_t *r = follower_with(NULL, 0, 2);
    wr_raft_msg_t c0 = chunk(2, 1, 2, 0, 4), c1 = chunk(2, 1, 2, 4, 2);
    wr_raft_ready_t rd = step_ready(r, &c0);
    wr_raft_status_t st;

    ck_assert(rd.has_chunk && !rd.installed);
    ck_assert_uint_eq(rd.chunk.offset, 0);
    ck_assert_uint_eq(rd.chunk.len, 4);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1)->offset, 4);
    wr_raft_advance(r);
    rd = step_ready(r, &c1);
    ck_assert(rd.has_chunk && rd.chunk.last && rd.installed);
    ck_assert_uint_eq(rd.snapshot.index, 10);
    ck_assert_uint_eq(rd.snapshot.term, 2);
    ck_assert_uint_eq(rd.snapshot.conf.n, 3);
    ck_assert_uint_eq(rd.compact_index, 10);
    ck_assert_uint_eq(rd.compact_term, 2);
    /* Not acknowledged before the driver reports it durable. */
    ck_assert_uint_eq(rd.n_msgs + rd.n_msgs_after_sync, 0);
    wr_raft_advance(r);
    ck_assert_int_eq(wr_raft_persisted(r, 2, 10), WR_OK);
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_APP_RESP, 1)->index, 10);
    ck_assert(!rd.msgs[0].reject);
    wr_raft_advance(r);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.snap_index, 10);
    ck_assert_uint_eq(st.commit, 10);
    ck_assert_uint_eq(st.applied, 10);
    ck_assert_uint_eq(st.first_index, 11);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_stale_term_chunk)
{
    wr_raft_t *r = follower_with(NULL, 0, 3);
    wr_raft_msg_t c0 = chunk(2, 1, 2, 0, 4);
    wr_raft_ready_t rd = step_ready(r, &c0);
    const wr_raft_msg_t *m = only_msg(&rd, WR_RAFT_MSG_APP_RESP, 1);

    /* A deposed leader's chunk is not stored; the answer tells it the newer term. */
    ck_assert(!rd.has_chunk);
    ck_assert(m->reject);
    ck_assert_uint_eq(m->term, 3);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_out_of_order_offset)
{
    wr_raft_t *r = follower_with(NULL, 0, 2);
    wr_raft_msg_t c1 = chunk(2, 1, 2, 4, 2), c0 = chunk(2, 1, 2, 0, 4);
    wr_raft_ready_t rd = step_ready(r, &c1);

    /* No transfer under way: start from 0. */
    ck_assert(!rd.has_chunk);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1)->offset, 0);
    wr_raft_advance(r);
    rd = step_ready(r, &c0);
    ck_assert(rd.has_chunk);
    wr_raft_advance(r);
    /* A chunk past the next byte wanted is refused: the answer names that byte. */
    c1.offset = 5;
    c1.data = (const uint8_t *)SNAP_BYTES + 5;
    c1.len = 1;
    c1.crc = wr_crc32c_update(0, c1.data, 1);
    rd = step_ready(r, &c1);
    ck_assert(!rd.has_chunk && !rd.installed);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1)->offset, 4);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_bad_crc)
{
    wr_raft_t *r = follower_with(NULL, 0, 2);
    wr_raft_msg_t c0 = chunk(2, 1, 2, 0, 4), c1 = chunk(2, 1, 2, 4, 2);
    wr_raft_ready_t rd;

    /* A chunk damaged on the way: refused, the same offset asked again. */
    c0.crc ^= 1;
    rd = step_ready(r, &c0);
    ck_assert(!rd.has_chunk);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1)->offset, 0);
    wr_raft_advance(r);
    c0.crc ^= 1;
    rd = step_ready(r, &c0);
    ck_assert(rd.has_chunk);
    wr_raft_advance(r);
    /* Every chunk good but the whole wrong: nothing installed, start over. */
    c1.total_crc ^= 1;
    rd = step_ready(r, &c1);
    ck_assert(!rd.has_chunk && !rd.installed);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1)->offset, 0);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_leader_change_mid_transfer)
{
    wr_raft_t *r = follower_with(NULL, 0, 2);
    wr_raft_msg_t a0 = chunk(2, 1, 2, 0, 4), a1 = chunk(2, 1, 2, 4, 2);
    wr_raft_msg_t b1 = chunk(3, 3, 2, 4, 2), b0 = chunk(3, 3, 2, 0, 4);
    wr_raft_ready_t rd = step_ready(r, &a0);

    ck_assert(rd.has_chunk);
    wr_raft_advance(r);
    /* Leader 3 of term 3 takes over: what leader 1 sent no longer counts. */
    rd = step_ready(r, &b1);
    ck_assert(!rd.has_chunk);
    ck_assert_uint_eq(only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 3)->offset, 0);
    wr_raft_advance(r);
    rd = step_ready(r, &b0);
    ck_assert(rd.has_chunk);
    wr_raft_advance(r);
    /* The old leader's next chunk is stale. */
    rd = step_ready(r, &a1);
    ck_assert(!rd.has_chunk && !rd.installed);
    ck_assert(only_msg(&rd, WR_RAFT_MSG_APP_RESP, 1)->reject);
    wr_raft_advance(r);
    rd = step_ready(r, &b1);
    ck_assert(rd.installed);
    wr_raft_advance(r);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_never_over_newer_entries)
{
    uint8_t d = 'x';
    wr_raft_entry_t e[12];
    wr_raft_t *r;
    wr_raft_msg_t c = chunk(2, 1, 2, 0, 6);
    wr_raft_ready_t rd;
    wr_raft_status_t st;

    for (int i = 0; i < 12; i++)
        e[i] = (wr_raft_entry_t){2, (uint64_t)i + 1, &d, 1, WR_RAFT_ENTRY_NORMAL};
    /* _i 0: the log holds 10/2, so 11 and 12 stay; _i 1: it holds 10/1, another history. */
    for (int i = 0; i < 12 && _i == 1; i++)
        e[i].term = 1;
    r = follower_with(e, 12, 2);
    rd = step_ready(r, &c);
    ck_assert(rd.installed);
    ck_assert_uint_eq(rd.compact_index, 10);
    wr_raft_advance(r);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.first_index, 11);
    ck_assert_uint_eq(st.last_index, (_i == 0 ? 12 : 10));
    ck_assert_uint_eq(st.last_term, 2);
    wr_raft_free(r);
}
END_TEST

START_TEST(snap_lost_asks_leader)
{
    wr_raft_config_t cfg = {.id = 2,
                            .peers = {1, 2, 3},
                            .n_peers = 3,
                            .election_ticks = 10,
                            .heartbeat_ticks = 2,
                            .max_inflight = 4,
                            .max_batch = 16,
                            .log_damaged = true,
                            .snapshot_lost = true};
    wr_raft_hard_state_t hs = {.term = 2, .commit = 7};
    wr_raft_snapshot_t at = {.index = 5, .term = 1};
    uint8_t d = 'x';
    wr_raft_entry_t e[2] = {{1, 6, &d, 1, 0}, {2, 7, &d, 1, 0}};
    wr_raft_msg_t hb = {.type = WR_RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 2, .commit = 7};
    wr_raft_t *r = wr_raft_restore(&cfg, &hs, &at, e, 2);
    wr_raft_ready_t rd;
    wr_raft_status_t st;
    const wr_raft_msg_t *m;

    ck_assert_ptr_nonnull(r);
    wr_raft_status(r, &st);
    ck_assert(st.snapshot_lost);
    ck_assert_uint_ne(st.abstain, 0);
    rd = step_ready(r, &hb);
    /* Nothing applies without the state; the leader is asked for a snapshot at or past 5. */
    ck_assert_uint_eq(rd.n_committed, 0);
    m = only_msg(&rd, WR_RAFT_MSG_SNAP_RESP, 1);
    ck_assert(m->reject);
    ck_assert_uint_eq(m->index, 5);
    wr_raft_advance(r);
    ck_assert_int_eq(wr_raft_snapshot_taken(r, 5, NULL), WR_AGAIN);
    wr_raft_free(r);
}
END_TEST

START_TEST(snapshot_taken_compacts)
{
    wr_raft_config_t c = {.id = 1, .peers = {1}, .n_peers = 1, .election_ticks = 10, .heartbeat_ticks = 2};
    wr_raft_snapshot_t out;
    wr_raft_ready_t rd;
    wr_raft_status_t st;
    wr_raft_t *r;
    uint64_t t, i;

    c.max_inflight = c.max_batch = 4;
    c.snapshot_trailing = 2;
    r = wr_raft_new(&c, NULL, NULL, 0);
    for (int k = 0; k < 40; k++)
        ck_assert_int_eq(wr_raft_tick(r), WR_OK);
    settle(r);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(wr_raft_propose(r, "p", 1, &t, &i), WR_OK);
    settle(r);
    ck_assert_int_eq(wr_raft_snapshot_taken(r, 7, &out), WR_ESYNTAX); /* past applied (6) */
    ck_assert_int_eq(wr_raft_snapshot_taken(r, 5, &out), WR_OK);
    ck_assert_uint_eq(out.index, 5);
    ck_assert_uint_eq(out.term, 1);
    ck_assert_uint_eq(out.conf.n, 1);
    ck_assert_int_eq(wr_raft_snapshot_taken(r, 5, &out), WR_ESYNTAX); /* not past the last one */
    ck_assert_int_eq(wr_raft_ready(r, &rd), WR_OK);
    ck_assert_uint_eq(rd.compact_index, 3); /* two entries kept behind it */
    ck_assert_uint_eq(rd.compact_term, 1);
    wr_raft_advance(r);
    wr_raft_status(r, &st);
    ck_assert_uint_eq(st.first_index, 4);
    ck_assert_ptr_null(wr_raft_entry(r, 3));
    ck_assert_uint_eq(wr_raft_term(r, 3), 1);
    ck_assert_uint_eq(wr_raft_term(r, 2), 0);
    wr_raft_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft");
    TCase *tc = tcase_create("scenarios");

    tcase_add_loop_test(tc, scenario, 0, (int)(sizeof(scenarios) / sizeof(scenarios[0])));
    tcase_add_test(tc, change_refusals);
    tcase_add_test(tc, change_not_leader);
    tcase_add_test(tc, conf_decode_bad);
    tcase_add_test(tc, small_per_group);
    tcase_add_loop_test(tc, damaged_log_trusts_no_commit, 0, 2);
    tcase_add_test(tc, damage_raises_an_older_abstain);
    tcase_add_test(tc, damaged_log_heartbeat_commit);
    tcase_add_test(tc, stale_appends_dropped_after_truncation);
    tcase_add_test(tc, payloads_dropped_once_read_back_possible);
    tcase_add_test(tc, restored_without_payloads);
    tcase_add_test(tc, snap_chunks_install);
    tcase_add_test(tc, snap_stale_term_chunk);
    tcase_add_test(tc, snap_out_of_order_offset);
    tcase_add_test(tc, snap_bad_crc);
    tcase_add_test(tc, snap_leader_change_mid_transfer);
    tcase_add_loop_test(tc, snap_never_over_newer_entries, 0, 2);
    tcase_add_test(tc, snap_lost_asks_leader);
    tcase_add_test(tc, snapshot_taken_compacts);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
