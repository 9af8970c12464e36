/* SPDX-License-Identifier: MIT */
/*
 * The storage thread: performs one batch at a time (writes, one fdatasync per
 * dirty file, directory syncs, then deletions) and posts it back to the
 * owner. Also the small durable-file helpers the store uses at open.
 */
#ifndef WR_STORAGE_SYNC_H
#define WR_STORAGE_SYNC_H

#include <stddef.h>

#include "storage/store.h"

/* The thread's main function; arg is the wr_store_t. Returns when asked to stop. */
void *wr_sync_main(void *arg);

/*
 * Replaces dir/name with data: writes dir/name.tmp, fdatasyncs it, renames it
 * over dir/name. The caller fsyncs dir when it needs the rename durable.
 * WR_OK, or WR_EIO with what failed in msg.
 */
int wr_sync_replace_file(wr_store_t *s, const char *dir, const char *name, const void *data, size_t len,
                         char *msg, size_t msglen);

/* fsync of a directory, so entries created, renamed or removed in it are
 * durable. WR_OK, or WR_EIO with errno set. */
int wr_sync_dir(wr_store_t *s, const char *path);

/* Removes a directory that holds only plain files, and its files. WR_OK, or
 * WR_EIO with what failed in msg. */
int wr_sync_remove_dir(const char *path, char *msg, size_t msglen);

#endif
