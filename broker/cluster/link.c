/* SPDX-License-Identifier: MIT */
/*
 * The peer links (link.h). Each side of a new TCP connection sends a HELLO,
 * checks the other's (cluster name, a known node name), sends its proof
 * (HMAC-SHA256 over both nonces and names, cluster/peer.h) and is up once
 * the other's proof verifies. A peer is known by the name it proves, never
 * by its address. When both nodes dial at once, the lower name's outgoing
 * link wins on both sides. A node the file does not list links in only as a
 * member of the metadata group's committed configuration, or to send a JOIN
 * (a pending link until then); its name is learnt, it is never dialled.
 * Links are freed by the reaper event, never inside their own callbacks.
 */
#include "broker/cluster/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "broker/base/log.h"
#include "cluster/peer.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/status.h"

/* Frames handled per read callback before the rest is rescheduled. */
#define FRAMES_PER_READ 64
#define HANDSHAKE_TICKS (WR_PEER_HANDSHAKE_MS / WR_PEER_HEARTBEAT_MS)
/* At most one refusal logged per this many ms; the line counts the others. */
#define REFUSAL_LOG_MS 100

/* CONN_PENDING: authenticated, from a node that is not a member, until it sends a JOIN or becomes one. */
typedef enum { CONN_HELLO, CONN_PROOF, CONN_PENDING, CONN_UP, CONN_CLOSING } conn_state_t;

typedef struct peer_s peer_t;

typedef struct {
    wr_list_t link; /* on l->conns, or l->closing */
    wr_peer_links_t *l;
    struct bufferevent *bev;
    peer_t *peer;      /* the dialled peer, or the one an accepted link's HELLO named */
    char claimed[256]; /* peer NULL: the name an accepted link's HELLO claims, not (yet) known */
    bool outgoing;
    conn_state_t state;
    bool flushing; /* closing: a REFUSE is being written */
    /* The host-name lookup in flight; it must end (its callback, on a later
     * pass of the loop when cancelled) before c can be freed. */
    struct evdns_getaddrinfo_request *lookup;
    bool resolving;
    unsigned idle_ticks;
    uint8_t nonce[WR_PEER_NONCE_SIZE], peer_nonce[WR_PEER_NONCE_SIZE];
    char addr[300]; /* the remote end, for logs */
    uint64_t sent, recv;
} conn_t;

struct peer_s {
    wr_peer_links_t *l;
    const wr_cluster_node_t *node; /* address NULL: a learnt node, never dialled */
    conn_t *active;                /* the link in use; NULL while down */
    conn_t *dialing;               /* an outgoing link in its handshake */
    struct event *retry;
    unsigned backoff_ms;
    bool want_writable;
    bool unreachable_logged; /* since it went down */
};

typedef struct {
    wr_peer_app_fn fn;
    void *ud;
} route_t;

struct wr_peer_links_s {
    struct event_base *base;
    wr_cluster_config_t *cfg; /* learns the names of admitted nodes it does not list */
    wr_peer_member_fn member; /* NULL: only the nodes the file lists link in */
    void *member_ud;
    wr_peer_handler_t h;
    wr_peer_watch_t watch[WR_PEER_MAX_WATCHERS];
    size_t n_watch;
    route_t routes[256]; /* by APP kind */
    wr_peer_transport_t transport;
    bool has_transport;     /* else plain TCP */
    struct evdns_base *dns; /* resolves peers' host names; made at the first one */
    bool own_dns;           /* dns is ours to free */
    bool stopping;          /* no more dials; stop_done once no lookup is left */
    void (*stop_done)(void *ud);
    void *stop_ud;
    peer_t *peers; /* room for every node cfg may hold */
    size_t n_peers;
    struct evconnlistener *listener;
    wr_list_t conns, closing;
    struct event *tick, *reaper;
    wr_buf_t out;               /* encode scratch */
    wr_log_limit_t refusal_log; /* a flood of strangers cannot flood the log */
    uint64_t rng;               /* back-off jitter */
};

static void conn_close(conn_t *c, const char *why);

static const char *self_name(const wr_peer_links_t *l)
{
    return l->cfg->node;
}

static int hmac_sha256(void *ctx, const uint8_t *msg, size_t len, uint8_t out[WR_PEER_MAC_SIZE])
{
    const wr_cluster_config_t *cfg = ctx;
    unsigned n = 0;

    if (!HMAC(EVP_sha256(), cfg->secret, (int)cfg->secret_len, msg, len, out, &n) || n != WR_PEER_MAC_SIZE)
        return WR_EIO;
    return WR_OK;
}

static peer_t *peer_by_name(const wr_peer_links_t *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->n_peers; i++) {
        if (strlen(l->peers[i].node->name) == len && memcmp(l->peers[i].node->name, name, len) == 0)
            return &l->peers[i];
    }
    return NULL;
}

static const char *conn_name(const conn_t *c)
{
    return c->peer ? c->peer->node->name : c->claimed;
}

