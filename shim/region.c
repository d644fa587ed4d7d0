/* SPDX-License-Identifier: MIT */
/*
 * The registry of vkv-backed regions: an open-addressing table keyed by the
 * address handed out, in memory the shim maps itself (the allocator it
 * stands in for cannot hold its own bookkeeping), plus the byte count the
 * limit applies to and the process's suspend state.
 *
 * Locking: `lock` protects the table, `bytes`, `suspended` and `mode`. It is
 * not held while a backing creates or destroys memory (which may take long),
 * only while the table changes; bytes are reserved before the creation so
 * the limit holds across threads. Suspend and resume run under it, so
 * regions neither come nor go meanwhile. fork() takes it in the prepare
 * handler.
 *
 * Suspend and resume close the run gate (gate.c) before they take `lock`:
 * calls that must not run while suspended are waited for and held.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "cuda.h"
#include "shim.h"

#define TOMB ((uintptr_t)1)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct shimi_region *table;
static size_t cap, used, tombs;
static uint64_t bytes, nregions, passthru;
static _Atomic uint64_t limit_bytes;
static _Atomic int limit_set;
static _Atomic int suspended;
static enum shimi_mode mode;
/* Written by suspend and resume while they hold the gate closed. */
static _Atomic int phase;

static const struct shimi_backing_ops *const ops[SHIMI_NKINDS] = {
	[SHIMI_KIND_ANON] = &shimi_anon_ops,
	[SHIMI_KIND_KMOD] = &shimi_kmod_ops,
	[SHIMI_KIND_CUDA] = &shimi_cuda_ops,
};

static size_t slot_of(uintptr_t addr)
{
	uint64_t h = (uint64_t)addr >> 12;

	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (cap - 1);
}

static struct shimi_region *lookup(uintptr_t addr)
{
	/* Those mark free and deleted slots: no region starts there. */
	if (!cap || addr <= TOMB)
		return NULL;
	for (size_t i = slot_of(addr), n = 0; n < cap;
	     i = (i + 1) & (cap - 1), n++) {
		if (table[i].addr == addr)
			return &table[i];
		if (!table[i].addr)
			return NULL;
	}
	return NULL;
}

static void put(const struct shimi_region *r)
{
	size_t i = slot_of(r->addr);

	while (table[i].addr > TOMB)
		i = (i + 1) & (cap - 1);
	if (table[i].addr == TOMB)
		tombs--;
	table[i] = *r;
	used++;
}

/* Room for one more entry; -ENOMEM if the table cannot grow. */
static int reserve_slot(void)
{
	struct shimi_region *old = table;
	size_t old_cap = cap, ncap = cap ? cap : 64;
	void *p;

	if (cap && (used + tombs + 1) * 4 <= cap * 3)
		return 0;
	while ((used + 1) * 2 > ncap)
		ncap *= 2;
	p = shimi_sys_mmap(NULL, ncap * sizeof(*table), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	table = p;
	cap = ncap;
	used = tombs = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].addr > TOMB)
			put(&old[i]);
	if (old)
		shimi_sys_munmap(old, old_cap * sizeof(*table));
	return 0;
}

static uint64_t limit_now(void)
{
	if (atomic_load(&limit_set))
		return atomic_load(&limit_bytes);
	return shimi_cfg.limit;
}

static int pick_kind(void)
{
	if (shimi_cfg.backing == SHIMI_BACKING_ANON)
		return SHIMI_KIND_ANON;
	if (shimi_cfg.backing == SHIMI_BACKING_KMOD || shimi_kmod_available())
		return SHIMI_KIND_KMOD;
	return SHIMI_KIND_ANON;
}

/* Device regions are not host memory: malloc's and munmap's paths skip them. */
static int is_host(int kind)
{
	return kind != SHIMI_KIND_CUDA;
}

/* Under lock, which orders widenings: see shimi_maybe_region(). */
static void widen_bounds(uintptr_t lo, uintptr_t hi)
{
	uintptr_t base = atomic_load(&shimi_fast.span_base),
		  len = atomic_load(&shimi_fast.span_len);

	if (len) {
		if (base < lo)
			lo = base;
		if (base + len > hi)
			hi = base + len;
	}
	if (lo == base && hi - lo == len)
		return;
	atomic_store_explicit(&shimi_fast.span_len, hi - lo,
			      memory_order_release);
	atomic_store_explicit(&shimi_fast.span_base, lo, memory_order_release);
}

