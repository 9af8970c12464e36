/* SPDX-License-Identifier: MIT */
/*
 * The subcommands of warrenctl. Each is a row of one table: its words
 * ("declare queue"), the options it takes, how many positional arguments,
 * its help text and the function that builds the request and prints the
 * reply. Errors from the API are printed as "warrenctl: METHOD PATH:
 * STATUS ERROR: REASON" on one line.
 */
#include "tools/warrenctl/commands.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tools/warrenctl/settings.h"
#include "tools/warrenctl/output.h"

/* ---------------------------------------------------------------- arguments */

/* The most positional arguments a command takes (set tags USER TAG...). */
#define MAX_POS 32

typedef struct {
    const char *pos[MAX_POS];
    int npos;
    bool durable, auto_delete, internal, if_unused, if_empty, all;
    const char *type, *routing_key, *destination_type, *count, *ackmode, *encoding, *reason, *tags, *priority,
        *apply_to, *description, *default_queue_type, *user, *vhost_pattern, *queue_pattern;
    json_t *arguments;  /* --argument K=V */
    json_t *headers;    /* --header K=V */
    json_t *properties; /* --property K=V */
} args_t;

typedef struct command_s command_t;

/* What a list command shows. */
typedef struct {
    const char *what;        /* the API collection */
    bool per_vhost;          /* --vhost lists one vhost's */
    const char *name_path;   /* what --filter matches */
    const wr_column_t *cols; /* the table's columns */
    size_t ncols;
} list_spec_t;

struct command_s {
    const char *words;   /* "list queues" */
    const char *options; /* accepted options, space-separated, e.g. "durable argument" */
    int min_pos, max_pos;
    const char *usage; /* after the words */
    const char *help;
    int (*fn)(const wr_ctl_t *c, const command_t *cmd, args_t *a);
    const list_spec_t *list; /* list commands only */
};

static int usage_error(const command_t *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "warrenctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see warrenctl %s --help)\n", cmd->words);
    return WR_CTL_USAGE;
}

