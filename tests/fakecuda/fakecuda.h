/* SPDX-License-Identifier: MIT */
/*
 * fakecuda.h - the test double of libcuda.so.1: its driver entry points and
 * its control API for tests.
 *
 * The driver entry points use the cudrv_ types of lib/cuda_drv.h, which match
 * NVIDIA's ABI (tests/test_cuda_abi.c checks it against cuda.h when a toolkit
 * is installed). The control functions (fakecuda_*) are exported by the same
 * library; a test that must also run without it (test_backend_cuda) finds
 * them with dlsym() on the handle of "libcuda.so.1".
 *
 * Environment, read when the library is loaded (docs/design/cuda.md):
 *   FAKECUDA_DEVICES=N         devices (default 1; 0: cuInit fails NO_DEVICE)
 *   FAKECUDA_MEM=SIZE          memory per device (default 16G; K/M/G/T)
 *   FAKECUDA_GRANULARITY=SIZE  minimum = recommended granularity (2M)
 *   FAKECUDA_VMM=0|1           device attribute VMM supported (1)
 *   FAKECUDA_PCI_BUS_ID=ID     device 0's bus id (0000:00:00.0); device d
 *                              reports the same with the bus number + d
 *   FAKECUDA_DRIVER_VERSION=N  cuDriverGetVersion (12080)
 *   FAKECUDA_PROC_ADDRESS=0|1  0: cuGetProcAddress (both) finds nothing,
 *                              CUDA_ERROR_NOT_FOUND (1)
 *   FAKECUDA_FAIL=fn:N[:code][,...]  the Nth call of fn (counted from load)
 *                              returns code (default 999, CUDA_ERROR_UNKNOWN)
 *   FAKECUDA_LATENCY=0|1       latency injection on/off (1)
 *   FAKECUDA_LATENCY_US=fn:us[,...]  per-function latency; defaults are A100
 *                              figures: cuMemCreate 190, cuMemMap 1.5,
 *                              cuMemSetAccess 36, cuMemUnmap 26
 *   FAKECUDA_LATENCY_SCALE=size|call  size (default): those four cost their
 *                              latency per 2 MiB of the call's size
 */
#ifndef FAKECUDA_H
#define FAKECUDA_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_drv.h"

struct fakecuda_stats {
	uint64_t mem_used; /* device bytes held by live allocations */
	uint64_t allocs; /* cuMemCreate handles not yet freed */
	uint64_t allocs_released; /* of which released, freed at last unmap */
	uint64_t reservations;
	uint64_t mappings;
	uint64_t mapped_bytes;
	uint64_t accessible_bytes; /* mapped with access granted */
	uint64_t host_registered; /* cuMemHostRegister regions */
	uint64_t streams;
	uint64_t events;
	uint64_t ctx_refs; /* primary context references, all devices */
	uint64_t
		touched_before_access; /* bytes copied to/from no-access maps */
	uint64_t
		pageable_async; /* async copies from unregistered host memory */
	uint64_t invalid_calls; /* calls refused with an error (not injected) */
	uint64_t injected; /* calls failed by injection */
	/* Bytes of async copies queued, by their host side: wholly inside
	 * one cuMemHostRegister range, or not (pageable). */
	uint64_t async_bytes_registered;
	uint64_t async_bytes_pageable;
	/* cuMemAlloc(Async) allocations not yet freed, and their bytes
	 * (whole granules; part of mem_used). */
	uint64_t linear_allocs;
	uint64_t linear_bytes;
	uint64_t kernels_run; /* launches executed, graph replays included */
	uint64_t graphs; /* graphs and executable graphs alive */
	uint64_t graph_execs;
};

/* A live cuMemHostRegister range and the async copy bytes it has served. */
struct fakecuda_hostreg {
	uintptr_t p;
	size_t size;
	unsigned int flags;
	uint64_t async_bytes;
};

/* Fail the @nth call of @fn from now on (1 = the next) with @code. */
int fakecuda_fail(const char *fn, unsigned long nth, unsigned int code);
/* Drop every pending injection. */
void fakecuda_fail_clear(void);
/* Latency of @fn in ns, and the global switch. */
int fakecuda_set_latency_ns(const char *fn, uint64_t ns);
void fakecuda_latency_enable(int on);
/* Calls of @fn since load (every call, failed or not), or 0 if unknown. */
uint64_t fakecuda_calls(const char *fn);
/* Total calls of every function: a cheap "did anything happen" probe. */
uint64_t fakecuda_calls_total(void);
void fakecuda_get_stats(struct fakecuda_stats *st);
/*
 * What is at @va: 0 if mapped (with the CUmemAccess_flags in *@prot and the
 * handle in *@handle), 1 if only reserved, -1 if neither.
 */