int shimi_region_new(size_t size, size_t align, void **out)
{
	return shimi_region_new_kind(-1, size, align, out);
}

/* Under lock: would len more bytes go over the limit? */
static int over_limit(uint64_t len)
{
	uint64_t lim = limit_now(), cur = bytes + passthru;

	return lim && (len > lim || cur > lim - len);
}

int shimi_charge(uint64_t len)
{
	int err = 0;

	pthread_mutex_lock(&lock);
	if (over_limit(len))
		err = -ENOMEM;
	else
		passthru += len;
	pthread_mutex_unlock(&lock);
	return err;
}

void shimi_uncharge(uint64_t len)
{
	pthread_mutex_lock(&lock);
	passthru -= len < passthru ? len : passthru;
	pthread_mutex_unlock(&lock);
}

void shimi_counted(uint64_t *counted, uint64_t *limit)
{
	pthread_mutex_lock(&lock);
	*counted = bytes + passthru;
	*limit = limit_now();
	pthread_mutex_unlock(&lock);
}

int shimi_region_new_kind(int kind, size_t size, size_t align, void **out)
{
	struct shimi_region r;
	size_t len = (size + 4095) & ~(size_t)4095;
	int err;

	if (len < size)
		return -ENOMEM;
	memset(&r, 0, sizeof(r));
	r.kind = kind < 0 ? pick_kind() : kind;
	pthread_mutex_lock(&lock);
	if (over_limit(len)) {
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	bytes += len;
	pthread_mutex_unlock(&lock);

	err = ops[r.kind]->create(&r, len, align);
	if (err && kind < 0 && r.kind == SHIMI_KIND_KMOD &&
	    shimi_cfg.backing == SHIMI_BACKING_AUTO) {
		static atomic_int once;

		shimi_warn_once(
			&once,
			"no vkv.ko pool, anonymous memory instead (said once)",
			err);
		r.kind = SHIMI_KIND_ANON;
		err = ops[r.kind]->create(&r, len, align);
	}
	pthread_mutex_lock(&lock);
	if (!err)
		err = reserve_slot();
	if (err) {
		bytes -= len;
		pthread_mutex_unlock(&lock);
		if (r.addr)
			ops[r.kind]->destroy(&r);
		/* Over the limit is the caller's ENOMEM; this is ours. */
		return err == -ENOMEM ? -EAGAIN : err;
	}
	/* What the backing rounded up to must fit under the limit too. */
	if (r.map_len > len && over_limit(r.map_len - len)) {
		bytes -= len;
		pthread_mutex_unlock(&lock);
		ops[r.kind]->destroy(&r);
		return -ENOMEM;
	}
	/* The backing may round up (pool chunks): account what it mapped. */
	bytes += r.map_len - len;
	put(&r);
	nregions++;
	if (ops[r.kind]->registered)
		ops[r.kind]->registered(lookup(r.addr));
	if (is_host(r.kind))
		widen_bounds(r.addr, r.addr + r.len);
	pthread_mutex_unlock(&lock);
	shimi_ctl_start();
	*out = (void *)r.addr;
	return 0;
}

int shimi_region_lookup(const void *p, size_t *len, int *kind)
{
	struct shimi_region *r;
	int found = 0;

	pthread_mutex_lock(&lock);
	r = lookup((uintptr_t)p);
	if (r) {
		*len = r->len;
		if (kind)
			*kind = r->kind;
		found = 1;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

void shimi_region_each(int kind, void (*fn)(struct shimi_region *r, void *arg),
		       void *arg)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < cap; i++)
		if (table[i].addr > TOMB && table[i].kind == kind)
			fn(&table[i], arg);
	pthread_mutex_unlock(&lock);
}

int shimi_region_find(const void *p, size_t *len)
{
	int kind;

	return shimi_region_lookup(p, len, &kind) && is_host(kind);
}

/* Under lock: take r out of the table; the caller destroys the copy. */
static void take(struct shimi_region *r, struct shimi_region *copy)
{
	*copy = *r;
	r->addr = TOMB;
	used--;
	tombs++;
	nregions--;
	bytes -= copy->map_len;
}

int shimi_region_free(const void *p)
{
	return shimi_region_free_kind(-1, p);
}

int shimi_region_free_kind(int kind, const void *p)
{
	struct shimi_region *r, copy;

	pthread_mutex_lock(&lock);
	r = lookup((uintptr_t)p);
	if (!r || (kind < 0 ? !is_host(r->kind) : r->kind != kind)) {
		pthread_mutex_unlock(&lock);
		return -ENOENT;
	}
	take(r, &copy);
	pthread_mutex_unlock(&lock);
	ops[copy.kind]->destroy(&copy);
	return 0;
}

#define PAGE_UP(n) (((n) + 4095) & ~(size_t)4095)

/* Under lock: a host region overlapping [a, e), or NULL. */
static struct shimi_region *overlapping(uintptr_t a, uintptr_t e)
{
	for (size_t i = 0; i < cap; i++) {
		struct shimi_region *r = &table[i];

		if (r->addr > TOMB && is_host(r->kind) && r->addr < e &&
		    r->addr + r->len > a)
			return r;
	}
	return NULL;
}

/* Under lock: do the regions overlapping [a, e) cover all of it? */
static int covered(uintptr_t a, uintptr_t e)
{
	struct shimi_region *r;

	while (a < e) {
		r = overlapping(a, a + 1);
		if (!r)
			return 0;
		a = r->addr + r->len;
	}
	return 1;
}

/*
 * Under lock: what the kernel will cut or move in [a, e) must be plain
 * private memory first (a pool mapping cut in two would leave the pool's
 * bookkeeping, and fork's, behind). With whole, regions wholly inside
 * too: mremap may grow them past their pool.
 */
static int privatise(uintptr_t a, uintptr_t e, int whole)
{
	static atomic_int once;

	for (size_t i = 0; i < cap; i++) {
		struct shimi_region *r = &table[i];
		int err;

		if (r->addr <= TOMB || !is_host(r->kind) || r->addr >= e ||
		    r->addr + r->len <= a || !ops[r->kind]->privatise)
			continue;
		if (!whole && r->addr >= a && r->addr + r->len <= e)
			continue;
		err = ops[r->kind]->privatise(r);
		if (err)
			return err;
		shimi_warn_once(&once,
				"a vkv region cut or moved becomes private "
				"memory, without the module's swap (said once)",
				ENOTSUP);
	}
	return 0;
}

/*
 * Under lock: [s, e) of a region's memory, still mapped, as a region of
 * its own. Without room to track it the memory stays, as an ordinary
 * mapping the shim no longer counts.
 */
static void add_piece(const struct shimi_region *from, uintptr_t s, uintptr_t e)
{
	static atomic_int once;
	struct shimi_region p = *from;

	if (reserve_slot()) {
		shimi_warn_once(&once,
				"a vkv region given up to an ordinary "
				"mapping (said once)",
				ENOMEM);
		return;
	}
	p.addr = s;
	p.map = (void *)s;
	p.len = p.map_len = e - s;
	put(&p);
	nregions++;
	bytes += p.map_len;
	widen_bounds(s, e);
}

/*
 * Under lock, after the kernel unmapped [a, e): regions lose those bytes,
 * what is left of each stays a region. Those cut were privatised: anonymous
 * memory, nothing to release but the mapping the kernel took.
 */
static void cut(uintptr_t a, uintptr_t e)
{
	struct shimi_region *r, copy;

	while ((r = overlapping(a, e))) {
		take(r, &copy);
		if (copy.addr < a)
			add_piece(&copy, copy.addr, a);
		if (copy.addr + copy.len > e)
			add_piece(&copy, e, copy.addr + copy.len);
		if (copy.addr >= a && copy.addr + copy.len <= e) {
			/* A pool's descriptor still goes: its pages went. */
			copy.map_len = 0;
			ops[copy.kind]->destroy(&copy);
		}
	}
}

int shimi_region_unmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, e = a + PAGE_UP(len);
	int all = 1, any = 0, err;

	/* The kernel refuses these: let it say so. */
	if (!len || (a & 4095) || e < a)
		return 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < cap; i++) {
		struct shimi_region *r = &table[i];

		if (r->addr <= TOMB || r->addr + r->len <= a || r->addr >= e ||
		    !is_host(r->kind))
			continue;
		any = 1;
		if (r->addr < a || r->addr + r->len > e)
			all = 0;
	}
	if (!any) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	if (all) {
		/*
		 * Whatever lies between the regions goes too, as asked, in
		 * one call: the regions' pages go with it, and their
		 * backings release only the rest.
		 */
		int gaps = !covered(a, e);

		if (gaps && shimi_sys_munmap(addr, len)) {
			err = -errno;
			pthread_mutex_unlock(&lock);
			return err;
		}
		for (size_t i = 0; i < cap; i++) {
			struct shimi_region *r = &table[i], copy;

			if (r->addr <= TOMB || r->addr + r->len <= a ||
			    r->addr >= e || !is_host(r->kind))
				continue;
			take(r, &copy);
			if (gaps)
				copy.map_len = 0;
			ops[copy.kind]->destroy(&copy);
		}
		pthread_mutex_unlock(&lock);
		return 1;
	}
	err = privatise(a, e, 0);
	if (!err && shimi_sys_munmap(addr, len))
		err = -errno;
	if (!err)
		cut(a, e);
	pthread_mutex_unlock(&lock);
	return err ? err : 1;
}

