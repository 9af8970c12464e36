/* SPDX-License-Identifier: MIT */
/*
 * A message: one refcounted, immutable object shared by every queue it was
 * routed to. It keeps the raw content-header bytes exactly as published (so
 * properties round-trip byte-exact) and decodes properties only on demand.
 * Fields are public because the publish and deliver paths read them directly.
 */
#ifndef WR_BROKER_MESSAGE_H
#define WR_BROKER_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bytes.h"
#include "protocol/props.h"

typedef struct wr_message_s {
    uint32_t refs;
    bool props_decoded;
    wr_bytes_t exchange; /* point into the same allocation */
    wr_bytes_t routing_key;
    wr_bytes_t header; /* raw content header payload */
    uint8_t *body;     /* body_size bytes, in the same allocation; NULL when empty */
    uint64_t body_size;
    uint64_t body_filled; /* bytes received so far while assembling */
    wr_props_t props;     /* valid once props_decoded; borrows from header */
} wr_message_t;

/*
 * New message with refs = 1, copying exchange, routing key and the raw header,
 * and allocating (not filling) a body of body_size bytes. NULL on ENOMEM.
 */
wr_message_t *wr_message_new(wr_bytes_t exchange, wr_bytes_t routing_key, wr_bytes_t header,
                             uint64_t body_size);
static inline wr_message_t *wr_message_ref(wr_message_t *m)
{
    m->refs++;
    return m;
}
/* A new message (refs = 1) with m's exchange, routing key and body and a
 * content header carrying p. NULL on ENOMEM. */
wr_message_t *wr_message_with_props(const wr_message_t *m, const wr_props_t *p);
/* Drops a reference; frees at zero. NULL is a no-op. */
void wr_message_unref(wr_message_t *m);
/* Decodes the properties into m->props; NULL if the header is invalid. */
const wr_props_t *wr_message_props_decode(wr_message_t *m);
/* Decoded properties (decoding on first use); NULL if the header is invalid. */
static inline const wr_props_t *wr_message_props(wr_message_t *m)
{
    return m->props_decoded ? &m->props : wr_message_props_decode(m);
}
/* delivery_mode is 2: in a durable queue the message survives a restart. */
bool wr_message_persistent(wr_message_t *m);

#endif
