/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's subcommands (list, declare, delete, set, purge, publish,
 * get, close, export, import, overview, alarms, cluster) over the management HTTP
 * API, vhosts, users, permissions and policies included, and their help
 * texts.
 */
#ifndef WR_CTL_COMMANDS_H
#define WR_CTL_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "tools/warrenctl/http.h"
#include "tools/warrenctl/output.h"

/* Exit statuses. */
enum { WR_CTL_OK = 0, WR_CTL_FAILED = 1, WR_CTL_USAGE = 2 };

typedef struct {
    wr_http_t *http;
    const char *vhost;  /* --vhost, or NULL: "/" for changes, every vhost for lists */
    wr_format_t format; /* --format, --json */
    bool json;          /* format is JSON: print the API's JSON, no "done" lines */
    wr_view_t view;     /* --columns, --sort, --sort-reverse, --filter */
} wr_ctl_t;

/*
 * Checks the command in argv (the global options removed) and whether
 * ctl's view and format options apply to it, without running it. WR_CTL_OK, or WR_CTL_USAGE
 * after printing one line "warrenctl: reason" to stderr.
 */
int wr_cmd_check(const wr_ctl_t *ctl, int argc, char **argv);
/*
 * Runs the command in argv (the global options removed): prints its result
 * to stdout, or one line "warrenctl: reason" to stderr. Returns the exit
 * status.
 */
int wr_cmd_run(const wr_ctl_t *ctl, int argc, char **argv);
/* Prints the help of the command in argv (the overview when argc is 0).
 * Returns WR_CTL_OK, or WR_CTL_USAGE for an unknown command. */
int wr_cmd_help(FILE *out, int argc, char **argv);

#endif
