/* SPDX-License-Identifier: MIT */
/*
 * swap.c - whole sequences between the cache and the host and disk tiers.
 *
 * A swapped-out sequence stays open and keeps its slot, so its virtual
 * addresses stay reserved for it: swap-in maps new pages at the same
 * addresses and copies the data back, and pointers the engine holds (or a
 * CUDA graph captured over them) stay valid. Only pages [0, pages_for(len))
 * of each segment are saved; the tail beyond the length holds nothing.
 *
 * Swaps asked for by the caller run on one swap worker, which copies with
 * the cache unlocked: the scheduler keeps stepping other sequences. The
 * slot is `busy` meanwhile, and everything that would touch it (steps,
 * close, reclaim, eviction) waits for it or leaves it alone. Evictions
 * decided by the policy run on the caller's thread with the lock held: the
 * caller needs the pages before it can go on.
 *
 * Stored form: a page as it is, or (quantize) vkvi_quant_page()'s form:
 * int8 head vectors with one scale each, and the vectors cut by the page's
 * edges as they are; chunk_bytes is the largest, rounded up to 4 KiB.
 *
 * The disk tier is one of two things. Without the kernel module it is the
 * library's swap file (tier_disk.c), and a sequence there holds disk slots.
 * With the module (c->kdisk), the module is the host tier's backing store:
 * a sequence on disk keeps its host-tier chunks, which the module has
 * written to the file and freed (vkvi_host_tier_page_out), and they come
 * back through it (vkvi_host_tier_page_in) with their checksums verified.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "quant.h"
#include "tier_disk.h"
#include "tier_host.h"

/* Disk I/O is done in batches of this many pages through bounce buffers. */
#define DISK_BATCH 16

struct swap_io {
	void *page; /* a page-sized staging buffer (quantize) */
	void **bounce; /* DISK_BATCH chunks for the disk tier */
	void *mem;
};

static int io_init(struct vkv_cache *c, struct swap_io *io)
{
	size_t need = c->page_size + DISK_BATCH * c->chunk_bytes;

	memset(io, 0, sizeof(*io));
	if (posix_memalign(&io->mem, 4096, need))
		return -ENOMEM;
	io->bounce = malloc(DISK_BATCH * sizeof(void *));
	if (!io->bounce) {
		free(io->mem);
		return -ENOMEM;
	}
	io->page = io->mem;
	for (int i = 0; i < DISK_BATCH; i++)
		io->bounce[i] = (char *)io->mem + c->page_size +
				(size_t)i * c->chunk_bytes;
	return 0;
}

static void io_fini(struct swap_io *io)
{
	free(io->bounce);
	free(io->mem);
}

/* Copy the page at @va into @dst in its stored form. */
static int save_page(struct vkv_cache *c, struct swap_io *io, uintptr_t va,
		     void *dst)
{
	const struct vkv_backend_ops *ops = c->be->ops;
	int ret;

	if (!c->cfg.quantize)
		return ops->copy(c->be, dst, (void *)va, c->page_size,
				 VKV_COPY_TO_HOST);
	ret = ops->copy(c->be, io->page, (void *)va, c->page_size,
			VKV_COPY_TO_HOST);
	if (ret)
		return ret;
	/* Where head vectors are cut depends on the page's segment offset. */
	return vkvi_quant_page(&c->qpage, (va - c->base) % c->slot_bytes,
			       io->page, dst);
}

static int restore_page(struct vkv_cache *c, struct swap_io *io, uintptr_t va,
			const void *src)
{
	const struct vkv_backend_ops *ops = c->be->ops;
	int ret;

	if (!c->cfg.quantize)
		return ops->copy(c->be, (void *)va, src, c->page_size,
				 VKV_COPY_FROM_HOST);
	ret = vkvi_dequant_page(&c->qpage, (va - c->base) % c->slot_bytes, src,
				io->page);
	if (ret)
		return ret;
	return ops->copy(c->be, (void *)va, io->page, c->page_size,
			 VKV_COPY_FROM_HOST);
}

/* Page i of a saved sequence: segment i / pages, page i % pages. */
static uintptr_t saved_va(const struct vkv_cache *c, vkv_slot_t slot,
			  uint32_t pages, size_t i)
{
	return seg_va(c, slot, (uint32_t)(i / pages), (uint32_t)(i % pages));
}

