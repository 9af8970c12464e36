/* SPDX-License-Identifier: MIT */
/*
 * Proposals and membership changes of the Raft driver (raftd.h): the leader
 * appends and waits for its own apply; a follower forwards to the leader it
 * knows (APP kind FORWARD with a request id), which answers with the entry's
 * (term, index) or an error (kind ANSWER), then waits for its own apply of
 * that index and checks the term. A member joins as a learner and is
 * promoted once its acknowledged index is near the leader's last.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "broker/cluster/raftd_internal.h"
#include "core/status.h"

enum { KIND_FORWARD = WR_PEER_APP_RAFT_FIRST, KIND_ANSWER = WR_PEER_APP_RAFT_FIRST + 1 };

#define FORWARD_HEAD 13 /* req u64, op u8, timeout_ms u32 */
#define ANSWER_LEN   28 /* req u64, status i32, term u64, index u64 */
#define CATCHUP_LAG  64 /* a learner this close to the leader's last index is promoted */

static void put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Appends data if this member leads (wr_raft_propose), through the state
 * machine's stamp on a copy when it has one. */
static int append(wr_rgroup_t *g, const void *data, size_t len, uint64_t *term, uint64_t *index)
{
    wr_raft_status_t st;
    uint8_t *copy;
    int rc;

    if (g->sm.stamp == NULL || len == 0)
        return wr_raft_propose(g->raft, data, len, term, index);
    wr_raft_status(g->raft, &st);
    if (st.role != WR_RAFT_LEADER)
        return WR_ENOENT;
    if ((copy = malloc(len)) == NULL)
        return WR_ENOMEM;
    memcpy(copy, data, len);
    g->sm.stamp(g->ud, copy, len);
    rc = wr_raft_propose(g->raft, copy, len, term, index);
    free(copy);
    return rc;
}

/* ---- a proposal's life ---- */

/* Oldest first: proposals mostly end in the order they were made, so the
 * walk here stops near the head (with 1,000 in flight the newest-first list
 * cost 3% of a node's CPU in these walks). */
static void prop_unlink(wr_raftd_prop_t *p)
{
    wr_raftd_prop_t **pp = &p->g->props, *prev = NULL;

    while (*pp != p) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = p->next;
    if (p->g->props_tail == p)
        p->g->props_tail = prev;
}

/*
 * p waits in phase for its local apply of (term, index): in g->waits, kept in
 * index order so an applied entry finds its waiters at the head in O(1) (a
 * walk of every proposal per applied entry cost 12% of a leader's CPU with
 * 1,000 in flight). Indexes mostly rise, so the walk back from the tail stops
 * at once.
 */
static void wait_apply(wr_raftd_prop_t *p, uint8_t phase, uint64_t term, uint64_t index)
{
    wr_list_t *at = p->g->waits.prev;

    while (at != &p->g->waits && wr_list_entry(at, wr_raftd_prop_t, wait)->index > index)
        at = at->prev;
    wr_list_insert_tail(at->next, &p->wait);
    p->phase = phase;
    p->term = term;
    p->index = index;
}

/* Unlinks p, calls done and frees it. */
static void finish_now(wr_raftd_prop_t *p, int status)
{
    prop_unlink(p);
    wr_list_remove(&p->wait);
    event_free(p->ev);
    if (p->done)
        p->done(p->ud, status, p->index);
    free(p->origin);
    free(p);
}

/* Ends p from the loop (never inside the caller's own call). */
static void finish_later(wr_raftd_prop_t *p, int status)
{
    p->status = status;
    p->phase = WR_RAFTD_FINISHED;
    wr_list_remove(&p->wait);
    event_del(p->ev);
    event_active(p->ev, EV_TIMEOUT, 0);
}

static void on_prop_event(evutil_socket_t fd, short what, void *arg)
{
    wr_raftd_prop_t *p = arg;

    if (p->phase != WR_RAFTD_FINISHED)
        p->g->timeouts++;
    finish_now(p, p->phase == WR_RAFTD_FINISHED ? p->status : WR_ETIMEDOUT);
}

static wr_raftd_prop_t *prop_new(wr_rgroup_t *g, uint8_t op, unsigned timeout_ms, wr_rgroup_done_fn done,
                                 void *ud)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    wr_raftd_prop_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    *p = (wr_raftd_prop_t){.g = g, .op = op, .done = done, .ud = ud};
    wr_list_init(&p->wait);
    if ((p->ev = evtimer_new(g->d->base, on_prop_event, p)) == NULL || evtimer_add(p->ev, &tv) != 0) {
        if (p->ev)
            event_free(p->ev);
        free(p);
        return NULL;
    }
    if (g->props_tail != NULL)
        g->props_tail->next = p;
    else
        g->props = p;
    g->props_tail = p;
    return p;
}

