/* SPDX-License-Identifier: MIT */
/*
 * shim_cuda_engine - test "engines" on the fake libcuda.so.1, run under
 * LD_PRELOAD=libvkv-shim.so by test_shim_cuda, one allocation pattern per
 * command, each reaching the driver the way its model does:
 *
 *   vllm     N equal allocations, functions from cuGetProcAddress_v2 found
 *            with dlsym() on a dlopen()ed libcuda.so.1 (and from the lookup
 *            of cuGetProcAddress itself), a zero-fill kernel; suspend to
 *            host memory, resume with vkvctl
 *   sglang   2N allocations (K and V), cuMemAllocAsync on a stream through
 *            CUDA 11.3's cuGetProcAddress; suspend to disk, the next launch
 *            resumes it
 *   trt      one pool, exported symbols, a tagged region; suspend with
 *            discard: zeroes after resume
 *   graph    a graph captured before a suspend replays after the resume
 *   limit    VKV_SHIM_LIMIT: cuMemAlloc, cuMemCreate (from a thread with no
 *            context) and cuMemGetInfo_v2 agree
 *   oom      a resume that finds no device memory fails, and is retried
 *   round    the limit counts what a region maps, not what was asked
 *   off      VKV_SHIM=0: nothing taken, nothing limited
 *   ptds     the per-thread default stream's copies resume a suspended
 *            process and see its data
 *   rollback a suspend that fails and cannot put everything back leaves
 *            the process suspended, not running over memory that is gone
 *   peer     two devices: a region is reachable from a peer that enabled
 *            access to its owner, as cuMemAlloc memory is
 *   peer_race  the same for a region being made while access is enabled
 *
 * Suspend and resume go through vkvctl (VKVCTL) against the engine's own
 * pid. Each command exits 0, or prints what failed and exits 1.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakecuda.h"

#define MIB ((size_t)1 << 20)
#define MAXR 16

static int failures;
/*
 * SHIM_ENGINE_FAULTS=1: the fake driver fails a call (FAKECUDA_FAIL), and
 * the engine must still compute the same result: a region the shim could
 * not make is the driver's own allocation, and a call that failed (the
 * driver's error, passed on) succeeds when made again, as after a transient
 * error.
 */
static int faults;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "shim_cuda_engine: %s:%d: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			failures++;                                            \
		}                                                              \
	} while (0)

/* The call returned 0, at once or, under injected faults, when repeated. */
#define OK(call) ((call) == 0 || (faults && (call) == 0))
/* A region, unless the shim fell back to the driver under a fault. */
#define REGION(p) (faults || is_region(p))

/* The driver as the engine reaches it. */
struct drv {
	cudrv_result (*alloc)(cudrv_deviceptr *, size_t);
	cudrv_result (*alloc_async)(cudrv_deviceptr *, size_t, cudrv_stream);
	cudrv_result (*free)(cudrv_deviceptr);
	cudrv_result (*launch)(cudrv_function, unsigned int, unsigned int,
			       unsigned int, unsigned int, unsigned int,
			       unsigned int, unsigned int, cudrv_stream,
			       void **, void **);
	cudrv_result (*dtoh)(void *, cudrv_deviceptr, size_t);
	cudrv_result (*sync)(void);
	cudrv_result (*mem_info)(size_t *, size_t *);
};

static cudrv_function k_zero_fn, k_fill_fn;
static int (*query)(const void *, size_t *);
static unsigned char chunk[MIB];

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)(i * 131 + (i >> 12) + seed);
}

/* zero(dst, n) */
static void k_zero(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr dst = *(cudrv_deviceptr *)p[0];
	size_t n = *(size_t *)p[1];
	static unsigned char z[65536];

	for (size_t off = 0; off < n; off += sizeof(z)) {
		size_t m = n - off < sizeof(z) ? n - off : sizeof(z);

		if (fakecuda_dev_write(l, dst + off, z, m))
			return;
	}
}

/* fill(dst, n, seed): byte i is pattern(i, seed). */
static void k_fill(struct fakecuda_launch *l, void **p)
{
	cudrv_deviceptr dst = *(cudrv_deviceptr *)p[0];
	size_t n = *(size_t *)p[1];
	unsigned seed = *(unsigned *)p[2];
	static unsigned char b[65536];

	for (size_t off = 0; off < n; off += sizeof(b)) {
		size_t m = n - off < sizeof(b) ? n - off : sizeof(b);

		for (size_t i = 0; i < m; i++)
			b[i] = pattern(off + i, seed);
		if (fakecuda_dev_write(l, dst + off, b, m))
			return;
	}
}

