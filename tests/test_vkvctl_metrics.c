/* SPDX-License-Identifier: MIT */
/*
 * test_vkvctl_metrics - `vkvctl metrics` and `vkvctl status` on the host,
 * against a fake sysfs tree (VKV_SYSFS_ROOT), so no module is needed: the
 * output must pass a strict parser of Prometheus' text format and carry
 * the tree's values under the documented names. The parser is tested too.
 *
 * The vkvctl binary is taken from $VKVCTL (default build/vkvctl).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check_util.h"
#include "vkvctl_counters.h"
#include "vm/promparse.h"

static char root[256];

static void put(const char *rel, const char *val)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		if (mkdir(path, 0755) && errno != EEXIST)
			ck_abort_msg("mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fprintf(f, "%s\n", val);
	fclose(f);
}

/* Metric names for counter_names[], in order. */
static const char *const metric_names[] = {
	"vkv_pinned_bytes",
	"vkv_pool_bytes",
	"vkv_pool_reserved_bytes",
	"vkv_swapped_bytes",
	"vkv_backed_resident_bytes",
	"vkv_swap_out_total",
	"vkv_swap_in_total",
	"vkv_fault_in_total",
	"vkv_prefetch_total",
	"vkv_discard_total",
	"vkv_shrinker_scans_total",
	"vkv_shrinker_swap_outs_total",
	"vkv_checksum_errors_total",
	"vkv_io_errors_total",
	"vkv_fallback_chunks_total",
	"vkv_remote_chunks_total",
	"vkv_busy_total",
	"vkv_contexts",
	"vkv_pins",
	"vkv_per_user_limit_denials_total",
	"vkv_orphan_bytes",
};

static void make_tree(void)
{
	char rel[256], val[64];
	size_t i;

	strcpy(root, "/tmp/vkvctl-sysfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	for (i = 0; i < NCOUNTERS; i++) {
		snprintf(rel, sizeof(rel), "kernel/vkv/%s", counter_names[i]);
		snprintf(val, sizeof(val), "%zu", 1000 + i);
		put(rel, val);
	}
	put("module/vkv/parameters/max_pool_mb", "384");
	/* The largest value the module takes: 2^64 bytes less 1 MiB. */
	put("module/vkv/parameters/max_pinned_mb", "17592186044415");
	put("module/vkv/parameters/max_user_pool_mb", "16");
	put("module/vkv/parameters/max_user_pinned_mb", "0");
	put("module/vkv/parameters/min_resident_mb", "0");
	put("module/vkv/parameters/shrinker_enabled", "Y");
	put("module/vkv/parameters/chunk_kb", "2048");
	put("module/vkv/parameters/default_node", "-1");
	put("module/vkv/parameters/dev_mode", "432");
	/* Listed out of order; the parser wants each family grouped anyway. */
	put("kernel/vkv/users/1000/pool_bytes", "16777216");
	put("kernel/vkv/users/1000/pinned_bytes", "4096");
	put("kernel/vkv/users/1000/contexts", "2");
	put("kernel/vkv/users/1000/denied_total", "3");
	put("kernel/vkv/users/0/pool_bytes", "2097152");
	put("kernel/vkv/users/0/pinned_bytes", "0");
	put("kernel/vkv/users/0/contexts", "1");
	put("kernel/vkv/users/0/denied_total", "0");
	put("kernel/vkv/users/4294967294/pool_bytes", "0");
	put("kernel/vkv/users/4294967294/pinned_bytes", "0");
	put("kernel/vkv/users/4294967294/contexts", "1");
	put("kernel/vkv/users/4294967294/denied_total", "0");
	/* Not users: vkvctl must skip these names. */
	put("kernel/vkv/users/abc/pool_bytes", "1");
	put("kernel/vkv/users/007/pool_bytes", "1");
	put("kernel/vkv/users/-1/pool_bytes", "1");
}