static void free_chunks(struct vkv_cache *c, void **chunks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (chunks[i])
			vkvi_host_tier_free(c->host, chunks[i]);
}

static bool has_disk(const struct vkv_cache *c)
{
	return c->disk || c->kdisk;
}

/*
 * Move the host-tier copy of the coldest host-resident sequence other than
 * @except to disk, to make room in the host tier. Lock held.
 */
static int demote_one(struct vkv_cache *c, uint32_t except)
{
	struct swap_slot *v = NULL;
	size_t n;
	uint64_t *ds;
	int ret;

	if (!has_disk(c))
		return -ENOMEM;
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		struct swap_slot *w = &c->sw[i];

		if (i == except || w->tier != VKV_TIER_HOST || w->busy)
			continue;
		if (!v || w->last_use < v->last_use)
			v = w;
	}
	if (!v)
		return -ENOMEM;
	n = (size_t)v->pages * c->ntensors;
	if (c->kdisk) {
		/* The chunks stay; the module writes them out and frees
		 * their memory. */
		ret = vkvi_host_tier_page_out(c->host, v->chunks, n);
		if (ret)
			return ret;
		v->tier = VKV_TIER_DISK;
		vkv_sub(&c->cnt.seqs_host, 1);
		vkv_add(&c->cnt.seqs_disk, 1);
		return 0;
	}
	ds = malloc(n * sizeof(*ds));
	if (!ds)
		return -ENOMEM;
	ret = vkvi_disk_write(c->disk, (const void *const *)v->chunks,
			      (unsigned)n, ds);
	if (ret) {
		free(ds);
		return ret;
	}
	free_chunks(c, v->chunks, n);
	free(v->chunks);
	v->chunks = NULL;
	v->dslots = ds;
	v->tier = VKV_TIER_DISK;
	vkv_sub(&c->cnt.seqs_host, 1);
	vkv_add(&c->cnt.seqs_disk, 1);
	return 0;
}

/* Host chunks for @n pages, making room by demotion if need be. */
static int alloc_chunks(struct vkv_cache *c, vkv_slot_t slot, void **chunks,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ret = vkvi_host_tier_alloc(c->host, &chunks[i]);

		while (ret == -ENOMEM && !demote_one(c, slot))
			ret = vkvi_host_tier_alloc(c->host, &chunks[i]);
		if (ret) {
			free_chunks(c, chunks, i);
			memset(chunks, 0, n * sizeof(*chunks));
			return ret;
		}
	}
	return 0;
}

/*
 * Make a saved sequence's host-tier chunks resident and verified (with the
 * module, it may have written them out), paging out colder sequences for
 * room. Lock held on entry and exit; with @unlocked, not around the I/O.
 */
static int fetch_chunks(struct vkv_cache *c, vkv_slot_t slot, bool unlocked)
{
	struct swap_slot *w = &c->sw[slot];
	size_t n = (size_t)w->pages * c->ntensors;
	int ret;

	for (;;) {
		if (unlocked)
			vkvi_cache_leave(c);
		ret = vkvi_host_tier_page_in(c->host, w->chunks, n);
		if (unlocked)
			vkvi_cache_enter(c, ENTER_SWAP);
		if (ret != -ENOMEM || demote_one(c, slot))
			return ret;
	}
}

/* Save pages to disk in batches through the bounce buffers. */
static int save_to_disk(struct vkv_cache *c, struct swap_io *io,
			vkv_slot_t slot, uint32_t pages, uint64_t *ds, size_t n)
{
	for (size_t i = 0; i < n; i += DISK_BATCH) {
		unsigned b =
			(unsigned)(n - i < DISK_BATCH ? n - i : DISK_BATCH);
		int ret = 0;

		for (unsigned j = 0; j < b && !ret; j++)
			ret = save_page(c, io, saved_va(c, slot, pages, i + j),
					io->bounce[j]);
		if (!ret)
			ret = vkvi_disk_write(c->disk,
					      (const void *const *)io->bounce,
					      b, ds + i);
		if (ret) {
			if (i)
				vkvi_disk_free(c->disk, ds, (unsigned)i);
			return ret;
		}
	}
	return 0;
}