static bool accepts(const command_t *cmd, const char *opt)
{
    size_t n = strlen(opt);

    for (const char *p = cmd->options; (p = strstr(p, opt)) != NULL; p += n) {
        if ((p == cmd->options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    }
    return false;
}

/* "K=V" into obj[K]: V as JSON when it parses as JSON, else as a string. */
static bool put_kv(json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char *key;
    json_t *v;

    if (!eq || eq == kv)
        return false;
    key = strndup(kv, (size_t)(eq - kv));
    v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_string(eq + 1);
    json_object_set_new(obj, key, v);
    free(key);
    return true;
}

static const struct {
    const char *name;
    size_t offset; /* of the const char * in args_t, or of the json_t * for K=V options */
    enum { OPT_FLAG, OPT_VALUE, OPT_KV } kind;
} option_table[] = {
    {"durable", offsetof(args_t, durable), OPT_FLAG},
    {"auto-delete", offsetof(args_t, auto_delete), OPT_FLAG},
    {"internal", offsetof(args_t, internal), OPT_FLAG},
    {"if-unused", offsetof(args_t, if_unused), OPT_FLAG},
    {"if-empty", offsetof(args_t, if_empty), OPT_FLAG},
    {"all", offsetof(args_t, all), OPT_FLAG},
    {"type", offsetof(args_t, type), OPT_VALUE},
    {"routing-key", offsetof(args_t, routing_key), OPT_VALUE},
    {"destination-type", offsetof(args_t, destination_type), OPT_VALUE},
    {"count", offsetof(args_t, count), OPT_VALUE},
    {"ackmode", offsetof(args_t, ackmode), OPT_VALUE},
    {"encoding", offsetof(args_t, encoding), OPT_VALUE},
    {"reason", offsetof(args_t, reason), OPT_VALUE},
    {"tags", offsetof(args_t, tags), OPT_VALUE},
    {"priority", offsetof(args_t, priority), OPT_VALUE},
    {"apply-to", offsetof(args_t, apply_to), OPT_VALUE},
    {"description", offsetof(args_t, description), OPT_VALUE},
    {"default-queue-type", offsetof(args_t, default_queue_type), OPT_VALUE},
    {"of-user", offsetof(args_t, user), OPT_VALUE},
    {"vhost-pattern", offsetof(args_t, vhost_pattern), OPT_VALUE},
    {"queue-pattern", offsetof(args_t, queue_pattern), OPT_VALUE},
    {"argument", offsetof(args_t, arguments), OPT_KV},
    {"header", offsetof(args_t, headers), OPT_KV},
    {"property", offsetof(args_t, properties), OPT_KV},
};

static int parse_args(const command_t *cmd, int argc, char **argv, args_t *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        size_t k;

        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (a->npos == cmd->max_pos)
                return usage_error(cmd, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        for (k = 0; k < sizeof(option_table) / sizeof(option_table[0]); k++) {
            if (strcmp(arg + 2, option_table[k].name) == 0)
                break;
        }
        if (k == sizeof(option_table) / sizeof(option_table[0]) || !accepts(cmd, arg + 2))
            return usage_error(cmd, "unknown option '%s'", arg);
        if (option_table[k].kind == OPT_FLAG) {
            *(bool *)((char *)a + option_table[k].offset) = true;
            continue;
        }
        if (i + 1 == argc)
            return usage_error(cmd, "option '%s' needs a value", arg);
        if (option_table[k].kind == OPT_VALUE) {
            *(const char **)((char *)a + option_table[k].offset) = argv[++i];
        } else {
            json_t **obj = (json_t **)((char *)a + option_table[k].offset);

            if (!*obj)
                *obj = json_object();
            if (!put_kv(*obj, argv[++i]))
                return usage_error(cmd, "expected KEY=VALUE, got '%s'", argv[i]);
        }
    }
    if (a->npos < cmd->min_pos)
        return usage_error(cmd, "%s", a->npos == 0 ? "missing arguments" : "too few arguments");
    return WR_CTL_OK;
}

/* ---------------------------------------------------------------- requests */

/* The vhost for a change (--vhost, default "/"), percent-encoded. */
static char *vhost_seg(const wr_ctl_t *c)
{
    return wr_http_escape(c->vhost ? c->vhost : "/");
}

/* "/api/<a>/<b escaped>/<c escaped>...": parts after the first are escaped. */
static char *api_path(const char *collection, const char *s1, const char *s2, const char *tail)
{
    char *e1 = s1 ? wr_http_escape(s1) : NULL, *e2 = s2 ? wr_http_escape(s2) : NULL, *out = NULL;

    if (asprintf(&out, "/api/%s%s%s%s%s%s", collection, e1 ? "/" : "", e1 ? e1 : "", e2 ? "/" : "",
                 e2 ? e2 : "", tail ? tail : "") < 0)
        out = NULL;
    free(e1);
    free(e2);
    return out;
}

/* The API's error reply on one line: "warrenctl: METHOD PATH: STATUS ERROR:
 * REASON", a multi-line reason (a policy's "Validation failed\n\nWHY\n")
 * joined with ": " and RabbitMQ's HTML escapes (&lt; &gt; &amp;) undone. */
static void print_api_error(const char *method, const char *path, long status, const json_t *reply)
{
    const char *e = json_string_value(json_object_get(reply, "error"));
    const char *why = json_string_value(json_object_get(reply, "reason"));

    fprintf(stderr, "warrenctl: %s %s: %ld %s%s", method, path, status, e ? e : "", e && why ? ": " : "");
    if (!why) {
        fprintf(stderr, "%s\n", e ? "" : "(no details)");
        return;
    }
    for (const char *p = why; *p; p++) {
        if (*p == '\n') {
            while (p[1] == '\n')
                p++;
            if (p[1])
                fputs(": ", stderr);
        } else if (strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0) {
            fputc(p[1] == 'l' ? '<' : '>', stderr);
            p += 3;
        } else if (strncmp(p, "&amp;", 5) == 0) {
            fputc('&', stderr);
            p += 4;
        } else {
            fputc(*p, stderr);
        }
    }
    fputc('\n', stderr);
}

/*
 * One request. On success (status < 400) returns 0 with the parsed JSON reply
 * in *out (NULL when the body is empty; out may be NULL). Otherwise prints
 * the one-line reason and returns -1. Takes ownership of path and body.
 */
static int call(const wr_ctl_t *c, const char *method, char *path, json_t *body, const char *headers,
                json_t **out)
{
    wr_http_reply_t r = {0};
    char err[512];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *reply = NULL;
    int rc = -1;

    json_decref(body);
    if (out)
        *out = NULL;
    if (!path) {
        fprintf(stderr, "warrenctl: out of memory\n");
        goto out;
    }
    if (wr_http_request(c->http, method, path, text, headers, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "warrenctl: %s\n", err);
        goto out;
    }
    if (r.len > 0)
        reply = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    if (r.status >= 400) {
        print_api_error(method, path, r.status, reply);
        goto out;
    }
    if (r.len > 0 && !reply) {
        fprintf(stderr, "warrenctl: %s %s: the reply is not JSON\n", method, path);
        goto out;
    }
    if (out) {
        *out = reply;
        reply = NULL;
    }
    rc = 0;
out:
    json_decref(reply);
    wr_http_reply_free(&r);
    free(text);
    free(path);
    return rc;
}

/* Runs a change (no reply body expected) and prints `done` unless --json.
 * Takes ownership of path and body. */
static int change(const wr_ctl_t *c, const char *method, char *path, json_t *body, const char *headers,
                  const char *done)
{
    if (call(c, method, path, body, headers, NULL) != 0)
        return WR_CTL_FAILED;
    if (!c->json)
        printf("%s\n", done);
    return WR_CTL_OK;
}

static const char *vhost_name(const wr_ctl_t *c)
{
    return c->vhost ? c->vhost : "/";
}

/* ---------------------------------------------------------------- list */

static const wr_column_t exchange_cols[] = {{"vhost", "vhost"},
                                            {"name", "name"},
                                            {"type", "type"},
                                            {"durable", "durable"},
                                            {"auto_delete", "auto_delete"},
                                            {"internal", "internal"}};
static const wr_column_t queue_cols[] = {{"vhost", "vhost"},
                                         {"name", "name"},
                                         {"messages", "messages"},
                                         {"ready", "messages_ready"},
                                         {"unacked", "messages_unacknowledged"},
                                         {"consumers", "consumers"},
                                         {"durable", "durable"}};
static const wr_column_t binding_cols[] = {
    {"vhost", "vhost"},           {"source", "source"},           {"destination", "destination"},
    {"type", "destination_type"}, {"routing_key", "routing_key"}, {"arguments", "arguments"}};
static const wr_column_t connection_cols[] = {
    {"name", "name"}, {"user", "user"}, {"vhost", "vhost"}, {"channels", "channels"}};
static const wr_column_t channel_cols[] = {{"name", "name"},
                                           {"user", "user"},
                                           {"vhost", "vhost"},
                                           {"consumers", "consumer_count"},
                                           {"unacked", "messages_unacknowledged"},
                                           {"prefetch", "prefetch_count"}};
static const wr_column_t vhost_cols[] = {{"name", "name"}, {"messages", "messages"}};
static const wr_column_t user_cols[] = {{"name", "name"}, {"tags", "tags"}};
static const wr_column_t permission_cols[] = {
    {"user", "user"}, {"vhost", "vhost"}, {"configure", "configure"}, {"write", "write"}, {"read", "read"}};
static const wr_column_t policy_cols[] = {{"vhost", "vhost"},       {"name", "name"},
                                          {"pattern", "pattern"},   {"apply_to", "apply-to"},
                                          {"priority", "priority"}, {"definition", "definition"}};
static const wr_column_t consumer_cols[] = {{"vhost", "queue.vhost"},   {"queue", "queue.name"},
                                            {"tag", "consumer_tag"},    {"channel", "channel_details.name"},
                                            {"ack", "ack_required"},    {"prefetch", "prefetch_count"},
                                            {"exclusive", "exclusive"}, {"status", "activity_status"}};

#define COLS(a) a, sizeof(a) / sizeof(a[0])

/* rows (an API list) as --format, --columns, --sort and --filter ask;
 * --filter matches the value at name_path (NULL: not filterable). */
static int print_rows(const wr_ctl_t *c, const json_t *rows, const wr_column_t *defs, size_t ndefs,
                      const char *name_path)
{
    wr_column_t *cols = NULL;
    json_t *shown = NULL;
    char *buf = NULL, err[600];
    size_t ncols = 0;
    int rc = WR_CTL_USAGE;

    if (wr_view_rows(&c->view, rows, name_path, defs, ndefs, &shown, err, sizeof(err)) != 0 ||
        wr_view_columns(&c->view, rows, defs, ndefs, &cols, &ncols, &buf, err, sizeof(err)) != 0) {
        fprintf(stderr, "warrenctl: %s\n", err);
        goto out;
    }
    wr_output_rows(stdout, c->format, shown, cols, ncols, c->view.columns != NULL);
    rc = WR_CTL_OK;
out:
    json_decref(shown);
    free(cols);
    free(buf);
    return rc;
}

static int cmd_list(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const list_spec_t *l = cmd->list;
    bool per_vhost = c->vhost && l->per_vhost;
    /* A vhost's permissions are under /api/vhosts/VHOST/permissions. */
    bool vhost_perms = per_vhost && strcmp(l->what, "permissions") == 0;
    json_t *rows;
    char *path = vhost_perms ? api_path("vhosts", c->vhost, NULL, "/permissions")
                             : api_path(l->what, per_vhost ? c->vhost : NULL, NULL, NULL);

    int rc;

    if (call(c, "GET", path, NULL, NULL, &rows) != 0)
        return WR_CTL_FAILED;
    rc = print_rows(c, rows, l->cols, l->ncols, l->name_path);
    json_decref(rows);
    return rc;
}

/* ---------------------------------------------------------------- declare, delete, purge */

static json_t *arguments(args_t *a)
{
    json_t *args = a->arguments ? a->arguments : json_object();

    a->arguments = NULL;
    return args;
}

static int cmd_declare_exchange(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *body =
        json_pack("{s:s, s:b, s:b, s:b, s:o}", "type", a->type ? a->type : "direct", "durable", a->durable,
                  "auto_delete", a->auto_delete, "internal", a->internal, "arguments", arguments(a));
    char done[600];

    snprintf(done, sizeof(done), "exchange '%s' declared in vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "PUT", api_path("exchanges", vhost_name(c), a->pos[0], NULL), body, NULL, done);
}

static int cmd_declare_queue(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *body = json_pack("{s:b, s:b, s:o}", "durable", a->durable, "auto_delete", a->auto_delete,
                             "arguments", arguments(a));
    char done[600];

    snprintf(done, sizeof(done), "queue '%s' declared in vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "PUT", api_path("queues", vhost_name(c), a->pos[0], NULL), body, NULL, done);
}

/* "q" or "e" for --destination-type; NULL after a usage error. */
static const char *dest_char(const command_t *cmd, const args_t *a)
{
    if (!a->destination_type || strcmp(a->destination_type, "queue") == 0)
        return "q";
    if (strcmp(a->destination_type, "exchange") == 0)
        return "e";
    usage_error(cmd, "--destination-type must be queue or exchange, not '%s'", a->destination_type);
    return NULL;
}

/* /api/bindings/VHOST/e/SOURCE/{q,e}/DEST */
static char *binding_path(const wr_ctl_t *c, const args_t *a, const char *d)
{
    char *vh = vhost_seg(c), *src = wr_http_escape(a->pos[0]), *dst = wr_http_escape(a->pos[1]), *out = NULL;

    if (vh && src && dst && asprintf(&out, "/api/bindings/%s/e/%s/%s/%s", vh, src, d, dst) < 0)
        out = NULL;
    free(vh);
    free(src);
    free(dst);
    return out;
}

static int cmd_declare_binding(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *d = dest_char(cmd, a);
    char done[900];

    if (!d)
        return WR_CTL_USAGE;
    snprintf(done, sizeof(done), "binding from '%s' to %s '%s' declared in vhost '%s'", a->pos[0],
             d[0] == 'q' ? "queue" : "exchange", a->pos[1], vhost_name(c));
    return change(c, "POST", binding_path(c, a, d),
                  json_pack("{s:s, s:o}", "routing_key", a->routing_key ? a->routing_key : "", "arguments",
                            arguments(a)),
                  NULL, done);
}

static int cmd_delete_exchange(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "exchange '%s' deleted from vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "DELETE",
                  api_path("exchanges", vhost_name(c), a->pos[0], a->if_unused ? "?if-unused=true" : NULL),
                  NULL, NULL, done);
}

static int cmd_delete_queue(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *q = a->if_empty && a->if_unused ? "?if-empty=true&if-unused=true"
                    : a->if_empty               ? "?if-empty=true"
                    : a->if_unused              ? "?if-unused=true"
                                                : NULL;
    char done[600];

    snprintf(done, sizeof(done), "queue '%s' deleted from vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "DELETE", api_path("queues", vhost_name(c), a->pos[0], q), NULL, NULL, done);
}

/* Deletes the binding with this routing key and these arguments: found by
 * listing the pair's bindings, removed by its properties_key. */
static int cmd_delete_binding(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *d = dest_char(cmd, a), *key = a->routing_key ? a->routing_key : "";
    json_t *args = arguments(a), *list = NULL, *b, *found = NULL;
    char *path = d ? binding_path(c, a, d) : NULL, *full = NULL, *props = NULL, done[900];
    int rc = WR_CTL_FAILED;
    size_t i;

    if (!d) {
        json_decref(args);
        return WR_CTL_USAGE;
    }
    if (call(c, "GET", strdup(path), NULL, NULL, &list) != 0)
        goto out;
    json_array_foreach(list, i, b)
    {
        const char *k = json_string_value(json_object_get(b, "routing_key"));

        if (!found && k && strcmp(k, key) == 0 && json_equal(json_object_get(b, "arguments"), args))
            found = b;
    }
    if (!found) {
        fprintf(stderr,
                "warrenctl: no binding from '%s' to %s '%s' with routing key '%s' and those "
                "arguments in vhost '%s'\n",
                a->pos[0], d[0] == 'q' ? "queue" : "exchange", a->pos[1], key, vhost_name(c));
        goto out;
    }
    props = json_is_string(json_object_get(found, "properties_key"))
                ? wr_http_escape(json_string_value(json_object_get(found, "properties_key")))
                : NULL;
    if (!props || asprintf(&full, "%s/%s", path, props) < 0) {
        fprintf(stderr, "warrenctl: out of memory\n");
        goto out;
    }
    snprintf(done, sizeof(done), "binding from '%s' to %s '%s' deleted from vhost '%s'", a->pos[0],
             d[0] == 'q' ? "queue" : "exchange", a->pos[1], vhost_name(c));
    rc = change(c, "DELETE", full, NULL, NULL, done);
    full = NULL;
out:
    free(full);
    free(props);
    free(path);
    json_decref(list);
    json_decref(args);
    return rc;
}

static int cmd_purge_queue(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "queue '%s' purged in vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "DELETE", api_path("queues", vhost_name(c), a->pos[0], "/contents"), NULL, NULL, done);
}

/* Closes one connection: 1, 0 when it was gone already (with many, one may
 * close by itself meanwhile), or -1 after printing why. */
static int close_one(const wr_ctl_t *c, const char *name, const char *header)
{
    char *path = api_path("connections", name, NULL, NULL), err[512];
    wr_http_reply_t r = {0};
    json_t *reply;
    int rc = -1;

    if (!path) {
        fprintf(stderr, "warrenctl: out of memory\n");
        return -1;
    }
    if (wr_http_request(c->http, "DELETE", path, NULL, header, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "warrenctl: %s\n", err);
    } else if (r.status >= 400 && r.status != 404) {
        reply = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
        print_api_error("DELETE", path, r.status, reply);
        json_decref(reply);
    } else {
        rc = r.status != 404;
    }
    wr_http_reply_free(&r);
    free(path);
    return rc;
}

/* Closes every connection (of user, unless NULL) that the API lists. */
static int close_many(const wr_ctl_t *c, const char *user, const char *header)
{
    json_t *conns, *conn;
    size_t i, closed = 0;
    int rc = WR_CTL_OK;

    if (call(c, "GET", api_path("connections", NULL, NULL, NULL), NULL, NULL, &conns) != 0)
        return WR_CTL_FAILED;
    json_array_foreach(conns, i, conn)
    {
        const char *name = json_string_value(json_object_get(conn, "name"));
        const char *owner = json_string_value(json_object_get(conn, "user"));
        int one;

        if (!name || (user && (!owner || strcmp(owner, user) != 0)))
            continue;
        one = close_one(c, name, header);
        if (one < 0)
            rc = WR_CTL_FAILED;
        else
            closed += (size_t)one;
    }
    json_decref(conns);
    if (rc == WR_CTL_OK && !c->json)
        printf("%zu connection%s closed%s%s%s\n", closed, closed == 1 ? "" : "s", user ? " of user '" : "",
               user ? user : "", user ? "'" : "");
    return rc;
}

static int cmd_close_connection(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char *header = NULL, done[400];
    int rc;

    if ((a->npos == 1) + (a->user != NULL) + a->all != 1)
        return usage_error(cmd, "%s", "give one of NAME, --of-user USER and --all");
    if (a->reason && strpbrk(a->reason, "\r\n"))
        return usage_error(cmd, "%s", "--reason must be one line");
    if (a->reason && asprintf(&header, "X-Reason: %s", a->reason) < 0)
        return WR_CTL_FAILED;
    if (a->npos == 1) {
        snprintf(done, sizeof(done), "connection '%s' closed", a->pos[0]);
        rc = change(c, "DELETE", api_path("connections", a->pos[0], NULL, NULL), NULL, header, done);
    } else {
        rc = close_many(c, a->user, header);
    }
    free(header);
    return rc;
}

/* ---------------------------------------------------------------- users, permissions, policies */

static int cmd_declare_user(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[400];

    /* RabbitMQ's PUT needs "tags"; a comma-separated string is accepted. */
    snprintf(done, sizeof(done), "user '%s' declared", a->pos[0]);
    return change(c, "PUT", api_path("users", a->pos[0], NULL, NULL),
                  json_pack("{s:s, s:s}", "password", a->pos[1], "tags", a->tags ? a->tags : ""), NULL, done);
}

static int cmd_delete_user(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[400];

    snprintf(done, sizeof(done), "user '%s' deleted", a->pos[0]);
    return change(c, "DELETE", api_path("users", a->pos[0], NULL, NULL), NULL, NULL, done);
}

/* A user's record, or NULL after printing why. */
static json_t *get_user(const wr_ctl_t *c, const char *name)
{
    json_t *u = NULL;

    if (call(c, "GET", api_path("users", name, NULL, NULL), NULL, NULL, &u) == 0 && !json_is_object(u)) {
        fprintf(stderr, "warrenctl: GET /api/users/%s: the reply is not a user\n", name);
        json_decref(u);
        u = NULL;
    }
    return u;
}

/* The positional arguments from `from` on, comma-separated, malloc'd. */
static char *join_tags(const args_t *a, int from)
{
    size_t len = 1;
    char *out;

    for (int i = from; i < a->npos; i++)
        len += strlen(a->pos[i]) + 1;
    out = calloc(1, len);
    for (int i = from; out && i < a->npos; i++) {
        if (i > from)
            strcat(out, ",");
        strcat(out, a->pos[i]);
    }
    return out;
}

/* Replaces the tags; the password hash is sent back as it is, so the
 * password stays (the API has no partial update of a user). */
static int cmd_set_tags(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *u = get_user(c, a->pos[0]), *body;
    char *tags = join_tags(a, 1), done[600];
    int rc = WR_CTL_FAILED;

    if (u && !json_is_string(json_object_get(u, "password_hash"))) {
        fprintf(stderr, "warrenctl: GET /api/users/%s: the reply has no password_hash to keep\n", a->pos[0]);
    } else if (u && tags) {
        body = json_pack("{s:O, s:O, s:s}", "password_hash", json_object_get(u, "password_hash"),
                         "hashing_algorithm", json_object_get(u, "hashing_algorithm"), "tags", tags);
        if (tags[0])
            snprintf(done, sizeof(done), "tags of user '%s' set to %s", a->pos[0], tags);
        else
            snprintf(done, sizeof(done), "tags of user '%s' cleared", a->pos[0]);
        rc = change(c, "PUT", api_path("users", a->pos[0], NULL, NULL), body, NULL, done);
    }
    json_decref(u);
    free(tags);
    return rc;
}

/* The new password: PASSWORD, or asked twice on a terminal, or the first
 * line of standard input. NULL after printing why. */
static char *new_password(const args_t *a)
{
    char prompt[400], *pw, *again;

    if (a->npos == 2)
        return strdup(a->pos[1]);
    snprintf(prompt, sizeof(prompt), "New password for %s: ", a->pos[0]);
    pw = wr_settings_read_line(prompt);
    if (!pw || !isatty(STDIN_FILENO)) {
        if (!pw)
            fprintf(stderr, "warrenctl: no password read from standard input\n");
        return pw;
    }
    again = wr_settings_read_line("Again: ");
    if (!again || strcmp(pw, again) != 0) {
        fprintf(stderr, "warrenctl: the two passwords differ\n");
        free(pw);
        pw = NULL;
    }
    free(again);
    return pw;
}

/* Replaces the password; the tags are sent back as they are. */
static int cmd_set_password(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *u = get_user(c, a->pos[0]), *tags = json_object_get(u, "tags");
    char *pw = u ? new_password(a) : NULL, done[400];
    int rc = WR_CTL_FAILED;

    if (u && pw) {
        snprintf(done, sizeof(done), "password of user '%s' changed", a->pos[0]);
        rc = change(c, "PUT", api_path("users", a->pos[0], NULL, NULL),
                    json_pack("{s:s, s:o}", "password", pw, "tags", tags ? json_incref(tags) : json_array()),
                    NULL, done);
    }
    json_decref(u);
    free(pw);
    return rc;
}

static int cmd_declare_vhost(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *body = json_object();
    char done[400];

    if (a->description)
        json_object_set_new(body, "description", json_string(a->description));
    if (a->tags)
        json_object_set_new(body, "tags", json_string(a->tags));
    if (a->default_queue_type)
        json_object_set_new(body, "default_queue_type", json_string(a->default_queue_type));
    snprintf(done, sizeof(done), "vhost '%s' declared", a->pos[0]);
    return change(c, "PUT", api_path("vhosts", a->pos[0], NULL, NULL), body, NULL, done);
}

static int cmd_delete_vhost(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[400];

    snprintf(done, sizeof(done), "vhost '%s' deleted", a->pos[0]);
    return change(c, "DELETE", api_path("vhosts", a->pos[0], NULL, NULL), NULL, NULL, done);
}

static int cmd_declare_permission(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "permission of '%s' declared in vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "PUT", api_path("permissions", vhost_name(c), a->pos[0], NULL),
                  json_pack("{s:s, s:s, s:s}", "configure", a->pos[1], "write", a->pos[2], "read", a->pos[3]),
                  NULL, done);
}

static int cmd_delete_permission(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "permission of '%s' deleted from vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "DELETE", api_path("permissions", vhost_name(c), a->pos[0], NULL), NULL, NULL, done);
}

static int cmd_declare_policy(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *def = json_loads(a->pos[2], 0, NULL), *body;
    long long priority = 0;
    char *end = NULL, done[600];

    if (!json_is_object(def)) {
        json_decref(def);
        return usage_error(cmd, "DEFINITION must be a JSON object, not '%s'", a->pos[2]);
    }
    if (a->priority) {
        errno = 0;
        priority = strtoll(a->priority, &end, 10);
        if (errno != 0 || end == a->priority || *end != '\0') {
            json_decref(def);
            return usage_error(cmd, "--priority must be an integer, not '%s'", a->priority);
        }
    }
    body = json_pack("{s:s, s:o, s:I}", "pattern", a->pos[1], "definition", def, "priority",
                     (json_int_t)priority);
    if (body && a->apply_to)
        json_object_set_new(body, "apply-to", json_string(a->apply_to));
    snprintf(done, sizeof(done), "policy '%s' declared in vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "PUT", api_path("policies", vhost_name(c), a->pos[0], NULL), body, NULL, done);
}

static int cmd_delete_policy(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "policy '%s' deleted from vhost '%s'", a->pos[0], vhost_name(c));
    return change(c, "DELETE", api_path("policies", vhost_name(c), a->pos[0], NULL), NULL, NULL, done);
}

/* ---------------------------------------------------------------- messages */

/* All of stdin, malloc'd; NULL on a read error. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap);

    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *grown = realloc(buf, cap * 2);

            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (!buf || ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A payload as the publish request carries it: the text itself when it is
 * UTF-8 (jansson accepts it), else base64. */
static json_t *payload_fields(const char *data, size_t len)
{
    json_t *s = json_stringn(data, len);
    char *enc;
    size_t n = 0, i;

    if (s)
        return json_pack("{s:o, s:s}", "payload", s, "payload_encoding", "string");
    enc = malloc(4 * (len / 3 + 1) + 1);
    if (!enc)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)(unsigned char)data[i] << 16 | (unsigned)(unsigned char)data[i + 1] << 8 |
                     (unsigned char)data[i + 2];

        enc[n++] = b64[v >> 18];
        enc[n++] = b64[(v >> 12) & 63];
        enc[n++] = b64[(v >> 6) & 63];
        enc[n++] = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)(unsigned char)data[i] << 16 |
                     (i + 1 < len ? (unsigned)(unsigned char)data[i + 1] << 8 : 0);

        enc[n++] = b64[v >> 18];
        enc[n++] = b64[(v >> 12) & 63];
        enc[n++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        enc[n++] = '=';
    }
    enc[n] = '\0';
    s = json_pack("{s:s, s:s}", "payload", enc, "payload_encoding", "base64");
    free(enc);
    return s;
}

static int cmd_publish(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *exchange = a->pos[0][0] ? a->pos[0] : "amq.default";
    json_t *props = a->properties ? a->properties : json_object(), *body, *reply;
    char *data = NULL;
    size_t len = 0;
    bool routed;

    a->properties = NULL;
    if (a->headers) {
        json_object_set_new(props, "headers", a->headers);
        a->headers = NULL;
    }
    if (a->npos == 3) {
        body = payload_fields(a->pos[2], strlen(a->pos[2]));
    } else {
        data = read_all(stdin, &len);
        if (!data) {
            json_decref(props);
            fprintf(stderr, "warrenctl: cannot read the payload from standard input\n");
            return WR_CTL_FAILED;
        }
        body = payload_fields(data, len);
        free(data);
    }
    json_object_set_new(body, "routing_key", json_string(a->pos[1]));
    json_object_set_new(body, "properties", props);
    if (call(c, "POST", api_path("exchanges", vhost_name(c), exchange, "/publish"), body, NULL, &reply) != 0)
        return WR_CTL_FAILED;
    routed = json_is_true(json_object_get(reply, "routed"));
    if (c->json)
        wr_output_json(stdout, reply);
    else
        printf("%s\n", routed ? "message published and routed" : "message published but not routed");
    json_decref(reply);
    return WR_CTL_OK;
}

static const wr_column_t get_cols[] = {{"routing_key", "routing_key"}, {"exchange", "exchange"},
                                       {"redelivered", "redelivered"}, {"left", "message_count"},
                                       {"bytes", "payload_bytes"},     {"encoding", "payload_encoding"},
                                       {"payload", "payload"}};

static int cmd_get(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    long count = a->count ? strtol(a->count, NULL, 10) : 1;
    json_t *rows;
    int rc;

    if (count < 1)
        return usage_error(cmd, "--count must be a positive number, not '%s'", a->count);
    if (call(c, "POST", api_path("queues", vhost_name(c), a->pos[0], "/get"),
             json_pack("{s:i, s:s, s:s}", "count", (int)count, "ackmode",
                       a->ackmode ? a->ackmode : "ack_requeue_true", "encoding",
                       a->encoding ? a->encoding : "auto"),
             NULL, &rows) != 0)
        return WR_CTL_FAILED;
    rc = print_rows(c, rows, COLS(get_cols), NULL);
    json_decref(rows);
    return rc;
}

/* ---------------------------------------------------------------- definitions, node */

static int cmd_export(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *file = a->pos[0];
    FILE *f = strcmp(file, "-") == 0 ? stdout : NULL;
    json_t *defs;
    int rc = WR_CTL_OK;

    if (call(c, "GET", api_path("definitions", c->vhost, NULL, NULL), NULL, NULL, &defs) != 0)
        return WR_CTL_FAILED;
    if (!f && !(f = fopen(file, "w"))) {
        fprintf(stderr, "warrenctl: cannot write %s: %s\n", file, strerror(errno));
        json_decref(defs);
        return WR_CTL_FAILED;
    }
    wr_output_json(f, defs);
    if (f != stdout && fclose(f) != 0) {
        fprintf(stderr, "warrenctl: cannot write %s: %s\n", file, strerror(errno));
        rc = WR_CTL_FAILED;
    } else if (f != stdout && !c->json) {
        printf("definitions exported to %s\n", file);
    }
    json_decref(defs);
    return rc;
}

static int cmd_import(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    const char *file = a->pos[0];
    json_error_t jerr;
    json_t *defs = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(file, 0, &jerr);
    char done[600];

    if (!defs) {
        fprintf(stderr, "warrenctl: %s: line %d: %s\n", strcmp(file, "-") == 0 ? "standard input" : file,
                jerr.line, jerr.text);
        return WR_CTL_FAILED;
    }
    snprintf(done, sizeof(done), "definitions imported from %s", file);
    return change(c, "POST", api_path("definitions", c->vhost, NULL, NULL), defs, NULL, done);
}

static const wr_column_t overview_cols[] = {
    {"product", "product_name"},
    {"version", "product_version"},
    {"rabbitmq_version", "rabbitmq_version"},
    {"node", "node"},
    {"connections", "object_totals.connections"},
    {"channels", "object_totals.channels"},
    {"exchanges", "object_totals.exchanges"},
    {"queues", "object_totals.queues"},
    {"consumers", "object_totals.consumers"},
    {"messages", "queue_totals.messages"},
    {"messages_ready", "queue_totals.messages_ready"},
    {"messages_unacknowledged", "queue_totals.messages_unacknowledged"},
    {"publish_rate", "message_stats.publish_details.rate"},
    {"deliver_get_rate", "message_stats.deliver_get_details.rate"},
};

static int cmd_overview(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *o, *one;

    if (call(c, "GET", api_path("overview", NULL, NULL, NULL), NULL, NULL, &o) != 0)
        return WR_CTL_FAILED;
    if (c->format == WR_FORMAT_JSON) {
        wr_output_json(stdout, o);
    } else if (c->format == WR_FORMAT_TABLE) {
        wr_output_fields(stdout, o, COLS(overview_cols));
    } else {
        one = json_pack("[O]", o);
        wr_output_rows(stdout, c->format, one, COLS(overview_cols), false);
        json_decref(one);
    }
    json_decref(o);
    return WR_CTL_OK;
}

/* Exit status 0 without alarms. Under one the API answers 503 with the
 * alarms in effect, reported on one line: "warrenctl: alarms in effect:
 * disk space on NODE, memory on NODE". */
static int cmd_alarms(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char *path = api_path("health", "checks", "alarms", NULL);
    wr_http_reply_t r = {0};
    json_t *reply = NULL, *alarms, *alarm;
    int rc = WR_CTL_FAILED;
    char err[512];
    size_t i;

    if (!path) {
        fprintf(stderr, "warrenctl: out of memory\n");
        return rc;
    }
    if (wr_http_request(c->http, "GET", path, NULL, NULL, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "warrenctl: %s\n", err);
        goto out;
    }
    reply = r.len > 0 ? json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL) : NULL;
    alarms = json_object_get(reply, "alarms");
    if (r.status == 503 && json_array_size(alarms) > 0) {
        fprintf(stderr, "warrenctl: alarms in effect:");
        json_array_foreach(alarms, i, alarm)
        {
            const char *res = json_string_value(json_object_get(alarm, "resource"));
            const char *node = json_string_value(json_object_get(alarm, "node"));

            fprintf(stderr, "%s %s on %s", i > 0 ? "," : "", res ? res : "?", node ? node : "?");
        }
        fprintf(stderr, "\n");
    } else if (r.status >= 400) {
        print_api_error("GET", path, r.status, reply);
    } else if (!reply) {
        fprintf(stderr, "warrenctl: GET %s: the reply is not JSON\n", path);
    } else {
        if (c->json)
            wr_output_json(stdout, reply);
        else
            printf("no alarms\n");
        rc = WR_CTL_OK;
    }
out:
    json_decref(reply);
    wr_http_reply_free(&r);
    free(path);
    return rc;
}

