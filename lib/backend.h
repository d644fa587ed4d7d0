/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the physical-memory interface every backend implements.
 *
 * It is exactly CUDA's virtual memory management model, so the cache above
 * it runs unchanged on the GPU and on the host:
 *
 *   reserve     cuMemAddressReserve   a virtual range, nothing behind it
 *   create      cuMemCreate           one physical page of page_size bytes
 *   map         cuMemMap              a page at an address in a reservation
 *   set_access  cuMemSetAccess        make a run of mapped pages read/write
 *   unmap       cuMemUnmap            a run of mapped pages
 *   release     cuMemRelease          a page (deferred while still mapped)
 *   unreserve   cuMemAddressFree      the whole range
 *   copy        cuMemcpy*             between cache memory and host memory
 *   host_register / host_unregister (optional)
 *               cuMemHostRegister     pin host memory that copies use often
 *
 * Every operation returns 0 or a negative errno and changes nothing when it
 * fails. Sizes and addresses are multiples of the granularity. The pool and
 * the cache call map per page, then set_access once per contiguous run.
 */
#ifndef VKV_BACKEND_H
#define VKV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "vkv.h"

typedef uint64_t vkv_handle_t;

enum vkv_copy_dir {
	VKV_COPY_TO_HOST = 0, /* cache memory -> plain host memory */
	VKV_COPY_FROM_HOST = 1, /* plain host memory -> cache memory */
};

struct vkv_backend;

struct vkv_backend_ops {
	const char *name;
	void (*destroy)(struct vkv_backend *be);
	int (*reserve)(struct vkv_backend *be, size_t size, uintptr_t *va);
	int (*unreserve)(struct vkv_backend *be, uintptr_t va, size_t size);
	int (*create)(struct vkv_backend *be, size_t size, vkv_handle_t *h);
	int (*release)(struct vkv_backend *be, vkv_handle_t h);
	int (*map)(struct vkv_backend *be, uintptr_t va, size_t size,
		   vkv_handle_t h);
	int (*set_access)(struct vkv_backend *be, uintptr_t va, size_t size);
	int (*unmap)(struct vkv_backend *be, uintptr_t va, size_t size);
	int (*copy)(struct vkv_backend *be, void *dst, const void *src,
		    size_t size, enum vkv_copy_dir dir);
	/*
	 * Optional (NULL where host memory needs nothing, e.g. the host
	 * backend). host_register makes [@p, @p + @len) memory that copy may
	 * DMA to and from directly, without a bounce through the backend's
	 * own buffers. It is an optimisation only: a caller must treat any
	 * error as "copies of this range will be staged" and go on. Returns
	 * 0, -EEXIST (overlaps a registered range), -ENOMEM, or another
	 * -errno. The range must stay mapped until host_unregister, which
	 * takes the same @p and returns 0, -ENOENT (not a base registered
	 * here: nothing to undo) or another -errno (still registered). Both
	 * are thread-safe; host_unregister waits for a direct copy of the
	 * range in flight. The backend's destroy unregisters what is left.
	 */
	int (*host_register)(struct vkv_backend *be, void *p, size_t len);
	int (*host_unregister)(struct vkv_backend *be, void *p);
};

struct vkv_backend {
	const struct vkv_backend_ops *ops;
	size_t granularity; /* every size and address is a multiple of it */
	size_t mem_total; /* physical bytes the device has, 0 = unknown */
	const struct vkv_config *cfg;
};

/*
 * vkvi_backend_open - open the backend @cfg asks for (auto: cuda if it works,
 * else host, logged once). Returns 0 and sets *@out, or a negative errno.
 */
int vkvi_backend_open(const struct vkv_config *cfg, struct vkv_backend **out);

/* Constructors, each returning 0 or -errno (-ENODEV: not usable here). */
int vkvi_backend_host_open(const struct vkv_config *cfg,
			   struct vkv_backend **out);
int vkvi_backend_cuda_open(const struct vkv_config *cfg,
			   struct vkv_backend **out);

static inline void vkv_backend_destroy(struct vkv_backend *be)
{
	if (be)
		be->ops->destroy(be);
}

#endif /* VKV_BACKEND_H */
