/* SPDX-License-Identifier: MIT */
/*
 * The connection struct, its state enum and the helpers conn.c shares with
 * conn_handshake.c (the connection class on channel 0). Only those two files
 * include this header; everyone else goes through broker/conn.h.
 */
#ifndef WR_BROKER_CONN_INTERNAL_H
#define WR_BROKER_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/amqp/conn.h"
#include "broker/node/durable.h"
#include "core/buf.h"
#include "core/bytes.h"
#include "core/list.h"
#include "protocol/error.h"
#include "protocol/frame.h"
#include "protocol/methods.h"

struct bufferevent;
struct event;
struct evbuffer;

/* Input stops being read above this (or above one maximal frame). */
#define WR_CONN_READ_HIGH_WM (256 * 1024)

/* In handshake order: every state before WR_CONN_OPEN is part of the handshake. */
typedef enum {
    WR_CONN_AWAIT_HEADER,
    WR_CONN_AWAIT_START_OK,
    WR_CONN_AWAIT_TUNE_OK,
    WR_CONN_AWAIT_OPEN,
    WR_CONN_OPEN,
    WR_CONN_CLOSING, /* we sent connection.close: only close and close-ok matter now */
    WR_CONN_CLOSED,  /* finished at the AMQP level: input is discarded, the socket
                        closes once flushed or when the deadline fires */
    WR_CONN_DEAD,    /* handed to the server's reaper */
} wr_conn_state_t;

struct wr_conn_s {
    wr_list_t link; /* on the server's live or closing list */
    const wr_conn_env_t *env;
    struct bufferevent *bev;
    wr_conn_state_t state;
    uint64_t id;
    char name[136]; /* two formatted addresses and " -> " */
    bool peer_loopback;
    bool tls;                /* a TLS listener accepted it */
    bool user_counted;       /* counted against the per-user connection limit */
    bool peer_eof;           /* EOF seen: finish buffered frames, then close */
    bool output_full;        /* went over WRITE_HIGH_WM; channels wait for LOW */
    bool output_held;        /* went over READ_STOP_WM: input waits for LOW */
    bool close_when_flushed; /* close as soon as the output is empty */
    bool await_peer_close;   /* close-ok sent: the client closes the socket */
    bool teardown_pending;   /* channels to free once off the caller's stack */
    bool torn_down;
    bool sent_since_tick;
    bool recv_since_tick;
    uint8_t idle_ticks;

    /* Throttling, as rabbit_reader's: a connection that publishes while an
     * alarm or flow holds publishers stops being read (before the body of
     * that message) until the reasons are gone. */
    bool blocked;      /* reads stopped */
    bool blocked_sent; /* connection.blocked sent, connection.unblocked owed */
    unsigned held_by;  /* WR_ALARM_* reasons at the last look */
    uint64_t flow_at;  /* ms (monotonic) flow last held it, or it was read behind (`behind`); 0: never */

    /* Negotiated in tune-ok; frame_max is AMQP's minimum until then. */
    uint32_t frame_max;
    uint16_t channel_max;
    uint16_t heartbeat;

    char *user;
    wr_vhost_t *vhost;
    wr_access_who_t who; /* the user's permission in vhost, from connection.open */
    uint8_t *caps;       /* the client's capabilities table, raw */
    size_t caps_len;
    uint8_t *client_props; /* start-ok's client_properties table, raw */
    size_t client_props_len;
    const char *mechanism; /* the SASL mechanism of the login; static */
    /* recv_oct and send_oct without a callback per buffer change: what the
     * parser consumed (plus what is still buffered is what arrived) and
     * what was queued (less what is still queued is what was written). */
    uint64_t in_consumed;
    uint64_t out_queued;

    wr_channel_t ***pages; /* CHANNEL_PAGES entries, each NULL or a page */
    uint32_t nchannels;

    struct event *rd; /* plain TCP: reads the socket itself (conn_read_socket); NULL over TLS */
    bool read_full;   /* rd is off because the input is at its high watermark */
    /* Its last read published into a queue whose consumers are behind
     * (wr_queue_sched_t.behind): its read event (rd, or the TLS
     * bufferevent's) runs at WR_PRIO_BEHIND until a read
     * publishes nothing there, or `promote` finds it went unread for
     * BEHIND_WAIT_MS because the loop always had more urgent work. */
    bool behind;
    struct event *promote; /* made at the first time behind */

