/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by the vkvbench subcommands.
 */
#ifndef VKVBENCH_UTIL_H
#define VKVBENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes: the contract scripts and make targets rely on. */
#define EXIT_OK 0
#define EXIT_FAIL 1 /* stamp mismatch or library error */
#define EXIT_USAGE 2 /* bad command line or unreadable input */

uint64_t now_ns(void);

/* Parse "4G", "512MiB", "2m", "1048576": bytes. Returns 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out);

/* Parse a non-negative decimal integer that fits @max. 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Parse a positive decimal number (seconds, ms, ...). 0 or -EINVAL. */
int parse_double(const char *s, double *out);

/* "1.50 GiB" style text for @bytes into @buf. Returns @buf. */
char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* "12.3 us" style text for @ns into @buf. Returns @buf. */
char *fmt_ns(char *buf, size_t len, double ns);

/* Sort @v in place and return its @pct-th percentile (0 < pct <= 100). */
uint64_t percentile_u64(uint64_t *v, size_t n, double pct);
double median_dbl(double *v, size_t n);

/*
 * A growable array of u64 samples. Allocation failure is remembered rather
 * than fatal: the caller checks ->oom once at the end.
 */
struct samples {
	uint64_t *v;
	size_t n, cap;
	int oom;
};

void samples_push(struct samples *s, uint64_t x);
void samples_free(struct samples *s);

#endif /* VKVBENCH_UTIL_H */
