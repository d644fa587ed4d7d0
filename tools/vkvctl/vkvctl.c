/* SPDX-License-Identifier: MIT */
/*
 * vkvctl - look at and tune the vkv kernel module.
 *
 *   vkvctl status            module state, counters, tunables, and each
 *                            user's usage against the per-user limits
 *   vkvctl get NAME          one tunable or counter
 *   vkvctl set NAME VALUE    set a tunable (root only), validated first
 *   vkvctl metrics [-o FILE] everything in Prometheus' text format
 *   vkvctl ps|suspend|resume|limit   processes under libvkv-shim.so
 *                            (procs.c)
 *   vkvctl top               processes and counters, refreshed (top.c)
 *
 * VKV_SYSFS_ROOT replaces /sys (tests point it at a fake tree).
 * Exit status: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procs.h"
#include "sysfs.h"

static const struct tunable *find_tunable(const char *name)
{
	size_t i;

	for (i = 0; i < n_tunables; i++)
		if (!strcmp(tunables[i].name, name))
			return &tunables[i];
	return NULL;
}

static int is_counter(const char *name)
{
	size_t i;

	for (i = 0; i < n_counters; i++)
		if (!strcmp(counters[i], name))
			return 1;
	return 0;
}

static int node_has_memory(long node)
{
	char rel[128], path[512], buf[64];

	snprintf(rel, sizeof(rel), "devices/system/node/node%ld/meminfo", node);
	return !sysfs_path(path, sizeof(path), rel) &&
	       read_file(path, buf, sizeof(buf)) == 0;
}

/* Returns NULL if @val is acceptable for @t, else why not. */
static const char *validate(const struct tunable *t, const char *val)
{
	char *end;
	long long v;

	if (t->kind == RO)
		return "read-only: set it when loading the module (modprobe "
		       "vkv dev_mode=0660)";
	if (t->kind == BOOL) {
		if (!strcmp(val, "Y") || !strcmp(val, "N") ||
		    !strcmp(val, "1") || !strcmp(val, "0") ||
		    !strcmp(val, "y") || !strcmp(val, "n"))
			return NULL;
		return "expected Y or N";
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || end == val || *end)
		return "not a number";
	switch (t->kind) {
	case MB:
		return v < 0 || v > (1ll << 44) ? "out of range (0 .. 2^44 MiB)"
						: NULL;
	case NODE:
		if (v == -1)
			return NULL;
		return v < 0 || !node_has_memory(v)
			       ? "no such NUMA node with memory"
			       : NULL;
	case CHUNK_KB: {
		long page_kb = sysconf(_SC_PAGESIZE) / 1024;

		if (v < page_kb || v > 2048 || (v & (v - 1)))
			return "must be a power of two from the page size to "
			       "2048";
		return NULL;
	}
	default:
		return "unknown";
	}
}

