/* SPDX-License-Identifier: MIT */
/*
 * warren-sim: runs the real Raft core for N nodes and many groups against a
 * virtual clock, network and disk, injecting faults from one seed and checking
 * the safety invariants at every step (sim_check.c). A failing seed prints the
 * command that replays it and the tail of its trace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

#define TAIL_MAX 4096

uint64_t sim_rand(sim_t *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int sim_rand_int(sim_t *s, int n)
{
    return n <= 1 ? 0 : (int)(sim_rand(s) % (uint64_t)n);
}

bool sim_chance(sim_t *s, int per_mille)
{
    return per_mille > 0 && sim_rand_int(s, 1000) < per_mille;
}

void sim_trace(sim_t *s, const char *fmt, ...)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%8llu ", (unsigned long long)s->now);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->o.trace)
        puts(line);
    if (s->tail == NULL)
        return;
    free(s->tail[s->tail_pos % TAIL_MAX]);
    s->tail[s->tail_pos++ % TAIL_MAX] = strdup(line);
}

void sim_fail(sim_t *s, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    sim_trace(s, "FAIL %s", why);
    if (!s->failed)
        fprintf(stderr, "seed %llu: %s\n", (unsigned long long)s->o.seed, why);
    s->failed = true;
}

/* Link shapes: every partition the issue names, picked at random. */
static void links_all(sim_t *s, bool up)
{
    for (int a = 1; a <= s->o.nodes; a++)
        for (int b = 1; b <= s->o.nodes; b++)
            s->link[a][b] = up || a == b;
}

static void links_split(sim_t *s, const bool *side)
{
    for (int a = 1; a <= s->o.nodes; a++)
        for (int b = 1; b <= s->o.nodes; b++)
            s->link[a][b] = side[a] == side[b];
}

static void partition(sim_t *s)
{
    bool side[SIM_MAX_NODES + 1] = {false};
    int k = s->o.nodes, pick = sim_rand_int(s, 6), x = 1 + sim_rand_int(s, k), y = 1 + sim_rand_int(s, k);
    static const char *const shapes[] = {"heal", "halves", "isolate", "ring", "bridge", "one-way"};

    for (int i = 1; i <= k; i++)
        side[i] = sim_chance(s, 500);
    side[x] = pick == 2 ? true : side[x];
    for (int i = 1; i <= k && pick == 2; i++)
        side[i] = i == x;
    links_all(s, true);
    if (pick == 1 || pick == 2 || pick == 4)
        links_split(s, side);
    for (int i = 1; i <= k && pick == 3; i++)
        for (int j = 1; j <= k; j++)
            s->link[i][j] = i == j || (i % k) + 1 == j || (j % k) + 1 == i;
    for (int i = 1; i <= k && pick == 4; i++)
        s->link[x][i] = s->link[i][x] = true;
    if (pick == 5)
        s->link[x][y == x ? (x % k) + 1 : y] = false;
    sim_trace(s, "partition %s (x=n%d)", shapes[pick], x);
}

bool sim_propose(sim_t *s, int g, int id, const uint8_t *data, size_t len)
{
    uint8_t buf[1024];
    wr_raft_entry_t e = {.type = WR_RAFT_ENTRY_NORMAL, .data = buf, .len = (uint32_t)(8 + len)};
    sim_proposal_t *p;

    if (len > sizeof(buf) - 8)
        abort();
    memcpy(buf, &s->next_prop_id, sizeof(s->next_prop_id));
    memcpy(buf + 8, data, len);
    if (s->n_props == s->cap_props) {
        s->cap_props = s->cap_props ? s->cap_props * 2 : 64;
        s->props = realloc(s->props, s->cap_props * sizeof(*s->props));
        if (s->props == NULL)
            abort();
    }
    p = &s->props[s->n_props];
    if (wr_raft_propose(s->nodes[id].g[g].raft, buf, e.len, &p->term, &p->index) != WR_OK)
        return false;
    *p = (sim_proposal_t){s->next_prop_id++, p->term, p->index, g, id, sim_check_hash(&e), false};
    s->n_props++;
    if (s->o.trace)
        sim_trace(s, "n%d g%d propose %llu at %llu/%llu", id, g, (unsigned long long)p->id,
                  (unsigned long long)p->term, (unsigned long long)p->index);
    return true;
}

