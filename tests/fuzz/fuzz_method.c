/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for wr_method_decode. A payload that decodes must
 * re-encode to the same length (only unused bits of bit octets may differ)
 * and the re-encoding must decode and encode again to identical bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/methods.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_buf_t b1 = WR_BUF_INIT, b2 = WR_BUF_INIT;
    wr_method_t m, m2;
    int rc = wr_method_decode((wr_bytes_t){data, size}, &m);

    if (rc != WR_OK) {
        if (rc != WR_ESYNTAX && rc != WR_EUNKNOWN)
            abort();
        return 0;
    }
    if (wr_method_name(m.id) == NULL)
        abort();
    wr_method_encode(&b1, &m);
    if (!wr_buf_ok(&b1) || b1.len != size)
        abort();
    if (wr_method_decode((wr_bytes_t){b1.data, b1.len}, &m2) != WR_OK || m2.id != m.id)
        abort();
    wr_method_encode(&b2, &m2);
    if (b2.len != b1.len || memcmp(b1.data, b2.data, b1.len) != 0)
        abort();
    wr_buf_free(&b1);
    wr_buf_free(&b2);
    return 0;
}
