/* SPDX-License-Identifier: MIT */
/*
 * vkv.h - virtually contiguous KV-cache memory manager.
 *
 * The single public header of libvkv. Every function that can fail returns 0
 * (or a non-negative value where documented) on success and a negative errno
 * on failure; vkv_strerror() turns one into text. A failed call leaves the
 * cache exactly as it was: nothing already stored is unmapped or changed.
 *
 * Threads: a cache is driven by one scheduler thread (every function taking a
 * non-const struct vkv_cache *). vkv_cache_stats() may be called from any
 * thread at any time. The library's own worker threads are internal.
 *
 * Which sequences may move, and when: an open sequence's rows stay mapped at
 * their addresses except within these calls, so that an engine may go on
 * reading and writing the sequences a call does not name:
 *  - vkv_seq_reserve(), vkv_step() (and the step vkv_step_async() queues,
 *    from that call until vkv_step_wait() or the next call returns), and
 *    vkv_seq_swap_in() may, when pages run short and an eviction policy is
 *    set, swap out idle sequences whole (ones they do not name, nor the
 *    batch of a queued step vkv_step_wait() has not yet collected, which
 *    the engine is about to compute on); and they may take back pages a
 *    sequence holds beyond its length.
 *  - vkv_seq_swap_out() moves the sequence it names; it, and a swap-in, may
 *    move other swapped-out sequences from the host tier to disk, which
 *    no engine can see.
 * The library's workers never evict: a queued swap only copies.
 */
#ifndef VKV_H
#define VKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of this header. vkv_version() gives the version of the
 * library a program runs with, which may be newer than its header, or
 * older where the program calls nothing that came later (the dynamic
 * linker refuses a library without the symbol versions a program uses).
 * VKV_VERSION_NUM() orders versions as one integer, usable in #if; minor
 * and patch stay below 256.
 */
#define VKV_VERSION_MAJOR 0
#define VKV_VERSION_MINOR 4
#define VKV_VERSION_PATCH 0
#define VKV_VERSION_NUM(major, minor, patch)                                   \
	((major)*65536 + (minor)*256 + (patch))
#define VKV_VERSION                                                            \
	VKV_VERSION_NUM(VKV_VERSION_MAJOR, VKV_VERSION_MINOR, VKV_VERSION_PATCH)

/*
 * Growing the structs: struct vkv_config, struct vkv_geometry, struct
 * vkv_stats and struct vkv_seq_info end in a reserved tail, and a later
 * version takes its new fields from that tail instead of growing the
 * struct. A size field or argument was the other way; it was not chosen
 * because it would change the signature of every call that takes one of
 * these structs, and programs would have to set it right by hand. With a
 * tail the structs keep their size, so their calls keep their symbol
 * versions, and a zero in a new field means what the version without it
 * did.
 *
 * The caller zeroes the tail of the structs it passes in (vkv_config_init()
 * does it for a config; an initializer such as `= { .layers = 32 }` does it
 * for a geometry): a version that does not know what a nonzero value there
 * means refuses it with -EINVAL rather than ignoring it. The library zeroes
 * the tail of the structs it fills. Designated initializers are the ones to
 * use: a positional one stays correct, but -Wextra warns that it leaves the
 * tail out.
 *
 * struct vkv_tensor has no tail: it is a whole description of a strided
 * tensor, and a different view of the cache would come from another call.
 */

/*
 * A slot: the index of a sequence in the cache, below its max_seqs, which is
 * at most VKV_MAX_SEQS. Every slot therefore fits the int that vkv_seq_open()
 * returns (a slot or a negative errno), and converts to vkv_slot_t and back
 * unchanged.
 */
typedef uint32_t vkv_slot_t;
#define VKV_MAX_SEQS (1u << 30)

/* Which physical memory backs the cache. */
enum vkv_backend_kind {
	VKV_BACKEND_AUTO = 0, /* cuda when a usable GPU is present, else host */
	VKV_BACKEND_HOST =
		1, /* host memory: memfd slices mapped into a reservation */
	VKV_BACKEND_CUDA = 2, /* CUDA virtual memory management (driver API) */
};