/* Whether c's peer may link in without a JOIN: the file gives its address, or it is a member. */
static bool conn_member(const conn_t *c)
{
    if (c->peer && c->peer->node->address)
        return true;
    return c->l->member && c->l->member(c->l->member_ud, conn_name(c));
}

/* Writes the frame(s) in l->out to c; false on out-of-memory. */
static bool conn_write(conn_t *c)
{
    bool ok = wr_buf_ok(&c->l->out) && bufferevent_write(c->bev, c->l->out.data, c->l->out.len) == 0;

    c->sent += ok ? c->l->out.len : 0;
    wr_buf_reset(&c->l->out);
    return ok;
}

static void conn_send_hello(conn_t *c)
{
    const wr_cluster_config_t *cfg = c->l->cfg;
    wr_peer_hello_t h = {WR_PEER_VERSION, wr_bytes_str(cfg->name), wr_bytes_str(cfg->node), {0}};

    memcpy(h.nonce, c->nonce, sizeof(h.nonce));
    if (!wr_peer_hello_put(&c->l->out, &h) || !conn_write(c))
        conn_close(c, "out of memory");
}

/* What both ends of c hash: the dialer's and the acceptor's names and nonces. */
static wr_peer_auth_t conn_auth(const conn_t *c)
{
    wr_bytes_t self = wr_bytes_str(self_name(c->l)), peer = wr_bytes_str(conn_name(c));

    return (wr_peer_auth_t){wr_bytes_str(c->l->cfg->name), c->outgoing ? self : peer,
                            c->outgoing ? peer : self, c->outgoing ? c->nonce : c->peer_nonce,
                            c->outgoing ? c->peer_nonce : c->nonce};
}

/* Refuses c's peer: logs why, tells the peer and closes once that is written. */
static void conn_refuse(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conn_refuse(conn_t *c, const char *fmt, ...)
{
    char why[400], more[64] = "";
    unsigned long suppressed;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (wr_log_limit_pass(&c->l->refusal_log, REFUSAL_LOG_MS, &suppressed)) {
        if (suppressed > 0)
            snprintf(more, sizeof(more), " (%lu more refusals not logged)", suppressed);
        wr_log_warn("cluster: refused the %s link %s %s%s%s: %s%s", c->outgoing ? "outgoing" : "incoming",
                    c->outgoing ? "to" : "from", c->addr, *conn_name(c) ? " claiming to be " : "",
                    conn_name(c), why, more);
    }
    if (wr_peer_refuse_put(&c->l->out, why))
        conn_write(c);
    conn_close(c, NULL);
}

/*
 * An accepted link's HELLO names a node the file does not list: kept as
 * claimed, for a member or a joiner, unless its Raft member id is a known
 * node's. False once refused.
 */
static bool conn_claim(conn_t *c, wr_bytes_t name)
{
    const wr_cluster_config_t *cfg = c->l->cfg;
    uint32_t id;

    if (c->outgoing || !c->l->member || name.len == 0 || name.len >= sizeof(c->claimed)) {
        conn_refuse(c, "unknown node name '%.*s'", (int)name.len, (const char *)name.data);
        return false;
    }
    memcpy(c->claimed, name.data, name.len);
    c->claimed[name.len] = '\0';
    id = wr_cluster_node_id(c->claimed);
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        if (wr_cluster_node_id(cfg->nodes[i].name) == id) {
            conn_refuse(c, "node name '%s' has the same Raft member id as '%s': rename one", c->claimed,
                        cfg->nodes[i].name);
            return false;
        }
    }
    return true;
}

/* The peer's HELLO: same cluster, a known other node (or one that may join), the one dialled. */
static void on_hello(conn_t *c, wr_bytes_t payload)
{
    const wr_cluster_config_t *cfg = c->l->cfg;
    uint8_t proof[WR_PEER_MAC_SIZE];
    wr_peer_hello_t h;
    wr_peer_auth_t a;
    peer_t *p;

    if (wr_peer_hello_decode(payload, &h) != WR_OK) {
        conn_refuse(c, "malformed HELLO");
        return;
    }
    if (h.version != WR_PEER_VERSION) {
        conn_refuse(c, "protocol version %u, expected %u", h.version, WR_PEER_VERSION);
        return;
    }
    if (!wr_bytes_eq_str(h.cluster, cfg->name)) {
        conn_refuse(c, "wrong cluster name '%.*s' (this is '%s')", (int)h.cluster.len,
                    (const char *)h.cluster.data, cfg->name);
        return;
    }
    if (wr_bytes_eq_str(h.node, cfg->node)) {
        conn_refuse(c, "the peer claims this node's own name '%s'", cfg->node);
        return;
    }
    p = peer_by_name(c->l, (const char *)h.node.data, h.node.len);
    if (!p && !conn_claim(c, h.node))
        return;
    if (c->peer && c->peer != p) {
        conn_refuse(c, "the peer says it is '%.*s', not '%s'", (int)h.node.len, (const char *)h.node.data,
                    c->peer->node->name);
        return;
    }
    c->peer = p;
    memcpy(c->peer_nonce, h.nonce, sizeof(c->peer_nonce));
    a = conn_auth(c);
    if (wr_peer_proof(&a, c->outgoing ? WR_PEER_DIALER : WR_PEER_ACCEPTOR, hmac_sha256, (void *)cfg, proof) !=
            WR_OK ||
        !wr_peer_frame_put(&c->l->out, WR_PEER_PROOF, 0, proof, sizeof(proof)) || !conn_write(c)) {
        conn_close(c, "cannot compute the proof");
        return;
    }
    c->state = CONN_PROOF;
}

