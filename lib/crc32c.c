/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC-32C with the SSE4.2 instruction or a slicing-by-8 table.
 */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"
#include "internal.h"

#define CRC32C_POLY 0x82F63B78u /* Castagnoli, bit-reflected */

/* tab[k][b]: the CRC of byte b followed by k zero bytes. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_tab_once = PTHREAD_ONCE_INIT;
static int crc_force_sw; /* atomic */

static void crc_tab_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int i = 0; i < 8; i++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_tab[0][b] = c;
	}
	for (unsigned b = 0; b < 256; b++)
		for (int k = 1; k < 8; k++)
			crc_tab[k][b] = (crc_tab[k - 1][b] >> 8) ^
					crc_tab[0][crc_tab[k - 1][b] & 0xff];
}

static inline uint64_t load_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

uint32_t vkvi_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = ~crc;

	pthread_once(&crc_tab_once, crc_tab_init);
	if (!p)
		return crc;
	while (len && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t v = load_le64(p) ^ c;

		c = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^
		    crc_tab[5][(v >> 16) & 0xff] ^
		    crc_tab[4][(v >> 24) & 0xff] ^
		    crc_tab[3][(v >> 32) & 0xff] ^
		    crc_tab[2][(v >> 40) & 0xff] ^
		    crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
#define VKV_CRC_HAVE_HW 1

/*
 * Three independent streams hide the instruction's 3-cycle latency; their
 * values are then merged by shifting the first two over the bytes that
 * follow them (multiplication by x^(8*n) mod P, done with the table of
 * "zero bytes" operators below).
 */
#define HW_BLOCK 4096 /* bytes per stream per round */

/* Shift operator: crc of (state followed by HW_BLOCK zero bytes). */
static uint32_t shift_tab[2][4][256]; /* [1 block, 2 blocks][byte][value] */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* Carry-less multiply modulo P in the reflected domain: a * b. */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t r = 0;

	for (int i = 0; i < 32; i++) {
		if (a & 0x80000000u)
			r ^= b;
		a <<= 1;
		b = (b >> 1) ^ (CRC32C_POLY & (0u - (b & 1)));
	}
	return r;
}

/* x^(8n) mod P in the reflected domain (x^0 is 0x80000000). */
static uint32_t x_pow_8n(size_t n)
{
	uint32_t result = 0x80000000u, sq = 0x00800000u; /* x^0, x^8 */

	while (n) {
		if (n & 1)
			result = gf_mul(result, sq);
		sq = gf_mul(sq, sq);
		n >>= 1;
	}
	return result;
}

static void shift_init(void)
{
	for (int s = 0; s < 2; s++) {
		uint32_t op = x_pow_8n((size_t)HW_BLOCK * (size_t)(s + 1));

		for (int byte = 0; byte < 4; byte++)
			for (uint32_t v = 0; v < 256; v++)
				shift_tab[s][byte][v] =
					gf_mul(v << (8 * byte), op);
	}
}

static inline uint32_t shift(int s, uint32_t c)
{
	return shift_tab[s][0][c & 0xff] ^ shift_tab[s][1][(c >> 8) & 0xff] ^
	       shift_tab[s][2][(c >> 16) & 0xff] ^ shift_tab[s][3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * HW_BLOCK) {
		pthread_once(&shift_once, shift_init);
		while (len >= 3 * HW_BLOCK) {
			uint64_t c1 = 0, c2 = 0;
			const unsigned char *p1 = p + HW_BLOCK,
					    *p2 = p + 2 * HW_BLOCK;

			for (size_t i = 0; i < HW_BLOCK; i += 8) {
				c = __builtin_ia32_crc32di(c, load_le64(p + i));
				c1 = __builtin_ia32_crc32di(c1,
							    load_le64(p1 + i));
				c2 = __builtin_ia32_crc32di(c2,
							    load_le64(p2 + i));
			}
			/* crc(a|b|d) from crc(a) ~ shifted past b and d. */
			c = shift(1, (uint32_t)c) ^ shift(0, (uint32_t)c1) ^ c2;
			p += 3 * HW_BLOCK;
			len -= 3 * HW_BLOCK;
		}
	}
	while (len >= 8) {
		c = __builtin_ia32_crc32di(c, load_le64(p));
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int hw_state = -1; /* -1 unknown, 0 no, 1 yes; atomic */

static bool cpu_has_hw(void)
{
	int s = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);

	if (s < 0) {
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&hw_state, s, __ATOMIC_RELAXED);
	}
	return s;
}
#else
#define VKV_CRC_HAVE_HW 0
#endif

bool vkvi_crc32c_hw(void)
{
#if VKV_CRC_HAVE_HW
	return cpu_has_hw() &&
	       !__atomic_load_n(&crc_force_sw, __ATOMIC_RELAXED);
#else
	return false;
#endif
}

void vkvi_crc32c_force_table(bool on)
{
	__atomic_store_n(&crc_force_sw, on ? 1 : 0, __ATOMIC_RELAXED);
}

uint32_t vkvi_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (!buf || !len)
		return crc;
#if VKV_CRC_HAVE_HW
	if (vkvi_crc32c_hw())
		return crc32c_hw(crc, buf, len);
#endif
	return vkvi_crc32c_sw(crc, buf, len);
}
