/* SPDX-License-Identifier: MIT */
/*
 * test_api.c - every public function, with good and bad input.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static const enum vkv_layout layouts[] = {
	VKV_LAYOUT_PER_LAYER,
	VKV_LAYOUT_TOKEN_MAJOR,
	VKV_LAYOUT_TOKEN_MAJOR_KV,
};

START_TEST(test_config_defaults)
{
	struct vkv_config cfg;

	unsetenv("VKV_PAGE_SIZE");
	unsetenv("VKV_BUDGET");
	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	ck_assert_uint_eq(cfg.page_size, PAGE);
	ck_assert_uint_eq(cfg.budget, 0);
	ck_assert_uint_le(cfg.pool_low, cfg.pool_high);
	ck_assert_int_eq(cfg.numa_node, -1);
	ck_assert_ptr_null(cfg.log_fn);
	ck_err(vkv_config_init(NULL), -EINVAL);
}
END_TEST

START_TEST(test_config_env)
{
	struct vkv_config cfg;

	setenv("VKV_BUDGET", "3G", 1);
	setenv("VKV_POOL_LOW", "4MiB", 1);
	setenv("VKV_LOOKAHEAD", "64", 1);
	setenv("VKV_NUMA_NODE", "-1", 1);
	setenv("VKV_LOG_LEVEL", "debug", 1);
	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	ck_assert_uint_eq(cfg.budget, 3ul << 30);
	ck_assert_uint_eq(cfg.pool_low, 4 * MIB);
	ck_assert_uint_eq(cfg.lookahead_tokens, 64);
	ck_assert_int_eq(cfg.log_level, VKV_LOG_DEBUG);
	ck_assert_str_eq(vkv_config_error(), "");

	/* A bad variable is named; the good ones still apply. */
	setenv("VKV_BUDGET", "lots", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "VKV_BUDGET"));
	ck_assert_uint_eq(cfg.budget, 0);
	ck_assert_uint_eq(cfg.pool_low, 4 * MIB);
	setenv("VKV_BUDGET", "99999999999999T", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
	unsetenv("VKV_BUDGET");
	setenv("VKV_BACKEND", "tpu", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "VKV_BACKEND"));
	unsetenv("VKV_BACKEND");
	setenv("VKV_DEVICE", "-3", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
	unsetenv("VKV_DEVICE");
	setenv("VKV_NUMA_NODE", "two", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
}
END_TEST

START_TEST(test_config_invalid)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_PER_LAYER);
	struct vkv_cache *c = (struct vkv_cache *)0x1;
	struct vkv_config cfg;

	cfg = test_config(0);
	cfg.page_size = 3 * MIB;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "page_size"));
	ck_assert_ptr_eq(c, (struct vkv_cache *)0x1);

	cfg = test_config(0);
	cfg.page_size = 4096; /* below the cuda granularity, fine on host */
	cfg.pool_low = cfg.pool_high = 0;
	if (vkv_cache_create(&g, &cfg, &c) == 0)
		vkv_cache_destroy(c);

	cfg = test_config(PAGE - 1);
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "budget"));

	cfg = test_config(0);
	cfg.pool_low = cfg.pool_high + PAGE;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	cfg = test_config(0);
	cfg.backend = (enum vkv_backend_kind)7;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	cfg = test_config(0);
	cfg.log_level = 9;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	cfg = test_config(0);
	cfg.numa_node = -2;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
}
END_TEST

START_TEST(test_geometry_invalid)
{
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	struct vkv_geometry g;

	ck_err(vkv_cache_create(NULL, &cfg, &c), -EINVAL);
	g = test_geom(VKV_LAYOUT_PER_LAYER);
	ck_err(vkv_cache_create(&g, &cfg, NULL), -EINVAL);

	static const size_t fields[] = {
		offsetof(struct vkv_geometry, layers),
		offsetof(struct vkv_geometry, kv_heads),
		offsetof(struct vkv_geometry, head_dim),
		offsetof(struct vkv_geometry, elem_size),
		offsetof(struct vkv_geometry, max_seqs),
		offsetof(struct vkv_geometry, max_tokens),
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint32_t zero = 0;

		g = test_geom(VKV_LAYOUT_PER_LAYER);
		memcpy((char *)&g + fields[i], &zero, sizeof(zero));
		ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	}
	g = test_geom((enum vkv_layout)3);
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);

	/* Sizes whose product overflows 64 bits or the address space. */
	g = test_geom(VKV_LAYOUT_PER_LAYER);
	g.kv_heads = g.head_dim = g.elem_size = UINT32_MAX;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	g.max_tokens = UINT32_MAX;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	g = test_geom(VKV_LAYOUT_TOKEN_MAJOR_KV);
	g.max_seqs = 1u << 30;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "address space"));
}
END_TEST

