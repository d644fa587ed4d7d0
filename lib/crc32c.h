/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every chunk the disk tier writes. Internal to the library.
 *
 * vkvi_crc32c() takes the running value and returns the new one, the same
 * convention as zlib's crc32(): start from 0, feed buffers in order, and
 * vkvi_crc32c(0, "123456789", 9) == 0xE3069283. Pre- and post-inversion are
 * done inside, so chaining two calls equals one call over both buffers.
 *
 * On x86-64 CPUs with SSE4.2 the `crc32` instruction does the work (chosen
 * at run time; the build needs no -msse4.2); elsewhere a slicing-by-8 table.
 */
#ifndef VKV_CRC32C_H
#define VKV_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t vkvi_crc32c(uint32_t crc, const void *buf, size_t len);

/* The table implementation, whatever the CPU; for tests and comparisons. */
uint32_t vkvi_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* True when vkvi_crc32c() currently uses the CPU instruction. */
bool vkvi_crc32c_hw(void);

/*
 * vkvi_crc32c_force_table - make vkvi_crc32c() use the table even when the
 * CPU has the instruction (@on true), or go back to the automatic choice.
 * Process-wide; meant for tests and benchmarks.
 */
void vkvi_crc32c_force_table(bool on);

#endif /* VKV_CRC32C_H */
