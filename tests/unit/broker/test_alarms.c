/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/node/alarm.c on a real event loop: the memory and
 * disk alarms against absolute thresholds (raised by the sample taken at
 * creation, or by the timer once a sample succeeds), and storage credit
 * flow against a real store in a temporary data_dir, ended by the store's
 * progress as server.c wires it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/node/alarm.h"
#include "broker/node/durable.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/map.h"
#include "core/status.h"
#include "tests/unit/broker/loop_fixture.h"
#include "tests/unit/storage/helpers.h"
#include "tests/unit/runner.h"

/* Loop passes that may each wait for the alarms' 100 ms timer. */
#define MAX_TICKS 300
#define HUGE      (UINT64_C(1) << 62)

typedef struct {
    struct event_base *base;
    wr_config_t *cfg;
    wr_alarms_t *alarms;
    int changed; /* calls of the alarms' changed callback */
    /* The store (test_storage_flow only). */
    wr_map_t *vhosts;
    wr_policies_t *policies;
    wr_vhost_env_t env;
    wr_durable_t *durable;
} fx_t;

static void on_changed(void *ud)
{
    ((fx_t *)ud)->changed++;
}

/* The store finished a batch: what server.c's storage progress does. */
static void on_progress(void *ud)
{
    fx_t *fx = ud;

    if (fx->alarms != NULL)
        wr_alarms_storage_progress(fx->alarms);
}

/* A default configuration with the given thresholds, data_dir under a new
 * temporary directory (subdir NULL: that directory itself). */
static void fx_start(fx_t *fx, uint64_t mem_bytes, uint64_t disk_bytes, const char *subdir)
{
    char dir[512];

    memset(fx, 0, sizeof(*fx));
    fx->base = wr_test_base_new();
    fx->cfg = wr_config_new_default();
    ck_assert_ptr_nonnull(fx->cfg);
    fx->cfg->memory_high_watermark_bytes = mem_bytes;
    fx->cfg->disk_free_limit_bytes = disk_bytes;
    snprintf(dir, sizeof(dir), "%s%s%s", th_tmpdir(), subdir ? "/" : "", subdir ? subdir : "");
    free(fx->cfg->data_dir);
    fx->cfg->data_dir = strdup(dir);
    ck_assert_ptr_nonnull(fx->cfg->data_dir);
}

static void fx_alarms(fx_t *fx)
{
    fx->alarms = wr_alarms_new(fx->cfg, fx->base, fx->durable, on_changed, fx);
    ck_assert_ptr_nonnull(fx->alarms);
}

static void fx_stop(fx_t *fx)
{
    wr_map_iter_t it = {0};
    void *vh;

    wr_alarms_free(fx->alarms);
    wr_durable_close(fx->durable);
    while (fx->vhosts != NULL && wr_map_next(fx->vhosts, &it, NULL, &vh))
        wr_vhost_free(vh);
    wr_map_free(fx->vhosts);
    wr_policies_free(fx->policies);
    wr_config_free(fx->cfg);
    event_base_free(fx->base);
    th_rmdir();
}

/* Waits on the loop (each pass ends at the next timer tick at the latest)
 * until cond holds, for at most MAX_TICKS passes. */
