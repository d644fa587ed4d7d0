/* SPDX-License-Identifier: MIT */
/*
 * libvkv-shim.so internals, shared by its files. Every name here is
 * internal (shimi_ prefix, hidden visibility); what the library exports is
 * listed in shim/libvkv-shim.map.
 *
 * Layers, calling downward only: init (configuration, the real functions,
 * the bootstrap arena) and cuda_hook (the real driver functions) <-
 * backings (anon, kmod, cuda; one ops table per kind) <- region registry
 * (limits, suspend state, the gate) <- interposers (malloc, mmap,
 * cuda_mem, cuda_gate, and cuda_hook's dlsym and cuGetProcAddress) and the
 * control socket. shim/cuda.h has what the CUDA files share.
 */
#ifndef VKV_SHIM_H
#define VKV_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHIMI_HIDDEN __attribute__((visibility("hidden")))
#define shimi_unlikely(x) __builtin_expect(!!(x), 0)

/* --- init.c: configuration and the functions the shim stands in for --- */

#define SHIMI_MAX_MATCH 16

enum shimi_backing_choice {
	SHIMI_BACKING_AUTO,
	SHIMI_BACKING_ANON,
	SHIMI_BACKING_KMOD,
};

struct shimi_config {
	int enabled; /* VKV_SHIM, default 1 */
	size_t min_bytes; /* VKV_SHIM_MIN_BYTES; 0 = off */
	size_t match[SHIMI_MAX_MATCH]; /* VKV_SHIM_MATCH_BYTES */
	int nmatch;
	int verbose; /* VKV_SHIM_VERBOSE: say what became of allocations */
	size_t limit; /* VKV_SHIM_LIMIT; 0 = none */
	int backing; /* VKV_SHIM_BACKING */
	char spill_dir[256]; /* VKV_SHIM_SPILL_DIR */
};

struct shimi_real {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void (*free)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	size_t (*malloc_usable_size)(void *);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
};

enum { SHIMI_UNINIT, SHIMI_INITIALISING, SHIMI_READY };

SHIMI_HIDDEN extern _Atomic int shimi_state;
SHIMI_HIDDEN extern struct shimi_config shimi_cfg;
SHIMI_HIDDEN extern struct shimi_real shimi_real;
/* Smallest size that may be recognised: sizes below it skip every check. */
SHIMI_HIDDEN extern size_t shimi_floor;
/*
 * What malloc() and free() read when they pass a call through, in one cache
 * line: the real functions (copies of shimi_real's), the smallest size that
 * may be taken, and the span of host regions (see shimi_maybe_region()).
 * floor stays 0, sending every malloc() to the slow path, until the real
 * functions are known; it is stored with release after them, so a caller
 * that sees it nonzero sees them.
 */
struct shimi_fast {
	_Atomic size_t floor;
	_Atomic uintptr_t span_base, span_len;
	void *(*malloc)(size_t);
	void (*free)(void *);
} __attribute__((aligned(64)));
SHIMI_HIDDEN extern struct shimi_fast shimi_fast;
static inline int shimi_pass_size(size_t size)
{
	return size <
	       atomic_load_explicit(&shimi_fast.floor, memory_order_acquire);
}
SHIMI_HIDDEN extern __thread int shimi_tag_depth
	__attribute__((tls_model("initial-exec")));

/* Returns 1 when the real functions may be used, 0 for the bootstrap arena. */
SHIMI_HIDDEN int shimi_init_slow(void);
static inline int shimi_ready(void)
{
	if (__builtin_expect(
		    atomic_load_explicit(&shimi_state, memory_order_acquire) ==
			    SHIMI_READY,
		    1))
		return 1;
	return shimi_init_slow();
}

