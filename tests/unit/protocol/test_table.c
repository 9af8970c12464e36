/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/table.c: every value type round-trips, malformed
 * tables (truncated, oversized lengths, trailing bytes, unknown tags, too
 * deep) are rejected with the right status, lookup, equivalence, RabbitMQ's
 * type names and value formatting.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/table.h"
#include "tests/unit/runner.h"

/* One value of every tag, with payloads chosen so a wrong width, sign or
 * byte order shows up as a different value. */
static const uint8_t nested_table[] = {1, 'k', 't', 1};
static const uint8_t nested_array[] = {'I', 0xff, 0xff, 0xff, 0xfe, 'V'};

static wr_value_t all_values[18];
static size_t nvalues;

static void build_values(void)
{
    wr_value_t v[] = {
        {.type = 't', .v.b = true},
        {.type = 'b', .v.i = -2},
        {.type = 'B', .v.i = 254},
        {.type = 's', .v.i = -300},
        {.type = 'u', .v.i = 65000},
        {.type = 'I', .v.i = -70000},
        {.type = 'i', .v.i = 4000000000},
        {.type = 'l', .v.i = -5000000000},
        {.type = 'L', .v.i = 5000000000},
        {.type = 'f', .v.f = 1.5f},
        {.type = 'd', .v.d = -2.25},
        {.type = 'D', .v.dec = {2, 12345}},
        {.type = 'S', .v.s = WR_BYTES_LIT("long\0string")},
        {.type = 'x', .v.s = WR_BYTES_LIT("\x00\x01\xff")},
        {.type = 'A', .v.s = {nested_array, sizeof(nested_array)}},
        {.type = 'T', .v.ts = 1700000000},
        {.type = 'F', .v.s = {nested_table, sizeof(nested_table)}},
        {.type = 'V'},
    };

    nvalues = sizeof(v) / sizeof(v[0]);
    memcpy(all_values, v, sizeof(v));
}

