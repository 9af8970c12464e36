/* SPDX-License-Identifier: MIT */
/*
 * SASL mechanisms and response parsing; see sasl.h. The parsers follow
 * RabbitMQ's rabbit_auth_mechanism_plain/_amqplain in what they accept, so a
 * client refused by one broker is refused by the other.
 */
#include "broker/amqp/sasl.h"

#include <string.h>

#include "core/status.h"
#include "protocol/table.h"

wr_sasl_mech_t wr_sasl_mech_parse(wr_bytes_t name)
{
    if (wr_bytes_eq_str(name, "PLAIN"))
        return WR_SASL_PLAIN;
    if (wr_bytes_eq_str(name, "AMQPLAIN"))
        return WR_SASL_AMQPLAIN;
    if (wr_bytes_eq_str(name, "EXTERNAL"))
        return WR_SASL_EXTERNAL;
    return WR_SASL_UNKNOWN;
}

const char *wr_sasl_mech_name(wr_sasl_mech_t mech)
{
    switch (mech) {
    case WR_SASL_PLAIN:
        return "PLAIN";
    case WR_SASL_AMQPLAIN:
        return "AMQPLAIN";
    case WR_SASL_EXTERNAL:
        return "EXTERNAL";
    case WR_SASL_UNKNOWN:
        break;
    }
    return "?";
}

const char *wr_sasl_mechanisms(bool tls)
{
    return tls ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN";
}

bool wr_sasl_offered(wr_sasl_mech_t mech, bool tls)
{
    return mech == WR_SASL_PLAIN || mech == WR_SASL_AMQPLAIN || (mech == WR_SASL_EXTERNAL && tls);
}

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

int wr_sasl_plain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password)
{
    wr_bytes_t rest = response;

    if (!plain_elem(&rest, user) || !plain_elem(&rest, password) || rest.len != 0)
        return WR_ESYNTAX;
    return WR_OK;
}

int wr_sasl_amqplain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password)
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
