// SPDX-License-Identifier: MIT
/*
 * micro.c - `vkvbench micro`: the two speed targets of the core library,
 * each measured as a ratio against a baseline run in the same process, so
 * that the verdict does not depend on how fast or how busy the machine is.
 *
 *  (a) backing one page through the pool vs a raw mmap(MAP_FIXED) of a
 *      memfd slice into a PROT_NONE reservation: target <= 2x;
 *  (b) a vkv_step() at batch 256 in which no sequence crosses a page
 *      boundary vs one pass of a plain decode-attention loop over that
 *      batch's K/V: target < 1%.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmd.h"
#include "micro.h"
#include "stamp.h"
#include "util.h"

static int lib_fail(const char *what, int err)
{
	fprintf(stderr, "vkvbench micro: %s failed: %s\n", what,
		vkv_strerror(err));
	return EXIT_FAIL;
}

/*
 * The pool's half: a one-slot token-major-kv cache (one segment per slot,
 * so growing by a page's worth of tokens maps exactly one page), its pool
 * filled to hold every page the round needs.
 */
struct page_lib {
	struct vkv_cache *c;
	struct stamper st;
	uint32_t tpp; /* tokens per page */
	size_t page;
	int slot;
};

static int page_lib_open(struct page_lib *pl, const struct micro_opts *mo)
{
	struct vkv_geometry g = {.layers = 32,
				 .kv_heads = 8,
				 .head_dim = 128,
				 .elem_size = 2,
				 .max_seqs = 1,
				 .layout = VKV_LAYOUT_TOKEN_MAJOR_KV};
	struct vkv_config cfg;
	uint64_t tok = 2ull * g.layers * g.kv_heads * g.head_dim * g.elem_size;
	int ret;

	memset(pl, 0, sizeof(*pl));
	ret = vkv_config_init(&cfg);
	if (ret) {
		fprintf(stderr, "vkvbench micro: %s\n", vkv_config_error());
		return EXIT_USAGE;
	}
	if (mo->page_size)
		cfg.page_size = mo->page_size;
	if (cfg.page_size % tok) {
		fprintf(stderr,
			"vkvbench micro: page size %zu is not a multiple of "
			"the %llu-byte token\n",
			cfg.page_size, (unsigned long long)tok);
		return EXIT_USAGE;
	}
	pl->page = cfg.page_size;
	pl->tpp = (uint32_t)(cfg.page_size / tok);
	g.max_tokens = pl->tpp * (mo->pages + 1);
	/*
	 * Room for every page of a round; the high watermark keeps them all
	 * in the pool between rounds. The low watermark stays the default:
	 * set at the budget, every take would wake the refill worker for
	 * nothing, which is a configuration, not a cost of the pool.
	 */
	cfg.budget = (mo->pages + 2) * cfg.page_size;
	cfg.pool_high = cfg.budget;
	if (cfg.pool_low > cfg.pool_high)
		cfg.pool_low = cfg.pool_high;
	ret = vkv_cache_create(&g, &cfg, &pl->c);
	if (ret) {
		fprintf(stderr, "vkvbench micro: vkv_cache_create: %s: %s\n",
			vkv_strerror(ret), vkv_config_error());
		return EXIT_FAIL;
	}
	ret = stamper_init(&pl->st, pl->c);
	if (ret)
		return lib_fail("vkv_cache_tensor", ret);
	pl->slot = vkv_seq_open(pl->c);
	if (pl->slot < 0)
		return lib_fail("vkv_seq_open", pl->slot);
	/* Token 0 keeps page 0 mapped; each timed reserve adds one page. */
	ret = vkv_seq_reserve(pl->c, (uint32_t)pl->slot, 1);
	if (ret)
		return lib_fail("vkv_seq_reserve", ret);
	return 0;
}

static void page_lib_close(struct page_lib *pl)
{
	stamper_free(&pl->st);
	vkv_cache_destroy(pl->c);
}

/* One round: grow page by page, timing each, then give the pages back. */
static int page_lib_round(struct page_lib *pl, const struct micro_opts *mo,
			  struct samples *out)
{
	uint32_t slot = (uint32_t)pl->slot, k, tok;
	struct stamp_err e;
	int ret;

