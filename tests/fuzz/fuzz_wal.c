/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the node-wide write-ahead log's recovery
 * (storage/wal_recover.c, wal_state.c, wal_segment.c): the decoders of WAL
 * files, segment files and the state file, which a crash, a bad disk or a
 * hand-copied directory can leave holding anything.
 *
 * The input's head is a script run through the real API on simdisk (appends,
 * overwrites, hard states, snapshot markers, deletions, batches,
 * write-behind steps), so the files are the WAL's own. A last batch makes
 * everything durable, the WAL is closed (and the disk crashed, torn or not),
 * the rest of the input edits the files (bytes overwritten or flipped, files
 * cut or extended), and the WAL is opened again:
 * - without edits, every group comes back exactly: its entries, snapshot
 *   and hard state, nothing damaged;
 * - with edits, every entry a group holds reads back and is one the script
 *   appended at that (group, index, term): payloads name themselves, so
 *   nothing damaged is ever passed off as an entry;
 * - either way a second recovery agrees with the first, damage included,
 *   and after the owner has marked the damaged groups (abstain) and noted
 *   it, a third keeps the cut and the mark.
 *
 * Input: byte 0 picks the seed, sizes and crash; byte 1 is the number of
 * script bytes that follow; the rest is edits of 5-byte heads (file, kind,
 * offset high, offset low, length) and their bytes. FUZZ_WAL_DEBUG=1 prints
 * the WAL's own messages (cuts, damage) while an input replays.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"
#include "storage/wal.h"
#include "tests/sim/simdisk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken expectation: says which, then aborts (libFuzzer keeps the input). */
#define need(cond, what)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz_wal: %s (line %d)\n", what, __LINE__);                                     \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#define GROUPS    3
#define MAXI      64
#define MAXNONCE  256
#define MAXFILES  64
#define PATH_SIZE 160

typedef struct {
    uint64_t term, nonce;
} ent_t;

typedef struct {
    uint64_t floor, last, term;
    wr_wal_hard_t hard;
    bool live; /* touched since its creation or deletion: the WAL must hold it */
    bool has_hard;
    ent_t e[MAXI + 1];
} group_t;

/* What a nonce was appended as. */
typedef struct {
    uint64_t g, i, t;
} origin_t;

typedef struct {
    wr_simdisk_t *d;
    const wr_vfs_t *vfs;
    wr_wal_opts_t o;
    wr_wal_t *w;
    group_t m[GROUPS + 1];
    origin_t hist[MAXNONCE + 1];
    uint64_t nonce;
    char files[MAXFILES][PATH_SIZE];
    size_t nfiles;
} run_t;

static void on_message(void *ud, const char *text)
{
    (void)ud;
    if (getenv("FUZZ_WAL_DEBUG"))
        fprintf(stderr, "%s\n", text);
}

static void on_durable(void *ud, const wr_wal_notice_t *n, int status)
{
    (void)ud;
    (void)n;
    need(status == WR_OK, "a batch failed"); /* simdisk fails no sync here */
}

/* The payload of (g, i, t, nonce): the four, then nonce % 29 bytes derived from them. */
static size_t payload(uint8_t *out, uint64_t g, uint64_t i, uint64_t t, uint64_t nonce)
{
    size_t extra = (size_t)(nonce % 29);

    memcpy(out, &g, 8);
    memcpy(out + 8, &i, 8);
    memcpy(out + 16, &t, 8);
    memcpy(out + 24, &nonce, 8);
    for (size_t k = 0; k < extra; k++)
        out[32 + k] = (uint8_t)(g * 31 + i * 7 + t + nonce + k);
    return 32 + extra;
}

static void append(run_t *r, uint64_t g, uint64_t i)
{
    group_t *m = &r->m[g];
    uint8_t p[64];

    if (i > MAXI || r->nonce >= MAXNONCE)
        return;
    r->nonce++;
    need(wr_wal_append(r->w, g, m->term, i, p, payload(p, g, i, m->term, r->nonce)) == WR_OK, "append");
    r->hist[r->nonce] = (origin_t){g, i, m->term};
    m->e[i] = (ent_t){m->term, r->nonce};
    m->last = i;
    m->live = true;
}