static int load_from_disk(struct vkv_cache *c, struct swap_io *io,
			  vkv_slot_t slot, uint32_t pages, const uint64_t *ds,
			  size_t n)
{
	for (size_t i = 0; i < n; i += DISK_BATCH) {
		unsigned b =
			(unsigned)(n - i < DISK_BATCH ? n - i : DISK_BATCH);
		int ret = vkvi_disk_read(c->disk, io->bounce, ds + i, b);

		for (unsigned j = 0; j < b && !ret; j++)
			ret = restore_page(c, io,
					   saved_va(c, slot, pages, i + j),
					   io->bounce[j]);
		if (ret)
			return ret;
	}
	return 0;
}

/* Counters of a sequence leaving (@sign < 0) or re-entering the cache. */
static void account(struct vkv_cache *c, vkv_slot_t slot, int sign)
{
	struct vkv_slot *s = &c->slots[slot];
	uint64_t pages = (uint64_t)pages_for(c, s->len) * c->ntensors;

	if (sign < 0) {
		vkv_sub(&c->cnt.live_tokens, s->len);
		vkv_sub(&c->cnt.pages_needed, pages);
	} else {
		vkv_add(&c->cnt.live_tokens, s->len);
		vkv_add(&c->cnt.pages_needed, pages);
	}
}

/*
 * Swap @slot out to @tier. Lock held on entry and exit; with @unlocked the
 * copy runs without it (the slot is busy meanwhile). On failure the
 * sequence is still in the cache, untouched.
 */
static int swap_out(struct vkv_cache *c, vkv_slot_t slot, enum vkv_tier tier,
		    bool unlocked)
{
	struct swap_slot *w = &c->sw[slot];
	uint32_t pages = pages_for(c, c->slots[slot].len);
	size_t n = (size_t)pages * c->ntensors;
	void **chunks = NULL;
	uint64_t *ds = NULL;
	struct swap_io io;
	int ret;

	if (tier == VKV_TIER_HOST && !c->host)
		tier = VKV_TIER_DISK;
	if ((tier == VKV_TIER_DISK && !has_disk(c)) ||
	    (!c->host && !has_disk(c)))
		return -ENODEV;
	ret = io_init(c, &io);
	if (ret)
		return ret;
	/* With the module, disk is reached through the host tier. */
	if (tier == VKV_TIER_HOST || c->kdisk) {
		chunks = calloc(n ? n : 1, sizeof(*chunks));
		ret = chunks ? alloc_chunks(c, slot, chunks, n) : -ENOMEM;
		if (ret == -ENOMEM && c->disk) {
			/* The host tier is full of busy data: go to disk. */
			free(chunks);
			chunks = NULL;
			tier = VKV_TIER_DISK;
			ret = 0;
		}
	}
	if (!ret && !chunks) {
		ds = malloc((n ? n : 1) * sizeof(*ds));
		if (!ds)
			ret = -ENOMEM;
	}
	if (ret)
		goto fail;

	if (unlocked)
		vkvi_cache_leave(c);
	if (chunks) {
		for (size_t i = 0; i < n && !ret; i++)
			ret = save_page(c, &io, saved_va(c, slot, pages, i),
					chunks[i]);
		if (!ret && tier == VKV_TIER_DISK)
			ret = vkvi_host_tier_page_out(c->host, chunks, n);
	} else {
		ret = save_to_disk(c, &io, slot, pages, ds, n);
	}
	if (unlocked)
		vkvi_cache_enter(c, ENTER_SWAP);
	if (ret)
		goto fail;

	/* Saved: now the pages can go, all of them. */
	ret = vkvi_backing_shrink(c, slot, 0);
	if (ret < 0) {
		if (ds)
			vkvi_disk_free(c->disk, ds, (unsigned)n);
		goto fail;
	}
	account(c, slot, -1);
	w->tier = (uint8_t)tier;
	w->pages = pages;
	w->chunks = chunks;
	w->dslots = ds;
	vkv_add(tier == VKV_TIER_HOST ? &c->cnt.seqs_host : &c->cnt.seqs_disk,
		1);
	vkv_add(&c->cnt.swap_outs, 1);
	vkv_add(&c->cnt.swap_out_bytes, n * c->page_size);
	io_fini(&io);
	return 0;
fail:
	if (chunks) {
		free_chunks(c, chunks, n);
		free(chunks);
	}
	free(ds);
	io_fini(&io);
	vkv_add(&c->cnt.swap_errors, 1);
	return ret;
}

