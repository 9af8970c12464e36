/* SPDX-License-Identifier: MIT */
/*
 * How long opening many logs takes (a broker with 100,000 durable queues
 * opens one log per queue at start-up). Not a test: `meson test -C build
 * --benchmark storage-open-logs`, or run it with the number of logs and a
 * directory to use (made if missing, emptied of logs/ afterwards is the
 * caller's business). Prints the total and the cost per open of the first
 * and the last thousand, which stays flat when an open costs O(1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "storage/seglog.h"
#include "storage/store.h"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Opens logs [from, to) of the store; false with a message on failure. */
static bool open_range(wr_store_t *s, unsigned long from, unsigned long to)
{
    char name[32], err[512];

    for (unsigned long i = from; i < to; i++) {
        snprintf(name, sizeof(name), "q%016lx", i);
        if (wr_seglog_open(s, name, NULL, NULL, err, sizeof(err)) == NULL) {
            fprintf(stderr, "bench_open: %s\n", err);
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    const char *dir = argc > 2 ? argv[2] : "bench-open-logs.d";
    double t0, t1, t2, t3;
    char err[512];
    wr_store_t *s;

    if (n < 2000) {
        fprintf(stderr, "usage: bench_open [N >= 2000] [DIR]\n");
        return 2;
    }
    s = wr_store_open(dir, NULL, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "bench_open: %s\n", err);
        return 1;
    }
    t0 = now_ms();
    if (!open_range(s, 0, 1000))
        return 1;
    t1 = now_ms();
    if (!open_range(s, 1000, n - 1000))
        return 1;
    t2 = now_ms();
    if (!open_range(s, n - 1000, n))
        return 1;
    t3 = now_ms();
    printf("opened %lu logs in %.0f ms; per open: first 1000 %.1f us, last 1000 %.1f us\n", n, t3 - t0,
           t1 - t0, t3 - t2);
    wr_store_close(s);
    return 0;
}
