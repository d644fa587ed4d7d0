/* SPDX-License-Identifier: MIT */
/*
 * test_fakecuda.c - the test double's own semantics, rule by rule, so that
 * the backend's tests can trust it. Linked against the fake; every test runs
 * in its own process (Check's fork mode), so each starts before cuInit. The
 * environment knobs are tested by re-executing this program with them set.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/check_util.h"
#include "fakecuda.h"

#define MIB (1024ull * 1024ull)
#define G (2 * MIB)

static const struct cudrv_mem_alloc_prop prop0 = {
	.type = CUDRV_MEM_ALLOCATION_TYPE_PINNED,
	.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
};

static const struct cudrv_mem_access_desc rw0 = {
	.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
	.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE,
};

static cudrv_context ctx;

static void init(void)
{
	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuDevicePrimaryCtxRetain(&ctx, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxSetCurrent(ctx), CUDRV_SUCCESS);
}

static cudrv_deviceptr reserve(size_t size)
{
	cudrv_deviceptr va = 0;

	ck_assert_uint_eq(cuMemAddressReserve(&va, size, 0, 0, 0),
			  CUDRV_SUCCESS);
	return va;
}

static cudrv_mem_handle create(size_t size)
{
	cudrv_mem_handle h = 0;

	ck_assert_uint_eq(cuMemCreate(&h, size, &prop0, 0), CUDRV_SUCCESS);
	return h;
}

static struct fakecuda_stats stats(void)
{
	struct fakecuda_stats st;

	fakecuda_get_stats(&st);
	return st;
}

/* Touch @p in a child: true if the child died instead of finishing. */
static bool touch_crashes(volatile char *p, bool write)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		/* Not the sanitizers' report: just the kernel's verdict. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		if (write)
			*p = 1;
		else
			(void)*p;
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

START_TEST(test_init_required)
{
	int n = -1;
	cudrv_deviceptr va;

	ck_assert_uint_eq(cuDeviceGetCount(&n), CUDRV_ERROR_NOT_INITIALIZED);
	ck_assert_uint_eq(cuMemAddressReserve(&va, G, 0, 0, 0),
			  CUDRV_ERROR_NOT_INITIALIZED);
	ck_assert_uint_eq(cuInit(1), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuDeviceGetCount(&n), CUDRV_SUCCESS);
	ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(test_devices)
{
	cudrv_device d;
	char bus[32];
	int v = -1;
	size_t total = 0;

	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuDeviceGet(&d, 1), CUDRV_ERROR_INVALID_DEVICE);
	ck_assert_uint_eq(cuDeviceGet(&d, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(
		cuDeviceGetAttribute(
			&v,
			CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
			d),
		CUDRV_SUCCESS);
	ck_assert_int_eq(v, 1);
	ck_assert_uint_eq(cuDeviceGetPCIBusId(bus, 12, d),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuDeviceGetPCIBusId(bus, sizeof(bus), d),
			  CUDRV_SUCCESS);
	ck_assert_str_eq(bus, "0000:00:00.0");
	ck_assert_uint_eq(cuDeviceTotalMem_v2(&total, d), CUDRV_SUCCESS);
	ck_assert_uint_eq(total, 16ull << 30);
}
END_TEST

START_TEST(test_contexts)
{
	cudrv_context c = (cudrv_context)1;

	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxGetCurrent(&c), CUDRV_SUCCESS);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(cuCtxPopCurrent_v2(&c), CUDRV_ERROR_INVALID_CONTEXT);
	ck_assert_uint_eq(cuDevicePrimaryCtxRelease_v2(0),
			  CUDRV_ERROR_INVALID_CONTEXT);
	ck_assert_uint_eq(cuCtxSetCurrent((cudrv_context)&c),
			  CUDRV_ERROR_INVALID_CONTEXT);
	ck_assert_uint_eq(cuDevicePrimaryCtxRetain(&ctx, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxPushCurrent_v2(ctx), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxGetCurrent(&c), CUDRV_SUCCESS);
	ck_assert_ptr_eq(c, ctx);
	ck_assert_uint_eq(cuCtxPopCurrent_v2(&c), CUDRV_SUCCESS);
	ck_assert_ptr_eq(c, ctx);
	ck_assert_uint_eq(cuCtxSetCurrent(ctx), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxSetCurrent(NULL), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuCtxGetCurrent(&c), CUDRV_SUCCESS);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(stats().ctx_refs, 1);
	ck_assert_uint_eq(cuDevicePrimaryCtxRelease_v2(0), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().ctx_refs, 0);
}
END_TEST

START_TEST(test_granularity)
{
	struct cudrv_mem_alloc_prop p = prop0;
	size_t g = 0;

	init();
	ck_assert_uint_eq(
		cuMemGetAllocationGranularity(
			&g, &p, CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED),
		CUDRV_SUCCESS);
	ck_assert_uint_eq(g, G);
	ck_assert_uint_eq(cuMemGetAllocationGranularity(
				  &g, &p, CUDRV_MEM_ALLOC_GRANULARITY_MINIMUM),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(g, G);
	ck_assert_uint_eq(cuMemGetAllocationGranularity(&g, &p, 7),
			  CUDRV_ERROR_INVALID_VALUE);
	p.location.id = 3;
	ck_assert_uint_eq(cuMemGetAllocationGranularity(&g, &p, 0),
			  CUDRV_ERROR_INVALID_DEVICE);
	p.location.type = 2; /* host */
	ck_assert_uint_eq(cuMemGetAllocationGranularity(&g, &p, 0),
			  CUDRV_ERROR_INVALID_VALUE);
}
END_TEST

