/* SPDX-License-Identifier: MIT */
/*
 * test_lib.c - libvkv over vkv.ko, in the guest: the host backend's pages
 * and the host tier's slabs come from /dev/vkv pools when the module is
 * loaded (and the library says so), and data survives growth, reclaim and
 * a round trip through the host tier there. With a swap path the module
 * swaps the host tier itself. The module's counters show the pools while
 * the cache lives and go back to zero when it is destroyed.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/check_util.h"
#include "vkv.h"

#define MIB (1024ull * 1024ull)

static char said[1024];

static void log_fn(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	strncat(said, msg, sizeof(said) - strlen(said) - 2);
	strcat(said, "\n");
}

static unsigned long long counter(const char *name)
{
	char path[128];
	unsigned long long v = ~0ull;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/vkv/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = ~0ull;
		fclose(f);
	}
	return v;
}

/*
 * The swapped_bytes these tests count are the library's doing; the kernel's
 * reclaim may also have the shrink worker take chunks at any time (it did on
 * the debug kernel's smaller guest), so the shrinker is off while they run.
 * test_shrinker tests it. Set from the runner's process, so a failed test
 * cannot leave it off for the suites after this one.
 */
static void shrinker_set(const char *on)
{
	FILE *f = fopen("/sys/module/vkv/parameters/shrinker_enabled", "w");

	if (!f || fputs(on, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cannot set shrinker_enabled=%s\n", on);
		exit(EXIT_FAILURE);
	}
}

/*
 * The cases count the module's pool bytes as theirs and need the room of
 * an idle module: a context of an earlier suite may still be going away
 * (its memory is freed after its last user, on a slow guest seconds after
 * the process exits). Wait for that, for a minute at most, and say so.
 */
static void module_idle(void)
{
	int ms = 0;

	while ((counter("contexts") || counter("pool_reserved_bytes") ||
		counter("orphan_bytes")) &&
	       ms < 60000) {
		usleep(10000);
		ms += 10;
	}
	if (ms)
		fprintf(stderr,
			"test_lib: waited %d ms for the module to be idle: "
			"contexts %llu, pool_reserved_bytes %llu, "
			"orphan_bytes %llu\n",
			ms, counter("contexts"), counter("pool_reserved_bytes"),
			counter("orphan_bytes"));
}

/* What the module and the machine had when a swap failed. */
static const char *module_state(void)
{
	static char buf[256];
	long long avail = -1;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &avail) == 1)
			break;
	if (f)
		fclose(f);
	snprintf(buf, sizeof(buf),
		 "contexts %llu, pool_bytes %llu, pool_reserved_bytes %llu, "
		 "orphan_bytes %llu, remote_chunks %llu, MemAvailable %lld kB",
		 counter("contexts"), counter("pool_bytes"),
		 counter("pool_reserved_bytes"), counter("orphan_bytes"),
		 counter("remote_chunks"), avail);
	return buf;
}

static void shrinker_off(void)
{
	shrinker_set("0");
	module_idle();
}

static void shrinker_on(void)
{
	shrinker_set("1");
}

static void stamp(struct vkv_cache *c, uint32_t slot, uint32_t from,
		  uint32_t to, uint64_t owner)
{
	for (uint32_t t = from; t < to; t++)
		for (uint32_t l = 0; l < 2; l++)
			for (int kv = 0; kv < 2; kv++) {
				uint64_t v = owner << 32 | t << 4 | l << 1 | kv;

				memcpy(vkv_token_ptr(c, l, kv, slot, t), &v, 8);
			}
}

static int check(struct vkv_cache *c, uint32_t slot, uint32_t len,
		 uint64_t owner)
{
	for (uint32_t t = 0; t < len; t++)
		for (uint32_t l = 0; l < 2; l++)
			for (int kv = 0; kv < 2; kv++) {
				uint64_t v = owner << 32 | t << 4 | l << 1 | kv,
					 w;

				memcpy(&w, vkv_token_ptr(c, l, kv, slot, t), 8);
				if (v != w)
					return 0;
			}
	return 1;
}

