/* SPDX-License-Identifier: MIT */
/*
 * test_model.c - random operations checked against a reference model.
 *
 * The model knows which slots are open, their lengths, and which tokens
 * hold data the test wrote. Before every operation it predicts the result,
 * including -ENOMEM, which is exact: a request fits if and only if
 *
 *   sum over open slots outside it of pages_for(len)
 *   + sum over its slots of pages_for(max(len, new len))  <= budget
 *
 * since closed slots, what open ones hold past their length, and what the
 * request's own hold past both can all be reclaimed; vkv_step_fits() must say the same before every step. After
 * every operation the stats must agree with the model.
 *
 * VKV_TEST_SEED=<n> replays a run; VKV_TEST_OPS=<n> changes its length.
 */
#include <errno.h>
#include <inttypes.h>

#include "harness.h"

#define NSLOT 8
#define MAXTOK 2048
#define BUDGET 48 /* pages: about three full sequences of eight */

struct mslot {
	int open;
	uint32_t len;
	uint32_t valid; /* tokens [0, valid) hold the stamps of owner */
	uint64_t owner;
};

struct model {
	struct vkv_cache *c;
	struct mslot s[NSLOT];
	struct vkv_seq_info info[NSLOT];
	uint64_t rng;
	uint64_t next_owner;
	size_t token_stride; /* bytes per token in one segment */
	uint32_t segs;
	uint64_t counts[16];
};

static uint64_t rnd(struct model *m)
{
	/* splitmix64: good enough, and the same on every machine */
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t pf(const struct model *m, uint32_t tokens)
{
	return (uint32_t)(((uint64_t)tokens * m->token_stride + PAGE - 1) /
			  PAGE);
}

static void refresh(struct model *m)
{
	for (uint32_t i = 0; i < NSLOT; i++)
		ck_ok(vkv_seq_info(m->c, i, &m->info[i]));
}

/* Would growing the batch to lens[] fit in the budget? */
static int fits(struct model *m, const uint32_t *slots, const uint32_t *lens,
		uint32_t n)
{
	uint64_t total = 0;
	int in_batch[NSLOT] = {0}, grows = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t now = m->info[slots[i]].pages, want = pf(m, lens[i]);
		uint32_t len = pf(m, m->s[slots[i]].len);

		in_batch[slots[i]] = 1;
		total += want > len ? want : len;
		grows |= want > now;
	}
	if (!grows)
		return 1;
	for (uint32_t i = 0; i < NSLOT; i++)
		if (m->s[i].open && !in_batch[i])
			total += pf(m, m->s[i].len);
	return total * m->segs <= BUDGET;
}

static void set_len(struct model *m, uint32_t slot, uint32_t len)
{
	struct mslot *q = &m->s[slot];

	if (len < q->valid)
		q->valid = len;
	if (len > q->valid) {
		stamp_rows(m->c, slot, q->owner, q->valid, len);
		q->valid = len;
	}
	q->len = len;
}

static void check_invariants(struct model *m)
{
	uint64_t live = 0, open = 0, cached = 0, nopen = 0, needed = 0;
	struct vkv_stats st;

	refresh(m);
	for (uint32_t i = 0; i < NSLOT; i++) {
		const struct vkv_seq_info *si = &m->info[i];

		req_cmp(si->open, ==, (uint32_t)m->s[i].open);
		req_cmp(si->segments, ==, m->segs);
		if (m->s[i].open) {
			req_cmp(si->len, ==, m->s[i].len);
			req_cmp(si->pages, >=, pf(m, si->len));
			req_cmp(si->backed, >=, si->len);
			live += m->s[i].len;
			needed += pf(m, m->s[i].len);
			open += si->pages;
			nopen++;
		} else {
			cached += si->pages;
		}
	}
	ck_ok(vkv_cache_stats(m->c, &st));
	req_cmp(st.seqs_open, ==, nopen);
	req_cmp(st.live_bytes, ==, live * m->token_stride * m->segs);
	req_cmp(st.pages_open, ==, open * m->segs);
	req_cmp(st.pages_needed, ==, needed * m->segs);
	req_cmp(st.pages_cached, ==, cached * m->segs);
	/* The refill worker may be creating one right now. */
	req_cmp(st.pages_created, >=,
		st.pages_free + st.pages_open + st.pages_cached);
	req_cmp(st.pages_created, <=, BUDGET);
}

