/* SPDX-License-Identifier: MIT */
/*
 * bench_shim_bare.so - the least an LD_PRELOAD interposer of malloc and free
 * can cost: each only jumps to glibc's, through a pointer as the shim does.
 * bench_shim times it beside libvkv-shim.so, so that the shim's overhead
 * can be told from the cost of being interposed at all.
 */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

void *malloc(size_t size);
void free(void *p);

static void *(*volatile real_malloc)(size_t) = __libc_malloc;
static void (*volatile real_free)(void *) = __libc_free;

__attribute__((visibility("default"))) void *malloc(size_t size)
{
	return real_malloc(size);
}

__attribute__((visibility("default"))) void free(void *p)
{
	real_free(p);
}
