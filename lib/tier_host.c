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
	size_t nfree_res; /* of nfree, resident */
	size_t hint; /* a word of the bitmaps to look at first */
	uint64_t *used; /* bit per chunk: handed out */
	uint64_t *res; /* bit per chunk: resident (always, unbacked) */
	bool locked; /* mlock succeeded */
	bool own; /* mapped by us (not by ops.slab_alloc) */
};

struct vkv_host_tier {
	struct vkv_config cfg;
	bool have_cfg;
	size_t chunk;
	size_t max_chunks; /* from the budget; 0 = no cap */
	size_t slab_chunks; /* per slab, at most */
	size_t align;
	int node; /* -1: no placement */
	struct vkv_host_tier_ops ops;
	bool backed; /* ops has a backing store */

	pthread_mutex_t lock;
	struct host_slab *slabs; /* sorted by base */
	size_t nslabs, slabs_cap;
	size_t slab_hint;
	size_t chunks_in_slabs;
	size_t resident; /* chunks */
	bool said_unlocked, said_mbind;

	struct vkvi_host_tier_counters cnt; /* atomics */
};

static const struct vkv_config *tcfg(const struct vkv_host_tier *t)
{
	return t->have_cfg ? &t->cfg : NULL;
}

int vkvi_host_tier_open(const struct vkv_config *cfg, size_t chunk,
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
	vkvi_log(tcfg(t), VKV_LOG_DEBUG,
		 "host tier: chunk %zu, budget %zu, slab %zu, node %d", chunk,
		 budget, t->slab_chunks * chunk, node);
	*out = t;
	return 0;
}

int vkvi_host_tier_set_ops(struct vkv_host_tier *t,
			   const struct vkv_host_tier_ops *ops)
{
	int ret = 0;

	if (!t || !ops || !ops->slab_alloc != !ops->slab_free ||
	    !ops->slab_register != !ops->slab_unregister ||
	    !ops->page_out != !ops->page_in || !ops->page_out != !ops->discard)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (t->nslabs) {
		ret = -EBUSY;
	} else {
		t->ops = *ops;
		t->backed = ops->page_out != NULL;
	}
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
				   (8 * sizeof(unsigned long))] = {0};
		const size_t bits = 8 * sizeof(unsigned long);

		if ((size_t)t->node < sizeof(mask) * 8) {
			mask[t->node / bits] |= 1ul << (t->node % bits);
			if (mbind(a, len, MPOL_PREFERRED, mask,
				  sizeof(mask) * 8, 0) &&
			    !t->said_mbind) {
				t->said_mbind = true;
				vkvi_log(tcfg(t), VKV_LOG_WARN,
					 "host tier: mbind to node %d failed "
					 "(%s); "
					 "memory is not placed",
					 t->node, strerror(errno));
			}
		}
	}

	*locked = false;
	if (mlock(a, len) == 0) {
		*locked = true;
	} else if (errno == EPERM || errno == ENOMEM || errno == EAGAIN) {
		if (!t->said_unlocked) {
			t->said_unlocked = true;
			vkvi_log(tcfg(t), VKV_LOG_WARN,
				 "host tier: mlock refused (%s; "
				 "RLIMIT_MEMLOCK?); "
				 "using unlocked memory",
				 strerror(errno));
		}
	} else {
		int e = errno;

		munmap(a, len);
		return -e;
	}
	*base = a;
	return 0;
}

static bool bit(const uint64_t *m, size_t i)
{
	return (m[i / 64] >> (i % 64)) & 1;
}

static void set_bit(uint64_t *m, size_t i, bool v)
{
	if (v)
		m[i / 64] |= 1ull << (i % 64);
	else
		m[i / 64] &= ~(1ull << (i % 64));
}

static char *chunk_at(const struct vkv_host_tier *t, const struct host_slab *s,
		      size_t i)
{
	return s->base + i * t->chunk;
}

/* Chunk @i of @s gains (@in) or loses its memory; lock held. */
static void mark_resident(struct vkv_host_tier *t, struct host_slab *s,
			  size_t i, bool in)
{
	set_bit(s->res, i, in);
	if (in) {
		t->resident++;
		vkv_add(&t->cnt.resident_bytes, t->chunk);
	} else {
		t->resident--;
		vkv_sub(&t->cnt.resident_bytes, t->chunk);
	}
}

/* With a store, registration follows residency chunk by chunk. */
static int chunk_register(struct vkv_host_tier *t, struct host_slab *s,
			  size_t i)
{
	if (!t->ops.slab_register)
		return 0;
	return t->ops.slab_register(t->ops.arg, chunk_at(t, s, i), t->chunk);
}

