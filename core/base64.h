/* SPDX-License-Identifier: MIT */
/*
 * Standard base64 (RFC 4648 alphabet, '=' padding): RabbitMQ's password
 * hashes, HTTP basic credentials, binary payloads of the management API.
 */
#ifndef WR_CORE_BASE64_H
#define WR_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters wr_base64_encode writes for n octets (without the NUL). */
static inline size_t wr_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes the encoding of in[0..n) and a NUL to out, which has room for
 * wr_base64_encoded_len(n) + 1 characters. */
void wr_base64_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes in[0..len) into out (cap octets). Padding may be absent, but
 * nothing but '=' may follow the first '='. Returns the octets written, or
 * -1 for a character outside the alphabet, a non-'=' after padding, or more
 * than cap octets.
 */
long wr_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
