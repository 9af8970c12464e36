/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for storage/vfs.c and tests/sim/simdisk.c: the same contract
 * checks on the real disk and on simdisk, then simdisk's crash model (unsynced
 * writes and directory entries lost, torn prefixes kept, bits flipped).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "helpers.h"
#include "storage/vfs.h"
#include "tests/sim/simdisk.h"
#include "tests/unit/runner.h"

typedef struct {
    char names[16][64];
    int n;
} names_t;

static int collect(void *ud, const char *name)
{
    names_t *l = ud;

    snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
    return WR_OK;
}

/* The contract, on any implementation; base is an existing, empty directory. */
static void contract(const wr_vfs_t *v, const char *base)
{
    char dir[4096], a[4200], b[4200], buf[16];
    wr_vfs_file_t *f;
    uint64_t size;
    size_t got;
    names_t l = {0};

    snprintf(dir, sizeof(dir), "%s/d", base);
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    ck_assert_int_eq(wr_vfs_mkdir(v, dir), WR_OK);
    ck_assert_int_eq(wr_vfs_mkdir(v, dir), WR_EEXIST);
    ck_assert_int_eq(wr_vfs_open(v, a, false, &f), WR_ENOENT);
    ck_assert_int_eq(wr_vfs_open(v, a, true, &f), WR_OK);
    ck_assert_int_eq(wr_vfs_pwrite(f, "hello world", 11, 0), WR_OK);
    ck_assert_int_eq(wr_vfs_pwrite(f, "W", 1, 6), WR_OK);
    ck_assert_int_eq(wr_vfs_pread(f, buf, sizeof(buf), 0, &got), WR_OK);
    ck_assert_uint_eq(got, 11);
    ck_assert_mem_eq(buf, "hello World", 11);
    ck_assert_int_eq(wr_vfs_truncate(f, 5), WR_OK);
    ck_assert_int_eq(wr_vfs_size(f, &size), WR_OK);
    ck_assert_uint_eq(size, 5);
    ck_assert_int_eq(wr_vfs_datasync(f), WR_OK);
    wr_vfs_close(f);
    ck_assert_int_eq(wr_vfs_rename(v, a, b), WR_OK);
    ck_assert_int_eq(wr_vfs_sync_dir(v, dir), WR_OK);
    ck_assert_int_eq(wr_vfs_list(v, dir, collect, &l), WR_OK);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.names[0], "b");
    ck_assert_int_eq(wr_vfs_sync_all(v, dir), WR_OK);
    ck_assert_int_eq(wr_vfs_unlink(v, b), WR_OK);
    ck_assert_int_eq(wr_vfs_unlink(v, b), WR_ENOENT);
    wr_vfs_close(NULL);
}

START_TEST(posix_contract)
{
    contract(wr_vfs_posix(), th_tmpdir());
    th_rmdir();
}
END_TEST

START_TEST(simdisk_contract)
{
    wr_simdisk_t *d = wr_simdisk_new(1);

    ck_assert_int_eq(wr_vfs_mkdir(wr_simdisk_vfs(d), "base"), WR_OK);
    contract(wr_simdisk_vfs(d), "base");
    ck_assert_uint_eq(wr_simdisk_stats(d).datasyncs, 1);
    wr_simdisk_free(d);
}
END_TEST

/* A file "f" in the root holding text, durable (data and name) when sync. */
static wr_vfs_file_t *make(wr_simdisk_t *d, const char *text, bool sync)
{
    const wr_vfs_t *v = wr_simdisk_vfs(d);
    wr_vfs_file_t *f;

    ck_assert_int_eq(wr_vfs_open(v, "f", true, &f), WR_OK);
    ck_assert_int_eq(wr_vfs_pwrite(f, text, strlen(text), 0), WR_OK);
    if (sync) {
        ck_assert_int_eq(wr_vfs_datasync(f), WR_OK);
        ck_assert_int_eq(wr_vfs_sync_dir(v, ""), WR_OK);
    }
    return f;
}

START_TEST(crash_drops_unsynced)
{
    wr_simdisk_t *d = wr_simdisk_new(2);
    wr_vfs_file_t *f = make(d, "durable", true);
    uint64_t size;

    ck_assert_int_eq(wr_vfs_pwrite(f, "+more", 5, 7), WR_OK);
    wr_vfs_close(f);
    wr_simdisk_crash(d, false);
    ck_assert_int_eq(wr_simdisk_file_size(d, "f", &size), WR_OK);
    ck_assert_uint_eq(size, 7);
    wr_simdisk_free(d);
}
END_TEST

