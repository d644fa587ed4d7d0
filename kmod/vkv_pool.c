// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: the host pool, its page faults, swap to the backing file and the
 * shrinker. Every function here that touches a chunk runs under ctx->lock;
 * see vkv_internal.h for the lock order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/version.h>
#include <linux/workqueue.h>

#include "vkv_internal.h"

static inline size_t vkv_chunk_bytes(const struct vkv_pool *pool)
{
	return PAGE_SIZE << pool->chunk_order;
}

static inline unsigned long vkv_nr_pieces(const struct vkv_pool *pool,
					  const struct vkv_chunk *c)
{
	return 1UL << (pool->chunk_order - c->piece_order);
}

static inline struct page *vkv_piece(const struct vkv_chunk *c, unsigned long i)
{
	return c->pieces ? c->pieces[i] : c->head;
}

/* Page @i (0 .. pages per chunk - 1) of a resident chunk. */
static struct page *vkv_chunk_page(const struct vkv_chunk *c, unsigned long i)
{
	unsigned long mask = (1UL << c->piece_order) - 1;

	return nth_page(vkv_piece(c, i >> c->piece_order), i & mask);
}

/*
 * Allocate a chunk's memory on the pool's node (zeroed unless the caller
 * overwrites every byte, as a swap-in does): one compound page of
 * the chunk's order if possible, else pieces of ever smaller orders (counted
 * as a fallback). Compound pages keep a refcount on every tail page's head,
 * which vm_insert_page() needs.
 */
