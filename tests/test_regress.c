/* SPDX-License-Identifier: MIT */
/*
 * test_regress.c - cases a randomized model test of the API found, kept as
 * they were found: reclaim overshooting the pages a request gathered, a
 * page mapped under two sequences when a swap-in and a step met, a queued
 * swap-in evicting on its own time, a refused step leaving an eviction
 * behind, swap_poll() racing a queued step, and a swap-in evicting the
 * batch of a queued step, and a step naming a swapped-out sequence at
 * length 0 taken as growing nothing.
 *
 * Budgets are a few pages of one token each, so that every step reclaims
 * or evicts. Pages are 4 KiB where the backend allows it (host), else the
 * backend's own size, with rows scaled to keep one token per page.
 */
#include <errno.h>
#include <pthread.h>

#include "harness.h"

/* A race the first fix had to close: many rounds, fewer when sanitized. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ITERS 1000
#else
#define ITERS 5000
#endif

/* The smallest page the backend takes: 4 KiB (host), else 2 MiB. */
static size_t small_page(void)
{
	struct vkv_geometry g = {
		1, 1, 1024, 4, 1, 1, VKV_LAYOUT_PER_LAYER, VKV_DTYPE_F32, {0}};
	struct vkv_config cfg;
	struct vkv_cache *c = NULL;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.page_size = 4096;
	cfg.pool_low = cfg.pool_high = 0;
	if (vkv_cache_create(&g, &cfg, &c))
		return PAGE;
	vkv_cache_destroy(c);
	return 4096;
}

/* Create, or fail the test with the library's reason. */
static struct vkv_cache *cache_of(struct vkv_geometry g, struct vkv_config *cfg)
{
	struct vkv_cache *c = NULL;
	int ret = vkv_cache_create(&g, cfg, &c);

	ck_assert_msg(ret == 0, "create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	return c;
}

static struct vkv_config small_config(size_t page, size_t budget_pages)
{
	struct vkv_config cfg;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.page_size = page;
	cfg.budget = budget_pages * page;
	cfg.pool_low = cfg.pool_high = 0;
	cfg.lookahead_tokens = 0;
	return cfg;
}

/* One layer, K|V interleaved, one token per page of @page bytes. */
static struct vkv_geometry one_token_per_page(size_t page, uint32_t seqs,
					      uint32_t tokens)
{
	struct vkv_geometry g = {
		.layers = 1,
		.kv_heads = 1,
		.head_dim = (uint32_t)(page / 8),
		.elem_size = 4,
		.max_seqs = seqs,
		.max_tokens = tokens,
		.layout = VKV_LAYOUT_TOKEN_MAJOR_KV,
	};
	return g;
}

static uint32_t tier_of(struct vkv_cache *c, int slot)
{
	struct vkv_seq_info si;

	ck_ok(vkv_seq_info(c, (uint32_t)slot, &si));
	return si.tier;
}

static int step1(struct vkv_cache *c, int slot, uint32_t len)
{
	uint32_t s = (uint32_t)slot;

	return vkv_step(c, &s, &len, 1);
}

/*
 * Per-layer layout, 8 segments of one token per page. The last step gets
 * 3 new pages within the budget, then takes 2 whole pages per segment (16)
 * from the closed slot b: 19 pages for a request of 16, more than the
 * array an earlier request of 16 had sized.
 */
START_TEST(test_reclaim_overshoot)
{
	size_t page = small_page();
	struct vkv_geometry g = {
		.layers = 4,
		.kv_heads = 1,
		.head_dim = (uint32_t)(page / 2),
		.elem_size = 2,
		.max_seqs = 4,
		.max_tokens = 4,
		.layout = VKV_LAYOUT_PER_LAYER,
	};
	struct vkv_config cfg = small_config(page, 27);
	struct vkv_cache *c = cache_of(g, &cfg);
	int a = vkv_seq_open(c), b = vkv_seq_open(c), e = vkv_seq_open(c);
	struct vkv_stats st;
	int f;

	ck_ok(step1(c, a, 1));
	ck_ok(step1(c, b, 2));
	ck_ok(vkv_seq_close(c, (uint32_t)b));
	ck_ok(vkv_seq_close(c, (uint32_t)a));
	ck_ok(step1(c, e, 2));
	stamp_rows(c, (uint32_t)e, 5, 0, 2);
	ck_assert_int_eq(check_rows(c, (uint32_t)e, 5, 0, 2), -1);
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_le(st.pages_created, 27);
	ck_assert_uint_eq(st.pages_open, 16);
	/* The surplus went back: every page is open, cached or free. */
	ck_assert_uint_eq(st.pages_open + st.pages_cached + st.pages_free,
			  st.pages_created);
	/* The slot table is whole: a new sequence gets a free slot. */
	f = vkv_seq_open(c);
	ck_assert_int_ge(f, 0);
	ck_assert_int_ne(f, e);
	ck_ok(step1(c, f, 1));
	stamp_rows(c, (uint32_t)f, 6, 0, 1);
	ck_assert_int_eq(check_rows(c, (uint32_t)e, 5, 0, 2), -1);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * A swap-in queued while a step runs short of pages and a look-ahead holds
 * some: both must not gather into one array, or one page ends up under two
 * sequences. Every backed row is stamped by its owner and read back.
 */
START_TEST(test_swap_in_meets_step)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 64);
	struct vkv_config cfg = small_config(page, 96);
	struct vkv_cache *c;
	int slot[4];
	int iters = page == 4096 ? ITERS : 20;