/* Where a cache's K and V tensors live in its virtual range. */
enum vkv_layout {
	/*
	 * For each layer a K and a V tensor, each [slot][token][head][dim]
	 * (vAttention's default). A page holds many tokens of one layer, so a
	 * sequence leaves up to 2 * layers partly filled pages.
	 */
	VKV_LAYOUT_PER_LAYER = 0,
	/*
	 * One K and one V tensor, each [slot][token][layer][head][dim]: a page
	 * holds every layer of fewer tokens, at most two partly filled pages.
	 */
	VKV_LAYOUT_TOKEN_MAJOR = 1,
	/*
	 * One tensor [slot][token][K|V][layer][head][dim]: a single partly
	 * filled page per sequence, for a longer token stride.
	 */
	VKV_LAYOUT_TOKEN_MAJOR_KV = 2,
};

enum vkv_kv {
	VKV_K = 0,
	VKV_V = 1,
};

/* Log levels for struct vkv_config.log_level and the log callback. */
enum vkv_log_level {
	VKV_LOG_ERROR = 0,
	VKV_LOG_WARN = 1,
	VKV_LOG_INFO = 2,
	VKV_LOG_DEBUG = 3,
};

typedef void (*vkv_log_fn)(void *arg, int level, const char *msg);

/*
 * Runtime configuration. Fill it with vkv_config_init() (defaults, then the
 * VKV_* environment variables), then override fields as needed. Sizes are in
 * bytes; zero means "the default" where noted.
 */
struct vkv_config {
	enum vkv_backend_kind backend; /* VKV_BACKEND */
	size_t page_size; /* VKV_PAGE_SIZE: bytes per physical page; a
				  * multiple of the backend's granularity (2 MiB) */
	size_t budget; /* VKV_BUDGET: cap on physical bytes the pool may
				  * create; 0 = no cap beyond the device's */
	size_t pool_low; /* VKV_POOL_LOW: refill when fewer free bytes */
	size_t pool_high; /* VKV_POOL_HIGH: refill up to this many free bytes */
	size_t lookahead_tokens; /* VKV_LOOKAHEAD: tokens per sequence that
				  * vkv_step_async() backs ahead of need */
	int device; /* VKV_DEVICE: CUDA device ordinal */
	int numa_node; /* VKV_NUMA_NODE: host memory node, -1 = local */
	int log_level; /* VKV_LOG_LEVEL: messages at or below it go
				  * to log_fn */
	vkv_log_fn log_fn; /* NULL: the library prints nothing */
	void *log_arg;

	/* Tiers and swap (see vkv_seq_swap_out()). */
	size_t host_budget; /* VKV_HOST_BUDGET: bytes of the host tier;
				  * 0 = no host tier */
	const char *swap_path; /* VKV_SWAP_PATH: the disk tier's file; NULL =
				  * no disk tier. Not copied: keep it alive. */
	uint32_t swap_qdepth; /* VKV_SWAP_QDEPTH: disk requests in flight */
	int evict; /* VKV_EVICT: enum vkv_evict */
	int quantize; /* VKV_QUANTIZE: 1 = keep swapped KV as int8
				  * with one scale per head vector (dtype
				  * fp16, bf16 or fp32; unspecified with
				  * elem_size 4 is taken as fp32) */
	int io_uring; /* VKV_IO_URING: 0 = pread/pwrite for the
				  * disk tier even where io_uring works */
	uint64_t reserved[16]; /* zero (see "Growing the structs") */
};

/* Where a sequence's KV lives. */
enum vkv_tier {
	VKV_TIER_DEVICE = 0, /* mapped in the cache: usable by kernels */
	VKV_TIER_HOST = 1, /* in the host tier (pinned host memory) */
	VKV_TIER_DISK = 2, /* in the disk tier's swap file */
};

/* What to do when a reserve or step finds no free or reclaimable page. */
enum vkv_evict {
	VKV_EVICT_NONE = 0, /* fail with -ENOMEM */
	VKV_EVICT_LRU = 1, /* swap out the least recently stepped idle
				 * sequence */
	VKV_EVICT_PRIORITY = 2, /* the idle sequence of lowest priority
				 * (vkv_seq_set_priority()), then LRU */
};

/*
 * Element type of the KV cache. The cache itself only moves bytes; the type
 * matters where values are read: quantized tiers (struct vkv_config's
 * quantize) and bindings that describe tensors to other libraries.
 */
enum vkv_dtype {
	VKV_DTYPE_UNSPECIFIED = 0, /* only elem_size is known */
	VKV_DTYPE_F16 = 1, /* IEEE binary16, 2 bytes */
	VKV_DTYPE_BF16 = 2, /* bfloat16, 2 bytes */
	VKV_DTYPE_F32 = 3, /* IEEE binary32, 4 bytes */
	VKV_DTYPE_F8_E4M3 = 4, /* 8-bit float, 4-bit exponent (OCP FP8) */
	VKV_DTYPE_F8_E5M2 = 5, /* 8-bit float, 5-bit exponent (OCP FP8) */
	VKV_DTYPE_I8 = 6, /* int8, e.g. KV the engine quantized */
};

