/* SPDX-License-Identifier: MIT */
/*
 * sysfs.h - where vkvctl reads the module's state: the tunables under
 * <root>/module/vkv/parameters/, the counters under <root>/kernel/vkv/ and
 * the per-user ones under <root>/kernel/vkv/users/<uid>/. <root> is /sys,
 * or $VKV_SYSFS_ROOT so that tests can point vkvctl at a fake tree.
 */
#ifndef VKVCTL_SYSFS_H
#define VKVCTL_SYSFS_H

#include <stddef.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum kind { MB, NODE, CHUNK_KB, BOOL, RO };

struct tunable {
	const char *name;
	enum kind kind;
	const char *help;
};

extern const struct tunable tunables[];
extern const size_t n_tunables;

/* The module-wide counters; metrics.c says what each one measures. */
extern const char *const counters[];
extern const size_t n_counters;

/* One user's entry under users/. */
struct vkv_user_usage {
	unsigned long uid;
	long long pool_bytes;
	long long pinned_bytes;
	long long contexts;
	long long denied_total;
};

const char *sysfs_root(void);
/* "<root>/<rel>" into @path; 0, or -ENAMETOOLONG. */
int sysfs_path(char *path, size_t len, const char *rel);
/* Whole small file, trailing newline cut; 0 or -errno. */
int read_file(const char *path, char *buf, size_t len);
int module_loaded(void);
int read_param(const char *name, char *buf, size_t len);
int read_counter(const char *name, char *buf, size_t len);
/* A file holding one decimal integer and a newline; 0 or -errno/-EINVAL. */
int read_ll(const char *path, long long *v);
/*
 * Every user with an entry, sorted by uid, in a malloc()ed array (*out,
 * NULL if none); returns how many, or -errno. A user whose entry vanishes
 * while it is read (its last context closed) is left out.
 */
int read_users(struct vkv_user_usage **out);

int cmd_metrics(int argc, char **argv);

#endif
