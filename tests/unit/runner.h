/* SPDX-License-Identifier: MIT */
/*
 * The one main() tail every check-based unit test shares: runs a suite and
 * turns its failures into the exit status meson reads.
 */
#ifndef WR_TESTS_UNIT_RUNNER_H
#define WR_TESTS_UNIT_RUNNER_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s (taking ownership of it); EXIT_SUCCESS when none failed. */
static inline int wr_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
