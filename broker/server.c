/* SPDX-License-Identifier: MIT */
/*
 * The server object: event loop, configuration, listeners, vhosts and the
 * connection lists. Connections that finish are moved to a closing list and
 * freed by the reaper event after the callbacks of the current loop pass, so
 * none is ever freed inside its own callback; a vhost deleted at run time is
 * freed by the reaper too, once no connection refers to it. SIGTERM/SIGINT close clients
 * with 320 CONNECTION_FORCED, wait (bounded) for them, then stop the loop;
 * SIGHUP reopens the log file and reloads the TLS certificates; SIGUSR1 and
 * SIGUSR2 are logged and ignored.
 */
#include "broker/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "broker/base/loop.h"
#include "broker/cluster/link.h"
#include "broker/cluster/membership.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/remote.h"
#include "broker/cluster/reports.h"
#include "broker/cluster/quorum.h"
#include "broker/cluster/raftd.h"
#include "broker/node/alarm.h"
#include "broker/amqp/conn.h"
#include "broker/node/durable.h"
#include "broker/node/durable_defs.h"
#include "broker/base/log.h"
#include "broker/mgmt/mgmt.h"
#include "broker/mgmt/mgmt_cluster.h"
#include "broker/mgmt/mgmt_cluster_conns.h"
#include "broker/mgmt/mgmt_cluster_lists.h"
#include "broker/mgmt/mgmt_conns.h"
#include "broker/mgmt/mgmt_nodes.h"
#include "broker/vhost/policy.h"
#include "broker/amqp/reply_to.h"
#include "broker/amqp/tls.h"
#include "broker/vhost/vhost.h"
#include "core/list.h"
#include "core/map.h"
#include "core/status.h"

/* After SIGTERM, how long clients get to answer connection.close (and
 * their output to drain) before the broker exits regardless. */
#define SHUTDOWN_GRACE_SEC 2
/* After accept() fails (EMFILE...), listeners pause this long instead of
 * spinning on a descriptor they cannot take. */
#define ACCEPT_RETRY_SEC 1
/* The signals the loop handles (server_signals). */
#define NSIGNALS 5

struct wr_server_s {
    struct event_base *base;
    wr_config_t *cfg;
    struct evconnlistener **listeners;
    size_t nlisteners;
    wr_map_t *vhosts;       /* name -> wr_vhost_t */
    json_t *vhost_settings; /* name -> its settings (a vhost.declare entry, broker/node/topo_state.h) */
    wr_vhost_t **retired;   /* deleted vhosts that connections closing still refer to */
    size_t nretired;
    wr_list_t conns;   /* live connections */
    wr_list_t closing; /* finished, waiting for the reaper */
    uint64_t next_conn_id;
    struct event *reaper;
    struct event *signals[NSIGNALS]; /* as in server_signals */
    struct event *stop_deadline;
    struct event *accept_retry;
    bool stopping;
    bool links_stopping;   /* the peer links have lookups to end first (wr_peer_links_stop) */
    wr_mgmt_t *mgmt;       /* HTTP listeners and statistics; NULL when not configured */
    wr_durable_t *durable; /* the store in data_dir and the durable topology */
    wr_tls_t *tls;         /* the TLS listeners' and HTTPS API's context; NULL without */
    size_t nconns;         /* on the live list, for limits.max_connections */
    wr_map_t *user_conns;  /* user name -> open connections (uintptr_t) */
    time_t refusal_logged; /* connections over the limit are logged once a second */
    uint64_t refused;      /* ...with the count since the last line */
    struct wr_policies_s *policies;
    struct wr_alarms_s *alarms;
    wr_reply_to_t *reply_to;  /* direct reply-to names, for every vhost */
    wr_counters_t counters;   /* node-wide event counters (Prometheus) */
    wr_vhost_env_t vhost_env; /* what every vhost is created with */
    wr_conn_env_t conn_env;   /* what every connection is created with */
    wr_mgmt_env_t mgmt_env;   /* what the management side works with */
    wr_peer_links_t *peers;   /* the links to the other nodes; NULL without a cluster section */
    wr_reports_t *reports;    /* the other nodes' reports; NULL without a cluster section */
    wr_tls_t *peer_tls;       /* cluster.tls: the peer links' context */
    wr_raftd_t *raftd;        /* the Raft groups in data_dir/raft; NULL without a cluster section */
    wr_remote_t *remote;      /* classic queues used across nodes; NULL without a cluster section */
    wr_meta_t *meta;          /* the cluster-wide definitions; NULL without a cluster section */
    wr_quorum_t *quorum;      /* quorum queues' groups on this node; NULL without a cluster section */
    wr_rgroup_t *meta_group;  /* the metadata Raft group driving it */
    /* Joins, leaves, removals; NULL without a cluster section. */
    wr_membership_t *membership;
    /* wr_server_run's result once the loop ends (a removed node: WR_EEXIST). */
    int exit_rc;
};

static void server_close_listeners(wr_server_t *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}

static void free_conn_list(wr_list_t *head)
{
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, head)
    {
        wr_list_remove(pos);
        wr_conn_free(wr_conn_from_link(pos));
    }
}