START_TEST(test_null_cache)
{
	uint32_t slot = 0, len = 1;
	struct vkv_tensor t;
	struct vkv_stats st;
	struct vkv_seq_info si;
	struct vkv_geometry g;

	vkv_cache_destroy(NULL);
	ck_err(vkv_cache_geometry(NULL, &g), -EINVAL);
	ck_assert_uint_eq(vkv_cache_page_size(NULL), 0);
	ck_assert_ptr_null(vkv_cache_backend(NULL));
	ck_err(vkv_cache_tensor(NULL, 0, VKV_K, &t), -EINVAL);
	ck_assert_ptr_null(vkv_token_ptr(NULL, 0, VKV_K, 0, 0));
	ck_err(vkv_seq_open(NULL), -EINVAL);
	ck_err(vkv_seq_close(NULL, 0), -EINVAL);
	ck_err(vkv_seq_reserve(NULL, 0, 1), -EINVAL);
	ck_err(vkv_seq_trim(NULL, 0), -EINVAL);
	ck_err(vkv_seq_len(NULL, 0), -EINVAL);
	ck_err(vkv_seq_info(NULL, 0, &si), -EINVAL);
	ck_err(vkv_step(NULL, &slot, &len, 1), -EINVAL);
	ck_err(vkv_step_async(NULL, &slot, &len, 1), -EINVAL);
	ck_err(vkv_step_fits(NULL, &slot, &len, 1), -EINVAL);
	ck_err(vkv_step_wait(NULL), -EINVAL);
	ck_err(vkv_cache_stats(NULL, &st), -EINVAL);
	ck_assert_uint_eq(vkv_hist_percentile(NULL, 50), 0);
}
END_TEST

START_TEST(test_tensor_views)
{
	struct vkv_cache *c = test_cache(layouts[_i], 0);
	struct vkv_geometry g;
	struct vkv_tensor k0, v0, k1;
	size_t row = 8 * 128 * 4;

	ck_ok(vkv_cache_geometry(c, &g));
	ck_assert_int_eq(g.layout, layouts[_i]);
	ck_assert_uint_eq(vkv_cache_page_size(c), PAGE);
	ck_assert_ptr_nonnull(vkv_cache_backend(c));
	ck_ok(vkv_cache_tensor(c, 0, VKV_K, &k0));
	ck_ok(vkv_cache_tensor(c, 0, VKV_V, &v0));
	ck_ok(vkv_cache_tensor(c, 1, VKV_K, &k1));
	ck_err(vkv_cache_tensor(c, 2, VKV_K, &k0), -EINVAL);
	ck_err(vkv_cache_tensor(c, 0, (enum vkv_kv)2, &k0), -EINVAL);
	ck_err(vkv_cache_tensor(c, 0, VKV_K, NULL), -EINVAL);
	ck_assert_uint_eq(k0.head_stride, 128 * 4);
	ck_assert_uint_eq(k0.elem_size, 4);
	ck_assert_uint_eq(k0.slot_stride % PAGE, 0);
	ck_assert_uint_ge(k0.slot_stride, 2048 * k0.token_stride);
	switch (layouts[_i]) {
	case VKV_LAYOUT_PER_LAYER:
		ck_assert_uint_eq(k0.token_stride, row);
		ck_assert_uint_ge((uintptr_t)v0.base - (uintptr_t)k0.base,
				  8 * k0.slot_stride);
		break;
	case VKV_LAYOUT_TOKEN_MAJOR:
		ck_assert_uint_eq(k0.token_stride, 2 * row);
		ck_assert_uint_eq((uintptr_t)k1.base - (uintptr_t)k0.base, row);
		break;
	case VKV_LAYOUT_TOKEN_MAJOR_KV:
		ck_assert_uint_eq(k0.token_stride, 4 * row);
		ck_assert_uint_eq((uintptr_t)k1.base - (uintptr_t)k0.base, row);
		ck_assert_uint_eq((uintptr_t)v0.base - (uintptr_t)k0.base,
				  2 * row);
		break;
	}
	ck_assert_ptr_eq(vkv_token_ptr(c, 1, VKV_K, 3, 5),
			 (char *)k1.base + 3 * k1.slot_stride +
				 5 * k1.token_stride);
	ck_assert_ptr_null(vkv_token_ptr(c, 1, VKV_K, 8, 5));
	ck_assert_ptr_null(vkv_token_ptr(c, 1, VKV_K, 0, 2048));
	vkv_cache_destroy(c);
}
END_TEST

