/* SPDX-License-Identifier: MIT */
/*
 * warrenctl's --filter, --sort, --sort-reverse and --columns (view.c) and its
 * table, CSV, TSV and JSON output (output.c), on JSON arrays like the API's.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/runner.h"
#include "tools/warrenctl/output.h"
#include "tools/warrenctl/view.h"

static const wr_column_t defs[] = {{"name", "name"}, {"count", "messages"}};

static json_t *sample(void)
{
    return json_loads(
        "[{\"name\": \"b\", \"messages\": 2}, {\"name\": \"a\", \"messages\": 10},"
        " {\"name\": \"c\"}, {\"name\": \"d\", \"messages\": 2}, {\"name\": \"ab\", \"messages\": 1}]",
        0, NULL);
}

/* The names of rows, comma-separated, in a static buffer. */
static const char *names(const json_t *rows)
{
    static char buf[256];
    size_t i;
    json_t *row;

    buf[0] = '\0';
    json_array_foreach(rows, i, row)
    {
        strcat(buf, i ? "," : "");
        strcat(buf, json_string_value(json_object_get(row, "name")));
    }
    return buf;
}

/* rows viewed through v; "ERROR: why" when refused. */
static const char *view(const wr_view_t *v)
{
    static char err[300];
    json_t *rows = sample(), *out = NULL;
    const char *s;

    if (wr_view_rows(v, rows, "name", defs, 2, &out, err, sizeof(err)) != 0) {
        json_decref(rows);
        memmove(err + 7, err, strlen(err) + 1);
        memcpy(err, "ERROR: ", 7);
        return err;
    }
    s = names(out);
    json_decref(out);
    json_decref(rows);
    return s;
}

START_TEST(sort_numbers_numerically_missing_first_ties_stable)
{
    ck_assert_str_eq(view(&(wr_view_t){.sort = "count"}), "c,ab,b,d,a");
    ck_assert_str_eq(view(&(wr_view_t){.sort = "messages", .reverse = true}), "a,b,d,ab,c");
    ck_assert_str_eq(view(&(wr_view_t){.sort = "name"}), "a,ab,b,c,d");
    ck_assert_str_eq(view(&(wr_view_t){0}), "b,a,c,d,ab");
}
END_TEST

START_TEST(filter_is_an_unanchored_extended_regex)
{
    ck_assert_str_eq(view(&(wr_view_t){.filter = "a"}), "a,ab");
    ck_assert_str_eq(view(&(wr_view_t){.filter = "^(a|c)$"}), "a,c");
    ck_assert_str_eq(view(&(wr_view_t){.filter = "^a", .sort = "count"}), "ab,a");
    ck_assert_str_eq(view(&(wr_view_t){.filter = "zz"}), "");
    ck_assert_str_eq(view(&(wr_view_t){.filter = "("}),
                     "ERROR: --filter '(' is not a regular expression: Unmatched ( or \\(");
    ck_assert_str_eq(view(&(wr_view_t){.sort = "nope"}),
                     "ERROR: unknown column 'nope' (the API's field names and dotted paths work too)");
}
END_TEST

/* rows printed in format f with the columns named (NULL: defs). */
static char *printed(wr_format_t f, const char *rows_json, const char *columns)
{
    json_t *rows = json_loads(rows_json, 0, NULL);
    wr_column_t *cols = NULL;
    char *buf = NULL, *text = NULL, err[300];
    size_t ncols = 0, len = 0;
    FILE *out = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(rows);
    if (wr_view_columns(&(wr_view_t){.columns = columns}, rows, defs, 2, &cols, &ncols, &buf, err,
                        sizeof(err)) == 0)
        wr_output_rows(out, f, rows, cols, ncols, columns != NULL);
    else
        fprintf(out, "ERROR: %s", err);
    fclose(out);
    free(cols);
    free(buf);
    json_decref(rows);
    return text;
}

#define ck_printed(f, rows, columns, want)                                                                   \
    do {                                                                                                     \
        char *got_ = printed(f, rows, columns);                                                              \
        ck_assert_str_eq(got_, want);                                                                        \
        free(got_);                                                                                          \
    } while (0)

START_TEST(csv_quotes_and_tsv_escapes)
{
    const char *rows = "[{\"name\": \"a,b\", \"messages\": 1}, {\"name\": \"say \\\"hi\\\"\\nbye\"},"
                       " {\"name\": \"t\\tab\\\\\\r\", \"messages\": {\"x\": [1, 2]}}]";

    ck_printed(WR_FORMAT_CSV, rows, NULL,
               "name,count\n\"a,b\",1\n\"say \"\"hi\"\"\nbye\",\n\"t\tab\\\r\",\"{\"\"x\"\":[1,2]}\"\n");
    ck_printed(WR_FORMAT_TSV, rows, NULL,
               "name\tcount\na,b\t1\nsay \"hi\"\\nbye\t\nt\\tab\\\\\\r\t{\"x\":[1,2]}\n");
}
END_TEST

START_TEST(columns_by_title_path_or_dotted_path)
{
    const char *rows = "[{\"name\": \"q\", \"messages\": 3, \"arguments\": {\"x-max-length\": 10}}]";

    ck_printed(WR_FORMAT_TSV, rows, "count,name,arguments.x-max-length",
               "count\tname\targuments.x-max-length\n3\tq\t10\n");
    ck_printed(WR_FORMAT_TABLE, rows, "messages,name", "count  name\n-----  ----\n3      q\n");
    ck_printed(WR_FORMAT_JSON, rows, "count,arguments.x-max-length",
               "[\n  {\n    \"messages\": 3,\n    \"arguments.x-max-length\": 10\n  }\n]\n");
    ck_printed(WR_FORMAT_CSV, rows, "name,nope",
               "ERROR: unknown column 'nope' (the API's field names and dotted paths work too)");
    /* Without rows no name can be checked; an empty list stays empty. */
    ck_printed(WR_FORMAT_TABLE, "[]", "nope", "nope\n----\n(none)\n");
    ck_printed(WR_FORMAT_CSV, "[]", NULL, "name,count\n");
    ck_printed(WR_FORMAT_CSV, rows, ",", "ERROR: --columns names no column");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("warrenctl-view");
    TCase *tc = tcase_create("view");

    tcase_add_test(tc, sort_numbers_numerically_missing_first_ties_stable);
    tcase_add_test(tc, filter_is_an_unanchored_extended_regex);
    tcase_add_test(tc, csv_quotes_and_tsv_escapes);
    tcase_add_test(tc, columns_by_title_path_or_dotted_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(suite());
}
