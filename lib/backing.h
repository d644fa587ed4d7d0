/* SPDX-License-Identifier: MIT */
/*
 * backing.h - mapping pages under slots (backing.c): the mechanism only,
 * handed the pages to map; gate.lock held throughout.
 */
#ifndef VKV_BACKING_H
#define VKV_BACKING_H

#include "cache.h"

/* Pages @slot needs, over all its segments, to hold @tokens. */
size_t vkvi_backing_need(const struct vkv_cache *c, vkv_slot_t slot,
			 uint32_t tokens);

/*
 * Map @npages pages the caller took from the pool (exactly what the
 * request needs, in request order) under @slots[0..n) up to @tokens[i]
 * each; on failure nothing stays mapped and they go back to the pool.
 */
int vkvi_backing_map(struct vkv_cache *c, const vkv_slot_t *slots,
		     const uint32_t *tokens, uint32_t n,
		     const vkv_handle_t *pages, size_t npages);

/*
 * Unmap pages [keep, npages) of every segment of @slot into @out (segment
 * by segment), for the caller to reuse; all or nothing.
 */
int vkvi_backing_unmap_tail(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep,
			    vkv_handle_t *out);

/*
 * Unmap @slot's pages beyond @keep per segment and return them to the
 * pool; the pages given back, or -errno.
 */
int vkvi_backing_shrink(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep);

/* Release everything mapped, at destroy (lock not needed: no one else). */
void vkvi_backing_drop_all(struct vkv_cache *c);

#endif /* VKV_BACKING_H */
