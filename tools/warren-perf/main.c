/* SPDX-License-Identifier: MIT */
/*
 * warren-perf: an asynchronous AMQP 0-9-1 load generator in the spirit of
 * RabbitMQ's PerfTest. It speaks only the wire protocol, so the same command
 * measures warren and RabbitMQ alike. See docs/PERFORMANCE.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "core/status.h"
#include "opts.h"
#include "report.h"
#include "run.h"

/* --connections-idle needs a descriptor per connection: take what the hard
 * limit allows rather than fail at the soft one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    wr_opts_t o;
    wr_run_t *r = NULL;
    int status = 1;
    int rc = wr_opts_parse(&o, argc, argv);
    if (rc != WR_OK) {
        status = rc == WR_EEXIST ? 0 : 2;
        goto out;
    }
    /* A broker that closes a socket mid-write must give an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    r = wr_run_new(&o);
    if (!r || wr_run_exec(r) != WR_OK)
        goto out;
    if (o.json) {
        if (wr_report_json(stdout, &o, wr_run_result(r)) != WR_OK) {
            fprintf(stderr, "warren-perf: cannot write the JSON report\n");
            goto out;
        }
    } else {
        wr_report_text(stdout, &o, wr_run_result(r));
    }
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    wr_run_free(r);
    wr_opts_free(&o);
    return status;
}
