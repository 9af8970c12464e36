/* SPDX-License-Identifier: MIT */
/*
 * warrenctl: the admin CLI. Takes the global options wherever they appear
 * (connection settings: settings.c; output: --format, --columns, --sort,
 * --filter), checks the command the remaining words name, resolves where to
 * connect, then runs the command (commands.c) against the management API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tools/warrenctl/commands.h"
#include "tools/warrenctl/settings.h"

static const char *const formats[] = {
    [WR_FORMAT_TABLE] = "table", [WR_FORMAT_CSV] = "csv", [WR_FORMAT_TSV] = "tsv", [WR_FORMAT_JSON] = "json"};

static int parse_format(wr_ctl_t *ctl, const char *name)
{
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        if (strcmp(name, formats[f]) == 0) {
            ctl->format = (wr_format_t)f;
            return WR_CTL_OK;
        }
    }
    fprintf(stderr, "warrenctl: --format must be table, csv, tsv or json, not '%s'\n", name);
    return WR_CTL_USAGE;
}

/* An output option at argv[*i]: 1 taken, 0 not one, WR_CTL_USAGE (2) after
 * printing why. */
static int view_option(wr_ctl_t *ctl, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], **value = strcmp(arg, "--columns") == 0  ? &ctl->view.columns
                                          : strcmp(arg, "--sort") == 0   ? &ctl->view.sort
                                          : strcmp(arg, "--filter") == 0 ? &ctl->view.filter
                                                                         : NULL;

    if (strcmp(arg, "--json") == 0)
        ctl->format = WR_FORMAT_JSON;
    else if (strcmp(arg, "--sort-reverse") == 0)
        ctl->view.reverse = true;
    else if (!value && strcmp(arg, "--format") != 0)
        return 0;
    else if (*i + 1 == argc)
        return fprintf(stderr, "warrenctl: %s needs a value (see warrenctl --help)\n", arg), WR_CTL_USAGE;
    else if (value)
        *value = argv[++*i];
    else if (parse_format(ctl, argv[++*i]) != WR_CTL_OK)
        return WR_CTL_USAGE;
    return 1;
}

static void print_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    printf("warrenctl %s (libcurl %s, %s)\n", WR_CTL_VERSION, v->version,
           v->ssl_version ? v->ssl_version : "no TLS");
}

/* Connects and runs the command in rest. */
static int run(wr_ctl_t *ctl, wr_settings_t *cfg, int n, char **rest)
{
    wr_http_target_t target;
    int rc = wr_cmd_check(ctl, n, rest);

    if (rc == WR_CTL_OK)
        rc = wr_settings_resolve(cfg, &target, &ctl->vhost);
    if (rc != WR_CTL_OK)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(ctl->http = wr_http_new(&target))) {
        fprintf(stderr, "warrenctl: cannot start libcurl\n");
        curl_global_cleanup();
        return WR_CTL_FAILED;
    }
    ctl->json = ctl->format == WR_FORMAT_JSON;
    rc = wr_cmd_run(ctl, n, rest);
    wr_http_free(ctl->http);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    wr_ctl_t ctl = {0};
    wr_settings_t cfg = {0};
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    bool help = false, version = false;
    int n = 0, rc = WR_CTL_OK;

    if (!rest) {
        fprintf(stderr, "warrenctl: out of memory\n");
        return WR_CTL_FAILED;
    }
    for (int i = 1; i < argc && rc == WR_CTL_OK; i++) {
        int taken = wr_settings_option(&cfg, argc, argv, &i);

        if (taken == 0)
            taken = view_option(&ctl, argc, argv, &i);
        if (taken == WR_CTL_USAGE)
            rc = WR_CTL_USAGE;
        else if (taken == 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0))
            help = true;
        else if (taken == 0 && strcmp(argv[i], "--version") == 0)
            version = true;
        else if (taken == 0)
            rest[n++] = argv[i];
    }
    if (rc == WR_CTL_OK && version)
        print_version();
    else if (rc == WR_CTL_OK)
        rc = help ? wr_cmd_help(stdout, n, rest) : run(&ctl, &cfg, n, rest);
    wr_settings_free(&cfg);
    free(rest);
    return rc;
}
