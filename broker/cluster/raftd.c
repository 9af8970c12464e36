/* SPDX-License-Identifier: MIT */
/*
 * The Raft driver (raftd.h): the node-wide WAL written on its storage thread,
 * the tick, Raft messages in and out over the peer links, and the ready loop
 * that follows cluster/raft.h's ordering contract for every group.
 * Proposals live in raftd_propose.c, snapshot files in raftd_snap.c.
 */
#include "broker/cluster/raftd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "broker/cluster/raftd_internal.h"
#include "core/crc32c.h"
#include "core/status.h"

#define DEFAULT_CHUNK (256u << 10)
#define WB_BUDGET     (1u << 20) /* write-behind bytes after each batch */
#define WB_WAIT_FILES 2          /* full WAL files write-behind leaves for snapshots to pass (wal.h) */

uint32_t wr_raftd_node_id(const char *name)
{
    return wr_cluster_node_id(name);
}

const char *wr_raftd_name(const wr_raftd_t *d, uint32_t id)
{
    int i = wr_raftd_slot(d, id);

    return i < 0 ? NULL : d->cluster->nodes[i].name;
}

/* Names learnt after the open (wr_cluster_config_learn) have no cached id. */
int wr_raftd_slot(const wr_raftd_t *d, uint32_t id)
{
    for (size_t i = 0; i < d->cluster->n_nodes; i++) {
        if ((i < d->n_ids ? d->ids[i] : wr_raftd_node_id(d->cluster->nodes[i].name)) == id)
            return (int)i;
    }
    return -1;
}

wr_rgroup_t *wr_raftd_group(const wr_raftd_t *d, uint64_t id)
{
    for (size_t i = 0; i < d->n_groups; i++) {
        if (d->groups[i]->id == id && !d->groups[i]->deleted)
            return d->groups[i];
    }
    return NULL;
}

void wr_raftd_wake(wr_rgroup_t *g)
{
    g->dirty = true;
    event_active(g->d->drive_ev, EV_TIMEOUT, 0);
}

static void fail(wr_raftd_t *d, const char *what, int rc)
{
    if (!d->failed)
        wr_log(WR_LOG_ERROR, "raft: the write-ahead log failed (%s: %d): this node stops taking part in Raft",
               what, rc);
    d->failed = true;
}

/* ---- the WAL ---- */

/* A write was handed to the WAL if its staging grew: the next batch must cover it. */
static int wal_noted(wr_raftd_t *d, uint64_t before, int rc, const char *what)
{
    if (rc != WR_OK) {
        fail(d, what, rc);
        return rc;
    }
    if (wr_wal_pending_bytes(d->wal) > before)
        d->seq_written++;
    return WR_OK;
}

int wr_raftd_wal_snapshot(wr_rgroup_t *g, uint64_t index, uint64_t term)
{
    uint64_t before = wr_wal_pending_bytes(g->d->wal);

    return wal_noted(g->d, before, wr_wal_snapshot(g->d->wal, g->id, index, term), "snapshot marker");
}

/* The WAL stores opaque payloads: the first byte is the entry's type. */
static int wal_append(wr_rgroup_t *g, const wr_raft_entry_t *e)
{
    wr_raftd_t *d = g->d;
    uint64_t before = wr_wal_pending_bytes(d->wal);

    wr_buf_reset(&d->scratch);
    wr_buf_put_u8(&d->scratch, e->type);
    wr_buf_put(&d->scratch, e->data, e->len);
    if (!wr_buf_ok(&d->scratch))
        return wal_noted(d, before, WR_ENOMEM, "append");
    return wal_noted(d, before,
                     wr_wal_append(d->wal, g->id, e->term, e->index, d->scratch.data, d->scratch.len),
                     "append");
}

static int wal_hard(wr_rgroup_t *g, const wr_raft_hard_state_t *hs)
{
    wr_wal_hard_t h = {hs->term, hs->vote, hs->commit, hs->abstain};
    uint64_t before = wr_wal_pending_bytes(g->d->wal);

    return wal_noted(g->d, before, wr_wal_set_hard(g->d->wal, g->id, &h), "hard state");
}

