// SPDX-License-Identifier: MIT
/*
 * need.c - pages a sequence needs: the union, over every layer's K and V,
 * of the pages its rows touch. Tensors may share pages (the token-major
 * layouts interleave layers, and K with V), hence the union rather than a
 * sum.
 */
#include <errno.h>
#include <stdlib.h>

#include "need.h"

int need_init(struct need_model *m, const struct vkv_tensor *t, uint32_t layers,
	      size_t row_bytes, size_t page)
{
	m->n = 2 * layers;
	m->page = page;
	m->row_bytes = row_bytes;
	m->t = t;
	/*
	 * Pages are laid from the start of the reservation, which is only
	 * aligned to the backend's granularity: count from the lowest tensor
	 * base, not from address 0, or pages larger than the granularity
	 * would be cut at the wrong places.
	 */
	m->origin = (uintptr_t)t[0].base;
	for (uint32_t i = 1; i < m->n; i++)
		if ((uintptr_t)t[i].base < m->origin)
			m->origin = (uintptr_t)t[i].base;
	m->iv = calloc(m->n, sizeof(*m->iv));
	return m->iv ? 0 : -ENOMEM;
}

void need_free(struct need_model *m)
{
	free(m->iv);
	m->iv = NULL;
}

static int cmp_iv(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

uint64_t need_pages(const struct need_model *m, uint32_t slot, uint32_t len)
{
	uint64_t total = 0, lo, hi;
	uint32_t i;

	if (!len)
		return 0;
	for (i = 0; i < m->n; i++) {
		const struct vkv_tensor *t = &m->t[i];
		uintptr_t a = (uintptr_t)t->base - m->origin +
			      (uintptr_t)slot * t->slot_stride;
		uintptr_t z = a + (uintptr_t)(len - 1) * t->token_stride +
			      m->row_bytes - 1;

		m->iv[i][0] = a / m->page;
		m->iv[i][1] = z / m->page;
	}
	qsort(m->iv, m->n, sizeof(*m->iv), cmp_iv);
	lo = m->iv[0][0];
	hi = m->iv[0][1];
	for (i = 1; i < m->n; i++) {
		if (m->iv[i][0] > hi + 1) {
			total += hi - lo + 1;
			lo = m->iv[i][0];
			hi = m->iv[i][1];
		} else if (m->iv[i][1] > hi) {
			hi = m->iv[i][1];
		}
	}
	return total + hi - lo + 1;
}