static void rm_tree(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* Run vkvctl with VKV_SYSFS_ROOT=@r; stdout into @out; exit status. */
static int vkvctl(const char *r, char *out, size_t len, const char *a,
		  const char *b, const char *c)
{
	const char *bin = getenv("VKVCTL") ? getenv("VKVCTL") : "build/vkvctl";
	int pfd[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		setenv("VKV_SYSFS_ROOT", r, 1);
		execl(bin, "vkvctl", a, b, c, (char *)NULL);
		_exit(98);
	}
	close(pfd[1]);
	while (got + 1 < len &&
	       (n = read(pfd[0], out + got, len - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_ne(WEXITSTATUS(st), 98);
	return WEXITSTATUS(st);
}

static double must_get(const struct prom_doc *d, const char *name,
		       const char *labels)
{
	double v;

	ck_assert_msg(prom_get(d, name, labels, &v) == 0, "no series %s{%s}",
		      name, labels);
	return v;
}

START_TEST(test_metrics_fake_tree)
{
	static char out[65536];
	static struct prom_doc d;
	size_t i;

	make_tree();
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "metrics", NULL, NULL),
			 0);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s\n%s", d.err, out);
	ck_assert_int_eq(must_get(&d, "vkv_up", ""), 1);
	for (i = 0; i < sizeof(metric_names) / sizeof(metric_names[0]); i++)
		ck_assert_int_eq(must_get(&d, metric_names[i], ""), 1000 + i);
	ck_assert_int_eq(must_get(&d, "vkv_max_pool_bytes", ""), 384 << 20);
	ck_assert(must_get(&d, "vkv_max_pinned_bytes", "") ==
		  (double)18446744073708503040ull);
	ck_assert_ptr_nonnull(
		strstr(out, "vkv_max_pinned_bytes 18446744073708503040\n"));
	ck_assert_int_eq(must_get(&d, "vkv_max_user_pool_bytes", ""), 16 << 20);
	ck_assert_int_eq(must_get(&d, "vkv_max_user_pinned_bytes", ""), 0);
	ck_assert_int_eq(must_get(&d, "vkv_shrinker_enabled", ""), 1);
	ck_assert_int_eq(must_get(&d, "vkv_user_pool_bytes", "uid=\"1000\""),
			 16 << 20);
	ck_assert_int_eq(must_get(&d, "vkv_user_pinned_bytes", "uid=\"1000\""),
			 4096);
	ck_assert_int_eq(must_get(&d, "vkv_user_contexts", "uid=\"1000\""), 2);
	ck_assert_int_eq(must_get(&d, "vkv_user_denials_total", "uid=\"1000\""),
			 3);
	ck_assert_int_eq(must_get(&d, "vkv_user_pool_bytes", "uid=\"0\""),
			 2 << 20);
	ck_assert_int_eq(
		must_get(&d, "vkv_user_contexts", "uid=\"4294967294\""), 1);
	/* 3 users x 4 families; the junk names under users/ are skipped. */
	for (i = 0; i < (size_t)d.ns; i++)
		ck_assert_msg(!strstr(d.s[i].labels, "abc") &&
				      !strstr(d.s[i].labels, "007") &&
				      !strstr(d.s[i].labels, "-1"),
			      "junk user %s", d.s[i].labels);
	/* Sorted by uid: 0 before 1000 before 4294967294. */
	ck_assert_ptr_nonnull(strstr(out,
				     "vkv_user_pool_bytes{uid=\"0\"} 2097152\n"
				     "vkv_user_pool_bytes{uid=\"1000\"}"));

	/* status shows each user against the per-user limits. */
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "status", NULL, NULL),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "max_user_pool_mb"));
	ck_assert_ptr_nonnull(strstr(out, "16.0 MiB / 16.0 MiB (100%)"));
	ck_assert_ptr_nonnull(strstr(out, "4.0 KiB / no limit"));
	ck_assert_ptr_nonnull(strstr(out, "4294967294"));
	rm_tree();
}
END_TEST

