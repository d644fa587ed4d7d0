/* SPDX-License-Identifier: MIT */
/*
 * tier_host.c - host tier chunks from large NUMA-placed, pinned slabs.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "tier_host.h"

#define HOST_SLAB_DEFAULT (64 * VKV_MIB)
#define HOST_SLAB_ALIGN_MAX (2 * VKV_MIB)

struct host_slab {
	char *base;
	size_t nchunks;
	size_t nfree;
	size_t hint;       /* a word of @used to look at first */
	uint64_t *used;    /* bit per chunk: handed out */
	bool locked;       /* mlock succeeded */
	bool own;          /* mapped by us (not by ops.slab_alloc) */
};

struct vkv_host_tier {
	struct vkv_config cfg;
	bool have_cfg;
	size_t chunk;
	size_t max_chunks;  /* from the budget; 0 = no cap */
	size_t slab_chunks; /* per slab, at most */
	size_t align;
	int node;           /* -1: no placement */
	struct vkv_host_tier_ops ops;

	pthread_mutex_t lock;
	struct host_slab *slabs; /* sorted by base */
	size_t nslabs, slabs_cap;
	size_t slab_hint;
	size_t chunks_in_slabs;
	bool said_unlocked, said_mbind;

	struct vkv_host_tier_counters cnt; /* atomics */
};

static const struct vkv_config *tcfg(const struct vkv_host_tier *t)
{
	return t->have_cfg ? &t->cfg : NULL;
}

int vkv_host_tier_open(const struct vkv_config *cfg, size_t chunk,
		       size_t budget, int node, struct vkv_host_tier **out)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct vkv_host_tier *t;
	size_t slab;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (pg <= 0)
		pg = 4096;
	if (!chunk || chunk % (size_t)pg || chunk > (SIZE_MAX >> 2))
		return -EINVAL;
	if (budget && budget < chunk)
		return -EINVAL;
	if (node < -1)
		return -EINVAL;
	if (numa_available() < 0) {
		if (node > 0)
			return -EINVAL;
		node = -1;
	} else if (node > numa_max_node()) {
		return -EINVAL;
	} else if (node == -1) {
		int cpu = sched_getcpu();

		node = cpu >= 0 ? numa_node_of_cpu(cpu) : -1;
		if (node < 0)
			node = -1;
	}

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (cfg) {
		t->cfg = *cfg;
		t->have_cfg = true;
	}
	t->chunk = chunk;
	t->max_chunks = budget ? budget / chunk : 0;
	slab = HOST_SLAB_DEFAULT > chunk ? HOST_SLAB_DEFAULT : chunk;
	t->slab_chunks = slab / chunk;
	if (t->max_chunks && t->slab_chunks > t->max_chunks)
		t->slab_chunks = t->max_chunks;
	/* Largest power of two dividing the chunk, at most 2 MiB. */
	t->align = chunk & (~chunk + 1);
	if (t->align > HOST_SLAB_ALIGN_MAX)
		t->align = HOST_SLAB_ALIGN_MAX;
	t->node = node;
	pthread_mutex_init(&t->lock, NULL);
	t->cnt.chunk = chunk;
	t->cnt.budget = t->max_chunks * chunk;
	vkv_log(tcfg(t), VKV_LOG_DEBUG,
		"host tier: chunk %zu, budget %zu, slab %zu, node %d", chunk,
		budget, t->slab_chunks * chunk, node);
	*out = t;
	return 0;
}

