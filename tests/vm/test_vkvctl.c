/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl - tools/vkvctl against the loaded module: status, get, set
 * with validation, the message a non-root user gets, per-user usage in
 * status, metrics checked by a strict Prometheus text-format parser, and
 * top's JSON frames checked by a strict JSON parser against the counters.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include "jsonparse.h"
#include "promparse.h"
#include "vmtest.h"

#define VKVCTL "/bin/vkvctl"

/* Run vkvctl with args (NULL-terminated) as @uid; output in buf; status. */
static int runv(uid_t uid, char *buf, size_t len, const char *const *args)
{
	const char *argv[8] = {"vkvctl"};
	int pfd[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	for (int i = 0; args[i]; i++) {
		req(i < 6);
		argv[i + 1] = args[i];
	}
	req(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		if (uid && (setgid(uid) || setuid(uid)))
			_exit(99);
		execv(VKVCTL, (char *const *)argv);
		_exit(98);
	}
	close(pfd[1]);
	while (got + 1 < len &&
	       (n = read(pfd[0], buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(pfd[0]);
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Run vkvctl with up to 3 arguments (as @uid); output in buf; exit status. */
static int run(uid_t uid, char *buf, size_t len, const char *a, const char *b,
	       const char *c)
{
	const char *args[] = {a, b, c, NULL};

	return runv(uid, buf, len, args);
}

START_TEST(test_cli)
{
	char out[8192], v[64];

	ck_assert_int_eq(run(0, out, sizeof(out), "status", NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "pool_bytes"));
	ck_assert_ptr_nonnull(strstr(out, "pinned /dev/vkv pool"));
	ck_assert_ptr_nonnull(strstr(out, "max_pinned_mb"));
	ck_assert_int_eq(run(0, out, sizeof(out), "get", "contexts", NULL), 0);
	ck_assert_str_eq(out, "0\n");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "1024"),
			 0);
	req(get_param("chunk_kb", v, sizeof(v)) == 0);
	ck_assert_str_eq(v, "1024");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "3"), 2);
	ck_assert_ptr_nonnull(strstr(out, "power of two"));
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "default_node", "7"),
			 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "pool_bytes", "7"), 2);
	ck_assert_ptr_nonnull(strstr(out, "read-only counter"));
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "dev_mode", "0666"),
			 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "get", "nonsense", NULL), 2);
	ck_assert_int_eq(run(0, out, sizeof(out), "bogus", NULL, NULL), 2);
	/* Non-root: reading works, setting says root is needed. */
	ck_assert_int_eq(run(65534, out, sizeof(out), "get", "chunk_kb", NULL),
			 0);
	ck_assert_int_eq(
		run(65534, out, sizeof(out), "set", "chunk_kb", "2048"), 1);
	ck_assert_ptr_nonnull(strstr(out, "needs root"));
	req(get_param("chunk_kb", v, sizeof(v)) == 0);
	ck_assert_str_eq(v, "1024");
	ck_assert_int_eq(run(0, out, sizeof(out), "set", "chunk_kb", "2048"),
			 0);
}
END_TEST