/* "12.0 MiB" from bytes (a double: limits reach 2^64 bytes). */
static const char *human(double v, char *buf, size_t len)
{
	static const char *const unit[] = {"B",	  "KiB", "MiB", "GiB",
					   "TiB", "PiB", "EiB"};
	size_t u = 0;

	while (v >= 1024 && u + 1 < N(unit)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", v);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* "used / limit" with the limit from a MiB tunable, 0 meaning none. */
static const char *against(long long used, const char *param, char *buf,
			   size_t len)
{
	char lim[64], a[32], b[32];
	unsigned long long mb;
	double cap;

	if (read_param(param, lim, sizeof(lim)) ||
	    sscanf(lim, "%llu", &mb) != 1) {
		snprintf(buf, len, "%s / ?", human(used, a, sizeof(a)));
		return buf;
	}
	cap = (double)mb * 1048576.0;
	if (mb == 0)
		snprintf(buf, len, "%s / no limit", human(used, a, sizeof(a)));
	else
		snprintf(buf, len, "%s / %s (%.0f%%)",
			 human(used, a, sizeof(a)), human(cap, b, sizeof(b)),
			 100.0 * (double)used / cap);
	return buf;
}

static void status_users(void)
{
	struct vkv_user_usage *u;
	char pool[96], pin[96];
	int n, i;

	n = read_users(&u);
	printf("\nusers (pool and pinned bytes against max_user_pool_mb and "
	       "max_user_pinned_mb):\n");
	if (n < 0) {
		printf("  ? (%s)\n", strerror(-n));
		return;
	}
	if (n == 0) {
		printf("  none: no user has /dev/vkv open\n");
		return;
	}
	printf("  %-10s %-8s %-30s %-30s %s\n", "uid", "contexts", "pool",
	       "pinned", "denied");
	for (i = 0; i < n; i++)
		printf("  %-10lu %-8lld %-30s %-30s %lld\n", u[i].uid,
		       u[i].contexts,
		       against(u[i].pool_bytes, "max_user_pool_mb", pool,
			       sizeof(pool)),
		       against(u[i].pinned_bytes, "max_user_pinned_mb", pin,
			       sizeof(pin)),
		       u[i].denied_total);
	free(u);
}

/*
 * Without the module libvkv still runs, on memory it gets itself; say
 * which, as lib/backend_host.c and lib/tier_host.c do it, so that an admin
 * knows what is and is not pinned.
 */
static void status_no_module(void)
{
	char dir[512];

	sysfs_path(dir, sizeof(dir), "module/vkv");
	printf("vkv: module not loaded (no %s): no counters, tunables or "
	       "limits\n",
	       dir);
	printf("libvkv without it:\n"
	       "  cache pages (host backend): a memfd, placed on the NUMA "
	       "node with\n"
	       "                              set_mempolicy, not pinned\n"
	       "  host tier:                  mmap + mbind + mlock (unpinned "
	       "where\n"
	       "                              RLIMIT_MEMLOCK refuses mlock)\n"
	       "  disk tier:                  written by the library itself "
	       "(io_uring,\n"
	       "                              else pread/pwrite)\n"
	       "  libvkv-shim.so:             its own anonymous mappings\n");
}

static void status_module(void)
{
	printf("libvkv with it: cache pages from a pinned /dev/vkv pool "
	       "when the cache has a\nbudget (else a memfd), host tier from "
	       "/dev/vkv (pinned), disk tier swapped\nby the module to the "
	       "cache's swap file\n");
}

static int cmd_status(void)
{
	char buf[128], dir[512];
	size_t i;

	if (!module_loaded()) {
		status_no_module();
		return 1;
	}
	printf("vkv: loaded, device %s\n",
	       access("/dev/vkv", F_OK) == 0 ? "/dev/vkv" : "missing");
	status_module();
	sysfs_path(dir, sizeof(dir), "kernel/vkv/");
	printf("\ncounters (%s):\n", dir);
	for (i = 0; i < n_counters; i++) {
		if (read_counter(counters[i], buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "?");
		printf("  %-22s %s\n", counters[i], buf);
	}
	sysfs_path(dir, sizeof(dir), "module/vkv/parameters/");
	printf("\ntunables (%s):\n", dir);
	for (i = 0; i < n_tunables; i++) {
		if (read_param(tunables[i].name, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "?");
		printf("  %-22s %-8s %s\n", tunables[i].name, buf,
		       tunables[i].help);
	}
	status_users();
	return 0;
}

static int cmd_get(const char *name)
{
	char path[512], rel[256], buf[128];
	int r;

	if (find_tunable(name))
		snprintf(rel, sizeof(rel), "module/vkv/parameters/%s", name);
	else if (is_counter(name))
		snprintf(rel, sizeof(rel), "kernel/vkv/%s", name);
	else {
		fprintf(stderr,
			"vkvctl: unknown name '%s' (see vkvctl status)\n",
			name);
		return 2;
	}
	if (!module_loaded()) {
		fprintf(stderr, "vkvctl: module vkv is not loaded\n");
		return 1;
	}
	r = sysfs_path(path, sizeof(path), rel);
	if (!r)
		r = read_file(path, buf, sizeof(buf));
	if (r) {
		fprintf(stderr, "vkvctl: %s: %s\n", path, strerror(-r));
		return 1;
	}
	printf("%s\n", buf);
	return 0;
}

static int cmd_set(const char *name, const char *val)
{
	const struct tunable *t = find_tunable(name);
	const char *why;
	char path[512], rel[256];
	int fd;

	if (!t) {
		fprintf(stderr, "vkvctl: '%s' is not a tunable%s\n", name,
			is_counter(name) ? " (it is a read-only counter)" : "");
		return 2;
	}
	why = validate(t, val);
	if (why) {
		fprintf(stderr, "vkvctl: %s=%s: %s\n", name, val, why);
		return 2;
	}
	if (!module_loaded()) {
		fprintf(stderr, "vkvctl: module vkv is not loaded\n");
		return 1;
	}
	snprintf(rel, sizeof(rel), "module/vkv/parameters/%s", name);
	if (sysfs_path(path, sizeof(path), rel))
		return 2;
	fd = open(path, O_WRONLY);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		fprintf(stderr,
			"vkvctl: setting %s needs root (try: sudo vkvctl set "
			"%s %s)\n",
			name, name, val);
		return 1;
	}
	if (fd < 0 || write(fd, val, strlen(val)) < 0) {
		fprintf(stderr, "vkvctl: %s=%s refused by the module: %s\n",
			name, val, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vkvctl status\n"
		   "       vkvctl get NAME\n"
		   "       vkvctl set NAME VALUE\n"
		   "       vkvctl metrics [-o FILE]\n"
		   "       vkvctl ps [--json]\n"
		   "       vkvctl top [--interval SECONDS] [--iterations N] "
		   "[--json]\n"
		   "       vkvctl suspend PID [--mode host|disk|discard] "
		   "[--json]\n"
		   "       vkvctl resume PID [--json]\n"
		   "       vkvctl limit PID BYTES [--json]\n"
		   "vkvctl COMMAND --help says more about one command.\n");
}

/* The module commands' own --help. */
static const struct {
	const char *cmd;
	int args; /* operands it takes */
	const char *help;
} module_cmds[] = {
	{"status", 0,
	 "usage: vkvctl status\n"
	 "Whether the module is loaded and where libvkv's memory comes from; "
	 "with the\nmodule, every counter, every tunable with its value and "
	 "meaning, and each\nuser's pool and pinned bytes against the per-user "
	 "limits. Exit 1 without it.\n"},
	{"get", 1,
	 "usage: vkvctl get NAME\n"
	 "One tunable or counter as the module reports it (names: vkvctl "
	 "status).\n"},
	{"set", 2,
	 "usage: vkvctl set NAME VALUE\n"
	 "Set a tunable (root only). The value is checked before it is "
	 "written: sizes\nin whole MiB from 0 to 2^44, default_node -1 or a "
	 "node with memory, chunk_kb a\npower of two from the page size to "
	 "2048, shrinker_enabled Y or N.\n"},
	{"metrics", -1,
	 "usage: vkvctl metrics [-o FILE]\n"
	 "Every counter, limit and per-user figure in Prometheus' text format; "
	 "-o writes\nFILE.tmp and renames it to FILE.\n"},
};

static int wants_help(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "ps"))
		return cmd_ps(argc - 1, argv + 1);
	if (!strcmp(argv[1], "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(argv[1], "suspend") || !strcmp(argv[1], "resume") ||
	    !strcmp(argv[1], "limit"))
		return cmd_proc(argc - 1, argv + 1);
	for (size_t i = 0; i < N(module_cmds); i++) {
		if (strcmp(argv[1], module_cmds[i].cmd))
			continue;
		if (wants_help(argc, argv)) {
			fputs(module_cmds[i].help, stdout);
			return 0;
		}
		if (module_cmds[i].args >= 0 &&
		    argc - 2 != module_cmds[i].args) {
			fprintf(stderr, "vkvctl %s: %s\n", argv[1],
				argc - 2 < module_cmds[i].args
					? "missing argument"
					: "too many arguments");
			fputs(module_cmds[i].help, stderr);
			return 2;
		}
		switch (i) {
		case 0:
			return cmd_status();
		case 1:
			return cmd_get(argv[2]);
		case 2:
			return cmd_set(argv[2], argv[3]);
		default:
			return cmd_metrics(argc - 2, argv + 2);
		}
	}
	fprintf(stderr, "vkvctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
