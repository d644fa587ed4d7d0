/* SPDX-License-Identifier: MIT */
/*
 * abi_v03.c - a program as built against the 0.3 header, before struct
 * vkv_config, vkv_geometry, vkv_stats and vkv_seq_info had reserved tails:
 * linked to the versions of the calls that take them which it was built
 * with (VKV_0.3 for the geometry, VKV_0.1 for the rest), it must get a
 * working cache, the library must read nothing past its structs (the bytes
 * there are garbage to it) and write nothing past them. Built against the
 * installed shared library by make check-install.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vkv.h>

/* The 0.3 layouts, as programs were compiled with them. */
struct old_config {
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

struct old_geometry {
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t elem_size;
	uint32_t max_seqs;
	uint32_t max_tokens;
	enum vkv_layout layout;
	enum vkv_dtype dtype;
};

struct old_stats {
	uint64_t page_size, mapped_bytes, live_bytes, pages_free, pages_open,
		pages_needed, pages_cached, pages_created, budget_pages,
		seqs_open, map_calls, unmap_calls, create_calls, release_calls,
		create_sync, reclaimed_pages, enomem, steps, swap_outs,
		swap_ins, evictions, swap_errors, seqs_host, seqs_disk,
		host_tier_bytes, disk_tier_bytes, swap_out_bytes, swap_in_bytes;
	struct vkv_hist map_lat;
	struct vkv_hist step_lat;
};

struct old_seq_info {
	uint32_t open, len, backed, pages, segments, tier, busy;
	int32_t priority;
};

int old_config_init(struct old_config *cfg);
int old_create(const struct old_geometry *geom, const struct old_config *cfg,
	       struct vkv_cache **out);
int old_geometry(const struct vkv_cache *c, struct old_geometry *out);
int old_stats(const struct vkv_cache *c, struct old_stats *out);
int old_seq_info(const struct vkv_cache *c, uint32_t slot,
		 struct old_seq_info *out);
__asm__(".symver old_config_init, vkv_config_init@VKV_0.1");
__asm__(".symver old_create, vkv_cache_create@VKV_0.3");
__asm__(".symver old_geometry, vkv_cache_geometry@VKV_0.3");
__asm__(".symver old_stats, vkv_cache_stats@VKV_0.1");
__asm__(".symver old_seq_info, vkv_seq_info@VKV_0.1");

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "abi_v03: " __VA_ARGS__);                      \
		fprintf(stderr, "\n");                                         \
		return 1;                                                      \
	} while (0)

/* Each struct followed by bytes the program uses for something else. */
#define WITH_CANARY(type)                                                      \
	struct {                                                               \
		type s;                                                        \
		unsigned char canary[256];                                     \
	}

static int canary_ok(const unsigned char *p)
{
	for (int i = 0; i < 256; i++)
		if (p[i] != 0xa5)
			return 0;
	return 1;
}

int main(void)
{
	WITH_CANARY(struct old_config) cfg;
	WITH_CANARY(struct old_geometry) g, out;
	WITH_CANARY(struct old_stats) st;
	WITH_CANARY(struct old_seq_info) info;
	struct vkv_cache *c = NULL;
	uint32_t slot, len = 100;
	int ret;

	memset(&cfg, 0xa5, sizeof(cfg));
	if (old_config_init(&cfg.s))
		FAIL("config: %s", vkv_config_error());
	if (!canary_ok(cfg.canary))
		FAIL("config_init wrote past the old struct");
	cfg.s.pool_low = cfg.s.pool_high = 0;
	memset(&g, 0xa5, sizeof(g));
	g.s = (struct old_geometry){
		2, 4, 64, 2, 4, 256, VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_BF16};
	ret = old_create(&g.s, &cfg.s, &c);
	if (ret)
		FAIL("create: %s (%s)", vkv_strerror(ret), vkv_config_error());
	memset(&out, 0xa5, sizeof(out));
	ret = old_geometry(c, &out.s);
	if (ret)
		FAIL("geometry: %s", vkv_strerror(ret));
	if (memcmp(&out.s, &g.s, sizeof(g.s)))
		FAIL("geometry differs from what was given");
	if (!canary_ok(out.canary))
		FAIL("geometry wrote past the old struct");
	slot = (uint32_t)vkv_seq_open(c);
	ret = vkv_step(c, &slot, &len, 1);
	if (ret)
		FAIL("step: %s", vkv_strerror(ret));
	memset(vkv_token_ptr(c, 1, VKV_V, slot, 99), 1, 4 * 64 * 2);
	memset(&st, 0xa5, sizeof(st));
	ret = old_stats(c, &st.s);
	if (ret)
		FAIL("stats: %s", vkv_strerror(ret));
	if (!canary_ok(st.canary))
		FAIL("stats wrote past the old struct");
	if (st.s.seqs_open != 1 || st.s.steps != 1 || st.s.step_lat.count != 1)
		FAIL("stats: %llu open, %llu steps, %llu timed: want 1, 1, 1",
		     (unsigned long long)st.s.seqs_open,
		     (unsigned long long)st.s.steps,
		     (unsigned long long)st.s.step_lat.count);
	memset(&info, 0xa5, sizeof(info));
	ret = old_seq_info(c, slot, &info.s);
	if (ret)
		FAIL("seq_info: %s", vkv_strerror(ret));
	if (!canary_ok(info.canary))
		FAIL("seq_info wrote past the old struct");
	if (!info.s.open || info.s.len != len || info.s.priority)
		FAIL("seq_info: open %u, len %u, priority %d", info.s.open,
		     info.s.len, info.s.priority);
	vkv_cache_destroy(c);
	/* Old programs keep the old checks: a zero field is still refused. */
	g.s.head_dim = 0;
	if (old_create(&g.s, &cfg.s, &c) != -EINVAL)
		FAIL("a zero head_dim was not refused");
	printf("abi_v03: the VKV_0.3 ABI works\n");
	return 0;
}
