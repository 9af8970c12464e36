/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the SASL response parsers (broker/amqp/sasl.c), the part
 * of connection.start-ok an unauthenticated client controls. The input is
 * parsed as a PLAIN response, an AMQPLAIN response and a mechanism name;
 * whatever parses must borrow only from the input and round-trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp/sasl.h"
#include "core/status.h"
#include "protocol/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(wr_bytes_t part, const uint8_t *data, size_t size)
{
    return part.len == 0 ||
           (part.data >= data && part.len <= size && part.data - data <= (ptrdiff_t)(size - part.len));
}

static void check_plain(const uint8_t *data, size_t size)
{
    wr_bytes_t user, password;
    int rc = wr_sasl_plain_parse((wr_bytes_t){data, size}, &user, &password);

    if (rc != WR_OK) {
        if (rc != WR_ESYNTAX)
            abort();
        return;
    }
    /* "\0" user "\0" password, exactly, with no NUL inside either. */
    if (!inside(user, data, size) || !inside(password, data, size) || size != user.len + password.len + 2)
        abort();
    if (memchr(user.data, 0, user.len) || memchr(password.data, 0, password.len))
        abort();
    if (data[0] != 0 || data[1 + user.len] != 0)
        abort();
    if (user.len && memcmp(data + 1, user.data, user.len) != 0)
        abort();
}

static void check_amqplain(const uint8_t *data, size_t size)
{
    wr_bytes_t raw = {data, size}, user, password;
    wr_value_t login;
    int rc = wr_sasl_amqplain_parse(raw, &user, &password);

    if (rc != WR_OK) {
        if (rc != WR_ESYNTAX && rc != WR_ENOENT && rc != WR_EUNKNOWN)
            abort();
        return;
    }
    if (!inside(user, data, size) || !inside(password, data, size))
        abort();
    if (wr_table_validate(raw, WR_TABLE_MAX_DEPTH) != WR_OK || !wr_table_get(raw, "LOGIN", &login) ||
        login.type != 'S' || login.v.s.len != user.len || login.v.s.data != user.data)
        abort();
}

static void check_mechanism(const uint8_t *data, size_t size)
{
    wr_sasl_mech_t mech = wr_sasl_mech_parse((wr_bytes_t){data, size});
    const char *name = wr_sasl_mech_name(mech);

    if (mech == WR_SASL_UNKNOWN)
        return;
    if (strlen(name) != size || memcmp(name, data, size) != 0)
        abort();
    if (!wr_sasl_offered(mech, true) || (mech == WR_SASL_EXTERNAL) == wr_sasl_offered(mech, false))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_plain(data, size);
    check_amqplain(data, size);
    check_mechanism(data, size);
    return 0;
}
