/* SPDX-License-Identifier: MIT */
/*
 * The management API's read-only lists of mgmt_lists.h. Warren has no
 * operator policies, topic permissions, vhost limits or global parameters,
 * so those lists are empty, as on a fresh RabbitMQ; user limits come from
 * the users database.
 */
#include "broker/mgmt/mgmt_lists.h"

#include <string.h>

/* [{"user": U, "value": {"max-connections": N}}] for each user with a
 * limit, or only for user (NULL: all). */
static json_t *user_limits(const wr_users_t *db, const char *user)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < db->nusers; i++) {
        const wr_user_cfg_t *u = &db->users[i];

        if (u->has_max_connections && (!user || strcmp(u->name, user) == 0))
            json_array_append_new(arr, json_pack("{s:s, s:{s:I}}", "user", u->name, "value",
                                                 "max-connections", (json_int_t)u->max_connections));
    }
    return arr;
}

/* One list: the tags that open it (the second may be NULL), and the most
 * path segments it takes. */
static const struct {
    const char *name;
    const char *tag, *or_tag;
    size_t max_segs;
} lists[] = {
    {"user-limits", "administrator", NULL, 2},       {"operator-policies", "policymaker", "administrator", 2},
    {"topic-permissions", "administrator", NULL, 1}, {"vhost-limits", "administrator", "monitoring", 2},
    {"global-parameters", "administrator", NULL, 1},
};

bool wr_mgmt_lists_route(wr_mgmt_req_t *r)
{
    size_t i = 0;

    while (i < sizeof(lists) / sizeof(lists[0]) && strcmp(r->seg[0], lists[i].name) != 0)
        i++;
    if (i == sizeof(lists) / sizeof(lists[0]))
        return false;
    if (r->nseg > lists[i].max_segs)
        wr_mgmt_not_found(r);
    else if (!wr_mgmt_has_tag(r->account, lists[i].tag) &&
             !(lists[i].or_tag && wr_mgmt_has_tag(r->account, lists[i].or_tag)))
        wr_mgmt_error(r, 401, "not_authorised", "User not authorised to access object");
    else if (r->method != WR_MGMT_GET)
        wr_mgmt_not_allowed(r, "GET");
    else if (strcmp(lists[i].name, "user-limits") == 0)
        wr_mgmt_reply(r, 200, user_limits(&r->env->cfg->auth, r->nseg == 2 ? r->seg[1] : NULL));
    else if (r->nseg == 1 || wr_mgmt_vhost(r, 1)) /* else wr_mgmt_vhost answered */
        wr_mgmt_reply(r, 200, json_array());
    return true;
}
