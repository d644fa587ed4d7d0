/* SPDX-License-Identifier: MIT */
/*
 * Regions with vkv.ko: each region is a /dev/vkv context of its own, its
 * pool sized to the region and mapped shared, with an unlinked backing file
 * in the spill directory so that the module's shrinker and `suspend` can
 * write chunks out; an access to a swapped chunk faults it back in the
 * kernel. The shim talks the ioctl ABI itself (lib/ is not linked in: the
 * shim must not pull libvkv's threads and state into every process).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vkv.h>

#include "shim.h"

static _Atomic int kmod_state; /* 0 unknown, 1 usable, -1 not */

int shimi_kmod_available(void)
{
	struct vkv_version v;
	int s = atomic_load(&kmod_state), fd;

	if (s)
		return s > 0;
	s = -1;
	fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		memset(&v, 0, sizeof(v));
		if (!ioctl(fd, VKV_IOC_GET_VERSION, &v) &&
		    v.major == VKV_ABI_MAJOR)
			s = 1;
		close(fd);
	}
	atomic_store(&kmod_state, s);
	return s > 0;
}

static void set_backing(int fd)
{
	struct vkv_backing b = {.fd = -1};
	int file;

	file = open(shimi_cfg.spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (file < 0) {
		static atomic_int once;

		shimi_warn_once(&once,
				"no backing file for vkv regions (no "
				"swap to disk)",
				errno);
		return;
	}
	b.fd = file;
	if (ioctl(fd, VKV_IOC_SET_BACKING, &b)) {
		static atomic_int once;

		shimi_warn_once(&once, "VKV_IOC_SET_BACKING", errno);
	}
	close(file);
}

static int kmod_create(struct shimi_region *r, size_t len, size_t align)
{
	struct vkv_pool_create pc;
	int fd, err;

	fd = open(VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&pc, 0, sizeof(pc));
	pc.size = len;
	pc.node = -1;
	if (ioctl(fd, VKV_IOC_POOL_CREATE, &pc)) {
		err = -errno;
		goto out;
	}
	set_backing(fd);
	if (!shimi_map_aligned(pc.size, align, fd, &r->map, &r->map_len)) {
		err = -errno;
		goto out;
	}
	r->addr = (uintptr_t)r->map;
	r->len = r->map_len;
	r->fd = fd;
	return 0;
out:
	close(fd);
	return err;
}

static void kmod_destroy(struct shimi_region *r)
{
	if (r->map_len)
		shimi_sys_munmap(r->map, r->map_len);
	close(r->fd);
}

static int range_op(struct shimi_region *r, unsigned long cmd)
{
	struct vkv_range rg;

	memset(&rg, 0, sizeof(rg));
	rg.length = r->map_len;
	return ioctl(r->fd, cmd, &rg) ? -errno : 0;
}

static int kmod_suspend(struct shimi_region *r, enum shimi_mode mode)
{
	switch (mode) {
	case SHIMI_MODE_HOST:
		return 0;
	case SHIMI_MODE_DISK:
		return range_op(r, VKV_IOC_SWAP_OUT);
	case SHIMI_MODE_DISCARD:
		return range_op(r, VKV_IOC_DISCARD);
	}
	return -EINVAL;
}

static int kmod_resume(struct shimi_region *r)
{
	return range_op(r, VKV_IOC_PREFETCH);
}

static void kmod_usage(const struct shimi_region *r, struct shimi_usage *u)
{
	struct vkv_pool_info pi;

	memset(&pi, 0, sizeof(pi));
	if (ioctl(r->fd, VKV_IOC_POOL_INFO, &pi)) {
		u->absent += r->map_len;
		return;
	}
	u->host += pi.resident_chunks * pi.chunk_size;
	u->disk += pi.swapped_chunks * pi.chunk_size;
	u->absent += pi.empty_chunks * pi.chunk_size;
}

/*
 * A copy of the bytes moved over the pool's mapping: the pool goes with its
 * descriptor, and the region is private memory the kernel may cut, move
 * and copy on fork as any other.
 */
static int kmod_privatise(struct shimi_region *r)
{
	void *copy;
	int err;

	copy = shimi_sys_mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		return -errno;
	memcpy(copy, r->map, r->map_len);
	if (shimi_sys_mremap(copy, r->map_len, r->map_len,
			     MREMAP_MAYMOVE | MREMAP_FIXED,
			     r->map) == MAP_FAILED) {
		err = -errno;
		shimi_sys_munmap(copy, r->map_len);
		return err;
	}
	close(r->fd);
	r->fd = -1;
	r->kind = SHIMI_KIND_ANON;
	return 0;
}

/*
 * The pool is shared with the parent: the child gets a private copy at the
 * same address instead (a copy of the region's bytes, paid at fork), and
 * drops its reference to the parent's context.
 */
static void kmod_fork_child(struct shimi_region *r)
{
	static atomic_int once;
	int err = kmod_privatise(r);

	/* Left shared with the parent: say so rather than hide it. */
	if (err)
		shimi_warn_once(&once,
				"fork: a vkv region stays shared with the "
				"parent",
				-err);
}

const struct shimi_backing_ops shimi_kmod_ops = {
	.name = "kmod",
	.create = kmod_create,
	.destroy = kmod_destroy,
	.suspend = kmod_suspend,
	.resume = kmod_resume,
	.usage = kmod_usage,
	.fork_child = kmod_fork_child,
	.privatise = kmod_privatise,
};