/*
 * Model geometry and cache shape. Element size is in bytes (2 for fp16/bf16).
 * max_tokens is the longest sequence a slot can hold. @dtype may be left 0
 * (unspecified); when it is set, elem_size must be its size or 0 (then it
 * is taken from the type, and vkv_cache_geometry() reports it).
 *
 * Limits: max_seqs at most VKV_MAX_SEQS (2^30) and layers at most 2^20; a
 * slot of max_tokens tokens, and the whole cache, within 64 TiB of address
 * space. vkv_cache_create() gives -EOVERFLOW for any of these.
 *
 * @dtype was appended in version 0.3, the reserved tail in 0.4. Programs
 * built against older headers keep working: they call the VKV_0.1 or
 * VKV_0.3 versions of vkv_cache_create() and vkv_cache_geometry(), which
 * take and fill the old, shorter struct (with the type unspecified for
 * VKV_0.1).
 */
struct vkv_geometry {
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t elem_size;
	uint32_t max_seqs;
	uint32_t max_tokens;
	enum vkv_layout layout;
	enum vkv_dtype dtype;
	uint32_t reserved[8]; /* zero (see "Growing the structs") */
};

/*
 * One layer's K or V as a strided 4-D tensor [slot][token][head][dim].
 * Element (s, t, h, d) lives at base + s*slot_stride + t*token_stride +
 * h*head_stride + d*elem_size (all strides in bytes). Any kernel that takes
 * strides reads it unchanged.
 */
struct vkv_tensor {
	void *base;
	size_t slot_stride;
	size_t token_stride;
	size_t head_stride;
	size_t elem_size;
};

/* A log2 latency histogram: bucket i counts samples in [2^i, 2^(i+1)) ns. */
#define VKV_HIST_BUCKETS 40
struct vkv_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t bucket[VKV_HIST_BUCKETS];
};

/*
 * A snapshot of a cache's counters; see vkv_cache_stats(). The reserved tail
 * was appended in version 0.4; programs built against older headers call
 * the VKV_0.1 version, which fills the struct without it.
 */
struct vkv_stats {
	uint64_t page_size;
	uint64_t mapped_bytes; /* physical bytes mapped into the cache */
	uint64_t live_bytes; /* bytes of tokens held by open sequences */
	uint64_t pages_free; /* created, in the pool, unmapped */
	uint64_t pages_open; /* mapped under open sequences */
	uint64_t pages_needed; /* what open sequences need for their
				     * lengths; the rest of pages_open
				     * (look-ahead, inherited) is reclaimable */
	uint64_t
		pages_cached; /* mapped under closed slots (deferred reclaim) */
	uint64_t pages_created; /* currently created: free + open + cached */
	uint64_t budget_pages; /* cap on pages_created, 0 = none */
	uint64_t seqs_open;
	uint64_t map_calls; /* pages mapped, over the cache's life */
	uint64_t unmap_calls; /* pages unmapped */
	uint64_t create_calls; /* pages created */
	uint64_t release_calls; /* pages released */
	uint64_t create_sync; /* creations on the caller's path (pool empty) */
	uint64_t reclaimed_pages; /* pages taken back from closed slots */
	uint64_t enomem; /* requests refused for lack of memory */
	uint64_t steps;
	uint64_t swap_outs; /* sequences swapped out, by request or
				     * eviction */
	uint64_t swap_ins;
	uint64_t evictions; /* swap-outs the policy decided */
	uint64_t swap_errors; /* swaps that failed (-EIO, ...) */
	uint64_t seqs_host; /* sequences now in the host tier */
	uint64_t seqs_disk; /* ... in the disk tier */
	uint64_t host_tier_bytes; /* host tier memory in use */
	uint64_t disk_tier_bytes; /* swap file bytes in use */
	uint64_t swap_out_bytes; /* bytes of KV moved out, over the life */
	uint64_t swap_in_bytes;
	struct vkv_hist map_lat; /* one page: take from pool + map + access */
	struct vkv_hist step_lat; /* vkv_step() or a step run by the worker */
	uint64_t reserved[64]; /* zeroed (see "Growing the structs") */
};

struct vkv_cache;

