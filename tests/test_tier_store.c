/* SPDX-License-Identifier: MIT */
/*
 * test_tier_store.c - the host tier over a backing store (the mode vkv.ko's
 * swap gives it): the budget bounds resident chunks, paged-out chunks keep
 * their addresses and come back intact, registration follows residency
 * chunk by chunk, and the store's errors reach the caller.
 *
 * The store here is a fake: page_out copies a chunk aside and drops its
 * memory with MADV_DONTNEED (so it reads back as zeroes unless page_in
 * restores it), page_in copies it back, discard drops both. It also checks
 * the rules the real one enforces: no registered (pinned) chunk may be
 * paged out, and offsets and lengths are whole chunks inside the slab.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"

#include "tier_host.h"

#define CHUNK (64 * 1024ul)
#define MAXC 256 /* chunks the fake store can follow */

struct store {
	char *slab[16];
	size_t slab_len[16];
	int nslabs;
	char *addr[MAXC]; /* chunk addresses seen */
	void *saved[MAXC]; /* their copy in the store, or NULL */
	bool reg[MAXC]; /* registered */
	char *bad; /* page_in of this chunk fails with -EIO */
	int regs, page_outs, page_ins, discards, violations;
};

static int idx_of(struct store *st, char *p)
{
	for (int i = 0; i < MAXC; i++)
		if (st->addr[i] == p)
			return i;
	for (int i = 0; i < MAXC; i++)
		if (!st->addr[i]) {
			st->addr[i] = p;
			return i;
		}
	ck_abort_msg("the fake store follows only %d chunks", MAXC);
}

static int st_alloc(void *arg, size_t len, int node, void **base)
{
	struct store *st = arg;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)node;
	if (p == MAP_FAILED || st->nslabs == 16)
		return -ENOMEM;
	st->slab[st->nslabs] = p;
	st->slab_len[st->nslabs++] = len;
	*base = p;
	return 0;
}

static void st_free(void *arg, void *base, size_t len)
{
	struct store *st = arg;

	for (int i = 0; i < MAXC; i++) {
		if (st->addr[i] >= (char *)base &&
		    st->addr[i] < (char *)base + len) {
			free(st->saved[i]);
			st->saved[i] = NULL;
			st->addr[i] = NULL;
			if (st->reg[i])
				st->violations++; /* freed while registered */
			st->reg[i] = false;
		}
	}
	munmap(base, len);
}

static int st_reg(void *arg, void *base, size_t len)
{
	struct store *st = arg;
	int i = idx_of(st, base);

	if (len != CHUNK || st->reg[i])
		st->violations++;
	st->reg[i] = true;
	st->regs++;
	return 0;
}

static void st_unreg(void *arg, void *base, size_t len)
{
	struct store *st = arg;
	int i = idx_of(st, base);

	if (len != CHUNK || !st->reg[i])
		st->violations++;
	st->reg[i] = false;
}

/* Calls one function per chunk of the range, after checking the range. */
static int each(struct store *st, char *slab, size_t off, size_t len,
		int (*fn)(struct store *, char *))
{
	int found = 0, ret = 0;

	for (int s = 0; s < st->nslabs; s++)
		if (st->slab[s] == slab)
			found = off + len <= st->slab_len[s];
	if (!found || off % CHUNK || len % CHUNK || !len) {
		st->violations++;
		return -EINVAL;
	}
	for (size_t o = off; o < off + len && !ret; o += CHUNK)
		ret = fn(st, slab + o);
	return ret;
}

static int out1(struct store *st, char *p)
{
	int i = idx_of(st, p);

	if (st->reg[i])
		st->violations++; /* the module would say -EBUSY */
	if (!st->saved[i])
		st->saved[i] = malloc(CHUNK);
	memcpy(st->saved[i], p, CHUNK);
	madvise(p, CHUNK, MADV_DONTNEED);
	st->page_outs++;
	return 0;
}