/* ---------------------------------------------------------------- cluster */

static const wr_column_t member_cols[] = {
    {"name", "name"}, {"voter", "voter"}, {"running", "running"}, {"this_node", "this_node"}};

/* The metadata group's members as the node asked knows them: a line naming
 * the cluster, this node and the leader, then one row per member. */
static int cmd_cluster_status(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *st;
    const char *leader;
    int rc = WR_CTL_OK;

    if (call(c, "GET", api_path("cluster", "members", NULL, NULL), NULL, NULL, &st) != 0)
        return WR_CTL_FAILED;
    leader = json_string_value(json_object_get(st, "leader"));
    if (c->json) {
        wr_output_json(stdout, st);
    } else {
        if (c->format == WR_FORMAT_TABLE)
            printf("cluster %s: node %s is %s; leader %s\n",
                   json_string_value(json_object_get(st, "cluster_name")),
                   json_string_value(json_object_get(st, "node")),
                   json_is_true(json_object_get(st, "member")) ? "a member" : "not a member",
                   leader ? leader : "unknown");
        rc = print_rows(c, json_object_get(st, "members"), COLS(member_cols), "name");
    }
    json_decref(st);
    return rc;
}

static int cmd_cluster_join(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[300];

    snprintf(done, sizeof(done), "joined the cluster through %s", a->pos[0]);
    return change(c, "POST", api_path("cluster", "join", NULL, NULL), json_pack("{s:s}", "node", a->pos[0]),
                  NULL, done);
}