static void setup(void)
{
	static const size_t zero_sizes[] = {sizeof(cudrv_deviceptr),
					    sizeof(size_t)};
	static const size_t fill_sizes[] = {sizeof(cudrv_deviceptr),
					    sizeof(size_t), sizeof(unsigned)};
	cudrv_context ctx;
	cudrv_module mod;
	cudrv_device dev;

	*(void **)&query = dlsym(RTLD_DEFAULT, "vkv_shim_query");
	CHECK(query != NULL);
	CHECK(fakecuda_register_kernel("zero", k_zero, 2, zero_sizes) == 0);
	CHECK(fakecuda_register_kernel("fill", k_fill, 3, fill_sizes) == 0);
	CHECK(OK(cuInit(0)));
	CHECK(OK(cuDeviceGet(&dev, 0)));
	CHECK(OK(cuDevicePrimaryCtxRetain(&ctx, dev)));
	CHECK(OK(cuCtxSetCurrent(ctx)));
	CHECK(OK(cuModuleLoadData(&mod, ".fakecuda zero fill")));
	CHECK(OK(cuModuleGetFunction(&k_zero_fn, mod, "zero")));
	CHECK(OK(cuModuleGetFunction(&k_fill_fn, mod, "fill")));
}

static int is_region(cudrv_deviceptr p)
{
	return query && query((void *)(uintptr_t)p, NULL);
}

static cudrv_result zero(const struct drv *d, cudrv_deviceptr p, size_t n)
{
	void *params[] = {&p, &n};

	return d->launch(k_zero_fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
}

static cudrv_result fill(const struct drv *d, cudrv_deviceptr p, size_t n,
			 unsigned seed, cudrv_stream s)
{
	void *params[] = {&p, &n, &seed};

	return d->launch(k_fill_fn, 1, 1, 1, 1, 1, 1, 0, s, params, NULL);
}

/* 1 if [p, p + n) holds pattern(seed), or zeroes for seed -1. */
static int holds(const struct drv *d, cudrv_deviceptr p, size_t n, int seed)
{
	for (size_t off = 0; off < n; off += sizeof(chunk)) {
		size_t m = n - off < sizeof(chunk) ? n - off : sizeof(chunk);

		if (!OK(d->dtoh(chunk, p + off, m)))
			return 0;
		for (size_t i = 0; i < m; i++)
			if (chunk[i] !=
			    (seed < 0 ? 0 : pattern(off + i, (unsigned)seed)))
				return 0;
	}
	return 1;
}

static int has_socket(const char *pid)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	char path[512];

	snprintf(path, sizeof(path), "%s/vkv/%s.sock", dir ? dir : "", pid);
	return access(path, F_OK) == 0;
}

/* vkvctl a1 [a2 a3] <our pid>-style commands: its exit status. */
static int vkvctl(const char *cmd, const char *mode)
{
	const char *path = getenv("VKVCTL");
	char pid[16];
	int status;
	pid_t child;

	if (!path)
		return -1;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	/*
	 * Under faults the shim may have made no region at all: then there
	 * is no process of vkv's to command, and nothing to suspend.
	 */
	if (faults && !has_socket(pid))
		return 0;
	child = fork();
	if (child == 0) {
		if (mode)
			execl(path, path, cmd, pid, "--mode", mode,
			      (char *)NULL);
		else
			execl(path, path, cmd, pid, (char *)NULL);
		_exit(127);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Every region's physical memory gone, its reservation kept. */
static int released(const cudrv_deviceptr *p, int n)
{
	for (int i = 0; i < n; i++)
		if (is_region(p[i]) && fakecuda_query(p[i], NULL, NULL) != 1)
			return 0;
	return 1;
}

/* Every region mapped again, read-write. */
static int remapped(const cudrv_deviceptr *p, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned int prot = 0;

		if (!is_region(p[i]))
			continue;
		if (fakecuda_query(p[i], &prot, NULL) != 0 ||
		    prot != CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE)
			return 0;
	}
	return 1;
}

static void *lib(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);

	CHECK(h != NULL);
	return h;
}

