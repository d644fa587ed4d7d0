/* SPDX-License-Identifier: MIT */
/*
 * test_fakecuda_exec.c - the fake driver's execution model, as the CUDA
 * driver documents it: cuMemAlloc and the stream-ordered allocator, fake
 * kernels and their checked device accesses, the sticky illegal address,
 * stream capture and graph replay, and versioned cuGetProcAddress lookups.
 * Linked against the fake; every test runs in its own process (Check's fork
 * mode), with the kernels registered by main() before the fork.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
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
static void k_fill(struct fakecuda_launch *l, void **p)
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
static void k_copy(struct fakecuda_launch *l, void **p)
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
static void k_inc(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr a = *(cudrv_deviceptr *)p[0];
	uint64_t v;

	if (!fakecuda_dev_read(l, &v, a, sizeof(v))) {
		v++;
		fakecuda_dev_write(l, a, &v, sizeof(v));
	}
}

static void register_kernels(void)
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

static void init(void)
{
	OK(cuInit(0));
	OK(cuDevicePrimaryCtxRetain(&ctx, 0));
	OK(cuCtxSetCurrent(ctx));
}

static cudrv_function function(const char *name)
{
	cudrv_module m;
	cudrv_function f;

	OK(cuModuleLoadData(&m, image));
	OK(cuModuleGetFunction(&f, m, name));
	return f;
}

static cudrv_result fill(cudrv_function f, cudrv_deviceptr dst, size_t n,
			 unsigned char byte, cudrv_stream s)
{
	void *params[] = {&dst, &n, &byte};

	return cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL);
}

static cudrv_result inc(cudrv_function f, cudrv_deviceptr a, cudrv_stream s)
{
	void *params[] = {&a};

	return cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
}

static size_t free_mem(void)
{
	size_t fr = 0, total = 0;

	OK(cuMemGetInfo_v2(&fr, &total));
	ck_assert_uint_le(fr, total);
	return fr;
}

static struct fakecuda_stats stats(void)
{
	struct fakecuda_stats st;

	fakecuda_get_stats(&st);
	return st;
}

/* A VMM range of @size at a new reservation, mapped with access. */
static cudrv_deviceptr vmm_range(size_t size, cudrv_mem_handle *h)
{
	cudrv_deviceptr va;

	OK(cuMemAddressReserve(&va, size, 0, 0, 0));
	OK(cuMemCreate(h, size, &prop0, 0));
	OK(cuMemMap(va, size, 0, *h, 0));
	OK(cuMemSetAccess(va, size, &rw0, 1));
	return va;
}

