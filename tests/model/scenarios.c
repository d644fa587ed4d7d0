/* SPDX-License-Identifier: MIT */
/*
 * scenarios.c - what random runs of the model found, reduced to a few calls
 * that run every time.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>

#include "model.h"

/*
 * A step must wait for the swaps of its own sequences before it judges
 * room: one entry on its way out holds pages that the step's sum (and the
 * header's "fits") does not count. Here a is in the host tier and needs two
 * pages back, b (length 0, two pages inherited) is being swapped out, d
 * holds one: a:2 + b:1 + d:1 is the budget of 4, so the step fits. Swapping
 * a in before b's swap has finished found one page and gave -ENOMEM.
 */
static int step_waits_for_own_swaps(void)
{
	struct vkv_geometry g = {
		.layers = 1,
		.kv_heads = 1,
		.head_dim = 2048,
		.elem_size = 1,
		.max_seqs = 4,
		.max_tokens = 8,
		.layout = VKV_LAYOUT_TOKEN_MAJOR_KV, /* one token per page */
	};
	struct vkv_config cfg;
	struct vkv_cache *c;
	uint32_t slots[2], lens[2] = {2, 1};
	int a, b, d, ret;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.page_size = 4096;
	cfg.budget = 4 * 4096;
	cfg.pool_low = cfg.pool_high = 0;
	cfg.lookahead_tokens = 0;
	cfg.host_budget = 8 * 4096;
	cfg.swap_path = NULL;
	cfg.evict = VKV_EVICT_NONE;
	cfg.quantize = 0;
	ck_assert_int_eq(vkv_cache_create(&g, &cfg, &c), 0);
	a = vkv_seq_open(c);
	b = vkv_seq_open(c);
	d = vkv_seq_open(c);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	ck_assert_int_ge(d, 0);
	ck_assert_int_eq(vkv_seq_reserve(c, (uint32_t)a, 2), 0);
	ck_assert_int_eq(vkv_seq_swap_out(c, (uint32_t)a, VKV_TIER_HOST), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, (uint32_t)a), 0);
	ck_assert_int_eq(vkv_seq_reserve(c, (uint32_t)b, 2), 0);
	ck_assert_int_eq(vkv_seq_reserve(c, (uint32_t)b, 0), 0);
	ck_assert_int_eq(vkv_seq_reserve(c, (uint32_t)d, 1), 0);
	ck_assert_int_eq(vkv_seq_swap_out(c, (uint32_t)b, VKV_TIER_HOST), 0);
	slots[0] = (uint32_t)a;
	slots[1] = (uint32_t)b;
	ret = vkv_step(c, slots, lens, 2);
	vkv_cache_destroy(c);
	return ret;
}

void m_scenarios(void)
{
	/* The swap may win the race now and then: try a few times. */
	for (int i = 0; i < 20; i++) {
		int ret = step_waits_for_own_swaps();

		ck_assert_msg(ret == 0,
			      "a step naming a sequence being swapped out: "
			      "%d (%s) though it fits (try %d)",
			      ret, vkv_strerror(ret), i);
	}
}
