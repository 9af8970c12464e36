/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's output: JSON arrays of objects as aligned text tables, CSV or
 * TSV (one column per dotted path), objects as "key: value" lines, and JSON
 * as is.
 */
#ifndef WR_CTL_OUTPUT_H
#define WR_CTL_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

#include "tools/warrenctl/view.h"

typedef enum { WR_FORMAT_TABLE, WR_FORMAT_CSV, WR_FORMAT_TSV, WR_FORMAT_JSON } wr_format_t;

/*
 * rows (an array of objects) in format f: a table with a header line
 * ("(none)" when empty); CSV with a header line, RFC 4180 quoting; TSV with
 * a header line, tabs, newlines and backslashes in values written \t \n \\;
 * JSON: each row with only the columns' paths (as flat keys) when
 * `projected`, else as the API sent it.
 */
void wr_output_rows(FILE *out, wr_format_t f, const json_t *rows, const wr_column_t *cols, size_t ncols,
                    bool projected);
/* The given paths of obj as aligned "title: value" lines. */
void wr_output_fields(FILE *out, const json_t *obj, const wr_column_t *cols, size_t ncols);
/* v as indented JSON and a newline. */
void wr_output_json(FILE *out, const json_t *v);

#endif
