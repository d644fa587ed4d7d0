/* SPDX-License-Identifier: MIT */
/*
 * abi.h - the versioned implementations behind public names whose ABI
 * changed. Internal to the library.
 *
 * struct vkv_geometry grew a dtype field in version 0.3, so the functions
 * that take or fill it exist twice: the VKV_0.3 versions over today's
 * struct (the default a program links against), and the VKV_0.1 versions
 * over the struct of 0.1 and 0.2, for programs built against those headers.
 * The .symver directives bind each to its public name and version node;
 * lib/libvkv.map lists both nodes.
 */
#ifndef VKV_ABI_H
#define VKV_ABI_H

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

VKV_EXPORT int vkvi_cache_create_v03(const struct vkv_geometry *geom,
				     const struct vkv_config *cfg,
				     struct vkv_cache **out);
VKV_EXPORT int vkvi_cache_geometry_v03(const struct vkv_cache *c,
				       struct vkv_geometry *out);
VKV_EXPORT int vkvi_cache_create_v01(const struct vkv_geometry_v01 *geom,
				     const struct vkv_config *cfg,
				     struct vkv_cache **out);
VKV_EXPORT int vkvi_cache_geometry_v01(const struct vkv_cache *c,
				       struct vkv_geometry_v01 *out);

#endif /* VKV_ABI_H */