/* ---- the wire ---- */

static void answer(wr_raftd_t *d, uint64_t group, const char *node, uint64_t req, int status, uint64_t term,
                   uint64_t index)
{
    uint8_t b[ANSWER_LEN];
    wr_bytes_t part = {b, sizeof(b)};

    put(b, req, 8);
    put(b + 8, (uint32_t)status, 4);
    put(b + 12, term, 8);
    put(b + 20, index, 8);
    /* Lost (a full or broken link): the follower times out, its outcome unknown. */
    (void)wr_peer_send_app(d->links, node, KIND_ANSWER, group, &part, 1);
}

/* Sends p to the leader this member knows; it then waits for the answer. */
static void forward(wr_raftd_prop_t *p, unsigned timeout_ms, const void *data, size_t len)
{
    wr_raft_status_t st;
    uint8_t head[FORWARD_HEAD];
    const char *leader;
    wr_bytes_t parts[2] = {{head, sizeof(head)}, {data, len}};

    wr_raft_status(p->g->raft, &st);
    if ((leader = wr_raftd_name(p->g->d, st.leader)) == NULL || st.leader == p->g->d->self) {
        finish_later(p, WR_ENOENT);
        return;
    }
    p->req = ++p->g->d->next_req;
    put(head, p->req, 8);
    head[8] = p->op;
    put(head + 9, timeout_ms, 4);
    p->phase = WR_RAFTD_WAIT_LEADER;
    if (wr_peer_send_app(p->g->d->links, leader, KIND_FORWARD, p->g->id, parts, 2) != WR_OK)
        finish_later(p, WR_ENOENT); /* nothing was appended */
}

/* ---- membership steps (leader) ---- */

/* The final entry of a change is known: a forwarded change answers, a local one waits for its apply. */
static void change_final(wr_raftd_prop_t *p, int rc, uint64_t term, uint64_t index)
{
    if (p->origin != NULL) {
        answer(p->g->d, p->g->id, p->origin, p->origin_req, rc, term, index);
        p->done = NULL;
        finish_now(p, rc);
    } else if (rc != WR_OK) {
        finish_later(p, rc);
    } else {
        wait_apply(p, WR_RAFTD_WAIT_APPLY, term, index);
    }
}

static bool is_learner(const wr_rgroup_t *g, uint32_t id)
{
    wr_raft_conf_t c;

    wr_raft_conf(g->raft, &c);
    for (size_t i = 0; i < c.n; i++) {
        if (c.id[i] == id)
            return !c.voter[i];
    }
    return false;
}

static bool caught_up(const wr_rgroup_t *g, uint32_t id)
{
    wr_raft_status_t st;
    int slot = wr_raftd_slot(g->d, id);

    wr_raft_status(g->raft, &st);
    return slot >= 0 && g->match[slot] + CATCHUP_LAG >= st.last_index;
}

/* One step of an add (learner, then promotion) or a removal; WR_AGAIN waits for the next tick. */
static void change_step(wr_raftd_prop_t *p)
{
    wr_rgroup_t *g = p->g;
    uint64_t term = 0, index = 0;
    int rc;

    if (p->op == WR_RAFTD_OP_REMOVE) {
        rc = wr_raft_change(g->raft, WR_RAFT_REMOVE, p->member, &term, &index);
    } else if (p->phase == WR_RAFTD_WAIT_CHANGE) {
        rc = wr_raft_change(g->raft, WR_RAFT_ADD_LEARNER, p->member, &term, &index);
        if (rc == WR_EEXIST && is_learner(g, p->member)) {
            p->phase = WR_RAFTD_WAIT_CATCHUP; /* an earlier add stopped half way */
            return;
        }
        if (rc == WR_OK) {
            wait_apply(p, WR_RAFTD_WAIT_LEARNER, term, index);
            wr_raftd_wake(g);
            return;
        }
    } else {
        rc = caught_up(g, p->member) ? wr_raft_change(g->raft, WR_RAFT_PROMOTE, p->member, &term, &index)
                                     : WR_AGAIN;
    }
    if (rc == WR_AGAIN)
        return;
    if (rc == WR_OK)
        wr_raftd_wake(g);
    change_final(p, rc, term, index);
}

void wr_raftd_props_tick(wr_rgroup_t *g)
{
    wr_raftd_prop_t *p = g->props, *next;

    for (; p != NULL; p = next) {
        next = p->next;
        if (p->phase == WR_RAFTD_WAIT_CHANGE || p->phase == WR_RAFTD_WAIT_CATCHUP)
            change_step(p);
    }
}

