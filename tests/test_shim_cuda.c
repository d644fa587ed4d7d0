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

static char shim[512], engine[512], vkvctl[512], fakecuda[512], rundir[256];

static void env_path(char *out, const char *var, const char *def)
{
	const char *v = getenv(var);
	char *abs;

	abs = realpath(v && *v ? v : def, NULL);
	ck_assert_msg(abs != NULL, "%s (%s): %s", var, v ? v : def,
		      strerror(errno));
	snprintf(out, 512, "%s", abs);
	free(abs);
}

static void setup(void)
{
	env_path(shim, "SHIM_SO", "build/libvkv-shim.so");
	env_path(engine, "SHIM_CUDA_ENGINE", "build/tests/shim_cuda_engine");
	env_path(vkvctl, "VKVCTL", "build/vkvctl");
	env_path(fakecuda, "FAKECUDA_DIR", "build/fakecuda");
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
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rundir);
	if (system(cmd))
		fprintf(stderr, "test_shim_cuda: could not remove %s\n",
			rundir);
}

/* The engine under the shim with extra "NAME=value" settings. */
static int run_engine(const char *name, const char *const *env)
{
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (pid == 0) {
		for (; env && *env; env++)
			putenv((char *)*env);
		setenv("LD_PRELOAD", shim, 1);
		execl(engine, engine, name, (char *)NULL);
		_exit(127);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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
	return run_suite(s);
}
