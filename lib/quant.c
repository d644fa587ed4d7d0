/* SPDX-License-Identifier: MIT */
/*
 * quant.c - int8 KV quantization with per-token, per-head scales.
 *
 * Plain C written so that the compiler vectorises the inner loops: the
 * element conversions are branch-free bit manipulation, rounding uses the
 * 1.5 * 2^23 trick (round to nearest even in the default FP environment),
 * and every float is range-checked before it becomes an integer.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "internal.h"
#include "quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/*
 * On x86-64 the two entry points are also compiled for AVX2 (twice the
 * lanes, and the unsigned/32-bit min/max SSE2 lacks); the loader picks the
 * clone for the CPU (ifunc). No intrinsics, no -mavx2 for the build.
 */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) &&                   \
	!defined(__SANITIZE_THREAD__)
#define QUANT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QUANT_CLONES
#endif

ALWAYS_INLINE float as_f(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

ALWAYS_INLINE uint32_t as_u(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

ALWAYS_INLINE float h2f(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t em = h & 0x7fffu;
	uint32_t bits = em << 13;
	uint32_t exp = em >> 10;
	/* Rebias the exponent: 15 -> 127 for normals, 31 -> 255 for inf/NaN. */
	uint32_t normal = bits + (112u << 23);
	uint32_t special = bits + (224u << 23);
	/* Zero and subnormals: mant * 2^-24, exactly, by a float subtraction. */
	uint32_t sub = as_u(as_f(bits + (113u << 23)) - as_f(113u << 23));
	uint32_t r = exp == 31 ? special : normal;

	r = exp == 0 ? sub : r;
	return as_f(r | sign);
}

ALWAYS_INLINE uint16_t f2h(float f)
{
	uint32_t x = as_u(f);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t a = x & 0x7fffffffu;
	/* Normal halves: rebias 127 -> 15, round to nearest even on bit 13. */
	uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
	/* Below 2^-14: adding 0.5 makes the FPU round at 2^-24, the half
	 * subnormal step; the low bits are then the half's mantissa. */
	uint32_t sub = as_u(as_f(a) + 0.5f) - 0x3f000000u;
	uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
	uint32_t r = a < 0x38800000u ? sub : normal;

	r = a >= 0x477ff000u ? 0x7c00u : r; /* rounds to infinity */
	r = a > 0x7f800000u ? nan : r;
	return (uint16_t)(r | sign);
}

ALWAYS_INLINE float b2f(uint16_t h)
{
	return as_f((uint32_t)h << 16);
}

ALWAYS_INLINE uint16_t f2b(float f)
{
	uint32_t x = as_u(f);
	uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;

	r = (x & 0x7fffffffu) > 0x7f800000u ? (x >> 16) | 0x40u : r;
	return (uint16_t)r;
}

float vkvi_f16_to_f32(uint16_t h)
{
	return h2f(h);
}
uint16_t vkvi_f32_to_f16(float f)
{
	return f2h(f);
}
float vkvi_bf16_to_f32(uint16_t h)
{
	return b2f(h);
}
uint16_t vkvi_f32_to_bf16(float f)
{
	return f2b(f);
}

ALWAYS_INLINE float load_elem(const void *p, size_t i, unsigned elem)
{
	if (elem == VKV_QUANT_F32)
		return ((const float *)p)[i];
	if (elem == VKV_QUANT_F16)
		return h2f(((const uint16_t *)p)[i]);
	return b2f(((const uint16_t *)p)[i]);
}

ALWAYS_INLINE void store_elem(void *p, size_t i, unsigned elem, float v)
{
	if (elem == VKV_QUANT_F32)
		((float *)p)[i] = v;
	else if (elem == VKV_QUANT_F16)
		((uint16_t *)p)[i] = f2h(v);
	else
		((uint16_t *)p)[i] = f2b(v);
}

#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */

ALWAYS_INLINE void quant_head(const void *src, size_t n, unsigned elem,
			      int8_t *dst, float *scale)
{
	float absmax, inv, pre;

	/* Non-negative floats order like their bit patterns, so the max is
	 * taken on the raw bits, over finite elements only (inf and NaN count
	 * as 0), and converted once. */
	if (elem == VKV_QUANT_F32) {
		const int32_t *p = src;
		int32_t m = 0;

		for (size_t i = 0; i < n; i++) {
			int32_t a = p[i] & 0x7fffffff;

			a = a < 0x7f800000 ? a : 0;
			m = a > m ? a : m;
		}
		absmax = as_f((uint32_t)m);
	} else {
		const int16_t *p = src;
		int16_t lim = elem == VKV_QUANT_F16 ? 0x7c00 : 0x7f80;
		int16_t m = 0;

		for (size_t i = 0; i < n; i++) {
			int16_t a = (int16_t)(p[i] & 0x7fff);

			a = a < lim ? a : 0;
			m = a > m ? a : m;
		}
		absmax = elem == VKV_QUANT_F16 ? h2f((uint16_t)m)
					       : b2f((uint16_t)m);
	}
	*scale = absmax / 127.0f;
	/* 127 / absmax overflows for absmax below ~3.7e-37 (fp32 and bf16
	 * only): then both sides are scaled up by 2^64 first. */
	pre = absmax < 0x1p-100f ? 0x1p64f : 1.0f;
	inv = absmax > 0.0f ? 127.0f / (absmax * pre) : 0.0f;
	for (size_t i = 0; i < n; i++) {
		float x = load_elem(src, i, elem);
		float v = (x * pre) * inv; /* inf * 0 is NaN: see below */
		int32_t q;

		v = v > 127.0f ? 127.0f : v;
		v = v < -127.0f ? -127.0f : v;
		v = (v + ROUND_MAGIC) - ROUND_MAGIC;
		v = v == v ? v : 0.0f;
		q = (int32_t)v;
		q = (as_u(x) & 0x7fffffffu) > 0x7f800000u ? -128 : q;
		dst[i] = (int8_t)q;
	}
}

ALWAYS_INLINE void dequant_head(const int8_t *src, size_t n, float scale,
				unsigned elem, void *dst)
{
	for (size_t i = 0; i < n; i++) {
		float v = (float)src[i] * scale;

		v = src[i] == -128 ? NAN : v;
		store_elem(dst, i, elem, v);
	}
}

static int check_args(size_t nrows, size_t heads, size_t head_dim,
		      unsigned elem, size_t *nvec)
{
	size_t n;

	if (!nrows || !heads || !head_dim)
		return -EINVAL;
	if (elem != VKV_QUANT_F16 && elem != VKV_QUANT_F32 &&
	    elem != VKV_QUANT_BF16)
		return -EINVAL;
	if (__builtin_mul_overflow(nrows, heads, nvec) ||
	    __builtin_mul_overflow(*nvec, head_dim, &n) ||
	    __builtin_mul_overflow(n, (size_t)4, &n))
		return -EINVAL;
	return 0;
}

size_t vkvi_quant_bytes(size_t nrows, size_t heads, size_t head_dim)
{
	size_t nvec, n;

	if (__builtin_mul_overflow(nrows, heads, &nvec) ||
	    __builtin_mul_overflow(nvec, head_dim + 4, &n) ||
	    head_dim + 4 < head_dim)
		return 0;
	return n;
}

QUANT_CLONES
int vkvi_quant_rows(const void *src, size_t nrows, size_t heads,
		    size_t head_dim, unsigned elem, int8_t *dst, float *scales)
{
	size_t nvec, esz = elem == VKV_QUANT_F32 ? 4 : 2;
	const char *s = src;
	int ret;

	if (!src || !dst || !scales)
		return -EINVAL;
	ret = check_args(nrows, heads, head_dim, elem, &nvec);
	if (ret)
		return ret;
	for (size_t v = 0; v < nvec; v++) {
		const void *p = s + v * head_dim * esz;
		int8_t *q = dst + v * head_dim;

		switch (elem) {
		case VKV_QUANT_F16:
			quant_head(p, head_dim, VKV_QUANT_F16, q, &scales[v]);
			break;
		case VKV_QUANT_F32:
			quant_head(p, head_dim, VKV_QUANT_F32, q, &scales[v]);
			break;
		default:
			quant_head(p, head_dim, VKV_QUANT_BF16, q, &scales[v]);
			break;
		}
	}
	return 0;
}

QUANT_CLONES
int vkvi_dequant_rows(const int8_t *src, const float *scales, size_t nrows,
		      size_t heads, size_t head_dim, unsigned elem, void *dst)
{
	size_t nvec, esz = elem == VKV_QUANT_F32 ? 4 : 2;
	char *d = dst;
	int ret;

	if (!src || !dst || !scales)
		return -EINVAL;
	ret = check_args(nrows, heads, head_dim, elem, &nvec);
	if (ret)
		return ret;
	for (size_t v = 0; v < nvec; v++) {
		void *p = d + v * head_dim * esz;
		const int8_t *q = src + v * head_dim;

		switch (elem) {
		case VKV_QUANT_F16:
			dequant_head(q, head_dim, scales[v], VKV_QUANT_F16, p);
			break;
		case VKV_QUANT_F32:
			dequant_head(q, head_dim, scales[v], VKV_QUANT_F32, p);
			break;
		default:
			dequant_head(q, head_dim, scales[v], VKV_QUANT_BF16, p);
			break;
		}
	}
	return 0;
}

int vkvi_qpage_init(struct vkv_qpage *q, size_t page_size, size_t head_dim,
		    unsigned elem)
{
	size_t esz = elem == VKV_QUANT_F32 ? 4 : 2;

	if (!q || !page_size || !head_dim)
		return -EINVAL;
	if (elem != VKV_QUANT_F16 && elem != VKV_QUANT_F32 &&
	    elem != VKV_QUANT_BF16)
		return -EINVAL;
	if (__builtin_mul_overflow(head_dim, esz, &q->vec_bytes) ||
	    head_dim + 4 < head_dim)
		return -EINVAL;
	q->page_size = page_size;
	q->head_dim = head_dim;
	q->elem = elem;
	return 0;
}

/* How the page at @off splits: cut vector bytes at each end, whole ones. */
static void page_split(const struct vkv_qpage *q, size_t off, size_t *lead,
		       size_t *nfull, size_t *tail)
{
	size_t v = q->vec_bytes, in = off % v;

	*lead = in ? v - in : 0;
	if (*lead > q->page_size)
		*lead = q->page_size;
	*nfull = (q->page_size - *lead) / v;
	*tail = q->page_size - *lead - *nfull * v;
}

static size_t stored_bytes(const struct vkv_qpage *q, size_t off)
{
	size_t lead, nfull, tail, n;

	page_split(q, off, &lead, &nfull, &tail);
	if (__builtin_mul_overflow(nfull, q->head_dim + 4, &n) ||
	    __builtin_add_overflow(n, lead + tail, &n))
		return 0;
	return n;
}

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

size_t vkvi_qpage_bytes(const struct vkv_qpage *q, size_t npages)
{
	/* Page offsets modulo the vector size repeat with this period. */
	size_t period = q->vec_bytes / gcd(q->page_size, q->vec_bytes);
	size_t most = 0;

	if (npages > period)
		npages = period;
	for (size_t p = 0; p < npages; p++) {
		size_t n = stored_bytes(q, p * q->page_size);

		if (!n)
			return 0;
		most = n > most ? n : most;
	}
	return most;
}

int vkvi_quant_page(const struct vkv_qpage *q, size_t off, const void *src,
		    void *dst)
{
	size_t lead, nfull, tail;
	const char *s = src;
	char *d = dst;

	if (!q || !src || !dst || off % q->page_size)
		return -EINVAL;
	page_split(q, off, &lead, &nfull, &tail);
	if (nfull) {
		int ret = vkvi_quant_rows(s + lead, 1, nfull, q->head_dim,
					  q->elem, (int8_t *)(d + nfull * 4),
					  (float *)d);

		if (ret)
			return ret;
	}
	d += nfull * (q->head_dim + 4);
	memcpy(d, s, lead);
	memcpy(d + lead, s + q->page_size - tail, tail);
	return 0;
}

int vkvi_dequant_page(const struct vkv_qpage *q, size_t off, const void *src,
		      void *dst)
{
	size_t lead, nfull, tail;
	const char *s = src;
	char *d = dst;

	if (!q || !src || !dst || off % q->page_size)
		return -EINVAL;
	page_split(q, off, &lead, &nfull, &tail);
	if (nfull) {
		int ret = vkvi_dequant_rows((const int8_t *)(s + nfull * 4),
					    (const float *)s, 1, nfull,
					    q->head_dim, q->elem, d + lead);

		if (ret)
			return ret;
	}
	s += nfull * (q->head_dim + 4);
	memcpy(d, s, lead);
	memcpy(d + q->page_size - tail, s + lead, tail);
	return 0;
}
