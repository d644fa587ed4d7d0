/* SPDX-License-Identifier: MIT */
/*
 * test_abi.c - the public ABI: the run-time version, the reserved tails of
 * the structs that grow, the older versions of the calls that take them,
 * and the slot type.
 *
 * The older versions are reached the way a program built against an older
 * header reaches them, through their symbol versions (the static archive
 * keeps those names too). Their structs are today's without the reserved
 * tail, so offsetof(..., reserved) is the size such a program allocates.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "harness.h"

int v01_config_init(void *cfg);
int v03_cache_create(const void *geom, const void *cfg, struct vkv_cache **out);
int v03_cache_geometry(const struct vkv_cache *c, void *out);
int v01_cache_stats(const struct vkv_cache *c, void *out);
int v01_seq_info(const struct vkv_cache *c, vkv_slot_t slot, void *out);
__asm__(".symver v01_config_init, vkv_config_init@VKV_0.1");
__asm__(".symver v03_cache_create, vkv_cache_create@VKV_0.3");
__asm__(".symver v03_cache_geometry, vkv_cache_geometry@VKV_0.3");
__asm__(".symver v01_cache_stats, vkv_cache_stats@VKV_0.1");
__asm__(".symver v01_seq_info, vkv_seq_info@VKV_0.1");

#define OLD_CONFIG offsetof(struct vkv_config, reserved)
#define OLD_GEOMETRY offsetof(struct vkv_geometry, reserved)
#define OLD_STATS offsetof(struct vkv_stats, reserved)
#define OLD_SEQ_INFO offsetof(struct vkv_seq_info, reserved)

/* Bytes an old program never gave the library: they must stay untouched. */
#define CANARY 0xa5

static void check_canary(const unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		req_cmp(p[i], ==, CANARY);
}

static void check_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		req_cmp(b[i], ==, 0);
}

static struct vkv_cache *small_cache(struct vkv_config *cfg)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_TOKEN_MAJOR);
	struct vkv_cache *c = NULL;

	*cfg = test_config(0);
	ck_ok(vkv_cache_create(&g, cfg, &c));
	return c;
}

START_TEST(version_matches_header)
{
	uint32_t v = vkv_version();

	ck_assert_uint_eq(v, VKV_VERSION);
	ck_assert_uint_eq(v / 65536, VKV_VERSION_MAJOR);
	ck_assert_uint_eq(v / 256 % 256, VKV_VERSION_MINOR);
	ck_assert_uint_eq(v % 256, VKV_VERSION_PATCH);
	/* The encoding orders versions as numbers, so #if can compare them. */
#if VKV_VERSION < VKV_VERSION_NUM(0, 4, 0)
	ck_abort_msg("VKV_VERSION %d is below 0.4.0", VKV_VERSION);
#endif
	ck_assert_int_lt(VKV_VERSION_NUM(0, 3, 9), VKV_VERSION_NUM(0, 4, 0));
	ck_assert_int_lt(VKV_VERSION_NUM(0, 255, 255),
			 VKV_VERSION_NUM(1, 0, 0));
}
END_TEST

START_TEST(version_check)
{
	ck_ok(vkv_version_check(VKV_VERSION_MAJOR, VKV_VERSION_MINOR));
	ck_ok(vkv_version_check(VKV_VERSION_MAJOR, 0));
	ck_err(vkv_version_check(VKV_VERSION_MAJOR, VKV_VERSION_MINOR + 1),
	       -ENOTSUP);
	ck_err(vkv_version_check(VKV_VERSION_MAJOR + 1, 0), -ENOTSUP);
	if (VKV_VERSION_MAJOR > 0)
		ck_err(vkv_version_check(VKV_VERSION_MAJOR - 1, 0), -ENOTSUP);
}
END_TEST

START_TEST(config_init_zeroes_reserved)
{
	struct vkv_config cfg;

	memset(&cfg, 0xff, sizeof(cfg));
	ck_ok(vkv_config_init(&cfg));
	check_zero(cfg.reserved, sizeof(cfg.reserved));
}
END_TEST

START_TEST(config_reserved_refused)
{
	struct vkv_geometry g = test_geom(VKV_LAYOUT_PER_LAYER);
	size_t n = sizeof(((struct vkv_config *)0)->reserved) /
		   sizeof(((struct vkv_config *)0)->reserved[0]);

	/* Every word of the tail, so a later field anywhere in it is seen. */
	for (size_t i = 0; i < n; i++) {
		struct vkv_config cfg = test_config(0);
		struct vkv_cache *c = NULL;

		cfg.reserved[i] = 1;
		ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(vkv_config_error(), "reserved"));
	}
}
END_TEST

START_TEST(geometry_reserved_refused)
{
	struct vkv_config cfg = test_config(0);
	size_t n = sizeof(((struct vkv_geometry *)0)->reserved) /
		   sizeof(((struct vkv_geometry *)0)->reserved[0]);

	for (size_t i = 0; i < n; i++) {
		struct vkv_geometry g = test_geom(VKV_LAYOUT_PER_LAYER);
		struct vkv_cache *c = NULL;

		g.reserved[i] = 0x80000000u;
		ck_err(vkv_cache_create(&g, &cfg, &c), -EINVAL);
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(strstr(vkv_config_error(), "reserved"));
	}
}
END_TEST

