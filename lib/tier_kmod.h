/* SPDX-License-Identifier: MIT */
/*
 * tier_kmod.h - host-tier slabs from the kernel module: each slab is the
 * pool of its own /dev/vkv context, so it is pinned, NUMA-placed and
 * accounted by vkv.ko, and given back whole when the slab is. Internal.
 */
#ifndef VKV_TIER_KMOD_H
#define VKV_TIER_KMOD_H

#include <stddef.h>

struct vkv_kmod_slabs;

/*
 * vkv_kmod_slabs_open - check once whether /dev/vkv can be used; 0 and a
 * provider, or -ENOENT (no module), -EACCES, -EPROTO (other ABI version).
 */
int vkv_kmod_slabs_open(struct vkv_kmod_slabs **out);
void vkv_kmod_slabs_close(struct vkv_kmod_slabs *ks);

/* The host tier's slab_alloc / slab_free hooks (arg: the provider). */
int vkv_kmod_slab_alloc(void *arg, size_t len, int node, void **base);
void vkv_kmod_slab_free(void *arg, void *base, size_t len);

#endif /* VKV_TIER_KMOD_H */
