/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the remote-queue codec (broker/cluster/remote_wire.c),
 * what a peer's APP messages of the queue kinds feed the node: the first
 * byte is the kind, the rest the body. A body that decodes must re-encode
 * to exactly the bytes it came from; any other outcome is a syntax error or
 * an unknown kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/remote_wire.h"
#include "core/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_bytes_t body = {size > 1 ? data + 1 : NULL, size > 1 ? size - 1 : 0};
    wr_buf_t b = WR_BUF_INIT;
    wr_remote_msg_t m;
    int rc;

    if (size == 0)
        return 0;
    rc = wr_remote_wire_decode(data[0], body, &m);
    if (rc != WR_OK) {
        if (rc != WR_ESYNTAX && rc != WR_EUNKNOWN)
            abort();
        return 0;
    }
    if (!wr_remote_wire_encode(&b, &m))
        abort();
    if (m.body.len > 0)
        wr_buf_put(&b, m.body.data, m.body.len);
    if (!wr_buf_ok(&b) || b.len != body.len || (b.len > 0 && memcmp(b.data, body.data, b.len) != 0))
        abort();
    wr_buf_free(&b);
    return 0;
}