/* After a kick or a completed batch: nothing staged means everything written is in flight or durable. */
static void wal_kick(wr_raftd_t *d)
{
    int rc;

    if (d->failed)
        return;
    if ((rc = wr_wal_thread_kick(d->wt)) != WR_OK)
        fail(d, "batch", rc);
    else if (wr_wal_pending_bytes(d->wal) == 0)
        d->seq_inflight = d->seq_written;
}

/* "Durable up to (term, index)" for one group of a completed batch. */
static void on_durable(void *ud, const wr_wal_notice_t *n, int status)
{
    wr_raftd_t *d = ud;
    wr_rgroup_t *g;

    if (status != WR_OK) {
        fail(d, "fdatasync", status);
        return;
    }
    if ((g = wr_raftd_group(d, n->group)) == NULL || n->index == 0)
        return;
    if (wr_raft_persisted(g->raft, n->term, n->index) != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: group %llu: out of memory noting a write durable",
               (unsigned long long)g->id);
    wr_raftd_wake(g);
}

static void on_wal_message(void *ud, const char *text)
{
    wr_log(WR_LOG_WARNING, "raft: write-ahead log: %s", text);
}

/* ---- the ready loop ---- */

void wr_raftd_entries_free(wr_raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
    free(e);
}

int wr_raftd_payload_read(wr_rgroup_t *g, const wr_raft_entry_t *e, wr_buf_t *b)
{
    uint64_t term = 0;
    int rc;

    wr_buf_reset(b);
    g->read_backs++;
    rc = wr_wal_read(g->d->wal, g->id, e->index, &term, b);
    if (rc == WR_OK && (term != e->term || b->len != (size_t)e->len + 1 || b->data[0] != e->type))
        rc = WR_ESYNTAX;
    return rc;
}

/* A copy of e into *out; a payload the core dropped is read back from the WAL if load, else left NULL. */
static int entry_copy(wr_rgroup_t *g, const wr_raft_entry_t *e, bool load, wr_buf_t *b, wr_raft_entry_t *out)
{
    const uint8_t *src = e->data;
    int rc;

    *out = *e;
    out->data = NULL;
    if (e->len == 0 || (src == NULL && !load))
        return WR_OK;
    if (src == NULL && (rc = wr_raftd_payload_read(g, e, b)) != WR_OK)
        return rc;
    if (src == NULL)
        src = b->data + 1;
    if ((out->data = malloc(e->len)) == NULL)
        return WR_ENOMEM;
    memcpy(out->data, src, e->len);
    return WR_OK;
}

int wr_rgroup_read(wr_rgroup_t *g, uint64_t index, wr_buf_t *out)
{
    wr_buf_t b = WR_BUF_INIT;
    uint64_t term = 0;
    int rc = wr_wal_read(g->d->wal, g->id, index, &term, &b);

    if (rc == WR_OK && (b.len < 1 || b.data[0] != WR_RAFT_ENTRY_NORMAL))
        rc = WR_ESYNTAX;
    if (rc == WR_OK) {
        g->read_backs++;
        wr_buf_put(out, b.data + 1, b.len - 1);
        rc = wr_buf_ok(out) ? WR_OK : WR_ENOMEM;
    }
    wr_buf_free(&b);
    return rc;
}

/* Deep copies of e[0..n) (see entry_copy); NULL with n > 0 on failure. */
static wr_raft_entry_t *entries_dup(wr_rgroup_t *g, const wr_raft_entry_t *e, size_t n, bool load)
{
    wr_raft_entry_t *out = n ? calloc(n, sizeof(*out)) : NULL;
    wr_buf_t b = WR_BUF_INIT;

    for (size_t i = 0; out != NULL && i < n; i++) {
        if (entry_copy(g, &e[i], load, &b, &out[i]) != WR_OK) {
            wr_raftd_entries_free(out, i + 1);
            out = NULL;
        }
    }
    wr_buf_free(&b);
    return out;
}

