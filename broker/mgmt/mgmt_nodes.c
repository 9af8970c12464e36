/* SPDX-License-Identifier: MIT */
/*
 * /api/nodes (mgmt_nodes.h). A node's entry carries what RabbitMQ's does and
 * warren can measure: memory against the watermark, disk free against its
 * limit, file descriptors, AMQP sockets, uptime, its alarms and partitions.
 */
#include "broker/mgmt/mgmt_nodes.h"

#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker/cluster/cluster_json.h"
#include "broker/cluster/raftd.h"
#include "broker/mgmt/metrics.h"
#include "broker/node/alarm.h"

/* Open file descriptors of this process, or 0 when /proc cannot tell. */
static uint64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void wr_mgmt_node_sample(const wr_mgmt_env_t *env, wr_report_t *out)
{
    wr_alarm_status_t st = {0};
    struct timespec now;
    struct rlimit fds;
    wr_list_t *pos, *tmp;

    memset(out, 0, sizeof(*out));
    if (env->alarms) {
        wr_alarm_status(env->alarms, &st);
        out->mem_limit = st.mem_limit;
        out->disk_free = st.disk_free;
        out->disk_limit = st.disk_limit;
    }
    out->mem_alarm = st.memory;
    out->disk_alarm = st.disk;
    out->mem_used = env->alarms ? st.mem_used : wr_metrics_rss_bytes();
    out->fd_used = open_fds();
    if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY)
        out->fd_total = out->sockets_total = fds.rlim_cur;
    wr_list_foreach_safe(pos, tmp, env->conns)
    {
        out->sockets_used++;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    out->uptime_ms = (uint64_t)(now.tv_sec - env->started.tv_sec) * 1000 +
                     (uint64_t)((now.tv_nsec - env->started.tv_nsec) / 1000000);
    out->os_pid = (uint64_t)getpid();
    out->processors = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
}

/* A node's figures; the limits only when known (a node without alarms in tests). */
static int put_figures(json_t *node, const wr_report_t *r)
{
    char pid[32];

    snprintf(pid, sizeof(pid), "%llu", (unsigned long long)r->os_pid);
    if (json_object_update_new(node,
                               json_pack("{s:s, s:I, s:i, s:I, s:b, s:b, s:I, s:I}", "os_pid", pid, "uptime",
                                         (json_int_t)r->uptime_ms, "processors", (int)r->processors,
                                         "mem_used", (json_int_t)r->mem_used, "mem_alarm", r->mem_alarm,
                                         "disk_free_alarm", r->disk_alarm, "fd_used", (json_int_t)r->fd_used,
                                         "sockets_used", (json_int_t)r->sockets_used)) != 0)
        return -1;
    if (r->mem_limit &&
        json_object_update_new(node, json_pack("{s:I, s:I, s:I}", "mem_limit", (json_int_t)r->mem_limit,
                                               "disk_free", (json_int_t)r->disk_free, "disk_free_limit",
                                               (json_int_t)r->disk_limit)) != 0)
        return -1;
    if (r->fd_total &&
        json_object_update_new(node, json_pack("{s:I, s:I}", "fd_total", (json_int_t)r->fd_total,
                                               "sockets_total", (json_int_t)r->sockets_total)) != 0)
        return -1;
    return 0;
}

/* The nodes `name` is partitioned from, as this node can tell. */
static json_t *partitions(const wr_mgmt_env_t *env, const char *name, const char *self)
{
    json_t *arr = json_array();
    wr_peer_status_t st;

    for (size_t i = 0; arr && env->reports && strcmp(name, self) == 0 && i < wr_peer_count(env->peers); i++) {
        wr_peer_status(env->peers, i, &st);
        if (wr_reports_partitioned(env->reports, st.name))
            json_array_append_new(arr, json_string(st.name));
    }
    return arr;
}

/* This node's member of the metadata Raft group, as wr_rgroup_status sees it. */
static json_t *metadata_store(const wr_rgroup_t *g)
{
    wr_rgroup_status_t st;
    json_t *members = json_array();

    wr_rgroup_status(g, &st);
    for (size_t i = 0; members != NULL && i < st.n_members; i++)
        json_array_append_new(members, json_string(st.members[i]));
    return json_pack("{s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:o}", "role", st.role, "leader", st.leader,
                     "term", (json_int_t)st.term, "commit", (json_int_t)st.commit, "applied",
                     (json_int_t)st.applied, "last_index", (json_int_t)st.last_index, "snapshot_index",
                     (json_int_t)st.snapshot_index, "members", members);
}

static json_t *self_json(const wr_mgmt_env_t *env, const char *self)
{
    json_t *node = json_pack("{s:s, s:s, s:b, s:o}", "name", self, "type", "disc", "running", 1, "partitions",
                             partitions(env, self, self));
    wr_report_t r;

    wr_mgmt_node_sample(env, &r);
    if (node && put_figures(node, &r) != 0) {
        json_decref(node);
        return NULL;
    }
    if (node && env->peers)
        json_object_set_new(node, "cluster_links", wr_cluster_json_links(env->peers));
    if (node && env->meta_group)
        json_object_set_new(node, "metadata_store", metadata_store(env->meta_group));
    return node;
}

/* The i-th peer: running and, from its report, its figures and the peers it cannot reach while we can. */
static json_t *peer_json(const wr_mgmt_env_t *env, size_t i)
{
    json_t *node = wr_cluster_json_node(env->peers, i), *parts;
    wr_peer_status_t st;
    wr_report_t r;

    wr_peer_status(env->peers, i, &st);
    if (!node || !env->reports || !wr_reports_get(env->reports, st.name, &r))
        return node;
    parts = json_array();
    for (size_t j = 0; parts && j < wr_peer_count(env->peers); j++) {
        wr_peer_status_t other;
        bool reached = false;

        wr_peer_status(env->peers, j, &other);
        for (size_t k = 0; k < r.n_up; k++)
            reached |= wr_bytes_eq_str(r.up[k], other.name);
        if (j != i && other.up && !reached)
            json_array_append_new(parts, json_string(other.name));
    }
    if (!parts || json_object_set_new(node, "partitions", parts) != 0 || put_figures(node, &r) != 0) {
        json_decref(node);
        return NULL;
    }
    return node;
}

json_t *wr_mgmt_nodes_json(const wr_mgmt_env_t *env, const char *self)
{
    json_t *node = self_json(env, self), *all = node ? json_pack("[o]", node) : NULL;

    for (size_t i = 0; all && env->peers && i < wr_peer_count(env->peers); i++) {
        json_t *peer = peer_json(env, i);

        if (!peer || json_array_append_new(all, peer) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}