/* A table "k0".."k17" holding all_values; entry_end[i] is where entry i ends. */
static wr_bytes_t build_table(wr_buf_t *b, size_t *entry_end)
{
    size_t mark = wr_table_begin(b);

    for (size_t i = 0; i < nvalues; i++) {
        char key[24];
        snprintf(key, sizeof(key), "k%zu", i);
        wr_table_put_key(b, key);
        wr_table_put_value(b, &all_values[i]);
        if (entry_end != NULL)
            entry_end[i] = b->len - mark - 4;
    }
    wr_table_end(b, mark);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data + mark + 4, b->len - mark - 4};
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(test_every_type_round_trips)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t raw = build_table(&b, NULL);
    wr_table_iter_t it;
    wr_bytes_t key;
    wr_value_t v;
    size_t i = 0;

    ck_assert_uint_eq(get_u32(b.data), raw.len); /* wr_table_end patched the length */
    ck_assert_int_eq(wr_table_validate(raw, WR_TABLE_MAX_DEPTH), WR_OK);
    ck_assert_uint_eq(wr_table_count(raw), nvalues);
    wr_table_iter_init(&it, raw);
    while (wr_table_next(&it, &key, &v)) {
        char want[24];
        ck_assert_uint_lt(i, nvalues);
        snprintf(want, sizeof(want), "k%zu", i);
        ck_assert(wr_bytes_eq_str(key, want));
        ck_assert_int_eq(v.type, all_values[i].type);
        ck_assert_msg(wr_value_eq(&v, &all_values[i]), "value %zu (%c) differs", i, v.type);
        i++;
    }
    ck_assert_uint_eq(i, nvalues);

    /* Spot checks on the decoded fields themselves, not just wr_value_eq. */
    ck_assert(wr_table_get(raw, "k1", &v));
    ck_assert_int_eq(v.v.i, -2);
    ck_assert(wr_table_get(raw, "k6", &v));
    ck_assert_int_eq(v.v.i, 4000000000);
    ck_assert(wr_table_get(raw, "k9", &v));
    ck_assert(v.v.f == 1.5f);
    ck_assert(wr_table_get(raw, "k11", &v));
    ck_assert_uint_eq(v.v.dec.scale, 2);
    ck_assert_uint_eq(v.v.dec.value, 12345);
    ck_assert(wr_table_get(raw, "k12", &v));
    ck_assert_uint_eq(v.v.s.len, 11);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_integer_widening)
{
    /* Wire bytes written by hand: all-ones in every width. */
    static const uint8_t raw[] = {
        1,    'b',  'b',  0xff, 1,   'B',  'B',  0xff, 1,    's',  's',  0xff, 0xff, 1,    'u',
        'u',  0xff, 0xff, 1,    'I', 'I',  0xff, 0xff, 0xff, 0xff, 1,    'i',  'i',  0xff, 0xff,
        0xff, 0xff, 1,    'l',  'l', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    static const struct {
        const char *key;
        int64_t want;
    } cases[] = {{"b", -1}, {"B", 255}, {"s", -1}, {"u", 65535}, {"I", -1}, {"i", 4294967295}, {"l", -1}};
    wr_bytes_t t = {raw, sizeof(raw)};

    ck_assert_int_eq(wr_table_validate(t, 1), WR_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wr_value_t v;
        int64_t n;
        ck_assert(wr_table_get(t, cases[i].key, &v));
        ck_assert(wr_value_int(&v, &n));
        ck_assert_msg(n == cases[i].want, "%s: got %lld", cases[i].key, (long long)n);
    }
}
END_TEST

START_TEST(test_value_int_rejects_non_integers)
{
    int64_t n = 7;

    for (size_t i = 0; i < nvalues; i++) {
        bool is_int = strchr("bBsuIilL", all_values[i].type) != NULL;
        ck_assert_int_eq(wr_value_int(&all_values[i], &n), is_int);
    }
}
END_TEST

START_TEST(test_truncated_rejected)
{
    wr_buf_t b = WR_BUF_INIT;
    size_t ends[18];
    wr_bytes_t raw = build_table(&b, ends);
    size_t e = 0;

    /* A prefix that ends on an entry boundary is a smaller valid table;
     * every other prefix cuts a key, tag or value and must be refused. */
    for (size_t len = 0; len < raw.len; len++) {
        wr_bytes_t cut = {raw.data, len};
        while (e < nvalues && ends[e] < len)
            e++;
        if (len == 0 || (e < nvalues && ends[e] == len))
            ck_assert_int_eq(wr_table_validate(cut, WR_TABLE_MAX_DEPTH), WR_OK);
        else
            ck_assert_msg(wr_table_validate(cut, WR_TABLE_MAX_DEPTH) == WR_ESYNTAX, "prefix %zu accepted",
                          len);
    }
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_truncated_array_rejected)
{
    static const uint8_t raw[] = {'S', 0, 0, 0, 2, 'a', 'b', 'l', 1, 2, 3, 4, 5, 6, 7, 8};

    for (size_t len = 0; len < sizeof(raw); len++) {
        int rc = wr_array_validate((wr_bytes_t){raw, len}, 2);
        ck_assert_int_eq(rc, len == 0 || len == 7 ? WR_OK : WR_ESYNTAX);
    }
    ck_assert_int_eq(wr_array_validate((wr_bytes_t){raw, sizeof(raw)}, 2), WR_OK);
}
END_TEST

START_TEST(test_oversized_lengths_rejected)
{
    /* key length past the end */
    static const uint8_t key[] = {200, 'a', 'V'};
    /* longstr, binary, nested table and array lengths past the end (and huge) */
    static const uint8_t str[] = {1, 'a', 'S', 0, 0, 0, 3, 'x', 'y'};
    static const uint8_t bin[] = {1, 'a', 'x', 0xff, 0xff, 0xff, 0xff, 'x'};
    static const uint8_t tab[] = {1, 'a', 'F', 0x80, 0, 0, 0, 0, 'k', 'V'};
    static const uint8_t arr[] = {1, 'a', 'A', 0, 0, 0, 2, 'V'};
    /* a nested entry that would need a byte beyond its table's own length
     * (the 'V' after it belongs to no one): the nested table is truncated */
    static const uint8_t over[] = {1, 'a', 'F', 0, 0, 0, 2, 1, 'k', 'V'};

    ck_assert_int_eq(wr_table_validate((wr_bytes_t){key, sizeof(key)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){str, sizeof(str)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){bin, sizeof(bin)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){tab, sizeof(tab)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){arr, sizeof(arr)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){over, sizeof(over)}, 4), WR_ESYNTAX);
}
END_TEST

START_TEST(test_trailing_bytes_rejected)
{
    /* One stray byte after the last entry, at top level and inside a nested
     * table whose declared length includes it. */
    static const uint8_t top[] = {1, 'a', 'V', 7};
    static const uint8_t nested[] = {1, 'a', 'F', 0, 0, 0, 4, 1, 'k', 'V', 7};
    static const uint8_t in_array[] = {'A', 0, 0, 0, 2, 'V', 'b'};

    ck_assert_int_eq(wr_table_validate((wr_bytes_t){top, sizeof(top)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){nested, sizeof(nested)}, 4), WR_ESYNTAX);
    ck_assert_int_eq(wr_array_validate((wr_bytes_t){in_array, sizeof(in_array)}, 4), WR_ESYNTAX);
}
END_TEST

START_TEST(test_unknown_tag_rejected)
{
    static const uint8_t top[] = {1, 'a', 'Z', 0};
    static const uint8_t nested[] = {1, 'a', 'A', 0, 0, 0, 2, 'V', 'q'};
    static const uint8_t raw[] = {'?'};

    ck_assert_int_eq(wr_table_validate((wr_bytes_t){top, sizeof(top)}, 4), WR_EUNKNOWN);
    ck_assert_int_eq(wr_table_validate((wr_bytes_t){nested, sizeof(nested)}, 4), WR_EUNKNOWN);
    ck_assert_int_eq(wr_array_validate((wr_bytes_t){raw, sizeof(raw)}, 4), WR_EUNKNOWN);
    ck_assert_str_eq(wr_value_type_name('Z'), "unknown");
}
END_TEST

/* `levels` tables nested inside each other, each entry "n" -> F, or arrays
 * of one A element when `arrays`. */
static wr_bytes_t nest(wr_buf_t *b, int levels, bool arrays)
{
    size_t marks[64];

    ck_assert_int_le(levels, 64);
    for (int i = 0; i < levels; i++) {
        marks[i] = wr_table_begin(b);
        if (i + 1 < levels) {
            if (!arrays)
                wr_table_put_key(b, "n");
            wr_buf_put_u8(b, arrays ? 'A' : 'F');
        }
    }
    for (int i = levels - 1; i >= 0; i--)
        wr_table_end(b, marks[i]);
    ck_assert(wr_buf_ok(b));
    return (wr_bytes_t){b->data + 4, b->len - 4};
}

START_TEST(test_depth)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t raw;

    raw = nest(&b, WR_TABLE_MAX_DEPTH, false);
    ck_assert_int_eq(wr_table_validate(raw, WR_TABLE_MAX_DEPTH), WR_OK);
    wr_buf_reset(&b);
    raw = nest(&b, WR_TABLE_MAX_DEPTH + 1, false);
    ck_assert_int_eq(wr_table_validate(raw, WR_TABLE_MAX_DEPTH), WR_EDEPTH);
    wr_buf_reset(&b);
    raw = nest(&b, WR_TABLE_MAX_DEPTH, true);
    ck_assert_int_eq(wr_array_validate(raw, WR_TABLE_MAX_DEPTH), WR_OK);
    wr_buf_reset(&b);
    raw = nest(&b, WR_TABLE_MAX_DEPTH + 1, true);
    ck_assert_int_eq(wr_array_validate(raw, WR_TABLE_MAX_DEPTH), WR_EDEPTH);
    wr_buf_reset(&b);
    raw = nest(&b, 2, false);
    ck_assert_int_eq(wr_table_validate(raw, 2), WR_OK);
    ck_assert_int_eq(wr_table_validate(raw, 1), WR_EDEPTH);
    ck_assert_int_eq(wr_table_validate(raw, 0), WR_EDEPTH);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_get_and_count)
{
    /* Duplicate keys: the first wins, as in RabbitMQ. */
    static const uint8_t raw[] = {1, 'a', 'B', 1, 1, 'b', 'B', 2, 1, 'a', 'B', 3, 0, 'V'};
    wr_bytes_t t = {raw, sizeof(raw)};
    wr_value_t v;

    ck_assert_int_eq(wr_table_validate(t, 1), WR_OK);
    ck_assert_uint_eq(wr_table_count(t), 4);
    ck_assert(wr_table_get(t, "a", &v));
    ck_assert_int_eq(v.v.i, 1);
    ck_assert(wr_table_get(t, "b", &v));
    ck_assert_int_eq(v.v.i, 2);
    ck_assert(wr_table_get(t, "", &v));
    ck_assert_int_eq(v.type, 'V');
    ck_assert(!wr_table_get(t, "c", &v));
    ck_assert(!wr_table_get(t, "aa", NULL));
    ck_assert_uint_eq(wr_table_count((wr_bytes_t){NULL, 0}), 0);
}
END_TEST

