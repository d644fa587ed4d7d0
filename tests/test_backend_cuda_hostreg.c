/* SPDX-License-Identifier: MIT */
/*
 * test_backend_cuda_hostreg.c - host memory registered with the cuda
 * backend (host_register/host_unregister) and the direct copies it allows:
 * the fake's registration rules, the backend's table and errors, copies
 * that go direct and copies that must not, and a whole-sequence swap over
 * a host tier whose slabs are registered (or, when the driver refuses,
 * staged). The fake's per-registration byte counters tell the two paths
 * apart: a staged copy's host side is the backend's staging buffer.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_backend_cuda.h"

static size_t (*hostregs)(struct fakecuda_hostreg *, size_t);
static cudrv_result (*host_register)(void *, size_t, unsigned int);
static cudrv_result (*host_unregister)(void *);

static void load_hostreg(void)
{
	*(void **)&hostregs = dlsym(fk.lib, "fakecuda_hostregs");
	*(void **)&host_register = dlsym(fk.lib, "cuMemHostRegister_v2");
	*(void **)&host_unregister = dlsym(fk.lib, "cuMemHostUnregister");
	ck_assert(hostregs && host_register && host_unregister);
}

/* Bytes the registration based at @p has served; -1 if there is none. */
static int64_t served(const void *p)
{
	size_t n = hostregs(NULL, 0), i;
	struct fakecuda_hostreg *r = calloc(n + 1, sizeof(*r));
	int64_t ret = -1;

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(hostregs(r, n), n);
	for (i = 0; i < n; i++)
		if (r[i].p == (uintptr_t)p)
			ret = (int64_t)r[i].async_bytes;
	free(r);
	return ret;
}

