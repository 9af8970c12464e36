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

#include <event2/buffer.h>
#include <event2/http.h>

#include "broker/base/log.h"

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
    /* Small segments: a new one costs no more than the records it holds. */
    cfg->segment_size = 65536;
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

void wr_fuzz_api_open(wr_fuzz_api_t *api)
{
    api->dir = wr_fuzz_tmpdir();
    api->srv = wr_fuzz_server_new(api->dir);
    api->stats = api->srv ? wr_mgmt_stats_new(wr_server_mgmt_env(api->srv), 5000) : NULL;
    if (api->stats == NULL)
        abort();
}

void wr_fuzz_api_close(wr_fuzz_api_t *api)
{
    wr_mgmt_stats_free(api->stats);
    wr_server_free(api->srv);
    wr_fuzz_rmtree(api->dir);
}

/* Splits and routes r, which has its query parsed; false if not routed. */
static bool api_route(wr_mgmt_req_t *r, const char *path)
{
    if (!wr_mgmt_split_path(r, path) || strcmp(r->seg[0], "nodes") == 0)
        return false;
    for (size_t i = 0; i < r->nseg; i++) {
        if (r->seg[i] == NULL || strlen(r->seg[i]) > strlen(path))
            abort();
    }
    wr_mgmt_route(r);
    if (!r->replied)
        abort();
    return true;
}

bool wr_fuzz_api_request(wr_fuzz_api_t *api, wr_mgmt_method_t method, const char *path, const char *query,
                         const uint8_t *body, size_t len)
{
    wr_mgmt_req_t r = {
        .env = wr_server_mgmt_env(api->srv), .stats = api->stats, .node = "warren@fuzz", .method = method};
    bool routed = false;

    r.req = evhttp_request_new(NULL, NULL);
    r.account = wr_users_find(&wr_server_mgmt_env(api->srv)->cfg->auth, "guest", 5);
    if (r.req == NULL || r.account == NULL ||
        evbuffer_add(evhttp_request_get_input_buffer(r.req), body, len) != 0)
        abort();
    r.user = r.account->name;
    if (evhttp_parse_query_str(query, &r.query) == 0)
        routed = api_route(&r, path);
    /* A reply without a connection frees the request. */
    if (!r.replied)
        evhttp_request_free(r.req);
    for (size_t i = 0; i < r.nseg; i++)
        free(r.seg[i]);
    evhttp_clear_headers(&r.query);
    return routed;
}
