/* SPDX-License-Identifier: MIT */
/*
 * test_backend_cuda.c - the cuda backend through lib/backend.h, over
 * tests/fakecuda (LD_LIBRARY_PATH). Not linked against the fake: the backend
 * must find libcuda.so.1 on its own, or fail cleanly without one; the fake's
 * controls are reached with dlsym. Cases that need a different environment
 * (no device, no libcuda) re-run this program with it.
 *
 * Fault injection is in test_backend_cuda_faults.c, registered host memory
 * and direct copies in test_backend_cuda_hostreg.c.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_backend_cuda.h"

struct fake_api fk;

int nlogs;
char last_log[512];

static void log_fn(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	/* Under auto, the host backend says where its memory comes from:
	 * that line is not the cuda backend's to count. */
	if (strstr(msg, "host memory from"))
		return;
	nlogs++;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* No ck_assert here: it also runs outside a test, in re-executed cases. */
bool load_fake(void)
{
	fk.lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!fk.lib)
		return false;
#define LOAD(f, name)                                                          \
	do {                                                                   \
		*(void **)&fk.f = dlsym(fk.lib, name);                         \
		if (!fk.f)                                                     \
			return false;                                          \
	} while (0)
	LOAD(inject, "fakecuda_fail");
	LOAD(fail_clear, "fakecuda_fail_clear");
	LOAD(calls, "fakecuda_calls");
	LOAD(get_stats, "fakecuda_get_stats");
	LOAD(query, "fakecuda_query");
	LOAD(set_mem, "fakecuda_set_mem");
	LOAD(functions, "fakecuda_functions");
	LOAD(ctx_get, "cuCtxGetCurrent");
	LOAD(ctx_set, "cuCtxSetCurrent");
	LOAD(retain, "cuDevicePrimaryCtxRetain");
#undef LOAD
	return true;
}

struct vkv_config cfg;

void setup(void)
{
	ck_assert_int_eq(vkv_config_init(&cfg), 0);
	cfg.backend = VKV_BACKEND_CUDA;
	cfg.log_fn = log_fn;
	cfg.log_level = VKV_LOG_INFO;
	nlogs = 0;
	ck_assert_msg(load_fake(),
		      "no fake libcuda.so.1: run with LD_LIBRARY_PATH at it");
}

struct vkv_backend *open_be(void)
{
	struct vkv_backend *be = NULL;

	ck_assert_int_eq(vkvi_backend_cuda_open(&cfg, &be), 0);
	ck_assert_ptr_nonnull(be);
	return be;
}

struct fakecuda_stats stats(void)
{
	struct fakecuda_stats st;

	fk.get_stats(&st);
	return st;
}

/* The driver state an operation may change, without the event counters. */
void same_state(const struct fakecuda_stats *a, const struct fakecuda_stats *b,
		const char *what)
{
#define EQ(f)                                                                  \
	ck_assert_msg(a->f == b->f, "%s: " #f " %llu -> %llu", what,           \
		      (unsigned long long)a->f, (unsigned long long)b->f)
	EQ(mem_used);
	EQ(allocs);
	EQ(allocs_released);
	EQ(reservations);
	EQ(mappings);
	EQ(mapped_bytes);
	EQ(accessible_bytes);
	EQ(host_registered);
	EQ(streams);
	EQ(events);
	EQ(ctx_refs);
#undef EQ
}

unsigned int prot_at(uintptr_t va)
{
	unsigned int prot = 99;

	ck_assert_int_eq(fk.query(va, &prot, NULL), 0);
	return prot;
}

START_TEST(test_open)
{
	struct fakecuda_stats before = stats();
	struct vkv_backend *be = open_be();

	ck_assert_str_eq(be->ops->name, "cuda");
	ck_assert_uint_eq(be->granularity, G);
	ck_assert_uint_eq(be->mem_total, 16ull << 30);
	ck_assert_ptr_eq(be->cfg, &cfg);
	ck_assert_int_eq(nlogs, 1);
	ck_assert_ptr_nonnull(strstr(last_log, "cuda device 0"));
	ck_assert_uint_eq(stats().streams, 1);
	ck_assert_uint_eq(stats().host_registered, 1);
	ck_assert_uint_eq(stats().ctx_refs, 1);
	/* Entry points through cuGetProcAddress, not dlsym. */
	ck_assert_uint_ge(fk.calls("cuGetProcAddress"), 30);
	vkv_backend_destroy(be);
	same_state(&before, &(struct fakecuda_stats){0}, "destroy");
	ck_assert_uint_eq(stats().streams + stats().events +
				  stats().host_registered + stats().ctx_refs,
			  0);
	ck_assert_uint_eq(stats().invalid_calls, 0);
}
END_TEST