static void *map_host(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

/* The fake follows the driver's documented rules. */
START_TEST(test_fake_rules)
{
	struct vkv_backend *be = open_be(); /* a current context */
	char *m = map_host(4 * 4096);
	struct fakecuda_stats st = stats();

	load_hostreg();
	ck_assert_uint_eq(host_register(m + 4096, 2 * 4096, 0x10),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(host_register(m + 4096, 2 * 4096, 0x1),
			  CUDRV_SUCCESS);
	/* Any overlap, not only the same base. */
	ck_assert_uint_eq(host_register(m, 2 * 4096, 0x1),
			  CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	ck_assert_uint_eq(host_register(m + 2 * 4096, 2 * 4096, 0x1),
			  CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	/* Adjacent is not overlapping. */
	ck_assert_uint_eq(host_register(m, 4096, 0x1), CUDRV_SUCCESS);
	/* The base, not any pointer inside. */
	ck_assert_uint_eq(host_unregister(m + 2 * 4096),
			  CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED);
	ck_assert_uint_eq(stats().host_registered, st.host_registered + 2);
	ck_assert_uint_eq(stats().invalid_calls, st.invalid_calls + 4);
	ck_assert_uint_eq(host_unregister(m + 4096), CUDRV_SUCCESS);
	ck_assert_uint_eq(host_unregister(m), CUDRV_SUCCESS);
	ck_assert_uint_eq(host_unregister(m),
			  CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED);
	/* Injection reaches both, and changes nothing. */
	ck_assert_int_eq(fk.inject("cuMemHostRegister", 1, 2), 0);
	ck_assert_uint_eq(host_register(m, 4096, 0x1), 2);
	ck_assert_int_eq(fk.inject("cuMemHostUnregister", 1, 2), 0);
	ck_assert_uint_eq(host_register(m, 4096, 0x1), CUDRV_SUCCESS);
	ck_assert_uint_eq(host_unregister(m), 2);
	ck_assert_uint_eq(host_unregister(m), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().host_registered, st.host_registered);
	vkv_backend_destroy(be);
	munmap(m, 4 * 4096);
}
END_TEST

/* The backend's table: errors, and nothing left pinned after destroy. */
START_TEST(test_register_errors)
{
	struct vkv_backend *be = open_be();
	char *m = map_host(8 * 4096);
	uint64_t calls;

	ck_assert_int_eq(be->ops->host_register(be, NULL, 4096), -EINVAL);
	ck_assert_int_eq(be->ops->host_register(be, m, 0), -EINVAL);
	ck_assert_int_eq(be->ops->host_register(be, m + 4096, 4 * 4096), 0);
	ck_assert_uint_eq(stats().host_registered, 2); /* and the staging */
	ck_assert_int_eq(be->ops->host_register(be, m + 4096, 4 * 4096),
			 -EEXIST);
	ck_assert_int_eq(be->ops->host_register(be, m, 2 * 4096), -EEXIST);
	/* Unknown, or not a base: refused without asking the driver. */
	calls = fk.calls("cuMemHostUnregister");
	ck_assert_int_eq(be->ops->host_unregister(be, m), -ENOENT);
	ck_assert_int_eq(be->ops->host_unregister(be, m + 2 * 4096), -ENOENT);
	ck_assert_int_eq(be->ops->host_unregister(be, NULL), -ENOENT);
	ck_assert_uint_eq(fk.calls("cuMemHostUnregister"), calls);
	ck_assert_int_eq(be->ops->host_unregister(be, m + 4096), 0);
	ck_assert_int_eq(be->ops->host_unregister(be, m + 4096), -ENOENT);
	/* Driver errors map to errnos; a refusal leaves no entry. */
	ck_assert_int_eq(
		fk.inject("cuMemHostRegister", 1, CUDRV_ERROR_OUT_OF_MEMORY),
		0);
	ck_assert_int_eq(be->ops->host_register(be, m, 4096), -ENOMEM);
	ck_assert_int_eq(be->ops->host_unregister(be, m), -ENOENT);
	ck_assert_int_eq(
		fk.inject("cuMemHostRegister", 1, CUDRV_ERROR_NOT_PERMITTED),
		0);
	ck_assert_int_eq(be->ops->host_register(be, m, 4096), -EPERM);
	/* Left registered by the caller: unpinned by destroy. */
	ck_assert_int_eq(be->ops->host_register(be, m, 4096), 0);
	ck_assert_int_eq(be->ops->host_register(be, m + 7 * 4096, 4096), 0);
	vkv_backend_destroy(be);
	ck_assert_uint_eq(stats().host_registered, 0);
	munmap(m, 8 * 4096);
}
END_TEST

/* Thousands of ranges, registered out of order: the lookup finds each. */
START_TEST(test_many_ranges)
{
	struct vkv_backend *be = open_be();
	size_t n = 2048, i, k;
	char *m = map_host(n * 4096);
	uintptr_t va;
	vkv_handle_t h;

	load_hostreg();
	ck_assert_int_eq(be->ops->reserve(be, G, &va), 0);
	ck_assert_int_eq(be->ops->create(be, G, &h), 0);
	ck_assert_int_eq(be->ops->map(be, va, G, h), 0);
	ck_assert_int_eq(be->ops->set_access(be, va, G), 0);
	/* Every other page, in a scrambled order (1031 is odd: a bijection). */
	for (i = 0; i < n / 2; i++) {
		k = (i * 1031) % (n / 2);
		ck_assert_int_eq(
			be->ops->host_register(be, m + 2 * k * 4096, 4096), 0);
	}
	for (k = 0; k < n; k++) {
		char *p = m + k * 4096 + 100;
		int64_t before = served(m + k * 4096);

		ck_assert_int_eq(
			be->ops->copy(be, p, (void *)va, 64, VKV_COPY_TO_HOST),
			0);
		if (k % 2)
			ck_assert_int_eq(before, -1);
		else
			ck_assert_int_eq(served(m + k * 4096), before + 64);
	}
	for (i = 0; i < n / 2; i += 2)
		ck_assert_int_eq(be->ops->host_unregister(be, m + 2 * i * 4096),
				 0);
	ck_assert_uint_eq(stats().host_registered, 1 + n / 4);
	vkv_backend_destroy(be);
	ck_assert_uint_eq(stats().host_registered, 0);
	munmap(m, n * 4096);
}
END_TEST

/*
 * Direct copies both ways, each checked on its own against the fake's
 * memory; a copy straddling the end of a registered range, or two adjacent
 * ranges, is staged and still right.
 */
START_TEST(test_direct_copies)
{
	struct vkv_backend *be = open_be();
	size_t reg = 3 * G, n = 3 * G - 4096, off = 777, i;
	unsigned char *m = map_host(4 * G), *p = m + 4096;
	struct fakecuda_stats st;
	vkv_handle_t hd[4];
	uint64_t htod, dtoh;
	uintptr_t va;

	load_hostreg();
	ck_assert_int_eq(be->ops->reserve(be, 4 * G, &va), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(be->ops->create(be, G, &hd[i]), 0);
		ck_assert_int_eq(be->ops->map(be, va + i * G, G, hd[i]), 0);
	}
	ck_assert_int_eq(be->ops->set_access(be, va, 4 * G), 0);
	ck_assert_int_eq(be->ops->host_register(be, m, reg), 0);
	ck_assert_int_eq(be->ops->host_register(be, m + reg, G), 0);

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + 7);
	st = stats();
	htod = fk.calls("cuMemcpyHtoDAsync");
	ck_assert_int_eq(
		be->ops->copy(be, (void *)(va + off), p, n, VKV_COPY_FROM_HOST),
		0);
	ck_assert_mem_eq((void *)(va + off), p, n);
	/* One DMA from the caller's memory, none through the staging. */
	ck_assert_uint_eq(fk.calls("cuMemcpyHtoDAsync"), htod + 1);
	ck_assert_int_eq(served(m), n);
	ck_assert_uint_eq(stats().async_bytes_registered,
			  st.async_bytes_registered + n);
	for (i = 0; i < n; i++)
		((unsigned char *)va)[off + i] = (unsigned char)(i * 17 + 5);
	dtoh = fk.calls("cuMemcpyDtoHAsync");
	ck_assert_int_eq(
		be->ops->copy(be, p, (void *)(va + off), n, VKV_COPY_TO_HOST),
		0);
	ck_assert_mem_eq(p, (void *)(va + off), n);
	ck_assert_uint_eq(fk.calls("cuMemcpyDtoHAsync"), dtoh + 1);
	ck_assert_int_eq(served(m), 2 * n);

	/* Over the end of the first range, into the next: staged. */
	p = m + reg - 5000;
	for (i = 0; i < 2 * G; i++)
		p[i] = (unsigned char)(i * 13 + 1);
	ck_assert_int_eq(
		be->ops->copy(be, (void *)va, p, 2 * G, VKV_COPY_FROM_HOST), 0);
	ck_assert_mem_eq((void *)va, p, 2 * G);
	memset((void *)va, 0x3c, 2 * G);
	ck_assert_int_eq(
		be->ops->copy(be, p, (void *)va, 2 * G, VKV_COPY_TO_HOST), 0);
	for (i = 0; i < 2 * G; i++)
		ck_assert_int_eq(p[i], 0x3c);
	/* Over the end of the last range, into unregistered memory. */
	p = m + 4 * G - 4096;
	ck_assert_int_eq(be->ops->host_unregister(be, m + reg), 0);
	ck_assert_int_eq(be->ops->host_register(be, m + reg, G - 4096), 0);
	memset(p - 100, 0x5d, 200);
	ck_assert_int_eq(
		be->ops->copy(be, (void *)va, p - 100, 200, VKV_COPY_FROM_HOST),
		0);
	ck_assert_int_eq(((unsigned char *)va)[0], 0x5d);
	ck_assert_int_eq(((unsigned char *)va)[199], 0x5d);
	/* Neither registered range served those: the staging did. */
	ck_assert_int_eq(served(m), 2 * n);
	ck_assert_int_eq(served(m + reg), 0);
	ck_assert_uint_eq(stats().pageable_async, st.pageable_async);
	ck_assert_uint_eq(stats().invalid_calls, st.invalid_calls);
	ck_assert_int_eq(be->ops->host_unregister(be, m), 0);
	ck_assert_int_eq(be->ops->host_unregister(be, m + reg), 0);
	/* Unregistered now: staged again, still right. */
	memset(m, 0x71, G);
	ck_assert_int_eq(
		be->ops->copy(be, (void *)va, m, G, VKV_COPY_FROM_HOST), 0);
	ck_assert_mem_eq((void *)va, m, G);
	ck_assert_int_eq(be->ops->unmap(be, va, 4 * G), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(be->ops->release(be, hd[i]), 0);
	ck_assert_int_eq(be->ops->unreserve(be, va, 4 * G), 0);
	vkv_backend_destroy(be);
	munmap(m, 4 * G);
}
END_TEST

/* Registration from one thread while another copies, direct and staged. */
struct churn {
	struct vkv_backend *be;
	char *m;
	int ret;
};

static void *churn_fn(void *arg)
{
	struct churn *ch = arg;
	int i;

	for (i = 0; i < 300 && !ch->ret; i++) {
		char *p = ch->m + (size_t)(i % 8) * 4096;

		ch->ret |= ch->be->ops->host_register(ch->be, p, 4096);
		ch->ret |= ch->be->ops->host_unregister(ch->be, p);
	}
	return NULL;
}

START_TEST(test_register_while_copying)
{
	struct vkv_backend *be = open_be();
	char *m = map_host(8 * 4096), *mine = map_host(G);
	struct churn ch = {be, m, 0};
	char *back = malloc(G);
	pthread_t t;
	uintptr_t va;
	vkv_handle_t h;
	int i;

	ck_assert_int_eq(be->ops->reserve(be, G, &va), 0);
	ck_assert_int_eq(be->ops->create(be, G, &h), 0);
	ck_assert_int_eq(be->ops->map(be, va, G, h), 0);
	ck_assert_int_eq(be->ops->set_access(be, va, G), 0);
	ck_assert_int_eq(be->ops->host_register(be, mine, G), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, churn_fn, &ch), 0);
	for (i = 0; i < 40; i++) {
		memset(mine, i, 65536);
		ck_assert_int_eq(be->ops->copy(be, (void *)va, mine, 65536,
					       VKV_COPY_FROM_HOST),
				 0);
		ck_assert_int_eq(be->ops->copy(be, back, (void *)va, 65536,
					       VKV_COPY_TO_HOST),
				 0);
		ck_assert_int_eq(back[0], i);
		ck_assert_int_eq(back[65535], i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ch.ret, 0);
	ck_assert_int_eq(be->ops->host_unregister(be, mine), 0);
	ck_assert_uint_eq(stats().host_registered, 1);
	ck_assert_uint_eq(stats().invalid_calls, 0);
	vkv_backend_destroy(be);
	free(back);
	munmap(mine, G);
	munmap(m, 8 * 4096);
}
END_TEST

/* A sequence swapped to the host tier and back on a cache. */
struct swap_bytes {
	uint64_t direct; /* served by registrations other than the staging */
	uint64_t staged; /* served by the staging buffers */
	uint64_t pageable;
};

#define SW_TOKENS 6000u

static const struct vkv_geometry swap_geom = {
	.layers = 2,
	.kv_heads = 2,
	.head_dim = 64,
	.elem_size = 2,
	.max_seqs = 4,
	.max_tokens = 16384,
	.layout = VKV_LAYOUT_TOKEN_MAJOR_KV,
};

static unsigned char pattern(uint32_t l, int kv, uint32_t t, size_t i)
{
	return (unsigned char)(l * 131 + kv * 71 + t * 7 + i * 3 + 1);
}

/* Swap out and in; 0 with the bytes counted, or a line number. */
static int swap_round(struct vkv_config *c_cfg, struct swap_bytes *b)
{
	const size_t row = swap_geom.kv_heads * swap_geom.head_dim * 2;
	struct fakecuda_hostreg before[8], after[64];
	size_t nb, na, i, j, k;
	struct fakecuda_stats st;
	struct vkv_cache *c;
	uint32_t t, l;
	int slot, kv;

	if (vkv_cache_create(&swap_geom, c_cfg, &c))
		return __LINE__;
	if (strcmp(vkv_cache_backend(c), "cuda"))
		return __LINE__;
	slot = vkv_seq_open(c);
	if (slot < 0 || vkv_seq_reserve(c, slot, SW_TOKENS))
		return __LINE__;
	for (t = 0; t < SW_TOKENS; t++)
		for (l = 0; l < swap_geom.layers; l++)
			for (kv = 0; kv < 2; kv++) {
				unsigned char *p =
					vkv_token_ptr(c, l, kv, slot, t);

				for (k = 0; k < row; k++)
					p[k] = pattern(l, kv, t, k);
			}
	/* The host tier has no slab yet: these are the staging's. */
	nb = hostregs(before, 8);
	st = stats();
	if (nb > 8 || vkv_seq_swap_out(c, slot, VKV_TIER_HOST) ||
	    vkv_seq_swap_wait(c, slot))
		return __LINE__;
	if (vkv_seq_swap_in(c, slot) || vkv_seq_swap_wait(c, slot))
		return __LINE__;
	for (t = 0; t < SW_TOKENS; t++)
		for (l = 0; l < swap_geom.layers; l++)
			for (kv = 0; kv < 2; kv++) {
				unsigned char *p =
					vkv_token_ptr(c, l, kv, slot, t);

				for (k = 0; k < row; k++)
					if (p[k] != pattern(l, kv, t, k))
						return __LINE__;
			}
	na = hostregs(after, 64);
	if (na > 64)
		return __LINE__;
	memset(b, 0, sizeof(*b));
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb && before[j].p != after[i].p; j++)
			;
		if (j < nb)
			b->staged +=
				after[i].async_bytes - before[j].async_bytes;
		else
			b->direct += after[i].async_bytes;
	}
	b->pageable = stats().async_bytes_pageable - st.async_bytes_pageable;
	vkv_cache_destroy(c);
	if (stats().host_registered || stats().invalid_calls)
		return __LINE__;
	return 0;
}

static int swap_logs;
static char swap_log[512];

static void swap_log_fn(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	if (strstr(msg, "not registered")) {
		swap_logs++;
		snprintf(swap_log, sizeof(swap_log), "%s", msg);
	}
}

static void swap_cfg(struct vkv_config *c_cfg)
{
	vkv_config_init(c_cfg);
	c_cfg->backend = VKV_BACKEND_CUDA;
	c_cfg->host_budget = 64 * MIB;
	c_cfg->log_fn = swap_log_fn;
	c_cfg->log_level = VKV_LOG_DEBUG;
	swap_logs = 0;
}

/* Seen with data: bytes of K and V saved, once out and once in. */
#define SW_BYTES                                                               \
	(2ull * SW_TOKENS * swap_geom.layers * 2 * swap_geom.kv_heads *        \
	 swap_geom.head_dim * 2)

START_TEST(test_swap_direct)
{
	struct vkv_config c_cfg;
	struct swap_bytes b;

	load_hostreg();
	swap_cfg(&c_cfg);
	ck_assert_int_eq(swap_round(&c_cfg, &b), 0);
	ck_assert_uint_ge(b.direct, SW_BYTES);
	ck_assert_uint_eq(b.staged, 0);
	ck_assert_uint_eq(b.pageable, 0);
	ck_assert_int_eq(swap_logs, 0);
}
END_TEST

/* The driver refuses the host tier's slab: said once, copies staged. */
START_TEST(test_swap_register_refused)
{
	struct vkv_config c_cfg;
	struct swap_bytes b;

	load_hostreg();
	swap_cfg(&c_cfg);
	/* The cache's backend pins its staging first, then the slab. */
	ck_assert_int_eq(
		fk.inject("cuMemHostRegister", 2, CUDRV_ERROR_OUT_OF_MEMORY),
		0);
	ck_assert_int_eq(swap_round(&c_cfg, &b), 0);
	ck_assert_uint_eq(b.direct, 0);
	ck_assert_uint_ge(b.staged, SW_BYTES);
	ck_assert_uint_eq(b.pageable, 0);
	ck_assert_int_eq(swap_logs, 1);
	ck_assert_ptr_nonnull(strstr(swap_log, "swap copies are staged"));
}
END_TEST

/*
 * The same through the environment (FAKECUDA_FAIL, counted from load): a
 * fresh process, whose second cuMemHostRegister is the host tier's slab.
 */
int hostreg_env_case(const char *name)
{
	struct vkv_config c_cfg;
	struct swap_bytes b;
	int ret;

	if (strcmp(name, "hostreg-refused"))
		return 100;
	if (!load_fake())
		return 99;
	*(void **)&hostregs = dlsym(fk.lib, "fakecuda_hostregs");
	if (!hostregs)
		return 98;
	swap_cfg(&c_cfg);
	ret = swap_round(&c_cfg, &b);
	if (ret) {
		printf("  hostreg-refused: failed at line %d\n", ret);
		return 1;
	}
	if (b.direct || b.staged < SW_BYTES || swap_logs != 1)
		return 2;
	printf("  hostreg-refused: %s\n", swap_log);
	return 0;
}

START_TEST(test_swap_register_refused_env)
{
	const char *const env[] = {"FAKECUDA_FAIL", "cuMemHostRegister:2",
				   NULL};

	ck_assert_int_eq(run_env("hostreg-refused", env), 0);
}
END_TEST

void add_hostreg_tests(TCase *tc)
{
	tcase_add_test(tc, test_fake_rules);
	tcase_add_test(tc, test_register_errors);
	tcase_add_test(tc, test_many_ranges);
	tcase_add_test(tc, test_direct_copies);
	tcase_add_test(tc, test_register_while_copying);
	tcase_add_test(tc, test_swap_direct);
	tcase_add_test(tc, test_swap_register_refused);
	tcase_add_test(tc, test_swap_register_refused_env);
}
