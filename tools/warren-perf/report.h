/* SPDX-License-Identifier: MIT */
/*
 * The summary of a finished run: aligned text for a person at a terminal, or
 * one JSON object for scripts (scripts/bench, the smoke test). Both show the
 * same numbers; rates are counts divided by their phase's seconds.
 */
#ifndef WR_PERF_REPORT_H
#define WR_PERF_REPORT_H

#include <stdio.h>

#include "opts.h"
#include "run.h"

void wr_report_text(FILE *f, const wr_opts_t *o, const wr_result_t *res);
/* WR_OK, or WR_ENOMEM / WR_EIO when the object cannot be built or written. */
int wr_report_json(FILE *f, const wr_opts_t *o, const wr_result_t *res);

#endif
