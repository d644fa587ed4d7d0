/* SPDX-License-Identifier: MIT */
/*
 * compat.c - the older versions of functions whose ABI changed, for
 * programs built against older headers (abi.h lists them; the defaults are
 * beside the rest of their code).
 *
 * Each converts between the caller's older, shorter struct and today's, then
 * calls today's version: what an old program passes in gets a zero reserved
 * tail (and, from 0.1, an unspecified element type, which it cannot name),
 * and what it gets back is cut to the bytes its struct has.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "abi.h"

/*
 * Structs that only gained a tail are copied as a prefix: today's struct
 * must begin with exactly the old one.
 */
_Static_assert(sizeof(struct vkv_config_v01) ==
			       offsetof(struct vkv_config, reserved) &&
		       offsetof(struct vkv_config_v01, io_uring) ==
			       offsetof(struct vkv_config, io_uring),
	       "struct vkv_config no longer begins with the 0.1 struct");
_Static_assert(sizeof(struct vkv_stats_v01) ==
			       offsetof(struct vkv_stats, reserved) &&
		       offsetof(struct vkv_stats_v01, map_lat) ==
			       offsetof(struct vkv_stats, map_lat),
	       "struct vkv_stats no longer begins with the 0.1 struct");
_Static_assert(sizeof(struct vkv_seq_info_v01) ==
		       offsetof(struct vkv_seq_info, reserved),
	       "struct vkv_seq_info no longer begins with the 0.1 struct");
_Static_assert(sizeof(struct vkv_geometry_v03) ==
		       offsetof(struct vkv_geometry, reserved),
	       "struct vkv_geometry no longer begins with the 0.3 struct");

__asm__(".symver vkvi_config_init_v01, vkv_config_init@VKV_0.1");
__asm__(".symver vkvi_cache_create_v01, vkv_cache_create@VKV_0.1");
__asm__(".symver vkvi_cache_geometry_v01, vkv_cache_geometry@VKV_0.1");
__asm__(".symver vkvi_cache_stats_v01, vkv_cache_stats@VKV_0.1");
__asm__(".symver vkvi_seq_info_v01, vkv_seq_info@VKV_0.1");
__asm__(".symver vkvi_cache_create_v03, vkv_cache_create@VKV_0.3");
__asm__(".symver vkvi_cache_geometry_v03, vkv_cache_geometry@VKV_0.3");

/* @cfg may be NULL (the defaults), and stays so. */
static const struct vkv_config *
config_from_v01(const struct vkv_config_v01 *cfg, struct vkv_config *tmp)
{
	if (!cfg)
		return NULL;
	memset(tmp, 0, sizeof(*tmp));
	memcpy(tmp, cfg, sizeof(*cfg));
	return tmp;
}

VKV_EXPORT int vkvi_config_init_v01(struct vkv_config_v01 *cfg)
{
	struct vkv_config tmp;
	int ret;

	if (!cfg)
		return -EINVAL;
	ret = vkvi_config_init_v04(&tmp);
	memcpy(cfg, &tmp, sizeof(*cfg));
	return ret;
}

VKV_EXPORT int vkvi_cache_create_v03(const struct vkv_geometry_v03 *geom,
				     const struct vkv_config_v01 *cfg,
				     struct vkv_cache **out)
{
	struct vkv_config ctmp;
	struct vkv_geometry g;

	if (!geom)
		return vkvi_cache_create_v04(NULL, config_from_v01(cfg, &ctmp),
					     out);
	memset(&g, 0, sizeof(g));
	memcpy(&g, geom, sizeof(*geom));
	return vkvi_cache_create_v04(&g, config_from_v01(cfg, &ctmp), out);
}

VKV_EXPORT int vkvi_cache_geometry_v03(const struct vkv_cache *c,
				       struct vkv_geometry_v03 *out)
{
	struct vkv_geometry g;
	int ret;

	if (!out)
		return -EINVAL;
	ret = vkvi_cache_geometry_v04(c, &g);
	if (ret)
		return ret;
	memcpy(out, &g, sizeof(*out));
	return 0;
}

VKV_EXPORT int vkvi_cache_create_v01(const struct vkv_geometry_v01 *geom,
				     const struct vkv_config_v01 *cfg,
				     struct vkv_cache **out)
{
	struct vkv_geometry_v03 g;

	if (!geom)
		return vkvi_cache_create_v03(NULL, cfg, out);
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
	ret = vkvi_cache_geometry_v04(c, &g);
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

VKV_EXPORT int vkvi_cache_stats_v01(const struct vkv_cache *c,
				    struct vkv_stats_v01 *out)
{
	struct vkv_stats s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = vkvi_cache_stats_v04(c, &s);
	if (ret)
		return ret;
	memcpy(out, &s, sizeof(*out));
	return 0;
}

VKV_EXPORT int vkvi_seq_info_v01(const struct vkv_cache *c, vkv_slot_t slot,
				 struct vkv_seq_info_v01 *out)
{
	struct vkv_seq_info info;
	int ret;

	if (!out)
		return -EINVAL;
	ret = vkvi_seq_info_v04(c, slot, &info);
	if (ret)
		return ret;
	memcpy(out, &info, sizeof(*out));
	return 0;
}
