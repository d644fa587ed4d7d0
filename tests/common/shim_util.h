/* SPDX-License-Identifier: MIT */
/*
 * shim_util.h - what the shim's suites share: an engine run under the shim,
 * vkvctl run and read, and a serving engine talked to over its pipes
 * (tests/shim_engine.c "serve"). Used on the host (test_shim,
 * test_shim_cuda) and in the qemu guest (tests/vm/test_shim_kmod), so it
 * needs Check and the C library only.
 *
 * Waits that may hang take a hang callback: NULL waits for ever (the
 * suite's timeout ends it), else it is called after SHIM_WAIT_MS with what
 * was waited for, and must not return (a ck_abort_msg, after logging what
 * it can).
 */
#ifndef VKV_TESTS_SHIM_UTIL_H
#define VKV_TESTS_SHIM_UTIL_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_WAIT_MS 60000

typedef void (*shim_hang_fn)(const char *what);

/* A file named by the environment (or def), made absolute, into out. */
static inline void shim_env_path(char *out, size_t size, const char *var,
				 const char *def)
{
	const char *v = getenv(var);
	char *abs;

	abs = realpath(v && *v ? v : def, NULL);
	ck_assert_msg(abs != NULL, "%s (%s): %s", var, v ? v : def,
		      strerror(errno));
	snprintf(out, size, "%s", abs);
	free(abs);
}

static inline void shim_remove_dir(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

/* An exit status as a number: 128 + the signal for a killed process. */
static inline int shim_status(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Is fd readable within SHIM_WAIT_MS? Else hang(what), if given. */
static inline void shim_wait_readable(int fd, const char *what,
				      shim_hang_fn hang)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (hang && poll(&p, 1, SHIM_WAIT_MS) != 1)
		hang(what);
}

/*
 * engine name under LD_PRELOAD=shim, with extra "NAME=value" settings; its
 * stdout and stderr appended to log when given. Its exit status.
 */
static inline int shim_run_engine(const char *shim, const char *engine,
				  const char *name, const char *const *env,
				  const char *log)
{
	pid_t pid = fork();
	int status, fd;

	ck_assert(pid >= 0);
	if (pid == 0) {
		for (; env && *env; env++)
			putenv((char *)*env);
		if (log) {
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd < 0)
				_exit(126);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("LD_PRELOAD", shim, 1);
		execl(engine, engine, name, (char *)NULL);
		_exit(127);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	return shim_status(status);
}

/*
 * The same, its stdout and stderr in log (made anew), shown on stderr only
 * when it fails: for runs that say a lot on purpose.
 */
static inline int shim_run_engine_quiet(const char *shim, const char *engine,
					const char *name,
					const char *const *env, const char *log)
{
	char line[512];
	FILE *f;
	int rc;

	unlink(log);
	rc = shim_run_engine(shim, engine, name, env, log);
	f = rc ? fopen(log, "r") : NULL;
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stderr);
	if (f)
		fclose(f);
	return rc;
}

/*
 * vkvctl with up to four arguments, as uid (or as ourselves for -1): its
 * exit status, its stdout and stderr in out.
 */
static inline int shim_vkvctl(const char *vkvctl, int uid, char *out,
			      size_t size, const char *a1, const char *a2,
			      const char *a3, const char *a4, shim_hang_fn hang)
{
	int fds[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	ck_assert(pipe(fds) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		if (uid >= 0 && setresuid(uid, uid, uid))
			_exit(126);
		execl(vkvctl, vkvctl, a1, a2, a3, a4, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	shim_wait_readable(fds[0], a1, hang);
	while (got + 1 < size &&
	       (n = read(fds[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fds[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status))
		fprintf(stderr, "vkvctl: status %#x: %s\n", status, out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* shim_engine's "serve": a KV buffer held, checked on request. */
struct shim_served {
	pid_t pid;
	FILE *in, *out;
	char addr[32];
};

static inline void shim_serve_start(struct shim_served *s, const char *shim,
				    const char *engine, const char *const *env)
{
	int to[2], from[2];
	char line[128];

	ck_assert(pipe(to) == 0 && pipe(from) == 0);
	s->pid = fork();
	ck_assert(s->pid >= 0);
	if (s->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		/* Else the engine never sees the end of its input. */
		close(to[1]);
		close(from[0]);
		for (; env && *env; env++)
			putenv((char *)*env);
		setenv("LD_PRELOAD", shim, 1);
		execl(engine, engine, "serve", (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	s->in = fdopen(to[1], "w");
	s->out = fdopen(from[0], "r");
	ck_assert(fgets(line, sizeof(line), s->out) != NULL);
	ck_assert_msg(sscanf(line, "ready %31s", s->addr) == 1, "engine: %s",
		      line);
}

/* Ask the engine; its answer must be ok at the address it started with. */
static inline void shim_serve_ask(struct shim_served *s, const char *what,
				  shim_hang_fn hang)
{
	char line[128], want[64];

	fprintf(s->in, "%s\n", what);
	fflush(s->in);
	shim_wait_readable(fileno(s->out), what, hang);
	ck_assert(fgets(line, sizeof(line), s->out) != NULL);
	snprintf(want, sizeof(want), "ok %s\n", s->addr);
	ck_assert_str_eq(line, want);
}

/* End its input; it must exit 0. */
static inline void shim_serve_stop(struct shim_served *s, shim_hang_fn hang)
{
	int status, waited = 0;
	pid_t got;

	fclose(s->in);
	fclose(s->out);
	while (hang && (got = waitpid(s->pid, &status, WNOHANG)) == 0 &&
	       waited < SHIM_WAIT_MS) {
		usleep(100 * 1000);
		waited += 100;
	}
	if (!hang)
		got = waitpid(s->pid, &status, 0);
	else if (got == 0)
		hang("engine exit");
	ck_assert(got == s->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#endif
