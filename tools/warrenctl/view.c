/* SPDX-License-Identifier: MIT */
/*
 * The --columns, --sort and --filter of warrenctl's lists (view.h), applied
 * on the client to the API's JSON array, so they work the same for every
 * list and against any broker.
 */
#include "tools/warrenctl/view.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const json_t *wr_view_lookup(const json_t *obj, const char *path)
{
    char key[256];

    while (json_is_object(obj)) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        if (!dot)
            return obj;
        path = dot + 1;
    }
    return NULL;
}

char *wr_view_cell(const json_t *v)
{
    if (!v)
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
}

/* The default column titled or pathed `name`, or NULL. */
static const wr_column_t *find_def(const char *name, const wr_column_t *defs, size_t ndefs)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (strcmp(defs[i].title, name) == 0 || strcmp(defs[i].path, name) == 0)
            return &defs[i];
    }
    return NULL;
}

/* Whether some row has a value at path (true for no rows: nothing to check). */
static bool known_path(const json_t *rows, const char *path)
{
    size_t i;
    const json_t *row;

    json_array_foreach(rows, i, row)
    {
        if (wr_view_lookup(row, path))
            return true;
    }
    return json_array_size(rows) == 0;
}

/* name as a column: a default one, or a path of the rows' objects. */
static int resolve(const char *name, const json_t *rows, const wr_column_t *defs, size_t ndefs,
                   wr_column_t *out, char *err, size_t errlen)
{
    const wr_column_t *d = find_def(name, defs, ndefs);

    if (d) {
        *out = *d;
        return 0;
    }
    if (name[0] == '\0' || !known_path(rows, name)) {
        snprintf(err, errlen, "unknown column '%s' (the API's field names and dotted paths work too)", name);
        return -1;
    }
    *out = (wr_column_t){name, name};
    return 0;
}

int wr_view_columns(const wr_view_t *v, const json_t *rows, const wr_column_t *defs, size_t ndefs,
                    wr_column_t **out, size_t *nout, char **buf, char *err, size_t errlen)
{
    char *save = NULL;
    size_t n = 0;

    *buf = v->columns ? strdup(v->columns) : NULL;
    *out = calloc(v->columns ? strlen(v->columns) / 2 + 1 : ndefs + 1, sizeof(**out));
    *nout = 0;
    if (!*out || (v->columns && !*buf)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!v->columns) {
        memcpy(*out, defs, ndefs * sizeof(*defs));
        *nout = ndefs;
        return 0;
    }
    for (char *name = strtok_r(*buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (resolve(name, rows, defs, ndefs, &(*out)[n++], err, errlen) != 0)
            return -1;
    }
    *nout = n;
    if (n == 0)
        snprintf(err, errlen, "--columns names no column");
    return n ? 0 : -1;
}

typedef struct {
    json_t *row;
    const json_t *key;
    size_t index;
    int sign; /* -1 for --sort-reverse */
} sort_item_t;

static int compare_keys(const json_t *a, const json_t *b)
{
    char *sa, *sb;
    int rc;

    if (!a || !b)
        return (a != NULL) - (b != NULL);
    if (json_is_number(a) && json_is_number(b))
        return (json_number_value(a) > json_number_value(b)) - (json_number_value(a) < json_number_value(b));
    sa = wr_view_cell(a);
    sb = wr_view_cell(b);
    rc = sa && sb ? strcmp(sa, sb) : 0;
    free(sa);
    free(sb);
    return rc;
}

static int compare_items(const void *x, const void *y)
{
    const sort_item_t *a = x, *b = y;
    int rc = compare_keys(a->key, b->key) * a->sign;

    return rc ? rc : (a->index > b->index) - (a->index < b->index);
}

/* rows' items in the order of the column at path (descending if reverse);
 * equal ones keep their order either way. */
static int sort_rows(json_t *rows, const char *path, bool reverse)
{
    size_t n = json_array_size(rows);
    sort_item_t *items = calloc(n + 1, sizeof(*items));

    if (!items)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(rows, i);

        items[i] = (sort_item_t){json_incref(row), wr_view_lookup(row, path), i, reverse ? -1 : 1};
    }
    qsort(items, n, sizeof(*items), compare_items);
    for (size_t i = 0; i < n; i++)
        json_array_set_new(rows, i, items[i].row);
    free(items);
    return 0;
}

/* The rows whose value at path matches re, appended to out. */
static int filter_rows(const json_t *rows, const char *path, const regex_t *re, json_t *out)
{
    size_t i;
    json_t *row;

    json_array_foreach(rows, i, row)
    {
        const char *name = re ? json_string_value(wr_view_lookup(row, path)) : NULL;

        if ((!re || (name && regexec(re, name, 0, NULL, 0) == 0)) && json_array_append(out, row) != 0)
            return -1;
    }
    return 0;
}

int wr_view_rows(const wr_view_t *v, const json_t *rows, const char *name_path, const wr_column_t *defs,
                 size_t ndefs, json_t **out, char *err, size_t errlen)
{
    wr_column_t by = {0};
    regex_t re;
    int rc;

    *out = NULL;
    if (v->filter && !name_path) {
        snprintf(err, errlen, "--filter applies to list commands only");
        return -1;
    }
    if (v->sort && resolve(v->sort, rows, defs, ndefs, &by, err, errlen) != 0)
        return -1;
    if (v->filter && (rc = regcomp(&re, v->filter, REG_EXTENDED | REG_NOSUB)) != 0) {
        char why[200];

        regerror(rc, &re, why, sizeof(why));
        snprintf(err, errlen, "--filter '%s' is not a regular expression: %s", v->filter, why);
        return -1;
    }
    *out = json_array();
    rc = *out ? filter_rows(rows, name_path, v->filter ? &re : NULL, *out) : -1;
    if (v->filter)
        regfree(&re);
    if (rc == 0 && v->sort)
        rc = sort_rows(*out, by.path, v->reverse);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}
