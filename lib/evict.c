/* SPDX-License-Identifier: MIT */
/*
 * evict.c - the eviction policy: which idle sequences go whole to a lower
 * tier when reclaim has nothing else, and how much that would free.
 *
 * Evictions run on the caller's thread within its call, with the lock
 * held: the caller needs the pages before it can go on. The swap worker
 * never evicts, so no sequence moves at a time no call names.
 */
#include "evict.h"
#include "slots.h"
#include "swapio.h"
#include "tier_host.h"

/* Does the policy evict @a before @b? Ties go to the lower slot. */
static bool evicts_before(const struct vkv_cache *c, uint32_t a, uint32_t b)
{
	const struct swap_slot *x = &c->swp.sw[a], *y = &c->swp.sw[b];

	if (c->cfg.evict == VKV_EVICT_PRIORITY && x->prio != y->prio)
		return x->prio < y->prio;
	if (x->last_use != y->last_use)
		return x->last_use < y->last_use;
	return a < b;
}

/* The policy's next victim after @prev (UINT32_MAX: its first), or none. */
static uint32_t next_victim(const struct vkv_cache *c, uint64_t clock,
			    uint32_t prev)
{
	uint32_t best = UINT32_MAX;

	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		if (!slot_victim(c, i, clock))
			continue;
		if (prev != UINT32_MAX && !evicts_before(c, prev, i))
			continue;
		if (best == UINT32_MAX || evicts_before(c, i, best))
			best = i;
	}
	return best;
}

/*
 * Chunks the tiers can still take from evictions, SIZE_MAX if no limit is
 * known. With a disk tier every victim has a place: the host tier makes
 * room by demotion, a full host tier is passed over for disk, and the
 * swap file grows. Without one, only the host tier's free chunks count.
 */
static size_t tier_room(const struct vkv_cache *c)
{
	struct vkvi_host_tier_counters hc;
	uint64_t cap, used;

	if (swapio_has_disk(c))
		return SIZE_MAX;
	if (!c->tiers.host)
		return 0;
	vkvi_host_tier_counters(c->tiers.host, &hc);
	if (!hc.budget || !hc.chunk)
		return SIZE_MAX;
	cap = hc.budget / hc.chunk;
	used = (hc.used_bytes - hc.paged_bytes) / hc.chunk;
	return cap > used ? (size_t)(cap - used) : 0;
}

uint64_t vkvi_evict_room(struct vkv_cache *c, size_t want, uint64_t clock)
{
	size_t room = tier_room(c);
	uint64_t got = 0;
	uint32_t v = UINT32_MAX;

	vkvi_assert_held(&c->gate);
	while (got < want && (v = next_victim(c, clock, v)) != UINT32_MAX) {
		uint64_t pages = (uint64_t)pages_for(c, c->tab.slots[v].len) *
				 c->lay.ntensors;

		/* vkvi_evict() stops at the first victim it cannot place. */
		if (room != SIZE_MAX) {
			if (pages > room)
				break;
			room -= (size_t)pages;
		}
		got += pages;
	}
	return got;
}

long vkvi_evict(struct vkv_cache *c, size_t want)
{
	long freed = 0;

	vkvi_assert_held(&c->gate);
	while ((size_t)freed < want) {
		/* Evicted ones are no longer victims: the first is the next. */
		uint32_t victim = next_victim(c, c->swp.use_clock, UINT32_MAX);
		uint64_t pages;

		if (victim == UINT32_MAX)
			break;
		pages = (uint64_t)c->tab.slots[victim].npages * c->lay.ntensors;
		if (vkvi_swapio_out(c, victim, VKV_TIER_HOST, false))
			break;
		vkv_add(&c->cnt.evictions, 1);
		freed += (long)pages;
	}
	return freed;
}
