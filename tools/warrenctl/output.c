/* SPDX-License-Identifier: MIT */
/*
 * Tables, CSV, TSV and field lists for warrenctl (output.h). Cells are the
 * values at dotted paths (wr_view_cell): strings as they are, numbers and
 * booleans as JSON writes them, objects and arrays as compact JSON, missing
 * values empty.
 */
#include "tools/warrenctl/output.h"

#include <stdlib.h>
#include <string.h>

/* The cells of rows, row by row (NULL where memory ran out), and each
 * column's widest cell in width (titles included). NULL on ENOMEM. */
static char **cells_of(const json_t *rows, const wr_column_t *cols, size_t ncols, size_t *width)
{
    size_t nrows = json_array_size(rows);
    char **cells = calloc(nrows * ncols + 1, sizeof(*cells));

    for (size_t c = 0; cells && c < ncols; c++)
        width[c] = strlen(cols[c].title);
    for (size_t r = 0; cells && r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *s = wr_view_cell(wr_view_lookup(json_array_get(rows, r), cols[c].path));

            cells[r * ncols + c] = s;
            if (s && strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    return cells;
}

static void put_table_line(FILE *out, char *const *line, const size_t *width, size_t ncols)
{
    for (size_t c = 0; c < ncols; c++) {
        const char *s = line[c] ? line[c] : "";

        if (c + 1 < ncols)
            fprintf(out, "%-*s  ", (int)width[c], s);
        else
            fprintf(out, "%s\n", s);
    }
}

static void put_csv_cell(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_tsv_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '\r' || *s == '\\') {
            fputc('\\', out);
            fputc(*s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\', out);
        } else {
            fputc(*s, out);
        }
    }
}

/* One CSV or TSV line. */
static void put_sep_line(FILE *out, wr_format_t f, char *const *line, size_t ncols)
{
    for (size_t c = 0; c < ncols; c++) {
        if (f == WR_FORMAT_CSV)
            put_csv_cell(out, line[c] ? line[c] : "");
        else
            put_tsv_cell(out, line[c] ? line[c] : "");
        fputc(c + 1 < ncols ? (f == WR_FORMAT_CSV ? ',' : '\t') : '\n', out);
    }
}

static void put_header(FILE *out, wr_format_t f, const wr_column_t *cols, size_t ncols, const size_t *width)
{
    char **titles = calloc(ncols + 1, sizeof(*titles));

    for (size_t c = 0; titles && c < ncols; c++)
        titles[c] = (char *)cols[c].title;
    if (!titles)
        return;
    if (f != WR_FORMAT_TABLE) {
        put_sep_line(out, f, titles, ncols);
    } else {
        put_table_line(out, titles, width, ncols);
        for (size_t c = 0; c < ncols; c++) {
            for (size_t i = 0; i < width[c]; i++)
                fputc('-', out);
            fputs(c + 1 < ncols ? "  " : "\n", out);
        }
    }
    free(titles);
}

/* Each row reduced to the columns' paths, as flat keys. */
static json_t *project(const json_t *rows, const wr_column_t *cols, size_t ncols)
{
    json_t *out = json_array(), *row, *o;
    size_t i;

    json_array_foreach(rows, i, row)
    {
        o = json_object();
        for (size_t c = 0; o && c < ncols; c++) {
            const json_t *v = wr_view_lookup(row, cols[c].path);

            json_object_set_new(o, cols[c].path, v ? json_deep_copy(v) : json_null());
        }
        json_array_append_new(out, o);
    }
    return out;
}

void wr_output_rows(FILE *out, wr_format_t f, const json_t *rows, const wr_column_t *cols, size_t ncols,
                    bool projected)
{
    size_t nrows = json_array_size(rows), *width = calloc(ncols + 1, sizeof(*width));
    char **cells = width ? cells_of(rows, cols, ncols, width) : NULL;
    json_t *p;

    if (f == WR_FORMAT_JSON) {
        p = projected ? project(rows, cols, ncols) : json_incref((json_t *)rows);
        wr_output_json(out, p);
        json_decref(p);
    } else if (!cells) {
        fputs("out of memory\n", stderr);
    } else {
        put_header(out, f, cols, ncols, width);
        for (size_t r = 0; r < nrows; r++) {
            if (f == WR_FORMAT_TABLE)
                put_table_line(out, cells + r * ncols, width, ncols);
            else
                put_sep_line(out, f, cells + r * ncols, ncols);
        }
        if (nrows == 0 && f == WR_FORMAT_TABLE)
            fputs("(none)\n", out);
    }
    for (size_t i = 0; cells && i < nrows * ncols; i++)
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
        char *s = wr_view_cell(wr_view_lookup(obj, cols[c].path));

        fprintf(out, "%s:%*s %s\n", cols[c].title, (int)(w - strlen(cols[c].title)), "", s ? s : "");
        free(s);
    }
}

void wr_output_json(FILE *out, const json_t *v)
{
    json_dumpf(v, out, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    fputc('\n', out);
}
