/* SPDX-License-Identifier: MIT */
/*
 * The driver's allocation calls. cuMemAlloc_v2 and cuMemAllocAsync of a
 * recognised size (tagged region, VKV_SHIM_MATCH_BYTES, VKV_SHIM_MIN_BYTES,
 * as for host memory) make a device region; cuMemFree_v2 and cuMemFreeAsync
 * release it. Every other device allocation the shim sees goes to the
 * driver and is charged to the limit: cuMemAlloc's by pointer, cuMemCreate's
 * (PyTorch's expandable segments, any location, from any thread, with or
 * without a current context) by handle, in a table of the shim's own.
 * cuMemGetInfo_v2 reports the limit as the device's size, so that an
 * engine's profiler sizes its KV pool to it.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "cuda.h"

#define EXPORT __attribute__((visibility("default")))
#define TOMB UINT64_MAX

/* Charged allocations the shim passes through: key (pointer or handle) -> bytes. */
struct charged {
	uint64_t key; /* 0 = free slot, TOMB = deleted */
	uint64_t len;
};

struct charge_table {
	pthread_mutex_t lock;
	struct charged *slots;
	size_t cap, used, tombs;
};

static struct charge_table by_ptr = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct charge_table by_handle = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t hash(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
}

static void insert(struct charge_table *t, uint64_t key, uint64_t len)
{
	size_t i = hash(key, t->cap);

	while (t->slots[i].key && t->slots[i].key != TOMB)
		i = (i + 1) & (t->cap - 1);
	if (t->slots[i].key == TOMB)
		t->tombs--;
	t->slots[i].key = key;
	t->slots[i].len = len;
	t->used++;
}

/* Under t->lock: room for one more; -ENOMEM if the table cannot grow. */
static int grow(struct charge_table *t)
{
	struct charged *old = t->slots;
	size_t old_cap = t->cap, ncap = t->cap ? t->cap : 256;
	void *p;

	if (t->cap && (t->used + t->tombs + 1) * 4 <= t->cap * 3)
		return 0;
	while ((t->used + 1) * 2 > ncap)
		ncap *= 2;
	p = shimi_sys_mmap(NULL, ncap * sizeof(*old), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	t->slots = p;
	t->cap = ncap;
	t->used = t->tombs = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key && old[i].key != TOMB)
			insert(t, old[i].key, old[i].len);
	if (old)
		shimi_sys_munmap(old, old_cap * sizeof(*old));
	return 0;
}