static void snapshot(run_t *r, uint64_t g, uint8_t arg, bool reset)
{
    group_t *m = &r->m[g];
    uint64_t i, t;

    if (m->last <= m->floor)
        return;
    i = m->floor + 1 + arg % (m->last - m->floor);
    t = reset ? m->e[i].term + 1000 : m->e[i].term;
    need(wr_wal_snapshot(r->w, g, i, t) == WR_OK, "snapshot");
    m->floor = i;
    if (reset) {
        m->last = i;
        m->term = t;
    }
}

/* One script byte: op in bits 0-2, group in bits 3-4, an argument in bits 5-7. */
static void step(run_t *r, uint8_t b)
{
    uint64_t g = 1 + ((b >> 3) & 3) % GROUPS;
    unsigned arg = b >> 5;
    group_t *m = &r->m[g];
    bool more;
    int rc;

    switch (b & 7) {
    case 0:
    case 1:
    case 2:
        append(r, g, m->last + 1);
        break;
    case 3: /* a follower overwriting a suffix, in a newer term */
        if (m->last > m->floor) {
            m->term++;
            append(r, g, m->floor + 1 + arg % (m->last - m->floor));
        }
        break;
    case 4:
        m->hard = (wr_wal_hard_t){m->term, arg, m->last, arg & 1 ? m->last : 0};
        m->has_hard = m->live = true;
        need(wr_wal_set_hard(r->w, g, &m->hard) == WR_OK, "hard state");
        break;
    case 5:
        snapshot(r, g, (uint8_t)(arg * 37 + r->nonce), arg == 7);
        break;
    case 6:
        need((rc = wr_wal_sync(r->w)) == WR_OK || rc == WR_AGAIN, "batch");
        break;
    default:
        if (arg == 0) {
            rc = wr_wal_group_delete(r->w, g);
            need(rc == WR_OK || rc == WR_ENOENT, "delete");
            memset(m, 0, sizeof(*m));
            m->term = 1;
        } else {
            need((rc = wr_wal_writebehind(r->w, arg * 600, &more)) == WR_OK || rc == WR_AGAIN,
                 "write-behind");
        }
        break;
    }
}

static int collect(void *ud, const char *name);

typedef struct {
    run_t *r;
    const char *dir;
} walk_t;

/* Every file under dir, depth first, into r->files. */
static void walk(run_t *r, const char *dir)
{
    walk_t wk = {r, dir};

    wr_vfs_list(r->vfs, dir, collect, &wk);
}

