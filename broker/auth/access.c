/* SPDX-License-Identifier: MIT */
/*
 * Permission checks; see access.h. A name is matched with REG_STARTEND, so it
 * is taken by its length, NUL octets included, as RabbitMQ's re:run takes
 * binaries.
 */
#include "broker/auth/access.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp/conn.h"
#include "broker/vhost/vhost.h"
#include "protocol/table.h"

/* RabbitMQ checks the default exchange ("") under this name. */
#define DEFAULT_EXCHANGE_NAME "amq.default"

bool wr_access_name_matches(const regex_t *re, wr_bytes_t name)
{
    char small[256];
    char *copy = small;
    regmatch_t span = {0, (regoff_t)name.len};
    bool match;

    /* REG_STARTEND bounds the match, but sanitizers' regexec wrappers still
     * read up to a NUL: give them one. Longer names come only from
     * arguments (a dead-letter or alternate exchange). */
    if (name.len >= sizeof(small) && !(copy = malloc(name.len + 1)))
        return false;
    if (name.len > 0)
        memcpy(copy, name.data, name.len);
    copy[name.len] = '\0';
    match = regexec(re, copy, 1, &span, REG_STARTEND) == 0;
    if (copy != small)
        free(copy);
    return match;
}

bool wr_access_permitted(const wr_permission_cfg_t *perm, wr_perm_t what, wr_bytes_t name)
{
    /* The usual grant matches every name (the empty match at offset 0). */
    return strcmp(perm->pattern[what], ".*") == 0 || wr_access_name_matches(&perm->re[what], name);
}

bool wr_access_check_as(const wr_access_who_t *who, wr_perm_t what, const char *kind, wr_bytes_t name,
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

/* The connection's user in its vhost. */
static wr_access_who_t conn_who(const wr_conn_t *c)
{
    return (wr_access_who_t){wr_conn_permission(c), wr_vhost_name(wr_conn_vhost(c)), wr_conn_user(c)};
}

bool wr_access_check(const wr_conn_t *c, wr_perm_t what, const char *kind, wr_bytes_t name, uint32_t method,
                     wr_amqp_error_t *err)
{
    wr_access_who_t who = conn_who(c);

    return wr_access_check_as(&who, what, kind, name, method, err);
}

bool wr_access_check_arg_as(const wr_access_who_t *who, const char *kind, wr_bytes_t name, wr_bytes_t args,
                            const char *key, uint32_t method, wr_amqp_error_t *err)
{
    wr_value_t x;

    if (!wr_table_get(args, key, &x) || x.type != 'S')
        return true;
    return wr_access_check_as(who, WR_PERM_READ, kind, name, method, err) &&
           wr_access_check_as(who, WR_PERM_WRITE, "exchange", x.v.s, method, err);
}

bool wr_access_check_arg(const wr_conn_t *c, const char *kind, wr_bytes_t name, wr_bytes_t args,
                         const char *key, uint32_t method, wr_amqp_error_t *err)
{
    wr_access_who_t who = conn_who(c);

    return wr_access_check_arg_as(&who, kind, name, args, key, method, err);
}