START_TEST(test_seq_lifecycle)
{
	struct vkv_cache *c = test_cache(layouts[_i], 0);
	struct vkv_seq_info si;
	int slots[8];

	for (int i = 0; i < 8; i++) {
		slots[i] = vkv_seq_open(c);
		ck_assert_int_eq(slots[i], i);
	}
	ck_err(vkv_seq_open(c), -ENOSPC);
	ck_ok(vkv_seq_reserve(c, 3, 700));
	ck_assert_int_eq(vkv_seq_len(c, 3), 700);
	ck_ok(vkv_seq_info(c, 3, &si));
	ck_assert_uint_eq(si.open, 1);
	ck_assert_uint_eq(si.len, 700);
	ck_assert_uint_ge(si.backed, 700);
	ck_assert_uint_ge(si.pages, 1);
	ck_err(vkv_seq_info(c, 8, &si), -EINVAL);
	ck_err(vkv_seq_info(c, 0, NULL), -EINVAL);

	ck_err(vkv_seq_reserve(c, 3, 2049), -E2BIG);
	ck_err(vkv_seq_reserve(c, 8, 1), -EINVAL);
	ck_err(vkv_seq_reserve(c, UINT32_MAX, 1), -EINVAL);
	ck_ok(vkv_seq_reserve(c, 3, 2048));
	ck_ok(vkv_seq_close(c, 3));
	ck_err(vkv_seq_close(c, 3), -EBADF);
	ck_err(vkv_seq_close(c, 8), -EINVAL);
	ck_err(vkv_seq_reserve(c, 3, 1), -EBADF);
	ck_err(vkv_seq_len(c, 3), -EBADF);
	ck_err(vkv_seq_len(c, 9), -EINVAL);
	ck_err(vkv_seq_trim(c, 3), -EBADF);
	ck_err(vkv_seq_trim(c, 99), -EINVAL);

	/* A closed slot keeps its pages and is the one reopened. */
	ck_ok(vkv_seq_info(c, 3, &si));
	ck_assert_uint_eq(si.open, 0);
	ck_assert_uint_gt(si.pages, 0);
	ck_assert_int_eq(vkv_seq_open(c), 3);
	ck_assert_int_eq(vkv_seq_len(c, 3), 0);
	ck_ok(vkv_seq_info(c, 3, &si));
	ck_assert_uint_ge(si.backed, 2048);

	/* Trim gives back what is beyond the length. */
	ck_ok(vkv_seq_reserve(c, 3, 10));
	ck_assert_int_gt(vkv_seq_trim(c, 3), 0);
	ck_ok(vkv_seq_info(c, 3, &si));
	ck_assert_uint_eq(si.pages, 1);
	ck_assert_int_eq(vkv_seq_trim(c, 3), 0);
	vkv_cache_destroy(c);
}
END_TEST