static void propose(sim_t *s)
{
    int g = sim_rand_int(s, s->o.groups), id = 1 + sim_rand_int(s, s->o.nodes);
    uint8_t buf[512] = {0};
    size_t len = (size_t)s->o.payload - 8;

    /* The client asks whoever it believes leads, as a real one would. */
    for (int i = 1; i <= s->o.nodes && sim_chance(s, 800); i++) {
        wr_raft_status_t st;
        if (s->nodes[i].up && (wr_raft_status(s->nodes[i].g[g].raft, &st), st.role == WR_RAFT_LEADER))
            id = i;
    }
    if (!s->nodes[id].up)
        return;
    if (s->o.topo)
        len = sim_topo_record(s, (char *)buf, sizeof(buf));
    sim_propose(s, g, id, buf, len);
}

static void crash(sim_t *s, sim_node_t *n)
{
    sim_node_crash(s, n);
    n->down_until = s->now + 20 + (uint64_t)sim_rand_int(s, 300);
    /* One node per run has the bad disk: a damaged majority cannot be recovered. */
    if (n->id == 1 + (int)(s->o.seed % (uint64_t)s->o.nodes) && sim_chance(s, 300)) {
        sim_node_flip(s, n);
    }
}

int sim_leader_of(sim_t *s, int g)
{
    for (int i = 1; i <= s->o.nodes; i++) {
        wr_raft_status_t st;
        if (!s->nodes[i].up)
            continue;
        wr_raft_status(s->nodes[i].g[g].raft, &st);
        if (st.role == WR_RAFT_LEADER)
            return i;
    }
    return 0;
}

/* Targeted: the leader of a random group dies, mid-replication. */
static void kill_leader(sim_t *s)
{
    int g = sim_rand_int(s, s->o.groups), l = sim_leader_of(s, g);

    if (l != 0) {
        sim_trace(s, "kill leader of g%d", g);
        crash(s, &s->nodes[l]);
    }
}

/* What to do with node x: add it, promote it once it caught up, or remove it. */
static int change_op(sim_t *s, int g, int x, const wr_raft_t *leader)
{
    wr_raft_conf_t c;
    wr_raft_status_t ls, xs;
    size_t voters = 0, at = WR_RAFT_MAX_PEERS;

    wr_raft_conf(leader, &c);
    for (size_t i = 0; i < c.n; i++) {
        voters += c.voter[i];
        at = c.id[i] == (uint32_t)x ? i : at;
    }
    if (at == WR_RAFT_MAX_PEERS)
        return WR_RAFT_ADD_LEARNER;
    if (c.voter[at])
        return voters > 3 ? WR_RAFT_REMOVE : -1;
    wr_raft_status(leader, &ls);
    if (!s->nodes[x].up)
        return sim_chance(s, 200) ? WR_RAFT_REMOVE : -1;
    wr_raft_status(s->nodes[x].g[g].raft, &xs);
    return xs.stable >= ls.commit ? WR_RAFT_PROMOTE : -1;
}

/* A single-server membership change of group g, asked of its leader l. */
static void change_group(sim_t *s, int g, int l)
{
    static const char *const ops[] = {"add learner", "promote", "remove"};
    int x = 1 + sim_rand_int(s, s->o.nodes), op = change_op(s, g, x, s->nodes[l].g[g].raft);
    uint64_t term = 0, index = 0;
    int rc;

    if (op < 0)
        return;
    rc = wr_raft_change(s->nodes[l].g[g].raft, (wr_raft_change_t)op, (uint32_t)x, &term, &index);
    sim_trace(s, "n%d g%d %s n%d: %d at %llu/%llu", l, g, ops[op], x, rc, (unsigned long long)term,
              (unsigned long long)index);
    if (rc == WR_OK)
        sim_node_drive(s, &s->nodes[l]);
}

static void change(sim_t *s)
{
    int g = sim_rand_int(s, s->o.groups), l = sim_leader_of(s, g);

    if (l != 0)
        change_group(s, g, l);
}

/* A new leader is often asked at once, before it committed in its term. */
static void change_eager(sim_t *s)
{
    for (int i = 1; i <= s->o.nodes; i++) {
        for (int g = 0; g < s->o.groups && s->nodes[i].up; g++) {
            sim_member_t *m = &s->nodes[i].g[g];
            wr_raft_status_t st;
            wr_raft_status(m->raft, &st);
            if (st.role != WR_RAFT_LEADER || m->change_term == st.term)
                continue;
            m->change_term = st.term;
            if (sim_chance(s, 300))
                change_group(s, g, i);
        }
    }
}

