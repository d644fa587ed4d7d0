/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - `vkvctl metrics`: the module's counters, limits and per-user
 * usage in the Prometheus text exposition format (version 0.0.4), for
 * node_exporter's textfile collector. Names follow Prometheus' conventions:
 * the vkv_ prefix, base units (bytes), _total on counters, one HELP and one
 * TYPE line per family, per-user series labelled uid="<uid>".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

struct family {
	const char *src; /* counter or tunable under sysfs */
	const char *name; /* metric name */
	const char *type;
	const char *help;
};

static const struct family module_counters[] = {
	{"pinned_bytes", "vkv_pinned_bytes", "gauge",
	 "User memory pinned through vkv."},
	{"pool_bytes", "vkv_pool_bytes", "gauge", "Resident pool memory."},
	{"pool_reserved_bytes", "vkv_pool_reserved_bytes", "gauge",
	 "Sum of pool sizes, charged against max_pool_mb."},
	{"swapped_bytes", "vkv_swapped_bytes", "gauge",
	 "Pool memory swapped out to backing files."},
	{"backed_resident_bytes", "vkv_backed_resident_bytes", "gauge",
	 "Resident pool memory of pools with a backing file."},
	{"swap_out_total", "vkv_swap_out_total", "counter",
	 "Chunks swapped out."},
	{"swap_in_total", "vkv_swap_in_total", "counter",
	 "Chunks read back from backing files."},
	{"fault_in_total", "vkv_fault_in_total", "counter",
	 "Chunks read back by a page fault."},
	{"prefetch_total", "vkv_prefetch_total", "counter",
	 "Swapped chunks read back by a prefetch request."},
	{"discard_total", "vkv_discard_total", "counter", "Chunks discarded."},
	{"shrinker_scans", "vkv_shrinker_scans_total", "counter",
	 "Times the kernel asked vkv's shrinker for memory."},
	{"shrinker_swap_outs", "vkv_shrinker_swap_outs_total", "counter",
	 "Chunks swapped out under memory pressure."},
	{"checksum_errors", "vkv_checksum_errors_total", "counter",
	 "Chunks whose CRC32C did not match when read back."},
	{"io_errors", "vkv_io_errors_total", "counter",
	 "Failed reads and writes of backing files."},
	{"fallback_chunks", "vkv_fallback_chunks_total", "counter",
	 "Chunks built from smaller pieces for want of contiguous memory."},
	{"remote_chunks", "vkv_remote_chunks_total", "counter",
	 "Chunks of node-preferring pools placed off their node."},
	{"busy_total", "vkv_busy_total", "counter",
	 "Swap-outs and discards refused because the chunk was in use."},
	{"contexts", "vkv_contexts", "gauge", "Open /dev/vkv contexts."},
	{"pins", "vkv_pins", "gauge", "User-range pins held."},
	{"user_denied_total", "vkv_per_user_limit_denials_total", "counter",
	 "Pool creations and pins refused by a per-user limit."},
	{"orphan_bytes", "vkv_orphan_bytes", "gauge",
	 "Freed pool memory others still reference, counted until released."},
};

/* Tunables in MiB, exported in bytes; 0 in a per-user one means none. */
static const struct family limits[] = {
	{"max_pool_mb", "vkv_max_pool_bytes", "gauge",
	 "Limit on the sum of all pool sizes."},
	{"max_pinned_mb", "vkv_max_pinned_bytes", "gauge",
	 "Limit on user memory pinned through vkv."},
	{"max_user_pool_mb", "vkv_max_user_pool_bytes", "gauge",
	 "Limit on the sum of one user's pool sizes (0: none)."},
	{"max_user_pinned_mb", "vkv_max_user_pinned_bytes", "gauge",
	 "Limit on memory one user pins through vkv (0: none)."},
	{"min_resident_mb", "vkv_min_resident_bytes", "gauge",
	 "The shrinker keeps at least this much pool memory resident."},
};

