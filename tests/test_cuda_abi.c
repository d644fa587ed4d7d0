/* SPDX-License-Identifier: MIT */
/*
 * test_cuda_abi.c - lib/cuda_drv.h against NVIDIA's cuda.h, at compile time.
 *
 * The cuda backend declares the driver subset it calls instead of needing a
 * toolkit to build (see lib/cuda_drv.h). This program is built only where a
 * cuda.h exists (mk/cuda.mk) and fails to compile if any value, layout or
 * signature there differs from the toolkit's. Running it just says so.
 */
#include <stddef.h>
#include <stdio.h>

#include <cuda.h>

#include "cuda_drv.h"

#define SAME(a, b) _Static_assert((a) == (b), #a " != " #b)

SAME(sizeof(cudrv_result), sizeof(CUresult));
SAME(CUDRV_SUCCESS, CUDA_SUCCESS);
#define ERR(n) SAME(CUDRV_ERROR_##n, CUDA_ERROR_##n)
ERR(INVALID_VALUE);
ERR(OUT_OF_MEMORY);
ERR(NOT_INITIALIZED);
ERR(DEINITIALIZED);
ERR(STUB_LIBRARY);
ERR(CALL_REQUIRES_NEWER_DRIVER);
ERR(NO_DEVICE);
ERR(INVALID_DEVICE);
ERR(DEVICE_NOT_LICENSED);
ERR(INVALID_IMAGE);
ERR(INVALID_CONTEXT);
ERR(ALREADY_MAPPED);
ERR(NOT_MAPPED);
ERR(ECC_UNCORRECTABLE);
ERR(OPERATING_SYSTEM);
ERR(INVALID_HANDLE);
ERR(ILLEGAL_STATE);
ERR(NOT_FOUND);
ERR(NOT_READY);
ERR(ILLEGAL_ADDRESS);
ERR(CONTEXT_IS_DESTROYED);
ERR(HOST_MEMORY_ALREADY_REGISTERED);
ERR(HOST_MEMORY_NOT_REGISTERED);
ERR(LAUNCH_FAILED);
ERR(NOT_PERMITTED);
ERR(NOT_SUPPORTED);
ERR(SYSTEM_NOT_READY);
ERR(SYSTEM_DRIVER_MISMATCH);
ERR(COMPAT_NOT_SUPPORTED_ON_DEVICE);
ERR(STREAM_CAPTURE_UNSUPPORTED);
ERR(STREAM_CAPTURE_INVALIDATED);
ERR(STREAM_CAPTURE_UNMATCHED);
ERR(STREAM_CAPTURE_IMPLICIT);
ERR(CAPTURED_EVENT);
ERR(STREAM_CAPTURE_WRONG_THREAD);
ERR(TIMEOUT);
ERR(UNKNOWN);

SAME(CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
     CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);
SAME(CUDRV_MEM_ALLOCATION_TYPE_PINNED, CU_MEM_ALLOCATION_TYPE_PINNED);
SAME(CUDRV_MEM_HANDLE_TYPE_NONE, CU_MEM_HANDLE_TYPE_NONE);
SAME(CUDRV_MEM_LOCATION_TYPE_DEVICE, CU_MEM_LOCATION_TYPE_DEVICE);
SAME(CUDRV_MEM_ACCESS_FLAGS_PROT_NONE, CU_MEM_ACCESS_FLAGS_PROT_NONE);
SAME(CUDRV_MEM_ACCESS_FLAGS_PROT_READ, CU_MEM_ACCESS_FLAGS_PROT_READ);
SAME(CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
SAME(CUDRV_MEM_ALLOC_GRANULARITY_MINIMUM, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
SAME(CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED,
     CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
SAME(CUDRV_STREAM_NON_BLOCKING, CU_STREAM_NON_BLOCKING);
SAME(CUDRV_EVENT_DISABLE_TIMING, CU_EVENT_DISABLE_TIMING);
SAME(CUDRV_MEMHOSTREGISTER_PORTABLE, CU_MEMHOSTREGISTER_PORTABLE);
SAME(CUDRV_GET_PROC_ADDRESS_DEFAULT, CU_GET_PROC_ADDRESS_DEFAULT);
SAME(CUDRV_GET_PROC_ADDRESS_LEGACY_STREAM, CU_GET_PROC_ADDRESS_LEGACY_STREAM);
SAME(CUDRV_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
     CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
SAME(CUDRV_STREAM_CAPTURE_MODE_GLOBAL, CU_STREAM_CAPTURE_MODE_GLOBAL);
SAME(CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL,
     CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
SAME(CUDRV_STREAM_CAPTURE_MODE_RELAXED, CU_STREAM_CAPTURE_MODE_RELAXED);
SAME(CUDRV_STREAM_CAPTURE_STATUS_NONE, CU_STREAM_CAPTURE_STATUS_NONE);
SAME(CUDRV_STREAM_CAPTURE_STATUS_ACTIVE, CU_STREAM_CAPTURE_STATUS_ACTIVE);
SAME(CUDRV_STREAM_CAPTURE_STATUS_INVALIDATED,
     CU_STREAM_CAPTURE_STATUS_INVALIDATED);
SAME(CUDRV_GET_PROC_ADDRESS_SUCCESS, CU_GET_PROC_ADDRESS_SUCCESS);
SAME(CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND,
     CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
SAME(CUDRV_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT,
     CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

/* Layouts: size, alignment and every field's offset and size. */
#define FIELD(ours, theirs, f1, f2)                                            \
	SAME(offsetof(ours, f1), offsetof(theirs, f2));                        \
	SAME(sizeof(((ours *)0)->f1), sizeof(((theirs *)0)->f2))
#define LAYOUT(ours, theirs)                                                   \
	SAME(sizeof(ours), sizeof(theirs));                                    \
	SAME(_Alignof(ours), _Alignof(theirs))

LAYOUT(struct cudrv_mem_location, CUmemLocation);
FIELD(struct cudrv_mem_location, CUmemLocation, type, type);
FIELD(struct cudrv_mem_location, CUmemLocation, id, id);

LAYOUT(struct cudrv_mem_alloc_prop, CUmemAllocationProp);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, type, type);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, requested_handle_types,
      requestedHandleTypes);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, location, location);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, win32_handle_meta_data,
      win32HandleMetaData);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, alloc_flags,
      allocFlags);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp,
      alloc_flags.compression_type, allocFlags.compressionType);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp,
      alloc_flags.gpu_direct_rdma_capable, allocFlags.gpuDirectRDMACapable);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, alloc_flags.usage,
      allocFlags.usage);