static int cmd_cluster_leave(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    return change(c, "POST", api_path("cluster", "leave", NULL, NULL), json_object(), NULL,
                  "left the cluster; the node stops");
}

static int cmd_cluster_forget(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[300];

    snprintf(done, sizeof(done), "forgot %s", a->pos[0]);
    return change(c, "DELETE", api_path("cluster", "members", a->pos[0], NULL), NULL, NULL, done);
}

/* ---------------------------------------------------------------- quorum queues */

static const wr_column_t quorum_cols[] = {{"node", "Node Name"},
                                          {"state", "Raft State"},
                                          {"membership", "Membership"},
                                          {"last_index", "Last Log Index"},
                                          {"commit", "Commit Index"},
                                          {"applied", "Last Applied"},
                                          {"snapshot", "Snapshot Index"},
                                          {"term", "Term"},
                                          {"elections", "Elections"},
                                          {"match", "Match Index"},
                                          {"lag", "Lag"}};

static int cmd_quorum_status(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    json_t *rows;
    int rc;

    if (call(c, "GET", api_path("queues/quorum", vhost_name(c), a->pos[0], "/status"), NULL, NULL, &rows) !=
        0)
        return WR_CTL_FAILED;
    rc = print_rows(c, rows, COLS(quorum_cols), "Node Name");
    json_decref(rows);
    return rc;
}

