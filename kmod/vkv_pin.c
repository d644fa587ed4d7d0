// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: long-term pinning of user ranges.
 *
 * Charging. A pin is charged three times: to the user_struct of the
 * credentials that made it (user->locked_vm, against RLIMIT_MEMLOCK unless
 * CAP_IPC_LOCK, as io_uring charges registered buffers), to the pinning mm's
 * pinned_vm (VmPin, as RDMA's ib_umem_get() does; for the record only) and
 * to the module-wide max_pinned_mb. The limit is checked on the user, not
 * the mm, because a pin belongs to the context and outlives the task that
 * made it: any task holding the descriptor can pin, so children pinning
 * through an inherited descriptor and exiting left pins charged to dead
 * mms, and a per-mm limit bounded nothing. The user's charge lasts as long
 * as the pin, whoever releases it.
 *
 * Pages. Each pin of a small page adds 1024 to its refcount; past 2^31 GUP
 * WARNs and refuses that page to everyone, and ~2.1M pins of one page get
 * there. So a context pins a small page at most once (ctx->pin_pfns), and
 * no pin takes a page whose refcount is already above VKV_PIN_REF_MAX.
 * Large folios (pool chunks, THP) gain 1 per pin: 2^31 pins of them would
 * be 8 TiB charged, far past max_pinned_mb, so they are not tracked (and
 * overlapping pins of a pool stay possible). The zero page is not tracked
 * either: untouched memory maps it everywhere, and 6.5+ does not even
 * count its pins; the refcount bound covers it on older kernels.
 *
 * Long-term write pins of shared mappings of files with writeback are
 * refused on every kernel (6.5+ refuses them in GUP itself, io_uring
 * everywhere): writeback would clean pages that keep being written behind
 * the file system's back.
 *
 * Handles. A new pin's handle is published in ctx->pins marked
 * VKV_PIN_PENDING until VKV_IOC_PIN has copied it back to the caller;
 * VKV_IOC_UNPIN treats a pending handle as unknown. So when the copy fails
 * and the ioctl undoes its pin, the handle is still its own: no other
 * thread can have unpinned it and been given it again for another pin.
 *
 * No vkv lock is held while pinning: pin_user_pages_fast() may fault on a
 * vkv pool mapping, whose fault handler takes ctx->lock.
 */
#include <linux/backing-dev.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>

#include "vkv_internal.h"

#define VKV_PIN_BATCH 4096	/* pages per pin_user_pages_fast() call */
#define VKV_PIN_REF_MAX BIT(30)	/* refcounts overflow at 2^31 */
#define VKV_PIN_PENDING XA_MARK_1	/* XA_MARK_0 tracks free ids */

struct vkv_upin {
	struct page **pages;
	unsigned long npages;
	struct mm_struct *mm;		/* mmgrab()bed: whose pinned_vm we charged */
	struct user_struct *user;	/* get_uid()ed: whose locked_vm we charged */
	bool write;
};

static void vkv_uncharge(struct user_struct *user, struct mm_struct *mm,
			 unsigned long npages)
{
	atomic_long_sub(npages, &user->locked_vm);
	atomic64_sub(npages, &mm->pinned_vm);
	atomic64_sub((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes);
}

static int vkv_charge(struct user_struct *user, struct mm_struct *mm,
		      unsigned long npages)
{
	u64 max = (u64)READ_ONCE(vkv_max_pinned_mb) << 20;
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;

	if (atomic64_add_return((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes) > max) {
		atomic64_sub((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes);
		return -ENOMEM;
	}
	if (atomic_long_add_return(npages, &user->locked_vm) > limit &&
	    !capable(CAP_IPC_LOCK)) {
		atomic_long_sub(npages, &user->locked_vm);
		atomic64_sub((s64)npages << PAGE_SHIFT, &vkv_stats.pinned_bytes);
		return -ENOMEM;
	}
	atomic64_add(npages, &mm->pinned_vm);
	return 0;
}

/*
 * Would a long-term write pin bypass the dirty tracking of the file behind
 * this vma? Anonymous memory, shmem (no writeback) and our own pool (no
 * page_mkwrite, no writeback) are fine.
 */
static bool vkv_vma_needs_dirty_tracking(struct vm_area_struct *vma)
{
	const struct vm_operations_struct *ops = vma->vm_ops;

	if (!vma->vm_file || !(vma->vm_flags & VM_SHARED) || ops == &vkv_vm_ops)
		return false;
	if (ops && (ops->page_mkwrite || ops->pfn_mkwrite))
		return true;
	if (vma->vm_flags & VM_PFNMAP)
		return false;
	return mapping_can_writeback(vma->vm_file->f_mapping);
}

/* A clear -EOPNOTSUPP up front, on every kernel (6.5+ would say -EFAULT). */
static int vkv_check_vmas(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	struct vm_area_struct *vma;
	int err = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	for (; start < end; start = vma->vm_end) {
		vma = find_vma(mm, start);
		if (!vma || vma->vm_start >= end)
			break;	/* holes: GUP says -EFAULT */
		if (vkv_vma_needs_dirty_tracking(vma)) {
			err = -EOPNOTSUPP;
			break;
		}
	}
	mmap_read_unlock(mm);
	return err;
}

/* The same test on a pinned page: the vmas may have changed since. */
static bool vkv_page_needs_dirty_tracking(struct page *page)
{
	struct folio *folio = page_folio(page);
	struct address_space *mapping;

	if (folio_test_anon(folio))
		return false;
	mapping = folio_mapping(folio);
	return mapping && mapping_can_writeback(mapping);
}

/* Is the page one whose pins this context counts (see the top)? */
static bool vkv_pin_tracked(struct page *page)
{
	return !folio_test_large(page_folio(page)) &&
	       !is_zero_pfn(page_to_pfn(page));
}

static void vkv_pin_unclaim(struct vkv_ctx *ctx, struct page **pages,
			    unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		if (vkv_pin_tracked(pages[i]))
			xa_erase(&ctx->pin_pfns, page_to_pfn(pages[i]));
		if (!((i + 1) % VKV_PIN_BATCH))
			cond_resched();
	}
}

/* Record freshly pinned pages as pinned by @ctx, or refuse them all. */
static int vkv_pin_claim(struct vkv_ctx *ctx, struct page **pages,
			 unsigned long n, bool write)
{
	unsigned long i;
	int err = 0;

	for (i = 0; i < n; i++) {
		struct page *page = pages[i];

		if (write && vkv_page_needs_dirty_tracking(page)) {
			err = -EOPNOTSUPP;
			break;
		}
		if (folio_ref_count(page_folio(page)) > VKV_PIN_REF_MAX) {
			err = -EOVERFLOW;
			break;
		}
		if (!vkv_pin_tracked(page))
			continue;
		err = xa_insert(&ctx->pin_pfns, page_to_pfn(page), xa_mk_value(1),
				GFP_KERNEL_ACCOUNT);
		if (err) {
			if (err == -EBUSY)
				err = -EEXIST;
			break;
		}
	}
	if (err)
		vkv_pin_unclaim(ctx, pages, i);
	return err;
}

static void vkv_unpin_pages(struct page **pages, unsigned long n, bool dirty)
{
	unsigned long i, k;

	/* Millions of pages: let others run between batches. */
	for (i = 0; i < n; i += k) {
		k = min_t(unsigned long, n - i, VKV_PIN_BATCH);
		unpin_user_pages_dirty_lock(pages + i, k, dirty);
		cond_resched();
	}
}

int vkv_pin(struct vkv_ctx *ctx, struct vkv_pin *p)
{
	struct mm_struct *mm = current->mm;
	unsigned long npages, done = 0;
	struct user_struct *user;
	bool write = p->flags & VKV_PIN_WRITE;
	struct vkv_upin *up;
	struct page **pages;
	unsigned int gup;
	u64 end, start;
	u32 id;
	int err;

	/* pin_user_pages_fast() may fault on this very pool. */
	lockdep_assert_not_held(&ctx->lock);
	if (!mm)
		return -EINVAL;
	if (!p->length || check_add_overflow(p->addr, p->length, &end) ||
	    end > TASK_SIZE)
		return -EINVAL;
	start = p->addr & PAGE_MASK;
	end = PAGE_ALIGN(end);
	npages = (end - start) >> PAGE_SHIFT;
	if (write) {
		err = vkv_check_vmas(mm, start, end);
		if (err)
			return err;
	}

	/* Charge first, so that a hostile length allocates nothing. */
	user = get_uid(current_user());
	err = vkv_charge(user, mm, npages);
	if (err) {
		free_uid(user);
		return err;
	}
	err = vkv_user_charge(ctx->user, VKV_USER_PINNED, (u64)npages << PAGE_SHIFT);
	if (err) {
		vkv_uncharge(user, mm, npages);
		free_uid(user);
		return err;
	}

	err = -ENOMEM;
	up = kzalloc(sizeof(*up), GFP_KERNEL);
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!up || !pages)
		goto err_free;

	gup = FOLL_LONGTERM | (write ? FOLL_WRITE : 0);
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
		/* Batch by batch: a repeated page stops the loop early. */
		err = vkv_pin_claim(ctx, pages + done, r, write);
		if (err) {
			unpin_user_pages(pages + done, r);
			goto err_unpin;
		}
		done += r;
		cond_resched();
	}

	up->pages = pages;
	up->npages = npages;
	up->write = write;
	up->mm = mm;
	up->user = user;
	mmgrab(mm);
	xa_lock(&ctx->pins);
	err = __xa_alloc(&ctx->pins, &id, up, XA_LIMIT(1, U32_MAX), GFP_KERNEL);
	if (!err)
		__xa_set_mark(&ctx->pins, id, VKV_PIN_PENDING);
	xa_unlock(&ctx->pins);
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
	vkv_pin_unclaim(ctx, pages, done);
	vkv_unpin_pages(pages, done, false);
err_free:
	kvfree(pages);
	kfree(up);
	vkv_user_uncharge(ctx->user, VKV_USER_PINNED, (u64)npages << PAGE_SHIFT);
	vkv_uncharge(user, mm, npages);
	free_uid(user);
	return err;
}

static void vkv_upin_release(struct vkv_ctx *ctx, struct vkv_upin *up,
			     bool unclaim)
{
	if (unclaim)
		vkv_pin_unclaim(ctx, up->pages, up->npages);
	vkv_unpin_pages(up->pages, up->npages, up->write);
	vkv_uncharge(up->user, up->mm, up->npages);
	vkv_user_uncharge(ctx->user, VKV_USER_PINNED, (u64)up->npages << PAGE_SHIFT);
	atomic64_sub((s64)up->npages << PAGE_SHIFT, &ctx->pinned_bytes);
	atomic64_dec(&vkv_stats.pins);
	free_uid(up->user);
	mmdrop(up->mm);
	kvfree(up->pages);
	kfree(up);
}

/* VKV_IOC_PIN's result reached the caller: the handle is theirs now. */
void vkv_pin_commit(struct vkv_ctx *ctx, u32 handle)
{
	xa_clear_mark(&ctx->pins, handle, VKV_PIN_PENDING);
}

/* VKV_IOC_PIN's result could not be copied back: undo that very pin. */
void vkv_pin_abort(struct vkv_ctx *ctx, u32 handle)
{
	struct vkv_upin *up = xa_erase(&ctx->pins, handle);

	if (!WARN_ON_ONCE(!up))
		vkv_upin_release(ctx, up, true);
}

int vkv_unpin(struct vkv_ctx *ctx, u64 handle)
{
	struct vkv_upin *up = NULL;

	if (!handle || handle > U32_MAX)
		return -ENOENT;
	/* Whoever erases the entry owns it: racing unpins cannot double-free. */
	xa_lock(&ctx->pins);
	if (!xa_get_mark(&ctx->pins, handle, VKV_PIN_PENDING))
		up = __xa_erase(&ctx->pins, handle);
	xa_unlock(&ctx->pins);
	if (!up)
		return -ENOENT;
	vkv_upin_release(ctx, up, true);
	return 0;
}

/* At release: no ioctl is running on the context any more. */
void vkv_unpin_all(struct vkv_ctx *ctx)
{
	struct vkv_upin *up;
	unsigned long id;

	xa_for_each(&ctx->pins, id, up) {
		if (xa_erase(&ctx->pins, id) == up)
			vkv_upin_release(ctx, up, false);
		cond_resched();
	}
	/* Unclaimed wholesale: its entries are values, nothing to free. */
	xa_destroy(&ctx->pin_pfns);
}
