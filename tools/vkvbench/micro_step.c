// SPDX-License-Identifier: MIT
/*
 * micro_step.c - target (b): the cost of a vkv_step() in which no sequence
 * crosses a page boundary, against one pass of decode attention over the
 * same batch's K/V, in a reduced float32 geometry that fits in memory.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "micro.h"
#include "util.h"

#define STEP_LAYERS 4
#define STEP_HEADS 8
#define STEP_DIM 128
#define STEP_MAX_TOKENS 256
/* The timed steps grow tokens inside [WIN_LO, WIN_LO + 64): one page. */
#define WIN_LO 128u

struct step_bench {
	struct vkv_cache *c;
	struct vkv_tensor k[STEP_LAYERS], v[STEP_LAYERS];
	uint32_t *slots, *lens;
	uint32_t n, lo, hi; /* step lengths run over (lo, hi] */
	size_t row_floats; /* heads * dim: one (token, layer, K|V) row */
	float *q, *out, *scores, *rowbuf;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "vkvbench micro: %s failed: %s\n", what,
		vkv_strerror(err));
	return EXIT_FAIL;
}

/* Deterministic contents per row, so that the check can regenerate them. */
static void row_values(float *dst, size_t n, uint32_t slot, uint32_t tok,
		       uint32_t layer, int kv)
{
	uint64_t x = ((uint64_t)slot << 40) ^ ((uint64_t)tok << 16) ^
		     (layer << 1) ^ (uint64_t)kv;
	size_t i;

	x = x * 0x9e3779b97f4a7c15ull + 1;
	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		/* Small values in [-0.5, 0.5): softmax stays well inside float. */
		dst[i] = (float)(int32_t)(x >> 40 & 0xffff) / 65536.0f - 0.5f +
			 (float)(tok % 7) * 0.01f;
	}
}

static float *row_ptr(const struct vkv_tensor *t, uint32_t slot, uint32_t tok)
{
	return (float *)((char *)t->base + (size_t)slot * t->slot_stride +
			 (size_t)tok * t->token_stride);
}

static void fill(struct step_bench *b, uint32_t upto)
{
	uint32_t s, t, l;

	for (s = 0; s < b->n; s++)
		for (t = 0; t < upto; t++)
			for (l = 0; l < STEP_LAYERS; l++) {
				row_values(row_ptr(&b->k[l], s, t),
					   b->row_floats, s, t, l, 0);
				row_values(row_ptr(&b->v[l], s, t),
					   b->row_floats, s, t, l, 1);
			}
}

/* The steps must not have moved or lost a byte: compare every row. */
static int verify(struct step_bench *b, uint32_t upto)
{
	uint32_t s, t, l;
	int kv;

	for (s = 0; s < b->n; s++)
		for (t = 0; t < upto; t++)
			for (l = 0; l < STEP_LAYERS; l++)
				for (kv = 0; kv < 2; kv++) {
					const struct vkv_tensor *x =
						kv ? &b->v[l] : &b->k[l];

					row_values(b->rowbuf, b->row_floats, s,
						   t, l, kv);
					if (!memcmp(row_ptr(x, s, t), b->rowbuf,
						    b->row_floats *
							    sizeof(float)))
						continue;
					fprintf(stderr,
						"vkvbench: STAMP MISMATCH "
						"(micro step): slot %u token "
						"%u "
						"layer %u %c changed\n",
						s, t, l, kv ? 'V' : 'K');
					return EXIT_FAIL;
				}
	return 0;
}

static int set_lens(struct step_bench *b, uint32_t len)
{
	uint32_t i;
	int ret;

	for (i = 0; i < b->n; i++) {
		ret = vkv_seq_reserve(b->c, b->slots[i], len);
		if (ret)
			return fail("vkv_seq_reserve", ret);
		b->lens[i] = len;
	}
	return 0;
}

static int bench_open(struct step_bench *b, const struct micro_opts *mo)
{
	struct vkv_geometry g = {.layers = STEP_LAYERS,
				 .kv_heads = STEP_HEADS,
				 .head_dim = STEP_DIM,
				 .elem_size = sizeof(float),
				 .max_seqs = mo->batch,
				 .max_tokens = STEP_MAX_TOKENS,
				 .layout = mo->layout};
	struct vkv_config cfg;
	size_t page, i;
	uint32_t l;
	int ret;

	ret = vkv_config_init(&cfg);
	if (ret) {
		fprintf(stderr, "vkvbench micro: %s\n", vkv_config_error());
		return EXIT_USAGE;
	}
	if (mo->page_size)
		cfg.page_size = mo->page_size;
	ret = vkv_cache_create(&g, &cfg, &b->c);
	if (ret) {
		fprintf(stderr, "vkvbench micro: vkv_cache_create: %s: %s\n",
			vkv_strerror(ret), vkv_config_error());
		return EXIT_FAIL;
	}
	for (l = 0; l < STEP_LAYERS; l++) {
		ret = vkv_cache_tensor(b->c, l, VKV_K, &b->k[l]);
		if (!ret)
			ret = vkv_cache_tensor(b->c, l, VKV_V, &b->v[l]);
		if (ret)
			return fail("vkv_cache_tensor", ret);
	}
	page = vkv_cache_page_size(b->c);
	if (!page) {
		fprintf(stderr, "vkvbench micro: the cache has no page size\n");
		return EXIT_FAIL;
	}
	b->row_floats = (size_t)STEP_HEADS * STEP_DIM;
	b->n = mo->batch;
	/* Length lo backs token lo - 1 = WIN_LO, the first of a page. */
	b->lo = WIN_LO + 1;
	b->hi = WIN_LO + 64;
	b->slots = calloc(b->n, sizeof(*b->slots));
	b->lens = calloc(b->n, sizeof(*b->lens));
	i = (size_t)b->n * STEP_LAYERS * STEP_HEADS * STEP_DIM;
	b->q = malloc(i * sizeof(float));
	b->out = malloc(i * sizeof(float));
	b->scores = malloc(STEP_MAX_TOKENS * sizeof(float));
	b->rowbuf = malloc(b->row_floats * sizeof(float));
	if (!b->slots || !b->lens || !b->q || !b->out || !b->scores ||
	    !b->rowbuf) {
		fprintf(stderr, "vkvbench micro: out of memory\n");
		return EXIT_FAIL;
	}
	row_values(b->q, i, 0xffffff, 0, 0, 0);
	for (i = 0; i < b->n; i++) {
		ret = vkv_seq_open(b->c);
		if (ret < 0)
			return fail("vkv_seq_open", ret);
		b->slots[i] = (uint32_t)ret;
	}
	return set_lens(b, b->hi);
}

