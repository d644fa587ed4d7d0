/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl_ps - `vkvctl ps` on the host against engines under
 * libvkv-shim.so: its --json fields, read by a strict JSON parser, checked
 * against what the engine allocated, on the host (tests/shim_engine.c) and
 * on the fake CUDA driver (tests/shim_cuda_engine.c), running, suspended,
 * while suspend and resume cycle, and stopped. tests/vkvctl_test.h says
 * where the programs come from.
 */
#include "vkvctl_test.h"

START_TEST(ps_engine)
{
	static char out[65536], err[4096];
	char pid[16], word[64];
	struct shim_served s;
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
 * A stopped process cannot answer: ps and top say so and go on, instead
 * of waiting for it forever.
 */
START_TEST(stopped_process)
{
	static char out[65536], err[4096], top_out[65536], top_err[4096];
	struct shim_served s;
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
	struct shim_served s;
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

int main(void)
{
	Suite *s = suite_create("vkvctl_ps");
	TCase *tc;

	tc = suite_case(s, "processes", 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ps_engine);
	tcase_add_test(tc, stopped_process);
	tcase_add_test(tc, states_during_suspend);
	tcase_add_test(tc, ps_cuda_engine);
	return run_suite(s);
}
