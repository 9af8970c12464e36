/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the node-report codec (broker/cluster/reports.c): a round
 * trip of every field, and each malformed body with the status it must give.
 */
#include <check.h>
#include <string.h>

#include "broker/cluster/reports.h"
#include "core/status.h"
#include "tests/unit/runner.h"

static wr_report_t sample(void)
{
    wr_report_t r = {.mem_alarm = true,
                     .mem_used = 1,
                     .mem_limit = 2,
                     .disk_free = 3,
                     .disk_limit = 4,
                     .fd_used = 5,
                     .fd_total = 6,
                     .sockets_used = 7,
                     .sockets_total = 8,
                     .uptime_ms = 9,
                     .os_pid = UINT64_MAX,
                     .processors = 16,
                     .n_up = 2};

    r.up[0] = WR_BYTES_LIT("n2");
    r.up[1] = WR_BYTES_LIT("a-much-longer-node-name");
    return r;
}

START_TEST(round_trip)
{
    wr_report_t in = sample(), out;
    wr_buf_t b = WR_BUF_INIT;

    wr_report_put(&b, &in);
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){b.data, b.len}, &out), WR_OK);
    ck_assert(out.mem_alarm && !out.disk_alarm);
    ck_assert_uint_eq(out.mem_used, 1);
    ck_assert_uint_eq(out.disk_limit, 4);
    ck_assert_uint_eq(out.sockets_total, 8);
    ck_assert_uint_eq(out.os_pid, UINT64_MAX);
    ck_assert_uint_eq(out.processors, 16);
    ck_assert_uint_eq(out.n_up, 2);
    ck_assert(wr_bytes_eq_str(out.up[0], "n2"));
    ck_assert(wr_bytes_eq_str(out.up[1], "a-much-longer-node-name"));
    wr_buf_free(&b);
}
END_TEST

START_TEST(malformed)
{
    wr_report_t in = sample(), out;
    wr_buf_t b = WR_BUF_INIT;
    uint8_t copy[256];

    wr_report_put(&b, &in);
    ck_assert_uint_le(b.len + 1, sizeof(copy));
    memcpy(copy, b.data, b.len);
    /* Every truncation. */
    for (size_t n = 0; n < b.len; n++)
        ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, n}, &out), WR_ESYNTAX);
    /* A trailing byte. */
    copy[b.len] = 0;
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, b.len + 1}, &out), WR_ESYNTAX);
    /* Another version. */
    copy[0] = 2;
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, b.len}, &out), WR_EUNKNOWN);
    copy[0] = 1;
    /* Unknown flags. */
    copy[1] = 4;
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, b.len}, &out), WR_ESYNTAX);
    copy[1] = 1;
    /* An empty name: the first name's length byte follows the count. */
    copy[2 + 80 + 4 + 1] = 0;
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, b.len}, &out), WR_ESYNTAX);
    /* More names than a report may carry. */
    copy[2 + 80 + 4] = WR_REPORT_MAX_UP + 1;
    ck_assert_int_eq(wr_report_decode((wr_bytes_t){copy, b.len}, &out), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

static Suite *reports_suite(void)
{
    Suite *s = suite_create("cluster-reports");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(reports_suite());
}