START_TEST(test_mem_alloc)
{
	size_t fr0, fr1;
	cudrv_deviceptr a, b;
	cudrv_mem_handle h;
	char in[100], out[100];

	init();
	fr0 = free_mem();
	ck_assert_uint_eq(cuMemAlloc_v2(&a, 0), CUDRV_ERROR_INVALID_VALUE);
	OK(cuMemAlloc_v2(&a, 100));
	ck_assert_uint_eq(a % G, 0);
	/* What the allocation holds on the device: a whole granule. */
	fr1 = free_mem();
	ck_assert_uint_eq(fr0 - fr1, G);
	ck_assert_uint_eq(stats().linear_allocs, 1);
	memset(in, 0x5a, sizeof(in));
	OK(cuMemcpyHtoD_v2(a, in, sizeof(in)));
	OK(cuMemcpyDtoH_v2(out, a, sizeof(out)));
	ck_assert_mem_eq(in, out, sizeof(in));
	/* Not VMM memory: no access changes, no unmapping, no free of a
	 * pointer inside it. */
	ck_assert_uint_eq(cuMemSetAccess(a, G, &rw0, 1),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemUnmap(a, G), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemFree_v2(a + 64), CUDRV_ERROR_INVALID_VALUE);
	/* One device: cuMemCreate and cuMemAlloc share its memory. */
	fakecuda_set_mem(8 * G);
	OK(cuMemCreate(&h, 6 * G, &prop0, 0));
	ck_assert_uint_eq(free_mem(), G);
	ck_assert_uint_eq(cuMemAlloc_v2(&b, G + 1), CUDRV_ERROR_OUT_OF_MEMORY);
	OK(cuMemAlloc_v2(&b, G));
	ck_assert_uint_eq(free_mem(), 0);
	ck_assert_uint_eq(cuMemCreate(&h, G, &prop0, 0),
			  CUDRV_ERROR_OUT_OF_MEMORY);
	OK(cuMemFree_v2(a));
	ck_assert_uint_eq(cuMemFree_v2(a), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(free_mem(), G);
	OK(cuMemFree_v2(b));
	ck_assert_uint_eq(free_mem(), 2 * G);
	ck_assert_uint_eq(stats().linear_allocs, 0);
	ck_assert_uint_eq(stats().mem_used, 6 * G);
}
END_TEST

/* "The free operation is enqueued on the stream": it happens in order. */
START_TEST(test_free_async_in_stream_order)
{
	cudrv_stream s;
	cudrv_deviceptr a;
	char in[64], out[64] = {0}, late[64] = {0};
	size_t fr0;

	init();
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	fr0 = free_mem();
	OK(cuMemAllocAsync(&a, 3 * MIB, s));
	ck_assert_uint_eq(fr0 - free_mem(), 2 * G);
	memset(in, 7, sizeof(in));
	OK(cuMemcpyHtoDAsync_v2(a, in, sizeof(in), s));
	OK(cuMemcpyDtoHAsync_v2(out, a, sizeof(out), s));
	OK(cuMemFreeAsync(a, s));
	ck_assert_uint_eq(cuMemFreeAsync(a, s), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemFree_v2(a), CUDRV_ERROR_INVALID_VALUE);
	/* Not reached yet: still the device's. */
	ck_assert_uint_eq(fr0 - free_mem(), 2 * G);
	ck_assert_uint_eq(out[0], 0);
	OK(cuStreamSynchronize(s));
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_uint_eq(free_mem(), fr0);
	ck_assert_uint_eq(stats().linear_allocs, 0);

	/* Work queued after the free finds no memory there: a copy that was
	 * valid at enqueue is an illegal address when it runs. */
	OK(cuMemAllocAsync(&a, G, s));
	OK(cuMemFreeAsync(a, s));
	OK(cuMemcpyDtoHAsync_v2(late, a, sizeof(late), s));
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(stats().linear_allocs, 0);
	ck_assert_uint_eq(stats().mem_used, 0);
}
END_TEST

/* On the legacy stream the free is done at once. */
START_TEST(test_free_async_legacy_stream)
{
	cudrv_deviceptr a;
	size_t fr0;

	init();
	fr0 = free_mem();
	OK(cuMemAllocAsync(&a, G, NULL));
	ck_assert_uint_eq(fr0 - free_mem(), G);
	OK(cuMemFreeAsync(a, NULL));
	ck_assert_uint_eq(free_mem(), fr0);
	ck_assert_uint_eq(cuMemFreeAsync(a, NULL), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuMemAllocAsync(&a, G, (cudrv_stream)&a),
			  CUDRV_ERROR_INVALID_HANDLE);
}
END_TEST

START_TEST(test_modules)
{
	cudrv_module m, m2;
	cudrv_function f, f2;

	init();
	ck_assert_uint_eq(cuModuleLoadData(&m, NULL),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuModuleLoadData(&m, "\x7f"
					       "ELF"),
			  CUDRV_ERROR_INVALID_IMAGE);
	OK(cuModuleLoadData(&m, image));
	OK(cuModuleLoadData(&m2, ".fakecuda inc nosuch"));
	OK(cuModuleGetFunction(&f, m, "fill"));
	OK(cuModuleGetFunction(&f2, m, "fill"));
	ck_assert_ptr_eq(f, f2);
	/* Registered, but not in this module; in it, but not registered. */
	ck_assert_uint_eq(cuModuleGetFunction(&f2, m2, "fill"),
			  CUDRV_ERROR_NOT_FOUND);
	ck_assert_uint_eq(cuModuleGetFunction(&f2, m2, "nosuch"),
			  CUDRV_ERROR_NOT_FOUND);
	ck_assert_uint_eq(cuModuleGetFunction(&f2, m2, "in"),
			  CUDRV_ERROR_NOT_FOUND);
	OK(cuModuleGetFunction(&f2, m2, "inc"));
	OK(cuModuleUnload(m2));
	ck_assert_uint_eq(cuModuleUnload(m2), CUDRV_ERROR_INVALID_HANDLE);
	ck_assert_uint_eq(cuModuleGetFunction(&f, m2, "inc"),
			  CUDRV_ERROR_INVALID_HANDLE);
	/* A function of an unloaded module is gone with it. */
	ck_assert_uint_eq(inc(f2, 0, NULL), CUDRV_ERROR_INVALID_HANDLE);
	ck_assert_int_eq(fakecuda_register_kernel("fill", k_fill, 0, NULL), -1);
}
END_TEST

START_TEST(test_launch_in_stream_order)
{
	cudrv_function ffill, fcopy;
	cudrv_deviceptr a, b;
	cudrv_stream s;
	char in[32], out[32] = {0};
	size_t n = sizeof(in);
	unsigned char byte = 0x11;
	void *params[3];

	init();
	ffill = function("fill");
	fcopy = function("copy");
	OK(cuStreamCreate(&s, 0));
	OK(cuMemAlloc_v2(&a, G));
	OK(cuMemAlloc_v2(&b, G));
	memset(in, 0x22, sizeof(in));
	/* HtoD, then a kernel overwriting part of it, then a device copy
	 * and DtoH: each sees the one before. */
	OK(cuMemcpyHtoDAsync_v2(a, in, sizeof(in), s));
	params[0] = &a;
	params[1] = &n;
	params[2] = &byte;
	n = 8;
	OK(cuLaunchKernel(ffill, 1, 1, 1, 64, 1, 1, 0, s, params, NULL));
	/* The values were copied at launch. */
	n = 1000;
	byte = 0x99;
	n = sizeof(in);
	params[0] = &b;
	params[1] = &a;
	params[2] = &n;
	OK(cuLaunchKernel(fcopy, 1, 1, 1, 1, 1, 1, 0, s, params, NULL));
	OK(cuMemcpyDtoHAsync_v2(out, b, sizeof(out), s));
	ck_assert_uint_eq(stats().kernels_run, 0);
	ck_assert_uint_eq(out[0], 0);
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(stats().kernels_run, 2);
	memset(in, 0x11, 8);
	ck_assert_mem_eq(in, out, sizeof(in));

	/* The launch's own checks. */
	ck_assert_uint_eq(
		cuLaunchKernel(ffill, 0, 1, 1, 1, 1, 1, 0, s, params, NULL),
		CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(
		cuLaunchKernel(ffill, 1, 1, 1, 1025, 1, 1, 0, s, params, NULL),
		CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(
		cuLaunchKernel(ffill, 1, 1, 1, 1, 1, 1, 0, s, NULL, NULL),
		CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuLaunchKernel(ffill, 1, 1, 1, 1, 1, 1, 0,
					 (cudrv_stream)&n, params, NULL),
			  CUDRV_ERROR_INVALID_HANDLE);
	ck_assert_uint_eq(cuLaunchKernel((cudrv_function)&n, 1, 1, 1, 1, 1, 1,
					 0, s, params, NULL),
			  CUDRV_ERROR_INVALID_HANDLE);
	ck_assert_uint_eq(stats().kernels_run, 2);
}
END_TEST

/*
 * A kernel touching memory mapped without access: the launch succeeds, the
 * next synchronisation reports the illegal address, and the context is
 * dead from then on ("the process must be terminated and relaunched").
 */
START_TEST(test_illegal_address_no_access)
{
	cudrv_function f;
	cudrv_deviceptr va, a;
	cudrv_mem_handle h;
	cudrv_stream s;
	cudrv_event e;

	init();
	f = function("fill");
	OK(cuStreamCreate(&s, 0));
	OK(cuEventCreate(&e, CUDRV_EVENT_DISABLE_TIMING));
	OK(cuMemAddressReserve(&va, G, 0, 0, 0));
	OK(cuMemCreate(&h, G, &prop0, 0));
	OK(cuMemMap(va, G, 0, h, 0));
	OK(fill(f, va, 16, 1, s));
	OK(cuEventRecord(e, s));
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(stats().touched_before_access, 16);
	/* Sticky: every later call on the context fails the same way. */
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(cuCtxSynchronize(), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(cuMemAlloc_v2(&a, G), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(fill(f, va, 16, 1, s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	/* Setting access now does not revive it. */
	OK(cuMemSetAccess(va, G, &rw0, 1));
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_ERROR_ILLEGAL_ADDRESS);
}
END_TEST

/* The same for an unmapped page, on the legacy stream, read-only too. */
START_TEST(test_illegal_address_unmapped)
{
	cudrv_function f;
	cudrv_deviceptr va;
	struct cudrv_mem_access_desc ro = rw0;
	cudrv_mem_handle h;

	init();
	f = function("fill");
	OK(cuMemAddressReserve(&va, 2 * G, 0, 0, 0));
	OK(cuMemCreate(&h, G, &prop0, 0));
	OK(cuMemMap(va, G, 0, h, 0));
	ro.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READ;
	OK(cuMemSetAccess(va, G, &ro, 1));
	/* A read-only page is not writable by a kernel either. */
	if (_i == 0) {
		OK(fill(f, va, 8, 1, NULL));
		ck_assert_uint_eq(stats().touched_before_access, 8);
	} else {
		/* Crossing from the mapping into the unmapped page. */
		OK(cuMemSetAccess(va, G, &rw0, 1));
		OK(fill(f, va + G - 4, 8, 1, NULL));
		ck_assert_uint_eq(stats().touched_before_access, 0);
	}
	ck_assert_uint_eq(stats().kernels_run, 1);
	ck_assert_uint_eq(cuCtxSynchronize(), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(cuMemcpyHtoD_v2(va, &ro, 4),
			  CUDRV_ERROR_ILLEGAL_ADDRESS);
}
END_TEST

START_TEST(test_capture_and_replay)
{
	cudrv_function f;
	cudrv_deviceptr a;
	cudrv_stream s;
	cudrv_graph g, g2;
	cudrv_graph_exec x;
	unsigned int st = 99;
	uint64_t in = 40, out = 0;

	init();
	f = function("inc");
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	OK(cuMemAlloc_v2(&a, G));
	ck_assert_uint_eq(cuStreamBeginCapture_v2(NULL, 0),
			  CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	ck_assert_uint_eq(cuStreamBeginCapture_v2(s, 3),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuStreamEndCapture(s, &g), CUDRV_ERROR_ILLEGAL_STATE);
	OK(cuStreamIsCapturing(s, &st));
	ck_assert_uint_eq(st, CUDRV_STREAM_CAPTURE_STATUS_NONE);
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_GLOBAL));
	ck_assert_uint_eq(cuStreamBeginCapture_v2(s, 0),
			  CUDRV_ERROR_ILLEGAL_STATE);
	OK(cuStreamIsCapturing(s, &st));
	ck_assert_uint_eq(st, CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	OK(cuMemcpyHtoDAsync_v2(a, &in, sizeof(in), s));
	OK(inc(f, a, s));
	OK(inc(f, a, s));
	OK(cuMemcpyDtoHAsync_v2(&out, a, sizeof(out), s));
	OK(cuStreamEndCapture(s, &g));
	ck_assert_ptr_nonnull(g);
	OK(cuStreamIsCapturing(s, &st));
	ck_assert_uint_eq(st, CUDRV_STREAM_CAPTURE_STATUS_NONE);
	/* Captured, not run. */
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(stats().kernels_run, 0);
	ck_assert_uint_eq(out, 0);

	OK(cuGraphInstantiateWithFlags(&x, g, 0));
	ck_assert_uint_eq(cuGraphInstantiateWithFlags(&x, g, 5),
			  CUDRV_ERROR_INVALID_VALUE);
	/* The executable graph is a copy: it outlives its graph. */
	OK(cuGraphDestroy(g));
	ck_assert_uint_eq(cuGraphDestroy(g), CUDRV_ERROR_INVALID_VALUE);
	OK(cuGraphLaunch(x, s));
	ck_assert_uint_eq(out, 0);
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(out, 42);
	/* A replay reads the host memory as it is when it runs. */
	in = 100;
	OK(cuGraphLaunch(x, s));
	OK(cuGraphLaunch(x, s));
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(out, 102);
	ck_assert_uint_eq(stats().kernels_run, 6);
	/* The legacy stream runs it at once. */
	in = 7;
	OK(cuGraphLaunch(x, NULL));
	ck_assert_uint_eq(out, 9);

	/* The CUDA 11 entry point and a graph launched into a capture. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	OK(cuGraphLaunch(x, s));
	OK(inc(f, a, s));
	OK(cuMemcpyDtoHAsync_v2(&out, a, sizeof(out), s));
	OK(cuStreamEndCapture(s, &g2));
	{
		cudrv_graph_exec x2;
		cudrv_graph_node err_node = (cudrv_graph_node)&x2;
		char log[8] = "x";

		OK(cuGraphInstantiate_v2(&x2, g2, &err_node, log, sizeof(log)));
		ck_assert_ptr_null(err_node);
		ck_assert_str_eq(log, "");
		in = 0;
		OK(cuGraphLaunch(x2, s));
		OK(cuStreamSynchronize(s));
		ck_assert_uint_eq(out, 3);
		OK(cuGraphExecDestroy(x2));
	}
	OK(cuGraphExecDestroy(x));
	ck_assert_uint_eq(cuGraphLaunch(x, s), CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuGraphExecDestroy(x), CUDRV_ERROR_INVALID_VALUE);
	OK(cuGraphDestroy(g2));
	ck_assert_uint_eq(stats().graphs + stats().graph_execs, 0);
}
END_TEST

/*
 * What a suspend does under a captured graph: the memory behind its
 * recorded addresses is unmapped and released, then new memory is mapped
 * at the same addresses. With access set again the replay works on the new
 * memory; without, the replay is an illegal address.
 */
START_TEST(test_replay_after_remap)
{
	cudrv_function f;
	cudrv_deviceptr va;
	cudrv_mem_handle h;
	cudrv_stream s;
	cudrv_graph g;
	cudrv_graph_exec x;
	uint64_t v = 5, out = 0;

	init();
	f = function("inc");
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	va = vmm_range(2 * G, &h);
	OK(cuMemcpyHtoDAsync_v2(va + G, &v, sizeof(v), s));
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	OK(inc(f, va + G, s));
	OK(cuMemcpyDtoHAsync_v2(&out, va + G, sizeof(out), s));
	OK(cuStreamEndCapture(s, &g));
	OK(cuGraphInstantiateWithFlags(&x, g, 0));
	OK(cuGraphLaunch(x, s));
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(out, 6);

	/* Suspend: the data saved, the pages gone, the reservation kept. */
	OK(cuMemcpyDtoHAsync_v2(&v, va + G, sizeof(v), s));
	OK(cuStreamSynchronize(s));
	OK(cuMemUnmap(va, 2 * G));
	OK(cuMemRelease(h));
	ck_assert_uint_eq(stats().mem_used, 0);
	/* Resume: new pages at the same addresses, access, the data back. */
	OK(cuMemCreate(&h, 2 * G, &prop0, 0));
	OK(cuMemMap(va, 2 * G, 0, h, 0));
	OK(cuMemSetAccess(va, 2 * G, &rw0, 1));
	OK(cuMemcpyHtoDAsync_v2(va + G, &v, sizeof(v), s));
	OK(cuGraphLaunch(x, s));
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(out, 7);

	/* The same without setting access again. */
	OK(cuMemUnmap(va, 2 * G));
	OK(cuMemMap(va, 2 * G, 0, h, 0));
	OK(cuGraphLaunch(x, s));
	ck_assert_uint_eq(cuStreamSynchronize(s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	ck_assert_uint_eq(out, 7);
	ck_assert_uint_eq(cuGraphLaunch(x, s), CUDRV_ERROR_ILLEGAL_ADDRESS);
}
END_TEST

struct other {
	unsigned int mode; /* the thread's capture mode */
	cudrv_result alloc, end;
	cudrv_stream end_stream;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	cudrv_deviceptr a;
	cudrv_graph g;
	unsigned int m = o->mode;

	if (cuCtxSetCurrent(ctx) || cuThreadExchangeStreamCaptureMode(&m) ||
	    m != CUDRV_STREAM_CAPTURE_MODE_GLOBAL)
		return arg;
	o->alloc = cuMemAlloc_v2(&a, G);
	if (!o->alloc)
		cuMemFree_v2(a);
	o->end = o->end_stream ? cuStreamEndCapture(o->end_stream, &g) : 0;
	return NULL;
}

static struct other run_other(unsigned int mode, cudrv_stream end)
{
	struct other o = {.mode = mode, .end_stream = end};
	pthread_t t;
	void *ret;

	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	return o;
}

static unsigned int status(cudrv_stream s)
{
	unsigned int st = 99;

	OK(cuStreamIsCapturing(s, &st));
	return st;
}

/* Potentially unsafe calls during a capture, mode by mode. */
START_TEST(test_capture_modes)
{
	cudrv_stream s;
	cudrv_deviceptr a;
	cudrv_graph g;
	unsigned int m;
	char buf[8] = {0};
	struct other o;

	init();
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	OK(cuMemAlloc_v2(&a, G));

	/* Global: a synchronous copy on this thread is refused and
	 * invalidates the capture; what follows fails; the end has no
	 * graph. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_GLOBAL));
	ck_assert_uint_eq(cuMemcpyHtoD_v2(a, buf, sizeof(buf)),
			  CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED);
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(a, buf, sizeof(buf), s),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);
	g = (cudrv_graph)&g;
	ck_assert_uint_eq(cuStreamEndCapture(s, &g),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);
	ck_assert_ptr_null(g);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_NONE);
	/* The refused copy did not happen; the context is fine. */
	OK(cuMemcpyHtoD_v2(a, buf, sizeof(buf)));

	/* Global: another thread in global mode is refused too, and may
	 * not end the capture; in relaxed mode it may allocate. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_GLOBAL));
	o = run_other(CUDRV_STREAM_CAPTURE_MODE_RELAXED, s);
	ck_assert_uint_eq(o.alloc, CUDRV_SUCCESS);
	ck_assert_uint_eq(o.end, CUDRV_ERROR_STREAM_CAPTURE_WRONG_THREAD);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	o = run_other(CUDRV_STREAM_CAPTURE_MODE_GLOBAL, NULL);
	ck_assert_uint_eq(o.alloc, CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED);
	ck_assert_uint_eq(cuStreamEndCapture(s, &g),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);

	/* Thread-local: other threads are not concerned; this one is. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	o = run_other(CUDRV_STREAM_CAPTURE_MODE_GLOBAL, NULL);
	ck_assert_uint_eq(o.alloc, CUDRV_SUCCESS);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	ck_assert_uint_eq(cuMemFree_v2(a),
			  CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	ck_assert_uint_eq(cuStreamEndCapture(s, &g),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);

	/* Relaxed: this thread may allocate; another thread may end it. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	{
		cudrv_deviceptr b;

		OK(cuMemAlloc_v2(&b, G));
		OK(cuMemFree_v2(b));
	}
	o = run_other(CUDRV_STREAM_CAPTURE_MODE_GLOBAL, s);
	ck_assert_uint_eq(o.alloc, CUDRV_SUCCESS);
	ck_assert_uint_eq(o.end, CUDRV_SUCCESS);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_NONE);

	/* A thread in relaxed mode is never refused, even in a global
	 * capture of its own. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_GLOBAL));
	m = CUDRV_STREAM_CAPTURE_MODE_RELAXED;
	OK(cuThreadExchangeStreamCaptureMode(&m));
	ck_assert_uint_eq(m, CUDRV_STREAM_CAPTURE_MODE_GLOBAL);
	OK(cuMemcpyHtoD_v2(a, buf, sizeof(buf)));
	OK(cuThreadExchangeStreamCaptureMode(&m));
	ck_assert_uint_eq(m, CUDRV_STREAM_CAPTURE_MODE_RELAXED);
	m = 3;
	ck_assert_uint_eq(cuThreadExchangeStreamCaptureMode(&m),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	OK(cuStreamEndCapture(s, &g));
	OK(cuGraphDestroy(g));
}
END_TEST

/* Calls that conflict with any capture, whatever the mode. */
START_TEST(test_capture_conflicts)
{
	cudrv_stream s, blocking;
	cudrv_deviceptr a;
	cudrv_event e;
	cudrv_graph g;
	char buf[8] = {0};

	init();
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	OK(cuStreamCreate(&blocking, 0));
	OK(cuEventCreate(&e, CUDRV_EVENT_DISABLE_TIMING));
	OK(cuMemAlloc_v2(&a, G));

	/* Waiting for a capturing stream. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	ck_assert_uint_eq(cuStreamSynchronize(s),
			  CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED);
	ck_assert_uint_eq(cuStreamEndCapture(s, &g),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);

	/* Waiting for an event recorded in a capture. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	OK(cuEventRecord(e, s));
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_ERROR_CAPTURED_EVENT);
	OK(cuStreamEndCapture(s, &g));
	OK(cuGraphDestroy(g));
	ck_assert_uint_eq(cuEventSynchronize(e), CUDRV_ERROR_CAPTURED_EVENT);
	OK(cuEventRecord(e, s));
	OK(cuEventSynchronize(e));

	/* The legacy stream would wait for a capturing blocking stream. */
	OK(cuStreamBeginCapture_v2(blocking,
				   CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	{
		unsigned int st;

		ck_assert_uint_eq(cuStreamIsCapturing(NULL, &st),
				  CUDRV_ERROR_STREAM_CAPTURE_IMPLICIT);
	}
	ck_assert_uint_eq(status(blocking), CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	ck_assert_uint_eq(cuMemcpyHtoDAsync_v2(a, buf, sizeof(buf), NULL),
			  CUDRV_ERROR_STREAM_CAPTURE_IMPLICIT);
	ck_assert_uint_eq(status(blocking),
			  CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED);
	ck_assert_uint_eq(cuStreamEndCapture(blocking, &g),
			  CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED);
	/* A non-blocking stream's capture does not concern it. */
	OK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_RELAXED));
	OK(cuMemcpyHtoDAsync_v2(a, buf, sizeof(buf), NULL));
	/* The stream-ordered allocator in a capture would be a graph
	 * memory node, which the fake does not model. */
	ck_assert_uint_eq(cuMemAllocAsync(&a, G, s), CUDRV_ERROR_NOT_SUPPORTED);
	ck_assert_uint_eq(cuMemFreeAsync(a, s), CUDRV_ERROR_NOT_SUPPORTED);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_ACTIVE);
	/* A stream destroyed while capturing takes its capture along. */
	OK(cuStreamDestroy_v2(s));
	OK(cuStreamSynchronize(blocking));
}
END_TEST

typedef cudrv_result (*gpa1_fn)(const char *, void **, int, uint64_t);

START_TEST(test_proc_address_versions)
{
	unsigned int st = 99;
	void *p = NULL, *q = NULL;
	gpa1_fn gpa1;
	cudrv_getProcAddress_fn gpa2;

	/* Base names resolve to the versioned entry point of that ABI. */
	OK(cuGetProcAddress_v2("cuMemAlloc", &p, 12000, 0, &st));
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_SUCCESS);
	ck_assert_ptr_eq(p, (void *)cuMemAlloc_v2);
	OK(cuGetProcAddress_v2("cuMemFree", &p, 3020, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuMemFree_v2);
	OK(cuGetProcAddress_v2("cuMemGetInfo", &p, 11000, 1, NULL));
	ck_assert_ptr_eq(p, (void *)cuMemGetInfo_v2);
	OK(cuGetProcAddress_v2("cuMemAllocAsync", &p, 11020, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuMemAllocAsync);
	OK(cuGetProcAddress_v2("cuMemAllocAsync", &p, 11010, 0, &st));
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
	OK(cuGetProcAddress_v2("cuStreamBeginCapture", &p, 10000, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuStreamBeginCapture);
	OK(cuGetProcAddress_v2("cuStreamBeginCapture", &p, 12000, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuStreamBeginCapture_v2);
	OK(cuGetProcAddress_v2("cuGraphInstantiate", &p, 11080, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuGraphInstantiate_v2);
	OK(cuGetProcAddress_v2("cuGraphInstantiate", &p, 12000, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuGraphInstantiateWithFlags);
	/* No per-thread variants here: the legacy ones, as documented. */
	OK(cuGetProcAddress_v2("cuLaunchKernel", &p, 12000,
			       CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
			       &st));
	ck_assert_ptr_eq(p, (void *)cuLaunchKernel);
	/* Suffixed and unknown names are not symbols. */
	OK(cuGetProcAddress_v2("cuMemAlloc_v2", &p, 12000, 0, &st));
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	/* Newer than the driver, bad flags. */
	ck_assert_uint_eq(cuGetProcAddress_v2("cuMemAlloc", &p, 12090, 0, &st),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuGetProcAddress_v2("cuMemAlloc", &p, 12000, 3, &st),
			  CUDRV_ERROR_INVALID_VALUE);
	ck_assert_uint_eq(cuGetProcAddress_v2(NULL, &p, 12000, 0, &st),
			  CUDRV_ERROR_INVALID_VALUE);

	/* cuGetProcAddress itself, at each of its two ABIs. */
	OK(cuGetProcAddress_v2("cuGetProcAddress", &p, 12000, 0, &st));
	ck_assert_ptr_eq(p, (void *)cuGetProcAddress_v2);
	OK(cuGetProcAddress_v2("cuGetProcAddress", &q, 11030, 0, &st));
	ck_assert_ptr_eq(q, (void *)cuGetProcAddress);
	OK(cuGetProcAddress_v2("cuGetProcAddress", &q, 11020, 0, &st));
	ck_assert_uint_eq(st, CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
	*(void **)&gpa2 = p;
	OK(gpa2("cuMemFreeAsync", &q, 12000, 0, &st));
	ck_assert_ptr_eq(q, (void *)cuMemFreeAsync);
	OK(cuGetProcAddress("cuGetProcAddress", &q, 11040, 0));
	*(void **)&gpa1 = q;
	OK(gpa1("cuMemGetInfo", &q, 11040, 0));
	ck_assert_ptr_eq(q, (void *)cuMemGetInfo_v2);
	/* The 11.3 signature has no status: not found is an error. */
	ck_assert_uint_eq(gpa1("cuMemGetInfo_v2", &q, 11040, 0),
			  CUDRV_ERROR_NOT_FOUND);
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(gpa1("cuMemAllocAsync", &q, 11000, 0),
			  CUDRV_ERROR_NOT_FOUND);
	ck_assert_uint_eq(fakecuda_calls("cuGetProcAddress"), 22);
}
END_TEST

/* Injection reaches the new entry points, by base or versioned name. */
START_TEST(test_injection)
{
	cudrv_function f;
	cudrv_deviceptr a;
	cudrv_stream s;
	cudrv_graph g;
	cudrv_graph_exec x;
	size_t fr;

	init();
	f = function("inc");
	OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING));
	fr = free_mem();
	ck_assert_int_eq(fakecuda_fail("cuMemAlloc_v2", 1, 2), 0);
	ck_assert_uint_eq(cuMemAlloc_v2(&a, G), CUDRV_ERROR_OUT_OF_MEMORY);
	ck_assert_uint_eq(free_mem(), fr);
	OK(cuMemAlloc_v2(&a, G));
	ck_assert_int_eq(fakecuda_fail("cuMemFreeAsync", 1, 999), 0);
	ck_assert_uint_eq(cuMemFreeAsync(a, s), CUDRV_ERROR_UNKNOWN);
	OK(cuMemFreeAsync(a, s));
	ck_assert_int_eq(fakecuda_fail("cuLaunchKernel", 2, 700), 0);
	OK(cuMemAlloc_v2(&a, G));
	OK(inc(f, a, s));
	ck_assert_uint_eq(inc(f, a, s), CUDRV_ERROR_ILLEGAL_ADDRESS);
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(stats().kernels_run, 1);
	ck_assert_int_eq(fakecuda_fail("cuStreamBeginCapture", 1, 999), 0);
	ck_assert_uint_eq(cuStreamBeginCapture_v2(s, 0), CUDRV_ERROR_UNKNOWN);
	ck_assert_uint_eq(status(s), CUDRV_STREAM_CAPTURE_STATUS_NONE);
	OK(cuStreamBeginCapture_v2(s, 0));
	OK(inc(f, a, s));
	OK(cuStreamEndCapture(s, &g));
	ck_assert_int_eq(fakecuda_fail("cuGraphInstantiateWithFlags", 1, 2), 0);
	ck_assert_uint_eq(cuGraphInstantiateWithFlags(&x, g, 0),
			  CUDRV_ERROR_OUT_OF_MEMORY);
	OK(cuGraphInstantiateWithFlags(&x, g, 0));
	ck_assert_int_eq(fakecuda_fail("cuGraphLaunch", 1, 999), 0);
	ck_assert_uint_eq(cuGraphLaunch(x, s), CUDRV_ERROR_UNKNOWN);
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(stats().kernels_run, 1);
	OK(cuGraphLaunch(x, s));
	OK(cuStreamSynchronize(s));
	ck_assert_uint_eq(stats().kernels_run, 2);
	ck_assert_uint_eq(stats().injected, 6);
	ck_assert_uint_eq(fakecuda_calls("cuMemAlloc"), 3);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	register_kernels();
	s = suite_create("fakecuda_exec");

	tc = suite_case(s, "alloc", 60);
	tcase_add_test(tc, test_mem_alloc);
	tcase_add_test(tc, test_free_async_in_stream_order);
	tcase_add_test(tc, test_free_async_legacy_stream);

	tc = suite_case(s, "launch", 60);
	tcase_add_test(tc, test_modules);
	tcase_add_test(tc, test_launch_in_stream_order);
	tcase_add_test(tc, test_illegal_address_no_access);
	tcase_add_loop_test(tc, test_illegal_address_unmapped, 0, 2);

	tc = suite_case(s, "graph", 60);
	tcase_add_test(tc, test_capture_and_replay);
	tcase_add_test(tc, test_replay_after_remap);
	tcase_add_test(tc, test_capture_modes);
	tcase_add_test(tc, test_capture_conflicts);

	tc = suite_case(s, "lookup", 60);
	tcase_add_test(tc, test_proc_address_versions);
	tcase_add_test(tc, test_injection);
	return run_suite(s);
}
