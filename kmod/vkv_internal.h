/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vkv.ko internals.
 *
 * Objects and lifetime
 * --------------------
 * struct vkv_ctx   one per open() of /dev/vkv. Usable until the file is
 *                  released: every fd closed *and* every mmap of it gone
 *                  (a vma holds a file reference), which includes process
 *                  death. Release unpins user pins, waits for chunk I/O,
 *                  frees every chunk, drops the backing file and the
 *                  per-context inode; the struct itself lives on while the
 *                  shrink worker holds a reference (ctx->ref).
 * struct vkv_pool  at most one per context, created by VKV_IOC_POOL_CREATE,
 *                  freed with the context. Its geometry never changes.
 * struct vkv_chunk unit of allocation and swap (chunk_size bytes); its state
 *                  (RESIDENT / SWAPPED / EMPTY / LOADING / WRITING) changes
 *                  under ctx->lock only. Its pages belong to whoever set
 *                  LOADING until it leaves that state.
 * struct vkv_upin  one user-range pin, in ctx->pins (an xarray, which has its
 *                  own lock; whoever erases the entry owns it). Marked
 *                  pending until VKV_IOC_PIN returned its handle. Its
 *                  small pages are in ctx->pin_pfns (a context pins a
 *                  small page once). Charged to the pinning user (see
 *                  vkv_pin.c).
 * orphan chunk     pool memory still referenced by someone else (a pipe
 *                  after vmsplice, a GUP reference) when the pool let go of
 *                  it: vkv_orphan.c keeps our reference and keeps counting
 *                  it until it holds the last one. Outlives its context.
 *
 * Locks and their order (outer first)
 * -----------------------------------
 *   mmap_lock (or the per-VMA lock) of the faulting mm
 *     -> ctx->lock       per-context mutex: pool geometry, chunk states and
 *                        pages, the LRU, the backing file, nr_io, dead
 *       -> i_mmap_rwsem of the context's own mapping (unmap_mapping_range)
 *   vkv_ctxs_lock        global mutex: the list of contexts. A leaf: held
 *                        only to link, unlink, or take a reference on a
 *                        context; nothing sleeps on a context under it.
 *   vkv_users_lock       global mutex: the per-user table (vkv_user.c). A
 *                        leaf: taken to find, link or unlink a user's entry
 *                        at open and at a context's last reference.
 *   vkv_orphans_lock     spinlock: chunks freed while others still hold
 *                        their pages (vkv_orphan.c). A leaf.
 *
 * A function that needs ctx->lock held says so with lockdep_assert_held();
 * chunk I/O and pinning, which must run without it, assert that with
 * lockdep_assert_not_held(). The debug kernel checks both in every guest
 * suite.
 *
 * No file I/O runs under any vkv lock. A chunk being read back is LOADING,
 * one being written out is WRITING; the task doing that I/O drops ctx->lock
 * around it (ctx->nr_io counts such tasks) and takes it again to finish.
 * Every state change out of LOADING or WRITING wakes ctx->io_wq.
 *
 * Why: write(2) and O_DIRECT I/O hold the backing file's i_rwsem (and the
 * filesystem's own locks) while they fault on their user buffer, which may
 * be this pool. So a fault must never wait for anything that waits for the
 * backing file's locks:
 *  - Reads go through a buffered file of the module's own (backing_rd).
 *    Buffered reads take no i_rwsem on ext4 or in the generic read path
 *    (filemap_read), so a task that holds the file's i_rwsem, even
 *    exclusively, can read its own chunk back in its fault. O_DIRECT reads
 *    would take i_rwsem shared and deadlock on that task itself.
 *  - Writes may wait for i_rwsem (its holder may be faulting on the very
 *    chunk being written). A fault on a WRITING chunk therefore waits for
 *    the writer only briefly and killably, without mmap_lock (it returns
 *    VM_FAULT_RETRY); the retried fault then takes the chunk back (sets
 *    @aborted and maps its pages, which the writer still holds). The writer
 *    sees @aborted when it is done, and the chunk stays resident.
 *  - A LOADING chunk is waited for (killably): its loader waits for no lock
 *    that a faulting task may hold.
 *  - Waiters take ctx->lock back unkillably: nobody holds it across I/O.
 * This holds on 6.1 and 6.12 alike: both run ->fault for our vmas under
 * mmap_lock (6.12 retries VMA-lock faults of vmas without ->map_pages
 * under mmap_lock) and allow VM_FAULT_RETRY more than once. It does not
 * hold on filesystems whose buffered reads take i_rwsem (XFS):
 * docs/design/module.md.
 * The fault handler takes ctx->lock killably and, while it may retry,
 * drops mmap_lock before any I/O or wait and returns VM_FAULT_RETRY; a
 * fault that cannot retry (or was retried once) does the I/O itself with
 * mmap_lock held, which the read path never takes, so every access makes
 * progress. A killed fault returns VM_FAULT_RETRY (lock dropped) or
 * VM_FAULT_SIGBUS.
 *
 * Swap-out and discard hold ctx->lock across "check pins, zap every PTE,
 * mark WRITING"; the reference checks, the CRC and the write run without
 * it; "check again, free" runs under it. Only the fault handler makes new
 * PTEs, under ctx->lock, so the pages cannot gain a mapping unnoticed.
 * Nothing that holds ctx->lock takes mmap_lock: VKV_IOC_PIN calls
 * pin_user_pages_fast() (which may fault on this very pool) without it.
 *
 * The shrinker's scan callback takes no lock and does no I/O; it queues
 * the shrink worker, which takes a reference (ctx->ref) on one context at a
 * time under vkv_ctxs_lock, drops it, then works on that context with
 * mutex_trylock() and a bounded number of chunks. Release marks the
 * context dead and waits for nr_io to reach 0 before freeing chunks; the
 * context's memory goes with the last reference. Backing-file writes run
 * with the credentials of the task that registered the file (override_creds),
 * so the shrink worker never writes as root.
 * Counters are atomics and need no lock.
 */
