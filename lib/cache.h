/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the cache's state, one sub-struct per layer that owns it (see
 * docs/design/library.md for the layers). Functions are declared by their
 * own layer's header; this one holds the data and the layout arithmetic
 * every layer needs.
 *
 * Virtual layout: the cache reserves one range holding `ntensors` tensors
 * back to back; tensor t holds max_seqs slots of slot_bytes each. The part
 * of one tensor that belongs to one slot is a *segment*: the unit that is
 * backed page by page, from its start, as the sequence grows. Every segment
 * of a slot holds the same number of pages, so one count per slot says what
 * is mapped.
 */
#ifndef VKV_CACHE_H
#define VKV_CACHE_H

#include <pthread.h>

#include "backend.h"
#include "gate.h"
#include "internal.h"
#include "pool.h"
#include "quant.h"

/*
 * Layout (cache.c): derived from the geometry at create, read-only after,
 * so read without a lock.
 */
struct cache_layout {
	size_t page_size;
	uint32_t ntensors; /* == segments per slot */
	size_t row_bytes; /* one token of one layer's K or V */
	size_t token_stride; /* bytes between tokens in a segment */
	size_t slot_bytes; /* one segment, a whole number of pages */
	size_t tensor_bytes;
	uint32_t seg_pages; /* pages in a full segment */
	uintptr_t base;
	size_t va_size;
};

enum slot_state {
	SLOT_FREE = 0,
	SLOT_OPEN = 1,
};

#define NO_SLOT ((vkv_slot_t)-1) /* above VKV_MAX_SEQS: never a slot */

struct vkv_slot {
	uint32_t state;
	uint32_t len; /* live tokens */
	uint32_t npages; /* pages mapped in each segment */
	uint32_t cap; /* tokens that npages back */
	uint32_t mark; /* == tab.mark: in the request being served */
	uint32_t want; /* with mark: the tokens the request backs */
	/*
	 * In the batch of a step vkv_step_async() queued and vkv_step_wait()
	 * has not collected (step.c sets and clears it): the engine computes
	 * on it once the step is collected, so it is not idle, though a later
	 * call has stamped a newer clock.
	 */
	bool queued;
	vkv_slot_t prev, next; /* LRU of closed slots that still hold pages */
};

/*
 * Slot table, LRU and mapping (slots.c, backing.c). Everything here is
 * under gate.lock.
 */
struct slot_table {
	struct vkv_slot *slots;
	vkv_handle_t *handles; /* [slot][segment][page] */
	size_t handles_bytes;
	vkv_slot_t lru_head, lru_tail; /* closed with pages; head = coldest */
	vkv_slot_t *empty; /* stack of closed slots without pages */
	uint32_t nempty;
	uint32_t mark; /* the current request's mark; see reclaim.c */
	bool broken; /* a rollback failed: the backend state is unknown */
	/*
	 * Pages being unmapped by vkvi_backing_shrink, between an unmap and a
	 * put to the pool with the lock held: preallocated, so that giving
	 * pages back (trim, a swap-out, a failed swap-in) cannot fail for want
	 * of memory. One buffer suffices because shrink is a leaf: it calls
	 * nothing that could come back into it, and never drops the lock.
	 */
	vkv_handle_t *shrink_buf;
};

/* Swap state of a slot (swapio.c). */
struct swap_slot {
	uint8_t tier; /* enum vkv_tier */
	uint8_t busy; /* queued or running on the swap worker */
	uint8_t op; /* SWAP_OP_OUT or SWAP_OP_IN, while busy */
	uint8_t target; /* tier of a queued swap-out */
	int32_t err; /* result of the last swap */
	int32_t prio;
	uint32_t pages; /* pages per segment saved */
	uint64_t last_use; /* swp.use_clock when last stepped */
	void **chunks; /* host tier: [segment * pages + page] */
	uint64_t *dslots; /* disk tier: same order */
};

enum { SWAP_OP_OUT = 1, SWAP_OP_IN = 2 };

/*
 * Tiers (tiers.c): opened at create, closed at destroy, read-only in
 * between; the tier objects lock themselves, and are only called with
 * gate.lock held or by the swap worker on its busy slot.
 */
struct cache_tiers {
	struct vkv_host_tier *host;
	struct vkv_disk_tier *disk;
	struct vkv_kmod_slabs *kslabs; /* host-tier slabs from /dev/vkv */
	bool kdisk; /* the module swaps the host tier: the disk tier */
	size_t chunk_bytes; /* one page as stored in a tier */
	struct vkv_qpage qpage; /* with quantize: how pages are stored */
};

