/* SPDX-License-Identifier: MIT */
/*
 * /api/vhosts: a vhost's settings (description, tags, default queue type,
 * tracing) are kept by the server in a vhost.declare entry
 * (broker/node/topo_state.h) and recorded in the node's store with the vhost;
 * a PUT replaces description, tags and tracing, and keeps the default queue
 * type unless it names one, as RabbitMQ 3.10 does, which also gives the user
 * creating a vhost every permission in it. Deleting a vhost takes its
 * queues with their messages, exchanges, policies and permissions, and closes
 * its connections (320 "vhost 'NAME' is deleted"). In cluster mode both go
 * through the metadata group (mgmt_meta.h). Vhost limits (/api/vhost-limits)
 * are kept in the settings' "limits", user limits (/api/user-limits) in the
 * users database, both set through the metadata group in cluster mode.
 */
#include "broker/mgmt/mgmt_vhosts.h"

#include <stdio.h>
#include <string.h>

#include "broker/cluster/meta_cmd.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/mgmt/mgmt_meta.h"
#include "broker/mgmt/mgmt_stats.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"

static json_t *vhost_json(const wr_mgmt_req_t *r, const wr_vhost_t *vh)
{
    const json_t *s = json_object_get(r->env->vhost_settings, wr_vhost_name(vh));
    const json_t *dqt = json_object_get(s, "default_queue_type");
    const char *desc = json_string_value(json_object_get(s, "description"));
    json_t *tags = json_object_get(s, "tags"), *meta, *obj;
    wr_mgmt_counts_t c;
    wr_mgmt_rates_t rt;

    wr_mgmt_stats_vhost_counts(vh, &c);
    wr_mgmt_stats_vhost_rates(r->stats, vh, &rt);
    meta = json_pack("{s:s, s:o}", "description", desc ? desc : "", "tags",
                     tags ? json_copy(tags) : json_array());
    if (meta && dqt)
        json_object_set(meta, "default_queue_type", (json_t *)dqt);
    obj = json_pack("{s:s, s:s, s:o, s:b, s:s, s:o, s:{s:s}, s:o}", "name", wr_vhost_name(vh), "description",
                    desc ? desc : "", "tags", tags ? json_copy(tags) : json_array(), "tracing",
                    json_is_true(json_object_get(s, "tracing")), "default_queue_type",
                    dqt ? json_string_value(dqt) : "classic", "metadata", meta, "cluster_state", r->node,
                    "running", "message_stats", wr_mgmt_json_message_stats(&c, &rt));
    if (obj)
        wr_mgmt_json_set_totals(obj, &c, &rt);
    return obj;
}

/* "tracing": a boolean, or "true"/"false" as RabbitMQ's parse_bool takes it. */
static int parse_bool(const json_t *v, bool *out)
{
    const char *s = json_string_value(v);

    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
        *out = strcmp(s, "true") == 0;
    else
        return WR_ESYNTAX;
    return WR_OK;
}

/* The settings a PUT body asks for (old: the vhost's settings, or NULL);
 * NULL after replying 400. */
static json_t *settings_from(wr_mgmt_req_t *r, const json_t *body, const json_t *old)
{
    static const char *const types[] = {"classic", "quorum", "stream"};
    const json_t *desc = json_object_get(body, "description"),
                 *dqt = json_object_get(body, "default_queue_type");
    json_t *tags = wr_mgmt_json_tags(json_object_get(body, "tags"));
    bool tracing = false, known = false;

    if (!dqt)
        dqt = json_object_get(body, "defaultqueuetype");
    if (!dqt && old)
        dqt = json_object_get(old, "default_queue_type");
    for (size_t i = 0; dqt && i < sizeof(types) / sizeof(types[0]); i++)
        known |= json_is_string(dqt) && strcmp(json_string_value(dqt), types[i]) == 0;
    if (desc && !json_is_string(desc))
        wr_mgmt_error(r, 400, "bad_request", "description must be a string");
    else if (!tags)
        wr_mgmt_error(r, 400, "bad_request", "tags must be a list of strings or a comma-separated string");
    else if (json_object_get(body, "tracing") &&
             parse_bool(json_object_get(body, "tracing"), &tracing) != WR_OK)
        wr_mgmt_error(r, 400, "bad_request", "tracing must be a boolean");
    else if (dqt && !known)
        wr_mgmt_error(r, 400, "bad_request", "default queue type must be classic, quorum or stream");
    else
        return json_pack("{s:s, s:o, s:b, s:O*, s:O*}", "description", desc ? json_string_value(desc) : "",
                         "tags", tags, "tracing", tracing, "default_queue_type", dqt, "limits",
                         json_object_get(old, "limits"));
    json_decref(tags);
    return NULL;
}