static int cmd_transfer_leadership(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[600];

    snprintf(done, sizeof(done), "leadership of %s goes to %s", a->pos[0], a->pos[1]);
    return change(c, "POST", api_path("queues/quorum", vhost_name(c), a->pos[0], "/leader/transfer"),
                  json_pack("{s:s}", "node", a->pos[1]), NULL, done);
}

/* add_member and delete_member: {"node": NODE} to .../replicas/add (POST) or .../replicas/delete (DELETE). */
static int cmd_member(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    bool add = strcmp(cmd->words, "queues add_member") == 0;
    char done[600];

    snprintf(done, sizeof(done), add ? "%s is a member of %s" : "%s is no longer a member of %s", a->pos[1],
             a->pos[0]);
    return change(
        c, add ? "POST" : "DELETE",
        api_path("queues/quorum", vhost_name(c), a->pos[0], add ? "/replicas/add" : "/replicas/delete"),
        json_pack("{s:s}", "node", a->pos[1]), NULL, done);
}

static int cmd_grow(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[300];

    if (strcmp(a->pos[1], "all") != 0 && strcmp(a->pos[1], "even") != 0)
        return usage_error(cmd, "the strategy is all or even, not '%s'", a->pos[1]);
    snprintf(done, sizeof(done), "quorum queues grow onto %s", a->pos[0]);
    return change(c, "POST", api_path("queues/quorum/replicas/on", a->pos[0], NULL, "/grow"),
                  json_pack("{s:s,s:s,s:s}", "vhost_pattern", a->vhost_pattern ? a->vhost_pattern : ".*",
                            "queue_pattern", a->queue_pattern ? a->queue_pattern : ".*", "strategy",
                            a->pos[1]),
                  NULL, done);
}

