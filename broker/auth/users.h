/* SPDX-License-Identifier: MIT */
/*
 * The users database: users with their password hashes and tags, and their
 * permissions per vhost, as configured and as definitions imports and the
 * management API change them at run time (the loop thread only): lookups for
 * logins and access checks, and an observer told of each change (the node's
 * store records them, broker/node/durable.h).
 */
#ifndef WR_BROKER_USERS_H
#define WR_BROKER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regex.h>

/* Password hashing as RabbitMQ's hashing_algorithm names it
 * (rabbit_password_hashing_sha256, _sha512, _md5). */
typedef enum { WR_HASH_SHA256, WR_HASH_SHA512, WR_HASH_MD5 } wr_hash_alg_t;
/* Four salt octets, then the digest (SHA-512: 64 octets). */
#define WR_PASSWORD_HASH_MAX 68

typedef struct {
    char *name;
    char **vhosts; /* vhosts this user may open, with all permissions (".*") */
    size_t nvhosts;
    /* RabbitMQ's password_hash, base64-decoded: salt ++ H(salt ++ password).
     * Empty: no password is ever accepted (a user for EXTERNAL only). */
    uint8_t password_hash[WR_PASSWORD_HASH_MAX];
    size_t password_hash_len;
    wr_hash_alg_t hashing_algorithm;
    char **tags; /* "administrator", "monitoring"...: kept for the management API */
    size_t ntags;
    bool has_max_connections; /* "limits": {"max-connections": N} given */
    int64_t max_connections;  /* that N; -1 means no limit, as in RabbitMQ */
    bool has_max_channels;    /* "limits": {"max-channels": N} given */
    int64_t max_channels;     /* that N (channels of the user's connections together); -1: no limit */
} wr_user_cfg_t;

/* What a permission grants, in RabbitMQ's order. */
typedef enum { WR_PERM_CONFIGURE, WR_PERM_WRITE, WR_PERM_READ } wr_perm_t;
#define WR_PERM_KINDS 3

/* One user's permissions in one vhost: a POSIX extended regular expression
 * per kind, matched anywhere in a resource name unless anchored. */
typedef struct {
    char *user;
    char *vhost;
    char *pattern[WR_PERM_KINDS]; /* as configured; "" is RabbitMQ's "^$" */
    regex_t re[WR_PERM_KINDS];    /* compiled from pattern (or "^$") */
    bool implicit;                /* from the user's "vhosts" list */
    bool deleted;                 /* removed at run time: grants nothing, not listed */
} wr_permission_cfg_t;

/* Told of each change after it is made (a user's delete just before it is
 * freed); none of them may change the database. */
typedef struct {
    void (*user_put)(void *ud, const wr_user_cfg_t *u); /* created or replaced, or its limit set */
    void (*user_deleted)(void *ud, const char *name);   /* its permissions went with it */
    void (*permission_put)(void *ud, const wr_permission_cfg_t *perm);
    void (*permission_deleted)(void *ud, const char *user, const char *vhost);
} wr_users_observer_t;

/* The users and permissions of the broker. The configuration (config.h) fills
 * one at start-up; the loop thread changes it at run time. */
typedef struct {
    wr_user_cfg_t *users;
    size_t nusers;
    char **loopback_users; /* users who may log in only from a loopback address */
    size_t nloopback_users;
    wr_permission_cfg_t *permissions; /* explicit ones, then those of users' "vhosts" */
    size_t npermissions;
    /* Permissions set at run time (definitions, management API), one
     * allocation each: connections keep pointers to permissions, so none
     * moves or is freed before the configuration is. */
    wr_permission_cfg_t **added_permissions;
    size_t nadded_permissions;
    const wr_users_observer_t *observer; /* NULL: nobody is told */
    void *observer_ud;
} wr_users_t;

/* The user called `name` (len octets), or NULL. */
const wr_user_cfg_t *wr_users_find(const wr_users_t *db, const char *name, size_t len);

/* Creates or replaces a user (hash, algorithm, tags; its limits and vhosts
 * are kept); *created tells which. WR_ENOMEM. */
int wr_users_put(wr_users_t *db, const char *name, const uint8_t *hash, size_t hash_len, wr_hash_alg_t alg,
                 const char *const *tags, size_t ntags, bool *created);
/* Removes a user and its permissions, as RabbitMQ's delete_user; false when none. */
bool wr_users_delete(wr_users_t *db, const char *name);
/* Sets a user's "max-connections" limit (-1: none); false when there is no such user. */
bool wr_users_set_max_connections(wr_users_t *db, const char *name, int64_t max);
/* Sets or (has_ false) clears a user's "max-connections" and "max-channels"
 * limits (-1: no limit); false when there is no such user. */
bool wr_users_set_limits(wr_users_t *db, const char *name, bool has_conns, int64_t conns, bool has_chans,
                         int64_t chans);
/* Removes every user and permission, telling the observer of each user
 * (start-up: the users of the node's store replace the configuration's). */
void wr_users_clear(wr_users_t *db);
/* Sets user's permission in vhost (replacing it in place, so connections
 * see it at once). WR_ESYNTAX with err set for a bad pattern, WR_ENOMEM. */
int wr_users_put_permission(wr_users_t *db, const char *user, const char *vhost,
                            const char *const pattern[WR_PERM_KINDS], bool *created, char *err,
                            size_t errlen);
/* Compiles perm->pattern into perm->re ("" is RabbitMQ's "^$"). WR_OK, or
 * WR_ESYNTAX with "<kind>: invalid regular expression ..." in err and
 * nothing left compiled. */
int wr_users_permission_compile(wr_permission_cfg_t *perm, char *err, size_t errlen);
/* Whether pattern compiles as a permission's; false with why set if not. */
bool wr_users_pattern_ok(const char *pattern, char *why, size_t n);
/* Takes user's permission in vhost away; false when it has none. */
bool wr_users_delete_permission(wr_users_t *db, const char *user, const char *vhost);
/* The permissions in force, one at a time: start with *i = 0; NULL at the end. */
const wr_permission_cfg_t *wr_users_permission_next(const wr_users_t *db, size_t *i);
/* What `user` may do in vhost `vhost` (len octets); NULL when it may not open it. */
const wr_permission_cfg_t *wr_users_permission(const wr_users_t *db, const char *user, const char *vhost,
                                               size_t len);

#endif
