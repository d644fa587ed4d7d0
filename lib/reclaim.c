/* SPDX-License-Identifier: MIT */
/*
 * reclaim.c - the policy that finds pages for a request: gathered (pool,
 * then new within the budget, then reclaimed from closed and open slots,
 * then by eviction), then handed to backing.c to map.
 *
 * A request is marked first (its slots carry tab.mark): reclaim never takes
 * from a marked slot what the request backs for it. Everything is checked
 * before anything is touched, so a request bound to fail creates, reclaims,
 * evicts and releases nothing; and a failure after that gives back what
 * was gathered.
 */
#include <errno.h>
#include <stdlib.h>

#include "backing.h"
#include "evict.h"
#include "reclaim.h"
#include "slots.h"
#include "swapio.h"

/* Take back pages of one slot's tail to fill @out; returns pages gained. */
static long reclaim_slot(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep,
			 size_t want, vkv_handle_t *out)
{
	struct vkv_slot *s = &c->tab.slots[slot];
	uint32_t drop =
		(uint32_t)((want + c->lay.ntensors - 1) / c->lay.ntensors);
	long got;
	int ret;

	if (s->npages <= keep)
		return 0;
	if (drop > s->npages - keep)
		drop = s->npages - keep;
	keep = s->npages - drop;
	ret = vkvi_backing_unmap_tail(c, slot, keep, out);
	if (ret)
		return ret;
	got = (long)drop * c->lay.ntensors;
	vkv_add(&c->cnt.reclaimed, (uint64_t)got);
	if (s->state == SLOT_FREE && !s->npages) {
		vkvi_lru_remove(c, slot);
		vkvi_empty_push(c, slot);
	}
	return got;
}

/*
 * Pages per segment that @slot, one of the request's own, holds beyond both
 * its length and what the request backs for it; 0 for other slots.
 */
static uint32_t own_spare(const struct vkv_cache *c, vkv_slot_t slot)
{
	const struct vkv_slot *s = &c->tab.slots[slot];
	uint32_t keep;

	if (s->state != SLOT_OPEN || slot_busy(c, slot) ||
	    s->mark != c->tab.mark)
		return 0;
	keep = pages_for(c, s->len > s->want ? s->len : s->want);
	return s->npages > keep ? s->npages - keep : 0;
}

/*
 * Gather @n pages into @out, which has room for n + ntensors - 1: reclaim
 * takes whole pages of every segment of a slot, so it may overshoot by less
 * than one slot's segment count; the surplus goes back to the pool. @out
 * belongs to the request, and nothing here drops the cache's lock.
 */
static int acquire(struct vkv_cache *c, size_t n, vkv_handle_t *out)
{
	size_t got = 0;
	long r;

	r = vkvi_pool_take(&c->pool, out, n, true);
	if (r > 0)
		got = (size_t)r;
	/* Coldest closed slots first, whole or in part. */
	while (got < n && c->tab.lru_head != NO_SLOT) {
		r = reclaim_slot(c, (uint32_t)c->tab.lru_head, 0, n - got,
				 out + got);
		if (r < 0)
			goto fail;
		got += (size_t)r;
	}
	/* Then what open slots hold beyond their length (look-ahead). */
	for (uint32_t i = 0; got < n && i < c->geom.max_seqs; i++) {
		if (!slot_spare(c, i))
			continue;
		r = reclaim_slot(c, i, pages_for(c, c->tab.slots[i].len),
				 n - got, out + got);
		if (r < 0)
			goto fail;
		got += (size_t)r;
	}
	/*
	 * Then what the request's own sequences hold beyond what it backs for
	 * them: a reopened slot inherits its predecessor's pages, and a batch
	 * must not be refused while they lie idle under one of its members.
	 */
	for (uint32_t i = 0; got < n && i < c->geom.max_seqs; i++) {
		uint32_t spare = own_spare(c, i);

		if (!spare)
			continue;
		r = reclaim_slot(c, i, c->tab.slots[i].npages - spare, n - got,
				 out + got);
		if (r < 0)
			goto fail;
		got += (size_t)r;
	}
	/* Then, if a policy is set, whole idle sequences to a lower tier. */
	if (got < n && evict_possible(c) && vkvi_evict(c, n - got) > 0) {
		r = vkvi_pool_take(&c->pool, out + got, n - got, true);
		if (r > 0)
			got += (size_t)r;
	}
	if (got >= n) {
		if (got > n)
			vkvi_pool_put(&c->pool, out + n, got - n);
		return 0;
	}
	r = -ENOMEM;
fail:
	vkvi_pool_put(&c->pool, out, got);
	return (int)r;
}

