/* SPDX-License-Identifier: MIT */
/*
 * Definitions import and export in RabbitMQ's definitions.json shape
 * (rabbit_version, vhosts, users, permissions, policies, exchanges, queues
 * with arguments, bindings), so a topology moves between RabbitMQ and warren
 * unchanged. Used by GET/POST /api/definitions and by load_definitions at
 * boot.
 */
#ifndef WR_BROKER_DEFINITIONS_H
#define WR_BROKER_DEFINITIONS_H

#include <stddef.h>

#include <jansson.h>

#include "broker/mgmt/mgmt_env.h"
#include "broker/vhost/vhost.h"

/* Everything (only == NULL), or one vhost's objects without vhost fields,
 * as RabbitMQ's /api/definitions/VHOST. NULL on ENOMEM. */
json_t *wr_definitions_export(const wr_mgmt_env_t *env, const wr_vhost_t *only);
/*
 * Checks the whole document first (a malformed one changes nothing), then
 * creates the vhosts it names (unless `only` is given: then every object
 * goes into that vhost), puts its policies and declares exchanges, queues
 * and bindings as a client would; existing objects must be equivalent. WR_OK, or WR_ESYNTAX /
 * WR_EEXIST... with one line saying what failed in err.
 */
int wr_definitions_import(const wr_mgmt_env_t *env, const json_t *defs, wr_vhost_t *only, char *err,
                          size_t errlen);
/*
 * Cluster mode: the document checked as wr_definitions_import checks it, as
 * the metadata group's commands that import it, in the order a single node
 * applies it (users, vhosts, policies, exchanges, queues with this node as
 * their home, bindings, permissions; only the middle four into `only`). NULL
 * with one line saying what is wrong in err.
 */
json_t *wr_definitions_commands(const wr_mgmt_env_t *env, const json_t *defs, const wr_vhost_t *only,
                                char *err, size_t errlen);
/* Whether `path` holds a definitions document warren can import (for
 * --check-config). WR_OK or an error with the reason in err. */
int wr_definitions_check_file(const char *path, char *err, size_t errlen);
/* Imports the configuration's load_definitions file, if any. WR_OK, or an
 * error (logged). */
int wr_definitions_load(const wr_mgmt_env_t *env);

#endif
