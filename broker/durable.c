/* SPDX-License-Identifier: MIT */
/*
 * The node's store and the durable topology. Group commit runs on the loop:
 * the first append (or pending ack) of a loop iteration activates the flush
 * event, which runs after the iteration's other callbacks and hands
 * everything to the storage thread at once; the store's eventfd, polled by
 * the loop, runs the durable callbacks that release publisher confirms. The
 * topology is saved whole (temporary file, fdatasync, rename, directory
 * fsync) in the flush event before the batch is handed over, so a message is
 * never durable, and so never confirmed, before the queue that holds it is.
 */
#include "broker/durable.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/alarm.h"
#include "broker/durable_defs.h"
#include "broker/log.h"
#include "broker/vhost.h"
#include "core/map.h"
#include "core/status.h"
#include "storage/store.h"

#define TOPOLOGY_FILE    "topology.json"
#define TOPOLOGY_FORMAT  "warren-topology"
#define TOPOLOGY_VERSION 1
/* After a failed topology save, the next attempt (nothing new becomes
 * durable meanwhile). */
#define SAVE_RETRY_SEC 1

struct wr_durable_s {
    wr_server_t *srv;
    wr_store_t *store;
    wr_qlog_ctx_t qlogs;
    struct event *flush_ev;
    struct event *notify_ev;
    bool flush_pending; /* flush_ev is active or waiting for a retry */
    bool flushing;      /* inside on_flush: appends there go with this flush */
    bool topology_dirty;
    json_t *saved_vhosts; /* "vhosts" of the loaded file: the part of unconfigured vhosts is kept */
};

/* ---------------------------------------------------------------- topology */

static int topology_save(wr_durable_t *d)
{
    json_t *vhosts = json_object(), *root;
    const char *name;
    json_t *v;
    wr_map_iter_t it = {0};
    wr_bytes_t key;
    void *vh;
    char err[1024], *text = NULL;
    int rc = WR_ENOMEM;

    if (vhosts == NULL)
        return WR_ENOMEM;
    /* Vhosts that are not configured any more keep what they had. */
    json_object_foreach(d->saved_vhosts, name, v)
    {
        if (wr_server_vhost(d->srv, wr_bytes_str(name)) == NULL && json_object_set(vhosts, name, v) != 0)
            goto out;
    }
    while (wr_map_next(wr_server_vhosts(d->srv), &it, &key, &vh)) {
        if (json_object_set_new(vhosts, wr_vhost_name(vh), wr_durable_defs_dump(vh)) != 0)
            goto out;
    }
    root =
        json_pack("{s:s,s:i,s:O}", "format", TOPOLOGY_FORMAT, "version", TOPOLOGY_VERSION, "vhosts", vhosts);
    if (root != NULL)
        text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        goto out;
    rc = wr_store_write_file(d->store, TOPOLOGY_FILE, text, strlen(text), err, sizeof(err));
    if (rc == WR_OK)
        d->topology_dirty = false;
    else
        wr_log_error("cannot save the durable topology: %s; nothing is confirmed until it is saved", err);
out:
    if (rc == WR_ENOMEM)
        wr_log_error("out of memory saving the durable topology");
    free(text);
    json_decref(vhosts);
    return rc;
}

/* Reads DIR/topology.json; *root is NULL when there is none (a new directory). */
static int topology_read(const char *dir, json_t **root)
{
    char path[4096];
    json_error_t jerr;
    const json_t *fmt, *ver;

    *root = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, TOPOLOGY_FILE);
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return WR_OK;
    *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL) {
        wr_log_error("cannot read the durable topology %s: line %d: %s", path, jerr.line, jerr.text);
        return WR_ESYNTAX;
    }
    fmt = json_object_get(*root, "format");
    ver = json_object_get(*root, "version");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), TOPOLOGY_FORMAT) != 0 ||
        !json_is_integer(ver) || !json_is_object(json_object_get(*root, "vhosts"))) {
        wr_log_error("%s is not a warren topology file", path);
        goto err;
    }
    if (json_integer_value(ver) != TOPOLOGY_VERSION) {
        wr_log_error("%s has format version %" JSON_INTEGER_FORMAT "; this build reads version %d only", path,
                     json_integer_value(ver), TOPOLOGY_VERSION);
        goto err;
    }
    return WR_OK;
err:
    json_decref(*root);
    *root = NULL;
    return WR_ESYNTAX;
}

