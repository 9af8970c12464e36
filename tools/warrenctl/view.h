/* SPDX-License-Identifier: MIT */
/*
 * What a list shows: the rows whose name matches --filter, ordered by
 * --sort (optionally reversed), with the columns --columns names (a
 * command's own column titles or any dotted path of the API's objects).
 */
#ifndef WR_CTL_VIEW_H
#define WR_CTL_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct {
    const char *title;
    const char *path; /* "name", "message_stats.publish" */
} wr_column_t;

typedef struct {
    const char *columns; /* "name,messages", or NULL: the command's own */
    const char *sort;    /* a column title or path, or NULL: the API's order */
    bool reverse;        /* --sort-reverse */
    const char *filter;  /* a POSIX extended regular expression, unanchored, or NULL */
} wr_view_t;

/* The value at a dotted path of obj ("queue.name"), borrowed, or NULL. */
const json_t *wr_view_lookup(const json_t *obj, const char *path);
/*
 * The columns to show: defs, or those v->columns names, each a title or path
 * of defs or else a dotted path of rows' objects (its own title). A name
 * that no row has is refused when there are rows (a typo, not an empty
 * column). *out is malloc'd and borrows strings from v->columns' copy in
 * *buf (free both). 0, or -1 with the reason in err.
 */
int wr_view_columns(const wr_view_t *v, const json_t *rows, const wr_column_t *defs, size_t ndefs,
                    wr_column_t **out, size_t *nout, char **buf, char *err, size_t errlen);
/*
 * A new array of rows' objects (borrowed references taken) whose value at
 * name_path matches v->filter, sorted by v->sort (descending with
 * v->reverse): numerically when both values are numbers, else by their
 * text; missing values first; rows that compare equal keep the API's order
 * either way. 0 with *out, or -1 with the reason in
 * err (a bad regular expression, an unknown sort column).
 */
int wr_view_rows(const wr_view_t *v, const json_t *rows, const char *name_path, const wr_column_t *defs,
                 size_t ndefs, json_t **out, char *err, size_t errlen);
/* The text of a cell, malloc'd: strings as they are, other values as compact
 * JSON, "" for a missing one. NULL on ENOMEM. */
char *wr_view_cell(const json_t *v);

#endif
