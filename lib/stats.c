/* SPDX-License-Identifier: MIT */
/*
 * stats.c - lock-free latency histograms.
 */
#include "internal.h"

void vkvi_hist_add(struct vkv_hist *h, uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;
	uint64_t cur;

	if (b >= VKV_HIST_BUCKETS)
		b = VKV_HIST_BUCKETS - 1;
	vkv_add(&h->bucket[b], 1);
	vkv_add(&h->sum_ns, ns);
	cur = vkv_load(&h->max_ns);
	while (ns > cur &&
	       !__atomic_compare_exchange_n(&h->max_ns, &cur, ns, true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	/* Count last so that a reader never sees more samples than buckets. */
	vkv_add(&h->count, 1);
}

void vkvi_hist_read(const struct vkv_hist *src, struct vkv_hist *dst)
{
	dst->count = vkv_load(&src->count);
	dst->sum_ns = vkv_load(&src->sum_ns);
	dst->max_ns = vkv_load(&src->max_ns);
	for (int i = 0; i < VKV_HIST_BUCKETS; i++)
		dst->bucket[i] = vkv_load(&src->bucket[i]);
}

VKV_EXPORT uint64_t vkv_hist_percentile(const struct vkv_hist *h, double pct)
{
	uint64_t total = 0, want, seen = 0;

	if (!h || !(pct > 0.0) || pct > 100.0)
		return 0;
	for (int i = 0; i < VKV_HIST_BUCKETS; i++)
		total += h->bucket[i];
	if (!total)
		return 0;
	want = (uint64_t)(pct / 100.0 * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (int i = 0; i < VKV_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t hi = (i >= 63) ? UINT64_MAX : (2ull << i) - 1;

			return hi < h->max_ns ? hi : h->max_ns;
		}
	}
	return h->max_ns;
}