int vkv_host_tier_set_ops(struct vkv_host_tier *t,
			  const struct vkv_host_tier_ops *ops)
{
	int ret = 0;

	if (!t || !ops || !ops->slab_alloc != !ops->slab_free ||
	    !ops->slab_register != !ops->slab_unregister)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (t->nslabs)
		ret = -EBUSY;
	else
		t->ops = *ops;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* mmap aligned anonymous memory, placed and (if allowed) locked. */
static int default_slab_alloc(struct vkv_host_tier *t, size_t len, void **base,
			      bool *locked)
{
	size_t extra = t->align > 4096 ? t->align : 0;
	char *p, *a;

	p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	a = (char *)(((uintptr_t)p + extra) & ~(uintptr_t)(t->align - 1));
	if (!extra)
		a = p;
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + len + extra > a + len)
		munmap(a + len, (size_t)(p + len + extra - (a + len)));
	if (t->align >= HOST_SLAB_ALIGN_MAX)
		madvise(a, len, MADV_HUGEPAGE);

	if (t->node >= 0) {
		unsigned long mask[(1024 + 8 * sizeof(unsigned long) - 1) /
				   (8 * sizeof(unsigned long))] = { 0 };
		const size_t bits = 8 * sizeof(unsigned long);

		if ((size_t)t->node < sizeof(mask) * 8) {
			mask[t->node / bits] |= 1ul << (t->node % bits);
			if (mbind(a, len, MPOL_PREFERRED, mask, sizeof(mask) * 8,
				  0) && !t->said_mbind) {
				t->said_mbind = true;
				vkv_log(tcfg(t), VKV_LOG_WARN,
					"host tier: mbind to node %d failed (%s); "
					"memory is not placed", t->node,
					strerror(errno));
			}
		}
	}

	*locked = false;
	if (mlock(a, len) == 0) {
		*locked = true;
	} else if (errno == EPERM || errno == ENOMEM || errno == EAGAIN) {
		if (!t->said_unlocked) {
			t->said_unlocked = true;
			vkv_log(tcfg(t), VKV_LOG_WARN,
				"host tier: mlock refused (%s; RLIMIT_MEMLOCK?); "
				"using unlocked memory", strerror(errno));
		}
	} else {
		int e = errno;

		munmap(a, len);
		return -e;
	}
	*base = a;
	return 0;
}

static void slab_release(struct vkv_host_tier *t, struct host_slab *s)
{
	size_t len = s->nchunks * t->chunk;

	if (t->ops.slab_unregister)
		t->ops.slab_unregister(t->ops.arg, s->base, len);
	if (s->own)
		munmap(s->base, len); /* also unlocks */
	else
		t->ops.slab_free(t->ops.arg, s->base, len);
	vkv_sub(&t->cnt.slab_bytes, len);
	vkv_sub(&t->cnt.slabs, 1);
	if (s->locked)
		vkv_sub(&t->cnt.locked_bytes, len);
	free(s->used);
}

