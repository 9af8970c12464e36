/* SPDX-License-Identifier: MIT */
/*
 * AMQP reply codes as data. Names and the soft/hard split come from the spec
 * through WR_AMQP_REPLY_CODES in the generated constants.h, so they cannot
 * drift from the codec's view of the protocol.
 */
#include "protocol/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "protocol/methods.h"

const char *wr_reply_name(uint16_t code)
{
    switch (code) {
#define WR_REPLY_NAME_CASE(name, value, hard)                                                                \
    case value:                                                                                              \
        return #name;
        WR_AMQP_REPLY_CODES(WR_REPLY_NAME_CASE)
#undef WR_REPLY_NAME_CASE
    default:
        return "UNKNOWN";
    }
}

bool wr_amqp_error_is_hard(uint16_t code)
{
    switch (code) {
#define WR_REPLY_HARD_CASE(name, value, hard)                                                                \
    case value:                                                                                              \
        return hard;
        WR_AMQP_REPLY_CODES(WR_REPLY_HARD_CASE)
#undef WR_REPLY_HARD_CASE
    default:
        return false;
    }
}

/* Cuts a truncated s back to a UTF-8 boundary: clients decode reply-text as UTF-8 (pika
 * does), and a truncation in the middle of a character would break that. */
static void trim_utf8(char *s)
{
    size_t n = strlen(s);
    size_t start = n;
    size_t need;
    unsigned char lead;

    while (start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80 && n - start < 3)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)s[start - 1];
    if (lead < 0x80)
        return;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (start - 1) < need)
        s[start - 1] = '\0';
}

void wr_amqp_error_set(wr_amqp_error_t *e, uint16_t code, uint32_t method, const char *fmt, ...)
{
    va_list ap;
    int head, body;

    e->code = code;
    e->class_id = WR_METHOD_CLASS(method);
    e->method_id = WR_METHOD_INDEX(method);
    head = snprintf(e->text, sizeof(e->text), "%s - ", wr_reply_name(code));
    if (head < 0 || (size_t)head >= sizeof(e->text)) {
        e->text[0] = '\0';
        return;
    }
    va_start(ap, fmt);
    body = vsnprintf(e->text + head, sizeof(e->text) - (size_t)head, fmt, ap);
    va_end(ap);
    if (body < 0)
        e->text[head] = '\0';
    else if ((size_t)body >= sizeof(e->text) - (size_t)head)
        trim_utf8(e->text);
}
