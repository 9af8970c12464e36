/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/auth/access.c and the "permissions" configuration:
 * RabbitMQ's matching rules (a match anywhere in the name unless anchored,
 * "" for the empty name only, names with any octet), permissions from
 * users' "vhosts" lists, and the start-up errors for bad permissions.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth/access.h"
#include "protocol/methods.h"
#include "config_fixture.h"
#include "tests/unit/runner.h"

static char path[WR_TEST_CONFIG_PATH_MAX];
static char err[4096];

static wr_config_t *load(const char *text)
{
    return wr_test_config_load(text, path, err, sizeof(err));
}

static const char users[] =
    "\"vhosts\": [\"/\", \"v2\"],"
    " \"users\": [{\"name\": \"guest\", \"password\": \"guest\", \"vhosts\": [\"/\"]},"
    "             {\"name\": \"app\", \"password\": \"pw\"}]";

static wr_config_t *load_permissions(const char *configure, const char *write, const char *read)
{
    char text[1024];
    wr_config_t *cfg;

    snprintf(text, sizeof(text),
             "{%s, \"permissions\": [{\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"%s\","
             " \"write\": \"%s\", \"read\": \"%s\"}]}",
             users, configure, write, read);
    cfg = load(text);
    ck_assert_msg(cfg != NULL, "%s", err);
    return cfg;
}

static bool permitted(const wr_config_t *cfg, wr_perm_t what, const char *name)
{
    const wr_permission_cfg_t *perm = wr_users_permission(&cfg->auth, "app", "/", 1);

    ck_assert_ptr_nonnull(perm);
    return wr_access_permitted(perm, what, wr_bytes_str(name));
}

START_TEST(test_match_anywhere_unless_anchored)
{
    wr_config_t *cfg = load_permissions("^app-", "log", "^(a|b)$");

    ck_assert(permitted(cfg, WR_PERM_CONFIGURE, "app-1"));
    ck_assert(!permitted(cfg, WR_PERM_CONFIGURE, "my-app-1"));
    ck_assert(!permitted(cfg, WR_PERM_CONFIGURE, ""));
    ck_assert(permitted(cfg, WR_PERM_WRITE, "log"));
    ck_assert(permitted(cfg, WR_PERM_WRITE, "audit-logs"));
    ck_assert(!permitted(cfg, WR_PERM_WRITE, "lo-g"));
    ck_assert(permitted(cfg, WR_PERM_READ, "a"));
    ck_assert(permitted(cfg, WR_PERM_READ, "b"));
    ck_assert(!permitted(cfg, WR_PERM_READ, "ab"));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_empty_and_all)
{
    wr_config_t *cfg = load_permissions("", ".*", "^$");

    /* "" is RabbitMQ's "^$": the empty name only. */
    ck_assert(!permitted(cfg, WR_PERM_CONFIGURE, "q"));
    ck_assert(permitted(cfg, WR_PERM_CONFIGURE, ""));
    ck_assert(permitted(cfg, WR_PERM_WRITE, ""));
    ck_assert(permitted(cfg, WR_PERM_WRITE, "anything at all"));
    ck_assert(!permitted(cfg, WR_PERM_READ, "x"));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_names_by_length)
{
    wr_config_t *cfg = load_permissions("^a\\\\.b$", "c$", "x");
    const wr_permission_cfg_t *perm = wr_users_permission(&cfg->auth, "app", "/", 1);
    uint8_t longname[1000];

    ck_assert(permitted(cfg, WR_PERM_CONFIGURE, "a.b"));
    ck_assert(!permitted(cfg, WR_PERM_CONFIGURE, "aXb"));
    /* Names are byte strings: the length counts, not a terminator. */
    ck_assert(wr_access_permitted(perm, WR_PERM_WRITE, (wr_bytes_t){(const uint8_t *)"abcdef", 3}));
    ck_assert(!wr_access_permitted(perm, WR_PERM_WRITE, (wr_bytes_t){(const uint8_t *)"abcdef", 4}));
    ck_assert(wr_access_permitted(perm, WR_PERM_READ, (wr_bytes_t){(const uint8_t *)"a\0x", 3}));
    ck_assert(!wr_access_permitted(perm, WR_PERM_READ, (wr_bytes_t){(const uint8_t *)"a\0x", 2}));
    /* Argument values (dead-letter exchanges) may be longer than a shortstr. */
    memset(longname, 'a', sizeof(longname));
    longname[sizeof(longname) - 1] = 'c';
    ck_assert(wr_access_permitted(perm, WR_PERM_WRITE, (wr_bytes_t){longname, sizeof(longname)}));
    ck_assert(!wr_access_permitted(perm, WR_PERM_WRITE, (wr_bytes_t){longname, sizeof(longname) - 1}));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_vhost_lists_are_full_permissions)
{
    wr_config_t *cfg = load_permissions("^c", "^w", "^r");
    const wr_permission_cfg_t *guest = wr_users_permission(&cfg->auth, "guest", "/", 1);

    ck_assert_ptr_nonnull(guest);
    ck_assert(guest->implicit);
    for (wr_perm_t k = WR_PERM_CONFIGURE; k <= WR_PERM_READ; k++) {
        ck_assert_str_eq(guest->pattern[k], ".*");
        ck_assert(wr_access_permitted(guest, k, WR_BYTES_LIT("any")));
    }
    ck_assert_ptr_null(wr_users_permission(&cfg->auth, "guest", "v2", 2));
    ck_assert_ptr_null(wr_users_permission(&cfg->auth, "app", "v2", 2));
    ck_assert_ptr_null(wr_users_permission(&cfg->auth, "nobody", "/", 1));
    ck_assert(!wr_users_permission(&cfg->auth, "app", "/", 1)->implicit);
    wr_config_free(cfg);
    /* The defaults: guest on "/". */
    cfg = wr_config_new_default();
    ck_assert_ptr_nonnull(wr_users_permission(&cfg->auth, "guest", "/", 1));
    ck_assert_uint_eq(cfg->auth.npermissions, 1);
    wr_config_free(cfg);
}
END_TEST

