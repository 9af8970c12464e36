/* SPDX-License-Identifier: MIT */
/*
 * One AMQP client connection on a libevent bufferevent: the handshake (PLAIN,
 * tune-ok accepting the server's frame_max, heartbeat 0), one channel
 * (number 1), method send, raw writes for pre-encoded publishes, and the
 * reassembly of deliveries. Everything is asynchronous; nothing waits.
 */
#ifndef WR_PERF_CLIENT_H
#define WR_PERF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "protocol/methods.h"

struct event_base;
typedef struct wr_client_s wr_client_t;

/* Shared by many clients; must outlive them all. */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *user;
    const char *pass;
    const char *vhost;
} wr_client_conf_t;

typedef struct {
    /* Channel 1 is open: the client can send. */
    void (*ready)(wr_client_t *c, void *arg);
    /* A method on channel 1 other than basic.deliver, or connection.blocked
     * and connection.unblocked. Borrowed strings live only for the call. */
    void (*method)(wr_client_t *c, const wr_method_t *m, void *arg);
    /* A complete delivery: its tag and the first min(8, body size) bytes. */
    void (*deliver)(wr_client_t *c, uint64_t tag, const uint8_t *head, size_t head_len, void *arg);
    /* The output buffer fell to the low watermark: a producer may write more.
     * May be NULL. */
    void (*drained)(wr_client_t *c, void *arg);
    /* Called once, at the end: error is NULL after a clean close handshake,
     * else why the connection failed. The client is inert afterwards; its
     * owner frees it, but never from inside this callback. */
    void (*done)(wr_client_t *c, const char *error, void *arg);
} wr_client_cbs_t;

/* Starts connecting. `name` shows as connection_name in the broker's
 * management views. NULL on allocation or socket failure. */
wr_client_t *wr_client_new(struct event_base *base, const wr_client_conf_t *conf, const char *name,
                           const wr_client_cbs_t *cbs, void *arg);
void wr_client_free(wr_client_t *c); /* NULL is a no-op */

/* Sends a method on channel 1; only once ready. */
void wr_client_send(wr_client_t *c, const wr_method_t *m);
/* Appends pre-encoded frames (a publish template) to the output. */
void wr_client_write(wr_client_t *c, const void *data, size_t len);
/* Unbatched mode: every later wr_client_write and method (acks...) goes to
 * the socket at once in its own send() while nothing is queued before it,
 * as pika, the Java and Go clients and librabbitmq write. */
void wr_client_set_unbatched(wr_client_t *c, bool on);
/* Bytes waiting in the output buffer. */
size_t wr_client_pending(const wr_client_t *c);
/* The frame_max agreed in the handshake (0: no limit). */
uint32_t wr_client_frame_max(const wr_client_t *c);
/*
 * Starts connection.close; done(NULL) follows the broker's close-ok. A
 * client that is not yet ready is abandoned at once and done(NULL) is called
 * before this returns. No-op once done.
 */
void wr_client_close(wr_client_t *c);

/*
 * Drops the connection at once with a TCP reset, discarding unsent output:
 * for a producer at the end of a run, whose backlog in the socket buffers
 * the broker would otherwise have to read before it could see a close.
 * done(NULL) is called before this returns. No-op once done.
 */
void wr_client_reset(wr_client_t *c);

#endif