int fakecuda_query(uintptr_t va, unsigned int *prot, uint64_t *handle);
/*
 * What device @dev's kernels may do at @va (CUmemAccess_flags in *@prot):
 * VMM memory as cuMemSetAccess named @dev, cuMemAlloc memory on its own
 * device or on a peer's whose context its own enabled peer access to. 0, or
 * -1 if nothing is mapped there.
 */
int fakecuda_query_access(uintptr_t va, int dev, unsigned int *prot);
/* Change the memory per device; allocations beyond it fail OUT_OF_MEMORY. */
void fakecuda_set_mem(size_t bytes);
/*
 * The live host registrations, newest first: up to @max into @out; returns
 * how many there are (which may exceed @max).
 */
size_t fakecuda_hostregs(struct fakecuda_hostreg *out, size_t max);
/* The names of the functions the fake implements, NULL-terminated. */
const char *const *fakecuda_functions(void);

/*
 * Fake kernels. A kernel is a host function registered under a name; a
 * module image (cuModuleLoadData) is the text ".fakecuda" followed by the
 * names of the kernels it contains, separated by white space. A launch
 * copies its @nparams parameter values (of the sizes given here) and calls
 * the function when its stream reaches it, with @params pointing at those
 * copies, under the fake's lock: a kernel calls no driver function.
 */
struct fakecuda_launch;
typedef void (*fakecuda_kernel_fn)(struct fakecuda_launch *l, void **params);
/* 0, or -1 for a bad argument or a name already registered. */
int fakecuda_register_kernel(const char *name, fakecuda_kernel_fn fn,
			     unsigned int nparams, const size_t *param_sizes);
/* The launch's grid and block dimensions. */
void fakecuda_launch_dims(const struct fakecuda_launch *l, unsigned int grid[3],
			  unsigned int block[3]);
/*
 * A kernel's access to device memory, checked as the GPU would: every byte
 * mapped, with read (or read-write) access. 0, or -1 after an illegal
 * address, which fails the launch (CUDA_ERROR_ILLEGAL_ADDRESS, fatal to the
 * context); every later access of the launch fails too.
 */
int fakecuda_dev_read(struct fakecuda_launch *l, void *dst, cudrv_deviceptr src,
		      size_t n);
int fakecuda_dev_write(struct fakecuda_launch *l, cudrv_deviceptr dst,
		       const void *src, size_t n);

/* The driver API the fake exports (NVIDIA's exported symbol names). */
cudrv_result cuInit(unsigned int flags);
cudrv_result cuDriverGetVersion(int *version);
cudrv_result cuGetErrorName(cudrv_result err, const char **str);
cudrv_result cuGetErrorString(cudrv_result err, const char **str);
cudrv_result cuGetProcAddress(const char *symbol, void **pfn, int cuda_version,
			      uint64_t flags);
cudrv_result cuGetProcAddress_v2(const char *symbol, void **pfn,
				 int cuda_version, uint64_t flags,
				 unsigned int *status);
cudrv_result cuDeviceGetCount(int *count);
cudrv_result cuDeviceGet(cudrv_device *dev, int ordinal);
cudrv_result cuDeviceGetAttribute(int *value, unsigned int attr,
				  cudrv_device dev);
cudrv_result cuDeviceGetPCIBusId(char *bus_id, int len, cudrv_device dev);
cudrv_result cuDeviceTotalMem_v2(size_t *bytes, cudrv_device dev);
cudrv_result cuDevicePrimaryCtxRetain(cudrv_context *ctx, cudrv_device dev);
cudrv_result cuDevicePrimaryCtxRelease_v2(cudrv_device dev);
cudrv_result cuCtxGetCurrent(cudrv_context *ctx);
cudrv_result cuCtxSetCurrent(cudrv_context ctx);
cudrv_result cuCtxPushCurrent_v2(cudrv_context ctx);
cudrv_result cuCtxPopCurrent_v2(cudrv_context *ctx);
cudrv_result cuMemGetInfo_v2(size_t *free_bytes, size_t *total);
cudrv_result
cuMemGetAllocationGranularity(size_t *granularity,
			      const struct cudrv_mem_alloc_prop *prop,
			      unsigned int option);
cudrv_result cuMemAddressReserve(cudrv_deviceptr *ptr, size_t size,
				 size_t alignment, cudrv_deviceptr addr,
				 unsigned long long flags);
