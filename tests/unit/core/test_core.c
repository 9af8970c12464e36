/* SPDX-License-Identifier: MIT */
/* Unit tests for core/: the hash map, the encoder buffer, byte-string order, the intrusive list. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/bytes.h"
#include "core/list.h"
#include "core/map.h"
#include "core/status.h"
#include "tests/unit/runner.h"

START_TEST(map_put_get_del)
{
    wr_map_t *m = wr_map_new();
    char key[32];
    int vals[2000];

    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < 2000; i++) {
        vals[i] = i;
        snprintf(key, sizeof(key), "q-%d", i);
        ck_assert_int_eq(wr_map_put(m, wr_bytes_str(key), &vals[i]), WR_OK);
    }
    ck_assert_uint_eq(wr_map_count(m), 2000);
    ck_assert_int_eq(wr_map_put(m, wr_bytes_str("q-7"), NULL), WR_EEXIST);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "q-%d", i);
        ck_assert_ptr_eq(wr_map_get(m, wr_bytes_str(key)), &vals[i]);
    }
    ck_assert_ptr_null(wr_map_get(m, wr_bytes_str("q-2000")));
    ck_assert_ptr_eq(wr_map_del(m, wr_bytes_str("q-5")), &vals[5]);
    ck_assert_ptr_null(wr_map_del(m, wr_bytes_str("q-5")));
    ck_assert_ptr_null(wr_map_get(m, wr_bytes_str("q-5")));
    ck_assert_uint_eq(wr_map_count(m), 1999);
    wr_map_free(m);
}
END_TEST

START_TEST(map_empty_and_binary_keys)
{
    wr_map_t *m = wr_map_new();
    int a = 1, b = 2;
    const uint8_t k1[] = {'a', 0, 'b'};
    const uint8_t k2[] = {'a', 0, 'c'};

    ck_assert_int_eq(wr_map_put(m, WR_BYTES_LIT(""), &a), WR_OK);
    ck_assert_int_eq(wr_map_put(m, (wr_bytes_t){k1, 3}, &b), WR_OK);
    ck_assert_ptr_eq(wr_map_get(m, WR_BYTES_LIT("")), &a);
    ck_assert_ptr_eq(wr_map_get(m, (wr_bytes_t){k1, 3}), &b);
    ck_assert_ptr_null(wr_map_get(m, (wr_bytes_t){k2, 3}));
    wr_map_free(m);
}
END_TEST

START_TEST(map_iterate_and_delete_current)
{
    wr_map_t *m = wr_map_new();
    char key[16];
    wr_map_iter_t it = {0};
    wr_bytes_t k;
    void *v;
    size_t seen = 0;

    for (intptr_t i = 1; i <= 100; i++) {
        snprintf(key, sizeof(key), "%ld", (long)i);
        ck_assert_int_eq(wr_map_put(m, wr_bytes_str(key), (void *)i), WR_OK);
    }
    while (wr_map_next(m, &it, &k, &v)) {
        seen++;
        ck_assert_ptr_eq(wr_map_del(m, k), v);
    }
    ck_assert_uint_eq(seen, 100);
    ck_assert_uint_eq(wr_map_count(m), 0);
    wr_map_free(m);
}
END_TEST

START_TEST(buf_big_endian_and_patch)
{
    wr_buf_t b = WR_BUF_INIT;
    const uint8_t want[] = {0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x2a, 0, 0, 0, 0, 0, 0, 0, 0xff};

    wr_buf_put_u8(&b, 1);
    wr_buf_put_u16(&b, 0x0203);
    wr_buf_put_u32(&b, 0);
    wr_buf_put_u64(&b, 0xff);
    wr_buf_patch_u32(&b, 3, 42);
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    wr_buf_patch_u32(&b, b.len - 3, 7); /* out of range: ignored */
    ck_assert_mem_eq(b.data, want, sizeof(want));
    wr_buf_free(&b);
}
END_TEST

/* After a failed allocation every write is a no-op, even one that would fit
 * the capacity left (the inline writers check oom too). */
