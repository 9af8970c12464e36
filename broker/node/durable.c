/* SPDX-License-Identifier: MIT */
/*
 * The node's store and the durable topology. Group commit runs on the loop:
 * the first append (or pending ack) of a loop iteration activates the flush
 * event, which runs after the iteration's other callbacks and hands
 * everything to the storage thread at once; the store's eventfd, polled by
 * the loop, runs the durable callbacks that release publisher confirms. A
 * topology change is one record in the topology journal (broker/topology.h),
 * appended before the queue that it creates can take a message, so it goes
 * in the same batch or an earlier one: a message is never durable, and so
 * never confirmed, before the queue that holds it is.
 */
#include "broker/node/durable.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/node/alarm.h"
#include "broker/node/durable_defs.h"
#include "broker/base/log.h"
#include "broker/node/topo_state.h"
#include "broker/node/topology.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "core/status.h"
#include "storage/store.h"

struct wr_durable_s {
    wr_durable_deps_t deps;
    wr_store_t *store;
    wr_topology_t *topo;
    wr_queue_store_t *qlogs;
    struct event *flush_ev;
    struct event *notify_ev;
    struct event *due_ev; /* held or paced records, a retry or a failed snapshot are due */
    struct event *topo_ev;
    wr_list_t waiters;  /* wr_durable_waiter_t by seq */
    bool flush_pending; /* flush_ev is active */
    bool flushing;      /* inside on_flush: appends there go with this flush */
    bool recovering;    /* the topology being recreated is already saved */
};

/* ---------------------------------------------------------------- topology */

static void touch(void *ud);

/* Deleted durable queues' logs go once no journal record is pending that
 * may be the delete of one of them: a crash cannot then bring back a queue
 * whose messages are gone. */
static void bury_if_safe(wr_durable_t *d)
{
    if (wr_queue_store_has_doomed(d->qlogs) && wr_topology_durable(d->topo) >= wr_topology_seq(d->topo))
        wr_queue_store_bury(d->qlogs);
}

static void on_topology_durable(void *ud, uint64_t seq)
{
    wr_durable_t *d = ud;

    while (!wr_list_empty(&d->waiters)) {
        wr_durable_waiter_t *w = wr_list_entry(d->waiters.next, wr_durable_waiter_t, link);

        if (w->seq > seq)
            break;
        wr_list_remove(&w->link);
        w->fn(w->ud);
    }
    if (wr_queue_store_has_doomed(d->qlogs)) {
        bury_if_safe(d);
        touch(d);
    }
}

/* Whether changes are recorded: not the recreation of the recovered topology. */
static bool recording(const wr_durable_t *d)
{
    return d != NULL && !d->recovering;
}

/* Records one change in vhost (NULL for a node-wide one; takes ownership of entry). */
static void record_in(wr_durable_t *d, const char *vhost, wr_topo_op_t op, json_t *entry)
{
    json_t *rec = wr_topo_rec(vhost, op, entry);
    uint64_t seq;

    if (rec == NULL || wr_topology_append(d->topo, rec, &seq) != WR_OK) {
        wr_log_error("out of memory recording a change of definitions (vhost '%s'); it is not saved",
                     vhost != NULL ? vhost : "");
        return;
    }
    touch(d);
}

static void record(wr_durable_t *d, const wr_vhost_t *vh, wr_topo_op_t op, json_t *entry)
{
    record_in(d, wr_vhost_name(vh), op, entry);
}

static json_t *named(wr_bytes_t name)
{
    json_t *n = wr_durable_defs_name(name);

    return n != NULL ? json_pack("{s:o}", "name", n) : NULL;
}

/* The vhost's policy list, sharing nothing with the policies themselves:
 * the snapshot thread keeps it. */
static json_t *policies_copy(const wr_vhost_t *vh)
{
    json_t *list = wr_durable_defs_policies(vh), *copy = json_deep_copy(list);

    json_decref(list);
    return copy;
}

