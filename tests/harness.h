/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what every core suite shares: the cache configuration under
 * test, a small geometry that still crosses pages often, and stamps.
 *
 * The backend comes from VKV_BACKEND (read by vkv_config_init()), so one
 * suite runs on every backend: make runs it once per backend. The
 * assertions and the runner are tests/common/check_util.h's, shared with
 * the guest suites.
 */
#ifndef VKV_TEST_HARNESS_H
#define VKV_TEST_HARNESS_H

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check_util.h"
#include "vkv.h"

#define MIB (1024ul * 1024ul)
#define PAGE (2 * MIB)

/*
 * What make's recipes pass, as defaults for a suite run by hand (an
 * explicit value still wins). Call first in main(): Check reads
 * CK_DEFAULT_TIMEOUT when a TCase is created.
 */
static inline void suite_defaults(void)
{
	setenv("CK_DEFAULT_TIMEOUT", "600", 0);
}

/*
 * The core suites: the host backend unless VKV_BACKEND says otherwise, and
 * on the cuda backend the fake's latency injection off (it reads it when
 * the backend loads it, after main has started).
 */
static inline void core_suite_defaults(void)
{
	suite_defaults();
	setenv("VKV_BACKEND", "host", 0);
	setenv("FAKECUDA_LATENCY", "0", 0);
}

/* Fail with the library's words, not just a number. */
#define ck_ok(expr)                                                            \
	do {                                                                   \
		long _r = (long)(expr);                                        \
		if (_r < 0)                                                    \
			ck_abort_msg("%s:%d: %s = %ld (%s)", __FILE__,         \
				     __LINE__, #expr, _r,                      \
				     vkv_strerror((int)_r));                   \
	} while (0)

#define ck_err(expr, err)                                                      \
	do {                                                                   \
		long _r = (long)(expr);                                        \
		if (_r != (err))                                               \
			ck_abort_msg("%s:%d: %s = %ld (%s), expected %s",      \
				     __FILE__, __LINE__, #expr, _r,            \
				     vkv_strerror((int)_r), #err);             \
	} while (0)

/*
 * Rows of 4 KiB (8 heads x 128 x 4 bytes): a 2 MiB page holds 512 tokens of
 * one layer's K, 256 tokens of a token-major row, 128 of an interleaved one.
 */
static inline struct vkv_geometry test_geom(enum vkv_layout layout)
{
	struct vkv_geometry g = {
		.layers = 2,
		.kv_heads = 8,
		.head_dim = 128,
		.elem_size = 4,
		.max_seqs = 8,
		.max_tokens = 2048,
		.layout = layout,
	};
	return g;
}

/* Defaults and environment, then small pool watermarks for quick tests. */
static inline struct vkv_config test_config(size_t budget)
{
	struct vkv_config cfg;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.budget = budget;
	cfg.pool_low = 2 * PAGE;
	cfg.pool_high = 8 * PAGE;
	return cfg;
}

static inline struct vkv_cache *test_cache(enum vkv_layout layout,
					   size_t budget)
{
	struct vkv_geometry g = test_geom(layout);
	struct vkv_config cfg = test_config(budget);
	struct vkv_cache *c = NULL;
	int ret = vkv_cache_create(&g, &cfg, &c);

	ck_assert_msg(ret == 0, "vkv_cache_create: %s (%s)", vkv_strerror(ret),
		      vkv_config_error());
	return c;
}

/* The stamp of one row: who wrote it, for which token, layer and K/V. */
static inline uint64_t stamp_of(uint64_t owner, uint32_t token, uint32_t layer,
				int kv)
{
	uint64_t x = owner * 0x9e3779b97f4a7c15ull ^ ((uint64_t)token << 20) ^
		     ((uint64_t)layer << 4) ^ (uint64_t)kv;

	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ull;
}

/*
 * Stamp the first and last 8 bytes of the rows of tokens [from, to): the
 * two ends catch a row mapped at the wrong place in either direction.
 */
static inline void stamp_rows(struct vkv_cache *c, uint32_t slot,
			      uint64_t owner, uint32_t from, uint32_t to)
{
	struct vkv_geometry g;
	size_t row;

	vkv_cache_geometry(c, &g);
	row = (size_t)g.kv_heads * g.head_dim * g.elem_size;
	for (uint32_t l = 0; l < g.layers; l++) {
		for (int kv = 0; kv < 2; kv++) {
			for (uint32_t t = from; t < to; t++) {
				char *p = vkv_token_ptr(c, l, kv, slot, t);
				uint64_t s = stamp_of(owner, t, l, kv);

				memcpy(p, &s, 8);
				s = ~s;
				memcpy(p + row - 8, &s, 8);
			}
		}
	}
}

/* Returns the first token whose stamp is wrong, or -1 if all are right. */
static inline long check_rows(struct vkv_cache *c, uint32_t slot,
			      uint64_t owner, uint32_t from, uint32_t to)
{
	struct vkv_geometry g;
	size_t row;

	vkv_cache_geometry(c, &g);
	row = (size_t)g.kv_heads * g.head_dim * g.elem_size;
	for (uint32_t l = 0; l < g.layers; l++) {
		for (int kv = 0; kv < 2; kv++) {
			for (uint32_t t = from; t < to; t++) {
				const char *p =
					vkv_token_ptr(c, l, kv, slot, t);
				uint64_t s = stamp_of(owner, t, l, kv), a, b;

				memcpy(&a, p, 8);
				memcpy(&b, p + row - 8, 8);
				if (a != s || b != ~s)
					return t;
			}
		}
	}
	return -1;
}

/*
 * Fill whole rows of tokens [from, to): each 8-byte word depends on owner,
 * token, layer, K/V and its place, so a page mapped or restored at a wrong
 * offset cannot pass verify_rows().
 */
static inline void fill_rows(struct vkv_cache *c, uint32_t slot, uint64_t owner,
			     uint32_t from, uint32_t to)
{
	struct vkv_geometry g;
	size_t words;

	vkv_cache_geometry(c, &g);
	words = (size_t)g.kv_heads * g.head_dim * g.elem_size / 8;
	for (uint32_t l = 0; l < g.layers; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = from; t < to; t++) {
				uint64_t *p = vkv_token_ptr(c, l, kv, slot, t);
				uint64_t s = stamp_of(owner, t, l, kv);

				for (size_t w = 0; w < words; w++)
					p[w] = s + w;
			}
}

/* The first token in [from, to) whose rows differ, or -1. */
static inline long verify_rows(struct vkv_cache *c, uint32_t slot,
			       uint64_t owner, uint32_t from, uint32_t to)
{
	struct vkv_geometry g;
	size_t words;

	vkv_cache_geometry(c, &g);
	words = (size_t)g.kv_heads * g.head_dim * g.elem_size / 8;
	for (uint32_t l = 0; l < g.layers; l++)
		for (int kv = 0; kv < 2; kv++)
			for (uint32_t t = from; t < to; t++) {
				const uint64_t *p =
					vkv_token_ptr(c, l, kv, slot, t);
				uint64_t s = stamp_of(owner, t, l, kv);

				for (size_t w = 0; w < words; w++)
					if (p[w] != s + w)
						return t;
			}
	return -1;
}

#endif /* VKV_TEST_HARNESS_H */
