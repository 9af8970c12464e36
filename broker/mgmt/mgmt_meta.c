/* SPDX-License-Identifier: MIT */
/*
 * Management API writes through the metadata group (see mgmt_meta.h). The
 * request's own wr_mgmt_req_t lives on on_request's stack, so the wait keeps
 * a copy of the fields a reply uses (the evhttp request and the method).
 */
#include "broker/mgmt/mgmt_meta.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/meta_cmd.h"
#include "broker/mgmt/mgmt_json.h"
#include "broker/vhost/policy.h"
#include "core/base64.h"
#include "core/status.h"
#include "protocol/constants.h"

typedef struct {
    wr_mgmt_req_t r; /* mgmt, req and method only */
    wr_meta_op_t *op;
    int ok_status; /* 0: 201 when the change created something, else 204 */
    char *location;
    json_t *rest; /* the commands still to propose, in order (a sequence) */
    size_t next;
} wait_t;

struct wr_meta_s *wr_mgmt_meta(const wr_mgmt_req_t *r)
{
    return r->env->meta;
}

static void wait_free(wait_t *w)
{
    json_decref(w->rest);
    free(w->location);
    free(w);
}

/* The client left first: its request is gone. */
static void on_closed(void *arg)
{
    wait_t *w = arg;

    wr_meta_cancel(w->op);
    wait_free(w);
}

static void on_result(void *ud, const wr_meta_result_t *res);

/* Proposes the sequence's next command; false (replied) when it cannot. */
static bool submit_next(wait_t *w)
{
    json_t *cmd = json_incref(json_array_get(w->rest, w->next++));

    w->op = wr_meta_submit(wr_mgmt_meta(&w->r), cmd, on_result, w);
    if (w->op != NULL)
        return true;
    wr_mgmt_watch(&w->r, NULL, NULL);
    wr_mgmt_error(&w->r, 500, "internal_error", "out of memory");
    wait_free(w);
    return false;
}

static void on_result(void *ud, const wr_meta_result_t *res)
{
    wait_t *w = ud;

    if (res->err.code == 0 && w->next < json_array_size(w->rest)) {
        submit_next(w);
        return;
    }
    wr_mgmt_watch(&w->r, NULL, NULL);
    if (res->err.code != 0) {
        wr_mgmt_command_error(&w->r, &res->err);
    } else {
        if (w->location != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(w->r.req), "Location", w->location);
        wr_mgmt_reply(&w->r, w->ok_status != 0 ? w->ok_status : res->created ? 201 : 204, NULL);
    }
    wait_free(w);
}

