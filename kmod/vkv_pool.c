// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: the host pool, its chunks' memory and their allocation. Swap is in
 * vkv_swap.c, page faults in vkv_fault.c, the shrinker in vkv_shrink.c; see
 * vkv_internal.h for the lock order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "vkv_internal.h"

/*
 * One attempt at a chunk's memory with @base flags: one compound page of the
 * chunk's order if possible, else pieces of ever smaller orders (the caller
 * counts a fallback: c->piece_order below the chunk order). Compound pages
 * keep a refcount on every tail page's head, which vm_insert_page() needs.
 * @last_gfp is added at order 0, the last resort.
 */
static int vkv_chunk_alloc_gfp(struct vkv_pool *pool, struct vkv_chunk *c,
			       gfp_t base, gfp_t last_gfp)
{
	int order = pool->chunk_order;
	int o;

	for (o = order; o >= 0; o--) {
		unsigned long n = 1UL << (order - o), i;
		gfp_t gfp = base | (o ? __GFP_COMP | __GFP_NORETRY : last_gfp);
		struct page **pieces = NULL;
		struct page *head = NULL;

		if (n > 1) {
			pieces = kvcalloc(n, sizeof(*pieces), GFP_KERNEL);
			if (!pieces)
				return -ENOMEM;
		}
		for (i = 0; i < n; i++) {
			struct page *p = alloc_pages_node(pool->node, gfp, o);

			if (!p)
				break;
			if (pieces)
				pieces[i] = p;
			else
				head = p;
		}
		if (i == n) {
			c->head = head;
			c->pieces = pieces;
			c->piece_order = o;
			return 0;
		}
		while (pieces && i--)
			__free_pages(pieces[i], o);
		kvfree(pieces);
		if (fatal_signal_pending(current))
			return -EINTR;
	}
	return -ENOMEM;
}

/* Whether any piece of @c lies off the pool's node. */
static bool vkv_chunk_is_remote(struct vkv_pool *pool, struct vkv_chunk *c)
{
	unsigned long i, n = vkv_nr_pieces(pool, c);

	for (i = 0; i < n; i++)
		if (page_to_nid(vkv_piece(c, i)) != pool->node)
			return true;
	return false;
}

/*
 * Allocate a chunk's memory (zeroed unless the caller overwrites every byte,
 * as a swap-in does) on the pool's node; c->remote says whether it had to
 * go elsewhere.
 *
 * A strict pool (the default) only ever takes its node's memory. A pool
 * created with VKV_POOL_NODE_PREFERRED takes its node's free memory first,
 * pieces of any size, without reclaim; then memory of any node, the
 * pool's first, as the kernel's own preferred-node policy does: an -ENOMEM
 * while other nodes have room helps no one whose placement is only a wish.
 *
 * With @may_oom the last resort, order 0, may invoke the OOM killer (of
 * the memory cgroup too): a fault-in must not fail in a way that makes the
 * fault be retried forever (VM_FAULT_OOM does since 5.16). The page
 * allocator never invokes it for __GFP_THISNODE, so only a preferred pool's
 * second attempt can. Without @may_oom it fails with -ENOMEM, which the
 * ioctls return.
 */
int vkv_chunk_alloc(struct vkv_pool *pool, struct vkv_chunk *c, bool zero,
		    bool may_oom)
{
	const gfp_t base = GFP_KERNEL_ACCOUNT | __GFP_NOWARN |
			   (zero ? __GFP_ZERO : 0);
	const gfp_t last = may_oom ? 0 : __GFP_RETRY_MAYFAIL;
	int err;

	c->remote = false;
	if (!pool->node_preferred)
		return vkv_chunk_alloc_gfp(pool, c, base | __GFP_THISNODE, last);
	err = vkv_chunk_alloc_gfp(pool, c, base | __GFP_THISNODE,
				  __GFP_NORETRY);
	if (err != -ENOMEM)
		return err;
	err = vkv_chunk_alloc_gfp(pool, c, base, last);
	if (!err)
		c->remote = vkv_chunk_is_remote(pool, c);
	return err;
}

