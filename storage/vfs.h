/* SPDX-License-Identifier: MIT */
/*
 * A small file-system vtable, so the write-ahead log's logic runs unchanged on
 * a real disk (wr_vfs_posix) and on a simulated one that loses unsynced
 * writes, tears them and flips bits (tests/sim/simdisk.h). Paths are plain
 * strings; a directory's entries become durable only through wr_vfs_sync_dir.
 */
#ifndef WR_STORAGE_VFS_H
#define WR_STORAGE_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wr_vfs_s wr_vfs_t;

/* An open file. Implementations embed it as their first member. */
typedef struct {
    const wr_vfs_t *vfs;
} wr_vfs_file_t;

/* Called once per entry name (never "." or ".."); a non-zero return stops the listing. */
typedef int (*wr_vfs_list_fn)(void *ud, const char *name);

/*
 * The operations. Every one returns WR_OK, WR_ENOENT (no such file or
 * directory), WR_EEXIST (create of an existing file) or WR_EIO (any other
 * failure; errno is set for the POSIX implementation).
 */
typedef struct {
    int (*open)(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out);
    void (*close)(wr_vfs_file_t *f);
    int (*pwrite)(wr_vfs_file_t *f, const void *p, size_t n, uint64_t off);
    int (*pread)(wr_vfs_file_t *f, void *p, size_t n, uint64_t off, size_t *got);
    int (*size)(wr_vfs_file_t *f, uint64_t *out);
    int (*datasync)(wr_vfs_file_t *f);
    int (*truncate)(wr_vfs_file_t *f, uint64_t size);
    int (*rename)(const wr_vfs_t *v, const char *from, const char *to);
    int (*unlink)(const wr_vfs_t *v, const char *path);
    int (*mkdir)(const wr_vfs_t *v, const char *path);
    int (*list)(const wr_vfs_t *v, const char *dir, wr_vfs_list_fn fn, void *ud);
    int (*sync_dir)(const wr_vfs_t *v, const char *dir);
    int (*sync_all)(const wr_vfs_t *v, const char *path);
} wr_vfs_ops_t;

struct wr_vfs_s {
    const wr_vfs_ops_t *ops;
    void *ud; /* the implementation's state */
};

/* The real file system. A static, immutable object: never freed, shareable by threads. */
const wr_vfs_t *wr_vfs_posix(void);

/*
 * Opens path read-write into *out; create=true creates it if absent (and
 * never fails with WR_EEXIST). The caller owns *out and closes it with
 * wr_vfs_close. WR_ENOENT if absent and !create.
 */
int wr_vfs_open(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out);
/* Closes f; NULL is a no-op. Never syncs. */
void wr_vfs_close(wr_vfs_file_t *f);
/* Writes all n bytes at off (extending the file). WR_OK or WR_EIO. Not durable until wr_vfs_datasync. */
int wr_vfs_pwrite(wr_vfs_file_t *f, const void *p, size_t n, uint64_t off);
/* Reads up to n bytes at off; *got < n only at the end of the file. WR_OK or WR_EIO. */
int wr_vfs_pread(wr_vfs_file_t *f, void *p, size_t n, uint64_t off, size_t *got);
/* The file's current size into *out. */
int wr_vfs_size(wr_vfs_file_t *f, uint64_t *out);
/* Makes the file's data durable (fdatasync). Does not make a new name durable: see wr_vfs_sync_dir. */
int wr_vfs_datasync(wr_vfs_file_t *f);
/* Cuts (or extends with zeros) the file to size. Not durable until wr_vfs_datasync. */
int wr_vfs_truncate(wr_vfs_file_t *f, uint64_t size);
/* Atomically renames from to to (replacing to). Durable after wr_vfs_sync_dir of the directory. */
int wr_vfs_rename(const wr_vfs_t *v, const char *from, const char *to);
/* Removes a file name. Durable after wr_vfs_sync_dir of the directory. */
int wr_vfs_unlink(const wr_vfs_t *v, const char *path);
/* Creates a directory; WR_EEXIST if it exists. Durable after wr_vfs_sync_dir of its parent. */
int wr_vfs_mkdir(const wr_vfs_t *v, const char *path);
/* Calls fn for every entry of dir, in no particular order; stops at fn's first non-zero return, which it
 * returns. */
int wr_vfs_list(const wr_vfs_t *v, const char *dir, wr_vfs_list_fn fn, void *ud);
/* Makes dir's entries (creations, renames, unlinks) durable (fsync of the directory). */
int wr_vfs_sync_dir(const wr_vfs_t *v, const char *dir);

/*
 * Makes everything written to the file system holding path durable: every
 * file's data and every directory's entries (syncfs). One call instead of
 * one fdatasync per file, for writes spread over many files.
 */
int wr_vfs_sync_all(const wr_vfs_t *v, const char *path);

#endif
