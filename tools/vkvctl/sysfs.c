/* SPDX-License-Identifier: MIT */
/*
 * sysfs.c - reading the module's tunables, counters and per-user usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs.h"

const struct tunable tunables[] = {
	{"max_pinned_mb", MB,
	 "limit on pinned user memory, MiB (0 forbids pinning)"},
	{"max_pool_mb", MB, "limit on the sum of pool sizes, MiB"},
	{"max_user_pool_mb", MB,
	 "per-user limit on the sum of pool sizes, MiB (0: none)"},
	{"max_user_pinned_mb", MB,
	 "per-user limit on pinned memory, MiB (0: none)"},
	{"default_node", NODE,
	 "NUMA node of pools created with node -1 (-1: caller's node)"},
	{"chunk_kb", CHUNK_KB,
	 "default chunk size, KiB (power of two, page size..2048)"},
	{"shrinker_enabled", BOOL,
	 "swap cold chunks out under memory pressure (Y/N)"},
	{"min_resident_mb", MB,
	 "the shrinker keeps at least this much pool memory, MiB"},
	{"dev_mode", RO, "mode of /dev/vkv (set at load time)"},
};
const size_t n_tunables = N(tunables);

const char *const counters[] = {
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
	"remote_chunks",
	"busy_total",
	"contexts",
	"pins",
	"user_denied_total",
	"orphan_bytes",
};
const size_t n_counters = N(counters);

const char *sysfs_root(void)
{
	const char *r = getenv("VKV_SYSFS_ROOT");

	return r && *r ? r : "/sys";
}

int sysfs_path(char *path, size_t len, const char *rel)
{
	int n = snprintf(path, len, "%s/%s", sysfs_root(), rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int read_file(const char *path, char *buf, size_t len)
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

int module_loaded(void)
{
	char path[512];
	struct stat st;

	return !sysfs_path(path, sizeof(path), "module/vkv") &&
	       stat(path, &st) == 0;
}

static int read_rel(const char *dir, const char *name, char *buf, size_t len)
{
	char rel[256], path[512];
	int r;

	snprintf(rel, sizeof(rel), "%s/%s", dir, name);
	r = sysfs_path(path, sizeof(path), rel);
	return r ? r : read_file(path, buf, len);
}

int read_param(const char *name, char *buf, size_t len)
{
	return read_rel("module/vkv/parameters", name, buf, len);
}

int read_counter(const char *name, char *buf, size_t len)
{
	return read_rel("kernel/vkv", name, buf, len);
}

int read_ll(const char *path, long long *v)
{
	char buf[64], *end;
	int r = read_file(path, buf, sizeof(buf));

	if (r)
		return r;
	errno = 0;
	*v = strtoll(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

/* All decimal digits, no sign, no leading zero unless "0". */
static int uid_name(const char *s, unsigned long *uid)
{
	const char *p;

	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10)
		return 0;
	for (p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	*uid = strtoul(s, NULL, 10);
	return *uid <= 0xffffffffUL;
}

static int read_user(const char *dir, struct vkv_user_usage *u)
{
	static const char *const names[] = {"pool_bytes", "pinned_bytes",
					    "contexts", "denied_total"};
	long long *dst[] = {&u->pool_bytes, &u->pinned_bytes, &u->contexts,
			    &u->denied_total};
	char path[1024];
	size_t i;
	int r;

	for (i = 0; i < N(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		r = read_ll(path, dst[i]);
		if (r)
			return r;
	}
	return 0;
}

static int cmp_uid(const void *a, const void *b)
{
	const struct vkv_user_usage *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int read_users(struct vkv_user_usage **out)
{
	struct vkv_user_usage *v = NULL, *nv;
	size_t n = 0, cap = 0;
	char dir[512], sub[768];
	struct dirent *de;
	DIR *d;
	int r;

	*out = NULL;
	r = sysfs_path(dir, sizeof(dir), "kernel/vkv/users");
	if (r)
		return r;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct vkv_user_usage u = {0};

		if (!uid_name(de->d_name, &u.uid))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		r = read_user(sub, &u);
		if (r == -ENOENT)
			continue; /* its last context closed meanwhile */
		if (r)
			goto fail;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				goto fail;
			}
			v = nv;
		}
		v[n++] = u;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_uid);
	*out = v;
	return (int)n;
fail:
	closedir(d);
	free(v);
	return r;
}
