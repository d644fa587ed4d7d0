/* SPDX-License-Identifier: MIT */
/*
 * seq.c - sequences: open, close, reserve, trim.
 *
 * A closed slot keeps its pages (deferred reclamation, as in vAttention): a
 * new sequence that lands in it finds its first pages already mapped, and the
 * pool takes them back, coldest slot first, only when it runs dry. Closed
 * slots with pages sit on an LRU list; closed slots without pages on a stack.
 */
#include <errno.h>
#include <string.h>

#include "abi.h"
#include "cache.h"

void vkvi_lru_remove(struct vkv_cache *c, vkv_slot_t slot)
{
	struct vkv_slot *s = &c->slots[slot];

	if (s->prev != NO_SLOT)
		c->slots[s->prev].next = s->next;
	else
		c->lru_head = s->next;
	if (s->next != NO_SLOT)
		c->slots[s->next].prev = s->prev;
	else
		c->lru_tail = s->prev;
	s->prev = s->next = NO_SLOT;
}

void vkvi_lru_push_tail(struct vkv_cache *c, vkv_slot_t slot)
{
	struct vkv_slot *s = &c->slots[slot];

	s->prev = c->lru_tail;
	s->next = NO_SLOT;
	if (c->lru_tail != NO_SLOT)
		c->slots[c->lru_tail].next = slot;
	else
		c->lru_head = slot;
	c->lru_tail = slot;
}

void vkvi_empty_push(struct vkv_cache *c, vkv_slot_t slot)
{
	c->empty[c->nempty++] = slot;
}

static int check_open(const struct vkv_cache *c, vkv_slot_t slot)
{
	if (slot >= c->geom.max_seqs)
		return -EINVAL;
	if (c->slots[slot].state != SLOT_OPEN)
		return -EBADF;
	return 0;
}

VKV_EXPORT int vkv_seq_open(struct vkv_cache *c)
{
	vkv_slot_t slot;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	if (c->broken) {
		ret = -EIO;
		goto out;
	}
	/* The most recently closed slot with pages: its memory is warm. */
	if (c->lru_tail != NO_SLOT) {
		slot = c->lru_tail;
		vkvi_lru_remove(c, slot);
		vkv_sub(&c->cnt.pages_cached,
			(uint64_t)c->slots[slot].npages * c->ntensors);
		vkv_add(&c->cnt.pages_open,
			(uint64_t)c->slots[slot].npages * c->ntensors);
	} else if (c->nempty) {
		slot = c->empty[--c->nempty];
	} else {
		ret = -ENOSPC;
		goto out;
	}
	c->slots[slot].state = SLOT_OPEN;
	c->slots[slot].len = 0;
	c->sw[slot].last_use = ++c->use_clock;
	vkv_add(&c->cnt.seqs_open, 1);
	ret = (int)slot; /* below VKV_MAX_SEQS */
out:
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_close(struct vkv_cache *c, vkv_slot_t slot)
{
	struct vkv_slot *s;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = check_open(c, slot);
	if (ret)
		goto out;
	s = &c->slots[slot];
	vkvi_swap_forget(c, slot);
	slot_set_len(c, s, 0);
	s->state = SLOT_FREE;
	vkv_sub(&c->cnt.seqs_open, 1);
	if (s->npages) {
		vkv_sub(&c->cnt.pages_open, (uint64_t)s->npages * c->ntensors);
		vkv_add(&c->cnt.pages_cached,
			(uint64_t)s->npages * c->ntensors);
		vkvi_lru_push_tail(c, slot);
	} else {
		vkvi_empty_push(c, slot);
	}
out:
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_reserve(struct vkv_cache *c, vkv_slot_t slot,
			       uint32_t ntokens)
{
	struct vkv_slot *s;
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = check_open(c, slot);
	if (ret)
		goto out;
	if (ntokens > c->geom.max_tokens) {
		ret = -E2BIG;
		goto out;
	}
	if (c->broken) {
		ret = -EIO;
		goto out;
	}
	s = &c->slots[slot];
	/* Drops the lock while it waits: before anything is gathered. */
	vkvi_swap_wait_idle(c, slot);
	c->sw[slot].last_use = ++c->use_clock;
	/* All or nothing: a swap-in and the growth after it, checked as one. */
	if ((ntokens > s->cap || c->sw[slot].tier != VKV_TIER_DEVICE) &&
	    !vkvi_backing_fits(c, &slot, &ntokens, 1, c->use_clock)) {
		vkv_add(&c->cnt.enomem, 1);
		ret = -ENOMEM;
		goto out;
	}
	ret = vkvi_swap_in_now(c, slot);
	if (ret)
		goto out;
	if (ntokens > s->cap) {
		ret = vkvi_backing_grow(c, &slot, &ntokens, 1);
		if (ret)
			goto out;
	}
	slot_set_len(c, s, ntokens);
out:
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_trim(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = check_open(c, slot);
	if (!ret && c->broken)
		ret = -EIO;
	if (!ret) {
		vkvi_swap_wait_idle(c, slot);
		if (c->sw[slot].tier != VKV_TIER_DEVICE)
			ret = 0; /* nothing mapped to trim */
		else
			ret = vkvi_backing_shrink(
				c, slot, pages_for(c, c->slots[slot].len));
	}
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int64_t vkv_seq_len(const struct vkv_cache *cc, vkv_slot_t slot)
{
	/* The lock only orders this read after a queued step; nothing changes. */
	struct vkv_cache *c = (struct vkv_cache *)cc;
	int64_t ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = check_open(c, slot);
	if (!ret)
		ret = c->slots[slot].len;
	vkvi_cache_leave(c);
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
	vkvi_cache_enter(c, ENTER_CALL);
	s = &c->slots[slot];
	memset(out, 0, sizeof(*out));
	out->open = s->state == SLOT_OPEN;
	out->len = s->len;
	out->backed = s->cap;
	out->pages = s->npages;
	out->segments = c->ntensors;
	out->tier = c->sw[slot].tier;
	out->busy = c->sw[slot].busy;
	out->priority = c->sw[slot].prio;
	vkvi_cache_leave(c);
	return 0;
}
