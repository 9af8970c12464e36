/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/auth/auth.c: RabbitMQ's password hashes (vectors exported
 * from RabbitMQ 3.10.8 definitions log in unchanged), their decoding and
 * errors, credential checks, loopback addresses and loopback-only users.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth/auth.h"
#include "config_fixture.h"
#include "core/status.h"
#include "tests/unit/runner.h"

static char path[WR_TEST_CONFIG_PATH_MAX];
static char err[4096];

static wr_config_t *load(const char *text)
{
    return wr_test_config_load(text, path, err, sizeof(err));
}

/* password_hash values from `rabbitmqctl export_definitions` (3.10.8). */
static const char rabbit_users[] =
    "{\"users\": ["
    " {\"name\": \"guest\", \"password_hash\": \"NtuDywtVqJD3kZma8aKQULPwZW9cxgL24hkR1V0G78SXVT44\","
    "  \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": [\"administrator\"], \"limits\": "
    "{}},"
    " {\"name\": \"u1\", \"password_hash\": \"fOr6540lC8fVWU7A3DnLKKgnYXIUbnM/lc5PePdH3WGD+Lbw\","
    "  \"hashing_algorithm\": \"rabbit_password_hashing_sha256\","
    "  \"tags\": [\"administrator\", \"monitoring\"], \"limits\": {\"max-connections\": 1}},"
    " {\"name\": \"s512\", \"hashing_algorithm\": \"rabbit_password_hashing_sha512\", \"password_hash\":"
    "  \"3q2+70VEWE0FqGYZ3RMNvezijod+raacSDqNV7zxX2jCGJrE+Ttmv27xiPDPLrdqK5P9/8A6XJ1WZEfOQ7i70LyGVak=\"},"
    " {\"name\": \"m5\", \"password_hash\": \"3q2+72hfYchy3Ny5FXLOhhISoU4=\","
    "  \"hashing_algorithm\": \"rabbit_password_hashing_md5\", \"tags\": \"management,policymaker\"},"
    " {\"name\": \"certonly\", \"password_hash\": \"\"}]}";

START_TEST(test_rabbitmq_hashes)
{
    wr_config_t *cfg = load(rabbit_users);

    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("guest")),
                     &cfg->auth.users[0]);
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("u1"), WR_BYTES_LIT("pw1")), &cfg->auth.users[1]);
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("u1"), WR_BYTES_LIT("pw2")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("u1"), WR_BYTES_LIT("guest")));
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("s512"), WR_BYTES_LIT("secret")),
                     &cfg->auth.users[2]);
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("s512"), WR_BYTES_LIT("secreT")));
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("m5"), WR_BYTES_LIT("secret")),
                     &cfg->auth.users[3]);
    /* An empty hash is a user no password unlocks (EXTERNAL only). */
    ck_assert_uint_eq(cfg->auth.users[4].password_hash_len, 0);
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("certonly"), WR_BYTES_LIT("")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("certonly"), WR_BYTES_LIT("x")));
    /* Tags as an array or RabbitMQ's older comma-separated string; limits. */
    ck_assert_uint_eq(cfg->auth.users[1].ntags, 2);
    ck_assert_str_eq(cfg->auth.users[1].tags[1], "monitoring");
    ck_assert_uint_eq(cfg->auth.users[3].ntags, 2);
    ck_assert_str_eq(cfg->auth.users[3].tags[0], "management");
    ck_assert_str_eq(cfg->auth.users[3].tags[1], "policymaker");
    ck_assert(cfg->auth.users[1].has_max_connections);
    ck_assert_int_eq(cfg->auth.users[1].max_connections, 1);
    ck_assert(!cfg->auth.users[0].has_max_connections);
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_plaintext_is_hashed)
{
    wr_config_t *cfg = load("{\"users\": [{\"name\": \"a\", \"password\": \"s3cret\"},"
                            " {\"name\": \"b\", \"password\": \"s3cret\","
                            "  \"hashing_algorithm\": \"rabbit_password_hashing_sha512\"}]}");

    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->auth.users[0].password_hash_len, 36);
    ck_assert_uint_eq(cfg->auth.users[1].password_hash_len, 68);
    /* Nothing of the plaintext is kept in the hash. */
    ck_assert_ptr_null(memmem(cfg->auth.users[0].password_hash, 36, "s3cret", 6));
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("a"), WR_BYTES_LIT("s3cret")),
                     &cfg->auth.users[0]);
    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("b"), WR_BYTES_LIT("s3cret")),
                     &cfg->auth.users[1]);
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("a"), WR_BYTES_LIT("s3cre")));
    wr_config_free(cfg);
}
END_TEST

