/* SPDX-License-Identifier: MIT */
/*
 * Tables and field lists for warrenctl (output.h). Cells are the values at
 * dotted paths: strings as they are, numbers and booleans as JSON writes
 * them, objects and arrays as compact JSON, missing values empty.
 */
#include "tools/warrenctl/output.h"

#include <stdlib.h>
#include <string.h>

/* The value at a dotted path, or NULL. */
static const json_t *lookup(const json_t *obj, const char *path)
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

/* The cell text of v, malloc'd ("" for none); NULL on ENOMEM. */
static char *cell(const json_t *v)
{
    if (!v)
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
}

void wr_output_table(FILE *out, const json_t *rows, const wr_column_t *cols, size_t ncols)
{
    size_t nrows = json_array_size(rows);
    char **cells = calloc(nrows * ncols + 1, sizeof(*cells));
    size_t *width = calloc(ncols + 1, sizeof(*width));

    if (!cells || !width) {
        free(cells);
        free(width);
        fputs("out of memory\n", out);
        return;
    }
    for (size_t c = 0; c < ncols; c++)
        width[c] = strlen(cols[c].title);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *s = cell(lookup(json_array_get(rows, r), cols[c].path));

            cells[r * ncols + c] = s;
            if (s && strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    for (size_t c = 0; c < ncols; c++)
        fprintf(out, "%-*s%s", (int)width[c], cols[c].title, c + 1 < ncols ? "  " : "\n");
    for (size_t c = 0; c < ncols; c++) {
        for (size_t i = 0; i < width[c]; i++)
            fputc('-', out);
        fputs(c + 1 < ncols ? "  " : "\n", out);
    }
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c] ? cells[r * ncols + c] : "";

            if (c + 1 < ncols)
                fprintf(out, "%-*s  ", (int)width[c], s);
            else
                fprintf(out, "%s\n", s);
        }
    }
    if (nrows == 0)
        fputs("(none)\n", out);
    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    free(width);
}

void wr_output_fields(FILE *out, const json_t *obj, const wr_column_t *cols, size_t ncols)
{
    size_t w = 0;

    for (size_t c = 0; c < ncols; c++) {
        if (strlen(cols[c].title) > w)
            w = strlen(cols[c].title);
    }
    for (size_t c = 0; c < ncols; c++) {
        char *s = cell(lookup(obj, cols[c].path));

        fprintf(out, "%s:%*s %s\n", cols[c].title, (int)(w - strlen(cols[c].title)), "", s ? s : "");
        free(s);
    }
}

void wr_output_json(FILE *out, const json_t *v)
{
    json_dumpf(v, out, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    fputc('\n', out);
}
