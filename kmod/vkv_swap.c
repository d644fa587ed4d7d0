// SPDX-License-Identifier: GPL-2.0
/*
 * vkv.ko: swap of pool chunks to the context's backing file (swap-out,
 * read back, discard, the range ioctls) and the backing file itself. See
 * vkv_internal.h for the lock order.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/cgroup.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "vkv_compat.h"
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

/*
 * Does anyone but the pool and the page tables hold a reference (a pipe
 * after vmsplice, a GUP caller)? Then zapping the chunk would only cost its
 * owner faults: the shrinker skips it without touching it. Racy, as a hint
 * should be; the check after the zap decides.
 */
static bool vkv_chunk_referenced(struct vkv_pool *pool, struct vkv_chunk *c)
{
	unsigned long i, n = vkv_nr_pieces(pool, c);

	for (i = 0; i < n; i++) {
		struct folio *folio = page_folio(vkv_piece(c, i));

		if (folio_ref_count(folio) - vkv_compat_folio_mapcount(folio) != 1)
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

/*
 * Read or write a whole chunk at its place in the backing file, with the
 * registrant's credentials, holding no vkv lock: the chunk is LOADING or
 * WRITING, which keeps the backing file registered (see vkv_set_backing).
 * Reads go through our buffered file (no i_rwsem, see vkv_internal.h).
 */
static int vkv_chunk_io(struct vkv_ctx *ctx, unsigned long idx,
			struct vkv_chunk *c, bool write)
{
	struct vkv_pool *pool = ctx->pool;
	unsigned long i, n = vkv_nr_pieces(pool, c);
	size_t piece_bytes = PAGE_SIZE << c->piece_order;
	struct bio_vec one, *bv = &one;
	struct file *f = write ? ctx->backing : ctx->backing_rd;
	struct cgroup_subsys_state *blkcg;
	const struct cred *old_cred;
	struct iov_iter iter;
	loff_t pos, start;
	int err = 0;

	lockdep_assert_not_held(&ctx->lock);
	start = ctx->backing_off + ((loff_t)idx << (pool->chunk_order + PAGE_SHIFT));
	pos = start;
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
	old_cred = override_creds(ctx->backing_cred);
	/* A task's own I/O goes to its own group; a worker's to the owner's. */
	blkcg = (current->flags & PF_KTHREAD) ? ctx->backing_blkcg : NULL;
	if (blkcg)
		kthread_associate_blkcg(blkcg);
	while (iov_iter_count(&iter)) {
		ssize_t r;

		if (write)
			r = vkv_compat_iter_write(f, &iter, &pos);
		else
			r = vfs_iter_read(f, &iter, &pos, 0);
		if (r < 0) {
			err = r;
			break;
		}
		if (r == 0) {	/* end of file or no progress */
			err = -EIO;
			break;
		}
	}
	if (blkcg)
		kthread_associate_blkcg(NULL);
	revert_creds(old_cred);
	/*
	 * With direct writes the page cache is only the read path's bounce
	 * buffer: do not keep a second copy of the chunk around.
	 */
	if (!write && ctx->backing_direct)
		invalidate_mapping_pages(f->f_mapping, start >> PAGE_SHIFT,
					 (pos - 1) >> PAGE_SHIFT);
	if (bv != &one)
		kfree(bv);
	if (err)
		atomic64_inc(&vkv_stats.io_errors);
	return err;
}

/* Leave LOADING or WRITING (under ctx->lock) and wake whoever waits. */
static void vkv_chunk_io_done(struct vkv_ctx *ctx, struct vkv_chunk *c, u8 state)
{
	lockdep_assert_held(&ctx->lock);
	c->state = state;
	c->aborted = false;
	ctx->nr_io--;
	wake_up_all(&ctx->io_wq);
}

/*
 * Wait, killably and without ctx->lock (held on entry and on return), until
 * the chunk is neither LOADING nor WRITING. Returns -EINTR if killed. The
 * lock is taken back unkillably: nobody holds it for long (no I/O under it).
 */
int vkv_chunk_wait_io(struct vkv_ctx *ctx, struct vkv_chunk *c)
{
	int err;

	lockdep_assert_held(&ctx->lock);
	mutex_unlock(&ctx->lock);
	err = wait_event_killable(ctx->io_wq, !vkv_chunk_in_io(c));
	mutex_lock(&ctx->lock);
	return err ? -EINTR : 0;
}

/*
 * Make a SWAPPED or EMPTY chunk resident: read it back and check its
 * CRC32C, or give it fresh zeroed memory. Called and returns under
 * ctx->lock, which it drops for the allocation and the read (the chunk is
 * LOADING meanwhile). @may_oom: see vkv_chunk_alloc().
 */
int vkv_chunk_load(struct vkv_ctx *ctx, unsigned long idx,
		   struct vkv_chunk *c, bool may_oom)
{
	struct vkv_pool *pool = ctx->pool;
	u8 from = c->state;
	int err;

	lockdep_assert_held(&ctx->lock);
	if (from == VKV_CHUNK_RESIDENT)
		return 0;
	if (WARN_ON_ONCE(from != VKV_CHUNK_SWAPPED && from != VKV_CHUNK_EMPTY))
		return -EIO;
	if (ctx->dead)
		return -ENXIO;
	if (from == VKV_CHUNK_SWAPPED && WARN_ON_ONCE(!ctx->backing))
		return -EIO;
	c->state = VKV_CHUNK_LOADING;
	ctx->nr_io++;
	mutex_unlock(&ctx->lock);

	/* A swapped chunk is read back whole (or freed on error): no zeroing. */
	err = vkv_chunk_alloc(pool, c, from != VKV_CHUNK_SWAPPED, may_oom);
	if (!err && from == VKV_CHUNK_SWAPPED) {
		err = vkv_chunk_io(ctx, idx, c, false);
		if (!err && vkv_chunk_crc(pool, c) != c->crc) {
			atomic64_inc(&vkv_stats.checksum_errors);
			pr_warn_ratelimited("checksum mismatch reading chunk %lu back\n",
					    idx);
			err = -EBADMSG;
		}
		if (err)
			vkv_chunk_free_pages(pool, c);
	}

	mutex_lock(&ctx->lock);
	if (err) {
		vkv_chunk_io_done(ctx, c, from);
		return err;
	}
	vkv_chunk_count_placement(pool, c);
	if (from == VKV_CHUNK_SWAPPED) {
		pool->nr_swapped--;
		atomic64_sub(vkv_chunk_bytes(pool), &vkv_stats.swapped_bytes);
		atomic64_inc(&vkv_stats.swap_in_total);
	} else {
		pool->nr_empty--;
	}
	list_add_tail(&c->lru, &ctx->lru);
	vkv_account_resident(ctx, 1);
	vkv_chunk_io_done(ctx, c, VKV_CHUNK_RESIDENT);
	return 0;
}

/*
 * Take a chunk out of memory: zap every mapping of it, write it to the
 * backing file (unless VKV_EVICT_DISCARD), free it. Called and returns under
 * ctx->lock; drops it while the chunk is WRITING, so a fault may take the
 * chunk back meanwhile (-EBUSY then, the chunk stays resident).
 * A LOADING or WRITING chunk is waited for first (-EINTR if killed).
 */
int vkv_chunk_evict(struct vkv_ctx *ctx, unsigned long idx,
		    struct vkv_chunk *c, unsigned int flags)
{
	bool discard = flags & VKV_EVICT_DISCARD;
	struct vkv_pool *pool = ctx->pool;
	size_t bytes = vkv_chunk_bytes(pool);
	int err = 0, tries;
	u32 crc = 0;

	lockdep_assert_held(&ctx->lock);
	while (vkv_chunk_in_io(c)) {
		if (flags & VKV_EVICT_NOWAIT)
			return -EBUSY;
		err = vkv_chunk_wait_io(ctx, c);
		if (err)
			return err;
	}
	if (ctx->dead)
		return -ENXIO;
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
	if (vkv_chunk_busy(pool, c, false) ||
	    ((flags & VKV_EVICT_NOWAIT) && vkv_chunk_referenced(pool, c)))
		goto busy;
	unmap_mapping_range(ctx->inode->i_mapping, (loff_t)idx * bytes, bytes, 1);
	list_del_init(&c->lru);
	c->state = VKV_CHUNK_WRITING;
	c->aborted = false;
	ctx->nr_io++;
	mutex_unlock(&ctx->lock);

	/*
	 * GUP-fast does not take our lock: look again now the PTEs are gone.
	 * A concurrent munmap() holds its references until its TLB flush is
	 * done (tlb_finish_mmu), so give transient references a moment,
	 * unless the shrinker asks (it must not stall on a chunk a pipe holds).
	 */
	for (tries = 0; vkv_chunk_busy(pool, c, true); tries++) {
		if (tries == 10 || (flags & VKV_EVICT_NOWAIT) ||
		    vkv_chunk_busy(pool, c, false) || READ_ONCE(c->aborted)) {
			err = -EBUSY;
			break;
		}
		usleep_range(1000, 2000);
	}
	if (!err && !discard) {
		crc = vkv_chunk_crc(pool, c);
		err = vkv_chunk_io(ctx, idx, c, true);
	}

	mutex_lock(&ctx->lock);
	/* Only our fault handler maps pages, and it sets @aborted first. */
	if (!err && (c->aborted || vkv_chunk_busy(pool, c, true)))
		err = -EBUSY;
	if (err) {
		/* Still resident; accesses map it again. */
		list_add_tail(&c->lru, &ctx->lru);
		vkv_chunk_io_done(ctx, c, VKV_CHUNK_RESIDENT);
		if (err == -EBUSY)
			atomic64_inc(&vkv_stats.busy_total);
		return err;
	}
	vkv_account_resident(ctx, -1);
	vkv_chunk_free_pages(pool, c);
	if (discard) {
		pool->nr_empty++;
		atomic64_inc(&vkv_stats.discard_total);
		vkv_chunk_io_done(ctx, c, VKV_CHUNK_EMPTY);
	} else {
		c->crc = crc;
		pool->nr_swapped++;
		atomic64_add(bytes, &vkv_stats.swapped_bytes);
		atomic64_inc(&vkv_stats.swap_out_total);
		vkv_chunk_io_done(ctx, c, VKV_CHUNK_SWAPPED);
	}
	return 0;
busy:
	atomic64_inc(&vkv_stats.busy_total);
	return -EBUSY;
}

/*
 * At release, under ctx->lock: no new chunk I/O, and wait for what runs
 * (only the shrink worker can be left: no fd and no mapping remain).
 */
void vkv_swap_quiesce(struct vkv_ctx *ctx)
{
	lockdep_assert_held(&ctx->lock);
	ctx->dead = true;
	while (ctx->nr_io) {
		mutex_unlock(&ctx->lock);
		wait_event(ctx->io_wq, !READ_ONCE(ctx->nr_io));
		mutex_lock(&ctx->lock);
	}
}

/* Under ctx->lock, with no chunk I/O running. */
void vkv_drop_backing(struct vkv_ctx *ctx)
{
	lockdep_assert_held(&ctx->lock);
	if (!ctx->backing)
		return;
	if (ctx->pool)
		atomic64_sub((s64)ctx->pool->nr_resident * vkv_chunk_bytes(ctx->pool),
			     &vkv_stats.backed_resident_bytes);
	fput(ctx->backing);
	fput(ctx->backing_rd);
	put_cred(ctx->backing_cred);
	if (ctx->backing_blkcg)
		css_put(ctx->backing_blkcg);
	ctx->backing = NULL;
	ctx->backing_rd = NULL;
	ctx->backing_cred = NULL;
	ctx->backing_blkcg = NULL;
	ctx->backing_off = 0;
	ctx->backing_direct = false;
}

/*
 * Check a file offered as backing: a regular file the caller opened for
 * reading and writing, without O_APPEND, not setuid (nor setgid with group
 * execute: the bits a write strips), not append-only or immutable, not a
 * swap file.
 */
static int vkv_backing_file_ok(struct file *f)
{
	struct inode *inode = file_inode(f);

	if (!S_ISREG(inode->i_mode))
		return -EINVAL;
	if ((f->f_mode & (FMODE_READ | FMODE_WRITE)) != (FMODE_READ | FMODE_WRITE))
		return -EBADF;
	if (!(f->f_mode & FMODE_CAN_READ) || !(f->f_mode & FMODE_CAN_WRITE) ||
	    (f->f_flags & O_APPEND))
		return -EINVAL;
	if ((inode->i_mode & S_ISUID) ||
	    (inode->i_mode & (S_ISGID | 0010)) == (S_ISGID | 0010) ||
	    IS_APPEND(inode) || IS_IMMUTABLE(inode))
		return -EPERM;
	if (IS_SWAPFILE(inode))
		return -ETXTBSY;
	return 0;
}

/*
 * Our own opens of the registered file: @wf for writes (O_DIRECT when
 * @direct and the filesystem has it), @rf buffered for reads. Nobody else
 * holds them, so nobody can change their flags (O_APPEND, O_DIRECT, ...)
 * after the checks.
 */
static int vkv_backing_open(struct file *f, bool direct, struct file **wf,
			    struct file **rf, bool *is_direct)
{
	struct file *w = ERR_PTR(-EINVAL), *r;

	if (direct)
		w = dentry_open(&f->f_path, O_RDWR | O_LARGEFILE | O_DIRECT,
				f->f_cred);
	*is_direct = !IS_ERR(w);
	if (IS_ERR(w))
		w = dentry_open(&f->f_path, O_RDWR | O_LARGEFILE, f->f_cred);
	if (IS_ERR(w))
		return PTR_ERR(w);
	r = dentry_open(&f->f_path, O_RDONLY | O_LARGEFILE, f->f_cred);
	if (IS_ERR(r)) {
		fput(w);
		return PTR_ERR(r);
	}
	/* Read what a chunk needs, no readahead into the neighbours' data. */
	r->f_mode |= FMODE_RANDOM;
	*wf = w;
	*rf = r;
	return 0;
}

int vkv_set_backing(struct vkv_ctx *ctx, const struct vkv_backing *b)
{
	struct file *f, *wf = NULL, *rf = NULL;
	struct cgroup_subsys_state *blkcg = NULL;
	const struct cred *cred = NULL;
	struct vkv_pool *pool;
	bool direct;
	u64 end;
	int err = 0;

	if (b->flags & ~VKV_BACKING_BUFFERED)
		return -EINVAL;
	if (b->fd == -1) {
		if (b->flags || b->offset)
			return -EINVAL;
		mutex_lock(&ctx->lock);
		if (ctx->pool && (ctx->pool->nr_swapped || ctx->nr_io))
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

	/* The pool's geometry never changes once it exists. */
	mutex_lock(&ctx->lock);
	pool = ctx->pool;
	mutex_unlock(&ctx->lock);

	f = fget(b->fd);
	if (!f)
		return -EBADF;
	err = vkv_backing_file_ok(f);
	if (err)
		goto out_put;
	if (!pool) {
		err = -ENXIO;
		goto out_put;
	}
	if (check_add_overflow(b->offset, pool->size, &end) || end > (u64)LLONG_MAX) {
		err = -EINVAL;
		goto out_put;
	}
	/* Later writes may run in the shrink worker: enforce the limit now. */
	if (end > rlimit(RLIMIT_FSIZE)) {
		err = -EFBIG;
		goto out_put;
	}
	err = vkv_backing_open(f, (f->f_flags & O_DIRECT) ||
			       !(b->flags & VKV_BACKING_BUFFERED), &wf, &rf, &direct);
	if (err)
		goto out_put;
	/*
	 * Allocate the whole swap area now, as the caller, against its quota,
	 * its share of the filesystem (not root's reserve) and its limits, so
	 * that later writes, whoever makes them, neither allocate blocks nor
	 * extend the file. A filesystem without fallocate allocates at write
	 * time, still with the registrant's credentials.
	 */
	err = vfs_fallocate(wf, 0, b->offset, pool->size);
	if (err == -EOPNOTSUPP)
		err = 0;
	if (err)
		goto out_put;
	cred = get_current_cred();
	/*
	 * The registrant's I/O cgroup, so that the shrink worker's I/O is
	 * charged (and throttled) there, not to the root group of a kworker.
	 */
	blkcg = vkv_compat_task_blkcg();

	mutex_lock(&ctx->lock);
	if (pool->nr_swapped || ctx->nr_io) {
		err = -EBUSY;	/* their data lives in the current file */
	} else {
		vkv_drop_backing(ctx);
		ctx->backing = wf;
		ctx->backing_rd = rf;
		ctx->backing_cred = cred;
		ctx->backing_blkcg = blkcg;
		ctx->backing_off = b->offset;
		ctx->backing_direct = direct;
		atomic64_add((s64)pool->nr_resident * vkv_chunk_bytes(pool),
			     &vkv_stats.backed_resident_bytes);
		wf = NULL;
		rf = NULL;
		cred = NULL;
		blkcg = NULL;
	}
	mutex_unlock(&ctx->lock);
out_put:
	if (blkcg)
		css_put(blkcg);
	if (cred)
		put_cred(cred);
	if (wf)
		fput(wf);
	if (rf)
		fput(rf);
	fput(f);
	return err;
}

/*
 * The range ioctls: act on each chunk of a chunk-aligned pool range, taking
 * ctx->lock per chunk so that a fatal signal ends the range between chunks.
 * r->done counts the bytes done, also when a later chunk fails.
 */
int vkv_range_op(struct vkv_ctx *ctx, enum vkv_range_kind kind,
		 struct vkv_range *r)
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
		switch (kind) {
		case VKV_RANGE_SWAP_OUT:
			err = vkv_chunk_evict(ctx, idx, c, 0);
			break;
		case VKV_RANGE_DISCARD:
			err = vkv_chunk_evict(ctx, idx, c, VKV_EVICT_DISCARD);
			break;
		case VKV_RANGE_PREFETCH:
			while (!err && vkv_chunk_in_io(c))
				err = vkv_chunk_wait_io(ctx, c);
			if (err)
				break;
			if (c->state == VKV_CHUNK_SWAPPED)
				atomic64_inc(&vkv_stats.prefetch_total);
			err = vkv_chunk_load(ctx, idx, c, false);
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
