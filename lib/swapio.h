/* SPDX-License-Identifier: MIT */
/*
 * swapio.h - a sequence's data between its pages and the tiers (swapio.c).
 * Every function here wants gate.lock held on entry, and returns with it.
 */
#ifndef VKV_SWAPIO_H
#define VKV_SWAPIO_H

#include "cache.h"

/* Is there a disk tier, the library's swap file or the module's? */
static inline bool swapio_has_disk(const struct vkv_cache *c)
{
	return c->tiers.disk || c->tiers.kdisk;
}

/*
 * Save @slot's data to @tier and give its pages back to the pool. With
 * @unlocked the copy runs with the lock dropped (the slot must be busy).
 * On failure the sequence is still in the cache, untouched.
 */
int vkvi_swapio_out(struct vkv_cache *c, vkv_slot_t slot, enum vkv_tier tier,
		    bool unlocked);

/*
 * Copy a swapped-out sequence back into the pages already mapped for it at
 * its saved length, and release its saved copy. With @unlocked as above.
 * On failure the pages are given back and the sequence stays swapped out.
 */
int vkvi_swapio_in_copy(struct vkv_cache *c, vkv_slot_t slot, bool unlocked);

/* Release what a swapped sequence holds in its tier (also at destroy). */
void vkvi_swapio_drop(struct vkv_cache *c, vkv_slot_t slot);

/*
 * Wait while @slot is being swapped; the lock is dropped while waiting:
 * call it before gathering anything.
 */
void vkvi_swapio_wait_idle(struct vkv_cache *c, vkv_slot_t slot);

/* Give up what a closing slot holds in the tiers. */
void vkvi_swapio_forget(struct vkv_cache *c, vkv_slot_t slot);

#endif /* VKV_SWAPIO_H */