/* Bootstrap arena: allocations made while the real allocator is unknown. */
SHIMI_HIDDEN void *shimi_boot_alloc(size_t size, size_t align);
SHIMI_HIDDEN extern unsigned char shimi_boot_arena[];
#define SHIMI_BOOT_SIZE (256 * 1024)
static inline int shimi_boot_owns(const void *p)
{
	return (uintptr_t)p - (uintptr_t)shimi_boot_arena < SHIMI_BOOT_SIZE;
}
SHIMI_HIDDEN size_t shimi_boot_size(const void *p);

/* Whether an allocation of size bytes becomes a vkv region. */
SHIMI_HIDDEN int shimi_wanted(size_t size);

/* One line on stderr, the first time *once is hit. */
SHIMI_HIDDEN void shimi_warn_once(atomic_int *once, const char *what, int err);

SHIMI_HIDDEN void *shimi_sys_mmap(void *addr, size_t len, int prot, int flags,
				  int fd, off_t off);
SHIMI_HIDDEN int shimi_sys_munmap(void *addr, size_t len);
/* The kernel's mremap, never the shim's: new_addr only with MREMAP_FIXED. */
SHIMI_HIDDEN void *shimi_sys_mremap(void *old, size_t old_len, size_t new_len,
				    int flags, void *new_addr);

/* --- backings: where a region's memory comes from --- */

enum shimi_kind {
	SHIMI_KIND_ANON, /* private anonymous memory the shim maps */
	SHIMI_KIND_KMOD, /* a /dev/vkv pool of its own */
	SHIMI_KIND_CUDA, /* device memory mapped through CUDA's VMM calls */
	SHIMI_NKINDS,
};

enum shimi_mode { SHIMI_MODE_HOST, SHIMI_MODE_DISK, SHIMI_MODE_DISCARD };

struct shimi_region {
	uintptr_t addr; /* what the caller got; 0 = free slot */
	size_t len; /* usable bytes from addr */
	void *map; /* the whole mapping (addr may be inside it) */
	size_t map_len;
	int kind;
	int fd; /* kmod: the pool's descriptor */
	void *priv; /* the backing's own state, if it needs more */
};

/* Bytes of a region by where they are now. */
struct shimi_usage {
	uint64_t host; /* resident in host memory */
	uint64_t disk; /* on the pool's backing file */
	uint64_t absent; /* neither: never touched, dropped, system swap */
	uint64_t device; /* in GPU memory */
};

/*
 * One table per kind. A new kind (the CUDA path's device regions) brings
 * its own table and becomes visible to limits, status and suspend without
 * change elsewhere.
 */
struct shimi_backing_ops {
	const char *name;
	/* Map len bytes aligned to align (a power of two) into r. */
	int (*create)(struct shimi_region *r, size_t len, size_t align);
	/* map_len 0: the pages are already unmapped; release the rest. */
	void (*destroy)(struct shimi_region *r);
	int (*suspend)(struct shimi_region *r, enum shimi_mode mode);
	int (*resume)(struct shimi_region *r);
	void (*usage)(const struct shimi_region *r, struct shimi_usage *u);
	/* In the child after fork(), single-threaded: make r private. */
	void (*fork_child)(struct shimi_region *r);
	/*
	 * Make r private anonymous memory with the same bytes at the same
	 * address (kind SHIMI_KIND_ANON), so that the kernel may cut or move
	 * it as any mapping; 0 or -errno, r unchanged on failure. NULL where
	 * r already is such memory.
	 */
	int (*privatise)(struct shimi_region *r);
	/*
	 * Under the registry's lock, once r is in it: catch up with what
	 * changed while it was being made. NULL where nothing can.
	 */
	void (*registered)(struct shimi_region *r);
	/*
	 * Nonzero when the data comes back only through resume (device
	 * memory), not on access: a failed resume then leaves the process
	 * suspended, to be retried.
	 */
	int resume_required;
};