/* Release what a swapped sequence holds in its tier; lock held. */
static void drop_saved(struct vkv_cache *c, vkv_slot_t slot)
{
	struct swap_slot *w = &c->sw[slot];
	size_t n = (size_t)w->pages * c->ntensors;

	if (w->chunks)
		free_chunks(c, w->chunks, n);
	else if (w->dslots)
		vkvi_disk_free(c->disk, w->dslots, (unsigned)n);
	if (w->tier == VKV_TIER_HOST)
		vkv_sub(&c->cnt.seqs_host, 1);
	else if (w->tier == VKV_TIER_DISK)
		vkv_sub(&c->cnt.seqs_disk, 1);
	free(w->chunks);
	free(w->dslots);
	w->chunks = NULL;
	w->dslots = NULL;
	w->tier = VKV_TIER_DEVICE;
	w->pages = 0;
}

/*
 * First half of a swap-in, on the caller's thread within its call: map
 * pages for the saved length at the old addresses. This is where a swap-in
 * may evict others, per the policy; the counters still say "swapped".
 */
static int swap_in_map(struct vkv_cache *c, vkv_slot_t slot)
{
	uint32_t len = c->slots[slot].len;
	int ret = vkvi_backing_grow(c, &slot, &len, 1);

	if (ret)
		vkv_add(&c->cnt.swap_errors, 1);
	return ret;
}

/*
 * Second half: copy the data back into the pages swap_in_map() mapped. With
 * @unlocked (the swap worker) the copy runs outside the cache; nothing but
 * @slot's own pages and saved copy is touched. On -EIO the data is lost:
 * the pages are given back and the sequence stays swapped out, failing
 * again until it is closed.
 */
static int swap_in_copy(struct vkv_cache *c, vkv_slot_t slot, bool unlocked)
{
	struct swap_slot *w = &c->sw[slot];
	size_t n = (size_t)w->pages * c->ntensors;
	struct swap_io io;
	int ret;

	ret = io_init(c, &io);
	if (!ret && w->chunks)
		ret = fetch_chunks(c, slot, unlocked);
	if (ret) {
		vkvi_backing_shrink(c, slot, 0);
		goto out;
	}
	if (unlocked)
		vkvi_cache_leave(c);
	if (w->chunks) {
		for (size_t i = 0; i < n && !ret; i++)
			ret = restore_page(c, &io,
					   saved_va(c, slot, w->pages, i),
					   w->chunks[i]);
	} else {
		ret = load_from_disk(c, &io, slot, w->pages, w->dslots, n);
	}
	if (unlocked)
		vkvi_cache_enter(c, ENTER_SWAP);
	if (ret) {
		vkvi_backing_shrink(c, slot, 0);
		goto out;
	}
	drop_saved(c, slot);
	account(c, slot, +1);
	vkv_add(&c->cnt.swap_ins, 1);
	vkv_add(&c->cnt.swap_in_bytes, n * c->page_size);
out:
	if (ret)
		vkv_add(&c->cnt.swap_errors, 1);
	io_fini(&io);
	return ret;
}

/*
 * The swap worker only copies: a swap-out's pages go back to the pool once
 * its data is saved, and a swap-in's pages were mapped by the call that
 * queued it. It never evicts, so no sequence moves at a time no call names.
 */
static void *swap_worker(void *arg)
{
	struct vkv_cache *c = arg;

	vkvi_cache_enter(c, ENTER_SWAP);
	for (;;) {
		vkv_slot_t slot;
		struct swap_slot *w;

		if (!c->swap_qlen && !c->swap_stop) {
			pthread_cond_wait(&c->swap_cond, &c->lock);
			/* Back in through the one entry, like everyone else. */
			vkvi_cache_leave(c);
			vkvi_cache_enter(c, ENTER_SWAP);
			continue;
		}
		if (c->swap_stop)
			break;
		slot = c->swap_q[c->swap_qhead];
		c->swap_qhead = (c->swap_qhead + 1) % c->geom.max_seqs;
		c->swap_qlen--;
		w = &c->sw[slot];
		if (w->op == SWAP_OP_OUT)
			w->err = swap_out(c, slot, w->target, true);
		else
			w->err = swap_in_copy(c, slot, true);
		w->busy = 0;
		pthread_cond_broadcast(&c->swap_cond);
	}
	/* Whatever is still queued is cancelled. */
	while (c->swap_qlen) {
		vkv_slot_t slot = c->swap_q[c->swap_qhead];

		/* A swap-in's pages are mapped: give them back. */
		if (c->sw[slot].op == SWAP_OP_IN)
			vkvi_backing_shrink(c, slot, 0);
		c->sw[slot].busy = 0;
		c->sw[slot].err = -ECANCELED;
		c->swap_qhead = (c->swap_qhead + 1) % c->geom.max_seqs;
		c->swap_qlen--;
	}
	pthread_cond_broadcast(&c->swap_cond);
	vkvi_cache_leave(c);
	return NULL;
}

