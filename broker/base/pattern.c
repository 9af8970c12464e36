/* SPDX-License-Identifier: MIT */
/*
 * The expansion bound of pattern.h. The pattern is walked once: each atom
 * counts 1, a group the sum of its elements, and a repetition multiplies
 * its element by the copies regcomp makes ('+' two, "{m,n}" one more than
 * the larger bound; '*' and '?' none). A repetition of a repetition, which
 * POSIX leaves undefined and glibc compiles slowly ("b****..."), is refused,
 * except one '?' (PCRE's lazy "+?", "*?"). Sums saturate above the limit.
 */
#include "broker/base/pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Atoms after expansion (real patterns stay in the tens), and the largest
 * bound of one "{m,n}": its compile time grows with the square of n
 * (a{1,255}: 18 ms, a{1,1000}: 0.1 s, a{1,9999}: 14 s). */
#define PATTERN_MAX_SIZE   2560
#define PATTERN_MAX_REPEAT 255
#define PATTERN_MAX_DEPTH  64

typedef struct {
    uint64_t sum;  /* the group so far */
    uint64_t last; /* its last element, which a repetition applies to */
} group_t;

static uint64_t clamp(uint64_t v)
{
    return v > PATTERN_MAX_SIZE + 1 ? PATTERN_MAX_SIZE + 1 : v;
}

/* Past a bracket expression starting at p ('['); its ']' or the end. */
static const char *skip_bracket(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    for (; *p && *p != ']'; p++) {
        if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close = p[1];

            for (p += 2; *p && !(p[0] == close && p[1] == ']'); p++)
                ;
            if (!*p)
                return p - 1;
            p++;
        }
    }
    return *p ? p : p - 1;
}

/* The copies "{m,n}" at p makes, and *end past it; 0 if it is no interval. */
static uint64_t interval(const char *p, const char **end)
{
    uint64_t m = 0, n = 0;
    bool digits = false;

    for (p++; *p >= '0' && *p <= '9'; p++, digits = true)
        m = clamp(m * 10 + (uint64_t)(*p - '0'));
    if (*p == ',')
        for (p++; *p >= '0' && *p <= '9'; p++, digits = true)
            n = clamp(n * 10 + (uint64_t)(*p - '0'));
    if (*p != '}' || !digits)
        return 0;
    *end = p;
    return (m > n ? m : n) + 1;
}

/* Adds element size v to g. */
static void add(group_t *g, uint64_t v)
{
    g->last = clamp(v);
    g->sum = clamp(g->sum + g->last);
}

/* Multiplies g's last element by copies. */
static void repeat(group_t *g, uint64_t copies)
{
    uint64_t grown = clamp(g->last * copies);

    g->sum = clamp(g->sum - g->last + grown);
    g->last = grown;
}

/* Whether c starts a repetition ("{" only when it is an interval). */
static bool is_repeat(const char *p)
{
    const char *end;

    return *p == '*' || *p == '+' || *p == '?' || (*p == '{' && interval(p, &end) != 0);
}

bool wr_pattern_ok(const char *pattern, char *why, size_t n)
{
    group_t stack[PATTERN_MAX_DEPTH + 1] = {{0, 0}};
    size_t depth = 0;
    int stacked = 0; /* repetitions since the last element */
    uint64_t copies;
    const char *end;

    for (const char *p = pattern; *p; p++) {
        if (is_repeat(p) && stacked > 0 && !(stacked == 1 && *p == '?')) {
            snprintf(why, n, "pattern too complex: a repetition of a repetition");
            return false;
        }
        stacked = is_repeat(p) ? stacked + 1 : 0;
        if (*p == '(') {
            if (depth == PATTERN_MAX_DEPTH) {
                snprintf(why, n, "pattern too complex: groups nested deeper than %d", PATTERN_MAX_DEPTH);
                return false;
            }
            stack[++depth] = (group_t){0, 0};
        } else if (*p == ')' && depth > 0) {
            depth--;
            add(&stack[depth], stack[depth + 1].sum);
        } else if (*p == '+') {
            repeat(&stack[depth], 2);
        } else if (*p == '{' && (copies = interval(p, &end)) != 0) {
            if (copies > PATTERN_MAX_REPEAT + 1) {
                snprintf(why, n, "pattern too complex: a repetition bound above %d", PATTERN_MAX_REPEAT);
                return false;
            }
            repeat(&stack[depth], copies);
            p = end;
        } else if (*p != '*' && *p != '?' && *p != '|') {
            if (*p == '[')
                p = skip_bracket(p);
            else if (*p == '\\' && p[1])
                p++;
            add(&stack[depth], 1);
        }
        if (stack[depth].sum > PATTERN_MAX_SIZE) {
            snprintf(why, n, "pattern too complex: it expands past %d elements", PATTERN_MAX_SIZE);
            return false;
        }
    }
    return true;
}

bool wr_pattern_matches(const regex_t *re, wr_bytes_t name)
{
    char small[256];
    char *copy = small;
    regmatch_t span = {0, (regoff_t)name.len};
    bool match;

    /* REG_STARTEND bounds the match, but sanitizers' regexec wrappers still
     * read up to a NUL: give them one. Longer names come only from
     * arguments (a dead-letter or alternate exchange). */
    if (name.len >= sizeof(small) && !(copy = malloc(name.len + 1)))
        return false;
    if (name.len > 0)
        memcpy(copy, name.data, name.len);
    copy[name.len] = '\0';
    match = regexec(re, copy, 1, &span, REG_STARTEND) == 0;
    if (copy != small)
        free(copy);
    return match;
}
