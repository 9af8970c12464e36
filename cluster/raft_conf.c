/* SPDX-License-Identifier: MIT */
/*
 * Membership: CONFIG entries (5 bytes per member: id, little-endian, and a
 * voter flag), the membership in force (the last CONFIG entry in the log, as
 * in the Raft thesis), quorums from its voters, and single-server changes.
 */
#include <string.h>

#include "cluster/raft_internal.h"
#include "core/status.h"

size_t wr_raft_quorum(const wr_raft_t *r)
{
    size_t voters = 0;

    for (size_t i = 0; i < r->n_peers; i++)
        voters += r->peers[i].voter;
    return voters / 2 + 1;
}

bool wr_raft_is_voter(const wr_raft_t *r, uint32_t id)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id)
            return r->peers[i].voter;
    return false;
}

int wr_raft_conf_decode(const wr_raft_entry_t *e, wr_raft_conf_t *c)
{
    *c = (wr_raft_conf_t){.index = e->index};
    if (e->type != WR_RAFT_ENTRY_CONFIG || e->len % WR_RAFT_CONF_REC != 0 ||
        e->len / WR_RAFT_CONF_REC > WR_RAFT_MAX_PEERS)
        return WR_ESYNTAX;
    for (size_t i = 0; i < e->len / WR_RAFT_CONF_REC; i++) {
        const uint8_t *p = e->data + i * WR_RAFT_CONF_REC;
        c->id[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        c->voter[i] = p[4] != 0;
    }
    c->n = e->len / WR_RAFT_CONF_REC;
    return WR_OK;
}

void wr_raft_conf(const wr_raft_t *r, wr_raft_conf_t *c)
{
    *c = (wr_raft_conf_t){.n = r->n_peers, .index = r->conf_index};
    for (size_t i = 0; i < r->n_peers; i++) {
        c->id[i] = r->peers[i].id;
        c->voter[i] = r->peers[i].voter;
    }
}

/* Puts c in force, keeping the progress of members that stay. */
static void conf_apply(wr_raft_t *r, const wr_raft_conf_t *c)
{
    wr_raft_peer_t old[WR_RAFT_MAX_PEERS];
    size_t n_old = r->n_peers;

    memcpy(old, r->peers, sizeof(old));
    for (size_t i = 0; i < c->n; i++) {
        wr_raft_peer_t p = {.id = c->id[i], .active = true, .next = r->log.n + 1};
        for (size_t j = 0; j < n_old; j++)
            if (old[j].id == c->id[i])
                p = old[j];
        p.voter = c->voter[i];
        r->peers[i] = p;
    }
    r->n_peers = c->n;
    r->conf_index = c->index;
}

void wr_raft_conf_at(const wr_raft_t *r, uint64_t index, wr_raft_conf_t *c)
{
    *c = (wr_raft_conf_t){.n = r->cfg.n_peers};
    for (uint64_t i = index < r->log.n ? index : r->log.n; i > r->log.offset; i--) {
        const wr_raft_entry_t *e = wr_raft_log_at(&r->log, i);
        if (e->type == WR_RAFT_ENTRY_CONFIG && wr_raft_conf_decode(e, c) == WR_OK)
            return;
    }
    /* Older than the log: the snapshot's, else the first voters. */
    if (r->snap_conf_e.len > 0 && wr_raft_conf_decode(&r->snap_conf_e, c) == WR_OK)
        return;
    *c = (wr_raft_conf_t){.n = r->cfg.n_peers};
    for (size_t i = 0; i < c->n; i++) {
        c->id[i] = r->cfg.peers[i];
        c->voter[i] = true;
    }
}

void wr_raft_conf_reload(wr_raft_t *r)
{
    wr_raft_conf_t c;

    wr_raft_conf_at(r, r->log.n, &c);
    conf_apply(r, &c);
}

/* The position of id in c (c->n: absent). */
static size_t conf_find(const wr_raft_conf_t *c, uint32_t id)
{
    size_t at = 0;

    while (at < c->n && c->id[at] != id)
        at++;
    return at;
}

static int conf_add(wr_raft_conf_t *c, uint32_t id)
{
    if (id == 0)
        return WR_EUNKNOWN;
    if (conf_find(c, id) < c->n)
        return WR_EEXIST;
    if (c->n == WR_RAFT_MAX_PEERS)
        return WR_ETOOBIG;
    c->id[c->n] = id;
    c->voter[c->n++] = false;
    return WR_OK;
}

static int conf_remove(wr_raft_conf_t *c, uint32_t id)
{
    size_t at = conf_find(c, id), voters = 0;

    for (size_t i = 0; i < c->n; i++)
        voters += c->voter[i];
    if (at == c->n)
        return WR_EUNKNOWN;
    if (c->voter[at] && voters == 1)
        return WR_ESYNTAX;
    c->id[at] = c->id[c->n - 1];
    c->voter[at] = c->voter[--c->n];
    return WR_OK;
}

/* Applies op to the membership in force into *c; a status as wr_raft_change. */
static int conf_edit(const wr_raft_t *r, wr_raft_change_t op, uint32_t id, wr_raft_conf_t *c)
{
    size_t at;

    wr_raft_conf(r, c);
    if (op == WR_RAFT_ADD_LEARNER)
        return conf_add(c, id);
    if (op == WR_RAFT_REMOVE)
        return conf_remove(c, id);
    at = conf_find(c, id);
    if (at == c->n || c->voter[at])
        return WR_EUNKNOWN;
    c->voter[at] = true;
    return WR_OK;
}

uint32_t wr_raft_conf_encode(const wr_raft_conf_t *c, uint8_t *buf)
{
    for (size_t i = 0; i < c->n; i++) {
        uint8_t *p = buf + i * WR_RAFT_CONF_REC;
        p[0] = (uint8_t)c->id[i];
        p[1] = (uint8_t)(c->id[i] >> 8);
        p[2] = (uint8_t)(c->id[i] >> 16);
        p[3] = (uint8_t)(c->id[i] >> 24);
        p[4] = c->voter[i];
    }
    return (uint32_t)(c->n * WR_RAFT_CONF_REC);
}

/* Only one change at a time, and only once this leader committed in its term. */
static int change_allowed(const wr_raft_t *r)
{
    if (r->role != WR_RAFT_LEADER)
        return WR_ENOENT;
    if (r->transfer_to != 0 || r->conf_index > r->commit)
        return WR_AGAIN;
    return wr_raft_log_term(&r->log, r->commit) == r->term ? WR_OK : WR_AGAIN;
}

int wr_raft_change(wr_raft_t *r, wr_raft_change_t op, uint32_t id, uint64_t *term, uint64_t *index)
{
    uint8_t buf[WR_RAFT_MAX_PEERS * WR_RAFT_CONF_REC];
    wr_raft_entry_t e = {.term = r->term, .type = WR_RAFT_ENTRY_CONFIG, .data = buf};
    wr_raft_conf_t c;
    int rc = change_allowed(r);

    if (rc != WR_OK || (rc = conf_edit(r, op, id, &c)) != WR_OK)
        return rc;
    e.len = wr_raft_conf_encode(&c, buf);
    if (wr_raft_log_append(&r->log, &e) != WR_OK)
        return WR_ENOMEM;
    c.index = r->log.n;
    conf_apply(r, &c);
    r->bcast = true;
    *term = r->term;
    *index = r->log.n;
    return WR_OK;
}