    wr_buf_t scratch;       /* reused by every encoder call */
    wr_buf_t straddler;     /* a frame split over input chains, copied whole */
    struct event *resume;   /* more input to handle, or deferred teardown */
    struct event *deadline; /* handshake timeout, then close timeout */
    struct event *heartbeat_ev;
    bool corked;               /* output waits: EV_WRITE is disabled */
    struct event *uncork_idle; /* at the idle priority: the loop has caught up */
    struct event *uncork_late; /* a timer: CORK_USEC have passed */
    char reason[256];          /* why it closes, for the last log line */
    int64_t connected_at;      /* ms since the epoch, for the management API */

    wr_durable_waiter_t topo_wait; /* for the durable topology changes its frames made */
    bool topo_held;                /* output waits for them to be on disk: EV_WRITE is disabled */

    bool parked;                   /* a method waits for a cluster-wide change: reads stop (wr_conn_park) */
    void (*park_cancel)(void *ud); /* called instead of the unpark if c goes first */
    void *park_ud;
};

/* RabbitMQ's name for a state, as its error texts show it; static storage. */
const char *wr_conn_state_name(wr_conn_state_t s);
/* Replaces control characters in the NUL-terminated s with '?', in place. */
void wr_conn_sanitize(char *s);
/* b as Erlang prints a binary (<<"abc">> when strings and all printable,
 * else <<0,20,0>>) into out, truncated to fit n. */
void wr_conn_format_octets(char *out, size_t n, wr_bytes_t b, bool strings);
/* Records why c closes, sanitized, for its last log line; the first call wins. */
void wr_conn_set_reason(wr_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* c's output buffer (the bufferevent's); borrowed. */
struct evbuffer *wr_conn_output(const wr_conn_t *c);
/* Queues a method whatever the state (close and close-ok need that). */
void wr_conn_put_method(wr_conn_t *c, uint16_t channel, const wr_method_t *m);
/* Logs ENOMEM and closes c on the next loop pass; never frees c. */
void wr_conn_out_of_memory(wr_conn_t *c);
/* Closes c once its queued output is written, or after the close timeout. */
void wr_conn_close_when_flushed(wr_conn_t *c);
/* After close-ok to the client's connection.close: flush, then leave the
 * socket to the client, as RabbitMQ does, closing it ourselves only once the
 * bound (the heartbeat interval, at most 30 s) has passed. */
void wr_conn_await_peer_close(wr_conn_t *c);
/* Frees c's channels, drops its exclusive queues and its count against the
 * user's connection limit. Runs once; never from inside a channel. */
void wr_conn_teardown(wr_conn_t *c);
/* A handshake failure: logs reason, sends connection.close carrying close
 * when it is not NULL, and closes the socket after RabbitMQ's silent delay. */
void wr_conn_refuse(wr_conn_t *c, const char *reason, const wr_amqp_error_t *close);
/* A hard error with a formatted text (see wr_conn_fail); lost_sync when the
 * input can no longer be split into frames. Never frees c. */
void wr_conn_fail_fmt(wr_conn_t *c, uint16_t channel, uint16_t code, uint32_t method, bool lost_sync,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Decodes method frame f into m; false, with the error reported as RabbitMQ
 * does, when it does not decode. m borrows from f's payload. */
bool wr_conn_decode(wr_conn_t *c, const wr_frame_t *f, wr_method_t *m);
/* Fails c with RabbitMQ's unexpected_frame error for f. */
void wr_conn_unexpected_frame(wr_conn_t *c, const wr_frame_t *f);
/* Checks a client's field table against limits.max_table_size and
 * max_table_depth; false, with c failed (501), when it is over them. */
bool wr_conn_check_table(wr_conn_t *c, wr_bytes_t table, uint16_t channel, uint32_t method,
                         const char *where);

/* conn_handshake.c. Consumes the 8-octet protocol header from in once it is
 * all there (false until then), answering with connection.start, or with our
 * header and a close for anything else. */
bool wr_conn_read_header(wr_conn_t *c, struct evbuffer *in);
/* conn_handshake.c. A non-heartbeat frame on channel 0 while c is not closing:
 * start-ok, tune-ok, open and the client's close, each in its state. */
void wr_conn_handle_channel0(wr_conn_t *c, const wr_frame_t *f);

#endif
