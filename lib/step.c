/* SPDX-License-Identifier: MIT */
/*
 * step.c - one call per decode iteration, synchronous or on the worker.
 *
 * The fast path is the common one: in most steps no sequence crosses a page
 * boundary, and then a step is one comparison per sequence and no backend
 * call. vkv_step_async() moves the rest off the critical path: one
 * persistent worker thread runs the step and then backs lookahead_tokens
 * more per sequence, so that the next steps find their pages mapped. The
 * look-ahead gives way as soon as the scheduler calls again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backing.h"
#include "reclaim.h"
#include "slots.h"
#include "step.h"
#include "swapio.h"

/*
 * Check the whole batch before changing anything. Marks catch a slot given
 * twice; vkvi_reclaim_fits and vkvi_reclaim_grow re-mark with a fresh value afterwards.
 */
static int step_check(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *lens, uint32_t n, bool *grow)
{
	if (++c->tab.mark == 0)
		c->tab.mark = 1;
	*grow = false;
	for (uint32_t i = 0; i < n; i++) {
		struct vkv_slot *s;

		if (slots[i] >= c->geom.max_seqs)
			return -EINVAL;
		s = &c->tab.slots[slots[i]];
		if (s->state != SLOT_OPEN)
			return -EBADF;
		if (lens[i] > c->geom.max_tokens)
			return -E2BIG;
		if (s->mark == c->tab.mark)
			return -EINVAL;
		s->mark = c->tab.mark;
		s->want = lens[i];
		/*
		 * A swapped-out entry comes back at its saved length, whatever
		 * length it is given: room to check even at length 0.
		 */
		if (lens[i] > s->cap ||
		    c->swp.sw[slots[i]].tier != VKV_TIER_DEVICE)
			*grow = true;
	}
	return 0;
}

/*
 * Wait for the swaps of the batch's sequences (a queued swap-in, or a
 * swap-out the step will undo) before the step gathers anything: the wait
 * drops the lock. Then check the batch again, marking it afresh.
 */
static int step_wait_swaps(struct vkv_cache *c, const vkv_slot_t *slots,
			   const uint32_t *lens, uint32_t n, bool *grow)
{
	bool waited = false;

	for (uint32_t i = 0; i < n; i++) {
		if (slot_busy(c, slots[i])) {
			vkvi_swapio_wait_idle(c, slots[i]);
			waited = true;
		}
	}
	return waited ? step_check(c, slots, lens, n, grow) : 0;
}

/* The step itself, lock held. */
static int step_locked(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *lens, uint32_t n)
{
	uint64_t t0 = vkv_now_ns();
	bool grow;
	int ret;

	vkvi_assert_held(&c->gate);
	if (c->tab.broken)
		return -EIO;
	ret = step_check(c, slots, lens, n, &grow);
	if (!ret)
		ret = step_wait_swaps(c, slots, lens, n, &grow);
	if (ret)
		return ret;
	/*
	 * All or nothing, swap-ins and evictions included: the whole batch is
	 * checked, as vkv_step_fits() checks it, before any of it is done.
	 */
	if (grow &&
	    !vkvi_reclaim_fits(c, slots, lens, n, c->swp.use_clock + 1)) {
		vkv_add(&c->cnt.enomem, 1);
		return -ENOMEM;
	}
	/*
	 * Stamp the batch with this step's clock (eviction spares it), then
	 * bring back any of it that was swapped out, at its old addresses.
	 */
	c->swp.use_clock++;
	for (uint32_t i = 0; i < n; i++)
		c->swp.sw[slots[i]].last_use = c->swp.use_clock;
	for (uint32_t i = 0; i < n && !ret; i++) {
		if (c->swp.sw[slots[i]].tier != VKV_TIER_DEVICE) {
			ret = vkvi_reclaim_swap_in(c, slots[i]);
			grow = true;
		}
	}
	if (ret)
		return ret;
	if (grow) {
		ret = vkvi_reclaim_grow(c, slots, lens, n);
		if (ret)
			return ret;
	}
	for (uint32_t i = 0; i < n; i++)
		slot_set_len(c, &c->tab.slots[slots[i]], lens[i]);
	vkv_add(&c->cnt.steps, 1);
	vkvi_hist_add(&c->cnt.step_lat, vkv_now_ns() - t0);
	return 0;
}