static int in1(struct store *st, char *p)
{
	int i = idx_of(st, p);

	if (p == st->bad)
		return -EIO;
	/* Resident chunks are left alone, as the module does. */
	if (st->saved[i]) {
		memcpy(p, st->saved[i], CHUNK);
		free(st->saved[i]);
		st->saved[i] = NULL;
		st->page_ins++;
	}
	return 0;
}

static int drop1(struct store *st, char *p)
{
	int i = idx_of(st, p);

	free(st->saved[i]);
	st->saved[i] = NULL;
	madvise(p, CHUNK, MADV_DONTNEED);
	st->discards++;
	return 0;
}

static int st_out(void *arg, void *slab, size_t off, size_t len)
{
	return each(arg, slab, off, len, out1);
}

static int st_in(void *arg, void *slab, size_t off, size_t len)
{
	return each(arg, slab, off, len, in1);
}

static int st_discard(void *arg, void *slab, size_t off, size_t len)
{
	return each(arg, slab, off, len, drop1);
}

static struct vkv_host_tier *open_backed(struct store *st, size_t budget)
{
	struct vkv_host_tier_ops ops = {
		.slab_alloc = st_alloc,
		.slab_free = st_free,
		.slab_register = st_reg,
		.slab_unregister = st_unreg,
		.page_out = st_out,
		.page_in = st_in,
		.discard = st_discard,
		.arg = st,
	};
	struct vkv_host_tier *t;

	memset(st, 0, sizeof(*st));
	ck_ok(vkvi_host_tier_open(NULL, CHUNK, budget, -1, &t));
	ck_ok(vkvi_host_tier_set_ops(t, &ops));
	return t;
}

static void stamp(void *p, uint64_t v)
{
	uint64_t *q = p;

	for (size_t i = 0; i < CHUNK / 8; i += 512)
		q[i] = v + i;
}

static bool stamped(const void *p, uint64_t v)
{
	const uint64_t *q = p;

	for (size_t i = 0; i < CHUNK / 8; i += 512)
		if (q[i] != v + i)
			return false;
	return true;
}

/* Registered chunks are exactly the resident ones. */
static int nreg(const struct store *st)
{
	int n = 0;

	for (int i = 0; i < MAXC; i++)
		n += st->reg[i];
	return n;
}

START_TEST(test_store_bad_input)
{
	struct vkv_host_tier_ops partial = {.page_out = st_out,
					    .page_in = st_in};
	struct vkv_host_tier *t;
	struct store st;
	void *p, *bogus = &st;

	ck_ok(vkvi_host_tier_open(NULL, CHUNK, 4 * CHUNK, -1, &t));
	ck_err(vkvi_host_tier_set_ops(t, &partial), -EINVAL);
	ck_ok(vkvi_host_tier_alloc(t, &p));
	/* No store: nothing to page. */
	ck_err(vkvi_host_tier_page_out(t, &p, 1), -EOPNOTSUPP);
	ck_ok(vkvi_host_tier_page_in(t, &p, 1));
	vkvi_host_tier_close(t);

	t = open_backed(&st, 4 * CHUNK);
	ck_err(vkvi_host_tier_page_out(NULL, &p, 1), -EINVAL);
	ck_ok(vkvi_host_tier_alloc(t, &p));
	ck_err(vkvi_host_tier_page_out(t, &bogus, 1), -EINVAL);
	ck_err(vkvi_host_tier_page_out(t, NULL, 1), -EINVAL);
	ck_err(vkvi_host_tier_page_in(t, &bogus, 1), -EINVAL);
	ck_ok(vkvi_host_tier_page_out(t, &p, 0));
	ck_ok(vkvi_host_tier_free(t, p));
	/* Freed: no longer pageable. */
	ck_err(vkvi_host_tier_page_out(t, &p, 1), -EINVAL);
	ck_assert_int_eq(st.violations, 0);
	vkvi_host_tier_close(t);
}
END_TEST

