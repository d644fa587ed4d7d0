/* SPDX-License-Identifier: MIT */
/*
 * tier_kmod.h - host-tier slabs from the kernel module: each slab is the
 * pool of its own /dev/vkv context, so it is pinned, NUMA-placed and
 * accounted by vkv.ko, and given back whole when the slab is. Internal.
 *
 * With a swap file, every slab's context registers it as its backing file,
 * each at its own region, and the module is the host tier's backing store
 * (page_out/page_in/discard of struct vkv_host_tier_ops): the kernel writes
 * chunks to the file with their CRC32C, frees their memory, and faults them
 * back in on access. Its shrinker may also page out chunks that nobody has
 * pinned, under system memory pressure.
 */
#ifndef VKV_TIER_KMOD_H
#define VKV_TIER_KMOD_H

#include <stdbool.h>
#include <stddef.h>

struct vkv_kmod_slabs;

/*
 * vkvi_kmod_slabs_open - check once whether /dev/vkv can be used; 0 and a
 * provider of slabs for a host tier of @chunk-byte chunks (the module's
 * chunk is the largest power of two dividing it, at most 2 MiB).
 * -ENOENT (no module), -EACCES, -EPROTO (other ABI version), -EINVAL (a
 * chunk the module cannot divide).
 */
int vkvi_kmod_slabs_open(size_t chunk, struct vkv_kmod_slabs **out);

/*
 * vkvi_kmod_slabs_set_swap - make @path (created 0600 if missing) the backing
 * file of every slab to come. Before the first slab; the error of open(2).
 */
int vkvi_kmod_slabs_set_swap(struct vkv_kmod_slabs *ks, const char *path);
void vkvi_kmod_slabs_close(struct vkv_kmod_slabs *ks);

/* Has a backing file: the host tier may use the page hooks below. */
bool vkvi_kmod_slabs_backed(const struct vkv_kmod_slabs *ks);

/* The host tier's slab_alloc / slab_free hooks (arg: the provider). */
int vkvi_kmod_slab_alloc(void *arg, size_t len, int node, void **base);
void vkvi_kmod_slab_free(void *arg, void *base, size_t len);

/*
 * The host tier's page_out / page_in / discard hooks: VKV_IOC_SWAP_OUT,
 * VKV_IOC_PREFETCH and VKV_IOC_DISCARD on bytes [off, off + len) of the slab
 * at @slab. A checksum mismatch on the way in is -EIO.
 */
int vkvi_kmod_slab_page_out(void *arg, void *slab, size_t off, size_t len);
int vkvi_kmod_slab_page_in(void *arg, void *slab, size_t off, size_t len);
int vkvi_kmod_slab_discard(void *arg, void *slab, size_t off, size_t len);

#endif /* VKV_TIER_KMOD_H */
