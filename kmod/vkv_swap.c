// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: swap of pool chunks to the context's backing file (swap-out,
 * read back, discard, the range ioctls) and the backing file itself. See
 * vkv_internal.h for the lock order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/version.h>

#include "vkv_internal.h"

/*
 * Is any page of the chunk pinned (pin_user_pages, cuMemHostRegister) or,
 * once every PTE is zapped, referenced by anyone but the pool?
 */
static bool vkv_chunk_busy(struct vkv_pool *pool, struct vkv_chunk *c,
			   bool zapped)
{
	unsigned long i, n = vkv_nr_pieces(pool, c);

	for (i = 0; i < n; i++) {
		struct folio *folio = page_folio(vkv_piece(c, i));

		if (folio_maybe_dma_pinned(folio))
			return true;
		if (zapped && folio_ref_count(folio) != 1)
			return true;
	}
	return false;
}

static u32 vkv_chunk_crc(struct vkv_pool *pool, struct vkv_chunk *c)
{
	unsigned long i, n = 1UL << pool->chunk_order;
	u32 crc = ~0U;

	for (i = 0; i < n; i++) {
		void *p = kmap_local_page(vkv_chunk_page(c, i));

		crc = crc32c(crc, p, PAGE_SIZE);
		kunmap_local(p);
	}
	return ~crc;
}

/* Read or write a whole resident chunk at its place in the backing file. */
static int vkv_chunk_io(struct vkv_ctx *ctx, unsigned long idx,
			struct vkv_chunk *c, bool write)
{
	struct vkv_pool *pool = ctx->pool;
	unsigned long i, n = vkv_nr_pieces(pool, c);
	size_t piece_bytes = PAGE_SIZE << c->piece_order;
	struct bio_vec one, *bv = &one;
	struct file *f = ctx->backing;
	struct iov_iter iter;
	loff_t pos;
	int err = 0;

	pos = ctx->backing_off + ((loff_t)idx << (pool->chunk_order + PAGE_SHIFT));
	if (n > 1) {
		bv = kmalloc_array(n, sizeof(*bv), GFP_KERNEL | __GFP_NOWARN);
		if (!bv)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		bv[i].bv_page = vkv_piece(c, i);
		bv[i].bv_len = piece_bytes;
		bv[i].bv_offset = 0;
	}
	iov_iter_bvec(&iter, write ? ITER_SOURCE : ITER_DEST, bv, n,
		      vkv_chunk_bytes(pool));
	while (iov_iter_count(&iter)) {
		ssize_t r;

		if (write) {
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 7, 0)
			file_start_write(f);
			r = vfs_iter_write(f, &iter, &pos, 0);
			file_end_write(f);
#else
			r = vfs_iter_write(f, &iter, &pos, 0);
#endif
		} else {
			r = vfs_iter_read(f, &iter, &pos, 0);
		}
		if (r < 0) {
			err = r;
			break;
		}
		if (r == 0) {	/* end of file or no progress */
			err = -EIO;
			break;
		}
	}
	if (bv != &one)
		kfree(bv);
	if (err)
		atomic64_inc(&vkv_stats.io_errors);
	return err;
}

/*
 * Make a chunk resident: read a swapped chunk back and check its CRC32C, or
 * give a discarded chunk fresh zeroed memory. Called under ctx->lock.
 */
int vkv_chunk_swap_in(struct vkv_ctx *ctx, unsigned long idx,
			     struct vkv_chunk *c)
{
	struct vkv_pool *pool = ctx->pool;
	int err;

