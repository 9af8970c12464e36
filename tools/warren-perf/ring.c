/* SPDX-License-Identifier: MIT */
/*
 * warren-ring: the io_uring prototype of docs/PERFORMANCE.md ("io_uring:
 * the prototype"). Measures what relaying unbatched messages costs the
 * relaying thread with epoll (epoll_wait, read, write: what warrend's loop
 * does per wake) against io_uring (one io_uring_enter per wake that hands
 * in the sends and waits for the next receives), on the same loopback TCP
 * sockets and the same load. A publisher thread writes one message per
 * write() to each of N connections every 1/rate seconds; the relay copies
 * what each connection brings to its paired consumer connection; a consumer
 * thread reads them. Prints one JSON object: the relay thread's CPU
 * (getrusage RUSAGE_THREAD) and syscalls per message.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 64
#define BUF_BYTES 65536
#define SEND_TAG  (1ull << 32) /* in a send's user_data */

typedef struct {
    bool uring;     /* -m uring; else epoll */
    unsigned pairs; /* -n: publisher -> consumer connections */
    unsigned rate;  /* -r: messages a second per publisher */
    unsigned size;  /* -s: bytes per message */
    unsigned secs;  /* -z */
} opts_t;

typedef struct {
    const opts_t *o;
    int pub_cli[MAX_PAIRS], pub_srv[MAX_PAIRS]; /* publisher's end, relay's end */
    int con_cli[MAX_PAIRS], con_srv[MAX_PAIRS]; /* consumer's end, relay's end */
    uint64_t syscalls;                          /* the relay's */
    double user_s, sys_s;                       /* the relay thread's CPU */
    uint64_t received;                          /* bytes the consumer read */
} bench_t;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void nodelay(int fd)
{
    int one = 1;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        die("setsockopt");
}

/* A loopback TCP connection: *cli the dialling end, *srv the accepted one. */
static void tcp_pair(int lfd, const struct sockaddr_in *a, int *cli, int *srv)
{
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    if (*cli < 0 || connect(*cli, (const struct sockaddr *)a, sizeof(*a)) != 0)
        die("connect");
    if ((*srv = accept(lfd, NULL, NULL)) < 0)
        die("accept");
    nodelay(*cli);
    nodelay(*srv);
}

static void thread_cpu(double *user, double *sys)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------ epoll */

static void relay_epoll(bench_t *b)
{
    static char buf[BUF_BYTES];
    struct epoll_event ev[MAX_PAIRS];
    unsigned open = b->o->pairs;
    int ep = epoll_create1(0);

    if (ep < 0)
        die("epoll_create1");
    for (unsigned i = 0; i < b->o->pairs; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};

        if (epoll_ctl(ep, EPOLL_CTL_ADD, b->pub_srv[i], &e) != 0)
            die("epoll_ctl");
    }
    while (open > 0) {
        int n = epoll_wait(ep, ev, MAX_PAIRS, -1);

        b->syscalls++;
        for (int k = 0; k < n; k++) {
            unsigned i = ev[k].data.u32;
            ssize_t r = read(b->pub_srv[i], buf, sizeof(buf));

            b->syscalls++;
            if (r <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, b->pub_srv[i], NULL);
                shutdown(b->con_srv[i], SHUT_WR);
                open--;
                continue;
            }
            if (write(b->con_srv[i], buf, (size_t)r) != r)
                die("write");
            b->syscalls++;
        }
    }
    close(ep);
}

/* ---------------------------------------------------------------- io_uring */

typedef struct {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    unsigned queued; /* SQEs not yet handed in */
} ring_t;

static void ring_init(ring_t *r, unsigned entries)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    size_t sq_len, cq_len;
    uint8_t *sq, *cq;

    r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (r->fd < 0)
        die("io_uring_setup");
    sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (!(p.features & IORING_FEAT_SINGLE_MMAP))
        die("io_uring without IORING_FEAT_SINGLE_MMAP");
    sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
    sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED)
        die("mmap");
    cq = sq;
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        die("mmap");
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    r->queued = 0;
}

/* The next free SQE, zeroed. The ring is sized so that it never runs out. */
static struct io_uring_sqe *ring_sqe(ring_t *r)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct io_uring_sqe *s = &r->sqes[idx];

    memset(s, 0, sizeof(*s));
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    r->queued++;
    return s;
}

static void prep(struct io_uring_sqe *s, uint8_t op, int fd, void *buf, unsigned len, uint64_t ud)
{
    s->opcode = op;
    s->fd = fd;
    s->addr = (uint64_t)(uintptr_t)buf;
    s->len = len;
    s->user_data = ud;
}

static void relay_uring(bench_t *b)
{
    static char bufs[MAX_PAIRS][BUF_BYTES];
    unsigned open = b->o->pairs;
    ring_t r;

    ring_init(&r, 4 * MAX_PAIRS);
    for (unsigned i = 0; i < b->o->pairs; i++)
        prep(ring_sqe(&r), IORING_OP_RECV, b->pub_srv[i], bufs[i], BUF_BYTES, i);
    while (open > 0) {
        unsigned head, tail;
        int rc = (int)syscall(__NR_io_uring_enter, r.fd, r.queued, 1, IORING_ENTER_GETEVENTS, NULL, 0);

        b->syscalls++;
        if (rc < 0 && errno != EINTR)
            die("io_uring_enter");
        if (rc >= 0)
            r.queued -= (unsigned)rc;
        head = *r.cq_head;
        tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            struct io_uring_cqe *c = &r.cqes[head & *r.cq_mask];
            unsigned i = (unsigned)c->user_data;
            struct io_uring_sqe *s;

            if (c->user_data & SEND_TAG) { /* a send succeeds without a CQE */
                errno = -c->res;
                die("send");
            }
            if (c->res <= 0) { /* EOF or an error */
                shutdown(b->con_srv[i], SHUT_WR);
                open--;
                continue;
            }
            /* The send, then the next receive into the same buffer once the send is done. */
            s = ring_sqe(&r);
            prep(s, IORING_OP_SEND, b->con_srv[i], bufs[i], (unsigned)c->res, i | SEND_TAG);
            s->flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
            prep(ring_sqe(&r), IORING_OP_RECV, b->pub_srv[i], bufs[i], BUF_BYTES, i);
        }
        __atomic_store_n(r.cq_head, head, __ATOMIC_RELEASE);
    }
    close(r.fd);
}

