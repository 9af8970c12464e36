/* SPDX-License-Identifier: MIT */
/*
 * The peer links (docs/CLUSTERING.md): one authenticated TCP link per pair of
 * nodes, dialled at the address this node's file lists for the peer, with a
 * challenge-response handshake on the shared secret, heartbeats and failure
 * detection, reconnection with back-off and a bounded output per link. The
 * Raft driver sends and receives (group, message) pairs through it.
 */
#ifndef WR_BROKER_CLUSTER_LINK_H
#define WR_BROKER_CLUSTER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/cluster/cluster_config.h"
#include "cluster/raft.h"
#include "core/bytes.h"

struct bufferevent;
struct event_base;
struct evdns_base;
typedef struct wr_peer_links_s wr_peer_links_t;

/* A heartbeat leaves every interval; a peer silent for WR_PEER_MISSED_BEATS of them is down. */
#define WR_PEER_HEARTBEAT_MS   500
#define WR_PEER_MISSED_BEATS   4
#define WR_PEER_HANDSHAKE_MS   5000 /* a link not authenticated by then is closed */
#define WR_PEER_BACKOFF_MIN_MS 100
#define WR_PEER_BACKOFF_MAX_MS 5000
/* Output per link: wr_peer_send refuses at the high mark, on_writable fires at the low one. */
#define WR_PEER_HIGH_WATERMARK (4u << 20)
#define WR_PEER_LOW_WATERMARK  (1u << 20)
/* The largest frame an authenticated peer may send (a batch of the largest messages). */
#define WR_PEER_MAX_PAYLOAD (576u << 20)

/*
 * What the links report, on the loop thread; any may be NULL. None may free
 * the links. Node names are those of the configuration.
 */
typedef struct {
    void (*on_up)(void *ctx, const char *node);
    void (*on_down)(void *ctx, const char *node);
    /* m and its entries are valid during the call only. */
    void (*on_raft)(void *ctx, const char *node, uint64_t group, const wr_raft_msg_t *m);
    /* node's output drained to the low mark after wr_peer_send said WR_AGAIN. */
    void (*on_writable)(void *ctx, const char *node);
    void *ctx;
} wr_peer_handler_t;

/*
 * Application messages (WR_PEER_APP frames): each module that talks to its
 * counterparts on other nodes owns a range of kinds and decodes its bodies.
 * A kind nobody routes closes the link as a protocol error.
 */
enum {
    WR_PEER_APP_RAFT_FIRST = 1, /* the Raft driver (proposals forwarded to a leader) */
    WR_PEER_APP_RAFT_LAST = 15,
    WR_PEER_APP_QUEUE_FIRST = 16, /* queues used from a node that is not their home */
    WR_PEER_APP_QUEUE_LAST = 63,
    WR_PEER_APP_NODE_FIRST = 64, /* node reports (reports.h) */
    WR_PEER_APP_NODE_LAST = 71,
    WR_PEER_APP_MEMBER_FIRST = 72, /* membership: join requests, removal notices (membership.h) */
    WR_PEER_APP_MEMBER_LAST = 79,
    /* A JOIN (membership.h): what a node that is not a member may send first. */
    WR_PEER_APP_JOIN = WR_PEER_APP_MEMBER_FIRST,
};

/* A received application message; body is valid during the call only. */
typedef void (*wr_peer_app_fn)(void *ud, const char *node, uint8_t kind, uint64_t group, wr_bytes_t body);

/* Someone else who wants to know when peers come and go; any may be NULL. */
typedef struct {
    void (*on_up)(void *ud, const char *node);
    void (*on_down)(void *ud, const char *node);
    void (*on_writable)(void *ud, const char *node);
    void *ud;
} wr_peer_watch_t;

/* At most this many watchers (wr_peer_links_watch) per node. */
#define WR_PEER_MAX_WATCHERS 4

/*
 * How links are carried when not plain TCP (TLS, made by the server from the
 * "tls" keys: the cluster layer knows no OpenSSL). accept wraps an accepted
 * socket (owning fd from then on), dial makes a bufferevent not yet
 * connected (wr_peer_links then connects it); both NULL on failure, with
 * accept leaving fd open. error describes a failed link's cause, if known.
 */
typedef struct {
    struct bufferevent *(*accept)(void *ud, struct event_base *base, int fd);
    struct bufferevent *(*dial)(void *ud, struct event_base *base);
    bool (*error)(struct bufferevent *bev, char *out, size_t n);
    const char *name; /* for the log: "TLS" */
    void *ud;
} wr_peer_transport_t;

/* Carries every link over t (copied). Before wr_peer_links_start. */
void wr_peer_links_transport(wr_peer_links_t *l, const wr_peer_transport_t *t);

