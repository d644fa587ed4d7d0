/* SPDX-License-Identifier: MIT */
/*
 * attn.h - a plain CPU decode-attention pass over the cache's K/V, the
 * yardstick the step cost is compared with.
 */
#ifndef VKVBENCH_ATTN_H
#define VKVBENCH_ATTN_H

#include <stdint.h>

#include "vkv.h"

struct attn_batch {
	uint32_t n; /* sequences */
	const uint32_t *slots;
	const uint32_t *lens;
	uint32_t layers, heads, dim; /* float32 elements */
	const struct vkv_tensor *k, *v; /* [layer] */
	const float *q; /* [seq][layer][head][dim] */
	float *out; /* [seq][layer][head][dim] */
	float *scores; /* scratch: max len floats */
};

/*
 * attn_pass - for every sequence, layer and KV head: softmax(q.K^T/sqrt(d))
 * times V, one query per KV head (decode). Returns a checksum of the output
 * so that the work cannot be optimised away.
 */
double attn_pass(const struct attn_batch *b);

#endif /* VKVBENCH_ATTN_H */
