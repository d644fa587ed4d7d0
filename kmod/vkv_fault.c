// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: page faults on pool mappings. See vkv_internal.h for the lock
 * order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/version.h>

#include "vkv_internal.h"

/* Insert the chunk's other pages that fall inside @vma: one fault per chunk. */
static void vkv_map_around(struct vm_area_struct *vma, struct vkv_pool *pool,
			   struct vkv_chunk *c, unsigned long idx, pgoff_t skip)
{
	unsigned long i, n = 1UL << pool->chunk_order;
	pgoff_t first = idx << pool->chunk_order;

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

/* Drop the lock the fault came in with, before returning VM_FAULT_RETRY. */
static void vkv_release_fault_lock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	release_fault_lock(vmf);
#else
	/* Before 6.7, faults on file mappings never run under the VMA lock. */
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

/*
 * Page fault on a pool mapping: make the chunk resident (reading a swapped
 * chunk back and checking its CRC32C; SIGBUS if that fails) and map it.
 */
static vm_fault_t vkv_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vkv_ctx *ctx = vma->vm_file->private_data;
	struct vkv_pool *pool;
	struct vkv_chunk *c;
	unsigned long idx;
	vm_fault_t ret;
	int err;

	mutex_lock(&ctx->lock);
	pool = ctx->pool;
	if (!pool || vmf->pgoff >= (pool->size >> PAGE_SHIFT)) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	idx = vmf->pgoff >> pool->chunk_order;
	c = &pool->chunks[idx];
	if (c->state == VKV_CHUNK_SWAPPED &&
	    fault_flag_allow_retry_first(vmf->flags) &&
	    !(vmf->flags & FAULT_FLAG_RETRY_NOWAIT)) {
		/*
		 * Read the chunk back without holding mmap_lock (other threads
		 * may mmap/munmap meanwhile), then have the fault retried: it
		 * finds the chunk resident. Only once per fault (TRIED), so a
		 * chunk swapped out again at once cannot starve the access.
		 */
		struct file *file = get_file(vma->vm_file);

		mutex_unlock(&ctx->lock);
		vkv_release_fault_lock(vmf);
		mutex_lock(&ctx->lock);
		if (c->state == VKV_CHUNK_SWAPPED &&
		    !vkv_chunk_swap_in(ctx, idx, c))
			atomic64_inc(&vkv_stats.fault_in_total);
		mutex_unlock(&ctx->lock);
		fput(file);
		return VM_FAULT_RETRY;
	}
	if (c->state != VKV_CHUNK_RESIDENT) {
		bool was_swapped = c->state == VKV_CHUNK_SWAPPED;

		err = vkv_chunk_swap_in(ctx, idx, c);
		if (err) {
			ret = err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
			goto out;
		}
		if (was_swapped)
			atomic64_inc(&vkv_stats.fault_in_total);
	} else {
		list_move_tail(&c->lru, &ctx->lru);
	}
	ret = vmf_insert_page(vma, vmf->address,
			      vkv_chunk_page(c, vmf->pgoff & ((1UL << pool->chunk_order) - 1)));
	if (ret == VM_FAULT_NOPAGE)
		vkv_map_around(vma, pool, c, idx, vmf->pgoff);
out:
	mutex_unlock(&ctx->lock);
	return ret;
}

const struct vm_operations_struct vkv_vm_ops = {
	.fault = vkv_fault,
};
