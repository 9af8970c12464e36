/* SPDX-License-Identifier: MIT */
/*
 * Recovery of one log at open: scan every segment, verify every record,
 * repair torn tails, report corruption, rebuild the index, make what was
 * found durable, and replay the records to the owner in index order.
 */
#ifndef WR_STORAGE_RECOVER_H
#define WR_STORAGE_RECOVER_H

#include <stddef.h>

#include "storage/seglog.h"

/*
 * Loads log->dir into log (which has its name, dir, store, callbacks and an
 * empty index). Non-fatal findings go to the store's message callback; fatal
 * ones return an error status with the reason in err. On failure the caller
 * frees the log with wr_seglog_free.
 */
int wr_recover_log(wr_seglog_t *log, wr_seglog_recovery_t *rec, char *err, size_t errlen);

#endif