/*
 * Staging placement: the configured node wins; else the GPU's from sysfs,
 * which the fake's bus id does not have, so the opening thread's node.
 */
START_TEST(test_numa_node)
{
	struct vkv_backend *be;

	cfg.numa_node = 0;
	be = open_be();
	ck_assert_ptr_nonnull(strstr(last_log, "staging on NUMA node 0"));
	vkv_backend_destroy(be);
	cfg.numa_node = -1;
	be = open_be();
	ck_assert_ptr_nonnull(strstr(last_log, "staging on NUMA node "));
	if (numa_available() >= 0) /* else placement is off: -1 */
		ck_assert_ptr_null(strstr(last_log, "node -1"));
	vkv_backend_destroy(be);
}
END_TEST

START_TEST(test_bad_device)
{
	struct vkv_backend *be = (void *)1;

	cfg.device = 1;
	ck_assert_int_eq(vkvi_backend_cuda_open(&cfg, &be), -ENODEV);
	ck_assert_ptr_null(be);
	ck_assert_int_eq(nlogs, 1);
	ck_assert_ptr_nonnull(strstr(last_log, "device 1"));
	ck_assert_uint_eq(stats().ctx_refs, 0);
}
END_TEST

START_TEST(test_ops_and_copy)
{
	struct vkv_backend *be = open_be();
	size_t n = 3 * G + 123, off = 777;
	unsigned char *src = malloc(n), *dst = calloc(1, n);
	vkv_handle_t h[4];
	uintptr_t va;
	size_t i;

	ck_assert_int_eq(be->ops->reserve(be, 8 * G, &va), 0);
	ck_assert_uint_eq(va % G, 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(be->ops->create(be, G, &h[i]), 0);
		ck_assert_int_eq(be->ops->map(be, va + i * G, G, h[i]), 0);
		ck_assert_uint_eq(prot_at(va + i * G),
				  CUDRV_MEM_ACCESS_FLAGS_PROT_NONE);
	}
	/* One cuMemSetAccess for the whole run. */
	ck_assert_int_eq(be->ops->set_access(be, va, 4 * G), 0);
	ck_assert_uint_eq(fk.calls("cuMemSetAccess"), 1);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(prot_at(va + i * G),
				  CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE);
	/* Copies larger than the staging, at an odd offset, both ways. */
	for (i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 31 + 7);
	ck_assert_int_eq(be->ops->copy(be, (void *)(va + off), src, n,
				       VKV_COPY_FROM_HOST),
			 0);
	/*
	 * Each direction checked on its own against the fake's memory, which
	 * the host can read: a round trip could hide two mistakes that cancel
	 * (a staging buffer reused before its DMA has run, both ways).
	 */
	ck_assert_mem_eq((void *)(va + off), src, n);
	for (i = 0; i < n; i++)
		((unsigned char *)va)[off + i] = (unsigned char)(i * 17 + 5);
	ck_assert_int_eq(
		be->ops->copy(be, dst, (void *)(va + off), n, VKV_COPY_TO_HOST),
		0);
	ck_assert_mem_eq(dst, (void *)(va + off), n);
	ck_assert_int_eq(be->ops->copy(be, dst, src, 0, VKV_COPY_TO_HOST), 0);
	/* Through the pinned staging only, never pageable memory. */
	ck_assert_uint_eq(stats().pageable_async, 0);
	ck_assert_uint_ge(fk.calls("cuMemcpyHtoDAsync"), 2);
	ck_assert_uint_eq(fk.calls("cuEventRecord"),
			  fk.calls("cuMemcpyHtoDAsync") +
				  fk.calls("cuMemcpyDtoHAsync"));

	/* Release while mapped: the memory lives until the unmap. */
	ck_assert_int_eq(be->ops->release(be, h[3]), 0);
	ck_assert_uint_eq(stats().allocs_released, 1);
	ck_assert_int_eq(be->ops->unmap(be, va, 4 * G), 0);
	ck_assert_uint_eq(fk.calls("cuMemUnmap"), 1);
	ck_assert_uint_eq(stats().allocs, 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(be->ops->release(be, h[i]), 0);
	ck_assert_int_eq(be->ops->unreserve(be, va, 8 * G), 0);
	ck_assert_uint_eq(stats().mem_used + stats().reservations, 0);
	ck_assert_uint_eq(stats().invalid_calls, 0);
	ck_assert_uint_eq(stats().touched_before_access, 0);
	vkv_backend_destroy(be);
	free(src);
	free(dst);
}
END_TEST

START_TEST(test_argument_checks)
{
	struct vkv_backend *be = open_be();
	uint64_t before = fk.calls("cuMemMap") + fk.calls("cuMemCreate") +
			  fk.calls("cuMemAddressReserve");
	vkv_handle_t h;
	uintptr_t va;

	/* Refused before the driver sees them. */
	ck_assert_int_eq(be->ops->reserve(be, G + 1, &va), -EINVAL);
	ck_assert_int_eq(be->ops->create(be, G / 2, &h), -EINVAL);
	ck_assert_int_eq(be->ops->map(be, G + 4096, G, 1), -EINVAL);
	ck_assert_int_eq(be->ops->set_access(be, G, 0), -EINVAL);
	ck_assert_int_eq(be->ops->unmap(be, G, 4096), -EINVAL);
	ck_assert_uint_eq(fk.calls("cuMemMap") + fk.calls("cuMemCreate") +
				  fk.calls("cuMemAddressReserve"),
			  before);
	/* What the driver refuses comes back as an errno. */
	ck_assert_int_eq(be->ops->release(be, 424242), -EINVAL);
	ck_assert_int_eq(be->ops->unmap(be, 64 * G, G), -EINVAL);
	fk.set_mem(2 * G);
	ck_assert_int_eq(be->ops->create(be, G, &h), 0);
	ck_assert_int_eq(be->ops->create(be, G, &h), 0);
	ck_assert_int_eq(be->ops->create(be, G, &h), -ENOMEM);
	vkv_backend_destroy(be);
}
END_TEST

/* A copy into a page mapped but not yet granted access is caught. */
START_TEST(test_no_touch_before_access)
{
	struct vkv_backend *be = open_be();
	char buf[64] = "kv";
	vkv_handle_t h;
	uintptr_t va;

	ck_assert_int_eq(be->ops->reserve(be, 2 * G, &va), 0);
	ck_assert_int_eq(be->ops->create(be, G, &h), 0);
	ck_assert_int_eq(be->ops->map(be, va, G, h), 0);
	ck_assert_uint_eq(prot_at(va), CUDRV_MEM_ACCESS_FLAGS_PROT_NONE);
	ck_assert_uint_eq(stats().touched_before_access, 0);
	ck_assert_int_eq(be->ops->copy(be, (void *)va, buf, sizeof(buf),
				       VKV_COPY_FROM_HOST),
			 -EFAULT);
	ck_assert_uint_gt(stats().touched_before_access, 0);
	vkv_backend_destroy(be);
}
END_TEST

/*
 * The whole map path the cache uses, page by page then one access per run,
 * across many runs: no byte is reached before its access is set.
 */
START_TEST(test_map_path_touches_nothing_early)
{
	struct vkv_backend *be = open_be();
	static char page[G];
	vkv_handle_t h[16];
	uintptr_t va;
	int run, i;

	ck_assert_int_eq(be->ops->reserve(be, 16 * G, &va), 0);
	for (run = 0; run < 4; run++) {
		for (i = 0; i < 4; i++) {
			ck_assert_int_eq(
				be->ops->create(be, G, &h[run * 4 + i]), 0);
			ck_assert_int_eq(be->ops->map(be,
						      va + (run * 4 + i) * G, G,
						      h[run * 4 + i]),
					 0);
		}
		ck_assert_uint_eq(stats().accessible_bytes, run * 4 * G);
		ck_assert_int_eq(
			be->ops->set_access(be, va + run * 4 * G, 4 * G), 0);
		for (i = 0; i < 4; i++) {
			memset(page, run * 4 + i, sizeof(page));
			ck_assert_int_eq(
				be->ops->copy(be,
					      (void *)(va + (run * 4 + i) * G),
					      page, G, VKV_COPY_FROM_HOST),
				0);
		}
	}
	ck_assert_uint_eq(stats().touched_before_access, 0);
	ck_assert_uint_eq(stats().invalid_calls, 0);
	ck_assert_int_eq(be->ops->copy(be, page, (void *)(va + 9 * G), G,
				       VKV_COPY_TO_HOST),
			 0);
	ck_assert_int_eq(page[0], 9);
	ck_assert_int_eq(page[G - 1], 9);
	vkv_backend_destroy(be);
}
END_TEST

/* Pool worker and scheduler threads have no context of their own. */
static void *thread_ops(void *arg)
{
	struct vkv_backend *be = arg;
	uintptr_t va;
	vkv_handle_t h;
	int i, ret = 0;

	ret |= be->ops->reserve(be, G, &va);
	for (i = 0; i < 50 && !ret; i++) {
		char c = (char)i, back = 0;

		ret |= be->ops->create(be, G, &h);
		ret |= be->ops->map(be, va, G, h);
		ret |= be->ops->set_access(be, va, G);
		ret |= be->ops->copy(be, (void *)va, &c, 1, VKV_COPY_FROM_HOST);
		ret |= be->ops->copy(be, &back, (void *)va, 1,
				     VKV_COPY_TO_HOST);
		ret |= back != c;
		ret |= be->ops->unmap(be, va, G);
		ret |= be->ops->release(be, h);
	}
	ret |= be->ops->unreserve(be, va, G);
	return (void *)(intptr_t)ret;
}

START_TEST(test_threads)
{
	struct vkv_backend *be = open_be();
	pthread_t t[3];
	void *ret;
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, thread_ops, be),
				 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_uint_eq(stats().invalid_calls, 0);
	vkv_backend_destroy(be);
}
END_TEST

