/* SPDX-License-Identifier: MIT */
/*
 * The calls that touch device memory or wait for work that does: kernel
 * and graph launches, copies, memsets, synchronisations. While the process
 * is suspended its device regions have no physical memory, and a kernel
 * touching them would fault (an illegal address, fatal to the context), so
 * each of these calls first resumes the process, and a suspend waits for
 * the ones in flight and holds new ones until it is done.
 */
#include <errno.h>

#include "cuda.h"

#define EXPORT __attribute__((visibility("default")))

_Atomic int shimi_cuda_regions;

static __attribute__((noinline)) cudrv_result gate_enter_slow(int *entered)
{
	if (shimi_cuda_load())
		return CUDRV_ERROR_NOT_INITIALIZED;
	/*
	 * A call that skips the gate cannot touch a region: the flag is set
	 * before the region's address is handed out.
	 */
	if (!atomic_load(&shimi_cuda_regions))
		return CUDRV_SUCCESS;
	while (shimi_run_enter()) {
		int err = shimi_resume();

		/* Another thread's resume won the race: enter again. */
		if (err == -ENOMEM)
			return CUDRV_ERROR_OUT_OF_MEMORY;
		if (err && err != -EALREADY)
			return CUDRV_ERROR_UNKNOWN;
	}
	*entered = 1;
	return CUDRV_SUCCESS;
}

cudrv_result shimi_gate_enter(int *entered)
{
	*entered = 0;
	return gate_enter_slow(entered);
}

void shimi_gate_leave(void)
{
	shimi_run_leave();
}

/*
 * params: the declaration's; args: the call's. The common case stays in
 * the exported function, with no call before the driver's: a device region
 * exists (so the driver is loaded: regions are made with it) and the gate
 * lets the call through on a thread-local store and one load. Everything
 * else is in slow_<name>.
 */
#define GATED(name, params, args)                                              \
	static __attribute__((noinline)) cudrv_result slow_##name params       \
	{                                                                      \
		int entered;                                                   \
		cudrv_result res = shimi_gate_enter(&entered);                 \
                                                                               \
		if (res)                                                       \
			return res;                                            \
		res = shimi_cu.name ? shimi_cu.name args                       \
				    : CUDRV_ERROR_NOT_FOUND;                   \
		if (entered)                                                   \
			shimi_run_leave();                                     \
		return res;                                                    \
	}                                                                      \
	EXPORT cudrv_result name params                                        \
	{                                                                      \
		__typeof__(shimi_cu.name) real = shimi_cu.name;                \
		cudrv_result res;                                              \
                                                                               \
		if (shimi_unlikely(                                            \
			    !real ||                                           \
			    !atomic_load_explicit(&shimi_cuda_regions,         \
						  memory_order_acquire) ||     \
			    !shimi_run_try_enter()))                           \
			return slow_##name args;                               \
		res = real args;                                               \
		shimi_run_leave();                                             \
		return res;                                                    \
	}

/* A function and its per-thread default stream variant, alike. */
#define GATED2(name, variant, params, args)                                    \
	GATED(name, params, args)                                              \
	GATED(variant, params, args)

#define LAUNCH_PARAMS                                                          \
	(cudrv_function f, unsigned int gx, unsigned int gy, unsigned int gz,  \
	 unsigned int bx, unsigned int by, unsigned int bz, unsigned int shm,  \
	 cudrv_stream s, void **params, void **extra)
#define LAUNCH_ARGS (f, gx, gy, gz, bx, by, bz, shm, s, params, extra)

GATED(cuLaunchKernel, LAUNCH_PARAMS, LAUNCH_ARGS)
GATED(cuLaunchKernel_ptsz, LAUNCH_PARAMS, LAUNCH_ARGS)
GATED(cuLaunchKernelEx,
      (const void *config, cudrv_function f, void **params, void **extra),
      (config, f, params, extra))
GATED(cuLaunchKernelEx_ptsz,
      (const void *config, cudrv_function f, void **params, void **extra),
      (config, f, params, extra))
GATED(cuGraphLaunch, (cudrv_graph_exec g, cudrv_stream s), (g, s))
GATED(cuGraphLaunch_ptsz, (cudrv_graph_exec g, cudrv_stream s), (g, s))
GATED(cuStreamSynchronize, (cudrv_stream s), (s))
GATED(cuStreamSynchronize_ptsz, (cudrv_stream s), (s))
GATED(cuEventSynchronize, (cudrv_event e), (e))
GATED(cuCtxSynchronize, (void), ())
GATED2(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds,
       (cudrv_deviceptr d, const void *h, size_t n), (d, h, n))
GATED2(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds,
       (void *h, cudrv_deviceptr d, size_t n), (h, d, n))
GATED(cuMemcpyHtoDAsync_v2,
      (cudrv_deviceptr d, const void *h, size_t n, cudrv_stream s),
      (d, h, n, s))
GATED(cuMemcpyHtoDAsync_v2_ptsz,
      (cudrv_deviceptr d, const void *h, size_t n, cudrv_stream s),
      (d, h, n, s))
GATED(cuMemcpyDtoHAsync_v2,
      (void *h, cudrv_deviceptr d, size_t n, cudrv_stream s), (h, d, n, s))
GATED(cuMemcpyDtoHAsync_v2_ptsz,
      (void *h, cudrv_deviceptr d, size_t n, cudrv_stream s), (h, d, n, s))
GATED2(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds,
       (cudrv_deviceptr d, cudrv_deviceptr src, size_t n), (d, src, n))
GATED(cuMemcpyDtoDAsync_v2,
      (cudrv_deviceptr d, cudrv_deviceptr src, size_t n, cudrv_stream s),
      (d, src, n, s))
