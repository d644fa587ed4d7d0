/* SPDX-License-Identifier: MIT */
/*
 * cache.c - cache life cycle, layouts and the tensor views they give.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "backing.h"
#include "cache.h"
#include "slots.h"
#include "step.h"
#include "swap.h"
#include "tier_disk.h"
#include "tier_host.h"

/* Largest range a cache reserves: 64 TiB, well inside x86-64's and GPUs'. */
#define VA_MAX (1ull << 46)

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* Bytes per element of @t; 0 for VKV_DTYPE_UNSPECIFIED or an unknown one. */
static uint32_t dtype_size(enum vkv_dtype t)
{
	switch (t) {
	case VKV_DTYPE_F16:
	case VKV_DTYPE_BF16:
		return 2;
	case VKV_DTYPE_F32:
		return 4;
	case VKV_DTYPE_F8_E4M3:
	case VKV_DTYPE_F8_E5M2:
	case VKV_DTYPE_I8:
		return 1;
	case VKV_DTYPE_UNSPECIFIED:
	default:
		return 0;
	}
}

/*
 * The element type and size: an unknown dtype or a size that contradicts
 * it would make quantized tiers and tensor descriptions read the bytes
 * wrongly, so both are refused; a size of 0 is taken from the type.
 */
static int dtype_init(struct vkv_geometry *g)
{
	uint32_t size = dtype_size(g->dtype);

	if (g->dtype == VKV_DTYPE_UNSPECIFIED)
		return 0;
	if (!size) {
		vkvi_config_seterr("geometry: unknown dtype %d", (int)g->dtype);
		return -EINVAL;
	}
	if (!g->elem_size) {
		g->elem_size = size;
	} else if (g->elem_size != size) {
		vkvi_config_seterr(
			"geometry: elem_size %u contradicts dtype %d "
			"(%u bytes)",
			g->elem_size, (int)g->dtype, size);
		return -EINVAL;
	}
	return 0;
}

/* Geometry checks and the layout's derived sizes; no allocation. */
static int layout_init(struct vkv_cache *c, const struct vkv_geometry *g)
{
	uint64_t row, stride, seg, tensor, va;

	if (!g->layers || !g->kv_heads || !g->head_dim || !g->elem_size ||
	    !g->max_seqs || !g->max_tokens) {
		vkvi_config_seterr("geometry: every field must be non-zero");
		return -EINVAL;
	}
	if (!vkvi_reserved_zero(g->reserved, sizeof(g->reserved))) {
		vkvi_config_seterr("geometry: reserved must be zero (a field "
				   "of a newer libvkv?)");
		return -EINVAL;
	}
	/* Oversized fields are -EOVERFLOW, like an oversized product below. */
	if (g->max_seqs > VKV_MAX_SEQS) {
		vkvi_config_seterr("geometry: max_seqs %u is too large",
				   g->max_seqs);
		return -EOVERFLOW;
	}
	switch (g->layout) {
	case VKV_LAYOUT_PER_LAYER:
		c->lay.ntensors = 2 * g->layers;
		break;
	case VKV_LAYOUT_TOKEN_MAJOR:
		c->lay.ntensors = 2;
		break;
	case VKV_LAYOUT_TOKEN_MAJOR_KV:
		c->lay.ntensors = 1;
		break;
	default:
		vkvi_config_seterr("geometry: unknown layout %d",
				   (int)g->layout);
		return -EINVAL;
	}
	if (g->layers > (1u << 20)) {
		vkvi_config_seterr("geometry: %u layers is too many",
				   g->layers);
		return -EOVERFLOW;
	}
	if (!mul_ok(g->kv_heads, g->head_dim, &row) ||
	    !mul_ok(row, g->elem_size, &row) ||
	    !mul_ok(row, (uint64_t)2 * g->layers / c->lay.ntensors, &stride) ||
	    !mul_ok(stride, g->max_tokens, &seg) || seg > VA_MAX) {
		vkvi_config_seterr(
			"geometry: a sequence of %u tokens does not fit",
			g->max_tokens);
		return -EOVERFLOW;
	}
	seg = (seg + c->lay.page_size - 1) & ~(uint64_t)(c->lay.page_size - 1);
	if (!mul_ok(seg, g->max_seqs, &tensor) ||
	    !mul_ok(tensor, c->lay.ntensors, &va) || va > VA_MAX) {
		vkvi_config_seterr(
			"geometry: %u slots of %u tokens need more than "
			"%llu bytes of address space",
			g->max_seqs, g->max_tokens, (unsigned long long)VA_MAX);
		return -EOVERFLOW;
	}
	c->lay.row_bytes = row;
	c->lay.token_stride = stride;
	c->lay.slot_bytes = seg;
	c->lay.tensor_bytes = tensor;
	c->lay.va_size = va;
	c->lay.seg_pages = (uint32_t)(seg / c->lay.page_size);
	return 0;
}

