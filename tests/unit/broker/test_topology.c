/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the durable topology: the state machine (broker/node/topo_state.c:
 * cascades, stale bindings, malformed records) and the journal with its
 * snapshots (broker/node/topology.c) on a real store in a temporary directory:
 * replay after a restart, a torn tail and a record with a bad CRC, snapshots
 * that truncate the journal, a crash between a snapshot and the truncation,
 * a topology.json of format versions 1 and 2 as earlier versions wrote them,
 * and the definitions records (vhosts, users, permissions) with their errors.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/node/topo_state.h"
#include "broker/node/topology.h"
#include "core/status.h"
#include "tests/unit/storage/helpers.h"
#include "tests/unit/runner.h"

/* ---------------------------------------------------------------- helpers */

static json_t *queue_entry(const char *name)
{
    return json_pack("{s:s,s:b,s:b,s:s,s:s}", "name", name, "durable", 1, "auto_delete", 0, "arguments", "",
                     "log", "q0000000000000001");
}

static json_t *exchange_entry(const char *name)
{
    return json_pack("{s:s,s:s,s:b,s:b,s:b,s:s}", "name", name, "type", "direct", "durable", 1, "auto_delete",
                     0, "internal", 0, "arguments", "");
}

static json_t *binding_entry(const char *source, const char *queue, const char *key)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "source", source, "destination", queue, "destination_type",
                     "queue", "routing_key", key, "arguments", "");
}

static json_t *named(const char *name)
{
    return json_pack("{s:s}", "name", name);
}

static void apply(wr_topo_state_t *st, wr_topo_op_t op, json_t *entry)
{
    json_t *rec = wr_topo_rec("/", op, entry);
    char err[256];

    ck_assert_ptr_nonnull(rec);
    ck_assert_int_eq(wr_topo_state_apply(st, rec, err, sizeof(err)), WR_OK);
    json_decref(rec);
}

/* The names in section ("queues", "exchanges") of vhost "/" of a dump, sorted, joined with ','. */
static const char *names(json_t *state, const char *section)
{
    static char out[1024];
    const json_t *list = json_object_get(json_object_get(json_object_get(state, "vhosts"), "/"), section), *e;
    const char *v[64];
    size_t i, n = 0;

    out[0] = '\0';
    json_array_foreach(list, i, e)
    {
        ck_assert_uint_lt(n, 64);
        v[n++] = json_string_value(json_object_get(e, section[0] == 'b' ? "routing_key" : "name"));
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (strcmp(v[b], v[a]) < 0) {
                const char *t = v[a];
                v[a] = v[b];
                v[b] = t;
            }
    for (i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "," : "", v[i]);
    return out;
}

/* ---------------------------------------------------------------- state */

START_TEST(state_cascades)
{
    wr_topo_state_t *st = wr_topo_state_new();
    json_t *d;

    apply(st, WR_TOPO_EXCHANGE_DECLARE, exchange_entry("x"));
    apply(st, WR_TOPO_QUEUE_DECLARE, queue_entry("q1"));
    apply(st, WR_TOPO_QUEUE_DECLARE, queue_entry("q2"));
    apply(st, WR_TOPO_BIND, binding_entry("x", "q1", "k1"));
    apply(st, WR_TOPO_BIND, binding_entry("x", "q2", "k2"));
    apply(st, WR_TOPO_BIND, binding_entry("amq.direct", "q2", "k3"));
    apply(st, WR_TOPO_BIND, binding_entry("x", "q2", "k4"));
    apply(st, WR_TOPO_UNBIND, binding_entry("x", "q2", "k4"));
    /* Deleting q1 drops its binding; deleting and redeclaring x drops the
     * bindings made from the old x, not the one from amq.direct. */
    apply(st, WR_TOPO_QUEUE_DELETE, named("q1"));
    apply(st, WR_TOPO_EXCHANGE_DELETE, named("x"));
    apply(st, WR_TOPO_EXCHANGE_DECLARE, exchange_entry("x"));
    apply(st, WR_TOPO_QUEUE_DELETE, named("absent"));
    d = wr_topo_state_dump(st);
    ck_assert_str_eq(names(d, "queues"), "q2");
    ck_assert_str_eq(names(d, "exchanges"), "x");
    ck_assert_str_eq(names(d, "bindings"), "k3");
    ck_assert_uint_eq(wr_topo_state_size(st), 3);
    json_decref(d);
    wr_topo_state_free(st);
}
END_TEST

START_TEST(state_rejects_malformed)
{
    wr_topo_state_t *st = wr_topo_state_new();
    json_t *bad[] = {json_pack("{s:s,s:s,s:{}}", "vhost", "/", "op", "queue.declare", "entry"),
                     json_pack("{s:s,s:s,s:{s:s}}", "vhost", "/", "op", "queue.rename", "entry", "name", "q"),
                     json_pack("{s:s,s:{s:i}}", "op", "queue.delete", "entry", "name", 1), json_pack("[]")};
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(wr_topo_state_apply(st, bad[i], err, sizeof(err)), WR_ESYNTAX);
        ck_assert_str_eq(err, "not a topology change record");
        json_decref(bad[i]);
    }
    wr_topo_state_free(st);
}
END_TEST

