/* SPDX-License-Identifier: MIT */
/*
 * swap.c - the swap calls (vkv_seq_swap_out/in/wait/poll, priorities) and
 * the swap worker that runs them.
 *
 * Swaps asked for by the caller run on one swap worker, which copies with
 * the cache unlocked (swapio.c): the scheduler keeps stepping other
 * sequences. The worker only copies: a swap-out's pages go back to the pool
 * once its data is saved, and a swap-in's pages were acquired and mapped by
 * the call that queued it. It never evicts.
 */
#include <errno.h>
#include <stdlib.h>

#include "backing.h"
#include "reclaim.h"
#include "slots.h"
#include "swap.h"
#include "swapio.h"
#include "tiers.h"

/* Runs the queue; see the top of this file. */
static void *swap_worker(void *arg)
{
	struct vkv_cache *c = arg;

	vkvi_gate_enter(&c->gate, ENTER_SWAP);
	for (;;) {
		uint32_t slot;
		struct swap_slot *w;

		if (!c->swp.qlen && !c->swp.stop) {
			vkvi_gate_wait(&c->gate, &c->swp.cond);
			/* Back in through the one entry, like everyone else. */
			vkvi_gate_leave(&c->gate);
			vkvi_gate_enter(&c->gate, ENTER_SWAP);
			continue;
		}
		if (c->swp.stop)
			break;
		slot = c->swp.q[c->swp.qhead];
		c->swp.qhead = (c->swp.qhead + 1) % c->geom.max_seqs;
		c->swp.qlen--;
		w = &c->swp.sw[slot];
		if (w->op == SWAP_OP_OUT)
			w->err = vkvi_swapio_out(c, slot, w->target, true);
		else
			w->err = vkvi_swapio_in_copy(c, slot, true);
		w->busy = 0;
		pthread_cond_broadcast(&c->swp.cond);
	}
	/* Whatever is still queued is cancelled. */
	while (c->swp.qlen) {
		vkv_slot_t slot = c->swp.q[c->swp.qhead];

		/* A swap-in's pages are mapped: give them back. */
		if (c->swp.sw[slot].op == SWAP_OP_IN)
			vkvi_backing_shrink(c, slot, 0);
		c->swp.sw[slot].busy = 0;
		c->swp.sw[slot].err = -ECANCELED;
		c->swp.qhead = (c->swp.qhead + 1) % c->geom.max_seqs;
		c->swp.qlen--;
	}
	pthread_cond_broadcast(&c->swp.cond);
	vkvi_gate_leave(&c->gate);
	return NULL;
}

int vkvi_swap_init(struct vkv_cache *c)
{
	c->swp.sw = calloc(c->geom.max_seqs, sizeof(*c->swp.sw));
	c->swp.q = malloc(c->geom.max_seqs * sizeof(*c->swp.q));
	if (!c->swp.sw || !c->swp.q)
		return -ENOMEM;
	return vkvi_tiers_open(c);
}

void vkvi_swap_fini(struct vkv_cache *c)
{
	if (c->swp.started) {
		vkvi_gate_enter(&c->gate, ENTER_CALL);
		c->swp.stop = true;
		pthread_cond_broadcast(&c->swp.cond);
		vkvi_gate_leave(&c->gate);
		pthread_join(c->swp.worker, NULL);
		c->swp.started = false;
	}
	if (c->swp.sw)
		for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++)
			vkvi_swapio_drop(c, i);
	vkvi_tiers_close(c);
	free(c->swp.sw);
	free(c->swp.q);
	c->swp.sw = NULL;
	c->swp.q = NULL;
}

/*
 * The part of a swap-in that runs within the call: pages for the saved
 * length at the old addresses, gathered by reclaim (which may evict others,
 * per the policy) and mapped; the counters still say "swapped" until the
 * worker's copy is done.
 */
static int swap_in_map(struct vkv_cache *c, vkv_slot_t slot)
{
	uint32_t len = c->tab.slots[slot].len;
	int ret = vkvi_reclaim_grow(c, &slot, &len, 1);

	if (ret)
		vkv_add(&c->cnt.swap_errors, 1);
	return ret;
}

/* Checks shared by the swap calls; lock held. */
static int swap_check(struct vkv_cache *c, vkv_slot_t slot)
{
	if (slot >= c->geom.max_seqs)
		return -EINVAL;
	if (c->tab.slots[slot].state != SLOT_OPEN)
		return -EBADF;
	if (c->swp.sw[slot].busy)
		return -EBUSY;
	if (c->tab.broken)
		return -EIO;
	return 0;
}

static int queue(struct vkv_cache *c, vkv_slot_t slot, int op,
		 enum vkv_tier tier)
{
	struct swap_slot *w = &c->swp.sw[slot];

	if (!c->swp.started) {
		int ret = -pthread_create(&c->swp.worker, NULL, swap_worker, c);

		if (ret)
			return ret;
		c->swp.started = true;
	}
	w->busy = 1;
	w->op = (uint8_t)op;
	w->target = (uint8_t)tier;
	w->err = 0;
	c->swp.q[(c->swp.qhead + c->swp.qlen) % c->geom.max_seqs] = slot;
	c->swp.qlen++;
	pthread_cond_broadcast(&c->swp.cond);
	return 0;
}

VKV_EXPORT int vkv_seq_swap_out(struct vkv_cache *c, vkv_slot_t slot,
				enum vkv_tier tier)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = swap_check(c, slot);
	if (!ret && tier != VKV_TIER_HOST && tier != VKV_TIER_DISK)
		ret = -EINVAL;
	if (!ret && c->swp.sw[slot].tier != VKV_TIER_DEVICE)
		ret = -EALREADY;
	if (!ret && ((tier == VKV_TIER_HOST && !c->tiers.host) ||
		     (tier == VKV_TIER_DISK && !swapio_has_disk(c))))
		ret = -ENODEV;
	if (!ret)
		ret = queue(c, slot, SWAP_OP_OUT, tier);
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_in(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = swap_check(c, slot);
	if (!ret && c->swp.sw[slot].tier == VKV_TIER_DEVICE)
		ret = -EALREADY;
	/*
	 * Pages (and any eviction for them) now, within this call. Stamped as
	 * used, like a reserve: it is wanted back, and what was stepped last
	 * is no longer the current step's, so may make room for it.
	 */
	if (!ret) {
		c->swp.sw[slot].last_use = ++c->swp.use_clock;
		ret = swap_in_map(c, slot);
	}
	if (!ret) {
		ret = queue(c, slot, SWAP_OP_IN, VKV_TIER_DEVICE);
		if (ret)
			vkvi_backing_shrink(c, slot, 0);
	}
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_wait(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c || slot >= c->geom.max_seqs)
		return -EINVAL;
	/* Entering orders this after a queued step, as every call is. */
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	vkvi_swapio_wait_idle(c, slot);
	ret = c->swp.sw[slot].err;
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_poll(const struct vkv_cache *cc, vkv_slot_t slot)
{
	struct vkv_cache *c = (struct vkv_cache *)cc;
	int ret;

	if (!c || slot >= c->geom.max_seqs)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = c->swp.sw[slot].busy ? 1 : c->swp.sw[slot].err;
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_seq_set_priority(struct vkv_cache *c, vkv_slot_t slot,
				    int32_t prio)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = slot >= c->geom.max_seqs		      ? -EINVAL
	      : c->tab.slots[slot].state != SLOT_OPEN ? -EBADF
						      : 0;
	if (!ret)
		c->swp.sw[slot].prio = prio;
	vkvi_gate_leave(&c->gate);
	return ret;
}
