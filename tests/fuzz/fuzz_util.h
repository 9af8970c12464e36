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

#endif