/* Applies a record given as JSON text; returns the status, err set. */
static int apply_text(wr_topo_state_t *st, const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *rec = json_loads(text, 0, &jerr);
    int rc;

    ck_assert_msg(rec != NULL, "%s: %s", text, jerr.text);
    err[0] = '\0';
    rc = wr_topo_state_apply(st, rec, err, errlen);
    json_decref(rec);
    return rc;
}

static void apply_ok(wr_topo_state_t *st, const char *text)
{
    char err[256];

    ck_assert_msg(apply_text(st, text, err, sizeof(err)) == WR_OK, "%s: %s", text, err);
}

/* The dump's text with sorted keys, for exact comparisons. */
static char *dump_text(wr_topo_state_t *st)
{
    json_t *d = wr_topo_state_dump(st);
    char *text;

    ck_assert_ptr_nonnull(d);
    text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return text;
}

#define USER_A                                                                                               \
    "{\"op\":\"user.put\",\"entry\":{\"name\":\"a\",\"password_hash\":\"\",\"hashing_algorithm\":\"rabbit_"  \
    "password_hashing_sha256\",\"tags\":[\"management\"]}}"

START_TEST(state_vhosts_users_permissions)
{
    wr_topo_state_t *st = wr_topo_state_new(), *again = wr_topo_state_new();
    json_t *d;
    char *text, *text2, err[256];

    apply_ok(st,
             "{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":{\"description\":\"d\",\"tags\":[\"t\"]}}");
    /* A permission needs its vhost and its user; without them it is a no-op. */
    apply_ok(st, "{\"vhost\":\"v\",\"op\":\"permission.put\",\"entry\":{\"user\":\"a\",\"configure\":\".*\","
                 "\"write\":\".*\",\"read\":\".*\"}}");
    apply_ok(st, USER_A);
    apply_ok(st, "{\"vhost\":\"v\",\"op\":\"permission.put\",\"entry\":{\"user\":\"a\",\"configure\":\".*\","
                 "\"write\":\".*\",\"read\":\".*\"}}");
    apply_ok(st,
             "{\"vhost\":\"absent\",\"op\":\"permission.put\",\"entry\":{\"user\":\"a\",\"configure\":\"\","
             "\"write\":\"\",\"read\":\"\"}}");
    apply_ok(st, "{\"vhost\":\"w\",\"op\":\"queue.declare\",\"entry\":{\"name\":\"q\",\"log\":\"q1\"}}");
    apply_ok(st, "{\"vhost\":\"w\",\"op\":\"permission.put\",\"entry\":{\"user\":\"a\",\"configure\":\"\","
                 "\"write\":\"\",\"read\":\"x\"}}");
    apply_ok(st, "{\"op\":\"seeded\",\"entry\":{}}");
    ck_assert_uint_eq(wr_topo_state_size(st), 4); /* a user, two permissions, a queue */
    text = dump_text(st);
    ck_assert_str_eq(
        text, "{\"seeded\":true,\"users\":[{\"hashing_algorithm\":\"rabbit_password_hashing_sha256\","
              "\"name\":\"a\","
              "\"password_hash\":\"\",\"tags\":[\"management\"]}],\"vhosts\":{\"v\":{\"bindings\":[],"
              "\"exchanges\":[],"
              "\"permissions\":[{\"configure\":\".*\",\"read\":\".*\",\"user\":\"a\",\"write\":\".*\"}],"
              "\"policies\":[],"
              "\"queues\":[],\"settings\":{\"description\":\"d\",\"tags\":[\"t\"]}},\"w\":{\"bindings\":[],"
              "\"exchanges\":[],\"permissions\":[{\"configure\":\"\",\"read\":\"x\",\"user\":\"a\",\"write\":"
              "\"\"}],"
              "\"policies\":[],\"queues\":[{\"log\":\"q1\",\"name\":\"q\"}]}}}");
    /* Its own dump loads into the same state. */
    d = wr_topo_state_dump(st);
    ck_assert_int_eq(wr_topo_state_load(again, d, err, sizeof(err)), WR_OK);
    json_decref(d);
    text2 = dump_text(again);
    ck_assert_str_eq(text, text2);
    free(text);
    free(text2);
    /* A user's delete takes its permissions everywhere; a vhost's delete all it holds. */
    apply_ok(st, "{\"op\":\"user.delete\",\"entry\":{\"name\":\"a\"}}");
    apply_ok(st, "{\"vhost\":\"w\",\"op\":\"vhost.delete\",\"entry\":{}}");
    apply_ok(st, "{\"vhost\":\"gone\",\"op\":\"vhost.delete\",\"entry\":{}}");
    ck_assert_uint_eq(wr_topo_state_size(st), 0);
    text = dump_text(st);
    ck_assert_str_eq(text,
                     "{\"seeded\":true,\"users\":[],\"vhosts\":{\"v\":{\"bindings\":[],\"exchanges\":[],"
                     "\"permissions\":[],\"policies\":[],\"queues\":[],\"settings\":{\"description\":\"d\","
                     "\"tags\":[\"t\"]}}}}");
    free(text);
    wr_topo_state_free(st);
    wr_topo_state_free(again);
}
END_TEST

START_TEST(state_rejects_malformed_definitions)
{
    static const struct {
        const char *rec, *err;
    } bad[] = {
        {"{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":[]}", "vhost.declare: entry must be an object"},
        {"{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":{\"tags\":\"a,b\"}}",
         "vhost.declare: \"tags\" must be a list of strings"},
        {"{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":{\"tags\":[1]}}",
         "vhost.declare: \"tags\" must be a list of strings"},
        {"{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":{\"tracing\":\"yes\"}}",
         "vhost.declare: \"tracing\" must be a boolean"},
        {"{\"vhost\":\"v\",\"op\":\"vhost.declare\",\"entry\":{\"description\":1}}",
         "vhost.declare: \"description\" must be a string"},
        {"{\"vhost\":\"v\",\"op\":\"vhost.delete\",\"entry\":\"v\"}",
         "vhost.delete: entry must be an object"},
        {"{\"vhost\":\"v\",\"op\":\"permission.put\",\"entry\":{\"user\":\"a\",\"configure\":\".*\"}}",
         "permission.put: \"write\" must be a string"},
        {"{\"vhost\":\"v\",\"op\":\"permission.delete\",\"entry\":{}}",
         "permission.delete: \"user\" must be a string"},
        {"{\"op\":\"user.put\",\"entry\":{\"name\":\"a\",\"password_hash\":\"\",\"hashing_algorithm\":\"x\"}"
         "}",
         "user.put: \"tags\" must be a list of strings"},
        {"{\"op\":\"user.put\",\"entry\":{\"name\":\"\",\"password_hash\":\"\",\"hashing_algorithm\":\"x\","
         "\"tags\":[]}}",
         "user.put: \"name\" must not be empty"},
        {"{\"op\":\"user.put\",\"entry\":{\"name\":\"a\",\"password_hash\":\"\",\"hashing_algorithm\":\"x\","
         "\"tags\":[],\"limits\":5}}",
         "user.put: \"limits\" must be an object"},
        {"{\"vhost\":\"v\",\"op\":\"user.delete\",\"entry\":{\"name\":\"a\"}}",
         "user.delete: a node-wide record has no \"vhost\""},
        {"{\"op\":\"user.delete\",\"entry\":{\"name\":1}}", "user.delete: \"name\" must be a string"},
        {"{\"op\":\"seeded\",\"entry\":true}", "seeded: entry must be an object"},
        {"{\"op\":\"permission.put\",\"entry\":{}}", "not a topology change record"},
        {"{\"vhost\":\"v\",\"op\":\"user.rename\",\"entry\":{}}", "not a topology change record"},
    };
    wr_topo_state_t *st = wr_topo_state_new();
    char err[256], *text;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(apply_text(st, bad[i].rec, err, sizeof(err)), WR_ESYNTAX);
        ck_assert_str_eq(err, bad[i].err);
    }
    /* None of them left anything behind, not even the vhost they named. */
    text = dump_text(st);
    ck_assert_str_eq(text, "{\"seeded\":false,\"users\":[],\"vhosts\":{}}");
    free(text);
    wr_topo_state_free(st);
}
END_TEST

/* ---------------------------------------------------------------- journal */

typedef struct {
    th_msgs_t msgs;
    th_fault_t *fault; /* the store's fault hook, if set before fx_open */
    wr_store_t *store;
    wr_topology_t *t;
    json_t *vhosts;
    uint64_t durable;
} fx_t;

static void on_durable(void *ud, uint64_t seq)
{
    ((fx_t *)ud)->durable = seq;
}

static void fx_open(fx_t *fx, size_t snapshot_min)
{
    wr_store_opts_t o = th_opts(0, &fx->msgs, fx->fault);
    wr_topology_opts_t to = {on_durable, fx, snapshot_min};
    char err[1024];

    fx->store = th_store(&o);
    json_decref(fx->vhosts);
    fx->t = wr_topology_open(fx->store, th_tmpdir_path(), &to, &fx->vhosts, err, sizeof(err));
    ck_assert_msg(fx->t != NULL, "%s", err);
}

static void fx_close(fx_t *fx)
{
    wr_topology_close(fx->t);
    wr_store_close(fx->store);
    fx->t = NULL;
    fx->store = NULL;
}

static void fx_start(fx_t *fx, size_t snapshot_min)
{
    memset(fx, 0, sizeof(*fx));
    th_tmpdir();
    fx_open(fx, snapshot_min);
}

static void fx_stop(fx_t *fx)
{
    fx_close(fx);
    json_decref(fx->vhosts);
    th_rmdir();
}

static uint64_t fx_append(fx_t *fx, wr_topo_op_t op, json_t *entry)
{
    uint64_t seq;

    ck_assert_int_eq(wr_topology_append(fx->t, wr_topo_rec("/", op, entry), &seq), WR_OK);
    return seq;
}

/* Flushes and waits until the journal has seq on disk. */
static void fx_sync(fx_t *fx, uint64_t seq)
{
    wr_store_flush(fx->store);
    while (fx->durable < seq)
        th_wait_dispatch(fx->store);
}

/* Waits for the snapshot thread's report and takes it. */
static void fx_snapshot_done(fx_t *fx)
{
    struct pollfd p = {wr_topology_notify_fd(fx->t), POLLIN, 0};

    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    wr_topology_dispatch(fx->t);
}

/*
 * The journal fails (its record is lost), so its change waits for a
 * snapshot, and the snapshot fails too. It is tried again on its own a
 * second later, as the broker's timer does when wr_topology_due_us says:
 * a declare waiting for it does not wait for the next change.
 */
START_TEST(failed_snapshot_is_tried_again)
{
    th_fault_t fault;
    fx_t fx;
    uint64_t seq;
    int64_t due;

    th_fault_init(&fault);
    memset(&fx, 0, sizeof(fx));
    fx.fault = &fault;
    th_tmpdir();
    fx_open(&fx, (size_t)1 << 30);
    ck_assert_int_eq(wr_topology_due_us(fx.t), -1);
    fault.err = EIO;
    snprintf(fault.match, sizeof(fault.match), "/logs/%s/", WR_TOPOLOGY_LOG);
    fault.fail_sync = 1;
    fault.fail_tmp_write = 1;
    seq = fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("a"));
    wr_topology_flush(fx.t);
    wr_store_flush(fx.store);
    th_wait_dispatch(fx.store); /* the journal's write error asks for a snapshot */
    wr_topology_flush(fx.t);
    fx_snapshot_done(&fx); /* which fails */
    ck_assert_uint_lt(fx.durable, seq);
    due = wr_topology_due_us(fx.t);
    ck_assert_int_gt(due, 900 * 1000);
    ck_assert_int_le(due, 1000 * 1000);
    /* Not before it is due. */
    wr_topology_flush(fx.t);
    ck_assert_int_gt(wr_topology_due_us(fx.t), 0);
    poll(NULL, 0, (int)(due / 1000) + 1);
    ck_assert_int_eq(wr_topology_due_us(fx.t), 0);
    wr_topology_flush(fx.t);
    fx_snapshot_done(&fx);
    ck_assert_uint_eq(fx.durable, seq);
    ck_assert_int_eq(wr_topology_due_us(fx.t), -1);
    fx_close(&fx);
    fx_open(&fx, (size_t)1 << 30);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "a");
    fx.fault = NULL;
    fx_stop(&fx);
    th_fault_fini(&fault);
}
END_TEST

static const char *segment_path(void)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/0000000000000001.seg", th_logdir(WR_TOPOLOGY_LOG));
    return path;
}