/*
 * Count a chunk just allocated that is not what was asked for: under
 * ctx->lock once the pool is installed.
 */
void vkv_chunk_count_placement(struct vkv_pool *pool, struct vkv_chunk *c)
{
	if (c->piece_order != pool->chunk_order) {
		pool->nr_fallback++;
		atomic64_inc(&vkv_stats.fallback_chunks);
	}
	if (c->remote) {
		pool->nr_remote++;
		atomic64_inc(&vkv_stats.remote_chunks);
	}
}

void vkv_chunk_free_pages(struct vkv_pool *pool, struct vkv_chunk *c)
{
	unsigned long i, n = vkv_nr_pieces(pool, c);

	/* A piece someone else still holds stays counted (vkv_orphan.c). */
	for (i = 0; i < n; i++)
		vkv_chunk_piece_free(vkv_piece(c, i), c->piece_order);
	kvfree(c->pieces);
	c->pieces = NULL;
	c->head = NULL;
}

void vkv_account_resident(struct vkv_ctx *ctx, long delta_chunks)
{
	s64 bytes = delta_chunks * (s64)vkv_chunk_bytes(ctx->pool);

	lockdep_assert_held(&ctx->lock);
	ctx->pool->nr_resident += delta_chunks;
	atomic64_add(bytes, &vkv_stats.pool_bytes);
	if (ctx->backing)
		atomic64_add(bytes, &vkv_stats.backed_resident_bytes);
}

static void vkv_pool_free(struct vkv_pool *pool)
{
	unsigned long i;

	if (!pool)
		return;
	for (i = 0; i < pool->nr_chunks; i++) {
		struct vkv_chunk *c = &pool->chunks[i];

		if (c->state == VKV_CHUNK_RESIDENT && (c->head || c->pieces))
			vkv_chunk_free_pages(pool, c);
	}
	kvfree(pool->chunks);
	kfree(pool);
}

int vkv_pool_create(struct vkv_ctx *ctx, struct vkv_pool_create *pc)
{
	u64 chunk = pc->chunk_size ? pc->chunk_size : (u64)READ_ONCE(vkv_chunk_kb) * 1024;
	u64 max = (u64)READ_ONCE(vkv_max_pool_mb) << 20;
	int node = pc->node;
	struct vkv_pool *pool;
	unsigned long i;
	u64 size;
	int err;

	if (!is_power_of_2(chunk) || chunk < PAGE_SIZE ||
	    chunk > (PAGE_SIZE << VKV_MAX_CHUNK_ORDER))
		return -EINVAL;
	if (node == -1)
		node = READ_ONCE(vkv_default_node);
	if (node == -1)
		node = numa_node_id();
	if (node < 0 || node >= MAX_NUMNODES || !node_online(node) ||
	    !node_state(node, N_MEMORY))
		return -EINVAL;
	if (!pc->size || pc->size > U64_MAX - chunk)
		return -EINVAL;
	size = round_up(pc->size, chunk);
	if ((size >> PAGE_SHIFT) > totalram_pages())
		return -ENOMEM;
	/* Cheap early answer; checked again before the pool is installed. */
	mutex_lock(&ctx->lock);
	err = ctx->pool ? -EEXIST : 0;
	mutex_unlock(&ctx->lock);
	if (err)
		return err;

	/* Charge the whole pool against max_pool_mb up front. */
	if (atomic64_add_return(size, &vkv_stats.pool_reserved_bytes) > max) {
		atomic64_sub(size, &vkv_stats.pool_reserved_bytes);
		return -ENOMEM;
	}
	err = vkv_user_charge(ctx->user, VKV_USER_POOL, size);
	if (err) {
		atomic64_sub(size, &vkv_stats.pool_reserved_bytes);
		return err;
	}

	err = -ENOMEM;
	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool)
		goto err_uncharge;
	pool->size = size;
	pool->chunk_order = ilog2(chunk) - PAGE_SHIFT;
	pool->node = node;
	pool->node_preferred = pc->flags & VKV_POOL_NODE_PREFERRED;
	pool->nr_chunks = size / chunk;
	pool->chunks = kvcalloc(pool->nr_chunks, sizeof(*pool->chunks), GFP_KERNEL_ACCOUNT);
	if (!pool->chunks)
		goto err_free;
	for (i = 0; i < pool->nr_chunks; i++) {
		struct vkv_chunk *c = &pool->chunks[i];

		if (fatal_signal_pending(current)) {
			err = -EINTR;
			goto err_free;
		}
		err = vkv_chunk_alloc(pool, c, true, false);
		if (err) {
			/* Only chunks 0 .. i-1 hold memory. */
			c->state = VKV_CHUNK_EMPTY;
			for (; i < pool->nr_chunks; i++)
				pool->chunks[i].state = VKV_CHUNK_EMPTY;
			goto err_free;
		}
		c->state = VKV_CHUNK_RESIDENT;
		vkv_chunk_count_placement(pool, c);
		cond_resched();
	}

	mutex_lock(&ctx->lock);
	if (ctx->pool) {
		mutex_unlock(&ctx->lock);
		err = -EEXIST;
		goto err_free;
	}
	for (i = 0; i < pool->nr_chunks; i++)
		list_add_tail(&pool->chunks[i].lru, &ctx->lru);
	ctx->pool = pool;
	vkv_account_resident(ctx, pool->nr_chunks);
	pc->size = size;
	pc->chunk_size = chunk;
	pc->node = node;
	pc->nr_chunks = pool->nr_chunks;
	pc->fallback_chunks = pool->nr_fallback;
	mutex_unlock(&ctx->lock);
	return 0;

