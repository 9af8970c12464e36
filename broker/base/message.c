/* SPDX-License-Identifier: MIT */
/*
 * Messages: one allocation holding the struct, the exchange name, routing key,
 * raw content header and body (a publish costs one malloc), a reference count
 * shared by every queue holding it, and properties decoded only when somebody
 * asks for them.
 */
#include "broker/base/message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/status.h"

/* Copies b to *p and advances *p; empty strings may have a NULL pointer. */
static wr_bytes_t place(uint8_t **p, wr_bytes_t b)
{
    wr_bytes_t out = {*p, b.len};

    if (b.len > 0)
        memcpy(*p, b.data, b.len);
    *p += b.len;
    return out;
}

wr_message_t *wr_message_new(wr_bytes_t exchange, wr_bytes_t routing_key, wr_bytes_t header,
                             uint64_t body_size)
{
    size_t extra = exchange.len + routing_key.len + header.len;
    wr_message_t *m;
    uint8_t *p;

    /* The body is one contiguous buffer: it must be addressable. */
    if (body_size > SIZE_MAX - sizeof(*m) - extra)
        return NULL;
    m = malloc(sizeof(*m) + extra + (size_t)body_size);
    if (m == NULL)
        return NULL;
    p = (uint8_t *)(m + 1);
    m->exchange = place(&p, exchange);
    m->routing_key = place(&p, routing_key);
    m->header = place(&p, header);
    m->body = body_size > 0 ? p : NULL;
    m->refs = 1;
    m->props_decoded = false;
    m->body_size = body_size;
    m->body_filled = 0;
    return m;
}

void wr_message_unref(wr_message_t *m)
{
    if (m == NULL || --m->refs > 0)
        return;
    free(m);
}

const wr_props_t *wr_message_props_decode(wr_message_t *m)
{
    if (wr_props_decode(m->header, &m->props) != WR_OK)
        return NULL;
    m->props_decoded = true;
    return &m->props;
}

bool wr_message_persistent(wr_message_t *m)
{
    const wr_props_t *p = wr_message_props(m);

    return p != NULL && (p->flags & WR_PROP_DELIVERY_MODE) && p->delivery_mode == 2;
}

wr_message_t *wr_message_with_props(const wr_message_t *m, const wr_props_t *p)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_message_t *out = NULL;

    wr_props_encode(&b, p);
    if (wr_buf_ok(&b))
        out = wr_message_new(m->exchange, m->routing_key, (wr_bytes_t){b.data, b.len}, m->body_size);
    wr_buf_free(&b);
    if (out != NULL && m->body_size > 0) {
        memcpy(out->body, m->body, m->body_size);
        out->body_filled = m->body_size;
    }
    return out;
}
