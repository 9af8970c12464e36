/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the broker-level fuzz harnesses (fuzz_util.h). Scratch files go
 * to /dev/shm so that the fsyncs of the store and the topology cost nothing.
 */
#include "tests/fuzz/fuzz_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker/log.h"

static void write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);

        if (n <= 0)
            abort();
        data += n;
        size -= (size_t)n;
    }
}

int wr_fuzz_memfile(const uint8_t *data, size_t size, char path[64])
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);

    if (fd < 0)
        abort();
    write_all(fd, data, size);
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

char *wr_fuzz_tmpdir(void)
{
    char *dir = strdup(access("/dev/shm", W_OK) == 0 ? "/dev/shm/wr-fuzz-XXXXXX" : "/tmp/wr-fuzz-XXXXXX");

    if (dir == NULL || mkdtemp(dir) == NULL)
        abort();
    return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void wr_fuzz_rmtree(char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

void wr_fuzz_write(const char *dir, const char *name, const uint8_t *data, size_t size)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    write_all(fd, data, size);
    close(fd);
}

wr_server_t *wr_fuzz_server_new(const char *dir)
{
    wr_config_t *cfg = wr_config_new_default();
    char **vhosts;

    wr_log_set_level(WR_LOG_ERROR);
    if (cfg == NULL)
        abort();
    free(cfg->data_dir);
    vhosts = realloc(cfg->vhosts, (cfg->nvhosts + 1) * sizeof(*vhosts));
    if (vhosts == NULL || (cfg->data_dir = strdup(dir)) == NULL)
        abort();
    cfg->vhosts = vhosts;
    if ((cfg->vhosts[cfg->nvhosts] = strdup("fuzz")) == NULL)
        abort();
    cfg->nvhosts++;
    return wr_server_new(cfg, NULL);
}

/* The shared broker; a harness's only state across inputs. */
static struct {
    wr_server_t *srv;
    char *dir;
} shared;

static void shared_free(void)
{
    wr_server_free(shared.srv);
    wr_fuzz_rmtree(shared.dir);
}

wr_server_t *wr_fuzz_shared_server(void)
{
    if (shared.srv != NULL)
        return shared.srv;
    shared.dir = wr_fuzz_tmpdir();
    shared.srv = wr_fuzz_server_new(shared.dir);
    if (shared.srv == NULL)
        abort();
    atexit(shared_free);
    return shared.srv;
}