/* vLLM: one equal allocation per layer, then a zero-fill kernel. */
static void engine_vllm(void)
{
	enum { N = 4 };
	const size_t size = 6 * MIB;
	cudrv_result (*gpa_v2)(const char *, void **, int, uint64_t,
			       unsigned int *);
	cudrv_result (*gpa)(const char *, void **, int, uint64_t,
			    unsigned int *);
	cudrv_deviceptr kv[N], small;
	unsigned int st;
	struct drv d;
	void *h = lib();

	*(void **)&gpa_v2 = dlsym(h, "cuGetProcAddress_v2");
	CHECK(gpa_v2 != NULL);
	if (!gpa_v2)
		return;
	/* The runtime looks cuGetProcAddress up through itself. */
	CHECK(OK(gpa_v2("cuGetProcAddress", (void **)&gpa, 12000, 0, &st)));
	CHECK(gpa == gpa_v2);
	CHECK(OK(gpa("cuMemAlloc", (void **)&d.alloc, 12000, 0, &st)));
	CHECK(OK(gpa("cuMemFree", (void **)&d.free, 12000, 0, &st)));
	/* dlsym on the driver's handle answers with the same wrapper. */
	CHECK(dlsym(h, "cuMemAlloc_v2") == (void *)d.alloc);
	CHECK(dlsym(h, "cuMemFree_v2") == (void *)d.free);
	/* Before 3.2 cuMemAlloc was the 32-bit call: never the wrapper. */
	{
		void *old = NULL;

		gpa("cuMemAlloc", &old, 3010, 0, &st);
		CHECK(old != (void *)d.alloc);
	}
	CHECK(OK(gpa("cuLaunchKernel", (void **)&d.launch, 12000, 0, &st)));
	CHECK(OK(gpa("cuMemcpyDtoH", (void **)&d.dtoh, 12000, 0, &st)));
	CHECK(OK(gpa("cuCtxSynchronize", (void **)&d.sync, 12000, 0, &st)));
	if (failures)
		return;
	for (int i = 0; i < N; i++) {
		CHECK(OK(d.alloc(&kv[i], size)));
		CHECK(REGION(kv[i]));
		CHECK(OK(zero(&d, kv[i], size)));
	}
	CHECK(OK(d.alloc(&small, MIB)));
	CHECK(!is_region(small));
	/* NULL is no region, though empty registry slots hold 0. */
	CHECK(!is_region(0));
	CHECK(OK(d.sync()));
	for (int i = 0; i < N; i++) {
		CHECK(holds(&d, kv[i], size, -1));
		CHECK(OK(fill(&d, kv[i], size, (unsigned)i, NULL)));
	}
	CHECK(OK(d.sync()));
	CHECK(OK(vkvctl("suspend", "host")));
	CHECK(released(kv, N));
	CHECK(OK(vkvctl("resume", NULL)));
	CHECK(remapped(kv, N));
	for (int i = 0; i < N; i++)
		CHECK(holds(&d, kv[i], size, i));
	for (int i = 0; i < N; i++) {
		CHECK(OK(d.free(kv[i])));
		CHECK(!is_region(kv[i]));
		/* Unless the driver failed to let it go. */
		CHECK(faults || fakecuda_query(kv[i], NULL, NULL) == -1);
	}
	CHECK(OK(d.free(small)));
}

/* SGLang: K and V per layer, stream-ordered, through CUDA 11.3's lookup. */
static void engine_sglang(void)
{
	enum { N = 3 };
	const size_t size = 4 * MIB;
	cudrv_result (*gpa)(const char *, void **, int, uint64_t);
	cudrv_result (*free_async)(cudrv_deviceptr, cudrv_stream);
	cudrv_result (*ssync)(cudrv_stream);
	cudrv_deviceptr kv[2 * N];
	cudrv_stream s;
	struct drv d;
	void *h = lib();

	*(void **)&gpa = dlsym(h, "cuGetProcAddress");
	CHECK(gpa != NULL);
	if (!gpa)
		return;
	CHECK(OK(gpa("cuMemAllocAsync", (void **)&d.alloc_async, 11030, 0)));
	CHECK(OK(gpa("cuMemFreeAsync", (void **)&free_async, 11030, 0)));
	CHECK(OK(gpa("cuLaunchKernel", (void **)&d.launch, 11030, 0)));
	CHECK(OK(gpa("cuMemcpyDtoH", (void **)&d.dtoh, 11030, 0)));
	CHECK(OK(gpa("cuStreamSynchronize", (void **)&ssync, 11030, 0)));
	CHECK(OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING)));
	if (failures)
		return;
	for (int i = 0; i < 2 * N; i++) {
		CHECK(OK(d.alloc_async(&kv[i], size, s)));
		CHECK(REGION(kv[i]));
		CHECK(OK(fill(&d, kv[i], size, 100u + (unsigned)i, s)));
	}
	CHECK(OK(ssync(s)));
	CHECK(OK(vkvctl("suspend", "disk")));
	CHECK(released(kv, 2 * N));
	/* The next launch resumes the process before it runs. */
	CHECK(OK(fill(&d, kv[0], size, 7, s)));
	CHECK(remapped(kv, 2 * N));
	CHECK(OK(ssync(s)));
	CHECK(holds(&d, kv[0], size, 7));
	for (int i = 1; i < 2 * N; i++)
		CHECK(holds(&d, kv[i], size, 100 + i));
	for (int i = 0; i < 2 * N; i++)
		CHECK(OK(free_async(kv[i], s)));
	CHECK(OK(ssync(s)));
	for (int i = 0; i < 2 * N; i++)
		CHECK(!is_region(kv[i]));
}

