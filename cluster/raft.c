/* SPDX-License-Identifier: MIT */
/*
 * The Raft core: terms, pre-vote and elections, check-quorum, the follower's
 * side of AppendEntries, ticks, proposals and durability notices. The leader's
 * replication lives in raft_replicate.c, the output batch in raft_ready.c.
 */
#include "cluster/raft.h"

#include <stdlib.h>

#include "cluster/raft_internal.h"
#include "core/status.h"

static uint64_t rng_next(wr_raft_t *r)
{
    /* xorshift64*: reproducible from the configured seed alone. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ull;
}

static void reset_timeout(wr_raft_t *r)
{
    r->elapsed = 0;
    r->timeout = r->cfg.election_ticks + (unsigned)(rng_next(r) % r->cfg.election_ticks);
}

static bool config_valid(const wr_raft_config_t *c)
{
    if (c->id == 0 || c->n_peers == 0 || c->n_peers > WR_RAFT_MAX_PEERS)
        return false;
    return c->heartbeat_ticks > 0 && c->election_ticks > c->heartbeat_ticks && c->max_inflight > 0 &&
           c->max_batch > 0;
}

/* The stored entries after the snapshot, dense; those it covers are skipped. A
 * stored log that disagrees with the snapshot's last entry is another history:
 * nothing of it follows the snapshot. */
static int restore_log(wr_raft_t *r, const wr_raft_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (entries[i].index == r->log.offset && r->log.offset > 0 && entries[i].term != r->log.offset_term)
            break;
        if (entries[i].index <= r->log.offset)
            continue;
        if (entries[i].index != r->log.n + 1)
            return WR_ESYNTAX;
        if (wr_raft_log_append(&r->log, &entries[i]) != WR_OK)
            return WR_ENOMEM;
    }
    r->log.stable = r->log.n;
    r->log.unstable = r->log.n + 1;
    return WR_OK;
}

static void restore_snapshot(wr_raft_t *r, const wr_raft_snapshot_t *snap)
{
    if (snap == NULL || snap->index == 0)
        return;
    r->log.offset = r->log.n = snap->index;
    r->log.offset_term = snap->term;
    wr_raft_snap_set(r, snap->index, snap->term, snap->conf.n > 0 ? &snap->conf : NULL);
    r->snap_missing = r->cfg.snapshot_lost;
    r->applied = snap->index;
}

static void restore_hard_state(wr_raft_t *r, const wr_raft_hard_state_t *hs)
{
    bool damaged = r->cfg.log_damaged || r->snap_missing;

    if (hs != NULL) {
        r->term = hs->term;
        r->vote = hs->vote;
        r->commit = hs->commit < r->log.n ? hs->commit : r->log.n;
        r->abstain = hs->abstain;
    }
    r->hs_handed = (wr_raft_hard_state_t){r->term, r->vote, r->commit, r->abstain};
    /* A damaged log may hold entries the disk had overwritten (a lost overwrite brings
     * the old ones back): none counts as committed until a leader says so. What a
     * snapshot covers was committed, whatever became of the log. */
    if (damaged || r->abstain != 0)
        r->commit = 0;
    if (r->commit < r->snap_index)
        r->commit = r->snap_index;
    /* Acknowledgements may be lost from any term up to this one: an older mark is raised. */
    if (damaged && r->abstain < (r->term > 0 ? r->term : 1))
        r->abstain = r->term > 0 ? r->term : 1; /* handed over at the first ready */
}

wr_raft_t *wr_raft_restore(const wr_raft_config_t *cfg, const wr_raft_hard_state_t *hs,
                           const wr_raft_snapshot_t *snap, const wr_raft_entry_t *entries, size_t n)
{
    wr_raft_t *r;

    if (!config_valid(cfg) || (r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->cfg = *cfg;
    r->rng = (cfg->seed ^ ((uint64_t)cfg->id * 0x9E3779B97F4A7C15ull)) | 1;
    r->log.unstable = 1;
    restore_snapshot(r, snap);
    if (restore_log(r, entries, n) != WR_OK)
        goto err;
    wr_raft_conf_reload(r);
    restore_hard_state(r, hs);
    reset_timeout(r);
    return r;
err:
    wr_raft_free(r);
    return NULL;
}

wr_raft_t *wr_raft_new(const wr_raft_config_t *cfg, const wr_raft_hard_state_t *hs,
                       const wr_raft_entry_t *entries, size_t n)
{
    return wr_raft_restore(cfg, hs, NULL, entries, n);
}

void wr_raft_free(wr_raft_t *r)
{
    if (r == NULL)
        return;
    wr_raft_log_clear(&r->log);
    free(r->chunk);
    free(r->out.m);
    free(r->out_sync.m);
    free(r);
}

void wr_raft_become_follower(wr_raft_t *r, uint64_t term, uint32_t leader)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
        r->leader_match = 0;
        r->acked = 0;
        r->rx_index = 0; /* a new leader's transfer starts over */
    }
    r->role = WR_RAFT_FOLLOWER;
    r->leader = leader;
    r->transfer_to = 0;
    reset_timeout(r);
}