/*
 * vkv_config_init - fill @cfg with the defaults, then apply the VKV_*
 * environment variables. Returns 0, or -EINVAL if a variable does not parse
 * or its value is out of the range vkv_cache_create() accepts (the log
 * callback, which is unset here, is not used; the message in
 * vkv_config_error() names the first such variable). @cfg then holds the
 * defaults plus every valid variable. Checks that involve two variables
 * (VKV_POOL_LOW above VKV_POOL_HIGH, a budget below one page) are left to
 * vkv_cache_create(), since the caller may still change either field.
 */
int vkv_config_init(struct vkv_config *cfg);

/*
 * vkv_config_error - text naming the last problem vkv_config_init() or
 * vkv_cache_create() found in this thread's configuration, or "" if none.
 */
const char *vkv_config_error(void);

/*
 * vkv_cache_create - create a cache for @geom with @cfg (NULL: defaults plus
 * environment). Reserves the whole virtual range; maps nothing yet.
 * Returns 0 and sets *@out, or a negative errno with the reason in
 * vkv_config_error():
 *   -EINVAL     a malformed geometry (a zero field, an unknown layout or
 *               dtype, an elem_size that contradicts the dtype) or config,
 *               a nonzero reserved field in either, or quantize with an
 *               element type it cannot handle;
 *   -EOVERFLOW  a geometry beyond its limits (see struct vkv_geometry);
 *   -ENODEV     the backend is unavailable;
 *   -ENOMEM     memory for the cache's own state or the host tier;
 *   the error of opening or sizing swap_path for the disk tier, such as
 *   -ENOENT (no such directory), -EISDIR (a directory), -EACCES, -ENOSPC.
 */
int vkv_cache_create(const struct vkv_geometry *geom,
		     const struct vkv_config *cfg, struct vkv_cache **out);

/*
 * vkv_cache_destroy - wait for any async step, unmap and release everything,
 * free the reservation. NULL is a no-op.
 */
void vkv_cache_destroy(struct vkv_cache *c);

/*
 * vkv_cache_geometry - the geometry the cache was created with (an elem_size
 * left 0 beside a dtype reads as the dtype's size), its reserved tail
 * zeroed. -EINVAL if @c or @out is NULL.
 */
int vkv_cache_geometry(const struct vkv_cache *c, struct vkv_geometry *out);

/* vkv_cache_page_size - bytes per physical page, or 0 if @c is NULL. */
size_t vkv_cache_page_size(const struct vkv_cache *c);

/*
 * vkv_cache_backend - the backend actually in use ("host", "cuda"), or NULL
 * if @c is NULL.
 */
const char *vkv_cache_backend(const struct vkv_cache *c);

/*
 * vkv_cache_tensor - describe @layer's K or V as a strided tensor. The base
 * pointer is a device pointer on the cuda backend. Only tokens that a
 * reserve or step has backed may be touched.
 */
int vkv_cache_tensor(const struct vkv_cache *c, uint32_t layer, enum vkv_kv kv,
		     struct vkv_tensor *out);

/*
 * vkv_token_ptr - address of the row of (@layer, @kv, @slot, @token), or
 * NULL on bad arguments. A convenience over vkv_cache_tensor().
 */
void *vkv_token_ptr(const struct vkv_cache *c, uint32_t layer, enum vkv_kv kv,
		    vkv_slot_t slot, uint32_t token);

/*
 * vkv_seq_open - take a free slot for a new sequence, preferring one whose
 * pages are still mapped. Returns the slot (>= 0, below max_seqs, so it
 * converts to vkv_slot_t unchanged) or -ENOSPC when all max_seqs slots are
 * open. The new sequence has length 0; the contents of
 * pages it inherits are unspecified.
 */
int vkv_seq_open(struct vkv_cache *c);

/*
 * vkv_seq_close - end the sequence in @slot. Its pages stay mapped until the
 * pool needs them (deferred reclamation). -EINVAL if @slot is out of range,
 * -EBADF if it is not open.
 */
int vkv_seq_close(struct vkv_cache *c, vkv_slot_t slot);

/*
 * vkv_seq_reserve - back tokens [0, @ntokens) of @slot with physical memory
 * and set its length to @ntokens (a smaller length keeps the pages; see
 * vkv_seq_trim()). A swapped-out sequence is swapped back in first, as a
 * step does; the swap-in and the growth are checked together, so -ENOMEM
 * leaves it, and every other sequence, where it was. -EINVAL if @slot is
 * out of range, -EBADF if it is not open, -E2BIG beyond max_tokens, -ENOMEM
 * when memory runs out (after reclaiming closed slots and, per the policy,
 * evicting), -EIO if its swapped-out data came back corrupt.
 */