static const struct drv direct = {
	.alloc = cuMemAlloc_v2,
	.free = cuMemFree_v2,
	.launch = cuLaunchKernel,
	.dtoh = cuMemcpyDtoH_v2,
	.sync = cuCtxSynchronize,
	.mem_info = cuMemGetInfo_v2,
};

/* TensorRT-LLM: one pool, tagged, over the exported symbols. */
static void engine_trt(void)
{
	const size_t size = 10 * MIB;
	void (*begin)(const char *), (*end)(void);
	cudrv_deviceptr pool, other;

	*(void **)&begin = dlsym(RTLD_DEFAULT, "vkv_shim_region_begin");
	*(void **)&end = dlsym(RTLD_DEFAULT, "vkv_shim_region_end");
	CHECK(begin && end);
	if (!begin || !end)
		return;
	begin("kv");
	CHECK(OK(direct.alloc(&pool, size)));
	end();
	CHECK(OK(direct.alloc(&other, size)));
	CHECK(REGION(pool) && !is_region(other));
	CHECK(OK(fill(&direct, pool, size, 42, NULL)));
	CHECK(OK(direct.sync()));
	CHECK(OK(vkvctl("suspend", "discard")));
	CHECK(released(&pool, 1));
	/* A second suspend is refused; the first holds. */
	CHECK(!is_region(pool) || vkvctl("suspend", "host") != 0);
	CHECK(OK(vkvctl("resume", NULL)));
	CHECK(!is_region(pool) || vkvctl("resume", NULL) != 0);
	CHECK(remapped(&pool, 1));
	/*
	 * Dropped: the engine recomputes over zeroes, at the same address (a
	 * driver allocation, under faults, is not the shim's to drop).
	 */
	CHECK(!is_region(pool) || holds(&direct, pool, size, -1));
	CHECK(OK(fill(&direct, pool, size, 43, NULL)));
	CHECK(holds(&direct, pool, size, 43));
	CHECK(OK(direct.free(pool)));
	CHECK(OK(direct.free(other)));
}

/* A graph captured over a region replays after a suspend and resume. */
static void engine_graph(void)
{
	const size_t size = 4 * MIB;
	cudrv_deviceptr kv;
	cudrv_graph_exec x;
	cudrv_stream s;
	cudrv_graph g;

	CHECK(OK(cuStreamCreate(&s, CUDRV_STREAM_NON_BLOCKING)));
	CHECK(OK(direct.alloc(&kv, size)));
	CHECK(REGION(kv));
	CHECK(cuStreamBeginCapture_v2(s, CUDRV_STREAM_CAPTURE_MODE_GLOBAL) ==
	      0);
	CHECK(OK(fill(&direct, kv, size, 9, s)));
	/*
	 * Stream-ordered allocation under capture makes graph memory nodes,
	 * the driver's business: the shim makes no region, whatever the size.
	 */
	{
		cudrv_deviceptr node = 0;
		cudrv_result want, got;

		want = cuMemAllocAsync(&node, MIB, s);
		got = cuMemAllocAsync(&node, size, s);
		/* Unless a fault failed one of them. */
		CHECK(got == want || faults);
		CHECK(!got || !is_region(node));
		if (!got)
			CHECK(OK(cuMemFreeAsync(node, s)));
		if (!want)
			CHECK(OK(cuMemFreeAsync(node, s)));
	}
	CHECK(OK(cuStreamEndCapture(s, &g)));
	CHECK(OK(cuGraphInstantiateWithFlags(&x, g, 0)));
	CHECK(OK(fill(&direct, kv, size, 1, s)));
	CHECK(OK(cuStreamSynchronize(s)));
	CHECK(OK(vkvctl("suspend", "host")));
	CHECK(released(&kv, 1));
	/* The launch resumes first: the graph's address is mapped again. */
	CHECK(OK(cuGraphLaunch(x, s)));
	CHECK(OK(cuStreamSynchronize(s)));
	CHECK(holds(&direct, kv, size, 9));
	CHECK(OK(cuGraphExecDestroy(x)));
	CHECK(OK(cuGraphDestroy(g)));
	CHECK(OK(direct.free(kv)));
}