/*
 * The cache over this backend: everything it lets the caller touch has
 * access set, nothing was reached before, and the driver refused nothing.
 */
START_TEST(test_cache_touches_nothing_early)
{
	struct vkv_geometry geom = {
		.layers = 2,
		.kv_heads = 2,
		.head_dim = 64,
		.elem_size = 2,
		.max_seqs = 4,
		.max_tokens = 65536,
		.layout = (enum vkv_layout)_i,
	};
	struct vkv_cache *c;
	uint64_t maps, access;
	uint32_t t, l;
	int slot, kv;

	ck_assert_int_eq(vkv_cache_create(&geom, &cfg, &c), 0);
	ck_assert_str_eq(vkv_cache_backend(c), "cuda");
	slot = vkv_seq_open(c);
	ck_assert_int_ge(slot, 0);
	ck_assert_int_eq(vkv_seq_reserve(c, slot, 3000), 0);
	for (t = 0; t < 3000; t++)
		for (l = 0; l < geom.layers; l++)
			for (kv = 0; kv < 2; kv++) {
				char *p = vkv_token_ptr(c, l, kv, slot, t);
				unsigned int prot = 0;

				ck_assert_ptr_nonnull(p);
				if (t % 512 == 0) {
					ck_assert_int_eq(fk.query((uintptr_t)p,
								  &prot, NULL),
							 0);
					ck_assert_uint_eq(
						prot,
						CUDRV_MEM_ACCESS_FLAGS_PROT_READWRITE);
				}
				memset(p, (int)t, 256);
			}
	/* Growing a lot at once: one cuMemSetAccess per run, not per page. */
	maps = fk.calls("cuMemMap");
	access = fk.calls("cuMemSetAccess");
	ck_assert_int_eq(vkv_seq_reserve(c, slot, 60000), 0);
	maps = fk.calls("cuMemMap") - maps;
	access = fk.calls("cuMemSetAccess") - access;
	ck_assert_uint_ge(maps, 20);
	ck_assert_uint_le(access * 4, maps);
	ck_assert_int_eq(vkv_seq_close(c, slot), 0);
	vkv_cache_destroy(c);
	ck_assert_uint_eq(stats().touched_before_access, 0);
	ck_assert_uint_eq(stats().invalid_calls, 0);
	ck_assert_uint_eq(stats().mappings + stats().mem_used, 0);
}
END_TEST

