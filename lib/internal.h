/* SPDX-License-Identifier: MIT */
/*
 * internal.h - helpers shared by the library's source files. Not installed.
 */
#ifndef VKV_INTERNAL_H
#define VKV_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "vkv.h"

#define VKV_EXPORT __attribute__((visibility("default")))

#define VKV_MIB (1024ul * 1024ul)
#define VKV_DEFAULT_PAGE_SIZE (2 * VKV_MIB)

#define vkv_unlikely(x) __builtin_expect(!!(x), 0)

/* Counters read from any thread while the owner updates them. */
static inline void vkv_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline void vkv_sub(uint64_t *p, uint64_t v)
{
	__atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t vkv_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void vkv_store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t vkv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Record one sample; lock-free so that the workers and readers never wait. */
void vkvi_hist_add(struct vkv_hist *h, uint64_t ns);
/* Copy @src into @dst field by field with atomic loads. */
void vkvi_hist_read(const struct vkv_hist *src, struct vkv_hist *dst);

/* Logging through the caller's callback, if any, at or below its level. */
void vkvi_log(const struct vkv_config *cfg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record why a configuration was refused, for vkv_config_error(). */
void vkvi_config_seterr(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Validate a whole configuration; -EINVAL with the reason recorded. */
int vkvi_config_validate(const struct vkv_config *cfg);

/* Parse "123", "64K", "2M", "8G", "1T" (binary units); -EINVAL if not. */
int vkvi_parse_size(const char *s, size_t *out);

#endif /* VKV_INTERNAL_H */
