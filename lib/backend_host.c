/* SPDX-License-Identifier: MIT */
/*
 * backend_host.c - the VMM primitives over host memory.
 *
 * reserve  = mmap(PROT_NONE, MAP_NORESERVE): address space only.
 * create   = a slice of one memfd, allocated with fallocate() so that the
 *            memory exists (and a shortage shows) at creation, as with
 *            cuMemCreate, not as a SIGBUS at first touch.
 * map      = mmap(MAP_FIXED | MAP_SHARED) of the slice into the reservation.
 * unmap    = an anonymous PROT_NONE mapping over it, which keeps the range
 *            reserved (munmap would hand it back to the process).
 * release  = punch the slice's hole and keep it for reuse.
 *
 * Host memory has no separate access domain: a page is read/write once
 * mapped, so set_access only checks its arguments. The ordering discipline
 * that the GPU needs is enforced in tests by fakecuda, not here.
 *
 * A handle packs the slice's offset and size in granules, so release needs
 * no lookup: low 40 bits offset (4 PiB of 4 KiB granules), high 24 size.
 *
 * With the kernel module loaded and a budget set, slices come from a
 * /dev/vkv pool of exactly the budget instead: pinned, NUMA-local, never
 * reclaimed by the kernel behind the cache's back, and mapped the same way
 * (MAP_FIXED | MAP_SHARED of the device file at the slice's offset). Its
 * memory exists from the start, so create and release only do bookkeeping.
 * Without a budget the pool could not be sized, and memfd is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "internal.h"
#include "kmod_client.h"

#define OFF_BITS 40
#define SIZE_BITS 24
/* Grow the memfd's size in big steps; size is free until pages are allocated. */
#define FILE_GROW (64ull << 30)

struct slice {
	uint64_t off;
	uint64_t size;
};

struct host_backend {
	struct vkv_backend be;
	int memfd; /* the memfd, or the /dev/vkv context's fd */
	bool kmod; /* slices are in a /dev/vkv pool of pool_size bytes */
	uint64_t pool_size;
	struct vkv_kmod km;
	int node; /* preferred NUMA node for page allocation, -1 = local */
	pthread_mutex_t lock; /* free slices and the file's extent */
	struct slice *free;
	size_t nfree, cap;
	uint64_t next_off;
	uint64_t file_size;
};

static inline struct host_backend *to_host(struct vkv_backend *be)
{
	return (struct host_backend *)be;
}

static inline bool aligned(const struct vkv_backend *be, uint64_t v)
{
	return !(v & (be->granularity - 1));
}

static vkv_handle_t handle_pack(const struct vkv_backend *be, uint64_t off,
				uint64_t size)
{
	return (off / be->granularity) | ((size / be->granularity) << OFF_BITS);
}

static void handle_unpack(const struct vkv_backend *be, vkv_handle_t h,
			  uint64_t *off, uint64_t *size)
{
	*off = (h & ((1ull << OFF_BITS) - 1)) * be->granularity;
	*size = (h >> OFF_BITS) * be->granularity;
}

