/* SPDX-License-Identifier: MIT */
/*
 * test_kmod_client - the library's /dev/vkv client (lib/kmod_client.c)
 * against the real module: version check, pool, map, swap, prefetch,
 * discard, pins.
 */
#include "kmod_client.h"
#include "vmtest.h"

START_TEST(test_open_errors)
{
	struct vkv_kmod km;

	ck_assert_int_eq(vkvi_kmod_open(&km, "/dev/does-not-exist"), -ENOENT);
	ck_assert_int_eq(km.fd, -1);
	/* Not vkv: no GET_VERSION -> refused as a protocol mismatch. */
	ck_assert_int_eq(vkvi_kmod_open(&km, "/dev/null"), -EPROTO);
	ck_assert_int_eq(km.fd, -1);
	ck_assert_int_eq(vkvi_kmod_pool_create(&km, MIB, 0, -1), -EBADF);
	ck_assert_int_eq(vkvi_kmod_map(&km, NULL), -EBADF);
	vkvi_kmod_close(&km);
	vkvi_kmod_close(NULL);
}
END_TEST

START_TEST(test_lifecycle)
{
	struct vkv_kmod km;
	struct vkv_pool_info pi;
	uint64_t done, h;
	uint8_t *p;
	void *base;
	int bf;

	ck_assert_int_eq(vkvi_kmod_open(&km, NULL), 0);
	ck_assert_uint_eq(km.major, VKV_ABI_MAJOR);
	ck_assert_int_eq(vkvi_kmod_map(&km, &base), -ENXIO);
	ck_assert_int_eq(vkvi_kmod_pool_create(&km, 0, 0, -1), -EINVAL);
	ck_assert_int_eq(vkvi_kmod_pool_create(&km, 7 * MIB, 0, 1), 0);
	ck_assert_uint_eq(km.pool_size, 8 * MIB);
	ck_assert_uint_eq(km.chunk_size, CHUNK);
	ck_assert_int_eq(km.node, 1);
	ck_assert_int_eq(vkvi_kmod_pool_create(&km, MIB, 0, -1), -EEXIST);
	ck_assert_int_eq(vkvi_kmod_map(&km, &base), 0);
	p = base;
	fill(p, 0, 8 * MIB, 11);
	ck_assert_int_eq(vkvi_kmod_swap_out(&km, 0, 8 * MIB, &done), -ENODEV);
	ck_assert_uint_eq(done, 0);
	bf = backing_file("client", 0);
	ck_assert_int_eq(vkvi_kmod_set_backing(&km, bf, 0, 0), 0);
	ck_assert_int_eq(vkvi_kmod_swap_out(&km, 0, 8 * MIB, &done), 0);
	ck_assert_uint_eq(done, 8 * MIB);
	ck_assert_int_eq(vkvi_kmod_pool_info(&km, &pi), 0);
	ck_assert_uint_eq(pi.swapped_chunks, 4);
	ck_assert_int_eq(vkvi_kmod_prefetch(&km, 0, 4 * MIB, NULL), 0);
	req(verify(p, 0, 8 * MIB, 11) == UINT64_MAX);
	ck_assert_int_eq(vkvi_kmod_discard(&km, 6 * MIB, 2 * MIB, NULL), 0);
	req(p[6 * MIB] == 0);
	ck_assert_int_eq(vkvi_kmod_swap_out(&km, 1, CHUNK, &done), -EINVAL);
	/* A pin (as cuMemHostRegister would) blocks swap-out of its chunk. */
	ck_assert_int_eq(vkvi_kmod_pin(&km, p, 4096, 1, &h), 0);
	ck_assert_int_eq(vkvi_kmod_swap_out(&km, 0, 8 * MIB, &done), -EBUSY);
	ck_assert_uint_eq(done, 0);
	ck_assert_int_eq(vkvi_kmod_unpin(&km, h), 0);
	ck_assert_int_eq(vkvi_kmod_unpin(&km, h), -ENOENT);
	ck_assert_int_eq(vkvi_kmod_pin(&km, p, 0, 1, &h), -EINVAL);
	ck_assert_int_eq(vkvi_kmod_swap_out(&km, 0, 8 * MIB, NULL), 0);
	ck_assert_int_eq(vkvi_kmod_set_backing(&km, -1, 0, 0), -EBUSY);
	ck_assert_int_eq(
		vkvi_kmod_set_backing(&km, bf, 0, VKV_BACKING_BUFFERED),
		-EBUSY);
	req(verify(p, 0, 6 * MIB, 11) == UINT64_MAX);
	ck_assert_int_eq(vkvi_kmod_prefetch(&km, 0, 8 * MIB, NULL), 0);
	ck_assert_int_eq(
		vkvi_kmod_set_backing(&km, bf, 0, VKV_BACKING_BUFFERED), 0);
	vkvi_kmod_close(&km);
	ck_assert_int_eq(km.fd, -1);
	ck_assert_ptr_null(km.base);
	close(bf);
	ck_assert_int_eq(counter("contexts"), 0);
	ck_assert_int_eq(counter("pool_bytes"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kmod_client");

	tcase_add_test(suite_case(s, "open", 300), test_open_errors);
	tcase_add_test(suite_case(s, "lifecycle", 300), test_lifecycle);
	return run_suite(s);
}