/*
 * Whether the window [WIN_LO, WIN_LO + 64) of every sequence lies in one
 * page in this layout; if not, the timed steps map pages and say so through
 * the map count.
 */
static int window_in_one_page(const struct step_bench *b)
{
	uintptr_t page = vkv_cache_page_size(b->c);
	uint32_t s, l;

	for (s = 0; s < b->n; s++)
		for (l = 0; l < 2 * STEP_LAYERS; l++) {
			const struct vkv_tensor *t =
				l & 1 ? &b->v[l / 2] : &b->k[l / 2];
			uintptr_t a =
				(uintptr_t)row_ptr(t, b->slots[s], WIN_LO);
			uintptr_t z = (uintptr_t)row_ptr(t, b->slots[s],
							 WIN_LO + 63) +
				      b->row_floats * sizeof(float) - 1;

			if (a / page != z / page)
				return 0;
		}
	return 1;
}

static void bench_close(struct step_bench *b)
{
	free(b->slots);
	free(b->lens);
	free(b->q);
	free(b->out);
	free(b->scores);
	free(b->rowbuf);
	vkv_cache_destroy(b->c);
}

static int time_steps(struct step_bench *b, const struct micro_opts *mo,
		      struct samples *lat)
{
	uint32_t len, i;
	int ret;

	while (lat->n < mo->steps) {
		/* Back to the start of the window: shorter lengths keep pages. */
		ret = set_lens(b, b->lo);
		if (ret)
			return ret;
		for (len = b->lo + 1; len <= b->hi && lat->n < mo->steps;
		     len++) {
			uint64_t t0, t1;

			for (i = 0; i < b->n; i++)
				b->lens[i] = len;
			t0 = now_ns();
			ret = vkv_step(b->c, b->slots, b->lens, b->n);
			t1 = now_ns();
			if (ret)
				return fail("vkv_step", ret);
			samples_push(lat, t1 - t0);
		}
	}
	return lat->oom ? fail("recording samples", -ENOMEM) : 0;
}

int micro_step(const struct micro_opts *mo, struct step_result *r)
{
	struct step_bench b;
	struct attn_batch ab;
	struct samples lat = {0};
	struct vkv_stats s0, s1;
	double *attn = NULL, check = 0;
	uint32_t i;
	int rc;

	memset(&b, 0, sizeof(b));
	memset(r, 0, sizeof(*r));
	rc = bench_open(&b, mo);
	if (rc)
		goto out;
	r->one_page = window_in_one_page(&b);
	fill(&b, b.hi);
	vkv_cache_stats(b.c, &s0);
	rc = time_steps(&b, mo, &lat);
	if (rc)
		goto out;
	vkv_cache_stats(b.c, &s1);
	rc = verify(&b, b.hi);
	if (rc)
		goto out;

	/* Attention over the shortest length the steps ran at: conservative. */
	rc = set_lens(&b, b.lo);
	if (rc)
		goto out;
	ab = (struct attn_batch){.n = b.n,
				 .slots = b.slots,
				 .lens = b.lens,
				 .layers = STEP_LAYERS,
				 .heads = STEP_HEADS,
				 .dim = STEP_DIM,
				 .k = b.k,
				 .v = b.v,
				 .q = b.q,
				 .out = b.out,
				 .scores = b.scores};
	attn = calloc(mo->passes, sizeof(*attn));
	if (!attn) {
		rc = fail("allocating", -ENOMEM);
		goto out;
	}
	check += attn_pass(&ab); /* warm: caches and TLB as a real run */
	for (i = 0; i < mo->passes; i++) {
		uint64_t t0 = now_ns();

		check += attn_pass(&ab);
		attn[i] = (double)(now_ns() - t0);
	}
	if (!isfinite(check)) {
		fprintf(stderr, "vkvbench micro: attention produced %f\n",
			check);
		rc = EXIT_FAIL;
		goto out;
	}
	r->batch = b.n;
	r->layers = STEP_LAYERS;
	r->heads = STEP_HEADS;
	r->dim = STEP_DIM;
	r->len_lo = b.lo + 1;
	r->len_hi = b.hi;
	r->attn_len = b.lo;
	r->kv_bytes =
		2ull * b.n * b.lo * STEP_LAYERS * b.row_floats * sizeof(float);
	r->steps = lat.n;
	r->map_calls = s1.map_calls - s0.map_calls;
	r->step_p99_ns = (double)percentile_u64(lat.v, lat.n, 99);
	r->step_ns = (double)percentile_u64(lat.v, lat.n, 50);
	r->attn_ns = median_dbl(attn, mo->passes);
	r->ratio = r->attn_ns > 0 ? r->step_ns / r->attn_ns : INFINITY;
out:
	free(attn);
	samples_free(&lat);
	bench_close(&b);
	return rc;
}
