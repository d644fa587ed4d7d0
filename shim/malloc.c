/* SPDX-License-Identifier: MIT */
/*
 * The allocator interposers. A malloc() the shim does not take costs one
 * comparison (size against shimi_fast.floor), a free() two (the span of
 * every host region ever made, the bootstrap arena), then a jump to the
 * real function: no thread-local, atomic read-modify-write or lock on the
 * way. The real functions are the ones dlsym(RTLD_NEXT) finds, not glibc's
 * __libc_* entry points: an allocator preloaded after the shim or linked
 * into the program must keep seeing every call, and a call through either
 * is one indirect jump.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "vkv-shim.h"

#define EXPORT __attribute__((visibility("default")))

static atomic_int fallback_once;

/*
 * A region, NULL with errno ENOMEM over the limit, or NULL with errno 0 when
 * the real allocator should serve it.
 */
static void *region_or_null(size_t size, size_t align)
{
	void *p;
	int err = shimi_region_new(size, align, &p);

	if (!err)
		return p;
	if (err == -ENOMEM) {
		errno = ENOMEM;
		return NULL;
	}
	shimi_warn_once(
		&fallback_once,
		"no vkv region, the real allocator serves it (said once)", err);
	errno = 0;
	return NULL;
}

/* Everything but the common case, out of line so that it stays short. */
static __attribute__((noinline)) void *malloc_slow(size_t size)
{
	void *p;

	if (!shimi_ready())
		return shimi_boot_alloc(size, 16);
	if (size >= shimi_floor && shimi_wanted(size)) {
		p = region_or_null(size, 0);
		if (p || errno)
			return p;
	}
	return shimi_real.malloc(size);
}

EXPORT void *malloc(size_t size)
{
	if (__builtin_expect(shimi_pass_size(size), 1))
		return shimi_fast.malloc(size);
	return malloc_slow(size);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (shimi_unlikely(!shimi_ready())) {
		/* The arena is static and never reused: already zero. */
		return shimi_boot_alloc(total, 16);
	}
	/* Both backings hand out zeroed pages. */
	if (shimi_unlikely(total >= shimi_floor) && shimi_wanted(total)) {
		p = region_or_null(total, 0);
		if (p || errno)
			return p;
	}
	return shimi_real.calloc(n, size);
}

static int owned(const void *p, size_t *len)
{
	return shimi_maybe_region(p) && shimi_region_find(p, len);
}

static __attribute__((noinline)) void free_slow(void *p)
{
	/* Before the real free is known, nothing it could own exists. */
	if (!p || shimi_boot_owns(p) || !shimi_ready())
		return;
	if (!shimi_region_free(p))
		return;
	shimi_real.free(p);
}

/* Until the real functions are known, every p lies in the span. */
EXPORT void free(void *p)
{
	if (__builtin_expect(!shimi_maybe_region(p) && !shimi_boot_owns(p),
			     1)) {
		shimi_fast.free(p);
		return;
	}
	free_slow(p);
}

/* Move old_len bytes of p into a new block of size bytes, freeing p. */
static void *move(void *p, size_t old_len, size_t size)
{
	void *q = malloc(size);

	if (!q)
		return NULL;
	memcpy(q, p, old_len < size ? old_len : size);
	free(p);
	return q;
}

EXPORT void *realloc(void *p, size_t size)
{
	size_t len;

	if (!p)
		return malloc(size);
	if (shimi_boot_owns(p))
		return move(p, shimi_boot_size(p), size);
	if (shimi_unlikely(!shimi_ready()))
		return NULL;
	if (owned(p, &len)) {
		if (!size) {
			free(p);
			return NULL;
		}
		/* Still a region's size, and it fits: stay in place. */
		if (size <= len && shimi_wanted(size))
			return p;
		return move(p, len, size);
	}
	if (size >= shimi_floor && shimi_wanted(size))
		return move(p, shimi_real.malloc_usable_size(p), size);
	return shimi_real.realloc(p, size);
}

static int pow2(size_t a)
{
	return a && !(a & (a - 1));
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (!pow2(align) || align % sizeof(void *))
		return EINVAL;
	if (shimi_unlikely(!shimi_ready())) {
		p = shimi_boot_alloc(size, align);
		if (!p)
			return ENOMEM;
		*out = p;
		return 0;
	}
	if (size >= shimi_floor && shimi_wanted(size)) {
		p = region_or_null(size, align);
		if (p) {
			*out = p;
			return 0;
		}
		if (errno)
			return ENOMEM;
	}
	return shimi_real.posix_memalign(out, align, size);
}

static void *aligned(size_t align, size_t size, int real_aligned_alloc)
{
	void *p;

	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	if (shimi_unlikely(!shimi_ready()))
		return shimi_boot_alloc(size, align);
	if (size >= shimi_floor && shimi_wanted(size)) {
		p = region_or_null(size, align);
		if (p || errno)
			return p;
	}
	if (real_aligned_alloc)
		return shimi_real.aligned_alloc(align, size);
	return shimi_real.memalign(align, size);
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return aligned(align, size, 1);
}

EXPORT void *memalign(size_t align, size_t size)
{
	return aligned(align, size, 0);
}

EXPORT size_t malloc_usable_size(void *p)
{
	size_t len;

	if (!p)
		return 0;
	if (shimi_boot_owns(p))
		return shimi_boot_size(p);
	if (owned(p, &len))
		return len;
	if (shimi_unlikely(!shimi_ready()))
		return 0;
	return shimi_real.malloc_usable_size(p);
}

EXPORT void vkv_shim_region_begin(const char *tag)
{
	shimi_tag_depth++;
}

EXPORT void vkv_shim_region_end(void)
{
	if (shimi_tag_depth > 0)
		shimi_tag_depth--;
}

EXPORT int vkv_shim_query(const void *p, size_t *len)
{
	size_t l;

	/* Device regions too: a binding asks about what cuMemAlloc gave. */
	if (!owned(p, &l) && !shimi_region_lookup(p, &l, NULL))
		return 0;
	if (len)
		*len = l;
	return 1;
}