/* Whether a live connection still refers to vh. */
static bool vhost_in_use(wr_server_t *srv, const wr_vhost_t *vh)
{
    wr_list_t *pos;

    for (pos = srv->conns.next; pos != &srv->conns; pos = pos->next) {
        if (wr_conn_vhost(wr_conn_from_link(pos)) == vh)
            return true;
    }
    return false;
}

/* Frees the deleted vhosts no connection refers to any more (all of them
 * when `all`). */
static void free_retired(wr_server_t *srv, bool all)
{
    size_t kept = 0;

    for (size_t i = 0; i < srv->nretired; i++) {
        if (!all && vhost_in_use(srv, srv->retired[i]))
            srv->retired[kept++] = srv->retired[i];
        else
            wr_vhost_free(srv->retired[i]);
    }
    srv->nretired = kept;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    wr_server_t *srv = arg;

    free_conn_list(&srv->closing);
    free_retired(srv, false);
    if (srv->stopping && wr_list_empty(&srv->conns) && !srv->links_stopping)
        event_base_loopbreak(srv->base);
}

static void server_links_stopped(void *ud)
{
    wr_server_t *srv = ud;

    srv->links_stopping = false;
    event_active(srv->reaper, 0, 0);
}

static void server_conn_done(void *ud, wr_conn_t *c)
{
    wr_server_t *srv = ud;
    wr_list_t *link = wr_conn_link(c);

    wr_list_remove(link);
    wr_list_insert_tail(&srv->closing, link);
    srv->nconns--;
    event_active(srv->reaper, 0, 0);
}

/*
 * limits.max_connections: a client over the limit has its socket closed at
 * once (RabbitMQ's connection_max instead stops accepting, which leaves
 * clients hanging in the backlog). Logged at most once a second, so a flood
 * of refused clients cannot flood the log too.
 */
static bool server_over_limit(wr_server_t *srv, evutil_socket_t fd)
{
    time_t now = time(NULL);

    if (srv->cfg->max_connections < 0 || srv->nconns < (size_t)srv->cfg->max_connections)
        return false;
    evutil_closesocket(fd);
    srv->refused++;
    if (now != srv->refusal_logged) {
        wr_log_warn("connection limit (limits.max_connections = %lld) reached: refused %llu connection(s)",
                    (long long)srv->cfg->max_connections, (unsigned long long)srv->refused);
        srv->refusal_logged = now;
        srv->refused = 0;
    }
    return true;
}

static void server_accept(wr_server_t *srv, evutil_socket_t fd, struct sockaddr *peer, wr_tls_t *tls)
{
    wr_conn_t *c;

    if (server_over_limit(srv, fd))
        return;
    c = wr_conn_new(&srv->conn_env, fd, peer, ++srv->next_conn_id, tls);
    if (!c)
        return;
    wr_list_insert_tail(&srv->conns, wr_conn_link(c));
    srv->nconns++;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer, int len, void *arg)
{
    server_accept(arg, fd, peer, NULL);
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer, int len,
                          void *arg)
{
    wr_server_t *srv = arg;

    server_accept(srv, fd, peer, srv->tls);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    wr_server_t *srv = arg;
    struct timeval tv = {ACCEPT_RETRY_SEC, 0};

    wr_log_error("accept failed: %s; pausing listeners for %d s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), ACCEPT_RETRY_SEC);
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i]);
    event_add(srv->accept_retry, &tv);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    wr_server_t *srv = arg;

    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

static void on_stop_deadline(evutil_socket_t fd, short what, void *arg)
{
    wr_server_t *srv = arg;

    wr_log_warn("connections still open %d s after shutdown began; closing them", SHUTDOWN_GRACE_SEC);
    event_base_loopbreak(srv->base);
}

