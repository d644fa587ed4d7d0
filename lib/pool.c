/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the physical page pool and its refill worker.
 *
 * Creation and release run outside the lock: they are the slow calls, and a
 * taker must not wait behind the worker's creation of a page it does not
 * need. The budget is charged under the lock before creating, so that
 * concurrent creators can never overshoot it.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "pool.h"

/* Lock held. The list grows past high when pages come back in bulk. */
static int push_free(struct vkv_pool *p, vkv_handle_t h)
{
	if (p->nfree == p->free_cap) {
		size_t cap = p->free_cap * 2;
		vkv_handle_t *n = realloc(p->free_list, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->free_list = n;
		p->free_cap = cap;
	}
	p->free_list[p->nfree++] = h;
	vkv_store(&p->cnt.free, p->nfree);
	return 0;
}

/* The free level the worker fills to: high, or more while someone waits. */
static size_t fill_target(const struct vkv_pool *p)
{
	return p->want > p->high ? p->want : p->high;
}

static bool worker_should_run(const struct vkv_pool *p)
{
	return !p->dry && p->created < p->budget &&
	       (p->nfree < p->low || p->nfree < p->want);
}

/*
 * Create one page outside the lock; the budget is charged (created, inflight)
 * under it before, and settled under it after. Returns with the lock held.
 */
static int create_one(struct vkv_pool *p, vkv_handle_t *h)
{
	int ret;

	p->created++;
	p->inflight++;
	vkv_store(&p->cnt.created, p->created);
	pthread_mutex_unlock(&p->lock);
	ret = p->be->ops->create(p->be, p->page_size, h);
	pthread_mutex_lock(&p->lock);
	p->inflight--;
	if (ret) {
		p->created--;
		vkv_store(&p->cnt.created, p->created);
	} else {
		vkv_add(&p->cnt.create_calls, 1);
	}
	pthread_cond_broadcast(&p->done);
	return ret;
}

static void *pool_worker(void *arg)
{
	struct vkv_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		vkv_handle_t h;
		int ret;

		if (!worker_should_run(p)) {
			pthread_cond_wait(&p->wake, &p->lock);
			continue;
		}
		/* Fill up to the target, one page per lock hold. */
		while (!p->stop && p->nfree < fill_target(p) &&
		       p->created < p->budget) {
			ret = create_one(p, &h);
			if (!ret && push_free(p, h)) {
				/* No room to keep it: give it back. */
				p->created--;
				vkv_store(&p->cnt.created, p->created);
				pthread_mutex_unlock(&p->lock);
				p->be->ops->release(p->be, h);
				pthread_mutex_lock(&p->lock);
				ret = -ENOMEM;
			}
			if (ret) {
				/* Out of memory: retry after a release. */
				p->dry = true;
				break;
			}
		}
		if (p->nfree >= p->want)
			p->want = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int vkvi_pool_init(struct vkv_pool *p, struct vkv_backend *be, size_t page_size,
		   size_t budget, size_t low, size_t high)
{
	int ret;

	p->be = be;
	p->page_size = page_size;
	p->budget = budget ? budget : SIZE_MAX / 2;
	p->low = low < p->budget ? low : p->budget;
	p->high = high < p->budget ? high : p->budget;
	if (p->high < p->low)
		p->high = p->low;
	p->nfree = 0;
	p->created = 0;
	p->stop = false;
	p->dry = false;
	p->want = 0;
	p->worker_started = false;
	/* The free list can hold every page the budget allows, or grows. */
	p->free_list = NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->inflight = 0;
	{
		size_t cap = p->high + 64;

		p->free_list = malloc(cap * sizeof(*p->free_list));
		if (!p->free_list) {
			ret = -ENOMEM;
			goto err;
		}
		p->free_cap = cap;
	}
	if (p->low) {
		ret = pthread_create(&p->worker, NULL, pool_worker, p);
		if (ret) {
			ret = -ret;
			goto err;
		}
		p->worker_started = true;
	}
	return 0;
err:
	free(p->free_list);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	return ret;
}

void vkvi_pool_fini(struct vkv_pool *p)
{
	if (p->worker_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->worker, NULL);
	}
	for (size_t i = 0; i < p->nfree; i++) {
		if (!p->be->ops->release(p->be, p->free_list[i]))
			vkv_add(&p->cnt.release_calls, 1);
	}
	p->created -= p->nfree;
	p->nfree = 0;
	vkv_store(&p->cnt.free, 0);
	vkv_store(&p->cnt.created, p->created);
	free(p->free_list);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
}

long vkvi_pool_take(struct vkv_pool *p, vkv_handle_t *out, size_t n,
		    bool create)
{
	size_t got = 0;
	int err = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (got < n && p->nfree)
			out[got++] = p->free_list[--p->nfree];
		vkv_store(&p->cnt.free, p->nfree);
		if (got == n || !create)
			break;
		if (p->created < p->budget) {
			err = create_one(p, &out[got]);
			if (err)
				break;
			got++;
			vkv_add(&p->cnt.create_sync, 1);
		} else if (p->inflight) {
			/*
			 * The budget is spent on pages still being created:
			 * they are ours in a moment, not a reason for -ENOMEM.
			 */
			pthread_cond_wait(&p->done, &p->lock);
		} else {
			break;
		}
	}
	if (p->worker_started && worker_should_run(p))
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (!got && err)
		return err;
	return (long)got;
}

void vkvi_pool_put(struct vkv_pool *p, const vkv_handle_t *h, size_t n)
{
	size_t i = 0, nrel = 0;
	const vkv_handle_t *rel = NULL;

	pthread_mutex_lock(&p->lock);
	p->dry = false;
	for (; i < n && p->nfree < fill_target(p); i++) {
		if (push_free(p, h[i]))
			break;
	}
	if (i < n) {
		/* Surplus: released below, outside the lock. */
		rel = &h[i];
		nrel = n - i;
		p->created -= nrel;
		vkv_store(&p->cnt.created, p->created);
	}
	pthread_mutex_unlock(&p->lock);
	for (size_t j = 0; j < nrel; j++) {
		if (!p->be->ops->release(p->be, rel[j]))
			vkv_add(&p->cnt.release_calls, 1);
	}
}

void vkvi_pool_want(struct vkv_pool *p, size_t n)
{
	pthread_mutex_lock(&p->lock);
	if (n > p->budget)
		n = p->budget;
	if (p->nfree + n > p->want)
		p->want = p->nfree + n;
	if (p->worker_started && worker_should_run(p))
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

size_t vkvi_pool_free(struct vkv_pool *p)
{
	return vkv_load(&p->cnt.free);
}

size_t vkvi_pool_budget_left(struct vkv_pool *p)
{
	size_t left;

	pthread_mutex_lock(&p->lock);
	left = p->budget - p->created;
	pthread_mutex_unlock(&p->lock);
	return left;
}
