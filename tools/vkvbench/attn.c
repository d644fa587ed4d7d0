// SPDX-License-Identifier: MIT
/*
 * attn.c - decode attention written the way a plain CPU kernel would be:
 * straightforward loops the compiler can vectorise, no tricks, no
 * pessimisation. Built with -O2 whatever OPT says (see mk/tools.mk), so the
 * step-cost ratio measures the library and not the build flags.
 */
#include <math.h>
#include <stddef.h>

#include "attn.h"

static inline const float *row(const struct vkv_tensor *t, uint32_t slot,
			       uint32_t tok, uint32_t head)
{
	return (const float *)((const char *)t->base +
			       (size_t)slot * t->slot_stride +
			       (size_t)tok * t->token_stride +
			       (size_t)head * t->head_stride);
}

static void attend_head(const struct attn_batch *b, uint32_t s, uint32_t l,
			uint32_t h, float *o)
{
	const float *q =
		b->q + (((size_t)s * b->layers + l) * b->heads + h) * b->dim;
	const struct vkv_tensor *kt = &b->k[l], *vt = &b->v[l];
	uint32_t slot = b->slots[s], len = b->lens[s], t, d;
	float scale = 1.0f / sqrtf((float)b->dim), mx = -INFINITY, sum = 0;
	float *sc = b->scores;

	for (t = 0; t < len; t++) {
		const float *k = row(kt, slot, t, h);
		float dot = 0;

		for (d = 0; d < b->dim; d++)
			dot += q[d] * k[d];
		sc[t] = dot * scale;
		if (sc[t] > mx)
			mx = sc[t];
	}
	for (t = 0; t < len; t++) {
		sc[t] = expf(sc[t] - mx);
		sum += sc[t];
	}
	for (d = 0; d < b->dim; d++)
		o[d] = 0;
	for (t = 0; t < len; t++) {
		const float *v = row(vt, slot, t, h);
		float p = sc[t] / sum;

		for (d = 0; d < b->dim; d++)
			o[d] += p * v[d];
	}
}

double attn_pass(const struct attn_batch *b)
{
	double check = 0;
	uint32_t s, l, h;

	for (s = 0; s < b->n; s++) {
		for (l = 0; l < b->layers; l++) {
			for (h = 0; h < b->heads; h++) {
				float *o = b->out + (((size_t)s * b->layers +
						      l) * b->heads +
						     h) * b->dim;

				attend_head(b, s, l, h, o);
				check += o[0];
			}
		}
	}
	return check;
}