START_TEST(crash_drops_unsynced_name)
{
    wr_simdisk_t *d = wr_simdisk_new(3);
    wr_vfs_file_t *f = make(d, "data", false);
    uint64_t size;

    ck_assert_int_eq(wr_vfs_datasync(f), WR_OK); /* data durable, but the name never was */
    wr_vfs_close(f);
    wr_simdisk_crash(d, false);
    ck_assert_int_eq(wr_simdisk_file_size(d, "f", &size), WR_ENOENT);
    wr_simdisk_free(d);
}
END_TEST

START_TEST(sync_all_makes_data_and_names_durable)
{
    wr_simdisk_t *d = wr_simdisk_new(5);
    wr_vfs_file_t *f = make(d, "data", false);
    uint64_t size;

    wr_vfs_close(f);
    ck_assert_int_eq(wr_vfs_sync_all(wr_simdisk_vfs(d), "f"), WR_OK);
    wr_simdisk_crash(d, true);
    ck_assert_int_eq(wr_simdisk_file_size(d, "f", &size), WR_OK);
    ck_assert_uint_eq(size, 4);
    ck_assert_uint_eq(wr_simdisk_stats(d).syncalls, 1);
    wr_simdisk_free(d);
}
END_TEST

START_TEST(torn_crash_keeps_a_prefix)
{
    bool shorter = false, whole = false;

    for (uint64_t seed = 1; seed <= 64; seed++) {
        wr_simdisk_t *d = wr_simdisk_new(seed);
        wr_vfs_file_t *f = make(d, "", true);
        char buf[64];
        size_t got;
        uint64_t size;

        ck_assert_int_eq(wr_vfs_pwrite(f, "0123456789", 10, 0), WR_OK);
        ck_assert_int_eq(wr_vfs_pwrite(f, "abcdefghij", 10, 10), WR_OK);
        wr_vfs_close(f);
        wr_simdisk_crash(d, true);
        ck_assert_int_eq(wr_simdisk_file_size(d, "f", &size), WR_OK);
        ck_assert_int_eq(wr_vfs_open(wr_simdisk_vfs(d), "f", false, &f), WR_OK);
        ck_assert_int_eq(wr_vfs_pread(f, buf, sizeof(buf), 0, &got), WR_OK);
        ck_assert_mem_eq(buf, "0123456789abcdefghij", got); /* always a prefix, never garbage */
        shorter |= size < 20;
        whole |= size == 20;
        wr_vfs_close(f);
        wr_simdisk_free(d);
    }
    ck_assert(shorter && whole);
}
END_TEST

START_TEST(flip_bit_reaches_the_durable_image)
{
    wr_simdisk_t *d = wr_simdisk_new(4);
    wr_vfs_file_t *f = make(d, "abc", true);
    char buf[4];
    size_t got;

    wr_vfs_close(f);
    ck_assert_int_eq(wr_simdisk_flip_bit(d, "f", 1, 0), WR_OK);
    ck_assert_int_eq(wr_simdisk_flip_bit(d, "f", 3, 0), WR_ENOENT);
    wr_simdisk_crash(d, false);
    ck_assert_int_eq(wr_vfs_open(wr_simdisk_vfs(d), "f", false, &f), WR_OK);
    ck_assert_int_eq(wr_vfs_pread(f, buf, 3, 0, &got), WR_OK);
    ck_assert_mem_eq(buf, "acc", 3);
    wr_vfs_close(f);
    wr_simdisk_free(d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("vfs");
    TCase *tc = tcase_create("all");

    tcase_add_test(tc, posix_contract);
    tcase_add_test(tc, simdisk_contract);
    tcase_add_test(tc, crash_drops_unsynced);
    tcase_add_test(tc, crash_drops_unsynced_name);
    tcase_add_test(tc, sync_all_makes_data_and_names_durable);
    tcase_add_test(tc, torn_crash_keeps_a_prefix);
    tcase_add_test(tc, flip_bit_reaches_the_durable_image);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(suite());
}
