/* SPDX-License-Identifier: MIT */
/*
 * One simulated node: a Raft core per group, its disk model, and the driver
 * that drains ready batches by the ordering contract of cluster/raft.h
 * (messages that wait for the disk are held until the node's next sync).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

wr_raft_config_t sim_node_config(const sim_t *s, int id, int group)
{
    wr_raft_config_t c = {.id = (uint32_t)id, .election_ticks = 10, .heartbeat_ticks = 2};

    for (int i = 1; i <= s->voters0; i++)
        c.peers[c.n_peers++] = (uint32_t)i;
    c.max_inflight = s->max_inflight;
    c.max_batch = s->max_batch;
    c.snapshot_trailing = (unsigned)s->trailing;
    c.payload_window = s->payload_window;
    c.seed = s->o.seed * 1000003u + (uint64_t)group;
    return c;
}

wr_raft_entry_t *sim_entries_dup(const wr_raft_entry_t *e, size_t n)
{
    wr_raft_entry_t *out = n ? malloc(n * sizeof(*out)) : NULL;

    if (n && out == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        out[i] = e[i];
        out[i].data = NULL;
        if (e[i].len == 0 || e[i].data == NULL)
            continue;
        if ((out[i].data = malloc(e[i].len)) == NULL)
            abort();
        memcpy(out[i].data, e[i].data, e[i].len);
    }
    return out;
}

void sim_entries_free(wr_raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

const uint8_t *sim_member_payload(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e, wr_buf_t *b)
{
    bool ok;

    if (e->data != NULL || e->len == 0)
        return e->data;
    ok = n->wal != NULL ? sim_wal_payload(n->wal, g, e, b) : sim_disk_payload(&n->g[g].disk, e, b);
    if (!ok) {
        sim_fail(s, "read-back: n%d g%d entry %llu/%llu, whose payload the core dropped, is not on its disk",
                 n->id, g, (unsigned long long)e->term, (unsigned long long)e->index);
        wr_buf_reset(b);
        for (uint32_t i = 0; i < e->len; i++)
            wr_buf_put_u8(b, 0);
        if (!wr_buf_ok(b))
            abort();
    }
    return b->data;
}

/* Copies of e[0..count) with every payload, those the core dropped read back from the disk. */
static wr_raft_entry_t *entries_filled(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e, size_t count)
{
    wr_raft_entry_t *out = sim_entries_dup(e, count);
    wr_buf_t b = WR_BUF_INIT;

    for (size_t i = 0; i < count; i++) {
        if (out[i].data != NULL || out[i].len == 0)
            continue;
        const uint8_t *p = sim_member_payload(s, n, g, &out[i], &b);
        if ((out[i].data = malloc(out[i].len)) == NULL)
            abort();
        memcpy(out[i].data, p, out[i].len);
        s->read_backs++;
    }
    wr_buf_free(&b);
    return out;
}

/* With a payload window the core restarts without payloads, as the broker's driver gives it (the WAL's
 * entries are copies; the toy disk's stay the disk's). */
static void strip_payloads(const sim_t *s, sim_node_t *n, wr_raft_entry_t *e, size_t count)
{
    for (size_t i = 0; s->payload_window > 0 && i < count; i++) {
        if (e[i].type != WR_RAFT_ENTRY_NORMAL)
            continue;
        if (n->wal != NULL)
            free(e[i].data);
        e[i].data = NULL;
    }
}

/* The last durable index: of the log, or of the snapshot when the log holds nothing past it. */
size_t sim_member_valid(sim_node_t *n, int g)
{
    uint64_t log = n->wal != NULL ? sim_wal_valid(n->wal, g) : sim_disk_valid(&n->g[g].disk);
    uint64_t snap = n->g[g].snap.durable.index;

    return (size_t)(log > snap ? log : snap);
}

uint64_t sim_member_term(sim_node_t *n, int g, uint64_t index)
{
    if (index != 0 && index == n->g[g].snap.durable.index)
        return n->g[g].snap.durable.term;
    return n->wal != NULL ? sim_wal_term(n->wal, g, index) : sim_disk_term(&n->g[g].disk, index);
}

/* A snapshot holds only committed entries: everything at or below it is there. */
bool sim_member_holds(sim_node_t *n, int g, uint64_t index, uint64_t term)
{
    return index <= n->g[g].snap.durable.index || sim_member_term(n, g, index) == term;
}

