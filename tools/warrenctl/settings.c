/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's settings (settings.h), one table row each: its flag, its
 * environment variable and its config file key. Each layer only fills what
 * the ones above left unset, so a flag beats WARREN_PORT, which beats the
 * file, which beats the default.
 */
#include "tools/warrenctl/settings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

typedef enum { KIND_STRING, KIND_NUMBER, KIND_BOOL } kind_t;

static const struct {
    const char *flag, *alias, *env, *key;
    kind_t kind;
    const char *fallback; /* the default, or NULL */
} settings[WR_SET_COUNT] = {
    [WR_SET_HOST] = {"--host", NULL, "WARREN_HOST", "host", KIND_STRING, "localhost"},
    [WR_SET_PORT] = {"--port", NULL, "WARREN_PORT", "port", KIND_NUMBER, "15672"},
    [WR_SET_USER] = {"--user", NULL, "WARREN_USER", "user", KIND_STRING, NULL},
    [WR_SET_PASSWORD] = {"--password", NULL, "WARREN_PASSWORD", "password", KIND_STRING, NULL},
    [WR_SET_PASSWORD_FILE] = {"--password-file", NULL, "WARREN_PASSWORD_FILE", "password_file", KIND_STRING,
                              NULL},
    [WR_SET_VHOST] = {"--vhost", "-p", "WARREN_VHOST", "vhost", KIND_STRING, NULL},
    [WR_SET_HTTPS] = {"--https", NULL, "WARREN_HTTPS", "https", KIND_BOOL, "false"},
    [WR_SET_CACERT] = {"--cacert", NULL, "WARREN_CACERT", "cacert", KIND_STRING, NULL},
    /* Not from the environment: an exported WARREN_INSECURE would outlive its reason. */
    [WR_SET_INSECURE] = {"--insecure", NULL, NULL, "insecure", KIND_BOOL, "false"},
    [WR_SET_TIMEOUT] = {"--timeout", NULL, "WARREN_TIMEOUT", "timeout", KIND_NUMBER, "30"},
};

enum { LAYER_FLAG, LAYER_ENV, LAYER_FILE, LAYER_DEFAULT };

/* Prints "warrenctl: " and the message as one line; returns 2 (usage). */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("warrenctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static void set(wr_settings_t *cfg, int k, const char *v, int layer)
{
    if (!cfg->value[k]) {
        cfg->value[k] = v;
        cfg->layer[k] = layer;
    }
}

int wr_settings_option(wr_settings_t *cfg, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], **target = NULL;
    int k;

    for (k = 0; k < WR_SET_COUNT; k++) {
        if (strcmp(arg, settings[k].flag) == 0 || (settings[k].alias && strcmp(arg, settings[k].alias) == 0))
            break;
    }
    if (k < WR_SET_COUNT && settings[k].kind == KIND_BOOL) {
        cfg->value[k] = "true";
        cfg->layer[k] = LAYER_FLAG;
        return 1;
    }
    if (k < WR_SET_COUNT)
        target = &cfg->value[k];
    else if (strcmp(arg, "--config") == 0)
        target = &cfg->config;
    else if (strcmp(arg, "--node") == 0)
        target = &cfg->node;
    if (!target)
        return 0;
    if (*i + 1 == argc)
        return fail("%s needs a value (see warrenctl --help)", arg);
    *target = argv[++*i];
    if (k < WR_SET_COUNT)
        cfg->layer[k] = LAYER_FLAG;
    return 1;
}

static void from_env(wr_settings_t *cfg)
{
    for (int k = 0; k < WR_SET_COUNT; k++) {
        const char *v = settings[k].env ? getenv(settings[k].env) : NULL;

        if (v && v[0])
            set(cfg, k, v, LAYER_ENV);
    }
}