/*
 * The per-thread default stream's synchronous copies (what a runtime built
 * with per-thread default streams looks up): the shim's wrappers, gated,
 * so that a copy from a suspended process resumes it and sees its data.
 */
static void engine_ptds(void)
{
	const uint64_t ptds = CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
	const size_t size = 4 * MIB;
	cudrv_result (*gpa)(const char *, void **, int, uint64_t,
			    unsigned int *);
	cudrv_result (*htod)(cudrv_deviceptr, const void *, size_t);
	cudrv_result (*legacy_htod)(cudrv_deviceptr, const void *, size_t);
	struct drv d = direct;
	cudrv_deviceptr kv;
	unsigned int st;
	void *h = lib();

	*(void **)&gpa = dlsym(h, "cuGetProcAddress_v2");
	CHECK(gpa != NULL);
	if (!gpa)
		return;
	CHECK(OK(gpa("cuMemcpyDtoH", (void **)&d.dtoh, 12000, ptds, &st)));
	CHECK(OK(gpa("cuMemcpyHtoD", (void **)&htod, 12000, ptds, &st)));
	CHECK(OK(gpa("cuMemcpyHtoD", (void **)&legacy_htod, 12000, 0, &st)));
	/* The shim's own entry points, not the driver's, nor each other. */
	CHECK((void *)d.dtoh == dlsym(RTLD_DEFAULT, "cuMemcpyDtoH_v2_ptds"));
	CHECK((void *)htod == dlsym(RTLD_DEFAULT, "cuMemcpyHtoD_v2_ptds"));
	CHECK((void *)d.dtoh != dlsym(h, "cuMemcpyDtoH_v2") &&
	      (void *)htod != (void *)legacy_htod);
	if (failures)
		return;
	CHECK(OK(direct.alloc(&kv, size)));
	CHECK(REGION(kv));
	CHECK(OK(fill(&direct, kv, size, 11, NULL)));
	CHECK(OK(direct.sync()));
	CHECK(OK(vkvctl("suspend", "host")));
	CHECK(released(&kv, 1));
	/* The copy resumes the process first and reads what was there. */
	CHECK(holds(&d, kv, size, 11));
	CHECK(remapped(&kv, 1));
	CHECK(OK(vkvctl("suspend", "disk")));
	CHECK(released(&kv, 1));
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = pattern(i, 12);
	CHECK(OK(htod(kv, chunk, sizeof(chunk))));
	CHECK(remapped(&kv, 1));
	CHECK(holds(&d, kv, sizeof(chunk), 12));
	/* Past the bytes written, the region's own came back from disk. */
	CHECK(OK(d.dtoh(chunk, kv + sizeof(chunk), sizeof(chunk))));
	for (size_t i = 0; i < sizeof(chunk); i++)
		if (chunk[i] != pattern(sizeof(chunk) + i, 11)) {
			CHECK(!"bytes after the copy lost");
			break;
		}
	CHECK(OK(direct.free(kv)));
}

/*
 * Run with FAKECUDA_FAIL=cuMemcpyDtoH:2,cuMemCreate:3: a suspend fails
 * copying out the second region, and putting the first back fails too.
 * The process must not run on with the first region's memory gone: its
 * next copy brings it back, bytes intact.
 */
static void engine_rollback(void)
{
	const size_t size = 4 * MIB;
	cudrv_deviceptr kv[2];

	for (int i = 0; i < 2; i++) {
		CHECK(direct.alloc(&kv[i], size) == 0 && is_region(kv[i]));
		CHECK(fill(&direct, kv[i], size, 20u + (unsigned)i, NULL) == 0);
	}
	CHECK(direct.sync() == 0);
	CHECK(vkvctl("suspend", "host") != 0);
	for (int i = 0; i < 2; i++)
		CHECK(holds(&direct, kv[i], size, 20 + i));
	CHECK(remapped(kv, 2));
	for (int i = 0; i < 2; i++)
		CHECK(direct.free(kv[i]) == 0);
}

