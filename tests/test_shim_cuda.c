/* SPDX-License-Identifier: MIT */
/*
 * test_shim_cuda - libvkv-shim.so's CUDA path on the fake libcuda.so.1:
 * the engines of tests/shim_cuda_engine.c, each run with LD_PRELOAD and
 * driven by vkvctl from inside (suspend, resume at the same addresses),
 * plus the dlsym path and what the shim does with the shim turned off.
 *
 * Paths from the environment: SHIM_SO (build/libvkv-shim.so),
 * SHIM_CUDA_ENGINE (build/tests/shim_cuda_engine), VKVCTL (build/vkvctl),
 * FAKECUDA_DIR (build/fakecuda, put on LD_LIBRARY_PATH). Sockets and spill
 * files go to a directory of the test's own.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check_util.h"
#include "common/shim_util.h"

static char shim[512], engine[512], vkvctl[512], fakecuda[512], rundir[256];

static void setup(void)
{
	shim_env_path(shim, sizeof(shim), "SHIM_SO", "build/libvkv-shim.so");
	shim_env_path(engine, sizeof(engine), "SHIM_CUDA_ENGINE",
		      "build/tests/shim_cuda_engine");
	shim_env_path(vkvctl, sizeof(vkvctl), "VKVCTL", "build/vkvctl");
	shim_env_path(fakecuda, sizeof(fakecuda), "FAKECUDA_DIR",
		      "build/fakecuda");
	snprintf(rundir, sizeof(rundir), "/tmp/vkv-shim-cuda-XXXXXX");
	ck_assert(mkdtemp(rundir) != NULL);
	setenv("XDG_RUNTIME_DIR", rundir, 1);
	setenv("VKV_SHIM_SPILL_DIR", rundir, 1);
	setenv("VKVCTL", vkvctl, 1);
	setenv("LD_LIBRARY_PATH", fakecuda, 1);
	setenv("FAKECUDA_LATENCY", "0", 1);
	setenv("VKV_SHIM_MIN_BYTES", "0", 1);
	unsetenv("VKV_SHIM_LIMIT");
	unsetenv("VKV_SHIM_MATCH_BYTES");
	unsetenv("VKV_SHIM");
}

static void teardown(void)
{
	shim_remove_dir(rundir);
}

/* The engine under the shim with extra "NAME=value" settings. */
static int run_engine(const char *name, const char *const *env)
{
	return shim_run_engine(shim, engine, name, env, NULL);
}

/* The same, quietly: faults make a lot of output. */
static int run_engine_quiet(const char *name, const char *const *env)
{
	char log[300];

	snprintf(log, sizeof(log), "%s/engine.log", rundir);
	return shim_run_engine_quiet(shim, engine, name, env, log);
}

START_TEST(vllm_engine)
{
	static const char *const env[] = {"VKV_SHIM_MATCH_BYTES=6M", NULL};

	ck_assert_int_eq(run_engine("vllm", env), 0);
}
END_TEST

START_TEST(sglang_engine)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=4M", NULL};

	ck_assert_int_eq(run_engine("sglang", env), 0);
}
END_TEST

START_TEST(trt_engine)
{
	ck_assert_int_eq(run_engine("trt", NULL), 0);
}
END_TEST

START_TEST(graph_replay)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=4M", NULL};

	ck_assert_int_eq(run_engine("graph", env), 0);
}
END_TEST

START_TEST(limits)
{
	static const char *const env[] = {"VKV_SHIM_MATCH_BYTES=6M",
					  "VKV_SHIM_LIMIT=16M", NULL};

	ck_assert_int_eq(run_engine("limit", env), 0);
}
END_TEST

START_TEST(limit_counts_mapped_bytes)
{
	static const char *const env[] = {"VKV_SHIM_LIMIT=16M", NULL};

	ck_assert_int_eq(run_engine("round", env), 0);
}
END_TEST

START_TEST(resume_out_of_memory)
{
	static const char *const env[] = {"VKV_SHIM_MATCH_BYTES=6M", NULL};

	ck_assert_int_eq(run_engine("oom", env), 0);
}
END_TEST

START_TEST(per_thread_default_stream)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=4M", NULL};

	ck_assert_int_eq(run_engine("ptds", env), 0);
}
END_TEST

/*
 * A suspend that fails half-way and cannot put everything back leaves the
 * process suspended, so that its next call brings the memory back.
 */
