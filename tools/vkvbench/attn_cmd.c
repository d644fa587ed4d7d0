// SPDX-License-Identifier: MIT
/*
 * attn_cmd.c - `vkvbench attn`: decode attention over a contiguous vkv
 * cache against the same attention reading K/V through a block table of
 * 16-token blocks, at several batch sizes and context lengths.
 *
 * Data: one layer of Llama-3-8B's attention (8 KV heads of dim 128, 4 query
 * heads per KV head), float32. The contiguous side is a real vkv cache on
 * the host backend in the per-layer layout (each slot's rows are
 * [token][head][dim], contiguous); the paged side is a pool of 16-token
 * blocks ([block][token][head][dim], as vLLM lays out a block) handed out
 * in a seeded random order, as an allocator's free list is after churn,
 * holding the very same values. Passes of the two alternate, so drift of a
 * shared machine hits both; medians are reported.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_cmp.h"
#include "cmd.h"
#include "mdblock.h"
#include "util.h"
#include "vkv.h"

#define HEADS 8
#define BLOCK 16
#define MAX_TOKENS_TOTAL (128u << 10) /* 1 GiB of K/V per side */

struct acase {
	uint32_t batch, ctx;
	double contig_ns, paged_ns; /* medians per pass */
	double ratio; /* paged / contiguous */
	double gbps; /* K/V bytes read per second, contiguous */
	float maxdiff;
};