static int collect(void *ud, const char *name)
{
    walk_t *wk = ud;
    run_t *r = wk->r;
    wr_vfs_file_t *f;
    char path[PATH_SIZE];

    snprintf(path, sizeof(path), "%s/%s", wk->dir, name);
    if (wr_vfs_open(r->vfs, path, false, &f) == WR_OK) {
        wr_vfs_close(f);
        if (r->nfiles < MAXFILES)
            memcpy(r->files[r->nfiles++], path, sizeof(path));
    } else {
        walk(r, path);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Applies the edits in data; returns how many changed a file. */
static size_t edit(run_t *r, const uint8_t *data, size_t size)
{
    size_t edits = 0;

    r->nfiles = 0;
    walk(r, "n");
    qsort(r->files, r->nfiles, PATH_SIZE, by_name);
    while (r->nfiles > 0 && size >= 5) {
        wr_vfs_file_t *f;
        uint64_t len, off = (uint64_t)data[2] << 8 | data[3];
        size_t n = data[4];
        uint8_t kind = data[1] % 3;

        need(wr_vfs_open(r->vfs, r->files[data[0] % r->nfiles], false, &f) == WR_OK &&
                 wr_vfs_size(f, &len) == WR_OK,
             "simdisk");
        data += 5;
        size -= 5;
        if (n > size)
            n = size;
        if (kind == 0 && n > 0) { /* overwrite */
            wr_vfs_pwrite(f, data, n, off % (len + 1));
        } else if (kind == 1) { /* cut or extend */
            wr_vfs_truncate(f, off % (len + 64));
            n = 0;
        } else if (len > 0) { /* one byte changed */
            uint8_t c;
            size_t got;

            off %= len;
            wr_vfs_pread(f, &c, 1, off, &got);
            c ^= n > 0 ? data[0] | 1 : 0x80;
            wr_vfs_pwrite(f, &c, 1, off);
            n = n > 0;
        }
        wr_vfs_close(f);
        data += n;
        size -= n;
        edits++;
    }
    return edits;
}

/* Reads (g, i): it must be held, and be what the script appended at (g, i) in its term. */
static void check_entry(run_t *r, uint64_t g, uint64_t i, const group_t *exact)
{
    wr_buf_t b = WR_BUF_INIT;
    uint8_t want[64];
    uint64_t term = 0, nonce;

    need(wr_wal_read(r->w, g, i, &term, &b) == WR_OK && b.len >= 32, "an entry held does not read back");
    memcpy(&nonce, b.data + 24, 8);
    need(nonce > 0 && nonce <= r->nonce && r->hist[nonce].g == g && r->hist[nonce].i == i &&
             r->hist[nonce].t == term && b.len == payload(want, g, i, term, nonce) &&
             memcmp(b.data, want, b.len) == 0,
         "an entry read back was never appended there");
    need(!exact || (exact->e[i].nonce == nonce && exact->e[i].term == term),
         "a durable entry came back changed");
    wr_buf_free(&b);
}

/*
 * What the owner must do with a group recovered damaged before it acts
 * (raftd's mark_one): make its abstain mark durable, then note the damage
 * (wr_wal_damage_noted), after which the WAL no longer reports it.
 */
static int mark(void *ud, uint64_t group)
{
    run_t *r = ud;
    wr_wal_group_info_t gi;
    uint64_t term;

    need(wr_wal_group_info(r->w, group, &gi) == WR_OK, "a listed group has no info");
    term = gi.hard.term > 0 ? gi.hard.term : 1;
    if (gi.damaged && gi.hard.abstain < term) {
        gi.hard.abstain = term;
        need(wr_wal_set_hard(r->w, group, &gi.hard) == WR_OK, "hard state");
    }
    return 0;
}

/* A group known but holding nothing is as good as unknown (a crash can leave one, e.g. from a
 * headerless segment file that recovery removes): the comparisons below count it as unknown. */
static bool holds_something(const wr_wal_group_info_t *gi)
{
    return gi->last > 0 || gi->snap_index > 0 || gi->damaged || gi->hard.term > 0 || gi->hard.vote > 0 ||
           gi->hard.commit > 0 || gi->hard.abstain > 0;
}

/* Known only as damaged: "every group" of unnoted damage, one the first recovery had forgotten. */
static bool only_damaged(const wr_wal_group_info_t *gi)
{
    wr_wal_group_info_t empty = *gi;

    empty.damaged = false;
    return gi->damaged && !holds_something(&empty);
}

/* A recovery before the owner noted the damage holds what the first did, damage included. */
static bool holds_the_same(const wr_wal_group_info_t *a, const wr_wal_group_info_t *b)
{
    return a->first == b->first && a->last == b->last && a->last_term == b->last_term &&
           a->durable == b->durable && a->snap_index == b->snap_index && a->snap_term == b->snap_term &&
           memcmp(&a->hard, &b->hard, sizeof(a->hard)) == 0 && (!a->damaged || b->damaged);
}

/* One after the owner noted it holds the same, and remembers the damage as the owner's mark. */
static bool agrees(const wr_wal_group_info_t *a, const wr_wal_group_info_t *b)
{
    return a->first == b->first && a->last == b->last && a->last_term == b->last_term &&
           a->durable == b->durable && a->snap_index == b->snap_index && a->snap_term == b->snap_term &&
           a->hard.term == b->hard.term && a->hard.vote == b->hard.vote && a->hard.commit == b->hard.commit &&
           (a->damaged ? b->damaged || b->hard.abstain >= (b->hard.term > 0 ? b->hard.term : 1)
                       : !b->damaged && a->hard.abstain == b->hard.abstain);
}

static int only_known_groups(void *ud, uint64_t group)
{
    (void)ud;
    need(group >= 1 && group <= GROUPS, "a group that never existed");
    return 0;
}

/* After a recovery: what each group holds, checked; its info into out[g] (known[g] false if absent, or
 * after edits if it holds nothing). */
static void check(run_t *r, bool exact, wr_wal_group_info_t *out, bool *known)
{
    wr_wal_foreach_group(r->w, only_known_groups, NULL);
    for (uint64_t g = 1; g <= GROUPS; g++) {
        const group_t *m = &r->m[g];
        wr_wal_group_info_t *gi = &out[g];

        memset(gi, 0, sizeof(*gi));
        known[g] = wr_wal_group_info(r->w, g, gi) == WR_OK;
        need(!exact || m->live == known[g], "a group lost or resurrected");
        if (!known[g])
            continue;
        need(gi->first == gi->snap_index + 1 && gi->last >= gi->snap_index && gi->durable <= gi->last,
             "inconsistent group info");
        need(!exact || !gi->damaged, "a group damaged without an edit");
        need(!exact || (gi->snap_index == m->floor && gi->last == m->last),
             "a durable group came back shorter");
        need(!exact || !m->has_hard || memcmp(&gi->hard, &m->hard, sizeof(m->hard)) == 0,
             "a durable hard state came back changed");
        for (uint64_t i = gi->first; i <= gi->last; i++)
            check_entry(r, g, i, exact ? m : NULL);
        known[g] = exact || holds_something(gi);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_t *r;
    wr_wal_recovery_t rec;
    wr_wal_group_info_t first[GROUPS + 1], again[GROUPS + 1], third[GROUPS + 1];
    bool known[GROUPS + 1], known_again[GROUPS + 1], known_third[GROUPS + 1];
    size_t script;
    bool exact;
    int rc;

    if (size < 2)
        return 0;
    script = data[1] < size - 2 ? data[1] : size - 2;
    r = calloc(1, sizeof(*r));
    need(r != NULL, "out of memory");
    r->d = wr_simdisk_new(data[0]);
    r->vfs = wr_simdisk_vfs(r->d);
    need(wr_vfs_mkdir(r->vfs, "n") == WR_OK && wr_vfs_sync_dir(r->vfs, "") == WR_OK, "simdisk");
    r->o = (wr_wal_opts_t){.vfs = r->vfs,
                           .dir = "n",
                           .wal_size = 512 + (data[0] & 3) * 512,
                           .segment_size = 256 + (data[0] >> 2 & 3) * 512,
                           .seed = data[0],
                           .durable = on_durable,
                           .message = on_message,
                           .wb_wait_files = data[0] >> 4 & 3};
    need(wr_wal_open(&r->o, &r->w, &rec) == WR_OK, "a new WAL does not open");
    for (uint64_t g = 1; g <= GROUPS; g++)
        r->m[g].term = 1;
    for (size_t k = 0; k < script; k++)
        step(r, data[2 + k]);
    while ((rc = wr_wal_sync(r->w)) == WR_OK)
        ;
    need(rc == WR_AGAIN, "the last batch failed");
    wr_wal_close(r->w);
    if (data[0] & 0x40)
        wr_simdisk_crash(r->d, data[0] & 0x80);

    exact = edit(r, data + 2 + script, size - 2 - script) == 0;
    rc = wr_wal_open(&r->o, &r->w, &rec);
    if (rc == WR_OK) {
        need(!exact || (!rec.wal_corrupt && rec.damaged == 0), "damage reported without an edit");
        check(r, exact, first, known);
        /* The owner crashes before it has marked the damage: the next recovery still reports it. */
        wr_wal_close(r->w);
        need(wr_wal_open(&r->o, &r->w, &rec) == WR_OK, "a recovered WAL does not open again");
        check(r, exact, again, known_again);
        /* A group it no longer knows is one of "every group" of wal_corrupt: the owner treats it as damaged.
         */
        for (uint64_t g = 1; g <= GROUPS; g++)
            need(known_again[g] ? (known[g] ? holds_the_same(&first[g], &again[g]) : only_damaged(&again[g]))
                                : !known[g] || rec.wal_corrupt,
                 "a recovery before the damage was noted disagrees with the first");
        /* Now it marks and notes it: the next recovery keeps what the mark says. */
        wr_wal_foreach_group(r->w, mark, r);
        while ((rc = wr_wal_sync(r->w)) == WR_OK)
            ;
        need(rc == WR_AGAIN && wr_wal_damage_noted(r->w) == WR_OK, "the owner's mark was not made durable");
        wr_wal_close(r->w);
        need(wr_wal_open(&r->o, &r->w, &rec) == WR_OK, "a recovered WAL does not open again");
        check(r, exact, third, known_third);
        for (uint64_t g = 1; g <= GROUPS; g++)
            need(known_again[g] == known_third[g] && (!known_again[g] || agrees(&again[g], &third[g])),
                 "a recovery after the damage was noted disagrees with the one before");
        wr_wal_close(r->w);
    } else {
        need(!exact && rc == WR_EIO, "recovery failed");
    }
    wr_simdisk_free(r->d);
    free(r);
    return 0;
}
