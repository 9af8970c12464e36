/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/base/log.c's rate limit of repeated lines: the first
 * passes, the rest of the interval are counted, and the next line to pass
 * reports how many were not written.
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "broker/base/log.h"
#include "tests/unit/runner.h"

START_TEST(test_limit_counts_what_it_suppresses)
{
    wr_log_limit_t lim = {{0, 0}, 0};
    unsigned long more = 99;

    ck_assert(wr_log_limit_pass(&lim, 60000, &more));
    ck_assert_uint_eq(more, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(!wr_log_limit_pass(&lim, 60000, &more));
    /* Interval over (moved into the past): the next line passes with the count. */
    lim.next.tv_sec -= 61;
    ck_assert(wr_log_limit_pass(&lim, 60000, &more));
    ck_assert_uint_eq(more, 5);
    ck_assert(!wr_log_limit_pass(&lim, 60000, &more));
}
END_TEST

START_TEST(test_limit_interval_in_milliseconds)
{
    wr_log_limit_t lim = {{0, 0}, 0};
    struct timespec now;
    unsigned long more;

    ck_assert(wr_log_limit_pass(&lim, 1500, &more));
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* next is 1.5 s ahead: between 1 and 2 s from now, nanoseconds normalised. */
    ck_assert(lim.next.tv_nsec >= 0 && lim.next.tv_nsec < 1000000000);
    ck_assert(lim.next.tv_sec - now.tv_sec >= 1 && lim.next.tv_sec - now.tv_sec <= 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker-log");
    TCase *tc = tcase_create("log");

    tcase_add_test(tc, test_limit_counts_what_it_suppresses);
    tcase_add_test(tc, test_limit_interval_in_milliseconds);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