/* Whether c is the link the pair keeps when both exist: the lower name's outgoing one. */
static bool conn_preferred(const conn_t *c)
{
    return (strcmp(self_name(c->l), c->peer->node->name) < 0) == c->outgoing;
}

static void peer_up(peer_t *p, conn_t *c)
{
    const wr_peer_handler_t *h = &p->l->h;

    p->active = c;
    p->backoff_ms = WR_PEER_BACKOFF_MIN_MS;
    p->unreachable_logged = false;
    if (p->retry)
        event_del(p->retry);
    wr_log_info("cluster: peer %s up (%s link %s %s)", p->node->name, c->outgoing ? "outgoing" : "incoming",
                c->outgoing ? "to" : "from", c->addr);
    if (h->on_up)
        h->on_up(h->ctx, p->node->name);
    for (size_t i = 0; i < p->l->n_watch; i++)
        if (p->l->watch[i].on_up)
            p->l->watch[i].on_up(p->l->watch[i].ud, p->node->name);
}

/* The handshake succeeded on c: it becomes the peer's link unless a preferred one exists. */
static void conn_established(conn_t *c)
{
    peer_t *p = c->peer;
    conn_t *old = p->active;

    c->state = CONN_UP;
    if (p->dialing == c)
        p->dialing = NULL;
    bufferevent_setwatermark(c->bev, EV_WRITE, WR_PEER_LOW_WATERMARK, 0);
    if (!old) {
        peer_up(p, c);
        return;
    }
    /* A learnt node's links are all its own dials: the newest one is its current one. */
    if (p->node->address && (!conn_preferred(c) || conn_preferred(old))) {
        wr_log_debug("cluster: peer %s: keeping the link %s, closing %s", p->node->name, old->addr, c->addr);
        {
            conn_close(c, NULL);
            return;
        }
    }
    wr_log_info("cluster: peer %s: the %s link %s %s replaces the simultaneous one", p->node->name,
                c->outgoing ? "outgoing" : "incoming", c->outgoing ? "to" : "from", c->addr);
    p->active = c;
    conn_close(old, NULL);
}

/* The peer entry of a learnt node: found, or made (never dialled: no retry timer). */
static peer_t *peer_learnt(wr_peer_links_t *l, const wr_cluster_node_t *node)
{
    peer_t *p = peer_by_name(l, node->name, strlen(node->name));

    if (!p) {
        p = &l->peers[l->n_peers++];
        *p = (peer_t){.l = l, .node = node, .backoff_ms = WR_PEER_BACKOFF_MIN_MS};
    }
    return p;
}

/* An authenticated link from a member or a joiner: its name learnt if new, then it is up. */
static void conn_admit(conn_t *c)
{
    size_t slot;
    int rc = c->peer ? WR_OK : wr_cluster_config_learn(c->l->cfg, c->claimed, &slot);

    if (rc == WR_EEXIST) {
        conn_refuse(c, "node name '%s' has the same Raft member id as '%s': rename one", c->claimed,
                    c->l->cfg->nodes[slot].name);
        return;
    }
    if (rc != WR_OK) {
        conn_refuse(c,
                    rc == WR_ETOOBIG
                        ? "no room for another node that cluster.nodes does not list (at most %d)"
                        : "out of memory (%d)",
                    rc == WR_ETOOBIG ? WR_CLUSTER_MAX_LEARNED : rc);
        return;
    }
    if (!c->peer) {
        c->peer = peer_learnt(c->l, &c->l->cfg->nodes[slot]);
        wr_log_info("cluster: node %s, which cluster.nodes does not list, links in as a %s", c->claimed,
                    conn_member(c) ? "member" : "joiner");
    }
    conn_established(c);
}

static void on_proof(conn_t *c, wr_bytes_t payload)
{
    wr_peer_auth_t a = conn_auth(c);
    int rc = wr_peer_proof_check(&a, c->outgoing ? WR_PEER_ACCEPTOR : WR_PEER_DIALER, hmac_sha256,
                                 (void *)c->l->cfg, payload);

    if (rc == WR_ENOENT) {
        conn_refuse(c, "wrong secret (the peer's proof did not verify)");
        return;
    }
    if (rc != WR_OK) {
        conn_refuse(c, "malformed PROOF");
        return;
    }
    if (conn_member(c))
        conn_admit(c);
    else
        c->state = CONN_PENDING;
}

static void on_refused(conn_t *c, wr_bytes_t payload)
{
    wr_bytes_t why = {NULL, 0};

    wr_peer_refuse_decode(payload, &why);
    wr_log_warn("cluster: the %s link %s %s was refused by the peer: %.*s",
                c->outgoing ? "outgoing" : "incoming", c->outgoing ? "to" : "from", c->addr, (int)why.len,
                why.data ? (const char *)why.data : "");
    conn_close(c, NULL);
}

