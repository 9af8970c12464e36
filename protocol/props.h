/* SPDX-License-Identifier: MIT */
/*
 * The basic-class content header: class id, weight, body size, property flags
 * and the properties. The broker keeps the raw bytes of a received header and
 * decodes them only when it needs a property (TTL, priority, dead-lettering).
 */
#ifndef WR_PROTOCOL_PROPS_H
#define WR_PROTOCOL_PROPS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/bytes.h"

/* Property flag bits, in wire order (bit 15 first). */
#define WR_PROP_CONTENT_TYPE     (1u << 15)
#define WR_PROP_CONTENT_ENCODING (1u << 14)
#define WR_PROP_HEADERS          (1u << 13)
#define WR_PROP_DELIVERY_MODE    (1u << 12)
#define WR_PROP_PRIORITY         (1u << 11)
#define WR_PROP_CORRELATION_ID   (1u << 10)
#define WR_PROP_REPLY_TO         (1u << 9)
#define WR_PROP_EXPIRATION       (1u << 8)
#define WR_PROP_MESSAGE_ID       (1u << 7)
#define WR_PROP_TIMESTAMP        (1u << 6)
#define WR_PROP_TYPE             (1u << 5)
#define WR_PROP_USER_ID          (1u << 4)
#define WR_PROP_APP_ID           (1u << 3)
#define WR_PROP_CLUSTER_ID       (1u << 2)

typedef struct {
    uint16_t class_id;
    uint16_t weight;
    uint64_t body_size;
    uint16_t flags; /* which properties are present */
    wr_bytes_t content_type;
    wr_bytes_t content_encoding;
    wr_bytes_t headers; /* raw validated table, no length prefix */
    uint8_t delivery_mode;
    uint8_t priority;
    wr_bytes_t correlation_id;
    wr_bytes_t reply_to;
    wr_bytes_t expiration;
    wr_bytes_t message_id;
    uint64_t timestamp;
    wr_bytes_t type;
    wr_bytes_t user_id;
    wr_bytes_t app_id;
    wr_bytes_t cluster_id;
} wr_props_t;

/* Just class id and body size, without looking at properties (publish path). */
int wr_props_peek(wr_bytes_t payload, uint16_t *class_id, uint64_t *body_size);
/* Full decode of a content header payload. WR_OK, WR_ESYNTAX (truncated,
 * trailing bytes, continuation flag bit 0 set), or a table error. */
int wr_props_decode(wr_bytes_t payload, wr_props_t *out);
/* Appends the full content header payload for p. */
void wr_props_encode(wr_buf_t *b, const wr_props_t *p);

#endif