START_TEST(test_metrics_file_and_errors)
{
	static char out[65536];
	static struct prom_doc d;
	char path[512], tmp[600];
	struct stat st;
	FILE *f;
	size_t n;

	make_tree();
	/* -o: the whole text lands in the file, no .tmp is left behind. */
	snprintf(path, sizeof(path), "%s/vkv.prom", root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "metrics", "-o", path),
			 0);
	ck_assert_str_eq(out, "");
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	fclose(f);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s", d.err);
	ck_assert(stat(tmp, &st) != 0);

	/* A counter that cannot be read: exit 1, the rest still parses. */
	snprintf(path, sizeof(path), "%s/kernel/vkv/io_errors", root);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "metrics", NULL, NULL),
			 1);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s", d.err);
	ck_assert(!strstr(out, "vkv_io_errors_total"));
	ck_assert_int_eq(must_get(&d, "vkv_pool_bytes", ""), 1001);

	/* Usage errors. */
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "metrics", "-x", "y"),
			 2);
	ck_assert_int_eq(vkvctl(root, out, sizeof(out), "metrics", "-o", NULL),
			 2);

	/* No module: vkv_up 0 and nothing else, exit 0. */
	rm_tree();
	ck_assert_int_eq(vkvctl("/nonexistent-vkv-root", out, sizeof(out),
				"metrics", NULL, NULL),
			 0);
	ck_assert_msg(prom_parse(out, &d) == 0, "%s", d.err);
	ck_assert_int_eq(d.ns, 1);
	ck_assert_int_eq(must_get(&d, "vkv_up", ""), 0);
}
END_TEST

/* The parser must refuse what the format or vkvctl's conventions forbid. */
START_TEST(test_parser_rejects)
{
	static const char *const bad[] = {
		"",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a 1",
		"vkv_a 1\n",
		"# HELP vkv_a a\nvkv_a 1\n",
		"# TYPE vkv_a gauge\nvkv_a 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a 1\nvkv_a 2\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\n# HELP vkv_b b\n"
		"# TYPE vkv_b gauge\nvkv_b 1\nvkv_a 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a counter\nvkv_a 1\n",
		"# HELP vkv_a_total a\n# TYPE vkv_a_total gauge\nvkv_a_total "
		"1\n",
		"# HELP a a\n# TYPE a gauge\na 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a{uid=\"1\\x\"} 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a{uid=\"x\"} 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a{node=\"1\"} 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a "
		"gauge\nvkv_a{uid=\"1\",uid=\"2\"} 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a 0x10\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a 1 2 3\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a  1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a\t1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\n\nvkv_a 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a 1\r\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauges\nvkv_a 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\n# TYPE vkv_a gauge\nvkv_a "
		"1\n",
		"# HELP vkv_a a\\t\n# TYPE vkv_a gauge\nvkv_a 1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\nvkv_a -1\n",
		"# HELP vkv_a a\n# TYPE vkv_a gauge\n9vkv 1\n",
	};
	static const char good[] =
		"# A comment\n# HELP vkv_a a \\\\ \\n\n# TYPE vkv_a gauge\n"
		"vkv_a{uid=\"1\"} 1.5e3\nvkv_a{uid=\"2\",} +Inf 1700000000000\n"
		"# HELP vkv_b_total b\n# TYPE vkv_b_total counter\n"
		"vkv_b_total 0\n";
	static struct prom_doc d;
	double v;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(prom_parse(bad[i], &d) != 0, "accepted: %s",
			      bad[i]);
	ck_assert_msg(prom_parse(good, &d) == 0, "%s", d.err);
	ck_assert_int_eq(prom_get(&d, "vkv_a", "uid=\"1\"", &v), 0);
	ck_assert(v == 1500);
	ck_assert_int_eq(d.ns, 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vkvctl_metrics");
	TCase *tc;

	tcase_add_test(suite_case(s, "parser", 0), test_parser_rejects);
	tc = suite_case(s, "metrics", 0);
	tcase_add_test(tc, test_metrics_fake_tree);
	tcase_add_test(tc, test_metrics_file_and_errors);
	return run_suite(s);
}