static void exchange_declared(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x)
{
    wr_durable_t *d = ud;

    /* Every vhost declares its standard exchanges itself, a new one too. */
    if (recording(d) && !wr_exchange_is_standard(x))
        record(d, vh, WR_TOPO_EXCHANGE_DECLARE, wr_durable_defs_exchange(x));
}

static void exchange_deleted(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x)
{
    wr_durable_t *d = ud;

    if (recording(d))
        record(d, vh, WR_TOPO_EXCHANGE_DELETE, named(wr_exchange_name(x)));
}

static void queue_declared(void *ud, const wr_vhost_t *vh, const wr_queue_t *q)
{
    wr_durable_t *d = ud;

    if (recording(d))
        record(d, vh, WR_TOPO_QUEUE_DECLARE, wr_durable_defs_queue(q));
}

static void queue_deleted(void *ud, const wr_vhost_t *vh, const wr_queue_t *q)
{
    wr_durable_t *d = ud;

    if (recording(d))
        record(d, vh, WR_TOPO_QUEUE_DELETE, named(wr_queue_name(q)));
}

static void binding_changed(void *ud, const wr_vhost_t *vh, const wr_exchange_t *x, wr_dest_t to,
                            wr_bytes_t key, wr_bytes_t args, bool bound)
{
    wr_durable_t *d = ud;

    if (recording(d))
        record(d, vh, bound ? WR_TOPO_BIND : WR_TOPO_UNBIND, wr_durable_defs_binding(x, to, key, args));
}

static void policies_changed(void *ud, const wr_vhost_t *vh)
{
    wr_durable_t *d = ud;

    if (recording(d))
        record(d, vh, WR_TOPO_POLICIES, policies_copy(vh));
}

static const wr_vhost_observer_t observer = {exchange_declared, exchange_deleted, queue_declared,
                                             queue_deleted,     binding_changed,  policies_changed};

/* ---------------------------------------------------------------- users, vhosts */

static void user_put(void *ud, const wr_user_cfg_t *u)
{
    record_in(ud, NULL, WR_TOPO_USER_PUT, wr_durable_defs_user(u));
}

static void user_deleted(void *ud, const char *name)
{
    record_in(ud, NULL, WR_TOPO_USER_DELETE, json_pack("{s:s}", "name", name));
}

static void permission_put(void *ud, const wr_permission_cfg_t *perm)
{
    record_in(ud, perm->vhost, WR_TOPO_PERMISSION_PUT, wr_durable_defs_permission(perm));
}

static void permission_deleted(void *ud, const char *user, const char *vhost)
{
    record_in(ud, vhost, WR_TOPO_PERMISSION_DELETE, json_pack("{s:s}", "user", user));
}

static const wr_users_observer_t users_observer = {user_put, user_deleted, permission_put,
                                                   permission_deleted};

void wr_durable_vhost_declared(wr_durable_t *d, const char *name, const json_t *settings)
{
    if (recording(d))
        record_in(d, name, WR_TOPO_VHOST_DECLARE,
                  settings != NULL ? json_deep_copy(settings) : json_object());
}

void wr_durable_vhost_deleted(wr_durable_t *d, const char *name)
{
    if (recording(d))
        record_in(d, name, WR_TOPO_VHOST_DELETE, json_object());
}

uint64_t wr_durable_topology_seq(const wr_durable_t *d)
{
    return d != NULL ? wr_topology_seq(d->topo) : 0;
}

bool wr_durable_topology_wait(wr_durable_t *d, wr_durable_waiter_t *w, uint64_t seq)
{
    wr_list_remove(&w->link);
    if (d == NULL || seq <= wr_topology_durable(d->topo))
        return false;
    /* Waiters come with the latest sequence number, so the list stays sorted. */
    w->seq = seq;
    wr_list_insert_tail(&d->waiters, &w->link);
    wr_store_awaited(d->store);
    return true;
}

void wr_durable_topology_unwait(wr_durable_waiter_t *w)
{
    wr_list_remove(&w->link);
}

/* ---------------------------------------------------------------- loop */

