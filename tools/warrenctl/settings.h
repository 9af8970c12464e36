/* SPDX-License-Identifier: MIT */
/*
 * Where warrenctl's connection settings come from: command-line flags, then
 * WARREN_* environment variables, then a node of the JSON config file, then
 * the defaults (localhost:15672, guest/guest); the password may also come
 * from a file or, on a terminal, a prompt without echo.
 */
#ifndef WR_CTL_SETTINGS_H
#define WR_CTL_SETTINGS_H

#include <stdio.h>

#include <jansson.h>

#include "tools/warrenctl/http.h"

typedef enum {
    WR_SET_HOST,
    WR_SET_PORT,
    WR_SET_USER,
    WR_SET_PASSWORD,
    WR_SET_PASSWORD_FILE,
    WR_SET_VHOST,
    WR_SET_HTTPS,
    WR_SET_CACERT,
    WR_SET_INSECURE,
    WR_SET_TIMEOUT,
    WR_SET_COUNT
} wr_setting_t;

typedef struct {
    const char *value[WR_SET_COUNT]; /* borrowed from argv, the environment or file */
    int layer[WR_SET_COUNT];         /* where each came from: 0 flag, 1 environment, 2 file */
    const char *config;              /* --config FILE */
    const char *node;                /* --node NAME */
    char *path;                      /* the config file read, or NULL */
    json_t *file;                    /* its JSON, owning its strings */
    char *password;                  /* read from --password-file or the prompt */
    char number[WR_SET_COUNT][24];   /* a number of the file as text */
} wr_settings_t;

/*
 * If argv[*i] is a connection flag (--host, --port, --user, --password,
 * --password-file, --vhost or -p, --https, --cacert, --insecure, --timeout,
 * --config, --node), stores it in cfg, moves *i past its value and returns
 * 1; returns 0 for any other word, and 2 after printing a usage error (a
 * value missing).
 */
int wr_settings_option(wr_settings_t *cfg, int argc, char **argv, int *i);
/*
 * Fills in what the flags left unset, from the environment, the config file
 * and the defaults, reads the password file or asks (stdin a terminal), and
 * checks the values; t and *vhost borrow cfg's strings. Returns 0, or 2
 * after printing one line "warrenctl: reason" to stderr.
 */
int wr_settings_resolve(wr_settings_t *cfg, wr_http_target_t *t, const char **vhost);
/* One line of stdin without its line end, malloc'd; on a terminal, after
 * prompt on stderr, with echo off. NULL at end of input or on an error. */
char *wr_settings_read_line(const char *prompt);
/* Frees what cfg owns (not cfg). */
void wr_settings_free(wr_settings_t *cfg);
/* The settings, environment variables and config keys, for --help. */
void wr_settings_help(FILE *out);

#endif