/* A leadership transfer to a random other member, mid-traffic. */
static void transfer(sim_t *s)
{
    int g = sim_rand_int(s, s->o.groups), to = 1 + sim_rand_int(s, s->o.nodes);

    for (int i = 1; i <= s->o.nodes; i++) {
        wr_raft_status_t st;
        if (!s->nodes[i].up || i == to)
            continue;
        wr_raft_status(s->nodes[i].g[g].raft, &st);
        if (st.role == WR_RAFT_LEADER && wr_raft_transfer(s->nodes[i].g[g].raft, (uint32_t)to) == WR_OK) {
            sim_trace(s, "n%d g%d transfers leadership to n%d", i, g, to);
            sim_node_drive(s, &s->nodes[i]);
        }
    }
}

/* A node whose WAL failed (a sync failure) crashes even while healing: it comes back too. */
static void restart_due(sim_t *s)
{
    for (int i = 1; i <= s->o.nodes; i++)
        if (!s->nodes[i].up && s->now >= s->nodes[i].down_until)
            sim_node_start(s, &s->nodes[i]);
}

static void faults(sim_t *s)
{
    if (s->heal) {
        restart_due(s);
        return;
    }
    if (sim_chance(s, s->transfer_pm))
        transfer(s);
    if (sim_chance(s, s->change_pm))
        change(s);
    if (s->change_pm > 0)
        change_eager(s);
    if (sim_chance(s, s->partition_pm))
        partition(s);
    if (sim_chance(s, s->kill_leader_pm))
        kill_leader(s);
    for (int i = 1; i <= s->o.nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (!n->up && s->now >= n->down_until)
            sim_node_start(s, n);
        else if (n->up && sim_chance(s, s->crash_pm))
            crash(s, n);
    }
}

static void run_node(sim_t *s, sim_node_t *n)
{
    if (!n->up)
        return;
    if (n->sync_done != 0 && s->now >= n->sync_done)
        sim_node_sync_done(s, n);
    sim_node_disk_step(s, n);
    if (!n->up)
        return;
    if (n->next_sync != 0 && n->sync_done == 0 && s->now >= n->next_sync)
        sim_node_sync_start(s, n);
    if (s->now >= n->next_tick) {
        n->next_tick = s->now + (uint64_t)n->tick_period;
        for (int g = 0; g < s->o.groups; g++)
            if (wr_raft_tick(n->g[g].raft) != WR_OK)
                abort();
    }
    sim_node_drive(s, n);
}

static void step(sim_t *s)
{
    s->now++;
    if (s->o.faults)
        faults(s);
    sim_net_deliver(s);
    for (int i = 1; i <= s->o.nodes; i++)
        run_node(s, &s->nodes[i]);
    if (s->o.qfifo)
        sim_qfifo_step(s);
    else if (!s->heal && sim_rand_int(s, s->o.steps) < s->o.proposals * s->o.groups)
        propose(s);
    sim_check_step(s);
}

static void heal(sim_t *s)
{
    s->heal = true;
    links_all(s, true);
    /* A disk slower than the election timeout starves elections: heal it too. */
    s->sync_max = 2;
    s->sync_fail_pm = 0; /* a failed sync crashes its node, and nothing restarts it now */
    s->max_delay = s->max_delay < 5 ? s->max_delay : 5;
    sim_trace(s, "heal: all links up, every node restarts");
    for (int i = 1; i <= s->o.nodes; i++)
        if (!s->nodes[i].up)
            sim_node_start(s, &s->nodes[i]);
}

/* Snapshots: how often the state machine takes one, chunk size, the log kept behind it. */
static void draw_snapshots(sim_t *s)
{
    static const int snap[] = {0, 3, 10, 40}, chunk[] = {16, 64, 256, 4096}, trailing[] = {0, 2, 8, 64};

    s->snap_pm = snap[sim_rand_int(s, 4)];
    s->chunk = chunk[sim_rand_int(s, 4)];
    s->trailing = trailing[sim_rand_int(s, 4)];
    s->corrupt_pm = sim_rand_int(s, 2) * 20;
}

/* Payloads the cores drop (read back from the disk to send and apply): by the seed, not the run's PRNG,
 * so every seed keeps the faults it always drew. 0 keeps them all, 1 drops nearly all. */
