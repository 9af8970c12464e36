/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for field tables and arrays. The input is validated as
 * both; whatever validates is walked entry by entry (lookup, formatting),
 * rebuilt through the encoders, and must validate again and be equivalent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_status(int rc)
{
    if (rc != WR_OK && rc != WR_ESYNTAX && rc != WR_EUNKNOWN && rc != WR_EDEPTH)
        abort();
}

static void check_table(wr_bytes_t raw)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v, found;
    char text[128];
    size_t n = 0;

    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, &key, &v)) {
        char *k = wr_bytes_dup(key);
        if (k == NULL)
            abort();
        /* A key with a NUL in it cannot be looked up by C string. */
        if (memchr(key.data, 0, key.len) == NULL && !wr_table_get(raw, k, &found))
            abort();
        free(k);
        wr_value_format(&v, text, sizeof(text));
        if (strlen(text) >= sizeof(text))
            abort();
        /* wr_table_put_key takes a C string, so write the key bytes directly. */
        wr_put_shortstr(&b, key);
        wr_table_put_value(&b, &v);
        n++;
    }
    if (n != wr_table_count(raw) || !wr_buf_ok(&b))
        abort();
    if (wr_table_validate((wr_bytes_t){b.data, b.len}, WR_TABLE_MAX_DEPTH) != WR_OK)
        abort();
    if (!wr_table_equiv(raw, (wr_bytes_t){b.data, b.len}) || !wr_table_equiv(raw, raw))
        abort();
    wr_buf_free(&b);
}

static void check_array(wr_bytes_t raw)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_table_iter_t it;
    wr_value_t whole = {.type = 'A', .v.s = raw}, again;
    wr_value_t v;

    wr_table_iter_init(&it, raw);
    while (wr_array_next(&it, &v))
        wr_table_put_value(&b, &v);
    if (!wr_buf_ok(&b))
        abort();
    if (wr_array_validate((wr_bytes_t){b.data, b.len}, WR_TABLE_MAX_DEPTH) != WR_OK)
        abort();
    again = (wr_value_t){.type = 'A', .v.s = {b.data, b.len}};
    if (!wr_value_eq(&whole, &again))
        abort();
    wr_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_bytes_t raw = {data, size};
    int rc;

    rc = wr_table_validate(raw, WR_TABLE_MAX_DEPTH);
    check_status(rc);
    if (rc == WR_OK)
        check_table(raw);
    rc = wr_array_validate(raw, WR_TABLE_MAX_DEPTH);
    check_status(rc);
    if (rc == WR_OK)
        check_array(raw);
    return 0;
}