int shimi_region_remap(void *old, size_t old_len, size_t new_len, int flags,
		       void *new_addr, void **out)
{
	uintptr_t a = (uintptr_t)old, e = a + PAGE_UP(old_len);
	uintptr_t t = (uintptr_t)new_addr, te = t + PAGE_UP(new_len);
	int fixed = flags & MREMAP_FIXED, err = 0, ours;
#ifdef MREMAP_DONTUNMAP
	int keep = flags & MREMAP_DONTUNMAP;
#else
	int keep = 0;
#endif
	uint64_t more;
	void *res;

	/* Nothing the kernel would accept lies in a region for these. */
	if (!old_len || !new_len || (a & 4095) || e < a || te < t)
		return 0;
	pthread_mutex_lock(&lock);
	ours = covered(a, e);
	if (!ours && !overlapping(a, e) && !(fixed && overlapping(t, te))) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	more = PAGE_UP(new_len) - (keep ? 0 : PAGE_UP(old_len));
	if (ours && PAGE_UP(new_len) > (keep ? 0 : PAGE_UP(old_len)) &&
	    over_limit(more)) {
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	err = privatise(a, e, 1);
	if (!err && fixed)
		err = privatise(t, te, 0);
	if (err) {
		pthread_mutex_unlock(&lock);
		return err;
	}
	res = shimi_sys_mremap(old, old_len, new_len, flags, new_addr);
	if (res == MAP_FAILED) {
		err = -errno;
		pthread_mutex_unlock(&lock);
		return err;
	}
	if (!keep)
		cut(a, e);
	/* The kernel unmapped what lay where the range went. */
	cut((uintptr_t)res, (uintptr_t)res + PAGE_UP(new_len));
	if (!ours) {
		static atomic_int once;

		shimi_warn_once(&once,
				"mremap of a vkv region with other memory: "
				"given up to an ordinary mapping (said once)",
				ENOTSUP);
	} else {
		struct shimi_region r;

		memset(&r, 0, sizeof(r));
		r.kind = SHIMI_KIND_ANON;
		r.fd = -1;
		add_piece(&r, (uintptr_t)res,
			  (uintptr_t)res + PAGE_UP(new_len));
	}
	pthread_mutex_unlock(&lock);
	*out = res;
	return 1;
}

void shimi_status(struct shimi_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&lock);
	st->suspended = suspended;
	st->mode = mode;
	st->regions = nregions;
	st->bytes = bytes;
	st->limit = limit_now();
	st->passthru = passthru;
	for (size_t i = 0; i < cap; i++) {
		struct shimi_region *r = &table[i];

		if (r->addr <= TOMB)
			continue;
		ops[r->kind]->usage(r, &st->usage);
		st->by_kind[r->kind] += r->map_len;
	}
	pthread_mutex_unlock(&lock);
}

