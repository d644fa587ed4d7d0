/* SPDX-License-Identifier: MIT */
/*
 * test_fakecuda_exec.c - the fake driver's execution model, as the CUDA
 * driver documents it: cuMemAlloc and the stream-ordered allocator, fake
 * kernels and their checked device accesses, the sticky illegal address,
 * versioned cuGetProcAddress lookups, and injection into those calls.
 * Capture and graphs are test_fakecuda_graph.c's. Linked against the fake;
 * every test runs in its own process (Check's fork mode), with the kernels
 * registered by main() before the fork.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "fakecuda_exec.h"

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
/*
 * The same through FAKECUDA_FAIL, read when the library is loaded: this
 * program again, with the variable set, runs env_case(), which answers 0
 * or the line of the first surprise.
 */
#define EXPECT(call, want)                                                     \
	do {                                                                   \
		if ((call) != (want))                                          \
			return __LINE__;                                       \
	} while (0)

static int env_case(void)
{
	const char *img = ".fakecuda inc";
	cudrv_deviceptr a;
	cudrv_module m;
	cudrv_function f;
	cudrv_stream s;
	cudrv_graph g;
	cudrv_graph_exec x;
	void *params[] = {&a};

	EXPECT(cuInit(0), 0);
	EXPECT(cuDevicePrimaryCtxRetain(&ctx, 0), 0);
	EXPECT(cuCtxSetCurrent(ctx), 0);
	EXPECT(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING), 0);
	EXPECT(cuMemAlloc_v2(&a, G), CUDRV_ERROR_OUT_OF_MEMORY);
	EXPECT(cuMemAlloc_v2(&a, G), 0);
	EXPECT(cuModuleLoadData(&m, img), 0);
	EXPECT(cuModuleGetFunction(&f, m, "inc"), 0);
	EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL), 0);
	EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL),
	       CUDRV_ERROR_LAUNCH_FAILED);
	EXPECT(cuStreamBeginCapture_v2(s, 0), 0);
	EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL), 0);
	EXPECT(cuStreamEndCapture(s, &g), 0);
	EXPECT(cuGraphInstantiateWithFlags(&x, g, 0), 0);
	EXPECT(cuGraphLaunch(x, s), CUDRV_ERROR_UNKNOWN);
	EXPECT(cuGraphLaunch(x, s), 0);
	EXPECT(cuStreamSynchronize(s), 0);
	EXPECT(cuMemFreeAsync(a, s), CUDRV_ERROR_INVALID_VALUE);
	EXPECT(cuMemFreeAsync(a, s), 0);
	EXPECT(cuStreamSynchronize(s), 0);
	return 0;
}

START_TEST(test_env_injection)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		setenv("FAKECUDA_FAIL",
		       "cuMemAlloc_v2:1:2,cuLaunchKernel:2:719,cuGraphLaunch:1,"
		       "cuMemFreeAsync:1:1",
		       1);
		execl("/proc/self/exe", "test_fakecuda_exec", "--env-case",
		      (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "env case failed at line %d", WEXITSTATUS(st));
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	register_kernels();
	if (argc == 2 && !strcmp(argv[1], "--env-case"))
		return env_case();
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

	tc = suite_case(s, "lookup", 60);
	tcase_add_test(tc, test_proc_address_versions);
	tcase_add_test(tc, test_injection);
	tcase_add_test(tc, test_env_injection);
	return run_suite(s);
}