#define LOOP_UNTIL(fx, cond)                                                                                 \
    do {                                                                                                     \
        for (int tick_ = 0; !(cond) && tick_ < MAX_TICKS; tick_++)                                           \
            event_base_loop((fx)->base, EVLOOP_ONCE);                                                        \
        ck_assert_msg((cond), "after %d loop passes, still not: %s", MAX_TICKS, #cond);                      \
    } while (0)

/* ---------------------------------------------------------------- memory and disk */

static const struct {
    uint64_t mem_bytes;  /* absolute memory high watermark */
    uint64_t disk_bytes; /* disk free limit */
    unsigned reasons;
} threshold_cases[] = {
    {1, 0, WR_ALARM_MEMORY},
    {HUGE, 0, 0},
    {HUGE, HUGE, WR_ALARM_DISK},
    {1, HUGE, WR_ALARM_MEMORY | WR_ALARM_DISK},
};

/* The sample taken at creation raises what is due before anyone listens,
 * and the timer's later samples change nothing that has not changed. */
START_TEST(test_thresholds)
{
    unsigned want = threshold_cases[_i].reasons;
    wr_alarm_status_t st;
    fx_t fx;

    fx_start(&fx, threshold_cases[_i].mem_bytes, threshold_cases[_i].disk_bytes, NULL);
    fx_alarms(&fx);
    wr_alarm_status(fx.alarms, &st);
    ck_assert_int_eq(st.memory, (want & WR_ALARM_MEMORY) != 0);
    ck_assert_int_eq(st.disk, (want & WR_ALARM_DISK) != 0);
    ck_assert(!st.flow);
    ck_assert_uint_eq(st.mem_limit, threshold_cases[_i].mem_bytes);
    ck_assert_uint_gt(st.mem_used, 1);
    ck_assert_uint_eq(st.disk_limit, threshold_cases[_i].disk_bytes);
    ck_assert_uint_gt(st.disk_free, 0);
    ck_assert_uint_lt(st.disk_free, HUGE);
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), want);
    ck_assert_int_eq(wr_alarm_blocking(fx.alarms), want != 0);
    ck_assert_int_eq(fx.changed, want != 0);
    for (int i = 0; i < 3; i++)
        event_base_loop(fx.base, EVLOOP_ONCE);
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), want);
    ck_assert_int_eq(fx.changed, want != 0);
    fx_stop(&fx);
}
END_TEST

/* A failed disk sample (data_dir missing) raises nothing; the timer takes
 * the next one within a second, and the alarm follows then. */
START_TEST(test_disk_sampled_by_timer)
{
    wr_alarm_status_t st;
    fx_t fx;

    fx_start(&fx, HUGE, HUGE, "later");
    fx_alarms(&fx);
    wr_alarm_status(fx.alarms, &st);
    ck_assert(!st.disk);
    ck_assert_uint_eq(st.disk_free, 0);
    ck_assert_int_eq(fx.changed, 0);
    ck_assert_int_eq(mkdir(fx.cfg->data_dir, 0700), 0);
    LOOP_UNTIL(&fx, wr_alarm_reasons(fx.alarms) == WR_ALARM_DISK);
    ck_assert_int_eq(fx.changed, 1);
    ck_assert(wr_alarm_blocking(fx.alarms));
    fx_stop(&fx);
}
END_TEST

/* ---------------------------------------------------------------- storage flow */

/* The store's hooks: vhosts it recovers or seeds go into fx->vhosts. */
static int fx_vhost_add(void *ud, const char *name, const json_t *settings)
{
    fx_t *fx = ud;
    wr_vhost_t *vh;

    if (wr_map_get(fx->vhosts, wr_bytes_str(name)) != NULL)
        return WR_EEXIST;
    vh = wr_vhost_new(&fx->env, name);
    ck_assert_ptr_nonnull(vh);
    return wr_map_put(fx->vhosts, wr_bytes_str(wr_vhost_name(vh)), vh);
}

static int fx_seed(void *ud)
{
    return WR_OK;
}

/* The store in data_dir, with vhost "/" and a durable queue "q" in it. */
static wr_queue_t *fx_store(fx_t *fx)
{
    wr_durable_deps_t deps;
    wr_vhost_t *vh;
    wr_queue_t *q = NULL;

    fx->vhosts = wr_map_new();
    fx->policies = wr_policies_new(fx->vhosts);
    ck_assert(fx->vhosts != NULL && fx->policies != NULL);
    fx->env = (wr_vhost_env_t){.base = fx->base, .policies = fx->policies, .consumer_timeout = -1};
    deps = (wr_durable_deps_t){fx->cfg,        fx->base,     fx->vhosts, &fx->env, on_progress,
                               &fx->cfg->auth, fx_vhost_add, fx_seed,    fx,       false};
    ck_assert_int_eq(wr_durable_open(&deps, &fx->durable), WR_OK);
    vh = wr_map_get(fx->vhosts, WR_BYTES_LIT("/"));
    ck_assert_ptr_nonnull(vh);
    ck_assert_int_eq(wr_vhost_queue_add(vh, WR_BYTES_LIT("q"), &(wr_queue_opts_t){.durable = true}, &q),
                     WR_OK);
    return q;
}

