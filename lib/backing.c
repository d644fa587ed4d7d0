/* SPDX-License-Identifier: MIT */
/*
 * backing.c - physical pages under sequences: acquire, map, unmap, reclaim.
 *
 * Everything here is all or nothing. Pages are first gathered (pool, then
 * new within the budget, then reclaimed), then mapped; a failure anywhere
 * unmaps what this call mapped and returns the pages, so the slots look as
 * they did. Undoing an unmap is a map of the same handle: physical memory
 * keeps its contents while unmapped, on the GPU and on the host alike.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "cache.h"

static int map_run(struct vkv_cache *c, vkv_slot_t slot, uint32_t seg,
		   uint32_t from, uint32_t to, const vkv_handle_t *h)
{
	const struct vkv_backend_ops *ops = c->be->ops;
	uintptr_t va = seg_va(c, slot, seg, from);
	size_t len = (size_t)(to - from) * c->page_size;
	uint64_t t0 = vkv_now_ns(), per;
	uint32_t p;
	int ret = 0;

	for (p = from; p < to; p++) {
		ret = ops->map(c->be, seg_va(c, slot, seg, p), c->page_size,
			       h[p - from]);
		if (ret)
			break;
	}
	if (!ret)
		ret = ops->set_access(c->be, va, len);
	if (ret) {
		/* Nothing was touched yet: unmapping loses no data. */
		if (p > from &&
		    ops->unmap(c->be, va, (size_t)(p - from) * c->page_size))
			c->broken = true;
		return ret;
	}
	per = (vkv_now_ns() - t0) / (to - from);
	for (p = from; p < to; p++)
		vkvi_hist_add(&c->cnt.map_lat, per);
	vkv_add(&c->cnt.map_calls, to - from);
	return 0;
}

static int unmap_run(struct vkv_cache *c, vkv_slot_t slot, uint32_t seg,
		     uint32_t from, uint32_t to)
{
	int ret = c->be->ops->unmap(c->be, seg_va(c, slot, seg, from),
				    (size_t)(to - from) * c->page_size);

	if (!ret)
		vkv_add(&c->cnt.unmap_calls, to - from);
	return ret;
}

/*
 * Unmap pages [keep, npages) of every segment of @slot into @out, segment
 * by segment. If a segment refuses, remap the ones already done: the
 * handles still hold their data, so the slot is back as it was.
 */
static int unmap_tail(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep,
		      vkv_handle_t *out)
{
	struct vkv_slot *s = &c->slots[slot];
	uint32_t n = s->npages - keep;
	int ret = 0;
	uint32_t seg;

	for (seg = 0; seg < c->ntensors; seg++) {
		ret = unmap_run(c, slot, seg, keep, s->npages);
		if (ret)
			break;
	}
	if (ret) {
		while (seg-- > 0) {
			if (map_run(c, slot, seg, keep, s->npages,
				    seg_handles(c, slot, seg) + keep))
				c->broken = true;
		}
		return ret;
	}
	for (seg = 0; seg < c->ntensors; seg++) {
		const vkv_handle_t *h = seg_handles(c, slot, seg) + keep;

		for (uint32_t i = 0; i < n; i++)
			out[seg * n + i] = h[i];
	}
	if (s->state == SLOT_OPEN)
		vkv_sub(&c->cnt.pages_open, (uint64_t)n * c->ntensors);
	else
		vkv_sub(&c->cnt.pages_cached, (uint64_t)n * c->ntensors);
	s->npages = keep;
	s->cap = tokens_in(c, keep);
	return 0;
}