static const struct {
    const char *permissions;
    const char *line;
} errors[] = {
    {"[{\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"(\", \"write\": \"\", \"read\": \"\"}]",
     "permissions[0]: configure: invalid regular expression '(': Unmatched ( or \\("},
    {"[{\"user\": \"bob\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\", \"read\": \"\"}]",
     "permissions[0]: unknown user 'bob'"},
    {"[{\"user\": \"app\", \"vhost\": \"v3\", \"configure\": \"\", \"write\": \"\", \"read\": \"\"}]",
     "permissions[0]: unknown vhost 'v3' (not listed in vhosts)"},
    {"[{\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\", \"read\": \"\"},"
     " {\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\", \"read\": \"\"}]",
     "permissions[1]: duplicate permissions for user 'app' in vhost '/'"},
    {"[{\"user\": \"guest\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\", \"read\": \"\"}]",
     "users[0].vhosts[0]: user 'guest' also has permissions for vhost '/' in permissions"},
    {"[{\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\"}]",
     "permissions[0]: missing key 'read'"},
    {"[{\"user\": \"app\", \"vhost\": \"/\", \"configure\": 1, \"write\": \"\", \"read\": \"\"}]",
     "permissions[0].configure: expected a string, got an integer"},
    {"[{\"user\": \"app\", \"vhost\": \"/\", \"configure\": \"\", \"write\": \"\", \"read\": \"\", \"x\": "
     "1}]",
     "permissions[0].x: unknown key"},
    {"{}", "permissions: expected an array, got an object"},
};

/* The checks made without a connection (the management API). */
START_TEST(test_check_as)
{
    wr_config_t *cfg = load_permissions("^app-", "^app-", "^app-");
    wr_access_who_t who = {wr_users_permission(&cfg->auth, "app", "/", 1), "/", "app"};
    wr_access_who_t nobody = {NULL, "/", "app"};
    wr_amqp_error_t e;

    ck_assert(wr_access_check(&who, WR_PERM_READ, "queue", wr_bytes_str("app-q"), WR_BASIC_GET, &e));
    ck_assert(!wr_access_check(&who, WR_PERM_READ, "queue", wr_bytes_str("secret"), WR_BASIC_GET, &e));
    ck_assert_int_eq(e.code, 403);
    ck_assert_str_eq(e.text, "ACCESS_REFUSED - access to queue 'secret' in vhost '/' refused for user 'app'");
    ck_assert(!wr_access_check(&who, WR_PERM_WRITE, "exchange", wr_bytes_str(""), WR_BASIC_PUBLISH, &e));
    ck_assert_str_eq(e.text,
                     "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'app'");
    ck_assert(!wr_access_check(&nobody, WR_PERM_READ, "queue", wr_bytes_str("app-q"), WR_BASIC_GET, &e));
    /* A new queue naming a dead-letter exchange: read on it, write on that. */
    ck_assert(wr_access_check_arg(&who, "queue", wr_bytes_str("app-q"), (wr_bytes_t){NULL, 0},
                                  "x-dead-letter-exchange", WR_QUEUE_DECLARE, &e));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_permission_errors)
{
    char text[1024], want[512];

    snprintf(text, sizeof(text), "{%s, \"permissions\": %s}", users, errors[_i].permissions);
    ck_assert_ptr_null(load(text));
    snprintf(want, sizeof(want), "%s: %s", path, errors[_i].line);
    ck_assert_str_eq(err, want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-access");
    TCase *tc = tcase_create("access");

    tcase_add_test(tc, test_match_anywhere_unless_anchored);
    tcase_add_test(tc, test_empty_and_all);
    tcase_add_test(tc, test_names_by_length);
    tcase_add_test(tc, test_vhost_lists_are_full_permissions);
    tcase_add_test(tc, test_check_as);
    tcase_add_loop_test(tc, test_permission_errors, 0, (int)(sizeof(errors) / sizeof(errors[0])));
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
