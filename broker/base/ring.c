/* SPDX-License-Identifier: MIT */
/*
 * The loop's plain-TCP connections over io_uring (ring.h). Raw system calls
 * and the kernel's header, as tools/warren-perf/ring.c: no liburing.
 *
 * Receives take a buffer from a ring of provided buffers when data arrives
 * (so an idle connection holds no buffer) and are copied into the
 * connection's input at once; sends are the connection's output chains,
 * moved into a buffer of the socket's own so nothing appended meanwhile can
 * move them. Completions are reaped inside the interposed epoll_wait, where
 * they activate the connections' events; libevent then runs those at their
 * priorities as if epoll had reported the sockets.
 */
#include "broker/base/ring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "broker/base/log.h"

#define SQ_ENTRIES   1024
#define CQ_ENTRIES   16384
#define BUF_COUNT    256 /* provided receive buffers, a power of two */
#define BUF_SIZE     4096
#define BUF_GROUP    0
#define IOV_MAX_SEND 64
#define SEND_WAIT_MS 1

/* The low bits of a user_data: what completed. Sockets are malloc'ed, so 8-aligned. */
enum { OP_IGNORE = 0, OP_RECV = 1, OP_SEND = 2, OP_POLL = 3, OP_MASK = 7 };

struct wr_ring_sock {
    int fd;
    struct evbuffer *in;
    struct event *readable, *sent;
    bool reading;   /* the owner wants input */
    bool receiving; /* a receive is in flight */
    bool sending;   /* a send is in flight */
    bool closed;    /* the owner is gone */
    bool eof;
    int rerr, serr;
    size_t got;             /* octets appended to `in` since the owner last asked */
    size_t max;             /* the size of the next receive */
    struct evbuffer *queue; /* the send's octets, front first */
    struct iovec iov[IOV_MAX_SEND];
    struct msghdr msg;
};

static struct {
    int fd;    /* -1: not in use */
    int epfd;  /* libevent's, learnt from its first wait; -1 before */
    bool poll; /* a poll of epfd is in flight */
    unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *sqe_map;
    size_t sq_map_len, sqe_map_len;
    unsigned queued; /* SQEs written, not handed in */
    unsigned sends;  /* of which sends: hand them in before a non-blocking wait returns */
    struct io_uring_buf_ring *bufs;
    size_t bufs_len;
    uint8_t *buf_mem;
    unsigned open; /* sockets not yet freed */
} ring = {.fd = -1, .epfd = -1};

static __thread bool ring_thread; /* the loop's thread */

static int sys_enter(unsigned submit, unsigned min, unsigned flags, const void *arg, size_t argsz)
{
    return (int)syscall(__NR_io_uring_enter, ring.fd, submit, min, flags, arg, argsz);
}

/* Hands in what is queued; on failure the SQEs stay queued for the next call. */
static void ring_submit(void)
{
    int rc = sys_enter(ring.queued, 0, 0, NULL, 0);

    if (rc > 0)
        ring.queued -= (unsigned)rc;
    ring.sends = 0;
}

static struct io_uring_sqe *ring_sqe(uint8_t op, int fd, uint64_t ud)
{
    unsigned tail, idx;
    struct io_uring_sqe *s;

    if (ring.queued >= SQ_ENTRIES)
        ring_submit();
    tail = *ring.sq_tail;
    idx = tail & *ring.sq_mask;
    s = &ring.sqes[idx];
    memset(s, 0, sizeof(*s));
    s->opcode = op;
    s->fd = fd;
    s->user_data = ud;
    ring.sq_array[idx] = idx;
    __atomic_store_n(ring.sq_tail, tail + 1, __ATOMIC_RELEASE);
    ring.queued++;
    return s;
}