int vkv_seq_reserve(struct vkv_cache *c, vkv_slot_t slot, uint32_t ntokens);

/*
 * vkv_seq_trim - give back the pages of @slot beyond its length to the pool.
 * Waits for a swap of it in progress. Returns the number of pages freed (0
 * for a swapped-out sequence, which holds none), -EINVAL if @slot is out of
 * range, -EBADF if it is not open, -EIO if an earlier failure left the
 * backend in an unknown state.
 */
int vkv_seq_trim(struct vkv_cache *c, vkv_slot_t slot);

/* vkv_seq_len - the length of the sequence in @slot, or -EBADF/-EINVAL. */
int64_t vkv_seq_len(const struct vkv_cache *c, vkv_slot_t slot);

/*
 * What a slot holds; see vkv_seq_info(). The reserved tail was appended in
 * version 0.4 (programs built against older headers call the VKV_0.1
 * version, which fills the struct without it).
 */
struct vkv_seq_info {
	uint32_t open; /* 1 if a sequence is open in the slot */
	uint32_t len; /* its length in tokens (0 when closed) */
	uint32_t backed; /* tokens backed by the pages mapped now */
	uint32_t pages; /* pages mapped in each of the slot's segments */
	uint32_t segments; /* segments per slot: 2 * layers, 2 or 1 by layout */
	uint32_t tier; /* enum vkv_tier: where its KV is */
	uint32_t busy; /* 1 while a swap of it is in progress */
	int32_t priority; /* see vkv_seq_set_priority() */
	uint32_t reserved[8]; /* zeroed (see "Growing the structs") */
};

/*
 * vkv_seq_info - what @slot holds, open or closed (a closed slot may still
 * hold pages until they are reclaimed). -EINVAL if @slot is out of range.
 */
int vkv_seq_info(const struct vkv_cache *c, vkv_slot_t slot,
		 struct vkv_seq_info *out);

/*
 * vkv_seq_swap_out - start moving the sequence in @slot to @tier
 * (VKV_TIER_HOST or VKV_TIER_DISK) on the cache's swap worker: its data is
 * copied out, then its pages go back to the pool. Its virtual addresses
 * stay reserved for it: vkv_seq_swap_in() maps new pages at the same
 * addresses, so pointers held by the engine stay valid. Until the swap
 * completes the sequence must not be read or written. With a disk tier, a
 * swap-out to a full VKV_TIER_HOST moves the coldest sequences already
 * there on to disk to make room, and a sequence that still does not fit
 * goes to disk itself (vkv_seq_info() tells where each one is). Returns 0
 * once queued; -EBADF (not open), -EALREADY (already swapped out), -EBUSY (a
 * swap of it is in progress), -ENODEV (that tier is not configured),
 * -EINVAL. The outcome comes from vkv_seq_swap_wait() or _poll().
 */
int vkv_seq_swap_out(struct vkv_cache *c, vkv_slot_t slot, enum vkv_tier tier);

/*
 * vkv_seq_swap_in - bring a swapped-out sequence back into the cache at its
 * old addresses. The pages are mapped within this call (evicting idle
 * sequences for them, if a policy is set); only the copy back runs on the
 * swap worker, and it moves nothing else. -ENOMEM if the pages cannot be
 * had (nothing moved), -EALREADY if it is already there, -EBUSY if a swap
 * of it is in progress. A step or reserve that names a swapped-out
 * sequence swaps it in first by itself.
 */
int vkv_seq_swap_in(struct vkv_cache *c, vkv_slot_t slot);

/*
 * vkv_seq_swap_wait - wait until no swap of @slot is in progress; returns the
 * last swap's result: 0, -ENOMEM (no room in the target), -EIO (the data
 * came back corrupt: the sequence is lost and should be closed), ... Like
 * every call, it comes after a step queued before it (which may itself
 * have waited for, and undone, a swap-out of @slot).
 */
int vkv_seq_swap_wait(struct vkv_cache *c, vkv_slot_t slot);

/*
 * vkv_seq_swap_poll - 1 while a swap of @slot runs, else as _wait(); also
 * after a queued step.
 */
int vkv_seq_swap_poll(const struct vkv_cache *c, vkv_slot_t slot);

/*
 * vkv_seq_set_priority - for VKV_EVICT_PRIORITY: lower priorities are
 * evicted first. New sequences have priority 0. -EINVAL if @slot is out of
 * range, -EBADF if it is not open.
 */
