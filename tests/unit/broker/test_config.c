/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/config/config.c: defaults, the shipped etc/warren.json, the
 * flow alarm and policy keys, the exact "FILE: key.path: reason" line for
 * each kind of mistake, all problems reported at once, and JSON syntax
 * errors with line and column.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/base/log.h"
#include "core/status.h"
#include "config_fixture.h"
#include "tests/unit/runner.h"

/* The shipped default config, passed by meson as argv[1]. */
static const char *shipped_config;

static char path[WR_TEST_CONFIG_PATH_MAX];
static char err[4096];

/* Loads text, which must fail, and returns the problem lines with the temp
 * file name replaced by "F". */
static const char *load_fail(const char *text)
{
    static char out[4096];
    wr_config_t *cfg;
    const char *p;
    size_t n, o = 0;

    cfg = wr_test_config_load(text, path, err, sizeof(err));
    ck_assert_ptr_null(cfg);
    n = strlen(path);
    for (p = err; *p && o < sizeof(out) - 2;) {
        if (strncmp(p, path, n) == 0) {
            out[o++] = 'F';
            p += n;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static wr_config_t *load_ok(const char *text)
{
    wr_config_t *cfg;

    cfg = wr_test_config_load(text, path, err, sizeof(err));
    ck_assert_msg(cfg != NULL, "unexpected error: %s", err);
    return cfg;
}

START_TEST(test_defaults)
{
    wr_config_t *cfg = wr_config_new_default();

    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_str_eq(cfg->listeners[0].address, "127.0.0.1");
    ck_assert_uint_eq(cfg->listeners[0].port, 5672);
    ck_assert_uint_eq(cfg->frame_max, 131072);
    ck_assert_uint_eq(cfg->channel_max, 2047);
    ck_assert_uint_eq(cfg->heartbeat, 60);
    ck_assert_uint_eq(cfg->max_message_size, 134217728);
    ck_assert_uint_eq(cfg->auth.nusers, 1);
    ck_assert_str_eq(cfg->auth.users[0].name, "guest");
    ck_assert_uint_eq(cfg->auth.users[0].password_hash_len, 36); /* salted SHA-256 of "guest" */
    ck_assert_uint_eq(cfg->auth.users[0].nvhosts, 1);
    ck_assert_str_eq(cfg->auth.users[0].vhosts[0], "/");
    ck_assert_uint_eq(cfg->auth.nloopback_users, 1);
    ck_assert_str_eq(cfg->auth.loopback_users[0], "guest");
    ck_assert_uint_eq(cfg->nvhosts, 1);
    ck_assert_str_eq(cfg->vhosts[0], "/");
    ck_assert_int_eq(cfg->log_level, WR_LOG_INFO);
    wr_config_free(cfg);
    wr_config_free(NULL);
}
END_TEST

START_TEST(test_shipped_config_is_the_defaults)
{
    wr_config_t *cfg = wr_config_load(shipped_config, err, sizeof(err));
    wr_config_t *def = wr_config_new_default();

    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_str_eq(cfg->listeners[0].address, def->listeners[0].address);
    ck_assert_uint_eq(cfg->listeners[0].port, def->listeners[0].port);
    ck_assert_uint_eq(cfg->frame_max, def->frame_max);
    ck_assert_uint_eq(cfg->channel_max, def->channel_max);
    ck_assert_uint_eq(cfg->heartbeat, def->heartbeat);
    ck_assert_uint_eq(cfg->max_message_size, def->max_message_size);
    ck_assert_uint_eq(cfg->auth.nusers, 1);
    ck_assert_str_eq(cfg->auth.users[0].name, "guest");
    ck_assert_uint_eq(cfg->auth.users[0].password_hash_len, 36); /* salted SHA-256 of "guest" */
    ck_assert_str_eq(cfg->auth.users[0].vhosts[0], "/");
    ck_assert_str_eq(cfg->auth.loopback_users[0], "guest");
    ck_assert_str_eq(cfg->vhosts[0], "/");
    ck_assert_int_eq(cfg->log_level, def->log_level);
    ck_assert_double_eq(cfg->memory_high_watermark, def->memory_high_watermark);
    ck_assert_uint_eq(cfg->memory_high_watermark_bytes, def->memory_high_watermark_bytes);
    ck_assert_uint_eq(cfg->disk_free_limit_bytes, def->disk_free_limit_bytes);
    ck_assert_double_eq(cfg->disk_free_limit_relative, def->disk_free_limit_relative);
    ck_assert_uint_eq(cfg->flow_storage_pending_bytes, def->flow_storage_pending_bytes);
    ck_assert_int_eq(cfg->commit_interval_us, def->commit_interval_us);
    ck_assert_int_eq(cfg->unawaited_delay_us, def->unawaited_delay_us);
    ck_assert_uint_eq(json_array_size(cfg->policies), 0);
    wr_config_free(cfg);
    wr_config_free(def);
}
END_TEST

START_TEST(test_full_file)
{
    wr_config_t *cfg =
        load_ok("{\"listeners\": [{\"address\": \"::1\", \"port\": 16000},"
                "               {\"address\": \"127.0.0.1\", \"port\": 16001}],"
                " \"limits\": {\"frame_max\": 4096, \"channel_max\": 1, \"heartbeat\": 0,"
                "            \"max_message_size\": 1024},"
                " \"users\": [{\"name\": \"alice\", \"password\": \"s3cret\", \"vhosts\": [\"a\", \"b\"]},"
                "           {\"name\": \"bob\", \"password\": \"\"}],"
                " \"loopback_users\": [],"
                " \"vhosts\": [\"a\", \"b\"],"
                " \"log\": {\"level\": \"warning\"}}");

    ck_assert_uint_eq(cfg->nlisteners, 2);
    ck_assert_str_eq(cfg->listeners[0].address, "::1");
    ck_assert_uint_eq(cfg->listeners[0].port, 16000);
    ck_assert_uint_eq(cfg->listeners[1].port, 16001);
    ck_assert_uint_eq(cfg->frame_max, 4096);
    ck_assert_uint_eq(cfg->channel_max, 1);
    ck_assert_uint_eq(cfg->heartbeat, 0);
    ck_assert_uint_eq(cfg->max_message_size, 1024);
    ck_assert_uint_eq(cfg->auth.nusers, 2);
    ck_assert_str_eq(cfg->auth.users[0].name, "alice");
    ck_assert_uint_eq(cfg->auth.users[0].nvhosts, 2);
    ck_assert_str_eq(cfg->auth.users[0].vhosts[1], "b");
    ck_assert_uint_eq(cfg->auth.users[1].password_hash_len, 36);
    ck_assert_uint_eq(cfg->auth.users[1].nvhosts, 0);
    ck_assert_uint_eq(cfg->auth.nloopback_users, 0);
    ck_assert_uint_eq(cfg->nvhosts, 2);
    ck_assert_int_eq(cfg->log_level, WR_LOG_WARNING);
    ck_assert_ptr_eq(wr_users_find(&cfg->auth, "bob", 3), &cfg->auth.users[1]);
    ck_assert_ptr_null(wr_users_find(&cfg->auth, "bo", 2));
    ck_assert_ptr_null(wr_users_find(&cfg->auth, "bobby", 5));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_empty_object_gives_defaults)
{
    wr_config_t *cfg = load_ok("{}");

    ck_assert_uint_eq(cfg->listeners[0].port, 5672);
    ck_assert_str_eq(cfg->auth.users[0].name, "guest");
    wr_config_free(cfg);
}
END_TEST

/* One file per mistake kind, with its exact line. */
static const struct {
    const char *json;
    const char *expect;
} mistakes[] = {
    {"{\"listners\": []}", "F: listners: unknown key"},
    {"{\"limits\": {\"frame_max\": \"big\"}}", "F: limits.frame_max: expected an integer, got a string"},
    {"{\"limits\": {\"frame_max\": 100}}",
     "F: limits.frame_max: must be between 4096 and 2147483647, got 100"},
    {"{\"limits\": {\"channel_max\": 0}}", "F: limits.channel_max: must be between 1 and 65535, got 0"},
    {"{\"limits\": {\"heartbeat\": 1.5}}", "F: limits.heartbeat: expected an integer, got a number"},
    {"{\"limits\": {\"max_message_size\": 0}}",
     "F: limits.max_message_size: must be between 1 and 536870912, got 0"},
    {"{\"limits\": {\"frame_maxx\": 1}}", "F: limits.frame_maxx: unknown key"},
    {"{\"limits\": []}", "F: limits: expected an object, got an array"},
    {"{\"listeners\": [{\"port\": 0}]}", "F: listeners[0].port: must be between 1 and 65535, got 0"},
    {"{\"listeners\": [{\"port\": 65536}]}", "F: listeners[0].port: must be between 1 and 65535, got 65536"},
    {"{\"listeners\": [{\"address\": \"localhost\"}]}",
     "F: listeners[0].address: not an IPv4 or IPv6 address: 'localhost'"},
    {"{\"listeners\": [{\"adress\": \"127.0.0.1\"}]}", "F: listeners[0].adress: unknown key"},
    {"{\"listeners\": [5672]}", "F: listeners[0]: expected an object, got an integer"},
    {"{\"listeners\": []}", "F: listeners: must name at least one listener"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"vhosts\": [\"x\"]}]}",
     "F: users[0].vhosts[0]: unknown vhost 'x' (not listed in vhosts)"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\"}, {\"name\": \"u\", \"password\": \"q\"}]}",
     "F: users[1].name: duplicate user 'u'"},
    {"{\"users\": [{\"name\": \"u\"}]}", "F: users[0]: missing key 'password'"},
    {"{\"users\": [{\"name\": \"\", \"password\": \"p\"}]}", "F: users[0].name: must not be empty"},
    {"{\"users\": [{\"name\": \"u\", \"password\": null}]}",
     "F: users[0].password: expected a string, got null"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"admin\": true}]}",
     "F: users[0].admin: unknown key"},
    {"{\"vhosts\": [\"/\", \"/\"]}", "F: vhosts[1]: duplicate vhost '/'"},
    {"{\"vhosts\": [\"a\"]}", "F: vhosts: the default user 'guest' needs vhost '/'"},
    {"{\"loopback_users\": \"guest\"}", "F: loopback_users: expected an array, got a string"},
    {"{\"log\": {\"level\": \"verbose\"}}",
     "F: log.level: unknown level 'verbose' (expected debug, info, warning or error)"},
    {"{\"log\": {\"format\": \"x\"}}", "F: log.format: unknown key"},
    {"{\"log\": {\"file\": \"\"}}", "F: log.file: must not be empty"},
    {"{\"log\": {\"file\": 1}}", "F: log.file: expected a string, got an integer"},
    {"{\"memory_high_watermark\": 2}", "F: memory_high_watermark: must be between 0 and 1, got 2"},
    {"{\"storage\": {\"commit_interval_us\": -1}}",
     "F: storage.commit_interval_us: must be between 0 and 1000000, got -1"},
    {"{\"storage\": {\"commit_interval_us\": 1000001}}",
     "F: storage.commit_interval_us: must be between 0 and 1000000, got 1000001"},
    {"{\"storage\": {\"commit_interval_us\": \"10ms\"}}",
     "F: storage.commit_interval_us: expected an integer, got a string"},
    {"{\"storage\": {\"unawaited_delay_us\": -1}}",
     "F: storage.unawaited_delay_us: must be between 0 and 1000000, got -1"},
    {"{\"storage\": {\"unawaited_delay_us\": 1000001}}",
     "F: storage.unawaited_delay_us: must be between 0 and 1000000, got 1000001"},
    {"{\"policies\": [{\"name\": \"p\", \"pattern\": \"x\", \"definition\": {\"max-length\": -1}}]}",
     "F: policies[0].definition: -1 is not a valid maximum length"},
    {"[]", "F: expected an object at the top level, got an array"},
};

START_TEST(test_each_mistake)
{
    ck_assert_str_eq(load_fail(mistakes[_i].json), mistakes[_i].expect);
}
END_TEST

START_TEST(test_all_problems_at_once)
{
    const char *got =
        load_fail("{\"listners\": [],\n"
                  " \"limits\": {\"frame_max\": \"big\", \"channel_max\": 0},\n"
                  " \"vhosts\": [\"/\"],\n"
                  " \"users\": [{\"name\": \"guest\", \"password\": \"guest\", \"vhosts\": [\"/\", \"x\"]},\n"
                  "           {\"name\": \"guest\", \"password\": \"again\"}],\n"
                  " \"log\": {\"level\": \"loud\"}}");

    ck_assert_str_eq(got, "F: listners: unknown key\n"
                          "F: limits.frame_max: expected an integer, got a string\n"
                          "F: limits.channel_max: must be between 1 and 65535, got 0\n"
                          "F: users[0].vhosts[1]: unknown vhost 'x' (not listed in vhosts)\n"
                          "F: users[1].name: duplicate user 'guest'\n"
                          "F: log.level: unknown level 'loud' (expected debug, info, warning or error)");
}
END_TEST

START_TEST(test_syntax_error_names_line_and_column)
{
    const char *got = load_fail("{\n  \"limits\": {\n    \"frame_max\" 4096\n  }\n}\n");

    ck_assert_msg(strncmp(got, "F: line 3, column ", 18) == 0, "got %s", got);
}
END_TEST

START_TEST(test_duplicate_json_key)
{
    const char *got = load_fail("{\"log\": {\"level\": \"info\", \"level\": \"debug\"}}");

    ck_assert_msg(strncmp(got, "F: line 1, column ", 18) == 0 && strstr(got, "duplicate"), "got %s", got);
}
END_TEST

START_TEST(test_missing_file)
{
    wr_config_t *cfg = wr_config_load("/nonexistent/warren.json", err, sizeof(err));

    ck_assert_ptr_null(cfg);
    ck_assert_msg(strncmp(err, "/nonexistent/warren.json: ", 26) == 0, "got %s", err);
}
END_TEST

START_TEST(test_error_buffer_truncated)
{
    char small[24];
    wr_config_t *cfg;

    cfg =
        wr_test_config_load("{\"listners\": [], \"limits\": {\"frame_max\": 1}}", path, small, sizeof(small));
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

/* Both shapes of each flow alarm key, and policies kept with their vhost. */
START_TEST(test_flow_alarms_and_policies)
{
    wr_config_t *def = wr_config_new_default();
    wr_config_t *cfg;

    ck_assert_double_eq(def->memory_high_watermark, 0.4);
    ck_assert_uint_eq(def->memory_high_watermark_bytes, 0);
    ck_assert_uint_eq(def->disk_free_limit_bytes, 50000000);
    ck_assert_double_eq(def->disk_free_limit_relative, 0);
    ck_assert_uint_eq(def->flow_storage_pending_bytes, 67108864);
    ck_assert_int_eq(def->commit_interval_us, 10000);
    ck_assert_int_eq(def->unawaited_delay_us, 200000);
    ck_assert_ptr_null(def->policies);
    wr_config_free(def);

    cfg = load_ok(
        "{\"memory_high_watermark\": {\"absolute\": 1000000}, \"disk_free_limit\": {\"relative\": 1.5},"
        " \"storage\": {\"flow_pending_bytes\": 2097152, \"commit_interval_us\": 0, \"unawaited_delay_us\": "
        "0},"
        " \"policies\": [{\"name\": \"p\", \"pattern\": \"^q\", \"definition\": {\"max-length\": 1}}]}");
    ck_assert_uint_eq(cfg->memory_high_watermark_bytes, 1000000);
    ck_assert_double_eq(cfg->disk_free_limit_relative, 1.5);
    ck_assert_uint_eq(cfg->flow_storage_pending_bytes, 2097152);
    ck_assert_int_eq(cfg->commit_interval_us, 0);
    ck_assert_int_eq(cfg->unawaited_delay_us, 0);
    ck_assert_uint_eq(json_array_size(cfg->policies), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(cfg->policies, 0), "vhost")), "/");
    wr_config_free(cfg);

    cfg = load_ok("{\"memory_high_watermark\": 0.25, \"disk_free_limit\": 1000}");
    ck_assert_double_eq(cfg->memory_high_watermark, 0.25);
    ck_assert_uint_eq(cfg->memory_high_watermark_bytes, 0);
    ck_assert_uint_eq(cfg->disk_free_limit_bytes, 1000);
    ck_assert_double_eq(cfg->disk_free_limit_relative, 0);
    wr_config_free(cfg);
}
END_TEST

/* Run-time changes keep a permission where connections point at it. */
START_TEST(test_runtime_users_and_permissions)
{
    wr_config_t *cfg = wr_config_new_default();
    const char *const all[WR_PERM_KINDS] = {".*", ".*", ".*"};
    const char *const bad[WR_PERM_KINDS] = {"(", "", ""};
    const char *const bad_write[WR_PERM_KINDS] = {"", "[", ""};
    const char *const tags[] = {"monitoring"};
    const wr_permission_cfg_t *guest_perm, *perm;
    uint8_t hash[WR_PASSWORD_HASH_MAX] = {1, 2, 3, 4};
    char why[200];
    size_t i = 0, n = 0;
    bool created;

    ck_assert_int_eq(wr_users_put(&cfg->auth, "bob", hash, 36, WR_HASH_SHA256, tags, 1, &created), WR_OK);
    ck_assert(created);
    ck_assert_int_eq(wr_users_put(&cfg->auth, "bob", hash, 36, WR_HASH_SHA256, NULL, 0, &created), WR_OK);
    ck_assert(!created);
    ck_assert_uint_eq(wr_users_find(&cfg->auth, "bob", 3)->ntags, 0);

    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "bob", "/", all, &created, why, sizeof(why)), WR_OK);
    ck_assert(created);
    perm = wr_users_permission(&cfg->auth, "bob", "/", 1);
    ck_assert_ptr_nonnull(perm);
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "bob", "/", bad, &created, why, sizeof(why)),
                     WR_ESYNTAX);
    ck_assert_msg(strstr(why, "configure: invalid regular expression '('"), "got %s", why);
    /* A later pattern failing leaves the earlier ones uncompiled too. */
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "bob", "/", bad_write, &created, why, sizeof(why)),
                     WR_ESYNTAX);
    ck_assert_msg(strncmp(why, "write: invalid regular expression '[': ", 39) == 0, "got %s", why);
    ck_assert_str_eq(perm->pattern[WR_PERM_CONFIGURE], ".*");

    /* Replaced in place: the same pointer, new patterns. */
    guest_perm = wr_users_permission(&cfg->auth, "guest", "/", 1);
    ck_assert_int_eq(wr_users_put_permission(&cfg->auth, "guest", "/", (const char *const[]){"", "^w", "^r"},
                                             &created, why, sizeof(why)),
                     WR_OK);
    ck_assert(!created);
    ck_assert_ptr_eq(wr_users_permission(&cfg->auth, "guest", "/", 1), guest_perm);
    ck_assert_str_eq(guest_perm->pattern[WR_PERM_WRITE], "^w");

    ck_assert(wr_users_delete_permission(&cfg->auth, "guest", "/"));
    ck_assert(!wr_users_delete_permission(&cfg->auth, "guest", "/"));
    ck_assert_ptr_null(wr_users_permission(&cfg->auth, "guest", "/", 1));
    ck_assert(guest_perm->deleted);

    ck_assert(wr_users_delete(&cfg->auth, "bob"));
    ck_assert(!wr_users_delete(&cfg->auth, "bob"));
    ck_assert_ptr_null(wr_users_find(&cfg->auth, "bob", 3));
    ck_assert_ptr_null(wr_users_permission(&cfg->auth, "bob", "/", 1));
    while (wr_users_permission_next(&cfg->auth, &i))
        n++;
    ck_assert_uint_eq(n, 0);
    ck_assert(wr_users_pattern_ok("^a|b$", why, sizeof(why)));
    ck_assert(!wr_users_pattern_ok("[", why, sizeof(why)));
    wr_config_free(cfg);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("broker-config");
    TCase *tc = tcase_create("config");

    shipped_config = argc > 1 ? argv[1] : "etc/warren.json";
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_shipped_config_is_the_defaults);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_empty_object_gives_defaults);
    tcase_add_loop_test(tc, test_each_mistake, 0, (int)(sizeof(mistakes) / sizeof(mistakes[0])));
    tcase_add_test(tc, test_all_problems_at_once);
    tcase_add_test(tc, test_syntax_error_names_line_and_column);
    tcase_add_test(tc, test_duplicate_json_key);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_error_buffer_truncated);
    tcase_add_test(tc, test_runtime_users_and_permissions);
    tcase_add_test(tc, test_flow_alarms_and_policies);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