#ifndef VKV_INTERNAL_H
#define VKV_INTERNAL_H

#include <linux/atomic.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "../include/uapi/linux/vkv.h"

#define VKV_MAX_CHUNK_ORDER	(21 - PAGE_SHIFT)	/* 2 MiB */

enum vkv_chunk_state {
	VKV_CHUNK_RESIDENT = 0,
	VKV_CHUNK_SWAPPED,
	VKV_CHUNK_EMPTY,
	VKV_CHUNK_LOADING,	/* being made resident; no pages yet */
	VKV_CHUNK_WRITING,	/* zapped, pages still held, write under way */
};

struct vkv_chunk {
	struct list_head lru;	/* on ctx->lru while resident */
	/*
	 * Resident memory: 1 << (pool order - piece_order) pieces of
	 * 1 << piece_order pages each. When piece_order equals the pool's chunk
	 * order the single piece is @head and @pieces is NULL.
	 */
	struct page *head;
	struct page **pieces;
	u32 crc;		/* CRC32C of the data on the backing file */
	u8 state;
	u8 piece_order;
	bool aborted;		/* WRITING: a fault took the chunk back */
	bool remote;		/* resident off the pool's node */
};

struct vkv_pool {
	u64 size;
	unsigned long nr_chunks;
	unsigned int chunk_order;	/* chunk = PAGE_SIZE << chunk_order */
	int node;
	unsigned long nr_resident;
	unsigned long nr_swapped;
	unsigned long nr_empty;
	unsigned long nr_fallback;
	unsigned long nr_remote;	/* allocations that left the node */
	bool node_preferred;		/* VKV_POOL_NODE_PREFERRED */
	struct vkv_chunk *chunks;
};

struct vkv_ctx {
	struct mutex lock;		/* chunk states and pages, lru, backing */
	struct kref ref;		/* the open file's, and the shrink worker's */
	struct list_head node;		/* on vkv_ctxs, under vkv_ctxs_lock */
	wait_queue_head_t io_wq;	/* a chunk left LOADING/WRITING, nr_io fell */
	unsigned int nr_io;		/* tasks doing chunk I/O without ctx->lock */
	bool dead;			/* released: no new chunk I/O */
	struct inode *inode;		/* private address space for mmap */
	struct vkv_pool *pool;		/* NULL until POOL_CREATE */
	struct list_head lru;		/* resident chunks, coldest first */
	struct file *backing;		/* NULL if none; our own open, for writes */
	struct file *backing_rd;	/* our own buffered open, for reads */
	const struct cred *backing_cred; /* the registrant's: for all its I/O */
	/* The registrant's I/O cgroup: the shrink worker's I/O is charged to it. */
	struct cgroup_subsys_state *backing_blkcg;
	u64 backing_off;
	bool backing_direct;
	struct xarray pins;		/* u32 handle -> struct vkv_upin */
	struct xarray pin_pfns;		/* small pages pinned here, by pfn */
	atomic64_t pinned_bytes;
	struct vkv_user *user;		/* charged for pool and pins (vkv_user.c) */
};

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
static inline struct page *vkv_chunk_page(const struct vkv_chunk *c,
					  unsigned long i)
{
	unsigned long mask = (1UL << c->piece_order) - 1;

	return nth_page(vkv_piece(c, i >> c->piece_order), i & mask);
}

/* Module-wide counters, shown under /sys/kernel/vkv/. */
struct vkv_stats {
	atomic64_t pinned_bytes;
	atomic64_t pool_bytes;		/* resident pool memory */
	atomic64_t pool_reserved_bytes;	/* sum of pool sizes */
	atomic64_t swapped_bytes;
	atomic64_t backed_resident_bytes; /* resident with a backing file */
	atomic64_t swap_out_total;
	atomic64_t swap_in_total;
	atomic64_t fault_in_total;
	atomic64_t prefetch_total;
	atomic64_t discard_total;
	atomic64_t shrinker_scans;
	atomic64_t shrinker_swap_outs;
	atomic64_t checksum_errors;
	atomic64_t io_errors;
	atomic64_t fallback_chunks;
	atomic64_t remote_chunks;
	atomic64_t busy_total;
	atomic64_t contexts;
	atomic64_t pins;
	atomic64_t orphan_bytes;	/* freed by the pool, still referenced */
};