/* A child of uid 1000 holding a 4 MiB pool until @hold is closed. */
static pid_t hold_pool_as_1000(int *hold)
{
	int rep[2], hp[2];
	pid_t pid;
	char c;

	req(pipe(rep) == 0 && pipe(hp) == 0);
	pid = fork();
	req(pid >= 0);
	if (pid == 0) {
		struct vkv_pool_create pc = {.size = 4 * MIB, .node = -1};
		int fd;

		alarm(60);
		close(rep[0]);
		close(hp[1]);
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(2);
		fd = open(VKV_DEVICE_PATH, O_RDWR);
		if (fd < 0 || ioctl(fd, VKV_IOC_POOL_CREATE, &pc))
			_exit(3);
		c = 0;
		if (write(rep[1], &c, 1) != 1)
			_exit(4);
		while (read(hp[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(rep[1]);
	close(hp[0]);
	req(read(rep[0], &c, 1) == 1);
	close(rep[0]);
	*hold = hp[1];
	return pid;
}

START_TEST(test_metrics)
{
	static char out[65536];
	static struct prom_doc d;
	int fd, hold, st;
	double v;
	pid_t pid;

	req(chmod(VKV_DEVICE_PATH, 0666) == 0);
	req(set_param("max_user_pool_mb", "64") == 0);
	fd = vkv_open_dev();
	pool_create(fd, 2 * MIB, CHUNK, -1);
	pid = hold_pool_as_1000(&hold);

	ck_assert_int_eq(run(0, out, sizeof(out), "metrics", NULL, NULL), 0);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s\n%s", d.err, out);
	req(prom_get(&d, "vkv_up", "", &v) == 0);
	ck_assert(v == 1);
	req(prom_get(&d, "vkv_pool_reserved_bytes", "", &v) == 0);
	ck_assert(v == (double)counter("pool_reserved_bytes"));
	ck_assert(v == 6 * MIB);
	req(prom_get(&d, "vkv_contexts", "", &v) == 0);
	ck_assert(v == 2);
	req(prom_get(&d, "vkv_max_user_pool_bytes", "", &v) == 0);
	ck_assert(v == 64 * MIB);
	req(prom_get(&d, "vkv_user_pool_bytes", "uid=\"1000\"", &v) == 0);
	ck_assert(v == 4 * MIB);
	req(prom_get(&d, "vkv_user_pool_bytes", "uid=\"0\"", &v) == 0);
	ck_assert(v == 2 * MIB);
	req(prom_get(&d, "vkv_user_contexts", "uid=\"1000\"", &v) == 0);
	ck_assert(v == 1);
	/* Anyone may read the metrics. */
	ck_assert_int_eq(run(65534, out, sizeof(out), "metrics", NULL, NULL),
			 0);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s", d.err);

	ck_assert_int_eq(run(0, out, sizeof(out), "status", NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "4.0 MiB / 64.0 MiB (6%)"));
	ck_assert_ptr_nonnull(strstr(out, "max_user_pool_mb"));

	close(hold);
	req(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	close(fd);
	ck_assert_int_eq(run(0, out, sizeof(out), "metrics", NULL, NULL), 0);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s", d.err);
	ck_assert(prom_get(&d, "vkv_user_pool_bytes", "uid=\"1000\"", &v));
	ck_assert_int_eq(run(0, out, sizeof(out), "status", NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "no user has /dev/vkv open"));
	req(set_param("max_user_pool_mb", "0") == 0);
	req(chmod(VKV_DEVICE_PATH, 0600) == 0);
}
END_TEST

/*
 * top against the real module: one JSON object per refresh, the module
 * loaded, every counter a number equal to sysfs's where it cannot move
 * (a pool held open), no rates on the first frame and numbers after.
 */
START_TEST(test_top)
{
	static const char *const steady[] = {"pool_reserved_bytes", "contexts",
					     "pins"};
	static const char *const one[] = {"top", "--iterations", "1", "--json",
					  NULL};
	static const char *const two[] = {"top", "-n",	   "2", "--interval",
					  "0.2", "--json", NULL};
	static char out[65536];
	const struct jval *m, *c, *r;
	char err[160], *nl;
	struct jval v;
	int fd;

	fd = vkv_open_dev();
	pool_create(fd, 2 * MIB, CHUNK, -1);
	ck_assert_int_eq(runv(0, out, sizeof(out), one), 0);
	nl = strchr(out, '\n');
	ck_assert_msg(nl && !nl[1], "one line per refresh: %s", out);
	ck_assert_msg(json_parse(out, &v, err, sizeof(err)) == 0, "%s: %s", err,
		      out);
	m = json_get(&v, "module");
	ck_assert(m && json_get(m, "loaded") &&
		  json_get(m, "loaded")->t == J_BOOL &&
		  json_get(m, "loaded")->b);
	c = json_get(m, "counters");
	ck_assert(c && c->t == J_OBJ && c->n > 0);
	for (size_t i = 0; i < c->n; i++)
		ck_assert_msg(c->items[i].t == J_NUM && c->items[i].num >= 0,
			      "%s", c->keys[i]);
	for (size_t i = 0; i < sizeof(steady) / sizeof(steady[0]); i++) {
		const struct jval *x = json_get(c, steady[i]);

		ck_assert_msg(x && x->t == J_NUM, "%s missing", steady[i]);
		ck_assert_msg(x->num == (double)counter(steady[i]), "%s: %g",
			      steady[i], x->num);
	}
	ck_assert(json_get(c, "pool_reserved_bytes")->num == 2 * MIB);
	r = json_get(m, "rates");
	ck_assert(r && r->t == J_NULL);
	ck_assert(json_get(&v, "processes") &&
		  json_get(&v, "processes")->t == J_ARR);
	json_free(&v);

	/* The second frame has rates: numbers, none negative. */
	ck_assert_int_eq(runv(0, out, sizeof(out), two), 0);
	nl = strchr(out, '\n');
	ck_assert(nl);
	ck_assert_msg(json_parse(nl + 1, &v, err, sizeof(err)) == 0, "%s: %s",
		      err, nl + 1);
	r = json_get(json_get(&v, "module"), "rates");
	ck_assert(r && r->t == J_OBJ && json_get(r, "swap_out_total"));
	for (size_t i = 0; i < r->n; i++)
		ck_assert_msg(r->items[i].t == J_NUM && r->items[i].num >= 0,
			      "%s", r->keys[i]);
	json_free(&v);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vkvctl");

	tcase_add_test(suite_case(s, "cli", 0), test_cli);
	tcase_add_test(suite_case(s, "metrics", 0), test_metrics);
	tcase_add_test(suite_case(s, "top", 0), test_top);
	return run_suite(s);
}
