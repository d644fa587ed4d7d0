/* SPDX-License-Identifier: MIT */
/*
 * How the engine reaches the driver, and how the shim gets in the way:
 *
 * - exported symbols: the shim defines the wrapped functions under their
 *   driver names, and a preloaded library comes before libcuda.so.1;
 * - dlsym: a runtime that dlopen()s libcuda.so.1 and looks its functions
 *   up on the handle gets the wrappers instead;
 * - cuGetProcAddress / cuGetProcAddress_v2 (CUDA 12 runtimes, PyTorch):
 *   whatever the driver answers is swapped for the wrapper of the same
 *   function, the lookup of cuGetProcAddress itself included.
 *
 * Answers are swapped by what the driver returned: an exported entry point
 * the shim wraps becomes its wrapper. A driver may answer cuGetProcAddress
 * with entry points of its own instead; those are matched by base name and
 * version as cuda.h versions them ("cuMemAlloc" at 3.1 is the 32-bit one,
 * from 3.2 cuMemAlloc_v2; the per-thread default stream variants under
 * that flag). Only a function found (the driver's answer not NULL) is
 * swapped. Everything else, cuGetExportTable included, goes through
 * untouched.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cuda.h"

#define EXPORT __attribute__((visibility("default")))

struct shimi_cu shimi_cu;

static const struct entry {
	const char *name;
	void **real; /* in shimi_cu */
	void *wrapper; /* NULL: called by the shim, not wrapped */
} entries[] = {
#define R(name)                                                                \
	{                                                                      \
#name, (void **)&shimi_cu.name, NULL                           \
	}
#define W(name)                                                                \
	{                                                                      \
#name, (void **)&shimi_cu.name, (void *)name                   \
	}
	R(cuCtxGetCurrent),
	R(cuCtxGetDevice),
	R(cuCtxPushCurrent_v2),
	R(cuCtxPopCurrent_v2),
	R(cuMemGetAllocationGranularity),
	R(cuMemAddressReserve),
	R(cuMemAddressFree),
	R(cuMemMap),
	R(cuMemSetAccess),
	R(cuMemUnmap),
	R(cuStreamIsCapturing),
	W(cuCtxSynchronize),
	W(cuCtxEnablePeerAccess),
	W(cuCtxDisablePeerAccess),
	W(cuMemGetInfo_v2),
	W(cuMemAlloc_v2),
	W(cuMemFree_v2),
	W(cuMemAllocAsync),
	W(cuMemAllocAsync_ptsz),
	W(cuMemFreeAsync),
	W(cuMemFreeAsync_ptsz),
	W(cuMemCreate),
	W(cuMemRelease),
	W(cuMemcpyHtoD_v2),
	W(cuMemcpyDtoH_v2),
	W(cuMemcpyHtoDAsync_v2),
	W(cuMemcpyHtoDAsync_v2_ptsz),
	W(cuMemcpyDtoHAsync_v2),
	W(cuMemcpyDtoHAsync_v2_ptsz),
	W(cuMemcpyDtoD_v2),
	W(cuMemcpyDtoDAsync_v2),
	W(cuMemcpyDtoDAsync_v2_ptsz),
	W(cuMemcpy),
	W(cuMemcpyAsync),
	W(cuMemcpyAsync_ptsz),
	W(cuMemsetD8_v2),
	W(cuMemsetD8Async),
	W(cuMemsetD32_v2),
	W(cuMemsetD32Async),
	W(cuLaunchKernel),
	W(cuLaunchKernel_ptsz),
	W(cuLaunchKernelEx),
	W(cuLaunchKernelEx_ptsz),
	W(cuGraphLaunch),
	W(cuGraphLaunch_ptsz),
	W(cuStreamSynchronize),
	W(cuStreamSynchronize_ptsz),
	W(cuEventSynchronize),
	W(cuMemcpyHtoD_v2_ptds),
	W(cuMemcpyDtoH_v2_ptds),
	W(cuMemcpyDtoD_v2_ptds),
	W(cuMemcpy_ptds),
	W(cuMemsetD8_v2_ptds),
	W(cuMemsetD32_v2_ptds),
	W(cuMemsetD8Async_ptsz),
	W(cuMemsetD32Async_ptsz),
	W(cuMemsetD16_v2),
	W(cuMemsetD16_v2_ptds),
	W(cuMemsetD16Async),
	W(cuMemsetD16Async_ptsz),
	W(cuMemsetD2D8_v2),
	W(cuMemsetD2D8_v2_ptds),
	W(cuMemsetD2D16_v2),
	W(cuMemsetD2D16_v2_ptds),
	W(cuMemsetD2D32_v2),
	W(cuMemsetD2D32_v2_ptds),
	W(cuMemsetD2D8Async),
	W(cuMemsetD2D8Async_ptsz),
	W(cuMemsetD2D16Async),
	W(cuMemsetD2D16Async_ptsz),
	W(cuMemsetD2D32Async),
	W(cuMemsetD2D32Async_ptsz),
	W(cuMemcpyPeer),
	W(cuMemcpyPeer_ptds),
	W(cuMemcpyPeerAsync),
	W(cuMemcpyPeerAsync_ptsz),
	W(cuMemcpy2D_v2),
	W(cuMemcpy2D_v2_ptds),
	W(cuMemcpy2DUnaligned_v2),
	W(cuMemcpy2DUnaligned_v2_ptds),
	W(cuMemcpy2DAsync_v2),
	W(cuMemcpy2DAsync_v2_ptsz),
	W(cuMemcpy3D_v2),
	W(cuMemcpy3D_v2_ptds),
	W(cuMemcpy3DAsync_v2),
	W(cuMemcpy3DAsync_v2_ptsz),
	W(cuMemcpy3DPeer),
	W(cuMemcpy3DPeer_ptds),
	W(cuMemcpy3DPeerAsync),
	W(cuMemcpy3DPeerAsync_ptsz),
	W(cuMemcpyDtoA_v2),
	W(cuMemcpyDtoA_v2_ptds),
	W(cuMemcpyAtoD_v2),
	W(cuMemcpyAtoD_v2_ptds),
	W(cuLaunchCooperativeKernel),
	W(cuLaunchCooperativeKernel_ptsz),
	W(cuGetProcAddress),
	W(cuGetProcAddress_v2),
#undef R
#undef W
};
#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

