/* SPDX-License-Identifier: MIT */
/*
 * backing.c - the mechanism of mapping: physical pages under slots, mapped
 * and unmapped at their addresses. Which pages, from where, is the policy's
 * business (reclaim.c); nothing here evicts, reclaims or chooses.
 *
 * Everything here is all or nothing: a failure anywhere unmaps what this
 * call mapped, so the slots look as they did. Undoing an unmap is a map of
 * the same handle: physical memory keeps its contents while unmapped, on
 * the GPU and on the host alike.
 */
#include <errno.h>
#include <stdlib.h>

#include "backing.h"

static int map_run(struct vkv_cache *c, vkv_slot_t slot, uint32_t seg,
		   uint32_t from, uint32_t to, const vkv_handle_t *h)
{
	const struct vkv_backend_ops *ops = c->be->ops;
	uintptr_t va = seg_va(c, slot, seg, from);
	size_t len = (size_t)(to - from) * c->lay.page_size;
	uint64_t t0 = vkv_now_ns(), per;
	uint32_t p;
	int ret = 0;

	for (p = from; p < to; p++) {
		ret = ops->map(c->be, seg_va(c, slot, seg, p), c->lay.page_size,
			       h[p - from]);
		if (ret)
			break;
	}
	if (!ret)
		ret = ops->set_access(c->be, va, len);
	if (ret) {
		/* Nothing was touched yet: unmapping loses no data. */
		if (p > from &&
		    ops->unmap(c->be, va,
			       (size_t)(p - from) * c->lay.page_size))
			c->tab.broken = true;
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
				    (size_t)(to - from) * c->lay.page_size);

	if (!ret)
		vkv_add(&c->cnt.unmap_calls, to - from);
	return ret;
}

/*
 * Unmap pages [keep, npages) of every segment of @slot into @out, segment
 * by segment. If a segment refuses, remap the ones already done: the
 * handles still hold their data, so the slot is back as it was.
 */
int vkvi_backing_unmap_tail(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep,
			    vkv_handle_t *out)
{
	struct vkv_slot *s = &c->tab.slots[slot];
	uint32_t n = s->npages - keep;
	int ret = 0;
	uint32_t seg;

	vkvi_assert_held(&c->gate);
	for (seg = 0; seg < c->lay.ntensors; seg++) {
		ret = unmap_run(c, slot, seg, keep, s->npages);
		if (ret)
			break;
	}
	if (ret) {
		while (seg-- > 0) {
			if (map_run(c, slot, seg, keep, s->npages,
				    seg_handles(c, slot, seg) + keep))
				c->tab.broken = true;
		}
		return ret;
	}
	for (seg = 0; seg < c->lay.ntensors; seg++) {
		const vkv_handle_t *h = seg_handles(c, slot, seg) + keep;

		for (uint32_t i = 0; i < n; i++)
			out[seg * n + i] = h[i];
	}
	if (s->state == SLOT_OPEN)
		vkv_sub(&c->cnt.pages_open, (uint64_t)n * c->lay.ntensors);
	else
		vkv_sub(&c->cnt.pages_cached, (uint64_t)n * c->lay.ntensors);
	s->npages = keep;
	s->cap = tokens_in(c, keep);
	return 0;
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

	vkvi_assert_held(&c->gate);
	for (i = 0; i < n; i++) {
		struct vkv_slot *s = &c->tab.slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		if (want <= s->npages)
			continue;
		for (seg = 0; seg < c->lay.ntensors; seg++) {
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
		struct vkv_slot *s = &c->tab.slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		if (want <= s->npages)
			continue;
		for (seg = 0; seg < c->lay.ntensors; seg++) {
			vkv_handle_t *h = seg_handles(c, slots[i], seg);

			for (uint32_t p = s->npages; p < want; p++)
				h[p] = pages[used++];
		}
		vkv_add(&c->cnt.pages_open,
			(uint64_t)(want - s->npages) * c->lay.ntensors);
		s->npages = want;
		s->cap = tokens_in(c, want);
	}
	return 0;

unwind:
	/* Unmap, in reverse, every run this call mapped before the failure. */
	while (1) {
		struct vkv_slot *s = &c->tab.slots[slots[i]];
		uint32_t want = pages_for(c, tokens[i]);

		while (want > s->npages && seg-- > 0) {
			if (unmap_run(c, slots[i], seg, s->npages, want))
				c->tab.broken = true;
		}
		if (i-- == 0)
			break;
		seg = c->lay.ntensors;
	}
	vkvi_pool_put(&c->pool, pages, npages);
	return ret;
}

size_t vkvi_backing_need(const struct vkv_cache *c, vkv_slot_t slot,
			 uint32_t tokens)
{
	uint32_t want = pages_for(c, tokens), have = c->tab.slots[slot].npages;

	return want > have ? (size_t)(want - have) * c->lay.ntensors : 0;
}

int vkvi_backing_shrink(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep)
{
	struct vkv_slot *s = &c->tab.slots[slot];
	size_t n;
	int ret;

	vkvi_assert_held(&c->gate);
	if (s->npages <= keep)
		return 0;
	/* A leaf, lock held throughout: shrink_buf is free; see cache.h. */
	n = (size_t)(s->npages - keep) * c->lay.ntensors;
	ret = vkvi_backing_unmap_tail(c, slot, keep, c->tab.shrink_buf);
	if (ret)
		return ret;
	vkvi_pool_put(&c->pool, c->tab.shrink_buf, n);
	return (int)n;
}

void vkvi_backing_drop_all(struct vkv_cache *c)
{
	/*
	 * Unmapped pages go to the pool, which releases them at its end. The
	 * workers are gone by now; the lock is taken for the rule's sake.
	 */
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		struct vkv_slot *s = &c->tab.slots[i];

		if (s->npages)
			vkvi_backing_shrink(c, i, 0);
	}
	vkvi_gate_leave(&c->gate);
}