/* Where the records of a journal segment end: the store writes zeros ahead of them (docs/STORAGE.md). */
static off_t records_end(const char *path)
{
    FILE *f = fopen(path, "rb");
    off_t end = 0, at = 0;
    int c;

    ck_assert_ptr_nonnull(f);
    while ((c = fgetc(f)) != EOF) {
        at++;
        if (c != 0)
            end = at;
    }
    fclose(f);
    return end;
}

START_TEST(journal_replays_after_restart)
{
    fx_t fx;
    uint64_t seq;

    fx_start(&fx, 0);
    ck_assert_uint_eq(json_object_size(json_object_get(fx.vhosts, "vhosts")), 0);
    fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("a"));
    fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("b"));
    fx_append(&fx, WR_TOPO_EXCHANGE_DECLARE, exchange_entry("x"));
    fx_append(&fx, WR_TOPO_BIND, binding_entry("x", "b", "k"));
    seq = fx_append(&fx, WR_TOPO_QUEUE_DELETE, named("a"));
    ck_assert_uint_eq(seq, 5);
    ck_assert_uint_lt(wr_topology_durable(fx.t), seq);
    fx_sync(&fx, seq);
    fx_close(&fx);
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "b");
    ck_assert_str_eq(names(fx.vhosts, "exchanges"), "x");
    ck_assert_str_eq(names(fx.vhosts, "bindings"), "k");
    /* Numbering goes on past what was replayed. */
    ck_assert_uint_eq(wr_topology_seq(fx.t), 5);
    ck_assert_uint_eq(fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("c")), 6);
    fx_stop(&fx);
}
END_TEST