/* The value of one config key as the text of its setting; NULL if mistyped. */
static const char *file_value(wr_settings_t *cfg, int k, const json_t *v)
{
    if (settings[k].kind == KIND_BOOL && json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (settings[k].kind == KIND_NUMBER && json_is_integer(v)) {
        snprintf(cfg->number[k], sizeof(cfg->number[k]), "%lld", (long long)json_integer_value(v));
        return cfg->number[k];
    }
    return settings[k].kind != KIND_BOOL && json_is_string(v) ? json_string_value(v) : NULL;
}

static int from_node(wr_settings_t *cfg, const char *node, const json_t *obj)
{
    const char *key;
    const json_t *v;

    if (!json_is_object(obj))
        return fail("%s: node '%s' is not an object", cfg->path, node);
    json_object_foreach((json_t *)obj, key, v)
    {
        int k = 0;

        while (k < WR_SET_COUNT && strcmp(settings[k].key, key) != 0)
            k++;
        if (k == WR_SET_COUNT)
            return fail("%s: node '%s': unknown key '%s'", cfg->path, node, key);
        if (!file_value(cfg, k, v))
            return fail("%s: node '%s': '%s' must be %s", cfg->path, node, key,
                        settings[k].kind == KIND_BOOL     ? "true or false"
                        : settings[k].kind == KIND_NUMBER ? "an integer"
                                                          : "a string");
        set(cfg, k, file_value(cfg, k, v), LAYER_FILE);
    }
    return 0;
}

/* The config file's path: --config, WARREN_CONFIG or the per-user default;
 * *required unless it is the default. NULL on ENOMEM or without a home. */
static char *file_path(const wr_settings_t *cfg, bool *required)
{
    const char *env = getenv("WARREN_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *path = NULL;

    *required = cfg->config || (env && env[0]);
    if (*required)
        return strdup(cfg->config ? cfg->config : env);
    if (xdg && xdg[0] && asprintf(&path, "%s/warren/warrenctl.json", xdg) < 0)
        path = NULL;
    else if (!(xdg && xdg[0]) && home && home[0] &&
             asprintf(&path, "%s/.config/warren/warrenctl.json", home) < 0)
        path = NULL;
    return path;
}

static int from_file(wr_settings_t *cfg)
{
    const char *env_node = getenv("WARREN_NODE");
    const char *node = cfg->node ? cfg->node : env_node && env_node[0] ? env_node : NULL;
    json_error_t jerr;
    bool required;

    cfg->path = file_path(cfg, &required);
    if (!cfg->path || (!required && access(cfg->path, F_OK) != 0)) {
        if (node)
            return fail("--node %s: no config file (%s)", node, cfg->path ? cfg->path : "no home directory");
        return 0;
    }
    cfg->file = json_load_file(cfg->path, 0, &jerr);
    if (!cfg->file && jerr.line > 0)
        return fail("%s: line %d: %s", cfg->path, jerr.line, jerr.text);
    if (!cfg->file)
        return fail("cannot read %s: %s", cfg->path, strerror(errno));
    if (!json_is_object(cfg->file))
        return fail("%s: not a JSON object of nodes", cfg->path);
    if (node && !json_object_get(cfg->file, node))
        return fail("no node '%s' in %s", node, cfg->path);
    if (!node && !json_object_get(cfg->file, "default"))
        return 0;
    return from_node(cfg, node ? node : "default", json_object_get(cfg->file, node ? node : "default"));
}

/* Where setting k came from, for error messages. */
static void origin(const wr_settings_t *cfg, int k, char *out, size_t len)
{
    if (cfg->layer[k] == LAYER_FLAG)
        snprintf(out, len, "%s", settings[k].flag);
    else if (cfg->layer[k] == LAYER_ENV)
        snprintf(out, len, "%s", settings[k].env);
    else if (cfg->layer[k] == LAYER_FILE)
        snprintf(out, len, "\"%s\" in %s", settings[k].key, cfg->path);
    else
        snprintf(out, len, "the default");
}

static int bad_value(const wr_settings_t *cfg, int k, const char *what)
{
    char from[600];

    origin(cfg, k, from, sizeof(from));
    return fail("%s '%s' (from %s) must be %s", settings[k].key, cfg->value[k], from, what);
}

/* Setting k as an integer in [min, max]; -1 if it is not one. */
static long number(const wr_settings_t *cfg, int k, long min, long max)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(cfg->value[k], &end, 10);
    return errno == 0 && end != cfg->value[k] && *end == '\0' && v >= min && v <= max ? v : -1;
}

/* Setting k as a boolean: 1, 0, or -1 if it is neither. */
static int boolean(const wr_settings_t *cfg, int k)
{
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};

    for (size_t i = 0; i < 3; i++) {
        if (strcmp(cfg->value[k], yes[i]) == 0)
            return 1;
        if (strcmp(cfg->value[k], no[i]) == 0)
            return 0;
    }
    return -1;
}

