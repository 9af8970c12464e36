/* SPDX-License-Identifier: MIT */
/*
 * The output of the core: queued messages (those that may leave at once and
 * those that wait for the disk), entries to persist, hard state and
 * committed entries, handed to the driver as one ready batch.
 */
#include <stdlib.h>

#include "cluster/raft_internal.h"
#include "core/status.h"

int wr_raft_send(wr_raft_t *r, const wr_raft_msg_t *m, bool after_sync)
{
    wr_raft_msgq_t *q = after_sync ? &r->out_sync : &r->out;

    if (q->n == q->cap) {
        size_t cap = q->cap == 0 ? 4 : q->cap * 2;
        wr_raft_msg_t *n = realloc(q->m, cap * sizeof(*n));
        if (n == NULL)
            return WR_ENOMEM;
        q->m = n;
        q->cap = cap;
    }
    q->m[q->n++] = *m;
    return WR_OK;
}

/*
 * True for a queued message that can no longer leave: an AppendEntries whose
 * previous entry or entries the log has since truncated (a leader that
 * stepped down and took a new leader's suffix in the same step: its log_term
 * and its entries would come from two different histories) or compacted, and
 * a snapshot chunk of a snapshot replaced since. Dropping is what a lossy
 * network may do anyway.
 */
static bool msg_stale(const wr_raft_t *r, const wr_raft_msg_t *m)
{
    if (m->type == WR_RAFT_MSG_SNAP)
        return m->index != r->snap_index || r->snap_conf_e.len == 0;
    if (m->type != WR_RAFT_MSG_APP)
        return false;
    if (m->n_entries > 0 && m->index < r->log.offset)
        return true;
    return r->log.cut != 0 && m->index + m->n_entries >= r->log.cut;
}

/* Queued AppendEntries hold only a count, chunks no membership: point them in now. */
static void resolve_entries(wr_raft_t *r, wr_raft_msgq_t *q)
{
    size_t kept = 0;

    for (size_t i = 0; i < q->n; i++) {
        wr_raft_msg_t *m = &q->m[i];

        if (msg_stale(r, m))
            continue;
        if (m->type == WR_RAFT_MSG_SNAP)
            m->entries = &r->snap_conf_e;
        else
            m->entries = m->n_entries > 0 ? wr_raft_log_at(&r->log, m->index + 1) : NULL;
        q->m[kept++] = *m;
    }
    q->n = kept;
}

static bool hs_equal(const wr_raft_hard_state_t *a, const wr_raft_hard_state_t *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit && a->abstain == b->abstain;
}

static wr_raft_hard_state_t hs_now(const wr_raft_t *r)
{
    return (wr_raft_hard_state_t){r->term, r->vote, r->commit, r->abstain};
}

bool wr_raft_has_ready(const wr_raft_t *r)
{
    wr_raft_hard_state_t hs = hs_now(r);

    return r->out.n > 0 || r->out_sync.n > 0 || r->bcast || r->bcast_commit ||
           !hs_equal(&hs, &r->hs_handed) || r->log.unstable <= r->log.n || r->applied < r->commit ||
           r->chunk != NULL || r->install_ready || r->compact_ready || r->snap_wanted;
}

/* The snapshot outputs: a chunk to store, a snapshot installed, a prefix to drop. */
static void ready_snapshot(wr_raft_t *r, wr_raft_ready_t *rd)
{
    rd->has_chunk = r->chunk != NULL;
    rd->chunk =
        (wr_raft_snap_chunk_t){r->rx_index, r->rx_term, r->chunk_off, r->chunk, r->chunk_len, r->chunk_last};
    rd->installed = r->install_ready;
    if (rd->installed) {
        rd->snapshot = (wr_raft_snapshot_t){.index = r->snap_index, .term = r->snap_term};
        if (wr_raft_conf_decode(&r->snap_conf_e, &rd->snapshot.conf) != WR_OK)
            rd->snapshot.conf.n = 0;
    }
    if (r->compact_ready) {
        rd->compact_index = r->log.offset;
        rd->compact_term = r->log.offset_term;
    }
    rd->snapshot_wanted = r->snap_wanted;
}

/* Leader: sends what proposals and commit moves since the last ready call for;
 * a leader whose own removal is committed then steps down. */
static int flush_leader(wr_raft_t *r)
{
    int rc = WR_OK;

    if (r->role == WR_RAFT_LEADER && (r->bcast || r->bcast_commit))
        rc = wr_raft_bcast_append(r, r->bcast_commit);
    r->bcast = false;
    r->bcast_commit = false;
    if (r->role == WR_RAFT_LEADER && r->conf_index <= r->commit && !wr_raft_is_voter(r, r->cfg.id))
        wr_raft_become_follower(r, r->term, 0);
    return rc;
}

int wr_raft_ready(wr_raft_t *r, wr_raft_ready_t *rd)
{
    uint64_t apply_to = r->commit < r->log.n ? r->commit : r->log.n;

    if (r->snap_missing)
        apply_to = r->applied; /* no state to apply them to */
    if (flush_leader(r) != WR_OK)
        return WR_ENOMEM;
    resolve_entries(r, &r->out);
    resolve_entries(r, &r->out_sync);
    r->log.cut = 0;
    r->rd_hs = hs_now(r);
    r->rd_unstable = r->log.n + 1;
    r->rd_applied = apply_to > r->applied ? apply_to : r->applied;
    *rd = (wr_raft_ready_t){.hs_changed = !hs_equal(&r->rd_hs, &r->hs_handed), .hs = r->rd_hs};
    if (r->log.unstable <= r->log.n) {
        rd->entries = wr_raft_log_at(&r->log, r->log.unstable);
        rd->n_entries = r->log.n + 1 - r->log.unstable;
    }
    rd->msgs = r->out.m;
    rd->n_msgs = r->out.n;
    rd->msgs_after_sync = r->out_sync.m;
    rd->n_msgs_after_sync = r->out_sync.n;
    if (r->rd_applied > r->applied) {
        rd->committed = wr_raft_log_at(&r->log, r->applied + 1);
        rd->n_committed = r->rd_applied - r->applied;
    }
    ready_snapshot(r, rd);
    return WR_OK;
}

/*
 * The payloads the driver can read back from its stored log go: durable here
 * and handed over to apply; on a leader also acknowledged by every other
 * member, or older than the window (a member that far behind is served from
 * the stored log).
 */
static void drop_payloads(wr_raft_t *r)
{
    uint64_t to = r->log.stable < r->applied ? r->log.stable : r->applied;
    uint64_t need = r->log.n;

    if (r->cfg.payload_window == 0)
        return;
    for (size_t i = 0; r->role == WR_RAFT_LEADER && i < r->n_peers; i++)
        if (r->peers[i].id != r->cfg.id && r->peers[i].match < need)
            need = r->peers[i].match;
    if (r->role == WR_RAFT_LEADER && need + r->cfg.payload_window < r->log.n)
        need = r->log.n - r->cfg.payload_window;
    wr_raft_log_drop_payloads(&r->log, to < need ? to : need);
}

void wr_raft_advance(wr_raft_t *r)
{
    r->log.unstable = r->rd_unstable;
    r->applied = r->rd_applied;
    r->hs_handed = r->rd_hs;
    r->out.n = 0;
    r->out_sync.n = 0;
    free(r->chunk);
    r->chunk = NULL;
    r->install_ready = r->compact_ready = r->snap_wanted = false;
    drop_payloads(r);
}
