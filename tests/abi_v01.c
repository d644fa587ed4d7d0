/* SPDX-License-Identifier: MIT */
/*
 * abi_v01.c - a program as built against the 0.1/0.2 header, whose struct
 * vkv_geometry had no dtype: linked to the VKV_0.1 versions of the two
 * functions that take it, it must get a working cache, and a geometry
 * written within its shorter struct. Built against the installed shared
 * library by make check-install.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vkv.h>

/* The 0.1 layout, as old programs were compiled with it. */
struct old_geometry {
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t elem_size;
	uint32_t max_seqs;
	uint32_t max_tokens;
	enum vkv_layout layout;
};

int old_create(const struct old_geometry *geom, const struct vkv_config *cfg,
	       struct vkv_cache **out);
int old_geometry(const struct vkv_cache *c, struct old_geometry *out);
__asm__(".symver old_create, vkv_cache_create@VKV_0.1");
__asm__(".symver old_geometry, vkv_cache_geometry@VKV_0.1");

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "abi_v01: " __VA_ARGS__);                      \
		fprintf(stderr, "\n");                                         \
		return 1;                                                      \
	} while (0)

int main(void)
{
	struct old_geometry g = {2, 4, 64, 2, 4, 256, VKV_LAYOUT_TOKEN_MAJOR};
	struct {
		struct old_geometry g;
		uint32_t canary;
	} out;
	struct vkv_config cfg;
	struct vkv_cache *c = NULL;
	uint32_t slot, len = 100;
	int ret;

	if (vkv_config_init(&cfg))
		FAIL("config: %s", vkv_config_error());
	cfg.pool_low = cfg.pool_high = 0;
	ret = old_create(&g, &cfg, &c);
	if (ret)
		FAIL("create: %s (%s)", vkv_strerror(ret), vkv_config_error());
	memset(&out, 0xa5, sizeof(out));
	ret = old_geometry(c, &out.g);
	if (ret)
		FAIL("geometry: %s", vkv_strerror(ret));
	if (memcmp(&out.g, &g, sizeof(g)))
		FAIL("geometry differs from what was given");
	if (out.canary != 0xa5a5a5a5u)
		FAIL("geometry wrote past the old struct");
	slot = (uint32_t)vkv_seq_open(c);
	ret = vkv_step(c, &slot, &len, 1);
	if (ret)
		FAIL("step: %s", vkv_strerror(ret));
	memset(vkv_token_ptr(c, 1, VKV_V, slot, 99), 1, 4 * 64 * 2);
	vkv_cache_destroy(c);
	/* Old programs keep the old checks: a zero field is still refused. */
	g.head_dim = 0;
	if (old_create(&g, &cfg, &c) != -EINVAL)
		FAIL("a zero head_dim was not refused");
	/* Quantize cannot know 2-byte elements without a dtype. */
	g.head_dim = 64;
	cfg.quantize = 1;
	cfg.host_budget = 64ul << 20;
	if (old_create(&g, &cfg, &c) != -EINVAL)
		FAIL("quantized 2-byte elements of unknown type were accepted");
	printf("abi_v01: the VKV_0.1 ABI works\n");
	return 0;
}
