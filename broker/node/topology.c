/* SPDX-License-Identifier: MIT */
/*
 * The topology journal and its snapshots (see topology.h). A journal record
 * is an 8-byte little-endian sequence number and the change record's JSON
 * text; the snapshot names the last sequence number it covers ("journal"),
 * so a crash between the snapshot's rename and the journal's truncation
 * replays nothing twice. Sequence numbers are not log indexes: after a
 * journal write error, changes go on being numbered and covered by snapshots.
 */
#include "broker/node/topology.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/base/log.h"
#include "broker/node/topo_state.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/status.h"
#include "storage/seglog.h"

#define SNAPSHOT_FILE    "topology.json"
#define SNAPSHOT_FORMAT  "warren-topology"
#define SNAPSHOT_VERSION 3
#define SNAPSHOT_MIN     4096
#define ERR_MAX          1024

typedef struct {
    wr_list_t link;
    uint64_t seq;
    json_t *rec;
} change_t;

struct wr_topology_s {
    wr_store_t *store;
    wr_seglog_t *journal;
    wr_topology_opts_t o;
    uint64_t seq;        /* last change recorded */
    uint64_t durable;    /* last change durable */
    uint64_t offset;     /* seq - log index of this run's records */
    uint64_t run_first;  /* log index of this run's first record */
    uint64_t since_snap; /* changes since the last snapshot was requested */
    uint64_t snap_size;  /* the state's size at the last snapshot */
    bool failed;         /* the journal failed: snapshots only */
    bool snapping;       /* a snapshot is requested or being written */
    uint64_t retry_at;   /* a failed snapshot is tried again then (CLOCK_MONOTONIC ns); 0: none due */
    uint64_t retry_ns;   /* the wait before that try; doubles per failure in a row */
    wr_list_t outbox;    /* changes for the snapshot thread, handed over by wr_topology_flush */
    int efd;
    pthread_t thread;
    bool started;
    void *replay; /* during wr_topology_open: the journal replay's state */
    /* Shared with the snapshot thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wr_list_t changes;
    bool want_snap, stop;
    uint64_t done_seq; /* a finished snapshot's sequence number, 0 if none */
    size_t done_size;
    char done_err[ERR_MAX];
    /* The snapshot thread's own. */
    wr_topo_state_t *state;
    uint64_t applied;
};

/* ---------------------------------------------------------------- snapshot file */

/* json_load_file reads a character at a time: a fifth of a restart with
 * 100,000 queues. NULL with jerr set on failure. */
static json_t *load_file(const char *path, json_error_t *jerr)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long len = -1;
    json_t *root = NULL;

    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)len + 1)) != NULL && fread(text, 1, (size_t)len, f) == (size_t)len)
        root = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, jerr);
    else {
        jerr->line = 0;
        snprintf(jerr->text, sizeof(jerr->text), "%s",
                 f == NULL || len < 0 ? strerror(errno) : "read failed");
    }
    if (f != NULL)
        fclose(f);
    free(text);
    return root;
}

/* Reads DIR/topology.json into *snap (the whole document, which
 * wr_topo_state_load reads) and its journal position; *snap has no vhosts
 * when there is none (a new directory). */
static int snapshot_read(const char *dir, json_t **snap, uint64_t *journal, char *err, size_t errlen)
{
    char path[4096];
    json_error_t jerr;
    json_t *root;
    const json_t *fmt, *ver, *v, *j;

    *journal = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE);
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return (*snap = json_pack("{s:{}}", "vhosts")) != NULL ? WR_OK : WR_ENOMEM;
    root = load_file(path, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "cannot read the durable topology %s: line %d: %s", path, jerr.line, jerr.text);
        return WR_ESYNTAX;
    }
    fmt = json_object_get(root, "format");
    ver = json_object_get(root, "version");
    v = json_object_get(root, "vhosts");
    j = json_object_get(root, "journal");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), SNAPSHOT_FORMAT) != 0 ||
        !json_is_integer(ver) || !json_is_object(v) || (j != NULL && !json_is_integer(j))) {
        snprintf(err, errlen, "%s is not a warren topology file", path);
    } else if (json_integer_value(ver) < 1 || json_integer_value(ver) > SNAPSHOT_VERSION) {
        snprintf(err, errlen,
                 "%s has format version %" JSON_INTEGER_FORMAT "; this build reads versions 1 to 3", path,
                 json_integer_value(ver));
    } else {
        *snap = root;
        *journal = (uint64_t)json_integer_value(j);
        return WR_OK;
    }
    json_decref(root);
    return WR_ESYNTAX;
}