/* kill -9 in the middle of a journal write: the record cut short is dropped,
 * the ones before it (declare-ok'ed) are kept. */
START_TEST(journal_torn_tail)
{
    fx_t fx;
    off_t size;

    fx_start(&fx, 0);
    fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("a"));
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("b")));
    size = records_end(segment_path());
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("c")));
    fx_close(&fx);
    ck_assert_int_eq(truncate(segment_path(), size + 20), 0);
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "a,b");
    ck_assert(th_msgs_has(&fx.msgs, "torn tail"));
    /* The next change takes the lost one's place and survives a restart. */
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("d")));
    fx_close(&fx);
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "a,b,d");
    fx_stop(&fx);
}
END_TEST

/* Flips one byte in the payload of the record that starts at offset off. */
static void corrupt_at(off_t off)
{
    int fd = open(segment_path(), O_RDWR);
    char c;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, off + 30), 1);
    c ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &c, 1, off + 30), 1);
    close(fd);
}

/* A record whose CRC does not verify is never applied: the last one is a
 * torn tail, one in the middle costs only itself (and is reported). */
START_TEST(journal_bad_crc)
{
    fx_t fx;
    off_t second, third;

    fx_start(&fx, 0);
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("a")));
    second = records_end(segment_path());
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("b")));
    third = records_end(segment_path());
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("c")));
    fx_close(&fx);
    corrupt_at(third);
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "a,b");
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("c")));
    fx_close(&fx);
    corrupt_at(second);
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "a,c");
    ck_assert(th_msgs_has(&fx.msgs, "1 record(s) lost"));
    fx_stop(&fx);
}
END_TEST

