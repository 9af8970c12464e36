/* SPDX-License-Identifier: MIT */
/*
 * The Raft core's classic traps, one transcript each in testdata/ (run by
 * scenario.c), plus the sizes the issue asks for.
 */
#include <check.h>
#include <stdio.h>

#include "cluster/raft.h"
#include "scenario.h"

static const char *const scenarios[] = {
    "figure8.txt",         "vote_persistence.txt",    "prevote_partial_partition.txt",
    "stale_leader.txt",    "slow_follower.txt",       "conflict_backoff.txt",
    "leader_transfer.txt", "membership_deferred.txt", "remove_leader.txt",
};

START_TEST(scenario)
{
    char path[512], err[512] = "";

    snprintf(path, sizeof(path), "%s/%s", TESTDATA, scenarios[_i]);
    if (scn_run(path, err, sizeof(err)) != 0)
        ck_abort_msg("%s", err);
}
END_TEST

START_TEST(small_per_group)
{
    /* 10,000 groups on a node: the fixed part must stay well under a kilobyte. */
    ck_assert_uint_lt(wr_raft_sizeof(), 1024);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft");
    TCase *tc = tcase_create("scenarios");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, scenario, 0, (int)(sizeof(scenarios) / sizeof(scenarios[0])));
    tcase_add_test(tc, small_per_group);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