static int cmd_shrink(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    char done[300];

    snprintf(done, sizeof(done), "quorum queues shrink off %s", a->pos[0]);
    return change(c, "DELETE", api_path("queues/quorum/replicas/on", a->pos[0], NULL, "/shrink"), NULL, NULL,
                  done);
}

static int cmd_rebalance(const wr_ctl_t *c, const command_t *cmd, args_t *a)
{
    return change(c, "POST", api_path("rebalance", "queues", NULL, NULL), json_object(), NULL,
                  "quorum queue leaders rebalanced");
}

/* ---------------------------------------------------------------- the table */

#define LIST(what, per_vhost, name_path, cols, help)                                                         \
    {                                                                                                        \
        "list " what, "", 0, 0, "", help, cmd_list, &(const list_spec_t)                                     \
        {                                                                                                    \
            what, per_vhost, name_path, COLS(cols)                                                           \
        }                                                                                                    \
    }

static const command_t commands[] = {
    LIST("exchanges", true, "name", exchange_cols, "Lists exchanges (of --vhost, or of every vhost)."),
    LIST("queues", true, "name", queue_cols,
         "Lists queues with their message counts and consumers (of --vhost, or all)."),
    LIST("bindings", true, "source", binding_cols,
         "Lists bindings, the default exchange's too (of --vhost, or all); --filter matches the source."),
    LIST("connections", false, "name", connection_cols, "Lists AMQP connections."),
    LIST("channels", false, "name", channel_cols, "Lists AMQP channels."),
    LIST("vhosts", false, "name", vhost_cols, "Lists virtual hosts."),
    LIST("users", false, "name", user_cols, "Lists users and their tags."),
    LIST("permissions", true, "user", permission_cols,
         "Lists users' permissions (in --vhost, or in every vhost); --filter matches the user."),
    LIST("policies", true, "name", policy_cols, "Lists policies (of --vhost, or of every vhost)."),
    LIST("consumers", true, "queue.name", consumer_cols,
         "Lists consumers with their queue, channel, prefetch and activity (of --vhost, or all); --filter "
         "matches the queue."),
    {"declare exchange", "type durable auto-delete internal argument", 1, 1,
     "NAME [--type direct|fanout|topic|headers] [--durable] [--auto-delete] [--internal] [--argument K=V]...",
     "Declares an exchange in --vhost (default /); an existing one must be equivalent.", cmd_declare_exchange,
     NULL},
    {"declare queue", "durable auto-delete argument", 1, 1,
     "NAME [--durable] [--auto-delete] [--argument K=V]...",
     "Declares a queue; argument values are JSON when they parse as JSON (x-max-length=10), else strings.",
     cmd_declare_queue, NULL},
    {"declare binding", "destination-type routing-key argument", 2, 2,
     "SOURCE DESTINATION [--destination-type queue|exchange] [--routing-key KEY] [--argument K=V]...",
     "Binds a queue (or an exchange) to the exchange SOURCE.", cmd_declare_binding, NULL},
    {"delete exchange", "if-unused", 1, 1, "NAME [--if-unused]", "Deletes an exchange and its bindings.",
     cmd_delete_exchange, NULL},
    {"delete queue", "if-empty if-unused", 1, 1, "NAME [--if-empty] [--if-unused]",
     "Deletes a queue with its messages.", cmd_delete_queue, NULL},
    {"delete binding", "destination-type routing-key argument", 2, 2,
     "SOURCE DESTINATION [--destination-type queue|exchange] [--routing-key KEY] [--argument K=V]...",
     "Deletes the binding with exactly this routing key and these arguments.", cmd_delete_binding, NULL},
    {"declare user", "tags", 2, 2, "NAME PASSWORD [--tags TAG,TAG...]",
     "Creates a user, or replaces its password and tags. Tags: administrator, monitoring, policymaker, "
     "management.",
     cmd_declare_user, NULL},
    {"delete user", "", 1, 1, "NAME", "Deletes a user; its open connections are closed.", cmd_delete_user,
     NULL},
    {"set tags", "", 1, MAX_POS, "USER [TAG...]",
     "Replaces a user's tags (none: no tags), keeping its password. Tags: administrator, monitoring, "
     "policymaker, management.",
     cmd_set_tags, NULL},
    {"set password", "", 1, 2, "USER [PASSWORD]",
     "Replaces a user's password, keeping its tags. Without PASSWORD it is asked twice on a terminal, or "
     "read from the first line of standard input.",
     cmd_set_password, NULL},
    {"declare vhost", "description tags default-queue-type", 1, 1,
     "NAME [--description TEXT] [--tags TAG,TAG...] [--default-queue-type classic|quorum|stream]",
     "Creates a virtual host, or updates its description and tags.", cmd_declare_vhost, NULL},
    {"delete vhost", "", 1, 1, "NAME", "Deletes a virtual host with everything in it.", cmd_delete_vhost,
     NULL},
    {"declare permission", "", 4, 4, "USER CONFIGURE WRITE READ",
     "Sets a user's permissions in --vhost (default /). Each is a regular expression (\"\" for none, "
     "\".*\" for all).",
     cmd_declare_permission, NULL},
    {"delete permission", "", 1, 1, "USER", "Takes a user's permissions in --vhost (default /) away.",
     cmd_delete_permission, NULL},
    {"declare policy", "priority apply-to", 3, 3,
     "NAME PATTERN DEFINITION [--priority N] [--apply-to queues|exchanges|all]",
     "Sets a policy in --vhost (default /). DEFINITION is a JSON object such as '{\"max-length\":100}', "
     "applied to the queues (and/or exchanges) whose names match the regular expression PATTERN; of "
     "several matching policies the highest priority wins.",
     cmd_declare_policy, NULL},
    {"delete policy", "", 1, 1, "NAME", "Clears a policy in --vhost (default /).", cmd_delete_policy, NULL},
    {"purge queue", "", 1, 1, "NAME", "Drops the messages ready in a queue.", cmd_purge_queue, NULL},
    {"close connection", "reason of-user all", 0, 1, "NAME|--of-user USER|--all [--reason TEXT]",
     "Closes a connection (as listed by list connections), every connection of a user, or all of them, "
     "with 320 CONNECTION_FORCED (--user is the login's, hence --of-user).",
     cmd_close_connection, NULL},
    {"publish", "header property", 2, 3,
     "EXCHANGE ROUTING_KEY [PAYLOAD] [--header K=V]... [--property K=V]...",
     "Publishes a message (\"\" is the default exchange); without PAYLOAD it is read from standard input. "
     "Properties: content_type, delivery_mode, priority, message_id...",
     cmd_publish, NULL},
    {"get", "count ackmode encoding", 1, 1,
     "QUEUE [--count N] [--ackmode ack_requeue_true|ack_requeue_false|reject_requeue_true|"
     "reject_requeue_false] [--encoding auto|base64]",
     "Fetches messages; by default they are requeued (ack_requeue_true), as rabbitmqadmin does.", cmd_get,
     NULL},
    {"export", "", 1, 1, "FILE|-",
     "Writes the definitions (all, or --vhost's) as RabbitMQ's definitions.json.", cmd_export, NULL},
    {"import", "", 1, 1, "FILE|-", "Imports a definitions.json (from RabbitMQ or warren).", cmd_import, NULL},
    {"overview", "", 0, 0, "", "Shows versions, object counts and message totals.", cmd_overview, NULL},
    {"cluster status", "", 0, 0, "",
     "Shows the cluster's members (the metadata group's), whether each runs, the leader and the node "
     "asked.",
     cmd_cluster_status, NULL},
    {"cluster join", "", 1, 1, "NODE",
     "Run against a node that is not a member yet: it asks the cluster, through its member NODE, to add "
     "it; it then catches up (snapshot and log) and answers once it is a voter.",
     cmd_cluster_join, NULL},
    {"cluster leave", "", 0, 0, "",
     "The node asked leaves the cluster: once the change commits it stops, and it will not start as a "
     "member again.",
     cmd_cluster_leave, NULL},
    {"cluster forget", "", 1, 1, "NODE",
     "Removes NODE, which must be stopped (a dead node), from the cluster, through the node asked.",
     cmd_cluster_forget, NULL},
    {"queues quorum_status", "", 1, 1, "QUEUE",
     "Shows each member of quorum queue QUEUE (in --vhost, default /) as the node asked knows it: Raft "
     "state, membership, its own log, commit and applied index, snapshot, term and elections; on the "
     "leader, each member's acknowledged index and lag.",
     cmd_quorum_status, NULL},
    {"queues add_member", "", 2, 2, "QUEUE NODE",
     "Adds a member on NODE to quorum queue QUEUE (in --vhost, default /): the node opens the queue's group, "
     "the leader sends it the log (or a snapshot) and makes it a voter once it has caught up; answers then. "
     "Nothing to do when NODE is a member already.",
     cmd_member, NULL},
    {"queues delete_member", "", 2, 2, "QUEUE NODE",
     "Removes quorum queue QUEUE's member on NODE (in --vhost, default /); the node deletes its copy of the "
     "queue's log. Refused for the last member; nothing to do when NODE is not a member.",
     cmd_member, NULL},
    {"queues grow", "vhost-pattern queue-pattern", 2, 2,
     "NODE all|even [--vhost-pattern REGEX] [--queue-pattern REGEX]",
     "Adds a member on NODE to every quorum queue (whose vhost and name match the patterns, default all) "
     "that has none there and no member change under way; with even, only to queues with an even number "
     "of members. The members join as add_member's do, after the answer.",
     cmd_grow, NULL},
    {"queues shrink", "", 1, 1, "NODE",
     "Removes NODE's member from every quorum queue but those where it is the last one; they leave as "
     "delete_member's do, after the answer.",
     cmd_shrink, NULL},
    {"queues rebalance", "", 0, 0, "",
     "Spreads quorum queue leaders over the running nodes: each queue's leadership goes to its running "
     "member with the fewest leaders so far (its current one on a tie).",
     cmd_rebalance, NULL},
    {"queues transfer_leadership", "", 2, 2, "QUEUE NODE",
     "Hands the leadership of quorum queue QUEUE (in --vhost, default /) to its member NODE, which becomes "
     "the member the leader belongs on (warren's own: rabbitmq-queues has no such command).",
     cmd_transfer_leadership, NULL},
    {"alarms", "", 0, 0, "",
     "Health check: exits 0 when no resource alarm is in effect. Otherwise it exits 1 naming the alarms "
     "(memory, disk space) on one line.",
     cmd_alarms, NULL},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The command whose words start argv; *used is how many argv words. */
static const command_t *find(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *space = strchr(commands[i].words, ' ');
        size_t n = space ? (size_t)(space - commands[i].words) : strlen(commands[i].words);

        if (argc < 1 || strlen(argv[0]) != n || strncmp(argv[0], commands[i].words, n) != 0)
            continue;
        if (!space) {
            *used = 1;
            return &commands[i];
        }
        if (argc >= 2 && strcmp(argv[1], space + 1) == 0) {
            *used = 2;
            return &commands[i];
        }
    }
    return NULL;
}