/* One peer as the management API shows it. Strings live as long as the links. */
typedef struct {
    const char *name;
    bool up;
    bool outgoing;      /* up: whether this node dialled the link */
    char peer_addr[64]; /* up: the remote end of the link */
    uint16_t peer_port;
    char sock_addr[64]; /* up: this node's end */
    uint16_t sock_port;
    uint64_t send_bytes; /* on the current link */
    uint64_t recv_bytes;
} wr_peer_status_t;

/*
 * Creates the links of cfg's node to every other node in cfg (kept, not
 * copied: it must outlive the links; the names of nodes it does not list
 * that are admitted are learnt into it, wr_cluster_config_learn). h is
 * copied. NULL on allocation failure.
 */
wr_peer_links_t *wr_peer_links_new(struct event_base *base, wr_cluster_config_t *cfg,
                                   const wr_peer_handler_t *h);

/* Whether node is a member of the metadata group's committed configuration. */
typedef bool (*wr_peer_member_fn)(void *ud, const char *node);
/*
 * Lets nodes that cfg does not list link in (before wr_peer_links_start):
 * an authenticated link from one is up when member says it is a member, or
 * once its first application message is a WR_PEER_APP_JOIN; until then it
 * is pending (heartbeats kept, other application messages dropped, a Raft
 * message refused). Such a node is never dialled. The same holds for a
 * learnt node that links in again. Without this, such links are refused.
 */
void wr_peer_links_members(wr_peer_links_t *l, wr_peer_member_fn member, void *ud);
/* Listens on cfg's listen address and starts dialling. WR_OK or WR_EIO (logged). */
int wr_peer_links_start(wr_peer_links_t *l);
/*
 * Looks peers' host names up with dns, which stays the caller's (without
 * this the links make their own from /etc/resolv.conf at the first name).
 * Before wr_peer_links_start.
 */
void wr_peer_links_resolver(wr_peer_links_t *l, struct evdns_base *dns);
/*
 * Begins the shutdown: no more dials or retries, and every host-name lookup
 * in flight is cancelled. done(ud) runs from the loop once none is left (at
 * its next pass when none was): a cancelled lookup gives its memory back in
 * a callback of a later pass, so the owner ends the loop only after done.
 * Links that are up stay up until wr_peer_links_free.
 */
void wr_peer_links_stop(wr_peer_links_t *l, void (*done)(void *ud), void *ud);
/* Closes every link and frees l. NULL is a no-op. Not from inside a handler. */
void wr_peer_links_free(wr_peer_links_t *l);

/*
 * Queues m (and its entries, copied) for group to node. WR_OK; WR_ENOENT when
 * node is unknown or its link is down (Raft resends); WR_AGAIN when the
 * link's output is above the high mark: h.on_writable fires once it drains
 * (nothing was queued); WR_ENOMEM.
 */
int wr_peer_send(wr_peer_links_t *l, const char *node, uint64_t group, const wr_raft_msg_t *m);

/*
 * Routes received APP messages of kinds [first, last] to fn. Before
 * wr_peer_links_start. WR_OK; WR_EEXIST when a kind in the range is routed
 * already; WR_ESYNTAX when first is 0 or first > last.
 */
int wr_peer_links_route(wr_peer_links_t *l, uint8_t first, uint8_t last, wr_peer_app_fn fn, void *ud);
/* Adds a watcher (copied). Before wr_peer_links_start. WR_OK, or WR_ETOOBIG past WR_PEER_MAX_WATCHERS. */
int wr_peer_links_watch(wr_peer_links_t *l, const wr_peer_watch_t *w);

/*
 * Queues an APP message of kind for group to node: the concatenation of
 * parts[0..n) is its body. Same results and backpressure as wr_peer_send
 * (WR_AGAIN above the high mark, then on_writable of the handler and of
 * every watcher once it drains).
 */
int wr_peer_send_app(wr_peer_links_t *l, const char *node, uint8_t kind, uint64_t group,
                     const wr_bytes_t *parts, size_t n);
/*
 * Closes the link to node, if up, because its peer broke the protocol of an
 * APP kind (a malformed body): logged with why, then as any failed link
 * (on_down, reconnection). Callable from inside an APP route.
 */
void wr_peer_links_drop(wr_peer_links_t *l, const char *node, const char *why);
/* Whether node is a peer whose link is up now. */
bool wr_peer_up(const wr_peer_links_t *l, const char *node);

/* The number of other nodes, and the status of the i-th (0 <= i < count). */
size_t wr_peer_count(const wr_peer_links_t *l);
void wr_peer_status(const wr_peer_links_t *l, size_t i, wr_peer_status_t *st);

#endif