/*
 * Where each slot's data is, and the swap worker with its queue (swapio.c,
 * swap.c). All under gate.lock; cond is waited on with it.
 */
struct swap_state {
	struct swap_slot *sw; /* [slot] */
	uint64_t use_clock; /* stamps sw[].last_use; the policy's clock */
	pthread_cond_t cond; /* a swap finished, or one was queued */
	pthread_t worker;
	bool started, stop;
	uint32_t *q; /* ring of max_seqs slots */
	uint32_t qhead, qlen;
};

enum job_phase {
	JOB_IDLE = 0,
	JOB_QUEUED, /* the worker has yet to finish the required part */
	JOB_LOOKAHEAD, /* required part done; backing ahead of need */
};

/*
 * The step vkv_step_async() queued, and the step worker (step.c). Under
 * gate.lock; the worker waits on gate.cond for it.
 */
struct step_job {
	pthread_t thread;
	bool started;
	bool stop;
	bool pending; /* queued and not yet collected by step_wait */
	enum job_phase phase;
	int result;
	uint32_t n;
	uint32_t *slots, *lens;
	vkv_handle_t *la_pages; /* the look-ahead's pages */
};

/*
 * Counters: written under gate.lock (the swap worker's byte counts too),
 * read by vkv_cache_stats() from any thread with atomic loads, hence
 * updated with vkv_add()/vkv_sub().
 */
struct cache_counters {
	uint64_t pages_open;
	uint64_t pages_cached;
	uint64_t seqs_open;
	uint64_t live_tokens;
	uint64_t pages_needed; /* pages_for(len) of open slots, all segments */
	uint64_t map_calls;
	uint64_t unmap_calls;
	uint64_t reclaimed;
	uint64_t enomem;
	uint64_t steps;
	uint64_t swap_outs, swap_ins, evictions, swap_errors;
	uint64_t seqs_host, seqs_disk;
	uint64_t swap_out_bytes, swap_in_bytes;
	struct vkv_hist map_lat;
	struct vkv_hist step_lat;
};

struct vkv_host_tier;
struct vkv_disk_tier;
struct vkv_kmod_slabs;

/*
 * The lock rules. gate.lock guards tab, swp and job. Every thread that
 * touches the cache takes it through vkvi_gate_enter() (see gate.h for
 * the order), and holds it for a whole operation; the only places it is
 * dropped mid-way are a wait for a slot's swap, taken before the operation
 * gathers anything, and the swap worker's copy, which touches only its busy
 * slot. No buffer shared by the cache is kept across a drop. The pool has
 * its own lock, taken inside this one, never the other way round.
 */
struct vkv_cache {
	/* Given at create, read-only after. */
	struct vkv_geometry geom;
	struct vkv_config cfg;
	struct vkv_backend *be;

	struct cache_layout lay;
	struct vkvi_gate gate;
	struct vkv_pool pool;
	struct slot_table tab;
	struct cache_tiers tiers;
	struct swap_state swp;
	struct step_job job;
	struct cache_counters cnt;
};

/* Address of page @page of segment @seg of @slot. */
static inline uintptr_t seg_va(const struct vkv_cache *c, vkv_slot_t slot,
			       uint32_t seg, uint32_t page)
{
	return c->lay.base + seg * c->lay.tensor_bytes +
	       slot * c->lay.slot_bytes + (size_t)page * c->lay.page_size;
}

static inline vkv_handle_t *seg_handles(struct vkv_cache *c, vkv_slot_t slot,
					uint32_t seg)
{
	return &c->tab.handles[((size_t)slot * c->lay.ntensors + seg) *
			       c->lay.seg_pages];
}

/* Pages each segment needs to hold @ntokens tokens. */
static inline uint32_t pages_for(const struct vkv_cache *c, uint32_t ntokens)
{
	return (uint32_t)(((uint64_t)ntokens * c->lay.token_stride +
			   c->lay.page_size - 1) /
			  c->lay.page_size);
}

/* Tokens that @npages pages per segment hold completely. */
static inline uint32_t tokens_in(const struct vkv_cache *c, uint32_t npages)
{
	uint64_t t = (uint64_t)npages * c->lay.page_size / c->lay.token_stride;

	return t > c->geom.max_tokens ? c->geom.max_tokens : (uint32_t)t;
}

#endif /* VKV_CACHE_H */
