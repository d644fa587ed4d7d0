// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: page faults on pool mappings. See vkv_internal.h for the lock
 * order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>

#include "vkv_compat.h"
#include "vkv_internal.h"

/*
 * Insert the chunk's other pages that fall inside @vma: one fault per chunk.
 * Under ctx->lock, like every PTE of a pool (swap-out relies on it).
 */
static void vkv_map_around(struct vm_area_struct *vma, struct vkv_ctx *ctx,
			   struct vkv_chunk *c, unsigned long idx, pgoff_t skip)
{
	unsigned long i, n = 1UL << ctx->pool->chunk_order;
	pgoff_t first = idx << ctx->pool->chunk_order;

	lockdep_assert_held(&ctx->lock);
	for (i = 0; i < n; i++) {
		pgoff_t pg = first + i;
		unsigned long addr;

		if (pg == skip || pg < vma->vm_pgoff)
			continue;
		addr = vma->vm_start + ((pg - vma->vm_pgoff) << PAGE_SHIFT);
		if (addr >= vma->vm_end)
			break;
		/* -EBUSY (already mapped) and the rest are harmless here. */
		vm_insert_page(vma, addr, vkv_chunk_page(c, i));
	}
}

/*
 * How long a fault waits for a chunk's write to finish before it takes the
 * chunk back. The writer may be waiting for the backing file's i_rwsem held
 * by the faulting task itself (write(2) from the pool into that file), so
 * the wait must end on its own. Otherwise it only saves the swap-out: long
 * enough for a 2 MiB write on a slow disk (or a debug kernel), short enough
 * not to matter when the write cannot finish before the fault does.
 */
#define VKV_WRITE_WAIT	HZ

/* The fault was killed while waiting: give up the access. */
static vm_fault_t vkv_fault_killed(struct vm_fault *vmf)
{
	if ((vmf->flags & FAULT_FLAG_ALLOW_RETRY) &&
	    !(vmf->flags & FAULT_FLAG_RETRY_NOWAIT)) {
		/* The arch handler sees the fatal signal and does not retry. */
		vkv_compat_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}
	return VM_FAULT_SIGBUS;
}

/*
 * The chunk is not resident and the fault may be retried: with mmap_lock
 * (and ctx->lock) dropped, make it resident or wait for whoever does, then
 * have the fault retried (it finds the chunk resident, or does the rest
 * itself with FAULT_FLAG_TRIED). Other threads may mmap/munmap meanwhile;
 * the file reference keeps the context.
 */
static vm_fault_t vkv_fault_retry(struct vm_fault *vmf, struct vkv_ctx *ctx,
				  unsigned long idx, struct vkv_chunk *c)
{
	struct file *file = get_file(vmf->vma->vm_file);
	bool swapped;

	lockdep_assert_held(&ctx->lock);
	mutex_unlock(&ctx->lock);
	vkv_compat_release_fault_lock(vmf);
	switch (READ_ONCE(c->state)) {
	case VKV_CHUNK_WRITING:
		wait_event_killable_timeout(ctx->io_wq,
					    READ_ONCE(c->state) != VKV_CHUNK_WRITING,
					    VKV_WRITE_WAIT);
		break;
	case VKV_CHUNK_LOADING:
		wait_event_killable(ctx->io_wq, READ_ONCE(c->state) != VKV_CHUNK_LOADING);
		break;
	default:
		if (mutex_lock_killable(&ctx->lock))
			break;
		swapped = c->state == VKV_CHUNK_SWAPPED;
		if ((swapped || c->state == VKV_CHUNK_EMPTY) &&
		    !vkv_chunk_load(ctx, idx, c, true) && swapped)
			atomic64_inc(&vkv_stats.fault_in_total);
		mutex_unlock(&ctx->lock);
		break;
	}
	fput(file);
	return VM_FAULT_RETRY;
}

/*
 * Page fault on a pool mapping: make the chunk resident (reading a swapped
 * chunk back and checking its CRC32C; SIGBUS if that fails) and map it.
 * See vkv_internal.h for why it never waits for a backing-file write for
 * long and never reads the file with a vkv lock held.
 */
static vm_fault_t vkv_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vkv_ctx *ctx = vma->vm_file->private_data;
	bool may_retry = fault_flag_allow_retry_first(vmf->flags);
	struct vkv_pool *pool;
	struct vkv_chunk *c;
	unsigned long idx;
	vm_fault_t ret;
	bool swapped;
	int err;

	if (mutex_lock_killable(&ctx->lock))
		return vkv_fault_killed(vmf);
	pool = ctx->pool;
	if (!pool || vmf->pgoff >= (pool->size >> PAGE_SHIFT)) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	idx = vmf->pgoff >> pool->chunk_order;
	c = &pool->chunks[idx];
	for (;;) {
		if (c->state == VKV_CHUNK_RESIDENT) {
			list_move_tail(&c->lru, &ctx->lru);
			break;
		}
		if (c->state == VKV_CHUNK_WRITING && (!may_retry || c->aborted)) {
			/* Take it back: the writer still holds its pages. */
			c->aborted = true;
			break;
		}
		if (may_retry) {
			if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT) {
				ret = VM_FAULT_RETRY;
				goto out;
			}
			return vkv_fault_retry(vmf, ctx, idx, c);
		}
		/* Cannot drop mmap_lock: the read path does not need it. */
		if (c->state == VKV_CHUNK_LOADING) {
			if (vkv_chunk_wait_io(ctx, c)) {
				ret = VM_FAULT_SIGBUS;
				goto out;
			}
			continue;
		}
		swapped = c->state == VKV_CHUNK_SWAPPED;
		err = vkv_chunk_load(ctx, idx, c, true);
		if (err) {
			/* Including -ENOMEM after the OOM killer found nobody. */
			ret = VM_FAULT_SIGBUS;
			goto out;
		}
		if (swapped)
			atomic64_inc(&vkv_stats.fault_in_total);
	}
	ret = vmf_insert_page(vma, vmf->address,
			      vkv_chunk_page(c, vmf->pgoff & ((1UL << pool->chunk_order) - 1)));
	if (ret == VM_FAULT_NOPAGE) {
		vkv_map_around(vma, ctx, c, idx, vmf->pgoff);
		/* The process's VmRSS counts the chunk from now on. */
		vkv_compat_publish_rss(vma->vm_mm);
	}
out:
	mutex_unlock(&ctx->lock);
	return ret;
}

const struct vm_operations_struct vkv_vm_ops = {
	.fault = vkv_fault,
};
