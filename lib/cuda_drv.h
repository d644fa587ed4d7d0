/* SPDX-License-Identifier: MIT */
/*
 * cuda_drv.h - the subset of the CUDA driver API that the cuda backend calls.
 *
 * Why declare it here instead of including <cuda.h>: vkv must build on
 * machines with no CUDA toolkit (CI has none, and most packagers will not
 * pull one in for an optional backend), and libcuda.so.1 is opened with
 * dlopen() at run time, never linked. Only the ABI matters then: the values
 * of a few enums, the layout of three structs and the signatures of about
 * thirty entry points, all stable since CUDA 11 and requested from the
 * driver at an explicit ABI version (CUDRV_ABI_VERSION) through
 * cuGetProcAddress. Every name carries a cudrv_/CUDRV_ prefix so that this
 * header and <cuda.h> can be included together: tests/test_cuda_abi.c does
 * exactly that, when a toolkit is present, to check every value and layout
 * below against NVIDIA's header at compile time.
 *
 * The opaque handle types reuse the driver's struct tags (CUctx_st, ...),
 * which are only ever declared, never defined, so that function pointer
 * types compare equal to the toolkit's in that check.
 */
#ifndef VKV_CUDA_DRV_H
#define VKV_CUDA_DRV_H

#include <stddef.h>
#include <stdint.h>

/*
 * The ABI version every entry point is requested at: the CUDA 12.0
 * signatures. cuGetProcAddress returns, for each base name, the newest
 * version of the symbol whose ABI matches the one requested, so a newer
 * driver keeps serving these signatures.
 */
#define CUDRV_ABI_VERSION 12000

/* CUresult: an enum of non-negative values, passed as an unsigned int. */
typedef unsigned int cudrv_result;

#define CUDRV_SUCCESS 0
#define CUDRV_ERROR_INVALID_VALUE 1
#define CUDRV_ERROR_OUT_OF_MEMORY 2
#define CUDRV_ERROR_NOT_INITIALIZED 3
#define CUDRV_ERROR_DEINITIALIZED 4
#define CUDRV_ERROR_STUB_LIBRARY 34
#define CUDRV_ERROR_CALL_REQUIRES_NEWER_DRIVER 36
#define CUDRV_ERROR_NO_DEVICE 100
#define CUDRV_ERROR_INVALID_DEVICE 101
#define CUDRV_ERROR_DEVICE_NOT_LICENSED 102
#define CUDRV_ERROR_INVALID_IMAGE 200
#define CUDRV_ERROR_INVALID_CONTEXT 201
#define CUDRV_ERROR_ALREADY_MAPPED 208
#define CUDRV_ERROR_NOT_MAPPED 211
#define CUDRV_ERROR_ECC_UNCORRECTABLE 214
#define CUDRV_ERROR_OPERATING_SYSTEM 304
#define CUDRV_ERROR_INVALID_HANDLE 400
#define CUDRV_ERROR_ILLEGAL_STATE 401
#define CUDRV_ERROR_NOT_FOUND 500
#define CUDRV_ERROR_NOT_READY 600
#define CUDRV_ERROR_ILLEGAL_ADDRESS 700
#define CUDRV_ERROR_CONTEXT_IS_DESTROYED 709
#define CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED 712
#define CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED 713
#define CUDRV_ERROR_LAUNCH_FAILED 719
#define CUDRV_ERROR_NOT_PERMITTED 800
#define CUDRV_ERROR_NOT_SUPPORTED 801
#define CUDRV_ERROR_SYSTEM_NOT_READY 802
#define CUDRV_ERROR_SYSTEM_DRIVER_MISMATCH 803
#define CUDRV_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE 804
#define CUDRV_ERROR_STREAM_CAPTURE_UNSUPPORTED 900
#define CUDRV_ERROR_STREAM_CAPTURE_INVALIDATED 901
#define CUDRV_ERROR_STREAM_CAPTURE_UNMATCHED 903
#define CUDRV_ERROR_STREAM_CAPTURE_IMPLICIT 906
#define CUDRV_ERROR_CAPTURED_EVENT 907
#define CUDRV_ERROR_STREAM_CAPTURE_WRONG_THREAD 908
#define CUDRV_ERROR_TIMEOUT 909
#define CUDRV_ERROR_UNKNOWN 999