static bool lacks_payloads(const wr_raft_msg_t *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].data == NULL && m->entries[i].len > 0)
            return true;
    return false;
}

static void send_msg(wr_rgroup_t *g, const wr_raft_msg_t *m)
{
    const char *node = wr_raftd_name(g->d, m->to);
    wr_raft_entry_t *copy = NULL;
    wr_raft_msg_t c = *m;

    if (node == NULL || (m->type == WR_RAFT_MSG_SNAP && !wr_raftd_snap_fill(g, &c)))
        return;
    /* Entries the core dropped come from the WAL; one that cannot be read is lost (reported by the WAL). */
    if (lacks_payloads(m) && (c.entries = copy = entries_dup(g, m->entries, m->n_entries, true)) == NULL)
        return;
    /* WR_AGAIN (a full link) and WR_ENOENT (a link down) drop it: Raft resends. */
    (void)wr_peer_send(g->d->links, node, g->id, &c);
    wr_raftd_entries_free(copy, copy != NULL ? m->n_entries : 0);
}

static int hold(wr_rgroup_t *g, const wr_raft_msg_t *m)
{
    wr_raftd_held_t *h;

    if (g->n_held == g->cap_held) {
        size_t cap = g->cap_held ? g->cap_held * 2 : 16;
        wr_raftd_held_t *n = realloc(g->held, cap * sizeof(*n));
        if (n == NULL)
            return WR_ENOMEM;
        g->held = n;
        g->cap_held = cap;
    }
    h = &g->held[g->n_held];
    h->seq = g->d->seq_written;
    h->m = *m;
    if ((h->entries = entries_dup(g, m->entries, m->n_entries, true)) == NULL && m->n_entries > 0)
        return WR_ENOMEM;
    h->m.entries = h->entries;
    g->n_held++;
    return WR_OK;
}

/* Sends the held messages whose writes are durable, in order. */
static void release(wr_rgroup_t *g)
{
    size_t k = 0;

    for (size_t i = 0; i < g->n_held; i++) {
        wr_raftd_held_t *h = &g->held[i];
        if (h->seq <= g->d->seq_synced && !g->d->failed) {
            send_msg(g, &h->m);
            wr_raftd_entries_free(h->entries, h->m.n_entries);
        } else {
            g->held[k++] = *h;
        }
    }
    g->n_held = k;
}

/* Steps 0 and 1: the snapshot chunk, install and compaction, then entries and hard state. */
static int persist(wr_rgroup_t *g, const wr_raft_ready_t *rd)
{
    int rc = WR_OK;

    if (rd->has_chunk)
        rc = wr_raftd_snap_chunk(g, &rd->chunk);
    if (rc == WR_OK && rd->installed)
        rc = wr_raftd_snap_install(g, &rd->snapshot);
    if (rc == WR_OK && rd->compact_index != 0)
        rc = wr_raftd_wal_snapshot(g, rd->compact_index, rd->compact_term);
    for (size_t i = 0; rc == WR_OK && i < rd->n_entries; i++)
        rc = wal_append(g, &rd->entries[i]);
    if (rc == WR_OK && rd->hs_changed)
        rc = wal_hard(g, &rd->hs);
    return rc;
}

/* Steps 2 and 3: msgs leave now, msgs_after_sync once this ready's writes are durable. */
static void dispatch_msgs(wr_rgroup_t *g, const wr_raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_msgs; i++)
        send_msg(g, &rd->msgs[i]);
    /* One that cannot be held is lost, as on the network: Raft resends. */
    for (size_t i = 0; i < rd->n_msgs_after_sync; i++)
        (void)hold(g, &rd->msgs_after_sync[i]);
}

