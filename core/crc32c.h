/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, the iSCSI/ext4 polynomial), used to frame every record
 * the storage layer writes and every peer-link frame (cluster/peer.c). A
 * software slicing-by-8 implementation always exists; on x86-64 CPUs with
 * SSE4.2 the crc32 instruction is used instead.
 */
#ifndef WR_CORE_CRC32C_H
#define WR_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC over n more bytes: wr_crc32c_update(0, p, n) is the CRC of
 * p, and updating with a then b equals one update over a followed by b.
 * Thread-safe. Uses the hardware instruction when the CPU has it.
 */
uint32_t wr_crc32c_update(uint32_t crc, const void *p, size_t n);

/* The same function in portable software, exposed so tests can compare the two. */
uint32_t wr_crc32c_update_sw(uint32_t crc, const void *p, size_t n);

#endif
