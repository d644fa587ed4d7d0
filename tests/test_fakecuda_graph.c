/* SPDX-License-Identifier: MIT */
/*
 * test_fakecuda_graph.c - stream capture and graphs in the fake driver, as
 * the CUDA driver documents them: capture and replay at the recorded
 * addresses (also after the memory there was unmapped and mapped again),
 * the capture modes against potentially unsafe calls from this and other
 * threads, and the calls that conflict with any capture. Linked against
 * the fake; every test runs in its own process (Check's fork mode).
 */
#include <pthread.h>

#include "fakecuda_exec.h"

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
int main(void)
{
	Suite *s;
	TCase *tc;

	register_kernels();
	s = suite_create("fakecuda_graph");

	tc = suite_case(s, "replay", 60);
	tcase_add_test(tc, test_capture_and_replay);
	tcase_add_test(tc, test_replay_after_remap);

	tc = suite_case(s, "capture", 60);
	tcase_add_test(tc, test_capture_modes);
	tcase_add_test(tc, test_capture_conflicts);
	return run_suite(s);
}