START_TEST(test_step_args)
{
	struct vkv_cache *c = test_cache(layouts[_i], 0);
	uint32_t slots[9], lens[9] = {1, 2, 3};

	for (int i = 0; i < 3; i++)
		slots[i] = (uint32_t)vkv_seq_open(c);
	/* Past the three: each slot again, for batches longer than 8. */
	for (int i = 3; i < 9; i++) {
		slots[i] = slots[i % 3];
		lens[i] = lens[i % 3];
	}
	ck_ok(vkv_step(c, slots, lens, 3));
	ck_ok(vkv_step(c, NULL, NULL, 0));
	ck_err(vkv_step(c, NULL, lens, 3), -EINVAL);
	ck_err(vkv_step(c, slots, NULL, 3), -EINVAL);
	ck_err(vkv_step(c, slots, lens, 9), -EINVAL); /* slots[3] repeats */

	/* A bad entry anywhere: nothing in the batch changes. */
	lens[0] = 100;
	slots[2] = 7;
	ck_err(vkv_step(c, slots, lens, 3), -EBADF);
	ck_assert_int_eq(vkv_seq_len(c, slots[0]), 1);
	slots[2] = 99;
	ck_err(vkv_step(c, slots, lens, 3), -EINVAL);
	slots[2] = slots[0];
	ck_err(vkv_step(c, slots, lens, 3), -EINVAL); /* twice in a batch */
	slots[2] = 2;
	lens[2] = 5000;
	ck_err(vkv_step(c, slots, lens, 3), -E2BIG);
	ck_assert_int_eq(vkv_seq_len(c, slots[0]), 1);
	lens[2] = 3;

	/* The question takes the step's arguments and refuses them alike. */
	ck_ok(vkv_step_fits(c, NULL, NULL, 0));
	ck_err(vkv_step_fits(c, NULL, lens, 3), -EINVAL);
	ck_err(vkv_step_fits(c, slots, NULL, 3), -EINVAL);
	ck_err(vkv_step_fits(c, slots, lens, 9), -EINVAL);
	slots[2] = 7;
	ck_err(vkv_step_fits(c, slots, lens, 3), -EBADF);
	slots[2] = 99;
	ck_err(vkv_step_fits(c, slots, lens, 3), -EINVAL);
	slots[2] = slots[0];
	ck_err(vkv_step_fits(c, slots, lens, 3), -EINVAL);
	slots[2] = 2;
	lens[2] = 5000;
	ck_err(vkv_step_fits(c, slots, lens, 3), -E2BIG);
	lens[2] = 3;
	ck_ok(vkv_step_fits(c, slots, lens, 3));

	/* Async: errors of the arguments come back at once. */
	ck_err(vkv_step_wait(c), -EINVAL);
	slots[2] = 7;
	ck_err(vkv_step_async(c, slots, lens, 3), -EBADF);
	slots[2] = 2;
	ck_ok(vkv_step_async(c, slots, lens, 3));
	ck_err(vkv_step_async(c, slots, lens, 3), -EBUSY);
	ck_err(vkv_step(c, slots, lens, 3), -EBUSY);
	/* Uncollected, the step may still fail: no answer to give. */
	ck_err(vkv_step_fits(c, slots, lens, 3), -EBUSY);
	ck_ok(vkv_step_wait(c));
	ck_ok(vkv_step_fits(c, slots, lens, 3));
	ck_err(vkv_step_wait(c), -EINVAL);
	ck_assert_int_eq(vkv_seq_len(c, slots[0]), 100);
	vkv_cache_destroy(c);
}
END_TEST

/* Budget exhausted: -ENOMEM, counted, and every stored byte still there. */
START_TEST(test_budget_enomem)
{
	/*
	 * 24 pages. Every layout needs the same bytes here: 1500 tokens take
	 * 12 pages, 2048 take 16, 1000 take 8 (4 KiB rows, 2 layers, K and V).
	 */
	struct vkv_cache *c = test_cache(layouts[_i], 24 * PAGE);
	struct vkv_stats st;
	uint32_t slots[3], lens[3];
	int a = vkv_seq_open(c), b = vkv_seq_open(c), d = vkv_seq_open(c);

	ck_ok(vkv_seq_reserve(c, a, 1500));
	stamp_rows(c, a, 1, 0, 1500);
	ck_err(vkv_seq_reserve(c, b, 2048), -ENOMEM);
	ck_assert_int_eq(vkv_seq_len(c, b), 0);
	ck_ok(vkv_seq_reserve(c, b, 1000));
	stamp_rows(c, b, 2, 0, 1000);

	/* All or nothing: d cannot fit, so nobody's length moves. */
	slots[0] = (uint32_t)b;
	lens[0] = 1200;
	slots[1] = (uint32_t)a;
	lens[1] = 1600;
	slots[2] = (uint32_t)d;
	lens[2] = 1000;
	ck_ok(vkv_cache_stats(c, &st));
	ck_err(vkv_step_fits(c, slots, lens, 3), -ENOMEM);
	ck_ok(vkv_step_fits(c, slots, lens, 1)); /* b alone: 10-12 + 12 */
	{
		/* Asking is free: no page moved, no refusal counted. */
		struct vkv_stats st2;

		ck_ok(vkv_cache_stats(c, &st2));
		ck_assert_uint_eq(st2.enomem, st.enomem);
		ck_assert_uint_eq(st2.map_calls, st.map_calls);
		ck_assert_uint_eq(st2.unmap_calls, st.unmap_calls);
		ck_assert_uint_eq(st2.steps, st.steps);
	}
	ck_err(vkv_step(c, slots, lens, 3), -ENOMEM);
	ck_assert_int_eq(vkv_seq_len(c, a), 1500);
	ck_assert_int_eq(vkv_seq_len(c, b), 1000);
	ck_assert_int_eq(vkv_seq_len(c, d), 0);
	ck_assert_int_eq(check_rows(c, a, 1, 0, 1500), -1);
	ck_assert_int_eq(check_rows(c, b, 2, 0, 1000), -1);
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_ge(st.enomem, 2);
	ck_assert_uint_le(st.pages_created, 24);
	ck_assert_uint_eq(st.budget_pages, 24);

	/* Closing a makes its pages reclaimable: now b fits whole. */
	ck_ok(vkv_seq_close(c, a));
	ck_ok(vkv_seq_reserve(c, b, 2048));
	ck_assert_int_eq(check_rows(c, b, 2, 0, 1000), -1);
	stamp_rows(c, b, 2, 1000, 2048);
	ck_assert_int_eq(check_rows(c, b, 2, 0, 2048), -1);
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_gt(st.reclaimed_pages, 0);
	ck_assert_uint_le(st.pages_created, 24);
	vkv_cache_destroy(c);
}
END_TEST