/*
 * Everything but what open slots need for their lengths, and what the
 * request's own slots hold, can be freed, created or reclaimed; with a
 * policy, idle sequences can also be swapped out whole, as far as the tiers
 * take them (vkvi_evict_room). Checked before touching anything, so that a
 * request bound to fail creates, reclaims, evicts and releases nothing.
 */
static bool room(struct vkv_cache *c, size_t need, uint64_t clock)
{
	uint64_t open, avail;

	if (need <= vkvi_pool_free(&c->pool))
		return true;
	if (c->pool.budget >= SIZE_MAX / 2)
		return true; /* no cap known: only the device can refuse */
	open = vkv_load(&c->cnt.pages_open);
	avail = c->pool.budget > open ? c->pool.budget - open : 0;
	for (vkv_slot_t i = 0; i < c->geom.max_seqs && avail < need; i++) {
		const struct vkv_slot *s = &c->tab.slots[i];
		uint32_t keep;

		avail += (uint64_t)own_spare(c, i) * c->lay.ntensors;
		/* Most slots are closed: skip them before dividing. */
		if (!slot_spare(c, i))
			continue;
		keep = pages_for(c, s->len);
		if (s->npages > keep)
			avail += (uint64_t)(s->npages - keep) * c->lay.ntensors;
	}
	if (need <= avail)
		return true;
	/*
	 * acquire() evicts only once every tail above is taken, so a victim
	 * then frees just what its length needs, which is what the plan sums.
	 */
	return evict_possible(c) &&
	       vkvi_evict_room(c, need - avail, clock) >= need - avail;
}

/* Mark the request's slots (reclaim must not take from them); its need. */
static size_t mark_request(struct vkv_cache *c, const vkv_slot_t *slots,
			   const uint32_t *tokens, uint32_t n, bool saved)
{
	size_t need = 0;

	if (++c->tab.mark == 0)
		c->tab.mark = 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = tokens[i];

		c->tab.slots[slots[i]].mark = c->tab.mark;
		c->tab.slots[slots[i]].want = t;
		/* A swapped-out sequence comes back at its saved length. */
		if (saved && c->swp.sw[slots[i]].tier != VKV_TIER_DEVICE &&
		    c->tab.slots[slots[i]].len > t)
			t = c->tab.slots[slots[i]].len;
		need += vkvi_backing_need(c, slots[i], t);
	}
	return need;
}

bool vkvi_reclaim_fits(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *tokens, uint32_t n, uint64_t clock)
{
	size_t need;

	vkvi_assert_held(&c->gate);
	need = mark_request(c, slots, tokens, n, true);
	return !need || room(c, need, clock);
}

/* Back the request already marked, which needs @need more pages. */
static int grow_marked(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *tokens, uint32_t n, size_t need)
{
	vkv_handle_t *pages;
	int ret;

	if (!need)
		return 0;
	if (!room(c, need, c->swp.use_clock)) {
		vkv_add(&c->cnt.enomem, 1);
		return -ENOMEM;
	}
	/* The request's own: never shared, so no other request can touch it. */
	pages = malloc((need + c->lay.ntensors) * sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	ret = acquire(c, need, pages);
	if (ret) {
		if (ret == -ENOMEM)
			vkv_add(&c->cnt.enomem, 1);
	} else {
		ret = vkvi_backing_map(c, slots, tokens, n, pages, need);
	}
	free(pages);
	return ret;
}

int vkvi_reclaim_grow(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *tokens, uint32_t n)
{
	vkvi_assert_held(&c->gate);
	return grow_marked(c, slots, tokens, n,
			   mark_request(c, slots, tokens, n, false));
}

/*
 * Not marked afresh: a step swaps its members in one by one, and each must
 * find the others as the batch's own, not as spare tails to reclaim for it.
 */
int vkvi_reclaim_swap_in(struct vkv_cache *c, vkv_slot_t slot)
{
	uint32_t len;
	int ret;

	vkvi_assert_held(&c->gate);
	vkvi_swapio_wait_idle(c, slot);
	if (c->swp.sw[slot].tier == VKV_TIER_DEVICE)
		return 0;
	len = c->tab.slots[slot].len;
	ret = grow_marked(c, &slot, &len, 1, vkvi_backing_need(c, slot, len));
	if (ret) {
		vkv_add(&c->cnt.swap_errors, 1);
		return ret;
	}
	return vkvi_swapio_in_copy(c, slot, false);
}
