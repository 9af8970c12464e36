/* SPDX-License-Identifier: MIT */
/*
 * AMQP errors as data: a reply code, the class/method that failed, and a reply
 * text in RabbitMQ's form "NOT_FOUND - no queue 'q' in vhost '/'". Whether an
 * error closes the channel (soft) or the connection (hard) follows from the code.
 */
#ifndef WR_PROTOCOL_ERROR_H
#define WR_PROTOCOL_ERROR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint16_t code;
    uint16_t class_id; /* 0 when no method is to blame */
    uint16_t method_id;
    char text[256]; /* NUL-terminated; AMQP shortstr, so at most 255 bytes */
} wr_amqp_error_t;

/*
 * Fills e. `method` is a WR_<CLASS>_<METHOD> id (0 for none). The text becomes
 * "<NAME> - <formatted>", where NAME is the reply code's name (NOT_FOUND...),
 * truncated to 255 bytes.
 */
void wr_amqp_error_set(wr_amqp_error_t *e, uint16_t code, uint32_t method, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True for codes that close the connection (5xx, 320, 402, 530...). */
bool wr_amqp_error_is_hard(uint16_t code);

/* "NOT_FOUND" for 404 etc; "UNKNOWN" for codes the spec does not name. */
const char *wr_reply_name(uint16_t code);

#endif