/*
 * No check of @n against max_seqs here: entries are checked in order, and
 * a batch longer than max_seqs names a slot twice or one out of range,
 * which step_check() finds at that entry, after any earlier bad one.
 */
static int check_args(const struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *lens, uint32_t n)
{
	if (!c || (n && (!slots || !lens)))
		return -EINVAL;
	return 0;
}

VKV_EXPORT int vkv_step(struct vkv_cache *c, const vkv_slot_t *slots,
			const uint32_t *lens, uint32_t n)
{
	int ret = check_args(c, slots, lens, n);

	if (ret)
		return ret;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	if (c->job.pending)
		ret = -EBUSY;
	else
		ret = step_locked(c, slots, lens, n);
	vkvi_gate_leave(&c->gate);
	return ret;
}

/* What vkv_step() checks before it does anything, and nothing else. */
static int fits_locked(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *lens, uint32_t n)
{
	bool grow;
	int ret;

	if (c->job.pending)
		return -EBUSY;
	if (c->tab.broken)
		return -EIO;
	ret = step_check(c, slots, lens, n, &grow);
	if (ret)
		return ret;
	/* A swap on the worker frees or takes pages at a time of its own. */
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++)
		if (slot_busy(c, i))
			return -EBUSY;
	/* The step stamps its batch with a new clock: nobody has it yet. */
	return !grow || vkvi_reclaim_fits(c, slots, lens, n,
					  c->swp.use_clock + 1)
		       ? 0
		       : -ENOMEM;
}

VKV_EXPORT int vkv_step_fits(const struct vkv_cache *cc,
			     const vkv_slot_t *slots, const uint32_t *lens,
			     uint32_t n)
{
	/* The lock orders this after a queued step; only marks change. */
	struct vkv_cache *c = (struct vkv_cache *)cc;
	int ret = check_args(c, slots, lens, n);

	if (ret)
		return ret;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	ret = fits_locked(c, slots, lens, n);
	vkvi_gate_leave(&c->gate);
	return ret;
}

/* Someone wants in, or the cache is going away: the look-ahead stops. */
static bool lookahead_yield(struct vkv_cache *c)
{
	return vkv_load(&c->gate.entering) || c->job.stop;
}

/*
 * Back up to lookahead_tokens beyond each sequence's length. Speculation
 * must not slow the scheduler down or evict anything: pages come from the
 * pool's free list only, and the look-ahead gives way, between sequences,
 * to anyone entering the cache. It holds the lock all along, and no pages
 * across a drop of it, so whoever enters next finds every page either in
 * the pool or mapped. When the pool is short the pool worker is asked to
 * create what was missing, off everyone's path. Closed slots are never
 * reclaimed for this.
 */
static void lookahead(struct vkv_cache *c)
{
	uint32_t ahead = (uint32_t)c->cfg.lookahead_tokens;

	for (uint32_t i = 0; i < c->job.n && !lookahead_yield(c); i++) {
		vkv_slot_t slot = c->job.slots[i];
		struct vkv_slot *s = &c->tab.slots[slot];
		uint64_t want = (uint64_t)s->len + ahead;
		uint32_t target;
		size_t need;
		long got;

		if (want > c->geom.max_tokens)
			want = c->geom.max_tokens;
		target = (uint32_t)want;
		if (s->state != SLOT_OPEN || target <= s->cap ||
		    slot_busy(c, slot) ||
		    c->swp.sw[slot].tier != VKV_TIER_DEVICE)
			continue;
		need = vkvi_backing_need(c, slot, target);
		got = vkvi_pool_take(&c->pool, c->job.la_pages, need, false);
		if (got < (long)need) {
			if (got > 0)
				vkvi_pool_put(&c->pool, c->job.la_pages,
					      (size_t)got);
			/* Have the pool worker create them for next time. */
			vkvi_pool_want(&c->pool, need);
			break;
		}
		if (vkvi_backing_map(c, &slot, &target, 1, c->job.la_pages,
				     need))
			break;
	}
}