wr_raft_hard_state_t sim_member_durable_hs(const sim_node_t *n, int g)
{
    return n->wal != NULL ? sim_wal_durable_hs(n->wal, g) : sim_disk_durable_hs(&n->g[g].disk);
}

/* The WAL reports damage at recovery, which then makes the core's abstain durable: the
 * hard state tells. The toy disk keeps bad records until a write cuts them. */
bool sim_member_damaged(sim_node_t *n, int g)
{
    const sim_disk_t *d = &n->g[g].disk;
    uint64_t valid = n->wal == NULL ? sim_disk_valid(&n->g[g].disk) : 0;

    return n->g[g].snap.bad || (n->wal == NULL && valid < d->base + d->n && valid < d->synced);
}

/* The durable state from the node's disk: the entries are copies with the WAL, the disk's with the toy. */
static wr_raft_entry_t *member_load(sim_node_t *n, int g, wr_raft_hard_state_t *hs, size_t *count,
                                    bool *damaged)
{
    const wr_raft_entry_t *e;
    wr_raft_entry_t *copy;

    if (n->wal != NULL) {
        sim_wal_load(n->wal, g, hs, &copy, count, damaged);
        return copy;
    }
    sim_disk_load(&n->g[g].disk, hs, &e, count, damaged);
    return (wr_raft_entry_t *)e;
}

/* What a restart would come back with as commit: the core trusts no commit of a damaged log. */
static uint64_t commit_floor(const wr_raft_hard_state_t *hs, size_t valid, bool damaged)
{
    if (damaged || hs->abstain != 0)
        return 0;
    return hs->commit < valid ? hs->commit : valid;
}

/* A damaged snapshot file: the core restarts from the stored log's marker and refetches the
 * state from the leader (no marker: the log still holds everything, nothing is lost). */
static void snapshot_lost(sim_node_t *n, int g, wr_raft_config_t *cfg, wr_raft_snapshot_t *meta)
{
    uint64_t index, term;

    if (n->wal != NULL)
        sim_wal_base(n->wal, g, &index, &term);
    else
        sim_disk_base(&n->g[g].disk, &index, &term);
    *meta = (wr_raft_snapshot_t){.index = index, .term = term};
    cfg->snapshot_lost = cfg->log_damaged = index > 0;
}

/* A stored log compacted past the snapshot a restart finds (none, or an older one) lost what lies between,
 * unless a bit flip damaged the snapshot file: a driver that made the marker durable before its snapshot. */
static void check_log_covered(sim_t *s, sim_node_t *n, int g, const wr_raft_snapshot_t *meta, bool flipped)
{
    uint64_t index, term;

    if (n->wal != NULL)
        sim_wal_base(n->wal, g, &index, &term);
    else
        sim_disk_base(&n->g[g].disk, &index, &term);
    if (index > meta->index && !flipped)
        sim_fail(s, "n%d g%d: its stored log is compacted to %llu, past its durable snapshot (%llu)", n->id,
                 g, (unsigned long long)index, (unsigned long long)meta->index);
}

/* A stored log that does not hold the snapshot's last entry (records lost since, or an
 * install whose marker did not reach the disk) restarts after it, as the core does. */
static void stored_log_after(sim_node_t *n, int g, const wr_raft_snapshot_t *meta)
{
    sim_disk_t *d = &n->g[g].disk;
    uint64_t term = n->wal != NULL ? sim_wal_term(n->wal, g, meta->index) : sim_disk_term(d, meta->index);

    if (meta->index == 0 || term == meta->term)
        return;
    if (n->wal != NULL) {
        sim_wal_snapshot(n->wal, g, meta->index, meta->term);
        return;
    }
    sim_disk_compact(d, meta->index, meta->term);
    sim_disk_sync(d, d->n_ops);
}

/* As the WAL's recovery does: the abstain mark is durable before the bad records may go. */
static void toy_mark_damaged(sim_node_t *n, int g)
{
    sim_disk_t *d = &n->g[g].disk;
    wr_raft_hard_state_t hs = sim_disk_durable_hs(d);

    if (n->wal != NULL || hs.abstain != 0)
        return;
    hs.abstain = hs.term > 0 ? hs.term : 1;
    sim_disk_set_hs(d, &hs);
    sim_disk_sync(d, d->n_ops);
}

