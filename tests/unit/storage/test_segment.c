/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/segment.c: header and record framing round trips,
 * a flipped bit anywhere in a record is caught and costs only that record,
 * records framed for another file never verify, version refusal, file names.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"
#include "core/crc32c.h"
#include "storage/segment.h"
#include "tests/unit/runner.h"

/* A file image: a header for (first, salt) and the given records. */
static wr_segment_header_t image(wr_buf_t *b, uint64_t first, uint64_t salt, const size_t *lens, size_t n,
                                 size_t *offs)
{
    uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
    wr_segment_header_t h = {first, salt, 0};
    uint8_t payload[5000];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    wr_segment_header_encode(hdr, &h);
    wr_buf_put(b, hdr, sizeof(hdr));
    for (size_t i = 0; i < n; i++) {
        offs[i] = b->len;
        wr_segment_record_encode(b, h.seed, first + i, payload, lens[i]);
    }
    ck_assert(wr_buf_ok(b));
    return h;
}

START_TEST(header_round_trip)
{
    uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
    wr_segment_header_t h = {77, 0x1122334455667788ull, 0}, got;
    uint32_t version;

    wr_segment_header_encode(hdr, &h);
    ck_assert_mem_eq(hdr, "WRLOGSEG", 8);
    ck_assert_int_eq(wr_segment_header_decode(hdr, sizeof(hdr), &got, &version), WR_OK);
    ck_assert_uint_eq(got.first, 77);
    ck_assert_uint_eq(got.salt, 0x1122334455667788ull);
    ck_assert_uint_eq(got.seed, h.seed);
    ck_assert_int_eq(wr_segment_header_decode(hdr, sizeof(hdr) - 1, &got, &version), WR_AGAIN);
    for (size_t bit = 0; bit < 36 * 8; bit++) {
        hdr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (wr_segment_header_decode(hdr, sizeof(hdr), &got, &version) != WR_ESYNTAX)
            ck_abort_msg("flipped header bit %zu not detected", bit);
        hdr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}
END_TEST

START_TEST(header_future_version_refused)
{
    uint8_t hdr[WR_SEGMENT_HEADER_SIZE];
    wr_segment_header_t h = {1, 2, 0}, got;
    uint32_t version = 0, crc;

    wr_segment_header_encode(hdr, &h);
    hdr[8] = 2; /* version 2, with a CRC that matches, as a future build would write */
    crc = wr_crc32c_update(0, hdr, 32);
    memcpy(hdr + 32, &crc, 4); /* little-endian host, as on disk */
    ck_assert_int_eq(wr_segment_header_decode(hdr, sizeof(hdr), &got, &version), WR_EUNKNOWN);
    ck_assert_uint_eq(version, 2);
}
END_TEST

START_TEST(record_round_trip)
{
    const size_t lens[] = {0, 1, 15, 16, 17, 100, 4999, 3};
    size_t n = sizeof(lens) / sizeof(lens[0]), offs[8];
    wr_buf_t b = WR_BUF_INIT;
    wr_segment_header_t h = image(&b, 500, 9, lens, n, offs);
    wr_segment_scan_t sc;
    wr_segment_item_t it;

    wr_segment_scan_init(&sc, b.data, b.len, &h);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_RECORD);
        ck_assert_uint_eq(it.index, 500 + i);
        ck_assert_uint_eq(it.off, offs[i]);
        ck_assert_uint_eq(it.len, lens[i]);
        ck_assert_uint_eq(it.size, WR_SEGMENT_RECORD_HEADER + lens[i]);
        for (size_t k = 0; k < lens[i]; k++)
            ck_assert_uint_eq(it.data[k], (uint8_t)(k * 31 + 7));
    }
    ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_END);
    wr_buf_free(&b);
}
END_TEST

/* Flips each bit of the middle record: the scan loses exactly that record and resumes at the next. */
START_TEST(crc_catches_every_bit)
{
    const size_t lens[] = {20, 37, 20};
    size_t offs[3];
    wr_buf_t b = WR_BUF_INIT;
    wr_segment_header_t h = image(&b, 1, 3, lens, 3, offs);
    size_t rec = WR_SEGMENT_RECORD_HEADER + lens[1];

    for (size_t bit = 0; bit < rec * 8; bit++) {
        wr_segment_scan_t sc;
        wr_segment_item_t it;
        uint8_t *p = b.data + offs[1] + bit / 8;

        *p ^= (uint8_t)(1u << (bit % 8));
        wr_segment_scan_init(&sc, b.data, b.len, &h);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_RECORD);
        ck_assert_uint_eq(it.index, 1);
        if (wr_segment_scan_next(&sc, &it) != WR_SCAN_BAD)
            ck_abort_msg("flipped bit %zu of the record went unnoticed", bit);
        ck_assert_uint_eq(it.off, offs[1]);
        ck_assert_uint_eq(it.size, rec);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_RECORD);
        ck_assert_uint_eq(it.index, 3);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_END);
        *p ^= (uint8_t)(1u << (bit % 8));
    }
    wr_buf_free(&b);
}
END_TEST

