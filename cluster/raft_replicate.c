/* SPDX-License-Identifier: MIT */
/*
 * The leader's side of replication: per-member progress (probe until the
 * match point is found, then pipelined batches up to an in-flight window),
 * the conflict-term back-off, heartbeats and the current-term commit rule.
 */
#include <stdlib.h>

#include "cluster/raft_internal.h"
#include "core/status.h"

static wr_raft_peer_t *peer_find(wr_raft_t *r, uint32_t id)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

void wr_raft_progress_reset(wr_raft_t *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        wr_raft_peer_t *p = &r->peers[i];
        *p = (wr_raft_peer_t){
            .id = p->id, .state = PEER_PROBE, .active = true, .voter = p->voter, .next = r->log.n + 1};
    }
}

/* Entries sent and not yet acknowledged, bounded by max_inflight batches. */
static bool peer_paused(const wr_raft_t *r, const wr_raft_peer_t *p)
{
    if (p->state == PEER_PROBE)
        return p->probe_sent;
    if (p->state == PEER_SNAPSHOT)
        return p->snap_sent;
    return p->next - 1 - p->match >= (uint64_t)r->cfg.max_inflight * r->cfg.max_batch;
}

static void peer_probe(wr_raft_peer_t *p, uint64_t next)
{
    p->state = PEER_PROBE;
    p->probe_sent = false;
    p->next = next > p->match ? next : p->match + 1;
}

/* Sends one AppendEntries to p; *sent says whether one left. */
static int send_append(wr_raft_t *r, wr_raft_peer_t *p, bool empty, bool *sent)
{
    uint64_t lo = p->next, hi = r->log.n;
    wr_raft_msg_t m = {.type = WR_RAFT_MSG_APP, .from = r->cfg.id, .to = p->id, .term = r->term};

    *sent = false;
    if (p->state == PEER_SNAPSHOT)
        return wr_raft_snap_send(r, p);
    if (peer_paused(r, p))
        return WR_OK;
    /* The entry before lo is compacted away: only a snapshot can bring p up. */
    if (lo - 1 < r->log.offset)
        return wr_raft_snap_start(r, p, lo - 1);
    if (hi >= lo + r->cfg.max_batch)
        hi = lo + r->cfg.max_batch - 1;
    if (hi < lo && p->state == PEER_REPLICATE && !empty)
        return WR_OK;
    m.index = lo - 1;
    m.log_term = wr_raft_log_term(&r->log, lo - 1);
    m.commit = r->commit;
    m.n_entries = hi >= lo ? hi - lo + 1 : 0;
    if (p->state == PEER_REPLICATE)
        p->next = hi + 1 > lo ? hi + 1 : lo;
    else
        p->probe_sent = true;
    *sent = m.n_entries > 0;
    return wr_raft_send(r, &m, false);
}

/* Sends batches to p until its window is full or it lacks nothing. */
static int peer_flush(wr_raft_t *r, wr_raft_peer_t *p, bool empty)
{
    bool sent = true;
    int rc = send_append(r, p, empty, &sent);

    while (rc == WR_OK && sent && p->state == PEER_REPLICATE)
        rc = send_append(r, p, false, &sent);
    return rc;
}

int wr_raft_bcast_append(wr_raft_t *r, bool empty)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id == r->cfg.id)
            continue;
        if (peer_flush(r, &r->peers[i], empty) != WR_OK)
            return WR_ENOMEM;
    }
    return WR_OK;
}

int wr_raft_bcast_heartbeat(wr_raft_t *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        wr_raft_peer_t *p = &r->peers[i];
        wr_raft_msg_t m = {.type = WR_RAFT_MSG_HEARTBEAT, .from = r->cfg.id, .to = p->id, .term = r->term};

        if (p->id == r->cfg.id)
            continue;
        m.commit = p->match < r->commit ? p->match : r->commit;
        if (wr_raft_send(r, &m, false) != WR_OK)
            return WR_ENOMEM;
    }
    return WR_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

bool wr_raft_maybe_commit(wr_raft_t *r)
{
    uint64_t m[WR_RAFT_MAX_PEERS], q;
    size_t n = 0;

    /* Only the voters of the membership in force count (a removed leader not). */
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].voter)
            m[n++] = r->peers[i].id == r->cfg.id ? r->log.stable : r->peers[i].match;
    qsort(m, n, sizeof(m[0]), cmp_desc);
    q = m[wr_raft_quorum(r) - 1];
    /* Figure 8: only an entry of the leader's own term commits by counting. */
    if (q <= r->commit || wr_raft_log_term(&r->log, q) != r->term)
        return false;
    r->commit = q;
    return true;
}

