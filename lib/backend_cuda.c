/* SPDX-License-Identifier: MIT */
/*
 * backend_cuda.c - the VMM primitives over the CUDA driver API.
 *
 * libcuda.so.1 is opened with dlopen() when a cache asks for this backend,
 * never linked: a machine without the driver still builds and runs vkv, and
 * the driver a user installs is the one used. The entry points are resolved
 * once per backend through cuGetProcAddress at CUDRV_ABI_VERSION (see
 * cuda_drv.h), falling back to dlsym() of the versioned export names for
 * drivers older than CUDA 12 (no cuGetProcAddress_v2) or that refuse a name.
 *
 * Each operation is one driver call, so that a failure changes nothing the
 * driver has not already refused: map is one cuMemMap, set_access one
 * cuMemSetAccess over the whole run (the driver accepts a range spanning
 * several mappings), unmap one cuMemUnmap over the run (the same holds,
 * provided the run is made of whole mappings, which the cache guarantees).
 * A mapping has no access until set_access; the cache never touches a page
 * before that, and tests/fakecuda enforces it.
 *
 * The driver needs a current context on the calling thread; the pool worker
 * and the scheduler call in from their own threads, so every operation makes
 * the device's primary context current first: set it on a thread that has
 * none (what the CUDA runtime does lazily too), push/pop it around the call
 * on a thread that has a different one, so that the caller's is kept.
 */
#include <dlfcn.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "cuda_drv.h"
#include "internal.h"

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

/*
 * Base name for cuGetProcAddress, and the export that has the signature
 * declared in cuda_drv.h for the dlsym fallback.
 */