int vkvi_swap_init(struct vkv_cache *c)
{
	c->sw = calloc(c->geom.max_seqs, sizeof(*c->sw));
	c->swap_q = malloc(c->geom.max_seqs * sizeof(*c->swap_q));
	if (!c->sw || !c->swap_q)
		return -ENOMEM;
	return vkvi_tiers_open(c);
}

void vkvi_swap_fini(struct vkv_cache *c)
{
	if (c->swap_started) {
		vkvi_cache_enter(c, ENTER_CALL);
		c->swap_stop = true;
		pthread_cond_broadcast(&c->swap_cond);
		vkvi_cache_leave(c);
		pthread_join(c->swap_worker, NULL);
		c->swap_started = false;
	}
	if (c->sw)
		for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++)
			drop_saved(c, i);
	vkvi_tiers_close(c);
	free(c->sw);
	free(c->swap_q);
	c->sw = NULL;
	c->swap_q = NULL;
}

void vkvi_swap_wait_idle(struct vkv_cache *c, vkv_slot_t slot)
{
	while (c->sw[slot].busy)
		pthread_cond_wait(&c->swap_cond, &c->lock);
}

int vkvi_swap_in_now(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	vkvi_swap_wait_idle(c, slot);
	if (c->sw[slot].tier == VKV_TIER_DEVICE)
		return 0;
	ret = swap_in_map(c, slot);
	return ret ? ret : swap_in_copy(c, slot, false);
}

void vkvi_swap_forget(struct vkv_cache *c, vkv_slot_t slot)
{
	vkvi_swap_wait_idle(c, slot);
	if (c->sw[slot].tier != VKV_TIER_DEVICE) {
		account(c, slot, +1);
		drop_saved(c, slot);
	}
	c->sw[slot].prio = 0;
	c->sw[slot].err = 0;
}

/* Does the policy evict @a before @b? Ties go to the lower slot. */
static bool evicts_before(const struct vkv_cache *c, vkv_slot_t a, vkv_slot_t b)
{
	const struct swap_slot *x = &c->sw[a], *y = &c->sw[b];

	if (c->cfg.evict == VKV_EVICT_PRIORITY && x->prio != y->prio)
		return x->prio < y->prio;
	if (x->last_use != y->last_use)
		return x->last_use < y->last_use;
	return a < b;
}

/* The policy's next victim after @prev (NO_SLOT: its first), or NO_SLOT. */
static vkv_slot_t next_victim(const struct vkv_cache *c, uint64_t clock,
			      vkv_slot_t prev)
{
	vkv_slot_t best = NO_SLOT;

	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		if (!slot_victim(c, i, clock))
			continue;
		if (prev != NO_SLOT && !evicts_before(c, prev, i))
			continue;
		if (best == NO_SLOT || evicts_before(c, i, best))
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

	if (has_disk(c))
		return SIZE_MAX;
	if (!c->host)
		return 0;
	vkvi_host_tier_counters(c->host, &hc);
	if (!hc.budget || !hc.chunk)
		return SIZE_MAX;
	cap = hc.budget / hc.chunk;
	used = (hc.used_bytes - hc.paged_bytes) / hc.chunk;
	return cap > used ? (size_t)(cap - used) : 0;
}

uint64_t vkvi_swap_evict_room(struct vkv_cache *c, size_t want, uint64_t clock)
{
	size_t room = tier_room(c);
	uint64_t got = 0;
	vkv_slot_t v = NO_SLOT;

	while (got < want && (v = next_victim(c, clock, v)) != NO_SLOT) {
		uint64_t pages =
			(uint64_t)pages_for(c, c->slots[v].len) * c->ntensors;

		/* vkvi_swap_evict() stops at the first victim it cannot place. */
		if (room != SIZE_MAX) {
			if (pages > room)
				break;
			room -= (size_t)pages;
		}
		got += pages;
	}
	return got;
}