static void put_vhost(wr_mgmt_req_t *r, const char *name)
{
    static const char *const all[WR_PERM_KINDS] = {".*", ".*", ".*"};
    json_t *body = wr_mgmt_body(r), *settings;
    char why[300];
    bool created;
    int rc;

    if (!body)
        return;
    settings = settings_from(r, body, json_object_get(r->env->vhost_settings, name));
    json_decref(body);
    if (!settings)
        return;
    if (wr_mgmt_meta(r)) {
        wr_mgmt_meta_propose(r,
                             wr_meta_cmd_defs("vhost.add", name,
                                              json_pack("{s:o,s:s}", "settings", settings, "grant", r->user)),
                             0, NULL);
        return;
    }
    rc = r->env->vhost_add(r->env->ud, name, settings);
    json_decref(settings);
    /* RabbitMQ gives the user who creates a vhost every permission in it. */
    if (rc == WR_OK)
        rc = wr_users_put_permission(&r->env->cfg->auth, r->user, name, all, &created, why, sizeof(why));
    if (rc == WR_OK || rc == WR_EEXIST)
        wr_mgmt_reply(r, rc == WR_OK ? 201 : 204, NULL);
    else
        wr_mgmt_error(r, 500, "internal_error", "out of memory creating vhost '%s'", name);
}

static void delete_vhost(wr_mgmt_req_t *r, const char *name)
{
    int rc;

    if (wr_mgmt_meta(r) && wr_map_get(r->env->vhosts, wr_bytes_str(name))) {
        wr_mgmt_meta_propose(r, wr_meta_cmd_defs("vhost.delete", name, json_object()), 204, NULL);
        return;
    }
    rc = r->env->vhost_delete(r->env->ud, name);

    if (rc == WR_ENOENT)
        wr_mgmt_not_found(r);
    else if (rc != WR_OK)
        wr_mgmt_error(r, 500, "internal_error", "out of memory deleting vhost '%s'", name);
    else
        wr_mgmt_reply(r, 204, NULL);
}

static void vhost_one(wr_mgmt_req_t *r)
{
    const wr_vhost_t *vh;

    if (r->method == WR_MGMT_GET) {
        if ((vh = wr_mgmt_vhost(r, 1)))
            wr_mgmt_reply(r, 200, vhost_json(r, vh));
        return;
    }
    if (r->method != WR_MGMT_PUT && r->method != WR_MGMT_DELETE) {
        wr_mgmt_not_allowed(r, "HEAD, GET, PUT, DELETE, OPTIONS");
        return;
    }
    if (!wr_mgmt_has_tag(r->account, "administrator"))
        wr_mgmt_error(r, 401, "not_authorised", "Not administrator user");
    else if (r->method == WR_MGMT_PUT)
        put_vhost(r, r->seg[1]);
    else
        delete_vhost(r, r->seg[1]);
}

void wr_mgmt_vhosts(wr_mgmt_req_t *r)
{
    static const char *const order[] = {"name", NULL};
    wr_map_iter_t it = {0};
    void *vh;
    json_t *arr;

    if (r->nseg == 2) {
        vhost_one(r);
        return;
    }
    if (!wr_mgmt_get_only(r, r->nseg == 1))
        return;
    arr = json_array();
    while (wr_map_next(r->env->vhosts, &it, NULL, &vh)) {
        if (wr_mgmt_may_use(r, vh))
            json_array_append_new(arr, vhost_json(r, vh));
    }
    wr_mgmt_sort(arr, order, false);
    wr_mgmt_reply(r, 200, arr);
}

/* ---------------------------------------------------------------- limits */

static const char *const vhost_limit_names[2] = {"max-connections", "max-queues"};
static const char *const user_limit_names[2] = {"max-connections", "max-channels"};

/* The PUT body's "value" (an integer of -1 or more) or NULL for a DELETE;
 * false after replying 400 for a bad name or value. */
static bool limit_request(wr_mgmt_req_t *r, const char *kind, const char *const names[2], json_t **value)
{
    const char *name = r->seg[2];
    json_t *body;

    *value = NULL;
    if (strcmp(name, names[0]) != 0 && strcmp(name, names[1]) != 0) {
        wr_mgmt_error(r, 400, "bad_request", "unknown limit '%s': a %s limit is %s or %s", name, kind,
                      names[0], names[1]);
        return false;
    }
    if (r->method == WR_MGMT_DELETE)
        return true;
    if (!(body = wr_mgmt_body(r)))
        return false;
    *value = json_incref(json_object_get(body, "value"));
    json_decref(body);
    if (json_is_integer(*value) && json_integer_value(*value) >= -1)
        return true;
    json_decref(*value);
    wr_mgmt_error(r, 400, "bad_request", "%s: 'value' must be an integer, -1 (no limit) or more", name);
    return false;
}

/* The limits object with name set to value (NULL: cleared); NULL when left empty. */
static json_t *limits_with(const json_t *old, const char *name, json_t *value)
{
    json_t *l = old ? json_deep_copy(old) : json_object();

    if (value)
        json_object_set(l, name, value);
    else
        json_object_del(l, name);
    if (json_object_size(l) > 0)
        return l;
    json_decref(l);
    return NULL;
}