START_TEST(test_hash_salt_is_random)
{
    uint8_t a[WR_PASSWORD_HASH_MAX], b[WR_PASSWORD_HASH_MAX];

    ck_assert_uint_eq(wr_auth_hash_password(WR_HASH_SHA256, WR_BYTES_LIT("pw"), a), 36);
    ck_assert_uint_eq(wr_auth_hash_password(WR_HASH_SHA256, WR_BYTES_LIT("pw"), b), 36);
    ck_assert(memcmp(a, b, 36) != 0);
    ck_assert_uint_eq(wr_auth_hash_password(WR_HASH_MD5, WR_BYTES_LIT("pw"), a), 20);
    ck_assert_uint_eq(wr_auth_digest_len(WR_HASH_SHA512), 64);
}
END_TEST

START_TEST(test_hash_decode)
{
    uint8_t out[WR_PASSWORD_HASH_MAX];
    size_t len = 99;
    wr_hash_alg_t alg;

    ck_assert_int_eq(wr_auth_hash_decode("", WR_HASH_SHA256, out, &len), WR_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(
        wr_auth_hash_decode("fOr6540lC8fVWU7A3DnLKKgnYXIUbnM/lc5PePdH3WGD+Lbw", WR_HASH_SHA256, out, &len),
        WR_OK);
    ck_assert_uint_eq(len, 36);
    ck_assert_uint_eq(out[0], 0x7c);
    /* Not base64: bad characters, bad length, padding inside. */
    ck_assert_int_eq(
        wr_auth_hash_decode("fOr6540l!8fVWU7A3DnLKKgnYXIUbnM/lc5PePdH3WGD+Lbw", WR_HASH_SHA256, out, &len),
        WR_ESYNTAX);
    ck_assert_int_eq(wr_auth_hash_decode("abc", WR_HASH_SHA256, out, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_auth_hash_decode("ab=c", WR_HASH_SHA256, out, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_auth_hash_decode("====", WR_HASH_SHA256, out, &len), WR_ESYNTAX);
    /* Base64, but not salt + one digest of the algorithm. */
    ck_assert_int_eq(wr_auth_hash_decode("3q2+72hfYchy3Ny5FXLOhhISoU4=", WR_HASH_SHA256, out, &len),
                     WR_ETOOBIG);
    ck_assert_int_eq(
        wr_auth_hash_decode("fOr6540lC8fVWU7A3DnLKKgnYXIUbnM/lc5PePdH3WGD+Lbw", WR_HASH_SHA512, out, &len),
        WR_ETOOBIG);
    ck_assert_int_eq(
        wr_auth_hash_decode("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
                            "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
                            WR_HASH_SHA512, out, &len),
        WR_ETOOBIG);
    ck_assert(wr_auth_hash_alg_parse("rabbit_password_hashing_sha256", &alg) && alg == WR_HASH_SHA256);
    ck_assert(wr_auth_hash_alg_parse("rabbit_password_hashing_md5", &alg) && alg == WR_HASH_MD5);
    ck_assert(!wr_auth_hash_alg_parse("sha256", &alg));
}
END_TEST

/* Every mistake in a user's credentials is a start-up error naming the key. */
static const struct {
    const char *json;
    const char *line;
} user_errors[] = {
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"password_hash\": \"\"}]}",
     "users[0]: give either 'password' or 'password_hash', not both"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"not base64!\"}]}",
     "users[0].password_hash: not base64"},
    {"{\"users\": [{\"name\": \"u\", \"password_hash\": \"3q2+72hfYchy3Ny5FXLOhhISoU4=\"}]}",
     "users[0].password_hash: expected 4 octets of salt and a 32-octet digest after base64 decoding"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"hashing_algorithm\": \"bcrypt\"}]}",
     "users[0].hashing_algorithm: unknown algorithm 'bcrypt' (expected rabbit_password_hashing_sha256, "
     "_sha512 or "
     "_md5)"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"limits\": {\"max-channels\": 1}}]}",
     "users[0].limits.max-channels: unknown key"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"limits\": {\"max-connections\": -2}}]}",
     "users[0].limits.max-connections: must be between -1 and 2147483647, got -2"},
    {"{\"users\": [{\"name\": \"u\", \"password\": \"p\", \"tags\": [\"\"]}]}",
     "users[0].tags[0]: must not be empty"},
};

START_TEST(test_user_errors)
{
    char want[512];

    ck_assert_ptr_null(load(user_errors[_i].json));
    snprintf(want, sizeof(want), "%s: %s", path, user_errors[_i].line);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_check_credentials)
{
    wr_config_t *cfg = wr_config_new_default();

    ck_assert_ptr_eq(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("guest")),
                     &cfg->auth.users[0]);
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("wrong")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("gues")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("guest\0")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("guest"), WR_BYTES_LIT("")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("nobody"), WR_BYTES_LIT("guest")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT(""), WR_BYTES_LIT("")));
    ck_assert_ptr_null(wr_auth_check(&cfg->auth, WR_BYTES_LIT("gues"), WR_BYTES_LIT("guest")));
    wr_config_free(cfg);
}
END_TEST

