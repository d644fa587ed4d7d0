// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: the shrinker and its worker. See vkv_internal.h for the lock
 * order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/shrinker.h>
#include <linux/workqueue.h>

#include "vkv_compat.h"
#include "vkv_internal.h"

/*
 * Shrinker: under memory pressure, swap out the coldest chunks (least
 * recently faulted in, prefetched or created) of contexts that have a
 * backing file, never taking resident pool memory below min_resident_mb.
 *
 * The scan callback does no I/O and takes no lock: it adds the request to
 * vkv_shrink_goal and queues vkv_shrink_work on a WQ_MEM_RECLAIM workqueue,
 * whose worker swaps chunks out in plain process context. Writing to a
 * filesystem from inside reclaim is not safe even with __GFP_FS: the task in
 * reclaim (or one that kswapd waits for) may hold the backing file's inode
 * lock.
 *
 * The worker never sleeps on a context while it holds vkv_ctxs_lock (which
 * open and release take): it takes a reference on one context at a time,
 * drops the list lock, and gives up on a context whose lock it cannot take
 * at once. Per visit it looks at no more than VKV_SHRINK_BATCH chunks and
 * skips referenced ones without waiting, so pages held by pipes cannot stall
 * it, and contexts take turns. Its writes run with each backing file's
 * registrant's credentials (vkv_chunk_io).
 */
#define VKV_SHRINK_BATCH 64

static struct vkv_compat_shrinker vkv_shrinker;
static struct workqueue_struct *vkv_wq;
static struct work_struct vkv_shrink_work;
static atomic_long_t vkv_shrink_goal;	/* pages asked for, not yet freed */
static unsigned long vkv_shrink_asked;	/* jiffies of the last scan */

/*
 * Reclaim has not asked for 100 ms (under pressure it asks many times a
 * second): the pressure is over, and what is left of the goal would only
 * swap out chunks that are being used again, e.g. faulted back in.
 */
static bool vkv_shrink_stale(void)
{
	return time_after(jiffies, READ_ONCE(vkv_shrink_asked) + HZ / 10);
}

static unsigned long vkv_shrink_count(struct shrinker *s,
				      struct shrink_control *sc)
{
	s64 resident = atomic64_read(&vkv_stats.pool_bytes);
	s64 backed = atomic64_read(&vkv_stats.backed_resident_bytes);
	s64 floor = (s64)READ_ONCE(vkv_min_resident_mb) << 20;

	if (!READ_ONCE(vkv_shrinker_enabled) || resident <= floor || backed <= 0)
		return 0;
	return min(backed, resident - floor) >> PAGE_SHIFT;
}

/* Swaps out up to @goal pages' worth of one context's coldest chunks. */
static unsigned long vkv_shrink_ctx(struct vkv_ctx *ctx, unsigned long goal)
{
	s64 floor = (s64)READ_ONCE(vkv_min_resident_mb) << 20;
	unsigned long budget, freed = 0;
	struct vkv_pool *pool;
	size_t bytes;

	if (!mutex_trylock(&ctx->lock))
		return 0;	/* busy now; its turn comes again */
	pool = ctx->pool;
	if (!pool || !ctx->backing || ctx->dead)
		goto out;
	bytes = vkv_chunk_bytes(pool);
	for (budget = min_t(unsigned long, pool->nr_resident, VKV_SHRINK_BATCH);
	     budget && freed < goal; budget--) {
		struct vkv_chunk *c;
		int err;

		if (!READ_ONCE(vkv_shrinker_enabled) || list_empty(&ctx->lru) ||
		    !ctx->backing || ctx->dead || vkv_shrink_stale() ||
		    atomic64_read(&vkv_stats.pool_bytes) - (s64)bytes < floor)
			break;
		c = list_first_entry(&ctx->lru, struct vkv_chunk, lru);
		/* Drops and retakes ctx->lock around the write. */
		err = vkv_chunk_evict(ctx, c - pool->chunks, c, VKV_EVICT_NOWAIT);
		if (err == -EBUSY) {
			if (!list_empty(&c->lru))
				list_move_tail(&c->lru, &ctx->lru);
			continue;
		}
		if (err)
			break;
		atomic64_inc(&vkv_stats.shrinker_swap_outs);
		freed += 1UL << pool->chunk_order;
	}
out:
	mutex_unlock(&ctx->lock);
	return freed;
}

/* The next context in turn, with a reference; NULL if there is none. */
static struct vkv_ctx *vkv_shrink_next(void)
{
	struct vkv_ctx *ctx = NULL;

	mutex_lock(&vkv_ctxs_lock);
	if (!list_empty(&vkv_ctxs)) {
		ctx = list_first_entry(&vkv_ctxs, struct vkv_ctx, node);
		kref_get(&ctx->ref);
		list_rotate_left(&vkv_ctxs);
	}
	mutex_unlock(&vkv_ctxs_lock);
	return ctx;
}

static void vkv_shrink_worker(struct work_struct *work)
{
	long goal;

	while ((goal = atomic_long_xchg(&vkv_shrink_goal, 0)) > 0 &&
	       !vkv_shrink_stale()) {
		unsigned long freed = 0, n;

		mutex_lock(&vkv_ctxs_lock);
		n = list_count_nodes(&vkv_ctxs);
		mutex_unlock(&vkv_ctxs_lock);
		while (n-- && freed < goal) {
			struct vkv_ctx *ctx = vkv_shrink_next();

			if (!ctx)
				break;
			freed += vkv_shrink_ctx(ctx, goal - freed);
			vkv_ctx_put(ctx);
			cond_resched();
		}
		if (!freed)
			break;	/* floor reached, or everything busy */
	}
}

static unsigned long vkv_shrink_scan(struct shrinker *s,
				     struct shrink_control *sc)
{
	unsigned long avail = vkv_shrink_count(s, sc);

	if (!avail)
		return SHRINK_STOP;
	atomic64_inc(&vkv_stats.shrinker_scans);
	WRITE_ONCE(vkv_shrink_asked, jiffies);
	if (atomic_long_read(&vkv_shrink_goal) < (long)avail)
		atomic_long_add(min(sc->nr_to_scan, avail), &vkv_shrink_goal);
	queue_work(vkv_wq, &vkv_shrink_work);
	/* Memory comes back asynchronously; nothing was freed here. */
	return SHRINK_STOP;
}

int vkv_shrinker_init(void)
{
	int err;

	INIT_WORK(&vkv_shrink_work, vkv_shrink_worker);
	vkv_wq = alloc_workqueue("vkv_reclaim", WQ_MEM_RECLAIM | WQ_UNBOUND, 1);
	if (!vkv_wq)
		return -ENOMEM;
	err = vkv_compat_shrinker_register(&vkv_shrinker, "vkv",
					   vkv_shrink_count, vkv_shrink_scan);
	if (err)
		destroy_workqueue(vkv_wq);
	return err;
}

void vkv_shrinker_exit(void)
{
	vkv_compat_shrinker_free(&vkv_shrinker);
	cancel_work_sync(&vkv_shrink_work);
	destroy_workqueue(vkv_wq);
}
