/* SPDX-License-Identifier: MIT */
/*
 * compat.c - the VKV_0.1 versions of functions whose ABI changed, for
 * programs built against older headers (today's are in cache.c).
 *
 * An old program passes (or gets) the shorter struct vkv_geometry_v01; it
 * cannot name an element type, so its caches have an unspecified one.
 */
#include <errno.h>
#include <string.h>

#include "abi.h"

__asm__(".symver vkvi_cache_create_v01, vkv_cache_create@VKV_0.1");
__asm__(".symver vkvi_cache_geometry_v01, vkv_cache_geometry@VKV_0.1");

VKV_EXPORT int vkvi_cache_create_v01(const struct vkv_geometry_v01 *geom,
				     const struct vkv_config *cfg,
				     struct vkv_cache **out)
{
	struct vkv_geometry g;

	if (!geom)
		return vkvi_cache_create_v03(NULL, cfg, out);
	memset(&g, 0, sizeof(g));
	g.layers = geom->layers;
	g.kv_heads = geom->kv_heads;
	g.head_dim = geom->head_dim;
	g.elem_size = geom->elem_size;
	g.max_seqs = geom->max_seqs;
	g.max_tokens = geom->max_tokens;
	g.layout = geom->layout;
	g.dtype = VKV_DTYPE_UNSPECIFIED;
	return vkvi_cache_create_v03(&g, cfg, out);
}

VKV_EXPORT int vkvi_cache_geometry_v01(const struct vkv_cache *c,
				       struct vkv_geometry_v01 *out)
{
	struct vkv_geometry g;
	int ret;

	if (!out)
		return -EINVAL;
	ret = vkvi_cache_geometry_v03(c, &g);
	if (ret)
		return ret;
	/* Only the old struct's bytes: the caller's is that short. */
	out->layers = g.layers;
	out->kv_heads = g.kv_heads;
	out->head_dim = g.head_dim;
	out->elem_size = g.elem_size;
	out->max_seqs = g.max_seqs;
	out->max_tokens = g.max_tokens;
	out->layout = g.layout;
	return 0;
}