static void buf_give(unsigned bid)
{
    uint16_t tail = ring.bufs->tail;
    struct io_uring_buf *b = &ring.bufs->bufs[tail & (BUF_COUNT - 1)];

    b->addr = (uint64_t)(uintptr_t)(ring.buf_mem + (size_t)bid * BUF_SIZE);
    b->len = BUF_SIZE;
    b->bid = (uint16_t)bid;
    __atomic_store_n(&ring.bufs->tail, (uint16_t)(tail + 1), __ATOMIC_RELEASE);
}

static void ring_unmap(void)
{
    if (ring.bufs)
        munmap(ring.bufs, ring.bufs_len);
    free(ring.buf_mem);
    if (ring.sqe_map)
        munmap(ring.sqe_map, ring.sqe_map_len);
    if (ring.sq_map)
        munmap(ring.sq_map, ring.sq_map_len);
    if (ring.fd >= 0)
        close(ring.fd);
    ring.bufs = NULL;
    ring.buf_mem = NULL;
    ring.sqe_map = ring.sq_map = NULL;
    ring.fd = -1;
}

static bool ring_map(const struct io_uring_params *p)
{
    uint8_t *sq;

    ring.sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    if (p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe) > ring.sq_map_len)
        ring.sq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    ring.sq_map = mmap(NULL, ring.sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                       IORING_OFF_SQ_RING);
    ring.sqe_map_len = p->sq_entries * sizeof(struct io_uring_sqe);
    ring.sqe_map = mmap(NULL, ring.sqe_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                        IORING_OFF_SQES);
    if (ring.sq_map == MAP_FAILED || ring.sqe_map == MAP_FAILED) {
        if (ring.sq_map == MAP_FAILED)
            ring.sq_map = NULL;
        if (ring.sqe_map == MAP_FAILED)
            ring.sqe_map = NULL;
        return false;
    }
    sq = ring.sq_map;
    ring.sq_tail = (unsigned *)(sq + p->sq_off.tail);
    ring.sq_mask = (unsigned *)(sq + p->sq_off.ring_mask);
    ring.sq_array = (unsigned *)(sq + p->sq_off.array);
    ring.sq_flags = (unsigned *)(sq + p->sq_off.flags);
    ring.cq_head = (unsigned *)(sq + p->cq_off.head);
    ring.cq_tail = (unsigned *)(sq + p->cq_off.tail);
    ring.cq_mask = (unsigned *)(sq + p->cq_off.ring_mask);
    ring.cqes = (struct io_uring_cqe *)(sq + p->cq_off.cqes);
    ring.sqes = ring.sqe_map;
    return true;
}

/* The provided receive buffers. */
static bool ring_bufs(void)
{
    struct io_uring_buf_reg reg = {0};

    ring.bufs_len = BUF_COUNT * sizeof(struct io_uring_buf);
    ring.bufs = mmap(NULL, ring.bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring.bufs == MAP_FAILED) {
        ring.bufs = NULL;
        return false;
    }
    ring.buf_mem = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (!ring.buf_mem)
        return false;
    reg.ring_addr = (uint64_t)(uintptr_t)ring.bufs;
    reg.ring_entries = BUF_COUNT;
    reg.bgid = BUF_GROUP;
    if (syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0)
        return false;
    ring.bufs->tail = 0;
    for (unsigned i = 0; i < BUF_COUNT; i++)
        buf_give(i);
    return true;
}

bool wr_ring_start(void)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                 IORING_SETUP_CQSIZE,
        .cq_entries = CQ_ENTRIES,
    };
    const char *why;

    ring.fd = (int)syscall(__NR_io_uring_setup, SQ_ENTRIES, &p);
    if (ring.fd < 0) {
        wr_log_info("io_uring: not used (io_uring_setup: %s); connections use epoll", strerror(errno));
        return false;
    }
    why = !(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_EXT_ARG) ||
                  !(p.features & IORING_FEAT_NODROP)
              ? "the kernel's io_uring lacks a feature it needs"
          : !ring_map(&p) ? "cannot map the ring"
          : !ring_bufs()  ? "cannot register receive buffers"
                          : NULL;
    if (why) {
        wr_log_info("io_uring: not used (%s); connections use epoll", why);
        ring_unmap();
        return false;
    }
    ring_thread = true;
    ring.epfd = -1;
    ring.poll = false;
    return true;
}