/* Cases run in a re-executed copy of this program, with an environment. */
static int env_case(const char *name)
{
	struct vkv_backend *be = NULL;
	int ret;

	if (!strncmp(name, "hostreg-", 8))
		return hostreg_env_case(name);
	if (vkv_config_init(&cfg))
		return 99;
	cfg.backend = VKV_BACKEND_CUDA;
	cfg.log_fn = log_fn;
	cfg.log_level = VKV_LOG_INFO;
	ret = vkvi_backend_cuda_open(&cfg, &be);
	if (!strcmp(name, "nolib") && !ret) {
		/* A machine with a real driver installed: nothing to test. */
		printf("  a libcuda.so.1 is installed here: case skipped\n");
		vkv_backend_destroy(be);
		return 0;
	}
	if (!strcmp(name, "enodev") || !strcmp(name, "nolib")) {
		/* One clear line, saying what is missing. */
		if (ret != -ENODEV || be || nlogs != 1 ||
		    !strstr(last_log, "cuda backend unavailable"))
			return 1;
		printf("  logged: %s\n", last_log);
		return 0;
	}
	if (!strcmp(name, "auto")) {
		/* Falls back to host; the reason said once, not per cache. */
		int i;

		cfg.backend = VKV_BACKEND_AUTO;
		nlogs = 0;
		for (i = 0; i < 3; i++) {
			be = NULL;
			if (vkvi_backend_open(&cfg, &be) || !be)
				return 8;
			if (!strcmp(be->ops->name, "cuda")) {
				printf("  a libcuda.so.1 is installed here: "
				       "case skipped\n");
				vkv_backend_destroy(be);
				return 0;
			}
			if (strcmp(be->ops->name, "host"))
				return 8;
			vkv_backend_destroy(be);
		}
		printf("  auto: %d lines, last: %s\n", nlogs, last_log);
		return nlogs <= 2 ? 0 : 9;
	}
	if (!strcmp(name, "opens")) {
		if (ret)
			return 2;
		vkv_backend_destroy(be);
		return 0;
	}
	if (!strcmp(name, "other-context")) {
		/* The caller's current context (device 1's) is kept. */
		cudrv_context mine, cur = NULL;
		vkv_handle_t h;
		uintptr_t va;

		vkv_backend_destroy(be);
		if (!load_fake() || fk.retain(&mine, 1) || fk.ctx_set(mine))
			return 3;
		if (vkvi_backend_cuda_open(&cfg, &be) || fk.ctx_get(&cur) ||
		    cur != mine)
			return 4;
		if (be->ops->reserve(be, G, &va) ||
		    be->ops->create(be, G, &h) || be->ops->map(be, va, G, h))
			return 5;
		fk.inject("cuCtxPushCurrent", 1, CUDRV_ERROR_OUT_OF_MEMORY);
		if (be->ops->set_access(be, va, G) != -ENOMEM ||
		    fk.ctx_get(&cur) || cur != mine)
			return 6;
		if (be->ops->set_access(be, va, G) || fk.ctx_get(&cur) ||
		    cur != mine)
			return 7;
		vkv_backend_destroy(be);
		return 0;
	}
	return 100;
}

