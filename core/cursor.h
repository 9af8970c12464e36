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

/*
 * The readers are inline: decoding a publish (its method and content
 * header) is a few dozen of them, and as calls they were a tenth of the
 * broker's CPU for 16-byte messages. Every check compares a wanted length
 * against what is left (never `pos + n <= end`), so no length can make the
 * arithmetic overflow.
 */
static inline bool wr_rd_u8(wr_cursor_t *c, uint8_t *out)
{
    if (wr_cursor_left(c) < 1)
        return false;
    *out = c->pos[0];
    c->pos += 1;
    return true;
}

static inline bool wr_rd_u16(wr_cursor_t *c, uint16_t *out)
{
    if (wr_cursor_left(c) < 2)
        return false;
    *out = (uint16_t)(c->pos[0] << 8 | c->pos[1]);
    c->pos += 2;
    return true;
}

static inline bool wr_rd_u32(wr_cursor_t *c, uint32_t *out)
{
    if (wr_cursor_left(c) < 4)
        return false;
    *out = (uint32_t)c->pos[0] << 24 | (uint32_t)c->pos[1] << 16 | (uint32_t)c->pos[2] << 8 | c->pos[3];
    c->pos += 4;
    return true;
}

static inline bool wr_rd_u64(wr_cursor_t *c, uint64_t *out)
{
    uint64_t v = 0;

    if (wr_cursor_left(c) < 8)
        return false;
    for (int i = 0; i < 8; i++)
        v = v << 8 | c->pos[i];
    *out = v;
    c->pos += 8;
    return true;
}

static inline bool wr_rd_bytes(wr_cursor_t *c, size_t n, wr_bytes_t *out)
{
    if (n > wr_cursor_left(c))
        return false;
    *out = (wr_bytes_t){c->pos, n};
    if (n > 0) /* pos is NULL in a cursor over {NULL, 0} */
        c->pos += n;
    return true;
}

/* u8 length + bytes; a failed read consumes nothing, length octet included. */
static inline bool wr_rd_shortstr(wr_cursor_t *c, wr_bytes_t *out)
{
    wr_cursor_t save = *c;
    uint8_t n;

    if (wr_rd_u8(c, &n) && wr_rd_bytes(c, n, out))
        return true;
    *c = save;
    return false;
}

/* u32 length + bytes; likewise. */
static inline bool wr_rd_longstr(wr_cursor_t *c, wr_bytes_t *out)
{
    wr_cursor_t save = *c;
    uint32_t n;

    if (wr_rd_u32(c, &n) && wr_rd_bytes(c, n, out))
        return true;
    *c = save;
    return false;
}

/* Writers; a shortstr longer than 255 bytes is truncated to 255. */
void wr_put_shortstr(wr_buf_t *b, wr_bytes_t s);
void wr_put_longstr(wr_buf_t *b, wr_bytes_t s);

#endif