	cfg.pool_low = 8 * page;
	cfg.pool_high = 96 * page;
	cfg.lookahead_tokens = 24;
	cfg.host_budget = 64 * page;
	cfg.swap_path = NULL;
	cfg.evict = VKV_EVICT_LRU;
	c = cache_of(g, &cfg);
	for (int i = 0; i < 4; i++)
		slot[i] = vkv_seq_open(c);
	enum { A, B, X, Y };
	for (int it = 0; it < iters; it++) {
		uint32_t s = (uint32_t)slot[A], len = 5;

		ck_ok(step1(c, slot[X], 16));
		ck_ok(vkv_seq_swap_out(c, (uint32_t)slot[X], VKV_TIER_HOST));
		ck_ok(vkv_seq_swap_wait(c, (uint32_t)slot[X]));
		ck_ok(step1(c, slot[Y], 40));
		ck_ok(step1(c, slot[A], 4));
		ck_ok(step1(c, slot[B], 4));
		/* B must gather pages again below, while A's look-ahead runs. */
		ck_ok(vkv_seq_trim(c, (uint32_t)slot[B]));
		ck_ok(vkv_step_async(c, &s, &len, 1));
		ck_ok(vkv_step_wait(c));
		ck_ok(vkv_seq_swap_in(c, (uint32_t)slot[X]));
		ck_ok(step1(c, slot[B], 24 + (uint32_t)(it % 7)));
		ck_ok(vkv_seq_swap_wait(c, (uint32_t)slot[X]));
		for (int i = 0; i < 4; i++) {
			struct vkv_seq_info si;

			ck_ok(vkv_seq_info(c, (uint32_t)slot[i], &si));
			if (si.tier == VKV_TIER_DEVICE)
				stamp_rows(c, (uint32_t)slot[i],
					   (uint64_t)it * 4 + i, 0, si.backed);
		}
		for (int i = 0; i < 4; i++) {
			struct vkv_seq_info si;
			long bad;

			ck_ok(vkv_seq_info(c, (uint32_t)slot[i], &si));
			if (si.tier != VKV_TIER_DEVICE)
				continue;
			bad = check_rows(c, (uint32_t)slot[i],
					 (uint64_t)it * 4 + i, 0, si.backed);
			ck_assert_msg(bad < 0,
				      "iteration %d: slot %d token %ld holds "
				      "another sequence's row",
				      it, slot[i], bad);
		}
	}
	vkv_cache_destroy(c);
}
END_TEST

/*
 * vkv_seq_swap_in() evicts what it needs within the call: once it returns,
 * no other sequence moves until the scheduler's next call, so an engine
 * thread may go on writing them while the copy runs.
 */
