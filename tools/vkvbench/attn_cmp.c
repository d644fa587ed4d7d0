// SPDX-License-Identifier: MIT
/*
 * attn_cmp.c - the decode-attention inner routine both kernels of
 * `vkvbench attn` share. Written for speed on any x86-64 or arm64 without
 * machine-specific flags: GCC/Clang vector types make the dim loops SIMD
 * (a plain float reduction is not vectorised without -ffast-math), it is
 * built at -O3 (mk/tools.mk), the four query heads of a group share each K and V row
 * load, and the softmax is online over 16-token chunks, so the output is
 * rescaled once per chunk rather than per token.
 *
 * The chunks start at multiples of 16 tokens from the start of a run, so a
 * 16-token block of the paged kernel and the same 16 tokens inside the
 * contiguous kernel's single run go through the same operations in the same
 * order: the two kernels' outputs are bit-identical, which the command
 * checks.
 */
#include <math.h>
#include <string.h>

#include "attn_cmp.h"

#define VW 8
#define CHUNK 16

#if ACMP_GROUP != 4
#error "the inner loops are unrolled for 4 query heads per KV head"
#endif
#define NV (ACMP_DIM / VW)

typedef float vf __attribute__((vector_size(VW * sizeof(float)), aligned(4)));

static inline float hsum(const vf *a)
{
	float s = 0;
	int i;

	for (i = 0; i < VW; i++)
		s += (*a)[i];
	return s;
}

void acmp_init(struct acmp_state *st)
{
	int g;

	memset(st, 0, sizeof(*st));
	for (g = 0; g < ACMP_GROUP; g++)
		st->m[g] = -INFINITY;
}

void acmp_run(struct acmp_state *st, const float *q, const struct acmp_run *r)
{
	const vf *qv = (const vf *)q;
	float sc[ACMP_GROUP][CHUNK];
	uint32_t t0, t, n;
	int g, d;

	for (t0 = 0; t0 < r->n; t0 += CHUNK) {
		n = r->n - t0 < CHUNK ? r->n - t0 : CHUNK;
		for (t = 0; t < n; t++) {
			const vf *k = (const vf *)(r->k + (size_t)(t0 + t) *
								  r->stride);
			/* Four named accumulators stay in registers. */
			vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};

			for (d = 0; d < NV; d++) {
				vf kv = k[d];

				a0 += qv[d] * kv;
				a1 += qv[NV + d] * kv;
				a2 += qv[2 * NV + d] * kv;
				a3 += qv[3 * NV + d] * kv;
			}
			sc[0][t] = hsum(&a0);
			sc[1][t] = hsum(&a1);
			sc[2][t] = hsum(&a2);
			sc[3][t] = hsum(&a3);
		}
		for (g = 0; g < ACMP_GROUP; g++) {
			float mx = st->m[g], scale;
			vf *o = (vf *)st->o[g];

			for (t = 0; t < n; t++)
				if (sc[g][t] > mx)
					mx = sc[g][t];
			scale = expf(st->m[g] - mx); /* 0 on the first chunk */
			st->l[g] *= scale;
			for (d = 0; d < NV; d++)
				o[d] *= scale;
			for (t = 0; t < n; t++) {
				sc[g][t] = expf(sc[g][t] - mx);
				st->l[g] += sc[g][t];
			}
			st->m[g] = mx;
		}
		/*
		 * Dims outer, tokens inner: the four outputs of a dim slice
		 * stay in registers across the chunk and are stored once.
		 */
		for (d = 0; d < NV; d++) {
			vf *o = (vf *)st->o[0];
			vf o0 = o[d], o1 = o[NV + d], o2 = o[2 * NV + d];
			vf o3 = o[3 * NV + d];

			for (t = 0; t < n; t++) {
				vf vv = ((const vf *)(r->v +
						      (size_t)(t0 + t) *
							      r->stride))[d];

				o0 += sc[0][t] * vv;
				o1 += sc[1][t] * vv;
				o2 += sc[2][t] * vv;
				o3 += sc[3][t] * vv;
			}
			o[d] = o0;
			o[NV + d] = o1;
			o[2 * NV + d] = o2;
			o[3 * NV + d] = o3;
		}
	}
}

void acmp_finish(const struct acmp_state *st, float *out)
{
	int g, d;

	for (g = 0; g < ACMP_GROUP; g++)
		for (d = 0; d < ACMP_DIM; d++)
			out[g * ACMP_DIM + d] =
				st->l[g] > 0 ? st->o[g][d] / st->l[g] : 0;
}
