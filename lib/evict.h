/* SPDX-License-Identifier: MIT */
/*
 * evict.h - the eviction policy (evict.c). gate.lock held throughout.
 */
#ifndef VKV_EVICT_H
#define VKV_EVICT_H

#include "cache.h"
#include "slots.h"

/* Could eviction free pages at all? */
static inline bool evict_possible(const struct vkv_cache *c)
{
	return c->cfg.evict != VKV_EVICT_NONE &&
	       (c->tiers.host || c->tiers.disk);
}

/*
 * A sequence the eviction policy may swap out whole: it holds pages, sits
 * in the cache, is outside the request, was not stepped at @clock (the
 * current step's) and is not in a queued step's batch.
 */
static inline bool slot_victim(const struct vkv_cache *c, vkv_slot_t slot,
			       uint64_t clock)
{
	return slot_spare(c, slot) && c->tab.slots[slot].npages &&
	       c->swp.sw[slot].last_use != clock &&
	       c->swp.sw[slot].tier == VKV_TIER_DEVICE &&
	       !c->tab.slots[slot].queued;
}

/*
 * Evict idle sequences per the policy until about @want pages are free;
 * only ever called within a call of the scheduler's (or the step it
 * queued), never by the swap worker. Returns the pages freed.
 */
long vkvi_evict(struct vkv_cache *c, size_t want);

/*
 * Pages (of their lengths) that vkvi_evict() would free for @want, in the
 * policy's order, stopping where it would stop: at the first victim the
 * tiers cannot take. Changes nothing.
 */
uint64_t vkvi_evict_room(struct vkv_cache *c, size_t want, uint64_t clock);

#endif /* VKV_EVICT_H */
