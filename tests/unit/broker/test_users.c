/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/auth/users.c's run-time changes as the node's store
 * hears them: the observer is told of each user and permission change, in
 * order, and a user and its permissions written as store entries
 * (broker/node/durable_defs.c) come back into a fresh database with the same
 * password, tags, limit and patterns.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/node/durable_defs.h"
#include "config_fixture.h"
#include "core/status.h"
#include "tests/unit/runner.h"

/* What the observer heard, one line per change. */
typedef struct {
    char log[1024];
} heard_t;

static void heard(heard_t *h, const char *what, const char *a, const char *b)
{
    snprintf(h->log + strlen(h->log), sizeof(h->log) - strlen(h->log), "%s %s%s%s;", what, a, b ? " " : "",
             b ? b : "");
}

static void on_user_put(void *ud, const wr_user_cfg_t *u)
{
    heard(ud, "user", u->name, u->has_max_connections ? "limited" : NULL);
}

static void on_user_deleted(void *ud, const char *name)
{
    heard(ud, "-user", name, NULL);
}

static void on_permission_put(void *ud, const wr_permission_cfg_t *perm)
{
    heard(ud, "perm", perm->user, perm->vhost);
}

static void on_permission_deleted(void *ud, const char *user, const char *vhost)
{
    heard(ud, "-perm", user, vhost);
}

static const wr_users_observer_t observer = {on_user_put, on_user_deleted, on_permission_put,
                                             on_permission_deleted};
static const char *const all[WR_PERM_KINDS] = {".*", ".*", ""};

START_TEST(observer_hears_every_change)
{
    wr_config_t *cfg = wr_config_new_default();
    heard_t h = {""};
    char err[256];
    bool created;

    cfg->auth.observer = &observer;
    cfg->auth.observer_ud = &h;
    ck_assert_int_eq(wr_users_put(&cfg->auth, "a", NULL, 0, WR_HASH_SHA256, NULL, 0, &created), WR_OK);
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "a", "v", all, &created, err, sizeof(err)), WR_OK);
    ck_assert(wr_users_set_max_connections(&cfg->auth, "a", 2));
    ck_assert(!wr_users_set_max_connections(&cfg->auth, "nobody", 2));
    ck_assert(wr_users_delete_permission(&cfg->auth, "a", "v"));
    ck_assert(!wr_users_delete_permission(&cfg->auth, "a", "v"));
    /* A bad pattern changes nothing, so nothing is heard. */
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "a", "v", (const char *const[]){"(", "", ""},
                                             &created, err, sizeof(err)),
                     WR_ESYNTAX);
    ck_assert(wr_users_delete(&cfg->auth, "a"));
    wr_users_clear(&cfg->auth);
    ck_assert_uint_eq(cfg->auth.nusers, 0);
    ck_assert_str_eq(h.log, "user a;perm a v;user a limited;-perm a v;-user a;-user guest;");
    wr_config_free(cfg);
}
END_TEST

START_TEST(store_entries_round_trip)
{
    wr_config_t *cfg = wr_config_new_default(), *fresh = wr_config_new_default();
    const char *tags[] = {"management", "monitoring"};
    uint8_t hash[WR_PASSWORD_HASH_MAX];
    size_t len = wr_auth_hash_password(WR_HASH_SHA512, WR_BYTES_LIT("pw"), hash);
    const wr_permission_cfg_t *perm;
    const wr_user_cfg_t *u;
    json_t *state;
    char err[256];
    bool created;

    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(wr_users_put(&cfg->auth, "bob", hash, len, WR_HASH_SHA512, tags, 2, &created), WR_OK);
    ck_assert(wr_users_set_max_connections(&cfg->auth, "bob", 3));
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "bob", "v", all, &created, err, sizeof(err)), WR_OK);
    u = wr_users_find(&cfg->auth, "bob", 3);
    perm = wr_users_permission(&cfg->auth, "bob", "v", 1);
    state = json_pack("{s:[o],s:{s:{s:[o]}}}", "users", wr_durable_defs_user(u), "vhosts", "v", "permissions",
                      wr_durable_defs_permission(perm));
    ck_assert_ptr_nonnull(state);
    wr_users_clear(&fresh->auth);
    ck_assert_int_eq(wr_durable_defs_load_users(&fresh->auth, state, err, sizeof(err)), WR_OK);
    u = wr_auth_check(&fresh->auth, WR_BYTES_LIT("bob"), WR_BYTES_LIT("pw"));
    ck_assert_ptr_nonnull(u);
    ck_assert(u->has_max_connections && u->max_connections == 3);
    ck_assert(u->ntags == 2 && strcmp(u->tags[1], "monitoring") == 0);
    perm = wr_users_permission(&fresh->auth, "bob", "v", 1);
    ck_assert_ptr_nonnull(perm);
    ck_assert_str_eq(perm->pattern[WR_PERM_READ], "");
    ck_assert_ptr_null(wr_users_find(&fresh->auth, "guest", 5));
    json_decref(state);
    wr_config_free(cfg);
    wr_config_free(fresh);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-users");
    TCase *tc = tcase_create("users");

    tcase_add_test(tc, observer_hears_every_change);
    tcase_add_test(tc, store_entries_round_trip);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