/* A committed membership change: whether it removes this node, which was a member until now. */
static void apply_conf(wr_rgroup_t *g, const wr_raft_entry_t *e)
{
    wr_raft_conf_t c;
    bool was = g->member;

    if (wr_raft_conf_decode(e, &c) != WR_OK)
        return;
    g->member = wr_raftd_conf_has(&c, g->d->self);
    if (was && !g->member && g->d->watch.removed)
        g->d->watch.removed(g->d->watch.ud, g->id);
}

/* e's payload, read back into b from the WAL if the core dropped it; NULL if that fails. */
static const uint8_t *payload_of(wr_rgroup_t *g, const wr_raft_entry_t *e, wr_buf_t *b)
{
    if (e->data != NULL || e->len == 0)
        return e->data;
    return wr_raftd_payload_read(g, e, b) == WR_OK ? b->data + 1 : NULL;
}

/* Step 4, after wr_raft_advance so that done callbacks may propose: in order, each entry once. */
static void apply(wr_rgroup_t *g, const wr_raft_entry_t *e, size_t n)
{
    wr_buf_t b = WR_BUF_INIT;
    const uint8_t *data;

    for (size_t i = 0; i < n && !g->broken; i++) {
        if (e[i].index <= g->applied)
            continue;
        if ((data = payload_of(g, &e[i], &b)) == NULL && e[i].len > 0) {
            /* Skipping it would make this member's state differ from the others'. */
            wr_log(WR_LOG_ERROR, "raft: group %llu: entry %llu cannot be read back to apply: the group stops",
                   (unsigned long long)g->id, (unsigned long long)e[i].index);
            g->broken = true;
            break;
        }
        g->applied = e[i].index;
        if (e[i].type == WR_RAFT_ENTRY_NORMAL)
            g->sm.apply(g->ud, e[i].index, data, e[i].len);
        else if (e[i].type == WR_RAFT_ENTRY_CONFIG)
            apply_conf(g, &e[i]);
        wr_raftd_props_applied(g, &e[i]);
    }
    wr_buf_free(&b);
}

/* Reports leader changes and counts the elections this member starts. */
static void watch_role(wr_rgroup_t *g)
{
    wr_raft_status_t st;

    wr_raft_status(g->raft, &st);
    if (st.role != g->role && (st.role == WR_RAFT_PRE_CANDIDATE ||
                               (st.role == WR_RAFT_CANDIDATE && g->role != WR_RAFT_PRE_CANDIDATE)))
        g->elections++;
    g->role = st.role;
    if (st.leader == g->leader)
        return;
    g->leader = st.leader;
    if (g->sm.leader_changed)
        g->sm.leader_changed(g->ud, wr_raftd_name(g->d, st.leader));
}

/* One ready, by the contract of cluster/raft.h. WR_OK, or an error that stops the loop. */
static int drive_once(wr_rgroup_t *g)
{
    wr_raft_entry_t *committed = NULL;
    wr_raft_snapshot_t installed = {0};
    wr_raft_ready_t rd;
    size_t n;
    int rc;

    if ((rc = wr_raft_ready(g->raft, &rd)) != WR_OK)
        return rc;
    n = rd.n_committed;
    if ((rc = persist(g, &rd)) == WR_OK)
        dispatch_msgs(g, &rd);
    /* Entries the core counts as applied after the advance cannot be lost: the group stops instead.
     * Payloads the core dropped are read back one at a time as they apply, so memory stays bounded. */
    if ((committed = entries_dup(g, rd.committed, n, false)) == NULL && n > 0) {
        wr_log(WR_LOG_ERROR, "raft: group %llu: out of memory applying entries: the group stops",
               (unsigned long long)g->id);
        g->broken = true;
        n = 0;
    }
    if (rd.installed)
        installed = rd.snapshot;
    if (rd.installed && installed.conf.n > 0)
        g->member = wr_raftd_conf_has(&installed.conf, g->d->self);
    g->snap_wanted |= rd.snapshot_wanted;
    wr_raft_advance(g->raft);
    if (rc == WR_OK)
        apply(g, committed, n);
    wr_raftd_entries_free(committed, n);
    /* The installed snapshot was made durable in step 0: the follower may acknowledge it. */
    if (rc == WR_OK && installed.index > 0)
        rc = wr_raft_persisted(g->raft, installed.term, installed.index);
    return rc;
}

