/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for content headers. A header that decodes must agree
 * with wr_props_peek and re-encode byte for byte, unless it set the unused
 * flag bit 1, which is dropped (and then only that bit may differ).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_props_t p;
    uint16_t class_id;
    uint64_t body_size;
    int rc = wr_props_decode((wr_bytes_t){data, size}, &p);

    if (wr_props_peek((wr_bytes_t){data, size}, &class_id, &body_size) == WR_OK) {
        if (rc == WR_OK && (class_id != p.class_id || body_size != p.body_size))
            abort();
    } else if (rc == WR_OK) {
        abort();
    }
    if (rc != WR_OK)
        return 0;
    wr_props_encode(&b, &p);
    if (!wr_buf_ok(&b) || b.len != size)
        abort();
    /* The flag word is at offset 12; bit 1 of it is the only allowed change. */
    b.data[13] = (uint8_t)(b.data[13] | (data[13] & 0x02));
    if (memcmp(b.data, data, size) != 0)
        abort();
    wr_buf_free(&b);
    return 0;
}
