/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for segment recovery (storage/recover.c, segment.c).
 * The input becomes one or more segment files of log "q" in a fresh store,
 * either as raw bytes or, so that the fuzzer reaches past the CRCs, built
 * from a script of records (valid header and CRCs, then bytes flipped, tails
 * cut, indexes repeated or out of order). Each file is scanned from an
 * exactly sized heap copy (a read past the file is an ASan report) and the
 * log is opened, which recovers it. Every record recovery replays must be
 * framed somewhere in the files with a CRC that verifies (checked here with
 * the CRC alone, not the scanner); a clean script must come back whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/status.h"
#include "core/crc32c.h"
#include "storage/seglog.h"
#include "storage/segment.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 4

typedef struct {
    wr_buf_t file[MAX_FILES]; /* the images written */
    size_t nfiles;
    uint64_t records;  /* written intact, in a script */
    bool clean;        /* a script with dense indexes, no damage, one file */
    uint64_t replayed; /* by recovery */
    uint64_t last;     /* index of the last replayed record */
    bool in_order;
} run_t;

typedef struct {
    const uint8_t *p;
    size_t n;
} input_t;

static uint8_t take(input_t *in)
{
    uint8_t b = in->n > 0 ? in->p[0] : 0;

    if (in->n > 0) {
        in->p++;
        in->n--;
    }
    return b;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Whether a record (index, payload) with a CRC that verifies is framed in
 * file f, under the seed of f's header. */
static bool framed_in(const wr_buf_t *f, uint64_t index, const uint8_t *payload, size_t len)
{
    const uint8_t *p = f->data;
    uint32_t seed;

    if (f->len < WR_SEGMENT_HEADER_SIZE)
        return false;
    seed = le32(p + 32);
    for (size_t off = WR_SEGMENT_HEADER_SIZE; off + WR_SEGMENT_RECORD_HEADER <= f->len; off++) {
        const uint8_t *h = p + off;
        uint32_t c;

        if (le32(h) != len || le64(h + 8) != index || len > f->len - off - WR_SEGMENT_RECORD_HEADER ||
            memcmp(h + WR_SEGMENT_RECORD_HEADER, payload, len) != 0)
            continue;
        c = wr_crc32c_update_sw(seed, h, 4);
        c = wr_crc32c_update_sw(c, h + 8, 8);
        if (wr_crc32c_update_sw(c, payload, len) == le32(h + 4))
            return true;
    }
    return false;
}

static int on_replay(void *ud, wr_seglog_t *log, uint64_t index, const uint8_t *payload, size_t len)
{
    run_t *r = ud;
    bool found = false;

    for (size_t i = 0; i < r->nfiles && !found; i++)
        found = framed_in(&r->file[i], index, payload, len);
    if (!found)
        abort();
    if (r->replayed > 0 && index <= r->last)
        r->in_order = false;
    r->replayed++;
    r->last = index;
    return WR_OK;
}

/* Scans an exactly sized copy of the image: items tile it, records verify. */
static void scan_copy(const wr_buf_t *f)
{
    uint8_t *p = malloc(f->len ? f->len : 1);
    wr_segment_header_t h;
    wr_segment_scan_t s;
    wr_segment_item_t it;
    wr_scan_kind_t k;
    uint32_t version;
    size_t pos = WR_SEGMENT_HEADER_SIZE;

    if (p == NULL)
        abort();
    if (f->len > 0)
        memcpy(p, f->data, f->len);
    if (wr_segment_header_decode(p, f->len, &h, &version) == WR_OK) {
        wr_segment_scan_init(&s, p, f->len, &h);
        while ((k = wr_segment_scan_next(&s, &it)) != WR_SCAN_END) {
            if (it.off != pos || it.size == 0 || it.size > f->len - it.off)
                abort();
            if (k == WR_SCAN_RECORD && (it.data != p + it.off + WR_SEGMENT_RECORD_HEADER ||
                                        it.size != (size_t)it.len + WR_SEGMENT_RECORD_HEADER ||
                                        !framed_in(f, it.index, it.data, it.len)))
                abort();
            pos += it.size;
        }
    }
    free(p);
}

/* One record of a script: flags, then its length and payload. */
static void script_record(run_t *r, input_t *in, wr_segment_header_t *h, uint64_t *index)
{
    uint8_t flags = take(in), len = take(in);
    wr_buf_t *f = &r->file[r->nfiles - 1];
    size_t at = f->len;

    if ((flags & 3) == 1 && *index > 0) {
        r->clean = false; /* the same index again */
    } else if ((flags & 3) == 2) {
        *index = h->first + take(in) % 16 - 4; /* anywhere near the segment's start */
        r->clean = false;
    } else {
        ++*index;
    }
    if (len > in->n)
        len = (uint8_t)in->n;
    wr_segment_record_encode(f, h->seed, *index, in->p, len);
    in->p += len;
    in->n -= len;
    r->records++;
    if (flags & 4) { /* one byte of it damaged */
        f->data[at + take(in) % (f->len - at)] ^= (uint8_t)(take(in) | 1);
        r->clean = false;
    }
}

/* A script: first (1..16), salt, then records; 0xff starts a new file and
 * 0xfe cuts the current one short. */
static void build(run_t *r, input_t *in)
{
    wr_segment_header_t h = {.first = 1 + take(in) % 16, .salt = take(in)};
    uint64_t index = h.first - 1;

    r->clean = true;
    r->nfiles = 1;
    wr_buf_reserve(&r->file[0], WR_SEGMENT_HEADER_SIZE);
    wr_segment_header_encode(r->file[0].data, &h);
    r->file[0].len = WR_SEGMENT_HEADER_SIZE;
    while (in->n > 0) {
        wr_buf_t *f = &r->file[r->nfiles - 1];

        if (in->p[0] == 0xff && r->nfiles < MAX_FILES) {
            take(in);
            h.first = index + 1;
            wr_buf_reserve(&r->file[r->nfiles], WR_SEGMENT_HEADER_SIZE);
            wr_segment_header_encode(r->file[r->nfiles].data, &h);
            r->file[r->nfiles++].len = WR_SEGMENT_HEADER_SIZE;
            r->clean = false;
        } else if (in->p[0] == 0xfe) {
            take(in);
            f->len -= take(in) % (f->len + 1);
            r->clean = false;
        } else {
            script_record(r, in, &h, &index);
        }
    }
}

static void write_files(const char *dir, run_t *r)
{
    char logs[4096];

    snprintf(logs, sizeof(logs), "%s/logs/q", dir);
    mkdir(logs, 0700);
    for (size_t i = 0; i < r->nfiles; i++) {
        char name[WR_SEGMENT_NAME_MAX];

        if (!wr_buf_ok(&r->file[i]))
            abort();
        wr_segment_name(name, i + 1);
        wr_fuzz_write(logs, name, r->file[i].data, r->file[i].len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data + (size > 0), size - (size > 0)};
    run_t r = {.in_order = true};
    char *dir = wr_fuzz_tmpdir(), err[512];
    wr_store_opts_t opts = {.segment_size = 4096};
    wr_seglog_cbs_t cbs = {.replay = on_replay, .ud = &r};
    wr_seglog_recovery_t rec;
    wr_store_t *s;
    wr_seglog_t *log;

    if (size > 0 && (data[0] & 1)) {
        build(&r, &in);
    } else {
        r.nfiles = 1;
        wr_buf_put(&r.file[0], in.p, in.n);
    }
    for (size_t i = 0; i < r.nfiles; i++)
        scan_copy(&r.file[i]);
    s = wr_store_open(dir, &opts, err, sizeof(err));
    if (s == NULL)
        abort();
    write_files(dir, &r);
    log = wr_seglog_open(s, "q", &cbs, &rec, err, sizeof(err));
    if (log != NULL && (!r.in_order || rec.records != r.replayed))
        abort();
    if (log != NULL && r.clean && r.replayed != r.records)
        abort(); /* nothing was damaged: everything comes back */
    wr_store_close(s);
    for (size_t i = 0; i < MAX_FILES; i++)
        wr_buf_free(&r.file[i]);
    wr_fuzz_rmtree(dir);
    return 0;
}
