// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: pool memory that outlives its pool.
 *
 * A pool page can be referenced from outside: vmsplice() puts it in a pipe,
 * get_user_pages() callers keep it. Dropping our reference then frees
 * nothing, and one 4 KiB reference keeps a whole compound chunk (2 MiB)
 * alive. Such a piece becomes an orphan: we keep our reference, and the
 * memory stays in pool_bytes, in pool_reserved_bytes (so max_pool_mb still
 * holds) and in orphan_bytes, until ours is the last reference; then it is
 * freed and un-counted.
 *
 * There is no callback when another holder drops a page reference, so a
 * delayed work polls the orphans every VKV_ORPHAN_POLL while there are any.
 * Once ours is the only reference nobody can take a new one (no mapping,
 * no pipe left points at it), so the check cannot race with a new holder.
 *
 * At unload the orphans are let go: the pages are ordinary compound pages
 * whose last holder frees them with no help from this module, and without
 * the module there is no limit left to count them against.
 */
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "vkv_internal.h"

#define VKV_ORPHAN_POLL HZ

struct vkv_orphan {
	struct list_head node;
	struct page *page;
	unsigned int order;
};

static LIST_HEAD(vkv_orphans);		/* under vkv_orphans_lock */
static DEFINE_SPINLOCK(vkv_orphans_lock);
static bool vkv_orphans_closed;		/* unloading: no more polls */

static void vkv_orphans_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(vkv_orphans_work, vkv_orphans_reap);

static void vkv_orphan_count(unsigned int order, int sign)
{
	s64 bytes = sign * ((s64)PAGE_SIZE << order);

	atomic64_add(bytes, &vkv_stats.orphan_bytes);
	atomic64_add(bytes, &vkv_stats.pool_bytes);
	atomic64_add(bytes, &vkv_stats.pool_reserved_bytes);
}

static bool vkv_piece_ours_alone(struct page *page)
{
	return folio_ref_count(page_folio(page)) == 1;
}

/*
 * Drop the pool's reference to one piece of a chunk (already un-counted by
 * the pool), or keep it as an orphan if someone else still holds the piece.
 * Process context: may sleep.
 */
void vkv_chunk_piece_free(struct page *page, unsigned int order)
{
	struct vkv_orphan *o;

	if (vkv_piece_ours_alone(page)) {
		__free_pages(page, order);
		return;
	}
	o = kmalloc(sizeof(*o), GFP_KERNEL | __GFP_NOWARN);
	if (!o) {
		/* Cannot track it: its holder frees it, uncounted. */
		__free_pages(page, order);
		return;
	}
	o->page = page;
	o->order = order;
	vkv_orphan_count(order, 1);
	spin_lock(&vkv_orphans_lock);
	list_add_tail(&o->node, &vkv_orphans);
	if (!vkv_orphans_closed)
		queue_delayed_work(system_wq, &vkv_orphans_work, VKV_ORPHAN_POLL);
	spin_unlock(&vkv_orphans_lock);
}

static void vkv_orphan_release(struct vkv_orphan *o)
{
	vkv_orphan_count(o->order, -1);
	__free_pages(o->page, o->order);
	kfree(o);
}

static void vkv_orphans_reap(struct work_struct *work)
{
	struct vkv_orphan *o, *tmp;
	LIST_HEAD(done);
	unsigned long n = 0;

	spin_lock(&vkv_orphans_lock);
	list_for_each_entry_safe(o, tmp, &vkv_orphans, node)
		if (vkv_piece_ours_alone(o->page))
			list_move(&o->node, &done);
	if (!list_empty(&vkv_orphans) && !vkv_orphans_closed)
		queue_delayed_work(system_wq, &vkv_orphans_work, VKV_ORPHAN_POLL);
	spin_unlock(&vkv_orphans_lock);

	list_for_each_entry_safe(o, tmp, &done, node) {
		vkv_orphan_release(o);
		if (!(++n % 64))
			cond_resched();
	}
}

/* Module exit: no context is left, so no new orphan can appear. */
void vkv_orphans_exit(void)
{
	struct vkv_orphan *o, *tmp;

	spin_lock(&vkv_orphans_lock);
	vkv_orphans_closed = true;
	spin_unlock(&vkv_orphans_lock);
	cancel_delayed_work_sync(&vkv_orphans_work);
	list_for_each_entry_safe(o, tmp, &vkv_orphans, node) {
		list_del(&o->node);
		vkv_orphan_release(o);
	}
}