START_TEST(buf_oom_is_sticky)
{
    wr_buf_t b = WR_BUF_INIT;

    wr_buf_put_u8(&b, 1);
    ck_assert_uint_gt(b.cap, 8);
    b.oom = true; /* as a failed realloc leaves it */
    wr_buf_put_u8(&b, 2);
    wr_buf_put_u16(&b, 3);
    wr_buf_put_u32(&b, 4);
    wr_buf_put_u64(&b, 5);
    wr_buf_put(&b, "x", 1);
    ck_assert(!wr_buf_reserve(&b, 1));
    ck_assert(!wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, 1);
    wr_buf_reset(&b);
    wr_buf_put_u8(&b, 6);
    ck_assert(wr_buf_ok(&b));
    ck_assert_uint_eq(b.len, 1);
    ck_assert_uint_eq(b.data[0], 6);
    wr_buf_free(&b);
}
END_TEST

typedef struct {
    int v;
    wr_list_t node;
} item_t;

/* Bytewise, a prefix first, bytes unsigned; empty strings may have NULL data. */
/* RFC 4648's test vectors, both ways, and what decoding refuses. */
START_TEST(base64_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char enc[16];
    uint8_t dec[16];

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t n = strlen(plain[i]);

        ck_assert_uint_eq(wr_base64_encoded_len(n), strlen(coded[i]));
        wr_base64_encode((const uint8_t *)plain[i], n, enc);
        ck_assert_str_eq(enc, coded[i]);
        ck_assert_int_eq(wr_base64_decode(coded[i], strlen(coded[i]), dec, sizeof(dec)), (long)n);
        ck_assert(n == 0 || memcmp(dec, plain[i], n) == 0);
    }
    ck_assert_int_eq(wr_base64_decode("Zm9vYg", 6, dec, sizeof(dec)), 4); /* padding optional */
    ck_assert_int_eq(wr_base64_decode("Zm9v!", 5, dec, sizeof(dec)), -1);
    ck_assert_int_eq(wr_base64_decode("Zg==Zg==", 8, dec, sizeof(dec)), -1);
    ck_assert_int_eq(wr_base64_decode("Zm9vYmFy", 8, dec, 5), -1); /* no room */
}
END_TEST

START_TEST(bytes_cmp_order)
{
    static const uint8_t hi[] = {0xff}, lo[] = {0x01, 0x00};

    ck_assert_int_eq(wr_bytes_cmp(wr_bytes_str("abc"), wr_bytes_str("abc")), 0);
    ck_assert_int_lt(wr_bytes_cmp(wr_bytes_str("ab"), wr_bytes_str("abc")), 0);
    ck_assert_int_gt(wr_bytes_cmp(wr_bytes_str("abc"), wr_bytes_str("ab")), 0);
    ck_assert_int_lt(wr_bytes_cmp(wr_bytes_str("abc"), wr_bytes_str("abd")), 0);
    ck_assert_int_gt(wr_bytes_cmp(wr_bytes_str("b"), wr_bytes_str("abc")), 0);
    ck_assert_int_gt(wr_bytes_cmp((wr_bytes_t){hi, 1}, (wr_bytes_t){lo, 2}), 0);
    ck_assert_int_eq(wr_bytes_cmp((wr_bytes_t){NULL, 0}, wr_bytes_str("")), 0);
    ck_assert_int_lt(wr_bytes_cmp((wr_bytes_t){NULL, 0}, wr_bytes_str("a")), 0);
}
END_TEST

START_TEST(list_insert_remove)
{
    wr_list_t head, *pos, *tmp;
    item_t items[4];
    int order[4], n = 0;

    wr_list_init(&head);
    ck_assert(wr_list_empty(&head));
    for (int i = 0; i < 4; i++) {
        items[i].v = i;
        wr_list_insert_tail(&head, &items[i].node);
    }
    wr_list_remove(&items[1].node);
    wr_list_remove(&items[1].node); /* second removal is harmless */
    wr_list_insert_tail(&head, &items[1].node);
    wr_list_foreach_safe(pos, tmp, &head) order[n++] = wr_list_entry(pos, item_t, node)->v;
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(order[0], 0);
    ck_assert_int_eq(order[1], 2);
    ck_assert_int_eq(order[2], 3);
    ck_assert_int_eq(order[3], 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, map_put_get_del);
    tcase_add_test(tc, map_empty_and_binary_keys);
    tcase_add_test(tc, map_iterate_and_delete_current);
    tcase_add_test(tc, buf_big_endian_and_patch);
    tcase_add_test(tc, buf_oom_is_sticky);
    tcase_add_test(tc, bytes_cmp_order);
    tcase_add_test(tc, base64_vectors);
    tcase_add_test(tc, list_insert_remove);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