static void member_start(sim_t *s, sim_node_t *n, int g)
{
    sim_member_t *m = &n->g[g];
    wr_raft_config_t cfg = sim_node_config(s, n->id, g);
    wr_raft_snapshot_t meta;
    wr_raft_hard_state_t hs;
    wr_raft_entry_t *e;
    size_t count;
    bool damaged, flipped = m->snap.bad, loaded = sim_snap_load(s, n, g, &meta);

    check_log_covered(s, n, g, &meta, flipped);
    /* No snapshot but a compacted stored log: lost too (a driver's own bug would show here). */
    if (!loaded || meta.index == 0)
        snapshot_lost(n, g, &cfg, &meta);
    /* The toy disk's damage shows as bad records, which the marker may cut: note it first. */
    cfg.log_damaged |= sim_member_damaged(n, g);
    if (cfg.log_damaged)
        toy_mark_damaged(n, g);
    stored_log_after(n, g, &meta);
    e = member_load(n, g, &hs, &count, &damaged);
    strip_payloads(s, n, e, count);
    cfg.log_damaged |= damaged;
    m->raft = wr_raft_restore(&cfg, &hs, &meta, e, count);
    if (m->raft == NULL)
        abort();
    m->written_index = count ? e[count - 1].index : meta.index;
    m->written_term = count ? e[count - 1].term : meta.term;
    if (n->wal != NULL)
        sim_entries_free(e, count);
    else
        free(e);
    m->commit_floor = commit_floor(&hs, sim_member_valid(n, g), cfg.log_damaged);
    if (damaged)
        sim_trace(s, "n%d g%d log damaged: %zu entries survive", n->id, g, count);
    if (meta.index > 0)
        sim_trace(s, "n%d g%d snapshot %llu/%llu%s", n->id, g, (unsigned long long)meta.term,
                  (unsigned long long)meta.index, cfg.snapshot_lost ? " lost" : "");
    sim_trace(s, "n%d g%d restored term %llu vote %u commit %llu abstain %llu, %zu entries", n->id, g,
              (unsigned long long)hs.term, hs.vote, (unsigned long long)hs.commit,
              (unsigned long long)hs.abstain, count);
    m->leader_since = 0;
    memset(m->heard, 0, sizeof(m->heard));
}

static void wal_message(void *ud, const char *text)
{
    sim_trace(ud, "%s", text);
}

void sim_node_start(sim_t *s, sim_node_t *n)
{
    if (n->g == NULL)
        n->g = calloc((size_t)s->o.groups, sizeof(*n->g));
    if (n->g == NULL)
        abort();
    if (s->o.wal && n->wal == NULL) {
        n->wal = sim_wal_new(s->o.seed * 7919u + (uint64_t)n->id, s->o.groups, wal_message, s);
        n->sdisk = sim_wal_disk(n->wal);
        sim_snap_disk_init(n);
    } else if (!s->o.wal && n->sdisk == NULL) {
        if ((n->sdisk = wr_simdisk_new(s->o.seed * 7919u + (uint64_t)n->id)) == NULL)
            abort();
        sim_snap_disk_init(n);
    }
    for (int g = 0; g < s->o.groups; g++)
        member_start(s, n, g);
    n->up = true;
    sim_check_restart(s, n->id);
    n->next_tick = s->now + 1 + (uint64_t)sim_rand_int(s, n->tick_period);
    n->synced_seq = n->written_seq = n->sync_seq = 0;
    n->next_sync = n->sync_done = n->write_at = 0;
    sim_trace(s, "n%d start (tick period %d)", n->id, n->tick_period);
}

static void held_free(sim_node_t *n)
{
    for (size_t i = 0; i < n->n_held; i++)
        sim_entries_free(n->held[i].entries, n->held[i].m.n_entries);
    n->n_held = 0;
}

