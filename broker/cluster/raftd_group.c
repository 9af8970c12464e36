/* SPDX-License-Identifier: MIT */
/*
 * A Raft group of the driver coming back at open (its members file, stored
 * snapshot, WAL log and hard state, with the damage recovery reported), and
 * what the management API shows of it (wr_rgroup_status).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "broker/cluster/raftd_internal.h"
#include "core/status.h"

/*
 * The stored log after the snapshot; a log that lacks the snapshot's entry
 * restarts after it. NORMAL entries come without their payloads (the core reads
 * them back through the driver), so a long backlog is not loaded into memory.
 */
static int load_log(wr_rgroup_t *g, const wr_raft_snapshot_t *meta, wr_raft_entry_t **out, size_t *n,
                    bool *damaged)
{
    wr_wal_group_info_t info;
    uint64_t term = 0;
    wr_buf_t b = WR_BUF_INIT;
    int rc = WR_OK;

    *out = NULL;
    *n = 0;
    if (wr_wal_group_info(g->d->wal, g->id, &info) != WR_OK)
        return WR_OK;
    if (meta->index > info.snap_index &&
        (meta->index > info.last || wr_wal_read(g->d->wal, g->id, meta->index, &term, &b) != WR_OK ||
         term != meta->term)) {
        wr_buf_free(&b);
        return wr_raftd_wal_snapshot(g, meta->index, meta->term);
    }
    wr_buf_free(&b);
    if (info.last <= meta->index || (*out = calloc(info.last - meta->index, sizeof(**out))) == NULL)
        return info.last <= meta->index ? WR_OK : WR_ENOMEM;
    for (uint64_t i = meta->index + 1; rc == WR_OK && i <= info.last; i++) {
        wr_raft_entry_t *e = &(*out)[*n];
        wr_buf_reset(&b);
        if ((rc = wr_wal_read(g->d->wal, g->id, i, &e->term, &b)) != WR_OK || b.len < 1) {
            *damaged = true;
            break;
        }
        *e = (wr_raft_entry_t){e->term, i, NULL, (uint32_t)(b.len - 1), b.data[0]};
        if (e->len > 0 && e->type != WR_RAFT_ENTRY_NORMAL && (e->data = malloc(e->len)) == NULL)
            rc = WR_ENOMEM;
        else if (e->data != NULL)
            memcpy(e->data, b.data + 1, e->len);
        (*n) += rc == WR_OK;
    }
    wr_buf_free(&b);
    return rc == WR_ENOMEM ? rc : WR_OK; /* a record unreadable now ends the log there: Raft refetches */
}

/* The hard state the WAL holds (NULL: a new member) and whether the log was damaged. */
static const wr_raft_hard_state_t *load_hard(wr_rgroup_t *g, wr_raft_hard_state_t *hs, bool *damaged)
{
    wr_wal_group_info_t info;

    if (wr_wal_group_info(g->d->wal, g->id, &info) != WR_OK)
        return NULL;
    *hs =
        (wr_raft_hard_state_t){info.hard.term, (uint32_t)info.hard.vote, info.hard.commit, info.hard.abstain};
    *damaged |= info.damaged || g->d->wal_corrupt;
    return hs;
}

/*
 * The stored snapshot, or, when it is damaged or missing although the WAL was
 * compacted, the point the WAL was compacted to: the member lost state and
 * refetches it from the leader (cfg->snapshot_lost, with log_damaged).
 */
static int load_snapshot(wr_rgroup_t *g, wr_raft_config_t *cfg, wr_raft_snapshot_t *meta)
{
    wr_wal_group_info_t info = {0};
    int rc = wr_raftd_snap_load(g, meta);

    if (rc == WR_EIO)
        return rc;
    (void)wr_wal_group_info(g->d->wal, g->id, &info);
    if (rc == WR_OK && meta->index >= info.snap_index)
        return WR_OK;
    *meta = (wr_raft_snapshot_t){.index = info.snap_index, .term = info.snap_term};
    cfg->snapshot_lost = cfg->log_damaged = meta->index > 0;
    if (meta->index > 0)
        wr_log(WR_LOG_WARNING,
               "raft: group %llu: its snapshot is lost; it asks the leader for one at %llu or later",
               (unsigned long long)g->id, (unsigned long long)meta->index);
    return WR_OK;
}