START_TEST(test_swap_in_evicts_in_call)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 64);
	struct vkv_config cfg = small_config(page, 32);
	struct vkv_cache *c;
	int x, y;

	cfg.host_budget = 64 * page;
	cfg.evict = VKV_EVICT_LRU;
	c = cache_of(g, &cfg);
	x = vkv_seq_open(c);
	y = vkv_seq_open(c);
	for (int round = 0; round < 20; round++) {
		struct vkv_stats st0, st1;

		/* x and y of 20 pages each: only one fits in 32. */
		ck_ok(step1(c, x, 20));
		fill_rows(c, (uint32_t)x, 1, 0, 20);
		ck_ok(vkv_seq_swap_out(c, (uint32_t)x, VKV_TIER_HOST));
		ck_ok(vkv_seq_swap_wait(c, (uint32_t)x));
		ck_ok(step1(c, y, 20));
		fill_rows(c, (uint32_t)y, 2, 0, 20);
		ck_ok(vkv_cache_stats(c, &st0));
		ck_ok(vkv_seq_swap_in(c, (uint32_t)x));
		/* y made room for x inside the call, not later. */
		ck_assert_uint_eq(tier_of(c, y), VKV_TIER_HOST);
		ck_ok(vkv_cache_stats(c, &st1));
		ck_assert_uint_eq(st1.evictions, st0.evictions + 1);
		ck_ok(vkv_seq_swap_wait(c, (uint32_t)x));
		ck_assert_uint_eq(tier_of(c, x), VKV_TIER_DEVICE);
		ck_assert_int_eq(verify_rows(c, (uint32_t)x, 1, 0, 20), -1);
		/* y comes back by a step; x goes, by the same rule. */
		ck_ok(step1(c, y, 20));
		ck_assert_int_eq(verify_rows(c, (uint32_t)y, 2, 0, 20), -1);
		ck_assert_uint_eq(tier_of(c, x), VKV_TIER_HOST);
		ck_ok(step1(c, x, 20));
	}
	vkv_cache_destroy(c);

	/* Without a policy, no room is said by the call itself. */
	cfg.evict = VKV_EVICT_NONE;
	c = cache_of(g, &cfg);
	x = vkv_seq_open(c);
	y = vkv_seq_open(c);
	ck_ok(step1(c, x, 20));
	ck_ok(vkv_seq_swap_out(c, (uint32_t)x, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, (uint32_t)x));
	ck_ok(step1(c, y, 20));
	ck_err(vkv_seq_swap_in(c, (uint32_t)x), -ENOMEM);
	ck_assert_int_eq(vkv_seq_swap_poll(c, (uint32_t)x), 0);
	ck_assert_uint_eq(tier_of(c, x), VKV_TIER_HOST);
	ck_assert_uint_eq(tier_of(c, y), VKV_TIER_DEVICE);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * Budget 6 pages, a, b, d of 2 pages each, a host tier of 2 pages and no
 * disk: only one of them can be evicted, so a step that needs 6 fails, and
 * fails having evicted nothing.
 */
