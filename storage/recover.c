/* SPDX-License-Identifier: MIT */
/*
 * Log recovery: segments are scanned in file order through a read-only map. A
 * run of bytes with no valid record is a torn tail (nothing valid after it: cut
 * off) or corruption (reported with the records lost; the rest is kept). Short
 * files are removed, damaged headers set aside; nothing is skipped silently.
 */
#include "storage/recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/status.h"
#include "storage/segment.h"
#include "storage/storage_internal.h"
#include "storage/sync.h"

typedef struct {
    wr_seglog_t *log;
    wr_seglog_recovery_t *rec;
    char *err;
    size_t errlen;
    uint64_t max_index; /* highest index found anywhere */
    bool dir_changed;   /* files were removed or renamed: fsync the directory */
} recovery_t;

/* Reads FRONT; a damaged one is reported and ignored, which only replays more. */
static void front_read(recovery_t *r)
{
    wr_seglog_t *log = r->log;
    char *path = wr_store_path(log->dir, "FRONT");
    char text[32], *end;
    ssize_t n = -1;
    int fd;

    if (path == NULL)
        return;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
    }
    if (n > 0) {
        text[n] = '\0';
        errno = 0;
        log->front = strtoull(text, &end, 10);
        if (text[0] < '0' || text[0] > '9' || errno != 0 || strcmp(end, "\n") != 0) {
            wr_store_msg(log->store, "log '%s': %s is damaged; replaying from the first stored record",
                         log->name, path);
            log->front = 0;
        }
    } else if (fd >= 0 || errno != ENOENT) {
        wr_store_msg(log->store, "log '%s': cannot read %s; replaying from the first stored record",
                     log->name, path);
    }
    free(path);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sequence numbers of the log's segment files, sorted; also cleans up a leftover FRONT.tmp. */
static int list_segments(recovery_t *r, uint64_t **seqs, size_t *nseqs)
{
    wr_seglog_t *log = r->log;
    size_t cap = 0;
    struct dirent *de;
    DIR *d = opendir(log->dir);

    if (d == NULL) {
        snprintf(r->err, r->errlen, "cannot open log directory %s: %s", log->dir, strerror(errno));
        return WR_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        bool aside;
        if (strcmp(de->d_name, "FRONT.tmp") == 0) {
            unlinkat(dirfd(d), de->d_name, 0);
            r->dir_changed = true;
            continue;
        }
        if (!wr_segment_name_parse(de->d_name, &seq, &aside))
            continue;
        if (seq >= log->next_seq)
            log->next_seq = seq + 1;
        if (aside)
            continue;
        if (*nseqs == cap) {
            uint64_t *p;
            cap = cap ? cap * 2 : 16;
            p = realloc(*seqs, cap * sizeof(*p));
            if (p == NULL) {
                closedir(d);
                snprintf(r->err, r->errlen, "out of memory");
                return WR_ENOMEM;
            }
            *seqs = p;
        }
        (*seqs)[(*nseqs)++] = seq;
    }
    closedir(d);
    if (*nseqs > 1)
        qsort(*seqs, *nseqs, sizeof(**seqs), cmp_u64);
    return WR_OK;
}

/* Indexes one valid record found in seg at it->off. */
static int add_record(recovery_t *r, wr_seg_t *seg, const wr_segment_item_t *it)
{
    wr_seglog_t *log = r->log;
    wr_seg_t *where;
    uint32_t off;

    seg->ntotal++;
    if (it->index > r->max_index)
        r->max_index = it->index;
    if (it->index <= log->front)
        return WR_OK; /* truncated before the crash */
    if (it->index >= seg->hdr_first) {
        uint64_t slot = it->index - seg->first;
        /* Also when a copy of it came first (in a damaged log): one of each index. */
        if (slot < seg->nslots ||
            (wr_map_count(log->moved) > 0 && wr_seglog_find_live(log, it->index, &where, &off))) {
            wr_store_msg(log->store,
                         "log '%s': %s: record %" PRIu64 " at offset %zu repeats an earlier index; ignored",
                         log->name, seg->path, it->index, it->off);
            return WR_OK;
        }
        if (!wr_seg_reserve(seg, (uint32_t)slot))
            goto oom;
        wr_seg_set_live(seg, (uint32_t)slot, (uint32_t)it->off);
        return WR_OK;
    }
    /* A copy made by compaction. If its original (or an earlier copy) is
     * still stored, a crash cut the compaction short: keep the first. */
    if (wr_seglog_find_live(log, it->index, &where, &off))
        return WR_OK;
    if (!wr_seglog_host(log, it->index, seg, (uint32_t)it->off))
        goto oom;
    return WR_OK;
oom:
    snprintf(r->err, r->errlen, "out of memory indexing log '%s'", log->name);
    return WR_ENOMEM;
}