static void cache_free(struct vkv_cache *c)
{
	vkvi_swap_fini(c);
	if (c->lay.base)
		c->be->ops->unreserve(c->be, c->lay.base, c->lay.va_size);
	vkv_backend_destroy(c->be);
	vkvi_slots_fini(c);
	free(c->job.slots);
	free(c->job.lens);
	free(c->job.la_pages);
	pthread_cond_destroy(&c->swp.cond);
	vkvi_gate_destroy(&c->gate);
	free(c);
}

/* The default versions of the public names; see abi.h. */
__asm__(".symver vkvi_cache_create_v04, vkv_cache_create@@VKV_0.4");
__asm__(".symver vkvi_cache_geometry_v04, vkv_cache_geometry@@VKV_0.4");
__asm__(".symver vkvi_cache_stats_v04, vkv_cache_stats@@VKV_0.4");

VKV_EXPORT int vkvi_cache_create_v04(const struct vkv_geometry *geom,
				     const struct vkv_config *cfg,
				     struct vkv_cache **out)
{
	struct vkv_cache *c;
	size_t budget, low, high;
	int ret;

	if (!geom || !out) {
		vkvi_config_seterr("geometry and out must not be NULL");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = vkvi_gate_init(&c->gate);
	if (ret) {
		free(c);
		return ret;
	}
	pthread_cond_init(&c->swp.cond, NULL);
	if (cfg) {
		c->cfg = *cfg;
	} else {
		ret = vkv_config_init(&c->cfg);
		if (ret)
			goto err;
	}
	ret = vkvi_config_validate(&c->cfg);
	if (ret)
		goto err;
	c->geom = *geom;
	c->lay.page_size = c->cfg.page_size;
	ret = dtype_init(&c->geom);
	if (ret)
		goto err;
	ret = layout_init(c, &c->geom);
	if (ret)
		goto err;
	ret = vkvi_backend_open(&c->cfg, &c->be);
	if (ret) {
		vkvi_config_seterr("backend could not be opened: %s",
				   vkv_strerror(ret));
		goto err;
	}
	if (c->lay.page_size % c->be->granularity) {
		vkvi_config_seterr("page_size %zu is not a multiple of the %s "
				   "backend's granularity %zu",
				   c->lay.page_size, c->be->ops->name,
				   c->be->granularity);
		ret = -EINVAL;
		goto err;
	}
	ret = vkvi_slots_init(c);
	if (ret)
		goto err;
	ret = vkvi_swap_init(c);
	if (ret)
		goto err;
	ret = c->be->ops->reserve(c->be, c->lay.va_size, &c->lay.base);
	if (ret) {
		c->lay.base = 0;
		vkvi_config_seterr(
			"reserving %zu bytes of address space failed",
			c->lay.va_size);
		goto err;
	}
	/* Without a budget the device's memory is the cap. */
	budget = c->cfg.budget ? c->cfg.budget : c->be->mem_total;
	budget /= c->lay.page_size;
	low = c->cfg.pool_low / c->lay.page_size;
	high = c->cfg.pool_high / c->lay.page_size;
	ret = vkvi_pool_init(&c->pool, c->be, c->lay.page_size, budget, low,
			     high);
	if (ret)
		goto err;
	vkvi_log(&c->cfg, VKV_LOG_DEBUG,
		 "vkv: cache of %u slots x %u tokens, %zu bytes reserved on %s",
		 geom->max_seqs, geom->max_tokens, c->lay.va_size,
		 c->be->ops->name);
	*out = c;
	return 0;
err:
	cache_free(c);
	return ret;
}

VKV_EXPORT void vkv_cache_destroy(struct vkv_cache *c)
{
	if (!c)
		return;
	vkvi_gate_enter(&c->gate, ENTER_CALL);
	vkvi_gate_leave(&c->gate);
	vkvi_step_worker_stop(c);
	vkvi_swap_fini(c);
	vkvi_backing_drop_all(c);
	vkvi_pool_fini(&c->pool);
	cache_free(c);
}

VKV_EXPORT int vkvi_cache_geometry_v04(const struct vkv_cache *c,
				       struct vkv_geometry *out)
{
	if (!c || !out)
		return -EINVAL;
	*out = c->geom;
	return 0;
}

VKV_EXPORT size_t vkv_cache_page_size(const struct vkv_cache *c)
{
	return c ? c->lay.page_size : 0;
}

VKV_EXPORT const char *vkv_cache_backend(const struct vkv_cache *c)
{
	return c ? c->be->ops->name : NULL;
}

VKV_EXPORT int vkv_cache_tensor(const struct vkv_cache *c, uint32_t layer,
				enum vkv_kv kv, struct vkv_tensor *out)
{
	const struct vkv_geometry *g;
	size_t in_token = 0;
	uint32_t t = 0;

