/* SPDX-License-Identifier: MIT */
/*
 * vkvctl - look at and tune the vkv kernel module.
 *
 *   vkvctl status            module state, counters and tunables
 *   vkvctl get NAME          one tunable or counter
 *   vkvctl set NAME VALUE    set a tunable (root only), validated first
 *
 * Exit status: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PARAMS "/sys/module/vkv/parameters/"
#define COUNTERS "/sys/kernel/vkv/"

enum kind { MB, NODE, CHUNK_KB, BOOL, RO };

static const struct tunable {
	const char *name;
	enum kind kind;
	const char *help;
} tunables[] = {
	{ "max_pinned_mb", MB, "limit on pinned user memory, MiB (0 forbids pinning)" },
	{ "max_pool_mb", MB, "limit on the sum of pool sizes, MiB" },
	{ "default_node", NODE, "NUMA node of pools created with node -1 (-1: caller's node)" },
	{ "chunk_kb", CHUNK_KB, "default chunk size, KiB (power of two, page size..2048)" },
	{ "shrinker_enabled", BOOL, "swap cold chunks out under memory pressure (Y/N)" },
	{ "min_resident_mb", MB, "the shrinker keeps at least this much pool memory, MiB" },
	{ "dev_mode", RO, "mode of /dev/vkv (set at load time)" },
};

static const char *const counters[] = {
	"pinned_bytes", "pool_bytes", "pool_reserved_bytes", "swapped_bytes",
	"backed_resident_bytes", "swap_out_total", "swap_in_total",
	"fault_in_total", "prefetch_total", "discard_total", "shrinker_scans",
	"shrinker_swap_outs", "checksum_errors", "io_errors", "fallback_chunks",
	"busy_total", "contexts", "pins",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static int module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/vkv", &st) == 0;
}

static const struct tunable *find_tunable(const char *name)
{
	size_t i;

	for (i = 0; i < N(tunables); i++)
		if (!strcmp(tunables[i].name, name))
			return &tunables[i];
	return NULL;
}

static int is_counter(const char *name)
{
	size_t i;

	for (i = 0; i < N(counters); i++)
		if (!strcmp(counters[i], name))
			return 1;
	return 0;
}

static int node_has_memory(long node)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%ld/meminfo", node);
	return read_file(path, buf, sizeof(buf)) == 0;
}

/* Returns NULL if @val is acceptable for @t, else why not. */
static const char *validate(const struct tunable *t, const char *val)
{
	char *end;
	long long v;

	if (t->kind == RO)
		return "read-only: set it when loading the module (modprobe vkv dev_mode=0660)";
	if (t->kind == BOOL) {
		if (!strcmp(val, "Y") || !strcmp(val, "N") || !strcmp(val, "1") ||
		    !strcmp(val, "0") || !strcmp(val, "y") || !strcmp(val, "n"))
			return NULL;
		return "expected Y or N";
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || end == val || *end)
		return "not a number";
	switch (t->kind) {
	case MB:
		return v < 0 || v > (1ll << 44) ? "out of range (0 .. 2^44 MiB)" : NULL;
	case NODE:
		if (v == -1)
			return NULL;
		return v < 0 || !node_has_memory(v) ? "no such NUMA node with memory" : NULL;
	case CHUNK_KB: {
		long page_kb = sysconf(_SC_PAGESIZE) / 1024;

		if (v < page_kb || v > 2048 || (v & (v - 1)))
			return "must be a power of two from the page size to 2048";
		return NULL;
	}
	default:
		return "unknown";
	}
}

static int cmd_status(void)
{
	char path[256], buf[128];
	size_t i;

	if (!module_loaded()) {
		printf("vkv: module not loaded (/dev/vkv absent: libvkv uses mmap+mbind+mlock)\n");
		return 1;
	}
	printf("vkv: loaded, device %s\n", access("/dev/vkv", F_OK) == 0 ? "/dev/vkv" : "missing");
	printf("\ncounters (%s):\n", COUNTERS);
	for (i = 0; i < N(counters); i++) {
		snprintf(path, sizeof(path), COUNTERS "%s", counters[i]);
		if (read_file(path, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "?");
		printf("  %-22s %s\n", counters[i], buf);
	}
	printf("\ntunables (%s):\n", PARAMS);
	for (i = 0; i < N(tunables); i++) {
		snprintf(path, sizeof(path), PARAMS "%s", tunables[i].name);
		if (read_file(path, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "?");
		printf("  %-22s %-8s %s\n", tunables[i].name, buf, tunables[i].help);
	}
	return 0;
}

static int cmd_get(const char *name)
{
	char path[256], buf[128];
	int r;

	if (find_tunable(name))
		snprintf(path, sizeof(path), PARAMS "%s", name);
	else if (is_counter(name))
		snprintf(path, sizeof(path), COUNTERS "%s", name);
	else {
		fprintf(stderr, "vkvctl: unknown name '%s' (see vkvctl status)\n", name);
		return 2;
	}
	if (!module_loaded()) {
		fprintf(stderr, "vkvctl: module vkv is not loaded\n");
		return 1;
	}
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
	char path[256];
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
	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		fprintf(stderr, "vkvctl: setting %s needs root (try: sudo vkvctl set %s %s)\n",
			name, name, val);
		return 1;
	}
	if (fd < 0 || write(fd, val, strlen(val)) < 0) {
		fprintf(stderr, "vkvctl: %s=%s refused by the module: %s\n", name, val,
			strerror(errno));
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
		   "       vkvctl set NAME VALUE\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "status"))
		return cmd_status();
	if (argc == 3 && !strcmp(argv[1], "get"))
		return cmd_get(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "set"))
		return cmd_set(argv[2], argv[3]);
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
