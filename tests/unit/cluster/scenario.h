/* SPDX-License-Identifier: MIT */
/*
 * A small scenario runner for the Raft core: reads a transcript of commands
 * (elections, partitions, crashes, proposals) and assertions from
 * the files in testdata/ and runs it against real wr_raft_t members with an
 * in-memory network and disk. testdata/README lists the commands.
 */
#ifndef WR_TEST_CLUSTER_SCENARIO_H
#define WR_TEST_CLUSTER_SCENARIO_H

#include <stddef.h>

/*
 * Runs the scenario in path. Returns 0 when every assertion held; otherwise
 * writes "file:line: why" into err (of size len) and returns -1.
 */
int scn_run(const char *path, char *err, size_t len);

#endif
