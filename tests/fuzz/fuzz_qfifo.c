/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the quorum-queue machine (cluster/qfifo*.c). An input
 * starting with 'S' is a snapshot: one that loads must save back to exactly
 * its bytes (one of an older version, in the current one: those bytes must
 * round-trip) and accept a command. Any other input is a stream of log entries
 * (u16 length + entry): each that decodes must re-encode to its bytes and is
 * applied; the final state must survive a snapshot round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/qfifo.h"
#include "core/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bytes(const wr_buf_t *b, const uint8_t *p, size_t len)
{
    if (!wr_buf_ok(b) || b->len != len || (len > 0 && memcmp(b->data, p, len) != 0))
        abort();
}

static void check_round_trip(const wr_qfifo_t *q);

/* A snapshot that loads saves back to the same bytes, or, loaded from an
 * older version (byte 4, after the magic), in the current one. */
static void snapshot_input(const uint8_t *data, size_t size)
{
    wr_qfifo_effects_t fx = WR_QFIFO_EFFECTS_INIT;
    wr_qfifo_cmd_t tick = {.op = WR_QF_TICK};
    wr_buf_t b = WR_BUF_INIT;
    wr_qfifo_t *q;
    int rc = wr_qfifo_snapshot_load(data, size, &q);

    if (rc != WR_OK) {
        if (q != NULL || (rc != WR_ESYNTAX && rc != WR_ENOMEM))
            abort();
        return;
    }
    if (!wr_qfifo_snapshot_put(q, &b) || b.len < 5 || size < 5)
        abort();
    if (data[4] == b.data[4])
        same_bytes(&b, data, size);
    else
        check_round_trip(q);
    wr_qfifo_apply(q, UINT64_MAX, UINT64_MAX, &tick, &fx, NULL);
    wr_qfifo_free(q);
    wr_qfifo_effects_free(&fx);
    wr_buf_free(&b);
}

/* Decodes, re-encodes and applies one entry. */
static void one_entry(wr_qfifo_t *q, uint64_t index, const uint8_t *p, size_t len, wr_qfifo_effects_t *fx)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_qfifo_cmd_t cmd;
    uint64_t t;
    int rc = wr_qfifo_cmd_decode(p, len, &t, &cmd);

    if (rc != WR_OK) {
        if (rc != WR_ESYNTAX && rc != WR_EUNKNOWN)
            abort();
        return;
    }
    if (!wr_qfifo_cmd_put(&b, t, &cmd))
        abort();
    same_bytes(&b, p, len);
    wr_buf_free(&b);
    wr_qfifo_effects_reset(fx);
    if (wr_qfifo_apply(q, index, t, &cmd, fx, NULL) == WR_EUNKNOWN)
        abort();
}

/* The state after a stream saves, loads and saves to the same bytes. */
static void check_round_trip(const wr_qfifo_t *q)
{
    wr_buf_t a = WR_BUF_INIT, b = WR_BUF_INIT;
    wr_qfifo_t *copy;

    if (!wr_qfifo_snapshot_put(q, &a) || wr_qfifo_snapshot_load(a.data, a.len, &copy) != WR_OK ||
        !wr_qfifo_snapshot_put(copy, &b))
        abort();
    same_bytes(&b, a.data, a.len);
    wr_qfifo_free(copy);
    wr_buf_free(&a);
    wr_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_qfifo_effects_t fx = WR_QFIFO_EFFECTS_INIT;
    wr_qfifo_t *q;
    uint64_t index = 0;

    if (size > 0 && data[0] == 'S') {
        snapshot_input(data + 1, size - 1);
        return 0;
    }
    if ((q = wr_qfifo_new(8)) == NULL)
        return 0;
    while (size >= 2) {
        size_t len = (size_t)data[0] << 8 | data[1];

        if (len > size - 2)
            len = size - 2;
        one_entry(q, ++index, data + 2, len, &fx);
        data += 2 + len;
        size -= 2 + len;
    }
    check_round_trip(q);
    wr_qfifo_free(q);
    wr_qfifo_effects_free(&fx);
    return 0;
}