/* The store held records back (unawaited_delay_us): flush again when they must go. */
static void arm_due(wr_durable_t *d)
{
    int64_t us = wr_store_flush_due_us(d->store);
    int64_t topo = d->topo != NULL ? wr_topology_due_us(d->topo) : -1;
    struct timeval tv;

    if (topo >= 0 && (us < 0 || topo < us))
        us = topo;
    if (us < 0 || evtimer_pending(d->due_ev, NULL))
        return;
    tv.tv_sec = us / 1000000;
    tv.tv_usec = us % 1000000;
    evtimer_add(d->due_ev, &tv);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    wr_durable_t *d = arg;

    d->flush_pending = false;
    d->flushing = true;
    bury_if_safe(d);
    wr_topology_flush(d->topo);
    wr_queue_store_flush(d->qlogs);
    wr_store_flush(d->store);
    d->flushing = false;
    arm_due(d);
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

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    touch(arg);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    wr_durable_t *d = arg;

    wr_store_dispatch(d->store);
    arm_due(d);
    d->deps.progress(d->deps.ud);
}

static void on_store_message(void *ud, const char *text)
{
    wr_log_warn("storage: %s", text);
}

static void on_topology_notify(evutil_socket_t fd, short what, void *arg)
{
    wr_durable_t *d = arg;

    wr_topology_dispatch(d->topo);
    /* The snapshot truncated the journal: its segments go with the next
     * batch. A failed one may be due again later: arm_due after the flush. */
    touch(d);
}

uint64_t wr_durable_pending_bytes(const wr_durable_t *d)
{
    return d != NULL ? wr_store_pending_bytes(d->store) : 0;
}

