/* SPDX-License-Identifier: MIT */
/*
 * quant.h - 8-bit quantization of KV rows for the quantized tiers.
 * Internal to the library.
 *
 * A row is one token: @heads heads of @head_dim elements, rows contiguous
 * ([nrows][heads][head_dim], the layout of one layer's K or V for one
 * sequence; a token-major cache passes layers * kv_heads as @heads). Each
 * (row, head) gets its own symmetric scale, absmax / 127, and each element
 * q = round(x / scale) in [-127, 127]; dequantization gives q * scale, so
 * |x - x'| <= scale / 2 before the conversion back to the element type
 * (which adds at most half a unit in its last place). When absmax is so
 * small (below ~1.5e-36, fp32 and bf16 only) that the scale is a subnormal
 * float, the scale's own rounding adds up to 127 * 2^-150.
 *
 * Element codes (@elem): VKV_QUANT_F16 (2, IEEE binary16), VKV_QUANT_F32
 * (4), VKV_QUANT_BF16 (bfloat16; not 2, since 2 means fp16). Conversions
 * are exact for every representable value and round to nearest even.
 *
 * Special values, without undefined behaviour:
 *   - zeros: a head of zeros gets scale 0 and restores to +0 (-0 becomes +0);
 *   - the scale is taken over the finite elements only;
 *   - +inf and -inf quantize to +127 and -127, i.e. they restore to +-absmax
 *     of the finite elements of that head (0 if there are none);
 *   - NaN quantizes to -128 (a code no finite value uses) and restores to a
 *     quiet NaN.
 *
 * Footprint: head_dim + 4 bytes per (row, head) instead of head_dim *
 * element size; see vkvi_quant_bytes().
 */
#ifndef VKV_QUANT_H
#define VKV_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define VKV_QUANT_F16 2u
#define VKV_QUANT_F32 4u
#define VKV_QUANT_BF16 0x102u

/*
 * vkvi_quant_rows - quantize @nrows rows at @src into @dst (nrows * heads *
 * head_dim int8) and @scales (nrows * heads floats, row-major).
 * Returns 0, or -EINVAL for NULL pointers, zero sizes, an unknown element
 * code or sizes that overflow.
 */
int vkvi_quant_rows(const void *src, size_t nrows, size_t heads,
		    size_t head_dim, unsigned elem, int8_t *dst, float *scales);

/* vkvi_dequant_rows - the inverse, into @dst of element type @elem. */
int vkvi_dequant_rows(const int8_t *src, const float *scales, size_t nrows,
		      size_t heads, size_t head_dim, unsigned elem, void *dst);

/* Bytes vkvi_quant_rows() produces (values plus scales); 0 on overflow. */
size_t vkvi_quant_bytes(size_t nrows, size_t heads, size_t head_dim);

/*
 * Whole pages of a cache segment. A segment is a run of head vectors
 * (head_dim elements each) from its start, so a page at byte offset @off of
 * its segment may begin and end inside a vector whenever the vector's size
 * does not divide the page size. Such a page is stored as
 *
 *   [nfull float scales][nfull * head_dim int8][lead bytes][tail bytes]
 *
 * where the nfull vectors that lie wholly inside the page are quantized
 * one by one (so each gets its own scale, as vkvi_quant_rows() promises),
 * and the lead and tail, the parts of the vectors cut by the page's two
 * edges, are copied as they are. Quantizing a cut vector would need the
 * neighbouring page, which is saved and restored on its own; and a scale
 * over a part of a vector would give no tighter bound than the raw bytes
 * cost. So a round trip changes nothing but the int8 rounding of whole
 * vectors, and a page too small for one whole vector is stored raw.
 */
struct vkv_qpage {
	size_t page_size;
	size_t head_dim;
	size_t vec_bytes; /* head_dim * element size */
	unsigned elem; /* VKV_QUANT_* */
};

/*
 * vkvi_qpage_init - describe pages of @page_size bytes over vectors of
 * @head_dim elements of type @elem. -EINVAL for zero sizes, an unknown
 * element code or sizes that overflow.
 */
int vkvi_qpage_init(struct vkv_qpage *q, size_t page_size, size_t head_dim,
		    unsigned elem);

/*
 * vkvi_qpage_bytes - the most bytes any of the first @npages pages of a
 * segment takes stored (pages differ by where the vectors are cut); 0 on
 * overflow.
 */
size_t vkvi_qpage_bytes(const struct vkv_qpage *q, size_t npages);

/*
 * vkvi_quant_page - store the page at byte offset @off of its segment, read
 * from @src (page_size bytes), into @dst (4-byte aligned, room for
 * vkvi_qpage_bytes()). vkvi_dequant_page() is the inverse. -EINVAL for NULL
 * pointers or an @off that is not a multiple of the page size.
 */
int vkvi_quant_page(const struct vkv_qpage *q, size_t off, const void *src,
		    void *dst);
int vkvi_dequant_page(const struct vkv_qpage *q, size_t off, const void *src,
		      void *dst);

/* Scalar conversions, exposed for tests; round to nearest even. */
float vkvi_f16_to_f32(uint16_t h);
uint16_t vkvi_f32_to_f16(float f);
float vkvi_bf16_to_f32(uint16_t h);
uint16_t vkvi_f32_to_bf16(float f);

#endif /* VKV_QUANT_H */
