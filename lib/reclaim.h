/* SPDX-License-Identifier: MIT */
/*
 * reclaim.h - finding pages for a request, and backing it (reclaim.c).
 * gate.lock held throughout.
 */
#ifndef VKV_RECLAIM_H
#define VKV_RECLAIM_H

#include "cache.h"

/*
 * Mark the request (@slots[0..n) to @tokens[i]) and say whether all of it
 * can be backed, swapped-out members at least at their saved length, with
 * eviction sparing sequences stepped at @clock: the check of a whole step
 * or reserve, swap-ins included, before any of it is done. Answers
 * vkv_step_fits() too.
 */
bool vkvi_reclaim_fits(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *tokens, uint32_t n, uint64_t clock);

/*
 * Mark the request and back @slots[0..n) up to @tokens[i] tokens each. All
 * or nothing. Pages come from the pool, new ones within the budget, then
 * closed slots (coldest first), then the unused tail of open slots not in
 * the request, then (per the policy) evictions.
 */
int vkvi_reclaim_grow(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *tokens, uint32_t n);

/*
 * Bring @slot back if it is swapped out: pages for its saved length,
 * gathered as for the request vkvi_reclaim_fits() marked last (so the
 * request's other members keep theirs), mapped, then the data copied in.
 */
int vkvi_reclaim_swap_in(struct vkv_cache *c, vkv_slot_t slot);

#endif /* VKV_RECLAIM_H */
