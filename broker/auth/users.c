/* SPDX-License-Identifier: MIT */
/*
 * The users and permissions in force (users.h): lookups for logins and
 * access checks, and the run-time changes made by definitions imports and
 * the management API. A permission never moves once connections may point
 * at it: run-time ones get an allocation each, deleted ones are flagged.
 */
#include "broker/auth/users.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/pattern.h"
#include "core/status.h"

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

const wr_user_cfg_t *wr_users_find(const wr_users_t *db, const char *name, size_t len)
{
    for (size_t i = 0; i < db->nusers; i++) {
        const wr_user_cfg_t *u = &db->users[i];

        if (strlen(u->name) == len && memcmp(u->name, name, len) == 0)
            return u;
    }
    return NULL;
}

const wr_permission_cfg_t *wr_users_permission_next(const wr_users_t *db, size_t *i)
{
    while (*i < db->npermissions + db->nadded_permissions) {
        size_t k = (*i)++;
        const wr_permission_cfg_t *perm =
            k < db->npermissions ? &db->permissions[k] : db->added_permissions[k - db->npermissions];

        if (!perm->deleted)
            return perm;
    }
    return NULL;
}

const wr_permission_cfg_t *wr_users_permission(const wr_users_t *db, const char *user, const char *vhost,
                                               size_t len)
{
    size_t i = 0;
    const wr_permission_cfg_t *perm;

    while ((perm = wr_users_permission_next(db, &i))) {
        if (strcmp(perm->user, user) == 0 && strlen(perm->vhost) == len &&
            memcmp(perm->vhost, vhost, len) == 0)
            return perm;
    }
    return NULL;
}

/* Any permission of user in vhost, a deleted one included (to be reused). */
static wr_permission_cfg_t *slot_permission(wr_users_t *db, const char *user, const char *vhost)
{
    for (size_t k = 0; k < db->npermissions + db->nadded_permissions; k++) {
        wr_permission_cfg_t *perm =
            k < db->npermissions ? &db->permissions[k] : db->added_permissions[k - db->npermissions];

        if (strcmp(perm->user, user) == 0 && strcmp(perm->vhost, vhost) == 0)
            return perm;
    }
    return NULL;
}

static char **copy_strings(const char *const *list, size_t n)
{
    char **copy = calloc(n ? n : 1, sizeof(*copy));

    for (size_t i = 0; copy && i < n; i++) {
        if (!(copy[i] = strdup(list[i]))) {
            free_strings(copy, i);
            return NULL;
        }
    }
    return copy;
}

int wr_users_put(wr_users_t *db, const char *name, const uint8_t *hash, size_t hash_len, wr_hash_alg_t alg,
                 const char *const *tags, size_t ntags, bool *created)
{
    wr_user_cfg_t *u = (wr_user_cfg_t *)wr_users_find(db, name, strlen(name));
    char **tag_copy = copy_strings(tags, ntags);

    if (!tag_copy || hash_len > WR_PASSWORD_HASH_MAX)
        goto nomem;
    *created = u == NULL;
    if (!u) {
        wr_user_cfg_t *grown = realloc(db->users, (db->nusers + 1) * sizeof(*db->users));

        if (!grown)
            goto nomem;
        db->users = grown;
        u = &grown[db->nusers];
        *u = (wr_user_cfg_t){.max_connections = -1, .max_channels = -1};
        if (!(u->name = strdup(name)))
            goto nomem;
        db->nusers++;
    }
    free_strings(u->tags, u->ntags);
    u->tags = tag_copy;
    u->ntags = ntags;
    if (hash_len > 0)
        memcpy(u->password_hash, hash, hash_len);
    u->password_hash_len = hash_len;
    u->hashing_algorithm = alg;
    if (db->observer != NULL)
        db->observer->user_put(db->observer_ud, u);
    return WR_OK;
nomem:
    free_strings(tag_copy, tag_copy ? ntags : 0);
    return WR_ENOMEM;
}

bool wr_users_delete(wr_users_t *db, const char *name)
{
    wr_user_cfg_t *u = (wr_user_cfg_t *)wr_users_find(db, name, strlen(name));
    size_t i = 0;
    const wr_permission_cfg_t *perm;

    if (!u)
        return false;
    while ((perm = wr_users_permission_next(db, &i))) {
        if (strcmp(perm->user, name) == 0)
            ((wr_permission_cfg_t *)perm)->deleted = true;
    }
    /* Before the name goes: it may be u->name itself. */
    if (db->observer != NULL)
        db->observer->user_deleted(db->observer_ud, name);
    free(u->name);
    free_strings(u->vhosts, u->nvhosts);
    free_strings(u->tags, u->ntags);
    memmove(u, u + 1, (size_t)(&db->users[db->nusers] - (u + 1)) * sizeof(*u));
    db->nusers--;
    return true;
}

