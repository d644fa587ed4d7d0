/* SPDX-License-Identifier: MIT */
/*
 * Anonymous mmap()/munmap()/mremap() interposers. Only what an engine's KV buffer
 * looks like is taken: a private, anonymous, read-write mapping with no
 * address demanded. Everything else (files, shared memory, stacks, guard
 * reservations, huge pages, MAP_FIXED) passes through.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

void *shimi_sys_mremap(void *old, size_t old_len, size_t new_len, int flags,
		       void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags,
			       new_addr);
}

/*
 * May [p, p + len) touch a region? Both ends may lie outside every region
 * with one inside: the range, not its ends, is tested.
 */
static int may_touch(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	/* The span of host regions, read as shimi_maybe_region() reads it. */
	uintptr_t base = atomic_load_explicit(&shimi_fast.span_base,
					      memory_order_acquire);
	uintptr_t span = atomic_load_explicit(&shimi_fast.span_len,
					      memory_order_acquire);

	return len && a + len > a && a < base + span && a + len > base;
}

/* munmap and mremap fail as the kernel's do when the shim cannot follow. */
static int fail(int err)
{
	errno = -err;
	return -1;
}

EXPORT int munmap(void *addr, size_t len)
{
	int r;

	if (shimi_unlikely(!shimi_ready()))
		return shimi_sys_munmap(addr, len);
	if (shimi_unlikely(may_touch(addr, len))) {
		r = shimi_region_unmap(addr, len);
		if (r < 0)
			return fail(r);
		if (r)
			return 0;
	}
	return shimi_real.munmap(addr, len);
}

/*
 * A region moved, grown or shrunk keeps its bytes, as the kernel's
 * mremap keeps a mapping's, and stays a region where it went.
 */
EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL, *out;
	va_list ap;
	int r;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!shimi_ready() ||
	    (!may_touch(old, old_len) && !may_touch(new_addr, new_len)))
		return shimi_sys_mremap(old, old_len, new_len, flags, new_addr);
	r = shimi_region_remap(old, old_len, new_len, flags, new_addr, &out);
	if (r < 0) {
		fail(r);
		return MAP_FAILED;
	}
	if (r)
		return out;
	return shimi_sys_mremap(old, old_len, new_len, flags, new_addr);
}