	if (c->state == VKV_CHUNK_RESIDENT)
		return 0;
	if (c->state == VKV_CHUNK_SWAPPED && WARN_ON_ONCE(!ctx->backing))
		return -EIO;
	/* A swapped chunk is read back whole (or freed on error): no zeroing. */
	err = vkv_chunk_alloc(pool, c, c->state != VKV_CHUNK_SWAPPED);
	if (err)
		return err;
	if (c->state == VKV_CHUNK_SWAPPED) {
		err = vkv_chunk_io(ctx, idx, c, false);
		if (!err && vkv_chunk_crc(pool, c) != c->crc) {
			atomic64_inc(&vkv_stats.checksum_errors);
			pr_warn_ratelimited("checksum mismatch reading chunk %lu back\n",
					    idx);
			err = -EBADMSG;
		}
		if (err) {
			vkv_chunk_free_pages(pool, c);
			return err;
		}
		pool->nr_swapped--;
		atomic64_sub(vkv_chunk_bytes(pool), &vkv_stats.swapped_bytes);
		atomic64_inc(&vkv_stats.swap_in_total);
	} else {
		pool->nr_empty--;
	}
	c->state = VKV_CHUNK_RESIDENT;
	list_add_tail(&c->lru, &ctx->lru);
	vkv_account_resident(ctx, 1);
	return 0;
}

/*
 * Take a chunk out of memory: write it to the backing file (unless
 * @discard), zap every mapping of it, free it. Called under ctx->lock,
 * which keeps faults on this context out until the chunk is gone.
 */
int vkv_chunk_evict(struct vkv_ctx *ctx, unsigned long idx,
			   struct vkv_chunk *c, bool discard)
{
	struct vkv_pool *pool = ctx->pool;
	size_t bytes = vkv_chunk_bytes(pool);
	int err, tries;

	if (c->state == VKV_CHUNK_EMPTY)
		return 0;
	if (c->state == VKV_CHUNK_SWAPPED) {
		if (!discard)
			return 0;
		c->state = VKV_CHUNK_EMPTY;
		pool->nr_swapped--;
		pool->nr_empty++;
		atomic64_sub(bytes, &vkv_stats.swapped_bytes);
		atomic64_inc(&vkv_stats.discard_total);
		return 0;
	}
	if (!discard && !ctx->backing)
		return -ENODEV;
	if (vkv_chunk_busy(pool, c, false))
		goto busy;
	unmap_mapping_range(ctx->inode->i_mapping, (loff_t)idx * bytes, bytes, 1);
	/*
	 * GUP-fast does not take our lock: look again now the PTEs are gone.
	 * A concurrent munmap() holds its references until its TLB flush is
	 * done (tlb_finish_mmu), so give transient references a moment.
	 */
	for (tries = 0; vkv_chunk_busy(pool, c, true); tries++) {
		if (tries == 10 || vkv_chunk_busy(pool, c, false))
			goto busy;
		usleep_range(1000, 2000);
	}
	if (!discard) {
		u32 crc = vkv_chunk_crc(pool, c);

		err = vkv_chunk_io(ctx, idx, c, true);
		if (err)
			return err;	/* still resident; accesses fault it back in */
		c->crc = crc;
	}
	list_del(&c->lru);
	vkv_account_resident(ctx, -1);
	vkv_chunk_free_pages(pool, c);
	if (discard) {
		c->state = VKV_CHUNK_EMPTY;
		pool->nr_empty++;
		atomic64_inc(&vkv_stats.discard_total);
	} else {
		c->state = VKV_CHUNK_SWAPPED;
		pool->nr_swapped++;
		atomic64_add(bytes, &vkv_stats.swapped_bytes);
		atomic64_inc(&vkv_stats.swap_out_total);
	}
	return 0;
busy:
	atomic64_inc(&vkv_stats.busy_total);
	return -EBUSY;
}

/* Under ctx->lock. */
void vkv_drop_backing(struct vkv_ctx *ctx)
{
	if (!ctx->backing)
		return;
	if (ctx->pool)
		atomic64_sub((s64)ctx->pool->nr_resident * vkv_chunk_bytes(ctx->pool),
			     &vkv_stats.backed_resident_bytes);
	fput(ctx->backing);
	ctx->backing = NULL;
	ctx->backing_off = 0;
	ctx->backing_direct = false;
}

