// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: long-term pinning of user ranges, charged the way RDMA's
 * ib_umem_get() does: to the caller's mm->pinned_vm against RLIMIT_MEMLOCK
 * (unless CAP_IPC_LOCK), and to the module-wide max_pinned_mb.
 *
 * No vkv lock is held while pinning: pin_user_pages_fast() may fault on a
 * vkv pool mapping, whose fault handler takes ctx->lock.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "vkv_internal.h"

#define VKV_PIN_BATCH 4096	/* pages per pin_user_pages_fast() call */

struct vkv_upin {
	struct page **pages;
	unsigned long npages;
	struct mm_struct *mm;	/* mmgrab()bed: whose pinned_vm we charged */
	bool write;
};

static void vkv_uncharge(struct mm_struct *mm, unsigned long npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
	atomic64_sub((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes);
}

int vkv_pin(struct vkv_ctx *ctx, struct vkv_pin *p)
{
	struct mm_struct *mm = current->mm;
	unsigned long npages, done = 0;
	u64 end, start, max;
	struct vkv_upin *up;
	struct page **pages;
	unsigned int gup;
	u32 id;
	int err;

	if (!mm)
		return -EINVAL;
	if (!p->length || check_add_overflow(p->addr, p->length, &end) ||
	    end > TASK_SIZE)
		return -EINVAL;
	start = p->addr & PAGE_MASK;
	end = PAGE_ALIGN(end);
	npages = (end - start) >> PAGE_SHIFT;

	/* Charge first, so that a hostile length allocates nothing. */
	max = (u64)READ_ONCE(vkv_max_pinned_mb) << 20;
	if (atomic64_add_return((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes) > max) {
		atomic64_sub((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes);
		return -ENOMEM;
	}
	if (atomic64_add_return(npages, &mm->pinned_vm) >
	    (rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT) && !capable(CAP_IPC_LOCK)) {
		vkv_uncharge(mm, npages);
		return -ENOMEM;
	}
	err = vkv_user_charge(ctx->user, VKV_USER_PINNED, (u64)npages << PAGE_SHIFT);
	if (err) {
		vkv_uncharge(mm, npages);
		return err;
	}

	err = -ENOMEM;
	up = kzalloc(sizeof(*up), GFP_KERNEL);
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!up || !pages)
		goto err_free;

	gup = FOLL_LONGTERM | ((p->flags & VKV_PIN_WRITE) ? FOLL_WRITE : 0);
	while (done < npages) {
		int n = min_t(unsigned long, npages - done, VKV_PIN_BATCH);
		int r;

		if (fatal_signal_pending(current)) {
			err = -EINTR;
			goto err_unpin;
		}
		/* Partial pins happen (e.g. at a vma boundary): loop. */
		r = pin_user_pages_fast(start + (done << PAGE_SHIFT), n, gup,
					pages + done);
		if (r <= 0) {
			err = r ? r : -EFAULT;
			goto err_unpin;
		}
		done += r;
		cond_resched();
	}

	up->pages = pages;
	up->npages = npages;
	up->write = gup & FOLL_WRITE;
	up->mm = mm;
	mmgrab(mm);
	err = xa_alloc(&ctx->pins, &id, up, XA_LIMIT(1, U32_MAX), GFP_KERNEL);
	if (err) {
		mmdrop(mm);
		goto err_unpin;
	}
	atomic64_add((s64)npages << PAGE_SHIFT, &ctx->pinned_bytes);
	atomic64_inc(&vkv_stats.pins);
	p->handle = id;
	p->npages = npages;
	return 0;

err_unpin:
	unpin_user_pages(pages, done);
err_free:
	kvfree(pages);
	kfree(up);
	vkv_user_uncharge(ctx->user, VKV_USER_PINNED, (u64)npages << PAGE_SHIFT);
	vkv_uncharge(mm, npages);
	return err;
}

static void vkv_upin_release(struct vkv_ctx *ctx, struct vkv_upin *up)
{
	unpin_user_pages_dirty_lock(up->pages, up->npages, up->write);
	vkv_uncharge(up->mm, up->npages);
	vkv_user_uncharge(ctx->user, VKV_USER_PINNED, (u64)up->npages << PAGE_SHIFT);
	atomic64_sub((s64)up->npages << PAGE_SHIFT, &ctx->pinned_bytes);
	atomic64_dec(&vkv_stats.pins);
	mmdrop(up->mm);
	kvfree(up->pages);
	kfree(up);
}

int vkv_unpin(struct vkv_ctx *ctx, u64 handle)
{
	struct vkv_upin *up;

	if (!handle || handle > U32_MAX)
		return -ENOENT;
	/* Whoever erases the entry owns it: racing unpins cannot double-free. */
	up = xa_erase(&ctx->pins, handle);
	if (!up)
		return -ENOENT;
	vkv_upin_release(ctx, up);
	return 0;
}

void vkv_unpin_all(struct vkv_ctx *ctx)
{
	struct vkv_upin *up;
	unsigned long id;

	xa_for_each(&ctx->pins, id, up) {
		if (xa_erase(&ctx->pins, id) == up)
			vkv_upin_release(ctx, up);
	}
}