/* ------------------------------------------------------------------ sides */

static void *relay_main(void *arg)
{
    bench_t *b = arg;
    double u0, s0;

    thread_cpu(&u0, &s0);
    if (b->o->uring)
        relay_uring(b);
    else
        relay_epoll(b);
    thread_cpu(&b->user_s, &b->sys_s);
    b->user_s -= u0;
    b->sys_s -= s0;
    return NULL;
}

static void *consumer_main(void *arg)
{
    static char buf[BUF_BYTES];
    bench_t *b = arg;
    struct epoll_event ev[MAX_PAIRS];
    unsigned open = b->o->pairs;
    int ep = epoll_create1(0);

    for (unsigned i = 0; i < b->o->pairs; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};

        epoll_ctl(ep, EPOLL_CTL_ADD, b->con_cli[i], &e);
    }
    while (open > 0) {
        int n = epoll_wait(ep, ev, MAX_PAIRS, -1);

        for (int k = 0; k < n; k++) {
            ssize_t r = read(b->con_cli[ev[k].data.u32], buf, sizeof(buf));

            if (r > 0) {
                b->received += (uint64_t)r;
            } else {
                epoll_ctl(ep, EPOLL_CTL_DEL, b->con_cli[ev[k].data.u32], NULL);
                open--;
            }
        }
    }
    close(ep);
    return NULL;
}

/* Every 1/rate s, one message to each publisher connection, one write each; then EOF. */
static void publish(bench_t *b)
{
    static char msg[BUF_BYTES];
    const opts_t *o = b->o;
    uint64_t period = 1000000000ull / o->rate, ticks = (uint64_t)o->secs * o->rate;
    struct timespec at;

    memset(msg, 'm', o->size);
    clock_gettime(CLOCK_MONOTONIC, &at);
    for (uint64_t t = 0; t < ticks; t++) {
        at.tv_nsec += (long)period;
        while (at.tv_nsec >= 1000000000L) {
            at.tv_nsec -= 1000000000L;
            at.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
            ;
        for (unsigned i = 0; i < o->pairs; i++)
            if (write(b->pub_cli[i], msg, o->size) != (ssize_t)o->size)
                die("publish");
    }
    for (unsigned i = 0; i < o->pairs; i++)
        shutdown(b->pub_cli[i], SHUT_WR);
}

static void usage(void)
{
    fprintf(stderr, "usage: warren-ring [-m epoll|uring] [-n PAIRS] [-r RATE] [-s SIZE] [-z SECS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.uring = false, .pairs = 4, .rate = 5000, .size = 16, .secs = 5};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    bench_t b = {.o = &o};
    pthread_t relay, consumer;
    uint64_t messages;
    int opt, lfd;

    while ((opt = getopt(argc, argv, "m:n:r:s:z:")) != -1) {
        switch (opt) {
        case 'm':
            o.uring = strcmp(optarg, "uring") == 0;
            if (!o.uring && strcmp(optarg, "epoll") != 0)
                usage();
            break;
        case 'n':
            o.pairs = (unsigned)atoi(optarg);
            break;
        case 'r':
            o.rate = (unsigned)atoi(optarg);
            break;
        case 's':
            o.size = (unsigned)atoi(optarg);
            break;
        case 'z':
            o.secs = (unsigned)atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (o.pairs < 1 || o.pairs > MAX_PAIRS || o.rate < 1 || o.size < 1 || o.size > BUF_BYTES || o.secs < 1)
        usage();
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 2 * MAX_PAIRS) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    for (unsigned i = 0; i < o.pairs; i++) {
        tcp_pair(lfd, &a, &b.pub_cli[i], &b.pub_srv[i]);
        tcp_pair(lfd, &a, &b.con_cli[i], &b.con_srv[i]);
    }
    if (pthread_create(&relay, NULL, relay_main, &b) != 0 ||
        pthread_create(&consumer, NULL, consumer_main, &b) != 0)
        die("pthread_create");
    publish(&b);
    pthread_join(relay, NULL);
    pthread_join(consumer, NULL);
    messages = b.received / o.size;
    printf("{\"mode\":\"%s\",\"pairs\":%u,\"rate\":%u,\"size\":%u,\"messages\":%llu,"
           "\"relay_cpu_us_per_msg\":%.3f,\"user_us\":%.3f,\"sys_us\":%.3f,\"syscalls_per_msg\":%.3f}\n",
           o.uring ? "uring" : "epoll", o.pairs, o.rate, o.size, (unsigned long long)messages,
           (b.user_s + b.sys_s) * 1e6 / (double)messages, b.user_s * 1e6 / (double)messages,
           b.sys_s * 1e6 / (double)messages, (double)b.syscalls / (double)messages);
    return 0;
}