static void family_head(FILE *f, const char *name, const char *type,
			const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int parse_ll(const char *s, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || end == s || *end ? -EINVAL : 0;
}

/*
 * A value that is missing (an older module) leaves its family out; one
 * that cannot be read or parsed is an error, reported and left out too.
 */
static int emit_value(FILE *f, const struct family *fm, int is_param,
		      unsigned long long scale)
{
	char buf[64];
	long long v;
	int r = is_param ? read_param(fm->src, buf, sizeof(buf))
			 : read_counter(fm->src, buf, sizeof(buf));

	if (r == -ENOENT)
		return 0;
	if (!r)
		r = parse_ll(buf, &v);
	if (r) {
		fprintf(stderr, "vkvctl: metrics: %s: %s\n", fm->src,
			strerror(-r));
		return 1;
	}
	if (v < 0) {
		fprintf(stderr, "vkvctl: metrics: %s: negative\n", fm->src);
		return 1;
	}
	family_head(f, fm->name, fm->type, fm->help);
	/* Unsigned: a limit may be up to 2^44 MiB, 2^64 bytes less 1 MiB. */
	fprintf(f, "%s %llu\n", fm->name, (unsigned long long)v * scale);
	return 0;
}

static int emit_users(FILE *f)
{
	static const struct family fams[] = {
		{"pool_bytes", "vkv_user_pool_bytes", "gauge",
		 "Sum of the pool sizes of a user's contexts."},
		{"pinned_bytes", "vkv_user_pinned_bytes", "gauge",
		 "User memory a user pinned through vkv."},
		{"contexts", "vkv_user_contexts", "gauge",
		 "Open /dev/vkv contexts of a user."},
		{"denied_total", "vkv_user_denials_total", "counter",
		 "A user's pool creations and pins refused by a per-user "
		 "limit, while the user has contexts open."},
	};
	struct vkv_user_usage *u;
	size_t i;
	int n, j;

	n = read_users(&u);
	if (n == -ENOENT)
		return 0; /* a module without per-user accounting */
	if (n < 0) {
		fprintf(stderr, "vkvctl: metrics: users: %s\n", strerror(-n));
		return 1;
	}
	for (i = 0; i < N(fams); i++) {
		family_head(f, fams[i].name, fams[i].type, fams[i].help);
		for (j = 0; j < n; j++) {
			long long v = i == 0   ? u[j].pool_bytes
				      : i == 1 ? u[j].pinned_bytes
				      : i == 2 ? u[j].contexts
					       : u[j].denied_total;

			fprintf(f, "%s{uid=\"%lu\"} %lld\n", fams[i].name,
				u[j].uid, v);
		}
	}
	free(u);
	return 0;
}

static int emit(FILE *f)
{
	int loaded = module_loaded(), err = 0;
	char buf[16];
	size_t i;

	family_head(f, "vkv_up", "gauge",
		    "Whether the vkv kernel module is loaded.");
	fprintf(f, "vkv_up %d\n", loaded);
	if (!loaded)
		return 0;
	for (i = 0; i < N(module_counters); i++)
		err |= emit_value(f, &module_counters[i], 0, 1);
	for (i = 0; i < N(limits); i++)
		err |= emit_value(f, &limits[i], 1, 1 << 20);
	if (!read_param("shrinker_enabled", buf, sizeof(buf))) {
		family_head(f, "vkv_shrinker_enabled", "gauge",
			    "Whether the shrinker swaps cold chunks out under "
			    "memory pressure.");
		fprintf(f, "vkv_shrinker_enabled %d\n",
			buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1');
	}
	err |= emit_users(f);
	return err;
}

/*
 * -o FILE writes FILE.tmp and renames it over FILE, so that the textfile
 * collector never reads half a file.
 */
int cmd_metrics(int argc, char **argv)
{
	char tmp[4096];
	FILE *f;
	int err;

	if (argc == 0)
		return emit(stdout) || fflush(stdout) ? 1 : 0;
	if (argc != 2 || strcmp(argv[0], "-o")) {
		fprintf(stderr, "usage: vkvctl metrics [-o FILE]\n");
		return 2;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]) >= (int)sizeof(tmp)) {
		fprintf(stderr, "vkvctl: %s: name too long\n", argv[1]);
		return 2;
	}
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "vkvctl: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	err = emit(f);
	if (fflush(f) || fsync(fileno(f)) || ferror(f)) {
		fprintf(stderr, "vkvctl: %s: %s\n", tmp, strerror(errno));
		err = 1;
	}
	if (fclose(f))
		err = 1;
	if (!err && rename(tmp, argv[1])) {
		fprintf(stderr, "vkvctl: %s: %s\n", argv[1], strerror(errno));
		err = 1;
	}
	if (err)
		unlink(tmp);
	return err ? 1 : 0;
}