long vkvi_swap_evict(struct vkv_cache *c, size_t want)
{
	long freed = 0;

	while ((size_t)freed < want) {
		/* Evicted ones are no longer victims: the first is the next. */
		vkv_slot_t victim = next_victim(c, c->use_clock, NO_SLOT);
		uint64_t pages;

		if (victim == NO_SLOT)
			break;
		pages = (uint64_t)c->slots[victim].npages * c->ntensors;
		if (swap_out(c, victim, VKV_TIER_HOST, false))
			break;
		vkv_add(&c->cnt.evictions, 1);
		freed += (long)pages;
	}
	return freed;
}

/* Checks shared by the swap calls; lock held. */
static int swap_check(struct vkv_cache *c, vkv_slot_t slot)
{
	if (slot >= c->geom.max_seqs)
		return -EINVAL;
	if (c->slots[slot].state != SLOT_OPEN)
		return -EBADF;
	if (c->sw[slot].busy)
		return -EBUSY;
	if (c->broken)
		return -EIO;
	return 0;
}

static int queue(struct vkv_cache *c, vkv_slot_t slot, int op,
		 enum vkv_tier tier)
{
	struct swap_slot *w = &c->sw[slot];

	if (!c->swap_started) {
		int ret =
			-pthread_create(&c->swap_worker, NULL, swap_worker, c);

		if (ret)
			return ret;
		c->swap_started = true;
	}
	w->busy = 1;
	w->op = (uint8_t)op;
	w->target = (uint8_t)tier;
	w->err = 0;
	c->swap_q[(c->swap_qhead + c->swap_qlen) % c->geom.max_seqs] = slot;
	c->swap_qlen++;
	pthread_cond_broadcast(&c->swap_cond);
	return 0;
}

VKV_EXPORT int vkv_seq_swap_out(struct vkv_cache *c, vkv_slot_t slot,
				enum vkv_tier tier)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = swap_check(c, slot);
	if (!ret && tier != VKV_TIER_HOST && tier != VKV_TIER_DISK)
		ret = -EINVAL;
	if (!ret && c->sw[slot].tier != VKV_TIER_DEVICE)
		ret = -EALREADY;
	if (!ret && ((tier == VKV_TIER_HOST && !c->host) ||
		     (tier == VKV_TIER_DISK && !has_disk(c))))
		ret = -ENODEV;
	if (!ret)
		ret = queue(c, slot, SWAP_OP_OUT, tier);
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_in(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = swap_check(c, slot);
	if (!ret && c->sw[slot].tier == VKV_TIER_DEVICE)
		ret = -EALREADY;
	/*
	 * Pages (and any eviction for them) now, within this call. Stamped as
	 * used, like a reserve: it is wanted back, and what was stepped last
	 * is no longer the current step's, so may make room for it.
	 */
	if (!ret) {
		c->sw[slot].last_use = ++c->use_clock;
		ret = swap_in_map(c, slot);
	}
	if (!ret) {
		ret = queue(c, slot, SWAP_OP_IN, VKV_TIER_DEVICE);
		if (ret)
			vkvi_backing_shrink(c, slot, 0);
	}
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_wait(struct vkv_cache *c, vkv_slot_t slot)
{
	int ret;

	if (!c || slot >= c->geom.max_seqs)
		return -EINVAL;
	/* Entering orders this after a queued step, as every call is. */
	vkvi_cache_enter(c, ENTER_CALL);
	vkvi_swap_wait_idle(c, slot);
	ret = c->sw[slot].err;
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_swap_poll(const struct vkv_cache *cc, vkv_slot_t slot)
{
	struct vkv_cache *c = (struct vkv_cache *)cc;
	int ret;

	if (!c || slot >= c->geom.max_seqs)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = c->sw[slot].busy ? 1 : c->sw[slot].err;
	vkvi_cache_leave(c);
	return ret;
}

VKV_EXPORT int vkv_seq_set_priority(struct vkv_cache *c, vkv_slot_t slot,
				    int32_t prio)
{
	int ret;

	if (!c)
		return -EINVAL;
	vkvi_cache_enter(c, ENTER_CALL);
	ret = slot >= c->geom.max_seqs		  ? -EINVAL
	      : c->slots[slot].state != SLOT_OPEN ? -EBADF
						  : 0;
	if (!ret)
		c->sw[slot].prio = prio;
	vkvi_cache_leave(c);
	return ret;
}