START_TEST(snapshot_truncates_journal)
{
    fx_t fx;
    uint64_t seq = 0;
    char path[4096], name[16];
    json_t *root;

    fx_start(&fx, 8);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "q%d", i);
        seq = fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry(name));
    }
    /* The 8th change asked for a snapshot; it covers all of them and makes them durable. */
    fx_snapshot_done(&fx);
    ck_assert_uint_eq(fx.durable, seq);
    snprintf(path, sizeof(path), "%s/topology.json", th_tmpdir_path());
    root = json_load_file(path, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "version")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "journal")), 8);
    json_decref(root);
    fx_append(&fx, WR_TOPO_QUEUE_DELETE, named("q0"));
    fx_sync(&fx, 9);
    fx_close(&fx);
    fx_open(&fx, 8);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "q1,q2,q3,q4,q5,q6,q7");
    ck_assert_uint_eq(wr_topology_seq(fx.t), 9);
    fx_stop(&fx);
}
END_TEST

static void write_file(const char *name, const char *text)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", th_tmpdir_path(), name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* kill -9 after a snapshot's rename, before the journal's truncation: the
 * records it covers are not applied again. */
START_TEST(snapshot_covers_journal_records)
{
    fx_t fx;

    fx_start(&fx, 0);
    fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("a"));
    fx_sync(&fx, fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("b")));
    fx_close(&fx);
    write_file("topology.json",
               "{\"format\": \"warren-topology\", \"version\": 2, \"journal\": 1, \"vhosts\": "
               "{\"/\": {\"queues\": [{\"name\": \"s\", \"durable\": true, \"auto_delete\": "
               "false, \"arguments\": \"\", \"log\": \"q0000000000000009\"}]}}}");
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "b,s");
    fx_stop(&fx);
}
END_TEST

