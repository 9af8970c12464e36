/* SPDX-License-Identifier: MIT */
/*
 * Shared by the broker unit tests that load configuration text: writes the
 * text to a fresh temp file and loads it with wr_config_load, so that the
 * problems in err name that file as a real start-up would.
 */
#ifndef WR_TEST_CONFIG_FIXTURE_H
#define WR_TEST_CONFIG_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/config/config.h"

#define WR_TEST_CONFIG_PATH_MAX 64

/* wr_config_load of text; the temp file's name (removed again) is left in
 * path for comparing with the problem lines in err. */
static inline wr_config_t *wr_test_config_load(const char *text, char path[WR_TEST_CONFIG_PATH_MAX],
                                               char *err, size_t errlen)
{
    wr_config_t *cfg;
    int fd;

    snprintf(path, WR_TEST_CONFIG_PATH_MAX, "/tmp/warren-config-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cfg = wr_config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

#endif