/* ---- what applies end ---- */

/*
 * The oldest proposal waiting for index, or NULL. Those waiting for a lower
 * index were passed over by a snapshot installed here: they leave g->waits
 * and time out (their outcome is unknown).
 */
static wr_raftd_prop_t *waiting_for(wr_rgroup_t *g, uint64_t index)
{
    wr_raftd_prop_t *p;

    while (!wr_list_empty(&g->waits)) {
        p = wr_list_entry(g->waits.next, wr_raftd_prop_t, wait);
        if (p->index >= index)
            return p->index == index ? p : NULL;
        wr_list_remove(&p->wait);
    }
    return NULL;
}

void wr_raftd_props_applied(wr_rgroup_t *g, const wr_raft_entry_t *e)
{
    wr_raftd_prop_t *p;

    /* Several may wait for one index (one of them for an entry overwritten since). */
    while ((p = waiting_for(g, e->index)) != NULL) {
        if (p->phase == WR_RAFTD_WAIT_LEARNER && p->term == e->term) {
            p->phase = WR_RAFTD_WAIT_CATCHUP;
            wr_list_remove(&p->wait);
        } else {
            finish_now(p, p->term == e->term ? WR_OK : WR_ENOENT);
        }
    }
}

void wr_raftd_props_abort(wr_rgroup_t *g)
{
    while (g->props != NULL) {
        wr_raftd_prop_t *p = g->props;
        bool unknown = p->phase != WR_RAFTD_WAIT_CHANGE && p->phase != WR_RAFTD_FINISHED;
        finish_now(p, p->phase == WR_RAFTD_FINISHED ? p->status : unknown ? WR_ETIMEDOUT : WR_ENOENT);
    }
}

/* ---- the API ---- */

int wr_rgroup_propose(wr_rgroup_t *g, const void *data, size_t len, unsigned timeout_ms,
                      wr_rgroup_done_fn done, void *ud)
{
    wr_raftd_prop_t *p;
    int rc;

    if (len > WR_RGROUP_MAX_ENTRY)
        return WR_ETOOBIG;
    if (g->freeing)
        return WR_ENOENT;
    if ((p = prop_new(g, WR_RAFTD_OP_DATA, timeout_ms, done, ud)) == NULL)
        return WR_ENOMEM;
    if (g->broken || g->d->failed) {
        finish_later(p, WR_ENOENT);
        return WR_OK;
    }
    rc = append(g, data, len, &p->term, &p->index);
    if (rc == WR_ENOENT) {
        forward(p, timeout_ms, data, len);
        return WR_OK;
    }
    if (rc == WR_ENOMEM) {
        p->done = NULL;
        finish_now(p, rc);
        return WR_ENOMEM;
    }
    if (rc != WR_OK) { /* WR_AGAIN: a leadership transfer is under way */
        finish_later(p, WR_ENOENT);
        return WR_OK;
    }
    wait_apply(p, WR_RAFTD_WAIT_APPLY, p->term, p->index);
    wr_raftd_wake(g);
    return WR_OK;
}

static int change(wr_rgroup_t *g, uint8_t op, const char *node, wr_rgroup_done_fn done, void *ud)
{
    uint32_t id = wr_raftd_node_id(node);
    wr_raftd_prop_t *p;
    wr_raft_status_t st;

    if (wr_raftd_slot(g->d, id) < 0 || g->freeing)
        return WR_ENOENT;
    if ((p = prop_new(g, op, WR_RGROUP_CHANGE_TIMEOUT_MS, done, ud)) == NULL)
        return WR_ENOMEM;
    p->member = id;
    p->phase = WR_RAFTD_WAIT_CHANGE;
    wr_raft_status(g->raft, &st);
    if (g->broken || g->d->failed)
        finish_later(p, WR_ENOENT);
    else if (st.role != WR_RAFT_LEADER)
        forward(p, WR_RGROUP_CHANGE_TIMEOUT_MS, node, strlen(node));
    else
        change_step(p);
    return WR_OK;
}

int wr_rgroup_transfer(wr_rgroup_t *g, const char *node)
{
    int rc;

    if (g->broken || g->d->failed || g->deleted)
        return WR_ENOENT;
    if ((rc = wr_raft_transfer(g->raft, wr_raftd_node_id(node))) != WR_OK)
        return WR_ENOENT;
    wr_raftd_wake(g);
    return WR_OK;
}

int wr_rgroup_add_member(wr_rgroup_t *g, const char *node, wr_rgroup_done_fn done, void *ud)
{
    return change(g, WR_RAFTD_OP_ADD, node, done, ud);
}