static int vkv_chunk_alloc(struct vkv_pool *pool, struct vkv_chunk *c, bool zero)
{
	const gfp_t base = GFP_KERNEL_ACCOUNT | __GFP_THISNODE | __GFP_NOWARN |
			   (zero ? __GFP_ZERO : 0);
	int order = pool->chunk_order;
	int o;

	for (o = order; o >= 0; o--) {
		unsigned long n = 1UL << (order - o), i;
		gfp_t gfp = base | (o ? __GFP_COMP | __GFP_NORETRY : __GFP_RETRY_MAYFAIL);
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
			if (o != order) {
				pool->nr_fallback++;
				atomic64_inc(&vkv_stats.fallback_chunks);
			}
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

static void vkv_chunk_free_pages(struct vkv_pool *pool, struct vkv_chunk *c)
{
	unsigned long i, n = vkv_nr_pieces(pool, c);

	/* Drops our reference; a page someone still holds lives on with them. */
	for (i = 0; i < n; i++)
		__free_pages(vkv_piece(c, i), c->piece_order);
	kvfree(c->pieces);
	c->pieces = NULL;
	c->head = NULL;
}

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

static void vkv_account_resident(struct vkv_ctx *ctx, long delta_chunks)
{
	s64 bytes = delta_chunks * (s64)vkv_chunk_bytes(ctx->pool);

	ctx->pool->nr_resident += delta_chunks;
	atomic64_add(bytes, &vkv_stats.pool_bytes);
	if (ctx->backing)
		atomic64_add(bytes, &vkv_stats.backed_resident_bytes);
}

/*
 * Make a chunk resident: read a swapped chunk back and check its CRC32C, or
 * give a discarded chunk fresh zeroed memory. Called under ctx->lock.
 */
static int vkv_chunk_swap_in(struct vkv_ctx *ctx, unsigned long idx,
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
static int vkv_chunk_evict(struct vkv_ctx *ctx, unsigned long idx,
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
		err = vkv_chunk_alloc(pool, c, true);
		if (err) {
			/* Only chunks 0 .. i-1 hold memory. */
			c->state = VKV_CHUNK_EMPTY;
			for (; i < pool->nr_chunks; i++)
				pool->chunks[i].state = VKV_CHUNK_EMPTY;
			goto err_free;
		}
		c->state = VKV_CHUNK_RESIDENT;
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
	}
	pi->has_backing = !!ctx->backing;
	pi->backing_direct = ctx->backing_direct;
	mutex_unlock(&ctx->lock);
	pi->pinned_bytes = atomic64_read(&ctx->pinned_bytes);
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
 * lock, e.g. in the middle of our own swap-in. The worker holds no such lock
 * of its own while it waits for them.
 */
static struct workqueue_struct *vkv_wq;
static struct work_struct vkv_shrink_work;
static atomic_long_t vkv_shrink_goal;	/* pages asked for, not yet freed */

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

/* Under ctx->lock. Swaps out up to @goal pages' worth of chunks. */
static unsigned long vkv_shrink_ctx(struct vkv_ctx *ctx, unsigned long goal)
{
	struct vkv_pool *pool = ctx->pool;
	s64 floor = (s64)READ_ONCE(vkv_min_resident_mb) << 20;
	unsigned long tries, freed = 0;
	size_t bytes;

	if (!pool || !ctx->backing)
		return 0;
	bytes = vkv_chunk_bytes(pool);
	for (tries = pool->nr_resident; tries && freed < goal; tries--) {
		struct vkv_chunk *c;
		int err;

		if (!READ_ONCE(vkv_shrinker_enabled) || list_empty(&ctx->lru) ||
		    atomic64_read(&vkv_stats.pool_bytes) - (s64)bytes < floor)
			break;
		c = list_first_entry(&ctx->lru, struct vkv_chunk, lru);
		err = vkv_chunk_evict(ctx, c - pool->chunks, c, false);
		if (err == -EBUSY) {
			list_move_tail(&c->lru, &ctx->lru);
			continue;
		}
		if (err)
			break;
		atomic64_inc(&vkv_stats.shrinker_swap_outs);
		freed += 1UL << pool->chunk_order;
	}
	return freed;
}

static void vkv_shrink_worker(struct work_struct *work)
{
	long goal;

	while ((goal = atomic_long_xchg(&vkv_shrink_goal, 0)) > 0) {
		unsigned long freed = 0;
		struct vkv_ctx *ctx;

		mutex_lock(&vkv_ctxs_lock);
		list_for_each_entry(ctx, &vkv_ctxs, node) {
			if (freed >= goal)
				break;
			mutex_lock(&ctx->lock);
			freed += vkv_shrink_ctx(ctx, goal - freed);
			mutex_unlock(&ctx->lock);
		}
		/* Start with the next context next time. */
		if (!list_empty(&vkv_ctxs))
			list_rotate_left(&vkv_ctxs);
		mutex_unlock(&vkv_ctxs_lock);
		if (!freed)
			break;	/* floor reached, or everything pinned */
		cond_resched();
	}
}

static unsigned long vkv_shrink_scan(struct shrinker *s,
				     struct shrink_control *sc)
{
	unsigned long avail = vkv_shrink_count(s, sc);

	if (!avail)
		return SHRINK_STOP;
	atomic64_inc(&vkv_stats.shrinker_scans);
	if (atomic_long_read(&vkv_shrink_goal) < (long)avail)
		atomic_long_add(min(sc->nr_to_scan, avail), &vkv_shrink_goal);
	queue_work(vkv_wq, &vkv_shrink_work);
	/* Memory comes back asynchronously; nothing was freed here. */
	return SHRINK_STOP;
}

static int vkv_shrinker_register(void);
static void vkv_shrinker_unregister(void);

int vkv_shrinker_init(void)
{
	int err;

	INIT_WORK(&vkv_shrink_work, vkv_shrink_worker);
	vkv_wq = alloc_workqueue("vkv_reclaim", WQ_MEM_RECLAIM | WQ_UNBOUND, 1);
	if (!vkv_wq)
		return -ENOMEM;
	err = vkv_shrinker_register();
	if (err)
		destroy_workqueue(vkv_wq);
	return err;
}

void vkv_shrinker_exit(void)
{
	vkv_shrinker_unregister();
	cancel_work_sync(&vkv_shrink_work);
	destroy_workqueue(vkv_wq);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static struct shrinker *vkv_shrinker;

static int vkv_shrinker_register(void)
{
	vkv_shrinker = shrinker_alloc(0, "vkv");
	if (!vkv_shrinker)
		return -ENOMEM;
	vkv_shrinker->count_objects = vkv_shrink_count;
	vkv_shrinker->scan_objects = vkv_shrink_scan;
	vkv_shrinker->seeks = DEFAULT_SEEKS;
	shrinker_register(vkv_shrinker);
	return 0;
}

static void vkv_shrinker_unregister(void)
{
	shrinker_free(vkv_shrinker);
}
#else
static struct shrinker vkv_shrinker = {
	.count_objects = vkv_shrink_count,
	.scan_objects = vkv_shrink_scan,
	.seeks = DEFAULT_SEEKS,
};

static int vkv_shrinker_register(void)
{
	return register_shrinker(&vkv_shrinker, "vkv");
}

static void vkv_shrinker_unregister(void)
{
	unregister_shrinker(&vkv_shrinker);
}
#endif