typedef unsigned long long cudrv_deviceptr; /* CUdeviceptr (v2) */
typedef unsigned long long cudrv_mem_handle; /* CUmemGenericAllocationHandle */
typedef int cudrv_device; /* CUdevice */
typedef struct CUctx_st *cudrv_context; /* CUcontext */
typedef struct CUstream_st *cudrv_stream; /* CUstream */
typedef struct CUevent_st *cudrv_event; /* CUevent */
typedef struct CUmod_st *cudrv_module; /* CUmodule */
typedef struct CUfunc_st *cudrv_function; /* CUfunction */
typedef struct CUgraph_st *cudrv_graph; /* CUgraph */
typedef struct CUgraphExec_st *cudrv_graph_exec; /* CUgraphExec */
typedef struct CUgraphNode_st *cudrv_graph_node; /* CUgraphNode */

/* CUdevice_attribute */
#define CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED 102

/* CUmemAllocationType, CUmemAllocationHandleType, CUmemLocationType */
#define CUDRV_MEM_ALLOCATION_TYPE_PINNED 0x1
#define CUDRV_MEM_HANDLE_TYPE_NONE 0x0
#define CUDRV_MEM_LOCATION_TYPE_DEVICE 0x1

/* CUmemAccess_flags */
#define CUDRV_MEM_ACCESS_FLAGS_PROT_NONE 0x0
#define CUDRV_MEM_ACCESS_FLAGS_PROT_READ 0x1
#define CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE 0x3

/* CUmemAllocationGranularity_flags */
#define CUDRV_MEM_ALLOC_GRANULARITY_MINIMUM 0x0
#define CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED 0x1

/* CUstream_flags, CUevent_flags, cuMemHostRegister flags */
#define CUDRV_STREAM_NON_BLOCKING 0x1
#define CUDRV_EVENT_DISABLE_TIMING 0x2
#define CUDRV_MEMHOSTREGISTER_PORTABLE 0x01

/* CUdriverProcAddress_flags, CUdriverProcAddressQueryResult */
#define CUDRV_GET_PROC_ADDRESS_DEFAULT 0x0
#define CUDRV_GET_PROC_ADDRESS_LEGACY_STREAM 0x1
#define CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM 0x2
#define CUDRV_GET_PROC_ADDRESS_SUCCESS 0
#define CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND 1
#define CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT 2

/* CUstreamCaptureMode, CUstreamCaptureStatus */
#define CUDRV_STREAM_CAPTURE_MODE_GLOBAL 0
#define CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL 1
#define CUDRV_STREAM_CAPTURE_MODE_RELAXED 2
#define CUDRV_STREAM_CAPTURE_STATUS_NONE 0
#define CUDRV_STREAM_CAPTURE_STATUS_ACTIVE 1
#define CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED 2

/* CUmemLocation */
struct cudrv_mem_location {
	unsigned int type; /* CUmemLocationType */
	int id;
};

/* CUmemAllocationProp */
struct cudrv_mem_alloc_prop {
	unsigned int type; /* CUmemAllocationType */
	unsigned int requested_handle_types; /* CUmemAllocationHandleType */
	struct cudrv_mem_location location;
	void *win32_handle_meta_data; /* must be NULL off Windows */
	struct {
		unsigned char compression_type;
		unsigned char gpu_direct_rdma_capable;
		unsigned short usage;
		unsigned char reserved[4];
	} alloc_flags;
};

/* CUmemAccessDesc */
struct cudrv_mem_access_desc {
	struct cudrv_mem_location location;
	unsigned int flags; /* CUmemAccess_flags */
};

/*
 * Entry points, with the signatures of the symbol versions named on the
 * right (what cuGetProcAddress returns at CUDRV_ABI_VERSION, and what the
 * dlsym fallback asks for by name).
 */
typedef cudrv_result (*cudrv_getProcAddress_fn)(const char *symbol, void **pfn,
						int cuda_version,
						uint64_t flags, /* cuuint64_t */
						unsigned int *status);
typedef cudrv_result (*cudrv_init_fn)(unsigned int flags);
typedef cudrv_result (*cudrv_driverGetVersion_fn)(int *version);
typedef cudrv_result (*cudrv_getErrorName_fn)(cudrv_result err,
					      const char **str);