static void tally_reset(wr_raft_t *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        r->peers[i].voted = r->peers[i].id == r->cfg.id;
        r->peers[i].granted = r->peers[i].voted;
    }
}

static int become_leader(wr_raft_t *r)
{
    wr_raft_entry_t noop = {.term = r->term, .type = WR_RAFT_ENTRY_NOOP};

    r->role = WR_RAFT_LEADER;
    r->leader = r->cfg.id;
    r->hb_elapsed = 0;
    r->elapsed = 0;
    wr_raft_progress_reset(r);
    if (wr_raft_log_append(&r->log, &noop) != WR_OK)
        return WR_ENOMEM;
    return wr_raft_bcast_append(r, false);
}

static int request_votes(wr_raft_t *r, uint8_t type, uint64_t term, bool transfer)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        wr_raft_msg_t m = {.type = type, .from = r->cfg.id, .to = r->peers[i].id, .term = term};

        m.transfer = transfer;
        if (m.to == r->cfg.id || !r->peers[i].voter)
            continue;
        m.index = r->log.n;
        m.log_term = wr_raft_log_last_term(&r->log);
        /* A real vote request names our own vote: it must be durable first. */
        if (wr_raft_send(r, &m, type == WR_RAFT_MSG_VOTE) != WR_OK)
            return WR_ENOMEM;
    }
    return WR_OK;
}

static int tally_result(wr_raft_t *r);

static int become_candidate(wr_raft_t *r, bool transfer)
{
    r->role = WR_RAFT_CANDIDATE;
    r->term++;
    r->vote = r->cfg.id;
    r->leader = 0;
    r->leader_match = 0;
    r->acked = 0;
    reset_timeout(r);
    tally_reset(r);
    if (request_votes(r, WR_RAFT_MSG_VOTE, r->term, transfer) != WR_OK)
        return WR_ENOMEM;
    return tally_result(r);
}

static int become_pre_candidate(wr_raft_t *r)
{
    r->role = WR_RAFT_PRE_CANDIDATE;
    r->leader = 0;
    reset_timeout(r);
    tally_reset(r);
    if (request_votes(r, WR_RAFT_MSG_PREVOTE, r->term + 1, false) != WR_OK)
        return WR_ENOMEM;
    return tally_result(r);
}

/* Counts the voters' votes so far: a majority wins the round, a majority against loses it. */
static int tally_result(wr_raft_t *r)
{
    size_t yes = 0, no = 0, q = wr_raft_quorum(r);

    for (size_t i = 0; i < r->n_peers; i++) {
        yes += r->peers[i].voter && r->peers[i].voted && r->peers[i].granted;
        no += r->peers[i].voter && r->peers[i].voted && !r->peers[i].granted;
    }
    if (yes >= q)
        return r->role == WR_RAFT_PRE_CANDIDATE ? become_candidate(r, false) : become_leader(r);
    if (no >= q)
        wr_raft_become_follower(r, r->term, 0);
    return WR_OK;
}

static int on_vote_resp(wr_raft_t *r, const wr_raft_msg_t *m)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id != m->from || r->peers[i].voted)
            continue;
        r->peers[i].voted = true;
        r->peers[i].granted = !m->reject;
    }
    return tally_result(r);
}

static bool log_up_to_date(const wr_raft_t *r, const wr_raft_msg_t *m)
{
    uint64_t last_term = wr_raft_log_last_term(&r->log);

    return m->log_term > last_term || (m->log_term == last_term && m->index >= r->log.n);
}