err_free:
	vkv_pool_free(pool);
err_uncharge:
	vkv_user_uncharge(ctx->user, VKV_USER_POOL, size);
	atomic64_sub(size, &vkv_stats.pool_reserved_bytes);
	return err;
}

/* Called at release (no mapping is left) under ctx->lock. */
void vkv_pool_destroy(struct vkv_ctx *ctx)
{
	struct vkv_pool *pool = ctx->pool;

	lockdep_assert_held(&ctx->lock);
	if (!pool)
		return;
	vkv_account_resident(ctx, -(long)pool->nr_resident);
	atomic64_sub((s64)pool->nr_swapped * vkv_chunk_bytes(pool),
		     &vkv_stats.swapped_bytes);
	atomic64_sub(pool->size, &vkv_stats.pool_reserved_bytes);
	vkv_user_uncharge(ctx->user, VKV_USER_POOL, pool->size);
	INIT_LIST_HEAD(&ctx->lru);
	ctx->pool = NULL;
	vkv_pool_free(pool);
}

void vkv_pool_info(struct vkv_ctx *ctx, struct vkv_pool_info *pi)
{
	struct vkv_pool *pool;

	mutex_lock(&ctx->lock);
	pool = ctx->pool;
	if (pool) {
		pi->size = pool->size;
		pi->chunk_size = vkv_chunk_bytes(pool);
		pi->node = pool->node;
		pi->nr_chunks = pool->nr_chunks;
		pi->resident_chunks = pool->nr_resident;
		pi->swapped_chunks = pool->nr_swapped;
		pi->empty_chunks = pool->nr_empty;
		pi->fallback_chunks = pool->nr_fallback;
		pi->remote_chunks = pool->nr_remote;
		pi->flags = pool->node_preferred ? VKV_POOL_NODE_PREFERRED : 0;
	}
	pi->has_backing = !!ctx->backing;
	pi->backing_direct = ctx->backing_direct;
	mutex_unlock(&ctx->lock);
	pi->pinned_bytes = atomic64_read(&ctx->pinned_bytes);
}