static int config_peers(wr_rgroup_t *g, const char *const *members, size_t n, wr_raft_config_t *cfg)
{
    if (n > WR_RAFT_MAX_PEERS)
        return WR_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = wr_raftd_node_id(members[i]);
        if (wr_raftd_slot(g->d, id) < 0) {
            wr_log(WR_LOG_ERROR, "raft: group %llu: member '%s' is not a node of the cluster",
                   (unsigned long long)g->id, members[i]);
            return WR_ENOENT;
        }
        cfg->peers[cfg->n_peers++] = id;
    }
    return wr_raftd_members(g, cfg->peers, &cfg->n_peers);
}

bool wr_raftd_conf_has(const wr_raft_conf_t *c, uint32_t id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->id[i] == id)
            return true;
    }
    return false;
}

/* Whether this node is a member as of the snapshot (or, without one, among the first voters). */
static bool member_at(const wr_raft_config_t *cfg, const wr_raft_snapshot_t *meta)
{
    wr_raft_conf_t first = {.n = cfg->n_peers};

    memcpy(first.id, cfg->peers, sizeof(first.id));
    return wr_raftd_conf_has(meta->conf.n > 0 ? &meta->conf : &first, cfg->id);
}

/* The core from the stored snapshot, log and hard state. */
int wr_raftd_restore(wr_rgroup_t *g, const char *const *members, size_t n)
{
    wr_raftd_t *d = g->d;
    wr_raft_config_t cfg = {.id = d->self,
                            .election_ticks = d->election_ticks,
                            .heartbeat_ticks = d->heartbeat_ticks,
                            .max_inflight = 64,
                            .max_batch = 64,
                            .seed = d->seed ^ g->id,
                            .snapshot_trailing = g->snapshot_every / 4,
                            .payload_window = WR_RAFTD_PAYLOAD_WINDOW};
    wr_raft_snapshot_t meta = {0};
    wr_raft_hard_state_t hs;
    const wr_raft_hard_state_t *h;
    wr_raft_entry_t *e = NULL;
    size_t count = 0;
    int rc;

    if ((rc = config_peers(g, members, n, &cfg)) != WR_OK || (rc = load_snapshot(g, &cfg, &meta)) != WR_OK ||
        (rc = load_log(g, &meta, &e, &count, &cfg.log_damaged)) != WR_OK)
        goto out;
    h = load_hard(g, &hs, &cfg.log_damaged);
    g->raft = wr_raft_restore(&cfg, h, &meta, e, count);
    rc = g->raft ? WR_OK : WR_ENOMEM;
    g->applied = cfg.snapshot_lost ? 0 : meta.index;
    g->member = member_at(&cfg, &meta);
out:
    wr_raftd_entries_free(e, count);
    return rc;
}

static const char *role_name(wr_raft_role_t r)
{
    static const char *const names[] = {"follower", "pre_candidate", "candidate", "leader"};

    return names[r];
}

void wr_rgroup_status(const wr_rgroup_t *g, wr_rgroup_status_t *st)
{
    wr_raft_status_t s;
    wr_raft_conf_t c;

    wr_raft_status(g->raft, &s);
    wr_raft_conf(g->raft, &c);
    *st = (wr_rgroup_status_t){.role = role_name(s.role),
                               .leader = wr_raftd_name(g->d, s.leader),
                               .term = s.term,
                               .commit = s.commit,
                               .applied = g->applied,
                               .last_index = s.last_index,
                               .snapshot_index = s.snap_index,
                               .elections = g->elections,
                               .timeouts = g->timeouts,
                               .read_backs = g->read_backs};
    for (size_t i = 0; i < c.n && i < WR_RAFT_MAX_PEERS; i++) {
        const char *name = wr_raftd_name(g->d, c.id[i]);
        int slot = wr_raftd_slot(g->d, c.id[i]);

        st->members[st->n_members] = name ? name : "?";
        if (s.role == WR_RAFT_LEADER)
            st->match[st->n_members] = c.id[i] == g->d->self ? s.last_index : slot >= 0 ? g->match[slot] : 0;
        st->voter[st->n_members++] = c.voter[i];
    }
}

bool wr_rgroup_committed_member(const wr_rgroup_t *g, const char *node)
{
    wr_raft_status_t st;
    wr_raft_conf_t c;

    wr_raft_status(g->raft, &st);
    wr_raft_conf_at(g->raft, st.commit, &c);
    return wr_raftd_conf_has(&c, wr_raftd_node_id(node));
}