static void on_raft(conn_t *c, const wr_peer_frame_t *f)
{
    const wr_peer_handler_t *h = &c->l->h;
    wr_raft_entry_t *ents;
    wr_raft_msg_t m;
    int rc = wr_peer_raft_decode(f->payload, &m, &ents);

    if (rc != WR_OK) {
        wr_log_warn("cluster: peer %s sent a malformed Raft message (%d); closing the link",
                    c->peer->node->name, rc);
        conn_close(c, "malformed Raft message");
        return;
    }
    if (h->on_raft)
        h->on_raft(h->ctx, c->peer->node->name, f->group, &m);
    free(ents);
}

static void on_app(conn_t *c, const wr_peer_frame_t *f)
{
    const route_t *r;
    uint8_t kind;
    wr_bytes_t body;

    if (wr_peer_app_decode(f->payload, &kind, &body) != WR_OK) {
        conn_refuse(c, "empty application message");
        return;
    }
    r = &c->l->routes[kind];
    if (!r->fn) {
        conn_refuse(c, "unknown application message kind %u", kind);
        return;
    }
    r->fn(r->ud, c->peer->node->name, kind, f->group, body);
}

static void conn_frame(conn_t *c, const wr_peer_frame_t *f);

/*
 * A frame on a pending link: a JOIN, or anything once the node is a member,
 * admits it; other application messages (a joiner's reports) are dropped, a
 * Raft message is refused (a removed node campaigning).
 */
static void on_pending(conn_t *c, const wr_peer_frame_t *f)
{
    uint8_t kind = 0;
    wr_bytes_t body;

    if (f->type == WR_PEER_APP)
        (void)wr_peer_app_decode(f->payload, &kind, &body);
    if (f->type == WR_PEER_HEARTBEAT)
        return;
    if ((f->type == WR_PEER_APP && kind == WR_PEER_APP_JOIN) || conn_member(c)) {
        conn_admit(c);
        if (c->state == CONN_UP)
            conn_frame(c, f);
    } else if (f->type != WR_PEER_APP) {
        conn_refuse(c, "node '%s' is not a member of cluster '%s'", conn_name(c), c->l->cfg->name);
    }
}

/* One frame, by the link's state. */
static void conn_frame(conn_t *c, const wr_peer_frame_t *f)
{
    c->idle_ticks = 0;
    if (f->type == WR_PEER_REFUSE)
        on_refused(c, f->payload);
    else if (c->state == CONN_PENDING)
        on_pending(c, f);
    else if (c->state == CONN_HELLO && f->type == WR_PEER_HELLO)
        on_hello(c, f->payload);
    else if (c->state == CONN_PROOF && f->type == WR_PEER_PROOF)
        on_proof(c, f->payload);
    else if (c->state == CONN_UP && f->type == WR_PEER_RAFT)
        on_raft(c, f);
    else if (c->state == CONN_UP && f->type == WR_PEER_APP)
        on_app(c, f);
    else if (c->state != CONN_UP || f->type != WR_PEER_HEARTBEAT)
        conn_refuse(c, "unexpected frame type %u", f->type);
}

