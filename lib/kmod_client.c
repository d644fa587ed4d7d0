/* SPDX-License-Identifier: MIT */
/*
 * kmod_client.c - the library's internal client of /dev/vkv. See
 * kmod_client.h; docs/design/module.md describes the module.
 */
#include "kmod_client.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int kmod_ioctl(struct vkv_kmod *km, unsigned long cmd, void *arg)
{
	int r;

	if (!km || km->fd < 0)
		return -EBADF;
	do {
		r = ioctl(km->fd, cmd, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int vkvi_kmod_open(struct vkv_kmod *km, const char *path)
{
	struct vkv_version v;
	int fd, r;

	if (!km)
		return -EINVAL;
	memset(km, 0, sizeof(*km));
	km->fd = -1;
	km->node = -1;
	fd = open(path ? path : VKV_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	km->fd = fd;
	memset(&v, 0, sizeof(v));
	r = kmod_ioctl(km, VKV_IOC_GET_VERSION, &v);
	if (r == -ENOTTY || r == -EINVAL)
		r = -EPROTO; /* not vkv, or a module without GET_VERSION */
	else if (!r && v.major != VKV_ABI_MAJOR)
		r = -EPROTO;
	if (r) {
		close(fd);
		km->fd = -1;
		return r;
	}
	km->major = v.major;
	km->minor = v.minor;
	return 0;
}

void vkvi_kmod_close(struct vkv_kmod *km)
{
	if (!km)
		return;
	if (km->base)
		munmap(km->base, km->pool_size);
	if (km->fd >= 0)
		close(km->fd);
	memset(km, 0, sizeof(*km));
	km->fd = -1;
	km->node = -1;
}

int vkvi_kmod_pool_create(struct vkv_kmod *km, uint64_t size,
			  uint32_t chunk_size, int node)
{
	struct vkv_pool_create pc;
	int r;

	if (!size)
		return -EINVAL;
	memset(&pc, 0, sizeof(pc));
	pc.size = size;
	pc.chunk_size = chunk_size;
	pc.node = node;
	/*
	 * The library's own host memory prefers its node and spills (mbind
	 * MPOL_PREFERRED); the module's does the same where it can.
	 */
	if (km->minor >= 1)
		pc.flags = VKV_POOL_NODE_PREFERRED;
	r = kmod_ioctl(km, VKV_IOC_POOL_CREATE, &pc);
	if (r)
		return r;
	km->pool_size = pc.size;
	km->chunk_size = pc.chunk_size;
	km->node = pc.node;
	return 0;
}

int vkvi_kmod_map(struct vkv_kmod *km, void **addr)
{
	void *p;

	if (!km || km->fd < 0)
		return -EBADF;
	if (!km->pool_size)
		return -ENXIO;
	if (!km->base) {
		p = mmap(NULL, km->pool_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, km->fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		km->base = p;
	}
	if (addr)
		*addr = km->base;
	return 0;
}

int vkvi_kmod_pool_info(struct vkv_kmod *km, struct vkv_pool_info *info)
{
	if (!info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	return kmod_ioctl(km, VKV_IOC_POOL_INFO, info);
}

int vkvi_kmod_set_backing(struct vkv_kmod *km, int fd, uint64_t offset,
			  uint32_t flags)
{
	struct vkv_backing b;

	memset(&b, 0, sizeof(b));
	b.fd = fd;
	b.flags = flags;
	b.offset = offset;
	return kmod_ioctl(km, VKV_IOC_SET_BACKING, &b);
}

static int kmod_range(struct vkv_kmod *km, unsigned long cmd, uint64_t offset,
		      uint64_t length, uint64_t *done)
{
	struct vkv_range r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.offset = offset;
	r.length = length;
	if (!km || km->fd < 0)
		return -EBADF;
	/* Not kmod_ioctl(): an interrupted range must not restart silently. */
	ret = ioctl(km->fd, cmd, &r) < 0 ? -errno : 0;
	if (done)
		*done = r.done;
	return ret;
}

int vkvi_kmod_swap_out(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		       uint64_t *done)
{
	return kmod_range(km, VKV_IOC_SWAP_OUT, offset, length, done);
}

int vkvi_kmod_prefetch(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		       uint64_t *done)
{
	return kmod_range(km, VKV_IOC_PREFETCH, offset, length, done);
}

int vkvi_kmod_discard(struct vkv_kmod *km, uint64_t offset, uint64_t length,
		      uint64_t *done)
{
	return kmod_range(km, VKV_IOC_DISCARD, offset, length, done);
}

int vkvi_kmod_pin(struct vkv_kmod *km, const void *addr, size_t length,
		  int writable, uint64_t *handle)
{
	struct vkv_pin p;
	int r;

	if (!handle || !length)
		return -EINVAL;
	memset(&p, 0, sizeof(p));
	p.addr = (uint64_t)(uintptr_t)addr;
	p.length = length;
	p.flags = writable ? VKV_PIN_WRITE : 0;
	r = kmod_ioctl(km, VKV_IOC_PIN, &p);
	if (!r)
		*handle = p.handle;
	return r;
}

int vkvi_kmod_unpin(struct vkv_kmod *km, uint64_t handle)
{
	struct vkv_unpin u;

	memset(&u, 0, sizeof(u));
	u.handle = handle;
	return kmod_ioctl(km, VKV_IOC_UNPIN, &u);
}