/* ---------------------------------------------------------------- loop */

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    wr_durable_t *d = arg;

    if (d->topology_dirty && topology_save(d) != WR_OK) {
        struct timeval retry = {SAVE_RETRY_SEC, 0};

        event_add(d->flush_ev, &retry);
        return;
    }
    d->flush_pending = false;
    d->flushing = true;
    /* The topology no longer names the deleted queues: their files can go. */
    wr_qlog_ctx_bury(&d->qlogs);
    wr_qlog_ctx_flush(&d->qlogs);
    wr_store_flush(d->store);
    d->flushing = false;
}

static void touch(void *ud)
{
    wr_durable_t *d = ud;

    if (d->flush_pending || d->flushing)
        return;
    d->flush_pending = true;
    /* Runs after the callbacks already active in this iteration: one batch
     * for all the appends they make. */
    event_active(d->flush_ev, 0, 0);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    wr_durable_t *d = arg;

    wr_store_dispatch(d->store);
    wr_alarms_storage_progress(wr_server_alarms(d->srv));
}

static void on_store_message(void *ud, const char *text)
{
    wr_log_warn("storage: %s", text);
}

void wr_durable_topology_changed(wr_durable_t *d)
{
    if (d == NULL)
        return;
    d->topology_dirty = true;
    touch(d);
}

wr_qlog_ctx_t *wr_durable_qlogs(wr_durable_t *d)
{
    return &d->qlogs;
}

uint64_t wr_durable_pending_bytes(const wr_durable_t *d)
{
    return d != NULL ? wr_store_pending_bytes(d->store) : 0;
}

void wr_durable_low_memory(wr_durable_t *d, bool low)
{
    if (d != NULL)
        d->qlogs.memory_budget = low ? 0 : wr_server_config(d->srv)->queue_memory_budget;
}

/* ---------------------------------------------------------------- start-up */

typedef struct {
    wr_durable_t *d;
    wr_map_t *referenced; /* log names the topology names */
    char **names;         /* every stored log */
    size_t nnames;
    bool oom;
} logs_t;

static void collect_log(void *ud, const char *name)
{
    logs_t *l = ud;
    char **n = realloc(l->names, (l->nnames + 1) * sizeof(*n));

    if (n == NULL || (n[l->nnames] = strdup(name)) == NULL) {
        if (n != NULL)
            l->names = n;
        l->oom = true;
        return;
    }
    l->names = n;
    l->nnames++;
}

/* Whether name is a queue's log ("q" or "t" and 16 hex digits); new logs are numbered past it. */
static bool note_log_id(wr_durable_t *d, const char *name)
{
    char *end;
    uint64_t id;

    if ((name[0] != 'q' && name[0] != 't') || strlen(name) != 17)
        return false;
    id = strtoull(name + 1, &end, 16);
    if (*end != '\0')
        return false;
    if (id >= d->qlogs.next_id)
        d->qlogs.next_id = id + 1;
    return true;
}

static void reference_log(void *ud, const char *name)
{
    logs_t *l = ud;

    /* A queue that never stored a message has no directory yet. */
    note_log_id(l->d, name);
    if (wr_map_put(l->referenced, wr_bytes_str(name), l) == WR_ENOMEM)
        l->oom = true;
}

/*
 * Deletes the logs of transient queues (paged-out messages of the last run)
 * and of durable queues the topology no longer names, and numbers new logs
 * past every stored one.
 */
static int sweep_logs(wr_durable_t *d, const json_t *vhosts)
{
    logs_t l = {d, wr_map_new(), NULL, 0, false};
    char err[1024];
    size_t removed = 0;
    const char *vname;
    const json_t *v;
    int rc = WR_ENOMEM;

    if (l.referenced == NULL)
        goto out;
    json_object_foreach((json_t *)vhosts, vname, v)
    {
        wr_durable_defs_logs(v, reference_log, &l);
    }
    if (wr_store_logs(d->store, collect_log, &l, err, sizeof(err)) != WR_OK) {
        wr_log_error("%s", err);
        rc = WR_EIO;
        goto out;
    }
    if (l.oom)
        goto out;
    for (size_t i = 0; i < l.nnames; i++) {
        const char *name = l.names[i];

        if (!note_log_id(d, name)) {
            wr_log_warn("storage: log '%s' is not a queue's; left alone", name);
            continue;
        }
        if (name[0] == 'q' && wr_map_get(l.referenced, wr_bytes_str(name)) != NULL)
            continue;
        if (wr_store_remove_log(d->store, name) == WR_OK)
            removed++;
    }
    if (removed > 0)
        wr_log_info("storage: deleting %zu logs of transient or deleted queues", removed);
    rc = WR_OK;
out:
    if (rc == WR_ENOMEM)
        wr_log_error("out of memory opening the data directory");
    for (size_t i = 0; i < l.nnames; i++)
        free(l.names[i]);
    free(l.names);
    wr_map_free(l.referenced);
    return rc;
}