static void vhost_limit_change(wr_mgmt_req_t *r, const char *vhost)
{
    json_t *value, *settings;
    int rc;

    if (!limit_request(r, "vhost", vhost_limit_names, &value))
        return;
    if (wr_mgmt_meta(r)) {
        wr_mgmt_meta_propose(r,
                             wr_meta_cmd_defs("vhost.limit", vhost,
                                              json_pack("{s:s,s:o}", "limit", r->seg[2], "value",
                                                        value ? value : json_null())),
                             204, NULL);
        return;
    }
    settings = json_deep_copy(json_object_get(r->env->vhost_settings, vhost));
    json_object_del(settings, "limits");
    json_object_set_new(settings, "limits",
                        limits_with(json_object_get(json_object_get(r->env->vhost_settings, vhost), "limits"),
                                    r->seg[2], value));
    rc = r->env->vhost_add(r->env->ud, vhost, settings);
    json_decref(settings);
    json_decref(value);
    if (rc == WR_EEXIST)
        wr_mgmt_reply(r, 204, NULL);
    else
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
}

static json_t *vhost_limits_json(const wr_mgmt_req_t *r, const char *vhost)
{
    const json_t *l = json_object_get(json_object_get(r->env->vhost_settings, vhost), "limits");

    return l ? json_pack("{s:s,s:O}", "vhost", vhost, "value", l) : NULL;
}

/* GET of the lists (monitoring users too when `monitoring`), PUT and DELETE
 * of one limit by administrators; false after replying otherwise. */
static bool limits_allowed(wr_mgmt_req_t *r, bool monitoring)
{
    bool one = r->nseg == 3;

    if (r->nseg > 3)
        wr_mgmt_not_found(r);
    else if (one ? !(r->method == WR_MGMT_PUT || r->method == WR_MGMT_DELETE) : r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, one ? "PUT, DELETE" : "GET");
    else if (!wr_mgmt_has_tag(r->account, "administrator") &&
             (one || !monitoring || !wr_mgmt_has_tag(r->account, "monitoring")))
        wr_mgmt_error(r, 401, "not_authorised", "User not authorised to access object");
    else
        return true;
    return false;
}

void wr_mgmt_vhost_limits(wr_mgmt_req_t *r)
{
    wr_map_iter_t it = {0};
    json_t *arr;
    void *vh;

    if (!limits_allowed(r, true))
        return;
    if (r->nseg >= 2 && !wr_mgmt_vhost(r, 1))
        return; /* answered 404 */
    if (r->nseg == 3) {
        vhost_limit_change(r, r->seg[1]);
        return;
    }
    arr = json_array();
    while (wr_map_next(r->env->vhosts, &it, NULL, &vh)) {
        if (r->nseg == 1 || strcmp(wr_vhost_name(vh), r->seg[1]) == 0)
            json_array_append_new(arr, vhost_limits_json(r, wr_vhost_name(vh)));
    }
    wr_mgmt_reply(r, 200, arr);
}

static json_t *user_limits_json(const wr_user_cfg_t *u)
{
    json_t *v = json_object();

    if (u->has_max_connections)
        json_object_set_new(v, "max-connections", json_integer(u->max_connections));
    if (u->has_max_channels)
        json_object_set_new(v, "max-channels", json_integer(u->max_channels));
    if (json_object_size(v) > 0)
        return json_pack("{s:s,s:o}", "user", u->name, "value", v);
    json_decref(v);
    return NULL;
}

static void user_limit_change(wr_mgmt_req_t *r, const wr_user_cfg_t *u)
{
    bool conns = strcmp(r->seg[2], "max-connections") == 0;
    json_t *value;

    if (!limit_request(r, "user", user_limit_names, &value))
        return;
    if (wr_mgmt_meta(r)) {
        wr_mgmt_meta_propose(r,
                             wr_meta_cmd_defs("user.limit", "",
                                              json_pack("{s:s,s:s,s:o}", "user", u->name, "limit", r->seg[2],
                                                        "value", value ? value : json_null())),
                             204, NULL);
        return;
    }
    wr_users_set_limits(&r->env->cfg->auth, u->name, conns ? value != NULL : u->has_max_connections,
                        conns && value ? json_integer_value(value) : u->max_connections,
                        !conns ? value != NULL : u->has_max_channels,
                        !conns && value ? json_integer_value(value) : u->max_channels);
    json_decref(value);
    wr_mgmt_reply(r, 204, NULL);
}

void wr_mgmt_user_limits(wr_mgmt_req_t *r)
{
    const wr_users_t *db = &r->env->cfg->auth;
    const wr_user_cfg_t *u = NULL;
    json_t *arr;

    if (!limits_allowed(r, false))
        return;
    if (r->nseg >= 2 && !(u = wr_users_find(db, r->seg[1], strlen(r->seg[1])))) {
        wr_mgmt_not_found(r);
        return;
    }
    if (r->nseg == 3) {
        user_limit_change(r, u);
        return;
    }
    arr = json_array();
    for (size_t i = 0; arr && i < db->nusers; i++)
        if (!u || u == &db->users[i])
            json_array_append_new(arr, user_limits_json(&db->users[i]));
    wr_mgmt_reply(r, 200, arr);
}