enum shimi_phase shimi_phase(void)
{
	return (enum shimi_phase)atomic_load(&phase);
}

/* Before `run` is released: what suspend or resume left. */
static void phase_settle(void)
{
	atomic_store(&phase, atomic_load(&suspended) ? SHIMI_PHASE_SUSPENDED
						     : SHIMI_PHASE_RUNNING);
}

void shimi_set_limit(uint64_t limit)
{
	atomic_store(&limit_bytes, limit);
	atomic_store(&limit_set, 1);
}

/*
 * Every region or none: a region that fails is resumed again with the ones
 * before it, so a failed suspend leaves the process running. Where that
 * cannot be (a region whose memory could not come back, or a discard that
 * already dropped some), the process stays suspended with what was done,
 * and the gate resumes it before its next call touches a region: never
 * running over memory that is gone. The error is returned either way.
 */
int shimi_suspend(enum shimi_mode m)
{
	size_t i, done = 0;
	int err = 0;

	shimi_run_excl();
	atomic_store(&phase, SHIMI_PHASE_SUSPENDING);
	err = shimi_cuda_quiesce();
	if (err) {
		phase_settle();
		shimi_run_excl_end(atomic_load(&suspended));
		return err;
	}
	pthread_mutex_lock(&lock);
	if (suspended) {
		pthread_mutex_unlock(&lock);
		phase_settle();
		shimi_run_excl_end(atomic_load(&suspended));
		return -EALREADY;
	}
	for (i = 0; i < cap; i++) {
		if (table[i].addr <= TOMB)
			continue;
		err = ops[table[i].kind]->suspend(&table[i], m);
		if (err)
			break;
		done++;
	}
	if (err && (m != SHIMI_MODE_DISCARD || !done)) {
		int stuck = 0;

		for (size_t j = 0; j < i; j++)
			if (table[j].addr > TOMB &&
			    ops[table[j].kind]->resume(&table[j]) &&
			    ops[table[j].kind]->resume_required)
				stuck = 1;
		if (stuck) {
			suspended = 1;
			mode = m;
		}
	} else {
		/* A discard's dropped bytes are gone: they stay suspended. */
		suspended = 1;
		mode = m;
	}
	pthread_mutex_unlock(&lock);
	phase_settle();
	shimi_run_excl_end(atomic_load(&suspended));
	return err;
}