static int recover(wr_durable_t *d)
{
    const wr_config_t *cfg = wr_server_config(d->srv);
    wr_durable_defs_stats_t st = {0};
    struct timespec t0, t1;
    json_t *root;
    const char *vname;
    json_t *v;
    char err[1024];
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = topology_read(cfg->data_dir, &root);
    if (rc != WR_OK)
        return rc;
    d->saved_vhosts = root != NULL ? json_incref(json_object_get(root, "vhosts")) : json_object();
    json_decref(root);
    if (d->saved_vhosts == NULL || (rc = sweep_logs(d, d->saved_vhosts)) != WR_OK)
        return d->saved_vhosts == NULL ? WR_ENOMEM : rc;
    json_object_foreach(d->saved_vhosts, vname, v)
    {
        wr_vhost_t *vh = wr_server_vhost(d->srv, wr_bytes_str(vname));

        if (vh == NULL) {
            wr_log_warn("storage: vhost '%s' of the saved topology is not configured; its durable exchanges "
                        "and queues stay on disk, unused",
                        vname);
            continue;
        }
        rc = wr_durable_defs_load(vh, v, &st, err, sizeof(err));
        if (rc != WR_OK) {
            wr_log_error("cannot recover the durable topology of %s: %s", cfg->data_dir, err);
            return rc;
        }
    }
    /* Recreating it marked it changed; it is what was saved. */
    d->topology_dirty = false;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    wr_log_info("storage: %s: recovered %zu exchanges, %zu queues with %" PRIu64 " messages and %zu bindings "
                "in %.1f ms",
                cfg->data_dir, st.exchanges, st.queues, st.messages, st.bindings,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return WR_OK;
}

int wr_durable_open(wr_server_t *srv, wr_durable_t **out)
{
    const wr_config_t *cfg = wr_server_config(srv);
    wr_store_opts_t opts = {.segment_size = cfg->segment_size, .message = on_store_message};
    struct event_base *base = wr_server_base(srv);
    wr_durable_t *d = calloc(1, sizeof(*d));
    char err[1024];
    int rc;

    *out = NULL;
    if (d == NULL) {
        wr_log_error("out of memory opening the data directory");
        return WR_ENOMEM;
    }
    d->srv = srv;
    d->store = wr_store_open(cfg->data_dir, &opts, err, sizeof(err));
    if (d->store == NULL) {
        wr_log_error("cannot open the data directory: %s", err);
        free(d);
        return WR_EIO;
    }
    wr_qlog_ctx_init(&d->qlogs, d->store, cfg->queue_memory_budget, touch, d);
    d->flush_ev = event_new(base, -1, 0, on_flush, d);
    d->notify_ev = event_new(base, wr_store_notify_fd(d->store), EV_READ | EV_PERSIST, on_notify, d);
    if (d->flush_ev == NULL || d->notify_ev == NULL || event_add(d->notify_ev, NULL) != 0) {
        wr_log_error("out of memory opening the data directory");
        wr_durable_close(d);
        return WR_ENOMEM;
    }
    *out = d;
    rc = recover(d);
    if (rc != WR_OK) {
        /* What was recovered is partial: the saved topology must stay as it is. */
        d->topology_dirty = false;
        *out = NULL;
        wr_durable_close(d);
        return rc;
    }
    /* The first iteration removes what the sweep set aside. */
    touch(d);
    return WR_OK;
}

void wr_durable_close(wr_durable_t *d)
{
    wr_map_iter_t vit = {0};
    void *vh;

    if (d == NULL)
        return;
    if (d->topology_dirty)
        topology_save(d);
    wr_qlog_ctx_bury(&d->qlogs);
    wr_qlog_ctx_flush(&d->qlogs);
    while (wr_map_next(wr_server_vhosts(d->srv), &vit, NULL, &vh)) {
        wr_map_iter_t qit = {0};
        void *q;

        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q))
            wr_queue_detach_log(q);
    }
    if (d->flush_ev != NULL)
        event_free(d->flush_ev);
    if (d->notify_ev != NULL)
        event_free(d->notify_ev);
    wr_store_close(d->store);
    json_decref(d->saved_vhosts);
    free(d);
}
