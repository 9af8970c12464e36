/* SPDX-License-Identifier: MIT */
/*
 * A log on the owner's thread: appends into per-segment chunks that the next
 * batch writes, reads from those chunks or with pread, liveness per segment
 * (a bitmap over its dense natives plus the records hosted there), deletion
 * of segments with nothing live, compaction of sparse ones (a large sparse
 * head is rolled first), and going on after a write error. Recovery is in
 * recover.c, the I/O of a batch in sync.c.
 */
#include "storage/seglog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/status.h"
#include "storage/recover.h"
#include "storage/segment.h"
#include "storage/storage_internal.h"

_Static_assert(WR_SEGLOG_MAX_RECORD == WR_SEGMENT_MAX_RECORD, "log and segment agree on the record limit");

#define NAME_MAX_LEN 200

/* ---- segments ----------------------------------------------------------- */

wr_seg_t *wr_seg_new(const char *dir, uint64_t seq)
{
    char name[WR_SEGMENT_NAME_MAX];
    wr_seg_t *seg = calloc(1, sizeof(*seg));

    if (seg == NULL)
        return NULL;
    wr_segment_name(name, seq);
    seg->path = wr_store_path(dir, name);
    if (seg->path == NULL) {
        free(seg);
        return NULL;
    }
    seg->seq = seq;
    seg->fd = -1;
    wr_list_init(&seg->hosted);
    return seg;
}

void wr_seg_free(wr_seg_t *seg)
{
    if (seg == NULL)
        return;
    if (seg->fd >= 0)
        close(seg->fd);
    free(seg->offs);
    free(seg->live);
    free(seg->path);
    free(seg);
}

bool wr_seg_reserve(wr_seg_t *seg, uint32_t slot)
{
    uint32_t cap = seg->cap ? seg->cap : 64;
    uint32_t *offs;
    uint64_t *live;

    if (slot < seg->cap)
        return true;
    while (cap <= slot) {
        if (cap > UINT32_MAX / 2)
            return false;
        cap *= 2;
    }
    offs = realloc(seg->offs, (size_t)cap * sizeof(*offs));
    if (offs == NULL)
        return false;
    seg->offs = offs;
    live = realloc(seg->live, (size_t)(cap / 64) * sizeof(*live));
    if (live == NULL)
        return false;
    memset(offs + seg->cap, 0, (size_t)(cap - seg->cap) * sizeof(*offs));
    memset(live + seg->cap / 64, 0, (size_t)(cap - seg->cap) / 64 * sizeof(*live));
    seg->live = live;
    seg->cap = cap;
    return true;
}

void wr_seg_set_live(wr_seg_t *seg, uint32_t slot, uint32_t off)
{
    seg->offs[slot] = off;
    seg->live[slot / 64] |= 1ull << (slot % 64);
    if (slot >= seg->nslots)
        seg->nslots = slot + 1;
    seg->nlive++;
}

bool wr_seg_is_live(const wr_seg_t *seg, uint32_t slot)
{
    return slot < seg->nslots && (seg->live[slot / 64] >> (slot % 64) & 1) != 0;
}

static void seg_clear_live(wr_seg_t *seg, uint32_t slot)
{
    seg->live[slot / 64] &= ~(1ull << (slot % 64));
    seg->nlive--;
}

/* Clears the live bits of slots [0, n). */
static void seg_clear_prefix(wr_seg_t *seg, uint32_t n)
{
    uint32_t w;

    for (w = 0; w < n / 64; w++) {
        seg->nlive -= (uint32_t)__builtin_popcountll(seg->live[w]);
        seg->live[w] = 0;
    }
    if (n % 64 != 0) {
        uint64_t mask = (1ull << (n % 64)) - 1;
        seg->nlive -= (uint32_t)__builtin_popcountll(seg->live[w] & mask);
        seg->live[w] &= ~mask;
    }
}

/* The slot of index in seg's native range, or false if outside it. */
static bool seg_slot(const wr_seg_t *seg, uint64_t index, uint32_t *slot)
{
    if (index < seg->first || index - seg->first >= seg->nslots)
        return false;
    *slot = (uint32_t)(index - seg->first);
    return true;
}

static wr_seg_t *log_head(const wr_seglog_t *log)
{
    return log->nsegs > 0 ? log->segs[log->nsegs - 1] : NULL;
}

bool wr_seglog_push_seg(wr_seglog_t *log, wr_seg_t *seg)
{
    if (log->nsegs == log->capsegs) {
        size_t cap = log->capsegs ? log->capsegs * 2 : 8;
        wr_seg_t **segs = realloc(log->segs, cap * sizeof(*segs));
        if (segs == NULL)
            return false;
        log->segs = segs;
        log->capsegs = cap;
    }
    log->segs[log->nsegs++] = seg;
    return true;
}

static void log_remove_seg(wr_seglog_t *log, wr_seg_t *seg)
{
    for (size_t i = log->nsegs; i-- > 0;) {
        if (log->segs[i] == seg) {
            memmove(log->segs + i, log->segs + i + 1, (log->nsegs - i - 1) * sizeof(*log->segs));
            log->nsegs--;
            return;
        }
    }
}