START_TEST(test_equiv)
{
    static const uint8_t ab[] = {1, 'a', 'B', 1, 1, 'b', 'S', 0, 0, 0, 1, 'x'};
    static const uint8_t ba[] = {1, 'b', 'S', 0, 0, 0, 1, 'x', 1, 'a', 'B', 1};
    static const uint8_t ab_other_tag[] = {1, 'a', 'b', 1, 1, 'b', 'S', 0, 0, 0, 1, 'x'};
    static const uint8_t a_only[] = {1, 'a', 'B', 1};
    static const uint8_t aa[] = {1, 'a', 'B', 1, 1, 'a', 'B', 1};
    static const uint8_t a_c[] = {1, 'a', 'B', 1, 1, 'c', 'B', 1};
    wr_bytes_t tab = {ab, sizeof(ab)}, tba = {ba, sizeof(ba)};

    ck_assert(wr_table_equiv(tab, tba));
    ck_assert(wr_table_equiv(tba, tab));
    ck_assert(!wr_table_equiv(tab, (wr_bytes_t){ab_other_tag, sizeof(ab_other_tag)}));
    ck_assert(!wr_table_equiv(tab, (wr_bytes_t){a_only, sizeof(a_only)}));
    ck_assert(!wr_table_equiv((wr_bytes_t){aa, sizeof(aa)}, (wr_bytes_t){a_c, sizeof(a_c)}));
    ck_assert(wr_table_equiv((wr_bytes_t){NULL, 0}, (wr_bytes_t){NULL, 0}));
}
END_TEST

