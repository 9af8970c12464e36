/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/base/ring.c: plain-TCP sockets read and written
 * through io_uring while libevent's loop waits in the ring. A loopback TCP
 * pair per test: the ring's end, and a plain blocking peer. Receives land in
 * the input and wake the reader only while reading is on; a send larger
 * than the peer's window completes once the peer reads, in order; end of
 * file and closing with operations in flight; and the loop's own timers and
 * descriptors keep working while it waits in io_uring_enter. Where the
 * kernel has no usable io_uring the tests say so and check nothing.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#include "broker/base/ring.h"
#include "tests/unit/runner.h"

typedef struct {
    struct event_base *base;
    int fd, peer; /* the ring's end, the test's end */
    struct evbuffer *in;
    struct event *readable, *sent;
    struct event *idle; /* libevent returns at once from a loop with no event at all */
    int nreadable, nsent;
    wr_ring_sock_t *s;
} fixture_t;

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    ((fixture_t *)arg)->nreadable++;
}

static void on_sent(evutil_socket_t fd, short what, void *arg)
{
    ((fixture_t *)arg)->nsent++;
}

static void tcp_pair(int *a, int *b)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, window = 65536;

    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *b = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(*b, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *a = accept(l, NULL, NULL);
    ck_assert_int_ge(*a, 0);
    close(l);
    /* Fixed buffers: no autotuning takes a big send whole. */
    setsockopt(*b, SOL_SOCKET, SO_RCVBUF, &window, sizeof(window));
    setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &window, sizeof(window));
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    evutil_make_socket_nonblocking(*a);
}

/* False (and a note) where the kernel's io_uring cannot be used. */
static bool setup(fixture_t *f)
{
    struct timeval hour = {3600, 0};

    memset(f, 0, sizeof(*f));
    if (!wr_ring_start()) {
        fprintf(stderr, "io_uring unavailable here: nothing checked\n");
        return false;
    }
    f->base = event_base_new();
    ck_assert_ptr_nonnull(f->base);
    f->idle = evtimer_new(f->base, on_sent, f);
    evtimer_add(f->idle, &hour);
    /* One wait, so the ring knows libevent's descriptor. */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    tcp_pair(&f->fd, &f->peer);
    f->in = evbuffer_new();
    f->readable = event_new(f->base, -1, 0, on_readable, f);
    f->sent = event_new(f->base, -1, 0, on_sent, f);
    f->s = wr_ring_sock_new(f->fd, f->in, f->readable, f->sent);
    ck_assert_ptr_nonnull(f->s);
    return true;
}