extern struct vkv_stats vkv_stats;
extern struct mutex vkv_ctxs_lock;
extern struct list_head vkv_ctxs;

/* Module parameters (vkv_sysfs.c). */
extern unsigned long vkv_max_pinned_mb;
extern unsigned long vkv_max_pool_mb;
extern int vkv_default_node;
extern unsigned int vkv_chunk_kb;
extern bool vkv_shrinker_enabled;
extern unsigned long vkv_min_resident_mb;

int vkv_sysfs_init(void);
void vkv_sysfs_exit(void);
void vkv_params_init(void);

/* vkv_main.c */
void vkv_ctx_put(struct vkv_ctx *ctx);

/* vkv_ioctl.c */
long vkv_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);

/* vkv_pool.c */
void vkv_chunk_count_placement(struct vkv_pool *pool, struct vkv_chunk *c);
int vkv_chunk_alloc(struct vkv_pool *pool, struct vkv_chunk *c, bool zero,
		    bool may_oom);
void vkv_chunk_free_pages(struct vkv_pool *pool, struct vkv_chunk *c);
void vkv_account_resident(struct vkv_ctx *ctx, long delta_chunks);
int vkv_pool_create(struct vkv_ctx *ctx, struct vkv_pool_create *pc);
void vkv_pool_info(struct vkv_ctx *ctx, struct vkv_pool_info *pi);
void vkv_pool_destroy(struct vkv_ctx *ctx);

/* vkv_swap.c */
#define VKV_EVICT_DISCARD	0x1	/* free without writing */
#define VKV_EVICT_NOWAIT	0x2	/* shrinker: skip referenced chunks at once */
int vkv_chunk_load(struct vkv_ctx *ctx, unsigned long idx,
		   struct vkv_chunk *c, bool may_oom);
int vkv_chunk_evict(struct vkv_ctx *ctx, unsigned long idx,
		    struct vkv_chunk *c, unsigned int flags);
static inline bool vkv_chunk_in_io(const struct vkv_chunk *c)
{
	u8 s = READ_ONCE(c->state);

	return s == VKV_CHUNK_LOADING || s == VKV_CHUNK_WRITING;
}

int vkv_chunk_wait_io(struct vkv_ctx *ctx, struct vkv_chunk *c);
void vkv_swap_quiesce(struct vkv_ctx *ctx);
int vkv_set_backing(struct vkv_ctx *ctx, const struct vkv_backing *b);
void vkv_drop_backing(struct vkv_ctx *ctx);
enum vkv_range_kind {
	VKV_RANGE_SWAP_OUT,
	VKV_RANGE_PREFETCH,
	VKV_RANGE_DISCARD,
};

int vkv_range_op(struct vkv_ctx *ctx, enum vkv_range_kind kind,
		 struct vkv_range *r);

/* vkv_fault.c */
extern const struct vm_operations_struct vkv_vm_ops;

/* vkv_shrink.c */
int vkv_shrinker_init(void);
void vkv_shrinker_exit(void);

/* vkv_pin.c */
int vkv_pin(struct vkv_ctx *ctx, struct vkv_pin *p);
int vkv_unpin(struct vkv_ctx *ctx, u64 handle);
void vkv_unpin_all(struct vkv_ctx *ctx);
void vkv_pin_commit(struct vkv_ctx *ctx, u32 handle);
void vkv_pin_abort(struct vkv_ctx *ctx, u32 handle);

/* vkv_orphan.c */
void vkv_chunk_piece_free(struct page *page, unsigned int order);
void vkv_orphans_exit(void);

/* vkv_user.c: per-user accounting against max_user_*_mb. */
enum vkv_user_res {
	VKV_USER_POOL,		/* pool bytes reserved (POOL_CREATE) */
	VKV_USER_PINNED,	/* user memory pinned (PIN) */
	VKV_USER_NR,
};

struct kobject;
struct vkv_user;
extern unsigned long vkv_max_user_pool_mb;
extern unsigned long vkv_max_user_pinned_mb;
extern atomic64_t vkv_user_denied_total;
struct vkv_user *vkv_user_get(void);
void vkv_user_hold(struct vkv_user *u);
void vkv_user_put(struct vkv_user *u);
void vkv_user_ctx_add(struct vkv_user *u, int delta);
int vkv_user_charge(struct vkv_user *u, enum vkv_user_res res, u64 bytes);
void vkv_user_uncharge(struct vkv_user *u, enum vkv_user_res res, u64 bytes);
int vkv_users_init(struct kobject *parent);
void vkv_users_exit(void);

#endif /* VKV_INTERNAL_H */
