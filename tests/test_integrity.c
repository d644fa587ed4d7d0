/* SPDX-License-Identifier: MIT */
/*
 * test_integrity.c - every byte written through the returned pointers is
 * read back intact across growth, steps, close, reopen and reclamation.
 */
#include <errno.h>

#include "harness.h"

#define NSEQ 8
#define ROUNDS 60

struct seq {
	int open;
	uint32_t len;
	uint64_t owner;
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * A scheduler's life in small: sequences arrive with a prompt, grow by
 * steps of a few tokens, finish and leave; with a tight budget the pool
 * must reclaim closed slots, and a step that cannot fit preempts.
 */
static void run(enum vkv_layout layout, size_t budget_pages, uint64_t seed)
{
	struct vkv_cache *c = test_cache(layout, budget_pages * PAGE);
	struct seq seqs[NSEQ] = {0};
	uint64_t next_owner = 1, rng = seed;
	struct vkv_stats st;

	for (int round = 0; round < ROUNDS; round++) {
		uint32_t slots[NSEQ], lens[NSEQ], n = 0;
		int ret;

		/* Admit a new sequence now and then. */
		if (rng_next(&rng) % 3 == 0) {
			int s = vkv_seq_open(c);

			if (s >= 0) {
				uint32_t prompt = 1 + rng_next(&rng) % 900;

				ck_assert(!seqs[s].open);
				ret = vkv_seq_reserve(c, s, prompt);
				if (ret == -ENOMEM) {
					ck_ok(vkv_seq_close(c, s));
				} else {
					ck_ok(ret);
					seqs[s] = (struct seq){1, prompt,
							       next_owner++};
					fill_rows(c, s, seqs[s].owner, 0,
						  prompt);
				}
			} else {
				ck_err(s, -ENOSPC);
			}
		}
		/* A decode step of 1 to 64 tokens for everyone open. */
		uint32_t grow = 1 + rng_next(&rng) % 64;

		for (uint32_t s = 0; s < NSEQ; s++) {
			if (!seqs[s].open)
				continue;
			slots[n] = s;
			lens[n] = seqs[s].len + grow > 2048
					  ? 2048
					  : seqs[s].len + grow;
			n++;
		}
		ret = vkv_step(c, slots, lens, n);
		if (ret == -ENOMEM) {
			/* Preempt the youngest: check it, then close it. */
			uint32_t victim = slots[0];

			for (uint32_t i = 1; i < n; i++)
				if (seqs[slots[i]].owner > seqs[victim].owner)
					victim = slots[i];
			ck_assert_int_eq(verify_rows(c, victim,
						     seqs[victim].owner, 0,
						     seqs[victim].len),
					 -1);
			ck_ok(vkv_seq_close(c, victim));
			seqs[victim].open = 0;
			continue;
		}
		ck_ok(ret);
		for (uint32_t i = 0; i < n; i++) {
			struct seq *q = &seqs[slots[i]];

			fill_rows(c, slots[i], q->owner, q->len, lens[i]);
			q->len = lens[i];
		}
		/* Finish some: every byte checked before the slot is given back. */
		for (uint32_t s = 0; s < NSEQ; s++) {
			if (!seqs[s].open)
				continue;
			if (seqs[s].len == 2048 || rng_next(&rng) % 6 == 0) {
				ck_assert_int_eq(verify_rows(c, s,
							     seqs[s].owner, 0,
							     seqs[s].len),
						 -1);
				ck_ok(vkv_seq_close(c, s));
				seqs[s].open = 0;
			}
		}
	}
	/* And everyone still open is intact at the end. */
	for (uint32_t s = 0; s < NSEQ; s++)
		if (seqs[s].open)
			ck_assert_int_eq(verify_rows(c, s, seqs[s].owner, 0,
						     seqs[s].len),
					 -1);
	ck_ok(vkv_cache_stats(c, &st));
	ck_assert_uint_ge(st.pages_created,
			  st.pages_free + st.pages_open + st.pages_cached);
	if (budget_pages)
		ck_assert_uint_le(st.pages_created, budget_pages);
	vkv_cache_destroy(c);
}

static const enum vkv_layout layouts[] = {
	VKV_LAYOUT_PER_LAYER,
	VKV_LAYOUT_TOKEN_MAJOR,
	VKV_LAYOUT_TOKEN_MAJOR_KV,
};

START_TEST(test_roomy)
{
	run(layouts[_i], 0, 0x1234 + _i);
}
END_TEST

START_TEST(test_tight_budget)
{
	/* 40 pages: about three full sequences, so reclaim and preempt. */
	run(layouts[_i], 40, 0x9876 + _i);
}
END_TEST

/* Reopen a closed slot: its mapped pages are reused, not re-created. */
START_TEST(test_reopen_reuses_pages)
{
	struct vkv_cache *c = test_cache(layouts[_i], 0);
	struct vkv_stats before, after;
	int s = vkv_seq_open(c);

	ck_ok(vkv_seq_reserve(c, s, 2000));
	fill_rows(c, s, 7, 0, 2000);
	ck_ok(vkv_seq_close(c, s));
	ck_ok(vkv_cache_stats(c, &before));
	ck_assert_int_eq(vkv_seq_open(c), s);
	ck_ok(vkv_seq_reserve(c, s, 2000));
	ck_ok(vkv_cache_stats(c, &after));
	ck_assert_uint_eq(after.map_calls, before.map_calls);
	fill_rows(c, s, 8, 0, 2000);
	ck_assert_int_eq(verify_rows(c, s, 8, 0, 2000), -1);
	vkv_cache_destroy(c);
}
END_TEST

/*
 * Reclaim takes the coldest closed slot first, then what open sequences
 * hold beyond their length, and never a byte of live data.
 */
START_TEST(test_reclaim_order)
{
	struct vkv_cache *c = test_cache(layouts[_i], 32 * PAGE);
	struct vkv_seq_info si;
	int s0 = vkv_seq_open(c), s1 = vkv_seq_open(c), s2 = vkv_seq_open(c);

	ck_ok(vkv_seq_reserve(c, s0, 1024)); /* 8 pages */
	ck_ok(vkv_seq_reserve(c, s1, 1024)); /* 8 pages */
	ck_ok(vkv_seq_reserve(c, s2, 2048)); /* 16 pages: the budget is full */
	fill_rows(c, s2, 3, 0, 2048);
	ck_ok(vkv_seq_close(c, s0));
	ck_ok(vkv_seq_close(c, s1));

	/* The warmest closed slot is reopened, its pages still mapped. */
	ck_assert_int_eq(vkv_seq_open(c), s1);
	ck_ok(vkv_seq_info(c, s1, &si));
	ck_assert_uint_ge(si.backed, 1024);
	fill_rows(c, s1, 4, 0, 1024);

	/* Growing it needs 8 more pages: the coldest closed slot gives them. */
	ck_ok(vkv_seq_reserve(c, s1, 2048));
	ck_ok(vkv_seq_info(c, s0, &si));
	ck_assert_uint_eq(si.pages, 0);
	ck_assert_int_eq(verify_rows(c, s1, 4, 0, 1024), -1);

	/* No closed pages left: s2's unused tail beyond 100 tokens goes. */
	ck_ok(vkv_seq_reserve(c, s2, 100));
	int s3 = vkv_seq_open(c);

	ck_assert_int_ge(s3, 0);
	ck_ok(vkv_seq_reserve(c, s3, 1500));
	ck_ok(vkv_seq_info(c, s2, &si));
	ck_assert_uint_lt(si.backed, 2048);
	ck_assert_uint_ge(si.backed, 100);
	ck_assert_int_eq(verify_rows(c, s2, 3, 0, 100), -1);
	ck_assert_int_eq(verify_rows(c, s1, 4, 0, 1024), -1);

	/* Live data is never taken: this one cannot fit. */
	ck_err(vkv_seq_reserve(c, s3, 2048), -ENOMEM);
	ck_assert_int_eq(verify_rows(c, s2, 3, 0, 100), -1);
	vkv_cache_destroy(c);
}
END_TEST

static Suite *integrity_suite(void)
{
	Suite *s = suite_create("integrity");
	int n = sizeof(layouts) / sizeof(layouts[0]);

	tcase_add_loop_test(suite_case(s, "roomy", 300), test_roomy, 0, n);
	tcase_add_loop_test(suite_case(s, "tight", 300), test_tight_budget, 0,
			    n);
	tcase_add_loop_test(suite_case(s, "reopen", 300),
			    test_reopen_reuses_pages, 0, n);
	tcase_add_loop_test(suite_case(s, "reclaim", 300), test_reclaim_order,
			    0, n);
	return s;
}

int main(void)
{
	core_suite_defaults();
	return run_suite(integrity_suite());
}
