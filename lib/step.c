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

#include "cache.h"

void vkvi_cache_enter(struct vkv_cache *c, enum cache_who who)
{
	/*
	 * Counted before blocking on the lock: the look-ahead holds it while
	 * it runs and looks at this count between sequences.
	 */
	vkv_add(&c->entering, 1);
	pthread_mutex_lock(&c->lock);
	while (who == ENTER_CALL && c->phase == JOB_QUEUED)
		pthread_cond_wait(&c->job_cond, &c->lock);
	vkv_sub(&c->entering, 1);
}

void vkvi_cache_leave(struct vkv_cache *c)
{
	pthread_mutex_unlock(&c->lock);
}

/*
 * Check the whole batch before changing anything. Marks catch a slot given
 * twice; vkvi_backing_grow re-marks with a fresh value afterwards.
 */
static int step_check(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *lens, uint32_t n, bool *grow)
{
	if (++c->mark == 0)
		c->mark = 1;
	*grow = false;
	for (uint32_t i = 0; i < n; i++) {
		struct vkv_slot *s;

		if (slots[i] >= c->geom.max_seqs)
			return -EINVAL;
		s = &c->slots[slots[i]];
		if (s->state != SLOT_OPEN)
			return -EBADF;
		if (lens[i] > c->geom.max_tokens)
			return -E2BIG;
		if (s->mark == c->mark)
			return -EINVAL;
		s->mark = c->mark;
		s->want = lens[i];
		/*
		 * A swapped-out entry comes back at its saved length, whatever
		 * length it is given: room to check even at length 0.
		 */
		if (lens[i] > s->cap || c->sw[slots[i]].tier != VKV_TIER_DEVICE)
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
			vkvi_swap_wait_idle(c, slots[i]);
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

	if (c->broken)
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
	if (grow && !vkvi_backing_fits(c, slots, lens, n, c->use_clock + 1)) {
		vkv_add(&c->cnt.enomem, 1);
		return -ENOMEM;
	}
	/*
	 * Stamp the batch with this step's clock (eviction spares it), then
	 * bring back any of it that was swapped out, at its old addresses.
	 */
	c->use_clock++;
	for (uint32_t i = 0; i < n; i++)
		c->sw[slots[i]].last_use = c->use_clock;
	c->batch_mark = c->mark;
	for (uint32_t i = 0; i < n && !ret; i++) {
		if (c->sw[slots[i]].tier != VKV_TIER_DEVICE) {
			ret = vkvi_swap_in_now(c, slots[i]);
			grow = true;
		}
	}
	c->batch_mark = 0;
	if (ret)
		return ret;
	if (grow) {
		ret = vkvi_backing_grow(c, slots, lens, n);
		if (ret)
			return ret;
	}
	for (uint32_t i = 0; i < n; i++)
		slot_set_len(c, &c->slots[slots[i]], lens[i]);
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
	vkvi_cache_enter(c, ENTER_CALL);
	if (c->job_pending)
		ret = -EBUSY;
	else
		ret = step_locked(c, slots, lens, n);
	vkvi_cache_leave(c);
	return ret;
}

/* What vkv_step() checks before it does anything, and nothing else. */
static int fits_locked(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *lens, uint32_t n)
{
	bool grow;
	int ret;

	if (c->job_pending)
		return -EBUSY;
	if (c->broken)
		return -EIO;
	ret = step_check(c, slots, lens, n, &grow);
	if (ret)
		return ret;
	/* A swap on the worker frees or takes pages at a time of its own. */
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++)
		if (slot_busy(c, i))
			return -EBUSY;
	/* The step stamps its batch with a new clock: nobody has it yet. */
	return !grow || vkvi_backing_fits(c, slots, lens, n, c->use_clock + 1)
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
	vkvi_cache_enter(c, ENTER_CALL);
	ret = fits_locked(c, slots, lens, n);
	vkvi_cache_leave(c);
	return ret;
}

