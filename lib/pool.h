/* SPDX-License-Identifier: MIT */
/*
 * pool.h - physical pages created ahead of need.
 *
 * Creating physical memory is the slow primitive (cuMemCreate ~190 us per
 * 2 MiB on an A100), so a worker keeps between low and high free pages
 * ready, never creating more than the budget allows in total. Takers get
 * free pages first and create on their own thread only when the pool is dry.
 */
#ifndef VKV_POOL_H
#define VKV_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "backend.h"

struct vkv_pool_counters {
	uint64_t free; /* pages in the free list */
	uint64_t created; /* pages currently created */
	uint64_t create_calls;
	uint64_t release_calls;
	uint64_t create_sync;
};

struct vkv_pool {
	struct vkv_backend *be;
	size_t page_size;
	size_t budget; /* pages; never 0 */
	size_t low, high; /* free pages */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake; /* the worker waits here */
	pthread_cond_t done; /* a creation in flight finished */
	vkv_handle_t *free_list;
	size_t nfree, free_cap;
	size_t created; /* includes creations in flight */
	size_t inflight; /* creations running outside the lock */
	bool stop;
	size_t want; /* free pages someone asked for ahead of need */
	bool dry; /* the backend refused to create: wait for a release */
	bool worker_started;
	pthread_t worker;

	struct vkv_pool_counters cnt; /* atomics, read by stats */
};

/*
 * vkvi_pool_init - set up a pool of @page_size pages capped at @budget pages
 * (0: none). Starts the refill worker when @low > 0.
 */
int vkvi_pool_init(struct vkv_pool *p, struct vkv_backend *be, size_t page_size,
		   size_t budget, size_t low, size_t high);

/* vkvi_pool_fini - stop the worker and release every free page. */
void vkvi_pool_fini(struct vkv_pool *p);

/*
 * vkvi_pool_take - take up to @n pages into @out: free ones first, then, if
 * @create, new ones on the caller's thread within the budget. Returns how
 * many it took (maybe fewer than @n), or a negative errno if it took none
 * because the backend failed.
 */
long vkvi_pool_take(struct vkv_pool *p, vkv_handle_t *out, size_t n,
		    bool create);

/*
 * vkvi_pool_put - give back @n pages. Above the high watermark the surplus
 * is released to the backend.
 */
void vkvi_pool_put(struct vkv_pool *p, const vkv_handle_t *h, size_t n);

/*
 * vkvi_pool_want - ask the worker to have @n more free pages ready than there
 * are now (beyond the high watermark if need be), without waiting: the
 * look-ahead's way to get pages created off the scheduler's path.
 */
void vkvi_pool_want(struct vkv_pool *p, size_t n);

/* vkvi_pool_free - free pages now (a snapshot). */
size_t vkvi_pool_free(struct vkv_pool *p);

/* vkvi_pool_budget_left - pages that may still be created. */
size_t vkvi_pool_budget_left(struct vkv_pool *p);

#endif /* VKV_POOL_H */
