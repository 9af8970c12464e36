/* SPDX-License-Identifier: MIT */
/*
 * AMQP frame splitting and frame encoders. The parser never copies: a frame's
 * payload points into the caller's buffer, and an incomplete frame reports
 * how many bytes it needs so the caller can wait for exactly that much.
 */
#include "protocol/frame.h"

#include "core/status.h"
#include "core/cursor.h"

const uint8_t wr_protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

int wr_frame_parse(const uint8_t *buf, size_t avail, uint32_t frame_max, wr_frame_t *f, size_t *consumed)
{
    wr_cursor_t c = wr_cursor((wr_bytes_t){buf, avail});
    uint8_t type;
    uint16_t channel;
    uint32_t size;
    uint64_t total;

    *consumed = 0;
    if (!wr_rd_u8(&c, &type) || !wr_rd_u16(&c, &channel) || !wr_rd_u32(&c, &size))
        return WR_AGAIN;
    if (type != WR_FRAME_METHOD && type != WR_FRAME_HEADER && type != WR_FRAME_BODY &&
        type != WR_FRAME_HEARTBEAT)
        return WR_EUNKNOWN;
    /* 64-bit arithmetic: a 4 GiB size must not wrap around to a small frame. */
    total = (uint64_t)WR_FRAME_OVERHEAD + size;
    if (frame_max != 0 && total > frame_max)
        return WR_ETOOBIG;
    if (total > avail) {
        *consumed = (size_t)total;
        return WR_AGAIN;
    }
    if (buf[total - 1] != WR_FRAME_END)
        return WR_ESYNTAX;
    f->type = type;
    f->channel = channel;
    f->payload = (wr_bytes_t){buf + WR_FRAME_HEADER_SIZE, size};
    *consumed = (size_t)total;
    return WR_OK;
}

void wr_frame_put_header(wr_buf_t *b, uint8_t type, uint16_t channel, uint32_t size)
{
    wr_buf_put_u8(b, type);
    wr_buf_put_u16(b, channel);
    wr_buf_put_u32(b, size);
}

void wr_frame_put_method(wr_buf_t *b, uint16_t channel, const wr_method_t *m)
{
    size_t start = b->len;
    size_t size;

    wr_frame_put_header(b, WR_FRAME_METHOD, channel, 0);
    wr_method_encode(b, m);
    if (b->oom)
        return;
    size = b->len - start - WR_FRAME_HEADER_SIZE;
    if (size > UINT32_MAX) {
        b->oom = true;
        return;
    }
    wr_buf_patch_u32(b, start + 3, (uint32_t)size);
    wr_buf_put_u8(b, WR_FRAME_END);
}

void wr_frame_put_heartbeat(wr_buf_t *b)
{
    wr_frame_put_header(b, WR_FRAME_HEARTBEAT, 0, 0);
    wr_buf_put_u8(b, WR_FRAME_END);
}

void wr_frame_put_raw(wr_buf_t *b, uint8_t type, uint16_t channel, wr_bytes_t payload)
{
    if (payload.len > UINT32_MAX) {
        b->oom = true; /* a frame size is 32 bits; there is no way to send this */
        return;
    }
    wr_frame_put_header(b, type, channel, (uint32_t)payload.len);
    wr_buf_put(b, payload.data, payload.len);
    wr_buf_put_u8(b, WR_FRAME_END);
}
