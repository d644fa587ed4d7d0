/* SPDX-License-Identifier: MIT */
/*
 * shim_engine - test "engines" run under LD_PRELOAD=libvkv-shim.so by
 * test_shim, one allocation pattern per command. Each checks what it can see
 * from inside (through vkv_shim_query(), found with dlsym so that the
 * program also runs without the shim) and exits 0, or prints what failed
 * and exits 1.
 *
 * The suite sets VKV_SHIM_MIN_BYTES=1M, so "big" below means a region.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vkv-shim.h"

#define MIB ((size_t)1 << 20)
#define BIG (8 * MIB)

static int failures;
/*
 * SHIM_ENGINE_FAULTS=1: the shim cannot make any region (its backing fails
 * underneath), and the engine must compute the same result from the
 * allocations the shim falls back to: REGION() then asserts there is none.
 */
static int faults;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "shim_engine: %s:%d: %s\n", __FILE__,  \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

/* Non-const: the engine's buffers may not be initialised when asked. */
static int (*query)(void *, size_t *);
static void (*tag_begin)(const char *);
static void (*tag_end)(void);

static int is_region(void *p)
{
	return query && query(p, NULL);
}

#define REGION(p) (faults ? !is_region(p) : is_region(p))
/* A region of len usable bytes at p, or, under faults, no region. */
static int region_len(void *p, size_t want)
{
	size_t len;

	if (faults)
		return !is_region(p);
	return query && query(p, &len) && len == want;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i + 1 < n; i += 512)
		p[i] = (unsigned char)(i / 512 * 31 + seed);
	if (n)
		p[n - 1] = (unsigned char)seed;
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i + 1 < n; i += 512)
		if (p[i] != (unsigned char)(i / 512 * 31 + seed))
			return 0;
	return !n || p[n - 1] == (unsigned char)seed;
}

/* llama.cpp: one K/V buffer for all layers, 64-byte aligned, cleared. */
static void engine_llama(void)
{
	void *kv = NULL, *small;

	CHECK(posix_memalign(&kv, 64, 24 * MIB) == 0);
	CHECK(REGION(kv));
	CHECK(!is_region(NULL));
	CHECK((uintptr_t)kv % 64 == 0);
	memset(kv, 0, 24 * MIB);
	fill(kv, 24 * MIB, 7);
	CHECK(same(kv, 24 * MIB, 7));
	CHECK(malloc_usable_size(kv) >= 24 * MIB);
	small = malloc(100);
	CHECK(small && !is_region(small));
	free(small);
	free(kv);
	/* Larger alignments than a page are honoured too. */
	CHECK(posix_memalign(&kv, 1 << 21, BIG) == 0);
	CHECK(REGION(kv) && (uintptr_t)kv % (1 << 21) == 0);
	free(kv);
	kv = aligned_alloc(4096, BIG);
	CHECK(kv && REGION(kv));
	free(kv);
	kv = memalign(64, BIG);
	CHECK(kv && REGION(kv));
	free(kv);
}

/* A small C engine: calloc'd K and V, which must read as zeroes. */
static void engine_calloc(void)
{
	unsigned char *k, *v;

	k = malloc(BIG);
	CHECK(REGION(k));
	memset(k, 0xff, BIG);
	free(k);
	k = calloc(BIG / 4, 4);
	v = calloc(1, BIG);
	CHECK(k && v && REGION(k) && REGION(v));
	for (size_t i = 0; i < BIG; i++)
		if (k[i] || v[i]) {
			CHECK(!"calloc gave nonzero bytes");
			break;
		}
	k[5] = 1;
	{
		volatile size_t huge = (size_t)-1;

		CHECK(calloc(huge, 16) == NULL && errno == ENOMEM);
	}
	free(k);
	free(v);
}

/* Sizes that cross the threshold both ways, with contents kept. */
static void *torture(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	static const size_t sizes[] = {16,	    4000, MIB - 1, MIB,
				       3 * MIB,	    100,  2 * MIB, 512 * 1024,
				       5 * MIB + 3, 64};

	for (int round = 0; round < 40; round++) {
		size_t n = sizes[(round + seed) % 10];
		unsigned char *p = malloc(n);

		CHECK(p != NULL);
		fill(p, n, seed + round);
		CHECK(malloc_usable_size(p) >= n);
		CHECK(is_region(p) == (n >= MIB));
		for (int j = 1; j < 10; j++) {
			size_t m = sizes[(round + seed + j) % 10];
			size_t keep = n < m ? n : m;
			unsigned char *q = realloc(p, m);

			CHECK(q != NULL);
			for (size_t i = 0; i + 1 < keep; i += 512)
				if (q[i] != (unsigned char)(i / 512 * 31 +
							    seed + round))
					CHECK(!"realloc lost contents");
			CHECK(malloc_usable_size(q) >= m);
			CHECK(is_region(q) == (m >= MIB));
			fill(q, m, seed + round);
			p = q;
			n = m;
		}
		CHECK(realloc(p, 0) == NULL);
	}
	return NULL;
}

