/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the cache's internal state, shared by cache.c (layout and
 * life cycle), backing.c (mapping pages under sequences), seq.c (sequences)
 * and step.c (batched and asynchronous steps).
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
#include "internal.h"
#include "pool.h"
#include "quant.h"

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
	uint32_t mark; /* == cache->mark: in the batch being processed */
	uint32_t want; /* with mark: the tokens the request backs */
	vkv_slot_t prev, next; /* LRU of closed slots that still hold pages */
};

/* Swap state of a slot; see swap.c. */
struct swap_slot {
	uint8_t tier; /* enum vkv_tier */
	uint8_t busy; /* queued or running on the swap worker */
	uint8_t op; /* SWAP_OP_OUT or SWAP_OP_IN, while busy */
	uint8_t target; /* tier of a queued swap-out */
	int32_t err; /* result of the last swap */
	int32_t prio;
	uint32_t pages; /* pages per segment saved */
	uint64_t last_use; /* cache->use_clock when last stepped */
	void **chunks; /* host tier: [segment * pages + page] */
	uint64_t *dslots; /* disk tier: same order */
};

enum { SWAP_OP_OUT = 1, SWAP_OP_IN = 2 };

enum job_phase {
	JOB_IDLE = 0,
	JOB_QUEUED, /* the worker has yet to finish the required part */
	JOB_LOOKAHEAD, /* required part done; backing ahead of need */
};

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

struct vkv_cache {
	struct vkv_geometry geom;
	struct vkv_config cfg;
	struct vkv_backend *be;
	struct vkv_pool pool;

	size_t page_size;
	uint32_t ntensors; /* == segments per slot */
	size_t row_bytes; /* one token of one layer's K or V */
	size_t token_stride; /* bytes between tokens in a segment */
	size_t slot_bytes; /* one segment, a whole number of pages */
	size_t tensor_bytes;
	uint32_t seg_pages; /* pages in a full segment */
	uintptr_t base;
	size_t va_size;

	struct vkv_slot *slots;
	vkv_handle_t *handles; /* [slot][segment][page] */
	size_t handles_bytes;
	vkv_slot_t lru_head, lru_tail; /* closed with pages; head = coldest */
	vkv_slot_t *empty; /* stack of closed slots without pages */
	uint32_t nempty;
	uint32_t mark;
	/*
	 * While a step swaps its sequences in one by one, the mark of its
	 * whole batch: each swap-in marks only its own slot, and must not
	 * take from the others what the step then needs back.
	 */
	uint32_t batch_mark;
	bool broken; /* a rollback failed: the backend state is unknown */

	/*
	 * Pages being unmapped by vkvi_backing_shrink, between an unmap and a put
	 * to the pool with the lock held: never across a dropped lock.
	 */
	vkv_handle_t *shrink_buf;

	/* Tiers (swap.c); the swap worker and its queue are under lock. */
	struct swap_slot *sw;
	struct vkv_host_tier *host;
	struct vkv_disk_tier *disk;
	struct vkv_kmod_slabs *kslabs; /* host-tier slabs from /dev/vkv */
	bool kdisk; /* the module swaps the host tier: the disk tier */
	size_t chunk_bytes; /* one page as stored in a tier */
	struct vkv_qpage qpage; /* with quantize: how pages are stored */
	uint64_t use_clock;
	pthread_cond_t swap_cond; /* a swap finished, or one was queued */
	pthread_t swap_worker;
	bool swap_started, swap_stop;
	uint32_t *swap_q;
	uint32_t swap_qhead, swap_qlen;

	/*
	 * lock guards everything above. Every thread that touches the cache
	 * takes it through vkvi_cache_enter() (see there for the order), and holds
	 * it for a whole operation; the only places it is dropped mid-way are
	 * a wait for a slot's swap, taken before the operation gathers
	 * anything, and the swap worker's copy, which touches only its busy
	 * slot. No buffer shared by the cache is kept across a drop. The pool
	 * has its own lock, taken inside this one, never the other way round.
	 */
	pthread_mutex_t lock;
	pthread_cond_t job_cond;
	pthread_t worker;
	bool worker_started;
	bool worker_stop;
	bool job_pending; /* queued and not yet collected by step_wait */
	enum job_phase phase;
	int job_result;
	uint32_t job_n;
	vkv_slot_t *job_slots;
	uint32_t *job_lens;
	vkv_handle_t *la_pages; /* the look-ahead's pages, lock held */
	uint64_t entering; /* atomic: threads in vkvi_cache_enter(); the
			    * look-ahead gives way to them */