/* A (pre-)vote request: grant at most one real vote per term, to a log at least as recent. */
static int on_vote(wr_raft_t *r, const wr_raft_msg_t *m)
{
    bool pre = m->type == WR_RAFT_MSG_PREVOTE;
    bool can = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    bool grant = can && r->abstain == 0 && log_up_to_date(r, m);
    wr_raft_msg_t resp = {.from = r->cfg.id, .to = m->from, .term = r->term, .reject = !grant};

    resp.type = pre ? WR_RAFT_MSG_PREVOTE_RESP : WR_RAFT_MSG_VOTE_RESP;
    if (pre && grant)
        resp.term = m->term;
    if (!pre && grant) {
        r->vote = m->from;
        reset_timeout(r);
    }
    /* A granted vote must be durable before the candidate can count it. */
    return wr_raft_send(r, &resp, !pre);
}

int wr_raft_send_ack(wr_raft_t *r)
{
    uint64_t idx = r->leader_match < r->log.stable ? r->leader_match : r->log.stable;
    wr_raft_msg_t m = {.type = WR_RAFT_MSG_APP_RESP, .from = r->cfg.id, .to = r->leader, .term = r->term};

    m.index = idx;
    if (idx > r->acked)
        r->acked = idx;
    return wr_raft_send(r, &m, false);
}

static int reject_append(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_msg_t resp = {.type = WR_RAFT_MSG_APP_RESP, .from = r->cfg.id, .to = m->from, .term = r->term};

    resp.reject = true;
    resp.index = m->index;
    if (m->index > r->log.n) {
        resp.hint_index = r->log.n + 1;
    } else {
        resp.hint_term = wr_raft_log_term(&r->log, m->index);
        resp.hint_index = wr_raft_log_term_start(&r->log, m->index);
    }
    return wr_raft_send(r, &resp, false);
}

/* Appends m's entries after the matching prefix, cutting a conflicting suffix;
 * a CONFIG entry appended or cut changes the membership in force. */
static int append_entries(wr_raft_t *r, const wr_raft_msg_t *m)
{
    bool reload = false;

    for (size_t i = 0; i < m->n_entries; i++) {
        uint64_t idx = m->index + 1 + i;

        if (idx <= r->log.n && wr_raft_log_term(&r->log, idx) == m->entries[i].term)
            continue;
        reload |= idx <= r->conf_index || m->entries[i].type == WR_RAFT_ENTRY_CONFIG;
        if (idx <= r->log.n)
            wr_raft_log_truncate(&r->log, idx);
        if (wr_raft_log_append(&r->log, &m->entries[i]) != WR_OK)
            return WR_ENOMEM;
    }
    if (reload)
        wr_raft_conf_reload(r);
    return WR_OK;
}

/* An append that starts inside the snapshot: that prefix is committed, so it
 * matches; the rest is an append after the log's offset. */
static wr_raft_msg_t skip_compacted(const wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_msg_t t = *m;
    uint64_t skip = r->log.offset - m->index;

    if (m->index >= r->log.offset)
        return t;
    skip = skip < m->n_entries ? skip : m->n_entries;
    t.index = r->log.offset;
    t.log_term = r->log.offset_term;
    t.entries = m->n_entries > skip ? m->entries + skip : NULL;
    t.n_entries = m->n_entries - skip;
    return t;
}

static int on_append(wr_raft_t *r, const wr_raft_msg_t *msg)
{
    wr_raft_msg_t trimmed = skip_compacted(r, msg);
    const wr_raft_msg_t *m = &trimmed;
    uint64_t last_new = m->index + m->n_entries;

    if (r->snap_missing)
        return wr_raft_snap_request(r, m->from);
    if (wr_raft_log_term(&r->log, m->index) != m->log_term || m->index > r->log.n)
        return reject_append(r, m);
    if (append_entries(r, m) != WR_OK)
        return WR_ENOMEM;
    if (last_new > r->leader_match)
        r->leader_match = last_new;
    /* The lost records were acknowledged in a term <= abstain; a later leader's
     * log up to its own first entry holds all that those acknowledgements
     * committed. A same-term leader's does not: it may commit past that. */
    if (r->abstain != 0 && r->term > r->abstain && wr_raft_log_term(&r->log, last_new) == r->term)
        r->abstain = 0;
    if (m->commit > r->commit && last_new > r->commit)
        r->commit = m->commit < last_new ? m->commit : last_new;
    /* Acknowledge now only what is durable; the rest on wr_raft_persisted. */
    return r->log.stable >= last_new ? wr_raft_send_ack(r) : WR_OK;
}