/* Parses the next frame in input: WR_OK (handled), WR_AGAIN or an error (c closed). */
static int conn_next(conn_t *c, struct evbuffer *in)
{
    size_t max = c->state == CONN_UP ? WR_PEER_MAX_PAYLOAD : WR_PEER_HANDSHAKE_MAX;
    size_t len = evbuffer_get_length(in), used;
    size_t have = len < WR_PEER_HEADER_SIZE ? len : WR_PEER_HEADER_SIZE;
    wr_peer_frame_t f;
    int rc = wr_peer_frame_parse(evbuffer_pullup(in, (ssize_t)have), have, max, &f, &used);

    /* The header alone decides the size; then the whole frame is made contiguous. */
    if (rc == WR_AGAIN && have == WR_PEER_HEADER_SIZE && used <= len)
        rc = wr_peer_frame_parse(evbuffer_pullup(in, (ssize_t)used), used, max, &f, &used);
    if (rc == WR_AGAIN)
        return rc;
    if (rc != WR_OK) {
        conn_refuse(c, "%s frame",
                    rc == WR_ETOOBIG    ? "oversized"
                    : rc == WR_EUNKNOWN ? "unknown type of"
                                        : "CRC mismatch in a");
        return rc;
    }
    c->recv += used;
    conn_frame(c, &f);
    evbuffer_drain(in, used);
    return WR_OK;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (int i = 0; i < FRAMES_PER_READ; i++) {
        if (c->state == CONN_CLOSING || conn_next(c, in) != WR_OK)
            return;
    }
    if (evbuffer_get_length(in) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    peer_t *p = c->peer;
    const wr_peer_handler_t *h = &c->l->h;

    if (c->state == CONN_CLOSING) {
        if (c->flushing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            c->flushing = false;
            event_active(c->l->reaper, 0, 0);
        }
        return;
    }
    if (c->state == CONN_UP && p->active == c && p->want_writable) {
        p->want_writable = false;
        if (h->on_writable)
            h->on_writable(h->ctx, p->node->name);
        for (size_t i = 0; i < c->l->n_watch; i++)
            if (c->l->watch[i].on_writable)
                c->l->watch[i].on_writable(c->l->watch[i].ud, p->node->name);
    }
}

static void conn_connected(conn_t *c)
{
    wr_log_debug("cluster: connected to %s (%s)", c->peer->node->name, c->addr);
    conn_send_hello(c);
}

/* An incoming link that failed before it was up because of its transport (a
 * TLS handshake refused): logged as a refusal, at the refusals' rate. */
static void log_incoming_failure(conn_t *c, const char *why)
{
    unsigned long suppressed;
    char more[64] = "";

    if (!wr_log_limit_pass(&c->l->refusal_log, REFUSAL_LOG_MS, &suppressed))
        return;
    if (suppressed > 0)
        snprintf(more, sizeof(more), " (%lu more refusals not logged)", suppressed);
    wr_log_warn("cluster: refused the incoming link from %s: %s%s", c->addr, why, more);
}

/*
 * Raft's messages are small and each waits for the answer to the last: with
 * Nagle's algorithm a small write waits for the peer's delayed ACK (40 ms on
 * Linux) whenever an earlier one is unacknowledged. Best effort.
 */
static void no_delay(evutil_socket_t fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    const wr_peer_transport_t *t = &c->l->transport;
    bool transport_error = false;
    char why[160];

    /* Over TLS an accepted link reports its finished handshake too; it sent its HELLO already. */
    if (what & BEV_EVENT_CONNECTED) {
        no_delay(bufferevent_getfd(bev));
        if (c->outgoing)
            conn_connected(c);
        return;
    }
    if (c->l->has_transport && t->error(bev, why, sizeof(why)))
        transport_error = true;
    else if ((what & BEV_EVENT_EOF) && !((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() != 0))
        snprintf(why, sizeof(why), "connection closed by the peer");
    else
        snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    if (c->state == CONN_CLOSING) {
        c->flushing = false;
        event_active(c->l->reaper, 0, 0);
        return;
    }
    if (transport_error && !c->outgoing && c->state != CONN_UP)
        log_incoming_failure(c, why);
    conn_close(c, why);
}

static void conn_free(conn_t *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
}

static conn_t *conn_new(wr_peer_links_t *l, evutil_socket_t fd, peer_t *p)
{
    conn_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->l = l;
    c->peer = p;
    c->outgoing = p != NULL;
    if (!l->has_transport)
        c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    else if (p)
        c->bev = l->transport.dial(l->transport.ud, l->base);
    else
        c->bev = l->transport.accept(l->transport.ud, l->base, fd);
    if (!c->bev || RAND_bytes(c->nonce, sizeof(c->nonce)) != 1) {
        if (!c->bev && fd >= 0)
            evutil_closesocket(fd);
        conn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    wr_list_insert_tail(&l->conns, &c->link);
    return c;
}

/* The next delay of p's back-off: doubling up to the maximum, jittered to [d/2, d]. */
static unsigned peer_next_delay(peer_t *p)
{
    wr_peer_links_t *l = p->l;
    unsigned d = p->backoff_ms;

    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    p->backoff_ms = d * 2 > WR_PEER_BACKOFF_MAX_MS ? WR_PEER_BACKOFF_MAX_MS : d * 2;
    return d / 2 + (unsigned)(l->rng % (d / 2 + 1));
}

static void peer_schedule(peer_t *p)
{
    unsigned ms;
    struct timeval tv;

    if (!p->retry || p->active || p->dialing || evtimer_pending(p->retry, NULL) || !p->l->listener ||
        p->l->stopping)
        return;
    ms = peer_next_delay(p);
    tv = (struct timeval){ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->retry, &tv);
}

static void peer_down(peer_t *p, const char *why)
{
    const wr_peer_handler_t *h = &p->l->h;

    p->active = NULL;
    p->want_writable = false;
    wr_log_warn("cluster: peer %s down: %s", p->node->name, why ? why : "link closed");
    if (h->on_down)
        h->on_down(h->ctx, p->node->name);
    for (size_t i = 0; i < p->l->n_watch; i++)
        if (p->l->watch[i].on_down)
            p->l->watch[i].on_down(p->l->watch[i].ud, p->node->name);
}

/*
 * Takes c out of service; the reaper frees it. A deliberate close (why NULL:
 * a refusal, a duplicate link) first writes what is queued, such as a REFUSE
 * or the proof the peer needs to see the link complete; a failed link does not.
 */
static void conn_close(conn_t *c, const char *why)
{
    peer_t *p = c->peer;

    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    c->flushing = !why && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
    c->idle_ticks = 0;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0); /* on_write once it is all out */
    bufferevent_disable(c->bev, EV_READ);
    wr_list_remove(&c->link);
    wr_list_insert_tail(&c->l->closing, &c->link);
    if (c->lookup)
        evdns_getaddrinfo_cancel(c->lookup); /* on_resolved then lets the reaper have c */
    if (!c->flushing)
        event_active(c->l->reaper, 0, 0);
    if (p && p->dialing == c)
        p->dialing = NULL;
    if (p && p->active == c)
        peer_down(p, why);
    else if (why && c->outgoing && !p->unreachable_logged) {
        wr_log_info("cluster: cannot link to %s at %s: %s (retrying with back-off)", p->node->name, c->addr,
                    why);
        p->unreachable_logged = true;
    }
    if (p)
        peer_schedule(p);
}

static void sockaddr_text(const struct sockaddr *sa, char *out, size_t n, uint16_t *port)
{
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    *port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                            : ((const struct sockaddr_in *)sa)->sin_port);
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)n))
        snprintf(out, n, "?");
}

