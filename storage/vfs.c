/* SPDX-License-Identifier: MIT */
/*
 * The vtable's dispatch functions and its POSIX implementation: open(2),
 * pwrite(2), fdatasync(2), fsync(2) of a directory fd, readdir(3). EINTR is
 * retried; short writes are continued.
 */
#include "storage/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

typedef struct {
    wr_vfs_file_t base;
    int fd;
} posix_file_t;

static int fail(void)
{
    if (errno == ENOENT)
        return WR_ENOENT;
    return errno == EEXIST ? WR_EEXIST : WR_EIO;
}

static int px_open(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out)
{
    posix_file_t *f = malloc(sizeof(*f));
    int fd;

    if (f == NULL)
        return WR_ENOMEM;
    fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) {
        int st = fail();
        free(f);
        return st;
    }
    f->base.vfs = v;
    f->fd = fd;
    *out = &f->base;
    return WR_OK;
}

static void px_close(wr_vfs_file_t *f)
{
    posix_file_t *pf = (posix_file_t *)f;

    close(pf->fd);
    free(pf);
}

static int px_pwrite(wr_vfs_file_t *f, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = pwrite(((posix_file_t *)f)->fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return WR_EIO;
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return WR_OK;
}

static int px_pread(wr_vfs_file_t *f, void *p, size_t n, uint64_t off, size_t *got)
{
    uint8_t *b = p;

    *got = 0;
    while (*got < n) {
        ssize_t r = pread(((posix_file_t *)f)->fd, b + *got, n - *got, (off_t)(off + *got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return WR_EIO;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return WR_OK;
}

static int px_size(wr_vfs_file_t *f, uint64_t *out)
{
    struct stat st;

    if (fstat(((posix_file_t *)f)->fd, &st) != 0)
        return WR_EIO;
    *out = (uint64_t)st.st_size;
    return WR_OK;
}

static int px_datasync(wr_vfs_file_t *f)
{
    return fdatasync(((posix_file_t *)f)->fd) == 0 ? WR_OK : WR_EIO;
}

static int px_truncate(wr_vfs_file_t *f, uint64_t size)
{
    return ftruncate(((posix_file_t *)f)->fd, (off_t)size) == 0 ? WR_OK : WR_EIO;
}

static int px_rename(const wr_vfs_t *v, const char *from, const char *to)
{
    return rename(from, to) == 0 ? WR_OK : fail();
}

static int px_unlink(const wr_vfs_t *v, const char *path)
{
    return unlink(path) == 0 ? WR_OK : fail();
}

static int px_mkdir(const wr_vfs_t *v, const char *path)
{
    return mkdir(path, 0755) == 0 ? WR_OK : fail();
}

static int px_list(const wr_vfs_t *v, const char *dir, wr_vfs_list_fn fn, void *ud)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = WR_OK;

    if (d == NULL)
        return fail();
    while (rc == WR_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = fn(ud, de->d_name);
    }
    closedir(d);
    return rc;
}

static int px_sync_dir(const wr_vfs_t *v, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return fail();
    rc = fsync(fd) == 0 ? WR_OK : WR_EIO;
    close(fd);
    return rc;
}

static int px_sync_all(const wr_vfs_t *v, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return fail();
    rc = syncfs(fd) == 0 ? WR_OK : WR_EIO;
    close(fd);
    return rc;
}

static const wr_vfs_ops_t posix_ops = {
    px_open,   px_close,  px_pwrite, px_pread, px_size,     px_datasync, px_truncate,
    px_rename, px_unlink, px_mkdir,  px_list,  px_sync_dir, px_sync_all,
};

static const wr_vfs_t posix_vfs = {&posix_ops, NULL};

const wr_vfs_t *wr_vfs_posix(void)
{
    return &posix_vfs;
}

int wr_vfs_open(const wr_vfs_t *v, const char *path, bool create, wr_vfs_file_t **out)
{
    return v->ops->open(v, path, create, out);
}

void wr_vfs_close(wr_vfs_file_t *f)
{
    if (f != NULL)
        f->vfs->ops->close(f);
}

int wr_vfs_pwrite(wr_vfs_file_t *f, const void *p, size_t n, uint64_t off)
{
    return f->vfs->ops->pwrite(f, p, n, off);
}

int wr_vfs_pread(wr_vfs_file_t *f, void *p, size_t n, uint64_t off, size_t *got)
{
    return f->vfs->ops->pread(f, p, n, off, got);
}

int wr_vfs_size(wr_vfs_file_t *f, uint64_t *out)
{
    return f->vfs->ops->size(f, out);
}

int wr_vfs_datasync(wr_vfs_file_t *f)
{
    return f->vfs->ops->datasync(f);
}

int wr_vfs_truncate(wr_vfs_file_t *f, uint64_t size)
{
    return f->vfs->ops->truncate(f, size);
}

int wr_vfs_rename(const wr_vfs_t *v, const char *from, const char *to)
{
    return v->ops->rename(v, from, to);
}

int wr_vfs_unlink(const wr_vfs_t *v, const char *path)
{
    return v->ops->unlink(v, path);
}

int wr_vfs_mkdir(const wr_vfs_t *v, const char *path)
{
    return v->ops->mkdir(v, path);
}

int wr_vfs_list(const wr_vfs_t *v, const char *dir, wr_vfs_list_fn fn, void *ud)
{
    return v->ops->list(v, dir, fn, ud);
}

int wr_vfs_sync_dir(const wr_vfs_t *v, const char *dir)
{
    return v->ops->sync_dir(v, dir);
}

int wr_vfs_sync_all(const wr_vfs_t *v, const char *path)
{
    return v->ops->sync_all(v, path);
}