/* The next index to try after a refusal, from the follower's conflict hint. */
static uint64_t backoff_next(const wr_raft_t *r, const wr_raft_msg_t *m)
{
    uint64_t next = m->hint_index;

    if (m->hint_term != 0) {
        uint64_t last = wr_raft_log_last_of_term(&r->log, m->hint_term);
        if (last != 0)
            next = last + 1;
    }
    if (next > m->index)
        next = m->index;
    return next == 0 ? 1 : next;
}

static int on_reject(wr_raft_t *r, wr_raft_peer_t *p, const wr_raft_msg_t *m)
{
    bool stale;

    if (p->state == PEER_SNAPSHOT)
        return WR_OK; /* an answer to an append sent before the transfer began */
    /* Shorter than what it acknowledged: its disk lost a suffix; start over. */
    if (m->hint_term == 0 && m->hint_index > 0 && m->hint_index <= p->match && m->index >= p->match) {
        p->match = m->hint_index - 1;
        peer_probe(p, m->hint_index);
        return peer_flush(r, p, false);
    }
    stale = p->state == PEER_REPLICATE ? m->index <= p->match : m->index != p->next - 1;

    if (stale)
        return WR_OK;
    peer_probe(p, backoff_next(r, m));
    return peer_flush(r, p, false);
}

static int on_ack(wr_raft_t *r, wr_raft_peer_t *p, const wr_raft_msg_t *m)
{
    /* The snapshot is installed (or p had it): the log goes on from there. */
    if (p->state == PEER_SNAPSHOT && m->index >= r->log.offset && m->index <= r->log.n)
        peer_probe(p, m->index + 1);
    if (p->state == PEER_PROBE)
        p->probe_sent = false;
    if (m->index > p->match && m->index <= r->log.n) {
        p->match = m->index;
        if (p->state == PEER_PROBE) {
            p->state = PEER_REPLICATE;
            p->next = p->match + 1;
        }
        if (p->next <= p->match)
            p->next = p->match + 1;
        if (wr_raft_maybe_commit(r))
            r->bcast_commit = true;
    }
    return peer_flush(r, p, false);
}

int wr_raft_transfer_check(wr_raft_t *r)
{
    wr_raft_peer_t *p = r->transfer_to ? peer_find(r, r->transfer_to) : NULL;
    wr_raft_msg_t m = {
        .type = WR_RAFT_MSG_TIMEOUT_NOW, .from = r->cfg.id, .to = r->transfer_to, .term = r->term};

    if (p == NULL || p->match < r->log.n)
        return p == NULL ? WR_OK : peer_flush(r, p, false);
    return wr_raft_send(r, &m, false);
}

static int on_heartbeat_resp(wr_raft_t *r, wr_raft_peer_t *p, const wr_raft_msg_t *m)
{
    if (p->state == PEER_SNAPSHOT) {
        p->snap_sent = false; /* the chunk or its answer may be lost: resend */
        return peer_flush(r, p, false);
    }
    if (m->index < p->match) {
        /* Its log is shorter than what it acknowledged: its disk lost records. */
        p->match = m->index;
        peer_probe(p, m->index + 1);
    } else if (p->state == PEER_PROBE)
        p->probe_sent = false;
    else if (p->match < r->log.n && p->match == p->hb_match)
        peer_probe(p, p->match + 1); /* nothing acknowledged for a whole beat: resend */
    p->hb_match = p->match;
    return p->match < r->log.n ? peer_flush(r, p, false) : WR_OK;
}

int wr_raft_leader_step(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_peer_t *p = peer_find(r, m->from);

    if (p == NULL || p->id == r->cfg.id)
        return WR_OK;
    p->active = true;
    if (m->type == WR_RAFT_MSG_HEARTBEAT_RESP)
        return on_heartbeat_resp(r, p, m);
    if (m->type == WR_RAFT_MSG_SNAP_RESP)
        return wr_raft_snap_resp(r, p, m);
    if (m->type != WR_RAFT_MSG_APP_RESP)
        return WR_OK;
    if (m->reject)
        return on_reject(r, p, m);
    if (on_ack(r, p, m) != WR_OK)
        return WR_ENOMEM;
    return p->id == r->transfer_to ? wr_raft_transfer_check(r) : WR_OK;
}