static bool parse_sockaddr(const char *address, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = sizeof(*in);
        return true;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    *len = sizeof(*in6);
    return inet_pton(AF_INET6, address, &in6->sin6_addr) == 1;
}

/* A lookup's end: connect to the first address, or close c with why it failed. */
static void on_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
    conn_t *c = arg;
    char why[160];

    c->resolving = false;
    c->lookup = NULL;
    if (c->state == CONN_CLOSING) { /* cancelled by conn_close */
        if (ai)
            evutil_freeaddrinfo(ai);
        event_active(c->l->reaper, 0, 0);
        return;
    }
    if (result != 0) {
        snprintf(why, sizeof(why), "cannot resolve the host name: %s", evutil_gai_strerror(result));
        conn_close(c, why);
        return;
    }
    if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0)
        conn_close(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evutil_freeaddrinfo(ai);
}

/*
 * Connects c to p's address: an IP at once, a host name once resolved
 * (asynchronously, at every dial). The lookup is ours, not the
 * bufferevent's, so that closing c or stopping the links can cancel it and
 * know when it ended. 0, or -1 with the socket error set.
 */
static int peer_connect(peer_t *p, conn_t *c)
{
    wr_peer_links_t *l = p->l;
    struct evutil_addrinfo hint = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct evdns_getaddrinfo_request *req;
    struct sockaddr_storage ss;
    socklen_t len;
    char port[8];

    if (parse_sockaddr(p->node->address, p->node->port, &ss, &len))
        return bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len);
    if (!l->dns) {
        if (!(l->dns = evdns_base_new(l->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)))
            return -1;
        l->own_dns = true;
        /* A dial is retried with back-off anyway: fail a lookup within seconds, not half a minute. */
        evdns_base_set_option(l->dns, "timeout:", "2");
        evdns_base_set_option(l->dns, "attempts:", "2");
    }
    snprintf(port, sizeof(port), "%u", p->node->port);
    c->resolving = true;
    req = evdns_getaddrinfo(l->dns, p->node->address, port, &hint, on_resolved, c);
    if (c->resolving) /* else on_resolved ran already (a name in /etc/hosts, a failure at once) */
        c->lookup = req;
    return 0;
}

static void peer_dial(peer_t *p)
{
    conn_t *c;

    if (!p->node->address || p->active || p->dialing)
        return;
    c = conn_new(p->l, -1, p);
    if (!c) {
        wr_log_error("cluster: out of memory dialling %s", p->node->name);
        peer_schedule(p);
        return;
    }
    p->dialing = c;
    snprintf(c->addr, sizeof(c->addr), "%s%s%s:%u", strchr(p->node->address, ':') ? "[" : "",
             p->node->address, strchr(p->node->address, ':') ? "]" : "", p->node->port);
    if (peer_connect(p, c) != 0)
        conn_close(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    peer_dial(arg);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    wr_peer_links_t *l = arg;
    conn_t *c = conn_new(l, fd, NULL);
    char host[64];
    uint16_t port;

    if (!c) {
        wr_log_error("cluster: out of memory accepting a peer link");
        return;
    }
    no_delay(fd);
    sockaddr_text(sa, host, sizeof(host), &port);
    snprintf(c->addr, sizeof(c->addr), "%s:%u", host, port);
    conn_send_hello(c);
}

/* accept() failed (EMFILE...): pause instead of spinning; on_tick resumes. */
static void on_accept_error(struct evconnlistener *lis, void *arg)
{
    wr_log_error("cluster: accepting a peer link failed: %s; paused for %d ms",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), WR_PEER_HEARTBEAT_MS);
    evconnlistener_disable(lis);
}