static void drive_group(wr_rgroup_t *g)
{
    int rc = WR_OK;

    if (g->deleted)
        return;
    while (rc == WR_OK && !g->broken && !g->d->failed && wr_raft_has_ready(g->raft))
        rc = drive_once(g);
    if (rc == WR_ENOMEM) {
        wr_log(WR_LOG_ERROR, "raft: group %llu: out of memory; retried at the next tick",
               (unsigned long long)g->id);
        g->dirty = true;
    }
    if (g->broken || g->d->failed)
        return;
    watch_role(g);
    if (g->snap_wanted || (g->applied >= g->snap.meta.index + g->snapshot_every &&
                           (g->sm.snapshot_worth == NULL || g->sm.snapshot_worth(g->ud))))
        wr_raftd_snap_take(g);
}

static void group_free(wr_rgroup_t *g);
static char *path_join(const char *a, const char *b);

/* A file of a deleted group's snapshot directory. */
static int unlink_in(void *ud, const char *name)
{
    wr_rgroup_t *g = ud;
    char *p = path_join(g->dir, name);

    if (p != NULL)
        (void)wr_vfs_unlink(g->d->vfs, p);
    free(p);
    return WR_OK;
}

/* Groups deleted since the last drive leave the driver, their files and the WAL. */
static void sweep_deleted(wr_raftd_t *d)
{
    size_t k = 0;

    for (size_t i = 0; i < d->n_groups; i++) {
        wr_rgroup_t *g = d->groups[i];

        if (!g->deleted) {
            d->groups[k++] = g;
            continue;
        }
        if (!d->failed && wr_wal_group_delete(d->wal, g->id) == WR_OK)
            d->seq_written++;
        wr_raftd_snap_free(g); /* a snapshot on its way is renamed before the files go, or never */
        (void)wr_vfs_list(d->vfs, g->dir, unlink_in, g);
        group_free(g);
    }
    d->n_groups = k;
}

void wr_rgroup_delete(wr_rgroup_t *g)
{
    g->deleted = true;
    wr_raftd_wake(g);
}

/* Drives every group with work, hands the writes to the storage thread, releases what is durable. */
static void drive_all(wr_raftd_t *d)
{
    sweep_deleted(d);
    for (size_t i = 0; i < d->n_groups; i++) {
        wr_rgroup_t *g = d->groups[i];
        if (g->dirty) {
            g->dirty = false;
            drive_group(g);
        }
    }
    wal_kick(d);
    for (size_t i = 0; i < d->n_groups; i++)
        release(d->groups[i]);
}

static void on_drive(evutil_socket_t fd, short what, void *arg)
{
    drive_all(arg);
}