/* Whether verb is the first word of cmd. */
static bool has_verb(const command_t *cmd, const char *verb)
{
    size_t n = strlen(verb);

    return strncmp(cmd->words, verb, n) == 0 && (cmd->words[n] == ' ' || cmd->words[n] == '\0');
}

/* Whether argv[0] is the first word of some command. */
static bool known_verb(const char *verb)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (has_verb(&commands[i], verb))
            return true;
    }
    return false;
}

static void print_verb(FILE *out, const char *verb)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (has_verb(&commands[i], verb))
            fprintf(out, "  warrenctl %s %s\n", commands[i].words, commands[i].usage);
    }
}

int wr_cmd_help(FILE *out, int argc, char **argv)
{
    const command_t *cmd;
    int used;

    if (argc == 0) {
        fprintf(out, "usage: warrenctl [OPTIONS] COMMAND [ARGS]\n"
                     "\n"
                     "Administers a warren broker (or RabbitMQ) through its management HTTP API.\n"
                     "Each connection setting comes from its flag, else its environment variable,\n"
                     "else the config file (--config FILE, WARREN_CONFIG, or\n"
                     "~/.config/warren/warrenctl.json; its node \"default\", or --node NAME /\n"
                     "WARREN_NODE), else the default. Without a password, user guest/guest; a user\n"
                     "without one is asked for it on a terminal.\n");
        wr_settings_help(out);
        fprintf(out, "  --config FILE, --node NAME  the config file and its node\n"
                     "  --format table|csv|tsv|json, --json (= --format json)\n"
                     "  --columns A,B  --sort COLUMN  --sort-reverse  --filter REGEX (lists)\n"
                     "  --version, --help\n"
                     "Exit status: 0 on success, 1 when the broker refused or could not be reached,\n"
                     "2 for usage and configuration errors.\n"
                     "\n"
                     "commands:\n");
        for (size_t i = 0; i < NCOMMANDS; i++)
            fprintf(out, "  %-18s %.*s\n", commands[i].words, (int)strcspn(commands[i].help, ".;"),
                    commands[i].help);
        fprintf(out, "\n'warrenctl COMMAND --help' shows a command's arguments.\n");
        return WR_CTL_OK;
    }
    cmd = find(argc, argv, &used);
    if (cmd) {
        fprintf(out, "usage: warrenctl [OPTIONS] %s%s%s\n\n%s\n", cmd->words, cmd->usage[0] ? " " : "",
                cmd->usage, cmd->help);
        return WR_CTL_OK;
    }
    if (known_verb(argv[0])) {
        fprintf(out, "usage:\n");
        print_verb(out, argv[0]);
        return WR_CTL_OK;
    }
    fprintf(stderr, "warrenctl: unknown command '%s' (see warrenctl --help)\n", argv[0]);
    return WR_CTL_USAGE;
}