int vkv_set_backing(struct vkv_ctx *ctx, const struct vkv_backing *b)
{
	struct file *f, *df;
	bool direct;
	u64 end;
	int err = 0;

	if (b->flags & ~VKV_BACKING_BUFFERED)
		return -EINVAL;
	if (b->fd == -1) {
		if (b->flags || b->offset)
			return -EINVAL;
		mutex_lock(&ctx->lock);
		if (ctx->pool && ctx->pool->nr_swapped)
			err = -EBUSY;
		else
			vkv_drop_backing(ctx);
		mutex_unlock(&ctx->lock);
		return err;
	}
	if (b->fd < 0)
		return -EBADF;
	if ((b->offset & 4095) || b->offset > (u64)LLONG_MAX)
		return -EINVAL;

	f = fget(b->fd);
	if (!f)
		return -EBADF;
	if (!S_ISREG(file_inode(f)->i_mode)) {
		err = -EINVAL;
		goto out_put;
	}
	if ((f->f_mode & (FMODE_READ | FMODE_WRITE)) != (FMODE_READ | FMODE_WRITE)) {
		err = -EBADF;
		goto out_put;
	}
	if (!(f->f_mode & FMODE_CAN_READ) || !(f->f_mode & FMODE_CAN_WRITE) ||
	    (f->f_flags & O_APPEND)) {
		err = -EINVAL;
		goto out_put;
	}
	direct = f->f_flags & O_DIRECT;
	if (!direct && !(b->flags & VKV_BACKING_BUFFERED)) {
		/* Our own open file, with O_DIRECT if the filesystem has it. */
		df = dentry_open(&f->f_path, O_RDWR | O_LARGEFILE | O_DIRECT,
				 f->f_cred);
		if (!IS_ERR(df)) {
			fput(f);
			f = df;
			direct = true;
		}
	}

	mutex_lock(&ctx->lock);
	if (!ctx->pool) {
		err = -ENXIO;
	} else if (check_add_overflow(b->offset, ctx->pool->size, &end) ||
		   end > (u64)LLONG_MAX) {
		err = -EINVAL;
	} else if (ctx->pool->nr_swapped) {
		err = -EBUSY;	/* their data lives in the current file */
	} else {
		vkv_drop_backing(ctx);
		ctx->backing = f;
		ctx->backing_off = b->offset;
		ctx->backing_direct = direct;
		atomic64_add((s64)ctx->pool->nr_resident * vkv_chunk_bytes(ctx->pool),
			     &vkv_stats.backed_resident_bytes);
		f = NULL;
	}
	mutex_unlock(&ctx->lock);
out_put:
	if (f)
		fput(f);
	return err;
}

int vkv_range_op(struct vkv_ctx *ctx, unsigned int cmd, struct vkv_range *r)
{
	struct vkv_pool *pool;
	unsigned long idx, end;
	size_t bytes;
	int err = 0;

	/* The pool's geometry never changes once it exists. */
	mutex_lock(&ctx->lock);
	pool = ctx->pool;
	mutex_unlock(&ctx->lock);
	if (!pool)
		return -ENXIO;
	bytes = vkv_chunk_bytes(pool);
	if ((r->offset | r->length) & (bytes - 1) || r->offset > pool->size ||
	    r->length > pool->size - r->offset)
		return -EINVAL;

	idx = r->offset / bytes;
	end = idx + r->length / bytes;
	for (; idx < end; idx++) {
		struct vkv_chunk *c = &pool->chunks[idx];

		if (fatal_signal_pending(current))
			return -EINTR;
		if (mutex_lock_killable(&ctx->lock))
			return -EINTR;
		switch (cmd) {
		case VKV_IOC_SWAP_OUT:
			err = vkv_chunk_evict(ctx, idx, c, false);
			break;
		case VKV_IOC_DISCARD:
			err = vkv_chunk_evict(ctx, idx, c, true);
			break;
		default:
			if (c->state == VKV_CHUNK_SWAPPED)
				atomic64_inc(&vkv_stats.prefetch_total);
			err = vkv_chunk_swap_in(ctx, idx, c);
			break;
		}
		mutex_unlock(&ctx->lock);
		if (err)
			return err;
		r->done += bytes;
		cond_resched();
	}
	return 0;
}
