/* SPDX-License-Identifier: MIT */
/*
 * attn_cmp.h - decode attention over a contiguous cache against the same
 * attention through a block table (vLLM's PagedAttention addressing), on
 * CPU: the kernel side of vAttention's argument.
 *
 * Both kernels share one inner routine for a run of rows that are evenly
 * spaced in memory; they differ only in how they find a run: the
 * contiguous kernel takes the whole sequence as one run, the paged one
 * looks each 16-token block up in the table. Same data, same flags.
 */
#ifndef VKVBENCH_ATTN_CMP_H
#define VKVBENCH_ATTN_CMP_H

#include <stddef.h>
#include <stdint.h>

#define ACMP_DIM 128 /* head dim, Llama-3-8B */
#define ACMP_GROUP 4 /* query heads per KV head (32 / 8) */

/* One KV head's rows: row t at base + t * stride, ACMP_DIM floats. */
struct acmp_run {
	const float *k, *v;
	size_t stride; /* floats between consecutive tokens */
	uint32_t n;
};

/*
 * Online-softmax state of ACMP_GROUP queries against one KV head: the
 * running max, the running sum and the unnormalised output.
 */
struct acmp_state {
	float m[ACMP_GROUP], l[ACMP_GROUP];
	float o[ACMP_GROUP][ACMP_DIM];
};

void acmp_init(struct acmp_state *st);
/* Fold @r's rows into @st for queries @q ([ACMP_GROUP][ACMP_DIM], scaled). */
void acmp_run(struct acmp_state *st, const float *q, const struct acmp_run *r);
/* Normalised output into @out ([ACMP_GROUP][ACMP_DIM]). */
void acmp_finish(const struct acmp_state *st, float *out);

#endif /* VKVBENCH_ATTN_CMP_H */
