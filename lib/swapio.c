/* SPDX-License-Identifier: MIT */
/*
 * swapio.c - the mechanism of swapping: a sequence's data between its
 * mapped pages and the host and disk tiers, and what each slot holds there.
 *
 * A swapped-out sequence stays open and keeps its slot, so its virtual
 * addresses stay reserved for it: swap-in maps new pages at the same
 * addresses (reclaim.c acquires and maps them first) and the copy here
 * brings the data back, and pointers the engine holds (or a CUDA graph
 * captured over them) stay valid. Only pages [0, pages_for(len)) of each
 * segment are saved; the tail beyond the length holds nothing.
 *
 * Callers choose: the eviction policy (evict.c) swaps out on the caller's
 * thread with the lock held, the swap worker (swap.c) with the lock dropped
 * around the copy (@unlocked); the slot is `busy` meanwhile, and everything
 * that would touch it waits for it or leaves it alone.
 *
 * Stored form: a page as it is, or (quantize) vkvi_quant_page()'s form:
 * int8 head vectors with one scale each, and the vectors cut by the page's
 * edges as they are; chunk_bytes is the largest, rounded up to 4 KiB.
 *
 * The disk tier is one of two things. Without the kernel module it is the
 * library's swap file (tier_disk.c), and a sequence there holds disk slots.
 * With the module (tiers.kdisk), the module is the host tier's backing
 * store: a sequence on disk keeps its host-tier chunks, which the module has
 * written to the file and freed (vkvi_host_tier_page_out), and they come
 * back through it (vkvi_host_tier_page_in) with their checksums verified.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backing.h"
#include "quant.h"
#include "slots.h"
#include "swapio.h"
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
	size_t need = c->lay.page_size + DISK_BATCH * c->tiers.chunk_bytes;

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
		io->bounce[i] = (char *)io->mem + c->lay.page_size +
				(size_t)i * c->tiers.chunk_bytes;
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
		return ops->copy(c->be, dst, (void *)va, c->lay.page_size,
				 VKV_COPY_TO_HOST);
	ret = ops->copy(c->be, io->page, (void *)va, c->lay.page_size,
			VKV_COPY_TO_HOST);
	if (ret)
		return ret;
	/* Where head vectors are cut depends on the page's segment offset. */
	return vkvi_quant_page(&c->tiers.qpage,
			       (va - c->lay.base) % c->lay.slot_bytes, io->page,
			       dst);
}

