/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: the state machine's snapshot taken (the log compacted behind
 * it), the leader's chunked InstallSnapshot (one chunk in flight per member,
 * the bytes attached by the driver), and the follower's side: chunks checked
 * by CRC32C one by one and as a whole, then installed without ever cutting
 * entries newer than the snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/raft_internal.h"
#include "core/status.h"
#include "core/crc32c.h"

void wr_raft_snap_set(wr_raft_t *r, uint64_t index, uint64_t term, const wr_raft_conf_t *conf)
{
    r->snap_index = index;
    r->snap_term = term;
    r->snap_conf_e = (wr_raft_entry_t){.term = term, .data = r->snap_conf, .type = WR_RAFT_ENTRY_CONFIG};
    if (conf == NULL)
        return; /* unknown (a lost snapshot): the log's CONFIG entries or the first voters */
    r->snap_conf_e.index = conf->index;
    r->snap_conf_e.len = wr_raft_conf_encode(conf, r->snap_conf);
}

int wr_raft_snap_send(wr_raft_t *r, wr_raft_peer_t *p)
{
    wr_raft_msg_t m = {.type = WR_RAFT_MSG_SNAP, .from = r->cfg.id, .to = p->id, .term = r->term};

    if (p->snap_sent)
        return WR_OK;
    if (r->snap_index == 0 || r->snap_index < p->next) {
        r->snap_wanted = true; /* the driver takes one; the next answer from p sends it */
        return WR_OK;
    }
    m.index = r->snap_index;
    m.log_term = r->snap_term;
    m.offset = p->snap_off;
    m.n_entries = 1; /* the membership, pointed at in wr_raft_ready */
    p->snap_sent = true;
    return wr_raft_send(r, &m, false);
}

int wr_raft_snap_start(wr_raft_t *r, wr_raft_peer_t *p, uint64_t index)
{
    if (p->state != PEER_SNAPSHOT) {
        p->state = PEER_SNAPSHOT;
        p->next = index;
        p->snap_off = 0;
    } else if (index > p->next) {
        p->next = index;
    }
    p->snap_sent = false; /* asked again: the chunk due may have been lost */
    return wr_raft_snap_send(r, p);
}

int wr_raft_snap_resp(wr_raft_t *r, wr_raft_peer_t *p, const wr_raft_msg_t *m)
{
    if (m->reject)
        return wr_raft_snap_start(r, p, m->index);
    if (p->state != PEER_SNAPSHOT || m->index != r->snap_index)
        return WR_OK; /* about an older snapshot, or the transfer is over */
    p->snap_off = m->offset;
    p->snap_sent = false;
    return wr_raft_snap_send(r, p);
}

int wr_raft_snap_request(wr_raft_t *r, uint32_t to)
{
    wr_raft_msg_t m = {.type = WR_RAFT_MSG_SNAP_RESP, .from = r->cfg.id, .to = to, .term = r->term};

    m.reject = true;
    m.index = r->log.offset;
    return wr_raft_send(r, &m, false);
}

/* Tells the leader which byte of snapshot m comes next here (0: start over). */
static int snap_reply(wr_raft_t *r, const wr_raft_msg_t *m, uint64_t offset)
{
    wr_raft_msg_t resp = {.type = WR_RAFT_MSG_SNAP_RESP, .from = r->cfg.id, .to = m->from, .term = r->term};

    resp.index = m->index;
    resp.offset = offset;
    return wr_raft_send(r, &resp, false);
}

/*
 * Raft's rule: a snapshot never replaces entries newer than itself. If the
 * log holds the snapshot's last entry, only the prefix goes; else the whole
 * log. The acknowledgement waits for the driver's notice that the snapshot
 * is durable (wr_raft_persisted with its term and index).
 */
static int install(wr_raft_t *r, uint64_t index, uint64_t term, const wr_raft_conf_t *c)
{
    uint64_t stable = r->log.stable;

    if (index >= r->log.offset && index <= r->log.n && wr_raft_log_term(&r->log, index) == term) {
        wr_raft_log_compact(&r->log, index);
        r->log.stable = stable; /* the entries that were durable still are; nothing more */
    } else {
        wr_raft_log_reset(&r->log, index, term);
    }
    wr_raft_snap_set(r, index, term, c);
    r->snap_missing = false;
    r->commit = r->commit > index ? r->commit : index;
    r->applied = index;
    r->leader_match = r->leader_match > index ? r->leader_match : index;
    r->install_ready = r->compact_ready = true;
    wr_raft_conf_reload(r);
    return r->log.stable >= index ? wr_raft_send_ack(r) : WR_OK;
}

