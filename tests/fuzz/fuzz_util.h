/* SPDX-License-Identifier: MIT */
/*
 * What the broker-level fuzz harnesses share: the input as a file the real
 * loaders can open, scratch data directories on tmpfs, and a broker built
 * the way main.c builds one, minus the listeners.
 */
#ifndef WR_TESTS_FUZZ_UTIL_H
#define WR_TESTS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/mgmt/mgmt_internal.h"
#include "broker/server.h"

/* Writes data to an anonymous file and its /proc/self/fd path into path.
 * Returns the descriptor (close it when done); aborts on failure. */
int wr_fuzz_memfile(const uint8_t *data, size_t size, char path[64]);
/* A new empty directory on tmpfs, malloc'd; aborts on failure. */
char *wr_fuzz_tmpdir(void);
/* Removes dir and everything under it, and frees the string. */
void wr_fuzz_rmtree(char *dir);
/* Writes data to dir/name; aborts on failure. */
void wr_fuzz_write(const char *dir, const char *name, const uint8_t *data, size_t size);
/* The default configuration with its store in dir and one more vhost
 * "fuzz", logging errors only; NULL when the server refuses to start. */
wr_server_t *wr_fuzz_server_new(const char *dir);

/* One broker (wr_fuzz_server_new) for the whole process, for harnesses
 * whose inputs undo what they do; freed with its directory at exit. */
wr_server_t *wr_fuzz_shared_server(void);

/* A broker with the management API's statistics, for requests. */
typedef struct {
    wr_server_t *srv;
    wr_mgmt_stats_t *stats;
    char *dir;
} wr_fuzz_api_t;

/* A fresh broker (wr_fuzz_server_new) in a new directory; aborts on failure. */
void wr_fuzz_api_open(wr_fuzz_api_t *api);
/* Frees it and removes its directory. */
void wr_fuzz_api_close(wr_fuzz_api_t *api);
/*
 * Serves one request as the management API's evhttp callback does once the
 * user is authenticated: the query string parsed by libevent, the path split
 * by wr_mgmt_split_path, then wr_mgmt_route, as "guest" (an administrator).
 * Aborts if the handler does not reply. False when the request was refused
 * before routing, and for /api/nodes (which needs the listener's state).
 */
bool wr_fuzz_api_request(wr_fuzz_api_t *api, wr_mgmt_method_t method, const char *path, const char *query,
                         const uint8_t *body, size_t len);

#endif
