/* SPDX-License-Identifier: MIT */
/*
 * Configuration and the real allocator. The first allocation of a process
 * may come before the dynamic linker can answer dlsym(), and dlsym() itself
 * allocates: until the real functions are known, allocations come from a
 * small static arena that is never given back.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

_Atomic int shimi_state;
struct shimi_config shimi_cfg;
struct shimi_real shimi_real;
size_t shimi_floor = SIZE_MAX;
struct shimi_fast shimi_fast = {.span_len = UINTPTR_MAX};
__thread int shimi_tag_depth __attribute__((tls_model("initial-exec")));
static __thread int init_here __attribute__((tls_model("initial-exec")));

/* glibc's own entry points: the last resort when dlsym finds nothing. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define BOOT_SIZE SHIMI_BOOT_SIZE
#define boot_arena shimi_boot_arena
_Alignas(4096) unsigned char shimi_boot_arena[BOOT_SIZE];
static _Atomic size_t boot_used;

/* Each block is preceded by its size, 16 bytes before the pointer. */
void *shimi_boot_alloc(size_t size, size_t align)
{
	size_t old, start, end;

	if (align < 16)
		align = 16;
	if (size > BOOT_SIZE)
		goto full;
	old = atomic_load(&boot_used);
	do {
		start = (old + 16 + align - 1) & ~(align - 1);
		end = start + size;
		if (end > BOOT_SIZE)
			goto full;
	} while (!atomic_compare_exchange_weak(&boot_used, &old, end));
	memcpy(boot_arena + start - 16, &size, sizeof(size));
	return boot_arena + start;
full:
	errno = ENOMEM;
	return NULL;
}

size_t shimi_boot_size(const void *p)
{
	size_t size;

	memcpy(&size, (const unsigned char *)p - 16, sizeof(size));
	return size;
}

void *shimi_sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int shimi_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

void shimi_warn_once(atomic_int *once, const char *what, int err)
{
	char line[256];
	int n;

	if (atomic_exchange(once, 1))
		return;
	n = snprintf(line, sizeof(line), "libvkv-shim[%d]: %s: %s\n",
		     (int)getpid(), what, strerror(err < 0 ? -err : err));
	if (n > 0 && write(2, line, (size_t)n) < 0)
		return;
}

/* "123", "4K", "64M", "1G", "2T" (powers of 1024). 0 on success. */
static int parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end, *num_end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	num_end = end;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	case 't':
	case 'T':
		v <<= 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' && end != num_end)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Read once per process, so each bad variable is named once. */
static void bad_env(const char *name)
{
	atomic_int first = 0;
	char what[64];

	snprintf(what, sizeof(what), "%s ignored", name);
	shimi_warn_once(&first, what, EINVAL);
}

static void read_config(void)
{
	struct shimi_config *c = &shimi_cfg;
	const char *s;
	size_t v;

	c->enabled = 1;
	c->min_bytes = (size_t)64 << 20;
	s = getenv("VKV_SHIM");
	if (s && (!strcmp(s, "0") || !strcmp(s, "off") || !strcmp(s, "no")))
		c->enabled = 0;
	s = getenv("VKV_SHIM_VERBOSE");
	if (s && *s && strcmp(s, "0"))
		c->verbose = 1;
	s = getenv("VKV_SHIM_MIN_BYTES");
	if (s) {
		if (parse_size(s, &v))
			bad_env("VKV_SHIM_MIN_BYTES");
		else
			c->min_bytes = v;
	}
	s = getenv("VKV_SHIM_LIMIT");
	if (s) {
		if (parse_size(s, &v))
			bad_env("VKV_SHIM_LIMIT");
		else
			c->limit = v;
	}
	s = getenv("VKV_SHIM_MATCH_BYTES");
	while (s && *s && c->nmatch < SHIMI_MAX_MATCH) {
		char item[32];
		size_t n = strcspn(s, ",");

		if (n && n < sizeof(item)) {
			memcpy(item, s, n);
			item[n] = 0;
			if (parse_size(item, &v) || !v)
				bad_env("VKV_SHIM_MATCH_BYTES");
			else
				c->match[c->nmatch++] = v;
		}
		s += n;
		if (*s == ',')
			s++;
	}
	c->backing = SHIMI_BACKING_AUTO;
	s = getenv("VKV_SHIM_BACKING");
	if (s && !strcmp(s, "anon"))
		c->backing = SHIMI_BACKING_ANON;
	else if (s && !strcmp(s, "kmod"))
		c->backing = SHIMI_BACKING_KMOD;
	else if (s && strcmp(s, "auto"))
		bad_env("VKV_SHIM_BACKING");
	s = getenv("VKV_SHIM_SPILL_DIR");
	if (!s || !*s)
		s = getenv("TMPDIR");
	if (!s || !*s)
		s = "/var/tmp";
	snprintf(c->spill_dir, sizeof(c->spill_dir), "%s", s);

	if (!c->enabled)
		return;
	/* A tagged region recognises anything of a page or more. */
	shimi_floor = 4096;
	if (c->min_bytes && c->min_bytes < shimi_floor)
		shimi_floor = c->min_bytes;
	for (int i = 0; i < c->nmatch; i++)
		if (c->match[i] < shimi_floor)
			shimi_floor = c->match[i];
}