static int host_reserve(struct vkv_backend *be, size_t size, uintptr_t *va)
{
	/* Align to 2 MiB so that the kernel may use huge pages behind it. */
	const size_t align = VKV_DEFAULT_PAGE_SIZE;
	uintptr_t start, astart;
	size_t len;
	void *p;

	if (!size || !aligned(be, size) || size > SIZE_MAX - align)
		return -EINVAL;
	len = size + align;
	p = mmap(NULL, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	start = (uintptr_t)p;
	astart = (start + align - 1) & ~(uintptr_t)(align - 1);
	if (astart > start)
		munmap(p, astart - start);
	if (astart + size < start + len)
		munmap((void *)(astart + size), start + len - astart - size);
	*va = astart;
	return 0;
}

static int host_unreserve(struct vkv_backend *be, uintptr_t va, size_t size)
{
	if (!aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	return munmap((void *)va, size) ? -errno : 0;
}

static int take_slice(struct host_backend *hb, uint64_t size, uint64_t *off)
{
	int ret = 0;

	pthread_mutex_lock(&hb->lock);
	for (size_t i = hb->nfree; i-- > 0;) {
		if (hb->free[i].size == size) {
			*off = hb->free[i].off;
			hb->free[i] = hb->free[--hb->nfree];
			goto out;
		}
	}
	if (hb->kmod && hb->next_off + size > hb->pool_size) {
		ret = -ENOMEM; /* the pinned pool is the budget */
		goto out;
	}
	if (!hb->kmod && hb->next_off + size > hb->file_size) {
		uint64_t want = hb->next_off + size + FILE_GROW;

		if (ftruncate(hb->memfd, (off_t)want)) {
			ret = -errno;
			goto out;
		}
		hb->file_size = want;
	}
	*off = hb->next_off;
	hb->next_off += size;
out:
	pthread_mutex_unlock(&hb->lock);
	return ret;
}

static int put_slice(struct host_backend *hb, uint64_t off, uint64_t size)
{
	int ret = 0;

	pthread_mutex_lock(&hb->lock);
	if (hb->nfree == hb->cap) {
		size_t cap = hb->cap ? hb->cap * 2 : 64;
		struct slice *n = realloc(hb->free, cap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		hb->free = n;
		hb->cap = cap;
	}
	hb->free[hb->nfree++] = (struct slice){off, size};
out:
	pthread_mutex_unlock(&hb->lock);
	return ret;
}

/*
 * Allocate the slice's pages on the preferred node. The memfd's pages follow
 * the allocating thread's policy, and creation runs on the caller's thread or
 * the pool worker, so set the policy around the allocation only.
 */
static int alloc_pages_on_node(struct host_backend *hb, uint64_t off,
			       uint64_t size)
{
	unsigned long mask[16] = {0}, oldmask[16];
	int oldmode = 0, ret;
	bool policy = hb->node >= 0 && (unsigned)hb->node < sizeof(mask) * 8;

	if (policy) {
		if (get_mempolicy(&oldmode, oldmask, sizeof(oldmask) * 8, NULL,
				  0))
			policy = false;
	}
	if (policy) {
		mask[hb->node / 64] = 1ul << (hb->node % 64);
		if (set_mempolicy(MPOL_PREFERRED, mask, sizeof(mask) * 8))
			policy = false;
	}
	ret = fallocate(hb->memfd, 0, (off_t)off, (off_t)size) ? -errno : 0;
	if (policy)
		set_mempolicy(oldmode, oldmask, sizeof(oldmask) * 8);
	return ret;
}

static int host_create(struct vkv_backend *be, size_t size, vkv_handle_t *h)
{
	struct host_backend *hb = to_host(be);
	uint64_t off = 0;
	int ret;

	if (!size || !aligned(be, size) ||
	    size / be->granularity >= (1ull << SIZE_BITS))
		return -EINVAL;
	ret = take_slice(hb, size, &off);
	if (ret)
		return ret;
	if (hb->kmod) {
		/* Pool memory is resident and pinned since the pool was made. */
		*h = handle_pack(be, off, size);
		return 0;
	}
	ret = alloc_pages_on_node(hb, off, size);
	if (ret) {
		/* Partly allocated pages must not linger in the slice. */
		fallocate(hb->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)off, (off_t)size);
		put_slice(hb, off, size);
		return ret == -ENOSPC ? -ENOMEM : ret;
	}
	*h = handle_pack(be, off, size);
	return 0;
}

static int host_release(struct vkv_backend *be, vkv_handle_t h)
{
	struct host_backend *hb = to_host(be);
	uint64_t off, size, end;

	handle_unpack(be, h, &off, &size);
	pthread_mutex_lock(&hb->lock);
	end = hb->next_off;
	pthread_mutex_unlock(&hb->lock);
	if (!size || off + size > end)
		return -EINVAL;
	if (hb->kmod)
		return put_slice(hb, off, size);
	if (fallocate(hb->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)size))
		return -errno;
	return put_slice(hb, off, size);
}

static int host_map(struct vkv_backend *be, uintptr_t va, size_t size,
		    vkv_handle_t h)
{
	struct host_backend *hb = to_host(be);
	uint64_t off, hsize;
	void *p;

	handle_unpack(be, h, &off, &hsize);
	if (!size || !aligned(be, va) || !aligned(be, size) || size > hsize)
		return -EINVAL;
	p = mmap((void *)va, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, hb->memfd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	return 0;
}

static int host_set_access(struct vkv_backend *be, uintptr_t va, size_t size)
{
	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	return 0;
}

static int host_unmap(struct vkv_backend *be, uintptr_t va, size_t size)
{
	void *p;

	if (!size || !aligned(be, va) || !aligned(be, size))
		return -EINVAL;
	p = mmap((void *)va, size, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		 0);
	return p == MAP_FAILED ? -errno : 0;
}

static int host_copy(struct vkv_backend *be, void *dst, const void *src,
		     size_t size, enum vkv_copy_dir dir)
{
	(void)be;
	(void)dir;
	memcpy(dst, src, size);
	return 0;
}

static void host_destroy(struct vkv_backend *be)
{
	struct host_backend *hb = to_host(be);

	if (hb->kmod)
		vkvi_kmod_close(&hb->km);
	else
		close(hb->memfd);
	pthread_mutex_destroy(&hb->lock);
	free(hb->free);
	free(hb);
}

static const struct vkv_backend_ops host_ops = {
	.name = "host",
	.destroy = host_destroy,
	.reserve = host_reserve,
	.unreserve = host_unreserve,
	.create = host_create,
	.release = host_release,
	.map = host_map,
	.set_access = host_set_access,
	.unmap = host_unmap,
	.copy = host_copy,
};

/*
 * Take the cache's budget as a pinned /dev/vkv pool. Returns 0, or why not
 * (the caller falls back to memfd and says so once).
 */
static int open_kmod_pool(struct host_backend *hb, const struct vkv_config *cfg)
{
	int ret;

	if (!cfg->budget)
		return -EINVAL;
	ret = vkvi_kmod_open(&hb->km, NULL);
	if (ret)
		return ret;
	ret = vkvi_kmod_pool_create(&hb->km, cfg->budget, 0, cfg->numa_node);
	if (ret) {
		vkvi_kmod_close(&hb->km);
		return ret;
	}
	hb->kmod = true;
	hb->memfd = hb->km.fd;
	hb->pool_size = hb->km.pool_size;
	return 0;
}

static bool kmod_said;

int vkvi_backend_host_open(const struct vkv_config *cfg,
			   struct vkv_backend **out)
{
	struct host_backend *hb = calloc(1, sizeof(*hb));
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);
	int kret;

	if (!hb)
		return -ENOMEM;
	hb->km.fd = -1;
	kret = open_kmod_pool(hb, cfg);
	if (!kret) {
		vkvi_log(cfg, VKV_LOG_INFO,
			 "vkv: host memory from /dev/vkv: %llu bytes pinned "
			 "on node %d",
			 (unsigned long long)hb->pool_size, hb->km.node);
		goto ready;
	}
	/* Once per process: why the module is not used. */
	if (!__atomic_exchange_n(&kmod_said, true, __ATOMIC_RELAXED))
		vkvi_log(cfg, VKV_LOG_INFO, "vkv: host memory from memfd (%s)",
			 kret == -EINVAL   ? "no budget to size a /dev/vkv pool"
			 : kret == -ENOENT ? "vkv.ko not loaded"
					   : vkv_strerror(kret));
	hb->memfd = memfd_create("vkv-host", MFD_CLOEXEC);
	if (hb->memfd < 0) {
		int ret = -errno;

		free(hb);
		vkvi_log(cfg, VKV_LOG_ERROR, "vkv: memfd_create failed: %s",
			 vkv_strerror(ret));
		return ret;
	}
ready:
	pthread_mutex_init(&hb->lock, NULL);
	hb->node = cfg->numa_node;
	hb->be.ops = &host_ops;
	hb->be.granularity = psize > 0 ? (size_t)psize : 4096;
	hb->be.mem_total = pages > 0 ? (size_t)pages * hb->be.granularity : 0;
	hb->be.cfg = cfg;
	*out = &hb->be;
	return 0;
}