static int log_calls;
static void count_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	ck_assert_ptr_nonnull(msg);
	log_calls++;
}

START_TEST(test_log_and_strerror)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c;

	cfg.log_fn = count_log;
	cfg.log_level = VKV_LOG_DEBUG;
	log_calls = 0;
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	ck_assert_int_gt(log_calls, 0);
	vkv_cache_destroy(c);

	int errs[] = {0,      -EINVAL, -ENOMEM, -ENOSPC, -E2BIG,     -EBADF,
		      -EBUSY, -ENODEV, -EIO,	-EPROTO, -EOVERFLOW, -EPERM};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		ck_assert_uint_gt(strlen(vkv_strerror(errs[i])), 3);
	ck_assert_str_eq(vkv_strerror(5), "not an error code");
	/* Its negation overflows: no errno, and no undefined behaviour. */
	ck_assert_str_eq(vkv_strerror(INT_MIN), "not an error code");
}
END_TEST

START_TEST(test_stats_and_hist)
{
	struct vkv_cache *c = test_cache(VKV_LAYOUT_TOKEN_MAJOR, 0);
	struct vkv_stats st;
	int s = vkv_seq_open(c);
	uint32_t slot = (uint32_t)s, len = 600;

	ck_ok(vkv_step(c, &slot, &len, 1));
	ck_ok(vkv_cache_stats(c, &st));
	ck_err(vkv_cache_stats(c, NULL), -EINVAL);
	ck_assert_uint_eq(st.page_size, PAGE);
	ck_assert_uint_eq(st.seqs_open, 1);
	/* 600 tokens x 2 tensors x 2 layers x 4 KiB rows */
	ck_assert_uint_eq(st.live_bytes, 600ull * 2 * 2 * 4096);
	ck_assert_uint_eq(st.pages_open, 2 * 3);
	ck_assert_uint_eq(st.mapped_bytes, 6 * PAGE);
	ck_assert_uint_eq(st.map_calls, 6);
	ck_assert_uint_eq(st.steps, 1);
	ck_assert_uint_eq(st.map_lat.count, 6);
	ck_assert_uint_eq(st.step_lat.count, 1);
	ck_assert_uint_gt(vkv_hist_percentile(&st.map_lat, 50), 0);
	ck_assert_uint_le(vkv_hist_percentile(&st.map_lat, 50),
			  vkv_hist_percentile(&st.map_lat, 100));
	ck_assert_uint_le(vkv_hist_percentile(&st.map_lat, 100),
			  st.map_lat.max_ns);
	ck_assert_uint_eq(vkv_hist_percentile(&st.map_lat, 0), 0);
	ck_assert_uint_eq(vkv_hist_percentile(&st.map_lat, 101), 0);
	/* >=: the refill worker may have a creation in flight. */
	ck_assert_uint_ge(st.pages_created,
			  st.pages_free + st.pages_open + st.pages_cached);
	ck_ok(vkv_seq_close(c, slot));
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_eq(st.live_bytes, 0);
	ck_assert_uint_eq(st.pages_open, 0);
	ck_assert_uint_eq(st.pages_cached, 6);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * A value that parses but is out of range is refused by vkv_config_init()
 * itself, named, and left at its default; the other variables still apply.
 */
START_TEST(test_config_env_range)
{
	static const struct {
		const char *name, *val;
	} bad[] = {
		{"VKV_PAGE_SIZE", "3M"},	 {"VKV_PAGE_SIZE", "0"},
		{"VKV_SWAP_QDEPTH", "0"},	 {"VKV_SWAP_QDEPTH", "5000"},
		{"VKV_LOOKAHEAD", "4294967296"},
	};
	struct vkv_config cfg, def;

	unsetenv("VKV_PAGE_SIZE");
	unsetenv("VKV_SWAP_QDEPTH");
	unsetenv("VKV_LOOKAHEAD");
	unsetenv("VKV_POOL_LOW");
	ck_ok(vkv_config_init(&def));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("VKV_POOL_LOW", "4MiB", 1);
		setenv(bad[i].name, bad[i].val, 1);
		ck_err(vkv_config_init(&cfg), -EINVAL);
		ck_assert_msg(strstr(vkv_config_error(), bad[i].name),
			      "%s=%s: \"%s\"", bad[i].name, bad[i].val,
			      vkv_config_error());
		ck_assert_uint_eq(cfg.page_size, def.page_size);
		ck_assert_uint_eq(cfg.swap_qdepth, def.swap_qdepth);
		ck_assert_uint_eq(cfg.lookahead_tokens, def.lookahead_tokens);
		ck_assert_uint_eq(cfg.pool_low, 4 * MIB);
		unsetenv(bad[i].name);
	}
	/* The ends of the ranges are fine. */
	setenv("VKV_SWAP_QDEPTH", "4096", 1);
	setenv("VKV_LOOKAHEAD", "4294967295", 1);
	setenv("VKV_PAGE_SIZE", "4K", 1);
	ck_ok(vkv_config_init(&cfg));
	ck_assert_uint_eq(cfg.swap_qdepth, 4096);
	ck_assert_uint_eq(cfg.lookahead_tokens, 4294967295u);
	ck_assert_uint_eq(cfg.page_size, 4096);
	unsetenv("VKV_SWAP_QDEPTH");
	unsetenv("VKV_LOOKAHEAD");
	unsetenv("VKV_PAGE_SIZE");
	unsetenv("VKV_POOL_LOW");
}
END_TEST