typedef void *(*dlsym_fn)(void *, const char *);
static _Atomic(dlsym_fn) real_dlsym;
static __thread int in_dlsym __attribute__((tls_model("initial-exec")));
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int loaded;

/* glibc's dlsym: its x86-64 base version, else the newest. */
static dlsym_fn get_real_dlsym(void)
{
	dlsym_fn f = atomic_load_explicit(&real_dlsym, memory_order_acquire);

	if (f)
		return f;
	f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
	if (!f)
		f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
	if (f)
		atomic_store_explicit(&real_dlsym, f, memory_order_release);
	return f;
}

/*
 * Resolve the driver's functions on its own handle, never through the
 * global scope, where the shim's wrappers come first. With may_open 0 only
 * a libcuda.so.1 already loaded is used (dlsym must not load the driver
 * behind a program's back).
 */
static int load(int may_open)
{
	dlsym_fn sym;
	void *h;

	if (atomic_load_explicit(&loaded, memory_order_acquire))
		return 0;
	sym = get_real_dlsym();
	if (!sym)
		return -ENOSYS;
	pthread_mutex_lock(&load_lock);
	if (atomic_load(&loaded)) {
		pthread_mutex_unlock(&load_lock);
		return 0;
	}
	h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (!h && may_open)
		h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		pthread_mutex_unlock(&load_lock);
		return -ENOENT;
	}
	for (size_t i = 0; i < NENTRIES; i++)
		*entries[i].real = sym(h, entries[i].name);
	/* The handle stays open: the wrappers call into it until exit. */
	atomic_store_explicit(&loaded, 1, memory_order_release);
	pthread_mutex_unlock(&load_lock);
	return 0;
}

int shimi_cuda_load(void)
{
	return load(1);
}

/* The shim's wrapper of the driver function fn, or fn itself. */
static void *wrap(void *fn)
{
	if (!fn || !atomic_load_explicit(&loaded, memory_order_acquire))
		return fn;
	for (size_t i = 0; i < NENTRIES; i++)
		if (entries[i].wrapper && *entries[i].real == fn)
			return entries[i].wrapper;
	return fn;
}

EXPORT void *dlsym(void *handle, const char *name)
{
	dlsym_fn sym = get_real_dlsym();
	void *fn;

	if (!sym)
		return NULL;
	/*
	 * RTLD_NEXT is relative to the caller: a tail call keeps the
	 * caller's return address for glibc to find. The shim's own lookups
	 * (the real allocator at start-up) come here too, and the guard
	 * keeps a lookup made by the loading below from recursing.
	 */
	if (handle == RTLD_NEXT || in_dlsym)
		return sym(handle, name);
	fn = sym(handle, name);
	if (fn && name[0] == 'c' && name[1] == 'u') {
		in_dlsym = 1;
		if (!load(0))
			fn = wrap(fn);
		in_dlsym = 0;
	}
	return fn;
}