static int restore_page(struct vkv_cache *c, struct swap_io *io, uintptr_t va,
			const void *src)
{
	const struct vkv_backend_ops *ops = c->be->ops;
	int ret;

	if (!c->cfg.quantize)
		return ops->copy(c->be, (void *)va, src, c->lay.page_size,
				 VKV_COPY_FROM_HOST);
	ret = vkvi_dequant_page(&c->tiers.qpage,
				(va - c->lay.base) % c->lay.slot_bytes, src,
				io->page);
	if (ret)
		return ret;
	return ops->copy(c->be, (void *)va, io->page, c->lay.page_size,
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
			vkvi_host_tier_free(c->tiers.host, chunks[i]);
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

	if (!swapio_has_disk(c))
		return -ENOMEM;
	for (vkv_slot_t i = 0; i < c->geom.max_seqs; i++) {
		struct swap_slot *w = &c->swp.sw[i];

		if (i == except || w->tier != VKV_TIER_HOST || w->busy)
			continue;
		if (!v || w->last_use < v->last_use)
			v = w;
	}
	if (!v)
		return -ENOMEM;
	n = (size_t)v->pages * c->lay.ntensors;
	if (c->tiers.kdisk) {
		/* The chunks stay; the module writes them out and frees
		 * their memory. */
		ret = vkvi_host_tier_page_out(c->tiers.host, v->chunks, n);
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
	ret = vkvi_disk_write(c->tiers.disk, (const void *const *)v->chunks,
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
		int ret = vkvi_host_tier_alloc(c->tiers.host, &chunks[i]);

		while (ret == -ENOMEM && !demote_one(c, slot))
			ret = vkvi_host_tier_alloc(c->tiers.host, &chunks[i]);
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
	struct swap_slot *w = &c->swp.sw[slot];
	size_t n = (size_t)w->pages * c->lay.ntensors;
	int ret;

	for (;;) {
		if (unlocked)
			vkvi_gate_leave(&c->gate);
		ret = vkvi_host_tier_page_in(c->tiers.host, w->chunks, n);
		if (unlocked)
			vkvi_gate_enter(&c->gate, ENTER_SWAP);
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
			ret = vkvi_disk_write(c->tiers.disk,
					      (const void *const *)io->bounce,
					      b, ds + i);
		if (ret) {
			if (i)
				vkvi_disk_free(c->tiers.disk, ds, (unsigned)i);
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
		int ret = vkvi_disk_read(c->tiers.disk, io->bounce, ds + i, b);

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
	struct vkv_slot *s = &c->tab.slots[slot];
	uint64_t pages = (uint64_t)pages_for(c, s->len) * c->lay.ntensors;

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
int vkvi_swapio_out(struct vkv_cache *c, vkv_slot_t slot, enum vkv_tier tier,
		    bool unlocked)
{
	struct swap_slot *w = &c->swp.sw[slot];
	uint32_t pages = pages_for(c, c->tab.slots[slot].len);
	size_t n = (size_t)pages * c->lay.ntensors;
	void **chunks = NULL;
	uint64_t *ds = NULL;
	struct swap_io io;
	int ret;

	vkvi_assert_held(&c->gate);
	if (tier == VKV_TIER_HOST && !c->tiers.host)
		tier = VKV_TIER_DISK;
	if ((tier == VKV_TIER_DISK && !swapio_has_disk(c)) ||
	    (!c->tiers.host && !swapio_has_disk(c)))
		return -ENODEV;
	ret = io_init(c, &io);
	if (ret)
		return ret;
	/* With the module, disk is reached through the host tier. */
	if (tier == VKV_TIER_HOST || c->tiers.kdisk) {
		chunks = calloc(n ? n : 1, sizeof(*chunks));
		ret = chunks ? alloc_chunks(c, slot, chunks, n) : -ENOMEM;
		if (ret == -ENOMEM && c->tiers.disk) {
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
		vkvi_gate_leave(&c->gate);
	if (chunks) {
		for (size_t i = 0; i < n && !ret; i++)
			ret = save_page(c, &io, saved_va(c, slot, pages, i),
					chunks[i]);
		if (!ret && tier == VKV_TIER_DISK)
			ret = vkvi_host_tier_page_out(c->tiers.host, chunks, n);
	} else {
		ret = save_to_disk(c, &io, slot, pages, ds, n);
	}
	if (unlocked)
		vkvi_gate_enter(&c->gate, ENTER_SWAP);
	if (ret)
		goto fail;

	/* Saved: now the pages can go, all of them. */
	ret = vkvi_backing_shrink(c, slot, 0);
	if (ret < 0) {
		if (ds)
			vkvi_disk_free(c->tiers.disk, ds, (unsigned)n);
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
	vkv_add(&c->cnt.swap_out_bytes, n * c->lay.page_size);
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
void vkvi_swapio_drop(struct vkv_cache *c, vkv_slot_t slot)
{
	struct swap_slot *w = &c->swp.sw[slot];
	size_t n = (size_t)w->pages * c->lay.ntensors;

	if (w->chunks)
		free_chunks(c, w->chunks, n);
	else if (w->dslots)
		vkvi_disk_free(c->tiers.disk, w->dslots, (unsigned)n);
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
 * The copy of a swap-in, into the pages reclaim mapped for it at the saved
 * length (vkvi_reclaim_swap_in, or the swap call that queued it). With
 * @unlocked (the swap worker) the copy runs outside the cache; nothing but
 * @slot's own pages and saved copy is touched. On -EIO the data is lost:
 * the pages are given back and the sequence stays swapped out, failing
 * again until it is closed.
 */
int vkvi_swapio_in_copy(struct vkv_cache *c, vkv_slot_t slot, bool unlocked)
{
	struct swap_slot *w = &c->swp.sw[slot];
	size_t n = (size_t)w->pages * c->lay.ntensors;
	struct swap_io io;
	int ret;

	vkvi_assert_held(&c->gate);
	ret = io_init(c, &io);
	if (!ret && w->chunks)
		ret = fetch_chunks(c, slot, unlocked);
	if (ret) {
		vkvi_backing_shrink(c, slot, 0);
		goto out;
	}
	if (unlocked)
		vkvi_gate_leave(&c->gate);
	if (w->chunks) {
		for (size_t i = 0; i < n && !ret; i++)
			ret = restore_page(c, &io,
					   saved_va(c, slot, w->pages, i),
					   w->chunks[i]);
	} else {
		ret = load_from_disk(c, &io, slot, w->pages, w->dslots, n);
	}
	if (unlocked)
		vkvi_gate_enter(&c->gate, ENTER_SWAP);
	if (ret) {
		vkvi_backing_shrink(c, slot, 0);
		goto out;
	}
	vkvi_swapio_drop(c, slot);
	account(c, slot, +1);
	vkv_add(&c->cnt.swap_ins, 1);
	vkv_add(&c->cnt.swap_in_bytes, n * c->lay.page_size);
out:
	if (ret)
		vkv_add(&c->cnt.swap_errors, 1);
	io_fini(&io);
	return ret;
}

void vkvi_swapio_wait_idle(struct vkv_cache *c, vkv_slot_t slot)
{
	while (c->swp.sw[slot].busy)
		vkvi_gate_wait(&c->gate, &c->swp.cond);
}

void vkvi_swapio_forget(struct vkv_cache *c, vkv_slot_t slot)
{
	vkvi_assert_held(&c->gate);
	vkvi_swapio_wait_idle(c, slot);
	if (c->swp.sw[slot].tier != VKV_TIER_DEVICE) {
		account(c, slot, +1);
		vkvi_swapio_drop(c, slot);
	}
	c->swp.sw[slot].prio = 0;
	c->swp.sw[slot].err = 0;
}
