/* SPDX-License-Identifier: MIT */
/*
 * A client connection: socket I/O through a bufferevent, the protocol header,
 * frame splitting, the connection-class handshake (start, SASL, tune, open),
 * heartbeats and close. Frames for channels 1..channel_max go to channel.c.
 * Output is queued on the bufferevent; a connection is never freed from
 * inside its own callback (it is marked closing and reaped by the server).
 */
#ifndef WR_BROKER_CONN_H
#define WR_BROKER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/amqp/tls.h"
#include "broker/auth/access.h"
#include "broker/base/counters.h"
#include "broker/base/message.h"
#include "broker/config/config.h"
#include "core/list.h"
#include "core/map.h"
#include "protocol/error.h"
#include "protocol/methods.h"

struct sockaddr;
typedef struct wr_conn_s wr_conn_t;
typedef struct wr_channel_s wr_channel_t;
typedef struct wr_tls_s wr_tls_t;
typedef struct wr_vhost_s wr_vhost_t;
struct event_base;
struct wr_alarms_s;
struct wr_durable_s;
struct wr_meta_s;
struct wr_reply_to_s;

/*
 * What every connection is created with. The server fills one (it is the
 * one place that wires modules together) and keeps it alive as long as its
 * connections; alarms and durable are set once the store is open, before
 * any client connects.
 */
typedef struct {
    struct event_base *base;
    const wr_config_t *cfg;         /* limits; users and permissions, which change at run time */
    const wr_map_t *vhosts;         /* name -> wr_vhost_t */
    struct wr_alarms_s *alarms;     /* flow alarms: publishers are held while they say so */
    struct wr_durable_s *durable;   /* replies wait for the topology journal */
    struct wr_reply_to_s *reply_to; /* the node's direct reply-to names */
    struct wr_meta_s *meta;  /* cluster mode: definitions change through the metadata group; NULL: one node */
    wr_counters_t *counters; /* node-wide event counters; may be NULL */
    /* Counts one more connection of `user`: WR_OK; WR_ETOOBIG when the
     * user's limit (stored in *limit) is reached; WR_ENOMEM. */
    int (*user_add)(void *ud, const char *user, int64_t *limit);
    void (*user_remove)(void *ud, const char *user); /* undoes one user_add */
    /* The vhost and user limits of the definitions; each may be NULL (no
     * limit). WR_ETOOBIG, the limit in *limit, when one more connection to
     * vhost, channel of user or queue in vhost would pass it; else WR_OK. */
    int (*vhost_conn_check)(void *ud, const char *vhost, int64_t *limit);
    int (*channel_check)(void *ud, const char *user, int64_t *limit);
    int (*queue_check)(void *ud, const char *vhost, int64_t *limit);
    /* c has finished (socket side done, channels freed): the server frees
     * it once the current callbacks have returned, never inside them. */
    void (*done)(void *ud, wr_conn_t *c);
    void *ud;
} wr_conn_env_t;

/*
 * Stops handling c's input until wr_conn_unpark: a method whose reply waits
 * for a cluster-wide change, so that the frames after it (pipelined) see the
 * change made. While parked c reads nothing; if c is torn down first,
 * cancel(ud) is called instead (once). One park at a time.
 */
void wr_conn_park(wr_conn_t *c, void (*cancel)(void *ud), void *ud);
/* Input is handled again, starting with what was buffered. */
void wr_conn_unpark(wr_conn_t *c);

/* Queues one method frame. */
void wr_conn_send_method(wr_conn_t *c, uint16_t channel, const wr_method_t *m);
/*
 * Queues a content-carrying method (basic.deliver, get-ok, return) followed by
 * msg's raw content header and its body split into frame_max-sized frames.
 * The body is referenced, not copied: the connection holds a reference to msg
 * until those bytes have been written.
 */
void wr_conn_send_content(wr_conn_t *c, uint16_t channel, const wr_method_t *m, wr_message_t *msg);
/*
 * Hard error: sends connection.close carrying err, ignores further input but
 * connection.close-ok, and closes the socket after close-ok or a timeout.
 */
