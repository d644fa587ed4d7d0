/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl_top - `vkvctl top` on the host, no module: the module's
 * counters come from a fake sysfs tree (VKV_SYSFS_ROOT), the processes
 * from the test engine run under libvkv-shim.so. --json output is read by
 * a strict JSON parser and checked against what the tree holds and what
 * the engine allocated; bad options and arguments of every command must be
 * refused, naming the problem, with exit status 2; SIGINT and SIGTERM end
 * top with exit status 0. tests/vkvctl_test.h says where the programs come
 * from.
 */
#include "vkvctl_test.h"

#include "vkvctl_counters.h"

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
static long long fake_value(const char *name)
{
	for (size_t i = 0; i < NCOUNTERS; i++)
		if (!strcmp(counter_names[i], name))
			return 1000 + (long long)i;
	ck_abort_msg("no counter %s", name);
	return -1;
}

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
	char want[64];
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
	snprintf(want, sizeof(want), "contexts %lld", fake_value("contexts"));
	ck_assert_msg(strstr(out, "module: loaded") &&
			      strstr(out, "swap-outs/s 0.0") &&
			      strstr(out, "faults/s 0.0") && strstr(out, want),
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
	struct shim_served s;
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

/*
 * A process started after top, in a runtime directory that did not exist
 * when top started, shows up in a later refresh.
 */
START_TEST(top_sees_new_process)
{
	char *line = NULL, err[160];
	int po[2], status, seen = 0;
	struct shim_served s;
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
	tc = suite_case(s, "signals", 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sigint_sigterm);
	return run_suite(s);
}