START_TEST(test_enomem_evicts_nothing)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 8);
	struct vkv_config cfg = small_config(page, 6);
	struct vkv_cache *c;
	struct vkv_stats st;
	int s[4];
	uint32_t e;

	cfg.host_budget = 2 * page;
	cfg.evict = VKV_EVICT_LRU;
	c = cache_of(g, &cfg);
	for (int i = 0; i < 4; i++)
		s[i] = vkv_seq_open(c);
	for (int i = 0; i < 3; i++) {
		ck_ok(step1(c, s[i], 2));
		fill_rows(c, (uint32_t)s[i], 10 + (uint64_t)i, 0, 2);
	}
	e = (uint32_t)s[3];
	{
		uint32_t len = 6;

		ck_err(vkv_step_fits(c, &e, &len, 1), -ENOMEM);
		ck_err(vkv_step(c, &e, &len, 1), -ENOMEM);
		ck_err(vkv_seq_reserve(c, e, 6), -ENOMEM);
	}
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert_uint_eq(st.seqs_host, 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(tier_of(c, s[i]), VKV_TIER_DEVICE);
		ck_assert_int_eq(
			verify_rows(c, (uint32_t)s[i], 10 + (uint64_t)i, 0, 2),
			-1);
	}
	/* What the host tier takes, the policy still evicts: a, the coldest. */
	{
		uint32_t len = 2;

		ck_ok(vkv_step_fits(c, &e, &len, 1));
		ck_ok(vkv_step(c, &e, &len, 1));
	}
	ck_assert_uint_eq(tier_of(c, s[0]), VKV_TIER_HOST);
	/*
	 * a back in a step: b would have to go, and the host tier is full of
	 * a itself until its copy is back. Refused, with nothing moved.
	 */
	ck_err(step1(c, s[0], 2), -ENOMEM);
	ck_assert_uint_eq(tier_of(c, s[0]), VKV_TIER_HOST);
	ck_assert_uint_eq(tier_of(c, s[1]), VKV_TIER_DEVICE);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * vkv_seq_swap_poll() and _wait() come after a step queued before them, as
 * every call does: the step swaps x back in, so poll sees no swap running
 * and x in the cache.
 */
START_TEST(test_poll_after_async_step)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 256);
	struct vkv_config cfg = small_config(page, 0);
	struct vkv_cache *c;
	uint32_t x, len = 256;
	int rounds = page == 4096 ? 50 : 5;

	cfg.host_budget = 512 * page;
	c = cache_of(g, &cfg);
	x = (uint32_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &x, &len, 1));
	fill_rows(c, x, 3, 0, 256);
	for (int r = 0; r < rounds; r++) {
		struct vkv_seq_info si;

		ck_ok(vkv_seq_swap_out(c, x, VKV_TIER_HOST));
		ck_ok(vkv_step_async(c, &x, &len, 1));
		ck_assert_int_eq(vkv_seq_swap_poll(c, x), 0);
		ck_ok(vkv_seq_info(c, x, &si));
		ck_assert_uint_eq(si.tier, VKV_TIER_DEVICE);
		ck_assert_uint_eq(si.busy, 0);
		ck_ok(vkv_step_wait(c));
		ck_assert_int_eq(verify_rows(c, x, 3, 0, 256), -1);

		ck_ok(vkv_seq_swap_out(c, x, VKV_TIER_HOST));
		ck_ok(vkv_step_async(c, &x, &len, 1));
		ck_ok(vkv_seq_swap_wait(c, x));
		ck_ok(vkv_seq_info(c, x, &si));
		ck_assert_uint_eq(si.tier, VKV_TIER_DEVICE);
		ck_ok(vkv_step_wait(c));
	}
	vkv_cache_destroy(c);
}
END_TEST

/*
 * The batch of a step queued by vkv_step_async() is not idle until the step
 * is collected: the engine computes on it after vkv_step_wait(). A swap-in
 * in that window that needs pages may evict other sequences, never those.
 * Budget 3 pages: b (2 pages) is the queued step's, a (2 pages) waits in
 * the host tier; only b could make room, so the swap-in must fail. With an
 * idle d beside them, d goes and b stays.
 */
