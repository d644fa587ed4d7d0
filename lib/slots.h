/* SPDX-License-Identifier: MIT */
/*
 * slots.h - the slot table's bookkeeping: which closed slots hold pages
 * (an LRU list) and which do not (a stack), and what a slot's state says
 * about whether its pages may be touched. All with gate.lock held.
 */
#ifndef VKV_SLOTS_H
#define VKV_SLOTS_H

#include "cache.h"

int vkvi_slots_init(struct vkv_cache *c);
void vkvi_slots_fini(struct vkv_cache *c);

/*
 * A closed slot for a new sequence, the most recently closed one with pages
 * first (their counters move from cached to open); -ENOSPC if none.
 */
int vkvi_slot_take(struct vkv_cache *c);
/* File a slot just closed: on the LRU if it holds pages, else the stack. */
void vkvi_slot_park(struct vkv_cache *c, vkv_slot_t slot);

/* The two lists, for reclaim moving a slot it emptied from one to the other. */
void vkvi_lru_remove(struct vkv_cache *c, vkv_slot_t slot);
void vkvi_empty_push(struct vkv_cache *c, vkv_slot_t slot);

/* Set an open slot's length, keeping the live and needed counters. */
static inline void slot_set_len(struct vkv_cache *c, struct vkv_slot *s,
				uint32_t len)
{
	uint64_t was = pages_for(c, s->len), now = pages_for(c, len);

	if (len >= s->len)
		vkv_add(&c->cnt.live_tokens, len - s->len);
	else
		vkv_sub(&c->cnt.live_tokens, s->len - len);
	if (now >= was)
		vkv_add(&c->cnt.pages_needed, (now - was) * c->lay.ntensors);
	else
		vkv_sub(&c->cnt.pages_needed, (was - now) * c->lay.ntensors);
	s->len = len;
}

static inline bool slot_busy(const struct vkv_cache *c, vkv_slot_t slot)
{
	return c->swp.sw[slot].busy;
}

/*
 * An open sequence outside the request being served and not being swapped:
 * what it holds beyond its length may be reclaimed for the request.
 */
static inline bool slot_spare(const struct vkv_cache *c, vkv_slot_t slot)
{
	const struct vkv_slot *s = &c->tab.slots[slot];

	return s->state == SLOT_OPEN && !slot_busy(c, slot) &&
	       s->mark != c->tab.mark;
}

#endif /* VKV_SLOTS_H */