SHIMI_HIDDEN extern const struct shimi_backing_ops shimi_anon_ops;
SHIMI_HIDDEN extern const struct shimi_backing_ops shimi_kmod_ops;
SHIMI_HIDDEN int shimi_kmod_available(void);
/* Reserve len + align - 1 bytes and keep the aligned middle of them. */
SHIMI_HIDDEN void *shimi_map_aligned(size_t len, size_t align, int fd,
				     void **map, size_t *map_len);

/* --- region.c: the registry --- */

/*
 * Cheap test before any locking: may p lie in a host region? The regions
 * lie in [span_base, span_base + span_len) of shimi_fast, tested with
 * one unsigned comparison. Until the real functions are known the span is
 * the whole address space, so that free() of anything then takes the slow
 * path. The span only widens afterwards: region.c stores the new length
 * before the new base (release), and a reader loads the base first
 * (acquire), so a reader mixing old and new values still gets a span that
 * holds every region handed out before the widening.
 */
static inline int shimi_maybe_region(const void *p)
{
	uintptr_t base = atomic_load_explicit(&shimi_fast.span_base,
					      memory_order_acquire);

	return (uintptr_t)p - base <
	       atomic_load_explicit(&shimi_fast.span_len, memory_order_acquire);
}

/*
 * New region of size bytes: 0 and *out, -ENOMEM over the limit (the caller
 * fails as the real call would), another -errno for an internal failure
 * (the caller falls back to the real call).
 */
SHIMI_HIDDEN int shimi_region_new(size_t size, size_t align, void **out);
/* The same, of a given kind, with no fallback to another kind. */
SHIMI_HIDDEN int shimi_region_new_kind(int kind, size_t size, size_t align,
				       void **out);
/*
 * Memory the shim passes through but counts toward the limit (device
 * allocations it does not back): 0, or -ENOMEM over the limit.
 */
SHIMI_HIDDEN int shimi_charge(uint64_t len);
SHIMI_HIDDEN void shimi_uncharge(uint64_t len);
/* Bytes counted toward the limit (regions and charges), and the limit. */
SHIMI_HIDDEN void shimi_counted(uint64_t *counted, uint64_t *limit);
/* --- gate.c: the run gate --- */

/*
 * Calls that must not run while suspended (CUDA launches, copies,
 * synchronisations) run between shimi_run_enter() and shimi_run_leave();
 * suspend and resume run between shimi_run_excl() and
 * shimi_run_excl_end(), which wait for the calls past the gate and hold
 * new ones. shimi_run_enter() returns 1, entering nothing, when the
 * process is suspended. Calls may nest. See gate.c for how a call passes
 * with no lock and no atomic read-modify-write.
 */
enum {
	SHIMI_GATE_UNREGISTERED, /* the thread's first call: slow path */
	SHIMI_GATE_BARRIER, /* closers issue membarrier(2): no fence here */
	SHIMI_GATE_FENCE, /* no membarrier(2): each call fences, slow path */
};

struct shimi_gate_thread {
	_Atomic unsigned depth; /* calls of this thread past the gate */
	_Atomic int mode; /* a closer may turn BARRIER into FENCE */
	struct shimi_gate_thread *next; /* under gate.c's threads_lock */
};

SHIMI_HIDDEN extern __thread struct shimi_gate_thread shimi_gate_self
	__attribute__((tls_model("initial-exec")));
SHIMI_HIDDEN extern _Atomic int shimi_gate_closed;
SHIMI_HIDDEN int shimi_run_enter_slow(void);

/* 1 if the call passed on the fast path; 0, entering nothing, if not. */
static inline int shimi_run_try_enter(void)
{
	struct shimi_gate_thread *t = &shimi_gate_self;

	if (shimi_unlikely(
		    atomic_load_explicit(&t->mode, memory_order_relaxed) !=
			    SHIMI_GATE_BARRIER ||
		    atomic_load_explicit(&t->depth, memory_order_relaxed)))
		return 0;
	atomic_store_explicit(&t->depth, 1, memory_order_relaxed);
	/* The closer's membarrier(2) is the other half of this fence. */
	atomic_signal_fence(memory_order_seq_cst);
	if (__builtin_expect(!atomic_load_explicit(&shimi_gate_closed,
						   memory_order_acquire),
			     1))
		return 1;
	atomic_store_explicit(&t->depth, 0, memory_order_relaxed);
	return 0;
}

