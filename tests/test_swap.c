/* SPDX-License-Identifier: MIT */
/*
 * test_swap.c - sequences through the host and disk tiers and back: every
 * byte intact at the same addresses, eviction by policy, corruption caught,
 * io_uring and pread/pwrite alike, quantized tiers within their bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>

#include "harness.h"

static char swap_path[256];

static void make_swap_path(void)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(swap_path, sizeof(swap_path), "%s/vkv-test-swap-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(swap_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static struct vkv_cache *swap_cache(enum vkv_layout layout, size_t budget,
				    size_t host, int disk, int evict,
				    int quantize, int uring)
{
	struct vkv_geometry g = test_geom(layout);
	struct vkv_config cfg = test_config(budget);
	struct vkv_cache *c = NULL;
	int ret;

	cfg.host_budget = host;
	if (disk) {
		make_swap_path();
		cfg.swap_path = swap_path;
	}
	cfg.evict = evict;
	cfg.quantize = quantize;
	cfg.io_uring = uring;
	ret = vkv_cache_create(&g, &cfg, &c);
	ck_assert_msg(ret == 0, "create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	return c;
}

static void done(struct vkv_cache *c)
{
	vkv_cache_destroy(c);
	if (swap_path[0])
		unlink(swap_path);
	swap_path[0] = '\0';
}

static const enum vkv_layout layouts[] = {
	VKV_LAYOUT_PER_LAYER,
	VKV_LAYOUT_TOKEN_MAJOR,
	VKV_LAYOUT_TOKEN_MAJOR_KV,
};

/* Out to each tier and back, explicitly and through a step; twice. */
static void roundtrip(enum vkv_layout layout, int uring)
{
	struct vkv_cache *c =
		swap_cache(layout, 0, 64 * PAGE, 1, VKV_EVICT_NONE, 0, uring);
	struct vkv_seq_info si;
	struct vkv_stats st;
	int a = vkv_seq_open(c), b = vkv_seq_open(c);
	void *pa = vkv_token_ptr(c, 1, VKV_V, a, 700);

	ck_ok(vkv_seq_reserve(c, a, 1300));
	ck_ok(vkv_seq_reserve(c, b, 777));
	fill_rows(c, a, 11, 0, 1300);
	fill_rows(c, b, 12, 0, 777);

	for (int round = 0; round < 2; round++) {
		ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
		ck_ok(vkv_seq_swap_out(c, b, VKV_TIER_DISK));
		ck_ok(vkv_seq_swap_wait(c, a));
		ck_ok(vkv_seq_swap_wait(c, b));
		ck_ok(vkv_seq_info(c, a, &si));
		ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
		ck_assert_uint_eq(si.pages, 0);
		ck_assert_uint_eq(si.len, 1300);
		ck_ok(vkv_seq_info(c, b, &si));
		ck_assert_uint_eq(si.tier, VKV_TIER_DISK);
		ck_ok(vkv_cache_stats(c, &st));
		ck_assert_uint_eq(st.seqs_host, 1);
		ck_assert_uint_eq(st.seqs_disk, 1);
		ck_assert_uint_eq(st.pages_open, 0);
		ck_assert_uint_eq(st.live_bytes, 0);
		ck_assert_uint_gt(st.host_tier_bytes, 0);
		ck_assert_uint_gt(st.disk_tier_bytes, 0);

		/* a explicitly, b by a step that names it. */
		ck_ok(vkv_seq_swap_in(c, a));
		ck_ok(vkv_seq_swap_wait(c, a));
		uint32_t slot = (uint32_t)b, len = 777;

		ck_ok(vkv_step(c, &slot, &len, 1));
		ck_assert_ptr_eq(vkv_token_ptr(c, 1, VKV_V, a, 700), pa);
		ck_assert_int_eq(verify_rows(c, a, 11, 0, 1300), -1);
		ck_assert_int_eq(verify_rows(c, b, 12, 0, 777), -1);
		ck_ok(vkv_seq_info(c, b, &si));
		ck_assert_uint_eq(si.tier, VKV_TIER_DEVICE);
	}
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_eq(st.swap_outs, 4);
	ck_assert_uint_eq(st.swap_ins, 4);
	ck_assert_uint_eq(st.host_tier_bytes, 0);
	ck_assert_uint_eq(st.disk_tier_bytes, 0);
	ck_assert_uint_eq(st.swap_errors, 0);
	done(c);
}

