/* SPDX-License-Identifier: MIT */
/*
 * tier_host.h - the host tier's memory: fixed-size chunks (normally the
 * cache's page size) carved out of large slabs, under a byte budget.
 * Internal to the library.
 *
 * A slab is, by default, anonymous memory (mmap), placed on a NUMA node with
 * mbind(MPOL_PREFERRED) and pinned with mlock. When mlock is refused
 * (RLIMIT_MEMLOCK without CAP_IPC_LOCK) the memory stays unlocked and that
 * is said once through vkvi_log. Slabs are aligned to min(chunk, 2 MiB), so
 * chunks are page aligned and fit O_DIRECT.
 *
 * Hooks (struct vkv_host_tier_ops), all optional, set by the integrating code
 * before the first allocation with vkvi_host_tier_set_ops():
 *   - slab_alloc/slab_free replace mmap+mbind+mlock as the slab source: the
 *     kernel module's pool (/dev/vkv: ioctl to size it on the node, mmap of
 *     the file), which is pinned and accounted by the kernel.
 *   - slab_register/slab_unregister are called on every slab after it is
 *     obtained and before it is given back: cuMemHostRegister /
 *     cuMemHostUnregister on the cuda backend, or io_uring buffer
 *     registration (vkvi_disk_register_buffers()).
 * Hooks run with the tier's lock held; they must not call back into it.
 *
 * A backing store (page_out, page_in and discard, set together: the
 * module's swap file) changes what the budget means. Chunks can then be
 * paged out: written to the store, their memory freed, their addresses kept
 * (an access, or vkvi_host_tier_page_in(), brings them back). The budget
 * bounds the chunks that are *resident*; chunks handed out are bounded only
 * by the store. A chunk freed while paged out is discarded. Since the store
 * cannot take pinned memory, slab_register/slab_unregister are then called
 * per chunk, as each becomes resident and before it stops being. A new slab
 * comes resident from its source and the chunks beyond the budget are
 * discarded at once, so for that moment the budget can be exceeded by up to
 * one slab (slabs are at most the budget).
 *
 * Every function is thread-safe (one mutex); counters may be read at any
 * time without it.
 */
#ifndef VKV_TIER_HOST_H
#define VKV_TIER_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "vkv.h"

struct vkv_host_tier;

struct vkv_host_tier_ops {
	/* Provide @len bytes on @node (-1: any) aligned to at least 4096 at
	 * *@base; 0 or a negative errno. */
	int (*slab_alloc)(void *arg, size_t len, int node, void **base);
	void (*slab_free)(void *arg, void *base, size_t len);
	/* Register a new slab with a consumer; 0 or a negative errno (the
	 * slab is then given back and the allocation fails). */
	int (*slab_register)(void *arg, void *base, size_t len);
	void (*slab_unregister)(void *arg, void *base, size_t len);
	/* The backing store, over bytes [off, off + len) of the slab at
	 * @slab: write out and free; read back (-EIO if what comes back is
	 * not what was written); drop the contents and free. 0 or -errno. */
	int (*page_out)(void *arg, void *slab, size_t off, size_t len);
	int (*page_in)(void *arg, void *slab, size_t off, size_t len);
	int (*discard)(void *arg, void *slab, size_t off, size_t len);
	void *arg;
};

struct vkvi_host_tier_counters {
	uint64_t chunk; /* bytes per chunk */
	uint64_t budget; /* bytes; 0 = no cap */
	uint64_t used_bytes; /* chunks handed out, in bytes */
	uint64_t used_chunks;
	uint64_t slab_bytes; /* obtained from the system (>= used_bytes) */
	uint64_t slabs;
	uint64_t locked_bytes; /* of slab_bytes, pinned by mlock */
	uint64_t allocs, frees, enomem; /* calls; refusals over budget */
	uint64_t resident_bytes; /* of slab_bytes, in memory (the budget's) */
	uint64_t paged_bytes; /* handed out and paged out to the store */
	uint64_t page_outs, page_ins, discards; /* chunks */
};

/*
 * vkvi_host_tier_open - a host tier of @chunk-byte chunks (a non-zero
 * multiple of the system page size), at most @budget bytes handed out at a
 * time (0: no cap; else at least one chunk), placed on NUMA node @node (-1:
 * the calling thread's node). @cfg is used for logging only and may be NULL;
 * it is copied. No memory is taken until the first allocation.
 * Returns 0 or -EINVAL (bad sizes, no such node), -ENOMEM.
 */
int vkvi_host_tier_open(const struct vkv_config *cfg, size_t chunk,
			size_t budget, int node, struct vkv_host_tier **out);

/*
 * vkvi_host_tier_set_ops - install hooks (copied; NULL members keep the
 * default). -EBUSY once slabs exist, -EINVAL if slab_alloc and slab_free are
 * not given together.
 */
int vkvi_host_tier_set_ops(struct vkv_host_tier *t,
			   const struct vkv_host_tier_ops *ops);

/*
 * vkvi_host_tier_alloc - one chunk into *@chunk (contents undefined).
 * -ENOMEM over the budget or when the system refuses a new slab; nothing
 * already allocated is affected.
 */
int vkvi_host_tier_alloc(struct vkv_host_tier *t, void **chunk);

/* vkvi_host_tier_free - give a chunk back; -EINVAL if it is not one that is
 * currently allocated from @t (nothing changes then). */
int vkvi_host_tier_free(struct vkv_host_tier *t, void *chunk);

/*
 * vkvi_host_tier_page_out - write the allocated chunks @chunks[0..n) to the
 * backing store and free their memory; chunks already paged out are left
 * alone. -EOPNOTSUPP without a store, -EINVAL (nothing done) if one is not
 * allocated. On an error from the store the chunks before the failing run
 * stay paged out and the rest resident: either way their data is intact.
 */
int vkvi_host_tier_page_out(struct vkv_host_tier *t, void *const *chunks,
			    size_t n);

/*
 * vkvi_host_tier_page_in - make @chunks[0..n) resident and verified (the
 * store is asked for every run, including runs the tier believes resident:
 * the kernel may have paged them out under memory pressure). Free chunks
 * give their memory back first if the budget needs it; -ENOMEM (nothing
 * paged in) if it still would be exceeded: page others out first.
 * -EIO if the store returns something else than was written. Without a
 * store: 0.
 */
int vkvi_host_tier_page_in(struct vkv_host_tier *t, void *const *chunks,
			   size_t n);

/* vkvi_host_tier_trim - return wholly free slabs to the system; how many
 * bytes were returned. */
size_t vkvi_host_tier_trim(struct vkv_host_tier *t);

/* vkvi_host_tier_counters - a snapshot. */
void vkvi_host_tier_counters(const struct vkv_host_tier *t,
			     struct vkvi_host_tier_counters *c);

/* Bytes per slab (a multiple of the chunk size) that the tier grows by. */
size_t vkvi_host_tier_slab_size(const struct vkv_host_tier *t);

/* The node slabs are placed on (resolved from -1 at open), or -1 without
 * NUMA support. */
int vkvi_host_tier_node(const struct vkv_host_tier *t);

/*
 * vkvi_host_tier_close - release every slab, including chunks still
 * allocated (whose pointers become invalid). NULL is a no-op.
 */
void vkvi_host_tier_close(struct vkv_host_tier *t);

#endif /* VKV_TIER_HOST_H */
