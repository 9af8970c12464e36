/* SPDX-License-Identifier: MIT */
/*
 * The on-disk format of one segment file: a 40-byte header (magic, format
 * version, the log index the segment started at, a random salt, CRC) followed
 * by records framed as length + CRC32C + index + payload. Pure functions, no
 * I/O: the log writes what these encode and recovery scans what they decode.
 */
#ifndef WR_STORAGE_SEGMENT_H
#define WR_STORAGE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/buf.h"

#define WR_SEGMENT_HEADER_SIZE   40
#define WR_SEGMENT_RECORD_HEADER 16
#define WR_SEGMENT_VERSION       1
/* Largest payload of one record; keeps every offset in a segment within 32 bits. */
#define WR_SEGMENT_MAX_RECORD (1u << 30)
/* "00000000000000a3.seg" plus NUL, and the longest name recovery reads. */
#define WR_SEGMENT_NAME_MAX 32

typedef struct {
    uint64_t first; /* next log index when the segment was created; lower indexes in it are copies */
    uint64_t salt;  /* random per file, so records of a deleted file never verify in a new one */
    uint32_t seed;  /* the header's CRC, which seeds every record CRC in this file */
} wr_segment_header_t;

/*
 * Writes the header for (h->first, h->salt) into out and sets h->seed.
 */
void wr_segment_header_encode(uint8_t out[WR_SEGMENT_HEADER_SIZE], wr_segment_header_t *h);

/*
 * Reads a header from p[0..n). WR_OK fills *h; WR_AGAIN: n is shorter than a
 * header; WR_ESYNTAX: wrong magic or CRC; WR_EUNKNOWN: a valid header of a
 * format version this build does not read, stored in *version.
 */
int wr_segment_header_decode(const uint8_t *p, size_t n, wr_segment_header_t *h, uint32_t *version);

/* Appends one framed record to b (sticky-oom: check wr_buf_ok). len <= WR_SEGMENT_MAX_RECORD. */
void wr_segment_record_encode(wr_buf_t *b, uint32_t seed, uint64_t index, const void *data, size_t len);
/* The same for a payload gathered from iovcnt pieces (their total <= WR_SEGMENT_MAX_RECORD). */
void wr_segment_record_encodev(wr_buf_t *b, uint32_t seed, uint64_t index, const struct iovec *iov,
                               int iovcnt);

/*
 * Reads a record header: WR_OK with *len and *index set, or WR_ESYNTAX when
 * the length is over the limit or the index is 0 or above max_index.
 */
int wr_segment_record_head(const uint8_t h[WR_SEGMENT_RECORD_HEADER], uint64_t max_index, uint32_t *len,
                           uint64_t *index);

/* True if header h and its payload carry the CRC they claim under this seed. */
bool wr_segment_record_crc_ok(const uint8_t h[WR_SEGMENT_RECORD_HEADER], const uint8_t *payload,
                              uint32_t seed);

/* One scanned item: a valid record, or a run of bytes that holds none. */
typedef struct {
    size_t off;          /* where it starts in the file */
    size_t size;         /* bytes it spans; for a record, header + payload */
    uint64_t index;      /* records only */
    const uint8_t *data; /* records only: the payload, pointing into the scanned bytes */
    uint32_t len;        /* records only */
} wr_segment_item_t;

typedef enum { WR_SCAN_END = 0, WR_SCAN_RECORD, WR_SCAN_BAD } wr_scan_kind_t;

typedef struct {
    const uint8_t *p;
    size_t n;
    size_t pos;
    uint32_t seed;
    uint64_t max_index;
} wr_segment_scan_t;

/*
 * Scans the records of a whole file image p[0..n) whose header decoded to h.
 * Records are trusted only if their CRC verifies and their index is at most
 * h->first + n / WR_SEGMENT_RECORD_HEADER (no segment can hold more natives).
 */
void wr_segment_scan_init(wr_segment_scan_t *s, const uint8_t *p, size_t n, const wr_segment_header_t *h);

/*
 * The next item. After a bad byte the scanner searches forward, byte by byte,
 * for the next record that verifies, so one corrupt record costs only itself:
 * WR_SCAN_BAD reports the unreadable run, and a run that reaches the end of
 * the file (off + size == n) is a torn tail. Zeros from a point to the end of
 * the file are space written ahead of the records (storage/sync.c): the scan
 * ends there and n becomes that point. WR_SCAN_END when done.
 */
wr_scan_kind_t wr_segment_scan_next(wr_segment_scan_t *s, wr_segment_item_t *it);

/* True when p[0..n) is all zero bytes: space written ahead, which no record can be. */
bool wr_segment_all_zero(const uint8_t *p, size_t n);

/* "%016x.seg" for seq into out. */
void wr_segment_name(char out[WR_SEGMENT_NAME_MAX], uint64_t seq);

/*
 * Parses a directory entry: true for "<16 hex>.seg" (*set_aside false) and
 * "<16 hex>.seg.corrupt" (*set_aside true), with the sequence number in *seq.
 */
bool wr_segment_name_parse(const char *name, uint64_t *seq, bool *set_aside);

#endif