/* Every heartbeat interval: heartbeats out, silent and stuck links closed. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    wr_peer_links_t *l = arg;
    wr_list_t *pos, *tmp;
    char why[80];

    wr_list_foreach_safe(pos, tmp, &l->conns)
    {
        conn_t *c = wr_list_entry(pos, conn_t, link);

        bool authenticated = c->state == CONN_UP || c->state == CONN_PENDING;

        c->idle_ticks++;
        /* Not while an older link is up: replacing it would close another entry of this list. */
        if (c->state == CONN_PENDING && !(c->peer && c->peer->active) && conn_member(c))
            conn_admit(c);
        if (c->state == CONN_CLOSING)
            continue;
        if (authenticated && c->idle_ticks > WR_PEER_MISSED_BEATS) {
            snprintf(why, sizeof(why), "no heartbeat for %u ms", WR_PEER_MISSED_BEATS * WR_PEER_HEARTBEAT_MS);
            conn_close(c, why);
        } else if (authenticated) {
            if (!wr_peer_frame_put(&l->out, WR_PEER_HEARTBEAT, 0, NULL, 0) || !conn_write(c))
                conn_close(c, "out of memory");
        } else if (c->idle_ticks > HANDSHAKE_TICKS) {
            conn_close(c, "handshake timed out");
        }
    }
    evconnlistener_enable(l->listener);
    wr_list_foreach_safe(pos, tmp, &l->closing)
    {
        conn_t *c = wr_list_entry(pos, conn_t, link);

        if (c->flushing && ++c->idle_ticks > HANDSHAKE_TICKS) {
            c->flushing = false; /* a peer that does not read its refusal */
            event_active(l->reaper, 0, 0);
        }
    }
}

/* Whether a host-name lookup of l's is in flight (a dialling link's, or a closed one's being cancelled). */
static bool links_resolving(wr_peer_links_t *l)
{
    wr_list_t *heads[] = {&l->conns, &l->closing};
    wr_list_t *pos, *tmp;

    for (size_t i = 0; i < 2; i++)
        wr_list_foreach_safe(pos, tmp, heads[i])
        {
            if (wr_list_entry(pos, conn_t, link)->resolving)
                return true;
        }
    return false;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    wr_peer_links_t *l = arg;
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, &l->closing)
    {
        conn_t *c = wr_list_entry(pos, conn_t, link);

        if (c->flushing || c->resolving)
            continue;
        wr_list_remove(pos);
        conn_free(c);
    }
    if (l->stopping && l->stop_done && !links_resolving(l)) {
        void (*done)(void *) = l->stop_done;

        l->stop_done = NULL;
        done(l->stop_ud);
    }
}

wr_peer_links_t *wr_peer_links_new(struct event_base *base, wr_cluster_config_t *cfg,
                                   const wr_peer_handler_t *h)
{
    wr_peer_links_t *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->base = base;
    l->cfg = cfg;
    l->h = *h;
    wr_list_init(&l->conns);
    wr_list_init(&l->closing);
    l->peers = calloc(cfg->cap_nodes > cfg->n_nodes ? cfg->cap_nodes : cfg->n_nodes, sizeof(*l->peers));
    l->tick = event_new(base, -1, EV_PERSIST, on_tick, l);
    l->reaper = event_new(base, -1, 0, on_reap, l);
    if (!l->peers || !l->tick || !l->reaper || RAND_bytes((uint8_t *)&l->rng, sizeof(l->rng)) != 1)
        goto err;
    l->rng |= 1; /* xorshift never leaves zero */
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        peer_t *p = &l->peers[l->n_peers];

        if (i == cfg->self)
            continue;
        *p = (peer_t){.l = l, .node = &cfg->nodes[i], .backoff_ms = WR_PEER_BACKOFF_MIN_MS};
        l->n_peers++;
        if (!(p->retry = evtimer_new(base, on_retry, p)))
            goto err;
    }
    return l;
err:
    wr_peer_links_free(l);
    return NULL;
}