/* The highest native index of seg, or 0. */
static uint64_t last_native(const wr_seg_t *seg)
{
    for (uint32_t i = seg->nslots; i-- > 0;) {
        if (seg->offs[i] != 0)
            return seg->first + i;
    }
    return 0;
}

/* One past the natives seg may hold (its lookup range). */
static uint64_t natives_end(const wr_seg_t *seg)
{
    return seg->first + seg->nslots;
}

/* Reports a corrupt run in the middle of seg, now that the record after it (next) is known. */
static void report_corrupt(recovery_t *r, wr_seg_t *seg, const wr_segment_item_t *bad, uint64_t next)
{
    uint64_t before = last_native(seg), lost = 1;

    if (next >= seg->hdr_first) {
        uint64_t from = before != 0 ? before + 1 : seg->hdr_first;
        if (next > from)
            lost = next - from;
    }
    r->rec->lost_records += lost;
    wr_store_msg(r->log->store,
                 "log '%s': %s: %zu corrupt bytes at offset %zu; %" PRIu64
                 " record(s) lost there, the records after them are kept",
                 r->log->name, seg->path, bad->size, bad->off, lost);
}

/* Scans the records of a mapped segment with a valid header. */
static int scan_segment(recovery_t *r, wr_seg_t *seg, const wr_segment_header_t *h, size_t size)
{
    wr_segment_scan_t sc;
    wr_segment_item_t it, bad = {0};
    wr_scan_kind_t k;
    bool have_bad = false;
    int rc;

    seg->size = size;
    wr_segment_scan_init(&sc, seg->map, size, h);
    while ((k = wr_segment_scan_next(&sc, &it)) != WR_SCAN_END) {
        if (k == WR_SCAN_BAD && it.off + it.size == size) {
            /* Torn tail: the part of a write that a crash cut short. */
            if (ftruncate(seg->fd, (off_t)it.off) != 0) {
                snprintf(r->err, r->errlen, "cannot truncate torn tail of %s: %s", seg->path,
                         strerror(errno));
                return WR_EIO;
            }
            r->rec->truncated_bytes += it.size;
            seg->size = it.off;
            wr_store_msg(r->log->store, "log '%s': torn tail in %s at offset %zu: truncated %zu bytes",
                         r->log->name, seg->path, it.off, it.size);
            break;
        }
        if (k == WR_SCAN_BAD) {
            bad = it;
            have_bad = true;
            continue;
        }
        if (have_bad) {
            report_corrupt(r, seg, &bad, it.index);
            have_bad = false;
        }
        if ((rc = add_record(r, seg, &it)) != WR_OK)
            return rc;
    }
    if (sc.n < seg->size)
        seg->size = sc.n; /* the zeros after the records are overwritten in place */
    seg->durable = seg->size;
    return WR_OK;
}

/*
 * Counts the records framed in a segment whose header is damaged: their
 * lengths chain them from the end of the header. Without the header no CRC
 * verifies, so the count is trusted only when the chain ends exactly at the
 * end of the file or where zeros written ahead begin; false otherwise.
 */
static bool count_frames(const uint8_t *p, size_t n, uint64_t *count)
{
    size_t pos = WR_SEGMENT_HEADER_SIZE;
    uint64_t index;
    uint32_t len;

    *count = 0;
    while (n - pos >= WR_SEGMENT_RECORD_HEADER && !wr_segment_all_zero(p + pos, n - pos)) {
        if (wr_segment_record_head(p + pos, UINT64_MAX, &len, &index) != WR_OK ||
            len > n - pos - WR_SEGMENT_RECORD_HEADER)
            return false;
        pos += WR_SEGMENT_RECORD_HEADER + len;
        (*count)++;
    }
    return pos == n || wr_segment_all_zero(p + pos, n - pos);
}

/* Renames a segment with a damaged header to *.seg.corrupt and reports the records lost with it. */
static int set_aside(recovery_t *r, wr_seg_t *seg)
{
    char aside[4096], what[96];
    uint64_t n;

    snprintf(aside, sizeof(aside), "%s.corrupt", seg->path);
    if (rename(seg->path, aside) != 0) {
        snprintf(r->err, r->errlen, "%s has a corrupt header and cannot be set aside: %s", seg->path,
                 strerror(errno));
        return WR_EIO;
    }
    r->dir_changed = true;
    if (count_frames(seg->map, seg->maplen, &n)) {
        r->rec->lost_records += n;
        snprintf(what, sizeof(what), "%" PRIu64 " record(s)", n);
    } else {
        r->rec->lost_records++; /* at least one: lost_records is a lower bound */
        snprintf(what, sizeof(what), "an unknown number of records");
    }
    wr_store_msg(
        r->log->store,
        "log '%s': %s has a corrupt header; %s in its %zu bytes are lost, the file was set aside as %s",
        r->log->name, seg->path, what, seg->maplen, aside);
    return WR_OK;
}