static void chunk_unregister(struct vkv_host_tier *t, struct host_slab *s,
			     size_t i)
{
	if (t->ops.slab_unregister)
		t->ops.slab_unregister(t->ops.arg, chunk_at(t, s, i), t->chunk);
}

static void slab_unmap(struct vkv_host_tier *t, struct host_slab *s, size_t len)
{
	if (s->own)
		munmap(s->base, len); /* also unlocks */
	else
		t->ops.slab_free(t->ops.arg, s->base, len);
}

static void slab_release(struct vkv_host_tier *t, struct host_slab *s)
{
	size_t len = s->nchunks * t->chunk;

	for (size_t i = 0; i < s->nchunks; i++) {
		if (t->backed && bit(s->res, i))
			chunk_unregister(t, s, i);
		if (bit(s->res, i))
			mark_resident(t, s, i, false);
		else if (bit(s->used, i))
			vkv_sub(&t->cnt.paged_bytes, t->chunk);
	}
	if (!t->backed && t->ops.slab_unregister)
		t->ops.slab_unregister(t->ops.arg, s->base, len);
	slab_unmap(t, s, len);
	vkv_sub(&t->cnt.slab_bytes, len);
	vkv_sub(&t->cnt.slabs, 1);
	if (s->locked)
		vkv_sub(&t->cnt.locked_bytes, len);
	free(s->used);
	free(s->res);
}

/* Chunks the budget still allows to be resident. */
static size_t room(const struct vkv_host_tier *t)
{
	if (!t->max_chunks)
		return SIZE_MAX;
	return t->max_chunks > t->resident ? t->max_chunks - t->resident : 0;
}

/*
 * Register a new slab: whole, or (with a store) its first @keep chunks one
 * by one after the rest were discarded. Undone on failure.
 */
static int slab_admit(struct vkv_host_tier *t, struct host_slab *s, size_t keep)
{
	size_t len = s->nchunks * t->chunk, i;
	int ret = 0;

	if (!t->backed)
		return t->ops.slab_register
			       ? t->ops.slab_register(t->ops.arg, s->base, len)
			       : 0;
	if (keep < s->nchunks)
		ret = t->ops.discard(t->ops.arg, s->base, keep * t->chunk,
				     len - keep * t->chunk);
	for (i = 0; i < keep && !ret; i++)
		ret = chunk_register(t, s, i);
	if (ret)
		while (i-- > 1)
			chunk_unregister(t, s, i - 1);
	return ret;
}

/* A new slab, inserted in order; its index, or a negative errno. */
static long slab_new(struct vkv_host_tier *t)
{
	size_t n = t->slab_chunks, keep, len, i;
	struct host_slab s = {0};
	void *base = NULL;
	int ret;

	keep = room(t);
	if (!keep)
		return -ENOMEM;
	/* Unbacked, every chunk of a slab is resident: size it to fit. */
	if (!t->backed && n > keep)
		n = keep;
	if (keep > n)
		keep = n;
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
	s.res = calloc((n + 63) / 64, sizeof(uint64_t));
	if (!s.used || !s.res) {
		free(s.used);
		free(s.res);
		return -ENOMEM;
	}
	if (t->ops.slab_alloc) {
		ret = t->ops.slab_alloc(t->ops.arg, len, t->node, &base);
		if (!ret && (!base || ((uintptr_t)base & 4095)))
			ret = -EINVAL;
	} else {
		ret = default_slab_alloc(t, len, &base, &s.locked);
		s.own = true;
	}
	s.base = base;
	s.nchunks = n;
	if (!ret) {
		ret = slab_admit(t, &s, keep);
		if (ret)
			slab_unmap(t, &s, len);
	}
	if (ret) {
		free(s.used);
		free(s.res);
		return ret > 0 ? -ret : ret;
	}
	s.nfree = n;
	s.nfree_res = keep;
	for (i = 0; i < t->nslabs && t->slabs[i].base < s.base; i++)
		;
	memmove(&t->slabs[i + 1], &t->slabs[i],
		(t->nslabs - i) * sizeof(*t->slabs));
	t->slabs[i] = s;
	for (size_t k = 0; k < keep; k++)
		mark_resident(t, &t->slabs[i], k, true);
	t->nslabs++;
	t->chunks_in_slabs += n;
	vkv_add(&t->cnt.slab_bytes, len);
	vkv_add(&t->cnt.slabs, 1);
	if (s.locked)
		vkv_add(&t->cnt.locked_bytes, len);
	return (long)i;
}