/* --- sockets ------------------------------------------------------------ */

static uint64_t sock_ud(const wr_ring_sock_t *s, unsigned op)
{
    return (uint64_t)(uintptr_t)s | op;
}

static void sock_free_if_done(wr_ring_sock_t *s)
{
    if (!s->closed || s->receiving || s->sending)
        return;
    evbuffer_free(s->queue);
    free(s);
    ring.open--;
}

wr_ring_sock_t *wr_ring_sock_new(int fd, struct evbuffer *in, struct event *readable, struct event *sent)
{
    wr_ring_sock_t *s;

    /* Until libevent has waited once through epoll_wait below, nothing says it will. */
    if (ring.fd < 0 || ring.epfd < 0 || !ring_thread)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->queue = evbuffer_new())) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->in = in;
    s->readable = readable;
    s->sent = sent;
    s->msg.msg_iov = s->iov;
    ring.open++;
    return s;
}

static void sock_recv(wr_ring_sock_t *s)
{
    struct io_uring_sqe *q = ring_sqe(IORING_OP_RECV, s->fd, sock_ud(s, OP_RECV));

    q->len = (unsigned)(s->max < BUF_SIZE ? s->max : BUF_SIZE);
    q->flags = IOSQE_BUFFER_SELECT;
    q->buf_group = BUF_GROUP;
    s->receiving = true;
}

/* Whether the owner has something to look at. */
static bool sock_has_input(const wr_ring_sock_t *s)
{
    return s->got > 0 || s->eof || s->rerr != 0;
}

void wr_ring_sock_reads(wr_ring_sock_t *s, bool on, size_t max)
{
    s->reading = on;
    s->max = max;
    if (!on)
        return;
    if (sock_has_input(s))
        event_active(s->readable, EV_READ, 1);
    else if (!s->receiving && max > 0)
        sock_recv(s);
}

bool wr_ring_sock_reading(const wr_ring_sock_t *s)
{
    return s->reading;
}

ssize_t wr_ring_sock_received(wr_ring_sock_t *s)
{
    size_t got = s->got;

    s->got = 0;
    if (got > 0)
        return (ssize_t)got;
    if (s->rerr != 0)
        return -s->rerr;
    return s->eof ? 0 : -EAGAIN;
}

/* A send of the queue's first IOV_MAX_SEND chains: a plain send when there is one. */
static void sock_send_queue(wr_ring_sock_t *s)
{
    struct io_uring_sqe *q;
    int n = evbuffer_peek(s->queue, -1, NULL, (struct evbuffer_iovec *)s->iov, IOV_MAX_SEND);

    if (n == 1) {
        q = ring_sqe(IORING_OP_SEND, s->fd, sock_ud(s, OP_SEND));
        q->addr = (uint64_t)(uintptr_t)s->iov[0].iov_base;
        q->len = (unsigned)s->iov[0].iov_len;
    } else {
        s->msg.msg_iovlen = (size_t)(n < IOV_MAX_SEND ? n : IOV_MAX_SEND);
        q = ring_sqe(IORING_OP_SENDMSG, s->fd, sock_ud(s, OP_SEND));
        q->addr = (uint64_t)(uintptr_t)&s->msg;
        q->len = 1;
    }
    q->msg_flags = MSG_NOSIGNAL;
    s->sending = true;
    ring.sends++;
}

