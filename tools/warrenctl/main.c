/* SPDX-License-Identifier: MIT */
/*
 * warrenctl: the admin CLI. Takes the connection options (--host, --port,
 * --user, --password, --vhost or -p, --json) wherever they appear, then runs the
 * command the remaining words name (commands.c) against the management API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/warrenctl/commands.h"

#define DEFAULT_TIMEOUT_SEC 30

static const char *const value_options[] = {"--host", "--port", "--user", "--password", "--vhost", "-p"};

int main(int argc, char **argv)
{
    wr_ctl_t ctl = {{"127.0.0.1", "15672", "guest", "guest", DEFAULT_TIMEOUT_SEC}, NULL, false};
    /* -p is rabbitmqctl's --vhost. */
    const char **values[] = {&ctl.target.host,     &ctl.target.port, &ctl.target.user,
                             &ctl.target.password, &ctl.vhost,       &ctl.vhost};
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    bool help = false;
    int n = 0, rc;

    if (!rest) {
        fprintf(stderr, "warrenctl: out of memory\n");
        return WR_CTL_FAILED;
    }
    for (int i = 1; i < argc; i++) {
        size_t k;

        for (k = 0; k < sizeof(value_options) / sizeof(value_options[0]); k++) {
            if (strcmp(argv[i], value_options[k]) == 0)
                break;
        }
        if (k < sizeof(value_options) / sizeof(value_options[0])) {
            if (i + 1 == argc) {
                fprintf(stderr, "warrenctl: %s needs a value (see warrenctl --help)\n", argv[i]);
                free(rest);
                return WR_CTL_USAGE;
            }
            *values[k] = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            ctl.json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help = true;
        } else {
            rest[n++] = argv[i];
        }
    }
    rc = help ? wr_cmd_help(stdout, n, rest) : wr_cmd_run(&ctl, n, rest);
    free(rest);
    return rc;
}
