/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/base/pattern.c: patterns people write pass; patterns
 * that glibc's regcomp would expand for minutes (nested or chained
 * repetitions, deep groups) are refused with a reason, quickly.
 */
#include <check.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "broker/base/pattern.h"
#include "tests/unit/runner.h"

START_TEST(test_ordinary_patterns_pass)
{
    static const char *const ok[] = {"",
                                     ".*",
                                     "^amq\\.",
                                     "^(q|r)\\.[0-9]{1,3}$",
                                     "[[:alpha:]]+",
                                     "^a{2,5}b+c*$",
                                     "[]{}+]+x{99}",
                                     "(a|b)+(c+)?",
                                     "^q.+?$"};
    char why[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(wr_pattern_ok(ok[i], why, sizeof(why)), "%s: %s", ok[i], why);
}
END_TEST

START_TEST(test_expanding_patterns_refused)
{
    char chained[130] = "^q", nested[400] = "", why[128];

    memset(chained + 2, '+', 120);
    for (int i = 0; i < 65; i++)
        strcat(nested, "(");
    ck_assert(!wr_pattern_ok(chained, why, sizeof(why)));
    ck_assert_str_eq(why, "pattern too complex: a repetition of a repetition");
    ck_assert(!wr_pattern_ok("((a{1,200}){1,200}){1,200}", why, sizeof(why)));
    ck_assert(!wr_pattern_ok("(a{1,50}){1,50}", why, sizeof(why)));
    ck_assert_str_eq(why, "pattern too complex: it expands past 2560 elements");
    ck_assert(!wr_pattern_ok("a{1,9999}", why, sizeof(why)));
    ck_assert_str_eq(why, "pattern too complex: a repetition bound above 255");
    ck_assert(!wr_pattern_ok("(((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)", why, sizeof(why)));
    ck_assert(!wr_pattern_ok("^(a|b*********)+x", why, sizeof(why)));
    ck_assert_str_eq(why, "pattern too complex: a repetition of a repetition");
    ck_assert(!wr_pattern_ok("a+??", why, sizeof(why)));
    ck_assert(!wr_pattern_ok(nested, why, sizeof(why)));
    ck_assert_str_eq(why, "pattern too complex: groups nested deeper than 64");
}
END_TEST

/* What the bound protects: the refused pattern would not compile in time,
 * the largest accepted one compiles at once. */
START_TEST(test_accepted_bound_compiles)
{
    regex_t re;
    char why[128];

    ck_assert(wr_pattern_ok("(abcdefghij){1,255}", why, sizeof(why)));
    ck_assert_int_eq(regcomp(&re, "(abcdefghij){1,255}", REG_EXTENDED | REG_NOSUB), 0);
    regfree(&re);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pattern");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_ordinary_patterns_pass);
    tcase_add_test(tc, test_expanding_patterns_refused);
    tcase_add_test(tc, test_accepted_bound_compiles);
    suite_add_tcase(s, tc);
    return wr_test_run(s);
}