static void op_open(struct model *m)
{
	int any = 0, s;

	for (uint32_t i = 0; i < NSLOT; i++)
		any |= !m->s[i].open;
	s = vkv_seq_open(m->c);
	if (!any) {
		ck_err(s, -ENOSPC);
		return;
	}
	req_cmp(s, >=, 0);
	req_cmp(s, <, NSLOT);
	req(!m->s[s].open);
	m->s[s] = (struct mslot){1, 0, 0, m->next_owner++};
}

static void op_close(struct model *m)
{
	uint32_t slot = (uint32_t)(rnd(m) % (NSLOT + 1));
	int ret = vkv_seq_close(m->c, slot);

	if (slot >= NSLOT) {
		ck_err(ret, -EINVAL);
	} else if (!m->s[slot].open) {
		ck_err(ret, -EBADF);
	} else {
		ck_ok(ret);
		req_cmp(check_rows(m->c, slot, m->s[slot].owner, 0,
				   m->s[slot].valid),
			==, -1);
		m->s[slot].open = 0;
	}
}

static uint32_t pick_len(struct model *m, uint32_t cur)
{
	/*
	 * Mostly what decoding does, small moves; now and then a jump anywhere
	 * (a long prompt, or one too long). Jumps are rare because every new
	 * token is stamped, and the page faults of stamping dominate the run.
	 */
	switch (rnd(m) % 16) {
	case 0:
		return (uint32_t)(rnd(m) % (MAXTOK + 2));
	case 1:
	case 2:
	case 3:
		return cur > 10 ? cur - (uint32_t)(rnd(m) % 10) : cur;
	default:
		return cur + (uint32_t)(rnd(m) % 40);
	}
}

static void op_reserve(struct model *m)
{
	uint32_t slot = (uint32_t)(rnd(m) % (NSLOT + 1));
	uint32_t len = slot < NSLOT ? pick_len(m, m->s[slot].len) : 1;
	int ret;

	refresh(m);
	ret = vkv_seq_reserve(m->c, slot, len);
	if (slot >= NSLOT)
		ck_err(ret, -EINVAL);
	else if (!m->s[slot].open)
		ck_err(ret, -EBADF);
	else if (len > MAXTOK)
		ck_err(ret, -E2BIG);
	else if (!fits(m, &slot, &len, 1))
		ck_err(ret, -ENOMEM);
	else {
		ck_ok(ret);
		set_len(m, slot, len);
	}
}

static void op_trim(struct model *m)
{
	uint32_t slot = (uint32_t)(rnd(m) % NSLOT);
	int ret = vkv_seq_trim(m->c, slot);

	if (!m->s[slot].open) {
		ck_err(ret, -EBADF);
		return;
	}
	req_cmp(ret, >=, 0);
	ck_ok(vkv_seq_info(m->c, slot, &m->info[slot]));
	req_cmp(m->info[slot].pages, ==, pf(m, m->s[slot].len));
}