/* What device dev's kernels may do at p (CUmemAccess_flags), -1 unmapped. */
static int access_of(cudrv_deviceptr p, int dev)
{
	unsigned int prot;

	return fakecuda_query_access(p, dev, &prot) ? -1 : (int)prot;
}

/*
 * Run with FAKECUDA_DEVICES=2. Memory from cuMemAlloc is reachable from a
 * context that enabled peer access to its owner; a region standing in for
 * it must be too (made before or after the enabling, and after a resume),
 * and stop being when access is disabled. VMM memory of the engine's own
 * is not the shim's business: it stays as cuMemSetAccess left it.
 */
static void engine_peer(void)
{
	const int rw = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE;
	static const struct cudrv_mem_alloc_prop prop = {
		.type = CUDRV_MEM_ALLOCATION_TYPE_PINNED,
		.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
	};
	const struct cudrv_mem_access_desc own = {
		.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
		.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE,
	};
	const size_t size = 4 * MIB;
	cudrv_deviceptr kv0, kv1, vmm;
	cudrv_function fill1;
	cudrv_context c0, c1;
	cudrv_module mod1;
	cudrv_mem_handle h;
	cudrv_device d1;
	int can = 0;

	CHECK(cuCtxGetCurrent(&c0) == 0);
	CHECK(cuDeviceGet(&d1, 1) == 0);
	CHECK(cuDeviceCanAccessPeer(&can, 0, 1) == 0 && can);
	CHECK(cuDevicePrimaryCtxRetain(&c1, d1) == 0);
	CHECK(direct.alloc(&kv0, size) == 0 && is_region(kv0));
	CHECK(cuMemAddressReserve(&vmm, size, 0, 0, 0) == 0);
	CHECK(cuMemCreate(&h, size, &prop, 0) == 0);
	CHECK(cuMemMap(vmm, size, 0, h, 0) == 0);
	CHECK(cuMemSetAccess(vmm, size, &own, 1) == 0);
	if (failures)
		return;
	CHECK(access_of(kv0, 0) == rw && access_of(kv0, 1) == 0);

	/* Device 1 enables access to device 0's memory. */
	CHECK(cuCtxSetCurrent(c1) == 0);
	CHECK(cuCtxEnablePeerAccess(c0, 0) == 0);
	CHECK(access_of(kv0, 1) == rw);
	CHECK(access_of(vmm, 1) == 0 && access_of(vmm, 0) == rw);
	/* A kernel of device 1 (its own module) writes device 0's region. */
	CHECK(cuModuleLoadData(&mod1, ".fakecuda fill") == 0);
	CHECK(cuModuleGetFunction(&fill1, mod1, "fill") == 0);
	{
		cudrv_deviceptr p = kv0;
		size_t n = size;
		unsigned seed = 31;
		void *params[] = {&p, &n, &seed};

		CHECK(direct.launch(fill1, 1, 1, 1, 1, 1, 1, 0, NULL, params,
				    NULL) == 0);
	}
	CHECK(direct.sync() == 0);

	/* A region made afterwards is reachable at once. */
	CHECK(cuCtxSetCurrent(c0) == 0);
	CHECK(direct.alloc(&kv1, size) == 0 && is_region(kv1));
	CHECK(access_of(kv1, 1) == rw);
	CHECK(holds(&direct, kv0, size, 31));

	/* A resume maps new memory: the same access again. */
	CHECK(vkvctl("suspend", "host") == 0);
	CHECK(vkvctl("resume", NULL) == 0);
	CHECK(access_of(kv0, 1) == rw && access_of(kv1, 1) == rw);
	CHECK(access_of(kv0, 0) == rw && access_of(kv1, 0) == rw);
	CHECK(holds(&direct, kv0, size, 31));

	/* Disabled: out of device 1's reach, as cuMemAlloc memory would be. */
	CHECK(cuCtxSetCurrent(c1) == 0);
	CHECK(cuCtxDisablePeerAccess(c0) == 0);
	CHECK(access_of(kv0, 1) == 0 && access_of(kv1, 1) == 0);
	CHECK(access_of(kv0, 0) == rw);
	/* Suspended when disabled, resumed after: still out of reach. */
	CHECK(cuCtxSetCurrent(c0) == 0);
	CHECK(vkvctl("suspend", "host") == 0);
	CHECK(vkvctl("resume", NULL) == 0);
	CHECK(access_of(kv0, 1) == 0 && access_of(kv0, 0) == rw);

	CHECK(direct.free(kv0) == 0 && direct.free(kv1) == 0);
	CHECK(cuModuleUnload(mod1) == 0);
	CHECK(cuMemUnmap(vmm, size) == 0 && cuMemRelease(h) == 0);
	CHECK(cuMemAddressFree(vmm, size) == 0);
}