typedef cudrv_result (*cudrv_deviceGetCount_fn)(int *count);
typedef cudrv_result (*cudrv_deviceGet_fn)(cudrv_device *dev, int ordinal);
typedef cudrv_result (*cudrv_deviceGetAttribute_fn)(int *value,
						    unsigned int attr,
						    cudrv_device dev);
typedef cudrv_result (*cudrv_deviceGetPCIBusId_fn)(char *bus_id, int len,
						   cudrv_device dev);
typedef cudrv_result (*cudrv_deviceTotalMem_fn)(size_t *bytes,
						cudrv_device dev); /* _v2 */
typedef cudrv_result (*cudrv_devicePrimaryCtxRetain_fn)(cudrv_context *ctx,
							cudrv_device dev);
typedef cudrv_result (*cudrv_devicePrimaryCtxRelease_fn)(
	cudrv_device dev); /* _v2 */
typedef cudrv_result (*cudrv_ctxGetCurrent_fn)(cudrv_context *ctx);
typedef cudrv_result (*cudrv_ctxSetCurrent_fn)(cudrv_context ctx);
typedef cudrv_result (*cudrv_ctxPushCurrent_fn)(cudrv_context ctx); /* _v2 */
typedef cudrv_result (*cudrv_ctxPopCurrent_fn)(cudrv_context *ctx); /* _v2 */
typedef cudrv_result (*cudrv_memGetInfo_fn)(size_t *free_bytes,
					    size_t *total); /* _v2 */
typedef cudrv_result (*cudrv_memGetAllocationGranularity_fn)(
	size_t *granularity, const struct cudrv_mem_alloc_prop *prop,
	unsigned int option);
typedef cudrv_result (*cudrv_memAddressReserve_fn)(cudrv_deviceptr *ptr,
						   size_t size,
						   size_t alignment,
						   cudrv_deviceptr addr,
						   unsigned long long flags);
typedef cudrv_result (*cudrv_memAddressFree_fn)(cudrv_deviceptr ptr,
						size_t size);
typedef cudrv_result (*cudrv_memCreate_fn)(
	cudrv_mem_handle *handle, size_t size,
	const struct cudrv_mem_alloc_prop *prop, unsigned long long flags);
typedef cudrv_result (*cudrv_memRelease_fn)(cudrv_mem_handle handle);
typedef cudrv_result (*cudrv_memMap_fn)(cudrv_deviceptr ptr, size_t size,
					size_t offset, cudrv_mem_handle handle,
					unsigned long long flags);
typedef cudrv_result (*cudrv_memSetAccess_fn)(
	cudrv_deviceptr ptr, size_t size,
	const struct cudrv_mem_access_desc *desc, size_t count);
typedef cudrv_result (*cudrv_memUnmap_fn)(cudrv_deviceptr ptr, size_t size);
typedef cudrv_result (*cudrv_memHostRegister_fn)(void *p, size_t size,
						 unsigned int flags); /* _v2 */
typedef cudrv_result (*cudrv_memHostUnregister_fn)(void *p);
typedef cudrv_result (*cudrv_streamCreate_fn)(cudrv_stream *stream,
					      unsigned int flags);
typedef cudrv_result (*cudrv_streamDestroy_fn)(cudrv_stream stream); /* _v2 */
typedef cudrv_result (*cudrv_streamSynchronize_fn)(cudrv_stream stream);
typedef cudrv_result (*cudrv_eventCreate_fn)(cudrv_event *event,
					     unsigned int flags);
typedef cudrv_result (*cudrv_eventDestroy_fn)(cudrv_event event); /* _v2 */
typedef cudrv_result (*cudrv_eventRecord_fn)(cudrv_event event,
					     cudrv_stream stream);
typedef cudrv_result (*cudrv_eventSynchronize_fn)(cudrv_event event);
typedef cudrv_result (*cudrv_memcpyHtoDAsync_fn)(cudrv_deviceptr dst,
						 const void *src, size_t size,
						 cudrv_stream stream); /* _v2 */
typedef cudrv_result (*cudrv_memcpyDtoHAsync_fn)(void *dst, cudrv_deviceptr src,
						 size_t size,
						 cudrv_stream stream); /* _v2 */

#endif /* VKV_CUDA_DRV_H */