int run_env(const char *name, const char *const env[])
{
	pid_t pid = fork();
	int st, i;

	ck_assert_int_ge(pid, 0);
	if (!pid) {
		for (i = 0; env[i]; i += 2) {
			if (env[i + 1])
				setenv(env[i], env[i + 1], 1);
			else
				unsetenv(env[i]);
		}
		execl("/proc/self/exe", "test_backend_cuda", "--env-case", name,
		      (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_env_cases)
{
	const char *const nolib[] = {"LD_LIBRARY_PATH", NULL, NULL};
	const char *const nodev[] = {"FAKECUDA_DEVICES", "0", NULL};
	const char *const novmm[] = {"FAKECUDA_VMM", "0", NULL};
	const char *const oldlib[] = {"FAKECUDA_PROC_ADDRESS", "0", NULL};
	const char *const two[] = {"FAKECUDA_DEVICES", "2", NULL};

	ck_assert_int_eq(run_env("nolib", nolib), 0);
	ck_assert_int_eq(run_env("enodev", nodev), 0);
	ck_assert_int_eq(run_env("enodev", novmm), 0);
	ck_assert_int_eq(run_env("auto", nolib), 0);
	/* Without cuGetProcAddress, through the versioned exports. */
	ck_assert_int_eq(run_env("opens", oldlib), 0);
	ck_assert_int_eq(run_env("other-context", two), 0);
}
END_TEST

/* Every case loads the fake afresh (setup) and has the same time limit. */
static TCase *backend_case(Suite *s, const char *name)
{
	TCase *tc = suite_case(s, name, 300);

	tcase_add_checked_fixture(tc, setup, NULL);
	return tc;
}

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc == 3 && !strcmp(argv[1], "--env-case"))
		return env_case(argv[2]);
	/* As make runs it: the fake's latency injection off (it reads this
	 * when the backend first loads it, after main). */
	setenv("FAKECUDA_LATENCY", "0", 0);
	s = suite_create("backend_cuda");

	tc = backend_case(s, "open");
	tcase_add_test(tc, test_open);
	tcase_add_test(tc, test_bad_device);
	tcase_add_test(tc, test_numa_node);

	tc = backend_case(s, "ops");
	tcase_add_test(tc, test_ops_and_copy);
	tcase_add_test(tc, test_argument_checks);

	tc = backend_case(s, "touch");
	tcase_add_test(tc, test_no_touch_before_access);
	tcase_add_test(tc, test_map_path_touches_nothing_early);
	tcase_add_loop_test(tc, test_cache_touches_nothing_early, 0, 3);

	add_fault_tests(backend_case(s, "faults"));
	add_hostreg_tests(backend_case(s, "hostreg"));
	tcase_add_test(backend_case(s, "threads"), test_threads);
	tcase_add_test(backend_case(s, "env"), test_env_cases);
	return run_suite(s);
}