/* Loads the snapshot read from DIR into the state; an error names the file. */
static int snapshot_load(wr_topology_t *t, const char *dir, const json_t *snap, char *err, size_t errlen)
{
    char why[512];
    int rc = wr_topo_state_load(t->state, snap, why, sizeof(why));

    if (rc != WR_OK)
        snprintf(err, errlen, "the durable topology %s/%s: %s", dir, SNAPSHOT_FILE, why);
    return rc;
}

/* Writes the state as DIR/topology.json covering the journal up to seq;
 * snapshot thread. */
static int snapshot_write(wr_topology_t *t, uint64_t seq, char *err, size_t errlen)
{
    json_t *root = wr_topo_state_dump(t->state);
    char *text = NULL;
    int rc = WR_ENOMEM;

    if (root != NULL && json_object_set_new(root, "format", json_string(SNAPSHOT_FORMAT)) == 0 &&
        json_object_set_new(root, "version", json_integer(SNAPSHOT_VERSION)) == 0 &&
        json_object_set_new(root, "journal", json_integer((json_int_t)seq)) == 0)
        text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text != NULL)
        rc = wr_store_write_file(t->store, SNAPSHOT_FILE, text, strlen(text), err, errlen);
    else
        snprintf(err, errlen, "out of memory");
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- snapshot thread */

static void apply_changes(wr_topology_t *t, wr_list_t *list)
{
    wr_list_t *pos, *tmp;
    char err[256];

    wr_list_foreach_safe(pos, tmp, list)
    {
        change_t *c = wr_list_entry(pos, change_t, link);

        /* Not applied (out of memory): the next snapshot misses it; it is
         * logged because that snapshot then truncates it from the journal. */
        if (wr_topo_state_apply(t->state, c->rec, err, sizeof(err)) != WR_OK)
            wr_log_error("durable topology: change %llu not applied: %s", (unsigned long long)c->seq, err);
        t->applied = c->seq;
        json_decref(c->rec);
        free(c);
    }
}

static void *snapshot_main(void *arg)
{
    wr_topology_t *t = arg;
    uint64_t one = 1;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        wr_list_t batch;
        bool snap;

        while (!t->stop && !t->want_snap && wr_list_empty(&t->changes))
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->stop && wr_list_empty(&t->changes))
            break;
        wr_list_init(&batch);
        if (!wr_list_empty(&t->changes)) {
            batch = t->changes;
            batch.next->prev = batch.prev->next = &batch;
            wr_list_init(&t->changes);
        }
        snap = t->want_snap && !t->stop;
        t->want_snap = false;
        pthread_mutex_unlock(&t->mu);
        apply_changes(t, &batch);
        if (snap) {
            char err[ERR_MAX] = "";
            int rc = snapshot_write(t, t->applied, err, sizeof(err));

            pthread_mutex_lock(&t->mu);
            t->done_seq = rc == WR_OK ? t->applied : 0;
            t->done_size = wr_topo_state_size(t->state);
            snprintf(t->done_err, sizeof(t->done_err), "%s", rc == WR_OK ? "" : err);
            pthread_mutex_unlock(&t->mu);
            if (write(t->efd, &one, sizeof(one)) < 0)
                wr_log_error("durable topology: cannot signal a finished snapshot");
        }
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void snapshot_request(wr_topology_t *t);

/* A snapshot once the journal has grown by the state's size (so its cost is
 * O(1) per change), or at once when the journal has failed. */
static void maybe_snapshot(wr_topology_t *t)
{
    uint64_t due = t->snap_size > t->o.snapshot_min ? t->snap_size : t->o.snapshot_min;

    if (!t->snapping && (t->failed || t->since_snap >= due))
        snapshot_request(t);
}