static int remember(struct charge_table *t, uint64_t key, uint64_t len)
{
	int err;

	if (!key || key == TOMB)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	err = grow(t);
	if (!err)
		insert(t, key, len);
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* The bytes charged under key, forgotten; 0 if none. */
static uint64_t forget(struct charge_table *t, uint64_t key)
{
	uint64_t len = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = t->cap ? hash(key, t->cap) : 0, n = 0; n < t->cap;
	     i = (i + 1) & (t->cap - 1), n++) {
		if (!t->slots[i].key)
			break;
		if (t->slots[i].key == key) {
			len = t->slots[i].len;
			t->slots[i].key = TOMB;
			t->used--;
			t->tombs++;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return len;
}

static cudrv_result no_driver(void)
{
	return CUDRV_ERROR_NOT_INITIALIZED;
}

/*
 * A device region for a recognised size: 0 and *dptr, a CUDA error, or -1
 * when the driver's own call should serve it (not recognised, or the shim
 * failed and says so once).
 */
static int region_alloc(cudrv_deviceptr *dptr, size_t size)
{
	static atomic_int once;
	void *p;
	int err;

	if (!shimi_ready() || !shimi_cfg.enabled || !dptr || !size ||
	    !shimi_wanted(size))
		return -1;
	err = shimi_region_new_kind(SHIMI_KIND_CUDA, size, 0, &p);
	if (err == -ENOMEM)
		return CUDRV_ERROR_OUT_OF_MEMORY;
	if (err) {
		shimi_warn_once(&once,
				"no device region, the driver's allocation "
				"instead (said once)",
				err);
		return -1;
	}
	*dptr = (cudrv_deviceptr)(uintptr_t)p;
	return 0;
}

/* VKV_SHIM=0 turns counting off too: the driver's calls, nothing else. */
static int counting(void)
{
	return shimi_ready() && shimi_cfg.enabled;
}

/* Charge size before the driver allocates, so that threads cannot overshoot. */
static cudrv_result
charged_alloc(cudrv_deviceptr *dptr, size_t size,
	      cudrv_result (*call)(cudrv_deviceptr *, size_t, cudrv_stream),
	      cudrv_result (*sync_call)(cudrv_deviceptr *, size_t),
	      cudrv_stream stream)
{
	static atomic_int once;
	cudrv_result res;

	if (!counting())
		return sync_call ? sync_call(dptr, size)
				 : call(dptr, size, stream);
	if (shimi_charge(size))
		return CUDRV_ERROR_OUT_OF_MEMORY;
	res = sync_call ? sync_call(dptr, size) : call(dptr, size, stream);
	if (res) {
		shimi_uncharge(size);
		return res;
	}
	/* Not remembered: the bytes cannot be given back at free. */
	if (remember(&by_ptr, *dptr, size)) {
		shimi_uncharge(size);
		shimi_warn_once(&once, "device allocations not counted",
				ENOMEM);
	}
	return res;
}

EXPORT cudrv_result cuMemAlloc_v2(cudrv_deviceptr *dptr, size_t size)
{
	int r;

	if (shimi_cuda_load() || !shimi_cu.cuMemAlloc_v2)
		return no_driver();
	r = region_alloc(dptr, size);
	if (r >= 0)
		return (cudrv_result)r;
	return charged_alloc(dptr, size, NULL, shimi_cu.cuMemAlloc_v2, NULL);
}

/*
 * Under stream capture, cuMemAllocAsync and cuMemFreeAsync make graph
 * memory nodes, allocated when the graph runs: the driver's business. A
 * region made there would not be one, and the calls it takes are not
 * allowed during a capture.
 */
static int capturing(cudrv_stream stream)
{
	unsigned int st = CUDRV_STREAM_CAPTURE_STATUS_NONE;

	return shimi_cu.cuStreamIsCapturing &&
	       !shimi_cu.cuStreamIsCapturing(stream, &st) &&
	       st != CUDRV_STREAM_CAPTURE_STATUS_NONE;
}

/*
 * A region is made at once, not in stream order: it is ready before any
 * work the stream runs later, as stream-ordered memory must be.
 */
static cudrv_result
alloc_async(cudrv_result (*call)(cudrv_deviceptr *, size_t, cudrv_stream),
	    cudrv_deviceptr *dptr, size_t size, cudrv_stream stream)
{
	int r;

	if (!call)
		return no_driver();
	if (capturing(stream))
		return call(dptr, size, stream);
	r = region_alloc(dptr, size);
	if (r >= 0)
		return (cudrv_result)r;
	return charged_alloc(dptr, size, call, NULL, stream);
}

EXPORT cudrv_result cuMemAllocAsync(cudrv_deviceptr *dptr, size_t size,
				    cudrv_stream stream)
{
	if (shimi_cuda_load())
		return no_driver();
	return alloc_async(shimi_cu.cuMemAllocAsync, dptr, size, stream);
}

EXPORT cudrv_result cuMemAllocAsync_ptsz(cudrv_deviceptr *dptr, size_t size,
					 cudrv_stream stream)
{
	if (shimi_cuda_load())
		return no_driver();
	return alloc_async(shimi_cu.cuMemAllocAsync_ptsz, dptr, size, stream);
}

/* 1 when dptr was a region and is released. */
static int region_free(cudrv_deviceptr dptr)
{
	return dptr && !shimi_region_free_kind(SHIMI_KIND_CUDA,
					       (void *)(uintptr_t)dptr);
}

EXPORT cudrv_result cuMemFree_v2(cudrv_deviceptr dptr)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuMemFree_v2)
		return no_driver();
	/* Destroying synchronises the context, as cuMemFree does. */
	if (region_free(dptr))
		return CUDRV_SUCCESS;
	res = shimi_cu.cuMemFree_v2(dptr);
	if (!res)
		shimi_uncharge(forget(&by_ptr, dptr));
	return res;
}

/*
 * A region may still be read by work queued on the stream: wait for the
 * stream, then release it (the driver would release it in stream order).
 */
