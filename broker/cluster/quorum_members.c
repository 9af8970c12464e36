/* SPDX-License-Identifier: MIT */
/*
 * A quorum queue's members (quorum.h, docs/QUORUM.md "Operating quorum
 * queues"): the list its record gives, in leadership order, and what the
 * group's leader does about it: it adds each joining member (a learner,
 * promoted once caught up) and removes each leaving one, one change at a
 * time, and reports each change made so the record can say so.
 */
#include "broker/cluster/quorum_internal.h"

#include <stdlib.h>
#include <string.h>

#include "broker/base/log.h"
#include "core/status.h"

/* A Raft membership change under way, for the node named. */
typedef struct {
    qq_t *q; /* a reference */
    bool add;
    char node[];
} change_t;

void wr_quorum_set_reporter(wr_quorum_t *qs, wr_quorum_report_fn fn, void *ud)
{
    qs->report = fn;
    qs->report_ud = ud;
}

void wr_qq_members_free(qq_t *q)
{
    for (size_t i = 0; i < q->nmembers; i++)
        free(q->members[i]);
    free(q->members);
    free(q->roles);
    q->members = NULL;
    q->roles = NULL;
    q->nmembers = 0;
}

static void strings_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

bool wr_quorum_queue_set_members(wr_queue_t *h, const char *const *members, const uint8_t *roles, size_t n)
{
    qq_t *q = wr_list_entry(h, qq_t, h);
    char **ms;
    uint8_t *rs;
    bool ok;

    if (h->type != &wr_quorum_queue_type || n == 0)
        return true;
    ms = calloc(n, sizeof(*ms));
    rs = malloc(n);
    ok = ms != NULL && rs != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = (ms[i] = strdup(members[i])) != NULL;
    if (!ok) {
        strings_free(ms, n);
        free(rs);
        return false;
    }
    memcpy(rs, roles, n);
    /* A new first member: leadership goes there at the next tick. */
    if (q->nmembers == 0 || strcmp(q->members[0], ms[0]) != 0)
        q->next_transfer = 0;
    wr_qq_members_free(q);
    q->members = ms;
    q->roles = rs;
    q->nmembers = n;
    return true;
}

size_t wr_qq_first_voters(const qq_t *q, const char **out)
{
    size_t k = 0;

    for (size_t i = 0; i < q->nmembers; i++)
        if (q->roles == NULL || q->roles[i] != WR_QUORUM_JOINING)
            out[k++] = q->members[i];
    return k;
}

/* A change made: the record follows. A removed member's consumers move to a
 * proxy (other owners): DOWN for its owners returns what they held. */
static void report(qq_t *q, const char *node, bool removed)
{
    if (removed)
        wr_qq_sweep(q, wr_raftd_node_id(node));
    if (q->s != NULL && q->s->report != NULL)
        q->s->report(q->s->report_ud, q->vhost, q->h.name, node);
}

static void on_changed(void *ud, int status, uint64_t index)
{
    change_t *c = ud;
    qq_t *q = c->q;

    q->changing = false;
    if (status == WR_OK && !q->h.closed)
        report(q, c->node, !c->add);
    else if (status != WR_OK && !q->h.closed)
        wr_log_warn("quorum queue '%.*s' in vhost '%s': %s %s did not complete (%d); it is tried again",
                    (int)q->h.name.len, (const char *)q->h.name.data, q->vhost,
                    c->add ? "adding" : "removing", c->node, status);
    wr_queue_unref(&q->h);
    free(c);
}

static void change_start(qq_t *q, const char *node, bool add)
{
    size_t len = strlen(node) + 1;
    change_t *c = malloc(sizeof(*c) + len);
    int rc;

    if (c == NULL)
        return;
    c->q = q;
    c->add = add;
    memcpy(c->node, node, len);
    wr_queue_ref(&q->h);
    q->changing = true;
    rc = add ? wr_rgroup_add_member(q->g, node, on_changed, c)
             : wr_rgroup_remove_member(q->g, node, on_changed, c);
    if (rc != WR_OK) {
        q->changing = false;
        wr_queue_unref(&q->h);
        free(c);
        wr_log_warn("quorum queue '%.*s' in vhost '%s': cannot %s member %s (%d)", (int)q->h.name.len,
                    (const char *)q->h.name.data, q->vhost, add ? "add" : "remove", node, rc);
        return;
    }
    wr_log_info("quorum queue '%.*s' in vhost '%s': %s member %s", (int)q->h.name.len,
                (const char *)q->h.name.data, q->vhost, add ? "adding" : "removing", node);
}

/* A leader that is to leave hands leadership to a voter that stays; that one removes it. */
static void hand_over(qq_t *q)
{
    for (size_t i = 0; i < q->nmembers; i++) {
        const char *to = q->members[i];

        if (q->roles[i] == WR_QUORUM_VOTER && strcmp(to, q->s->d.self) != 0 &&
            wr_peer_up(q->s->d.links, to) && wr_rgroup_transfer(q->g, to) == WR_OK)
            return;
    }
}

static int status_find(const wr_rgroup_status_t *st, const char *node)
{
    for (size_t i = 0; i < st->n_members; i++)
        if (strcmp(st->members[i], node) == 0)
            return (int)i;
    return -1;
}

void wr_qq_members_tick(qq_t *q)
{
    wr_rgroup_status_t st;

    if (!q->leader || q->g == NULL || q->s == NULL || q->changing || q->roles == NULL)
        return;
    wr_rgroup_status(q->g, &st);
    for (size_t i = 0; i < q->nmembers; i++) {
        const char *node = q->members[i];
        int at = status_find(&st, node);
        bool joining = q->roles[i] == WR_QUORUM_JOINING;

        if (q->roles[i] == WR_QUORUM_VOTER)
            continue;
        if (joining ? at >= 0 && st.voter[at] : at < 0) {
            report(q, node, !joining); /* made: the record follows (again, until it has) */
            continue;
        }
        if (!joining && strcmp(node, q->s->d.self) == 0)
            hand_over(q);
        else
            change_start(q, node, joining);
        return;
    }
}
