/* SPDX-License-Identifier: MIT */
/*
 * The management API's read-only lists of mgmt_lists.h. Warren has no
 * operator policies, topic permissions or global parameters, so those lists
 * are empty, as on a fresh RabbitMQ (vhost and user limits: mgmt_vhosts.c).
 */
#include "broker/mgmt/mgmt_lists.h"

#include <string.h>

/* One list: the tags that open it (the second may be NULL), and the most
 * path segments it takes. */
static const struct {
    const char *name;
    const char *tag, *or_tag;
    size_t max_segs;
} lists[] = {
    {"operator-policies", "policymaker", "administrator", 2},
    {"topic-permissions", "administrator", NULL, 1},
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
    else if (r->nseg == 1 || wr_mgmt_vhost(r, 1)) /* else wr_mgmt_vhost answered */
        wr_mgmt_reply(r, 200, json_array());
    return true;
}