/* Calls of the scheduler's wait at the gate while the required part runs. */
static void set_phase(struct vkv_cache *c, enum job_phase phase)
{
	c->job.phase = phase;
	c->gate.hold_calls = phase == JOB_QUEUED;
}

static void *step_worker(void *arg)
{
	struct vkv_cache *c = arg;

	vkvi_gate_enter(&c->gate, ENTER_STEP);
	for (;;) {
		while (c->job.phase != JOB_QUEUED && !c->job.stop)
			vkvi_gate_wait(&c->gate, &c->gate.cond);
		if (c->job.stop)
			break;
		/* In through the one entry, like every other thread. */
		vkvi_gate_leave(&c->gate);
		vkvi_gate_enter(&c->gate, ENTER_STEP);
		c->job.result =
			step_locked(c, c->job.slots, c->job.lens, c->job.n);
		set_phase(c, JOB_LOOKAHEAD);
		pthread_cond_broadcast(&c->gate.cond);
		if (!c->job.result && c->cfg.lookahead_tokens)
			lookahead(c);
		set_phase(c, JOB_IDLE);
		pthread_cond_broadcast(&c->gate.cond);
	}
	vkvi_gate_leave(&c->gate);
	return NULL;
}

VKV_EXPORT int vkv_step_async(struct vkv_cache *c, const vkv_slot_t *slots,
			      const uint32_t *lens, uint32_t n)
{
	int ret = check_args(c, slots, lens, n);

	if (ret)
		return ret;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	if (c->job.pending) {
		ret = -EBUSY;
		goto out;
	}
	/* Argument errors now, not at wait; the cache is not changed by it. */
	{
		bool grow;

		ret = c->tab.broken ? -EIO
				    : step_check(c, slots, lens, n, &grow);
		if (ret)
			goto out;
	}
	if (!c->job.slots) {
		c->job.slots = malloc(c->geom.max_seqs * sizeof(uint32_t));
		c->job.lens = malloc(c->geom.max_seqs * sizeof(uint32_t));
		c->job.la_pages =
			malloc((size_t)c->lay.seg_pages * c->lay.ntensors *
			       sizeof(vkv_handle_t));
		if (!c->job.slots || !c->job.lens || !c->job.la_pages) {
			free(c->job.slots);
			free(c->job.lens);
			free(c->job.la_pages);
			c->job.slots = c->job.lens = NULL;
			c->job.la_pages = NULL;
			ret = -ENOMEM;
			goto out;
		}
	}
	if (!c->job.started) {
		ret = -pthread_create(&c->job.thread, NULL, step_worker, c);
		if (ret)
			goto out;
		c->job.started = true;
	}
	if (n) {
		memcpy(c->job.slots, slots, n * sizeof(uint32_t));
		memcpy(c->job.lens, lens, n * sizeof(uint32_t));
	}
	c->job.n = n;
	c->job.pending = true;
	for (uint32_t i = 0; i < n; i++)
		c->tab.slots[slots[i]].queued = true;
	set_phase(c, JOB_QUEUED);
	pthread_cond_broadcast(&c->gate.cond);
out:
	vkvi_gate_leave(&c->gate);
	return ret;
}

VKV_EXPORT int vkv_step_wait(struct vkv_cache *c)
{
	int ret;

	if (!c)
		return -EINVAL;
	/* Entering orders this after the step and cuts its look-ahead. */
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	if (!c->job.pending) {
		ret = -EINVAL;
	} else {
		c->job.pending = false;
		for (uint32_t i = 0; i < c->job.n; i++)
			c->tab.slots[c->job.slots[i]].queued = false;
		ret = c->job.result;
	}
	vkvi_gate_leave(&c->gate);
	return ret;
}

void vkvi_step_worker_stop(struct vkv_cache *c)
{
	if (!c->job.started)
		return;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	c->job.stop = true;
	pthread_cond_broadcast(&c->gate.cond);
	vkvi_gate_leave(&c->gate);
	pthread_join(c->job.thread, NULL);
	c->job.started = false;
}
