/* SPDX-License-Identifier: MIT */
/*
 * AMQP field tables and arrays, kept in their wire form. A table is validated
 * once (wr_table_validate: every length inside its parent, every tag known,
 * depth bounded, no trailing bytes) and then read in place by iteration or
 * lookup, which borrow from the raw bytes. `raw` never includes the 4-byte
 * length prefix that precedes a table on the wire.
 *
 * Accepted tags, as RabbitMQ: t b B s u I i l f d D S A T F V x, and L, which
 * RabbitMQ also reads as a signed 64-bit integer (the tag is kept as received).
 */
#ifndef WR_PROTOCOL_TABLE_H
#define WR_PROTOCOL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "core/cursor.h"

#define WR_TABLE_MAX_DEPTH 32

typedef struct {
    uint8_t type; /* the wire tag */
    union {
        bool b;    /* t */
        int64_t i; /* b B s u I i l L: every integer, widened (unsigned ones zero-extended) */
        float f;   /* f */
        double d;  /* d */
        struct {
            uint8_t scale;
            uint32_t value;
        } dec;        /* D */
        uint64_t ts;  /* T */
        wr_bytes_t s; /* S x: the bytes; F A: the raw nested table/array (no length prefix) */
    } v;
} wr_value_t;

/* WR_OK, WR_ESYNTAX (bad length, trailing bytes), WR_EUNKNOWN (unknown tag), WR_EDEPTH. */
int wr_table_validate(wr_bytes_t raw, int max_depth);
int wr_array_validate(wr_bytes_t raw, int max_depth);

/* Iteration over a validated table or array. */
typedef struct {
    wr_cursor_t c;
} wr_table_iter_t;

static inline void wr_table_iter_init(wr_table_iter_t *it, wr_bytes_t raw)
{
    it->c = wr_cursor(raw);
}

bool wr_table_next(wr_table_iter_t *it, wr_bytes_t *key, wr_value_t *val);
bool wr_array_next(wr_table_iter_t *it, wr_value_t *val);

/* Lookup by key in a validated table; false when absent. */
bool wr_table_get(wr_bytes_t raw, const char *key, wr_value_t *val);
size_t wr_table_count(wr_bytes_t raw);

/* True for every integer tag; stores the widened value. */
bool wr_value_int(const wr_value_t *v, int64_t *out);
/* One of the integer tags (b B s u I i l L), whose value is in v.i. */
static inline bool wr_tag_is_int(uint8_t tag)
{
    return tag == 'b' || tag == 'B' || tag == 's' || tag == 'u' || tag == 'I' || tag == 'i' || tag == 'l' ||
           tag == 'L';
}
/* Same tag and equal value; F and A compare by content (tables order-insensitive). */
bool wr_value_eq(const wr_value_t *a, const wr_value_t *b);
/* Same length and pairwise eq, in order: the array walk for any value equality. */
bool wr_array_eq_by(wr_bytes_t a, wr_bytes_t b, bool (*eq)(const wr_value_t *, const wr_value_t *));
/* Same keys with wr_value_eq values, in any order. */
bool wr_table_equiv(wr_bytes_t a, wr_bytes_t b);
/* RabbitMQ's type name for a tag: "longstr", "signedint", "bool", "table"... */
const char *wr_value_type_name(uint8_t tag);
/* Human text for a value as RabbitMQ shows it in error texts (e.g. 10, true, abc). */
void wr_value_format(const wr_value_t *v, char *out, size_t n);

/* Encoding. A table or array is opened with wr_table_begin, which writes a
 * placeholder length and returns a mark, and closed with wr_table_end(mark). */
size_t wr_table_begin(wr_buf_t *b);
void wr_table_end(wr_buf_t *b, size_t mark);
void wr_table_put_key(wr_buf_t *b, const char *key);
void wr_table_put_value(wr_buf_t *b, const wr_value_t *v); /* tag + value; F/A raw get a length prefix */
void wr_table_put_str(wr_buf_t *b, const char *key, const char *val); /* S */
void wr_table_put_bool(wr_buf_t *b, const char *key, bool val);       /* t */
void wr_table_put_long(wr_buf_t *b, const char *key, int64_t val);    /* l */

#endif
