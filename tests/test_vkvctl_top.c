/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl_top - `vkvctl top` and `vkvctl ps` on the host, no module:
 * the module's counters come from a fake sysfs tree (VKV_SYSFS_ROOT), the
 * processes from test engines run under libvkv-shim.so. --json output is
 * read by a strict JSON parser and checked against what the tree holds and
 * what the engine allocated; bad options and arguments must be refused,
 * naming the problem, with exit status 2; SIGINT and SIGTERM end top with
 * exit status 0.
 *
 * Paths from the environment, as check-shim gives them: SHIM_SO
 * (build/libvkv-shim.so), SHIM_ENGINE (build/tests/shim_engine),
 * SHIM_CUDA_ENGINE (build/tests/shim_cuda_engine), FAKECUDA_DIR
 * (build/fakecuda), VKVCTL (build/vkvctl).
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
#include <time.h>
#include <unistd.h>

#include "common/check_util.h"
#include "vm/jsonparse.h"

#define MIB (1024 * 1024)
#define ENGINE_BYTES (32 * MIB) /* what shim_engine's "serve" allocates */

static char shim[512], engine[512], cuda_engine[512], fakecuda[512],
	vkvctl[512], rundir[256], root[256];

/* The module's counters, as tools/vkvctl/sysfs.c lists them. */
static const char *const counter_names[] = {
	"pinned_bytes",
	"pool_bytes",
	"pool_reserved_bytes",
	"swapped_bytes",
	"backed_resident_bytes",
	"swap_out_total",
	"swap_in_total",
	"fault_in_total",
	"prefetch_total",
	"discard_total",
	"shrinker_scans",
	"shrinker_swap_outs",
	"checksum_errors",
	"io_errors",
	"fallback_chunks",
	"busy_total",
	"contexts",
	"pins",
	"user_denied_total",
	"orphan_bytes",
};
#define NCOUNTERS (sizeof(counter_names) / sizeof(counter_names[0]))

static void env_path(char *out, const char *var, const char *def)
{
	const char *v = getenv(var);
	char *abs = realpath(v && *v ? v : def, NULL);

	ck_assert_msg(abs != NULL, "%s (%s): %s", var, v ? v : def,
		      strerror(errno));
	snprintf(out, 512, "%s", abs);
	free(abs);
}

static void put(const char *rel, long long val)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		ck_assert_msg(!mkdir(path, 0755) || errno == EEXIST,
			      "mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fprintf(f, "%lld\n", val);
	ck_assert_int_eq(fclose(f), 0);
}

/* The fake module: counter i holds 1000 + i; swap_out_total as given. */
static void fake_module(long long swap_outs)
{
	char rel[128];

	for (size_t i = 0; i < NCOUNTERS; i++) {
		snprintf(rel, sizeof(rel), "kernel/vkv/%s", counter_names[i]);
		put(rel, strcmp(counter_names[i], "swap_out_total")
				 ? 1000 + (long long)i
				 : swap_outs);
	}
	put("module/vkv/parameters/max_pool_mb", 1024);
}

static void setup(void)
{
	env_path(shim, "SHIM_SO", "build/libvkv-shim.so");
	env_path(engine, "SHIM_ENGINE", "build/tests/shim_engine");
	env_path(vkvctl, "VKVCTL", "build/vkvctl");
	env_path(cuda_engine, "SHIM_CUDA_ENGINE",
		 "build/tests/shim_cuda_engine");
	env_path(fakecuda, "FAKECUDA_DIR", "build/fakecuda");
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

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", rundir, root);
	if (system(cmd))
		fprintf(stderr, "test_vkvctl_top: could not remove %s, %s\n",
			rundir, root);
}