START_TEST(test_equiv_large_tables)
{
    /* More entries than the comparison keeps on the stack, in opposite orders. */
    wr_buf_t a = WR_BUF_INIT, b = WR_BUF_INIT;
    wr_bytes_t ta, tb;

    for (int i = 0; i < 100; i++) {
        char key[24];
        snprintf(key, sizeof(key), "k%d", i);
        wr_table_put_long(&a, key, i);
        snprintf(key, sizeof(key), "k%d", 99 - i);
        wr_table_put_long(&b, key, 99 - i);
    }
    ta = (wr_bytes_t){a.data, a.len};
    tb = (wr_bytes_t){b.data, b.len};
    ck_assert(wr_table_equiv(ta, tb));
    /* Change one value deep in b. */
    b.data[b.len - 1] ^= 1;
    ck_assert(!wr_table_equiv(ta, tb));
    wr_buf_free(&a);
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_value_eq)
{
    static const uint8_t t1[] = {1, 'x', 'B', 1, 1, 'y', 'B', 2};
    static const uint8_t t2[] = {1, 'y', 'B', 2, 1, 'x', 'B', 1};
    static const uint8_t a1[] = {'B', 1, 'B', 2};
    static const uint8_t a2[] = {'B', 2, 'B', 1};
    static const uint8_t a3[] = {'B', 1};
    wr_value_t f1 = {.type = 'F', .v.s = {t1, sizeof(t1)}};
    wr_value_t f2 = {.type = 'F', .v.s = {t2, sizeof(t2)}};
    wr_value_t va1 = {.type = 'A', .v.s = {a1, sizeof(a1)}};
    wr_value_t va2 = {.type = 'A', .v.s = {a2, sizeof(a2)}};
    wr_value_t va3 = {.type = 'A', .v.s = {a3, sizeof(a3)}};
    wr_value_t l1 = {.type = 'l', .v.i = 1}, i1 = {.type = 'I', .v.i = 1};
    wr_value_t nan1 = {.type = 'd', .v.d = NAN}, nan2 = nan1;
    wr_value_t d1 = {.type = 'D', .v.dec = {1, 5}}, d2 = {.type = 'D', .v.dec = {2, 5}};

    ck_assert(wr_value_eq(&f1, &f2));    /* tables: order-insensitive */
    ck_assert(!wr_value_eq(&va1, &va2)); /* arrays: order matters */
    ck_assert(!wr_value_eq(&va1, &va3));
    ck_assert(!wr_value_eq(&va3, &va1));
    ck_assert(wr_value_eq(&va1, &va1));
    ck_assert(!wr_value_eq(&l1, &i1)); /* same number, different tag */
    ck_assert(wr_value_eq(&nan1, &nan2));
    ck_assert(!wr_value_eq(&d1, &d2));
    for (size_t i = 0; i < nvalues; i++)
        for (size_t j = 0; j < nvalues; j++)
            ck_assert_int_eq(wr_value_eq(&all_values[i], &all_values[j]), i == j);
}
END_TEST