START_TEST(failed_suspend_rollback)
{
	static const char *const env[] = {
		"VKV_SHIM_MIN_BYTES=4M",
		"FAKECUDA_FAIL=cuMemcpyDtoH:2,cuMemCreate:3", NULL};

	ck_assert_int_eq(run_engine("rollback", env), 0);
}
END_TEST

/*
 * Fault injection under the shim: every driver call of each engine's run
 * that a fault can hit (counted in a clean run) fails in turn, once; the
 * engine must compute the same result, the shim falling back to the
 * driver's allocation or passing the driver's error on, never corrupting.
 * Past the first calls of a function, a sample of them.
 */
START_TEST(faults)
{
	static const struct {
		const char *name, *env;
	} engines[] = {
		{"vllm", "VKV_SHIM_MATCH_BYTES=6M"},
		{"sglang", "VKV_SHIM_MIN_BYTES=4M"},
		{"trt", "VKV_SHIM_MIN_BYTES=0"},
		{"graph", "VKV_SHIM_MIN_BYTES=4M"},
		{"ptds", "VKV_SHIM_MIN_BYTES=4M"},
	};
	char counts[512], counts_env[600], fail_env[128], fn[64];
	unsigned long long n;
	int runs = 0;

	snprintf(counts, sizeof(counts), "%s/counts", rundir);
	snprintf(counts_env, sizeof(counts_env), "SHIM_ENGINE_COUNTS=%s",
		 counts);
	for (size_t e = 0; e < sizeof(engines) / sizeof(*engines); e++) {
		const char *clean[] = {engines[e].env, counts_env, NULL};
		const char *faulty[] = {engines[e].env, "SHIM_ENGINE_FAULTS=1",
					fail_env, NULL};
		FILE *f;

		ck_assert_int_eq(run_engine(engines[e].name, clean), 0);
		f = fopen(counts, "r");
		ck_assert(f != NULL);
		while (fscanf(f, "%63s %llu", fn, &n) == 2) {
			unsigned long long step = n > 8 ? n / 4 : 1;

			for (unsigned long long i = 1; i <= n;
			     i += i < 8 ? 1 : step) {
				snprintf(fail_env, sizeof(fail_env),
					 "FAKECUDA_FAIL=%s:%llu", fn, i);
				ck_assert_msg(run_engine_quiet(engines[e].name,
							       faulty) == 0,
					      "%s with %s", engines[e].name,
					      fail_env);
				runs++;
			}
		}
		fclose(f);
	}
	/* The counts were read: the engines made the calls faults hit. */
	ck_assert_int_gt(runs, 100);
}
END_TEST

START_TEST(peer_access)
{
	static const char *const env[] = {"VKV_SHIM_MIN_BYTES=4M",
					  "FAKECUDA_DEVICES=2", NULL};

	ck_assert_int_eq(run_engine("peer", env), 0);
}
END_TEST

START_TEST(peer_access_race)
{
	static const char *const env[] = {
		"VKV_SHIM_MIN_BYTES=4M",
		"FAKECUDA_DEVICES=2",
		"FAKECUDA_LATENCY=1",
		"FAKECUDA_LATENCY_SCALE=call",
		"FAKECUDA_LATENCY_US=cuMemSetAccess:200000",
		NULL};

	ck_assert_int_eq(run_engine("peer_race", env), 0);
}
END_TEST

START_TEST(shim_off)
{
	static const char *const env[] = {"VKV_SHIM_MATCH_BYTES=6M",
					  "VKV_SHIM_LIMIT=16M", "VKV_SHIM=0",
					  NULL};

	ck_assert_int_eq(run_engine("off", env), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shim_cuda");
	TCase *tc = suite_case(s, "engines", 120);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, vllm_engine);
	tcase_add_test(tc, sglang_engine);
	tcase_add_test(tc, trt_engine);
	tcase_add_test(tc, graph_replay);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, limit_counts_mapped_bytes);
	tcase_add_test(tc, resume_out_of_memory);
	tcase_add_test(tc, shim_off);
	tcase_add_test(tc, per_thread_default_stream);
	tcase_add_test(tc, failed_suspend_rollback);
	tcase_add_test(tc, peer_access);
	tcase_add_test(tc, peer_access_race);
	tc = suite_case(s, "faults", 600);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, faults);
	return run_suite(s);
}
