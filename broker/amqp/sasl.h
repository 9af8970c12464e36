/* SPDX-License-Identifier: MIT */
/*
 * SASL response parsers for connection.start-ok: PLAIN and AMQPLAIN, and the
 * mechanism list connection.start advertises. Pure functions over the
 * response bytes (bounds-checked, borrowing from them), so they are
 * unit-tested and fuzzed in isolation (tests/fuzz/fuzz_sasl.c).
 */
#ifndef WR_BROKER_SASL_H
#define WR_BROKER_SASL_H

#include <stdbool.h>

#include "core/bytes.h"

typedef enum {
    WR_SASL_UNKNOWN, /* not a mechanism warren implements */
    WR_SASL_PLAIN,
    WR_SASL_AMQPLAIN,
    WR_SASL_EXTERNAL, /* identity from the TLS client certificate */
} wr_sasl_mech_t;

/* The mechanism a client names, as RabbitMQ registers them (case-sensitive). */
wr_sasl_mech_t wr_sasl_mech_parse(wr_bytes_t name);
/* "PLAIN", "AMQPLAIN", "EXTERNAL". */
const char *wr_sasl_mech_name(wr_sasl_mech_t mech);
/*
 * The space-separated list for connection.start, in RabbitMQ's order.
 * EXTERNAL is offered on TLS connections only, as rabbit_auth_mechanism_ssl
 * does (even before a client certificate is known to exist, so that a client
 * without one is told why at login rather than failing to negotiate).
 */
const char *wr_sasl_mechanisms(bool tls);
/* Whether `mech` is in wr_sasl_mechanisms(tls). */
bool wr_sasl_offered(wr_sasl_mech_t mech, bool tls);

/*
 * SASL PLAIN as RabbitMQ reads it: "\0user\0password". An authorization
 * identity before the first NUL is refused (warren, like RabbitMQ, cannot act
 * on behalf of another user), as is anything after the password.
 * WR_OK with *user and *password pointing into response, or WR_ESYNTAX.
 */
int wr_sasl_plain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password);

/*
 * AMQPLAIN: a field table without its length prefix, holding LOGIN and
 * PASSWORD as longstr values. WR_OK; WR_ESYNTAX for a malformed table;
 * WR_ENOENT when LOGIN or PASSWORD is missing; WR_EUNKNOWN when either is not
 * a longstr.
 */
int wr_sasl_amqplain_parse(wr_bytes_t response, wr_bytes_t *user, wr_bytes_t *password);

#endif