/* Hands the outbox to the snapshot thread, and a snapshot request if snap. */
static void hand_over(wr_topology_t *t, bool snap)
{
    pthread_mutex_lock(&t->mu);
    if (!wr_list_empty(&t->outbox)) {
        t->outbox.next->prev = t->changes.prev;
        t->changes.prev->next = t->outbox.next;
        t->outbox.prev->next = &t->changes;
        t->changes.prev = t->outbox.prev;
        wr_list_init(&t->outbox);
    }
    t->want_snap |= snap;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void snapshot_request(wr_topology_t *t)
{
    t->snapping = true;
    t->since_snap = 0;
    hand_over(t, true);
}

void wr_topology_flush(wr_topology_t *t)
{
    if (t->retry_at != 0 && !t->snapping && wr_mono_ns() >= t->retry_at) {
        t->retry_at = 0;
        snapshot_request(t);
    } else if (!wr_list_empty(&t->outbox)) {
        hand_over(t, false);
    }
}

int64_t wr_topology_due_us(const wr_topology_t *t)
{
    uint64_t now;

    if (t->retry_at == 0 || t->snapping)
        return -1;
    now = wr_mono_ns();
    return t->retry_at > now ? (int64_t)((t->retry_at - now + 999) / 1000) : 0;
}

/* ---------------------------------------------------------------- journal */

static void report_durable(wr_topology_t *t, uint64_t seq)
{
    if (seq <= t->durable)
        return;
    t->durable = seq;
    if (t->o.durable != NULL)
        t->o.durable(t->o.ud, seq);
}

static void on_journal_durable(void *ud, wr_seglog_t *log, uint64_t index, int status)
{
    wr_topology_t *t = ud;

    if (status == WR_OK) {
        report_durable(t, index + t->offset);
        return;
    }
    if (!t->failed)
        wr_log_error("durable topology: write error in its journal: changes after %llu wait for a snapshot",
                     (unsigned long long)t->durable);
    t->failed = true;
    if (!t->snapping)
        snapshot_request(t);
}

typedef struct {
    wr_topology_t *t;
    uint64_t covered; /* the snapshot's journal position */
    uint64_t last;    /* the last sequence number replayed */
    uint64_t front;   /* the last log index the snapshot covers */
    char *err;
    size_t errlen;
} replay_t;

static int on_journal_record(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *data, size_t len)
{
    replay_t *r = ((wr_topology_t *)ud)->replay;
    uint64_t seq = 0;
    json_error_t jerr;
    json_t *rec;
    int rc;

    for (int i = 7; len >= 8 && i >= 0; i--)
        seq = seq << 8 | data[i];
    if (len < 8 || seq <= r->last) {
        snprintf(r->err, r->errlen, "durable topology: journal record %llu is malformed",
                 (unsigned long long)index);
        return WR_ESYNTAX;
    }
    r->last = seq;
    if (seq <= r->covered) {
        r->front = index;
        return WR_OK;
    }
    rec = json_loadb((const char *)data + 8, len - 8, 0, &jerr);
    rc = rec != NULL ? wr_topo_state_apply(r->t->state, rec, r->err, r->errlen) : WR_ESYNTAX;
    json_decref(rec);
    if (rc == WR_ESYNTAX)
        snprintf(r->err, r->errlen, "durable topology: journal record %llu is malformed",
                 (unsigned long long)index);
    return rc;
}

int wr_topology_append(wr_topology_t *t, json_t *rec, uint64_t *seq)
{
    change_t *c = malloc(sizeof(*c));
    char *text = json_dumps(rec, JSON_COMPACT);
    uint8_t head[8];
    uint64_t index;
    int rc = WR_ENOMEM;

    if (c == NULL || text == NULL)
        goto err;
    *seq = ++t->seq;
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)(*seq >> (8 * i));
    rc = t->failed
             ? WR_EIO
             : wr_seglog_appendv(t->journal, (struct iovec[]){{head, 8}, {text, strlen(text)}}, 2, &index);
    if (rc == WR_ENOMEM || rc == WR_ETOOBIG) {
        t->seq--;
        goto err;
    }
    free(text);
    c->seq = *seq;
    c->rec = rec;
    wr_list_insert_tail(&t->outbox, &c->link);
    if (rc != WR_OK && !t->failed) {
        wr_log_error("durable topology: its journal has failed: changes wait for a snapshot");
        t->failed = true;
    }
    t->since_snap++;
    maybe_snapshot(t);
    return WR_OK;
err:
    free(c);
    free(text);
    json_decref(rec);
    return rc;
}

uint64_t wr_topology_seq(const wr_topology_t *t)
{
    return t->seq;
}

uint64_t wr_topology_durable(const wr_topology_t *t)
{
    return t->durable;
}

int wr_topology_notify_fd(const wr_topology_t *t)
{
    return t->efd;
}