cudrv_result cuMemAddressFree(cudrv_deviceptr ptr, size_t size);
cudrv_result cuMemCreate(cudrv_mem_handle *handle, size_t size,
			 const struct cudrv_mem_alloc_prop *prop,
			 unsigned long long flags);
cudrv_result cuMemRelease(cudrv_mem_handle handle);
cudrv_result cuMemMap(cudrv_deviceptr ptr, size_t size, size_t offset,
		      cudrv_mem_handle handle, unsigned long long flags);
cudrv_result cuMemSetAccess(cudrv_deviceptr ptr, size_t size,
			    const struct cudrv_mem_access_desc *desc,
			    size_t count);
cudrv_result cuMemUnmap(cudrv_deviceptr ptr, size_t size);
cudrv_result cuMemHostRegister_v2(void *p, size_t size, unsigned int flags);
cudrv_result cuMemHostUnregister(void *p);
cudrv_result cuStreamCreate(cudrv_stream *stream, unsigned int flags);
cudrv_result cuStreamDestroy_v2(cudrv_stream stream);
cudrv_result cuStreamSynchronize(cudrv_stream stream);
cudrv_result cuEventCreate(cudrv_event *event, unsigned int flags);
cudrv_result cuEventDestroy_v2(cudrv_event event);
cudrv_result cuEventRecord(cudrv_event event, cudrv_stream stream);
cudrv_result cuEventSynchronize(cudrv_event event);
cudrv_result cuMemcpyHtoDAsync_v2(cudrv_deviceptr dst, const void *src,
				  size_t size, cudrv_stream stream);
cudrv_result cuMemcpyDtoHAsync_v2(void *dst, cudrv_deviceptr src, size_t size,
				  cudrv_stream stream);
cudrv_result cuCtxSynchronize(void);
cudrv_result cuMemAlloc_v2(cudrv_deviceptr *dptr, size_t size);
cudrv_result cuMemFree_v2(cudrv_deviceptr dptr);
cudrv_result cuMemAllocAsync(cudrv_deviceptr *dptr, size_t size,
			     cudrv_stream stream);
cudrv_result cuMemFreeAsync(cudrv_deviceptr dptr, cudrv_stream stream);
cudrv_result cuMemcpyHtoD_v2(cudrv_deviceptr dst, const void *src, size_t size);
cudrv_result cuMemcpyDtoH_v2(void *dst, cudrv_deviceptr src, size_t size);
cudrv_result cuCtxGetDevice(cudrv_device *dev);
cudrv_result cuDeviceCanAccessPeer(int *can, cudrv_device dev,
				   cudrv_device peer);
cudrv_result cuCtxEnablePeerAccess(cudrv_context peer, unsigned int flags);
cudrv_result cuCtxDisablePeerAccess(cudrv_context peer);
cudrv_result cuMemcpyHtoD_v2_ptds(cudrv_deviceptr dst, const void *src,
				  size_t size);
cudrv_result cuMemcpyDtoH_v2_ptds(void *dst, cudrv_deviceptr src, size_t size);
cudrv_result cuModuleLoadData(cudrv_module *module, const void *image);
cudrv_result cuModuleUnload(cudrv_module module);
cudrv_result cuModuleGetFunction(cudrv_function *hfunc, cudrv_module hmod,
				 const char *name);
cudrv_result cuLaunchKernel(cudrv_function f, unsigned int gx, unsigned int gy,
			    unsigned int gz, unsigned int bx, unsigned int by,
			    unsigned int bz, unsigned int shared_mem,
			    cudrv_stream stream, void **params, void **extra);
cudrv_result cuStreamBeginCapture(cudrv_stream stream);
cudrv_result cuStreamBeginCapture_v2(cudrv_stream stream, unsigned int mode);
cudrv_result cuStreamEndCapture(cudrv_stream stream, cudrv_graph *graph);
cudrv_result cuStreamIsCapturing(cudrv_stream stream, unsigned int *status);
cudrv_result cuThreadExchangeStreamCaptureMode(unsigned int *mode);
cudrv_result cuGraphInstantiateWithFlags(cudrv_graph_exec *exec,
					 cudrv_graph graph,
					 unsigned long long flags);
cudrv_result cuGraphInstantiate_v2(cudrv_graph_exec *exec, cudrv_graph graph,
				   cudrv_graph_node *err_node, char *log,
				   size_t log_size);
cudrv_result cuGraphLaunch(cudrv_graph_exec exec, cudrv_stream stream);
cudrv_result cuGraphExecDestroy(cudrv_graph_exec exec);
cudrv_result cuGraphDestroy(cudrv_graph graph);

#endif /* FAKECUDA_H */
