/* SPDX-License-Identifier: MIT */
/*
 * warren-hop: the multi-core prototype of docs/PERFORMANCE.md ("Using every
 * core"). Measures what a publish costs to cross from one loop to another:
 * a single-producer single-consumer ring between two threads pinned to two
 * CPUs, the consumer woken through an eventfd only when it said it sleeps,
 * at most once per batch. Prints one JSON object per run.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define RING_SLOTS 1024u /* a power of two; also the credit a sender has */
#define MSG_BYTES  256u  /* what a message drags across: its header and a small body */

typedef struct {
    uint64_t seq;
    uint8_t body[MSG_BYTES - sizeof(uint64_t)];
} msg_t;

/* The ring A -> B. head is written by B only, tail by A only; each on its own cache line. */
typedef struct {
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic bool sleeping; /* B is about to block, or blocked, on efd */
    _Alignas(64) msg_t *slot[RING_SLOTS];
    int efd;
} ring_t;

typedef struct {
    uint64_t messages; /* -n */
    unsigned batch;    /* -b: messages A pushes per loop iteration */
    unsigned gap_us;   /* -g: A sleeps this long between batches (0: flat out) */
    int cpu_a, cpu_b;  /* -a, -c: CPUs of A and B; -1: not pinned */
    bool local;        /* -l: no hop, B's work done by A itself (the one-loop baseline) */
} opts_t;

typedef struct {
    const opts_t *o;
    ring_t *ring;
    msg_t *msgs;
    uint64_t sum;    /* B: what it read, so the reads are not optimised away */
    uint64_t wakes;  /* A: eventfd writes */
    uint64_t sleeps; /* B: times it blocked */
    double cpu_s;    /* the thread's CPU time */
} side_t;

static double now_s(clockid_t c)
{
    struct timespec t;

    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        fprintf(stderr, "warren-hop: cannot pin to CPU %d\n", cpu);
}

/* B's work per message: read what A wrote (the cache lines move to B's core). */
static uint64_t consume(const msg_t *m)
{
    return m->seq + m->body[0] + m->body[sizeof(m->body) - 1];
}

/* B drains what is there; false when the ring is empty. */
static bool drain(side_t *b)
{
    uint64_t head = atomic_load_explicit(&b->ring->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&b->ring->tail, memory_order_acquire);

    if (head == tail)
        return false;
    for (; head != tail; head++)
        b->sum += consume(b->ring->slot[head % RING_SLOTS]);
    atomic_store_explicit(&b->ring->head, head, memory_order_release);
    return true;
}

static void *run_b(void *arg)
{
    side_t *b = arg;
    uint64_t seen = 0, v;

    pin(b->o->cpu_b);
    while (seen < b->o->messages) {
        uint64_t before = atomic_load_explicit(&b->ring->head, memory_order_relaxed);
        if (drain(b)) {
            seen += atomic_load_explicit(&b->ring->head, memory_order_relaxed) - before;
            continue;
        }
        /* Say "sleeping", then look again: A either sees the flag or B sees A's push. */
        atomic_store_explicit(&b->ring->sleeping, true, memory_order_seq_cst);
        if (atomic_load_explicit(&b->ring->tail, memory_order_seq_cst) == before) {
            b->sleeps++;
            if (read(b->ring->efd, &v, sizeof(v)) < 0 && errno != EINTR)
                break;
        }
        atomic_store_explicit(&b->ring->sleeping, false, memory_order_relaxed);
    }
    b->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

/* A pushes one batch (waiting for credit when the ring is full), then wakes B if it sleeps. */
static void push_batch(side_t *a, uint64_t *next)
{
    ring_t *r = a->ring;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed), end = *next + a->o->batch, one = 1;

    if (end > a->o->messages)
        end = a->o->messages;
    for (; *next < end; (*next)++, tail++) {
        msg_t *m = &a->msgs[*next % (RING_SLOTS * 2)];
        while (tail - atomic_load_explicit(&r->head, memory_order_acquire) >= RING_SLOTS)
            sched_yield();
        m->seq = *next;
        m->body[0] = (uint8_t)*next;
        r->slot[tail % RING_SLOTS] = m;
    }
    atomic_store_explicit(&r->tail, tail, memory_order_seq_cst);
    if (atomic_exchange_explicit(&r->sleeping, false, memory_order_seq_cst)) {
        a->wakes++;
        if (write(r->efd, &one, sizeof(one)) < 0)
            perror("warren-hop: eventfd");
    }
}