static void on_wal(evutil_socket_t fd, short what, void *arg)
{
    wr_raftd_t *d = arg;
    uint64_t batches = wr_wal_thread_batches(d->wt), covered = d->seq_inflight;
    int rc = wr_wal_thread_dispatch(d->wt);

    if (rc != WR_OK)
        fail(d, "batch", rc);
    if (wr_wal_thread_batches(d->wt) != batches)
        d->seq_synced = covered;
    if (!d->failed && wr_wal_pending_bytes(d->wal) == 0)
        d->seq_inflight = d->seq_written;
    drive_all(d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    wr_raftd_t *d = arg;

    if (d->failed)
        return;
    for (size_t i = 0; i < d->n_groups; i++) {
        wr_rgroup_t *g = d->groups[i];
        if (g->broken || g->deleted)
            continue;
        if (wr_raft_tick(g->raft) != WR_OK)
            wr_log(WR_LOG_ERROR, "raft: group %llu: out of memory on a tick", (unsigned long long)g->id);
        wr_raftd_props_tick(g);
        g->dirty = true;
    }
    drive_all(d);
}

/* A vote request from a node that this member's committed membership lacks, with no newer log. */
static void check_stranger(wr_rgroup_t *g, const char *node, const wr_raft_msg_t *m)
{
    wr_raft_status_t st;
    wr_raft_conf_t c;

    if (g->d->watch.stranger == NULL || (m->type != WR_RAFT_MSG_VOTE && m->type != WR_RAFT_MSG_PREVOTE))
        return;
    wr_raft_status(g->raft, &st);
    wr_raft_conf(g->raft, &c);
    if (c.index <= st.commit && m->index <= st.commit && !wr_raftd_conf_has(&c, m->from))
        g->d->watch.stranger(g->d->watch.ud, g->id, node);
}

void wr_raftd_on_raft(wr_raftd_t *d, const char *node, uint64_t group, const wr_raft_msg_t *m)
{
    wr_rgroup_t *g = wr_raftd_group(d, group);
    int slot = wr_raftd_slot(d, m->from);

    /* A peer speaks only for itself, to this node, of a group open here. */
    if (g == NULL || g->broken || d->failed || m->to != d->self || slot < 0 ||
        strcmp(d->cluster->nodes[slot].name, node) != 0)
        return;
    if (m->type == WR_RAFT_MSG_APP_RESP && !m->reject && m->index > g->match[slot])
        g->match[slot] = m->index;
    check_stranger(g, node, m);
    if (wr_raft_step(g->raft, m) != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: group %llu: out of memory on a message", (unsigned long long)group);
    wr_raftd_wake(g);
}

/* ---- opening and closing ---- */

/*
 * A group the WAL recovered damaged may have acknowledged entries or a vote
 * it lost: its abstain mark is made durable before it may act, then the WAL
 * may forget the damage (until then its marker makes every recovery report
 * every group damaged, so a crash in between forgets nothing).
 */
static int mark_one(void *ud, uint64_t group)
{
    wr_raftd_t *d = ud;
    wr_wal_group_info_t info;

    if (wr_wal_group_info(d->wal, group, &info) != WR_OK || !(info.damaged || d->wal_corrupt))
        return 0;
    wr_log(WR_LOG_WARNING,
           "raft: group %llu: its log was damaged; it abstains until a leader brings it up to date",
           (unsigned long long)group);
    if (info.hard.abstain >= (info.hard.term > 0 ? info.hard.term : 1))
        return 0;
    info.hard.abstain = info.hard.term > 0 ? info.hard.term : 1;
    return wr_wal_set_hard(d->wal, group, &info.hard) != WR_OK;
}

static int mark_damaged(wr_raftd_t *d)
{
    int rc;

    if (wr_wal_foreach_group(d->wal, mark_one, d) != 0)
        return WR_EIO;
    rc = wr_wal_sync(d->wal);
    return rc == WR_OK || rc == WR_AGAIN ? wr_wal_damage_noted(d->wal) : rc;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* DIR, DIR/wal and DIR/snap exist, their entries durable. */
static int make_dirs(wr_raftd_t *d)
{
    const char *subs[] = {"wal", "snap"};
    int rc = wr_vfs_mkdir(d->vfs, d->dir);

    for (size_t i = 0; (rc == WR_OK || rc == WR_EEXIST) && i < 2; i++) {
        char *p = path_join(d->dir, subs[i]);
        rc = p ? wr_vfs_mkdir(d->vfs, p) : WR_ENOMEM;
        free(p);
    }
    if (rc == WR_OK || rc == WR_EEXIST)
        rc = wr_vfs_sync_dir(d->vfs, d->dir);
    if (rc != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: cannot create %s/{wal,snap}: %s", d->dir, strerror(errno));
    return rc;
}

static uint64_t seed(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
}

static int open_wal(wr_raftd_t *d)
{
    char *dir = path_join(d->dir, "wal");
    wr_wal_opts_t o = {.vfs = d->vfs,
                       .dir = dir,
                       .wal_size = WR_RAFTD_WAL_SIZE,
                       .seed = d->seed,
                       .durable = on_durable,
                       .durable_ud = d,
                       .message = on_wal_message,
                       .wb_wait_files = WB_WAIT_FILES};
    wr_wal_recovery_t rec;
    int rc;

    if (dir == NULL)
        return WR_ENOMEM;
    rc = wr_wal_open(&o, &d->wal, &rec);
    free(dir);
    if (rc != WR_OK) {
        wr_log(WR_LOG_ERROR, "raft: cannot open the write-ahead log in %s/wal (%d)", d->dir, rc);
        return rc;
    }
    d->wal_corrupt = rec.wal_corrupt;
    wr_log(WR_LOG_INFO, "raft: recovered %llu groups, %llu entries in %llu ms",
           (unsigned long long)rec.groups, (unsigned long long)rec.entries,
           (unsigned long long)(rec.usec / 1000));
    if ((rc = mark_damaged(d)) != WR_OK)
        wr_log(WR_LOG_ERROR, "raft: cannot make a damaged group's mark durable (%d)", rc);
    return rc;
}

static int start_events(wr_raftd_t *d)
{
    struct timeval tv = {d->tick_ms / 1000, (d->tick_ms % 1000) * 1000};

    d->wal_ev = event_new(d->base, wr_wal_thread_fd(d->wt), EV_READ | EV_PERSIST, on_wal, d);
    d->tick_ev = event_new(d->base, -1, EV_PERSIST, on_tick, d);
    d->drive_ev = event_new(d->base, -1, 0, on_drive, d);
    if (d->wal_ev == NULL || d->tick_ev == NULL || d->drive_ev == NULL || event_add(d->wal_ev, NULL) != 0 ||
        event_add(d->tick_ev, &tv) != 0)
        return WR_ENOMEM;
    return WR_OK;
}

static int node_ids(wr_raftd_t *d)
{
    const wr_cluster_config_t *c = d->cluster;

    if ((d->ids = calloc(c->n_nodes, sizeof(*d->ids))) == NULL)
        return WR_ENOMEM;
    for (size_t i = 0; i < c->n_nodes; i++)
        d->ids[i] = wr_raftd_node_id(c->nodes[i].name);
    d->n_ids = c->n_nodes;
    d->self = d->ids[c->self];
    return WR_OK;
}

static void set_opts(wr_raftd_t *d, const wr_raftd_opts_t *o)
{
    d->base = o->base;
    d->links = o->links;
    d->cluster = o->cluster;
    d->vfs = o->vfs ? o->vfs : wr_vfs_posix();
    d->tick_ms = o->tick_ms ? o->tick_ms : 100;
    d->election_ticks = o->election_ticks ? o->election_ticks : 10;
    d->heartbeat_ticks = o->heartbeat_ticks ? o->heartbeat_ticks : 2;
    d->snap_chunk = o->snap_chunk ? o->snap_chunk : DEFAULT_CHUNK;
    d->watch = o->watch;
    d->seed = seed() ^ wr_crc32c_update(0, o->cluster->node, strlen(o->cluster->node));
}

int wr_raftd_open(const wr_raftd_opts_t *o, wr_raftd_t **out)
{
    wr_raftd_t *d = calloc(1, sizeof(*d));
    int rc = WR_ENOMEM;

    if (d == NULL)
        return WR_ENOMEM;
    set_opts(d, o);
    if ((d->dir = strdup(o->dir)) == NULL || (d->chunk = malloc(d->snap_chunk)) == NULL ||
        (rc = node_ids(d)) != WR_OK)
        goto err;
    if ((rc = make_dirs(d)) != WR_OK || (rc = open_wal(d)) != WR_OK)
        goto err;
    if ((rc = wr_wal_thread_new(d->wal, WB_BUDGET, &d->wt)) != WR_OK || (rc = start_events(d)) != WR_OK ||
        (rc = wr_raftd_props_route(d)) != WR_OK)
        goto err;
    *out = d;
    return WR_OK;
err:
    wr_log(WR_LOG_ERROR, "raft: cannot start the Raft driver in %s (%d)", o->dir, rc);
    wr_raftd_close(d);
    return rc;
}

static void group_free(wr_rgroup_t *g)
{
    g->freeing = true; /* a done that proposes again must not refill what the abort empties */
    wr_raftd_props_abort(g);
    for (size_t i = 0; i < g->n_held; i++)
        wr_raftd_entries_free(g->held[i].entries, g->held[i].m.n_entries);
    free(g->held);
    wr_raftd_snap_free(g);
    wr_raft_free(g->raft);
    free(g->match);
    free(g->dir);
    free(g);
}

void wr_raftd_close(wr_raftd_t *d)
{
    if (d == NULL)
        return;
    if (d->tick_ev)
        event_free(d->tick_ev);
    if (d->wal_ev)
        event_free(d->wal_ev);
    /* The batch in flight is written and completed, then what is staged (its notices reach the cores). */
    wr_wal_thread_free(d->wt);
    if (d->wal != NULL && !d->failed)
        (void)wr_wal_sync(d->wal);
    for (size_t i = 0; i < d->n_groups; i++)
        group_free(d->groups[i]);
    if (d->drive_ev)
        event_free(d->drive_ev);
    wr_wal_close(d->wal);
    wr_buf_free(&d->scratch);
    free(d->groups);
    free(d->chunk);
    free(d->ids);
    free(d->dir);
    free(d);
}

static int group_add(wr_raftd_t *d, wr_rgroup_t *g)
{
    char id[24];

    if (d->n_groups == d->cap_groups) {
        size_t cap = d->cap_groups ? d->cap_groups * 2 : 4;
        wr_rgroup_t **n = realloc(d->groups, cap * sizeof(*n));
        if (n == NULL)
            return WR_ENOMEM;
        d->groups = n;
        d->cap_groups = cap;
    }
    snprintf(id, sizeof(id), "snap/%llu", (unsigned long long)g->id);
    if ((g->dir = path_join(d->dir, id)) == NULL ||
        (g->match =
             calloc(d->cluster->n_nodes > d->cluster->cap_nodes ? d->cluster->n_nodes : d->cluster->cap_nodes,
                    sizeof(*g->match))) == NULL)
        return WR_ENOMEM;
    d->groups[d->n_groups++] = g;
    return WR_OK;
}

wr_rgroup_t *wr_rgroup_open(wr_raftd_t *d, uint64_t id, const char *const *members, size_t n,
                            unsigned snapshot_every, const wr_rgroup_sm_t *sm, void *ud)
{
    wr_rgroup_t *g;

    if (d->failed || wr_raftd_group(d, id) != NULL || (g = calloc(1, sizeof(*g))) == NULL) {
        wr_log(WR_LOG_ERROR, "raft: cannot open group %llu: %s", (unsigned long long)id,
               d->failed   ? "the write-ahead log failed"
               : g == NULL ? "out of memory"
                           : "it is open already");
        return NULL;
    }
    *g = (wr_rgroup_t){
        .d = d, .id = id, .sm = *sm, .ud = ud, .snapshot_every = snapshot_every ? snapshot_every : 4096};
    wr_list_init(&g->waits);
    if (group_add(d, g) != WR_OK) {
        free(g->dir);
        free(g);
        return NULL;
    }
    if (wr_raftd_snap_dir(g) != WR_OK || wr_raftd_restore(g, members, n) != WR_OK) {
        wr_log(WR_LOG_ERROR, "raft: cannot open group %llu", (unsigned long long)id);
        d->n_groups--;
        group_free(g);
        return NULL;
    }
    /* The committed entries after the snapshot are applied before this returns. */
    drive_group(g);
    wal_kick(d);
    return g;
}
