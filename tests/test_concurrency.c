/* SPDX-License-Identifier: MIT */
/*
 * test_concurrency.c - statistics read from other threads while the
 * scheduler steps asynchronously and the workers map and create pages.
 * Run it under ThreadSanitizer (make check SANITIZE=thread) to see races.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

#define READERS 3

struct shared {
	struct vkv_cache *c;
	atomic_int stop;
	uint64_t budget_pages;
	atomic_long reads;
};

static void *reader(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_map = 0, last_steps = 0, last_hist = 0;
	long n = 0;

	while (!atomic_load(&sh->stop)) {
		struct vkv_stats st;

		req_cmp(vkv_cache_stats(sh->c, &st), ==, 0);
		/* Counters only grow; gauges stay inside the budget. */
		req_cmp(st.map_calls, >=, last_map);
		req_cmp(st.steps, >=, last_steps);
		req_cmp(st.map_lat.count, >=, last_hist);
		req_cmp(st.pages_created, <=, sh->budget_pages);
		req_cmp(st.mapped_bytes, <=, sh->budget_pages * PAGE);
		last_map = st.map_calls;
		last_steps = st.steps;
		last_hist = st.map_lat.count;
		(void)vkv_hist_percentile(&st.step_lat, 99);
		n++;
	}
	atomic_fetch_add(&sh->reads, n);
	return NULL;
}

static void run(enum vkv_layout layout)
{
	struct vkv_geometry g = test_geom(layout);
	struct vkv_config cfg = test_config(160 * PAGE);
	struct shared sh = {0};
	pthread_t th[READERS];
	uint32_t slots[8], lens[8];
	uint64_t owner[8];
	struct vkv_stats st;

	cfg.lookahead_tokens = 64;
	ck_ok(vkv_cache_create(&g, &cfg, &sh.c));
	sh.budget_pages = 160;
	for (int i = 0; i < READERS; i++)
		req_cmp(pthread_create(&th[i], NULL, reader, &sh), ==, 0);

	for (uint32_t i = 0; i < 8; i++) {
		slots[i] = (uint32_t)vkv_seq_open(sh.c);
		lens[i] = 0;
		owner[i] = i + 1;
	}
	/*
	 * Decode: each step grows everyone by a token, asynchronously, while
	 * "the forward pass" (writing the new rows) runs on this thread.
	 * Sequences that reach the end are checked and restarted.
	 */
	for (int step = 0; step < 3000; step++) {
		uint32_t next[8];

		for (int i = 0; i < 8; i++)
			next[i] = lens[i] + 1;
		ck_ok(vkv_step_async(sh.c, slots, next, 8));
		ck_ok(vkv_step_wait(sh.c));
		for (int i = 0; i < 8; i++) {
			stamp_rows(sh.c, slots[i], owner[i], lens[i], next[i]);
			lens[i] = next[i];
			if (lens[i] == 1000 + 100 * (uint32_t)i) {
				req_cmp(check_rows(sh.c, slots[i], owner[i], 0,
						   lens[i]),
					==, -1);
				ck_ok(vkv_seq_close(sh.c, slots[i]));
				slots[i] = (uint32_t)vkv_seq_open(sh.c);
				lens[i] = 0;
				owner[i] += 8;
			}
		}
	}
	atomic_store(&sh.stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++)
		req_cmp(check_rows(sh.c, slots[i], owner[i], 0, lens[i]), ==,
			-1);
	ck_ok(vkv_cache_stats(sh.c, &st));
	req_cmp(st.steps, ==, 3000);
	req_cmp(st.map_calls, >, 0);
	req_cmp(sh.reads, >, 0);
	vkv_cache_destroy(sh.c);
}

static const enum vkv_layout layouts[] = {
	VKV_LAYOUT_PER_LAYER,
	VKV_LAYOUT_TOKEN_MAJOR,
	VKV_LAYOUT_TOKEN_MAJOR_KV,
};

START_TEST(test_stats_while_async)
{
	run(layouts[_i]);
}
END_TEST

/* Destroy with a step queued and a look-ahead running: no hang, no leak. */
START_TEST(test_destroy_while_async)
{
	for (int round = 0; round < 50; round++) {
		struct vkv_cache *c = test_cache(VKV_LAYOUT_TOKEN_MAJOR_KV, 0);
		uint32_t slot = (uint32_t)vkv_seq_open(c), len = 100;

		ck_ok(vkv_step_async(c, &slot, &len, 1));
		if (round % 2)
			ck_ok(vkv_step_wait(c));
		vkv_cache_destroy(c);
	}
}
END_TEST

static Suite *concurrency_suite(void)
{
	Suite *s = suite_create("concurrency");

	tcase_add_loop_test(suite_case(s, "stats", 600), test_stats_while_async,
			    0, 3);
	tcase_add_test(suite_case(s, "destroy", 600), test_destroy_while_async);
	return s;
}

int main(void)
{
	core_suite_defaults();
	return run_suite(concurrency_suite());
}