void wr_topology_dispatch(wr_topology_t *t)
{
    uint64_t n, seq;
    char err[ERR_MAX];

    if (read(t->efd, &n, sizeof(n)) != (ssize_t)sizeof(n))
        return;
    pthread_mutex_lock(&t->mu);
    seq = t->done_seq;
    t->snap_size = t->done_size;
    snprintf(err, sizeof(err), "%s", t->done_err);
    pthread_mutex_unlock(&t->mu);
    t->snapping = false;
    if (seq == 0) {
        /* Changes that wait for it (the journal failed) must not wait for the
         * next change: it is tried again on its own, less and less often.
         * Otherwise the next change or journal growth retries it. */
        if (t->failed && t->seq > t->durable) {
            t->retry_ns = wr_backoff_next(t->retry_ns, WR_RETRY_MIN_NS, WR_RETRY_MAX_NS);
            t->retry_at = wr_mono_ns() + t->retry_ns;
            wr_log_error("durable topology: cannot write a snapshot: %s; trying again in %llu ms", err,
                         (unsigned long long)(t->retry_ns / 1000000));
        } else {
            wr_log_error("durable topology: cannot write a snapshot: %s", err);
        }
        return;
    }
    t->retry_ns = t->retry_at = 0;
    /* Only this run's records map onto log indexes by the offset. */
    if (seq - t->offset >= t->run_first && seq - t->offset <= wr_seglog_last_index(t->journal))
        wr_seglog_truncate_front(t->journal, seq - t->offset);
    report_durable(t, seq);
    if (t->failed && t->seq > seq)
        snapshot_request(t);
}

/* ---------------------------------------------------------------- open, close */

static int journal_open(wr_topology_t *t, uint64_t covered, char *err, size_t errlen)
{
    replay_t r = {t, covered, 0, 0, err, errlen};
    wr_seglog_cbs_t cbs = {on_journal_record, on_journal_durable, t};
    char lerr[ERR_MAX];

    t->replay = &r;
    t->journal = wr_seglog_open(t->store, WR_TOPOLOGY_LOG, &cbs, NULL, lerr, sizeof(lerr));
    t->replay = NULL;
    if (t->journal == NULL) {
        if (r.err[0] == '\0')
            snprintf(err, errlen, "durable topology: %s", lerr);
        return WR_EIO;
    }
    /* Records the snapshot covers are left over from a crash before the truncation. */
    if (r.front > 0)
        wr_seglog_truncate_front(t->journal, r.front);
    t->seq = t->durable = t->applied = r.last > covered ? r.last : covered;
    t->offset = t->seq - wr_seglog_last_index(t->journal);
    t->run_first = wr_seglog_last_index(t->journal) + 1;
    t->since_snap = r.last > covered ? r.last - covered : 0;
    return WR_OK;
}

static int topology_init(wr_topology_t *t, wr_store_t *s, const wr_topology_opts_t *o)
{
    t->store = s;
    t->o = *o;
    if (t->o.snapshot_min == 0)
        t->o.snapshot_min = SNAPSHOT_MIN;
    wr_list_init(&t->changes);
    wr_list_init(&t->outbox);
    t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->efd < 0)
        return WR_EIO;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->state = wr_topo_state_new();
    return t->state != NULL ? WR_OK : WR_ENOMEM;
}

wr_topology_t *wr_topology_open(wr_store_t *s, const char *dir, const wr_topology_opts_t *o, json_t **state,
                                char *err, size_t errlen)
{
    wr_topology_t *t = calloc(1, sizeof(*t));
    json_t *snap = NULL;
    uint64_t covered;

    *state = NULL;
    err[0] = '\0';
    if (t == NULL)
        goto nomem;
    t->efd = -1;
    if (topology_init(t, s, o) != WR_OK)
        goto nomem;
    if (snapshot_read(dir, &snap, &covered, err, errlen) != WR_OK)
        goto err;
    if (snapshot_load(t, dir, snap, err, errlen) != WR_OK || journal_open(t, covered, err, errlen) != WR_OK)
        goto err;
    t->snap_size = wr_topo_state_size(t->state);
    if ((*state = wr_topo_state_dump(t->state)) == NULL)
        goto nomem;
    if (pthread_create(&t->thread, NULL, snapshot_main, t) != 0)
        goto nomem;
    t->started = true;
    maybe_snapshot(t);
    json_decref(snap);
    return t;
nomem:
    if (err[0] == '\0')
        snprintf(err, errlen, "out of memory opening the durable topology");
err:
    json_decref(*state);
    *state = NULL;
    json_decref(snap);
    wr_topology_close(t);
    return NULL;
}

void wr_topology_close(wr_topology_t *t)
{
    if (t == NULL)
        return;
    if (t->started) {
        hand_over(t, false);
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    if (t->efd >= 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        close(t->efd);
    }
    wr_seglog_close(t->journal);
    wr_topo_state_free(t->state);
    free(t);
}