/* Hand out a free chunk of @s that is (@resident) or is not in memory. */
static size_t take(struct host_slab *s, bool resident)
{
	size_t words = (s->nchunks + 63) / 64;

	for (size_t w = 0; w < words; w++) {
		size_t k = (s->hint + w) % words;
		uint64_t m = ~s->used[k] & (resident ? s->res[k] : ~s->res[k]);

		if (k == words - 1 && s->nchunks % 64)
			m &= (1ull << (s->nchunks % 64)) - 1;
		if (m) {
			size_t i = k * 64 + (size_t)__builtin_ctzll(m);

			set_bit(s->used, i, true);
			s->hint = k;
			s->nfree--;
			if (resident)
				s->nfree_res--;
			return i;
		}
	}
	return SIZE_MAX; /* the counts say otherwise: not reached */
}

/* A slab with a free chunk of the kind asked for, or NULL. */
static struct host_slab *slab_with_free(struct vkv_host_tier *t, bool resident)
{
	for (size_t i = 0; i < t->nslabs; i++) {
		size_t k = (t->slab_hint + i) % t->nslabs;
		struct host_slab *s = &t->slabs[k];

		if (resident ? s->nfree_res != 0 : s->nfree > s->nfree_res) {
			t->slab_hint = k;
			return s;
		}
	}
	return NULL;
}

/*
 * A free chunk: one in memory; else (with a store, within the budget) one
 * that was discarded, which becomes resident; else from a new slab.
 */
static int alloc_locked(struct vkv_host_tier *t, void **chunk)
{
	struct host_slab *s = slab_with_free(t, true);
	size_t i;
	long idx;
	int ret;

	if (!s && t->backed && room(t)) {
		s = slab_with_free(t, false);
		if (s) {
			i = take(s, false);
			ret = chunk_register(t, s, i);
			if (ret) {
				set_bit(s->used, i, false);
				s->nfree++;
				return ret;
			}
			mark_resident(t, s, i, true);
			*chunk = chunk_at(t, s, i);
			return 0;
		}
	}
	if (!s) {
		idx = slab_new(t);
		if (idx < 0)
			return (int)idx;
		s = &t->slabs[idx];
		t->slab_hint = (size_t)idx;
	}
	i = take(s, true);
	*chunk = chunk_at(t, s, i);
	return 0;
}