void sim_node_crash(sim_t *s, sim_node_t *n)
{
    for (int g = 0; g < s->o.groups; g++) {
        sim_member_t *m = &n->g[g];
        size_t keep = (size_t)sim_rand_int(s, (int)m->disk.n_ops + 1);
        wr_raft_free(m->raft);
        m->raft = NULL;
        if (n->wal == NULL)
            sim_disk_crash(&m->disk, keep, (size_t)sim_rand_int(s, 4));
    }
    /* The batch in flight may reach the disk unsynced: its snapshots were made durable before
     * its write was issued, as they are before any batch's write. */
    if (n->wal != NULL && n->sync_done != 0)
        sim_snap_flush(s, n);
    if (n->wal != NULL) {
        sim_wal_crash(n->wal, sim_chance(s, s->torn_pm));
        if (sim_wal_damage_unexplained(n->wal))
            sim_fail(s, "n%d's WAL recovery found damage, but no bit of its disk was ever flipped", n->id);
    } else
        wr_simdisk_crash(n->sdisk, sim_chance(s, 500));
    held_free(n);
    n->up = false;
    sim_trace(s, "n%d crash", n->id);
}

void sim_node_free(const sim_t *s, sim_node_t *n)
{
    held_free(n);
    free(n->held);
    if (n->g == NULL)
        return;
    for (int g = 0; g < s->o.groups; g++) {
        wr_raft_free(n->g[g].raft);
        sim_disk_free(&n->g[g].disk);
        sim_snap_free(&n->g[g]);
    }
    if (n->wal == NULL)
        wr_simdisk_free(n->sdisk);
    sim_wal_free(n->wal);
    free(n->g);
}

static void hold(sim_node_t *n, uint32_t group, const wr_raft_msg_t *m)
{
    sim_held_t *h;

    if (n->n_held == n->cap_held) {
        n->cap_held = n->cap_held ? n->cap_held * 2 : 16;
        n->held = realloc(n->held, n->cap_held * sizeof(*n->held));
        if (n->held == NULL)
            abort();
    }
    h = &n->held[n->n_held++];
    h->seq = n->written_seq;
    h->group = group;
    h->m = *m;
    h->entries = sim_entries_dup(m->entries, m->n_entries);
    h->m.entries = h->entries;
}

/* Sends the held messages whose writes are durable, in order. */
static void release_held(sim_t *s, sim_node_t *n)
{
    size_t k = 0;

    for (size_t i = 0; i < n->n_held; i++) {
        sim_held_t *h = &n->held[i];
        if (h->seq <= n->synced_seq) {
            sim_net_send(s, h->group, &h->m);
            sim_entries_free(h->entries, h->m.n_entries);
        } else {
            n->held[k++] = *h;
        }
    }
    n->n_held = k;
}

static void ack_clients(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *e)
{
    wr_raft_status_t st;

    wr_raft_status(n->g[g].raft, &st);
    if (st.role != WR_RAFT_LEADER || e->type != WR_RAFT_ENTRY_NORMAL || e->len < 8)
        return;
    for (size_t i = 0; i < s->n_props; i++) {
        sim_proposal_t *p = &s->props[i];
        if (p->group == g && p->node == n->id && p->term == e->term && p->index == e->index && !p->acked) {
            p->acked = true;
            sim_trace(s, "n%d g%d ack proposal %llu at %llu/%llu", n->id, g, (unsigned long long)p->id,
                      (unsigned long long)e->term, (unsigned long long)e->index);
        }
    }
}

/* Step 0 of the contract: a chunk stored, a snapshot installed, the log's prefix dropped. */
static void persist_snapshot(sim_t *s, sim_node_t *n, int g, const wr_raft_ready_t *rd)
{
    sim_member_t *m = &n->g[g];

    if (rd->has_chunk)
        sim_snap_chunk(s, n, g, &rd->chunk);
    if (rd->installed)
        sim_snap_install(s, n, g, &rd->snapshot);
    if (rd->compact_index == 0)
        return;
    if (n->wal != NULL) {
        sim_wal_snapshot(n->wal, g, rd->compact_index, rd->compact_term);
    } else {
        sim_disk_compact(&m->disk, rd->compact_index, rd->compact_term);
        if (rd->installed)
            sim_disk_sync(&m->disk, m->disk.n_ops); /* with the snapshot, durable at once */
    }
    if (rd->installed) {
        m->written_term = rd->snapshot.term;
        m->written_index = rd->snapshot.index;
    }
    n->written_seq++;
}

