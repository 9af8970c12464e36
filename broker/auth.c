/* SPDX-License-Identifier: MIT */
/*
 * SASL PLAIN and AMQPLAIN parsing and credential checks; see auth.h. The
 * parsers follow RabbitMQ's rabbit_auth_mechanism_plain/_amqplain in what
 * they accept, so a client refused by one broker is refused by the other.
 */
#include "broker/auth.h"

#include <netinet/in.h>
#include <string.h>

#include "core/status.h"
#include "protocol/table.h"

/* Stands in for the password of an unknown user so that a failed lookup
 * costs the same comparison as a wrong password. */
static const char unknown_user_password[] = "\x01warren-no-such-user\x01";

/* One SASL PLAIN element: a NUL, then bytes up to the next NUL or the end. */
static bool plain_elem(wr_bytes_t *rest, wr_bytes_t *out)
{
    const uint8_t *nul;

    if (rest->len == 0 || rest->data[0] != 0)
        return false;
    out->data = rest->data + 1;
    nul = memchr(out->data, 0, rest->len - 1);
    out->len = nul ? (size_t)(nul - out->data) : rest->len - 1;
    rest->data += 1 + out->len;
    rest->len -= 1 + out->len;
    return true;
}

int wr_auth_plain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password)
{
    wr_bytes_t rest = response;

    if (!plain_elem(&rest, user) || !plain_elem(&rest, password) || rest.len != 0)
        return WR_ESYNTAX;
    return WR_OK;
}

int wr_auth_amqplain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password)
{
    wr_value_t login, pass;

    if (wr_table_validate(response, WR_TABLE_MAX_DEPTH) != WR_OK)
        return WR_ESYNTAX;
    if (!wr_table_get(response, "LOGIN", &login) || !wr_table_get(response, "PASSWORD", &pass))
        return WR_ENOENT;
    if (login.type != 'S' || pass.type != 'S')
        return WR_EUNKNOWN;
    *user = login.v.s;
    *password = pass.v.s;
    return WR_OK;
}

/* Compares every byte of the longer string, so the time depends on the
 * lengths only. */
static bool secret_eq(wr_bytes_t a, wr_bytes_t b)
{
    size_t n = a.len > b.len ? a.len : b.len;
    volatile uint8_t diff = a.len != b.len;

    for (size_t i = 0; i < n; i++) {
        uint8_t x = i < a.len ? a.data[i] : 0;
        uint8_t y = i < b.len ? b.data[i] : 0;

        diff |= x ^ y;
    }
    return diff == 0;
}

const wr_user_cfg_t *wr_auth_check(const wr_config_t *cfg, wr_bytes_t user, wr_bytes_t password)
{
    const wr_user_cfg_t *u = wr_config_user(cfg, (const char *)user.data, user.len);
    bool match;

    if (!u) {
        secret_eq(password, WR_BYTES_LIT(unknown_user_password));
        return NULL;
    }
    match = secret_eq(password, wr_bytes_str(u->password));
    return match ? u : NULL;
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

bool wr_auth_loopback_only(const wr_config_t *cfg, const char *user)
{
    for (size_t i = 0; i < cfg->nloopback_users; i++) {
        if (strcmp(cfg->loopback_users[i], user) == 0)
            return true;
    }
    return false;
}

bool wr_auth_vhost_allowed(const wr_user_cfg_t *user, wr_bytes_t vhost)
{
    for (size_t i = 0; i < user->nvhosts; i++) {
        if (wr_bytes_eq_str(vhost, user->vhosts[i]))
            return true;
    }
    return false;
}
