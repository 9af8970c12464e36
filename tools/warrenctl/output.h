/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's output: JSON arrays of objects as aligned text tables (one
 * column per dotted path), objects as "key: value" lines, and JSON as is for
 * --json.
 */
#ifndef WR_CTL_OUTPUT_H
#define WR_CTL_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

typedef struct {
    const char *title;
    const char *path; /* "name", "message_stats.publish" */
} wr_column_t;

/* rows (an array of objects) as a table with a header line; "(none)" when empty. */
void wr_output_table(FILE *out, const json_t *rows, const wr_column_t *cols, size_t ncols);
/* The given paths of obj as aligned "title: value" lines. */
void wr_output_fields(FILE *out, const json_t *obj, const wr_column_t *cols, size_t ncols);
/* v as indented JSON and a newline. */
void wr_output_json(FILE *out, const json_t *v);

#endif
