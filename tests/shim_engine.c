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
	CHECK(is_region(kv));
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
	CHECK(is_region(kv) && (uintptr_t)kv % (1 << 21) == 0);
	free(kv);
	kv = aligned_alloc(4096, BIG);
	CHECK(kv && is_region(kv));
	free(kv);
	kv = memalign(64, BIG);
	CHECK(kv && is_region(kv));
	free(kv);
}

/* A small C engine: calloc'd K and V, which must read as zeroes. */
static void engine_calloc(void)
{
	unsigned char *k, *v;

	k = malloc(BIG);
	CHECK(is_region(k));
	memset(k, 0xff, BIG);
	free(k);
	k = calloc(BIG / 4, 4);
	v = calloc(1, BIG);
	CHECK(k && v && is_region(k) && is_region(v));
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

	CHECK(is_region(a) && !is_region(b));
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
	CHECK(is_region(a) && !is_region(b) && !is_region(c));
	free(a);
	free(b);
	free(c);
}

static void engine_mmap(void)
{
	unsigned char *p, *s;

	p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	CHECK(p != MAP_FAILED && is_region(p));
	fill(p, BIG, 3);
	CHECK(same(p, BIG, 3));
	CHECK(munmap(p, BIG) == 0);
	CHECK(!is_region(p));
	/* A length that is not a whole number of pages, as mmap allows. */
	p = mmap(NULL, BIG + 100, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED && is_region(p));
	p[BIG + 99] = 1;
	CHECK(munmap(p, BIG + 100) == 0);
	CHECK(!is_region(p));
	s = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	CHECK(s != MAP_FAILED && !is_region(s));
	CHECK(munmap(s, BIG) == 0);
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
	};

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