/* A persistent message of size bytes, published to the default exchange
 * for "q" (its durable queue writes it to the store at once). */
static void publish_persistent(fx_t *fx, size_t size)
{
    wr_vhost_t *vh = wr_map_get(fx->vhosts, WR_BYTES_LIT("/"));
    char *body = malloc(size + 1);
    wr_dest_set_t scratch;
    wr_message_t *m;
    size_t routed = 0;

    ck_assert_ptr_nonnull(body);
    memset(body, 'b', size);
    body[size] = '\0';
    m = wr_test_message("", "q", body, true);
    wr_dest_set_init(&scratch);
    ck_assert(
        wr_vhost_publish(vh, wr_vhost_exchange(vh, WR_BYTES_LIT("")), m, &scratch, NULL, &routed, NULL));
    ck_assert_uint_eq(routed, 1);
    wr_dest_set_free(&scratch);
    wr_message_unref(m);
    free(body);
}

START_TEST(test_storage_flow)
{
    const uint64_t limit = 1 << 20; /* the smallest the configuration allows */
    wr_alarm_status_t st;
    fx_t fx;

    fx_start(&fx, HUGE, 0, NULL);
    fx.cfg->flow_storage_pending_bytes = limit;
    fx.cfg->segment_size = 4 << 20;
    fx_store(&fx);
    fx_alarms(&fx);
    LOOP_UNTIL(&fx, wr_durable_pending_bytes(fx.durable) == 0);
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), 0);

    publish_persistent(&fx, limit + limit / 2);
    ck_assert_uint_gt(wr_durable_pending_bytes(fx.durable), limit);
    /* Checked on the spot, for the connection that is publishing. */
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), WR_ALARM_FLOW);
    ck_assert(!wr_alarm_blocking(fx.alarms));
    wr_alarm_status(fx.alarms, &st);
    ck_assert(st.flow);
    ck_assert_uint_eq(st.flow_started, 1);
    ck_assert_uint_eq(st.storage_limit, limit);
    ck_assert_uint_gt(st.storage_pending, limit);
    ck_assert_int_eq(fx.changed, 0);

    /* The store's progress ends it, and the held connections are told. */
    LOOP_UNTIL(&fx, (wr_alarm_status(fx.alarms, &st), !st.flow));
    ck_assert_uint_le(wr_durable_pending_bytes(fx.durable), limit / 2);
    ck_assert_int_eq(fx.changed, 1);
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), 0);
    ck_assert_uint_eq(st.flow_started, 1);
    fx_stop(&fx);
}
END_TEST

/* Without a store there is no backlog: never flow. */
START_TEST(test_no_store_no_flow)
{
    fx_t fx;

    fx_start(&fx, HUGE, 0, NULL);
    fx.cfg->flow_storage_pending_bytes = 1;
    fx_alarms(&fx);
    ck_assert_uint_eq(wr_alarm_reasons(fx.alarms), 0);
    wr_alarms_storage_progress(fx.alarms);
    ck_assert_int_eq(fx.changed, 0);
    fx_stop(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alarms");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_thresholds, 0, (int)(sizeof(threshold_cases) / sizeof(threshold_cases[0])));
    tcase_add_test(tc, test_disk_sampled_by_timer);
    tcase_add_test(tc, test_storage_flow);
    tcase_add_test(tc, test_no_store_no_flow);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