START_TEST(test_roundtrip)
{
	roundtrip(layouts[_i], 1);
}
END_TEST

START_TEST(test_roundtrip_no_uring)
{
	roundtrip(layouts[_i], 0);
}
END_TEST

START_TEST(test_bad_input)
{
	struct vkv_cache *c = swap_cache(VKV_LAYOUT_TOKEN_MAJOR, 0, 16 * PAGE,
					 0, VKV_EVICT_NONE, 0, 1);
	int a = vkv_seq_open(c);

	ck_err(vkv_seq_swap_out(NULL, 0, VKV_TIER_HOST), -EINVAL);
	ck_err(vkv_seq_swap_out(c, 8, VKV_TIER_HOST), -EINVAL);
	ck_err(vkv_seq_swap_out(c, 3, VKV_TIER_HOST), -EBADF);
	ck_err(vkv_seq_swap_out(c, a, VKV_TIER_DEVICE), -EINVAL);
	ck_err(vkv_seq_swap_out(c, a, (enum vkv_tier)9), -EINVAL);
	ck_err(vkv_seq_swap_out(c, a, VKV_TIER_DISK), -ENODEV);
	ck_err(vkv_seq_swap_in(c, a), -EALREADY);
	ck_err(vkv_seq_swap_in(c, 9), -EINVAL);
	ck_err(vkv_seq_swap_wait(c, 9), -EINVAL);
	ck_err(vkv_seq_swap_poll(c, 9), -EINVAL);
	ck_err(vkv_seq_set_priority(c, 9, 1), -EINVAL);
	ck_err(vkv_seq_set_priority(c, 4, 1), -EBADF);
	ck_ok(vkv_seq_reserve(c, a, 300));
	fill_rows(c, a, 5, 0, 300);
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_err(vkv_seq_swap_out(c, a, VKV_TIER_HOST), -EALREADY);
	ck_assert_int_eq(vkv_seq_swap_poll(c, a), 0);
	ck_ok(vkv_seq_trim(c, a));
	/* A reserve brings it back first, then grows it. */
	ck_ok(vkv_seq_reserve(c, a, 400));
	ck_assert_int_eq(verify_rows(c, a, 5, 0, 300), -1);
	/* Closing a swapped sequence frees its host memory. */
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
	ck_ok(vkv_seq_close(c, a));
	struct vkv_stats st;

	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_eq(st.host_tier_bytes, 0);
	ck_assert_uint_eq(st.seqs_host, 0);
	ck_assert_uint_eq(st.live_bytes, 0);
	done(c);

	/* Bad configuration: quantize needs fp16/fp32, qdepth a range. */
	struct vkv_geometry g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	struct vkv_config cfg = test_config(0);

	g.elem_size = 1;
	cfg.quantize = 1;
	cfg.host_budget = 16 * PAGE;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	cfg = test_config(0);
	cfg.swap_qdepth = 0;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	cfg = test_config(0);
	cfg.evict = 7;
	ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
	setenv("VKV_EVICT", "random", 1);
	ck_err(vkv_config_init(&cfg), -EINVAL);
	setenv("VKV_EVICT", "lru", 1);
	setenv("VKV_SWAP_PATH", "/nonexistent-dir/swap", 1);
	ck_ok(vkv_config_init(&cfg));
	ck_assert_int_eq(cfg.evict, VKV_EVICT_LRU);
	g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	ck_assert_int_lt(vkv_cache_create(&g, &cfg, &c), 0);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "disk tier"));
	unsetenv("VKV_EVICT");
	unsetenv("VKV_SWAP_PATH");
}
END_TEST

/*
 * A budget of 32 pages and LRU eviction: a scheduler that keeps admitting
 * never sees -ENOMEM while idle sequences can go to the host tier, and a
 * step that names an evicted sequence brings it back intact.
 */