START_TEST(torn_tail_is_a_bad_run_to_the_end)
{
    const size_t lens[] = {30, 30};
    size_t offs[2];
    wr_buf_t b = WR_BUF_INIT;
    wr_segment_header_t h = image(&b, 1, 3, lens, 2, offs);

    for (size_t cut = offs[1] + 1; cut < b.len; cut++) {
        wr_segment_scan_t sc;
        wr_segment_item_t it;
        wr_segment_scan_init(&sc, b.data, cut, &h);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_RECORD);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_BAD);
        ck_assert_uint_eq(it.off, offs[1]);
        ck_assert_uint_eq(it.off + it.size, cut);
        ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_END);
    }
    wr_buf_free(&b);
}
END_TEST

/* Records of another file (another salt, so another seed) never verify, even at the right index. */
START_TEST(records_of_another_file_rejected)
{
    const size_t lens[] = {10, 10};
    size_t offs[2];
    wr_buf_t old = WR_BUF_INIT, cur = WR_BUF_INIT;
    wr_segment_header_t h;
    wr_segment_scan_t sc;
    wr_segment_item_t it;

    image(&old, 1, 111, lens, 2, offs);
    h = image(&cur, 1, 222, lens, 0, offs);
    wr_buf_put(&cur, old.data + WR_SEGMENT_HEADER_SIZE, old.len - WR_SEGMENT_HEADER_SIZE);
    wr_segment_scan_init(&sc, cur.data, cur.len, &h);
    ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_BAD);
    ck_assert_uint_eq(it.off + it.size, cur.len);
    ck_assert_int_eq(wr_segment_scan_next(&sc, &it), WR_SCAN_END);
    wr_buf_free(&old);
    wr_buf_free(&cur);
}
END_TEST

START_TEST(record_head_limits)
{
    uint8_t h[WR_SEGMENT_RECORD_HEADER] = {0};
    uint32_t len;
    uint64_t index;

    ck_assert_int_eq(wr_segment_record_head(h, 100, &len, &index), WR_ESYNTAX); /* index 0 */
    h[8] = 100;
    ck_assert_int_eq(wr_segment_record_head(h, 100, &len, &index), WR_OK);
    ck_assert_int_eq(wr_segment_record_head(h, 99, &len, &index), WR_ESYNTAX);
    h[3] = 0x40; /* length 1 GiB + 0: still allowed */
    ck_assert_int_eq(wr_segment_record_head(h, 100, &len, &index), WR_OK);
    h[0] = 1; /* 1 GiB + 1 */
    ck_assert_int_eq(wr_segment_record_head(h, 100, &len, &index), WR_ESYNTAX);
}
END_TEST

START_TEST(names)
{
    char name[WR_SEGMENT_NAME_MAX];
    uint64_t seq;
    bool aside;

    wr_segment_name(name, 0xa3);
    ck_assert_str_eq(name, "00000000000000a3.seg");
    ck_assert(wr_segment_name_parse(name, &seq, &aside));
    ck_assert_uint_eq(seq, 0xa3);
    ck_assert(!aside);
    ck_assert(wr_segment_name_parse("ffffffffffffffff.seg.corrupt", &seq, &aside));
    ck_assert_uint_eq(seq, UINT64_MAX);
    ck_assert(aside);
    ck_assert(!wr_segment_name_parse("00000000000000a3.seg.tmp", &seq, &aside));
    ck_assert(!wr_segment_name_parse("00000000000000A3.seg", &seq, &aside));
    ck_assert(!wr_segment_name_parse("a3.seg", &seq, &aside));
    ck_assert(!wr_segment_name_parse("FRONT", &seq, &aside));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage-segment");
    TCase *tc = tcase_create("segment");

    tcase_add_test(tc, header_round_trip);
    tcase_add_test(tc, header_future_version_refused);
    tcase_add_test(tc, record_round_trip);
    tcase_add_test(tc, crc_catches_every_bit);
    tcase_add_test(tc, torn_tail_is_a_bad_run_to_the_end);
    tcase_add_test(tc, records_of_another_file_rejected);
    tcase_add_test(tc, record_head_limits);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