START_TEST(test_store_budget_is_resident)
{
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	struct store st;
	void *p[12];

	t = open_backed(&st, 4 * CHUNK);
	for (int i = 0; i < 4; i++) {
		ck_ok(vkvi_host_tier_alloc(t, &p[i]));
		stamp(p[i], 100 * (uint64_t)i);
	}
	ck_err(vkvi_host_tier_alloc(t, &p[4]), -ENOMEM);
	ck_assert_int_eq(nreg(&st), 4);

	/* Paging two out makes room for two more chunks, though all four
	 * stay allocated at the same addresses. */
	ck_ok(vkvi_host_tier_page_out(t, p, 2));
	ck_assert_int_eq(st.page_outs, 2);
	ck_assert_int_eq(nreg(&st), 2);
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.resident_bytes, 2 * CHUNK);
	ck_assert_uint_eq(c.paged_bytes, 2 * CHUNK);
	ck_assert_uint_eq(c.used_bytes, 4 * CHUNK);
	ck_assert(!stamped(p[0], 0)); /* really gone from memory */
	ck_ok(vkvi_host_tier_page_out(t, p, 2)); /* already out: no-op */
	ck_assert_int_eq(st.page_outs, 2);

	ck_ok(vkvi_host_tier_alloc(t, &p[4]));
	ck_ok(vkvi_host_tier_alloc(t, &p[5]));
	stamp(p[4], 400);
	stamp(p[5], 500);
	ck_err(vkvi_host_tier_alloc(t, &p[6]), -ENOMEM);
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_le(c.resident_bytes, 4 * CHUNK);
	/* The second slab was born whole and trimmed to the budget. */
	ck_assert_uint_eq(c.slab_bytes, 8 * CHUNK);
	ck_assert_int_eq(st.discards, 2);

	/* Coming back needs room: -ENOMEM, nothing done; then room. */
	ck_err(vkvi_host_tier_page_in(t, p, 2), -ENOMEM);
	ck_ok(vkvi_host_tier_page_out(t, &p[4], 2));
	ck_ok(vkvi_host_tier_page_in(t, p, 2));
	ck_assert(stamped(p[0], 0));
	ck_assert(stamped(p[1], 100));
	ck_assert_int_eq(nreg(&st), 4);
	ck_err(vkvi_host_tier_page_in(t, &p[4], 1), -ENOMEM);

	/* A chunk freed while paged out is discarded, and a discarded chunk
	 * is handed out again when the budget allows. */
	ck_ok(vkvi_host_tier_free(t, p[5]));
	ck_assert_int_eq(st.discards, 3);
	ck_ok(vkvi_host_tier_free(t, p[2]));
	ck_ok(vkvi_host_tier_alloc(t, &p[6])); /* the freed resident one */
	ck_assert_ptr_eq(p[6], p[2]);
	ck_ok(vkvi_host_tier_free(t, p[6]));
	ck_ok(vkvi_host_tier_free(t, p[3]));
	ck_ok(vkvi_host_tier_page_in(t, &p[4], 1));
	ck_assert(stamped(p[4], 400));
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.paged_bytes, 0);
	ck_assert_uint_le(c.resident_bytes, 4 * CHUNK);
	ck_assert_int_eq(nreg(&st), (int)(c.resident_bytes / CHUNK));
	ck_assert_int_eq(st.violations, 0);
	vkvi_host_tier_close(t);
	ck_assert_int_eq(st.violations, 0);
}
END_TEST