/* Take back pages of one slot's tail to fill @out; returns pages gained. */
static long reclaim_slot(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep,
			 size_t want, vkv_handle_t *out)
{
	struct vkv_slot *s = &c->slots[slot];
	uint32_t drop = (uint32_t)((want + c->ntensors - 1) / c->ntensors);
	long got;
	int ret;

	if (s->npages <= keep)
		return 0;
	if (drop > s->npages - keep)
		drop = s->npages - keep;
	keep = s->npages - drop;
	ret = unmap_tail(c, slot, keep, out);
	if (ret)
		return ret;
	got = (long)drop * c->ntensors;
	vkv_add(&c->cnt.reclaimed, (uint64_t)got);
	if (s->state == SLOT_FREE && !s->npages) {
		vkvi_lru_remove(c, slot);
		vkvi_empty_push(c, slot);
	}
	return got;
}

/*
 * Pages per segment that @slot, one of the request's own (or of the step
 * whose swap-ins run as requests of their own: batch_mark), holds beyond
 * both its length and what the request backs for it; 0 for other slots.
 */
static uint32_t own_spare(const struct vkv_cache *c, vkv_slot_t slot)
{
	const struct vkv_slot *s = &c->slots[slot];
	uint32_t keep;

	if (s->state != SLOT_OPEN || slot_busy(c, slot) ||
	    (s->mark != c->mark &&
	     (!c->batch_mark || s->mark != c->batch_mark)))
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
	while (got < n && c->lru_head != NO_SLOT) {
		r = reclaim_slot(c, c->lru_head, 0, n - got, out + got);
		if (r < 0)
			goto fail;
		got += (size_t)r;
	}
	/* Then what open slots hold beyond their length (look-ahead). */
	for (uint32_t i = 0; got < n && i < c->geom.max_seqs; i++) {
		if (!slot_spare(c, i))
			continue;
		r = reclaim_slot(c, i, pages_for(c, c->slots[i].len), n - got,
				 out + got);
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
		r = reclaim_slot(c, i, c->slots[i].npages - spare, n - got,
				 out + got);
		if (r < 0)
			goto fail;
		got += (size_t)r;
	}
	/* Then, if a policy is set, whole idle sequences to a lower tier. */
	if (got < n && swap_can_evict(c) && vkvi_swap_evict(c, n - got) > 0) {
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
 * Map @pages (exactly what the request needs, in request order) under the
 * slots. All or nothing: on failure nothing stays mapped and the pages go
 * back to the pool.
 */
int vkvi_backing_map(struct vkv_cache *c, const vkv_slot_t *slots,
		     const uint32_t *tokens, uint32_t n,
		     const vkv_handle_t *pages, size_t npages)
{
	size_t used = 0;
	uint32_t i, seg = 0;
	int ret = 0;

	for (i = 0; i < n; i++) {
		struct vkv_slot *s = &c->slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		if (want <= s->npages)
			continue;
		for (seg = 0; seg < c->ntensors; seg++) {
			ret = map_run(c, slots[i], seg, s->npages, want,
				      pages + used);
			if (ret)
				goto unwind;
			used += want - s->npages;
		}
	}
	/* Everything mapped: commit. */
	used = 0;
	for (i = 0; i < n; i++) {
		struct vkv_slot *s = &c->slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		if (want <= s->npages)
			continue;
		for (seg = 0; seg < c->ntensors; seg++) {
			vkv_handle_t *h = seg_handles(c, slots[i], seg);

			for (uint32_t p = s->npages; p < want; p++)
				h[p] = pages[used++];
		}
		vkv_add(&c->cnt.pages_open,
			(uint64_t)(want - s->npages) * c->ntensors);
		s->npages = want;
		s->cap = tokens_in(c, want);
	}
	return 0;

unwind:
	/* Unmap, in reverse, every run this call mapped before the failure. */
	while (1) {
		struct vkv_slot *s = &c->slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		while (want > s->npages && seg-- > 0) {
			if (unmap_run(c, slots[i], seg, s->npages, want))
				c->broken = true;
		}
		if (i-- == 0)
			break;
		seg = c->ntensors;
	}
	vkvi_pool_put(&c->pool, pages, npages);
	return ret;
}

size_t vkvi_backing_need(const struct vkv_cache *c, vkv_slot_t slot,
			 uint32_t tokens)
{
	uint32_t want = pages_for(c, tokens), have = c->slots[slot].npages;

	return want > have ? (size_t)(want - have) * c->ntensors : 0;
}

/*
 * Everything but what open slots need for their lengths, and what the
 * request's own slots hold, can be freed, created or reclaimed; with a
 * policy, idle sequences can also be swapped out whole, as far as the tiers
 * take them (vkvi_swap_evict_room). Checked before touching anything, so that a
 * request bound to fail creates, reclaims, evicts and releases nothing.
 */
bool vkvi_backing_room(struct vkv_cache *c, size_t need, uint64_t clock)
{
	uint64_t open, avail;

	if (need <= vkvi_pool_free(&c->pool))
		return true;
	if (c->pool.budget >= SIZE_MAX / 2)
		return true; /* no cap known: only the device can refuse */
	open = vkv_load(&c->cnt.pages_open);
	avail = c->pool.budget > open ? c->pool.budget - open : 0;
	for (vkv_slot_t i = 0; i < c->geom.max_seqs && avail < need; i++) {
		const struct vkv_slot *s = &c->slots[i];
		uint32_t keep;

		avail += (uint64_t)own_spare(c, i) * c->ntensors;
		/* Most slots are closed: skip them before dividing. */
		if (!slot_spare(c, i))
			continue;
		keep = pages_for(c, s->len);
		if (s->npages > keep)
			avail += (uint64_t)(s->npages - keep) * c->ntensors;
	}
	if (need <= avail)
		return true;
	/*
	 * acquire() evicts only once every tail above is taken, so a victim
	 * then frees just what its length needs, which is what the plan sums.
	 */
	return swap_can_evict(c) &&
	       vkvi_swap_evict_room(c, need - avail, clock) >= need - avail;
}

/* Mark the request's slots (reclaim must not take from them); its need. */
static size_t mark_request(struct vkv_cache *c, const vkv_slot_t *slots,
			   const uint32_t *tokens, uint32_t n, bool saved)
{
	size_t need = 0;

	if (++c->mark == 0)
		c->mark = 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = tokens[i];

		c->slots[slots[i]].mark = c->mark;
		c->slots[slots[i]].want = t;
		/* A swapped-out sequence comes back at its saved length. */
		if (saved && c->sw[slots[i]].tier != VKV_TIER_DEVICE &&
		    c->slots[slots[i]].len > t)
			t = c->slots[slots[i]].len;
		need += vkvi_backing_need(c, slots[i], t);
	}
	return need;
}

bool vkvi_backing_fits(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *tokens, uint32_t n, uint64_t clock)
{
	size_t need = mark_request(c, slots, tokens, n, true);

	return !need || vkvi_backing_room(c, need, clock);
}

int vkvi_backing_grow(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *tokens, uint32_t n)
{
	size_t need = mark_request(c, slots, tokens, n, false);
	vkv_handle_t *pages;
	int ret;

	if (!need)
		return 0;
	if (!vkvi_backing_room(c, need, c->use_clock)) {
		vkv_add(&c->cnt.enomem, 1);
		return -ENOMEM;
	}
	/* The request's own: never shared, so no other request can touch it. */
	pages = malloc((need + c->ntensors) * sizeof(*pages));
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

int vkvi_backing_shrink(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep)
{
	struct vkv_slot *s = &c->slots[slot];
	size_t n;
	int ret;

	if (s->npages <= keep)
		return 0;
	/* Lock held throughout: nothing else uses shrink_buf meanwhile. */
	n = (size_t)(s->npages - keep) * c->ntensors;
	ret = unmap_tail(c, slot, keep, c->shrink_buf);
	if (ret)
		return ret;
	vkvi_pool_put(&c->pool, c->shrink_buf, n);
	return (int)n;
}

void vkvi_backing_drop_all(struct vkv_cache *c)
{
	/* Unmapped pages go to the pool, which releases them at its end. */
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		struct vkv_slot *s = &c->slots[i];

		if (s->npages)
			vkvi_backing_shrink(c, i, 0);
	}
}