static void op_step(struct model *m, int async)
{
	uint32_t slots[NSLOT], lens[NSLOT], n = 0;
	int expect = 0, ret;

	for (uint32_t i = 0; i < NSLOT; i++) {
		if (m->s[i].open && rnd(m) % 4) {
			slots[n] = i;
			lens[n] = m->s[i].len + (uint32_t)(rnd(m) % 3 ? 1 : 17);
			n++;
		}
	}
	/* Now and then, one bad entry: the whole step must be refused. */
	if (n && rnd(m) % 20 == 0) {
		switch (rnd(m) % 4) {
		case 0:
			lens[0] = MAXTOK + 1;
			break;
		case 1:
			slots[n - 1] = NSLOT;
			break;
		case 2:
			slots[n - 1] = slots[0]; /* twice in one batch */
			break;
		default:
			for (uint32_t i = 0; i < NSLOT; i++)
				if (!m->s[i].open)
					slots[0] = i;
		}
	}
	/* The first bad entry, checked in the library's documented order. */
	for (uint32_t i = 0, seen = 0; i < n && !expect; i++) {
		if (slots[i] >= NSLOT)
			expect = -EINVAL;
		else if (!m->s[slots[i]].open)
			expect = -EBADF;
		else if (lens[i] > MAXTOK)
			expect = -E2BIG;
		else if (seen & (1u << slots[i]))
			expect = -EINVAL;
		else
			seen |= 1u << slots[i];
	}
	refresh(m);
	if (!expect && !fits(m, slots, lens, n))
		expect = -ENOMEM;
	/* The library's own answer, asked first, must be the model's. */
	ret = vkv_step_fits(m->c, slots, lens, n);
	if (ret != expect)
		ck_abort_msg("step_fits: %d (%s), model expected %d", ret,
			     vkv_strerror(ret), expect);
	if (async) {
		ret = vkv_step_async(m->c, slots, lens, n);
		if (!ret)
			ret = vkv_step_wait(m->c);
	} else {
		ret = vkv_step(m->c, slots, lens, n);
	}
	if (ret != expect)
		ck_abort_msg("step: %d (%s), model expected %d", ret,
			     vkv_strerror(ret), expect);
	if (!ret)
		for (uint32_t i = 0; i < n; i++)
			set_len(m, slots[i], lens[i]);
}

static void op_verify(struct model *m)
{
	uint32_t slot = (uint32_t)(rnd(m) % NSLOT);

	if (m->s[slot].open)
		req_cmp(check_rows(m->c, slot, m->s[slot].owner, 0,
				   m->s[slot].valid),
			==, -1);
}

static void run_model(enum vkv_layout layout)
{
	struct vkv_geometry g = test_geom(layout);
	struct vkv_config cfg = test_config(BUDGET * PAGE);
	const char *e = getenv("VKV_TEST_SEED");
	const char *o = getenv("VKV_TEST_OPS");
	uint64_t seed = e ? strtoull(e, NULL, 0) : 0x5eed0000ull + layout;
	long ops = o ? atol(o) : 100000;
	struct model m = {0};
	struct vkv_tensor t;

	g.max_seqs = NSLOT;
	g.max_tokens = MAXTOK;
	cfg.lookahead_tokens = 48;
	/* Keep freed pages: re-creating them (zeroing 2 MiB) would dominate. */
	cfg.pool_high = BUDGET * PAGE;
	ck_ok(vkv_cache_create(&g, &cfg, &m.c));
	ck_ok(vkv_cache_tensor(m.c, 0, VKV_K, &t));
	m.token_stride = t.token_stride;
	m.rng = seed;
	m.next_owner = 1;
	refresh(&m);
	m.segs = m.info[0].segments;
	printf("model: layout %d, seed %#" PRIx64 ", %ld operations "
	       "(VKV_TEST_SEED=%#" PRIx64 " replays it)\n",
	       (int)layout, seed, ops, seed);
	fflush(stdout);

	for (long i = 0; i < ops; i++) {
		unsigned op = (unsigned)(rnd(&m) % 100);

		if (op < 12)
			op_open(&m);
		else if (op < 22)
			op_close(&m);
		else if (op < 45)
			op_reserve(&m);
		else if (op < 50)
			op_trim(&m);
		else if (op < 75)
			op_step(&m, 0);
		else if (op < 90)
			op_step(&m, 1);
		else
			op_verify(&m);
		if (i % 16 == 0)
			check_invariants(&m);
	}
	check_invariants(&m);
	for (uint32_t i = 0; i < NSLOT; i++)
		if (m.s[i].open)
			req_cmp(check_rows(m.c, i, m.s[i].owner, 0,
					   m.s[i].valid),
				==, -1);
	vkv_cache_destroy(m.c);
}

START_TEST(test_model_per_layer)
{
	run_model(VKV_LAYOUT_PER_LAYER);
}
END_TEST

START_TEST(test_model_token_major)
{
	run_model(VKV_LAYOUT_TOKEN_MAJOR);
}
END_TEST

START_TEST(test_model_token_major_kv)
{
	run_model(VKV_LAYOUT_TOKEN_MAJOR_KV);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");

	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_model_per_layer);
	tcase_add_test(tc, test_model_token_major);
	tcase_add_test(tc, test_model_token_major_kv);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(model_suite());
}
