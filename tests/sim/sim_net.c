/* SPDX-License-Identifier: MIT */
/*
 * The simulator's network: every message gets a delivery time; links can be
 * cut one way; messages are dropped, duplicated, delayed and so reordered.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static const char *msg_name(uint8_t t)
{
    static const char *const names[] = {"?",         "app",         "app-resp",     "vote",
                                        "vote-resp", "prevote",     "prevote-resp", "hb",
                                        "hb-resp",   "timeout-now", "snap",         "snap-resp"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static void push(sim_t *s, uint32_t group, const wr_raft_msg_t *m)
{
    sim_packet_t *p;

    if (s->n_net == s->cap_net) {
        s->cap_net = s->cap_net ? s->cap_net * 2 : 64;
        s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
        if (s->net == NULL)
            abort();
    }
    p = &s->net[s->n_net++];
    p->at = s->now + 1 + (uint64_t)sim_rand_int(s, s->max_delay);
    p->group = group;
    p->m = *m;
    p->entries = sim_entries_dup(m->entries, m->n_entries);
    p->m.entries = p->entries;
    p->data = NULL;
    if (m->type == WR_RAFT_MSG_SNAP && m->len > 0) {
        if ((p->data = malloc(m->len)) == NULL)
            abort();
        memcpy(p->data, m->data, m->len);
        /* A chunk damaged on the way (its CRC field intact): the receiver must refuse it. */
        if (!s->heal && sim_chance(s, s->corrupt_pm))
            p->data[sim_rand_int(s, (int)m->len)] ^= (uint8_t)(1u << sim_rand_int(s, 8));
    }
    p->m.data = p->data;
}

void sim_net_send(sim_t *s, uint32_t group, const wr_raft_msg_t *m)
{
    if (!s->link[m->from][m->to] || (!s->heal && sim_chance(s, s->drop_pm))) {
        if (s->o.trace)
            sim_trace(s, "g%u %s n%u->n%u t%llu dropped", group, msg_name(m->type), m->from, m->to,
                      (unsigned long long)m->term);
        return;
    }
    push(s, group, m);
    if (!s->heal && sim_chance(s, s->dup_pm))
        push(s, group, m);
}

static void deliver(sim_t *s, sim_packet_t *p)
{
    sim_node_t *n = &s->nodes[p->m.to];

    if (s->o.trace)
        sim_trace(s, "g%u %s n%u->n%u t%llu i%llu lt%llu c%llu n%zu o%llu%s", p->group, msg_name(p->m.type),
                  p->m.from, p->m.to, (unsigned long long)p->m.term, (unsigned long long)p->m.index,
                  (unsigned long long)p->m.log_term, (unsigned long long)p->m.commit, p->m.n_entries,
                  (unsigned long long)p->m.offset, p->m.reject ? " reject" : "");
    if (!n->up)
        return;
    n->g[p->group].heard[p->m.from] = s->now;
    if (wr_raft_step(n->g[p->group].raft, &p->m) != WR_OK)
        abort();
    s->delivered++;
}

size_t sim_net_deliver(sim_t *s)
{
    size_t k = 0, done = 0;
    size_t n = s->n_net;

    /* Messages sent while delivering land past n and wait for a later step. */
    for (size_t i = 0; i < n; i++) {
        sim_packet_t p = s->net[i];
        if (p.at > s->now) {
            s->net[k++] = p;
            continue;
        }
        deliver(s, &p);
        sim_entries_free(p.entries, p.m.n_entries);
        free(p.data);
        done++;
    }
    for (size_t i = n; i < s->n_net; i++)
        s->net[k++] = s->net[i];
    s->n_net = k;
    return done;
}

void sim_net_clear(sim_t *s)
{
    for (size_t i = 0; i < s->n_net; i++) {
        sim_entries_free(s->net[i].entries, s->net[i].m.n_entries);
        free(s->net[i].data);
    }
    free(s->net);
    s->net = NULL;
    s->n_net = s->cap_net = 0;
}