static void engine_torture(void)
{
	pthread_t t[4];
	unsigned char *shared;
	pid_t pid;
	int status;

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, torture, (void *)(uintptr_t)i);
	shared = malloc(BIG);
	CHECK(is_region(shared));
	fill(shared, BIG, 99);
	pid = fork();
	if (pid == 0) {
		/* The child's copy: same bytes, its own afterwards. */
		int bad = !same(shared, BIG, 99) || !is_region(shared);

		fill(shared, BIG, 5);
		torture((void *)(uintptr_t)7);
		free(shared);
		_exit(bad || failures ? 1 : 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(same(shared, BIG, 99));
	free(shared);
	/* Foreign and odd pointers. */
	free(NULL);
	CHECK(malloc_usable_size(NULL) == 0);
	{
		char *s = strdup("pass-through");

		CHECK(s && !is_region(s));
		free(s);
	}
}

static void engine_match(void)
{
	void *a = malloc(12345), *b = malloc(12346);

	CHECK(REGION(a) && !is_region(b));
	free(a);
	free(b);
}

static void engine_tag(void)
{
	void *a, *b, *c;

	CHECK(tag_begin && tag_end);
	if (!tag_begin || !tag_end)
		return;
	tag_begin("kv");
	a = malloc(8192);
	b = malloc(100);
	tag_end();
	c = malloc(8192);
	CHECK(REGION(a) && !is_region(b) && !is_region(c));
	free(a);
	free(b);
	free(c);
}

static void engine_mmap(void)
{
	unsigned char *p, *s;

	p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	CHECK(p != MAP_FAILED && REGION(p));
	fill(p, BIG, 3);
	CHECK(same(p, BIG, 3));
	CHECK(munmap(p, BIG) == 0);
	CHECK(!is_region(p));
	/* A length that is not a whole number of pages, as mmap allows. */
	p = mmap(NULL, BIG + 100, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED && REGION(p));
	p[BIG + 99] = 1;
	CHECK(munmap(p, BIG + 100) == 0);
	CHECK(!is_region(p));
	s = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	CHECK(s != MAP_FAILED && !is_region(s));
	CHECK(munmap(s, BIG) == 0);
}

/* Is [p, p + len) mapped at all? mincore() says ENOMEM where it is not. */
static int mapped(const void *p, size_t len)
{
	unsigned char vec[64];

	return mincore((void *)p, len < 64 * 4096 ? len : 64 * 4096, vec) == 0;
}

/* Does a read of *p kill a child with SIGSEGV, as an unmapped page does? */
static int segfaults(const volatile unsigned char *p)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		(void)*p;
		_exit(0);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	       WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* fill()'s bytes of base in [lo, hi), lo a multiple of 512. */
static int intact(const unsigned char *base, size_t lo, size_t hi,
		  unsigned seed)
{
	for (size_t i = lo; i < hi; i += 512)
		if (base[i] != (unsigned char)(i / 512 * 31 + seed))
			return 0;
	return 1;
}

static unsigned char *kv_mmap(size_t len, unsigned seed)
{
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED && REGION(p));
	if (p != MAP_FAILED)
		fill(p, len, seed);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * munmap of part of a region, as of any mapping: the rest keeps its bytes
 * at its address, the part unmapped faults, and the rest can be unmapped
 * later in pieces or in one call over the holes.
 */
static void engine_unmap(void)
{
	unsigned char *p = kv_mmap(BIG, 5);

	if (!p)
		return;
	/* Head. */
	CHECK(munmap(p, MIB) == 0);
	CHECK(!mapped(p, MIB) && segfaults(p));
	CHECK(intact(p, MIB, BIG - 1, 5));
	CHECK(region_len(p + MIB, BIG - MIB));
	/* Tail. */
	CHECK(munmap(p + BIG - MIB, MIB) == 0);
	CHECK(!mapped(p + BIG - MIB, MIB) && segfaults(p + BIG - 1));
	CHECK(region_len(p + MIB, BIG - 2 * MIB));
	/* Middle: two regions, each with its bytes. */
	CHECK(munmap(p + 3 * MIB, MIB) == 0);
	CHECK(segfaults(p + 3 * MIB) && mapped(p + 2 * MIB, MIB) &&
	      mapped(p + 4 * MIB, MIB));
	CHECK(REGION(p + MIB) && REGION(p + 4 * MIB));
	CHECK(intact(p, MIB, 3 * MIB, 5) && intact(p, 4 * MIB, BIG - MIB, 5));
	/* Writes still land in the pieces. */
	p[MIB + 1] = 0xab;
	p[5 * MIB] = 0xcd;
	CHECK(p[MIB + 1] == 0xab && p[5 * MIB] == 0xcd);
	/* One call over both pieces and the holes between them. */
	CHECK(munmap(p, BIG) == 0);
	CHECK(!is_region(p + MIB) && !is_region(p + 4 * MIB));
	CHECK(!mapped(p + MIB, MIB) && !mapped(p + 4 * MIB, MIB));
	/*
	 * A munmap reaching past the ends of a region takes it too (past
	 * the ends where nothing else is mapped: the region is the lowest
	 * made yet, so the page below it reaches below every region).
	 */
	p = kv_mmap(BIG, 4);
	if (!p)
		return;
	{
		unsigned char *lo = mapped(p - 4096, 4096) ? p : p - 4096;
		unsigned char *hi =
			mapped(p + BIG, 4096) ? p + BIG : p + BIG + 4096;

		/* Both neighbours taken: nothing wider to try here. */
		if (lo == p && hi == p + BIG)
			fprintf(stderr, "shim_engine: no room around a region "
					"for a wider munmap\n");
		CHECK(munmap(lo, (size_t)(hi - lo)) == 0);
	}
	CHECK(!is_region(p) && !mapped(p, MIB));
	/* A page not on a page boundary is refused, as the kernel does. */
	p = kv_mmap(BIG, 6);
	if (!p)
		return;
	errno = 0;
	CHECK(munmap(p + 100, MIB) == -1 && errno == EINVAL);
	CHECK(same(p, BIG, 6));
	/* A last page cut off, the rest unmapped in one call. */
	CHECK(munmap(p + BIG - 4096, 4096) == 0);
	CHECK(intact(p, 0, BIG - 4096, 6));
	CHECK(munmap(p, BIG - 4096) == 0 && !is_region(p));
}

/* mremap of a region: grown, shrunk, moved; its bytes go with it. */
static void engine_remap(void)
{
	unsigned char *p = kv_mmap(BIG, 9), *q, *r;

	if (!p)
		return;
	/* Shrink in place. */
	q = mremap(p, BIG, BIG - 2 * MIB, 0);
	CHECK(q == p && REGION(q) && region_len(q, BIG - 2 * MIB));
	CHECK(!mapped(p + BIG - 2 * MIB, MIB));
	CHECK(intact(q, 0, BIG - 2 * MIB, 9));
	/* Grow, moving if it must: the bytes come along, the rest reads 0. */
	q = mremap(p, BIG - 2 * MIB, 4 * BIG, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED && REGION(q) && region_len(q, 4 * BIG));
	if (q == MAP_FAILED)
		return;
	if (q != p)
		CHECK(!is_region(p) && segfaults(p));
	CHECK(intact(q, 0, BIG - 2 * MIB, 9));
	CHECK(q[4 * BIG - 1] == 0 && q[BIG] == 0);
	q[4 * BIG - 1] = 1;
	/* Moved to a place of the caller's choosing. */
	r = mmap(NULL, 4 * BIG, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(r != MAP_FAILED);
	if (r == MAP_FAILED)
		return;
	CHECK(mremap(q, 4 * BIG, 4 * BIG, MREMAP_MAYMOVE | MREMAP_FIXED, r) ==
	      r);
	CHECK(REGION(r) && !is_region(q));
	CHECK(r[4 * BIG - 1] == 1 && r[0] == (unsigned char)9);
	/*
	 * A middle part of a region moved over another part of it: what is
	 * left on every side stays a region with its bytes.
	 */
	r[BIG] = 0x5a;
	q = mremap(r + BIG, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED,
		   r + 3 * BIG);
	CHECK(q == r + 3 * BIG && q[0] == 0x5a && REGION(q));
	CHECK(REGION(r) && REGION(r + BIG + MIB) && REGION(r + 3 * BIG + MIB));
	CHECK(segfaults(r + BIG) && intact(r, 0, BIG - 2 * MIB, 9) &&
	      r[4 * BIG - 1] == 1);
	/* Growing in place without MAYMOVE fails or succeeds as the kernel's. */
	errno = 0;
	q = mremap(r, BIG, 2 * BIG, 0);
	CHECK(q == MAP_FAILED && errno == ENOMEM);
	CHECK(munmap(r, 4 * BIG) == 0);
	CHECK(!is_region(r) && !is_region(r + BIG + MIB) &&
	      !is_region(r + 3 * BIG));
}

/* Run with VKV_SHIM_LIMIT=20M. */
static void engine_limit(void)
{
	void *a = malloc(12 * MIB), *b, *c = NULL;

	CHECK(a && is_region(a));
	errno = 0;
	b = malloc(12 * MIB);
	CHECK(!b && errno == ENOMEM);
	CHECK(posix_memalign(&c, 64, 12 * MIB) == ENOMEM);
	errno = 0;
	CHECK(calloc(1, 12 * MIB) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(mmap(NULL, 12 * MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
	      errno == ENOMEM);
	/* Under the threshold the real allocator is not limited. */
	b = malloc(512 * 1024);
	CHECK(b && !is_region(b));
	free(b);
	free(a);
	b = malloc(12 * MIB);
	CHECK(b && is_region(b));
	free(b);
}

static void engine_off(void)
{
	void *a = malloc(BIG);

	CHECK(a && !is_region(a));
	free(a);
}

/*
 * For suspend/resume from outside: a KV buffer with known bytes, its
 * address on stdout; then, per line on stdin, "check" (bytes intact at the
 * same address) or "zero" (dropped by a discard), answered "ok" / "bad".
 */
/* Run with shim_early.so preloaded after the shim. */
static void engine_boot(void)
{
	int (*check)(void);

	*(void **)&check = dlsym(RTLD_DEFAULT, "shim_early_check");
	CHECK(check != NULL);
	if (check)
		CHECK(check() == 0);
	engine_llama();
}

static void engine_serve(void)
{
	void *kv = NULL;
	char line[64];
	size_t len;

	CHECK(posix_memalign(&kv, 64, 32 * MIB) == 0 && is_region(kv));
	memset(kv, 0, 32 * MIB);
	fill(kv, 32 * MIB, 42);
	printf("ready %p\n", kv);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int ok = query && query(kv, &len) && len >= 32 * MIB;

		if (!strncmp(line, "check", 5))
			ok = ok && same(kv, 32 * MIB, 42);
		else if (!strncmp(line, "zero", 4))
			for (size_t i = 0; i < 32 * MIB; i += 4096)
				ok = ok && !((unsigned char *)kv)[i];
		else
			break;
		printf("%s %p\n", ok ? "ok" : "bad", kv);
		fflush(stdout);
		if (!strncmp(line, "zero", 4))
			fill(kv, 32 * MIB, 42);
	}
	free(kv);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} engines[] = {
		{"llama", engine_llama},     {"calloc", engine_calloc},
		{"torture", engine_torture}, {"match", engine_match},
		{"tag", engine_tag},	     {"mmap", engine_mmap},
		{"limit", engine_limit},     {"off", engine_off},
		{"serve", engine_serve},     {"boot", engine_boot},
		{"unmap", engine_unmap},     {"remap", engine_remap},
	};

	faults = getenv("SHIM_ENGINE_FAULTS") &&
		 !strcmp(getenv("SHIM_ENGINE_FAULTS"), "1");
	*(void **)&query = dlsym(RTLD_DEFAULT, "vkv_shim_query");
	*(void **)&tag_begin = dlsym(RTLD_DEFAULT, "vkv_shim_region_begin");
	*(void **)&tag_end = dlsym(RTLD_DEFAULT, "vkv_shim_region_end");
	for (size_t i = 0; argc == 2 && i < sizeof(engines) / sizeof(*engines);
	     i++)
		if (!strcmp(argv[1], engines[i].name)) {
			engines[i].fn();
			return failures ? 1 : 0;
		}
	fprintf(stderr, "usage: shim_engine ENGINE\n");
	return 2;
}
