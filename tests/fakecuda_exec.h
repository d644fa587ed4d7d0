/* SPDX-License-Identifier: MIT */
/*
 * fakecuda_exec.h - what the suites of the fake driver's execution model
 * (test_fakecuda_exec, test_fakecuda_graph) share: the kernels they
 * register, a context, and short forms of the calls they repeat.
 */
#ifndef VKV_TEST_FAKECUDA_EXEC_H
#define VKV_TEST_FAKECUDA_EXEC_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check_util.h"
#include "fakecuda.h"

#define MIB (1024ull * 1024ull)
#define G (2 * MIB)
#define OK(call) ck_assert_uint_eq((call), CUDRV_SUCCESS)

static const char image[] = ".fakecuda fill copy inc";

static const struct cudrv_mem_alloc_prop prop0 = {
	.type = CUDRV_MEM_ALLOCATION_TYPE_PINNED,
	.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
};

static const struct cudrv_mem_access_desc rw0 = {
	.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
	.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE,
};

static cudrv_context ctx;

/* fill(dst, n, byte): every byte of [dst, dst + n). */
static inline void k_fill(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr dst = *(cudrv_deviceptr *)p[0];
	size_t n = *(size_t *)p[1], done;
	unsigned char buf[4096];

	memset(buf, *(unsigned char *)p[2], sizeof(buf));
	for (done = 0; done < n; done += sizeof(buf)) {
		size_t c = n - done < sizeof(buf) ? n - done : sizeof(buf);

		if (fakecuda_dev_write(l, dst + done, buf, c))
			return;
	}
}

/* copy(dst, src, n) */
static inline void k_copy(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr dst = *(cudrv_deviceptr *)p[0];
	cudrv_deviceptr src = *(cudrv_deviceptr *)p[1];
	size_t n = *(size_t *)p[2];
	char buf[256];

	ck_assert_uint_le(n, sizeof(buf));
	if (!fakecuda_dev_read(l, buf, src, n))
		fakecuda_dev_write(l, dst, buf, n);
}

/* inc(p): *(uint64_t *)p += 1, read and written on the "device". */
static inline void k_inc(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr a = *(cudrv_deviceptr *)p[0];
	uint64_t v;

	if (!fakecuda_dev_read(l, &v, a, sizeof(v))) {
		v++;
		fakecuda_dev_write(l, a, &v, sizeof(v));
	}
}

static inline void register_kernels(void)
{
	const size_t fill[] = {sizeof(cudrv_deviceptr), sizeof(size_t), 1};
	const size_t copy[] = {sizeof(cudrv_deviceptr), sizeof(cudrv_deviceptr),
			       sizeof(size_t)};
	const size_t inc[] = {sizeof(cudrv_deviceptr)};

	if (fakecuda_register_kernel("fill", k_fill, 3, fill) ||
	    fakecuda_register_kernel("copy", k_copy, 3, copy) ||
	    fakecuda_register_kernel("inc", k_inc, 1, inc)) {
		fprintf(stderr, "cannot register the kernels\n");
		exit(1);
	}
}

static inline void init(void)
{
	OK(cuInit(0));
	OK(cuDevicePrimaryCtxRetain(&ctx, 0));
	OK(cuCtxSetCurrent(ctx));
}

static inline cudrv_function function(const char *name)
{
	cudrv_module m;
	cudrv_function f;

	OK(cuModuleLoadData(&m, image));
	OK(cuModuleGetFunction(&f, m, name));
	return f;
}

static inline cudrv_result fill(cudrv_function f, cudrv_deviceptr dst, size_t n,
				unsigned char byte, cudrv_stream s)
{
	void *params[] = {&dst, &n, &byte};

	return cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL);
}

static inline cudrv_result inc(cudrv_function f, cudrv_deviceptr a,
			       cudrv_stream s)
{
	void *params[] = {&a};

	return cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
}

static inline size_t free_mem(void)
{
	size_t fr = 0, total = 0;

	OK(cuMemGetInfo_v2(&fr, &total));
	ck_assert_uint_le(fr, total);
	return fr;
}

static inline struct fakecuda_stats stats(void)
{
	struct fakecuda_stats st;

	fakecuda_get_stats(&st);
	return st;
}

/* A VMM range of @size at a new reservation, mapped with access. */
static inline cudrv_deviceptr vmm_range(size_t size, cudrv_mem_handle *h)
{
	cudrv_deviceptr va;

	OK(cuMemAddressReserve(&va, size, 0, 0, 0));
	OK(cuMemCreate(h, size, &prop0, 0));
	OK(cuMemMap(va, size, 0, *h, 0));
	OK(cuMemSetAccess(va, size, &rw0, 1));
	return va;
}

static inline unsigned int status(cudrv_stream s)
{
	unsigned int st = 99;

	OK(cuStreamIsCapturing(s, &st));
	return st;
}

#endif /* VKV_TEST_FAKECUDA_EXEC_H */