	struct cache_counters cnt;
};

/* Address of page @page of segment @seg of @slot. */
static inline uintptr_t seg_va(const struct vkv_cache *c, vkv_slot_t slot,
			       uint32_t seg, uint32_t page)
{
	return c->base + seg * c->tensor_bytes + slot * c->slot_bytes +
	       (size_t)page * c->page_size;
}

static inline vkv_handle_t *seg_handles(struct vkv_cache *c, vkv_slot_t slot,
					uint32_t seg)
{
	return &c->handles[((size_t)slot * c->ntensors + seg) * c->seg_pages];
}

/* Pages each segment needs to hold @ntokens tokens. */
static inline uint32_t pages_for(const struct vkv_cache *c, uint32_t ntokens)
{
	return (uint32_t)(((uint64_t)ntokens * c->token_stride + c->page_size -
			   1) /
			  c->page_size);
}

/* Tokens that @npages pages per segment hold completely. */
static inline uint32_t tokens_in(const struct vkv_cache *c, uint32_t npages)
{
	uint64_t t = (uint64_t)npages * c->page_size / c->token_stride;

	return t > c->geom.max_tokens ? c->geom.max_tokens : (uint32_t)t;
}

/* Set an open slot's length, keeping the live and needed counters. */
static inline void slot_set_len(struct vkv_cache *c, struct vkv_slot *s,
				uint32_t len)
{
	uint64_t was = pages_for(c, s->len), now = pages_for(c, len);

	if (len >= s->len)
		vkv_add(&c->cnt.live_tokens, len - s->len);
	else
		vkv_sub(&c->cnt.live_tokens, s->len - len);
	if (now >= was)
		vkv_add(&c->cnt.pages_needed, (now - was) * c->ntensors);
	else
		vkv_sub(&c->cnt.pages_needed, (was - now) * c->ntensors);
	s->len = len;
}

/* Who enters the cache; see vkvi_cache_enter(). */
enum cache_who {
	ENTER_CALL, /* a call of the scheduler's */
	ENTER_STEP, /* the step worker, to run the queued step */
	ENTER_SWAP, /* the swap worker, to start or finish a swap */
};

/*
 * The one way into the cache, for the scheduler's calls and the library's
 * workers alike; returns with the lock held. A look-ahead running on the
 * step worker gives way to whoever enters. A call of the scheduler's is
 * also ordered after the step it queued, as its program order says; the
 * workers are not, since the queued step may be waiting for the swap
 * worker (a step waits for the swaps of its batch).
 */
void vkvi_cache_enter(struct vkv_cache *c, enum cache_who who);
void vkvi_cache_leave(struct vkv_cache *c);

/* Closed-slot bookkeeping (seq.c). */
void vkvi_lru_remove(struct vkv_cache *c, vkv_slot_t slot);
void vkvi_lru_push_tail(struct vkv_cache *c, vkv_slot_t slot);
void vkvi_empty_push(struct vkv_cache *c, vkv_slot_t slot);

/*
 * backing.c: back the slots in @slots[0..n) up to @tokens[i] tokens each.
 * All or nothing. Pages come from the pool, new ones within the budget,
 * then closed slots (coldest first), then the unused tail of open slots
 * not in the request.
 */
int vkvi_backing_grow(struct vkv_cache *c, const vkv_slot_t *slots,
		      const uint32_t *tokens, uint32_t n);

/* Pages @slot needs, over all its segments, to hold @tokens. */
size_t vkvi_backing_need(const struct vkv_cache *c, vkv_slot_t slot,
			 uint32_t tokens);

/*
 * Map @npages pages the caller took from the pool (exactly what the
 * request needs) under the slots; on failure they go back to the pool.
 */
int vkvi_backing_map(struct vkv_cache *c, const vkv_slot_t *slots,
		     const uint32_t *tokens, uint32_t n,
		     const vkv_handle_t *pages, size_t npages);

/* Unmap @slot's pages beyond @keep per segment and return them to the pool. */
int vkvi_backing_shrink(struct vkv_cache *c, vkv_slot_t slot, uint32_t keep);