static void persist(sim_t *s, sim_node_t *n, int g, const wr_raft_ready_t *rd)
{
    sim_member_t *m = &n->g[g];

    persist_snapshot(s, n, g, rd);
    if (rd->n_entries > 0) {
        sim_check_logged(s, g, rd->entries, rd->n_entries);
        if (n->wal != NULL)
            sim_wal_append(n->wal, g, rd->entries, rd->n_entries);
        else
            sim_disk_append(&m->disk, rd->entries, rd->n_entries);
        m->written_term = rd->entries[rd->n_entries - 1].term;
        m->written_index = rd->entries[rd->n_entries - 1].index;
        n->written_seq++;
    }
    if (rd->hs_changed) {
        if (n->wal != NULL)
            sim_wal_set_hs(n->wal, g, &rd->hs);
        else
            sim_disk_set_hs(&m->disk, &rd->hs);
        n->written_seq++;
    }
}

static bool lacks_payloads(const wr_raft_msg_t *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].data == NULL && m->entries[i].len > 0)
            return true;
    return false;
}

/* A SNAP message leaves with the chunk it names attached, or not at all; entries with every payload. */
static void send(sim_t *s, sim_node_t *n, int g, const wr_raft_msg_t *m)
{
    wr_raft_entry_t *copy = NULL;
    wr_raft_msg_t c = *m;

    if (m->type == WR_RAFT_MSG_SNAP && !sim_snap_fill(s, &n->g[g], &c))
        return;
    if (m->type == WR_RAFT_MSG_APP && lacks_payloads(m))
        c.entries = copy = entries_filled(s, n, g, m->entries, m->n_entries);
    sim_net_send(s, (uint32_t)g, &c);
    if (copy != NULL)
        sim_entries_free(copy, m->n_entries);
}

/* Step 4: a committed entry applied, its payload read back if the core dropped it. */
static void apply_one(sim_t *s, sim_node_t *n, int g, const wr_raft_entry_t *committed, wr_buf_t *b)
{
    wr_raft_entry_t e = *committed;

    if (e.data == NULL && e.len > 0) {
        e.data = (uint8_t *)sim_member_payload(s, n, g, &e, b);
        s->read_backs++;
    }
    sim_check_applied(s, n->id, g, &e);
    sim_sm_apply(s, n, g, &e);
    ack_clients(s, n, g, &e);
}

static void drive_member(sim_t *s, sim_node_t *n, int g)
{
    sim_member_t *m = &n->g[g];
    wr_buf_t b = WR_BUF_INIT;
    wr_raft_ready_t rd;
    bool want = false;

    sim_snap_notify(s, n, g);
    while (wr_raft_has_ready(m->raft)) {
        if (wr_raft_ready(m->raft, &rd) != WR_OK)
            abort();
        persist(s, n, g, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++)
            send(s, n, g, &rd.msgs[i]);
        for (size_t i = 0; i < rd.n_msgs_after_sync; i++)
            hold(n, (uint32_t)g, &rd.msgs_after_sync[i]);
        for (size_t i = 0; i < rd.n_committed; i++)
            apply_one(s, n, g, &rd.committed[i], &b);
        want |= rd.snapshot_wanted;
        wr_raft_advance(m->raft);
        sim_snap_notify(s, n, g);
        /* The state machine snapshots at random points, and when a follower needs one. */
        if (want || sim_chance(s, s->snap_pm)) {
            want = false;
            sim_snap_take(s, n, g);
        }
    }
    wr_buf_free(&b);
}

void sim_node_drive(sim_t *s, sim_node_t *n)
{
    uint64_t covered = n->sync_done ? n->sync_seq : n->synced_seq;

    for (int g = 0; g < s->o.groups; g++)
        drive_member(s, n, g);
    release_held(s, n);
    if (n->written_seq > covered && n->next_sync == 0)
        n->next_sync = s->now + 1 + (uint64_t)sim_rand_int(s, s->sync_max);
}

/* Group commit, as the node-wide WAL does it: a sync covers every group's
 * writes so far; later writes wait for the next one. */