/* The baseline: the same messages, consumed on the producing thread. */
static void run_local(side_t *a, side_t *b)
{
    struct timespec gap = {0, (long)a->o->gap_us * 1000};

    for (uint64_t i = 0; i < a->o->messages; i++) {
        msg_t *m = &a->msgs[i % (RING_SLOTS * 2)];
        m->seq = i;
        m->body[0] = (uint8_t)i;
        b->sum += consume(m);
        if (a->o->gap_us > 0 && (i + 1) % a->o->batch == 0)
            nanosleep(&gap, NULL);
    }
}

static void run_a(side_t *a)
{
    struct timespec gap = {0, (long)a->o->gap_us * 1000};
    uint64_t next = 0;

    while (next < a->o->messages) {
        push_batch(a, &next);
        if (a->o->gap_us > 0)
            nanosleep(&gap, NULL);
    }
}

static int parse(int argc, char **argv, opts_t *o)
{
    int c;

    *o = (opts_t){.messages = 10000000, .batch = 64, .cpu_a = 0, .cpu_b = 1};
    while ((c = getopt(argc, argv, "n:b:g:a:c:l")) != -1) {
        switch (c) {
        case 'n':
            o->messages = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            o->batch = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'g':
            o->gap_us = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'a':
            o->cpu_a = atoi(optarg);
            break;
        case 'c':
            o->cpu_b = atoi(optarg);
            break;
        case 'l':
            o->local = true;
            break;
        default:
            return -1;
        }
    }
    if (o->messages == 0 || o->batch == 0 || o->batch > RING_SLOTS) {
        fprintf(stderr, "warren-hop: -n and -b must be positive, -b at most %u\n", RING_SLOTS);
        return -1;
    }
    return 0;
}

static void report(const opts_t *o, const side_t *a, const side_t *b, double wall)
{
    double n = (double)o->messages;

    printf("{\"mode\": \"%s\", \"messages\": %llu, \"batch\": %u, \"gap_us\": %u, \"wall_ns_per_msg\": %.1f, "
           "\"cpu_ns_per_msg_a\": %.1f, \"cpu_ns_per_msg_b\": %.1f, \"wakes\": %llu, \"sleeps\": %llu, "
           "\"check\": %llu}\n",
           o->local ? "local" : "hop", (unsigned long long)o->messages, o->batch, o->gap_us, wall / n * 1e9,
           a->cpu_s / n * 1e9, b->cpu_s / n * 1e9, (unsigned long long)a->wakes,
           (unsigned long long)b->sleeps, (unsigned long long)b->sum);
}

int main(int argc, char **argv)
{
    static ring_t ring;
    opts_t o;
    side_t a = {0}, b = {0};
    pthread_t tb;
    double t0;

    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: warren-hop [-n MESSAGES] [-b BATCH] [-g GAP_US] [-a CPU] [-c CPU] [-l]\n");
        return 2;
    }
    ring.efd = eventfd(0, EFD_CLOEXEC);
    a.msgs = calloc(RING_SLOTS * 2, sizeof(msg_t));
    if (ring.efd < 0 || a.msgs == NULL) {
        perror("warren-hop");
        return 1;
    }
    a.o = b.o = &o;
    a.ring = b.ring = &ring;
    pin(o.cpu_a);
    t0 = now_s(CLOCK_MONOTONIC);
    if (o.local) {
        run_local(&a, &b);
    } else {
        if (pthread_create(&tb, NULL, run_b, &b) != 0) {
            perror("warren-hop: pthread_create");
            return 1;
        }
        run_a(&a);
        pthread_join(tb, NULL);
    }
    a.cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID);
    report(&o, &a, &b, now_s(CLOCK_MONOTONIC) - t0);
    free(a.msgs);
    close(ring.efd);
    return 0;
}