START_TEST(test_swap_in_spares_queued_step)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 8);
	struct vkv_config cfg = small_config(page, 3);
	struct vkv_cache *c;
	uint32_t a, b, d, len = 2;

	cfg.host_budget = 8 * page;
	cfg.evict = VKV_EVICT_LRU;
	c = cache_of(g, &cfg);
	a = (uint32_t)vkv_seq_open(c);
	b = (uint32_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &a, &len, 1));
	fill_rows(c, a, 1, 0, 2);
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_ok(vkv_step_async(c, &b, &len, 1));
	ck_err(vkv_seq_swap_in(c, a), -ENOMEM);
	ck_assert_uint_eq(tier_of(c, (int)b), VKV_TIER_DEVICE);
	ck_ok(vkv_step_wait(c));
	ck_assert_uint_eq(tier_of(c, (int)b), VKV_TIER_DEVICE);
	fill_rows(c, b, 2, 0, 2);
	vkv_cache_destroy(c);

	cfg.budget = 4 * page;
	c = cache_of(g, &cfg);
	a = (uint32_t)vkv_seq_open(c);
	b = (uint32_t)vkv_seq_open(c);
	d = (uint32_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &a, &len, 1));
	fill_rows(c, a, 1, 0, 2);
	ck_ok(vkv_seq_swap_out(c, a, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, a));
	len = 1;
	ck_ok(vkv_step(c, &d, &len, 1));
	fill_rows(c, d, 3, 0, 1);
	len = 2;
	ck_ok(vkv_step_async(c, &b, &len, 1));
	ck_ok(vkv_seq_swap_in(c, a));
	ck_assert_uint_eq(tier_of(c, (int)d), VKV_TIER_HOST);
	ck_assert_uint_eq(tier_of(c, (int)b), VKV_TIER_DEVICE);
	ck_ok(vkv_step_wait(c));
	fill_rows(c, b, 2, 0, 2);
	ck_ok(vkv_seq_swap_wait(c, a));
	ck_assert_int_eq(verify_rows(c, a, 1, 0, 2), -1);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * A step that names a swapped-out sequence at length 0 still swaps it in
 * (at its saved length): the batch must be checked as a whole even though
 * no length grows. Budget 3 pages, b (2 pages) in the host tier, a holds
 * all 3: neither vkv_step_fits() nor the step may say it fits.
 */
START_TEST(test_step_len0_swapped_out)
{
	size_t page = small_page();
	struct vkv_geometry g = one_token_per_page(page, 4, 8);
	struct vkv_config cfg = small_config(page, 3);
	struct vkv_cache *c;
	uint32_t a, b, len = 2, slots[2], lens[2];

	cfg.host_budget = 8 * page;
	c = cache_of(g, &cfg);
	a = (uint32_t)vkv_seq_open(c);
	b = (uint32_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &b, &len, 1));
	fill_rows(c, b, 1, 0, 2);
	ck_ok(vkv_seq_swap_out(c, b, VKV_TIER_HOST));
	ck_ok(vkv_seq_swap_wait(c, b));
	len = 3;
	ck_ok(vkv_step(c, &a, &len, 1));
	fill_rows(c, a, 2, 0, 3);
	slots[0] = a;
	slots[1] = b;
	lens[0] = 3;
	lens[1] = 0;
	ck_err(vkv_step_fits(c, slots, lens, 2), -ENOMEM);
	ck_err(vkv_step(c, slots, lens, 2), -ENOMEM);
	ck_assert_uint_eq(tier_of(c, (int)b), VKV_TIER_HOST);
	ck_assert_int_eq(verify_rows(c, a, 2, 0, 3), -1);
	/* Once a is smaller, b comes back at its saved length. */
	ck_ok(vkv_seq_reserve(c, a, 1));
	ck_assert_int_eq(vkv_seq_trim(c, a), 2);
	lens[0] = 1;
	ck_ok(vkv_step_fits(c, slots, lens, 2));
	ck_ok(vkv_step(c, slots, lens, 2));
	ck_assert_uint_eq(tier_of(c, (int)b), VKV_TIER_DEVICE);
	ck_assert_int_eq(verify_rows(c, b, 1, 0, 2), -1);
	vkv_cache_destroy(c);
}
END_TEST

static Suite *regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc;

	tc = suite_case(s, "reclaim", 300);
	tcase_add_test(tc, test_reclaim_overshoot);
	tcase_add_test(tc, test_enomem_evicts_nothing);

	tc = suite_case(s, "swapin", 300);
	tcase_add_test(tc, test_swap_in_meets_step);
	tcase_add_test(tc, test_swap_in_evicts_in_call);
	tcase_add_test(tc, test_swap_in_spares_queued_step);
	tcase_add_test(tc, test_step_len0_swapped_out);

	tcase_add_test(suite_case(s, "async", 300), test_poll_after_async_step);
	return s;
}

int main(void)
{
	core_suite_defaults();
	return run_suite(regress_suite());
}