static void draw_payload_window(sim_t *s)
{
    static const unsigned window[] = {1, 4, 0, 16};

    s->payload_window =
        s->o.payload_window >= 0 ? (unsigned)s->o.payload_window : window[(s->o.seed / 3) % 4];
}

/* Each seed draws its own fault profile, from gentle to brutal. */
static void draw_profile(sim_t *s)
{
    static const int crash[] = {0, 1, 3, 8}, part[] = {0, 2, 5, 15}, sync[] = {2, 10, 60};
    static const unsigned batch[] = {1, 2, 4, 16}, inflight[] = {1, 2, 4, 8};
    static const int change[] = {0, 5, 20};

    s->max_batch = batch[sim_rand_int(s, 4)];
    s->max_inflight = inflight[sim_rand_int(s, 4)];
    s->voters0 = s->o.nodes;
    if (!s->o.faults) {
        s->chunk = 4096;
        s->max_delay = 1;
        s->sync_max = 2;
        s->max_batch = 64;
        s->max_inflight = 8;
        s->writebehind_pm = 100;
        return;
    }
    s->drop_pm = sim_rand_int(s, 150);
    s->dup_pm = sim_rand_int(s, 60);
    s->max_delay = 1 + sim_rand_int(s, 30);
    s->crash_pm = crash[sim_rand_int(s, 4)];
    s->partition_pm = part[sim_rand_int(s, 4)];
    s->kill_leader_pm = sim_rand_int(s, 4);
    s->transfer_pm = sim_rand_int(s, 4);
    s->sync_max = sync[sim_rand_int(s, 3)];
    /* Membership changes: 5 and 7 nodes start with two spare nodes that may join. */
    s->change_pm = change[sim_rand_int(s, 3)];
    if (s->change_pm > 0 && s->o.nodes > 3)
        s->voters0 = s->o.nodes - 2;
    draw_snapshots(s);
    if (!s->o.wal)
        return; /* the toy disk's runs draw as on the toy disk alone, seed for seed */
    s->sync_fail_pm = sim_rand_int(s, 3) * 5;
    s->torn_pm = sim_rand_int(s, 3) * 500;
    s->writebehind_pm = 50 + sim_rand_int(s, 500);
}

static void setup(sim_t *s)
{
    s->rng = s->o.seed * 0x2545F4914F6CDD1Dull + 1;
    s->check = sim_check_new(s);
    if (s->o.topo && ((s->topo_seen = calloc((size_t)s->o.groups, sizeof(*s->topo_seen))) == NULL ||
                      (s->topo_n = calloc((size_t)s->o.groups, sizeof(*s->topo_n))) == NULL))
        abort();
    links_all(s, true);
    draw_profile(s);
    draw_payload_window(s);
    if (s->o.qfifo)
        sim_qfifo_new(s);
    sim_trace(
        s,
        "profile: drop %d dup %d delay %d crash %d partition %d kill-leader %d sync %d batch %u inflight %u "
        "change %d voters %d snapshot %d chunk %d trailing %d corrupt %d sync-fail %d torn %d write-behind "
        "%d payload-window %u",
        s->drop_pm, s->dup_pm, s->max_delay, s->crash_pm, s->partition_pm, s->kill_leader_pm, s->sync_max,
        s->max_batch, s->max_inflight, s->change_pm, s->voters0, s->snap_pm, s->chunk, s->trailing,
        s->corrupt_pm, s->sync_fail_pm, s->torn_pm, s->writebehind_pm, s->payload_window);
    for (int i = 1; i <= s->o.nodes; i++) {
        s->nodes[i].id = i;
        s->nodes[i].tick_period = s->o.faults ? 7 + sim_rand_int(s, 7) : 10;
        sim_node_start(s, &s->nodes[i]);
    }
}

static void teardown(sim_t *s)
{
    for (int i = 1; i <= s->o.nodes; i++)
        sim_node_free(s, &s->nodes[i]);
    sim_net_clear(s);
    sim_check_free(s->check);
    free(s->props);
    for (int g = 0; s->topo_seen != NULL && g < s->o.groups; g++)
        free(s->topo_seen[g]);
    free(s->topo_seen);
    free(s->topo_n);
    sim_qfifo_free(s);
}