int vkv_seq_set_priority(struct vkv_cache *c, vkv_slot_t slot, int32_t prio);

/*
 * vkv_step - reserve for a whole batch: for each i < @n, back tokens
 * [0, @lens[i]) of @slots[i] and set its length to @lens[i]. All or
 * nothing: on any error no sequence has changed, none was evicted and
 * none swapped in (swap-ins of the batch's swapped-out sequences and the
 * growth are checked together, as vkv_step_fits() checks them; only an
 * -EIO reading one back can fail after others came back). Entries are checked in
 * order; the first bad one gives -EINVAL (slot out of range, or given twice),
 * -EBADF (not open) or -E2BIG (beyond max_tokens); then -ENOMEM if the batch
 * does not fit. (So @n above max_seqs, which must name a slot twice or one
 * out of range, fails on its first bad entry, like any other.) -EINVAL for
 * a NULL array with @n > 0. A step in which no sequence crosses a page boundary does no
 * per-page work. -EBUSY while an async step's result is uncollected.
 */
int vkv_step(struct vkv_cache *c, const vkv_slot_t *slots, const uint32_t *lens,
	     uint32_t n);

/*
 * vkv_step_fits - would vkv_step() with the same arguments, called now,
 * fail with -ENOMEM? Returns 0 if not, -ENOMEM if it would, and changes
 * nothing: a scheduler asks before it queues a step and preempts first
 * (as vLLM checks can_append_slots), so that no step fails and is retried
 * on the critical path. The argument errors are vkv_step()'s, in its
 * order; -EBUSY while an async step's result is uncollected or a swap
 * (vkv_seq_swap_out(), _in()) is in progress, since either changes the
 * answer. The step decides -ENOMEM by the same sum before touching
 * anything, so the answer is exact, with three limits: without a budget
 * the sum's cap is the device's whole memory, which other users of the
 * device may already hold, so the step can still fail where 0 was
 * returned (never the other way round); with an eviction policy, sequences
 * it may evict count as room as far as the tiers can take them, in the
 * policy's order (with a disk tier, all); and a step that names a
 * swapped-out sequence may fail with -EIO reading it back.
 */
int vkv_step_fits(const struct vkv_cache *c, const vkv_slot_t *slots,
		  const uint32_t *lens, uint32_t n);

/*
 * vkv_step_async - run vkv_step() for the batch on the cache's persistent
 * worker thread, then back up to lookahead_tokens more per sequence while
 * the caller computes. The arrays are copied. Returns 0 once queued, or the
 * same argument errors as vkv_step(); -EBUSY if a step is already queued.
 * Every other call on the cache (but stats) waits for the queued step.
 */
int vkv_step_async(struct vkv_cache *c, const vkv_slot_t *slots,
		   const uint32_t *lens, uint32_t n);

/*
 * vkv_step_wait - wait for the step queued by vkv_step_async() and return its
 * result (0 or a negative errno). Look-ahead work still running is cut short
 * rather than waited for. -EINVAL if no step was queued.
 */
int vkv_step_wait(struct vkv_cache *c);

/*
 * vkv_cache_stats - snapshot the counters. Safe from any thread, while the
 * scheduler and the workers run; each field is read atomically.
 */
int vkv_cache_stats(const struct vkv_cache *c, struct vkv_stats *out);

/*
 * vkv_hist_percentile - the upper bound, in ns, of the bucket that holds the
 * @pct-th percentile (0 < pct <= 100) of @h; 0 if @h is empty.
 */
uint64_t vkv_hist_percentile(const struct vkv_hist *h, double pct);

/* vkv_strerror - text for a negative errno returned by libvkv. */
const char *vkv_strerror(int err);

/*
 * vkv_version - the version of the library the program runs with, encoded
 * as VKV_VERSION_NUM() encodes it: compare it with VKV_VERSION (the header
 * the program was built with) or split it with / 65536, / 256 % 256 and
 * % 256. Since version 0.4.
 */
uint32_t vkv_version(void);

/*
 * vkv_version_check - 0 if the library the program runs with has major
 * version @major and at least minor version @minor, which is what a
 * program that relies on the behaviour of @major.@minor needs; -ENOTSUP
 * if not. Pass VKV_VERSION_MAJOR and VKV_VERSION_MINOR to ask for the
 * header the program was built with. Since version 0.4.
 */
int vkv_version_check(uint32_t major, uint32_t minor);

#ifdef __cplusplus
}
#endif

#endif /* VKV_H */
