/* SPDX-License-Identifier: MIT */
/*
 * AMQP framing: the 8-byte protocol header, the 7-byte frame header, the
 * frame-end octet, and encoders for whole frames. No I/O: the caller owns the
 * bytes and decides what to do with WR_AGAIN.
 */
#ifndef WR_PROTOCOL_FRAME_H
#define WR_PROTOCOL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "protocol/methods.h"

#define WR_FRAME_HEADER_SIZE 7
#define WR_FRAME_OVERHEAD    8 /* header + frame-end octet */

extern const uint8_t wr_protocol_header[8]; /* "AMQP" 0 0 9 1 */

typedef struct {
    uint8_t type; /* WR_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT */
    uint16_t channel;
    wr_bytes_t payload; /* borrowed from the caller's buffer */
} wr_frame_t;

/*
 * Parses one frame at the start of buf[0..avail).
 * WR_OK: *f filled, *consumed = whole frame length.
 * WR_AGAIN: incomplete; *consumed = bytes needed for the whole frame once the
 *   7-byte header is in (0 before that), so the caller can wait for exactly that.
 * WR_ETOOBIG: total frame size exceeds frame_max (0 means no limit).
 * WR_ESYNTAX: frame-end octet is not 0xCE.
 * WR_EUNKNOWN: frame type is not 1, 2, 3 or 8.
 */
int wr_frame_parse(const uint8_t *buf, size_t avail, uint32_t frame_max, wr_frame_t *f, size_t *consumed);

/* Appends complete frames (header, payload, frame-end) to b. */
void wr_frame_put_method(wr_buf_t *b, uint16_t channel, const wr_method_t *m);
void wr_frame_put_heartbeat(wr_buf_t *b);
/* A content header frame whose payload is `raw_header` as received (class,
 * weight, body size, flags, properties), so properties round-trip byte-exact. */
void wr_frame_put_raw(wr_buf_t *b, uint8_t type, uint16_t channel, wr_bytes_t payload);
/* Just the 7-byte header of a frame, for callers that append the payload
 * themselves (body frames by reference) and then the frame-end octet. */
void wr_frame_put_header(wr_buf_t *b, uint8_t type, uint16_t channel, uint32_t size);

#endif
