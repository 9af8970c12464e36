/* SPDX-License-Identifier: MIT */
/*
 * Membership after formation (membership.h): JOIN requests answered by any
 * member through the metadata group, removals (leave, forget), the notice a
 * member sends a removed node that still campaigns, and the durable marker
 * DATA_DIR/raft/removed that keeps such a node from starting again.
 */
#include "broker/cluster/membership.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker/base/log.h"
#include "core/buf.h"
#include "core/status.h"
#include "core/cursor.h"

#define MARKER "removed"

/* A JOIN this node sent, waiting for its JOINED. */
typedef struct join_s {
    struct join_s *next;
    wr_membership_t *m;
    uint64_t req;
    char *via;
    wr_membership_done_fn done;
    void *ud;
    struct event *timer;
} join_t;

/* A change this node asked its group for: a JOIN served for a peer (peer set) or a removal. */
typedef struct {
    wr_membership_t *m;
    char *peer;
    uint64_t req;
    bool self;
    bool answered; /* a leave answered when this node learnt it was out (done already called) */
    wr_membership_done_fn done;
    void *ud;
} change_t;

struct wr_membership_s {
    wr_membership_deps_t d;
    char *raft_dir;
    wr_rgroup_t *meta;
    join_t *joins;
    uint64_t next_req;
    change_t *leave; /* this node's leave, while it waits */
    bool gone;       /* removed: the stop is scheduled */
    bool left;       /* ...because it left: a clean stop */
    struct event *stop_ev;
};

static char *marker_path(const char *raft_dir)
{
    size_t n = strlen(raft_dir) + sizeof("/" MARKER);
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/" MARKER, raft_dir);
    return p;
}

int wr_membership_check(const char *raft_dir, const char *cluster_name)
{
    char *path = marker_path(raft_dir);
    bool removed;

    if (!path)
        return WR_ENOMEM;
    removed = access(path, F_OK) == 0;
    free(path);
    if (!removed)
        return WR_OK;
    wr_log_error("this node was removed from cluster '%s'; it will not start as its member again: to join it "
                 "afresh, empty %s, mark this node \"seed\": false and run 'warrenctl cluster join NODE' "
                 "(docs/CLUSTERING.md, Membership)",
                 cluster_name, raft_dir);
    return WR_EEXIST;
}