static int on_heartbeat(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_msg_t resp = {
        .type = WR_RAFT_MSG_HEARTBEAT_RESP, .from = r->cfg.id, .to = m->from, .term = r->term};
    uint64_t c = m->commit < r->log.n ? m->commit : r->log.n;

    if (r->snap_missing)
        return wr_raft_snap_request(r, m->from);
    /* The leader's match for a damaged member may predate the damage, which can
     * bring back overwritten entries: commit only what an append verified, and
     * report only that, so the leader probes and repairs the rest. */
    resp.index = r->log.n;
    if (r->abstain != 0 && c > r->leader_match)
        c = r->leader_match;
    if (r->abstain != 0 && resp.index > r->leader_match)
        resp.index = r->leader_match;
    if (c > r->commit)
        r->commit = c;
    return wr_raft_send(r, &resp, false);
}

/* A voter campaigns; so does a member whose removal is not known committed:
 * it may hold the only log that can win, and as leader it commits its removal
 * (counting only the remaining voters) and then steps down. */
static bool may_campaign(const wr_raft_t *r)
{
    bool member = false;

    for (size_t i = 0; i < r->n_peers; i++)
        member |= r->peers[i].id == r->cfg.id;
    return wr_raft_is_voter(r, r->cfg.id) || (!member && r->conf_index > r->commit);
}

static int follower_step(wr_raft_t *r, const wr_raft_msg_t *m)
{
    /* The leader hands over: campaign at once (a damaged log still abstains). */
    if (m->type == WR_RAFT_MSG_TIMEOUT_NOW && r->role == WR_RAFT_FOLLOWER && r->abstain == 0 &&
        may_campaign(r))
        return become_candidate(r, true);
    if (m->type != WR_RAFT_MSG_APP && m->type != WR_RAFT_MSG_HEARTBEAT && m->type != WR_RAFT_MSG_SNAP)
        return WR_OK;
    if (r->role != WR_RAFT_FOLLOWER || r->leader != m->from)
        wr_raft_become_follower(r, r->term, m->from);
    r->elapsed = 0;
    if (m->type == WR_RAFT_MSG_SNAP)
        return wr_raft_snap_recv(r, m);
    return m->type == WR_RAFT_MSG_APP ? on_append(r, m) : on_heartbeat(r, m);
}

static bool in_lease(const wr_raft_t *r)
{
    return r->leader != 0 && r->elapsed < r->cfg.election_ticks;
}

static bool from_leader(const wr_raft_msg_t *m)
{
    return m->type == WR_RAFT_MSG_APP || m->type == WR_RAFT_MSG_HEARTBEAT || m->type == WR_RAFT_MSG_SNAP;
}

/* Tells a stale leader or pre-candidate our term, so it steps down. */
static int step_lower_term(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_msg_t resp = {.from = r->cfg.id, .to = m->from, .term = r->term, .reject = true};

    if (from_leader(m))
        resp.type = WR_RAFT_MSG_APP_RESP;
    else if (m->type == WR_RAFT_MSG_PREVOTE)
        resp.type = WR_RAFT_MSG_PREVOTE_RESP;
    else
        return WR_OK;
    resp.index = m->index;
    resp.hint_index = m->index + 1;
    return wr_raft_send(r, &resp, false);
}

/* A higher term: returns false when the message is to be dropped. */
static bool step_higher_term(wr_raft_t *r, const wr_raft_msg_t *m)
{
    bool vote = m->type == WR_RAFT_MSG_VOTE || m->type == WR_RAFT_MSG_PREVOTE;

    /* Check-quorum: a member that hears from a live leader ignores campaigns. */
    if (vote && in_lease(r) && !m->transfer)
        return false;
    if (m->type == WR_RAFT_MSG_PREVOTE || (m->type == WR_RAFT_MSG_PREVOTE_RESP && !m->reject))
        return true;
    wr_raft_become_follower(r, m->term, from_leader(m) ? m->from : 0);
    return true;
}

