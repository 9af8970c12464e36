/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/base/confirm.h: the barrier runs done exactly once, when
 * its last hold goes, and remembers whether any hold failed.
 */
#include <check.h>
#include <stdlib.h>

#include "broker/base/confirm.h"
#include "tests/unit/runner.h"

typedef struct {
    wr_confirm_t base;
    int done;
    bool failed;
} waiter_t;

static void on_done(wr_confirm_t *c)
{
    waiter_t *w = (waiter_t *)c;

    w->done++;
    w->failed = c->failed;
}

START_TEST(test_done_on_last_hold)
{
    waiter_t w = {.base = {3, false, on_done}};

    wr_confirm_release(&w.base, true);
    wr_confirm_release(&w.base, true);
    ck_assert_int_eq(w.done, 0);
    wr_confirm_release(&w.base, true);
    ck_assert_int_eq(w.done, 1);
    ck_assert(!w.failed);
}
END_TEST

START_TEST(test_one_failed_hold_fails_it)
{
    waiter_t w = {.base = {3, false, on_done}};

    wr_confirm_release(&w.base, true);
    wr_confirm_release(&w.base, false);
    wr_confirm_release(&w.base, true);
    ck_assert_int_eq(w.done, 1);
    ck_assert(w.failed);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("confirm");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_done_on_last_hold);
    tcase_add_test(tc, test_one_failed_hold_fails_it);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
