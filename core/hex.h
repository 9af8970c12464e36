/* SPDX-License-Identifier: MIT */
/*
 * Lowercase hexadecimal text of byte strings: how JSON documents (the
 * metadata group's commands and snapshots) carry AMQP tables and names that
 * are not UTF-8, byte-exact.
 */
#ifndef WR_CORE_HEX_H
#define WR_CORE_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the 2 * n digits of in[0..n) and a NUL to out (2 * n + 1 chars). */
void wr_hex_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes the n characters of in into out (n / 2 octets). False, with out
 * partly written, when n is odd or a character is not a lowercase hex digit.
 */
bool wr_hex_decode(const char *in, size_t n, uint8_t *out);

#endif