START_TEST(test_reserve)
{
	cudrv_deviceptr va;

	init();
	ck_assert_uint_eq(cuMemAddressReserve(&va, G + 1, 0, 0, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAddressReserve(&va, G, 3 * G, 0, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAddressReserve(&va, G, 0, 0, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAddressReserve(&va, 0, 0, 0, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	va = reserve(8 * G);
	ck_assert_uint_eq(va % G, 0);
	ck_assert_int_eq(fakecuda_query(va, NULL, NULL), 1);
	ck_assert_int_eq(fakecuda_query(va + 8 * G, NULL, NULL), -1);
	ck_assert_uint_eq(stats().reservations, 1);
	ck_assert_uint_eq(cuMemAddressFree(va, 4 * G),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAddressFree(va + G, 7 * G),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAddressFree(va, 8 * G), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().reservations, 0);
	ck_assert_uint_eq(cuMemAddressFree(va, 8 * G),
			  CUDRV_ERROR_INVALID_VALUE);
}
END_TEST

START_TEST(test_create_and_oom)
{
	struct cudrv_mem_alloc_prop p = prop0;
	cudrv_mem_handle h[5];
	size_t fr = 0, total = 0;
	int i;

	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	/* No current context: the call operates on none. */
	ck_assert_uint_eq(cuMemGetInfo_v2(&fr, &total),
			  CUDRV_ERROR_INVALID_CONTEXT);
	init();
	fakecuda_set_mem(4 * G);
	ck_assert_uint_eq(cuMemCreate(&h[0], G / 2, &p, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemCreate(&h[0], G, &p, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	p.type = 2; /* managed */
	ck_assert_uint_eq(cuMemCreate(&h[0], G, &p, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	p = prop0;
	p.location.id = 1;
	ck_assert_uint_eq(cuMemCreate(&h[0], G, &p, 0),
			  CUDRV_ERROR_INVALID_DEVICE);
	for (i = 0; i < 4; i++)
		h[i] = create(G);
	ck_assert_uint_eq(cuMemCreate(&h[4], G, &prop0, 0),
			  CUDRV_ERROR_OUT_OF_MEMORY);
	ck_assert_uint_eq(cuMemGetInfo_v2(&fr, &total), CUDRV_SUCCESS);
	ck_assert_uint_eq(fr, 0);
	ck_assert_uint_eq(total, 4 * G);
	ck_assert_uint_eq(cuMemRelease(h[1]), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemRelease(h[1]), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemGetInfo_v2(&fr, &total), CUDRV_SUCCESS);
	ck_assert_uint_eq(fr, G);
	h[4] = create(G);
	ck_assert_uint_eq(stats().allocs, 4);
	ck_assert_uint_eq(stats().mem_used, 4 * G);
}
END_TEST

START_TEST(test_map_rules)
{
	cudrv_deviceptr va, other;
	cudrv_mem_handle h, h2;

	init();
	va = reserve(4 * G);
	other = reserve(2 * G);
	h = create(2 * G);
	h2 = create(G);
	/* Unaligned address, size; nonzero offset ("must be zero"); flags. */
	ck_assert_uint_eq(cuMemMap(va + 4096, G, 0, h2, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, G + 4096, 0, h2, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, G, G, h, 0), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h2, 1), CUDRV_ERROR_INVALID_VALUE);
	/* Larger than the allocation, outside or across reservations. */
	ck_assert_uint_eq(cuMemMap(va, 2 * G, 0, h2, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va + 3 * G, 2 * G, 0, h, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va - 64 * G, G, 0, h2, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, G, 0, 12345, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(stats().mappings, 0);
	/* A part of an allocation, then over a mapped range. */
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h2, 0), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va + G, 2 * G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va + 2 * G, G, 0, h2, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	/* One handle at two addresses. */
	ck_assert_uint_eq(cuMemMap(other, G, 0, h2, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va + 3 * G, G, 0, h2, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().mappings, 4);
	ck_assert_uint_eq(stats().mapped_bytes, 5 * G);
	/* Freeing a reservation that still has mappings is refused. */
	ck_assert_uint_eq(cuMemAddressFree(other, 2 * G),
			  CUDRV_ERROR_INVALID_VALUE);
}
END_TEST

START_TEST(test_access_before_set)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h;
	unsigned int prot = 99;
	uint64_t hh = 0;
	char *p;

	init();
	va = reserve(4 * G);
	p = (char *)(uintptr_t)va;
	h = create(G);
	ck_assert(touch_crashes(p, false)); /* reserved only */
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_int_eq(fakecuda_query(va, &prot, &hh), 0);
	ck_assert_uint_eq(prot, CUDRV_MEM_ACCESS_FLAGS_PROT_NONE);
	ck_assert_uint_eq(hh, h);
	ck_assert(touch_crashes(p, false));
	ck_assert(touch_crashes(p + G - 1, true));
	ck_assert_uint_eq(cuMemSetAccess(va, G, &rw0, 1), CUDRV_SUCCESS);
	ck_assert(!touch_crashes(p, true));
	p[0] = 42;
	ck_assert_int_eq(p[0], 42);
	ck_assert_uint_eq(stats().accessible_bytes, G);
	/* Access belongs to the mapping: a new one starts with none. */
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_SUCCESS);
	ck_assert_int_eq(fakecuda_query(va, NULL, NULL), 1);
	ck_assert(touch_crashes(p, false));
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert(touch_crashes(p, false));
	ck_assert_uint_eq(cuMemSetAccess(va, G, &rw0, 1), CUDRV_SUCCESS);
	ck_assert_int_eq(p[0], 42); /* same physical memory */
	ck_assert_uint_eq(stats().touched_before_access, 0);
}
END_TEST

START_TEST(test_set_access_rules)
{
	struct cudrv_mem_access_desc d = rw0;
	cudrv_deviceptr va;
	cudrv_mem_handle h1, h2;

	init();
	va = reserve(8 * G);
	h1 = create(2 * G);
	h2 = create(G);
	ck_assert_uint_eq(cuMemMap(va, 2 * G, 0, h1, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va + 2 * G, G, 0, h2, 0), CUDRV_SUCCESS);
	/* Not fully mapped; a part of a mapping; unaligned; empty. */
	ck_assert_uint_eq(cuMemSetAccess(va, 4 * G, &rw0, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemSetAccess(va + G, 2 * G, &rw0, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemSetAccess(va, G + 4096, &rw0, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemSetAccess(va, 3 * G, &rw0, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	d.flags = 2;
	ck_assert_uint_eq(cuMemSetAccess(va, 3 * G, &d, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	d = rw0;
	d.location.id = 5;
	ck_assert_uint_eq(cuMemSetAccess(va, 3 * G, &d, 1),
			  CUDRV_ERROR_INVALID_DEVICE);
	ck_assert_uint_eq(stats().accessible_bytes, 0);
	/* One call over a run of whole mappings. */
	ck_assert_uint_eq(cuMemSetAccess(va, 3 * G, &rw0, 1), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().accessible_bytes, 3 * G);
	memset((void *)(uintptr_t)va, 7, 3 * G);
	/* Read-only really is read-only. */
	d = rw0;
	d.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READ;
	ck_assert_uint_eq(cuMemSetAccess(va + 2 * G, G, &d, 1), CUDRV_SUCCESS);
	ck_assert(!touch_crashes((char *)(uintptr_t)(va + 2 * G), false));
	ck_assert(touch_crashes((char *)(uintptr_t)(va + 2 * G), true));
}
END_TEST

START_TEST(test_unmap_rules)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h1, h2;

	init();
	va = reserve(8 * G);
	h1 = create(2 * G);
	h2 = create(G);
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, 2 * G, 0, h1, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va + 2 * G, G, 0, h2, 0), CUDRV_SUCCESS);
	/* A sub-range, a range with an unmapped tail, unaligned. */
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(va + G, 2 * G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(va, 4 * G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(va, 3 * G - 4096),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(stats().mappings, 2);
	/* Whole mappings, several at once. */
	ck_assert_uint_eq(cuMemUnmap(va, 3 * G), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().mappings, 0);
	ck_assert_uint_eq(cuMemUnmap(va, 3 * G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va + 4 * G, G, 0, h2, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemAddressFree(va, 8 * G),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(va + 4 * G, G), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemAddressFree(va, 8 * G), CUDRV_SUCCESS);
}
END_TEST

START_TEST(test_release_deferred)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h;
	char *p;

	init();
	va = reserve(4 * G);
	p = (char *)(uintptr_t)va;
	h = create(G);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va + 2 * G, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemSetAccess(va, G, &rw0, 1), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemSetAccess(va + 2 * G, G, &rw0, 1),
			  CUDRV_SUCCESS);
	p[5] = 9;
	ck_assert_uint_eq(cuMemRelease(h), CUDRV_SUCCESS);
	/* Still backed while mapped; the handle itself is gone. */
	ck_assert_uint_eq(stats().allocs, 1);
	ck_assert_uint_eq(stats().allocs_released, 1);
	ck_assert_uint_eq(stats().mem_used, G);
	ck_assert_int_eq(p[2 * G + 5], 9);
	ck_assert_uint_eq(cuMemRelease(h), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va + G, G, 0, h, 0),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().allocs, 1);
	ck_assert_int_eq(p[2 * G + 5], 9);
	ck_assert_uint_eq(cuMemUnmap(va + 2 * G, G), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().allocs, 0);
	ck_assert_uint_eq(stats().allocs_released, 0);
	ck_assert_uint_eq(stats().mem_used, 0);
}
END_TEST

START_TEST(test_copies)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h;
	cudrv_stream s;
	cudrv_event e;
	char buf[4096], back[4096];
	size_t fr, total;

	init();
	ck_assert_uint_eq(cuStreamCreate(&s, 2), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(cuEventCreate(&e, CUDRV_EVENT_DISABLE_TIMING),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_SUCCESS);
	va = reserve(2 * G);
	h = create(G);
	memset(buf, 0x5a, sizeof(buf));
	/* Not mapped: an invalid pointer, nothing touched. */
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(va, buf, sizeof(buf), s),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemSetAccess(va, G, &rw0, 1), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemHostRegister_v2(buf, sizeof(buf), 0),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemHostRegister_v2(buf, 16, 0),
			  CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	memset(back, 0, sizeof(back));
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(va + 100, buf, sizeof(buf), s),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemcpyDtoHAsync_v2(back, va + 100, sizeof(back), s),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(cuEventRecord(e, s), CUDRV_SUCCESS);
	/* Queued, not done: the host buffers are the DMA's until a wait. */
	ck_assert_int_eq(back[0], 0);
	ck_assert_int_eq(*(char *)(uintptr_t)(va + 100), 0);
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_SUCCESS);
	ck_assert_mem_eq(back, buf, sizeof(buf));
	/* A source changed before the wait is what the copy reads. */
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(va, buf, 1, s), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuEventRecord(e, s), CUDRV_SUCCESS);
	buf[0] = 0x11;
	ck_assert_uint_eq(cuMemcpyDtoHAsync_v2(back, va, 1, s), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_SUCCESS);
	ck_assert_int_eq(*(char *)(uintptr_t)va, 0x11);
	ck_assert_int_eq(back[0], 0x5a); /* after the event: not run yet */
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_SUCCESS);
	ck_assert_int_eq(back[0], 0x11);
	buf[0] = 0x5a;
	ck_assert_uint_eq(stats().pageable_async, 2); /* back[] */
	ck_assert_uint_eq(cuMemHostUnregister(back),
			  CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED);
	ck_assert_uint_eq(cuMemHostUnregister(buf), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().host_registered, 0);
	/*
	 * Mapped without access: an illegal address when the copy runs,
	 * reported by the wait, and the context dies.
	 */
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(va, buf, sizeof(buf), s),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().touched_before_access, 0);
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(stats().touched_before_access, sizeof(buf));
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(va, buf, sizeof(buf), s),
			  CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(cuMemGetInfo_v2(&fr, &total),
			  CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(cuStreamDestroy_v2(s), CUDRV_SUCCESS);
	ck_assert_uint_eq(cuStreamDestroy_v2(s), CUDRV_ERROR_INVALID_HANDLE);
	ck_assert_uint_eq(cuEventDestroy_v2(e), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().streams + stats().events, 0);
}
END_TEST

START_TEST(test_proc_address)
{
	unsigned int st = 99;
	void *p = NULL;

	ck_assert_uint_eq(
		cuGetProcAddress_v2("cuMemGetInfo", &p, 12000, 0, &st),
		CUDRV_SUCCESS);
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_SUCCESS);
	ck_assert_ptr_eq(p, (void *)cuMemGetInfo_v2);
	/* Not found at that version: success, no pointer, and the status. */
	p = (void *)&st;
	ck_assert_uint_eq(cuGetProcAddress_v2("cuMemCreate", &p, 10000, 0, &st),
			  CUDRV_SUCCESS);
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
	ck_assert_ptr_null(p);
	/* Base names only, as the reference documents. */
	ck_assert_uint_eq(
		cuGetProcAddress_v2("cuMemGetInfo_v2", &p, 12000, 0, &st),
		CUDRV_SUCCESS);
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(cuGetProcAddress_v2("cuMemMap", &p, 12000, 8, &st),
			  CUDRV_ERROR_INVALID_VALUE);
}
END_TEST

START_TEST(test_fail_injection)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h;

	init();
	va = reserve(4 * G);
	h = create(G);
	ck_assert_int_eq(fakecuda_fail("cuNoSuchThing", 1, 2), -1);
	ck_assert_int_eq(fakecuda_fail("cuMemMap", 2, 2), 0);
	ck_assert_uint_eq(cuMemMap(va, G, 0, h, 0), CUDRV_SUCCESS);
	/* An injected failure changes nothing. */
	ck_assert_uint_eq(cuMemMap(va + G, G, 0, h, 0),
			  CUDRV_ERROR_OUT_OF_MEMORY);
	ck_assert_int_eq(fakecuda_query(va + G, NULL, NULL), 1);
	ck_assert_uint_eq(cuMemMap(va + G, G, 0, h, 0), CUDRV_SUCCESS);
	ck_assert_uint_eq(stats().injected, 1);
	ck_assert_uint_eq(fakecuda_calls("cuMemMap"), 3);
	ck_assert_int_eq(fakecuda_fail("cuMemUnmap", 1, 999), 0);
	fakecuda_fail_clear();
	ck_assert_uint_eq(cuMemUnmap(va, G), CUDRV_SUCCESS);
}
END_TEST

static double ms_of(cudrv_result (*fn)(void))
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_uint_eq(fn(), CUDRV_SUCCESS);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
}

static cudrv_result get_count(void)
{
	int n;

	return cuDeviceGetCount(&n);
}

START_TEST(test_latency_injection)
{
	ck_assert_uint_eq(cuInit(0), CUDRV_SUCCESS);
	ck_assert_int_eq(fakecuda_set_latency_ns("cuDeviceGetCount", 3000000),
			 0);
	fakecuda_latency_enable(1);
	ck_assert_double_ge(ms_of(get_count), 3.0);
	fakecuda_latency_enable(0);
	ck_assert_double_lt(ms_of(get_count), 3.0);
}
END_TEST

static cudrv_deviceptr lat_va;
static cudrv_mem_handle lat_h;

static cudrv_result map_two(void)
{
	return cuMemMap(lat_va, 2 * G, 0, lat_h, 0);
}

/* The published figures are per 2 MiB page: a call over two costs two. */
START_TEST(test_latency_per_size)
{
	init();
	lat_va = reserve(2 * G);
	lat_h = create(2 * G);
	ck_assert_int_eq(fakecuda_set_latency_ns("cuMemMap", 2000000), 0);
	fakecuda_latency_enable(1);
	ck_assert_double_ge(ms_of(map_two), 4.0);
}
END_TEST

/* Many threads, each on its own range: the counters must balance. */
static void *worker(void *arg)
{
	cudrv_deviceptr va = (cudrv_deviceptr)(uintptr_t)arg;
	int i;

	for (i = 0; i < 200; i++) {
		cudrv_mem_handle h;
		unsigned int r = cuMemCreate(&h, G, &prop0, 0);

		r |= cuMemMap(va, G, 0, h, 0);
		r |= cuMemSetAccess(va, G, &rw0, 1);
		*(volatile char *)(uintptr_t)va = (char)i;
		r |= cuMemRelease(h);
		r |= cuMemUnmap(va, G);
		if (r)
			return (void *)1;
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[4];
	void *ret;
	int i;

	init();
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker,
						(void *)(uintptr_t)reserve(G)),
				 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_uint_eq(stats().allocs, 0);
	ck_assert_uint_eq(stats().mappings, 0);
	ck_assert_uint_eq(stats().mem_used, 0);
	ck_assert_uint_eq(stats().invalid_calls, 0);
}
END_TEST

/* Environment knobs: this program, re-run with them set. */

static int env_case(const char *name)
{
	cudrv_deviceptr va;
	cudrv_mem_handle h;
	char bus[32];
	size_t g = 0, total = 0;
	int v = -1;

	if (!strcmp(name, "nodev"))
		return cuInit(0) == CUDRV_ERROR_NO_DEVICE ? 0 : 1;
	if (cuInit(0))
		return 2;
	if (!strcmp(name, "knobs")) {
		cuDriverGetVersion(&v);
		if (v != 11080)
			return 3;
		cuDeviceGetAttribute(
			&v,
			CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
			1);
		cuDeviceGetPCIBusId(bus, sizeof(bus), 1);
		cuMemGetAllocationGranularity(&g, &prop0, 1);
		cuDeviceTotalMem_v2(&total, 0);
		if (v != 0 || strcmp(bus, "0000:3C:00.0") || g != 4 * MIB ||
		    total != 64 * MIB)
			return 4;
		return 0;
	}
	if (!strcmp(name, "fail")) {
		cuMemAddressReserve(&va, 8 * MIB, 0, 0, 0);
		cuMemCreate(&h, 2 * MIB, &prop0, 0);
		if (cuMemMap(va, 2 * MIB, 0, h, 0) ||
		    cuMemMap(va + 2 * MIB, 2 * MIB, 0, h, 0) != 2 ||
		    cuMemMap(va + 2 * MIB, 2 * MIB, 0, h, 0))
			return 5;
		return 0;
	}
	if (!strcmp(name, "latency")) {
		struct timespec a, b;
		double ms;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &a);
		cuDeviceGetCount(&n);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms = (b.tv_sec - a.tv_sec) * 1e3 +
		     (b.tv_nsec - a.tv_nsec) / 1e6;
		return ms >= 2.5 ? 0 : 7;
	}
	if (!strcmp(name, "procaddr")) {
		void *p = (void *)1;
		unsigned int st;

		return cuGetProcAddress_v2("cuInit", &p, 12000, 0, &st) ==
					       CUDRV_ERROR_NOT_FOUND &&
				       !p
			       ? 0
			       : 6;
	}
	return 100;
}

static int run_env(const char *name, const char *const env[])
{
	pid_t pid = fork();
	int st, i;

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		for (i = 0; env[i]; i += 2)
			setenv(env[i], env[i + 1], 1);
		execl("/proc/self/exe", "test_fakecuda", "--env-case", name,
		      (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_env)
{
	const char *const nodev[] = {"FAKECUDA_DEVICES", "0", NULL};
	const char *const knobs[] = {"FAKECUDA_DEVICES",
				     "2",
				     "FAKECUDA_MEM",
				     "64M",
				     "FAKECUDA_GRANULARITY",
				     "4M",
				     "FAKECUDA_VMM",
				     "0",
				     "FAKECUDA_PCI_BUS_ID",
				     "0000:3b:00.0",
				     "FAKECUDA_DRIVER_VERSION",
				     "11080",
				     NULL};
	const char *const fail[] = {"FAKECUDA_FAIL", "cuMemMap:2:2", NULL};
	const char *const procaddr[] = {"FAKECUDA_PROC_ADDRESS", "0", NULL};
	const char *const latency[] = {
		"FAKECUDA_LATENCY", "1", "FAKECUDA_LATENCY_US",
		"cuMemMap:1.5,cuDeviceGetCount:2500", NULL};

	ck_assert_int_eq(run_env("nodev", nodev), 0);
	ck_assert_int_eq(run_env("knobs", knobs), 0);
	ck_assert_int_eq(run_env("fail", fail), 0);
	ck_assert_int_eq(run_env("procaddr", procaddr), 0);
	ck_assert_int_eq(run_env("latency", latency), 0);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc == 3 && !strcmp(argv[1], "--env-case"))
		return env_case(argv[2]);
	s = suite_create("fakecuda");

	tc = suite_case(s, "setup", 60);
	tcase_add_test(tc, test_init_required);
	tcase_add_test(tc, test_devices);
	tcase_add_test(tc, test_contexts);
	tcase_add_test(tc, test_granularity);

	tc = suite_case(s, "vmm", 60);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_create_and_oom);
	tcase_add_test(tc, test_map_rules);
	tcase_add_test(tc, test_access_before_set);
	tcase_add_test(tc, test_set_access_rules);
	tcase_add_test(tc, test_unmap_rules);
	tcase_add_test(tc, test_release_deferred);

	tcase_add_test(suite_case(s, "copies", 60), test_copies);
	tcase_add_test(suite_case(s, "proc_address", 60), test_proc_address);

	tc = suite_case(s, "inject", 60);
	tcase_add_test(tc, test_fail_injection);
	tcase_add_test(tc, test_latency_injection);
	tcase_add_test(tc, test_latency_per_size);

	tcase_add_test(suite_case(s, "threads", 60), test_threads);
	tcase_add_test(suite_case(s, "env", 60), test_env);
	return run_suite(s);
}