/* Takes chunk m (its CRC checked) into the slot the next ready hands over. */
static int take_chunk(wr_raft_t *r, const wr_raft_msg_t *m)
{
    if (m->len > 0 && (r->chunk = malloc(m->len)) == NULL)
        return WR_ENOMEM;
    if (m->len > 0)
        memcpy(r->chunk, m->data, m->len);
    r->chunk_len = m->len;
    r->chunk_off = m->offset;
    r->chunk_last = m->last;
    r->rx_crc = wr_crc32c_update(r->rx_crc, m->data, m->len);
    r->rx_off += m->len;
    return WR_OK;
}

/* The last chunk is in: the whole snapshot's CRC decides whether it installs. */
static int finish(wr_raft_t *r, const wr_raft_msg_t *m, const wr_raft_conf_t *c)
{
    if (r->rx_crc != m->total_crc) {
        free(r->chunk);
        r->chunk = NULL;
        r->rx_index = 0;
        return snap_reply(r, m, 0);
    }
    return install(r, m->index, m->log_term, c);
}

/* True when this member already holds everything snapshot m covers. */
static bool snap_held(const wr_raft_t *r, const wr_raft_msg_t *m)
{
    return !r->snap_missing && (m->index <= r->commit || m->index <= r->snap_index);
}

int wr_raft_snap_recv(wr_raft_t *r, const wr_raft_msg_t *m)
{
    wr_raft_conf_t c;
    bool same;

    if (snap_held(r, m)) {
        r->leader_match = r->leader_match > m->index ? r->leader_match : m->index;
        return wr_raft_send_ack(r);
    }
    /* One chunk per ready, and a snapshot must carry its membership: else the leader resends. */
    if (r->chunk != NULL || m->n_entries != 1 || wr_raft_conf_decode(&m->entries[0], &c) != WR_OK)
        return WR_OK;
    if (m->offset == 0) {
        r->rx_index = m->index;
        r->rx_term = m->log_term;
        r->rx_off = 0;
        r->rx_crc = 0;
    }
    same = r->rx_index == m->index && r->rx_term == m->log_term;
    if (!same || m->offset != r->rx_off)
        return snap_reply(r, m, same ? r->rx_off : 0);
    if (wr_crc32c_update(0, m->data, m->len) != m->crc)
        return snap_reply(r, m, r->rx_off); /* damaged on the way: ask for it again */
    if (take_chunk(r, m) != WR_OK)
        return WR_ENOMEM;
    return m->last ? finish(r, m, &c) : snap_reply(r, m, r->rx_off);
}

/* A transfer under way sends the new snapshot from its start. */
static int restart_transfers(wr_raft_t *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        wr_raft_peer_t *p = &r->peers[i];
        if (r->role != WR_RAFT_LEADER || p->state != PEER_SNAPSHOT)
            continue;
        p->snap_off = 0;
        p->snap_sent = false;
        if (wr_raft_snap_send(r, p) != WR_OK)
            return WR_ENOMEM;
    }
    return WR_OK;
}

int wr_raft_snapshot_taken(wr_raft_t *r, uint64_t index, wr_raft_snapshot_t *out)
{
    uint64_t keep = r->cfg.snapshot_trailing, to = index > keep ? index - keep : 0;
    wr_raft_conf_t c;

    if (r->snap_missing)
        return WR_AGAIN;
    if (index <= r->snap_index || index > r->applied)
        return WR_ESYNTAX;
    wr_raft_conf_at(r, index, &c);
    wr_raft_snap_set(r, index, wr_raft_log_term(&r->log, index), &c);
    r->snap_wanted = false;
    if (to > r->log.offset) {
        wr_raft_log_compact(&r->log, to);
        r->compact_ready = true;
    }
    if (out != NULL)
        *out = (wr_raft_snapshot_t){index, r->snap_term, c};
    return restart_transfers(r);
}