/* The first line of a file, without its line end, malloc'd; NULL on error. */
static char *first_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);

    if (n < 0) {
        free(line);
        return ferror(f) ? NULL : strdup("");
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int read_password_file(wr_settings_t *cfg)
{
    const char *path = cfg->value[WR_SET_PASSWORD_FILE];
    FILE *f = fopen(path, "r");

    if (!f)
        return fail("cannot read the password file %s: %s", path, strerror(errno));
    cfg->password = first_line(f);
    fclose(f);
    if (!cfg->password)
        return fail("cannot read the password file %s: %s", path, strerror(errno));
    cfg->value[WR_SET_PASSWORD] = cfg->password;
    cfg->layer[WR_SET_PASSWORD] = cfg->layer[WR_SET_PASSWORD_FILE];
    return 0;
}

char *wr_settings_read_line(const char *prompt)
{
    struct termios saved, quiet;
    bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs(prompt, stderr);
    }
    n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* The password asked on the terminal. */
static int ask_password(wr_settings_t *cfg)
{
    char prompt[600];

    snprintf(prompt, sizeof(prompt), "Password for %s at %s: ", cfg->value[WR_SET_USER],
             cfg->value[WR_SET_HOST]);
    cfg->password = wr_settings_read_line(prompt);
    if (!cfg->password)
        return fail("no password read");
    cfg->value[WR_SET_PASSWORD] = cfg->password;
    return 0;
}

/*
 * The password: of --password and --password-file (or their variables or
 * keys) the one from the higher layer; guest's when no user is named
 * either; else asked on a terminal.
 */
static int password(wr_settings_t *cfg)
{
    const char *pw = cfg->value[WR_SET_PASSWORD], *file = cfg->value[WR_SET_PASSWORD_FILE];

    if (pw && file && cfg->layer[WR_SET_PASSWORD] == cfg->layer[WR_SET_PASSWORD_FILE])
        return fail("give a password or a password file, not both");
    if (file && (!pw || cfg->layer[WR_SET_PASSWORD_FILE] < cfg->layer[WR_SET_PASSWORD]))
        return read_password_file(cfg);
    if (pw)
        return 0;
    if (!cfg->value[WR_SET_USER]) {
        cfg->value[WR_SET_USER] = cfg->value[WR_SET_PASSWORD] = "guest";
        cfg->layer[WR_SET_USER] = cfg->layer[WR_SET_PASSWORD] = LAYER_DEFAULT;
        return 0;
    }
    if (isatty(STDIN_FILENO))
        return ask_password(cfg);
    return fail("no password for user '%s': give --password-file FILE, WARREN_PASSWORD or a config file's "
                "\"password\", or run on a terminal to be asked",
                cfg->value[WR_SET_USER]);
}

/* Checks the values and fills in t. */
static int check(const wr_settings_t *cfg, wr_http_target_t *t)
{
    long port = number(cfg, WR_SET_PORT, 1, 65535), timeout = number(cfg, WR_SET_TIMEOUT, 1, 86400);
    int https = boolean(cfg, WR_SET_HTTPS), insecure = boolean(cfg, WR_SET_INSECURE);

    if (port < 0)
        return bad_value(cfg, WR_SET_PORT, "a number from 1 to 65535");
    if (timeout < 0)
        return bad_value(cfg, WR_SET_TIMEOUT, "a number of seconds from 1 to 86400");
    if (https < 0)
        return bad_value(cfg, WR_SET_HTTPS, "true or false");
    if (insecure < 0)
        return bad_value(cfg, WR_SET_INSECURE, "true or false");
    if (!https && (cfg->value[WR_SET_CACERT] || insecure))
        return fail("%s applies to HTTPS only (add --https)",
                    cfg->value[WR_SET_CACERT] ? "--cacert" : "--insecure");
    *t = (wr_http_target_t){cfg->value[WR_SET_HOST],
                            cfg->value[WR_SET_PORT],
                            cfg->value[WR_SET_USER],
                            cfg->value[WR_SET_PASSWORD],
                            https == 1,
                            cfg->value[WR_SET_CACERT],
                            insecure == 1,
                            timeout};
    return 0;
}

int wr_settings_resolve(wr_settings_t *cfg, wr_http_target_t *t, const char **vhost)
{
    int rc;

    from_env(cfg);
    rc = from_file(cfg);
    for (int k = 0; rc == 0 && k < WR_SET_COUNT; k++) {
        if (!cfg->value[k] && settings[k].fallback) {
            cfg->value[k] = settings[k].fallback;
            cfg->layer[k] = LAYER_DEFAULT;
        }
    }
    if (rc == 0)
        rc = password(cfg);
    if (!cfg->value[WR_SET_USER])
        cfg->value[WR_SET_USER] = "guest";
    if (rc == 0)
        rc = check(cfg, t);
    *vhost = cfg->value[WR_SET_VHOST];
    return rc;
}

void wr_settings_free(wr_settings_t *cfg)
{
    json_decref(cfg->file);
    free(cfg->path);
    free(cfg->password);
}

void wr_settings_help(FILE *out)
{
    fprintf(out, "  %-22s %-22s %s\n", "flag", "environment", "config key (default)");
    for (int k = 0; k < WR_SET_COUNT; k++) {
        char flag[64];

        snprintf(flag, sizeof(flag), "%s%s%s%s", settings[k].flag, settings[k].alias ? ", " : "",
                 settings[k].alias ? settings[k].alias : "", settings[k].kind == KIND_BOOL ? "" : " V");
        fprintf(out, "  %-22s %-22s %s%s%s%s\n", flag, settings[k].env ? settings[k].env : "-",
                settings[k].key, settings[k].fallback ? " (" : "",
                settings[k].fallback ? settings[k].fallback : "", settings[k].fallback ? ")" : "");
    }
}