void wr_mgmt_meta_propose_all(wr_mgmt_req_t *r, json_t *cmds, int ok_status)
{
    wait_t *w = calloc(1, sizeof(*w));

    if (w == NULL || !json_is_array(cmds)) {
        json_decref(cmds);
        free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    if (json_array_size(cmds) == 0) {
        json_decref(cmds);
        free(w);
        wr_mgmt_reply(r, ok_status, NULL);
        return;
    }
    w->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    w->ok_status = ok_status;
    w->rest = cmds;
    r->replied = true;
    wr_mgmt_watch(r, on_closed, w);
    submit_next(w);
}

void wr_mgmt_meta_propose(wr_mgmt_req_t *r, json_t *cmd, int ok_status, const char *location)
{
    wait_t *w = calloc(1, sizeof(*w));

    if (w == NULL || (location != NULL && (w->location = strdup(location)) == NULL)) {
        json_decref(cmd);
        free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    w->r = (wr_mgmt_req_t){.mgmt = r->mgmt, .env = r->env, .req = r->req, .method = r->method};
    w->ok_status = ok_status;
    w->op = wr_meta_submit(wr_mgmt_meta(r), cmd, on_result, w);
    if (w->op == NULL) {
        wait_free(w);
        wr_mgmt_error(r, 500, "internal_error", "out of memory");
        return;
    }
    r->replied = true;
    wr_mgmt_watch(r, on_closed, w);
}

/* ---------------------------------------------------------------- users */

/* The entry's "password_hash" and "hashing_algorithm" from a password
 * (hashed here: the command carries the hash, so every node stores the same
 * salt) or a given hash; neither: the user keeps its own. */
static int user_hash(json_t *e, const char *name, const json_t *obj, char *err, size_t errlen)
{
    const json_t *password = json_object_get(obj, "password"), *hash = json_object_get(obj, "password_hash");
    const json_t *alg_name = json_object_get(obj, "hashing_algorithm");
    uint8_t digest[WR_PASSWORD_HASH_MAX];
    char b64[WR_PASSWORD_HASH_MAX * 2];
    wr_hash_alg_t alg = WR_HASH_SHA256;
    size_t len = 0;

    if (alg_name &&
        (!json_is_string(alg_name) || !wr_auth_hash_alg_parse(json_string_value(alg_name), &alg))) {
        snprintf(err, errlen, "user '%s': unknown hashing_algorithm", name);
        return WR_ESYNTAX;
    }
    if (password && hash) {
        snprintf(err, errlen, "user '%s': give password or password_hash, not both", name);
        return WR_ESYNTAX;
    }
    if (password && !json_is_string(password)) {
        snprintf(err, errlen, "user '%s': password must be a string", name);
        return WR_ESYNTAX;
    }
    if (hash &&
        (!json_is_string(hash) || wr_auth_hash_decode(json_string_value(hash), alg, digest, &len) != WR_OK)) {
        snprintf(err, errlen, "user '%s': password_hash is not a base64 %s hash", name,
                 wr_mgmt_json_hash_alg_name(alg));
        return WR_ESYNTAX;
    }
    if (password) {
        alg = WR_HASH_SHA256;
        len = wr_auth_hash_password(
            alg, (wr_bytes_t){(const uint8_t *)json_string_value(password), json_string_length(password)},
            digest);
        if (len == 0) {
            snprintf(err, errlen, "user '%s': hashing the password failed", name);
            return WR_ENOMEM;
        }
    }
    if (!password && !hash)
        return WR_OK;
    wr_base64_encode(digest, len, b64);
    if (json_object_set_new(e, "password_hash", json_string(b64)) != 0 ||
        json_object_set_new(e, "hashing_algorithm", json_string(wr_mgmt_json_hash_alg_name(alg))) != 0)
        return WR_ENOMEM;
    return WR_OK;
}

json_t *wr_mgmt_meta_user_cmd(const char *name, const json_t *obj, char *err, size_t errlen, int *rc)
{
    json_t *tags = wr_mgmt_json_tags(json_object_get(obj, "tags")), *e;
    const json_t *max = json_object_get(json_object_get(obj, "limits"), "max-connections");

    *rc = WR_ESYNTAX;
    if (!json_is_object(obj) || name[0] == '\0') {
        snprintf(err, errlen, "user '%s': not an object with a name", name);
    } else if (tags == NULL) {
        snprintf(err, errlen, "user '%s': tags must be a list of strings or a comma-separated string", name);
    } else if ((e = json_pack("{s:s,s:O}", "name", name, "tags", tags)) == NULL) {
        snprintf(err, errlen, "user '%s': out of memory", name);
        *rc = WR_ENOMEM;
    } else if ((*rc = user_hash(e, name, obj, err, errlen)) == WR_OK &&
               (max == NULL ||
                json_object_set_new(e, "limits", json_pack("{s:O}", "max-connections", max)) == 0)) {
        json_decref(tags);
        return wr_meta_cmd_defs("user.put", "", e);
    } else {
        json_decref(e);
    }
    json_decref(tags);
    return NULL;
}

void wr_mgmt_meta_put_user(wr_mgmt_req_t *r, const char *name, const json_t *body)
{
    char err[300];
    int rc;
    json_t *cmd = wr_mgmt_meta_user_cmd(name, body, err, sizeof(err), &rc);

    if (cmd != NULL)
        wr_mgmt_meta_propose(r, cmd, 0, NULL);
    else
        wr_mgmt_error(r, rc == WR_ESYNTAX ? 400 : 500, rc == WR_ESYNTAX ? "bad_request" : "internal_error",
                      "%s", err);
}

/* ---------------------------------------------------------------- permissions */

json_t *wr_mgmt_meta_permission_cmd(const char *user, const char *vhost, const json_t *obj, char *err,
                                    size_t errlen)
{
    static const char *const kinds[WR_PERM_KINDS] = {"configure", "write", "read"};
    wr_permission_cfg_t perm = {0};

    for (int k = 0; k < WR_PERM_KINDS; k++) {
        perm.pattern[k] = (char *)json_string_value(json_object_get(obj, kinds[k]));
        if (!perm.pattern[k]) {
            snprintf(err, errlen, "permission of '%s' in vhost '%s': %s must be a string", user, vhost,
                     kinds[k]);
            return NULL;
        }
    }
    if (wr_users_permission_compile(&perm, err, errlen) != WR_OK)
        return NULL;
    for (int k = 0; k < WR_PERM_KINDS; k++)
        regfree(&perm.re[k]);
    return wr_meta_cmd_defs("permission.set", vhost,
                            json_pack("{s:s,s:s,s:s,s:s}", "user", user, kinds[0], perm.pattern[0], kinds[1],
                                      perm.pattern[1], kinds[2], perm.pattern[2]));
}

void wr_mgmt_meta_put_permission(wr_mgmt_req_t *r, const char *user, const char *vhost, const json_t *body)
{
    char err[300] = "out of memory";
    json_t *cmd = wr_mgmt_meta_permission_cmd(user, vhost, body, err, sizeof(err));

    if (cmd != NULL)
        wr_mgmt_meta_propose(r, cmd, 0, NULL);
    else
        wr_mgmt_error(r, 400, "bad_request", "%s", err);
}

/* ---------------------------------------------------------------- policies */

json_t *wr_mgmt_meta_policy_cmd(const char *vhost, const char *name, const char *pattern,
                                const char *apply_to, int64_t priority, const json_t *definition, char *err,
                                size_t errlen, int *rc)
{
    *rc = wr_policy_validate(pattern, apply_to, definition, err, errlen);
    if (*rc != WR_OK)
        return NULL;
    return wr_meta_cmd_defs("policy.set", vhost,
                            json_pack("{s:s,s:s,s:s,s:I,s:O}", "name", name, "pattern", pattern, "apply-to",
                                      apply_to != NULL ? apply_to : "all", "priority", (json_int_t)priority,
                                      "definition", definition));
}
