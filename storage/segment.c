/* SPDX-License-Identifier: MIT */
/*
 * Segment header and record framing, little-endian on disk. A record's CRC
 * covers its length, its index and its payload, seeded with the segment
 * header's CRC: a stale record left in a reused disk block by another file
 * fails the check here even though it verified where it was written.
 */
#include "storage/segment.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "core/crc32c.h"

static const uint8_t magic[8] = {'W', 'R', 'L', 'O', 'G', 'S', 'E', 'G'};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Header layout: magic[8] version[4] reserved[4] first[8] salt[8] crc[4] reserved[4]. */
void wr_segment_header_encode(uint8_t out[WR_SEGMENT_HEADER_SIZE], wr_segment_header_t *h)
{
    memset(out, 0, WR_SEGMENT_HEADER_SIZE);
    memcpy(out, magic, sizeof(magic));
    put32(out + 8, WR_SEGMENT_VERSION);
    put64(out + 16, h->first);
    put64(out + 24, h->salt);
    h->seed = wr_crc32c_update(0, out, 32);
    put32(out + 32, h->seed);
}

int wr_segment_header_decode(const uint8_t *p, size_t n, wr_segment_header_t *h, uint32_t *version)
{
    if (n < WR_SEGMENT_HEADER_SIZE)
        return WR_AGAIN;
    if (memcmp(p, magic, sizeof(magic)) != 0 || wr_crc32c_update(0, p, 32) != get32(p + 32))
        return WR_ESYNTAX;
    *version = get32(p + 8);
    if (*version != WR_SEGMENT_VERSION)
        return WR_EUNKNOWN;
    h->first = get64(p + 16);
    h->salt = get64(p + 24);
    h->seed = get32(p + 32);
    return WR_OK;
}

/* Record layout: len[4] crc[4] index[8] payload[len]; crc over len, index, payload. */
static uint32_t record_crc(const uint8_t *h, const uint8_t *payload, uint32_t len, uint32_t seed)
{
    uint32_t c = wr_crc32c_update(seed, h, 4);
    c = wr_crc32c_update(c, h + 8, 8);
    return wr_crc32c_update(c, payload, len);
}

void wr_segment_record_encode(wr_buf_t *b, uint32_t seed, uint64_t index, const void *data, size_t len)
{
    struct iovec iov = {(void *)data, len};

    wr_segment_record_encodev(b, seed, index, &iov, 1);
}

void wr_segment_record_encodev(wr_buf_t *b, uint32_t seed, uint64_t index, const struct iovec *iov,
                               int iovcnt)
{
    uint8_t h[WR_SEGMENT_RECORD_HEADER];
    size_t len = 0;
    uint32_t c;

    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    put32(h, (uint32_t)len);
    put64(h + 8, index);
    c = wr_crc32c_update(seed, h, 4);
    c = wr_crc32c_update(c, h + 8, 8);
    for (int i = 0; i < iovcnt; i++)
        c = wr_crc32c_update(c, iov[i].iov_base, iov[i].iov_len);
    put32(h + 4, c);
    if (!wr_buf_reserve(b, sizeof(h) + len))
        return;
    wr_buf_put(b, h, sizeof(h));
    for (int i = 0; i < iovcnt; i++)
        wr_buf_put(b, iov[i].iov_base, iov[i].iov_len);
}

int wr_segment_record_head(const uint8_t h[WR_SEGMENT_RECORD_HEADER], uint64_t max_index, uint32_t *len,
                           uint64_t *index)
{
    *len = get32(h);
    *index = get64(h + 8);
    if (*len > WR_SEGMENT_MAX_RECORD || *index == 0 || *index > max_index)
        return WR_ESYNTAX;
    return WR_OK;
}

bool wr_segment_record_crc_ok(const uint8_t h[WR_SEGMENT_RECORD_HEADER], const uint8_t *payload,
                              uint32_t seed)
{
    return record_crc(h, payload, get32(h), seed) == get32(h + 4);
}

void wr_segment_scan_init(wr_segment_scan_t *s, const uint8_t *p, size_t n, const wr_segment_header_t *h)
{
    s->p = p;
    s->n = n;
    s->pos = WR_SEGMENT_HEADER_SIZE;
    s->seed = h->seed;
    s->max_index = h->first + n / WR_SEGMENT_RECORD_HEADER;
}

/* A verified record at off, or false. Size checks are written as `x <= end - pos`. */
static bool record_at(const wr_segment_scan_t *s, size_t off, wr_segment_item_t *it)
{
    const uint8_t *h = s->p + off;
    uint32_t len;
    uint64_t index;

    if (WR_SEGMENT_RECORD_HEADER > s->n - off)
        return false;
    if (wr_segment_record_head(h, s->max_index, &len, &index) != WR_OK)
        return false;
    if (len > s->n - off - WR_SEGMENT_RECORD_HEADER)
        return false;
    if (!wr_segment_record_crc_ok(h, h + WR_SEGMENT_RECORD_HEADER, s->seed))
        return false;
    it->off = off;
    it->size = WR_SEGMENT_RECORD_HEADER + (size_t)len;
    it->index = index;
    it->data = h + WR_SEGMENT_RECORD_HEADER;
    it->len = len;
    return true;
}

bool wr_segment_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

wr_scan_kind_t wr_segment_scan_next(wr_segment_scan_t *s, wr_segment_item_t *it)
{
    size_t bad;

    if (s->pos >= s->n)
        return WR_SCAN_END;
    if (record_at(s, s->pos, it)) {
        s->pos += it->size;
        return WR_SCAN_RECORD;
    }
    /* No record is all zeros (indexes start at 1): this is space written ahead. */
    if (wr_segment_all_zero(s->p + s->pos, s->n - s->pos)) {
        s->n = s->pos;
        return WR_SCAN_END;
    }
    /* Resynchronise: the next offset at which a record verifies ends the bad run. */
    bad = s->pos;
    for (s->pos = bad + 1; s->pos < s->n; s->pos++) {
        wr_segment_item_t probe;
        if (record_at(s, s->pos, &probe))
            break;
    }
    it->off = bad;
    it->size = s->pos - bad;
    it->index = 0;
    it->data = NULL;
    it->len = 0;
    return WR_SCAN_BAD;
}

void wr_segment_name(char out[WR_SEGMENT_NAME_MAX], uint64_t seq)
{
    snprintf(out, WR_SEGMENT_NAME_MAX, "%016" PRIx64 ".seg", seq);
}

bool wr_segment_name_parse(const char *name, uint64_t *seq, bool *set_aside)
{
    uint64_t v = 0;

    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return false;
        v = v << 4 | (uint64_t)d;
    }
    if (strcmp(name + 16, ".seg") == 0)
        *set_aside = false;
    else if (strcmp(name + 16, ".seg.corrupt") == 0)
        *set_aside = true;
    else
        return false;
    *seq = v;
    return true;
}