/* Someone wants in, or the cache is going away: the look-ahead stops. */
static bool lookahead_yield(struct vkv_cache *c)
{
	return vkv_load(&c->entering) || c->worker_stop;
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

	for (uint32_t i = 0; i < c->job_n && !lookahead_yield(c); i++) {
		vkv_slot_t slot = c->job_slots[i];
		struct vkv_slot *s = &c->slots[slot];
		uint64_t want = (uint64_t)s->len + ahead;
		uint32_t target;
		size_t need;
		long got;

		if (want > c->geom.max_tokens)
			want = c->geom.max_tokens;
		target = (uint32_t)want;
		if (s->state != SLOT_OPEN || target <= s->cap ||
		    slot_busy(c, slot) || c->sw[slot].tier != VKV_TIER_DEVICE)
			continue;
		need = vkvi_backing_need(c, slot, target);
		got = vkvi_pool_take(&c->pool, c->la_pages, need, false);
		if (got < (long)need) {
			if (got > 0)
				vkvi_pool_put(&c->pool, c->la_pages,
					      (size_t)got);
			/* Have the pool worker create them for next time. */
			vkvi_pool_want(&c->pool, need);
			break;
		}
		if (vkvi_backing_map(c, &slot, &target, 1, c->la_pages, need))
			break;
	}
}

static void *step_worker(void *arg)
{
	struct vkv_cache *c = arg;

	vkvi_cache_enter(c, ENTER_STEP);
	for (;;) {
		while (c->phase != JOB_QUEUED && !c->worker_stop)
			pthread_cond_wait(&c->job_cond, &c->lock);
		if (c->worker_stop)
			break;
		/* In through the one entry, like every other thread. */
		vkvi_cache_leave(c);
		vkvi_cache_enter(c, ENTER_STEP);
		c->job_result =
			step_locked(c, c->job_slots, c->job_lens, c->job_n);
		c->phase = JOB_LOOKAHEAD;
		pthread_cond_broadcast(&c->job_cond);
		if (!c->job_result && c->cfg.lookahead_tokens)
			lookahead(c);
		c->phase = JOB_IDLE;
		pthread_cond_broadcast(&c->job_cond);
	}
	vkvi_cache_leave(c);
	return NULL;
}

VKV_EXPORT int vkv_step_async(struct vkv_cache *c, const vkv_slot_t *slots,
			      const uint32_t *lens, uint32_t n)
{
	int ret = check_args(c, slots, lens, n);

	if (ret)
		return ret;
	vkvi_cache_enter(c, ENTER_CALL);
	if (c->job_pending) {
		ret = -EBUSY;
		goto out;
	}
	/* Argument errors now, not at wait; the cache is not changed by it. */
	{
		bool grow;

		ret = c->broken ? -EIO : step_check(c, slots, lens, n, &grow);
		if (ret)
			goto out;
	}
	if (!c->job_slots) {
		c->job_slots = malloc(c->geom.max_seqs * sizeof(*c->job_slots));
		c->job_lens = malloc(c->geom.max_seqs * sizeof(uint32_t));
		c->la_pages = malloc((size_t)c->seg_pages * c->ntensors *
				     sizeof(vkv_handle_t));
		if (!c->job_slots || !c->job_lens || !c->la_pages) {
			free(c->job_slots);
			free(c->job_lens);
			free(c->la_pages);
			c->job_slots = c->job_lens = NULL;
			c->la_pages = NULL;
			ret = -ENOMEM;
			goto out;
		}
	}
	if (!c->worker_started) {
		ret = -pthread_create(&c->worker, NULL, step_worker, c);
		if (ret)
			goto out;
		c->worker_started = true;
	}
	if (n) {
		memcpy(c->job_slots, slots, n * sizeof(*c->job_slots));
		memcpy(c->job_lens, lens, n * sizeof(uint32_t));
	}
	c->job_n = n;
	c->job_pending = true;
	c->phase = JOB_QUEUED;
	pthread_cond_broadcast(&c->job_cond);
out:
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_step_wait(struct vkv_cache *c)
{
	int ret;

	if (!c)
		return -EINVAL;
	/* Entering orders this after the step and cuts its look-ahead. */
	vkvi_cache_enter(c, ENTER_CALL);
	if (!c->job_pending) {
		ret = -EINVAL;
	} else {
		c->job_pending = false;
		ret = c->job_result;
	}
	vkvi_cache_leave(c);
	return ret;
}

void vkvi_step_worker_stop(struct vkv_cache *c)
{
	if (!c->worker_started)
		return;
	vkvi_cache_enter(c, ENTER_CALL);
	c->worker_stop = true;
	pthread_cond_broadcast(&c->job_cond);
	vkvi_cache_leave(c);
	pthread_join(c->worker, NULL);
	c->worker_started = false;
}