/* Release everything mapped, at destroy. */
void vkvi_backing_drop_all(struct vkv_cache *c);

/*
 * Could @need more pages be had for the request whose slots are marked,
 * by reclaim and, per the policy, eviction of sequences not stepped at
 * @clock, as far as the tiers take them? The same sum decides a request's
 * -ENOMEM before anything is touched, and answers vkv_step_fits(). Lock
 * held.
 */
bool vkvi_backing_room(struct vkv_cache *c, size_t need, uint64_t clock);

/*
 * Mark the request (@slots[0..n) to @tokens[i]) and say whether all of it
 * can be backed, swapped-out members at least at their saved length: the
 * check of a whole step or reserve, swap-ins included, before any of it is
 * done. Lock held.
 */
bool vkvi_backing_fits(struct vkv_cache *c, const vkv_slot_t *slots,
		       const uint32_t *tokens, uint32_t n, uint64_t clock);

/* tiers.c: open the tiers the config asks for; close them (lock not held) */
int vkvi_tiers_open(struct vkv_cache *c);
void vkvi_tiers_close(struct vkv_cache *c);

/* swap.c */
int vkvi_swap_init(struct vkv_cache *c);
void vkvi_swap_fini(struct vkv_cache *c);
/*
 * Wait while @slot is being swapped; lock held, and dropped while waiting:
 * call it before gathering anything.
 */
void vkvi_swap_wait_idle(struct vkv_cache *c, vkv_slot_t slot);
/* Bring @slot back synchronously if it is swapped out; lock held. */
int vkvi_swap_in_now(struct vkv_cache *c, vkv_slot_t slot);
/* Give up what a closing slot holds in the tiers; lock held. */
void vkvi_swap_forget(struct vkv_cache *c, vkv_slot_t slot);
/*
 * Evict idle sequences per the policy until about @want pages are free;
 * only ever called within a call of the scheduler's (or the step it
 * queued), never by the swap worker.
 */
long vkvi_swap_evict(struct vkv_cache *c, size_t want);
/*
 * Pages (of their lengths) that vkvi_swap_evict() would free for @want, in the
 * policy's order, stopping where it would stop: at the first victim the
 * tiers cannot take. Changes nothing.
 */
uint64_t vkvi_swap_evict_room(struct vkv_cache *c, size_t want, uint64_t clock);
/* Could eviction free pages at all? */
static inline bool swap_can_evict(const struct vkv_cache *c)
{
	return c->cfg.evict != VKV_EVICT_NONE && (c->host || c->disk);
}
static inline bool slot_busy(const struct vkv_cache *c, vkv_slot_t slot)
{
	return c->sw[slot].busy;
}

/*
 * An open sequence outside the request being served and not being swapped:
 * what it holds beyond its length may be reclaimed for the request.
 */
static inline bool slot_spare(const struct vkv_cache *c, vkv_slot_t slot)
{
	const struct vkv_slot *s = &c->slots[slot];

	return s->state == SLOT_OPEN && !slot_busy(c, slot) &&
	       s->mark != c->mark &&
	       (!c->batch_mark || s->mark != c->batch_mark);
}

/*
 * In the batch of a step vkv_step_async() queued and vkv_step_wait() has not
 * collected: the engine computes on it once the step is collected, so it is
 * not idle, though a later call has stamped a newer clock.
 */
static inline bool slot_queued(const struct vkv_cache *c, vkv_slot_t slot)
{
	if (!c->job_pending)
		return false;
	for (uint32_t i = 0; i < c->job_n; i++)
		if (c->job_slots[i] == slot)
			return true;
	return false;
}

/*
 * ... and one the eviction policy may swap out whole: it holds pages, sits
 * in the cache, was not stepped at @clock (the current step's) and is not
 * in a queued step's batch.
 */
static inline bool slot_victim(const struct vkv_cache *c, vkv_slot_t slot,
			       uint64_t clock)
{
	return slot_spare(c, slot) && c->slots[slot].npages &&
	       c->sw[slot].last_use != clock &&
	       c->sw[slot].tier == VKV_TIER_DEVICE && !slot_queued(c, slot);
}

/* step.c: stop and join the step worker, at destroy. */
void vkvi_step_worker_stop(struct vkv_cache *c);

#endif /* VKV_CACHE_H */
