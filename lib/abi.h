/* SPDX-License-Identifier: MIT */
/*
 * abi.h - the versioned implementations behind public names whose ABI
 * changed, and the structs of older versions they take. Internal to the
 * library.
 *
 * A function that takes or fills a struct whose size changed exists once per
 * size: the newest version over today's struct (the default a program links
 * against, defined beside the rest of its code), and older versions in
 * compat.c over the structs frozen below, for programs built against older
 * headers. The .symver directives bind each to its public name and version
 * node; lib/libvkv.map lists each name in every node it has a version in.
 *
 *   VKV_0.1  the first ABI.
 *   VKV_0.3  struct vkv_geometry gained dtype: vkv_cache_create(),
 *            vkv_cache_geometry().
 *   VKV_0.4  struct vkv_config, vkv_geometry, vkv_stats and vkv_seq_info
 *            gained their reserved tails: vkv_config_init(),
 *            vkv_cache_create(), vkv_cache_geometry(), vkv_cache_stats(),
 *            vkv_seq_info().
 *
 * Since 0.4 a struct grows into its reserved tail and keeps its size, so
 * new fields need no new version of the calls that take it.
 */
#ifndef VKV_ABI_H
#define VKV_ABI_H

#include <stdbool.h>

#include "internal.h"

/* The struct vkv_geometry of versions 0.1 and 0.2: no dtype. */
struct vkv_geometry_v01 {
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t elem_size;
	uint32_t max_seqs;
	uint32_t max_tokens;
	enum vkv_layout layout;
};

/* The struct vkv_geometry of version 0.3: no reserved tail. */
struct vkv_geometry_v03 {
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t elem_size;
	uint32_t max_seqs;
	uint32_t max_tokens;
	enum vkv_layout layout;
	enum vkv_dtype dtype;
};

/* The struct vkv_config of versions 0.1 to 0.3: no reserved tail. */
struct vkv_config_v01 {
	enum vkv_backend_kind backend;
	size_t page_size;
	size_t budget;
	size_t pool_low;
	size_t pool_high;
	size_t lookahead_tokens;
	int device;
	int numa_node;
	int log_level;
	vkv_log_fn log_fn;
	void *log_arg;
	size_t host_budget;
	const char *swap_path;
	uint32_t swap_qdepth;
	int evict;
	int quantize;
	int io_uring;
};

/*
 * The struct vkv_stats of versions 0.1 to 0.3: the 28 counters from
 * page_size to swap_in_bytes, then the two histograms; no reserved tail.
 */
struct vkv_stats_v01 {
	uint64_t counters[28];
	struct vkv_hist map_lat;
	struct vkv_hist step_lat;
};

/* The struct vkv_seq_info of versions 0.1 to 0.3: no reserved tail. */
struct vkv_seq_info_v01 {
	uint32_t open;
	uint32_t len;
	uint32_t backed;
	uint32_t pages;
	uint32_t segments;
	uint32_t tier;
	uint32_t busy;
	int32_t priority;
};

/* Is the reserved tail @p of @n bytes all zero? */
static inline bool vkvi_reserved_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* VKV_0.4, the defaults: config.c, cache.c, seq.c. */
VKV_EXPORT int vkvi_config_init_v04(struct vkv_config *cfg);
VKV_EXPORT int vkvi_cache_create_v04(const struct vkv_geometry *geom,
				     const struct vkv_config *cfg,
				     struct vkv_cache **out);
VKV_EXPORT int vkvi_cache_geometry_v04(const struct vkv_cache *c,
				       struct vkv_geometry *out);
VKV_EXPORT int vkvi_cache_stats_v04(const struct vkv_cache *c,
				    struct vkv_stats *out);
VKV_EXPORT int vkvi_seq_info_v04(const struct vkv_cache *c, vkv_slot_t slot,
				 struct vkv_seq_info *out);

/* VKV_0.3 and VKV_0.1: compat.c. */
VKV_EXPORT int vkvi_cache_create_v03(const struct vkv_geometry_v03 *geom,
				     const struct vkv_config_v01 *cfg,
				     struct vkv_cache **out);
VKV_EXPORT int vkvi_cache_geometry_v03(const struct vkv_cache *c,
				       struct vkv_geometry_v03 *out);
VKV_EXPORT int vkvi_config_init_v01(struct vkv_config_v01 *cfg);
VKV_EXPORT int vkvi_cache_create_v01(const struct vkv_geometry_v01 *geom,
				     const struct vkv_config_v01 *cfg,
				     struct vkv_cache **out);
VKV_EXPORT int vkvi_cache_geometry_v01(const struct vkv_cache *c,
				       struct vkv_geometry_v01 *out);
VKV_EXPORT int vkvi_cache_stats_v01(const struct vkv_cache *c,
				    struct vkv_stats_v01 *out);
VKV_EXPORT int vkvi_seq_info_v01(const struct vkv_cache *c, vkv_slot_t slot,
				 struct vkv_seq_info_v01 *out);

#endif /* VKV_ABI_H */