/* The element type: checked against elem_size, or giving it. */
START_TEST(test_geometry_dtype)
{
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	struct vkv_geometry g, out;

	g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	ck_assert_int_eq(g.dtype, VKV_DTYPE_UNSPECIFIED);
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	ck_ok(vkv_cache_geometry(c, &out));
	ck_assert_int_eq(memcmp(&g, &out, sizeof(g)), 0);
	vkv_cache_destroy(c);

	/* elem_size 0: from the type, and reported back. */
	g.dtype = VKV_DTYPE_F32;
	g.elem_size = 0;
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	ck_ok(vkv_cache_geometry(c, &out));
	ck_assert_uint_eq(out.elem_size, 4);
	ck_assert_int_eq(out.dtype, VKV_DTYPE_F32);
	vkv_cache_destroy(c);
	g.dtype = VKV_DTYPE_F8_E4M3;
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	ck_ok(vkv_cache_geometry(c, &out));
	ck_assert_uint_eq(out.elem_size, 1);
	vkv_cache_destroy(c);

	/* A size that contradicts the type; a type that does not exist. */
	c = NULL;
	g.dtype = VKV_DTYPE_BF16;
	g.elem_size = 4;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "elem_size"));
	g.dtype = VKV_DTYPE_F32;
	g.elem_size = 2;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	g.dtype = (enum vkv_dtype)99;
	g.elem_size = 2;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "dtype"));
	/* Unspecified needs a size. */
	g.dtype = VKV_DTYPE_UNSPECIFIED;
	g.elem_size = 0;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	ck_assert_ptr_null(c);
}
END_TEST

/* Every size limit of the geometry is -EOVERFLOW, whichever field. */
START_TEST(test_geometry_limits)
{
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	struct vkv_geometry g;

	g = test_geom(VKV_LAYOUT_PER_LAYER);
	g.max_seqs = (1u << 30) + 1;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "max_seqs"));
	g.max_seqs = UINT32_MAX;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	g = test_geom(VKV_LAYOUT_PER_LAYER);
	g.layers = (1u << 20) + 1;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	g = test_geom(VKV_LAYOUT_PER_LAYER);
	g.head_dim = UINT32_MAX;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EOVERFLOW);
	ck_assert_ptr_null(c);
}
END_TEST

/*
 * The swap file's own errors come back as they are, with the path in the
 * message: a missing directory is -ENOENT, a directory -EISDIR.
 */
START_TEST(test_create_swap_path_errors)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	const char *tmp = getenv("TMPDIR");
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/vkv-test-dir-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	cfg.swap_path = "/nonexistent-vkv-dir/swap";
	ck_err(vkv_cache_create(&g, &cfg, &c), -ENOENT);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "nonexistent"));
	cfg.swap_path = dir;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EISDIR);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), dir));
	ck_assert_ptr_null(c);
	rmdir(dir);
}
END_TEST

/*
 * Entries are checked in order, also in a batch longer than max_seqs: its
 * first bad entry decides, not its length.
 */