struct racing_alloc {
	cudrv_context ctx;
	cudrv_deviceptr kv;
	cudrv_result res;
};

static void *alloc_in(void *arg)
{
	struct racing_alloc *a = arg;

	if (cuCtxSetCurrent(a->ctx))
		a->res = CUDRV_ERROR_INVALID_CONTEXT;
	else
		a->res = direct.alloc(&a->kv, 4 * MIB);
	return NULL;
}

/*
 * Run with FAKECUDA_DEVICES=2 and cuMemSetAccess slowed down (200 ms): peer
 * access enabled while another thread is making a region (its access being
 * set, the region not yet registered) reaches that region too.
 */
static void engine_peer_race(void)
{
	const int rw = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE;
	struct racing_alloc a = {.res = CUDRV_ERROR_UNKNOWN};
	cudrv_context c1;
	cudrv_device d1;
	pthread_t t;

	CHECK(cuCtxGetCurrent(&a.ctx) == 0);
	CHECK(cuDeviceGet(&d1, 1) == 0);
	CHECK(cuDevicePrimaryCtxRetain(&c1, d1) == 0);
	CHECK(pthread_create(&t, NULL, alloc_in, &a) == 0);
	if (failures)
		return;
	/* Well inside the other thread's cuMemSetAccess. */
	usleep(50 * 1000);
	CHECK(cuCtxSetCurrent(c1) == 0);
	CHECK(cuCtxEnablePeerAccess(a.ctx, 0) == 0);
	pthread_join(t, NULL);
	CHECK(a.res == 0 && is_region(a.kv));
	CHECK(access_of(a.kv, 1) == rw);
	CHECK(cuCtxSetCurrent(a.ctx) == 0);
	CHECK(direct.free(a.kv) == 0);
}

static cudrv_result create_result;
static size_t create_size;

/* PyTorch's expandable segments: cuMemCreate from a thread with no context. */
static void *create_elsewhere(void *arg)
{
	static const struct cudrv_mem_alloc_prop prop = {
		.type = CUDRV_MEM_ALLOCATION_TYPE_PINNED,
		.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE, .id = 0},
	};

	create_result = cuMemCreate(arg, create_size, &prop, 0);
	return NULL;
}

static cudrv_result create_in_thread(cudrv_mem_handle *h, size_t size)
{
	pthread_t t;

	create_size = size;
	if (pthread_create(&t, NULL, create_elsewhere, h))
		return CUDRV_ERROR_UNKNOWN;
	pthread_join(t, NULL);
	return create_result;
}

/* Run with VKV_SHIM_LIMIT=16M and regions of 6M exactly. */
static void engine_limit(void)
{
	cudrv_deviceptr kv, small, more;
	cudrv_mem_handle h, other;
	size_t fr, total;

	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(total == 16 * MIB && fr == 16 * MIB);
	CHECK(direct.alloc(&kv, 6 * MIB) == 0 && is_region(kv));
	CHECK(direct.alloc(&small, 2 * MIB) == 0 && !is_region(small));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(total == 16 * MIB && fr == 8 * MIB);
	CHECK(OK(create_in_thread(&h, 4 * MIB)));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == 4 * MIB);
	/* Over the limit: what the driver says when memory runs out. */
	CHECK(direct.alloc(&more, 6 * MIB) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(direct.alloc(&more, 5 * MIB) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(create_in_thread(&other, 6 * MIB) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(OK(direct.alloc(&more, 4 * MIB)));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == 0);
	CHECK(direct.alloc(&small, 1) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(OK(direct.free(more)));
	CHECK(OK(cuMemRelease(h)));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == 8 * MIB);
	CHECK(OK(direct.free(kv)));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == 14 * MIB);
}

/* A resume without device memory fails, keeps the process suspended, and
 * succeeds once memory is back. */