/* Opens, checks and scans one segment file; files with nothing usable are moved out of the way. */
static int load_segment(recovery_t *r, uint64_t seq)
{
    wr_seglog_t *log = r->log;
    wr_seg_t *seg = wr_seg_new(log->dir, seq);
    wr_segment_header_t h;
    struct stat st;
    uint32_t version;
    void *map;
    int rc;

    if (seg == NULL) {
        snprintf(r->err, r->errlen, "out of memory");
        return WR_ENOMEM;
    }
    seg->fd = open(seg->path, O_RDWR | O_CLOEXEC);
    if (seg->fd < 0 || fstat(seg->fd, &st) != 0) {
        snprintf(r->err, r->errlen, "cannot open %s: %s", seg->path, strerror(errno));
        rc = WR_EIO;
        goto err;
    }
    if ((uint64_t)st.st_size < WR_SEGMENT_HEADER_SIZE) {
        /* A crash right after creating it: it never held a record. */
        wr_store_msg(log->store, "log '%s': removed %s: %lld bytes, shorter than a segment header", log->name,
                     seg->path, (long long)st.st_size);
        r->rec->truncated_bytes += (uint64_t)st.st_size;
        unlink(seg->path);
        r->dir_changed = true;
        wr_seg_free(seg);
        return WR_OK;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, seg->fd, 0);
    if (map == MAP_FAILED) {
        snprintf(r->err, r->errlen, "cannot map %s: %s", seg->path, strerror(errno));
        rc = WR_EIO;
        goto err;
    }
    seg->map = map;
    seg->maplen = (size_t)st.st_size;
    rc = wr_segment_header_decode(map, seg->maplen, &h, &version);
    if (rc == WR_EUNKNOWN) {
        snprintf(r->err, r->errlen,
                 "%s has segment format version %" PRIu32 "; this build reads version %d only", seg->path,
                 version, WR_SEGMENT_VERSION);
        goto err;
    }
    if (rc != WR_OK) {
        rc = set_aside(r, seg);
        if (rc != WR_OK)
            goto err;
        munmap(map, seg->maplen);
        seg->map = NULL;
        wr_seg_free(seg);
        return WR_OK;
    }
    seg->seed = h.seed;
    seg->hdr_first = seg->first = h.first;
    /* A header below the natives of the segment before it is damaged: what
     * it holds there can only be copies, or indexes would be stored twice. */
    if (log->nsegs > 0 && seg->hdr_first < natives_end(log->segs[log->nsegs - 1]))
        seg->hdr_first = seg->first = natives_end(log->segs[log->nsegs - 1]);
    if (!wr_seglog_push_seg(log, seg)) {
        snprintf(r->err, r->errlen, "out of memory");
        rc = WR_ENOMEM;
        goto err;
    }
    rc = scan_segment(r, seg, &h, seg->maplen);
    if (seg->nslots == 0) {
        /* No natives: a lookup key that keeps the segments sorted (see finish). */
        wr_seg_t *prev = log->nsegs > 1 ? log->segs[log->nsegs - 2] : NULL;
        seg->first = prev != NULL ? prev->first + prev->nslots : 1;
        if (seg->first > seg->hdr_first)
            seg->first = seg->hdr_first;
    }
    return rc; /* the segment is the log's now, even on failure */

err:
    if (seg->map != NULL)
        munmap((void *)seg->map, seg->maplen);
    seg->map = NULL;
    wr_seg_free(seg);
    return rc;
}

/* Makes everything found durable, so the durable index can start at the last record. */
static int sync_found(recovery_t *r)
{
    wr_seglog_t *log = r->log;

    for (size_t i = 0; i < log->nsegs; i++) {
        if (fdatasync(log->segs[i]->fd) != 0) {
            snprintf(r->err, r->errlen, "fdatasync of %s failed: %s", log->segs[i]->path, strerror(errno));
            return WR_EIO;
        }
    }
    if (r->dir_changed && wr_sync_dir(log->store, log->dir) != WR_OK) {
        snprintf(r->err, r->errlen, "fsync of %s failed: %s", log->dir, strerror(errno));
        return WR_EIO;
    }
    return WR_OK;
}