	for (k = 1; k <= mo->pages; k++) {
		uint64_t t0, t1;

		t0 = now_ns();
		ret = vkv_seq_reserve(pl->c, slot, k * pl->tpp + 1);
		t1 = now_ns();
		if (ret)
			return lib_fail("vkv_seq_reserve", ret);
		samples_push(out, t1 - t0);
		tok = k * pl->tpp;
		stamp_write(&pl->st, slot, k, tok, tok + 1);
	}
	for (k = 1; k <= mo->pages; k++) {
		tok = k * pl->tpp;
		if (stamp_check(&pl->st, slot, k, tok, tok + 1, &e)) {
			stamp_err_print(&e, "micro page");
			return EXIT_FAIL;
		}
	}
	ret = vkv_seq_reserve(pl->c, slot, 1);
	if (ret)
		return lib_fail("vkv_seq_reserve (shrink)", ret);
	ret = vkv_seq_trim(pl->c, slot);
	if (ret != (int)mo->pages) {
		if (ret < 0)
			return lib_fail("vkv_seq_trim", ret);
		fprintf(stderr,
			"vkvbench micro: vkv_seq_trim freed %d pages, expected "
			"%u\n",
			ret, mo->pages);
		return EXIT_FAIL;
	}
	return 0;
}

/* The raw half: what the host backend does at bottom, with nothing around. */
struct page_raw {
	int fd;
	char *base;
	size_t page, len;
};

static int page_raw_open(struct page_raw *pr, size_t page, uint32_t pages)
{
	pr->page = page;
	pr->len = page * pages;
	pr->fd = memfd_create("vkvbench-raw", MFD_CLOEXEC);
	if (pr->fd < 0)
		goto fail;
	/* Allocated like the pool's pages, so both map populated slices. */
	if (ftruncate(pr->fd, (off_t)pr->len) ||
	    fallocate(pr->fd, 0, 0, (off_t)pr->len))
		goto fail;
	pr->base = mmap(NULL, pr->len, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pr->base == MAP_FAILED)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "vkvbench micro: raw baseline setup: %s\n",
		strerror(errno));
	if (pr->fd >= 0)
		close(pr->fd);
	return EXIT_FAIL;
}

static void page_raw_close(struct page_raw *pr)
{
	munmap(pr->base, pr->len);
	close(pr->fd);
}

static int page_raw_round(struct page_raw *pr, uint32_t pages,
			  struct samples *out)
{
	uint32_t k;

	for (k = 0; k < pages; k++) {
		char *va = pr->base + (size_t)k * pr->page;
		uint64_t t0, t1;
		void *p;

		t0 = now_ns();
		p = mmap(va, pr->page, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, pr->fd, (off_t)k * pr->page);
		t1 = now_ns();
		if (p != va)
			goto fail;
		samples_push(out, t1 - t0);
		/* Touch a row, as the pool's half stamps one. */
		memset(va, (int)k, 64);
	}
	for (k = 0; k < pages; k++) {
		char *va = pr->base + (size_t)k * pr->page;

		if (mmap(va, pr->page, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
				 MAP_NORESERVE,
			 -1, 0) != va)
			goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "vkvbench micro: raw mmap: %s\n", strerror(errno));
	return EXIT_FAIL;
}

int micro_page(const struct micro_opts *mo, struct page_result *r)
{
	struct page_lib pl;
	struct page_raw pr = {.fd = -1};
	struct samples lib = {0}, raw = {0};
	struct vkv_stats s0, s1;
	uint32_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = page_lib_open(&pl, mo);
	if (rc)
		goto out_lib;
	rc = page_raw_open(&pr, pl.page, mo->pages);
	if (rc)
		goto out_lib;
	/* A warm-up round of each, untimed: creates the pool's pages. */
	rc = page_lib_round(&pl, mo, &lib);
	if (!rc)
		rc = page_raw_round(&pr, mo->pages, &raw);
	if (rc)
		goto out;
	lib.n = raw.n = 0;
	vkv_cache_stats(pl.c, &s0);
	/* Alternate rounds, so that drift in the machine hits both alike. */
	for (i = 0; i < mo->rounds && !rc; i++) {
		rc = page_lib_round(&pl, mo, &lib);
		if (!rc)
			rc = page_raw_round(&pr, mo->pages, &raw);
	}
	if (rc)
		goto out;
	vkv_cache_stats(pl.c, &s1);
	if (lib.oom || raw.oom) {
		fprintf(stderr, "vkvbench micro: out of memory\n");
		rc = EXIT_FAIL;
		goto out;
	}
	r->page_size = pl.page;
	r->samples = lib.n;
	r->lib_ns = (double)percentile_u64(lib.v, lib.n, 50);
	r->raw_ns = (double)percentile_u64(raw.v, raw.n, 50);
	r->lib_p99_ns = (double)percentile_u64(lib.v, lib.n, 99);
	r->raw_p99_ns = (double)percentile_u64(raw.v, raw.n, 99);
	r->ratio = r->raw_ns > 0 ? r->lib_ns / r->raw_ns : INFINITY;
	r->create_sync = s1.create_sync - s0.create_sync;
	r->map_lat_p50 = vkv_hist_percentile(&s1.map_lat, 50);
out:
	page_raw_close(&pr);
out_lib:
	page_lib_close(&pl);
	samples_free(&lib);
	samples_free(&raw);
	return rc;
}
