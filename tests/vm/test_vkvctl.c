/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl - tools/vkvctl against the loaded module: status, get, set
 * with validation, and the message a non-root user gets.
 */
#include <sys/wait.h>

#include "vmtest.h"

#define VKVCTL "/bin/vkvctl"

/* Run vkvctl with up to 3 arguments (as @uid); output in buf; exit status. */
static int run(uid_t uid, char *buf, size_t len, const char *a, const char *b,
	       const char *c)
{
	int pfd[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	req(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		if (uid && (setgid(uid) || setuid(uid)))
			_exit(99);
		execl(VKVCTL, "vkvctl", a, b, c, (char *)NULL);
		_exit(98);
	}
	close(pfd[1]);
	while (got + 1 < len && (n = read(pfd[0], buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(pfd[0]);
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_cli)
{
	char out[8192], v[64];

	ck_assert_int_eq(run(0, out, sizeof(out), "status", NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "pool_bytes"));
	ck_assert_ptr_nonnull(strstr(out, "max_pinned_mb"));
	ck_assert_int_eq(run(0, out, sizeof(out), "get", "contexts", NULL), 0);
	ck_assert_str_eq(out, "0\n");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "1024"), 0);
	req(get_param("chunk_kb", v, sizeof(v)) == 0);
	ck_assert_str_eq(v, "1024");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "3"), 2);
	ck_assert_ptr_nonnull(strstr(out, "power of two"));
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "default_node", "7"), 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "pool_bytes", "7"), 2);
	ck_assert_ptr_nonnull(strstr(out, "read-only counter"));
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "dev_mode", "0666"), 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "get", "nonsense", NULL), 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "bogus", NULL, NULL), 2);
	/* Non-root: reading works, setting says root is needed. */
	ck_assert_int_eq(run(65534, out, sizeof(out), "get", "chunk_kb", NULL), 0);
	ck_assert_int_eq(run(65534, out, sizeof(out), "set", "chunk_kb", "2048"), 1);
	ck_assert_ptr_nonnull(strstr(out, "needs root"));
	req(get_param("chunk_kb", v, sizeof(v)) == 0);
	ck_assert_str_eq(v, "1024");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "2048"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vkvctl");
	TCase *tc = tcase_create("vkvctl");

	tcase_add_test(tc, test_cli);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