int wr_raft_step(wr_raft_t *r, const wr_raft_msg_t *m)
{
    if (m->term < r->term)
        return step_lower_term(r, m);
    if (m->term > r->term && !step_higher_term(r, m))
        return WR_OK;
    if (m->type == WR_RAFT_MSG_VOTE || m->type == WR_RAFT_MSG_PREVOTE)
        return on_vote(r, m);
    switch (r->role) {
    case WR_RAFT_LEADER:
        return wr_raft_leader_step(r, m);
    case WR_RAFT_CANDIDATE:
        if (m->type == WR_RAFT_MSG_VOTE_RESP)
            return on_vote_resp(r, m);
        return follower_step(r, m);
    case WR_RAFT_PRE_CANDIDATE:
        if (m->type == WR_RAFT_MSG_PREVOTE_RESP)
            return m->term == r->term + 1 || m->reject ? on_vote_resp(r, m) : WR_OK;
        return follower_step(r, m);
    default:
        return follower_step(r, m);
    }
}

static int leader_tick(wr_raft_t *r)
{
    size_t active = 0;

    if (++r->hb_elapsed >= r->cfg.heartbeat_ticks) {
        r->hb_elapsed = 0;
        if (wr_raft_bcast_heartbeat(r) != WR_OK)
            return WR_ENOMEM;
    }
    if (r->transfer_to != 0 && ++r->transfer_elapsed >= r->cfg.election_ticks)
        r->transfer_to = 0; /* the target never took over: lead on */
    if (++r->elapsed < r->cfg.election_ticks)
        return WR_OK;
    r->elapsed = 0;
    for (size_t i = 0; i < r->n_peers; i++) {
        active += r->peers[i].voter && (r->peers[i].active || r->peers[i].id == r->cfg.id);
        r->peers[i].active = false;
    }
    /* Check-quorum: a leader that cannot reach a majority steps down. */
    if (active < wr_raft_quorum(r))
        wr_raft_become_follower(r, r->term, 0);
    return WR_OK;
}

int wr_raft_tick(wr_raft_t *r)
{
    if (r->role == WR_RAFT_LEADER)
        return leader_tick(r);
    if (++r->elapsed < r->timeout || r->abstain != 0 || !may_campaign(r))
        return WR_OK;
    return become_pre_candidate(r);
}

int wr_raft_propose(wr_raft_t *r, const void *data, size_t len, uint64_t *term, uint64_t *index)
{
    wr_raft_entry_t e = {.term = r->term, .data = (uint8_t *)data, .len = (uint32_t)len};

    if (r->role != WR_RAFT_LEADER)
        return WR_ENOENT;
    if (r->transfer_to != 0)
        return WR_AGAIN;
    if (len > UINT32_MAX)
        return WR_ETOOBIG;
    if (wr_raft_log_append(&r->log, &e) != WR_OK)
        return WR_ENOMEM;
    r->bcast = true;
    *term = r->term;
    *index = r->log.n;
    return WR_OK;
}

int wr_raft_transfer(wr_raft_t *r, uint32_t to)
{
    if (r->role != WR_RAFT_LEADER || to == r->cfg.id || !wr_raft_is_voter(r, to))
        return WR_ENOENT;
    r->transfer_to = to;
    r->transfer_elapsed = 0;
    return wr_raft_transfer_check(r);
}

int wr_raft_persisted(wr_raft_t *r, uint64_t term, uint64_t index)
{
    uint64_t ackable;

    if (index > r->log.n || index <= r->log.stable || wr_raft_log_term(&r->log, index) != term)
        return WR_OK;
    r->log.stable = index;
    ackable = r->leader_match < index ? r->leader_match : index;
    if (r->role == WR_RAFT_LEADER && wr_raft_maybe_commit(r))
        r->bcast_commit = true;
    else if (r->role == WR_RAFT_FOLLOWER && r->leader != 0 && ackable > r->acked)
        return wr_raft_send_ack(r);
    return WR_OK;
}

void wr_raft_status(const wr_raft_t *r, wr_raft_status_t *st)
{
    *st = (wr_raft_status_t){r->role,        r->term,       r->vote,
                             r->leader,      r->commit,     r->applied,
                             r->log.stable,  r->log.n,      wr_raft_log_last_term(&r->log),
                             r->abstain,     r->snap_index, r->log.offset + 1,
                             r->snap_missing};
}

uint64_t wr_raft_term(const wr_raft_t *r, uint64_t index)
{
    return wr_raft_log_term(&r->log, index);
}

const wr_raft_entry_t *wr_raft_entry(const wr_raft_t *r, uint64_t index)
{
    return wr_raft_log_at(&r->log, index);
}

size_t wr_raft_sizeof(void)
{
    return sizeof(wr_raft_t);
}
