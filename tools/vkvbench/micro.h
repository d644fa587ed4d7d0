/* SPDX-License-Identifier: MIT */
/*
 * micro.h - the micro benchmarks behind `vkvbench micro`.
 */
#ifndef VKVBENCH_MICRO_H
#define VKVBENCH_MICRO_H

#include <stddef.h>
#include <stdint.h>

#include "vkv.h"

#define PAGE_TARGET 2.0 /* pool-backed page vs raw mmap, at most */
#define STEP_TARGET 0.01 /* no-crossing step vs attention pass, under */

struct micro_opts {
	uint32_t pages; /* (a): pages per round */
	uint32_t rounds; /* (a): timed rounds */
	uint32_t batch; /* (b): sequences per step */
	uint32_t steps; /* (b): timed steps */
	uint32_t passes; /* (b): timed attention passes */
	size_t page_size; /* 0: the library's default */
	enum vkv_layout layout; /* (b) */
};

struct page_result {
	size_t page_size;
	uint64_t samples;
	double lib_ns, raw_ns; /* medians */
	double lib_p99_ns, raw_p99_ns;
	double ratio;
	uint64_t create_sync; /* creations on the timed path */
	uint64_t map_lat_p50; /* the library's own histogram */
};

struct step_result {
	uint32_t batch, layers, heads, dim;
	uint32_t len_lo, len_hi; /* lengths during the timed steps */
	uint32_t attn_len; /* length during the attention passes */
	uint64_t kv_bytes; /* K/V the attention pass reads */
	uint64_t steps, map_calls; /* map_calls during the timed steps */
	int one_page; /* no step could cross a page */
	double step_ns, attn_ns; /* medians */
	double step_p99_ns;
	double ratio;
};

/* Each returns 0 or an exit code after printing the problem. */
int micro_page(const struct micro_opts *mo, struct page_result *r);
int micro_step(const struct micro_opts *mo, struct step_result *r);

#endif /* VKVBENCH_MICRO_H */
