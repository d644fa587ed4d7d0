/* SPDX-License-Identifier: MIT */
/*
 * test_shim - libvkv-shim.so under the test engines of tests/shim_engine.c
 * (each run with LD_PRELOAD), and vkvctl's process commands against a
 * running engine: suspend and resume with the data intact at the same
 * address, limits, error messages, and who may command a process.
 *
 * Paths from the environment: SHIM_SO (build/libvkv-shim.so), SHIM_ENGINE
 * (build/tests/shim_engine), VKVCTL (build/vkvctl). Sockets go to a
 * directory of the test's own (XDG_RUNTIME_DIR), without the module
 * (VKV_SHIM_BACKING=anon): the module's path runs in the qemu suites.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check_util.h"
#include "common/shim_util.h"

#define NOBODY 65534

static char shim[512], engine[512], vkvctl[512], early[512], rundir[256];

static void setup(void)
{
	shim_env_path(shim, sizeof(shim), "SHIM_SO", "build/libvkv-shim.so");
	shim_env_path(engine, sizeof(engine), "SHIM_ENGINE",
		      "build/tests/shim_engine");
	shim_env_path(vkvctl, sizeof(vkvctl), "VKVCTL", "build/vkvctl");
	shim_env_path(early, sizeof(early), "SHIM_EARLY",
		      "build/tests/shim_early.so");
	snprintf(rundir, sizeof(rundir), "/tmp/vkv-shim-test-XXXXXX");
	ck_assert(mkdtemp(rundir) != NULL);
	/* Other users need to reach the directory to be refused inside. */
	chmod(rundir, 0711);
	setenv("XDG_RUNTIME_DIR", rundir, 1);
	setenv("VKV_SHIM_MIN_BYTES", "1M", 1);
	setenv("VKV_SHIM_BACKING", "anon", 1);
	unsetenv("VKV_SHIM_LIMIT");
	unsetenv("VKV_SHIM_MATCH_BYTES");
	unsetenv("VKV_SHIM");
}

static void teardown(void)
{
	shim_remove_dir(rundir);
}

/* Run the engine under the shim with extra "NAME=value" settings. */
static int run_engine(const char *name, const char *const *env)
{
	return shim_run_engine(shim, engine, name, env, NULL);
}

/*
 * vkvctl with args, as uid (or ourselves for -1); its exit status, stdout
 * in out.
 */
static int run_vkvctl(int uid, char *out, size_t size, const char *a1,
		      const char *a2, const char *a3, const char *a4)
{
	return shim_vkvctl(vkvctl, uid, out, size, a1, a2, a3, a4, NULL);
}

START_TEST(llama_engine)
{
	ck_assert_int_eq(run_engine("llama", NULL), 0);
}
END_TEST

START_TEST(calloc_engine)
{
	ck_assert_int_eq(run_engine("calloc", NULL), 0);
}
END_TEST

START_TEST(torture_threads_fork)
{
	ck_assert_int_eq(run_engine("torture", NULL), 0);
}
END_TEST

START_TEST(match_and_tag)
{
	static const char *const match[] = {
		"VKV_SHIM_MIN_BYTES=0", "VKV_SHIM_MATCH_BYTES=12345,99M", NULL};
	static const char *const tag[] = {"VKV_SHIM_MIN_BYTES=0", NULL};

	ck_assert_int_eq(run_engine("match", match), 0);
	ck_assert_int_eq(run_engine("tag", tag), 0);
	ck_assert_int_eq(run_engine("mmap", NULL), 0);
}
END_TEST

/* The engine's stderr, from a run of shim_run_engine_quiet(), in out. */
static void engine_said(const char *log, char *out, size_t size)
{
	FILE *f = fopen(log, "r");
	size_t n;

	ck_assert(f != NULL);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	fclose(f);
}

/* VKV_SHIM_VERBOSE names each region and why, and large pass-throughs. */
START_TEST(verbose)
{
	static const char *const match[] = {"VKV_SHIM_MIN_BYTES=0",
					    "VKV_SHIM_MATCH_BYTES=12345",
					    "VKV_SHIM_VERBOSE=1", NULL};
	static const char *const llama[] = {"VKV_SHIM_VERBOSE=1", NULL};
	static const char *const quiet[] = {"VKV_SHIM_VERBOSE=0", NULL};
	char log[300], said[8192];

	snprintf(log, sizeof(log), "%s/engine.log", rundir);
	ck_assert_int_eq(
		shim_run_engine_quiet(shim, engine, "match", match, log), 0);
	engine_said(log, said, sizeof(said));
	ck_assert_msg(
		strstr(said, ": 12345 bytes: region (VKV_SHIM_MATCH_BYTES)\n"),
		"%s", said);
	/* 12346 bytes pass through, below the size worth a line. */
	ck_assert_msg(!strstr(said, "12346"), "%s", said);
	ck_assert_int_eq(
		shim_run_engine_quiet(shim, engine, "llama", llama, log), 0);
	engine_said(log, said, sizeof(said));
	ck_assert_msg(
		strstr(said, ": 25165824 bytes: region (VKV_SHIM_MIN_BYTES)\n"),
		"%s", said);
	ck_assert_int_eq(
		shim_run_engine_quiet(shim, engine, "llama", quiet, log), 0);
	engine_said(log, said, sizeof(said));
	ck_assert_msg(!strstr(said, "bytes: region"), "%s", said);
}
END_TEST