void wr_conn_fail(wr_conn_t *c, const wr_amqp_error_t *err);

/* False while the output buffer is above its high watermark: deliver nothing. */
bool wr_conn_writable(const wr_conn_t *c);
/* What the connection was created with. */
const wr_conn_env_t *wr_conn_env(const wr_conn_t *c);
wr_vhost_t *wr_conn_vhost(const wr_conn_t *c); /* set by connection.open */
const char *wr_conn_user(const wr_conn_t *c);
/* The user and its permission in the connection's vhost, for access checks
 * (set by connection.open). */
const wr_access_who_t *wr_conn_who(const wr_conn_t *c);
/* Unique for the broker's lifetime; used for exclusive-queue ownership. */
uint64_t wr_conn_id(const wr_conn_t *c);
/* "127.0.0.1:50342 -> 127.0.0.1:5672", for log lines. */
const char *wr_conn_name(const wr_conn_t *c);
/* Whether the client's capabilities table has this key set true
 * ("consumer_cancel_notify", "basic.nack", "connection.blocked", ...). */
bool wr_conn_client_has(const wr_conn_t *c, const char *capability);

/*
 * The server's side (server.c). wr_conn_new takes ownership of the accepted,
 * non-blocking socket fd (closed on failure; NULL on ENOMEM, or when
 * env->base was not created with WR_PRIO_LEVELS priorities, base/loop.h) and
 * starts the handshake, over TLS when tls is not NULL (a TLS listener's
 * context). The server keeps each connection on
 * its lists through wr_conn_link. wr_conn_shutdown starts closing for a broker shutdown (320 to open
 * connections) and never frees. wr_conn_free releases everything, closing the socket; only the server's
 * reaper calls it, after the connection reported itself done (env->done), or at exit.
 */
wr_conn_t *wr_conn_new(const wr_conn_env_t *env, int fd, const struct sockaddr *peer, uint64_t id,
                       wr_tls_t *tls);
wr_list_t *wr_conn_link(wr_conn_t *c);
wr_conn_t *wr_conn_from_link(wr_list_t *link);
void wr_conn_shutdown(wr_conn_t *c);
void wr_conn_free(wr_conn_t *c); /* NULL is a no-op */

/*
 * The alarms or storage flow changed (broker/alarm.h): a blocked connection
 * looks at the reasons again, telling its client connection.blocked or
 * unblocked and resuming reads when nothing holds it any more. A running
 * connection is untouched: it is held at its next content header, as in
 * RabbitMQ. Never frees c.
 */
void wr_conn_throttle(wr_conn_t *c);

/* What the management API lists about a connection. */
typedef struct {
    bool open;         /* connection.open done and not closing */
    const char *state; /* RabbitMQ's: starting, tuning, opening, running, blocking (an alarm is
                          raised, no publish since), blocked (held by an alarm), flow (held by
                          storage flow, or was within 5 s), closing, closed; static */
    bool blocked;      /* reads stopped by an alarm or flow */
    uint16_t channel_max;
    uint16_t heartbeat;
    uint32_t frame_max;
    uint32_t channels;
    int64_t connected_at;         /* milliseconds since the epoch */
    const char *auth_mechanism;   /* "PLAIN"...; NULL before start-ok; static */
    wr_bytes_t client_properties; /* start-ok's table, raw; borrowed from c (empty before) */
    uint64_t recv_oct, send_oct;  /* octets read and written (TLS: the plaintext) */
    bool ssl;                     /* accepted on a TLS listener */
} wr_conn_info_t;

void wr_conn_info(const wr_conn_t *c, wr_conn_info_t *out);
/* c's TLS session (broker/amqp/tls.h); false when c is not over TLS or the
 * handshake is not done. */
bool wr_conn_tls_session(const wr_conn_t *c, wr_tls_session_t *out);
/* Calls fn for each open channel, in channel-number order; fn must not
 * open or close channels. */
void wr_conn_foreach_channel(const wr_conn_t *c, void (*fn)(void *ud, const wr_channel_t *ch), void *ud);

#endif
