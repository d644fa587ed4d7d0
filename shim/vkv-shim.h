/* SPDX-License-Identifier: MIT */
/*
 * libvkv-shim.so's own functions, for a binding or an engine patch that
 * runs under LD_PRELOAD=libvkv-shim.so. Without the shim preloaded they do
 * not exist: resolve them with dlsym(RTLD_DEFAULT, ...) and treat NULL as
 * "no shim".
 */
#ifndef VKV_SHIM_PUBLIC_H
#define VKV_SHIM_PUBLIC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Until the matching vkv_shim_region_end(), on the calling thread, every
 * allocation of a page (4096 bytes) or more through malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign or an anonymous mmap
 * becomes a vkv region, whatever VKV_SHIM_MIN_BYTES says. Calls nest. tag
 * names the allocation for the reader of the code; the shim does not keep
 * it yet.
 */
void vkv_shim_region_begin(const char *tag);

/* Ends the innermost vkv_shim_region_begin() of the calling thread. */
void vkv_shim_region_end(void);

/*
 * 1 if ptr is the start of a vkv region (then *len, if len is not NULL,
 * is its usable size in bytes), else 0.
 */
int vkv_shim_query(const void *ptr, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