int shimi_resume(void)
{
	int err = 0, stuck = 0;

	shimi_run_excl();
	atomic_store(&phase, SHIMI_PHASE_RESUMING);
	pthread_mutex_lock(&lock);
	if (!suspended) {
		pthread_mutex_unlock(&lock);
		phase_settle();
		shimi_run_excl_end(atomic_load(&suspended));
		return -EALREADY;
	}
	for (size_t i = 0; i < cap; i++) {
		const struct shimi_backing_ops *o;
		int e;

		if (table[i].addr <= TOMB)
			continue;
		o = ops[table[i].kind];
		e = o->resume(&table[i]);
		if (e && !err)
			err = e;
		if (e && o->resume_required)
			stuck = 1;
	}
	/*
	 * Host data comes back on access even if a prefetch failed; device
	 * data does not: the process stays suspended and resume may be
	 * retried (each region's resume skips what is already back).
	 */
	if (!stuck)
		suspended = 0;
	pthread_mutex_unlock(&lock);
	phase_settle();
	shimi_run_excl_end(atomic_load(&suspended));
	return err;
}

void shimi_region_atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

void shimi_region_atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

void shimi_region_atfork_child(void)
{
	shimi_gate_atfork_child();
	for (size_t i = 0; i < cap; i++)
		if (table[i].addr > TOMB)
			ops[table[i].kind]->fork_child(&table[i]);
	suspended = 0;
	atomic_store(&phase, SHIMI_PHASE_RUNNING);
	pthread_mutex_unlock(&lock);
}