/* The segment whose native range would hold index (the last with first <= index), or NULL. */
static wr_seg_t *log_find_seg(const wr_seglog_t *log, uint64_t index)
{
    size_t lo = 0, hi = log->nsegs;

    /* Segments are sorted by first: find the last one with first <= index. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 ? log->segs[lo - 1] : NULL;
}

/* ---- hosted (compacted) records ------------------------------------------ */

static wr_bytes_t index_key(const uint64_t *index)
{
    return (wr_bytes_t){(const uint8_t *)index, sizeof(*index)};
}

static wr_moved_t *moved_get(const wr_seglog_t *log, uint64_t index)
{
    return wr_map_get(log->moved, index_key(&index));
}

bool wr_seglog_host(wr_seglog_t *log, uint64_t index, wr_seg_t *seg, uint32_t off)
{
    wr_moved_t *m = malloc(sizeof(*m));

    if (m == NULL)
        return false;
    m->index = index;
    m->seg = seg;
    m->off = off;
    if (wr_map_put(log->moved, index_key(&m->index), m) != WR_OK) {
        free(m);
        return false;
    }
    wr_list_insert_tail(&seg->hosted, &m->link);
    seg->nlive++;
    return true;
}

static void unhost(wr_seglog_t *log, wr_moved_t *m)
{
    wr_map_del(log->moved, index_key(&m->index));
    wr_list_remove(&m->link);
    m->seg->nlive--;
    free(m);
}

bool wr_seglog_find_live(const wr_seglog_t *log, uint64_t index, wr_seg_t **seg, uint32_t *off)
{
    wr_seg_t *s = log_find_seg(log, index);
    wr_moved_t *m;
    uint32_t slot;

    if (s != NULL && seg_slot(s, index, &slot) && wr_seg_is_live(s, slot)) {
        *seg = s;
        *off = s->offs[slot];
        return true;
    }
    m = moved_get(log, index);
    if (m == NULL)
        return false;
    *seg = m->seg;
    *off = m->off;
    return true;
}

/* ---- deletion and compaction decisions ----------------------------------- */

/* Room for one more entry in log->dead, which the batch takes as its unlink list. */
static bool dead_reserve(wr_seglog_t *log)
{
    size_t cap;
    wr_seg_t **dead;

    if (log->ndead < log->capdead)
        return true;
    cap = log->capdead ? log->capdead * 2 : 8;
    dead = realloc(log->dead, cap * sizeof(*dead));
    if (dead == NULL)
        return false;
    log->dead = dead;
    log->capdead = cap;
    return true;
}

/* Live records, with the copies of the in-flight compaction that seg hosts. */
static uint64_t seg_held(const wr_seg_t *seg)
{
    return (uint64_t)seg->nlive + seg->copies;
}

static bool seg_sparse(const wr_store_t *s, const wr_seg_t *seg)
{
    return seg_held(seg) * 100 < (uint64_t)seg->ntotal * s->compact_pct;
}

/* A head this large and this dead is rolled by the next batch, so that consuming gives its space back. */
static bool head_reclaimable(const wr_seglog_t *log)
{
    const wr_seg_t *head = log_head(log);

    return head != NULL && !log->closing && head->size >= log->store->reclaim_bytes &&
           seg_sparse(log->store, head);
}

void wr_seglog_check_seg(wr_seglog_t *log, wr_seg_t *seg)
{
    wr_store_t *s = log->store;

    if (log->replaying || seg->compacting)
        return;
    if (seg == log_head(log)) {
        if (head_reclaimable(log))
            wr_store_mark_dirty(s, log);
        return;
    }
    if (seg_held(seg) == 0) {
        if (!dead_reserve(log))
            return; /* stays listed; the next release or truncation retries */
        if (seg->candidate) {
            seg->candidate = false;
            log->ncandidates--;
        }
        log_remove_seg(log, seg);
        log->dead[log->ndead++] = seg;
        wr_store_mark_dirty(s, log);
        return;
    }
    if (!seg->candidate && !seg->no_compact && seg_sparse(s, seg)) {
        seg->candidate = true;
        log->ncandidates++;
        wr_store_mark_dirty(s, log);
    }
}

/* ---- appending ------------------------------------------------------------ */

static uint64_t salt_new(uint64_t seq)
{
    struct timespec ts;
    uint64_t z;

    clock_gettime(CLOCK_REALTIME, &ts);
    z = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (seq << 20) + (uint64_t)getpid();
    /* splitmix64 finaliser: spreads the bits so nearby inputs give unrelated salts. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The pending chunk that extends seg, created if the last one is for another segment. */
static wr_chunk_t *chunk_for(wr_seglog_t *log, wr_seg_t *seg)
{
    wr_chunk_t *c;

    if (!wr_list_empty(&log->pending)) {
        c = wr_list_entry(log->pending.prev, wr_chunk_t, link);
        if (c->seg == seg)
            return c;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->seg = seg;
    c->off = seg->size;
    wr_list_insert_tail(&log->pending, &c->link);
    return c;
}

static void chunk_free(wr_store_t *s, wr_chunk_t *c)
{
    s->pending_bytes -= c->data.len;
    wr_list_remove(&c->link);
    wr_buf_free(&c->data);
    free(c);
}

/* Starts a new head segment whose natives begin at log->next; its header is its first chunk. */
static int roll(wr_seglog_t *log)
{
    wr_store_t *s = log->store;
    uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
    wr_segment_header_t h = {log->next, salt_new(log->next_seq), 0};
    wr_seg_t *old = log_head(log), *seg = wr_seg_new(log->dir, log->next_seq);
    wr_chunk_t *c = NULL;

    if (seg == NULL)
        return WR_ENOMEM;
    seg->fd = open(seg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (seg->fd < 0) {
        wr_store_msg(s, "log '%s': cannot create segment %s: %s", log->name, seg->path, strerror(errno));
        wr_seg_free(seg);
        return WR_EIO;
    }
    wr_segment_header_encode(hdr, &h);
    seg->seed = h.seed;
    seg->hdr_first = seg->first = log->next;
    c = calloc(1, sizeof(*c));
    if (c == NULL || !wr_buf_reserve(&c->data, sizeof(hdr)) || !wr_seglog_push_seg(log, seg)) {
        if (c != NULL)
            wr_buf_free(&c->data);
        free(c);
        unlink(seg->path);
        wr_seg_free(seg);
        return WR_ENOMEM;
    }
    wr_buf_put(&c->data, hdr, sizeof(hdr));
    c->seg = seg;
    wr_list_insert_tail(&log->pending, &c->link);
    seg->size = sizeof(hdr);
    s->pending_bytes += sizeof(hdr);
    log->next_seq++;
    log->must_roll = false;
    wr_store_mark_dirty(s, log);
    if (old != NULL)
        wr_seglog_check_seg(log, old);
    return WR_OK;
}

/*
 * Places one record in the head segment (rolling first when it is full) and
 * adds it to the head's pending chunk. Natives become live here; copies are the
 * caller's to account for.
 */
static int place(wr_seglog_t *log, uint64_t index, const struct iovec *iov, int iovcnt, size_t len,
                 bool native, wr_seg_t **segp, uint32_t *offp)
{
    wr_store_t *s = log->store;
    size_t rec = WR_SEGMENT_RECORD_HEADER + len;
    wr_seg_t *head = log_head(log);
    wr_chunk_t *c;
    int rc;

    /* A record bigger than a segment gets one to itself. Offsets fit in 32
     * bits: a head is appended to only below segment_size (<= 1 GiB), and a
     * record is at most 1 GiB plus its header. The head's natives are never
     * below its header's first index: it was log->next when the head was
     * created, and recovery never sets log->next below it. */
    if (head == NULL || log->must_roll ||
        (head->size > WR_SEGMENT_HEADER_SIZE &&
         (head->size >= s->segment_size || rec > s->segment_size - head->size))) {
        if ((rc = roll(log)) != WR_OK)
            return rc;
        head = log_head(log);
    }
    if (native && !wr_seg_reserve(head, (uint32_t)(index - head->first)))
        return WR_ENOMEM;
    c = chunk_for(log, head);
    if (c == NULL)
        return WR_ENOMEM;
    if (!wr_buf_reserve(&c->data, rec)) {
        /* The buffer's failure flag is sticky; clear it so the chunk, which
         * still holds every earlier record intact, stays usable. */
        c->data.oom = false;
        if (c->data.len == 0) {
            wr_list_remove(&c->link);
            free(c);
        }
        return WR_ENOMEM;
    }
    *segp = head;
    *offp = (uint32_t)head->size;
    wr_segment_record_encodev(&c->data, head->seed, index, iov, iovcnt);
    head->size += rec;
    head->ntotal++;
    s->pending_bytes += rec;
    if (native)
        wr_seg_set_live(head, (uint32_t)(index - head->first), *offp);
    wr_store_mark_dirty(s, log);
    return WR_OK;
}

int wr_seglog_append(wr_seglog_t *log, const void *data, size_t len, uint64_t *index)
{
    struct iovec iov = {(void *)data, len};

    return wr_seglog_appendv(log, &iov, 1, index);
}

int wr_seglog_appendv(wr_seglog_t *log, const struct iovec *iov, int iovcnt, uint64_t *index)
{
    wr_seg_t *seg;
    size_t len = 0;
    uint32_t off;
    int rc;

    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > WR_SEGLOG_MAX_RECORD - len)
            return WR_ETOOBIG;
        len += iov[i].iov_len;
    }
    rc = place(log, log->next, iov, iovcnt, len, true, &seg, &off);
    if (rc != WR_OK)
        return rc;
    *index = log->next++;
    return WR_OK;
}

/* ---- reading -------------------------------------------------------------- */

/* One pread of a run reads at most this much (a larger record is read whole). */
#define WINDOW_MAX (128u << 10)
/* Where the end of the last record of a run is not known, the first pread reads this much of it. */
#define WINDOW_GUESS 4096u

/* Reads up to n bytes at off; *got is fewer only at the end of the file. */
static int pread_upto(int fd, uint8_t *b, size_t n, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, b + *got, n - *got, (off_t)(off + *got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return WR_EIO;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return WR_OK;
}

static bool window_holds(const wr_seglog_window_t *w, const wr_seglog_t *log, const wr_seg_t *seg,
                         uint64_t off)
{
    return w->seg == seg && w->seq == seg->seq && w->log == log && w->log_id == log->id && off >= w->off &&
           off - w->off < w->buf.len;
}

/* Fills w with bytes [off, end) of seg's file (fewer where the file ends first): one pread. */
static int window_fill(wr_seglog_window_t *w, const wr_seglog_t *log, const wr_seg_t *seg, uint64_t off,
                       uint64_t end)
{
    w->seg = NULL;
    wr_buf_reset(&w->buf);
    if (!wr_buf_reserve(&w->buf, (size_t)(end - off)))
        return WR_ENOMEM;
    if (pread_upto(seg->fd, w->buf.data, (size_t)(end - off), off, &w->buf.len) != WR_OK)
        return WR_EIO;
    w->log = log;
    w->log_id = log->id;
    w->seg = seg;
    w->seq = seg->seq;
    w->off = off;
    return WR_OK;
}

/*
 * The record at off of seg (off >= w->off), from w: its index and CRC
 * checked, *data its payload in w. WR_EIO when it is damaged; WR_AGAIN when
 * w does not hold all of it, with *need the file offset its end needs.
 */
static int window_record(const wr_seglog_window_t *w, const wr_seg_t *seg, uint64_t off, uint64_t index,
                         const uint8_t **data, uint32_t *len, uint64_t *need)
{
    size_t at = (size_t)(off - w->off);
    size_t have = w->buf.len > at ? w->buf.len - at : 0;
    const uint8_t *h = w->buf.data + at;
    uint64_t got;

    *need = off + WR_SEGMENT_RECORD_HEADER;
    if (have < WR_SEGMENT_RECORD_HEADER)
        return WR_AGAIN;
    if (wr_segment_record_head(h, UINT64_MAX, len, &got) != WR_OK || got != index)
        return WR_EIO;
    *need += *len;
    if (have - WR_SEGMENT_RECORD_HEADER < *len)
        return WR_AGAIN;
    if (!wr_segment_record_crc_ok(h, h + WR_SEGMENT_RECORD_HEADER, seg->seed))
        return WR_EIO;
    *data = h + WR_SEGMENT_RECORD_HEADER;
    return WR_OK;
}

/* Where the native record index at off ends at the latest: where the next native starts; 0 if not known. */
static uint64_t native_end(const wr_seg_t *seg, uint64_t index, uint64_t off)
{
    uint32_t slot;

    if (!seg_slot(seg, index, &slot) || seg->offs[slot] != off || slot + 1 >= seg->nslots ||
        seg->offs[slot + 1] <= off)
        return 0;
    return seg->offs[slot + 1];
}

/* Where the pread for a run from record index (at off of seg) through record upto stops. */
static uint64_t run_end(const wr_seglog_t *log, const wr_seg_t *seg, uint64_t index, uint64_t off,
                        uint64_t upto)
{
    uint64_t own = native_end(seg, index, off), end = 0, cap;
    wr_seg_t *s;
    uint32_t o;

    if (upto > index && wr_seglog_find_live(log, upto, &s, &o)) {
        if (s != seg)
            end = seg->durable; /* the run goes on in another file */
        else if (o > off && (end = native_end(seg, upto, o)) == 0)
            end = (uint64_t)o + WINDOW_GUESS;
    }
    if (end == 0)
        end = own != 0 ? own : off + WINDOW_GUESS;
    cap = own > off + WINDOW_MAX ? own : off + WINDOW_MAX;
    if (end > cap)
        end = cap;
    return end < seg->durable ? end : seg->durable;
}

/*
 * Reads the record at off of seg from disk, through w: from what w holds,
 * else with one pread of the run (a second one when the first did not
 * reach the record's end), verifying index and CRC.
 */
static int read_disk(const wr_seglog_t *log, const wr_seg_t *seg, uint64_t off, uint64_t index, uint64_t upto,
                     wr_seglog_window_t *w, const uint8_t **data, uint32_t *len)
{
    uint64_t need = 0, end;
    int rc;

    if (window_holds(w, log, seg, off)) {
        rc = window_record(w, seg, off, index, data, len, &need);
        if (rc != WR_AGAIN)
            return rc;
    }
    for (int pass = 0; pass < 2; pass++) {
        /* A record that claims to end past the durable bytes is damaged. */
        if (need > seg->durable)
            return WR_EIO;
        end = run_end(log, seg, index, off, upto);
        rc = window_fill(w, log, seg, off, end > need ? end : need);
        if (rc == WR_OK)
            rc = window_record(w, seg, off, index, data, len, &need);
        if (rc != WR_AGAIN)
            return rc;
    }
    return WR_EIO; /* the file ends before the record does */
}

/* A record not yet on disk is in exactly one chunk, pending or in flight. */
static const uint8_t *find_in_chunks(const wr_list_t *list, const wr_seg_t *seg, uint32_t off)
{
    for (const wr_list_t *n = list->next; n != list; n = n->next) {
        const wr_chunk_t *c = wr_list_entry(n, wr_chunk_t, link);
        if (c->seg == seg && off >= c->off && off - c->off < c->data.len)
            return c->data.data + (off - c->off);
    }
    return NULL;
}

/* Whether a write error lost record index. */
static bool lost_has(const wr_seglog_t *log, uint64_t index)
{
    for (size_t i = log->nlost; i-- > 0;) {
        if (index >= log->lost[i].first)
            return index <= log->lost[i].upto;
    }
    return false;
}

int wr_seglog_read_run(wr_seglog_t *log, uint64_t index, uint64_t upto, wr_seglog_window_t *w,
                       const uint8_t **data, size_t *len)
{
    const uint8_t *rec;
    wr_seg_t *seg;
    uint32_t off, n;
    uint64_t got;
    int rc;

    if (index <= log->front || index >= log->next)
        return WR_ENOENT;
    if (!wr_seglog_find_live(log, index, &seg, &off))
        return lost_has(log, index) ? WR_EIO : WR_ENOENT;
    if (off < seg->durable) {
        rc = read_disk(log, seg, off, index, upto, w, data, &n);
        *len = n;
        return rc;
    }
    rec = find_in_chunks(&log->inflight, seg, off);
    if (rec == NULL)
        rec = find_in_chunks(&log->pending, seg, off);
    if (rec == NULL)
        return WR_EIO; /* its write failed and the chunk is gone */
    wr_segment_record_head(rec, UINT64_MAX, &n, &got);
    *data = rec + WR_SEGMENT_RECORD_HEADER;
    *len = n;
    return WR_OK;
}

int wr_seglog_read(wr_seglog_t *log, uint64_t index, wr_buf_t *out)
{
    wr_seglog_window_t w = WR_SEGLOG_WINDOW_INIT;
    const uint8_t *data;
    size_t len;
    int rc = wr_seglog_read_run(log, index, index, &w, &data, &len);

    if (rc == WR_OK) {
        wr_buf_reset(out);
        wr_buf_put(out, data, len);
        rc = wr_buf_ok(out) ? WR_OK : WR_ENOMEM;
    }
    wr_seglog_window_free(&w);
    return rc;
}

void wr_seglog_window_free(wr_seglog_window_t *w)
{
    wr_buf_free(&w->buf);
    *w = (wr_seglog_window_t)WR_SEGLOG_WINDOW_INIT;
}

/* ---- releasing and truncating --------------------------------------------- */

int wr_seglog_release(wr_seglog_t *log, uint64_t index)
{
    wr_seg_t *seg;
    wr_moved_t *m;
    uint32_t slot;

    if (index <= log->front || index >= log->next)
        return WR_ENOENT;
    seg = log_find_seg(log, index);
    if (seg != NULL && seg_slot(seg, index, &slot) && wr_seg_is_live(seg, slot)) {
        seg_clear_live(seg, slot);
        wr_seglog_check_seg(log, seg);
        return WR_OK;
    }
    m = moved_get(log, index);
    if (m == NULL)
        return WR_ENOENT;
    seg = m->seg;
    unhost(log, m);
    wr_seglog_check_seg(log, seg);
    return WR_OK;
}

int wr_seglog_truncate_front(wr_seglog_t *log, uint64_t upto)
{
    wr_map_iter_t it = {0};
    wr_bytes_t key;
    void *value;

    if (upto >= log->next)
        return WR_ETOOBIG;
    if (upto <= log->front)
        return WR_OK;
    for (size_t i = 0; i < log->nsegs && log->segs[i]->first <= upto; i++) {
        wr_seg_t *seg = log->segs[i];
        uint64_t n = upto - seg->first + 1;
        seg_clear_prefix(seg, n < seg->nslots ? (uint32_t)n : seg->nslots);
    }
    while (wr_map_next(log->moved, &it, &key, &value)) {
        wr_moved_t *m = value;
        if (m->index <= upto)
            unhost(log, m);
    }
    log->front = upto;
    log->front_dirty = true;
    wr_store_mark_dirty(log->store, log);
    /* Backwards, so removing segs[i] shifts only segments already checked. */
    for (size_t i = log->nsegs; i-- > 0;)
        wr_seglog_check_seg(log, log->segs[i]);
    return WR_OK;
}

uint64_t wr_seglog_durable_index(const wr_seglog_t *log)
{
    return log->durable;
}

uint64_t wr_seglog_last_index(const wr_seglog_t *log)
{
    return log->next - 1;
}

/* ---- batches ---------------------------------------------------------------- */

/*
 * Copies one record of seg (at off) to the head, read through w as part of
 * a run ending at upto, recording the move; *unreadable if reading it failed.
 */
static int copy_record(wr_seglog_t *log, wr_seg_t *seg, uint32_t off, uint64_t index, uint64_t upto,
                       wr_seglog_window_t *w, wr_move_t *mv, bool *unreadable)
{
    const uint8_t *data;
    struct iovec iov;
    uint32_t len;
    int rc = read_disk(log, seg, off, index, upto, w, &data, &len);

    if (rc != WR_OK) {
        *unreadable = rc == WR_EIO;
        return rc;
    }
    mv->index = index;
    iov = (struct iovec){(void *)data, len};
    rc = place(log, index, &iov, 1, len, false, &mv->seg, &mv->off);
    /* Its segment holds it from now on, though it counts as live only once applied. */
    if (rc == WR_OK)
        mv->seg->copies++;
    return rc;
}

/*
 * The copies of moves[0..n) will never be applied (or just were): their
 * segments stop holding them, and may be dead now.
 */
static void unplace_copies(wr_seglog_t *log, const wr_move_t *moves, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (--moves[i].seg->copies == 0)
            wr_seglog_check_seg(log, moves[i].seg);
    }
}

/*
 * Copies every live record of seg (natives, as one run, then hosted) into
 * the head; stops at the first failure.
 */
static int copy_live(wr_seglog_t *log, wr_seg_t *seg, wr_move_t *moves, size_t *n, bool *unreadable)
{
    wr_seglog_window_t w = WR_SEGLOG_WINDOW_INIT;
    uint32_t last = seg->nslots;
    int rc = WR_OK;

    while (last > 0 && !wr_seg_is_live(seg, last - 1))
        last--;
    for (uint32_t slot = 0; slot < seg->nslots && rc == WR_OK; slot++) {
        if (!wr_seg_is_live(seg, slot))
            continue;
        rc = copy_record(log, seg, seg->offs[slot], seg->first + slot, seg->first + last - 1, &w, &moves[*n],
                         unreadable);
        if (rc == WR_OK)
            (*n)++;
    }
    for (wr_list_t *p = seg->hosted.next; p != &seg->hosted && rc == WR_OK; p = p->next) {
        wr_moved_t *m = wr_list_entry(p, wr_moved_t, link);
        rc = copy_record(log, seg, m->off, m->index, m->index, &w, &moves[*n], unreadable);
        if (rc == WR_OK)
            (*n)++;
    }
    wr_seglog_window_free(&w);
    return rc;
}

/*
 * Copies the live records of one sparse, fully durable segment into the head.
 * The index keeps pointing at the originals until the batch makes the copies
 * durable; the segment is deleted in that same batch, after the sync.
 */
static void compact(wr_seglog_t *log, wr_batch_log_t *e)
{
    wr_seg_t *seg = NULL;
    wr_move_t *moves;
    bool unreadable = false;
    size_t n = 0;
    int rc;

    if (log->ncandidates == 0 || log->closing)
        return;
    for (size_t i = 0; i + 1 < log->nsegs && seg == NULL; i++) {
        if (log->segs[i]->candidate && log->segs[i]->durable == log->segs[i]->size)
            seg = log->segs[i];
    }
    if (seg == NULL)
        return;
    moves = malloc((size_t)seg->nlive * sizeof(*moves));
    if (moves == NULL)
        return;
    rc = copy_live(log, seg, moves, &n, &unreadable);
    /* Reserved only now: a head rolled by the copies may have used a slot. */
    if (rc == WR_OK && !dead_reserve(log))
        rc = WR_ENOMEM;
    if (rc != WR_OK) {
        /* Copies made so far are dead bytes in the head; the originals stay. */
        unplace_copies(log, moves, n);
        free(moves);
        if (unreadable) {
            wr_store_msg(log->store,
                         "log '%s': cannot read back a live record of %s to compact it; leaving it in place",
                         log->name, seg->path);
            seg->no_compact = true;
            seg->candidate = false;
            log->ncandidates--;
        }
        return;
    }
    seg->candidate = false;
    log->ncandidates--;
    seg->compacting = true;
    log->dead[log->ndead++] = seg;
    e->compacted = seg;
    e->moves = moves;
    e->nmoves = n;
}

void wr_seglog_batch_prepare(wr_seglog_t *log, wr_batch_log_t *e)
{
    memset(e, 0, sizeof(*e));
    e->log = log;
    /* Rolled first, so that the copies of this compaction go to the new head. */
    if (head_reclaimable(log) && roll(log) == WR_OK)
        e->rolled = true;
    compact(log, e);
    e->unlink = log->dead;
    e->nunlink = log->ndead;
    log->dead = NULL;
    log->ndead = log->capdead = 0;
    /* Splice pending onto the (empty) in-flight list. */
    if (!wr_list_empty(&log->pending)) {
        log->inflight.next = log->pending.next;
        log->inflight.prev = log->pending.prev;
        log->inflight.next->prev = &log->inflight;
        log->inflight.prev->next = &log->inflight;
        wr_list_init(&log->pending);
    }
    e->target = log->next - 1;
    if (log->front_dirty) {
        e->front = log->front;
        log->front_dirty = false;
    }
    e->dir_new = log->dir_new;
    log->dir_new = false;
    /* Everything is in the batch now; compaction's appends re-marked the log. */
    wr_list_remove(&log->dirty);
}

/* Points the index at one durable copy; false (the original stays live) when out of memory. */
static bool apply_move(wr_seglog_t *log, wr_seg_t *old, const wr_move_t *mv)
{
    wr_moved_t *m;
    uint32_t slot;

    if (seg_slot(old, mv->index, &slot) && wr_seg_is_live(old, slot)) {
        if (!wr_seglog_host(log, mv->index, mv->seg, mv->off))
            return false;
        seg_clear_live(old, slot);
    } else if ((m = moved_get(log, mv->index)) != NULL && m->seg == old) {
        wr_list_remove(&m->link);
        old->nlive--;
        m->seg = mv->seg;
        m->off = mv->off;
        wr_list_insert_tail(&mv->seg->hosted, &m->link);
        mv->seg->nlive++;
    }
    /* Otherwise it was released while the copy was in flight: the copy is dead. */
    return true;
}

/*
 * Points the index at the durable copies and retires the compacted segment.
 * Out of memory, a record whose copy cannot be recorded stays in the old
 * segment, which then stays too: its file is deleted, but its descriptor
 * still reads it, and a later compaction copies it again. False then.
 */
static bool apply_moves(wr_seglog_t *log, wr_batch_log_t *e)
{
    wr_seg_t *old = e->compacted;
    bool ok = true;

    for (size_t i = 0; i < e->nmoves; i++) {
        if (!apply_move(log, old, &e->moves[i]))
            ok = false;
    }
    unplace_copies(log, e->moves, e->nmoves);
    if (ok) {
        log_remove_seg(log, old);
        return true;
    }
    old->compacting = false;
    wr_store_msg(log->store, "log '%s': out of memory recording compacted records; %s is kept open",
                 log->name, old->path);
    return false;
}

static void batch_succeeded(wr_seglog_t *log, wr_batch_log_t *e)
{
    wr_store_t *s = log->store;
    bool kept = e->compacted != NULL && !apply_moves(log, e);

    log->retry_ns = 0;
    if (e->target > log->durable)
        log->durable = e->target;
    if (e->msg[0] != '\0')
        wr_store_msg(s, "%s", e->msg);
    for (size_t i = 0; i < e->nunlink; i++) {
        if (!kept || e->unlink[i] != e->compacted)
            wr_seg_free(e->unlink[i]);
    }
    if (log->ncandidates > 0) {
        wr_store_mark_dirty(s, log);
        /* The store's own work goes on without waiting for the owner's next flush. */
        if ((e->compacted != NULL && !kept) || e->rolled)
            s->flush_wanted = true;
    }
}

/* Remembers that records first..upto were lost; merged with the last range when they touch. */
static void lost_add(wr_seglog_t *log, uint64_t first, uint64_t upto)
{
    wr_lost_t *l = log->nlost > 0 ? &log->lost[log->nlost - 1] : NULL;

    if (l != NULL && first <= l->upto + 1) {
        if (upto > l->upto)
            l->upto = upto;
        return;
    }
    if (log->nlost == log->caplost) {
        size_t cap = log->caplost ? log->caplost * 2 : 4;
        wr_lost_t *p = realloc(log->lost, cap * sizeof(*p));
        if (p == NULL)
            return; /* they read as WR_ENOENT instead of WR_EIO */
        log->lost = p;
        log->caplost = cap;
    }
    log->lost[log->nlost++] = (wr_lost_t){first, upto};
}

/* The last record whose fate is known: durable, or lost to an earlier failure. */
static uint64_t settled_upto(const wr_seglog_t *log)
{
    if (log->nlost > 0 && log->lost[log->nlost - 1].upto > log->durable)
        return log->lost[log->nlost - 1].upto;
    return log->durable;
}

/* Records (durable, upto] will never be on disk: they stop being live, and read as WR_EIO. */
static void lose_records(wr_seglog_t *log, uint64_t upto)
{
    for (uint64_t i = settled_upto(log) + 1; i <= upto; i++) {
        wr_seg_t *seg = log_find_seg(log, i);
        uint32_t slot;
        if (seg != NULL && seg_slot(seg, i, &slot) && wr_seg_is_live(seg, slot)) {
            seg_clear_live(seg, slot);
            seg->offs[slot] = 0;
        }
    }
    if (upto > log->durable)
        lost_add(log, log->durable + 1, upto);
    for (size_t i = log->nsegs; i-- > 0;)
        wr_seglog_check_seg(log, log->segs[i]);
}

/* Deletions the failed batch did not get to wait for the next one. */
static void requeue_dead(wr_seglog_t *log, wr_batch_log_t *e)
{
    for (size_t i = 0; i < e->nunlink; i++) {
        if (e->unlink[i] == e->compacted)
            continue;
        if (dead_reserve(log))
            log->dead[log->ndead++] = e->unlink[i];
        else
            wr_seg_free(e->unlink[i]); /* its file stays; recovery finds it dead after a restart */
    }
}

/*
 * The storage thread rolled the log's files back to where the batch started.
 * What was not durable is lost; the log goes on: the next append starts a
 * new segment (the old head's file is shorter than its memory now), and the
 * batch's other work (deletions, FRONT, compaction) is retried later.
 */
static void batch_failed(wr_seglog_t *log, wr_batch_log_t *e)
{
    wr_store_t *s = log->store;
    uint64_t upto = log->next - 1;
    /* A retry of work left behind carries no new record: none is lost again
     * (the durable callback still hears of the error). */
    bool lost_now = upto > settled_upto(log);

    while (!wr_list_empty(&log->pending)) {
        wr_chunk_t *c = wr_list_entry(log->pending.next, wr_chunk_t, link);
        c->seg->size = c->seg->durable;
        chunk_free(s, c);
    }
    log->must_roll = true;
    log->failures++;
    if (!log->fail_pending) {
        log->fail_pending = true;
        log->fail_from = log->durable;
    }
    log->fail_upto = upto;
    unplace_copies(log, e->moves, e->nmoves);
    if (e->compacted != NULL) {
        e->compacted->compacting = false;
        wr_seglog_check_seg(log, e->compacted);
    }
    lose_records(log, upto);
    requeue_dead(log, e);
    log->front_dirty |= e->front != 0;
    log->dir_new |= e->dir_new;
    if (log->ndead > 0 || log->front_dirty || log->dir_new)
        wr_store_retry_later(s, log);
    if (lost_now)
        wr_store_msg(s,
                     "%s; records %" PRIu64 "..%" PRIu64
                     " of log '%s' are not durable; it goes on in a new segment",
                     e->msg, log->durable + 1, upto, log->name);
    else if (log->retry_at != 0)
        wr_store_msg(s, "%s; log '%s' retries that in %" PRIu64 " ms", e->msg, log->name,
                     log->retry_ns / 1000000);
    else
        wr_store_msg(s, "%s (log '%s')", e->msg, log->name);
}

void wr_seglog_batch_done(wr_seglog_t *log, wr_batch_log_t *e)
{
    bool ok = e->err == 0;

    while (!wr_list_empty(&log->inflight)) {
        wr_chunk_t *c = wr_list_entry(log->inflight.next, wr_chunk_t, link);
        if (ok && c->off + c->data.len > c->seg->durable)
            c->seg->durable = c->off + c->data.len;
        if (!ok)
            c->seg->size = c->seg->durable; /* rolled back to that */
        chunk_free(log->store, c);
    }
    if (ok)
        batch_succeeded(log, e);
    else
        batch_failed(log, e);
    free(e->unlink);
    free(e->moves);
    wr_store_mark_notify(log->store, log);
}

/* ---- open, close, destroy --------------------------------------------------- */

bool wr_seglog_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void wr_seglog_free(wr_seglog_t *log)
{
    wr_map_iter_t it = {0};
    wr_bytes_t key;
    void *value;

    if (log->name != NULL && wr_map_get(log->store->by_name, wr_bytes_str(log->name)) == log)
        wr_map_del(log->store->by_name, wr_bytes_str(log->name));
    wr_list_remove(&log->link);
    wr_list_remove(&log->dirty);
    wr_list_remove(&log->notify);
    while (!wr_list_empty(&log->pending))
        chunk_free(log->store, wr_list_entry(log->pending.next, wr_chunk_t, link));
    if (log->moved != NULL) {
        while (wr_map_next(log->moved, &it, &key, &value))
            free(value);
        wr_map_free(log->moved);
    }
    for (size_t i = 0; i < log->nsegs; i++)
        wr_seg_free(log->segs[i]);
    for (size_t i = 0; i < log->ndead; i++)
        wr_seg_free(log->dead[i]);
    free(log->segs);
    free(log->dead);
    free(log->lost);
    free(log->dir);
    free(log->name);
    free(log);
}

wr_seglog_t *wr_seglog_open(wr_store_t *s, const char *name, const wr_seglog_cbs_t *cbs,
                            wr_seglog_recovery_t *rec, char *err, size_t errlen)
{
    wr_seglog_recovery_t unused;
    wr_seglog_t *log;

    if (!wr_seglog_name_ok(name)) {
        snprintf(err, errlen, "invalid log name '%s': use 1..%d of [A-Za-z0-9._-], not starting with '.'",
                 name, NAME_MAX_LEN);
        return NULL;
    }
    if (wr_map_get(s->by_name, wr_bytes_str(name)) != NULL) {
        snprintf(err, errlen, "log '%s' is already open", name);
        return NULL;
    }
    log = calloc(1, sizeof(*log));
    if (log == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    log->store = s;
    log->id = ++s->log_ids;
    if (cbs != NULL)
        log->cbs = *cbs;
    wr_list_init(&log->link);
    wr_list_init(&log->dirty);
    wr_list_init(&log->notify);
    wr_list_init(&log->pending);
    wr_list_init(&log->inflight);
    log->next = 1;
    log->next_seq = 1;
    log->name = strdup(name);
    log->dir = wr_store_path(s->logs_dir, name);
    log->moved = wr_map_new();
    if (log->name == NULL || log->dir == NULL || log->moved == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (mkdir(log->dir, 0750) == 0) {
        log->dir_new = true;
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "cannot create log directory %s: %s", log->dir, strerror(errno));
        goto err;
    }
    if (wr_recover_log(log, rec != NULL ? rec : &unused, err, errlen) != WR_OK)
        goto err;
    if (wr_map_put(s->by_name, wr_bytes_str(log->name), log) != WR_OK) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    wr_list_insert_tail(&s->logs, &log->link);
    return log;

err:
    wr_seglog_free(log);
    return NULL;
}

int wr_seglog_close(wr_seglog_t *log)
{
    wr_store_t *s;
    uint64_t failures;
    int rc = WR_OK;

    if (log == NULL)
        return WR_OK;
    s = log->store;
    log->closing = true;
    failures = log->failures;
    /* Work left by a failed batch goes now, not at its retry. */
    if (log->retry_at != 0)
        wr_store_mark_dirty(s, log);
    for (;;) {
        if (log->flight != NULL || s->inflight != NULL) {
            wr_store_wait(s);
            continue;
        }
        /* A write error while closing is not retried: the disk may stay full. */
        if (log->failures != failures ||
            (wr_list_empty(&log->pending) && log->ndead == 0 && !log->front_dirty))
            break;
        wr_store_submit(s);
        if (s->inflight == NULL) {
            rc = WR_ENOMEM;
            break;
        }
    }
    if (log->nlost > 0)
        rc = WR_EIO;
    wr_seglog_free(log);
    return rc;
}

int wr_seglog_destroy(wr_seglog_t *log)
{
    wr_store_t *s;
    int rc;

    if (log == NULL)
        return WR_OK;
    s = log->store;
    while (log->flight != NULL)
        wr_store_wait(s);
    rc = wr_store_trash(s, log->name, log->dir);
    wr_seglog_free(log);
    return rc;
}
