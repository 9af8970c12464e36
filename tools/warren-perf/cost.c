/* SPDX-License-Identifier: MIT */
/*
 * warren-cost: what this machine charges for the two things an event-loop
 * broker cannot avoid per unbatched message, measured in CPU time as the
 * benchmark measures brokers (docs/PERFORMANCE.md, "The floor: what a
 * crossing costs"):
 *
 *   syscall_us  one system call that does nothing (getppid), entry and exit;
 *   round_us    one side of a one-byte ping-pong between two processes over
 *               a pair of pipes, each side sleeping in epoll_wait until the
 *               other writes: a sleep, a wake-up and three system calls;
 *   wake_us     round_us less those three system calls: a sleep and a
 *               wake-up alone.
 *
 * The two processes are not pinned, as neither broker is in the benchmark.
 * Prints one JSON object.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void die(const char *what)
{
    fprintf(stderr, "warren-cost: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double syscall_us(long n)
{
    double t0 = cpu_us();

    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return (cpu_us() - t0) / (double)n;
}

/* One side: n rounds of (sleep in epoll_wait on in, read a byte, write it to
 * out); the side that serves first writes before its first sleep. Returns
 * this process's CPU per round. */
static double pingpong(int in, int out, long n, int serve_first)
{
    struct epoll_event ev = {.events = EPOLLIN}, got;
    int ep = epoll_create1(0);
    char b = 0;
    double t0;

    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev) != 0)
        die("epoll");
    t0 = cpu_us();
    if (serve_first && write(out, &b, 1) != 1)
        die("write");
    for (long i = 0; i < n; i++) {
        if (epoll_wait(ep, &got, 1, -1) != 1 || read(in, &b, 1) != 1)
            die("epoll_wait or read");
        if ((i + 1 < n || !serve_first) && write(out, &b, 1) != 1)
            die("write");
    }
    close(ep);
    return cpu_us() - t0;
}

static double round_us(long n)
{
    int ab[2], ba[2], report[2];
    double mine, theirs;
    pid_t child;

    if (pipe(ab) != 0 || pipe(ba) != 0 || pipe(report) != 0)
        die("pipe");
    child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        double cpu = pingpong(ab[0], ba[1], n, 0);

        if (write(report[1], &cpu, sizeof(cpu)) != (ssize_t)sizeof(cpu))
            die("write");
        _exit(0);
    }
    mine = pingpong(ba[0], ab[1], n, 1);
    if (read(report[0], &theirs, sizeof(theirs)) != (ssize_t)sizeof(theirs))
        die("read");
    waitpid(child, NULL, 0);
    return (mine + theirs) / 2 / (double)n;
}

int main(int argc, char **argv)
{
    long calls = 1000000, rounds = 20000;
    double sys, rnd;
    int opt;

    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n' && (calls = atol(optarg)) > 0)
            continue;
        if (opt == 'r' && (rounds = atol(optarg)) > 0)
            continue;
        fprintf(stderr, "usage: warren-cost [-n SYSCALLS] [-r ROUNDS]\n");
        return 2;
    }
    sys = syscall_us(calls);
    rnd = round_us(rounds);
    printf(
        "{\"syscall_us\": %.3f, \"round_us\": %.3f, \"wake_us\": %.3f, \"syscalls\": %ld, \"rounds\": %ld}\n",
        sys, rnd, rnd - 3 * sys, calls, rounds);
    return 0;
}