/*
 * By name, for a driver whose cuGetProcAddress answers with entry points
 * other than its exported symbols: the wrapper of the versioned function
 * that base names at cuda_version, as cuda.h versions it. per_thread: the
 * function has a per-thread default stream variant (_ptsz for the calls
 * that take a stream, _ptds for those that do not), which the shim wraps
 * only where ptsz is set (else the driver's answer stands).
 */
static const struct versioned {
	const char *base;
	int since;
	int per_thread;
	void *legacy, *ptsz;
} versioned[] = {
	{"cuMemAlloc", 3020, 0, (void *)cuMemAlloc_v2, NULL},
	{"cuMemFree", 3020, 0, (void *)cuMemFree_v2, NULL},
	{"cuMemGetInfo", 3020, 0, (void *)cuMemGetInfo_v2, NULL},
	{"cuMemAllocAsync", 11020, 1, (void *)cuMemAllocAsync,
	 (void *)cuMemAllocAsync_ptsz},
	{"cuMemFreeAsync", 11020, 1, (void *)cuMemFreeAsync,
	 (void *)cuMemFreeAsync_ptsz},
	{"cuMemCreate", 10020, 0, (void *)cuMemCreate, NULL},
	{"cuMemRelease", 10020, 0, (void *)cuMemRelease, NULL},
	{"cuLaunchKernel", 4000, 1, (void *)cuLaunchKernel,
	 (void *)cuLaunchKernel_ptsz},
	{"cuLaunchKernelEx", 11060, 1, (void *)cuLaunchKernelEx,
	 (void *)cuLaunchKernelEx_ptsz},
	{"cuGraphLaunch", 10000, 1, (void *)cuGraphLaunch,
	 (void *)cuGraphLaunch_ptsz},
	{"cuStreamSynchronize", 2000, 1, (void *)cuStreamSynchronize,
	 (void *)cuStreamSynchronize_ptsz},
	{"cuEventSynchronize", 2000, 0, (void *)cuEventSynchronize, NULL},
	{"cuCtxSynchronize", 2000, 0, (void *)cuCtxSynchronize, NULL},
	{"cuCtxEnablePeerAccess", 4000, 0, (void *)cuCtxEnablePeerAccess, NULL},
	{"cuCtxDisablePeerAccess", 4000, 0, (void *)cuCtxDisablePeerAccess,
	 NULL},
	{"cuMemcpyHtoD", 3020, 1, (void *)cuMemcpyHtoD_v2,
	 (void *)cuMemcpyHtoD_v2_ptds},
	{"cuMemcpyDtoH", 3020, 1, (void *)cuMemcpyDtoH_v2,
	 (void *)cuMemcpyDtoH_v2_ptds},
	{"cuMemcpyDtoD", 3020, 1, (void *)cuMemcpyDtoD_v2,
	 (void *)cuMemcpyDtoD_v2_ptds},
	{"cuMemcpyHtoDAsync", 3020, 1, (void *)cuMemcpyHtoDAsync_v2,
	 (void *)cuMemcpyHtoDAsync_v2_ptsz},
	{"cuMemcpyDtoHAsync", 3020, 1, (void *)cuMemcpyDtoHAsync_v2,
	 (void *)cuMemcpyDtoHAsync_v2_ptsz},
	{"cuMemcpyDtoDAsync", 3020, 1, (void *)cuMemcpyDtoDAsync_v2,
	 (void *)cuMemcpyDtoDAsync_v2_ptsz},
	{"cuMemcpy", 4000, 1, (void *)cuMemcpy, (void *)cuMemcpy_ptds},
	{"cuMemcpyAsync", 4000, 1, (void *)cuMemcpyAsync,
	 (void *)cuMemcpyAsync_ptsz},
	{"cuMemsetD8", 3020, 1, (void *)cuMemsetD8_v2,
	 (void *)cuMemsetD8_v2_ptds},
	{"cuMemsetD8Async", 3020, 1, (void *)cuMemsetD8Async,
	 (void *)cuMemsetD8Async_ptsz},
	{"cuMemsetD32", 3020, 1, (void *)cuMemsetD32_v2,
	 (void *)cuMemsetD32_v2_ptds},
	{"cuMemsetD32Async", 3020, 1, (void *)cuMemsetD32Async,
	 (void *)cuMemsetD32Async_ptsz},
	{"cuMemsetD16", 3020, 1, (void *)cuMemsetD16_v2,
	 (void *)cuMemsetD16_v2_ptds},
	{"cuMemsetD16Async", 3020, 1, (void *)cuMemsetD16Async,
	 (void *)cuMemsetD16Async_ptsz},
	{"cuMemsetD2D8", 3020, 1, (void *)cuMemsetD2D8_v2,
	 (void *)cuMemsetD2D8_v2_ptds},
	{"cuMemsetD2D16", 3020, 1, (void *)cuMemsetD2D16_v2,
	 (void *)cuMemsetD2D16_v2_ptds},
	{"cuMemsetD2D32", 3020, 1, (void *)cuMemsetD2D32_v2,
	 (void *)cuMemsetD2D32_v2_ptds},
	{"cuMemsetD2D8Async", 3020, 1, (void *)cuMemsetD2D8Async,
	 (void *)cuMemsetD2D8Async_ptsz},
	{"cuMemsetD2D16Async", 3020, 1, (void *)cuMemsetD2D16Async,
	 (void *)cuMemsetD2D16Async_ptsz},
	{"cuMemsetD2D32Async", 3020, 1, (void *)cuMemsetD2D32Async,
	 (void *)cuMemsetD2D32Async_ptsz},
	{"cuMemcpyPeer", 4000, 1, (void *)cuMemcpyPeer,
	 (void *)cuMemcpyPeer_ptds},
	{"cuMemcpyPeerAsync", 4000, 1, (void *)cuMemcpyPeerAsync,
	 (void *)cuMemcpyPeerAsync_ptsz},
	{"cuMemcpy2D", 3020, 1, (void *)cuMemcpy2D_v2,
	 (void *)cuMemcpy2D_v2_ptds},
	{"cuMemcpy2DUnaligned", 3020, 1, (void *)cuMemcpy2DUnaligned_v2,
	 (void *)cuMemcpy2DUnaligned_v2_ptds},
	{"cuMemcpy2DAsync", 3020, 1, (void *)cuMemcpy2DAsync_v2,
	 (void *)cuMemcpy2DAsync_v2_ptsz},
	{"cuMemcpy3D", 3020, 1, (void *)cuMemcpy3D_v2,
	 (void *)cuMemcpy3D_v2_ptds},
	{"cuMemcpy3DAsync", 3020, 1, (void *)cuMemcpy3DAsync_v2,
	 (void *)cuMemcpy3DAsync_v2_ptsz},
	{"cuMemcpy3DPeer", 4000, 1, (void *)cuMemcpy3DPeer,
	 (void *)cuMemcpy3DPeer_ptds},
	{"cuMemcpy3DPeerAsync", 4000, 1, (void *)cuMemcpy3DPeerAsync,
	 (void *)cuMemcpy3DPeerAsync_ptsz},
	{"cuMemcpyDtoA", 3020, 1, (void *)cuMemcpyDtoA_v2,
	 (void *)cuMemcpyDtoA_v2_ptds},
	{"cuMemcpyAtoD", 3020, 1, (void *)cuMemcpyAtoD_v2,
	 (void *)cuMemcpyAtoD_v2_ptds},
	{"cuLaunchCooperativeKernel", 9000, 1,
	 (void *)cuLaunchCooperativeKernel,
	 (void *)cuLaunchCooperativeKernel_ptsz},
	/* Newest last: a lookup takes the last row it reaches. */
	{"cuGetProcAddress", 11030, 0, (void *)cuGetProcAddress, NULL},
	{"cuGetProcAddress", 12000, 0, (void *)cuGetProcAddress_v2, NULL},
};