void wr_ring_sock_send(wr_ring_sock_t *s, struct evbuffer *out, size_t max)
{
    size_t len = evbuffer_get_length(out);

    if (s->sending || len == 0)
        return;
    /* The bufferevent keeps the output's front frozen but for its own writes. */
    evbuffer_unfreeze(out, 1);
    evbuffer_remove_buffer(out, s->queue, len < max ? len : max);
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(s->queue) > 0)
        sock_send_queue(s);
}

size_t wr_ring_sock_unsent(const wr_ring_sock_t *s)
{
    return evbuffer_get_length(s->queue);
}

int wr_ring_sock_send_error(wr_ring_sock_t *s)
{
    int e = s->serr;

    s->serr = 0;
    return e;
}

void wr_ring_sock_close(wr_ring_sock_t *s)
{
    if (!s)
        return;
    s->closed = true;
    s->in = NULL;
    s->readable = s->sent = NULL;
    if (s->receiving)
        ring_sqe(IORING_OP_ASYNC_CANCEL, -1, OP_IGNORE)->addr = sock_ud(s, OP_RECV);
    if (s->sending)
        ring_sqe(IORING_OP_ASYNC_CANCEL, -1, OP_IGNORE)->addr = sock_ud(s, OP_SEND);
    sock_free_if_done(s);
}

/* --- completions -------------------------------------------------------- */

static void on_recv(wr_ring_sock_t *s, const struct io_uring_cqe *cqe)
{
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;

    s->receiving = false;
    if (cqe->res > 0 && has_buf && !s->closed) {
        /* The socket bufferevent keeps its input's end frozen but for its own reads. */
        evbuffer_unfreeze(s->in, 0);
        if (evbuffer_add(s->in, ring.buf_mem + (size_t)bid * BUF_SIZE, (size_t)cqe->res) == 0)
            s->got += (size_t)cqe->res;
        else
            s->rerr = ENOMEM;
        evbuffer_freeze(s->in, 0);
    } else if (cqe->res == 0) {
        s->eof = true;
    } else if (cqe->res == -ENOBUFS || cqe->res == -EINTR || cqe->res == -EAGAIN) {
        if (!s->closed && s->reading)
            sock_recv(s); /* no buffer free right then: again with the next submission */
    } else if (cqe->res < 0 && cqe->res != -ECANCELED) {
        s->rerr = -cqe->res;
    }
    if (has_buf)
        buf_give(bid);
    if (s->closed)
        sock_free_if_done(s);
    else if (s->reading && sock_has_input(s))
        event_active(s->readable, EV_READ, 1);
}

static void on_send(wr_ring_sock_t *s, const struct io_uring_cqe *cqe)
{
    s->sending = false;
    if (cqe->res > 0)
        evbuffer_drain(s->queue, (size_t)cqe->res);
    else
        s->serr = cqe->res == 0 ? EPIPE : -cqe->res;
    if (s->serr != 0 || s->closed)
        evbuffer_drain(s->queue, evbuffer_get_length(s->queue));
    else if (evbuffer_get_length(s->queue) > 0) {
        sock_send_queue(s); /* a short send: the rest */
        return;
    }
    if (s->closed)
        sock_free_if_done(s);
    else
        event_active(s->sent, EV_WRITE, 1);
}

/* Runs every completion the kernel has posted; true if libevent's descriptor is readable. */
static bool ring_reap(void)
{
    unsigned head = *ring.cq_head, tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
    bool epfd_ready = false;

    for (; head != tail; head++) {
        const struct io_uring_cqe *cqe = &ring.cqes[head & *ring.cq_mask];
        wr_ring_sock_t *s = (wr_ring_sock_t *)(uintptr_t)(cqe->user_data & ~(uint64_t)OP_MASK);

        switch (cqe->user_data & OP_MASK) {
        case OP_RECV:
            on_recv(s, cqe);
            break;
        case OP_SEND:
            on_send(s, cqe);
            break;
        case OP_POLL:
            ring.poll = false;
            epfd_ready = true;
            break;
        default:
            break;
        }
    }
    __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
    return epfd_ready;
}