static void print_failure(sim_t *s)
{
    const sim_opts_t *o = &s->o;
    size_t n = s->tail_pos < (size_t)o->trace_tail ? s->tail_pos : (size_t)o->trace_tail;

    fprintf(stderr, "--- last %zu trace lines\n", n);
    for (size_t i = s->tail_pos - n; i < s->tail_pos; i++)
        fprintf(stderr, "%s\n", s->tail[i % TAIL_MAX]);
    fprintf(stderr,
            "replay: build/tests/sim/warren-sim --seed %llu --nodes %d --groups %d --steps %d --disk %s%s%s "
            "--trace\n",
            (unsigned long long)o->seed, o->nodes, o->groups, o->steps, o->wal ? "wal" : "toy",
            o->faults ? "" : " --no-faults",
            o->topo    ? " --sm topo"
            : o->qfifo ? " --sm qfifo"
                       : "");
}

static void dump(sim_t *s)
{
    static const char *const roles[] = {"follower", "pre-candidate", "candidate", "leader"};

    for (int g = 0; g < s->o.groups; g++) {
        for (int i = 1; i <= s->o.nodes; i++) {
            wr_raft_status_t st;
            wr_raft_status(s->nodes[i].g[g].raft, &st);
            sim_trace(s,
                      "n%d g%d %s term %llu leader n%u commit %llu applied %llu stable %llu last %llu/%llu "
                      "abstain %llu",
                      i, g, roles[st.role], (unsigned long long)st.term, st.leader,
                      (unsigned long long)st.commit, (unsigned long long)st.applied,
                      (unsigned long long)st.stable, (unsigned long long)st.last_term,
                      (unsigned long long)st.last_index, (unsigned long long)st.abstain);
        }
    }
}

/* Every acknowledged proposal everywhere and, with --sm qfifo, every message drained. */
static bool converged(sim_t *s)
{
    return sim_check_converged(s) && (!s->o.qfifo || sim_qfifo_drained(s));
}

/* One seed: the fault phase, then healing until every acknowledged proposal is everywhere. */
static bool run(const sim_opts_t *o, uint64_t *applied, uint64_t *snaps, sim_wal_stats_t *wal, uint64_t *qf,
                uint64_t *reads)
{
    sim_t *s = calloc(1, sizeof(*s));
    bool ok;

    if (s == NULL)
        abort();
    s->o = *o;
    s->tail = calloc(TAIL_MAX, sizeof(char *));
    setup(s);
    for (int i = 0; i < o->steps && !s->failed; i++)
        step(s);
    heal(s);
    for (int i = 0; i < o->heal_steps && !s->failed && !converged(s); i++)
        step(s);
    if (!s->failed && !converged(s)) {
        dump(s);
        if (o->qfifo)
            sim_qfifo_dump(s);
        sim_fail(s, "no convergence within %d steps of healing", o->heal_steps);
    }
    if (!s->failed)
        sim_check_final(s);
    if (!s->failed && o->qfifo)
        sim_qfifo_final(s);
    if (s->failed)
        print_failure(s);
    ok = !s->failed;
    *applied += s->applied_total;
    *reads += s->read_backs;
    for (int i = 0; i < 3; i++)
        snaps[i] += s->snap_stats[i];
    for (int i = 1; i <= o->nodes; i++)
        if (s->nodes[i].wal != NULL)
            sim_wal_stats_add(s->nodes[i].wal, wal);
    if (o->qfifo)
        sim_qfifo_stats_add(s, qf);
    teardown(s);
    for (size_t i = 0; i < TAIL_MAX; i++)
        free(s->tail[i]);
    free(s->tail);
    free(s);
    return ok;
}

static int usage(void)
{
    fprintf(stderr, "usage: warren-sim [--seed N] [--count N] [--nodes 3|5|7|0=by seed] [--groups N]\n"
                    "                  [--steps N] [--heal-steps N] [--proposals N] [--payload N]\n"
                    "                  [--tail K] [--trace] [--no-faults] [--disk wal|toy]\n"
                    "                  [--sm hash|topo|qfifo] [--payload-window N]\n");
    return 2;
}