GATED(cuMemcpyDtoDAsync_v2_ptsz,
      (cudrv_deviceptr d, cudrv_deviceptr src, size_t n, cudrv_stream s),
      (d, src, n, s))
GATED2(cuMemcpy, cuMemcpy_ptds,
       (cudrv_deviceptr d, cudrv_deviceptr src, size_t n), (d, src, n))
GATED(cuMemcpyAsync,
      (cudrv_deviceptr d, cudrv_deviceptr src, size_t n, cudrv_stream s),
      (d, src, n, s))
GATED(cuMemcpyAsync_ptsz,
      (cudrv_deviceptr d, cudrv_deviceptr src, size_t n, cudrv_stream s),
      (d, src, n, s))
GATED2(cuMemsetD8_v2, cuMemsetD8_v2_ptds,
       (cudrv_deviceptr d, unsigned char v, size_t n), (d, v, n))
GATED2(cuMemsetD8Async, cuMemsetD8Async_ptsz,
       (cudrv_deviceptr d, unsigned char v, size_t n, cudrv_stream s),
       (d, v, n, s))
GATED2(cuMemsetD32_v2, cuMemsetD32_v2_ptds,
       (cudrv_deviceptr d, unsigned int v, size_t n), (d, v, n))
GATED2(cuMemsetD32Async, cuMemsetD32Async_ptsz,
       (cudrv_deviceptr d, unsigned int v, size_t n, cudrv_stream s),
       (d, v, n, s))

/* The rest of the family, as cuda.h names it. */
GATED2(cuMemsetD16_v2, cuMemsetD16_v2_ptds,
       (cudrv_deviceptr d, unsigned short v, size_t n), (d, v, n))
GATED2(cuMemsetD16Async, cuMemsetD16Async_ptsz,
       (cudrv_deviceptr d, unsigned short v, size_t n, cudrv_stream s),
       (d, v, n, s))
GATED2(cuMemsetD2D8_v2, cuMemsetD2D8_v2_ptds,
       (cudrv_deviceptr d, size_t pitch, unsigned char v, size_t w, size_t h),
       (d, pitch, v, w, h))
GATED2(cuMemsetD2D16_v2, cuMemsetD2D16_v2_ptds,
       (cudrv_deviceptr d, size_t pitch, unsigned short v, size_t w, size_t h),
       (d, pitch, v, w, h))
GATED2(cuMemsetD2D32_v2, cuMemsetD2D32_v2_ptds,
       (cudrv_deviceptr d, size_t pitch, unsigned int v, size_t w, size_t h),
       (d, pitch, v, w, h))
GATED2(cuMemsetD2D8Async, cuMemsetD2D8Async_ptsz,
       (cudrv_deviceptr d, size_t pitch, unsigned char v, size_t w, size_t h,
	cudrv_stream s),
       (d, pitch, v, w, h, s))
GATED2(cuMemsetD2D16Async, cuMemsetD2D16Async_ptsz,
       (cudrv_deviceptr d, size_t pitch, unsigned short v, size_t w, size_t h,
	cudrv_stream s),
       (d, pitch, v, w, h, s))
GATED2(cuMemsetD2D32Async, cuMemsetD2D32Async_ptsz,
       (cudrv_deviceptr d, size_t pitch, unsigned int v, size_t w, size_t h,
	cudrv_stream s),
       (d, pitch, v, w, h, s))
GATED2(cuMemcpyPeer, cuMemcpyPeer_ptds,
       (cudrv_deviceptr d, cudrv_context dc, cudrv_deviceptr src,
	cudrv_context sc, size_t n),
       (d, dc, src, sc, n))
GATED2(cuMemcpyPeerAsync, cuMemcpyPeerAsync_ptsz,
       (cudrv_deviceptr d, cudrv_context dc, cudrv_deviceptr src,
	cudrv_context sc, size_t n, cudrv_stream s),
       (d, dc, src, sc, n, s))
GATED2(cuMemcpy2D_v2, cuMemcpy2D_v2_ptds, (const void *p), (p))
GATED2(cuMemcpy2DUnaligned_v2, cuMemcpy2DUnaligned_v2_ptds, (const void *p),
       (p))
GATED2(cuMemcpy2DAsync_v2, cuMemcpy2DAsync_v2_ptsz,
       (const void *p, cudrv_stream s), (p, s))
GATED2(cuMemcpy3D_v2, cuMemcpy3D_v2_ptds, (const void *p), (p))
GATED2(cuMemcpy3DAsync_v2, cuMemcpy3DAsync_v2_ptsz,
       (const void *p, cudrv_stream s), (p, s))
GATED2(cuMemcpy3DPeer, cuMemcpy3DPeer_ptds, (const void *p), (p))
GATED2(cuMemcpy3DPeerAsync, cuMemcpy3DPeerAsync_ptsz,
       (const void *p, cudrv_stream s), (p, s))
GATED2(cuMemcpyDtoA_v2, cuMemcpyDtoA_v2_ptds,
       (void *a, size_t off, cudrv_deviceptr src, size_t n), (a, off, src, n))
GATED2(cuMemcpyAtoD_v2, cuMemcpyAtoD_v2_ptds,
       (cudrv_deviceptr d, void *a, size_t off, size_t n), (d, a, off, n))
GATED2(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz,
       (cudrv_function f, unsigned int gx, unsigned int gy, unsigned int gz,
	unsigned int bx, unsigned int by, unsigned int bz, unsigned int shm,
	cudrv_stream s, void **params),
       (f, gx, gy, gz, bx, by, bz, shm, s, params))