static void read_all(int fd, char *out, size_t size)
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
static int run(char *out, size_t out_size, char *err, size_t err_size,
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
static size_t parse_lines(char *out, struct jval *v, size_t max)
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

static double num(const struct jval *obj, const char *key)
{
	const struct jval *v = json_get(obj, key);

	ck_assert_msg(v && v->t == J_NUM, "%s: not a number", key);
	return v->num;
}

static const char *str(const struct jval *obj, const char *key)
{
	const struct jval *v = json_get(obj, key);

	ck_assert_msg(v && v->t == J_STR, "%s: not a string", key);
	return v->str;
}

/* --- an engine under the shim, holding ENGINE_BYTES of KV --- */

struct served {
	pid_t pid;
	FILE *in, *out;
};

static void serve_start(struct served *s)
{
	int to[2], from[2];
	char line[128];

	ck_assert(pipe(to) == 0 && pipe(from) == 0);
	s->pid = fork();
	ck_assert(s->pid >= 0);
	if (s->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		setenv("LD_PRELOAD", shim, 1);
		execl(engine, engine, "serve", (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	s->in = fdopen(to[1], "w");
	s->out = fdopen(from[0], "r");
	ck_assert(fgets(line, sizeof(line), s->out) != NULL);
	ck_assert_msg(!strncmp(line, "ready ", 6), "engine: %s", line);
}

/* Its KV must still hold what it wrote. */
static void serve_check(struct served *s)
{
	char line[128];

	fprintf(s->in, "check\n");
	fflush(s->in);
	ck_assert(fgets(line, sizeof(line), s->out) != NULL);
	ck_assert_msg(!strncmp(line, "ok ", 3), "engine: %s", line);
}

static void serve_stop(struct served *s)
{
	int status;

	fclose(s->in);
	fclose(s->out);
	ck_assert(waitpid(s->pid, &status, 0) == s->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The entry of pid in an array of processes; fails if it is not there. */
static const struct jval *find_proc(const struct jval *procs, pid_t pid)
{
	ck_assert(procs && procs->t == J_ARR);
	for (size_t i = 0; i < procs->n; i++)
		if (num(&procs->items[i], "pid") == (double)pid)
			return &procs->items[i];
	ck_abort_msg("pid %d not listed", (int)pid);
	return NULL;
}

/* What ps and top must say of a running engine's anonymous region. */
static void check_engine_entry(const struct jval *p, const char *state)
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

/* --- options and arguments --- */

START_TEST(bad_options)
{
	static const char *const bad[][3] = {
		{"--interval", "0", "interval"},
		{"--interval", "-1", "interval"},
		{"--interval", "abc", "interval"},
		{"--interval", "1e9", "interval"},
		{"--interval", "nan", "interval"},
		{"--interval=", NULL, "interval"},
		{"--iterations", "0", "iterations"},
		{"--iterations", "2x", "iterations"},
		{"-n", "-3", "iterations"},
		{"--bogus", NULL, "unknown option --bogus"},
		{"--interval", NULL, "needs a value"},
	};
	char out[4096], err[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(RUN(out, err, "top", bad[i][0], bad[i][1]) == 2,
			      "top %s %s: %s", bad[i][0],
			      bad[i][1] ? bad[i][1] : "", err);
		ck_assert_msg(strstr(err, bad[i][2]), "top %s %s: %s",
			      bad[i][0], bad[i][1] ? bad[i][1] : "", err);
		ck_assert_str_eq(out, "");
	}
	ck_assert_int_eq(RUN(out, err, "top", "--help"), 0);
	ck_assert_msg(
		strstr(out, "usage: vkvctl top") && strstr(out, "--interval") &&
			strstr(out, "--iterations") && strstr(out, "--json"),
		"%s", out);
	ck_assert_int_eq(
		RUN(out, err, "top", "--interval=0.5", "-n", "1", "--json"), 0);
}
END_TEST

START_TEST(command_errors)
{
	static const char *const helps[] = {"status",  "get",	 "set",
					    "metrics", "ps",	 "top",
					    "suspend", "resume", "limit"};
	char out[4096], err[4096], want[64];

	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		ck_assert_msg(RUN(out, err, helps[i], "--help") == 0, "%s: %s",
			      helps[i], err);
		snprintf(want, sizeof(want), "usage: vkvctl %s", helps[i]);
		ck_assert_msg(strstr(out, want), "%s --help: %s", helps[i],
			      out);
	}
	ck_assert_int_eq(RUN(out, err, "frobnicate"), 2);
	ck_assert_msg(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "get"), 2);
	ck_assert_msg(strstr(err, "missing argument"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "status", "extra"), 2);
	ck_assert_msg(strstr(err, "too many arguments"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "suspend", "12abc"), 2);
	ck_assert_msg(strstr(err, "'12abc' is not a PID"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "resume", "0"), 2);
	ck_assert_msg(strstr(err, "'0' is not a PID"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "resume"), 2);
	ck_assert_msg(strstr(err, "which process"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "suspend", "1", "--mode"), 2);
	ck_assert_msg(strstr(err, "--mode needs"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "suspend", "1", "--frob"), 2);
	ck_assert_msg(strstr(err, "unknown option --frob"), "%s", err);
	ck_assert_int_eq(RUN(out, err, "limit", "1"), 2);
	ck_assert_msg(strstr(err, "how many bytes"), "%s", err);
	static const char *const not_bytes[] = {
		"-5", "5X", "1.5G", "G", "17179869184T", "5GiBs", ""};

	for (size_t i = 0; i < sizeof(not_bytes) / sizeof(not_bytes[0]); i++) {
		ck_assert_int_eq(RUN(out, err, "limit", "1", not_bytes[i]), 2);
		ck_assert_msg(strstr(err, "not a byte count"), "%s: %s",
			      not_bytes[i], err);
	}
	ck_assert_int_eq(RUN(out, err, "ps", "--frob"), 2);
	ck_assert_msg(strstr(err, "unknown option --frob"), "%s", err);
}
END_TEST

/* --- the module's counters, from the fake tree --- */

START_TEST(module_counters)
{
	static char out[65536], err[4096];
	struct jval v[2];

	fake_module(7);
	ck_assert_int_eq(RUN(out, err, "top", "--iterations", "2", "--interval",
			     "0.1", "--json"),
			 0);
	ck_assert_msg(!strchr(out, '\033'), "escape codes into a pipe");
	ck_assert_int_eq(parse_lines(out, v, 2), 2);
	for (int f = 0; f < 2; f++) {
		const struct jval *m = json_get(&v[f], "module");
		const struct jval *c = json_get(m, "counters");
		const struct jval *r = json_get(m, "rates");

		ck_assert_double_gt(num(&v[f], "time"), 1e9);
		ck_assert_double_eq_tol(num(&v[f], "interval"), 0.1, 1e-9);
		ck_assert(json_get(m, "loaded")->t == J_BOOL &&
			  json_get(m, "loaded")->b);
		ck_assert_msg(c && c->n == NCOUNTERS, "counters: %zu",
			      c ? c->n : 0);
		for (size_t i = 0; i < NCOUNTERS; i++)
			ck_assert_double_eq(
				num(c, counter_names[i]),
				strcmp(counter_names[i], "swap_out_total")
					? 1000.0 + (double)i
					: 7.0);
		/* No rates before there are two samples; then, unchanged. */
		ck_assert(r);
		if (f == 0) {
			ck_assert(r->t == J_NULL);
		} else {
			ck_assert(r->t == J_OBJ && r->n > 0);
			for (size_t i = 0; i < r->n; i++)
				ck_assert_msg(r->items[i].t == J_NUM &&
						      r->items[i].num == 0,
					      "%s", r->keys[i]);
		}
		ck_assert(json_get(&v[f], "processes")->t == J_ARR);
		json_free(&v[f]);
	}
	/* The text view: the same figures, no escape codes into a pipe. */
	ck_assert_int_eq(RUN(out, err, "top", "-n", "2", "--interval", "0.1"),
			 0);
	ck_assert_msg(!strchr(out, '\033'), "escape codes into a pipe");
	ck_assert_msg(strstr(out, "module: loaded") &&
			      strstr(out, "swap-outs/s 0.0") &&
			      strstr(out, "faults/s 0.0") &&
			      strstr(out, "contexts 1016"),
		      "%s", out);
}
END_TEST

/*
 * A rate is the counter's change over the measured time between samples:
 * swap_out_total grows by 1000 between the two frames, 2 s apart.
 */
START_TEST(module_rates)
{
	char cmd[700], *line = NULL, err[160];
	size_t cap = 0;
	struct jval v;
	const struct jval *r;
	FILE *f;

	fake_module(5000);
	snprintf(cmd, sizeof(cmd),
		 "'%s' top --iterations 2 --interval 2 --json", vkvctl);
	f = popen(cmd, "r");
	ck_assert(f != NULL);
	ck_assert(getline(&line, &cap, f) > 0);
	fake_module(6000);
	ck_assert(getline(&line, &cap, f) > 0);
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_msg(json_parse(line, &v, err, sizeof(err)) == 0, "%s: %s",
		      err, line);
	r = json_get(json_get(&v, "module"), "rates");
	ck_assert_msg(r && r->t == J_OBJ, "%s", line);
	/* At least 2 s passed: at most 500/s; at most 10 s: at least 100/s. */
	ck_assert_double_le(num(r, "swap_out_total"), 500.0 + 1e-6);
	ck_assert_double_ge(num(r, "swap_out_total"), 100.0);
	ck_assert_double_eq(num(r, "fault_in_total"), 0);
	json_free(&v);
	free(line);
}
END_TEST

/* On a terminal each refresh clears the screen and starts at its top. */
START_TEST(tty_redraws)
{
	static char out[65536];
	int master, slave, status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	char *p;

	fake_module(0);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert(master >= 0);
	ck_assert(grantpt(master) == 0 && unlockpt(master) == 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	ck_assert(slave >= 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(slave, 1);
		close(master);
		alarm(30);
		execl(vkvctl, "vkvctl", "top", "-n", "2", "--interval", "0.1",
		      (char *)NULL);
		_exit(127);
	}
	close(slave);
	/* EIO once the child, the terminal's last user, is gone. */
	while (got + 1 < sizeof(out) &&
	       (n = read(master, out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(master);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = strstr(out, "\033[H\033[2J");
	ck_assert_msg(p == out, "no redraw at the start: %s", out);
	ck_assert_msg(strstr(p + 1, "\033[H\033[2J"), "one redraw: %s", out);
	ck_assert_msg(strstr(out, "Ctrl-C quits") &&
			      strstr(out, "module: loaded"),
		      "%s", out);
}
END_TEST

START_TEST(no_module)
{
	static char out[65536], err[4096];
	struct jval v[2];

	/* An empty tree: no module/vkv. */
	ck_assert_int_eq(
		RUN(out, err, "top", "-n", "2", "--interval", "0.1", "--json"),
		0);
	ck_assert_int_eq(parse_lines(out, v, 2), 2);
	for (int f = 0; f < 2; f++) {
		const struct jval *m = json_get(&v[f], "module");

		ck_assert(m && json_get(m, "loaded")->t == J_BOOL &&
			  !json_get(m, "loaded")->b);
		ck_assert(!json_get(m, "counters"));
		json_free(&v[f]);
	}
	ck_assert_int_eq(RUN(out, err, "top", "-n", "1"), 0);
	ck_assert_msg(strstr(out, "module: not loaded"), "%s", out);
	/* status tells what the library uses without it, and fails. */
	ck_assert_int_eq(RUN(out, err, "status"), 1);
	ck_assert_msg(strstr(out, "module not loaded") &&
			      strstr(out, "memfd") &&
			      strstr(out, "mmap + mbind + mlock") &&
			      strstr(out, "io_uring"),
		      "%s", out);
}
END_TEST

/* --- processes --- */

START_TEST(top_engine)
{
	static char out[65536], err[4096];
	struct served s;
	struct jval v[2];

	fake_module(0);
	serve_start(&s);
	ck_assert_int_eq(RUN(out, err, "top", "--iterations", "2", "--interval",
			     "0.2", "--json"),
			 0);
	ck_assert_int_eq(parse_lines(out, v, 2), 2);
	for (int f = 0; f < 2; f++) {
		const struct jval *c =
			json_get(json_get(&v[f], "module"), "counters");

		check_engine_entry(
			find_proc(json_get(&v[f], "processes"), s.pid),
			"running");
		for (size_t i = 0; i < c->n; i++)
			ck_assert(c->items[i].t == J_NUM);
		json_free(&v[f]);
	}
	ck_assert_int_eq(RUN(out, err, "top", "-n", "1"), 0);
	ck_assert_msg(strstr(out, "processes: 1") &&
			      strstr(out, "shim_engine") &&
			      strstr(out, "32.0M"),
		      "%s", out);
	serve_check(&s);
	serve_stop(&s);
}
END_TEST

START_TEST(ps_engine)
{
	static char out[65536], err[4096];
	char pid[16], word[64];
	struct served s;
	struct jval v;
	const struct jval *p;

	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	ck_assert_int_eq(RUN(out, err, "ps", "--json"), 0);
	ck_assert_msg(json_parse(out, &v, err, sizeof(err)) == 0, "%s: %s", err,
		      out);
	p = find_proc(&v, s.pid);
	check_engine_entry(p, "running");
	ck_assert_str_eq(str(p, "mode"), "-");
	ck_assert_double_eq(num(p, "host"), ENGINE_BYTES);
	ck_assert_double_eq(num(p, "limit"), 0);
	json_free(&v);

	/* Sizes as VKV_SHIM_LIMIT takes them. */
	ck_assert_int_eq(RUN(out, err, "limit", pid, "3KiB", "--json"), 0);
	ck_assert_msg(strstr(out, "\"limit\": 3072,"), "%s", out);
	ck_assert_int_eq(RUN(out, err, "limit", pid, "2m", "--json"), 0);
	ck_assert_msg(strstr(out, "\"limit\": 2097152,"), "%s", out);
	ck_assert_int_eq(RUN(out, err, "limit", pid, "1G"), 0);
	ck_assert_int_eq(RUN(out, err, "suspend", pid, "--mode", "discard"), 0);
	ck_assert_int_eq(RUN(out, err, "ps", "--json"), 0);
	ck_assert_msg(json_parse(out, &v, err, sizeof(err)) == 0, "%s: %s", err,
		      out);
	p = find_proc(&v, s.pid);
	check_engine_entry(p, "suspended");
	ck_assert_str_eq(str(p, "mode"), "discard");
	ck_assert_double_eq(num(p, "limit"), 1073741824.0);
	/* Dropped: nothing left resident. */
	ck_assert_double_eq(num(p, "host"), 0);
	json_free(&v);

	ck_assert_int_eq(RUN(out, err, "ps"), 0);
	snprintf(word, sizeof(word), "\n%s ", pid);
	ck_assert_msg(strstr(out, word) && strstr(out, "suspended(discard)") &&
			      strstr(out, "1.0G"),
		      "%s", out);
	ck_assert_int_eq(RUN(out, err, "resume", pid), 0);
	serve_stop(&s);
}
END_TEST

/*
 * A process started after top, in a runtime directory that did not exist
 * when top started, shows up in a later refresh.
 */
START_TEST(top_sees_new_process)
{
	char *line = NULL, err[160];
	int po[2], status, seen = 0;
	struct served s;
	size_t cap = 0;
	pid_t top;
	FILE *f;

	ck_assert(pipe(po) == 0);
	top = fork();
	ck_assert(top >= 0);
	if (top == 0) {
		dup2(po[1], 1);
		close(po[0]);
		alarm(60);
		execl(vkvctl, "vkvctl", "top", "--json", "--interval", "0.1",
		      (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	f = fdopen(po[0], "r");
	ck_assert(getline(&line, &cap, f) > 0);
	ck_assert_msg(strstr(line, "\"processes\": []"), "%s", line);
	serve_start(&s);
	for (int i = 0; i < 200 && !seen; i++) {
		const struct jval *procs;
		struct jval v;

		ck_assert(getline(&line, &cap, f) > 0);
		ck_assert_msg(json_parse(line, &v, err, sizeof(err)) == 0,
			      "%s: %s", err, line);
		procs = json_get(&v, "processes");
		ck_assert(procs && procs->t == J_ARR);
		for (size_t k = 0; k < procs->n; k++)
			seen |= num(&procs->items[k], "pid") == (double)s.pid;
		json_free(&v);
	}
	ck_assert_msg(seen, "top never listed pid %d", (int)s.pid);
	ck_assert(kill(top, SIGTERM) == 0);
	ck_assert(waitpid(top, &status, 0) == top);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fclose(f);
	free(line);
	serve_stop(&s);
}
END_TEST

/*
 * A stopped process cannot answer: ps and top say so and go on, instead
 * of waiting for it forever.
 */
START_TEST(stopped_process)
{
	static char out[65536], err[4096], top_out[65536], top_err[4096];
	struct served s;
	char want[64];
	int ps_rc, top_rc;

	serve_start(&s);
	ck_assert(kill(s.pid, SIGSTOP) == 0);
	ps_rc = RUN(out, err, "ps", "--json");
	top_rc = RUN(top_out, top_err, "top", "-n", "1", "--json");
	/* Continued before any check, so that a failure leaves none stopped. */
	ck_assert(kill(s.pid, SIGCONT) == 0);
	ck_assert_int_eq(ps_rc, 0);
	ck_assert_str_eq(out, "[]\n");
	snprintf(want, sizeof(want), "%d: no answer", (int)s.pid);
	ck_assert_msg(strstr(err, want), "%s", err);
	ck_assert_int_eq(top_rc, 0);
	ck_assert_msg(strstr(top_out, "\"processes\": []"), "%s", top_out);
	ck_assert_int_eq(RUN(out, err, "ps", "--json"), 0);
	ck_assert_msg(strstr(out, "\"state\": \"running\""), "%s", out);
	serve_check(&s);
	serve_stop(&s);
}
END_TEST

/*
 * While suspend and resume run, the process keeps answering, and its state
 * is always one of the four; after, ps agrees with what was done.
 */
START_TEST(states_during_suspend)
{
	static char out[65536], err[4096];
	static const char *const states[] = {"running", "suspending",
					     "suspended", "resuming"};
	struct served s;
	char pid[16];
	pid_t cycler;
	int status, polls = 0;

	serve_start(&s);
	snprintf(pid, sizeof(pid), "%d", (int)s.pid);
	cycler = fork();
	ck_assert(cycler >= 0);
	if (cycler == 0) {
		for (int i = 0; i < 20; i++) {
			char o[4096], e[4096];

			if (RUN(o, e, "suspend", pid, "--mode", "disk") ||
			    RUN(o, e, "resume", pid))
				_exit(1);
		}
		_exit(0);
	}
	while (waitpid(cycler, &status, WNOHANG) == 0) {
		struct jval v;
		const char *st;
		int known = 0;

		ck_assert_int_eq(RUN(out, err, "ps", "--json"), 0);
		ck_assert_msg(json_parse(out, &v, err, sizeof(err)) == 0,
			      "%s: %s", err, out);
		st = str(find_proc(&v, s.pid), "state");
		for (int i = 0; i < 4; i++)
			known |= !strcmp(st, states[i]);
		ck_assert_msg(known, "state %s", st);
		json_free(&v);
		polls++;
	}
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_gt(polls, 0);
	ck_assert_int_eq(RUN(out, err, "ps", "--json"), 0);
	ck_assert_msg(strstr(out, "\"state\": \"running\""), "%s", out);
	serve_check(&s);
	serve_stop(&s);
}
END_TEST

/*
 * Device bytes: the vLLM engine of tests/shim_cuda_engine.c makes four
 * 6 MiB regions and passes one 1 MiB allocation through, then has vkvctl
 * suspend and resume it. The vkvctl it runs is a script that first records
 * `vkvctl ps --json`: what ps said of it running, and suspended.
 */
START_TEST(ps_cuda_engine)
{
	static char out[65536];
	char script[600], log[600], err[160], *save = NULL;
	const struct jval *p;
	struct jval v[2];
	int n = 0, status;
	pid_t pid;
	FILE *f;

	snprintf(script, sizeof(script), "%s/vkvctl-logged", rundir);
	snprintf(log, sizeof(log), "%s/ps.log", rundir);
	f = fopen(script, "w");
	ck_assert(f != NULL);
	fprintf(f,
		"#!/bin/sh\n'%s' ps --json | tr -d '\\n' >> '%s'\n"
		"echo >> '%s'\nexec '%s' \"$@\"\n",
		vkvctl, log, log, vkvctl);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(script, 0755), 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		setenv("VKVCTL", script, 1);
		setenv("LD_LIBRARY_PATH", fakecuda, 1);
		setenv("FAKECUDA_LATENCY", "0", 1);
		setenv("VKV_SHIM_SPILL_DIR", rundir, 1);
		setenv("VKV_SHIM_MATCH_BYTES", "6M", 1);
		setenv("VKV_SHIM_MIN_BYTES", "0", 1);
		unsetenv("VKV_SHIM_BACKING");
		setenv("LD_PRELOAD", shim, 1);
		execl(cuda_engine, cuda_engine, "vllm", (char *)NULL);
		_exit(127);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "engine: status %#x", status);
	f = fopen(log, "r");
	ck_assert(f != NULL);
	out[fread(out, 1, sizeof(out) - 1, f)] = 0;
	fclose(f);
	for (char *line = strtok_r(out, "\n", &save); line && n < 2;
	     line = strtok_r(NULL, "\n", &save), n++)
		ck_assert_msg(json_parse(line, &v[n], err, sizeof(err)) == 0,
			      "%s: %s", err, line);
	ck_assert_int_eq(n, 2);
	/* Before the suspend: all in device memory, the small one counted. */
	p = find_proc(&v[0], pid);
	ck_assert_str_eq(str(p, "state"), "running");
	ck_assert_str_eq(str(p, "comm"), "shim_cuda_engin");
	ck_assert_double_eq(num(p, "regions"), 4);
	ck_assert_double_eq(num(p, "cuda"), 24.0 * MIB);
	ck_assert_double_eq(num(p, "device"), 24.0 * MIB);
	ck_assert_double_eq(num(p, "passthru"), 1.0 * MIB);
	ck_assert_double_eq(num(p, "anon") + num(p, "kmod"), 0);
	/* Suspended to host memory: nothing left on the device. */
	p = find_proc(&v[1], pid);
	ck_assert_str_eq(str(p, "state"), "suspended");
	ck_assert_str_eq(str(p, "mode"), "host");
	ck_assert_double_eq(num(p, "device"), 0);
	ck_assert_double_eq(num(p, "host"), 24.0 * MIB);
	json_free(&v[0]);
	json_free(&v[1]);
}
END_TEST

/* --- signals --- */

/* top runs until a signal; it must end at once, with status 0. */
static void stop_with(int sig)
{
	char *line = NULL;
	int po[2], status;
	size_t cap = 0;
	FILE *f;
	pid_t pid;

	ck_assert(pipe(po) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		close(po[0]);
		alarm(30);
		execl(vkvctl, "vkvctl", "top", "--json", "--interval", "60",
		      (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	f = fdopen(po[0], "r");
	ck_assert(getline(&line, &cap, f) > 0);
	/* Now in its 60 s sleep. */
	ck_assert(kill(pid, sig) == 0);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "signal %d: status %#x", sig, status);
	fclose(f);
	free(line);
}

START_TEST(sigint_sigterm)
{
	stop_with(SIGINT);
	stop_with(SIGTERM);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vkvctl_top");
	TCase *tc;

	tc = suite_case(s, "options", 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, bad_options);
	tcase_add_test(tc, command_errors);
	tc = suite_case(s, "module", 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, module_counters);
	tcase_add_test(tc, module_rates);
	tcase_add_test(tc, no_module);
	tcase_add_test(tc, tty_redraws);
	tc = suite_case(s, "processes", 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, top_engine);
	tcase_add_test(tc, top_sees_new_process);
	tcase_add_test(tc, stopped_process);
	tcase_add_test(tc, ps_engine);
	tcase_add_test(tc, states_during_suspend);
	tcase_add_test(tc, ps_cuda_engine);
	tc = suite_case(s, "signals", 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sigint_sigterm);
	return run_suite(s);
}