/*
 * VKV_SHIM_VERBOSE: an operator choosing VKV_SHIM_MATCH_BYTES needs the
 * sizes an engine allocates and what became of them. Large pass-throughs
 * only: small ones are countless and never the KV cache.
 */
static void say_wanted(size_t size, const char *why)
{
	char line[160];
	int n;

	if (!why && size < ((size_t)1 << 20))
		return;
	n = snprintf(line, sizeof(line), "libvkv-shim[%d]: %zu bytes: %s%s%s\n",
		     (int)getpid(), size, why ? "region (" : "passed through",
		     why ? why : "", why ? ")" : "");
	if (n > 0 && write(2, line, (size_t)n) < 0)
		return;
}

int shimi_wanted(size_t size)
{
	const char *why = NULL;

	if (size < shimi_floor)
		return 0;
	if (shimi_tag_depth > 0 && size >= 4096)
		why = "tagged";
	for (int i = 0; !why && i < shimi_cfg.nmatch; i++)
		if (size == shimi_cfg.match[i])
			why = "VKV_SHIM_MATCH_BYTES";
	if (!why && shimi_cfg.min_bytes && size >= shimi_cfg.min_bytes)
		why = "VKV_SHIM_MIN_BYTES";
	if (shimi_unlikely(shimi_cfg.verbose))
		say_wanted(size, why);
	return why != NULL;
}

#define REAL(name, fallback)                                                   \
	do {                                                                   \
		*(void **)&shimi_real.name = dlsym(RTLD_NEXT, #name);          \
		if (!shimi_real.name)                                          \
			*(void **)&shimi_real.name = (void *)(fallback);       \
	} while (0)

static int libc_posix_memalign(void **out, size_t align, size_t size)
{
	void *p = __libc_memalign(align, size);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static size_t no_usable_size(void *p)
{
	return 0;
}

static void atfork_prepare(void)
{
	shimi_region_atfork_prepare();
}

static void atfork_parent(void)
{
	shimi_region_atfork_parent();
}

static void atfork_child(void)
{
	shimi_region_atfork_child();
	shimi_ctl_atfork_child();
}

int shimi_init_slow(void)
{
	int expect = SHIMI_UNINIT;

	if (atomic_compare_exchange_strong(&shimi_state, &expect,
					   SHIMI_INITIALISING)) {
		init_here = 1;
		REAL(malloc, __libc_malloc);
		REAL(calloc, __libc_calloc);
		REAL(realloc, __libc_realloc);
		REAL(free, __libc_free);
		REAL(posix_memalign, libc_posix_memalign);
		REAL(aligned_alloc, __libc_memalign);
		REAL(memalign, __libc_memalign);
		REAL(malloc_usable_size, no_usable_size);
		REAL(mmap, shimi_sys_mmap);
		REAL(munmap, shimi_sys_munmap);
		read_config();
		init_here = 0;
		/* The fast paths' tests, each published after what they guard. */
		shimi_fast.malloc = shimi_real.malloc;
		shimi_fast.free = shimi_real.free;
		atomic_store_explicit(&shimi_fast.span_len, 0,
				      memory_order_release);
		atomic_store_explicit(&shimi_fast.floor, shimi_floor,
				      memory_order_release);
		atomic_store_explicit(&shimi_state, SHIMI_READY,
				      memory_order_release);
		/* It may allocate: only once the real allocator is known. */
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		return 1;
	}
	if (expect == SHIMI_READY)
		return 1;
	/* Our own dlsym() allocating: serve it from the arena. */
	if (init_here)
		return 0;
	while (atomic_load(&shimi_state) != SHIMI_READY)
		sched_yield();
	return 1;
}

__attribute__((constructor)) static void shimi_ctor(void)
{
	shimi_ready();
}
