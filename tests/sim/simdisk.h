/* SPDX-License-Identifier: MIT */
/*
 * simdisk: an in-memory, deterministic, fault-injecting file system behind
 * the storage/vfs.h vtable, for unit tests and the simulator. Each file keeps
 * the image an fdatasync made durable and the writes made since; each
 * directory keeps the entries an fsync of it made durable. A crash throws the
 * rest away (or keeps a random prefix of it: torn writes). One seed, one run.
 */
#ifndef WR_TESTS_SIM_SIMDISK_H
#define WR_TESTS_SIM_SIMDISK_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/vfs.h"

typedef struct wr_simdisk_s wr_simdisk_t;

typedef struct {
    uint64_t writes;    /* pwrite calls */
    uint64_t datasyncs; /* wr_vfs_datasync calls */
    uint64_t dirsyncs;  /* wr_vfs_sync_dir calls */
    uint64_t syncalls;  /* wr_vfs_sync_all calls */
    uint64_t crashes;
} wr_simdisk_stats_t;

/*
 * A new, empty disk whose random choices (torn-write lengths) come from seed.
 * Paths are '/'-separated; a path without '/' lives in the root directory,
 * which always exists; other directories are made with wr_vfs_mkdir. NULL on
 * allocation failure. Not thread-safe: one thread uses a disk at a time.
 */
wr_simdisk_t *wr_simdisk_new(uint64_t seed);

/* Frees the disk and every file in it. Files still open must be closed first. NULL is a no-op. */
void wr_simdisk_free(wr_simdisk_t *d);

/* The disk's vtable; valid until wr_simdisk_free. */
const wr_vfs_t *wr_simdisk_vfs(wr_simdisk_t *d);

/*
 * The machine loses power. Every directory goes back to the entries its last
 * wr_vfs_sync_dir made durable (entries under a directory whose own entry
 * was not durable go too), every file to its last wr_vfs_datasync image.
 * With torn, each file instead keeps a random prefix of the writes and
 * truncations made since, the last of them possibly cut short at any byte
 * (a torn write, a partial sector). Files open before the crash may only be
 * closed afterwards.
 */
void wr_simdisk_crash(wr_simdisk_t *d, bool torn);

/*
 * Flips bit (0..7) of the byte at offset in path, in its durable image and
 * in what reads see: the disk lying about data it had stored. WR_OK, or
 * WR_ENOENT when the file is absent or offset is past its end.
 */
int wr_simdisk_flip_bit(wr_simdisk_t *d, const char *path, uint64_t offset, unsigned bit);

/*
 * The next n wr_vfs_datasync or wr_vfs_sync_all calls fail with WR_EIO and make nothing
 * durable (a disk error, or a crash between a write and its sync).
 */
void wr_simdisk_fail_syncs(wr_simdisk_t *d, unsigned n);

/* The size reads see of path into *out; WR_ENOENT if absent. */
int wr_simdisk_file_size(wr_simdisk_t *d, const char *path, uint64_t *out);

/* Counters since wr_simdisk_new. */
wr_simdisk_stats_t wr_simdisk_stats(const wr_simdisk_t *d);

/* The disk's deterministic generator (xorshift64*): a number in [0, n), n > 0. */
uint64_t wr_simdisk_rand(wr_simdisk_t *d, uint64_t n);

#endif