/* The command argv names, or NULL after printing a usage error. */
static const command_t *lookup(int argc, char **argv, int *used)
{
    const command_t *cmd;

    if (argc == 0) {
        fprintf(stderr, "warrenctl: no command given (see warrenctl --help)\n");
        return NULL;
    }
    cmd = find(argc, argv, used);
    if (cmd)
        return cmd;
    if (known_verb(argv[0])) {
        fprintf(stderr, "warrenctl: '%s' needs one of:\n", argv[0]);
        print_verb(stderr, argv[0]);
    } else {
        fprintf(stderr, "warrenctl: unknown command '%s' (see warrenctl --help)\n", argv[0]);
    }
    return NULL;
}

/* Whether the view and format options fit cmd: --columns and --sort apply
 * to lists and get, --filter to lists, CSV and TSV to overview too. */
static int check_view(const wr_ctl_t *ctl, const command_t *cmd)
{
    bool rows = cmd->fn == cmd_list || cmd->fn == cmd_get || cmd->fn == cmd_cluster_status ||
                cmd->fn == cmd_quorum_status;
    const char *opt =
        !rows && ctl->view.columns       ? "--columns"
        : !rows && ctl->view.sort        ? "--sort"
        : !cmd->list && ctl->view.filter ? "--filter"
        : !rows && cmd->fn != cmd_overview && (ctl->format == WR_FORMAT_CSV || ctl->format == WR_FORMAT_TSV)
            ? "--format"
            : NULL;

    if (ctl->view.reverse && !ctl->view.sort)
        return usage_error(cmd, "%s", "--sort-reverse needs --sort");
    return opt ? usage_error(cmd, "%s does not apply to this command", opt) : WR_CTL_OK;
}

/* Parses argv for its command, then checks its view options (run false) or
 * runs it (run true). */
static int dispatch(const wr_ctl_t *ctl, int argc, char **argv, bool run)
{
    args_t a = {0};
    const command_t *cmd;
    int used, rc;

    cmd = lookup(argc, argv, &used);
    if (!cmd)
        return WR_CTL_USAGE;
    rc = parse_args(cmd, argc - used, argv + used, &a);
    if (rc == WR_CTL_OK)
        rc = run ? cmd->fn(ctl, cmd, &a) : check_view(ctl, cmd);
    json_decref(a.arguments);
    json_decref(a.headers);
    json_decref(a.properties);
    return rc;
}

int wr_cmd_check(const wr_ctl_t *ctl, int argc, char **argv)
{
    return dispatch(ctl, argc, argv, false);
}

int wr_cmd_run(const wr_ctl_t *ctl, int argc, char **argv)
{
    return dispatch(ctl, argc, argv, true);
}