int wr_peer_links_start(wr_peer_links_t *l)
{
    const wr_cluster_config_t *cfg = l->cfg;
    struct timeval beat = {0, WR_PEER_HEARTBEAT_MS * 1000};
    struct sockaddr_storage ss;
    socklen_t len;

    if (!parse_sockaddr(cfg->listen_address, cfg->listen_port, &ss, &len))
        return WR_EIO;
    l->listener = evconnlistener_new_bind(l->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                          -1, (struct sockaddr *)&ss, (int)len);
    if (!l->listener) {
        wr_log_error("cluster: cannot listen for peer links on %s port %u: %s", cfg->listen_address,
                     cfg->listen_port, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return WR_EIO;
    }
    evconnlistener_set_error_cb(l->listener, on_accept_error);
    wr_log_info("cluster: node %s of cluster %s listening for peer links on %s port %u (%zu peers%s%s)",
                cfg->node, cfg->name, cfg->listen_address, cfg->listen_port, l->n_peers,
                l->has_transport ? ", " : "", l->has_transport ? l->transport.name : "");
    event_add(l->tick, &beat);
    for (size_t i = 0; i < l->n_peers; i++)
        peer_dial(&l->peers[i]);
    return WR_OK;
}

static void free_conns(wr_list_t *head)
{
    wr_list_t *pos, *tmp;

    wr_list_foreach_safe(pos, tmp, head)
    {
        wr_list_remove(pos);
        conn_free(wr_list_entry(pos, conn_t, link));
    }
}

void wr_peer_links_free(wr_peer_links_t *l)
{
    if (!l)
        return;
    if (l->listener)
        evconnlistener_free(l->listener);
    free_conns(&l->conns);
    free_conns(&l->closing);
    for (size_t i = 0; i < l->n_peers; i++) {
        if (l->peers[i].retry)
            event_free(l->peers[i].retry);
    }
    free(l->peers);
    if (l->tick)
        event_free(l->tick);
    if (l->reaper)
        event_free(l->reaper);
    if (l->dns && l->own_dns)
        evdns_base_free(l->dns, 0);
    wr_buf_free(&l->out);
    free(l);
}

/* The peer's active link if it can take more output now; else NULL with *rc why. */
static conn_t *peer_writable(wr_peer_links_t *l, const char *node, int *rc)
{
    peer_t *p = peer_by_name(l, node, strlen(node));

    *rc = WR_ENOENT;
    if (!p || !p->active)
        return NULL;
    if (evbuffer_get_length(bufferevent_get_output(p->active->bev)) >= WR_PEER_HIGH_WATERMARK) {
        p->want_writable = true;
        *rc = WR_AGAIN;
        return NULL;
    }
    return p->active;
}

int wr_peer_send(wr_peer_links_t *l, const char *node, uint64_t group, const wr_raft_msg_t *m)
{
    int rc;
    conn_t *c = peer_writable(l, node, &rc);

    if (!c)
        return rc;
    if (!wr_peer_raft_put(&l->out, group, m) || !conn_write(c))
        return WR_ENOMEM;
    return WR_OK;
}

void wr_peer_links_resolver(wr_peer_links_t *l, struct evdns_base *dns)
{
    l->dns = dns;
}

void wr_peer_links_stop(wr_peer_links_t *l, void (*done)(void *ud), void *ud)
{
    wr_list_t *pos, *tmp;

    l->stopping = true;
    l->stop_done = done;
    l->stop_ud = ud;
    for (size_t i = 0; i < l->n_peers; i++)
        if (l->peers[i].retry)
            event_del(l->peers[i].retry);
    wr_list_foreach_safe(pos, tmp, &l->conns)
    {
        conn_t *c = wr_list_entry(pos, conn_t, link);

        if (c->resolving)
            conn_close(c, NULL);
    }
    event_active(l->reaper, 0, 0);
}

void wr_peer_links_members(wr_peer_links_t *l, wr_peer_member_fn member, void *ud)
{
    l->member = member;
    l->member_ud = ud;
}

void wr_peer_links_transport(wr_peer_links_t *l, const wr_peer_transport_t *t)
{
    l->transport = *t;
    l->has_transport = true;
}

int wr_peer_links_route(wr_peer_links_t *l, uint8_t first, uint8_t last, wr_peer_app_fn fn, void *ud)
{
    if (first == 0 || first > last)
        return WR_ESYNTAX;
    for (unsigned k = first; k <= last; k++)
        if (l->routes[k].fn)
            return WR_EEXIST;
    for (unsigned k = first; k <= last; k++)
        l->routes[k] = (route_t){fn, ud};
    return WR_OK;
}

int wr_peer_links_watch(wr_peer_links_t *l, const wr_peer_watch_t *w)
{
    if (l->n_watch == WR_PEER_MAX_WATCHERS)
        return WR_ETOOBIG;
    l->watch[l->n_watch++] = *w;
    return WR_OK;
}

int wr_peer_send_app(wr_peer_links_t *l, const char *node, uint8_t kind, uint64_t group,
                     const wr_bytes_t *parts, size_t n)
{
    int rc;
    conn_t *c = peer_writable(l, node, &rc);

    if (!c)
        return rc;
    if (!wr_peer_app_put(&l->out, group, kind, parts, n) || !conn_write(c))
        return WR_ENOMEM;
    return WR_OK;
}

void wr_peer_links_drop(wr_peer_links_t *l, const char *node, const char *why)
{
    peer_t *p = peer_by_name(l, node, strlen(node));

    if (!p || !p->active)
        return;
    wr_log_warn("cluster: peer %s sent a malformed message (%s); closing the link", node, why);
    conn_close(p->active, why);
}

bool wr_peer_up(const wr_peer_links_t *l, const char *node)
{
    const peer_t *p = peer_by_name(l, node, strlen(node));

    return p && p->active;
}

size_t wr_peer_count(const wr_peer_links_t *l)
{
    return l->n_peers;
}

static void conn_local(const conn_t *c, wr_peer_status_t *st)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &len) == 0)
        sockaddr_text((struct sockaddr *)&ss, st->sock_addr, sizeof(st->sock_addr), &st->sock_port);
    len = sizeof(ss);
    if (getpeername(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &len) == 0)
        sockaddr_text((struct sockaddr *)&ss, st->peer_addr, sizeof(st->peer_addr), &st->peer_port);
}

void wr_peer_status(const wr_peer_links_t *l, size_t i, wr_peer_status_t *st)
{
    const peer_t *p = &l->peers[i];
    const conn_t *c = p->active;

    memset(st, 0, sizeof(*st));
    st->name = p->node->name;
    st->up = c != NULL;
    if (!c)
        return;
    st->outgoing = c->outgoing;
    st->send_bytes = c->sent;
    st->recv_bytes = c->recv;
    conn_local(c, st);
}
