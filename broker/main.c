/* SPDX-License-Identifier: MIT */
/*
 * warrend: reads the configuration, creates the one server object, listens,
 * and runs the loop until SIGTERM/SIGINT. Exit status: 0 after a clean
 * shutdown, 1 when the server cannot start, 2 for usage or config errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "broker/config/config.h"
#include "broker/base/version.h"
#include "broker/mgmt/definitions.h"
#include "broker/base/log.h"
#include "broker/server.h"
#include "broker/amqp/tls.h"
#include "core/status.h"

#define DEFAULT_CONFIG "etc/warren.json"

static void usage(FILE *out)
{
    fprintf(out, "usage: warrend [--config FILE] [--check-config FILE] [--help] [--version]\n"
                 "\n"
                 "  --config FILE  configuration file (default: " DEFAULT_CONFIG ", relative to the\n"
                 "                 current directory)\n"
                 "  --check-config FILE\n"
                 "                 validate FILE, the environment overrides and the files it names,\n"
                 "                 then exit: 0 when valid, 2 with the problems on stderr\n"
                 "  --help         show this help and exit\n"
                 "  --version      show the version and exit\n");
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    char err[8192];
    wr_config_t *cfg;
    wr_tls_t *tls = NULL;
    wr_server_t *srv;
    bool check = false;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("warrend %s\n", WR_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "warrend: --config needs a FILE\n");
                return 2;
            }
            path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "warrend: --check-config needs a FILE\n");
                return 2;
            }
            path = argv[++i];
            check = true;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "warrend: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    cfg = wr_config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (wr_config_apply_env(cfg, err, sizeof(err)) != WR_OK) {
        fprintf(stderr, "%s\n", err);
        goto invalid;
    }
    if (cfg->load_definitions &&
        wr_definitions_check_file(cfg->load_definitions, err, sizeof(err)) != WR_OK) {
        fprintf(stderr, "%s: load_definitions: %s\n", path, err);
        goto invalid;
    }
    wr_log_set_level(cfg->log_level);
    /* Certificate and key problems are configuration errors, reported
     * before anything listens. */
    if ((cfg->ntls_listeners > 0 || cfg->management_tls) &&
        !(tls = wr_tls_new(&cfg->tls, err, sizeof(err)))) {
        fprintf(stderr, "%s: %s\n", path, err);
        goto invalid;
    }
    if (check) {
        printf("%s: configuration valid\n", path);
        wr_tls_free(tls);
        wr_config_free(cfg);
        return 0;
    }
    if (cfg->log_file && wr_log_set_file(cfg->log_file) != WR_OK) {
        fprintf(stderr, "%s: log.file: cannot open '%s': %s\n", path, cfg->log_file, strerror(errno));
        goto invalid;
    }
    /* A peer that vanishes must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    /* The server handles these while it runs (server.c); ignored until its
     * loop starts, and libevent restores these dispositions when it is
     * freed, so a signal during start-up or the final cleanup cannot turn
     * into a kill. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    wr_log_info("warrend %s starting with %s", WR_VERSION, path);
    srv = wr_server_new(cfg, tls);
    if (!srv)
        return 1;
    rc = wr_definitions_load(wr_server_mgmt_env(srv));
    if (rc == WR_OK)
        rc = wr_server_listen(srv);
    if (rc == WR_OK)
        rc = wr_server_run(srv);
    wr_server_free(srv);
    libevent_global_shutdown();
    if (rc != WR_OK)
        return 1;
    wr_log_info("warrend stopped");
    return 0;
invalid:
    wr_tls_free(tls);
    wr_config_free(cfg);
    return 2;
}