	if (!c || !out || (kv != VKV_K && kv != VKV_V))
		return -EINVAL;
	g = &c->geom;
	if (layer >= g->layers)
		return -EINVAL;
	switch (g->layout) {
	case VKV_LAYOUT_PER_LAYER:
		t = layer * 2 + (uint32_t)kv;
		break;
	case VKV_LAYOUT_TOKEN_MAJOR:
		t = (uint32_t)kv;
		in_token = layer * c->lay.row_bytes;
		break;
	case VKV_LAYOUT_TOKEN_MAJOR_KV:
		in_token = ((size_t)kv * g->layers + layer) * c->lay.row_bytes;
		break;
	}
	out->base = (void *)(c->lay.base + t * c->lay.tensor_bytes + in_token);
	out->slot_stride = c->lay.slot_bytes;
	out->token_stride = c->lay.token_stride;
	out->head_stride = (size_t)g->head_dim * g->elem_size;
	out->elem_size = g->elem_size;
	return 0;
}

VKV_EXPORT void *vkv_token_ptr(const struct vkv_cache *c, uint32_t layer,
			       enum vkv_kv kv, vkv_slot_t slot, uint32_t token)
{
	struct vkv_tensor t;

	if (vkv_cache_tensor(c, layer, kv, &t) || slot >= c->geom.max_seqs ||
	    token >= c->geom.max_tokens)
		return NULL;
	return (char *)t.base + slot * t.slot_stride + token * t.token_stride;
}

VKV_EXPORT int vkvi_cache_stats_v04(const struct vkv_cache *c,
				    struct vkv_stats *s)
{
	const struct cache_counters *k;

	if (!c || !s)
		return -EINVAL;
	k = &c->cnt;
	memset(s, 0, sizeof(*s));
	s->page_size = c->lay.page_size;
	s->pages_open = vkv_load(&k->pages_open);
	s->pages_cached = vkv_load(&k->pages_cached);
	s->pages_needed = vkv_load(&k->pages_needed);
	s->mapped_bytes = (s->pages_open + s->pages_cached) * c->lay.page_size;
	s->live_bytes = vkv_load(&k->live_tokens) * c->lay.token_stride *
			c->lay.ntensors;
	s->pages_free = vkv_load(&c->pool.cnt.free);
	s->pages_created = vkv_load(&c->pool.cnt.created);
	s->budget_pages = c->pool.budget >= SIZE_MAX / 2 ? 0 : c->pool.budget;
	s->seqs_open = vkv_load(&k->seqs_open);
	s->map_calls = vkv_load(&k->map_calls);
	s->unmap_calls = vkv_load(&k->unmap_calls);
	s->create_calls = vkv_load(&c->pool.cnt.create_calls);
	s->release_calls = vkv_load(&c->pool.cnt.release_calls);
	s->create_sync = vkv_load(&c->pool.cnt.create_sync);
	s->reclaimed_pages = vkv_load(&k->reclaimed);
	s->enomem = vkv_load(&k->enomem);
	s->steps = vkv_load(&k->steps);
	s->swap_outs = vkv_load(&k->swap_outs);
	s->swap_ins = vkv_load(&k->swap_ins);
	s->evictions = vkv_load(&k->evictions);
	s->swap_errors = vkv_load(&k->swap_errors);
	s->seqs_host = vkv_load(&k->seqs_host);
	s->seqs_disk = vkv_load(&k->seqs_disk);
	s->swap_out_bytes = vkv_load(&k->swap_out_bytes);
	s->swap_in_bytes = vkv_load(&k->swap_in_bytes);
	if (c->tiers.host) {
		struct vkvi_host_tier_counters hc;

		vkvi_host_tier_counters(c->tiers.host, &hc);
		/* Chunks the module paged out are on disk. */
		s->host_tier_bytes = hc.used_bytes - hc.paged_bytes;
		s->disk_tier_bytes = hc.paged_bytes;
	}
	if (c->tiers.disk) {
		struct vkvi_disk_counters dc;

		vkvi_disk_counters(c->tiers.disk, &dc);
		s->disk_tier_bytes += dc.slots_used * dc.chunk;
	}
	vkvi_hist_read(&k->map_lat, &s->map_lat);
	vkvi_hist_read(&k->step_lat, &s->step_lat);
	return 0;
}