static int real_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    return (int)syscall(SYS_epoll_wait, epfd, events, maxevents, timeout);
}

/*
 * The loop's wait. Hands in the pass's receives and sends, and unless
 * libevent asked not to wait (timeout 0: it has callbacks to run), waits for
 * a completion or libevent's next timer. Returns libevent's own ready
 * descriptors when the poll of its epoll descriptor fired, else 0, as
 * epoll_wait would after a timeout; the completions have activated the
 * connections' events by then.
 */
static int ring_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    struct __kernel_timespec ts = {timeout / 1000, (long long)(timeout % 1000) * 1000000};
    struct io_uring_getevents_arg arg = {.sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts};
    unsigned flags = *(volatile unsigned *)ring.sq_flags;
    bool epfd_ready;
    int rc, n;

    if (!ring.poll) {
        ring_sqe(IORING_OP_POLL_ADD, epfd, OP_POLL)->poll32_events = EPOLLIN;
        ring.poll = true;
    }
    if (timeout != 0) {
        /* A send almost always completes as it is handed in, and its
         * completion alone would end the wait at once, costing a second
         * io_uring_enter per pass: wait for one completion more per send. One
         * that did not complete (a full socket) could then hold back another
         * completion, so that wait is cut to SEND_WAIT_MS. */
        unsigned min = 1 + ring.sends;

        if (ring.sends > 0 && (timeout < 0 || timeout > SEND_WAIT_MS))
            ts = (struct __kernel_timespec){0, SEND_WAIT_MS * 1000000LL};
        rc = sys_enter(ring.queued, min,
                       IORING_ENTER_GETEVENTS | (timeout > 0 || ring.sends > 0 ? IORING_ENTER_EXT_ARG : 0),
                       timeout > 0 || ring.sends > 0 ? &arg : NULL,
                       timeout > 0 || ring.sends > 0 ? sizeof(arg) : 0);
        if (rc < 0 && errno != ETIME && errno != EINTR && errno != EBUSY)
            return -1;
        if (rc > 0)
            ring.queued -= (unsigned)rc;
        ring.sends = 0;
    } else if (ring.sends > 0 || (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) ||
               ring.queued >= SQ_ENTRIES / 2) {
        rc = sys_enter(ring.queued, 0, IORING_ENTER_GETEVENTS, NULL, 0);
        if (rc > 0)
            ring.queued -= (unsigned)rc;
        ring.sends = 0;
    }
    epfd_ready = ring_reap();
    if (!epfd_ready)
        return 0;
    n = real_epoll_wait(epfd, events, maxevents, 0);
    return n;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    if (!ring_thread || ring.fd < 0)
        return real_epoll_wait(epfd, events, maxevents, timeout);
    if (ring.epfd < 0) {
        ring.epfd = epfd;
        wr_log_info("io_uring: plain-TCP connections use io_uring");
    }
    if (epfd != ring.epfd)
        return real_epoll_wait(epfd, events, maxevents, timeout);
    return ring_wait(epfd, events, maxevents, timeout);
}

void wr_ring_stop(void)
{
    struct __kernel_timespec ts = {0, 100 * 1000000};
    struct io_uring_getevents_arg arg = {.sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts};

    if (ring.fd < 0)
        return;
    if (ring.poll)
        ring_sqe(IORING_OP_POLL_REMOVE, -1, OP_IGNORE)->addr = OP_POLL;
    /* Every socket was closed with its connection; wait for their cancellations (bounded). */
    for (int i = 0; i < 50 && (ring.open > 0 || ring.poll); i++) {
        int rc = sys_enter(ring.queued, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));

        if (rc > 0)
            ring.queued -= (unsigned)rc;
        ring_reap();
    }
    if (ring.open > 0)
        wr_log_warn("io_uring: %u socket(s) still busy at exit", ring.open);
    ring_thread = false;
    ring_unmap();
}