START_TEST(test_host_backend_on_kmod)
{
	struct vkv_geometry g = {
		2,  8, 128, 4, 8, 2048, VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_F32,
		{0}};
	struct vkv_config cfg;
	struct vkv_cache *c;
	uint32_t s[4];
	int ret;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.backend = VKV_BACKEND_HOST;
	cfg.budget = 48 * MIB;
	cfg.host_budget = 32 * MIB;
	cfg.log_fn = log_fn;
	cfg.log_level = VKV_LOG_INFO;
	said[0] = '\0';
	ck_assert_int_eq(vkv_cache_create(&g, &cfg, &c), 0);
	ck_assert_msg(strstr(said, "host memory from /dev/vkv"), "%s", said);
	ck_assert_msg(strstr(said, "host tier memory from /dev/vkv"), "%s",
		      said);
	/* The whole budget is one pinned pool. */
	ck_assert_uint_ge(counter("pool_bytes"), 48 * MIB);

	/* 24 pages: three sequences of 8; the fourth reclaims the first. */
	for (int i = 0; i < 3; i++) {
		s[i] = (uint32_t)vkv_seq_open(c);
		ck_assert_int_eq(vkv_seq_reserve(c, s[i], 1000), 0);
		stamp(c, s[i], 0, 1000, i + 1);
	}
	ck_assert_int_eq(vkv_seq_close(c, s[0]), 0);
	s[3] = (uint32_t)vkv_seq_open(c);
	ck_assert_int_eq(vkv_seq_reserve(c, s[3], 1000), 0);
	stamp(c, s[3], 0, 1000, 4);
	ck_assert(check(c, s[1], 1000, 2));
	ck_assert(check(c, s[2], 1000, 3));
	ck_assert(check(c, s[3], 1000, 4));

	/* Through the host tier (a /dev/vkv slab) and back. */
	ck_assert_int_eq(vkv_seq_swap_out(c, s[1], VKV_TIER_HOST), 0);
	ret = vkv_seq_swap_wait(c, s[1]);
	ck_assert_msg(ret == 0,
		      "swap-out to the host tier: %s; %s; library: %s",
		      vkv_strerror(ret), module_state(), said);
	ck_assert_uint_gt(counter("pool_bytes"), 48 * MIB);
	ck_assert_int_eq(vkv_seq_swap_in(c, s[1]), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[1]), 0);
	ck_assert(check(c, s[1], 1000, 2));
	ck_assert(check(c, s[2], 1000, 3));

	/* Beyond the pinned pool: -ENOMEM, nothing lost. */
	uint32_t big = (uint32_t)vkv_seq_open(c);

	ck_assert_int_eq(vkv_seq_reserve(c, big, 2048), -ENOMEM);
	ck_assert(check(c, s[2], 1000, 3));
	vkv_cache_destroy(c);
	ck_assert_uint_eq(counter("pool_bytes"), 0);
}
END_TEST

/*
 * With a swap path and the module, the module is the disk tier: demotion
 * from the host tier is its swap-out of the host tier's chunks (the
 * library opens no swap file of its own), coming back is its prefetch, and
 * bytes corrupted in the file give -EIO to that sequence only.
 */