struct attn_report {
	struct acase *c;
	size_t n;
	uint32_t passes;
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: deterministic data without libc's rand() state. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static float rng_float(uint64_t *s)
{
	return (float)((double)(rng_next(s) >> 40) / (double)(1ull << 24)) *
		       2.0f -
	       1.0f;
}

struct paged {
	float *k, *v; /* [block][BLOCK][HEADS][DIM] */
	uint32_t *table; /* [seq][ctx / BLOCK] */
};

static double pass_contig(const struct acase *c, const struct vkv_tensor *kt,
			  const struct vkv_tensor *vt, const float *q,
			  float *out)
{
	struct acmp_state st;
	uint64_t t0 = now_ns();
	uint32_t s, h;

	for (s = 0; s < c->batch; s++) {
		for (h = 0; h < HEADS; h++) {
			size_t off = (size_t)s * kt->slot_stride +
				     (size_t)h * kt->head_stride;
			struct acmp_run r = {
				.k = (const float *)((const char *)kt->base +
						     off),
				.v = (const float *)((const char *)vt->base +
						     off),
				.stride = kt->token_stride / sizeof(float),
				.n = c->ctx};
			size_t qo =
				((size_t)s * HEADS + h) * ACMP_GROUP * ACMP_DIM;

			acmp_init(&st);
			acmp_run(&st, q + qo, &r);
			acmp_finish(&st, out + qo);
		}
	}
	return (double)(now_ns() - t0);
}

static double pass_paged(const struct acase *c, const struct paged *p,
			 const float *q, float *out)
{
	const size_t bf = (size_t)BLOCK * HEADS * ACMP_DIM;
	const uint32_t nb = c->ctx / BLOCK;
	struct acmp_state st;
	uint64_t t0 = now_ns();
	uint32_t s, h, b;

	for (s = 0; s < c->batch; s++) {
		for (h = 0; h < HEADS; h++) {
			const uint32_t *tab = p->table + (size_t)s * nb;
			size_t qo =
				((size_t)s * HEADS + h) * ACMP_GROUP * ACMP_DIM;

			acmp_init(&st);
			for (b = 0; b < nb; b++) {
				size_t off = tab[b] * bf + (size_t)h * ACMP_DIM;
				struct acmp_run r = {.k = p->k + off,
						     .v = p->v + off,
						     .stride = HEADS * ACMP_DIM,
						     .n = BLOCK};

				acmp_run(&st, q + qo, &r);
			}
			acmp_finish(&st, out + qo);
		}
	}
	return (double)(now_ns() - t0);
}

static int fill(struct acase *c, struct vkv_cache *cache, struct paged *p,
		const struct vkv_tensor *kt, const struct vkv_tensor *vt)
{
	const size_t row = (size_t)HEADS * ACMP_DIM;
	const uint32_t nb = c->ctx / BLOCK;
	size_t nblocks = (size_t)c->batch * nb, i;
	uint64_t seed =
		0x9e3779b97f4a7c15ull ^ c->batch ^ ((uint64_t)c->ctx << 32);
	uint32_t s, t;

	for (i = 0; i < nblocks; i++)
		p->table[i] = (uint32_t)i;
	for (i = nblocks; i > 1; i--) { /* Fisher-Yates */
		size_t j = rng_next(&seed) % i;
		uint32_t x = p->table[i - 1];

		p->table[i - 1] = p->table[j];
		p->table[j] = x;
	}
	for (s = 0; s < c->batch; s++) {
		int ret = vkv_seq_open(cache);

		if (ret < 0 || (uint32_t)ret != s)
			return ret < 0 ? ret : -EINVAL;
		ret = vkv_seq_reserve(cache, s, c->ctx);
		if (ret)
			return ret;
		for (t = 0; t < c->ctx; t++) {
			float *kr = (float *)((char *)kt->base +
					      s * kt->slot_stride +
					      t * kt->token_stride);
			float *vr = (float *)((char *)vt->base +
					      s * vt->slot_stride +
					      t * vt->token_stride);
			size_t blk = p->table[(size_t)s * nb + t / BLOCK];
			size_t po = (blk * BLOCK + t % BLOCK) * row;

			for (i = 0; i < row; i++) {
				kr[i] = rng_float(&seed);
				vr[i] = rng_float(&seed);
			}
			memcpy(p->k + po, kr, row * sizeof(float));
			memcpy(p->v + po, vr, row * sizeof(float));
		}
	}
	return 0;
}

static int run_case(struct acase *c, uint32_t passes)
{
	struct vkv_geometry g = {.layers = 1,
				 .kv_heads = HEADS,
				 .head_dim = ACMP_DIM,
				 .elem_size = sizeof(float),
				 .max_seqs = c->batch,
				 .max_tokens = c->ctx,
				 .layout = VKV_LAYOUT_PER_LAYER};
	size_t nq = (size_t)c->batch * HEADS * ACMP_GROUP * ACMP_DIM;
	size_t kvf = (size_t)c->batch * c->ctx * HEADS * ACMP_DIM;
	struct vkv_config cfg;
	struct vkv_cache *cache = NULL;
	struct vkv_tensor kt, vt;
	struct paged p = {0};
	float *q = NULL, *o1 = NULL, *o2 = NULL;
	double *tc = NULL, *tp = NULL;
	uint64_t seed = 12345;
	uint32_t i;
	size_t j;
	int ret;

	vkv_config_init(&cfg);
	cfg.backend = VKV_BACKEND_HOST;
	cfg.budget = 0;
	ret = vkv_cache_create(&g, &cfg, &cache);
	if (!ret)
		ret = vkv_cache_tensor(cache, 0, 0, &kt);
	if (!ret)
		ret = vkv_cache_tensor(cache, 0, 1, &vt);
	if (ret) {
		fprintf(stderr, "vkvbench attn: cache: %s\n",
			vkv_strerror(ret));
		vkv_cache_destroy(cache);
		return EXIT_FAIL;
	}
	p.k = aligned_alloc(64, kvf * sizeof(float));
	p.v = aligned_alloc(64, kvf * sizeof(float));
	p.table =
		malloc((size_t)c->batch * (c->ctx / BLOCK) * sizeof(uint32_t));
	q = malloc(nq * sizeof(float));
	o1 = malloc(nq * sizeof(float));
	o2 = malloc(nq * sizeof(float));
	tc = calloc(passes, sizeof(double));
	tp = calloc(passes, sizeof(double));
	ret = EXIT_FAIL;
	if (!p.k || !p.v || !p.table || !q || !o1 || !o2 || !tc || !tp) {
		fprintf(stderr, "vkvbench attn: out of memory\n");
		goto out;
	}
	for (j = 0; j < nq; j++)
		q[j] = rng_float(&seed) / sqrtf((float)ACMP_DIM);
	if (fill(c, cache, &p, &kt, &vt)) {
		fprintf(stderr, "vkvbench attn: cannot back the cache\n");
		goto out;
	}
	/* One untimed pass each: first touches, caches, frequency. */
	pass_contig(c, &kt, &vt, q, o1);
	pass_paged(c, &p, q, o2);
	for (i = 0; i < passes; i++) {
		tc[i] = pass_contig(c, &kt, &vt, q, o1);
		tp[i] = pass_paged(c, &p, q, o2);
	}
	c->maxdiff = 0;
	for (j = 0; j < nq; j++)
		if (fabsf(o1[j] - o2[j]) > c->maxdiff)
			c->maxdiff = fabsf(o1[j] - o2[j]);
	c->contig_ns = median_dbl(tc, passes);
	c->paged_ns = median_dbl(tp, passes);
	c->ratio = c->paged_ns / c->contig_ns;
	c->gbps = (double)kvf * 2 * sizeof(float) / c->contig_ns;
	ret = 0;
	if (c->maxdiff != 0) {
		fprintf(stderr,
			"vkvbench attn: batch %u, context %u: the kernels "
			"disagree by %g\n",
			c->batch, c->ctx, (double)c->maxdiff);
		ret = EXIT_FAIL;
	}
out:
	free(p.k);
	free(p.v);
	free(p.table);
	free(q);
	free(o1);
	free(o2);
	free(tc);
	free(tp);
	vkv_cache_destroy(cache);
	return ret;
}

static void emit(FILE *f, const void *arg)
{
	const struct attn_report *rp = arg;
	char host[256], when[64], a[32], b[32];
	size_t i;

	fprintf(f,
		"Recorded %s on %s; medians of %u passes each, alternating. "
		"One layer, 8 KV heads x dim 128, 4 query heads per KV head, "
		"float32; blocks of %d tokens.\n\n"
		"| batch | context | contiguous (vkv) | block table | ratio "
		"(paged / contiguous) | K/V read, contiguous |\n"
		"|--:|--:|--:|--:|--:|--:|\n",
		md_when(when, sizeof(when)), md_host(host, sizeof(host)),
		rp->passes, BLOCK);
	for (i = 0; i < rp->n; i++) {
		const struct acase *c = &rp->c[i];

		fprintf(f, "| %u | %u | %s | %s | %.3f | %.1f GB/s |\n",
			c->batch, c->ctx, fmt_ns(a, sizeof(a), c->contig_ns),
			fmt_ns(b, sizeof(b), c->paged_ns), c->ratio, c->gbps);
	}
}

static void write_csv(FILE *f, const struct attn_report *rp)
{
	size_t i;

	fprintf(f, "batch,context,contig_ns,paged_ns,ratio,gbps\n");
	for (i = 0; i < rp->n; i++)
		fprintf(f, "%u,%u,%.0f,%.0f,%.4f,%.2f\n", rp->c[i].batch,
			rp->c[i].ctx, rp->c[i].contig_ns, rp->c[i].paged_ns,
			rp->c[i].ratio, rp->c[i].gbps);
}

int cmd_attn(int argc, char **argv)
{
	static const uint32_t batches[] = {1, 8, 32};
	static const uint32_t ctxs[] = {1024, 4096, 16384};
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'q'},
		{"passes", required_argument, NULL, 'p'},
		{"csv", required_argument, NULL, 'c'},
		{"update", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct acase cases[16];
	struct attn_report rp = {.c = cases, .passes = 5};
	const char *csv = NULL, *update = NULL;
	int c, quick = 0, rc = 0;
	size_t bi, ci;
	uint64_t v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = 1;
			break;
		case 'p':
			if (parse_u64(optarg, 1000, &v) || !v) {
				fprintf(stderr,
					"vkvbench attn: bad --passes\n");
				return EXIT_USAGE;
			}
			rp.passes = (uint32_t)v;
			break;
		case 'c':
			csv = optarg;
			break;
		case 'u':
			update = optarg;
			break;
		case 'h':
			printf("usage: vkvbench attn [--quick] [--passes N] "
			       "[--csv FILE] [--update FILE]\n"
			       "Decode attention over a contiguous vkv cache "
			       "vs through a block table.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (quick) {
		cases[rp.n++] = (struct acase){.batch = 2, .ctx = 256};
		rp.passes = 1;
	} else {
		for (bi = 0; bi < 3; bi++)
			for (ci = 0; ci < 3; ci++)
				if ((uint64_t)batches[bi] * ctxs[ci] <=
				    MAX_TOKENS_TOTAL)
					cases[rp.n++] = (struct acase){
						.batch = batches[bi],
						.ctx = ctxs[ci]};
	}
	for (bi = 0; bi < rp.n && !rc; bi++)
		rc = run_case(&cases[bi], rp.passes);
	if (rc)
		return rc;
	emit(stdout, &rp);
	if (csv) {
		FILE *f = fopen(csv, "w");

		if (!f) {
			perror(csv);
			return EXIT_FAIL;
		}
		write_csv(f, &rp);
		if (fclose(f)) {
			perror(csv);
			return EXIT_FAIL;
		}
	}
	if (update)
		rc = md_update(update, "attn", emit, &rp);
	return rc;
}
