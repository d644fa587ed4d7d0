/* SPDX-License-Identifier: MIT */
/*
 * backend_cuda.h - what the cuda backend's files share: the backend's
 * state, the driver entry points, and the context and error helpers.
 * cuda_ctx.c holds those helpers, under the other two; backend_cuda.c opens
 * the driver and does the VMM operations; cuda_copy.c does the copies
 * (staging buffers, registered host ranges). Internal.
 */
#ifndef VKV_BACKEND_CUDA_H
#define VKV_BACKEND_CUDA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cuda_drv.h"

/* Two staging buffers so that one is copied by the CPU while the other DMAs. */
#define NSTAGE 2
#define STAGE_SIZE (2 * VKV_MIB)

struct cuda_fns {
	cudrv_init_fn init;
	cudrv_driverGetVersion_fn driverGetVersion;
	cudrv_getErrorName_fn getErrorName;
	cudrv_deviceGetCount_fn deviceGetCount;
	cudrv_deviceGet_fn deviceGet;
	cudrv_deviceGetAttribute_fn deviceGetAttribute;
	cudrv_deviceGetPCIBusId_fn deviceGetPCIBusId;
	cudrv_deviceTotalMem_fn deviceTotalMem;
	cudrv_devicePrimaryCtxRetain_fn primaryCtxRetain;
	cudrv_devicePrimaryCtxRelease_fn primaryCtxRelease;
	cudrv_ctxGetCurrent_fn ctxGetCurrent;
	cudrv_ctxSetCurrent_fn ctxSetCurrent;
	cudrv_ctxPushCurrent_fn ctxPushCurrent;
	cudrv_ctxPopCurrent_fn ctxPopCurrent;
	cudrv_memGetInfo_fn memGetInfo;
	cudrv_memGetAllocationGranularity_fn memGetAllocationGranularity;
	cudrv_memAddressReserve_fn memAddressReserve;
	cudrv_memAddressFree_fn memAddressFree;
	cudrv_memCreate_fn memCreate;
	cudrv_memRelease_fn memRelease;
	cudrv_memMap_fn memMap;
	cudrv_memSetAccess_fn memSetAccess;
	cudrv_memUnmap_fn memUnmap;
	cudrv_memHostRegister_fn memHostRegister;
	cudrv_memHostUnregister_fn memHostUnregister;
	cudrv_streamCreate_fn streamCreate;
	cudrv_streamDestroy_fn streamDestroy;
	cudrv_streamSynchronize_fn streamSynchronize;
	cudrv_eventCreate_fn eventCreate;
	cudrv_eventDestroy_fn eventDestroy;
	cudrv_eventRecord_fn eventRecord;
	cudrv_eventSynchronize_fn eventSynchronize;
	cudrv_memcpyHtoDAsync_fn memcpyHtoDAsync;
	cudrv_memcpyDtoHAsync_fn memcpyDtoHAsync;
};

/* A host range registered through host_register. */
struct cuda_hostreg {
	uintptr_t base;
	size_t len;
};

struct cuda_backend {
	struct vkv_backend be;
	struct cuda_fns f;
	cudrv_device dev;
	cudrv_context ctx;
	cudrv_stream stream;
	cudrv_event ev[NSTAGE];
	pthread_mutex_t copy_lock; /* the stream, the staging, their events */
	char *staging; /* NSTAGE * STAGE_SIZE */
	bool staging_pinned; /* registered with the driver */
	int numa_node; /* where staging lives, -1 = unknown */
	char bus_id[32];
	/*
	 * Registered host ranges, sorted by base, never overlapping (the
	 * driver refuses overlaps). Read by copies, which hold it across a
	 * direct DMA so that no range is unpinned under one; written by
	 * host_register/host_unregister. See cuda_copy.c.
	 */
	pthread_rwlock_t reg_lock;
	struct cuda_hostreg *regs;
	size_t nregs, regs_cap;
	/* While opening (one thread): the failure to report, if any. */
	bool opened;
	bool said;
	const char *open_what;
	cudrv_result open_r;
};

static inline struct cuda_backend *to_cuda(struct vkv_backend *be)
{
	return (struct cuda_backend *)be;
}

/* cuda_ctx.c: a driver error's name, for logs. */
const char *vkvi_cuda_err_name(const struct cuda_fns *f, cudrv_result r);
/* A failed driver call: logged at debug level; returns the errno. */
int vkvi_cuda_fail(struct cuda_backend *cb, const char *what, cudrv_result r);
/* Make the primary context current; *@pushed says whether to pop it. */
int vkvi_cuda_ctx_enter(struct cuda_backend *cb, bool *pushed);
void vkvi_cuda_ctx_leave(struct cuda_backend *cb, bool pushed);

/* Run one driver call under the context: ret = call, with a name for logs. */
#define CU_CALL(cb, what, call)                                                \
	({                                                                     \
		bool pushed_;                                                  \
		int ret_ = vkvi_cuda_ctx_enter((cb), &pushed_);                \
		if (!ret_) {                                                   \
			cudrv_result r_ = (call);                              \
			ret_ = r_ ? vkvi_cuda_fail((cb), (what), r_) : 0;      \
			vkvi_cuda_ctx_leave((cb), pushed_);                    \
		}                                                              \
		ret_;                                                          \
	})

/* cuda_copy.c: the copy path. */
int vkvi_cuda_copy(struct vkv_backend *be, void *dst, const void *src,
		   size_t size, enum vkv_copy_dir dir);
int vkvi_cuda_host_register(struct vkv_backend *be, void *p, size_t len);
int vkvi_cuda_host_unregister(struct vkv_backend *be, void *p);
/* The copy stream, its events and the pinned staging; context current. */
int vkvi_cuda_copy_open(struct cuda_backend *cb);
/*
 * Undo vkvi_cuda_copy_open and drop registrations left over; @in_ctx: the
 * context is current (else driver objects are leaked, not touched).
 */
void vkvi_cuda_copy_close(struct cuda_backend *cb, bool in_ctx);

#endif /* VKV_BACKEND_CUDA_H */
