/* SPDX-License-Identifier: MIT */
/*
 * Password hashes and credential checks; see auth.h. The hash format is
 * RabbitMQ's (rabbit_password, rabbit_password_hashing_sha256): base64 of a
 * 4-octet salt followed by SHA-256(salt ++ password), so users exported from
 * a RabbitMQ definitions file log in unchanged.
 */
#include "broker/auth/auth.h"

#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/base64.h"
#include "core/status.h"

#define SALT_LEN 4

static const struct {
    const char *name;
    wr_hash_alg_t alg;
} hash_algs[] = {
    {"rabbit_password_hashing_sha256", WR_HASH_SHA256},
    {"rabbit_password_hashing_sha512", WR_HASH_SHA512},
    {"rabbit_password_hashing_md5", WR_HASH_MD5},
};

bool wr_auth_hash_alg_parse(const char *name, wr_hash_alg_t *alg)
{
    for (size_t i = 0; i < sizeof(hash_algs) / sizeof(hash_algs[0]); i++) {
        if (strcmp(name, hash_algs[i].name) == 0) {
            *alg = hash_algs[i].alg;
            return true;
        }
    }
    return false;
}

static const EVP_MD *hash_md(wr_hash_alg_t alg)
{
    switch (alg) {
    case WR_HASH_SHA512:
        return EVP_sha512();
    case WR_HASH_MD5:
        return EVP_md5();
    case WR_HASH_SHA256:
        break;
    }
    return EVP_sha256();
}

size_t wr_auth_digest_len(wr_hash_alg_t alg)
{
    return (size_t)EVP_MD_get_size(hash_md(alg));
}

/* H(salt ++ password) into out (at least 64 octets). */
static bool salted_digest(wr_hash_alg_t alg, const uint8_t *salt, wr_bytes_t password, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok;

    ok = ctx && EVP_DigestInit_ex(ctx, hash_md(alg), NULL) == 1 &&
         EVP_DigestUpdate(ctx, salt, SALT_LEN) == 1 &&
         (password.len == 0 || EVP_DigestUpdate(ctx, password.data, password.len) == 1) &&
         EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

size_t wr_auth_hash_password(wr_hash_alg_t alg, wr_bytes_t password, uint8_t *out)
{
    if (RAND_bytes(out, SALT_LEN) != 1 || !salted_digest(alg, out, password, out + SALT_LEN))
        return 0;
    return SALT_LEN + wr_auth_digest_len(alg);
}

int wr_auth_hash_decode(const char *b64, wr_hash_alg_t alg, uint8_t *out, size_t *len)
{
    size_t n = strlen(b64), pad = 0;
    long used;

    /* RabbitMQ's base64:decode: whole quanta, at most two '=' at the end. */
    if (n % 4 != 0)
        return WR_ESYNTAX;
    while (pad < n && b64[n - 1 - pad] == '=')
        pad++;
    if (pad > 2)
        return WR_ESYNTAX;
    /* Every quantum decodes to 3 octets, less the padding of the last. */
    if (n / 4 * 3 - pad > WR_PASSWORD_HASH_MAX)
        return WR_ETOOBIG;
    used = wr_base64_decode(b64, n, out, WR_PASSWORD_HASH_MAX);
    if (used < 0)
        return WR_ESYNTAX;
    if (used != 0 && (size_t)used != SALT_LEN + wr_auth_digest_len(alg))
        return WR_ETOOBIG;
    *len = (size_t)used;
    return WR_OK;
}

const wr_user_cfg_t *wr_auth_check(const wr_users_t *db, wr_bytes_t user, wr_bytes_t password)
{
    /* Stands in for an unknown user's hash: the same digest is computed. */
    static const uint8_t unknown[SALT_LEN + 32] = {0};
    const wr_user_cfg_t *u = wr_users_find(db, (const char *)user.data, user.len);
    const uint8_t *stored = u ? u->password_hash : unknown;
    size_t stored_len = u ? u->password_hash_len : sizeof(unknown);
    wr_hash_alg_t alg = u ? u->hashing_algorithm : WR_HASH_SHA256;
    size_t dlen = wr_auth_digest_len(alg);
    uint8_t salt[SALT_LEN] = {0};
    uint8_t digest[EVP_MAX_MD_SIZE];
    bool match;

    if (stored_len == SALT_LEN + dlen)
        memcpy(salt, stored, SALT_LEN);
    if (!salted_digest(alg, salt, password, digest))
        return NULL;
    match = stored_len == SALT_LEN + dlen && CRYPTO_memcmp(digest, stored + SALT_LEN, dlen) == 0;
    return u && match ? u : NULL;
}

bool wr_auth_is_loopback(const struct sockaddr *peer)
{
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (peer->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

bool wr_auth_loopback_only(const wr_users_t *db, const char *user)
{
    for (size_t i = 0; i < db->nloopback_users; i++) {
        if (strcmp(db->loopback_users[i], user) == 0)
            return true;
    }
    return false;
}