START_TEST(test_evict_lru)
{
	struct vkv_cache *c = swap_cache(layouts[_i], 32 * PAGE, 256 * PAGE, 0,
					 VKV_EVICT_LRU, 0, 1);
	uint32_t slots[6];
	struct vkv_stats st;

	for (uint32_t i = 0; i < 6; i++) {
		slots[i] = (uint32_t)vkv_seq_open(c);
		ck_ok(vkv_seq_reserve(c, slots[i], 1000)); /* 8 pages each */
		fill_rows(c, slots[i], 100 + i, 0, 1000);
	}
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_ge(st.evictions, 2);
	ck_assert_uint_le(st.pages_created, 32);
	/* The first ones went first (LRU). */
	struct vkv_seq_info si;

	ck_ok(vkv_seq_info(c, slots[0], &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	ck_ok(vkv_seq_info(c, slots[5], &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_DEVICE);
	/* Step each one in turn: each comes back, others go. */
	for (int round = 0; round < 3; round++)
		for (uint32_t i = 0; i < 6; i++) {
			uint32_t len = 1000;

			ck_ok(vkv_step_fits(c, &slots[i], &len, 1));
			ck_ok(vkv_step(c, &slots[i], &len, 1));
			ck_assert_int_eq(
				verify_rows(c, slots[i], 100 + i, 0, 1000), -1);
		}
	/* A batch bigger than the budget cannot be stepped: nothing lost. */
	uint32_t lens[6] = {1000, 1000, 1000, 1000, 1000, 1000};

	ck_err(vkv_step_fits(c, slots, lens, 6), -ENOMEM);
	ck_err(vkv_step(c, slots, lens, 6), -ENOMEM);
	for (uint32_t i = 0; i < 6; i++) {
		uint32_t len = 1000;

		ck_ok(vkv_step(c, &slots[i], &len, 1));
		ck_assert_int_eq(verify_rows(c, slots[i], 100 + i, 0, 1000),
				 -1);
	}
	done(c);
}
END_TEST

START_TEST(test_evict_priority)
{
	struct vkv_cache *c =
		swap_cache(VKV_LAYOUT_TOKEN_MAJOR_KV, 24 * PAGE, 256 * PAGE, 0,
			   VKV_EVICT_PRIORITY, 0, 1);
	int a = vkv_seq_open(c), b = vkv_seq_open(c), d = vkv_seq_open(c);
	struct vkv_seq_info si;

	ck_ok(vkv_seq_reserve(c, a, 1000));
	ck_ok(vkv_seq_reserve(c, b, 1000));
	ck_ok(vkv_seq_set_priority(c, a, 5));
	ck_ok(vkv_seq_set_priority(c, b, -1));
	/* 8 + 8 + 9 pages > 24: b is the more recent, but the lower
	 * priority: it goes. */
	ck_ok(vkv_seq_reserve(c, d, 1100));
	ck_ok(vkv_seq_info(c, b, &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	ck_assert_int_eq(si.priority, -1);
	ck_ok(vkv_seq_info(c, a, &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_DEVICE);
	done(c);
}
END_TEST

/*
 * vkv_step_fits() with swapped-out sequences in the batch (24 pages, no
 * eviction): each counts with its saved length, and the step's swap-ins
 * take from the rest of the batch only what the sum counted as spare:
 * pages beyond both a member's length and what the step backs for it.
 */
START_TEST(test_fits_swapped)
{
	struct vkv_cache *c = swap_cache(layouts[_i], 24 * PAGE, 64 * PAGE, 0,
					 VKV_EVICT_NONE, 0, 1);
	int a = vkv_seq_open(c), b = vkv_seq_open(c), d = vkv_seq_open(c);
	uint32_t slots[2], lens[2];
	struct vkv_seq_info si;
	int ret;

	ck_ok(vkv_seq_reserve(c, b, 1000)); /* 8 pages */
	fill_rows(c, b, 7, 0, 1000);
	ck_ok(vkv_seq_swap_out(c, b, VKV_TIER_HOST));
	/* Until the swap is done the answer could change under it. */
	slots[0] = (uint32_t)b;
	lens[0] = 1000;
	ret = vkv_step_fits(c, slots, lens, 1);
	ck_assert_msg(ret == -EBUSY || ret == 0, "fits: %d", ret);
	ck_ok(vkv_seq_swap_wait(c, b));
	/* a holds 12 pages for 1000 tokens (4 beyond its length), d 8. */
	ck_ok(vkv_seq_reserve(c, a, 1500));
	ck_ok(vkv_seq_reserve(c, a, 1000));
	fill_rows(c, a, 6, 0, 1000);
	ck_ok(vkv_seq_reserve(c, d, 1000));

	/* b back (8) with a's spare 4 reclaimed: 8 + 8 + 8. */
	ck_ok(vkv_step_fits(c, slots, lens, 1));
	/* a in the batch at its length gives up its spare 4 all the same... */
	slots[1] = (uint32_t)a;
	lens[1] = 1000;
	ck_ok(vkv_step_fits(c, slots, lens, 2));
	/* ... but not grown to 1500, for which it holds them: 8 + 12 + 8. */
	lens[1] = 1500;
	ck_err(vkv_step_fits(c, slots, lens, 2), -ENOMEM);
	ck_err(vkv_step(c, slots, lens, 2), -ENOMEM);
	ck_ok(vkv_seq_info(c, (uint32_t)b, &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST); /* nothing was done */
	lens[1] = 1000;
	/*
	 * b grown to 10 pages: 26. The step checks the swap-in and the growth
	 * together, so it does not bring b back only to find that out.
	 */
	lens[0] = 1200;
	ck_err(vkv_step_fits(c, slots, lens, 1), -ENOMEM);
	ck_err(vkv_step(c, slots, lens, 1), -ENOMEM);
	ck_ok(vkv_seq_info(c, (uint32_t)b, &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	ck_err(vkv_seq_reserve(c, (uint32_t)b, 1200), -ENOMEM);
	ck_ok(vkv_seq_info(c, (uint32_t)b, &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	lens[0] = 1000;
	ck_ok(vkv_step_fits(c, slots, lens, 2));
	ck_ok(vkv_step(c, slots, lens, 2));
	ck_assert_int_eq(verify_rows(c, a, 6, 0, 1000), -1);
	ck_assert_int_eq(verify_rows(c, b, 7, 0, 1000), -1);
	done(c);
}
END_TEST

/* Host tier full: the coldest host-tier sequence moves on to disk. */
START_TEST(test_host_to_disk)
{
	struct vkv_cache *c = swap_cache(VKV_LAYOUT_TOKEN_MAJOR, 0, 16 * PAGE,
					 1, VKV_EVICT_NONE, 0, 1);
	int s[3];
	struct vkv_seq_info si;

	for (int i = 0; i < 3; i++) {
		s[i] = vkv_seq_open(c);
		ck_ok(vkv_seq_reserve(c, s[i], 1000)); /* 8 pages */
		fill_rows(c, s[i], 40 + i, 0, 1000);
		ck_ok(vkv_seq_swap_out(c, s[i], VKV_TIER_HOST));
		ck_ok(vkv_seq_swap_wait(c, s[i]));
	}
	ck_ok(vkv_seq_info(c, s[0], &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_DISK);
	ck_ok(vkv_seq_info(c, s[2], &si));
	ck_assert_uint_eq(si.tier, VKV_TIER_HOST);
	for (int i = 0; i < 3; i++) {
		ck_ok(vkv_seq_swap_in(c, s[i]));
		ck_ok(vkv_seq_swap_wait(c, s[i]));
		ck_assert_int_eq(verify_rows(c, s[i], 40 + i, 0, 1000), -1);
	}
	done(c);
}
END_TEST

/* Bytes corrupted in the swap file: -EIO for that sequence only. */
START_TEST(test_disk_corruption)
{
	struct vkv_cache *c = swap_cache(VKV_LAYOUT_TOKEN_MAJOR_KV, 0, 0, 1,
					 VKV_EVICT_NONE, 0, _i);
	int a = vkv_seq_open(c), b = vkv_seq_open(c);
	char junk[512];
	int fd;

	ck_ok(vkv_seq_reserve(c, a, 200));
	ck_ok(vkv_seq_reserve(c, b, 200));
	fill_rows(c, a, 1, 0, 200);
	fill_rows(c, b, 2, 0, 200);
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_DISK));
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_ok(vkv_seq_swap_out(c, b, VKV_TIER_DISK));
	ck_ok(vkv_seq_swap_wait(c, b));
	/* a went first: its first page is the file's first chunk. */
	fd = open(swap_path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	memset(junk, 0xa5, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), 4096), sizeof(junk));
	fsync(fd);
	close(fd);
	ck_ok(vkv_seq_swap_in(c, a));
	ck_err(vkv_seq_swap_wait(c, a), -EIO);
	ck_ok(vkv_seq_swap_in(c, b));
	ck_ok(vkv_seq_swap_wait(c, b));
	ck_assert_int_eq(verify_rows(c, b, 2, 0, 200), -1);
	/* The lost one fails again until closed; closing is clean. */
	uint32_t slot = (uint32_t)a, len = 200;

	ck_err(vkv_step(c, &slot, &len, 1), -EIO);
	ck_ok(vkv_seq_close(c, a));
	struct vkv_stats st;

	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_ge(st.swap_errors, 2);
	ck_assert_uint_eq(st.seqs_disk, 0);
	done(c);
}
END_TEST

/* int8 with per-token, per-head scales: within half a step of each value. */
START_TEST(test_quantized)
{
	struct vkv_cache *c =
		swap_cache(layouts[_i], 0, 64 * PAGE, 1, VKV_EVICT_NONE, 1, 1);
	int a = vkv_seq_open(c);
	const uint32_t len = 600, heads = 8, dim = 128;
	uint64_t rng = 88172645463325252ull;
	double worst = 0;

	ck_ok(vkv_seq_reserve(c, a, len));
	for (uint32_t l = 0; l < 2; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = 0; t < len; t++) {
				float *p = vkv_token_ptr(c, l, kv, a, t);

				for (uint32_t i = 0; i < heads * dim; i++) {
					rng ^= rng << 13;
					rng ^= rng >> 7;
					rng ^= rng << 17;
					p[i] = (float)((int64_t)(rng % 2001) -
						       1000) /
					       (float)(100 + (t % 7) * 50);
				}
			}
	/* Keep a copy to compare. */
	size_t n = (size_t)2 * 2 * len * heads * dim;
	float *copy = malloc(n * sizeof(float)), *q = copy;

	for (uint32_t l = 0; l < 2; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = 0; t < len; t++, q += heads * dim)
				memcpy(q, vkv_token_ptr(c, l, kv, a, t),
				       heads * dim * sizeof(float));
	ck_ok(vkv_seq_swap_out(c, a, _i == 2 ? VKV_TIER_DISK : VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_ok(vkv_seq_swap_in(c, a));
	ck_ok(vkv_seq_swap_wait(c, a));
	q = copy;
	for (uint32_t l = 0; l < 2; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = 0; t < len; t++, q += heads * dim) {
				const float *p = vkv_token_ptr(c, l, kv, a, t);

				for (uint32_t h = 0; h < heads; h++) {
					float amax = 0;

					for (uint32_t d = 0; d < dim; d++)
						amax = fmaxf(
							amax,
							fabsf(q[h * dim + d]));
					for (uint32_t d = 0; d < dim; d++) {
						double e = fabs(p[h * dim + d] -
								q[h * dim + d]);

						req(e <=
						    amax / 127.0 / 2 * 1.001 +
							    1e-7);
						if (amax > 0 &&
						    e / amax > worst)
							worst = e / amax;
					}
				}
			}
	printf("quantized swap, layout %d: worst error %.5f of the head's "
	       "absmax\n",
	       (int)layouts[_i], worst);
	free(copy);
	done(c);
}
END_TEST

static Suite *swap_suite(void)
{
	Suite *s = suite_create("swap");
	TCase *tc;

	tc = suite_case(s, "roundtrip", 300);
	tcase_add_loop_test(tc, test_roundtrip, 0, 3);
	tcase_add_loop_test(tc, test_roundtrip_no_uring, 0, 3);

	tcase_add_test(suite_case(s, "input", 300), test_bad_input);

	tc = suite_case(s, "evict", 300);
	tcase_add_loop_test(tc, test_evict_lru, 0, 3);
	tcase_add_test(tc, test_evict_priority);

	tcase_add_loop_test(suite_case(s, "fits", 300), test_fits_swapped, 0,
			    3);

	tc = suite_case(s, "disk", 300);
	tcase_add_test(tc, test_host_to_disk);
	tcase_add_loop_test(tc, test_disk_corruption, 0, 2);

	tcase_add_loop_test(suite_case(s, "quant", 300), test_quantized, 0, 3);
	return s;
}

int main(void)
{
	core_suite_defaults();
	return run_suite(swap_suite());
}
