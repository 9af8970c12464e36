/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the frame splitter, fed as a byte stream the way the
 * broker reads a socket. Each frame must lie inside the input and re-encode
 * to its own bytes; method and content-header payloads go on to their
 * decoders. The first input byte picks a frame_max, so limits get fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "protocol/frame.h"
#include "protocol/props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t frame_maxes[] = {0, 8, 64, 4096, 131072};

static void check_payload(const wr_frame_t *f)
{
    wr_method_t m;
    wr_props_t p;
    int rc;

    if (f->type == WR_FRAME_METHOD) {
        rc = wr_method_decode(f->payload, &m);
        if (rc != WR_OK && rc != WR_ESYNTAX && rc != WR_EUNKNOWN)
            abort();
    } else if (f->type == WR_FRAME_HEADER) {
        rc = wr_props_decode(f->payload, &p);
        if (rc != WR_OK && rc != WR_ESYNTAX && rc != WR_EUNKNOWN && rc != WR_EDEPTH)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_buf_t b = WR_BUF_INIT;
    uint32_t frame_max;
    size_t off = 1;

    if (size == 0)
        return 0;
    frame_max = frame_maxes[data[0] % (sizeof(frame_maxes) / sizeof(frame_maxes[0]))];
    for (;;) {
        wr_frame_t f;
        size_t consumed = 0;
        int rc = wr_frame_parse(data + off, size - off, frame_max, &f, &consumed);

        if (rc == WR_AGAIN) {
            /* Either the header is incomplete or more bytes are needed. */
            if (consumed != 0 && (consumed <= size - off || consumed < WR_FRAME_OVERHEAD))
                abort();
            if (consumed == 0 && size - off >= WR_FRAME_HEADER_SIZE)
                abort();
            break;
        }
        if (rc != WR_OK) {
            if (rc != WR_ESYNTAX && rc != WR_EUNKNOWN && rc != WR_ETOOBIG)
                abort();
            break;
        }
        if (consumed > size - off || consumed != f.payload.len + WR_FRAME_OVERHEAD)
            abort();
        if (frame_max != 0 && consumed > frame_max)
            abort();
        if (f.payload.data != data + off + WR_FRAME_HEADER_SIZE)
            abort();
        wr_buf_reset(&b);
        wr_frame_put_raw(&b, f.type, f.channel, f.payload);
        if (!wr_buf_ok(&b) || b.len != consumed || memcmp(b.data, data + off, consumed) != 0)
            abort();
        check_payload(&f);
        off += consumed;
    }
    wr_buf_free(&b);
    return 0;
}