/* Part of a region unmapped or remapped behaves as the kernel's would. */
START_TEST(unmap_and_remap)
{
	ck_assert_int_eq(run_engine("unmap", NULL), 0);
	ck_assert_int_eq(run_engine("remap", NULL), 0);
}
END_TEST

/*
 * The shim's backing fails underneath (vkv.ko asked for, and not loaded):
 * every engine computes the same result from the real allocator's memory,
 * and the shim says so once per kind of call, on stderr.
 */
START_TEST(backing_fails)
{
	static const struct {
		const char *name, *env;
	} engines[] = {
		{"llama", NULL},
		{"calloc", NULL},
		{"match", "VKV_SHIM_MATCH_BYTES=12345,99M"},
		{"tag", "VKV_SHIM_MIN_BYTES=0"},
		{"mmap", NULL},
		{"unmap", NULL},
		{"remap", NULL},
	};
	char log[300], line[512];

	if (access("/dev/vkv", F_OK) == 0) {
		printf("test_shim: backing_fails skipped: /dev/vkv is there, "
		       "a pool would not fail\n");
		return;
	}
	snprintf(log, sizeof(log), "%s/engine.log", rundir);
	for (size_t i = 0; i < sizeof(engines) / sizeof(*engines); i++) {
		const char *env[] = {"VKV_SHIM_BACKING=kmod",
				     "SHIM_ENGINE_FAULTS=1", engines[i].env,
				     NULL};
		int said = 0;
		FILE *f;

		ck_assert_msg(shim_run_engine_quiet(shim, engine,
						    engines[i].name, env,
						    log) == 0,
			      "%s", engines[i].name);
		f = fopen(log, "r");
		ck_assert(f != NULL);
		while (fgets(line, sizeof(line), f)) {
			ck_assert_msg(strstr(line, "libvkv-shim[") &&
					      strstr(line, "(said once)"),
				      "%s: %s", engines[i].name, line);
			said++;
		}
		fclose(f);
		ck_assert_msg(said == 1, "%s: %d lines", engines[i].name, said);
	}
}
END_TEST

START_TEST(limits)
{
	static const char *const env[] = {"VKV_SHIM_LIMIT=20M", NULL};

	ck_assert_int_eq(run_engine("limit", env), 0);
}
END_TEST

START_TEST(off_switch)
{
	static const char *const env[] = {"VKV_SHIM=0", NULL};

	ck_assert_int_eq(run_engine("off", env), 0);
}
END_TEST

/*
 * Allocations made while the shim asks dlsym() for the real allocator
 * (shim_early.so's dlsym allocates, as some runtimes' do).
 */
START_TEST(allocation_inside_dlsym)
{
	char preload[1100];
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (pid == 0) {
		snprintf(preload, sizeof(preload), "%s %s", shim, early);
		setenv("LD_PRELOAD", preload, 1);
		execl(engine, engine, "boot", (char *)NULL);
		_exit(127);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/*
 * The shim's first allocations come from other code's constructors, before
 * its own ran, and from programs that never call malloc themselves.
 */
START_TEST(first_allocation)
{
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (pid == 0) {
		setenv("LD_PRELOAD", shim, 1);
		/* ls allocates from libc's and libselinux's constructors. */
		execl("/bin/sh", "sh", "-c",
		      "ls / >/dev/null && env | grep -q LD_PRELOAD && "
		      "python3 -c 'b = bytearray(8 << 20); b[1] = 2' "
		      "2>/dev/null "
		      "|| ! command -v python3 >/dev/null",
		      (char *)NULL);
		_exit(127);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

static void serve_start(struct shim_served *s)
{
	shim_serve_start(s, shim, engine, NULL);
}

static void serve_ask(struct shim_served *s, const char *what)
{
	shim_serve_ask(s, what, NULL);
}

static void serve_stop(struct shim_served *s)
{
	shim_serve_stop(s, NULL);
}

START_TEST(suspend_resume)
{
	struct shim_served s;
	char out[4096], pid[16], key[64];
	static const char *const modes[] = {"host", "disk"};

	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	snprintf(key, sizeof(key), "\"pid\": %s,", pid);

	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "ps", "--json", NULL, NULL),
		0);
	ck_assert_msg(strstr(out, key) && strstr(out, "\"state\": \"running\""),
		      "%s", out);
	ck_assert_msg(strstr(out, "\"regions\": 1,"), "%s", out);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "suspend",
					    pid, "--mode", modes[i]),
				 0);
		ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "ps",
					    "--json", NULL, NULL),
				 0);
		ck_assert_msg(strstr(out, "\"state\": \"suspended\""), "%s",
			      out);
		ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "suspend",
					    pid, NULL, NULL),
				 1);
		ck_assert_msg(strstr(out, "already suspended"), "%s", out);
		ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "resume", pid,
					    "--json", NULL),
				 0);
		ck_assert_msg(strstr(out, "\"state\": \"running\""), "%s", out);
		serve_ask(&s, "check");
	}
	/* Discard: the engine recomputes; it reads zeroes, same address. */
	ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "suspend", pid,
				    "--mode", "discard"),
			 0);
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "resume", pid, NULL, NULL), 0);
	serve_ask(&s, "zero");
	serve_ask(&s, "check");
	ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "limit", pid,
				    "1048576", "--json"),
			 0);
	ck_assert_msg(strstr(out, "\"limit\": 1048576,"), "%s", out);
	ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "suspend", pid,
				    "--mode", "sideways"),
			 2);
	serve_stop(&s);
}
END_TEST