bool wr_users_set_limits(wr_users_t *db, const char *name, bool has_conns, int64_t conns, bool has_chans,
                         int64_t chans)
{
    wr_user_cfg_t *u = (wr_user_cfg_t *)wr_users_find(db, name, strlen(name));

    if (u == NULL)
        return false;
    u->has_max_connections = has_conns;
    u->max_connections = has_conns ? conns : -1;
    u->has_max_channels = has_chans;
    u->max_channels = has_chans ? chans : -1;
    if (db->observer != NULL)
        db->observer->user_put(db->observer_ud, u);
    return true;
}

bool wr_users_set_max_connections(wr_users_t *db, const char *name, int64_t max)
{
    wr_user_cfg_t *u = (wr_user_cfg_t *)wr_users_find(db, name, strlen(name));

    if (u == NULL)
        return false;
    u->has_max_connections = true;
    u->max_connections = max;
    if (db->observer != NULL)
        db->observer->user_put(db->observer_ud, u);
    return true;
}

void wr_users_clear(wr_users_t *db)
{
    while (db->nusers > 0)
        wr_users_delete(db, db->users[0].name);
}

/* Compiles one permission pattern ("" is RabbitMQ's "^$", the empty name
 * only); false with why set if it does not compile. */
static bool compile_pattern(regex_t *re, const char *pattern, char *why, size_t n)
{
    int rc;

    if (!wr_pattern_ok(pattern, why, n))
        return false;
    rc = regcomp(re, pattern[0] ? pattern : "^$", REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char text[120];

        regerror(rc, re, text, sizeof(text));
        snprintf(why, n, "invalid regular expression '%s': %s", pattern, text);
        return false;
    }
    return true;
}

int wr_users_permission_compile(wr_permission_cfg_t *perm, char *err, size_t errlen)
{
    static const char *const kinds[WR_PERM_KINDS] = {"configure", "write", "read"};
    char why[300];
    int k;

    for (k = 0; k < WR_PERM_KINDS; k++) {
        if (!compile_pattern(&perm->re[k], perm->pattern[k], why, sizeof(why))) {
            snprintf(err, errlen, "%s: %s", kinds[k], why);
            break;
        }
    }
    if (k == WR_PERM_KINDS)
        return WR_OK;
    while (k-- > 0)
        regfree(&perm->re[k]);
    return WR_ESYNTAX;
}

int wr_users_put_permission(wr_users_t *db, const char *user, const char *vhost,
                            const char *const pattern[WR_PERM_KINDS], bool *created, char *err, size_t errlen)
{
    wr_permission_cfg_t *perm = slot_permission(db, user, vhost);
    wr_permission_cfg_t fresh = {0};
    int rc = WR_OK;

    for (int k = 0; k < WR_PERM_KINDS && rc == WR_OK; k++) {
        if (!(fresh.pattern[k] = strdup(pattern[k]))) {
            snprintf(err, errlen, "out of memory");
            rc = WR_ENOMEM;
        }
    }
    if (rc == WR_OK)
        rc = wr_users_permission_compile(&fresh, err, errlen);
    if (rc == WR_OK && !perm) {
        wr_permission_cfg_t **grown =
            realloc(db->added_permissions, (db->nadded_permissions + 1) * sizeof(*grown));

        if (grown)
            db->added_permissions = grown;
        perm = grown ? calloc(1, sizeof(*perm)) : NULL;
        if (perm && (!(perm->user = strdup(user)) || !(perm->vhost = strdup(vhost)))) {
            free(perm->user);
            free(perm);
            perm = NULL;
        }
        if (!perm) {
            snprintf(err, errlen, "out of memory");
            for (int j = 0; j < WR_PERM_KINDS; j++)
                regfree(&fresh.re[j]);
            rc = WR_ENOMEM;
        } else {
            *created = true;
            db->added_permissions[db->nadded_permissions++] = perm;
        }
    } else if (rc == WR_OK) {
        *created = perm->deleted;
        for (int j = 0; j < WR_PERM_KINDS; j++) {
            free(perm->pattern[j]);
            regfree(&perm->re[j]);
        }
    }
    if (rc != WR_OK) {
        for (int j = 0; j < WR_PERM_KINDS; j++)
            free(fresh.pattern[j]);
        return rc;
    }
    for (int j = 0; j < WR_PERM_KINDS; j++) {
        perm->pattern[j] = fresh.pattern[j];
        perm->re[j] = fresh.re[j];
    }
    perm->deleted = false;
    if (db->observer != NULL)
        db->observer->permission_put(db->observer_ud, perm);
    return WR_OK;
}

bool wr_users_pattern_ok(const char *pattern, char *why, size_t n)
{
    regex_t re;

    if (!compile_pattern(&re, pattern, why, n))
        return false;
    regfree(&re);
    return true;
}

bool wr_users_delete_permission(wr_users_t *db, const char *user, const char *vhost)
{
    wr_permission_cfg_t *perm = slot_permission(db, user, vhost);

    if (!perm || perm->deleted)
        return false;
    perm->deleted = true;
    if (db->observer != NULL)
        db->observer->permission_deleted(db->observer_ud, user, vhost);
    return true;
}
