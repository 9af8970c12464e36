/* SPDX-License-Identifier: MIT */
/*
 * The loop's plain-TCP connections over io_uring (docs/PERFORMANCE.md,
 * "io_uring in the loop"). With epoll the loop makes per wake an
 * epoll_wait, a read per readable connection and a writev per connection
 * it delivered to; with the ring it makes one io_uring_enter, which hands in
 * the pass's sends and receives and waits for the next completions.
 *
 * libevent stays the loop: its timers, priorities and everything not on the
 * hot path (listeners, TLS, HTTP, cluster links, the storage threads'
 * eventfds). libevent 2.1 has no hook before it blocks, so this file defines
 * epoll_wait (the only call libevent's epoll backend waits in): on the
 * loop's thread it submits and waits in the ring with the timeout libevent
 * asked for, its own epoll descriptor watched by a poll in the ring. Other
 * threads and other descriptors go straight to the kernel.
 *
 * One ring, for the thread that calls wr_ring_start. Where io_uring is
 * missing, disabled or too old, wr_ring_start says why and the connections
 * stay on epoll (wr_ring_sock_new returns NULL).
 */
#ifndef WR_BROKER_RING_H
#define WR_BROKER_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event;
struct evbuffer;

typedef struct wr_ring_sock wr_ring_sock_t;

/* Sets up the ring for the calling thread's loop; false (the reason logged) when epoll stays. */
bool wr_ring_start(void);
/* After the loop: cancels what is in flight, waits for it, frees the ring. */
void wr_ring_stop(void);

/*
 * A connected socket read and written through the ring; NULL when the ring
 * is not in use. A receive appends to `in` (whose end libevent keeps frozen)
 * and activates `readable` if reading is on; a completed send activates
 * `sent`. Both events belong to the caller and must outlive the socket's
 * wr_ring_sock_close.
 */
wr_ring_sock_t *wr_ring_sock_new(int fd, struct evbuffer *in, struct event *readable, struct event *sent);
/* Reading on, with a receive of at most `max` octets handed in unless one is
 * in flight, or off: a receive in flight still completes into `in`, and
 * `readable` waits until reading is on again. */
void wr_ring_sock_reads(wr_ring_sock_t *s, bool on, size_t max);
/* Whether reading is on. */
bool wr_ring_sock_reading(const wr_ring_sock_t *s);
/* What came in since the last call: the octets appended to `in`, else 0 at
 * end of file, else -errno (-EAGAIN: nothing). */
ssize_t wr_ring_sock_received(wr_ring_sock_t *s);
/* Moves up to `max` octets from the front of `out` into a send, unless a
 * send is in flight (then `sent` says when to try again). */
void wr_ring_sock_send(wr_ring_sock_t *s, struct evbuffer *out, size_t max);
/* Octets handed to a send that has not completed. */
size_t wr_ring_sock_unsent(const wr_ring_sock_t *s);
/* A send's error (errno), once; 0 if none. */
int wr_ring_sock_send_error(wr_ring_sock_t *s);
/* The owner is done: operations in flight are cancelled and the socket is
 * freed once the last one completes. `in` and the events are not touched again. */
void wr_ring_sock_close(wr_ring_sock_t *s);

#endif