void sim_node_sync_start(sim_t *s, sim_node_t *n)
{
    for (int g = 0; g < s->o.groups; g++) {
        sim_member_t *m = &n->g[g];
        m->sync_ops = m->disk.n_ops;
        m->sync_term = m->written_term;
        m->sync_index = m->written_index;
    }
    n->sync_seq = n->written_seq;
    n->next_sync = 0;
    sim_snap_batch(n, s->o.groups);
    n->sync_done = s->now + 1 + (uint64_t)sim_rand_int(s, s->sync_max);
    /* The WAL's three steps: prepare now, write in between, complete at sync_done. */
    if (n->wal != NULL && sim_wal_prepare(n->wal))
        n->write_at = s->now + (uint64_t)sim_rand_int(s, (int)(n->sync_done - s->now));
}

/* A WAL that failed accepts nothing more: the process dies and recovers, as warrend would. */
static bool wal_check(sim_t *s, sim_node_t *n)
{
    if (n->wal == NULL || !sim_wal_failed(n->wal))
        return true;
    sim_trace(s, "n%d WAL failed: the node crashes", n->id);
    sim_node_crash(s, n);
    n->down_until = s->now + 20;
    return false;
}

void sim_node_disk_step(sim_t *s, sim_node_t *n)
{
    if (n->wal == NULL)
        return;
    if (n->write_at != 0 && s->now >= n->write_at) {
        sim_snap_flush(s, n);
        sim_wal_write(n->wal, sim_chance(s, s->sync_fail_pm));
        n->write_at = 0;
    }
    if (n->sync_done == 0 && sim_chance(s, s->writebehind_pm))
        sim_wal_writebehind(n->wal, 64 + (uint64_t)sim_rand_int(s, 8192));
    wal_check(s, n);
}

void sim_node_flip(sim_t *s, sim_node_t *n)
{
    int g = sim_rand_int(s, s->o.groups);

    if (sim_chance(s, 400) && sim_snap_flip(s, n, sim_rand(s)))
        return;
    if (n->wal != NULL) {
        sim_trace(s, "n%d bit flip in a WAL or segment file", n->id); /* before the recovery it triggers */
        sim_wal_flip(n->wal, sim_rand(s));
        return;
    }
    sim_disk_flip(&n->g[g].disk, sim_rand(s));
    sim_trace(s, "n%d g%d bit flip on disk", n->id, g);
}

static void on_durable(void *ud, int g, uint64_t term, uint64_t index)
{
    sim_node_t *n = ud;

    if (index > 0 && wr_raft_persisted(n->g[g].raft, term, index) != WR_OK)
        abort();
}

/* The WAL batch completes: its notices reach the cores. False: it failed. */
static bool wal_done(sim_t *s, sim_node_t *n)
{
    sim_snap_flush(s, n);
    sim_wal_write(n->wal, sim_chance(s, s->sync_fail_pm));
    n->write_at = 0;
    for (int g = 0; g < s->o.groups; g++)
        sim_snap_notify(s, n, g); /* the snapshot before the entries that follow it */
    sim_wal_complete(n->wal, on_durable, n);
    for (int g = 0; g < s->o.groups; g++) {
        sim_member_t *m = &n->g[g];
        wr_raft_hard_state_t hs = sim_wal_durable_hs(n->wal, g);
        size_t valid = sim_wal_valid(n->wal, g);
        m->commit_floor = commit_floor(&hs, valid, false);
    }
    return !sim_wal_failed(n->wal);
}

/* The sync finished: its notices reach the cores, possibly late (a newer
 * leader may have overwritten those entries meanwhile). */
void sim_node_sync_done(sim_t *s, sim_node_t *n)
{
    if (n->wal != NULL) {
        if (!wal_done(s, n) || !wal_check(s, n))
            return;
        n->synced_seq = n->sync_seq;
        n->sync_done = 0;
        sim_node_drive(s, n);
        return;
    }
    for (int g = 0; g < s->o.groups; g++) {
        sim_member_t *m = &n->g[g];
        wr_raft_hard_state_t hs;
        size_t valid;
        sim_disk_sync(&m->disk, m->sync_ops);
        hs = sim_disk_durable_hs(&m->disk);
        valid = sim_disk_valid(&m->disk);
        /* What a restart would come back with: a damaged log may hold less. */
        m->commit_floor = commit_floor(&hs, valid, false);
        if (m->sync_index > 0 && wr_raft_persisted(m->raft, m->sync_term, m->sync_index) != WR_OK)
            abort();
    }
    n->synced_seq = n->sync_seq;
    n->sync_done = 0;
    sim_node_drive(s, n);
}