START_TEST(test_step_order_long_batch)
{
	struct vkv_cache *c = test_cache(VKV_LAYOUT_TOKEN_MAJOR, 0);
	uint32_t slots[12], lens[12];
	int a = vkv_seq_open(c), b = vkv_seq_open(c);

	ck_ok(a);
	ck_ok(b);
	for (int i = 0; i < 12; i++) {
		slots[i] = (uint32_t)(i % 2 ? b : a);
		lens[i] = 10;
	}
	/* A closed slot first: -EBADF, before the repeat at [2]. */
	slots[0] = 5;
	ck_err(vkv_step(c, slots, lens, 12), -EBADF);
	ck_err(vkv_step_fits(c, slots, lens, 12), -EBADF);
	ck_err(vkv_step_async(c, slots, lens, 12), -EBADF);
	/* An over-long length first: -E2BIG. */
	slots[0] = (uint32_t)a;
	lens[0] = 5000;
	ck_err(vkv_step(c, slots, lens, 12), -E2BIG);
	ck_err(vkv_step_fits(c, slots, lens, 12), -E2BIG);
	ck_err(vkv_step_async(c, slots, lens, 12), -E2BIG);
	/* Both fine: the repeat at [2] is the first bad entry. */
	lens[0] = 10;
	ck_err(vkv_step(c, slots, lens, 12), -EINVAL);
	ck_err(vkv_step_fits(c, slots, lens, 12), -EINVAL);
	ck_err(vkv_step_async(c, slots, lens, 12), -EINVAL);
	/* An out-of-range slot first. */
	slots[0] = 1000;
	ck_err(vkv_step(c, slots, lens, 12), -EINVAL);
	/* Nothing changed, and no step is queued. */
	ck_assert_int_eq(vkv_seq_len(c, (uint32_t)a), 0);
	ck_assert_int_eq(vkv_seq_len(c, (uint32_t)b), 0);
	ck_err(vkv_step_wait(c), -EINVAL);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * Without a budget the device's memory is the cap, and vkv_step_fits()
 * sums against it like the step: a request beyond it is -ENOMEM from
 * both, without a page created; one within it fits and steps.
 */
START_TEST(test_fits_without_budget)
{
	/* 64 KiB tokens; a slot a little larger than the device. */
	struct vkv_geometry g = {
		.layers = 1,
		.kv_heads = 8,
		.head_dim = 1024,
		.elem_size = 4,
		.max_seqs = 2,
		.max_tokens = 1,
		.layout = VKV_LAYOUT_TOKEN_MAJOR_KV,
	};
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	struct vkv_stats st;
	uint32_t slot, len, small = 64;
	uint64_t cap;
	int ret;

	cfg.pool_low = cfg.pool_high = 0;
	/*
	 * The device's size, from a one-token cache, sizes the real one: not
	 * much more address space than the device has (sanitizers reserve
	 * large parts of it).
	 */
	ck_ok(vkv_cache_create(&g, &cfg, &c));
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_gt(st.budget_pages, 0);
	cap = st.budget_pages * vkv_cache_page_size(c);
	vkv_cache_destroy(c);
	c = NULL;
	g.max_tokens = (uint32_t)(cap / 65536 + 1024);
	len = g.max_tokens;
	ret = vkv_cache_create(&g, &cfg, &c);
	ck_assert_msg(ret == 0, "create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	slot = (uint32_t)vkv_seq_open(c);
	ck_err(vkv_step_fits(c, &slot, &len, 1), -ENOMEM);
	ck_err(vkv_step(c, &slot, &len, 1), -ENOMEM);
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_eq(st.pages_open, 0);
	ck_ok(vkv_step_fits(c, &slot, &small, 1));
	ck_ok(vkv_step(c, &slot, &small, 1));
	ck_assert_int_eq(vkv_seq_len(c, slot), 64);
	vkv_cache_destroy(c);
}
END_TEST

START_TEST(test_trim_priority_errors)
{
	struct vkv_cache *c = test_cache(VKV_LAYOUT_PER_LAYER, 0);
	int a = vkv_seq_open(c);

	ck_err(vkv_seq_trim(c, 8), -EINVAL);
	ck_err(vkv_seq_trim(c, UINT32_MAX), -EINVAL);
	ck_err(vkv_seq_trim(c, 3), -EBADF);
	ck_err(vkv_seq_set_priority(c, 8, 1), -EINVAL);
	ck_err(vkv_seq_set_priority(c, 3, 1), -EBADF);
	ck_err(vkv_seq_set_priority(NULL, 0, 1), -EINVAL);
	ck_ok(vkv_seq_set_priority(c, (uint32_t)a, -5));
	ck_ok(vkv_seq_reserve(c, (uint32_t)a, 1000));
	ck_ok(vkv_seq_reserve(c, (uint32_t)a, 10));
	/* 1000 tokens: 2 pages per layer's K or V; 10 keep 1. */
	ck_assert_int_eq(vkv_seq_trim(c, (uint32_t)a), 4 * 1);
	ck_assert_int_eq(vkv_seq_trim(c, (uint32_t)a), 0);
	ck_ok(vkv_seq_close(c, (uint32_t)a));
	ck_err(vkv_seq_trim(c, (uint32_t)a), -EBADF);
	ck_err(vkv_seq_set_priority(c, (uint32_t)a, 0), -EBADF);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * A swap-out to a full host tier: the coldest sequences there move on to
 * the disk tier to make room, and a sequence bigger than the whole host
 * tier goes to disk itself. Everything comes back intact.
 */
START_TEST(test_swap_out_host_spills)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	struct vkv_config cfg = test_config(0);
	struct vkv_cache *c = NULL;
	struct vkv_seq_info si;
	const char *tmp = getenv("TMPDIR");
	uint32_t s[3], len[3] = {1000, 500, 500};
	enum vkv_tier tier[3] = {VKV_TIER_DISK, VKV_TIER_DISK, VKV_TIER_HOST};
	char path[256];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/vkv-test-spill-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	cfg.host_budget = 6 * PAGE;
	cfg.swap_path = path;
	ret = vkv_cache_create(&g, &cfg, &c);
	unlink(path); /* kept open by the tier; nothing left if we fail */
	ck_assert_msg(ret == 0, "create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	/* 8 KiB rows, 256 tokens a page: 8 pages over the two segments for
	 * 1000 tokens, 4 for 500. */
	for (int i = 0; i < 3; i++) {
		s[i] = (uint32_t)vkv_seq_open(c);
		ck_ok(vkv_seq_reserve(c, s[i], len[i]));
		fill_rows(c, s[i], 10 + (uint64_t)i, 0, len[i]);
	}
	/* Bigger than the host tier: to disk. */
	ck_ok(vkv_seq_swap_out(c, s[0], VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, s[0]));
	/* Fits. */
	ck_ok(vkv_seq_swap_out(c, s[1], VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, s[1]));
	ck_ok(vkv_seq_info(c, s[1], &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	/* No room left beside s[1]: s[1] moves on to disk for it. */
	ck_ok(vkv_seq_swap_out(c, s[2], VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, s[2]));
	for (int i = 0; i < 3; i++) {
		ck_ok(vkv_seq_info(c, s[i], &si));
		ck_assert_msg(si.tier == tier[i], "seq %d in tier %u", i,
			      si.tier);
	}
	for (int i = 0; i < 3; i++) {
		ck_ok(vkv_seq_reserve(c, s[i], len[i]));
		ck_assert_int_eq(
			verify_rows(c, s[i], 10 + (uint64_t)i, 0, len[i]), -1);
	}
	vkv_cache_destroy(c);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	int n = sizeof(layouts) / sizeof(layouts[0]);
	TCase *tc;

	tc = suite_case(s, "config", 60);
	tcase_add_test(tc, test_config_defaults);
	tcase_add_test(tc, test_config_env);
	tcase_add_test(tc, test_config_invalid);
	tcase_add_test(tc, test_config_env_range);

	tc = suite_case(s, "create", 60);
	tcase_add_test(tc, test_geometry_invalid);
	tcase_add_test(tc, test_geometry_dtype);
	tcase_add_test(tc, test_geometry_limits);
	tcase_add_test(tc, test_create_swap_path_errors);

	tc = suite_case(s, "null", 60);
	tcase_add_test(tc, test_null_cache);

	tc = suite_case(s, "tensors", 60);
	tcase_add_loop_test(tc, test_tensor_views, 0, n);

	tc = suite_case(s, "seq", 60);
	tcase_add_loop_test(tc, test_seq_lifecycle, 0, n);

	tc = suite_case(s, "step", 60);
	tcase_add_loop_test(tc, test_step_args, 0, n);
	tcase_add_test(tc, test_step_order_long_batch);

	tc = suite_case(s, "budget", 60);
	tcase_add_loop_test(tc, test_budget_enomem, 0, n);

	tc = suite_case(s, "fits", 60);
	tcase_add_test(tc, test_fits_without_budget);

	tc = suite_case(s, "trim", 60);
	tcase_add_test(tc, test_trim_priority_errors);

	tc = suite_case(s, "log", 60);
	tcase_add_test(tc, test_log_and_strerror);

	tc = suite_case(s, "stats", 60);
	tcase_add_test(tc, test_stats_and_hist);

	tc = suite_case(s, "swap", 60);
	tcase_add_test(tc, test_swap_out_host_spills);
	return s;
}

int main(void)
{
	core_suite_defaults();
	return run_suite(api_suite());
}