/* A new slab, inserted in order; its index, or a negative errno. */
static long slab_new(struct vkv_host_tier *t)
{
	size_t n = t->slab_chunks, len, i;
	struct host_slab s = { 0 };
	void *base = NULL;
	int ret;

	if (t->max_chunks && t->chunks_in_slabs + n > t->max_chunks)
		n = t->max_chunks - t->chunks_in_slabs;
	if (!n)
		return -ENOMEM;
	len = n * t->chunk;
	if (t->nslabs == t->slabs_cap) {
		size_t cap = t->slabs_cap ? 2 * t->slabs_cap : 8;
		struct host_slab *ns = realloc(t->slabs, cap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		t->slabs = ns;
		t->slabs_cap = cap;
	}
	s.used = calloc((n + 63) / 64, sizeof(uint64_t));
	if (!s.used)
		return -ENOMEM;
	if (t->ops.slab_alloc) {
		ret = t->ops.slab_alloc(t->ops.arg, len, t->node, &base);
		if (!ret && (!base || ((uintptr_t)base & 4095)))
			ret = -EINVAL;
	} else {
		ret = default_slab_alloc(t, len, &base, &s.locked);
		s.own = true;
	}
	if (ret) {
		free(s.used);
		return ret > 0 ? -ret : ret;
	}
	if (t->ops.slab_register) {
		ret = t->ops.slab_register(t->ops.arg, base, len);
		if (ret) {
			if (s.own)
				munmap(base, len);
			else
				t->ops.slab_free(t->ops.arg, base, len);
			free(s.used);
			return ret > 0 ? -ret : ret;
		}
	}
	s.base = base;
	s.nchunks = n;
	s.nfree = n;
	for (i = 0; i < t->nslabs && t->slabs[i].base < s.base; i++)
		;
	memmove(&t->slabs[i + 1], &t->slabs[i],
		(t->nslabs - i) * sizeof(*t->slabs));
	t->slabs[i] = s;
	t->nslabs++;
	t->chunks_in_slabs += n;
	vkv_add(&t->cnt.slab_bytes, len);
	vkv_add(&t->cnt.slabs, 1);
	if (s.locked)
		vkv_add(&t->cnt.locked_bytes, len);
	return (long)i;
}

int vkv_host_tier_alloc(struct vkv_host_tier *t, void **chunk)
{
	struct host_slab *s = NULL;
	size_t i, w, words;
	long idx;

	if (!t || !chunk)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	vkv_add(&t->cnt.allocs, 1);
	if (t->max_chunks && vkv_load(&t->cnt.used_chunks) >= t->max_chunks) {
		vkv_add(&t->cnt.enomem, 1);
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	for (i = 0; i < t->nslabs; i++) {
		size_t k = (t->slab_hint + i) % t->nslabs;

		if (t->slabs[k].nfree) {
			s = &t->slabs[k];
			t->slab_hint = k;
			break;
		}
	}
	if (!s) {
		idx = slab_new(t);
		if (idx < 0) {
			vkv_add(&t->cnt.enomem, 1);
			pthread_mutex_unlock(&t->lock);
			return (int)idx;
		}
		s = &t->slabs[idx];
		t->slab_hint = (size_t)idx;
	}
	words = (s->nchunks + 63) / 64;
	for (w = 0; w < words; w++) {
		size_t k = (s->hint + w) % words;
		uint64_t freebits = ~s->used[k];

		if (k == words - 1 && s->nchunks % 64)
			freebits &= (1ull << (s->nchunks % 64)) - 1;
		if (freebits) {
			unsigned b = (unsigned)__builtin_ctzll(freebits);

			s->used[k] |= 1ull << b;
			s->hint = k;
			s->nfree--;
			*chunk = s->base + (k * 64 + b) * t->chunk;
			break;
		}
	}
	vkv_add(&t->cnt.used_chunks, 1);
	vkv_add(&t->cnt.used_bytes, t->chunk);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* The slab holding @p, or NULL. Lock held. */
static struct host_slab *slab_of(struct vkv_host_tier *t, const char *p)
{
	size_t lo = 0, hi = t->nslabs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct host_slab *s = &t->slabs[mid];

		if (p < s->base)
			hi = mid;
		else if (p >= s->base + s->nchunks * t->chunk)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

int vkv_host_tier_free(struct vkv_host_tier *t, void *chunk)
{
	struct host_slab *s;
	size_t off, i;
	int ret = -EINVAL;

	if (!t || !chunk)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	s = slab_of(t, chunk);
	if (s) {
		off = (size_t)((char *)chunk - s->base);
		i = off / t->chunk;
		if (off % t->chunk == 0 && (s->used[i / 64] >> (i % 64)) & 1) {
			s->used[i / 64] &= ~(1ull << (i % 64));
			s->nfree++;
			vkv_add(&t->cnt.frees, 1);
			vkv_sub(&t->cnt.used_chunks, 1);
			vkv_sub(&t->cnt.used_bytes, t->chunk);
			ret = 0;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

size_t vkv_host_tier_trim(struct vkv_host_tier *t)
{
	size_t freed = 0, i = 0;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	while (i < t->nslabs) {
		struct host_slab *s = &t->slabs[i];

		if (s->nfree == s->nchunks) {
			freed += s->nchunks * t->chunk;
			t->chunks_in_slabs -= s->nchunks;
			slab_release(t, s);
			memmove(s, s + 1, (t->nslabs - i - 1) * sizeof(*s));
			t->nslabs--;
		} else {
			i++;
		}
	}
	t->slab_hint = 0;
	pthread_mutex_unlock(&t->lock);
	return freed;
}

void vkv_host_tier_counters(const struct vkv_host_tier *t,
			    struct vkv_host_tier_counters *c)
{
	const uint64_t *src;
	uint64_t *dst;

	if (!t || !c)
		return;
	src = (const uint64_t *)&t->cnt;
	dst = (uint64_t *)c;
	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		dst[i] = vkv_load(&src[i]);
}

size_t vkv_host_tier_slab_size(const struct vkv_host_tier *t)
{
	return t ? t->slab_chunks * t->chunk : 0;
}

int vkv_host_tier_node(const struct vkv_host_tier *t)
{
	return t ? t->node : -1;
}

void vkv_host_tier_close(struct vkv_host_tier *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nslabs; i++)
		slab_release(t, &t->slabs[i]);
	free(t->slabs);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