START_TEST(test_type_names)
{
    static const struct {
        uint8_t tag;
        const char *name;
    } names[] = {
        {'t', "bool"},          {'b', "byte"},      {'B', "unsignedbyte"}, {'s', "short"},
        {'u', "unsignedshort"}, {'I', "signedint"}, {'i', "unsignedint"},  {'l', "long"},
        {'L', "long"},          {'f', "float"},     {'d', "double"},       {'D', "decimal"},
        {'S', "longstr"},       {'x', "binary"},    {'A', "array"},        {'T', "timestamp"},
        {'F', "table"},         {'V', "void"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_str_eq(wr_value_type_name(names[i].tag), names[i].name);
}
END_TEST

static const char *fmt(const wr_value_t *v, size_t n)
{
    static char out[256];

    memset(out, 'X', sizeof(out));
    wr_value_format(v, out, n);
    return out;
}

START_TEST(test_format)
{
    static const uint8_t nested[] = {1, 'k', 'S', 0, 0, 0, 1, 'v', 1, 'n', 'A', 0, 0, 0, 3, 't', 1, 'V'};
    wr_value_t v;

    v = (wr_value_t){.type = 'l', .v.i = 10};
    ck_assert_str_eq(fmt(&v, 256), "10");
    v = (wr_value_t){.type = 'I', .v.i = -3};
    ck_assert_str_eq(fmt(&v, 256), "-3");
    v = (wr_value_t){.type = 't', .v.b = true};
    ck_assert_str_eq(fmt(&v, 256), "true");
    v = (wr_value_t){.type = 'S', .v.s = WR_BYTES_LIT("abc")};
    ck_assert_str_eq(fmt(&v, 256), "abc");
    ck_assert_str_eq(fmt(&v, 3), "ab"); /* cut to the buffer, NUL-terminated */
    ck_assert_str_eq(fmt(&v, 1), "");
    v = (wr_value_t){.type = 'd', .v.d = 1.5};
    ck_assert_str_eq(fmt(&v, 256), "1.5");
    v = (wr_value_t){.type = 'd', .v.d = 2.0};
    ck_assert_str_eq(fmt(&v, 256), "2.0");
    v = (wr_value_t){.type = 'd', .v.d = 0.1};
    ck_assert_str_eq(fmt(&v, 256), "0.1");
    v = (wr_value_t){.type = 'D', .v.dec = {2, 12345}};
    ck_assert_str_eq(fmt(&v, 256), "{2,12345}");
    v = (wr_value_t){.type = 'T', .v.ts = 1700000000};
    ck_assert_str_eq(fmt(&v, 256), "1700000000");
    v = (wr_value_t){.type = 'V'};
    ck_assert_str_eq(fmt(&v, 256), "undefined");
    v = (wr_value_t){.type = 'F', .v.s = {nested, sizeof(nested)}};
    ck_assert_str_eq(fmt(&v, 256),
                     "[{<<\"k\">>,longstr,<<\"v\">>},{<<\"n\">>,array,[{bool,true},{void,undefined}]}]");
    ck_assert_str_eq(fmt(&v, 8), "[{<<\"k\"");
}
END_TEST

START_TEST(test_encoders)
{
    static const uint8_t want[] = {0,   0,   0, 24, 1,   's', 'S',  0,    0,    0,    2,    'h',  'i',  1,
                                   'b', 't', 1, 1,  'l', 'l', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    wr_buf_t b = WR_BUF_INIT;
    size_t mark = wr_table_begin(&b);

    wr_table_put_str(&b, "s", "hi");
    wr_table_put_bool(&b, "b", true);
    wr_table_put_long(&b, "l", -2);
    wr_table_end(&b, mark);
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    wr_buf_free(&b);
}
END_TEST

START_TEST(test_put_unknown_tag_fails_buffer)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_value_t v = {.type = 'Z'};

    wr_table_put_value(&b, &v);
    ck_assert(!wr_buf_ok(&b));
    wr_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol-table");
    TCase *tc = tcase_create("table");

    tcase_add_checked_fixture(tc, build_values, NULL);
    tcase_add_test(tc, test_every_type_round_trips);
    tcase_add_test(tc, test_integer_widening);
    tcase_add_test(tc, test_value_int_rejects_non_integers);
    tcase_add_test(tc, test_truncated_rejected);
    tcase_add_test(tc, test_truncated_array_rejected);
    tcase_add_test(tc, test_oversized_lengths_rejected);
    tcase_add_test(tc, test_trailing_bytes_rejected);
    tcase_add_test(tc, test_unknown_tag_rejected);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_get_and_count);
    tcase_add_test(tc, test_equiv);
    tcase_add_test(tc, test_equiv_large_tables);
    tcase_add_test(tc, test_value_eq);
    tcase_add_test(tc, test_type_names);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_encoders);
    tcase_add_test(tc, test_put_unknown_tag_fails_buffer);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
