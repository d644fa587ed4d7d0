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
 * Copies, and the host ranges registered for them, are in cuda_copy.c.
 *
 * The driver needs a current context on the calling thread; the pool worker
 * and the scheduler call in from their own threads, so every operation makes
 * the device's primary context current first: set it on a thread that has
 * none (what the CUDA runtime does lazily too), push/pop it around the call
 * on a thread that has a different one, so that the caller's is kept.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "internal.h"

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

static inline bool aligned(const struct vkv_backend *be, uint64_t v)
{
	return !(v & (be->granularity - 1));
}

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
 * Undo whatever open got through. libcuda itself stays loaded: unloading the
 * driver library from a process that initialised it is unsupported, and
 * dlopen() refcounts, so a later open finds it again at no cost.
 */
static void cuda_teardown(struct cuda_backend *cb)
{
	const struct cuda_fns *f = &cb->f;
	bool pushed = false;
	bool in_ctx = cb->ctx && !vkvi_cuda_ctx_enter(cb, &pushed);

	if (cb->ctx && !in_ctx)
		vkvi_log(cb->be.cfg, VKV_LOG_WARN,
			 "vkv: cuda: no context at teardown, leaking a stream");
	vkvi_cuda_copy_close(cb, in_ctx);
	if (in_ctx)
		vkvi_cuda_ctx_leave(cb, pushed);
	if (cb->ctx)
		f->primaryCtxRelease(cb->dev);
	pthread_rwlock_destroy(&cb->reg_lock);
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
	.copy = vkvi_cuda_copy,
	.host_register = vkvi_cuda_host_register,
	.host_unregister = vkvi_cuda_host_unregister,
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
		vkvi_log((cb)->be.cfg, unusable_level((cb)->be.cfg),           \
			 "vkv: cuda backend unavailable: " fmt, __VA_ARGS__);  \
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
		unusable(cb, "cuInit: %s", vkvi_cuda_err_name(f, r));
		return -ENODEV;
	}
	r = f->deviceGetCount(&n);
	if (r)
		return vkvi_cuda_fail(cb, "cuDeviceGetCount", r);
	if (cfg->device < 0 || cfg->device >= n) {
		unusable(cb, "device %d asked for, %d present", cfg->device, n);
		return -ENODEV;
	}
	r = f->deviceGet(&cb->dev, cfg->device);
	if (r)
		return vkvi_cuda_fail(cb, "cuDeviceGet", r);
	r = f->deviceGetAttribute(
		&vmm,
		CUDRV_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
		cb->dev);
	if (r)
		return vkvi_cuda_fail(cb, "cuDeviceGetAttribute", r);
	if (!vmm) {
		unusable(cb, "device %d has no virtual memory management",
			 cfg->device);
		return -ENODEV;
	}
	r = f->deviceGetPCIBusId(cb->bus_id, sizeof(cb->bus_id), cb->dev);
	if (r)
		return vkvi_cuda_fail(cb, "cuDeviceGetPCIBusId", r);
	cb->bus_id[sizeof(cb->bus_id) - 1] = '\0';

	alloc_prop(cb, &prop);
	r = f->memGetAllocationGranularity(
		&gran, &prop, CUDRV_MEM_ALLOC_GRANULARITY_RECOMMENDED);
	if (r)
		return vkvi_cuda_fail(cb, "cuMemGetAllocationGranularity", r);
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
		vkvi_cuda_fail(cb, "cuMemGetInfo", r);
		r = f->deviceTotalMem(&mtotal, cb->dev);
		if (r)
			return vkvi_cuda_fail(cb, "cuDeviceTotalMem", r);
	}
	cb->be.mem_total = mtotal;
	return 0;
}

int vkvi_backend_cuda_open(const struct vkv_config *cfg,
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
		vkvi_log(cfg, unusable_level(cfg),
			 "vkv: cuda backend unavailable: cannot load "
			 "libcuda.so.1: %s",
			 dlerror());
		return -ENODEV;
	}
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	pthread_mutex_init(&cb->copy_lock, NULL);
	pthread_rwlock_init(&cb->reg_lock, NULL);
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
		ret = vkvi_cuda_fail(cb, "cuDevicePrimaryCtxRetain", r);
		goto fail;
	}
	ret = vkvi_cuda_ctx_enter(cb, &pushed);
	if (ret)
		goto fail;
	ret = open_mem_total(cb);
	if (!ret)
		ret = vkvi_cuda_copy_open(cb);
	vkvi_cuda_ctx_leave(cb, pushed);
	if (ret)
		goto fail;
	vkvi_log(cfg, VKV_LOG_INFO,
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
		vkvi_log(cfg,
			 ret == -ENODEV ? unusable_level(cfg) : VKV_LOG_ERROR,
			 "vkv: cuda backend unavailable: %s: %s", cb->open_what,
			 vkvi_cuda_err_name(&cb->f, cb->open_r));
	else if (!cb->said)
		vkvi_log(cfg, VKV_LOG_ERROR,
			 "vkv: cuda backend unavailable: %s",
			 vkv_strerror(ret));
	cuda_teardown(cb);
	return ret;
}
