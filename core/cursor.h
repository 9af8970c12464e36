/* SPDX-License-Identifier: MIT */
/*
 * The bounds-checked big-endian reader every decoder of outside input goes
 * through (AMQP frames, peer-link messages, Raft log entries and snapshots),
 * and writers for length-prefixed strings (AMQP's shortstr and longstr). A
 * read that would cross `end` returns false and consumes nothing; strings are
 * borrowed from the underlying buffer.
 */
#ifndef WR_CORE_CURSOR_H
#define WR_CORE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/bytes.h"

typedef struct {
    const uint8_t *pos;
    const uint8_t *end;
} wr_cursor_t;

static inline wr_cursor_t wr_cursor(wr_bytes_t b)
{
    /* An empty string may be {NULL, 0}, and NULL + 0 is undefined in C. */
    return (wr_cursor_t){b.data, b.len > 0 ? b.data + b.len : b.data};
}

static inline size_t wr_cursor_left(const wr_cursor_t *c)
{
    return (size_t)(c->end - c->pos);
}

bool wr_rd_u8(wr_cursor_t *c, uint8_t *out);
bool wr_rd_u16(wr_cursor_t *c, uint16_t *out);
bool wr_rd_u32(wr_cursor_t *c, uint32_t *out);
bool wr_rd_u64(wr_cursor_t *c, uint64_t *out);
bool wr_rd_bytes(wr_cursor_t *c, size_t n, wr_bytes_t *out);
bool wr_rd_shortstr(wr_cursor_t *c, wr_bytes_t *out); /* u8 length + bytes */
bool wr_rd_longstr(wr_cursor_t *c, wr_bytes_t *out);  /* u32 length + bytes */

/* Writers; a shortstr longer than 255 bytes is truncated to 255. */
void wr_put_shortstr(wr_buf_t *b, wr_bytes_t s);
void wr_put_longstr(wr_buf_t *b, wr_bytes_t s);

#endif
