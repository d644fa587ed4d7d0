/* SPDX-License-Identifier: MIT */
/*
 * seq.c - sequences: open, close, reserve, trim, and what they report.
 *
 * A closed slot keeps its pages (deferred reclamation, see slots.c): open
 * takes the most recently closed slot with pages first, its memory warm.
 */
#include <errno.h>
#include <string.h>

#include "abi.h"
#include "backing.h"
#include "reclaim.h"
#include "slots.h"
#include "swapio.h"

static int check_open(const struct vkv_cache *c, vkv_slot_t slot)
{
	if (slot >= c->geom.max_seqs)
		return -EINVAL;
	if (c->tab.slots[slot].state != SLOT_OPEN)
		return -EBADF;
	return 0;
}

VKV_EXPORT int vkv_seq_open(struct vkv_cache *c)
{
	int slot;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	if (c->tab.broken) {
		ret = -EIO;
		goto out;
	}
	slot = vkvi_slot_take(c);
	if (slot < 0) {
		ret = slot;
		goto out;
	}
	c->tab.slots[slot].state = SLOT_OPEN;
	c->tab.slots[slot].len = 0;
	c->swp.sw[slot].last_use = ++c->swp.use_clock;
	vkv_add(&c->cnt.seqs_open, 1);
	ret = slot;
out:
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_close(struct vkv_cache *c, vkv_slot_t slot)
{
	struct vkv_slot *s;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = check_open(c, slot);
	if (ret)
		goto out;
	s = &c->tab.slots[slot];
	vkvi_swapio_forget(c, slot);
	slot_set_len(c, s, 0);
	s->state = SLOT_FREE;
	vkv_sub(&c->cnt.seqs_open, 1);
	vkvi_slot_park(c, slot);
out:
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_reserve(struct vkv_cache *c, vkv_slot_t slot,
			       uint32_t ntokens)
{
	struct vkv_slot *s;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = check_open(c, slot);
	if (ret)
		goto out;
	if (ntokens > c->geom.max_tokens) {
		ret = -E2BIG;
		goto out;
	}
	if (c->tab.broken) {
		ret = -EIO;
		goto out;
	}
	s = &c->tab.slots[slot];
	/* Drops the lock while it waits: before anything is gathered. */
	vkvi_swapio_wait_idle(c, slot);
	c->swp.sw[slot].last_use = ++c->swp.use_clock;
	/* All or nothing: a swap-in and the growth after it, checked as one. */
	if ((ntokens > s->cap || c->swp.sw[slot].tier != VKV_TIER_DEVICE) &&
	    !vkvi_reclaim_fits(c, &slot, &ntokens, 1, c->swp.use_clock)) {
		vkv_add(&c->cnt.enomem, 1);
		ret = -ENOMEM;
		goto out;
	}
	ret = vkvi_reclaim_swap_in(c, slot);
	if (ret)
		goto out;
	if (ntokens > s->cap) {
		ret = vkvi_reclaim_grow(c, &slot, &ntokens, 1);
		if (ret)
			goto out;
	}
	slot_set_len(c, s, ntokens);
out:
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_trim(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = check_open(c, slot);
	if (!ret && c->tab.broken)
		ret = -EIO;
	if (!ret) {
		vkvi_swapio_wait_idle(c, slot);
		if (c->swp.sw[slot].tier != VKV_TIER_DEVICE)
			ret = 0; /* nothing mapped to trim */
		else
			ret = vkvi_backing_shrink(
				c, slot, pages_for(c, c->tab.slots[slot].len));
	}
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int64_t vkv_seq_len(const struct vkv_cache *cc, vkv_slot_t slot)
{
	/* The lock only orders this read after a queued step; nothing changes. */
	struct vkv_cache *c = (struct vkv_cache *)cc;
	int64_t ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = check_open(c, slot);
	if (!ret)
		ret = c->tab.slots[slot].len;
	vkvi_gate_leave(&c->gate);
	return ret;
}

/* The default version; see abi.h. */
__asm__(".symver vkvi_seq_info_v04, vkv_seq_info@@VKV_0.4");

VKV_EXPORT int vkvi_seq_info_v04(const struct vkv_cache *cc, vkv_slot_t slot,
				 struct vkv_seq_info *out)
{
	struct vkv_cache *c = (struct vkv_cache *)cc;
	const struct vkv_slot *s;

	if (!c || !out || slot >= c->geom.max_seqs)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	s = &c->tab.slots[slot];
	memset(out, 0, sizeof(*out));
	out->open = s->state == SLOT_OPEN;
	out->len = s->len;
	out->backed = s->cap;
	out->pages = s->npages;
	out->segments = c->lay.ntensors;
	out->tier = c->swp.sw[slot].tier;
	out->busy = c->swp.sw[slot].busy;
	out->priority = c->swp.sw[slot].prio;
	vkvi_gate_leave(&c->gate);
	return 0;
}