static void *wrap_lookup(const char *symbol, void *fn, int cuda_version,
			 uint64_t flags)
{
	void *w = wrap(fn), *by_name = NULL;

	if (w != fn || !fn || !symbol)
		return w;
	for (size_t i = 0; i < sizeof(versioned) / sizeof(versioned[0]); i++) {
		const struct versioned *v = &versioned[i];

		if (strcmp(v->base, symbol) || cuda_version < v->since)
			continue;
		if (v->per_thread &&
		    (flags & CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
			by_name = v->ptsz;
		else
			by_name = v->legacy;
	}
	return by_name ? by_name : fn;
}

EXPORT cudrv_result cuGetProcAddress_v2(const char *symbol, void **pfn,
					int cuda_version, uint64_t flags,
					unsigned int *status)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuGetProcAddress_v2)
		return CUDRV_ERROR_NOT_INITIALIZED;
	res = shimi_cu.cuGetProcAddress_v2(symbol, pfn, cuda_version, flags,
					   status);
	if (!res && pfn)
		*pfn = wrap_lookup(symbol, *pfn, cuda_version, flags);
	return res;
}

EXPORT cudrv_result cuGetProcAddress(const char *symbol, void **pfn,
				     int cuda_version, uint64_t flags)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuGetProcAddress)
		return CUDRV_ERROR_NOT_INITIALIZED;
	res = shimi_cu.cuGetProcAddress(symbol, pfn, cuda_version, flags);
	if (!res && pfn)
		*pfn = wrap_lookup(symbol, *pfn, cuda_version, flags);
	return res;
}