static void engine_oom(void)
{
	const size_t size = 6 * MIB;
	cudrv_deviceptr kv, hog;

	CHECK(direct.alloc(&kv, size) == 0 && is_region(kv));
	CHECK(OK(fill(&direct, kv, size, 5, NULL)));
	CHECK(OK(direct.sync()));
	CHECK(OK(vkvctl("suspend", "host")));
	/* Another process (here, the same one unshimmed) takes the memory. */
	fakecuda_set_mem(8 * MIB);
	CHECK(OK(direct.alloc(&hog, 4 * MIB)));
	CHECK(vkvctl("resume", NULL) != 0);
	CHECK(released(&kv, 1));
	CHECK(fill(&direct, kv, size, 6, NULL) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(OK(direct.free(hog)));
	CHECK(OK(vkvctl("resume", NULL)));
	CHECK(remapped(&kv, 1));
	CHECK(holds(&direct, kv, size, 5));
	CHECK(OK(direct.free(kv)));
}

/*
 * Run with VKV_SHIM_LIMIT=16M: a region counts what it maps, rounded up to
 * the granularity (2M here), not what was asked.
 */
static void engine_round(void)
{
	void (*begin)(const char *), (*end)(void);
	cudrv_deviceptr small, kv;
	size_t fr, total;

	*(void **)&begin = dlsym(RTLD_DEFAULT, "vkv_shim_region_begin");
	*(void **)&end = dlsym(RTLD_DEFAULT, "vkv_shim_region_end");
	CHECK(begin && end);
	if (!begin || !end)
		return;
	CHECK(direct.alloc(&small, 5 * MIB) == 0 && !is_region(small));
	begin("kv");
	/* 10M + 4K asked, 12M mapped: over 16M with the 5M above. */
	CHECK(direct.alloc(&kv, 10 * MIB + 4096) == CUDRV_ERROR_OUT_OF_MEMORY);
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == 11 * MIB);
	CHECK(direct.alloc(&kv, 10 * MIB) == 0 && is_region(kv));
	end();
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(fr == MIB);
	CHECK(OK(direct.free(kv)));
	CHECK(OK(direct.free(small)));
}

/*
 * Run with VKV_SHIM=0 and VKV_SHIM_LIMIT=16M: nothing is taken, nothing
 * limited, everything works.
 */
static void engine_off(void)
{
	cudrv_deviceptr kv, big;
	size_t fr, total;

	CHECK(OK(direct.alloc(&kv, 6 * MIB)));
	CHECK(!is_region(kv));
	CHECK(OK(direct.alloc(&big, 20 * MIB)));
	CHECK(OK(direct.free(big)));
	CHECK(OK(fill(&direct, kv, 6 * MIB, 3, NULL)));
	CHECK(holds(&direct, kv, 6 * MIB, 3));
	CHECK(OK(direct.mem_info(&fr, &total)));
	CHECK(total > 16 * MIB);
	CHECK(OK(direct.free(kv)));
}

/*
 * SHIM_ENGINE_COUNTS=FILE: how often the run called each driver function a
 * fault may be injected into, "name count" per line, for the suite to fail
 * each of those calls in turn.
 */
static void write_counts(const char *path)
{
	static const char *const fns[] = {
		"cuMemAddressReserve", "cuMemCreate",	   "cuMemMap",
		"cuMemSetAccess",      "cuMemcpyDtoH",	   "cuMemcpyHtoD",
		"cuCtxSynchronize",    "cuCtxPushCurrent", "cuMemUnmap",
		"cuMemRelease",	       "cuMemAddressFree", "cuLaunchKernel",
		"cuGraphLaunch",       "cuMemAlloc",	   "cuMemAllocAsync",
	};
	FILE *f = fopen(path, "w");

	if (!f) {
		CHECK(!"cannot write the counts");
		return;
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(*fns); i++)
		fprintf(f, "%s %llu\n", fns[i],
			(unsigned long long)fakecuda_calls(fns[i]));
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *counts;

	static const struct {
		const char *name;
		void (*fn)(void);
	} engines[] = {
		{"vllm", engine_vllm},	 {"sglang", engine_sglang},
		{"trt", engine_trt},	 {"graph", engine_graph},
		{"limit", engine_limit}, {"oom", engine_oom},
		{"off", engine_off},	 {"round", engine_round},
		{"ptds", engine_ptds},	 {"rollback", engine_rollback},
		{"peer", engine_peer},	 {"peer_race", engine_peer_race},
	};

	counts = getenv("SHIM_ENGINE_COUNTS");
	faults = getenv("SHIM_ENGINE_FAULTS") &&
		 !strcmp(getenv("SHIM_ENGINE_FAULTS"), "1");
	for (size_t i = 0; argc == 2 && i < sizeof(engines) / sizeof(*engines);
	     i++)
		if (!strcmp(argv[1], engines[i].name)) {
			setup();
			if (!failures)
				engines[i].fn();
			if (counts)
				write_counts(counts);
			return failures ? 1 : 0;
		}
	fprintf(stderr, "usage: shim_cuda_engine ENGINE\n");
	return 2;
}