static bool loopback4(const char *addr)
{
    struct sockaddr_in in = {.sin_family = AF_INET};

    ck_assert_int_eq(inet_pton(AF_INET, addr, &in.sin_addr), 1);
    return wr_auth_is_loopback((const struct sockaddr *)&in);
}

static bool loopback6(const char *addr)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

    ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    return wr_auth_is_loopback((const struct sockaddr *)&in6);
}

START_TEST(test_loopback)
{
    struct sockaddr other = {.sa_family = AF_UNIX};

    ck_assert(loopback4("127.0.0.1"));
    ck_assert(loopback4("127.255.1.2"));
    ck_assert(!loopback4("10.0.0.1"));
    ck_assert(!loopback4("128.0.0.1"));
    ck_assert(!loopback4("0.0.0.0"));
    ck_assert(loopback6("::1"));
    ck_assert(loopback6("::ffff:127.0.0.1"));
    ck_assert(!loopback6("::ffff:10.0.0.1"));
    ck_assert(!loopback6("::"));
    ck_assert(!loopback6("2001:db8::1"));
    ck_assert(!wr_auth_is_loopback(&other));
}
END_TEST

START_TEST(test_loopback_users)
{
    wr_config_t *cfg = wr_config_new_default();

    ck_assert(wr_auth_loopback_only(&cfg->auth, "guest"));
    ck_assert(!wr_auth_loopback_only(&cfg->auth, "alice"));
    wr_config_free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-auth");
    TCase *tc = tcase_create("auth");

    tcase_add_test(tc, test_rabbitmq_hashes);
    tcase_add_test(tc, test_plaintext_is_hashed);
    tcase_add_test(tc, test_hash_salt_is_random);
    tcase_add_test(tc, test_hash_decode);
    tcase_add_loop_test(tc, test_user_errors, 0, (int)(sizeof(user_errors) / sizeof(user_errors[0])));
    tcase_add_test(tc, test_check_credentials);
    tcase_add_test(tc, test_loopback);
    tcase_add_test(tc, test_loopback_users);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