static const struct cuda_sym {
	const char *name;
	const char *export;
	size_t off;
} cuda_syms[] = {
/* clang-format off */
#define SYM(field, name) { #name, #name, offsetof(struct cuda_fns, field) }
#define SYM_V2(field, name) \
	{ #name, #name "_v2", offsetof(struct cuda_fns, field) }
	SYM(init, cuInit),
	SYM(driverGetVersion, cuDriverGetVersion),
	SYM(getErrorName, cuGetErrorName),
	SYM(deviceGetCount, cuDeviceGetCount),
	SYM(deviceGet, cuDeviceGet),
	SYM(deviceGetAttribute, cuDeviceGetAttribute),
	SYM(deviceGetPCIBusId, cuDeviceGetPCIBusId),
	SYM_V2(deviceTotalMem, cuDeviceTotalMem),
	SYM(primaryCtxRetain, cuDevicePrimaryCtxRetain),
	SYM_V2(primaryCtxRelease, cuDevicePrimaryCtxRelease),
	SYM(ctxGetCurrent, cuCtxGetCurrent),
	SYM(ctxSetCurrent, cuCtxSetCurrent),
	SYM_V2(ctxPushCurrent, cuCtxPushCurrent),
	SYM_V2(ctxPopCurrent, cuCtxPopCurrent),
	SYM_V2(memGetInfo, cuMemGetInfo),
	SYM(memGetAllocationGranularity, cuMemGetAllocationGranularity),
	SYM(memAddressReserve, cuMemAddressReserve),
	SYM(memAddressFree, cuMemAddressFree),
	SYM(memCreate, cuMemCreate),
	SYM(memRelease, cuMemRelease),
	SYM(memMap, cuMemMap),
	SYM(memSetAccess, cuMemSetAccess),
	SYM(memUnmap, cuMemUnmap),
	SYM_V2(memHostRegister, cuMemHostRegister),
	SYM(memHostUnregister, cuMemHostUnregister),
	SYM(streamCreate, cuStreamCreate),
	SYM_V2(streamDestroy, cuStreamDestroy),
	SYM(streamSynchronize, cuStreamSynchronize),
	SYM(eventCreate, cuEventCreate),
	SYM_V2(eventDestroy, cuEventDestroy),
	SYM(eventRecord, cuEventRecord),
	SYM(eventSynchronize, cuEventSynchronize),
	SYM_V2(memcpyHtoDAsync, cuMemcpyHtoDAsync),
	SYM_V2(memcpyDtoHAsync, cuMemcpyDtoHAsync),
#undef SYM_V2
#undef SYM
};
/* clang-format on */

struct cuda_backend {
	struct vkv_backend be;
	struct cuda_fns f;
	cudrv_device dev;
	cudrv_context ctx;
	cudrv_stream stream;
	cudrv_event ev[NSTAGE];
	pthread_mutex_t copy_lock; /* the staging buffers and their events */
	char *staging; /* NSTAGE * STAGE_SIZE */
	bool staging_pinned; /* registered with the driver */
	int numa_node; /* where staging lives, -1 = unknown */
	char bus_id[32];
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

static inline bool aligned(const struct vkv_backend *be, uint64_t v)
{
	return !(v & (be->granularity - 1));
}

/*
 * What a driver error means to the cache. Anything that says "this device
 * cannot be used at all" is -ENODEV, so that backend "auto" falls back.
 */
static int cu_errno(cudrv_result r)
{
	switch (r) {
	case CUDRV_SUCCESS:
		return 0;
	case CUDRV_ERROR_INVALID_VALUE:
	case CUDRV_ERROR_INVALID_HANDLE:
	case CUDRV_ERROR_INVALID_CONTEXT:
	case CUDRV_ERROR_NOT_MAPPED:
	case CUDRV_ERROR_HOST_MEMORY_NOT_REGISTERED:
		return -EINVAL;
	case CUDRV_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDRV_ERROR_DEINITIALIZED:
	case CUDRV_ERROR_STUB_LIBRARY:
	case CUDRV_ERROR_CALL_REQUIRES_NEWER_DRIVER:
	case CUDRV_ERROR_NO_DEVICE:
	case CUDRV_ERROR_INVALID_DEVICE:
	case CUDRV_ERROR_DEVICE_NOT_LICENSED:
	case CUDRV_ERROR_SYSTEM_NOT_READY:
	case CUDRV_ERROR_SYSTEM_DRIVER_MISMATCH:
	case CUDRV_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
	case CUDRV_ERROR_CONTEXT_IS_DESTROYED:
		return -ENODEV;
	case CUDRV_ERROR_ALREADY_MAPPED:
	case CUDRV_ERROR_HOST_MEMORY_ALREADY_REGISTERED:
		return -EEXIST;
	case CUDRV_ERROR_NOT_FOUND:
		return -ENOENT;
	case CUDRV_ERROR_NOT_PERMITTED:
		return -EPERM;
	case CUDRV_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case CUDRV_ERROR_ILLEGAL_ADDRESS:
		return -EFAULT;
	case CUDRV_ERROR_TIMEOUT:
		return -ETIMEDOUT;
	case CUDRV_ERROR_NOT_READY:
	case CUDRV_ERROR_ILLEGAL_STATE:
		return -EBUSY;
	default: /* NOT_INITIALIZED, ECC, launch failures, UNKNOWN, ... */
		return -EIO;
	}
}

static const char *cu_name(const struct cuda_fns *f, cudrv_result r)
{
	const char *s = NULL;

	if (!f->getErrorName || f->getErrorName(r, &s) != CUDRV_SUCCESS || !s)
		return "CUDA_ERROR_?";
	return s;
}

/* A failed driver call: log it for debugging, return the errno. */
static int cu_fail(struct cuda_backend *cb, const char *what, cudrv_result r)
{
	if (!cb->opened && !cb->open_what) {
		cb->open_what = what;
		cb->open_r = r;
	}
	vkv_log(cb->be.cfg, VKV_LOG_DEBUG, "vkv: cuda: %s failed: %s (%u)",
		what, cu_name(&cb->f, r), r);
	return cu_errno(r);
}

/* Make the primary context current; *@pushed says whether to pop it. */
static int ctx_enter(struct cuda_backend *cb, bool *pushed)
{
	cudrv_context cur = NULL;
	cudrv_result r;

	*pushed = false;
	r = cb->f.ctxGetCurrent(&cur);
	if (r)
		return cu_fail(cb, "cuCtxGetCurrent", r);
	if (cur == cb->ctx)
		return 0;
	if (!cur) {
		r = cb->f.ctxSetCurrent(cb->ctx);
		return r ? cu_fail(cb, "cuCtxSetCurrent", r) : 0;
	}
	r = cb->f.ctxPushCurrent(cb->ctx);
	if (r)
		return cu_fail(cb, "cuCtxPushCurrent", r);
	*pushed = true;
	return 0;
}

/*
 * The operation has happened by now; a failed pop cannot undo it, and
 * reporting an error would make the caller believe it had not.
 */
static void ctx_leave(struct cuda_backend *cb, bool pushed)
{
	cudrv_context c;
	cudrv_result r;

	if (!pushed)
		return;
	r = cb->f.ctxPopCurrent(&c);
	if (r)
		cu_fail(cb, "cuCtxPopCurrent", r);
}

/* Run one driver call under the context: ret = call, with a name for logs. */
#define CU_CALL(cb, what, call)                                                \
	({                                                                     \
		bool pushed_;                                                  \
		int ret_ = ctx_enter((cb), &pushed_);                          \
		if (!ret_) {                                                   \
			cudrv_result r_ = (call);                              \
			ret_ = r_ ? cu_fail((cb), (what), r_) : 0;             \
			ctx_leave((cb), pushed_);                              \
		}                                                              \
		ret_;                                                          \
	})

static void alloc_prop(const struct cuda_backend *cb,
		       struct cudrv_mem_alloc_prop *prop)
{
	memset(prop, 0, sizeof(*prop));
	prop->type = CUDRV_MEM_ALLOCATION_TYPE_PINNED;
	prop->requested_handle_types = CUDRV_MEM_HANDLE_TYPE_NONE;
	prop->location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
	prop->location.id = cb->dev;
}

static int cuda_reserve(struct vkv_backend *be, size_t size, uintptr_t *va)
{
	struct cuda_backend *cb = to_cuda(be);
	cudrv_deviceptr p = 0;
	int ret;

	if (!size || !aligned(be, size))
		return -EINVAL;
	ret = CU_CALL(cb, "cuMemAddressReserve",
		      cb->f.memAddressReserve(&p, size, be->granularity, 0, 0));
	if (!ret)
		*va = (uintptr_t)p;
	return ret;
}

static int cuda_unreserve(struct vkv_backend *be, uintptr_t va, size_t size)
{
	struct cuda_backend *cb = to_cuda(be);

	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	return CU_CALL(cb, "cuMemAddressFree", cb->f.memAddressFree(va, size));
}

static int cuda_create(struct vkv_backend *be, size_t size, vkv_handle_t *h)
{
	struct cuda_backend *cb = to_cuda(be);
	struct cudrv_mem_alloc_prop prop;
	cudrv_mem_handle mh = 0;
	int ret;

	if (!size || !aligned(be, size))
		return -EINVAL;
	alloc_prop(cb, &prop);
	ret = CU_CALL(cb, "cuMemCreate", cb->f.memCreate(&mh, size, &prop, 0));
	if (!ret)
		*h = mh;
	return ret;
}

static int cuda_release(struct vkv_backend *be, vkv_handle_t h)
{
	struct cuda_backend *cb = to_cuda(be);

	return CU_CALL(cb, "cuMemRelease", cb->f.memRelease(h));
}

static int cuda_map(struct vkv_backend *be, uintptr_t va, size_t size,
		    vkv_handle_t h)
{
	struct cuda_backend *cb = to_cuda(be);

	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	/* The driver documents offset as "currently must be zero". */
	return CU_CALL(cb, "cuMemMap", cb->f.memMap(va, size, 0, h, 0));
}

static int cuda_set_access(struct vkv_backend *be, uintptr_t va, size_t size)
{
	struct cuda_backend *cb = to_cuda(be);
	struct cudrv_mem_access_desc desc = {
		.location = {.type = CUDRV_MEM_LOCATION_TYPE_DEVICE,
			     .id = cb->dev},
		.flags = CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE,
	};

	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	return CU_CALL(cb, "cuMemSetAccess",
		       cb->f.memSetAccess(va, size, &desc, 1));
}

static int cuda_unmap(struct vkv_backend *be, uintptr_t va, size_t size)
{
	struct cuda_backend *cb = to_cuda(be);

	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	return CU_CALL(cb, "cuMemUnmap", cb->f.memUnmap(va, size));
}

/*
 * Copy through the pinned staging buffers, chunk by chunk, alternating
 * between them: chunk i's DMA overlaps chunk i-1's memcpy. An event per
 * buffer says when its DMA is done. On failure the stream is drained before
 * returning, so that no DMA is still writing into a staging buffer the next
 * copy will use; the destination's contents are then unspecified and the
 * source is intact (a failed swap-out keeps the device copy, a failed
 * swap-in keeps the host copy).
 */
static int copy_locked(struct cuda_backend *cb, char *dst, const char *src,
		       size_t size, enum vkv_copy_dir dir)
{
	const struct cuda_fns *f = &cb->f;
	size_t pend_off[NSTAGE], pend_len[NSTAGE];
	bool pend[NSTAGE] = {false};
	const char *what = "cuEventSynchronize";
	cudrv_result r = CUDRV_SUCCESS;
	size_t off, i, k;

	for (off = 0, i = 0; off < size; off += STAGE_SIZE, i++) {
		size_t b = i % NSTAGE, len = size - off;
		char *stage = cb->staging + b * STAGE_SIZE;

		if (len > STAGE_SIZE)
			len = STAGE_SIZE;
		if (pend[b]) {
			r = f->eventSynchronize(cb->ev[b]);
			if (r)
				goto fail;
			if (dir == VKV_COPY_TO_HOST)
				memcpy(dst + pend_off[b], stage, pend_len[b]);
			pend[b] = false;
		}
		if (dir == VKV_COPY_TO_HOST) {
			what = "cuMemcpyDtoHAsync";
			r = f->memcpyDtoHAsync(stage, (uintptr_t)(src + off),
					       len, cb->stream);
		} else {
			memcpy(stage, src + off, len);
			what = "cuMemcpyHtoDAsync";
			r = f->memcpyHtoDAsync((uintptr_t)(dst + off), stage,
					       len, cb->stream);
		}
		if (r)
			goto fail;
		what = "cuEventRecord";
		r = f->eventRecord(cb->ev[b], cb->stream);
		if (r)
			goto fail;
		pend[b] = true;
		pend_off[b] = off;
		pend_len[b] = len;
	}
	/* Oldest first: chunk i's buffer is i % NSTAGE. */
	what = "cuEventSynchronize";
	for (k = 0; k < NSTAGE; k++) {
		size_t b = (i + k) % NSTAGE;

		if (!pend[b])
			continue;
		r = f->eventSynchronize(cb->ev[b]);
		if (r)
			goto fail;
		if (dir == VKV_COPY_TO_HOST)
			memcpy(dst + pend_off[b], cb->staging + b * STAGE_SIZE,
			       pend_len[b]);
	}
	return 0;
fail:
	f->streamSynchronize(cb->stream);
	return cu_fail(cb, what, r);
}

static int cuda_copy(struct vkv_backend *be, void *dst, const void *src,
		     size_t size, enum vkv_copy_dir dir)
{
	struct cuda_backend *cb = to_cuda(be);
	bool pushed;
	int ret;

	if (!size)
		return 0;
	if (!dst || !src ||
	    (dir != VKV_COPY_TO_HOST && dir != VKV_COPY_FROM_HOST))
		return -EINVAL;
	pthread_mutex_lock(&cb->copy_lock);
	ret = ctx_enter(cb, &pushed);
	if (!ret) {
		ret = copy_locked(cb, dst, src, size, dir);
		ctx_leave(cb, pushed);
	}
	pthread_mutex_unlock(&cb->copy_lock);
	return ret;
}

/* The GPU's NUMA node from sysfs, or -1 if the platform does not say. */
static int gpu_numa_node(const char *bus_id)
{
	unsigned int dom, bus, dev, fn;
	char path[96];
	FILE *fp;
	int node = -1;

	/* The driver's spelling (case, domain width) need not be sysfs's. */
	if (sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
		return -1;
	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%04x:%02x:%02x.%x/numa_node", dom, bus,
		 dev, fn);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	if (fscanf(fp, "%d", &node) != 1)
		node = -1;
	fclose(fp);
	return node;
}

/*
 * Place the staging buffers: the configured node, else the GPU's, else the
 * calling thread's. Preferred, not bound: a full node must not fail a copy.
 * Placement is an optimisation, so a kernel or container that refuses
 * mbind() costs only a debug line.
 */
static void place_staging(struct cuda_backend *cb)
{
	const struct vkv_config *cfg = cb->be.cfg;
	int node = cfg->numa_node;
	unsigned long mask[16] = {0};
	int cpu;

	if (node < 0)
		node = gpu_numa_node(cb->bus_id);
	if (node < 0) {
		cpu = sched_getcpu();
		node = cpu >= 0 && numa_available() >= 0 ? numa_node_of_cpu(cpu)
							 : -1;
	}
	cb->numa_node = node;
	if (node < 0 || numa_available() < 0 ||
	    (size_t)node >= sizeof(mask) * 8)
		return;
	mask[node / (8 * sizeof(long))] = 1ul << (node % (8 * sizeof(long)));
	if (mbind(cb->staging, NSTAGE * STAGE_SIZE, MPOL_PREFERRED, mask,
		  sizeof(mask) * 8, 0))
		vkv_log(cfg, VKV_LOG_DEBUG,
			"vkv: cuda: staging on node %d: mbind: %s", node,
			strerror(errno));
}

/*
 * Undo whatever open got through. libcuda itself stays loaded: unloading the
 * driver library from a process that initialised it is unsupported, and
 * dlopen() refcounts, so a later open finds it again at no cost.
 */
static void cuda_teardown(struct cuda_backend *cb)
{
	const struct cuda_fns *f = &cb->f;
	bool pushed = false;
	int k;

	if (cb->ctx && !ctx_enter(cb, &pushed)) {
		if (cb->staging_pinned &&
		    f->memHostUnregister(cb->staging) == CUDRV_SUCCESS)
			cb->staging_pinned = false;
		for (k = 0; k < NSTAGE; k++)
			if (cb->ev[k])
				f->eventDestroy(cb->ev[k]);
		if (cb->stream)
			f->streamDestroy(cb->stream);
		ctx_leave(cb, pushed);
	} else if (cb->ctx) {
		vkv_log(cb->be.cfg, VKV_LOG_WARN,
			"vkv: cuda: no context at teardown, leaking a stream");
	}
	/* Memory the driver still has pinned must not go back to the kernel. */
	if (cb->staging && !cb->staging_pinned)
		munmap(cb->staging, NSTAGE * STAGE_SIZE);
	if (cb->ctx)
		f->primaryCtxRelease(cb->dev);
	pthread_mutex_destroy(&cb->copy_lock);
	free(cb);
}

static void cuda_destroy(struct vkv_backend *be)
{
	cuda_teardown(to_cuda(be));
}

static const struct vkv_backend_ops cuda_ops = {
	.name = "cuda",
	.destroy = cuda_destroy,
	.reserve = cuda_reserve,
	.unreserve = cuda_unreserve,
	.create = cuda_create,
	.release = cuda_release,
	.map = cuda_map,
	.set_access = cuda_set_access,
	.unmap = cuda_unmap,
	.copy = cuda_copy,
};

/*
 * Say why the backend cannot be used: a warning when it was asked for by
 * name; under "auto", where falling back is normal and said by the caller,
 * the reason once per process at info level, then at debug level, so that a
 * server creating many caches does not repeat it.
 */
static bool auto_reason_said;

static int unusable_level(const struct vkv_config *cfg)
{
	if (cfg->backend == VKV_BACKEND_CUDA)
		return VKV_LOG_WARN;
	if (!__atomic_exchange_n(&auto_reason_said, true, __ATOMIC_RELAXED))
		return VKV_LOG_INFO;
	return VKV_LOG_DEBUG;
}

#define unusable(cb, fmt, ...)                                                 \
	do {                                                                   \
		(cb)->said = true;                                             \
		vkv_log((cb)->be.cfg, unusable_level((cb)->be.cfg),            \
			"vkv: cuda backend unavailable: " fmt, __VA_ARGS__);   \
	} while (0)

static int resolve(struct cuda_backend *cb, void *lib)
{
	cudrv_getProcAddress_fn gpa;
	size_t i;

	*(void **)&gpa = dlsym(lib, "cuGetProcAddress_v2");
	for (i = 0; i < sizeof(cuda_syms) / sizeof(cuda_syms[0]); i++) {
		const struct cuda_sym *s = &cuda_syms[i];
		unsigned int status = CUDRV_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
		void *p = NULL;

		if (gpa && (gpa(s->name, &p, CUDRV_ABI_VERSION,
				CUDRV_GET_PROC_ADDRESS_LEGACY_STREAM,
				&status) != CUDRV_SUCCESS ||
			    status != CUDRV_GET_PROC_ADDRESS_SUCCESS))
			p = NULL;
		if (!p)
			p = dlsym(lib, s->export);
		if (!p) {
			unusable(cb, "libcuda.so.1 lacks %s (driver too old?)",
				 s->export);
			return -ENODEV;
		}
		memcpy((char *)&cb->f + s->off, &p, sizeof(p));
	}
	return 0;
}

/* Device, context and the device's properties. */
static int open_device(struct cuda_backend *cb)
{
	const struct vkv_config *cfg = cb->be.cfg;
	const struct cuda_fns *f = &cb->f;
	struct cudrv_mem_alloc_prop prop;
	size_t gran = 0;
	int n = 0, vmm = 0;
	cudrv_result r;

	r = f->init(0);
	if (r) {
		unusable(cb, "cuInit: %s", cu_name(f, r));
		return -ENODEV;
	}
	r = f->deviceGetCount(&n);
	if (r)
		return cu_fail(cb, "cuDeviceGetCount", r);
	if (cfg->device < 0 || cfg->device >= n) {
		unusable(cb, "device %d asked for, %d present", cfg->device, n);
		return -ENODEV;
	}
	r = f->deviceGet(&cb->dev, cfg->device);
	if (r)
		return cu_fail(cb, "cuDeviceGet", r);
	r = f->deviceGetAttribute(
		&vmm,
		CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
		cb->dev);
	if (r)
		return cu_fail(cb, "cuDeviceGetAttribute", r);
	if (!vmm) {
		unusable(cb, "device %d has no virtual memory management",
			 cfg->device);
		return -ENODEV;
	}
	r = f->deviceGetPCIBusId(cb->bus_id, sizeof(cb->bus_id), cb->dev);
	if (r)
		return cu_fail(cb, "cuDeviceGetPCIBusId", r);
	cb->bus_id[sizeof(cb->bus_id) - 1] = '\0';

	alloc_prop(cb, &prop);
	r = f->memGetAllocationGranularity(
		&gran, &prop, CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED);
	if (r)
		return cu_fail(cb, "cuMemGetAllocationGranularity", r);
	if (!gran || (gran & (gran - 1))) {
		unusable(cb, "granularity %zu is not a power of two", gran);
		return -ENODEV;
	}
	cb->be.granularity = gran;
	return 0;
}

/*
 * Device memory as the context sees it (a MIG slice, a vGPU), else the
 * board's. Needs the context current, as cuMemGetInfo documents.
 */
static int open_mem_total(struct cuda_backend *cb)
{
	const struct cuda_fns *f = &cb->f;
	size_t mfree = 0, mtotal = 0;
	cudrv_result r;

	r = f->memGetInfo(&mfree, &mtotal);
	if (r) {
		cu_fail(cb, "cuMemGetInfo", r);
		r = f->deviceTotalMem(&mtotal, cb->dev);
		if (r)
			return cu_fail(cb, "cuDeviceTotalMem", r);
	}
	cb->be.mem_total = mtotal;
	return 0;
}

/* The copy stream, its events and the pinned staging buffers. */
static int open_copy(struct cuda_backend *cb)
{
	const struct cuda_fns *f = &cb->f;
	cudrv_result r;
	int k;

	/* Non-blocking: swap copies must not serialise with the engine's stream 0. */
	r = f->streamCreate(&cb->stream, CUDRV_STREAM_NON_BLOCKING);
	if (r) {
		cb->stream = NULL;
		return cu_fail(cb, "cuStreamCreate", r);
	}
	for (k = 0; k < NSTAGE; k++) {
		r = f->eventCreate(&cb->ev[k], CUDRV_EVENT_DISABLE_TIMING);
		if (r) {
			cb->ev[k] = NULL;
			return cu_fail(cb, "cuEventCreate", r);
		}
	}
	cb->staging = mmap(NULL, NSTAGE * STAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cb->staging == MAP_FAILED) {
		cb->staging = NULL;
		return -ENOMEM;
	}
	place_staging(cb);
	r = f->memHostRegister(cb->staging, NSTAGE * STAGE_SIZE,
			       CUDRV_MEMHOSTREGISTER_PORTABLE);
	if (r)
		return cu_fail(cb, "cuMemHostRegister", r);
	cb->staging_pinned = true;
	return 0;
}

int vkv_backend_cuda_open(const struct vkv_config *cfg,
			  struct vkv_backend **out)
{
	struct cuda_backend *cb;
	bool pushed = false;
	cudrv_result r;
	void *lib;
	int ret;

	*out = NULL;
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		vkv_log(cfg, unusable_level(cfg),
			"vkv: cuda backend unavailable: cannot load "
			"libcuda.so.1: %s",
			dlerror());
		return -ENODEV;
	}
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	pthread_mutex_init(&cb->copy_lock, NULL);
	cb->be.ops = &cuda_ops;
	cb->be.cfg = cfg;
	cb->numa_node = -1;

	ret = resolve(cb, lib);
	if (!ret)
		ret = open_device(cb);
	if (ret)
		goto fail;
	r = cb->f.primaryCtxRetain(&cb->ctx, cb->dev);
	if (r) {
		cb->ctx = NULL;
		ret = cu_fail(cb, "cuDevicePrimaryCtxRetain", r);
		goto fail;
	}
	ret = ctx_enter(cb, &pushed);
	if (ret)
		goto fail;
	ret = open_mem_total(cb);
	if (!ret)
		ret = open_copy(cb);
	ctx_leave(cb, pushed);
	if (ret)
		goto fail;
	vkv_log(cfg, VKV_LOG_INFO,
		"vkv: cuda device %d (%s): granularity %zu KiB, %zu MiB, "
		"staging on NUMA node %d",
		cfg->device, cb->bus_id, cb->be.granularity >> 10,
		cb->be.mem_total >> 20, cb->numa_node);
	cb->opened = true;
	*out = &cb->be;
	return 0;
fail:
	/* Exactly one line, whatever failed. */
	if (!cb->said && cb->open_what)
		vkv_log(cfg,
			ret == -ENODEV ? unusable_level(cfg) : VKV_LOG_ERROR,
			"vkv: cuda backend unavailable: %s: %s", cb->open_what,
			cu_name(&cb->f, cb->open_r));
	else if (!cb->said)
		vkv_log(cfg, VKV_LOG_ERROR, "vkv: cuda backend unavailable: %s",
			vkv_strerror(ret));
	cuda_teardown(cb);
	return ret;
}