START_TEST(outputs_zero_reserved)
{
	struct vkv_config cfg;
	struct vkv_cache *c = small_cache(&cfg);
	struct vkv_geometry g;
	struct vkv_stats st;
	struct vkv_seq_info info;
	vkv_slot_t slot;
	uint32_t len = 300;

	slot = (vkv_slot_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &slot, &len, 1));
	memset(&g, 0xff, sizeof(g));
	ck_ok(vkv_cache_geometry(c, &g));
	check_zero(g.reserved, sizeof(g.reserved));
	memset(&st, 0xff, sizeof(st));
	ck_ok(vkv_cache_stats(c, &st));
	check_zero(st.reserved, sizeof(st.reserved));
	ck_assert_uint_eq(st.seqs_open, 1);
	memset(&info, 0xff, sizeof(info));
	ck_ok(vkv_seq_info(c, slot, &info));
	check_zero(info.reserved, sizeof(info.reserved));
	ck_assert_uint_eq(info.len, len);
	vkv_cache_destroy(c);
}
END_TEST

/* What a 0.3 program does: every struct is its own, shorter one. */
START_TEST(old_versions_keep_to_old_structs)
{
	union {
		struct vkv_config cfg;
		unsigned char b[sizeof(struct vkv_config)];
	} cfg;
	union {
		struct vkv_geometry g;
		unsigned char b[sizeof(struct vkv_geometry)];
	} geom, got;
	union {
		struct vkv_stats st;
		unsigned char b[sizeof(struct vkv_stats)];
	} st;
	union {
		struct vkv_seq_info info;
		unsigned char b[sizeof(struct vkv_seq_info)];
	} info;
	struct vkv_cache *c = NULL;
	vkv_slot_t slot;
	uint32_t len = 300;

	memset(&cfg, CANARY, sizeof(cfg));
	ck_ok(v01_config_init(&cfg));
	check_canary(cfg.b, OLD_CONFIG, sizeof(cfg));
	cfg.cfg.pool_low = cfg.cfg.pool_high = 0;

	/* Garbage past the old structs must not be read as reserved fields. */
	memset(&geom, CANARY, sizeof(geom));
	geom.g.layers = 2;
	geom.g.kv_heads = 8;
	geom.g.head_dim = 128;
	geom.g.elem_size = 4;
	geom.g.max_seqs = 8;
	geom.g.max_tokens = 2048;
	geom.g.layout = VKV_LAYOUT_TOKEN_MAJOR;
	geom.g.dtype = VKV_DTYPE_F32;
	ck_ok(v03_cache_create(&geom, &cfg, &c));

	memset(&got, CANARY, sizeof(got));
	ck_ok(v03_cache_geometry(c, &got));
	ck_assert_int_eq(memcmp(got.b, geom.b, OLD_GEOMETRY), 0);
	check_canary(got.b, OLD_GEOMETRY, sizeof(got));

	slot = (vkv_slot_t)vkv_seq_open(c);
	ck_ok(vkv_step(c, &slot, &len, 1));
	memset(&st, CANARY, sizeof(st));
	ck_ok(v01_cache_stats(c, &st));
	check_canary(st.b, OLD_STATS, sizeof(st));
	ck_assert_uint_eq(st.st.seqs_open, 1);
	ck_assert_uint_eq(st.st.steps, 1);
	ck_assert_uint_eq(st.st.step_lat.count, 1);

	memset(&info, CANARY, sizeof(info));
	ck_ok(v01_seq_info(c, slot, &info));
	check_canary(info.b, OLD_SEQ_INFO, sizeof(info));
	ck_assert_uint_eq(info.info.open, 1);
	ck_assert_uint_eq(info.info.len, len);
	vkv_cache_destroy(c);

	/* The old versions still refuse what they refused. */
	ck_err(v01_cache_stats(NULL, &st), -EINVAL);
	ck_err(v01_config_init(NULL), -EINVAL);
	geom.g.head_dim = 0;
	c = NULL;
	ck_err(v03_cache_create(&geom, &cfg, &c), -EINVAL);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(slot_type)
{
	struct vkv_config cfg;
	struct vkv_cache *c = small_cache(&cfg);
	struct vkv_geometry g = test_geom(VKV_LAYOUT_PER_LAYER);
	struct vkv_cache *big = NULL;

	ck_assert_uint_eq(sizeof(vkv_slot_t), sizeof(uint32_t));
	ck_assert(_Generic((vkv_slot_t)0, uint32_t : 1, default : 0));
	ck_assert_uint_le(VKV_MAX_SEQS - 1, (unsigned)INT_MAX);
	/* Every slot vkv_seq_open() gives converts and is taken back. */
	for (uint32_t i = 0; i < 8; i++) {
		int s = vkv_seq_open(c);

		ck_assert_int_ge(s, 0);
		ck_assert_int_lt(s, 8);
		ck_assert_int_eq((int)(vkv_slot_t)s, s);
	}
	ck_err(vkv_seq_open(c), -ENOSPC);
	for (vkv_slot_t s = 0; s < 8; s++)
		ck_ok(vkv_seq_close(c, s));
	vkv_cache_destroy(c);
	/* Above VKV_MAX_SEQS a slot might not fit the int: refused. */
	g.max_seqs = VKV_MAX_SEQS + 1;
	ck_err(vkv_cache_create(&g, &cfg, &big), -EOVERFLOW);
	ck_assert_ptr_null(big);
	ck_assert_ptr_nonnull(strstr(vkv_config_error(), "max_seqs"));
}
END_TEST

static Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc;

	tc = tcase_create("version");
	tcase_add_test(tc, version_matches_header);
	tcase_add_test(tc, version_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("reserved");
	tcase_add_test(tc, config_init_zeroes_reserved);
	tcase_add_test(tc, config_reserved_refused);
	tcase_add_test(tc, geometry_reserved_refused);
	tcase_add_test(tc, outputs_zero_reserved);
	suite_add_tcase(s, tc);

	tc = tcase_create("compat");
	tcase_add_test(tc, old_versions_keep_to_old_structs);
	suite_add_tcase(s, tc);

	tc = tcase_create("slots");
	tcase_add_test(tc, slot_type);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(abi_suite());
}