START_TEST(test_host_tier_swapped_by_kmod)
{
	struct vkv_geometry g = {
		2,  8, 128, 4, 8, 2048, VKV_LAYOUT_TOKEN_MAJOR, VKV_DTYPE_F32,
		{0}};
	const char *path = "/mnt/vkv-lib-swap";
	struct vkv_config cfg;
	struct vkv_stats st;
	struct vkv_cache *c;
	unsigned long long outs0, ins0;
	uint32_t s[3];
	char junk[4096];
	FILE *f;

	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.backend = VKV_BACKEND_HOST;
	cfg.budget = 48 * MIB;
	cfg.host_budget = 16 * MIB; /* one sequence of 8 pages */
	cfg.swap_path = path;
	cfg.log_fn = log_fn;
	cfg.log_level = VKV_LOG_INFO;
	said[0] = '\0';
	ck_assert_int_eq(vkv_cache_create(&g, &cfg, &c), 0);
	ck_assert_msg(strstr(said, "vkv.ko swaps the host tier"), "%s", said);
	outs0 = counter("swap_out_total");
	ins0 = counter("prefetch_total");
	for (int i = 0; i < 3; i++) {
		s[i] = (uint32_t)vkv_seq_open(c);
		ck_assert_int_eq(vkv_seq_reserve(c, s[i], 1000), 0);
		stamp(c, s[i], 0, 1000, i + 1);
	}

	/* s0 to the host tier, then s1: no room, so s0 goes to disk. */
	ck_assert_int_eq(vkv_seq_swap_out(c, s[0], VKV_TIER_HOST), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[0]), 0);
	ck_assert_int_eq(vkv_seq_swap_out(c, s[1], VKV_TIER_HOST), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[1]), 0);
	ck_assert_int_eq(vkv_cache_stats(c, &st), 0);
	ck_assert_uint_eq(st.seqs_host, 1);
	ck_assert_uint_eq(st.seqs_disk, 1);
	ck_assert_uint_eq(st.host_tier_bytes, 16 * MIB);
	ck_assert_uint_eq(st.disk_tier_bytes, 16 * MIB);
	ck_assert_uint_eq(counter("swapped_bytes"), 16 * MIB);
	ck_assert_uint_ge(counter("swap_out_total") - outs0, 8);

	/* Back from disk: room is made by sending s1 there in turn. */
	ck_assert_int_eq(vkv_seq_swap_in(c, s[0]), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[0]), 0);
	ck_assert(check(c, s[0], 1000, 1));
	ck_assert_uint_ge(counter("prefetch_total") - ins0, 8);
	ck_assert_int_eq(vkv_seq_swap_in(c, s[1]), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[1]), 0);
	ck_assert(check(c, s[1], 1000, 2));
	ck_assert_uint_eq(counter("swapped_bytes"), 0);

	/* s2 straight to disk; then the file is overwritten. */
	ck_assert_int_eq(vkv_seq_swap_out(c, s[2], VKV_TIER_DISK), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[2]), 0);
	ck_assert_uint_eq(counter("swapped_bytes"), 16 * MIB);
	memset(junk, 0xa5, sizeof(junk));
	f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	for (long i = 0; i < (long)(32 * MIB / sizeof(junk)); i++)
		ck_assert_uint_eq(fwrite(junk, sizeof(junk), 1, f), 1);
	ck_assert_int_eq(fflush(f), 0);
	ck_assert_int_eq(fsync(fileno(f)), 0);
	fclose(f);
	ck_assert_int_eq(vkv_seq_swap_in(c, s[2]), 0);
	ck_assert_int_eq(vkv_seq_swap_wait(c, s[2]), -EIO);
	ck_assert_uint_ge(counter("checksum_errors"), 1);
	ck_assert(check(c, s[0], 1000, 1));
	ck_assert(check(c, s[1], 1000, 2));
	ck_assert_int_eq(vkv_seq_close(c, s[2]), 0);
	vkv_cache_destroy(c);
	ck_assert_uint_eq(counter("pool_bytes"), 0);
	ck_assert_uint_eq(counter("swapped_bytes"), 0);
}
END_TEST

/* The shrinker is off around every case (shrinker_set() says why). */
static TCase *lib_case(Suite *s, const char *name)
{
	TCase *tc = suite_case(s, name, 300);

	tcase_add_unchecked_fixture(tc, shrinker_off, shrinker_on);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("lib");

	tcase_add_test(lib_case(s, "backend"), test_host_backend_on_kmod);
	tcase_add_test(lib_case(s, "tier"), test_host_tier_swapped_by_kmod);
	return run_suite(s);
}
