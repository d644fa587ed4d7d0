/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vkv.ko internals.
 *
 * Objects and lifetime
 * --------------------
 * struct vkv_ctx   one per open() of /dev/vkv. Lives until the file is
 *                  released: every fd closed *and* every mmap of it gone
 *                  (a vma holds a file reference), which includes process
 *                  death. Release unpins user pins, frees every chunk,
 *                  drops the backing file and the per-context inode.
 * struct vkv_pool  at most one per context, created by VKV_IOC_POOL_CREATE,
 *                  freed with the context. Its geometry never changes.
 * struct vkv_chunk unit of allocation and swap (chunk_size bytes); its state
 *                  (RESIDENT / SWAPPED / EMPTY) and pages change under
 *                  ctx->lock only.
 * struct vkv_upin  one user-range pin, in ctx->pins (an xarray, which has its
 *                  own lock; whoever erases the entry owns it).
 *
 * Locks and their order (outer first)
 * -----------------------------------
 *   mmap_lock (or the per-VMA lock) of the faulting mm
 *     -> vkv_ctxs_lock   global mutex: the list of contexts (shrink worker)
 *       -> ctx->lock     per-context mutex: pool geometry, chunk states and
 *                        pages, the LRU, the backing file
 *         -> i_mmap_rwsem of the context's mapping (unmap_mapping_range)
 *         -> locks of the backing file's filesystem (vfs_iter_read/write)
 *
 * The fault handler is entered with mmap_lock held and takes ctx->lock; it
 * holds it across "check state, read the chunk back, insert the PTEs" (or,
 * when the fault may be retried, drops both locks, reads the chunk back
 * under ctx->lock alone and returns VM_FAULT_RETRY).
 * Swap-out and discard hold ctx->lock across "check pins, zap every PTE,
 * check pins and references again, write, free". So a fault either sees the
 * chunk resident and maps it before the zap, or waits and reads it back.
 * Nothing that holds ctx->lock takes mmap_lock: VKV_IOC_PIN calls
 * pin_user_pages_fast() (which may fault on this very pool) without
 * ctx->lock. The shrinker's scan callback takes no lock and does no I/O
 * (allocations made under our locks, or under the backing filesystem's
 * locks, recurse into reclaim); it queues the shrink worker, which takes
 * vkv_ctxs_lock then each ctx->lock in plain process context.
 * Counters are atomics and need no lock.
 */
#ifndef VKV_INTERNAL_H
#define VKV_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include "uapi/vkv.h"

#define VKV_MAX_CHUNK_ORDER	(21 - PAGE_SHIFT)	/* 2 MiB */

enum vkv_chunk_state {
	VKV_CHUNK_RESIDENT = 0,
	VKV_CHUNK_SWAPPED,
	VKV_CHUNK_EMPTY,
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
	struct vkv_chunk *chunks;
};

struct vkv_ctx {
	struct mutex lock;		/* chunk states and pages, lru, backing */
	struct list_head node;		/* on vkv_ctxs, under vkv_ctxs_lock */
	struct inode *inode;		/* private address space for mmap */
	struct vkv_pool *pool;		/* NULL until POOL_CREATE */
	struct list_head lru;		/* resident chunks, coldest first */
	struct file *backing;		/* NULL if none */
	u64 backing_off;
	bool backing_direct;
	struct xarray pins;		/* u32 handle -> struct vkv_upin */
	atomic64_t pinned_bytes;
	struct vkv_user *user;		/* charged for pool and pins (vkv_user.c) */
};

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
	atomic64_t busy_total;
	atomic64_t contexts;
	atomic64_t pins;
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

/* vkv_pool.c */
extern const struct vm_operations_struct vkv_vm_ops;
int vkv_pool_create(struct vkv_ctx *ctx, struct vkv_pool_create *pc);
void vkv_pool_info(struct vkv_ctx *ctx, struct vkv_pool_info *pi);
void vkv_pool_destroy(struct vkv_ctx *ctx);
int vkv_set_backing(struct vkv_ctx *ctx, const struct vkv_backing *b);
void vkv_drop_backing(struct vkv_ctx *ctx);
int vkv_range_op(struct vkv_ctx *ctx, unsigned int cmd, struct vkv_range *r);
int vkv_shrinker_init(void);
void vkv_shrinker_exit(void);

/* vkv_pin.c */
int vkv_pin(struct vkv_ctx *ctx, struct vkv_pin *p);
int vkv_unpin(struct vkv_ctx *ctx, u64 handle);
void vkv_unpin_all(struct vkv_ctx *ctx);

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
