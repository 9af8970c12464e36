/* SPDX-License-Identifier: MIT */
/*
 * A loopback port for a test's listener to bind later. The kernel's own
 * choice (bind to port 0) is an ephemeral port, which any outgoing
 * connection on the machine may take before the test binds it again: with
 * the integration shards' clients running beside the unit tests, one did.
 * So ports come from 8000-12999, below the ephemeral range (32768 up) and
 * outside every integration shard's range, at random and checked free with
 * a bind, since the normal and the sanitizer builds run the same unit tests
 * at the same time; never the same one twice in a process.
 */
#ifndef WR_TESTS_UNIT_CLUSTER_FREE_PORT_H
#define WR_TESTS_UNIT_CLUSTER_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WR_TEST_PORT_LO 8000
#define WR_TEST_PORT_N  5000

/* A free port in the range, or 0 when none was found. */
static inline uint16_t wr_test_free_port(void)
{
    static bool given[WR_TEST_PORT_N];
    static unsigned seed;

    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 1000; tries++) {
        unsigned k = (unsigned)rand_r(&seed) % WR_TEST_PORT_N;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)(WR_TEST_PORT_LO + k))};
        int fd;
        bool ok;

        if (given[k] || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
            continue;
        ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok) {
            given[k] = true;
            return (uint16_t)(WR_TEST_PORT_LO + k);
        }
    }
    return 0;
}

#endif