int vkvi_host_tier_alloc(struct vkv_host_tier *t, void **chunk)
{
	int ret;

	if (!t || !chunk)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	vkv_add(&t->cnt.allocs, 1);
	ret = alloc_locked(t, chunk);
	if (ret) {
		vkv_add(&t->cnt.enomem, 1);
	} else {
		vkv_add(&t->cnt.used_chunks, 1);
		vkv_add(&t->cnt.used_bytes, t->chunk);
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
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

/* The slab and index of an allocated chunk, or NULL. Lock held. */
static struct host_slab *chunk_find(struct vkv_host_tier *t, const void *p,
				    size_t *idx)
{
	struct host_slab *s = slab_of(t, p);
	size_t off;

	if (!s)
		return NULL;
	off = (size_t)((const char *)p - s->base);
	*idx = off / t->chunk;
	if (off % t->chunk || !bit(s->used, *idx))
		return NULL;
	return s;
}

int vkvi_host_tier_free(struct vkv_host_tier *t, void *chunk)
{
	struct host_slab *s;
	size_t i;
	int ret = -EINVAL;

	if (!t || !chunk)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	s = chunk_find(t, chunk, &i);
	if (s) {
		set_bit(s->used, i, false);
		s->nfree++;
		if (bit(s->res, i)) {
			s->nfree_res++;
		} else {
			/* Its data in the store is garbage now; a failed
			 * discard only costs a read when it is reused. */
			t->ops.discard(t->ops.arg, s->base, i * t->chunk,
				       t->chunk);
			vkv_sub(&t->cnt.paged_bytes, t->chunk);
			vkv_add(&t->cnt.discards, 1);
		}
		vkv_add(&t->cnt.frees, 1);
		vkv_sub(&t->cnt.used_chunks, 1);
		vkv_sub(&t->cnt.used_bytes, t->chunk);
		ret = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* -EINVAL unless every chunk is allocated; lock held. */
static int chunks_check(struct vkv_host_tier *t, void *const *chunks, size_t n)
{
	size_t i;

	if (n && !chunks)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (!chunk_find(t, chunks[k], &i))
			return -EINVAL;
	return 0;
}

/*
 * The run of chunks starting at @chunks[k]: consecutive in one slab, and
 * all resident or all not, so one call to the store covers it. Its length;
 * its slab and first index into *@sp and *@first.
 */
static size_t run_of(struct vkv_host_tier *t, void *const *chunks, size_t n,
		     size_t k, struct host_slab **sp, size_t *first)
{
	struct host_slab *s = chunk_find(t, chunks[k], first);
	size_t len = 1;

	while (k + len < n &&
	       (char *)chunks[k + len] == (char *)chunks[k] + len * t->chunk &&
	       *first + len < s->nchunks &&
	       bit(s->res, *first + len) == bit(s->res, *first))
		len++;
	*sp = s;
	return len;
}

int vkvi_host_tier_page_out(struct vkv_host_tier *t, void *const *chunks,
			    size_t n)
{
	int ret;

	if (!t)
		return -EINVAL;
	if (!t->backed)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->lock);
	ret = chunks_check(t, chunks, n);
	for (size_t k = 0; k < n && !ret;) {
		struct host_slab *s;
		size_t first, len = run_of(t, chunks, n, k, &s, &first);

		k += len;
		if (!bit(s->res, first))
			continue;
		for (size_t i = first; i < first + len; i++)
			chunk_unregister(t, s, i);
		ret = t->ops.page_out(t->ops.arg, s->base, first * t->chunk,
				      len * t->chunk);
		for (size_t i = first; i < first + len; i++) {
			if (ret) {
				chunk_register(t, s, i);
				continue;
			}
			mark_resident(t, s, i, false);
			vkv_add(&t->cnt.paged_bytes, t->chunk);
			vkv_add(&t->cnt.page_outs, 1);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret > 0 ? -ret : ret;
}

/*
 * Give up to @want free resident chunks' memory back to the store, for
 * room under the budget; lock held. Memory is not interchangeable between
 * addresses, so this is how a paged-out chunk gets room that a free one
 * holds.
 */
static void drop_free(struct vkv_host_tier *t, size_t want)
{
	for (size_t k = 0; k < t->nslabs && want; k++) {
		struct host_slab *s = &t->slabs[k];

		for (size_t i = 0; i < s->nchunks && want && s->nfree_res;
		     i++) {
			if (bit(s->used, i) || !bit(s->res, i))
				continue;
			chunk_unregister(t, s, i);
			if (t->ops.discard(t->ops.arg, s->base, i * t->chunk,
					   t->chunk)) {
				chunk_register(t, s, i);
				return;
			}
			mark_resident(t, s, i, false);
			s->nfree_res--;
			vkv_add(&t->cnt.discards, 1);
			want--;
		}
	}
}

int vkvi_host_tier_page_in(struct vkv_host_tier *t, void *const *chunks,
			   size_t n)
{
	size_t out = 0, i;
	int ret;

	if (!t)
		return -EINVAL;
	if (!t->backed)
		return 0;
	pthread_mutex_lock(&t->lock);
	ret = chunks_check(t, chunks, n);
	for (size_t k = 0; k < n && !ret; k++) {
		struct host_slab *s = chunk_find(t, chunks[k], &i);

		out += !bit(s->res, i);
	}
	if (!ret && out > room(t))
		drop_free(t, out - room(t));
	if (!ret && out > room(t))
		ret = -ENOMEM;
	for (size_t k = 0; k < n && !ret;) {
		struct host_slab *s;
		size_t first, len = run_of(t, chunks, n, k, &s, &first);

		k += len;
		ret = t->ops.page_in(t->ops.arg, s->base, first * t->chunk,
				     len * t->chunk);
		if (ret || bit(s->res, first))
			continue;
		for (i = first; i < first + len; i++) {
			mark_resident(t, s, i, true);
			vkv_sub(&t->cnt.paged_bytes, t->chunk);
			vkv_add(&t->cnt.page_ins, 1);
			if (!ret)
				ret = chunk_register(t, s, i);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret > 0 ? -ret : ret;
}

size_t vkvi_host_tier_trim(struct vkv_host_tier *t)
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

void vkvi_host_tier_counters(const struct vkv_host_tier *t,
			     struct vkvi_host_tier_counters *c)
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

size_t vkvi_host_tier_slab_size(const struct vkv_host_tier *t)
{
	return t ? t->slab_chunks * t->chunk : 0;
}

int vkvi_host_tier_node(const struct vkv_host_tier *t)
{
	return t ? t->node : -1;
}

void vkvi_host_tier_close(struct vkv_host_tier *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nslabs; i++)
		slab_release(t, &t->slabs[i]);
	free(t->slabs);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
