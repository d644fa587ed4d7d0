/* SPDX-License-Identifier: MIT */
/*
 * Regions without the module: private anonymous memory mapped by the shim.
 * Private, not a shared memfd, so that fork() gives the child a copy-on-write
 * copy as it would of any malloc() memory. Suspend never copies data behind
 * the program's back: `disk` asks the kernel to page the region out
 * (MADV_PAGEOUT, to the system's swap), `discard` drops it (reads back as
 * zeroes), `host` leaves it where it is; every access after any of them is
 * served by the kernel at the same address, so no fault handler is needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

void *shimi_map_aligned(size_t len, size_t align, int fd, void **map,
			size_t *map_len)
{
	size_t page = 4096, span;
	uintptr_t base, start;
	void *p;

	if (align < page)
		align = page;
	len = (len + page - 1) & ~(page - 1);
	if (len + align < len)
		return NULL;
	span = len + align - page;
	p = shimi_sys_mmap(NULL, span, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	base = (uintptr_t)p;
	start = (base + align - 1) & ~(uintptr_t)(align - 1);
	if (start > base)
		shimi_sys_munmap(p, start - base);
	if (base + span > start + len)
		shimi_sys_munmap((void *)(start + len),
				 base + span - start - len);
	if (fd >= 0)
		p = shimi_sys_mmap((void *)start, len, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_FIXED, fd, 0);
	else
		p = shimi_sys_mmap((void *)start, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
				   0);
	if (p == MAP_FAILED) {
		int err = errno;

		shimi_sys_munmap((void *)start, len);
		errno = err;
		return NULL;
	}
	*map = p;
	*map_len = len;
	return p;
}

static int anon_create(struct shimi_region *r, size_t len, size_t align)
{
	if (!shimi_map_aligned(len, align, -1, &r->map, &r->map_len))
		return -errno;
	r->addr = (uintptr_t)r->map;
	r->len = r->map_len;
	r->fd = -1;
	return 0;
}

static void anon_destroy(struct shimi_region *r)
{
	if (r->map_len)
		shimi_sys_munmap(r->map, r->map_len);
}

static int anon_suspend(struct shimi_region *r, enum shimi_mode mode)
{
	switch (mode) {
	case SHIMI_MODE_HOST:
		return 0;
	case SHIMI_MODE_DISK:
		return madvise(r->map, r->map_len, MADV_PAGEOUT) ? -errno : 0;
	case SHIMI_MODE_DISCARD:
		return madvise(r->map, r->map_len, MADV_DONTNEED) ? -errno : 0;
	}
	return -EINVAL;
}

static int anon_resume(struct shimi_region *r)
{
	/* A hint: pages come back on access whether it helps or not. */
	madvise(r->map, r->map_len, MADV_WILLNEED);
	return 0;
}

static void anon_usage(const struct shimi_region *r, struct shimi_usage *u)
{
	unsigned char vec[512];
	size_t pages = r->map_len / 4096, done = 0, resident = 0;

	while (done < pages) {
		size_t n =
			pages - done < sizeof(vec) ? pages - done : sizeof(vec);

		if (mincore((char *)r->map + done * 4096, n * 4096, vec))
			break;
		for (size_t i = 0; i < n; i++)
			resident += vec[i] & 1;
		done += n;
	}
	u->host += (uint64_t)resident * 4096;
	u->absent += (uint64_t)(pages - resident) * 4096;
}

static void anon_fork_child(struct shimi_region *r)
{
}

const struct shimi_backing_ops shimi_anon_ops = {
	.name = "anon",
	.create = anon_create,
	.destroy = anon_destroy,
	.suspend = anon_suspend,
	.resume = anon_resume,
	.usage = anon_usage,
	.fork_child = anon_fork_child,
};