FIELD(struct cudrv_mem_alloc_prop, CUmemAllocationProp, alloc_flags.reserved,
      allocFlags.reserved);

LAYOUT(struct cudrv_mem_access_desc, CUmemAccessDesc);
FIELD(struct cudrv_mem_access_desc, CUmemAccessDesc, location, location);
FIELD(struct cudrv_mem_access_desc, CUmemAccessDesc, flags, flags);

SAME(sizeof(cudrv_deviceptr), sizeof(CUdeviceptr));
SAME(sizeof(cudrv_mem_handle), sizeof(CUmemGenericAllocationHandle));
SAME(sizeof(cudrv_device), sizeof(CUdevice));
/* The handles are the driver's own struct tags, so the types are its. */
_Static_assert(__builtin_types_compatible_p(cudrv_module, CUmodule),
	       "CUmodule");
_Static_assert(__builtin_types_compatible_p(cudrv_function, CUfunction),
	       "CUfunction");
_Static_assert(__builtin_types_compatible_p(cudrv_graph, CUgraph), "CUgraph");
_Static_assert(__builtin_types_compatible_p(cudrv_graph_exec, CUgraphExec),
	       "CUgraphExec");
_Static_assert(__builtin_types_compatible_p(cudrv_graph_node, CUgraphNode),
	       "CUgraphNode");

/*
 * Signatures, for every entry point whose parameters are scalars or opaque
 * handles; the three taking our structs are covered by the layouts above.
 * The names are the exports the backend's dlsym fallback asks for.
 */
#define SIG(ours, theirs)                                                      \
	_Static_assert(__builtin_types_compatible_p(cudrv_##ours##_fn,         \
						    __typeof__(&theirs)),      \
		       #theirs ": signature differs")
SIG(getProcAddress, cuGetProcAddress_v2);
SIG(init, cuInit);
SIG(driverGetVersion, cuDriverGetVersion);
SIG(getErrorName, cuGetErrorName);
SIG(deviceGetCount, cuDeviceGetCount);
SIG(deviceGet, cuDeviceGet);
SIG(deviceGetAttribute, cuDeviceGetAttribute);
SIG(deviceGetPCIBusId, cuDeviceGetPCIBusId);
SIG(deviceTotalMem, cuDeviceTotalMem_v2);
SIG(devicePrimaryCtxRetain, cuDevicePrimaryCtxRetain);
SIG(devicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2);
SIG(ctxGetCurrent, cuCtxGetCurrent);
SIG(ctxSetCurrent, cuCtxSetCurrent);
SIG(ctxPushCurrent, cuCtxPushCurrent_v2);
SIG(ctxPopCurrent, cuCtxPopCurrent_v2);
SIG(memGetInfo, cuMemGetInfo_v2);
SIG(memAddressReserve, cuMemAddressReserve);
SIG(memAddressFree, cuMemAddressFree);
SIG(memRelease, cuMemRelease);
SIG(memMap, cuMemMap);
SIG(memUnmap, cuMemUnmap);
SIG(memHostRegister, cuMemHostRegister_v2);
SIG(memHostUnregister, cuMemHostUnregister);
SIG(streamCreate, cuStreamCreate);
SIG(streamDestroy, cuStreamDestroy_v2);
SIG(streamSynchronize, cuStreamSynchronize);
SIG(eventCreate, cuEventCreate);
SIG(eventDestroy, cuEventDestroy_v2);
SIG(eventRecord, cuEventRecord);
SIG(eventSynchronize, cuEventSynchronize);
SIG(memcpyHtoDAsync, cuMemcpyHtoDAsync_v2);
SIG(memcpyDtoHAsync, cuMemcpyDtoHAsync_v2);

int main(void)
{
	printf("test_cuda_abi: lib/cuda_drv.h matches cuda.h (CUDA_VERSION "
	       "%d)\n",
	       CUDA_VERSION);
	return 0;
}
