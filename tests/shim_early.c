/* SPDX-License-Identifier: MIT */
/*
 * shim_early.so - preloaded after libvkv-shim.so by test_shim, it stands in
 * for a runtime whose dlsym() allocates: the shim's first call to dlsym()
 * lands here, and every allocator call made from inside it reaches the
 * shim before it knows the real allocator. They must work (the bootstrap
 * arena), and the pointers must stay usable afterwards:
 * shim_early_check() reallocates and frees them once the shim is ready.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void *(*real_dlsym)(void *, const char *);
static char *early[4];
static int calls;

int shim_early_check(void);

void *dlsym(void *handle, const char *name)
{
	if (!real_dlsym)
		*(void **)&real_dlsym =
			dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
	if (!calls++) {
		void *aligned = NULL;

		early[0] = malloc(100);
		early[1] = calloc(10, 10);
		early[2] = realloc(NULL, 50);
		if (posix_memalign(&aligned, 256, 300) == 0)
			early[3] = aligned;
		for (int i = 0; i < 4; i++)
			if (early[i])
				memset(early[i], 'a' + i, 50);
		early[2] = realloc(early[2], 2000);
		free(malloc(10));
	}
	return real_dlsym(handle, name);
}

/* 0 if the early pointers held their bytes and could be given back. */
int shim_early_check(void)
{
	int bad = calls == 0;

	for (int i = 0; i < 4; i++) {
		char *p = early[i];

		if (!p || malloc_usable_size(p) < 50) {
			bad = 1;
			continue;
		}
		if (i == 3 && (size_t)p % 256)
			bad = 1;
		p = realloc(p, 100000);
		for (int j = 0; p && j < 50; j++)
			bad |= p[j] != 'a' + i;
		bad |= !p;
		free(p);
	}
	return bad;
}