/* A data directory of the previous version: topology.json, version 1, no journal. */
START_TEST(loads_version_1)
{
    fx_t fx;

    memset(&fx, 0, sizeof(fx));
    th_tmpdir();
    write_file(
        "topology.json",
        "{\n \"format\": \"warren-topology\",\n \"version\": 1,\n \"vhosts\": {\n  \"/\": {\n   "
        "\"bindings\": [{\"arguments\": \"\", \"destination\": \"old\", \"destination_type\": \"queue\", "
        "\"routing_key\": \"rk\", \"source\": \"ex\"}],\n   \"exchanges\": [{\"arguments\": \"\", "
        "\"auto_delete\": false, \"durable\": true, \"internal\": false, \"name\": \"ex\", \"type\": "
        "\"topic\"}],\n   \"policies\": [],\n   \"queues\": [{\"arguments\": \"\", \"auto_delete\": false, "
        "\"durable\": true, \"log\": \"q0000000000000000\", \"name\": \"old\"}]\n  }\n }\n}\n");
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "old");
    ck_assert_str_eq(names(fx.vhosts, "exchanges"), "ex");
    ck_assert_str_eq(names(fx.vhosts, "bindings"), "rk");
    fx_stop(&fx);
}
END_TEST

/* Users, permissions and vhost settings go through the journal, then a
 * snapshot, like the rest. */
START_TEST(journal_keeps_definitions)
{
    fx_t fx;
    json_t *user = json_pack("{s:s,s:s,s:s,s:[s]}", "name", "a", "password_hash", "", "hashing_algorithm",
                             "rabbit_password_hashing_sha256", "tags", "management");
    uint64_t seq;

    fx_start(&fx, 4);
    ck_assert(!json_is_true(json_object_get(fx.vhosts, "seeded")));
    wr_topology_append(fx.t, wr_topo_rec(NULL, WR_TOPO_USER_PUT, user), &seq);
    fx_append(&fx, WR_TOPO_VHOST_DECLARE, json_pack("{s:s}", "description", "root"));
    fx_append(&fx, WR_TOPO_PERMISSION_PUT,
              json_pack("{s:s,s:s,s:s,s:s}", "user", "a", "configure", ".*", "write", ".*", "read", ""));
    wr_topology_append(fx.t, wr_topo_rec(NULL, WR_TOPO_SEEDED, json_object()), &seq);
    fx_snapshot_done(&fx);
    fx_append(&fx, WR_TOPO_QUEUE_DECLARE, queue_entry("q"));
    fx_sync(&fx, 5);
    fx_close(&fx);
    fx_open(&fx, 4);
    ck_assert(json_is_true(json_object_get(fx.vhosts, "seeded")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(fx.vhosts, "users"), 0), "name")),
        "a");
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(fx.vhosts, "vhosts"), "/"), "settings"),
            "description")),
        "root");
    ck_assert_str_eq(names(fx.vhosts, "queues"), "q");
    ck_assert_uint_eq(json_array_size(json_object_get(
                          json_object_get(json_object_get(fx.vhosts, "vhosts"), "/"), "permissions")),
                      1);
    fx_stop(&fx);
}
END_TEST

/* The previous version's snapshot (version 2): vhosts' contents only, so
 * the store is not seeded yet. */
