/* SPDX-License-Identifier: MIT */
/*
 * /api/policies: listing, showing, setting and clearing policies
 * (broker/policy.h) with RabbitMQ's statuses, permissions (policymaker or
 * administrator to show or change one) and error bodies, validation
 * failures included. In cluster mode a change goes through the metadata
 * group (mgmt_meta.h).
 */
#include "broker/mgmt/mgmt_policies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/meta_cmd.h"
#include "broker/mgmt/mgmt_meta.h"
#include "broker/vhost/policy.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"

typedef struct {
    const wr_mgmt_req_t *r;
    json_t *arr;
} list_ctx_t;

static void add_policy(void *ud, const wr_policy_t *p)
{
    list_ctx_t *x = ud;
    const wr_vhost_t *vh = wr_map_get(x->r->env->vhosts, wr_bytes_str(p->vhost));

    if (vh && wr_mgmt_may_use(x->r, vh))
        json_array_append_new(x->arr, wr_policy_to_json(p));
}

/* RabbitMQ's validation failure: its reason HTML-escaped ("<<\"a\">>" is
 * shown as "&lt;&lt;\"a\"&gt;&gt;"). */
static void validation_failed(wr_mgmt_req_t *r, const char *why)
{
    char out[1024];
    size_t n = 0;

    for (const char *p = why; *p && n + 6 < sizeof(out); p++) {
        const char *e = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : NULL;

        if (e) {
            memcpy(out + n, e, strlen(e));
            n += strlen(e);
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    wr_mgmt_error(r, 400, "bad_request", "Validation failed\n\n%s\n", out);
}

/* A mistyped field: `what` and the value as Erlang shows it (a string is
 * the binary <<"...">>, anything else its JSON). */
static void bad_field(wr_mgmt_req_t *r, const char *what, const json_t *v)
{
    char *shown = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char err[512];

    if (json_is_string(v))
        snprintf(err, sizeof(err), "%s<<%s>>", what, shown ? shown : "");
    else
        snprintf(err, sizeof(err), "%s%s", what, shown ? shown : "");
    free(shown);
    validation_failed(r, err);
}

/* Cluster mode: checked here, set by the metadata group. */
static void put_policy_cluster(wr_mgmt_req_t *r, const char *vhost, const char *name, const json_t *body)
{
    const json_t *apply = json_object_get(body, "apply-to"), *prio = json_object_get(body, "priority");
    char err[512];
    int rc;
    json_t *cmd =
        wr_mgmt_meta_policy_cmd(vhost, name, json_string_value(json_object_get(body, "pattern")),
                                apply ? json_string_value(apply) : NULL, prio ? json_integer_value(prio) : 0,
                                json_object_get(body, "definition"), err, sizeof(err), &rc);

    if (cmd)
        wr_mgmt_meta_propose(r, cmd, 0, NULL);
    else if (rc == WR_ESYNTAX)
        validation_failed(r, err);
    else
        wr_mgmt_error(r, 500, "internal_error", "%s", err);
}

/* PUT /api/policies/VHOST/NAME: "pattern" and "definition" required,
 * "priority" (an integer, default 0) and "apply-to" (default "all")
 * optional. 201 for a new policy, 204 for a replaced one. */
static void put_policy(wr_mgmt_req_t *r, const char *vhost, const char *name)
{
    json_t *body = wr_mgmt_body(r);
    const json_t *pattern, *def, *prio, *apply;
    char err[512];
    bool created;
    int rc;

    if (!body)
        return;
    pattern = json_object_get(body, "pattern");
    def = json_object_get(body, "definition");
    prio = json_object_get(body, "priority");
    apply = json_object_get(body, "apply-to");
    if (!pattern || !def) {
        wr_mgmt_error(r, 400, "bad_request", "[%s%s%s]", pattern ? "" : "{key_missing,pattern}",
                      !pattern && !def ? "," : "", def ? "" : "{key_missing,definition}");
        goto out;
    }
    if (!json_is_string(pattern))
        bad_field(r, "pattern should be a binary but was ", pattern);
    else if (apply && !json_is_string(apply))
        bad_field(r, "apply-to should be a binary but was ", apply);
    else if (prio && !json_is_integer(prio))
        bad_field(r, "priority should be a number, actually was ", prio);
    if (r->replied)
        goto out;
    if (wr_mgmt_meta(r)) {
        put_policy_cluster(r, vhost, name, body);
        goto out;
    }
    created = wr_policy_get(r->env->policies, vhost, name) == NULL;
    rc = wr_policy_put(r->env->policies, vhost, name, json_string_value(pattern),
                       apply ? json_string_value(apply) : NULL, prio ? json_integer_value(prio) : 0, def, err,
                       sizeof(err));
    if (rc == WR_OK)
        wr_mgmt_reply(r, created ? 201 : 204, NULL);
    else if (rc == WR_ESYNTAX)
        validation_failed(r, err);
    else if (rc == WR_ENOENT)
        wr_mgmt_error(r, 404, "not_found", "vhost_not_found");
    else
        wr_mgmt_error(r, 500, "internal_error", "%s", err);
out:
    json_decref(body);
}

/* /api/policies/VHOST/NAME */
static void policy_one(wr_mgmt_req_t *r)
{
    const char *vhost = r->seg[1], *name = r->seg[2];
    const wr_policy_t *p;

    if (r->method != WR_MGMT_GET && r->method != WR_MGMT_PUT && r->method != WR_MGMT_DELETE) {
        wr_mgmt_not_allowed(r, "GET, PUT, DELETE");
        return;
    }
    if (!wr_mgmt_has_tag(r->account, "policymaker") && !wr_mgmt_has_tag(r->account, "administrator")) {
        wr_mgmt_error(r, 401, "not_authorised", "User not authorised to access object");
        return;
    }
    if (r->method == WR_MGMT_PUT && !wr_map_get(r->env->vhosts, wr_bytes_str(vhost))) {
        wr_mgmt_error(r, 404, "not_found", "vhost_not_found");
        return;
    }
    if (!wr_mgmt_vhost(r, 1))
        return;
    if (r->method == WR_MGMT_PUT) {
        put_policy(r, vhost, name);
    } else if (r->method == WR_MGMT_DELETE && wr_mgmt_meta(r) &&
               wr_policy_get(r->env->policies, vhost, name)) {
        wr_mgmt_meta_propose(r, wr_meta_cmd_defs("policy.clear", vhost, json_pack("{s:s}", "name", name)),
                             204, NULL);
    } else if (r->method == WR_MGMT_DELETE) {
        if (wr_policy_delete(r->env->policies, vhost, name) == WR_OK)
            wr_mgmt_reply(r, 204, NULL);
        else
            wr_mgmt_not_found(r);
    } else if ((p = wr_policy_get(r->env->policies, vhost, name)) != NULL) {
        wr_mgmt_reply(r, 200, wr_policy_to_json(p));
    } else {
        wr_mgmt_not_found(r);
    }
}

void wr_mgmt_policies(wr_mgmt_req_t *r)
{
    list_ctx_t x = {r, NULL};
    const wr_vhost_t *vh = NULL;

    if (r->nseg == 3) {
        policy_one(r);
        return;
    }
    if (!wr_mgmt_get_only(r, r->nseg < 3))
        return;
    if (r->nseg == 2 && !(vh = wr_mgmt_vhost(r, 1)))
        return;
    x.arr = json_array();
    if (x.arr)
        wr_policy_foreach(r->env->policies, vh ? wr_vhost_name(vh) : NULL, add_policy, &x);
    wr_mgmt_reply(r, x.arr ? 200 : 500, x.arr);
}
