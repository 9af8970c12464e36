/* SPDX-License-Identifier: MIT */
/*
 * A bound on the regular expressions warren compiles from outside input
 * (policy patterns, permission patterns). glibc's regcomp expands each
 * repetition by copying what it repeats, so a short pattern ("a++++...",
 * "((a{1,200}){1,200}){1,200}", "a{1,9999}") can take minutes and
 * gigabytes to compile.
 */
#ifndef WR_BROKER_PATTERN_H
#define WR_BROKER_PATTERN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/bytes.h"

/*
 * Whether pattern (a POSIX extended regular expression, NUL-terminated)
 * stays within the size regcomp may expand it to. False with the reason in
 * why ("pattern too complex: ...") when it does not; a pattern that passes
 * may still fail to compile. Pure, no allocation.
 */
bool wr_pattern_ok(const char *pattern, char *why, size_t n);

/* Whether re matches somewhere in name, taken by its length (NUL octets
 * included), as RabbitMQ's re:run takes binaries; false on ENOMEM. Policy
 * and permission patterns are matched this way. */
bool wr_pattern_matches(const regex_t *re, wr_bytes_t name);

#endif