/* Writes the marker durably: the file, then its directory entry. */
static int write_marker(const char *raft_dir, const char *why)
{
    char *path = marker_path(raft_dir);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    int dfd = -1, rc = WR_EIO;
    size_t len = strlen(why);

    if (fd >= 0 && write(fd, why, len) == (ssize_t)len && fsync(fd) == 0 &&
        (dfd = open(raft_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 && fsync(dfd) == 0)
        rc = WR_OK;
    if (rc != WR_OK)
        wr_log_error("cannot record the removal in %s: %s", path ? path : raft_dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(path);
    return rc;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    wr_membership_t *m = arg;

    m->d.stop(m->d.ud, m->left);
}

/* This node is no longer a member: recorded, logged, then the node stops. */
static void gone(wr_membership_t *m, const char *why)
{
    struct timeval tv = {0, WR_MEMBER_STOP_DELAY_MS * 1000};

    if (m->gone)
        return;
    m->gone = true;
    m->left = m->leave != NULL;
    (void)write_marker(m->raft_dir, why);
    /* A removed member may never see its removal commit (the leader stops
     * replicating to it); being out is what the leave asked for. */
    if (m->leave && !m->leave->answered) {
        m->leave->answered = true;
        m->leave->done(m->leave->ud, WR_OK);
    }
    if (m->left)
        wr_log_info("this node left cluster '%s'; it stops and will not start as its member again",
                    m->d.cluster->name);
    else
        wr_log_error("this node was removed from cluster '%s' (%s); it stops and will not start as its "
                     "member again",
                     m->d.cluster->name, why);
    event_add(m->stop_ev, &tv);
}

/* ---------------------------------------------------------------- the wire */

/* Sends kind with a body of req (u64), then status (u32) when with_status. */
static int send_req(wr_membership_t *m, const char *node, uint8_t kind, uint64_t req, bool with_status,
                    int status)
{
    wr_buf_t buf = {0};
    int rc = WR_ENOMEM;

    wr_buf_put_u64(&buf, req);
    if (with_status)
        wr_buf_put_u32(&buf, (uint32_t)status);
    if (wr_buf_ok(&buf))
        rc = wr_peer_send_app(m->d.links, node, kind, 0, &(wr_bytes_t){buf.data, buf.len}, 1);
    wr_buf_free(&buf);
    return rc;
}

static void change_free(change_t *c)
{
    free(c->peer);
    free(c);
}

static void on_served(void *ud, int status, uint64_t index)
{
    change_t *c = ud;

    (void)send_req(c->m, c->peer, WR_MEMBER_JOINED, c->req, true, status);
    change_free(c);
}

/* A peer asks to be added: the metadata group decides, the answer goes back. */
static void serve_join(wr_membership_t *m, const char *node, uint64_t req)
{
    change_t *c = calloc(1, sizeof(*c));
    int rc = WR_ENOMEM;

    if (c && (c->peer = strdup(node)) != NULL) {
        c->m = m;
        c->req = req;
        rc = m->meta ? wr_rgroup_add_member(m->meta, node, on_served, c) : WR_ENOENT;
    }
    wr_log_info("cluster: %s asks to join: %s", node, rc == WR_OK ? "adding it" : "refused");
    if (rc == WR_OK)
        return;
    (void)send_req(m, node, WR_MEMBER_JOINED, req, true, rc);
    if (c)
        change_free(c);
}

static join_t *join_take(wr_membership_t *m, const char *via, uint64_t req)
{
    for (join_t **p = &m->joins; *p; p = &(*p)->next) {
        join_t *j = *p;
        if (j->req == req && (via == NULL || strcmp(j->via, via) == 0)) {
            *p = j->next;
            return j;
        }
    }
    return NULL;
}

static void join_finish(join_t *j, int status)
{
    j->done(j->ud, status);
    event_free(j->timer);
    free(j->via);
    free(j);
}

static void on_app(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body)
{
    wr_membership_t *m = ud;
    wr_cursor_t c = wr_cursor(body);
    uint64_t req = 0;
    uint32_t status = 0;
    char why[300];
    join_t *j;

    if (kind == WR_MEMBER_JOIN && wr_rd_u64(&c, &req) && wr_cursor_left(&c) == 0) {
        serve_join(m, node, req);
    } else if (kind == WR_MEMBER_JOINED && wr_rd_u64(&c, &req) && wr_rd_u32(&c, &status) &&
               wr_cursor_left(&c) == 0) {
        if ((j = join_take(m, node, req)) != NULL)
            join_finish(j, (int)(int32_t)status);
    } else if (kind == WR_MEMBER_REMOVED && body.len == 0) {
        snprintf(why, sizeof(why), "%s says so", node);
        gone(m, why);
    } else {
        wr_peer_links_drop(m->d.links, node, "a malformed membership message");
    }
}

/* ---------------------------------------------------------------- the driver's news */

static void on_removed(void *ud, uint64_t group)
{
    wr_membership_t *m = ud;

    if (group == WR_RGROUP_META)
        gone(m, m->leave ? "it left" : "a committed change removed it");
}

static void on_stranger(void *ud, uint64_t group, const char *node)
{
    wr_membership_t *m = ud;

    if (group != WR_RGROUP_META)
        return;
    wr_log_info("cluster: %s asks for votes but is no longer a member; telling it", node);
    (void)wr_peer_send_app(m->d.links, node, WR_MEMBER_REMOVED, 0, NULL, 0);
}

wr_raftd_watch_t wr_membership_watch(wr_membership_t *m)
{
    return (wr_raftd_watch_t){.removed = on_removed, .stranger = on_stranger, .ud = m};
}

/* ---------------------------------------------------------------- the API */

/* The links admit a node that the file does not list once it is in the committed membership. */
static bool is_member(void *ud, const char *node)
{
    wr_membership_t *m = ud;

    return m->meta && wr_rgroup_committed_member(m->meta, node);
}

wr_membership_t *wr_membership_new(const wr_membership_deps_t *d)
{
    wr_membership_t *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->d = *d;
    m->next_req = 1;
    m->raft_dir = strdup(d->raft_dir);
    m->stop_ev = evtimer_new(d->base, on_stop, m);
    if (!m->raft_dir || !m->stop_ev ||
        wr_peer_links_route(d->links, WR_PEER_APP_MEMBER_FIRST, WR_PEER_APP_MEMBER_LAST, on_app, m) !=
            WR_OK) {
        wr_membership_free(m);
        return NULL;
    }
    wr_peer_links_members(d->links, is_member, m);
    return m;
}

void wr_membership_free(wr_membership_t *m)
{
    if (!m)
        return;
    while (m->joins)
        join_finish(join_take(m, NULL, m->joins->req), WR_ENOENT);
    if (m->stop_ev)
        event_free(m->stop_ev);
    free(m->raft_dir);
    free(m);
}

void wr_membership_set_group(wr_membership_t *m, wr_rgroup_t *meta)
{
    m->meta = meta;
}

static void on_join_timeout(evutil_socket_t fd, short what, void *arg)
{
    join_t *j = arg;

    join_finish(join_take(j->m, NULL, j->req), WR_ETIMEDOUT);
}

int wr_membership_join(wr_membership_t *m, const char *via, wr_membership_done_fn done, void *ud)
{
    struct timeval tv = {WR_MEMBER_JOIN_TIMEOUT_MS / 1000, 0};
    join_t *j = calloc(1, sizeof(*j));
    int rc = WR_ENOMEM;

    if (!j || !(j->via = strdup(via)) || !(j->timer = evtimer_new(m->d.base, on_join_timeout, j)))
        goto fail;
    *j = (join_t){.next = m->joins,
                  .m = m,
                  .req = m->next_req++,
                  .via = j->via,
                  .done = done,
                  .ud = ud,
                  .timer = j->timer};
    if ((rc = send_req(m, via, WR_MEMBER_JOIN, j->req, false, 0)) != WR_OK)
        goto fail;
    m->joins = j;
    event_add(j->timer, &tv);
    return WR_OK;
fail:
    if (j && j->timer)
        event_free(j->timer);
    if (j)
        free(j->via);
    free(j);
    return rc == WR_ENOENT || rc == WR_AGAIN ? WR_EIO : rc;
}

static void on_change_done(void *ud, int status, uint64_t index)
{
    change_t *c = ud;

    if (c->self && c->m->leave == c)
        c->m->leave = NULL;
    if (!c->answered)
        c->done(c->ud, status);
    change_free(c);
}

int wr_membership_remove(wr_membership_t *m, const char *node, wr_membership_done_fn done, void *ud)
{
    bool self = strcmp(node, m->d.cluster->node) == 0;
    change_t *c;
    int rc;

    if (!m->meta)
        return WR_ENOENT;
    if (!(c = calloc(1, sizeof(*c))))
        return WR_ENOMEM;
    *c = (change_t){.m = m, .self = self, .done = done, .ud = ud};
    if ((rc = wr_rgroup_remove_member(m->meta, node, on_change_done, c)) != WR_OK)
        change_free(c);
    else if (self)
        m->leave = c;
    return rc;
}