int wr_rgroup_remove_member(wr_rgroup_t *g, const char *node, wr_rgroup_done_fn done, void *ud)
{
    return change(g, WR_RAFTD_OP_REMOVE, node, done, ud);
}

/* ---- received ---- */

/* The leader's side of a forwarded membership change: a task that answers node when its entry is known. */
static void forwarded_change(wr_rgroup_t *g, const char *node, uint64_t req, uint8_t op, unsigned timeout_ms,
                             wr_bytes_t name)
{
    char buf[256];
    wr_raftd_prop_t *p;

    if (name.len == 0 || name.len >= sizeof(buf) || (p = prop_new(g, op, timeout_ms, NULL, NULL)) == NULL) {
        answer(g->d, g->id, node, req, name.len == 0 || name.len >= sizeof(buf) ? WR_ESYNTAX : WR_ENOMEM, 0,
               0);
        return;
    }
    memcpy(buf, name.data, name.len);
    buf[name.len] = '\0';
    p->member = wr_raftd_node_id(buf);
    p->phase = WR_RAFTD_WAIT_CHANGE;
    p->origin_req = req;
    if ((p->origin = strdup(node)) == NULL) {
        finish_now(p, WR_ENOMEM);
        answer(g->d, g->id, node, req, WR_ENOMEM, 0, 0);
        return;
    }
    change_step(p);
}

static void on_forward(wr_rgroup_t *g, const char *node, wr_bytes_t body)
{
    uint64_t req, term = 0, index = 0;
    unsigned timeout_ms;
    uint8_t op;
    int rc;

    if (body.len < FORWARD_HEAD)
        return;
    req = get(body.data, 8);
    op = body.data[8];
    timeout_ms = (unsigned)get(body.data + 9, 4);
    body.data += FORWARD_HEAD;
    body.len -= FORWARD_HEAD;
    if (op == WR_RAFTD_OP_ADD || op == WR_RAFTD_OP_REMOVE) {
        forwarded_change(g, node, req, op, timeout_ms, body);
        return;
    }
    if (op != WR_RAFTD_OP_DATA)
        rc = WR_EUNKNOWN;
    else if (body.len > WR_RGROUP_MAX_ENTRY)
        rc = WR_ETOOBIG;
    else if ((rc = append(g, body.data, body.len, &term, &index)) != WR_OK)
        rc = WR_ENOENT; /* not the leader, or a transfer under way: nothing was appended */
    answer(g->d, g->id, node, req, rc, term, index);
    if (rc == WR_OK)
        wr_raftd_wake(g);
}

static wr_raftd_prop_t *by_req(const wr_rgroup_t *g, uint64_t req)
{
    for (wr_raftd_prop_t *p = g->props; p != NULL; p = p->next) {
        if (p->req == req && p->phase == WR_RAFTD_WAIT_LEADER)
            return p;
    }
    return NULL;
}

static void on_answer(wr_rgroup_t *g, wr_bytes_t body)
{
    wr_raftd_prop_t *p;
    uint64_t t;
    int status;

    if (body.len != ANSWER_LEN || (p = by_req(g, get(body.data, 8))) == NULL)
        return;
    status = (int)(int32_t)get(body.data + 8, 4);
    if (status != WR_OK) {
        finish_later(p, status);
        return;
    }
    p->term = get(body.data + 12, 8);
    p->index = get(body.data + 20, 8);
    if (p->index > g->applied) {
        wait_apply(p, WR_RAFTD_WAIT_APPLY, p->term, p->index);
        return;
    }
    /* Applied here before the answer came: the term of the entry applied decides, if still known. */
    t = wr_raft_term(g->raft, p->index);
    finish_later(p, t == 0 ? WR_ETIMEDOUT : t == p->term ? WR_OK : WR_ENOENT);
}

static void on_app(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body)
{
    wr_raftd_t *d = ud;
    wr_rgroup_t *g = wr_raftd_group(d, group);

    if (g == NULL || g->broken || d->failed) {
        if (kind == KIND_FORWARD && body.len >= 8)
            answer(d, group, node, get(body.data, 8), WR_ENOENT, 0, 0);
        return;
    }
    if (kind == KIND_FORWARD)
        on_forward(g, node, body);
    else if (kind == KIND_ANSWER)
        on_answer(g, body);
}

int wr_raftd_props_route(wr_raftd_t *d)
{
    return wr_peer_links_route(d->links, WR_PEER_APP_RAFT_FIRST, WR_PEER_APP_RAFT_LAST, on_app, d);
}