START_TEST(test_store_errors)
{
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	struct store st;
	void *a[2], *b[2];

	t = open_backed(&st, 8 * CHUNK);
	for (int i = 0; i < 2; i++) {
		ck_ok(vkvi_host_tier_alloc(t, &a[i]));
		ck_ok(vkvi_host_tier_alloc(t, &b[i]));
		stamp(a[i], 10 + (uint64_t)i);
		stamp(b[i], 20 + (uint64_t)i);
	}
	ck_ok(vkvi_host_tier_page_out(t, a, 2));
	ck_ok(vkvi_host_tier_page_out(t, b, 2));
	/* The store returns bad data for one chunk of a: -EIO to a only. */
	st.bad = a[1];
	ck_err(vkvi_host_tier_page_in(t, a, 2), -EIO);
	ck_ok(vkvi_host_tier_page_in(t, b, 2));
	ck_assert(stamped(b[0], 20) && stamped(b[1], 21));
	/* a can still be freed; its chunks are discarded or reused. */
	ck_ok(vkvi_host_tier_free(t, a[0]));
	ck_ok(vkvi_host_tier_free(t, a[1]));
	vkvi_host_tier_counters(t, &c);
	ck_assert_uint_eq(c.paged_bytes, 0);
	ck_assert_uint_eq(c.used_bytes, 2 * CHUNK);
	ck_assert_int_eq(st.violations, 0);
	vkvi_host_tier_close(t);
}
END_TEST

/* Seeded random alloc/free/page-out/page-in: contents and invariants. */
START_TEST(test_store_random)
{
	enum { N = 48 };
	const size_t budget = 10 * CHUNK;
	struct vkvi_host_tier_counters c;
	struct vkv_host_tier *t;
	uint64_t seed = 12345, val[N] = {0};
	struct store st;
	void *p[N] = {0};
	bool out[N] = {0};

	t = open_backed(&st, budget);
	for (int op = 0; op < 20000; op++) {
		int i;
		int ret;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		i = (int)((seed >> 33) % N);
		switch ((seed >> 20) % 4) {
		case 0:
			if (p[i])
				break;
			ret = vkvi_host_tier_alloc(t, &p[i]);
			if (ret) {
				req_cmp(ret, ==, -ENOMEM);
				p[i] = NULL;
				break;
			}
			val[i] = seed;
			out[i] = false;
			stamp(p[i], val[i]);
			break;
		case 1:
			if (!p[i])
				break;
			req_cmp(vkvi_host_tier_free(t, p[i]), ==, 0);
			p[i] = NULL;
			break;
		case 2:
			if (!p[i])
				break;
			req_cmp(vkvi_host_tier_page_out(t, &p[i], 1), ==, 0);
			out[i] = true;
			break;
		default:
			if (!p[i])
				break;
			ret = vkvi_host_tier_page_in(t, &p[i], 1);
			if (ret) {
				req_cmp(ret, ==, -ENOMEM);
				break;
			}
			req(stamped(p[i], val[i]));
			out[i] = false;
			break;
		}
		vkvi_host_tier_counters(t, &c);
		req_cmp(c.resident_bytes, <=, budget);
		req_cmp(nreg(&st), ==, (int)(c.resident_bytes / CHUNK));
	}
	for (int i = 0; i < N; i++) {
		if (!p[i])
			continue;
		if (out[i]) {
			/* Make room, then bring it back. */
			for (int j = 0; j < N; j++)
				if (p[j] && j != i && !out[j]) {
					req_cmp(vkvi_host_tier_page_out(
							t, &p[j], 1),
						==, 0);
					out[j] = true;
				}
			req_cmp(vkvi_host_tier_page_in(t, &p[i], 1), ==, 0);
		}
		req(stamped(p[i], val[i]));
		req_cmp(vkvi_host_tier_free(t, p[i]), ==, 0);
		p[i] = NULL;
	}
	ck_assert_int_eq(st.violations, 0);
	vkvi_host_tier_close(t);
	ck_assert_int_eq(st.violations, 0);
}
END_TEST

int main(void)
{
	Suite *s;

	suite_defaults();
	s = suite_create("tier_store");

	tcase_add_test(suite_case(s, "input", 0), test_store_bad_input);
	tcase_add_test(suite_case(s, "budget", 0),
		       test_store_budget_is_resident);
	tcase_add_test(suite_case(s, "errors", 0), test_store_errors);
	tcase_add_test(suite_case(s, "random", 0), test_store_random);
	return run_suite(s);
}