/* Closes the listeners and every connection; the loop ends once they are gone (or at the deadline). */
static void server_begin_stop(wr_server_t *srv)
{
    struct timeval grace = {SHUTDOWN_GRACE_SEC, 0};
    wr_list_t *pos, *tmp;

    srv->stopping = true;
    server_close_listeners(srv);
    event_del(srv->accept_retry);
    if (srv->peers) {
        srv->links_stopping = true;
        wr_peer_links_stop(srv->peers, server_links_stopped, srv);
    }
    /* wr_conn_shutdown may move the connection to the closing list. */
    wr_list_foreach_safe(pos, tmp, &srv->conns)
    {
        wr_conn_shutdown(wr_conn_from_link(pos));
    }
    event_add(srv->stop_deadline, &grace);
    event_active(srv->reaper, 0, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    wr_server_t *srv = arg;

    if (srv->stopping) {
        wr_log_warn("received %s again; stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopbreak(srv->base);
        return;
    }
    wr_log_info("received %s; shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_begin_stop(srv);
}

/* Log rotation: the file was renamed; lines go to a new one at the path. */
static void server_reopen_log(wr_server_t *srv)
{
    const char *path = srv->cfg->log_file;

    if (!path)
        return;
    if (wr_log_set_file(path) != WR_OK)
        wr_log_error("cannot reopen the log file '%s': %s; still writing to the old one", path,
                     strerror(errno));
    else
        wr_log_info("log file reopened: %s", path);
}

/* Certificate rotation: new connections get the files as they are now. */
static void server_reload_tls(wr_server_t *srv)
{
    char err[600];

    if (!srv->tls)
        return;
    if (wr_tls_reload(srv->tls, &srv->cfg->tls, err, sizeof(err)) != WR_OK)
        wr_log_error("TLS certificates not reloaded, the current ones stay in use: %s", err);
    else
        wr_log_info("TLS certificates reloaded from '%s'", srv->cfg->tls.certfile);
}

/*
 * SIGHUP re-reads only what is safe to change under running connections:
 * the log file and the TLS files (for new connections). Users, permissions
 * and the rest of the configuration file are not re-read: the management
 * API and definitions change those at run time, and a file re-read would
 * undo their changes.
 */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    wr_server_t *srv = arg;

    wr_log_info("received SIGHUP; reopening the log file and reloading TLS certificates");
    server_reopen_log(srv);
    server_reload_tls(srv);
}

static void on_sigusr(evutil_socket_t sig, short what, void *arg)
{
    wr_log_info("received %s; ignored", sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
}

/* Every signal the server handles, with its handler. */
static const struct {
    int sig;
    event_callback_fn fn;
} server_signals[NSIGNALS] = {
    {SIGTERM, on_signal}, {SIGINT, on_signal},  {SIGHUP, on_sighup},
    {SIGUSR1, on_sigusr}, {SIGUSR2, on_sigusr},
};

/* Watches server_signals; WR_OK or WR_ENOMEM. */
static int server_watch_signals(wr_server_t *srv)
{
    for (size_t i = 0; i < NSIGNALS; i++) {
        srv->signals[i] = evsignal_new(srv->base, server_signals[i].sig, server_signals[i].fn, srv);
        if (!srv->signals[i] || event_add(srv->signals[i], NULL) != 0)
            return WR_ENOMEM;
    }
    return WR_OK;
}

/* Parses "address", port into ss; false when the address is no IP literal
 * (config.c has already rejected those). */
static bool listener_addr(const wr_listener_cfg_t *l, struct sockaddr_storage *ss, socklen_t *len, char *name,
                          size_t namelen)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, l->address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(l->port);
        *len = sizeof(*in);
        snprintf(name, namelen, "%s:%u", l->address, l->port);
        return true;
    }
    if (inet_pton(AF_INET6, l->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(l->port);
        *len = sizeof(*in6);
        snprintf(name, namelen, "[%s]:%u", l->address, l->port);
        return true;
    }
    return false;
}

/* Binds one listener; `tls` selects the TLS accept callback. */
static int server_bind(wr_server_t *srv, const wr_listener_cfg_t *cfg, bool tls)
{
    const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    struct sockaddr_storage ss;
    socklen_t len;
    char name[80];
    struct evconnlistener *l;

    if (!listener_addr(cfg, &ss, &len, name, sizeof(name))) {
        wr_log_error("cannot listen on '%s': not an IP address", cfg->address);
        return WR_EIO;
    }
    l = evconnlistener_new_bind(srv->base, tls ? on_accept_tls : on_accept, srv, flags, -1,
                                (struct sockaddr *)&ss, (int)len);
    if (!l) {
        wr_log_error("cannot listen on %s: %s", name, strerror(errno));
        return WR_EIO;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    srv->listeners[srv->nlisteners++] = l;
    wr_log_info("listening on %s%s", name, tls ? " (TLS)" : "");
    return WR_OK;
}

static void server_report_sample(void *ud, wr_report_t *out)
{
    wr_server_t *srv = ud;

    wr_mgmt_node_sample(&srv->mgmt_env, out);
}

/* What this node lists in the management API, for the other nodes' listings (mgmt_cluster.h). */
static void server_report_lists(void *ud, wr_buf_t *out)
{
    wr_server_t *srv = ud;

    wr_mgmt_cluster_sample(&srv->mgmt_env, out);
}

/* Other nodes' memory and disk alarms hold this node's publishers too. */
static void server_remote_alarms(void *ud)
{
    wr_server_t *srv = ud;
    bool memory, disk;

    wr_reports_alarms(srv->reports, &memory, &disk);
    if (srv->alarms)
        wr_alarms_set_remote(srv->alarms, memory, disk);
}

static struct bufferevent *server_peer_accept(void *ud, struct event_base *base, int fd)
{
    return wr_tls_accept(ud, base, fd);
}

static struct bufferevent *server_peer_dial(void *ud, struct event_base *base)
{
    return wr_tls_connect(ud, base);
}

/* cluster.tls: the links run over TLS with the "tls" section's files. */
static int server_peer_tls(wr_server_t *srv)
{
    char err[512];

    if (!(srv->peer_tls = wr_tls_new_peer(&srv->cfg->tls, err, sizeof(err)))) {
        wr_log_error("cluster.tls: %s", err);
        return WR_EIO;
    }
    wr_peer_links_transport(srv->peers, &(wr_peer_transport_t){server_peer_accept, server_peer_dial,
                                                               wr_tls_error, "TLS", srv->peer_tls});
    return WR_OK;
}

/* This node is no longer a cluster member (membership.c logged why): it stops, exiting 1 unless it left. */
static void server_member_stop(void *ud, bool left)
{
    wr_server_t *srv = ud;

    if (!left)
        srv->exit_rc = WR_EEXIST;
    if (!srv->stopping)
        server_begin_stop(srv);
}

static void server_on_raft(void *ctx, const char *node, uint64_t group, const wr_raft_msg_t *m)
{
    wr_server_t *srv = ctx;

    wr_raftd_on_raft(srv->raftd, node, group, m);
}

/* The Raft driver in data_dir/raft, on the links (it and the membership
 * route their APP kinds before they start); a node removed from the
 * cluster stops here. */
static int server_start_raftd(wr_server_t *srv)
{
    size_t n = strlen(srv->cfg->data_dir) + sizeof("/raft");
    wr_raftd_opts_t o = {.base = srv->base, .links = srv->peers, .cluster = srv->cfg->cluster};
    wr_membership_deps_t md = {srv->base, srv->peers, srv->cfg->cluster, NULL, server_member_stop, srv};
    char *dir = malloc(n);
    int rc;

    if (!dir)
        return WR_ENOMEM;
    snprintf(dir, n, "%s/raft", srv->cfg->data_dir);
    md.raft_dir = o.dir = dir;
    if ((rc = wr_membership_check(dir, srv->cfg->cluster->name)) == WR_OK)
        rc = (srv->membership = wr_membership_new(&md)) ? WR_OK : WR_ENOMEM;
    if (rc == WR_OK) {
        o.watch = wr_membership_watch(srv->membership);
        rc = wr_raftd_open(&o, &srv->raftd);
    }
    free(dir);
    return rc;
}

/* The home side of remote queues: the local vhost of that name. */
static wr_vhost_t *server_vhost(void *ud, const char *name)
{
    wr_server_t *srv = ud;

    return wr_map_get(srv->vhosts, wr_bytes_str(name));
}

static int server_meta_propose(void *ud, const void *data, size_t len, unsigned timeout_ms,
                               wr_rgroup_done_fn done, void *done_ud)
{
    wr_server_t *srv = ud;

    return wr_rgroup_propose(srv->meta_group, data, len, timeout_ms, done, done_ud);
}

static int server_vhost_add(void *ud, const char *name, const json_t *settings);
static int server_vhost_delete(void *ud, const char *name);

/* A user the metadata group deleted: its connections close, as RabbitMQ's. */
static void server_user_deleted(void *ud, const char *name)
{
    wr_server_t *srv = ud;
    wr_list_t *pos, *tmp;
    wr_amqp_error_t err;

    wr_amqp_error_set(&err, WR_AMQP_CONNECTION_FORCED, 0, "user '%s' is deleted", name);
    wr_list_foreach_safe(pos, tmp, &srv->conns)
    {
        wr_conn_t *c = wr_conn_from_link(pos);

        if (wr_conn_user(c) != NULL && strcmp(wr_conn_user(c), name) == 0)
            wr_conn_fail(c, &err);
    }
}

/* The cluster's members, where new quorum queues are placed: the metadata group's voters. */
static size_t server_members(void *ud, const char **out, size_t room)
{
    wr_server_t *srv = ud;
    wr_rgroup_status_t st;
    size_t n = 0;

    wr_rgroup_status(srv->meta_group, &st);
    for (size_t i = 0; i < st.n_members && n < room; i++)
        if (st.voter[i])
            out[n++] = st.members[i];
    return n;
}

/* The metadata group (the nodes not marked "seed": false its first voters): opening it
 * applies what is committed, recreating the definitions; from then on the
 * channel handlers and the management API change definitions through it. */
static int server_open_meta(wr_server_t *srv)
{
    const wr_cluster_config_t *cc = srv->cfg->cluster;
    const wr_meta_deps_t md = {.vhosts = srv->vhosts,
                               .self = cc->node,
                               .propose = server_meta_propose,
                               .ud = srv,
                               .users = &srv->cfg->auth,
                               .policies = srv->policies,
                               .vhost_settings = srv->vhost_settings,
                               .vhost_add = server_vhost_add,
                               .vhost_delete = server_vhost_delete,
                               .user_deleted = server_user_deleted};
    const char **members = calloc(cc->n_nodes, sizeof(*members));
    wr_rgroup_sm_t sm;
    size_t n = 0;

    srv->meta = members != NULL ? wr_meta_new(&md) : NULL;
    if (srv->meta == NULL) {
        free(members);
        return WR_ENOMEM;
    }
    for (size_t i = 0; i < cc->n_nodes; i++) {
        if (!cc->joins[i])
            members[n++] = cc->nodes[i].name;
    }
    wr_meta_set_remote(srv->meta, srv->remote);
    wr_meta_set_quorum(srv->meta, srv->quorum, server_members, srv);
    wr_meta_sm(&sm);
    srv->meta_group = wr_rgroup_open(srv->raftd, WR_RGROUP_META, members, n, 0, &sm, srv->meta);
    free(members);
    wr_membership_set_group(srv->membership, srv->meta_group);
    srv->mgmt_env.membership = srv->membership;
    srv->conn_env.meta = srv->meta;
    srv->vhost_env.queue_deleted = wr_meta_queue_gone;
    srv->vhost_env.queue_deleted_ud = srv->meta;
    srv->mgmt_env.meta = srv->meta;
    srv->mgmt_env.meta_group = srv->meta_group;
    return srv->meta_group != NULL ? WR_OK : WR_EIO;
}

/* Publishes forwarded to other nodes and waiting for a link hold publishers by flow. */
static uint64_t server_links_pending(void *ud)
{
    wr_server_t *srv = ud;

    return wr_remote_pending_bytes(srv->remote) + wr_quorum_pending_bytes(srv->quorum);
}

static void server_links_drained(void *ud)
{
    wr_alarms_storage_progress(((wr_server_t *)ud)->alarms);
}

/* Quorum queues: their groups run on the driver. */
static int server_open_quorum(wr_server_t *srv)
{
    const wr_cluster_config_t *cc = srv->cfg->cluster;
    const wr_quorum_deps_t qd = {srv->base,
                                 srv->raftd,
                                 srv->peers,
                                 cc->node,
                                 server_links_drained,
                                 srv,
                                 srv->cfg->queue_memory_budget};

    srv->quorum = wr_quorum_new(&qd);
    return srv->quorum != NULL ? WR_OK : WR_ENOMEM;
}

/* The peer links of a node with a cluster section (docs/CLUSTERING.md), the
 * node reports, the Raft driver, the metadata group and the remote queues
 * over them. */
static int server_start_peers(wr_server_t *srv)
{
    const wr_peer_handler_t h = {.on_raft = server_on_raft, .ctx = srv};
    wr_reports_deps_t rd = {srv->base,          NULL, server_report_sample, server_remote_alarms, srv,
                            server_report_lists};
    wr_remote_deps_t qd = {srv->base, NULL, srv->cfg->cluster->node, server_vhost, server_links_drained, srv};
    int rc;

    srv->peers = wr_peer_links_new(srv->base, srv->cfg->cluster, &h);
    if (!srv->peers)
        return WR_ENOMEM;
    if (srv->cfg->cluster->tls && server_peer_tls(srv) != WR_OK)
        return WR_EIO;
    rd.links = srv->peers;
    if (!(srv->reports = wr_reports_new(&rd)))
        return WR_ENOMEM;
    qd.links = srv->peers;
    if (!(srv->remote = wr_remote_new(&qd)))
        return WR_ENOMEM;
    wr_alarms_link_backlog(srv->alarms, server_links_pending, srv, WR_REMOTE_FLOW_BYTES);
    srv->mgmt_env.peers = srv->peers;
    srv->mgmt_env.reports = srv->reports;
    if (!(srv->mgmt_env.forward = wr_mgmt_forward_new(&srv->mgmt_env)))
        return WR_ENOMEM;
    if ((rc = server_start_raftd(srv)) != WR_OK || (rc = server_open_quorum(srv)) != WR_OK ||
        (rc = server_open_meta(srv)) != WR_OK)
        return rc;
    return wr_peer_links_start(srv->peers);
}

int wr_server_listen(wr_server_t *srv)
{
    size_t n = srv->cfg->nlisteners + srv->cfg->ntls_listeners;
    int rc = WR_OK;

    /* The HTTP ports first, then the TLS listeners, then the plain ones with
     * the first of them last: once a client can reach listeners[0] (what
     * start-up probes try), every other port answers too. The kernel
     * completes a connection as soon as its port listens, before the loop
     * runs, so a probe could otherwise get through while a later port was
     * still unbound (a TLS test was refused that way under load). */
    if ((rc = wr_mgmt_start(&srv->mgmt_env, &srv->mgmt)) != WR_OK)
        return rc;
    if (srv->cfg->cluster && (rc = server_start_peers(srv)) != WR_OK)
        return rc;
    srv->listeners = calloc(n, sizeof(*srv->listeners));
    if (!srv->listeners && n > 0)
        return WR_ENOMEM;
    for (size_t i = 0; i < srv->cfg->ntls_listeners && rc == WR_OK; i++)
        rc = server_bind(srv, &srv->cfg->tls_listeners[i], true);
    for (size_t i = srv->cfg->nlisteners; i-- > 0 && rc == WR_OK;)
        rc = server_bind(srv, &srv->cfg->listeners[i], false);
    return rc;
}

/*
 * The loop, with epoll's changelist: a connection's write event is added when
 * output is queued and deleted once it drains, so under steady traffic the
 * delete and the next add cancel out within an iteration instead of costing
 * two epoll_ctl calls (a third of the syscalls per delivery without it).
 * Safe here: warren never dup()s a descriptor the loop watches.
 */
static struct event_base *server_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (base != NULL && event_base_priority_init(base, WR_PRIO_LEVELS) != 0) {
        event_base_free(base);
        return NULL;
    }
    return base;
}

static int server_user_conn_add(void *ud, const char *user, int64_t *limit);
static int server_vhost_add(void *ud, const char *name, const json_t *settings);
static int server_vhost_delete(void *ud, const char *name);
static void server_user_conn_remove(void *ud, const char *user);
static int server_vhost_conn_check(void *ud, const char *vhost, int64_t *limit);
static int server_channel_check(void *ud, const char *user, int64_t *limit);
static int server_queue_check(void *ud, const char *vhost, int64_t *limit);

/* The vhosts' hook for a publish to a direct reply-to name. */
static void server_reply_to(void *ud, wr_bytes_t name, wr_message_t *m)
{
    wr_server_t *srv = ud;

    wr_reply_to_deliver(srv->reply_to, name, m);
}

/* The flow alarms' reasons changed: every connection looks at them again. */
static void server_throttle_all(void *ud)
{
    wr_server_t *srv = ud;
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, &srv->conns)
    {
        wr_conn_throttle(wr_conn_from_link(pos));
    }
}

/* The storage thread finished a batch: credit flow may end. */
static void server_storage_progress(void *ud)
{
    wr_server_t *srv = ud;

    if (srv->alarms != NULL)
        wr_alarms_storage_progress(srv->alarms);
}

/* Seeding a new store: the configuration's "policies" (checked when it was
 * loaded). WR_OK, or an error that has been logged. */
static int server_seed(void *ud)
{
    wr_server_t *srv = ud;
    const json_t *obj;
    char err[512];
    size_t i;

    json_array_foreach(srv->cfg->policies, i, obj)
    {
        int rc = wr_policy_put_json(srv->policies, NULL, obj, err, sizeof(err));

        if (rc != WR_OK) {
            wr_log_error("policies[%zu] of the configuration: %s", i, err);
            return rc;
        }
    }
    return WR_OK;
}

/* Opens the store (recovering the definitions: vhosts, users, the durable
 * topology), then starts the flow alarms, which watch the store's directory
 * and backlog. WR_OK or an error that has been logged. */
static int server_open_store(wr_server_t *srv)
{
    wr_durable_deps_t deps = {.cfg = srv->cfg,
                              .base = srv->base,
                              .vhosts = srv->vhosts,
                              .vhost_env = &srv->vhost_env,
                              .progress = server_storage_progress,
                              .users = &srv->cfg->auth,
                              .vhost_add = server_vhost_add,
                              .seed = server_seed,
                              .ud = srv,
                              .defs_elsewhere = srv->cfg->cluster != NULL};

    if (wr_durable_open(&deps, &srv->durable) != WR_OK)
        return WR_EIO;
    srv->mgmt_env.durable = srv->durable;
    srv->alarms = wr_alarms_new(srv->cfg, srv->base, srv->durable, server_throttle_all, srv);
    srv->conn_env.alarms = srv->alarms;
    srv->mgmt_env.alarms = srv->alarms;
    srv->conn_env.durable = srv->durable;
    return srv->alarms ? WR_OK : WR_ENOMEM;
}

wr_server_t *wr_server_new(wr_config_t *cfg, wr_tls_t *tls)
{
    wr_server_t *srv = calloc(1, sizeof(*srv));

    if (!srv) {
        wr_config_free(cfg);
        wr_tls_free(tls);
        wr_log_error("out of memory creating the server");
        return NULL;
    }
    srv->cfg = cfg;
    srv->tls = tls;
    wr_list_init(&srv->conns);
    wr_list_init(&srv->closing);
    srv->base = server_base_new();
    srv->vhosts = wr_map_new();
    srv->vhost_settings = json_object();
    srv->user_conns = wr_map_new();
    srv->policies = wr_policies_new(srv->vhosts);
    srv->reply_to = wr_reply_to_new();
    if (!srv->base || !srv->vhosts || !srv->vhost_settings || !srv->user_conns || !srv->policies ||
        !srv->reply_to)
        goto err;
    srv->vhost_env = (wr_vhost_env_t){
        .base = srv->base,
        .policies = srv->policies,
        .consumer_timeout = cfg->consumer_timeout,
        .reply_to = server_reply_to,
        .reply_to_ud = srv,
    };
    srv->conn_env = (wr_conn_env_t){
        .base = srv->base,
        .cfg = cfg,
        .vhosts = srv->vhosts,
        .reply_to = srv->reply_to,
        .counters = &srv->counters,
        .user_add = server_user_conn_add,
        .user_remove = server_user_conn_remove,
        .vhost_conn_check = server_vhost_conn_check,
        .channel_check = server_channel_check,
        .queue_check = server_queue_check,
        .done = server_conn_done,
        .ud = srv,
    };
    srv->mgmt_env = (wr_mgmt_env_t){
        .base = srv->base,
        .cfg = cfg,
        .vhosts = srv->vhosts,
        .conns = &srv->conns,
        .policies = srv->policies,
        .counters = &srv->counters,
        .vhost_settings = srv->vhost_settings,
        .tls = cfg->management_tls ? tls : NULL,
        .vhost_add = server_vhost_add,
        .vhost_delete = server_vhost_delete,
        .ud = srv,
    };
    clock_gettime(CLOCK_MONOTONIC, &srv->mgmt_env.started);
    srv->reaper = event_new(srv->base, -1, 0, on_reap, srv);
    srv->stop_deadline = evtimer_new(srv->base, on_stop_deadline, srv);
    srv->accept_retry = evtimer_new(srv->base, on_accept_retry, srv);
    if (!srv->reaper || !srv->stop_deadline || !srv->accept_retry || server_watch_signals(srv) != WR_OK)
        goto err;
    if (server_open_store(srv) != WR_OK) {
        wr_server_free(srv);
        return NULL;
    }
    return srv;
err:
    wr_log_error("out of memory creating the server");
    wr_server_free(srv);
    return NULL;
}

int wr_server_run(wr_server_t *srv)
{
    if (event_base_dispatch(srv->base) < 0) {
        wr_log_error("event loop failed");
        return WR_EIO;
    }
    return srv->exit_rc;
}

void wr_server_free(wr_server_t *srv)
{
    wr_map_iter_t it = {0};
    wr_bytes_t name;
    void *vh;

    if (!srv)
        return;
    wr_mgmt_forward_free(srv->mgmt_env.forward); /* before the HTTP server: it stops watching its requests */
    wr_mgmt_free(srv->mgmt);
    wr_reports_free(srv->reports);
    /* Before the links it sends on: its proxies then forget it, and the
     * connections freed below find their consumers already cancelled. */
    wr_remote_free(srv->remote);
    /* Queues the closing connections auto-delete propose nothing to a closed group. */
    srv->vhost_env.queue_deleted = NULL;
    wr_quorum_free(srv->quorum); /* before the driver: its queues forget their groups */
    wr_raftd_close(srv->raftd);  /* before the links it sends on */
    wr_membership_free(srv->membership);
    wr_peer_links_free(srv->peers);
    wr_tls_free(srv->peer_tls);
    server_close_listeners(srv);
    /* Connections before vhosts: closing one drops its exclusive queues. */
    free_conn_list(&srv->closing);
    free_conn_list(&srv->conns);
    free_retired(srv, true);
    free(srv->retired);
    wr_meta_free(srv->meta); /* after the connections: a parked one cancels its wait */
    wr_alarms_free(srv->alarms);
    wr_durable_close(srv->durable);
    if (srv->vhosts) {
        while (wr_map_next(srv->vhosts, &it, &name, &vh))
            wr_vhost_free(vh);
        wr_map_free(srv->vhosts);
    }
    json_decref(srv->vhost_settings);
    wr_policies_free(srv->policies);
    wr_reply_to_free(srv->reply_to); /* after the connections: their channels cancel */
    if (srv->reaper)
        event_free(srv->reaper);
    for (size_t i = 0; i < NSIGNALS; i++) {
        if (srv->signals[i])
            event_free(srv->signals[i]);
    }
    if (srv->stop_deadline)
        event_free(srv->stop_deadline);
    if (srv->accept_retry)
        event_free(srv->accept_retry);
    if (srv->base)
        event_base_free(srv->base);
    wr_map_free(srv->user_conns);
    wr_tls_free(srv->tls);
    wr_config_free(srv->cfg);
    free(srv);
}

/* A user's own limit ("limits": {"max-connections": N}) wins over
 * limits.max_connections_per_user; -1 is no limit. */
static int server_user_conn_add(void *ud, const char *user, int64_t *limit)
{
    wr_server_t *srv = ud;
    const wr_user_cfg_t *u = wr_users_find(&srv->cfg->auth, user, strlen(user));
    uintptr_t n = (uintptr_t)wr_map_get(srv->user_conns, wr_bytes_str(user));

    *limit = u && u->has_max_connections ? u->max_connections : srv->cfg->max_connections_per_user;
    if (*limit >= 0 && (int64_t)n + wr_mgmt_cluster_usage(&srv->mgmt_env, "user_connections", user) >= *limit)
        return WR_ETOOBIG;
    if (n > 0)
        wr_map_del(srv->user_conns, wr_bytes_str(user));
    return wr_map_put(srv->user_conns, wr_bytes_str(user), (void *)(n + 1));
}

static void server_user_conn_remove(void *ud, const char *user)
{
    wr_server_t *srv = ud;
    uintptr_t n = (uintptr_t)wr_map_del(srv->user_conns, wr_bytes_str(user));

    if (n > 1)
        wr_map_put(srv->user_conns, wr_bytes_str(user), (void *)(n - 1));
}

/* What the open connections use, here and (as last reported) on the other nodes (wr_mgmt_conns_usage). */
static int64_t server_usage(wr_server_t *srv, const char *section, const char *name)
{
    json_t *u = wr_mgmt_conns_usage(&srv->mgmt_env);
    int64_t n = json_integer_value(json_object_get(json_object_get(u, section), name));

    json_decref(u);
    return n + wr_mgmt_cluster_usage(&srv->mgmt_env, section, name);
}

/* A vhost limit ("max-connections", "max-queues" in its settings); -1: none. */
static int64_t server_vhost_limit(const wr_server_t *srv, const char *vhost, const char *name)
{
    const json_t *v =
        json_object_get(json_object_get(json_object_get(srv->vhost_settings, vhost), "limits"), name);

    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* The vhost's connections in the whole cluster, as RabbitMQ counts them. */
static int server_vhost_conn_check(void *ud, const char *vhost, int64_t *limit)
{
    wr_server_t *srv = ud;

    *limit = server_vhost_limit(srv, vhost, "max-connections");
    return *limit >= 0 && server_usage(srv, "vhost_connections", vhost) >= *limit ? WR_ETOOBIG : WR_OK;
}

/* The channels of the user's connections in the whole cluster. */
static int server_channel_check(void *ud, const char *user, int64_t *limit)
{
    wr_server_t *srv = ud;
    const wr_user_cfg_t *u = wr_users_find(&srv->cfg->auth, user, strlen(user));

    *limit = u && u->has_max_channels ? u->max_channels : -1;
    return *limit >= 0 && server_usage(srv, "user_channels", user) >= *limit ? WR_ETOOBIG : WR_OK;
}

/* The vhost's queues: the cluster's (replicated) and this node's exclusive ones, or all of one node's. */
static int server_queue_check(void *ud, const char *vhost, int64_t *limit)
{
    wr_server_t *srv = ud;
    const wr_vhost_t *vh = wr_map_get(srv->vhosts, wr_bytes_str(vhost));
    wr_map_iter_t it = {0};
    int64_t n = srv->meta ? (int64_t)wr_meta_queue_count(srv->meta, vhost) : 0;
    void *q;

    *limit = server_vhost_limit(srv, vhost, "max-queues");
    if (*limit < 0 || !vh)
        return WR_OK;
    while (wr_map_next(wr_vhost_queues(vh), &it, NULL, &q))
        n += !srv->meta || wr_queue_opts(q)->exclusive;
    return n >= *limit ? WR_ETOOBIG : WR_OK;
}

/* Keeps a vhost's settings (a copy; NULL: the defaults) and records them. */
static int server_vhost_settle(wr_server_t *srv, const char *name, const json_t *settings)
{
    json_t *copy = settings ? json_deep_copy(settings)
                            : json_pack("{s:s,s:[],s:b}", "description", "", "tags", "tracing", 0);

    if (!copy || json_object_set_new(srv->vhost_settings, name, copy) != 0)
        return WR_ENOMEM;
    wr_durable_vhost_declared(srv->durable, name, copy);
    return WR_OK;
}

/* Creates vhost `name`, or (WR_EEXIST) only changes its settings when given. */
static int server_vhost_add(void *ud, const char *name, const json_t *settings)
{
    wr_server_t *srv = ud;
    wr_vhost_t *vh;
    int rc;

    if (wr_map_get(srv->vhosts, wr_bytes_str(name))) {
        rc = settings ? server_vhost_settle(srv, name, settings) : WR_OK;
        return rc == WR_OK ? WR_EEXIST : rc;
    }
    vh = wr_vhost_new(&srv->vhost_env, name);
    if (!vh)
        return WR_ENOMEM;
    rc = wr_map_put(srv->vhosts, wr_bytes_str(wr_vhost_name(vh)), vh);
    if (rc == WR_OK)
        rc = server_vhost_settle(srv, name, settings);
    if (rc != WR_OK) {
        wr_map_del(srv->vhosts, wr_bytes_str(name));
        wr_vhost_free(vh);
    }
    return rc;
}

/* Closes the connections to a vhost being deleted, as RabbitMQ does. */
static void close_vhost_conns(wr_server_t *srv, const wr_vhost_t *vh)
{
    wr_list_t *pos, *tmp;
    wr_amqp_error_t err;

    wr_amqp_error_set(&err, WR_AMQP_CONNECTION_FORCED, 0, "vhost '%s' is deleted", wr_vhost_name(vh));
    wr_list_foreach_safe(pos, tmp, &srv->conns)
    {
        wr_conn_t *c = wr_conn_from_link(pos);

        if (wr_conn_vhost(c) == vh)
            wr_conn_fail(c, &err);
    }
}

/* Deletes the queues of a vhost being deleted (their logs go once the
 * deletes are durable), its policies and the permissions in it. */
static int empty_vhost(wr_server_t *srv, wr_vhost_t *vh)
{
    const char *name = wr_vhost_name(vh);
    size_t n = wr_map_count(wr_vhost_queues(vh)), i = 0;
    wr_queue_t **queues = calloc(n ? n : 1, sizeof(*queues));
    json_t *policies = wr_durable_defs_policies(vh), *p;
    wr_map_iter_t it = {0};
    const wr_permission_cfg_t *perm;
    void *q;

    if (!queues || !policies) {
        free(queues);
        json_decref(policies);
        return WR_ENOMEM;
    }
    while (wr_map_next(wr_vhost_queues(vh), &it, NULL, &q))
        queues[i++] = q;
    for (i = 0; i < n; i++)
        wr_vhost_queue_delete(vh, queues[i]);
    free(queues);
    json_array_foreach(policies, i, p)
        wr_policy_delete(srv->policies, name, json_string_value(json_object_get(p, "name")));
    json_decref(policies);
    for (i = 0; (perm = wr_users_permission_next(&srv->cfg->auth, &i));) {
        if (strcmp(perm->vhost, name) == 0)
            wr_users_delete_permission(&srv->cfg->auth, perm->user, name);
    }
    return WR_OK;
}

/* Deletes vhost `name` with all it holds, as RabbitMQ's DELETE
 * /api/vhosts/NAME. WR_OK, WR_ENOENT, WR_ENOMEM. */
static int server_vhost_delete(void *ud, const char *name)
{
    wr_server_t *srv = ud;
    wr_vhost_t *vh = wr_map_get(srv->vhosts, wr_bytes_str(name));
    wr_vhost_t **grown;

    if (!vh)
        return WR_ENOENT;
    grown = realloc(srv->retired, (srv->nretired + 1) * sizeof(*grown));
    if (!grown)
        return WR_ENOMEM;
    srv->retired = grown;
    close_vhost_conns(srv, vh);
    if (empty_vhost(srv, vh) != WR_OK)
        return WR_ENOMEM;
    wr_durable_vhost_deleted(srv->durable, wr_vhost_name(vh));
    json_object_del(srv->vhost_settings, wr_vhost_name(vh));
    wr_map_del(srv->vhosts, wr_bytes_str(wr_vhost_name(vh)));
    srv->retired[srv->nretired++] = vh;
    wr_log_info("vhost '%s' deleted", wr_vhost_name(vh));
    event_active(srv->reaper, 0, 0);
    return WR_OK;
}

const wr_mgmt_env_t *wr_server_mgmt_env(const wr_server_t *srv)
{
    return &srv->mgmt_env;
}
