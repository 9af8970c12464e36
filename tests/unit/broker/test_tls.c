/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/amqp/tls.c: a TLS context that cannot be built is a
 * start-up error naming the configuration key and the file (missing,
 * unreadable as PEM), or the bad value (ciphers); the "tls" and
 * "tls_listeners" configuration. Working certificates are made at test time
 * by tests/integration/test_tls.py.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/amqp/tls.h"
#include "config_fixture.h"
#include "tests/unit/runner.h"

static char junk[64];
static char err[1024];

static void setup(void)
{
    FILE *f;
    int fd;

    snprintf(junk, sizeof(junk), "/tmp/warren-tls-XXXXXX");
    fd = mkstemp(junk);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a certificate\n", f);
    fclose(f);
}

static void teardown(void)
{
    unlink(junk);
}

START_TEST(test_missing_certfile)
{
    wr_tls_cfg_t cfg = {.certfile = "/nonexistent/cert.pem", .keyfile = junk, .min_version = 0x0303};

    ck_assert_ptr_null(wr_tls_new(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "tls.certfile: cannot read '/nonexistent/cert.pem': No such file or directory");
}
END_TEST

START_TEST(test_certfile_not_pem)
{
    wr_tls_cfg_t cfg = {.certfile = junk, .keyfile = junk, .min_version = 0x0303};
    char want[256];

    ck_assert_ptr_null(wr_tls_new(&cfg, err, sizeof(err)));
    snprintf(want, sizeof(want), "tls.certfile: no PEM certificate chain in '%s': ", junk);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
}
END_TEST

START_TEST(test_bad_ciphers)
{
    wr_tls_cfg_t cfg = {
        .certfile = junk, .keyfile = junk, .min_version = 0x0303, .ciphers = "NO-SUCH-CIPHER"};

    ck_assert_ptr_null(wr_tls_new(&cfg, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "tls.ciphers: no usable cipher in 'NO-SUCH-CIPHER': ", 51) == 0, "%s", err);
}
END_TEST

static wr_config_t *load(const char *text)
{
    char path[WR_TEST_CONFIG_PATH_MAX];

    return wr_test_config_load(text, path, err, sizeof(err));
}

START_TEST(test_tls_config)
{
    wr_config_t *cfg = wr_config_new_default();

    /* No TLS unless configured; TLS 1.2 at least, no peer verification. */
    ck_assert_uint_eq(cfg->ntls_listeners, 0);
    ck_assert_int_eq(cfg->tls.min_version, 0x0303);
    ck_assert(!cfg->tls.verify_peer);
    wr_config_free(cfg);
    cfg = load("{\"tls_listeners\": [{\"address\": \"::1\"}, {\"port\": 15671}],"
               " \"tls\": {\"certfile\": \"c.pem\", \"keyfile\": \"k.pem\", \"cacertfile\": \"ca.pem\","
               "         \"verify\": \"verify_peer\", \"fail_if_no_peer_cert\": true,"
               "         \"min_version\": \"tlsv1.3\", \"ciphers\": \"HIGH\"}}");
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->ntls_listeners, 2);
    ck_assert_str_eq(cfg->tls_listeners[0].address, "::1");
    ck_assert_uint_eq(cfg->tls_listeners[0].port, 5671);
    ck_assert_str_eq(cfg->tls_listeners[1].address, "127.0.0.1");
    ck_assert_uint_eq(cfg->tls_listeners[1].port, 15671);
    ck_assert_str_eq(cfg->tls.cacertfile, "ca.pem");
    ck_assert(cfg->tls.verify_peer && cfg->tls.fail_if_no_peer_cert);
    ck_assert_int_eq(cfg->tls.min_version, 0x0304);
    ck_assert_str_eq(cfg->tls.ciphers, "HIGH");
    wr_config_free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-tls");
    TCase *tc = tcase_create("tls");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_missing_certfile);
    tcase_add_test(tc, test_certfile_not_pem);
    tcase_add_test(tc, test_bad_ciphers);
    tcase_add_test(tc, test_tls_config);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