static cudrv_result free_async(cudrv_result (*call)(cudrv_deviceptr,
						    cudrv_stream),
			       cudrv_result (*sync)(cudrv_stream),
			       cudrv_deviceptr dptr, cudrv_stream stream)
{
	size_t len;
	int kind;
	cudrv_result res;

	if (!call || !sync)
		return no_driver();
	/* A region is no graph allocation: the driver refuses it. */
	if (capturing(stream))
		return call(dptr, stream);
	if (dptr && shimi_region_lookup((void *)(uintptr_t)dptr, &len, &kind) &&
	    kind == SHIMI_KIND_CUDA) {
		res = sync(stream);
		if (res)
			return res;
		return region_free(dptr) ? CUDRV_SUCCESS
					 : CUDRV_ERROR_INVALID_VALUE;
	}
	res = call(dptr, stream);
	if (!res)
		shimi_uncharge(forget(&by_ptr, dptr));
	return res;
}

EXPORT cudrv_result cuMemFreeAsync(cudrv_deviceptr dptr, cudrv_stream stream)
{
	if (shimi_cuda_load())
		return no_driver();
	return free_async(shimi_cu.cuMemFreeAsync, shimi_cu.cuStreamSynchronize,
			  dptr, stream);
}

EXPORT cudrv_result cuMemFreeAsync_ptsz(cudrv_deviceptr dptr,
					cudrv_stream stream)
{
	if (shimi_cuda_load())
		return no_driver();
	return free_async(shimi_cu.cuMemFreeAsync_ptsz,
			  shimi_cu.cuStreamSynchronize_ptsz
				  ? shimi_cu.cuStreamSynchronize_ptsz
				  : shimi_cu.cuStreamSynchronize,
			  dptr, stream);
}

EXPORT cudrv_result cuMemCreate(cudrv_mem_handle *handle, size_t size,
				const struct cudrv_mem_alloc_prop *prop,
				unsigned long long flags)
{
	static atomic_int once;
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuMemCreate)
		return no_driver();
	if (!counting())
		return shimi_cu.cuMemCreate(handle, size, prop, flags);
	/* Any location counts: the limit is on what the process holds. */
	if (size && shimi_charge(size))
		return CUDRV_ERROR_OUT_OF_MEMORY;
	res = shimi_cu.cuMemCreate(handle, size, prop, flags);
	if (res) {
		shimi_uncharge(size);
		return res;
	}
	if (remember(&by_handle, *handle, size)) {
		shimi_uncharge(size);
		shimi_warn_once(&once, "physical allocations not counted",
				ENOMEM);
	}
	return res;
}

EXPORT cudrv_result cuMemRelease(cudrv_mem_handle handle)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuMemRelease)
		return no_driver();
	res = shimi_cu.cuMemRelease(handle);
	if (!res)
		shimi_uncharge(forget(&by_handle, handle));
	return res;
}

EXPORT cudrv_result cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
	uint64_t used, lim;
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuMemGetInfo_v2)
		return no_driver();
	res = shimi_cu.cuMemGetInfo_v2(free_bytes, total);
	if (res || !counting())
		return res;
	shimi_counted(&used, &lim);
	if (!lim)
		return res;
	if (total && *total > lim)
		*total = (size_t)lim;
	if (free_bytes) {
		uint64_t left = used < lim ? lim - used : 0;

		if (*free_bytes > left)
			*free_bytes = (size_t)left;
	}
	return res;
}

/*
 * Peer access: memory from cuMemAlloc becomes reachable from a context
 * that enables peer access to its owner, and unreachable when it disables
 * it; VMM memory does not follow, so the device regions standing in for
 * cuMemAlloc are given (or denied) the access by the shim.
 */
EXPORT cudrv_result cuCtxEnablePeerAccess(cudrv_context peer,
					  unsigned int flags)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuCtxEnablePeerAccess)
		return no_driver();
	res = shimi_cu.cuCtxEnablePeerAccess(peer, flags);
	if (!res && counting())
		shimi_cuda_peer(peer, 1);
	return res;
}

EXPORT cudrv_result cuCtxDisablePeerAccess(cudrv_context peer)
{
	cudrv_result res;

	if (shimi_cuda_load() || !shimi_cu.cuCtxDisablePeerAccess)
		return no_driver();
	res = shimi_cu.cuCtxDisablePeerAccess(peer);
	if (!res && counting())
		shimi_cuda_peer(peer, 0);
	return res;
}