static int deliver(recovery_t *r, const wr_seg_t *seg, uint32_t off, uint64_t index)
{
    wr_seglog_t *log = r->log;
    const uint8_t *h = seg->map + off;
    uint64_t got;
    uint32_t len;
    int rc;

    wr_segment_record_head(h, UINT64_MAX, &len, &got);
    if (r->rec->records == 0)
        r->rec->first_index = index;
    r->rec->records++;
    r->rec->bytes += len;
    if (log->cbs.replay == NULL)
        return WR_OK;
    rc = log->cbs.replay(log->cbs.ud, log, index, h + WR_SEGMENT_RECORD_HEADER, len);
    if (rc != WR_OK)
        snprintf(r->err, r->errlen, "log '%s': replay stopped at record %" PRIu64 " (status %d)", log->name,
                 index, rc);
    return rc;
}

/*
 * Replays live records in index order: natives segment by segment, merged
 * with the hosted records by index. Liveness is checked at delivery, because
 * the callback may release records.
 */
static int replay(recovery_t *r)
{
    wr_seglog_t *log = r->log;
    size_t nmoved = wr_map_count(log->moved), mi = 0;
    uint64_t *moved = NULL;
    wr_map_iter_t it = {0};
    wr_bytes_t key;
    void *value;
    int rc = WR_OK;

    if (nmoved > 0 && (moved = malloc(nmoved * sizeof(*moved))) == NULL) {
        snprintf(r->err, r->errlen, "out of memory");
        return WR_ENOMEM;
    }
    for (size_t n = 0; wr_map_next(log->moved, &it, &key, &value); n++)
        moved[n] = ((wr_moved_t *)value)->index;
    if (nmoved > 1)
        qsort(moved, nmoved, sizeof(*moved), cmp_u64);

    for (size_t i = 0; i < log->nsegs && rc == WR_OK; i++) {
        wr_seg_t *seg = log->segs[i];
        for (uint32_t slot = 0; slot < seg->nslots && rc == WR_OK; slot++) {
            uint64_t index = seg->first + slot;
            for (; mi < nmoved && moved[mi] < index && rc == WR_OK; mi++) {
                wr_seg_t *where;
                uint32_t off;
                if (wr_seglog_find_live(log, moved[mi], &where, &off))
                    rc = deliver(r, where, off, moved[mi]);
            }
            if (rc == WR_OK && wr_seg_is_live(seg, slot))
                rc = deliver(r, seg, seg->offs[slot], index);
        }
    }
    for (; mi < nmoved && rc == WR_OK; mi++) {
        wr_seg_t *where;
        uint32_t off;
        if (wr_seglog_find_live(log, moved[mi], &where, &off))
            rc = deliver(r, where, off, moved[mi]);
    }
    free(moved);
    return rc;
}

/*
 * Sets the append position: past every index found, the front, and the last
 * segment's header (the head is never deleted, and its header holds the next
 * index at its creation), so an index released and deleted before the
 * restart is never handed out again.
 */
static void finish(recovery_t *r)
{
    wr_seglog_t *log = r->log;
    wr_seg_t *head = log->nsegs > 0 ? log->segs[log->nsegs - 1] : NULL;

    log->next = (r->max_index > log->front ? r->max_index : log->front) + 1;
    if (head != NULL && head->hdr_first > log->next)
        log->next = head->hdr_first;
    log->durable = log->reported = log->next - 1;
    /* A head without natives takes the next appends: its key is its header's. */
    if (head != NULL && head->nslots == 0)
        head->first = head->hdr_first;
}

int wr_recover_log(wr_seglog_t *log, wr_seglog_recovery_t *rec, char *err, size_t errlen)
{
    recovery_t r = {log, rec, err, errlen, 0, false};
    struct timespec t0, t1;
    uint64_t *seqs = NULL;
    size_t nseqs = 0;
    int rc;

    memset(rec, 0, sizeof(*rec));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    log->replaying = true;
    front_read(&r);
    rc = list_segments(&r, &seqs, &nseqs);
    for (size_t i = 0; i < nseqs && rc == WR_OK; i++)
        rc = load_segment(&r, seqs[i]);
    if (rc == WR_OK) {
        finish(&r);
        rc = sync_found(&r);
    }
    if (rc == WR_OK)
        rc = replay(&r);
    log->replaying = false;
    for (size_t i = 0; i < log->nsegs; i++) {
        wr_seg_t *seg = log->segs[i];
        if (seg->map != NULL)
            munmap((void *)seg->map, seg->maplen);
        seg->map = NULL;
    }
    free(seqs);
    if (rc != WR_OK)
        return rc;
    /* Now that the owner has released what it knows is dead, delete or compact. */
    for (size_t i = log->nsegs; i-- > 0;)
        wr_seglog_check_seg(log, log->segs[i]);
    rec->last_index = log->next - 1;
    rec->segments = (uint32_t)log->nsegs;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rec->elapsed_us =
        (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    return WR_OK;
}
