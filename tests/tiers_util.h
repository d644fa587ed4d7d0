/* SPDX-License-Identifier: MIT */
/*
 * tiers_util.h - what the tier suites (test_tiers.c, test_disk_tier.c)
 * share: seeded fills, captured log lines, the directories swap files go
 * to (VKV_TEST_SWAPDIRS), aligned buffers.
 */
#ifndef VKV_TESTS_TIERS_UTIL_H
#define VKV_TESTS_TIERS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"

#include "crc32c.h"
#include "quant.h"
#include "tier_disk.h"
#include "tier_host.h"

#define KIB 1024ul

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static inline void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, *q = p;

	for (size_t i = 0; i < len / 8; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		q[i] = s * 0x2545f4914f6cdd1dull;
	}
}

static inline bool check_fill(const void *p, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, v;
	const char *c = p;

	for (size_t i = 0; i < len / 8; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		memcpy(&v, c + 8 * i, 8);
		if (v != s * 0x2545f4914f6cdd1dull)
			return false;
	}
	return true;
}

/* Log lines captured from the library. */
static char log_buf[8192];
static size_t log_len;

static inline void log_capture(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	size_t n = strlen(msg);

	if (log_len + n + 2 < sizeof(log_buf)) {
		memcpy(log_buf + log_len, msg, n);
		log_len += n;
		log_buf[log_len++] = '\n';
		log_buf[log_len] = 0;
	}
}

static inline unsigned log_count(const char *needle)
{
	unsigned n = 0;

	for (const char *p = log_buf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static inline struct vkv_config log_cfg(void)
{
	struct vkv_config cfg;

	vkv_config_init(&cfg);
	cfg.log_fn = log_capture;
	cfg.log_level = VKV_LOG_DEBUG;
	log_len = 0;
	log_buf[0] = 0;
	return cfg;
}

/* Directories for swap files. */
static char swapdirs[8][512];
static unsigned nswapdirs;

static inline void swapdirs_init(void)
{
	const char *env = getenv("VKV_TEST_SWAPDIRS");
	const char *tmp = getenv("TMPDIR");
	char buf[4096];

	if (!env || !*env)
		env = tmp && *tmp ? tmp : "/tmp";
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *save, *tok = strtok_r(buf, ":", &save); tok && nswapdirs < 8;
	     tok = strtok_r(NULL, ":", &save))
		snprintf(swapdirs[nswapdirs++], sizeof(swapdirs[0]), "%s", tok);
}

static inline void swap_path(char *out, size_t len, unsigned dir,
			     const char *tag)
{
	snprintf(out, len, "%s/vkv-test-%d-%s.swap", swapdirs[dir],
		 (int)getpid(), tag);
	unlink(out);
}

static inline void *xalign(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	return p;
}

#endif /* VKV_TESTS_TIERS_UTIL_H */
