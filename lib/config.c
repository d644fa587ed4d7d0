/* SPDX-License-Identifier: MIT */
/*
 * config.c - defaults, VKV_* environment overrides, validation, logging.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi.h"

/*
 * Per thread, so that two threads creating caches never see each other's
 * reasons; a static buffer keeps it allocation-free.
 */
static _Thread_local char config_err[256];

VKV_EXPORT const char *vkv_config_error(void)
{
	return config_err;
}

void vkvi_config_seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(config_err, sizeof(config_err), fmt, ap);
	va_end(ap);
}

void vkvi_log(const struct vkv_config *cfg, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!cfg || !cfg->log_fn || level > cfg->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg->log_fn(cfg->log_arg, level, msg);
}

int vkvi_parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		/* Accept "2M", "2MB" and "2MiB". */
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (SIZE_MAX >> shift))
		return -EINVAL;
	*out = (size_t)(v << shift);
	return 0;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int parse_name(const char *s, const char *const *names, int n, int *out)
{
	for (int i = 0; i < n; i++) {
		if (!strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const backend_names[] = {"auto", "host", "cuda"};
static const char *const evict_names[] = {"none", "lru", "priority"};

static int parse_backend(const char *s, int *out)
{
	return parse_name(s, backend_names, 3, out);
}

static int parse_level(const char *s, int *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return parse_int(s, VKV_LOG_ERROR, VKV_LOG_DEBUG, out);
}

enum env_kind {
	ENV_SIZE,
	ENV_INT,
	ENV_BACKEND,
	ENV_LEVEL,
	ENV_STR,
	ENV_EVICT,
	ENV_BOOL
};

struct env_var {
	const char *name;
	enum env_kind kind;
	size_t off;
	const char *expect;
};

#define CFG_OFF(f) offsetof(struct vkv_config, f)

/* Every knob a user can set without recompiling; README documents each. */
static const struct env_var env_vars[] = {
	{"VKV_BACKEND", ENV_BACKEND, CFG_OFF(backend), "auto, host or cuda"},
	{"VKV_PAGE_SIZE", ENV_SIZE, CFG_OFF(page_size),
	 "a power of two such as 2M"},
	{"VKV_BUDGET", ENV_SIZE, CFG_OFF(budget), "a size such as 16G"},
	{"VKV_POOL_LOW", ENV_SIZE, CFG_OFF(pool_low), "a size such as 32M"},
	{"VKV_POOL_HIGH", ENV_SIZE, CFG_OFF(pool_high), "a size such as 128M"},
	{"VKV_LOOKAHEAD", ENV_SIZE, CFG_OFF(lookahead_tokens),
	 "a token count below 2^32"},
	{"VKV_DEVICE", ENV_INT, CFG_OFF(device), "a device ordinal >= 0"},
	{"VKV_NUMA_NODE", ENV_INT, CFG_OFF(numa_node),
	 "a NUMA node >= 0, or -1"},
	{"VKV_LOG_LEVEL", ENV_LEVEL, CFG_OFF(log_level),
	 "error, warn, info, debug or 0-3"},
	{"VKV_HOST_BUDGET", ENV_SIZE, CFG_OFF(host_budget),
	 "a size such as 32G"},
	{"VKV_SWAP_PATH", ENV_STR, CFG_OFF(swap_path), "a file path"},
	{"VKV_SWAP_QDEPTH", ENV_INT, CFG_OFF(swap_qdepth), "1 to 4096"},
	{"VKV_EVICT", ENV_EVICT, CFG_OFF(evict), "none, lru or priority"},
	{"VKV_QUANTIZE", ENV_BOOL, CFG_OFF(quantize), "0 or 1"},
	{"VKV_IO_URING", ENV_BOOL, CFG_OFF(io_uring), "0 or 1"},
};

/*
 * Ranges of the one-field checks vkvi_config_validate() makes, applied to a
 * variable as it is read, so that a value create would refuse is refused
 * here, named, and leaves its field at the default.
 */
static int size_in_range(size_t off, size_t v)
{
	if (off == CFG_OFF(page_size))
		return v && !(v & (v - 1)) ? 0 : -EINVAL;
	if (off == CFG_OFF(lookahead_tokens))
		return v <= UINT32_MAX ? 0 : -EINVAL;
	return 0;
}

static int apply_env(struct vkv_config *cfg, const struct env_var *ev,
		     const char *val)
{
	char *field = (char *)cfg + ev->off;
	long lo = 0, hi = INT_MAX;
	size_t sz;
	int iv, err;

	switch (ev->kind) {
	case ENV_SIZE:
		err = vkvi_parse_size(val, &sz);
		if (!err)
			err = size_in_range(ev->off, sz);
		if (!err)
			memcpy(field, &sz, sizeof(sz));
		return err;
	case ENV_INT:
		if (ev->off == CFG_OFF(numa_node))
			lo = -1;
		if (ev->off == CFG_OFF(swap_qdepth)) {
			lo = 1;
			hi = 4096;
		}
		err = parse_int(val, lo, hi, &iv);
		break;
	case ENV_BACKEND:
		err = parse_backend(val, &iv);
		break;
	case ENV_STR:
		if (!*val)
			return -EINVAL;
		memcpy(field, &val, sizeof(val));
		return 0;
	case ENV_EVICT:
		err = parse_name(val, evict_names, 3, &iv);
		break;
	case ENV_BOOL:
		err = parse_int(val, 0, 1, &iv);
		break;
	case ENV_LEVEL:
	default:
		err = parse_level(val, &iv);
		break;
	}
	if (!err)
		memcpy(field, &iv, sizeof(iv));
	return err;
}

/* The default version; see abi.h. */
__asm__(".symver vkvi_config_init_v04, vkv_config_init@@VKV_0.4");

VKV_EXPORT int vkvi_config_init_v04(struct vkv_config *cfg)
{
	int ret = 0;

	if (!cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = VKV_BACKEND_AUTO;
	cfg->page_size = VKV_DEFAULT_PAGE_SIZE;
	cfg->budget = 0;
	cfg->pool_low = 16 * VKV_MIB;
	cfg->pool_high = 64 * VKV_MIB;
	cfg->lookahead_tokens = 16;
	cfg->device = 0;
	cfg->numa_node = -1;
	cfg->log_level = VKV_LOG_WARN;
	cfg->swap_qdepth = 32;
	cfg->io_uring = 1;
	config_err[0] = '\0';

	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
		const char *val = getenv(env_vars[i].name);

		if (!val)
			continue;
		if (apply_env(cfg, &env_vars[i], val)) {
			/* Keep going: the others still apply; report the first. */
			if (!ret)
				vkvi_config_seterr("%s=\"%.64s\": expected %s",
						   env_vars[i].name, val,
						   env_vars[i].expect);
			ret = -EINVAL;
		}
	}
	return ret;
}

int vkvi_config_validate(const struct vkv_config *cfg)
{
	if (cfg->backend < VKV_BACKEND_AUTO ||
	    cfg->backend > VKV_BACKEND_CUDA) {
		vkvi_config_seterr("backend %d: expected auto, host or cuda",
				   (int)cfg->backend);
		return -EINVAL;
	}
	if (!cfg->page_size || (cfg->page_size & (cfg->page_size - 1))) {
		vkvi_config_seterr("page_size %zu: expected a power of two",
				   cfg->page_size);
		return -EINVAL;
	}
	if (cfg->budget && cfg->budget < cfg->page_size) {
		vkvi_config_seterr("budget %zu is smaller than one page (%zu)",
				   cfg->budget, cfg->page_size);
		return -EINVAL;
	}
	if (cfg->pool_low > cfg->pool_high) {
		vkvi_config_seterr("pool_low %zu is above pool_high %zu",
				   cfg->pool_low, cfg->pool_high);
		return -EINVAL;
	}
	if (cfg->lookahead_tokens > UINT32_MAX) {
		vkvi_config_seterr("lookahead_tokens %zu is too large",
				   cfg->lookahead_tokens);
		return -EINVAL;
	}
	if (cfg->device < 0) {
		vkvi_config_seterr("device %d: expected >= 0", cfg->device);
		return -EINVAL;
	}
	if (cfg->numa_node < -1) {
		vkvi_config_seterr("numa_node %d: expected >= -1",
				   cfg->numa_node);
		return -EINVAL;
	}
	if (cfg->swap_qdepth < 1 || cfg->swap_qdepth > 4096) {
		vkvi_config_seterr("swap_qdepth %u: expected 1 to 4096",
				   cfg->swap_qdepth);
		return -EINVAL;
	}
	if (cfg->evict < VKV_EVICT_NONE || cfg->evict > VKV_EVICT_PRIORITY) {
		vkvi_config_seterr("evict %d: expected none, lru or priority",
				   cfg->evict);
		return -EINVAL;
	}
	if (cfg->quantize < 0 || cfg->quantize > 1 || cfg->io_uring < 0 ||
	    cfg->io_uring > 1) {
		vkvi_config_seterr("quantize and io_uring are 0 or 1");
		return -EINVAL;
	}
	if (cfg->log_level < VKV_LOG_ERROR || cfg->log_level > VKV_LOG_DEBUG) {
		vkvi_config_seterr("log_level %d: expected 0-3",
				   cfg->log_level);
		return -EINVAL;
	}
	if (!vkvi_reserved_zero(cfg->reserved, sizeof(cfg->reserved))) {
		vkvi_config_seterr(
			"config: reserved must be zero (a field of a "
			"newer libvkv than %d.%d.%d?)",
			VKV_VERSION_MAJOR, VKV_VERSION_MINOR,
			VKV_VERSION_PATCH);
		return -EINVAL;
	}
	return 0;
}