static void teardown(fixture_t *f)
{
    wr_ring_sock_close(f->s);
    event_free(f->readable);
    event_free(f->sent);
    event_free(f->idle);
    evbuffer_free(f->in);
    close(f->fd);
    close(f->peer);
    wr_ring_stop();
    event_base_free(f->base);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the loop a pass at a time until *counter reaches want (10 s at most). */
static void run_until(fixture_t *f, const int *counter, int want)
{
    double deadline = now() + 10;

    while (*counter < want && now() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    ck_assert_int_ge(*counter, want);
}

START_TEST(test_receives_into_the_input)
{
    fixture_t f;
    char got[16] = {0};

    if (!setup(&f))
        return;
    wr_ring_sock_reads(f.s, true, 4096);
    ck_assert_int_eq(write(f.peer, "hello", 5), 5);
    run_until(&f, &f.nreadable, 1);
    ck_assert_int_eq(wr_ring_sock_received(f.s), 5);
    ck_assert_int_eq(evbuffer_remove(f.in, got, sizeof(got)), 5);
    ck_assert_str_eq(got, "hello");
    /* Nothing more came: nothing to report. */
    ck_assert_int_eq(wr_ring_sock_received(f.s), -EAGAIN);
    /* The next receive is handed in only when asked for. */
    ck_assert_int_eq(write(f.peer, "again", 5), 5);
    wr_ring_sock_reads(f.s, true, 3);
    run_until(&f, &f.nreadable, 2);
    ck_assert_int_eq(wr_ring_sock_received(f.s), 3); /* at most `max` */
    teardown(&f);
}
END_TEST

START_TEST(test_reads_off_hold_the_wake_up)
{
    fixture_t f;
    struct timeval tick = {0, 50000};

    if (!setup(&f))
        return;
    wr_ring_sock_reads(f.s, true, 4096);
    wr_ring_sock_reads(f.s, false, 0); /* the receive stays in flight */
    ck_assert_int_eq(write(f.peer, "held", 4), 4);
    /* 50 ms of loop: the receive completes into the input, but nobody is woken. */
    event_base_loopexit(f.base, &tick);
    event_base_dispatch(f.base);
    ck_assert_int_eq(f.nreadable, 0);
    ck_assert_uint_eq(evbuffer_get_length(f.in), 4);
    wr_ring_sock_reads(f.s, true, 4096);
    run_until(&f, &f.nreadable, 1);
    ck_assert_int_eq(wr_ring_sock_received(f.s), 4);
    teardown(&f);
}
END_TEST

START_TEST(test_a_send_past_the_window_completes_in_order)
{
    fixture_t f;
    enum { SIZE = 8 * 1024 * 1024 };
    struct evbuffer *out = evbuffer_new();
    static unsigned char data[SIZE], back[SIZE];
    size_t have = 0;

    if (!setup(&f))
        return;
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (unsigned char)(i * 7 + i / 4099);
    evbuffer_add(out, data, SIZE);
    /* Bigger than the socket buffers: part of it waits for the peer to read. */
    wr_ring_sock_send(f.s, out, SIZE);
    ck_assert_uint_eq(evbuffer_get_length(out), 0);
    ck_assert_uint_eq(wr_ring_sock_unsent(f.s), SIZE);
    /* A second send waits for the first. */
    evbuffer_add(out, "tail", 4);
    wr_ring_sock_send(f.s, out, SIZE);
    ck_assert_uint_eq(evbuffer_get_length(out), 4);
    for (int i = 0; i < 5; i++)
        event_base_loop(f.base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(f.nsent, 0);
    while (have < SIZE) {
        ssize_t n = read(f.peer, back + have, SIZE - have);

        ck_assert_int_gt(n, 0);
        have += (size_t)n;
        event_base_loop(f.base, EVLOOP_NONBLOCK);
    }
    ck_assert(memcmp(data, back, SIZE) == 0);
    run_until(&f, &f.nsent, 1);
    ck_assert_uint_eq(wr_ring_sock_unsent(f.s), 0);
    ck_assert_int_eq(wr_ring_sock_send_error(f.s), 0);
    wr_ring_sock_send(f.s, out, SIZE);
    run_until(&f, &f.nsent, 2);
    ck_assert_int_eq(read(f.peer, back, 16), 4);
    ck_assert(memcmp(back, "tail", 4) == 0);
    evbuffer_free(out);
    teardown(&f);
}
END_TEST

START_TEST(test_end_of_file_and_send_error)
{
    fixture_t f;
    struct evbuffer *out = evbuffer_new();
    int err = 0;

    if (!setup(&f))
        return;
    wr_ring_sock_reads(f.s, true, 4096);
    shutdown(f.peer, SHUT_WR);
    run_until(&f, &f.nreadable, 1);
    ck_assert_int_eq(wr_ring_sock_received(f.s), 0);
    /* The peer is gone: a send fails (the first may still be taken), once. */
    close(f.peer);
    f.peer = -1;
    for (int i = 0; i < 10 && err == 0; i++) {
        int before = f.nsent;

        evbuffer_add(out, "x", 1);
        wr_ring_sock_send(f.s, out, 1);
        run_until(&f, &f.nsent, before + 1);
        err = wr_ring_sock_send_error(f.s);
    }
    ck_assert_msg(err == EPIPE || err == ECONNRESET, "send error %d", err);
    ck_assert_int_eq(wr_ring_sock_send_error(f.s), 0);
    evbuffer_free(out);
    teardown(&f);
}
END_TEST

START_TEST(test_close_with_operations_in_flight)
{
    fixture_t f;
    struct evbuffer *out = evbuffer_new();
    static unsigned char big[8 * 1024 * 1024];

    if (!setup(&f))
        return;
    wr_ring_sock_reads(f.s, true, 4096);
    evbuffer_add(out, big, sizeof(big));
    wr_ring_sock_send(f.s, out, sizeof(big));
    event_base_loop(f.base, EVLOOP_NONBLOCK);
    /* A receive and a send wait in the kernel; closing cancels both, and
     * LeakSanitizer finds the socket's memory freed once they complete. */
    wr_ring_sock_close(f.s);
    f.s = NULL;
    event_base_loop(f.base, EVLOOP_NONBLOCK);
    evbuffer_free(out);
    teardown(&f);
}
END_TEST

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    ++*(int *)arg;
}

START_TEST(test_timers_and_descriptors_still_fire)
{
    fixture_t f;
    int fired = 0, ready = 0, p[2];
    struct timeval ms20 = {0, 20000};
    struct event *t, *r;
    double t0;

    if (!setup(&f))
        return;
    /* A receive in flight, so the loop waits in the ring. */
    wr_ring_sock_reads(f.s, true, 4096);
    t = evtimer_new(f.base, on_timer, &fired);
    evtimer_add(t, &ms20);
    t0 = now();
    run_until(&f, &fired, 1);
    ck_assert(now() - t0 >= 0.019);
    ck_assert(now() - t0 < 5);
    /* A descriptor libevent watches itself. */
    ck_assert_int_eq(pipe(p), 0);
    r = event_new(f.base, p[0], EV_READ, on_timer, &ready);
    event_add(r, NULL);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    run_until(&f, &ready, 1);
    ck_assert_int_eq(f.nreadable, 0);
    event_free(t);
    event_free(r);
    close(p[0]);
    close(p[1]);
    teardown(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_receives_into_the_input);
    tcase_add_test(tc, test_reads_off_hold_the_wake_up);
    tcase_add_test(tc, test_a_send_past_the_window_completes_in_order);
    tcase_add_test(tc, test_end_of_file_and_send_error);
    tcase_add_test(tc, test_close_with_operations_in_flight);
    tcase_add_test(tc, test_timers_and_descriptors_still_fire);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
