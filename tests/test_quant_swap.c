/* SPDX-License-Identifier: MIT */
/*
 * test_quant_swap.c - quantized tiers for every geometry: a swap round trip
 * changes nothing but the int8 rounding of head vectors that lie wholly in
 * a page, within its bound, and leaves the vectors a page edge cuts exact;
 * and quantization is refused where the element type is not known to be
 * fp16, bf16 or fp32.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <unistd.h>

#include "harness.h"
#include "quant.h"

/* Pages as small as the backend allows, so that many cuts are exercised. */
static size_t small_page(void)
{
	const char *be = getenv("VKV_BACKEND");

	return be && !strcmp(be, "cuda") ? 2 * MIB : 4096;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t dtype_bytes(enum vkv_dtype t)
{
	return t == VKV_DTYPE_F32 ? 4 : 2;
}

static double load(const void *p, enum vkv_dtype t)
{
	uint16_t h;
	float f;

	if (t == VKV_DTYPE_F32) {
		memcpy(&f, p, 4);
		return f;
	}
	memcpy(&h, p, 2);
	return t == VKV_DTYPE_F16 ? vkvi_f16_to_f32(h) : vkvi_bf16_to_f32(h);
}

static void store(void *p, enum vkv_dtype t, float v)
{
	uint16_t h;

	if (t == VKV_DTYPE_F32) {
		memcpy(p, &v, 4);
		return;
	}
	h = t == VKV_DTYPE_F16 ? vkvi_f32_to_f16(v) : vkvi_f32_to_bf16(v);
	memcpy(p, &h, 2);
}

/* One unit in the last place of the element type at magnitude @v. */
static double ulp(double v, enum vkv_dtype t)
{
	int e;

	v = fabs(v);
	if (t == VKV_DTYPE_F16) {
		if (v < 0x1p-14)
			return 0x1p-24;
		frexp(v, &e);
		return ldexp(1.0, e - 11);
	}
	if (t == VKV_DTYPE_BF16) {
		if (v < 0x1p-126)
			return 0x1p-133;
		frexp(v, &e);
		return ldexp(1.0, e - 8);
	}
	if (v < 0x1p-126)
		return 0x1p-149;
	frexp(v, &e);
	return ldexp(1.0, e - 24);
}

struct qcase {
	enum vkv_layout layout;
	enum vkv_dtype dtype;
	uint32_t elem_size; /* as the caller gives it (0: from the dtype) */
	uint32_t layers, heads, head_dim;
	enum vkv_tier tier;
};

static const struct qcase cases[] = {
	/* fp16, 48-byte vectors: 4 KiB pages cut one in every page. */
	{VKV_LAYOUT_PER_LAYER, VKV_DTYPE_F16, 2, 2, 2, 24, VKV_TIER_HOST},
	{VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_F16, 0, 2, 2, 96, VKV_TIER_DISK},
	{VKV_LAYOUT_TOKEN_MAJOR_KV, VKV_DTYPE_BF16, 2, 3, 3, 24, VKV_TIER_HOST},
	{VKV_LAYOUT_PER_LAYER, VKV_DTYPE_BF16, 0, 1, 4, 64, VKV_TIER_DISK},
	{VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_F32, 4, 2, 3, 100, VKV_TIER_HOST},
	{VKV_LAYOUT_TOKEN_MAJOR_KV, VKV_DTYPE_F32, 0, 1, 2, 128, VKV_TIER_DISK},
	/* Unspecified with 4 bytes: fp32. */
	{VKV_LAYOUT_PER_LAYER, VKV_DTYPE_UNSPECIFIED, 4, 2, 1, 40,
	 VKV_TIER_HOST},
	/* A vector bigger than a 4 KiB page: such pages are stored raw. */
	{VKV_LAYOUT_PER_LAYER, VKV_DTYPE_F16, 2, 1, 2, 3000, VKV_TIER_HOST},
	/* Two-element vectors: quantizing them takes more room, still exact. */
	{VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_F16, 2, 1, 3, 2, VKV_TIER_DISK},
	/* Odd sizes everywhere. */
	{VKV_LAYOUT_TOKEN_MAJOR_KV, VKV_DTYPE_BF16, 2, 2, 5, 7, VKV_TIER_DISK},
};

static char swap_path[256];

static struct vkv_cache *make_cache(const struct qcase *q, size_t page,
				    uint32_t max_tokens)
{
	struct vkv_geometry g = {
		.layers = q->layers,
		.kv_heads = q->heads,
		.head_dim = q->head_dim,
		.elem_size = q->elem_size,
		.max_seqs = 2,
		.max_tokens = max_tokens,
		.layout = q->layout,
		.dtype = q->dtype,
	};
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	int ret, fd;

	cfg.page_size = page;
	cfg.pool_low = 0;
	cfg.pool_high = 0;
	cfg.quantize = 1;
	cfg.host_budget = 0;
	if (q->tier == VKV_TIER_HOST) {
		cfg.host_budget = 64 * page;
	} else {
		const char *dir = getenv("TMPDIR");

		snprintf(swap_path, sizeof(swap_path),
			 "%s/vkv-test-qswap-XXXXXX",
			 dir && *dir ? dir : "/tmp");
		fd = mkstemp(swap_path);
		ck_assert_int_ge(fd, 0);
		close(fd);
		cfg.swap_path = swap_path;
	}
	ret = vkv_cache_create(&g, &cfg, &c);
	/* The tier keeps its file open: a failing test leaves no file. */
	if (swap_path[0])
		unlink(swap_path);
	swap_path[0] = '\0';
	ck_assert_msg(ret == 0, "create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	return c;
}

/*
 * Every element of every head vector of @slot's first @len tokens, in the
 * order of (layer, K/V, token, head): random values over magnitudes from
 * 1e-3 to 1e3 (a vector's scale follows its own largest value), and every
 * ninth vector all zeros.
 */
static void fill(struct vkv_cache *c, const struct qcase *q, uint32_t slot,
		 uint32_t len, uint64_t seed)
{
	uint32_t esz = dtype_bytes(
		q->dtype == VKV_DTYPE_UNSPECIFIED ? VKV_DTYPE_F32 : q->dtype);
	enum vkv_dtype t = esz == 4 ? VKV_DTYPE_F32 : q->dtype;
	static const float mags[] = {1e-3f, 0.5f, 3.0f, 1e3f};
	uint64_t rng = seed;

	for (uint32_t l = 0; l < q->layers; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t tok = 0; tok < len; tok++) {
				char *row = vkv_token_ptr(c, l, kv, slot, tok);

				for (uint32_t h = 0; h < q->heads; h++) {
					float m = mags[rng_next(&rng) % 4];
					bool zero = rng_next(&rng) % 9 == 0;
					char *v = row +
						  (size_t)h * q->head_dim * esz;

					for (uint32_t d = 0; d < q->head_dim;
					     d++) {
						int64_t r =
							(int64_t)(rng_next(
									  &rng) %
								  20001) -
							10000;
						float x =
							zero ? 0.0f
							     : m * (float)r /
									10000.0f;

						store(v + (size_t)d * esz, t,
						      x);
					}
				}
			}
}

struct qstats {
	size_t whole, cut, changed;
	double worst; /* largest error over the bound's rounding part */
};

/*
 * Compare @slot's vectors with @copy (the same order as fill()): a vector
 * a page edge cuts must be bit-exact; one inside a page within the int8
 * bound of its own absmax: |x - x'| <= absmax / 254, plus float rounding
 * in the scale and the product (well under absmax * 1e-6) and half a unit
 * in the last place of the element type for the conversion back.
 */
static void verify(struct vkv_cache *c, const struct qcase *q, uint32_t slot,
		   uint32_t len, const char *copy, size_t page,
		   struct qstats *st)
{
	uint32_t esz =
		q->dtype == VKV_DTYPE_UNSPECIFIED ? 4 : dtype_bytes(q->dtype);
	enum vkv_dtype t = esz == 4 ? VKV_DTYPE_F32 : q->dtype;
	size_t vb = (size_t)q->head_dim * esz;

	memset(st, 0, sizeof(*st));
	for (uint32_t l = 0; l < q->layers; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t tok = 0; tok < len; tok++) {
				const char *row =
					vkv_token_ptr(c, l, kv, slot, tok);

				for (uint32_t h = 0; h < q->heads;
				     h++, copy += vb) {
					const char *v = row + h * vb;
					uintptr_t a = (uintptr_t)v;
					double amax = 0;

					if (a / page != (a + vb - 1) / page) {
						st->cut++;
						req(!memcmp(v, copy, vb));
						continue;
					}
					st->whole++;
					for (uint32_t d = 0; d < q->head_dim;
					     d++)
						amax = fmax(
							amax,
							fabs(load(
								copy + d * esz,
								t)));
					if (memcmp(v, copy, vb))
						st->changed++;
					for (uint32_t d = 0; d < q->head_dim;
					     d++) {
						double x =
							load(copy + d * esz, t);
						double y = load(v + d * esz, t);
						double e = fabs(x - y);
						double u = fmax(ulp(x, t),
								ulp(y, t));
						double bound = amax / 254.0 +
							       amax * 1e-6 +
							       u / 2;

						if (e > bound)
							ck_abort_msg(
								"layer %u kv "
								"%d token %u "
								"head %u dim "
								"%u: %.9g "
								"came back "
								"%.9g, bound "
								"%.3g",
								l, kv, tok, h,
								d, x, y, bound);
						if (amax > 0 &&
						    e / amax > st->worst)
							st->worst = e / amax;
					}
				}
			}
}

START_TEST(test_quant_geometries)
{
	const struct qcase *q = &cases[_i];
	size_t page = small_page();
	uint32_t esz =
		q->dtype == VKV_DTYPE_UNSPECIFIED ? 4 : dtype_bytes(q->dtype);
	size_t stride = (size_t)q->heads * q->head_dim * esz *
			(q->layout == VKV_LAYOUT_PER_LAYER     ? 1
			 : q->layout == VKV_LAYOUT_TOKEN_MAJOR ? q->layers
							       : 2 * q->layers);
	/* Four and a bit pages of each segment. */
	uint32_t len = (uint32_t)((4 * page + page / 3) / stride + 1);
	struct vkv_cache *c = make_cache(q, page, len + 8);
	size_t n = (size_t)len * stride *
		   (q->layout == VKV_LAYOUT_PER_LAYER	  ? 2 * q->layers
		    : q->layout == VKV_LAYOUT_TOKEN_MAJOR ? 2
							  : 1);
	char *copy = malloc(n), *p = copy;
	struct vkv_seq_info si;
	struct qstats st, first = {0};
	int a = vkv_seq_open(c);

	ck_assert_ptr_nonnull(copy);
	ck_ok(a);
	ck_ok(vkv_seq_reserve(c, a, len));
	fill(c, q, a, len, 0x9e3779b97f4a7c15ull + _i);
	for (uint32_t l = 0; l < q->layers; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = 0; t < len; t++) {
				size_t row =
					(size_t)q->heads * q->head_dim * esz;

				memcpy(p, vkv_token_ptr(c, l, kv, a, t), row);
				p += row;
			}
	ck_assert_uint_eq((size_t)(p - copy), n);

	/* Out and back explicitly, then out and back through a step. */
	for (int round = 0; round < 2; round++) {
		ck_ok(vkv_seq_swap_out(c, a, q->tier));
		ck_ok(vkv_seq_swap_wait(c, a));
		ck_ok(vkv_seq_info(c, a, &si));
		ck_assert_uint_eq(si.tier, q->tier);
		if (round == 0) {
			ck_ok(vkv_seq_swap_in(c, a));
			ck_ok(vkv_seq_swap_wait(c, a));
		} else {
			uint32_t slot = (uint32_t)a;

			ck_ok(vkv_step(c, &slot, &len, 1));
		}
		verify(c, q, a, len, copy, page, &st);
		if (round == 0)
			first = st;
		/* Round two compares with what round one gave back. */
		p = copy;
		for (uint32_t l = 0; l < q->layers; l++)
			for (int kv = 0; kv < 2; kv++)
				for (uint32_t t = 0; t < len; t++) {
					size_t row = (size_t)q->heads *
						     q->head_dim * esz;

					memcpy(p, vkv_token_ptr(c, l, kv, a, t),
					       row);
					p += row;
				}
	}
	printf("quantized swap, case %d (%zu-byte vectors, %zu-byte pages): "
	       "%zu whole vectors, %zu changed, %zu cut by a page edge and "
	       "exact; worst error %.5f of absmax\n",
	       _i, (size_t)q->head_dim * esz, page, first.whole, first.changed,
	       first.cut, first.worst);
	/* Not vacuous: whole vectors were quantized where a page holds one. */
	if ((size_t)q->head_dim * esz <= page) {
		ck_assert_uint_gt(first.whole, 0);
		ck_assert_uint_gt(first.changed, 0);
	}
	free(copy);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * Rounding must actually happen where it should: the first round trip of
 * random fp16 data changes whole vectors (this is a quantized tier, not a
 * raw copy), and the bound is tight enough to mean something: a whole
 * vector's error never reaches absmax / 127.
 */
START_TEST(test_quant_not_raw)
{
	const struct qcase *q = &cases[0];
	size_t page = small_page();
	uint32_t len = (uint32_t)(3 * page / (2 * 24 * 2));
	struct vkv_cache *c = make_cache(q, page, len);
	size_t vb = 24 * 2, n = (size_t)2 * 2 * len * 2 * vb;
	char *copy = malloc(n), *p = copy;
	struct qstats st;
	int a = vkv_seq_open(c);

	ck_assert_ptr_nonnull(copy);
	ck_ok(vkv_seq_reserve(c, a, len));
	fill(c, q, a, len, 12345);
	for (uint32_t l = 0; l < 2; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = 0; t < len; t++, p += 2 * vb)
				memcpy(p, vkv_token_ptr(c, l, kv, a, t),
				       2 * vb);
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_ok(vkv_seq_swap_in(c, a));
	ck_ok(vkv_seq_swap_wait(c, a));
	verify(c, q, a, len, copy, page, &st);
	ck_assert_uint_gt(st.changed, st.whole / 2);
	ck_assert(st.worst > 0 && st.worst < 1.0 / 127);
	free(copy);
	vkv_cache_destroy(c);
}
END_TEST

/* Where the element type is unknown or 8-bit, quantize is refused. */
START_TEST(test_quant_refused)
{
	struct vkv_geometry g = {
		.layers = 1,
		.kv_heads = 2,
		.head_dim = 64,
		.elem_size = 2,
		.max_seqs = 2,
		.max_tokens = 64,
		.layout = VKV_LAYOUT_PER_LAYER,
	};
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	static const enum vkv_dtype eight[] = {VKV_DTYPE_F8_E4M3,
					       VKV_DTYPE_F8_E5M2, VKV_DTYPE_I8};

	cfg.page_size = small_page();
	cfg.quantize = 1;
	cfg.host_budget = 16 * cfg.page_size;
	/* 2 bytes: fp16 or bf16, which read differently. */
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "dtype"));
	g.elem_size = 1;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "quantize"));
	g.elem_size = 8;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "quantize"));
	for (size_t i = 0; i < 3; i++) {
		g.dtype = eight[i];
		g.elem_size = 1;
		ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
		ck_assert_ptr_nonnull(strstr(vkv_config_error(), "8-bit"));
		/* Without quantize the same cache is fine. */
		cfg.quantize = 0;
		ck_ok(vkv_cache_create(&g, &cfg, &c));
		vkv_cache_destroy(c);
		c = NULL;
		cfg.quantize = 1;
	}
	/* With the type named, 2 bytes are fine both ways. */
	g.elem_size = 2;
	g.dtype = VKV_DTYPE_F16;
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	vkv_cache_destroy(c);
	g.dtype = VKV_DTYPE_BF16;
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	vkv_cache_destroy(c);
}
END_TEST

int main(void)
{
	Suite *s;

	core_suite_defaults();
	s = suite_create("quant_swap");

	tcase_add_loop_test(suite_case(s, "geometries", 600),
			    test_quant_geometries, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(suite_case(s, "raw", 600), test_quant_not_raw);
	tcase_add_test(suite_case(s, "refused", 600), test_quant_refused);
	return run_suite(s);
}
