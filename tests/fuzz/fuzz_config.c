/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the configuration file (broker/config/config.c): the input
 * is loaded with wr_config_load, the function main.c and --check-config
 * call. A rejected file must say why in a NUL-terminated message that fits
 * the (deliberately small, exactly sized) buffer; an accepted one must hold
 * what the loader promises: limits in range, every user's vhosts and every
 * permission's vhost configured, every permission compiled, every policy
 * valid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/vhost/policy.h"
#include "core/status.h"
#include "tests/fuzz/fuzz_util.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough that long reports are truncated. */
#define ERR_LEN 200

static bool has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

static void check_users(const wr_config_t *cfg)
{
    const wr_permission_cfg_t *perm;

    for (size_t i = 0; i < cfg->auth.nusers; i++) {
        const wr_user_cfg_t *u = &cfg->auth.users[i];

        if (u->name == NULL || u->password_hash_len > WR_PASSWORD_HASH_MAX)
            abort();
        for (size_t j = 0; j < u->nvhosts; j++) {
            if (!has(cfg->vhosts, cfg->nvhosts, u->vhosts[j]))
                abort();
        }
        if (wr_users_find(&cfg->auth, u->name, strlen(u->name)) == NULL)
            abort();
    }
    for (size_t i = 0; (perm = wr_users_permission_next(&cfg->auth, &i));) {
        if (!has(cfg->vhosts, cfg->nvhosts, perm->vhost) ||
            wr_users_find(&cfg->auth, perm->user, strlen(perm->user)) == NULL)
            abort();
        for (int k = 0; k < WR_PERM_KINDS; k++) {
            /* Compiled: matching must work on any name. */
            regexec(&perm->re[k], "amq.gen-fuzz", 0, NULL, 0);
        }
    }
}

static void check_policies(const wr_config_t *cfg)
{
    size_t i;
    json_t *p;
    char why[300];

    json_array_foreach(cfg->policies, i, p)
    {
        if (wr_policy_validate(json_string_value(json_object_get(p, "pattern")),
                               json_string_value(json_object_get(p, "apply-to")),
                               json_object_get(p, "definition"), why, sizeof(why)) != WR_OK)
            abort();
    }
}

static void check(const wr_config_t *cfg)
{
    if (cfg->frame_max < 4096 || cfg->nlisteners + cfg->ntls_listeners == 0 || cfg->nvhosts == 0 ||
        cfg->max_table_depth == 0 || cfg->data_dir == NULL)
        abort();
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].address == NULL)
            abort();
    }
    check_users(cfg);
    check_policies(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    char *err = malloc(ERR_LEN);
    int fd = wr_fuzz_memfile(data, size, path);
    wr_config_t *cfg;

    if (err == NULL)
        abort();
    cfg = wr_config_load(path, err, ERR_LEN);
    close(fd);
    if (cfg == NULL && (err[0] == '\0' || strnlen(err, ERR_LEN) == ERR_LEN))
        abort();
    if (cfg != NULL)
        check(cfg);
    wr_config_free(cfg);
    free(err);
    return 0;
}
