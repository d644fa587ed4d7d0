/* SPDX-License-Identifier: MIT */
/*
 * Anonymous mmap()/munmap() interposers. Only what an engine's KV buffer
 * looks like is taken: a private, anonymous, read-write mapping with no
 * address demanded. Everything else (files, shared memory, stacks, guard
 * reservations, huge pages, MAP_FIXED) passes through.
 */
#include <errno.h>
#include <sys/mman.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

static atomic_int fallback_once;

static int recognisable(void *addr, size_t len, int prot, int flags, int fd)
{
	const int refuse = MAP_SHARED | MAP_FIXED | MAP_STACK | MAP_HUGETLB |
			   MAP_GROWSDOWN
#ifdef MAP_FIXED_NOREPLACE
			   | MAP_FIXED_NOREPLACE
#endif
		;

	return !addr && fd == -1 && (flags & MAP_ANONYMOUS) &&
	       (flags & MAP_PRIVATE) && !(flags & refuse) &&
	       prot == (PROT_READ | PROT_WRITE) && len >= shimi_floor &&
	       shimi_wanted(len);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	void *p;
	int err;

	if (shimi_unlikely(!shimi_ready()))
		return shimi_sys_mmap(addr, len, prot, flags, fd, off);
	if (recognisable(addr, len, prot, flags, fd)) {
		err = shimi_region_new(len, 0, &p);
		if (!err)
			return p;
		if (err == -ENOMEM) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
		shimi_warn_once(
			&fallback_once,
			"no vkv region, the real mmap serves it (said once)",
			err);
	}
	return shimi_real.mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off) __attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	if (shimi_unlikely(!shimi_ready()))
		return shimi_sys_munmap(addr, len);
	if (shimi_unlikely(shimi_maybe_region(addr) ||
			   shimi_maybe_region((char *)addr + len - 1)) &&
	    shimi_region_unmap(addr, len))
		return 0;
	return shimi_real.munmap(addr, len);
}