START_TEST(loads_version_2)
{
    fx_t fx;

    memset(&fx, 0, sizeof(fx));
    th_tmpdir();
    write_file(
        "topology.json",
        "{\"format\":\"warren-topology\",\"version\":2,\"journal\":7,\"vhosts\":{\"/\":{\"policies\":[],"
        "\"exchanges\":[],\"bindings\":[],\"queues\":[{\"name\":\"old\",\"durable\":true,\"auto_delete\":"
        "false,\"arguments\":\"\",\"log\":\"q0000000000000003\"}]},\"legacy\":{\"policies\":[],"
        "\"exchanges\":[],\"queues\":[],\"bindings\":[]}}}");
    fx_open(&fx, 0);
    ck_assert_str_eq(names(fx.vhosts, "queues"), "old");
    ck_assert_ptr_nonnull(json_object_get(json_object_get(fx.vhosts, "vhosts"), "legacy"));
    ck_assert(json_is_false(json_object_get(fx.vhosts, "seeded")));
    ck_assert_uint_eq(json_array_size(json_object_get(fx.vhosts, "users")), 0);
    ck_assert_uint_eq(wr_topology_seq(fx.t), 7);
    fx_stop(&fx);
}
END_TEST

/* A snapshot whose definitions are malformed stops the start, naming the file. */
START_TEST(refuses_malformed_definitions)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"{\"format\":\"warren-topology\",\"version\":3,\"users\":5,\"vhosts\":{}}",
         "its users are malformed"},
        {"{\"format\":\"warren-topology\",\"version\":3,\"users\":[{\"name\":\"a\"}],\"vhosts\":{}}",
         "its users are malformed"},
        {"{\"format\":\"warren-topology\",\"version\":3,\"seeded\":1,\"vhosts\":{}}",
         "not a topology snapshot"},
        {"{\"format\":\"warren-topology\",\"version\":3,\"vhosts\":{\"v\":{\"settings\":{\"tags\":1}}}}",
         "vhost 'v' is malformed"},
    };
    wr_topology_opts_t to = {0};
    th_msgs_t msgs = {0};
    wr_store_opts_t o;
    json_t *state;
    char err[1024], want[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wr_store_t *s;

        th_tmpdir();
        o = th_opts(0, &msgs, NULL);
        write_file("topology.json", bad[i].text);
        s = th_store(&o);
        ck_assert_ptr_null(wr_topology_open(s, th_tmpdir_path(), &to, &state, err, sizeof(err)));
        snprintf(want, sizeof(want), "the durable topology %s/topology.json: %s", th_tmpdir_path(),
                 bad[i].err);
        ck_assert_str_eq(err, want);
        wr_store_close(s);
        th_rmdir();
    }
}
END_TEST

START_TEST(refuses_unknown_version)
{
    wr_store_opts_t o;
    th_msgs_t msgs = {0};
    wr_topology_opts_t to = {0};
    wr_store_t *s;
    json_t *vhosts;
    char err[1024];

    th_tmpdir();
    o = th_opts(0, &msgs, NULL);
    write_file("topology.json", "{\"format\": \"warren-topology\", \"version\": 4, \"vhosts\": {}}");
    s = th_store(&o);
    ck_assert_ptr_null(wr_topology_open(s, th_tmpdir_path(), &to, &vhosts, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "has format version 4; this build reads versions 1 to 3"));
    wr_store_close(s);
    th_rmdir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("topology");
    TCase *tc = tcase_create("topology");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, state_cascades);
    tcase_add_test(tc, state_rejects_malformed);
    tcase_add_test(tc, state_vhosts_users_permissions);
    tcase_add_test(tc, state_rejects_malformed_definitions);
    tcase_add_test(tc, journal_replays_after_restart);
    tcase_add_test(tc, journal_torn_tail);
    tcase_add_test(tc, journal_bad_crc);
    tcase_add_test(tc, snapshot_truncates_journal);
    tcase_add_test(tc, failed_snapshot_is_tried_again);
    tcase_add_test(tc, snapshot_covers_journal_records);
    tcase_add_test(tc, loads_version_1);
    tcase_add_test(tc, loads_version_2);
    tcase_add_test(tc, journal_keeps_definitions);
    tcase_add_test(tc, refuses_unknown_version);
    tcase_add_test(tc, refuses_malformed_definitions);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