static bool parse(int argc, char **argv, sim_opts_t *o, uint64_t *count)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--trace") == 0) {
            o->trace = true;
            continue;
        }
        if (strcmp(a, "--no-faults") == 0) {
            o->faults = false;
            continue;
        }
        if (v == NULL)
            return false;
        i++;
        if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--count") == 0)
            *count = strtoull(v, NULL, 10);
        else if (strcmp(a, "--nodes") == 0)
            o->nodes = atoi(v);
        else if (strcmp(a, "--groups") == 0)
            o->groups = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            o->steps = atoi(v);
        else if (strcmp(a, "--heal-steps") == 0)
            o->heal_steps = atoi(v);
        else if (strcmp(a, "--proposals") == 0)
            o->proposals = atoi(v);
        else if (strcmp(a, "--payload") == 0)
            o->payload = atoi(v);
        else if (strcmp(a, "--payload-window") == 0)
            o->payload_window = atoi(v);
        else if (strcmp(a, "--tail") == 0)
            o->trace_tail = atoi(v);
        else if (strcmp(a, "--disk") == 0 && (strcmp(v, "wal") == 0 || strcmp(v, "toy") == 0))
            o->wal = strcmp(v, "wal") == 0;
        else if (strcmp(a, "--sm") == 0 &&
                 (strcmp(v, "hash") == 0 || strcmp(v, "topo") == 0 || strcmp(v, "qfifo") == 0)) {
            o->topo = strcmp(v, "topo") == 0;
            o->qfifo = strcmp(v, "qfifo") == 0;
        } else {
            return false;
        }
    }
    return o->nodes >= 0 && o->nodes <= SIM_MAX_NODES && o->groups > 0 && o->steps > 0 && o->payload >= 8 &&
           o->payload <= 256 && o->trace_tail >= 0 && o->trace_tail <= TAIL_MAX && o->payload_window >= -1;
}

int main(int argc, char **argv)
{
    sim_opts_t o = {.nodes = 0,
                    .groups = 2,
                    .steps = 3000,
                    .heal_steps = 4000,
                    .faults = true,
                    .proposals = 100,
                    .payload = 16,
                    .trace_tail = 60,
                    .wal = true,
                    .payload_window = -1};
    uint64_t count = 1, failed = 0, applied = 0, snaps[3] = {0, 0, 0}, qf[SIM_QF_STATS] = {0}, reads = 0;
    sim_wal_stats_t wal = {0};
    int nodes;

    if (!parse(argc, argv, &o, &count))
        return usage();
    nodes = o.nodes;
    for (uint64_t i = 0; i < count; i++) {
        sim_opts_t run_o = o;
        run_o.seed = o.seed + i;
        run_o.nodes = nodes != 0 ? nodes : 3 + 2 * (int)(run_o.seed % 3);
        if (!run(&run_o, &applied, snaps, &wal, qf, &reads)) {
            failed++;
            break;
        }
    }
    printf("warren-sim: %llu seed(s) from %llu, %llu failed, %llu entries applied\n",
           (unsigned long long)count, (unsigned long long)o.seed, (unsigned long long)failed,
           (unsigned long long)applied);
    printf("payloads read back from the stored log (to send or apply): %llu\n", (unsigned long long)reads);
    printf("snapshots: %llu taken, %llu installed by followers, %llu found damaged at restart\n",
           (unsigned long long)snaps[0], (unsigned long long)snaps[1], (unsigned long long)snaps[2]);
    if (o.wal)
        printf("WAL: %llu batches, %llu fdatasyncs, %llu write-behind steps, %llu recoveries (%llu torn), "
               "%llu groups reported damaged, %llu WAL files damaged; write-behind read %llu full WAL files "
               "and skipped %llu snapshotted past\n",
               (unsigned long long)wal.batches, (unsigned long long)wal.datasyncs,
               (unsigned long long)wal.writebehinds, (unsigned long long)wal.recoveries,
               (unsigned long long)wal.torn, (unsigned long long)wal.damaged,
               (unsigned long long)wal.wal_corrupt, (unsigned long long)wal.wb_read,
               (unsigned long long)wal.wb_skipped);
    if (o.qfifo)
        printf("qfifo: %llu enqueues confirmed, %llu duplicates, %llu out of sequence, %llu rejected; %llu "
               "deliveries (%llu "
               "redelivered), "
               "%llu dead letters, %llu consumer timeouts, %llu DOWN applied\n",
               (unsigned long long)qf[0], (unsigned long long)qf[1], (unsigned long long)qf[8],
               (unsigned long long)qf[2], (unsigned long long)qf[3], (unsigned long long)qf[4],
               (unsigned long long)qf[5], (unsigned long long)qf[6], (unsigned long long)qf[7]);
    return failed ? 1 : 0;
}