void wr_durable_low_memory(wr_durable_t *d, bool low)
{
    if (d != NULL)
        wr_queue_store_set_budget(d->qlogs, low ? 0 : d->deps.cfg->queue_memory_budget);
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

static void reference_log(void *ud, const char *name)
{
    logs_t *l = ud;

    /* A queue that never stored a message has no directory yet. */
    wr_queue_store_claim(l->d->qlogs, name);
    if (wr_map_put(l->referenced, wr_bytes_str(name), l) == WR_ENOMEM)
        l->oom = true;
}

/*
 * Deletes the logs of transient queues (paged-out messages of the last run)
 * and of durable queues the topology no longer names, numbers new logs past
 * every stored one, and adds the names of the logs kept to kept.
 */
static int sweep_logs(wr_durable_t *d, const json_t *vhosts, wr_map_t *kept)
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

        if (strcmp(name, WR_TOPOLOGY_LOG) == 0)
            continue;
        if (!wr_queue_store_claim(d->qlogs, name)) {
            wr_log_warn("storage: log '%s' is not a queue's; left alone", name);
            continue;
        }
        if (name[0] == 'q' && wr_map_get(l.referenced, wr_bytes_str(name)) != NULL) {
            if (wr_map_put(kept, wr_bytes_str(name), l.d) == WR_ENOMEM)
                goto out;
            continue;
        }
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

/* A vhost's saved definitions; in cluster mode only its policies: the
 * metadata group recreates exchanges, queues and bindings. */
static int load_vhost(wr_durable_t *d, wr_vhost_t *vh, json_t *v, wr_durable_defs_stats_t *st, char *err,
                      size_t errlen)
{
    json_t *policies = json_object_get(v, "policies"), *only;
    int rc;

    if (!d->deps.defs_elsewhere)
        return wr_durable_defs_load(vh, v, st, err, errlen);
    only = policies != NULL ? json_pack("{s:O}", "policies", policies) : json_object();
    if (only == NULL) {
        snprintf(err, errlen, "out of memory");
        return WR_ENOMEM;
    }
    rc = wr_durable_defs_load(vh, only, st, err, errlen);
    json_decref(only);
    return rc;
}

/* Creates the vhosts of the recovered state (vhosts: its "vhosts") with
 * their settings and recreates what they hold. */
static int recreate(wr_durable_t *d, const json_t *vhosts, wr_durable_defs_stats_t *st)
{
    const char *vname;
    json_t *v;
    char err[1024];
    int rc;

    json_object_foreach((json_t *)vhosts, vname, v)
    {
        rc = d->deps.vhost_add(d->deps.ud, vname, json_object_get(v, "settings"));
        if (rc != WR_OK && rc != WR_EEXIST) {
            wr_log_error("out of memory recovering vhost '%s'", vname);
            return rc;
        }
        rc = load_vhost(d, wr_map_get(d->deps.vhosts, wr_bytes_str(vname)), v, st, err, sizeof(err));
        if (rc != WR_OK) {
            wr_log_error("cannot recover the durable topology of %s: %s", d->deps.cfg->data_dir, err);
            return rc;
        }
    }
    return WR_OK;
}

/* The users and permissions of a seeded store replace the configuration's. */
static int restore_users(wr_durable_t *d, const json_t *state)
{
    char err[256];
    int rc;

    wr_users_clear(d->deps.users);
    rc = wr_durable_defs_load_users(d->deps.users, state, err, sizeof(err));
    if (rc != WR_OK)
        wr_log_error("%s", err);
    return rc;
}

/*
 * A store that was never seeded (a new data directory, or one of an earlier
 * version, which kept no vhosts or users) takes the configuration's vhosts,
 * users, permissions and (deps.seed) policies, and records them, then that
 * it is seeded: from then on the store's definitions win over the file's.
 */
static int seed(wr_durable_t *d)
{
    const wr_config_t *cfg = d->deps.cfg;
    const wr_permission_cfg_t *perm;
    size_t i = 0;
    int rc = WR_OK;

    for (size_t v = 0; v < cfg->nvhosts && rc == WR_OK; v++) {
        rc = d->deps.vhost_add(d->deps.ud, cfg->vhosts[v], NULL);
        if (rc == WR_EEXIST)
            rc = WR_OK;
    }
    for (size_t u = 0; rc == WR_OK && u < d->deps.users->nusers; u++)
        user_put(d, &d->deps.users->users[u]);
    while (rc == WR_OK && (perm = wr_users_permission_next(d->deps.users, &i)) != NULL)
        permission_put(d, perm);
    if (rc == WR_OK)
        rc = d->deps.seed(d->deps.ud);
    if (rc == WR_OK) {
        record_in(d, NULL, WR_TOPO_SEEDED, json_object());
        wr_log_info("storage: %s: seeded with the configuration's vhosts, users and policies", cfg->data_dir);
    } else if (rc == WR_ENOMEM) {
        wr_log_error("out of memory creating the configured vhosts");
    }
    return rc;
}

static int recover(wr_durable_t *d)
{
    const wr_config_t *cfg = d->deps.cfg;
    wr_topology_opts_t o = {.durable = on_topology_durable, .ud = d};
    wr_durable_defs_stats_t st = {0};
    struct timespec t0, t1;
    wr_map_t *kept;
    json_t *state, *vhosts;
    bool seeded;
    char err[1024];
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    d->topo = wr_topology_open(d->store, cfg->data_dir, &o, &state, err, sizeof(err));
    if (d->topo == NULL) {
        wr_log_error("%s", err);
        return WR_ESYNTAX;
    }
    vhosts = json_object_get(state, "vhosts");
    seeded = json_is_true(json_object_get(state, "seeded"));
    d->recovering = true;
    kept = wr_map_new();
    rc = kept != NULL ? sweep_logs(d, vhosts, kept) : WR_ENOMEM;
    wr_queue_store_set_stored(d->qlogs, kept);
    if (rc == WR_OK)
        rc = recreate(d, vhosts, &st);
    if (rc == WR_OK && seeded)
        rc = restore_users(d, state);
    wr_queue_store_set_stored(d->qlogs, NULL);
    d->recovering = false;
    wr_map_free(kept);
    json_decref(state);
    if (rc == WR_OK && !seeded)
        rc = seed(d);
    if (rc != WR_OK)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    wr_log_info("storage: %s: recovered %zu exchanges, %zu queues with %" PRIu64 " messages and %zu bindings "
                "in %.1f ms",
                cfg->data_dir, st.exchanges, st.queues, st.messages, st.bindings,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return WR_OK;
}

int wr_durable_open(const wr_durable_deps_t *deps, wr_durable_t **out)
{
    const wr_config_t *cfg = deps->cfg;
    wr_store_opts_t opts = {.segment_size = cfg->segment_size,
                            .commit_interval_us = cfg->commit_interval_us > 0 ? cfg->commit_interval_us : -1,
                            .unawaited_delay_us = cfg->unawaited_delay_us,
                            .message = on_store_message};
    struct event_base *base = deps->base;
    wr_durable_t *d = calloc(1, sizeof(*d));
    char err[1024];
    int rc;

    *out = NULL;
    if (d == NULL) {
        wr_log_error("out of memory opening the data directory");
        return WR_ENOMEM;
    }
    d->deps = *deps;
    wr_list_init(&d->waiters);
    d->store = wr_store_open(cfg->data_dir, &opts, err, sizeof(err));
    if (d->store == NULL) {
        wr_log_error("cannot open the data directory: %s", err);
        free(d);
        return WR_EIO;
    }
    d->qlogs = wr_queue_store_new(d->store, cfg->queue_memory_budget, touch, d);
    d->flush_ev = event_new(base, -1, 0, on_flush, d);
    d->notify_ev = event_new(base, wr_store_notify_fd(d->store), EV_READ | EV_PERSIST, on_notify, d);
    d->due_ev = evtimer_new(base, on_due, d);
    if (d->qlogs == NULL || d->flush_ev == NULL || d->notify_ev == NULL || d->due_ev == NULL ||
        event_add(d->notify_ev, NULL) != 0) {
        wr_log_error("out of memory opening the data directory");
        wr_durable_close(d);
        return WR_ENOMEM;
    }
    *out = d;
    deps->vhost_env->qlogs = d->qlogs;
    deps->vhost_env->observer = &observer;
    deps->vhost_env->observer_ud = d;
    rc = recover(d);
    deps->users->observer = &users_observer;
    deps->users->observer_ud = d;
    if (rc == WR_OK) {
        d->topo_ev =
            event_new(base, wr_topology_notify_fd(d->topo), EV_READ | EV_PERSIST, on_topology_notify, d);
        if (d->topo_ev == NULL || event_add(d->topo_ev, NULL) != 0) {
            wr_log_error("out of memory opening the data directory");
            rc = WR_ENOMEM;
        }
    }
    if (rc != WR_OK) {
        *out = NULL;
        wr_durable_close(d);
        return rc;
    }
    /* The first iteration removes what the sweep set aside and writes what
     * start-up appended (a new node's seeded vhost and user): at once, not
     * held as records nobody awaits, so the node's state is on disk before
     * it serves a client for long. */
    wr_store_awaited(d->store);
    touch(d);
    return WR_OK;
}

void wr_durable_close(wr_durable_t *d)
{
    wr_map_iter_t vit = {0};
    void *vh;

    if (d == NULL)
        return;
    d->deps.vhost_env->observer = NULL;
    d->deps.users->observer = NULL;
    if (d->topo_ev != NULL)
        event_free(d->topo_ev);
    /* The journal is on disk once closed: deleted queues' logs can go. */
    wr_topology_close(d->topo);
    if (d->qlogs != NULL) {
        wr_queue_store_bury(d->qlogs);
        wr_queue_store_flush(d->qlogs);
    }
    while (wr_map_next(d->deps.vhosts, &vit, NULL, &vh)) {
        wr_map_iter_t qit = {0};
        void *q;

        while (wr_map_next(wr_vhost_queues(vh), &qit, NULL, &q))
            wr_queue_close_store(q);
    }
    if (d->flush_ev != NULL)
        event_free(d->flush_ev);
    if (d->notify_ev != NULL)
        event_free(d->notify_ev);
    if (d->due_ev != NULL)
        event_free(d->due_ev);
    d->deps.vhost_env->qlogs = NULL;
    wr_queue_store_free(d->qlogs);
    wr_store_close(d->store);
    free(d);
}
