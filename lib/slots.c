/* SPDX-License-Identifier: MIT */
/*
 * slots.c - the slot table and its two lists of closed slots.
 *
 * A closed slot keeps its pages (deferred reclamation, as in vAttention): a
 * new sequence that lands in it finds its first pages already mapped, and
 * reclaim takes them back, coldest slot first, only when the pool runs dry.
 * Closed slots with pages sit on an LRU list; closed slots without pages on
 * a stack.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "slots.h"

int vkvi_slots_init(struct vkv_cache *c)
{
	struct slot_table *t = &c->tab;
	uint32_t n = c->geom.max_seqs;

	t->slots = calloc(n, sizeof(*t->slots));
	t->empty = malloc(n * sizeof(*t->empty));
	if (!t->slots || !t->empty)
		return -ENOMEM;
	/*
	 * One handle per page of the whole range. Reserved, not committed: only
	 * the entries of pages actually mapped are ever touched.
	 */
	t->handles_bytes =
		c->lay.va_size / c->lay.page_size * sizeof(vkv_handle_t);
	t->handles = mmap(NULL, t->handles_bytes, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->handles == MAP_FAILED) {
		t->handles = NULL;
		return -ENOMEM;
	}
	t->lru_head = t->lru_tail = NO_SLOT;
	/* Pushed high to low, so that slot 0 is the first one opened. */
	for (uint32_t i = 0; i < n; i++) {
		t->slots[i].prev = t->slots[i].next = NO_SLOT;
		t->empty[i] = n - 1 - i;
	}
	t->nempty = n;
	t->shrink_buf = malloc((size_t)c->lay.seg_pages * c->lay.ntensors *
			       sizeof(vkv_handle_t));
	if (!t->shrink_buf)
		return -ENOMEM;
	return 0;
}

void vkvi_slots_fini(struct vkv_cache *c)
{
	struct slot_table *t = &c->tab;

	if (t->handles)
		munmap(t->handles, t->handles_bytes);
	free(t->slots);
	free(t->empty);
	free(t->shrink_buf);
	t->handles = NULL;
	t->slots = NULL;
	t->empty = NULL;
	t->shrink_buf = NULL;
}

void vkvi_lru_remove(struct vkv_cache *c, vkv_slot_t slot)
{
	struct slot_table *t = &c->tab;
	struct vkv_slot *s = &t->slots[slot];

	vkvi_assert_held(&c->gate);
	if (s->prev != NO_SLOT)
		t->slots[s->prev].next = s->next;
	else
		t->lru_head = s->next;
	if (s->next != NO_SLOT)
		t->slots[s->next].prev = s->prev;
	else
		t->lru_tail = s->prev;
	s->prev = s->next = NO_SLOT;
}

static void lru_push_tail(struct vkv_cache *c, vkv_slot_t slot)
{
	struct slot_table *t = &c->tab;
	struct vkv_slot *s = &t->slots[slot];

	vkvi_assert_held(&c->gate);
	s->prev = t->lru_tail;
	s->next = NO_SLOT;
	if (t->lru_tail != NO_SLOT)
		t->slots[t->lru_tail].next = slot;
	else
		t->lru_head = slot;
	t->lru_tail = slot;
}

void vkvi_empty_push(struct vkv_cache *c, vkv_slot_t slot)
{
	vkvi_assert_held(&c->gate);
	c->tab.empty[c->tab.nempty++] = slot;
}

/* The most recently closed slot with pages: its memory is warm. */
int vkvi_slot_take(struct vkv_cache *c)
{
	struct slot_table *t = &c->tab;
	vkv_slot_t slot;
	uint64_t pages;

	vkvi_assert_held(&c->gate);
	if (t->lru_tail != NO_SLOT) {
		slot = t->lru_tail;
		vkvi_lru_remove(c, slot);
		pages = (uint64_t)t->slots[slot].npages * c->lay.ntensors;
		vkv_sub(&c->cnt.pages_cached, pages);
		vkv_add(&c->cnt.pages_open, pages);
		return (int)slot; /* below VKV_MAX_SEQS */
	}
	if (t->nempty)
		return (int)t->empty[--t->nempty];
	return -ENOSPC;
}

void vkvi_slot_park(struct vkv_cache *c, vkv_slot_t slot)
{
	const struct vkv_slot *s = &c->tab.slots[slot];
	uint64_t pages = (uint64_t)s->npages * c->lay.ntensors;

	vkvi_assert_held(&c->gate);
	if (s->npages) {
		vkv_sub(&c->cnt.pages_open, pages);
		vkv_add(&c->cnt.pages_cached, pages);
		lru_push_tail(c, slot);
	} else {
		vkvi_empty_push(c, slot);
	}
}