static inline int shimi_run_enter(void)
{
	return shimi_run_try_enter() ? 0 : shimi_run_enter_slow();
}

static inline void shimi_run_leave(void)
{
	struct shimi_gate_thread *t = &shimi_gate_self;

	atomic_store_explicit(
		&t->depth,
		atomic_load_explicit(&t->depth, memory_order_relaxed) - 1,
		memory_order_release);
}

SHIMI_HIDDEN void shimi_run_excl(void);
/* stay_closed: the process is suspended, calls find it so. */
SHIMI_HIDDEN void shimi_run_excl_end(int stay_closed);
SHIMI_HIDDEN void shimi_gate_atfork_child(void);

/* --- region.c, continued --- */

/* 1 and *len (usable bytes from p) when p is a host region's start. */
SHIMI_HIDDEN int shimi_region_find(const void *p, size_t *len);
/* Release the host region starting at p: 0, or -ENOENT. */
SHIMI_HIDDEN int shimi_region_free(const void *p);
/* The same for a region of the given kind. */
SHIMI_HIDDEN int shimi_region_free_kind(int kind, const void *p);
/* Like shimi_region_find(), for a region of any kind, and its kind. */
SHIMI_HIDDEN int shimi_region_lookup(const void *p, size_t *len, int *kind);
/* fn on every region of the kind, under the registry's lock. */
SHIMI_HIDDEN void
shimi_region_each(int kind, void (*fn)(struct shimi_region *r, void *arg),
		  void *arg);
/*
 * munmap(addr, len) over host regions, as the kernel's: regions wholly
 * inside go, a region cut keeps the rest of its bytes as regions of their
 * own. 1 when done, 0 when it touches no region (the caller passes it
 * through), or -errno with nothing unmapped.
 */
SHIMI_HIDDEN int shimi_region_unmap(void *addr, size_t len);
/*
 * mremap() touching host regions: 1 and *out when done (a range moved out
 * of regions is a region at its new place), 0 when it touches no region
 * (the caller passes it through), or -errno with nothing changed.
 */
SHIMI_HIDDEN int shimi_region_remap(void *old, size_t old_len, size_t new_len,
				    int flags, void *new_addr, void **out);

struct shimi_status {
	int suspended;
	enum shimi_mode mode;
	uint64_t regions, bytes, limit;
	uint64_t passthru; /* charged bytes the shim does not back */
	struct shimi_usage usage;
	uint64_t by_kind[SHIMI_NKINDS];
};

SHIMI_HIDDEN void shimi_status(struct shimi_status *st);
/*
 * Where suspend and resume are, without taking a lock: status would wait
 * for the one under way, and a control request must not.
 */
enum shimi_phase {
	SHIMI_PHASE_RUNNING,
	SHIMI_PHASE_SUSPENDING,
	SHIMI_PHASE_SUSPENDED,
	SHIMI_PHASE_RESUMING,
};
SHIMI_HIDDEN enum shimi_phase shimi_phase(void);
SHIMI_HIDDEN void shimi_set_limit(uint64_t limit);
SHIMI_HIDDEN int shimi_suspend(enum shimi_mode mode);
SHIMI_HIDDEN int shimi_resume(void);
SHIMI_HIDDEN void shimi_region_atfork_prepare(void);
SHIMI_HIDDEN void shimi_region_atfork_parent(void);
SHIMI_HIDDEN void shimi_region_atfork_child(void);

/* --- ctl.c: the control socket --- */

/* Start the control thread once per process (after fork: again). */
SHIMI_HIDDEN void shimi_ctl_start(void);
SHIMI_HIDDEN void shimi_ctl_atfork_child(void);

#endif
