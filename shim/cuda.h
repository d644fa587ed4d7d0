/* SPDX-License-Identifier: MIT */
/*
 * The shim's CUDA path, shared by its files: the real driver functions, the
 * gate that holds launches, copies and synchronisations while the process
 * is suspended, and the byte count of device memory the shim passes
 * through. Types are lib/cuda_drv.h's, which match NVIDIA's ABI.
 *
 * Layers, calling downward only: cuda_hook.c (the real functions; dlsym and
 * cuGetProcAddress answering with the wrappers) <- backing_cuda.c (device
 * regions) <- region.c <- cuda_mem.c, cuda_gate.c (the wrappers).
 */
#ifndef VKV_SHIM_CUDA_H
#define VKV_SHIM_CUDA_H

#include "cuda_drv.h"
#include "shim.h"

/* Every driver function the shim calls or wraps: X(name, return, args). */
#define SHIMI_CU_FUNCS(X)                                                      \
	X(cuCtxGetCurrent, (cudrv_context *))                                  \
	X(cuCtxGetDevice, (cudrv_device *))                                    \
	X(cuCtxPushCurrent_v2, (cudrv_context))                                \
	X(cuCtxPopCurrent_v2, (cudrv_context *))                               \
	X(cuCtxSynchronize, (void))                                            \
	X(cuCtxEnablePeerAccess, (cudrv_context, unsigned int))                \
	X(cuCtxDisablePeerAccess, (cudrv_context))                             \
	X(cuMemGetInfo_v2, (size_t *, size_t *))                               \
	X(cuMemAlloc_v2, (cudrv_deviceptr *, size_t))                          \
	X(cuMemFree_v2, (cudrv_deviceptr))                                     \
	X(cuMemAllocAsync, (cudrv_deviceptr *, size_t, cudrv_stream))          \
	X(cuMemAllocAsync_ptsz, (cudrv_deviceptr *, size_t, cudrv_stream))     \
	X(cuMemFreeAsync, (cudrv_deviceptr, cudrv_stream))                     \
	X(cuMemFreeAsync_ptsz, (cudrv_deviceptr, cudrv_stream))                \
	X(cuMemGetAllocationGranularity,                                       \
	  (size_t *, const struct cudrv_mem_alloc_prop *, unsigned int))       \
	X(cuMemAddressReserve, (cudrv_deviceptr *, size_t, size_t,             \
				cudrv_deviceptr, unsigned long long))          \
	X(cuMemAddressFree, (cudrv_deviceptr, size_t))                         \
	X(cuMemCreate,                                                         \
	  (cudrv_mem_handle *, size_t, const struct cudrv_mem_alloc_prop *,    \
	   unsigned long long))                                                \
	X(cuMemRelease, (cudrv_mem_handle))                                    \
	X(cuMemMap, (cudrv_deviceptr, size_t, size_t, cudrv_mem_handle,        \
		     unsigned long long))                                      \
	X(cuMemSetAccess, (cudrv_deviceptr, size_t,                            \
			   const struct cudrv_mem_access_desc *, size_t))      \
	X(cuMemUnmap, (cudrv_deviceptr, size_t))                               \
	X(cuMemcpyHtoD_v2, (cudrv_deviceptr, const void *, size_t))            \
	X(cuMemcpyDtoH_v2, (void *, cudrv_deviceptr, size_t))                  \
	X(cuMemcpyHtoDAsync_v2,                                                \
	  (cudrv_deviceptr, const void *, size_t, cudrv_stream))               \
	X(cuMemcpyHtoDAsync_v2_ptsz,                                           \
	  (cudrv_deviceptr, const void *, size_t, cudrv_stream))               \
	X(cuMemcpyDtoHAsync_v2,                                                \
	  (void *, cudrv_deviceptr, size_t, cudrv_stream))                     \
	X(cuMemcpyDtoHAsync_v2_ptsz,                                           \
	  (void *, cudrv_deviceptr, size_t, cudrv_stream))                     \
	X(cuMemcpyDtoD_v2, (cudrv_deviceptr, cudrv_deviceptr, size_t))         \
	X(cuMemcpyDtoDAsync_v2,                                                \
	  (cudrv_deviceptr, cudrv_deviceptr, size_t, cudrv_stream))            \
	X(cuMemcpyDtoDAsync_v2_ptsz,                                           \
	  (cudrv_deviceptr, cudrv_deviceptr, size_t, cudrv_stream))            \
	X(cuMemcpy, (cudrv_deviceptr, cudrv_deviceptr, size_t))                \
	X(cuMemcpyAsync,                                                       \
	  (cudrv_deviceptr, cudrv_deviceptr, size_t, cudrv_stream))            \
	X(cuMemcpyAsync_ptsz,                                                  \
	  (cudrv_deviceptr, cudrv_deviceptr, size_t, cudrv_stream))            \
	X(cuMemsetD8_v2, (cudrv_deviceptr, unsigned char, size_t))             \
	X(cuMemsetD8Async,                                                     \
	  (cudrv_deviceptr, unsigned char, size_t, cudrv_stream))              \
	X(cuMemsetD32_v2, (cudrv_deviceptr, unsigned int, size_t))             \
	X(cuMemsetD32Async,                                                    \
	  (cudrv_deviceptr, unsigned int, size_t, cudrv_stream))               \
	X(cuLaunchKernel,                                                      \
	  (cudrv_function, unsigned int, unsigned int, unsigned int,           \
	   unsigned int, unsigned int, unsigned int, unsigned int,             \
	   cudrv_stream, void **, void **))                                    \
	X(cuLaunchKernel_ptsz,                                                 \
	  (cudrv_function, unsigned int, unsigned int, unsigned int,           \
	   unsigned int, unsigned int, unsigned int, unsigned int,             \
	   cudrv_stream, void **, void **))                                    \
	X(cuLaunchKernelEx, (const void *, cudrv_function, void **, void **))  \
	X(cuLaunchKernelEx_ptsz,                                               \
	  (const void *, cudrv_function, void **, void **))                    \
	X(cuGraphLaunch, (cudrv_graph_exec, cudrv_stream))                     \
	X(cuGraphLaunch_ptsz, (cudrv_graph_exec, cudrv_stream))                \
	X(cuStreamSynchronize, (cudrv_stream))                                 \
	X(cuStreamSynchronize_ptsz, (cudrv_stream))                            \
	X(cuEventSynchronize, (cudrv_event))                                   \
	X(cuStreamIsCapturing, (cudrv_stream, unsigned int *))                 \
	X(cuMemcpyHtoD_v2_ptds, (cudrv_deviceptr d, const void *h, size_t n))  \
	X(cuMemcpyDtoH_v2_ptds, (void *h, cudrv_deviceptr d, size_t n))        \
	X(cuMemcpyDtoD_v2_ptds,                                                \
	  (cudrv_deviceptr d, cudrv_deviceptr src, size_t n))                  \
	X(cuMemcpy_ptds, (cudrv_deviceptr d, cudrv_deviceptr src, size_t n))   \
	X(cuMemsetD8_v2_ptds, (cudrv_deviceptr d, unsigned char v, size_t n))  \
	X(cuMemsetD32_v2_ptds, (cudrv_deviceptr d, unsigned int v, size_t n))  \
	X(cuMemsetD8Async_ptsz,                                                \
	  (cudrv_deviceptr d, unsigned char v, size_t n, cudrv_stream s))      \
	X(cuMemsetD32Async_ptsz,                                               \
	  (cudrv_deviceptr d, unsigned int v, size_t n, cudrv_stream s))       \
	X(cuMemsetD16_v2, (cudrv_deviceptr d, unsigned short v, size_t n))     \
	X(cuMemsetD16_v2_ptds,                                                 \
	  (cudrv_deviceptr d, unsigned short v, size_t n))                     \
	X(cuMemsetD16Async,                                                    \
	  (cudrv_deviceptr d, unsigned short v, size_t n, cudrv_stream s))     \
	X(cuMemsetD16Async_ptsz,                                               \
	  (cudrv_deviceptr d, unsigned short v, size_t n, cudrv_stream s))     \
	X(cuMemsetD2D8_v2, (cudrv_deviceptr d, size_t pitch, unsigned char v,  \
			    size_t w, size_t h))                               \
	X(cuMemsetD2D8_v2_ptds, (cudrv_deviceptr d, size_t pitch,              \
				 unsigned char v, size_t w, size_t h))         \
	X(cuMemsetD2D16_v2, (cudrv_deviceptr d, size_t pitch,                  \
			     unsigned short v, size_t w, size_t h))            \
	X(cuMemsetD2D16_v2_ptds, (cudrv_deviceptr d, size_t pitch,             \
				  unsigned short v, size_t w, size_t h))       \
	X(cuMemsetD2D32_v2, (cudrv_deviceptr d, size_t pitch, unsigned int v,  \
			     size_t w, size_t h))                              \
	X(cuMemsetD2D32_v2_ptds, (cudrv_deviceptr d, size_t pitch,             \
				  unsigned int v, size_t w, size_t h))         \
	X(cuMemsetD2D8Async,                                                   \
	  (cudrv_deviceptr d, size_t pitch, unsigned char v, size_t w,         \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemsetD2D8Async_ptsz,                                              \
	  (cudrv_deviceptr d, size_t pitch, unsigned char v, size_t w,         \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemsetD2D16Async,                                                  \
	  (cudrv_deviceptr d, size_t pitch, unsigned short v, size_t w,        \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemsetD2D16Async_ptsz,                                             \
	  (cudrv_deviceptr d, size_t pitch, unsigned short v, size_t w,        \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemsetD2D32Async,                                                  \
	  (cudrv_deviceptr d, size_t pitch, unsigned int v, size_t w,          \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemsetD2D32Async_ptsz,                                             \
	  (cudrv_deviceptr d, size_t pitch, unsigned int v, size_t w,          \
	   size_t h, cudrv_stream s))                                          \
	X(cuMemcpyPeer, (cudrv_deviceptr d, cudrv_context dc,                  \
			 cudrv_deviceptr src, cudrv_context sc, size_t n))     \
	X(cuMemcpyPeer_ptds,                                                   \
	  (cudrv_deviceptr d, cudrv_context dc, cudrv_deviceptr src,           \
	   cudrv_context sc, size_t n))                                        \
	X(cuMemcpyPeerAsync,                                                   \
	  (cudrv_deviceptr d, cudrv_context dc, cudrv_deviceptr src,           \
	   cudrv_context sc, size_t n, cudrv_stream s))                        \
	X(cuMemcpyPeerAsync_ptsz,                                              \
	  (cudrv_deviceptr d, cudrv_context dc, cudrv_deviceptr src,           \
	   cudrv_context sc, size_t n, cudrv_stream s))                        \
	X(cuMemcpy2D_v2, (const void *p))                                      \
	X(cuMemcpy2D_v2_ptds, (const void *p))                                 \
	X(cuMemcpy2DUnaligned_v2, (const void *p))                             \
	X(cuMemcpy2DUnaligned_v2_ptds, (const void *p))                        \
	X(cuMemcpy2DAsync_v2, (const void *p, cudrv_stream s))                 \
	X(cuMemcpy2DAsync_v2_ptsz, (const void *p, cudrv_stream s))            \
	X(cuMemcpy3D_v2, (const void *p))                                      \
	X(cuMemcpy3D_v2_ptds, (const void *p))                                 \
	X(cuMemcpy3DAsync_v2, (const void *p, cudrv_stream s))                 \
	X(cuMemcpy3DAsync_v2_ptsz, (const void *p, cudrv_stream s))            \
	X(cuMemcpy3DPeer, (const void *p))                                     \
	X(cuMemcpy3DPeer_ptds, (const void *p))                                \
	X(cuMemcpy3DPeerAsync, (const void *p, cudrv_stream s))                \
	X(cuMemcpy3DPeerAsync_ptsz, (const void *p, cudrv_stream s))           \
	X(cuMemcpyDtoA_v2,                                                     \
	  (void *a, size_t off, cudrv_deviceptr src, size_t n))                \
	X(cuMemcpyDtoA_v2_ptds,                                                \
	  (void *a, size_t off, cudrv_deviceptr src, size_t n))                \
	X(cuMemcpyAtoD_v2, (cudrv_deviceptr d, void *a, size_t off, size_t n)) \
	X(cuMemcpyAtoD_v2_ptds,                                                \
	  (cudrv_deviceptr d, void *a, size_t off, size_t n))                  \
	X(cuLaunchCooperativeKernel,                                           \
	  (cudrv_function f, unsigned int gx, unsigned int gy,                 \
	   unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, \
	   unsigned int shm, cudrv_stream s, void **params))                   \
	X(cuLaunchCooperativeKernel_ptsz,                                      \
	  (cudrv_function f, unsigned int gx, unsigned int gy,                 \
	   unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, \
	   unsigned int shm, cudrv_stream s, void **params))                   \
	X(cuGetProcAddress, (const char *, void **, int, uint64_t))            \
	X(cuGetProcAddress_v2,                                                 \
	  (const char *, void **, int, uint64_t, unsigned int *))

struct shimi_cu {
#define SHIMI_CU_PTR(name, args) cudrv_result(*name) args;
	SHIMI_CU_FUNCS(SHIMI_CU_PTR)
#undef SHIMI_CU_PTR
};

/*
 * The driver's prototypes: the shim defines (and exports) those it wraps,
 * in cuda_mem.c, cuda_gate.c and cuda_hook.c.
 */
#define SHIMI_CU_DECLARE(name, args) cudrv_result name args;
SHIMI_CU_FUNCS(SHIMI_CU_DECLARE)
#undef SHIMI_CU_DECLARE

/*
 * The real driver's functions, from the libcuda.so.1 the process loaded (or
 * that the shim loads). Each may be NULL where the driver has no such
 * function. shimi_cuda_load() returns 0, or -errno when there is no driver.
 */
SHIMI_HIDDEN extern struct shimi_cu shimi_cu;
SHIMI_HIDDEN int shimi_cuda_load(void);

/*
 * Gate: gated calls run between shimi_gate_enter() (which resumes a
 * suspended process first, and returns a CUDA error when that fails) and,
 * if it set *entered, shimi_gate_leave(); suspend and resume hold it
 * exclusively. Until the first device region exists there is nothing to
 * hold calls off from, and the gate is not taken.
 */
SHIMI_HIDDEN cudrv_result shimi_gate_enter(int *entered);
SHIMI_HIDDEN void shimi_gate_leave(void);
/* Set, for good, when the first device region is made. */
SHIMI_HIDDEN extern _Atomic int shimi_cuda_regions;

SHIMI_HIDDEN extern const struct shimi_backing_ops shimi_cuda_ops;
/*
 * Wait for the work queued in every context that holds device regions:
 * suspend calls it with calls gated, before it takes the registry's lock.
 * 0, or -EIO when a context reports an error.
 */
SHIMI_HIDDEN int shimi_cuda_quiesce(void);
/*
 * The current context enabled (on 1) or disabled (0) peer access to owner:
 * every device region owner made gives the current context's device the
 * same access cuMemAlloc memory would have, now and at each resume.
 */
SHIMI_HIDDEN void shimi_cuda_peer(cudrv_context owner, int on);

#endif