START_TEST(vkvctl_errors)
{
	char out[4096], pid[16];

	ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "resume", "999999999",
				    NULL, NULL),
			 1);
	ck_assert_msg(strstr(out, "no such process"), "%s", out);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "resume", pid, NULL, NULL), 1);
	ck_assert_msg(strstr(out, "not a vkv process"), "%s", out);
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "limit", pid, "lots", NULL),
		2);
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "ps", "--help", NULL, NULL),
		0);
	ck_assert_msg(strstr(out, "usage: vkvctl ps"), "%s", out);
	ck_assert_int_eq(run_vkvctl(-1, out, sizeof(out), "suspend", "--help",
				    NULL, NULL),
			 0);
}
END_TEST

/*
 * Another user cannot command the process: not through the directory
 * (0700), and not through the socket itself when its modes are opened up
 * (the shim checks the peer's credentials).
 */
START_TEST(other_user_refused)
{
	char out[4096], pid[16], path[512];
	struct shim_served s;

	if (geteuid() != 0) {
		printf("test_shim: other_user_refused skipped: needs root to "
		       "run vkvctl as another user (uid %d)\n",
		       NOBODY);
		return;
	}
	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	ck_assert_int_eq(run_vkvctl(NOBODY, out, sizeof(out), "suspend", pid,
				    NULL, NULL),
			 1);
	ck_assert_msg(strstr(out, "permission denied"), "%s", out);

	snprintf(path, sizeof(path), "%s/vkv", rundir);
	ck_assert(chmod(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/vkv/%s.sock", rundir, pid);
	ck_assert(chmod(path, 0777) == 0);
	ck_assert_int_eq(run_vkvctl(NOBODY, out, sizeof(out), "suspend", pid,
				    NULL, NULL),
			 1);
	ck_assert_msg(strstr(out, "permission denied"), "%s", out);
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "ps", "--json", NULL, NULL),
		0);
	ck_assert_msg(strstr(out, "\"state\": \"running\""), "%s", out);
	serve_ask(&s, "check");
	serve_stop(&s);
}
END_TEST

/* A directory of another user's is not used: no socket, engine unharmed. */
START_TEST(foreign_rundir)
{
	char path[512], out[4096];

	if (geteuid() != 0) {
		printf("test_shim: foreign_rundir skipped: needs root to make "
		       "a directory of another user's\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/vkv", rundir);
	ck_assert(mkdir(path, 0777) == 0);
	ck_assert(chown(path, NOBODY, NOBODY) == 0);
	ck_assert_int_eq(run_engine("llama", NULL), 0);
	ck_assert_int_eq(
		run_vkvctl(-1, out, sizeof(out), "ps", "--json", NULL, NULL),
		0);
	ck_assert_str_eq(out, "[]\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shim");
	TCase *tc;

	tc = suite_case(s, "engines", 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, llama_engine);
	tcase_add_test(tc, calloc_engine);
	tcase_add_test(tc, torture_threads_fork);
	tcase_add_test(tc, match_and_tag);
	tcase_add_test(tc, verbose);
	tcase_add_test(tc, unmap_and_remap);
	tcase_add_test(tc, backing_fails);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, off_switch);
	tcase_add_test(tc, first_allocation);
	tcase_add_test(tc, allocation_inside_dlsym);
	tc = suite_case(s, "control", 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, suspend_resume);
	tcase_add_test(tc, vkvctl_errors);
	tcase_add_test(tc, other_user_refused);
	tcase_add_test(tc, foreign_rundir);
	return run_suite(s);
}
