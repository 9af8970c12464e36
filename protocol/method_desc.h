/* SPDX-License-Identifier: MIT */
/*
 * The descriptors the generated method_table.c is made of and the codec in
 * methods.c walks: per method its id, name, content flag and fields, each
 * field an offset into the method's struct and a wire kind. Only protocol/
 * includes this header.
 */
#ifndef WR_PROTOCOL_METHOD_DESC_H
#define WR_PROTOCOL_METHOD_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    WR_FT_OCTET,
    WR_FT_SHORT,
    WR_FT_LONG,
    WR_FT_LONGLONG,
    WR_FT_BIT,
    WR_FT_SHORTSTR,
    WR_FT_LONGSTR,
    WR_FT_TABLE,
} wr_method_kind_t;

typedef struct {
    uint16_t offset; /* within the method's struct, i.e. within wr_method_t.u */
    uint8_t kind;    /* wr_method_kind_t */
} wr_method_field_t;

typedef struct {
    uint32_t id;
    const char *name;
    bool content;
    uint8_t nfields;
    const wr_method_field_t *fields;
} wr_method_desc_t;

/* Every method of the spec, sorted by id (generated, method_table.c). */
extern const wr_method_desc_t wr_method_descs[];
extern const size_t wr_method_ndescs;

#endif
