/* SPDX-License-Identifier: MIT */
/*
 * vkvctl_test.h - what the host suites of vkvctl's top and ps share: paths
 * from the environment (as check-shim gives them: SHIM_SO, SHIM_ENGINE,
 * SHIM_CUDA_ENGINE, FAKECUDA_DIR, VKVCTL), a runtime directory and a sysfs
 * root of their own per test, vkvctl run with its output captured, its
 * JSON parsed (tests/vm/jsonparse.h), and tests/shim_engine.c's "serve"
 * engine under the shim.
 */
#ifndef VKV_TEST_VKVCTL_TEST_H
#define VKV_TEST_VKVCTL_TEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/check_util.h"
#include "common/shim_util.h"
#include "vm/jsonparse.h"

#define MIB (1024 * 1024)
#define ENGINE_BYTES (32 * MIB) /* what shim_engine's "serve" allocates */

static char shim[512], engine[512], cuda_engine[512], fakecuda[512],
	vkvctl[512], rundir[256], root[256];

/* The module's counters, as tools/vkvctl/sysfs.c lists them. */

static inline void setup(void)
{
	shim_env_path(shim, sizeof(shim), "SHIM_SO", "build/libvkv-shim.so");
	shim_env_path(engine, sizeof(engine), "SHIM_ENGINE",
		      "build/tests/shim_engine");
	shim_env_path(vkvctl, sizeof(vkvctl), "VKVCTL", "build/vkvctl");
	shim_env_path(cuda_engine, sizeof(cuda_engine), "SHIM_CUDA_ENGINE",
		      "build/tests/shim_cuda_engine");
	shim_env_path(fakecuda, sizeof(fakecuda), "FAKECUDA_DIR",
		      "build/fakecuda");
	snprintf(rundir, sizeof(rundir), "/tmp/vkv-top-test-XXXXXX");
	ck_assert(mkdtemp(rundir) != NULL);
	snprintf(root, sizeof(root), "/tmp/vkv-top-sysfs-XXXXXX");
	ck_assert(mkdtemp(root) != NULL);
	setenv("XDG_RUNTIME_DIR", rundir, 1);
	setenv("VKV_SYSFS_ROOT", root, 1);
	setenv("VKV_SHIM_MIN_BYTES", "1M", 1);
	setenv("VKV_SHIM_BACKING", "anon", 1);
	unsetenv("VKV_SHIM_LIMIT");
	unsetenv("VKV_SHIM_MATCH_BYTES");
	unsetenv("VKV_SHIM");
}

static inline void teardown(void)
{
	shim_remove_dir(rundir);
	shim_remove_dir(root);
}

static inline void read_all(int fd, char *out, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got + 1 < size && (n = read(fd, out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
}

/*
 * vkvctl with up to 6 arguments (NULL-terminated); its exit status, stdout
 * in out, stderr in err. Killed after 30 s: a top that never ends fails.
 */
static inline int run(char *out, size_t out_size, char *err, size_t err_size,
		      const char *const *args)
{
	const char *argv[8] = {"vkvctl"};
	int po[2], pe[2], status;
	pid_t pid;

	for (int i = 0; args[i]; i++) {
		ck_assert(i < 6);
		argv[i + 1] = args[i];
	}
	ck_assert(pipe(po) == 0 && pipe(pe) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		alarm(30);
		execv(vkvctl, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	read_all(po[0], out, out_size);
	read_all(pe[0], err, err_size);
	close(po[0]);
	close(pe[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status), "vkvctl killed by signal %d: %s",
		      WTERMSIG(status), err);
	ck_assert_int_ne(WEXITSTATUS(status), 127);
	return WEXITSTATUS(status);
}

#define RUN(out, err, ...)                                                     \
	run(out, sizeof(out), err, sizeof(err),                                \
	    (const char *const[]){__VA_ARGS__, NULL})

/* Split out into lines, parse each as JSON; how many, into v[]. */
static inline size_t parse_lines(char *out, struct jval *v, size_t max)
{
	char err[160], *save = NULL;
	size_t n = 0;

	for (char *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(n < max, "more than %zu lines", max);
		ck_assert_msg(json_parse(line, &v[n], err, sizeof(err)) == 0,
			      "%s: %s", err, line);
		n++;
	}
	return n;
}

static inline double num(const struct jval *obj, const char *key)
{
	const struct jval *v = json_get(obj, key);

	ck_assert_msg(v && v->t == J_NUM, "%s: not a number", key);
	return v->num;
}

static inline const char *str(const struct jval *obj, const char *key)
{
	const struct jval *v = json_get(obj, key);

	ck_assert_msg(v && v->t == J_STR, "%s: not a string", key);
	return v->str;
}

/* --- an engine under the shim, holding ENGINE_BYTES of KV --- */

/* tests/shim_engine.c's "serve" engine under the shim (shim_util.h). */
static inline void serve_start(struct shim_served *s)
{
	shim_serve_start(s, shim, engine, NULL);
}

/* Its KV must still hold what it wrote, at the same address. */
static inline void serve_check(struct shim_served *s)
{
	shim_serve_ask(s, "check", NULL);
}

static inline void serve_stop(struct shim_served *s)
{
	shim_serve_stop(s, NULL);
}

/* The entry of pid in an array of processes; fails if it is not there. */
static inline const struct jval *find_proc(const struct jval *procs, pid_t pid)
{
	ck_assert(procs && procs->t == J_ARR);
	for (size_t i = 0; i < procs->n; i++)
		if (num(&procs->items[i], "pid") == (double)pid)
			return &procs->items[i];
	ck_abort_msg("pid %d not listed", (int)pid);
	return NULL;
}

/* What ps and top must say of a running engine's anonymous region. */
static inline void check_engine_entry(const struct jval *p, const char *state)
{
	static const char *const numbers[] = {
		"pid",	  "regions",  "bytes", "device", "host", "disk",
		"absent", "passthru", "limit", "anon",	 "kmod", "cuda",
	};

	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		ck_assert_double_ge(num(p, numbers[i]), 0);
	ck_assert_str_eq(str(p, "comm"), "shim_engine");
	ck_assert_str_eq(str(p, "state"), state);
	ck_assert_double_eq(num(p, "regions"), 1);
	ck_assert_double_eq(num(p, "bytes"), ENGINE_BYTES);
	ck_assert_double_eq(num(p, "anon"), ENGINE_BYTES);
	ck_assert_double_eq(num(p, "kmod"), 0);
	ck_assert_double_eq(num(p, "cuda"), 0);
	ck_assert_double_eq(num(p, "device"), 0);
	ck_assert_double_eq(num(p, "passthru"), 0);
	/* Every byte is somewhere, and nowhere twice. */
	ck_assert_double_eq(num(p, "host") + num(p, "disk") + num(p, "absent"),
			    ENGINE_BYTES);
}

#endif
