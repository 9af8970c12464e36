/* SPDX-License-Identifier: MIT */
/*
 * Permission checks; see access.h. A name is matched with REG_STARTEND, so it
 * is taken by its length, NUL octets included, as RabbitMQ's re:run takes
 * binaries.
 */
#include "broker/auth/access.h"

#include <string.h>

#include "broker/base/pattern.h"
#include "protocol/constants.h"
#include "protocol/table.h"

/* RabbitMQ checks the default exchange ("") under this name. */
#define DEFAULT_EXCHANGE_NAME "amq.default"

bool wr_access_permitted(const wr_permission_cfg_t *perm, wr_perm_t what, wr_bytes_t name)
{
    /* The usual grant matches every name (the empty match at offset 0). */
    return strcmp(perm->pattern[what], ".*") == 0 || wr_pattern_matches(&perm->re[what], name);
}

bool wr_access_check(const wr_access_who_t *who, wr_perm_t what, const char *kind, wr_bytes_t name,
                     uint32_t method, wr_amqp_error_t *err)
{
    if (name.len == 0 && strcmp(kind, "exchange") == 0)
        name = WR_BYTES_LIT(DEFAULT_EXCHANGE_NAME);
    if (who->perm && !who->perm->deleted && wr_access_permitted(who->perm, what, name))
        return true;
    wr_amqp_error_set(err, WR_AMQP_ACCESS_REFUSED, method,
                      "access to %s '%.*s' in vhost '%s' refused for user '%s'", kind, (int)name.len,
                      (const char *)name.data, who->vhost, who->user);
    return false;
}

bool wr_access_check_arg(const wr_access_who_t *who, const char *kind, wr_bytes_t name, wr_bytes_t args,
                         const char *key, uint32_t method, wr_amqp_error_t *err)
{
    wr_value_t x;

    if (!wr_table_get(args, key, &x) || x.type != 'S')
        return true;
    return wr_access_check(who, WR_PERM_READ, kind, name, method, err) &&
           wr_access_check(who, WR_PERM_WRITE, "exchange", x.v.s, method, err);
}
